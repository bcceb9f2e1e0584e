// SPDX-License-Identifier: GPL-2.0
/*
 * meterweb's pure pieces: its config (errors name file, line, key), the
 * load profile folded into local days (a DST day is 23 h), the tariff now
 * and next around midnight and daylight saving, guest codes (one use,
 * expiry) with simulated time. Expectations are computed here with the C
 * library's local time, independently of the code under test.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "guest.h"
#include "history.h"
#include "mw_config.h"
#include "tariff_view.h"

static int64_t local(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi,
			 .tm_isdst = -1 };

	return (int64_t)mktime(&tm);
}

static void london(void)
{
	setenv("TZ", "Europe/London", 1);
	tzset();
}

TEST(config_errors_name_file_line_key)
{
	struct mw_config c;
	char err[256];

	mw_config_defaults(&c);
	ASSERT_EQ(0, mw_config_parse(&c, "m.conf", "[web]\nlisten = :9000\nguest_code_minutes = 0.5\n", err, sizeof(err)));
	EXPECT_STREQ(":9000", c.listen);
	EXPECT_EQ(30u, c.guest_code_s);
	EXPECT_EQ(120u, c.guest_session_minutes);
	mw_config_defaults(&c);
	EXPECT_EQ(-EINVAL, mw_config_parse(&c, "m.conf", "[web]\n\nidle_minutes = 0\n", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "m.conf:3"));
	EXPECT_NE(NULL, strstr(err, "idle_minutes"));
	mw_config_defaults(&c);
	EXPECT_EQ(-EINVAL, mw_config_parse(&c, "m.conf", "[web]\ncolour = red\n", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "m.conf:2"));
	EXPECT_NE(NULL, strstr(err, "colour"));
	mw_config_defaults(&c);
	EXPECT_EQ(-EINVAL, mw_config_parse(&c, "m.conf", "[web]\ntls_cert = /x.pem\n", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "tls_key"));
	mw_config_defaults(&c);
	EXPECT_EQ(-EINVAL, mw_config_parse(&c, "m.conf", "[web]\nallow_remote = perhaps\n", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "allow_remote"));
}

/* Ten days of 15-minute intervals across the spring DST change, folded into 7 local days. */
TEST(fold_days_across_dst)
{
	int64_t from = local(2026, 3, 24, 0, 0), now = local(2026, 3, 31, 12, 0);
	size_t n = (size_t)((now - from) / 900);
	struct mw_interval *iv = calloc(n, sizeof(*iv));
	struct mw_day days[7];
	uint64_t want[7] = { 0 }, wantn[7] = { 0 };
	struct tm first;
	time_t t0;

	london();
	from = local(2026, 3, 24, 0, 0);
	now = local(2026, 3, 31, 12, 0);
	n = (size_t)((now - from) / 900);
	ASSERT_NE(NULL, iv);
	for (size_t i = 0; i < n; i++) {
		iv[i].start = from + (int64_t)i * 900;
		iv[i].import_mwh = (uint32_t)(1000 + i % 97);
		iv[i].export_mwh = (uint32_t)(i % 5);
		iv[i].renew_mwh = (uint32_t)(i % 7);
	}
	/* expectation: the local calendar date of each interval, days counted back from now's */
	t0 = (time_t)now;
	localtime_r(&t0, &first);
	for (size_t i = 0; i < n; i++) {
		time_t t = (time_t)iv[i].start;
		struct tm tm;
		int back;

		localtime_r(&t, &tm);
		back = (first.tm_yday - tm.tm_yday);	/* same year here */
		if (back >= 0 && back < 7) {
			want[6 - back] += iv[i].import_mwh;
			wantn[6 - back]++;
		}
	}
	EXPECT_EQ(wantn[0] + wantn[1] + wantn[2] + wantn[3] + wantn[4] + wantn[5] + wantn[6],
		  mw_fold_days(iv, n, now, 7, days));
	for (int d = 0; d < 7; d++) {
		time_t t = (time_t)days[d].start;
		struct tm tm;

		localtime_r(&t, &tm);
		EXPECT_EQ(0, tm.tm_hour);	/* a local midnight */
		EXPECT_EQ(0, tm.tm_min);
		EXPECT_EQ(want[d], days[d].import_mwh);
		EXPECT_EQ(wantn[d], days[d].intervals);
	}
	/* Sunday 29 March is 23 hours long: fewer intervals than the full days around it */
	EXPECT_EQ(wantn[4] + 4, wantn[3]);	/* days: 25 ... 31 March, the 29th is [4] */
	EXPECT_EQ(wantn[4] + 4, wantn[5]);
	free(iv);
}

static int tou(struct tariff_spec *s)
{
	tariff_spec_init(s);
	return tariff_spec_set(s, "type", "tou") | tariff_spec_set(s, "currency", "GBP") |
	       tariff_spec_set(s, "rates", "peak:35.5, offpeak:12.25") |
	       tariff_spec_set(s, "weekday", "00:00-07:00 offpeak, 07:00-24:00 peak") |
	       tariff_spec_set(s, "weekend", "00:00-07:00 offpeak, 07:00-24:00 peak");
}

static int32_t permille(int64_t now, int64_t next)
{
	int64_t d = (now - next) * 1000;

	return (int32_t)(d >= 0 ? (d + now / 2) / now : -((-d + now / 2) / now));
}

TEST(tariff_next_around_midnight_and_dst)
{
	struct tariff_spec s;
	struct mw_tariff_view v;
	int64_t now;

	london();
	ASSERT_EQ(0, tou(&s));
	/* 23:30 on a winter Friday: peak now, offpeak from midnight, 65.5 % cheaper */
	now = local(2026, 1, 16, 23, 30);
	ASSERT_EQ(0, mw_tariff_view(&s, now, 0, &v));
	EXPECT_STREQ("peak", v.now_name);
	EXPECT_EQ(35500, v.now_price);
	ASSERT_TRUE(v.has_next);
	EXPECT_EQ(local(2026, 1, 17, 0, 0), v.next_at);
	EXPECT_STREQ("offpeak", v.next_name);
	EXPECT_EQ(12250, v.next_price);
	EXPECT_EQ(permille(35500, 12250), v.cheaper_permille);
	EXPECT_LT(0, v.cheaper_permille);
	/* offpeak at 00:30, peak at 07:00: dearer (negative) */
	now = local(2026, 1, 17, 0, 30);
	ASSERT_EQ(0, mw_tariff_view(&s, now, 0, &v));
	EXPECT_STREQ("offpeak", v.now_name);
	EXPECT_EQ(local(2026, 1, 17, 7, 0), v.next_at);
	EXPECT_EQ(permille(12250, 35500), v.cheaper_permille);
	EXPECT_GT(0, v.cheaper_permille);
	/* the spring night (29 March 2026): 07:00 BST is 5.5 h after 00:30 GMT, not 6.5 */
	now = local(2026, 3, 29, 0, 30);
	ASSERT_EQ(0, mw_tariff_view(&s, now, 0, &v));
	EXPECT_EQ(local(2026, 3, 29, 7, 0), v.next_at);
	EXPECT_EQ(now + 5 * 3600 + 1800, v.next_at);
	/* the autumn night (25 October 2026): 7.5 h */
	now = local(2026, 10, 25, 0, 30);
	ASSERT_EQ(0, mw_tariff_view(&s, now, 0, &v));
	EXPECT_EQ(local(2026, 10, 25, 7, 0), v.next_at);
	EXPECT_EQ(now + 7 * 3600 + 1800, v.next_at);
}

TEST(tariff_flat_and_bad)
{
	struct tariff_spec s;
	struct mw_tariff_view v;

	london();
	tariff_spec_init(&s);
	ASSERT_EQ(0, tariff_spec_set(&s, "type", "flat"));
	ASSERT_EQ(0, tariff_spec_set(&s, "rate", "25.5"));
	ASSERT_EQ(0, mw_tariff_view(&s, local(2026, 1, 16, 12, 0), 0, &v));
	EXPECT_EQ(25500, v.now_price);
	EXPECT_FALSE(v.has_next);
	ASSERT_EQ(0, tou(&s));
	ASSERT_EQ(0, tariff_spec_set(&s, "weekday", "00:00-07:00 cheap, 07:00-24:00 peak"));
	EXPECT_EQ(-EINVAL, mw_tariff_view(&s, local(2026, 1, 16, 12, 0), 0, &v));
	EXPECT_FALSE(v.valid);
	EXPECT_NE(NULL, strstr(v.err, "weekday"));
}

TEST(guest_codes_once_and_expiry)
{
	struct mw_guests g;
	char c1[MW_GUEST_DIGITS + 1], c2[MW_GUEST_DIGITS + 1], typed[16], wrong[MW_GUEST_DIGITS + 1];
	int64_t t = 1000000, exp;

	ASSERT_EQ(0, mw_guests_init(&g, 600));
	ASSERT_EQ(0, mw_guest_create(&g, t, c1, &exp));
	EXPECT_EQ(t + 600, exp);
	EXPECT_EQ(MW_GUEST_DIGITS, (int)strlen(c1));
	EXPECT_EQ(1u, mw_guest_waiting(&g, t));
	/* a code that is not this one (every digit changed) */
	for (int i = 0; i < MW_GUEST_DIGITS; i++)
		wrong[i] = (char)('0' + (c1[i] - '0' + 1) % 10);
	wrong[MW_GUEST_DIGITS] = 0;
	EXPECT_EQ(-ENOENT, mw_guest_redeem(&g, wrong, t + 1));
	EXPECT_EQ(-EINVAL, mw_guest_redeem(&g, "1234", t + 1));
	EXPECT_EQ(-EINVAL, mw_guest_redeem(&g, "12345678x", t + 1));
	/* typed with a dash in the middle: accepted, once */
	snprintf(typed, sizeof(typed), "%.4s-%.4s", c1, c1 + 4);
	EXPECT_EQ(0, mw_guest_redeem(&g, typed, t + 599));
	EXPECT_EQ(-ENOENT, mw_guest_redeem(&g, c1, t + 599));
	/* expiry: valid up to valid_s, refused at valid_s */
	ASSERT_EQ(0, mw_guest_create(&g, t, c2, &exp));
	EXPECT_EQ(-ETIME, mw_guest_redeem(&g, c2, exp));
	EXPECT_EQ(-ENOENT, mw_guest_redeem(&g, c2, exp - 1));	/* gone once seen expired */
	/* at most MW_GUEST_MAX wait: the oldest goes first */
	ASSERT_EQ(0, mw_guest_create(&g, t, c1, &exp));
	for (int i = 1; i <= MW_GUEST_MAX; i++)
		ASSERT_EQ(0, mw_guest_create(&g, t + i, c2, &exp));
	EXPECT_EQ((unsigned)MW_GUEST_MAX, mw_guest_waiting(&g, t + MW_GUEST_MAX));
	if (strcmp(c1, c2))
		EXPECT_EQ(-ENOENT, mw_guest_redeem(&g, c1, t + MW_GUEST_MAX));
	EXPECT_EQ(0, mw_guest_redeem(&g, c2, t + MW_GUEST_MAX));
	/* all expire together */
	EXPECT_EQ(0u, mw_guest_waiting(&g, t + MW_GUEST_MAX + 600));
	mw_guests_destroy(&g);
}

TEST_HARNESS_MAIN
