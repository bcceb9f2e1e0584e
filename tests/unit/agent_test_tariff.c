// SPDX-License-Identifier: GPL-2.0
/*
 * Tariff engine: time-of-use windows across the Europe/London daylight-saving
 * changes, weekends and special days, tier boundaries, billing periods at
 * month ends, daily charges on 23- and 25-hour days.
 * Instants are built with timegm() from UTC fields and the known UK offsets
 * (GMT+0 in winter, BST=GMT+1 from the last Sunday of March 01:00 UTC to the
 * last Sunday of October 01:00 UTC), independently of the code under test.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gm_harness.h"
#include "tariff.h"

static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = s };

	return timegm(&tm);
}

static void london(void)
{
	setenv("TZ", "Europe/London", 1);
	tzset();
}

static int compile(struct tariff *t, const char *const *kv)
{
	struct tariff_spec s;
	const char *bad = NULL;
	char err[200];

	tariff_spec_init(&s);
	for (; kv[0]; kv += 2)
		if (tariff_spec_set(&s, kv[0], kv[1]))
			return -100;
	return tariff_compile(&s, t, &bad, err, sizeof(err));
}

static const char *const tou[] = {
	"type", "tou",
	"rates", "peak:35.5, offpeak:12.25, shoulder:24",
	"weekday", "00:00-07:00 offpeak, 07:00-16:00 shoulder, 16:00-19:00 peak, 19:00-24:00 shoulder",
	"weekend", "00:00-24:00 offpeak",
	"special_days", "2026-12-25, 2026-12-26",
	"standing_charge", "60.5",
	"feed_in", "15",
	NULL,
};

enum { OFFPEAK = 1, PEAK = 0, SHOULDER = 2 };	/* order in "rates" */

TEST(tou_prices_parsed_in_milli_minor)
{
	struct tariff t;

	ASSERT_EQ(0, compile(&t, tou));
	ASSERT_EQ(3u, t.nperiods);
	EXPECT_EQ(35500, t.price[PEAK]);
	EXPECT_EQ(12250, t.price[OFFPEAK]);
	EXPECT_EQ(24000, t.price[SHOULDER]);
	EXPECT_EQ(60500, t.standing_milli);
	EXPECT_EQ(15000, t.feed_in_milli);
}

TEST(tou_windows_winter_follow_gmt)
{
	struct tariff t;

	london();
	ASSERT_EQ(0, compile(&t, tou));
	/* Friday 2026-03-27, GMT: local == UTC */
	EXPECT_EQ(OFFPEAK, tariff_period_at(&t, utc(2026, 3, 27, 6, 59, 59), 0));
	EXPECT_EQ(SHOULDER, tariff_period_at(&t, utc(2026, 3, 27, 7, 0, 0), 0));
	EXPECT_EQ(PEAK, tariff_period_at(&t, utc(2026, 3, 27, 16, 0, 0), 0));
	EXPECT_EQ(SHOULDER, tariff_period_at(&t, utc(2026, 3, 27, 19, 0, 0), 0));
}

TEST(tou_windows_summer_follow_bst)
{
	struct tariff t;

	london();
	ASSERT_EQ(0, compile(&t, tou));
	/* Monday 2026-03-30, BST: local 07:00 is 06:00 UTC */
	EXPECT_EQ(OFFPEAK, tariff_period_at(&t, utc(2026, 3, 30, 5, 59, 59), 0));
	EXPECT_EQ(SHOULDER, tariff_period_at(&t, utc(2026, 3, 30, 6, 0, 0), 0));
	EXPECT_EQ(PEAK, tariff_period_at(&t, utc(2026, 3, 30, 15, 0, 0), 0));
	EXPECT_EQ(SHOULDER, tariff_period_at(&t, utc(2026, 3, 30, 18, 0, 0), 0));
	/* Monday 2026-10-26, back on GMT */
	EXPECT_EQ(OFFPEAK, tariff_period_at(&t, utc(2026, 10, 26, 6, 59, 0), 0));
	EXPECT_EQ(SHOULDER, tariff_period_at(&t, utc(2026, 10, 26, 7, 0, 0), 0));
}

TEST(weekend_and_special_days)
{
	struct tariff t;

	london();
	ASSERT_EQ(0, compile(&t, tou));
	/* Saturday 2026-06-13 17:00 BST = 16:00 UTC: weekend, off-peak */
	EXPECT_EQ(TARIFF_WEEKEND, tariff_daytype_at(&t, utc(2026, 6, 13, 16, 0, 0)));
	EXPECT_EQ(OFFPEAK, tariff_period_at(&t, utc(2026, 6, 13, 16, 0, 0), 0));
	/* Friday 2026-12-25 17:00 GMT: special day, weekend schedule */
	EXPECT_EQ(TARIFF_SPECIAL, tariff_daytype_at(&t, utc(2026, 12, 25, 17, 0, 0)));
	EXPECT_EQ(OFFPEAK, tariff_period_at(&t, utc(2026, 12, 25, 17, 0, 0), 0));
	/* Thursday 2026-12-24 17:00: ordinary weekday peak */
	EXPECT_EQ(PEAK, tariff_period_at(&t, utc(2026, 12, 24, 17, 0, 0), 0));
	/* Special day boundary is local midnight: 2026-12-24 23:59:59 GMT still weekday */
	EXPECT_EQ(TARIFF_WEEKDAY, tariff_daytype_at(&t, utc(2026, 12, 24, 23, 59, 59)));
}

TEST(next_change_follows_windows_day_types_and_special_days)
{
	struct tariff t, flat;
	static const char *const kv_flat[] = { "type", "flat", "rate", "20", NULL };
	/* Thursday 2026-12-24 12:00 GMT, shoulder */
	time_t noon = utc(2026, 12, 24, 12, 0, 0);

	london();
	ASSERT_EQ(0, compile(&t, tou));
	ASSERT_EQ(0, compile(&flat, kv_flat));
	/* 16:00 peak, 19:00 shoulder, then the special day (weekend: off-peak) at midnight */
	EXPECT_EQ(utc(2026, 12, 24, 16, 0, 0), tariff_next_change(&t, noon, noon + 86400));
	EXPECT_EQ(utc(2026, 12, 24, 19, 0, 0),
		  tariff_next_change(&t, utc(2026, 12, 24, 16, 0, 0), noon + 86400));
	EXPECT_EQ(utc(2026, 12, 25, 0, 0, 0),
		  tariff_next_change(&t, utc(2026, 12, 24, 19, 0, 0), noon + 86400));
	/* none before `until` (exclusive), none from a time within the minute of a change */
	EXPECT_EQ(noon + 3600, tariff_next_change(&t, noon, noon + 3600));
	EXPECT_EQ(utc(2026, 12, 24, 16, 0, 0),
		  tariff_next_change(&t, utc(2026, 12, 24, 15, 59, 59), noon + 86400));
	/* BST: 07:00 local is 06:00 UTC */
	EXPECT_EQ(utc(2026, 6, 10, 6, 0, 0),
		  tariff_next_change(&t, utc(2026, 6, 10, 0, 0, 0), utc(2026, 6, 11, 0, 0, 0)));
	/* flat: never */
	EXPECT_EQ(noon + 86400, tariff_next_change(&flat, noon, noon + 86400));
}

TEST(special_day_in_summer_uses_local_date)
{
	static const char *const kv[] = {
		"type", "tou", "rates", "a:1, b:2",
		"weekday", "00:00-24:00 a", "weekend", "00:00-24:00 a",
		"special", "00:00-24:00 b", "special_days", "2026-08-31", NULL,
	};
	struct tariff t;

	london();
	ASSERT_EQ(0, compile(&t, kv));
	/* 2026-08-30 23:30 UTC is 2026-08-31 00:30 BST: special */
	EXPECT_EQ(1u, tariff_period_at(&t, utc(2026, 8, 30, 23, 30, 0), 0));
	/* 2026-08-31 23:30 UTC is 2026-09-01 00:30 BST: not special */
	EXPECT_EQ(0u, tariff_period_at(&t, utc(2026, 8, 31, 23, 30, 0), 0));
}

TEST(spring_forward_day_offpeak_window_is_six_hours)
{
	struct tariff t;
	unsigned offpeak_minutes = 0;
	time_t day = utc(2026, 3, 29, 0, 0, 0);	/* Sunday 2026-03-29, local midnight GMT */
	static const char *const kv[] = {
		"type", "tou", "rates", "peak:30, offpeak:10",
		"weekday", "00:00-07:00 offpeak, 07:00-24:00 peak",
		"weekend", "00:00-07:00 offpeak, 07:00-24:00 peak", NULL,
	};

	london();
	ASSERT_EQ(0, compile(&t, kv));
	/* Local 2026-03-29 runs from 00:00 UTC to 23:00 UTC (23 hours). */
	for (time_t s = day; s < day + 23 * 3600; s += 60)
		offpeak_minutes += tariff_period_at(&t, s, 0) == 1;
	/* 00:00-01:00 GMT, then 02:00-07:00 BST: 6 real hours of off-peak */
	EXPECT_EQ(6u * 60, offpeak_minutes);
	EXPECT_EQ(0u, tariff_period_at(&t, day + 23 * 3600 - 60, 0));	/* 23:59 BST */
	EXPECT_EQ(1u, tariff_period_at(&t, day + 23 * 3600, 0));	/* 00:00 next day */
}

TEST(fall_back_day_offpeak_window_is_eight_hours)
{
	struct tariff t;
	unsigned offpeak_minutes = 0;
	time_t day = utc(2026, 10, 24, 23, 0, 0);	/* local 2026-10-25 00:00 BST */
	static const char *const kv[] = {
		"type", "tou", "rates", "peak:30, offpeak:10",
		"weekday", "00:00-07:00 offpeak, 07:00-24:00 peak",
		"weekend", "00:00-07:00 offpeak, 07:00-24:00 peak", NULL,
	};

	london();
	ASSERT_EQ(0, compile(&t, kv));
	/* The local day lasts 25 hours; 01:00-02:00 happens twice. */
	for (time_t s = day; s < day + 25 * 3600; s += 60)
		offpeak_minutes += tariff_period_at(&t, s, 0) == 1;
	EXPECT_EQ(8u * 60, offpeak_minutes);
	EXPECT_EQ(1u, tariff_local_days(day, day + 25 * 3600 - 1));
	EXPECT_EQ(2u, tariff_local_days(day, day + 25 * 3600));
}

TEST(tier_boundary_splits_one_delta)
{
	static const char *const kv[] = {
		"type", "tiered", "tiers", "100:20, 200:25.5, *:30", NULL,
	};
	struct tariff t;
	struct tariff_part parts[TARIFF_MAX_PERIODS];
	uint64_t before = 100ull * 1000000 - 500;	/* 500 mWh below 100 kWh */
	unsigned n;

	ASSERT_EQ(0, compile(&t, kv));
	ASSERT_EQ(3u, t.nperiods);
	n = tariff_split_import(&t, 0, before, 1200, parts);
	ASSERT_EQ(2u, n);
	EXPECT_EQ(0u, parts[0].period);
	EXPECT_EQ(500u, parts[0].mwh);
	EXPECT_EQ(500 * 20000, parts[0].cost_nano);
	EXPECT_EQ(1u, parts[1].period);
	EXPECT_EQ(700u, parts[1].mwh);
	EXPECT_EQ(700 * 25500, parts[1].cost_nano);
	/* exactly at the bound: next tier */
	EXPECT_EQ(1u, tariff_period_at(&t, 0, 100ull * 1000000));
	EXPECT_EQ(0u, tariff_period_at(&t, 0, 100ull * 1000000 - 1));
	/* one delta spanning all three tiers */
	n = tariff_split_import(&t, 0, 0, 250ull * 1000000, parts);
	ASSERT_EQ(3u, n);
	EXPECT_EQ(100ull * 1000000, parts[0].mwh);
	EXPECT_EQ(100ull * 1000000, parts[1].mwh);
	EXPECT_EQ(50ull * 1000000, parts[2].mwh);
	EXPECT_EQ((int64_t)100000000 * 20000 + (int64_t)100000000 * 25500 + (int64_t)50000000 * 30000,
		  parts[0].cost_nano + parts[1].cost_nano + parts[2].cost_nano);
}

TEST(billing_day_clamped_at_month_end)
{
	london();
	/* billing day 31: in February 2026 the period starts on the 28th */
	EXPECT_EQ(utc(2026, 2, 28, 0, 0, 0), tariff_billing_start(utc(2026, 3, 15, 12, 0, 0), 31));
	EXPECT_EQ(utc(2026, 3, 30, 23, 0, 0), /* 2026-03-31 00:00 BST */
		  tariff_billing_next(utc(2026, 2, 28, 0, 0, 0), 31));
	/* leap year: 2028-02-29 */
	EXPECT_EQ(utc(2028, 2, 29, 0, 0, 0), tariff_billing_start(utc(2028, 3, 1, 0, 0, 0), 30));
	/* period containing its own first instant, and the instant before */
	EXPECT_EQ(utc(2026, 1, 1, 0, 0, 0), tariff_billing_start(utc(2026, 1, 1, 0, 0, 0), 1));
	EXPECT_EQ(utc(2025, 12, 1, 0, 0, 0), tariff_billing_start(utc(2025, 12, 31, 23, 59, 59), 1));
	/* summer: local midnight is 23:00 UTC the day before */
	EXPECT_EQ(utc(2026, 6, 30, 23, 0, 0), tariff_billing_start(utc(2026, 7, 10, 0, 0, 0), 1));
}

TEST(local_days_count_calendar_days)
{
	time_t start;

	london();
	start = tariff_billing_start(utc(2026, 3, 10, 0, 0, 0), 1);
	ASSERT_EQ(utc(2026, 3, 1, 0, 0, 0), start);
	EXPECT_EQ(1u, tariff_local_days(start, start));
	/* 2026-03-31 23:30 BST = 22:30 UTC: 31 days despite the 23-hour day */
	EXPECT_EQ(31u, tariff_local_days(start, utc(2026, 3, 31, 22, 30, 0)));
	EXPECT_EQ(0u, tariff_local_days(start, start - 1));
}

TEST(errors_name_the_key)
{
	struct tariff_spec s;
	struct tariff t;
	const char *bad = NULL;
	char err[200];

	tariff_spec_init(&s);
	ASSERT_EQ(0, tariff_spec_set(&s, "type", "tou"));
	ASSERT_EQ(0, tariff_spec_set(&s, "rates", "peak:30, off:10"));
	ASSERT_EQ(0, tariff_spec_set(&s, "weekday", "00:00-07:00 off, 07:30-24:00 peak"));
	ASSERT_EQ(0, tariff_spec_set(&s, "weekend", "00:00-24:00 off"));
	EXPECT_NE(0, tariff_compile(&s, &t, &bad, err, sizeof(err)));
	EXPECT_STREQ("weekday", bad);
	ASSERT_EQ(0, tariff_spec_set(&s, "weekday", "00:00-07:00 off, 07:00-24:00 peek"));
	EXPECT_NE(0, tariff_compile(&s, &t, &bad, err, sizeof(err)));
	EXPECT_STREQ("weekday", bad);
	EXPECT_NE(NULL, strstr(err, "peek"));
	ASSERT_EQ(0, tariff_spec_set(&s, "weekday", "00:00-07:00 off, 07:00-23:00 peak"));
	EXPECT_NE(0, tariff_compile(&s, &t, &bad, err, sizeof(err)));
	EXPECT_STREQ("weekday", bad);
	ASSERT_EQ(0, tariff_spec_set(&s, "weekday", "00:00-07:00 off, 07:00-24:00 peak"));
	ASSERT_EQ(0, tariff_spec_set(&s, "special_days", "2026-02-30"));
	EXPECT_NE(0, tariff_compile(&s, &t, &bad, err, sizeof(err)));
	EXPECT_STREQ("special_days", bad);
	ASSERT_EQ(0, tariff_spec_set(&s, "special_days", ""));
	ASSERT_EQ(0, tariff_spec_set(&s, "feed_in", "-3"));
	EXPECT_NE(0, tariff_compile(&s, &t, &bad, err, sizeof(err)));
	EXPECT_STREQ("feed_in", bad);
	ASSERT_EQ(0, tariff_spec_set(&s, "feed_in", "3.1234"));
	EXPECT_NE(0, tariff_compile(&s, &t, &bad, err, sizeof(err)));
	ASSERT_EQ(0, tariff_spec_set(&s, "feed_in", "3.123"));
	EXPECT_EQ(0, tariff_compile(&s, &t, &bad, err, sizeof(err)));
	EXPECT_EQ(3123, t.feed_in_milli);
	EXPECT_EQ(-ENOENT, tariff_spec_set(&s, "colour", "x"));
	ASSERT_EQ(0, tariff_spec_set(&s, "type", "tiered"));
	ASSERT_EQ(0, tariff_spec_set(&s, "tiers", "100:20, 50:25, *:30"));
	EXPECT_NE(0, tariff_compile(&s, &t, &bad, err, sizeof(err)));
	EXPECT_STREQ("tiers", bad);
	ASSERT_EQ(0, tariff_spec_set(&s, "tiers", "100:20, 200:25"));
	EXPECT_NE(0, tariff_compile(&s, &t, &bad, err, sizeof(err)));
	EXPECT_STREQ("tiers", bad);
}

TEST_HARNESS_MAIN
