// SPDX-License-Identifier: GPL-2.0
/*
 * The two ways operators sign commands store them the same way
 * (commands/cmd_submit.c): mainctl, which signs with the key file
 * (`mainctl cmd issue/approve`, its own handlers), and the portal, whose
 * page has the operator's browser sign the bytes the server prepared
 * (mcmd_prepare, the signatures made here from the key file's seed as
 * gm-sign.js does with WebCrypto, gmc_add_signature, mcmd_submit,
 * mcmd_approve_load/_store). Against a real PostgreSQL 15.
 *
 * parity: the same mass disconnect (12 meters, above two_above) issued by
 * alice and approved by bob through each path gives the same rows (state,
 * signers, reasons, queue) and the same audit lines, ids and bytes aside;
 * both blobs verify at their meters with two signatures.
 *
 * refusals: a body changed after it was signed, a signature of another
 * operator, a flipped signature bit, a revoked operator, an operation
 * mixing two intents: nothing stored, the refusal audited; the issuer
 * cannot approve their own operation; an approval of an operation that
 * changed between the page and the signatures is refused; a second
 * signature by a key other than the approver's is refused.
 *
 * Skipped (with a message) only when PostgreSQL 15's binaries are absent.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "commands/cmd.h"
#include "gmcmd.h"
#include "gmproto.h"
#include "mainctl_parts.h"
#include "maind_pg.h"
#include "pg_scratch.h"

#define TOWN	11
#define NT	12	/* targets of the mass disconnect (two_above is 10) */

static const char *const names[3] = { "alice", "bob", "carol" };

struct world {
	char dir[64], pgdir[128], primary[256];
	struct maind_config cfg;
	struct mcmd_policy pol;
	struct maind_pg p;
	char key[3][128];
};

/* mainctl's handlers with stdout into out */
static int mainctl(struct world *w, char *out, size_t outlen, int argc, char **args)
{
	const struct mainctl_ctx x = { w->primary, w->primary, &w->cfg };
	char path[128];
	int rc, saved, fd;

	snprintf(path, sizeof(path), "%s/stdout", w->dir);
	fflush(stdout);
	saved = dup(1);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	dup2(fd, 1);
	close(fd);
	rc = mctl_cmd(&x, args[0], argc - 1, args + 1);
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

/*
 * What gm-sign.js does with the key file: its one line "NAME HEX", the
 * seed (first 32 bytes) made into a key, the file's public key checked
 * against it, Ed25519 over the page's message (gmc_signed_bytes). 0 or -1.
 */
static int browser_sign(const char *keyfile, const struct gmc_cmd *c, uint8_t sig[GMC_SIG_LEN])
{
	char line[256], name[64], hex[160];
	uint8_t key[64], pk[GMC_PK_LEN], sk[GMC_SK_LEN], m[sizeof(GMC_DOMAIN) + GMC_BODY_LEN];
	size_t ml = gmc_signed_bytes(c, m, sizeof(m));
	FILE *f = fopen(keyfile, "r");
	int rc = -1;

	if (!f)
		return -1;
	if (fgets(line, sizeof(line), f) && sscanf(line, "%63s %159s", name, hex) == 2 &&
	    strlen(hex) == 128 && !gmp_hex_decode(hex, key, 64) &&
	    !crypto_sign_seed_keypair(pk, sk, key) && !memcmp(pk, key + 32, GMC_PK_LEN) &&
	    !crypto_sign_detached(sig, NULL, m, ml, sk))
		rc = 0;
	fclose(f);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(sk, sizeof(sk));
	return rc;
}

static int registered_pk(struct world *w, int who, uint8_t pk[GMC_PK_LEN])
{
	char sql[160], hex[80];

	snprintf(sql, sizeof(sql), "SELECT encode(pk, 'hex') FROM operators WHERE name = '%s'",
		 names[who]);
	return pgs(w->primary, sql, hex, sizeof(hex)) || gmp_hex_decode(hex, pk, GMC_PK_LEN) ?
	       -1 : 0;
}

/* The portal's issue: prepared bodies, signed "in the browser", attached, stored. */
static int portal_issue(struct world *w, int who, int action, const struct mcmd_target *t,
			size_t n, int64_t life, struct gmc_cmd *c, char op[MCMD_OP_LEN], char *why,
			size_t whylen)
{
	uint8_t pk[GMC_PK_LEN], sig[GMC_SIG_LEN];
	int64_t now = time(NULL);

	if (mcmd_prepare(c, t, n, action, 0, now, life) || registered_pk(w, who, pk))
		return -2;
	for (size_t i = 0; i < n; i++)
		if (browser_sign(w->key[who], &c[i], sig) || gmc_add_signature(&c[i], pk, sig))
			return -3;
	return mcmd_submit(&w->p, &w->pol, names[who], c, n, now, op, why, whylen);
}

/* The portal's approval: the page shows o, the browser signs, the server stores. */
static int portal_approve(struct world *w, int who, const char *op, char *why, size_t whylen)
{
	struct mcmd_op o;
	uint8_t pk[GMC_PK_LEN], sig[GMC_SIG_LEN];
	int64_t now = time(NULL);
	int rc = mcmd_approve_load(&w->p, &w->pol, NULL, NULL, op, names[who], now, &o, why,
				   whylen);

	if (rc)
		return rc;
	if (registered_pk(w, who, pk))
		rc = -2;
	for (size_t i = 0; !rc && i < o.n; i++)
		if (browser_sign(w->key[who], &o.c[i], sig) || gmc_add_signature(&o.c[i], pk, sig))
			rc = -3;
	if (!rc)
		rc = mcmd_approve_store(&w->p, &w->pol, NULL, NULL, &o, names[who], now, why, whylen);
	mcmd_op_free(&o);
	return rc;
}

FIXTURE(submit) {
	struct world *w;
	bool pg;
};

FIXTURE_SETUP(submit)
{
	struct world *w;
	char err[768], sql[256], out[512];

	self->pg = pg_available();
	if (!self->pg)
		return;
	ASSERT_LE(0, sodium_init());
	w = self->w = calloc(1, sizeof(*w));
	ASSERT_NE(NULL, w);
	ASSERT_EQ(0, scratch_dir(w->dir, sizeof(w->dir), "cmd-submit"));
	ASSERT_EQ(0, pg_cluster_start(w->dir, w->pgdir, sizeof(w->pgdir), w->primary,
				      sizeof(w->primary)));
	maind_config_defaults(&w->cfg);
	snprintf(w->cfg.conninfo, sizeof(w->cfg.conninfo), "%s", w->primary);
	mcmd_policy_of(&w->cfg, &w->pol);
	ASSERT_EQ(GMC_TWO_ABOVE, (int)w->pol.two_above);
	ASSERT_EQ(0, pg_schema(w->primary, err, sizeof(err))) TH_LOG("%s", err);
	for (int i = 0; i < 3; i++) {
		char *kg[] = { "op-keygen", (char *)names[i], w->key[i] }, *sp, *add[4];

		snprintf(w->key[i], sizeof(w->key[i]), "%s/%s.key", w->dir, names[i]);
		ASSERT_EQ(0, mainctl(w, out, sizeof(out), 3, kg));
		sp = strchr(out, ' ');
		ASSERT_NE(NULL, sp);
		sp[65] = '\0';
		add[0] = "op-add";
		add[1] = (char *)names[i];
		add[2] = sp + 1;
		ASSERT_EQ(0, mainctl(w, NULL, 0, 3, add));
	}
	snprintf(sql, sizeof(sql), "INSERT INTO towns (id, name, pk) VALUES (%d, 'town', "
		 "decode(repeat('ab', 32), 'hex'))", TOWN);
	ASSERT_EQ(0, pgx(w->primary, sql));
	w->p.c = PQconnectdb(w->primary);
	ASSERT_EQ(CONNECTION_OK, PQstatus(w->p.c));
}

FIXTURE_TEARDOWN(submit)
{
	struct world *w = self->w;

	if (!self->pg)
		return;
	PQfinish(w->p.c);
	pg_cluster_stop(w->pgdir);
	scratch_remove(w->dir);
	free(w);
}

/* An operation's rows, ids and times aside, one line per command by target. */
static void op_rows(struct world *w, int64_t op, char *out, size_t len)
{
	char sql[1024];

	snprintf(sql, sizeof(sql), "SELECT string_agg(concat_ws('|', action, town, meter, arg, "
		 "batch, issuer, array_to_string(signers, '+'), state, reason, status, status_text, "
		 "town_tseq IS NOT NULL, queued_at IS NOT NULL, expires - issued, length(blob)), "
		 "E'\\n' ORDER BY town, meter) FROM signed_commands WHERE op = %lld", (long long)op);
	pgs(w->primary, sql, out, len);
}

/* The audit lines about an operation's commands, with ids, numbers and bytes as words. */
static void op_audit(struct world *w, int64_t op, char *out, size_t len)
{
	char sql[1536];

	snprintf(sql, sizeof(sql), "WITH a AS (SELECT what, actor, regexp_replace(regexp_replace("
		 "regexp_replace(regexp_replace(regexp_replace(detail, '^command [0-9]+', "
		 "'command ID'), 'signed bytes [0-9a-f]+', 'signed bytes HEX'), 'operation [0-9]+', "
		 "'operation OP'), 'expires [0-9]+', 'expires T'), 'its command [0-9]+', "
		 "'its command TSEQ') AS d FROM audit_log WHERE rtrim(split_part(detail, ' ', 2), "
		 "':') IN (SELECT id::text FROM signed_commands WHERE op = %lld)) "
		 "SELECT count(*) || E'\\n' || string_agg(what || '|' || actor || '|' || d, E'\\n' "
		 "ORDER BY what, d) FROM a", (long long)op);
	pgs(w->primary, sql, out, len);
}

/* Both blobs of an operation carry two signatures and verify at their meters. */
static int verified(struct world *w, int64_t op)
{
	char sql[256];
	struct gmc_keyset ks = { 0 };
	struct gmc_policy gp = { GMC_TWO_ABOVE };
	PGconn *c = PQconnectdb(w->primary);
	PGresult *r;
	int ok = 0;

	for (int i = 0; i < 3; i++) {
		registered_pk(w, i, ks.k[i].pk);
		gmc_fingerprint(ks.k[i].pk, ks.k[i].fpr);
		snprintf(ks.k[i].name, GMC_NAME_MAX, "%s", names[i]);
	}
	ks.n = 3;
	snprintf(sql, sizeof(sql), "SELECT encode(c.blob, 'hex'), s.meter FROM commands c JOIN "
		 "signed_commands s ON c.cmd_id = s.id WHERE s.op = %lld", (long long)op);
	r = PQexec(c, sql);
	for (int i = 0; i < PQntuples(r); i++) {
		uint8_t b[GMC_LEN_MAX];
		size_t hl = strlen(PQgetvalue(r, i, 0));
		struct gmc_cmd g;

		if (hl / 2 <= sizeof(b) && !gmp_hex_decode(PQgetvalue(r, i, 0), b, hl / 2) &&
		    !gmc_decode(b, hl / 2, &g) && g.nsig == 2 &&
		    !gmc_verify(&g, &ks, &gp, TOWN, (uint16_t)atoi(PQgetvalue(r, i, 1)), time(NULL)))
			ok++;
	}
	PQclear(r);
	PQfinish(c);
	return ok;
}

static int64_t last_op(struct world *w)
{
	return pg1(w->primary, "SELECT max(op) FROM signed_commands");
}

static void parity(struct __test_metadata *_metadata, struct world *w)
{
	char out[4096], why[300], op[MCMD_OP_LEN], opm[24], ra[8192], rb[8192];
	char aa[16384], ab[16384], tb[NT][16];
	char *args[NT + 6] = { "cmd", "issue", "disconnect" };
	struct mcmd_target t[NT];
	struct gmc_cmd c[NT];
	int64_t op_m, op_p;
	int n = 3;

	/* mainctl: alice issues, bob approves */
	for (int i = 0; i < NT; i++) {
		snprintf(tb[i], sizeof(tb[i]), "%d:%d", TOWN, i + 1);
		args[n++] = tb[i];
	}
	args[n++] = "--key";
	args[n++] = w->key[0];
	ASSERT_EQ(0, mainctl(w, out, sizeof(out), n, args)) TH_LOG("%s", out);
	op_m = last_op(w);
	snprintf(opm, sizeof(opm), "%lld", (long long)op_m);
	/* the portal: the same targets (given in another order), alice's browser */
	for (int i = 0; i < NT; i++)
		ASSERT_EQ(0, mcmd_target_parse(tb[NT - 1 - i], false, &t[i]));
	{
		struct mcmd_target dup;

		ASSERT_EQ(0, mcmd_targets_sort(t, NT, &dup));
	}
	ASSERT_EQ(0, portal_issue(w, 0, GMC_DISCONNECT, t, NT, 15 * 60, c, op, why, sizeof(why)))
		TH_LOG("%s %s", why, w->p.err);
	op_p = strtoll(op, NULL, 10);
	ASSERT_EQ(op_m + 1, op_p);
	/* waiting for the second operator, the same way */
	op_rows(w, op_m, ra, sizeof(ra));
	op_rows(w, op_p, rb, sizeof(rb));
	EXPECT_STREQ(ra, rb);
	EXPECT_NE(NULL, strstr(rb, "awaiting-approval|needs a second operator"));
	EXPECT_EQ(NT, pg1(w->primary, "SELECT count(*) FROM signed_commands WHERE state = "
			  "'awaiting-approval' AND op = (SELECT max(op) FROM signed_commands)"));
	op_audit(w, op_m, aa, sizeof(aa));
	op_audit(w, op_p, ab, sizeof(ab));
	EXPECT_STREQ(aa, ab);
	EXPECT_EQ(2 * NT, atoi(ab));	/* issued and waiting, each */
	/* bob approves each: mainctl, and in the portal */
	{
		char *ap[] = { "cmd", "approve", opm, "--key", w->key[1] };

		ASSERT_EQ(0, mainctl(w, out, sizeof(out), 5, ap)) TH_LOG("%s", out);
	}
	ASSERT_EQ(0, portal_approve(w, 1, op, why, sizeof(why))) TH_LOG("%s %s", why, w->p.err);
	op_rows(w, op_m, ra, sizeof(ra));
	op_rows(w, op_p, rb, sizeof(rb));
	EXPECT_STREQ(ra, rb);
	EXPECT_NE(NULL, strstr(rb, "alice+bob|queued"));
	op_audit(w, op_m, aa, sizeof(aa));
	op_audit(w, op_p, ab, sizeof(ab));
	EXPECT_STREQ(aa, ab);
	EXPECT_EQ(4 * NT, atoi(ab));	/* + approved, queued */
	EXPECT_EQ(NT, verified(w, op_m));
	EXPECT_EQ(NT, verified(w, op_p));
}

static void refusals(struct __test_metadata *_metadata, struct world *w)
{
	char why[300], op[MCMD_OP_LEN], opbuf[MCMD_OP_LEN];
	struct mcmd_target t[NT];
	struct gmc_cmd c[NT], d[NT];
	uint8_t pk[2][GMC_PK_LEN], sig[GMC_SIG_LEN];
	int64_t now = time(NULL), rows, audits;

	for (int i = 0; i < NT; i++)
		t[i] = (struct mcmd_target){ TOWN, (uint16_t)(100 + i) };
	ASSERT_EQ(0, registered_pk(w, 0, pk[0]));
	ASSERT_EQ(0, registered_pk(w, 1, pk[1]));
	ASSERT_EQ(0, mcmd_prepare(c, t, NT, GMC_DISCONNECT, 0, now, 600));
	for (int i = 0; i < NT; i++) {
		ASSERT_EQ(0, browser_sign(w->key[0], &c[i], sig));
		ASSERT_EQ(0, gmc_add_signature(&c[i], pk[0], sig));
	}
	rows = pg1(w->primary, "SELECT count(*) FROM signed_commands");
	/* a body changed after alice signed it: another meter */
	memcpy(d, c, sizeof(c));
	d[5].meter = 200;
	EXPECT_EQ(1, mcmd_submit(&w->p, &w->pol, "alice", d, NT, now, op, why, sizeof(why)));
	TH_LOG("%s", why);
	EXPECT_NE(NULL, strstr(why, "command 6"));
	EXPECT_NE(NULL, strstr(why, "not alice's"));
	/* a later expiry */
	memcpy(d, c, sizeof(c));
	for (int i = 0; i < NT; i++)
		d[i].expires += 60;
	EXPECT_EQ(1, mcmd_submit(&w->p, &w->pol, "alice", d, NT, now, op, why, sizeof(why)));
	/* a flipped bit in a signature */
	memcpy(d, c, sizeof(c));
	d[11].sig[0].sig[40] ^= 0x10;
	EXPECT_EQ(1, mcmd_submit(&w->p, &w->pol, "alice", d, NT, now, op, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "command 12"));
	/* alice's signatures handed in as bob's */
	EXPECT_EQ(1, mcmd_submit(&w->p, &w->pol, "bob", c, NT, now, op, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "not bob's"));
	/* nothing stored, every attempt audited */
	EXPECT_EQ(rows, pg1(w->primary, "SELECT count(*) FROM signed_commands"));
	EXPECT_EQ(4, pg1(w->primary, "SELECT count(*) FROM audit_log WHERE what = "
			 "'issue-refused'"));
	/* an operation that is not one intent, a short batch, a duplicate target */
	memcpy(d, c, sizeof(c));
	d[3].action = GMC_RECONNECT;
	EXPECT_EQ(1, mcmd_submit(&w->p, &w->pol, "alice", d, NT, now, op, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "differs from the first"));
	EXPECT_EQ(1, mcmd_submit(&w->p, &w->pol, "alice", c, NT - 1, now, op, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "batch is 12 but 11"));
	memcpy(d, c, sizeof(c));
	d[2] = d[1];
	EXPECT_EQ(1, mcmd_submit(&w->p, &w->pol, "alice", d, NT, now, op, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "given twice"));
	/* stored too late: expired */
	EXPECT_EQ(1, mcmd_submit(&w->p, &w->pol, "alice", c, NT, now + 600, op, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "expired"));
	EXPECT_EQ(rows, pg1(w->primary, "SELECT count(*) FROM signed_commands"));
	/* as signed: stored */
	ASSERT_EQ(0, mcmd_submit(&w->p, &w->pol, "alice", c, NT, now, op, why, sizeof(why)))
		TH_LOG("%s", why);
	EXPECT_EQ(rows + NT, pg1(w->primary, "SELECT count(*) FROM signed_commands"));
	/* the same commands again: their ids exist (a replay is a database refusal) */
	EXPECT_EQ(-1, mcmd_submit(&w->p, &w->pol, "alice", c, NT, now, opbuf, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(w->p.err, "signed_commands_pkey")) TH_LOG("%s", w->p.err);
	EXPECT_EQ(rows + NT, pg1(w->primary, "SELECT count(*) FROM signed_commands"));

	/* the issuer cannot approve it */
	audits = pg1(w->primary, "SELECT count(*) FROM audit_log WHERE what = 'approve-refused'");
	EXPECT_EQ(1, portal_approve(w, 0, op, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "alice already signed"));
	EXPECT_EQ(audits + 1, pg1(w->primary, "SELECT count(*) FROM audit_log WHERE what = "
				  "'approve-refused' AND actor = 'alice'"));
	/* bob's page; carol's signatures handed in as bob's: refused */
	{
		struct mcmd_op o;

		ASSERT_EQ(0, mcmd_approve_load(&w->p, &w->pol, NULL, NULL, op, "bob", now, &o, why,
					       sizeof(why)));
		ASSERT_EQ((size_t)NT, o.n);
		EXPECT_NE(NULL, strstr(o.what, "disconnect, 12 targets, first signed by alice"));
		for (size_t i = 0; i < o.n; i++) {
			uint8_t cpk[GMC_PK_LEN];

			ASSERT_EQ(0, registered_pk(w, 2, cpk));
			ASSERT_EQ(0, browser_sign(w->key[2], &o.c[i], sig));
			ASSERT_EQ(0, gmc_add_signature(&o.c[i], cpk, sig));
		}
		EXPECT_EQ(1, mcmd_approve_store(&w->p, &w->pol, NULL, NULL, &o, "bob", now, why,
						sizeof(why)));
		EXPECT_NE(NULL, strstr(why, "not bob's"));
		mcmd_op_free(&o);
	}
	/* bob's page, then a command of the operation cancelled before his signatures came */
	{
		struct mcmd_op o;
		char sql[200];

		ASSERT_EQ(0, mcmd_approve_load(&w->p, &w->pol, NULL, NULL, op, "bob", now, &o, why,
					       sizeof(why)));
		for (size_t i = 0; i < o.n; i++) {
			ASSERT_EQ(0, browser_sign(w->key[1], &o.c[i], sig));
			ASSERT_EQ(0, gmc_add_signature(&o.c[i], pk[1], sig));
		}
		snprintf(sql, sizeof(sql), "UPDATE signed_commands SET state = 'cancelled' WHERE "
			 "id = %llu", (unsigned long long)o.c[4].id);
		ASSERT_EQ(0, pgx(w->primary, sql));
		EXPECT_EQ(1, mcmd_approve_store(&w->p, &w->pol, NULL, NULL, &o, "bob", now, why,
						sizeof(why)));
		TH_LOG("%s", why);
		snprintf(sql, sizeof(sql), "UPDATE signed_commands SET state = 'awaiting-approval' "
			 "WHERE id = %llu", (unsigned long long)o.c[4].id);
		ASSERT_EQ(0, pgx(w->primary, sql));
		/* a second signature made over another body (bob was shown other bytes) */
		{
			struct gmc_cmd other = o.c[7];

			other.nsig = 0;
			other.expires += 1;
			ASSERT_EQ(0, browser_sign(w->key[1], &other, o.c[7].sig[1].sig));
		}
		EXPECT_EQ(1, mcmd_approve_store(&w->p, &w->pol, NULL, NULL, &o, "bob", now, why,
						sizeof(why)));
		EXPECT_NE(NULL, strstr(why, "bad-signature")) TH_LOG("%s", why);
		mcmd_op_free(&o);
	}
	EXPECT_EQ(NT, pg1(w->primary, "SELECT count(*) FROM signed_commands WHERE state = "
			  "'awaiting-approval' AND array_length(signers, 1) = 1 AND meter >= 100"));
	EXPECT_EQ(audits + 4, pg1(w->primary, "SELECT count(*) FROM audit_log WHERE what = "
				  "'approve-refused'"));
	/* carol, revoked, cannot approve; her attempt is audited and alerted */
	{
		char *rv[] = { "op-revoke", "carol" };

		ASSERT_EQ(0, mainctl(w, NULL, 0, 2, rv));
	}
	EXPECT_EQ(1, portal_approve(w, 2, op, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "revoked"));
	EXPECT_EQ(1, pg1(w->primary, "SELECT count(*) FROM audit_log WHERE what = 'sign-refused' "
			 "AND actor = 'carol'"));
	EXPECT_EQ(1, pg1(w->primary, "SELECT count(*) FROM alerts WHERE rule = "
			 "'cmd-revoked-key'"));
	/* an operation number that is not one */
	EXPECT_EQ(1, portal_approve(w, 1, "12; DROP", why, sizeof(why)));
	/* bob, as shown: queued, two signatures each */
	ASSERT_EQ(0, portal_approve(w, 1, op, why, sizeof(why))) TH_LOG("%s %s", why, w->p.err);
	snprintf(opbuf, sizeof(opbuf), "%s", op);
	EXPECT_EQ(NT, verified(w, strtoll(opbuf, NULL, 10)));
	/* and the chain of it all verifies */
	{
		struct mcmd_audit_check ck;

		EXPECT_EQ(0, mcmd_audit_verify(&w->p, &ck)) TH_LOG("%s", ck.why);
	}
}

/* One cluster for both parts: its start is most of the time. */
TEST_F(submit, portal_and_mainctl_paths)
{
	if (!self->pg)
		SKIP(return, PG_SKIP_WHY);
	parity(_metadata, self->w);
	refusals(_metadata, self->w);
}

TEST_HARNESS_MAIN
