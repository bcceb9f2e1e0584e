/* SPDX-License-Identifier: GPL-2.0 */
/*
 * townd's storage of its loans between towns (Documentation/town-network.md):
 * the state of server/townd_loans.c as one blob (restored at start, so a
 * restarted town resumes its loans), and a `loans` table, one row per
 * segment as it stands, for townctl loans and for people. On the core's
 * SQLite connection: inside a transaction already open, else in its own.
 */
#ifndef TOWND_LOANS_DB_H
#define TOWND_LOANS_DB_H

#include <stdint.h>
#include <stdio.h>

#include "townd_db.h"
#include "townd_loans.h"

/* The two tables (CREATE TABLE IF NOT EXISTS). 0 or -1. */
int tln_schema(struct townd_db *d);
/* Save l's state and rows (at now, UTC s). 0 or -1. */
int tln_save(struct townd_db *d, const struct townd_loans *l, int64_t now);
/*
 * Restore the saved state into l (initialised, neighbours added): 1
 * restored, 0 nothing saved yet, -1 storage error or a state that is not
 * this town's (the message in err).
 */
int tln_load(struct townd_db *d, struct townd_loans *l, char *err, size_t errlen);
/* townctl loans: the rows, live ones first. 0 or -1. */
int tln_print(struct townd_db *d, FILE *out);

#endif
