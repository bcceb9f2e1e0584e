// SPDX-License-Identifier: GPL-2.0
#include "ha_discovery.h"
#include "json_out.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

const struct ha_entity ha_meter_entities[] = {
	{ "import_energy", HA_SENSOR, "Grid import", "energy", "kWh", "total_increasing", NULL },
	{ "export_energy", HA_SENSOR, "Grid export", "energy", "kWh", "total_increasing", NULL },
	{ "renewable_energy", HA_SENSOR, "Renewable energy", "energy", "kWh", "total_increasing", NULL },
	{ "power", HA_SENSOR, "Power", "power", "W", "measurement", NULL },
	{ "voltage", HA_SENSOR, "Voltage", "voltage", "V", "measurement", NULL },
	{ "current", HA_SENSOR, "Current", "current", "A", "measurement", NULL },
	{ "power_factor", HA_SENSOR, "Power factor", "power_factor", NULL, "measurement", NULL },
	{ "frequency", HA_SENSOR, "Frequency", "frequency", "Hz", "measurement", NULL },
	{ "cost", HA_SENSOR, "Price so far", "monetary", "$currency", "total", NULL },
	{ "tariff_period", HA_SENSOR, "Tariff period", "enum", NULL, NULL, NULL },
	{ "relay", HA_BINARY_SENSOR, "Supply relay", "power", NULL, NULL, NULL },
	/* meterd's alarms (agent/core/meter.c alarm_names, '-' -> '_') */
	{ "alarm_over_voltage", HA_BINARY_SENSOR, "Over-voltage", "safety", NULL, NULL, NULL },
	{ "alarm_under_voltage", HA_BINARY_SENSOR, "Under-voltage", "safety", NULL, NULL, NULL },
	{ "alarm_over_current", HA_BINARY_SENSOR, "Over-current", "safety", NULL, NULL, NULL },
	{ "alarm_lockout", HA_BINARY_SENSOR, "Protection lockout", "problem", NULL, NULL, NULL },
	{ "alarm_supply_deficit", HA_BINARY_SENSOR, "Supply deficit", "problem", NULL, NULL, NULL },
	{ "alarm_sensor_failure", HA_BINARY_SENSOR, "Sensor failure", "problem", NULL, NULL, NULL },
	{ "alarm_store_corrupt", HA_BINARY_SENSOR, "Store corrupt", "problem", NULL, NULL, NULL },
	{ "alarm_store_error", HA_BINARY_SENSOR, "Store error", "problem", NULL, NULL, NULL },
	{ "alarm_protection_degraded", HA_BINARY_SENSOR, "Protection degraded", "problem", NULL, NULL, NULL },
	{ "alarm_clock_suspect", HA_BINARY_SENSOR, "Clock suspect", "problem", NULL, NULL, NULL },
	{ "alarm_reversed_ct", HA_BINARY_SENSOR, "Reversed CT", "problem", NULL, NULL, NULL },
	{ "alarm_ct_tamper", HA_BINARY_SENSOR, "CT tamper", "tamper", NULL, NULL, NULL },
	/* issue 15: per-item detail is in the Loads / HomeSensors entities below */
	{ "alarm_load_unreachable", HA_BINARY_SENSOR, "Load unreachable", "problem", NULL, NULL, NULL },
	{ "alarm_load_mismatch", HA_BINARY_SENSOR, "Load mismatch", "problem", NULL, NULL, NULL },
	{ "alarm_gas", HA_BINARY_SENSOR, "Gas", "gas", NULL, NULL, NULL },
	{ "alarm_home_sensor", HA_BINARY_SENSOR, "Home sensor", "problem", NULL, NULL, NULL },
};
const size_t ha_meter_nentities = sizeof(ha_meter_entities) / sizeof(ha_meter_entities[0]);

static const char *const component_name[] = { [HA_SENSOR] = "sensor",
					       [HA_BINARY_SENSOR] = "binary_sensor" };

static void kv(struct json_out *o, const char *key, const char *val)
{
	json_out_raw(o, ",");
	json_out_str(o, key);
	json_out_raw(o, ":");
	json_out_str(o, val);
}

bool ha_ident_ok(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static bool topic_ok(const char *s)
{
	return s && *s && !strpbrk(s, "+#") && s[strlen(s) - 1] != '/';
}

static bool name_ok(const char *s)
{
	return ha_ident_ok(s) && strlen(s) < 32;
}

static void store(struct ha_entity_store *st, enum ha_component c, const char *device_class,
		  const char *state_class)
{
	st->e = (struct ha_entity){ .object = st->object, .component = c, .name = st->name,
				    .device_class = device_class,
				    .unit = st->unit[0] ? st->unit : NULL,
				    .state_class = state_class };
}

int ha_plug_entities(const char *plug, struct ha_entity_store out[HA_PLUG_NENTITIES])
{
	if (!name_ok(plug))
		return -EINVAL;
	memset(out, 0, sizeof(*out) * HA_PLUG_NENTITIES);
	snprintf(out[0].object, sizeof(out[0].object), "plug_%s", plug);
	snprintf(out[0].name, sizeof(out[0].name), "Plug %s", plug);
	store(&out[0], HA_BINARY_SENSOR, "power", NULL);
	snprintf(out[1].object, sizeof(out[1].object), "plug_%s_power", plug);
	snprintf(out[1].name, sizeof(out[1].name), "Plug %s power", plug);
	snprintf(out[1].unit, sizeof(out[1].unit), "W");
	store(&out[1], HA_SENSOR, "power", "measurement");
	return HA_PLUG_NENTITIES;
}

/* HA's spelling of a temperature unit, or NULL when it is not one. */
static const char *temperature_unit(const char *u)
{
	static const char *const map[][2] = {
		{ "°C", "°C" }, { "C", "°C" }, { "degC", "°C" }, { "celsius", "°C" },
		{ "°F", "°F" }, { "F", "°F" }, { "degF", "°F" }, { "fahrenheit", "°F" },
		{ "K", "K" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(u, map[i][0]))
			return map[i][1];
	return NULL;
}

int ha_home_entities(const char *sensor, const char *kind, const char *unit,
		     struct ha_entity_store out[HA_HOME_NENTITIES])
{
	const char *dc = NULL, *alarm_dc, *u = unit ? unit : "";

	if (!name_ok(sensor) || !kind || strlen(u) >= HA_UNIT_MAX)
		return -EINVAL;
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
			return -EINVAL;
	if (!strcmp(kind, "gas")) {
		alarm_dc = "gas";
	} else if (!strcmp(kind, "temperature")) {
		alarm_dc = "heat";
		if (temperature_unit(u)) {
			dc = "temperature";
			u = temperature_unit(u);
		}
	} else if (!strcmp(kind, "generic")) {
		alarm_dc = "problem";
	} else {
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out) * HA_HOME_NENTITIES);
	snprintf(out[0].object, sizeof(out[0].object), "home_%s", sensor);
	snprintf(out[0].name, sizeof(out[0].name), "%s", sensor);
	snprintf(out[0].unit, sizeof(out[0].unit), "%s", u);
	store(&out[0], HA_SENSOR, dc, "measurement");
	snprintf(out[1].object, sizeof(out[1].object), "home_%s_alarm", sensor);
	snprintf(out[1].name, sizeof(out[1].name), "%s alarm", sensor);
	store(&out[1], HA_BINARY_SENSOR, alarm_dc, NULL);
	return HA_HOME_NENTITIES;
}

static int check(const struct ha_device *d, const struct ha_entity *e)
{
	if (!topic_ok(d->prefix) || !topic_ok(d->base) || !ha_ident_ok(d->meter_id) ||
	    !ha_ident_ok(e->object) || (unsigned)e->component > HA_BINARY_SENSOR || !e->name)
		return -EINVAL;
	return 0;
}

int ha_config_topic(const struct ha_device *d, const struct ha_entity *e, char *buf, size_t len)
{
	int k;

	if (check(d, e))
		return -EINVAL;
	k = snprintf(buf, len, "%s/%s/gridmeter_%s_%s/config", d->prefix, component_name[e->component],
		     d->meter_id, e->object);
	return k < 0 || (size_t)k >= len ? -ENOSPC : 0;
}

int ha_config_payload(const struct ha_device *d, const struct ha_entity *e, char *buf, size_t len)
{
	struct json_out o = { .p = buf, .len = len };
	char tmp[160];

	if (check(d, e) || !len)
		return -EINVAL;
	snprintf(tmp, sizeof(tmp), "gridmeter_%s_%s", d->meter_id, e->object);
	json_out_raw(&o, "{\"unique_id\":");
	json_out_str(&o, tmp);
	kv(&o, "object_id", tmp);
	kv(&o, "name", e->name);
	snprintf(tmp, sizeof(tmp), "%s/state", d->base);
	kv(&o, "state_topic", tmp);
	snprintf(tmp, sizeof(tmp), "{{ value_json.%s }}", e->object);
	kv(&o, "value_template", tmp);
	snprintf(tmp, sizeof(tmp), "%s/status", d->base);
	kv(&o, "availability_topic", tmp);
	kv(&o, "payload_available", "online");
	kv(&o, "payload_not_available", "offline");
	if (e->component == HA_BINARY_SENSOR) {
		kv(&o, "payload_on", "ON");
		kv(&o, "payload_off", "OFF");
	}
	if (e->device_class)
		kv(&o, "device_class", e->device_class);
	if (e->unit) {
		if (!strcmp(e->unit, "$currency")) {
			if (!d->currency || strlen(d->currency) != 3)
				return -EINVAL;
			kv(&o, "unit_of_measurement", d->currency);
		} else {
			kv(&o, "unit_of_measurement", e->unit);
		}
	}
	if (e->state_class)
		kv(&o, "state_class", e->state_class);
	if (e->device_class && !strcmp(e->device_class, "enum")) {
		const char *const *opt = e->options ? e->options : d->tariff_periods;

		if (!opt || !opt[0])
			return -EINVAL;
		json_out_raw(&o, ",\"options\":[");
		for (size_t i = 0; opt[i]; i++) {
			json_out_raw(&o, i ? "," : "");
			json_out_str(&o, opt[i]);
		}
		json_out_raw(&o, "]");
	}
	json_out_raw(&o, ",\"device\":{\"identifiers\":[");
	snprintf(tmp, sizeof(tmp), "gridmeter_%s", d->meter_id);
	json_out_str(&o, tmp);
	json_out_raw(&o, "]");
	snprintf(tmp, sizeof(tmp), "gridmeter %s", d->meter_id);
	kv(&o, "name", tmp);
	kv(&o, "manufacturer", "gridmeter");
	kv(&o, "model", "gateway");
	if (d->sw_version)
		kv(&o, "sw_version", d->sw_version);
	json_out_raw(&o, "},\"origin\":{\"name\":\"gridmeter\"");
	if (d->sw_version)
		kv(&o, "sw_version", d->sw_version);
	json_out_raw(&o, "}}");
	return o.over ? -ENOSPC : (int)o.n;
}
