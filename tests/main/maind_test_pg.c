// SPDX-License-Identifier: GPL-2.0
/*
 * maind end to end against a real PostgreSQL 15: a throwaway primary and a
 * streaming hot standby (scripts/pg-cluster.sh) in a scratch directory,
 * maind (maind_run) in a child process on 127.0.0.1, three towns as real
 * gmpc clients (outboxes on disk) over TCP. The towns send hours with
 * revisions (a stale lower revision after a higher one included); maind is
 * killed (SIGKILL) and restarted twice while they send. Checked with SQL:
 * every (town, meter, hour, period) exactly once at its highest revision;
 * every (town, seq) stored once (the received ranges chain from 1 with no
 * overlap); nothing a town saw acknowledged is missing from the primary at
 * the moment maind died; a supply command reaches its town once with its
 * result; the standby has the same rows.
 *
 * Skipped (with a message) only when PostgreSQL 15's binaries are absent.
 */
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
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"

#include "gm_frame.h"
#include "gmp_client.h"
#include "maind_config.h"
#include "maind_net.h"
#include "maind_pg.h"
#include "outbox.h"
#include "pg_scratch.h"

#define NTOWNS		3
#define METERS		150
#define HOURS		3
#define PERIODS		2
#define HOUR0		((int64_t)1790000000 / 3600 * 3600 - 10 * 3600)

struct town {
	uint16_t id;
	struct gmp_keypair kp;
	struct outbox ob;
	struct gmpc c;
	int fd;				/* -1: not connected */
	struct gm_rx rx;
	uint16_t fseq;
	int commands;			/* supply commands run */
	int64_t capacity;
};

struct world {
	char dir[64], shm[64], pgdir[128], primary[256], standby[256];
	struct maind_config cfg;
	struct gmp_keypair main_kp;
	int lfd;
	uint16_t port;
	pid_t pid;
	struct town t[NTOWNS];
	/* expected highest revision per key: import value, rev */
	int64_t want_import[NTOWNS][METERS][HOURS][PERIODS];
	int64_t want_rev[NTOWNS][METERS][HOURS][PERIODS];
	int64_t made[NTOWNS];		/* records made per town */
};

static void maind_start(struct world *w)
{
	w->pid = fork();
	if (w->pid == 0) {
		char err[768];
		int rc = maind_run(&w->cfg, &w->lfd, 1, err, sizeof(err));

		if (rc)
			fprintf(stderr, "maind_run: %s\n", err);
		_exit(rc ? 1 : 0);
	}
}

static void maind_kill(struct world *w, int sig)
{
	if (w->pid > 0) {
		kill(w->pid, sig);
		waitpid(w->pid, NULL, 0);
		w->pid = 0;
	}
}

/* ---- the towns: gmpc over TCP ------------------------------------------------------- */

static int town_send(void *ctx, unsigned int flags, const uint8_t *payload, size_t len)
{
	struct town *t = ctx;
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, t->id, GM_ID_SERVER,
			    t->fseq++ };
	uint8_t wire[GM_MAX_WIRE];
	int n = gm_frame_encode(&h, payload, len, wire, sizeof(wire));
	size_t off = 0;

	if (t->fd < 0)
		return -EAGAIN;
	if (n < 0)
		return -EINVAL;
	while (off < (size_t)n) {
		ssize_t k = send(t->fd, wire + off, (size_t)n - off, MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = { t->fd, POLLOUT, 0 };

				poll(&p, 1, 100);
				continue;
			}
			close(t->fd);
			t->fd = -1;
			return 0;	/* sent and lost: the ack timeout resends */
		}
		off += (size_t)k;
	}
	return 0;
}

static int town_command(void *ctx, const struct gmp_msg *m)
{
	struct town *t = ctx;

	if (m->type != GMP_SUPPLY)
		return GMP_CMD_UNSUPPORTED;
	t->commands++;
	t->capacity = m->supply.capacity_w;
	return GMP_CMD_OK;
}

static void town_connect(struct world *w, struct town *t)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(w->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	t->fd = fd;
	gm_rx_init(&t->rx);
	gmpc_route_changed(&t->c, mono_ms());	/* a new route: a new handshake */
}

/* One pass over every town: connect, pump, read, tick. */
static void towns_step(struct world *w)
{
	struct pollfd p[NTOWNS];

	for (int i = 0; i < NTOWNS; i++) {
		struct town *t = &w->t[i];

		if (t->fd < 0)
			town_connect(w, t);
		gmpc_tick(&t->c, mono_ms());
		gmpc_pump(&t->c, mono_ms(), real_ms());
		p[i] = (struct pollfd){ t->fd, POLLIN, 0 };
	}
	poll(p, NTOWNS, 20);
	for (int i = 0; i < NTOWNS; i++) {
		struct town *t = &w->t[i];
		uint8_t buf[8192];
		ssize_t n;

		if (t->fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(t->fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(t->fd);
				t->fd = -1;
			}
			continue;
		}
		for (size_t off = 0; off < (size_t)n;) {
			enum gm_rx_status st;

			off += gm_rx_feed(&t->rx, buf + off, (size_t)n - off, &st);
			if (st == GM_RX_FRAME && t->rx.hdr.dst == t->id)
				gmpc_input(&t->c, t->rx.hdr.type, t->rx.hdr.flags, t->rx.payload,
					   t->rx.payload_len, mono_ms(), real_ms());
		}
	}
}

static bool towns_done(const struct world *w)
{
	for (int i = 0; i < NTOWNS; i++)
		if (w->t[i].c.state != GMPC_UP || gmpc_backlog(&w->t[i].c) ||
		    w->t[i].c.n_results)
			return false;
	return true;
}

/* Town i's hour for (meter m, hour h, period p) at revision rev. */
static int hour_rec(struct world *w, int i, int m, int h, int p, int64_t rev, bool expect)
{
	struct gmp_msg g = { .type = GMP_HOUR };
	int rc;

	g.hour.meter = m + 1;
	g.hour.hour = HOUR0 + h * 3600;
	g.hour.period = p;
	g.hour.import_mwh = 1000000 * (i + 1) + 1000 * m + 100 * rev + 10 * h + p;
	g.hour.export_mwh = rev;
	g.hour.readings = 1 + (int)rev;
	g.hour.flags = rev ? 0 : GMP_HF_INCOMPLETE;
	g.hour.rev = rev;
	rc = gmpc_record(&w->t[i].c, &g);
	if (rc == 0) {
		w->made[i]++;
		if (expect && rev >= w->want_rev[i][m][h][p]) {
			w->want_rev[i][m][h][p] = rev;
			w->want_import[i][m][h][p] = g.hour.import_mwh;
		}
	}
	return rc;
}

FIXTURE(maind) {
	struct world *w;
	bool pg;
};

FIXTURE_SETUP(maind)
{
	struct world *w;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	char err[768], sql[512], hex[65];

	self->pg = pg_available();
	if (!self->pg)
		return;
	ASSERT_LE(0, sodium_init());
	w = self->w = calloc(1, sizeof(*w));
	ASSERT_NE(NULL, w);
	ASSERT_EQ(0, scratch_dir(w->dir, sizeof(w->dir), "maind-test"));
	/* the towns' outboxes: in memory (their fsync per record is not under test) */
	scratch_shm(w->shm, sizeof(w->shm), "maind-test", w->dir);
	ASSERT_EQ(0, pg_cluster_start(w->dir, w->pgdir, sizeof(w->pgdir), w->primary,
				      sizeof(w->primary)));
	ASSERT_EQ(0, pg_cluster_standby(w->pgdir, w->standby, sizeof(w->standby)));
	/* maind's key and configuration */
	maind_config_defaults(&w->cfg);
	snprintf(w->cfg.key_file, sizeof(w->cfg.key_file), "%s/maind.key", w->dir);
	snprintf(w->cfg.conninfo, sizeof(w->cfg.conninfo), "%s", w->primary);
	ASSERT_EQ(0, maind_key_create(w->cfg.key_file, &w->main_kp, err, sizeof(err)))
		TH_LOG("%s", err);
	w->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(0, bind(w->lfd, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, listen(w->lfd, 16));
	ASSERT_EQ(0, getsockname(w->lfd, (struct sockaddr *)&a, &al));
	w->port = ntohs(a.sin_port);
	/* the towns, provisioned as mainctl add-town does */
	ASSERT_EQ(0, pg_schema(w->primary, err, sizeof(err))) TH_LOG("%s", err);
	for (int i = 0; i < NTOWNS; i++) {
		struct town *t = &w->t[i];
		struct gmpc_config cfg;
		struct gmpc_hooks h = { .ctx = t, .send = town_send, .command = town_command };
		char obdir[128];

		t->id = (uint16_t)(11 + i);
		t->fd = -1;
		gmp_keypair_generate(&t->kp);
		gmp_hex_encode(t->kp.pk, GMP_KEY_LEN, hex);
		snprintf(sql, sizeof(sql), "INSERT INTO towns (id, name, pk) VALUES (%u, 'town%u', "
			 "decode('%s', 'hex')); UPDATE settings SET value = value + 1 WHERE "
			 "key = 'changes'", t->id, t->id, hex);
		ASSERT_EQ(0, pgx(w->primary, sql));
		snprintf(obdir, sizeof(obdir), "%s/outbox%u", w->shm, t->id);
		ASSERT_EQ(0, outbox_open(&t->ob, obdir, 1 << 26, err, sizeof(err))) TH_LOG("%s", err);
		gmpc_config_defaults(&cfg);
		cfg.meter_id = t->id;
		cfg.key = t->kp;
		memcpy(cfg.town_pk, w->main_kp.pk, GMP_KEY_LEN);
		cfg.ack_timeout_ms = 1500;
		cfg.hello_retry_ms = 200;
		cfg.hello_retry_max_ms = 1000;
		cfg.rehello_min_ms = 200;
		cfg.idle_ack_ms = 1000;
		cfg.window = 2000;
		ASSERT_EQ(0, gmpc_init(&t->c, &cfg, &h, &t->ob, err, sizeof(err))) TH_LOG("%s", err);
	}
	maind_start(w);
}

FIXTURE_TEARDOWN(maind)
{
	struct world *w = self->w;

	if (!self->pg)
		return;
	maind_kill(w, SIGKILL);
	for (int i = 0; i < NTOWNS; i++) {
		if (w->t[i].fd >= 0)
			close(w->t[i].fd);
		gmpc_free(&w->t[i].c);
		outbox_close(&w->t[i].ob);
	}
	close(w->lfd);
	pg_cluster_stop(w->pgdir);
	scratch_remove(w->dir);
	scratch_remove(w->shm);
	free(w);
}

/* What the primary holds for town t at most what t saw acknowledged? */
static bool acked_committed(struct world *w)
{
	for (int i = 0; i < NTOWNS; i++) {
		char sql[128];
		int64_t upto;

		snprintf(sql, sizeof(sql), "SELECT upto FROM towns WHERE id = %u", w->t[i].id);
		upto = pg1(w->primary, sql);
		if (upto < 0 || (int64_t)w->t[i].ob.acked > upto) {
			fprintf(stderr, "# town %u: acknowledged %llu, committed %lld\n", w->t[i].id,
				(unsigned long long)w->t[i].ob.acked, (long long)upto);
			return false;
		}
	}
	return true;
}

TEST_F(maind, hours_exactly_once_across_kills_with_standby)
{
	struct world *w = self->w;
	int64_t deadline, rows, want_rows = (int64_t)NTOWNS * METERS * HOURS * PERIODS;
	int kills = 0;
	char sql[512];

	if (!self->pg)
		SKIP(return, PG_SKIP_WHY);
	/* rev 0 of everything, rev 1 of half, rev 2 of a quarter, then a stale rev 1 */
	for (int i = 0; i < NTOWNS; i++)
		for (int m = 0; m < METERS; m++)
			for (int h = 0; h < HOURS; h++)
				for (int p = 0; p < PERIODS; p++)
					ASSERT_EQ(0, hour_rec(w, i, m, h, p, 0, true));
	deadline = mono_ms() + 15000;
	/* kill maind twice while the towns send */
	while (kills < 2 && mono_ms() < deadline) {
		towns_step(w);
		if (pg1(w->primary, "SELECT COALESCE(min(upto), 0) FROM towns") >
		    (kills + 1) * (int64_t)METERS * HOURS * PERIODS / 3) {
			maind_kill(w, SIGKILL);
			kills++;
			EXPECT_TRUE(acked_committed(w));
			for (int i = 0; i < NTOWNS; i++)
				for (int m = 0; m < METERS; m += 2)
					for (int h = 0; h < HOURS; h++)
						ASSERT_EQ(0, hour_rec(w, i, m, h, 1, kills, true));
			maind_start(w);
		}
	}
	EXPECT_EQ(2, kills);
	/* all of it stored first: what follows comes in later transactions */
	while (mono_ms() < deadline && !towns_done(w))
		towns_step(w);
	for (int i = 0; i < NTOWNS; i++)
		for (int m = 0; m < METERS; m += 4)
			ASSERT_EQ(0, hour_rec(w, i, m, 0, 0, 1, true));	/* a late revision */
	for (int i = 0; i < NTOWNS; i++)
		for (int m = 0; m < METERS; m += 4)
			ASSERT_EQ(0, hour_rec(w, i, m, 0, 1, 0, false));	/* stale: rev 2 is stored */
	/* a supply command for the first town */
	snprintf(sql, sizeof(sql), "INSERT INTO commands (town, tseq, type, capacity_w) VALUES "
		 "(%u, 1, 20, 7500000)", w->t[0].id);
	ASSERT_EQ(0, pgx(w->primary, sql));
	while (mono_ms() < deadline && (!towns_done(w) || w->t[0].commands < 1 ||
	       pg1(w->primary, "SELECT count(*) FROM commands WHERE status IS NULL") != 0))
		towns_step(w);
	ASSERT_TRUE(towns_done(w));
	EXPECT_TRUE(acked_committed(w));
	/* every (town, seq) once: the received ranges chain 1..upto, upto = records made */
	for (int i = 0; i < NTOWNS; i++) {
		snprintf(sql, sizeof(sql), "SELECT upto FROM towns WHERE id = %u", w->t[i].id);
		EXPECT_EQ(w->made[i], pg1(w->primary, sql));
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT first_seq, lag(last_seq) "
			 "OVER (ORDER BY first_seq) AS prev FROM received WHERE town = %u) r WHERE "
			 "first_seq <> COALESCE(prev, 0) + 1", w->t[i].id);
		EXPECT_EQ(0, pg1(w->primary, sql));
		snprintf(sql, sizeof(sql), "SELECT sum(last_seq - first_seq + 1) FROM received "
			 "WHERE town = %u", w->t[i].id);
		EXPECT_EQ(w->made[i], pg1(w->primary, sql));
	}
	/* every key once, at its highest revision */
	rows = pg1(w->primary, "SELECT count(*) FROM meter_hours");
	EXPECT_EQ(want_rows, rows);
	for (int i = 0; i < NTOWNS; i++) {
		int64_t bad = 0;
		PGconn *c = PQconnectdb(w->primary);
		PGresult *r;

		snprintf(sql, sizeof(sql), "SELECT meter, (extract(epoch FROM hour)::bigint - %lld) "
			 "/ 3600, period, import_mwh, rev FROM meter_hours WHERE town = %u",
			 (long long)HOUR0, w->t[i].id);
		r = PQexec(c, sql);
		ASSERT_EQ(PGRES_TUPLES_OK, PQresultStatus(r));
		EXPECT_EQ(METERS * HOURS * PERIODS, PQntuples(r));
		for (int k = 0; k < PQntuples(r); k++) {
			int m = atoi(PQgetvalue(r, k, 0)) - 1, h = atoi(PQgetvalue(r, k, 1));
			int p = atoi(PQgetvalue(r, k, 2));

			if (m < 0 || m >= METERS || h < 0 || h >= HOURS || p < 0 || p >= PERIODS ||
			    strtoll(PQgetvalue(r, k, 3), NULL, 10) != w->want_import[i][m][h][p] ||
			    strtoll(PQgetvalue(r, k, 4), NULL, 10) != w->want_rev[i][m][h][p])
				bad++;
		}
		PQclear(r);
		PQfinish(c);
		EXPECT_EQ(0, bad);
	}
	/* the command: run once by its town, its result stored */
	EXPECT_EQ(1, w->t[0].commands);
	EXPECT_EQ(7500000, w->t[0].capacity);
	snprintf(sql, sizeof(sql), "SELECT status FROM commands WHERE town = %u AND tseq = 1",
		 w->t[0].id);
	EXPECT_EQ(GMP_CMD_OK, pg1(w->primary, sql));
	/* the standby: the same rows, once it replayed the primary's WAL */
	pgx(w->primary, "CHECKPOINT");
	for (int i = 0; i < 200 && pg1(w->standby, "SELECT count(*) FROM meter_hours") != rows; i++)
		usleep(50000);
	EXPECT_EQ(1, pg1(w->standby, "SELECT pg_is_in_recovery()::int"));
	EXPECT_EQ(rows, pg1(w->standby, "SELECT count(*) FROM meter_hours"));
	EXPECT_EQ(pg1(w->primary, "SELECT sum(import_mwh * (rev + 1)) FROM meter_hours"),
		  pg1(w->standby, "SELECT sum(import_mwh * (rev + 1)) FROM meter_hours"));
	EXPECT_EQ(pg1(w->primary, "SELECT sum(upto) FROM towns"),
		  pg1(w->standby, "SELECT sum(upto) FROM towns"));
}

TEST_HARNESS_MAIN
