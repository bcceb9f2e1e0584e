// SPDX-License-Identifier: GPL-2.0
/*
 * From signed commands to signed_commands (cmd.h "storing what operators
 * signed"): the storing half of issuing and approving, shared by mainctl
 * (which signs with the operator's key file) and the portal (whose pages
 * have the operator's browser sign). Whoever signed, the head end checks
 * the same things here, writes the same rows and audit lines and releases
 * by the same rules; it never holds an operator's secret.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cmd.h"

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))

/* ---- targets and unsigned bodies -------------------------------------------------------- */

int mcmd_target_parse(const char *s, bool town_action, struct mcmd_target *t)
{
	char buf[32], *colon, *end;
	unsigned long town, meter = 0;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	colon = strchr(buf, ':');
	if (colon)
		*colon = '\0';
	if (buf[0] < '0' || buf[0] > '9')
		return -1;
	town = strtoul(buf, &end, 10);
	if (*end || town < 1 || town > 65534)
		return -1;
	if (town_action) {
		if (colon)
			return -1;
	} else {
		if (!colon || colon[1] < '0' || colon[1] > '9')
			return -1;
		meter = strtoul(colon + 1, &end, 10);
		if (*end || meter < 1 || meter > 65535)
			return -1;
	}
	t->town = (uint16_t)town;
	t->meter = (uint16_t)meter;
	return 0;
}

static int target_cmp(const void *a, const void *b)
{
	const struct mcmd_target *x = a, *y = b;

	return x->town != y->town ? x->town - y->town : x->meter - y->meter;
}

int mcmd_targets_sort(struct mcmd_target *t, size_t n, struct mcmd_target *dup)
{
	qsort(t, n, sizeof(*t), target_cmp);
	for (size_t i = 1; i < n; i++)
		if (!target_cmp(&t[i - 1], &t[i])) {
			*dup = t[i];
			return -1;
		}
	return 0;
}

int mcmd_prepare(struct gmc_cmd *c, const struct mcmd_target *t, size_t n, int action,
		 int64_t arg, int64_t now, int64_t life)
{
	if (!n || n > MCMD_TARGETS_MAX || life < 1 || life > GMC_LIFETIME_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		uint8_t blob[GMC_LEN_MAX];
		struct gmc_cmd probe;

		c[i] = (struct gmc_cmd){ .action = (uint8_t)action, .town = t[i].town,
					 .meter = t[i].meter, .issued = now, .expires = now + life,
					 .arg = arg, .batch = (uint32_t)n };
		randombytes_buf(&c[i].id, sizeof(c[i].id));
		c[i].id &= INT64_MAX;
		c[i].id |= !c[i].id;
		/* the fields' ranges, as the wire form checks them */
		probe = c[i];
		probe.nsig = 1;
		if (gmc_encode(&probe, blob, sizeof(blob)) < 0)
			return -1;
	}
	return 0;
}

/* ---- common ------------------------------------------------------------------------------ */

static void rollback(struct maind_pg *p)
{
	if (PQtransactionStatus(p->c) != PQTRANS_IDLE)
		PQclear(PQexec(p->c, "ROLLBACK"));
}

/* -1 after a database error: rolled back, p->err kept */
static int db_failed(struct maind_pg *p)
{
	char err[sizeof(p->err)];

	memcpy(err, p->err, sizeof(err));
	rollback(p);
	memcpy(p->err, err, sizeof(err));
	return -1;
}

/* A refusal: the transaction rolled back; with what, an audit line in a new one. */
static int refused(struct maind_pg *p, const char *actor, const char *what, const char *detail)
{
	rollback(p);
	if (!what)
		return 1;
	if (mpg_exec(p, "BEGIN", 0, NULL) || mcmd_audit(p, actor, what, detail) ||
	    mpg_exec(p, "COMMIT", 0, NULL))
		return db_failed(p);
	return 1;
}

int mcmd_sign_refused(struct maind_pg *p, const char *name)
{
	char detail[300], key[80];

	snprintf(detail, sizeof(detail), "operator %s tried to sign with a revoked key", name);
	snprintf(key, sizeof(key), "cmd-revoked-key:%s", name);
	if (mpg_exec(p, "BEGIN", 0, NULL) || mcmd_audit(p, name, "sign-refused", detail) ||
	    mcmd_alert(p, "cmd-revoked-key", -1, -1, "critical", detail, "{}", key) < 0 ||
	    mpg_exec(p, "COMMIT", 0, NULL))
		return db_failed(p);
	return 0;
}

/*
 * name's registered key (the operators table): 0, 1 refused (unknown;
 * revoked: mcmd_sign_refused), -1.
 */
static int operator_key(struct maind_pg *p, const char *name, uint8_t pk[GMC_PK_LEN], char *why,
			size_t whylen)
{
	const char *v[1] = { name };
	PGresult *r = mpg_query(p, "SELECT encode(pk, 'hex'), revoked FROM operators WHERE name = $1",
				1, v);
	bool revoked;

	if (!r)
		return -1;
	if (PQntuples(r) != 1 || gmp_hex_decode(PQgetvalue(r, 0, 0), pk, GMC_PK_LEN)) {
		PQclear(r);
		snprintf(why, whylen, "%s is not a registered operator (mainctl op-add)", name);
		return 1;
	}
	revoked = PQgetvalue(r, 0, 1)[0] == 't';
	PQclear(r);
	if (revoked) {
		snprintf(why, whylen, "operator %s's key is revoked: it cannot sign", name);
		return mcmd_sign_refused(p, name) ? -1 : 1;
	}
	return 0;
}

static int hex_of(const struct gmc_cmd *c, char hex[2 * GMC_LEN_MAX + 1])
{
	uint8_t blob[GMC_LEN_MAX];
	int len = gmc_encode(c, blob, sizeof(blob));

	if (len < 0)
		return -1;
	sodium_bin2hex(hex, 2 * GMC_LEN_MAX + 1, blob, (size_t)len);
	return 0;
}

static bool same_intent(const struct gmc_cmd *a, const struct gmc_cmd *b)
{
	return a->action == b->action && a->issued == b->issued && a->expires == b->expires &&
	       a->arg == b->arg && a->batch == b->batch;
}

static int id_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- issue -------------------------------------------------------------------------------- */

/* What can be judged without the database: 0, or 1 with why. */
static int check_operation(const struct gmc_cmd *c, size_t n, int64_t now, char *why,
			   size_t whylen)
{
	struct mcmd_target *t, dup;
	uint64_t *ids;
	int rc = 1;

	if (!n || n > MCMD_TARGETS_MAX) {
		snprintf(why, whylen, "an operation has 1 to %d commands, not %zu", MCMD_TARGETS_MAX, n);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		char hex[2 * GMC_LEN_MAX + 1];

		if (c[i].nsig != 1) {
			snprintf(why, whylen, "command %zu carries %u signatures: an operation is "
				 "issued with its first", i + 1, c[i].nsig);
			return 1;
		}
		if (hex_of(&c[i], hex)) {
			snprintf(why, whylen, "command %zu's fields are out of range", i + 1);
			return 1;
		}
		if (!same_intent(&c[i], &c[0])) {
			snprintf(why, whylen, "command %zu differs from the first: one operation has "
				 "one action, issue and expiry time, argument and batch", i + 1);
			return 1;
		}
	}
	if (c[0].batch != n) {
		snprintf(why, whylen, "the commands' signed batch is %u but %zu are given", c[0].batch,
			 n);
		return 1;
	}
	if (c[0].expires - c[0].issued < 1 || c[0].expires - c[0].issued > GMC_LIFETIME_MAX) {
		snprintf(why, whylen, "a command lives 1 s to %d s, not %lld s", GMC_LIFETIME_MAX,
			 (long long)(c[0].expires - c[0].issued));
		return 1;
	}
	if (now >= c[0].expires) {
		snprintf(why, whylen, "the commands expired %lld s ago, before they were stored",
			 (long long)(now - c[0].expires));
		return 1;
	}
	if (c[0].issued > now + GMC_SKEW_S) {
		snprintf(why, whylen, "the commands are issued %lld s in the future",
			 (long long)(c[0].issued - now));
		return 1;
	}
	t = malloc(n * sizeof(*t));
	ids = malloc(n * sizeof(*ids));
	if (!t || !ids) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		t[i] = (struct mcmd_target){ c[i].town, c[i].meter };
		ids[i] = c[i].id;
	}
	if (mcmd_targets_sort(t, n, &dup)) {
		snprintf(why, whylen, "target %u:%u given twice", dup.town, dup.meter);
		goto out;
	}
	qsort(ids, n, sizeof(*ids), id_cmp);
	for (size_t i = 1; i < n; i++)
		if (ids[i] == ids[i - 1]) {
			snprintf(why, whylen, "command id %llu given twice", (unsigned long long)ids[i]);
			goto out;
		}
	rc = 0;
out:
	free(t);
	free(ids);
	return rc;
}

int mcmd_submit(struct maind_pg *p, const struct mcmd_policy *pol, const char *operator_name,
		const struct gmc_cmd *c, size_t n, int64_t now, char op[MCMD_OP_LEN],
		char *why, size_t whylen)
{
	uint8_t pk[GMC_PK_LEN];
	PGresult *r;
	int rc;

	op[0] = '\0';
	if (check_operation(c, n, now, why, whylen))
		return 1;
	rc = operator_key(p, operator_name, pk, why, whylen);
	if (rc)
		return rc;
	/* each first signature: this operator's, over these very bytes */
	for (size_t i = 0; i < n; i++) {
		struct gmc_cmd u = c[i];
		char detail[400];
		int v;

		u.nsig = 0;
		v = gmc_add_signature(&u, pk, c[i].sig[0].sig);
		if (!v && !memcmp(u.sig[0].fpr, c[i].sig[0].fpr, GMC_FPR_LEN))
			continue;
		snprintf(why, whylen, "command %zu (%s town %u meter %u): the signature is not "
			 "%s's over these bytes (%s)", i + 1, gmc_action_name(c[i].action), c[i].town,
			 c[i].meter, operator_name, v ? gmc_status_name(v) : "another key's");
		snprintf(detail, sizeof(detail), "operation of %zu %s commands refused: %s", n,
			 gmc_action_name(c[0].action), why);
		return refused(p, operator_name, "issue-refused", detail);
	}
	if (mpg_exec(p, "BEGIN", 0, NULL))
		return db_failed(p);
	/* every town must exist: one unknown refuses the whole operation */
	for (size_t i = 0; i < n; i++) {
		char a[24];
		const char *v[1] = { I64(a, c[i].town) };

		if (i && c[i].town == c[i - 1].town)
			continue;
		r = mpg_query(p, "SELECT 1 FROM towns WHERE id = $1", 1, v);
		if (!r)
			return db_failed(p);
		rc = PQntuples(r);
		PQclear(r);
		if (rc != 1) {
			snprintf(why, whylen, "no town %u", c[i].town);
			return refused(p, operator_name, NULL, NULL);
		}
	}
	r = mpg_query(p, "SELECT nextval('signed_ops')", 0, NULL);
	if (!r)
		return db_failed(p);
	snprintf(op, MCMD_OP_LEN, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	for (size_t i = 0; i < n; i++) {
		char hex[2 * GMC_LEN_MAX + 1], id[24], is[24], ex[24], ar[24], ba[24], tw[24], mt[24];
		char detail[2 * GMC_LEN_MAX + 300];
		const char *v[11] = { I64(id, c[i].id), op, gmc_action_name(c[i].action),
				      I64(tw, c[i].town), I64(mt, c[i].meter), I64(ar, c[i].arg),
				      I64(ba, c[i].batch), I64(is, c[i].issued), I64(ex, c[i].expires),
				      operator_name, hex };

		hex_of(&c[i], hex);	/* checked above */
		if (mpg_exec(p, "INSERT INTO signed_commands (id, op, action, town, meter, arg, batch, "
			     "issued, expires, issuer, blob, signers) VALUES ($1, $2, $3, $4, $5, $6, "
			     "$7, to_timestamp($8), to_timestamp($9), $10, decode($11, 'hex'), "
			     "ARRAY[$10])", 11, v))
			return db_failed(p);
		snprintf(detail, sizeof(detail), "command %s %s town %u meter %u: issued by %s in "
			 "operation %s (arg %lld, batch %u, expires %lld); signed bytes %s", id,
			 gmc_action_name(c[i].action), c[i].town, c[i].meter, operator_name, op,
			 (long long)c[i].arg, c[i].batch, (long long)c[i].expires, hex);
		if (mcmd_audit(p, operator_name, "issued", detail))
			return db_failed(p);
	}
	if (mcmd_release(p, pol, operator_name, now) < 0 || mpg_exec(p, "COMMIT", 0, NULL))
		return db_failed(p);
	return 0;
}

/* ---- approve ------------------------------------------------------------------------------- */

void mcmd_op_free(struct mcmd_op *o)
{
	free(o->c);
	o->c = NULL;
	o->n = 0;
}

/* The operators table as a key set (what approvals check without a file). 0 or -1. */
static int table_keyset(struct maind_pg *p, struct gmc_keyset *ks)
{
	PGresult *r;

	memset(ks, 0, sizeof(*ks));
	r = mpg_query(p, "SELECT name, encode(pk, 'hex') FROM operators WHERE NOT revoked "
		      "ORDER BY id LIMIT 16", 0, NULL);
	if (!r)
		return -1;
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

static bool op_number(const char *op)
{
	size_t len = strlen(op);

	if (!len || len > 18 || op[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++)
		if (op[i] < '0' || op[i] > '9')
			return false;
	return true;
}

/*
 * The operation's commands awaiting approval, locked, judged as one signed
 * intent that approver may approve: o filled (o->c allocated). Inside the
 * caller's transaction. 0, 1 (why), -1.
 */
static int judge_op(struct maind_pg *p, const struct mcmd_policy *pol,
		    const struct gmc_keyset *ks, const char *ks_name, const char *op,
		    const char *approver, const uint8_t afpr[GMC_FPR_LEN], int64_t now,
		    struct mcmd_op *o, char *why, size_t whylen)
{
	struct gmc_policy gp = { pol->two_above };
	PGresult *r;
	int n;

	memset(o, 0, sizeof(*o));
	snprintf(o->op, sizeof(o->op), "%s", op);
	r = mpg_query(p, "SELECT id, encode(blob, 'hex') FROM signed_commands WHERE op = $1 "
		      "AND state = 'awaiting-approval' ORDER BY id FOR UPDATE", 1,
		      (const char *const[]){ op });
	if (!r)
		return -1;
	n = PQntuples(r);
	if (!n) {
		PQclear(r);
		snprintf(why, whylen, "nothing of this operation awaits approval");
		return 1;
	}
	o->c = calloc((size_t)n, sizeof(*o->c));
	if (!o->c) {
		PQclear(r);
		snprintf(p->err, sizeof(p->err), "out of memory");
		return -1;
	}
	o->n = (size_t)n;
	for (int i = 0; i < n; i++) {
		const char *id = PQgetvalue(r, i, 0), *hex = PQgetvalue(r, i, 1);
		uint8_t blob[GMC_LEN_MAX];
		size_t hl = strlen(hex);
		struct gmc_cmd *c = &o->c[i];
		int v;

		if (hl % 2 || hl / 2 > sizeof(blob) || gmp_hex_decode(hex, blob, hl / 2) ||
		    gmc_decode(blob, hl / 2, c)) {
			snprintf(why, whylen, "command %s: its signed bytes do not decode", id);
			goto refused;
		}
		for (unsigned int s = 0; s < c->nsig; s++)
			if (!memcmp(c->sig[s].fpr, afpr, GMC_FPR_LEN)) {
				snprintf(why, whylen, "%s already signed command %s: a second, "
					 "different operator must approve", approver, id);
				goto refused;
			}
		/* the first signature must be an operator's, from the key set trusted */
		v = gmc_verify(c, ks, &gp, c->town, c->meter, now);
		if (v && !(v == GMP_CMD_NEED_TWO && c->nsig == 1)) {
			snprintf(why, whylen, "command %s does not verify against the %s (status %d)",
				 id, ks_name, v);
			goto refused;
		}
		/* one operation is one signed intent: same action, times, argument and
		 * batch everywhere, as many commands as its batch says (a head end
		 * that slipped another command into it is caught here) */
		if (i && (!same_intent(c, &o->c[0]) ||
			  memcmp(c->sig[0].fpr, o->c[0].sig[0].fpr, GMC_FPR_LEN))) {
			snprintf(why, whylen, "command %s differs from the rest of the operation", id);
			goto refused;
		}
		if (!i && (int64_t)c->batch != n) {
			snprintf(why, whylen, "%d commands await approval but their signed batch is %u",
				 n, c->batch);
			goto refused;
		}
		if (!i) {
			char signers[80];

			gmc_signers(c, ks, signers, sizeof(signers));
			snprintf(o->what, sizeof(o->what), "%s, %u target%s, first signed by %s",
				 gmc_action_name(c->action), c->batch, c->batch == 1 ? "" : "s",
				 signers);
			o->expires = c->expires;
		}
		if (c->nsig >= GMC_SIG_MAX) {
			snprintf(why, whylen, "command %s cannot take another signature", id);
			goto refused;
		}
	}
	PQclear(r);
	return 0;
refused:
	PQclear(r);
	mcmd_op_free(o);
	return 1;
}

/* Everything before judging: the approver's key and the key set. 0, 1, -1. */
static int approve_begin(struct maind_pg *p, const struct gmc_keyset *ks, const char *op,
			 const char *approver, uint8_t pk[GMC_PK_LEN], struct gmc_keyset *table,
			 const struct gmc_keyset **use, char *why, size_t whylen)
{
	int rc;

	if (!op_number(op)) {
		snprintf(why, whylen, "'%.30s' is not an operation number", op);
		return 1;
	}
	rc = operator_key(p, approver, pk, why, whylen);
	if (rc)
		return rc;
	if (!ks && table_keyset(p, table))
		return -1;
	*use = ks ? ks : table;
	return mpg_exec(p, "BEGIN", 0, NULL) ? -1 : 0;
}

static int approve_refused(struct maind_pg *p, const char *op, const char *approver,
			   const char *why)
{
	char detail[400];

	snprintf(detail, sizeof(detail), "operation %s: approval by %s refused: %s", op, approver,
		 why);
	return refused(p, approver, "approve-refused", detail);
}

int mcmd_approve_load(struct maind_pg *p, const struct mcmd_policy *pol,
		      const struct gmc_keyset *ks, const char *ks_name, const char *op,
		      const char *approver, int64_t now, struct mcmd_op *out, char *why,
		      size_t whylen)
{
	struct gmc_keyset table;
	const struct gmc_keyset *use;
	uint8_t pk[GMC_PK_LEN], fpr[GMC_FPR_LEN];
	int rc;

	memset(out, 0, sizeof(*out));
	rc = approve_begin(p, ks, op, approver, pk, &table, &use, why, whylen);
	if (rc)
		return rc < 0 ? db_failed(p) : 1;
	gmc_fingerprint(pk, fpr);
	rc = judge_op(p, pol, use, ks ? ks_name : "operators", op, approver, fpr, now, out, why,
		      whylen);
	if (rc < 0)
		return db_failed(p);
	if (rc)
		return approve_refused(p, op, approver, why);
	/* nothing written: the rows are locked again when the signatures come */
	if (mpg_exec(p, "COMMIT", 0, NULL)) {
		mcmd_op_free(out);
		return db_failed(p);
	}
	return 0;
}

int mcmd_approve_store(struct maind_pg *p, const struct mcmd_policy *pol,
		       const struct gmc_keyset *ks, const char *ks_name, const struct mcmd_op *o,
		       const char *approver, int64_t now, char *why, size_t whylen)
{
	struct gmc_keyset table;
	const struct gmc_keyset *use;
	uint8_t pk[GMC_PK_LEN], fpr[GMC_FPR_LEN];
	struct mcmd_op cur;
	int rc;

	rc = approve_begin(p, ks, o->op, approver, pk, &table, &use, why, whylen);
	if (rc)
		return rc < 0 ? db_failed(p) : 1;
	gmc_fingerprint(pk, fpr);
	rc = judge_op(p, pol, use, ks ? ks_name : "operators", o->op, approver, fpr, now, &cur,
		      why, whylen);
	if (rc < 0)
		return db_failed(p);
	if (rc)
		return approve_refused(p, o->op, approver, why);
	if (cur.n != o->n) {
		snprintf(why, whylen, "the operation changed since it was shown (%zu commands await "
			 "approval, %zu were signed)", cur.n, o->n);
		goto refused;
	}
	for (size_t i = 0; i < cur.n; i++) {
		char was[2 * GMC_LEN_MAX + 1], now_hex[2 * GMC_LEN_MAX + 1];
		char detail[2 * GMC_LEN_MAX + 200], id[24];
		struct gmc_cmd first = o->c[i], c = cur.c[i];
		int v;

		/* the commands signed are the ones stored, first signature and all */
		first.nsig = 1;
		if (o->c[i].nsig != 2 || hex_of(&first, was) || hex_of(&cur.c[i], now_hex) ||
		    strcmp(was, now_hex)) {
			snprintf(why, whylen, "command %llu is not the one stored, with %s's "
				 "signature added", (unsigned long long)cur.c[i].id, approver);
			goto refused;
		}
		v = gmc_add_signature(&c, pk, o->c[i].sig[1].sig);
		if (v || memcmp(c.sig[1].fpr, o->c[i].sig[1].fpr, GMC_FPR_LEN)) {
			snprintf(why, whylen, "command %llu: the second signature is not %s's over "
				 "its bytes (%s)", (unsigned long long)c.id, approver,
				 v ? gmc_status_name(v) : "another key's");
			goto refused;
		}
		hex_of(&c, now_hex);
		I64(id, c.id);
		{
			const char *w[3] = { id, now_hex, approver };

			if (mpg_exec(p, "UPDATE signed_commands SET blob = decode($2, 'hex'), "
				     "signers = array_append(signers, $3), updated = now() WHERE "
				     "id = $1", 3, w))
				goto failed;
		}
		snprintf(detail, sizeof(detail), "command %s %s town %u meter %u: approved by %s "
			 "(operation %s); signed bytes %s", id, gmc_action_name(c.action), c.town,
			 c.meter, approver, o->op, now_hex);
		if (mcmd_audit(p, approver, "approved", detail))
			goto failed;
	}
	mcmd_op_free(&cur);
	if (mcmd_release(p, pol, approver, now) < 0 || mpg_exec(p, "COMMIT", 0, NULL))
		return db_failed(p);
	return 0;
refused:
	mcmd_op_free(&cur);
	return approve_refused(p, o->op, approver, why);
failed:
	mcmd_op_free(&cur);
	return db_failed(p);
}
