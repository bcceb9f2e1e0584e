/* SPDX-License-Identifier: GPL-2.0 */
/*
 * townd storage: SQLite (WAL) with a schema kept to what PostgreSQL also
 * accepts (Documentation/townd.md). Exactly-once storage is the primary
 * key (meter, seq) of readings and events. Nothing about sessions or
 * nonces is stored: a database restored from a backup cannot roll back a
 * key stream (gmproto v2).
 *
 * Schema version 4 (table meta); a version-1, -2 or -3 database is migrated
 * when opened, keeping every meter, reading, event and command (3 adds
 * the hours for the main server, built from the stored readings; 4 the
 * signed commands, the reports to the main server and town summaries).
 */
#ifndef TOWND_DB_H
#define TOWND_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "gmproto.h"

#define TOWND_SCHEMA_VERSION	4
#define TDB_HELLOS		16	/* recent HELLO randoms kept per meter */
#define TDB_HELLO_ID		16	/* bytes of each kept */

/* Town-side command states beyond the protocol's GMP_CMD_* results. */
#define TDB_CMD_SUPERSEDED	100	/* replaced by a re-issued copy */
#define TDB_CMD_V1_ACKED	101	/* acknowledged by a version-1 meter, outcome unknown */

/* Event types of the events table that are not message types. */
#define TDB_EV_LOST		GMP_LOST	/* a = first, b = last */

extern const char townd_schema_sql[];

struct townd_db {
	sqlite3 *db;
	sqlite3_stmt *ins_reading, *ins_event, *month, *upd_meter, *stat, *get_meter;
	sqlite3_stmt *pending, *result, *sent, *changes;
	int in_tx;
	int64_t kept_from;	/* months before this were deleted (retention): readings
				 * of them are booked at their arrival */
};

struct townd_meter_row {
	uint16_t id;
	uint8_t pk[GMP_KEY_LEN];
	bool have_pk_next;
	uint8_t pk_next[GMP_KEY_LEN];
	bool revoked;
	int64_t upto;
	int64_t cmd_floor;
	int64_t reg_import, reg_export, reg_renew, reg_time, reg_snap;
};

/* The register view the town keeps of a meter (Documentation/townd.md). */
struct townd_regview {
	int64_t import_mwh, export_mwh, renew_mwh;
	int64_t time;		/* UTC s the view reaches */
	int64_t snap;		/* time of the snapshot it is based on; readings from then on count */
};

/* Opens (creating or migrating the schema). -1 with a message in err. */
int tdb_open(struct townd_db *d, const char *path, int sync_full, char *err, size_t errlen);
void tdb_close(struct townd_db *d);
int tdb_begin(struct townd_db *d);
int tdb_commit(struct townd_db *d);
void tdb_rollback(struct townd_db *d);
/* 1 found, 0 not provisioned, -1 error. */
int tdb_get_meter(struct townd_db *d, unsigned int id, struct townd_meter_row *row);
/* A stored record's booking time (readings.booked): its start when defensible. */
int64_t tdb_booked(const struct gmp_msg *reading, int64_t received);
/* The same, and never in a month retention deleted (start < kept_from: arrival). */
int64_t tdb_booked_kept(const struct gmp_msg *reading, int64_t received, int64_t kept_from);
/* 1 stored, 0 already stored (duplicate), -1 error. */
int tdb_store(struct townd_db *d, unsigned int meter, const struct gmp_msg *m, int64_t now);
/* A lost range as an event (seq = first). 1, 0 (duplicate), -1. */
int tdb_store_lost(struct townd_db *d, unsigned int meter, int64_t first, int64_t last,
		   int64_t now);
int tdb_update_meter(struct townd_db *d, unsigned int id, int64_t upto, int64_t last_seen,
		     uint64_t rejected_delta, int64_t cmd_floor, const struct townd_regview *rv);
int tdb_add_stat(struct townd_db *d, const char *name, uint64_t delta);
/* Calls cb for each stored seq of meter in (upto, upto + 64]. */
int tdb_seqs_above(struct townd_db *d, unsigned int id, int64_t upto,
		   void (*cb)(void *ctx, int64_t seq), void *ctx);
/* A line in the journal table (key changes, handshakes worth noting, ...). */
int tdb_journal(struct townd_db *d, unsigned int id, int64_t now, const char *what);

/* ---- the changes counter: townctl bumps it, townd reloads what changed ---- */
int64_t tdb_changes(struct townd_db *d);
int tdb_bump_changes(struct townd_db *d);

/* ---- handshakes ------------------------------------------------------------------ */
/*
 * Was this HELLO random seen for the meter (among the last TDB_HELLOS)?
 * 1 yes, 0 no, -1 error. tdb_hello_add remembers it (in the transaction).
 */
int tdb_hello_seen(struct townd_db *d, unsigned int id, const uint8_t rm[GMP_RAND_LEN]);
int tdb_hello_add(struct townd_db *d, unsigned int id, const uint8_t rm[GMP_RAND_LEN]);
/* The meter's next key becomes its key (a HELLO opened under it). */
int tdb_promote_pk(struct townd_db *d, unsigned int id, int64_t now);
int tdb_set_pk_next(struct townd_db *d, unsigned int id, const uint8_t pk[GMP_KEY_LEN]);

/* ---- provisioning (townctl) ----------------------------------------------------- */
/* -1 with err on failure (e.g. id taken). */
int tdb_add_meter(struct townd_db *d, unsigned int id, const uint8_t pk[GMP_KEY_LEN],
		  const char *name, int64_t now, char *err, size_t errlen);
int tdb_revoke(struct townd_db *d, unsigned int id, int64_t now, char *err, size_t errlen);
/* New hardware for the same id: new key, register view reset, not revoked. */
int tdb_replace(struct townd_db *d, unsigned int id, const uint8_t pk[GMP_KEY_LEN],
		int64_t now, char *err, size_t errlen);

/* ---- commands to meters ----------------------------------------------------------- */
/*
 * townctl queues a command (grant, tariff, town key) with the meter's
 * next tseq (above every tseq it has and the meter's reported floor);
 * townd sends the unsettled ones (oldest first, up to 8) with every ack to
 * the meter until its cmd-result settles them.
 */
int tdb_queue(struct townd_db *d, unsigned int id, struct gmp_msg *m, int64_t now,
	      char *err, size_t errlen);
/* Unsettled commands of a meter, oldest first; cb returns non-zero to stop. */
int tdb_pending(struct townd_db *d, unsigned int id,
		int (*cb)(void *ctx, int64_t tseq, const uint8_t *msg, size_t len), void *ctx);
/* The first time a command goes out. */
int tdb_mark_sent(struct townd_db *d, unsigned int id, int64_t tseq, int64_t now);
/* A meter's cmd-result. 1 if it settled a command, 0 if nothing matched, -1. */
int tdb_cmd_result(struct townd_db *d, unsigned int id, int64_t tseq, int64_t status,
		   int64_t now);
/*
 * A confirmed HELLO reported the meter's command floor: reconcile
 * (Documentation/townd.md): above every tseq of the town -> commands
 * continue above it; below what the meter had settled -> its current
 * tariff, unexpired grants and an unfinished town key are issued again.
 */
int tdb_reconcile(struct townd_db *d, unsigned int id, int64_t floor, int64_t now);
/*
 * The cmd_next a WELCOME gives a meter that reported @floor, read only: the
 * first tseq the town will send once tdb_reconcile() has run for that floor
 * (it runs when the meter's first session frame proves the HELLO fresh).
 */
int tdb_cmd_next(struct townd_db *d, unsigned int id, int64_t floor, int64_t *cmd_next);

/*
 * A grant decided by townd's allocation (townd_alloc_db.c), queued inside
 * the batch's open transaction with the meter's next tseq. 0, -1 (database),
 * -2 (meter not provisioned).
 */
int tdb_queue_in_tx(struct townd_db *d, unsigned int id, struct gmp_msg *m, int64_t now,
		    int64_t *tseq);
/* The allocation tables (CREATE TABLE IF NOT EXISTS; townd_alloc_db.c), at open. */
int tdb_alloc_schema(struct townd_db *d, char *err, size_t errlen);

/*
 * Statements with int64 parameters ?1..?n (townd_updb.c): prepared with them
 * bound (NULL on error), run to completion (0 / -1), or the first column of
 * the first row (dflt for no row or NULL; 0 / -1).
 */
sqlite3_stmt *tdb_prepare_i64(struct townd_db *d, const char *sql, int n, const int64_t *v);
int tdb_exec_i64(struct townd_db *d, const char *sql, int n, const int64_t *v);
int tdb_query_i64(struct townd_db *d, const char *sql, int n, const int64_t *v, int64_t dflt,
		  int64_t *out);

/* "YYYY-MM" (UTC) of t. */
void tdb_month(int64_t t, char out[8]);

#endif
