// SPDX-License-Identifier: GPL-2.0
/*
 * The town network of one town: loans over gmproto tier links
 * (townd_townnet.h, Documentation/town-network.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "townd_loans_db.h"
#include "townd_townnet.h"
#include "sendq.h"
#include "listen.h"

#define READ_CHUNK	(64 * 1024)
#define OUT_MAX		(256 * 1024)
#define IDLE_MS		(600 * 1000)	/* a neighbour's connection with no authentic frame */
#define FIRST_MS	(30 * 1000)	/* a new connection without one */
#define SETTLED_KEEP_S	86400		/* settled commands kept this long */

static void tnlog(struct townd_townnet *t, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void tnlog(struct townd_townnet *t, int level, const char *fmt, ...)
{
	char line[300];
	va_list ap;

	if (!t->h.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	t->h.log(t->h.ctx, level, line);
}

static int nb_index(const struct townd_townnet *t, uint16_t id)
{
	for (int i = 0; i < t->n; i++)
		if (t->cfg->tn.nb[i].id == id)
			return i;
	return -1;
}

/* ---- storage of the server side ------------------------------------------------------ */

int townd_townnet_schema(struct townd_db *db)
{
	static const char sql[] =
		"CREATE TABLE IF NOT EXISTS townnet_peers ("
		" id INTEGER PRIMARY KEY,"	/* the neighbour's town id */
		" upto INTEGER NOT NULL,"	/* its records <= upto are stored */
		" cmd_floor INTEGER NOT NULL,"	/* highest command tseq it settled */
		" last_seen INTEGER NOT NULL,"
		" pk_next BLOB,"		/* its announced next key */
		" hellos BLOB NOT NULL);"	/* gmp_server's HELLO memory */
		"CREATE TABLE IF NOT EXISTS townnet_commands ("
		" peer INTEGER NOT NULL,"
		" tseq INTEGER NOT NULL,"
		" msg BLOB NOT NULL,"		/* the command, CBOR (gmp_encode) */
		" made INTEGER NOT NULL,"
		" status INTEGER,"		/* enum gmp_cmd_status; NULL: no result yet */
		" PRIMARY KEY (peer, tseq));";

	return sqlite3_exec(db->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int st_lookup(void *ctx, uint16_t id, struct gmps_peer_state *out)
{
	struct townd_townnet *t = ctx;
	int i = nb_index(t, id), rc = -1;
	sqlite3_stmt *st = NULL;

	if (i < 0)
		return 0;
	memset(out, 0, sizeof(*out));
	out->id = id;
	memcpy(out->pk, t->cfg->tn.nb[i].pk, GMP_KEY_LEN);
	if (sqlite3_prepare_v2(t->db->db, "SELECT upto, cmd_floor, last_seen, pk_next, hellos"
			       " FROM townnet_peers WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, id);
	switch (sqlite3_step(st)) {
	case SQLITE_ROW: {
		int hl = sqlite3_column_bytes(st, 4);

		out->upto = sqlite3_column_int64(st, 0);
		out->cmd_floor = sqlite3_column_int64(st, 1);
		out->last_seen = sqlite3_column_int64(st, 2);
		if (sqlite3_column_bytes(st, 3) == GMP_KEY_LEN) {
			memcpy(out->pk_next, sqlite3_column_blob(st, 3), GMP_KEY_LEN);
			out->has_next = true;
		}
		if (hl % GMPS_HELLO_ID == 0 && hl / GMPS_HELLO_ID <= GMPS_HELLOS) {
			out->n_hellos = (uint8_t)(hl / GMPS_HELLO_ID);
			if (hl)
				memcpy(out->hellos, sqlite3_column_blob(st, 4), (size_t)hl);
		}
		rc = 1;
		break;
	}
	case SQLITE_DONE:
		rc = 1;
		break;
	default:
		break;
	}
	sqlite3_finalize(st);
	return rc;
}

static int st_begin(void *ctx)
{
	return tdb_begin(((struct townd_townnet *)ctx)->db);
}

static int st_records(void *ctx, uint16_t id, const struct gmp_msg *m, size_t n, int64_t now)
{
	struct townd_townnet *t = ctx;

	for (size_t k = 0; k < n; k++) {
		int rc = townd_loans_recv(&t->loans, id, &m[k], now);

		if (rc)
			tnlog(t, LOG_NOTICE, "town %u: %s refused (%s)", id, gmp_type_name(m[k].type),
			      strerror(-rc));
		if (t->failed)
			return -1;
	}
	return 0;
}

static int st_result(void *ctx, uint16_t id, int64_t tseq, int64_t status, int64_t now)
{
	struct townd_townnet *t = ctx;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	(void)now;
	if (sqlite3_prepare_v2(t->db->db, "UPDATE townnet_commands SET status = ?"
			       " WHERE peer = ? AND tseq = ? AND (status IS NULL OR status = ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, status);
	sqlite3_bind_int(st, 2, id);
	sqlite3_bind_int64(st, 3, tseq);
	sqlite3_bind_int(st, 4, GMP_CMD_STORAGE);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	sqlite3_finalize(st);
	return rc;
}

/* Lowest unsettled tseq of the peer, else one above all. */
static int st_cmd_next(void *ctx, uint16_t id, int64_t floor, int64_t *next)
{
	struct townd_townnet *t = ctx;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(t->db->db,
			       "SELECT (SELECT min(tseq) FROM townnet_commands WHERE peer = ?1 AND"
			       " (status IS NULL OR status = ?2)),"
			       " (SELECT coalesce(max(tseq), 0) FROM townnet_commands WHERE peer = ?1)",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, id);
	sqlite3_bind_int(st, 2, GMP_CMD_STORAGE);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*next = sqlite3_column_type(st, 0) == SQLITE_NULL ? sqlite3_column_int64(st, 1) + 1 :
								    sqlite3_column_int64(st, 0);
		if (*next <= floor)
			*next = floor + 1;
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

static int st_commands(void *ctx, uint16_t id, struct gmp_msg *out, size_t max, int64_t now)
{
	struct townd_townnet *t = ctx;
	sqlite3_stmt *st = NULL;
	int n = 0, step;

	(void)now;
	if (sqlite3_prepare_v2(t->db->db, "SELECT msg FROM townnet_commands WHERE peer = ? AND"
			       " (status IS NULL OR status = ?) ORDER BY tseq LIMIT ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, id);
	sqlite3_bind_int(st, 2, GMP_CMD_STORAGE);
	sqlite3_bind_int64(st, 3, (int64_t)max);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		size_t off = 0;

		if (gmp_decode_next(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
				    &off, &out[n]) == 1)
			n++;
	}
	sqlite3_finalize(st);
	return step == SQLITE_DONE ? n : -1;
}

static int st_save(void *ctx, const struct gmps_peer_state *p)
{
	struct townd_townnet *t = ctx;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(t->db->db, "INSERT OR REPLACE INTO townnet_peers VALUES"
			       " (?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, p->id);
	sqlite3_bind_int64(st, 2, p->upto);
	sqlite3_bind_int64(st, 3, p->cmd_floor);
	sqlite3_bind_int64(st, 4, p->last_seen);
	if (p->has_next)
		sqlite3_bind_blob(st, 5, p->pk_next, GMP_KEY_LEN, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_blob(st, 6, p->hellos, p->n_hellos * GMPS_HELLO_ID, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	sqlite3_finalize(st);
	return rc;
}

static int st_commit(void *ctx)
{
	return tdb_commit(((struct townd_townnet *)ctx)->db);
}

static void st_rollback(void *ctx)
{
	tdb_rollback(((struct townd_townnet *)ctx)->db);
}

static void conn_close(struct townd_townnet *t, struct townd_townnet_conn *c)
{
	if (c->fd < 0)
		return;
	if (t->epfd >= 0)
		epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_cap = 0;
}

static void conn_flush(struct townd_townnet *t, struct townd_townnet_conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (gm_sendq_drain(c->fd, c->out, &c->out_len)) {
		conn_close(t, c);
		return;
	}
	if (t->epfd >= 0) {
		ev.events |= c->out_len ? EPOLLOUT : 0;
		ev.data.u64 = t->base + 1 + TOWND_NEIGHBOUR_MAX + (uint64_t)(c - t->conn);
		epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

static void st_send(void *ctx, uint64_t conn, const uint8_t *wire, size_t len)
{
	struct townd_townnet *t = ctx;
	struct townd_townnet_conn *c;

	if (conn >= TOWND_TOWNNET_CONNS || t->conn[conn].fd < 0)
		return;
	c = &t->conn[conn];
	if (c->out_len + len > OUT_MAX) {
		conn_close(t, c);
		return;
	}
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap * 2 : 4096;
		uint8_t *p;

		while (cap < c->out_len + len)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p) {
			conn_close(t, c);
			return;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, wire, len);
	c->out_len += len;
	conn_flush(t, c);
}

static void st_log(void *ctx, int level, const char *msg)
{
	tnlog(ctx, level, "town network: %s", msg);
}

/* ---- the loans' hooks ----------------------------------------------------------------- */

/* A command to neighbour `to`, queued in SQLite until it has a result. */
static int queue_command(struct townd_townnet *t, uint16_t to, const struct gmp_msg *m)
{
	struct gmp_msg c = *m;
	struct gmps_peer_state ps;
	uint8_t buf[GMP_PLAIN_MAX];
	sqlite3_stmt *st = NULL;
	int64_t next = 0;
	size_t off = 0;
	bool own = !t->db->in_tx;
	int rc = -1;

	if (st_lookup(t, to, &ps) != 1 || (own && tdb_begin(t->db)) ||
	    st_cmd_next(t, to, ps.cmd_floor, &next))
		goto out;
	/* above every command ever queued for it, unsettled ones included */
	if (sqlite3_prepare_v2(t->db->db, "SELECT coalesce(max(tseq), 0) FROM townnet_commands"
			       " WHERE peer = ?", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int(st, 1, to);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) >= next)
		next = sqlite3_column_int64(st, 0) + 1;
	sqlite3_finalize(st);
	st = NULL;
	gmp_cmd_set_tseq(&c, next);
	if (gmp_encode(&c, buf, sizeof(buf), &off) ||
	    sqlite3_prepare_v2(t->db->db, "INSERT INTO townnet_commands VALUES (?, ?, ?, ?, NULL)",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int(st, 1, to);
	sqlite3_bind_int64(st, 2, next);
	sqlite3_bind_blob(st, 3, buf, (int)off, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, t->now);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
out:
	sqlite3_finalize(st);
	if (own)
		rc = rc ? (tdb_rollback(t->db), -1) : tdb_commit(t->db);
	if (!rc) {
		t->cmds_queued++;
		gmps_kick(&t->srv, to);
	}
	return rc;
}

static void loans_send(void *ctx, uint16_t to, const struct gmp_msg *m)
{
	struct townd_townnet *t = ctx;
	int i = nb_index(t, to);

	if (i < 0)
		return;
	if (gmp_is_record(m->type)) {
		struct gmp_msg r = *m;

		if (t->tier_open[i] && townd_tier_record(&t->tier[i], &r))
			tnlog(t, LOG_WARNING, "town %u: %s not stored in the outbox", to,
			      gmp_type_name(m->type));
	} else if (queue_command(t, to, m)) {
		tnlog(t, LOG_ERR, "town %u: %s not queued: %s", to, gmp_type_name(m->type),
		      sqlite3_errmsg(t->db->db));
		t->failed = true;
	}
}

static void loans_report(void *ctx, const struct gmp_msg *loan)
{
	struct townd_townnet *t = ctx;
	struct gmp_msg m = *loan;

	t->reports++;
	if (t->h.report)
		t->h.report(t->h.ctx, &m);
}

static int64_t loans_surplus(void *ctx, int64_t now)
{
	(void)now;
	return ((struct townd_townnet *)ctx)->surplus_w;
}

static void loans_log(void *ctx, const char *line)
{
	tnlog(ctx, LOG_INFO, "loans: %s", line);
}

/* ---- the client links' hooks ----------------------------------------------------------- */

static int on_command(void *ctx, const struct gmp_msg *m)
{
	struct townd_townnet_link *l = ctx;
	struct townd_townnet *t = l->tn;
	int rc = townd_loans_recv(&t->loans, t->cfg->tn.nb[l->i].id, m, t->now);

	if (rc == -EPROTO || rc == -EINVAL)
		return GMP_CMD_INVALID;
	return GMP_CMD_OK;
}

static void on_tier_log(void *ctx, int level, const char *msg)
{
	struct townd_townnet_link *l = ctx;

	tnlog(l->tn, level, "%s", msg);
}

/* ---- set-up ------------------------------------------------------------------------------ */

int townd_townnet_init(struct townd_townnet *t, const struct townd_config *cfg,
		       struct townd_db *db, const struct gmp_keypair *town_key,
		       const struct townd_townnet_hooks *h, int listen_fd, char *err,
		       size_t errlen)
{
	const struct gmps_hooks sh = {
		.ctx = t, .lookup = st_lookup, .begin = st_begin, .records = st_records,
		.result = st_result, .cmd_next = st_cmd_next, .commands = st_commands,
		.save = st_save, .commit = st_commit, .rollback = st_rollback, .send = st_send,
		.log = st_log,
	};
	const struct townd_loans_hooks lh = { .ctx = t, .send = loans_send,
					      .report = loans_report,
					      .surplus_w = loans_surplus, .log = loans_log };
	struct townd_loans_cfg lc;

	memset(t, 0, sizeof(*t));
	t->cfg = cfg;
	t->db = db;
	t->h = *h;
	t->lfd = listen_fd;
	t->epfd = -1;
	for (int i = 0; i < TOWND_TOWNNET_CONNS; i++)
		t->conn[i].fd = -1;
	t->n = (int)cfg->tn.n;
	if (!t->n) {
		if (listen_fd >= 0)
			close(listen_fd);
		t->lfd = -1;
		return 0;
	}
	townd_loans_defaults(&lc, cfg->up.town_id);
	lc.hop_limit = (int)cfg->tn.hop_limit;
	lc.duration_s = cfg->tn.loan_duration_s;
	lc.lease_s = cfg->tn.lease_s;
	if (lc.refresh_s * 3 > lc.lease_s)
		lc.refresh_s = lc.lease_s / 3;
	if (townd_loans_init(&t->loans, &lc, &lh)) {
		snprintf(err, errlen, "[town_network]: bad loan timers");
		goto fail;
	}
	for (int i = 0; i < t->n; i++)
		townd_loans_add_neighbour(&t->loans, cfg->tn.nb[i].id, cfg->tn.nb[i].cost);
	if (townd_townnet_schema(db) || tln_schema(db)) {
		snprintf(err, errlen, "%s: %s", cfg->database, sqlite3_errmsg(db->db));
		goto fail;
	}
	if (tln_load(db, &t->loans, err, errlen) < 0)
		goto fail;
	t->saved = t->loans.changes;
	t->buf = malloc(READ_CHUNK);
	if (!t->buf || gmps_init(&t->srv, town_key, GM_ID_SERVER, &sh)) {
		snprintf(err, errlen, "town network: out of memory");
		goto fail;
	}
	t->srv_open = true;
	if (t->lfd < 0 && cfg->tn.listen_len) {
		char why[200];

		t->lfd = gm_listen(&cfg->tn.listen, cfg->tn.listen_len, 64, why, sizeof(why));
		if (t->lfd < 0) {
			snprintf(err, errlen, "[town_network] listen: %s", why);
			goto fail;
		}
	}
	for (int i = 0; i < t->n; i++) {
		const struct townd_neighbour_config *nb = &cfg->tn.nb[i];
		struct townd_tier_hooks th = { .ctx = &t->link[i], .command = on_command,
					       .log = on_tier_log };
		struct townd_tier_config tc;

		t->link[i] = (struct townd_townnet_link){ .tn = t, .i = i };
		townd_tier_defaults(&tc);
		snprintf(tc.name, sizeof(tc.name), "neighbour %u", nb->id);
		tc.addr = nb->addr;
		tc.addr_len = nb->addr_len;
		tc.own_id = cfg->up.town_id;
		tc.key = *town_key;
		memcpy(tc.peer_pk, nb->pk, GMP_KEY_LEN);
		snprintf(tc.outbox, sizeof(tc.outbox), "%s", nb->outbox);
		tc.outbox_max_bytes = 64u << 20;
		if (townd_tier_open(&t->tier[i], &tc, &th, err, errlen)) {
			memset(&tc.key, 0, sizeof(tc.key));
			goto fail;
		}
		memset(&tc.key, 0, sizeof(tc.key));
		t->tier_open[i] = true;
	}
	return 0;
fail:
	townd_townnet_free(t);
	return -1;
}

void townd_townnet_free(struct townd_townnet *t)
{
	for (int i = 0; i < TOWND_TOWNNET_CONNS; i++)
		conn_close(t, &t->conn[i]);
	for (int i = 0; i < TOWND_NEIGHBOUR_MAX; i++)
		if (t->tier_open[i]) {
			townd_tier_close(&t->tier[i]);
			t->tier_open[i] = false;
		}
	if (t->srv_open)
		gmps_free(&t->srv);
	t->srv_open = false;
	if (t->lfd >= 0)
		close(t->lfd);
	t->lfd = -1;
	free(t->buf);
	t->buf = NULL;
}

int townd_townnet_attach(struct townd_townnet *t, int epfd, uint64_t base)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = base };

	t->epfd = epfd;
	t->base = base;
	if (t->lfd >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, t->lfd, &ev))
		return -1;
	for (int i = 0; i < t->n; i++)
		townd_tier_attach(&t->tier[i], epfd, base + 1 + (uint64_t)i);
	return 0;
}

/* ---- running ---------------------------------------------------------------------------- */

static void do_accept(struct townd_townnet *t, int64_t mono)
{
	for (;;) {
		int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), i;
		struct epoll_event ev = { .events = EPOLLIN };

		if (fd < 0)
			return;
		for (i = 0; i < TOWND_TOWNNET_CONNS && t->conn[i].fd >= 0; i++)
			;
		if (i == TOWND_TOWNNET_CONNS) {
			/* full: the oldest connection that never proved itself goes */
			for (i = 0; i < TOWND_TOWNNET_CONNS && t->conn[i].authentic; i++)
				;
			if (i == TOWND_TOWNNET_CONNS) {
				t->conns_refused++;
				close(fd);
				continue;
			}
			conn_close(t, &t->conn[i]);
		}
		t->conns_accepted++;
		t->conn[i].fd = fd;
		t->conn[i].authentic = false;
		t->conn[i].since_ms = mono;
		gm_rx_init(&t->conn[i].rx);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
		ev.data.u64 = t->base + 1 + TOWND_NEIGHBOUR_MAX + (uint64_t)i;
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev))
			conn_close(t, &t->conn[i]);
	}
}

static void do_read(struct townd_townnet *t, int k, int64_t mono, int64_t real_ms)
{
	struct townd_townnet_conn *c = &t->conn[k];

	for (;;) {
		ssize_t r = recv(c->fd, t->buf, READ_CHUNK, MSG_DONTWAIT);
		size_t off = 0;

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_close(t, c);
			return;
		}
		if (r < 0)
			return;
		while (off < (size_t)r && c->fd >= 0) {
			enum gm_rx_status st;

			off += gm_rx_feed(&c->rx, t->buf + off, (size_t)r - off, &st);
			if (st == GM_RX_FRAME &&
			    gmps_frame(&t->srv, (uint64_t)k, &c->rx.hdr, c->rx.payload,
				       c->rx.payload_len, real_ms) == GMPS_AUTHENTIC) {
				c->authentic = true;
				c->since_ms = mono;
			}
		}
		if (c->fd < 0)
			return;
	}
}

/*
 * After every event and tick: commit the server's batch, save the loans,
 * send what the loans put in the outboxes.
 */
static int settle(struct townd_townnet *t, int64_t mono_ms, int64_t real_ms)
{
	for (int i = 0; i < t->n; i++)
		townd_tier_pump(&t->tier[i], mono_ms, real_ms);
	if (gmps_flush(&t->srv, real_ms) || t->failed) {
		t->failed = true;
		return -1;
	}
	if (t->loans.changes != t->saved) {
		if (tln_save(t->db, &t->loans, t->now)) {
			t->failed = true;
			return -1;
		}
		t->saved = t->loans.changes;
	}
	return 0;
}

int townd_townnet_event(struct townd_townnet *t, uint64_t token, uint32_t events,
			int64_t mono_ms, int64_t real_ms)
{
	uint64_t k = token - t->base;

	if (!t->n)
		return 0;
	t->now = real_ms / 1000;
	if (k == 0) {
		do_accept(t, mono_ms);
	} else if (k <= TOWND_NEIGHBOUR_MAX) {
		if ((int)k - 1 < t->n)
			townd_tier_event(&t->tier[k - 1], events, mono_ms, real_ms);
	} else if (k < TOWND_TOWNNET_TOKENS) {
		struct townd_townnet_conn *c = &t->conn[k - 1 - TOWND_NEIGHBOUR_MAX];

		if (c->fd >= 0 && events & EPOLLOUT)
			conn_flush(t, c);
		if (c->fd >= 0 && events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			do_read(t, (int)(k - 1 - TOWND_NEIGHBOUR_MAX), mono_ms, real_ms);
	}
	return settle(t, mono_ms, real_ms);
}

int townd_townnet_tick(struct townd_townnet *t, int64_t mono_ms, int64_t real_ms)
{
	int64_t need = 0, surplus = 0;
	sqlite3_stmt *st = NULL;

	if (!t->n)
		return 0;
	t->now = real_ms / 1000;
	for (int i = 0; i < TOWND_TOWNNET_CONNS; i++) {
		struct townd_townnet_conn *c = &t->conn[i];

		if (c->fd >= 0 && mono_ms - c->since_ms > (c->authentic ? IDLE_MS : FIRST_MS))
			conn_close(t, c);
	}
	for (int i = 0; i < t->n; i++) {
		townd_tier_tick(&t->tier[i], mono_ms, real_ms);
		townd_loans_link(&t->loans, t->cfg->tn.nb[i].id, townd_tier_up(&t->tier[i]),
				 t->now);
	}
	if (t->h.balance)
		t->h.balance(t->h.ctx, townd_loans_borrowed_w(&t->loans),
			     townd_loans_lent_w(&t->loans), &need, &surplus);
	t->surplus_w = surplus;
	townd_loans_need(&t->loans, need, t->now);
	townd_loans_tick(&t->loans, t->now);
	/* settled commands are kept a day, for townctl and audits */
	if (sqlite3_prepare_v2(t->db->db, "DELETE FROM townnet_commands WHERE status IS NOT NULL"
			       " AND status != ? AND made < ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int(st, 1, GMP_CMD_STORAGE);
		sqlite3_bind_int64(st, 2, t->now - SETTLED_KEEP_S);
		sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return settle(t, mono_ms, real_ms);
}
