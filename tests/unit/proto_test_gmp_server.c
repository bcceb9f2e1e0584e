// SPDX-License-Identifier: GPL-2.0
/*
 * The server end of a tier link (lib/proto/gmp_server.c) against a real
 * gmpc client (lib/proto/gmp_client.c, its outbox on disk), in one
 * process with simulated time. Storage is an in-memory model with real
 * transaction semantics (a committed copy and a working copy), so that a
 * "restart" of the server starts from exactly what was committed.
 *
 * Shown: handshake; records stored exactly once and in order across lost
 * acknowledgements, lost frames, server restarts and a failed commit;
 * nothing acknowledged that was not committed; replayed session frames and
 * HELLOs (also after a restart: the HELLO memory comes from storage),
 * forged frames and meter-class records refused; commands delivered once,
 * with results, also when a result is lost and when nothing else flows
 * (gmps_kick); what the HELLO reported handed to storage once confirmed.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "gmp_client.h"
#include "gmp_server.h"
#include "outbox.h"

#define T0	1790000000LL	/* UTC s at simulated time 0 */
#define PEER	7		/* the town's id */
#define MAXREC	2000
#define MAXCMD	16
#define QMAX	256

/* ---- storage model -------------------------------------------------------------- */

struct cmd {
	struct gmp_msg m;	/* tseq set */
	int64_t status;		/* -1: no result yet */
	int results;		/* results received */
};

struct db {
	bool known, revoked;
	struct gmps_peer_state peer;
	int64_t seqs[MAXREC];	/* seq of each record stored, in storage order */
	int64_t hours[MAXREC];	/* the record's hour.hour (its identity in the test) */
	size_t n;
	int64_t lost_first, lost_last;
	struct cmd cmd[MAXCMD];
	size_t n_cmd;
	struct gmps_hello hello;	/* the last confirmed */
	int hellos;
};

struct store {
	struct db committed, work;
	bool in_tx;
	int fail_commit;	/* commits to fail from now on */
	int commits;
};

static int st_lookup(void *ctx, uint16_t id, struct gmps_peer_state *out)
{
	struct store *s = ctx;
	const struct db *d = s->in_tx ? &s->work : &s->committed;

	if (id != PEER || !d->known)
		return 0;
	*out = d->peer;
	out->revoked = d->revoked;
	return 1;
}

static int st_begin(void *ctx)
{
	struct store *s = ctx;

	if (s->in_tx)
		return -1;	/* the server must never nest */
	s->work = s->committed;
	s->in_tx = true;
	return 0;
}

static int st_records(void *ctx, uint16_t id, const struct gmp_msg *m, size_t n, int64_t now)
{
	struct store *s = ctx;
	struct db *d = &s->work;

	(void)now;
	if (!s->in_tx || id != PEER)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (d->n == MAXREC)
			return -1;
		d->seqs[d->n] = gmp_msg_seq(&m[i]);
		d->hours[d->n++] = m[i].type == GMP_HOUR ? m[i].hour.hour : -1;
	}
	return 0;
}

static int st_lost(void *ctx, uint16_t id, int64_t first, int64_t last, int64_t now)
{
	struct store *s = ctx;

	(void)id;
	(void)now;
	s->work.lost_first = first;
	s->work.lost_last = last;
	return s->in_tx ? 0 : -1;
}

static int st_result(void *ctx, uint16_t id, int64_t tseq, int64_t status, int64_t now)
{
	struct store *s = ctx;

	(void)id;
	(void)now;
	for (size_t i = 0; i < s->work.n_cmd; i++) {
		struct cmd *c = &s->work.cmd[i];

		if (gmp_cmd_tseq(&c->m) == tseq) {
			c->results++;
			if (c->status < 0 || c->status == GMP_CMD_STORAGE)
				c->status = status;
		}
	}
	return s->in_tx ? 0 : -1;
}

static int st_hello(void *ctx, uint16_t id, const struct gmps_hello *h, int64_t now)
{
	struct store *s = ctx;

	(void)id;
	(void)now;
	s->work.hello = *h;
	s->work.hellos++;
	return s->in_tx ? 0 : -1;
}

static int st_cmd_next(void *ctx, uint16_t id, int64_t floor, int64_t *next)
{
	struct store *s = ctx;
	int64_t high = 0, low = 0;

	(void)id;
	for (size_t i = 0; i < s->work.n_cmd; i++) {
		int64_t t = gmp_cmd_tseq(&s->work.cmd[i].m);

		if (t > high)
			high = t;
		if ((s->work.cmd[i].status < 0 || s->work.cmd[i].status == GMP_CMD_STORAGE) &&
		    (!low || t < low))
			low = t;
	}
	*next = low ? low : high + 1;
	if (*next <= floor)
		*next = floor + 1;
	return 0;
}

static int st_commands(void *ctx, uint16_t id, struct gmp_msg *out, size_t max, int64_t now)
{
	struct store *s = ctx;
	size_t k = 0;

	(void)id;
	(void)now;
	if (!s->in_tx)
		return -1;
	for (size_t i = 0; i < s->work.n_cmd && k < max; i++)
		if (s->work.cmd[i].status < 0 || s->work.cmd[i].status == GMP_CMD_STORAGE)
			out[k++] = s->work.cmd[i].m;
	return (int)k;
}

static int st_save(void *ctx, const struct gmps_peer_state *p)
{
	struct store *s = ctx;

	if (!s->in_tx || p->id != PEER)
		return -1;
	s->work.peer = *p;
	return 0;
}

static int st_commit(void *ctx)
{
	struct store *s = ctx;

	if (!s->in_tx)
		return -1;
	if (s->fail_commit) {
		s->fail_commit--;
		return -1;
	}
	s->committed = s->work;
	s->in_tx = false;
	s->commits++;
	return 0;
}

static void st_rollback(void *ctx)
{
	struct store *s = ctx;

	s->in_tx = false;
}

/* A command queued by the operator (between batches). */
static void queue_supply(struct store *s, int64_t watts)
{
	struct db *d = &s->committed;
	int64_t high = d->peer.cmd_floor;
	struct cmd *c = &d->cmd[d->n_cmd++];

	for (size_t i = 0; i + 1 < d->n_cmd; i++)
		if (gmp_cmd_tseq(&d->cmd[i].m) > high)
			high = gmp_cmd_tseq(&d->cmd[i].m);
	memset(c, 0, sizeof(*c));
	c->m.type = GMP_SUPPLY;
	c->m.supply.capacity_w = watts;
	gmp_cmd_set_tseq(&c->m, high + 1);
	c->status = -1;
}

/* ---- the two ends and the wire between them -------------------------------------- */

struct frame {
	struct gm_hdr h;
	uint8_t p[GM_MAX_PAYLOAD];
	size_t len;
};

struct world {
	struct store st;
	struct gmps *srv;
	struct gmp_keypair main_kp, town_kp;
	struct gmpc cli;
	struct gmpc_config ccfg;
	struct outbox ob;
	char dir[64], obdir[128];
	int64_t now;			/* ms since T0 (both clocks) */
	bool drop_up, drop_down;	/* frames vanish */
	struct frame up[QMAX], down[QMAX];
	size_t n_up, n_down;
	uint16_t fseq;
	/* captured from the client for replays */
	struct frame cap[QMAX];
	size_t n_cap;
	/* what the client's owner saw */
	int cmds_run;
	int64_t last_capacity;
	int verdicts[3];
	int flush_failed;
};

/* The store is the world's first member: the server's hooks share one ctx. */
_Static_assert(offsetof(struct world, st) == 0, "the store is the world's first member");

static int to_server(void *ctx, unsigned int flags, const uint8_t *payload, size_t len)
{
	struct world *w = ctx;
	struct frame *f;

	if (w->n_cap < QMAX) {
		f = &w->cap[w->n_cap++];
		f->h = (struct gm_hdr){ GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, PEER,
					GM_ID_SERVER, w->fseq };
		memcpy(f->p, payload, len);
		f->len = len;
	}
	w->fseq++;
	if (w->drop_up || w->n_up == QMAX)
		return 0;
	f = &w->up[w->n_up++];
	f->h = (struct gm_hdr){ GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, PEER, GM_ID_SERVER,
				w->fseq };
	memcpy(f->p, payload, len);
	f->len = len;
	return 0;
}

static void to_client(void *ctx, uint64_t conn, const uint8_t *wire, size_t len)
{
	struct world *w = ctx;
	struct gm_rx rx;
	enum gm_rx_status st;

	(void)conn;
	gm_rx_init(&rx);
	gm_rx_feed(&rx, wire, len, &st);
	if (st != GM_RX_FRAME || w->drop_down || w->n_down == QMAX)
		return;
	w->down[w->n_down].h = rx.hdr;
	memcpy(w->down[w->n_down].p, rx.payload, rx.payload_len);
	w->down[w->n_down++].len = rx.payload_len;
}

static int on_command(void *ctx, const struct gmp_msg *m)
{
	struct world *w = ctx;

	if (m->type != GMP_SUPPLY)
		return GMP_CMD_UNSUPPORTED;
	w->cmds_run++;
	w->last_capacity = m->supply.capacity_w;
	return GMP_CMD_OK;
}

static int64_t real_ms(const struct world *w)
{
	return T0 * 1000 + w->now;
}

static int server_start(struct world *w)
{
	struct gmps_hooks h = {
		.ctx = &w->st, .lookup = st_lookup, .begin = st_begin, .records = st_records,
		.lost = st_lost, .result = st_result, .hello = st_hello, .cmd_next = st_cmd_next,
		.commands = st_commands, .save = st_save, .commit = st_commit,
		.rollback = st_rollback, .send = to_client,
	};

	w->srv = calloc(1, sizeof(*w->srv));
	if (!w->srv)
		return -1;
	if (gmps_init(w->srv, &w->main_kp, GM_ID_SERVER, &h))
		return -1;
	return 0;
}

static void server_stop(struct world *w)
{
	gmps_free(w->srv);
	free(w->srv);
	w->srv = NULL;
	w->st.in_tx = false;	/* a crash: the open transaction is gone */
}

/* One round: client timers and output, server input and flush, client input. */
static void round_(struct world *w)
{
	struct frame up[QMAX], down[QMAX];
	size_t nu, nd;

	gmpc_tick(&w->cli, w->now);
	gmpc_pump(&w->cli, w->now, real_ms(w));
	nu = w->n_up;
	memcpy(up, w->up, nu * sizeof(up[0]));
	w->n_up = 0;
	for (size_t i = 0; i < nu; i++) {
		int v = gmps_frame(w->srv, 1, &up[i].h, up[i].p, up[i].len, real_ms(w));

		w->verdicts[v]++;
	}
	if (gmps_flush(w->srv, real_ms(w))) {
		/* storage failed: as maind does, start again from storage */
		w->flush_failed++;
		server_stop(w);
		server_start(w);
	}
	nd = w->n_down;
	memcpy(down, w->down, nd * sizeof(down[0]));
	w->n_down = 0;
	for (size_t i = 0; i < nd; i++)
		gmpc_input(&w->cli, down[i].h.type, down[i].h.flags, down[i].p, down[i].len,
			   w->now, real_ms(w));
	w->now += 100;
}

/* Rounds until the client holds nothing unacknowledged (or limit rounds). */
static int settle(struct world *w, int limit)
{
	for (int i = 0; i < limit; i++) {
		round_(w);
		if (w->cli.state == GMPC_UP && !gmpc_backlog(&w->cli) && !w->cli.n_results)
			return i;
	}
	return -1;
}

static int hour_rec(struct world *w, int64_t i)
{
	struct gmp_msg g = { .type = GMP_HOUR };

	g.hour.meter = 1 + i % 300;
	g.hour.hour = (T0 / 3600 - 100) * 3600 + i;	/* unique per record: its identity */
	g.hour.period = i % 3;
	g.hour.import_mwh = 1000 + i;
	g.hour.readings = 1;
	return gmpc_record(&w->cli, &g);
}

/* Every record 1..n stored exactly once, in order, each the one the client made. */
static bool exactly_once(const struct db *d, int64_t n, int64_t first_hour)
{
	if ((int64_t)d->n != n || d->peer.upto != n)
		return false;
	for (int64_t i = 0; i < n; i++)
		if (d->seqs[i] != i + 1 || d->hours[i] != first_hour + i)
			return false;
	return true;
}

FIXTURE(tier) {
	struct world *w;
};

FIXTURE_SETUP(tier)
{
	struct gmpc_hooks ch;
	struct world *w;
	char err[256];

	ASSERT_LE(0, sodium_init());
	w = self->w = calloc(1, sizeof(*self->w));
	ASSERT_NE(NULL, w);
	strcpy(w->dir, "/tmp/gmps-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(w->dir));
	snprintf(w->obdir, sizeof(w->obdir), "%s/outbox", w->dir);
	gmp_keypair_generate(&w->main_kp);
	gmp_keypair_generate(&w->town_kp);
	w->st.committed.known = true;
	memcpy(w->st.committed.peer.pk, w->town_kp.pk, GMP_KEY_LEN);
	w->now = 1000;
	ASSERT_EQ(0, server_start(w));
	gmpc_config_defaults(&w->ccfg);
	w->ccfg.meter_id = PEER;
	w->ccfg.key = w->town_kp;
	memcpy(w->ccfg.town_pk, w->main_kp.pk, GMP_KEY_LEN);
	w->ccfg.ack_timeout_ms = 1000;
	w->ccfg.hello_retry_ms = 500;
	w->ccfg.hello_retry_max_ms = 2000;
	w->ccfg.rehello_min_ms = 500;
	w->ccfg.idle_ack_ms = 2000;
	ch = (struct gmpc_hooks){ .ctx = w, .send = to_server, .command = on_command };
	ASSERT_EQ(0, outbox_open(&w->ob, w->obdir, 1 << 24, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, gmpc_init(&w->cli, &w->ccfg, &ch, &w->ob, err, sizeof(err))) TH_LOG("%s", err);
}

FIXTURE_TEARDOWN(tier)
{
	char cmd[128];

	gmpc_free(&self->w->cli);
	outbox_close(&self->w->ob);
	if (self->w->srv)
		server_stop(self->w);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->w->dir);
	if (system(cmd)) {
		/* nothing */
	}
	free(self->w);
}

#define FIRST_HOUR	((T0 / 3600 - 100) * 3600)

TEST_F(tier, handshake_and_records_once)
{
	struct world *w = self->w;

	for (int i = 0; i < 300; i++)
		ASSERT_EQ(0, hour_rec(w, i));
	ASSERT_LE(0, settle(w, 400));
	EXPECT_TRUE(exactly_once(&w->st.committed, 300, FIRST_HOUR));
	EXPECT_EQ(1, w->srv->st.hellos);
	EXPECT_EQ(1, w->srv->st.confirmed);
	EXPECT_EQ(300, (int64_t)w->ob.acked);
	/* what the HELLO said reached storage once confirmed: 300 records waited then */
	EXPECT_EQ(1, w->st.committed.hellos);
	EXPECT_EQ(301, w->st.committed.hello.next_seq);
	EXPECT_EQ(1, w->st.committed.hello.first_held);
	EXPECT_EQ(0, w->st.committed.hello.upto);
	EXPECT_EQ(0, w->srv->st.duplicates);
	EXPECT_TRUE(gmps_connected(w->srv, PEER));
}

TEST_F(tier, lost_acks_and_frames_store_once)
{
	struct world *w = self->w;
	int64_t made = 0;

	ASSERT_LE(0, settle(w, 50));
	/* acknowledgements vanish: the client resends, the server stores once */
	w->drop_down = true;
	for (; made < 100; made++)
		ASSERT_EQ(0, hour_rec(w, made));
	for (int i = 0; i < 30; i++)
		round_(w);
	EXPECT_EQ(100, w->st.committed.peer.upto);
	EXPECT_EQ(0, (int64_t)w->ob.acked);
	w->drop_down = false;
	/* frames up vanish for a while too */
	w->drop_up = true;
	for (; made < 200; made++)
		ASSERT_EQ(0, hour_rec(w, made));
	for (int i = 0; i < 20; i++)
		round_(w);
	w->drop_up = false;
	ASSERT_LE(0, settle(w, 600));
	EXPECT_TRUE(exactly_once(&w->st.committed, 200, FIRST_HOUR));
	EXPECT_LT(0, w->srv->st.duplicates);	/* resent ones came and were not stored again */
	EXPECT_EQ(200, (int64_t)w->ob.acked);
}

TEST_F(tier, server_restarts_and_failed_commit)
{
	struct world *w = self->w;
	int64_t made = 0, acked_at_fail;

	for (; made < 60; made++)
		ASSERT_EQ(0, hour_rec(w, made));
	ASSERT_LE(0, settle(w, 200));
	/* the server restarts: its sessions are gone, a REHELLO, a new handshake */
	server_stop(w);
	ASSERT_EQ(0, server_start(w));
	for (; made < 120; made++)
		ASSERT_EQ(0, hour_rec(w, made));
	ASSERT_LE(0, settle(w, 600));
	EXPECT_LE(1, w->srv->st.rehellos);
	EXPECT_TRUE(exactly_once(&w->st.committed, 120, FIRST_HOUR));
	/* a commit fails: nothing of that batch is acknowledged, the server starts over */
	acked_at_fail = (int64_t)w->ob.acked;
	w->st.fail_commit = 1;
	for (; made < 160; made++)
		ASSERT_EQ(0, hour_rec(w, made));
	round_(w);
	EXPECT_EQ(1, w->flush_failed);
	EXPECT_EQ(acked_at_fail, (int64_t)w->ob.acked);
	EXPECT_EQ(120, w->st.committed.peer.upto);
	/* and mid-transfer restarts, again and again */
	for (int k = 0; k < 3; k++) {
		for (int i = 0; i < 3; i++)
			round_(w);
		server_stop(w);
		ASSERT_EQ(0, server_start(w));
		for (int i = 0; i < 5; i++, made++)
			ASSERT_EQ(0, hour_rec(w, made));
	}
	ASSERT_LE(0, settle(w, 1000));
	EXPECT_TRUE(exactly_once(&w->st.committed, made, FIRST_HOUR));
	/* everything acknowledged is committed, and the client holds nothing more */
	EXPECT_EQ(made, (int64_t)w->ob.acked);
	EXPECT_LE((int64_t)w->ob.acked, w->st.committed.peer.upto);
}

/* Replays of captured frames, forged frames, foreign record classes. */
TEST_F(tier, replays_and_forgeries_refused)
{
	struct world *w = self->w;
	struct frame hello, data;
	struct gmp_keypair other;
	struct gmps_stats before;
	size_t n0;
	bool got_hello = false, got_data = false;

	for (int i = 0; i < 10; i++)
		ASSERT_EQ(0, hour_rec(w, i));
	ASSERT_LE(0, settle(w, 200));
	for (size_t i = 0; i < w->n_cap; i++) {
		int k = gmp_envelope_kind(w->cap[i].p, w->cap[i].len, NULL);

		if (k == GMP_KIND_HANDSHAKE && !got_hello) {
			hello = w->cap[i];
			got_hello = true;
		} else if (k == GMP_KIND_SESSION && !got_data) {
			data = w->cap[i];
			got_data = true;
		}
	}
	ASSERT_TRUE(got_hello && got_data);
	n0 = w->st.committed.n;
	/* a session frame again: its counter was used */
	before = w->srv->st;
	EXPECT_EQ(GMPS_REJECTED, gmps_frame(w->srv, 2, &data.h, data.p, data.len, real_ms(w)));
	EXPECT_EQ(before.replayed + 1, w->srv->st.replayed);
	/* the HELLO again while its session is held: its WELCOME again, nothing else */
	EXPECT_EQ(GMPS_DUPLICATE, gmps_frame(w->srv, 2, &hello.h, hello.p, hello.len,
					      real_ms(w)));
	ASSERT_EQ(0, gmps_flush(w->srv, real_ms(w)));
	w->n_down = 0;
	/* after a restart: the HELLO memory in storage refuses it */
	server_stop(w);
	ASSERT_EQ(0, server_start(w));
	before = w->srv->st;
	EXPECT_EQ(GMPS_REJECTED, gmps_frame(w->srv, 2, &hello.h, hello.p, hello.len,
					     real_ms(w)));
	EXPECT_EQ(before.replayed + 1, w->srv->st.replayed);
	EXPECT_EQ(0, w->srv->st.hellos);
	/* the old session frame to the new server: no session, a REHELLO at most */
	EXPECT_EQ(GMPS_REJECTED, gmps_frame(w->srv, 2, &data.h, data.p, data.len, real_ms(w)));
	/* a byte flipped: authentication fails */
	hello.p[hello.len - 1] ^= 1;
	EXPECT_EQ(GMPS_REJECTED, gmps_frame(w->srv, 2, &hello.h, hello.p, hello.len,
					     real_ms(w)));
	/* a HELLO sealed under another key claiming the town's id */
	{
		struct gmp_lt lt;
		struct gmp_msg h = { .type = GMP_HELLO };
		struct gmp_addr a = { GM_TYPE_DATA, 0, PEER, GM_ID_SERVER };
		uint8_t plain[GMP_HS_PLAIN_MAX];
		struct frame f = { .h = hello.h };
		size_t len = 0;
		int n;

		gmp_keypair_generate(&other);
		ASSERT_EQ(0, gmp_lt_meter(&lt, &other, w->main_kp.pk));
		randombytes_buf(h.hello.rm, GMP_RAND_LEN);
		h.hello.next_seq = 1;
		h.hello.first_held = 1;
		ASSERT_EQ(0, gmp_encode(&h, plain, sizeof(plain), &len));
		n = gmp_hs_seal(&lt, &a, plain, len, f.p, sizeof(f.p));
		ASSERT_LT(0, n);
		f.len = (size_t)n;
		before = w->srv->st;
		EXPECT_EQ(GMPS_REJECTED, gmps_frame(w->srv, 2, &f.h, f.p, f.len, real_ms(w)));
		EXPECT_EQ(before.auth_failed + 1, w->srv->st.auth_failed);
		/* the same from an id storage does not know */
		f.h.src = PEER + 1;
		EXPECT_EQ(GMPS_REJECTED, gmps_frame(w->srv, 2, &f.h, f.p, f.len, real_ms(w)));
		EXPECT_EQ(before.unknown_peer + 1, w->srv->st.unknown_peer);
	}
	ASSERT_EQ(0, gmps_flush(w->srv, real_ms(w)));
	w->n_down = 0;
	EXPECT_EQ(n0, w->st.committed.n);
	/* a meter's reading on a tier link: refused whole, never stored */
	{
		struct gmp_msg g = { .type = GMP_READING };

		g.reading.start = T0;
		g.reading.interval_s = 60;
		ASSERT_EQ(0, gmpc_record(&w->cli, &g));
		ASSERT_EQ(0, hour_rec(w, 10));
		before = w->srv->st;
		for (int i = 0; i < 100; i++)
			round_(w);
		EXPECT_LT(before.malformed, w->srv->st.malformed);
		EXPECT_EQ(10, w->st.committed.peer.upto);
		EXPECT_EQ(n0, w->st.committed.n);
	}
}

TEST_F(tier, commands_once_with_results)
{
	struct world *w = self->w;
	int64_t made = 0;

	queue_supply(&w->st, 5000000);
	for (; made < 5; made++)
		ASSERT_EQ(0, hour_rec(w, made));
	ASSERT_LE(0, settle(w, 200));
	EXPECT_EQ(1, w->cmds_run);
	EXPECT_EQ(5000000, w->last_capacity);
	EXPECT_EQ(GMP_CMD_OK, w->st.committed.cmd[0].status);
	EXPECT_EQ(1, w->st.committed.peer.cmd_floor);
	/* nothing flows; the operator queues another: the kick sends it */
	queue_supply(&w->st, 4000000);
	ASSERT_EQ(0, gmps_kick(w->srv, PEER));
	EXPECT_EQ(-1, gmps_kick(w->srv, PEER + 1));
	/* its result is lost on the way up: the command comes again, runs once */
	w->drop_up = true;
	ASSERT_EQ(0, gmps_flush(w->srv, real_ms(w)));
	for (int i = 0; i < 5; i++)
		round_(w);
	EXPECT_EQ(2, w->cmds_run);
	EXPECT_EQ(4000000, w->last_capacity);
	EXPECT_EQ(-1, w->st.committed.cmd[1].status);
	w->drop_up = false;
	for (; made < 10; made++)
		ASSERT_EQ(0, hour_rec(w, made));
	ASSERT_LE(0, settle(w, 400));
	for (int i = 0; i < 30; i++)
		round_(w);
	EXPECT_EQ(2, w->cmds_run);
	/* the client had run it: its answer to the copy is "handled before" */
	EXPECT_EQ(GMP_CMD_DUPLICATE, w->st.committed.cmd[1].status);
	EXPECT_LE(1, w->st.committed.cmd[1].results);
	EXPECT_EQ(2, w->st.committed.peer.cmd_floor);
	/* a restart: the HELLO's floor reaches storage, nothing runs again */
	server_stop(w);
	ASSERT_EQ(0, server_start(w));
	for (; made < 15; made++)
		ASSERT_EQ(0, hour_rec(w, made));
	ASSERT_LE(0, settle(w, 600));
	EXPECT_EQ(2, w->st.committed.hello.cmd_floor);
	EXPECT_EQ(2, w->cmds_run);
	EXPECT_TRUE(exactly_once(&w->st.committed, made, FIRST_HOUR));
}

TEST_F(tier, restored_storage_gets_the_records_again)
{
	struct world *w = self->w;

	for (int i = 0; i < 20; i++)
		ASSERT_EQ(0, hour_rec(w, i));
	ASSERT_LE(0, settle(w, 200));
	/* the server's storage is restored to an older copy: upto 5 */
	server_stop(w);
	w->st.committed.peer.upto = 5;
	w->st.committed.n = 5;
	ASSERT_EQ(0, server_start(w));
	ASSERT_EQ(0, hour_rec(w, 20));
	ASSERT_LE(0, settle(w, 600));
	/* the client resends what it retains (all of it here): stored once again */
	EXPECT_EQ(1, (int64_t)w->cli.rewinds);
	EXPECT_TRUE(exactly_once(&w->st.committed, 21, FIRST_HOUR))
		TH_LOG("n %zu upto %lld rewinds %llu lost %lld..%lld", w->st.committed.n,
		       (long long)w->st.committed.peer.upto, (unsigned long long)w->cli.rewinds,
		       (long long)w->st.committed.lost_first, (long long)w->st.committed.lost_last);
}

TEST_HARNESS_MAIN
