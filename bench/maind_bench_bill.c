// SPDX-License-Identifier: GPL-2.0
/*
 * maind billing (issue 13): the monthly bill run for METERS customers
 * (default 1,000,000; first argument), and the storage per meter and year
 * in PostgreSQL 15 (fsync on), in a throwaway cluster
 * (scripts/pg-cluster.sh) in build/bench-bill.
 *
 *  1. The bill run: every customer's March bill as the hourly rating
 *     leaves it at the month's end (two tariff versions, three periods,
 *     export: 8 rated rows), then mbill_issue() for March, timed: lines,
 *     notices, per-meter and per-town summaries, the towns' commands, one
 *     transaction. Peak RSS of this process (getrusage) and the bytes per
 *     bill of what the run stored.
 *  2. Rating: a week of hours of SAMPLE meters (spread over the towns, so
 *     that rating goes in several chunks) goes into meter_hours and
 *     through mbill_rate (the hourly tick's path): hours rated per second,
 *     and the bytes per meter-hour of meter_hours + bill_hours.
 * Wall-clock figures of this machine, for comparison between runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "billing/billing.h"
#include "maind_pg.h"

#define SAMPLE		2000	/* meters rated hour by hour */
#define SAMPLE_HOURS	168
#define PER_TOWN	62500

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static int run(const char *cmd)
{
	return system(cmd);
}

/* Statements (several, separated by ;). 0 or -1. */
static int x(struct maind_pg *p, const char *sql)
{
	PGresult *r = PQexec(p->c, sql);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;

	if (rc)
		fprintf(stderr, "maind_bench_bill: %.300s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	return rc;
}

static double q1(struct maind_pg *p, const char *sql)
{
	PGresult *r = mpg_query(p, sql, 0, NULL);
	double v = -1;

	if (r && PQntuples(r) && !PQgetisnull(r, 0, 0))
		v = strtod(PQgetvalue(r, 0, 0), NULL);
	if (!r)
		fprintf(stderr, "maind_bench_bill: %s\n", p->err);
	PQclear(r);
	return v;
}

int main(int argc, char **argv)
{
	long meters = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
	long sample = meters < SAMPLE ? meters : SAMPLE;
	long towns = (meters + PER_TOWN - 1) / PER_TOWN;
	struct maind_pg p;
	char conninfo[512], err[768], sql[2048];
	double t0, t1, t2, t3;
	int64_t rated = 0, issued = 0;
	long rss0, rss1;
	FILE *f;
	size_t n;

	if (meters < 1 || meters > 4000000) {
		fprintf(stderr, "usage: maind_bench_bill [METERS (1..4000000)]\n");
		return 2;
	}
	if (access("/usr/lib/postgresql/15/bin/initdb", X_OK)) {
		printf("maind_bench_bill: PostgreSQL 15 not installed (scripts/deps.sh): skipped\n");
		return 0;
	}
	run("scripts/pg-cluster.sh stop build/bench-bill >/dev/null 2>&1; rm -rf build/bench-bill");
	f = popen("scripts/pg-cluster.sh start build/bench-bill 5434", "r");
	n = f ? fread(conninfo, 1, sizeof(conninfo) - 1, f) : 0;
	if (!f || pclose(f) || !n) {
		fprintf(stderr, "maind_bench_bill: cluster did not start\n");
		return 1;
	}
	conninfo[n] = '\0';
	conninfo[strcspn(conninfo, "\n")] = '\0';
	if (mpg_open(&p, conninfo, err, sizeof(err))) {
		fprintf(stderr, "maind_bench_bill: %s\n", err);
		return 1;
	}
	/* tariffs, towns, customers */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO tariff_plans VALUES ('tou', 'Europe/London', 'GBP');"
		 "INSERT INTO tariff_versions (plan, effective, type, rates, weekday, weekend, "
		 "standing_charge, feed_in, tax_bp, period_names) VALUES "
		 "('tou', '2026-01-01', 'tou', 'offpeak:12.5, peak:35.1, shoulder:24.0', "
		 "'00:00-07:00 offpeak, 07:00-16:00 shoulder, 16:00-19:00 peak, 19:00-24:00 shoulder',"
		 " '00:00-08:00 offpeak, 08:00-24:00 shoulder', '45.5', '15', 500, "
		 "'{offpeak,peak,shoulder}'), "
		 "('tou', '2026-03-16', 'tou', 'offpeak:13.2, peak:37.9, shoulder:25.5', "
		 "'00:00-06:00 offpeak, 06:00-17:00 shoulder, 17:00-20:00 peak, 20:00-24:00 shoulder',"
		 " '00:00-08:00 offpeak, 08:00-24:00 shoulder', '48.25', '16.5', 500, "
		 "'{offpeak,peak,shoulder}');"
		 "INSERT INTO towns (id, name, pk) SELECT t, 'town' || t, decode(lpad(to_hex(t), 64, "
		 "'0'), 'hex') FROM generate_series(1, %ld) t;"
		 "INSERT INTO customers (town, meter, name, address, medium, email, tariff, since) "
		 "SELECT 1 + (i - 1) / %d, 1 + (i - 1) %% %d, 'Customer ' || i, "
		 "i || ' High Street' || E'\\n' || 'Town ' || (1 + (i - 1) / %d), 'email', "
		 "'c' || i || '@example.org', 'tou', '2026-01-01 00:00+00' "
		 "FROM generate_series(1, %ld) i", (meters + PER_TOWN - 1) / PER_TOWN, PER_TOWN,
		 PER_TOWN, PER_TOWN, meters);
	t0 = mono_s();
	if (x(&p, sql))
		return 1;
	/* 2. March as the rating leaves it, then the bill run */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO bills (customer, town, meter, plan, month, period_start, period_end, "
		 "first_day, end_day, import_mwh, export_mwh, renew_mwh, hours, max_mwh, max_at, "
		 "rated_upto, rated_day) SELECT c.id, c.town, c.meter, 'tou', 202603, "
		 "'2026-03-01 00:00+00', '2026-03-31 23:00+00', 20513, 20544, 0, 0, 0, 743, "
		 "1500000 + c.id %% 100000, '2026-03-10 18:00+00', '2026-03-31 22:00+00', 20543 "
		 "FROM customers c");
	if (x(&p, sql))
		return 1;
	if (x(&p, "INSERT INTO bill_accum SELECT b.id, v.id, k.kind, k.period, "
	      "50000000 + (b.id * 7919 + k.period * 104729) % 90000000, 0, 200 "
	      "FROM bills b CROSS JOIN tariff_versions v CROSS JOIN (VALUES (0, 0), (0, 1), "
	      "(0, 2), (1, 0)) k(kind, period) WHERE b.month = 202603") ||
	    x(&p, "UPDATE bill_accum a SET nano = a.mwh * CASE WHEN a.kind = 1 THEN "
	      "CASE WHEN a.version = 1 THEN 15000 ELSE 16500 END "
	      "WHEN a.version = 1 THEN (ARRAY[12500, 35100, 24000])[a.period + 1] "
	      "ELSE (ARRAY[13200, 37900, 25500])[a.period + 1] END") ||
	    x(&p, "UPDATE bills b SET import_mwh = s.i, export_mwh = s.e FROM (SELECT bill, "
	      "sum(mwh) FILTER (WHERE kind = 0) i, sum(mwh) FILTER (WHERE kind = 1) e FROM "
	      "bill_accum GROUP BY bill) s WHERE b.id = s.bill AND b.month = 202603") ||
	    x(&p, "VACUUM ANALYZE"))
		return 1;
	t1 = mono_s();
	printf("maind billing: %ld customers, PostgreSQL 15, fsync on\n", meters);
	printf("  set up                     %.1f s (customers, their March as rated)\n",
	       t1 - t0);
	rss0 = maxrss_kb();
	t2 = mono_s();
	if (mbill_issue(&p, 202603, 1775088000 /* 2026-04-02 */, &issued)) {
		fprintf(stderr, "maind_bench_bill: %s\n", p.err);
		return 1;
	}
	t3 = mono_s();
	rss1 = maxrss_kb();
	printf("  bill run (March)           %lld bills issued in %.1f s: %.0f bills/s\n",
	       (long long)issued, t3 - t2, issued / (t3 - t2));
	printf("  peak RSS of maind's side   %.1f MB (%.1f MB before the run)\n", rss1 / 1024.0,
	       rss0 / 1024.0);
	{
		double lines = q1(&p, "SELECT count(*) FROM bill_lines");
		double bl = q1(&p, "SELECT pg_total_relation_size('bill_lines')");
		double no = q1(&p, "SELECT pg_total_relation_size('notices')");
		double bi = q1(&p, "SELECT pg_total_relation_size('bills') + "
			       "pg_total_relation_size('bill_accum') + "
			       "pg_total_relation_size('meter_months')");
		double cmd = q1(&p, "SELECT count(*) FROM commands WHERE type = 25");

		printf("  lines                      %.0f (%.1f per bill), %.0f town summaries "
		       "queued\n", lines, lines / issued, cmd);
		printf("  bytes per bill             %.0f lines + %.0f notice + %.0f bill, "
		       "rated energy and summary\n", bl / issued, no / issued, bi / issued);
		printf("  per meter and year         %.3f MB of bills (12 months)\n",
		       (bl + no + bi) / issued * 12 / 1e6);
	}
	/* 1. a week of February hours of the sample through the rating path */
	t0 = mono_s();
	snprintf(sql, sizeof(sql),
		 "INSERT INTO meter_hours (town, meter, hour, period, import_mwh, export_mwh, "
		 "renew_mwh, readings, flags, rev, seq) SELECT 1 + (i - 1) %% %ld, "
		 "1 + (i - 1) / %ld, "
		 "timestamptz '2026-02-02 00:00+00' + h * interval '1 hour', 0, "
		 "200000 + (i * 7919 + h * 104729) %% 900000, CASE WHEN i %% 5 = 0 THEN "
		 "(i * 31 + h * 17) %% 300000 ELSE 0 END, 0, 4, 0, 0, "
		 "h * %ld + 1 + (i - 1) / %ld FROM generate_series(1, %ld) i, "
		 "generate_series(0, %d) h", towns, towns, (sample + towns - 1) / towns, towns,
		 sample, SAMPLE_HOURS - 1);
	if (mpg_partitions_ahead(&p, 1771977600 /* 2026-02-25 */) || x(&p, sql))
		return 1;
	t1 = mono_s();
	printf("  set up                     %.1f s (a week of %ld meters' hours)\n", t1 - t0,
	       sample);
	if (mbill_rate(&p, &rated)) {
		fprintf(stderr, "maind_bench_bill: %s\n", p.err);
		return 1;
	}
	t2 = mono_s();
	printf("  rating                     %lld hours in %.2f s: %.0f hours/s (an hour of "
	       "%ld meters: %.1f s)\n", (long long)rated, t2 - t1, rated / (t2 - t1), meters,
	       meters / (rated / (t2 - t1)));
	{
		double mh = q1(&p, "SELECT sum(pg_total_relation_size(relid)) FROM "
			       "pg_partition_tree('meter_hours')");
		double bh = q1(&p, "SELECT pg_total_relation_size('bill_hours')");
		double rows = (double)sample * SAMPLE_HOURS;

		printf("  bytes per meter-hour       %.0f meter_hours + %.0f bill_hours (indexes "
		       "included)\n", mh / rows, bh / rows);
		printf("  per meter and year         %.2f MB of hours (8760 h)\n",
		       (mh + bh) / rows * 8760 / 1e6);
	}
	mpg_close(&p);
	run("scripts/pg-cluster.sh stop build/bench-bill >/dev/null 2>&1; rm -rf build/bench-bill");
	return 0;
}
