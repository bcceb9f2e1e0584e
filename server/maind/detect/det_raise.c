// SPDX-License-Identifier: GPL-2.0
/* maind detection: raising an alert and telling operators and customers (detect.h). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "detect.h"

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))

int mdet_raise(struct maind_pg *p, const struct mdet_alert *a, int64_t *id)
{
	char t[24], m[24];
	const char *v[10] = { a->rule, a->town ? I64(t, a->town) : NULL,
			      a->meter ? I64(m, a->meter) : NULL, a->severity, a->summary,
			      a->evidence, a->key, a->cust_kind, a->cust_subject, a->cust_body };
	/*
	 * One statement: the alert, and only when it is new (RETURNING gave a
	 * row) the notices. The operators' notice is the whole alert in plain
	 * text; the customers' is the rule's own letter to the household.
	 */
	PGresult *r = mpg_query(p,
		"WITH a AS (INSERT INTO alerts (rule, town, meter, severity, summary, evidence, key) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) WHERE state = 'open' "
		"DO NOTHING RETURNING id), "
		"o AS (INSERT INTO notices (operator, kind, ref, subject, body) "
		"SELECT op.id, 'alert', a.id, 'gridmeter alert ' || a.id || ' (' || $4 || '): ' || $5, "
		"'Alert ' || a.id || ', rule ' || $1 || ', severity ' || $4 || E'.\\n\\n' || $5 || "
		"E'\\n\\nEvidence:\\n' || $6 || E'\\n\\nmainctl alert ' || a.id || ' shows it; ' || "
		"'mainctl alert-close ' || a.id || E' closes it.\\n' "
		"FROM a, operators op WHERE NOT op.revoked AND "
		"(op.email IS NOT NULL OR op.phone IS NOT NULL) RETURNING 1), "
		"c AS (INSERT INTO notices (customer, kind, ref, subject, body) "
		"SELECT cu.id, $8, a.id, $9, $10 FROM a, customers cu WHERE $8::text IS NOT NULL "
		"AND cu.town = $2::integer AND cu.meter = $3::integer AND cu.since <= now() "
		"AND (cu.until IS NULL OR cu.until > now()) RETURNING 1) "
		"SELECT (SELECT id FROM a), (SELECT count(*) FROM o), (SELECT count(*) FROM c)",
		10, v);
	int rc;

	if (!r)
		return -1;
	rc = !PQgetisnull(r, 0, 0);
	if (rc && id)
		*id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return rc;
}

int mdet_raise_count(struct maind_pg *p, const struct mdet_alert *a, struct mdet_stats *st)
{
	int rc = mdet_raise(p, a, NULL);

	if (rc < 0)
		return -1;
	st->raised += rc;
	return 0;
}

/*
 * meterd's enum meter_alarm (agent/core/meter.h) by number, with meterd's
 * names (meter_alarm_name): maind is not built with meterd's headers. The
 * last two, ALARM_REVERSED_CT and ALARM_CT_TAMPER, are issue 13's (branch
 * meter13); a change of meterd's numbering changes this table and
 * det_alarms.c's, nothing else.
 */
static const char *const alarm_names[] = {
	"over-voltage", "under-voltage", "over-current", "lockout", "supply-deficit",
	"sensor-failure", "store-corrupt", "store-error", "protection-degraded", "clock-suspect",
	"reversed-ct", "ct-tamper",
	/* issue 15: external loads, home sensors (only "gas" ever reaches a town) */
	"load-unreachable", "load-mismatch", "gas", "home-sensor",
};

const char *mdet_alarm_name(int64_t code, char *buf, size_t len)
{
	if (code >= 0 && code < (int64_t)(sizeof(alarm_names) / sizeof(alarm_names[0])))
		return alarm_names[code];
	snprintf(buf, len, "alarm-%lld", (long long)code);
	return buf;
}

const char *mdet_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
	return buf;
}
