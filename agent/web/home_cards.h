/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The "Loads" and "Home sensors" cards and the gas banner (issue 15): meterd's
 * Loads a(sssbbbi) and HomeSensors a(sssxsb) properties in the household's
 * words. Every line is a live text (Documentation/dashboard.md "Markup"):
 * the same function writes the page and the /live stream, so the first paint
 * and the stream never disagree. The texts written here are plain text (not
 * HTML): the caller escapes them (hb_text on the page, hb_json_str in the
 * stream). A meterd without the properties has no home sensors, and its
 * loads are its LoadRelays (sheddable GPIO relays: open = shed).
 */
#ifndef GM_MW_HOME_CARDS_H
#define GM_MW_HOME_CARDS_H

#include <stdbool.h>

#include "html.h"
#include "snapshot.h"

/* "washer — smart plug — on, 1 850 W", "heater — wired relay — switched off to stay within your allocation" */
void mw_load_line(struct hbuf *b, const struct mw_load *l);
/* "kitchen — gas level 1 350 mV — GAS ALARM", "hall — temperature 21.5 °C — normal" */
void mw_home_line(struct hbuf *b, const struct mw_home *h);
/* A home sensor's value with its unit, as the card shows it ("1 350 mV", "21.5 °C"). */
void mw_home_value(struct hbuf *b, const struct mw_home *h);
/* true when the sensor is in alarm (its alarm flag or its state "alarm"). */
bool mw_home_alarm(const struct mw_home *h);
/* The gas banner's text: empty when no gas sensor is in alarm. */
void mw_gas_banner(struct hbuf *b, const struct mw_state *st);
/* The cards' summaries: "2 loads: 1 switched off ...", "No home sensors are configured." */
void mw_loads_summary(struct hbuf *b, const struct mw_state *st);
void mw_home_summary(struct hbuf *b, const struct mw_state *st);

/*
 * The live texts of the cards by key: "load_0".."load_7", "loads_summary",
 * "home_0".."home_7", "home_summary", "gas_alarm". Unused slots are empty
 * texts (the page hides empty items). false for another key.
 */
bool mw_home_text(struct hbuf *b, const char *key, const struct mw_state *st);
/* Every key of mw_home_text, one after another: i = 0, 1, ... until NULL. */
const char *mw_home_key(unsigned i, char *buf, unsigned len);

/* The page pieces: the cards and the banner (<p class="gm-alert gm-bad" role="alert">, empty when none). */
void mw_section_loads(struct hbuf *b, const struct mw_state *st);
void mw_section_home(struct hbuf *b, const struct mw_state *st);
void mw_banner_gas(struct hbuf *b, const struct mw_state *st);

#endif
