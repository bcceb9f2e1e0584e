/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The load profile as the dashboard draws it: today's intervals and daily
 * sums over local days (a local day is 23 or 25 hours when daylight saving
 * starts or ends: days are cut at local midnight in the process time zone).
 * Pure functions: no bus, time passed in.
 */
#ifndef GM_MW_HISTORY_H
#define GM_MW_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "meter_client.h"

struct mw_day {
	int64_t start;		/* local midnight, UTC s */
	uint64_t import_mwh, export_mwh, renew_mwh;
	uint32_t flags;		/* OR of the intervals' flags */
	unsigned intervals;	/* intervals that fell into the day */
};

/* Local midnight starting the day that contains t. */
int64_t mw_local_midnight(int64_t t);
/* Local midnight `days` days after (negative: before) the local midnight `midnight`. */
int64_t mw_local_day_add(int64_t midnight, int days);
/*
 * Sum intervals (sorted by start) into the ndays local days ending with the
 * day containing now: out[0] is the oldest, out[ndays-1] today. Intervals
 * outside those days are ignored. Returns the number of intervals used.
 */
size_t mw_fold_days(const struct mw_interval *iv, size_t n, int64_t now, unsigned ndays, struct mw_day *out);
/* Index range [*first, *last) of the intervals starting in [from, to). */
void mw_intervals_span(const struct mw_interval *iv, size_t n, int64_t from, int64_t to, size_t *first,
		       size_t *last);

#endif
