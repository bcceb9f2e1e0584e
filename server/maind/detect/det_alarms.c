// SPDX-License-Identifier: GPL-2.0
/*
 * Detection rule: the meters' own alarms (GMP_METER_ALARM records in
 * meter_alarms): trips, lockouts, a reversed current transformer, tamper,
 * a failed sensor, gas in the home. Each raised alarm of those codes raises
 * an alert per (town, meter, alarm); the household is told of trips,
 * lockouts, tamper and gas. A cleared alarm raises nothing (the alert stays
 * until closed). A meter sends the gas alarm only for a gas sensor its
 * household set to notify (meterd [sensor.NAME] notify, the default for
 * gas); no other home sensor alarm leaves the house.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))
#define BATCH	1000

static const struct alarm_rule {
	int code;		/* enum meter_alarm, by number (det_raise.c) */
	const char *severity;
	const char *notice;	/* the customer's notice kind, NULL none */
	const char *words;	/* what happened, for the household */
} alarm_rules[] = {
	/* over-voltage: the main relay opened */
	{ 0, "info", "trip", "the voltage of the supply was too high" },
	/* under-voltage (0 V: a power cut, a trip too) */
	{ 1, "info", "trip", "the voltage of the supply was too low, or it failed" },
	{ 2, "info", "trip", "more current was drawn than your connection allows" },
	/* repeated trips: off until cleared */
	{ 3, "warning", "lockout", NULL },
	/* sensor failure: a CT unplugged reads as one */
	{ 5, "warning", NULL, NULL },
	/* ALARM_REVERSED_CT: sustained export with no generation configured */
	{ 10, "critical", "tamper", "its current sensor has been turned round, so that what "
	  "you draw would count as energy you give back" },
	/* ALARM_CT_TAMPER: no current for hours, supply on, relay closed */
	{ 11, "critical", "tamper", "its current sensor has measured nothing for hours while "
	  "your supply was on, as if it had been removed or bypassed" },
	/* ALARM_GAS (issue 15): a gas sensor of the home above its alarm level */
	{ 14, "critical", "gas", NULL },
};

static const struct alarm_rule *rule_of(int64_t code)
{
	for (size_t i = 0; i < sizeof(alarm_rules) / sizeof(alarm_rules[0]); i++)
		if (alarm_rules[i].code == code)
			return &alarm_rules[i];
	return NULL;
}

static void letter(const char *kind, const char *name, const char *words, int64_t meter,
		   const char *when, char *subj, size_t sl, char *body, size_t bl)
{
	if (!strcmp(kind, "trip")) {
		snprintf(subj, sl, "Your meter switched your supply off (%s)", name);
		snprintf(body, bl,
			 "Dear customer,\n\n"
			 "At %s your meter (number %lld) switched your electricity supply off "
			 "because %s. This protects your home's wiring and appliances.\n\n"
			 "If your supply has not come back, or this happens again, please contact "
			 "us and quote your meter number.\n", when, (long long)meter, words);
	} else if (!strcmp(kind, "lockout")) {
		snprintf(subj, sl, "Your supply is off after repeated faults (lockout)");
		snprintf(body, bl,
			 "Dear customer,\n\n"
			 "At %s your meter (number %lld) switched your electricity supply off and "
			 "is keeping it off after repeated faults (a lockout). It stays off until "
			 "the fault has been checked; we have been told.\n\n"
			 "Please contact us and quote your meter number so that we can arrange "
			 "it.\n", when, (long long)meter);
	} else if (!strcmp(kind, "gas")) {
		snprintf(subj, sl, "Gas detected at your home");
		snprintf(body, bl,
			 "Dear customer,\n\n"
			 "At %s the gas sensor connected to your meter (number %lld) detected gas "
			 "at your home.\n\n"
			 "If you are at home or can reach someone who is:\n"
			 "- open doors and windows to ventilate;\n"
			 "- do not use flames, do not smoke, and do not operate electrical switches, "
			 "plugs or appliances (a spark can ignite gas);\n"
			 "- turn off the gas supply at the meter if it is safe to do so;\n"
			 "- leave the building and call the gas emergency number from outside.\n\n"
			 "This message was sent automatically by your meter; we cannot see whether "
			 "anyone is at home. Your meter sends nothing else from its home sensors.\n",
			 when, (long long)meter);
	} else {
		snprintf(subj, sl, "Your meter reported interference (%s)", name);
		snprintf(body, bl,
			 "Dear customer,\n\n"
			 "At %s your meter (number %lld) reported that %s.\n\n"
			 "Working on a meter or its current sensor is dangerous and only our "
			 "technicians may do it. If work was done on your installation, or you "
			 "know nothing of this, please contact us and quote your meter number; a "
			 "technician may visit to check the meter.\n", when, (long long)meter, words);
	}
}

static int one(struct maind_pg *p, PGresult *r, int i, struct mdet_stats *st)
{
	int64_t town = strtoll(PQgetvalue(r, i, 1), NULL, 10);
	int64_t meter = strtoll(PQgetvalue(r, i, 2), NULL, 10);
	int64_t code = strtoll(PQgetvalue(r, i, 3), NULL, 10);
	int64_t at = strtoll(PQgetvalue(r, i, 6), NULL, 10);
	const struct alarm_rule *ar = rule_of(code);
	char nb[24], when[40], recv[40], key[96], summary[256], ev[640], subj[128], body[1024];
	const char *name = mdet_alarm_name(code, nb, sizeof(nb));
	struct mdet_alert a;

	if (!ar || PQgetvalue(r, i, 4)[0] != 't' || meter < 1 || meter > 65535)
		return 0;	/* stored only (a meter id outside the protocol's: not a meter) */
	mdet_time(at, when, sizeof(when));
	mdet_time(strtoll(PQgetvalue(r, i, 7), NULL, 10), recv, sizeof(recv));
	snprintf(key, sizeof(key), "alarm:%lld:%lld:%s", (long long)town, (long long)meter, name);
	snprintf(summary, sizeof(summary), "town %lld meter %lld: %s alarm raised at %s (meter's "
		 "clock)", (long long)town, (long long)meter, name, when);
	snprintf(ev, sizeof(ev), "{\"town\": %lld, \"meter\": %lld, \"alarm\": \"%s\", \"code\": "
		 "%lld, \"active\": true, \"value\": %s, \"meter_time\": \"%s\", \"received\": "
		 "\"%s\", \"record_seq\": %s, \"meter_alarms_id\": %s, \"check\": \"SELECT * FROM "
		 "meter_alarms WHERE town = %lld AND meter = %lld ORDER BY at\"}",
		 (long long)town, (long long)meter, name, (long long)code, PQgetvalue(r, i, 5), when,
		 recv, PQgetvalue(r, i, 8), PQgetvalue(r, i, 0), (long long)town, (long long)meter);
	a = (struct mdet_alert){ "meter-alarm", (int)town, (int)meter, ar->severity, key, summary,
				 ev, ar->notice, NULL, NULL };
	if (ar->notice) {
		letter(ar->notice, name, ar->words, meter, when, subj, sizeof(subj), body, sizeof(body));
		a.cust_subject = subj;
		a.cust_body = body;
	}
	return mdet_raise_count(p, &a, st);
}

int mdet_alarms(struct maind_pg *p, const struct mdet_settings *s, struct mdet_stats *st)
{
	(void)s;
	for (;;) {
		char b[24];
		const char *v[1] = { I64(b, BATCH) };
		PGresult *r = mpg_query(p, "SELECT id, town, meter, code, active, value, "
					"extract(epoch FROM at)::bigint, "
					"extract(epoch FROM received)::bigint, seq FROM meter_alarms "
					"WHERE id > (SELECT value FROM det_state WHERE name = "
					"'alarm_id') ORDER BY id LIMIT $1", 1, v);
		int n;

		if (!r)
			return -1;
		n = PQntuples(r);
		for (int i = 0; i < n; i++)
			if (one(p, r, i, st)) {
				PQclear(r);
				return -1;
			}
		st->alarms += n;
		if (n) {
			const char *w[1] = { PQgetvalue(r, n - 1, 0) };

			if (mpg_exec(p, "UPDATE det_state SET value = $1 WHERE name = 'alarm_id'",
				     1, w)) {
				PQclear(r);
				return -1;
			}
		}
		PQclear(r);
		if (n < BATCH)
			return 0;
	}
}
