// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation inside a town, the pure logic (server/townd_alloc.c): full
 * grants, max-min fair shares, priority classes, the seed's reduction of
 * one meter for another, a shrinking pool, offers taken and returned,
 * expiry, release, hysteresis (no flapping), the shortfall for borrowing;
 * and random sequences checked after every decision against an invariant
 * checker whose fair shares come from an independent computation
 * (a bisection on the water level instead of the allocator's
 * sorted water-filling).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "townd_alloc.h"

#define T0	1790000000
#define BASE	10000

static struct ta_cfg cfg_of(int64_t capacity, int64_t hyst)
{
	return (struct ta_cfg){ .capacity_w = capacity, .base_w = BASE, .hysteresis_w = hyst,
				.default_duration_s = 900, .max_duration_s = 86400 };
}

static int64_t grant_of(const struct townd_alloc *a, uint16_t m, int64_t now)
{
	const struct ta_entry *e = townd_alloc_find(a, m);

	return e && e->grant_until > now ? e->grant_w : 0;
}

static const struct ta_decision *dec_of(const struct townd_alloc *a, uint16_t m)
{
	for (size_t i = 0; i < a->ndec; i++)
		if (a->dec[i].meter == m)
			return &a->dec[i];
	return NULL;
}

static int64_t flags_of(unsigned int prio)
{
	return (int64_t)prio << GMP_AF_PRIO_SHIFT;
}

/*
 * Reference max-min shares of pool among wants (one class): the water level
 * L is the largest with sum(min(want, L)) <= pool (bisection); the watts
 * below the next level go one each to the earliest of those capped at L.
 */
static void ref_class(const int64_t *want, const int64_t *since, const uint16_t *meter,
		      size_t n, int64_t pool, int64_t *share)
{
	int64_t lo = 0, hi = 0, used = 0, rem;

	for (size_t i = 0; i < n; i++)
		hi = want[i] > hi ? want[i] : hi;
	while (lo < hi) {
		int64_t mid = lo + (hi - lo + 1) / 2, s = 0;

		for (size_t i = 0; i < n; i++)
			s += want[i] < mid ? want[i] : mid;
		if (s <= pool)
			lo = mid;
		else
			hi = mid - 1;
	}
	for (size_t i = 0; i < n; i++) {
		share[i] = want[i] < lo ? want[i] : lo;
		used += share[i];
	}
	/* one watt each to the earliest of the capped ones, as many as are left */
	for (rem = pool - used; rem > 0; rem--) {
		size_t best = n;

		for (size_t i = 0; i < n; i++)
			if (share[i] == lo && want[i] > lo && (best == n || since[i] < since[best] ||
			    (since[i] == since[best] && meter[i] < meter[best])))
				best = i;
		if (best == n)
			break;
		share[best]++;		/* now lo + 1: not chosen again */
	}
}

/* Check every invariant after a decision; returns a description of the first broken one. */
static const char *check(const struct townd_alloc *a, int64_t now, char *buf, size_t n)
{
	int64_t grid = a->cfg.capacity_w + a->borrowed_w - a->lent_w, asked = 0, offered = 0;
	int64_t taken = 0, granted = 0, pool, share[512], want[512], since[512];
	uint16_t meter[512];

	grid = grid > 0 ? grid : 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct ta_entry *e = &a->e[i];
		int64_t g = grant_of(a, e->meter, now);

		if (e->expires <= now)
			return snprintf(buf, n, "meter %u: expired entry kept", e->meter), buf;
		if (e->want_w > 0) {
			asked += e->want_w;
			granted += g;
			if (g < 0 || g > e->want_w)
				return snprintf(buf, n, "meter %u: grant %lld outside 0..%lld",
						e->meter, (long long)g, (long long)e->want_w), buf;
		} else if (e->want_w < 0) {
			offered += -e->want_w;
			if (g != (e->taken ? e->want_w : 0))
				return snprintf(buf, n, "meter %u: offer %lld, taken %d, grant %lld",
						e->meter, (long long)e->want_w, e->taken,
						(long long)g), buf;
			taken += e->taken ? -e->want_w : 0;
		} else if (g) {
			return snprintf(buf, n, "meter %u asks 0 but holds %lld", e->meter,
					(long long)g), buf;
		}
	}
	pool = grid + taken;
	if (granted > pool)
		return snprintf(buf, n, "granted %lld > pool %lld", (long long)granted,
				(long long)pool), buf;
	if (taken < (asked - grid < offered ? asked - grid : offered))
		return snprintf(buf, n, "offers taken %lld short of the need %lld", (long long)taken,
				(long long)(asked - grid)), buf;
	if (a->fig.shortfall_w != (asked - grid - offered > 0 ? asked - grid - offered : 0))
		return snprintf(buf, n, "shortfall %lld, asked %lld grid %lld offered %lld",
				(long long)a->fig.shortfall_w, (long long)asked, (long long)grid,
				(long long)offered), buf;
	/* classes from the highest: full, then one shared, then nothing */
	for (int rank = TA_PRIOS - 1; rank >= 0; rank--) {
		size_t k = 0;
		int64_t sum = 0;

		for (size_t i = 0; i < a->n && k < 512; i++)
			if (a->e[i].want_w > 0 && a->e[i].rank == rank) {
				want[k] = a->e[i].want_w;
				since[k] = a->e[i].since;
				meter[k] = a->e[i].meter;
				sum += want[k++];
			}
		if (!k)
			continue;
		ref_class(want, since, meter, k, pool < sum ? pool : sum, share);
		for (size_t j = 0; j < k; j++) {
			int64_t g = grant_of(a, meter[j], now), d = g - share[j];

			if (d > a->cfg.hysteresis_w || d < -a->cfg.hysteresis_w ||
			    (share[j] == 0 && g) || (share[j] == want[j] && g != want[j]))
				return snprintf(buf, n, "meter %u (%s): grant %lld, max-min share "
						"%lld of %lld, hysteresis %lld", meter[j],
						townd_alloc_rank_name((unsigned int)rank),
						(long long)g, (long long)share[j], (long long)want[j],
						(long long)a->cfg.hysteresis_w), buf;
		}
		pool -= pool < sum ? pool : sum;
	}
	return NULL;
}

#define CHECK(a, now) do { \
	char _b[256]; \
	const char *_w = check(a, now, _b, sizeof(_b)); \
	ASSERT_EQ(NULL, _w) TH_LOG("%s", _w); \
} while (0)

/*
 * A town none of whose meters asked anything can lend its whole capacity
 * (the borrowing code reads the surplus): before any request, and after
 * the first decision. (The town network test found a lender with 20 kW
 * that offered nothing: the figures were only set by a decision.)
 */
TEST(a_town_without_requests_has_its_capacity_as_surplus)
{
	struct townd_alloc a;
	struct ta_cfg c = cfg_of(20000, 100);

	townd_alloc_init(&a, &c);
	EXPECT_EQ(20000, townd_alloc_surplus(&a));
	EXPECT_EQ(0, townd_alloc_shortfall(&a));
	EXPECT_TRUE(townd_alloc_due(&a, T0));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0));
	EXPECT_EQ(20000, townd_alloc_surplus(&a));
	EXPECT_FALSE(townd_alloc_due(&a, T0));
	townd_alloc_set_lent(&a, 5000);
	ASSERT_EQ(0, townd_alloc_decide(&a, T0));
	EXPECT_EQ(15000, townd_alloc_surplus(&a));
	townd_alloc_free(&a);
}

TEST(full_grants_when_the_pool_covers)
{
	struct townd_alloc a;
	struct ta_cfg c = cfg_of(5000, 100);

	townd_alloc_init(&a, &c);
	ASSERT_EQ(0, townd_alloc_request(&a, 1, 1, 1500, 900, 0, T0));
	ASSERT_EQ(0, townd_alloc_request(&a, 2, 1, 2500, 600, 0, T0));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0));
	CHECK(&a, T0);
	EXPECT_EQ(1500, grant_of(&a, 1, T0));
	EXPECT_EQ(2500, grant_of(&a, 2, T0));
	EXPECT_EQ(TA_R_FULL, dec_of(&a, 1)->reason);
	EXPECT_TRUE(dec_of(&a, 2)->send);
	EXPECT_EQ(T0 + 600, dec_of(&a, 2)->until);
	EXPECT_EQ(BASE + 2500, townd_alloc_absolute(&a, dec_of(&a, 2)->new_w));
	EXPECT_EQ(0, townd_alloc_shortfall(&a));
	EXPECT_EQ(5000 - 1500 - 2500, townd_alloc_surplus(&a));
	townd_alloc_free(&a);
}

TEST(max_min_fair_shares)
{
	struct townd_alloc a;
	struct ta_cfg c = cfg_of(1201, 0);
	int64_t want[3] = { 100, 500, 1000 }, since[3] = { T0, T0 + 1, T0 + 2 }, share[3];
	uint16_t meter[3] = { 1, 2, 3 };

	townd_alloc_init(&a, &c);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, townd_alloc_request(&a, meter[i], 1, want[i], 900, 0, since[i]));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 2));
	ref_class(want, since, meter, 3, 1201, share);
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(share[i], grant_of(&a, meter[i], T0 + 2));
	/* the small request in full, the others level, the odd watt to the earlier */
	EXPECT_EQ(100, share[0]);
	EXPECT_EQ(500, share[1]);
	EXPECT_EQ(1201 - 100 - 500, share[2]);
	EXPECT_EQ(TA_R_FAIR, dec_of(&a, 3)->reason);
	EXPECT_EQ(1600 - 1201, townd_alloc_shortfall(&a));
	CHECK(&a, T0 + 2);
	townd_alloc_free(&a);
}

TEST(priorities_are_served_first)
{
	struct townd_alloc a;
	struct ta_cfg c = cfg_of(3000, 0);

	townd_alloc_init(&a, &c);
	ASSERT_EQ(0, townd_alloc_request(&a, 1, 1, 2000, 900, flags_of(GMP_AF_PRIO_NORMAL), T0));
	ASSERT_EQ(0, townd_alloc_request(&a, 2, 1, 2000, 900, flags_of(GMP_AF_PRIO_CRITICAL), T0 + 5));
	ASSERT_EQ(0, townd_alloc_request(&a, 3, 1, 500, 900, flags_of(GMP_AF_PRIO_DEFERRABLE), T0));
	ASSERT_EQ(0, townd_alloc_request(&a, 4, 1, 700, 900, flags_of(GMP_AF_PRIO_ESSENTIAL), T0 + 9));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 10));
	CHECK(&a, T0 + 10);
	EXPECT_EQ(2000, grant_of(&a, 2, T0 + 10));	/* critical */
	EXPECT_EQ(700, grant_of(&a, 4, T0 + 10));	/* essential */
	EXPECT_EQ(3000 - 2000 - 700, grant_of(&a, 1, T0 + 10));
	EXPECT_EQ(0, grant_of(&a, 3, T0 + 10));		/* deferrable waits */
	EXPECT_EQ(TA_R_PRIORITY, dec_of(&a, 3)->reason);
	EXPECT_FALSE(dec_of(&a, 3)->send);		/* nothing held, nothing given */
	townd_alloc_free(&a);
}

/* Seed 000 3.3: the town reduces the first one and assigns the power to the other. */
TEST(the_first_is_reduced_for_the_other)
{
	struct townd_alloc a;
	struct ta_cfg c = cfg_of(1000, 50);

	townd_alloc_init(&a, &c);
	ASSERT_EQ(0, townd_alloc_request(&a, 1, 1, 1000, 900, 0, T0));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0));
	EXPECT_EQ(1000, grant_of(&a, 1, T0));
	ASSERT_EQ(0, townd_alloc_request(&a, 2, 1, 800, 900, 0, T0 + 60));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 60));
	CHECK(&a, T0 + 60);
	EXPECT_EQ(500, grant_of(&a, 1, T0 + 60));
	EXPECT_EQ(500, grant_of(&a, 2, T0 + 60));
	EXPECT_EQ(TA_R_REDUCED, dec_of(&a, 1)->reason);
	EXPECT_TRUE(dec_of(&a, 1)->send);
	EXPECT_EQ(T0 + 900, dec_of(&a, 1)->until);	/* its own request's end */
	/* the first needs less now: a release of what it holds, then an offer of 300 */
	ASSERT_EQ(0, townd_alloc_request(&a, 1, 2, -300, 900, 0, T0 + 120));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 120));
	CHECK(&a, T0 + 120);
	EXPECT_EQ(200, grant_of(&a, 1, T0 + 120));
	EXPECT_EQ(TA_R_ASKED_LESS, dec_of(&a, 1)->reason);
	EXPECT_EQ(800, grant_of(&a, 2, T0 + 120));
	EXPECT_EQ(TA_R_FULL, dec_of(&a, 2)->reason);
	townd_alloc_free(&a);
}

TEST(requests_are_relative_to_what_the_meter_holds)
{
	struct townd_alloc a;
	struct ta_cfg c = cfg_of(600, 0);

	townd_alloc_init(&a, &c);
	ASSERT_EQ(0, townd_alloc_request(&a, 1, 1, 1000, 900, 0, T0));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0));
	EXPECT_EQ(600, grant_of(&a, 1, T0));
	/* meterd asks for its remaining deficit: 400 more than it holds */
	ASSERT_EQ(0, townd_alloc_request(&a, 1, 2, 400, 900, 0, T0 + 5));
	EXPECT_EQ(1000, townd_alloc_find(&a, 1)->want_w);
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 5));
	EXPECT_EQ(600, grant_of(&a, 1, T0 + 5));
	EXPECT_EQ(400, townd_alloc_shortfall(&a));
	/* borrowed watts (part E) go into the pool */
	townd_alloc_set_borrowed(&a, 400);
	ASSERT_TRUE(townd_alloc_due(&a, T0 + 6));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 6));
	EXPECT_EQ(TA_R_SUPPLY, a.dec[0].reason);
	EXPECT_EQ(1000, grant_of(&a, 1, T0 + 6));
	EXPECT_EQ(0, townd_alloc_shortfall(&a));
	/* covered: meterd releases; that keeps what it holds (no flapping) */
	ASSERT_EQ(0, townd_alloc_release(&a, 1, 2, T0 + 7));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 7));
	EXPECT_EQ(1000, grant_of(&a, 1, T0 + 7));
	EXPECT_EQ(TA_R_KEPT, dec_of(&a, 1)->reason);
	EXPECT_FALSE(dec_of(&a, 1)->send);
	/* a stale release (another request) is ignored */
	ASSERT_EQ(0, townd_alloc_release(&a, 1, 1, T0 + 8));
	EXPECT_FALSE(townd_alloc_due(&a, T0 + 8));
	townd_alloc_free(&a);
}

/*
 * A stopped town (issue 13): a grant in force is kept to its end even when
 * the pool goes, a new request gets nothing beyond what the meter holds,
 * no grant is extended; started again, requests are served.
 */
TEST(a_stopped_town_keeps_grants_and_grants_nothing_new)
{
	struct townd_alloc a;
	struct ta_cfg c = cfg_of(2000, 0);
	const struct ta_entry *e;
	int64_t until;

	townd_alloc_init(&a, &c);
	ASSERT_EQ(0, townd_alloc_request(&a, 1, 1, 1500, 900, 0, T0));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0));
	EXPECT_EQ(1500, grant_of(&a, 1, T0));
	until = townd_alloc_find(&a, 1)->grant_until;
	townd_alloc_set_stopped(&a, true);
	townd_alloc_set_capacity(&a, 0);	/* the pool goes */
	ASSERT_EQ(0, townd_alloc_request(&a, 2, 1, 800, 900, 0, T0 + 10));
	ASSERT_EQ(0, townd_alloc_request(&a, 1, 2, 700, 1800, 0, T0 + 10));	/* more, longer */
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 10));
	EXPECT_EQ(1500, grant_of(&a, 1, T0 + 10));	/* kept, not raised */
	e = townd_alloc_find(&a, 1);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(until, e->grant_until);		/* not extended */
	EXPECT_EQ(0, grant_of(&a, 2, T0 + 10));	/* new: its base allocation only */
	/* started again with a pool: served */
	townd_alloc_set_stopped(&a, false);
	townd_alloc_set_capacity(&a, 5000);
	ASSERT_EQ(0, townd_alloc_request(&a, 2, 2, 800, 900, 0, T0 + 20));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 20));
	EXPECT_EQ(800, grant_of(&a, 2, T0 + 20));
	townd_alloc_free(&a);
}

TEST(release_of_a_waiting_request_frees_its_share)
{
	struct townd_alloc a;
	struct ta_cfg c = cfg_of(1000, 0);

	townd_alloc_init(&a, &c);
	ASSERT_EQ(0, townd_alloc_request(&a, 1, 7, 1000, 900, flags_of(GMP_AF_PRIO_DEFERRABLE), T0));
	ASSERT_EQ(0, townd_alloc_request(&a, 2, 3, 1000, 900, 0, T0));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0));
	EXPECT_EQ(0, grant_of(&a, 1, T0));
	EXPECT_EQ(1000, grant_of(&a, 2, T0));
	ASSERT_EQ(0, townd_alloc_request(&a, 3, 1, 1000, 900, 0, T0 + 1));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 1));
	EXPECT_EQ(500, grant_of(&a, 3, T0 + 1));
	/* meter 1 (holding nothing) releases: it leaves; meter 3 releases nothing yet */
	ASSERT_EQ(0, townd_alloc_release(&a, 1, 7, T0 + 2));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 2));
	EXPECT_EQ(TA_R_RELEASED, dec_of(&a, 1)->reason);
	EXPECT_EQ(NULL, townd_alloc_find(&a, 1));
	/* meter 3 needs 500 less (an offer of -500 relative): meter 2 gets back its 1000 */
	ASSERT_EQ(0, townd_alloc_request(&a, 3, 2, -500, 900, 0, T0 + 3));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 3));
	CHECK(&a, T0 + 3);
	EXPECT_EQ(0, grant_of(&a, 3, T0 + 3));
	EXPECT_EQ(1000, grant_of(&a, 2, T0 + 3));
	townd_alloc_free(&a);
}

TEST(expiry_frees_the_pool)
{
	struct townd_alloc a;
	struct ta_cfg c = cfg_of(1000, 0);

	townd_alloc_init(&a, &c);
	ASSERT_EQ(0, townd_alloc_request(&a, 1, 1, 1000, 300, 0, T0));
	ASSERT_EQ(0, townd_alloc_request(&a, 2, 1, 1000, 900, 0, T0));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0));
	EXPECT_EQ(500, grant_of(&a, 2, T0));
	EXPECT_EQ(T0 + 300, townd_alloc_next_expiry(&a));
	EXPECT_FALSE(townd_alloc_due(&a, T0 + 299));
	ASSERT_TRUE(townd_alloc_due(&a, T0 + 300));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 300));
	CHECK(&a, T0 + 300);
	EXPECT_EQ(TA_R_EXPIRED, dec_of(&a, 1)->reason);
	EXPECT_FALSE(dec_of(&a, 1)->send);	/* the meter returns to base by itself */
	EXPECT_EQ(NULL, townd_alloc_find(&a, 1));
	EXPECT_EQ(1000, grant_of(&a, 2, T0 + 300));
	/* durations: 0 takes the default, too long is cut */
	ASSERT_EQ(0, townd_alloc_request(&a, 3, 1, 10, 0, 0, T0 + 300));
	ASSERT_EQ(0, townd_alloc_request(&a, 4, 1, 10, 999999, 0, T0 + 300));
	EXPECT_EQ(T0 + 300 + 900, townd_alloc_find(&a, 3)->expires);
	EXPECT_EQ(T0 + 300 + 86400, townd_alloc_find(&a, 4)->expires);
	townd_alloc_free(&a);
}

TEST(offers_taken_only_when_needed_and_returned)
{
	struct townd_alloc a;
	struct ta_cfg c = cfg_of(1000, 0);

	townd_alloc_init(&a, &c);
	ASSERT_EQ(0, townd_alloc_request(&a, 10, 1, -2000, 900, 0, T0));
	ASSERT_EQ(0, townd_alloc_request(&a, 11, 1, -700, 900, 0, T0 + 1));
	ASSERT_EQ(0, townd_alloc_request(&a, 1, 1, 800, 900, 0, T0 + 2));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 2));
	CHECK(&a, T0 + 2);
	EXPECT_EQ(0, grant_of(&a, 10, T0 + 2));		/* the grid part covers 800 */
	EXPECT_EQ(TA_R_KEPT, dec_of(&a, 10)->reason);
	EXPECT_EQ(800, grant_of(&a, 1, T0 + 2));
	EXPECT_EQ(1000 + 2700 - 800, townd_alloc_surplus(&a));
	/* 2500 asked: 1500 beyond the grid; the oldest offer (2000) is taken whole */
	ASSERT_EQ(0, townd_alloc_request(&a, 2, 1, 1700, 900, 0, T0 + 3));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 3));
	CHECK(&a, T0 + 3);
	EXPECT_EQ(-2000, grant_of(&a, 10, T0 + 3));
	EXPECT_EQ(TA_R_OFFER_TAKEN, dec_of(&a, 10)->reason);
	EXPECT_EQ(BASE - 2000, townd_alloc_absolute(&a, dec_of(&a, 10)->new_w));
	EXPECT_EQ(0, grant_of(&a, 11, T0 + 3));
	EXPECT_EQ(1700, grant_of(&a, 2, T0 + 3));
	/* the request ends: the offer is returned */
	ASSERT_EQ(0, townd_alloc_request(&a, 2, 2, -1700, 900, 0, T0 + 4));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 4));
	CHECK(&a, T0 + 4);
	EXPECT_EQ(0, grant_of(&a, 10, T0 + 4));
	EXPECT_EQ(TA_R_OFFER_RETURNED, dec_of(&a, 10)->reason);
	EXPECT_TRUE(dec_of(&a, 10)->send);
	townd_alloc_free(&a);
}

TEST(a_shrinking_pool_takes_back_and_no_flapping)
{
	struct townd_alloc a;
	struct ta_cfg c = cfg_of(3000, 100);
	int sends = 0;

	townd_alloc_init(&a, &c);
	for (uint16_t m = 1; m <= 3; m++)
		ASSERT_EQ(0, townd_alloc_request(&a, m, 1, 2000, 86400, 0, T0 + m));
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 3));
	for (uint16_t m = 1; m <= 3; m++)
		EXPECT_EQ(1000, grant_of(&a, m, T0 + 3));
	/* the supply wobbles by less than the hysteresis per meter: nothing is sent */
	for (int i = 0; i < 50; i++) {
		townd_alloc_set_capacity(&a, 3000 + (i % 2 ? 150 : -150));
		ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 10 + i));
		CHECK(&a, T0 + 10 + i);
		for (size_t k = 0; k < a.ndec; k++)
			sends += a.dec[k].send;
	}
	/* shrinking below kept grants cuts: never more than the pool, 150 W over by 3 -> 3 cuts */
	EXPECT_LE(sends, 3 * 2);
	townd_alloc_set_capacity(&a, 1200);
	ASSERT_EQ(0, townd_alloc_decide(&a, T0 + 100));
	CHECK(&a, T0 + 100);
	for (uint16_t m = 1; m <= 3; m++) {
		EXPECT_EQ(400, grant_of(&a, m, T0 + 100));
		EXPECT_EQ(TA_R_REDUCED, dec_of(&a, m)->reason);
	}
	townd_alloc_free(&a);
}

/* Random requests, offers, releases, supply and loans against the checker. */
TEST(random_sequences_keep_the_invariants)
{
	unsigned int seed = 12;

	for (int run = 0; run < 20; run++) {
		struct townd_alloc a;
		struct ta_cfg c = cfg_of(rand_r(&seed) % 20000, run % 3 ? 100 : 0);
		int64_t now = T0, req[64] = { 0 }, sends = 0, decisions = 0;

		townd_alloc_init(&a, &c);
		for (int step = 0; step < 400; step++) {
			unsigned int op = rand_r(&seed) % 10;
			uint16_t m = (uint16_t)(1 + rand_r(&seed) % 40);

			now += rand_r(&seed) % 60;
			if (op < 5) {
				int64_t p = (int64_t)(rand_r(&seed) % 6000) - 2000;
				int64_t dur = 60 + rand_r(&seed) % 1200;

				ASSERT_EQ(0, townd_alloc_request(&a, m, ++req[m], p, dur,
								 flags_of(rand_r(&seed) % 4), now));
			} else if (op < 7) {
				ASSERT_EQ(0, townd_alloc_release(&a, m, req[m], now));
			} else if (op == 7)
				townd_alloc_set_capacity(&a, rand_r(&seed) % 20000);
			else if (op == 8)
				townd_alloc_set_borrowed(&a, rand_r(&seed) % 3000);
			else
				townd_alloc_set_lent(&a, rand_r(&seed) % 3000);
			if (townd_alloc_due(&a, now)) {
				ASSERT_EQ(0, townd_alloc_decide(&a, now));
				CHECK(&a, now);
				decisions++;
				for (size_t k = 0; k < a.ndec; k++) {
					const struct ta_decision *d = &a.dec[k];

					sends += d->send;
					/* a grant that changes is always sent, with its reason */
					if (d->old_w != d->new_w && d->reason != TA_R_EXPIRED &&
					    d->reason != TA_R_RELEASED)
						ASSERT_TRUE(d->send);
					ASSERT_NE(0, (int)strlen(d->text));
				}
			}
		}
		/* deciding again without a change sends nothing */
		ASSERT_EQ(0, townd_alloc_decide(&a, now));
		for (size_t k = 0; k < a.ndec; k++) {
			const struct ta_decision *d = &a.dec[k];

			ASSERT_FALSE(d->send) TH_LOG("meter %u: %s: %s", d->meter,
						     townd_alloc_reason_name(d->reason), d->text);
		}
		TH_LOG("run %d: %lld decisions, %lld grants sent", run, (long long)decisions,
		       (long long)sends);
		townd_alloc_free(&a);
	}
}

TEST_HARNESS_MAIN
