# Simulated GPIO chip (issue 5): edge events of gm-sim-gpio through the GPIO
# character device, driven by gm_sim_adc's sim_gpio_levels attribute.
GUEST_TESTS += gpio_test_sim
gpio_test_sim_SRCS := tests/guest/gpio/gpio_test_sim.c
