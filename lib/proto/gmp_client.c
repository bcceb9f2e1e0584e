// SPDX-License-Identifier: GPL-2.0
/* The meter's side of gmproto over its uplink (modem_uplink.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <gridmeter/link.h>

#include "gmp_client.h"

void mu_config_defaults(struct mu_config *c)
{
	memset(c, 0, sizeof(*c));
	c->ack_every = 8;
	c->ack_timeout_ms = 30000;
	c->broken_after = 2;
	c->batch = 20;
	c->window = 400;
	c->idle_ack_ms = 600000;
}

int mu_init(struct modem_uplink *u, const struct mu_config *cfg, struct outbox *ob,
	    char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	u->cfg = *cfg;
	u->ob = ob;
	if (!cfg->meter_id || cfg->meter_id == GM_ID_INVALID || !cfg->ack_every ||
	    !cfg->batch || !cfg->window || !cfg->broken_after || !cfg->idle_ack_ms ||
	    !cfg->ack_timeout_ms) {
		snprintf(err, errlen, "bad uplink configuration");
		return -1;
	}
	if (gmp_session_meter(&u->s, &cfg->key, cfg->town_pk)) {
		snprintf(err, errlen, "unusable town server public key");
		return -1;
	}
	/* counters below the reservation may have been used before a crash */
	u->s.tx_ctr = ob->ctr_ceiling;
	u->sent = ob->acked;
	u->ack_due = INT64_MAX;
	u->idle_due = INT64_MAX;
	u->force_req = true;
	u->sync_due = outbox_first(ob) > ob->acked + 1;
	return 0;
}

uint64_t mu_backlog(const struct modem_uplink *u)
{
	return u->ob->next - outbox_first(u->ob);
}

int mu_record(struct modem_uplink *u, struct gmp_msg *m)
{
	uint8_t buf[GMP_PLAIN_MAX];
	int64_t seq = (int64_t)u->ob->next;
	size_t len = 0;
	int rc;

	switch (m->type) {
	case GMP_READING:
		m->reading.seq = seq;
		break;
	case GMP_REGISTERS:
		m->regs.seq = seq;
		break;
	case GMP_ALARM:
		m->alarm.seq = seq;
		break;
	case GMP_ALLOC_REQ:
		m->alloc_req.seq = seq;
		break;
	case GMP_ALLOC_REL:
		m->alloc_rel.seq = seq;
		break;
	default:
		return -EINVAL;
	}
	rc = gmp_encode(m, buf, sizeof(buf), &len);
	if (rc)
		return -EINVAL;
	return outbox_append(u->ob, (uint64_t)seq, buf, len);
}

struct pack {
	uint8_t plain[GMP_PLAIN_MAX];
	size_t len;
	uint32_t n, max;
	uint64_t last, limit;
	bool urgent;
};

static int pack_cb(void *ctx, uint64_t seq, const uint8_t *data, size_t len)
{
	struct pack *p = ctx;
	struct gmp_msg m;
	size_t off = 0;

	if (p->n == p->max || seq > p->limit || p->len + len > sizeof(p->plain))
		return 1;
	if (gmp_decode_next(data, len, &off, &m) == 1 &&
	    (m.type == GMP_ALARM || m.type == GMP_ALLOC_REQ || m.type == GMP_ALLOC_REL))
		p->urgent = true;
	memcpy(p->plain + p->len, data, len);
	p->len += len;
	p->n++;
	p->last = seq;
	return 0;
}

static int seal_send(struct modem_uplink *u, struct pack *p, unsigned int flags,
		     mu_send_fn send, void *ctx)
{
	struct gmp_addr a = { .type = GM_TYPE_DATA, .flags = (uint8_t)flags,
			      .src = u->cfg.meter_id, .dst = GM_ID_SERVER };
	uint8_t env[GM_MAX_PAYLOAD];
	int n, rc;

	if (u->s.tx_ctr + 1 > u->ob->ctr_ceiling) {
		rc = outbox_reserve_ctr(u->ob, u->s.tx_ctr + MU_CTR_RESERVE);
		if (rc)
			return rc;
	}
	n = gmp_seal(&u->s, &a, p->plain, p->len, env, sizeof(env));
	if (n < 0)
		return -EINVAL;
	return send(ctx, flags, env, (size_t)n);
}

int mu_pump(struct modem_uplink *u, int64_t now, mu_send_fn send, void *ctx)
{
	for (unsigned int burst = 0;; burst++) {
		struct pack p = { .max = u->cfg.batch };
		uint64_t first = outbox_first(u->ob), from;
		unsigned int flags = 0;
		int rc;

		from = (u->sent > u->ob->acked ? u->sent : u->ob->acked) + 1;
		if (from < first) {
			from = first;
			u->sync_due = true;
		}
		p.limit = (first - 1 > u->ob->acked ? first - 1 : u->ob->acked) + u->cfg.window;
		if (u->mack_due) {
			struct gmp_msg k = { .type = GMP_MACK, .ack = { .upto = u->town_upto } };

			gmp_encode(&k, p.plain, sizeof(p.plain), &p.len);
		}
		if (u->sync_due || (u->force_req && from >= u->ob->next)) {
			/* sync doubles as an ack request when there is nothing to send */
			struct gmp_msg s = { .type = GMP_SYNC, .sync = { .base = (int64_t)first } };

			gmp_encode(&s, p.plain, sizeof(p.plain), &p.len);
			u->sync_due = true;
		}
		if (from < u->ob->next) {
			rc = outbox_for_each(u->ob, from, pack_cb, &p);
			if (rc < 0)
				return rc;
		}
		if (!p.n && !u->sync_due && !u->mack_due)
			return 0;
		/*
		 * Ask for an ack: urgent records, sync, after a rewind or a
		 * route change, every ack_every frames, and at the end of a
		 * burst of several frames (a backlog), so it is released soon.
		 */
		if (p.urgent || u->sync_due || u->force_req ||
		    (u->frames + 1) % u->cfg.ack_every == 0 ||
		    (burst > 0 && p.last + 1 >= u->ob->next))
			flags |= GM_FLAG_ACK_REQ;
		rc = seal_send(u, &p, flags, send, ctx);
		if (rc == -EAGAIN)
			return 0;
		if (rc)
			return rc;
		u->frames++;
		u->sync_due = false;
		u->mack_due = false;
		if (p.n)
			u->sent = p.last;
		if (flags & GM_FLAG_ACK_REQ) {
			u->force_req = false;
			u->req_upto = u->sent;
			u->idle_due = INT64_MAX;
			if (u->ack_due == INT64_MAX)
				u->ack_due = now + u->cfg.ack_timeout_ms;
		} else if (u->ack_due == INT64_MAX && u->idle_due == INT64_MAX) {
			u->idle_due = now + u->cfg.idle_ack_ms;
		}
	}
}

int mu_input(struct modem_uplink *u, unsigned int type, unsigned int flags,
	     const uint8_t *payload, size_t len, int64_t now, mu_msg_fn on_msg, void *ctx)
{
	struct gmp_addr a = { .type = (uint8_t)type, .flags = (uint8_t)flags,
			      .src = GM_ID_SERVER, .dst = u->cfg.meter_id };
	uint8_t plain[GM_MAX_PAYLOAD];
	struct gmp_msg m;
	size_t off = 0;
	int n, r;

	n = gmp_open(&u->s, &a, payload, len, plain, sizeof(plain), NULL);
	if (n < 0) {
		u->rejected++;
		return 0;
	}
	while ((r = gmp_decode_next(plain, (size_t)n, &off, &m)) == 1) {
		if (m.type == GMP_ACK) {
			uint64_t upto = (uint64_t)m.ack.upto;

			u->acks++;
			u->missed = 0;
			u->broken = false;
			if (upto > u->ob->acked && outbox_ack(u->ob, upto))
				return 1;	/* retried with the next ack */
			if (u->sent < u->ob->acked)
				u->sent = u->ob->acked;
			/*
			 * The requested ack came. Records sent after the request
			 * wait for the next one (every ack_every frames, or the
			 * idle timer).
			 */
			if (u->ob->acked >= u->req_upto)
				u->ack_due = INT64_MAX;
			if (u->sent > u->ob->acked && u->idle_due == INT64_MAX)
				u->idle_due = now + u->cfg.idle_ack_ms;
			if (u->sent <= u->ob->acked)
				u->idle_due = INT64_MAX;
		} else if (m.type == GMP_GRANT || m.type == GMP_TARIFF) {
			int64_t tseq = m.type == GMP_GRANT ? m.grant.tseq : m.tariff.tseq;

			/* the server sends the unacknowledged ones oldest first */
			u->mack_due = true;
			if (tseq <= u->town_upto)
				continue;	/* seen; the meter-ack will stop it */
			u->town_upto = tseq;
			if (on_msg)
				on_msg(ctx, &m);
		} else if (m.type >= 16 && on_msg) {
			on_msg(ctx, &m);
		}
	}
	return 1;
}

int64_t mu_deadline(const struct modem_uplink *u)
{
	return u->ack_due < u->idle_due ? u->ack_due : u->idle_due;
}

void mu_tick(struct modem_uplink *u, int64_t now)
{
	if (now >= u->idle_due) {
		/* records waited long without an ack request: ask now */
		u->idle_due = INT64_MAX;
		if (u->sent > u->ob->acked)
			u->force_req = true;
	}
	if (now < u->ack_due)
		return;
	/* the ack did not come: resend everything not acknowledged */
	u->missed++;
	u->resends++;
	u->sent = u->ob->acked;
	u->ack_due = INT64_MAX;
	u->force_req = true;
	if (u->missed >= u->cfg.broken_after)
		u->broken = true;
}

void mu_route_changed(struct modem_uplink *u)
{
	u->sent = u->ob->acked;
	u->missed = 0;
	u->broken = false;
	u->ack_due = INT64_MAX;
	u->idle_due = INT64_MAX;
	u->force_req = true;
}
