// SPDX-License-Identifier: GPL-2.0
/*
 * Home Assistant discovery payloads against HA's documented schema, kept
 * here independently of the builder: sensor device classes with their
 * accepted units and state classes (developers.home-assistant
 * docs/core/entity/sensor.md, core sensor/const.py DEVICE_CLASS_STATE_CLASSES),
 * binary_sensor device classes, the keys every entity needs, the Energy
 * dashboard's requirements (energy/validate.py), and the topic layout
 * <prefix>/<component>/<object_id>/config with object_id = unique_id.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "ha_discovery.h"
#include "json_scan.h"

struct sensor_rule {
	const char *device_class;
	const char *units;	/* space-separated, "-" = no unit allowed, "*" = ISO 4217 code */
	const char *state_classes;	/* space-separated, "-" = none allowed */
};

static const struct sensor_rule rules[] = {
	{ "energy", "J kJ MJ GJ mWh Wh kWh MWh GWh TWh", "total total_increasing" },
	{ "power", "mW W kW MW GW TW", "measurement" },
	{ "voltage", "V mV µV kV MV", "measurement" },
	{ "current", "A mA", "measurement" },
	{ "power_factor", "- %", "measurement" },
	{ "frequency", "Hz kHz MHz GHz mHz", "measurement" },
	{ "monetary", "*", "total" },
	{ "temperature", "°C °F K", "measurement" },
	{ "enum", "-", "-" },
};

/* developers.home-assistant binary-sensor docs: the classes used here */
static const char *const binary_classes[] = { "power", "problem", "safety", "gas", "tamper",
					      "connectivity", "heat", NULL };

static const char *const pfx_periods[] = { "night", "day", "peak", NULL };

static const struct ha_device dev = { .prefix = "homeassistant", .base = "gridmeter/101",
				      .meter_id = "101", .sw_version = "1.0", .currency = "EUR",
				      .tariff_periods = pfx_periods };

/* The string value at key, copied (NULL if absent or not a plain string). */
static char *get(const char *doc, size_t n, const char *key, char *buf, size_t len)
{
	struct json_val v;

	if (json_find(doc, n, key, &v) || v.type != JSON_STRING || v.len >= len ||
	    memchr(v.p, '\\', v.len))
		return NULL;
	memcpy(buf, v.p, v.len);
	buf[v.len] = 0;
	return buf;
}

static int word_in(const char *w, const char *list)
{
	size_t n = strlen(w);

	for (const char *p = list; *p;) {
		const char *e = strchr(p, ' ');
		size_t k = e ? (size_t)(e - p) : strlen(p);

		if (k == n && !memcmp(p, w, n))
			return 1;
		p += k + (e ? 1 : 0);
	}
	return 0;
}

/* Every entity the bridge can announce: the meter's, two plugs', home sensors of each kind. */
struct all {
	struct ha_entity_store plug[2][HA_PLUG_NENTITIES];
	struct ha_entity_store home[5][HA_HOME_NENTITIES];
	const struct ha_entity *e[64];
	size_t n;
};

static void collect(struct all *x)
{
	static const char *const kinds[5][3] = {
		{ "kitchen_gas", "gas", "mV" }, { "hall", "temperature", "C" },
		{ "attic", "temperature", "°F" }, { "cellar", "temperature", "mV" },
		{ "tank", "generic", "%" },
	};

	x->n = 0;
	for (size_t i = 0; i < ha_meter_nentities; i++)
		x->e[x->n++] = &ha_meter_entities[i];
	ha_plug_entities("washer", x->plug[0]);
	ha_plug_entities("heater_2", x->plug[1]);
	for (size_t i = 0; i < 2; i++)
		for (size_t j = 0; j < HA_PLUG_NENTITIES; j++)
			x->e[x->n++] = &x->plug[i][j].e;
	for (size_t i = 0; i < 5; i++) {
		ha_home_entities(kinds[i][0], kinds[i][1], kinds[i][2], x->home[i]);
		for (size_t j = 0; j < HA_HOME_NENTITIES; j++)
			x->e[x->n++] = &x->home[i][j].e;
	}
}

TEST(every_payload_follows_the_schema)
{
	char topic[256], buf[2048], a[128], b[128], c[128], t[192];
	int energy = 0;
	static struct all x;

	collect(&x);
	for (size_t i = 0; i < x.n; i++) {
		const struct ha_entity *e = x.e[i];
		int n = ha_config_payload(&dev, e, buf, sizeof(buf));
		struct json_val v;
		char *dc, *unit, *sc;

		ASSERT_LT(0, n) TH_LOG("%s", e->object);
		ASSERT_EQ(0, ha_config_topic(&dev, e, topic, sizeof(topic)));
		/* valid JSON with the keys every entity needs */
		ASSERT_EQ(0, json_find(buf, (size_t)n, "unique_id", &v)) TH_LOG("%s", buf);
		ASSERT_NE(NULL, get(buf, (size_t)n, "unique_id", a, sizeof(a)));
		snprintf(t, sizeof(t), "homeassistant/%s/%s/config",
			 e->component == HA_SENSOR ? "sensor" : "binary_sensor", a);
		EXPECT_STREQ(t, topic);
		EXPECT_STREQ("gridmeter/101/state", get(buf, (size_t)n, "state_topic", b, sizeof(b)));
		EXPECT_STREQ("gridmeter/101/status", get(buf, (size_t)n, "availability_topic", b, sizeof(b)));
		EXPECT_NE(NULL, get(buf, (size_t)n, "name", b, sizeof(b)));
		snprintf(t, sizeof(t), "{{ value_json.%s }}", e->object);
		EXPECT_STREQ(t, get(buf, (size_t)n, "value_template", b, sizeof(b)));
		EXPECT_EQ(0, json_find(buf, (size_t)n, "device.identifiers", &v));
		EXPECT_EQ(JSON_ARRAY, v.type);
		EXPECT_NE(NULL, get(buf, (size_t)n, "origin.name", b, sizeof(b)));
		/* unique ids are unique */
		for (size_t j = 0; j < i; j++) {
			EXPECT_STRNE(e->object, x.e[j]->object);
		}

		dc = get(buf, (size_t)n, "device_class", a, sizeof(a));
		unit = get(buf, (size_t)n, "unit_of_measurement", b, sizeof(b));
		sc = get(buf, (size_t)n, "state_class", c, sizeof(c));
		if (e->component == HA_BINARY_SENSOR) {
			int ok = 0;

			ASSERT_NE(NULL, dc);
			for (size_t k = 0; binary_classes[k]; k++)
				ok |= !strcmp(dc, binary_classes[k]);
			EXPECT_TRUE(ok) TH_LOG("%s: binary_sensor class %s", e->object, dc);
			EXPECT_EQ(NULL, unit);
			EXPECT_EQ(NULL, sc);
			EXPECT_STREQ("ON", get(buf, (size_t)n, "payload_on", t, sizeof(t)));
			continue;
		}
		if (!dc) {
			/* no device class: any unit, a state class so that HA keeps statistics */
			EXPECT_STREQ("measurement", sc) TH_LOG("%s", e->object);
			continue;
		}
		{
			const struct sensor_rule *r = NULL;

			for (size_t k = 0; k < sizeof(rules) / sizeof(rules[0]); k++)
				if (!strcmp(rules[k].device_class, dc))
					r = &rules[k];
			ASSERT_NE(NULL, r) TH_LOG("%s: unknown device class %s", e->object, dc);
			if (!unit) {
				EXPECT_TRUE(word_in("-", r->units)) TH_LOG("%s needs a unit", e->object);
			} else if (!strcmp(r->units, "*")) {
				EXPECT_EQ(3, (int)strlen(unit));
			} else {
				EXPECT_TRUE(word_in(unit, r->units)) TH_LOG("%s: unit %s", e->object, unit);
			}
			if (!sc) {
				EXPECT_TRUE(word_in("-", r->state_classes));
			} else {
				EXPECT_TRUE(word_in(sc, r->state_classes)) TH_LOG("%s: %s", e->object, sc);
			}
		}
		if (!strcmp(dc, "enum")) {
			EXPECT_EQ(0, json_find(buf, (size_t)n, "options", &v));
			EXPECT_EQ(JSON_ARRAY, v.type);
			EXPECT_EQ(0, strncmp(v.p, "[\"night\",\"day\",\"peak\"]", v.len));
		}
		/* Energy dashboard: energy, kWh, total_increasing for the three registers. */
		if (!strcmp(dc, "energy") && unit && !strcmp(unit, "kWh") && sc &&
		    !strcmp(sc, "total_increasing"))
			energy++;
	}
	EXPECT_EQ(3, energy);
}

TEST(plug_and_home_entities)
{
	struct ha_entity_store p[HA_PLUG_NENTITIES], h[HA_HOME_NENTITIES];
	char buf[2048], topic[256];
	int n;

	ASSERT_EQ(HA_PLUG_NENTITIES, ha_plug_entities("washer", p));
	EXPECT_STREQ("plug_washer", p[0].e.object);
	EXPECT_EQ(HA_BINARY_SENSOR, p[0].e.component);
	EXPECT_STREQ("power", p[0].e.device_class);
	EXPECT_STREQ("plug_washer_power", p[1].e.object);
	EXPECT_EQ(HA_SENSOR, p[1].e.component);
	EXPECT_STREQ("W", p[1].e.unit);
	/* read-only: no command topic anywhere in the payload */
	n = ha_config_payload(&dev, &p[0].e, buf, sizeof(buf));
	ASSERT_LT(0, n);
	EXPECT_EQ(NULL, strstr(buf, "command_topic"));
	ASSERT_EQ(0, ha_config_topic(&dev, &p[0].e, topic, sizeof(topic)));
	EXPECT_STREQ("homeassistant/binary_sensor/gridmeter_101_plug_washer/config", topic);

	ASSERT_EQ(HA_HOME_NENTITIES, ha_home_entities("hall", "temperature", "degC", h));
	EXPECT_STREQ("temperature", h[0].e.device_class);
	EXPECT_STREQ("°C", h[0].e.unit);
	EXPECT_STREQ("home_hall_alarm", h[1].e.object);
	EXPECT_STREQ("heat", h[1].e.device_class);
	ASSERT_EQ(HA_HOME_NENTITIES, ha_home_entities("kitchen_gas", "gas", "ppm", h));
	/* HA's gas class is a metered volume: a concentration has no device class */
	EXPECT_EQ(NULL, h[0].e.device_class);
	EXPECT_STREQ("ppm", h[0].e.unit);
	EXPECT_STREQ("gas", h[1].e.device_class);
	ASSERT_EQ(HA_HOME_NENTITIES, ha_home_entities("tank", "generic", "", h));
	EXPECT_EQ(NULL, h[0].e.unit);
	EXPECT_STREQ("problem", h[1].e.device_class);

	EXPECT_EQ(-EINVAL, ha_plug_entities("Washer", p));
	EXPECT_EQ(-EINVAL, ha_plug_entities("", p));
	EXPECT_EQ(-EINVAL, ha_plug_entities("a23456789012345678901234567890123", p));
	EXPECT_EQ(-EINVAL, ha_home_entities("x", "smoke", "ppm", h));
	EXPECT_EQ(-EINVAL, ha_home_entities("x", "gas", "p\"pm", h));
	EXPECT_EQ(-EINVAL, ha_home_entities("x", "gas", "0123456789abcdef", h));
	EXPECT_EQ(-EINVAL, ha_home_entities("x y", "gas", "ppm", h));
}

TEST(small_buffers_and_bad_names)
{
	char buf[2048];
	struct ha_device bad = dev;
	struct ha_entity e = ha_meter_entities[0];
	int full = ha_config_payload(&dev, &e, buf, sizeof(buf));

	ASSERT_LT(0, full);
	for (size_t len = 1; len <= (size_t)full; len++) {
		char *p = malloc(len);

		ASSERT_NE(NULL, p);
		EXPECT_EQ(-ENOSPC, ha_config_payload(&dev, &e, p, len));
		free(p);
	}
	bad.base = "gridmeter/#";
	EXPECT_EQ(-EINVAL, ha_config_payload(&bad, &e, buf, sizeof(buf)));
	bad = dev;
	bad.meter_id = "10 1";
	EXPECT_EQ(-EINVAL, ha_config_topic(&bad, &e, buf, sizeof(buf)));
	bad = dev;
	bad.currency = NULL;
	for (size_t i = 0; i < ha_meter_nentities; i++)
		if (ha_meter_entities[i].unit && !strcmp(ha_meter_entities[i].unit, "$currency")) {
			EXPECT_EQ(-EINVAL, ha_config_payload(&bad, &ha_meter_entities[i], buf, sizeof(buf)));
		}
	/* A name with quotes stays valid JSON. */
	e.name = "My \"main\" meter\n";
	full = ha_config_payload(&dev, &e, buf, sizeof(buf));
	ASSERT_LT(0, full);
	{
		struct json_val v;

		EXPECT_EQ(0, json_find(buf, (size_t)full, "name", &v));
	}
}

TEST_HARNESS_MAIN
