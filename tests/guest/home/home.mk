# Home sensors (issue 15): the real meterd in the guest reads a gas sensor on
# gm_sim_adc's spare channel CH2 through IIO sysfs; HomeSensors and the Alarm
# signal on a private system bus (tests/dbus/agent_privbus.c).
GUEST_TESTS += home_test_gas
home_test_gas_SRCS := tests/guest/home/home_test_gas.c tests/dbus/agent_privbus.c
home_test_gas_PKGS := libsystemd
home_test_gas_CFLAGS := -Itests/dbus
