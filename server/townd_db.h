/* SPDX-License-Identifier: GPL-2.0 */
/*
 * townd storage: SQLite (WAL) with a schema kept to what PostgreSQL also
 * accepts (Documentation/townd.md). Exactly-once storage is the primary
 * key (meter, seq) of readings and events.
 */
#ifndef TOWND_DB_H
#define TOWND_DB_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "gmproto.h"

extern const char townd_schema_sql[];

struct townd_db {
	sqlite3 *db;
	sqlite3_stmt *ins_reading, *ins_event, *month, *upd_meter, *stat, *get_meter;
	sqlite3_stmt *pending, *mack;
	int in_tx;
};

struct townd_meter_row {
	uint16_t id;
	uint8_t pk[GMP_KEY_LEN];
	uint64_t rx_ctr, tx_ctr;	/* tx_ctr: reserved ceiling */
	int64_t upto;
};

/* Opens (creating the schema if needed). -1 with a message in err. */
int tdb_open(struct townd_db *d, const char *path, int sync_full, char *err, size_t errlen);
void tdb_close(struct townd_db *d);
int tdb_begin(struct townd_db *d);
int tdb_commit(struct townd_db *d);
void tdb_rollback(struct townd_db *d);
/* 1 found, 0 not provisioned, -1 error. */
int tdb_get_meter(struct townd_db *d, unsigned int id, struct townd_meter_row *row);
/* 1 stored, 0 already stored (duplicate), -1 error. */
int tdb_store(struct townd_db *d, unsigned int meter, const struct gmp_msg *m, int64_t now);
int tdb_update_meter(struct townd_db *d, unsigned int id, uint64_t rx_ctr, uint64_t tx_ctr,
		     int64_t upto, int64_t last_seen, uint64_t rejected_delta);
int tdb_add_stat(struct townd_db *d, const char *name, uint64_t delta);
/* Frames of meter id that did not open, counted since the last call. */
int tdb_add_rejected(struct townd_db *d, unsigned int id, uint64_t delta);
/* Calls cb for each stored seq of meter in (upto, upto + 64]. */
int tdb_seqs_above(struct townd_db *d, unsigned int id, int64_t upto,
		   void (*cb)(void *ctx, int64_t seq), void *ctx);
/* Provisioning (townctl). -1 with err on failure (e.g. id taken). */
int tdb_add_meter(struct townd_db *d, unsigned int id, const uint8_t pk[GMP_KEY_LEN],
		  const char *name, int64_t now, char *err, size_t errlen);
/*
 * Commands to meters (grants, tariffs): townctl queues them with the next
 * tseq of the meter; townd sends the unacknowledged ones (oldest first, up
 * to 8) with every ack to the meter until the meter's meter-ack covers them.
 */
int tdb_queue(struct townd_db *d, unsigned int id, struct gmp_msg *m, int64_t now,
	      char *err, size_t errlen);
int tdb_pending(struct townd_db *d, unsigned int id,
		int (*cb)(void *ctx, int64_t tseq, const uint8_t *msg, size_t len), void *ctx);
int tdb_mack(struct townd_db *d, unsigned int id, int64_t upto, int64_t now);
/* "YYYY-MM" (UTC) of t. */
void tdb_month(int64_t t, char out[8]);

#endif
