// SPDX-License-Identifier: GPL-2.0
#include "registers.h"

#include <string.h>

#define MAX_CLOSE_STEPS	100000	/* a clock jump further than this is realigned, not replayed */

static int64_t align_down(int64_t t, uint32_t step)
{
	int64_t r = t % step;

	return r < 0 ? t - r - step : t - r;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void registers_place(struct registers *r, int64_t now_ms)
{
	int64_t now = floor_div(now_ms, 1000);

	r->last_ms = now_ms;
	r->bill_start = tariff_billing_start(now, r->billing_day);
	r->bill_next = tariff_billing_next(r->bill_start, r->billing_day);
	r->ivl_start = align_down(now, r->interval_s);
	r->ivl_base_import = r->import.total_mwh;
	r->ivl_base_export = r->export.total_mwh;
	r->ivl_base_renew = r->renew.total_mwh;
	r->ivl_flags = now_ms != r->ivl_start * 1000 ? PROFILE_GAP : 0;	/* started mid-interval */
}

void registers_init(struct registers *r, uint32_t interval_s, uint32_t billing_day, int64_t now_ms)
{
	memset(r, 0, sizeof(*r));
	r->interval_s = interval_s;
	r->billing_day = billing_day;
	r->max_gap_ms = 5000;
	registers_place(r, now_ms);
}

static uint64_t add_energy(struct energy_reg *e, uint64_t uj)
{
	uint64_t mwh;

	e->rem_uj += uj;
	mwh = e->rem_uj / UJ_PER_MWH;
	e->rem_uj %= UJ_PER_MWH;
	e->total_mwh += mwh;
	return mwh;
}

static void accumulate(struct registers *r, const struct tariff *t, int64_t t0_ms,
		       uint64_t import_uj, uint64_t export_uj, uint64_t renew_uj)
{
	time_t when = (time_t)floor_div(t0_ms, 1000);
	unsigned period;
	uint64_t mwh;

	if (import_uj) {
		struct tariff_part parts[TARIFF_MAX_PERIODS];
		unsigned n;

		mwh = add_energy(&r->import, import_uj);
		n = tariff_split_import(t, when, r->bill_import_mwh, mwh, parts);
		for (unsigned i = 0; i < n; i++) {
			r->import.period_mwh[parts[i].period] += parts[i].mwh;
			r->bill_import_nano += parts[i].cost_nano;
		}
		r->bill_import_mwh += mwh;
	}
	period = tariff_period_at(t, when, r->bill_import_mwh);
	if (export_uj) {
		mwh = add_energy(&r->export, export_uj);
		r->export.period_mwh[period] += mwh;
		r->bill_export_mwh += mwh;
		r->bill_export_nano += tariff_export_credit_nano(t, mwh);
	}
	if (renew_uj) {
		mwh = add_energy(&r->renew, renew_uj);
		r->renew.period_mwh[period] += mwh;
		r->bill_renew_mwh += mwh;
	}
}

void registers_interval_so_far(const struct registers *r, struct profile_entry *e)
{
	e->start = r->ivl_start;
	e->import_mwh = (uint32_t)(r->import.total_mwh - r->ivl_base_import);
	e->export_mwh = (uint32_t)(r->export.total_mwh - r->ivl_base_export);
	e->renew_mwh = (uint32_t)(r->renew.total_mwh - r->ivl_base_renew);
	e->flags = r->ivl_flags;
}

static void close_interval(struct registers *r, registers_interval_cb cb, void *ctx)
{
	struct profile_entry e;
	uint64_t demand_mw;

	registers_interval_so_far(r, &e);
	demand_mw = (uint64_t)e.import_mwh * 3600 / r->interval_s;
	if (demand_mw > r->bill_max_demand_mw) {
		r->bill_max_demand_mw = demand_mw;
		r->bill_max_demand_at = e.start;
	}
	if (cb)
		cb(ctx, &e, demand_mw);
	r->ivl_start += r->interval_s;
	r->ivl_base_import = r->import.total_mwh;
	r->ivl_base_export = r->export.total_mwh;
	r->ivl_base_renew = r->renew.total_mwh;
	r->ivl_flags = 0;
}

static void roll_billing(struct registers *r, const struct tariff *t)
{
	r->last_bill_nano = registers_price_nano(r, t, (r->bill_next - 1) * 1000);
	r->bill_start = r->bill_next;
	r->bill_next = tariff_billing_next(r->bill_start, r->billing_day);
	r->bill_import_mwh = r->bill_export_mwh = r->bill_renew_mwh = 0;
	r->bill_import_nano = r->bill_export_nano = 0;
	r->bill_max_demand_mw = 0;
	r->bill_max_demand_at = 0;
}

/* The part of e falling in the first `part` of `whole` ms, exactly (no overflow). */
static uint64_t share(uint64_t e, int64_t part, int64_t whole)
{
	return (uint64_t)((unsigned __int128)e * (uint64_t)part / (uint64_t)whole);
}

void registers_add_energy(struct registers *r, const struct tariff *t, int64_t now_ms,
			  uint64_t import_uj, uint64_t export_uj, uint64_t renew_uj, uint32_t flags,
			  registers_interval_cb cb, void *ctx)
{
	int64_t start = r->last_ms, t0 = start, whole, closing;
	uint64_t done_i = 0, done_e = 0, done_r = 0;
	uint32_t limit = r->max_close && r->max_close < MAX_CLOSE_STEPS ? r->max_close : MAX_CLOSE_STEPS;
	int steps = 0;

	r->ivl_flags |= flags;
	if (now_ms <= start) {
		/* no time passed (or the clock is behind): count it here, keep the time */
		accumulate(r, t, start, import_uj, export_uj, renew_uj);
		return;
	}
	whole = now_ms - start;
	closing = (floor_div(now_ms, 1000) - r->ivl_start) / r->interval_s;
	if (closing > (int64_t)limit) {
		/*
		 * A long step: emit only the last `limit` intervals. The time
		 * before them is skipped; its share of the energy goes to the
		 * interval open now, closed at once.
		 */
		int64_t skip_s = align_down(floor_div(now_ms, 1000), r->interval_s) -
				 (int64_t)limit * r->interval_s;

		done_i = share(import_uj, skip_s * 1000 - start, whole);
		done_e = share(export_uj, skip_s * 1000 - start, whole);
		done_r = share(renew_uj, skip_s * 1000 - start, whole);
		accumulate(r, t, start, done_i, done_e, done_r);
		close_interval(r, cb, ctx);
		r->ivl_start = skip_s;
		while (skip_s >= r->bill_next)
			roll_billing(r, t);
		r->ivl_flags = flags | PROFILE_GAP;
		t0 = skip_s * 1000;
	}
	while (t0 < now_ms) {
		int64_t ivl_end = (r->ivl_start + r->interval_s) * 1000;
		int64_t bill_end = r->bill_next * 1000;
		int64_t end = now_ms;

		if (ivl_end < end)
			end = ivl_end;
		if (bill_end < end)
			end = bill_end;
		if (end > t0) {
			/* this segment's share of the step's energy; the last one takes the rest */
			uint64_t i = end == now_ms ? import_uj : share(import_uj, end - start, whole);
			uint64_t e = end == now_ms ? export_uj : share(export_uj, end - start, whole);
			uint64_t n = end == now_ms ? renew_uj : share(renew_uj, end - start, whole);

			accumulate(r, t, t0, i - done_i, e - done_e, n - done_r);
			done_i = i;
			done_e = e;
			done_r = n;
		}
		if (end == ivl_end) {
			close_interval(r, cb, ctx);
			if (end < now_ms)
				r->ivl_flags |= flags;
		}
		if (end >= bill_end)
			roll_billing(r, t);
		t0 = end > t0 ? end : t0;
		if (++steps > 4 * MAX_CLOSE_STEPS)
			break;
	}
	r->last_ms = now_ms;
}

void registers_clock_step(struct registers *r, int64_t now_ms, registers_interval_cb cb, void *ctx)
{
	if (now_ms >= r->last_ms)
		return;
	r->ivl_flags |= PROFILE_CLOCK_STEP;
	close_interval(r, cb, ctx);
	r->ivl_start = align_down(floor_div(now_ms, 1000), r->interval_s);
	r->ivl_flags = PROFILE_CLOCK_STEP;
	r->last_ms = now_ms;
}

void registers_integrate(struct registers *r, const struct tariff *t, int64_t now_ms,
			 int64_t grid_mw, int64_t renew_mw, registers_interval_cb cb, void *ctx)
{
	int64_t dt = now_ms - r->last_ms;

	if (dt <= 0) {
		if (dt < 0)
			r->last_ms = now_ms;	/* clock stepped back: restart from here */
		return;
	}
	if (dt > r->max_gap_ms) {
		registers_add_energy(r, t, now_ms, 0, 0, 0, PROFILE_GAP, cb, ctx);
		return;
	}
	registers_add_energy(r, t, now_ms, grid_mw > 0 ? (uint64_t)grid_mw * (uint64_t)dt : 0,
			     grid_mw < 0 ? (uint64_t)-grid_mw * (uint64_t)dt : 0,
			     renew_mw > 0 ? (uint64_t)renew_mw * (uint64_t)dt : 0, 0, cb, ctx);
}

int64_t registers_price_nano(const struct registers *r, const struct tariff *t, int64_t now_ms)
{
	unsigned days = tariff_local_days((time_t)r->bill_start, (time_t)floor_div(now_ms, 1000));

	return t->standing_milli * 1000000 * (int64_t)days + r->bill_import_nano - r->bill_export_nano;
}

void registers_set_interval(struct registers *r, uint32_t interval_s)
{
	r->interval_s = interval_s;
	r->ivl_start = align_down(floor_div(r->last_ms, 1000), interval_s);
	r->ivl_base_import = r->import.total_mwh;
	r->ivl_base_export = r->export.total_mwh;
	r->ivl_base_renew = r->renew.total_mwh;
	r->ivl_flags = PROFILE_GAP;
	r->bill_max_demand_mw = 0;	/* demands of another interval length do not compare */
	r->bill_max_demand_at = 0;
}

void registers_reset_periods(struct registers *r)
{
	memset(r->import.period_mwh, 0, sizeof(r->import.period_mwh));
	memset(r->export.period_mwh, 0, sizeof(r->export.period_mwh));
	memset(r->renew.period_mwh, 0, sizeof(r->renew.period_mwh));
}
