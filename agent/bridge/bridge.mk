# gm-mqttd, the MQTT bridge (Documentation/mqtt.md, design: issue 15).
# Its rooms: the bounded JSON reader, Tasmota (and later ESPHome) conventions,
# Home Assistant discovery, the broker client, the D-Bus link to meterd.
INCDIRS += agent/bridge

BRIDGE_CORE := $(CONF_SRCS) agent/bridge/json_scan.c agent/bridge/tasmota.c agent/bridge/json_out.c agent/bridge/ha_discovery.c \
	agent/bridge/ha_state.c agent/bridge/esphome.c agent/bridge/bridge_config.c agent/bridge/plug_ctl.c

# Both architectures: scripts/arm64-cache.sh puts libmosquitto-dev:arm64 in
# the arm64 sysroot.
PROGS += gm-mqttd
gm-mqttd_SRCS := $(BRIDGE_CORE) agent/core/tariff.c agent/bridge/mqtt_client.c agent/bridge/meter_link.c agent/bridge/main.c
gm-mqttd_PKGS := libsystemd libmosquitto
