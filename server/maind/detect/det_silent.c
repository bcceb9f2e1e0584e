// SPDX-License-Identifier: GPL-2.0
/*
 * Detection rule: meters that go silent while their town keeps reporting.
 * Checked for a town each time its newest hour (towns.last_hour) moves on:
 * a meter that sent hours in the week before but none in the last
 * silent_hours hours of the town's data raises an alert, and its customer
 * gets a 'route' notice (seed 001: the data route is damaged). The clock is
 * the town's data, not the wall: a town that stops reporting silences no
 * meter, and a town catching up after an outage is judged hour by hour.
 */
#include <stdio.h>
#include <stdlib.h>

#include "detect.h"

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))
#define WEEK_H	(7 * 24)	/* silent longer than this and more: alerted before */

static int town_silent(struct maind_pg *p, const struct mdet_settings *s, const char *town,
		       int64_t last, struct mdet_stats *st)
{
	char a[24], b[24], c[24];
	const char *v[4] = { town, I64(a, last), I64(b, s->silent_h + WEEK_H), I64(c, s->silent_h) };
	PGresult *r = mpg_query(p,
		"SELECT meter, extract(epoch FROM max(hour))::bigint, "
		"(SELECT count(DISTINCT meter) FROM meter_hours WHERE town = $1 AND "
		"hour = to_timestamp($2)) FROM meter_hours WHERE town = $1 AND "
		"hour > to_timestamp($2) - make_interval(hours => $3::int) AND "
		"hour <= to_timestamp($2) GROUP BY meter "
		"HAVING max(hour) <= to_timestamp($2) - make_interval(hours => $4::int) "
		"ORDER BY meter", 4, v);
	int rc = 0;

	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r) && !rc; i++) {
		int64_t meter = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		int64_t mlast = strtoll(PQgetvalue(r, i, 1), NULL, 10);
		int64_t hours = (last - mlast) / 3600;
		char tl[40], ml[40], key[64], summary[256], ev[600], subj[96], body[1024];
		struct mdet_alert al;

		mdet_time(mlast, ml, sizeof(ml));
		mdet_time(last, tl, sizeof(tl));
		snprintf(key, sizeof(key), "silent:%s:%lld", town, (long long)meter);
		snprintf(summary, sizeof(summary), "town %s meter %lld: silent for %lld hours (last "
			 "hour %s) while its town reports up to %s", town, (long long)meter,
			 (long long)hours, ml, tl);
		snprintf(ev, sizeof(ev), "{\"town\": %s, \"meter\": %lld, \"meter_last_hour\": "
			 "\"%s\", \"town_last_hour\": \"%s\", \"silent_hours\": %lld, "
			 "\"threshold_hours\": %lld, \"meters_reporting_town_last_hour\": %s, "
			 "\"check\": \"mainctl hours %s %lld\"}", town, (long long)meter, ml, tl,
			 (long long)hours, (long long)s->silent_h, PQgetvalue(r, i, 2), town,
			 (long long)meter);
		snprintf(subj, sizeof(subj), "Your meter has stopped reporting");
		snprintf(body, sizeof(body),
			 "Dear customer,\n\n"
			 "Your meter (number %lld) has not sent us its readings since %s, while "
			 "the other meters of your area go on reporting: the route its data takes "
			 "to us (its link to the town's server, or a neighbouring meter that relays "
			 "it) seems to be broken.\n\n"
			 "Your supply is not affected. Your meter keeps its readings and sends them "
			 "when the route works again; your bill uses them then. If the route "
			 "is not repaired soon, a technician may need to visit. If equipment near "
			 "the meter was moved or switched off, please tell us.\n",
			 (long long)meter, ml);
		al = (struct mdet_alert){ "silent", atoi(town), (int)meter, "warning", key, summary,
					  ev, "route", subj, body };
		rc = mdet_raise_count(p, &al, st);
	}
	PQclear(r);
	return rc;
}

int mdet_silent(struct maind_pg *p, const struct mdet_settings *s, struct mdet_stats *st)
{
	PGresult *r = mpg_query(p,
		"SELECT t.id, extract(epoch FROM t.last_hour)::bigint FROM towns t "
		"LEFT JOIN det_towns d ON d.town = t.id WHERE t.last_hour IS NOT NULL AND "
		"(d.silent_hour IS NULL OR t.last_hour > d.silent_hour) ORDER BY t.id", 0, NULL);
	int rc = 0;

	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r) && !rc; i++) {
		const char *v[2] = { PQgetvalue(r, i, 0), PQgetvalue(r, i, 1) };

		rc = town_silent(p, s, v[0], strtoll(v[1], NULL, 10), st);
		if (!rc)
			rc = mpg_exec(p, "INSERT INTO det_towns (town, silent_hour) VALUES ($1, "
				      "to_timestamp($2)) ON CONFLICT (town) DO UPDATE SET "
				      "silent_hour = EXCLUDED.silent_hour", 2, v);
	}
	PQclear(r);
	return rc;
}
