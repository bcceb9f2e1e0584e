// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation through the real townd core (server/townd_core_alloc.c) with
 * real meter clients (lib/proto/gmp_client.c, their outboxes), one
 * process, simulated time: meters send requests and offers as meterd
 * does (relative to what they hold), and receive the decided grants as
 * commands; the requesting meter with the ack of its request, the others
 * with their next ack. A meter releases, one's request expires, townd
 * restarts and still knows what each meter holds, and townctl's manual
 * grant still goes through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "gmp_client.h"
#include "outbox.h"
#include "townd_alloc_db.h"
#include "townd_core.h"

#define T0	1790000000LL
#define NM	4		/* meters 1..NM */
#define BASE	10000

struct tmeter {
	struct gmpc u;
	struct outbox ob;
	struct gmp_keypair key;
	struct gmp_msg last_grant;	/* the last grant handed over */
	int grants;
	int64_t req_id;
	uint16_t fseq;
	struct town *t;
	uint16_t id;
};

struct town {
	struct townd_core *c;
	int64_t now;			/* ms since T0 (monotonic of the meters too) */
	struct tmeter m[NM + 1];
};

static int64_t town_ms(void *ctx)
{
	return T0 * 1000 + ((struct town *)ctx)->now;
}

static void to_meter(void *ctx, uint64_t conn, const uint8_t *wire, size_t len)
{
	struct town *t = ctx;
	struct gm_rx rx;
	enum gm_rx_status st;

	(void)conn;
	gm_rx_init(&rx);
	gm_rx_feed(&rx, wire, len, &st);
	if (st == GM_RX_FRAME && rx.hdr.dst >= 1 && rx.hdr.dst <= NM)
		gmpc_input(&t->m[rx.hdr.dst].u, rx.hdr.type, rx.hdr.flags, rx.payload,
			   rx.payload_len, t->now, town_ms(t));
}

static int to_town(void *ctx, unsigned int flags, const uint8_t *payload, size_t len)
{
	struct tmeter *m = ctx;
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, m->id, 0, m->fseq++ };

	townd_core_frame(m->t->c, m->id, &h, payload, len, town_ms(m->t) / 1000);
	return 0;
}

static int on_command(void *ctx, const struct gmp_msg *msg)
{
	struct tmeter *m = ctx;

	if (msg->type == GMP_GRANT) {
		m->last_grant = *msg;
		m->grants++;
	}
	return GMP_CMD_OK;
}

/* Every meter ticks and pumps, the town flushes and ticks: a few times. */
static void settle(struct town *t)
{
	for (int k = 0; k < 4; k++) {
		for (int i = 1; i <= NM; i++) {
			gmpc_tick(&t->m[i].u, t->now);
			gmpc_pump(&t->m[i].u, t->now, town_ms(t));
		}
		townd_core_flush(t->c, to_meter, t);
		townd_core_alloc_tick(t->c);
	}
}

/* What meterd's uplink sends (town_uplink.c): a request, an offer (< 0) or a release. */
static int say(struct town *t, int i, int64_t power_w, int64_t duration_s, unsigned int prio)
{
	struct tmeter *m = &t->m[i];
	struct gmp_msg r;

	memset(&r, 0, sizeof(r));
	if (!power_w) {
		r.type = GMP_ALLOC_REL;
		r.alloc_rel.time = town_ms(t) / 1000;
		r.alloc_rel.req_id = m->req_id;
	} else {
		r.type = GMP_ALLOC_REQ;
		r.alloc_req.time = town_ms(t) / 1000;
		r.alloc_req.req_id = ++m->req_id;
		r.alloc_req.power_w = power_w;
		r.alloc_req.duration_s = duration_s;
		r.alloc_req.flags = (int64_t)prio << GMP_AF_PRIO_SHIFT;
	}
	return gmpc_record(&m->u, &r) < 0 ? -1 : 0;
}

/* A reading that asks for an ack: the meter's next contact (its commands come with it). */
static void contact(struct town *t, int i)
{
	struct gmp_msg r;

	memset(&r, 0, sizeof(r));
	r.type = GMP_READING;
	r.reading.start = town_ms(t) / 1000 - 60;
	r.reading.interval_s = 60;
	r.reading.import_mwh = 1;
	gmpc_record(&t->m[i].u, &r);
	t->m[i].u.force_req = true;
}

static int64_t q1(struct townd_core *c, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_prepare_v2(c->db.db, sql, -1, &st, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int decisions(struct townd_core *c, int meter, const char *reason)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM alloc_decisions WHERE meter = %d AND "
		 "reason = '%s'", meter, reason);
	return (int)q1(c, sql);
}

FIXTURE(town) {
	char dir[64], db[128];
	struct gmp_keypair key;
	struct town t;
	struct ta_cfg cfg;
};

static void town_open(struct _test_data_town *self, struct __test_metadata *_metadata)
{
	char err[256];

	self->t.c = malloc(sizeof(*self->t.c));
	ASSERT_NE(NULL, self->t.c);
	ASSERT_EQ(0, townd_core_init(self->t.c, self->db, 0, &self->key, err, sizeof(err)))
		TH_LOG("%s", err);
	self->t.c->clock_ms = town_ms;
	self->t.c->clock_ctx = &self->t;
	ASSERT_EQ(0, townd_core_alloc_config(self->t.c, &self->cfg, err, sizeof(err)))
		TH_LOG("%s", err);
}

static void town_close(struct _test_data_town *self)
{
	townd_core_free(self->t.c);
	free(self->t.c);
	self->t.c = NULL;
}

FIXTURE_SETUP(town)
{
	char err[256], obdir[160];

	ASSERT_LE(0, sodium_init());
	strcpy(self->dir, "/tmp/alloc-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->db, sizeof(self->db), "%s/t.db", self->dir);
	gmp_keypair_generate(&self->key);
	memset(&self->t, 0, sizeof(self->t));
	self->t.now = 1000000;
	self->cfg = (struct ta_cfg){ .capacity_w = 3000, .base_w = BASE, .hysteresis_w = 0,
				     .default_duration_s = 900, .max_duration_s = 86400 };
	town_open(self, _metadata);
	for (int i = 1; i <= NM; i++) {
		struct tmeter *m = &self->t.m[i];
		struct gmpc_hooks h = { .ctx = m, .send = to_town, .command = on_command };
		struct gmpc_config cfg;

		m->t = &self->t;
		m->id = (uint16_t)i;
		gmp_keypair_generate(&m->key);
		ASSERT_EQ(0, tdb_add_meter(&self->t.c->db, (unsigned int)i, m->key.pk, NULL, 1, err,
					   sizeof(err)));
		snprintf(obdir, sizeof(obdir), "%s/outbox%d", self->dir, i);
		ASSERT_EQ(0, outbox_open(&m->ob, obdir, 1 << 20, err, sizeof(err))) TH_LOG("%s", err);
		gmpc_config_defaults(&cfg);
		cfg.meter_id = (uint16_t)i;
		cfg.key = m->key;
		memcpy(cfg.town_pk, self->key.pk, GMP_KEY_LEN);
		ASSERT_EQ(0, gmpc_init(&m->u, &cfg, &h, &m->ob, err, sizeof(err)));
	}
	settle(&self->t);	/* handshakes */
}

FIXTURE_TEARDOWN(town)
{
	char cmd[128];

	for (int i = 1; i <= NM; i++) {
		gmpc_free(&self->t.m[i].u);
		outbox_close(&self->t.m[i].ob);
	}
	if (self->t.c)
		town_close(self);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd)) {
		/* nothing */
	}
}

#define GRANT(i)	(self->t.m[i].last_grant.grant.granted_w)
#define UNTIL(i)	(self->t.m[i].last_grant.grant.until)
#define NOW_S		(town_ms(&self->t) / 1000)

TEST_F(town, requests_and_offers_get_their_grants)
{
	struct town *t = &self->t;
	int64_t start = NOW_S, end1;

	/* meter 1 asks 2000 W more for 600 s: the pool (3000) covers it */
	ASSERT_EQ(0, say(t, 1, 2000, 600, GMP_AF_PRIO_NORMAL));
	settle(t);
	ASSERT_EQ(1, t->m[1].grants);
	EXPECT_EQ(BASE + 2000, GRANT(1));
	EXPECT_EQ(start + 600, UNTIL(1));
	EXPECT_EQ(t->m[1].req_id, t->m[1].last_grant.grant.req_id);

	/* meter 2 asks 2000 W: each gets 1500; meter 2 with the ack of its request,
	 * meter 1 at once too, in an ack of its own (it sent nothing) */
	t->now += 10000;
	ASSERT_EQ(0, say(t, 2, 2000, 900, GMP_AF_PRIO_NORMAL));
	settle(t);
	EXPECT_EQ(BASE + 1500, GRANT(2));
	ASSERT_EQ(2, t->m[1].grants);
	EXPECT_EQ(BASE + 1500, GRANT(1));
	EXPECT_EQ(1, decisions(t->c, 1, "reduced"));
	EXPECT_EQ(3000, townd_alloc_find(&t->c->alloc, 1)->grant_w +
		  townd_alloc_find(&t->c->alloc, 2)->grant_w);
	EXPECT_EQ(1000, townd_alloc_shortfall(&t->c->alloc));

	/* meter 1 still lacks 500 W (meterd asks its remaining deficit): the same want, the
	 * same watts, only the grant's end follows the new request's */
	ASSERT_EQ(0, say(t, 1, 500, 600, GMP_AF_PRIO_NORMAL));
	settle(t);
	EXPECT_EQ(2000, townd_alloc_find(&t->c->alloc, 1)->want_w);
	ASSERT_EQ(3, t->m[1].grants);
	EXPECT_EQ(BASE + 1500, GRANT(1));
	EXPECT_EQ(NOW_S + 600, UNTIL(1));
	EXPECT_EQ(1, decisions(t->c, 1, "renewed"));
	end1 = UNTIL(1);

	/* meter 3 offers 1000 W it does not use: taken (its grant lowered), both served in full */
	t->now += 10000;
	ASSERT_EQ(0, say(t, 3, -1000, 900, GMP_AF_PRIO_NORMAL));
	settle(t);
	EXPECT_EQ(BASE - 1000, GRANT(3));
	EXPECT_EQ(1, decisions(t->c, 3, "offer-taken"));
	EXPECT_EQ(BASE + 2000, GRANT(1));
	EXPECT_EQ(BASE + 2000, GRANT(2));
	EXPECT_EQ(0, townd_alloc_shortfall(&t->c->alloc));
	/* covered now: meterd releases its request; it keeps what it holds */
	ASSERT_EQ(0, say(t, 2, 0, 0, 0));
	settle(t);
	EXPECT_EQ(BASE + 2000, GRANT(2));
	EXPECT_EQ(2000, townd_alloc_find(&t->c->alloc, 2)->grant_w);

	/* meter 4 (deferrable) asks and gets nothing, then releases: it leaves */
	ASSERT_EQ(0, say(t, 4, 800, 900, GMP_AF_PRIO_DEFERRABLE));
	settle(t);
	EXPECT_EQ(0, t->m[4].grants);
	EXPECT_EQ(1, decisions(t->c, 4, "priority"));
	ASSERT_EQ(0, say(t, 4, 0, 0, 0));
	settle(t);
	EXPECT_EQ(1, decisions(t->c, 4, "released"));
	EXPECT_EQ(NULL, townd_alloc_find(&t->c->alloc, 4));

	/* meter 1's request ends: nothing sent to it (it returns to base by itself) and the
	 * offer is no longer needed: meter 3 gets its own allocation back */
	t->now = (end1 - T0) * 1000;
	settle(t);
	EXPECT_EQ(1, decisions(t->c, 1, "expired"));
	EXPECT_EQ(NULL, townd_alloc_find(&t->c->alloc, 1));
	contact(t, 3);
	settle(t);
	EXPECT_EQ(BASE, GRANT(3));
	EXPECT_EQ(1, decisions(t->c, 3, "offer-returned"));
	/* every grant sent is in the log with its command */
	EXPECT_EQ(q1(t->c, "SELECT COUNT(*) FROM outgoing WHERE type = 17"),
		  q1(t->c, "SELECT COUNT(*) FROM alloc_decisions WHERE tseq IS NOT NULL"));
	EXPECT_EQ(0, q1(t->c, "SELECT COUNT(*) FROM outgoing WHERE type = 17 AND status IS NULL"));
}

TEST_F(town, a_restart_knows_what_each_meter_holds)
{
	struct town *t = &self->t;
	char err[256];

	ASSERT_EQ(0, say(t, 1, 2500, 900, GMP_AF_PRIO_NORMAL));
	settle(t);
	EXPECT_EQ(BASE + 2500, GRANT(1));
	town_close(self);
	town_open(self, _metadata);
	/* a new request relative to the 2500 it holds: 3000 wanted, 3000 given */
	ASSERT_EQ(0, say(t, 1, 500, 900, GMP_AF_PRIO_NORMAL));
	settle(t);	/* REHELLO, handshake, resend */
	settle(t);
	EXPECT_EQ(BASE + 3000, GRANT(1));
	/* the main server's supply: kept across a restart, and grants follow it */
	townd_core_set_capacity(t->c, 1000);
	contact(t, 1);
	settle(t);
	EXPECT_EQ(BASE + 1000, GRANT(1));
	town_close(self);
	town_open(self, _metadata);
	EXPECT_EQ(1000, t->c->alloc.cfg.capacity_w);
	/* townctl grant (manual override) still goes out as given */
	{
		struct gmp_msg g = { .type = GMP_GRANT, .grant = { .req_id = 77, .granted_w = 4321,
								   .until = NOW_S + 100 } };

		ASSERT_EQ(0, tdb_queue(&t->c->db, 1, &g, 1, err, sizeof(err)));
	}
	contact(t, 1);
	for (int k = 0; k < 40; k++) {	/* REHELLO, the handshake after its back-off, resend */
		settle(t);
		t->now += 3000;
	}
	EXPECT_EQ(0, q1(t->c, "SELECT COUNT(*) FROM outgoing WHERE status IS NULL"));
	EXPECT_EQ(4321, GRANT(1));
}

TEST_HARNESS_MAIN
