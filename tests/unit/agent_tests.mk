# Host unit tests of the metering agent's pure logic (agent/).
UNIT_TESTS += agent_test_tariff
agent_test_tariff_SRCS := $(CONF_SRCS) agent/core/tariff.c tests/unit/agent_test_tariff.c

UNIT_TESTS += agent_test_registers
agent_test_registers_SRCS := $(CONF_SRCS) agent/core/tariff.c agent/core/profile.c agent/core/registers.c \
	tests/unit/agent_test_registers.c

UNIT_TESTS += agent_test_alloc
agent_test_alloc_SRCS := $(CONF_SRCS) agent/core/alloc.c tests/unit/agent_test_alloc.c

UNIT_TESTS += agent_test_protect
agent_test_protect_SRCS := agent/core/protect.c tests/unit/agent_test_protect.c

UNIT_TESTS += agent_test_config
agent_test_config_SRCS := $(CONF_SRCS) agent/core/tariff.c agent/daemon/config.c agent/uplink/sim900.c tests/unit/agent_test_config.c

UNIT_TESTS += agent_test_store
agent_test_store_SRCS := drivers/tty/gm_frame.c agent/core/profile.c agent/store/store.c tests/unit/agent_test_store.c

UNIT_TESTS += agent_test_meter
agent_test_meter_SRCS := $(CONF_SRCS) agent/core/log_limit.c agent/core/tariff.c agent/store/tariff_file.c $(FILE_SRCS) agent/core/profile.c \
	agent/core/registers.c agent/core/clock.c agent/core/held.c agent/core/persist.c agent/core/alloc.c \
	agent/core/protect.c agent/daemon/config.c agent/uplink/sim900.c drivers/tty/gm_frame.c agent/store/store.c \
	agent/core/meter.c agent/core/meter_actions.c agent/core/meter_loads.c agent/core/meter_time.c agent/core/uplink.c \
	agent/hw/sensor_replay.c agent/hw/relay_fake.c \
	tests/unit/agent_test_meter.c

UNIT_TESTS += agent_test_tripper
agent_test_tripper_SRCS := agent/hw/sensor_replay.c agent/hw/relay_fake.c agent/hw/tripper.c \
	tests/unit/agent_test_tripper.c
agent_test_tripper_LDLIBS := -pthread

UNIT_TESTS += agent_test_ct_setup
agent_test_ct_setup_SRCS := agent/hw/ct_setup.c agent/hw/iio_sysfs.c tests/unit/agent_test_ct_setup.c

UNIT_TESTS += agent_test_sensor_iio
agent_test_sensor_iio_SRCS := $(CONF_SRCS) agent/core/tariff.c agent/daemon/config.c agent/uplink/sim900.c agent/hw/sensor_iio.c \
	tests/unit/agent_test_sensor_iio.c
agent_test_sensor_iio_CFLAGS := $(shell pkg-config --cflags libiio)

# meterd's uplink: [uplink]/[modem]/[neighbour.*] config, credentials file,
# tariff updates from the town server
UNIT_TESTS += agent_test_uplink_config
agent_test_uplink_config_SRCS := $(CONF_SRCS) agent/core/tariff.c agent/daemon/config.c agent/uplink/sim900.c \
	tests/unit/agent_test_uplink_config.c

UNIT_TESTS += agent_test_credentials
agent_test_credentials_SRCS := $(GMPROTO_SRCS) $(CONF_SRCS) agent/uplink/credentials.c $(FILE_SRCS) \
	tests/unit/agent_test_credentials.c
agent_test_credentials_PKGS := $(GMPROTO_PKGS)

UNIT_TESTS += agent_test_tariff_gmp
agent_test_tariff_gmp_SRCS := $(GMPROTO_SRCS) $(CONF_SRCS) agent/core/tariff.c agent/uplink/tariff_gmp.c \
	tests/unit/agent_test_tariff_gmp.c
agent_test_tariff_gmp_PKGS := $(GMPROTO_PKGS)

# the one INI reader every program uses (lib/conf/ini.c)
UNIT_TESTS += conf_test_ini
conf_test_ini_SRCS := $(CONF_SRCS) tests/unit/conf_test_ini.c

# the journal rate limiter meter_log() writes through
UNIT_TESTS += agent_test_log_limit
agent_test_log_limit_SRCS := agent/core/log_limit.c tests/unit/agent_test_log_limit.c

# meterd --generate-key: the meter's own key pair, the secret only in its file
UNIT_TESTS += agent_test_keygen
agent_test_keygen_SRCS := $(GMPROTO_SRCS) $(CONF_SRCS) agent/core/tariff.c agent/daemon/config.c \
	agent/uplink/sim900.c agent/uplink/credentials.c $(FILE_SRCS) agent/uplink/keygen.c \
	tests/unit/agent_test_keygen.c
agent_test_keygen_PKGS := $(GMPROTO_PKGS)

# the meter's time: clock policy, held energy, persisted layout (pure)
UNIT_TESTS += agent_test_clock
agent_test_clock_SRCS := $(CONF_SRCS) agent/core/tariff.c agent/core/registers.c agent/core/clock.c \
	agent/core/held.c agent/core/persist.c agent/hw/clock_set.c tests/unit/agent_test_clock.c

# what meterd reports to the town server: readings, snapshots, held energy
UNIT_TESTS += agent_test_town_reports
agent_test_town_reports_SRCS := $(CONF_SRCS) agent/core/tariff.c agent/uplink/town_reports.c \
	tests/unit/agent_test_town_reports.c

# the town server's commands on a real meter (tariff-next.conf, statuses, town key)
UNIT_TESTS += agent_test_town_commands
agent_test_town_commands_SRCS := $(filter-out agent/hw/%,$(agent_test_meter_SRCS:tests/unit/agent_test_meter.c=)) \
	agent/hw/sensor_replay.c agent/hw/relay_fake.c $(GMPROTO_SRCS) agent/uplink/credentials.c $(FILE_SRCS) \
	agent/uplink/tariff_gmp.c agent/uplink/town_commands.c tests/unit/agent_test_town_commands.c
agent_test_town_commands_PKGS := $(GMPROTO_PKGS)

# operator-signed commands on a real meter (replay memory, two operators, refusals)
UNIT_TESTS += agent_test_signed
agent_test_signed_SRCS := $(filter-out agent/hw/%,$(agent_test_meter_SRCS:tests/unit/agent_test_meter.c=)) \
	agent/hw/sensor_replay.c agent/hw/relay_fake.c $(GMPROTO_SRCS) $(GMSIGN_SRCS) \
	agent/uplink/credentials.c $(FILE_SRCS) agent/uplink/signed_commands.c tests/unit/agent_test_signed.c
agent_test_signed_PKGS := $(GMPROTO_PKGS)

UNIT_TESTS += bridge_test_tasmota
bridge_test_tasmota_SRCS := $(BRIDGE_CORE) tests/unit/bridge_test_tasmota.c

UNIT_TESTS += bridge_test_ha
bridge_test_ha_SRCS := $(BRIDGE_CORE) tests/unit/bridge_test_ha.c

UNIT_TESTS += bridge_test_ha_state
bridge_test_ha_state_SRCS := $(BRIDGE_CORE) tests/unit/bridge_test_ha_state.c

UNIT_TESTS += bridge_test_esphome
bridge_test_esphome_SRCS := $(BRIDGE_CORE) tests/unit/bridge_test_esphome.c

UNIT_TESTS += bridge_test_config
bridge_test_config_SRCS := $(BRIDGE_CORE) tests/unit/bridge_test_config.c

# home sensors ([sensor.NAME]): exact conversion, warm-up, hold, hysteresis, fault
UNIT_TESTS += agent_test_home_sensor
agent_test_home_sensor_SRCS := $(CONF_SRCS) agent/core/home_sensor.c tests/unit/agent_test_home_sensor.c

UNIT_TESTS += agent_test_home_iio
agent_test_home_iio_SRCS := $(CONF_SRCS) agent/core/home_sensor.c agent/hw/home_iio.c agent/hw/iio_sysfs.c tests/unit/agent_test_home_iio.c

UNIT_TESTS += agent_test_meter_home
agent_test_meter_home_SRCS := $(filter-out tests/unit/agent_test_meter.c,$(agent_test_meter_SRCS)) \
	agent/core/home_sensor.c agent/core/meter_home.c tests/unit/agent_test_meter_home.c

UNIT_TESTS += bridge_test_plug
bridge_test_plug_SRCS := agent/bridge/plug_ctl.c tests/unit/bridge_test_plug.c
