// SPDX-License-Identifier: GPL-2.0
/*
 * maind billing: running totals, issuing bills with their lines and
 * notices, monthly summaries and the towns' GMP_TOWN_SUMMARY commands
 * (billing.h, Documentation/billing.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing/billing.h"

#define CHUNK	"20000"		/* bills loaded at once */

struct vec {
	void *p;
	size_t n, cap, size;
};

static void *vec_add(struct vec *v)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		void *n = realloc(v->p, cap * v->size);

		if (!n)
			return NULL;
		v->p = n;
		v->cap = cap;
	}
	return (char *)v->p + v->size * v->n++;
}

static int64_t gl(PGresult *r, int i, int c)
{
	return strtoll(PQgetvalue(r, i, c), NULL, 10);
}

/* The plain-text notice of an issued bill: complete, the notifier adds nothing. */
static int notice(struct mb_copy *nb, PGresult *b, int i, const struct mbill_line *l, size_t n,
		  int64_t total)
{
	const char *cur = PQgetvalue(b, i, 12);
	char body[MBILL_LINES_MAX * (MBILL_TEXT + 40) + 1024], amt[32], imp[32], exp[32];
	size_t o = 0;
	int month = atoi(PQgetvalue(b, i, 8));

	o += (size_t)snprintf(body + o, sizeof(body) - o,
			      "Electricity bill %s for %s\n"
			      "Customer %s, meter %s of town %s, tariff %s\n"
			      "Period: %04d-%02d, from %s to %s (%s)\n\n",
			      PQgetvalue(b, i, 0), PQgetvalue(b, i, 9), PQgetvalue(b, i, 5),
			      PQgetvalue(b, i, 7), PQgetvalue(b, i, 6), PQgetvalue(b, i, 1),
			      month / 100, month % 100, PQgetvalue(b, i, 10), PQgetvalue(b, i, 11),
			      PQgetvalue(b, i, 13));
	for (size_t k = 0; k < n && o < sizeof(body); k++) {
		mbill_fmt_minor(amt, sizeof(amt), l[k].minor);
		o += (size_t)snprintf(body + o, sizeof(body) - o, "%-100s %12s\n", l[k].text, amt);
	}
	mbill_fmt_minor(amt, sizeof(amt), total);
	mbill_fmt_kwh(imp, sizeof(imp), gl(b, i, 14));
	mbill_fmt_kwh(exp, sizeof(exp), gl(b, i, 15));
	if (o < sizeof(body))
		o += (size_t)snprintf(body + o, sizeof(body) - o,
				      "%-100s %12s\n\nImported %s kWh, exported %s kWh. "
				      "%lld hours were estimated (lines marked estimated); a "
				      "reading arriving later is charged or credited as an "
				      "adjustment on a later bill.\n", "Total", amt, imp, exp,
				      (long long)gl(b, i, 16));
	if (o >= sizeof(body))
		body[sizeof(body) - 1] = '\0';
	mbill_fmt_minor(amt, sizeof(amt), total);
	if (mb_printf(nb, "%s\tbill\t%s\t", PQgetvalue(b, i, 5), PQgetvalue(b, i, 0)))
		return -1;
	{
		char subj[128];

		snprintf(subj, sizeof(subj), "Your electricity bill for %04d-%02d: %s %s",
			 month / 100, month % 100, cur, amt);
		if (mb_text(nb, subj) || mb_printf(nb, "\t"))
			return -1;
	}
	return mb_text(nb, body) || mb_printf(nb, "\n");
}

int mbill_settle(struct maind_pg *p, const struct mbill_tariffs *T, bool issue, int64_t now)
{
	struct mb_copy tot = { 0 }, lines = { 0 }, notes = { 0 };
	struct vec acc = { .size = sizeof(struct mbill_acc) };
	struct vec adj = { .size = sizeof(struct mbill_adj) };
	struct mbill_line *l = calloc(MBILL_LINES_MAX, sizeof(*l));
	char last[24] = "0", lo[24], hi[24];
	int rc = l ? 0 : -1;

	while (!rc) {
		const char *v1[1] = { last }, *v2[2] = { lo, hi };
		PGresult *b, *ra = NULL, *rj = NULL;
		int nb, ia = 0, ij = 0;

		b = mpg_query(p, "SELECT b.id, b.plan, b.first_day, b.end_day, b.rated_day, "
			      "b.customer, b.town, b.meter, b.month, c.name, "
			      "to_char(b.period_start AT TIME ZONE tp.tz, 'YYYY-MM-DD HH24:MI'), "
			      "to_char(b.period_end AT TIME ZONE tp.tz, 'YYYY-MM-DD HH24:MI'), "
			      "tp.currency, tp.tz, b.import_mwh, b.export_mwh, b.est_hours "
			      "FROM bill_set s JOIN bills b ON b.id = s.id "
			      "JOIN customers c ON c.id = b.customer "
			      "JOIN tariff_plans tp ON tp.name = b.plan "
			      "WHERE s.id > $1 ORDER BY s.id LIMIT " CHUNK, 1, v1);
		if (!b) {
			rc = -1;
			break;
		}
		nb = PQntuples(b);
		if (!nb) {
			PQclear(b);
			break;
		}
		snprintf(lo, sizeof(lo), "%s", PQgetvalue(b, 0, 0));
		snprintf(hi, sizeof(hi), "%s", PQgetvalue(b, nb - 1, 0));
		snprintf(last, sizeof(last), "%s", hi);
		ra = mpg_query(p, "SELECT a.bill, a.version, a.kind, a.period, a.mwh, a.nano, a.hours "
			       "FROM bill_accum a JOIN bill_set s ON s.id = a.bill "
			       "WHERE a.bill BETWEEN $1 AND $2 ORDER BY a.bill", 2, v2);
		rj = ra ? mpg_query(p, "SELECT j.bill, j.version, j.reason, "
				    "extract(epoch FROM j.hour)::bigint, j.d_import_mwh, "
				    "j.d_export_mwh, j.d_nano, j.id FROM bill_adjust j "
				    "JOIN bill_set s ON s.id = j.bill WHERE j.bill BETWEEN $1 AND $2 "
				    "ORDER BY j.bill, j.id", 2, v2) : NULL;
		if (!ra || !rj)
			rc = -1;
		for (int i = 0; i < nb && !rc; i++) {
			int64_t id = gl(b, i, 0), total;
			int32_t first = (int32_t)gl(b, i, 2), end = (int32_t)gl(b, i, 3);
			size_t n;

			acc.n = adj.n = 0;
			for (; ia < PQntuples(ra) && gl(ra, ia, 0) == id; ia++) {
				struct mbill_acc *a = vec_add(&acc);

				if (!a) {
					rc = -1;
					break;
				}
				*a = (struct mbill_acc){ (int)gl(ra, ia, 1), (int)gl(ra, ia, 2),
							 (int)gl(ra, ia, 3), gl(ra, ia, 4),
							 gl(ra, ia, 5), gl(ra, ia, 6) };
			}
			for (; ij < PQntuples(rj) && gl(rj, ij, 0) == id; ij++) {
				struct mbill_adj *a = vec_add(&adj);

				if (!a) {
					rc = -1;
					break;
				}
				memset(a, 0, sizeof(*a));
				a->id = gl(rj, ij, 7);
				a->version = (int)gl(rj, ij, 1);
				snprintf(a->reason, sizeof(a->reason), "%s", PQgetvalue(rj, ij, 2));
				a->hour = gl(rj, ij, 3);
				a->d_import_mwh = gl(rj, ij, 4);
				a->d_export_mwh = gl(rj, ij, 5);
				a->d_nano = gl(rj, ij, 6);
			}
			if (rc)
				break;
			if (!issue) {	/* running: standing charge for every local day started */
				int32_t upto = PQgetisnull(b, i, 4) ? first : (int32_t)gl(b, i, 4) + 1;

				if (upto < end)
					end = upto;
			}
			n = mbill_make_lines(T, PQgetvalue(b, i, 1), first, end, acc.p, acc.n, adj.p,
					     adj.n, l, MBILL_LINES_MAX, &total);
			if (n == MBILL_LINES_MAX) {
				snprintf(p->err, sizeof(p->err), "bill %lld: more than %d lines",
					 (long long)id, MBILL_LINES_MAX - 1);
				rc = -1;
				break;
			}
			if (mb_printf(&tot, "%lld\t%lld\n", (long long)id, (long long)total))
				rc = -1;
			for (size_t k = 0; issue && !rc && k < n; k++)
				if (mb_printf(&lines, "%lld\t%zu\t%d\t%d\t%d\t", (long long)id, k + 1,
					      l[k].kind, l[k].version, l[k].period) ||
				    mb_text(&lines, l[k].text) ||
				    mb_printf(&lines, "\t%lld\t%lld\t%lld\n", (long long)l[k].qty,
					      (long long)l[k].unit_milli, (long long)l[k].minor))
					rc = -1;
			if (issue && !rc && notice(&notes, b, i, l, n, total))
				rc = -1;
		}
		PQclear(b);
		PQclear(ra);
		PQclear(rj);
		if (!rc && (mb_flush(p, "st_total", &tot) ||
			    mb_flush(p, "bill_lines (bill, no, kind, version, period, text, qty, unit, "
				     "amount_minor)", &lines) ||
			    mb_flush(p, "notices (customer, kind, ref, subject, body)", &notes)))
			rc = -1;
	}
	if (!rc) {
		char a[24];
		const char *v[1] = { a };

		snprintf(a, sizeof(a), "%lld", (long long)now);
		rc = issue ? mpg_exec(p, "UPDATE bills b SET total_minor = t.total, state = 'issued', "
				      "issued_at = to_timestamp($1) FROM st_total t WHERE b.id = t.bill",
				      1, v) :
			     mb_exec(p, "UPDATE bills b SET total_minor = t.total FROM st_total t "
				     "WHERE b.id = t.bill AND b.total_minor <> t.total");
	}
	if (rc && !p->err[0])
		snprintf(p->err, sizeof(p->err), "billing: out of memory");
	mb_free(&tot);
	mb_free(&lines);
	mb_free(&notes);
	free(acc.p);
	free(adj.p);
	free(l);
	return rc;
}

/* Per-meter and per-town summaries of the bills in bill_due, the towns' commands. */
static int summaries(struct maind_pg *p)
{
	PGresult *r = mpg_query(p, "SELECT to_regclass('meter_alarms') IS NOT NULL", 0, NULL);
	bool alarms;
	char sql[4096];

	if (!r)
		return -1;
	alarms = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO town_months (town, month, meters, import_wh, export_wh, renew_wh, "
		 "lent_wh, borrowed_wh, admin_hours, alarms, est_hours, billed_minor) "
		 "SELECT tm.town, tm.month, tm.meters, tm.i, tm.e, tm.r, "
		 "(SELECT COALESCE(sum(l.power_w * GREATEST(0, extract(epoch FROM LEAST(l.until, tm.t1)"
		 " - GREATEST(l.at, tm.t0)))) / 3600, 0)::bigint FROM loans l WHERE l.town = tm.town "
		 "AND l.lender = tm.town AND l.state = 0), "
		 "(SELECT COALESCE(sum(l.power_w * GREATEST(0, extract(epoch FROM LEAST(l.until, tm.t1)"
		 " - GREATEST(l.at, tm.t0)))) / 3600, 0)::bigint FROM loans l WHERE l.town = tm.town "
		 "AND l.borrower = tm.town AND l.state = 0), "
		 "(SELECT count(*) FROM town_hours h WHERE h.town = tm.town AND h.hour >= tm.t0 AND "
		 "h.hour < tm.t1 AND h.flags & %d <> 0), %s, tm.eh, tm.billed "
		 "FROM (SELECT b.town, b.month, count(DISTINCT b.meter) meters, "
		 "round(sum(b.import_mwh) / 1000.0)::bigint i, round(sum(b.export_mwh) / 1000.0)::bigint e, "
		 "round(sum(b.renew_mwh) / 1000.0)::bigint r, sum(b.est_hours) eh, "
		 "sum(b.total_minor) billed, min(b.period_start) t0, max(b.period_end) t1 "
		 "FROM bills b JOIN (SELECT DISTINCT x.town, x.month FROM bills x JOIN bill_due d "
		 "ON d.id = x.id) k ON k.town = b.town AND k.month = b.month "
		 "WHERE b.state = 'issued' GROUP BY b.town, b.month) tm "
		 "ON CONFLICT (town, month) DO UPDATE SET meters = EXCLUDED.meters, "
		 "import_wh = EXCLUDED.import_wh, export_wh = EXCLUDED.export_wh, "
		 "renew_wh = EXCLUDED.renew_wh, lent_wh = EXCLUDED.lent_wh, "
		 "borrowed_wh = EXCLUDED.borrowed_wh, admin_hours = EXCLUDED.admin_hours, "
		 "alarms = EXCLUDED.alarms, est_hours = EXCLUDED.est_hours, "
		 "billed_minor = EXCLUDED.billed_minor, created = now()",
		 GMP_HF_ADMIN,
		 alarms ? "(SELECT count(*) FROM meter_alarms a WHERE a.town = tm.town AND "
			  "a.active AND a.at >= tm.t0 AND a.at < tm.t1)" : "0");
	return mb_exec(p, "INSERT INTO meter_months SELECT b.id, b.town, b.meter, b.month, "
		       "b.customer, b.import_mwh, b.export_mwh, b.renew_mwh, "
		       "COALESCE(q.names, '{}'), COALESCE(q.vals, '{}'), b.max_mwh, b.max_at, "
		       "b.total_minor, b.est_hours FROM bill_due d JOIN bills b ON b.id = d.id "
		       "LEFT JOIN LATERAL (SELECT array_agg(nm ORDER BY nm) names, "
		       "array_agg(s ORDER BY nm) vals FROM (SELECT v.period_names[a.period + 1] nm, "
		       "sum(a.mwh)::bigint s FROM bill_accum a JOIN tariff_versions v ON "
		       "v.id = a.version WHERE a.bill = b.id AND a.kind IN (0, 2) GROUP BY 1) z) q "
		       "ON true ON CONFLICT DO NOTHING") ||
	       mb_exec(p, sql) ||
	       mb_exec(p, "WITH c AS (INSERT INTO commands (town, tseq, type, args) "
		       "SELECT t.town, GREATEST(COALESCE((SELECT max(x.tseq) FROM commands x "
		       "WHERE x.town = t.town), 0), w.cmd_floor) + 1, 25, ARRAY[t.month, t.meters, "
		       "t.import_wh, t.export_wh, t.renew_wh, t.lent_wh, t.borrowed_wh, "
		       "t.admin_hours, t.alarms, t.est_hours, t.billed_minor]::bigint[] "
		       "FROM town_months t JOIN towns w ON w.id = t.town "
		       "JOIN (SELECT DISTINCT x.town, x.month FROM bills x JOIN bill_due d "
		       "ON d.id = x.id) k ON k.town = t.town AND k.month = t.month "
		       "RETURNING town, tseq, args[1] AS month) "
		       "UPDATE town_months t SET tseq = c.tseq FROM c WHERE t.town = c.town AND "
		       "t.month = c.month");
}

int mbill_issue(struct maind_pg *p, int32_t month, int64_t now, int64_t *issued)
{
	struct mbill_tariffs T;
	char a[24], b[24];
	const char *v[2] = { a, b };
	PGresult *r;
	int rc;

	if (issued)
		*issued = 0;
	if (mbill_rate(p, NULL) || mbill_tariffs_load(p, &T))
		return -1;
	if (mbill_lock(p)) {
		mbill_tariffs_free(&T);
		return -1;
	}
	snprintf(a, sizeof(a), "%d", month);
	snprintf(b, sizeof(b), "%lld", (long long)now);
	rc = mbill_begin(p) || mbill_ensure(p, month, now) ||
	     mpg_exec(p, "CREATE TEMP TABLE bill_due ON COMMIT DROP AS SELECT id FROM bills "
		      "WHERE state = 'running' AND period_end <= to_timestamp($2) AND "
		      "($1::int = 0 OR month = $1::int)", 2, v);
	if (!rc) {	/* nothing due: done */
		r = mpg_query(p, "SELECT count(*) FROM bill_due", 0, NULL);
		if (!r)
			rc = -1;
		else if (!strcmp(PQgetvalue(r, 0, 0), "0")) {
			PQclear(r);
			rc = mb_exec(p, "COMMIT");
			if (rc)
				PQclear(PQexec(p->c, "ROLLBACK"));
			mbill_unlock(p);
			mbill_tariffs_free(&T);
			return rc ? -1 : 0;
		}
		PQclear(r);
	}
	/* corrections waiting for a bill: on the customer's first bill issued now */
	rc = rc || mb_exec(p, "UPDATE bill_adjust j SET bill = (SELECT b.id FROM bill_due d "
			   "JOIN bills b ON b.id = d.id WHERE b.customer = j.customer ORDER BY "
			   "b.period_start LIMIT 1) WHERE j.bill IS NULL AND j.customer IN "
			   "(SELECT b.customer FROM bill_due d JOIN bills b ON b.id = d.id)");
	rc = rc || mbill_estimate(p, &T) || mb_exec(p, "DELETE FROM bill_set") ||
	     mb_exec(p, "INSERT INTO bill_set SELECT id FROM bill_due") ||
	     mbill_settle(p, &T, true, now) || summaries(p);
	if (!rc && issued) {
		r = mpg_query(p, "SELECT count(*) FROM bill_due", 0, NULL);
		if (!r)
			rc = -1;
		else
			*issued = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
	}
	rc = rc || mb_exec(p, "COMMIT");
	if (rc)
		PQclear(PQexec(p->c, "ROLLBACK"));
	mbill_unlock(p);
	mbill_tariffs_free(&T);
	return rc ? -1 : 0;
}
