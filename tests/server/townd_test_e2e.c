// SPDX-License-Identifier: GPL-2.0
/*
 * townd end to end on the host: the real server loop (townd_run) in a
 * child process, listening on 127.0.0.1 only, simulated meters speaking
 * gmproto in link frames over TCP, and the SQLite database checked
 * afterwards against values the tests compute themselves.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "simmeter.h"
#include "simtown.h"
#include "townd_config.h"
#include "townd_core.h"
#include "townd_db.h"
#include "townd_net.h"

#define MONTH_OF_TEST_READINGS	"2026-09"	/* date -u -d @1790000000 */

/* Provision meter id: a fresh key pair, registered in the database. */
static int provision(struct sim_town *t, uint16_t id, struct simmeter *m)
{
	struct gmp_keypair kp;

	gmp_keypair_generate(&kp);
	return sim_town_add(t, id, kp.pk) ? -1 : simmeter_init(m, id, &kp, t->kp.pk);
}

/*
 * Every reading of meter id in the database equals sim_reading(id, seq),
 * the seqs are exactly 1..n, each once, stored in that order, and the
 * month total is their sum. Returns a description of the first mismatch.
 */
static const char *check_readings(struct sim_town *t, uint16_t id, int64_t n)
{
	int64_t imp = 0, exp = 0, expect = 1;
	sqlite3 *db;
	sqlite3_stmt *st;
	const char *bad = NULL;

	if (sqlite3_open_v2(t->cfg.database, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return "open";
	if (sqlite3_prepare_v2(db, "SELECT seq, start, interval_s, import_mwh, export_mwh, "
			       "renew_mwh, flags FROM readings WHERE meter = ? ORDER BY rowid",
			       -1, &st, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return "prepare";
	}
	sqlite3_bind_int(st, 1, id);
	while (!bad && sqlite3_step(st) == SQLITE_ROW) {
		struct gmp_msg w;

		sim_reading(id, expect, &w);
		if (sqlite3_column_int64(st, 0) != expect)
			bad = "sequence out of order, missing or duplicated";
		else if (sqlite3_column_int64(st, 1) != w.reading.start ||
			 sqlite3_column_int64(st, 2) != w.reading.interval_s ||
			 sqlite3_column_int64(st, 3) != w.reading.import_mwh ||
			 sqlite3_column_int64(st, 4) != w.reading.export_mwh ||
			 sqlite3_column_int64(st, 5) != w.reading.renew_mwh ||
			 sqlite3_column_int64(st, 6) != w.reading.flags)
			bad = "stored values differ from those sent";
		imp += w.reading.import_mwh;
		exp += w.reading.export_mwh;
		expect++;
	}
	sqlite3_finalize(st);
	if (!bad && expect != n + 1)
		bad = "wrong number of readings";
	if (!bad && n) {
		if (sqlite3_prepare_v2(db, "SELECT import_mwh, export_mwh, readings FROM month_totals "
				       "WHERE meter = ? AND month = '" MONTH_OF_TEST_READINGS "'",
				       -1, &st, NULL) != SQLITE_OK) {
			bad = "prepare";
		} else {
			sqlite3_bind_int(st, 1, id);
			if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int64(st, 0) != imp ||
			    sqlite3_column_int64(st, 1) != exp || sqlite3_column_int64(st, 2) != n)
				bad = "month totals differ from the sum of the readings";
			sqlite3_finalize(st);
		}
	}
	sqlite3_close(db);
	return bad;
}

/* Wait for an ack of at least upto; returns the highest seen, or -1. */
static int64_t ack_upto(struct simmeter *m, int fd, struct sim_rx *rx, int64_t upto)
{
	struct sim_ack a;
	int64_t best = -1;

	while (best < upto && sim_wait_ack(m, fd, rx, 5000, &a) == 1)
		if (a.upto > best)
			best = a.upto;
	return best;
}

FIXTURE(e2e) {
	struct sim_town t;
	struct sim_rx rx;
};

FIXTURE_SETUP(e2e)
{
	ASSERT_LE(0, sodium_init());
	ASSERT_EQ(0, sim_town_setup(&self->t, "townd-e2e"));
	sim_rx_init(&self->rx);
}

FIXTURE_TEARDOWN(e2e)
{
	sim_town_teardown(&self->t, false);
}

TEST_F(e2e, meter_reports_and_is_acknowledged)
{
	struct simmeter a;
	struct sim_ack ack;
	int fd;

	ASSERT_EQ(0, provision(&self->t, 1, &a));
	sim_town_start(&self->t);
	fd = sim_connect(self->t.port);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, sim_handshake(&a, fd, &self->rx, 5000, &ack));
	/* the WELCOME carries the server's time and what it holds */
	EXPECT_LT((int64_t)time(NULL) * 1000 - 5000, ack.time_ms);
	EXPECT_GE((int64_t)time(NULL) * 1000 + 1000, ack.time_ms);
	EXPECT_EQ(0, ack.upto);
	ASSERT_EQ(0, sim_send_range(&a, fd, 1, 10, 1));
	ASSERT_EQ(1, sim_wait_ack(&a, fd, &self->rx, 5000, &ack));
	/* acknowledgements are cumulative: one may cover several frames */
	if (ack.upto < 10)
		EXPECT_EQ(10, ack_upto(&a, fd, &self->rx, 10));
	close(fd);
	EXPECT_EQ(0, sim_town_stop(&self->t, SIGTERM));
	EXPECT_EQ(NULL, check_readings(&self->t, 1, 10));
	EXPECT_EQ(10, sim_town_q1(&self->t, "SELECT acked_upto FROM meters WHERE id = ?", 1));
	EXPECT_EQ(10, sim_town_stat(&self->t, "stored"));
	EXPECT_EQ(0, sim_town_stat(&self->t, "auth_failed"));
}

/*
 * A's modem fails: its frames reach townd over neighbour B's connection,
 * which cannot read them; the acknowledgements come back the same way.
 * Then A's modem recovers and A uses its own connection again.
 */
TEST_F(e2e, failover_through_neighbour_exactly_once_in_order)
{
	struct simmeter a, b;
	struct sim_rx rxb;
	struct gmp_msg r;
	uint8_t wire[GM_MAX_WIRE], plain[64], out[GM_MAX_PAYLOAD];
	struct gm_rx grx;
	size_t plen = 0;
	int fa, fb, len;

	ASSERT_EQ(0, provision(&self->t, 1, &a));
	ASSERT_EQ(0, provision(&self->t, 2, &b));
	sim_town_start(&self->t);
	sim_rx_init(&rxb);
	fa = sim_connect(self->t.port);
	fb = sim_connect(self->t.port);
	ASSERT_LE(0, fa);
	ASSERT_LE(0, fb);
	{
		struct sim_ack ack;

		ASSERT_EQ(1, sim_handshake(&a, fa, &self->rx, 5000, &ack));
		ASSERT_EQ(1, sim_handshake(&b, fb, &rxb, 5000, &ack));
	}
	ASSERT_EQ(0, sim_send_range(&a, fa, 1, 5, 1));
	ASSERT_EQ(5, ack_upto(&a, fa, &self->rx, 5));
	close(fa);			/* A's modem: NO CARRIER */

	/* what B forwards: routing header in clear, the rest opaque to B */
	sim_reading(1, 6, &r);
	ASSERT_EQ(0, gmp_encode(&r, plain, sizeof(plain), &plen));
	len = simmeter_frame(&a, &r, 1, GM_FLAG_ACK_REQ, wire, sizeof(wire));
	ASSERT_LT(0, len);
	gm_rx_init(&grx);
	{
		enum gm_rx_status st;
		struct gmp_addr ad;

		gm_rx_feed(&grx, wire, (size_t)len, &st);
		ASSERT_EQ(GM_RX_FRAME, st);
		EXPECT_EQ(1, grx.hdr.src);
		EXPECT_EQ(0, grx.hdr.dst);
		EXPECT_EQ(NULL, memmem(grx.payload, grx.payload_len, plain, plen));
		ad = (struct gmp_addr){ .type = grx.hdr.type, .flags = grx.hdr.flags,
					.src = grx.hdr.src, .dst = grx.hdr.dst };
		/* neither B's session nor B's long-term keys open it */
		{
			struct gmp_session bs = b.s;

			bs.sid = grx.payload[1];
			EXPECT_GT(0, gmp_open(&bs, &ad, grx.payload, grx.payload_len, out,
					      sizeof(out), NULL));
			memcpy(bs.rx_key, b.lt.rx, GMP_KEY_LEN);
			EXPECT_GT(0, gmp_open(&bs, &ad, grx.payload, grx.payload_len, out,
					      sizeof(out), NULL));
			memcpy(bs.rx_key, b.lt.tx, GMP_KEY_LEN);
			EXPECT_GT(0, gmp_open(&bs, &ad, grx.payload, grx.payload_len, out,
					      sizeof(out), NULL));
		}
	}
	ASSERT_EQ(0, sim_send_all(fb, wire, (size_t)len));
	ASSERT_EQ(0, sim_send_range(&a, fb, 7, 12, 2));
	/* B's own reading interleaved on its link */
	ASSERT_EQ(0, sim_send_range(&b, fb, 1, 3, 3));
	EXPECT_EQ(12, ack_upto(&a, fb, &rxb, 12));

	/* the modem is back */
	fa = sim_connect(self->t.port);
	ASSERT_LE(0, fa);
	sim_rx_init(&self->rx);
	ASSERT_EQ(0, sim_send_range(&a, fa, 13, 20, 4));
	EXPECT_EQ(20, ack_upto(&a, fa, &self->rx, 20));
	close(fa);
	close(fb);
	EXPECT_EQ(0, sim_town_stop(&self->t, SIGTERM));
	EXPECT_EQ(NULL, check_readings(&self->t, 1, 20));
	EXPECT_EQ(NULL, check_readings(&self->t, 2, 3));
	EXPECT_EQ(0, sim_town_stat(&self->t, "duplicates"));
}

TEST_F(e2e, replayed_forged_reordered_and_unknown_refused)
{
	struct simmeter a, stranger;
	struct gmp_keypair skp;
	struct gmp_msg r[2];
	uint8_t f1[GM_MAX_WIRE], f2[GM_MAX_WIRE], f3[GM_MAX_WIRE], forged[GM_MAX_WIRE];
	int l1, l2, l3, lf, fd;

	ASSERT_EQ(0, provision(&self->t, 1, &a));
	gmp_keypair_generate(&skp);
	ASSERT_EQ(0, simmeter_init(&stranger, 9, &skp, self->t.kp.pk));
	sim_town_start(&self->t);
	fd = sim_connect(self->t.port);
	ASSERT_LE(0, fd);
	{
		struct sim_ack ack;

		ASSERT_EQ(1, sim_handshake(&a, fd, &self->rx, 5000, &ack));
	}

	sim_reading(1, 1, &r[0]);
	l1 = simmeter_frame(&a, r, 1, GM_FLAG_ACK_REQ, f1, sizeof(f1));
	sim_reading(1, 2, &r[0]);
	l2 = simmeter_frame(&a, r, 1, 0, f2, sizeof(f2));
	sim_reading(1, 3, &r[0]);
	l3 = simmeter_frame(&a, r, 1, GM_FLAG_ACK_REQ, f3, sizeof(f3));
	ASSERT_LT(0, l1);
	ASSERT_LT(0, l2);
	ASSERT_LT(0, l3);
	/* forged: reading 2's frame with a changed ciphertext byte, valid CRC */
	{
		struct gm_rx grx;
		enum gm_rx_status st;
		uint8_t pl[GM_MAX_PAYLOAD];
		struct gm_hdr h;

		gm_rx_init(&grx);
		gm_rx_feed(&grx, f2, (size_t)l2, &st);
		ASSERT_EQ(GM_RX_FRAME, st);
		h = grx.hdr;
		memcpy(pl, grx.payload, grx.payload_len);
		pl[grx.payload_len / 2] ^= 0x40;
		lf = gm_frame_encode(&h, pl, grx.payload_len, forged, sizeof(forged));
		ASSERT_LT(0, lf);
	}
	ASSERT_EQ(0, sim_send_all(fd, f1, (size_t)l1));
	EXPECT_EQ(1, ack_upto(&a, fd, &self->rx, 1));
	ASSERT_EQ(0, sim_send_all(fd, f1, (size_t)l1));		/* replay */
	ASSERT_EQ(0, sim_send_all(fd, forged, (size_t)lf));	/* forgery */
	ASSERT_EQ(0, sim_send_all(fd, f3, (size_t)l3));		/* reading 3 */
	ASSERT_EQ(0, sim_send_all(fd, f2, (size_t)l2));		/* reordered: too late */
	/* a meter nobody provisioned */
	l1 = simmeter_hello(&stranger, 0, f1, sizeof(f1));
	ASSERT_EQ(0, sim_send_all(fd, f1, (size_t)l1));
	/* line noise */
	ASSERT_EQ(0, sim_send_all(fd, "\0garbage\0", 9));
	/* reading 3 came while 2 was missing: not stored, the ack stays at 1 */
	EXPECT_EQ(1, ack_upto(&a, fd, &self->rx, 1));
	/* the meter resends 2 and 3 (go-back-N, new frames and counters): 1..3 */
	ASSERT_EQ(0, sim_send_range(&a, fd, 2, 3, 1));
	EXPECT_EQ(3, ack_upto(&a, fd, &self->rx, 3));
	close(fd);
	EXPECT_EQ(0, sim_town_stop(&self->t, SIGTERM));

	EXPECT_EQ(2, sim_town_stat(&self->t, "replayed"));	/* f1 again, f2 late */
	EXPECT_EQ(1, sim_town_stat(&self->t, "auth_failed"));
	EXPECT_EQ(1, sim_town_stat(&self->t, "unknown_meter"));
	EXPECT_EQ(1, sim_town_stat(&self->t, "framing_errors"));
	EXPECT_EQ(3, sim_town_q1(&self->t, "SELECT rejected FROM meters WHERE id = ?", 1));
	EXPECT_EQ(0, sim_town_q1(&self->t, "SELECT COUNT(*) FROM readings WHERE meter = ?", 9));
	/* reading 3 arrived before 2: refused then, stored once each in order */
	EXPECT_EQ(3, sim_town_q1(&self->t, "SELECT COUNT(*) FROM readings WHERE meter = ?", 1));
	EXPECT_EQ(3, sim_town_stat(&self->t, "stored"));
	EXPECT_EQ(1, sim_town_stat(&self->t, "ahead"));
	EXPECT_EQ(1, sim_town_q1(&self->t, "SELECT COUNT(*) FROM readings WHERE meter = ? AND seq = 3 AND "
		       "rowid > (SELECT rowid FROM readings WHERE meter = 1 AND seq = 2)", 1));
}

/*
 * kill -9 in the middle of pipelined transfers (three rounds, killed at
 * different points), restart, handshake again. What was acknowledged is
 * on disk; the WELCOME says exactly what is on disk (acknowledged or
 * not), so the meter sends from there and nothing is stored twice.
 */
TEST_F(e2e, townd_killed_mid_transfer_loses_and_duplicates_nothing)
{
	static const int delay_us[] = { 0, 1000, 5000 };
	struct simmeter a;
	struct sim_ack ack;
	int64_t acked = 0, sent = 0, on_disk = 0;
	int fd;

	ASSERT_EQ(0, provision(&self->t, 1, &a));
	for (size_t r = 0; r < sizeof(delay_us) / sizeof(delay_us[0]); r++) {
		sim_town_start(&self->t);
		fd = sim_connect(self->t.port);
		ASSERT_LE(0, fd);
		sim_rx_init(&self->rx);
		ASSERT_EQ(1, sim_handshake(&a, fd, &self->rx, 5000, &ack));
		EXPECT_EQ(on_disk, ack.upto);
		acked = ack.upto;
		/* from what the town holds, then more */
		ASSERT_EQ(0, sim_send_range(&a, fd, acked + 1, sent + 1500, 10));
		sent += 1500;
		/* the transfer is under way once a first acknowledgement came */
		ASSERT_EQ(1, sim_wait_ack(&a, fd, &self->rx, 5000, &ack));
		if (ack.upto > acked)
			acked = ack.upto;
		usleep((useconds_t)delay_us[r]);
		EXPECT_EQ(128 + SIGKILL, sim_town_stop(&self->t, SIGKILL));
		while (sim_wait_ack(&a, fd, &self->rx, 300, &ack) == 1)
			if (ack.upto > acked)
				acked = ack.upto;
		close(fd);
		on_disk = sim_town_q1(&self->t, "SELECT COUNT(*) FROM readings WHERE meter = ?", 1);
		/* acknowledged means on disk, and the disk holds a prefix */
		EXPECT_EQ(acked, sim_town_q1(&self->t, "SELECT COUNT(*) FROM readings WHERE meter = 1 "
				    "AND seq <= ?", acked));
		EXPECT_EQ(on_disk, sim_town_q1(&self->t, "SELECT MAX(seq) FROM readings WHERE meter = ?", 1));
		TH_LOG("round %zu: %lld sent, %lld acknowledged, %lld on disk", r,
		       (long long)sent, (long long)acked, (long long)on_disk);
	}
	sim_town_start(&self->t);
	fd = sim_connect(self->t.port);
	ASSERT_LE(0, fd);
	sim_rx_init(&self->rx);
	ASSERT_EQ(1, sim_handshake(&a, fd, &self->rx, 5000, &ack));
	EXPECT_EQ(on_disk, ack.upto);
	ASSERT_EQ(0, sim_send_range(&a, fd, ack.upto + 1, sent + 100, 10));
	sent += 100;
	EXPECT_EQ(sent, ack_upto(&a, fd, &self->rx, sent));
	close(fd);
	EXPECT_EQ(0, sim_town_stop(&self->t, SIGTERM));
	EXPECT_EQ(NULL, check_readings(&self->t, 1, sent));
	EXPECT_EQ(0, sim_town_stat(&self->t, "duplicates"));
}

/* townd down for a while: the backlog arrives complete, in order. */
TEST_F(e2e, backlog_after_outage_arrives_complete)
{
	const int64_t backlog = 3000;	/* two days at one reading a minute */
	struct simmeter a;
	struct sim_ack ack;
	int fd;

	ASSERT_EQ(0, provision(&self->t, 1, &a));
	sim_town_start(&self->t);
	fd = sim_connect(self->t.port);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, sim_handshake(&a, fd, &self->rx, 5000, &ack));
	ASSERT_EQ(0, sim_send_range(&a, fd, 1, 20, 10));
	EXPECT_EQ(20, ack_upto(&a, fd, &self->rx, 20));
	close(fd);
	EXPECT_EQ(0, sim_town_stop(&self->t, SIGTERM));
	/* townd is down; readings 21..backlog accumulate in the meter's outbox */
	sim_town_start(&self->t);
	fd = sim_connect(self->t.port);
	ASSERT_LE(0, fd);
	sim_rx_init(&self->rx);
	/* the old session is gone with the process: a frame on it gets a REHELLO */
	ASSERT_EQ(0, sim_send_range(&a, fd, 21, 21, 1));
	ASSERT_EQ(1, sim_wait_ack(&a, fd, &self->rx, 5000, &ack));
	EXPECT_TRUE(ack.rehello);
	ASSERT_EQ(1, sim_handshake(&a, fd, &self->rx, 5000, &ack));
	EXPECT_EQ(20, ack.upto);
	/* as many readings per frame as the padded plaintext holds */
	ASSERT_EQ(0, sim_send_range(&a, fd, 21, backlog, 15));
	EXPECT_EQ(backlog, ack_upto(&a, fd, &self->rx, backlog));
	close(fd);
	EXPECT_EQ(0, sim_town_stop(&self->t, SIGTERM));
	EXPECT_EQ(NULL, check_readings(&self->t, 1, backlog));
}

struct many_ctx {
	struct simmeter *m;
	int n, left;
	int64_t want, *best;
};

/* Acknowledgements for many meters on one connection. */
static int many_cb(void *ctx, const struct gm_hdr *h, const uint8_t *payload, size_t len)
{
	struct many_ctx *mc = ctx;
	int i = (int)h->dst - 100;
	struct sim_ack a;

	if (i < 0 || i >= mc->n || !simmeter_open_ack(&mc->m[i], h, payload, len, &a))
		return 0;
	if (a.upto >= mc->want && mc->best[i] < mc->want)
		mc->left--;
	if (a.upto > mc->best[i])
		mc->best[i] = a.upto;
	return mc->left == 0;
}

/* Many meters over a few connections (forwarded traffic demultiplexed). */
TEST_F(e2e, many_meters_demultiplexed)
{
	enum { METERS = 300, CONNS = 10, READINGS = 30 };
	struct simmeter *m = calloc(METERS, sizeof(*m));
	struct sim_rx *rx = calloc(CONNS, sizeof(*rx));
	int fd[CONNS];

	ASSERT_NE(NULL, m);
	ASSERT_NE(NULL, rx);
	for (int i = 0; i < METERS; i++)
		ASSERT_EQ(0, provision(&self->t, (uint16_t)(100 + i), &m[i]));
	sim_town_start(&self->t);
	for (int c = 0; c < CONNS; c++) {
		fd[c] = sim_connect(self->t.port);
		ASSERT_LE(0, fd[c]);
		sim_rx_init(&rx[c]);
	}
	for (int i = 0; i < METERS; i++) {
		struct sim_ack ack;

		ASSERT_EQ(1, sim_handshake(&m[i], fd[i % CONNS], &rx[i % CONNS], 5000, &ack));
	}
	for (int64_t s = 1; s <= READINGS; s += 3)
		for (int i = 0; i < METERS; i++)
			ASSERT_EQ(0, sim_send_range(&m[i], fd[i % CONNS], s, s + 2, 3));
	for (int c = 0; c < CONNS; c++) {
		struct many_ctx mc = { .m = m, .n = METERS, .want = READINGS,
				       .left = METERS / CONNS };

		mc.best = calloc(METERS, sizeof(*mc.best));
		ASSERT_NE(NULL, mc.best);
		EXPECT_EQ(1, sim_read_frames(fd[c], &rx[c], 10000, many_cb, &mc));
		free(mc.best);
	}
	for (int c = 0; c < CONNS; c++)
		close(fd[c]);
	EXPECT_EQ(0, sim_town_stop(&self->t, SIGTERM));
	for (int i = 0; i < METERS; i++)
		ASSERT_EQ(NULL, check_readings(&self->t, (uint16_t)(100 + i), READINGS));
	EXPECT_EQ(METERS * READINGS, sim_town_stat(&self->t, "stored"));
	free(m);
	free(rx);
}

TEST_HARNESS_MAIN
