// SPDX-License-Identifier: GPL-2.0
/*
 * mainctl: the detect part's commands (mainctl_parts.h,
 * Documentation/detection.md): alerts, their evidence and closing, the
 * towns' feeder meters, the thresholds, and a detection run by hand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detect.h"
#include "mainctl_parts.h"
#include "parse.h"

void mctl_alert_usage(void)
{
	fprintf(stderr,
		"  alerts [--open]              alerts raised by detection, newest first\n"
		"  alert ID                     an alert with its evidence and notices\n"
		"  alert-close ID               close an alert (the rule may raise it again)\n"
		"  feeder TOWN METER [LOSS_PERMILLE]  the town's supply meter and loss allowance\n"
		"  feeders                      the feeder meters configured\n"
		"  detect run [--hour HOUR]     run the rules now (HOUR, UTC: balance it again)\n"
		"  detect settings              the detection thresholds\n"
		"  detect set KEY VALUE         change a threshold\n");
}

static int list(const struct mainctl_ctx *x, bool open_only)
{
	PGconn *c = mctl_open(x->report);
	PGresult *r;

	if (!c)
		return 1;
	r = mctl_q(c, "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS at, rule, "
	      "town, meter, severity, state, summary FROM alerts WHERE NOT $1::boolean OR "
	      "state = 'open' ORDER BY id DESC LIMIT 500", 1,
	      (const char *const[]){ open_only ? "t" : "f" });
	if (r) {
		mctl_table(r);
		PQclear(r);
	}
	PQfinish(c);
	return r ? 0 : 1;
}

static int show(const struct mainctl_ctx *x, const char *id)
{
	PGconn *c = mctl_open(x->report);
	const char *v[1] = { id };
	PGresult *r, *n;

	if (!c)
		return 1;
	r = mctl_q(c, "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC', "
	      "rule, COALESCE(town::text, '-'), COALESCE(meter::text, '-'), severity, state, "
	      "COALESCE(to_char(closed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC', "
	      "'-'), key, summary, jsonb_pretty(evidence::jsonb) FROM alerts WHERE id = $1", 1, v);
	if (!r) {
		PQfinish(c);
		return 1;
	}
	if (PQntuples(r) != 1) {
		fprintf(stderr, "mainctl: no alert %s\n", id);
		PQclear(r);
		PQfinish(c);
		return 1;
	}
	printf("alert %s\nraised    %s\nrule      %s\ntown      %s\nmeter     %s\n"
	       "severity  %s\nstate     %s\nclosed    %s\nkey       %s\nsummary   %s\n"
	       "evidence\n%s\n", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
	       PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4), PQgetvalue(r, 0, 5), PQgetvalue(r, 0, 6),
	       PQgetvalue(r, 0, 7), PQgetvalue(r, 0, 8), PQgetvalue(r, 0, 9), PQgetvalue(r, 0, 10));
	PQclear(r);
	n = mctl_q(c, "SELECT n.id AS notice, CASE WHEN n.operator IS NOT NULL THEN 'operator ' || "
	      "o.name ELSE 'customer ' || n.customer END AS to, n.kind, n.state, n.attempts, "
	      "COALESCE(n.medium, '-') AS medium FROM notices n LEFT JOIN operators o ON "
	      "o.id = n.operator WHERE n.ref = $1 AND n.kind IN ('alert', 'route', 'trip', "
	      "'lockout', 'tamper', 'gas') ORDER BY n.id", 1, v);
	if (n) {
		printf("notices\n");
		mctl_table(n);
		PQclear(n);
	}
	PQfinish(c);
	return n ? 0 : 1;
}

static int close_alert(const struct mainctl_ctx *x, const char *id)
{
	PGconn *c = mctl_open(x->conninfo);
	const char *v[1] = { id };
	PGresult *r;
	int rc = 1;

	if (!c)
		return 1;
	r = mctl_q(c, "WITH a AS (UPDATE alerts SET state = 'closed', closed_at = now() WHERE id = $1 "
	      "AND state = 'open' RETURNING id, town, key) INSERT INTO journal (town, what) "
	      "SELECT town, 'alert ' || id || ' (' || key || ') closed' FROM a RETURNING 1", 1, v);
	if (r) {
		if (PQntuples(r) == 1) {
			printf("alert %s closed\n", id);
			rc = 0;
		} else {
			fprintf(stderr, "mainctl: no open alert %s\n", id);
		}
		PQclear(r);
	}
	PQfinish(c);
	return rc;
}

static int feeder(const struct mainctl_ctx *x, int argc, char **args)
{
	uint32_t town, meter, loss;
	char lb[16], db[24] = "0";
	PGconn *c;
	PGresult *r;

	if (parse_u32(args[0], 1, 65534, &town) || parse_u32(args[1], 1, UINT32_MAX >> 1, &meter) ||
	    (argc == 3 && parse_u32(args[2], 0, 1000, &loss))) {
		fprintf(stderr, "mainctl: feeder TOWN METER [LOSS_PERMILLE]: a town id, a meter id "
			"and 0..1000 per mille\n");
		return 2;
	}
	c = mctl_open(x->conninfo);
	if (!c)
		return 1;
	if (argc == 3)
		snprintf(lb, sizeof(lb), "%u", loss);
	for (size_t i = 0; i < mdet_setting_count(); i++) {
		int64_t def;

		if (!strcmp(mdet_setting_key(i, &def), "default_loss_permille"))
			snprintf(db, sizeof(db), "%lld", (long long)def);
	}
	/* without a loss: the one configured, else the default setting */
	r = mctl_q(c, "INSERT INTO town_feeders (town, meter, loss_permille) VALUES ($1, $2, "
	      "COALESCE($3::integer, (SELECT loss_permille FROM town_feeders WHERE town = $1), "
	      "(SELECT value FROM detect_settings WHERE key = 'default_loss_permille'), $4::integer)) "
	      "ON CONFLICT (town) DO UPDATE SET meter = EXCLUDED.meter, loss_permille = "
	      "EXCLUDED.loss_permille, updated = now() RETURNING town, meter, loss_permille", 4,
	      (const char *const[]){ args[0], args[1], argc == 3 ? lb : NULL, db });
	if (r) {
		printf("town %s: feeder meter %s, losses allowed %s per mille\n", PQgetvalue(r, 0, 0),
		       PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
		PQclear(r);
	}
	PQfinish(c);
	return r ? 0 : 1;
}

static int settings(const struct mainctl_ctx *x)
{
	PGconn *c = mctl_open(x->report);
	PGresult *r;

	if (!c)
		return 1;
	r = mctl_q(c, "SELECT key, value FROM detect_settings", 0, NULL);
	if (r) {
		printf("%-24s %12s  %s\n", "key", "value", "default");
		for (size_t i = 0; i < mdet_setting_count(); i++) {
			int64_t def;
			const char *k = mdet_setting_key(i, &def), *val = NULL;

			for (int t = 0; t < PQntuples(r); t++)
				if (!strcmp(PQgetvalue(r, t, 0), k))
					val = PQgetvalue(r, t, 1);
			if (val)
				printf("%-24s %12s  %lld\n", k, val, (long long)def);
			else
				printf("%-24s %12lld  %lld\n", k, (long long)def, (long long)def);
		}
		PQclear(r);
	}
	PQfinish(c);
	return r ? 0 : 1;
}

static int set(const struct mainctl_ctx *x, const char *key, const char *val)
{
	uint64_t v;
	int64_t def;
	bool known = false;
	PGconn *c;
	PGresult *r;

	for (size_t i = 0; i < mdet_setting_count(); i++)
		known |= !strcmp(mdet_setting_key(i, &def), key);
	if (!known || parse_u64(val, 0, 1ull << 50, &v)) {
		fprintf(stderr, "mainctl: detect set KEY VALUE: KEY one of `mainctl detect "
			"settings`, VALUE 0..%llu\n", 1ull << 50);
		return 2;
	}
	c = mctl_open(x->conninfo);
	if (!c)
		return 1;
	r = mctl_q(c, "INSERT INTO detect_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO "
	      "UPDATE SET value = EXCLUDED.value, updated = now()", 2,
	      (const char *const[]){ key, val });
	PQclear(r);
	PQfinish(c);
	return r ? 0 : 1;
}

static int run(const struct mainctl_ctx *x, const char *hour)
{
	struct maind_pg p;
	struct mdet_stats st;
	char err[512];
	int64_t h = -1;
	int rc;

	if (mpg_open(&p, x->conninfo, err, sizeof(err))) {
		fprintf(stderr, "mainctl: %s\n", err);
		return 1;
	}
	if (hour) {
		const char *v[1] = { hour };
		PGresult *r;

		if (mpg_exec(&p, "SET TIME ZONE 'UTC'", 0, NULL) ||
		    !(r = mpg_query(&p, "SELECT extract(epoch FROM date_trunc('hour', "
				    "$1::timestamptz))::bigint", 1, v))) {
			fprintf(stderr, "mainctl: --hour '%s': %s\n", hour, p.err);
			mpg_close(&p);
			return 2;
		}
		h = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
	}
	rc = mdet_run(&p, h, &st);
	if (rc)
		fprintf(stderr, "mainctl: detection: %s\n", p.err);
	else
		printf("balanced %lld town hours, read %lld alarms and %lld security records, "
		       "raised %lld alerts\n", (long long)st.hours, (long long)st.alarms,
		       (long long)st.security, (long long)st.raised);
	mpg_close(&p);
	return rc ? 1 : 0;
}

int mctl_alert(const struct mainctl_ctx *x, const char *cmd, int argc, char **args)
{
	uint64_t id;

	if (!strcmp(cmd, "alerts") && (argc == 0 || (argc == 1 && !strcmp(args[0], "--open"))))
		return list(x, argc == 1);
	if ((!strcmp(cmd, "alert") || !strcmp(cmd, "alert-close")) && argc == 1) {
		if (parse_u64(args[0], 1, INT64_MAX, &id)) {
			fprintf(stderr, "mainctl: %s ID: an alert number\n", cmd);
			return 2;
		}
		return cmd[5] ? close_alert(x, args[0]) : show(x, args[0]);
	}
	if (!strcmp(cmd, "feeder") && (argc == 2 || argc == 3))
		return feeder(x, argc, args);
	if (!strcmp(cmd, "feeders") && argc == 0) {
		PGconn *c = mctl_open(x->report);
		PGresult *r;

		if (!c)
			return 1;
		r = mctl_q(c, "SELECT town, meter, loss_permille, to_char(updated AT TIME ZONE 'UTC', "
		      "'YYYY-MM-DD HH24:MI') AS updated FROM town_feeders ORDER BY town", 0, NULL);
		if (r)
			mctl_table(r);
		PQclear(r);
		PQfinish(c);
		return r ? 0 : 1;
	}
	if (!strcmp(cmd, "detect") && argc >= 1) {
		if (!strcmp(args[0], "run") && argc == 1)
			return run(x, NULL);
		if (!strcmp(args[0], "run") && argc == 3 && !strcmp(args[1], "--hour"))
			return run(x, args[2]);
		if (!strcmp(args[0], "settings") && argc == 1)
			return settings(x);
		if (!strcmp(args[0], "set") && argc == 3)
			return set(x, args[1], args[2]);
		mctl_alert_usage();
		return 2;
	}
	return -2;
}
