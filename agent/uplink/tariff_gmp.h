/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A tariff update from the town server (GMP_TARIFF: up to 12 windows of
 * the day, each with an import and an export price in milli-minor per
 * kWh) as the meter's textual tariff (struct tariff_spec): time of use
 * with the same schedule every day, one period per distinct import price
 * (at most TARIFF_MAX_PERIODS), currency and standing charge kept from the
 * tariff in force. The meter has one feed-in price: the export prices must
 * agree.
 */
#ifndef GM_TARIFF_GMP_H
#define GM_TARIFF_GMP_H

#include <stddef.h>

#include "gmproto.h"
#include "tariff.h"

/* 0, or -1 with why in err. out starts as a copy of cur. */
int tariff_from_gmp(const struct gmp_msg *m, const struct tariff_spec *cur,
		    struct tariff_spec *out, char *err, size_t errlen);

#endif
