/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The allocation's tables (Documentation/townd.md, "Allocation"):
 * alloc_requests (the allocator's state, one row per meter, so a restart
 * knows what every meter holds), alloc_decisions (every decision with its
 * reason and the grant command's tseq), alloc_pool (the figures of the last
 * decision, and the capacity the main server set by GMP_SUPPLY).
 * Created with CREATE TABLE IF NOT EXISTS at open, whatever the schema
 * version: they need no migration.
 */
#ifndef TOWND_ALLOC_DB_H
#define TOWND_ALLOC_DB_H

#include <stdint.h>
#include <stdio.h>

#include "townd_alloc.h"
#include "townd_db.h"

#define TDB_ALLOC_KEEP_S	(35 * 86400)	/* decisions kept this long */
#define TDB_ALLOC_PRUNE_ROWS	2000		/* deleted per call at most */

extern const char townd_alloc_schema_sql[];

/* Entries and the main server's capacity (if it set one) into a. 0 or -1. */
int tdb_alloc_load(struct townd_db *d, struct townd_alloc *a);
/*
 * In the open transaction: the grants a->dec says are due are queued as
 * GMP_GRANT commands, every decision is logged with its reason, the
 * entries of the meters decided on are written, and the figures. 0 or -1.
 */
int tdb_alloc_save(struct townd_db *d, const struct townd_alloc *a, int64_t now);
/* The capacity the main server set (GMP_SUPPLY), kept across restarts. */
int tdb_alloc_set_supply(struct townd_db *d, int64_t capacity_w, int64_t now);
/* Decisions older than before, at most TDB_ALLOC_PRUNE_ROWS. Rows deleted, or -1. */
int tdb_alloc_prune(struct townd_db *d, int64_t before);
/* A figure of alloc_pool (townctl); 0 found, 1 absent, -1. */
int tdb_alloc_figure(struct townd_db *d, const char *name, int64_t *v);
/* townctl alloc: pool, requests, offers, grants, the last `recent` decisions. 0 or -1. */
int tdb_alloc_print(struct townd_db *d, FILE *out, int recent);

#endif
