// SPDX-License-Identifier: GPL-2.0
/*
 * Detection rule: the energy balance of a town per hour, and meters that
 * drop to zero while their history says they draw.
 *
 * supply   = the town's feeder meter (town_feeders), import - export
 * metered  = the sum of import - export of the town's other meters
 * gap      = supply - metered; the part of it the town's silent meters
 *            explain (their expected share, below) is set aside
 * flagged  when gap - silent's expected > |supply| * loss_permille / 1000
 *          and >= balance_min_mwh
 *
 * Suspects: each meter's share of the supply (ppm) at the same hour of day
 * on the history_days days before, its median over those days; its
 * expected energy now = median share * supply now; the meters reporting
 * less than expected, the largest deficit first (at most five), named in
 * the evidence. A suspect that reported zero import while its median for
 * the hour is at least zero_min_mwh raises its own 'zero-draw' alert.
 * All integer arithmetic (mWh, ppm); every hour balanced is kept in
 * det_balance, flagged or not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))

static const char balance_sql[] =
	"WITH cur AS (SELECT meter, sum(import_mwh - export_mwh)::bigint AS net, "
	" sum(import_mwh)::bigint AS imp FROM meter_hours WHERE town = $1 AND "
	" hour = to_timestamp($2) GROUP BY meter), "
	"hist AS (SELECT meter, hour, sum(import_mwh - export_mwh)::bigint AS net FROM meter_hours "
	" WHERE town = $1 AND hour IN (SELECT to_timestamp($2) - make_interval(days => d) FROM "
	" generate_series(1, $4::int) d) GROUP BY meter, hour), "
	"fh AS (SELECT hour, net FROM hist WHERE meter = $3 AND net > 0), "
	"sh AS (SELECT h.meter, count(*) AS n, "
	" percentile_disc(0.5) WITHIN GROUP (ORDER BY h.net * 1000000 / fh.net) AS ppm, "
	" percentile_disc(0.5) WITHIN GROUP (ORDER BY h.net) AS med "
	" FROM hist h JOIN fh USING (hour) WHERE h.meter <> $3 GROUP BY h.meter "
	" HAVING count(*) >= $5::int), "
	"f AS (SELECT net FROM cur WHERE meter = $3), "
	"m AS (SELECT meter, c.net, c.imp, sh.ppm, sh.med, sh.n, "
	" sh.ppm * (SELECT net FROM f) / 1000000 AS expected "
	" FROM (SELECT * FROM cur WHERE meter <> $3) c FULL JOIN sh USING (meter)), "
	"sus AS (SELECT * FROM m WHERE net IS NOT NULL AND expected > net "
	" ORDER BY expected - net DESC, meter LIMIT 5) "
	"SELECT (SELECT net FROM f), "
	" (SELECT COALESCE(sum(net), 0) FROM m WHERE net IS NOT NULL)::bigint, "
	" (SELECT count(*) FROM m WHERE net IS NOT NULL), "
	" (SELECT COALESCE(sum(expected), 0) FROM m WHERE net IS NULL)::bigint, "
	" (SELECT count(*) FROM m WHERE net IS NULL), "
	" (SELECT COALESCE(json_agg(json_build_object('meter', meter, 'reported_mwh', net, "
	"  'expected_mwh', expected, 'deficit_mwh', expected - net, 'median_share_ppm', ppm, "
	"  'median_mwh', med, 'history_hours', n) ORDER BY expected - net DESC, meter), "
	"  '[]') FROM sus)::text, "
	" (SELECT COALESCE(json_agg(json_build_object('meter', meter, 'expected_mwh', expected, "
	"  'median_mwh', med) ORDER BY meter), '[]') FROM m WHERE net IS NULL)::text, "
	" (SELECT COALESCE(string_agg(meter || ' ' || med || ' ' || expected || ' ' || n, ',' "
	"  ORDER BY meter), '') FROM m WHERE net IS NOT NULL AND imp = 0 AND med >= $6 AND "
	"  expected > 0), "
	" (SELECT meter || ' ' || net || ' ' || expected FROM sus ORDER BY expected - net DESC, "
	"  meter LIMIT 1)";

/* mWh as kWh with three decimals (Wh). */
static const char *kwh(int64_t mwh, char *buf, size_t len)
{
	int64_t a = mwh < 0 ? -mwh : mwh;

	snprintf(buf, len, "%s%lld.%03lld kWh", mwh < 0 ? "-" : "", (long long)(a / 1000000),
		 (long long)(a % 1000000 / 1000));
	return buf;
}

/* part / whole as a percentage with one decimal (whole > 0). */
static const char *pct(int64_t part, int64_t whole, char *buf, size_t len)
{
	int64_t pm = whole ? part * 1000 / whole : 0, a = pm < 0 ? -pm : pm;

	snprintf(buf, len, "%s%lld.%lld%%", pm < 0 ? "-" : "", (long long)(a / 10),
		 (long long)(a % 10));
	return buf;
}

struct town_feeder {
	const char *town;
	int64_t meter, loss;
};

struct hour_result {
	bool have_feeder;
	int64_t feeder, metered, meters, silent_exp, silent_n;
	int64_t gap, unexplained, allowance;
	bool flagged;
};

static int zero_draw(struct maind_pg *p, const struct town_feeder *tf, int64_t hour,
		     const char *list, const struct hour_result *h, struct mdet_stats *st)
{
	char hs[40], g[40];

	mdet_time(hour, hs, sizeof(hs));
	for (const char *q = list; *q;) {
		long long meter, med, exp, n;
		char key[64], summary[400], ev[700], a[40], b[40];
		struct mdet_alert al;

		if (sscanf(q, "%lld %lld %lld %lld", &meter, &med, &exp, &n) != 4)
			break;
		snprintf(key, sizeof(key), "zero:%s:%lld", tf->town, meter);
		snprintf(summary, sizeof(summary), "town %s meter %lld: no import at %s while its "
			 "median for the hour is %s (expected %s) and the town's balance is short "
			 "by %s", tf->town, meter, hs, kwh(med, a, sizeof(a)), kwh(exp, b, sizeof(b)),
			 kwh(h->unexplained, g, sizeof(g)));
		snprintf(ev, sizeof(ev), "{\"town\": %s, \"meter\": %lld, \"hour\": \"%s\", "
			 "\"reported_import_mwh\": 0, \"median_mwh\": %lld, \"expected_mwh\": %lld, "
			 "\"history_hours\": %lld, \"town_unexplained_mwh\": %lld, "
			 "\"town_allowance_mwh\": %lld, \"check\": \"mainctl hours %s %lld\"}",
			 tf->town, meter, hs, med, exp, n, (long long)h->unexplained,
			 (long long)h->allowance, tf->town, meter);
		al = (struct mdet_alert){ "zero-draw", atoi(tf->town), (int)meter, "warning", key,
					  summary, ev, NULL, NULL, NULL };
		if (mdet_raise_count(p, &al, st))
			return -1;
		q = strchr(q, ',');
		if (!q)
			break;
		q++;
	}
	return 0;
}

static int alert(struct maind_pg *p, const struct mdet_settings *s, const struct town_feeder *tf,
		 int64_t hour, const struct hour_result *h, const char *suspects,
		 const char *silent, const char *top, struct mdet_stats *st)
{
	char hs[40], a[40], b[40], c[40], d[40], e[40], key[64], summary[512], who[200] = "";
	size_t len = strlen(suspects) + strlen(silent) + 1200;
	char *ev = malloc(len);
	long long tm, tn, te;
	struct mdet_alert al;
	int rc;

	if (!ev) {
		snprintf(p->err, sizeof(p->err), "out of memory");
		return -1;
	}
	mdet_time(hour, hs, sizeof(hs));
	if (top && sscanf(top, "%lld %lld %lld", &tm, &tn, &te) == 3)
		snprintf(who, sizeof(who), "; most likely meter %lld (reported %s, expected %s)", tm,
			 kwh(tn, d, sizeof(d)), kwh(te, e, sizeof(e)));
	snprintf(key, sizeof(key), "balance:%s", tf->town);
	snprintf(summary, sizeof(summary), "town %s at %s: %s supplied, %s metered, %s (%s) "
		 "unaccounted for, allowance %lld.%lld%%%s", tf->town, hs,
		 kwh(h->feeder, a, sizeof(a)), kwh(h->metered, b, sizeof(b)),
		 kwh(h->unexplained, c, sizeof(c)), pct(h->unexplained, h->feeder < 0 ? -h->feeder :
		 h->feeder, e, sizeof(e)), (long long)(tf->loss / 10), (long long)(tf->loss % 10),
		 who);
	snprintf(ev, len, "{\"town\": %s, \"hour\": \"%s\", \"feeder_meter\": %lld, "
		 "\"feeder_mwh\": %lld, \"metered_mwh\": %lld, \"meters_reporting\": %lld, "
		 "\"gap_mwh\": %lld, \"silent_meters\": %s, \"silent_expected_mwh\": %lld, "
		 "\"unexplained_mwh\": %lld, \"loss_permille\": %lld, \"allowance_mwh\": %lld, "
		 "\"min_gap_mwh\": %lld, \"suspects\": %s, \"method\": \"share of the feeder's "
		 "supply at the same hour on the %lld days before, median; expected = median "
		 "share x supply now\", \"check\": \"SELECT * FROM det_balance WHERE town = %s "
		 "ORDER BY hour\"}", tf->town, hs, (long long)tf->meter, (long long)h->feeder,
		 (long long)h->metered, (long long)h->meters, (long long)h->gap, silent,
		 (long long)h->silent_exp, (long long)h->unexplained, (long long)tf->loss,
		 (long long)h->allowance, (long long)s->balance_min_mwh, suspects,
		 (long long)s->history_days, tf->town);
	al = (struct mdet_alert){ "balance", atoi(tf->town), 0, "warning", key, summary, ev,
				  NULL, NULL, NULL };
	rc = mdet_raise_count(p, &al, st);
	free(ev);
	return rc;
}

static int balance_hour(struct maind_pg *p, const struct mdet_settings *s,
			const struct town_feeder *tf, int64_t hour, bool redo,
			struct mdet_stats *st)
{
	char a[24], b[24], c[24], d[24], e[24];
	const char *v[6] = { tf->town, I64(a, hour), I64(b, tf->meter), I64(c, s->history_days),
			     I64(d, s->history_min), I64(e, s->zero_min_mwh) };
	PGresult *r = mpg_query(p, balance_sql, 6, v);
	struct hour_result h = { 0 };
	char f1[24], f2[24], f3[24], f4[24], f5[24], f6[24], f7[24];
	int rc = 0;

	if (!r)
		return -1;
	h.have_feeder = !PQgetisnull(r, 0, 0);
	h.feeder = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	h.metered = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	h.meters = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
	h.silent_exp = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
	h.silent_n = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
	if (h.have_feeder) {
		h.gap = h.feeder - h.metered;
		h.unexplained = h.gap - h.silent_exp;
		h.allowance = (h.feeder < 0 ? -h.feeder : h.feeder) * tf->loss / 1000;
		h.flagged = h.unexplained > h.allowance && h.unexplained >= s->balance_min_mwh;
	}
	{
		const char *w[13] = { tf->town, a, b, h.have_feeder ? I64(f1, h.feeder) : NULL,
				      I64(f2, h.metered), I64(f3, h.meters), I64(f4, h.silent_n),
				      I64(f5, h.silent_exp),
				      h.have_feeder ? I64(f6, h.gap) : NULL,
				      h.have_feeder ? I64(f7, h.allowance) : NULL,
				      h.flagged ? "t" : "f", PQgetvalue(r, 0, 5),
				      redo ? "t" : "f" };

		rc = mpg_exec(p, "INSERT INTO det_balance (town, hour, feeder, feeder_mwh, "
			      "metered_mwh, meters, missing, missing_expected_mwh, gap_mwh, "
			      "allowance_mwh, flagged, suspects) VALUES ($1, to_timestamp($2), $3, "
			      "$4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (town, hour) DO "
			      "UPDATE SET feeder = EXCLUDED.feeder, feeder_mwh = EXCLUDED.feeder_mwh, "
			      "metered_mwh = EXCLUDED.metered_mwh, meters = EXCLUDED.meters, "
			      "missing = EXCLUDED.missing, missing_expected_mwh = "
			      "EXCLUDED.missing_expected_mwh, gap_mwh = EXCLUDED.gap_mwh, "
			      "allowance_mwh = EXCLUDED.allowance_mwh, flagged = EXCLUDED.flagged, "
			      "suspects = EXCLUDED.suspects, evaluated = now() WHERE $13::boolean",
			      13, w);
	}
	st->hours++;
	if (!rc && h.flagged)
		rc = alert(p, s, tf, hour, &h, PQgetvalue(r, 0, 5), PQgetvalue(r, 0, 6),
			   PQgetisnull(r, 0, 8) ? NULL : PQgetvalue(r, 0, 8), st);
	if (!rc && h.flagged && PQgetvalue(r, 0, 7)[0])
		rc = zero_draw(p, tf, hour, PQgetvalue(r, 0, 7), &h, st);
	PQclear(r);
	return rc;
}

int mdet_balance(struct maind_pg *p, const struct mdet_settings *s, int64_t hour,
		 struct mdet_stats *st)
{
	PGresult *r = mpg_query(p,
		"SELECT f.town, f.meter, f.loss_permille, extract(epoch FROM t.last_hour)::bigint, "
		"(SELECT extract(epoch FROM max(hour))::bigint FROM det_balance b WHERE "
		"b.town = f.town) FROM town_feeders f JOIN towns t ON t.id = f.town "
		"WHERE t.last_hour IS NOT NULL ORDER BY f.town", 0, NULL);
	int rc = 0;

	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r) && !rc; i++) {
		struct town_feeder tf = { PQgetvalue(r, i, 0), strtoll(PQgetvalue(r, i, 1), NULL, 10),
					  strtoll(PQgetvalue(r, i, 2), NULL, 10) };
		int64_t last = strtoll(PQgetvalue(r, i, 3), NULL, 10);
		int64_t upto = last - s->settle_h * 3600;
		int64_t from = last - s->lookback_h * 3600;

		if (!PQgetisnull(r, i, 4) && strtoll(PQgetvalue(r, i, 4), NULL, 10) + 3600 > from)
			from = strtoll(PQgetvalue(r, i, 4), NULL, 10) + 3600;
		from -= from % 3600;
		for (int64_t h = from; h <= upto && !rc; h += 3600)
			rc = balance_hour(p, s, &tf, h, false, st);
		if (!rc && hour >= 0)
			rc = balance_hour(p, s, &tf, hour - hour % 3600, true, st);
	}
	PQclear(r);
	return rc;
}
