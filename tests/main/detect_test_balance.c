// SPDX-License-Identifier: GPL-2.0
/*
 * Detection: the energy balance of a town per hour (det_balance.c) against
 * a real PostgreSQL 15, the hours fed through maind_pg's ingest hooks.
 *
 * Town 21: 30 meters and a feeder meter; a week of honest hours (technical
 * losses 2-4 % of the supply, a meter exporting at midday, hours split over
 * two tariff periods), then a day in which meter 7 reports 40 % of what it
 * draws and, from noon, meter 9 reports nothing drawn at all. Town 22: ten
 * honest meters with losses just inside its allowance. Every hour balanced
 * is checked against the gap and the flag computed here from the same
 * numbers; the flagged hours name meter 7 first; one open alert per town,
 * a zero-draw alert for meter 9, notices to the two operators not revoked,
 * none for the honest town, and running the rules again raises nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "detect_world.h"

#define DAYS		8
#define HOURS		(DAYS * 24)
#define HOUR0		((int64_t)1790000000 / 86400 * 86400 - 20 * 86400)
#define METERS		30
#define HONEST		10
#define FEEDER		1000
#define THIEF		7
#define THEFT0		(7 * 24)		/* meter 7 from here: 40 % */
#define ZERO		9
#define ZERO0		(7 * 24 + 12)		/* meter 9 from here: nothing */
#define LOSS		50			/* allowance, per mille */

/* For the figures printed (never a pass/fail): monotonic ms. */
static int64_t ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct data {
	int64_t rep[2][METERS + 1][HOURS];	/* net reported (import - export) */
	int64_t feeder[2][HOURS];
};

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Town k's hours (k 0: 21, the thief's; 1: 22, honest), sent a day per batch. */
static int make(struct dworld *w, struct data *d, int k, uint16_t town, int meters)
{
	static struct gmp_msg batch[(METERS + 2) * 2 * 24];
	uint32_t seed = 12345u + (uint32_t)k;
	int64_t base[METERS + 1];

	for (int m = 1; m <= meters; m++)
		base[m] = 200000 + lcg(&seed) % 1300001;
	if (!k) {
		base[THIEF] = 1000000;
		base[ZERO] = 400000;
	}
	for (int day = 0; day < DAYS; day++) {
		size_t n = 0;

		for (int hd = 0; hd < 24; hd++) {
			int h = day * 24 + hd;
			int64_t hour = HOUR0 + (int64_t)h * 3600, pf = 350 + hd * 37 % 650;
			int64_t truth = 0, loss;

			for (int m = 1; m <= meters; m++) {
				int64_t imp = base[m] * pf / 1000 *
					      (900 + (int64_t)(lcg(&seed) % 201)) / 1000;
				int64_t exp = m == 3 && hd >= 10 && hd <= 15 ? 300000 : 0;
				int64_t rimp = imp;

				truth += imp - exp;
				if (!k && m == THIEF && h >= THEFT0)
					rimp = imp * 40 / 100;
				if (!k && m == ZERO && h >= ZERO0)
					rimp = 0;
				d->rep[k][m][h] = rimp - exp;
				if (hd == 17) {	/* a tariff change inside the hour */
					batch[n++] = dw_hour(m, hour, 0, rimp / 2, exp);
					batch[n++] = dw_hour(m, hour, 1, rimp - rimp / 2, 0);
				} else {
					batch[n++] = dw_hour(m, hour, 0, rimp, exp);
				}
			}
			/* technical losses: 2-4 % of the meters' total; town 22 4.5-4.9 % */
			loss = k ? 45 + lcg(&seed) % 5 : 20 + lcg(&seed) % 21;
			d->feeder[k][h] = truth + truth * loss / 1000;
			batch[n++] = dw_hour(FEEDER, hour, 0, d->feeder[k][h], 0);
		}
		if (dw_send(w, town, batch, n))
			return -1;
	}
	return 0;
}

DW_FIXTURE(det)

TEST_F(det, balance_names_the_meter_that_under_reports)
{
	struct dworld *w = &self->w;
	struct data *d = calloc(1, sizeof(*d));
	struct mdet_settings s;
	struct mdet_stats st;
	int64_t last = HOUR0 + (HOURS - 1) * 3600, from, upto, alert, t0;
	int flagged = 0, honest = 0, zero_hours = 0, evaluated = 0;
	char buf[256];

	if (!self->pg)
		SKIP(return, PG_SKIP_WHY);
	ASSERT_NE(NULL, d);
	ASSERT_EQ(0, dw_town(w, 21));
	ASSERT_EQ(0, dw_town(w, 22));
	ASSERT_EQ(0, make(w, d, 0, 21, METERS)) TH_LOG("%s", w->p.err);
	ASSERT_EQ(0, make(w, d, 1, 22, HONEST)) TH_LOG("%s", w->p.err);
	ASSERT_EQ(0, dw_x(w, "INSERT INTO town_feeders VALUES (21, %d, %d), (22, %d, %d)", FEEDER,
			  LOSS, FEEDER, LOSS));
	ASSERT_EQ(0, dw_x(w, "INSERT INTO customers (town, meter, name, medium, phone) VALUES "
			  "(21, %d, 'M. Seven', 'sms', '+15550007')", THIEF));
	ASSERT_EQ(0, mdet_settings_load(&w->p, &s));
	t0 = ms();
	ASSERT_EQ(0, mdet_run(&w->p, -1, &st)) TH_LOG("%s", w->p.err);
	fprintf(stderr, "# figure: first run, %lld town-hours (%d + %d meters, %d days of "
		"history): %lld ms\n", (long long)st.hours, METERS, HONEST, DAYS - 1,
		(long long)(ms() - t0));

	/* the hours balanced: the lookback up to the settled hour, in both towns */
	from = last - s.lookback_h * 3600;
	upto = last - s.settle_h * 3600;
	EXPECT_EQ(2 * ((upto - from) / 3600 + 1), st.hours);
	for (int k = 0; k < 2; k++) {
		int meters = k ? HONEST : METERS;

		for (int64_t t = from; t <= upto; t += 3600) {
			int h = (int)((t - HOUR0) / 3600);
			int64_t metered = 0, gap, allowance;
			bool want;

			for (int m = 1; m <= meters; m++)
				metered += d->rep[k][m][h];
			gap = d->feeder[k][h] - metered;
			allowance = d->feeder[k][h] * LOSS / 1000;
			want = gap > allowance && gap >= s.balance_min_mwh;
			evaluated++;
			EXPECT_EQ(gap, dw_1(w, "SELECT gap_mwh FROM det_balance WHERE town = %d AND "
					    "hour = to_timestamp(%lld)", 21 + k, (long long)t));
			EXPECT_EQ(allowance, dw_1(w, "SELECT allowance_mwh FROM det_balance WHERE "
						  "town = %d AND hour = to_timestamp(%lld)", 21 + k,
						  (long long)t));
			EXPECT_EQ(want, dw_1(w, "SELECT flagged::int FROM det_balance WHERE town = %d "
					     "AND hour = to_timestamp(%lld)", 21 + k, (long long)t))
				TH_LOG("town %d hour %d: gap %lld allowance %lld", 21 + k, h,
				       (long long)gap, (long long)allowance);
			if (!want) {
				honest++;
				continue;
			}
			flagged++;
			EXPECT_EQ(0, k);
			EXPECT_LE(THEFT0, h);
			zero_hours += h >= ZERO0;
			/* the most likely meter: the one that under-reports */
			EXPECT_EQ(THIEF, dw_1(w, "SELECT (suspects::jsonb->0->>'meter')::int FROM "
					      "det_balance WHERE town = 21 AND hour = "
					      "to_timestamp(%lld)", (long long)t));
			if (h >= ZERO0)
				EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM det_balance, jsonb_array_"
						  "elements(suspects::jsonb) e WHERE town = 21 AND hour = "
						  "to_timestamp(%lld) AND (e->>'meter')::int = %d",
						  (long long)t, ZERO));
		}
	}
	/* the data has both kinds of hours, else this test proves nothing */
	ASSERT_LT(0, flagged);
	ASSERT_LT(0, honest);
	ASSERT_LT(0, zero_hours);
	EXPECT_EQ(evaluated, dw_1(w, "SELECT count(*) FROM det_balance"));

	/* one open balance alert, for town 21 only, naming meter 7 */
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts WHERE rule = 'balance'"));
	alert = dw_1(w, "SELECT id FROM alerts WHERE key = 'balance:21' AND state = 'open'");
	ASSERT_LT(0, alert);
	EXPECT_EQ(THIEF, dw_1(w, "SELECT (evidence::jsonb->'suspects'->0->>'meter')::int FROM "
			      "alerts WHERE id = %lld", (long long)alert));
	EXPECT_EQ(FEEDER, dw_1(w, "SELECT (evidence::jsonb->>'feeder_meter')::int FROM alerts "
			       "WHERE id = %lld", (long long)alert));
	ASSERT_EQ(0, dw_s(w, buf, sizeof(buf), "SELECT summary FROM alerts WHERE id = %lld",
			  (long long)alert));
	EXPECT_NE(NULL, strstr(buf, "most likely meter 7")) TH_LOG("%s", buf);
	/* meter 9: drawing by its history, zero now, in a flagged hour */
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts WHERE rule = 'zero-draw'"));
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts WHERE key = 'zero:21:%d'", ZERO));
	/* the operators not revoked are told of each alert; no customer of a balance */
	EXPECT_EQ(2 * dw_1(w, "SELECT count(*) FROM alerts"),
		  dw_1(w, "SELECT count(*) FROM notices WHERE kind = 'alert'"));
	EXPECT_EQ(0, dw_1(w, "SELECT count(*) FROM notices n JOIN operators o ON o.id = "
			  "n.operator WHERE o.revoked"));
	EXPECT_EQ(0, dw_1(w, "SELECT count(*) FROM notices WHERE customer IS NOT NULL"));

	/* again: nothing new to balance, nothing raised; an hour again by hand: still one */
	t0 = ms();
	ASSERT_EQ(0, mdet_run(&w->p, -1, &st)) TH_LOG("%s", w->p.err);
	fprintf(stderr, "# figure: a run with nothing new: %lld ms\n", (long long)(ms() - t0));
	EXPECT_EQ(0, st.hours);
	EXPECT_EQ(0, st.raised);
	ASSERT_EQ(0, mdet_run(&w->p, last - s.settle_h * 3600, &st)) TH_LOG("%s", w->p.err);
	EXPECT_EQ(2, st.hours);
	EXPECT_EQ(0, st.raised);
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts WHERE rule = 'balance'"));
	free(d);
}

TEST_HARNESS_MAIN
