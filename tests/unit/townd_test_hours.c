// SPDX-License-Identifier: GPL-2.0
/*
 * The hours a town sends to the main server: the pure rules (tariff
 * periods across daylight saving and tariff changes, coverage, revisions,
 * prices) and their storage (building from readings, send intents,
 * revisions of sent hours, month retention, the 2 -> 3 migration). Every
 * expectation is computed here from the readings the test makes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "townd_db.h"
#include "townd_hours.h"
#include "townd_updb.h"

/* ---- an independent clock: the EU summer-time rule, written from its definition ---- */

static int64_t days_civil(int64_t y, int m, int d)
{
	/* days since 1970-01-01, proleptic Gregorian (H. Hinnant's algorithm) */
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

/* 01:00 UTC on the last Sunday of month m of year y. */
static int64_t last_sunday_0100(int64_t y, int m)
{
	int last = m == 3 ? 31 : 31;	/* March and October have 31 days */
	int64_t day = days_civil(y, m, last);
	int wday = (int)((day + 4) % 7);	/* 1970-01-01 was a Thursday */

	return (day - wday) * 86400 + 3600;
}

/* Europe/London: GMT, and BST (+1 h) from the last Sunday of March to that of October. */
static int32_t eu_london(void *ctx, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	(void)ctx;
	gmtime_r(&tt, &tm);
	return t >= last_sunday_0100(tm.tm_year + 1900, 3) &&
	       t < last_sunday_0100(tm.tm_year + 1900, 10) ? 3600 : 0;
}

static struct th_tariff tariff3(int64_t effective, int64_t tseq)
{
	struct th_tariff t = { .effective = effective, .tseq = tseq, .n = 3,
			       .start_min = { 0, 7 * 60, 23 * 60 },
			       .import_price = { 12000, 31000, 12500 },
			       .export_price = { 8000, 8000, 8000 } };
	return t;
}

/* The slot by definition: local clock reading, the last start at or before it. */
static int expected_slot(const struct th_tariff *t, int64_t when)
{
	int64_t local = when + eu_london(NULL, when);
	int minute = (int)((local % 86400) / 60), slot = t->n - 1;

	for (int i = 0; i < t->n; i++)
		if (minute >= t->start_min[i])
			slot = i;
	return slot;
}

TEST(periods_across_daylight_saving)
{
	struct th_tariff t = tariff3(0, 1);
	int64_t spring = last_sunday_0100(2026, 3), autumn = last_sunday_0100(2026, 10);
	int changed = 0;

	/* every quarter hour of the days around both changes */
	for (int64_t base = 0; base < 2; base++) {
		int64_t from = (base ? autumn : spring) - 2 * 86400;

		for (int64_t when = from; when < from + 4 * 86400; when += 900) {
			int got = th_period(&t, 1, when, eu_london, NULL);

			ASSERT_EQ(expected_slot(&t, when), got) TH_LOG("t=%lld", (long long)when);
			/* the same UTC time a day apart falls in another slot only near a change */
			changed += got != th_period(&t, 1, when - 86400, eu_london, NULL);
		}
	}
	/*
	 * Each slot start moves by an hour of UTC at each change: on the first
	 * day after it, 4 quarter hours before every start differ from the day
	 * before (e.g. 06:00-07:00 UTC is peak in summer time only).
	 */
	EXPECT_EQ(2 * t.n * 4, changed);
	/* 06:30 UTC: 06:30 GMT the day before the change, 07:30 BST on the day */
	EXPECT_EQ(0, th_period(&t, 1, spring - 86400 + 5 * 3600 + 1800, eu_london, NULL));
	EXPECT_EQ(1, th_period(&t, 1, spring + 5 * 3600 + 1800, eu_london, NULL));
}

/* The process's zone (TZ from [town] timezone) agrees with the rule all year. */
TEST(localtime_offsets_match_the_rule)
{
	char path[128];
	const char *dir = getenv("TZDIR");

	snprintf(path, sizeof(path), "%s/Europe/London", dir ? dir : "/usr/share/zoneinfo");
	if (access(path, R_OK))
		SKIP(return, "no tz database (%s)", path);
	setenv("TZ", "Europe/London", 1);
	tzset();
	for (int64_t t = days_civil(2026, 1, 1) * 86400; t < days_civil(2027, 1, 1) * 86400;
	     t += 1800) {
		ASSERT_EQ(eu_london(NULL, t), th_offset_localtime(NULL, t))
			TH_LOG("t=%lld", (long long)t);
	}
	setenv("TZ", "UTC", 1);
	tzset();
}

TEST(periods_across_tariff_changes)
{
	int64_t e1 = days_civil(2026, 9, 10) * 86400 + 3600, e2 = e1 + 5 * 86400;
	struct th_tariff t[3] = { tariff3(e2, 9), tariff3(e1, 4), tariff3(e2, 7) };
	const struct th_tariff *in;

	t[0].n = 1;	/* the later command at e2: one slot all day */
	th_tariffs_sort(t, 3);
	EXPECT_EQ(NULL, th_tariff_at(t, 3, e1 - 1));
	EXPECT_EQ(0, th_period(t, 3, e1 - 3600 * 10, NULL, NULL));	/* no tariff: 0 */
	in = th_tariff_at(t, 3, e1);
	ASSERT_NE(NULL, in);
	EXPECT_EQ(4, in->tseq);
	for (int64_t when = e1; when < e2; when += 1800) {
		time_t tt = (time_t)when;
		struct tm tm;
		int minute, want;

		gmtime_r(&tt, &tm);
		minute = tm.tm_hour * 60 + tm.tm_min;
		want = minute >= 23 * 60 ? 2 : minute >= 7 * 60 ? 1 : 0;
		ASSERT_EQ(want, th_period(t, 3, when, NULL, NULL));
	}
	in = th_tariff_at(t, 3, e2);
	EXPECT_EQ(9, in->tseq);		/* same effective time: the later command */
	for (int64_t when = e2; when < e2 + 86400; when += 1800)
		ASSERT_EQ(0, th_period(t, 3, when, NULL, NULL));
	/* a tariff whose first slot starts after midnight: the last slot runs on */
	t[0].n = 2;
	t[0].start_min[0] = 60;
	t[0].start_min[1] = 600;
	EXPECT_EQ(1, th_slot(&t[0], days_civil(2026, 9, 20) * 86400 + 59 * 60, NULL, NULL));
	EXPECT_EQ(0, th_slot(&t[0], days_civil(2026, 9, 20) * 86400 + 60 * 60, NULL, NULL));
}

TEST(coverage_and_incomplete_hours)
{
	int64_t h = days_civil(2026, 9, 10) * 86400 + 5 * 3600;
	struct gmp_msg m = { .type = GMP_READING };
	struct th_row r;

	EXPECT_EQ(h, th_hour_of(h + 3599));
	EXPECT_EQ(h - 3600, th_hour_of(h - 1));
	EXPECT_EQ(1800, th_covered(h - 1800, 3600, h));		/* straddles the start */
	EXPECT_EQ(900, th_covered(h + 2700, 1800, h));		/* straddles the end */
	EXPECT_EQ(0, th_covered(h + 3600, 60, h));
	EXPECT_EQ(0, th_covered(h - 60, 60, h));
	th_row_init(&r);
	for (int i = 0; i < 3; i++) {
		m.reading.start = h + 900 * i;
		m.reading.interval_s = 900;
		m.reading.import_mwh = 100 + i;
		m.reading.flags = i == 1 ? GMP_RF_GAP : 0;
		th_row_add(&r, &m, h);
	}
	EXPECT_EQ(2700, r.covered);
	EXPECT_EQ(303, r.import_mwh);
	EXPECT_EQ(3, r.readings);
	EXPECT_EQ(GMP_HF_INCOMPLETE | GMP_RF_GAP, th_hour_flags(r.flags, r.covered, false));
	m.reading.start = h + 2700;
	th_row_add(&r, &m, h);
	EXPECT_EQ(GMP_RF_GAP, th_hour_flags(r.flags, r.covered, false));
	EXPECT_EQ(GMP_RF_GAP | GMP_HF_ADMIN, th_hour_flags(r.flags, r.covered, true));
	EXPECT_TRUE(th_closed(h, h + 3600 + 300, 300));
	EXPECT_FALSE(th_closed(h, h + 3600 + 299, 300));
}

TEST(revisions)
{
	struct th_row r;

	th_row_init(&r);
	EXPECT_TRUE(th_row_pending(&r));
	EXPECT_EQ(0, r.rev);
	th_row_touch(&r);		/* not sent yet: still the first revision */
	EXPECT_EQ(0, r.rev);
	r.sent_rev = r.rev;		/* into the outbox */
	EXPECT_FALSE(th_row_pending(&r));
	th_row_touch(&r);		/* a late reading */
	EXPECT_EQ(1, r.rev);
	EXPECT_TRUE(th_row_pending(&r));
	th_row_touch(&r);		/* another before it went: the same revision */
	EXPECT_EQ(1, r.rev);
	r.sent_rev = r.rev;
	th_row_touch(&r);
	EXPECT_EQ(2, r.rev);
}

TEST(prices_round_once_half_away_from_zero)
{
	struct th_tariff t = tariff3(0, 1);

	EXPECT_EQ(1, th_round_milli(1499999));
	EXPECT_EQ(2, th_round_milli(1500000));
	EXPECT_EQ(-1, th_round_milli(-1499999));
	EXPECT_EQ(-2, th_round_milli(-1500000));
	EXPECT_EQ(0, th_round_milli(499999));
	/* 1234 mWh at 31000 milli-minor/kWh less 17 mWh at 8000 */
	EXPECT_EQ(1234LL * 31000 - 17 * 8000, th_price_nano(&t, 1, 1234, 17));
	EXPECT_EQ(0, th_price_nano(&t, 3, 1234, 17));	/* no such slot */
	EXPECT_EQ(0, th_price_nano(NULL, 0, 1234, 17));
}

/* ---- storage ------------------------------------------------------------------------ */

#define MONTH0	(days_civil(2026, 9, 1) * 86400)

struct rd {
	int64_t start, interval, imp, exp, ren, flags;
};

FIXTURE(store) {
	char dir[64], path[128];
	struct townd_db d;
	int64_t seq[4];
};

FIXTURE_SETUP(store)
{
	char err[256];
	struct gmp_keypair kp;

	ASSERT_LE(0, sodium_init());
	strcpy(self->dir, "/tmp/townd-hours-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/town.db", self->dir);
	ASSERT_EQ(0, tdb_open(&self->d, self->path, 0, err, sizeof(err))) TH_LOG("%s", err);
	for (unsigned int id = 1; id <= 2; id++) {
		gmp_keypair_generate(&kp);
		ASSERT_EQ(0, tdb_add_meter(&self->d, id, kp.pk, NULL, 1, err, sizeof(err)));
	}
	memset(self->seq, 0, sizeof(self->seq));
}

FIXTURE_TEARDOWN(store)
{
	char cmd[128];

	tdb_close(&self->d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		TH_LOG("rm failed");
}

/* Store a reading of meter id (next seq), received at `now`. */
static void put(struct __test_metadata *_metadata, FIXTURE_DATA(store) *self, unsigned int id,
		const struct rd *r, int64_t now)
{
	struct gmp_msg m = { .type = GMP_READING };

	m.reading.seq = ++self->seq[id];
	m.reading.start = r->start;
	m.reading.interval_s = r->interval;
	m.reading.import_mwh = r->imp;
	m.reading.export_mwh = r->exp;
	m.reading.renew_mwh = r->ren;
	m.reading.flags = r->flags;
	ASSERT_EQ(0, tdb_begin(&self->d));
	ASSERT_EQ(1, tdb_store(&self->d, id, &m, now));
	ASSERT_EQ(0, tdb_commit(&self->d));
}

static void queue_tariff(struct __test_metadata *_metadata, struct townd_db *d,
			 unsigned int id, const struct th_tariff *t)
{
	struct gmp_msg m = { .type = GMP_TARIFF };
	char err[256];

	m.tariff.tseq = 1;
	m.tariff.effective = t->effective;
	m.tariff.n = t->n;
	for (int i = 0; i < t->n; i++) {
		m.tariff.p[i].start_min = t->start_min[i];
		m.tariff.p[i].import_price = t->import_price[i];
		m.tariff.p[i].export_price = t->export_price[i];
	}
	ASSERT_EQ(0, tdb_queue(d, id, &m, 1, err, sizeof(err))) TH_LOG("%s", err);
}

static size_t build_all(struct __test_metadata *_metadata, struct townd_db *d)
{
	size_t total = 0, n;

	do {
		ASSERT_EQ(0, tup_build(d, NULL, NULL, 3, &n));	/* small chunks: resumable */
		total += n;
	} while (n);
	return total;
}

/* What the rows of (meter, hour, period) must hold: sums over the readings given. */
struct want {
	int64_t imp, exp, ren, n, flags, covered;
};

static void expect_row(struct __test_metadata *_metadata, const struct gmp_msg *m,
		       const struct want *w, int64_t meter_hour_covered, int64_t rev)
{
	EXPECT_EQ(GMP_HOUR, m->type);
	EXPECT_EQ(w->imp, m->hour.import_mwh);
	EXPECT_EQ(w->exp, m->hour.export_mwh);
	EXPECT_EQ(w->ren, m->hour.renew_mwh);
	EXPECT_EQ(w->n, m->hour.readings);
	EXPECT_EQ(th_hour_flags(w->flags, meter_hour_covered, false), m->hour.flags);
	EXPECT_EQ(rev, m->hour.rev);
}

TEST_F(store, hours_from_readings_sent_once_then_revised)
{
	struct th_tariff t = tariff3(MONTH0, 1);
	int64_t h0 = MONTH0 + 6 * 3600, now = MONTH0 + 10 * 86400;
	struct rd rs[] = {	/* meter 1: 06:00-07:00 in four quarters, a period change at 07:00 */
		{ h0, 900, 101, 1, 5, 0 }, { h0 + 900, 900, 102, 0, 5, GMP_RF_GAP },
		{ h0 + 1800, 900, 103, 2, 5, 0 }, { h0 + 2700, 900, 104, 0, 5, 0 },
		{ h0 + 3600, 1800, 205, 0, 0, 0 },
	};
	struct gmp_msg out[16];
	struct want w1 = { 0 }, w2 = { 0 };
	int64_t cov2 = 0, tot_imp = 0;
	int n;

	queue_tariff(_metadata, &self->d, 1, &t);
	for (size_t i = 0; i < 5; i++)
		put(_metadata, self, 1, &rs[i], now);
	/* meter 2: half of 06:00-07:00 only, no tariff (period 0) */
	put(_metadata, self, 2, &(struct rd){ h0 + 1800, 1800, 77, 0, 0, 0 }, now);
	for (size_t i = 0; i < 4; i++) {
		w1.imp += rs[i].imp;
		w1.exp += rs[i].exp;
		w1.ren += rs[i].ren;
		w1.n++;
		w1.flags |= rs[i].flags;
		tot_imp += rs[i].imp;
	}
	w2 = (struct want){ 77, 0, 0, 1, 0, 0 };
	cov2 = 1800;
	tot_imp += 77;
	EXPECT_EQ(6, build_all(_metadata, &self->d));
	EXPECT_EQ(0, build_all(_metadata, &self->d));	/* nothing twice */
	/* not closed yet: nothing to send */
	EXPECT_EQ(0, tup_next_batch(&self->d, h0 + 3600 + 299, 300, false, 1, out, 16));
	n = tup_next_batch(&self->d, h0 + 3600 + 300, 300, false, 1, out, 16);
	ASSERT_EQ(3, n);	/* meter 1 period 0, meter 2 period 0, the town hour */
	EXPECT_EQ(1, out[0].hour.meter);
	EXPECT_EQ(th_slot(&t, h0, NULL, NULL), out[0].hour.period);	/* UTC town: 06:00 */
	EXPECT_EQ(h0, out[0].hour.hour);
	EXPECT_EQ(1, out[0].hour.seq);
	expect_row(_metadata, &out[0], &w1, 3600, 0);
	EXPECT_EQ(2, out[1].hour.meter);
	expect_row(_metadata, &out[1], &w2, cov2, 0);
	EXPECT_EQ(GMP_TOWN_HOUR, out[2].type);
	EXPECT_EQ(3, out[2].town_hour.seq);
	EXPECT_EQ(2, out[2].town_hour.meters);
	EXPECT_EQ(tot_imp, out[2].town_hour.import_mwh);
	EXPECT_EQ(GMP_HF_INCOMPLETE, out[2].town_hour.flags);	/* meter 2 covers half */
	/* 07:00 is peak (slot 1): the next hour when it closes */
	EXPECT_EQ(0, tup_next_batch(&self->d, h0 + 3600 + 300, 300, false, 4, out, 16));
	n = tup_next_batch(&self->d, now, 300, false, 4, out, 16);
	ASSERT_EQ(2, n);
	EXPECT_EQ(1, out[0].hour.period);
	EXPECT_EQ(205, out[0].hour.import_mwh);
	EXPECT_EQ(GMP_HF_INCOMPLETE, out[0].hour.flags & GMP_HF_INCOMPLETE);
	EXPECT_EQ(0, tup_next_batch(&self->d, now, 300, false, 6, out, 16));
	/* the missing half of meter 2 comes late: its hour and the town's, revision 1 */
	put(_metadata, self, 2, &(struct rd){ h0, 1800, 66, 3, 0, 0 }, now);
	EXPECT_EQ(1, build_all(_metadata, &self->d));
	n = tup_next_batch(&self->d, now, 300, true, 6, out, 16);
	ASSERT_EQ(2, n);
	w2 = (struct want){ 77 + 66, 3, 0, 2, 0, 0 };
	EXPECT_EQ(2, out[0].hour.meter);
	EXPECT_EQ(6, out[0].hour.seq);
	EXPECT_EQ(w2.imp, out[0].hour.import_mwh);
	EXPECT_EQ(2, out[0].hour.readings);
	EXPECT_EQ(1, out[0].hour.rev);
	EXPECT_EQ(GMP_HF_ADMIN, out[0].hour.flags);	/* complete now; built in admin mode */
	EXPECT_EQ(GMP_TOWN_HOUR, out[1].type);
	EXPECT_EQ(1, out[1].town_hour.rev);
	EXPECT_EQ(tot_imp + 66, out[1].town_hour.import_mwh);
	EXPECT_EQ(GMP_HF_ADMIN, out[1].town_hour.flags);
	/* the send of seq 7 never reached the outbox (a crash): pending again, same rev */
	ASSERT_EQ(0, tup_unsend_from(&self->d, 7));
	n = tup_next_batch(&self->d, now, 300, false, 7, out, 16);
	ASSERT_EQ(1, n);
	EXPECT_EQ(GMP_TOWN_HOUR, out[0].type);
	EXPECT_EQ(1, out[0].town_hour.rev);
	EXPECT_EQ(0, tup_next_batch(&self->d, now, 300, false, 8, out, 16));
	/* the outbox renumbered from 5 by +100: the unacknowledged hours follow */
	ASSERT_EQ(0, tup_rebase(&self->d, 5, 100));
	{
		int64_t oldest = 0;

		ASSERT_EQ(0, tup_oldest_unacked(&self->d, 4, &oldest));
		EXPECT_EQ(h0, oldest);		/* seq 106, 107 not acknowledged */
		ASSERT_EQ(0, tup_oldest_unacked(&self->d, 107, &oldest));
		EXPECT_EQ(-1, oldest);
	}
}

TEST_F(store, price_so_far_from_hours_and_tariff)
{
	struct th_tariff t = tariff3(MONTH0 + 86400, 1);
	int64_t nano = 0, imp = 0, milli = 0, mwh = 0, rows = 0;

	queue_tariff(_metadata, &self->d, 1, &t);
	/* two days of hourly readings: the first before the town sent any tariff (not
	 * priced: the town has no price for them), the second under it */
	for (int64_t h = MONTH0; h < MONTH0 + 2 * 86400; h += 3600) {
		struct rd r = { h, 3600, 1000 + h % 7777, h % 13, 0, 0 };
		const struct th_tariff *in = &t;
		int slot = th_slot(in, h, NULL, NULL);

		put(_metadata, self, 1, &r, MONTH0 + 40 * 86400);
		if (h >= t.effective)
			nano += r.imp * t.import_price[slot] - r.exp * t.export_price[slot];
		imp += r.imp;
	}
	build_all(_metadata, &self->d);
	ASSERT_EQ(0, tup_price(&self->d, 1, MONTH0, MONTH0 + 31 * 86400, &milli, &mwh, &rows));
	EXPECT_EQ(imp, mwh);
	EXPECT_EQ(48, rows);
	EXPECT_EQ(th_round_milli(nano), milli);
	EXPECT_NE(0, milli);
}

/* The readings, events, month totals and hours of a month, and what is kept. */
static int64_t count(struct townd_db *d, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

TEST_F(store, past_month_deleted_only_when_acknowledged_in_bounded_steps)
{
	int64_t m1 = tup_month_next(MONTH0), now = m1 + 86400;
	int64_t seq = 1, deleted, done, total = 0, steps = 0, kept_readings;
	struct gmp_msg out[64];
	int n, r;

	/* 30 hourly readings at the end of September, 5 at the start of October */
	for (int i = 0; i < 30; i++)
		put(_metadata, self, 1, &(struct rd){ m1 - 30 * 3600 + i * 3600, 3600, 10 + i, 0,
						      0, 0 }, m1 - 30 * 3600 + i * 3600 + 3600);
	for (int i = 0; i < 5; i++)
		put(_metadata, self, 1, &(struct rd){ m1 + i * 3600, 3600, 500 + i, 0, 0, 0 },
		    m1 + i * 3600 + 3600);
	build_all(_metadata, &self->d);
	while ((n = tup_next_batch(&self->d, now, 300, false, seq, out, 64)) > 0)
		seq += n;
	ASSERT_EQ(0, n);
	/* September is all in the outbox; acknowledged only up to its second-to-last record */
	{
		int64_t last_sept = -1;
		sqlite3_stmt *st;

		ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(self->d.db, "SELECT MAX(out_seq) FROM "
			  "(SELECT out_seq FROM hours WHERE hour < ?1 UNION ALL SELECT out_seq "
			  "FROM town_hours WHERE hour < ?1) AS s", -1, &st, NULL));
		sqlite3_bind_int64(st, 1, m1);
		ASSERT_EQ(SQLITE_ROW, sqlite3_step(st));
		last_sept = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		ASSERT_LT(0, last_sept);
		EXPECT_EQ(0, tup_retention_step(&self->d, now, 300, last_sept - 1, 3, &deleted,
						&done));
		/* a past month is not deleted before it is closed either */
		EXPECT_EQ(0, tup_retention_step(&self->d, m1 + 3600 + 299, 300, seq, 3, &deleted,
						&done));
		/* acknowledged: deleted, 3 rows at most per step */
		while ((r = tup_retention_step(&self->d, now, 300, last_sept, 3, &deleted,
					       &done)) > 0) {
			EXPECT_GE(3, deleted);
			total += deleted;
			steps++;
			if (done)
				EXPECT_EQ(MONTH0, done);
		}
		ASSERT_EQ(0, r);
	}
	{
		char sql[200];

		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM readings WHERE booked < %lld",
			 (long long)m1);
		EXPECT_EQ(0, count(&self->d, sql));
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM hours WHERE hour < %lld",
			 (long long)m1);
		EXPECT_EQ(0, count(&self->d, sql));
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM town_hours WHERE hour < %lld",
			 (long long)m1);
		EXPECT_EQ(0, count(&self->d, sql));
	}
	kept_readings = count(&self->d, "SELECT COUNT(*) FROM readings");
	EXPECT_EQ(5, kept_readings);
	EXPECT_EQ(5, count(&self->d, "SELECT COUNT(*) FROM hours"));
	EXPECT_EQ(1, count(&self->d, "SELECT COUNT(*) FROM month_totals"));
	/* 30 readings, 30 hours, 30 town hours, 1 month total */
	EXPECT_EQ(91, total);
	EXPECT_LE(91 / 3, steps);
	EXPECT_EQ(m1, count(&self->d, "SELECT value FROM meta WHERE name = 'kept_from'"));
	EXPECT_EQ(m1, self->d.kept_from);
	EXPECT_EQ(2, count(&self->d, "SELECT COUNT(*) FROM journal WHERE what LIKE "
			   "'retention:%'"));
	/* October is the current month: never deleted, acknowledged or not */
	EXPECT_EQ(0, tup_retention_step(&self->d, now, 300, seq, 3, &deleted, &done));
	/* a September reading arriving now is booked at its arrival, in October */
	put(_metadata, self, 1, &(struct rd){ m1 - 7200, 3600, 9, 0, 0, 0 }, now);
	EXPECT_EQ(now, count(&self->d, "SELECT booked FROM readings ORDER BY rowid DESC LIMIT 1"));
	EXPECT_EQ(1, build_all(_metadata, &self->d));
}

/* The version-2 schema, as townd of issues 7-11 created it. */
static const char v2_schema[] =
	"CREATE TABLE meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);"
	"CREATE TABLE meters (id INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 65534), "
	"pk TEXT NOT NULL, name TEXT, provisioned BIGINT NOT NULL, "
	"acked_upto BIGINT NOT NULL DEFAULT 0, last_seen BIGINT, "
	"rejected BIGINT NOT NULL DEFAULT 0, pk_next TEXT, revoked BIGINT, "
	"cmd_floor BIGINT NOT NULL DEFAULT 0, reg_import BIGINT NOT NULL DEFAULT 0, "
	"reg_export BIGINT NOT NULL DEFAULT 0, reg_renew BIGINT NOT NULL DEFAULT 0, "
	"reg_time BIGINT NOT NULL DEFAULT 0, reg_snap BIGINT NOT NULL DEFAULT 0, "
	"hellos TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE readings (meter INTEGER NOT NULL REFERENCES meters(id), "
	"seq BIGINT NOT NULL, start BIGINT NOT NULL, interval_s INTEGER NOT NULL, "
	"import_mwh BIGINT NOT NULL, export_mwh BIGINT NOT NULL, renew_mwh BIGINT NOT NULL, "
	"flags INTEGER NOT NULL, received BIGINT NOT NULL, booked BIGINT NOT NULL DEFAULT 0, "
	"PRIMARY KEY (meter, seq));"
	"CREATE TABLE events (meter INTEGER NOT NULL REFERENCES meters(id), "
	"seq BIGINT NOT NULL, type INTEGER NOT NULL, time BIGINT NOT NULL, "
	"a BIGINT, b BIGINT, c BIGINT, received BIGINT NOT NULL, data TEXT, "
	"PRIMARY KEY (meter, seq));"
	"CREATE TABLE month_totals (meter INTEGER NOT NULL REFERENCES meters(id), "
	"month TEXT NOT NULL, import_mwh BIGINT NOT NULL, export_mwh BIGINT NOT NULL, "
	"renew_mwh BIGINT NOT NULL, readings BIGINT NOT NULL, PRIMARY KEY (meter, month));"
	"CREATE TABLE outgoing (meter INTEGER NOT NULL REFERENCES meters(id), "
	"tseq BIGINT NOT NULL, body TEXT NOT NULL, created BIGINT NOT NULL, "
	"type INTEGER NOT NULL DEFAULT 0, sent BIGINT, status INTEGER, result_at BIGINT, "
	"PRIMARY KEY (meter, tseq));"
	"CREATE TABLE journal (meter INTEGER, at BIGINT NOT NULL, what TEXT NOT NULL);"
	"CREATE TABLE stats (name TEXT PRIMARY KEY, value BIGINT NOT NULL);"
	"INSERT INTO meta VALUES ('schema_version', 2), ('changes', 5);";

/* A database written by townd with schema 2 opens as 4; its readings become hours. */
TEST(migration_from_version_2)
{
	char dir[64], db[128], err[256], sql[1024];
	int64_t h = MONTH0 + 3 * 3600;
	struct townd_db d;
	sqlite3 *raw;
	size_t n;

	strcpy(dir, "/tmp/townd-mig2-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/v2.db", dir);
	ASSERT_EQ(SQLITE_OK, sqlite3_open(db, &raw));
	ASSERT_EQ(SQLITE_OK, sqlite3_exec(raw, v2_schema, NULL, NULL, NULL));
	snprintf(sql, sizeof(sql),
		 "INSERT INTO meters (id, pk, provisioned, acked_upto) VALUES (7, '%064d', 1, 2);"
		 "INSERT INTO readings VALUES (7, 1, %lld, 1800, 100, 1, 2, 0, %lld, %lld),"
		 " (7, 2, %lld, 1800, 300, 5, 0, 0, %lld, %lld);"
		 "INSERT INTO month_totals VALUES (7, '2026-09', 400, 6, 2, 2);"
		 "INSERT INTO journal VALUES (NULL, 1, 'database migrated from schema version 1 "
		 "to 2 (send counters dropped)');", 0,
		 (long long)h, (long long)h + 1800, (long long)h, (long long)h + 1800,
		 (long long)h + 3600, (long long)h + 1800);
	ASSERT_EQ(SQLITE_OK, sqlite3_exec(raw, sql, NULL, NULL, NULL)) TH_LOG("%s",
									    sqlite3_errmsg(raw));
	sqlite3_close(raw);

	ASSERT_EQ(0, tdb_open(&d, db, 1, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(TOWND_SCHEMA_VERSION, count(&d, "SELECT value FROM meta WHERE name = "
					      "'schema_version'"));
	EXPECT_EQ(4, TOWND_SCHEMA_VERSION);
	EXPECT_EQ(2, count(&d, "SELECT COUNT(*) FROM readings"));
	EXPECT_EQ(5, count(&d, "SELECT value FROM meta WHERE name = 'changes'"));
	/* the one it had, then 2 -> 3 and 3 -> 4 */
	EXPECT_EQ(3, count(&d, "SELECT COUNT(*) FROM journal"));
	EXPECT_EQ(1, count(&d, "SELECT COUNT(*) FROM journal WHERE what LIKE '%version 3 to 4%'"));
	EXPECT_EQ(0, count(&d, "SELECT COUNT(*) FROM signed_cmds"));
	EXPECT_EQ(0, count(&d, "SELECT COUNT(*) FROM hours"));
	ASSERT_EQ(0, tup_build(&d, NULL, NULL, 100, &n));
	EXPECT_EQ(2, n);
	EXPECT_EQ(400, count(&d, "SELECT SUM(import_mwh) FROM hours"));
	EXPECT_EQ(2, count(&d, "SELECT SUM(readings) FROM hours"));
	EXPECT_EQ(3600, count(&d, "SELECT SUM(covered) FROM hours"));
	tdb_close(&d);
	ASSERT_EQ(0, tdb_open(&d, db, 1, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(3, count(&d, "SELECT COUNT(*) FROM journal"));	/* not migrated twice */
	ASSERT_EQ(0, tup_build(&d, NULL, NULL, 100, &n));
	EXPECT_EQ(0, n);
	tdb_close(&d);
	snprintf(sql, sizeof(sql), "rm -rf '%s'", dir);
	ASSERT_EQ(0, system(sql));
}

TEST_HARNESS_MAIN
