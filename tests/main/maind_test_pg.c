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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "maind_pg.h"
#include "maind_towns.h"
#include "pg_scratch.h"

#define NTOWNS		3
#define METERS		150
#define HOURS		3
#define PERIODS		2
#define HOUR0		((int64_t)1790000000 / 3600 * 3600 - 10 * 3600)

struct town {
	struct tcp_town link;		/* first: the gmpc hooks' ctx is the town */
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

/* ---- the towns: gmpc over TCP ------------------------------------------------------- */

static int town_command(void *ctx, const struct gmp_msg *m)
{
	struct town *t = ctx;

	if (m->type != GMP_SUPPLY)
		return GMP_CMD_UNSUPPORTED;
	t->commands++;
	t->capacity = m->supply.capacity_w;
	return GMP_CMD_OK;
}

/* One pass over every town: connect, pump, read, tick. */
static void towns_step(struct world *w)
{
	struct tcp_town *t[NTOWNS];

	for (int i = 0; i < NTOWNS; i++)
		t[i] = &w->t[i].link;
	tcp_towns_step(t, NTOWNS, w->port);
}

static bool towns_done(const struct world *w)
{
	for (int i = 0; i < NTOWNS; i++)
		if (w->t[i].link.c.state != GMPC_UP || gmpc_backlog(&w->t[i].link.c) ||
		    w->t[i].link.c.n_results)
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
	rc = gmpc_record(&w->t[i].link.c, &g);
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
	ASSERT_EQ(0, loopback_listen(&w->lfd, &w->port));
	/* the towns, provisioned as mainctl add-town does */
	ASSERT_EQ(0, pg_schema(w->primary, err, sizeof(err))) TH_LOG("%s", err);
	for (int i = 0; i < NTOWNS; i++) {
		struct town *t = &w->t[i];
		struct gmpc_config cfg;
		struct gmpc_hooks h = { .ctx = t, .send = tcp_town_send, .command = town_command };
		char obdir[128];

		t->link.id = (uint16_t)(11 + i);
		t->link.fd = -1;
		gmp_keypair_generate(&t->link.kp);
		gmp_hex_encode(t->link.kp.pk, GMP_KEY_LEN, hex);
		snprintf(sql, sizeof(sql), "INSERT INTO towns (id, name, pk) VALUES (%u, 'town%u', "
			 "decode('%s', 'hex')); UPDATE settings SET value = value + 1 WHERE "
			 "key = 'changes'", t->link.id, t->link.id, hex);
		ASSERT_EQ(0, pgx(w->primary, sql));
		snprintf(obdir, sizeof(obdir), "%s/outbox%u", w->shm, t->link.id);
		ASSERT_EQ(0, outbox_open(&t->link.ob, obdir, 1 << 26, err, sizeof(err)))
			TH_LOG("%s", err);
		tcp_town_config(&cfg, &t->link, w->main_kp.pk);
		cfg.idle_ack_ms = 1000;
		cfg.window = 2000;
		ASSERT_EQ(0, gmpc_init(&t->link.c, &cfg, &h, &t->link.ob, err, sizeof(err)))
			TH_LOG("%s", err);
	}
	w->pid = maind_child(&w->cfg, &w->lfd);
}

FIXTURE_TEARDOWN(maind)
{
	struct world *w = self->w;

	if (!self->pg)
		return;
	maind_child_kill(&w->pid, SIGKILL);
	for (int i = 0; i < NTOWNS; i++)
		tcp_town_close(&w->t[i].link);
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
		const struct tcp_town *t = &w->t[i].link;
		char sql[128];
		int64_t upto;

		snprintf(sql, sizeof(sql), "SELECT upto FROM towns WHERE id = %u", t->id);
		upto = pg1(w->primary, sql);
		if (upto < 0 || (int64_t)t->ob.acked > upto) {
			fprintf(stderr, "# town %u: acknowledged %llu, committed %lld\n", t->id,
				(unsigned long long)t->ob.acked, (long long)upto);
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
			maind_child_kill(&w->pid, SIGKILL);
			kills++;
			EXPECT_TRUE(acked_committed(w));
			for (int i = 0; i < NTOWNS; i++)
				for (int m = 0; m < METERS; m += 2)
					for (int h = 0; h < HOURS; h++)
						ASSERT_EQ(0, hour_rec(w, i, m, h, 1, kills, true));
			w->pid = maind_child(&w->cfg, &w->lfd);
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
		 "(%u, 1, 20, 7500000)", w->t[0].link.id);
	ASSERT_EQ(0, pgx(w->primary, sql));
	while (mono_ms() < deadline && (!towns_done(w) || w->t[0].commands < 1 ||
	       pg1(w->primary, "SELECT count(*) FROM commands WHERE status IS NULL") != 0))
		towns_step(w);
	ASSERT_TRUE(towns_done(w));
	EXPECT_TRUE(acked_committed(w));
	/* every (town, seq) once: the received ranges chain 1..upto, upto = records made */
	for (int i = 0; i < NTOWNS; i++) {
		snprintf(sql, sizeof(sql), "SELECT upto FROM towns WHERE id = %u", w->t[i].link.id);
		EXPECT_EQ(w->made[i], pg1(w->primary, sql));
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT first_seq, lag(last_seq) "
			 "OVER (ORDER BY first_seq) AS prev FROM received WHERE town = %u) r WHERE "
			 "first_seq <> COALESCE(prev, 0) + 1", w->t[i].link.id);
		EXPECT_EQ(0, pg1(w->primary, sql));
		snprintf(sql, sizeof(sql), "SELECT sum(last_seq - first_seq + 1) FROM received "
			 "WHERE town = %u", w->t[i].link.id);
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
			 (long long)HOUR0, w->t[i].link.id);
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
		 w->t[0].link.id);
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
