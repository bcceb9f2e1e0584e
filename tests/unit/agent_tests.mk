# Host unit tests of the metering agent's pure logic (agent/).
UNIT_TESTS += agent_test_tariff
agent_test_tariff_SRCS := lib/parse.c agent/tariff.c tests/unit/agent_test_tariff.c

UNIT_TESTS += agent_test_registers
agent_test_registers_SRCS := lib/parse.c agent/tariff.c agent/profile.c agent/registers.c \
	tests/unit/agent_test_registers.c

UNIT_TESTS += agent_test_alloc
agent_test_alloc_SRCS := lib/parse.c agent/alloc.c tests/unit/agent_test_alloc.c

UNIT_TESTS += agent_test_protect
agent_test_protect_SRCS := agent/protect.c tests/unit/agent_test_protect.c

UNIT_TESTS += agent_test_config
agent_test_config_SRCS := lib/parse.c agent/tariff.c agent/config.c agent/modem_sim900.c tests/unit/agent_test_config.c

UNIT_TESTS += agent_test_store
agent_test_store_SRCS := agent/crc32.c agent/profile.c agent/store.c tests/unit/agent_test_store.c

UNIT_TESTS += agent_test_meter
agent_test_meter_SRCS := lib/parse.c agent/tariff.c agent/tariff_file.c agent/profile.c \
	agent/registers.c agent/alloc.c agent/protect.c agent/config.c agent/modem_sim900.c agent/crc32.c agent/store.c \
	agent/meter.c agent/meter_actions.c agent/uplink.c agent/sensor_replay.c agent/relay_fake.c \
	tests/unit/agent_test_meter.c

UNIT_TESTS += agent_test_tripper
agent_test_tripper_SRCS := agent/sensor_replay.c agent/relay_fake.c agent/tripper.c \
	tests/unit/agent_test_tripper.c
agent_test_tripper_LDLIBS := -pthread

UNIT_TESTS += agent_test_ct_setup
agent_test_ct_setup_SRCS := agent/ct_setup.c tests/unit/agent_test_ct_setup.c

UNIT_TESTS += agent_test_sensor_iio
agent_test_sensor_iio_SRCS := lib/parse.c agent/tariff.c agent/config.c agent/modem_sim900.c agent/sensor_iio.c \
	tests/unit/agent_test_sensor_iio.c
agent_test_sensor_iio_CFLAGS := $(shell pkg-config --cflags libiio)

# meterd's uplink: [uplink]/[modem]/[neighbour.*] config, credentials file,
# tariff updates from the town server
UNIT_TESTS += agent_test_uplink_config
agent_test_uplink_config_SRCS := lib/parse.c agent/tariff.c agent/config.c agent/modem_sim900.c \
	tests/unit/agent_test_uplink_config.c

UNIT_TESTS += agent_test_credentials
agent_test_credentials_SRCS := $(GMPROTO_SRCS) lib/parse.c agent/credentials.c \
	tests/unit/agent_test_credentials.c
agent_test_credentials_CFLAGS := $(GMPROTO_CFLAGS)
agent_test_credentials_PKGS := $(GMPROTO_PKGS)

UNIT_TESTS += agent_test_tariff_gmp
agent_test_tariff_gmp_SRCS := $(GMPROTO_SRCS) lib/parse.c agent/tariff.c agent/tariff_gmp.c \
	tests/unit/agent_test_tariff_gmp.c
agent_test_tariff_gmp_CFLAGS := $(GMPROTO_CFLAGS)
agent_test_tariff_gmp_PKGS := $(GMPROTO_PKGS)
