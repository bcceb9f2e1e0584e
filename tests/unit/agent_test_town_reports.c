// SPDX-License-Identifier: GPL-2.0
/*
 * What meterd reports to its town server (agent/uplink/town_reports.c):
 * the town's view (last snapshot + the readings after it, as townd keeps
 * it) always equals what the meter reported; no energy lost when a record
 * cannot be queued; nothing on untrusted time; held energy reported once
 * trusted, in readings of at most an hour; the unrecorded span of a power cut;
 * a clock stepped back; registers raised to the town's view; billing data
 * by default (one reading per hour and tariff period, across DST changes
 * and in a zone of half-hour offset), finer readings only when configured.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gm_harness.h"
#include "town_reports.h"

/* the harness's FIXTURE_SETUP/TEARDOWN define functions without prototypes */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"

#define MAXREC 2048

struct sink {
	struct gmp_msg m[MAXREC];
	int n;
	int refuse;		/* refuse this many records from now on */
};

static int take(void *ctx, struct gmp_msg *m)
{
	struct sink *s = ctx;

	if (s->refuse) {
		s->refuse--;
		return -28;	/* ENOSPC */
	}
	if (s->n == MAXREC)
		return -12;
	s->m[s->n++] = *m;
	return 0;
}

/* townd's register view: the last snapshot plus every reading after it */
static void town_view(const struct sink *s, uint64_t v[3])
{
	int last = -1;

	memset(v, 0, 3 * sizeof(uint64_t));
	for (int i = 0; i < s->n; i++)
		if (s->m[i].type == GMP_REGISTERS)
			last = i;
	if (last >= 0) {
		v[0] = (uint64_t)s->m[last].regs.import_mwh;
		v[1] = (uint64_t)s->m[last].regs.export_mwh;
		v[2] = (uint64_t)s->m[last].regs.renew_mwh;
	}
	for (int i = last + 1; i < s->n; i++)
		if (s->m[i].type == GMP_READING) {
			v[0] += (uint64_t)s->m[i].reading.import_mwh;
			v[1] += (uint64_t)s->m[i].reading.export_mwh;
			v[2] += (uint64_t)s->m[i].reading.renew_mwh;
		}
}

static uint64_t readings_import(const struct sink *s, int from)
{
	uint64_t e = 0;

	for (int i = from; i < s->n; i++)
		if (s->m[i].type == GMP_READING)
			e += (uint64_t)s->m[i].reading.import_mwh;
	return e;
}

static struct tr_input at(int64_t now, bool trusted, uint64_t imp, uint64_t exp, uint64_t ren)
{
	struct tr_input in = { .now_s = now, .trusted = trusted, .view_known = true,
			       .reg = { imp, exp, ren } };

	return in;
}

static int step(struct town_reports *r, int64_t now, bool trusted, uint64_t imp, struct sink *s)
{
	struct tr_input in = at(now, trusted, imp, 0, 0);

	return tr_step(r, &in, take, s);
}

#define T0 1800000000	/* a multiple of 60 and of 3600 */

TEST(view_equals_what_was_reported_and_readings_are_contiguous)
{
	static struct sink s;
	struct town_reports r;
	uint64_t reg[3] = { 5000, 700, 300 }, v[3];
	int64_t last_end;

	memset(&s, 0, sizeof(s));
	tr_init(&r, 60, 3600, T0 + 7, true, reg);
	ASSERT_EQ(1, tr_step(&r, &(struct tr_input){ .now_s = T0 + 7, .trusted = true,
						     .view_known = true, .reg = { 5000, 700, 300 } },
			     take, &s));
	ASSERT_EQ(GMP_REGISTERS, s.m[0].type);	/* the snapshot at start */
	EXPECT_EQ(5000, s.m[0].regs.import_mwh);
	last_end = T0 + 7;
	for (int k = 1; k <= 130; k++) {
		struct tr_input in;

		reg[0] += 17 * (uint64_t)k;
		reg[1] += (uint64_t)k % 3;
		reg[2] += 5;
		in = at(T0 + 60 * k + 1, true, reg[0], reg[1], reg[2]);
		tr_step(&r, &in, take, &s);
		town_view(&s, v);
		/* the view is the registers at the end of the last reading */
		EXPECT_EQ(reg[0], v[0]) TH_LOG("step %d", k);
		EXPECT_EQ(reg[1], v[1]);
		EXPECT_EQ(reg[2], v[2]);
	}
	for (int i = 0; i < s.n; i++) {
		if (s.m[i].type != GMP_READING)
			continue;
		EXPECT_EQ(last_end, s.m[i].reading.start) TH_LOG("record %d", i);
		EXPECT_EQ(0, s.m[i].reading.flags);
		last_end = s.m[i].reading.start + s.m[i].reading.interval_s;
		EXPECT_EQ(0, last_end % 60);
	}
	EXPECT_EQ(T0 + 130 * 60, last_end);
}

TEST(a_record_not_queued_loses_no_energy)
{
	static struct sink s;
	struct town_reports r;
	uint64_t reg[3] = { 0, 0, 0 };
	int before;

	memset(&s, 0, sizeof(s));
	tr_init(&r, 60, 0, T0, true, reg);
	step(&r, T0 + 60, true, 1000, &s);
	ASSERT_EQ(1, s.n);
	s.refuse = 3;		/* the disk is full for three attempts */
	before = s.n;
	step(&r, T0 + 120, true, 2500, &s);
	step(&r, T0 + 180, true, 4000, &s);
	step(&r, T0 + 240, true, 4100, &s);
	EXPECT_EQ(before, s.n);
	step(&r, T0 + 300, true, 4200, &s);
	ASSERT_EQ(before + 1, s.n);
	/* one reading covers the four intervals and all of their energy */
	EXPECT_EQ(T0 + 60, s.m[before].reading.start);
	EXPECT_EQ(240, s.m[before].reading.interval_s);
	EXPECT_EQ(3200, s.m[before].reading.import_mwh);
	EXPECT_EQ(4200u, readings_import(&s, 0));
}

TEST(nothing_on_untrusted_time_then_held_energy_in_hour_readings)
{
	static struct sink s;
	struct town_reports r;
	uint64_t reg[3] = { 100000, 0, 0 }, v[3];
	/* trusted 2.5 days after the held span began; 900000 mWh held */
	int64_t from = T0 - 216000, now = T0 + 13;
	struct tr_input in;
	int hours = 0, i0;

	memset(&s, 0, sizeof(s));
	tr_init(&r, 60, 3600, 1400000000, false, reg);	/* a clock years off */
	EXPECT_EQ(INT64_MAX, tr_due(&r));
	for (int k = 0; k < 50; k++)
		EXPECT_EQ(0, step(&r, 1400000000 + 60 * k, false, 100000, &s));
	EXPECT_EQ(0, s.n);
	in = at(now, true, 100000 + 900000, 0, 0);
	in.have_reconstructed = true;
	in.recon_from_s = from;
	in.recon_to_s = now;
	tr_step(&r, &in, take, &s);
	i0 = 0;
	for (int i = 0; i < s.n; i++) {
		if (s.m[i].type != GMP_READING)
			continue;
		/* within one hour: the town's hours are made of whole readings */
		EXPECT_EQ(s.m[i].reading.start / 3600,
			  (s.m[i].reading.start + s.m[i].reading.interval_s - 1) / 3600);
		EXPECT_TRUE(s.m[i].reading.flags & GMP_RF_TIME_RECONSTRUCTED);
		/* the energy shared by time, to the mWh */
		EXPECT_GE(1, llabs(900000 * s.m[i].reading.interval_s / (T0 - from) -
				   s.m[i].reading.import_mwh)) TH_LOG("record %d", i);
		hours++;
		i0 = i;
	}
	/* one for every hour from the held span's start to the last boundary (both whole hours) */
	EXPECT_EQ((T0 - from) / 3600, hours);
	EXPECT_EQ(from, s.m[0].reading.start);
	EXPECT_EQ(T0, s.m[i0].reading.start + s.m[i0].reading.interval_s);
	EXPECT_EQ(900000u, readings_import(&s, 0));
	ASSERT_EQ(GMP_REGISTERS, s.m[s.n - 1].type);
	town_view(&s, v);
	EXPECT_EQ(1000000u, v[0]);
	/* from then on, ordinary readings */
	step(&r, T0 + 61, true, 1000050, &s);
	EXPECT_EQ(0, s.m[s.n - 1].reading.flags);
	EXPECT_EQ(T0 + 60, s.m[s.n - 1].reading.start + s.m[s.n - 1].reading.interval_s);
}

TEST(unrecorded_span_once_with_no_energy)
{
	static struct sink s;
	struct town_reports r;
	uint64_t reg[3] = { 7, 0, 0 };
	struct tr_input in = at(T0 + 5, true, 7, 0, 0);
	int unrec = 0;
	int64_t covered = 0;

	memset(&s, 0, sizeof(s));
	tr_init(&r, 60, 3600, T0 + 5, true, reg);
	in.have_unrecorded = true;
	in.unrec_from_s = T0 - 100000;
	in.unrec_to_s = T0 + 5;
	tr_step(&r, &in, take, &s);
	in.now_s = T0 + 65;
	tr_step(&r, &in, take, &s);
	for (int i = 0; i < s.n; i++)
		if (s.m[i].type == GMP_READING && s.m[i].reading.flags & GMP_RF_UNRECORDED) {
			unrec++;
			covered += s.m[i].reading.interval_s;
			EXPECT_EQ(0, s.m[i].reading.import_mwh);
		}
	EXPECT_EQ(2, unrec);
	EXPECT_EQ(100005, covered);
}

TEST(clock_stepped_back_loses_nothing_and_is_marked)
{
	static struct sink s;
	struct town_reports r;
	uint64_t reg[3] = { 0, 0, 0 };
	int n;

	memset(&s, 0, sizeof(s));
	tr_init(&r, 60, 0, T0, true, reg);
	step(&r, T0 + 600, true, 600, &s);
	n = s.n;
	step(&r, T0 - 3000, true, 650, &s);
	ASSERT_EQ(n + 1, s.n);
	EXPECT_TRUE(s.m[n].reading.flags & GMP_RF_CLOCK_STEP);
	EXPECT_EQ(50, s.m[n].reading.import_mwh);
	step(&r, T0 - 2940, true, 700, &s);
	EXPECT_EQ(700u, readings_import(&s, 0));
	EXPECT_EQ(0, s.m[s.n - 1].reading.flags);
}

TEST(raised_registers_are_not_reported_as_consumption)
{
	static struct sink s;
	struct town_reports r;
	uint64_t reg[3] = { 1000, 0, 0 }, v[3], delta[3] = { 4000, 0, 0 };

	memset(&s, 0, sizeof(s));
	tr_init(&r, 60, 3600, T0, true, reg);
	step(&r, T0, true, 1000, &s);
	/* the town's WELCOME: it holds readings of 5000 mWh; the meter is raised */
	tr_raised(&r, delta);
	step(&r, T0 + 60, true, 5000 + 30, &s);
	EXPECT_EQ(30, s.m[s.n - 1].reading.import_mwh);
	EXPECT_TRUE(s.m[s.n - 1].reading.flags & GMP_RF_RESTORED);
	step(&r, T0 + 3600, true, 5000 + 90, &s);
	ASSERT_EQ(GMP_REGISTERS, s.m[s.n - 1].type);
	EXPECT_TRUE(s.m[s.n - 1].regs.flags & GMP_RF_RESTORED);
	EXPECT_EQ(5090, s.m[s.n - 1].regs.import_mwh);
	town_view(&s, v);
	EXPECT_EQ(5090u, v[0]);
}

TEST(no_snapshot_before_the_towns_view_is_heard)
{
	static struct sink s;
	struct town_reports r;
	uint64_t reg[3] = { 0, 0, 0 }, v[3], delta[3] = { 50000, 0, 0 };
	struct tr_input in;

	/* a wiped meter: empty registers, the town not heard yet */
	memset(&s, 0, sizeof(s));
	tr_init(&r, 60, 3600, T0, true, reg);
	in = at(T0, true, 0, 0, 0);
	in.view_known = false;
	tr_step(&r, &in, take, &s);
	in = at(T0 + 60, true, 100, 0, 0);
	in.view_known = false;
	tr_step(&r, &in, take, &s);
	ASSERT_EQ(1, s.n);
	EXPECT_EQ(GMP_READING, s.m[0].type);
	/* the WELCOME: the town holds 50000 mWh; raised, then the snapshot */
	tr_raised(&r, delta);
	step(&r, T0 + 70, true, 50100, &s);
	ASSERT_EQ(GMP_REGISTERS, s.m[s.n - 1].type);
	EXPECT_EQ(50100, s.m[s.n - 1].regs.import_mwh);
	town_view(&s, v);
	EXPECT_EQ(50100u, v[0]);
}

/* ---- billing data: one reading per hour and tariff period ------------------------- */

#define MAXCUT 512

/* periods change at 07:00 and 22:30 local, every day */
static void tou_0700_2230(struct __test_metadata *_metadata, struct tariff *t)
{
	static const char *const kv[] = {
		"type", "tou", "currency", "GBP", "rates", "day:30.5, night:12.25",
		"weekday", "00:00-07:00 night, 07:00-22:30 day, 22:30-24:00 night",
		"weekend", "00:00-07:00 night, 07:00-22:30 day, 22:30-24:00 night", NULL,
	};
	struct tariff_spec sp;
	const char *bad = NULL;
	char err[200];

	tariff_spec_init(&sp);
	for (const char *const *k = kv; k[0]; k += 2)
		ASSERT_EQ(0, tariff_spec_set(&sp, k[0], k[1]));
	ASSERT_EQ(0, tariff_compile(&sp, t, &bad, err, sizeof(err))) TH_LOG("%s: %s", bad, err);
}

static time_t local_time(int y, int mon, int d, int h, int mi)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h,
			 .tm_min = mi, .tm_isdst = -1 };

	return mktime(&tm);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Where the readings must be cut in (from, to), computed apart from the
 * code under test: every whole UTC hour, every multiple of grid, and 07:00
 * and 22:30 local on each local day (mktime), sorted, without repeats.
 */
static int expected_cuts(int64_t from, int64_t to, int y, int mon, int d, int days, int64_t grid,
			 int64_t *cut)
{
	int n = 0, k = 0;

	for (int64_t t = from - from % 3600 + 3600; t < to; t += 3600)
		cut[n++] = t;
	for (int64_t t = from - from % grid + grid; t < to; t += grid)
		cut[n++] = t;
	for (int i = -1; i <= days; i++) {
		int64_t a = local_time(y, mon, d + i, 7, 0), b = local_time(y, mon, d + i, 22, 30);

		if (a > from && a < to)
			cut[n++] = a;
		if (b > from && b < to)
			cut[n++] = b;
	}
	qsort(cut, (size_t)n, sizeof(*cut), cmp_i64);
	for (int i = 0; i < n; i++)
		if (!k || cut[k - 1] != cut[i])
			cut[k++] = cut[i];
	return k;
}

/* A household by the minute: import, export around midday, rooftop output (mWh per minute). */
static void minute_energy(int64_t t, uint64_t e[3])
{
	int64_t h = (t / 3600) % 24, m = t / 60;

	e[0] = 5 + (uint64_t)((m * 7919) % 61);
	e[1] = h >= 10 && h < 15 ? 25 : 0;
	e[2] = h >= 7 && h < 18 ? 10 + (uint64_t)(m % 13) : 0;
}

FIXTURE(billing) {
	struct sink s;
	struct tariff t;
};

FIXTURE_VARIANT(billing) {
	const char *tz;
	int y, mon, d;		/* the first of two local days */
	uint32_t report_s;	/* 3600: detail = billing; else detail = interval */
};

/* autumn: 2026-10-25 has 25 hours (BST -> GMT); 07:00 and 22:30 are UTC hour and half hour */
FIXTURE_VARIANT_ADD(billing, london_autumn) { "Europe/London", 2026, 10, 24, 3600 };
/* spring: 2026-03-29 has 23 hours */
FIXTURE_VARIANT_ADD(billing, london_spring) { "Europe/London", 2026, 3, 28, 3600 };
/* +9:30 / +10:30 from 2026-10-04: no period change falls on a UTC hour */
FIXTURE_VARIANT_ADD(billing, adelaide_spring) { "Australia/Adelaide", 2026, 10, 3, 3600 };
/* detail = interval, 900 s: the finer readings are sent, still cut at periods */
FIXTURE_VARIANT_ADD(billing, london_autumn_900) { "Europe/London", 2026, 10, 24, 900 };
FIXTURE_VARIANT_ADD(billing, adelaide_spring_900) { "Australia/Adelaide", 2026, 10, 3, 900 };

FIXTURE_SETUP(billing)
{
	setenv("TZ", variant->tz, 1);
	tzset();
	memset(&self->s, 0, sizeof(self->s));
	tou_0700_2230(_metadata, &self->t);
}

FIXTURE_TEARDOWN(billing)
{
}

TEST_F(billing, records_are_exactly_the_hour_and_period_pieces)
{
	int64_t from = local_time(variant->y, variant->mon, variant->d, 0, 0);
	int64_t to = local_time(variant->y, variant->mon, variant->d + 2, 0, 0);
	/* on to the next whole hour: a cut, in Adelaide too */
	int64_t stop = to + (3600 - to % 3600) % 3600;
	static int64_t cut[MAXCUT];
	int ncut = expected_cuts(from, stop, variant->y, variant->mon, variant->d, 2,
				 variant->report_s, cut);
	uint64_t reg[3] = { 123456789, 2345678, 3456789 }, start_reg[3], sum[3] = { 0 }, v[3];
	/* the registers at every minute since `from`, to check each piece's energy */
	static uint64_t at_min[4000][3];
	struct town_reports r;
	int nread = 0, c = 0, snaps = 0;
	int64_t last_snap = INT64_MIN;

	ASSERT_LT(ncut, MAXCUT);
	ASSERT_LT((stop - from) / 60, 4000);
	/* two local days across a DST change: 49 or 47 hours; none in Adelaide's day 1 */
	TH_LOG("%s: %lld s, %d cuts", variant->tz, (long long)(to - from), ncut);
	memcpy(start_reg, reg, sizeof(reg));
	tr_init(&r, variant->report_s, 3600, from, true, reg);
	for (int64_t t = from; t <= stop; t += 60) {
		struct tr_input in = { .now_s = t, .tariff = &self->t, .trusted = true,
				       .view_known = true };
		int64_t next;

		if (t > from) {
			uint64_t e[3];

			minute_energy(t - 60, e);
			for (int i = 0; i < 3; i++)
				reg[i] += e[i];
		}
		memcpy(at_min[(t - from) / 60], reg, sizeof(reg));
		memcpy(in.reg, reg, sizeof(reg));
		tr_step(&r, &in, take, &self->s);
		/* the uplink's timer: the next cut, never later, never a cut too early */
		while (c < ncut && cut[c] <= t)
			c++;
		next = c < ncut ? cut[c] : stop;
		if (t < stop)
			EXPECT_EQ(next, tr_due(&r)) TH_LOG("at %lld", (long long)t);
	}
	/* the readings: one per piece between consecutive cuts, in order, nothing finer */
	for (int i = 0; i < self->s.n; i++) {
		const struct gmp_msg *m = &self->s.m[i];
		int64_t a, b;

		if (m->type == GMP_REGISTERS) {
			/* the register snapshot: at a cut, before the readings that follow it */
			EXPECT_TRUE(m->regs.time == from || m->regs.time == stop ||
				    bsearch(&m->regs.time, cut, (size_t)ncut, sizeof(*cut), cmp_i64));
			EXPECT_EQ(at_min[(m->regs.time - from) / 60][0], (uint64_t)m->regs.import_mwh);
			last_snap = m->regs.time;
			snaps++;
			continue;
		}
		ASSERT_EQ(GMP_READING, m->type);
		a = nread ? cut[nread - 1] : from;
		b = nread < ncut ? cut[nread] : stop;
		EXPECT_EQ(a, m->reading.start) TH_LOG("reading %d", nread);
		EXPECT_EQ(b - a, m->reading.interval_s) TH_LOG("reading %d at %lld", nread, (long long)a);
		EXPECT_EQ(0u, m->reading.flags);
		EXPECT_GE(m->reading.start, last_snap);	/* townd's register view counts it */
		/* within one UTC hour and one tariff period */
		EXPECT_EQ(a / 3600, (b - 1) / 3600);
		EXPECT_EQ(tariff_period_at(&self->t, a, 0), tariff_period_at(&self->t, b - 1, 0));
		/* its energy: what the registers gained between its ends */
		EXPECT_EQ(at_min[(b - from) / 60][0] - at_min[(a - from) / 60][0],
			  (uint64_t)m->reading.import_mwh);
		EXPECT_EQ(at_min[(b - from) / 60][1] - at_min[(a - from) / 60][1],
			  (uint64_t)m->reading.export_mwh);
		EXPECT_EQ(at_min[(b - from) / 60][2] - at_min[(a - from) / 60][2],
			  (uint64_t)m->reading.renew_mwh);
		sum[0] += (uint64_t)m->reading.import_mwh;
		sum[1] += (uint64_t)m->reading.export_mwh;
		sum[2] += (uint64_t)m->reading.renew_mwh;
		nread++;
	}
	EXPECT_EQ(ncut + 1, nread);
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(reg[i] - start_reg[i], sum[i]);
	town_view(&self->s, v);
	EXPECT_EQ(reg[0], v[0]);
	EXPECT_EQ(reg[1], v[1]);
	EXPECT_EQ(reg[2], v[2]);
	/* a snapshot at the start, then at every whole hour after it */
	EXPECT_EQ(1 + (stop - from + 3599) / 3600, snaps);
	if (variant->report_s == 3600) {
		/*
		 * Billing: one reading per UTC hour touched, one more for every
		 * change of period off the hour: one a day, in London 22:30
		 * (07:00 is on the hour), in Adelaide 07:00 (22:30 is 13:00 or
		 * 12:00 UTC at +9:30 / +10:30).
		 */
		int64_t hours = (stop - from + 3599) / 3600, off = 0;

		for (int i = 0; i < ncut; i++)
			off += cut[i] % 3600 != 0;
		EXPECT_EQ(hours + off, nread);
		EXPECT_EQ(2, off);
	}
}

TEST_F(billing, a_tariff_changed_within_the_hour_cuts_at_its_new_period)
{
	int64_t h = local_time(variant->y, variant->mon, variant->d, 14, 0);
	struct tariff flat, t2;
	struct tariff_spec sp;
	struct town_reports r;
	const char *bad = NULL;
	char err[200];
	uint64_t reg[3] = { 0, 0, 0 };
	struct tr_input in = { .now_s = h, .tariff = &flat, .trusted = true, .view_known = true };
	static const char *const kv[] = {
		"type", "tou", "currency", "GBP", "rates", "a:10, b:20",
		"weekday", "00:00-14:20 a, 14:20-24:00 b",
		"weekend", "00:00-14:20 a, 14:20-24:00 b", NULL,
	};

	h -= h % 3600;		/* the UTC hour of 14:00 local */
	tariff_spec_init(&sp);
	ASSERT_EQ(0, tariff_spec_set(&sp, "type", "flat"));
	ASSERT_EQ(0, tariff_spec_set(&sp, "rate", "20"));
	ASSERT_EQ(0, tariff_compile(&sp, &flat, &bad, err, sizeof(err)));
	tariff_spec_init(&sp);
	for (const char *const *k = kv; k[0]; k += 2)
		ASSERT_EQ(0, tariff_spec_set(&sp, k[0], k[1]));
	ASSERT_EQ(0, tariff_compile(&sp, &t2, &bad, err, sizeof(err)));
	tr_init(&r, variant->report_s, 0, h, true, reg);
	in.now_s = h;
	tr_step(&r, &in, take, &self->s);
	EXPECT_EQ(h + (int64_t)variant->report_s, tr_due(&r));	/* flat: the grid */
	/* at 10 past, the town's new tariff is applied: its period changes at 14:20 local */
	in.now_s = h + 600;
	in.tariff = &t2;
	in.reg[0] = 1000;
	tr_step(&r, &in, take, &self->s);
	{
		int64_t change = local_time(variant->y, variant->mon, variant->d, 14, 20);
		int64_t due = change < h + (int64_t)variant->report_s ? change : h + variant->report_s;

		if (change > h + 600)
			EXPECT_EQ(due, tr_due(&r));
	}
}

/* ---- allocation requests: at once, not with the (hourly) readings ------------------ */

TEST(requests_go_at_once_small_changes_within_a_minute_and_standing_ones_are_renewed)
{
	struct tr_request q;
	const uint32_t dur = 900;
	int64_t now = T0 + 17;

	memset(&q, 0, sizeof(q));
	EXPECT_EQ(INT64_MAX, tr_request_due(&q, dur));	/* nothing wanted, nothing sent */
	/* a need starts: at once */
	tr_request_want(&q, 2000, now);
	EXPECT_EQ(now, tr_request_due(&q, dur));
	tr_request_sent(&q, now);
	/* it stands: renewed before the town would let it expire, not before */
	EXPECT_EQ(now + dur - TR_REQ_RENEW_S, tr_request_due(&q, dur));
	EXPECT_LT(tr_request_due(&q, dur), now + (int64_t)dur);
	/* a small change (under 10 %): within TR_REQ_WAIT_S, however far the next reading */
	tr_request_want(&q, 2100, now + 100);
	EXPECT_EQ(now + 100 + TR_REQ_WAIT_S, tr_request_due(&q, dur));
	/* changing again meanwhile does not put it off */
	tr_request_want(&q, 2150, now + 130);
	EXPECT_EQ(now + 100 + TR_REQ_WAIT_S, tr_request_due(&q, dur));
	/* a change by 10 % and 50 W: at once (since it began to differ) */
	tr_request_want(&q, 2300, now + 140);
	EXPECT_EQ(now + 100, tr_request_due(&q, dur));
	tr_request_sent(&q, now + 140);
	/* a large relative change under 50 W waits; turning round to an offer goes at once */
	tr_request_want(&q, 2340, now + 200);
	EXPECT_EQ(now + 200 + TR_REQ_WAIT_S, tr_request_due(&q, dur));
	tr_request_want(&q, -500, now + 210);
	EXPECT_EQ(now + 200, tr_request_due(&q, dur));
	/* the outbox cannot take it: tried again a little later, not in a loop */
	tr_request_failed(&q, now + 210);
	EXPECT_EQ(now + 210 + TR_REQ_RETRY_S, tr_request_due(&q, dur));
	tr_request_sent(&q, now + 215);
	/* released: at once, then nothing to renew */
	tr_request_want(&q, 0, now + 300);
	EXPECT_EQ(now + 300, tr_request_due(&q, dur));
	tr_request_sent(&q, now + 300);
	EXPECT_EQ(INT64_MAX, tr_request_due(&q, dur));
}

TEST_HARNESS_MAIN
