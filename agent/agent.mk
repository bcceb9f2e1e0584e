# meterd: the gateway's metering agent (issue 5). See Documentation/meterd.md.
AGENT_CORE := lib/parse.c agent/tariff.c agent/tariff_file.c agent/profile.c \
	agent/registers.c agent/alloc.c agent/protect.c agent/config.c agent/modem_sim900.c agent/crc32.c \
	agent/store.c
AGENT_IO := agent/meter.c agent/meter_actions.c agent/uplink.c agent/sensor_iio.c agent/sensor_replay.c \
	agent/relay_gpiod.c agent/relay_fake.c agent/tripper.c agent/ct_setup.c agent/auth.c \
	agent/dbus.c agent/dbus_test.c agent/daemon.c \
	agent/credentials.c agent/pwrkey.c agent/tariff_gmp.c agent/outbox.c agent/modem_uplink.c \
	agent/uplink_town.c agent/dbus_uplink.c $(GMPROTO_SRCS) $(GMLINK_SRCS)

PROGS += meterd
meterd_SRCS := $(AGENT_CORE) $(AGENT_IO) agent/main.c
# libiio is dlopen()ed by a short-lived discovery child only (sensor_iio.c):
# its headers are needed, its library is not linked (it must be installed).
meterd_PKGS := libsystemd libgpiod $(GMPROTO_PKGS)
meterd_CFLAGS := $(shell $(PKG_CONFIG) --cflags libiio) $(GMLINK_CFLAGS)
meterd_LDLIBS := -pthread
