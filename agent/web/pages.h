/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The dashboard's HTML (lib/web's frame and helpers) and its live values.
 * Markup follows Documentation/web.md: live values are <output
 * data-live=KEY> updated by web/static/gm.js from /live, charts are
 * <figure class="gm-chart"> with their numbers in JSON and in a table.
 * Pure: the data is passed in.
 */
#ifndef GM_MW_PAGES_H
#define GM_MW_PAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "html.h"
#include "layout.h"
#include "snapshot.h"
#include "tariff_view.h"

#define MW_WEEK_DAYS	7
#define MW_MONTH_DAYS	30

struct mw_page_data {
	const struct mw_state *st;
	const struct mw_tariff_view *tv;
	int64_t now;
	bool profile_ok;		/* the load profile could be read */
	const char *profile_err;	/* why not */
	const struct mw_interval *today;	/* today's intervals */
	size_t ntoday;
	const struct mw_day *month;	/* MW_MONTH_DAYS days, today last (the week: its last 7) */
};

/* S = V * I (mVA) and Q = sqrt(S^2 - P^2) (mvar, 0 when |P| >= S): derived, not measured. */
int64_t mw_apparent_mva(const struct mw_state *st);
int64_t mw_reactive_mvar(const struct mw_state *st);

/* The whole dashboard page. */
void mw_page_dashboard(struct hbuf *b, const struct web_page *frame, const struct mw_page_data *d);
/* The live values as one JSON object (the /live event's data): KEY -> thousandths or text. */
void mw_live_json(struct hbuf *b, const struct mw_state *st, const struct mw_tariff_view *tv, int64_t now);
/* A rate per kWh in the currency's minor unit: "12.25 p/kWh". */
void mw_rate(struct hbuf *b, int64_t milli_minor_per_kwh, const char *currency);

#endif
