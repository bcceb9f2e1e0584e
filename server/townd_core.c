// SPDX-License-Identifier: GPL-2.0
/* townd ingest core: authenticate, decrypt, store exactly once, acknowledge. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "townd_core.h"

#define UNKNOWN_RECHECK_S	10	/* look an unknown id up again after */
#define TIME_EVERY_S		86400	/* send the time at most this often */

int townd_core_init(struct townd_core *c, const char *db_path, int sync_full,
		    const struct gmp_keypair *key, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->pending = calloc(65536, sizeof(*c->pending));
	if (!c->pending) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (tdb_open(&c->db, db_path, sync_full, err, errlen)) {
		free(c->pending);
		c->pending = NULL;
		return -1;
	}
	c->key = *key;
	randombytes_buf(&c->tx_seq, sizeof(c->tx_seq));
	return 0;
}

void townd_core_free(struct townd_core *c)
{
	for (size_t i = 0; i < 65536; i++) {
		if (c->meters[i]) {
			gmp_session_wipe(&c->meters[i]->s);
			free(c->meters[i]);
		}
	}
	tdb_close(&c->db);
	free(c->pending);
	sodium_memzero(&c->key, sizeof(c->key));
	c->pending = NULL;
}

static void win_set(void *ctx, int64_t seq)
{
	struct townd_meter *m = ctx;

	if (seq > m->upto && seq <= m->upto + 64)
		m->win |= 1ull << (seq - m->upto - 1);
}

static void win_advance(struct townd_meter *m)
{
	while (m->win & 1) {
		m->upto++;
		m->win >>= 1;
	}
}

/* Raise upto to at least v (SYNC), shifting the window. */
static void win_raise(struct townd_meter *m, int64_t v)
{
	int64_t d;

	if (v <= m->upto)
		return;
	d = v - m->upto;
	m->win = d >= 64 ? 0 : m->win >> d;
	m->upto = v;
	win_advance(m);
}

static struct townd_meter *lookup(struct townd_core *c, uint16_t id, int64_t now)
{
	struct townd_meter_row row;
	struct townd_meter *m = c->meters[id];
	int rc;

	if (m)
		return m;
	if (c->unknown_checked[id] && now - (int64_t)c->unknown_checked[id] < UNKNOWN_RECHECK_S)
		return NULL;
	c->unknown_checked[id] = (uint32_t)(now > 0 ? now : 1);
	rc = tdb_get_meter(&c->db, id, &row);
	if (rc != 1)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	if (gmp_session_town(&m->s, &c->key, row.pk)) {
		free(m);
		return NULL;
	}
	m->id = id;
	m->s.rx_ctr = row.rx_ctr;
	/* counters up to the persisted ceiling may have been used: skip them */
	m->s.tx_ctr = row.tx_ctr;
	m->tx_ceiling = row.tx_ctr;
	m->upto = row.upto;
	if (tdb_seqs_above(&c->db, id, m->upto, win_set, m)) {
		free(m);
		return NULL;
	}
	win_advance(m);
	m->send_time = true;
	c->meters[id] = m;
	c->unknown_checked[id] = 0;
	c->n_meters++;
	return m;
}

static void mark(struct townd_core *c, struct townd_meter *m)
{
	if (!m->dirty) {
		m->dirty = true;
		c->pending[c->n_pending++] = m->id;
	}
}

int townd_core_frame(struct townd_core *c, uint64_t conn, const struct gm_hdr *h,
		     const uint8_t *payload, size_t len, int64_t now)
{
	struct gmp_msg *msgs = c->msgs;
	uint8_t plain[GM_MAX_PAYLOAD];
	struct gmp_addr a = { .type = h->type, .flags = h->flags, .src = h->src, .dst = h->dst };
	struct townd_meter *m;
	size_t off = 0, n = 0;
	bool urgent = false;
	int rc;

	c->st.frames++;
	if (h->dst != GM_ID_SERVER || (h->type != GM_TYPE_DATA && h->type != GM_TYPE_ACK)) {
		c->st.not_for_us++;
		return TOWND_REJECTED;
	}
	if (tdb_begin(&c->db)) {
		c->db_failed = true;	/* flush fails: nothing is acknowledged */
		return TOWND_REJECTED;
	}
	m = lookup(c, h->src, now);
	if (!m) {
		c->st.unknown_meter++;
		return TOWND_REJECTED;
	}
	rc = gmp_open(&m->s, &a, payload, len, plain, sizeof(plain), NULL);
	if (rc < 0) {
		if (rc == -GMP_E_REPLAY)
			c->st.replayed++;
		else if (rc == -GMP_E_AUTH)
			c->st.auth_failed++;
		else
			c->st.truncated++;
		m->rejected++;	/* in memory only: junk must not cost a write */
		return TOWND_REJECTED;
	}
	mark(c, m);		/* rx counter moved */
	m->last_seen = now;
	for (;;) {
		int r = gmp_decode_next(plain, (size_t)rc, &off, &msgs[n]);

		if (r == 0)
			break;
		if (r < 0 || msgs[n].type >= 16 || n + 1 == TOWND_MSGS_PER_FRAME) {
			c->st.malformed++;
			m->rejected++;
			return TOWND_AUTHENTIC;	/* authentic, but refused whole */
		}
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		const struct gmp_msg *g = &msgs[i];
		int64_t seq = gmp_msg_seq(g);

		if (g->type == GMP_ALARM || g->type == GMP_ALLOC_REQ || g->type == GMP_ALLOC_REL)
			urgent = true;
		if (g->type == GMP_SYNC) {
			win_raise(m, g->sync.base - 1);
			continue;
		}
		if (g->type == GMP_MACK) {
			if (tdb_mack(&c->db, m->id, g->ack.upto, now))
				c->db_failed = true;
			continue;
		}
		if (!seq)
			continue;
		if (seq <= m->upto || (seq <= m->upto + 64 &&
				       (m->win >> (seq - m->upto - 1) & 1))) {
			c->st.duplicates++;
			continue;
		}
		if (seq != m->upto + 1) {
			/*
			 * A record before it is missing (lost on the way, or
			 * still coming by a slower route): not stored, so that
			 * a meter's records are stored in order. The meter's
			 * go-back-N resends it after the missing one.
			 */
			c->st.ahead++;
			continue;
		}
		rc = tdb_store(&c->db, m->id, g, now);
		if (rc < 0) {
			c->db_failed = true;	/* flush fails: nothing is acknowledged */
			continue;
		}
		if (rc == 1)
			c->st.stored++;
		else
			c->st.duplicates++;
		win_set(m, seq);
		win_advance(m);
	}
	if ((h->flags & GM_FLAG_ACK_REQ) || urgent) {
		m->ack_pending = true;
		m->ack_conn = conn;
	}
	return TOWND_AUTHENTIC;
}

struct plain_buf {
	uint8_t *buf;
	size_t len, size;
};

static int add_pending(void *ctx, int64_t tseq, const uint8_t *msg, size_t len)
{
	struct plain_buf *p = ctx;

	(void)tseq;
	if (p->len + len > p->size)
		return 1;	/* the rest goes with the next ack */
	memcpy(p->buf + p->len, msg, len);
	p->len += len;
	return 0;
}

struct out_frame {
	uint64_t conn;
	size_t len;
	uint8_t wire[GM_MAX_WIRE];
};

static int seal_ack(struct townd_core *c, struct townd_meter *m, int64_t now,
		    struct out_frame *o)
{
	struct gmp_msg ack = { .type = GMP_ACK, .ack = { .upto = m->upto } };
	struct gmp_addr a = { .type = GM_TYPE_ACK, .flags = 0, .src = GM_ID_SERVER, .dst = m->id };
	struct gm_hdr h = { .version = GM_VERSION, .type = GM_TYPE_ACK, .flags = 0,
			    .hop_limit = GM_HOP_DEFAULT, .src = GM_ID_SERVER, .dst = m->id };
	uint8_t plain[GMP_PLAIN_MAX], env[GM_MAX_PAYLOAD];
	struct plain_buf pb = { plain, 0, sizeof(plain) };
	size_t off = 0;
	int n;

	if (gmp_encode(&ack, plain, sizeof(plain), &off))
		return -1;
	if (m->send_time || now - m->time_sent >= TIME_EVERY_S) {
		struct gmp_msg t = { .type = GMP_TIME, .time = { .unix_ms = now * 1000 } };

		if (gmp_encode(&t, plain, sizeof(plain), &off))
			return -1;
		m->send_time = false;
		m->time_sent = now;
	}
	/* grants and tariffs not yet acknowledged by the meter ride along */
	pb.len = off;
	if (tdb_pending(&c->db, m->id, add_pending, &pb))
		return -1;
	off = pb.len;
	if (m->s.tx_ctr >= m->tx_ceiling)
		m->tx_ceiling = m->s.tx_ctr + TOWND_CTR_RESERVE;
	n = gmp_seal(&m->s, &a, plain, off, env, sizeof(env));
	if (n < 0)
		return -1;
	h.seq = c->tx_seq++;
	n = gm_frame_encode(&h, env, (size_t)n, o->wire, sizeof(o->wire));
	if (n < 0)
		return -1;
	o->len = (size_t)n;
	o->conn = m->ack_conn;
	return 0;
}

static int save_stats(struct townd_core *c)
{
	static const struct { const char *name; size_t off; } f[] = {
#define S(x) { #x, offsetof(struct townd_stats, x) }
		S(crc_errors), S(framing_errors), S(frames), S(not_for_us), S(unknown_meter), S(auth_failed), S(replayed),
		S(truncated), S(malformed), S(stored), S(duplicates), S(ahead), S(acks),
		S(conn_refused), S(addr_refused), S(accept_errors), S(first_frame_timeouts),
		S(idle_timeouts),
#undef S
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		uint64_t now = *(uint64_t *)((char *)&c->st + f[i].off);
		uint64_t *was = (uint64_t *)((char *)&c->st_saved + f[i].off);

		if (now != *was) {
			if (tdb_add_stat(&c->db, f[i].name, now - *was))
				return -1;
		}
	}
	c->st_saved = c->st;
	return 0;
}

int townd_core_flush(struct townd_core *c, townd_send_fn send, void *ctx)
{
	struct out_frame *out = NULL;
	size_t n_out = 0;
	int64_t now = (int64_t)time(NULL);
	int rc = 0;

	if (c->db_failed) {
		tdb_rollback(&c->db);
		return -1;
	}
	if (!c->n_pending)	/* nothing authentic: end the look-ups' transaction, write nothing */
		return tdb_commit(&c->db);
	if (tdb_begin(&c->db))
		return -1;
	if (c->n_pending) {
		out = malloc(c->n_pending * sizeof(*out));
		if (!out)
			return -1;
	}
	for (size_t i = 0; i < c->n_pending; i++) {
		struct townd_meter *m = c->meters[c->pending[i]];

		if (m->ack_pending) {
			m->ack_pending = false;
			if (!seal_ack(c, m, now, &out[n_out])) {
				n_out++;
				c->st.acks++;
			}
		}
		if (!rc && tdb_update_meter(&c->db, m->id, m->s.rx_ctr, m->tx_ceiling, m->upto,
					    m->last_seen, m->rejected))
			rc = -1;
		m->rejected = 0;
		m->dirty = false;
	}
	c->n_pending = 0;
	if (!rc)
		rc = save_stats(c);
	if (!rc)
		rc = tdb_commit(&c->db);
	if (!rc) {
		for (size_t i = 0; i < n_out; i++)
			send(ctx, out[i].conn, out[i].wire, out[i].len);
	}
	free(out);
	return rc;
}

int townd_core_save_stats(struct townd_core *c)
{
	bool rejected = false;
	int rc = 0;

	if (c->db_failed) {
		tdb_rollback(&c->db);
		return -1;
	}
	if (c->n_pending)	/* mid-batch: townd_core_flush writes the stats */
		return 0;
	for (size_t i = 0; i < 65536 && !rejected; i++)
		rejected = c->meters[i] && c->meters[i]->rejected;
	if (!rejected && !memcmp(&c->st, &c->st_saved, sizeof(c->st)))
		return tdb_commit(&c->db);
	if (tdb_begin(&c->db))
		return -1;
	for (size_t i = 0; i < 65536 && !rc; i++) {
		struct townd_meter *m = c->meters[i];

		if (m && m->rejected) {
			rc = tdb_add_rejected(&c->db, m->id, m->rejected);
			m->rejected = 0;
		}
	}
	if (!rc)
		rc = save_stats(c);
	if (!rc)
		rc = tdb_commit(&c->db);
	if (rc)
		tdb_rollback(&c->db);
	return rc;
}

int townd_key_load(const char *path, struct gmp_keypair *kp, char *err, size_t errlen)
{
	char buf[2 * GMP_KEY_LEN + 3];
	struct stat sb;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) || (sb.st_mode & 077)) {
		close(fd);
		snprintf(err, errlen, "%s: must not be accessible by group or others (mode %o)",
			 path, (unsigned int)(sb.st_mode & 0777));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (gmp_hex_decode(buf, kp->sk, GMP_KEY_LEN)) {
		sodium_memzero(buf, sizeof(buf));
		snprintf(err, errlen, "%s: expected one line of %d hex digits (a secret key)",
			 path, 2 * GMP_KEY_LEN);
		return -1;
	}
	sodium_memzero(buf, sizeof(buf));
	crypto_scalarmult_base(kp->pk, kp->sk);
	return 0;
}

int townd_key_write(const char *path, const struct gmp_keypair *kp, char *err, size_t errlen)
{
	char hex[2 * GMP_KEY_LEN + 2];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ssize_t w;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	gmp_hex_encode(kp->sk, GMP_KEY_LEN, hex);
	strcat(hex, "\n");
	w = write(fd, hex, strlen(hex));
	sodium_memzero(hex, sizeof(hex));
	if (w != 2 * GMP_KEY_LEN + 1 || fsync(fd) || close(fd)) {
		snprintf(err, errlen, "%s: write failed", path);
		return -1;
	}
	return 0;
}
