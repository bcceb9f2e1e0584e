// SPDX-License-Identifier: GPL-2.0
/*
 * townd and the main server, end to end on the host: the real server loop
 * (townd_run) in a child process with [upstream] configured, simulated
 * meters reporting hourly billing readings over TCP, and a minimal main
 * server (mainsim.c, gmproto's primitives) that stores what it receives
 * exactly once by record seq, as maind does.
 *
 *  1. the main server does not answer: townd keeps serving (every meter
 *     acknowledged), enters administrative mode after admin_after, keeps
 *     the past month (nothing acknowledged it);
 *  2. townd killed (SIGKILL) with a backlog and restarted: still
 *     administrative; a late reading revises a sent hour;
 *  3. the main server comes: the backlog arrives complete, each
 *     (meter, hour, period) with the totals the meters' readings make,
 *     no hour twice at the same revision; normal mode again; GMP_SUPPLY
 *     sets the town's capacity; the past month is deleted only then;
 *  4. steady state: hour by hour, the bytes sent per meter per day.
 *
 * Short intervals (interval 1 s, admin_after 2 s); every wait is a poll
 * with a generous timeout, never a pass/fail on speed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "mainsim.h"
#include "simmeter.h"
#include "simtown.h"
#include "townd_hours.h"
#include "townd_updb.h"

#define METERS		24
#define TOWN_ID		5
#define SUPPLY_W	777000
#define HALF_METER	3	/* reports in half hours; one half comes late */
#define TARIFF_METER	1	/* has a two-slot tariff: periods 0 and 1 */
#define HOURS_A		20	/* hours sent while the main server is away */
#define HOURS_B		10	/* after townd's restart */
#define HOURS_C		4	/* one by one with the main server there */
#define LATE_HOUR	2	/* the hour whose second half meter 3 sends late */

struct meter {
	struct simmeter m;
	int fd;
	struct sim_rx rx;
	int64_t seq;
};

/* The hour k of the test: two days before this month began, in the past month. */
static int64_t hour_k(int64_t base, int k)
{
	return base + (int64_t)k * 3600;
}

/* Reading of meter id for [start, start + len): values a function of both. */
static void reading(uint16_t id, int64_t seq, int64_t start, int64_t len, struct gmp_msg *r)
{
	memset(r, 0, sizeof(*r));
	r->type = GMP_READING;
	r->reading.seq = seq;
	r->reading.start = start;
	r->reading.interval_s = len;
	r->reading.import_mwh = id * 1000 + start / 60 % 997 + len / 60;
	r->reading.export_mwh = (start / 3600 + id) % 5 * 10;
	r->reading.renew_mwh = id % 3 * 7;
	r->reading.flags = (start / 3600 + id) % 11 == 0 ? GMP_RF_GAP : 0;
}

/* The tariff slot of meter id at t, by definition (UTC town; 12:00 starts slot 1). */
static int period_of(uint16_t id, int64_t t)
{
	return id == TARIFF_METER && t % 86400 >= 12 * 3600 ? 1 : 0;
}

/* The readings meter id sends for hour k (half hours for HALF_METER; the late one not). */
static int readings_of(uint16_t id, int64_t base, int k, bool late, struct gmp_msg *out,
		       int64_t *seq)
{
	int64_t h = hour_k(base, k);
	int n = 0;

	if (id != HALF_METER) {
		if (!late)
			reading(id, ++*seq, h, 3600, &out[n++]);
		return n;
	}
	if (!late)
		reading(id, ++*seq, h, 1800, &out[n++]);
	if (late == (k == LATE_HOUR))
		reading(id, ++*seq, h + 1800, 1800, &out[n++]);
	return n;
}

static int connect_meter(struct sim_town *t, struct meter *mt)
{
	struct sim_ack ack;

	if (mt->fd >= 0)
		close(mt->fd);
	mt->fd = sim_connect(t->port);
	sim_rx_init(&mt->rx);
	return mt->fd >= 0 && sim_handshake(&mt->m, mt->fd, &mt->rx, 10000, &ack) == 1 ? 0 : -1;
}

/* Send msgs in one frame and wait for the town's acknowledgement of the last one. */
static int send_acked(struct meter *mt, const struct gmp_msg *msgs, int n)
{
	uint8_t wire[GM_MAX_WIRE];
	struct sim_ack ack;
	int len;

	if (!n)
		return 0;
	len = simmeter_frame(&mt->m, msgs, (size_t)n, GM_FLAG_ACK_REQ, wire, sizeof(wire));
	if (len < 0 || sim_send_all(mt->fd, wire, (size_t)len))
		return -1;
	do {
		if (sim_wait_ack(&mt->m, mt->fd, &mt->rx, 10000, &ack) != 1)
			return -1;
	} while (ack.upto < msgs[n - 1].reading.seq);
	return 0;
}

/* Every meter reports hours [k0, k1) (acknowledged each). */
static int report(struct meter *mts, int64_t base, int k0, int k1)
{
	for (int k = k0; k < k1; k++)
		for (uint16_t id = 1; id <= METERS; id++) {
			struct gmp_msg msgs[4];
			int n = readings_of(id, base, k, false, msgs, &mts[id].seq);

			if (send_acked(&mts[id], msgs, n))
				return -1;
		}
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll until q(ctx) == want or timeout; returns the last value. */
#define WAIT_FOR(expr, want, timeout_ms) ({					\
	int64_t _end = mono_ms() + (timeout_ms), _v;				\
	while ((_v = (expr)) != (want) && mono_ms() < _end)			\
		usleep(50000);							\
	_v; })

/* What the main server must hold for (meter, hour, period): sums of the readings. */
struct expect {
	int64_t imp, exp, ren, n, flags, covered;
};

static void add_expect(struct expect *e, const struct gmp_msg *r)
{
	e->imp += r->reading.import_mwh;
	e->exp += r->reading.export_mwh;
	e->ren += r->reading.renew_mwh;
	e->n++;
	e->flags |= r->reading.flags;
	e->covered += r->reading.interval_s;
}

FIXTURE(up) {
	struct sim_town t;
	struct mainsim ms;
	struct meter mts[METERS + 1];
	int64_t base, month;
};

FIXTURE_SETUP(up)
{
	ASSERT_LE(0, sodium_init());
	ASSERT_EQ(0, sim_town_setup(&self->t, "townd-up"));
	ASSERT_EQ(0, mainsim_setup(&self->ms, self->t.dir, self->t.kp.pk, TOWN_ID, SUPPLY_W));
	self->t.cfg.up.enabled = true;
	ASSERT_EQ(0, townd_parse_addr("127.0.0.1:1", &self->t.cfg.up.addr,
				      &self->t.cfg.up.addr_len));
	((struct sockaddr_in *)&self->t.cfg.up.addr)->sin_port = htons(self->ms.port);
	memcpy(self->t.cfg.up.main_pk, self->ms.kp.pk, GMP_KEY_LEN);
	self->t.cfg.up.town_id = TOWN_ID;
	snprintf(self->t.cfg.up.outbox, sizeof(self->t.cfg.up.outbox), "%s/upstream",
		 self->t.dir);
	self->t.cfg.up.interval_s = 1;
	self->t.cfg.up.admin_after_s = 2;
	self->t.cfg.up.reconnect_max_s = 1;
	self->t.cfg.town.hour_grace_s = 0;
	self->t.cfg.town.retention_chunk = 50;
	self->t.cfg.stats_interval_s = 1;
	/* the past month, whatever today is: two days before this month began */
	self->month = tup_month_start((int64_t)time(NULL));
	self->base = self->month - 2 * 86400;
	for (uint16_t id = 1; id <= METERS; id++) {
		struct gmp_keypair kp;

		gmp_keypair_generate(&kp);
		ASSERT_EQ(0, sim_town_add(&self->t, id, kp.pk));
		ASSERT_EQ(0, simmeter_init(&self->mts[id].m, id, &kp, self->t.kp.pk));
		self->mts[id].fd = -1;
		self->mts[id].seq = 0;
	}
	{	/* meter 1's tariff: 00:00 slot 0, 12:00 slot 1, in force all along */
		struct gmp_msg tm = { .type = GMP_TARIFF };
		struct townd_db d;
		char err[256];

		tm.tariff.tseq = 1;
		tm.tariff.effective = self->base - 86400;
		tm.tariff.n = 2;
		tm.tariff.p[0].start_min = 0;
		tm.tariff.p[0].import_price = 21000;
		tm.tariff.p[0].export_price = 5000;
		tm.tariff.p[1].start_min = 720;
		tm.tariff.p[1].import_price = 34000;
		tm.tariff.p[1].export_price = 5000;
		ASSERT_EQ(0, tdb_open(&d, self->t.cfg.database, 1, err, sizeof(err)));
		ASSERT_EQ(0, tdb_queue(&d, TARIFF_METER, &tm, 1, err, sizeof(err))) TH_LOG("%s", err);
		tdb_close(&d);
	}
}

FIXTURE_TEARDOWN(up)
{
	for (int id = 1; id <= METERS; id++)
		if (self->mts[id].fd >= 0)
			close(self->mts[id].fd);
	mainsim_teardown(&self->ms);
	sim_town_teardown(&self->t, getenv("GM_KEEP") != NULL);
}

static int64_t town_meta(struct sim_town *t, const char *name)
{
	char sql[120];

	snprintf(sql, sizeof(sql), "SELECT COALESCE((SELECT value FROM meta WHERE name = '%s'), 0)",
		 name);
	return sim_town_q1(t, sql, 0);
}

TEST_F(up, backlog_through_admin_mode_and_a_restart_arrives_once)
{
	struct expect (*want)[2];
	int hours = HOURS_A + HOURS_B + HOURS_C, rows = 0;
	int64_t since, late_seq = 0, b0, b1, r0;
	char sql[300];

	want = calloc((size_t)(METERS + 1) * (size_t)hours, sizeof(*want));
	ASSERT_NE(NULL, want);
	/* ---- 1: the main server does not answer (its port accepts, nobody serves) ---- */
	sim_town_start(&self->t);
	for (int id = 1; id <= METERS; id++)
		ASSERT_EQ(0, connect_meter(&self->t, &self->mts[id]));
	ASSERT_EQ(0, report(self->mts, self->base, 0, HOURS_A));	/* every one acknowledged */
	since = WAIT_FOR(town_meta(&self->t, "admin_since") > 0, 1, 15000);
	ASSERT_EQ(1, since) TH_LOG("no administrative mode");
	since = town_meta(&self->t, "admin_since");
	EXPECT_EQ(1, sim_town_q1(&self->t, "SELECT COUNT(*) FROM journal WHERE what LIKE "
				 "'administrative mode: entered%'", 0));
	/* hours of the whole past month are built and wait in the outbox, nothing deleted */
	ASSERT_EQ(0, WAIT_FOR(sim_town_q1(&self->t, "SELECT COUNT(*) FROM hours WHERE "
					  "sent_rev < rev", 0), 0, 15000));
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM readings WHERE booked < %lld",
		 (long long)self->month);
	r0 = sim_town_q1(&self->t, sql, 0);
	EXPECT_EQ(HOURS_A * (METERS + 1) - 1, r0);	/* meter 3 sends halves, one late */
	EXPECT_EQ(0, town_meta(&self->t, "kept_from"));
	EXPECT_LT(0, sim_town_stat(&self->t, "upstream_backlog"));

	/* ---- 2: townd killed with that backlog, restarted: still administrative ---- */
	EXPECT_EQ(128 + SIGKILL, sim_town_stop(&self->t, SIGKILL));
	sim_town_start(&self->t);
	for (int id = 1; id <= METERS; id++)
		ASSERT_EQ(0, connect_meter(&self->t, &self->mts[id]));
	ASSERT_EQ(0, report(self->mts, self->base, HOURS_A, HOURS_A + HOURS_B));
	{	/* meter 3's late half of an hour that went into the outbox already */
		struct gmp_msg late[2];
		int n = readings_of(HALF_METER, self->base, LATE_HOUR, true, late,
				    &self->mts[HALF_METER].seq);

		ASSERT_EQ(1, n);
		late_seq = late[0].reading.seq;
		ASSERT_EQ(0, send_acked(&self->mts[HALF_METER], late, n));
	}
	snprintf(sql, sizeof(sql), "SELECT MAX(rev) FROM hours WHERE meter = %d AND hour = %lld",
		 HALF_METER, (long long)hour_k(self->base, LATE_HOUR));
	EXPECT_EQ(1, WAIT_FOR(sim_town_q1(&self->t, sql, 0), 1, 15000));
	EXPECT_EQ(since, town_meta(&self->t, "admin_since"));
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM readings WHERE booked < %lld",
		 (long long)self->month);
	EXPECT_EQ(r0 + HOURS_B * (METERS + 1) + 1, sim_town_q1(&self->t, sql, 0));

	/* ---- 3: the main server comes: the backlog, complete, once ---- */
	mainsim_start(&self->ms);
	ASSERT_EQ(0, WAIT_FOR(town_meta(&self->t, "admin_since"), 0, 20000))
		TH_LOG("still administrative");
	EXPECT_EQ(1, sim_town_q1(&self->t, "SELECT COUNT(*) FROM journal WHERE what LIKE "
				 "'administrative mode: left%'", 0));
	EXPECT_LE(1, sim_town_stat(&self->t, "admin_entered"));
	/* the supply command */
	EXPECT_EQ(SUPPLY_W, WAIT_FOR(town_meta(&self->t, "supply_w"), SUPPLY_W, 10000));
	EXPECT_EQ(GMP_CMD_OK, WAIT_FOR(mainsim_q1(&self->ms, "SELECT status FROM cmds WHERE "
						  "tseq = 1"), GMP_CMD_OK, 10000));
	/* the past month goes only now, acknowledged */
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM readings WHERE booked < %lld",
		 (long long)self->month);
	EXPECT_EQ(0, WAIT_FOR(sim_town_q1(&self->t, sql, 0), 0, 20000));
	EXPECT_EQ(self->month, WAIT_FOR(town_meta(&self->t, "kept_from"), self->month, 10000));
	EXPECT_EQ(0, WAIT_FOR(sim_town_q1(&self->t, "SELECT COUNT(*) FROM hours", 0), 0, 10000));
	EXPECT_LE(1, WAIT_FOR(sim_town_stat(&self->t, "months_deleted") >= 1, 1, 5000));

	/* ---- 4: hour by hour with the main server there; the bytes it takes ---- */
	b0 = mainsim_q1(&self->ms, "SELECT value FROM counters WHERE name = 'bytes_in'");
	/* the deleted month's readings arriving now are booked at their arrival: this
	 * phase's hours are the current month's (closed ones: the current hour's are not) */
	{
		int64_t now = (int64_t)time(NULL);
		int64_t cbase = th_hour_of(now) - HOURS_C * 3600 - 3600;

		if (cbase < self->month)
			cbase = self->month;	/* early in a month: fewer closed hours */
		for (int k = 0; k < HOURS_C && hour_k(cbase, k) + 3600 <= now; k++) {
			char q[200];

			ASSERT_EQ(0, report(self->mts, cbase, k, k + 1));
			snprintf(q, sizeof(q), "SELECT COUNT(*) FROM recs WHERE type = 9 AND "
				 "hour = %lld", (long long)hour_k(cbase, k));
			ASSERT_EQ(1, WAIT_FOR(mainsim_q1(&self->ms, q), 1, 15000));
			for (uint16_t id = 1; id <= METERS; id++) {
				struct gmp_msg r[2];
				int64_t s = 0;
				int n = readings_of(id, cbase, k, false, r, &s);

				for (int i = 0; i < n; i++)
					add_expect(&want[(HOURS_A + HOURS_B + k) * (METERS + 1) +
							 id][period_of(id, r[i].reading.start)], &r[i]);
			}
			rows++;
		}
		b1 = mainsim_q1(&self->ms, "SELECT value FROM counters WHERE name = 'bytes_in'");
		if (rows)
			TH_LOG("town -> main: %lld bytes for %d hours of %d meters: %lld bytes per "
			       "meter per day (hourly billing data, 1 tariff period per hour but "
			       "meter %d's 2)", (long long)(b1 - b0), rows, METERS,
			       (long long)((b1 - b0) * 24 / rows / METERS), TARIFF_METER);
		/* the expectation of the past month's hours */
		for (int k = 0; k < HOURS_A + HOURS_B; k++)
			for (uint16_t id = 1; id <= METERS; id++) {
				struct gmp_msg r[2];
				int64_t s = 0;
				int n = readings_of(id, self->base, k, false, r, &s);

				if (id == HALF_METER && k == LATE_HOUR)
					n += readings_of(id, self->base, k, true, r + n, &s);
				for (int i = 0; i < n; i++)
					add_expect(&want[k * (METERS + 1) + id]
							[period_of(id, r[i].reading.start)], &r[i]);
			}
		/* every (meter, hour, period) at the main server: its last revision holds the
		 * sums of the readings, and no revision came twice */
		EXPECT_EQ(0, mainsim_q1(&self->ms, "SELECT COUNT(*) FROM (SELECT 1 FROM recs GROUP "
					"BY type, meter, hour, period, rev HAVING COUNT(*) > 1)"));
		for (int k = 0; k < HOURS_A + HOURS_B + rows; k++) {
			int64_t h = k < HOURS_A + HOURS_B ? hour_k(self->base, k) :
				    hour_k(cbase, k - HOURS_A - HOURS_B);
			int64_t t_imp = 0, t_meters = 0;

			for (uint16_t id = 1; id <= METERS; id++) {
				int64_t cov = want[k * (METERS + 1) + id][0].covered +
					      want[k * (METERS + 1) + id][1].covered;

				for (int p = 0; p < 2; p++) {
					const struct expect *e = &want[k * (METERS + 1) + id][p];
					char q[300];

					if (!e->n)
						continue;
					snprintf(q, sizeof(q), "SELECT import_mwh * 1000000000000 + "
						 "export_mwh * 1000000 + readings * 10000 + (flags & ~512) FROM "
						 "recs WHERE type = 8 AND meter = %u AND hour = %lld AND "
						 "period = %d ORDER BY rev DESC LIMIT 1", id,
						 (long long)h, p);
					ASSERT_EQ(e->imp * 1000000000000LL + e->exp * 1000000 +
						  e->n * 10000 + th_hour_flags(e->flags, cov, false),
						  mainsim_q1(&self->ms, q))
						TH_LOG("meter %u hour %d period %d", id, k, p);
					t_imp += e->imp;
				}
				t_meters++;
			}
			snprintf(sql, sizeof(sql), "SELECT import_mwh * 1000 + readings FROM recs "
				 "WHERE type = 9 AND hour = %lld ORDER BY rev DESC LIMIT 1",
				 (long long)h);
			ASSERT_EQ(t_imp * 1000 + t_meters, mainsim_q1(&self->ms, sql))
				TH_LOG("town hour %d", k);
		}
	}
	/* the late half: revision 1 for meter 3's hour and the town's, sent in admin mode */
	snprintf(sql, sizeof(sql), "SELECT MAX(rev) FROM recs WHERE type = 8 AND meter = %d AND "
		 "hour = %lld", HALF_METER, (long long)hour_k(self->base, LATE_HOUR));
	EXPECT_EQ(1, mainsim_q1(&self->ms, sql));
	/* revision 0 went before administrative mode, incomplete; revision 1 in it, complete */
	snprintf(sql, sizeof(sql), "SELECT flags FROM recs WHERE type = 8 AND meter = %d AND "
		 "hour = %lld AND rev = 0", HALF_METER, (long long)hour_k(self->base, LATE_HOUR));
	EXPECT_EQ(GMP_HF_INCOMPLETE, mainsim_q1(&self->ms, sql) &
		  (GMP_HF_INCOMPLETE | GMP_HF_ADMIN));
	snprintf(sql, sizeof(sql), "SELECT flags FROM recs WHERE type = 8 AND meter = %d AND "
		 "hour = %lld AND rev = 1", HALF_METER, (long long)hour_k(self->base, LATE_HOUR));
	EXPECT_EQ(GMP_HF_ADMIN, mainsim_q1(&self->ms, sql) & (GMP_HF_INCOMPLETE | GMP_HF_ADMIN));
	EXPECT_LT(0, late_seq);
	TH_LOG("%lld records at the main server (%lld resent duplicates dropped by seq), "
	       "%lld handshakes", (long long)mainsim_q1(&self->ms, "SELECT COUNT(*) FROM recs"),
	       (long long)mainsim_q1(&self->ms, "SELECT COALESCE((SELECT value FROM counters "
				     "WHERE name = 'dup_records'), 0)"),
	       (long long)mainsim_q1(&self->ms, "SELECT value FROM counters WHERE name = "
				     "'hellos'"));
	free(want);
}

TEST_HARNESS_MAIN
