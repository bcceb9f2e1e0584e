// SPDX-License-Identifier: GPL-2.0
/*
 * townd ingest core without sockets: acknowledgement windows, SYNC,
 * persistence of counters across a restart, and a crash between commit
 * and sending the acknowledgement (the resent records are duplicates).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"

#include "gmproto.h"
#include "townd_core.h"

struct acks {
	int n;
	uint64_t conn[16];
	uint8_t wire[16][GM_MAX_WIRE];
	size_t len[16];
};

static void collect(void *ctx, uint64_t conn, const uint8_t *wire, size_t len)
{
	struct acks *a = ctx;

	if (a->n < 16) {
		a->conn[a->n] = conn;
		memcpy(a->wire[a->n], wire, len);
		a->len[a->n++] = len;
	}
}

/* Decode an ack frame as meter m would: returns upto, -1 if it does not open. */
static int64_t open_ack(struct gmp_session *m, uint16_t id, const uint8_t *wire, size_t len)
{
	struct gm_rx rx;
	enum gm_rx_status st;
	uint8_t plain[GM_MAX_PAYLOAD];
	struct gmp_msg g;
	struct gmp_addr a;
	size_t off = 0;
	int64_t upto = -1;
	int n;

	gm_rx_init(&rx);
	gm_rx_feed(&rx, wire, len, &st);
	if (st != GM_RX_FRAME || rx.hdr.dst != id || rx.hdr.src != 0)
		return -1;
	a = (struct gmp_addr){ rx.hdr.type, rx.hdr.flags, rx.hdr.src, rx.hdr.dst };
	n = gmp_open(m, &a, rx.payload, rx.payload_len, plain, sizeof(plain), NULL);
	if (n < 0)
		return -1;
	while (gmp_decode_next(plain, (size_t)n, &off, &g) == 1)
		if (g.type == GMP_ACK)
			upto = g.ack.upto;
	return upto;
}

FIXTURE(core) {
	char dir[64], db[128];
	struct gmp_keypair town, meter;
	struct gmp_session ms;		/* the meter's side */
	struct townd_core *c;
	uint16_t fseq;
};

static void core_open(struct _test_data_core *self, struct __test_metadata *_metadata)
{
	char err[256];

	self->c = malloc(sizeof(*self->c));
	ASSERT_NE(NULL, self->c);
	ASSERT_EQ(0, townd_core_init(self->c, self->db, 0, &self->town, err, sizeof(err)))
		TH_LOG("%s", err);
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
	gmp_keypair_generate(&self->meter);
	ASSERT_EQ(0, gmp_session_meter(&self->ms, &self->meter, self->town.pk));
	core_open(self, _metadata);
	ASSERT_EQ(0, tdb_add_meter(&self->c->db, 5, self->meter.pk, "five", 1, err, sizeof(err)));
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

/* Feed one sealed frame with the given messages to the core. */
static int feed(struct _test_data_core *self, const struct gmp_msg *msgs, size_t n,
		unsigned int flags)
{
	uint8_t plain[GMP_PLAIN_MAX], env[GM_MAX_PAYLOAD];
	struct gmp_addr a = { GM_TYPE_DATA, (uint8_t)flags, 5, 0 };
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, 5, 0, self->fseq++ };
	size_t off = 0;
	int len;

	for (size_t i = 0; i < n; i++)
		gmp_encode(&msgs[i], plain, sizeof(plain), &off);
	len = gmp_seal(&self->ms, &a, plain, off, env, sizeof(env));
	return townd_core_frame(self->c, 77, &h, env, (size_t)len, 1790000000);
}

static void reading(int64_t seq, struct gmp_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = GMP_READING;
	m->reading.seq = seq;
	m->reading.start = 1790000000 + 60 * seq;
	m->reading.interval_s = 60;
	m->reading.import_mwh = 1000 + seq;
}

TEST_F(core, records_after_a_gap_wait_for_it)
{
	struct gmp_msg r[3];
	struct acks a = { 0 };

	reading(1, &r[0]);
	reading(2, &r[1]);
	reading(4, &r[2]);
	feed(self, r, 3, GM_FLAG_ACK_REQ);
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &a));
	ASSERT_EQ(1, a.n);
	EXPECT_EQ(77, a.conn[0]);
	EXPECT_EQ(2, open_ack(&self->ms, 5, a.wire[0], a.len[0]));
	/* 4 came before 3: not stored, so that storage follows the meter's order */
	EXPECT_EQ(2, self->c->st.stored);
	EXPECT_EQ(1, self->c->st.ahead);
	reading(3, &r[0]);
	feed(self, r, 1, GM_FLAG_ACK_REQ);
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &a));
	ASSERT_EQ(2, a.n);
	EXPECT_EQ(3, open_ack(&self->ms, 5, a.wire[1], a.len[1]));
	/* the meter's go-back-N resend of 3 and 4 */
	reading(3, &r[0]);
	reading(4, &r[1]);
	feed(self, r, 2, 0);
	EXPECT_EQ(4, self->c->st.stored);
	EXPECT_EQ(1, self->c->st.duplicates);
	/* no ack requested, nothing urgent: no ack frame */
	reading(5, &r[0]);
	feed(self, r, 1, 0);
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &a));
	EXPECT_EQ(2, a.n);
	/* an alarm is acknowledged at once (after 4 and 5) */
	memset(&r[0], 0, sizeof(r[0]));
	r[0].type = GMP_ALARM;
	r[0].alarm.seq = 6;
	r[0].alarm.time = 1790000100;
	r[0].alarm.code = 3;
	r[0].alarm.active = 1;
	r[0].alarm.value = -40;
	feed(self, r, 1, 0);
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &a));
	ASSERT_EQ(3, a.n);
	EXPECT_EQ(6, open_ack(&self->ms, 5, a.wire[2], a.len[2]));
}

TEST_F(core, sync_skips_records_the_meter_no_longer_has)
{
	struct gmp_msg r[2];
	struct acks a = { 0 };

	reading(1, &r[0]);
	feed(self, r, 1, 0);
	/* the meter's disk budget dropped 2..99: it says its oldest is 100 */
	memset(&r[0], 0, sizeof(r[0]));
	r[0].type = GMP_SYNC;
	r[0].sync.base = 100;
	reading(100, &r[1]);
	feed(self, r, 2, GM_FLAG_ACK_REQ);
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &a));
	ASSERT_EQ(1, a.n);
	EXPECT_EQ(100, open_ack(&self->ms, 5, a.wire[0], a.len[0]));
}

/*
 * Commit succeeded, the process died before the acknowledgement left:
 * after a restart the meter resends; nothing is stored twice, the replay
 * counter survived, and the server's send counter never repeats.
 */
TEST_F(core, crash_between_commit_and_ack)
{
	struct gmp_msg r[10];
	struct acks lost = { 0 }, a = { 0 };
	uint64_t ack_ctr_before;

	for (int i = 0; i < 10; i++)
		reading(i + 1, &r[i]);
	feed(self, r, 10, GM_FLAG_ACK_REQ);
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &lost));	/* never delivered */
	ASSERT_EQ(1, lost.n);
	ack_ctr_before = self->c->meters[5]->s.tx_ctr;
	core_close(self);
	core_open(self, _metadata);

	/* an old frame replayed by an attacker after the restart */
	{
		struct gmp_session old = self->ms;
		struct gmp_msg x;

		old.tx_ctr = 0;		/* counter 1 again */
		reading(11, &x);
		uint8_t plain[64], env[128];
		struct gmp_addr ad = { GM_TYPE_DATA, 0, 5, 0 };
		struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, 0, 8, 5, 0, 999 };
		size_t off = 0;
		int len;

		gmp_encode(&x, plain, sizeof(plain), &off);
		len = gmp_seal(&old, &ad, plain, off, env, sizeof(env));
		townd_core_frame(self->c, 78, &h, env, (size_t)len, 1790000000);
		EXPECT_EQ(1, self->c->st.replayed);
	}
	/* the meter resends all ten */
	feed(self, r, 10, GM_FLAG_ACK_REQ);
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &a));
	ASSERT_EQ(1, a.n);
	EXPECT_EQ(10, open_ack(&self->ms, 5, a.wire[0], a.len[0]));
	EXPECT_EQ(10, self->c->st.duplicates);
	EXPECT_EQ(0, self->c->st.stored);
	/* the restarted server skipped every counter it might have used */
	EXPECT_LT(ack_ctr_before + TOWND_CTR_RESERVE - 1, self->c->meters[5]->s.tx_ctr);
	{
		sqlite3_stmt *st;

		ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(self->c->db.db,
			"SELECT COUNT(*), SUM(import_mwh) FROM readings WHERE meter = 5", -1, &st,
			NULL));
		ASSERT_EQ(SQLITE_ROW, sqlite3_step(st));
		EXPECT_EQ(10, sqlite3_column_int64(st, 0));
		EXPECT_EQ(10 * 1000 + 55, sqlite3_column_int64(st, 1));
		sqlite3_finalize(st);
	}
}

TEST_F(core, bad_frames_change_nothing)
{
	struct gmp_msg r;
	struct acks a = { 0 };
	uint8_t junk[40];
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, 1, 8, 5, 0, 1 };

	for (int i = 0; i < 200; i++) {
		randombytes_buf(junk, sizeof(junk));
		junk[0] = GMP_VERSION;
		EXPECT_EQ(TOWND_REJECTED, townd_core_frame(self->c, 1, &h, junk,
							   (size_t)(i % (int)sizeof(junk)),
							   1790000000));
	}
	/* to another meter id, not provisioned; and not for the server */
	h.src = 6;
	EXPECT_EQ(TOWND_REJECTED, townd_core_frame(self->c, 1, &h, junk, sizeof(junk), 1790000000));
	h.src = 5;
	h.dst = 7;
	EXPECT_EQ(TOWND_REJECTED, townd_core_frame(self->c, 1, &h, junk, sizeof(junk), 1790000000));
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &a));
	EXPECT_EQ(0, a.n);
	EXPECT_EQ(0, self->c->st.stored);
	EXPECT_EQ(200, self->c->st.auth_failed + self->c->st.truncated + self->c->st.replayed);
	EXPECT_EQ(1, self->c->st.unknown_meter);
	EXPECT_EQ(1, self->c->st.not_for_us);
	/* the next real frame is accepted: nothing moved the counter */
	reading(1, &r);
	EXPECT_EQ(TOWND_AUTHENTIC, feed(self, &r, 1, GM_FLAG_ACK_REQ));
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &a));
	ASSERT_EQ(1, a.n);
	EXPECT_EQ(1, open_ack(&self->ms, 5, a.wire[0], a.len[0]));
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

/* Authentic frames whose plaintext is not the schema: refused whole. */
TEST_F(core, authentic_garbage_is_malformed_and_stores_nothing)
{
	struct acks a = { 0 };
	struct gmp_msg r[2];
	int malformed_expected = 0;

	srandom(7);
	for (int i = 0; i < 300; i++) {
		uint8_t plain[64], env[128];
		struct gmp_addr ad = { GM_TYPE_DATA, 1, 5, 0 };
		struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, 1, 8, 5, 0, self->fseq++ };
		size_t len = 1 + (size_t)(random() % 60), off = 0;
		struct gmp_msg m;
		int n, ok = 1;

		for (size_t k = 0; k < len; k++)
			plain[k] = (uint8_t)random();
		/* what the decoder alone makes of it decides the expectation */
		while ((n = gmp_decode_next(plain, len, &off, &m)) == 1)
			if (m.type >= 16)
				ok = 0;
		if (n < 0 || !ok)
			malformed_expected++;
		n = gmp_seal(&self->ms, &ad, plain, len, env, sizeof(env));
		townd_core_frame(self->c, 1, &h, env, (size_t)n, 1790000000);
	}
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &a));
	EXPECT_EQ(malformed_expected, self->c->st.malformed);
	EXPECT_LT(250, malformed_expected);
	if (malformed_expected == 300)
		EXPECT_EQ(0, self->c->st.stored);
	/* the random bytes that happened to decode were valid records */
	TH_LOG("%d of 300 malformed, %llu stored", malformed_expected,
	       (unsigned long long)self->c->st.stored);
	/* the session goes on */
	reading(1000000, &r[0]);
	reading(1000001, &r[1]);
	feed(self, r, 2, GM_FLAG_ACK_REQ);
	ASSERT_EQ(0, townd_core_flush(self->c, collect, &a));
	EXPECT_LE(1, a.n);
	EXPECT_EQ(0, self->c->st.auth_failed + self->c->st.replayed);
}

TEST_HARNESS_MAIN
