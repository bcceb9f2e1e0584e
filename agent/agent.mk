# meterd, the gateway agent (Documentation/meterd.md). Its rooms:
#   agent/core     metering logic: registers, tariff, profile, allocation,
#                  protection, the meter that ties them (no I/O, time passed in)
#   agent/store    crash-safe persistence of the meter and its tariff
#   agent/hw       sensors, relays, trip thread, driver thresholds, GPIO lines
#   agent/dbus     org.gridmeter.Meter1 / Uplink1 services and authorisation
#   agent/uplink   the link to the town server: SIM900, credentials, route,
#                  reports, the town's tariffs, operator-signed commands
#   agent/daemon   configuration, options, the event loop
#   agent/system   files installed beside it (unit, udev, polkit, D-Bus, sysusers)
INCDIRS += agent/core agent/store agent/hw agent/dbus agent/uplink agent/daemon

AGENT_CORE := $(CONF_SRCS) agent/core/log_limit.c agent/core/tariff.c agent/store/tariff_file.c $(FILE_SRCS) agent/core/profile.c \
	agent/core/registers.c agent/core/clock.c agent/core/held.c agent/core/persist.c agent/core/alloc.c agent/core/protect.c agent/daemon/config.c \
	agent/uplink/sim900.c drivers/tty/gm_frame.c agent/store/store.c
AGENT_IO := agent/core/meter.c agent/core/meter_actions.c agent/core/meter_loads.c agent/core/meter_time.c agent/core/uplink.c \
	agent/core/home_sensor.c agent/core/meter_home.c agent/hw/home_iio.c agent/hw/iio_sysfs.c agent/daemon/daemon_home.c \
	agent/hw/sensor_iio.c agent/hw/sensor_replay.c agent/hw/relay_gpiod.c agent/hw/relay_fake.c \
	agent/hw/tripper.c agent/hw/ct_setup.c agent/hw/ct_calib.c $(FILE_SRCS) agent/hw/pwrkey.c agent/hw/clock_set.c agent/hw/powerfail.c \
	agent/dbus/auth.c agent/dbus/load_reporters.c \
	agent/dbus/dbus.c agent/dbus/dbus_test.c agent/dbus/dbus_uplink.c agent/daemon/daemon.c \
	agent/uplink/credentials.c $(FILE_SRCS) agent/uplink/keygen.c agent/uplink/tariff_gmp.c agent/uplink/town_reports.c \
	agent/uplink/town_commands.c agent/uplink/signed_commands.c agent/uplink/town_uplink.c agent/hw/serial_line.c \
	lib/proto/outbox.c lib/proto/gmp_client.c $(GMSIGN_SRCS) \
	$(filter-out $(AGENT_CORE),$(GMPROTO_SRCS) $(GMLINK_SRCS))

PROGS += meterd
meterd_SRCS := $(AGENT_CORE) $(AGENT_IO) agent/daemon/main.c
meterd_PKGS := libsystemd libgpiod $(GMPROTO_PKGS)
meterd_CFLAGS := $(shell $(PKG_CONFIG) --cflags libiio)
meterd_LDLIBS := -pthread
