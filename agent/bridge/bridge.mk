# gm-mqttd, the MQTT bridge (Documentation/mqtt.md, design: issue 15).
# Its rooms: the bounded JSON reader, Tasmota (and later ESPHome) conventions,
# Home Assistant discovery, the broker client, the D-Bus link to meterd.
INCDIRS += agent/bridge

BRIDGE_CORE := $(CONF_SRCS) agent/bridge/json_scan.c agent/bridge/tasmota.c agent/bridge/ha_discovery.c agent/bridge/bridge_config.c
