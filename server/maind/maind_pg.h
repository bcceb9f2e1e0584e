/* SPDX-License-Identifier: GPL-2.0 */
/*
 * maind's storage in PostgreSQL through libpq (Documentation/maind.md):
 * the schema, the gmp_server storage hooks, and what mainctl needs.
 *
 * Ingest: records are buffered during a batch and written at its commit
 * with one COPY per kind into a temporary table and one
 * INSERT ... SELECT DISTINCT ON ... ON CONFLICT DO UPDATE WHERE the new
 * revision is higher, so that each (town, meter, hour, period) is one row
 * at its highest rev; the towns' state (upto, command floor, HELLO memory)
 * is updated in the same transaction, so a record is stored exactly once
 * per (town, seq) and nothing is acknowledged before COMMIT returned.
 * meter_hours is partitioned by month; partitions are created ahead
 * (MPG_MONTHS_AHEAD) and on demand for any month a batch touches.
 */
#ifndef MAIND_PG_H
#define MAIND_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "gmp_server.h"

#define MPG_SCHEMA_VERSION	1
#define MPG_MONTHS_AHEAD	2	/* partitions kept ready beyond the current month */

struct mpg_buf {
	char *p;
	size_t len, cap;
	size_t rows;
};

struct mpg_range {		/* records of one town in the open batch */
	uint16_t town;
	int64_t first, last;	/* seqs */
	int64_t hours;		/* GMP_HOUR rows among them */
	int64_t last_hour;	/* newest hour among them (-1 none) */
	int64_t admin_hour;	/* newest hour flagged GMP_HF_ADMIN (-1 none) */
};

struct maind_pg {
	PGconn *c;
	bool in_tx;
	struct mpg_buf hours, town_hours, loans;
	struct mpg_range *ranges;
	size_t n_ranges, cap_ranges;
	int32_t *months;		/* partitions known to exist (YYYYMM) */
	size_t n_months, cap_months;
	char err[512];			/* the last error */
	uint64_t rows_hours, rows_town_hours, rows_loans, commits;
	int64_t bill_at, detect_at, cmd_at;	/* UTC s the parts' ticks last worked */
};

/* Connect, create or check the schema, partitions ahead. 0 or -1 with err. */
int mpg_open(struct maind_pg *p, const char *conninfo, char *err, size_t errlen);
void mpg_close(struct maind_pg *p);
/* The storage hooks of gmp_server (ctx = p); send and log are the caller's. */
void mpg_hooks(struct maind_pg *p, struct gmps_hooks *h);
/* Partitions for the months from now - 1 month to now + MPG_MONTHS_AHEAD. 0 or -1. */
int mpg_partitions_ahead(struct maind_pg *p, int64_t now);
/*
 * Towns with commands to send (no result and not sent in the last
 * resend_s seconds): up to max ids into out; the count or -1.
 */
int mpg_towns_with_commands(struct maind_pg *p, int64_t now, int resend_s, uint16_t *out,
			    size_t max);
/* mainctl's change counter (towns added, keys changed): -1 on error. */
int64_t mpg_changes(struct maind_pg *p);
/* A journal line (autocommit when no batch is open). 0 or -1. */
int mpg_journal(struct maind_pg *p, int town, const char *what);

/*
 * PostgreSQL advisory lock keys (as SQL literals), all here so that no two
 * parts take the same key for different things:
 *   MPG_LOCK_AUDIT   the audit log's appender (audit_append, commands/), to
 *                    the transaction's end; every ingest batch takes it
 *                    first, before any row, because a town's report of a
 *                    signed command appends to the log after its rows
 *                    while mainctl takes it before the rows it queues (in
 *                    the other order the two deadlocked)
 *   MPG_LOCK_DETECT  one detection run at a time (maind's tick, mainctl)
 *   MPG_LOCK_BILL    one rating or bill run at a time (session lock)
 *   MPG_LOCK_PORTAL  maind-portal making the schema when it starts first
 */
#define MPG_LOCK_AUDIT		"7236911001"
#define MPG_LOCK_DETECT		"1684370548"
#define MPG_LOCK_BILL		"7022357620"
#define MPG_LOCK_PORTAL		"7061726721"

/* Create or migrate the schema on an open connection. 0 or -1 with err. */
int mpg_schema(PGconn *c, char *err, size_t errlen);

/* A statement with text parameters (NULL: SQL NULL); 0 or -1 with p->err. */
int mpg_exec(struct maind_pg *p, const char *sql, int n, const char *const *v);
/* A query returning rows; NULL with p->err on failure. PQclear() the result. */
PGresult *mpg_query(struct maind_pg *p, const char *sql, int n, const char *const *v);
/*
 * A command row as a message (tseq not set): GMP_SUPPLY from capacity,
 * GMP_SIGNED from the blob's hex, GMP_TOWN_SUMMARY from args (its fields
 * after tseq, space-separated, as array_to_string() gives them). 0 or -1.
 */
int mpg_command_msg(int type, const char *capacity, const char *blob_hex, const char *args,
		    struct gmp_msg *m);

/*
 * Each part of maind adds its own tables (NULL-terminated lists of
 * statements, run after the core's, idempotent: CREATE ... IF NOT EXISTS):
 */
extern const char *const mbill_schema_sql[];	/* billing/ */
extern const char *const mnotice_schema_sql[];	/* notices/ */
extern const char *const mcmd_schema_sql[];	/* commands/ */
extern const char *const mdet_schema_sql[];	/* detect/ */
extern const char *const portal_schema_sql[];	/* portal/ (web_users) */

/*
 * The town records the parts store, called inside the ingest transaction
 * (p->in_tx) for each record in seq order: 0 or -1 (the batch is rolled
 * back and not acknowledged).
 */
int mcmd_store_report(struct maind_pg *p, uint16_t town, const struct gmp_msg *m);
int mdet_store_alarm(struct maind_pg *p, uint16_t town, const struct gmp_msg *m);
int mdet_store_security(struct maind_pg *p, uint16_t town, const struct gmp_msg *m);

/*
 * The parts' periodic work, called by maind once a second outside any
 * batch (now: UTC s); each keeps its own pace (p->bill_at, p->detect_at).
 * 0, or -1 (maind logs p->err and goes on).
 */
int mbill_tick(struct maind_pg *p, int64_t now);
int mdet_tick(struct maind_pg *p, int64_t now);

#endif
