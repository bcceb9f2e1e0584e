/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the bridge knows of one plug and what it must do about it: the state
 * meterd wants (Loads.wanted_on), what the plug last reported (relay,
 * power, LWT), and when it last heard from it. Each event returns the
 * actions to take (publish the wanted state, ask for a Status 10, tell
 * meterd with ReportLoad); the caller does the I/O. Pure, time passed in
 * (monotonic ms), so the rules are unit-tested with simulated time
 * (tests/unit/bridge_test_plug.c). Rules (Documentation/mqtt.md, "Runtime"):
 *  - the wanted state is published when it changes, when the plug comes
 *    back (LWT Online, or any message after it was unreachable), after the
 *    bridge's own (re)connect to the broker, and again on a report that
 *    disagrees (at most once per PLUG_RESEND_MS);
 *  - every accepted report is passed on to meterd (once the relay state is
 *    known: a SENSOR alone does not say whether the relay is on);
 *  - silent for 2 x telemetry: one Status 10 query; for 3 x telemetry, or
 *    LWT Offline, or the broker connection lost: unreachable.
 */
#ifndef GM_PLUG_CTL_H
#define GM_PLUG_CTL_H

#include <stdbool.h>
#include <stdint.h>

#include "tasmota.h"

#define PLUG_RESEND_MS	1000	/* at most one repeated command per second */

enum {
	PLUG_SEND_WANTED = 1u << 0,	/* publish the wanted state (cmnd POWER ON/OFF) */
	PLUG_ASK_STATUS = 1u << 1,	/* publish cmnd/<t>/Status 10 */
	PLUG_REPORT = 1u << 2,		/* call ReportLoad with plug_report_args() */
};

struct plug_ctl {
	uint32_t telemetry_ms;	/* the plug's TelePeriod */
	bool have_wanted;	/* meterd told what it wants */
	bool wanted_on;
	bool have_on;		/* the plug told its relay state */
	bool on;
	int64_t power_mw;	/* last ENERGY.Power; < 0: unknown */
	bool reachable;		/* our judgement, as last reported to meterd */
	int64_t last_heard_ms;	/* any message from the plug */
	bool status_asked;	/* the one Status 10 of this silence was sent */
	int64_t last_cmd_ms;	/* last wanted-state command; INT64_MIN: none */
};

void plug_init(struct plug_ctl *p, uint32_t telemetry_s, int64_t now_ms);
/* An accepted message from the plug (retained: a retained LWT, not news of the plug). */
unsigned plug_on_report(struct plug_ctl *p, const struct tas_report *r, bool retained, int64_t now_ms);
/* meterd's Loads said what it wants (every read: changes only act). */
unsigned plug_on_wanted(struct plug_ctl *p, bool wanted_on, int64_t now_ms);
/* The bridge is (again) connected to the broker. */
unsigned plug_on_connected(struct plug_ctl *p, int64_t now_ms);
/* The broker connection is lost: the plug cannot be switched. */
unsigned plug_on_lost(struct plug_ctl *p);
/* Periodic check of silence; returns actions. */
unsigned plug_tick(struct plug_ctl *p, int64_t now_ms);
/* When the next plug_tick can change something (ms, monotonic). */
int64_t plug_next_tick(const struct plug_ctl *p);
/* The wanted state to publish, after PLUG_SEND_WANTED (records the time). */
bool plug_take_wanted(struct plug_ctl *p, int64_t now_ms);
/* ReportLoad's measured_w: power rounded to the nearest W, -1 unknown. */
int32_t plug_measured_w(const struct plug_ctl *p);

#endif
