// SPDX-License-Identifier: GPL-2.0
/* The server end of a gmproto v2 tier link (gmp_server.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <sodium.h>

#include <gridmeter/link.h>

#include "gmp_server.h"

#define SESSION_IDLE_S	(2 * 86400)	/* a session without frames for this long is dropped */
#define NPEERS		65536

struct gmps_session {
	struct gmp_session s;		/* s.up false: a free slot */
	uint8_t rm[GMP_RAND_LEN], rt[GMP_RAND_LEN];
	uint8_t mk, tk;			/* peer key, own key it was made under (0 current, 1 next) */
	int64_t created, last_rx;	/* UTC s; last_rx 0: no frame on it yet */
	/*
	 * What the HELLO reported, acted on only when the peer's first
	 * frame in the session proves the HELLO fresh: a replayed HELLO
	 * gets a WELCOME nobody can use and changes nothing.
	 */
	bool confirmed;
	struct gmps_hello hs;
};

struct gmps_peer {
	struct gmps_peer_state st;
	struct gmp_lt lt;		/* (st.pk, own current key), cached */
	struct gmps_session ses[GMPS_SESSIONS];
	int reply;			/* slot the peer used last: acks go there (-1 none) */
	uint8_t next_sid;
	int64_t rehello_at;		/* last REHELLO (s) */
	uint64_t ack_conn, hs_conn, rehello_conn;
	int welcome_slot;		/* a WELCOME to send from this slot (-1 none) */
	int64_t welcome_cmd_next;
	bool pending;			/* in s->pending */
	bool changed;			/* state to save */
	bool ack_pending, rehello_pending;
};

__attribute__((format(printf, 3, 4)))
static void logf_(struct gmps *s, int level, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	if (!s->h.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->h.log(s->h.ctx, level, msg);
}

int gmps_init(struct gmps *s, const struct gmp_keypair *own, uint16_t own_id,
	      const struct gmps_hooks *h)
{
	memset(s, 0, sizeof(*s));
	if (!h || !h->lookup || !h->records || !h->save || !h->commit || !h->send)
		return -1;
	s->h = *h;
	s->own_id = own_id;
	s->key = *own;
	s->peers = calloc(NPEERS, sizeof(*s->peers));
	s->unknown_checked = calloc(NPEERS, sizeof(*s->unknown_checked));
	s->pending = calloc(NPEERS, sizeof(*s->pending));
	if (!s->peers || !s->unknown_checked || !s->pending) {
		gmps_free(s);
		return -1;
	}
	randombytes_buf(&s->tx_seq, sizeof(s->tx_seq));
	return 0;
}

static void free_peer(struct gmps_peer *p)
{
	sodium_memzero(p, sizeof(*p));
	free(p);
}

void gmps_free(struct gmps *s)
{
	if (s->peers)
		for (size_t i = 0; i < NPEERS; i++)
			if (s->peers[i])
				free_peer(s->peers[i]);
	free(s->peers);
	free(s->unknown_checked);
	free(s->pending);
	s->peers = NULL;
	s->unknown_checked = NULL;
	s->pending = NULL;
	sodium_memzero(&s->key, sizeof(s->key));
	sodium_memzero(&s->key_next, sizeof(s->key_next));
}

void gmps_set_next_key(struct gmps *s, const struct gmp_keypair *next)
{
	sodium_memzero(&s->key_next, sizeof(s->key_next));
	s->have_key_next = next != NULL;
	if (next)
		s->key_next = *next;
}

void gmps_forget(struct gmps *s, int id)
{
	for (int i = id < 0 ? 0 : id; i < (id < 0 ? NPEERS : id + 1); i++) {
		if (s->peers[i] && !s->peers[i]->pending) {
			free_peer(s->peers[i]);
			s->peers[i] = NULL;
		}
		s->unknown_checked[i] = 0;
	}
}

bool gmps_connected(const struct gmps *s, uint16_t id)
{
	const struct gmps_peer *p = s->peers[id];

	if (!p)
		return false;
	for (int i = 0; i < GMPS_SESSIONS; i++)
		if (p->ses[i].s.up && p->ses[i].last_rx)
			return true;
	return false;
}

/* ---- peers and the transaction ----------------------------------------------------- */

static struct gmps_peer *lookup(struct gmps *s, uint16_t id, int64_t now)
{
	struct gmps_peer *p = s->peers[id];
	int rc;

	if (p)
		return p;
	if (s->unknown_checked[id] && now - (int64_t)s->unknown_checked[id] <
	    GMPS_UNKNOWN_RECHECK_S)
		return NULL;
	s->unknown_checked[id] = (uint32_t)(now > 0 ? now : 1);
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	rc = s->h.lookup(s->h.ctx, id, &p->st);
	if (rc != 1 || p->st.n_hellos > GMPS_HELLOS ||
	    gmp_lt_town(&p->lt, &s->key, p->st.pk)) {
		if (rc < 0)
			logf_(s, LOG_ERR, "peer %u: storage look-up failed", id);
		free_peer(p);
		return NULL;
	}
	p->st.id = id;
	p->reply = -1;
	p->welcome_slot = -1;
	p->next_sid = (uint8_t)(1 + randombytes_uniform(255));
	s->peers[id] = p;
	s->unknown_checked[id] = 0;
	return p;
}

static void pend(struct gmps *s, struct gmps_peer *p)
{
	if (!p->pending) {
		p->pending = true;
		s->pending[s->n_pending++] = p->st.id;
	}
}

/* Authentic work ahead: the batch's transaction. */
static bool begin(struct gmps *s)
{
	if (s->failed)
		return false;
	if (s->in_tx)
		return true;
	if (s->h.begin && s->h.begin(s->h.ctx)) {
		s->failed = true;	/* the flush fails: nothing is acknowledged */
		return false;
	}
	s->in_tx = true;
	return true;
}

static void check(struct gmps *s, int rc)
{
	if (rc)
		s->failed = true;
}

/* ---- handshake -------------------------------------------------------------------------- */

/* The long-term keys for peer key mk (0 pk, 1 pk_next) and own key tk. */
static int lt_for(struct gmps *s, const struct gmps_peer *p, int mk, int tk, struct gmp_lt *out)
{
	if ((mk && !p->st.has_next) || (tk && !s->have_key_next))
		return -1;
	if (!mk && !tk) {
		*out = p->lt;
		return 0;
	}
	return gmp_lt_town(out, tk ? &s->key_next : &s->key, mk ? p->st.pk_next : p->st.pk);
}

static int pick_slot(struct gmps_peer *p, int64_t now)
{
	int best = -1;

	for (int i = 0; i < GMPS_SESSIONS; i++) {
		const struct gmps_session *x = &p->ses[i];
		int64_t seen = x->last_rx > x->created ? x->last_rx : x->created;

		if (!x->s.up || seen < now - SESSION_IDLE_S)
			return i;
	}
	/* a session nobody used (a replayed HELLO, a lost WELCOME) goes first */
	for (int i = 0; i < GMPS_SESSIONS; i++)
		if (!p->ses[i].last_rx && (best < 0 || p->ses[i].created < p->ses[best].created))
			best = i;
	if (best >= 0)
		return best;
	for (int i = 0; i < GMPS_SESSIONS; i++)
		if (best < 0 || p->ses[i].last_rx < p->ses[best].last_rx)
			best = i;
	return best;
}

static uint8_t pick_sid(struct gmps_peer *p, int slot)
{
	for (;;) {
		uint8_t sid = p->next_sid++;
		bool used = false;

		if (!sid)
			continue;
		for (int i = 0; i < GMPS_SESSIONS; i++)
			used |= i != slot && p->ses[i].s.up && p->ses[i].s.sid == sid;
		if (!used)
			return sid;
	}
}

static bool hello_seen(const struct gmps_peer *p, const uint8_t rm[GMP_RAND_LEN])
{
	for (unsigned int i = 0; i < p->st.n_hellos; i++)
		if (!sodium_memcmp(p->st.hellos[i], rm, GMPS_HELLO_ID))
			return true;
	return false;
}

static void hello_remember(struct gmps_peer *p, const uint8_t rm[GMP_RAND_LEN])
{
	unsigned int keep = p->st.n_hellos < GMPS_HELLOS ? p->st.n_hellos : GMPS_HELLOS - 1;

	memmove(p->st.hellos[1], p->st.hellos[0], keep * GMPS_HELLO_ID);
	memcpy(p->st.hellos[0], rm, GMPS_HELLO_ID);	/* newest first */
	p->st.n_hellos = (uint8_t)(keep + 1);
}

/* The peer's first frame in session x: its HELLO was fresh; act on what it said. */
static void confirm(struct gmps *s, struct gmps_peer *p, struct gmps_session *x, int64_t now)
{
	if (!begin(s))
		return;
	x->hs.upto = p->st.upto;
	if (s->h.hello)
		check(s, s->h.hello(s->h.ctx, p->st.id, &x->hs, now));
	p->st.cmd_floor = x->hs.cmd_floor;
	if (x->hs.next_seq <= p->st.upto)
		logf_(s, LOG_WARNING, "peer %u: its next record is %lld but %lld are stored: it "
		      "renumbers (its state was wiped or restored)", p->st.id,
		      (long long)x->hs.next_seq, (long long)p->st.upto);
	x->confirmed = true;
	s->st.confirmed++;
}

static int handle_hello(struct gmps *s, struct gmps_peer *p, uint64_t conn,
			const struct gmp_addr *a, const uint8_t *payload, size_t len, int64_t now)
{
	uint8_t plain[GMP_PAYLOAD_MAX];
	struct gmp_lt lt;
	struct gmp_msg h, x;
	struct gmps_session *ses;
	int mk = -1, tk = -1, n = -1, slot;
	int64_t cmd_next;
	size_t off = 0;

	for (int i = 0; i < 4 && n < 0; i++) {
		if (lt_for(s, p, i / 2, i % 2, &lt))
			continue;
		n = gmp_hs_open(&lt, a, payload, len, plain, sizeof(plain));
		mk = i / 2;
		tk = i % 2;
	}
	if (n < 0) {
		s->st.auth_failed++;
		gmp_lt_wipe(&lt);
		return GMPS_REJECTED;
	}
	if (gmp_decode_next(plain, (size_t)n, &off, &h) != 1 || h.type != GMP_HELLO ||
	    gmp_decode_next(plain, (size_t)n, &off, &x) != 0) {
		s->st.malformed++;
		gmp_lt_wipe(&lt);
		sodium_memzero(plain, sizeof(plain));
		return GMPS_AUTHENTIC;	/* the peer's key made it, nothing usable in it */
	}
	sodium_memzero(plain, sizeof(plain));
	/* the same HELLO through two routes: the same WELCOME again */
	for (int i = 0; i < GMPS_SESSIONS; i++) {
		if (p->ses[i].s.up && !sodium_memcmp(p->ses[i].rm, h.hello.rm, GMP_RAND_LEN)) {
			s->st.hello_dups++;
			p->welcome_slot = i;
			p->hs_conn = conn;
			pend(s, p);
			gmp_lt_wipe(&lt);
			return GMPS_DUPLICATE;
		}
	}
	if (hello_seen(p, h.hello.rm)) {
		s->st.replayed++;
		gmp_lt_wipe(&lt);
		return GMPS_REJECTED;
	}
	if (!begin(s)) {
		gmp_lt_wipe(&lt);
		return GMPS_AUTHENTIC;
	}
	hello_remember(p, h.hello.rm);
	if (mk == 1) {
		/* the peer switched to its next key: it is its key from now on */
		logf_(s, LOG_NOTICE, "peer %u: its next key is its key now (a handshake under it)",
		      p->st.id);
		memcpy(p->st.pk, p->st.pk_next, GMP_KEY_LEN);
		sodium_memzero(p->st.pk_next, GMP_KEY_LEN);
		p->st.has_next = false;
		check(s, gmp_lt_town(&p->lt, &s->key, p->st.pk));
		for (int i = 0; i < GMPS_SESSIONS; i++)
			if (p->ses[i].mk == 1)
				p->ses[i].mk = 0;
		mk = 0;
	}
	cmd_next = h.hello.cmd_floor + 1;
	if (s->h.cmd_next)
		check(s, s->h.cmd_next(s->h.ctx, p->st.id, h.hello.cmd_floor, &cmd_next));
	if (cmd_next <= h.hello.cmd_floor)
		cmd_next = h.hello.cmd_floor + 1;
	slot = pick_slot(p, now);
	ses = &p->ses[slot];
	memset(ses, 0, sizeof(*ses));
	ses->hs = (struct gmps_hello){ h.hello.now_ms, h.hello.clock_trusted != 0,
				       h.hello.cmd_floor, h.hello.next_seq, h.hello.first_held,
				       h.hello.flags, 0 };
	memcpy(ses->rm, h.hello.rm, GMP_RAND_LEN);
	randombytes_buf(ses->rt, GMP_RAND_LEN);
	gmp_session_derive(&ses->s, &lt, ses->rm, ses->rt, pick_sid(p, slot));
	gmp_lt_wipe(&lt);
	sodium_memzero(&h, sizeof(h));
	ses->mk = (uint8_t)mk;
	ses->tk = (uint8_t)tk;
	ses->created = now;
	if (p->reply == slot)
		p->reply = -1;
	p->welcome_slot = slot;
	p->welcome_cmd_next = cmd_next;
	p->hs_conn = conn;
	p->changed = true;
	s->st.hellos++;
	pend(s, p);
	return GMPS_AUTHENTIC;
}

/* ---- session frames -------------------------------------------------------------------- */

/* Records accepted from one frame, handed to storage together. */
struct run {
	const struct gmp_msg *m[GMPS_MSGS_PER_FRAME];
	size_t n;
};

static void run_flush(struct gmps *s, struct gmps_peer *p, struct run *r, int64_t now)
{
	struct gmp_msg *batch;

	if (!r->n || s->failed)
		return;
	/* the hook takes an array: the accepted ones, contiguous */
	batch = malloc(r->n * sizeof(*batch));
	if (!batch) {
		s->failed = true;
		return;
	}
	for (size_t i = 0; i < r->n; i++)
		batch[i] = *r->m[i];
	check(s, s->h.records(s->h.ctx, p->st.id, batch, r->n, now));
	free(batch);
	r->n = 0;
}

static void take_record(struct gmps *s, struct gmps_peer *p, const struct gmp_msg *g,
			struct run *r)
{
	int64_t seq = gmp_msg_seq(g);

	if (seq <= p->st.upto) {
		s->st.duplicates++;
		return;
	}
	if (seq != p->st.upto + 1) {
		/* one before it is missing: not stored, the client resends in order */
		s->st.ahead++;
		return;
	}
	if (!begin(s))
		return;
	r->m[r->n++] = g;
	p->st.upto = seq;
	p->changed = true;
	s->st.stored++;
	if (g->type == GMP_KEY_ROTATE) {
		/* the peer's next key: a HELLO under it promotes it */
		memcpy(p->st.pk_next, g->key_rotate.pk, GMP_KEY_LEN);
		p->st.has_next = true;
		logf_(s, LOG_NOTICE, "peer %u announced its next key", p->st.id);
	}
}

static void take_lost(struct gmps *s, struct gmps_peer *p, const struct gmp_msg *g,
		      struct run *r, int64_t now)
{
	int64_t a = g->lost.first, b = g->lost.last;

	if (b <= p->st.upto) {
		s->st.duplicates++;
		return;
	}
	if (a > p->st.upto + 1) {
		s->st.ahead++;	/* records before it are missing: it comes again after them */
		return;
	}
	if (!begin(s))
		return;
	run_flush(s, p, r, now);
	if (s->h.lost)
		check(s, s->h.lost(s->h.ctx, p->st.id, p->st.upto + 1, b, now));
	logf_(s, LOG_WARNING, "peer %u: records %lld..%lld lost (it no longer holds them)",
	      p->st.id, (long long)p->st.upto + 1, (long long)b);
	s->st.lost++;
	p->st.upto = b;
	p->changed = true;
}

static bool allowed(int type)
{
	if (type == GMP_LOST || type == GMP_CMD_RESULT || type == GMP_KEY_ROTATE)
		return true;
	return gmp_type_class(type) == GMP_CLASS_TIER_UP && gmp_is_record(type);
}

static int handle_session(struct gmps *s, struct gmps_peer *p, uint64_t conn,
			  const struct gmp_addr *a, uint8_t sid, const uint8_t *payload,
			  size_t len, int64_t now)
{
	struct gmp_msg *msgs = s->msgs;
	uint8_t plain[GMP_PAYLOAD_MAX];
	struct gmps_session *x;
	struct run run = { .n = 0 };
	size_t off = 0, n = 0;
	bool urgent = false;
	int slot = -1, rc;

	for (int i = 0; i < GMPS_SESSIONS && slot < 0; i++)
		if (p->ses[i].s.up && p->ses[i].s.sid == sid)
			slot = i;
	if (slot < 0) {
		/* not a session of ours (we restarted, or a stale frame): REHELLO */
		s->st.no_session++;
		if (now - p->rehello_at >= GMPS_REHELLO_EVERY_S) {
			p->rehello_at = now;
			p->rehello_pending = true;
			p->rehello_conn = conn;
			pend(s, p);
		}
		return GMPS_REJECTED;
	}
	x = &p->ses[slot];
	rc = gmp_open(&x->s, a, payload, len, plain, sizeof(plain), NULL);
	if (rc < 0) {
		if (rc == -GMP_E_REPLAY)
			s->st.replayed++;
		else if (rc == -GMP_E_AUTH)
			s->st.auth_failed++;
		else
			s->st.truncated++;
		return GMPS_REJECTED;
	}
	if (!x->confirmed)
		confirm(s, p, x, now);
	x->last_rx = now;
	p->reply = slot;
	p->st.last_seen = now;
	p->changed = true;
	pend(s, p);
	for (;;) {
		int r = gmp_decode_next(plain, (size_t)rc, &off, &msgs[n]);

		if (r == 0)
			break;
		if (r < 0 || !allowed(msgs[n].type) || n + 1 == GMPS_MSGS_PER_FRAME) {
			s->st.malformed++;
			sodium_memzero(plain, sizeof(plain));
			return GMPS_AUTHENTIC;	/* refused whole */
		}
		n++;
	}
	sodium_memzero(plain, sizeof(plain));
	for (size_t i = 0; i < n; i++) {
		const struct gmp_msg *g = &msgs[i];

		switch (g->type) {
		case GMP_LOST:
			urgent = true;
			take_lost(s, p, g, &run, now);
			break;
		case GMP_CMD_RESULT:
			if (!begin(s))
				break;
			if (s->h.result)
				check(s, s->h.result(s->h.ctx, p->st.id, g->cmd_result.tseq,
						     g->cmd_result.status, now));
			s->st.cmd_results++;
			if (g->cmd_result.status != GMP_CMD_STORAGE &&
			    g->cmd_result.tseq > p->st.cmd_floor)
				p->st.cmd_floor = g->cmd_result.tseq;
			break;
		case GMP_KEY_ROTATE:
			urgent = true;
			take_record(s, p, g, &run);
			break;
		default:
			take_record(s, p, g, &run);
			break;
		}
	}
	run_flush(s, p, &run, now);
	if ((a->flags & GM_FLAG_ACK_REQ) || urgent) {
		p->ack_pending = true;
		p->ack_conn = conn;
	}
	return GMPS_AUTHENTIC;
}

int gmps_frame(struct gmps *s, uint64_t conn, const struct gm_hdr *h, const uint8_t *payload,
	       size_t len, int64_t now_ms)
{
	struct gmp_addr a = { .type = h->type, .flags = h->flags, .src = h->src, .dst = h->dst };
	int64_t now = now_ms / 1000;
	struct gmps_peer *p;
	uint8_t sid = 0;
	int kind;

	s->st.frames++;
	if (h->dst != s->own_id || h->type != GM_TYPE_DATA || h->src == s->own_id ||
	    h->src == GM_ID_INVALID) {
		s->st.not_for_us++;
		return GMPS_REJECTED;
	}
	kind = gmp_envelope_kind(payload, len, &sid);
	if (kind < 0) {
		if (kind == -GMP_E_VERSION)
			s->st.bad_version++;
		else
			s->st.truncated++;
		return GMPS_REJECTED;
	}
	p = lookup(s, h->src, now);
	if (!p) {
		s->st.unknown_peer++;
		return GMPS_REJECTED;
	}
	if (p->st.revoked) {
		s->st.revoked++;
		return GMPS_REJECTED;
	}
	if (kind == GMP_KIND_HANDSHAKE)
		return handle_hello(s, p, conn, &a, payload, len, now);
	return handle_session(s, p, conn, &a, sid, payload, len, now);
}

int gmps_kick(struct gmps *s, uint16_t id)
{
	struct gmps_peer *p = s->peers[id];

	if (!p || p->reply < 0 || !p->ses[p->reply].s.up)
		return -1;
	p->ack_pending = true;
	pend(s, p);
	return 0;
}

/* ---- flush ------------------------------------------------------------------------------- */

enum out_kind { OUT_ACK, OUT_WELCOME, OUT_REHELLO };

struct out_frame {
	enum out_kind kind;
	uint16_t peer;
	uint64_t conn;
	size_t len;
	uint8_t plain[GMP_PLAIN_MAX];
};

/* The plaintext of an ack: upto, then the unsettled commands (read in the transaction). */
static int prepare_ack(struct gmps *s, struct gmps_peer *p, int64_t now, struct out_frame *o)
{
	struct gmp_msg ack = { .type = GMP_ACK, .ack = { .upto = p->st.upto } };
	struct gmp_msg cmds[GMPS_CMDS_PER_ACK];
	int n = 0;

	o->kind = OUT_ACK;
	o->peer = p->st.id;
	o->conn = p->ack_conn;
	o->len = 0;
	if (gmp_encode(&ack, o->plain, sizeof(o->plain), &o->len))
		return -1;
	if (s->h.commands) {
		n = s->h.commands(s->h.ctx, p->st.id, cmds, GMPS_CMDS_PER_ACK, now);
		if (n < 0)
			return -1;
	}
	for (int i = 0; i < n && i < GMPS_CMDS_PER_ACK; i++) {
		size_t at = o->len;

		if (gmp_encode(&cmds[i], o->plain, sizeof(o->plain), &o->len)) {
			o->len = at;	/* the rest goes with the next ack */
			break;
		}
	}
	return 0;
}

static void frame_out(struct gmps *s, uint16_t dst, const uint8_t *env, int n, uint64_t conn,
		      uint64_t *counter)
{
	struct gm_hdr h = { .version = GM_VERSION, .type = GM_TYPE_ACK, .flags = 0,
			    .hop_limit = GM_HOP_DEFAULT, .src = s->own_id, .dst = dst };
	uint8_t wire[GM_MAX_WIRE];
	int w;

	if (n < 0)
		return;
	h.seq = s->tx_seq++;
	w = gm_frame_encode(&h, env, (size_t)n, wire, sizeof(wire));
	if (w < 0)
		return;
	s->h.send(s->h.ctx, conn, wire, (size_t)w);
	(*counter)++;
}

/* Seal and send one prepared frame (after the commit). */
static void seal_out(struct gmps *s, struct out_frame *o, int64_t now_ms)
{
	struct gmps_peer *p = s->peers[o->peer];
	struct gmp_addr a = { .type = GM_TYPE_ACK, .flags = 0, .src = s->own_id, .dst = o->peer };
	uint8_t env[GMP_PAYLOAD_MAX];
	struct gmp_lt lt;
	int n;

	if (!p)
		return;
	if (o->kind == OUT_ACK) {
		if (p->reply < 0 || !p->ses[p->reply].s.up)
			return;
		n = gmp_seal(&p->ses[p->reply].s, &a, o->plain, o->len, env, sizeof(env));
		frame_out(s, o->peer, env, n, o->conn, &s->st.acks);
	} else if (o->kind == OUT_WELCOME) {
		struct gmps_session *x = &p->ses[p->welcome_slot];
		struct gmp_msg w = { .type = GMP_WELCOME };

		memcpy(w.welcome.rm, x->rm, GMP_RAND_LEN);
		memcpy(w.welcome.rt, x->rt, GMP_RAND_LEN);
		w.welcome.sid = x->s.sid;
		w.welcome.now_ms = now_ms > 0 ? now_ms : 0;
		w.welcome.upto = p->st.upto;
		w.welcome.cmd_next = p->welcome_cmd_next > 0 ? p->welcome_cmd_next : 1;
		o->len = 0;
		if (gmp_encode(&w, o->plain, sizeof(o->plain), &o->len) ||
		    lt_for(s, p, x->mk, x->tk, &lt))
			return;
		sodium_memzero(&w, sizeof(w));
		n = gmp_hs_seal(&lt, &a, o->plain, o->len, env, sizeof(env));
		gmp_lt_wipe(&lt);
		frame_out(s, o->peer, env, n, o->conn, &s->st.welcomes);
	} else {
		struct gmp_msg r = { .type = GMP_REHELLO,
				     .rehello = { .reason = GMP_REHELLO_NO_SESSION } };

		o->len = 0;
		if (gmp_encode(&r, o->plain, sizeof(o->plain), &o->len))
			return;
		n = gmp_hs_seal(&p->lt, &a, o->plain, o->len, env, sizeof(env));
		frame_out(s, o->peer, env, n, o->conn, &s->st.rehellos);
	}
}

static void clear_pending(struct gmps *s)
{
	for (size_t i = 0; i < s->n_pending; i++) {
		struct gmps_peer *p = s->peers[s->pending[i]];

		if (!p)
			continue;
		p->pending = p->changed = p->ack_pending = p->rehello_pending = false;
		p->welcome_slot = -1;
	}
	s->n_pending = 0;
}

static void fail(struct gmps *s)
{
	if (s->in_tx && s->h.rollback)
		s->h.rollback(s->h.ctx);
	s->in_tx = false;
	clear_pending(s);
}

int gmps_flush(struct gmps *s, int64_t now_ms)
{
	struct out_frame *out;
	int64_t now = now_ms / 1000;
	size_t n_out = 0, n = 0;

	if (s->failed) {
		fail(s);
		return -1;
	}
	if (!s->n_pending && !s->in_tx)
		return 0;
	for (size_t i = 0; i < s->n_pending; i++) {
		const struct gmps_peer *p = s->peers[s->pending[i]];

		if (p)
			n += p->ack_pending + (p->welcome_slot >= 0) + p->rehello_pending;
	}
	out = malloc((n ? n : 1) * sizeof(*out));
	if (!out) {
		fail(s);
		s->failed = true;
		return -1;
	}
	for (size_t i = 0; i < s->n_pending && !s->failed; i++) {
		struct gmps_peer *p = s->peers[s->pending[i]];

		if (!p)
			continue;
		if (p->ack_pending && begin(s)) {
			if (prepare_ack(s, p, now, &out[n_out]))
				s->failed = true;
			else
				n_out++;
		}
		if (p->changed && begin(s))
			check(s, s->h.save(s->h.ctx, &p->st));
		if (p->welcome_slot >= 0) {
			out[n_out].kind = OUT_WELCOME;
			out[n_out].peer = p->st.id;
			out[n_out++].conn = p->hs_conn;
		}
		if (p->rehello_pending) {
			out[n_out].kind = OUT_REHELLO;
			out[n_out].peer = p->st.id;
			out[n_out++].conn = p->rehello_conn;
		}
	}
	if (!s->failed && s->in_tx && s->h.commit(s->h.ctx))
		s->failed = true;
	if (s->failed) {
		fail(s);
		sodium_memzero(out, n_out * sizeof(*out));
		free(out);
		return -1;
	}
	s->in_tx = false;
	/* acks first: a WELCOME makes the peer drop the session they are sealed in */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n_out; i++)
			if ((out[i].kind == OUT_ACK) == (pass == 0))
				seal_out(s, &out[i], now_ms);
	clear_pending(s);
	sodium_memzero(out, n_out * sizeof(*out));
	free(out);
	return 0;
}
