// SPDX-License-Identifier: GPL-2.0
/*
 * What meterd reports to its town server (agent/uplink/town_reports.c):
 * the town's view (last snapshot + the readings after it, as townd keeps
 * it) always equals what the meter reported; no energy lost when a record
 * cannot be queued; nothing on untrusted time; held energy reported once
 * trusted, in readings of at most an hour; the unrecorded span of a power cut;
 * a clock stepped back; registers raised to the town's view.
 */
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "town_reports.h"

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

TEST_HARNESS_MAIN
