// SPDX-License-Identifier: GPL-2.0
/*
 * The meter's uplink logic (lib/proto/gmp_client.c) against the real townd
 * core, in one process with simulated time: ack requests, urgent records,
 * lost frames and resends, a meter restart (no counter reused), a broken
 * route, and records dropped by the disk budget (sync).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"

#include "gmp_client.h"
#include "outbox.h"
#include "townd_core.h"

struct got {
	int n;
	struct gmp_msg m[8];
};

static void on_msg(void *ctx, const struct gmp_msg *m)
{
	struct got *g = ctx;

	if (m->type != GMP_TIME && g->n < 8)
		g->m[g->n++] = *m;
}

struct peer {
	struct got *got;
	struct townd_core *c;
	struct modem_uplink *u;
	int64_t now;
	bool down;			/* frames vanish */
	int frames, requested, urgent_seen;
	unsigned int flags_log[64];
	uint64_t max_ctr;
};

static void to_meter(void *ctx, uint64_t conn, const uint8_t *wire, size_t len)
{
	struct peer *p = ctx;
	struct gm_rx rx;
	enum gm_rx_status st;

	(void)conn;
	gm_rx_init(&rx);
	gm_rx_feed(&rx, wire, len, &st);
	if (st == GM_RX_FRAME && !p->down)
		mu_input(p->u, rx.hdr.type, rx.hdr.flags, rx.payload, rx.payload_len, p->now,
			 p->got ? on_msg : NULL, p->got);
}

static int to_town(void *ctx, unsigned int flags, const uint8_t *payload, size_t len)
{
	struct peer *p = ctx;
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, 21, 0, (u16)p->frames };

	if (p->frames < 64)
		p->flags_log[p->frames] = flags;
	p->frames++;
	p->requested += !!(flags & GM_FLAG_ACK_REQ);
	if (p->down)
		return 0;	/* sent, and lost */
	townd_core_frame(p->c, 1, &h, payload, len, 1790000000);
	return 0;
}

/* Pump, let the server flush, deliver its acks. */
static void cycle(struct peer *p)
{
	mu_tick(p->u, p->now);
	mu_pump(p->u, p->now, to_town, p);
	townd_core_flush(p->c, to_meter, p);
}

FIXTURE(up) {
	char dir[64], db[128], obdir[128];
	struct gmp_keypair town, meter;
	struct townd_core *c;
	struct outbox ob;
	struct modem_uplink u;
	struct mu_config cfg;
	struct peer p;
};

static void meter_open(struct _test_data_up *self, struct __test_metadata *_metadata,
		       uint64_t budget)
{
	char err[256];

	ASSERT_EQ(0, outbox_open(&self->ob, self->obdir, budget, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, mu_init(&self->u, &self->cfg, &self->ob, err, sizeof(err)));
	self->p.u = &self->u;
}

FIXTURE_SETUP(up)
{
	char err[256];

	ASSERT_LE(0, sodium_init());
	strcpy(self->dir, "/tmp/uplink-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->db, sizeof(self->db), "%s/t.db", self->dir);
	snprintf(self->obdir, sizeof(self->obdir), "%s/outbox", self->dir);
	gmp_keypair_generate(&self->town);
	gmp_keypair_generate(&self->meter);
	self->c = malloc(sizeof(*self->c));
	ASSERT_EQ(0, townd_core_init(self->c, self->db, 0, &self->town, err, sizeof(err)));
	ASSERT_EQ(0, tdb_add_meter(&self->c->db, 21, self->meter.pk, NULL, 1, err, sizeof(err)));
	mu_config_defaults(&self->cfg);
	self->cfg.meter_id = 21;
	self->cfg.key = self->meter;
	memcpy(self->cfg.town_pk, self->town.pk, GMP_KEY_LEN);
	self->cfg.ack_timeout_ms = 1000;
	memset(&self->p, 0, sizeof(self->p));
	self->p.c = self->c;
	self->p.now = 1000000;
	meter_open(self, _metadata, 1 << 20);
}

FIXTURE_TEARDOWN(up)
{
	char cmd[128];

	outbox_close(&self->ob);
	townd_core_free(self->c);
	free(self->c);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd)) {
		/* nothing */
	}
}

static void reading(struct modem_uplink *u, int64_t i)
{
	struct gmp_msg g = { .type = GMP_READING };

	g.reading.start = 1790000000 + 60 * i;
	g.reading.interval_s = 60;
	g.reading.import_mwh = 500 + i;
	mu_record(u, &g);
}

static void discard(void *ctx, uint64_t conn, const uint8_t *wire, size_t len)
{
	(void)ctx;
	(void)conn;
	(void)wire;
	(void)len;
}

static int64_t stored(struct townd_core *c)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	townd_core_flush(c, discard, NULL);
	if (sqlite3_prepare_v2(c->db.db, "SELECT COUNT(*) FROM readings WHERE meter = 21", -1,
			       &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

TEST_F(up, live_reports_ask_for_an_ack_every_eighth_frame)
{
	for (int i = 1; i <= 24; i++) {
		reading(&self->u, i);
		cycle(&self->p);
		self->p.now += 60000;
	}
	EXPECT_EQ(24, self->p.frames);
	/* the first frame after start asks (restart safety), then every 8th */
	for (int i = 0; i < 24; i++) {
		EXPECT_EQ(i == 0 || (i + 1) % 8 == 0 ? GM_FLAG_ACK_REQ : 0u,
			  self->p.flags_log[i]) TH_LOG("frame %d", i);
	}
	EXPECT_EQ(24, self->ob.acked);
	EXPECT_EQ(0, mu_backlog(&self->u));
	EXPECT_EQ(0, self->u.missed);
	EXPECT_EQ(24, stored(self->c));
}

TEST_F(up, urgent_records_ask_at_once)
{
	struct gmp_msg al = { .type = GMP_ALARM, .alarm = { .time = 1790000000, .code = 2,
							    .active = 1, .value = 7 } };

	reading(&self->u, 1);
	cycle(&self->p);
	reading(&self->u, 2);
	cycle(&self->p);
	EXPECT_EQ(0u, self->p.flags_log[1]);
	ASSERT_EQ(0, mu_record(&self->u, &al));
	cycle(&self->p);
	EXPECT_EQ((unsigned int)GM_FLAG_ACK_REQ, self->p.flags_log[2]);
	EXPECT_EQ(3, self->ob.acked);
}

TEST_F(up, lost_frames_are_resent_batched_and_stored_once)
{
	for (int i = 1; i <= 8; i++) {
		reading(&self->u, i);
		cycle(&self->p);
	}
	EXPECT_EQ(8, self->ob.acked);
	self->p.down = true;		/* 40 readings vanish on the way */
	for (int i = 9; i <= 48; i++) {
		reading(&self->u, i);
		cycle(&self->p);
	}
	EXPECT_EQ(8, self->ob.acked);
	self->p.now += 2000;		/* the requested ack never came */
	self->p.down = false;
	self->p.frames = 0;
	cycle(&self->p);
	EXPECT_EQ(0, self->u.missed);			/* the resend was acked */
	EXPECT_EQ(48, self->ob.acked);
	EXPECT_EQ(2, self->p.frames);			/* 40 records, 20 per frame */
	EXPECT_EQ(48, stored(self->c));
	EXPECT_EQ(1, self->u.resends);
}

TEST_F(up, broken_route_after_two_missed_acks)
{
	self->p.down = true;
	for (int i = 1; i <= 3; i++) {
		reading(&self->u, i);
		cycle(&self->p);
		self->p.now += 1500;
		cycle(&self->p);
	}
	EXPECT_TRUE(self->u.broken);
	/* meterd switches route */
	mu_route_changed(&self->u);
	self->p.down = false;
	cycle(&self->p);
	EXPECT_FALSE(self->u.broken);
	EXPECT_EQ(3, self->ob.acked);
	EXPECT_EQ(3, stored(self->c));
}

/* kill the meter between sending and the ack: its counters are never reused. */
TEST_F(up, meter_restart_reuses_no_counter_and_resends)
{
	uint64_t ctr;

	for (int i = 1; i <= 5; i++) {
		reading(&self->u, i);
		cycle(&self->p);
	}
	self->p.down = true;
	for (int i = 6; i <= 10; i++) {
		reading(&self->u, i);
		cycle(&self->p);
	}
	ctr = self->u.s.tx_ctr;
	outbox_close(&self->ob);		/* crash */
	meter_open(self, _metadata, 1 << 20);
	/* the new session starts above every counter the old one may have used */
	EXPECT_LE(ctr, self->u.s.tx_ctr);
	EXPECT_EQ(self->ob.ctr_ceiling, self->u.s.tx_ctr);
	self->p.down = false;
	cycle(&self->p);
	EXPECT_EQ(0, self->c->st.replayed);
	EXPECT_EQ(10, self->ob.acked);
	EXPECT_EQ(11, self->ob.next);
	EXPECT_EQ(10, stored(self->c));
}

TEST_F(up, budget_drop_is_synced_and_the_server_moves_on)
{
	int64_t n = 6000, first;

	outbox_close(&self->ob);
	meter_open(self, _metadata, 2 * OUTBOX_SEG_BYTES);
	self->p.down = true;
	for (int64_t i = 1; i <= n; i++)
		reading(&self->u, i);
	first = (int64_t)outbox_first(&self->ob);
	EXPECT_LT(1, first);
	self->p.down = false;
	for (int k = 0; k < 400 && mu_backlog(&self->u); k++) {
		cycle(&self->p);
		self->p.now += 2000;
	}
	EXPECT_EQ(0, mu_backlog(&self->u));
	EXPECT_EQ(n, (int64_t)self->ob.acked);
	EXPECT_EQ(n - first + 1, stored(self->c));
	EXPECT_EQ(n, self->c->meters[21]->upto);
}

static int64_t unacked_commands(struct townd_core *c)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	if (sqlite3_prepare_v2(c->db.db, "SELECT COUNT(*) FROM outgoing WHERE acked IS NULL",
			       -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Tariffs and grants queued by townctl reach the meter once, in order, and are acked. */
TEST_F(up, tariff_and_grant_delivered_once_and_acknowledged)
{
	struct gmp_msg t = { .type = GMP_TARIFF, .tariff = { .effective = 1800000000, .n = 2,
		.p = { { 0, 120000, -5000 }, { 420, 310000, 80000 } } } };
	struct gmp_msg g = { .type = GMP_GRANT, .grant = { .req_id = 9, .granted_w = 2500,
							   .until = 1800003600 } };
	struct got got = { 0 };
	char err[128];

	self->p.got = &got;
	ASSERT_EQ(0, tdb_queue(&self->c->db, 21, &t, 1, err, sizeof(err)));
	ASSERT_EQ(0, tdb_queue(&self->c->db, 21, &g, 1, err, sizeof(err)));
	EXPECT_EQ(-1, tdb_queue(&self->c->db, 22, &g, 1, err, sizeof(err)));
	EXPECT_EQ(2, unacked_commands(self->c));
	/* the first frame asks for an ack; the ack carries both */
	reading(&self->u, 1);
	cycle(&self->p);
	ASSERT_EQ(2, got.n);
	EXPECT_EQ(0, memcmp(&got.m[0], &t, sizeof(t)));	/* tseq 1 was filled in */
	EXPECT_EQ(1, got.m[0].tariff.tseq);
	EXPECT_EQ(2, got.m[1].grant.tseq);
	EXPECT_EQ(0, memcmp(&got.m[1], &g, sizeof(g)));
	EXPECT_TRUE(self->u.mack_due);
	/* the meter-ack goes out with the next frame, even with nothing else */
	cycle(&self->p);
	EXPECT_FALSE(self->u.mack_due);
	EXPECT_EQ(0, unacked_commands(self->c));
	/* later acks carry nothing more; a new tariff comes as tseq 3 */
	for (int i = 2; i <= 9; i++) {
		reading(&self->u, i);
		cycle(&self->p);
	}
	EXPECT_EQ(2, got.n);
	ASSERT_EQ(0, tdb_queue(&self->c->db, 21, &t, 1, err, sizeof(err)));
	self->u.force_req = true;
	reading(&self->u, 10);
	cycle(&self->p);
	ASSERT_EQ(3, got.n);
	EXPECT_EQ(3, got.m[2].tariff.tseq);
}

TEST_HARNESS_MAIN
