# Host D-Bus tests of meterd on a private dbus-daemon (open policy, the production
# policy, and a fake polkit).
# The daemon runs in a child process of the test (meterd_main), with the
# replay sensor and fake relays; see tests/dbus/agent_test_dbus.c.
UNIT_TESTS += agent_test_dbus
agent_test_dbus_SRCS := $(AGENT_CORE) $(AGENT_IO) tests/dbus/agent_privbus.c tests/dbus/agent_test_dbus.c
agent_test_dbus_PKGS := $(meterd_PKGS)
agent_test_dbus_CFLAGS := $(meterd_CFLAGS)
agent_test_dbus_LDLIBS := -pthread
