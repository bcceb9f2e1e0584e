# CT sensor (issue 3): kselftest programs run inside the QEMU guests against
# gridmeter_ct bound to the simulated ADC gm_sim_adc.
GUEST_TESTS += ct_test_sensor
ct_test_sensor_SRCS := tests/guest/ct/ct_test_sensor.c
ct_test_sensor_LDLIBS := -lm
