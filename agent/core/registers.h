/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Meter registers: energy integration, per-tariff-period registers, billing
 * period totals and price so far, maximum demand and load-profile intervals.
 * Pure logic: time is passed in (UTC milliseconds), nothing is read or written.
 *
 * Energy is integrated exactly: mW x ms = uJ, carried in a remainder below
 * one mWh (3.6e6 uJ), so nothing is lost to rounding however short the step.
 */
#ifndef GM_REGISTERS_H
#define GM_REGISTERS_H

#include <stdint.h>

#include "profile.h"
#include "tariff.h"

#define UJ_PER_MWH	3600000ull

struct energy_reg {
	uint64_t total_mwh;
	uint64_t period_mwh[TARIFF_MAX_PERIODS];
	uint64_t rem_uj;
};

struct registers {
	uint32_t interval_s;		/* demand and profile interval */
	uint32_t billing_day;
	uint32_t max_gap_ms;		/* longer steps are gaps: no energy integrated */
	uint32_t max_close;		/* a step closes at most this many intervals (0: 100000):
					 * older skipped ones are not emitted (the profile's size) */

	struct energy_reg import;	/* supplied by the service provider */
	struct energy_reg renew;	/* taken from the house's renewable sources */
	struct energy_reg export;	/* exported to the service provider */

	int64_t last_ms;		/* energy integrated up to here; 0 = never */

	/* current billing period */
	int64_t bill_start, bill_next;	/* UTC seconds, local midnights */
	uint64_t bill_import_mwh, bill_export_mwh, bill_renew_mwh;
	int64_t bill_import_nano;	/* import charges, nano-minor units */
	int64_t bill_export_nano;	/* feed-in credit, nano-minor units */
	uint64_t bill_max_demand_mw;
	int64_t bill_max_demand_at;	/* start of the interval of the maximum */
	int64_t last_bill_nano;		/* total of the previous billing period */

	/* current demand interval */
	int64_t ivl_start;		/* UTC seconds */
	uint64_t ivl_base_import, ivl_base_export, ivl_base_renew;
	uint32_t ivl_flags;
	uint32_t pad1;
};

typedef void (*registers_interval_cb)(void *ctx, const struct profile_entry *e, uint64_t demand_mw);

void registers_init(struct registers *r, uint32_t interval_s, uint32_t billing_day, int64_t now_ms);
/*
 * Integrate constant powers from r->last_ms to now_ms. grid_mw > 0 is import,
 * < 0 export; renew_mw is the renewable source's output. Interval and billing
 * boundaries inside the step split it exactly; cb is called for every closed
 * interval (in order). A backwards clock step restarts integration there (no
 * energy). (meterd itself integrates on the monotonic clock and places the
 * energy with registers_add_energy.)
 */
void registers_integrate(struct registers *r, const struct tariff *t, int64_t now_ms,
			 int64_t grid_mw, int64_t renew_mw, registers_interval_cb cb, void *ctx);
/*
 * Add energies measured over [r->last_ms, now_ms] (e.g. deltas of the
 * driver's energy counters), spread over the step in proportion to time so
 * that boundaries split it exactly; the sums are exact. flags (PROFILE_*,
 * e.g. PROFILE_GAP: the step was not fully observed) mark every interval the
 * step touches. A step closing more than max_close intervals emits only the
 * last max_close (the energy of the skipped time goes to the interval open
 * before it). now_ms <= r->last_ms: the energy is added at r->last_ms and
 * the registers' time does not go back (see registers_clock_step).
 */
void registers_add_energy(struct registers *r, const struct tariff *t, int64_t now_ms,
			  uint64_t import_uj, uint64_t export_uj, uint64_t renew_uj, uint32_t flags,
			  registers_interval_cb cb, void *ctx);
/*
 * The clock was stepped back to now_ms (< r->last_ms): the open interval is
 * closed at the step (flagged PROFILE_CLOCK_STEP) and integration continues
 * in the interval of now_ms, also flagged. The billing period is kept (it
 * never goes back). Nothing happens if now_ms >= r->last_ms.
 */
void registers_clock_step(struct registers *r, int64_t now_ms, registers_interval_cb cb, void *ctx);
/*
 * Place registers that never ran on trusted time at now_ms: billing period,
 * open interval (flagged as a gap) and time; the totals are kept.
 */
void registers_place(struct registers *r, int64_t now_ms);
/* Price so far in the billing period (standing charge for every local day started), nano-minor. */
int64_t registers_price_nano(const struct registers *r, const struct tariff *t, int64_t now_ms);
/* Energy of the current, still open interval. */
void registers_interval_so_far(const struct registers *r, struct profile_entry *e);
/* Change the demand/profile interval: the open interval restarts, aligned to the new length. */
void registers_set_interval(struct registers *r, uint32_t interval_s);
/* Clear per-period registers (after a tariff change with different periods). */
void registers_reset_periods(struct registers *r);

#endif
