// SPDX-License-Identifier: GPL-2.0
/*
 * townd ingest core without sockets (gmproto v2): handshakes and sessions,
 * REHELLO for sessions it does not hold (a restart), HELLO replays, no
 * disk write for unauthenticated input, acknowledgement windows, lost
 * ranges, commands and their results and reconciliation, meter and town
 * key rotation, revocation and replacement, the register view, booking
 * time, and the migration of a version-1 database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "gmproto.h"
#include "townd_core.h"

#define T0	1790000000	/* simulated UTC s */

/* Frames the core sent, as a meter's line would carry them. */
struct outq {
	int n;
	uint64_t conn[32];
	uint8_t wire[32][GM_MAX_WIRE];
	size_t len[32];
};

static void collect(void *ctx, uint64_t conn, const uint8_t *wire, size_t len)
{
	struct outq *q = ctx;

	if (q->n < 32) {
		q->conn[q->n] = conn;
		memcpy(q->wire[q->n], wire, len);
		q->len[q->n++] = len;
	}
}

/* A meter as the tests drive it: its keys, its session, its frame numbers. */
struct tmeter {
	uint16_t id;
	struct gmp_keypair kp;
	uint8_t town_pk[GMP_KEY_LEN];
	struct gmp_lt lt;
	struct gmp_session s;
	uint8_t rm[GMP_RAND_LEN];
	uint16_t fseq;
	struct gmp_msg welcome;		/* the last one taken */
};

static int tm_init(struct tmeter *t, uint16_t id, const uint8_t town_pk[GMP_KEY_LEN])
{
	memset(t, 0, sizeof(*t));
	t->id = id;
	gmp_keypair_generate(&t->kp);
	memcpy(t->town_pk, town_pk, GMP_KEY_LEN);
	return gmp_lt_meter(&t->lt, &t->kp, town_pk);
}

static int64_t clock_fixed(void *ctx)
{
	return *(int64_t *)ctx;
}

FIXTURE(core) {
	char dir[64], db[128];
	struct gmp_keypair town;
	struct tmeter m;		/* meter 5 */
	struct townd_core *c;
	int64_t now_ms;
	struct outq q;
};

static void core_open(struct _test_data_core *self, struct __test_metadata *_metadata)
{
	char err[256];

	self->c = malloc(sizeof(*self->c));
	ASSERT_NE(NULL, self->c);
	ASSERT_EQ(0, townd_core_init(self->c, self->db, 0, &self->town, err, sizeof(err)))
		TH_LOG("%s", err);
	self->c->clock_ms = clock_fixed;
	self->c->clock_ctx = &self->now_ms;
}

static void core_close(struct _test_data_core *self)
{
	townd_core_free(self->c);
	free(self->c);
	self->c = NULL;
}

FIXTURE_SETUP(core)
{
	char err[256];

	ASSERT_LE(0, sodium_init());
	strcpy(self->dir, "/tmp/townd-core-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->db, sizeof(self->db), "%s/t.db", self->dir);
	gmp_keypair_generate(&self->town);
	ASSERT_EQ(0, tm_init(&self->m, 5, self->town.pk));
	self->now_ms = (int64_t)T0 * 1000;
	core_open(self, _metadata);
	ASSERT_EQ(0, tdb_add_meter(&self->c->db, 5, self->m.kp.pk, "five", 1, err, sizeof(err)));
	memset(&self->q, 0, sizeof(self->q));
}

FIXTURE_TEARDOWN(core)
{
	char cmd[128];

	if (self->c)
		core_close(self);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd)) {
		/* nothing */
	}
}

static int feed_env(struct _test_data_core *self, struct tmeter *t, const uint8_t *env,
		    size_t len, unsigned int flags)
{
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, t->id, 0, t->fseq++ };

	return townd_core_frame(self->c, 77, &h, env, len, self->now_ms / 1000);
}

/* A HELLO of t (fresh random) fed to the core; its envelope in env if given. */
static int hello(struct _test_data_core *self, struct tmeter *t, int64_t floor,
		 const struct gmp_lt *lt, uint8_t *env_out, int *len_out)
{
	struct gmp_msg h = { .type = GMP_HELLO, .hello = { .now_ms = self->now_ms,
		.clock_trusted = 1, .cmd_floor = floor, .next_seq = 1, .first_held = 1 } };
	struct gmp_addr a = { GM_TYPE_DATA, 0, t->id, 0 };
	uint8_t plain[GMP_HS_PLAIN_MAX], env[GMP_PAYLOAD_MAX];
	size_t n = 0;
	int e;

	randombytes_buf(h.hello.rm, GMP_RAND_LEN);
	memcpy(t->rm, h.hello.rm, GMP_RAND_LEN);
	if (gmp_encode(&h, plain, sizeof(plain), &n))
		return -1;
	e = gmp_hs_seal(lt ? lt : &t->lt, &a, plain, n, env, sizeof(env));
	if (e < 0)
		return -1;
	if (env_out) {
		memcpy(env_out, env, (size_t)e);
		*len_out = e;
	}
	return feed_env(self, t, env, (size_t)e, 0);
}

/* Decode frame i of q as meter t: 1 WELCOME (session taken), 2 REHELLO, 3 session frame. */
static int take(struct tmeter *t, const struct outq *q, int i, const struct gmp_lt *lt,
		struct gmp_msg *msgs, int *n_msgs)
{
	struct gm_rx rx;
	enum gm_rx_status st;
	uint8_t plain[GM_MAX_PAYLOAD];
	struct gmp_addr a;
	size_t off = 0;
	uint8_t sid;
	int n, kind;

	*n_msgs = 0;
	gm_rx_init(&rx);
	gm_rx_feed(&rx, q->wire[i], q->len[i], &st);
	if (st != GM_RX_FRAME || rx.hdr.dst != t->id || rx.hdr.src != 0)
		return -1;
	a = (struct gmp_addr){ rx.hdr.type, rx.hdr.flags, rx.hdr.src, rx.hdr.dst };
	kind = gmp_envelope_kind(rx.payload, rx.payload_len, &sid);
	if (kind == GMP_KIND_HANDSHAKE) {
		struct gmp_msg m;

		n = gmp_hs_open(lt ? lt : &t->lt, &a, rx.payload, rx.payload_len, plain,
				sizeof(plain));
		if (n < 0 || gmp_decode_next(plain, (size_t)n, &off, &m) != 1)
			return -1;
		if (m.type == GMP_REHELLO)
			return 2;
		if (m.type != GMP_WELCOME || memcmp(m.welcome.rm, t->rm, GMP_RAND_LEN))
			return -1;
		gmp_session_derive(&t->s, lt ? lt : &t->lt, t->rm, m.welcome.rt,
				   (uint8_t)m.welcome.sid);
		t->welcome = m;
		return 1;
	}
	n = gmp_open(&t->s, &a, rx.payload, rx.payload_len, plain, sizeof(plain), NULL);
	if (n < 0)
		return -1;
	while (*n_msgs < 16 && gmp_decode_next(plain, (size_t)n, &off, &msgs[*n_msgs]) == 1)
		(*n_msgs)++;
	return 3;
}

/* Flush, then the meter takes every frame for it; returns the last ack's upto (-1: none). */
static int64_t flush_take(struct _test_data_core *self, struct tmeter *t,
			  struct __test_metadata *_metadata, int *welcomes, int *rehellos,
			  struct gmp_msg *cmds, int *n_cmds)
{
	int64_t upto = -1;
	int from = self->q.n;

	EXPECT_EQ(0, townd_core_flush(self->c, collect, &self->q));
	if (welcomes)
		*welcomes = 0;
	if (rehellos)
		*rehellos = 0;
	if (n_cmds)
		*n_cmds = 0;
	for (int i = from; i < self->q.n; i++) {
		struct gmp_msg msgs[16];
		int n = 0, r = take(t, &self->q, i, NULL, msgs, &n);

		if (r == 1 && welcomes)
			(*welcomes)++;
		if (r == 2 && rehellos)
			(*rehellos)++;
		for (int k = 0; r == 3 && k < n; k++) {
			if (msgs[k].type == GMP_ACK)
				upto = msgs[k].ack.upto;
			else if (cmds && n_cmds)
				cmds[(*n_cmds)++] = msgs[k];
		}
	}
	return upto;
}

static int handshake(struct _test_data_core *self, struct tmeter *t, int64_t floor,
		     struct __test_metadata *_metadata)
{
	int w = 0;

	if (hello(self, t, floor, NULL, NULL, NULL) != TOWND_AUTHENTIC)
		return -1;
	flush_take(self, t, _metadata, &w, NULL, NULL, NULL);
	return w == 1 ? 0 : -1;
}

/* One sealed session frame with the given messages. */
static int feed(struct _test_data_core *self, struct tmeter *t, const struct gmp_msg *msgs,
		size_t n, unsigned int flags)
{
	uint8_t plain[GMP_PLAIN_MAX], env[GM_MAX_PAYLOAD];
	struct gmp_addr a = { GM_TYPE_DATA, (uint8_t)flags, t->id, 0 };
	size_t off = 0;
	int len;

	for (size_t i = 0; i < n; i++)
		gmp_encode(&msgs[i], plain, sizeof(plain), &off);
	len = gmp_seal(&t->s, &a, plain, off, env, sizeof(env));
	if (len < 0)
		return -1;
	return feed_env(self, t, env, (size_t)len, flags);
}

static void reading(int64_t seq, struct gmp_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = GMP_READING;
	m->reading.seq = seq;
	m->reading.start = T0 - 86400 + 60 * seq;
	m->reading.interval_s = 60;
	m->reading.import_mwh = 1000 + seq;
}

static int64_t q1(struct townd_core *c, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_prepare_v2(c->db.db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

TEST_F(core, handshake_then_records_acknowledged)
{
	struct gmp_msg r[3];
	int w = 0;

	EXPECT_EQ(TOWND_AUTHENTIC, hello(self, &self->m, 0, NULL, NULL, NULL));
	EXPECT_EQ(-1, flush_take(self, &self->m, _metadata, &w, NULL, NULL, NULL));
	ASSERT_EQ(1, w);
	EXPECT_EQ(77, self->q.conn[0]);
	EXPECT_EQ(0, self->m.welcome.welcome.upto);
	EXPECT_EQ(1, self->m.welcome.welcome.cmd_next);
	EXPECT_EQ(self->now_ms, self->m.welcome.welcome.now_ms);
	EXPECT_EQ(1, self->c->st.hellos);
	EXPECT_EQ(1, self->c->st.welcomes);
	for (int i = 0; i < 3; i++)
		reading(i + 1, &r[i]);
	EXPECT_EQ(TOWND_AUTHENTIC, feed(self, &self->m, r, 3, GM_FLAG_ACK_REQ));
	EXPECT_EQ(3, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	EXPECT_EQ(3, self->c->st.stored);
	EXPECT_EQ(3, q1(self->c, "SELECT acked_upto FROM meters WHERE id = 5"));
	/* nothing about sessions or counters in the database */
	EXPECT_EQ(0, q1(self->c, "SELECT COUNT(*) FROM pragma_table_info('meters') WHERE "
		       "name IN ('rx_ctr', 'tx_ctr')"));
}

TEST_F(core, records_after_a_gap_wait_for_it)
{
	struct gmp_msg r[3];

	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	reading(1, &r[0]);
	reading(2, &r[1]);
	reading(4, &r[2]);
	feed(self, &self->m, r, 3, GM_FLAG_ACK_REQ);
	EXPECT_EQ(2, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	/* 4 came before 3: not stored, so that storage follows the meter's order */
	EXPECT_EQ(2, self->c->st.stored);
	EXPECT_EQ(1, self->c->st.ahead);
	reading(3, &r[0]);
	feed(self, &self->m, r, 1, GM_FLAG_ACK_REQ);
	EXPECT_EQ(3, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	/* the meter's go-back-N resend of 3 and 4 */
	reading(3, &r[0]);
	reading(4, &r[1]);
	feed(self, &self->m, r, 2, 0);
	EXPECT_EQ(4, self->c->st.stored);
	EXPECT_EQ(1, self->c->st.duplicates);
	/* no ack requested, nothing urgent: no ack frame */
	reading(5, &r[0]);
	feed(self, &self->m, r, 1, 0);
	EXPECT_EQ(-1, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	/* an alarm is acknowledged at once (after 4 and 5) */
	memset(&r[0], 0, sizeof(r[0]));
	r[0].type = GMP_ALARM;
	r[0].alarm.seq = 6;
	r[0].alarm.time = T0;
	r[0].alarm.code = 3;
	r[0].alarm.active = 1;
	r[0].alarm.value = -40;
	feed(self, &self->m, r, 1, 0);
	EXPECT_EQ(6, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
}

TEST_F(core, lost_records_move_upto_past_the_hole)
{
	struct gmp_msg r[3];

	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	reading(1, &r[0]);
	feed(self, &self->m, r, 1, 0);
	/* 2..99 were quarantined or dropped by the meter's disk budget */
	memset(&r[0], 0, sizeof(r[0]));
	r[0].type = GMP_LOST;
	r[0].lost.first = 2;
	r[0].lost.last = 99;
	reading(100, &r[1]);
	feed(self, &self->m, r, 2, 0);
	EXPECT_EQ(100, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	EXPECT_EQ(1, self->c->st.lost);
	EXPECT_EQ(99, q1(self->c, "SELECT b FROM events WHERE meter = 5 AND type = 7 AND "
		       "a = 2"));
	/* a lost range that is ahead of what is stored waits; one behind it is old news */
	r[0].lost.first = 150;
	r[0].lost.last = 160;
	feed(self, &self->m, r, 1, GM_FLAG_ACK_REQ);
	EXPECT_EQ(100, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	EXPECT_EQ(1, self->c->st.ahead);
	r[0].lost.first = 10;
	r[0].lost.last = 20;
	feed(self, &self->m, r, 1, GM_FLAG_ACK_REQ);
	EXPECT_EQ(100, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	EXPECT_EQ(1, self->c->st.lost);
}

/*
 * Committed, then townd died before the acknowledgement left. The new
 * process holds no session: the meter's next frame gets a REHELLO, the
 * new handshake says what is stored, the resend is duplicates only, and
 * the old session's frames replayed are refused.
 */
TEST_F(core, restart_loses_sessions_never_records)
{
	struct gmp_msg r[10];
	uint8_t old_env[GMP_PAYLOAD_MAX], plain[GMP_PLAIN_MAX];
	struct gmp_addr a = { GM_TYPE_DATA, GM_FLAG_ACK_REQ, 5, 0 };
	struct outq lost = { 0 };
	size_t off = 0;
	int old_len, reh = 0, w = 0;

	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	for (int i = 0; i < 10; i++)
		reading(i + 1, &r[i]);
	feed(self, &self->m, r, 10, GM_FLAG_ACK_REQ);
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &lost));	/* never delivered */
	ASSERT_EQ(1, lost.n);
	/* a frame of the old session an attacker keeps for later */
	gmp_encode(&r[0], plain, sizeof(plain), &off);
	old_len = gmp_seal(&self->m.s, &a, plain, off, old_env, sizeof(old_env));
	core_close(self);
	core_open(self, _metadata);

	EXPECT_EQ(TOWND_REJECTED, feed(self, &self->m, r, 10, GM_FLAG_ACK_REQ));
	EXPECT_EQ(1, self->c->st.no_session);
	flush_take(self, &self->m, _metadata, NULL, &reh, NULL, NULL);
	EXPECT_EQ(1, reh);
	/* a second one right away: REHELLOs are rate-limited per meter */
	feed(self, &self->m, r, 10, GM_FLAG_ACK_REQ);
	flush_take(self, &self->m, _metadata, NULL, &reh, NULL, NULL);
	EXPECT_EQ(0, reh);
	/* the new handshake tells the meter what is on disk */
	EXPECT_EQ(TOWND_AUTHENTIC, hello(self, &self->m, 0, NULL, NULL, NULL));
	flush_take(self, &self->m, _metadata, &w, NULL, NULL, NULL);
	ASSERT_EQ(1, w);
	EXPECT_EQ(10, self->m.welcome.welcome.upto);
	/* the replayed old frame: no session of its id is the same session */
	EXPECT_EQ(TOWND_REJECTED, feed_env(self, &self->m, old_env, (size_t)old_len,
					   GM_FLAG_ACK_REQ));
	EXPECT_EQ(0, self->c->st.stored);
	feed(self, &self->m, r, 10, GM_FLAG_ACK_REQ);
	EXPECT_EQ(10, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	EXPECT_EQ(10, self->c->st.duplicates);
	EXPECT_EQ(0, self->c->st.stored);
	EXPECT_EQ(10 * 1000 + 55, q1(self->c, "SELECT SUM(import_mwh) FROM readings WHERE "
				     "meter = 5"));
}

/* What a WAL-mode database has written: rows changed and the WAL's size. */
struct disk_mark {
	int64_t changes;
	off_t wal;
};

static void disk_mark(struct _test_data_core *self, struct disk_mark *d)
{
	char wal[160];
	struct stat sb;

	snprintf(wal, sizeof(wal), "%s-wal", self->db);
	d->changes = sqlite3_total_changes64(self->c->db.db);
	d->wal = stat(wal, &sb) ? -1 : sb.st_size;
}

/*
 * Garbage of every kind, even carrying the real meter's id: refused,
 * counted in memory, and not one disk write, until the counters' period.
 */
TEST_F(core, unauthenticated_input_writes_nothing)
{
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, 1, 8, 5, 0, 1 };
	struct disk_mark before, after;
	struct gmp_msg r;
	uint8_t junk[64];
	struct gmp_lt wrong;
	struct gmp_keypair other;
	int reh = 0, v1 = 0, per_meter = 0;

	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &self->q));
	disk_mark(self, &before);
	for (int i = 0; i < 300; i++) {
		size_t len = (size_t)(i % (int)sizeof(junk));
		int kind;

		randombytes_buf(junk, sizeof(junk));
		junk[0] = (uint8_t[]){ 1, GMP_ENV_HANDSHAKE, GMP_ENV_SESSION }[i % 3];
		if (i % 3 == 2)
			junk[1] = self->m.s.sid;	/* the real session's id */
		kind = gmp_envelope_kind(junk, len, NULL);
		v1 += kind == -GMP_E_VERSION;
		per_meter += kind > 0;
		EXPECT_EQ(TOWND_REJECTED, townd_core_frame(self->c, 1, &h, junk, len, T0));
	}
	/* a HELLO under a key that is not the meter's */
	gmp_keypair_generate(&other);
	ASSERT_EQ(0, gmp_lt_meter(&wrong, &other, self->town.pk));
	EXPECT_EQ(TOWND_REJECTED, hello(self, &self->m, 0, &wrong, NULL, NULL));
	/* a session frame of a session id nobody has */
	self->m.s.sid ^= 0x80;
	reading(1, &r);
	EXPECT_EQ(TOWND_REJECTED, feed(self, &self->m, &r, 1, GM_FLAG_ACK_REQ));
	self->m.s.sid ^= 0x80;
	/* an unprovisioned meter, a frame not for the server */
	h.src = 6;
	EXPECT_EQ(TOWND_REJECTED, townd_core_frame(self->c, 1, &h, junk, sizeof(junk), T0));
	h.src = 5;
	h.dst = 7;
	EXPECT_EQ(TOWND_REJECTED, townd_core_frame(self->c, 1, &h, junk, sizeof(junk), T0));
	flush_take(self, &self->m, _metadata, NULL, &reh, NULL, NULL);
	EXPECT_EQ(1, reh);	/* the unknown session id is told to handshake */
	disk_mark(self, &after);
	EXPECT_EQ(before.changes, after.changes);
	EXPECT_EQ(before.wal, after.wal);
	EXPECT_EQ(v1, self->c->st.bad_version);
	EXPECT_LT(90, v1);
	/* everything that reached meter 5, and the wrong HELLO and the unknown session */
	EXPECT_EQ(per_meter + 2, (int)self->c->meters[5]->rejected);
	EXPECT_EQ(1, self->c->st.unknown_meter);
	EXPECT_EQ(1, self->c->st.not_for_us);
	EXPECT_EQ(0, self->c->st.stored);
	/* the counters go to disk after TOWND_STATS_EVERY_S */
	self->now_ms += TOWND_STATS_EVERY_S * 1000;
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &self->q));
	disk_mark(self, &after);
	EXPECT_LT(before.changes, after.changes);
	EXPECT_EQ(v1, q1(self->c, "SELECT value FROM stats WHERE name = 'bad_version'"));
	EXPECT_EQ(per_meter + 2, q1(self->c, "SELECT rejected FROM meters WHERE id = 5"));
	EXPECT_EQ(0, self->c->meters[5]->rejected);
	/* the real meter goes on: nothing moved its counters */
	reading(1, &r);
	EXPECT_EQ(TOWND_AUTHENTIC, feed(self, &self->m, &r, 1, GM_FLAG_ACK_REQ));
	EXPECT_EQ(1, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
}

/*
 * HELLO replays: the same HELLO through a second route gets the same
 * WELCOME; replayed after a restart it is refused (the database keeps
 * the meter's recent randoms), and changes no session.
 */
TEST_F(core, hello_replays_make_no_session)
{
	uint8_t env[GMP_PAYLOAD_MAX];
	struct gmp_msg first, r;
	int len = 0, w = 0;

	ASSERT_EQ(TOWND_AUTHENTIC, hello(self, &self->m, 0, NULL, env, &len));
	flush_take(self, &self->m, _metadata, &w, NULL, NULL, NULL);
	ASSERT_EQ(1, w);
	first = self->m.welcome;
	/* the same HELLO again, forwarded by a neighbour (or replayed: keeps no slot) */
	EXPECT_EQ(TOWND_DUPLICATE, feed_env(self, &self->m, env, (size_t)len, 0));
	flush_take(self, &self->m, _metadata, &w, NULL, NULL, NULL);
	ASSERT_EQ(1, w);
	EXPECT_EQ(0, memcmp(first.welcome.rt, self->m.welcome.welcome.rt, GMP_RAND_LEN));
	EXPECT_EQ(first.welcome.sid, self->m.welcome.welcome.sid);
	EXPECT_EQ(1, self->c->st.hello_dups);
	core_close(self);
	core_open(self, _metadata);
	EXPECT_EQ(TOWND_REJECTED, feed_env(self, &self->m, env, (size_t)len, 0));
	EXPECT_EQ(1, self->c->st.replayed);
	flush_take(self, &self->m, _metadata, &w, NULL, NULL, NULL);
	EXPECT_EQ(0, w);
	/* a fresh HELLO works */
	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	EXPECT_NE(0, memcmp(first.welcome.rt, self->m.welcome.welcome.rt, GMP_RAND_LEN));
	reading(1, &r);
	feed(self, &self->m, &r, 1, GM_FLAG_ACK_REQ);
	EXPECT_EQ(1, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
}

TEST_F(core, session_frames_replayed_forged_and_of_old_sessions)
{
	struct gmp_msg r;
	struct gmp_addr a = { GM_TYPE_DATA, 0, 5, 0 };
	uint8_t plain[GMP_PLAIN_MAX], e1[GMP_PAYLOAD_MAX], bad[GMP_PAYLOAD_MAX];
	struct gmp_session old;
	size_t off = 0;
	int n1;

	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	reading(1, &r);
	gmp_encode(&r, plain, sizeof(plain), &off);
	n1 = gmp_seal(&self->m.s, &a, plain, off, e1, sizeof(e1));
	EXPECT_EQ(TOWND_AUTHENTIC, feed_env(self, &self->m, e1, (size_t)n1, 0));
	EXPECT_EQ(TOWND_REJECTED, feed_env(self, &self->m, e1, (size_t)n1, 0));
	EXPECT_EQ(1, self->c->st.replayed);
	/* a forgery: a fresh counter, one ciphertext bit changed */
	n1 = gmp_seal(&self->m.s, &a, plain, off, e1, sizeof(e1));
	memcpy(bad, e1, (size_t)n1);
	bad[n1 / 2] ^= 4;
	EXPECT_EQ(TOWND_REJECTED, feed_env(self, &self->m, bad, (size_t)n1, 0));
	EXPECT_EQ(1, self->c->st.auth_failed);
	EXPECT_EQ(TOWND_AUTHENTIC, feed_env(self, &self->m, e1, (size_t)n1, 0));
	EXPECT_EQ(1, self->c->st.duplicates);
	/* a new session: frames still in flight on the old one are taken */
	old = self->m.s;
	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	EXPECT_NE(old.sid, self->m.s.sid);
	reading(2, &r);
	off = 0;
	gmp_encode(&r, plain, sizeof(plain), &off);
	n1 = gmp_seal(&old, &a, plain, off, e1, sizeof(e1));
	EXPECT_EQ(TOWND_AUTHENTIC, feed_env(self, &self->m, e1, (size_t)n1, 0));
	EXPECT_EQ(2, self->c->st.stored);
	EXPECT_EQ(TOWND_REJECTED, feed_env(self, &self->m, e1, (size_t)n1, 0));
	EXPECT_EQ(2, self->c->st.replayed);
}

TEST_F(core, commands_results_and_reconciliation)
{
	struct gmp_msg t = { .type = GMP_TARIFF, .tariff = { .effective = T0, .n = 1,
		.p = { { 0, 120000, 5000 } } } };
	struct gmp_msg g = { .type = GMP_GRANT, .grant = { .req_id = 3, .granted_w = 2000,
							   .until = T0 + 3600 } };
	struct gmp_msg cmds[16], res[2];
	char err[128];
	int n = 0;

	ASSERT_EQ(0, tdb_queue(&self->c->db, 5, &t, T0, err, sizeof(err)));
	ASSERT_EQ(0, tdb_queue(&self->c->db, 5, &g, T0, err, sizeof(err)));
	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	EXPECT_EQ(1, self->m.welcome.welcome.cmd_next);
	/* the first frame asks for an ack: the ack carries both commands */
	feed(self, &self->m, NULL, 0, GM_FLAG_ACK_REQ);
	EXPECT_EQ(0, flush_take(self, &self->m, _metadata, NULL, NULL, cmds, &n));
	ASSERT_EQ(2, n);
	EXPECT_EQ(GMP_TARIFF, cmds[0].type);
	EXPECT_EQ(1, cmds[0].tariff.tseq);
	EXPECT_EQ(GMP_GRANT, cmds[1].type);
	EXPECT_EQ(2, cmds[1].grant.tseq);
	EXPECT_EQ(2, q1(self->c, "SELECT COUNT(*) FROM outgoing WHERE sent IS NOT NULL"));
	/* tariff applied, grant refused as expired */
	res[0] = (struct gmp_msg){ .type = GMP_CMD_RESULT, .cmd_result = { 1, GMP_CMD_OK } };
	res[1] = (struct gmp_msg){ .type = GMP_CMD_RESULT, .cmd_result = { 2, GMP_CMD_EXPIRED } };
	feed(self, &self->m, res, 2, GM_FLAG_ACK_REQ);
	EXPECT_EQ(0, flush_take(self, &self->m, _metadata, NULL, NULL, cmds, &n));
	EXPECT_EQ(0, n);
	EXPECT_EQ(0, q1(self->c, "SELECT status FROM outgoing WHERE tseq = 1"));
	EXPECT_EQ(GMP_CMD_EXPIRED, q1(self->c, "SELECT status FROM outgoing WHERE tseq = 2"));
	EXPECT_EQ(2, q1(self->c, "SELECT cmd_floor FROM meters WHERE id = 5"));

	/* the meter lost its state (floor 0): its tariff comes again, as tseq 3 */
	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	EXPECT_EQ(3, self->m.welcome.welcome.cmd_next);
	/* ... once its first frame in the session proves the HELLO fresh */
	EXPECT_EQ(0, q1(self->c, "SELECT status FROM outgoing WHERE tseq = 1"));
	feed(self, &self->m, NULL, 0, GM_FLAG_ACK_REQ);
	EXPECT_EQ(TDB_CMD_SUPERSEDED, q1(self->c, "SELECT status FROM outgoing WHERE tseq = 1"));
	flush_take(self, &self->m, _metadata, NULL, NULL, cmds, &n);
	ASSERT_EQ(1, n);
	EXPECT_EQ(GMP_TARIFF, cmds[0].type);
	EXPECT_EQ(3, cmds[0].tariff.tseq);
	EXPECT_EQ(120000, cmds[0].tariff.p[0].import_price);
	res[0].cmd_result.tseq = 3;
	feed(self, &self->m, res, 1, 0);
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &self->q));

	/* the town's database is behind the meter (restored): new commands above its floor */
	ASSERT_EQ(0, tdb_queue(&self->c->db, 5, &g, T0, err, sizeof(err)));
	EXPECT_EQ(4, q1(self->c, "SELECT MAX(tseq) FROM outgoing"));
	ASSERT_EQ(0, handshake(self, &self->m, 9, _metadata));
	EXPECT_EQ(10, self->m.welcome.welcome.cmd_next);
	/* renumbered when the session is confirmed, with what was queued meanwhile */
	EXPECT_EQ(4, q1(self->c, "SELECT tseq FROM outgoing WHERE status IS NULL"));
	ASSERT_EQ(0, tdb_queue(&self->c->db, 5, &t, T0, err, sizeof(err)));
	EXPECT_EQ(5, q1(self->c, "SELECT MAX(tseq) FROM outgoing"));
	feed(self, &self->m, NULL, 0, GM_FLAG_ACK_REQ);
	flush_take(self, &self->m, _metadata, NULL, NULL, cmds, &n);
	ASSERT_EQ(2, n);
	EXPECT_EQ(10, cmds[0].grant.tseq);
	EXPECT_EQ(11, cmds[1].tariff.tseq);
	EXPECT_EQ(11, q1(self->c, "SELECT MAX(tseq) FROM outgoing"));
	/* STORAGE: the meter could not persist; the command stays pending and goes again */
	res[0] = (struct gmp_msg){ .type = GMP_CMD_RESULT, .cmd_result = { 10, GMP_CMD_STORAGE } };
	feed(self, &self->m, res, 1, GM_FLAG_ACK_REQ);
	flush_take(self, &self->m, _metadata, NULL, NULL, cmds, &n);
	ASSERT_EQ(2, n);
	EXPECT_EQ(10, cmds[0].grant.tseq);
	EXPECT_EQ(11, cmds[1].tariff.tseq);
}

/*
 * A HELLO older than the randoms townd remembers (TDB_HELLOS per meter) is
 * answered: townd cannot tell it from a fresh one. But nothing it reports
 * is acted on until a frame in its session proves it fresh, which nobody
 * without the meter's key can send: no commands issued again, no journal,
 * the meter's command floor and its live session untouched.
 */
TEST_F(core, hello_replayed_beyond_memory_changes_nothing)
{
	struct gmp_msg t = { .type = GMP_TARIFF, .tariff = { .effective = T0, .n = 1,
		.p = { { 0, 120000, 5000 } } } };
	struct gmp_msg cmds[16], res, r;
	uint8_t env[GMP_PAYLOAD_MAX];
	int len = 0, n = 0, w = 0;
	char err[128];
	int64_t journal, hellos;

	/* captured: the meter's first HELLO, with command floor 0 */
	ASSERT_EQ(TOWND_AUTHENTIC, hello(self, &self->m, 0, NULL, env, &len));
	flush_take(self, &self->m, _metadata, &w, NULL, NULL, NULL);
	ASSERT_EQ(1, w);
	/* later: a tariff applied under a newer session */
	ASSERT_EQ(0, tdb_queue(&self->c->db, 5, &t, T0, err, sizeof(err)));
	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	feed(self, &self->m, NULL, 0, GM_FLAG_ACK_REQ);
	flush_take(self, &self->m, _metadata, NULL, NULL, cmds, &n);
	ASSERT_EQ(1, n);
	res = (struct gmp_msg){ .type = GMP_CMD_RESULT, .cmd_result = { 1, GMP_CMD_OK } };
	feed(self, &self->m, &res, 1, GM_FLAG_ACK_REQ);
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &self->q));
	ASSERT_EQ(1, q1(self->c, "SELECT cmd_floor FROM meters WHERE id = 5"));
	/* townd has forgotten the old random (many handshakes since) */
	ASSERT_EQ(SQLITE_OK, sqlite3_exec(self->c->db.db, "UPDATE meters SET hellos = '' WHERE id = 5",
					  NULL, NULL, NULL));
	core_close(self);
	core_open(self, _metadata);
	ASSERT_EQ(0, handshake(self, &self->m, 1, _metadata));
	feed(self, &self->m, NULL, 0, GM_FLAG_ACK_REQ);
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &self->q));
	journal = q1(self->c, "SELECT COUNT(*) FROM journal");
	hellos = (int64_t)self->c->st.hellos;
	/* the replay: answered, and that is all */
	EXPECT_EQ(TOWND_AUTHENTIC, feed_env(self, &self->m, env, (size_t)len, 0));
	EXPECT_EQ(hellos + 1, (int64_t)self->c->st.hellos);
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &self->q));
	EXPECT_EQ(1, q1(self->c, "SELECT COUNT(*) FROM outgoing"));
	EXPECT_EQ(0, q1(self->c, "SELECT status FROM outgoing WHERE tseq = 1"));
	EXPECT_EQ(1, q1(self->c, "SELECT cmd_floor FROM meters WHERE id = 5"));
	EXPECT_EQ(journal, q1(self->c, "SELECT COUNT(*) FROM journal"));
	/* the meter's own session goes on */
	reading(1, &r);
	feed(self, &self->m, &r, 1, GM_FLAG_ACK_REQ);
	EXPECT_EQ(1, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	EXPECT_EQ(1, q1(self->c, "SELECT COUNT(*) FROM outgoing"));
	EXPECT_EQ(journal, q1(self->c, "SELECT COUNT(*) FROM journal"));
}

/* A meter key rotation: key-rotate record, then a HELLO under the next key promotes it. */
TEST_F(core, meter_key_rotation)
{
	struct gmp_msg k = { .type = GMP_KEY_ROTATE, .key_rotate = { .seq = 1, .time = T0 } };
	struct gmp_keypair next;
	struct gmp_lt lt_next, lt_old = self->m.lt;
	struct gmp_msg r;
	int w = 0;

	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	gmp_keypair_generate(&next);
	memcpy(k.key_rotate.pk, next.pk, GMP_KEY_LEN);
	feed(self, &self->m, &k, 1, 0);
	/* key-rotate is urgent: acknowledged at once */
	EXPECT_EQ(1, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	EXPECT_EQ(1, q1(self->c, "SELECT COUNT(*) FROM meters WHERE id = 5 AND pk_next IS NOT "
		       "NULL"));
	EXPECT_EQ(1, q1(self->c, "SELECT COUNT(*) FROM events WHERE type = 11"));
	/* the old key still works until the meter switches */
	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	ASSERT_EQ(0, gmp_lt_meter(&lt_next, &next, self->town.pk));
	EXPECT_EQ(TOWND_AUTHENTIC, hello(self, &self->m, 0, &lt_next, NULL, NULL));
	self->m.lt = lt_next;
	self->m.kp = next;
	flush_take(self, &self->m, _metadata, &w, NULL, NULL, NULL);
	ASSERT_EQ(1, w);
	EXPECT_EQ(1, q1(self->c, "SELECT COUNT(*) FROM meters WHERE id = 5 AND pk_next IS NULL"));
	{
		char hex[2 * GMP_KEY_LEN + 1], sql[200];

		gmp_hex_encode(next.pk, GMP_KEY_LEN, hex);
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM meters WHERE pk = '%s'", hex);
		EXPECT_EQ(1, q1(self->c, sql));
	}
	reading(2, &r);
	feed(self, &self->m, &r, 1, GM_FLAG_ACK_REQ);
	EXPECT_EQ(2, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	/* and the old key no longer opens a HELLO */
	EXPECT_EQ(TOWND_REJECTED, hello(self, &self->m, 0, &lt_old, NULL, NULL));
	EXPECT_EQ(TOWND_AUTHENTIC, hello(self, &self->m, 0, NULL, NULL, NULL));
}

/* A town key rotation: HELLOs under the current and the next town key both work. */
TEST_F(core, town_key_rotation_accepts_both_keys)
{
	struct gmp_keypair tnext;
	struct gmp_lt lt_next;
	char path[160], err[256];
	int w = 0, n = 0;
	struct gmp_msg msgs[16], r;

	snprintf(path, sizeof(path), "%s/key", self->dir);
	ASSERT_EQ(0, townd_key_write(path, &self->town, err, sizeof(err)));
	gmp_keypair_generate(&tnext);
	snprintf(path, sizeof(path), "%s/key.next", self->dir);
	ASSERT_EQ(0, townd_key_write(path, &tnext, err, sizeof(err)));
	snprintf(path, sizeof(path), "%s/key", self->dir);
	ASSERT_EQ(0, townd_core_set_key_file(self->c, path, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_TRUE(self->c->have_key_next);
	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	ASSERT_EQ(0, gmp_lt_meter(&lt_next, &self->m.kp, tnext.pk));
	EXPECT_EQ(TOWND_AUTHENTIC, hello(self, &self->m, 0, &lt_next, NULL, NULL));
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &self->q));
	for (int i = 0; i < self->q.n; i++)
		w += take(&self->m, &self->q, i, &lt_next, msgs, &n) == 1;
	ASSERT_EQ(1, w);
	reading(1, &r);
	feed(self, &self->m, &r, 1, GM_FLAG_ACK_REQ);
	EXPECT_EQ(1, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	/* --finish: the next key replaces the key, townd notices townctl's change */
	snprintf(err, sizeof(err), "%s/key.next", self->dir);
	ASSERT_EQ(0, rename(err, path));
	ASSERT_EQ(0, tdb_bump_changes(&self->c->db));
	self->now_ms += 2000;
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &self->q));
	EXPECT_FALSE(self->c->have_key_next);
	EXPECT_EQ(0, memcmp(self->c->key.pk, tnext.pk, GMP_KEY_LEN));
	EXPECT_EQ(TOWND_REJECTED, hello(self, &self->m, 0, NULL, NULL, NULL));
	EXPECT_EQ(TOWND_AUTHENTIC, hello(self, &self->m, 0, &lt_next, NULL, NULL));
}

TEST_F(core, revoke_and_replace)
{
	struct tmeter neu;
	struct gmp_msg r;
	char err[128];
	int w = 0;

	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	reading(1, &r);
	feed(self, &self->m, &r, 1, GM_FLAG_ACK_REQ);
	EXPECT_EQ(1, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	ASSERT_EQ(0, tdb_revoke(&self->c->db, 5, T0, err, sizeof(err)));
	self->now_ms += 2000;
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &self->q));
	reading(2, &r);
	EXPECT_EQ(TOWND_REJECTED, feed(self, &self->m, &r, 1, GM_FLAG_ACK_REQ));
	EXPECT_EQ(TOWND_REJECTED, hello(self, &self->m, 0, NULL, NULL, NULL));
	EXPECT_EQ(2, self->c->st.revoked);
	/* new hardware for meter 5: its records continue after the old ones */
	ASSERT_EQ(0, tm_init(&neu, 5, self->town.pk));
	ASSERT_EQ(0, tdb_replace(&self->c->db, 5, neu.kp.pk, T0, err, sizeof(err)));
	self->now_ms += 2000;
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &self->q));
	EXPECT_EQ(TOWND_REJECTED, hello(self, &self->m, 0, NULL, NULL, NULL));
	EXPECT_EQ(TOWND_AUTHENTIC, hello(self, &neu, 0, NULL, NULL, NULL));
	flush_take(self, &neu, _metadata, &w, NULL, NULL, NULL);
	ASSERT_EQ(1, w);
	EXPECT_EQ(1, neu.welcome.welcome.upto);
	EXPECT_EQ(0, neu.welcome.welcome.reg_import_mwh);
	EXPECT_LE(2, q1(self->c, "SELECT COUNT(*) FROM journal WHERE meter = 5"));
}

/*
 * The register view: the last snapshot plus the readings from its time on
 * (not the ones made on an untrusted clock), in the WELCOME.
 */
TEST_F(core, register_view_and_booking_time)
{
	struct gmp_msg m[4];
	int64_t imp;

	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	reading(1, &m[0]);			/* before any snapshot: counts */
	memset(&m[1], 0, sizeof(m[1]));
	m[1].type = GMP_REGISTERS;
	m[1].regs.seq = 2;
	m[1].regs.time = T0 - 3600;
	m[1].regs.import_mwh = 5000000;
	m[1].regs.export_mwh = 7;
	m[1].regs.renew_mwh = 9;
	reading(3, &m[2]);
	m[2].reading.start = T0 - 3600 - 60;	/* straddles the snapshot: not counted */
	reading(4, &m[3]);
	m[3].reading.start = T0 - 3000;		/* after it: counted */
	feed(self, &self->m, m, 4, 0);
	reading(5, &m[0]);
	m[0].reading.start = T0 - 2000;
	m[0].reading.flags = GMP_RF_TIME_UNTRUSTED;	/* not counted, booked on arrival */
	reading(6, &m[1]);
	m[1].reading.start = T0 + 86400;		/* in the future: booked on arrival */
	reading(7, &m[2]);
	m[2].reading.start = T0 - 1000;
	feed(self, &self->m, m, 3, GM_FLAG_ACK_REQ);
	EXPECT_EQ(7, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	imp = 5000000 + (1000 + 4) + (1000 + 6) + (1000 + 7);
	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	EXPECT_EQ(imp, self->m.welcome.welcome.reg_import_mwh);
	EXPECT_EQ(7, self->m.welcome.welcome.reg_export_mwh);
	EXPECT_EQ(9, self->m.welcome.welcome.reg_renew_mwh);
	EXPECT_EQ(T0 + 86400 + 60, self->m.welcome.welcome.reg_time);
	EXPECT_EQ(imp, q1(self->c, "SELECT reg_import FROM meters WHERE id = 5"));
	EXPECT_EQ(T0, q1(self->c, "SELECT booked FROM readings WHERE seq = 5"));
	EXPECT_EQ(T0, q1(self->c, "SELECT booked FROM readings WHERE seq = 6"));
	EXPECT_EQ(T0 - 1000, q1(self->c, "SELECT booked FROM readings WHERE seq = 7"));
}

/* An authentic frame whose plaintext is not the schema: refused whole. */
TEST_F(core, authentic_garbage_is_malformed_and_stores_nothing)
{
	struct gmp_msg r[2];
	int malformed_expected = 0;

	ASSERT_EQ(0, handshake(self, &self->m, 0, _metadata));
	srandom(7);
	for (int i = 0; i < 300; i++) {
		uint8_t plain[64], env[128];
		struct gmp_addr ad = { GM_TYPE_DATA, 1, 5, 0 };
		size_t len = 1 + (size_t)(random() % 60), off = 0;
		struct gmp_msg m;
		int n, ok = 1;

		for (size_t k = 0; k < len; k++)
			plain[k] = (uint8_t)random();
		/* what the decoder alone makes of it (padded) decides the expectation */
		memset(plain + len, 0, gmp_pad_len(len) - len);
		while ((n = gmp_decode_next(plain, gmp_pad_len(len), &off, &m)) == 1)
			if (gmp_type_class(m.type) != GMP_CLASS_UP)
				ok = 0;
		if (n < 0 || !ok)
			malformed_expected++;
		n = gmp_seal(&self->m.s, &ad, plain, len, env, sizeof(env));
		EXPECT_EQ(TOWND_AUTHENTIC, feed_env(self, &self->m, env, (size_t)n, 1));
	}
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &self->q));
	EXPECT_EQ(malformed_expected, self->c->st.malformed);
	EXPECT_LT(250, malformed_expected);
	TH_LOG("%d of 300 malformed, %llu stored", malformed_expected,
	       (unsigned long long)self->c->st.stored);
	/* the session goes on */
	reading(1000000, &r[0]);
	reading(1000001, &r[1]);
	feed(self, &self->m, r, 2, GM_FLAG_ACK_REQ);
	EXPECT_LE(0, flush_take(self, &self->m, _metadata, NULL, NULL, NULL, NULL));
	EXPECT_EQ(0, self->c->st.auth_failed + self->c->st.replayed);
}

TEST_F(core, key_file_checks)
{
	struct gmp_keypair kp;
	char path[160], err[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/key", self->dir);
	ASSERT_EQ(0, townd_key_write(path, &self->town, err, sizeof(err)));
	/* never overwritten */
	EXPECT_EQ(-1, townd_key_write(path, &self->town, err, sizeof(err)));
	ASSERT_EQ(0, townd_key_load(path, &kp, err, sizeof(err)));
	EXPECT_EQ(0, memcmp(kp.pk, self->town.pk, GMP_KEY_LEN));
	EXPECT_EQ(0, memcmp(kp.sk, self->town.sk, GMP_KEY_LEN));
	ASSERT_EQ(0, chmod(path, 0640));
	EXPECT_EQ(-1, townd_key_load(path, &kp, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "must not be accessible by group or others (mode 640)"));
	snprintf(path, sizeof(path), "%s/key2", self->dir);
	f = fopen(path, "w");
	ASSERT_NE(NULL, f);
	fputs("00112233\n", f);
	fclose(f);
	ASSERT_EQ(0, chmod(path, 0600));
	EXPECT_EQ(-1, townd_key_load(path, &kp, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "expected one line of 64 hex digits"));
}

/* The version-1 schema, as townd of issue 6 created it. */
static const char v1_schema[] =
	"CREATE TABLE meters (id INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 65534), "
	"pk TEXT NOT NULL, name TEXT, provisioned BIGINT NOT NULL, "
	"rx_ctr BIGINT NOT NULL DEFAULT 0, tx_ctr BIGINT NOT NULL DEFAULT 0, "
	"acked_upto BIGINT NOT NULL DEFAULT 0, last_seen BIGINT, "
	"rejected BIGINT NOT NULL DEFAULT 0);"
	"CREATE TABLE readings (meter INTEGER NOT NULL REFERENCES meters(id), "
	"seq BIGINT NOT NULL, start BIGINT NOT NULL, interval_s INTEGER NOT NULL, "
	"import_mwh BIGINT NOT NULL, export_mwh BIGINT NOT NULL, renew_mwh BIGINT NOT NULL, "
	"flags INTEGER NOT NULL, received BIGINT NOT NULL, PRIMARY KEY (meter, seq));"
	"CREATE TABLE events (meter INTEGER NOT NULL REFERENCES meters(id), "
	"seq BIGINT NOT NULL, type INTEGER NOT NULL, time BIGINT NOT NULL, "
	"a BIGINT, b BIGINT, c BIGINT, received BIGINT NOT NULL, PRIMARY KEY (meter, seq));"
	"CREATE TABLE month_totals (meter INTEGER NOT NULL REFERENCES meters(id), "
	"month TEXT NOT NULL, import_mwh BIGINT NOT NULL, export_mwh BIGINT NOT NULL, "
	"renew_mwh BIGINT NOT NULL, readings BIGINT NOT NULL, PRIMARY KEY (meter, month));"
	"CREATE TABLE outgoing (meter INTEGER NOT NULL REFERENCES meters(id), "
	"tseq BIGINT NOT NULL, body TEXT NOT NULL, created BIGINT NOT NULL, acked BIGINT, "
	"PRIMARY KEY (meter, tseq));"
	"CREATE TABLE stats (name TEXT PRIMARY KEY, value BIGINT NOT NULL);";

static int query1(struct townd_db *d, const char *sql, int64_t *v)
{
	sqlite3_stmt *st;
	int rc;

	*v = -1;
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* A database written by townd version 1 opens as the current version with everything kept. */
TEST(migration_from_version_1)
{
	char dir[64], db[128], err[256], sql[1024], hex[2 * GMP_KEY_LEN + 1];
	struct gmp_keypair kp;
	struct townd_db d;
	sqlite3 *raw;
	int64_t v;

	ASSERT_LE(0, sodium_init());
	strcpy(dir, "/tmp/townd-mig-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/v1.db", dir);
	gmp_keypair_generate(&kp);
	gmp_hex_encode(kp.pk, GMP_KEY_LEN, hex);
	ASSERT_EQ(SQLITE_OK, sqlite3_open(db, &raw));
	ASSERT_EQ(SQLITE_OK, sqlite3_exec(raw, v1_schema, NULL, NULL, NULL));
	snprintf(sql, sizeof(sql),
		 "INSERT INTO meters VALUES (7, '%s', 'seven', 1, 4096, 3072, 3, %d, 2);"
		 "INSERT INTO readings VALUES (7, 1, %d, 60, 100, 0, 0, 0, %d),"
		 " (7, 3, %d, 60, 300, 5, 0, 0, %d);"
		 "INSERT INTO events VALUES (7, 2, 2, %d, 40000, 50, 60, %d);"
		 "INSERT INTO month_totals VALUES (7, '2026-09', 400, 5, 0, 2);"
		 "INSERT INTO outgoing VALUES (7, 1, '%s', 1, %d), (7, 2, '%s', 2, NULL);"
		 "INSERT INTO stats VALUES ('stored', 3);",
		 hex, T0, T0 - 120, T0, T0 - 30, T0, T0 - 60, T0,
		 "8511010219012c1a6a9b0000", T0, "8511020219012c1a6a9b0000");
	ASSERT_EQ(SQLITE_OK, sqlite3_exec(raw, sql, NULL, NULL, NULL)) TH_LOG("%s", sqlite3_errmsg(raw));
	sqlite3_close(raw);

	ASSERT_EQ(0, tdb_open(&d, db, 1, err, sizeof(err))) TH_LOG("%s", err);
#define Q(s, want) do { EXPECT_EQ(0, query1(&d, s, &v)); EXPECT_EQ(want, v) TH_LOG("%s", s); } while (0)
	/* 1 -> 2 -> 3 */
	Q("SELECT value FROM meta WHERE name = 'schema_version'", TOWND_SCHEMA_VERSION);
	Q("SELECT COUNT(*) FROM pragma_table_info('meters') WHERE name IN ('rx_ctr', 'tx_ctr')", 0);
	Q("SELECT acked_upto FROM meters WHERE id = 7", 3);
	Q("SELECT COUNT(*) FROM readings WHERE meter = 7", 2);
	Q("SELECT SUM(booked) FROM readings", (int64_t)(T0 - 120) + (T0 - 30));
	Q("SELECT a FROM events WHERE seq = 2", 40000);
	Q("SELECT readings FROM month_totals", 2);
	Q("SELECT status FROM outgoing WHERE tseq = 1", TDB_CMD_V1_ACKED);
	Q("SELECT COUNT(*) FROM outgoing WHERE tseq = 2 AND status IS NULL", 1);
	Q("SELECT type FROM outgoing WHERE tseq = 2", GMP_GRANT);
	/* register view: the snapshot (seq 2) plus reading 3, which starts after it */
	Q("SELECT reg_import FROM meters WHERE id = 7", 40000 + 300);
	Q("SELECT reg_export FROM meters WHERE id = 7", 50 + 5);
	Q("SELECT COUNT(*) FROM journal", 3);	/* one line per migration step */
	tdb_close(&d);
	/* and opens again without migrating twice */
	ASSERT_EQ(0, tdb_open(&d, db, 1, err, sizeof(err))) TH_LOG("%s", err);
	Q("SELECT COUNT(*) FROM journal", 3);
	tdb_close(&d);
#undef Q
	snprintf(sql, sizeof(sql), "rm -rf '%s'", dir);
	ASSERT_EQ(0, system(sql));
}

TEST_HARNESS_MAIN
