// SPDX-License-Identifier: GPL-2.0
#include "alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"

void alloc_init(struct alloc *a, const struct alloc_cfg *cfg)
{
	memset(a, 0, sizeof(*a));
	a->cfg = *cfg;
	a->headroom_since_ms = -1;
	a->last_shed_ms = INT64_MIN / 2;
}

int alloc_add_load(struct alloc *a, const char *name, uint32_t load_w)
{
	struct alloc_load *l;

	if (a->nloads == ALLOC_MAX_LOADS)
		return -ENOSPC;
	l = &a->load[a->nloads];
	if (strlcpy_chk(l->name, name, sizeof(l->name)))
		return -E2BIG;
	l->load_w = load_w;
	l->shed = false;
	l->measured_w = -1;
	l->reachable = true;
	a->nloads++;
	return 0;
}

int alloc_set_report(struct alloc *a, size_t i, bool reachable, int32_t measured_w)
{
	if (i >= a->nloads)
		return -EINVAL;
	a->load[i].reachable = reachable;
	a->load[i].measured_w = measured_w < 0 ? -1 : measured_w;
	return 0;
}

int64_t alloc_shed_w(const struct alloc *a)
{
	int64_t w = 0;

	for (size_t i = 0; i < a->nloads; i++)
		if (a->load[i].shed)
			w += a->load[i].load_w;
	return w;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t pos(int64_t v)
{
	return v > 0 ? v : 0;
}

int alloc_step(struct alloc *a, const struct alloc_input *in, struct alloc_decision *d)
{
	int64_t grant = pos(in->grant_w), renew = pos(in->renew_avail_w);
	int64_t shed_w = alloc_shed_w(a);
	int64_t headroom;

	memset(d, 0, sizeof(*d));
	d->demand_w = pos(in->measured_w) + pos(in->declared_w);
	d->from_grid_w = min64(d->demand_w, grant);
	d->from_renew_w = min64(d->demand_w - d->from_grid_w, renew);
	d->deficit_w = d->demand_w - d->from_grid_w - d->from_renew_w;
	d->request_w = pos(d->demand_w + shed_w - grant - renew);
	d->surplus_w = pos(grant - min64(d->demand_w + shed_w, grant));

	if (d->deficit_w > 0) {
		int64_t covered = 0;

		a->headroom_since_ms = -1;
		if (in->now_ms - a->last_shed_ms < a->cfg.settle_ms) {
			snprintf(d->reason, sizeof(d->reason),
				 "deficit %lld W, waiting for the last shed to settle",
				 (long long)d->deficit_w);
			return 0;
		}
		for (size_t i = 0; i < a->nloads && covered < d->deficit_w; i++) {
			const struct alloc_load *l = &a->load[i];

			if (l->shed || !l->reachable)
				continue;
			a->load[i].shed = true;
			d->changed_mask |= 1u << i;
			covered += l->measured_w >= 0 ? l->measured_w : (int64_t)l->load_w;
		}
		if (d->changed_mask) {
			d->action = ALLOC_SHED;
			a->last_shed_ms = in->now_ms;
			snprintf(d->reason, sizeof(d->reason),
				 "deficit %lld W (demand %lld, grid %lld, renewable %lld): shed %lld W",
				 (long long)d->deficit_w, (long long)d->demand_w, (long long)grant,
				 (long long)renew, (long long)covered);
			return 1;
		}
		snprintf(d->reason, sizeof(d->reason),
			 "deficit %lld W and nothing left to shed", (long long)d->deficit_w);
		return 0;
	}

	/* No deficit: restore the most recently shed load (highest index) with hysteresis. */
	headroom = grant + renew - d->demand_w;
	for (size_t i = a->nloads; i-- > 0;) {
		struct alloc_load *l = &a->load[i];

		if (!l->shed || !l->reachable)
			continue;
		if (headroom < (int64_t)l->load_w + a->cfg.restore_margin_w) {
			a->headroom_since_ms = -1;
			snprintf(d->reason, sizeof(d->reason),
				 "headroom %lld W too small to restore %s (%u W + %u W margin)",
				 (long long)headroom, l->name, l->load_w, a->cfg.restore_margin_w);
			return 0;
		}
		if (a->headroom_since_ms < 0)
			a->headroom_since_ms = in->now_ms;
		if (in->now_ms - a->headroom_since_ms < a->cfg.restore_delay_ms) {
			snprintf(d->reason, sizeof(d->reason),
				 "headroom %lld W for %s, restoring after %u ms", (long long)headroom,
				 l->name, a->cfg.restore_delay_ms);
			return 0;
		}
		l->shed = false;
		d->changed_mask |= 1u << i;
		d->action = ALLOC_RESTORE;
		a->headroom_since_ms = -1;
		snprintf(d->reason, sizeof(d->reason), "headroom %lld W: restored %s (%u W)",
			 (long long)headroom, l->name, l->load_w);
		return 1;
	}
	a->headroom_since_ms = -1;
	snprintf(d->reason, sizeof(d->reason), "demand %lld W covered (grid %lld, renewable %lld)",
		 (long long)d->demand_w, (long long)d->from_grid_w, (long long)d->from_renew_w);
	return 0;
}
