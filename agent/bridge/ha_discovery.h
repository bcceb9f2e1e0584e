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

#include <stdbool.h>
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

/*
 * Entities built at run time (a plug, a home sensor) in caller storage: `e`
 * points into the arrays beside it, so an ha_entity_store must not be copied
 * (build it where it lives). Names are meterd's [load.NAME] / [sensor.NAME]:
 * 1-31 characters of a-z 0-9 _.
 */
#define HA_OBJECT_MAX	48
#define HA_NAME_MAX	64
#define HA_UNIT_MAX	16

struct ha_entity_store {
	struct ha_entity e;
	char object[HA_OBJECT_MAX];
	char name[HA_NAME_MAX];
	char unit[HA_UNIT_MAX];
};

/*
 * A plug: out[0] plug_<name> (binary_sensor, device_class power: its switch,
 * read-only since meterd owns it), out[1] plug_<name>_power (sensor power W
 * measurement). Returns HA_PLUG_NENTITIES or -EINVAL.
 */
#define HA_PLUG_NENTITIES	2
int ha_plug_entities(const char *plug, struct ha_entity_store out[HA_PLUG_NENTITIES]);

/*
 * A home sensor of meterd's HomeSensors (kind "temperature" | "gas" |
 * "generic", unit as configured): out[0] home_<name> (sensor, measurement;
 * temperature in °C/°F/K gets device_class temperature, the unit spelled as
 * HA wants it ("C", "degC" -> "°C"); gas and anything else no device class,
 * since HA's "gas" class is a metered volume, not a concentration), out[1]
 * home_<name>_alarm (binary_sensor: gas -> gas, temperature -> heat, else
 * problem). Returns HA_HOME_NENTITIES or -EINVAL (bad name, unknown kind,
 * unit longer than HA_UNIT_MAX - 1 or with control characters or quotes).
 */
#define HA_HOME_NENTITIES	2
int ha_home_entities(const char *sensor, const char *kind, const char *unit,
		     struct ha_entity_store out[HA_HOME_NENTITIES]);

/* An object or meter id: 1 or more of a-z 0-9 _ (HA's object_id alphabet, lower case). */
bool ha_ident_ok(const char *s);

/* <prefix>/<component>/gridmeter_<id>_<object>/config: 0 or -ENOSPC/-EINVAL. */
int ha_config_topic(const struct ha_device *d, const struct ha_entity *e, char *buf, size_t len);
/* The JSON config payload: its length, or -ENOSPC/-EINVAL. */
int ha_config_payload(const struct ha_device *d, const struct ha_entity *e, char *buf, size_t len);

#endif
