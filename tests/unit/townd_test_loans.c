// SPDX-License-Identifier: GPL-2.0
/*
 * Borrowing between towns (server/townd_loans.c): several towns wired
 * together in memory through a simulated network that delays, drops and
 * cuts links, and restarts towns from their saved state. Simulated time,
 * one tick a second; every message goes through gmp_encode/decode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm_harness.h"
#include "townd_loans.h"

#define NT	8		/* towns at most, ids 1..NT */
#define QMAX	8192
#define T0	1800000000	/* simulated epoch */

struct net;

struct town {
	struct net *net;
	uint16_t id;
	bool alive;
	struct townd_loans l;
	struct townd_loans_cfg cfg;
	int64_t surplus;
	uint8_t saved[TOWND_LOANS_SAVE_MAX];
	int saved_len;
	uint64_t saved_changes;
	int64_t need_set_at;	/* when the current need was set */
	int64_t first_open;	/* first time a loan opened here as borrower */
	uint64_t reports[4];	/* GMP_LOAN reports by state */
	struct rep { uint16_t lender; int64_t id; int opens, ends; } rep[512];
	int nrep;
};

struct pending {
	int64_t at;
	uint64_t order;
	uint16_t from, to;
	struct gmp_msg m;
};

struct net {
	struct town t[NT + 1];
	int n;
	bool adj[NT + 1][NT + 1];	/* configured neighbours */
	bool cut[NT + 1][NT + 1];
	struct pending q[QMAX];
	int nq;
	int64_t now;
	uint64_t order;
	unsigned int drop_pct;		/* chance a message is lost */
	int64_t delay_min, delay_max;	/* one-way, s */
	uint64_t rnd;
	uint64_t msgs, dropped, encode_errors, overflow;
	uint64_t overbooked, overheld;	/* offers beyond the surplus, accepts beyond the need */
	/* consistency: first time each pair of ends was seen disagreeing */
	struct bad { uint16_t lender; int64_t id; uint16_t a, b; int64_t since; bool seen; } bad[256];
	int nbad;
	int64_t worst_disagreement;
};

static uint64_t rnd(struct net *n)
{
	n->rnd ^= n->rnd << 13;
	n->rnd ^= n->rnd >> 7;
	n->rnd ^= n->rnd << 17;
	return n->rnd;
}

static int64_t rnd_in(struct net *n, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rnd(n) % (uint64_t)(hi - lo + 1));
}

/* ---- hooks ------------------------------------------------------------------- */

static void h_send(void *ctx, uint16_t to, const struct gmp_msg *m)
{
	struct town *t = ctx;
	struct net *n = t->net;
	struct gmp_msg c = *m, d;
	uint8_t buf[GMP_PLAIN_MAX];
	size_t off = 0, roff = 0;

	/* the transport numbers records and commands; everything must encode */
	if (gmp_is_record(c.type))
		gmp_msg_set_seq(&c, (int64_t)n->msgs + 1);
	else
		gmp_cmd_set_tseq(&c, (int64_t)n->msgs + 1);
	if (gmp_encode(&c, buf, sizeof(buf), &off) || gmp_decode_next(buf, off, &roff, &d) != 1) {
		n->encode_errors++;
		return;
	}
	n->msgs++;
	/* at the moment of offering (before any recall could mend it) */
	if (c.type == GMP_LOAN_OFFER && c.loan_offer.lender == t->id &&
	    townd_loans_lent_w(&t->l) > t->surplus)
		n->overbooked++;
	if (c.type == GMP_LOAN_ACCEPT && c.loan_ref.power_w > 0) {
		int64_t held = 0;

		for (int k = 0; k < TOWND_LOANS_MAX; k++) {
			const struct townd_loans_seg *g = &t->l.seg[k];

			if (g->used && g->role == TOWND_LOAN_BORROWER &&
			    (g->phase == TOWND_LOAN_OPEN || g->phase == TOWND_LOAN_ACCEPTED))
				held += g->power_w;
		}
		if (held > t->l.need_w)
			n->overheld++;
	}
	if (!n->adj[t->id][to] || n->cut[t->id][to] || (n->drop_pct && rnd(n) % 100 < n->drop_pct)) {
		n->dropped++;
		return;
	}
	if (n->nq == QMAX) {
		n->overflow++;
		return;
	}
	n->q[n->nq++] = (struct pending){ .at = n->now + rnd_in(n, n->delay_min, n->delay_max),
					  .order = n->order++, .from = t->id, .to = to, .m = d };
}

static void h_report(void *ctx, const struct gmp_msg *m)
{
	struct town *t = ctx;
	int i;

	t->reports[m->loan.state]++;
	for (i = 0; i < t->nrep; i++)
		if (t->rep[i].lender == m->loan.lender && t->rep[i].id == m->loan.loan_id)
			break;
	if (i == t->nrep && t->nrep < 512)
		t->rep[t->nrep++] = (struct rep){ (uint16_t)m->loan.lender, m->loan.loan_id, 0, 0 };
	if (i < t->nrep) {
		if (m->loan.state == GMP_LOAN_OPEN)
			t->rep[i].opens++;
		else
			t->rep[i].ends++;
	}
	if (m->loan.state == GMP_LOAN_OPEN && m->loan.borrower == t->id && !t->first_open)
		t->first_open = m->loan.time;
}

static int64_t h_surplus(void *ctx, int64_t now)
{
	(void)now;
	return ((struct town *)ctx)->surplus;
}

static void h_log(void *ctx, const char *line)
{
	struct town *t = ctx;

	if (getenv("LOANS_VERBOSE"))
		fprintf(stderr, "%lld town %u: %s\n", (long long)(t->net->now - T0), t->id, line);
}

static struct townd_loans_hooks hooks_of(struct town *t)
{
	return (struct townd_loans_hooks){ .ctx = t, .send = h_send, .report = h_report,
					   .surplus_w = h_surplus, .log = h_log };
}

/* ---- the network --------------------------------------------------------------- */

static void town_start(struct net *n, struct town *t)
{
	struct townd_loans_hooks h = hooks_of(t);

	if (townd_loans_init(&t->l, &t->cfg, &h))
		abort();
	for (int j = 1; j <= n->n; j++)
		if (n->adj[t->id][j])
			townd_loans_add_neighbour(&t->l, (uint16_t)j,
						  (uint32_t)(10 * abs(j - t->id) + j));
	if (t->saved_len && townd_loans_restore(&t->l, t->saved, (size_t)t->saved_len))
		abort();
	t->alive = true;
	for (int j = 1; j <= n->n; j++)
		if (n->adj[t->id][j] && !n->cut[t->id][j] && n->t[j].alive) {
			townd_loans_link(&t->l, (uint16_t)j, true, n->now);
			townd_loans_link(&n->t[j].l, t->id, true, n->now);
		}
}

static void net_init(struct net *n, int towns, uint64_t seed)
{
	memset(n, 0, sizeof(*n));
	n->n = towns;
	n->now = T0;
	n->rnd = seed * 2654435761u + 1;
	n->delay_min = n->delay_max = 1;
	for (int i = 1; i <= towns; i++) {
		n->t[i].net = n;
		n->t[i].id = (uint16_t)i;
		townd_loans_defaults(&n->t[i].cfg, (uint16_t)i);
	}
}

static void link2(struct net *n, int a, int b)
{
	n->adj[a][b] = n->adj[b][a] = true;
}

static void chain(struct net *n)
{
	for (int i = 1; i < n->n; i++)
		link2(n, i, i + 1);
}

static void start_all(struct net *n)
{
	for (int i = 1; i <= n->n; i++)
		town_start(n, &n->t[i]);
}

static void set_cut(struct net *n, int a, int b, bool cut)
{
	n->cut[a][b] = n->cut[b][a] = cut;
	if (n->t[a].alive && n->t[b].alive) {
		townd_loans_link(&n->t[a].l, (uint16_t)b, !cut, n->now);
		townd_loans_link(&n->t[b].l, (uint16_t)a, !cut, n->now);
	}
}

/* A power cut: the town is gone; it comes back from what it saved last. */
static void town_kill(struct net *n, int i)
{
	n->t[i].alive = false;
	for (int j = 1; j <= n->n; j++)
		if (n->adj[i][j] && n->t[j].alive)
			townd_loans_link(&n->t[j].l, (uint16_t)i, false, n->now);
}

static void save_if_changed(struct town *t)
{
	if (t->l.changes == t->saved_changes && t->saved_len)
		return;
	t->saved_len = townd_loans_save(&t->l, t->saved, sizeof(t->saved));
	if (t->saved_len < 0)
		abort();
	t->saved_changes = t->l.changes;
}

static int cmp_pending(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static const struct townd_loans_seg *seg_of(const struct town *t, uint16_t lender, int64_t id)
{
	for (int i = 0; i < TOWND_LOANS_MAX; i++)
		if (t->l.seg[i].used && t->l.seg[i].lender == lender && t->l.seg[i].loan_id == id)
			return &t->l.seg[i];
	return NULL;
}

/* Lender side `a` and borrower side `b` of one segment: do they agree it is open? */
static int pair_check(struct net *n, int a, int b, uint16_t lender, int64_t id, int64_t bound,
		      char *why, size_t whylen)
{
	const struct townd_loans_seg *x, *y;
	bool xo, yo;
	int k;

	if (!n->t[a].alive || !n->t[b].alive)
		return 0;
	x = seg_of(&n->t[a], lender, id);
	y = seg_of(&n->t[b], lender, id);
	xo = x && x->phase == TOWND_LOAN_OPEN && x->up == b;
	yo = y && y->phase == TOWND_LOAN_OPEN && y->down == a;
	if (xo == yo && (!xo || x->power_w == y->power_w))
		return 0;
	for (k = 0; k < n->nbad; k++)
		if (n->bad[k].lender == lender && n->bad[k].id == id && n->bad[k].a == a)
			break;
	if (k == n->nbad) {
		if (n->nbad == 256)
			return 0;
		n->bad[n->nbad++] = (struct bad){ lender, id, (uint16_t)a, (uint16_t)b, n->now, false };
	}
	n->bad[k].seen = true;
	if (n->now - n->bad[k].since > n->worst_disagreement)
		n->worst_disagreement = n->now - n->bad[k].since;
	if (n->now - n->bad[k].since <= bound)
		return 0;
	snprintf(why, whylen, "loan %u/%lld: town %d %s, town %d %s, for %lld s", lender,
		 (long long)id, a, x ? townd_loan_phase_name(x->phase) : "unknown", b,
		 y ? townd_loan_phase_name(y->phase) : "unknown", (long long)(n->now - n->bad[k].since));
	return -1;
}

/*
 * The invariants, at every second:
 *  - a lender never has more lent or reserved than its surplus;
 *  - a town never holds (accepted or open) more than it needs;
 *  - the two ends of every segment between live towns agree on whether it
 *    is open (and then on its power), or stop disagreeing within the bound.
 */
static int check(struct net *n, int64_t bound, char *why, size_t whylen)
{
	for (int i = 1; i <= n->n; i++) {
		struct town *t = &n->t[i];
		int64_t held = 0;

		if (!t->alive)
			continue;
		if (townd_loans_lent_w(&t->l) > t->surplus) {
			snprintf(why, whylen, "town %d lent %lld > surplus %lld", i,
				 (long long)townd_loans_lent_w(&t->l), (long long)t->surplus);
			return -1;
		}
		for (int k = 0; k < TOWND_LOANS_MAX; k++) {
			const struct townd_loans_seg *s = &t->l.seg[k];

			if (s->used && s->role == TOWND_LOAN_BORROWER &&
			    (s->phase == TOWND_LOAN_OPEN || s->phase == TOWND_LOAN_ACCEPTED))
				held += s->power_w;
		}
		if (held > t->l.need_w && n->now - t->need_set_at > 2) {
			/* (a lowered need is met by returns at the next tick) */
			snprintf(why, whylen, "town %d holds %lld > need %lld", i, (long long)held,
				 (long long)t->l.need_w);
			return -1;
		}
	}
	/* disagreements not seen again (resolved, forgotten, a town down) are dropped */
	for (int b = 0; b < n->nbad; b++)
		n->bad[b].seen = false;
	for (int i = 1; i <= n->n; i++) {
		if (!n->t[i].alive)
			continue;
		for (int k = 0; k < TOWND_LOANS_MAX; k++) {
			const struct townd_loans_seg *s = &n->t[i].l.seg[k];

			if (!s->used)
				continue;
			/* each pair of ends, seen from both */
			if (s->up && pair_check(n, i, s->up, s->lender, s->loan_id, bound, why, whylen))
				return -1;
			if (s->down && pair_check(n, s->down, i, s->lender, s->loan_id, bound, why, whylen))
				return -1;
		}
	}
	for (int b = 0; b < n->nbad; b++)
		if (!n->bad[b].seen)
			n->bad[b--] = n->bad[--n->nbad];
	return 0;
}

/* Run until `until`, one second at a time; stops at the first broken invariant. */
static int run(struct net *n, int64_t until, int64_t bound, char *why, size_t whylen)
{
	while (n->now < until) {
		int k = 0;

		n->now++;
		qsort(n->q, (size_t)n->nq, sizeof(n->q[0]), cmp_pending);
		while (k < n->nq && n->q[k].at <= n->now) {
			struct pending *p = &n->q[k++];
			struct town *t = &n->t[p->to];

			if (t->alive && !n->cut[p->from][p->to])
				townd_loans_recv(&t->l, p->from, &p->m, n->now);
		}
		memmove(n->q, n->q + k, (size_t)(n->nq - k) * sizeof(n->q[0]));
		n->nq -= k;
		for (int i = 1; i <= n->n; i++)
			if (n->t[i].alive) {
				townd_loans_tick(&n->t[i].l, n->now);
				save_if_changed(&n->t[i]);
			}
		if (bound && check(n, bound, why, whylen))
			return -1;
	}
	return 0;
}

static void need(struct net *n, int i, int64_t w)
{
	n->t[i].need_set_at = n->now;
	townd_loans_need(&n->t[i].l, w, n->now);
}

static int count(const struct town *t, int role, int phase)
{
	int c = 0;

	for (int k = 0; k < TOWND_LOANS_MAX; k++)
		c += t->l.seg[k].used && t->l.seg[k].role == role && t->l.seg[k].phase == phase;
	return c;
}

/* The bound on disagreement the design promises (lease, plus a keepalive and the wait for a confirm). */
static int64_t bound_of(const struct townd_loans_cfg *c, int64_t delay_max)
{
	return c->confirm_s + c->lease_s + c->refresh_s + 2 * delay_max + 2;
}

/* ---- tests -------------------------------------------------------------------------- */

TEST(three_hops_away_lends_through_two_intermediaries)
{
	static struct net n;
	char why[200] = "";
	const struct townd_loan_info *li;
	struct townd_loan_info info[8];
	int64_t t_need;
	uint64_t m0, m_open;
	const int64_t want = 600, lat = 1;
	const int hops = 3;

	net_init(&n, 4, 1);
	chain(&n);
	n.delay_min = n.delay_max = lat;
	n.t[4].surplus = 1000;
	start_all(&n);
	m0 = n.msgs;
	t_need = n.now;
	need(&n, 1, want);
	while (!n.t[1].first_open && n.now < t_need + 60)
		ASSERT_EQ(0, run(&n, n.now + 1, bound_of(&n.t[1].cfg, lat), why, sizeof(why)))
			TH_LOG("%s", why);
	m_open = n.msgs - m0;
	ASSERT_EQ(0, run(&n, t_need + 60, bound_of(&n.t[1].cfg, lat), why, sizeof(why)))
		TH_LOG("%s", why);
	EXPECT_EQ(want, townd_loans_borrowed_w(&n.t[1].l));
	EXPECT_EQ(want, townd_loans_lent_w(&n.t[4].l));
	EXPECT_EQ(0, townd_loans_lent_w(&n.t[2].l));
	EXPECT_EQ(1, count(&n.t[2], TOWND_LOAN_RELAY, TOWND_LOAN_OPEN));
	EXPECT_EQ(1, count(&n.t[3], TOWND_LOAN_RELAY, TOWND_LOAN_OPEN));
	ASSERT_EQ(1, townd_loans_list(&n.t[1].l, info, 8));
	li = &info[0];
	EXPECT_EQ(4, li->lender);
	EXPECT_EQ(2, li->down);
	EXPECT_EQ(1, li->origin);
	/* every town reported the same loan open to maind, once */
	for (int i = 1; i <= 4; i++) {
		EXPECT_EQ(1, n.t[i].reports[GMP_LOAN_OPEN]);
		ASSERT_EQ(1, n.t[i].nrep);
		EXPECT_EQ(4, n.t[i].rep[0].lender);
		EXPECT_EQ(li->loan_id, n.t[i].rep[0].id);
	}
	/*
	 * Figures: ask, offer, accept and confirm cross each of the three links
	 * once; the borrower's loan opens after those one-way delays (keepalives
	 * start only refresh_s after opening).
	 */
	printf("# figure: 3 hops: %llu messages, %lld s from need to open at %lld s one-way delay\n",
	       (unsigned long long)m_open, (long long)(n.t[1].first_open - t_need), (long long)lat);
	fflush(stdout);
	EXPECT_EQ((uint64_t)(4 * hops), m_open);
	EXPECT_EQ(4 * hops * lat, n.t[1].first_open - t_need);

	/* it expires at its end on every side, and everyone reports it */
	ASSERT_EQ(0, run(&n, li->until + 2, bound_of(&n.t[1].cfg, lat), why, sizeof(why)))
		TH_LOG("%s", why);
	for (int i = 1; i <= 4; i++) {
		EXPECT_EQ(1, n.t[i].reports[GMP_LOAN_EXPIRED]) TH_LOG("town %d", i);
	}
	EXPECT_EQ(0, townd_loans_lent_w(&n.t[4].l));
	/* and the borrower, still in need, borrowed again */
	ASSERT_EQ(0, run(&n, n.now + 30, bound_of(&n.t[1].cfg, lat), why, sizeof(why)));
	EXPECT_EQ(want, townd_loans_borrowed_w(&n.t[1].l));
	EXPECT_EQ(0, n.encode_errors);
}

TEST(the_hop_limit_and_the_path)
{
	static struct net n;
	char why[200] = "";

	/* five in a chain, the surplus four hops away: out of reach at 3 */
	net_init(&n, 5, 2);
	chain(&n);
	n.t[5].surplus = 1000;
	start_all(&n);
	need(&n, 1, 500);
	ASSERT_EQ(0, run(&n, n.now + 120, bound_of(&n.t[1].cfg, 1), why, sizeof(why)));
	EXPECT_EQ(0, townd_loans_borrowed_w(&n.t[1].l));
	EXPECT_EQ(0, n.t[5].l.n.asks_recv);
	EXPECT_LT(0, n.t[4].l.n.asks_recv);
	/* within reach with a hop limit of 4 */
	net_init(&n, 5, 2);
	chain(&n);
	n.t[5].surplus = 1000;
	n.t[1].cfg.hop_limit = 4;
	start_all(&n);
	need(&n, 1, 500);
	ASSERT_EQ(0, run(&n, n.now + 120, bound_of(&n.t[1].cfg, 1), why, sizeof(why)));
	EXPECT_EQ(500, townd_loans_borrowed_w(&n.t[1].l));

	/* a ring: the asks never come back to a town on their path */
	net_init(&n, 6, 3);
	chain(&n);
	link2(&n, 6, 1);
	for (int i = 1; i <= 6; i++)
		n.t[i].cfg.hop_limit = 8;
	start_all(&n);
	need(&n, 1, 500);
	ASSERT_EQ(0, run(&n, n.now + 200, bound_of(&n.t[1].cfg, 1), why, sizeof(why)));
	EXPECT_EQ(0, townd_loans_borrowed_w(&n.t[1].l));
	for (int i = 1; i <= 6; i++) {
		EXPECT_EQ(0, n.t[i].l.n.refused) TH_LOG("town %d answered an ask that looped", i);
	}
	/* both ways round were tried: the asks reached the far side from each */
	EXPECT_LT(0, n.t[4].l.n.asks_recv);
	EXPECT_LE(2, n.t[2].l.n.asks_recv);
}

TEST(nearest_first_the_rest_further_and_surplus_declined)
{
	static struct net n;
	char why[200] = "";
	struct townd_loan_info info[8];
	size_t k;

	/* 1's neighbours: 2 (cheaper, 300 W spare) and 3 (1000 W spare) */
	net_init(&n, 3, 4);
	link2(&n, 1, 2);
	link2(&n, 1, 3);
	n.t[2].surplus = 300;
	n.t[3].surplus = 1000;
	start_all(&n);
	ASSERT_EQ(2, n.t[1].l.neigh[0].id);
	need(&n, 1, 800);
	ASSERT_EQ(0, run(&n, n.now + 30, bound_of(&n.t[1].cfg, 1), why, sizeof(why)));
	EXPECT_EQ(800, townd_loans_borrowed_w(&n.t[1].l));
	EXPECT_EQ(300, townd_loans_lent_w(&n.t[2].l));
	EXPECT_EQ(500, townd_loans_lent_w(&n.t[3].l));
	k = townd_loans_list(&n.t[1].l, info, 8);
	EXPECT_EQ(2, k);

	/* the need falls while an ask is out: the offer is declined at once */
	net_init(&n, 2, 5);
	link2(&n, 1, 2);
	n.t[2].surplus = 1000;
	n.delay_min = n.delay_max = 3;
	start_all(&n);
	need(&n, 1, 400);
	ASSERT_EQ(0, run(&n, n.now + 4, 0, why, sizeof(why)));
	EXPECT_EQ(400, townd_loans_lent_w(&n.t[2].l));	/* reserved, offered */
	need(&n, 1, 0);
	ASSERT_EQ(0, run(&n, n.now + 6, 0, why, sizeof(why)));
	EXPECT_EQ(1, n.t[1].l.n.declined);
	/* released by the decline, long before the offer's ttl */
	EXPECT_EQ(0, townd_loans_lent_w(&n.t[2].l));
	EXPECT_LT(10, n.t[2].cfg.offer_ttl_s);
	EXPECT_EQ(0, n.t[2].reports[GMP_LOAN_OPEN]);

	/* a lower need gives whole loans back, newest first */
	net_init(&n, 3, 6);
	link2(&n, 1, 2);
	link2(&n, 1, 3);
	n.t[2].surplus = 300;
	n.t[3].surplus = 1000;
	start_all(&n);
	need(&n, 1, 800);
	ASSERT_EQ(0, run(&n, n.now + 30, 0, why, sizeof(why)));
	need(&n, 1, 300);
	ASSERT_EQ(0, run(&n, n.now + 5, bound_of(&n.t[1].cfg, 1), why, sizeof(why)));
	EXPECT_EQ(300, townd_loans_borrowed_w(&n.t[1].l));
	EXPECT_EQ(0, townd_loans_lent_w(&n.t[3].l));
	EXPECT_EQ(1, n.t[3].reports[GMP_LOAN_RETURNED]);
	EXPECT_EQ(1, n.t[1].reports[GMP_LOAN_RETURNED]);

	/* a lender whose own meters want its surplus back recalls the loan */
	n.t[2].surplus = 100;
	ASSERT_EQ(0, run(&n, n.now + 40, bound_of(&n.t[1].cfg, 1), why, sizeof(why)))
		TH_LOG("%s", why);
	EXPECT_EQ(1, n.t[2].l.n.recalled);
	EXPECT_EQ(1, n.t[1].reports[GMP_LOAN_CANCELLED]);
	/* and the borrower found the 300 W again: what 2 still spares, the rest from 3 */
	EXPECT_EQ(300, townd_loans_borrowed_w(&n.t[1].l));
	EXPECT_EQ(n.t[2].surplus, townd_loans_lent_w(&n.t[2].l));
	EXPECT_EQ(300 - n.t[2].surplus, townd_loans_lent_w(&n.t[3].l));
}

TEST(two_borrowers_at_once_share_a_surplus_without_double_lending)
{
	static struct net n;
	char why[200] = "";
	const int64_t surplus = 1000, each = 600;

	/* 1 and 3 ask 2 in the same second; 2 has less than both want */
	net_init(&n, 3, 8);
	chain(&n);
	n.t[2].surplus = surplus;
	start_all(&n);
	need(&n, 1, each);
	need(&n, 3, each);
	ASSERT_EQ(0, run(&n, n.now + 30, bound_of(&n.t[1].cfg, 1), why, sizeof(why)));
	EXPECT_EQ(0, n.overbooked);
	EXPECT_EQ(0, n.t[2].l.n.recalled);
	EXPECT_EQ(surplus, townd_loans_lent_w(&n.t[2].l));
	EXPECT_EQ(surplus, townd_loans_borrowed_w(&n.t[1].l) + townd_loans_borrowed_w(&n.t[3].l));
	EXPECT_GE(each, townd_loans_borrowed_w(&n.t[1].l));
	EXPECT_GE(each, townd_loans_borrowed_w(&n.t[3].l));
}

static void open_chain_loan(struct __test_metadata *_metadata, struct net *n, char *why)
{
	net_init(n, 4, 7);
	chain(n);
	n->t[4].surplus = 1000;
	start_all(n);
	need(n, 1, 700);
	ASSERT_EQ(0, run(n, n->now + 30, bound_of(&n->t[1].cfg, 1), why, 200));
	ASSERT_EQ(700, townd_loans_borrowed_w(&n->t[1].l));
}

TEST(a_cut_link_ends_the_loan_on_every_side_within_the_lease)
{
	static struct net n;
	char why[200] = "";
	int64_t cut_at;
	const struct townd_loans_cfg *c = &n.t[1].cfg;

	open_chain_loan(_metadata, &n, why);
	cut_at = n.now;
	set_cut(&n, 2, 3, true);
	ASSERT_EQ(0, run(&n, cut_at + c->lease_s + c->refresh_s + 2, bound_of(c, 1), why,
			 sizeof(why))) TH_LOG("%s", why);
	for (int i = 1; i <= 4; i++) {
		EXPECT_EQ(1, n.t[i].reports[GMP_LOAN_CANCELLED]) TH_LOG("town %d", i);
		EXPECT_EQ(0, count(&n.t[i], TOWND_LOAN_RELAY, TOWND_LOAN_OPEN));
	}
	/* the lender has its power back; the borrower its own pool only */
	EXPECT_EQ(0, townd_loans_lent_w(&n.t[4].l));
	EXPECT_EQ(0, townd_loans_borrowed_w(&n.t[1].l));
	/* healed far away: borrowed again at the next retry (12 one-way delays after it) */
	set_cut(&n, 2, 3, false);
	ASSERT_EQ(0, run(&n, n.now + c->retry_s + 12 + 1, bound_of(c, 1), why, sizeof(why)))
		TH_LOG("%s", why);
	EXPECT_EQ(700, townd_loans_borrowed_w(&n.t[1].l));
	EXPECT_EQ(700, townd_loans_lent_w(&n.t[4].l));
	/* its own link cut and healed: it asks again as soon as the link is up */
	set_cut(&n, 1, 2, true);
	ASSERT_EQ(0, run(&n, n.now + c->lease_s + c->refresh_s + 2, bound_of(c, 1), why,
			 sizeof(why))) TH_LOG("%s", why);
	EXPECT_EQ(0, townd_loans_borrowed_w(&n.t[1].l));
	set_cut(&n, 1, 2, false);
	ASSERT_EQ(0, run(&n, n.now + 12 + 1, bound_of(c, 1), why, sizeof(why))) TH_LOG("%s", why);
	EXPECT_EQ(700, townd_loans_borrowed_w(&n.t[1].l));
	EXPECT_EQ(700, townd_loans_lent_w(&n.t[4].l));
}

TEST(restarted_towns_resume_their_loans)
{
	static struct net n;
	char why[200] = "";
	const struct townd_loans_cfg *c = &n.t[1].cfg;
	struct townd_loan_info info[4];
	int64_t id;

	open_chain_loan(_metadata, &n, why);
	ASSERT_EQ(1, townd_loans_list(&n.t[1].l, info, 4));
	id = info[0].loan_id;
	/* an intermediary and the lender lose power for less than the lease */
	town_kill(&n, 3);
	town_kill(&n, 4);
	ASSERT_EQ(0, run(&n, n.now + c->lease_s / 3, bound_of(c, 1), why, sizeof(why)));
	town_start(&n, &n.t[3]);
	town_start(&n, &n.t[4]);
	ASSERT_EQ(0, run(&n, n.now + 3 * c->lease_s, bound_of(c, 1), why, sizeof(why)))
		TH_LOG("%s", why);
	/* the same loan, open on every side, nothing reported twice */
	for (int i = 1; i <= 4; i++) {
		const struct townd_loans_seg *s = seg_of(&n.t[i], 4, id);

		ASSERT_NE(NULL, s) TH_LOG("town %d", i);
		EXPECT_EQ(TOWND_LOAN_OPEN, s->phase) TH_LOG("town %d", i);
		EXPECT_EQ(1, n.t[i].reports[GMP_LOAN_OPEN]);
		EXPECT_EQ(0, n.t[i].reports[GMP_LOAN_CANCELLED]);
	}
	EXPECT_EQ(700, townd_loans_lent_w(&n.t[4].l));
	/* a new loan of the restarted lender gets an id it never gave */
	n.t[4].surplus = 2000;
	need(&n, 1, 1400);
	ASSERT_EQ(0, run(&n, n.now + 30, bound_of(c, 1), why, sizeof(why)));
	EXPECT_EQ(1400, townd_loans_borrowed_w(&n.t[1].l));
	ASSERT_EQ(2, townd_loans_list(&n.t[1].l, info, 4));
	EXPECT_NE(info[0].loan_id, info[1].loan_id);
	EXPECT_LE(id + TOWND_LOANS_ID_SKIP, info[0].loan_id > info[1].loan_id ?
					     info[0].loan_id : info[1].loan_id);

	/* the borrower gone for longer than the lease: cancelled on every side */
	town_kill(&n, 1);
	ASSERT_EQ(0, run(&n, n.now + c->lease_s + c->refresh_s + 3, bound_of(c, 1), why,
			 sizeof(why))) TH_LOG("%s", why);
	EXPECT_EQ(0, townd_loans_lent_w(&n.t[4].l));
	town_start(&n, &n.t[1]);
	ASSERT_EQ(0, run(&n, n.now + 1, bound_of(c, 1), why, sizeof(why)));
	for (int i = 1; i <= 4; i++) {
		EXPECT_EQ(2, n.t[i].reports[GMP_LOAN_CANCELLED]) TH_LOG("town %d", i);
	}
	/* and, still in need, it borrows afresh */
	ASSERT_EQ(0, run(&n, n.now + 60, bound_of(c, 1), why, sizeof(why))) TH_LOG("%s", why);
	EXPECT_EQ(1400, townd_loans_borrowed_w(&n.t[1].l));
}

TEST(a_town_without_neighbours_keeps_its_own_pool)
{
	static struct net n;
	char why[200] = "";
	const struct townd_loans_cfg *c = &n.t[1].cfg;
	uint64_t sent;

	open_chain_loan(_metadata, &n, why);
	set_cut(&n, 1, 2, true);
	ASSERT_EQ(0, run(&n, n.now + 2 * c->lease_s, bound_of(c, 1), why, sizeof(why)));
	EXPECT_EQ(0, townd_loans_borrowed_w(&n.t[1].l));
	EXPECT_EQ(0, townd_loans_lent_w(&n.t[4].l));
	/* alone, it asks nobody and keeps going: nothing sent into a dead link */
	sent = n.t[1].l.n.asks_sent;
	ASSERT_EQ(0, run(&n, n.now + 10 * c->retry_s, bound_of(c, 1), why, sizeof(why)));
	EXPECT_EQ(sent, n.t[1].l.n.asks_sent);
	EXPECT_EQ(700, n.t[1].l.need_w);
	/* the others go on lending to each other */
	need(&n, 2, 200);
	ASSERT_EQ(0, run(&n, n.now + 30, bound_of(c, 1), why, sizeof(why)));
	EXPECT_EQ(200, townd_loans_borrowed_w(&n.t[2].l));
}

TEST(messages_from_strangers_and_bad_fields)
{
	static struct net n;
	char why[200] = "";
	struct gmp_msg m = { .type = GMP_LOAN_ASK, .loan_ask = {
		.origin = 1, .req_id = 9, .power_w = 10, .duration_s = 60, .wait_s = 30,
		.hops = 3, .path = { 0, 1 } } };
	struct townd_loan_info info[2];

	open_chain_loan(_metadata, &n, why);
	/* not a neighbour */
	EXPECT_EQ(-ENOENT, townd_loans_recv(&n.t[2].l, 4, &m, n.now));
	/* a path that does not end with the sender */
	EXPECT_EQ(-EINVAL, townd_loans_recv(&n.t[3].l, 2, &m, n.now));
	/* not a borrowing message */
	m.type = GMP_SUPPLY;
	EXPECT_EQ(-EPROTO, townd_loans_recv(&n.t[2].l, 1, &m, n.now));
	/* a neighbour that is no party to the loan can neither return nor end it */
	ASSERT_EQ(1, townd_loans_list(&n.t[3].l, info, 2));
	m = (struct gmp_msg){ .type = GMP_LOAN_RETURN, .loan_ref = {
		.lender = 4, .loan_id = info[0].loan_id, .state = GMP_LOAN_RETURNED } };
	EXPECT_EQ(-EPERM, townd_loans_recv(&n.t[3].l, 4, &m, n.now));
	m = (struct gmp_msg){ .type = GMP_LOAN_END, .loan_down = {
		.lender = 4, .loan_id = info[0].loan_id, .state = GMP_LOAN_CANCELLED } };
	EXPECT_EQ(-EPERM, townd_loans_recv(&n.t[3].l, 2, &m, n.now));
	EXPECT_EQ(TOWND_LOAN_OPEN, seg_of(&n.t[3], 4, info[0].loan_id)->phase);
	/* an ask whose path holds us is answered "nothing" */
	m = (struct gmp_msg){ .type = GMP_LOAN_ASK, .loan_ask = {
		.origin = 3, .req_id = 9, .power_w = 10, .duration_s = 60, .wait_s = 30,
		.hops = 3, .path = { 0, 3, 0, 2 } } };
	EXPECT_EQ(0, townd_loans_recv(&n.t[3].l, 2, &m, n.now));
	EXPECT_EQ(1, n.t[3].l.n.refused);
}

TEST(restore_takes_only_a_state_of_this_town)
{
	static struct net n;
	static struct townd_loans l2;
	char why[200] = "";
	uint8_t buf[TOWND_LOANS_SAVE_MAX], bad[TOWND_LOANS_SAVE_MAX];
	struct townd_loans_hooks h;
	int len, ok = 0;

	open_chain_loan(_metadata, &n, why);
	len = townd_loans_save(&n.t[3].l, buf, sizeof(buf));
	ASSERT_LT(0, len);
	EXPECT_EQ(-ENOSPC, townd_loans_save(&n.t[3].l, buf, (size_t)len - 1));
	h = hooks_of(&n.t[3]);
	ASSERT_EQ(0, townd_loans_init(&l2, &n.t[3].cfg, &h));
	for (int k = 0; k < len; k++)
		EXPECT_EQ(-EINVAL, townd_loans_restore(&l2, buf, (size_t)k));
	ASSERT_EQ(0, townd_loans_init(&l2, &n.t[2].cfg, &h));
	EXPECT_EQ(-EINVAL, townd_loans_restore(&l2, buf, (size_t)len));
	/* random damage: refused, or a state that passes every check */
	for (int round = 0; round < 20000; round++) {
		memcpy(bad, buf, (size_t)len);
		for (int k = (int)rnd_in(&n, 1, 4); k > 0; k--)
			bad[rnd_in(&n, 0, len - 1)] ^= (uint8_t)rnd_in(&n, 1, 255);
		ASSERT_EQ(0, townd_loans_init(&l2, &n.t[3].cfg, &h));
		if (townd_loans_restore(&l2, bad, (size_t)len) == 0)
			ok++;
	}
	ASSERT_EQ(0, townd_loans_init(&l2, &n.t[3].cfg, &h));
	ASSERT_EQ(0, townd_loans_restore(&l2, buf, (size_t)len));
	EXPECT_EQ(1, count(&(struct town){ .l = l2 }, TOWND_LOAN_RELAY, TOWND_LOAN_OPEN));
	printf("# %d of 20000 damaged states passed the checks\n", ok);
	fflush(stdout);
}

/*
 * Random fault sequences: random topologies, surpluses and needs; messages
 * lost and delayed; links cut and healed; towns killed and restarted from
 * their last saved state; needs and surpluses changed. The invariants are
 * checked every simulated second; at the end, with the faults gone, every
 * loan must be agreed on by both ends.
 */
TEST(random_fault_sequences_keep_the_invariants)
{
	static struct net n;
	char why[200] = "";
	uint64_t opened = 0, chained = 0, msgs = 0;
	int64_t worst = 0;

	for (uint64_t seed = 1; seed <= 40; seed++) {
		int towns;
		int64_t end, bound;

		net_init(&n, (int)(4 + seed % 5), seed);
		towns = n.n;
		chain(&n);
		link2(&n, towns, 1);
		for (int k = 0; k < 2; k++) {
			int a = (int)rnd_in(&n, 1, towns), b = (int)rnd_in(&n, 1, towns);

			if (a != b)
				link2(&n, a, b);
		}
		for (int i = 1; i <= towns; i++) {
			n.t[i].surplus = rnd(&n) % 3 ? 0 : rnd_in(&n, 100, 2000);
			n.t[i].cfg.duration_s = rnd_in(&n, 60, 900);
		}
		n.drop_pct = (unsigned int)(seed % 4) * 8;
		n.delay_min = 1;
		n.delay_max = rnd_in(&n, 1, 4);
		bound = bound_of(&n.t[1].cfg, n.delay_max);
		start_all(&n);
		for (int i = 1; i <= towns; i++)
			if (!n.t[i].surplus && rnd(&n) % 2)
				need(&n, i, rnd_in(&n, 100, 1500));
		end = n.now + 1500;
		while (n.now < end) {
			int a = (int)rnd_in(&n, 1, towns), b = (int)rnd_in(&n, 1, towns);

			switch (rnd(&n) % 8) {
			case 0:
				if (n.adj[a][b])
					set_cut(&n, a, b, !n.cut[a][b]);
				break;
			case 1:
				if (n.t[a].alive)
					town_kill(&n, a);
				else
					town_start(&n, &n.t[a]);
				break;
			case 2:
				if (n.t[a].alive)
					need(&n, a, rnd(&n) % 3 ? rnd_in(&n, 0, 1500) : 0);
				break;
			case 3:
				n.t[a].surplus = rnd(&n) % 2 ? rnd_in(&n, 0, 2000) : 0;
				break;
			default:
				break;
			}
			ASSERT_EQ(0, run(&n, n.now + rnd_in(&n, 1, 40), bound, why, sizeof(why)))
				TH_LOG("seed %llu: %s", (unsigned long long)seed, why);
		}
		/* the faults stop: everyone back, every link up, no loss */
		n.drop_pct = 0;
		for (int i = 1; i <= towns; i++)
			if (!n.t[i].alive)
				town_start(&n, &n.t[i]);
		for (int a = 1; a <= towns; a++)
			for (int b = a + 1; b <= towns; b++)
				if (n.adj[a][b] && n.cut[a][b])
					set_cut(&n, a, b, false);
		ASSERT_EQ(0, run(&n, n.now + bound + 10, bound, why, sizeof(why)))
			TH_LOG("seed %llu: %s", (unsigned long long)seed, why);
		/* only loans on their way (a confirm in flight) may disagree now */
		for (int b = 0; b < n.nbad; b++)
			EXPECT_GE(2 * n.delay_max + 2, n.now - n.bad[b].since);
		/* nobody needs anything any more: every loan closes on both ends */
		for (int i = 1; i <= towns; i++)
			need(&n, i, 0);
		ASSERT_EQ(0, run(&n, n.now + bound + 10, bound, why, sizeof(why)))
			TH_LOG("seed %llu: %s", (unsigned long long)seed, why);
		EXPECT_EQ(0, n.nbad) TH_LOG("seed %llu: %d disagreements remain",
					    (unsigned long long)seed, n.nbad);
		for (int i = 1; i <= towns; i++) {
			EXPECT_EQ(0, townd_loans_lent_w(&n.t[i].l));
			EXPECT_EQ(0, townd_loans_borrowed_w(&n.t[i].l));
			EXPECT_EQ(0, count(&n.t[i], TOWND_LOAN_RELAY, TOWND_LOAN_OPEN));
		}
		EXPECT_EQ(0, n.encode_errors);
		EXPECT_EQ(0, n.overflow);
		EXPECT_EQ(0, n.overbooked) TH_LOG("seed %llu", (unsigned long long)seed);
		EXPECT_EQ(0, n.overheld) TH_LOG("seed %llu", (unsigned long long)seed);
		for (int i = 1; i <= towns; i++) {
			opened += n.t[i].l.n.opened;
			chained += count(&n.t[i], TOWND_LOAN_RELAY, TOWND_LOAN_OPEN) +
				   count(&n.t[i], TOWND_LOAN_RELAY, TOWND_LOAN_ENDED);
			/* each town reported each loan open at most once, ended at most once */
			for (int k = 0; k < n.t[i].nrep; k++) {
				EXPECT_GE(1, n.t[i].rep[k].opens);
				EXPECT_GE(n.t[i].rep[k].opens, n.t[i].rep[k].ends);
			}
		}
		msgs += n.msgs;
		if (n.worst_disagreement > worst)
			worst = n.worst_disagreement;
	}
	/* the sequences did exercise borrowing, chained too */
	EXPECT_LT(100, opened);
	EXPECT_LT(10, chained);
	printf("# 40 sequences: %llu segments opened, %llu relayed, %llu messages, longest disagreement %lld s (bound %lld)\n",
	       (unsigned long long)opened, (unsigned long long)chained, (unsigned long long)msgs,
	       (long long)worst, (long long)bound_of(&n.t[1].cfg, 4));
	fflush(stdout);
}

TEST_HARNESS_MAIN
