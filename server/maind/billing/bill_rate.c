// SPDX-License-Identifier: GPL-2.0
/*
 * maind billing: validation and rating of hours into running bills
 * (billing.h, Documentation/billing.md "Rating" and "VEE").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing/billing.h"

#define LOCK_KEY	MPG_LOCK_BILL	/* pg_advisory_lock: one rating or bill run at a time */

/* What a batch of rated hours writes, staged for set-based statements. */
struct outs {
	struct mb_copy hours, acc, adj, bills, vee, est;
};

static void outs_free(struct outs *o)
{
	mb_free(&o->hours);
	mb_free(&o->acc);
	mb_free(&o->adj);
	mb_free(&o->bills);
	mb_free(&o->vee);
	mb_free(&o->est);
}

/* Columns of a row to rate (the rating query and the estimates query). */
enum {
	C_CUSTOMER, C_BILL, C_BSTATE, C_PLAN, C_TOWN, C_METER, C_HOUR, C_IMP, C_EXP, C_REN,
	C_FLAGS, C_PMIN, C_PMAX, C_YMD, C_WDAY, C_MIN, C_DAY, C_OIMP, C_OEXP, C_ONANO, C_OEST,
	C_OBILL, C_BIMP, C_BHOURS, C_METHOD, C_RUNNING, C_OBSTATE, C_NCOLS
};

static int64_t col(PGresult *r, int i, int c)
{
	return strtoll(PQgetvalue(r, i, c), NULL, 10);
}

static int vee(struct outs *o, const char *town, const char *meter, int64_t hour,
	       const char *code, const char *detail)
{
	return mb_printf(&o->vee, "%s\t%s\t%lld\t%s\t", town, meter, (long long)hour, code) ||
	       mb_text(&o->vee, detail) || mb_printf(&o->vee, "\n");
}

/*
 * Rate one row: validate (real hours), price with the version in force on
 * its local day, and stage what it changes. *cum: the bill's import so far
 * (tiers). 0, or -1 out of memory.
 */
static int rate_row(const struct mbill_tariffs *T, PGresult *r, int i, bool estimate,
		    int64_t *cum, struct outs *o, int64_t *rated)
{
	const char *town = PQgetvalue(r, i, C_TOWN), *meter = PQgetvalue(r, i, C_METER);
	int64_t hour = col(r, i, C_HOUR), imp = col(r, i, C_IMP), exp = col(r, i, C_EXP);
	int64_t ren = col(r, i, C_REN), flags = col(r, i, C_FLAGS);
	int64_t bill = col(r, i, C_BILL), bhours = col(r, i, C_BHOURS);
	bool issued = !strcmp(PQgetvalue(r, i, C_BSTATE), "issued");
	bool has_old = !PQgetisnull(r, i, C_OIMP);
	const struct mbill_version *v = mbill_version_at(T, PQgetvalue(r, i, C_PLAN),
							 (int32_t)col(r, i, C_DAY));
	struct tariff_part parts[TARIFF_MAX_PERIODS];
	unsigned np, period = 0;
	int64_t nano_i = 0, nano_e, net;
	char d[160];

	if (!v) {
		snprintf(d, sizeof(d), "no version of tariff %s in force on this day",
			 PQgetvalue(r, i, C_PLAN));
		return vee(o, town, meter, hour, "no-tariff", d);
	}
	if (!estimate) {
		if (imp < 0 || exp < 0 || ren < 0) {
			snprintf(d, sizeof(d), "negative energy (import %lld, export %lld, "
				 "renewable %lld mWh): rejected, estimated at the bill",
				 (long long)imp, (long long)exp, (long long)ren);
			return vee(o, town, meter, hour, "negative", d);
		}
		if (imp > MBILL_MAX_HOUR_MWH || exp > MBILL_MAX_HOUR_MWH || ren > MBILL_MAX_HOUR_MWH) {
			snprintf(d, sizeof(d), "impossible energy (import %lld, export %lld, "
				 "renewable %lld mWh; the limit is %d mWh): rejected, estimated at "
				 "the bill", (long long)imp, (long long)exp, (long long)ren,
				 MBILL_MAX_HOUR_MWH);
			return vee(o, town, meter, hour, "impossible", d);
		}
		if (flags & GMP_HF_INCOMPLETE) {
			snprintf(d, sizeof(d), "readings do not cover the hour (%lld mWh): billed "
				 "as read", (long long)imp);
			if (vee(o, town, meter, hour, "incomplete", d))
				return -1;
		}
		if (bhours >= 24) {
			int64_t mean = col(r, i, C_BIMP) / bhours;
			int64_t lim = mean * MBILL_SPIKE_FACTOR;

			if (lim < MBILL_SPIKE_FLOOR_MWH)
				lim = MBILL_SPIKE_FLOOR_MWH;
			if (imp > lim) {
				snprintf(d, sizeof(d), "import %lld mWh above %d x the mean hour "
					 "%lld mWh of the bill: billed as read, to check",
					 (long long)imp, MBILL_SPIKE_FACTOR, (long long)mean);
				if (vee(o, town, meter, hour, "spike", d))
					return -1;
			}
		}
	}
	/* price: tiers over the period's import so far; else the local TOU period */
	if (v->t.type == TARIFF_TIERED) {
		np = tariff_split_import(&v->t, 0, (uint64_t)*cum, (uint64_t)imp, parts);
		period = np ? parts[0].period : (unsigned)(v->t.nperiods - 1);
		if (!np)	/* zero import: the tier it would start in */
			for (period = 0; period + 1 < v->t.nperiods &&
			     (uint64_t)*cum >= v->t.tier_upto_mwh[period]; period++)
				;
	} else {
		period = mbill_period_local(&v->t, (int32_t)col(r, i, C_YMD),
					    (int)col(r, i, C_WDAY), (int)col(r, i, C_MIN));
		parts[0] = (struct tariff_part){ period, (uint64_t)imp, imp * v->t.price[period] };
		np = 1;
	}
	for (unsigned k = 0; k < np; k++)
		nano_i += parts[k].cost_nano;
	nano_e = tariff_export_credit_nano(&v->t, (uint64_t)exp);
	net = nano_i - nano_e;
	if (!estimate && v->t.type == TARIFF_TOU &&
	    ((int64_t)period < col(r, i, C_PMIN) || (int64_t)period > col(r, i, C_PMAX))) {
		snprintf(d, sizeof(d), "the town's tariff period %lld..%lld, maind's %u (%s): "
			 "rated by maind's", (long long)col(r, i, C_PMIN),
			 (long long)col(r, i, C_PMAX), period, v->t.period_name[period]);
		if (vee(o, town, meter, hour, "period", d))
			return -1;
	}
	if (has_old || issued) {
		/* a correction: an adjustment line, never a silent rewrite */
		int64_t oi = has_old ? col(r, i, C_OIMP) : 0, oe = has_old ? col(r, i, C_OEXP) : 0;
		int64_t on = has_old ? col(r, i, C_ONANO) : 0;
		bool oest = has_old && PQgetvalue(r, i, C_OEST)[0] == 't';
		int64_t from = has_old ? col(r, i, C_OBILL) : bill;
		bool from_running = has_old ? !strcmp(PQgetvalue(r, i, C_OBSTATE), "running") : !issued;
		const char *to = from_running ? PQgetvalue(r, i, has_old ? C_OBILL : C_BILL) :
				 PQgetisnull(r, i, C_RUNNING) ? "\\N" : PQgetvalue(r, i, C_RUNNING);

		if (!oest && has_old && oi == imp && oe == exp)
			return 0;	/* the same values again (another period's row) */
		if (mb_printf(&o->adj, "%s\t%lld\t%d\t%lld\t%s\t%lld\t%lld\t%lld\t%s\n",
			      PQgetvalue(r, i, C_CUSTOMER), (long long)hour, v->id, (long long)from,
			      to, (long long)(imp - oi), (long long)(exp - oe), (long long)(net - on),
			      oest ? "estimate replaced by reading" :
			      has_old ? "revised reading" : "late reading") ||
		    mb_printf(&o->hours, "%s\t%lld\t%lld\t%d\t%u\t%lld\t%lld\t%lld\t%lld\tf\n",
			      PQgetvalue(r, i, C_CUSTOMER), (long long)hour, (long long)from, v->id,
			      period, (long long)imp, (long long)exp, (long long)ren, (long long)net))
			return -1;
		if (rated)
			(*rated)++;
		return 0;
	}
	/* a new hour of the running bill */
	for (unsigned k = 0; k < np; k++)
		if (mb_printf(&o->acc, "%lld\t%d\t%d\t%u\t%llu\t%lld\t%d\n", (long long)bill, v->id,
			      estimate ? MBILL_IMPORT_EST : MBILL_IMPORT, parts[k].period,
			      (unsigned long long)parts[k].mwh, (long long)parts[k].cost_nano,
			      k == 0))
			return -1;
	if (!np && mb_printf(&o->acc, "%lld\t%d\t%d\t%u\t0\t0\t1\n", (long long)bill, v->id,
			     estimate ? MBILL_IMPORT_EST : MBILL_IMPORT, period))
		return -1;
	if (mb_printf(&o->acc, "%lld\t%d\t%d\t0\t%lld\t%lld\t1\n", (long long)bill, v->id,
		      estimate ? MBILL_EXPORT_EST : MBILL_EXPORT, (long long)exp, (long long)nano_e) ||
	    mb_printf(&o->hours, "%s\t%lld\t%lld\t%d\t%u\t%lld\t%lld\t%lld\t%lld\t%c\n",
		      PQgetvalue(r, i, C_CUSTOMER), (long long)hour, (long long)bill, v->id, period,
		      (long long)imp, (long long)exp, (long long)ren, (long long)net,
		      estimate ? 't' : 'f') ||
	    mb_printf(&o->bills, "%lld\t%lld\t%lld\t%lld\t%lld\t%s\t%c\n", (long long)bill,
		      (long long)imp, (long long)exp, (long long)ren, (long long)hour,
		      PQgetvalue(r, i, C_DAY), estimate ? 't' : 'f'))
		return -1;
	if (estimate && (mb_printf(&o->est, "%s\t%s\t%s\t%lld\t%lld\t%lld\t%lld\t%s\t%lld\n",
				   PQgetvalue(r, i, C_CUSTOMER), town, meter, (long long)hour,
				   (long long)imp, (long long)exp, (long long)ren,
				   PQgetvalue(r, i, C_METHOD), (long long)bill)))
		return -1;
	*cum += imp;
	if (rated)
		(*rated)++;
	return 0;
}

/* The staging tables (temporary, this connection's) and the transaction, in one trip. */
static const char stage_sql[] =
	"BEGIN ISOLATION LEVEL REPEATABLE READ;"
	"CREATE TEMP TABLE IF NOT EXISTS st_hours (customer integer, hour bigint, bill bigint,"
	" version integer, period smallint, import_mwh bigint, export_mwh bigint,"
	" renew_mwh bigint, nano bigint, estimated boolean) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS st_acc (bill bigint, version integer, kind smallint,"
	" period smallint, mwh bigint, nano bigint, hours integer) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS st_adj (customer integer, hour bigint, version integer,"
	" from_bill bigint, bill bigint, d_import bigint, d_export bigint, d_nano bigint,"
	" reason text) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS st_bill (bill bigint, i bigint, e bigint, r bigint,"
	" hour bigint, day integer, est boolean) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS st_vee (town integer, meter integer, hour bigint,"
	" code text, detail text) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS st_est (customer integer, town integer, meter integer,"
	" hour bigint, import_mwh bigint, export_mwh bigint, renew_mwh bigint, method text,"
	" bill bigint) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS bill_set (id bigint PRIMARY KEY) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS st_total (bill bigint, total bigint) ON COMMIT DELETE ROWS;"
	/* JIT compiling the big plans costs seconds and gains nothing here */
	"SET LOCAL jit = off";

/* COPY b into table, then run sql on it (nothing when b is empty). 0 or -1. */
static int stage(struct maind_pg *p, const char *table, struct mb_copy *b, const char *sql)
{
	bool any = b->rows > 0;

	return any && (mb_flush(p, table, b) || mb_exec(p, sql)) ? -1 : 0;
}

/* Apply the staged rows. 0 or -1. */
static int apply(struct maind_pg *p, struct outs *o)
{
	return stage(p, "st_hours", &o->hours,
		     "INSERT INTO bill_hours SELECT customer, to_timestamp(hour), bill, "
		     "version, period, import_mwh, export_mwh, renew_mwh, nano, estimated "
		     "FROM st_hours ON CONFLICT (customer, hour) DO UPDATE SET "
		     "version = EXCLUDED.version, period = EXCLUDED.period, "
		     "import_mwh = EXCLUDED.import_mwh, export_mwh = EXCLUDED.export_mwh, "
		     "renew_mwh = EXCLUDED.renew_mwh, nano = EXCLUDED.nano, "
		     "estimated = EXCLUDED.estimated") ||
	       stage(p, "st_acc", &o->acc,
		     "INSERT INTO bill_accum SELECT bill, version, kind, period, sum(mwh), "
		     "sum(nano), sum(hours) FROM st_acc GROUP BY 1, 2, 3, 4 "
		     "ON CONFLICT (bill, version, kind, period) DO UPDATE SET "
		     "mwh = bill_accum.mwh + EXCLUDED.mwh, nano = bill_accum.nano + EXCLUDED.nano, "
		     "hours = bill_accum.hours + EXCLUDED.hours") ||
	       stage(p, "st_adj", &o->adj,
		     "WITH a AS (INSERT INTO bill_adjust (customer, hour, version, from_bill, "
		     "bill, d_import_mwh, d_export_mwh, d_nano, reason) SELECT customer, "
		     "to_timestamp(hour), version, from_bill, bill, d_import, d_export, d_nano, "
		     "reason FROM st_adj RETURNING id, customer, hour, bill), "
		     "e AS (UPDATE meter_estimates e SET replaced_at = now(), adjust = a.id "
		     "FROM a WHERE e.customer = a.customer AND e.hour = a.hour AND "
		     "e.replaced_at IS NULL) "
		     "INSERT INTO bill_set SELECT DISTINCT bill FROM a WHERE bill IS NOT NULL "
		     "ON CONFLICT DO NOTHING") ||
	       stage(p, "st_bill", &o->bills,
		     "WITH s AS (SELECT bill, sum(i) i, sum(e) e, sum(r) r, "
		     "count(*) FILTER (WHERE NOT est) h, count(*) FILTER (WHERE est) eh, "
		     "COALESCE(max(i) FILTER (WHERE NOT est), 0) mx, "
		     "(array_agg(hour ORDER BY i DESC, hour) FILTER (WHERE NOT est))[1] mxat, "
		     "max(hour) FILTER (WHERE NOT est) up, max(day) FILTER (WHERE NOT est) dy "
		     "FROM st_bill GROUP BY bill), u AS (UPDATE bills b SET "
		     "import_mwh = b.import_mwh + s.i, "
		     "export_mwh = b.export_mwh + s.e, renew_mwh = b.renew_mwh + s.r, "
		     "hours = b.hours + s.h, est_hours = b.est_hours + s.eh, "
		     "max_mwh = GREATEST(b.max_mwh, s.mx), max_at = CASE WHEN s.mx > b.max_mwh "
		     "THEN to_timestamp(s.mxat) ELSE b.max_at END, "
		     "rated_upto = GREATEST(b.rated_upto, to_timestamp(s.up)), "
		     "rated_day = GREATEST(b.rated_day, s.dy) FROM s WHERE b.id = s.bill "
		     "RETURNING b.id) INSERT INTO bill_set SELECT id FROM u ON CONFLICT DO NOTHING") ||
	       stage(p, "st_vee", &o->vee,
		     "INSERT INTO vee_issues (town, meter, hour, code, detail) SELECT town, "
		     "meter, to_timestamp(hour), code, detail FROM st_vee") ||
	       stage(p, "st_est", &o->est,
		     "INSERT INTO meter_estimates (customer, town, meter, hour, import_mwh, "
		     "export_mwh, renew_mwh, method, bill) SELECT customer, town, meter, "
		     "to_timestamp(hour), import_mwh, export_mwh, renew_mwh, method, bill "
		     "FROM st_est");
}

/* Rate the rows of a query in the rating layout; bills touched go to bill_set. */
static int rate_query(struct maind_pg *p, const struct mbill_tariffs *T, const char *sql,
		      int n, const char *const *v, bool estimate, int64_t *rated)
{
	struct outs o = { 0 };
	PGresult *r = mpg_query(p, sql, n, v);
	int64_t cur = -1, cum = 0;
	int rc = 0;

	if (!r)
		return -1;
	if (PQnfields(r) != C_NCOLS) {
		snprintf(p->err, sizeof(p->err), "billing: rating query: %d columns", PQnfields(r));
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r) && !rc; i++) {
		int64_t bill = col(r, i, C_BILL);

		if (bill != cur) {
			cur = bill;
			cum = col(r, i, C_BIMP);
		}
		rc = rate_row(T, r, i, estimate, &cum, &o, rated);
	}
	PQclear(r);
	if (rc)
		snprintf(p->err, sizeof(p->err), "billing: out of memory");
	if (!rc)
		rc = apply(p, &o);
	outs_free(&o);
	return rc;
}

/* The local-time columns of hour `h` for plan zone tz, in the rating layout. */
#define LOCAL_COLS(h) \
	"to_char(" h " AT TIME ZONE tp.tz, 'YYYYMMDD')::int, " \
	"extract(dow FROM " h " AT TIME ZONE tp.tz)::int, " \
	"(extract(hour FROM " h " AT TIME ZONE tp.tz) * 60 + " \
	"extract(minute FROM " h " AT TIME ZONE tp.tz))::int, " \
	"(" h " AT TIME ZONE tp.tz)::date - date '1970-01-01'"

/* bills' columns for customer c, local month start ls (timestamp), plan zone tp.tz */
#define BILL_COLS \
	"c.id, c.town, c.meter, c.tariff, to_char(l.ls, 'YYYYMM')::int, " \
	"l.ls AT TIME ZONE tp.tz, (l.ls + interval '1 month') AT TIME ZONE tp.tz, " \
	"GREATEST(l.ls::date, (c.since AT TIME ZONE tp.tz)::date) - date '1970-01-01', " \
	"LEAST((l.ls + interval '1 month')::date, COALESCE(((c.until - interval '1 microsecond')" \
	" AT TIME ZONE tp.tz)::date + 1, 'infinity'::date)) - date '1970-01-01'"
#define BILL_INSERT \
	"INSERT INTO bills (customer, town, meter, plan, month, period_start, period_end, " \
	"first_day, end_day) SELECT DISTINCT ON (c.id, l.ls) " BILL_COLS

int mbill_lock(struct maind_pg *p)
{
	return mb_exec(p, "SELECT pg_advisory_lock(" LOCK_KEY ")");
}

void mbill_unlock(struct maind_pg *p)
{
	PQclear(PQexec(p->c, "SELECT pg_advisory_unlock(" LOCK_KEY ")"));
}

int mbill_begin(struct maind_pg *p)
{
	PGresult *r = PQexec(p->c, stage_sql);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;

	if (rc)
		snprintf(p->err, sizeof(p->err), "billing: %s", PQresultErrorMessage(r));
	PQclear(r);
	return rc;
}

/* Rate what is new of the towns listed ("{1,2,3}"). */
static int rate_new(struct maind_pg *p, const struct mbill_tariffs *T, const char *towns,
		    int64_t *rated)
{
	const char *v[1] = { towns };

	return mpg_exec(p, "CREATE TEMP TABLE bill_new ON COMMIT DROP AS "
		       "SELECT h.town, h.meter, h.hour, sum(h.import_mwh) imp, "
		       "sum(h.export_mwh) exp, sum(h.renew_mwh) ren, bit_or(h.flags) fl, "
		       "min(h.period) pmin, max(h.period) pmax FROM meter_hours h "
		       "JOIN (SELECT h2.town, h2.meter, h2.hour FROM meter_hours h2 "
		       "JOIN bill_towns w ON w.town = h2.town WHERE h2.seq > w.rated_seq AND "
		       "w.town = ANY($1::int[]) UNION SELECT h3.town, h3.meter, h3.hour FROM "
		       "meter_hours h3 JOIN bill_rerate q ON q.town = h3.town AND q.meter = "
		       "h3.meter AND h3.hour >= q.since WHERE q.town = ANY($1::int[]) AND NOT "
		       "EXISTS (SELECT 1 FROM bill_hours bh JOIN customers c2 ON c2.id = "
		       "bh.customer WHERE c2.town = h3.town AND c2.meter = h3.meter AND "
		       "bh.hour = h3.hour)) k "
		       "ON k.town = h.town AND k.meter = h.meter AND k.hour = h.hour "
		       "GROUP BY 1, 2, 3", 1, v) ||
	       mpg_exec(p, "UPDATE bill_towns w SET rated_seq = m.s FROM (SELECT h.town, "
			"max(h.seq) s FROM meter_hours h JOIN bill_towns w2 ON w2.town = h.town "
			"WHERE h.seq > w2.rated_seq AND w2.town = ANY($1::int[]) GROUP BY h.town) m "
			"WHERE w.town = m.town", 1, v) ||
	       mpg_exec(p, "DELETE FROM bill_rerate WHERE town = ANY($1::int[])", 1, v) ||
	       mb_exec(p, BILL_INSERT " FROM bill_new n JOIN customers c ON c.town = n.town AND "
		       "c.meter = n.meter AND c.since <= n.hour AND (c.until IS NULL OR "
		       "n.hour < c.until) JOIN tariff_plans tp ON tp.name = c.tariff "
		       "CROSS JOIN LATERAL (SELECT date_trunc('month', n.hour AT TIME ZONE tp.tz) "
		       "AS ls) l ON CONFLICT (customer, period_start) DO NOTHING") ||
	       rate_query(p, T, "SELECT c.id, b.id, b.state, c.tariff, n.town, n.meter, "
			  "extract(epoch FROM n.hour)::bigint, n.imp, n.exp, n.ren, n.fl, n.pmin, "
			  "n.pmax, " LOCAL_COLS("n.hour") ", bh.import_mwh, bh.export_mwh, "
			  "bh.nano, bh.estimated, bh.bill, b.import_mwh, b.hours, NULL::text, "
			  "CASE WHEN bh.customer IS NOT NULL OR b.state = 'issued' THEN "
			  "(SELECT x.id FROM bills x WHERE x.customer = c.id AND x.state = "
			  "'running' ORDER BY x.customer, x.period_start LIMIT 1) END, ob.state "
			  "FROM bill_new n JOIN customers c ON c.town = n.town AND "
			  "c.meter = n.meter AND c.since <= n.hour AND (c.until IS NULL OR "
			  "n.hour < c.until) JOIN tariff_plans tp ON tp.name = c.tariff "
			  "JOIN bills b ON b.customer = c.id AND b.period_start = "
			  "date_trunc('month', n.hour AT TIME ZONE tp.tz) AT TIME ZONE tp.tz "
			  "LEFT JOIN bill_hours bh ON bh.customer = c.id AND bh.hour = n.hour "
			  "LEFT JOIN bills ob ON ob.id = bh.bill ORDER BY c.id, n.hour", 0, NULL,
			  false, rated);
}

/* Rate one chunk of towns in its own transaction. */
static int rate_chunk(struct maind_pg *p, const struct mbill_tariffs *T, const char *towns,
		      int64_t *rated)
{
	int rc = mbill_begin(p) || rate_new(p, T, towns, rated) ||
		 mbill_settle(p, T, false, 0) || mb_exec(p, "COMMIT");

	if (rc)
		PQclear(PQexec(p->c, "ROLLBACK"));
	return rc;
}

int mbill_rate(struct maind_pg *p, int64_t *rated)
{
	struct mbill_tariffs T;
	PGresult *r = NULL;
	char *towns = NULL;
	size_t len = 0;
	int64_t rows = 0;
	int rc;

	if (rated)
		*rated = 0;
	if (mbill_tariffs_load(p, &T))
		return -1;
	if (mbill_lock(p)) {
		mbill_tariffs_free(&T);
		return -1;
	}
	/* the towns with new rows, in chunks of about MBILL_RATE_CHUNK rows:
	 * what one transaction holds in memory stays bounded */
	rc = mb_exec(p, "INSERT INTO bill_towns (town) SELECT id FROM towns "
		     "ON CONFLICT DO NOTHING");
	if (!rc) {
		/* and the towns of customers added since (bill_rerate) */
		r = mpg_query(p, "SELECT town, sum(n) FROM (SELECT w.town, count(*) n FROM "
			      "bill_towns w JOIN meter_hours h ON h.town = w.town AND h.seq > "
			      "w.rated_seq GROUP BY w.town UNION ALL SELECT q.town, count(*) FROM "
			      "bill_rerate q JOIN meter_hours h ON h.town = q.town AND h.meter = "
			      "q.meter AND h.hour >= q.since GROUP BY q.town UNION ALL SELECT town, 0 "
			      "FROM bill_rerate) x GROUP BY town ORDER BY town", 0, NULL);
		rc = r ? 0 : -1;
	}
	if (!rc)
		towns = malloc((size_t)PQntuples(r) * 8 + 3);
	if (!rc && !towns) {
		snprintf(p->err, sizeof(p->err), "billing: out of memory");
		rc = -1;
	}
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		len += (size_t)sprintf(towns + len, "%c%s", len ? ',' : '{', PQgetvalue(r, i, 0));
		rows += strtoll(PQgetvalue(r, i, 1), NULL, 10);
		if (rows >= MBILL_RATE_CHUNK || i + 1 == PQntuples(r)) {
			strcpy(towns + len, "}");
			rc = rate_chunk(p, &T, towns, rated);
			len = 0;
			rows = 0;
		}
	}
	PQclear(r);
	free(towns);
	mbill_unlock(p);
	mbill_tariffs_free(&T);
	return rc ? -1 : 0;
}

/*
 * Estimate the missing hours of the bills in bill_due (Documentation/billing.md
 * "Estimation"): the mean of the same hour 1..4 weeks before (real hours
 * only), else linear between the nearest real hours of the customer before
 * and after, else the nearest one, else zero.
 */
int mbill_estimate(struct maind_pg *p, const struct mbill_tariffs *T)
{
	return mb_exec(p, "CREATE TEMP TABLE bill_est ON COMMIT DROP AS SELECT s.id FROM "
		       "bill_due s JOIN bills b ON b.id = s.id JOIN customers c ON c.id = b.customer "
		       "WHERE b.hours + b.est_hours < extract(epoch FROM LEAST(b.period_end, "
		       "COALESCE(c.until, b.period_end)) - GREATEST(b.period_start, c.since)) / 3600") ||
	       rate_query(p, T, "SELECT c.id, b.id, b.state, c.tariff, c.town, c.meter, "
			  "extract(epoch FROM g.h)::bigint, e.i, e.e, e.r, 1024, 0, 0, "
			  LOCAL_COLS("g.h") ", NULL, NULL, NULL, NULL, NULL, b.import_mwh, "
			  "b.hours, e.method, NULL, NULL "
			  "FROM bill_est s JOIN bills b ON b.id = s.id "
			  "JOIN customers c ON c.id = b.customer "
			  "JOIN tariff_plans tp ON tp.name = c.tariff "
			  "CROSS JOIN LATERAL generate_series(date_trunc('hour', "
			  "GREATEST(b.period_start, c.since) + interval '59 minutes 59 seconds'), "
			  "LEAST(b.period_end, COALESCE(c.until, b.period_end)) - interval '1 hour', "
			  "interval '1 hour') g(h) "
			  "LEFT JOIN LATERAL (SELECT count(*) n, sum(x.import_mwh) i, "
			  "sum(x.export_mwh) e, sum(x.renew_mwh) r FROM bill_hours x "
			  "WHERE x.customer = c.id AND NOT x.estimated AND x.hour IN "
			  "(g.h - interval '7 days', g.h - interval '14 days', "
			  "g.h - interval '21 days', g.h - interval '28 days')) w ON true "
			  "LEFT JOIN LATERAL (SELECT x.hour, x.import_mwh, x.export_mwh, "
			  "x.renew_mwh FROM bill_hours x WHERE x.customer = c.id AND NOT x.estimated "
			  "AND x.hour < g.h ORDER BY x.hour DESC LIMIT 1) lb ON w.n = 0 "
			  "LEFT JOIN LATERAL (SELECT x.hour, x.import_mwh, x.export_mwh, "
			  "x.renew_mwh FROM bill_hours x WHERE x.customer = c.id AND NOT x.estimated "
			  "AND x.hour > g.h ORDER BY x.hour LIMIT 1) la ON w.n = 0 "
			  "CROSS JOIN LATERAL (SELECT "
			  "CASE WHEN w.n > 0 THEN round(w.i::numeric / w.n) "
			  "WHEN lb.hour IS NOT NULL AND la.hour IS NOT NULL THEN round(lb.import_mwh + "
			  "(la.import_mwh - lb.import_mwh)::numeric * extract(epoch FROM g.h - lb.hour) "
			  "/ extract(epoch FROM la.hour - lb.hour)) "
			  "ELSE COALESCE(lb.import_mwh, la.import_mwh, 0) END::bigint i, "
			  "CASE WHEN w.n > 0 THEN round(w.e::numeric / w.n) "
			  "WHEN lb.hour IS NOT NULL AND la.hour IS NOT NULL THEN round(lb.export_mwh + "
			  "(la.export_mwh - lb.export_mwh)::numeric * extract(epoch FROM g.h - lb.hour) "
			  "/ extract(epoch FROM la.hour - lb.hour)) "
			  "ELSE COALESCE(lb.export_mwh, la.export_mwh, 0) END::bigint e, "
			  "CASE WHEN w.n > 0 THEN round(w.r::numeric / w.n) "
			  "WHEN lb.hour IS NOT NULL AND la.hour IS NOT NULL THEN round(lb.renew_mwh + "
			  "(la.renew_mwh - lb.renew_mwh)::numeric * extract(epoch FROM g.h - lb.hour) "
			  "/ extract(epoch FROM la.hour - lb.hour)) "
			  "ELSE COALESCE(lb.renew_mwh, la.renew_mwh, 0) END::bigint r, "
			  "CASE WHEN w.n > 0 THEN 'week-mean ' || w.n "
			  "WHEN lb.hour IS NOT NULL AND la.hour IS NOT NULL THEN 'linear' "
			  "WHEN lb.hour IS NOT NULL OR la.hour IS NOT NULL THEN 'nearest' "
			  "ELSE 'zero' END method) e "
			  "WHERE NOT EXISTS (SELECT 1 FROM bill_hours x WHERE x.customer = c.id AND "
			  "x.hour = g.h) ORDER BY c.id, g.h", 0, NULL, true, NULL);
}

int mbill_ensure(struct maind_pg *p, int32_t month, int64_t upto)
{
	char a[24], b[24];
	const char *v[2] = { a, b };

	snprintf(a, sizeof(a), "%d", month);
	snprintf(b, sizeof(b), "%lld", (long long)upto);
	return mpg_exec(p, BILL_INSERT " FROM customers c JOIN tariff_plans tp ON "
			"tp.name = c.tariff CROSS JOIN LATERAL (SELECT CASE WHEN $1::int = 0 THEN "
			"date_trunc('month', to_timestamp($2) AT TIME ZONE tp.tz) - interval "
			"'1 month' ELSE make_timestamp($1::int / 100, $1::int % 100, 1, 0, 0, 0) END "
			"AS ls) l WHERE c.since < (l.ls + interval '1 month') AT TIME ZONE tp.tz "
			"AND (c.until IS NULL OR c.until > l.ls AT TIME ZONE tp.tz) "
			"AND (l.ls + interval '1 month') AT TIME ZONE tp.tz <= to_timestamp($2) "
			"ON CONFLICT (customer, period_start) DO NOTHING", 2, v);
}
