/* SPDX-License-Identifier: GPL-2.0 */
/* meterd's state names in the household's words (the dashboard's English). */
#ifndef GM_MW_WORDS_H
#define GM_MW_WORDS_H

/* Uplink Route: "own modem", "through neighbour", "no route"; "not configured" without an uplink. */
const char *mw_route_words(const char *route, int has_uplink);
/* An alarm name ("over-voltage") as a sentence ("Voltage too high"); unknown names as given. */
const char *mw_alarm_words(const char *alarm);
const char *mw_relay_words(const char *main_relay);	/* "supply on" / "supply off" */
const char *mw_protection_words(const char *protection);
const char *mw_remote_words(const char *remote);
/* Allocation keys ("from-grid") as labels ("From the grid"). */
const char *mw_alloc_label(const char *key);

#endif
