// SPDX-License-Identifier: GPL-2.0
/* Allocation inside a town: pure logic (townd_alloc.h, Documentation/townd.md). */
#include "townd_alloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WANT_MAX	((int64_t)1 << 40)	/* gmproto's power range */

static const char *const reason_names[TA_R_COUNT] = {
	[TA_R_FULL] = "full",
	[TA_R_FAIR] = "fair-share",
	[TA_R_PRIORITY] = "priority",
	[TA_R_REDUCED] = "reduced",
	[TA_R_ASKED_LESS] = "asked-less",
	[TA_R_OFFER_TAKEN] = "offer-taken",
	[TA_R_OFFER_RETURNED] = "offer-returned",
	[TA_R_RENEWED] = "renewed",
	[TA_R_KEPT] = "kept",
	[TA_R_RELEASED] = "released",
	[TA_R_EXPIRED] = "expired",
	[TA_R_SUPPLY] = "supply",
};

const char *townd_alloc_reason_name(enum ta_reason r)
{
	return (unsigned int)r < TA_R_COUNT ? reason_names[r] : "?";
}

enum ta_rank townd_alloc_rank(int64_t flags)
{
	switch ((flags & GMP_AF_PRIO_MASK) >> GMP_AF_PRIO_SHIFT) {
	case GMP_AF_PRIO_CRITICAL:
		return TA_CRITICAL;
	case GMP_AF_PRIO_ESSENTIAL:
		return TA_ESSENTIAL;
	case GMP_AF_PRIO_DEFERRABLE:
		return TA_DEFERRABLE;
	default:
		return TA_NORMAL;
	}
}

const char *townd_alloc_rank_name(unsigned int rank)
{
	static const char *const names[TA_PRIOS] = { "deferrable", "normal", "essential",
						     "critical" };

	return rank < TA_PRIOS ? names[rank] : "?";
}

void townd_alloc_init(struct townd_alloc *a, const struct ta_cfg *cfg)
{
	memset(a, 0, sizeof(*a));
	a->cfg = *cfg;
	if (a->cfg.capacity_w < 0)
		a->cfg.capacity_w = 0;
	if (a->cfg.hysteresis_w < 0)
		a->cfg.hysteresis_w = 0;
	if (a->cfg.max_duration_s <= 0)
		a->cfg.max_duration_s = 86400;
	if (a->cfg.default_duration_s <= 0 || a->cfg.default_duration_s > a->cfg.max_duration_s)
		a->cfg.default_duration_s = a->cfg.max_duration_s < 900 ? a->cfg.max_duration_s : 900;
	a->fig.capacity_w = a->cfg.capacity_w;
	/* nothing asked yet: the whole capacity could be lent; the first
	 * decision (due at once) sets the figures from whatever is restored */
	a->fig.surplus_w = a->cfg.capacity_w;
	a->dirty = true;
}

void townd_alloc_free(struct townd_alloc *a)
{
	free(a->e);
	free(a->dec);
	a->e = NULL;
	a->dec = NULL;
	a->n = a->cap = a->ndec = a->deccap = 0;
}

static int64_t max64(int64_t x, int64_t y)
{
	return x > y ? x : y;
}

static int64_t min64(int64_t x, int64_t y)
{
	return x < y ? x : y;
}

static void pool_note(struct townd_alloc *a, const char *what, int64_t from, int64_t to)
{
	size_t l = strlen(a->supply_note);

	if (from == to)
		return;
	snprintf(a->supply_note + l, sizeof(a->supply_note) - l, "%s%s %" PRId64 " -> %" PRId64
		 " W", l ? ", " : "", what, from, to);
	a->dirty = true;
}

void townd_alloc_set_capacity(struct townd_alloc *a, int64_t w)
{
	w = max64(w, 0);
	pool_note(a, "capacity", a->cfg.capacity_w, w);
	a->cfg.capacity_w = w;
}

void townd_alloc_set_borrowed(struct townd_alloc *a, int64_t w)
{
	w = max64(w, 0);
	pool_note(a, "borrowed", a->borrowed_w, w);
	a->borrowed_w = w;
}

void townd_alloc_set_lent(struct townd_alloc *a, int64_t w)
{
	w = max64(w, 0);
	pool_note(a, "lent", a->lent_w, w);
	a->lent_w = w;
}

void townd_alloc_set_stopped(struct townd_alloc *a, bool stopped)
{
	size_t l = strlen(a->supply_note);

	if (a->stopped != stopped)
		snprintf(a->supply_note + l, sizeof(a->supply_note) - l, "%s%s", l ? ", " : "",
			 stopped ? "town stopped (grants kept, nothing more granted)" :
			 "town started");
	a->stopped = stopped;
	a->dirty = true;
}

int64_t townd_alloc_shortfall(const struct townd_alloc *a)
{
	return a->fig.shortfall_w;
}

int64_t townd_alloc_surplus(const struct townd_alloc *a)
{
	return a->fig.surplus_w;
}

int64_t townd_alloc_absolute(const struct townd_alloc *a, int64_t rel_w)
{
	return max64(a->cfg.base_w + rel_w, 0);
}

/* Index of meter, or where it would go (*found false). */
static size_t locate(const struct townd_alloc *a, uint16_t meter, bool *found)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a->e[mid].meter < meter)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < a->n && a->e[lo].meter == meter;
	return lo;
}

const struct ta_entry *townd_alloc_find(const struct townd_alloc *a, uint16_t meter)
{
	bool found;
	size_t i = locate(a, meter, &found);

	return found ? &a->e[i] : NULL;
}

static struct ta_entry *entry(struct townd_alloc *a, uint16_t meter)
{
	bool found;
	size_t i = locate(a, meter, &found);

	if (found)
		return &a->e[i];
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct ta_entry *e = realloc(a->e, cap * sizeof(*e));

		if (!e)
			return NULL;
		a->e = e;
		a->cap = cap;
	}
	memmove(&a->e[i + 1], &a->e[i], (a->n - i) * sizeof(*a->e));
	a->n++;
	memset(&a->e[i], 0, sizeof(a->e[i]));
	a->e[i].meter = meter;
	return &a->e[i];
}

/* What the meter holds from the town now (relative to base). */
static int64_t held(const struct ta_entry *e, int64_t now)
{
	return e->grant_until > now ? e->grant_w : 0;
}

int townd_alloc_request(struct townd_alloc *a, uint16_t meter, int64_t req_id, int64_t power_w,
			int64_t duration_s, int64_t flags, int64_t now)
{
	struct ta_entry *e = entry(a, meter);
	int64_t want;

	if (!e)
		return -ENOMEM;
	if (duration_s <= 0)
		duration_s = a->cfg.default_duration_s;
	duration_s = min64(duration_s, a->cfg.max_duration_s);
	want = held(e, now) + max64(min64(power_w, WANT_MAX), -WANT_MAX);
	want = max64(min64(want, WANT_MAX), -a->cfg.base_w);
	if (a->stopped && want > max64(held(e, now), 0)) {
		/* stopped: no more than it holds, and a grant in force is not extended */
		want = max64(held(e, now), 0);
		if (want > 0)
			duration_s = min64(duration_s, e->grant_until - now);
	}
	/* its place in the queue: when it started asking (or offering) */
	if (!e->since || (want > 0) != (e->want_w > 0) || (want < 0) != (e->want_w < 0))
		e->since = now;
	e->want_w = want;
	e->req_id = req_id;
	e->rank = (uint8_t)townd_alloc_rank(flags);
	e->expires = now + duration_s;
	e->touched = true;
	e->released = false;
	a->dirty = true;
	return 0;
}

int townd_alloc_release(struct townd_alloc *a, uint16_t meter, int64_t req_id, int64_t now)
{
	bool found;
	size_t i = locate(a, meter, &found);
	struct ta_entry *e = &a->e[i];

	if (!found || e->req_id != req_id)
		return 0;
	/* "what I hold covers me": the want becomes what it holds */
	e->want_w = held(e, now);
	e->touched = true;
	e->released = true;
	a->dirty = true;
	return 0;
}

int townd_alloc_restore(struct townd_alloc *a, const struct ta_entry *in)
{
	struct ta_entry *e;

	if (in->rank >= TA_PRIOS)
		return -EINVAL;
	e = entry(a, in->meter);
	if (!e)
		return -ENOMEM;
	*e = *in;
	e->touched = e->released = false;
	a->dirty = true;
	return 0;
}

int64_t townd_alloc_next_expiry(const struct townd_alloc *a)
{
	int64_t t = INT64_MAX;

	for (size_t i = 0; i < a->n; i++)
		t = min64(t, a->e[i].expires);
	return t;
}

bool townd_alloc_due(const struct townd_alloc *a, int64_t now)
{
	return a->dirty || townd_alloc_next_expiry(a) <= now;
}

/* ---- deciding ----------------------------------------------------------------------- */

static struct ta_decision *add_dec(struct townd_alloc *a, const struct ta_entry *e,
				   enum ta_reason r)
{
	struct ta_decision *d = &a->dec[a->ndec++];

	memset(d, 0, sizeof(*d));
	d->reason = r;
	if (e) {
		d->meter = e->meter;
		d->req_id = e->req_id;
		d->want_w = e->want_w;
		d->old_w = e->grant_w;
		d->until = e->expires;
	}
	return d;
}

/* Offers: oldest first (then meter). */
static int cmp_offer(const void *x, const void *y)
{
	const struct ta_entry *a = *(const struct ta_entry *const *)x;
	const struct ta_entry *b = *(const struct ta_entry *const *)y;

	if (a->since != b->since)
		return a->since < b->since ? -1 : 1;
	return (a->meter > b->meter) - (a->meter < b->meter);
}

/* Requests: higher rank first, then smaller want (water-filling), then earliest. */
static int cmp_fill(const void *x, const void *y)
{
	const struct ta_entry *a = *(const struct ta_entry *const *)x;
	const struct ta_entry *b = *(const struct ta_entry *const *)y;

	if (a->rank != b->rank)
		return a->rank > b->rank ? -1 : 1;
	if (a->want_w != b->want_w)
		return a->want_w < b->want_w ? -1 : 1;
	return cmp_offer(x, y);
}

/* Cuts: the largest excess over the share first. */
static int cmp_excess_new(const void *x, const void *y)
{
	const struct ta_entry *a = *(const struct ta_entry *const *)x;
	const struct ta_entry *b = *(const struct ta_entry *const *)y;
	int64_t ea = a->new_w - a->target_w, eb = b->new_w - b->target_w;

	if (ea != eb)
		return ea > eb ? -1 : 1;
	return -cmp_offer(x, y);	/* the latest comer gives first */
}

/*
 * Max-min fair shares of pool among the asking entries r[0..n) (sorted by
 * cmp_fill): classes in rank order, water-filling inside the class that
 * the pool does not cover, nothing below it.
 */
static void shares(struct ta_entry **r, size_t n, int64_t pool)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;
		int64_t sum = 0;

		while (j < n && r[j]->rank == r[i]->rank)
			sum += r[j++]->want_w;
		if (sum <= pool) {
			for (size_t k = i; k < j; k++)
				r[k]->target_w = r[k]->want_w;
			pool -= sum;
		} else {
			size_t k = i;

			for (; k < j; k++) {
				int64_t left = (int64_t)(j - k), share = pool / left;

				if (r[k]->want_w > share)
					break;
				r[k]->target_w = r[k]->want_w;
				pool -= r[k]->want_w;
			}
			if (k < j) {
				int64_t left = (int64_t)(j - k), level = pool / left, rem = pool % left;

				/* the watts the division leaves go to the earliest requests */
				qsort(&r[k], (size_t)left, sizeof(*r), cmp_offer);
				for (size_t m = k; m < j; m++)
					r[m]->target_w = level + (rem-- > 0);
			}
			pool = 0;
		}
		i = j;
	}
}

static void text_for(const struct townd_alloc *a, struct ta_decision *d, const struct ta_entry *e,
		     int64_t hyst_share)
{
	const struct ta_figures *f = &a->fig;
	char *t = d->text;
	size_t n = sizeof(d->text);

	switch (d->reason) {
	case TA_R_FULL:
		snprintf(t, n, "%s request of %" PRId64 " W granted in full (pool %" PRId64
			 " W, %" PRId64 " W asked)", townd_alloc_rank_name(e->rank), e->want_w,
			 f->pool_w, f->asked_w);
		break;
	case TA_R_FAIR:
		snprintf(t, n, "max-min share %" PRId64 " of %" PRId64 " W asked (%s): pool %"
			 PRId64 " W for %" PRId64 " W asked", d->new_w, e->want_w,
			 townd_alloc_rank_name(e->rank), f->pool_w, f->asked_w);
		break;
	case TA_R_PRIORITY:
		snprintf(t, n, "%" PRId64 " of %" PRId64 " W asked (%s): higher priority requests "
			 "take the pool of %" PRId64 " W", d->new_w, e->want_w,
			 townd_alloc_rank_name(e->rank), f->pool_w);
		break;
	case TA_R_REDUCED:
		snprintf(t, n, "reduced %" PRId64 " -> %" PRId64 " W (asks %" PRId64 "): pool %"
			 PRId64 " W for %" PRId64 " W asked", d->old_w, d->new_w, e->want_w,
			 f->pool_w, f->asked_w);
		break;
	case TA_R_ASKED_LESS:
		snprintf(t, n, "reduced %" PRId64 " -> %" PRId64 " W: it asks for less",
			 d->old_w, d->new_w);
		break;
	case TA_R_OFFER_TAKEN:
		snprintf(t, n, "offer of %" PRId64 " W taken into the pool (the grid part covers %"
			 PRId64 " of %" PRId64 " W asked)", -e->want_w,
			 max64(f->pool_w - f->taken_w, 0), f->asked_w);
		break;
	case TA_R_OFFER_RETURNED:
		snprintf(t, n, "offer %s: back to its own allocation",
			 e->want_w < 0 ? "no longer needed" : "withdrawn");
		break;
	case TA_R_RENEWED:
		snprintf(t, n, "%" PRId64 " W kept, until the request's new end", d->new_w);
		break;
	case TA_R_KEPT:
		if (e->want_w < 0)
			snprintf(t, n, "offer of %" PRId64 " W not needed: the grid part covers "
				 "what is asked", -e->want_w);
		else if (e->released)
			snprintf(t, n, "released: keeps the %" PRId64 " W it holds", d->new_w);
		else
			snprintf(t, n, "kept at %" PRId64 " of %" PRId64 " W asked (share %" PRId64
				 " W, hysteresis %" PRId64 " W; pool %" PRId64 " W)", d->new_w,
				 e->want_w, hyst_share, a->cfg.hysteresis_w, f->pool_w);
		break;
	default:
		break;
	}
}

int townd_alloc_decide(struct townd_alloc *a, int64_t now)
{
	struct ta_entry **r = NULL, **o = NULL;
	size_t nr = 0, no = 0, w;
	struct ta_figures *f = &a->fig;
	int64_t grid, need_o, taken = 0;
	unsigned int cut_rank, top_rank;

	a->ndec = 0;
	if (a->deccap < a->n + 1) {
		struct ta_decision *d = realloc(a->dec, (a->n + 1) * sizeof(*d));

		if (!d)
			return -ENOMEM;
		a->dec = d;
		a->deccap = a->n + 1;
	}
	if (a->n) {
		r = malloc(a->n * sizeof(*r));
		o = malloc(a->n * sizeof(*o));
		if (!r || !o) {
			free(r);
			free(o);
			return -ENOMEM;
		}
	}
	if (a->supply_note[0]) {
		struct ta_decision *d = add_dec(a, NULL, TA_R_SUPPLY);

		snprintf(d->text, sizeof(d->text), "pool: %s", a->supply_note);
		a->supply_note[0] = '\0';
	}
	/* ends: expired requests leave; a release that held nothing leaves */
	for (size_t i = w = 0; i < a->n; i++) {
		struct ta_entry *e = &a->e[i];

		if (e->grant_until && e->grant_until <= now) {
			e->grant_w = 0;		/* the meter went back to base by itself */
			e->grant_until = 0;
		}
		if (e->expires <= now) {
			struct ta_decision *d = add_dec(a, e, TA_R_EXPIRED);

			d->until = 0;
			snprintf(d->text, sizeof(d->text), "request %" PRId64 " ended: the meter "
				 "returns to its own allocation", e->req_id);
			continue;
		}
		if (!e->want_w && !e->grant_w) {
			if (e->touched) {
				struct ta_decision *d = add_dec(a, e, TA_R_RELEASED);

				snprintf(d->text, sizeof(d->text), "request %" PRId64 " released",
					 e->req_id);
			}
			continue;
		}
		a->e[w++] = *e;
	}
	a->n = w;

	memset(f, 0, sizeof(*f));
	f->capacity_w = a->cfg.capacity_w;
	f->borrowed_w = a->borrowed_w;
	f->lent_w = a->lent_w;
	for (size_t i = 0; i < a->n; i++) {
		struct ta_entry *e = &a->e[i];

		if (e->want_w > 0) {
			f->asked_w += e->want_w;
			r[nr++] = e;
			e->taken = false;
		} else if (e->want_w < 0) {
			f->offered_w += -e->want_w;
			o[no++] = e;
		} else {
			e->taken = false;
		}
	}
	grid = max64(a->cfg.capacity_w + a->borrowed_w - a->lent_w, 0);
	need_o = max64(f->asked_w - grid, 0);

	/* offers: keep those taken, take the oldest more while the need is not covered, */
	qsort(o, no, sizeof(*o), cmp_offer);
	for (size_t i = 0; i < no; i++)
		if (o[i]->taken)
			taken += -o[i]->want_w;
	for (size_t i = 0; i < no && taken < need_o; i++)
		if (!o[i]->taken) {
			o[i]->taken = true;
			taken += -o[i]->want_w;
		}
	/* then none that the others cover: one pass leaves none (the sum only falls) */
	for (size_t i = no; i-- > 0;)
		if (o[i]->taken && taken - -o[i]->want_w >= need_o) {
			o[i]->taken = false;
			taken -= -o[i]->want_w;
		}
	f->taken_w = taken;
	f->pool_w = grid + taken;
	f->shortfall_w = max64(f->asked_w - grid - f->offered_w, 0);
	f->surplus_w = max64(grid + f->offered_w - f->asked_w, 0);
	f->requests = nr;
	f->offers = no;

	/* fair shares, then hysteresis against what each holds */
	qsort(r, nr, sizeof(*r), cmp_fill);
	shares(r, nr, f->pool_w);
	/* the highest rank not served in full: the ranks below it lost to priority */
	cut_rank = 0;
	top_rank = nr ? r[0]->rank : 0;
	for (size_t i = 0; i < nr; i++)
		if (r[i]->target_w < r[i]->want_w) {
			cut_rank = r[i]->rank;
			break;
		}
	{
		int64_t sum = 0;
		size_t nc = 0;

		for (size_t i = 0; i < nr; i++) {
			struct ta_entry *e = r[i];
			int64_t t = e->target_w, cur = min64(max64(held(e, now), 0), e->want_w);

			e->new_w = (t == e->want_w || t == 0 || llabs(t - cur) > a->cfg.hysteresis_w) ?
				   t : cur;
			sum += e->new_w;
		}
		/* kept above their share within hysteresis, but the pool needs it: cut */
		for (size_t i = 0; i < nr; i++)
			if (r[i]->new_w > r[i]->target_w)
				o[nc++] = r[i];
		if (sum > f->pool_w) {
			qsort(o, nc, sizeof(*o), cmp_excess_new);
			for (size_t i = 0; i < nc && sum > f->pool_w; i++) {
				int64_t cut = min64(o[i]->new_w - o[i]->target_w, sum - f->pool_w);

				o[i]->new_w -= cut;
				sum -= cut;
			}
		}
		f->granted_w = sum;
	}
	/* stopped: whatever the pool, a grant in force is never cut */
	for (size_t i = 0; a->stopped && i < nr; i++) {
		int64_t keep = min64(max64(held(r[i], now), 0), r[i]->want_w);

		if (r[i]->new_w < keep) {
			f->granted_w += keep - r[i]->new_w;
			r[i]->new_w = keep;
		}
	}
	for (size_t i = 0; i < a->n; i++) {
		struct ta_entry *e = &a->e[i];

		if (e->want_w < 0)
			e->new_w = e->taken ? e->want_w : 0;
		else if (e->want_w == 0)
			e->new_w = 0;
	}

	/* decisions */
	for (size_t i = 0; i < a->n; i++) {
		struct ta_entry *e = &a->e[i];
		int64_t old = held(e, now), nw = e->new_w;
		bool send = nw != old || (nw != 0 && e->grant_until != e->expires);
		enum ta_reason why;
		struct ta_decision *d;

		if (!send && !e->touched)
			continue;
		if (e->want_w < 0)
			why = e->taken ? (nw != old ? TA_R_OFFER_TAKEN : send ? TA_R_RENEWED : TA_R_KEPT)
			      : (old < 0 ? TA_R_OFFER_RETURNED : TA_R_KEPT);
		else if (nw == old && (send || e->released || nw != e->target_w || nw == e->want_w))
			why = send ? TA_R_RENEWED : TA_R_KEPT;
		else if (nw == old)	/* touched, and its share is what it holds */
			why = e->rank < cut_rank || (!nw && e->rank < top_rank) ?
			      TA_R_PRIORITY : TA_R_FAIR;
		else if (nw < old && e->want_w < old && nw == e->want_w)
			why = TA_R_ASKED_LESS;
		else if (old < 0 && nw >= 0 && e->want_w <= 0)
			why = TA_R_OFFER_RETURNED;
		else if (nw == e->want_w)
			why = TA_R_FULL;
		else if (nw < old)
			why = TA_R_REDUCED;
		else if (e->rank < cut_rank || (!nw && e->rank < top_rank))
			why = TA_R_PRIORITY;
		else
			why = TA_R_FAIR;
		d = add_dec(a, e, why);
		d->old_w = old;
		d->new_w = nw;
		d->send = send;
		d->until = e->expires;
		text_for(a, d, e, e->target_w);
		if (send) {
			e->grant_w = nw;
			e->grant_until = e->expires;
		}
		e->touched = e->released = false;
	}
	free(r);
	free(o);
	a->dirty = false;
	return 0;
}
