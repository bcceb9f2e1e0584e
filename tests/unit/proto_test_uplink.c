// SPDX-License-Identifier: GPL-2.0
/*
 * The client end of gmproto v2 (lib/proto/gmp_client.c) against the real
 * townd core, in one process with simulated time: handshake, ack
 * requests, urgent records, lost frames and resends, a broken route, a
 * restart of either end, a wiped meter state (rebase), a town database
 * restored from a copy (rewind, and lost records beyond retention), the
 * disk budget, commands with results, HELLO back-off, a full disk (the
 * volatile tail), the WELCOME's time sample; every frame of the
 * scenarios that lose state goes through the nonce audit.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "gmp_client.h"
#include "nonce_audit.h"
#include "outbox.h"
#include "townd_core.h"

#define T0	1790000000LL	/* the town's UTC s at simulated time 0 */

struct world {
	struct townd_core *c;
	struct gmpc *u;
	struct outbox *ob;
	struct nonce_audit audit;
	int64_t now;			/* monotonic ms of the meter */
	int64_t skew;			/* the meter's real clock minus the town's (ms) */
	bool down;			/* frames vanish both ways */
	int frames, requested;
	unsigned int flags_log[64];
	int hellos;
	int64_t hello_at[64];
	/* the owner's side */
	struct gmp_msg cmds[16];
	int n_cmds, status;
	struct gmpc_welcome w;
	int welcomes;
	uint16_t fseq;
	/* every frame the town sent, as captured on the line */
	struct { struct gm_hdr h; uint8_t p[GM_MAX_PAYLOAD]; size_t len; } cap[64];
	int n_down;
};

static int64_t town_ms(void *ctx)
{
	struct world *w = ctx;

	return T0 * 1000 + w->now;
}

static int64_t real_ms(const struct world *w)
{
	return T0 * 1000 + w->now + w->skew;
}

static void to_meter(void *ctx, uint64_t conn, const uint8_t *wire, size_t len)
{
	struct world *w = ctx;
	struct gm_rx rx;
	enum gm_rx_status st;

	(void)conn;
	gm_rx_init(&rx);
	gm_rx_feed(&rx, wire, len, &st);
	if (st != GM_RX_FRAME)
		return;
	nonce_audit_frame(&w->audit, &rx.hdr, rx.payload, rx.payload_len);
	if (w->n_down < 64) {
		w->cap[w->n_down].h = rx.hdr;
		memcpy(w->cap[w->n_down].p, rx.payload, rx.payload_len);
		w->cap[w->n_down++].len = rx.payload_len;
	}
	if (!w->down)
		gmpc_input(w->u, rx.hdr.type, rx.hdr.flags, rx.payload, rx.payload_len, w->now,
			   real_ms(w));
}

static int to_town(void *ctx, unsigned int flags, const uint8_t *payload, size_t len)
{
	struct world *w = ctx;
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, 21, 0, w->fseq++ };

	nonce_audit_frame(&w->audit, &h, payload, len);
	if (gmp_envelope_kind(payload, len, NULL) == GMP_KIND_HANDSHAKE) {
		if (w->hellos < 64)
			w->hello_at[w->hellos] = w->now;
		w->hellos++;
	} else {
		if (w->frames < 64)
			w->flags_log[w->frames] = flags;
		w->frames++;
		w->requested += !!(flags & GM_FLAG_ACK_REQ);
	}
	if (w->down)
		return 0;	/* sent, and lost */
	townd_core_frame(w->c, 1, &h, payload, len, town_ms(w) / 1000);
	return 0;
}

static int on_command(void *ctx, const struct gmp_msg *m)
{
	struct world *w = ctx;

	if (w->n_cmds < 16)
		w->cmds[w->n_cmds++] = *m;
	return w->status;
}

static void on_welcome(void *ctx, const struct gmpc_welcome *wel)
{
	struct world *w = ctx;

	w->w = *wel;
	w->welcomes++;
}

/* Tick, pump, let the server flush (its answers reach the meter). */
static void cycle(struct world *w)
{
	gmpc_tick(w->u, w->now);
	gmpc_pump(w->u, w->now, real_ms(w));
	townd_core_flush(w->c, to_meter, w);
}

/* A few cycles: a handshake and what follows it. */
static void settle(struct world *w)
{
	for (int i = 0; i < 4; i++)
		cycle(w);
}

FIXTURE(up) {
	char dir[64], db[128], obdir[128];
	struct gmp_keypair town, meter;
	struct townd_core *c;
	struct outbox ob;
	struct gmpc u;
	struct gmpc_config cfg;
	struct world w;
};

static void core_open(struct _test_data_up *self, struct __test_metadata *_metadata)
{
	char err[256];

	self->c = malloc(sizeof(*self->c));
	ASSERT_NE(NULL, self->c);
	ASSERT_EQ(0, townd_core_init(self->c, self->db, 0, &self->town, err, sizeof(err)))
		TH_LOG("%s", err);
	self->c->clock_ms = town_ms;
	self->c->clock_ctx = &self->w;
	self->w.c = self->c;
}

static void core_close(struct _test_data_up *self)
{
	townd_core_free(self->c);
	free(self->c);
	self->c = NULL;
}

static void meter_open(struct _test_data_up *self, struct __test_metadata *_metadata,
		       uint64_t budget)
{
	struct gmpc_hooks h = { .ctx = &self->w, .send = to_town, .command = on_command,
				.welcome = on_welcome };
	char err[256];

	ASSERT_EQ(0, outbox_open(&self->ob, self->obdir, budget, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, gmpc_init(&self->u, &self->cfg, &h, &self->ob, err, sizeof(err)));
	self->w.u = &self->u;
	self->w.ob = &self->ob;
}

static void meter_close(struct _test_data_up *self)
{
	gmpc_free(&self->u);
	outbox_close(&self->ob);
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
	memset(&self->w, 0, sizeof(self->w));
	nonce_audit_init(&self->w.audit);
	ASSERT_EQ(0, nonce_audit_key(&self->w.audit, &self->town, 21, self->meter.pk));
	self->w.now = 1000000;
	core_open(self, _metadata);
	ASSERT_EQ(0, tdb_add_meter(&self->c->db, 21, self->meter.pk, NULL, 1, err, sizeof(err)));
	gmpc_config_defaults(&self->cfg);
	self->cfg.meter_id = 21;
	self->cfg.key = self->meter;
	memcpy(self->cfg.town_pk, self->town.pk, GMP_KEY_LEN);
	self->cfg.ack_timeout_ms = 1000;
	meter_open(self, _metadata, 1 << 20);
}

FIXTURE_TEARDOWN(up)
{
	char cmd[128];

	meter_close(self);
	if (self->c)
		core_close(self);
	nonce_audit_free(&self->w.audit);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd)) {
		/* nothing */
	}
}

/* Reading i: its values say which reading it is (i unique over a test). */
static int reading(struct gmpc *u, int64_t i)
{
	struct gmp_msg g = { .type = GMP_READING };

	g.reading.start = T0 - 864000 + 60 * i;
	g.reading.interval_s = 60;
	g.reading.import_mwh = 500 + i;
	return gmpc_record(u, &g);
}

/* Readings from..to (kept in want, if given), one per frame; then the idle ack. */
static void report(struct world *w, int64_t from, int64_t to, int64_t *want, size_t *n)
{
	for (int64_t i = from; i <= to; i++) {
		reading(w->u, i);
		if (want)
			want[(*n)++] = i;
		cycle(w);
	}
	w->now += 700000;
	settle(w);
}

static void discard(void *ctx, uint64_t conn, const uint8_t *wire, size_t len)
{
	(void)ctx;
	(void)conn;
	(void)wire;
	(void)len;
}

static int64_t q1(struct townd_core *c, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	townd_core_flush(c, discard, NULL);
	if (sqlite3_prepare_v2(c->db.db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int64_t stored(struct townd_core *c)
{
	return q1(c, "SELECT COUNT(*) FROM readings WHERE meter = 21");
}

/*
 * The readings of meter 21 in storage order: each reading i of the list
 * exactly once, nothing else, seqs increasing. Returns a description of the
 * first mismatch or NULL.
 */
static const char *exactly(struct townd_core *c, const int64_t *want, size_t n)
{
	sqlite3_stmt *st;
	int64_t last_seq = 0;
	size_t k = 0;
	const char *bad = NULL;
	char *seen = calloc(n ? n : 1, 1);

	townd_core_flush(c, discard, NULL);
	if (!seen || sqlite3_prepare_v2(c->db.db, "SELECT seq, import_mwh FROM readings WHERE "
					"meter = 21 ORDER BY rowid", -1, &st, NULL) != SQLITE_OK) {
		free(seen);
		return "query";
	}
	while (!bad && sqlite3_step(st) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0), i = sqlite3_column_int64(st, 1) - 500;
		size_t j;

		for (j = 0; j < n && want[j] != i; j++)
			;
		if (seq <= last_seq)
			bad = "stored out of order";
		else if (j == n)
			bad = "a reading that should not be there";
		else if (seen[j]++)
			bad = "a reading stored twice";
		last_seq = seq;
		k++;
	}
	sqlite3_finalize(st);
	if (!bad && k != n)
		bad = "readings missing";
	free(seen);
	return bad;
}

static void audit_ok(struct world *w, struct __test_metadata *_metadata)
{
	ASSERT_EQ(0, nonce_audit_run(&w->audit));
	EXPECT_EQ(0, w->audit.repeats);
	EXPECT_EQ(0, w->audit.unattributed);
	EXPECT_EQ(w->audit.frames, w->audit.handshakes + w->audit.sessions);
	TH_LOG("audit: %llu frames, %llu handshake and %llu session envelopes, %llu sessions, "
	       "%llu (key, nonce) repeats", (unsigned long long)w->audit.frames,
	       (unsigned long long)w->audit.handshakes, (unsigned long long)w->audit.sessions,
	       (unsigned long long)w->audit.welcomes, (unsigned long long)w->audit.repeats);
}

/*
 * The audit itself: two different envelopes under one (key, nonce) (what
 * version 1 did after a wipe) are a repeat; the same envelope twice (a
 * replay) is a copy; a frame no key opens is unattributed.
 */
TEST_F(up, the_audit_finds_a_reused_nonce)
{
	struct gmp_addr a = { GM_TYPE_DATA, 0, 21, 0 };
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, 0, 8, 21, 0, 0 };
	uint8_t e1[GMP_PAYLOAD_MAX], e2[GMP_PAYLOAD_MAX];
	struct gmp_session again;
	int n1, n2;

	settle(&self->w);
	again = self->u.s;
	n1 = gmp_seal(&self->u.s, &a, (const uint8_t *)"one", 3, e1, sizeof(e1));
	n2 = gmp_seal(&again, &a, (const uint8_t *)"two", 3, e2, sizeof(e2));
	ASSERT_LT(0, n1);
	ASSERT_EQ(n1, n2);
	nonce_audit_frame(&self->w.audit, &h, e1, (size_t)n1);
	nonce_audit_frame(&self->w.audit, &h, e2, (size_t)n2);
	nonce_audit_frame(&self->w.audit, &h, e1, (size_t)n1);
	e2[n2 - 1] ^= 1;
	nonce_audit_frame(&self->w.audit, &h, e2, (size_t)n2);
	ASSERT_EQ(0, nonce_audit_run(&self->w.audit));
	EXPECT_EQ(1, self->w.audit.repeats);
	EXPECT_EQ(1, self->w.audit.copies);
	EXPECT_EQ(1, self->w.audit.unattributed);
}

TEST_F(up, handshake_then_an_ack_every_eighth_frame)
{
	cycle(&self->w);
	EXPECT_EQ(1, self->w.hellos);
	EXPECT_EQ(GMPC_UP, self->u.state);
	EXPECT_EQ(1, self->w.welcomes);
	EXPECT_EQ(1, self->c->st.hellos);
	for (int i = 1; i <= 24; i++) {
		reading(&self->u, i);
		cycle(&self->w);
		self->w.now += 60000;
	}
	/* the first frame after the WELCOME asks (it confirms the session), then every 8th */
	EXPECT_EQ(24, self->w.frames);
	for (int i = 0; i < 24; i++) {
		EXPECT_EQ(i == 0 || (i + 1) % 8 == 0 ? GM_FLAG_ACK_REQ : 0u,
			  self->w.flags_log[i]) TH_LOG("frame %d", i);
	}
	EXPECT_EQ(24, self->ob.acked);
	EXPECT_EQ(0, gmpc_backlog(&self->u));
	EXPECT_EQ(0, self->u.missed);
	EXPECT_EQ(24, stored(self->c));
	audit_ok(&self->w, _metadata);
}

TEST_F(up, no_record_before_the_welcome)
{
	self->w.down = true;
	for (int i = 1; i <= 5; i++) {
		ASSERT_EQ(0, reading(&self->u, i));
		cycle(&self->w);
	}
	EXPECT_EQ(1, self->w.hellos);
	EXPECT_EQ(0, self->w.frames);
	self->w.down = false;
	self->w.now += 20000;
	settle(&self->w);
	EXPECT_EQ(2, self->w.hellos);
	EXPECT_EQ(5, self->ob.acked);
	EXPECT_EQ(5, stored(self->c));
}

TEST_F(up, urgent_records_ask_at_once)
{
	struct gmp_msg al = { .type = GMP_ALARM, .alarm = { .time = T0, .code = 2,
							    .active = 1, .value = 7 } };

	settle(&self->w);
	reading(&self->u, 1);
	cycle(&self->w);
	reading(&self->u, 2);
	cycle(&self->w);
	EXPECT_EQ(0u, self->w.flags_log[2]);
	ASSERT_EQ(0, gmpc_record(&self->u, &al));
	EXPECT_EQ(3, gmp_msg_seq(&al));
	cycle(&self->w);
	EXPECT_EQ((unsigned int)GM_FLAG_ACK_REQ, self->w.flags_log[3]);
	EXPECT_EQ(3, self->ob.acked);
}

TEST_F(up, lost_frames_are_resent_batched_and_stored_once)
{
	settle(&self->w);
	for (int i = 1; i <= 8; i++) {
		reading(&self->u, i);
		cycle(&self->w);
	}
	self->w.now += 700000;		/* the idle timer asks for the rest */
	cycle(&self->w);
	cycle(&self->w);
	EXPECT_EQ(8, self->ob.acked);
	self->w.down = true;		/* 40 readings vanish on the way */
	for (int i = 9; i <= 48; i++) {
		reading(&self->u, i);
		cycle(&self->w);
	}
	EXPECT_EQ(8, self->ob.acked);
	self->w.now += 1500;		/* the requested ack never came */
	self->w.down = false;
	self->w.frames = 0;
	cycle(&self->w);
	EXPECT_EQ(0, self->u.missed);			/* the resend was acked */
	EXPECT_EQ(48, self->ob.acked);
	/* 40 records, as many per frame as fit (at most 20) */
	{
		int frames = 1, in_frame = 0;
		size_t used = 0;

		for (int64_t seq = 9; seq <= 48; seq++) {
			struct gmp_msg g = { .type = GMP_READING, .reading = {
				.seq = seq, .start = T0 - 864000 + 60 * seq, .interval_s = 60,
				.import_mwh = 500 + seq } };
			uint8_t buf[64];
			size_t len = 0;

			ASSERT_EQ(0, gmp_encode(&g, buf, sizeof(buf), &len));
			if (in_frame == 20 || used + len > GMP_PLAIN_MAX) {
				frames++;
				in_frame = 0;
				used = 0;
			}
			used += len;
			in_frame++;
		}
		EXPECT_EQ(frames, self->w.frames);
		EXPECT_LE(2, frames);
	}
	EXPECT_EQ(48, stored(self->c));
	EXPECT_EQ(1, self->u.resends);
}

/* Two missed acks: the route is broken, and a handshake finds out why. */
TEST_F(up, broken_route_after_two_missed_acks)
{
	struct gmp_msg al = { .type = GMP_ALARM, .alarm = { .time = T0, .code = 2, .active = 1 } };

	settle(&self->w);
	self->w.down = true;
	for (int i = 1; i <= 3; i++) {
		ASSERT_EQ(0, gmpc_record(&self->u, &al));	/* urgent: asks for an ack */
		cycle(&self->w);
		self->w.now += 1500;
		cycle(&self->w);
	}
	EXPECT_TRUE(self->u.broken);
	EXPECT_LE(2, self->w.hellos);
	/* meterd switches route: a handshake through it, then everything goes */
	gmpc_route_changed(&self->u, self->w.now);
	EXPECT_FALSE(self->u.broken);
	self->w.down = false;
	settle(&self->w);
	EXPECT_FALSE(self->u.broken);
	EXPECT_EQ(3, self->ob.acked);
	EXPECT_EQ(3, q1(self->c, "SELECT COUNT(*) FROM events WHERE meter = 21"));
}

/*
 * The meter restarts between sending and the ack: the WELCOME says what
 * the town stored, so nothing is sent again that it holds.
 */
TEST_F(up, meter_restart_resends_only_what_the_town_lacks)
{
	settle(&self->w);
	for (int i = 1; i <= 5; i++) {
		reading(&self->u, i);
		cycle(&self->w);
	}
	/* 6..10 reach the town, its acks are lost */
	for (int i = 6; i <= 10; i++) {
		reading(&self->u, i);
		gmpc_pump(&self->u, self->w.now, real_ms(&self->w));
	}
	townd_core_flush(self->c, discard, NULL);
	EXPECT_EQ(10, stored(self->c));
	EXPECT_GT(10, self->ob.acked);
	meter_close(self);
	meter_open(self, _metadata, 1 << 20);
	self->w.frames = 0;
	settle(&self->w);
	EXPECT_EQ(10, self->ob.acked);
	EXPECT_EQ(11, self->ob.next);
	EXPECT_EQ(0, self->c->st.duplicates);
	EXPECT_EQ(1, self->w.frames);	/* the confirming probe only */
	audit_ok(&self->w, _metadata);
}

/*
 * The meter's state directory is wiped (the obvious fix for a "corrupt
 * outbox" a technician tries): its numbering starts at 1 again, the
 * first WELCOME renumbers the records above what the town holds, nothing
 * is taken for a duplicate, no (key, nonce) pair comes back.
 */
TEST_F(up, wiped_meter_state_is_renumbered_above_the_town)
{
	int64_t want[80];
	size_t n = 0;
	char cmd[200];

	settle(&self->w);
	report(&self->w, 1, 50, want, &n);
	EXPECT_EQ(50, self->ob.acked);
	meter_close(self);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->obdir);
	ASSERT_EQ(0, system(cmd));
	meter_open(self, _metadata, 1 << 20);
	EXPECT_TRUE(self->ob.created);
	EXPECT_EQ(1, self->ob.next);
	/* records made while the link is still down get numbers 1.. */
	self->w.down = true;
	for (int i = 101; i <= 105; i++) {
		reading(&self->u, i);
		want[n++] = i;
		cycle(&self->w);
	}
	self->w.down = false;
	self->w.now += 20000;
	settle(&self->w);
	EXPECT_EQ(1, self->u.rebases);
	EXPECT_EQ(1, self->w.w.rebase_from);
	EXPECT_EQ(50, self->w.w.rebase_delta);
	report(&self->w, 106, 110, want, &n);
	EXPECT_EQ(60, self->ob.acked);
	EXPECT_EQ(NULL, exactly(self->c, want, n));
	EXPECT_EQ(0, self->c->st.duplicates);
	EXPECT_EQ(1, self->c->st.rebased);
	audit_ok(&self->w, _metadata);
}

/* Restore the town's database from a copy taken earlier (WAL included). */
static void restore(struct _test_data_up *self, struct __test_metadata *_metadata,
		    const char *copy)
{
	char cmd[600];

	core_close(self);
	snprintf(cmd, sizeof(cmd), "rm -f '%s' '%s-wal' '%s-shm' && cp '%s' '%s'", self->db,
		 self->db, self->db, copy, self->db);
	ASSERT_EQ(0, system(cmd));
	core_open(self, _metadata);
}

static void backup(struct _test_data_up *self, struct __test_metadata *_metadata, char *copy,
		   size_t n)
{
	char sql[300];

	snprintf(copy, n, "%s/backup.db", self->dir);
	snprintf(sql, sizeof(sql), "VACUUM INTO '%s'", copy);
	townd_core_flush(self->c, discard, NULL);
	ASSERT_EQ(SQLITE_OK, sqlite3_exec(self->c->db.db, sql, NULL, NULL, NULL));
}

/*
 * The town's database is restored from last night's copy: the town
 * forgot records it had acknowledged. Its next WELCOME says so, the meter
 * rewinds and resends what it retained; everything ends up stored once.
 */
TEST_F(up, restored_town_database_gets_the_retained_records_again)
{
	int64_t want[40];
	size_t n = 0;
	char copy[160];
	int reh;

	settle(&self->w);
	report(&self->w, 1, 10, want, &n);
	EXPECT_EQ(10, self->ob.acked);
	backup(self, _metadata, copy, sizeof(copy));
	report(&self->w, 11, 30, want, &n);
	EXPECT_EQ(30, self->ob.acked);
	restore(self, _metadata, copy);
	EXPECT_EQ(10, stored(self->c));
	/* the meter's next frame: no session here, REHELLO, handshake, rewind */
	reading(&self->u, 31);
	want[n++] = 31;
	reh = (int)self->u.rehellos;
	settle(&self->w);
	EXPECT_EQ(reh + 1, (int)self->u.rehellos);
	EXPECT_TRUE(self->w.w.rewound);
	EXPECT_EQ(10, self->w.w.upto);
	EXPECT_EQ(1, self->u.rewinds);
	settle(&self->w);
	EXPECT_EQ(31, self->ob.acked);
	EXPECT_EQ(NULL, exactly(self->c, want, n));
	audit_ok(&self->w, _metadata);
}

/* ... and what the meter no longer holds (retention ran out) is reported lost. */
TEST_F(up, restored_town_beyond_retention_gets_lost_ranges)
{
	int64_t want[40];
	size_t n = 0;
	char copy[160], cmd[300];

	settle(&self->w);
	report(&self->w, 1, 10, want, &n);
	backup(self, _metadata, copy, sizeof(copy));
	report(&self->w, 11, 30, NULL, NULL);
	EXPECT_EQ(30, self->ob.acked);
	/* a week later: the acknowledged segments are gone from the meter */
	snprintf(cmd, sizeof(cmd), "find '%s' -name 'seg-*' -exec touch -d '8 days ago' {} +",
		 self->obdir);
	ASSERT_EQ(0, system(cmd));
	meter_close(self);
	meter_open(self, _metadata, 1 << 20);
	EXPECT_EQ(31, outbox_oldest(&self->ob));
	restore(self, _metadata, copy);
	reading(&self->u, 31);
	want[n++] = 31;
	settle(&self->w);
	settle(&self->w);
	EXPECT_EQ(31, self->ob.acked);
	EXPECT_EQ(1, self->c->st.lost);
	EXPECT_EQ(30, q1(self->c, "SELECT b FROM events WHERE meter = 21 AND type = 7 AND a = 11"));
	EXPECT_EQ(NULL, exactly(self->c, want, n));
	audit_ok(&self->w, _metadata);
}

TEST_F(up, budget_drop_is_reported_lost_and_the_server_moves_on)
{
	int64_t n = 6000, first;

	meter_close(self);
	meter_open(self, _metadata, 2 * OUTBOX_SEG_BYTES);
	self->w.down = true;
	for (int64_t i = 1; i <= n; i++)
		reading(&self->u, i);
	first = (int64_t)outbox_first(&self->ob);
	EXPECT_LT(1, first);
	self->w.down = false;
	for (int k = 0; k < 600 && gmpc_backlog(&self->u); k++) {
		cycle(&self->w);
		self->w.now += 2000;
	}
	EXPECT_EQ(0, gmpc_backlog(&self->u));
	EXPECT_EQ(n, (int64_t)self->ob.acked);
	EXPECT_EQ(n - first + 1, stored(self->c));
	EXPECT_EQ(n, self->c->meters[21]->upto);
	EXPECT_EQ(1, self->c->st.lost);
}

static int64_t pending_commands(struct townd_core *c)
{
	return q1(c, "SELECT COUNT(*) FROM outgoing WHERE status IS NULL");
}

/* Tariffs and grants queued by townctl reach the meter once, in order; results recorded. */
TEST_F(up, commands_in_order_once_with_results)
{
	struct gmp_msg t = { .type = GMP_TARIFF, .tariff = { .effective = 1800000000, .n = 2,
		.p = { { 0, 120000, -5000 }, { 420, 310000, 80000 } } } };
	struct gmp_msg g = { .type = GMP_GRANT, .grant = { .req_id = 9, .granted_w = 2500,
							   .until = 1800003600 } };
	char err[128];

	ASSERT_EQ(0, tdb_queue(&self->c->db, 21, &t, 1, err, sizeof(err)));
	ASSERT_EQ(0, tdb_queue(&self->c->db, 21, &g, 1, err, sizeof(err)));
	EXPECT_EQ(-1, tdb_queue(&self->c->db, 22, &g, 1, err, sizeof(err)));
	EXPECT_EQ(2, pending_commands(self->c));
	self->w.status = GMP_CMD_OK;
	settle(&self->w);
	ASSERT_EQ(2, self->w.n_cmds);
	EXPECT_EQ(0, memcmp(&self->w.cmds[0], &t, sizeof(t)));	/* tseq 1 was filled in */
	EXPECT_EQ(1, self->w.cmds[0].tariff.tseq);
	EXPECT_EQ(2, self->w.cmds[1].grant.tseq);
	EXPECT_EQ(0, memcmp(&self->w.cmds[1], &g, sizeof(g)));
	EXPECT_EQ(2, self->ob.cmd_floor);
	EXPECT_EQ(0, pending_commands(self->c));
	EXPECT_EQ(2, q1(self->c, "SELECT COUNT(*) FROM outgoing WHERE status = 0"));
	/* a tariff the meter cannot represent: refused, and the town knows why */
	self->w.status = GMP_CMD_UNSUPPORTED;
	ASSERT_EQ(0, tdb_queue(&self->c->db, 21, &t, 1, err, sizeof(err)));
	for (int i = 1; i <= 8; i++) {
		reading(&self->u, i);
		cycle(&self->w);
	}
	cycle(&self->w);
	ASSERT_EQ(3, self->w.n_cmds);
	EXPECT_EQ(3, self->w.cmds[2].tariff.tseq);
	EXPECT_EQ(GMP_CMD_UNSUPPORTED, q1(self->c, "SELECT status FROM outgoing WHERE tseq = 3"));
	/* a command whose result was lost: sent again after a restart, answered DUPLICATE */
	self->w.status = GMP_CMD_OK;
	ASSERT_EQ(0, tdb_queue(&self->c->db, 21, &g, 1, err, sizeof(err)));
	self->u.force_req = true;
	reading(&self->u, 9);
	gmpc_pump(&self->u, self->w.now, real_ms(&self->w));
	townd_core_flush(self->c, to_meter, &self->w);		/* tseq 4 arrives */
	EXPECT_EQ(4, self->w.n_cmds);
	meter_close(self);					/* its result never left */
	meter_open(self, _metadata, 1 << 20);
	EXPECT_EQ(4, self->ob.cmd_floor);
	settle(&self->w);
	EXPECT_EQ(4, self->w.n_cmds);				/* not handed over twice */
	EXPECT_EQ(GMP_CMD_DUPLICATE, q1(self->c, "SELECT status FROM outgoing WHERE tseq = 4"));
}

/*
 * A captured tariff frame replayed to the meter, in its session and after
 * a restart of the meter (finding 3): refused, never handed to meterd
 * again; the newer tariff stays.
 */
TEST_F(up, captured_tariff_replayed_after_a_meter_restart_is_refused)
{
	struct gmp_msg t = { .type = GMP_TARIFF, .tariff = { .effective = 1800000000, .n = 1,
		.p = { { 0, 100000, 5000 } } } };
	char err[128];
	int n, rejected;

	ASSERT_EQ(0, tdb_queue(&self->c->db, 21, &t, 1, err, sizeof(err)));
	self->w.status = GMP_CMD_OK;
	settle(&self->w);
	ASSERT_EQ(1, self->w.n_cmds);
	t.tariff.p[0].import_price = 200000;		/* a newer tariff */
	ASSERT_EQ(0, tdb_queue(&self->c->db, 21, &t, 1, err, sizeof(err)));
	self->u.force_req = true;
	settle(&self->w);
	ASSERT_EQ(2, self->w.n_cmds);
	n = self->w.n_down;
	/* in the same session: every captured frame again is a replay */
	rejected = (int)self->u.rejected;
	for (int i = 0; i < n; i++)
		EXPECT_EQ(0, gmpc_input(&self->u, self->w.cap[i].h.type, self->w.cap[i].h.flags,
					self->w.cap[i].p, self->w.cap[i].len, self->w.now,
					real_ms(&self->w)));
	EXPECT_EQ(rejected + n, (int)self->u.rejected);
	/* meterd restarts (a power cut): a new session, the floor from disk */
	meter_close(self);
	meter_open(self, _metadata, 1 << 20);
	EXPECT_EQ(2, self->ob.cmd_floor);
	settle(&self->w);
	EXPECT_EQ(GMPC_UP, self->u.state);
	for (int i = 0; i < n; i++)
		EXPECT_EQ(0, gmpc_input(&self->u, self->w.cap[i].h.type, self->w.cap[i].h.flags,
					self->w.cap[i].p, self->w.cap[i].len, self->w.now,
					real_ms(&self->w)));
	EXPECT_EQ(2, self->w.n_cmds);
	EXPECT_EQ(200000, self->w.cmds[1].tariff.p[0].import_price);
	/* the town sees nothing pending: both applied, once */
	EXPECT_EQ(2, q1(self->c, "SELECT COUNT(*) FROM outgoing WHERE status = 0"));
}

/* townd restarted: the meter's next frame gets a REHELLO, the handshake follows. */
TEST_F(up, town_restart_then_rehello)
{
	settle(&self->w);
	reading(&self->u, 1);
	settle(&self->w);
	core_close(self);
	core_open(self, _metadata);
	reading(&self->u, 2);
	self->u.force_req = true;
	cycle(&self->w);
	EXPECT_EQ(1, self->u.rehellos);
	EXPECT_EQ(GMPC_NONE, self->u.state);
	settle(&self->w);
	EXPECT_EQ(GMPC_UP, self->u.state);
	EXPECT_EQ(2, self->ob.acked);
	EXPECT_EQ(2, stored(self->c));
	audit_ok(&self->w, _metadata);
}

/* A town that does not answer: HELLOs back off (5 s x 2^n, x0.5..1.5, capped). */
TEST_F(up, hello_retries_back_off_with_jitter)
{
	int64_t start = self->w.now;

	self->w.down = true;
	while (self->w.now - start < 3600 * 1000) {
		cycle(&self->w);
		self->w.now += 250;
	}
	ASSERT_LE(8, self->w.hellos);
	for (int i = 1; i < self->w.hellos && i < 64; i++) {
		int64_t d = self->w.hello_at[i] - self->w.hello_at[i - 1], base = 5000;

		for (int k = 1; k < i; k++)
			base = base * 2 > 300000 ? 300000 : base * 2;
		EXPECT_LE(base / 2, d) TH_LOG("retry %d after %lld ms", i, (long long)d);
		EXPECT_GE(base * 3 / 2 + 250, d) TH_LOG("retry %d after %lld ms", i, (long long)d);
	}
	TH_LOG("%d HELLOs in an hour without the town", self->w.hellos);
	EXPECT_GE(26, self->w.hellos);
	EXPECT_TRUE(self->u.broken);
}

/* The WELCOME's time, corrected by half the round trip, for the owner's clock. */
TEST_F(up, welcome_time_sample)
{
	self->w.skew = -123456;		/* the meter's clock is 123.456 s behind */
	cycle(&self->w);
	ASSERT_EQ(1, self->w.welcomes);
	EXPECT_TRUE(self->w.w.time_ok);
	EXPECT_EQ(0, self->w.w.rtt_ms);
	EXPECT_EQ(123456, self->w.w.offset_ms);
	EXPECT_EQ(1, self->w.w.uncertainty_ms);
	EXPECT_EQ(T0 * 1000 + self->w.now, self->w.w.town_now_ms);
}

/*
 * A full disk (a 256 KiB tmpfs in a private mount namespace): records the
 * outbox refuses wait in memory and are sent all the same; once space
 * returns they are written; the town stores every one exactly once.
 */
TEST_F(up, full_disk_records_wait_in_memory)
{
	int st, p[2];
	pid_t pid;
	int64_t r[5] = { 0 };

	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char err[256], filler[200];
		uint8_t junk[4096] = { 1 };
		int fd, vol = 0;
		int64_t i;

		meter_close(self);
		/* a database connection does not cross fork(): this process opens its own */
		self->c = NULL;
		core_open(self, _metadata);
		if (unshare(CLONE_NEWNS) || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    (mkdir(self->obdir, 0700) && errno != EEXIST) ||
		    mount("none", self->obdir, "tmpfs", 0, "size=256k"))
			_exit(4);
		snprintf(filler, sizeof(filler), "%s/filler", self->obdir);
		fd = open(filler, O_WRONLY | O_CREAT, 0600);
		for (int k = 0; k < 40; k++)
			if (write(fd, junk, sizeof(junk)) != sizeof(junk))
				_exit(5);
		close(fd);
		meter_open(self, _metadata, 16 << 20);
		settle(&self->w);
		for (i = 1; i <= 3000 && vol < 50; i++) {
			int rc = reading(&self->u, i);

			if (rc < 0)
				_exit(6);
			vol += rc == GMPC_VOLATILE;
			cycle(&self->w);
		}
		r[0] = i - 1;				/* records made */
		r[1] = (int64_t)self->u.n_tail;		/* in memory now */
		unlink(filler);
		for (; i <= r[0] + 20; i++) {
			if (reading(&self->u, i))
				_exit(7);		/* on disk again */
			cycle(&self->w);
		}
		self->w.now += 700000;
		settle(&self->w);
		r[2] = (int64_t)self->u.n_tail;
		r[3] = i - 1;
		r[4] = (int64_t)self->u.volatile_records;
		(void)err;
		_exit(write(p[1], r, sizeof(r)) == sizeof(r) ? 0 : 8);
	}
	close(p[1]);
	if (read(p[0], r, sizeof(r)) != sizeof(r))
		memset(r, 0, sizeof(r));
	close(p[0]);
	waitpid(pid, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 4)
		SKIP(return, "no mount namespaces here");
	ASSERT_EQ(0, WEXITSTATUS(st));
	EXPECT_EQ(50, r[4]);
	EXPECT_EQ(0, r[2]);
	/* the child's town wrote to the same database file: every reading once */
	{
		int64_t want[4000];

		for (int64_t i = 0; i < r[3]; i++)
			want[i] = i + 1;
		EXPECT_EQ(NULL, exactly(self->c, want, (size_t)r[3]));
	}
	TH_LOG("%lld records before the disk filled, %lld through memory (%lld there at the "
	       "end, the rest acknowledged meanwhile), all %lld stored once",
	       (long long)(r[0] - r[4]), (long long)r[4], (long long)r[1], (long long)r[3]);
}

TEST_HARNESS_MAIN
