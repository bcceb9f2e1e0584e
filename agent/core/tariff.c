// SPDX-License-Identifier: GPL-2.0
#include "tariff.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

const char *const tariff_spec_keys[] = {
	"type", "currency", "rate", "rates", "tiers", "weekday", "weekend",
	"special", "special_days", "standing_charge", "feed_in", NULL
};

#define SPEC_FIELD(k) { #k, offsetof(struct tariff_spec, k), sizeof(((struct tariff_spec *)0)->k) }
static const struct {
	const char *key;
	size_t off, size;
} spec_fields[] = {
	SPEC_FIELD(type), SPEC_FIELD(currency), SPEC_FIELD(rate), SPEC_FIELD(rates),
	SPEC_FIELD(tiers), SPEC_FIELD(weekday), SPEC_FIELD(weekend), SPEC_FIELD(special),
	SPEC_FIELD(special_days), SPEC_FIELD(standing_charge), SPEC_FIELD(feed_in),
};
#define NFIELDS (sizeof(spec_fields) / sizeof(spec_fields[0]))

void tariff_spec_init(struct tariff_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	strcpy(spec->type, "flat");
	strcpy(spec->currency, "GBP");
	strcpy(spec->rate, "0");
	strcpy(spec->standing_charge, "0");
	strcpy(spec->feed_in, "0");
}

int tariff_spec_set(struct tariff_spec *spec, const char *key, const char *value)
{
	for (size_t i = 0; i < NFIELDS; i++) {
		if (strcmp(spec_fields[i].key, key))
			continue;
		if (strlcpy_chk((char *)spec + spec_fields[i].off, value, spec_fields[i].size))
			return -E2BIG;
		return 0;
	}
	return -ENOENT;
}

const char *tariff_spec_get(const struct tariff_spec *spec, const char *key)
{
	for (size_t i = 0; i < NFIELDS; i++)
		if (!strcmp(spec_fields[i].key, key))
			return (const char *)spec + spec_fields[i].off;
	return NULL;
}

#define FAIL(k, ...) do { *badkey = (k); snprintf(err, errlen, __VA_ARGS__); return -EINVAL; } while (0)

static int find_period(const struct tariff *t, const char *name)
{
	for (unsigned i = 0; i < t->nperiods; i++)
		if (!strcmp(t->period_name[i], name))
			return (int)i;
	return -1;
}

/* "name:price, name:price" */
static int compile_rates(const char *src, struct tariff *t, char *err, size_t errlen)
{
	char buf[TARIFF_STR_LEN], *cur = buf, *item;

	strcpy(buf, src);
	t->nperiods = 0;
	while ((item = next_item(&cur))) {
		char *colon = strchr(item, ':');
		char *name;
		int64_t price;

		if (!colon) {
			snprintf(err, errlen, "expected name:price, got '%s'", item);
			return -EINVAL;
		}
		*colon = 0;
		name = strtrim(item);
		if (!*name || strlen(name) >= TARIFF_NAME_LEN) {
			snprintf(err, errlen, "bad period name '%s'", name);
			return -EINVAL;
		}
		if (parse_milli(strtrim(colon + 1), &price)) {
			snprintf(err, errlen, "bad price '%s' for period '%s'", strtrim(colon + 1), name);
			return -EINVAL;
		}
		if (find_period(t, name) >= 0) {
			snprintf(err, errlen, "period '%s' given twice", name);
			return -EINVAL;
		}
		if (t->nperiods == TARIFF_MAX_PERIODS) {
			snprintf(err, errlen, "more than %d periods", TARIFF_MAX_PERIODS);
			return -EINVAL;
		}
		strcpy(t->period_name[t->nperiods], name);
		t->price[t->nperiods++] = price;
	}
	if (!t->nperiods) {
		snprintf(err, errlen, "no periods given");
		return -EINVAL;
	}
	return 0;
}

/* "HH:MM-HH:MM period, ..." covering 00:00-24:00 contiguously. */
static int compile_day(const char *src, struct tariff *t, enum tariff_daytype d,
		       char *err, size_t errlen)
{
	char buf[TARIFF_STR_LEN], *cur = buf, *item;
	unsigned expect = 0, n = 0;

	strcpy(buf, src);
	while ((item = next_item(&cur))) {
		char times[16], name[TARIFF_NAME_LEN + 1];
		unsigned a, b;
		int p;

		if (sscanf(item, "%15s %16s", times, name) != 2 || strlen(times) != 11 ||
		    times[5] != '-') {
			snprintf(err, errlen, "expected 'HH:MM-HH:MM period', got '%s'", item);
			return -EINVAL;
		}
		times[5] = 0;
		if (parse_hhmm(times, &a) || parse_hhmm(times + 6, &b) || b <= a) {
			snprintf(err, errlen, "bad window '%s'", item);
			return -EINVAL;
		}
		if (a != expect) {
			snprintf(err, errlen, "window '%s' does not start at %02u:%02u (windows must be in order and cover the whole day)",
				 item, expect / 60, expect % 60);
			return -EINVAL;
		}
		p = find_period(t, name);
		if (p < 0) {
			snprintf(err, errlen, "unknown period '%s' (not in rates)", name);
			return -EINVAL;
		}
		if (n == TARIFF_MAX_WINDOWS) {
			snprintf(err, errlen, "more than %d windows", TARIFF_MAX_WINDOWS);
			return -EINVAL;
		}
		t->window[d][n].end_min = (uint16_t)b;
		t->window[d][n].period = (uint8_t)p;
		n++;
		expect = b;
	}
	if (expect != 24 * 60) {
		snprintf(err, errlen, "windows end at %02u:%02u, must cover the day up to 24:00",
			 expect / 60, expect % 60);
		return -EINVAL;
	}
	t->nwindows[d] = n;
	return 0;
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

static int compile_special_days(const char *src, struct tariff *t, char *err, size_t errlen)
{
	char buf[TARIFF_STR_LEN * 2], *cur = buf, *item;

	strcpy(buf, src);
	t->nspecial = 0;
	if (!*strtrim(buf))
		return 0;
	while ((item = next_item(&cur))) {
		int32_t d;

		if (parse_date(item, &d)) {
			snprintf(err, errlen, "bad date '%s' (want YYYY-MM-DD)", item);
			return -EINVAL;
		}
		if (t->nspecial == TARIFF_MAX_SPECIAL) {
			snprintf(err, errlen, "more than %d special days", TARIFF_MAX_SPECIAL);
			return -EINVAL;
		}
		t->special[t->nspecial++] = d;
	}
	qsort(t->special, t->nspecial, sizeof(t->special[0]), cmp_i32);
	return 0;
}

/* "kWh:price, kWh:price, *:price" with strictly increasing bounds. */
static int compile_tiers(const char *src, struct tariff *t, char *err, size_t errlen)
{
	char buf[TARIFF_STR_LEN], *cur = buf, *item;
	uint64_t prev = 0;
	bool last = false;

	strcpy(buf, src);
	t->nperiods = 0;
	while ((item = next_item(&cur))) {
		char *colon = strchr(item, ':');
		char *bound;
		int64_t price;
		uint64_t upto, kwh;

		if (last) {
			snprintf(err, errlen, "tier after the open-ended '*' tier");
			return -EINVAL;
		}
		if (!colon) {
			snprintf(err, errlen, "expected kWh:price, got '%s'", item);
			return -EINVAL;
		}
		*colon = 0;
		bound = strtrim(item);
		if (!strcmp(bound, "*")) {
			upto = UINT64_MAX;
			last = true;
		} else if (parse_u64(bound, 1, 100000000, &kwh)) {
			snprintf(err, errlen, "bad tier bound '%s' (kWh, or * for the last tier)", bound);
			return -EINVAL;
		} else {
			upto = kwh * 1000000;
		}
		if (upto <= prev) {
			snprintf(err, errlen, "tier bound '%s' not above the previous one", bound);
			return -EINVAL;
		}
		if (parse_milli(strtrim(colon + 1), &price)) {
			snprintf(err, errlen, "bad price '%s'", strtrim(colon + 1));
			return -EINVAL;
		}
		if (t->nperiods == TARIFF_MAX_PERIODS) {
			snprintf(err, errlen, "more than %d tiers", TARIFF_MAX_PERIODS);
			return -EINVAL;
		}
		snprintf(t->period_name[t->nperiods], TARIFF_NAME_LEN, "tier%u", t->nperiods + 1);
		t->tier_upto_mwh[t->nperiods] = upto;
		t->price[t->nperiods++] = price;
		prev = upto;
	}
	if (!last) {
		snprintf(err, errlen, "the last tier must be open-ended ('*:price')");
		return -EINVAL;
	}
	return 0;
}

int tariff_compile(const struct tariff_spec *spec, struct tariff *out,
		   const char **badkey, char *err, size_t errlen)
{
	struct tariff t;
	const char *cur = spec->currency;

	memset(&t, 0, sizeof(t));
	if (!strcmp(spec->type, "flat"))
		t.type = TARIFF_FLAT;
	else if (!strcmp(spec->type, "tou"))
		t.type = TARIFF_TOU;
	else if (!strcmp(spec->type, "tiered"))
		t.type = TARIFF_TIERED;
	else
		FAIL("type", "unknown tariff type '%s' (flat, tou or tiered)", spec->type);

	if (strlen(cur) != 3 || cur[0] < 'A' || cur[0] > 'Z' || cur[1] < 'A' || cur[1] > 'Z' ||
	    cur[2] < 'A' || cur[2] > 'Z')
		FAIL("currency", "'%s' is not a three-letter ISO 4217 code", cur);
	strcpy(t.currency, cur);
	if (parse_milli(spec->standing_charge, &t.standing_milli))
		FAIL("standing_charge", "'%s' is not a non-negative decimal (minor units per day)",
		     spec->standing_charge);
	if (parse_milli(spec->feed_in, &t.feed_in_milli))
		FAIL("feed_in", "'%s' is not a non-negative decimal (minor units per kWh)", spec->feed_in);

	switch (t.type) {
	case TARIFF_FLAT:
		t.nperiods = 1;
		strcpy(t.period_name[0], "flat");
		if (parse_milli(spec->rate, &t.price[0]))
			FAIL("rate", "'%s' is not a non-negative decimal (minor units per kWh)", spec->rate);
		break;
	case TARIFF_TIERED:
		if (compile_tiers(spec->tiers, &t, err, errlen)) {
			*badkey = "tiers";
			return -EINVAL;
		}
		break;
	case TARIFF_TOU:
		if (compile_rates(spec->rates, &t, err, errlen)) {
			*badkey = "rates";
			return -EINVAL;
		}
		if (compile_day(spec->weekday, &t, TARIFF_WEEKDAY, err, errlen)) {
			*badkey = "weekday";
			return -EINVAL;
		}
		if (compile_day(spec->weekend, &t, TARIFF_WEEKEND, err, errlen)) {
			*badkey = "weekend";
			return -EINVAL;
		}
		if (compile_day(spec->special[0] ? spec->special : spec->weekend, &t,
				TARIFF_SPECIAL, err, errlen)) {
			*badkey = "special";
			return -EINVAL;
		}
		if (compile_special_days(spec->special_days, &t, err, errlen)) {
			*badkey = "special_days";
			return -EINVAL;
		}
		break;
	}
	*out = t;
	return 0;
}

enum tariff_daytype tariff_daytype_at(const struct tariff *t, time_t when)
{
	struct tm tm;
	int32_t ymd;

	localtime_r(&when, &tm);
	ymd = (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
	if (t->nspecial && bsearch(&ymd, t->special, t->nspecial, sizeof(ymd), cmp_i32))
		return TARIFF_SPECIAL;
	return tm.tm_wday == 0 || tm.tm_wday == 6 ? TARIFF_WEEKEND : TARIFF_WEEKDAY;
}

static unsigned tier_of(const struct tariff *t, uint64_t bill_import_mwh)
{
	unsigned i = 0;

	while (i + 1 < t->nperiods && bill_import_mwh >= t->tier_upto_mwh[i])
		i++;
	return i;
}

unsigned tariff_period_at(const struct tariff *t, time_t when, uint64_t bill_import_mwh)
{
	enum tariff_daytype d;
	struct tm tm;
	unsigned min;

	switch (t->type) {
	case TARIFF_FLAT:
		return 0;
	case TARIFF_TIERED:
		return tier_of(t, bill_import_mwh);
	case TARIFF_TOU:
		break;
	}
	d = tariff_daytype_at(t, when);
	localtime_r(&when, &tm);
	min = (unsigned)(tm.tm_hour * 60 + tm.tm_min);
	for (unsigned i = 0; i < t->nwindows[d]; i++)
		if (min < t->window[d][i].end_min)
			return t->window[d][i].period;
	return 0; /* unreachable: windows cover the day */
}

time_t tariff_next_change(const struct tariff *t, time_t from, time_t until)
{
	unsigned p0;
	time_t m, lo;

	if (t->type != TARIFF_TOU || until <= from)
		return until;
	p0 = tariff_period_at(t, from, 0);
	/*
	 * Windows are local minutes: the period can only change where the
	 * local minute does, i.e. on whole UTC minutes for every zone of the
	 * tz database since 1972; the second within the minute is searched
	 * all the same, for a zone whose offset is not whole minutes.
	 */
	lo = from;
	for (m = from - (from % 60 + 60) % 60 + 60; m < until; m += 60) {
		if (tariff_period_at(t, m, 0) != p0) {
			time_t hi = m;

			while (hi - lo > 1) {
				time_t mid = lo + (hi - lo) / 2;

				if (tariff_period_at(t, mid, 0) != p0)
					hi = mid;
				else
					lo = mid;
			}
			return hi;
		}
		lo = m;
	}
	return until;
}

unsigned tariff_split_import(const struct tariff *t, time_t when, uint64_t bill_import_mwh,
			     uint64_t delta_mwh, struct tariff_part parts[TARIFF_MAX_PERIODS])
{
	unsigned n = 0;

	if (!delta_mwh)
		return 0;
	if (t->type != TARIFF_TIERED) {
		unsigned p = tariff_period_at(t, when, bill_import_mwh);

		parts[0].period = p;
		parts[0].mwh = delta_mwh;
		parts[0].cost_nano = (int64_t)delta_mwh * t->price[p];
		return 1;
	}
	while (delta_mwh) {
		unsigned tier = tier_of(t, bill_import_mwh);
		uint64_t room = t->tier_upto_mwh[tier] - bill_import_mwh;
		uint64_t take = tier + 1 == t->nperiods || delta_mwh < room ? delta_mwh : room;

		parts[n].period = tier;
		parts[n].mwh = take;
		parts[n].cost_nano = (int64_t)take * t->price[tier];
		n++;
		delta_mwh -= take;
		bill_import_mwh += take;
	}
	return n;
}

int64_t tariff_export_credit_nano(const struct tariff *t, uint64_t mwh)
{
	return (int64_t)mwh * t->feed_in_milli;
}

static time_t local_midnight(int year, int mon0, int mday)
{
	struct tm tm = { .tm_year = year - 1900, .tm_mon = mon0, .tm_mday = mday, .tm_isdst = -1 };

	return mktime(&tm);
}

static time_t billing_start_in(int year, int mon0, unsigned billing_day)
{
	unsigned dim;

	while (mon0 < 0) {
		mon0 += 12;
		year--;
	}
	while (mon0 > 11) {
		mon0 -= 12;
		year++;
	}
	dim = days_in_month((unsigned)year, (unsigned)mon0 + 1);
	return local_midnight(year, mon0, (int)(billing_day < dim ? billing_day : dim));
}

time_t tariff_billing_start(time_t now, unsigned billing_day)
{
	struct tm tm;
	time_t s;

	localtime_r(&now, &tm);
	s = billing_start_in(tm.tm_year + 1900, tm.tm_mon, billing_day);
	if (now < s)
		s = billing_start_in(tm.tm_year + 1900, tm.tm_mon - 1, billing_day);
	return s;
}

time_t tariff_billing_next(time_t start, unsigned billing_day)
{
	struct tm tm;
	time_t n;

	localtime_r(&start, &tm);
	n = billing_start_in(tm.tm_year + 1900, tm.tm_mon + 1, billing_day);
	if (n <= start) /* start was clamped into the following month */
		n = billing_start_in(tm.tm_year + 1900, tm.tm_mon + 2, billing_day);
	return n;
}

unsigned tariff_local_days(time_t start, time_t now)
{
	struct tm a, b;
	int64_t da, db;

	if (now < start)
		return 0;
	localtime_r(&start, &a);
	localtime_r(&now, &b);
	da = days_from_civil(a.tm_year + 1900, (unsigned)a.tm_mon + 1, (unsigned)a.tm_mday);
	db = days_from_civil(b.tm_year + 1900, (unsigned)b.tm_mon + 1, (unsigned)b.tm_mday);
	return (unsigned)(db - da + 1);
}
