// SPDX-License-Identifier: GPL-2.0
/*
 * Operator-signed commands and the town's reports, end to end on the
 * host (issue 13): the real server loop (townd_run) in a child process
 * with [upstream] to a minimal main server (mainsim.c) that sends given
 * GMP_SIGNED blobs and GMP_TOWN_SUMMARY and stores the town's records,
 * and a simulated meter that verifies signed commands with lib/sign as
 * meterd does and answers GMP_CMD_RESULT.
 *
 *  - meter commands: a disconnect reaches the meter byte for byte and
 *    its result comes up (DELIVERED, then EXECUTED); one the town
 *    altered (a byte flipped in its queue) is refused by the meter
 *    (BAD_SIG) and reported, and counted as a refused command; one not
 *    taken before its expiry is reported EXPIRED and never sent;
 *  - town stop: refused with one signature (NEED_TWO) and with a
 *    replayed id (REPLAY), done with two; a stopped town stores and
 *    acknowledges meter data; the stop survives a restart; start resumes;
 *  - forged frames and unknown meters: GMP_SECURITY with their counts;
 *    a meter's alarm arrives as GMP_METER_ALARM;
 *  - a town summary is stored and shown.
 *
 * Every wait polls with a generous timeout, never a pass/fail on speed.
 */
#include <arpa/inet.h>
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

#include "gmcmd.h"
#include "mainsim.h"
#include "simmeter.h"
#include "simtown.h"
#include "townd_signed.h"

#define TOWN_ID		5
#define METER		1
#define WAIT_MS		15000

struct op {
	uint8_t pk[GMC_PK_LEN], sk[GMC_SK_LEN];
};

FIXTURE(sig) {
	struct sim_town t;
	struct mainsim ms;
	struct op alice, bob;
	struct gmc_keyset ks;
	struct simmeter m;
	struct sim_signed ss;
	int fd;
	struct sim_rx rx;
	int64_t seq;
};

static void write_keys(const char *path, struct op *a, struct op *b)
{
	char ha[2 * GMC_PK_LEN + 1], hb[2 * GMC_PK_LEN + 1];
	FILE *f = fopen(path, "w");

	sodium_bin2hex(ha, sizeof(ha), a->pk, GMC_PK_LEN);
	sodium_bin2hex(hb, sizeof(hb), b->pk, GMC_PK_LEN);
	fprintf(f, "# operators of the test\nalice %s\nbob %s\n", ha, hb);
	fclose(f);
}

FIXTURE_SETUP(sig)
{
	char path[128], err[256];
	struct gmp_keypair kp;

	ASSERT_EQ(0, sodium_init() < 0);
	ASSERT_EQ(0, sim_town_setup(&self->t, "townd-sig"));
	ASSERT_EQ(0, mainsim_setup(&self->ms, self->t.dir, self->t.kp.pk, TOWN_ID, 1000000));
	self->t.cfg.up.enabled = true;
	ASSERT_EQ(0, townd_parse_addr("127.0.0.1:1", &self->t.cfg.up.addr,
				      &self->t.cfg.up.addr_len));
	((struct sockaddr_in *)&self->t.cfg.up.addr)->sin_port = htons(self->ms.port);
	memcpy(self->t.cfg.up.main_pk, self->ms.kp.pk, GMP_KEY_LEN);
	self->t.cfg.up.town_id = TOWN_ID;
	snprintf(self->t.cfg.up.outbox, sizeof(self->t.cfg.up.outbox), "%s/upstream",
		 self->t.dir);
	self->t.cfg.up.interval_s = 1;
	self->t.cfg.up.reconnect_max_s = 1;
	self->t.cfg.stats_interval_s = 1;
	crypto_sign_keypair(self->alice.pk, self->alice.sk);
	crypto_sign_keypair(self->bob.pk, self->bob.sk);
	snprintf(path, sizeof(path), "%s/operators.keys", self->t.dir);
	write_keys(path, &self->alice, &self->bob);
	snprintf(self->t.cfg.cmd.operator_keys, sizeof(self->t.cfg.cmd.operator_keys), "%s", path);
	ASSERT_EQ(0, gmc_keyset_load(&self->ks, path, err, sizeof(err))) TH_LOG("%s", err);
	gmp_keypair_generate(&kp);
	ASSERT_EQ(0, sim_town_add(&self->t, METER, kp.pk));
	ASSERT_EQ(0, simmeter_init(&self->m, METER, &kp, self->t.kp.pk));
	memset(&self->ss, 0, sizeof(self->ss));
	self->ss.keys = &self->ks;
	self->ss.pol.two_above = GMC_TWO_ABOVE;
	self->ss.town = TOWN_ID;
	self->m.sig = &self->ss;
	self->fd = -1;
	sim_town_start(&self->t);
	mainsim_start(&self->ms);
}

FIXTURE_TEARDOWN(sig)
{
	if (self->fd >= 0)
		close(self->fd);
	mainsim_teardown(&self->ms);
	sim_town_teardown(&self->t, getenv("KEEP") != NULL);
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* A command signed by the given operators (NULL ends the list). */
static size_t make_cmd(int action, uint16_t meter, int64_t issued, int64_t expires,
		       const struct op *o1, const struct op *o2, uint8_t *blob, uint64_t *id)
{
	struct gmc_cmd c = { .action = (uint8_t)action, .town = TOWN_ID, .meter = meter,
			     .issued = issued, .expires = expires, .batch = 1 };
	int n;

	randombytes_buf(&c.id, sizeof(c.id));
	c.id = (c.id >> 1) | 1;
	if (action == GMC_TOWN_SUPPLY)
		c.arg = 50000;
	if (gmc_sign(&c, o1->sk) || (o2 && gmc_sign(&c, o2->sk)))
		return 0;
	n = gmc_encode(&c, blob, GMC_LEN_MAX);
	*id = c.id;
	return n > 0 ? (size_t)n : 0;
}

/* Poll a query on mainsim's / the town's database until it gives want. */
static int64_t wait_main(struct mainsim *ms, const char *sql, int64_t want)
{
	int64_t v = -1;

	for (int i = 0; i < WAIT_MS / 50 && (v = mainsim_q1(ms, sql)) != want; i++)
		usleep(50000);
	return v;
}

static int64_t wait_town(struct sim_town *t, const char *sql, int64_t arg, int64_t want)
{
	int64_t v = -1;

	for (int i = 0; i < WAIT_MS / 50 && (v = sim_town_q1(t, sql, arg)) != want; i++)
		usleep(50000);
	return v;
}

static int connect_meter(struct _test_data_sig *self)
{
	struct sim_ack ack;

	if (self->fd >= 0)
		close(self->fd);
	self->fd = sim_connect(self->t.port);
	sim_rx_init(&self->rx);
	return self->fd >= 0 && sim_handshake(&self->m, self->fd, &self->rx, WAIT_MS, &ack) == 1 ?
	       0 : -1;
}

/*
 * One exchange of the meter: its command results (else a reading) in a
 * frame asking for an acknowledgement, then the acknowledgement, whose
 * signed commands it verifies. 0 or -1.
 */
static int meter_round(struct _test_data_sig *self)
{
	uint8_t wire[GM_MAX_WIRE];
	struct gmp_msg g[SIM_SIGNED_MAX];
	struct sim_ack ack;
	size_t n;
	int len;

	self->ss.now = now_s();
	n = simmeter_results(&self->m, g, SIM_SIGNED_MAX);
	if (!n) {
		sim_reading(METER, ++self->seq, &g[0]);
		n = 1;
	}
	len = simmeter_frame(&self->m, g, n, GM_FLAG_ACK_REQ, wire, sizeof(wire));
	if (len < 0 || sim_send_all(self->fd, wire, (size_t)len))
		return -1;
	return sim_wait_ack(&self->m, self->fd, &self->rx, WAIT_MS, &ack) == 1 ? 0 : -1;
}

/* Rounds until the meter has handled n signed commands and sent their results. */
static int meter_until(struct _test_data_sig *self, uint64_t n)
{
	for (int i = 0; i < 100; i++) {
		if (meter_round(self))
			return -1;
		if (self->ss.executed + self->ss.refused >= n && !self->ss.n)
			return 0;
		usleep(50000);
	}
	return -1;
}

static char *q(char *buf, size_t size, const char *fmt, unsigned long long a,
	       unsigned long long b)
{
	snprintf(buf, size, fmt, a, b);
	return buf;
}

TEST_F(sig, meter_commands_unchanged_refused_when_altered_expired_when_late)
{
	uint8_t blob[GMC_LEN_MAX], blob2[GMC_LEN_MAX], blob3[GMC_LEN_MAX];
	uint64_t id, id2, id3;
	int64_t now = now_s();
	size_t len = make_cmd(GMC_DISCONNECT, METER, now - 10, now + 600, &self->alice, NULL,
			      blob, &id);
	char sql[300];
	sqlite3 *db;

	ASSERT_LT(0, len);
	ASSERT_EQ(0, connect_meter(self));
	/* 1. from the main server to the meter, unchanged; the result comes up */
	ASSERT_LT(0, mainsim_queue_signed(&self->ms, blob, len));
	ASSERT_EQ(1, wait_town(&self->t, "SELECT COUNT(*) FROM outgoing WHERE type = 24", 0, 1));
	ASSERT_EQ(0, meter_until(self, 1));
	EXPECT_EQ(1, self->ss.executed);
	ASSERT_EQ(len, self->ss.last_len);
	EXPECT_EQ(0, memcmp(blob, self->ss.last_blob, len));
	EXPECT_EQ(1, wait_main(&self->ms, q(sql, sizeof(sql), "SELECT COUNT(*) FROM reps WHERE "
				"type = 40 AND a = %llu AND b = %llu AND c = 2 AND d = 0", id,
				METER), 1));
	/* DELIVERED before EXECUTED */
	EXPECT_EQ(1, mainsim_q1(&self->ms, q(sql, sizeof(sql), "SELECT (SELECT seq FROM reps "
				"WHERE type = 40 AND a = %llu AND c = 1) < (SELECT seq FROM reps "
				"WHERE type = 40 AND a = %llu AND c = 2)", id, id)));
	EXPECT_EQ(2, sim_town_q1(&self->t, "SELECT state FROM signed_cmds WHERE id = ?",
				 (int64_t)id));

	/*
	 * 2. altered in the town's queue (a signature byte flipped): the meter
	 * refuses it. The meter is away meanwhile, so that the town cannot
	 * push the command before the test alters it.
	 */
	close(self->fd);
	self->fd = -1;
	len = make_cmd(GMC_DISCONNECT, METER, now - 10, now + 600, &self->alice, NULL, blob2,
		       &id2);
	ASSERT_LT(0, mainsim_queue_signed(&self->ms, blob2, len));
	ASSERT_EQ(2, wait_town(&self->t, "SELECT COUNT(*) FROM outgoing WHERE type = 24", 0, 2));
	ASSERT_EQ(SQLITE_OK, sqlite3_open(self->t.cfg.database, &db));
	sqlite3_busy_timeout(db, 5000);
	/* the body's hex ends with the blob: flip a bit of its last byte */
	ASSERT_EQ(SQLITE_OK, sqlite3_exec(db, "UPDATE outgoing SET body = substr(body, 1, "
					  "length(body) - 1) || CASE substr(body, -1) WHEN '0' "
					  "THEN '1' ELSE '0' END WHERE type = 24 AND status IS NULL",
					  NULL, NULL, NULL));
	sqlite3_close(db);
	ASSERT_EQ(0, connect_meter(self));
	ASSERT_EQ(0, meter_until(self, 2));
	EXPECT_EQ(1, self->ss.refused);
	EXPECT_NE(0, memcmp(blob2, self->ss.last_blob, len));	/* what the meter got */
	EXPECT_EQ(1, wait_main(&self->ms, q(sql, sizeof(sql), "SELECT COUNT(*) FROM reps WHERE "
				"type = 40 AND a = %llu AND c = 3 AND d = %llu", id2,
				GMP_CMD_BAD_SIG), 1));
	/* and counted: a refused signed command of meter 1 from 127.0.0.1 */
	EXPECT_EQ(1, wait_main(&self->ms, q(sql, sizeof(sql), "SELECT SUM(e) FROM reps WHERE "
				"type = 42 AND b = %llu AND c = %llu AND d = 4", METER,
				0x7f000001), 1));

	/*
	 * 3. no answer before its expiry (the meter went away): EXPIRED; the
	 * meter, back, refuses it (if it was sent at all), nothing executes
	 */
	close(self->fd);
	self->fd = -1;
	now = now_s();
	len = make_cmd(GMC_RECONNECT, METER, now - 10, now + 2, &self->alice, NULL, blob3, &id3);
	ASSERT_LT(0, mainsim_queue_signed(&self->ms, blob3, len));
	EXPECT_EQ(1, wait_main(&self->ms, q(sql, sizeof(sql), "SELECT COUNT(*) FROM reps WHERE "
				"type = 40 AND a = %llu AND c = 4 AND d = %llu", id3,
				GMP_CMD_EXPIRED), 1));
	EXPECT_EQ(1, mainsim_q1(&self->ms, q(sql, sizeof(sql), "SELECT COUNT(*) FROM reps WHERE "
				"type = 40 AND a = %llu AND c = 1", id3, 0)));
	ASSERT_EQ(0, connect_meter(self));
	ASSERT_EQ(0, meter_round(self));
	ASSERT_EQ(0, meter_round(self));	/* its result, if it got it */
	EXPECT_EQ(GMP_CMD_EXPIRED, wait_town(&self->t, "SELECT status FROM outgoing WHERE "
					     "type = 24 ORDER BY tseq DESC LIMIT 1", 0,
					     GMP_CMD_EXPIRED));
	EXPECT_EQ(1, self->ss.executed);
	EXPECT_EQ(0, mainsim_q1(&self->ms, q(sql, sizeof(sql), "SELECT COUNT(*) FROM reps WHERE "
				"type = 40 AND a = %llu AND c = 2", id3, 0)));
	EXPECT_EQ(1, mainsim_q1(&self->ms, q(sql, sizeof(sql), "SELECT COUNT(*) FROM reps WHERE "
				"type = 40 AND a = %llu AND c = 4", id3, 0)));
}

static int64_t stopped(struct sim_town *t, char *by, size_t bylen)
{
	struct townd_db d;
	char err[256];
	int64_t since = -1;

	if (tdb_open(&d, t->cfg.database, 1, err, sizeof(err)))
		return -1;
	if (townd_town_stopped(&d, &since, by, bylen) < 0)
		since = -1;
	tdb_close(&d);
	return since;
}

TEST_F(sig, town_stop_needs_two_refuses_replay_survives_restart)
{
	uint8_t one[GMC_LEN_MAX], two[GMC_LEN_MAX], start[GMC_LEN_MAX];
	uint64_t id1, id2, id3;
	int64_t now = now_s(), t1, t2, t3;
	size_t l1 = make_cmd(GMC_TOWN_STOP, 0, now - 10, now + 600, &self->alice, NULL, one, &id1);
	size_t l2 = make_cmd(GMC_TOWN_STOP, 0, now - 10, now + 600, &self->alice, &self->bob, two,
			     &id2);
	size_t l3 = make_cmd(GMC_TOWN_START, 0, now - 10, now + 600, &self->bob, NULL, start, &id3);
	char sql[200], by[80];

	ASSERT_LT(0, l1);
	t1 = mainsim_queue_signed(&self->ms, one, l1);
	t2 = mainsim_queue_signed(&self->ms, two, l2);
	/* one signature: refused, the town runs on */
	q(sql, sizeof(sql), "SELECT status FROM cmds WHERE tseq = %llu", (unsigned long long)t1, 0);
	EXPECT_EQ(GMP_CMD_NEED_TWO, wait_main(&self->ms, sql, GMP_CMD_NEED_TWO));
	EXPECT_EQ(1, wait_main(&self->ms, q(sql, sizeof(sql), "SELECT COUNT(*) FROM reps WHERE "
				"type = 40 AND a = %llu AND c = 3 AND d = %llu", id1,
				GMP_CMD_NEED_TWO), 1));
	/* two: stopped */
	q(sql, sizeof(sql), "SELECT status FROM cmds WHERE tseq = %llu", (unsigned long long)t2, 0);
	EXPECT_EQ(GMP_CMD_OK, wait_main(&self->ms, sql, GMP_CMD_OK));
	EXPECT_LT(0, stopped(&self->t, by, sizeof(by)));
	EXPECT_STREQ("alice+bob", by);
	/* a stopped town still stores and acknowledges its meters' data */
	ASSERT_EQ(0, connect_meter(self));
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, meter_round(self));
	EXPECT_EQ(3, wait_town(&self->t, "SELECT COUNT(*) FROM readings WHERE meter = ?", METER,
			       3));
	/* the stop survives a restart */
	EXPECT_EQ(0, sim_town_stop(&self->t, SIGTERM));
	sim_town_start(&self->t);
	EXPECT_LT(0, stopped(&self->t, by, sizeof(by)));
	ASSERT_EQ(0, connect_meter(self));
	ASSERT_EQ(0, meter_round(self));
	/* start (one operator is enough) */
	t3 = mainsim_queue_signed(&self->ms, start, l3);
	q(sql, sizeof(sql), "SELECT status FROM cmds WHERE tseq = %llu", (unsigned long long)t3, 0);
	EXPECT_EQ(GMP_CMD_OK, wait_main(&self->ms, sql, GMP_CMD_OK));
	EXPECT_EQ(0, stopped(&self->t, by, sizeof(by)));
	/* the two-signature stop again, same id: a replay */
	t1 = mainsim_queue_signed(&self->ms, two, l2);
	q(sql, sizeof(sql), "SELECT status FROM cmds WHERE tseq = %llu", (unsigned long long)t1, 0);
	EXPECT_EQ(GMP_CMD_REPLAY, wait_main(&self->ms, sql, GMP_CMD_REPLAY));
	EXPECT_EQ(0, stopped(&self->t, by, sizeof(by)));
	EXPECT_EQ(1, wait_main(&self->ms, q(sql, sizeof(sql), "SELECT COUNT(*) FROM reps WHERE "
				"type = 40 AND a = %llu AND c = 3 AND d = %llu", id2,
				GMP_CMD_REPLAY), 1));
	(void)id3;
}

TEST_F(sig, forged_frames_counted_alarm_forwarded_summary_stored)
{
	struct gmp_msg al = { .type = GMP_ALARM }, sum = { .type = GMP_TOWN_SUMMARY };
	struct gmp_keypair wrong;
	struct simmeter forger, stranger;
	uint8_t wire[GM_MAX_WIRE];
	char sql[300], *text = NULL;
	size_t tl = 0;
	FILE *out;
	struct townd_db d;
	char err[256];
	int fd, len;

	/* HELLOs claiming meter 1 under a wrong key, and from a meter nobody has */
	gmp_keypair_generate(&wrong);
	ASSERT_EQ(0, simmeter_init(&forger, METER, &wrong, self->t.kp.pk));
	ASSERT_EQ(0, simmeter_init(&stranger, 77, &wrong, self->t.kp.pk));
	fd = sim_connect(self->t.port);
	ASSERT_LE(0, fd);
	for (int i = 0; i < 3; i++) {
		len = simmeter_hello(&forger, 0, wire, sizeof(wire));
		ASSERT_EQ(0, sim_send_all(fd, wire, (size_t)len));
	}
	for (int i = 0; i < 2; i++) {
		len = simmeter_hello(&stranger, 0, wire, sizeof(wire));
		ASSERT_EQ(0, sim_send_all(fd, wire, (size_t)len));
	}
	EXPECT_EQ(3, wait_main(&self->ms, "SELECT SUM(e) FROM reps WHERE type = 42 AND b = 1 AND "
			       "c = 2130706433 AND d = 1", 3));
	EXPECT_EQ(2, wait_main(&self->ms, "SELECT SUM(e) FROM reps WHERE type = 42 AND b = 77 AND "
			       "c = 2130706433 AND d = 3", 2));
	close(fd);

	/* an alarm of the meter, as the main server gets it */
	ASSERT_EQ(0, connect_meter(self));
	al.alarm.seq = ++self->seq;
	al.alarm.time = now_s() - 5;
	al.alarm.code = 3;
	al.alarm.active = 1;
	al.alarm.value = -1234;
	len = simmeter_frame(&self->m, &al, 1, GM_FLAG_ACK_REQ, wire, sizeof(wire));
	ASSERT_EQ(0, sim_send_all(self->fd, wire, (size_t)len));
	EXPECT_EQ(1, wait_main(&self->ms, "SELECT COUNT(*) FROM reps WHERE type = 41", 1));
	EXPECT_EQ(1, mainsim_q1(&self->ms, "SELECT COUNT(*) FROM reps WHERE type = 41 AND a = 1 "
				"AND b = 3 AND c = 1 AND d = -1234"));
	EXPECT_EQ(al.alarm.time, mainsim_q1(&self->ms, "SELECT time FROM reps WHERE type = 41"));

	/* the town's summary of a month */
	sum.summary.month = 202602;
	sum.summary.meters = 311;
	sum.summary.import_wh = 123456789;
	sum.summary.export_wh = 2345;
	sum.summary.renew_wh = 777;
	sum.summary.lent_wh = 11;
	sum.summary.borrowed_wh = 22;
	sum.summary.admin_hours = 3;
	sum.summary.alarms = 4;
	sum.summary.estimated_hours = 5;
	sum.summary.billed_minor = 9876543;
	ASSERT_LT(0, mainsim_queue_summary(&self->ms, &sum));
	EXPECT_EQ(sum.summary.import_wh, wait_town(&self->t, "SELECT import_wh FROM town_summaries "
						   "WHERE month = ?", 202602,
						   sum.summary.import_wh));
	EXPECT_EQ(sum.summary.billed_minor, sim_town_q1(&self->t, "SELECT billed_minor FROM "
							"town_summaries WHERE month = ?", 202602));
	ASSERT_EQ(0, tdb_open(&d, self->t.cfg.database, 1, err, sizeof(err)));
	out = open_memstream(&text, &tl);
	EXPECT_EQ(0, townd_summary_print(&d, out, 202602));
	EXPECT_EQ(1, townd_summary_print(&d, out, 202601));	/* none of that month */
	fclose(out);
	tdb_close(&d);
	q(sql, sizeof(sql), "billed            %llu minor units", 9876543ull, 0);
	EXPECT_NE(NULL, strstr(text, sql)) TH_LOG("%s", text);
	q(sql, sizeof(sql), "import            %llu Wh", 123456789ull, 0);
	EXPECT_NE(NULL, strstr(text, sql));
	EXPECT_NE(NULL, strstr(text, "2026-02"));
	free(text);
}

TEST_HARNESS_MAIN
