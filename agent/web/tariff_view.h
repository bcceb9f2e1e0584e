/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The tariff as the household reads it: the period now and its rate, when
 * the next change comes, the next period and its rate, and how much cheaper
 * (or dearer) it is. Computed with meterd's own tariff engine
 * (agent/core/tariff.c) on the keys of meterd's Tariff property, so the
 * page and the bill agree. Local time: the process time zone.
 */
#ifndef GM_MW_TARIFF_VIEW_H
#define GM_MW_TARIFF_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "tariff.h"

#define MW_TARIFF_HORIZON	(4 * 86400)	/* look this far ahead (a long weekend) for the next change */

struct mw_tariff_view {
	bool valid;			/* the keys compiled */
	char err[160];			/* why not */
	enum tariff_type type;
	char currency[8];
	char now_name[TARIFF_NAME_LEN];
	int64_t now_price;		/* milli-minor per kWh */
	bool has_next;			/* a time-of-use change within the horizon */
	int64_t next_at;		/* UTC s */
	char next_name[TARIFF_NAME_LEN];
	int64_t next_price;
	/* (now - next) / now in tenths of a percent, rounded half away from zero:
	 * > 0 the next period is cheaper, < 0 dearer; 0 when now_price is 0 */
	int32_t cheaper_permille;
	int64_t standing_milli;		/* per day */
	int64_t feed_in_milli;		/* per exported kWh */
};

/*
 * bill_import_mwh: import so far in the billing period (tiered tariffs:
 * the tier in force). 0, or -EINVAL with v->err set.
 */
int mw_tariff_view(const struct tariff_spec *spec, int64_t now, uint64_t bill_import_mwh,
		   struct mw_tariff_view *v);

#endif
