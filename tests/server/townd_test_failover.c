// SPDX-License-Identifier: GPL-2.0
/*
 * The scenario on the host, every piece real except the kernel:
 * townd on 127.0.0.1; meters A and B, each with its outbox
 * (lib/proto/outbox.c), uplink logic (lib/proto/gmp_client.c), SIM900 state
 * machine (agent/uplink/sim900.c) and simulated SIM900 (tests/sim900) on a
 * pty. The line discipline's forwarding is stood in for by writing A's
 * frames, unchanged, into B's modem when A's route is "via B".
 *
 *  1. A reports through its own modem;
 *  2. A's modem hangs: acks go missing, A fails over to B's link and modem
 *     (B cannot open A's frames), while A's modem is power-cycled;
 *  3. A's modem is back: A returns to its own path;
 *  4. townd is stopped for a while: both backlogs build up, then arrive;
 *  5. every reading of A and B is in townd exactly once, in order.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "sim900.h"
#include "gmp_client.h"
#include "nonce_audit.h"
#include "outbox.h"
#include "sim900sim.h"
#include "simtown.h"
#include "townd_config.h"
#include "townd_core.h"
#include "townd_net.h"

enum { ROUTE_OWN, ROUTE_VIA_B };

struct modem_side {
	int tty, ctl;
	pid_t pid;
	struct sim900 m;
	struct gm_rx rx;
	uint16_t frame_seq;
};

struct world;

struct send_ctx {
	struct world *w;
	struct meter_side *ms;
};

struct meter_side {
	uint16_t id;
	struct gmp_keypair kp;
	struct outbox ob;
	struct gmpc u;
	struct send_ctx sc;
	struct modem_side *own;
	int route;
	int failovers, returns;
	int64_t recorded;
};

struct world {
	struct sim_town t;		/* townd, its directory, key, database, listener */
	struct modem_side ma, mb;
	struct meter_side a, b;
	int forwarded, b_could_read;
	struct nonce_audit audit;	/* every frame the meters sent or received */
	FILE *cap_ab, *cap_ba;		/* A's frames into B's modem, frames for A out of it */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long w_tty(void *ctx, const void *buf, size_t len)
{
	return write(((struct modem_side *)ctx)->tty, buf, len);
}

static void ctl(struct modem_side *s, const char *cmd)
{
	char c;

	if (write(s->ctl, cmd, strlen(cmd)) < 0 || write(s->ctl, "\n", 1) < 0)
		return;
	while (read(s->ctl, &c, 1) == 1 && c != '\n')
		;
}

static void pwrkey(void *ctx, bool on)
{
	if (!on)
		ctl(ctx, "pwrkey");
}

static const struct sim900_ops modem_ops = { .write = w_tty, .pwrkey = pwrkey };

static int modem_setup(struct modem_side *s, uint16_t port)
{
	struct sim900_config c;
	struct termios t;
	int master;

	memset(s, 0, sizeof(*s));
	if (openpty(&master, &s->tty, NULL, NULL, NULL))
		return -1;
	tcgetattr(s->tty, &t);
	cfmakeraw(&t);
	tcsetattr(s->tty, TCSANOW, &t);
	fcntl(s->tty, F_SETFL, O_NONBLOCK);
	s->pid = sim900sim_spawn(master, -1, &s->ctl);
	if (s->pid < 0)
		return -1;
	sim900_config_defaults(&c);
	strcpy(c.apn, "gridmeter");
	strcpy(c.host, "127.0.0.1");
	c.port = port;
	c.cmd_timeout_ms = 500;
	c.ciicr_timeout_ms = 1000;
	c.connect_timeout_ms = 1000;
	c.reg_poll_ms = 100;
	c.guard_ms = 100;
	c.retry_delay_ms = 100;
	c.pwrkey_ms = 50;
	c.boot_ms = 1200;
	sim900_init(&s->m, &c, &modem_ops, s);
	gm_rx_init(&s->rx);
	sim900_start(&s->m, now_ms());
	return 0;
}

static void modem_teardown(struct modem_side *s)
{
	if (s->pid > 0) {
		close(s->ctl);
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		close(s->tty);
	}
}

/* The meter's /dev/gmlink write, as the line discipline would frame it. */
static int send_frame(void *ctx, unsigned int flags, const uint8_t *payload, size_t len)
{
	struct send_ctx *sc = ctx;
	struct meter_side *ms = sc->ms;
	struct modem_side *via = ms->route == ROUTE_OWN ? ms->own : &sc->w->mb;
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, ms->id, 0, via->frame_seq++ };
	uint8_t wire[GM_MAX_WIRE];
	int n;

	if (via->m.state != SIM900_DATA)
		return -EAGAIN;
	if (ms->route == ROUTE_VIA_B) {
		/* the forwarder has B's keys: none of them opens A's frames */
		struct gmp_session bs = sc->w->b.u.s;
		struct gmp_addr a = { GM_TYPE_DATA, (uint8_t)flags, ms->id, 0 };
		uint8_t plain[GM_MAX_PAYLOAD], sid = 0;

		sc->w->forwarded++;
		if (gmp_envelope_kind(payload, len, &sid) == GMP_KIND_SESSION) {
			bs.rx_ctr = 0;
			bs.sid = sid;
			bs.up = true;
			for (int k = 0; k < 3; k++) {
				if (k == 1)
					memcpy(bs.rx_key, sc->w->b.u.lt.rx, GMP_KEY_LEN);
				if (k == 2)
					memcpy(bs.rx_key, sc->w->b.u.lt.tx, GMP_KEY_LEN);
				if (gmp_open(&bs, &a, payload, len, plain, sizeof(plain), NULL) >= 0)
					sc->w->b_could_read++;
			}
		} else if (gmp_hs_open(&sc->w->b.u.lt, &a, payload, len, plain,
				       sizeof(plain)) >= 0) {
			sc->w->b_could_read++;
		}
	}
	n = gm_frame_encode(&h, payload, len, wire, sizeof(wire));
	if (n < 0)
		return -EINVAL;
	if (write(via->tty, wire, (size_t)n) != n)
		return -EAGAIN;
	nonce_audit_frame(&sc->w->audit, &h, payload, len);
	if (ms->route == ROUTE_VIA_B)
		fwrite(wire, 1, (size_t)n, sc->w->cap_ab);
	return 0;
}

/* Bytes from a modem: AT dialogue, or frames for the meters behind it. */
static void modem_bytes(struct world *w, struct modem_side *s, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	if (s->m.state != SIM900_DATA) {
		sim900_input(&s->m, (const char *)buf, len, now_ms());
		return;
	}
	while (off < len) {
		enum gm_rx_status st;
		struct meter_side *ms;

		off += gm_rx_feed(&s->rx, buf + off, len - off, &st);
		if (st != GM_RX_FRAME)
			continue;	/* CLOSED, NO CARRIER ... land here as noise */
		ms = s->rx.hdr.dst == w->a.id ? &w->a : s->rx.hdr.dst == w->b.id ? &w->b : NULL;
		if (ms)
			nonce_audit_frame(&w->audit, &s->rx.hdr, s->rx.payload, s->rx.payload_len);
		if (ms == &w->a && s == &w->mb) {
			uint8_t wire[GM_MAX_WIRE];
			int n = gm_frame_encode(&s->rx.hdr, s->rx.payload, s->rx.payload_len, wire,
						sizeof(wire));

			if (n > 0)
				fwrite(wire, 1, (size_t)n, w->cap_ba);
		}
		if (ms)
			gmpc_input(&ms->u, s->rx.hdr.type, s->rx.hdr.flags, s->rx.payload,
				   s->rx.payload_len, now_ms(), now_ms());
	}
}

/* What meterd's failover does with the uplink's verdict and the modem state. */
static void route_policy(struct world *w, struct meter_side *ms)
{
	if (ms->u.broken) {
		if (ms->own->m.state == SIM900_DATA)
			sim900_link_down(&ms->own->m, now_ms());
		if (ms == &w->a && ms->route == ROUTE_OWN) {
			ms->route = ROUTE_VIA_B;
			ms->failovers++;
		}
		gmpc_route_changed(&ms->u, now_ms());
	} else if (ms->route == ROUTE_VIA_B && ms->own->m.state == SIM900_DATA) {
		ms->route = ROUTE_OWN;
		ms->returns++;
		gmpc_route_changed(&ms->u, now_ms());
	}
}

static void record(struct meter_side *ms, int64_t t)
{
	struct gmp_msg g = { .type = GMP_READING };

	g.reading.start = 1790000000 + 60 * (ms->recorded + 1);
	g.reading.interval_s = 60;
	g.reading.import_mwh = ms->id * 100000 + ms->recorded;
	g.reading.export_mwh = t % 3;
	if (gmpc_record(&ms->u, &g) >= 0)
		ms->recorded++;
}

/* One pass of the event loop, at most wait_ms. */
static void step(struct world *w, int wait_ms)
{
	struct modem_side *ms[2] = { &w->ma, &w->mb };
	struct meter_side *mt[2] = { &w->a, &w->b };
	struct pollfd p[2] = { { .fd = w->ma.tty, .events = POLLIN },
			       { .fd = w->mb.tty, .events = POLLIN } };
	int64_t now = now_ms(), dl = INT64_MAX;

	for (int i = 0; i < 2; i++) {
		if (sim900_deadline(&ms[i]->m) < dl)
			dl = sim900_deadline(&ms[i]->m);
		if (gmpc_deadline(&mt[i]->u) < dl)
			dl = gmpc_deadline(&mt[i]->u);
	}
	if (dl != INT64_MAX && dl - now < wait_ms)
		wait_ms = dl - now < 0 ? 0 : (int)(dl - now);
	if (poll(p, 2, wait_ms) > 0) {
		for (int i = 0; i < 2; i++) {
			uint8_t buf[4096];
			ssize_t k;

			if (!(p[i].revents & POLLIN))
				continue;
			k = read(ms[i]->tty, buf, sizeof(buf));
			if (k > 0)
				modem_bytes(w, ms[i], buf, (size_t)k);
		}
	}
	now = now_ms();
	for (int i = 0; i < 2; i++) {
		sim900_tick(&ms[i]->m, now);
		gmpc_tick(&mt[i]->u, now);
		route_policy(w, mt[i]);
		gmpc_pump(&mt[i]->u, now, now);
	}
}

static void run_for(struct world *w, int ms, int record_every_ms)
{
	int64_t end = now_ms() + ms, next = now_ms();

	while (now_ms() < end) {
		if (record_every_ms && now_ms() >= next) {
			record(&w->a, now_ms());
			if ((w->a.recorded % 4) == 0)
				record(&w->b, now_ms());
			next += record_every_ms;
		}
		step(w, 20);
	}
}

static int meter_setup(struct world *w, struct meter_side *ms, uint16_t id,
		       struct modem_side *own)
{
	struct gmpc_config c;
	struct gmpc_hooks h = { .ctx = &ms->sc, .send = send_frame };
	char path[128], err[256];

	ms->id = id;
	ms->own = own;
	ms->sc = (struct send_ctx){ w, ms };
	gmp_keypair_generate(&ms->kp);
	if (sim_town_add(&w->t, id, ms->kp.pk))
		return -1;
	snprintf(path, sizeof(path), "%s/outbox-%u", w->t.dir, id);
	if (outbox_open(&ms->ob, path, 1 << 20, err, sizeof(err)))
		return -1;
	gmpc_config_defaults(&c);
	c.meter_id = id;
	c.key = ms->kp;
	memcpy(c.town_pk, w->t.kp.pk, GMP_KEY_LEN);
	c.ack_timeout_ms = 400;
	c.idle_ack_ms = 300;
	c.hello_retry_ms = 300;		/* the test's time runs fast: so does the back-off */
	c.hello_retry_max_ms = 2000;
	c.rehello_min_ms = 300;
	return gmpc_init(&ms->u, &c, &h, &ms->ob, err, sizeof(err));
}

/* Readings of meter id: seqs 1..n each once, values as recorded, in order. */
static const char *check_db(struct world *w, uint16_t id, int64_t n)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t expect = 1;
	const char *bad = NULL;

	if (sqlite3_open_v2(w->t.cfg.database, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return "open";
	if (sqlite3_prepare_v2(db, "SELECT seq, import_mwh FROM readings WHERE meter = ? "
			       "ORDER BY rowid", -1, &st, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return "prepare";
	}
	sqlite3_bind_int(st, 1, id);
	while (!bad && sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_int64(st, 0) != expect)
			bad = "missing, duplicated or out of order";
		else if (sqlite3_column_int64(st, 1) != id * 100000 + expect - 1)
			bad = "wrong value";
		expect++;
	}
	if (!bad && expect != n + 1)
		bad = "wrong count";
	sqlite3_finalize(st);
	sqlite3_close(db);
	return bad;
}

/* A meter's key file as meterd reads it (for uplink_wire on the kept captures). */
static void write_key(struct world *w, const char *name, uint16_t id, const struct gmp_keypair *kp)
{
	char path[160], hex[2 * GMP_KEY_LEN + 1];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", w->t.dir, name);
	f = fopen(path, "w");
	if (!f)
		return;
	gmp_hex_encode(kp->sk, GMP_KEY_LEN, hex);
	fprintf(f, "meter_id = %u\nmeter_secret_key = %s\n", id, hex);
	gmp_hex_encode(w->t.kp.pk, GMP_KEY_LEN, hex);
	fprintf(f, "town_public_key = %s\n", hex);
	fclose(f);
	chmod(path, 0600);
}

FIXTURE(world) {
	struct world w;
};

FIXTURE_SETUP(world)
{
	struct world *w = &self->w;
	char err[256];

	memset(w, 0, sizeof(*w));
	ASSERT_LE(0, sodium_init());
	ASSERT_EQ(0, sim_town_setup(&w->t, "townd-failover"));
	ASSERT_EQ(0, meter_setup(w, &w->a, 11, &w->ma));
	ASSERT_EQ(0, meter_setup(w, &w->b, 12, &w->mb));
	nonce_audit_init(&w->audit);
	ASSERT_EQ(0, nonce_audit_key(&w->audit, &w->t.kp, 11, w->a.kp.pk));
	ASSERT_EQ(0, nonce_audit_key(&w->audit, &w->t.kp, 12, w->b.kp.pk));
	snprintf(err, sizeof(err), "%s/line-a-to-b.bin", w->t.dir);
	w->cap_ab = fopen(err, "wb");
	snprintf(err, sizeof(err), "%s/line-b-to-a.bin", w->t.dir);
	w->cap_ba = fopen(err, "wb");
	ASSERT_NE(NULL, w->cap_ab);
	ASSERT_NE(NULL, w->cap_ba);
	sim_town_start(&w->t);
	ASSERT_EQ(0, modem_setup(&w->ma, w->t.port));
	ASSERT_EQ(0, modem_setup(&w->mb, w->t.port));
}

FIXTURE_TEARDOWN(world)
{
	struct world *w = &self->w;

	sim_town_stop(&w->t, SIGTERM);
	modem_teardown(&w->ma);
	modem_teardown(&w->mb);
	gmpc_free(&w->a.u);
	gmpc_free(&w->b.u);
	outbox_close(&w->a.ob);
	outbox_close(&w->b.ob);
	nonce_audit_free(&w->audit);
	if (w->cap_ab)
		fclose(w->cap_ab);
	if (w->cap_ba)
		fclose(w->cap_ba);
	/* GM_KEEP_FAILOVER=1 keeps the captures and keys, e.g. for uplink_wire */
	sim_town_teardown(&w->t, getenv("GM_KEEP_FAILOVER") != NULL);
}

TEST_F(world, modem_failover_neighbour_return_and_outage)
{
	struct world *w = &self->w;
	int64_t acked_own;

	/* 1. A reports through its own modem */
	run_for(w, 2000, 50);
	ASSERT_EQ(SIM900_DATA, w->ma.m.state);
	acked_own = (int64_t)w->a.ob.acked;
	EXPECT_LT(10, acked_own);
	EXPECT_EQ(0, w->a.failovers);

	/* 2. A's modem hangs */
	ctl(&w->ma, "hang");
	run_for(w, 2500, 50);
	EXPECT_EQ(1, w->a.failovers);
	EXPECT_LT(0, w->forwarded);
	EXPECT_EQ(0, w->b_could_read);
	EXPECT_LT(acked_own, (int64_t)w->a.ob.acked);	/* delivered through B */

	/* 3. the power key brings A's modem back; A returns to it */
	run_for(w, 5000, 50);
	EXPECT_EQ(1, w->a.returns);
	EXPECT_EQ(ROUTE_OWN, w->a.route);
	EXPECT_EQ(SIM900_DATA, w->ma.m.state);
	EXPECT_LE(1, (int)w->ma.m.power_cycles);

	/* 4. townd down for a while: backlogs build up */
	sim_town_stop(&w->t, SIGTERM);
	run_for(w, 2000, 50);
	EXPECT_LT(20, (int64_t)gmpc_backlog(&w->a.u));
	sim_town_start(&w->t);
	run_for(w, 1000, 50);

	/* 5. stop recording; everything drains */
	{
		int64_t end = now_ms() + 30000;

		while (now_ms() < end && (gmpc_backlog(&w->a.u) || gmpc_backlog(&w->b.u)))
			step(w, 50);
	}
	EXPECT_EQ(0, gmpc_backlog(&w->a.u));
	EXPECT_EQ(0, gmpc_backlog(&w->b.u));
	TH_LOG("A: %lld readings, %d failover(s), %d return(s), %d frames via B, %llu resends, "
	       "%llu handshakes; B: %lld readings", (long long)w->a.recorded, w->a.failovers,
	       w->a.returns, w->forwarded, (unsigned long long)w->a.u.resends,
	       (unsigned long long)w->a.u.handshakes, (long long)w->b.recorded);
	sim_town_stop(&w->t, SIGTERM);
	EXPECT_EQ(NULL, check_db(w, 11, w->a.recorded));
	EXPECT_EQ(NULL, check_db(w, 12, w->b.recorded));
	/* every frame either meter sent or received: its key found, no (key, nonce) twice */
	ASSERT_EQ(0, nonce_audit_run(&w->audit));
	EXPECT_EQ(0, w->audit.repeats);
	EXPECT_EQ(0, w->audit.unattributed);
	EXPECT_LT(0, w->audit.welcomes);
	TH_LOG("audit: %llu frames, %llu handshake and %llu session envelopes, %llu sessions, "
	       "%llu repeats", (unsigned long long)w->audit.frames,
	       (unsigned long long)w->audit.handshakes, (unsigned long long)w->audit.sessions,
	       (unsigned long long)w->audit.welcomes, (unsigned long long)w->audit.repeats);
	write_key(w, "uplink-a.key", 11, &w->a.kp);
	write_key(w, "uplink-b.key", 12, &w->b.kp);
}

TEST_HARNESS_MAIN
