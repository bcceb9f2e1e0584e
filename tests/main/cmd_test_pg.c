// SPDX-License-Identifier: GPL-2.0
/*
 * Signed commands at the head end (Documentation/commands.md) against a
 * real PostgreSQL 15 (scripts/pg-cluster.sh), maind (maind_run) in a child
 * process, a town as a real gmpc client over TCP, mainctl's own command
 * handlers (mctl_cmd, what the mainctl program runs) with operators' key
 * files made by `mainctl op-keygen`.
 *
 * end_to_end: a disconnect signed by one operator goes from mainctl
 * through maind to the town as GMP_SIGNED with its bytes unchanged (the
 * town verifies them with gmc_verify against the key set `mainctl
 * op-keyset` printed, as a meter does); the town's reports move it to
 * executed; a town stop waits for a second operator, then runs at the
 * town. The audit log holds every step and verifies.
 *
 * policy: a mass disconnect (batch above two_above) is not queued with one
 * signature, its issuer cannot approve it, a second operator can; the
 * disconnects over the hourly limit are held (and an alert raised) and go
 * when the hour allows; a revoked operator cannot sign and what they
 * signed before is refused; a forged row is refused with an alert; the
 * audit log verifies, then a row the superuser altered (trigger disabled)
 * makes `audit verify` fail naming that row.
 *
 * Skipped (with a message) only when PostgreSQL 15's binaries are absent.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "commands/cmd.h"
#include "gmcmd.h"
#include "mainctl_parts.h"
#include "maind_pg.h"
#include "maind_towns.h"
#include "pg_scratch.h"

#define TOWN		11
#define TOWN2		12
#define LIMIT		15	/* disconnects per hour in this test */
#define SIGNED_MAX	8

struct town {
	struct tcp_town link;		/* first: the gmpc hooks' ctx is the town */
	struct gmc_keyset ks;		/* what `mainctl op-keyset` printed */
	int n_signed;
	uint8_t blob[SIGNED_MAX][GMP_BLOB_MAX];
	size_t len[SIGNED_MAX];
	int verdict[SIGNED_MAX];	/* gmc_verify() */
	struct gmc_cmd cmd[SIGNED_MAX];
};

struct world {
	char dir[64], shm[64], pgdir[128], primary[256];
	struct maind_config cfg;
	struct gmp_keypair main_kp;
	int lfd;
	uint16_t port;
	pid_t pid;
	struct town t;
	char key[3][128];		/* alice, bob, carol's secret key files */
};

static const char *const names[3] = { "alice", "bob", "carol" };

/*
 * mainctl, as its main() hands a command to the commands part: the words,
 * its exit status, what it printed on stdout into out.
 */
static int mainctl(struct world *w, char *out, size_t outlen, const char *cmd, ...)
{
	const struct mainctl_ctx x = { w->primary, w->primary, &w->cfg };
	char *args[32], path[128];
	int argc = 0, rc, saved, fd;
	va_list ap;
	const char *a;

	va_start(ap, cmd);
	while ((a = va_arg(ap, const char *)) && argc < 31)
		args[argc++] = (char *)a;
	va_end(ap);
	args[argc] = NULL;
	snprintf(path, sizeof(path), "%s/stdout", w->dir);
	fflush(stdout);
	saved = dup(1);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	dup2(fd, 1);
	close(fd);
	rc = mctl_cmd(&x, cmd, argc, args);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	if (out) {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(out, 1, outlen - 1, f) : 0;

		out[n] = '\0';
		if (f)
			fclose(f);
	}
	return rc;
}

/* ---- the town: gmpc over TCP ------------------------------------------------------------ */

/* The town takes a signed command: keeps its bytes, verifies them as its
 * meter (or, for its own actions, itself) will. */
static int town_command(void *ctx, const struct gmp_msg *m)
{
	struct town *t = ctx;
	struct gmc_policy pol = { GMC_TWO_ABOVE };
	int i = t->n_signed;

	if (m->type != GMP_SIGNED || i == SIGNED_MAX)
		return GMP_CMD_UNSUPPORTED;
	t->len[i] = (size_t)m->signed_cmd.len;
	memcpy(t->blob[i], m->signed_cmd.blob, t->len[i]);
	if (gmc_decode(t->blob[i], t->len[i], &t->cmd[i]))
		t->verdict[i] = GMP_CMD_INVALID;
	else
		t->verdict[i] = gmc_verify(&t->cmd[i], &t->ks, &pol, t->link.id, t->cmd[i].meter,
					   real_ms() / 1000);
	t->n_signed++;
	return t->verdict[i] ? t->verdict[i] : GMP_CMD_OK;
}

static void town_step(struct world *w)
{
	struct tcp_town *t = &w->t.link;

	tcp_towns_step(&t, 1, w->port);
}

/* Run the town until sql gives want (or 10 s). */
static int64_t town_until(struct world *w, const char *sql, int64_t want)
{
	int64_t deadline = mono_ms() + 10000, v;

	while ((v = pg1(w->primary, sql)) != want && mono_ms() < deadline)
		for (int i = 0; i < 5; i++)
			town_step(w);
	return v;
}

static void town_report(struct world *w, uint64_t id, int meter, int state, int status)
{
	struct gmp_msg g = { .type = GMP_CMD_REPORT };

	g.cmd_report.time = real_ms() / 1000;
	g.cmd_report.cmd_id = (int64_t)id;
	g.cmd_report.meter = meter;
	g.cmd_report.state = state;
	g.cmd_report.status = status;
	gmpc_record(&w->t.link.c, &g);
}

FIXTURE(cmd) {
	struct world *w;
	bool pg;
};

FIXTURE_SETUP(cmd)
{
	struct world *w;
	char err[768], sql[512], hex[65], out[4096];
	struct town *t;

	self->pg = pg_available();
	if (!self->pg)
		return;
	ASSERT_LE(0, sodium_init());
	w = self->w = calloc(1, sizeof(*w));
	ASSERT_NE(NULL, w);
	t = &w->t;
	ASSERT_EQ(0, scratch_dir(w->dir, sizeof(w->dir), "cmd-test"));
	scratch_shm(w->shm, sizeof(w->shm), "cmd-test", w->dir);
	ASSERT_EQ(0, pg_cluster_start(w->dir, w->pgdir, sizeof(w->pgdir), w->primary,
				      sizeof(w->primary)));
	maind_config_defaults(&w->cfg);
	w->cfg.cmd_disconnects_hour = LIMIT;
	snprintf(w->cfg.key_file, sizeof(w->cfg.key_file), "%s/maind.key", w->dir);
	snprintf(w->cfg.conninfo, sizeof(w->cfg.conninfo), "%s", w->primary);
	ASSERT_EQ(0, maind_key_create(w->cfg.key_file, &w->main_kp, err, sizeof(err)))
		TH_LOG("%s", err);
	ASSERT_EQ(0, loopback_listen(&w->lfd, &w->port));
	ASSERT_EQ(0, pg_schema(w->primary, err, sizeof(err))) TH_LOG("%s", err);
	/* the operators: keys made on "their machines", registered at the head end */
	for (int i = 0; i < 3; i++) {
		char name[GMC_NAME_MAX], email[64];
		uint8_t sk[GMC_SK_LEN];

		snprintf(w->key[i], sizeof(w->key[i]), "%s/%s.key", w->dir, names[i]);
		ASSERT_EQ(0, mainctl(w, out, sizeof(out), "op-keygen", names[i], w->key[i], NULL));
		ASSERT_EQ(0, gmc_secret_load(w->key[i], name, sk, err, sizeof(err))) TH_LOG("%s", err);
		ASSERT_STREQ(names[i], name);
		sodium_bin2hex(hex, sizeof(hex), sk + 32, GMC_PK_LEN);
		sodium_memzero(sk, sizeof(sk));
		snprintf(sql, sizeof(sql), "%s %s\n", names[i], hex);
		ASSERT_STREQ(sql, out);		/* the key set line it printed */
		/* alerts reach operators with a contact (an e-mail here) */
		snprintf(email, sizeof(email), "%s@utility.example", names[i]);
		ASSERT_EQ(0, mainctl(w, NULL, 0, "op-add", names[i], hex, email, NULL));
	}
	/* the key set meters and towns are given at enrolment */
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "op-keyset", NULL));
	ASSERT_EQ(0, gmc_keyset_parse(&t->ks, out, "op-keyset", err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(3, (int)t->ks.n);
	/* the towns */
	t->link.id = TOWN;
	t->link.fd = -1;
	gmp_keypair_generate(&t->link.kp);
	gmp_hex_encode(t->link.kp.pk, GMP_KEY_LEN, hex);
	snprintf(sql, sizeof(sql), "INSERT INTO towns (id, name, pk) VALUES (%u, 'town', "
		 "decode('%s', 'hex')), (%u, 'other', decode(repeat('ab', 32), 'hex'))", TOWN,
		 hex, TOWN2);
	ASSERT_EQ(0, pgx(w->primary, sql));
	{
		struct gmpc_config cfg;
		struct gmpc_hooks h = { .ctx = t, .send = tcp_town_send, .command = town_command };
		char obdir[128];

		snprintf(obdir, sizeof(obdir), "%s/outbox", w->shm);
		ASSERT_EQ(0, outbox_open(&t->link.ob, obdir, 1 << 22, err, sizeof(err)))
			TH_LOG("%s", err);
		tcp_town_config(&cfg, &t->link, w->main_kp.pk);
		cfg.idle_ack_ms = 300;
		ASSERT_EQ(0, gmpc_init(&t->link.c, &cfg, &h, &t->link.ob, err, sizeof(err)))
			TH_LOG("%s", err);
	}
	w->pid = maind_child(&w->cfg, &w->lfd);
}

FIXTURE_TEARDOWN(cmd)
{
	struct world *w = self->w;

	if (!self->pg)
		return;
	maind_child_kill(&w->pid, SIGKILL);
	tcp_town_close(&w->t.link);
	close(w->lfd);
	pg_cluster_stop(w->pgdir);
	scratch_remove(w->dir);
	scratch_remove(w->shm);
	free(w);
}

static int64_t signed_rows(struct world *w)
{
	return pg1(w->primary, "SELECT count(*) FROM commands WHERE type = 24");
}

static int64_t last_op(struct world *w)
{
	return pg1(w->primary, "SELECT max(op) FROM signed_commands");
}

static int64_t count(struct world *w, const char *fmt, int64_t a)
{
	char sql[512];

	snprintf(sql, sizeof(sql), fmt, (long long)a);
	return pg1(w->primary, sql);
}

static void end_to_end(struct __test_metadata *_metadata, struct world *w)
{
	struct town *t = &w->t;
	char out[8192], sql[256], dbhex[2 * GMP_BLOB_MAX + 1], ophex[24], idbuf[24];
	uint64_t id;
	int64_t op;

	/* one disconnect, one operator: the policy lets it go at once */
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "issue", "disconnect", "11:5", "--key",
			     w->key[0], NULL));
	TH_LOG("%s", out);
	op = last_op(w);
	EXPECT_EQ(1, count(w, "SELECT count(*) FROM signed_commands WHERE op = %lld AND state IN "
			   "('queued', 'sent') AND town_tseq IS NOT NULL", op));	/* maind is quick */
	ASSERT_EQ(0, pgs(w->primary, "SELECT id FROM signed_commands", idbuf, sizeof(idbuf)));
	id = strtoull(idbuf, NULL, 10);
	ASSERT_EQ(0, pgs(w->primary, "SELECT encode(blob, 'hex') FROM signed_commands", dbhex,
			 sizeof(dbhex)));
	/* maind pushes it; the town takes it: sent, then accepted */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM signed_commands WHERE state = 'sent' AND "
		 "status_text = 'accepted by the town'");
	EXPECT_EQ(1, town_until(w, sql, 1));
	ASSERT_EQ(1, t->n_signed);
	/* the bytes the operator signed, unchanged, and they verify as at the meter */
	{
		char hex[2 * GMP_BLOB_MAX + 1];

		sodium_bin2hex(hex, sizeof(hex), t->blob[0], t->len[0]);
		EXPECT_STREQ(dbhex, hex);
	}
	EXPECT_EQ(0, t->verdict[0]);
	EXPECT_EQ(id, t->cmd[0].id);
	EXPECT_EQ(GMC_DISCONNECT, t->cmd[0].action);
	EXPECT_EQ(5, t->cmd[0].meter);
	EXPECT_EQ(1, (int)t->cmd[0].nsig);
	/* ... and verify at meter 5 only */
	{
		struct gmc_policy pol = { GMC_TWO_ABOVE };

		EXPECT_EQ(GMP_CMD_WRONG_TARGET, gmc_verify(&t->cmd[0], &t->ks, &pol, TOWN, 6,
							   real_ms() / 1000));
	}
	/* the town's reports: delivered to the meter, executed there */
	town_report(w, id, 5, GMP_CS_DELIVERED, GMP_CMD_OK);
	EXPECT_EQ(1, town_until(w, "SELECT count(*) FROM signed_commands WHERE state = 'delivered'",
				1));
	town_report(w, id, 5, GMP_CS_EXECUTED, GMP_CMD_OK);
	EXPECT_EQ(1, town_until(w, "SELECT count(*) FROM signed_commands WHERE state = 'executed'",
				1));
	/* a late DELIVERED does not move it back */
	town_report(w, id, 5, GMP_CS_DELIVERED, GMP_CMD_OK);
	EXPECT_EQ(2, town_until(w, "SELECT count(*) FROM audit_log WHERE what LIKE 'report%' AND "
				"detail LIKE '%delivered%'", 2));
	EXPECT_EQ(1, pg1(w->primary, "SELECT count(*) FROM signed_commands WHERE state = "
			 "'executed'"));
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "list", NULL));
	TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "executed"));
	/* a town stop always needs two operators */
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "issue", "town-stop", "11", "--key",
			     w->key[1], "--expires", "10m", NULL));
	op = last_op(w);
	EXPECT_EQ(1, count(w, "SELECT count(*) FROM signed_commands WHERE op = %lld AND state = "
			   "'awaiting-approval' AND reason LIKE 'needs a second operator%%'", op));
	EXPECT_EQ(1, pg1(w->primary, "SELECT count(*) FROM commands WHERE type = 24"));
	snprintf(ophex, sizeof(ophex), "%lld", (long long)op);
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "approve", ophex, "--key", w->key[2],
			     NULL));
	TH_LOG("%s", out);
	EXPECT_EQ(1, town_until(w, "SELECT count(*) FROM signed_commands WHERE action = "
				"'town-stop' AND state = 'executed'", 1));
	ASSERT_EQ(2, t->n_signed);
	EXPECT_EQ(0, t->verdict[1]);
	EXPECT_EQ(2, (int)t->cmd[1].nsig);
	EXPECT_EQ(GMC_TOWN_STOP, t->cmd[1].action);
	/* the history is in the audit log, and it verifies */
	snprintf(sql, sizeof(sql), "%llu", (unsigned long long)id);
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "show", sql, NULL));
	TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "issued"));
	EXPECT_NE(NULL, strstr(out, "queued"));
	EXPECT_NE(NULL, strstr(out, "sent"));
	EXPECT_NE(NULL, strstr(out, "executed"));
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "audit", "verify", NULL));
	EXPECT_NE(NULL, strstr(out, "intact"));
	TH_LOG("%s", out);
}

static void policy(struct __test_metadata *_metadata, struct world *w)
{
	char out[8192], sql[1024], opbuf[24], seqbuf[48];
	char *targets[12], tbuf[12][16];
	char actor[64];
	int64_t op, held_op, seq, next, t0, a_op, base = signed_rows(w);

	/* a rekey nobody approves in its two seconds (checked at the end) */
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "issue", "rekey", "11:60", "--key",
			     w->key[1], "--expires", "2s", NULL));
	t0 = real_ms();
	/* a mass disconnect: 12 meters, above two_above (10) */
	for (int i = 0; i < 12; i++) {
		snprintf(tbuf[i], sizeof(tbuf[i]), "%d:%d", TOWN, i + 1);
		targets[i] = tbuf[i];
	}
	{
		const struct mainctl_ctx x = { w->primary, w->primary, &w->cfg };
		char *args[20] = { "issue", "disconnect" };
		int n = 2;

		for (int i = 0; i < 12; i++)
			args[n++] = targets[i];
		args[n++] = "--key";
		args[n++] = w->key[0];
		ASSERT_EQ(0, mctl_cmd(&x, "cmd", n, args));
	}
	op = last_op(w);
	snprintf(opbuf, sizeof(opbuf), "%lld", (long long)op);
	EXPECT_EQ(12, count(w, "SELECT count(*) FROM signed_commands WHERE op = %lld AND state = "
			    "'awaiting-approval' AND batch = 12", op));
	EXPECT_EQ(0, signed_rows(w) - base);
	/* its issuer cannot be its second operator */
	EXPECT_EQ(1, mainctl(w, out, sizeof(out), "cmd", "approve", opbuf, "--key", w->key[0],
			     NULL));
	EXPECT_EQ(0, signed_rows(w) - base);
	EXPECT_EQ(1, pg1(w->primary, "SELECT count(*) FROM audit_log WHERE what = "
			 "'approve-refused' AND detail LIKE '%alice already signed%'"));
	EXPECT_EQ(12, count(w, "SELECT count(*) FROM signed_commands WHERE op = %lld AND "
			    "array_length(signers, 1) = 1", op));
	/* bob approves: all twelve go */
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "approve", opbuf, "--key", w->key[1],
			     NULL));
	/* one query: maind moves them from queued to sent meanwhile (town 11 is up) */
	EXPECT_EQ(12, count(w, "SELECT count(*) FROM signed_commands WHERE op = %lld AND state "
			    "IN ('queued', 'sent') AND signers = ARRAY['alice', 'bob']", op));
	EXPECT_EQ(12, signed_rows(w) - base);
	/* each queued blob carries both signatures and verifies at its meter */
	{
		PGconn *c = PQconnectdb(w->primary);
		PGresult *r = PQexec(c, "SELECT encode(c.blob, 'hex'), s.meter FROM commands c "
				     "JOIN signed_commands s ON c.cmd_id = s.id WHERE s.batch = 12");
		struct gmc_policy pol = { GMC_TWO_ABOVE };
		int ok = 0;

		for (int i = 0; i < PQntuples(r); i++) {
			uint8_t b[GMC_LEN_MAX];
			size_t hl = strlen(PQgetvalue(r, i, 0));
			struct gmc_cmd g;

			if (!gmp_hex_decode(PQgetvalue(r, i, 0), b, hl / 2) &&
			    !gmc_decode(b, hl / 2, &g) && g.nsig == 2 &&
			    !gmc_verify(&g, &w->t.ks, &pol, TOWN, (uint16_t)atoi(PQgetvalue(r, i, 1)),
					real_ms() / 1000))
				ok++;
		}
		PQclear(r);
		PQfinish(c);
		EXPECT_EQ(12, ok);
	}
	/* the hourly limit (15): of five more single disconnects, three go, two wait */
	for (int i = 0; i < 5; i++) {
		char tgt[16];

		snprintf(tgt, sizeof(tgt), "%d:%d", TOWN2, 20 + i);
		ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "issue", "disconnect", tgt, "--key",
				     w->key[2], NULL));
	}
	held_op = last_op(w);
	EXPECT_EQ(LIMIT, signed_rows(w) - base);
	EXPECT_EQ(2, pg1(w->primary, "SELECT count(*) FROM signed_commands WHERE state = 'queued' "
			 "AND town_tseq IS NULL AND reason LIKE 'held: 15 disconnects%'"));
	EXPECT_EQ(1, count(w, "SELECT count(*) FROM signed_commands WHERE op = %lld AND "
			   "town_tseq IS NULL", held_op));
	/* 17 issued in the hour, more than the limit: a takeover pattern, every operator told */
	EXPECT_EQ(1, pg1(w->primary, "SELECT count(*) FROM alerts WHERE rule = "
			 "'cmd-disconnect-burst' AND state = 'open' AND severity = 'critical'"));
	EXPECT_EQ(3, pg1(w->primary, "SELECT count(*) FROM notices n JOIN alerts a ON n.ref = a.id "
			 "WHERE a.rule = 'cmd-disconnect-burst' AND n.kind = 'alert'"));
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "list", "--state", "queued", NULL));
	TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "held: 15 disconnects"));
	/* releasing again changes nothing within the hour */
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "release", NULL));
	EXPECT_EQ(LIMIT, signed_rows(w) - base);
	/* an hour later they go */
	ASSERT_EQ(0, pgx(w->primary, "UPDATE signed_commands SET queued_at = queued_at - "
			 "interval '61 minutes' WHERE queued_at IS NOT NULL"));
	{	/* by maind's tick */
		struct maind_pg p = { 0 };

		p.c = PQconnectdb(w->primary);
		EXPECT_EQ(0, mcmd_tick(&p, &w->cfg, real_ms() / 1000)) TH_LOG("%s", p.err);
		PQfinish(p.c);
	}
	EXPECT_EQ(LIMIT + 2, signed_rows(w) - base);
	EXPECT_EQ(0, pg1(w->primary, "SELECT count(*) FROM signed_commands WHERE reason LIKE "
			 "'held:%'"));
	/* an operation of 24 with 2 of the hour used: 13 go, 11 wait, and mainctl says so */
	{
		const struct mainctl_ctx x = { w->primary, w->primary, &w->cfg };
		char *args[32] = { "issue", "disconnect" }, tb[24][16];
		int n = 2;

		for (int i = 0; i < 24; i++) {
			snprintf(tb[i], sizeof(tb[i]), "%d:%d", TOWN2, 100 + i);
			args[n++] = tb[i];
		}
		args[n++] = "--key";
		args[n++] = w->key[1];
		ASSERT_EQ(0, mctl_cmd(&x, "cmd", n, args));
		snprintf(opbuf, sizeof(opbuf), "%lld", (long long)last_op(w));
		ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "approve", opbuf, "--key",
				     w->key[0], NULL));
		TH_LOG("%s", out);
		EXPECT_NE(NULL, strstr(out, "  13 queued\n"));
		EXPECT_NE(NULL, strstr(out, "  11 queued: held: 15 disconnects"));
	}
	EXPECT_EQ(LIMIT + 2 + 13, signed_rows(w) - base);
	/* bob has issued far more in this hour (25) than in any hour before (1) */
	EXPECT_EQ(1, pg1(w->primary, "SELECT count(*) FROM alerts WHERE rule = "
			 "'cmd-operator-rate' AND key = 'cmd-operator-rate:bob'"));

	/* carol signs a rekey (needs two), then her key is revoked */
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "issue", "rekey", "11:30", "--key",
			     w->key[2], NULL));
	op = last_op(w);
	EXPECT_EQ(1, count(w, "SELECT count(*) FROM signed_commands WHERE op = %lld AND state = "
			   "'awaiting-approval'", op));
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "op-revoke", "carol", NULL));
	/* what she signed and was not yet queued is refused */
	EXPECT_EQ(1, count(w, "SELECT count(*) FROM signed_commands WHERE op = %lld AND state = "
			   "'refused' AND status = 7 AND status_text LIKE '%%revoked%%'", op));
	/* and she cannot sign any more: nothing stored, written, alerted */
	EXPECT_EQ(1, mainctl(w, out, sizeof(out), "cmd", "issue", "reconnect", "11:31", "--key",
			     w->key[2], NULL));
	EXPECT_EQ(0, pg1(w->primary, "SELECT count(*) FROM signed_commands WHERE meter = 31"));
	EXPECT_EQ(1, pg1(w->primary, "SELECT count(*) FROM audit_log WHERE what = 'sign-refused' "
			 "AND actor = 'carol'"));
	EXPECT_LE(1, pg1(w->primary, "SELECT count(*) FROM alerts WHERE rule = 'cmd-revoked-key'"));
	/* nor approve */
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "issue", "rekey", "11:32", "--key",
			     w->key[0], NULL));
	snprintf(opbuf, sizeof(opbuf), "%lld", (long long)last_op(w));
	EXPECT_EQ(1, mainctl(w, out, sizeof(out), "cmd", "approve", opbuf, "--key", w->key[2],
			     NULL));
	EXPECT_EQ(1, pg1(w->primary, "SELECT count(*) FROM signed_commands WHERE meter = 32 AND "
			 "state = 'awaiting-approval'"));
	/* the key set for meters no longer has her */
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "op-keyset", NULL));
	EXPECT_EQ(NULL, strstr(out, "carol"));
	EXPECT_NE(NULL, strstr(out, "alice"));

	/* a row the head end wrote itself (no operator key): refused, alerted */
	{
		struct gmc_cmd g = { .action = GMC_DISCONNECT, .town = TOWN, .meter = 40, .id = 4242,
				     .issued = real_ms() / 1000, .expires = real_ms() / 1000 + 600,
				     .batch = 1 };
		uint8_t pk[GMC_PK_LEN], sk[GMC_SK_LEN], b[GMC_LEN_MAX];
		char hex[2 * GMC_LEN_MAX + 1];
		int len;

		crypto_sign_keypair(pk, sk);
		ASSERT_EQ(0, gmc_sign(&g, sk));
		len = gmc_encode(&g, b, sizeof(b));
		ASSERT_LT(0, len);
		sodium_bin2hex(hex, sizeof(hex), b, (size_t)len);
		snprintf(sql, sizeof(sql), "INSERT INTO signed_commands (id, op, action, town, meter, "
			 "batch, issued, expires, issuer, blob, signers) VALUES (4242, 0, "
			 "'disconnect', %d, 40, 1, now(), now() + interval '10 minutes', 'alice', "
			 "decode('%s', 'hex'), ARRAY['alice'])", TOWN, hex);
		ASSERT_EQ(0, pgx(w->primary, sql));
		ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "release", NULL));
		EXPECT_EQ(1, pg1(w->primary, "SELECT count(*) FROM signed_commands WHERE id = 4242 "
				 "AND state = 'refused' AND status = 7"));
		EXPECT_EQ(0, pg1(w->primary, "SELECT count(*) FROM commands WHERE cmd_id = 4242"));
		EXPECT_EQ(1, pg1(w->primary, "SELECT count(*) FROM alerts WHERE rule = "
				 "'cmd-forged'"));
	}

	/* an operation is what its operators signed together: a command the head end
	 * slipped into it makes the approval fail */
	a_op = pg1(w->primary, "SELECT op FROM signed_commands WHERE meter = 32");
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "issue", "rekey", "11:33", "--key",
			     w->key[0], NULL));
	snprintf(sql, sizeof(sql), "UPDATE signed_commands SET op = %lld WHERE meter = 33",
		 (long long)a_op);
	ASSERT_EQ(0, pgx(w->primary, sql));
	snprintf(opbuf, sizeof(opbuf), "%lld", (long long)a_op);
	EXPECT_EQ(1, mainctl(w, out, sizeof(out), "cmd", "approve", opbuf, "--key", w->key[1],
			     NULL));
	EXPECT_EQ(2, count(w, "SELECT count(*) FROM signed_commands WHERE op = %lld AND state = "
			   "'awaiting-approval' AND array_length(signers, 1) = 1", a_op));
	/* cancelled: what awaits, and what is queued but not yet sent (town 12 is offline) */
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "cancel", opbuf, NULL));
	EXPECT_EQ(2, count(w, "SELECT count(*) FROM signed_commands WHERE op = %lld AND state = "
			   "'cancelled'", a_op));
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "issue", "reconnect", "12:50", "--key",
			     w->key[0], NULL));
	op = last_op(w);
	EXPECT_EQ(1, count(w, "SELECT count(*) FROM signed_commands WHERE op = %lld AND state = "
			   "'queued' AND town_tseq IS NOT NULL", op));
	snprintf(opbuf, sizeof(opbuf), "%lld", (long long)op);
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "cancel", opbuf, NULL));
	EXPECT_EQ(1, count(w, "SELECT count(*) FROM commands c JOIN signed_commands s ON "
			   "c.cmd_id = s.id WHERE s.op = %lld AND c.status = 100 AND s.state = "
			   "'cancelled'", op));
	/* the unapproved rekey expired */
	while (real_ms() - t0 < 2500)
		usleep(100000);
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "cmd", "release", NULL));
	EXPECT_EQ(1, pg1(w->primary, "SELECT count(*) FROM signed_commands WHERE meter = 60 AND "
			 "state = 'expired' AND status = 3"));

	/* the audit log: intact, append-only, and a superuser's edit is found */
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "audit", "verify", NULL));
	EXPECT_NE(NULL, strstr(out, "intact"));
	seq = pg1(w->primary, "SELECT seq FROM audit_log WHERE what = 'approved' ORDER BY seq "
		  "LIMIT 1 OFFSET 3");
	ASSERT_LT(0, seq);
	snprintf(sql, sizeof(sql), "SELECT actor FROM audit_log WHERE seq = %lld", (long long)seq);
	ASSERT_EQ(0, pgs(w->primary, sql, actor, sizeof(actor)));
	snprintf(sql, sizeof(sql), "UPDATE audit_log SET actor = 'mallory' WHERE seq = %lld",
		 (long long)seq);
	EXPECT_EQ(-1, pgx(w->primary, sql));			/* the trigger refuses */
	EXPECT_EQ(-1, pgx(w->primary, "DELETE FROM audit_log"));
	EXPECT_EQ(-1, pgx(w->primary, "TRUNCATE audit_log"));
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "audit", "verify", NULL));
	snprintf(sql, sizeof(sql), "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; "
		 "UPDATE audit_log SET actor = 'mallory' WHERE seq = %lld; "
		 "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only", (long long)seq);
	ASSERT_EQ(0, pgx(w->primary, sql));
	EXPECT_EQ(1, mainctl(w, out, sizeof(out), "audit", "verify", NULL));
	TH_LOG("%s", out);
	snprintf(seqbuf, sizeof(seqbuf), "row %lld:", (long long)seq);
	EXPECT_NE(NULL, strstr(out, seqbuf));
	EXPECT_NE(NULL, strstr(out, "altered"));
	/* put it back: intact again; then a row removed: the one after it is named */
	snprintf(sql, sizeof(sql), "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; "
		 "UPDATE audit_log SET actor = '%s' WHERE seq = %lld; "
		 "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only", actor, (long long)seq);
	ASSERT_EQ(0, pgx(w->primary, sql));
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), "audit", "verify", NULL));
	snprintf(sql, sizeof(sql), "SELECT min(seq) FROM audit_log WHERE seq > %lld + 5",
		 (long long)seq);
	next = pg1(w->primary, sql);
	ASSERT_LT(seq + 5, next);
	snprintf(sql, sizeof(sql), "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; "
		 "DELETE FROM audit_log WHERE seq = %lld + 5; "
		 "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only", (long long)seq);
	ASSERT_EQ(0, pgx(w->primary, sql));
	EXPECT_EQ(1, mainctl(w, out, sizeof(out), "audit", "verify", NULL));
	TH_LOG("%s", out);
	snprintf(seqbuf, sizeof(seqbuf), "row %lld:", (long long)next);
	EXPECT_NE(NULL, strstr(out, seqbuf));
	EXPECT_NE(NULL, strstr(out, "removed"));
}

/* One cluster for both parts: its start is most of the time. */
TEST_F(cmd, signed_commands)
{
	if (!self->pg)
		SKIP(return, PG_SKIP_WHY);
	end_to_end(_metadata, self->w);
	/* two hours later: the end-to-end part's disconnect is out of the hourly window */
	ASSERT_EQ(0, pgx(self->w->primary, "UPDATE signed_commands SET issued = issued - "
			 "interval '2 hours', queued_at = queued_at - interval '2 hours'"));
	policy(_metadata, self->w);
}

TEST_HARNESS_MAIN
