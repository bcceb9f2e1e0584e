// SPDX-License-Identifier: GPL-2.0
/*
 * From signed to queued (cmd.h): the head end checks what it can before a
 * command goes to its town (signatures by operators not revoked, the
 * two-person rule, the disconnect rate limit, expiry) and watches the
 * command patterns that look like a takeover. None of it is what protects
 * the meters: they verify the signatures themselves (commands.md).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "detect/detect.h"

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))

void mcmd_policy_of(const struct maind_config *cfg, struct mcmd_policy *pol)
{
	pol->two_above = cfg && cfg->cmd_two_above ? cfg->cmd_two_above : GMC_TWO_ABOVE;
	pol->disconnects_hour = cfg ? cfg->cmd_disconnects_hour : 50;
}

int mcmd_alert(struct maind_pg *p, const char *rule, int town, int meter, const char *severity,
	       const char *summary, const char *evidence, const char *key)
{
	/* raised and told to the operators the one way every rule is (detect/) */
	const struct mdet_alert a = { .rule = rule, .town = town > 0 ? town : 0,
				      .meter = meter > 0 ? meter : 0, .severity = severity,
				      .key = key, .summary = summary, .evidence = evidence };
	char detail[600];
	int64_t id = 0;
	int raised = mdet_raise(p, &a, &id);

	if (raised <= 0)
		return raised;
	snprintf(detail, sizeof(detail), "alert %lld %s: %s", (long long)id, rule, summary);
	return mcmd_audit(p, "maind", "alert", detail) ? -1 : 1;
}

/* ---- operators ---------------------------------------------------------------------- */

struct opkey {
	char name[GMC_NAME_MAX];
	uint8_t pk[GMC_PK_LEN], fpr[GMC_FPR_LEN];
	bool revoked;
};

struct ops {
	struct opkey *k;
	size_t n;
};

static int ops_load(struct maind_pg *p, struct ops *o)
{
	PGresult *r = mpg_query(p, "SELECT name, encode(pk, 'hex'), revoked FROM operators", 0, NULL);
	int n;

	o->k = NULL;
	o->n = 0;
	if (!r)
		return -1;
	n = PQntuples(r);
	o->k = calloc((size_t)n + 1, sizeof(*o->k));
	if (!o->k) {
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct opkey *k = &o->k[o->n];

		if (gmp_hex_decode(PQgetvalue(r, i, 1), k->pk, GMC_PK_LEN))
			continue;
		snprintf(k->name, sizeof(k->name), "%s", PQgetvalue(r, i, 0));
		gmc_fingerprint(k->pk, k->fpr);
		k->revoked = PQgetvalue(r, i, 2)[0] == 't';
		o->n++;
	}
	PQclear(r);
	return 0;
}

static const struct opkey *ops_find(const struct ops *o, const uint8_t fpr[GMC_FPR_LEN])
{
	for (size_t i = 0; i < o->n; i++)
		if (!memcmp(o->k[i].fpr, fpr, GMC_FPR_LEN))
			return &o->k[i];
	return NULL;
}

/* ---- one command's fate ------------------------------------------------------------- */

static int finish(struct maind_pg *p, const char *actor, const char *id, const char *state,
		  int status, const char *text)
{
	char s[24], detail[400];
	const char *v[4] = { id, state, I64(s, status), text };

	if (mpg_exec(p, "UPDATE signed_commands SET state = $2, status = $3::smallint, "
		     "status_text = $4, reason = NULL, updated = now() WHERE id = $1", 4, v))
		return -1;
	snprintf(detail, sizeof(detail), "command %s: %s: %s", id, state, text);
	return mcmd_audit(p, actor, !strcmp(state, "expired") ? "expired" : "refused", detail);
}

static int wait_for(struct maind_pg *p, const char *actor, const char *id, const char *state,
		    const char *was, const char *reason)
{
	const char *v[3] = { id, state, reason };
	char detail[400];

	if (!strcmp(was, reason))
		return 0;	/* nothing new */
	if (mpg_exec(p, "UPDATE signed_commands SET state = $2, reason = $3, updated = now() "
		     "WHERE id = $1", 3, v))
		return -1;
	snprintf(detail, sizeof(detail), "command %s: %s: %s", id, state, reason);
	return mcmd_audit(p, actor, "waiting", detail);
}

static int enqueue(struct maind_pg *p, const char *actor, const char *id, const struct gmc_cmd *c,
		   const char *blob_hex)
{
	char t[24], detail[400];
	const char *v[3] = { I64(t, c->town), blob_hex, id };
	PGresult *r;
	int rc;

	/* the town's row, as mainctl supply: one writer of its tseqs at a time */
	r = mpg_query(p, "SELECT 1 FROM towns WHERE id = $1 FOR UPDATE", 1, v);
	if (!r)
		return -1;
	rc = PQntuples(r);
	PQclear(r);
	if (rc != 1)
		return finish(p, actor, id, "refused", GMP_CMD_WRONG_TARGET, "no such town");
	r = mpg_query(p, "INSERT INTO commands (town, tseq, type, blob, cmd_id) SELECT $1, "
		      "GREATEST(COALESCE((SELECT MAX(tseq) FROM commands WHERE town = $1), 0), "
		      "(SELECT cmd_floor FROM towns WHERE id = $1)) + 1, 24, decode($2, 'hex'), "
		      "$3 RETURNING tseq", 3, v);
	if (!r)
		return -1;
	{
		const char *w[2] = { id, PQgetvalue(r, 0, 0) };

		rc = mpg_exec(p, "UPDATE signed_commands SET state = 'queued', queued_at = now(), "
			      "town_tseq = $2, reason = NULL, updated = now() WHERE id = $1", 2, w);
		snprintf(detail, sizeof(detail), "command %s %s town %u meter %u: queued for the "
			 "town as its command %s", id, gmc_action_name(c->action), c->town, c->meter,
			 w[1]);
	}
	PQclear(r);
	return rc || mcmd_audit(p, actor, "queued", detail) ? -1 : 1;
}

static int forged(struct maind_pg *p, const char *id, int town, int meter, const char *why)
{
	char key[64], ev[200];

	snprintf(key, sizeof(key), "cmd-forged:%s", id);
	snprintf(ev, sizeof(ev), "{\"command\": %s, \"why\": \"%s\"}", id, why);
	return mcmd_alert(p, "cmd-forged", town, meter, "critical", why, ev, key) < 0 ? -1 : 0;
}

struct verdict {
	const char *state;	/* NULL: queue it */
	int status;
	char text[200];
	const char *alert;	/* rule to raise */
};

/* What the command's signed bytes and the operators table say. */
static void judge(const struct gmc_cmd *c, const struct ops *o, const struct mcmd_policy *pol,
		  int64_t now, struct verdict *v)
{
	struct gmc_policy gp = { pol->two_above };
	struct gmc_keyset ks = { 0 };
	int r;

	memset(v, 0, sizeof(*v));
	for (unsigned int i = 0; i < c->nsig; i++) {
		const struct opkey *k = ops_find(o, c->sig[i].fpr);

		if (!k || k->revoked) {
			v->state = "refused";
			v->status = GMP_CMD_UNKNOWN_KEY;
			snprintf(v->text, sizeof(v->text), k ? "signed by %s, whose key is revoked" :
				 "signed by a key that is no operator's", k ? k->name : "");
			v->alert = k ? "cmd-revoked-key" : "cmd-forged";
			return;
		}
		memcpy(ks.k[ks.n].pk, k->pk, GMC_PK_LEN);
		memcpy(ks.k[ks.n].fpr, k->fpr, GMC_FPR_LEN);
		snprintf(ks.k[ks.n].name, GMC_NAME_MAX, "%s", k->name);
		ks.n++;
	}
	r = gmc_verify(c, &ks, &gp, c->town, c->meter, now);
	if (r == GMP_CMD_NEED_TWO && c->nsig == 1) {
		v->state = "awaiting-approval";
		if (c->action == GMC_REKEY || c->action == GMC_TOWN_STOP)
			snprintf(v->text, sizeof(v->text), "needs a second operator: %s always does",
				 gmc_action_name(c->action));
		else
			snprintf(v->text, sizeof(v->text), "needs a second operator: %u targets, "
				 "more than %u", c->batch, pol->two_above);
		return;
	}
	if (r == GMP_CMD_EXPIRED) {
		v->state = "expired";
		v->status = r;
		snprintf(v->text, sizeof(v->text), "expired before it could be queued");
		return;
	}
	if (r) {
		v->state = "refused";
		v->status = r;
		snprintf(v->text, sizeof(v->text), "its signed bytes do not verify (status %d)", r);
		v->alert = r == GMP_CMD_BAD_SIG ? "cmd-forged" : NULL;
	}
}

int mcmd_release(struct maind_pg *p, const struct mcmd_policy *pol, const char *actor,
		 int64_t now)
{
	struct ops o;
	PGresult *r;
	int64_t disc = 0;
	char nowbuf[24];
	const char *vn[1] = { I64(nowbuf, now) };
	int queued = 0, n, rc = -1;

	/* the audit log's lock first: every path here appends to it */
	if (mpg_exec(p, "SELECT pg_advisory_xact_lock(" MPG_LOCK_AUDIT ")", 0, NULL))
		return -1;
	/* queued but never sent, and expired: withdrawn */
	r = mpg_query(p, "WITH x AS (UPDATE commands c SET status = 100, result_at = now() FROM "
		      "signed_commands s WHERE c.cmd_id = s.id AND s.state = 'queued' AND "
		      "c.sent IS NULL AND c.status IS NULL AND s.expires <= to_timestamp($1) "
		      "RETURNING s.id) SELECT id FROM x", 1, vn);
	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r); i++)
		if (finish(p, actor, PQgetvalue(r, i, 0), "expired", GMP_CMD_EXPIRED,
			   "expired before it was sent to the town")) {
			PQclear(r);
			return -1;
		}
	PQclear(r);
	if (ops_load(p, &o))
		return -1;
	r = mpg_query(p, "SELECT count(*) FROM signed_commands WHERE action = 'disconnect' AND "
		      "queued_at > now() - interval '1 hour'", 0, NULL);
	if (!r)
		goto out;
	disc = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	r = mpg_query(p, "SELECT id, encode(blob, 'hex'), state, action, town, meter, batch, "
		      "COALESCE(reason, '') FROM signed_commands WHERE state = 'awaiting-approval' "
		      "OR (state = 'queued' AND town_tseq IS NULL) ORDER BY issued, id FOR UPDATE",
		      0, NULL);
	if (!r)
		goto out;
	n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		const char *id = PQgetvalue(r, i, 0), *hex = PQgetvalue(r, i, 1);
		const char *was = PQgetvalue(r, i, 7);
		uint8_t blob[GMC_LEN_MAX];
		size_t hl = strlen(hex);
		struct gmc_cmd c;
		struct verdict v;
		int k = 0;

		if (hl % 2 || hl / 2 > sizeof(blob) || gmp_hex_decode(hex, blob, hl / 2) ||
		    gmc_decode(blob, hl / 2, &c)) {
			k = finish(p, actor, id, "refused", GMP_CMD_INVALID,
				   "its signed bytes do not decode") ||
			    forged(p, id, atoi(PQgetvalue(r, i, 4)), atoi(PQgetvalue(r, i, 5)),
				   "a command whose signed bytes do not decode");
		} else if ((long long)c.id != strtoll(id, NULL, 10) ||
			   c.town != atoi(PQgetvalue(r, i, 4)) || c.meter != atoi(PQgetvalue(r, i, 5)) ||
			   (long long)c.batch != strtoll(PQgetvalue(r, i, 6), NULL, 10) ||
			   strcmp(gmc_action_name(c.action), PQgetvalue(r, i, 3))) {
			k = finish(p, actor, id, "refused", GMP_CMD_INVALID,
				   "its row does not match its signed bytes") ||
			    forged(p, id, c.town, c.meter, "a command row altered after signing");
		} else {
			judge(&c, &o, pol, now, &v);
			if (v.state && !strcmp(v.state, "awaiting-approval")) {
				k = wait_for(p, actor, id, v.state, was, v.text);
			} else if (v.state) {
				k = finish(p, actor, id, v.state, v.status, v.text);
				if (!k && v.alert) {
					char key[96], ev[300];

					snprintf(key, sizeof(key), "%s:%s", v.alert, id);
					snprintf(ev, sizeof(ev), "{\"command\": %s, \"action\": \"%s\", "
						 "\"town\": %u, \"meter\": %u, \"why\": \"%s\"}", id,
						 gmc_action_name(c.action), c.town, c.meter, v.text);
					k = mcmd_alert(p, v.alert, c.town, c.meter, "critical", v.text,
						       ev, key) < 0;
				}
			} else if (c.action == GMC_DISCONNECT &&
				   disc >= (int64_t)pol->disconnects_hour) {
				char why[160];

				snprintf(why, sizeof(why), "held: %lld disconnects queued in the last "
					 "hour, the limit is %u", (long long)disc, pol->disconnects_hour);
				k = wait_for(p, actor, id, "queued", was, why);
			} else {
				k = enqueue(p, actor, id, &c, hex);
				if (k == 1) {
					queued++;
					disc += c.action == GMC_DISCONNECT;
					k = 0;
				}
			}
		}
		if (k) {
			PQclear(r);
			goto out;
		}
	}
	PQclear(r);
	rc = mcmd_watch(p, pol) < 0 ? -1 : queued;
out:
	free(o.k);
	return rc;
}

/* ---- the takeover rules --------------------------------------------------------------- */

static int burst(struct maind_pg *p, const char *action, int64_t limit, const char *rule,
		 const char *what)
{
	const char *v[2] = { action, NULL };
	char l[24], summary[300], ev[600];
	PGresult *r;
	int64_t n;

	v[1] = I64(l, limit);
	r = mpg_query(p, "SELECT count(*), count(DISTINCT op), string_agg(DISTINCT issuer, ','), "
		      "count(DISTINCT town) FROM signed_commands WHERE action = $1 AND meter > 0 "
		      "AND issued > now() - interval '1 hour' AND state <> 'cancelled'", 1, v);
	if (!r)
		return -1;
	n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	if (n <= limit) {
		PQclear(r);
		return 0;
	}
	snprintf(summary, sizeof(summary), "%lld %s issued in the last hour (more than %lld) "
		 "by %s", (long long)n, what, (long long)limit, PQgetvalue(r, 0, 2));
	snprintf(ev, sizeof(ev), "{\"commands\": %lld, \"operations\": %s, \"towns\": %s, "
		 "\"issuers\": \"%s\", \"limit\": %lld}", (long long)n, PQgetvalue(r, 0, 1),
		 PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 2), (long long)limit);
	PQclear(r);
	return mcmd_alert(p, rule, -1, -1, "critical", summary, ev, rule);
}

int mcmd_watch(struct maind_pg *p, const struct mcmd_policy *pol)
{
	char ta[24];
	const char *v[1] = { I64(ta, pol->two_above) };
	int raised = 0, k;
	PGresult *r;

	/* mass disconnection: more issued in an hour than the rate limit lets go */
	k = burst(p, "disconnect", pol->disconnects_hour, "cmd-disconnect-burst", "disconnects");
	if (k < 0)
		return -1;
	raised += k;
	/* key changes for many meters: the "nobody can undo it" half of the attack */
	k = burst(p, "rekey", pol->two_above, "cmd-rekey-burst", "meter key changes");
	if (k < 0)
		return -1;
	raised += k;
	/* an operator far above their usual rate: more in the last hour than
	 * three times their busiest hour of the 30 days before, and at least
	 * twice two_above */
	r = mpg_query(p, "WITH h AS (SELECT issuer, date_trunc('hour', issued) AS hr, count(*) AS n "
		      "FROM signed_commands WHERE issued > now() - interval '30 days' AND "
		      "issued <= now() - interval '1 hour' GROUP BY 1, 2), "
		      "busiest AS (SELECT issuer, max(n) AS n FROM h GROUP BY 1), "
		      "last AS (SELECT issuer, count(*) AS n FROM signed_commands WHERE "
		      "issued > now() - interval '1 hour' AND state <> 'cancelled' GROUP BY 1) "
		      "SELECT l.issuer, l.n, COALESCE(b.n, 0) FROM last l LEFT JOIN busiest b "
		      "USING (issuer) WHERE l.n > GREATEST(3 * COALESCE(b.n, 0), 2 * $1::bigint)",
		      1, v);
	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *who = PQgetvalue(r, i, 0);
		char key[80], summary[200], ev[200];

		snprintf(key, sizeof(key), "cmd-operator-rate:%s", who);
		snprintf(summary, sizeof(summary), "operator %s issued %s commands in the last hour; "
			 "their busiest hour in 30 days had %s", who, PQgetvalue(r, i, 1),
			 PQgetvalue(r, i, 2));
		snprintf(ev, sizeof(ev), "{\"operator\": \"%s\", \"last_hour\": %s, "
			 "\"busiest_hour_30d\": %s}", who, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
		k = mcmd_alert(p, "cmd-operator-rate", -1, -1, "warning", summary, ev, key);
		if (k < 0) {
			PQclear(r);
			return -1;
		}
		raised += k;
	}
	PQclear(r);
	return raised;
}

int mcmd_tick(struct maind_pg *p, const struct maind_config *cfg, int64_t now)
{
	struct mcmd_policy pol;

	/* every 10 s: held disconnects wait for the hour to move on anyway */
	if (p->in_tx || (now >= p->cmd_at && now - p->cmd_at < 10))
		return 0;
	p->cmd_at = now;
	mcmd_policy_of(cfg, &pol);
	if (mpg_exec(p, "BEGIN", 0, NULL))
		return -1;
	if (mcmd_release(p, &pol, "maind", now) < 0) {
		PQclear(PQexec(p->c, "ROLLBACK"));
		return -1;
	}
	return mpg_exec(p, "COMMIT", 0, NULL);
}
