/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Operator-signed commands at the town (Documentation/townd.md, "Signed
 * commands"; lib/sign/gmcmd.h). They come from the main server as
 * GMP_SIGNED on the tier link, or from an operator on site
 * (townctl signed-queue).
 *
 *  - town actions (stop, start, supply; meter 0): verified here against
 *    the operator key set provisioned at enrolment ([commands]
 *    operator_keys), replay memory (gmc_seen) in the database's
 *    directory, saved before the action; then carried out.
 *  - meter actions: the town cannot verify for the meter and does not
 *    try to. It checks what it can (the blob decodes, addressed to this
 *    town, the meter is provisioned, not expired, an id not seen before,
 *    the town's disconnects per hour) and queues the **unchanged blob** in
 *    the meter's command queue (outgoing, type GMP_SIGNED, with a tseq
 *    like a grant). The meter verifies it and answers GMP_CMD_RESULT.
 *
 * Every step is a GMP_CMD_REPORT row (townd_reports.h) in the same
 * transaction: DELIVERED when queued, EXECUTED / REFUSED (the status the
 * meter or the town gave), EXPIRED when the expiry passed before the
 * meter took it. Refusals are also counted as GMP_SEC_CMD_REFUSED.
 *
 * A stopped town (GMC_TOWN_STOP): meta town_stopped (UTC s) and
 * town_stop_cmd (the command's id: its signers in signed_cmds).
 */
#ifndef TOWND_SIGNED_H
#define TOWND_SIGNED_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gmcmd.h"
#include "seen.h"
#include "townd_config.h"
#include "townd_db.h"
#include "townd_reports.h"

struct townd_signed {
	struct townd_db *db;
	uint16_t town;			/* [upstream] town_id (0: none configured) */
	struct gmc_keyset keys;		/* n 0: no operator keys, town commands refused */
	struct gmc_policy pol;
	uint32_t disconnects_per_hour;
	char seen_path[300];
	struct gmc_seen seen;
	struct townd_sec *sec;		/* refusals counted here (NULL: not counted) */
	int64_t ticked;			/* last townd_signed_tick (UTC s) */
	/* what the owner does when the town's state changes (may be NULL) */
	void *ctx;
	void (*queued)(void *ctx, uint16_t meter);	/* a command waits for this meter */
	void (*stopped)(void *ctx, bool stopped);
	void (*supply)(void *ctx, int64_t watts);
};

/*
 * The operator key set (a bad file is an error naming file and line; no
 * file configured: none), the replay memory. 0, or -1 with err.
 */
int townd_signed_init(struct townd_signed *s, const struct townd_config *cfg,
		      struct townd_db *db, char *err, size_t errlen);

/*
 * A signed command's bytes, from "main" or "townctl", at now (own
 * transaction; the caller holds none open). Returns the status for the
 * sender: GMP_CMD_OK (queued for the meter, or carried out by the town),
 * GMP_CMD_STORAGE (nothing happened: send it again), or the refusal.
 * *cmd_id: the command's id (0 if it does not decode); *tseq: its place
 * in the meter's queue (0 none).
 */
int townd_signed_handle(struct townd_signed *s, const uint8_t *blob, size_t len,
			const char *via, int64_t now, int64_t *cmd_id, int64_t *tseq);

/*
 * The meter's GMP_CMD_RESULT for a command of its queue, inside the ingest
 * transaction after tdb_cmd_result() settled it: for a GMP_SIGNED one the
 * report (EXECUTED or REFUSED with the meter's status; EXPIRED for its
 * expiry). 1 if it was a signed command, 0 if not, -1 on error.
 */
int townd_signed_result(struct townd_db *d, unsigned int meter, int64_t tseq, int64_t status,
			int64_t now);

/* Expiries of queued commands, at most once a second (own transaction). 0 or -1. */
int townd_signed_tick(struct townd_signed *s, int64_t now);

/* The stop in force: 1 with since (UTC s) and the signers' names, 0 running, -1. */
int townd_town_stopped(struct townd_db *d, int64_t *since, char *by, size_t bylen);

/* townctl: the signed commands (of meter id, 0 all), newest first. Exit status. */
int townd_signed_print(struct townd_db *d, FILE *out, unsigned int id);
/* townctl: the town's summaries (month YYYYMM, 0 all). Exit status. */
int townd_summary_print(struct townd_db *d, FILE *out, int64_t month);

/* A command file's bytes: the wire form, or the same in hex (one line). -1 with err. */
int townd_signed_read_file(const char *path, uint8_t *blob, size_t size, size_t *len,
			   char *err, size_t errlen);

const char *townd_cmd_state_name(int state);
const char *townd_cmd_status_name(int status);

#endif
