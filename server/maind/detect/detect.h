/* SPDX-License-Identifier: GPL-2.0 */
/*
 * maind's attack and theft detection (Documentation/detection.md): rules
 * over the hours, the meters' alarms and the towns' security counts that
 * raise alerts with their evidence, tell the operators and, when a rule
 * concerns a customer, the customer.
 *
 * A run (mdet_run) is incremental: every rule keeps a watermark in its own
 * tables (det_balance: the hours balanced per town; det_towns: the newest
 * hour checked for silent meters; det_state: the alarm and security rows
 * read), so a tick costs a few index look-ups when nothing is new. Runs
 * are serialised by an advisory lock and each is one transaction: maind's
 * tick and `mainctl detect run` may overlap safely.
 */
#ifndef MAIND_DETECT_H
#define MAIND_DETECT_H

#include <stdint.h>

#include "maind_pg.h"

#define MDET_TICK_S	60	/* mdet_tick runs the rules at most this often */

/* The thresholds (table detect_settings; `mainctl detect set KEY VALUE`). */
struct mdet_settings {
	int64_t settle_h;		/* an hour is balanced once the town is this far past it */
	int64_t lookback_h;		/* the oldest hour a first or late run balances */
	int64_t history_days;		/* a meter's history: the same hour on these days back */
	int64_t history_min;		/* fewer hours of history: no expectation */
	int64_t balance_min_mwh;	/* gaps below this are noise, whatever the allowance */
	int64_t default_loss_permille;	/* `mainctl feeder` without a loss */
	int64_t silent_h;		/* no hours for this long while the town reports */
	int64_t zero_min_mwh;		/* "draws": the meter's median for the hour at least */
	int64_t auth_fail_h;		/* per meter or address per hour, at least */
	int64_t replay_h;
	int64_t unknown_h;
	int64_t cmd_refused_h;
};

struct mdet_stats {
	int64_t hours;			/* (town, hour) balanced */
	int64_t alarms, security;	/* records read */
	int64_t raised;			/* new alerts */
};

/* One alert and what goes with it; strings are plain text (evidence: JSON). */
struct mdet_alert {
	const char *rule;
	int town, meter;		/* 0: none */
	const char *severity;		/* info, warning, critical */
	const char *key;		/* one open alert per key */
	const char *summary;		/* one line */
	const char *evidence;		/* JSON object */
	const char *cust_kind;		/* NULL: no customer notice; route, trip, lockout, tamper */
	const char *cust_subject, *cust_body;
};

/* The settings by name: i-th key and its default (NULL past the last). */
size_t mdet_setting_count(void);
const char *mdet_setting_key(size_t i, int64_t *def);
/* The settings (defaults for any not in the table). 0 or -1 with p->err. */
int mdet_settings_load(struct maind_pg *p, struct mdet_settings *s);

/*
 * Raise an alert: one INSERT ... ON CONFLICT (key) WHERE state = 'open' DO
 * NOTHING; when it was new, a notice to every operator not revoked and,
 * with cust_kind, to the meter's current customer(s). 1 raised (id set),
 * 0 an alert of that key is open, -1 error.
 */
int mdet_raise(struct maind_pg *p, const struct mdet_alert *a, int64_t *id);
/* mdet_raise for a rule: counted in st->raised. 0 or -1. */
int mdet_raise_count(struct maind_pg *p, const struct mdet_alert *a, struct mdet_stats *st);

/*
 * Run the rules inside the caller's transaction. hour >= 0 (UTC s, a
 * whole hour): balance that hour again for every town with a feeder as
 * well. 0 or -1 with p->err.
 */
int mdet_rules(struct maind_pg *p, const struct mdet_settings *s, int64_t hour,
	       struct mdet_stats *st);
/* mdet_rules in its own transaction under the detection lock. 0 or -1. */
int mdet_run(struct maind_pg *p, int64_t hour, struct mdet_stats *st);

/* The rules, one per file (det_balance.c, det_silent.c, det_alarms.c, det_security.c). */
int mdet_balance(struct maind_pg *p, const struct mdet_settings *s, int64_t hour,
		 struct mdet_stats *st);
int mdet_silent(struct maind_pg *p, const struct mdet_settings *s, struct mdet_stats *st);
int mdet_alarms(struct maind_pg *p, const struct mdet_settings *s, struct mdet_stats *st);
int mdet_security(struct maind_pg *p, const struct mdet_settings *s, struct mdet_stats *st);

/* meterd's alarm code as a name ("alarm-N" for codes this table does not know). */
const char *mdet_alarm_name(int64_t code, char *buf, size_t len);
/* UTC s as "YYYY-MM-DD HH:MM UTC". */
const char *mdet_time(int64_t t, char *buf, size_t len);

#endif
