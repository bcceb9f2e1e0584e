/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Home Assistant MQTT discovery for the meter: one retained config message
 * per entity on <prefix>/<component>/<unique_id>/config (object_id =
 * unique_id, no node_id, as HA's documentation recommends), long key names
 * only, every entity reading its value from the one JSON state message on
 * <base>/state and its availability from <base>/status (online/offline, the
 * bridge's will). Device classes, units and state classes follow HA's
 * sensor documentation (see Documentation/mqtt.md); energy registers are
 * total_increasing kWh so that they can be chosen in the Energy dashboard.
 */
#ifndef GM_HA_DISCOVERY_H
#define GM_HA_DISCOVERY_H

#include <stddef.h>

enum ha_component { HA_SENSOR, HA_BINARY_SENSOR };

struct ha_device {
	const char *prefix;	/* discovery prefix, "homeassistant" */
	const char *base;	/* our topics, e.g. "gridmeter/101" */
	const char *meter_id;	/* "101": unique ids are gridmeter_<meter_id>_<object> */
	const char *sw_version;
	const char *currency;	/* ISO 4217 code of the tariff, e.g. "EUR" */
	const char *const *tariff_periods;	/* the tariff's period names, NULL-ended */
};

struct ha_entity {
	const char *object;	/* [a-z0-9_]: unique id suffix and key in the state JSON */
	enum ha_component component;
	const char *name;
	const char *device_class;	/* NULL: none */
	const char *unit;		/* NULL: none; "$currency": the device's currency */
	const char *state_class;	/* NULL: none */
	const char *const *options;	/* enum sensors: NULL-ended; NULL: the tariff's periods */
};

/* The meter's own entities (registers, measurements, cost, tariff period, relay, alarms). */
extern const struct ha_entity ha_meter_entities[];
extern const size_t ha_meter_nentities;

/* <prefix>/<component>/gridmeter_<id>_<object>/config: 0 or -ENOSPC/-EINVAL. */
int ha_config_topic(const struct ha_device *d, const struct ha_entity *e, char *buf, size_t len);
/* The JSON config payload: its length, or -ENOSPC/-EINVAL. */
int ha_config_payload(const struct ha_device *d, const struct ha_entity *e, char *buf, size_t len);

#endif
