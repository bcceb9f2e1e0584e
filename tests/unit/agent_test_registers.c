// SPDX-License-Identifier: GPL-2.0
/*
 * Registers: exact energy integration, interval and billing boundaries,
 * per-period registers, maximum demand, price so far, gaps, load profile.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gm_harness.h"
#include "registers.h"

static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = s };

	return timegm(&tm);
}

static void compile(struct tariff *t, const char *const *kv)
{
	struct tariff_spec s;
	const char *bad;
	char err[200];

	tariff_spec_init(&s);
	for (; kv[0]; kv += 2)
		tariff_spec_set(&s, kv[0], kv[1]);
	if (tariff_compile(&s, t, &bad, err, sizeof(err)))
		abort();
}

static const char *const flat[] = { "type", "flat", "rate", "28.62", "standing_charge", "50",
				    "feed_in", "15", NULL };

struct collect {
	struct profile prof;
	uint64_t demands[16];
	unsigned n;
};

static void on_interval(void *ctx, const struct profile_entry *e, uint64_t demand_mw)
{
	struct collect *c = ctx;

	profile_push(&c->prof, e);
	if (c->n < 16)
		c->demands[c->n] = demand_mw;
	c->n++;
}

TEST(constant_power_one_hour_in_one_second_steps)
{
	struct registers r;
	struct tariff t;
	struct collect c = { 0 };
	int64_t t0 = (int64_t)utc(2026, 5, 4, 10, 0, 0) * 1000;

	setenv("TZ", "UTC", 1);
	tzset();
	compile(&t, flat);
	profile_init(&c.prof, 8);
	registers_init(&r, 900, 1, t0);
	for (int s = 1; s <= 3600; s++)
		registers_integrate(&r, &t, t0 + s * 1000, 1000000 /* 1 kW */, 0, on_interval, &c);
	EXPECT_EQ(1000000u, r.import.total_mwh);	/* 1 kWh */
	EXPECT_EQ(0u, r.import.rem_uj);
	ASSERT_EQ(4u, c.n);
	for (unsigned i = 0; i < 4; i++) {
		EXPECT_EQ(250000u, profile_at(&c.prof, i)->import_mwh);
		EXPECT_EQ(t0 / 1000 + 900 * i, profile_at(&c.prof, i)->start);
		EXPECT_EQ(1000000u, c.demands[i]);
	}
	EXPECT_EQ(1000000u, r.bill_max_demand_mw);
	/* 1 kWh at 28.620 p = 28.62 p = 28620000000 nano... as mWh x milli */
	EXPECT_EQ((int64_t)1000000 * 28620, r.bill_import_nano);
	profile_free(&c.prof);
}

TEST(odd_powers_and_steps_lose_nothing)
{
	struct registers r;
	struct tariff t;
	int64_t t0 = (int64_t)utc(2026, 5, 4, 10, 0, 0) * 1000, now = t0;
	uint64_t uj_in = 0, uj_out = 0, uj_ren = 0;
	unsigned seed = 12345;

	setenv("TZ", "UTC", 1);
	tzset();
	compile(&t, flat);
	registers_init(&r, 900, 1, t0);
	for (int i = 0; i < 20000; i++) {
		int64_t dt = 1 + rand_r(&seed) % 1500;
		int64_t p = (int64_t)(rand_r(&seed) % 7000001) - 3000000;	/* -3 kW .. 4 kW in mW */
		int64_t ren = rand_r(&seed) % 2000001;

		now += dt;
		registers_integrate(&r, &t, now, p, ren, NULL, NULL);
		if (p > 0)
			uj_in += (uint64_t)p * (uint64_t)dt;
		else
			uj_out += (uint64_t)-p * (uint64_t)dt;
		uj_ren += (uint64_t)ren * (uint64_t)dt;
	}
	EXPECT_EQ(uj_in / 3600000, r.import.total_mwh);
	EXPECT_EQ(uj_in % 3600000, r.import.rem_uj);
	EXPECT_EQ(uj_out / 3600000, r.export.total_mwh);
	EXPECT_EQ(uj_ren / 3600000, r.renew.total_mwh);
	EXPECT_EQ(r.import.total_mwh, r.import.period_mwh[0]);
	EXPECT_EQ((int64_t)r.import.total_mwh * 28620, r.bill_import_nano);
	EXPECT_EQ((int64_t)r.export.total_mwh * 15000, r.bill_export_nano);
}

TEST(step_straddling_interval_boundary_is_split)
{
	struct registers r;
	struct tariff t;
	struct collect c = { 0 };
	int64_t ivl = (int64_t)utc(2026, 5, 4, 10, 0, 0) * 1000;

	setenv("TZ", "UTC", 1);
	tzset();
	compile(&t, flat);
	profile_init(&c.prof, 8);
	registers_init(&r, 900, 1, ivl + 899500);
	/* 3.6 kW for one second, half in each interval: 0.5 s x 3.6 kW = 0.5 Wh */
	registers_integrate(&r, &t, ivl + 900500, 3600000, 0, on_interval, &c);
	ASSERT_EQ(1u, c.n);
	EXPECT_EQ(500u, profile_at(&c.prof, 0)->import_mwh);
	EXPECT_EQ(ivl / 1000, profile_at(&c.prof, 0)->start);
	EXPECT_EQ(PROFILE_GAP, profile_at(&c.prof, 0)->flags);	/* started 899.5 s in */
	EXPECT_EQ(0u, r.ivl_flags);				/* the next one is whole */
	EXPECT_EQ(500u * 3600 / 900, c.demands[0]);
	EXPECT_EQ(1000u, r.import.total_mwh);
	EXPECT_EQ(ivl / 1000 + 900, r.ivl_start);
	profile_free(&c.prof);
}

TEST(gap_integrates_nothing_and_flags_intervals)
{
	struct registers r;
	struct tariff t;
	struct collect c = { 0 };
	int64_t t0 = (int64_t)utc(2026, 5, 4, 10, 0, 0) * 1000;

	setenv("TZ", "UTC", 1);
	tzset();
	compile(&t, flat);
	profile_init(&c.prof, 16);
	registers_init(&r, 900, 1, t0);
	registers_integrate(&r, &t, t0 + 1000, 3600000, 0, on_interval, &c);	/* 1 Wh */
	registers_integrate(&r, &t, t0 + 1000 + 3600 * 1000, 3600000, 0, on_interval, &c);
	EXPECT_EQ(1000u, r.import.total_mwh);
	ASSERT_EQ(4u, c.n);
	for (unsigned i = 0; i < 4; i++)
		EXPECT_EQ(PROFILE_GAP, profile_at(&c.prof, i)->flags & PROFILE_GAP);
	EXPECT_EQ(PROFILE_GAP, r.ivl_flags & PROFILE_GAP);
	/* backwards clock: nothing integrated, integration restarts there */
	registers_integrate(&r, &t, t0, 3600000, 0, on_interval, &c);
	EXPECT_EQ(t0, r.last_ms);
	EXPECT_EQ(1000u, r.import.total_mwh);
	profile_free(&c.prof);
}

TEST(tou_periods_and_billing_rollover_in_london)
{
	static const char *const tou[] = {
		"type", "tou", "rates", "day:30, night:10",
		"weekday", "00:00-07:00 night, 07:00-24:00 day",
		"weekend", "00:00-07:00 night, 07:00-24:00 day",
		"standing_charge", "50", "feed_in", "5", NULL,
	};
	struct registers r;
	struct tariff t;
	/* 2026-03-31 06:00 UTC = 07:00 BST; billing day 1 */
	int64_t t0 = (int64_t)utc(2026, 3, 31, 5, 0, 0) * 1000;
	int64_t price_before;

	setenv("TZ", "Europe/London", 1);
	tzset();
	compile(&t, tou);
	registers_init(&r, 900, 1, t0);
	EXPECT_EQ(utc(2026, 3, 1, 0, 0, 0), r.bill_start);
	EXPECT_EQ(utc(2026, 3, 31, 23, 0, 0), r.bill_next);	/* 2026-04-01 00:00 BST */
	/* 05:00-06:00 UTC = 06:00-07:00 BST at 2 kW: night */
	for (int s = 1; s <= 3600; s++)
		registers_integrate(&r, &t, t0 + s * 1000, 2000000, 0, NULL, NULL);
	/* 06:00-07:00 UTC at 1 kW: day */
	for (int s = 3601; s <= 7200; s++)
		registers_integrate(&r, &t, t0 + s * 1000, 1000000, 0, NULL, NULL);
	EXPECT_EQ(2000000u, r.import.period_mwh[1]);
	EXPECT_EQ(1000000u, r.import.period_mwh[0]);
	EXPECT_EQ((int64_t)2000000 * 10000 + (int64_t)1000000 * 30000, r.bill_import_nano);
	/* price so far: 31 days of standing charge + energy */
	price_before = registers_price_nano(&r, &t, t0 + 7200 * 1000);
	EXPECT_EQ((int64_t)31 * 50000 * 1000000 + r.bill_import_nano, price_before);
	/* export 1 kW for 1 h, crossing no boundary */
	for (int s = 7201; s <= 10800; s++)
		registers_integrate(&r, &t, t0 + s * 1000, -1000000, 0, NULL, NULL);
	EXPECT_EQ(1000000u, r.export.total_mwh);
	EXPECT_EQ((int64_t)1000000 * 5000, r.bill_export_nano);
	/* jump to just before the billing boundary (a gap), then step across it */
	registers_integrate(&r, &t, (int64_t)r.bill_next * 1000 - 1000, 0, 0, NULL, NULL);
	price_before = registers_price_nano(&r, &t, (int64_t)r.bill_next * 1000 - 1000);
	registers_integrate(&r, &t, (int64_t)utc(2026, 3, 31, 23, 0, 1) * 1000, 3600000, 0, NULL, NULL);
	/* the second before the boundary: 1 Wh at the day rate, still in March */
	EXPECT_EQ(price_before + 1000 * 30000, r.last_bill_nano);
	EXPECT_EQ(utc(2026, 3, 31, 23, 0, 0), r.bill_start);
	EXPECT_EQ(utc(2026, 4, 30, 23, 0, 0), r.bill_next);
	/* the second after the boundary: 1 Wh at night rate, one day of standing charge */
	EXPECT_EQ(1000u, r.bill_import_mwh);
	EXPECT_EQ((int64_t)1000 * 10000, r.bill_import_nano);
	EXPECT_EQ((int64_t)50000 * 1000000 + 1000 * 10000,
		  registers_price_nano(&r, &t, (int64_t)utc(2026, 3, 31, 23, 0, 1) * 1000));
	EXPECT_EQ(0u, r.bill_max_demand_mw);
}

TEST(max_demand_tracks_highest_interval)
{
	struct registers r;
	struct tariff t;
	int64_t t0 = (int64_t)utc(2026, 5, 4, 10, 0, 0) * 1000;
	int64_t power[4] = { 1000000, 5000000, 2000000, 3000000 };

	setenv("TZ", "UTC", 1);
	tzset();
	compile(&t, flat);
	registers_init(&r, 900, 1, t0);
	for (int i = 0; i < 4; i++)
		for (int s = 1; s <= 900; s++)
			registers_integrate(&r, &t, t0 + (i * 900 + s) * 1000, power[i], 0, NULL, NULL);
	EXPECT_EQ(5000000u, r.bill_max_demand_mw);
	EXPECT_EQ(t0 / 1000 + 900, r.bill_max_demand_at);
}

TEST(profile_ring_keeps_35_days_and_searches)
{
	struct profile p;
	size_t cap = 35 * 96;
	struct profile_entry e = { 0 };

	ASSERT_EQ(0, profile_init(&p, cap));
	for (size_t i = 0; i < cap + 10; i++) {
		e.start = 1000000 + (int64_t)i * 900;
		e.import_mwh = (uint32_t)i;
		ASSERT_EQ(0, profile_push(&p, &e));
	}
	EXPECT_EQ(cap, p.count);
	EXPECT_EQ(10u, profile_at(&p, 0)->import_mwh);
	EXPECT_EQ(cap + 9, profile_newest(&p)->import_mwh);
	EXPECT_EQ(5u, profile_lower_bound(&p, 1000000 + 15 * 900));
	EXPECT_EQ(6u, profile_lower_bound(&p, 1000000 + 15 * 900 + 1));
	EXPECT_EQ(0u, profile_lower_bound(&p, 0));
	EXPECT_EQ(cap, profile_lower_bound(&p, INT64_MAX));
	/* out-of-order entries are refused */
	e.start = 1000000;
	EXPECT_EQ(-1, profile_push(&p, &e));
	profile_free(&p);
}

TEST(energy_step_spread_exactly_over_boundaries)
{
	struct registers r;
	struct tariff t;
	struct collect c = { 0 };
	int64_t ivl = (int64_t)utc(2026, 5, 4, 10, 0, 0) * 1000;
	uint64_t e = 1000000ull * 3600000;	/* 1 kWh in uJ */

	setenv("TZ", "UTC", 1);
	tzset();
	compile(&t, flat);
	profile_init(&c.prof, 8);
	registers_init(&r, 900, 1, ivl + 450000);	/* 10:07:30 */
	/* 1 kWh import and 1 Wh + 1 uJ export over 30 minutes, to 10:37:30 */
	registers_add_energy(&r, &t, ivl + 2250000, e, 3600001, 0, PROFILE_GAP, on_interval, &c);
	ASSERT_EQ(2u, c.n);
	EXPECT_EQ(250000u, profile_at(&c.prof, 0)->import_mwh);
	EXPECT_EQ(500000u, profile_at(&c.prof, 1)->import_mwh);
	EXPECT_EQ(PROFILE_GAP, profile_at(&c.prof, 0)->flags);
	EXPECT_EQ(1000000u, r.import.total_mwh);
	EXPECT_EQ(0u, r.import.rem_uj);
	EXPECT_EQ(1u, r.export.total_mwh);	/* nothing lost to the split */
	EXPECT_EQ(1u, r.export.rem_uj);
	EXPECT_EQ(ivl + 2250000, r.last_ms);
	profile_free(&c.prof);
}

/* A long forward step emits the last max_close intervals (the profile's size), every one flagged. */
TEST(long_step_emits_the_last_max_close_intervals_and_keeps_the_energy)
{
	struct registers r;
	struct tariff t;
	struct collect c = { 0 };
	int64_t t0 = (int64_t)utc(2026, 5, 4, 10, 0, 0) * 1000;
	uint64_t e = 3600000ull * 1000;	/* 1 Wh */

	setenv("TZ", "UTC", 1);
	tzset();
	compile(&t, flat);
	profile_init(&c.prof, 64);
	registers_init(&r, 900, 1, t0 + 100000);
	r.max_close = 10;
	/* 100 intervals later */
	registers_add_energy(&r, &t, t0 + 100 * 900000 + 5000, 100 * e, 0, 0,
			     PROFILE_GAP | PROFILE_CLOCK_STEP, on_interval, &c);
	ASSERT_EQ(11u, c.n);		/* the open one, then the last 10 */
	EXPECT_EQ(t0 / 1000, profile_at(&c.prof, 0)->start);
	EXPECT_EQ(t0 / 1000 + 90 * 900, profile_at(&c.prof, 1)->start);
	EXPECT_EQ(t0 / 1000 + 99 * 900, profile_newest(&c.prof)->start);
	for (unsigned i = 0; i < c.n; i++)
		EXPECT_EQ(PROFILE_GAP | PROFILE_CLOCK_STEP, profile_at(&c.prof, i)->flags);
	EXPECT_EQ(PROFILE_GAP | PROFILE_CLOCK_STEP, r.ivl_flags);
	EXPECT_EQ(100 * e / UJ_PER_MWH, r.import.total_mwh);	/* the energy is all there */
	{
		uint64_t sum = r.import.total_mwh - r.ivl_base_import;

		for (unsigned i = 0; i < c.n; i++)
			sum += profile_at(&c.prof, i)->import_mwh;
		EXPECT_EQ(100 * e / UJ_PER_MWH, sum);
	}
	EXPECT_EQ(t0 + 100 * 900000 + 5000, r.last_ms);
	profile_free(&c.prof);
}

/* A backward clock step closes the open interval there and goes on at the new time. */
TEST(clock_step_back_closes_the_interval_and_continues)
{
	struct registers r;
	struct tariff t;
	struct collect c = { 0 };
	int64_t t0 = (int64_t)utc(2026, 5, 4, 10, 0, 0) * 1000;
	uint64_t wh = 3600000ull * 1000;

	setenv("TZ", "UTC", 1);
	tzset();
	compile(&t, flat);
	profile_init(&c.prof, 64);
	registers_init(&r, 900, 1, t0);
	registers_add_energy(&r, &t, t0 + 600000, 10 * wh, 0, 0, 0, on_interval, &c);
	/* stepped back 20 minutes: to 09:50 */
	registers_clock_step(&r, t0 - 600000, on_interval, &c);
	ASSERT_EQ(1u, c.n);
	EXPECT_EQ(t0 / 1000, profile_at(&c.prof, 0)->start);
	EXPECT_EQ(10000u, profile_at(&c.prof, 0)->import_mwh);
	EXPECT_EQ(PROFILE_CLOCK_STEP, profile_at(&c.prof, 0)->flags);
	EXPECT_EQ(t0 / 1000 - 900, r.ivl_start);
	EXPECT_EQ(PROFILE_CLOCK_STEP, r.ivl_flags);
	EXPECT_EQ(t0 - 600000, r.last_ms);
	/* energy goes on at the new time; the billing period stays */
	registers_add_energy(&r, &t, t0 - 590000, wh, 0, 0, 0, on_interval, &c);
	EXPECT_EQ(11000u, r.import.total_mwh);
	EXPECT_EQ(11000u, r.bill_import_mwh);
	/* forward steps are not its business */
	registers_clock_step(&r, t0, on_interval, &c);
	EXPECT_EQ(1u, c.n);
	EXPECT_EQ(t0 - 590000, r.last_ms);
	profile_free(&c.prof);
}

/* Energy placed behind the registers' time is counted there: their time never goes back by itself. */
TEST(energy_behind_the_registers_time_keeps_the_time)
{
	struct registers r;
	struct tariff t;
	int64_t t0 = (int64_t)utc(2026, 5, 4, 10, 0, 0) * 1000;

	setenv("TZ", "UTC", 1);
	tzset();
	compile(&t, flat);
	registers_init(&r, 900, 1, t0);
	registers_add_energy(&r, &t, t0 - 1500, 3600000ull * 1000, 0, 0, 0, NULL, NULL);
	EXPECT_EQ(1000u, r.import.total_mwh);
	EXPECT_EQ(t0, r.last_ms);
}

/* Registers that never ran on trusted time are placed when the time is known, totals kept. */
TEST(place_sets_the_period_and_keeps_the_totals)
{
	struct registers r;
	int64_t bogus = (int64_t)utc(2030, 1, 1, 0, 0, 0) * 1000;
	int64_t real = (int64_t)utc(2026, 5, 4, 10, 7, 30) * 1000;

	setenv("TZ", "UTC", 1);
	tzset();
	registers_init(&r, 900, 1, bogus);
	r.import.total_mwh = 1234;
	registers_place(&r, real);
	EXPECT_EQ(1234u, r.import.total_mwh);
	EXPECT_EQ(1234u, r.ivl_base_import);
	EXPECT_EQ((int64_t)utc(2026, 5, 1, 0, 0, 0), r.bill_start);
	EXPECT_EQ((int64_t)utc(2026, 6, 1, 0, 0, 0), r.bill_next);
	EXPECT_EQ((int64_t)utc(2026, 5, 4, 10, 0, 0), r.ivl_start);
	EXPECT_EQ(PROFILE_GAP, r.ivl_flags);
	EXPECT_EQ(real, r.last_ms);
}

TEST(tiers_restart_with_the_billing_period)
{
	static const char *const tiers[] = { "type", "tiered", "tiers", "1:10, *:20", NULL };
	struct registers r;
	struct tariff t;
	/* billing day 1, Europe/London: 2026-11-01 00:00 GMT is the boundary */
	int64_t boundary = (int64_t)utc(2026, 11, 1, 0, 0, 0) * 1000;

	setenv("TZ", "Europe/London", 1);
	tzset();
	compile(&t, tiers);
	registers_init(&r, 900, 1, boundary - 3600 * 1000);
	/* 1.2 kWh in the last hour of October: 1 kWh at tier 1, 0.2 at tier 2 */
	registers_add_energy(&r, &t, boundary - 1000, 1200000ull * 3600000, 0, 0, 0, NULL, NULL);
	EXPECT_EQ(1000000u, r.import.period_mwh[0]);
	EXPECT_EQ(200000u, r.import.period_mwh[1]);
	EXPECT_EQ((int64_t)1000000 * 10000 + (int64_t)200000 * 20000, r.bill_import_nano);
	/* 1 kWh over the 2 s around the boundary: half in October, half in November */
	registers_add_energy(&r, &t, boundary + 1000, 1000000ull * 3600000, 0, 0, 0, NULL, NULL);
	/* October's half at tier 2 (no standing charge in this tariff) */
	EXPECT_EQ((int64_t)1000000 * 10000 + (int64_t)700000 * 20000, r.last_bill_nano);
	/* November starts again at tier 1 */
	EXPECT_EQ(500000u, r.bill_import_mwh);
	EXPECT_EQ((int64_t)500000 * 10000, r.bill_import_nano);
	EXPECT_EQ(1500000u, r.import.period_mwh[0]);
	EXPECT_EQ(700000u, r.import.period_mwh[1]);
}

TEST(fall_back_day_registers_per_period_in_london)
{
	static const char *const tou[] = {
		"type", "tou", "rates", "day:30, night:10",
		"weekday", "00:00-07:00 night, 07:00-24:00 day",
		"weekend", "00:00-07:00 night, 07:00-24:00 day", "standing_charge", "50", NULL,
	};
	struct registers r;
	struct tariff t;
	/* local Sunday 2026-10-25 runs from 23:00 UTC on the 24th for 25 hours */
	int64_t t0 = (int64_t)utc(2026, 10, 24, 23, 0, 0) * 1000;

	setenv("TZ", "Europe/London", 1);
	tzset();
	compile(&t, tou);
	registers_init(&r, 900, 1, t0);
	for (int s = 1; s <= 25 * 3600; s++)
		registers_integrate(&r, &t, t0 + (int64_t)s * 1000, 1000000, 0, NULL, NULL);
	/* 1 kW all day: night 00:00-07:00 local is 8 real hours today, day 17 */
	EXPECT_EQ(8000000u, r.import.period_mwh[1]);
	EXPECT_EQ(17000000u, r.import.period_mwh[0]);
	EXPECT_EQ((int64_t)8000000 * 10000 + (int64_t)17000000 * 30000, r.bill_import_nano);
	/* October 1-25: 25 local days of standing charge at 23:59:59 on the 25th */
	EXPECT_EQ((int64_t)25 * 50000 * 1000000 + r.bill_import_nano,
		  registers_price_nano(&r, &t, t0 + 25 * 3600 * 1000 - 1000));
}

TEST_HARNESS_MAIN
