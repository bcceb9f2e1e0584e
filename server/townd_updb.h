/* SPDX-License-Identifier: GPL-2.0 */
/*
 * townd's storage of what goes to the main server (Documentation/townd.md,
 * "Hours", "Retention"): hours built from the readings, the intent of each
 * send, acknowledgements, the supply capacity maind set, month retention,
 * prices. On the core's SQLite connection, always outside the ingest
 * transaction (each call that writes runs its own, short one).
 *
 * meta rows used: hours_rowid (readings up to this rowid are in hours),
 * up_acked (the upstream outbox's acknowledged seq), admin_since (UTC s,
 * 0 normal), supply_w / supply_at (maind's GMP_SUPPLY), kept_from (months
 * before it were deleted), ret_stage / ret_cursor (a deletion under way),
 * up_backlog (records waiting, for townctl).
 */
#ifndef TOWND_UPDB_H
#define TOWND_UPDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gmproto.h"
#include "townd_db.h"
#include "townd_hours.h"

int tup_meta_get(struct townd_db *d, const char *name, int64_t dflt, int64_t *v);
int tup_meta_set(struct townd_db *d, const char *name, int64_t v);
/* A gauge in stats (value replaced, not added). */
int tup_stat_set(struct townd_db *d, const char *name, int64_t v);

/*
 * The town's grid capacity as the main server last set it (GMP_SUPPLY).
 * 1 with *watts (and *at, UTC s, may be NULL) when maind set one, 0 when
 * it never did (the configured capacity applies), -1 on error. Persisted:
 * survives restarts. tup_supply_set() stores it with a journal line
 * (own transaction unless one is open).
 */
int tup_supply_get(struct townd_db *d, int64_t *watts, int64_t *at);
int tup_supply_set(struct townd_db *d, int64_t watts, int64_t tseq, int64_t now);

/* The tariffs the meter has or will have (GMP_TARIFF commands not refused), sorted. */
int tup_tariffs(struct townd_db *d, unsigned int meter, struct th_tariff *out, size_t max,
		size_t *n);

/*
 * Build up to max readings stored after hours_rowid into hours (own
 * transaction). *built: how many (0: up to date). 0 or -1.
 */
int tup_build(struct townd_db *d, th_offset_fn off, void *off_ctx, size_t max, size_t *built);

/*
 * The next messages for the upstream outbox: pending rows of the oldest
 * closed hour and, once none of that hour is pending, its GMP_TOWN_HOUR
 * when it changed; or a town hour whose send was undone. At most max;
 * message i will be record next_seq + i: that is stored as its out_seq
 * with sent_rev = rev in the same transaction (the intent). 0.. messages,
 * or -1.
 */
int tup_next_batch(struct townd_db *d, int64_t now, uint32_t grace_s, bool admin,
		   int64_t next_seq, struct gmp_msg *out, size_t max);
/* Hour rows of closed hours and town hours not yet in the outbox. */
int tup_pending_closed(struct townd_db *d, int64_t now, uint32_t grace_s, int64_t *n);
/* Intents from record seq on never reached the outbox: pending again. */
int tup_unsend_from(struct townd_db *d, int64_t seq);
/* The outbox renumbered records >= from by + delta (a WELCOME's rebase). */
int tup_rebase(struct townd_db *d, int64_t from, int64_t delta);

/* What townctl status shows of the upstream side. */
struct tup_status {
	int64_t admin_since;		/* 0: normal */
	int64_t backlog;		/* records in the upstream outbox not acknowledged */
	int64_t pending_rows;		/* hour rows not yet in the outbox */
	int64_t oldest_hour;		/* oldest hour not acknowledged (-1: none) */
	int64_t acked;			/* upstream outbox seq acknowledged */
	int64_t supply_w, supply_at;	/* -1: maind never set it */
	int64_t kept_from;		/* 0: nothing deleted */
	int64_t db_bytes, wal_bytes, free_bytes;
};
int tup_status(struct townd_db *d, const char *db_path, struct tup_status *st);
/* The oldest hour not in the outbox or not acknowledged, -1 if none. */
int tup_oldest_unacked(struct townd_db *d, int64_t acked, int64_t *hour);

/*
 * Month retention, one bounded step (own transaction): starts deleting
 * the oldest month when it is past, closed and all of it acknowledged
 * (acked: the outbox's), or goes on deleting, at most chunk rows. 1 if
 * it did something (call again), 0 if nothing to do, -1 on error.
 * *deleted: rows deleted; *month_done: a month start whose deletion
 * completed (0 none).
 */
int tup_retention_step(struct townd_db *d, int64_t now, uint32_t grace_s, int64_t acked,
		       uint32_t chunk, int64_t *deleted, int64_t *month_done);

/*
 * Price so far of a meter over [from, to) (hours), milli-minor, from the
 * hours and the meter's tariffs: each row at the tariff in force at its
 * hour's start (or, if none, the first one after), import charged and
 * export credited at its slot's prices; summed exactly in nano-minor,
 * rounded once (half away from zero). *mwh: import in the range.
 */
int tup_price(struct townd_db *d, unsigned int meter, int64_t from, int64_t to,
	      int64_t *milli, int64_t *import_mwh, int64_t *rows);

/* UTC month [start, next) containing t. */
int64_t tup_month_start(int64_t t);
int64_t tup_month_next(int64_t month_start);

#endif
