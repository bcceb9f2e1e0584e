// SPDX-License-Identifier: GPL-2.0
/* The client end of gmproto version 2 (gmp_client.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <sodium.h>

#include <gridmeter/link.h>

#include "gmp_client.h"

void gmpc_config_defaults(struct gmpc_config *c)
{
	memset(c, 0, sizeof(*c));
	c->ack_every = 8;
	c->ack_timeout_ms = 30000;
	c->broken_after = 2;
	c->batch = 20;
	c->window = 400;
	c->idle_ack_ms = 600000;
	c->hello_retry_ms = 5000;
	c->hello_retry_max_ms = 300000;
	c->rehello_min_ms = 10000;
	c->max_rtt_ms = 30000;
	c->session_lifetime_ms = 86400000;
	c->tail_max = 256;
}

const char *gmpc_state_name(enum gmpc_state s)
{
	switch (s) {
	case GMPC_HANDSHAKING:
		return "handshaking";
	case GMPC_UP:
		return "up";
	default:
		return "none";
	}
}

__attribute__((format(printf, 3, 4)))
static void logf_(struct gmpc *c, int level, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	if (!c->hooks.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->hooks.log(c->hooks.ctx, level, msg);
}

static uint64_t total_next(const struct gmpc *c)
{
	return c->ob->next + c->n_tail;
}

uint64_t gmpc_next(const struct gmpc *c)
{
	return total_next(c);
}

uint64_t gmpc_backlog(const struct gmpc *c)
{
	return total_next(c) - outbox_first(c->ob);
}

static int set_lt(struct gmpc *c)
{
	gmp_lt_wipe(&c->lt);
	gmp_lt_wipe(&c->lt_next);
	if (gmp_lt_meter(&c->lt, &c->cfg.key, c->cfg.town_pk))
		return -1;
	if (c->cfg.have_town_pk_next && gmp_lt_meter(&c->lt_next, &c->cfg.key,
						     c->cfg.town_pk_next))
		return -1;
	return 0;
}

/* A new handshake from now on; tries: keep the back-off (0: a fresh start). */
static void start_handshake(struct gmpc *c, int64_t now, bool fresh)
{
	if (c->state == GMPC_UP)
		gmp_session_wipe(&c->s);
	c->state = GMPC_NONE;
	c->hello_due = now;
	c->hs_started = now;
	c->ack_due = INT64_MAX;
	c->idle_due = INT64_MAX;
	if (fresh)
		c->hello_tries = 0;
}

int gmpc_init(struct gmpc *c, const struct gmpc_config *cfg, const struct gmpc_hooks *hooks,
	      struct outbox *ob, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->cfg = *cfg;
	if (hooks)
		c->hooks = *hooks;
	c->ob = ob;
	if (!cfg->meter_id || cfg->meter_id == GM_ID_INVALID || !cfg->ack_every ||
	    !cfg->batch || !cfg->window || !cfg->broken_after || !cfg->idle_ack_ms ||
	    !cfg->ack_timeout_ms || !cfg->hello_retry_ms ||
	    cfg->hello_retry_max_ms < cfg->hello_retry_ms || !cfg->session_lifetime_ms ||
	    !c->hooks.send) {
		snprintf(err, errlen, "bad uplink configuration");
		return -1;
	}
	if (set_lt(c)) {
		snprintf(err, errlen, "unusable town server public key");
		gmp_lt_wipe(&c->lt);
		return -1;
	}
	if (cfg->tail_max) {
		c->tail = calloc(cfg->tail_max, sizeof(*c->tail));
		if (!c->tail) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	c->start_next = ob->next;
	c->sent = ob->acked;
	start_handshake(c, 0, true);
	c->hello_due = INT64_MIN;		/* the first HELLO goes at once */
	c->hs_started = INT64_MIN / 4;		/* and a REHELLO may start one at once */
	if (ob->quarantined)
		logf_(c, LOG_ERR, "outbox: %s (the missing records are reported to the town "
		      "server as lost)", ob->note);
	return 0;
}

void gmpc_free(struct gmpc *c)
{
	gmp_session_wipe(&c->s);
	gmp_lt_wipe(&c->lt);
	gmp_lt_wipe(&c->lt_next);
	sodium_memzero(&c->cfg.key, sizeof(c->cfg.key));
	free(c->tail);
	c->tail = NULL;
	c->n_tail = 0;
}

void gmpc_set_status(struct gmpc *c, bool clock_trusted, unsigned int hello_flags)
{
	c->clock_trusted = clock_trusted;
	c->hello_flags = hello_flags & (GMP_HELLO_STORE_NEW | GMP_HELLO_UNCLEAN);
}

int gmpc_set_keys(struct gmpc *c, const struct gmp_keypair *key,
		  const uint8_t town_pk[GMP_KEY_LEN], const uint8_t *town_pk_next)
{
	struct gmpc_config old = c->cfg;

	c->cfg.key = *key;
	memcpy(c->cfg.town_pk, town_pk, GMP_KEY_LEN);
	c->cfg.have_town_pk_next = town_pk_next != NULL;
	if (town_pk_next)
		memcpy(c->cfg.town_pk_next, town_pk_next, GMP_KEY_LEN);
	if (set_lt(c)) {
		c->cfg = old;
		set_lt(c);
		sodium_memzero(&old, sizeof(old));
		return -1;
	}
	sodium_memzero(&old, sizeof(old));
	return 0;
}

/* ---- records ------------------------------------------------------------------ */

static bool storage_error(int rc)
{
	return rc == -ENOSPC || rc == -EIO || rc == -EDQUOT || rc == -EFBIG || rc == -EROFS ||
	       rc == -ENOMEM;
}

/* Write what the volatile tail holds to disk, oldest first, while the disk takes it. */
static void flush_tail(struct gmpc *c)
{
	size_t done = 0;
	int rc = 0;

	while (done < c->n_tail) {
		const struct gmpc_rec *r = &c->tail[done];

		rc = outbox_append(c->ob, r->seq, r->data, r->len);
		if (rc)
			break;
		done++;
	}
	if (!done)
		return;
	memmove(c->tail, c->tail + done, (c->n_tail - done) * sizeof(*c->tail));
	c->n_tail -= done;
	if (!c->n_tail)
		logf_(c, LOG_NOTICE, "outbox: the disk takes records again; every record held in "
		      "memory is on disk now");
}

/* Records of the tail the server acknowledged are settled. */
static void settle_tail(struct gmpc *c, uint64_t upto)
{
	size_t k = 0;

	while (k < c->n_tail && c->tail[k].seq <= upto)
		k++;
	memmove(c->tail, c->tail + k, (c->n_tail - k) * sizeof(*c->tail));
	c->n_tail -= k;
}

int gmpc_record(struct gmpc *c, struct gmp_msg *m)
{
	uint8_t buf[OUTBOX_REC_MAX];
	uint64_t seq = total_next(c);
	size_t len = 0;
	int rc;

	if (!gmp_is_record(m->type))
		return -EINVAL;
	gmp_msg_set_seq(m, (int64_t)seq);
	if (gmp_encode(m, buf, sizeof(buf), &len))
		return -EINVAL;
	if (c->n_tail)
		flush_tail(c);
	if (!c->n_tail) {
		rc = outbox_append(c->ob, seq, buf, len);
		if (!rc)
			return 0;
		if (!storage_error(rc))
			return rc;
	} else {
		rc = -ENOSPC;
	}
	if (c->n_tail >= c->cfg.tail_max)
		return rc;
	if (!c->n_tail)
		logf_(c, LOG_ERR, "outbox %s: %s: records are held in memory (up to %u) until "
		      "the disk takes them", c->ob->dir, strerror(-rc), c->cfg.tail_max);
	c->tail[c->n_tail].seq = seq;
	c->tail[c->n_tail].len = (uint16_t)len;
	memcpy(c->tail[c->n_tail].data, buf, len);
	c->n_tail++;
	c->volatile_records++;
	return GMPC_VOLATILE;
}

/* Rewrite a stored record's payload for its new seq (outbox_rebase). */
static int recode(void *ctx, uint64_t old_seq, uint64_t new_seq, const uint8_t *in,
		  size_t len, uint8_t *out, size_t *out_len)
{
	struct gmp_msg m;
	size_t off = 0, n = 0;

	(void)ctx;
	if (gmp_decode_next(in, len, &off, &m) != 1 || off != len ||
	    gmp_msg_seq(&m) != (int64_t)old_seq || gmp_msg_set_seq(&m, (int64_t)new_seq) ||
	    gmp_encode(&m, out, OUTBOX_REC_MAX, &n))
		return -1;
	*out_len = n;
	return 0;
}

/* Every record >= from (outbox and tail) moves up by delta. */
static int rebase(struct gmpc *c, uint64_t from, uint64_t delta)
{
	int rc = outbox_rebase(c->ob, from, delta, recode, NULL);

	if (rc)
		return rc;
	for (size_t i = 0; i < c->n_tail; i++) {
		struct gmpc_rec *r = &c->tail[i];
		uint8_t out[OUTBOX_REC_MAX];
		size_t n;

		if (r->seq < from)
			continue;
		if (recode(NULL, r->seq, r->seq + delta, r->data, r->len, out, &n))
			return -EINVAL;
		r->seq += delta;
		r->len = (uint16_t)n;
		memcpy(r->data, out, n);
	}
	c->rebases++;
	return 0;
}

/* ---- sending --------------------------------------------------------------------- */

static int seal_send(struct gmpc *c, const uint8_t *plain, size_t len, unsigned int flags)
{
	struct gmp_addr a = { .type = GM_TYPE_DATA, .flags = (uint8_t)flags,
			      .src = c->cfg.meter_id, .dst = GM_ID_SERVER };
	uint8_t env[GMP_PAYLOAD_MAX];
	int n;

	n = gmp_seal(&c->s, &a, plain, len, env, sizeof(env));
	if (n < 0)
		return -EINVAL;
	return c->hooks.send(c->hooks.ctx, flags, env, (size_t)n);
}

static int64_t hello_backoff(const struct gmpc *c)
{
	uint64_t d = c->cfg.hello_retry_ms;

	for (uint32_t i = 1; i < c->hello_tries && d < c->cfg.hello_retry_max_ms; i++)
		d *= 2;
	if (d > c->cfg.hello_retry_max_ms)
		d = c->cfg.hello_retry_max_ms;
	/* x uniform(0.5, 1.5): meters that lost the server together do not retry together */
	return (int64_t)(d / 2 + randombytes_uniform((uint32_t)d + 1));
}

static int send_hello(struct gmpc *c, int64_t now, int64_t real)
{
	struct gmp_addr a = { .type = GM_TYPE_DATA, .flags = 0, .src = c->cfg.meter_id,
			      .dst = GM_ID_SERVER };
	struct gmp_msg h = { .type = GMP_HELLO };
	uint8_t plain[GMP_HS_PLAIN_MAX], env[GMP_PAYLOAD_MAX];
	bool next = c->cfg.have_town_pk_next && c->hello_tries % 2 == 0;
	size_t len = 0;
	int n, rc;

	randombytes_buf(h.hello.rm, GMP_RAND_LEN);
	h.hello.now_ms = real > 0 ? real : 0;
	h.hello.clock_trusted = c->clock_trusted;
	h.hello.cmd_floor = (int64_t)c->ob->cmd_floor;
	h.hello.next_seq = (int64_t)total_next(c);
	h.hello.first_held = (int64_t)outbox_first(c->ob);
	h.hello.flags = c->hello_flags | (c->ob->created && !c->welcomed ? GMP_HELLO_OUTBOX_NEW : 0);
	if (gmp_encode(&h, plain, sizeof(plain), &len))
		return -EINVAL;
	n = gmp_hs_seal(next ? &c->lt_next : &c->lt, &a, plain, len, env, sizeof(env));
	sodium_memzero(plain, sizeof(plain));
	if (n < 0)
		return -EINVAL;
	rc = c->hooks.send(c->hooks.ctx, 0, env, (size_t)n);
	if (rc == -EAGAIN)
		return 0;	/* not sent: the next pump tries again */
	memcpy(c->rm, h.hello.rm, GMP_RAND_LEN);
	c->hello_next_key = next;
	c->hello_sent = now;
	c->hello_tries++;
	c->hellos++;
	c->state = GMPC_HANDSHAKING;
	c->hello_due = now + hello_backoff(c);
	sodium_memzero(&h, sizeof(h));
	return rc;
}

struct pack {
	uint8_t plain[GMP_PLAIN_MAX];
	size_t len;
	uint32_t n, max;
	uint64_t expect;	/* the next seq this frame covers */
	uint64_t last;		/* the highest seq covered (records or lost) */
	uint64_t limit;		/* window */
	bool urgent, lost;
};

/* A lost [first, last] message, if it fits. */
static bool pack_lost(struct pack *p, uint64_t first, uint64_t last)
{
	struct gmp_msg l = { .type = GMP_LOST, .lost = { (int64_t)first, (int64_t)last } };

	if (gmp_encode(&l, p->plain, sizeof(p->plain), &p->len))
		return false;
	p->last = last;
	p->expect = last + 1;
	p->lost = true;
	return true;
}

static int pack_cb(void *ctx, uint64_t seq, const uint8_t *data, size_t len)
{
	struct pack *p = ctx;
	struct gmp_msg m;
	size_t off = 0;

	if (p->n == p->max || seq > p->limit)
		return 1;
	if (seq > p->expect && !pack_lost(p, p->expect, seq - 1))
		return 1;
	if (p->len + len > sizeof(p->plain))
		return 1;
	if (gmp_decode_next(data, len, &off, &m) == 1 &&
	    (m.type == GMP_ALARM || m.type == GMP_ALLOC_REQ || m.type == GMP_ALLOC_REL ||
	     m.type == GMP_KEY_ROTATE))
		p->urgent = true;
	memcpy(p->plain + p->len, data, len);
	p->len += len;
	p->n++;
	p->last = seq;
	p->expect = seq + 1;
	return 0;
}

static int pump_session(struct gmpc *c, int64_t now)
{
	for (unsigned int burst = 0;; burst++) {
		struct pack p = { .max = c->cfg.batch };
		uint64_t first = outbox_first(c->ob), from, end = total_next(c);
		unsigned int flags = 0;
		bool full = false;
		int rc;

		from = (c->sent > c->ob->acked ? c->sent : c->ob->acked) + 1;
		p.expect = from;
		p.last = from - 1;
		p.limit = (first - 1 > c->ob->acked ? first - 1 : c->ob->acked) + c->cfg.window;
		for (size_t i = 0; i < c->n_results; i++) {
			struct gmp_msg r = { .type = GMP_CMD_RESULT, .cmd_result = {
				c->results[i].tseq, c->results[i].status } };

			gmp_encode(&r, p.plain, sizeof(p.plain), &p.len);
		}
		if (from < end) {
			rc = outbox_for_each(c->ob, from, pack_cb, &p);
			if (rc < 0)
				return rc;
			full = rc > 0;
			for (size_t i = 0; !full && i < c->n_tail; i++)
				if (c->tail[i].seq >= p.expect)
					full = pack_cb(&p, c->tail[i].seq, c->tail[i].data,
						       c->tail[i].len);
			/* nothing held up to the end: those records will never come */
			if (!full && p.expect < end && p.expect <= p.limit)
				pack_lost(&p, p.expect, end - 1);
		}
		if (!p.n && !p.lost && !c->n_results && !(c->force_req && from >= end))
			return 0;
		/*
		 * Ask for an ack: urgent records, lost, after a handshake, a
		 * rewind or a route change, every ack_every frames, and at the
		 * end of a burst of several frames (a backlog), so it is
		 * released soon.
		 */
		if (p.urgent || p.lost || c->force_req || (c->frames + 1) % c->cfg.ack_every == 0 ||
		    (burst > 0 && p.last + 1 >= end))
			flags |= GM_FLAG_ACK_REQ;
		rc = seal_send(c, p.plain, p.len, flags);
		if (rc == -EAGAIN)
			return 0;
		if (rc)
			return rc;
		c->frames++;
		c->n_results = 0;
		c->lost_sent += p.lost;
		if (p.last >= from)
			c->sent = p.last;
		if (flags & GM_FLAG_ACK_REQ) {
			c->force_req = false;
			c->req_upto = c->sent;
			c->idle_due = INT64_MAX;
			if (c->ack_due == INT64_MAX)
				c->ack_due = now + c->cfg.ack_timeout_ms;
		} else if (c->ack_due == INT64_MAX && c->idle_due == INT64_MAX) {
			c->idle_due = now + c->cfg.idle_ack_ms;
		}
	}
}

int gmpc_pump(struct gmpc *c, int64_t now, int64_t real)
{
	if (c->n_tail)
		flush_tail(c);
	if (c->state == GMPC_NONE && now >= c->hello_due)
		return send_hello(c, now, real);
	if (c->state != GMPC_UP)
		return 0;
	return pump_session(c, now);
}

/* ---- input ---------------------------------------------------------------------- */

static void queue_result(struct gmpc *c, int64_t tseq, int64_t status)
{
	if (c->n_results == GMPC_RESULTS_MAX) {
		/* the oldest goes: the server resends its command, we answer again */
		memmove(c->results, c->results + 1, (GMPC_RESULTS_MAX - 1) * sizeof(*c->results));
		c->n_results--;
	}
	c->results[c->n_results].tseq = tseq;
	c->results[c->n_results].status = status;
	c->n_results++;
}

static void command(struct gmpc *c, const struct gmp_msg *m)
{
	int64_t tseq = gmp_cmd_tseq(m), floor = (int64_t)c->ob->cmd_floor;
	int status, rc;

	if (tseq <= floor) {
		queue_result(c, tseq, GMP_CMD_DUPLICATE);
		return;
	}
	if (tseq != floor + 1)
		return;		/* the server resends in order */
	status = c->hooks.command ? c->hooks.command(c->hooks.ctx, m) : GMP_CMD_UNSUPPORTED;
	if (status < 0 || status > GMP_CMD_STATUS_MAX)
		status = GMP_CMD_INVALID;
	c->commands++;
	if (status != GMP_CMD_STORAGE) {
		/* the floor on disk before the server hears the outcome */
		rc = outbox_set_cmd(c->ob, (uint64_t)tseq);
		if (rc) {
			logf_(c, LOG_ERR, "outbox %s: recording command %lld: %s", c->ob->dir,
			      (long long)tseq, strerror(-rc));
			status = GMP_CMD_STORAGE;
		}
	}
	queue_result(c, tseq, status);
}

/* The server holds records we never made: another device uses this identity. */
static int foreign_records(struct gmpc *c, uint64_t upto)
{
	uint64_t from = c->ob->acked + 1, delta = upto - c->ob->acked;
	int rc;

	logf_(c, LOG_ERR, "uplink: the town server holds records up to %llu but this meter "
	      "made only %llu: another device uses meter id %u; renumbering ours above them",
	      (unsigned long long)upto, (unsigned long long)total_next(c) - 1, c->cfg.meter_id);
	rc = rebase(c, from, delta);
	if (rc)
		logf_(c, LOG_ERR, "outbox %s: renumbering failed: %s", c->ob->dir, strerror(-rc));
	return rc;
}

static void take_ack(struct gmpc *c, uint64_t upto, int64_t now)
{
	int rc;

	/* never acknowledge records of ours that the server does not hold */
	if (upto >= total_next(c) && foreign_records(c, upto))
		return;
	if (upto > c->ob->acked) {
		rc = outbox_ack(c->ob, upto);
		if (rc) {
			logf_(c, LOG_ERR, "outbox %s: recording the acknowledgement: %s",
			      c->ob->dir, strerror(-rc));
			return;	/* retried with the next ack */
		}
		settle_tail(c, upto);
	}
	if (c->sent < c->ob->acked)
		c->sent = c->ob->acked;
	/*
	 * The requested ack came. Records sent after the request wait for
	 * the next one (every ack_every frames, or the idle timer).
	 */
	if (c->ob->acked >= c->req_upto)
		c->ack_due = INT64_MAX;
	if (c->sent > c->ob->acked && c->idle_due == INT64_MAX)
		c->idle_due = now + c->cfg.idle_ack_ms;
	if (c->sent <= c->ob->acked)
		c->idle_due = INT64_MAX;
}

static void welcome(struct gmpc *c, const struct gmp_msg *m, bool next_key, int64_t now,
		    int64_t real)
{
	struct gmpc_welcome w = { .sid = (uint8_t)m->welcome.sid, .town_key_next = next_key };
	uint64_t upto = (uint64_t)m->welcome.upto;
	int rc;

	if (!c->welcomed && upto >= c->start_next) {
		/* the server holds records numbered like ours: ours go above them */
		w.rebase_from = c->start_next;
		w.rebase_delta = upto + 1 - c->start_next;
		logf_(c, LOG_WARNING, "uplink: the town server holds records up to %llu, this "
		      "meter's state starts at %llu (wiped or restored): renumbering its records "
		      "from %llu on by +%llu", (unsigned long long)upto,
		      (unsigned long long)c->start_next, (unsigned long long)w.rebase_from,
		      (unsigned long long)w.rebase_delta);
		rc = rebase(c, w.rebase_from, w.rebase_delta);
		if (rc) {
			/* nothing may be sent under numbers the server already holds */
			logf_(c, LOG_ERR, "outbox %s: renumbering failed: %s; trying again with "
			      "the next handshake", c->ob->dir, strerror(-rc));
			c->state = GMPC_NONE;
			return;
		}
	}
	c->welcomed = true;
	gmp_session_derive(&c->s, next_key ? &c->lt_next : &c->lt, c->rm, m->welcome.rt,
			   (uint8_t)m->welcome.sid);
	c->state = GMPC_UP;
	c->session_start = now;
	c->hello_tries = 0;
	c->missed = 0;
	c->broken = false;
	c->handshakes++;
	sodium_memzero(c->rm, sizeof(c->rm));
	if (upto < c->ob->acked) {
		/* the server lost what it had acknowledged: resend what we kept */
		logf_(c, LOG_WARNING, "uplink: the town server holds records only up to %llu of "
		      "the %llu it acknowledged (its database was restored): resending from %llu",
		      (unsigned long long)upto, (unsigned long long)c->ob->acked,
		      (unsigned long long)upto + 1);
		rc = outbox_rewind(c->ob, upto);
		if (rc)
			logf_(c, LOG_ERR, "outbox %s: %s", c->ob->dir, strerror(-rc));
		w.rewound = true;
		c->rewinds++;
	}
	take_ack(c, upto, now);
	c->sent = c->ob->acked;
	if (m->welcome.cmd_next - 1 > (int64_t)c->ob->cmd_floor) {
		rc = outbox_set_cmd(c->ob, (uint64_t)m->welcome.cmd_next - 1);
		if (rc)
			logf_(c, LOG_ERR, "outbox %s: %s", c->ob->dir, strerror(-rc));
	}
	c->force_req = true;
	c->ack_due = INT64_MAX;
	c->idle_due = INT64_MAX;
	c->n_results = 0;
	w.rtt_ms = now - c->hello_sent;
	w.town_now_ms = m->welcome.now_ms;
	w.time_ok = w.rtt_ms >= 0 && w.rtt_ms <= (int64_t)c->cfg.max_rtt_ms;
	w.offset_ms = m->welcome.now_ms + w.rtt_ms / 2 - real;
	w.uncertainty_ms = w.rtt_ms / 2 + 1;
	w.upto = m->welcome.upto;
	w.cmd_next = m->welcome.cmd_next;
	w.reg_import_mwh = m->welcome.reg_import_mwh;
	w.reg_export_mwh = m->welcome.reg_export_mwh;
	w.reg_renew_mwh = m->welcome.reg_renew_mwh;
	w.reg_time = m->welcome.reg_time;
	if (c->hooks.welcome)
		c->hooks.welcome(c->hooks.ctx, &w);
}

static int input_handshake(struct gmpc *c, const struct gmp_addr *a, const uint8_t *payload,
			   size_t len, int64_t now, int64_t real)
{
	uint8_t plain[GMP_PAYLOAD_MAX];
	bool next_key = false;
	struct gmp_msg m;
	size_t off = 0;
	int n, r;

	n = gmp_hs_open(&c->lt, a, payload, len, plain, sizeof(plain));
	if (n < 0 && c->cfg.have_town_pk_next) {
		n = gmp_hs_open(&c->lt_next, a, payload, len, plain, sizeof(plain));
		next_key = true;
	}
	if (n < 0)
		return 0;
	r = gmp_decode_next(plain, (size_t)n, &off, &m);
	if (r != 1 || gmp_type_class(m.type) != GMP_CLASS_TOWN_HS)
		return 0;
	if (m.type == GMP_REHELLO) {
		/* authentic, and replayable: it may start a handshake now and then */
		c->rehellos++;
		if (c->state == GMPC_HANDSHAKING ||
		    now - c->hs_started < (int64_t)c->cfg.rehello_min_ms)
			return 1;
		logf_(c, LOG_INFO, "uplink: the town server holds no session of ours: new "
		      "handshake");
		start_handshake(c, now, true);
		return 1;
	}
	/* a WELCOME: only the answer to the HELLO outstanding, under its key */
	if (c->state != GMPC_HANDSHAKING || next_key != c->hello_next_key ||
	    sodium_memcmp(m.welcome.rm, c->rm, GMP_RAND_LEN))
		return 0;
	welcome(c, &m, next_key, now, real);
	sodium_memzero(plain, sizeof(plain));
	return 1;
}

static int input_session(struct gmpc *c, const struct gmp_addr *a, const uint8_t *payload,
			 size_t len, int64_t now)
{
	uint8_t plain[GMP_PAYLOAD_MAX];
	struct gmp_msg m;
	size_t off = 0;
	int n, r;

	if (c->state != GMPC_UP)
		return 0;
	n = gmp_open(&c->s, a, payload, len, plain, sizeof(plain), NULL);
	if (n < 0)
		return 0;
	while ((r = gmp_decode_next(plain, (size_t)n, &off, &m)) == 1) {
		if (gmp_type_class(m.type) != GMP_CLASS_DOWN)
			break;
		if (m.type == GMP_ACK) {
			c->acks++;
			c->missed = 0;
			c->broken = false;
			take_ack(c, (uint64_t)m.ack.upto, now);
		} else {
			command(c, &m);
		}
	}
	sodium_memzero(plain, sizeof(plain));
	return 1;
}

int gmpc_input(struct gmpc *c, unsigned int type, unsigned int flags, const uint8_t *payload,
	       size_t len, int64_t now, int64_t real)
{
	struct gmp_addr a = { .type = (uint8_t)type, .flags = (uint8_t)flags,
			      .src = GM_ID_SERVER, .dst = c->cfg.meter_id };
	uint8_t sid;
	int kind = gmp_envelope_kind(payload, len, &sid), ok = 0;

	if (kind == GMP_KIND_HANDSHAKE)
		ok = input_handshake(c, &a, payload, len, now, real);
	else if (kind == GMP_KIND_SESSION)
		ok = input_session(c, &a, payload, len, now);
	if (!ok)
		c->rejected++;
	return ok;
}

/* ---- timers ---------------------------------------------------------------------- */

int64_t gmpc_deadline(const struct gmpc *c)
{
	int64_t t = c->ack_due < c->idle_due ? c->ack_due : c->idle_due;

	if (c->state != GMPC_UP && c->hello_due < t)
		t = c->hello_due;
	if (c->state == GMPC_UP && c->session_start + (int64_t)c->cfg.session_lifetime_ms < t)
		t = c->session_start + (int64_t)c->cfg.session_lifetime_ms;
	return t;
}

static void missed_one(struct gmpc *c)
{
	c->missed++;
	if (c->missed >= c->cfg.broken_after)
		c->broken = true;
}

void gmpc_tick(struct gmpc *c, int64_t now)
{
	if (c->state == GMPC_HANDSHAKING) {
		if (now >= c->hello_due) {
			/* no WELCOME: a new HELLO (fresh random) at the next pump */
			missed_one(c);
			c->state = GMPC_NONE;
		}
		return;
	}
	if (c->state != GMPC_UP)
		return;
	if (now >= c->session_start + (int64_t)c->cfg.session_lifetime_ms) {
		logf_(c, LOG_INFO, "uplink: session %u is %u s old: new handshake", c->s.sid,
		      c->cfg.session_lifetime_ms / 1000);
		start_handshake(c, now, true);
		return;
	}
	if (now >= c->idle_due) {
		/* records waited long without an ack request: ask now */
		c->idle_due = INT64_MAX;
		if (c->sent > c->ob->acked)
			c->force_req = true;
	}
	if (now < c->ack_due)
		return;
	/* the ack did not come: resend everything not acknowledged */
	c->resends++;
	c->sent = c->ob->acked;
	c->ack_due = INT64_MAX;
	c->force_req = true;
	missed_one(c);
	if (c->broken) {
		/* perhaps the server lost our session: a handshake finds out (with back-off) */
		start_handshake(c, now, false);
		c->hello_due = now;
	}
}

void gmpc_route_changed(struct gmpc *c, int64_t now)
{
	c->sent = c->ob->acked;
	c->missed = 0;
	c->broken = false;
	start_handshake(c, now, true);
}

void gmpc_rehandshake(struct gmpc *c, int64_t now)
{
	start_handshake(c, now, true);
}
