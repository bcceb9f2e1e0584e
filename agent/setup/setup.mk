# gridmeter-setup, the installer's on-site command (Documentation/install-pi.md):
# hardware check, calibration against a known load, the meter's key and
# enrolment line, self-test report. Installed in /usr/sbin by the
# gridmeter-meterd package.
PROGS += gridmeter-setup
gridmeter-setup_SRCS := agent/setup/main.c
