// SPDX-License-Identifier: GPL-2.0
/*
 * maind detection: its tables, the meters' alarms and the towns' security
 * counts as the towns send them, its settings, and its pace (detect.h,
 * Documentation/detection.md).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"

const char *const mdet_schema_sql[] = {
	/* thresholds that differ from the defaults (det_settings below) */
	"CREATE TABLE IF NOT EXISTS detect_settings ("
	" key text PRIMARY KEY, value bigint NOT NULL, updated timestamptz NOT NULL DEFAULT now())",
	/* each town's supply (feeder) meter and the losses allowed between it and the meters */
	"CREATE TABLE IF NOT EXISTS town_feeders ("
	" town integer PRIMARY KEY, meter integer NOT NULL,"
	" loss_permille integer NOT NULL CHECK (loss_permille BETWEEN 0 AND 1000),"
	" updated timestamptz NOT NULL DEFAULT now())",
	/* GMP_METER_ALARM records, once each (town, seq). The wire's numbers are
	 * int64: kept as bigint so that no value a town sends can fail its batch;
	 * a time outside 1970..2100 is kept as sent (meter_time) with at = arrival */
	"CREATE TABLE IF NOT EXISTS meter_alarms ("
	" id bigserial PRIMARY KEY, town integer NOT NULL, meter bigint NOT NULL,"
	" code bigint NOT NULL, active boolean NOT NULL, value bigint NOT NULL,"
	" at timestamptz NOT NULL,"			/* the meter's clock */
	" meter_time bigint NOT NULL,"			/* as sent, UTC s */
	" seq bigint NOT NULL, received timestamptz NOT NULL DEFAULT now(),"
	" UNIQUE (town, seq))",
	"CREATE INDEX IF NOT EXISTS meter_alarms_meter ON meter_alarms (town, meter, at)",
	/* GMP_SECURITY records: count of kind over [at - interval_s, at) */
	"CREATE TABLE IF NOT EXISTS security_counts ("
	" id bigserial PRIMARY KEY, town integer NOT NULL, meter bigint NOT NULL,"
	" addr bigint NOT NULL, kind bigint NOT NULL, count bigint NOT NULL,"
	" interval_s bigint NOT NULL, at timestamptz NOT NULL, town_time bigint NOT NULL,"
	" seq bigint NOT NULL, received timestamptz NOT NULL DEFAULT now(),"
	" UNIQUE (town, seq))",
	"CREATE INDEX IF NOT EXISTS security_counts_meter ON security_counts (town, kind, meter, at)",
	"CREATE INDEX IF NOT EXISTS security_counts_addr ON security_counts (town, kind, addr, at)",
	/* the rules' watermarks */
	"CREATE TABLE IF NOT EXISTS det_state (name text PRIMARY KEY, value bigint NOT NULL)",
	"INSERT INTO det_state VALUES ('alarm_id', 0), ('security_id', 0) ON CONFLICT DO NOTHING",
	"CREATE TABLE IF NOT EXISTS det_towns ("
	" town integer PRIMARY KEY, silent_hour timestamptz)",	/* last_hour checked */
	/* every (town, hour) balanced, flagged or not: the evidence over time */
	"CREATE TABLE IF NOT EXISTS det_balance ("
	" town integer NOT NULL, hour timestamptz NOT NULL, feeder integer NOT NULL,"
	" feeder_mwh bigint, metered_mwh bigint NOT NULL, meters integer NOT NULL,"
	" missing integer NOT NULL, missing_expected_mwh bigint NOT NULL,"
	" gap_mwh bigint, allowance_mwh bigint, flagged boolean NOT NULL,"
	" suspects text NOT NULL DEFAULT '[]',"	/* JSON, most likely first */
	" evaluated timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (town, hour))",
	NULL,
};

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))
/* a sender's UTC s as a timestamp, arrival time when outside 1970..2100 */
#define SANE_TIME(par) "CASE WHEN " par "::bigint BETWEEN 0 AND 4102444800 THEN " \
	"to_timestamp(" par "::bigint) ELSE now() END"

int mdet_store_alarm(struct maind_pg *p, uint16_t town, const struct gmp_msg *m)
{
	char a[24], b[24], c[24], e[24], f[24], g[24];
	const char *v[7] = { I64(a, town), I64(b, m->meter_alarm.meter), I64(c, m->meter_alarm.code),
			     m->meter_alarm.active ? "t" : "f", I64(e, m->meter_alarm.value),
			     I64(f, m->meter_alarm.time), I64(g, m->meter_alarm.seq) };

	return mpg_exec(p, "INSERT INTO meter_alarms (town, meter, code, active, value, at, "
			"meter_time, seq) VALUES ($1, $2, $3, $4, $5, " SANE_TIME("$6") ", $6, $7) "
			"ON CONFLICT (town, seq) DO NOTHING", 7, v);
}

int mdet_store_security(struct maind_pg *p, uint16_t town, const struct gmp_msg *m)
{
	char a[24], b[24], c[24], d[24], e[24], f[24], g[24], h[24];
	const char *v[8] = { I64(a, town), I64(b, m->security.meter), I64(c, m->security.addr),
			     I64(d, m->security.kind), I64(e, m->security.count),
			     I64(f, m->security.interval_s), I64(g, m->security.time),
			     I64(h, m->security.seq) };

	return mpg_exec(p, "INSERT INTO security_counts (town, meter, addr, kind, count, "
			"interval_s, at, town_time, seq) VALUES ($1, $2, $3, $4, $5, $6, "
			SANE_TIME("$7") ", $7, $8) ON CONFLICT (town, seq) DO NOTHING", 8, v);
}

/* ---- settings ---------------------------------------------------------------------------- */

static const struct {
	const char *key;
	size_t off;
	int64_t def;
} settings[] = {
#define S(k, f, d) { k, offsetof(struct mdet_settings, f), d }
	S("settle_hours", settle_h, 1),
	S("lookback_hours", lookback_h, 48),
	S("history_days", history_days, 28),
	S("history_min", history_min, 3),
	S("balance_min_mwh", balance_min_mwh, 100000),
	S("default_loss_permille", default_loss_permille, 60),
	S("silent_hours", silent_h, 3),
	S("zero_min_mwh", zero_min_mwh, 100000),
	S("auth_fail_per_hour", auth_fail_h, 30),
	S("replay_per_hour", replay_h, 5),
	S("unknown_per_hour", unknown_h, 60),
	S("cmd_refused_per_hour", cmd_refused_h, 3),
#undef S
};

size_t mdet_setting_count(void)
{
	return sizeof(settings) / sizeof(settings[0]);
}

const char *mdet_setting_key(size_t i, int64_t *def)
{
	if (i >= mdet_setting_count())
		return NULL;
	*def = settings[i].def;
	return settings[i].key;
}

int mdet_settings_load(struct maind_pg *p, struct mdet_settings *s)
{
	PGresult *r = mpg_query(p, "SELECT key, value FROM detect_settings", 0, NULL);

	if (!r)
		return -1;
	for (size_t i = 0; i < mdet_setting_count(); i++) {
		int64_t *f = (int64_t *)((char *)s + settings[i].off);

		*f = settings[i].def;
		for (int k = 0; k < PQntuples(r); k++)
			if (!strcmp(PQgetvalue(r, k, 0), settings[i].key))
				*f = strtoll(PQgetvalue(r, k, 1), NULL, 10);
	}
	PQclear(r);
	return 0;
}

/* ---- runs ----------------------------------------------------------------------------------- */

int mdet_run(struct maind_pg *p, int64_t hour, struct mdet_stats *st)
{
	struct mdet_settings s;

	memset(st, 0, sizeof(*st));
	if (mpg_exec(p, "BEGIN", 0, NULL))
		return -1;
	/* one run at a time (maind's tick, mainctl detect run): the watermarks */
	if (mpg_exec(p, "SELECT pg_advisory_xact_lock(" MPG_LOCK_DETECT ")", 0, NULL) ||
	    mdet_settings_load(p, &s) || mdet_rules(p, &s, hour, st) ||
	    mpg_exec(p, "COMMIT", 0, NULL)) {
		char keep[sizeof(p->err)];

		memcpy(keep, p->err, sizeof(keep));
		PQclear(PQexec(p->c, "ROLLBACK"));
		memcpy(p->err, keep, sizeof(keep));
		return -1;
	}
	return 0;
}

int mdet_rules(struct maind_pg *p, const struct mdet_settings *s, int64_t hour,
	       struct mdet_stats *st)
{
	/* the events first: a tamper alarm need not wait for the hours */
	if (mdet_alarms(p, s, st) || mdet_security(p, s, st) || mdet_silent(p, s, st) ||
	    mdet_balance(p, s, hour, st))
		return -1;
	return 0;
}

int mdet_tick(struct maind_pg *p, int64_t now)
{
	struct mdet_stats st;

	if (p->in_tx || (p->detect_at && now - p->detect_at < MDET_TICK_S && now >= p->detect_at))
		return 0;
	p->detect_at = now;
	return mdet_run(p, -1, &st);
}
