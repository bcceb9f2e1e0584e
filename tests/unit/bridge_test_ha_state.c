// SPDX-License-Identifier: GPL-2.0
/*
 * The <base>/state message (ha_state.c): every conversion checked by
 * reading the decimal string back and comparing it with the input computed
 * another way (lldiv, per-unit factors), energy registers that never go
 * down in what is published even when meterd's do, every short buffer,
 * and a valid JSON document whose keys are the discovery objects.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "ha_discovery.h"
#include "ha_state.h"
#include "json_scan.h"

/* A decimal string "[-]I[.F]" as an integer scaled by 10^dec; -1 if malformed or wrong decimals. */
static int scaled(const char *s, size_t n, unsigned dec, long long *out)
{
	long long v = 0;
	int neg = 0;
	size_t i = 0, frac = 0;
	int dot = 0;

	if (i < n && s[i] == '-') {
		neg = 1;
		i++;
	}
	if (i == n)
		return -1;
	for (; i < n; i++) {
		if (s[i] == '.' && !dot) {
			dot = 1;
			continue;
		}
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		frac += dot;
	}
	if (frac != dec || (dot && !dec))
		return -1;
	*out = neg ? -v : v;
	return 0;
}

/* The string value of key in doc, scaled; asserts it is a string. */
static int value_of(const char *doc, size_t n, const char *key, unsigned dec, long long *out)
{
	struct json_val v;
	int r = json_find(doc, n, key, &v);

	if (r)
		return r;
	if (v.type != JSON_STRING)
		return -EINVAL;
	return scaled(v.p, v.len, dec, out);
}

static int str_is(const char *doc, size_t n, const char *key, const char *want)
{
	struct json_val v;

	return !json_find(doc, n, key, &v) && json_str_eq(&v, want);
}

static unsigned long long rnd(unsigned long long *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 11;
}

TEST(every_conversion)
{
	unsigned long long seed = 42;
	char buf[4096];

	for (int round = 0; round < 2000; round++) {
		struct ha_state st = { 0 };
		struct ha_meter_values v = { 0 };
		static const unsigned mpm_of[] = { 1, 10, 100, 1000 };
		unsigned mdec[] = { 0, 1, 2, 3 };
		int which = (int)(rnd(&seed) % 4);
		long long x;
		lldiv_t q;
		int n;

		v.have_readings = v.have_registers = v.have_tariff = v.have_relay = true;
		v.voltage_mv = (uint32_t)rnd(&seed);
		v.current_ma = (uint32_t)(rnd(&seed) % 100000);
		v.power_mw = (int64_t)(rnd(&seed) % 40000000) - 20000000;
		v.pf_milli = (int32_t)(rnd(&seed) % 2001) - 1000;
		v.frequency_mhz = 45000 + (uint32_t)(rnd(&seed) % 20000);
		v.import_mwh = rnd(&seed) % 100000000000ULL;
		v.export_mwh = round < 5 ? (uint64_t)round : rnd(&seed) % 1000000;
		v.renew_mwh = rnd(&seed);
		v.price_milli = (int64_t)(rnd(&seed) % 20000000) - 10000000;
		if (round < 40) /* the rounding edges: +-x499, +-x500, +-x501 */
			v.price_milli = (round % 2 ? -1 : 1) * (int64_t)(1000 * (round / 8) + 499 + round % 4);
		v.minor_per_major = mpm_of[which];
		v.period = "peak";
		v.relay_closed = round % 2;

		n = ha_state_format(&st, &v, buf, sizeof(buf));
		ASSERT_LT(0, n);
		ASSERT_EQ(0, value_of(buf, (size_t)n, "voltage", 3, &x));
		EXPECT_EQ((long long)v.voltage_mv, x);
		ASSERT_EQ(0, value_of(buf, (size_t)n, "current", 3, &x));
		EXPECT_EQ((long long)v.current_ma, x);
		ASSERT_EQ(0, value_of(buf, (size_t)n, "power", 3, &x));
		EXPECT_EQ((long long)v.power_mw, x);
		ASSERT_EQ(0, value_of(buf, (size_t)n, "power_factor", 3, &x));
		EXPECT_EQ((long long)v.pf_milli, x);
		ASSERT_EQ(0, value_of(buf, (size_t)n, "frequency", 3, &x));
		EXPECT_EQ((long long)v.frequency_mhz, x);
		/* kWh with 3 decimals is whole Wh, never rounded up past the register */
		ASSERT_EQ(0, value_of(buf, (size_t)n, "import_energy", 3, &x));
		EXPECT_EQ(lldiv((long long)v.import_mwh, 1000).quot, x);
		EXPECT_LE(x * 1000, (long long)v.import_mwh);
		ASSERT_EQ(0, value_of(buf, (size_t)n, "export_energy", 3, &x));
		EXPECT_EQ((long long)v.export_mwh / 1000, x);
		ASSERT_EQ(0, value_of(buf, (size_t)n, "renewable_energy", 3, &x));
		EXPECT_EQ((long long)(v.renew_mwh / 1000), x);
		/* cost: milli-minor -> minor half away from zero, in major units */
		q = lldiv((long long)v.price_milli, 1000);
		if (llabs(q.rem) >= 500)
			q.quot += q.rem < 0 ? -1 : 1;
		ASSERT_EQ(0, value_of(buf, (size_t)n, "cost", mdec[which], &x)) TH_LOG("%s", buf);
		EXPECT_EQ(q.quot, x) TH_LOG("price %lld mpm %u: %s", (long long)v.price_milli,
					    v.minor_per_major, buf);
		EXPECT_TRUE(str_is(buf, (size_t)n, "tariff_period", "peak"));
		EXPECT_TRUE(str_is(buf, (size_t)n, "relay", v.relay_closed ? "ON" : "OFF"));
	}
}

TEST(energy_never_decreases)
{
	/* import goes down at step 3 (a restored store, a bad read), export at 5 */
	static const uint64_t imp[] = { 1000, 2500, 2500, 1800, 2400, 2600, 2600, 9000 };
	static const uint64_t exp[] = { 0, 0, 10, 20, 20, 5, 19, 21 };
	struct ha_state st = { 0 };
	long long last_i = -1, last_e = -1;
	unsigned long held = 0;
	uint64_t max_i = 0, max_e = 0;
	char buf[2048];

	for (size_t k = 0; k < sizeof(imp) / sizeof(imp[0]); k++) {
		struct ha_meter_values v = { .have_registers = true, .import_mwh = imp[k] * 1000,
					     .export_mwh = exp[k] * 1000, .renew_mwh = k };
		int n = ha_state_format(&st, &v, buf, sizeof(buf));
		long long x;
		int r;

		ASSERT_LT(0, n);
		r = value_of(buf, (size_t)n, "import_energy", 3, &x);
		if (k && imp[k] < max_i) {
			EXPECT_EQ(-ENOENT, r) TH_LOG("step %zu: %s", k, buf);
			held++;
		} else {
			ASSERT_EQ(0, r);
			EXPECT_EQ((long long)imp[k], x);
			EXPECT_LE(last_i, x);
			last_i = x;
			max_i = imp[k];
		}
		r = value_of(buf, (size_t)n, "export_energy", 3, &x);
		if (k && exp[k] < max_e) {
			EXPECT_EQ(-ENOENT, r) TH_LOG("step %zu: %s", k, buf);
			held++;
		} else {
			ASSERT_EQ(0, r);
			EXPECT_EQ((long long)exp[k], x);
			EXPECT_LE(last_e, x);
			last_e = x;
			max_e = exp[k];
		}
		EXPECT_EQ(held, st.held_back);
	}
	EXPECT_EQ(4UL, held);	/* import at steps 3 and 4, export at 5 and 6 */
}

static struct ha_meter_values full(void)
{
	static const char *const alarms[] = { "over-voltage", "alarm_gas", "load-unreachable" };
	struct ha_meter_values v = {
		.have_readings = true, .voltage_mv = 230123, .current_ma = 5021, .power_mw = -1155617,
		.pf_milli = 999, .frequency_mhz = 50012, .have_registers = true,
		.import_mwh = 12345678, .export_mwh = 999, .renew_mwh = 1000, .have_tariff = true,
		.price_milli = 123456, .minor_per_major = 100, .period = "pe\"ak\n",
		.have_relay = true, .relay_closed = true, .nactive_alarms = 3, .nplugs = 3, .nhome = 2,
	};

	for (size_t i = 0; i < 3; i++)
		v.active_alarms[i] = alarms[i];
	v.plug[0] = (struct ha_plug_value){ "plug_washer", true, true, 1800250 };
	v.plug[1] = (struct ha_plug_value){ "plug_heater", false, true, 3000 };
	v.plug[2] = (struct ha_plug_value){ "plug_lamp", true, false, -1 };
	v.home[0] = (struct ha_home_value){ "home_kitchen_gas", true, -1500, true };
	v.home[1] = (struct ha_home_value){ "home_hall", false, 21000, false };
	return v;
}

TEST(valid_json_with_the_discovery_keys)
{
	struct ha_meter_values v = full();
	struct ha_state st = { 0 };
	struct ha_entity_store pe[HA_PLUG_NENTITIES];
	char buf[4096];
	struct json_val j;
	long long x;
	int n = ha_state_format(&st, &v, buf, sizeof(buf));

	ASSERT_LT(0, n);
	ASSERT_EQ((size_t)n, strlen(buf));
	/* every key a meter entity's value_template reads is there */
	for (size_t i = 0; i < ha_meter_nentities; i++) {
		const char *o = ha_meter_entities[i].object;

		EXPECT_EQ(0, json_find(buf, (size_t)n, o, &j)) TH_LOG("%s missing: %s", o, buf);
		EXPECT_EQ(JSON_STRING, j.type);
		if (!strncmp(o, "alarm_", 6)) {
			int on = !strcmp(o, "alarm_over_voltage") || !strcmp(o, "alarm_gas") ||
				 !strcmp(o, "alarm_load_unreachable");

			EXPECT_TRUE(str_is(buf, (size_t)n, o, on ? "ON" : "OFF")) TH_LOG("%s", o);
		}
	}
	/* the plug keys are the objects ha_plug_entities() announces */
	ASSERT_EQ(HA_PLUG_NENTITIES, ha_plug_entities("washer", pe));
	EXPECT_TRUE(str_is(buf, (size_t)n, pe[0].e.object, "ON"));
	ASSERT_EQ(0, value_of(buf, (size_t)n, pe[1].e.object, 3, &x));
	EXPECT_EQ(1800250, x);
	EXPECT_TRUE(str_is(buf, (size_t)n, "plug_heater", "None"));
	EXPECT_TRUE(str_is(buf, (size_t)n, "plug_heater_power", "None"));
	EXPECT_TRUE(str_is(buf, (size_t)n, "plug_lamp", "OFF"));
	EXPECT_TRUE(str_is(buf, (size_t)n, "plug_lamp_power", "None"));
	ASSERT_EQ(0, value_of(buf, (size_t)n, "home_kitchen_gas", 3, &x));
	EXPECT_EQ(-1500, x);
	EXPECT_TRUE(str_is(buf, (size_t)n, "home_kitchen_gas_alarm", "ON"));
	EXPECT_TRUE(str_is(buf, (size_t)n, "home_hall", "None"));
	EXPECT_TRUE(str_is(buf, (size_t)n, "home_hall_alarm", "OFF"));
	/* the period's quote and newline are escaped, not cut */
	ASSERT_EQ(0, json_find(buf, (size_t)n, "tariff_period", &j));
	EXPECT_EQ(0, strncmp(j.p, "pe\\\"ak\\u000a", j.len));
	/* nothing known: an empty object plus the alarms */
	{
		struct ha_meter_values none = { 0 };

		n = ha_state_format(&st, &none, buf, sizeof(buf));
		ASSERT_LT(0, n);
		EXPECT_EQ(-ENOENT, json_find(buf, (size_t)n, "power", &j));
		EXPECT_EQ(-ENOENT, json_find(buf, (size_t)n, "import_energy", &j));
		EXPECT_TRUE(str_is(buf, (size_t)n, "alarm_gas", "OFF"));
	}
}

TEST(every_short_buffer_is_enospc_and_changes_nothing)
{
	struct ha_meter_values v = full();
	struct ha_state st = { 0 }, before;
	char want[4096];
	int full_n = ha_state_format(&st, &v, want, sizeof(want));

	ASSERT_LT(0, full_n);
	/* a lower register next: held back only by a call that succeeds */
	v.import_mwh -= 5000;
	before = st;
	{
		struct ha_state copy = st;

		full_n = ha_state_format(&copy, &v, want, sizeof(want));
		ASSERT_LT(0, full_n);
		EXPECT_EQ(1UL, copy.held_back);
	}
	for (size_t len = 0; len <= (size_t)full_n; len++) {
		char *p = malloc(len ? len : 1);

		ASSERT_NE(NULL, p);
		EXPECT_EQ(-ENOSPC, ha_state_format(&st, &v, p, len)) TH_LOG("len %zu", len);
		EXPECT_EQ(0, memcmp(&before, &st, sizeof(st)));
		free(p);
	}
	{
		char *p = malloc((size_t)full_n + 1);
		int n;

		ASSERT_NE(NULL, p);
		n = ha_state_format(&st, &v, p, (size_t)full_n + 1);
		ASSERT_EQ(full_n, n);
		EXPECT_EQ(0, strcmp(want, p));
		EXPECT_EQ(1UL, st.held_back);
		free(p);
	}
}

TEST(bad_values)
{
	struct ha_meter_values v = full();
	struct ha_state st = { 0 };
	char buf[4096];

	v.minor_per_major = 0;
	EXPECT_EQ(-EINVAL, ha_state_format(&st, &v, buf, sizeof(buf)));
	v.minor_per_major = 12;
	EXPECT_EQ(-EINVAL, ha_state_format(&st, &v, buf, sizeof(buf)));
	v = full();
	v.plug[0].object = "plug\"x";
	EXPECT_EQ(-EINVAL, ha_state_format(&st, &v, buf, sizeof(buf)));
	v = full();
	v.nplugs = HA_STATE_MAX_PLUGS + 1;
	EXPECT_EQ(-EINVAL, ha_state_format(&st, &v, buf, sizeof(buf)));
	v = full();
	v.home[1].object = NULL;
	EXPECT_EQ(-EINVAL, ha_state_format(&st, &v, buf, sizeof(buf)));
	EXPECT_FALSE(st.published[0]);
}

TEST_HARNESS_MAIN
