// SPDX-License-Identifier: GPL-2.0
/*
 * Detection rule: bursts of authentication failures, replays, frames from
 * unknown addresses and refused signed commands at the towns (GMP_SECURITY
 * records in security_counts), per claimed meter and per peer address. For
 * each (town, kind, meter) and (town, kind, address) with new records, the
 * counts of the hour up to its newest record are summed; at or above the
 * kind's threshold per hour, an alert (one open per key).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))

static const char *kind_name(int64_t k)
{
	switch (k) {
	case GMP_SEC_AUTH_FAIL:
		return "auth-fail";
	case GMP_SEC_REPLAY:
		return "replay";
	case GMP_SEC_UNKNOWN:
		return "unknown-address";
	case GMP_SEC_CMD_REFUSED:
		return "command-refused";
	default:
		return "other";
	}
}

static int64_t threshold(const struct mdet_settings *s, int64_t k)
{
	switch (k) {
	case GMP_SEC_AUTH_FAIL:
		return s->auth_fail_h;
	case GMP_SEC_REPLAY:
		return s->replay_h;
	case GMP_SEC_UNKNOWN:
		return s->unknown_h;
	case GMP_SEC_CMD_REFUSED:
		return s->cmd_refused_h;
	default:
		return 0;	/* kinds this version does not know: never */
	}
}

static void dotted(int64_t a, char *buf, size_t len)
{
	snprintf(buf, len, "%u.%u.%u.%u", (unsigned)(a >> 24) & 255, (unsigned)(a >> 16) & 255,
		 (unsigned)(a >> 8) & 255, (unsigned)a & 255);
}

/* by: "meter" or "addr"; other: the other column (listed in the evidence). */
static int pass(struct maind_pg *p, const struct mdet_settings *s, const char *from,
		const char *to, bool by_meter, struct mdet_stats *st)
{
	char sql[1400];
	const char *col = by_meter ? "meter" : "addr", *other = by_meter ? "addr" : "meter";
	const char *v[2] = { from, to };
	PGresult *r;
	int rc = 0;

	snprintf(sql, sizeof(sql),
		 "WITH n AS (SELECT town, kind, %s AS who, max(at) AS upto FROM security_counts "
		 "WHERE id > $1 AND id <= $2 AND %s BETWEEN 1 AND %s GROUP BY 1, 2, 3) "
		 "SELECT n.town, n.kind, n.who, extract(epoch FROM n.upto)::bigint, "
		 "sum(GREATEST(s.count, 0)), "
		 "count(*), extract(epoch FROM min(s.at - make_interval(secs => "
		 "LEAST(GREATEST(s.interval_s, 0), 86400)::int)))"
		 "::bigint, array_to_string(array_agg(DISTINCT s.%s ORDER BY s.%s), ' ') "
		 "FROM n JOIN security_counts s ON s.town = n.town AND s.kind = n.kind AND "
		 "s.%s = n.who AND s.at > n.upto - interval '1 hour' AND s.at <= n.upto "
		 "GROUP BY n.town, n.kind, n.who, n.upto", col, col, by_meter ? "65535" : "4294967295",
		 other, other, col);
	r = mpg_query(p, sql, 2, v);
	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r) && !rc; i++) {
		int64_t town = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		int64_t kind = strtoll(PQgetvalue(r, i, 1), NULL, 10);
		int64_t who = strtoll(PQgetvalue(r, i, 2), NULL, 10);
		int64_t upto = strtoll(PQgetvalue(r, i, 3), NULL, 10);
		int64_t count = strtoll(PQgetvalue(r, i, 4), NULL, 10);
		int64_t since = strtoll(PQgetvalue(r, i, 6), NULL, 10);
		int64_t thr = threshold(s, kind);
		char whos[40], whoj[48], key[96], summary[256], ev[1600], t0[40], t1[40], list[1000];
		const char *others = PQgetvalue(r, i, 7);
		size_t ll = 0;
		struct mdet_alert a;

		if (thr <= 0 || count < thr)
			continue;
		if (by_meter) {
			snprintf(whos, sizeof(whos), "meter %lld", (long long)who);
			snprintf(whoj, sizeof(whoj), "\"meter\": %lld", (long long)who);
		} else {
			char d[20];

			dotted(who, d, sizeof(d));
			snprintf(whos, sizeof(whos), "address %s", d);
			snprintf(whoj, sizeof(whoj), "\"address\": \"%s\"", d);
		}
		/* the other side as a JSON list: addresses quoted dotted, meters as numbers */
		list[0] = '\0';
		for (const char *q = others; *q && ll + 24 < sizeof(list);) {
			char *end;
			int64_t x = strtoll(q, &end, 10);

			if (end == q)
				break;
			if (by_meter) {
				char d[20];

				dotted(x, d, sizeof(d));
				ll += (size_t)snprintf(list + ll, sizeof(list) - ll, "%s\"%s\"",
						       ll ? ", " : "", x ? d : "unknown");
			} else {
				ll += (size_t)snprintf(list + ll, sizeof(list) - ll, "%s%lld",
						       ll ? ", " : "", (long long)x);
			}
			q = end + strspn(end, " ");
		}
		mdet_time(since, t0, sizeof(t0));
		mdet_time(upto, t1, sizeof(t1));
		snprintf(key, sizeof(key), "security:%lld:%s:%lld:%s", (long long)town, col,
			 (long long)who, kind_name(kind));
		snprintf(summary, sizeof(summary), "town %lld: %lld %s from %s within an hour "
			 "(threshold %lld per hour), up to %s", (long long)town, (long long)count,
			 kind_name(kind), whos, (long long)thr, t1);
		snprintf(ev, sizeof(ev), "{\"town\": %lld, %s, \"kind\": \"%s\", "
			 "\"count\": %lld, \"threshold_per_hour\": %lld, \"window_start\": \"%s\", "
			 "\"window_end\": \"%s\", \"records\": %s, \"%s\": [%s], \"check\": \"SELECT "
			 "* FROM security_counts WHERE town = %lld AND %s = %lld AND kind = %lld "
			 "ORDER BY at\"}",
			 (long long)town, whoj,
			 kind_name(kind), (long long)count, (long long)thr, t0, t1,
			 PQgetvalue(r, i, 5), by_meter ? "addresses" : "meters_claimed", list,
			 (long long)town, col, (long long)who, (long long)kind);
		a = (struct mdet_alert){ "security", (int)town, by_meter ? (int)who : 0,
					 kind == GMP_SEC_REPLAY || kind == GMP_SEC_CMD_REFUSED ?
					 "critical" : "warning", key, summary, ev, NULL, NULL, NULL };
		rc = mdet_raise_count(p, &a, st);
	}
	PQclear(r);
	return rc;
}

int mdet_security(struct maind_pg *p, const struct mdet_settings *s, struct mdet_stats *st)
{
	PGresult *r = mpg_query(p, "SELECT (SELECT value FROM det_state WHERE name = "
				"'security_id'), COALESCE((SELECT max(id) FROM security_counts), 0)",
				0, NULL);
	char from[24], to[24];
	const char *v[1] = { to };

	if (!r)
		return -1;
	snprintf(from, sizeof(from), "%s", PQgetvalue(r, 0, 0));
	snprintf(to, sizeof(to), "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	if (strtoll(to, NULL, 10) <= strtoll(from, NULL, 10))
		return 0;
	st->security += strtoll(to, NULL, 10) - strtoll(from, NULL, 10);
	if (pass(p, s, from, to, true, st) || pass(p, s, from, to, false, st))
		return -1;
	return mpg_exec(p, "UPDATE det_state SET value = $1 WHERE name = 'security_id'", 1, v);
}
