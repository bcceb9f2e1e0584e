/* SPDX-License-Identifier: GPL-2.0 */
/*
 * maind billing (Documentation/billing.md): versioned tariffs, validation
 * and estimation of hourly data (VEE), hourly rating into running bills,
 * monthly bills issued immutable with their notices, per-meter and
 * per-town monthly summaries.
 *
 * Money: energy in mWh, prices in milli-minor per kWh (meterd's units,
 * agent/core/tariff.h), so a charge is exact in nano-minor units
 * (mWh * milli-minor/kWh); each bill line is rounded once to minor units,
 * half away from zero (mbill_round).
 */
#ifndef MAIND_BILLING_H
#define MAIND_BILLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "maind_pg.h"
#include "tariff.h"

#define MBILL_MAX_HOUR_MWH	25000000	/* 25 kWh in one hour: above a 100 A supply */
#define MBILL_SPIKE_FACTOR	8		/* x the running mean hour of the bill */
#define MBILL_SPIKE_FLOOR_MWH	2000000		/* never a spike below 2 kWh */
#define MBILL_ISSUE_DELAY_S	(6 * 3600)	/* after the period's end, late hours first */
#define MBILL_RATE_CHUNK	100000		/* new rows rated in one transaction, about */
#define MBILL_LINES_MAX		64
#define MBILL_TEXT		256

/* Kinds of rated energy (bill_accum.kind, bill_lines.kind). */
enum mbill_kind {
	MBILL_IMPORT = 0,	/* measured import, by TOU period or tier */
	MBILL_EXPORT = 1,	/* measured export (feed-in credit) */
	MBILL_IMPORT_EST = 2,	/* estimated import */
	MBILL_EXPORT_EST = 3,	/* estimated export */
};

/* One version of a tariff plan, compiled. */
struct mbill_version {
	int id;
	char plan[32];
	char tz[64];
	int32_t eff_day;	/* local date it takes effect (days since 1970-01-01) */
	int32_t eff_ymd;	/* the same as YYYYMMDD */
	int tax_bp;		/* basis points on the version's lines */
	struct tariff t;
};

struct mbill_tariffs {
	struct mbill_version *v;	/* by plan, then eff_day */
	size_t n;
};

/* Rated energy of a bill (one bill_accum row). */
struct mbill_acc {
	int version;
	int kind;		/* enum mbill_kind */
	int period;		/* TOU period or tier (import); 0 for export */
	int64_t mwh, nano;
	int64_t hours;		/* hours in it (estimated kinds: the estimated hours) */
};

/* A correction carried by a bill (one bill_adjust row). */
struct mbill_adj {
	int64_t id, hour;	/* UTC s of the corrected hour */
	int version;
	int64_t d_import_mwh, d_export_mwh, d_nano;
	char reason[64];
};

struct mbill_line {
	int kind;		/* 0..3 enum mbill_kind, 10 standing, 11 adjustment, 12 tax */
	int version;
	int period;
	int64_t qty;		/* mWh (energy), days (standing) */
	int64_t unit_milli;	/* milli-minor per kWh or per day; tax: basis points */
	int64_t nano;		/* exact amount before rounding */
	int64_t minor;		/* the line's amount, rounded once */
	char text[MBILL_TEXT];
};

#define MBILL_LINE_STANDING	10
#define MBILL_LINE_ADJUST	11
#define MBILL_LINE_TAX		12

/* nano-minor -> minor units, half away from zero. */
int64_t mbill_round(int64_t nano);

/* Load every tariff version (plan order, then effective date). 0 or -1 (p->err). */
int mbill_tariffs_load(struct maind_pg *p, struct mbill_tariffs *T);
void mbill_tariffs_free(struct mbill_tariffs *T);
/* The version of plan in force on local day `day`, or NULL. */
const struct mbill_version *mbill_version_at(const struct mbill_tariffs *T, const char *plan,
					     int32_t day);
const struct mbill_version *mbill_version_id(const struct mbill_tariffs *T, int id);
/*
 * The time-of-use period at a local time (YYYYMMDD, weekday 0 = Sunday,
 * minute of the day), as tariff_period_at() finds it from localtime().
 */
unsigned mbill_period_local(const struct tariff *t, int32_t ymd, int wday, int minute);

/*
 * A bill's lines: from its rated energy, its adjustments and the local days
 * [first_day, end_day) it charges standing charges for, split by the
 * versions of plan in force. Returns the number of lines (<= max), the
 * total in *total_minor.
 */
size_t mbill_make_lines(const struct mbill_tariffs *T, const char *plan, int32_t first_day,
			int32_t end_day, const struct mbill_acc *acc, size_t n_acc,
			const struct mbill_adj *adj, size_t n_adj, struct mbill_line *out,
			size_t max, int64_t *total_minor);

/* Rate every hour stored since the last call. *rated: hours rated (may be NULL). */
int mbill_rate(struct maind_pg *p, int64_t *rated);
/*
 * Issue the bills of every customer whose period (local calendar month of
 * its plan) ended at or before `now`: estimates for the missing hours,
 * lines, the bill notice, the per-meter and per-town summaries and each
 * town's GMP_TOWN_SUMMARY command. month (YYYYMM) limits it to that
 * month's bills, 0 = all due. Idempotent. *issued: bills issued.
 */
int mbill_issue(struct maind_pg *p, int32_t month, int64_t now, int64_t *issued);

/* Format milli-minor as "12.345", minor as "-1.23" (currency minor = 1/100). */
void mbill_fmt_milli(char *buf, size_t len, int64_t milli);
void mbill_fmt_minor(char *buf, size_t len, int64_t minor);
void mbill_fmt_kwh(char *buf, size_t len, int64_t mwh);

/* ---- inside the billing part ---------------------------------------------------------- */

/* Rows for COPY ... FROM STDIN (text format). */
struct mb_copy {
	char *p;
	size_t len, cap, rows;
};

int mb_printf(struct mb_copy *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A text field for COPY: backslash, tab, newline and CR escaped. */
int mb_text(struct mb_copy *b, const char *s);
/* COPY the rows into table (columns), then empty b. 0 or -1 (p->err). */
int mb_flush(struct maind_pg *p, const char *table_cols, struct mb_copy *b);
void mb_free(struct mb_copy *b);
/* A statement without parameters. 0 or -1 (p->err). */
int mb_exec(struct maind_pg *p, const char *sql);

/*
 * Totals (and lines) of the bills listed in the temporary table bill_set:
 * running bills up to the newest rated day, or issue them (lines, notice,
 * state issued at `now`). 0 or -1.
 */
/* One rating or bill run at a time (session advisory lock). */
int mbill_lock(struct maind_pg *p);
void mbill_unlock(struct maind_pg *p);
/* The staging tables, then BEGIN (repeatable read). */
int mbill_begin(struct maind_pg *p);
/* Estimate and rate the missing hours of the bills in the temporary table bill_due. */
int mbill_estimate(struct maind_pg *p, const struct mbill_tariffs *T);
/* Bills for every customer active in local month `month` (0: the last one closed by upto). */
int mbill_ensure(struct maind_pg *p, int32_t month, int64_t upto);
int mbill_settle(struct maind_pg *p, const struct mbill_tariffs *T, bool issue, int64_t now);

#endif
