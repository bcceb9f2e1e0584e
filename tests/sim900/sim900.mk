# Simulated SIM900 (issue 6): the sim900sim program for pty / QEMU serial
# chardev use, and host tests of the meter's modem state machine against it.
PROGS += sim900sim
sim900sim_SRCS := tests/sim900/sim900sim.c tests/sim900/sim900sim_main.c
sim900sim_CFLAGS := -Itests/sim900

UNIT_TESTS += sim900_test_modem
sim900_test_modem_SRCS = agent/uplink/sim900.c tests/sim900/sim900sim.c \
	$(TOWND_CORE) $(TOWND_NET) tests/server/simmeter.c tests/sim900/sim900_test_modem.c
sim900_test_modem_CFLAGS = $(TOWND_CFLAGS) -Itests/sim900 -Itests/server
sim900_test_modem_PKGS = $(TOWND_PKGS) libsystemd
sim900_test_modem_LDLIBS := -lutil

# An hour of town outage, a dead modem, a silent town: the machine and the
# simulator in one process in simulated time (a fraction of a second).
UNIT_TESTS += sim900_test_outage
sim900_test_outage_SRCS = $(CONF_SRCS) agent/uplink/sim900.c agent/core/log_limit.c tests/sim900/sim900sim.c \
	tests/sim900/sim900_test_outage.c
sim900_test_outage_CFLAGS = -Itests/sim900
