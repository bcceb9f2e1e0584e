/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The hours a town sends to the main server (Documentation/townd.md,
 * "Hours"): pure rules, no SQLite, no clock, no time zone of its own.
 *
 *  - A reading belongs to the hour of its booking time (booked - booked %
 *    3600, UTC), so hours agree with month_totals, and to the tariff period
 *    in force at its booking time (= its start when the meter's clock was
 *    trusted): the slot of the meter's tariff whose effective time is the
 *    latest <= that time, slot = the last whose start minute <= the local
 *    minute of the day in the town's time zone (none: the last slot, which
 *    runs on from the previous day). No tariff: period 0.
 *  - One row per (meter, hour, period) sums the readings: energies, count,
 *    their GMP_RF_* flags OR-ed, and the seconds of the hour their
 *    intervals cover. The meter-hour is GMP_HF_INCOMPLETE when its rows
 *    cover less than the hour.
 *  - Revisions: a row is new at rev 0 with nothing sent (sent_rev -1); a
 *    reading added to a meter-hour whose rows were sent moves every row of
 *    that meter-hour to rev + 1 (their flags may change with the coverage).
 *    A row is pending while sent_rev < rev.
 *  - An hour H closes at H + 3600 + grace; only closed hours are sent.
 *  - Prices: energy (mWh) times price (milli-minor per kWh) is exact in
 *    nano-minor units; a sum of them is rounded once to milli-minor, half
 *    away from zero.
 */
#ifndef TOWND_HOURS_H
#define TOWND_HOURS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gmproto.h"

#define TH_HOUR		3600

/* A meter's tariff as the town sent it (a GMP_TARIFF command). */
struct th_tariff {
	int64_t effective;		/* UTC s */
	int64_t tseq;			/* ties between equal effective times: the later */
	int n;				/* slots, 1..GMP_TARIFF_MAX */
	int64_t start_min[GMP_TARIFF_MAX];
	int64_t import_price[GMP_TARIFF_MAX];	/* milli-minor per kWh */
	int64_t export_price[GMP_TARIFF_MAX];
};

/* Seconds east of UTC at UTC time t in the town's time zone. */
typedef int32_t (*th_offset_fn)(void *ctx, int64_t t);
/* The process's time zone (TZ, set once from [town] timezone), by localtime_r. */
int32_t th_offset_localtime(void *ctx, int64_t t);

/* A tariff from a GMP_TARIFF message. 0, or -1 if it is not one. */
int th_tariff_from_msg(struct th_tariff *t, const struct gmp_msg *m);
/* Sort by (effective, tseq), the order th_tariff_at() needs. */
void th_tariffs_sort(struct th_tariff *t, size_t n);
/* The tariff in force at t (latest effective <= t), or NULL. */
const struct th_tariff *th_tariff_at(const struct th_tariff *t, size_t n, int64_t when);
/* Local minute of the day (0..1439) of UTC time t. */
int th_local_minute(int64_t t, th_offset_fn off, void *ctx);
/* The slot of tariff t at UTC time `when`. */
int th_slot(const struct th_tariff *t, int64_t when, th_offset_fn off, void *ctx);
/* The period of a reading booked at `booked` (0 without a tariff). */
int th_period(const struct th_tariff *t, size_t n, int64_t booked, th_offset_fn off,
	      void *ctx);

static inline int64_t th_hour_of(int64_t t)
{
	return t - ((t % TH_HOUR) + TH_HOUR) % TH_HOUR;
}

/* Seconds of [hour, hour + 3600) covered by [start, start + interval). */
int64_t th_covered(int64_t start, int64_t interval, int64_t hour);
/* Hour H is closed at now. */
bool th_closed(int64_t hour, int64_t now, uint32_t grace_s);

/* One (meter, hour, period) row and its revision state. */
struct th_row {
	int64_t import_mwh, export_mwh, renew_mwh;
	int64_t readings;
	int64_t flags;			/* GMP_RF_* of its readings, OR-ed */
	int64_t covered;		/* seconds of the hour its readings cover */
	int64_t rev;			/* 0 first */
	int64_t sent_rev;		/* -1: never sent */
};

void th_row_init(struct th_row *r);
/* A reading into its row (revision moves are th_row_touch's). */
void th_row_add(struct th_row *r, const struct gmp_msg *reading, int64_t hour);
/* Its meter-hour got a reading: a new revision if the current one was sent. */
void th_row_touch(struct th_row *r);
static inline bool th_row_pending(const struct th_row *r)
{
	return r->sent_rev < r->rev;
}
/* GMP_HF_* and GMP_RF_* of a row as sent: covered is the meter-hour's. */
int64_t th_hour_flags(int64_t rf_flags, int64_t meter_hour_covered, bool admin);

/* The town's total of one hour (GMP_TOWN_HOUR fields but seq and rev). */
struct th_town {
	int64_t meters;
	int64_t import_mwh, export_mwh, renew_mwh;
	int64_t flags;			/* GMP_HF_* */
};

/* Price of a row in nano-minor (import charged, export credited). */
int64_t th_price_nano(const struct th_tariff *t, int slot, int64_t import_mwh,
		      int64_t export_mwh);
/* nano-minor -> milli-minor, half away from zero. */
int64_t th_round_milli(int64_t nano);

#endif
