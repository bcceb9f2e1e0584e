// SPDX-License-Identifier: GPL-2.0
/* A minimal main server for townd's host tests (mainsim.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "gm_frame.h"
#include "mainsim.h"

int mainsim_setup(struct mainsim *m, const char *dir, const uint8_t town_pk[GMP_KEY_LEN],
		  uint16_t town_id, int64_t supply_w)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	memset(m, 0, sizeof(*m));
	gmp_keypair_generate(&m->kp);
	memcpy(m->town_pk, town_pk, GMP_KEY_LEN);
	m->town_id = town_id;
	m->supply_w = supply_w;
	snprintf(m->db, sizeof(m->db), "%s/main.db", dir);
	m->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (m->lfd < 0 || bind(m->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(m->lfd, 64) || getsockname(m->lfd, (struct sockaddr *)&sa, &sl))
		return -1;
	m->port = ntohs(sa.sin_port);
	return 0;
}

struct serve {
	struct mainsim *m;
	sqlite3 *db;
	struct gmp_lt lt;
	struct gmp_session s;
	uint8_t sid;
	int fd;
	int64_t upto;
	uint16_t tx_seq;
};

static void count(struct serve *v, const char *name, int64_t d)
{
	char sql[200];

	snprintf(sql, sizeof(sql), "INSERT INTO counters VALUES ('%s', %lld) ON CONFLICT (name) "
		 "DO UPDATE SET value = value + excluded.value", name, (long long)d);
	sqlite3_exec(v->db, sql, NULL, NULL, NULL);
}

static int64_t q1(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t r = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		r = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r;
}

static void out(struct serve *v, const uint8_t *env, int n)
{
	struct gm_hdr h = { .version = GM_VERSION, .type = GM_TYPE_ACK, .flags = 0,
			    .hop_limit = GM_HOP_DEFAULT, .src = GM_ID_SERVER,
			    .dst = v->m->town_id, .seq = v->tx_seq++ };
	uint8_t wire[GM_MAX_WIRE];
	int w;

	if (n < 0)
		return;
	w = gm_frame_encode(&h, env, (size_t)n, wire, sizeof(wire));
	if (w > 0 && send(v->fd, wire, (size_t)w, MSG_NOSIGNAL) == w)
		count(v, "bytes_out", w);
}

static void store(struct serve *v, const struct gmp_msg *m)
{
	int64_t seq = gmp_msg_seq(m);
	sqlite3_stmt *st;

	if (seq <= v->upto) {
		count(v, "dup_records", 1);
		return;
	}
	if (seq != v->upto + 1)
		return;		/* ahead: it comes again in order */
	if (sqlite3_prepare_v2(v->db, "INSERT INTO recs VALUES (?,?,?,?,?,?,?,?,?,?,?)", -1, &st,
			       NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int(st, 2, m->type);
	if (m->type == GMP_HOUR) {
		const int64_t f[] = { m->hour.meter, m->hour.hour, m->hour.period,
				      m->hour.import_mwh, m->hour.export_mwh, m->hour.renew_mwh,
				      m->hour.readings, m->hour.flags, m->hour.rev };

		for (int i = 0; i < 9; i++)
			sqlite3_bind_int64(st, 3 + i, f[i]);
	} else if (m->type == GMP_TOWN_HOUR) {
		const int64_t f[] = { 0, m->town_hour.hour, 0, m->town_hour.import_mwh,
				      m->town_hour.export_mwh, m->town_hour.renew_mwh,
				      m->town_hour.meters, m->town_hour.flags, m->town_hour.rev };

		for (int i = 0; i < 9; i++)
			sqlite3_bind_int64(st, 3 + i, f[i]);
	}
	if (sqlite3_step(st) == SQLITE_DONE)
		v->upto = seq;
	sqlite3_finalize(st);
	if (v->upto == seq && (m->type == GMP_CMD_REPORT || m->type == GMP_METER_ALARM ||
			       m->type == GMP_SECURITY)) {
		int64_t f[8] = { seq, m->type };

		if (m->type == GMP_CMD_REPORT) {
			f[2] = m->cmd_report.time;
			f[3] = m->cmd_report.cmd_id;
			f[4] = m->cmd_report.meter;
			f[5] = m->cmd_report.state;
			f[6] = m->cmd_report.status;
		} else if (m->type == GMP_METER_ALARM) {
			f[2] = m->meter_alarm.time;
			f[3] = m->meter_alarm.meter;
			f[4] = m->meter_alarm.code;
			f[5] = m->meter_alarm.active;
			f[6] = m->meter_alarm.value;
		} else {
			f[2] = m->security.time;
			f[3] = m->security.interval_s;
			f[4] = m->security.meter;
			f[5] = m->security.addr;
			f[6] = m->security.kind;
			f[7] = m->security.count;
		}
		if (sqlite3_prepare_v2(v->db, "INSERT INTO reps VALUES (?,?,?,?,?,?,?,?)", -1, &st,
				       NULL) != SQLITE_OK)
			return;
		for (int i = 0; i < 8; i++)
			sqlite3_bind_int64(st, i + 1, f[i]);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
}

/* Commands a test queued that the town has not settled, as plaintext after *ol. */
static void queued_cmds(struct serve *v, uint8_t *plain, size_t size, size_t *ol)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(v->db, "SELECT body FROM outq WHERE tseq NOT IN (SELECT tseq "
			       "FROM cmds) ORDER BY tseq LIMIT 2", -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);

		if (*ol + n > size)
			break;
		memcpy(plain + *ol, sqlite3_column_blob(st, 0), n);
		*ol += n;
	}
	sqlite3_finalize(st);
}

/* Unasked: what is queued, when there is a session (every 200 ms at most). */
static void push_cmds(struct serve *v)
{
	struct gmp_addr o = { .type = GM_TYPE_ACK, .flags = 0, .src = GM_ID_SERVER,
			      .dst = v->m->town_id };
	uint8_t plain[GMP_PLAIN_MAX], env[GMP_PAYLOAD_MAX];
	size_t ol = 0;

	if (v->fd < 0 || !v->s.up)
		return;
	queued_cmds(v, plain, sizeof(plain), &ol);
	if (ol)
		out(v, env, gmp_seal(&v->s, &o, plain, ol, env, sizeof(env)));
}

static void handshake(struct serve *v, const struct gmp_addr *a, const uint8_t *p, size_t len)
{
	struct gmp_addr o = { .type = GM_TYPE_ACK, .flags = 0, .src = GM_ID_SERVER,
			      .dst = v->m->town_id };
	uint8_t plain[GMP_PAYLOAD_MAX], env[GMP_PAYLOAD_MAX];
	struct gmp_msg h, w = { .type = GMP_WELCOME };
	size_t off = 0, wl = 0;
	int n = gmp_hs_open(&v->lt, a, p, len, plain, sizeof(plain));

	if (n < 0 || gmp_decode_next(plain, (size_t)n, &off, &h) != 1 || h.type != GMP_HELLO)
		return;
	count(v, "hellos", 1);
	memcpy(w.welcome.rm, h.hello.rm, GMP_RAND_LEN);
	randombytes_buf(w.welcome.rt, GMP_RAND_LEN);
	v->sid = (uint8_t)(v->sid % 255 + 1);
	w.welcome.sid = v->sid;
	w.welcome.now_ms = (int64_t)time(NULL) * 1000;
	w.welcome.upto = v->upto;
	w.welcome.cmd_next = q1(v->db, "SELECT COALESCE(MAX(tseq), 0) + 1 FROM cmds");
	gmp_session_derive(&v->s, &v->lt, h.hello.rm, w.welcome.rt, v->sid);
	if (gmp_encode(&w, plain, sizeof(plain), &wl))
		return;
	out(v, env, gmp_hs_seal(&v->lt, &o, plain, wl, env, sizeof(env)));
}

static void session(struct serve *v, const struct gmp_addr *a, const uint8_t *p, size_t len)
{
	struct gmp_addr o = { .type = GM_TYPE_ACK, .flags = 0, .src = GM_ID_SERVER,
			      .dst = v->m->town_id };
	uint8_t plain[GMP_PAYLOAD_MAX], env[GMP_PAYLOAD_MAX];
	struct gmp_msg m;
	size_t off = 0, ol = 0;
	int n = gmp_open(&v->s, a, p, len, plain, sizeof(plain), NULL);

	if (n < 0)
		return;
	sqlite3_exec(v->db, "BEGIN", NULL, NULL, NULL);
	while (gmp_decode_next(plain, (size_t)n, &off, &m) == 1) {
		if (gmp_is_record(m.type)) {
			store(v, &m);
		} else if (m.type == GMP_LOST && m.lost.first == v->upto + 1) {
			v->upto = m.lost.last;
		} else if (m.type == GMP_CMD_RESULT) {
			char sql[120];

			snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO cmds VALUES (%lld, %lld)",
				 (long long)m.cmd_result.tseq, (long long)m.cmd_result.status);
			sqlite3_exec(v->db, sql, NULL, NULL, NULL);
		}
	}
	/* stored before the ack: a commit that fails acknowledges nothing */
	if (sqlite3_exec(v->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(v->db, "ROLLBACK", NULL, NULL, NULL);
		v->upto = q1(v->db, "SELECT COALESCE(MAX(seq), 0) FROM recs");
		return;
	}
	if (!(a->flags & GM_FLAG_ACK_REQ))
		return;
	m = (struct gmp_msg){ .type = GMP_ACK, .ack = { .upto = v->upto } };
	gmp_encode(&m, plain, sizeof(plain), &ol);
	if (v->m->supply_w >= 0 && q1(v->db, "SELECT COUNT(*) FROM cmds") <= 0) {
		m = (struct gmp_msg){ .type = GMP_SUPPLY,
				      .supply = { .tseq = 1, .capacity_w = v->m->supply_w } };
		gmp_encode(&m, plain, sizeof(plain), &ol);
	}
	queued_cmds(v, plain, sizeof(plain), &ol);
	out(v, env, gmp_seal(&v->s, &o, plain, ol, env, sizeof(env)));
}

static void frame(struct serve *v, const struct gm_hdr *h, const uint8_t *p, size_t len)
{
	struct gmp_addr a = { .type = h->type, .flags = h->flags, .src = h->src, .dst = h->dst };
	uint8_t sid;
	int kind;

	if (h->dst != GM_ID_SERVER || h->src != v->m->town_id)
		return;
	count(v, "frames_in", 1);
	kind = gmp_envelope_kind(p, len, &sid);
	if (kind == GMP_KIND_HANDSHAKE)
		handshake(v, &a, p, len);
	else if (kind == GMP_KIND_SESSION)
		session(v, &a, p, len);
}

static void serve(struct mainsim *m)
{
	struct serve v = { .m = m, .fd = -1 };
	struct gm_rx rx;
	uint8_t buf[8192];

	/*
	 * WAL: the test reads the database (mainsim_q1) while this process
	 * writes; in rollback-journal mode a reader made a COMMIT fail with
	 * SQLITE_BUSY under load, and everything after it stayed uncommitted.
	 */
	if (sqlite3_open(m->db, &v.db) != SQLITE_OK ||
	    sqlite3_busy_timeout(v.db, 5000) != SQLITE_OK ||
	    sqlite3_exec(v.db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(v.db, "CREATE TABLE IF NOT EXISTS recs (seq INTEGER PRIMARY KEY, type, "
			 "meter, hour, period, import_mwh, export_mwh, renew_mwh, readings, flags, "
			 "rev); CREATE TABLE IF NOT EXISTS cmds (tseq INTEGER PRIMARY KEY, status);"
			 "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value);"
			 "CREATE TABLE IF NOT EXISTS reps (seq INTEGER PRIMARY KEY, type, time, a, b, "
			 "c, d, e);"
			 "CREATE TABLE IF NOT EXISTS outq (tseq INTEGER PRIMARY KEY, type, body);",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    gmp_lt_town(&v.lt, &m->kp, m->town_pk))
		_exit(2);
	v.upto = q1(v.db, "SELECT COALESCE(MAX(seq), 0) FROM recs");
	for (;;) {
		struct pollfd p[2] = { { .fd = m->lfd, .events = POLLIN },
				       { .fd = v.fd, .events = POLLIN } };
		ssize_t r;
		size_t off = 0;

		int pr = poll(p, v.fd >= 0 ? 2 : 1, 200);

		if (pr < 0)
			continue;
		if (pr == 0) {
			push_cmds(&v);
			continue;
		}
		if (p[0].revents & POLLIN) {
			int fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0) {
				if (v.fd >= 0)
					close(v.fd);
				v.fd = fd;
				gm_rx_init(&rx);
				gmp_session_wipe(&v.s);
			}
			continue;
		}
		if (v.fd < 0 || !(p[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		r = read(v.fd, buf, sizeof(buf));
		if (r <= 0) {
			close(v.fd);
			v.fd = -1;
			continue;
		}
		count(&v, "bytes_in", r);
		while (off < (size_t)r) {
			enum gm_rx_status st;

			off += gm_rx_feed(&rx, buf + off, (size_t)r - off, &st);
			if (st == GM_RX_FRAME)
				frame(&v, &rx.hdr, rx.payload, rx.payload_len);
		}
	}
}

void mainsim_start(struct mainsim *m)
{
	m->pid = fork();
	if (m->pid == 0) {
		serve(m);
		_exit(0);
	}
}

void mainsim_stop(struct mainsim *m, int sig)
{
	if (m->pid <= 0)
		return;
	kill(m->pid, sig);
	waitpid(m->pid, NULL, 0);
	m->pid = 0;
}

void mainsim_teardown(struct mainsim *m)
{
	mainsim_stop(m, SIGKILL);
	if (m->lfd >= 0)
		close(m->lfd);
	m->lfd = -1;
}

static int64_t queue(struct mainsim *m, struct gmp_msg *g)
{
	uint8_t body[GMP_PLAIN_MAX];
	sqlite3_stmt *st;
	sqlite3 *db;
	size_t len = 0;
	int64_t tseq;
	int rc;

	if (sqlite3_open(m->db, &db) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(db, 5000);
	/* the child makes the tables: it may not have started yet */
	sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS outq (tseq INTEGER PRIMARY KEY, type, body)",
		     NULL, NULL, NULL);
	tseq = q1(db, "SELECT COALESCE(MAX(tseq), 0) FROM outq");
	if (tseq < (m->supply_w >= 0 ? 1 : 0))
		tseq = m->supply_w >= 0 ? 1 : 0;
	tseq++;
	gmp_cmd_set_tseq(g, tseq);
	if (gmp_encode(g, body, sizeof(body), &len) ||
	    sqlite3_prepare_v2(db, "INSERT INTO outq VALUES (?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	sqlite3_bind_int64(st, 1, tseq);
	sqlite3_bind_int(st, 2, g->type);
	sqlite3_bind_blob(st, 3, body, (int)len, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == SQLITE_DONE ? tseq : -1;
}

int64_t mainsim_queue_signed(struct mainsim *m, const uint8_t *blob, size_t len)
{
	struct gmp_msg g = { .type = GMP_SIGNED };

	if (!len || len > GMP_BLOB_MAX)
		return -1;
	g.signed_cmd.len = (int64_t)len;
	memcpy(g.signed_cmd.blob, blob, len);
	return queue(m, &g);
}

int64_t mainsim_queue_summary(struct mainsim *m, const struct gmp_msg *summary)
{
	struct gmp_msg g = *summary;

	g.type = GMP_TOWN_SUMMARY;
	return queue(m, &g);
}

int64_t mainsim_q1(struct mainsim *m, const char *sql)
{
	sqlite3 *db;
	int64_t r;

	if (sqlite3_open_v2(m->db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -2;
	sqlite3_busy_timeout(db, 2000);
	r = q1(db, sql);
	sqlite3_close(db);
	return r;
}
