// SPDX-License-Identifier: GPL-2.0
/*
 * The meter's time, pure parts: the clock policy (clock.c) at and around
 * every limit, the held-energy buckets (held.c) and the persisted layout
 * that carries them (persist.c, with the version 2 migration).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gm_harness.h"
#include "clock.h"
#include "clock_set.h"
#include "held.h"
#include "old_formats.h"
#include "persist.h"
#include "profile.h"

#define MIN_MS	60000

static struct clock_policy policy(void)
{
	struct clock_policy p;

	clock_policy_init(&p, 300);
	return p;
}

TEST(untrusted_clock_is_stepped_whatever_the_offset)
{
	static const int64_t offsets[] = { 0, 1, -1, 499, 300001, -86400000LL * 3650, 86400000LL * 3650 };
	struct clock_policy p = policy();

	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		struct clock_state s = { .trusted = false };
		struct clock_decision d;

		EXPECT_EQ(CLOCK_STEP, clock_sample(&p, &s, offsets[i], 1500, 1000, &d));
		EXPECT_EQ(offsets[i], d.delta_ms);
		EXPECT_TRUE(d.trust);
		EXPECT_FALSE(d.suspect);
	}
}

TEST(trusted_clock_slews_small_steps_medium_refuses_large)
{
	struct clock_policy p = policy();
	struct {
		int64_t offset;
		enum clock_action want;
	} cases[] = {
		{ 0, CLOCK_NONE },
		{ 1, CLOCK_SLEW }, { -1, CLOCK_SLEW },
		{ p.slew_max_ms, CLOCK_SLEW }, { -p.slew_max_ms, CLOCK_SLEW },
		{ p.slew_max_ms + 1, CLOCK_STEP }, { -p.slew_max_ms - 1, CLOCK_STEP },
		{ p.step_max_ms, CLOCK_STEP }, { -p.step_max_ms, CLOCK_STEP },
		{ p.step_max_ms + 1, CLOCK_REFUSE }, { -p.step_max_ms - 1, CLOCK_REFUSE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct clock_state s = { .trusted = true };
		struct clock_decision d;

		EXPECT_EQ(cases[i].want, clock_sample(&p, &s, cases[i].offset, 100, 5000, &d))
			TH_LOG("offset %lld", (long long)cases[i].offset);
		EXPECT_EQ(cases[i].want == CLOCK_REFUSE, d.suspect);
		EXPECT_EQ(cases[i].want == CLOCK_REFUSE, s.suspect);
		EXPECT_EQ(cases[i].want == CLOCK_SLEW || cases[i].want == CLOCK_STEP ? cases[i].offset : 0,
			  d.delta_ms);
	}
}

TEST(a_large_offset_needs_two_agreeing_samples_ten_minutes_apart)
{
	struct clock_policy p = policy();
	struct clock_state s = { .trusted = true };
	struct clock_decision d;
	int64_t t0 = 1000000, off = 3600000;

	ASSERT_EQ(CLOCK_REFUSE, clock_sample(&p, &s, off, 100, t0, &d));
	/* agreeing, but too soon */
	EXPECT_EQ(CLOCK_REFUSE, clock_sample(&p, &s, off, 100, t0 + p.confirm_gap_ms - 1, &d));
	/* ten minutes after the first (not the second), within 2 s */
	EXPECT_EQ(CLOCK_STEP, clock_sample(&p, &s, off + p.confirm_agree_ms, 100, t0 + p.confirm_gap_ms, &d));
	EXPECT_EQ(off + p.confirm_agree_ms, d.delta_ms);
	EXPECT_FALSE(s.suspect);
	EXPECT_FALSE(d.suspect);

	/* disagreeing by more than 2 s: the new sample is the candidate */
	ASSERT_EQ(CLOCK_REFUSE, clock_sample(&p, &s, off, 100, t0, &d));
	EXPECT_EQ(CLOCK_REFUSE, clock_sample(&p, &s, off + p.confirm_agree_ms + 1, 100,
					     t0 + p.confirm_gap_ms, &d));
	EXPECT_EQ(t0 + p.confirm_gap_ms, s.cand_mono_ms);
	/* agreeing with it, too soon: it stays the candidate */
	EXPECT_EQ(CLOCK_REFUSE, clock_sample(&p, &s, off + p.confirm_agree_ms, 100,
					     t0 + 2 * p.confirm_gap_ms - 1, &d));
	EXPECT_EQ(t0 + p.confirm_gap_ms, s.cand_mono_ms);
	EXPECT_EQ(CLOCK_STEP, clock_sample(&p, &s, off + 1, 100, t0 + 2 * p.confirm_gap_ms, &d));

	/* a sample within the limits clears the suspicion and the candidate no longer counts */
	ASSERT_EQ(CLOCK_REFUSE, clock_sample(&p, &s, off, 100, t0, &d));
	EXPECT_EQ(CLOCK_SLEW, clock_sample(&p, &s, 20, 100, t0 + MIN_MS, &d));
	EXPECT_FALSE(s.suspect);
	EXPECT_EQ(CLOCK_REFUSE, clock_sample(&p, &s, off, 100, t0 + 11 * MIN_MS, &d));
}

TEST(clock_max_step_is_configurable)
{
	struct clock_policy p;
	struct clock_state s = { .trusted = true };
	struct clock_decision d;

	clock_policy_init(&p, 30);
	EXPECT_EQ(30000, p.step_max_ms);
	EXPECT_EQ(CLOCK_STEP, clock_sample(&p, &s, 30000, 100, 0, &d));
	EXPECT_EQ(CLOCK_REFUSE, clock_sample(&p, &s, 30001, 100, 0, &d));
}

/* The arithmetic of agent/hw/clock_set.c (the host's clock itself is never set in tests). */
TEST(clock_set_shifts_and_slew_values_are_normalised)
{
	struct timespec ts = { .tv_sec = 10, .tv_nsec = 200000000 };
	struct timeval tv;

	clock_set_shift(&ts, -1500);
	EXPECT_EQ(8, ts.tv_sec);
	EXPECT_EQ(700000000, ts.tv_nsec);
	clock_set_shift(&ts, 1300);
	EXPECT_EQ(10, ts.tv_sec);
	EXPECT_EQ(0, ts.tv_nsec);
	clock_set_shift(&ts, -86400000LL * 365 * 10);
	EXPECT_EQ(10 - 86400 * 365 * 10, ts.tv_sec);
	EXPECT_EQ(0, ts.tv_nsec);
	clock_set_timeval(-1500, &tv);
	EXPECT_EQ(-1500000, tv.tv_sec * 1000000 + tv.tv_usec);
	EXPECT_GT(1000000, tv.tv_usec < 0 ? -tv.tv_usec : tv.tv_usec);
	clock_set_timeval(499, &tv);
	EXPECT_EQ(0, tv.tv_sec);
	EXPECT_EQ(499000, tv.tv_usec);
}

/* ---- held energy -------------------------------------------------------------------- */

#define LEN	900000	/* a 15-minute interval */
#define J	1000000ull	/* uJ */

TEST(held_samples_of_one_interval_share_a_bucket)
{
	struct held h;
	uint64_t i, e, r;

	held_init(&h, LEN);
	/* 1 s samples from 899 s to 902 s of monotonic time */
	for (int64_t t = 899000; t < 902000; t += 1000)
		held_add(&h, t, t + 1000, 1 * J, 2 * J, 3 * J, 0);
	ASSERT_EQ(2u, h.n);	/* [899, 900] then [900, 902] */
	EXPECT_EQ(899000, h.b[0].mono_from);
	EXPECT_EQ(900000, h.b[0].mono_to);
	EXPECT_EQ(900000, h.b[1].mono_from);
	EXPECT_EQ(902000, h.b[1].mono_to);
	EXPECT_EQ(2 * J, h.b[1].import_uj);
	held_totals(&h, &i, &e, &r);
	EXPECT_EQ(3 * J, i);
	EXPECT_EQ(6 * J, e);
	EXPECT_EQ(9 * J, r);
	EXPECT_EQ(3000, held_span_ms(&h));
	/* a sample that does not continue the last one starts a bucket (meterd was down) */
	held_add(&h, 905000, 906000, J, 0, 0, PROFILE_GAP);
	ASSERT_EQ(3u, h.n);
	EXPECT_EQ(PROFILE_GAP, h.b[2].flags);
}

TEST(held_buckets_merge_oldest_when_full_and_keep_every_joule)
{
	struct held h;
	uint64_t i, e, r, want = 0;

	held_init(&h, LEN);
	for (unsigned k = 0; k < HELD_MAX + 10; k++) {
		/* one sample per interval, each in its own interval, apart: */
		held_add(&h, (int64_t)k * LEN, (int64_t)k * LEN + 1000, (k + 1) * J, 0, 0, 0);
		want += (k + 1) * J;
	}
	ASSERT_EQ((unsigned)HELD_MAX, h.n);
	held_totals(&h, &i, &e, &r);
	EXPECT_EQ(want, i);
	/* the oldest bucket holds the first 11 samples, apart: flagged as a gap */
	EXPECT_EQ(0, h.b[0].mono_from);
	EXPECT_EQ(10 * LEN + 1000, h.b[0].mono_to);
	EXPECT_EQ(66 * J, h.b[0].import_uj);
	EXPECT_EQ(PROFILE_GAP, h.b[0].flags & PROFILE_GAP);
	/* the newest are untouched */
	EXPECT_EQ((int64_t)(HELD_MAX + 9) * LEN, h.b[HELD_MAX - 1].mono_from);
	EXPECT_EQ(0u, h.b[HELD_MAX - 1].flags);
}

TEST(held_energy_of_an_earlier_boot_becomes_one_prior_bucket)
{
	struct held h;
	uint64_t i, e, r;

	held_init(&h, LEN);
	held_add(&h, 10000, 20000, 5 * J, 1 * J, 0, 0);
	held_add(&h, 2000000, 2003000, 7 * J, 0, 2 * J, PROFILE_GAP);
	held_new_boot(&h);
	ASSERT_EQ(1u, h.n);
	EXPECT_EQ(1u, h.b[0].prior);
	EXPECT_EQ(13000, held_span_ms(&h));	/* what was measured, not the time between */
	EXPECT_EQ(PROFILE_GAP, h.b[0].flags);
	/* this boot's buckets follow it; a full set merges this boot's, never the prior one */
	for (unsigned k = 0; k < HELD_MAX + 3; k++)
		held_add(&h, (int64_t)k * LEN, (int64_t)k * LEN + 1000, J, 0, 0, 0);
	ASSERT_EQ((unsigned)HELD_MAX, h.n);
	EXPECT_EQ(1u, h.b[0].prior);
	EXPECT_EQ(12 * J, h.b[0].import_uj);
	EXPECT_EQ(0u, h.b[1].prior);
	held_totals(&h, &i, &e, &r);
	EXPECT_EQ((12 + HELD_MAX + 3) * J, i);
	EXPECT_EQ(1 * J, e);
	EXPECT_EQ(2 * J, r);
	/* and an earlier boot again: everything in one */
	held_new_boot(&h);
	ASSERT_EQ(1u, h.n);
	EXPECT_EQ((12 + HELD_MAX + 3) * J, h.b[0].import_uj);
}

/* ---- the persisted layout ------------------------------------------------------------- */

TEST(persist_round_trip_with_held_buckets)
{
	struct meter_persist p, q;
	struct held h, g;
	uint8_t buf[PERSIST_MAX];
	size_t n;

	memset(&p, 0, sizeof(p));
	registers_init(&p.reg, 900, 1, 1790000100000);
	p.reg.import.total_mwh = 42;
	p.flags = PERSIST_CLEAN | PERSIST_PLACED;
	p.saved_mono_ms = 123456;
	strcpy(p.boot_id, "abc");
	held_init(&h, LEN);
	held_add(&h, 0, 1000, J, 2 * J, 3 * J, 0);
	held_add(&h, LEN, LEN + 1000, J, 0, 0, PROFILE_GAP);
	n = persist_encode(&p, &h, buf, sizeof(buf));
	EXPECT_EQ(sizeof(p) + 2 * sizeof(h.b[0]), n);
	ASSERT_EQ(0, persist_decode(buf, n, &q, &g));
	EXPECT_EQ(PERSIST_VERSION, q.version);
	EXPECT_EQ(42u, q.reg.import.total_mwh);
	EXPECT_EQ(PERSIST_CLEAN | PERSIST_PLACED, q.flags);
	EXPECT_EQ(123456, q.saved_mono_ms);
	EXPECT_STREQ("abc", q.boot_id);
	ASSERT_EQ(2u, g.n);
	EXPECT_EQ((uint32_t)LEN, g.len_ms);
	EXPECT_EQ(0, memcmp(h.b, g.b, 2 * sizeof(h.b[0])));
	/* a wrong length or a count that does not match is refused */
	EXPECT_EQ(-EINVAL, persist_decode(buf, n - 1, &q, &g));
	EXPECT_EQ(-EINVAL, persist_decode(buf, sizeof(p) - 1, &q, &g));
	((struct meter_persist *)(void *)buf)->nheld = HELD_MAX + 1;
	EXPECT_EQ(-EINVAL, persist_decode(buf, n, &q, &g));
	/* another version is named */
	((struct meter_persist *)(void *)buf)->version = 9;
	EXPECT_EQ(-EPROTONOSUPPORT, persist_decode(buf, n, &q, &g));
	EXPECT_EQ(9u, q.version);
}

TEST(persist_version_2_is_migrated)
{
	struct old_meter_persist_v2 v2;
	struct meter_persist q;
	struct held g;

	memset(&v2, 0, sizeof(v2));
	v2.version = 2;
	v2.size = sizeof(v2);
	v2.prot_state = 2;
	v2.remote_state = 1;
	v2.total_trips = 5;
	registers_init(&v2.reg, 900, 1, 1790000100000);
	v2.reg.export.total_mwh = 77;
	v2.ctr.valid = 1;
	v2.ctr.import_mj = 999;
	strcpy(v2.ctr.boot_id, "boot-x");
	ASSERT_EQ(0, persist_decode(&v2, sizeof(v2), &q, &g));
	EXPECT_EQ(PERSIST_VERSION, q.version);
	EXPECT_EQ(2u, q.prot_state);
	EXPECT_EQ(1u, q.remote_state);
	EXPECT_EQ(5u, q.total_trips);
	EXPECT_EQ(77u, q.reg.export.total_mwh);
	EXPECT_EQ(999u, q.ctr.import_mj);
	/* it ran on the system clock and said nothing of a clean stop */
	EXPECT_EQ(PERSIST_TRUSTED | PERSIST_PLACED, q.flags);
	EXPECT_EQ(v2.reg.last_ms, q.saved_real_ms);
	EXPECT_STREQ("boot-x", q.boot_id);
	EXPECT_EQ(0u, g.n);
	EXPECT_EQ(-EINVAL, persist_decode(&v2, sizeof(v2) - 8, &q, &g));
}

TEST_HARNESS_MAIN
