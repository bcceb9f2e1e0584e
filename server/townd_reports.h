/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the town reports to the main server besides its hours
 * (Documentation/townd.md, "Reports to the main server"): where signed
 * commands stand (GMP_CMD_REPORT), its meters' alarms (GMP_METER_ALARM)
 * and counts of authentication failures, replays, unknown addresses and
 * refused signed commands (GMP_SECURITY); and the monthly summary the
 * main server sends back (GMP_TOWN_SUMMARY).
 *
 * A report is a row of the reports table written in the transaction of
 * what it reports (the meter's cmd-result, its alarm, the command
 * queued), so none is lost or made twice by a crash; the upstream tick
 * moves rows into the upstream outbox in order (out_seq: the record seq,
 * the same intent bookkeeping as the hours), and rows the main server
 * acknowledged are deleted. Without [upstream] nothing is kept.
 */
#ifndef TOWND_REPORTS_H
#define TOWND_REPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gmproto.h"
#include "townd_db.h"

#define TOWND_SEC_INTERVAL_S	60	/* security counts per minute */
#define TOWND_SEC_KEYS		256	/* (meter, address, kind) counted per minute */

/* Inside an open transaction. 0 or -1. */
int trep_cmd(struct townd_db *d, int64_t now, int64_t cmd_id, unsigned int meter, int state,
	     int status);
int trep_alarm(struct townd_db *d, unsigned int meter, const struct gmp_msg *alarm);

/* Security counts of one minute, in memory until written. */
struct townd_sec {
	int64_t start;			/* UTC s the window began (0: empty) */
	size_t n;
	uint64_t overflow;		/* keys beyond TOWND_SEC_KEYS: counted under meter 0, addr 0 */
	struct {
		uint16_t meter;
		uint8_t kind;		/* enum gmp_sec_kind */
		uint32_t addr;		/* IPv4, host order (0 unknown) */
		uint64_t count;
	} e[TOWND_SEC_KEYS];
};

void townd_sec_count(struct townd_sec *s, unsigned int meter, uint32_t addr, int kind,
		     int64_t now);
/* The window is over (or force): its counts need writing. */
bool townd_sec_due(const struct townd_sec *s, int64_t now, bool force);
/* Write the window's counts as GMP_SECURITY rows (in an open transaction) and reset. */
int townd_sec_write(struct townd_sec *s, struct townd_db *d, int64_t now);

/*
 * The next report rows not in the outbox, at most max, as messages
 * numbered next_seq.. (their out_seq set: the intent, own transaction).
 * 0.. messages, or -1.
 */
int trep_next_batch(struct townd_db *d, int64_t next_seq, struct gmp_msg *out, size_t max);
/* Intents from seq on never reached the outbox: pending again. */
int trep_unsend_from(struct townd_db *d, int64_t seq);
/* The outbox renumbered records >= from by + delta. */
int trep_rebase(struct townd_db *d, int64_t from, int64_t delta);
/* Rows acknowledged (out_seq <= acked) are deleted; own transaction. */
int trep_prune(struct townd_db *d, int64_t acked);
/* Without a main server: nothing is kept. */
int trep_drop_all(struct townd_db *d);

/* A GMP_TOWN_SUMMARY (replaces the month's). 0 or -1 (own transaction). */
int trep_summary_store(struct townd_db *d, const struct gmp_msg *m, int64_t now);

#endif
