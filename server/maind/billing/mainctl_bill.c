// SPDX-License-Identifier: GPL-2.0
/* mainctl: the billing part's commands (mainctl_parts.h, Documentation/billing.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "billing/billing.h"
#include "mainctl_parts.h"
#include "parse.h"

void mctl_bill_usage(void)
{
	fprintf(stderr,
		"  tariff add PLAN ZONE YYYY-MM-DD KEY=VALUE...  a tariff version in force from\n"
		"                               that local date (keys: type rate rates tiers weekday\n"
		"                               weekend special special_days standing_charge feed_in\n"
		"                               currency tax (percent))\n"
		"  tariff show [PLAN]           tariff plans and their versions\n"
		"  customer add TOWN METER NAME [KEY=VALUE...]  keys: tariff medium email phone\n"
		"                               address since (YYYY-MM-DD)\n"
		"  customer list [TOWN]         customers\n"
		"  bill run YYYY-MM             issue the bills of a closed month (idempotent)\n"
		"  bills CUSTOMER               a customer's bills\n"
		"  bill ID                      a bill's lines (a running bill: so far)\n"
		"  summary meter TOWN METER YYYY-MM | summary town TOWN YYYY-MM\n");
}

/* Run a query and print it as a table: 0 or 1. */
static int show(const char *conninfo, const char *sql, int n, const char *const *v)
{
	PGconn *c = mctl_open(conninfo);
	PGresult *r;

	if (!c)
		return 1;
	r = mctl_q(c, sql, n, v);
	if (r)
		mctl_table(r);
	PQclear(r);
	PQfinish(c);
	return r ? 0 : 1;
}

/* "YYYY-MM" -> YYYYMM, or 0. */
static int32_t parse_month(const char *s)
{
	unsigned y, m;
	char tail;

	if (sscanf(s, "%4u-%2u%c", &y, &m, &tail) != 2 || strlen(s) != 7 || y < 2000 ||
	    y > 9999 || m < 1 || m > 12)
		return 0;
	return (int32_t)(y * 100 + m);
}

static int tariff_add(const struct mainctl_ctx *x, int argc, char **args)
{
	static const char *const cols[] = { "type", "rates", "tiers", "rate", "weekday",
					    "weekend", "special", "special_days",
					    "standing_charge", "feed_in" };
	struct tariff_spec spec;
	struct tariff t;
	const char *bad = "", *currency = "GBP";
	char err[256], names[TARIFF_MAX_PERIODS * (TARIFF_NAME_LEN + 3) + 3], tax[24] = "0";
	const char *v[14];
	int32_t ymd;
	int64_t bp = 0;
	PGconn *c;
	PGresult *r;
	int rc = 1;

	if (argc < 4) {
		fprintf(stderr, "mainctl: tariff add PLAN ZONE YYYY-MM-DD KEY=VALUE...\n");
		return 2;
	}
	if (parse_date(args[2], &ymd)) {
		fprintf(stderr, "mainctl: tariff add: '%s' is not a date (YYYY-MM-DD)\n", args[2]);
		return 2;
	}
	tariff_spec_init(&spec);
	for (int i = 3; i < argc; i++) {
		char *eq = strchr(args[i], '=');

		if (!eq) {
			fprintf(stderr, "mainctl: tariff add: '%s' is not KEY=VALUE\n", args[i]);
			return 2;
		}
		*eq = '\0';
		if (!strcmp(args[i], "tax")) {
			if (parse_milli(eq + 1, &bp) || bp % 10 || bp > 100000) {
				fprintf(stderr, "mainctl: tariff add: tax '%s' is not a percentage "
					"0..100 with at most two decimals\n", eq + 1);
				return 2;
			}
			bp /= 10;	/* milli-percent -> basis points */
			snprintf(tax, sizeof(tax), "%lld", (long long)bp);
			continue;
		}
		if (!strcmp(args[i], "currency"))
			currency = eq + 1;
		if (tariff_spec_set(&spec, args[i], eq + 1)) {
			fprintf(stderr, "mainctl: tariff add: unknown key '%s' or its value is too "
				"long\n", args[i]);
			return 2;
		}
	}
	if (tariff_compile(&spec, &t, &bad, err, sizeof(err))) {
		fprintf(stderr, "mainctl: tariff add: %s: %s\n", bad, err);
		return 2;
	}
	for (int d = 0; d < TARIFF_NDAYTYPES; d++)
		for (unsigned w = 0; w < t.nwindows[d]; w++)
			if (t.window[d][w].end_min % 60) {
				fprintf(stderr, "mainctl: tariff add: %s: windows must change on whole "
					"local hours (maind rates hours)\n",
					d == TARIFF_WEEKDAY ? "weekday" : d == TARIFF_WEEKEND ? "weekend" :
					"special");
				return 2;
			}
	names[0] = '{';
	names[1] = '\0';
	for (unsigned k = 0; k < t.nperiods; k++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s\"%s\"",
			 k ? "," : "", t.period_name[k]);
	strcat(names, "}");
	c = mctl_open(x->conninfo);
	if (!c)
		return 1;
	v[0] = args[0];
	v[1] = args[1];
	v[2] = args[2];
	r = mctl_q(c, "BEGIN", 0, NULL);
	PQclear(r);
	r = r ? mctl_q(c, "SELECT 1 FROM pg_timezone_names WHERE name = $1", 1, v + 1) : NULL;
	if (r && !PQntuples(r)) {
		fprintf(stderr, "mainctl: tariff add: '%s' is not a time zone PostgreSQL knows "
			"(e.g. Europe/London)\n", args[1]);
		goto out;
	}
	PQclear(r);
	r = mctl_q(c, "INSERT INTO tariff_plans (name, tz, currency) VALUES ($1, $2, $3) "
	      "ON CONFLICT (name) DO NOTHING", 3, (const char *const[]){ args[0], args[1], currency });
	PQclear(r);
	r = r ? mctl_q(c, "SELECT tz FROM tariff_plans WHERE name = $1", 1, v) : NULL;
	if (r && strcmp(PQgetvalue(r, 0, 0), args[1])) {
		fprintf(stderr, "mainctl: tariff add: plan %s is in zone %s, not %s\n", args[0],
			PQgetvalue(r, 0, 0), args[1]);
		goto out;
	}
	PQclear(r);
	/* a version may not change what was already rated or issued */
	r = mctl_q(c, "SELECT to_char(max(to_date('1970-01-01', 'YYYY-MM-DD') + COALESCE(b.rated_day,"
	      " 0) + 0), 'YYYY-MM-DD'), max(b.end_day) FILTER (WHERE b.state = 'issued') FROM "
	      "bills b WHERE b.plan = $1 AND (b.state = 'issued' OR b.rated_day IS NOT NULL) AND "
	      "(b.state = 'issued' AND b.end_day > $2::date - date '1970-01-01' OR "
	      "b.rated_day >= $2::date - date '1970-01-01')", 2,
	      (const char *const[]){ args[0], args[2] });
	if (r && !PQgetisnull(r, 0, 0)) {
		fprintf(stderr, "mainctl: tariff add: plan %s already has hours rated up to %s: a "
			"version effective %s would change bills already made (a change takes "
			"effect on a later date; corrections go through adjustments)\n", args[0],
			PQgetvalue(r, 0, 0), args[2]);
		goto out;
	}
	PQclear(r);
	for (int k = 0; k < 10; k++)
		v[3 + k] = tariff_spec_get(&spec, cols[k]);
	v[13] = tax;
	r = mctl_q(c, "INSERT INTO tariff_versions (plan, effective, type, rates, tiers, rate, weekday, "
	      "weekend, special, special_days, standing_charge, feed_in, tax_bp, period_names) "
	      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
	      14, (const char *const[]){ v[0], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9],
					 v[10], v[11], v[12], v[13], names });
	if (!r)
		goto out;
	printf("tariff %s version %s: in force from %s (%s)\n", args[0], PQgetvalue(r, 0, 0),
	       args[2], args[1]);
	PQclear(r);
	r = mctl_q(c, "COMMIT", 0, NULL);
	rc = r ? 0 : 1;
out:
	PQclear(r);
	PQfinish(c);
	return rc;
}

static int customer_add(const struct mainctl_ctx *x, int argc, char **args)
{
	const char *keys[] = { "tariff", "medium", "email", "phone", "address", "since" };
	const char *val[6] = { "standard", "post", NULL, NULL, "", "2000-01-01" };
	uint32_t town, meter;
	char since[40];
	PGconn *c;
	PGresult *r;

	if (argc < 3) {
		fprintf(stderr, "mainctl: customer add TOWN METER NAME [KEY=VALUE...]\n");
		return 2;
	}
	if (parse_u32(args[0], 1, 65534, &town) || parse_u32(args[1], 1, 65535, &meter)) {
		fprintf(stderr, "mainctl: customer add: town 1..65534 and meter 1..65535, not "
			"'%s' '%s'\n", args[0], args[1]);
		return 2;
	}
	for (int i = 3; i < argc; i++) {
		char *eq = strchr(args[i], '=');
		size_t k;

		for (k = 0; eq && k < 6; k++)
			if ((size_t)(eq - args[i]) == strlen(keys[k]) &&
			    !strncmp(args[i], keys[k], strlen(keys[k])))
				break;
		if (!eq || k == 6) {
			fprintf(stderr, "mainctl: customer add: '%s' is not one of tariff= medium= "
				"email= phone= address= since=\n", args[i]);
			return 2;
		}
		val[k] = eq + 1;
	}
	if (strcmp(val[1], "email") && strcmp(val[1], "sms") && strcmp(val[1], "post")) {
		fprintf(stderr, "mainctl: customer add: medium '%s': email, sms or post\n", val[1]);
		return 2;
	}
	if ((!strcmp(val[1], "email") && !val[2]) || (!strcmp(val[1], "sms") && !val[3])) {
		fprintf(stderr, "mainctl: customer add: medium %s needs %s=\n", val[1],
			strcmp(val[1], "sms") ? "email" : "phone");
		return 2;
	}
	c = mctl_open(x->conninfo);
	if (!c)
		return 1;
	r = mctl_q(c, "SELECT 1 FROM tariff_plans WHERE name = $1", 1, val);
	if (r && !PQntuples(r)) {
		fprintf(stderr, "mainctl: customer add: no tariff plan '%s' (mainctl tariff add)\n",
			val[0]);
		PQclear(r);
		PQfinish(c);
		return 1;
	}
	PQclear(r);
	/* since: the local midnight of that date in the plan's zone */
	snprintf(since, sizeof(since), "%s", val[5]);
	r = r ? mctl_q(c, "INSERT INTO customers (town, meter, name, address, medium, email, phone, "
		  "tariff, since) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9::date::timestamp AT "
		  "TIME ZONE tz FROM tariff_plans WHERE name = $8 RETURNING id", 9,
		  (const char *const[]){ args[0], args[1], args[2], val[4], val[1], val[2], val[3],
					 val[0], since }) : NULL;
	if (r)
		printf("customer %s: %s, meter %s of town %s, tariff %s\n", PQgetvalue(r, 0, 0),
		       args[2], args[1], args[0], val[0]);
	PQclear(r);
	PQfinish(c);
	return r ? 0 : 1;
}

static int bill_run(const struct mainctl_ctx *x, const char *month_s)
{
	struct maind_pg p;
	char err[512];
	int32_t month = parse_month(month_s);
	int64_t n = 0;
	int rc;

	if (!month) {
		fprintf(stderr, "mainctl: bill run: '%s' is not a month (YYYY-MM)\n", month_s);
		return 2;
	}
	if (mpg_open(&p, x->conninfo, err, sizeof(err))) {
		fprintf(stderr, "mainctl: %s\n", err);
		return 1;
	}
	rc = mbill_issue(&p, month, (int64_t)time(NULL), &n);
	if (rc)
		fprintf(stderr, "mainctl: bill run %s: %s\n", month_s, p.err);
	else if (n)
		printf("issued %lld bills for %s\n", (long long)n, month_s);
	else
		printf("no bill to issue for %s (all issued, or the month is not over in the "
		       "customers' zones)\n", month_s);
	mpg_close(&p);
	return rc ? 1 : 0;
}

/* A bill: its header and lines (issued: as stored; running: as they stand). */
static int bill_show(const struct mainctl_ctx *x, const char *id)
{
	struct maind_pg p = { 0 };
	struct mbill_tariffs T = { 0 };
	PGresult *b = NULL, *r = NULL;
	int rc = 1;
	char amt[32], tot[32];

	if (strspn(id, "0123456789") != strlen(id) || !*id) {
		fprintf(stderr, "mainctl: bill: '%s' is not a bill number\n", id);
		return 2;
	}
	p.c = mctl_open(x->report);
	if (!p.c)
		return 1;
	b = mpg_query(&p, "SELECT b.id, b.customer, c.name, b.town, b.meter, b.plan, b.month, "
		      "b.state, b.total_minor, b.first_day, b.end_day, b.rated_day, "
		      "to_char(b.rated_upto AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00 UTC') "
		      "FROM bills b JOIN customers c ON c.id = b.customer WHERE b.id = $1", 1,
		      (const char *const[]){ id });
	if (!b)
		goto out;
	if (!PQntuples(b)) {
		fprintf(stderr, "mainctl: bill: no bill %s\n", id);
		goto out;
	}
	mbill_fmt_minor(tot, sizeof(tot), strtoll(PQgetvalue(b, 0, 8), NULL, 10));
	printf("bill %s: customer %s (%s), meter %s of town %s, tariff %s, month %s, %s%s%s\n",
	       id, PQgetvalue(b, 0, 1), PQgetvalue(b, 0, 2), PQgetvalue(b, 0, 4),
	       PQgetvalue(b, 0, 3), PQgetvalue(b, 0, 5), PQgetvalue(b, 0, 6), PQgetvalue(b, 0, 7),
	       strcmp(PQgetvalue(b, 0, 7), "running") ? "" : ", so far up to ",
	       strcmp(PQgetvalue(b, 0, 7), "running") ? "" : PQgetvalue(b, 0, 12));
	if (!strcmp(PQgetvalue(b, 0, 7), "issued")) {
		r = mpg_query(&p, "SELECT text, amount_minor FROM bill_lines WHERE bill = $1 "
			      "ORDER BY no", 1, (const char *const[]){ id });
		if (!r)
			goto out;
		for (int i = 0; i < PQntuples(r); i++) {
			mbill_fmt_minor(amt, sizeof(amt), strtoll(PQgetvalue(r, i, 1), NULL, 10));
			printf("  %-100s %12s\n", PQgetvalue(r, i, 0), amt);
		}
	} else {
		struct mbill_acc acc[256];
		struct mbill_adj adj[256];
		struct mbill_line l[MBILL_LINES_MAX];
		size_t na = 0, nj = 0, n;
		int64_t total;
		int32_t end = atoi(PQgetvalue(b, 0, 10));
		int32_t upto = PQgetisnull(b, 0, 11) ? atoi(PQgetvalue(b, 0, 9)) :
			       atoi(PQgetvalue(b, 0, 11)) + 1;
		PGresult *j;

		if (mbill_tariffs_load(&p, &T))
			goto out;
		r = mpg_query(&p, "SELECT version, kind, period, mwh, nano, hours FROM bill_accum "
			      "WHERE bill = $1", 1, (const char *const[]){ id });
		j = r ? mpg_query(&p, "SELECT version, reason, d_import_mwh, d_export_mwh, d_nano "
				  "FROM bill_adjust WHERE bill = $1 LIMIT 256", 1,
				  (const char *const[]){ id }) : NULL;
		if (!j)
			goto out;
		for (int i = 0; i < PQntuples(r) && na < 256; i++)
			acc[na++] = (struct mbill_acc){ atoi(PQgetvalue(r, i, 0)),
				atoi(PQgetvalue(r, i, 1)), atoi(PQgetvalue(r, i, 2)),
				strtoll(PQgetvalue(r, i, 3), NULL, 10),
				strtoll(PQgetvalue(r, i, 4), NULL, 10),
				strtoll(PQgetvalue(r, i, 5), NULL, 10) };
		for (int i = 0; i < PQntuples(j); i++, nj++) {
			memset(&adj[nj], 0, sizeof(adj[nj]));
			adj[nj].version = atoi(PQgetvalue(j, i, 0));
			snprintf(adj[nj].reason, sizeof(adj[nj].reason), "%s", PQgetvalue(j, i, 1));
			adj[nj].d_import_mwh = strtoll(PQgetvalue(j, i, 2), NULL, 10);
			adj[nj].d_export_mwh = strtoll(PQgetvalue(j, i, 3), NULL, 10);
			adj[nj].d_nano = strtoll(PQgetvalue(j, i, 4), NULL, 10);
		}
		PQclear(j);
		n = mbill_make_lines(&T, PQgetvalue(b, 0, 5), atoi(PQgetvalue(b, 0, 9)),
				     upto < end ? upto : end, acc, na, adj, nj, l, MBILL_LINES_MAX,
				     &total);
		for (size_t k = 0; k < n; k++) {
			mbill_fmt_minor(amt, sizeof(amt), l[k].minor);
			printf("  %-100s %12s\n", l[k].text, amt);
		}
		mbill_fmt_minor(tot, sizeof(tot), total);
	}
	printf("  %-100s %12s\n", "Total", tot);
	rc = 0;
out:
	if (rc && p.err[0])
		fprintf(stderr, "mainctl: %s\n", p.err);
	mbill_tariffs_free(&T);
	PQclear(b);
	PQclear(r);
	PQfinish(p.c);
	return rc;
}

int mctl_bill(const struct mainctl_ctx *x, const char *cmd, int argc, char **args)
{
	if (!strcmp(cmd, "tariff")) {
		if (argc >= 1 && !strcmp(args[0], "add"))
			return tariff_add(x, argc - 1, args + 1);
		if (argc >= 1 && argc <= 2 && !strcmp(args[0], "show"))
			return show(x->report, "SELECT v.plan, t.tz, v.id AS version, v.effective, "
				    "v.type, CASE v.type WHEN 'flat' THEN v.rate WHEN 'tiered' THEN "
				    "v.tiers ELSE v.rates END AS prices, v.weekday, v.weekend, "
				    "v.standing_charge, v.feed_in, v.tax_bp FROM tariff_versions v "
				    "JOIN tariff_plans t ON t.name = v.plan WHERE $1::text IS NULL OR "
				    "v.plan = $1 ORDER BY v.plan, v.effective", 1,
				    (const char *const[]){ argc == 2 ? args[1] : NULL });
		fprintf(stderr, "mainctl: tariff add PLAN ZONE YYYY-MM-DD KEY=VALUE... | "
			"tariff show [PLAN]\n");
		return 2;
	}
	if (!strcmp(cmd, "customer")) {
		if (argc >= 1 && !strcmp(args[0], "add"))
			return customer_add(x, argc - 1, args + 1);
		if (argc >= 1 && argc <= 2 && !strcmp(args[0], "list"))
			return show(x->report, "SELECT id, town, meter, name, tariff, medium, "
				    "COALESCE(email, phone, '') AS contact, since, until FROM customers "
				    "WHERE $1::int IS NULL OR town = $1::int ORDER BY town, meter, since",
				    1, (const char *const[]){ argc == 2 ? args[1] : NULL });
		fprintf(stderr, "mainctl: customer add TOWN METER NAME [KEY=VALUE...] | "
			"customer list [TOWN]\n");
		return 2;
	}
	if (!strcmp(cmd, "bill")) {
		if (argc == 2 && !strcmp(args[0], "run"))
			return bill_run(x, args[1]);
		if (argc == 1)
			return bill_show(x, args[0]);
		fprintf(stderr, "mainctl: bill run YYYY-MM | bill ID\n");
		return 2;
	}
	if (!strcmp(cmd, "bills")) {
		if (argc != 1 || strspn(args[0], "0123456789") != strlen(args[0]) || !*args[0]) {
			fprintf(stderr, "mainctl: bills CUSTOMER (a customer number)\n");
			return 2;
		}
		return show(x->report, "SELECT id, month, state, round(total_minor / 100.0, 2) AS "
			    "total, round(import_mwh / 1000000.0, 3) AS import_kwh, "
			    "round(export_mwh / 1000000.0, 3) AS export_kwh, est_hours, issued_at FROM bills WHERE customer = $1 "
			    "ORDER BY period_start", 1, (const char *const[]){ args[0] });
	}
	if (!strcmp(cmd, "summary")) {
		int32_t m = argc >= 3 ? parse_month(args[argc - 1]) : 0;
		char ms[16];

		snprintf(ms, sizeof(ms), "%d", m);
		if (m && argc == 4 && !strcmp(args[0], "meter"))
			return show(x->report, "SELECT town, meter, month, customer, import_mwh, "
				    "export_mwh, renew_mwh, period_names, import_by_period, max_mwh "
				    "AS max_demand_mwh, max_at, cost_minor, est_hours FROM meter_months "
				    "WHERE town = $1::int AND meter = $2::int AND month = $3::int", 3,
				    (const char *const[]){ args[1], args[2], ms });
		if (m && argc == 3 && !strcmp(args[0], "town"))
			return show(x->report, "SELECT town, month, meters, import_wh, export_wh, "
				    "renew_wh, lent_wh, borrowed_wh, admin_hours, alarms, est_hours, "
				    "billed_minor, tseq AS command FROM town_months WHERE town = $1::int "
				    "AND month = $2::int", 2, (const char *const[]){ args[1], ms });
		fprintf(stderr, "mainctl: summary meter TOWN METER YYYY-MM | summary town TOWN "
			"YYYY-MM\n");
		return 2;
	}
	return -2;
}
