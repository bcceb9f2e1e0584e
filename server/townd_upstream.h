/* SPDX-License-Identifier: GPL-2.0 */
/*
 * townd's side of the link to the main server (Documentation/townd.md,
 * "Hours and the main server"): hours built from the readings and put in
 * the upstream outbox each [upstream] interval, a tier client
 * (townd_tier.c) that delivers them, the supply capacity maind sets,
 * administrative mode while maind does not acknowledge, and month
 * retention once maind acknowledged a whole month.
 *
 * Everything here runs between the core's batches (never inside the
 * ingest transaction) and in bounded steps, so meters are served whatever
 * the main server does.
 */
#ifndef TOWND_UPSTREAM_H
#define TOWND_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "townd_config.h"
#include "townd_db.h"
#include "townd_signed.h"
#include "townd_tier.h"

#define TOWND_UP_BUILD_CHUNK	5000	/* readings built into hours per step */
#define TOWND_UP_SEND_BATCH	64	/* messages put into the outbox per batch */
#define TOWND_UP_SEND_BATCHES	4	/* batches per step */

/* Counters (stats table, townctl stats). */
struct townd_up_stats {
	uint64_t hours_sent, town_hours_sent, revisions;	/* records into the outbox */
	uint64_t readings_built;
	uint64_t admin_entered, admin_seconds;
	uint64_t supply_commands;
	uint64_t retention_rows, months_deleted;
	uint64_t reports_sent, signed_commands, summaries;
};

struct townd_upstream {
	const struct townd_config *cfg;
	struct townd_db *db;		/* the core's connection */
	bool enabled;			/* [upstream] configured */
	bool tier_open;
	struct townd_tier tier;
	/* administrative mode */
	bool admin;
	int64_t admin_since;		/* UTC s (persisted: meta admin_since) */
	int64_t last_ok_ms;		/* mono: the last sign of a working main server */
	bool heard;			/* an ack or a WELCOME since the last tick */
	int64_t admin_ms;		/* time in admin mode not yet counted in admin_seconds */
	int64_t last_tick_ms;
	/* work */
	int64_t next_send_ms;		/* mono: the next interval tick */
	bool building, sending, retaining;	/* a step's work goes on at the next tick */
	int64_t backlog_saved;		/* meta up_backlog as last written */
	int64_t stats_due_ms;
	struct townd_up_stats st, st_saved;
	bool db_failed;
	/*
	 * Called once maind's GMP_SUPPLY capacity is on disk (NULL: none):
	 * the owner hands it to the allocation (townd_core_set_capacity()).
	 */
	void (*on_supply)(void *ctx, int64_t capacity_w);
	void *on_supply_ctx;
	/* GMP_SIGNED from the main server goes there (NULL: refused UNSUPPORTED) */
	struct townd_signed *sig;
};

/*
 * Set up (the tier client when [upstream] is configured, with the town's
 * key pair as its identity). Undone sends of a previous run are made
 * pending again. 0, or -1 with err.
 */
int townd_upstream_init(struct townd_upstream *u, const struct townd_config *cfg,
			struct townd_db *db, const struct gmp_keypair *town_key, char *err,
			size_t errlen);
void townd_upstream_free(struct townd_upstream *u);
/* The epoll instance and the token of the upstream socket. */
void townd_upstream_attach(struct townd_upstream *u, int epfd, uint64_t token);
/* Events of that token; call between batches (outside the ingest transaction). */
void townd_upstream_event(struct townd_upstream *u, uint32_t events, int64_t mono_ms,
			  int64_t real_s);
/*
 * Timers and bounded work: connect, build hours, put closed hours into
 * the outbox, administrative mode, retention, counters. Between batches.
 * 0, or -1 when the database failed (townd stops, like the core).
 */
int townd_upstream_tick(struct townd_upstream *u, int64_t mono_ms, int64_t real_s);
/* Work left for the next tick right away (a bounded step stopped early). */
bool townd_upstream_busy(const struct townd_upstream *u);
/* Write the counters now (clean stop). */
int townd_upstream_save(struct townd_upstream *u);

/*
 * The town's grid capacity as maind last set it by GMP_SUPPLY (persisted,
 * also readable by anyone with the database: tup_supply_get()). 1 with
 * *watts, 0 if maind never set one, -1 on a database error.
 */
int townd_supply_capacity(struct townd_db *db, int64_t *watts);

static inline bool townd_upstream_admin(const struct townd_upstream *u)
{
	return u->admin;
}

#endif
