// SPDX-License-Identifier: GPL-2.0
#include "pages.h"

#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "home_cards.h"
#include "words.h"

/* ---- derived values ---------------------------------------------------------- */

static uint64_t isqrt_u128(unsigned __int128 v)
{
	uint64_t lo = 0, hi = UINT64_MAX;

	while (lo < hi) {	/* the largest r with r * r <= v */
		uint64_t mid = lo + (hi - lo) / 2 + 1;

		if ((unsigned __int128)mid * mid <= v)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

int64_t mw_apparent_mva(const struct mw_state *st)
{
	/* mV * mA = µVA; rounded to mVA */
	return (int64_t)(((uint64_t)st->voltage_mv * st->current_ma + 500) / 1000);
}

int64_t mw_reactive_mvar(const struct mw_state *st)
{
	int64_t s = mw_apparent_mva(st), p = st->active_mw < 0 ? -st->active_mw : st->active_mw;

	if (p >= s)
		return 0;
	return (int64_t)isqrt_u128((unsigned __int128)s * (unsigned __int128)s -
				   (unsigned __int128)p * (unsigned __int128)p);
}

/* ---- live values -------------------------------------------------------------- */

struct live_num {
	const char *key, *label, *unit;
	int decimals;
	int64_t (*get)(const struct mw_state *st);
	const char *note;	/* "derived" */
};

static int64_t g_v(const struct mw_state *st) { return st->voltage_mv; }
static int64_t g_i(const struct mw_state *st) { return st->current_ma; }
static int64_t g_p(const struct mw_state *st) { return st->active_mw; }
static int64_t g_pf(const struct mw_state *st) { return st->pf_milli; }
static int64_t g_f(const struct mw_state *st) { return st->frequency_mhz; }
static int64_t g_r(const struct mw_state *st) { return st->renewable_mw; }

static const struct live_num nums[] = {
	{ "voltage", "Voltage", "V", 1, g_v, NULL },
	{ "current", "Current", "A", 2, g_i, NULL },
	{ "power", "Power", "W", 0, g_p, NULL },
	{ "reactive", "Reactive power", "var", 0, mw_reactive_mvar, "derived from V, I and P, not measured" },
	{ "apparent", "Apparent power", "VA", 0, mw_apparent_mva, "derived: V × I, not measured" },
	{ "pf", "Power factor", "", 3, g_pf, NULL },
	{ "frequency", "Frequency", "Hz", 2, g_f, NULL },
	{ "renewable", "Renewable power", "W", 0, g_r, NULL },
};

#define NNUMS (sizeof(nums) / sizeof(nums[0]))

static const char *const alloc_keys[] = {
	"grant", "demand", "from-grid", "from-renewable", "deficit", "shed", "request", "surplus", NULL
};

static const char *minor_unit(const char *currency)
{
	if (!strcmp(currency, "GBP"))
		return "p";
	if (!strcmp(currency, "USD"))
		return "¢";
	return "c";
}

void mw_rate(struct hbuf *b, int64_t milli_minor_per_kwh, const char *currency)
{
	char unit[24];

	snprintf(unit, sizeof(unit), "%s/kWh", minor_unit(currency));
	hb_milli(b, milli_minor_per_kwh, 2, unit);
}

static void local_hhmm(struct hbuf *b, int64_t at, int64_t now)
{
	time_t t = (time_t)at, n = (time_t)now;
	struct tm tm, tn;
	char s[40];

	localtime_r(&t, &tm);
	localtime_r(&n, &tn);
	if (tm.tm_year == tn.tm_year && tm.tm_yday == tn.tm_yday)
		strftime(s, sizeof(s), "%H:%M", &tm);
	else if (at - now < 6 * 86400)
		strftime(s, sizeof(s), "%a %H:%M", &tm);
	else
		strftime(s, sizeof(s), "%Y-%m-%d %H:%M", &tm);
	hb_raw(b, s);
}

/* Text of a live text item; the same function writes the page and the stream. */
static void live_text(struct hbuf *b, const char *key, const struct mw_state *st,
		      const struct mw_tariff_view *tv, int64_t now)
{
	if (!strcmp(key, "meter")) {
		hb_raw(b, st->connected ? "connected" : "not reachable (meterd is not running)");
	} else if (!strcmp(key, "price")) {
		hb_money(b, st->price_milli, st->currency);
	} else if (!strcmp(key, "last_bill")) {
		hb_money(b, st->last_bill_milli, st->currency);
	} else if (!strcmp(key, "period")) {
		hb_raw(b, tv->valid ? tv->now_name : st->period);
	} else if (!strcmp(key, "rate_now")) {
		if (tv->valid)
			mw_rate(b, tv->now_price, tv->currency);
		else
			hb_raw(b, "unknown");
	} else if (!strcmp(key, "next_at")) {
		if (tv->has_next)
			local_hhmm(b, tv->next_at, now);
		else
			hb_raw(b, tv->valid && tv->type == TARIFF_TIERED ? "with consumption (tiers)" : "no change");
	} else if (!strcmp(key, "next_period")) {
		hb_raw(b, tv->has_next ? tv->next_name : "-");
	} else if (!strcmp(key, "rate_next")) {
		if (tv->has_next)
			mw_rate(b, tv->next_price, tv->currency);
		else
			hb_raw(b, "-");
	} else if (!strcmp(key, "cheaper")) {
		if (!tv->has_next)
			hb_raw(b, "-");
		else if (tv->cheaper_permille > 0) {
			hb_milli(b, (int64_t)tv->cheaper_permille * 100, 1, "%");
			hb_raw(b, " cheaper");
		} else if (tv->cheaper_permille < 0) {
			hb_milli(b, -(int64_t)tv->cheaper_permille * 100, 1, "%");
			hb_raw(b, " dearer");
		} else {
			hb_raw(b, "same price");
		}
	} else if (!strcmp(key, "relay")) {
		hb_raw(b, mw_relay_words(st->main_relay));
	} else if (!strcmp(key, "protection")) {
		hb_raw(b, mw_protection_words(st->protection));
	} else if (!strcmp(key, "remote")) {
		hb_raw(b, mw_remote_words(st->remote));
	} else if (!strcmp(key, "trips")) {
		hb_printf(b, "%" PRIu64, st->trip_count);
	} else if (!strcmp(key, "alarms")) {
		if (!st->nalarms)
			hb_raw(b, "none");
		for (unsigned i = 0; i < st->nalarms; i++) {
			if (i)
				hb_raw(b, "; ");
			hb_raw(b, mw_alarm_words(st->alarms[i]));
		}
	} else if (!strcmp(key, "route")) {
		hb_raw(b, mw_route_words(st->route, st->has_uplink));
	} else if (!strcmp(key, "route_reason")) {
		hb_raw(b, st->has_uplink ? st->route_reason : "this meter has no uplink configured");
	} else if (!strcmp(key, "alloc_reason")) {
		hb_raw(b, st->alloc_reason[0] ? st->alloc_reason : "-");
	} else if (!strcmp(key, "loads")) {
		unsigned off = 0;

		for (unsigned i = 0; i < st->loads.n; i++)
			if (!st->loads.e[i].v) {
				hb_raw(b, off++ ? ", " : "shed: ");
				hb_raw(b, st->loads.e[i].name);
			}
		if (!st->loads.n)
			hb_raw(b, "no sheddable loads");
		else if (!off)
			hb_raw(b, "all loads on");
	}
}

/* Text items on the page and in the stream. */
static const char *const text_keys[] = {
	"meter", "price", "last_bill", "period", "rate_now", "next_at", "next_period", "rate_next", "cheaper",
	"relay", "protection", "remote", "trips", "alarms", "route", "route_reason", "alloc_reason", "loads",
	NULL
};

/* Text in a scratch buffer as a C string. */
static const char *text_of(struct hbuf *t)
{
	hb_rawn(t, "", 1);
	return t->oom ? "" : t->p;
}

void mw_live_json(struct hbuf *b, const struct mw_state *st, const struct mw_tariff_view *tv, int64_t now)
{
	struct hbuf t;

	hb_init(&t);
	hb_raw(b, "{");
	for (size_t i = 0; i < NNUMS; i++)
		hb_printf(b, "%s\"%s\":%" PRId64, i ? "," : "", nums[i].key, nums[i].get(st));
	for (size_t i = 0; alloc_keys[i]; i++)
		hb_printf(b, ",\"alloc_%s\":%" PRId64, alloc_keys[i], mw_kv_get(&st->alloc, alloc_keys[i], 0) * 1000);
	for (size_t i = 0; text_keys[i]; i++) {
		hb_reset(&t);
		live_text(&t, text_keys[i], st, tv, now);
		hb_printf(b, ",\"%s\":", text_keys[i]);
		hb_json_str(b, text_of(&t));
	}
	for (unsigned i = 0;; i++) {
		char key[24];

		if (!mw_home_key(i, key, sizeof(key)))
			break;
		hb_reset(&t);
		mw_home_text(&t, key, st);
		hb_printf(b, ",\"%s\":", key);
		hb_json_str(b, text_of(&t));
	}
	hb_printf(b, ",\"updated\":%" PRId64 "}", st->updated);
	hb_free(&t);
}

/* ---- page pieces ---------------------------------------------------------------- */

static void out_num(struct hbuf *b, const char *key, int64_t milli, int decimals, const char *unit,
		    const char *cls)
{
	hb_printf(b, "<output%s%s%s data-live=\"%s\" data-unit=\"%s\" data-scale=\"1000\" data-decimals=\"%d\">",
		  cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "", key, unit, decimals);
	hb_milli(b, milli, decimals, unit);
	hb_raw(b, "</output>");
}

static void out_text(struct hbuf *b, const char *key, const struct mw_page_data *d)
{
	struct hbuf t;

	hb_init(&t);
	live_text(&t, key, d->st, d->tv, d->now);
	hb_printf(b, "<output data-live=\"%s\">", key);
	hb_text(b, text_of(&t));
	hb_raw(b, "</output>");
	hb_free(&t);
}

static void row_text(struct hbuf *b, const char *label, const char *key, const struct mw_page_data *d)
{
	hb_printf(b, "<div class=\"gm-row\"><dt>%s</dt><dd>", label);
	out_text(b, key, d);
	hb_raw(b, "</dd></div>");
}

static void section_live(struct hbuf *b, const struct mw_page_data *d)
{
	hb_raw(b, "<section aria-labelledby=\"h-now\" class=\"gm-card gm-live\"><h2 id=\"h-now\">Now</h2>"
		  "<p class=\"gm-state\">Meter: ");
	out_text(b, "meter", d);
	hb_raw(b, "</p><dl class=\"gm-cards\">");
	for (size_t i = 0; i < NNUMS; i++) {
		hb_printf(b, "<div class=\"gm-card\" id=\"v-%s\"><dt class=\"gm-label\">%s</dt><dd>", nums[i].key,
			  nums[i].label);
		out_num(b, nums[i].key, nums[i].get(d->st), nums[i].decimals, nums[i].unit, "gm-value");
		if (nums[i].note)
			hb_printf(b, "<p class=\"gm-note\">%s</p>", nums[i].note);
		hb_raw(b, "</dd></div>");
	}
	hb_raw(b, "</dl></section>");
}

static void section_price(struct hbuf *b, const struct mw_page_data *d)
{
	hb_raw(b, "<section aria-labelledby=\"h-price\" class=\"gm-card\"><h2 id=\"h-price\">Price and tariff</h2>"
		  "<dl class=\"gm-facts\">");
	row_text(b, "Price so far this billing period", "price", d);
	row_text(b, "Last bill", "last_bill", d);
	row_text(b, "Tariff period now", "period", d);
	row_text(b, "Rate now", "rate_now", d);
	row_text(b, "Next change", "next_at", d);
	row_text(b, "Next period", "next_period", d);
	row_text(b, "Rate then", "rate_next", d);
	row_text(b, "Compared with now", "cheaper", d);
	hb_raw(b, "</dl>");
	if (!d->tv->valid) {
		hb_raw(b, "<p class=\"gm-warn\">The tariff cannot be read: ");
		hb_text(b, d->tv->err);
		hb_raw(b, "</p>");
	}
	hb_raw(b, "</section>");
}

static void section_supply(struct hbuf *b, const struct mw_page_data *d)
{
	const struct mw_state *st = d->st;

	hb_raw(b, "<section aria-labelledby=\"h-supply\" class=\"gm-card\"><h2 id=\"h-supply\">Supply</h2>"
		  "<dl class=\"gm-facts\">");
	row_text(b, "Main relay", "relay", d);
	row_text(b, "Protection", "protection", d);
	row_text(b, "Remote control", "remote", d);
	row_text(b, "Trips since installation", "trips", d);
	hb_raw(b, "</dl><h3>Alarms</h3><p class=\"gm-alarms\">");
	out_text(b, "alarms", d);
	hb_raw(b, "</p>");
	if (st->nevents) {
		hb_raw(b, "<h3>Recent events</h3><ul class=\"gm-events\">");
		for (unsigned i = 0; i < st->nevents; i++) {
			const struct mw_event *e = &st->events[i];

			hb_raw(b, "<li><time>");
			hb_time(b, e->at);
			hb_raw(b, "</time> ");
			if (e->kind == MW_EV_ALARM) {
				hb_text(b, mw_alarm_words(e->name));
				hb_raw(b, e->on ? " (raised)" : " (cleared)");
			} else if (e->kind == MW_EV_RELAY) {
				hb_raw(b, "relay ");
				hb_text(b, e->name);
				hb_raw(b, e->on ? " closed" : " opened");
			} else {
				hb_raw(b, "route: ");
				hb_text(b, mw_route_words(e->name, 1));
			}
			if (e->detail[0]) {
				hb_raw(b, ": ");
				hb_text(b, e->detail);
			}
			hb_raw(b, "</li>");
		}
		hb_raw(b, "</ul>");
	}
	hb_raw(b, "</section>");
}

static void section_route(struct hbuf *b, const struct mw_page_data *d)
{
	const struct mw_state *st = d->st;

	hb_raw(b, "<section aria-labelledby=\"h-route\" class=\"gm-card\"><h2 id=\"h-route\">Connection to the town</h2>"
		  "<dl class=\"gm-facts\">");
	row_text(b, "Route", "route", d);
	row_text(b, "Why", "route_reason", d);
	if (st->has_uplink) {
		hb_raw(b, "<div class=\"gm-row\"><dt>Modem</dt><dd>");
		hb_text(b, st->modem_state);
		if (st->signal_dbm)
			hb_printf(b, ", signal %d dBm", st->signal_dbm);
		hb_raw(b, "</dd></div><div class=\"gm-row\"><dt>Readings waiting to be sent</dt><dd>");
		hb_printf(b, "%" PRIu64, st->backlog);
		hb_raw(b, "</dd></div>");
	}
	hb_raw(b, "</dl></section>");
}

static void section_alloc(struct hbuf *b, const struct mw_page_data *d)
{
	hb_raw(b, "<section aria-labelledby=\"h-alloc\" class=\"gm-card\"><h2 id=\"h-alloc\">Power allocation</h2>"
		  "<dl class=\"gm-facts\">");
	for (size_t i = 0; alloc_keys[i]; i++) {
		char key[40];

		snprintf(key, sizeof(key), "alloc_%s", alloc_keys[i]);
		hb_printf(b, "<div class=\"gm-row\"><dt>%s</dt><dd>", mw_alloc_label(alloc_keys[i]));
		out_num(b, key, mw_kv_get(&d->st->alloc, alloc_keys[i], 0) * 1000, 0, "W", NULL);
		hb_raw(b, "</dd></div>");
	}
	row_text(b, "Sheddable loads", "loads", d);
	row_text(b, "Last decision", "alloc_reason", d);
	hb_raw(b, "</dl></section>");
}

/* Period names of the three registers, in order of first appearance. */
static unsigned period_names(const struct mw_state *st, const char *names[MW_MAX_KV * 3])
{
	const struct mw_kvs *kv[] = { &st->import_by, &st->export_by, &st->renew_by };
	unsigned n = 0;

	for (int k = 0; k < 3; k++)
		for (unsigned i = 0; i < kv[k]->n; i++) {
			unsigned j;

			for (j = 0; j < n && strcmp(names[j], kv[k]->e[i].name); j++)
				;
			if (j == n)
				names[n++] = kv[k]->e[i].name;
		}
	return n;
}

static void section_periods(struct hbuf *b, const struct mw_page_data *d)
{
	const struct mw_state *st = d->st;
	const char *names[MW_MAX_KV * 3];
	unsigned n = period_names(st, names);

	hb_raw(b, "<section aria-labelledby=\"h-periods\" class=\"gm-card\"><h2 id=\"h-periods\">Energy by tariff period"
		  "</h2><div class=\"gm-table-wrap\"><table class=\"gm-table\" id=\"by-period\"><thead><tr><th scope=\"col\">Period</th>"
		  "<th scope=\"col\">Import</th><th scope=\"col\">Export</th><th scope=\"col\">Renewable</th></tr></thead><tbody>");
	for (unsigned i = 0; i < n; i++) {
		hb_raw(b, "<tr><th scope=\"row\">");
		hb_text(b, names[i]);
		hb_raw(b, "</th><td data-mwh=\"");
		hb_printf(b, "%" PRId64 "\">", mw_kv_get(&st->import_by, names[i], 0));
		hb_milli(b, mw_kv_get(&st->import_by, names[i], 0) / 1000, 3, "kWh");
		hb_printf(b, "</td><td data-mwh=\"%" PRId64 "\">", mw_kv_get(&st->export_by, names[i], 0));
		hb_milli(b, mw_kv_get(&st->export_by, names[i], 0) / 1000, 3, "kWh");
		hb_printf(b, "</td><td data-mwh=\"%" PRId64 "\">", mw_kv_get(&st->renew_by, names[i], 0));
		hb_milli(b, mw_kv_get(&st->renew_by, names[i], 0) / 1000, 3, "kWh");
		hb_raw(b, "</td></tr>");
	}
	hb_raw(b, "</tbody></table></div><p class=\"gm-note\">Since installation (or since the tariff's periods last "
		  "changed).</p></section>");
}

/* A chart: JSON for gm.js and the same numbers in a table. x: UTC s. */
struct series {
	const char *label;
	const int64_t *v;
};

static void chart(struct hbuf *b, const char *id, const char *title, const char *kind, const char *unit,
		  int64_t scale, int decimals, const int64_t *x, size_t n, const struct series *s, size_t ns,
		  bool daily)
{
	hb_printf(b, "<figure class=\"gm-chart\" id=\"%s\" data-kind=\"%s\" data-unit=\"%s\" data-scale=\"%" PRId64
		  "\"><figcaption>%s</figcaption><script type=\"application/json\" class=\"gm-chart-data\">{\"x\":[",
		  id, kind, unit, scale, title);
	for (size_t i = 0; i < n; i++)
		hb_printf(b, "%s%" PRId64, i ? "," : "", x[i]);
	hb_raw(b, "],\"series\":[");
	for (size_t k = 0; k < ns; k++) {
		hb_raw(b, k ? ",{\"label\":" : "{\"label\":");
		hb_json_str(b, s[k].label);
		hb_raw(b, ",\"values\":[");
		for (size_t i = 0; i < n; i++)
			hb_printf(b, "%s%" PRId64, i ? "," : "", s[k].v[i]);
		hb_raw(b, "]}");
	}
	hb_raw(b, "]}</script><details><summary>The numbers</summary><div class=\"gm-table-wrap\"><table class=\"gm-chart-table\">"
		  "<thead><tr><th scope=\"col\">");
	hb_raw(b, daily ? "Day" : "From");
	for (size_t k = 0; k < ns; k++)
		hb_printf(b, "</th><th scope=\"col\">%s", s[k].label);
	hb_raw(b, "</th></tr></thead><tbody>");
	for (size_t i = 0; i < n; i++) {
		time_t t = (time_t)x[i];
		struct tm tm;
		char when[32];

		localtime_r(&t, &tm);
		strftime(when, sizeof(when), daily ? "%a %Y-%m-%d" : "%H:%M", &tm);
		hb_printf(b, "<tr><th scope=\"row\" data-x=\"%" PRId64 "\">%s</th>", x[i], when);
		for (size_t k = 0; k < ns; k++) {
			hb_printf(b, "<td data-v=\"%" PRId64 "\">", s[k].v[i]);
			hb_milli(b, s[k].v[i] * 1000 / scale, decimals, unit);
			hb_raw(b, "</td>");
		}
		hb_raw(b, "</tr>");
	}
	hb_raw(b, "</tbody></table></div></details></figure>");
}

static void section_charts(struct hbuf *b, const struct mw_page_data *d)
{
	int64_t x[MW_MONTH_DAYS], imp[MW_MONTH_DAYS], exp[MW_MONTH_DAYS], ren[MW_MONTH_DAYS];

	hb_raw(b, "<section aria-labelledby=\"h-history\" class=\"gm-card gm-wide\"><h2 id=\"h-history\">Your use over time</h2>");
	if (!d->profile_ok) {
		hb_raw(b, "<p class=\"gm-warn\">The load profile cannot be read now: ");
		hb_text(b, d->profile_err ? d->profile_err : "meterd is not reachable");
		hb_raw(b, "</p></section>");
		return;
	}
	{
		size_t n = d->ntoday;
		int64_t *tx = NULL, *ti = NULL, *te = NULL, *tr = NULL;
		int64_t one[1];

		/* today's intervals: a day of 1-minute intervals is 1440 points */
		tx = n ? calloc(n * 4, sizeof(int64_t)) : NULL;
		if (tx) {
			ti = tx + n;
			te = ti + n;
			tr = te + n;
			for (size_t i = 0; i < n; i++) {
				tx[i] = d->today[i].start;
				ti[i] = d->today[i].import_mwh;
				te[i] = d->today[i].export_mwh;
				tr[i] = d->today[i].renew_mwh;
			}
		} else {
			n = 0;
			tx = ti = te = tr = one;
		}
		{
			const struct series s[] = { { "Import", ti }, { "Export", te }, { "Renewable", tr } };

			chart(b, "chart-today", "Today, each interval (Wh): shift use out of the peak", "bars", "Wh", 1000,
			      1, tx, n, s, 3, false);
		}
		if (tx != one)
			free(tx);
	}
	for (int i = 0; i < MW_MONTH_DAYS; i++) {
		x[i] = d->month[i].start;
		imp[i] = (int64_t)d->month[i].import_mwh;
		exp[i] = (int64_t)d->month[i].export_mwh;
		ren[i] = (int64_t)d->month[i].renew_mwh;
	}
	{
		int w = MW_MONTH_DAYS - MW_WEEK_DAYS;
		const struct series s7[] = { { "Import", imp + w }, { "Export", exp + w }, { "Renewable", ren + w } };
		const struct series s30[] = { { "Import", imp }, { "Export", exp }, { "Renewable", ren } };

		chart(b, "chart-week", "The last 7 days (kWh a day)", "bars", "kWh", 1000000, 2, x + w, MW_WEEK_DAYS, s7,
		      3, true);
		chart(b, "chart-month", "The last 30 days (kWh a day)", "bars", "kWh", 1000000, 2, x, MW_MONTH_DAYS,
		      s30, 3, true);
	}
	hb_raw(b, "</section>");
}

void mw_page_dashboard(struct hbuf *b, const struct web_page *frame, const struct mw_page_data *d)
{
	web_page_begin(b, frame);
	hb_raw(b, "<h1>Your meter</h1>");
	mw_banner_gas(b, d->st);
	hb_raw(b, "<div class=\"gm-cols\">");
	section_live(b, d);
	section_price(b, d);
	section_supply(b, d);
	section_alloc(b, d);
	mw_section_loads(b, d->st);
	mw_section_home(b, d->st);
	section_route(b, d);
	section_periods(b, d);
	section_charts(b, d);
	hb_raw(b, "</div>");
	web_page_end(b, frame);
}
