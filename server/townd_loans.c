// SPDX-License-Identifier: GPL-2.0
/*
 * Borrowing between towns: the protocol logic (townd_loans.h,
 * Documentation/town-network.md).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "townd_loans.h"

/* ---- small helpers ---------------------------------------------------------- */

static void logf_(struct townd_loans *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void logf_(struct townd_loans *l, const char *fmt, ...)
{
	char line[200];
	va_list ap;

	if (!l->h.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	l->h.log(l->h.ctx, line);
}

static void req_next(struct townd_loans *l, struct townd_loans_req *r, int64_t now);

static void send_msg(struct townd_loans *l, uint16_t to, const struct gmp_msg *m)
{
	l->h.send(l->h.ctx, to, m);
}

static int neigh_index(const struct townd_loans *l, uint16_t id)
{
	for (int i = 0; i < l->nneigh; i++)
		if (l->neigh[i].id == id)
			return i;
	return -1;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* ---- configuration ---------------------------------------------------------- */

void townd_loans_defaults(struct townd_loans_cfg *cfg, uint16_t self)
{
	*cfg = (struct townd_loans_cfg){
		.self = self, .hop_limit = 3, .wait_s = 30, .hop_slack_s = 5,
		.offer_ttl_s = 20, .confirm_s = 15, .refresh_s = 30, .lease_s = 90,
		.duration_s = 3600, .retry_s = 30, .linger_s = 600,
	};
}

int townd_loans_init(struct townd_loans *l, const struct townd_loans_cfg *cfg,
		     const struct townd_loans_hooks *h)
{
	if (!cfg->self || cfg->hop_limit < 1 || cfg->hop_limit > GMP_LOAN_PATH_MAX ||
	    cfg->wait_s < 1 || cfg->wait_s > 3600 || cfg->hop_slack_s < 1 ||
	    cfg->offer_ttl_s < 1 || cfg->offer_ttl_s > 3600 || cfg->confirm_s < 1 ||
	    cfg->refresh_s < 1 || cfg->lease_s <= cfg->refresh_s ||
	    cfg->duration_s < 1 || cfg->duration_s > 86400 || cfg->retry_s < 0 ||
	    cfg->linger_s < 0 || !h->send || !h->report || !h->surplus_w)
		return -EINVAL;
	memset(l, 0, sizeof(*l));
	l->cfg = *cfg;
	l->h = *h;
	l->next_req = 1;
	l->next_loan = 1;
	return 0;
}

int townd_loans_add_neighbour(struct townd_loans *l, uint16_t id, uint32_t cost)
{
	int i;

	if (!id)
		return -EINVAL;
	if (id == l->cfg.self || neigh_index(l, id) >= 0)
		return -EEXIST;
	if (l->nneigh == TOWND_LOANS_NEIGH_MAX)
		return -ENOSPC;
	/* keep them ordered by cost, then id: asks go in this order */
	for (i = l->nneigh; i > 0; i--) {
		const struct townd_loans_neigh *p = &l->neigh[i - 1];

		if (p->cost < cost || (p->cost == cost && p->id < id))
			break;
		l->neigh[i] = *p;
	}
	l->neigh[i] = (struct townd_loans_neigh){ .id = id, .cost = cost };
	l->nneigh++;
	/* requests remember tried neighbours by index: none is running at configuration time */
	return 0;
}

void townd_loans_link(struct townd_loans *l, uint16_t id, bool up, int64_t now)
{
	int i = neigh_index(l, id);

	if (i < 0 || l->neigh[i].up == up)
		return;
	l->neigh[i].up = up;
	logf_(l, "link to town %u %s", id, up ? "up" : "down");
	if (up) {
		/* a neighbour is back: a need not covered is asked again at the next tick */
		l->retry_at = 0;
		return;
	}
	/* no answer will come over a link that is down: ask the next one */
	for (int k = 0; k < TOWND_LOANS_REQ_MAX; k++)
		if (l->req[k].used && l->req[k].asking == id)
			req_next(l, &l->req[k], now);
}

/* ---- segments ---------------------------------------------------------------- */

static struct townd_loans_seg *seg_find(struct townd_loans *l, uint16_t lender, int64_t id)
{
	for (int i = 0; i < TOWND_LOANS_MAX; i++) {
		struct townd_loans_seg *s = &l->seg[i];

		if (s->used && s->lender == lender && s->loan_id == id)
			return s;
	}
	return NULL;
}

static struct townd_loans_seg *seg_new(struct townd_loans *l, int64_t now)
{
	struct townd_loans_seg *oldest = NULL;

	for (int i = 0; i < TOWND_LOANS_MAX; i++) {
		struct townd_loans_seg *s = &l->seg[i];

		if (!s->used) {
			memset(s, 0, sizeof(*s));
			s->used = true;
			return s;
		}
		if (s->phase == TOWND_LOAN_ENDED && (!oldest || s->ended_at < oldest->ended_at))
			oldest = s;
	}
	/* full: forget the loan that ended longest ago */
	if (oldest && oldest->ended_at < now) {
		memset(oldest, 0, sizeof(*oldest));
		oldest->used = true;
		return oldest;
	}
	return NULL;
}

static void report(struct townd_loans *l, const struct townd_loans_seg *s, int state, int64_t now)
{
	struct gmp_msg m = { .type = GMP_LOAN, .loan = {
		.time = now, .loan_id = s->loan_id, .lender = s->lender,
		.borrower = s->origin, .power_w = s->power_w, .until = s->until,
		.state = state } };

	l->h.report(l->h.ctx, &m);
}

static void send_down_msg(struct townd_loans *l, uint16_t to, int type,
			  const struct townd_loans_seg *s, int state)
{
	struct gmp_msg m = { .type = type, .loan_down = {
		.lender = s->lender, .loan_id = s->loan_id, .power_w = s->power_w,
		.until = s->until, .state = state } };

	send_msg(l, to, &m);
}

static void send_ref(struct townd_loans *l, uint16_t to, int type, uint16_t lender,
		     int64_t loan_id, int64_t power, int state, int64_t now)
{
	struct gmp_msg m = { .type = type, .loan_ref = {
		.time = now, .lender = lender, .loan_id = loan_id, .power_w = power,
		.state = state } };

	send_msg(l, to, &m);
}

/* End a segment here; a segment that was open is reported. */
static void seg_end(struct townd_loans *l, struct townd_loans_seg *s, int state, int64_t now)
{
	if (s->phase == TOWND_LOAN_ENDED)
		return;
	if (s->phase == TOWND_LOAN_OPEN) {
		report(l, s, state, now);
		if (state == GMP_LOAN_RETURNED)
			l->n.returned++;
		else if (state == GMP_LOAN_EXPIRED)
			l->n.expired++;
		else
			l->n.cancelled++;
	}
	logf_(l, "loan %u/%lld (%s for town %u, %lld W) %s", s->lender, (long long)s->loan_id,
	      townd_loan_role_name(s->role), s->origin, (long long)s->power_w,
	      s->phase == TOWND_LOAN_OPEN ? (state == GMP_LOAN_RETURNED ? "returned" :
					     state == GMP_LOAN_EXPIRED ? "expired" : "cancelled")
					  : "dropped before it opened");
	s->phase = TOWND_LOAN_ENDED;
	s->end = (uint8_t)state;
	s->ended_at = now;
	l->changes++;
}

static void seg_open(struct townd_loans *l, struct townd_loans_seg *s, int64_t now)
{
	s->phase = TOWND_LOAN_OPEN;
	s->opened_at = now;
	s->heard_up = s->heard_down = s->kept = now;
	l->n.opened++;
	l->changes++;
	report(l, s, GMP_LOAN_OPEN, now);
	logf_(l, "loan %u/%lld open: %s, %lld W for town %u until %lld", s->lender,
	      (long long)s->loan_id, townd_loan_role_name(s->role), (long long)s->power_w,
	      s->origin, (long long)s->until);
}

static int64_t reserved_w(const struct townd_loans *l)
{
	int64_t sum = 0;

	for (int i = 0; i < TOWND_LOANS_MAX; i++) {
		const struct townd_loans_seg *s = &l->seg[i];

		if (s->used && s->role == TOWND_LOAN_LENDER &&
		    (s->phase == TOWND_LOAN_OFFERED || s->phase == TOWND_LOAN_OPEN))
			sum += s->power_w;
	}
	return sum;
}

int64_t townd_loans_lent_w(const struct townd_loans *l)
{
	return reserved_w(l);
}

static int64_t held_w(const struct townd_loans *l, bool open_only)
{
	int64_t sum = 0;

	for (int i = 0; i < TOWND_LOANS_MAX; i++) {
		const struct townd_loans_seg *s = &l->seg[i];

		if (s->used && s->role == TOWND_LOAN_BORROWER &&
		    (s->phase == TOWND_LOAN_OPEN || (!open_only && s->phase == TOWND_LOAN_ACCEPTED)))
			sum += s->power_w;
	}
	return sum;
}

int64_t townd_loans_borrowed_w(const struct townd_loans *l)
{
	return held_w(l, true);
}

/* ---- requests ---------------------------------------------------------------- */

static struct townd_loans_req *req_find(struct townd_loans *l, uint16_t origin, uint32_t id)
{
	for (int i = 0; i < TOWND_LOANS_REQ_MAX; i++)
		if (l->req[i].used && l->req[i].origin == origin && l->req[i].req_id == id)
			return &l->req[i];
	return NULL;
}

static struct townd_loans_req *req_new(struct townd_loans *l)
{
	for (int i = 0; i < TOWND_LOANS_REQ_MAX; i++)
		if (!l->req[i].used) {
			memset(&l->req[i], 0, sizeof(l->req[i]));
			l->req[i].used = true;
			return &l->req[i];
		}
	return NULL;
}

static struct townd_loans_req *own_req(struct townd_loans *l)
{
	for (int i = 0; i < TOWND_LOANS_REQ_MAX; i++)
		if (l->req[i].used && !l->req[i].from)
			return &l->req[i];
	return NULL;
}

static bool in_path(const struct townd_loans_req *r, uint16_t id)
{
	for (int i = 0; i < r->npath; i++)
		if (r->path[i] == id)
			return true;
	return false;
}

/* "Nothing (more) from me" to whoever asked us. */
static void send_none(struct townd_loans *l, uint16_t to, uint16_t origin, uint32_t req_id)
{
	struct gmp_msg m = { .type = GMP_LOAN_OFFER, .loan_offer = {
		.origin = origin, .req_id = req_id, .flags = GMP_OFFER_LAST } };

	send_msg(l, to, &m);
}

static void req_done(struct townd_loans *l, struct townd_loans_req *r, int64_t now)
{
	if (r->from) {
		send_none(l, r->from, r->origin, r->req_id);
	} else if (r->want_w > 0) {
		l->retry_at = now + l->cfg.retry_s;
		logf_(l, "request %u: %lld W not found, asking again after %lld", r->req_id,
		      (long long)r->want_w, (long long)l->retry_at);
	}
	r->used = false;
	l->changes++;
}

/* Ask the next neighbour, or finish the request. */
static void req_next(struct townd_loans *l, struct townd_loans_req *r, int64_t now)
{
	r->asking = 0;
	if (r->want_w <= 0 || now >= r->deadline) {
		req_done(l, r, now);
		return;
	}
	for (int i = 0; i < l->nneigh; i++) {
		const struct townd_loans_neigh *n = &l->neigh[i];
		struct gmp_msg m = { .type = GMP_LOAN_ASK };

		if (!n->up || (r->tried & (1u << i)) || n->id == r->from || in_path(r, n->id))
			continue;
		r->tried |= 1u << i;
		r->asking = n->id;
		r->ask_until = r->deadline;
		m.loan_ask.time = now;
		m.loan_ask.origin = r->origin;
		m.loan_ask.req_id = r->req_id;
		m.loan_ask.power_w = r->want_w;
		m.loan_ask.duration_s = r->duration_s;
		m.loan_ask.wait_s = min64(r->deadline - now, 3600);
		m.loan_ask.hops = r->hops;
		for (int k = 0; k < r->npath; k++) {
			m.loan_ask.path[2 * k] = (uint8_t)(r->path[k] >> 8);
			m.loan_ask.path[2 * k + 1] = (uint8_t)r->path[k];
		}
		l->n.asks_sent++;
		l->changes++;
		logf_(l, "request %u/%u: %lld W asked of town %u", r->origin, r->req_id,
		      (long long)r->want_w, n->id);
		send_msg(l, n->id, &m);
		return;
	}
	req_done(l, r, now);
}

/* ---- receiving ------------------------------------------------------------------ */

static int64_t available_w(struct townd_loans *l, int64_t now)
{
	return max64(0, l->h.surplus_w(l->h.ctx, now) - reserved_w(l));
}

static int on_ask(struct townd_loans *l, uint16_t from, const struct gmp_msg *m, int64_t now)
{
	const struct gmp_loan_ask *a = &m->loan_ask;
	struct townd_loans_req tmp = { 0 }, *r;
	bool loop = false, busy;
	int64_t give, want;

	l->n.asks_recv++;
	/* the path: origin first, the asker last, no zero before the end */
	for (int k = 0; k < GMP_LOAN_PATH_MAX; k++) {
		uint16_t id = (uint16_t)(a->path[2 * k] << 8 | a->path[2 * k + 1]);

		if (!id)
			break;
		tmp.path[tmp.npath++] = id;
	}
	if (!tmp.npath || tmp.path[0] != a->origin || tmp.path[tmp.npath - 1] != from)
		return -EINVAL;
	for (int k = 0; k < tmp.npath; k++)
		loop |= tmp.path[k] == l->cfg.self;
	if (loop || a->origin == l->cfg.self) {
		l->n.refused++;
		logf_(l, "ask %u/%lld from town %u: already on its path, refused", (unsigned)a->origin,
		      (long long)a->req_id, from);
		send_none(l, from, (uint16_t)a->origin, (uint32_t)a->req_id);
		return 0;
	}
	/* lend what we can spare: reserve it, then offer */
	give = min64(available_w(l, now), a->power_w);
	want = a->power_w - give;
	busy = req_find(l, (uint16_t)a->origin, (uint32_t)a->req_id) != NULL;
	if (give > 0) {
		struct townd_loans_seg *s = seg_new(l, now);
		struct gmp_msg o = { .type = GMP_LOAN_OFFER };

		if (!s) {
			give = 0;
			want = a->power_w;
		} else {
			s->role = TOWND_LOAN_LENDER;
			s->phase = TOWND_LOAN_OFFERED;
			s->lender = l->cfg.self;
			s->loan_id = l->next_loan++;
			s->origin = (uint16_t)a->origin;
			s->req_id = (uint32_t)a->req_id;
			s->up = from;
			s->power_w = give;
			s->until = now + a->duration_s;
			s->deadline = now + l->cfg.offer_ttl_s;
			s->asked_at = now;
			l->changes++;
			o.loan_offer.origin = a->origin;
			o.loan_offer.req_id = a->req_id;
			o.loan_offer.lender = s->lender;
			o.loan_offer.loan_id = s->loan_id;
			o.loan_offer.power_w = give;
			o.loan_offer.until = s->until;
			o.loan_offer.ttl_s = l->cfg.offer_ttl_s;
			/* more may follow only if we go on asking for the rest */
			if (!(want > 0 && a->hops > 1 && !busy &&
			      a->wait_s - l->cfg.hop_slack_s > l->cfg.hop_slack_s &&
			      tmp.npath < GMP_LOAN_PATH_MAX))
				o.loan_offer.flags = GMP_OFFER_LAST;
			l->n.offers_sent++;
			logf_(l, "ask %u/%lld from town %u: offer %lld W of %lld (loan %lld)",
			      (unsigned)a->origin, (long long)a->req_id, from, (long long)give,
			      (long long)a->power_w, (long long)s->loan_id);
			send_msg(l, from, &o);
			if (o.loan_offer.flags & GMP_OFFER_LAST)
				return 0;
		}
	}
	/* ask our own neighbours for the rest, on the asker's behalf */
	if (want <= 0)
		return 0;
	if (a->hops <= 1 || busy || a->wait_s - l->cfg.hop_slack_s <= l->cfg.hop_slack_s ||
	    tmp.npath >= GMP_LOAN_PATH_MAX || !(r = req_new(l))) {
		send_none(l, from, (uint16_t)a->origin, (uint32_t)a->req_id);
		return 0;
	}
	*r = tmp;
	r->used = true;
	r->origin = (uint16_t)a->origin;
	r->req_id = (uint32_t)a->req_id;
	r->from = from;
	r->want_w = want;
	r->duration_s = a->duration_s;
	r->hops = (int)a->hops - 1;
	r->path[r->npath++] = l->cfg.self;
	r->made = now;
	r->deadline = now + a->wait_s - l->cfg.hop_slack_s;
	logf_(l, "ask %u/%lld from town %u: %lld W asked of our neighbours (%d hops left)",
	      (unsigned)a->origin, (long long)a->req_id, from, (long long)want, r->hops);
	req_next(l, r, now);
	return 0;
}

static void decline(struct townd_loans *l, uint16_t to, const struct gmp_msg *m, int64_t now)
{
	l->n.declined++;
	send_ref(l, to, GMP_LOAN_ACCEPT, (uint16_t)m->loan_offer.lender, m->loan_offer.loan_id,
		 0, GMP_LOAN_CANCELLED, now);
}

static int on_offer(struct townd_loans *l, uint16_t from, const struct gmp_msg *m, int64_t now)
{
	const struct gmp_loan_offer *o = &m->loan_offer;
	struct townd_loans_req *r = req_find(l, (uint16_t)o->origin, (uint32_t)o->req_id);
	bool real = o->power_w > 0;
	int64_t take;

	l->n.offers_recv++;
	if (real && (!o->lender || !o->loan_id))
		return -EINVAL;
	if (real && seg_find(l, (uint16_t)o->lender, o->loan_id)) {
		/* the same offer again (or one of ours coming back): never twice */
		decline(l, from, m, now);
		return 0;
	}
	if (!r || r->asking != from) {
		/* late, for a request we gave up, or from a town we did not ask */
		if (real)
			decline(l, from, m, now);
		return 0;
	}
	take = real ? min64(o->power_w, r->want_w) : 0;
	if (take > 0 && o->ttl_s > (r->from ? l->cfg.hop_slack_s : 0)) {
		struct townd_loans_seg *s = seg_new(l, now);

		if (!s) {
			decline(l, from, m, now);
		} else {
			s->lender = (uint16_t)o->lender;
			s->loan_id = o->loan_id;
			s->origin = r->origin;
			s->req_id = r->req_id;
			s->down = from;
			s->power_w = take;
			s->until = o->until;
			s->asked_at = r->made;
			r->want_w -= take;
			l->changes++;
			if (!r->from) {
				/* ours: accept at once what we still want */
				s->role = TOWND_LOAN_BORROWER;
				s->phase = TOWND_LOAN_ACCEPTED;
				s->deadline = now + l->cfg.confirm_s;
				logf_(l, "offer %u/%lld via town %u: accept %lld W of %lld",
				      (unsigned)o->lender, (long long)o->loan_id, from,
				      (long long)take, (long long)o->power_w);
				send_ref(l, from, GMP_LOAN_ACCEPT, s->lender, s->loan_id, take,
					 GMP_LOAN_OPEN, now);
			} else {
				/* relay it up, with less time to accept than the lender gave */
				struct gmp_msg up = *m;

				s->role = TOWND_LOAN_RELAY;
				s->phase = TOWND_LOAN_OFFERED;
				s->up = r->from;
				s->deadline = now + o->ttl_s;
				up.loan_offer.tseq = 0;
				up.loan_offer.power_w = take;
				up.loan_offer.ttl_s = o->ttl_s - l->cfg.hop_slack_s;
				up.loan_offer.flags = r->want_w <= 0 ? GMP_OFFER_LAST : 0;
				l->n.offers_sent++;
				send_msg(l, r->from, &up);
			}
		}
	} else if (real) {
		decline(l, from, m, now);
	}
	if (r->want_w <= 0) {
		r->used = false;	/* everything found (relays said LAST on the offer) */
		l->changes++;
	} else if (o->flags & GMP_OFFER_LAST) {
		req_next(l, r, now);
	}
	return 0;
}

static void send_end_of(struct townd_loans *l, uint16_t to, uint16_t lender, int64_t loan_id,
			int state)
{
	struct townd_loans_seg tmp = { .lender = lender, .loan_id = loan_id };

	send_down_msg(l, to, GMP_LOAN_END, &tmp, state);
}

static int on_accept(struct townd_loans *l, uint16_t from, const struct gmp_msg *m, int64_t now)
{
	const struct gmp_loan_ref *a = &m->loan_ref;
	struct townd_loans_seg *s = seg_find(l, (uint16_t)a->lender, a->loan_id);

	if (!s) {
		/* the reservation is gone (timed out, recalled): the loan never opens */
		if (a->power_w > 0)
			send_end_of(l, from, (uint16_t)a->lender, a->loan_id, GMP_LOAN_CANCELLED);
		return 0;
	}
	if (s->up != from)
		return -EPERM;
	if (s->phase == TOWND_LOAN_OPEN && a->power_w > 0) {
		/* our confirm was lost: again */
		send_down_msg(l, from, GMP_LOAN_CONFIRM, s, GMP_LOAN_OPEN);
		return 0;
	}
	if (s->phase != TOWND_LOAN_OFFERED) {
		if (a->power_w > 0 && s->phase == TOWND_LOAN_ENDED)
			send_down_msg(l, from, GMP_LOAN_END, s, s->end);
		return 0;
	}
	if (a->power_w == 0 || a->power_w > s->power_w) {
		/* declined (or more than offered: taken as a refusal) */
		if (s->role == TOWND_LOAN_RELAY)
			send_ref(l, s->down, GMP_LOAN_ACCEPT, s->lender, s->loan_id, 0,
				 GMP_LOAN_CANCELLED, now);
		if (a->power_w > 0)
			send_end_of(l, from, s->lender, s->loan_id, GMP_LOAN_CANCELLED);
		s->used = false;
		l->changes++;
		return 0;
	}
	s->power_w = a->power_w;
	if (s->role == TOWND_LOAN_LENDER) {
		seg_open(l, s, now);
		send_down_msg(l, from, GMP_LOAN_CONFIRM, s, GMP_LOAN_OPEN);
	} else {
		s->phase = TOWND_LOAN_ACCEPTED;
		s->deadline = now + l->cfg.confirm_s;
		l->changes++;
		send_ref(l, s->down, GMP_LOAN_ACCEPT, s->lender, s->loan_id, s->power_w,
			 GMP_LOAN_OPEN, now);
	}
	return 0;
}

static int on_confirm(struct townd_loans *l, uint16_t from, const struct gmp_msg *m, int64_t now)
{
	const struct gmp_loan_down *c = &m->loan_down;
	struct townd_loans_seg *s = seg_find(l, (uint16_t)c->lender, c->loan_id);

	if (!s || s->phase == TOWND_LOAN_ENDED || s->phase == TOWND_LOAN_OFFERED) {
		/* a loan we do not hold: make the other side close it */
		if (s && s->down != from)
			return -EPERM;
		send_ref(l, from, GMP_LOAN_RETURN, (uint16_t)c->lender, c->loan_id, 0,
			 GMP_LOAN_CANCELLED, now);
		return 0;
	}
	if (s->down != from)
		return -EPERM;
	if (s->phase == TOWND_LOAN_OPEN) {
		s->heard_down = now;
		return 0;
	}
	if (c->power_w != s->power_w) {
		/* not what we accepted: refuse it on both sides */
		send_ref(l, from, GMP_LOAN_RETURN, s->lender, s->loan_id, 0, GMP_LOAN_CANCELLED, now);
		if (s->role == TOWND_LOAN_RELAY)
			send_down_msg(l, s->up, GMP_LOAN_END, s, GMP_LOAN_CANCELLED);
		seg_end(l, s, GMP_LOAN_CANCELLED, now);
		return 0;
	}
	s->until = c->until;
	seg_open(l, s, now);
	if (s->role == TOWND_LOAN_RELAY)
		send_down_msg(l, s->up, GMP_LOAN_CONFIRM, s, GMP_LOAN_OPEN);
	return 0;
}

static int on_end(struct townd_loans *l, uint16_t from, const struct gmp_msg *m, int64_t now)
{
	const struct gmp_loan_down *e = &m->loan_down;
	struct townd_loans_seg *s = seg_find(l, (uint16_t)e->lender, e->loan_id);
	int state = e->state == GMP_LOAN_OPEN ? GMP_LOAN_CANCELLED : (int)e->state;

	if (!s)
		return 0;
	if (s->down != from)
		return -EPERM;
	if (s->phase == TOWND_LOAN_ENDED)
		return 0;
	if (s->role == TOWND_LOAN_RELAY)
		send_down_msg(l, s->up, GMP_LOAN_END, s, state);
	seg_end(l, s, state, now);
	return 0;
}

static int on_hold_return(struct townd_loans *l, uint16_t from, const struct gmp_msg *m,
			  int64_t now)
{
	const struct gmp_loan_ref *h = &m->loan_ref;
	struct townd_loans_seg *s = seg_find(l, (uint16_t)h->lender, h->loan_id);
	bool ret = m->type == GMP_LOAN_RETURN;

	if (!s) {
		if (!ret)
			send_end_of(l, from, (uint16_t)h->lender, h->loan_id, GMP_LOAN_CANCELLED);
		return 0;
	}
	if (s->up != from)
		return -EPERM;
	if (s->phase == TOWND_LOAN_ENDED) {
		if (!ret)
			send_down_msg(l, from, GMP_LOAN_END, s, s->end);
		return 0;
	}
	if (!ret) {
		s->heard_up = now;
		return 0;
	}
	if (s->role == TOWND_LOAN_RELAY && s->phase != TOWND_LOAN_OFFERED)
		send_ref(l, s->down, GMP_LOAN_RETURN, s->lender, s->loan_id, 0, (int)h->state, now);
	seg_end(l, s, h->state == GMP_LOAN_RETURNED ? GMP_LOAN_RETURNED : GMP_LOAN_CANCELLED, now);
	return 0;
}

int townd_loans_recv(struct townd_loans *l, uint16_t from, const struct gmp_msg *m, int64_t now)
{
	if (neigh_index(l, from) < 0)
		return -ENOENT;
	switch (m->type) {
	case GMP_LOAN_ASK:
		return on_ask(l, from, m, now);
	case GMP_LOAN_OFFER:
		return on_offer(l, from, m, now);
	case GMP_LOAN_ACCEPT:
		return on_accept(l, from, m, now);
	case GMP_LOAN_CONFIRM:
		return on_confirm(l, from, m, now);
	case GMP_LOAN_END:
		return on_end(l, from, m, now);
	case GMP_LOAN_HOLD:
	case GMP_LOAN_RETURN:
		return on_hold_return(l, from, m, now);
	default:
		return -EPROTO;
	}
}

/* ---- time ---------------------------------------------------------------------- */

static void tick_seg(struct townd_loans *l, struct townd_loans_seg *s, int64_t now)
{
	switch (s->phase) {
	case TOWND_LOAN_OFFERED:
		if (now >= s->deadline) {
			/* never accepted: the reservation goes back to the pool */
			logf_(l, "offer %u/%lld to town %u not accepted in time, released",
			      s->lender, (long long)s->loan_id, s->up);
			s->used = false;
			l->changes++;
		}
		return;
	case TOWND_LOAN_ACCEPTED:
		if (now >= s->deadline) {
			send_ref(l, s->down, GMP_LOAN_RETURN, s->lender, s->loan_id, 0,
				 GMP_LOAN_CANCELLED, now);
			if (s->role == TOWND_LOAN_RELAY)
				send_down_msg(l, s->up, GMP_LOAN_END, s, GMP_LOAN_CANCELLED);
			seg_end(l, s, GMP_LOAN_CANCELLED, now);
		}
		return;
	case TOWND_LOAN_OPEN:
		if (now >= s->until) {
			seg_end(l, s, GMP_LOAN_EXPIRED, now);
			return;
		}
		if ((s->up && now - s->heard_up > l->cfg.lease_s) ||
		    (s->down && now - s->heard_down > l->cfg.lease_s)) {
			/* the other end is silent: it will have cancelled too */
			if (s->up)
				send_down_msg(l, s->up, GMP_LOAN_END, s, GMP_LOAN_CANCELLED);
			if (s->down)
				send_ref(l, s->down, GMP_LOAN_RETURN, s->lender, s->loan_id, 0,
					 GMP_LOAN_CANCELLED, now);
			seg_end(l, s, GMP_LOAN_CANCELLED, now);
			return;
		}
		if (now - s->kept >= l->cfg.refresh_s) {
			s->kept = now;
			if (s->up)
				send_down_msg(l, s->up, GMP_LOAN_CONFIRM, s, GMP_LOAN_OPEN);
			if (s->down)
				send_ref(l, s->down, GMP_LOAN_HOLD, s->lender, s->loan_id,
					 s->power_w, GMP_LOAN_OPEN, now);
		}
		return;
	case TOWND_LOAN_ENDED:
		if (now - s->ended_at > l->cfg.linger_s) {
			s->used = false;
			l->changes++;
		}
		return;
	}
}

/*
 * The loan to give back: the newest (latest opened, accepted ones first)
 * whose return leaves at least `need` held; failing that, the newest.
 */
static struct townd_loans_seg *to_return(struct townd_loans *l, int64_t held, int64_t need)
{
	struct townd_loans_seg *best = NULL, *keep = NULL;

	for (int i = 0; i < TOWND_LOANS_MAX; i++) {
		struct townd_loans_seg *s = &l->seg[i];
		int64_t t = s->phase == TOWND_LOAN_ACCEPTED ? INT64_MAX : s->opened_at;

		if (!s->used || s->role != TOWND_LOAN_BORROWER ||
		    (s->phase != TOWND_LOAN_OPEN && s->phase != TOWND_LOAN_ACCEPTED))
			continue;
		if (!best || t > (best->phase == TOWND_LOAN_ACCEPTED ? INT64_MAX : best->opened_at))
			best = s;
		if (held - s->power_w >= need &&
		    (!keep || t > (keep->phase == TOWND_LOAN_ACCEPTED ? INT64_MAX : keep->opened_at)))
			keep = s;
	}
	return keep ? keep : best;
}

/* The loan to recall: the newest offer or loan given. */
static struct townd_loans_seg *to_recall(struct townd_loans *l)
{
	struct townd_loans_seg *best = NULL;

	for (int i = 0; i < TOWND_LOANS_MAX; i++) {
		struct townd_loans_seg *s = &l->seg[i];

		if (s->used && s->role == TOWND_LOAN_LENDER && s->phase != TOWND_LOAN_ENDED &&
		    (!best || s->loan_id > best->loan_id))
			best = s;
	}
	return best;
}

static void balance(struct townd_loans *l, int64_t now)
{
	struct townd_loans_req *r = own_req(l);
	int64_t held = held_w(l, false);
	int64_t surplus = max64(0, l->h.surplus_w(l->h.ctx, now));
	struct townd_loans_seg *s;

	/* lent more than we can now spare (our meters want it back): recall */
	while (reserved_w(l) > surplus && (s = to_recall(l))) {
		l->n.recalled++;
		if (s->phase == TOWND_LOAN_OPEN)
			send_down_msg(l, s->up, GMP_LOAN_END, s, GMP_LOAN_CANCELLED);
		logf_(l, "loan %u/%lld recalled: surplus %lld W", s->lender, (long long)s->loan_id,
		      (long long)surplus);
		if (s->phase == TOWND_LOAN_OFFERED) {
			s->used = false;	/* an accept will get an END */
			l->changes++;
		} else {
			seg_end(l, s, GMP_LOAN_CANCELLED, now);
		}
	}
	/*
	 * Hold more than needed: give back whole loans, the newest first that
	 * still leaves the need covered, else the newest. One not confirmed
	 * yet is cancelled (its lender may have opened it: the return closes it).
	 */
	while (held > l->need_w && (s = to_return(l, held, l->need_w))) {
		int state = s->phase == TOWND_LOAN_OPEN ? GMP_LOAN_RETURNED : GMP_LOAN_CANCELLED;

		send_ref(l, s->down, GMP_LOAN_RETURN, s->lender, s->loan_id, 0, state, now);
		held -= s->power_w;
		seg_end(l, s, state, now);
	}
	if (r) {
		/* a running request wants no more than is still missing */
		r->want_w = min64(r->want_w, max64(0, l->need_w - held));
		return;
	}
	if (l->need_w > held && now >= l->retry_at && (r = req_new(l))) {
		r->origin = l->cfg.self;
		r->req_id = l->next_req++;
		if (!l->next_req)
			l->next_req = 1;
		r->want_w = l->need_w - held;
		r->duration_s = l->cfg.duration_s;
		r->hops = l->cfg.hop_limit;
		r->path[r->npath++] = l->cfg.self;
		r->made = now;
		r->deadline = now + l->cfg.wait_s;
		l->changes++;
		logf_(l, "request %u: %lld W wanted, asking neighbours", r->req_id,
		      (long long)r->want_w);
		req_next(l, r, now);
	}
}

void townd_loans_need(struct townd_loans *l, int64_t watts, int64_t now)
{
	watts = max64(0, watts);
	if (watts != l->need_w) {
		if (watts > l->need_w)
			l->retry_at = 0;	/* more wanted: ask at once */
		l->need_w = watts;
		l->changes++;
	}
	balance(l, now);
}

void townd_loans_tick(struct townd_loans *l, int64_t now)
{
	for (int i = 0; i < TOWND_LOANS_REQ_MAX; i++) {
		struct townd_loans_req *r = &l->req[i];

		if (!r->used)
			continue;
		if (now >= r->deadline)
			req_done(l, r, now);
		else if (r->asking && now >= r->ask_until)
			req_next(l, r, now);
		else if (!r->asking)
			req_next(l, r, now);
	}
	for (int i = 0; i < TOWND_LOANS_MAX; i++)
		if (l->seg[i].used)
			tick_seg(l, &l->seg[i], now);
	balance(l, now);
}

/* ---- listing --------------------------------------------------------------------- */

const char *townd_loan_role_name(int role)
{
	switch (role) {
	case TOWND_LOAN_LENDER: return "lender";
	case TOWND_LOAN_RELAY: return "relay";
	case TOWND_LOAN_BORROWER: return "borrower";
	default: return "?";
	}
}

const char *townd_loan_phase_name(int phase)
{
	switch (phase) {
	case TOWND_LOAN_OFFERED: return "offered";
	case TOWND_LOAN_ACCEPTED: return "accepted";
	case TOWND_LOAN_OPEN: return "open";
	case TOWND_LOAN_ENDED: return "ended";
	default: return "?";
	}
}

size_t townd_loans_list(const struct townd_loans *l, struct townd_loan_info *out, size_t max)
{
	size_t n = 0;

	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < TOWND_LOANS_MAX; i++) {
			const struct townd_loans_seg *s = &l->seg[i];

			if (!s->used || (s->phase == TOWND_LOAN_ENDED) != (pass == 1))
				continue;
			if (n < max)
				out[n] = (struct townd_loan_info){
					.lender = s->lender, .loan_id = s->loan_id,
					.origin = s->origin, .req_id = s->req_id, .up = s->up,
					.down = s->down, .role = s->role, .phase = s->phase,
					.end = s->end, .power_w = s->power_w, .until = s->until,
					.asked_at = s->asked_at, .opened_at = s->opened_at,
					.ended_at = s->ended_at };
			n++;
		}
	return n;
}

/* ---- saving and restoring -------------------------------------------------------- */

/*
 * Layout: "GMLN", version 1, then little-endian int64s: self, next_req,
 * next_loan, need_w, retry_at, the number of requests and of segments,
 * then TOWND_LOANS_REQ_INTS per request and TOWND_LOANS_SEG_INTS per
 * segment, in the order of the fields below.
 */
#define SAVE_MAGIC	"GMLN"
#define SAVE_VERSION	1

struct wr {
	uint8_t *p;
	size_t size, len;
};

static void put(struct wr *w, int64_t v)
{
	uint64_t u = (uint64_t)v;

	if (w->len + 8 <= w->size)
		for (int i = 0; i < 8; i++)
			w->p[w->len + i] = (uint8_t)(u >> (8 * i));
	w->len += 8;
}

struct rd {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static int64_t get(struct rd *r, int64_t lo, int64_t hi)
{
	uint64_t u = 0;
	int64_t v;

	if (r->bad || r->len - r->off < 8) {
		r->bad = true;
		return 0;
	}
	for (int i = 0; i < 8; i++)
		u |= (uint64_t)r->p[r->off + i] << (8 * i);
	r->off += 8;
	v = (int64_t)u;
	if (v < lo || v > hi) {
		r->bad = true;
		return 0;
	}
	return v;
}

#define T_MIN	(-((int64_t)1 << 40))
#define T_MAXV	((int64_t)1 << 41)
#define W_MAX	((int64_t)1 << 40)

int townd_loans_save(const struct townd_loans *l, uint8_t *buf, size_t size)
{
	struct wr w = { .p = buf, .size = size, .len = 0 };
	int64_t nreq = 0, nseg = 0;

	if (size < 5)
		return -ENOSPC;
	memcpy(buf, SAVE_MAGIC, 4);
	buf[4] = SAVE_VERSION;
	w.len = 5;
	for (int i = 0; i < TOWND_LOANS_REQ_MAX; i++)
		nreq += l->req[i].used;
	for (int i = 0; i < TOWND_LOANS_MAX; i++)
		nseg += l->seg[i].used;
	put(&w, l->cfg.self);
	put(&w, l->next_req);
	put(&w, l->next_loan);
	put(&w, l->need_w);
	put(&w, l->retry_at);
	put(&w, nreq);
	put(&w, nseg);
	for (int i = 0; i < TOWND_LOANS_REQ_MAX; i++) {
		const struct townd_loans_req *r = &l->req[i];

		if (!r->used)
			continue;
		put(&w, r->origin);
		put(&w, r->req_id);
		put(&w, r->from);
		put(&w, r->want_w);
		put(&w, r->duration_s);
		put(&w, r->hops);
		put(&w, r->npath);
		for (int k = 0; k < GMP_LOAN_PATH_MAX; k++)
			put(&w, r->path[k]);
		put(&w, r->made);
		put(&w, r->deadline);
		put(&w, r->asking);
		put(&w, r->ask_until);
	}
	for (int i = 0; i < TOWND_LOANS_MAX; i++) {
		const struct townd_loans_seg *g = &l->seg[i];

		if (!g->used)
			continue;
		put(&w, g->role);
		put(&w, g->phase);
		put(&w, g->end);
		put(&w, g->lender);
		put(&w, g->loan_id);
		put(&w, g->origin);
		put(&w, g->req_id);
		put(&w, g->up);
		put(&w, g->down);
		put(&w, g->power_w);
		put(&w, g->until);
		put(&w, g->deadline);
		put(&w, g->heard_up);
		put(&w, g->heard_down);
		put(&w, g->kept);
		put(&w, g->asked_at);
		put(&w, g->opened_at);
		put(&w, g->ended_at);
	}
	return w.len <= size ? (int)w.len : -ENOSPC;
}

static bool seg_sane(const struct townd_loans *l, const struct townd_loans_seg *g)
{
	switch (g->role) {
	case TOWND_LOAN_LENDER:
		return g->lender == l->cfg.self && g->up && !g->down && g->origin != l->cfg.self &&
		       g->phase != TOWND_LOAN_ACCEPTED;
	case TOWND_LOAN_RELAY:
		return g->up && g->down && g->lender != l->cfg.self && g->origin != l->cfg.self;
	case TOWND_LOAN_BORROWER:
		return !g->up && g->down && g->origin == l->cfg.self && g->lender != l->cfg.self &&
		       g->phase != TOWND_LOAN_OFFERED;
	default:
		return false;
	}
}

int townd_loans_restore(struct townd_loans *l, const uint8_t *buf, size_t len)
{
	struct rd r = { .p = buf, .len = len, .off = 5 };
	struct townd_loans_req req[TOWND_LOANS_REQ_MAX];
	struct townd_loans_seg seg[TOWND_LOANS_MAX];
	int64_t self, next_req, next_loan, need, retry, nreq, nseg;

	if (len < 5 || memcmp(buf, SAVE_MAGIC, 4) || buf[4] != SAVE_VERSION)
		return -EINVAL;
	self = get(&r, 1, UINT16_MAX);
	next_req = get(&r, 1, UINT32_MAX);
	next_loan = get(&r, 1, INT64_MAX - TOWND_LOANS_ID_SKIP);
	need = get(&r, 0, W_MAX);
	retry = get(&r, T_MIN, T_MAXV);
	nreq = get(&r, 0, TOWND_LOANS_REQ_MAX);
	nseg = get(&r, 0, TOWND_LOANS_MAX);
	if (r.bad || self != l->cfg.self)
		return -EINVAL;
	memset(req, 0, sizeof(req));
	memset(seg, 0, sizeof(seg));
	for (int i = 0; i < nreq && !r.bad; i++) {
		struct townd_loans_req *q = &req[i];

		q->used = true;
		q->origin = (uint16_t)get(&r, 1, UINT16_MAX);
		q->req_id = (uint32_t)get(&r, 1, UINT32_MAX);
		q->from = (uint16_t)get(&r, 0, UINT16_MAX);
		q->want_w = get(&r, 0, W_MAX);
		q->duration_s = get(&r, 1, 86400);
		q->hops = (int)get(&r, 0, GMP_LOAN_PATH_MAX);
		q->npath = (int)get(&r, 1, GMP_LOAN_PATH_MAX);
		for (int k = 0; k < GMP_LOAN_PATH_MAX; k++)
			q->path[k] = (uint16_t)get(&r, 0, UINT16_MAX);
		q->made = get(&r, T_MIN, T_MAXV);
		q->deadline = get(&r, T_MIN, T_MAXV);
		q->asking = (uint16_t)get(&r, 0, UINT16_MAX);
		q->ask_until = get(&r, T_MIN, T_MAXV);
		if (!r.bad && (q->path[q->npath - 1] != l->cfg.self ||
			       (q->from ? q->origin == l->cfg.self : q->origin != l->cfg.self)))
			r.bad = true;
	}
	for (int i = 0; i < nseg && !r.bad; i++) {
		struct townd_loans_seg *g = &seg[i];

		g->used = true;
		g->role = (uint8_t)get(&r, TOWND_LOAN_LENDER, TOWND_LOAN_BORROWER);
		g->phase = (uint8_t)get(&r, TOWND_LOAN_OFFERED, TOWND_LOAN_ENDED);
		g->end = (uint8_t)get(&r, GMP_LOAN_OPEN, GMP_LOAN_CANCELLED);
		g->lender = (uint16_t)get(&r, 1, UINT16_MAX);
		g->loan_id = get(&r, 1, INT64_MAX);
		g->origin = (uint16_t)get(&r, 1, UINT16_MAX);
		g->req_id = (uint32_t)get(&r, 1, UINT32_MAX);
		g->up = (uint16_t)get(&r, 0, UINT16_MAX);
		g->down = (uint16_t)get(&r, 0, UINT16_MAX);
		g->power_w = get(&r, 1, W_MAX);
		g->until = get(&r, T_MIN, T_MAXV);
		g->deadline = get(&r, T_MIN, T_MAXV);
		g->heard_up = get(&r, T_MIN, T_MAXV);
		g->heard_down = get(&r, T_MIN, T_MAXV);
		g->kept = get(&r, T_MIN, T_MAXV);
		g->asked_at = get(&r, T_MIN, T_MAXV);
		g->opened_at = get(&r, T_MIN, T_MAXV);
		g->ended_at = get(&r, T_MIN, T_MAXV);
		if (!r.bad && !seg_sane(l, g))
			r.bad = true;
		for (int k = 0; k < i && !r.bad; k++)
			if (seg[k].lender == g->lender && seg[k].loan_id == g->loan_id)
				r.bad = true;
	}
	if (r.bad || r.off != len)
		return -EINVAL;
	memcpy(l->req, req, sizeof(req));
	memcpy(l->seg, seg, sizeof(seg));
	/* ids handed out after the last save must not come again */
	l->next_req = (uint32_t)(next_req + TOWND_LOANS_ID_SKIP > UINT32_MAX ? 1 :
				 next_req + TOWND_LOANS_ID_SKIP);
	l->next_loan = next_loan + TOWND_LOANS_ID_SKIP;
	l->need_w = need;
	l->retry_at = retry;
	for (int i = 0; i < l->nneigh; i++)
		l->neigh[i].up = false;
	l->changes++;
	return 0;
}
