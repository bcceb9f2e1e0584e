/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tariff engine: pure functions over a compiled tariff.
 *
 * Units: energy in mWh, prices in thousandths of the minor currency unit
 * ("milli-minor", e.g. 28.620 p/kWh = 28620) per kWh or per day. The cost
 * of E mWh at P milli-minor/kWh is E * P nano-minor units, so every charge
 * is accumulated exactly in nano-minor units (int64: +-9.2e9 minor units).
 *
 * Local time (time-of-use windows, special days, billing days, daily
 * charges) follows the process time zone (TZ), set once from the config.
 */
#ifndef GM_TARIFF_H
#define GM_TARIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TARIFF_MAX_PERIODS	6
#define TARIFF_MAX_WINDOWS	12
#define TARIFF_MAX_SPECIAL	32
#define TARIFF_NAME_LEN		16
#define TARIFF_STR_LEN		256

enum tariff_type { TARIFF_FLAT, TARIFF_TOU, TARIFF_TIERED };
enum tariff_daytype { TARIFF_WEEKDAY, TARIFF_WEEKEND, TARIFF_SPECIAL, TARIFF_NDAYTYPES };

/*
 * The textual form of a tariff, as written in the [tariff] section of the
 * config file and passed to SetTariff(a{sv}). Kept verbatim so the Tariff
 * property shows exactly what is in force.
 */
struct tariff_spec {
	char type[8];			/* flat | tou | tiered */
	char currency[8];		/* ISO 4217, e.g. GBP */
	char rate[24];			/* flat: price per kWh */
	char rates[TARIFF_STR_LEN];	/* tou: "peak:35.1, offpeak:12.5" */
	char tiers[TARIFF_STR_LEN];	/* tiered: "100:20.0, 300:25.0, *:30.0" (kWh per billing period) */
	char weekday[TARIFF_STR_LEN];	/* tou: "00:00-07:00 offpeak, 07:00-24:00 peak" */
	char weekend[TARIFF_STR_LEN];
	char special[TARIFF_STR_LEN];	/* optional, defaults to weekend */
	char special_days[TARIFF_STR_LEN * 2]; /* "2026-12-25, 2026-12-26" */
	char standing_charge[24];	/* minor units per day */
	char feed_in[24];		/* minor units per exported kWh */
};

struct tariff_window {
	uint16_t end_min;		/* exclusive, minutes after local midnight */
	uint8_t period;
};

struct tariff {
	enum tariff_type type;
	char currency[8];
	unsigned nperiods;
	char period_name[TARIFF_MAX_PERIODS][TARIFF_NAME_LEN];
	int64_t price[TARIFF_MAX_PERIODS];	/* milli-minor per kWh */
	uint64_t tier_upto_mwh[TARIFF_MAX_PERIODS]; /* tiered: cumulative upper bounds */
	unsigned nwindows[TARIFF_NDAYTYPES];
	struct tariff_window window[TARIFF_NDAYTYPES][TARIFF_MAX_WINDOWS];
	unsigned nspecial;
	int32_t special[TARIFF_MAX_SPECIAL];	/* YYYYMMDD, sorted */
	int64_t standing_milli;			/* per local day */
	int64_t feed_in_milli;			/* per exported kWh */
};

/* One slice of an import charge. */
struct tariff_part {
	unsigned period;
	uint64_t mwh;
	int64_t cost_nano;
};

/* NULL-terminated list of the keys of a tariff_spec. */
extern const char *const tariff_spec_keys[];

void tariff_spec_init(struct tariff_spec *spec);
/* Returns -ENOENT for an unknown key, -E2BIG if the value is too long. */
int tariff_spec_set(struct tariff_spec *spec, const char *key, const char *value);
const char *tariff_spec_get(const struct tariff_spec *spec, const char *key);
/*
 * Validate and compile. On error, *badkey names the offending key and err
 * says what is wrong with it.
 */
int tariff_compile(const struct tariff_spec *spec, struct tariff *t,
		   const char **badkey, char *err, size_t errlen);

enum tariff_daytype tariff_daytype_at(const struct tariff *t, time_t when);
/* Time-of-use / flat period at a time; tiered tariffs return the tier for bill_import_mwh. */
unsigned tariff_period_at(const struct tariff *t, time_t when, uint64_t bill_import_mwh);
/*
 * The first time in (from, until) at which the time-of-use period changes
 * (local windows, day types and special days, daylight saving included), or
 * until if it does not. Flat and tiered tariffs never change with time:
 * until. At most one local-time conversion per minute of the span.
 */
time_t tariff_next_change(const struct tariff *t, time_t from, time_t until);
/*
 * Split an import of delta_mwh at time `when` into priced parts. For tiered
 * tariffs bill_import_mwh is the import so far in the billing period (the
 * delta may cross tier boundaries). Returns the number of parts.
 */
unsigned tariff_split_import(const struct tariff *t, time_t when, uint64_t bill_import_mwh,
			     uint64_t delta_mwh, struct tariff_part parts[TARIFF_MAX_PERIODS]);
int64_t tariff_export_credit_nano(const struct tariff *t, uint64_t mwh);

/* Start (local midnight) of the billing period containing `now`; billing_day 1..31, clamped to the month. */
time_t tariff_billing_start(time_t now, unsigned billing_day);
/* Start of the billing period after the one starting at `start`. */
time_t tariff_billing_next(time_t start, unsigned billing_day);
/* Local calendar days from the day of `start` to the day of `now`, inclusive. */
unsigned tariff_local_days(time_t start, time_t now);

#endif
