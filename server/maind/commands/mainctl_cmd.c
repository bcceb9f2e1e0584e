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
#define TARGETS_MAX 100000

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
	char err[300], hex[2 * GMC_PK_LEN + 1], detail[300];
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
		char key[80];

		PQclear(r);
		sodium_memzero(sk, GMC_SK_LEN);
		fprintf(stderr, "mainctl: operator %s's key is revoked: it cannot sign\n", name);
		snprintf(detail, sizeof(detail), "operator %s tried to sign with a revoked key", name);
		snprintf(key, sizeof(key), "cmd-revoked-key:%s", name);
		if (mpg_exec(&k->p, "BEGIN", 0, NULL) ||
		    mcmd_audit(&k->p, name, "sign-refused", detail) ||
		    mcmd_alert(&k->p, "cmd-revoked-key", -1, -1, "critical", detail, "{}", key) < 0 ||
		    mpg_exec(&k->p, "COMMIT", 0, NULL))
			fail(k);
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

struct target {
	uint16_t town, meter;
};

static int target_cmp(const void *a, const void *b)
{
	const struct target *x = a, *y = b;

	return x->town != y->town ? x->town - y->town : x->meter - y->meter;
}

static int parse_target(const char *s, bool town_action, struct target *t)
{
	char buf[32], *colon;
	uint32_t town, meter = 0;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	colon = strchr(buf, ':');
	if (colon)
		*colon = '\0';
	if (parse_u32(buf, 1, 65534, &town))
		return -1;
	if (town_action ? colon != NULL :
	    !colon || parse_u32(colon + 1, 1, 65535, &meter))
		return -1;
	t->town = (uint16_t)town;
	t->meter = (uint16_t)meter;
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

static int cmd_issue(struct ctx *k, int argc, char **args)
{
	const char *keyfile = NULL;
	int64_t life = 15 * 60, arg = 0, now = time(NULL);
	bool has_arg = false;
	struct target *t;
	size_t n = 0;
	int action, rc = 1;
	char name[GMC_NAME_MAX], op[24];
	uint8_t sk[GMC_SK_LEN];
	PGresult *r;

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
		} else if (parse_target(args[i], gmc_is_town_action(action), &t[n])) {
			fprintf(stderr, "mainctl: target '%s': %s\n", args[i],
				gmc_is_town_action(action) ? "a town id (1..65534)" :
				"TOWN:METER (1..65534:1..65535)");
			goto usage;
		} else {
			n++;
		}
	}
	if (!keyfile || !n || n > TARGETS_MAX || has_arg != (action == GMC_TOWN_SUPPLY)) {
		fprintf(stderr, "mainctl: cmd issue needs --key FILE, 1..%d targets%s\n",
			TARGETS_MAX, action == GMC_TOWN_SUPPLY ? " and --arg WATTS" :
			", and --arg only for town-supply");
		goto usage;
	}
	qsort(t, n, sizeof(*t), target_cmp);
	for (size_t i = 1; i < n; i++)
		if (!target_cmp(&t[i - 1], &t[i])) {
			fprintf(stderr, "mainctl: target %u:%u given twice\n", t[i].town, t[i].meter);
			goto usage;
		}
	if (db(k, k->x->conninfo))
		goto out;
	if (signer(k, keyfile, name, sk))
		goto out;
	if (mpg_exec(&k->p, "BEGIN", 0, NULL))
		goto failed;
	/* every town must exist: one unknown refuses the whole operation */
	for (size_t i = 0; i < n; i++) {
		char a[24];
		const char *v[1] = { I64(a, t[i].town) };

		if (i && t[i].town == t[i - 1].town)
			continue;
		r = mpg_query(&k->p, "SELECT 1 FROM towns WHERE id = $1", 1, v);
		if (!r)
			goto failed;
		if (PQntuples(r) != 1) {
			fprintf(stderr, "mainctl: no town %u\n", t[i].town);
			PQclear(r);
			PQclear(PQexec(k->p.c, "ROLLBACK"));
			goto out;
		}
		PQclear(r);
	}
	r = mpg_query(&k->p, "SELECT nextval('signed_ops')", 0, NULL);
	if (!r)
		goto failed;
	snprintf(op, sizeof(op), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	for (size_t i = 0; i < n; i++) {
		struct gmc_cmd c = { .action = (uint8_t)action, .town = t[i].town,
				     .meter = t[i].meter, .issued = now, .expires = now + life,
				     .arg = arg, .batch = (uint32_t)n };
		uint8_t blob[GMC_LEN_MAX];
		char hex[2 * GMC_LEN_MAX + 1], id[24], is[24], ex[24], ar[24], ba[24];
		char detail[2 * GMC_LEN_MAX + 300];
		int len;

		randombytes_buf(&c.id, sizeof(c.id));
		c.id &= INT64_MAX;
		c.id |= !c.id;
		if (gmc_sign(&c, sk) || (len = gmc_encode(&c, blob, sizeof(blob))) < 0) {
			fprintf(stderr, "mainctl: cannot sign command %zu\n", i + 1);
			PQclear(PQexec(k->p.c, "ROLLBACK"));
			goto out;
		}
		sodium_bin2hex(hex, sizeof(hex), blob, (size_t)len);
		{
			char tw[24], mt[24];
			const char *v[12] = { I64(id, c.id), op, gmc_action_name(action),
					      I64(tw, c.town), I64(mt, c.meter), I64(ar, c.arg),
					      I64(ba, c.batch), I64(is, c.issued), I64(ex, c.expires),
					      name, hex, NULL };

			if (mpg_exec(&k->p, "INSERT INTO signed_commands (id, op, action, town, meter, "
				     "arg, batch, issued, expires, issuer, blob, signers) VALUES ($1, "
				     "$2, $3, $4, $5, $6, $7, to_timestamp($8), to_timestamp($9), $10, "
				     "decode($11, 'hex'), ARRAY[$10])", 11, v))
				goto failed;
		}
		snprintf(detail, sizeof(detail), "command %s %s town %u meter %u: issued by %s in "
			 "operation %s (arg %lld, batch %u, expires %lld); signed bytes %s", id,
			 gmc_action_name(action), c.town, c.meter, name, op, (long long)c.arg,
			 c.batch, (long long)c.expires, hex);
		if (mcmd_audit(&k->p, name, "issued", detail))
			goto failed;
	}
	if (mcmd_release(&k->p, &k->pol, name, now) < 0 || mpg_exec(&k->p, "COMMIT", 0, NULL))
		goto failed;
	printf("operation %s: %zu %s command%s signed by %s\n", op, n, gmc_action_name(action),
	       n == 1 ? "" : "s", name);
	op_summary(k, op);
	rc = 0;
	goto out;
failed:
	rc = fail(k);
	goto out;
usage:
	rc = 2;
out:
	sodium_memzero(sk, sizeof(sk));
	free(t);
	return rc;
}

/* ---- cmd approve ------------------------------------------------------------------------ */

static int refuse_approval(struct ctx *k, const char *op, const char *name, const char *why)
{
	char detail[300];

	fprintf(stderr, "mainctl: not approved: %s\n", why);
	snprintf(detail, sizeof(detail), "operation %s: approval by %s refused: %s", op, name, why);
	PQclear(PQexec(k->p.c, "ROLLBACK"));
	if (mpg_exec(&k->p, "BEGIN", 0, NULL) || mcmd_audit(&k->p, name, "approve-refused", detail) ||
	    mpg_exec(&k->p, "COMMIT", 0, NULL))
		return fail(k);
	return 1;
}

/* The key set the approval checks the first signature against: a file
 * (the one provisioned on meters: what the head end cannot change), else
 * the operators table. */
static int approve_keyset(struct ctx *k, const char *file, struct gmc_keyset *ks)
{
	char err[300];
	PGresult *r;

	if (file) {
		if (gmc_keyset_load(ks, file, err, sizeof(err))) {
			fprintf(stderr, "mainctl: %s\n", err);
			return -1;
		}
		return 0;
	}
	memset(ks, 0, sizeof(*ks));
	r = mpg_query(&k->p, "SELECT name, encode(pk, 'hex') FROM operators WHERE NOT revoked "
		      "ORDER BY id LIMIT 16", 0, NULL);
	if (!r)
		return fail(k), -1;
	for (int i = 0; i < PQntuples(r) && ks->n < GMC_KEYS_MAX; i++) {
		if (gmp_hex_decode(PQgetvalue(r, i, 1), ks->k[ks->n].pk, GMC_PK_LEN))
			continue;
		gmc_fingerprint(ks->k[ks->n].pk, ks->k[ks->n].fpr);
		snprintf(ks->k[ks->n].name, GMC_NAME_MAX, "%s", PQgetvalue(r, i, 0));
		ks->n++;
	}
	PQclear(r);
	return 0;
}

static int cmd_approve(struct ctx *k, int argc, char **args)
{
	const char *keyfile = NULL, *keysetfile = NULL, *op;
	char name[GMC_NAME_MAX], what[300] = "";
	uint8_t sk[GMC_SK_LEN], pk[GMC_PK_LEN], fpr[GMC_FPR_LEN];
	struct gmc_keyset ks;
	struct gmc_cmd first = { 0 };
	struct gmc_policy gp = { k->pol.two_above };
	int64_t now = time(NULL), expires = 0;
	uint64_t opn;
	PGresult *r;
	int n, rc = 1;

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
	memcpy(pk, sk + 32, GMC_PK_LEN);
	gmc_fingerprint(pk, fpr);
	if (approve_keyset(k, keysetfile, &ks) || mpg_exec(&k->p, "BEGIN", 0, NULL))
		goto out;
	r = mpg_query(&k->p, "SELECT id, encode(blob, 'hex') FROM signed_commands WHERE op = $1 "
		      "AND state = 'awaiting-approval' ORDER BY id FOR UPDATE", 1,
		      (const char *const[]){ op });
	if (!r) {
		rc = fail(k);
		goto out;
	}
	n = PQntuples(r);
	if (!n) {
		PQclear(r);
		rc = refuse_approval(k, op, name, "nothing of this operation awaits approval");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		const char *id = PQgetvalue(r, i, 0), *hex = PQgetvalue(r, i, 1);
		uint8_t blob[GMC_LEN_MAX];
		char nhex[2 * GMC_LEN_MAX + 1], detail[2 * GMC_LEN_MAX + 200], why[200];
		size_t hl = strlen(hex);
		struct gmc_cmd c;
		int v, len;

		if (hl % 2 || hl / 2 > sizeof(blob) || gmp_hex_decode(hex, blob, hl / 2) ||
		    gmc_decode(blob, hl / 2, &c)) {
			snprintf(why, sizeof(why), "command %s: its signed bytes do not decode", id);
			goto refused;
		}
		for (unsigned int s = 0; s < c.nsig; s++)
			if (!memcmp(c.sig[s].fpr, fpr, GMC_FPR_LEN)) {
				snprintf(why, sizeof(why), "%s already signed command %s: a second, "
					 "different operator must approve", name, id);
				goto refused;
			}
		/* the first signature must be an operator's, from the key set trusted */
		v = gmc_verify(&c, &ks, &gp, c.town, c.meter, now);
		if (v && !(v == GMP_CMD_NEED_TWO && c.nsig == 1)) {
			snprintf(why, sizeof(why), "command %s does not verify against the %s (status "
				 "%d)", id, keysetfile ? keysetfile : "operators", v);
			goto refused;
		}
		/* one operation is one signed intent: same action, times, argument and
		 * batch everywhere, as many commands as its batch says (a head end
		 * that slipped another command into it is caught here) */
		if (i && (c.action != first.action || c.issued != first.issued ||
			  c.expires != first.expires || c.arg != first.arg || c.batch != first.batch ||
			  memcmp(c.sig[0].fpr, first.sig[0].fpr, GMC_FPR_LEN))) {
			snprintf(why, sizeof(why), "command %s differs from the rest of the operation", id);
			goto refused;
		}
		if (!i && (int64_t)c.batch != n) {
			snprintf(why, sizeof(why), "%d commands await approval but their signed batch "
				 "is %u", n, c.batch);
			goto refused;
		}
		if (!i) {
			char signers[80];

			first = c;
			gmc_signers(&c, &ks, signers, sizeof(signers));
			snprintf(what, sizeof(what), "%s, %u target%s, first signed by %s",
				 gmc_action_name(c.action), c.batch, c.batch == 1 ? "" : "s", signers);
			expires = c.expires;
		}
		if (gmc_sign(&c, sk) || (len = gmc_encode(&c, blob, sizeof(blob))) < 0) {
			snprintf(why, sizeof(why), "command %s cannot take another signature", id);
			goto refused;
		}
		sodium_bin2hex(nhex, sizeof(nhex), blob, (size_t)len);
		{
			const char *w[3] = { id, nhex, name };

			if (mpg_exec(&k->p, "UPDATE signed_commands SET blob = decode($2, 'hex'), "
				     "signers = array_append(signers, $3), updated = now() WHERE "
				     "id = $1", 3, w))
				goto failed;
		}
		snprintf(detail, sizeof(detail), "command %s %s town %u meter %u: approved by %s "
			 "(operation %s); signed bytes %s", id, gmc_action_name(c.action), c.town,
			 c.meter, name, op, nhex);
		if (mcmd_audit(&k->p, name, "approved", detail))
			goto failed;
		continue;
refused:
		PQclear(r);
		rc = refuse_approval(k, op, name, why);
		goto out;
	}
	PQclear(r);
	if (mcmd_release(&k->p, &k->pol, name, now) < 0 || mpg_exec(&k->p, "COMMIT", 0, NULL))
		goto failed;
	printf("operation %s approved by %s: %d command%s (%s; expires in %lld s)\n", op, name, n,
	       n == 1 ? "" : "s", what, (long long)(expires - now));
	op_summary(k, op);
	rc = 0;
	goto out;
failed:
	rc = fail(k);
out:
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
