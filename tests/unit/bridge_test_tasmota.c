// SPDX-License-Identifier: GPL-2.0
/*
 * The bridge's JSON reader and Tasmota parsing, on payloads copied from
 * Tasmota's documentation and documented captures (research notes,
 * Documentation/mqtt.md): expectations are computed from the payload text.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gm_harness.h"
#include "json_scan.h"
#include "tasmota.h"

/* Vendor KB capture (LocalBytes, topic tele/livingroom-lamp/SENSOR), whitespace as published. */
static const char kb_sensor[] =
	"{\n  \"Time\": \"2022-01-11T21:57:38\",\n  \"ENERGY\": {\n"
	"    \"TotalStartTime\": \"2020-10-21T22:15:00\",\n    \"Total\": 3.705,\n"
	"    \"Yesterday\": 0.028,\n    \"Today\": 0.026,\n    \"Period\": 1,\n    \"Power\": 5,\n"
	"    \"ApparentPower\": 5,\n    \"ReactivePower\": 0,\n    \"Factor\": 1.00,\n"
	"    \"Voltage\": 233,\n    \"Current\": 0.021\n  }\n}";
/* Compact capture, same key order as the firmware's EnergyShow(). */
static const char compact_sensor[] =
	"{\"Time\":\"2020-03-11T17:49:33\",\"ENERGY\":{\"TotalStartTime\":\"2020-02-12T18:49:35\","
	"\"Total\":14.834,\"Yesterday\":0.553,\"Today\":0.176,\"Period\":0,\"Power\":0,"
	"\"ApparentPower\":0,\"ReactivePower\":0,\"Factor\":0.00,\"Voltage\":230,\"Current\":0.000}}";
/* Status 10 answer (stat/<t>/STATUS10). */
static const char status10[] =
	"{\"StatusSNS\":{\"Time\":\"2019-09-06T20:06:19\",\"ENERGY\":{\"TotalStartTime\":"
	"\"2019-08-18T11:07:55\",\"Total\":0.003,\"Yesterday\":0.000,\"Today\":0.003,\"Power\":26,"
	"\"ApparentPower\":25,\"ReactivePower\":25,\"Factor\":0.06,\"Voltage\":239,\"Current\":0.106}}}";
/* tele/tasmota/STATE from docs/ADC.md. */
static const char state[] =
	"{\"Time\":\"2019-10-31T11:14:59\",\"Uptime\":\"0T18:36:12\",\"UptimeSec\":66972,"
	"\"Vcc\":3.423,\"Heap\":28,\"SleepMode\":\"Dynamic\",\"Sleep\":50,\"LoadAvg\":19,"
	"\"MqttCount\":6,\"POWER\":\"OFF\",\"Wifi\":{\"AP\":1,\"SSId\":\"Tasmota\","
	"\"BSSId\":\"00:00:00:00:00:00\",\"Channel\":13,\"RSSI\":100,\"LinkCount\":1,"
	"\"Downtime\":\"0T00:00:06\"}}";

/* tele/tasmota/SENSOR from docs/MQTT.md (a plug without metering). */
static const char ds18b20[] = "{\"Time\":\"2017-02-16T10:13:52\", \"DS18B20\":{\"Temperature\":20.6}}";

static int64_t milli_of(const char *doc, const char *path)
{
	struct json_val v;
	int64_t m = INT64_MIN;

	if (json_find(doc, strlen(doc), path, &v) || json_milli(&v, &m))
		return INT64_MIN;
	return m;
}

TEST(json_paths_and_numbers)
{
	struct json_val v;

	EXPECT_EQ(3705, milli_of(kb_sensor, "ENERGY.Total"));
	EXPECT_EQ(5000, milli_of(kb_sensor, "ENERGY.Power"));
	EXPECT_EQ(21, milli_of(kb_sensor, "ENERGY.Current"));
	EXPECT_EQ(1000, milli_of(kb_sensor, "ENERGY.Factor"));
	EXPECT_EQ(66972000, milli_of(state, "UptimeSec"));
	EXPECT_EQ(100000, milli_of(state, "Wifi.RSSI"));
	/* A key of the same name at another level is not the path. */
	EXPECT_EQ(-ENOENT, json_find(state, strlen(state), "RSSI", &v));
	EXPECT_EQ(-ENOENT, json_find(kb_sensor, strlen(kb_sensor), "Power", &v));
	EXPECT_EQ(-ENOENT, json_find(kb_sensor, strlen(kb_sensor), "ENERGY.Power.x", &v));
	ASSERT_EQ(0, json_find(state, strlen(state), "POWER", &v));
	EXPECT_TRUE(json_str_eq(&v, "OFF"));
	ASSERT_EQ(0, json_find(kb_sensor, strlen(kb_sensor), "ENERGY", &v));
	EXPECT_EQ(JSON_OBJECT, v.type);
	EXPECT_EQ('{', v.p[0]);
	EXPECT_EQ('}', v.p[v.len - 1]);
}

TEST(json_milli_rounding_and_limits)
{
	struct json_val v = { .type = JSON_NUMBER };
	static const struct { const char *s; int rc; int64_t m; } c[] = {
		{ "0", 0, 0 }, { "-0.021", 0, -21 }, { "1.0005", 0, 1001 }, { "1.0004", 0, 1000 },
		{ "-1.0005", 0, -1001 }, { "230", 0, 230000 }, { "1e3", -EINVAL, 0 },
		{ "1.", -EINVAL, 0 }, { "-", -EINVAL, 0 }, { "4611686018427387", 0, 4611686018427387000 },
		{ "4611686018427388", -ERANGE, 0 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int64_t m = 0;

		v.p = c[i].s;
		v.len = strlen(c[i].s);
		EXPECT_EQ(c[i].rc, json_milli(&v, &m)) TH_LOG("%s", c[i].s);
		if (!c[i].rc) {
			EXPECT_EQ(c[i].m, m) TH_LOG("%s", c[i].s);
		}
	}
}

TEST(json_rejects_bad_documents)
{
	static const char *const bad[] = {
		"", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\" 1}", "[1,2", "{\"a\":01}", "{\"a\":1}x",
		"{\"a\":\"\\q\"}", "{\"a\":\"\\u12\"}", "{\"a\":tru}", "{\"a\":1,\"a\":2}",
		"{\"a\":\"x\ny\"}", "{'a':1}",
	};
	struct json_val v;
	char deep[2 * JSON_MAX_DEPTH + 8];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-EINVAL, json_find(bad[i], strlen(bad[i]), "a", &v)) TH_LOG("%s", bad[i]);
	}
	/* Nesting deeper than the limit is refused, not recursed into. */
	for (int i = 0; i <= JSON_MAX_DEPTH; i++)
		deep[n++] = '[';
	for (int i = 0; i <= JSON_MAX_DEPTH; i++)
		deep[n++] = ']';
	EXPECT_EQ(-EINVAL, json_find(deep, n, "a", &v));
	EXPECT_EQ(-ENOENT, json_find(deep + 1, n - 2, "a", &v));
	/* A key under an array never matches a path. */
	EXPECT_EQ(-ENOENT, json_find("[{\"a\":1}]", 9, "a", &v));
}

/*
 * Every proper prefix of a valid document is invalid; every single-byte
 * replacement by a JSON metacharacter gives an error or a value inside the
 * buffer. Heap copies of exactly the tested length let ASan/valgrind catch
 * any read past the end.
 */
TEST(json_truncations_and_replacements)
{
	static const char repl[] = { '"', '{', '}', '[', ']', ',', ':', '\\', '0', '-', '.', ' ', 0,
				     (char)0x80 };
	const char *docs[] = { kb_sensor, compact_sensor, status10, state };
	struct json_val v;

	for (size_t d = 0; d < 4; d++) {
		size_t len = strlen(docs[d]);
		char *copy = malloc(len);

		ASSERT_NE(NULL, copy);
		for (size_t i = 0; i < len; i++) {
			char *cut = malloc(i ? i : 1);

			ASSERT_NE(NULL, cut);
			memcpy(cut, docs[d], i);
			EXPECT_EQ(-EINVAL, json_find(cut, i, "ENERGY.Power", &v));
			free(cut);
		}
		for (size_t i = 0; i < len; i++) {
			for (size_t r = 0; r < sizeof(repl); r++) {
				int rc;

				memcpy(copy, docs[d], len);
				copy[i] = repl[r];
				rc = json_find(copy, len, "ENERGY.Power", &v);
				EXPECT_TRUE(rc == -EINVAL || rc == -ENOENT ||
					    (!rc && v.p >= copy && v.p + v.len <= copy + len));
			}
		}
		free(copy);
	}
}

TEST(tasmota_topics)
{
	struct tas_plug p;
	enum tas_kind k;
	char t[TAS_FULL_MAX];

	ASSERT_EQ(0, tas_plug_init(&p, "tasmota_A1B2C3", 0, NULL, NULL));
	ASSERT_EQ(0, tas_sub_topic(&p, TAS_SENSOR, t, sizeof(t)));
	EXPECT_STREQ("tele/tasmota_A1B2C3/SENSOR", t);
	ASSERT_EQ(0, tas_power_cmd_topic(&p, t, sizeof(t)));
	EXPECT_STREQ("cmnd/tasmota_A1B2C3/POWER", t);
	EXPECT_EQ(0, tas_match(&p, "stat/tasmota_A1B2C3/POWER", &k));
	EXPECT_EQ(TAS_POWER, k);
	EXPECT_EQ(0, tas_match(&p, "tele/tasmota_A1B2C3/LWT", &k));
	EXPECT_EQ(TAS_LWT, k);
	EXPECT_EQ(0, tas_match(&p, "stat/tasmota_A1B2C3/STATUS10", &k));
	EXPECT_EQ(TAS_STATUS10, k);
	/* Commands (the plug's own empty POWER query at connect), other plugs, other case. */
	EXPECT_EQ(-ENOENT, tas_match(&p, "cmnd/tasmota_A1B2C3/POWER", &k));
	EXPECT_EQ(-ENOENT, tas_match(&p, "tele/tasmota_A1B2C4/SENSOR", &k));
	EXPECT_EQ(-ENOENT, tas_match(&p, "tele/tasmota_a1b2c3/SENSOR", &k));
	EXPECT_EQ(-ENOENT, tas_match(&p, "tele/tasmota_A1B2C3/SENSOR/", &k));
	EXPECT_EQ(-ENOENT, tas_match(&p, "stat/tasmota_A1B2C3/POWER1", &k));

	ASSERT_EQ(0, tas_plug_init(&p, "sonoff4ch", 4, NULL, NULL));
	ASSERT_EQ(0, tas_power_cmd_topic(&p, t, sizeof(t)));
	EXPECT_STREQ("cmnd/sonoff4ch/POWER4", t);
	EXPECT_EQ(0, tas_match(&p, "stat/sonoff4ch/POWER4", &k));
	EXPECT_EQ(-ENOENT, tas_match(&p, "stat/sonoff4ch/POWER", &k));

	/* Topics that would be wildcards or levels, and silly words, are refused. */
	EXPECT_EQ(-EINVAL, tas_plug_init(&p, "a/b", 0, NULL, NULL));
	EXPECT_EQ(-EINVAL, tas_plug_init(&p, "+", 0, NULL, NULL));
	EXPECT_EQ(-EINVAL, tas_plug_init(&p, "#", 0, NULL, NULL));
	EXPECT_EQ(-EINVAL, tas_plug_init(&p, "", 0, NULL, NULL));
	EXPECT_EQ(-EINVAL, tas_plug_init(&p, "x", 9, NULL, NULL));
	EXPECT_EQ(-EINVAL, tas_plug_init(&p, "x", 0, "AN", "AN"));
	EXPECT_EQ(-EINVAL, tas_plug_init(&p, "x", 0, "A N", "AUS"));
}

TEST(tasmota_payloads)
{
	struct tas_plug p, p1, de;
	struct tas_report r;

	ASSERT_EQ(0, tas_plug_init(&p, "tasmota", 0, NULL, NULL));
	ASSERT_EQ(0, tas_plug_init(&p1, "tasmota", 1, NULL, NULL));
	ASSERT_EQ(0, tas_plug_init(&de, "tasmota", 0, "AN", "AUS"));

	ASSERT_EQ(0, tas_parse(&p, TAS_SENSOR, kb_sensor, strlen(kb_sensor), &r));
	EXPECT_EQ(TAS_HAVE_POWER | TAS_HAVE_TOTAL | TAS_HAVE_START, r.have);
	EXPECT_EQ(milli_of(kb_sensor, "ENERGY.Power"), r.power_mw);
	EXPECT_EQ(milli_of(kb_sensor, "ENERGY.Total"), r.total_wh);
	EXPECT_STREQ("2020-10-21T22:15:00", r.total_start);

	ASSERT_EQ(0, tas_parse(&p, TAS_SENSOR, compact_sensor, strlen(compact_sensor), &r));
	EXPECT_EQ(0, r.power_mw);
	EXPECT_EQ(14834, r.total_wh);

	ASSERT_EQ(0, tas_parse(&p, TAS_STATUS10, status10, strlen(status10), &r));
	EXPECT_EQ(milli_of(status10, "StatusSNS.ENERGY.Power"), r.power_mw);
	EXPECT_EQ(3, r.total_wh);
	/* A SENSOR without ENERGY (a DS18B20 plug, docs/MQTT.md) says nothing we use. */
	EXPECT_EQ(-ENOENT, tas_parse(&p, TAS_SENSOR, ds18b20, strlen(ds18b20), &r));
	EXPECT_EQ(-EINVAL, tas_parse(&p, TAS_SENSOR, "{\"ENERGY\":{\"Power\":-5}}", 24, &r));

	ASSERT_EQ(0, tas_parse(&p, TAS_STATE, state, strlen(state), &r));
	EXPECT_EQ(TAS_HAVE_ON, r.have);
	EXPECT_FALSE(r.on);
	EXPECT_EQ(-ENOENT, tas_parse(&p1, TAS_STATE, state, strlen(state), &r));

	ASSERT_EQ(0, tas_parse(&p, TAS_RESULT, "{\"POWER\":\"ON\"}", 14, &r));
	EXPECT_TRUE(r.on);
	EXPECT_EQ(-ENOENT, tas_parse(&p, TAS_RESULT, "{\"TelePeriod\":300}", 18, &r));
	EXPECT_EQ(-EINVAL, tas_parse(&p, TAS_RESULT, "{\"POWER\":\"on\"}", 14, &r));
	ASSERT_EQ(0, tas_parse(&de, TAS_RESULT, "{\"POWER\":\"AUS\"}", 15, &r));
	EXPECT_FALSE(r.on);

	ASSERT_EQ(0, tas_parse(&p, TAS_POWER, "ON", 2, &r));
	EXPECT_TRUE(r.on);
	ASSERT_EQ(0, tas_parse(&p, TAS_POWER, "OFF", 3, &r));
	EXPECT_FALSE(r.on);
	EXPECT_EQ(-EINVAL, tas_parse(&p, TAS_POWER, "OFF\n", 4, &r));
	EXPECT_EQ(-EINVAL, tas_parse(&p, TAS_POWER, "", 0, &r));

	ASSERT_EQ(0, tas_parse(&p, TAS_LWT, "Online", 6, &r));
	EXPECT_TRUE(r.online);
	ASSERT_EQ(0, tas_parse(&p, TAS_LWT, "Offline", 7, &r));
	EXPECT_FALSE(r.online);
	EXPECT_EQ(TAS_HAVE_ONLINE, r.have);
	EXPECT_EQ(-EINVAL, tas_parse(&p, TAS_LWT, "online", 6, &r));
}

TEST_HARNESS_MAIN
