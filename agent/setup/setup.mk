# gridmeter-setup, the installer's on-site command (Documentation/onsite.md):
# hardware check, calibration against a known load, the meter's key and
# enrolment line, self-test report. Installed in /usr/sbin by the
# gridmeter-meterd package.
INCDIRS += agent/setup
SETUP_CORE := $(CONF_SRCS) $(GMPROTO_SRCS) agent/core/tariff.c agent/daemon/config.c agent/uplink/sim900.c \
	agent/uplink/credentials.c $(FILE_SRCS) agent/uplink/keygen.c agent/hw/iio_sysfs.c agent/hw/ct_calib.c \
	agent/setup/prompt.c agent/setup/report.c $(FILE_SRCS) agent/setup/calib_math.c agent/setup/timing.c
SETUP_IO := agent/setup/hwcheck.c agent/setup/modem.c agent/hw/serial_line.c agent/setup/calibrate.c agent/setup/enrol.c \
	agent/setup/service.c agent/setup/flow.c $(GMSIGN_SRCS)

PROGS += gridmeter-setup
gridmeter-setup_SRCS := $(SETUP_CORE) $(SETUP_IO) agent/setup/main.c
gridmeter-setup_PKGS := libgpiod libsystemd $(GMPROTO_PKGS)
gridmeter-setup_LDLIBS := -lm

# Host tests (tests/unit/setup_test_*.c): the calibration arithmetic and the
# trims' file, the dialogue, the modem check against the simulated SIM900,
# the whole walk-through on a fake sysfs tree.
UNIT_TESTS += setup_test_calib
setup_test_calib_SRCS := $(CONF_SRCS) agent/hw/iio_sysfs.c agent/hw/ct_calib.c $(FILE_SRCS) agent/setup/calib_math.c \
	tests/unit/setup_test_calib.c
setup_test_calib_LDLIBS := -lm

UNIT_TESTS += setup_test_prompt
setup_test_prompt_SRCS := $(SETUP_CORE) tests/unit/setup_test_prompt.c
setup_test_prompt_PKGS := $(GMPROTO_PKGS)
setup_test_prompt_LDLIBS := -lm

UNIT_TESTS += setup_test_modem
setup_test_modem_SRCS := $(SETUP_CORE) agent/setup/modem.c agent/hw/serial_line.c tests/sim900/sim900sim.c tests/unit/setup_test_modem.c
setup_test_modem_CFLAGS := -Itests/sim900
setup_test_modem_PKGS := $(GMPROTO_PKGS)
setup_test_modem_LDLIBS := -lutil -lm

UNIT_TESTS += setup_test_flow
setup_test_flow_SRCS := $(SETUP_CORE) $(SETUP_IO) tests/sim900/sim900sim.c tests/unit/setup_test_flow.c
setup_test_flow_CFLAGS := -Itests/sim900
setup_test_flow_PKGS := libgpiod libsystemd $(GMPROTO_PKGS)
setup_test_flow_LDLIBS := -lutil -lm
