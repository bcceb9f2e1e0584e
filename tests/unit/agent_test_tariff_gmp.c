// SPDX-License-Identifier: GPL-2.0
/*
 * A town server's GMP_TARIFF as the meter's tariff (agent/uplink/tariff_gmp.c):
 * the spec compiles with tariff_compile() and prices every window as the
 * message says, every day; what the meter cannot represent is refused.
 * Messages go through gmp_encode()/gmp_decode_next() first, so they are
 * ones the uplink can actually deliver. Times in UTC.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gm_harness.h"
#include "tariff_gmp.h"

/* The largest price gmp_decode_next() accepts (POW_MAX in lib/proto/gmproto.c). */
#define PRICE_MAX ((int64_t)1 << 40)

struct win {
	int64_t start_min, import_price, export_price;
};

static struct gmp_msg tariff_msg(const struct win *w, size_t n)
{
	struct gmp_msg m = { .type = GMP_TARIFF };

	m.tariff.tseq = 1;
	m.tariff.effective = 1800000000;
	m.tariff.n = (int64_t)n;
	for (size_t i = 0; i < n; i++) {
		m.tariff.p[i].start_min = w[i].start_min;
		m.tariff.p[i].import_price = w[i].import_price;
		m.tariff.p[i].export_price = w[i].export_price;
	}
	return m;
}

/* Through the wire format and back: 0, or the gmproto error. */
static int wire(struct gmp_msg *m)
{
	uint8_t buf[512];
	size_t len = 0, off = 0;
	int r = gmp_encode(m, buf, sizeof(buf), &len);

	if (r)
		return r;
	memset(m, 0, sizeof(*m));
	r = gmp_decode_next(buf, len, &off, m);
	return r == 1 && off == len ? 0 : r ? r : -1;
}

/* The tariff in force before the update: EUR, a standing charge, special days. */
static void current(struct tariff_spec *s)
{
	tariff_spec_init(s);
	strcpy(s->currency, "EUR");
	strcpy(s->standing_charge, "45.5");
	strcpy(s->special_days, "2026-12-25");
}

static void utc_zone(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
}

static time_t at(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi };

	return timegm(&tm);
}

static int64_t price_at(const struct tariff *t, time_t when)
{
	return t->price[tariff_period_at(t, when, 0)];
}

/* Convert and compile; 0 or a failing step. */
static int convert(const struct win *w, size_t n, struct tariff_spec *spec, struct tariff *t,
		   char *err, size_t errlen)
{
	struct gmp_msg m = tariff_msg(w, n);
	struct tariff_spec cur;
	const char *bad = NULL;

	if (wire(&m))
		return -100;
	current(&cur);
	if (tariff_from_gmp(&m, &cur, spec, err, errlen))
		return -1;
	if (tariff_compile(spec, t, &bad, err, errlen))
		return -2;
	return 0;
}

TEST(three_windows_two_prices_as_tou)
{
	static const struct win w[] = {
		{ 0, 12005, 4100 },		/* 00:00-07:00 */
		{ 420, 28620, 4100 },		/* 07:00-21:30 */
		{ 1290, 12005, 4100 },		/* 21:30-24:00: the first price again */
	};
	/* a Wednesday, a Saturday and the special day (a Friday) of the tariff in force */
	static const int days[][3] = { { 2026, 3, 4 }, { 2026, 3, 7 }, { 2026, 12, 25 } };
	struct tariff_spec spec;
	struct tariff t;
	char err[200] = "";

	utc_zone();
	ASSERT_EQ(0, convert(w, 3, &spec, &t, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_STREQ("tou", spec.type);
	EXPECT_EQ(TARIFF_TOU, t.type);
	EXPECT_EQ(2u, t.nperiods);	/* one period per distinct import price */
	EXPECT_EQ(4100, t.feed_in_milli);
	/* kept from the tariff in force */
	EXPECT_STREQ("EUR", t.currency);
	EXPECT_EQ(45500, t.standing_milli);
	EXPECT_EQ(1u, t.nspecial);

	for (size_t d = 0; d < sizeof(days) / sizeof(days[0]); d++) {
		int y = days[d][0], mo = days[d][1], dd = days[d][2];

		EXPECT_EQ(12005, price_at(&t, at(y, mo, dd, 0, 0))) TH_LOG("day %zu", d);
		EXPECT_EQ(12005, price_at(&t, at(y, mo, dd, 3, 30))) TH_LOG("day %zu", d);
		EXPECT_EQ(12005, price_at(&t, at(y, mo, dd, 6, 59))) TH_LOG("day %zu", d);
		EXPECT_EQ(28620, price_at(&t, at(y, mo, dd, 7, 0))) TH_LOG("day %zu", d);
		EXPECT_EQ(28620, price_at(&t, at(y, mo, dd, 14, 0))) TH_LOG("day %zu", d);
		EXPECT_EQ(28620, price_at(&t, at(y, mo, dd, 21, 29))) TH_LOG("day %zu", d);
		EXPECT_EQ(12005, price_at(&t, at(y, mo, dd, 21, 30))) TH_LOG("day %zu", d);
		EXPECT_EQ(12005, price_at(&t, at(y, mo, dd, 23, 59))) TH_LOG("day %zu", d);
	}
}

TEST(one_window_is_flat)
{
	static const struct win w[] = { { 0, 7, 0 } };	/* 0.007 minor units per kWh */
	struct tariff_spec spec;
	struct tariff t;
	char err[200] = "";

	utc_zone();
	ASSERT_EQ(0, convert(w, 1, &spec, &t, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_STREQ("flat", spec.type);
	EXPECT_EQ(TARIFF_FLAT, t.type);
	EXPECT_EQ(1u, t.nperiods);
	EXPECT_EQ(7, t.price[0]);
	EXPECT_EQ(7, price_at(&t, at(2026, 3, 4, 12, 0)));
	EXPECT_EQ(0, t.feed_in_milli);
	EXPECT_STREQ("EUR", t.currency);
}

/* A flat update replaces a time-of-use tariff in force, and the other way round. */
TEST(replaces_the_other_type)
{
	static const struct win flat[] = { { 0, 20000, 5000 } };
	static const struct win tou[] = { { 0, 10000, 5000 }, { 720, 30000, 5000 } };
	struct gmp_msg m;
	struct tariff_spec cur, spec;
	struct tariff t;
	const char *bad = NULL;
	char err[200] = "";

	utc_zone();
	current(&cur);
	strcpy(cur.type, "tou");
	strcpy(cur.rates, "day:30, night:10");
	strcpy(cur.weekday, "00:00-06:00 night, 06:00-24:00 day");
	strcpy(cur.weekend, "00:00-24:00 night");
	m = tariff_msg(flat, 1);
	ASSERT_EQ(0, tariff_from_gmp(&m, &cur, &spec, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, tariff_compile(&spec, &t, &bad, err, sizeof(err))) TH_LOG("%s: %s", bad, err);
	EXPECT_EQ(TARIFF_FLAT, t.type);
	EXPECT_EQ(20000, price_at(&t, at(2026, 3, 7, 3, 0)));	/* was night on a Saturday */

	cur = spec;
	m = tariff_msg(tou, 2);
	ASSERT_EQ(0, tariff_from_gmp(&m, &cur, &spec, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, tariff_compile(&spec, &t, &bad, err, sizeof(err))) TH_LOG("%s: %s", bad, err);
	EXPECT_EQ(TARIFF_TOU, t.type);
	EXPECT_EQ(10000, price_at(&t, at(2026, 3, 7, 11, 59)));
	EXPECT_EQ(30000, price_at(&t, at(2026, 3, 7, 12, 0)));
}

/* 12 windows (the most a message holds), 6 distinct prices, the largest the wire carries. */
TEST(twelve_windows_six_prices_at_the_limits)
{
	static const int64_t prices[6] = { 1, 999, 1000, 28620, 123456789, PRICE_MAX };
	struct win w[GMP_TARIFF_MAX];
	struct tariff_spec spec;
	struct tariff t;
	char err[200] = "";

	utc_zone();
	for (size_t i = 0; i < GMP_TARIFF_MAX; i++) {
		/* hourly from 00:00, the last window only 23:59-24:00 */
		w[i].start_min = i + 1 < GMP_TARIFF_MAX ? (int64_t)i * 60 : 1439;
		w[i].import_price = prices[i % 6];
		w[i].export_price = PRICE_MAX;
	}
	ASSERT_EQ(0, convert(w, GMP_TARIFF_MAX, &spec, &t, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(6u, t.nperiods);
	EXPECT_EQ(PRICE_MAX, t.feed_in_milli);
	for (size_t i = 0; i < GMP_TARIFF_MAX; i++) {
		int64_t s = w[i].start_min;
		int64_t e = i + 1 < GMP_TARIFF_MAX ? w[i + 1].start_min : 1440;

		EXPECT_EQ(w[i].import_price, price_at(&t, at(2026, 3, 4, (int)(s / 60), (int)(s % 60))))
			TH_LOG("window %zu start", i);
		EXPECT_EQ(w[i].import_price,
			  price_at(&t, at(2026, 3, 4, (int)((e - 1) / 60), (int)((e - 1) % 60))))
			TH_LOG("window %zu end", i);
	}
	/* the window 10:00-23:59 */
	EXPECT_EQ(prices[10 % 6], price_at(&t, at(2026, 3, 4, 18, 0)));
}

struct bad_case {
	struct win w[8];
	size_t n;
	const char *why;
};

TEST(refusals)
{
	static const struct bad_case cases[] = {
		{ { { 60, 100, 0 }, { 600, 200, 0 } }, 2, "the first window must start at 00:00" },
		{ { { 1, 100, 0 } }, 1, "the first window must start at 00:00" },
		{ { { 0, 100, 0 }, { 600, 200, 0 }, { 600, 300, 0 } }, 3,
		  "window 3 does not start after the one before" },
		{ { { 0, 100, 0 }, { 600, 200, 0 }, { 300, 300, 0 } }, 3,
		  "window 3 does not start after the one before" },
		{ { { 0, 100, 5 }, { 600, 200, 5 }, { 900, 100, 6 } }, 3,
		  "export prices differ by window: the meter has one feed-in price" },
		{ { { 0, 1, 0 }, { 60, 2, 0 }, { 120, 3, 0 }, { 180, 4, 0 }, { 240, 5, 0 },
		    { 300, 6, 0 }, { 360, 7, 0 } }, 7, "more than 6 distinct import prices" },
	};
	struct tariff_spec cur, spec;
	char err[200];

	current(&cur);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gmp_msg m = tariff_msg(cases[i].w, cases[i].n);

		ASSERT_EQ(0, wire(&m)) TH_LOG("case %zu is not a valid message", i);
		err[0] = 0;
		EXPECT_EQ(-1, tariff_from_gmp(&m, &cur, &spec, err, sizeof(err))) TH_LOG("case %zu", i);
		EXPECT_STREQ(cases[i].why, err) TH_LOG("case %zu", i);
	}
}

TEST(other_message_types_refused)
{
	static const struct win w[] = { { 0, 100, 0 } };
	struct tariff_spec cur, spec;
	struct gmp_msg m = tariff_msg(w, 1);
	char err[200] = "";

	current(&cur);
	ASSERT_EQ(0, tariff_from_gmp(&m, &cur, &spec, err, sizeof(err))) TH_LOG("%s", err);
	m.type = GMP_GRANT;	/* the same fields, another message */
	EXPECT_EQ(-1, tariff_from_gmp(&m, &cur, &spec, err, sizeof(err)));
	EXPECT_NE(0, err[0]);
}

TEST_HARNESS_MAIN
