// SPDX-License-Identifier: GPL-2.0
/*
 * mainctl: operators, signed commands and the audit log
 * (Documentation/commands.md). Signing happens here, in the operator's
 * own mainctl with the operator's own key file: the database receives the
 * signed bytes only, never a secret.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cmd.h"
#include "mainctl_parts.h"
#include "parse.h"

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))

void mctl_cmd_usage(void)
{
	fprintf(stderr,
		"  op-keygen NAME FILE          an operator's secret key file (on the operator's\n"
		"                               machine); prints the key set line\n"
		"  op-add NAME PUBKEY [EMAIL] [PHONE]   an operator who may sign commands\n"
		"  op-revoke NAME               revoke an operator's key\n"
		"  op-keyset                    the operator key set file for meters and towns\n"
		"  cmd issue ACTION TARGET... --key FILE [--expires 15m] [--arg WATTS]\n"
		"                               sign and store (disconnect|reconnect|rekey TOWN:METER,\n"
		"                               town-stop|town-start|town-supply TOWN)\n"
		"  cmd approve OP --key FILE [--keyset FILE]   a second operator signs operation OP\n"
		"  cmd list [--state S] [--op OP]   commands and where they stand\n"
		"  cmd show ID                  one command, its signatures and its history\n"
		"  cmd cancel OP                withdraw what of operation OP is not yet sent\n"
		"  cmd release                  queue what the policy and the hourly limit allow\n"
		"  audit [verify] [--last N]    the audit log; verify its hash chain\n");
}

struct ctx {
	const struct mainctl_ctx *x;
	struct maind_pg p;
	struct mcmd_policy pol;
	char actor[64];
};

static int db(struct ctx *k, const char *conninfo)
{
	memset(&k->p, 0, sizeof(k->p));
	k->p.c = PQconnectdb(conninfo);
	if (PQstatus(k->p.c) != CONNECTION_OK) {
		fprintf(stderr, "mainctl: PostgreSQL: %s", PQerrorMessage(k->p.c));
		PQfinish(k->p.c);
		k->p.c = NULL;
		return -1;
	}
	return 0;
}

static int fail(struct ctx *k)
{
	fprintf(stderr, "mainctl: %s\n", k->p.err);
	if (k->p.c)
		PQclear(PQexec(k->p.c, "ROLLBACK"));
	return 1;
}

static void done(struct ctx *k)
{
	if (k->p.c)
		PQfinish(k->p.c);
	k->p.c = NULL;
}

static void whoami(struct ctx *k)
{
	const struct passwd *pw = getpwuid(getuid());

	snprintf(k->actor, sizeof(k->actor), "mainctl (%s)", pw ? pw->pw_name : "?");
}

/* ---- operators ------------------------------------------------------------------------ */

static int op_keygen(int argc, char **args)
{
	uint8_t pk[GMC_PK_LEN];
	char err[300], hex[2 * GMC_PK_LEN + 1];

	if (argc != 3)
		return 2;
	if (gmc_secret_create(args[2], args[1], pk, err, sizeof(err))) {
		fprintf(stderr, "mainctl: %s\n", err);
		return 1;
	}
	sodium_bin2hex(hex, sizeof(hex), pk, GMC_PK_LEN);
	fprintf(stderr, "mainctl: secret key in %s (keep it on this machine, mode 0600); "
		"the line below goes to mainctl op-add and the key set\n", args[2]);
	printf("%s %s\n", args[1], hex);
	return 0;
}

static int op_add(struct ctx *k, int argc, char **args)
{
	struct gmc_keyset ks;
	char line[160], err[300], detail[300];
	const char *v[4];

	if (argc < 3 || argc > 5)
		return 2;
	/* the name and key as the key set file would carry them: one reader */
	snprintf(line, sizeof(line), "%s %s\n", args[1], args[2]);
	if (gmc_keyset_parse(&ks, line, "op-add", err, sizeof(err)) || ks.n != 1) {
		fprintf(stderr, "mainctl: %s\n", err);
		return 2;
	}
	v[0] = args[1];
	v[1] = args[2];
	v[2] = argc > 3 ? args[3] : NULL;
	v[3] = argc > 4 ? args[4] : NULL;
	if (db(k, k->x->conninfo))
		return 1;
	snprintf(detail, sizeof(detail), "operator %s added with key %s", args[1], args[2]);
	if (mpg_exec(&k->p, "BEGIN", 0, NULL) ||
	    mpg_exec(&k->p, "INSERT INTO operators (name, pk, email, phone) VALUES ($1, "
		     "decode($2, 'hex'), $3, $4)", 4, v) ||
	    mcmd_audit(&k->p, k->actor, "op-add", detail) ||
	    mpg_exec(&k->p, "UPDATE settings SET value = value + 1 WHERE key = 'changes'", 0, NULL) ||
	    mpg_exec(&k->p, "COMMIT", 0, NULL))
		return fail(k);
	printf("operator %s added: put the key set (mainctl op-keyset) on meters and towns\n",
	       args[1]);
	return 0;
}

static int op_revoke(struct ctx *k, int argc, char **args)
{
	char detail[200];
	const char *v[1];
	PGresult *r;
	int n;

	if (argc != 2)
		return 2;
	v[0] = args[1];
	if (db(k, k->x->conninfo) || mpg_exec(&k->p, "BEGIN", 0, NULL))
		return k->p.c ? fail(k) : 1;
	r = mpg_query(&k->p, "UPDATE operators SET revoked = true WHERE name = $1 AND NOT revoked "
		      "RETURNING id", 1, v);
	if (!r)
		return fail(k);
	n = PQntuples(r);
	PQclear(r);
	if (!n) {
		fprintf(stderr, "mainctl: no operator %s with a key in force\n", args[1]);
		PQclear(PQexec(k->p.c, "ROLLBACK"));
		return 1;
	}
	snprintf(detail, sizeof(detail), "operator %s revoked", args[1]);
	/* what the revoked key signed and is not yet queued is refused now */
	if (mcmd_audit(&k->p, k->actor, "op-revoke", detail) ||
	    mpg_exec(&k->p, "UPDATE settings SET value = value + 1 WHERE key = 'changes'", 0, NULL) ||
	    mcmd_release(&k->p, &k->pol, k->actor, time(NULL)) < 0 ||
	    mpg_exec(&k->p, "COMMIT", 0, NULL))
		return fail(k);
	printf("operator %s revoked: give meters and towns the new key set (mainctl op-keyset)\n",
	       args[1]);
	return 0;
}

static int op_keyset(struct ctx *k, int argc)
{
	PGresult *r;
	int n;

	if (argc != 1)
		return 2;
	if (db(k, k->x->report))
		return 1;
	r = mpg_query(&k->p, "SELECT name, encode(pk, 'hex') FROM operators WHERE NOT revoked "
		      "ORDER BY name", 0, NULL);
	if (!r)
		return fail(k);
	n = PQntuples(r);
	if (n > GMC_KEYS_MAX) {
		fprintf(stderr, "mainctl: %d operators, a meter holds at most %d keys\n", n,
			GMC_KEYS_MAX);
		PQclear(r);
		return 1;
	}
	printf("# gridmeter operator key set (mainctl op-keyset): [commands] operator_keys\n");
	for (int i = 0; i < n; i++)
		printf("%s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
	PQclear(r);
	return 0;
}

/*
 * The signing operator: the key file's secret, and the operators table's
 * word that its public key belongs to an operator not revoked. 0, 1 refused
 * (written to the audit log and alerted when the key is revoked).
 */
static int signer(struct ctx *k, const char *file, char name[GMC_NAME_MAX],
		  uint8_t sk[GMC_SK_LEN])
{
	char err[300], hex[2 * GMC_PK_LEN + 1];
	const char *v[1] = { hex };
	PGresult *r;

	if (gmc_secret_load(file, name, sk, err, sizeof(err))) {
		fprintf(stderr, "mainctl: %s\n", err);
		return 1;
	}
	sodium_bin2hex(hex, sizeof(hex), sk + 32, GMC_PK_LEN);	/* seed || public key */
	r = mpg_query(&k->p, "SELECT name, revoked FROM operators WHERE pk = decode($1, 'hex')", 1, v);
	if (!r)
		return fail(k);
	if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), name)) {
		fprintf(stderr, "mainctl: %s: the key of '%s' is %s\n", file, name,
			PQntuples(r) ? "another operator's" : "no operator's (mainctl op-add)");
		PQclear(r);
		sodium_memzero(sk, GMC_SK_LEN);
		return 1;
	}
	if (PQgetvalue(r, 0, 1)[0] == 't') {
		PQclear(r);
		sodium_memzero(sk, GMC_SK_LEN);
		fprintf(stderr, "mainctl: operator %s's key is revoked: it cannot sign\n", name);
		if (mcmd_sign_refused(&k->p, name))
			fprintf(stderr, "mainctl: %s\n", k->p.err);
		return 1;
	}
	PQclear(r);
	snprintf(k->actor, sizeof(k->actor), "%s", name);
	return 0;
}

/* ---- cmd issue ------------------------------------------------------------------------- */

static int parse_duration(const char *s, int64_t *out)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	int64_t mul = !strcmp(end, "s") || !*end ? 1 : !strcmp(end, "m") ? 60 :
		      !strcmp(end, "h") ? 3600 : 0;

	if (end == s || v <= 0 || !mul || v * mul > GMC_LIFETIME_MAX)
		return -1;
	*out = v * mul;
	return 0;
}

/* How the operation stands, one line per state. */
static void op_summary(struct ctx *k, const char *op)
{
	const char *v[1] = { op };
	PGresult *r = mpg_query(&k->p, "SELECT state, count(*), COALESCE(reason, status_text, '') "
				"AS why FROM signed_commands WHERE op = $1 GROUP BY state, why "
				"ORDER BY state, why", 1, v);

	if (!r)
		return;
	for (int i = 0; i < PQntuples(r); i++)
		printf("  %s %s%s%s\n", PQgetvalue(r, i, 1), PQgetvalue(r, i, 0),
		       *PQgetvalue(r, i, 2) ? ": " : "", PQgetvalue(r, i, 2));
	PQclear(r);
}

/* A refusal or error from the storing half (cmd_submit.c): already rolled back. */
static int submit_failed(struct ctx *k, int rc, const char *pre, const char *why)
{
	fprintf(stderr, "mainctl: %s%s\n", rc < 0 ? "" : pre, rc < 0 ? k->p.err : why);
	return 1;
}

static int cmd_issue(struct ctx *k, int argc, char **args)
{
	const char *keyfile = NULL;
	int64_t life = 15 * 60, arg = 0, now = time(NULL);
	bool has_arg = false;
	struct mcmd_target *t, dup;
	struct gmc_cmd *c = NULL;
	size_t n = 0;
	int action, rc = 1;
	char name[GMC_NAME_MAX], op[MCMD_OP_LEN], why[300];
	uint8_t sk[GMC_SK_LEN];

	if (argc < 3)
		return 2;
	action = gmc_action_parse(args[2]);
	if (action < 0) {
		fprintf(stderr, "mainctl: unknown action '%s' (disconnect, reconnect, rekey, "
			"town-stop, town-start, town-supply)\n", args[2]);
		return 2;
	}
	t = calloc((size_t)argc, sizeof(*t));
	if (!t)
		return 1;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(args[i], "--key") && i + 1 < argc) {
			keyfile = args[++i];
		} else if (!strcmp(args[i], "--expires") && i + 1 < argc) {
			if (parse_duration(args[++i], &life)) {
				fprintf(stderr, "mainctl: --expires '%s': 1s..24h (90s, 15m, 2h)\n",
					args[i]);
				goto usage;
			}
		} else if (!strcmp(args[i], "--arg") && i + 1 < argc) {
			uint64_t w;

			if (parse_u64(args[++i], 0, 1ull << 40, &w)) {
				fprintf(stderr, "mainctl: --arg '%s': watts 0..%llu\n", args[i],
					1ull << 40);
				goto usage;
			}
			arg = (int64_t)w;
			has_arg = true;
		} else if (mcmd_target_parse(args[i], gmc_is_town_action(action), &t[n])) {
			fprintf(stderr, "mainctl: target '%s': %s\n", args[i],
				gmc_is_town_action(action) ? "a town id (1..65534)" :
				"TOWN:METER (1..65534:1..65535)");
			goto usage;
		} else {
			n++;
		}
	}
	if (!keyfile || !n || n > MCMD_TARGETS_MAX || has_arg != (action == GMC_TOWN_SUPPLY)) {
		fprintf(stderr, "mainctl: cmd issue needs --key FILE, 1..%d targets%s\n",
			MCMD_TARGETS_MAX, action == GMC_TOWN_SUPPLY ? " and --arg WATTS" :
			", and --arg only for town-supply");
		goto usage;
	}
	if (mcmd_targets_sort(t, n, &dup)) {
		fprintf(stderr, "mainctl: target %u:%u given twice\n", dup.town, dup.meter);
		goto usage;
	}
	if (db(k, k->x->conninfo))
		goto out;
	if (signer(k, keyfile, name, sk))
		goto out;
	/* the signing half: this operator's own key, here on their machine */
	c = calloc(n, sizeof(*c));
	if (!c || mcmd_prepare(c, t, n, action, arg, now, life)) {
		fprintf(stderr, "mainctl: cannot make the commands\n");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (gmc_sign(&c[i], sk)) {
			fprintf(stderr, "mainctl: cannot sign command %zu\n", i + 1);
			goto out;
		}
	sodium_memzero(sk, sizeof(sk));
	/* the storing half: the same as the portal's */
	rc = mcmd_submit(&k->p, &k->pol, name, c, n, now, op, why, sizeof(why));
	if (rc) {
		rc = submit_failed(k, rc, "", why);
		goto out;
	}
	printf("operation %s: %zu %s command%s signed by %s\n", op, n, gmc_action_name(action),
	       n == 1 ? "" : "s", name);
	op_summary(k, op);
	rc = 0;
	goto out;
usage:
	rc = 2;
out:
	sodium_memzero(sk, sizeof(sk));
	free(c);
	free(t);
	return rc;
}

/* ---- cmd approve ------------------------------------------------------------------------ */

static int cmd_approve(struct ctx *k, int argc, char **args)
{
	const char *keyfile = NULL, *keysetfile = NULL, *op;
	char name[GMC_NAME_MAX], why[300], err[300];
	uint8_t sk[GMC_SK_LEN];
	struct gmc_keyset ks;
	struct mcmd_op o = { 0 };
	int64_t now = time(NULL);
	uint64_t opn;
	int rc = 1;

	if (argc < 3 || parse_u64(args[2], 1, INT64_MAX, &opn))
		return 2;
	op = args[2];
	for (int i = 3; i < argc; i++) {
		if (!strcmp(args[i], "--key") && i + 1 < argc)
			keyfile = args[++i];
		else if (!strcmp(args[i], "--keyset") && i + 1 < argc)
			keysetfile = args[++i];
		else
			return 2;
	}
	if (!keyfile)
		return 2;
	if (db(k, k->x->conninfo))
		return 1;
	if (signer(k, keyfile, name, sk))
		goto out;
	/* the key set the first signature is checked against: a file (the one
	 * provisioned on meters: what the head end cannot change), else the
	 * operators table */
	if (keysetfile && gmc_keyset_load(&ks, keysetfile, err, sizeof(err))) {
		fprintf(stderr, "mainctl: %s\n", err);
		goto out;
	}
	rc = mcmd_approve_load(&k->p, &k->pol, keysetfile ? &ks : NULL, keysetfile, op, name, now,
			       &o, why, sizeof(why));
	if (rc) {
		rc = submit_failed(k, rc, "not approved: ", why);
		goto out;
	}
	/* the signing half, then the storing half (the portal's too) */
	for (size_t i = 0; i < o.n; i++)
		if (gmc_sign(&o.c[i], sk)) {
			fprintf(stderr, "mainctl: not approved: command %llu cannot take another "
				"signature\n", (unsigned long long)o.c[i].id);
			rc = 1;
			goto out;
		}
	sodium_memzero(sk, sizeof(sk));
	rc = mcmd_approve_store(&k->p, &k->pol, keysetfile ? &ks : NULL, keysetfile, &o, name,
				now, why, sizeof(why));
	if (rc) {
		rc = submit_failed(k, rc, "not approved: ", why);
		goto out;
	}
	printf("operation %s approved by %s: %zu command%s (%s; expires in %lld s)\n", op, name,
	       o.n, o.n == 1 ? "" : "s", o.what, (long long)(o.expires - now));
	op_summary(k, op);
	rc = 0;
out:
	mcmd_op_free(&o);
	sodium_memzero(sk, sizeof(sk));
	return rc;
}

/* ---- list, show, cancel, release --------------------------------------------------------- */

#define LIST_COLS "id, op, action, town || CASE WHEN meter > 0 THEN ':' || meter ELSE '' END " \
	"AS target, batch, array_to_string(signers, '+') AS signers, state, " \
	"COALESCE(reason, status_text, '') AS why, to_char(expires AT TIME ZONE 'UTC', " \
	"'MM-DD HH24:MI:SS') AS expires"

static int cmd_list(struct ctx *k, int argc, char **args)
{
	const char *v[2] = { NULL, NULL };
	PGresult *r;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(args[i], "--state") && i + 1 < argc)
			v[0] = args[++i];
		else if (!strcmp(args[i], "--op") && i + 1 < argc)
			v[1] = args[++i];
		else
			return 2;
	}
	if (db(k, k->x->report))
		return 1;
	r = mpg_query(&k->p, "SELECT " LIST_COLS " FROM signed_commands WHERE ($1::text IS NULL OR "
		      "state = $1) AND ($2::bigint IS NULL OR op = $2) ORDER BY issued DESC, op DESC, "
		      "town, meter LIMIT 1000", 2, v);
	if (!r)
		return fail(k);
	mctl_table(r);
	PQclear(r);
	return 0;
}

static int cmd_show(struct ctx *k, int argc, char **args)
{
	const char *v[1];
	uint64_t id;
	PGresult *r;

	if (argc != 3 || parse_u64(args[2], 1, INT64_MAX, &id))
		return 2;
	v[0] = args[2];
	if (db(k, k->x->report))
		return 1;
	r = mpg_query(&k->p, "SELECT id, op, action, town, meter, arg, batch, issuer, "
		      "array_to_string(signers, '+'), state, status, status_text, reason, "
		      "issued, expires, queued_at, town_tseq, updated, encode(blob, 'hex') "
		      "FROM signed_commands WHERE id = $1", 1, v);
	if (!r)
		return fail(k);
	if (PQntuples(r) != 1) {
		fprintf(stderr, "mainctl: no command %s\n", args[2]);
		PQclear(r);
		return 1;
	}
	for (int f = 0; f < PQnfields(r); f++)
		printf("%-12s %s\n", f == 8 ? "signers" : f == 18 ? "signed bytes" : PQfname(r, f),
		       PQgetisnull(r, 0, f) ? "-" : PQgetvalue(r, 0, f));
	PQclear(r);
	printf("\nhistory (audit log):\n");
	r = mpg_query(&k->p, "SELECT seq, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') "
		      "AS at, actor, what, left(detail, 160) AS detail FROM audit_log WHERE detail "
		      "LIKE 'command ' || $1 || ' %' OR detail LIKE 'command ' || $1 || ':%' "
		      "ORDER BY seq", 1, v);
	if (!r)
		return fail(k);
	mctl_table(r);
	PQclear(r);
	return 0;
}

static int cmd_cancel(struct ctx *k, int argc, char **args)
{
	const char *v[2];
	uint64_t opn;
	PGresult *r;
	int n;

	if (argc != 3 || parse_u64(args[2], 1, INT64_MAX, &opn))
		return 2;
	v[0] = args[2];
	v[1] = k->actor;
	if (db(k, k->x->conninfo) || mpg_exec(&k->p, "BEGIN", 0, NULL) ||
	    mpg_exec(&k->p, "SELECT pg_advisory_xact_lock(" MPG_LOCK_AUDIT ")", 0, NULL))
		return k->p.c ? fail(k) : 1;
	/* withdraw from the town queues what was not sent yet; the rest went */
	r = mpg_query(&k->p, "WITH w AS (UPDATE commands SET status = 100, result_at = now() "
		      "WHERE cmd_id IN (SELECT id FROM signed_commands WHERE op = $1 AND state = "
		      "'queued') AND sent IS NULL AND status IS NULL RETURNING cmd_id) "
		      "UPDATE signed_commands SET state = 'cancelled', reason = NULL, "
		      "status_text = 'cancelled by ' || $2, updated = now() WHERE op = $1 AND "
		      "(state = 'awaiting-approval' OR (state = 'queued' AND (town_tseq IS NULL OR "
		      "id IN (SELECT cmd_id FROM w)))) RETURNING id, action, town, meter", 2, v);
	if (!r)
		return fail(k);
	n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		char detail[200];

		snprintf(detail, sizeof(detail), "command %s %s town %s meter %s: cancelled (operation "
			 "%s)", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
			 PQgetvalue(r, i, 3), args[2]);
		if (mcmd_audit(&k->p, k->actor, "cancelled", detail)) {
			PQclear(r);
			return fail(k);
		}
	}
	PQclear(r);
	if (mpg_exec(&k->p, "COMMIT", 0, NULL))
		return fail(k);
	printf("operation %s: %d command%s cancelled\n", args[2], n, n == 1 ? "" : "s");
	op_summary(k, args[2]);
	return 0;
}

static int cmd_release(struct ctx *k, int argc)
{
	int n;

	if (argc != 2)
		return 2;
	if (db(k, k->x->conninfo) || mpg_exec(&k->p, "BEGIN", 0, NULL))
		return k->p.c ? fail(k) : 1;
	n = mcmd_release(&k->p, &k->pol, k->actor, time(NULL));
	if (n < 0 || mpg_exec(&k->p, "COMMIT", 0, NULL))
		return fail(k);
	printf("%d command%s queued\n", n, n == 1 ? "" : "s");
	return 0;
}

/* ---- audit --------------------------------------------------------------------------------- */

static int audit(struct ctx *k, int argc, char **args)
{
	bool verify = false;
	uint64_t last = 50;
	char l[24];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(args[i], "verify"))
			verify = true;
		else if (!strcmp(args[i], "--last") && i + 1 < argc &&
			 !parse_u64(args[i + 1], 1, 1000000, &last))
			i++;
		else
			return 2;
	}
	if (db(k, k->x->report))
		return 1;
	if (verify) {
		struct mcmd_audit_check ck;
		char head[2 * MCMD_AUDIT_HASH_LEN + 1];
		int v = mcmd_audit_verify(&k->p, &ck);

		if (v < 0)
			return fail(k);
		if (v) {
			printf("audit log BROKEN at row %lld: %s (%lld rows checked)\n",
			       (long long)ck.bad_seq, ck.why, (long long)ck.rows);
			return 1;
		}
		sodium_bin2hex(head, sizeof(head), ck.head, sizeof(ck.head));
		printf("audit log intact: %lld rows, head %s\n", (long long)ck.rows, head);
		return 0;
	}
	{
		const char *v[1] = { I64(l, last) };
		PGresult *r = mpg_query(&k->p, "SELECT * FROM (SELECT seq, to_char(at AT TIME ZONE "
					"'UTC', 'YYYY-MM-DD HH24:MI:SS') AS at, actor, what, "
					"left(detail, 200) AS detail FROM audit_log ORDER BY seq DESC "
					"LIMIT $1) a ORDER BY seq", 1, v);

		if (!r)
			return fail(k);
		mctl_table(r);
		PQclear(r);
	}
	return 0;
}

static int dispatch(struct ctx *k, int argc, char **av)
{
	const char *cmd = av[0];

	if (!strcmp(cmd, "op-keygen"))
		return op_keygen(argc, av);
	if (!strcmp(cmd, "op-add"))
		return op_add(k, argc, av);
	if (!strcmp(cmd, "op-revoke"))
		return op_revoke(k, argc, av);
	if (!strcmp(cmd, "op-keyset"))
		return op_keyset(k, argc);
	if (!strcmp(cmd, "audit"))
		return audit(k, argc, av);
	if (strcmp(cmd, "cmd"))
		return -2;
	if (argc < 2)
		return 2;
	if (!strcmp(av[1], "issue"))
		return cmd_issue(k, argc, av);
	if (!strcmp(av[1], "approve"))
		return cmd_approve(k, argc, av);
	if (!strcmp(av[1], "list"))
		return cmd_list(k, argc, av);
	if (!strcmp(av[1], "show"))
		return cmd_show(k, argc, av);
	if (!strcmp(av[1], "cancel"))
		return cmd_cancel(k, argc, av);
	if (!strcmp(av[1], "release"))
		return cmd_release(k, argc);
	return 2;
}

int mctl_cmd(const struct mainctl_ctx *x, const char *cmd, int argc, char **args)
{
	struct ctx k = { .x = x };
	char **av;
	int rc;

	/* the handlers see cmd as their av[0] */
	av = calloc((size_t)argc + 2, sizeof(*av));
	if (!av)
		return 1;
	av[0] = (char *)cmd;
	for (int i = 0; i < argc; i++)
		av[i + 1] = args[i];
	whoami(&k);
	mcmd_policy_of(x ? x->cfg : NULL, &k.pol);
	rc = dispatch(&k, argc + 1, av);
	if (rc == 2) {
		fprintf(stderr, "usage:\n");
		mctl_cmd_usage();
	}
	done(&k);
	free(av);
	return rc;
}
