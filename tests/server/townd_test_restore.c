// SPDX-License-Identifier: GPL-2.0
/*
 * State lost on either side while meters report (issue 10, findings 1 and
 * 2), with every piece real: townd (townd_run) in a child process on
 * 127.0.0.1, three meters each with its outbox and gmproto v2 client
 * (lib/proto/gmp_client.c) on its own TCP connection, real time.
 *
 *   1. the meters report; a copy of townd's database is taken (the
 *      SQLite backup API, townd running);
 *   2. meter A's state directory is wiped (outbox and all) and A starts
 *      again from nothing;
 *   3. townd is killed and its database replaced by the copy ("restored
 *      from last night's backup"), then started again;
 *   4. the meters go on, then drain.
 *
 * Afterwards, from the database and from a capture of every frame that
 * crossed in either direction:
 *   - every record of B and C is stored exactly once (those the restore
 *     lost came again from the meters' retained outboxes);
 *   - every record of A is stored exactly once, except those that existed
 *     only in A's wiped outbox and in the database that was replaced,
 *     which are absent and covered by lost ranges; every sequence number
 *     of every meter is either one record or in one lost range;
 *   - no (key, nonce) pair sealed two different envelopes, and every frame
 *     was sealed by a meter or the town.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "gmp_client.h"
#include "nonce_audit.h"
#include "outbox.h"
#include "simmeter.h"
#include "simtown.h"
#include "townd_core.h"

#define METERS		3
#define RECORD_MS	10	/* a reading every 10 ms per meter */
#define MAX_RECORDS	4000

struct meter {
	uint16_t id;
	struct gmp_keypair kp;
	char dir[160];
	struct outbox ob;
	struct gmpc u;
	bool up;			/* outbox and client open */
	int fd;				/* -1: not connected */
	int64_t reconnect_at;
	struct gm_rx rx;
	uint16_t fseq;
	/* what the test made: value k of record k, and whether it survived a wipe */
	int64_t made;
	int64_t wiped_before;		/* records 1..wiped_before were made before the wipe */
	struct world *w;
};

struct world {
	struct sim_town t;		/* townd, its directory, key, database, listener */
	struct meter m[METERS];
	struct nonce_audit audit;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The value that says which record it is: meter, and its k-th record. */
static int64_t value_of(uint16_t id, int64_t k)
{
	return (int64_t)id * 10000000 + k;
}

static int send_frame(void *ctx, unsigned int flags, const uint8_t *payload, size_t len)
{
	struct meter *m = ctx;
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, m->id, 0, m->fseq++ };
	uint8_t wire[GM_MAX_WIRE];
	int n;

	if (m->fd < 0)
		return -EAGAIN;
	n = gm_frame_encode(&h, payload, len, wire, sizeof(wire));
	if (n < 0)
		return -EINVAL;
	if (send(m->fd, wire, (size_t)n, MSG_NOSIGNAL) != n) {
		close(m->fd);
		m->fd = -1;
		m->reconnect_at = mono_ms() + 50;
		return -EAGAIN;
	}
	nonce_audit_frame(&m->w->audit, &h, payload, len);
	return 0;
}

static int meter_open(struct meter *m)
{
	struct gmpc_hooks h = { .ctx = m, .send = send_frame };
	struct gmpc_config c;
	char err[256];

	if (outbox_open(&m->ob, m->dir, 4 << 20, err, sizeof(err)))
		return -1;
	gmpc_config_defaults(&c);
	c.meter_id = m->id;
	c.key = m->kp;
	memcpy(c.town_pk, m->w->t.kp.pk, GMP_KEY_LEN);
	c.ack_every = 8;
	c.ack_timeout_ms = 300;
	c.idle_ack_ms = 200;
	c.hello_retry_ms = 100;
	c.hello_retry_max_ms = 400;
	c.rehello_min_ms = 100;
	if (gmpc_init(&m->u, &c, &h, &m->ob, err, sizeof(err)))
		return -1;
	m->up = true;
	return 0;
}

static void meter_close(struct meter *m)
{
	if (!m->up)
		return;
	gmpc_free(&m->u);
	outbox_close(&m->ob);
	m->up = false;
}

/* One pass: connections, input, timers, sending; a new reading when due. */
static void step(struct world *w, bool record, int64_t *next_record)
{
	struct pollfd p[METERS];
	int64_t now = mono_ms();

	for (int i = 0; i < METERS; i++) {
		struct meter *m = &w->m[i];

		p[i] = (struct pollfd){ .fd = m->fd, .events = POLLIN };
		if (m->up && m->fd < 0 && now >= m->reconnect_at) {
			m->fd = sim_connect(w->t.port);
			if (m->fd >= 0)
				fcntl(m->fd, F_SETFL, O_NONBLOCK);
			if (m->fd < 0) {
				m->reconnect_at = now + 50;
			} else {
				gm_rx_init(&m->rx);
				gmpc_route_changed(&m->u, now);	/* a new path: handshake */
			}
			p[i].fd = m->fd;
		}
	}
	poll(p, METERS, 5);
	now = mono_ms();
	for (int i = 0; i < METERS; i++) {
		struct meter *m = &w->m[i];
		uint8_t buf[8192];
		ssize_t r;

		if (m->fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
			r = read(m->fd, buf, sizeof(buf));
			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				close(m->fd);
				m->fd = -1;
				m->reconnect_at = now + 50;
			}
			for (size_t off = 0; r > 0 && off < (size_t)r;) {
				enum gm_rx_status st;

				off += gm_rx_feed(&m->rx, buf + off, (size_t)r - off, &st);
				if (st != GM_RX_FRAME || m->rx.hdr.dst != m->id)
					continue;
				nonce_audit_frame(&w->audit, &m->rx.hdr, m->rx.payload,
						  m->rx.payload_len);
				if (m->up)
					gmpc_input(&m->u, m->rx.hdr.type, m->rx.hdr.flags,
						   m->rx.payload, m->rx.payload_len, now, real_ms());
			}
		}
		if (!m->up)
			continue;
		if (record && now >= *next_record && m->made < MAX_RECORDS) {
			struct gmp_msg g = { .type = GMP_READING };

			g.reading.start = real_ms() / 1000 - 60;
			g.reading.interval_s = 60;
			g.reading.import_mwh = value_of(m->id, m->made + 1);
			if (gmpc_record(&m->u, &g) >= 0)
				m->made++;
		}
		gmpc_tick(&m->u, now);
		gmpc_pump(&m->u, now, real_ms());
	}
	if (record && now >= *next_record)
		*next_record = now + RECORD_MS;
}

static void run_for(struct world *w, int ms, bool record)
{
	int64_t end = mono_ms() + ms, next = mono_ms();

	while (mono_ms() < end)
		step(w, record, &next);
}

/* A consistent copy of the live database (townd keeps writing meanwhile). */
static int backup(const char *from, const char *to)
{
	sqlite3 *src, *dst;
	sqlite3_backup *b;
	int rc = -1;

	if (sqlite3_open_v2(from, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_open(to, &dst) == SQLITE_OK) {
		sqlite3_busy_timeout(src, 5000);
		b = sqlite3_backup_init(dst, "main", src, "main");
		if (b) {
			int s;

			while ((s = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || s == SQLITE_LOCKED)
				usleep(10000);
			rc = s == SQLITE_DONE ? 0 : -1;
			sqlite3_backup_finish(b);
		}
	}
	sqlite3_close(dst);
	sqlite3_close(src);
	return rc;
}

/* k of every reading of meter id in a database, in storage order; count returned. */
static int64_t values(const char *db_path, uint16_t id, int64_t *out, int64_t max,
		      int64_t *upto)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n = 0;

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, "SELECT import_mwh FROM readings WHERE meter = ? ORDER BY "
			       "rowid", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int(st, 1, id);
		while (sqlite3_step(st) == SQLITE_ROW && n < max)
			out[n++] = sqlite3_column_int64(st, 0) - (int64_t)id * 10000000;
		sqlite3_finalize(st);
	}
	if (upto && sqlite3_prepare_v2(db, "SELECT acked_upto FROM meters WHERE id = ?", -1, &st,
				       NULL) == SQLITE_OK) {
		sqlite3_bind_int(st, 1, id);
		*upto = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return n;
}

/*
 * Every seq 1..upto of the meter: one record or in one lost range, never
 * both, never twice. Returns a description of the first fault or NULL.
 */
static const char *coverage(const char *db_path, uint16_t id, int64_t *lost_records)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t upto = 0;
	uint8_t *cover;
	const char *bad = NULL;

	*lost_records = 0;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return "open";
	if (sqlite3_prepare_v2(db, "SELECT acked_upto FROM meters WHERE id = ?", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_int(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			upto = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	cover = calloc((size_t)upto + 2, 1);
	if (!cover) {
		sqlite3_close(db);
		return "memory";
	}
	if (sqlite3_prepare_v2(db, "SELECT seq, seq, 0 FROM readings WHERE meter = ?1 UNION ALL "
			       "SELECT seq, seq, 0 FROM events WHERE meter = ?1 AND type != 7 "
			       "UNION ALL SELECT a, b, 1 FROM events WHERE meter = ?1 AND type = 7",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int(st, 1, id);
		while (!bad && sqlite3_step(st) == SQLITE_ROW) {
			int64_t a = sqlite3_column_int64(st, 0), b = sqlite3_column_int64(st, 1);

			if (a < 1 || b > upto || a > b) {
				bad = "a record or lost range outside 1..upto";
				break;
			}
			if (sqlite3_column_int(st, 2))
				*lost_records += b - a + 1;
			for (int64_t s = a; s <= b && !bad; s++)
				if (cover[s]++)
					bad = "a sequence number covered twice";
		}
		sqlite3_finalize(st);
	}
	for (int64_t s = 1; !bad && s <= upto; s++)
		if (!cover[s])
			bad = "a sequence number neither stored nor lost";
	free(cover);
	sqlite3_close(db);
	return bad;
}

FIXTURE(restore) {
	struct world w;
};

FIXTURE_SETUP(restore)
{
	struct world *w = &self->w;

	memset(w, 0, sizeof(*w));
	ASSERT_LE(0, sodium_init());
	ASSERT_EQ(0, sim_town_setup(&w->t, "townd-restore"));
	nonce_audit_init(&w->audit);
	for (int i = 0; i < METERS; i++) {
		struct meter *m = &w->m[i];

		m->w = w;
		m->id = (uint16_t)(31 + i);
		m->fd = -1;
		gmp_keypair_generate(&m->kp);
		snprintf(m->dir, sizeof(m->dir), "%s/state-%u", w->t.dir, m->id);
		ASSERT_EQ(0, sim_town_add(&w->t, m->id, m->kp.pk));
		ASSERT_EQ(0, nonce_audit_key(&w->audit, &w->t.kp, m->id, m->kp.pk));
		ASSERT_EQ(0, meter_open(m));
	}
	sim_town_start(&w->t);
}

FIXTURE_TEARDOWN(restore)
{
	struct world *w = &self->w;

	sim_town_stop(&w->t, SIGTERM);
	for (int i = 0; i < METERS; i++) {
		meter_close(&w->m[i]);
		if (w->m[i].fd >= 0)
			close(w->m[i].fd);
	}
	nonce_audit_free(&w->audit);
	sim_town_teardown(&w->t, false);
}

TEST_F(restore, restored_database_and_wiped_meter_lose_and_repeat_nothing)
{
	struct world *w = &self->w;
	struct meter *a = &w->m[0];
	char copy[160], cmd[1400];
	int64_t *got = calloc(MAX_RECORDS * 2, sizeof(*got)), in_copy[METERS] = { 0 };
	int64_t *copy_vals = calloc(MAX_RECORDS * 2, sizeof(*copy_vals)), n, end;

	ASSERT_NE(NULL, got);
	ASSERT_NE(NULL, copy_vals);
	/* 1. reports, then the copy */
	run_for(w, 1000, true);
	snprintf(copy, sizeof(copy), "%s/backup.db", w->t.dir);
	ASSERT_EQ(0, backup(w->t.cfg.database, copy));
	run_for(w, 800, true);

	/* 2. A's state directory wiped: A starts from nothing */
	meter_close(a);
	a->wiped_before = a->made;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", a->dir);
	ASSERT_EQ(0, system(cmd));
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	ASSERT_EQ(0, meter_open(a));
	EXPECT_TRUE(a->ob.created);
	run_for(w, 800, true);

	/* 3. townd dies, its database is replaced by the copy, it starts again */
	sim_town_stop(&w->t, SIGKILL);
	snprintf(cmd, sizeof(cmd), "rm -f '%s' '%s-wal' '%s-shm' && cp '%s' '%s'",
		 w->t.cfg.database, w->t.cfg.database, w->t.cfg.database, copy, w->t.cfg.database);
	ASSERT_EQ(0, system(cmd));
	sim_town_start(&w->t);

	/* 4. reports go on, then everything drains */
	run_for(w, 1500, true);
	end = mono_ms() + 20000;
	for (;;) {
		bool idle = true;

		for (int i = 0; i < METERS; i++)
			idle &= w->m[i].u.state == GMPC_UP && !gmpc_backlog(&w->m[i].u);
		if (idle || mono_ms() > end)
			break;
		run_for(w, 50, false);
	}
	for (int i = 0; i < METERS; i++) {
		EXPECT_EQ(0, gmpc_backlog(&w->m[i].u)) TH_LOG("meter %u", w->m[i].id);
		/* B and C had acknowledgements the copy lacks: they rewound */
		if (i) {
			EXPECT_LE(1, w->m[i].u.rewinds) TH_LOG("meter %u", w->m[i].id);
		}
	}
	/* A's numbering restarted at 1: its first WELCOME moved it above the town's */
	EXPECT_EQ(1, a->u.rebases);
	sim_town_stop(&w->t, SIGTERM);

	for (int i = 0; i < METERS; i++) {
		struct meter *m = &w->m[i];
		int64_t lost = 0, missing = 0, upto = 0;
		char *seen = calloc((size_t)m->made + 2, 1);
		const char *cov;

		ASSERT_NE(NULL, seen);
		n = values(w->t.cfg.database, m->id, got, MAX_RECORDS * 2, &upto);
		in_copy[i] = values(copy, m->id, copy_vals, MAX_RECORDS * 2, NULL);
		for (int64_t k = 0; k < n; k++) {
			ASSERT_LE(1, got[k]);
			ASSERT_GE(m->made, got[k]);
			EXPECT_EQ(0, seen[got[k]]++) TH_LOG("meter %u: record %lld stored twice",
							   m->id, (long long)got[k]);
		}
		for (int64_t k = 1; k <= m->made; k++) {
			bool lost_ok = false;

			if (seen[k])
				continue;
			/* only A's records of before the wipe that the copy does not hold */
			if (m == a && k <= a->wiped_before) {
				lost_ok = true;
				for (int64_t j = 0; j < in_copy[i]; j++)
					lost_ok &= copy_vals[j] != k;
			}
			EXPECT_TRUE(lost_ok) TH_LOG("meter %u: record %lld missing", m->id,
						    (long long)k);
			missing++;
		}
		cov = coverage(w->t.cfg.database, m->id, &lost);
		EXPECT_EQ(NULL, cov) TH_LOG("meter %u", m->id);
		if (m != a) {
			EXPECT_EQ(m->made, n);
		}
		TH_LOG("meter %u: %lld records made, %lld stored once each, %lld missing "
		       "(%lld seqs reported lost), %lld in the copy, upto %lld, %llu handshakes, "
		       "%llu rewinds, %llu rebases", m->id, (long long)m->made, (long long)n,
		       (long long)missing, (long long)lost, (long long)in_copy[i],
		       (long long)upto, (unsigned long long)m->u.handshakes,
		       (unsigned long long)m->u.rewinds, (unsigned long long)m->u.rebases);
		free(seen);
	}
	/* the capture: every frame's key found, no (key, nonce) pair twice */
	ASSERT_EQ(0, nonce_audit_run(&w->audit));
	EXPECT_EQ(0, w->audit.repeats);
	EXPECT_EQ(0, w->audit.unattributed);
	EXPECT_EQ(w->audit.frames, w->audit.handshakes + w->audit.sessions);
	TH_LOG("capture: %llu frames, %llu handshake and %llu session envelopes, %llu sessions, "
	       "%llu copies, %llu (key, nonce) repeats", (unsigned long long)w->audit.frames,
	       (unsigned long long)w->audit.handshakes, (unsigned long long)w->audit.sessions,
	       (unsigned long long)w->audit.welcomes, (unsigned long long)w->audit.copies,
	       (unsigned long long)w->audit.repeats);
	free(got);
	free(copy_vals);
}

TEST_HARNESS_MAIN
