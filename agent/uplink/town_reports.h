/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the meter reports to its town server, as records (Documentation/
 * meterd.md, "Uplink"): readings, a register snapshot every snapshot
 * interval and at every start, a reading flagged UNRECORDED for the span a
 * power cut left unmetered, and the energy held while the clock was not
 * trusted, once it is, flagged TIME_RECONSTRUCTED.
 *
 * Readings are cut at every multiple of the report interval, at every hour
 * and at every change of tariff period (local time, tariff.h), so that no
 * reading spans two hours or two periods: with the default report interval
 * of an hour ([uplink] detail = billing) the town gets exactly what it
 * bills, one reading per hour and tariff period, nothing finer
 * (Documentation/data-inventory.md). A late or catch-up reading is split
 * at the same hours and periods, its energy shared by time.
 *
 * The readings and snapshots form one consistent sequence: a snapshot
 * gives the registers as they stood at the end of the last reading, and
 * each reading the energy since the previous one, so that the town's view
 * of the registers (the last snapshot plus the readings after it) is exactly
 * what the meter has told it. Nothing is reported on untrusted time, and no
 * snapshot before the town's own view has been heard in this run (after a
 * wiped state the registers may be raised to it first).
 *
 * Pure logic: time, registers, tariff and the record sink are passed in; a
 * record the sink could not queue leaves the baseline where it was, so its
 * energy goes with the next reading instead of being lost.
 */
#ifndef GM_TOWN_REPORTS_H
#define GM_TOWN_REPORTS_H

#include <stdbool.h>
#include <stdint.h>

#include "gmproto.h"
#include "tariff.h"

#define TR_MAX_READING_S	86400	/* longer spans are split (gmproto's limit) */
#define TR_HOUR_S		3600	/* readings never span an hour boundary (UTC) */

struct town_reports {
	uint32_t report_s, snapshot_s;	/* intervals; snapshot 0: only at start */
	bool known;			/* report_from is a trusted time */
	int64_t report_from;		/* UTC s: the end of the last reading */
	int64_t next_report, next_snapshot;	/* UTC s */
	uint64_t base[3];		/* import, export, renewable mWh at report_from */
	uint32_t flags;			/* GMP_RF_* for the next reading */
	uint32_t snap_flags;		/* GMP_RF_* for the next snapshot */
	bool unrecorded_done;		/* the start's unrecorded span was reported */
	/* the last tariff scan: the cut after cut_from, before cut_until, with cut_tariff */
	bool cut_known;
	int64_t cut_from, cut_until, cut_at;
	struct tariff cut_tariff;
};

struct tr_input {
	int64_t now_s;			/* the real-time clock */
	const struct tariff *tariff;	/* in force (local time: TZ); NULL: no period cuts */
	bool trusted;			/* ... and whether it is trusted */
	bool view_known;		/* the town's view of the registers has been heard
					   this run (a snapshot before it could be below it) */
	uint64_t reg[3];		/* lifetime registers (mWh), energy held apart excluded */
	bool have_unrecorded;		/* a span this run's start could not meter */
	int64_t unrec_from_s, unrec_to_s;
	bool have_reconstructed;	/* held energy was placed onto this span */
	int64_t recon_from_s, recon_to_s;
};

/*
 * Queue one record (its seq is assigned by the sink). >= 0 queued, < 0 not
 * (the reports keep their baseline and try again at the next step).
 */
typedef int (*tr_record_fn)(void *ctx, struct gmp_msg *m);

/*
 * report_s: readings are cut at its multiples (besides hours and tariff
 * periods); 3600 is billing data, 0 means 3600. reg: the registers at
 * start (the baseline); trusted: the clock is trusted now.
 */
void tr_init(struct town_reports *r, uint32_t report_s, uint32_t snapshot_s, int64_t now_s,
	     bool trusted, const uint64_t reg[3]);
/* Emit what is due at in->now_s. Returns the number of records queued. */
int tr_step(struct town_reports *r, const struct tr_input *in, tr_record_fn fn, void *ctx);
/* The registers were raised by delta to the town's view: not new energy. */
void tr_raised(struct town_reports *r, const uint64_t delta[3]);
/* The next time (UTC s) tr_step() has something to do; INT64_MAX while not known. */
int64_t tr_due(const struct town_reports *r);

/*
 * Allocation requests go at once, whatever the readings' interval: starting,
 * stopping or turning a request round (need <-> offer) at once; a changed
 * amount at once if it moved by 10 % and 50 W, else after it has waited
 * TR_REQ_WAIT_S (it once went with the next reading, but readings are now
 * hourly); a standing request is renewed TR_REQ_RENEW_S before its
 * duration ends, so that the town does not expire a need that lasts.
 */
#define TR_REQ_WAIT_S	60
#define TR_REQ_RENEW_S	120

struct tr_request {
	int64_t sent_w;		/* the request in force at the town (0: none) */
	int64_t sent_at;	/* UTC s it was sent */
	int64_t want_w;		/* what the meter wants now */
	int64_t since;		/* UTC s want_w first differed from sent_w */
	int64_t not_before;	/* UTC s: a record that could not be queued is tried again then */
};

/* The meter wants want_w from now on (the town is told when tr_request_due() says). */
void tr_request_want(struct tr_request *q, int64_t want_w, int64_t now_s);
/*
 * When (UTC s) the request must be sent (again) given duration_s of the
 * one in force; INT64_MAX: nothing to send. Due when <= now.
 */
int64_t tr_request_due(const struct tr_request *q, uint32_t duration_s);
/* want_w was sent at now_s. */
void tr_request_sent(struct tr_request *q, int64_t now_s);
/* It could not be queued (outbox full): tried again TR_REQ_RETRY_S later. */
#define TR_REQ_RETRY_S	5
void tr_request_failed(struct tr_request *q, int64_t now_s);

#endif
