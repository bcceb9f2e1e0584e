// SPDX-License-Identifier: GPL-2.0
/*
 * ESPHome plugs (esphome.c): the topics ESPHome's MQTT component uses
 * (<prefix>/status, <prefix>/switch/<id>/state and /command,
 * <prefix>/sensor/<id>/state), exact matching only, and the payloads as the
 * firmware sends them: "online"/"offline", "ON"/"OFF", a sensor value printed
 * with its accuracy_decimals, "nan" for a sensor without a value.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "esphome.h"

TEST(topics)
{
	struct esp_plug p;
	char t[160];
	enum esp_kind k;

	ASSERT_EQ(0, esp_plug_init(&p, "washer-plug", "relay", "power"));
	ASSERT_EQ(0, esp_sub_topic(&p, ESP_STATUS, t, sizeof(t)));
	EXPECT_STREQ("washer-plug/status", t);
	ASSERT_EQ(0, esp_sub_topic(&p, ESP_SWITCH_STATE, t, sizeof(t)));
	EXPECT_STREQ("washer-plug/switch/relay/state", t);
	ASSERT_EQ(0, esp_sub_topic(&p, ESP_POWER, t, sizeof(t)));
	EXPECT_STREQ("washer-plug/sensor/power/state", t);
	ASSERT_EQ(0, esp_cmd_topic(&p, t, sizeof(t)));
	EXPECT_STREQ("washer-plug/switch/relay/command", t);

	/* each subscribed topic matches its own kind and nothing else does */
	for (unsigned i = 0; i < ESP_NKINDS; i++) {
		ASSERT_EQ(0, esp_sub_topic(&p, (enum esp_kind)i, t, sizeof(t)));
		k = ESP_NKINDS;
		EXPECT_EQ(0, esp_match(&p, t, &k));
		EXPECT_EQ(i, (unsigned)k);
		t[strlen(t) - 1] ^= 0x20;	/* case matters in MQTT topics */
		EXPECT_EQ(-ENOENT, esp_match(&p, t, &k));
	}
	EXPECT_EQ(-ENOENT, esp_match(&p, "washer-plug/switch/relay/command", &k));
	EXPECT_EQ(-ENOENT, esp_match(&p, "washer-plug/switch/+/state", &k));
	EXPECT_EQ(-ENOENT, esp_match(&p, "washer-plug/#", &k));
	EXPECT_EQ(-ENOENT, esp_match(&p, "washer-plug/status/", &k));
	EXPECT_EQ(-ENOENT, esp_match(&p, "other/status", &k));
	EXPECT_EQ(-ENOENT, esp_match(&p, "", &k));

	/* without a power sensor */
	ASSERT_EQ(0, esp_plug_init(&p, "home/esp1", "plug", ""));
	EXPECT_EQ(-ENOENT, esp_sub_topic(&p, ESP_POWER, t, sizeof(t)));
	EXPECT_EQ(-ENOENT, esp_match(&p, "home/esp1/sensor//state", &k));
	ASSERT_EQ(0, esp_plug_init(&p, "home/esp1", "plug", NULL));
	EXPECT_EQ(-ENOENT, esp_sub_topic(&p, ESP_POWER, t, sizeof(t)));
	ASSERT_EQ(0, esp_sub_topic(&p, ESP_SWITCH_STATE, t, sizeof(t)));
	EXPECT_STREQ("home/esp1/switch/plug/state", t);
}

TEST(every_short_buffer)
{
	struct esp_plug p;
	char want[160], t[160];

	ASSERT_EQ(0, esp_plug_init(&p, "a/b-c", "living_room_plug", "living_room_plug_power"));
	for (unsigned i = 0; i <= ESP_NKINDS; i++) {
		int (*get)(const struct esp_plug *, char *, size_t) = NULL;
		size_t n;

		if (i == ESP_NKINDS) {
			get = esp_cmd_topic;
			ASSERT_EQ(0, get(&p, want, sizeof(want)));
		} else {
			ASSERT_EQ(0, esp_sub_topic(&p, (enum esp_kind)i, want, sizeof(want)));
		}
		n = strlen(want);
		for (size_t len = 0; len <= n; len++) {
			int r = get ? get(&p, t, len) : esp_sub_topic(&p, (enum esp_kind)i, t, len);

			EXPECT_EQ(-ENOSPC, r) TH_LOG("kind %u len %zu", i, len);
		}
		EXPECT_EQ(0, get ? get(&p, t, n + 1) : esp_sub_topic(&p, (enum esp_kind)i, t, n + 1));
		EXPECT_STREQ(want, t);
	}
}

TEST(bad_configuration)
{
	static const char *const bad_prefix[] = { "", "/x", "x/", "a//b", "a/+/b", "a/#", "a b",
						   "0123456789012345678901234567890123456789012345678901234567890123" };
	static const char *const bad_id[] = { "", "Relay", "re lay", "re/lay", "+", "#",
					       "abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh" };
	struct esp_plug p;

	for (size_t i = 0; i < sizeof(bad_prefix) / sizeof(bad_prefix[0]); i++) {
		EXPECT_EQ(-EINVAL, esp_plug_init(&p, bad_prefix[i], "relay", "power")) TH_LOG("%s", bad_prefix[i]);
	}
	for (size_t i = 0; i < sizeof(bad_id) / sizeof(bad_id[0]); i++) {
		EXPECT_EQ(-EINVAL, esp_plug_init(&p, "node", bad_id[i], "power")) TH_LOG("%s", bad_id[i]);
		if (bad_id[i][0]) {
			EXPECT_EQ(-EINVAL, esp_plug_init(&p, "node", "relay", bad_id[i]));
		}
	}
	EXPECT_EQ(-EINVAL, esp_plug_init(&p, NULL, "relay", NULL));
	EXPECT_EQ(-EINVAL, esp_plug_init(&p, "node", NULL, NULL));
}

static int parse(const struct esp_plug *p, enum esp_kind k, const char *s, struct tas_report *r)
{
	/* an exact-size copy without NUL, as the broker hands a payload over */
	char *b = malloc(strlen(s) + 1);
	int rc;

	memcpy(b, s, strlen(s));
	rc = esp_parse(p, k, b, strlen(s), r);
	free(b);
	return rc;
}

TEST(payloads_as_esphome_sends_them)
{
	struct esp_plug p;
	struct tas_report r;

	/* birth/will on <p>/status, a switch's state: the words and what they say */
	static const struct {
		enum esp_kind k;
		const char *s;
		unsigned have;
		bool yes;
	} good[] = {
		{ ESP_STATUS, "online", TAS_HAVE_ONLINE, true },
		{ ESP_STATUS, "offline", TAS_HAVE_ONLINE, false },
		{ ESP_SWITCH_STATE, "ON", TAS_HAVE_ON, true },
		{ ESP_SWITCH_STATE, "OFF", TAS_HAVE_ON, false },
	};

	ASSERT_EQ(0, esp_plug_init(&p, "washer", "relay", "power"));
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ASSERT_EQ(0, parse(&p, good[i].k, good[i].s, &r));
		EXPECT_EQ(good[i].have, r.have);
		EXPECT_EQ(good[i].yes, good[i].k == ESP_STATUS ? r.online : r.on) TH_LOG("%s", good[i].s);
	}
	/* sensor with no value: ESPHome prints NaN */
	EXPECT_EQ(-ENOENT, parse(&p, ESP_POWER, "nan", &r));
	EXPECT_EQ(0u, r.have);
	EXPECT_EQ(-ENOENT, parse(&p, ESP_POWER, "-nan", &r));
	ASSERT_EQ(0, parse(&p, ESP_POWER, "-0.0", &r));
	EXPECT_EQ(0, r.power_mw);

	/* what ESPHome never sends */
	static const char *const bad[][2] = {
		{ "0", "Online" }, { "0", "ONLINE" }, { "0", "online\n" }, { "0", "" }, { "0", "on" },
		{ "1", "on" }, { "1", "On" }, { "1", "TOGGLE" }, { "1", "ON " }, { "1", "" }, { "1", "1" },
		{ "2", "" }, { "2", "12 W" }, { "2", " 12" }, { "2", "1e3" }, { "2", "-5.0" },
		{ "2", "NaN" }, { "2", "inf" }, { "2", "12." }, { "2", "+3" }, { "2", "0x10" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-EINVAL, parse(&p, (enum esp_kind)(bad[i][0][0] - '0'), bad[i][1], &r))
			TH_LOG("kind %s '%s'", bad[i][0], bad[i][1]);
	}
	EXPECT_EQ(-EINVAL, esp_parse(&p, ESP_NKINDS, "ON", 2, &r));
}

TEST(power_numbers_at_every_accuracy)
{
	struct esp_plug p;
	unsigned long long s = 7;

	ASSERT_EQ(0, esp_plug_init(&p, "washer", "relay", "power"));
	for (int i = 0; i < 4000; i++) {
		unsigned dec = (unsigned)i % 4;	/* accuracy_decimals 0..3 */
		static const long long unit[] = { 1000, 100, 10, 1 };
		long long mw, whole;
		char txt[40];
		struct tas_report r;

		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		mw = (long long)((s >> 20) % 4000000000ULL);
		mw -= mw % unit[dec];	/* what a value printed with dec decimals holds */
		whole = mw / 1000;
		if (dec)
			snprintf(txt, sizeof(txt), "%lld.%0*lld", whole, (int)dec,
				 (mw % 1000) / unit[dec]);
		else
			snprintf(txt, sizeof(txt), "%lld", whole);
		ASSERT_EQ(0, parse(&p, ESP_POWER, txt, &r)) TH_LOG("%s", txt);
		EXPECT_EQ(TAS_HAVE_POWER, r.have);
		EXPECT_EQ(mw, r.power_mw) TH_LOG("%s", txt);
		/* every truncation is an error or a smaller, still exact, number */
		for (size_t n = 0; n < strlen(txt); n++) {
			struct tas_report t;
			char *cut = malloc(n + 1);
			int rc;

			memcpy(cut, txt, n);
			rc = esp_parse(&p, ESP_POWER, cut, n, &t);
			free(cut);
			EXPECT_TRUE(rc == -EINVAL || (rc == 0 && t.power_mw <= mw)) TH_LOG("%.*s", (int)n, txt);
		}
	}
}

TEST_HARNESS_MAIN
