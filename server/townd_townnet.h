/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The town network of one town (Documentation/town-network.md): its loans
 * (townd_loans.c) carried over gmproto tier links to its neighbours.
 *
 *  - one client link per neighbour (townd_tier.c: TCP, reconnection, gmpc
 *    with its own outbox): this town's loan-ask/accept/hold/return go up it
 *    as records; the neighbour's loan-offer/confirm/end come down it as
 *    commands;
 *  - one listener where the neighbours' clients connect, served by a
 *    gmp_server (lib/proto/gmp_server.c) whose storage is townd's SQLite
 *    (townnet_peers, townnet_commands): their records come in exactly once,
 *    this town's answers to them are queued as commands and delivered until
 *    they have a result;
 *  - the loans' state saved (townd_loans_db.c) after every change.
 *
 * Driven by the owner's epoll loop like townd_upstream.c: its descriptors
 * are registered under tokens base | index (townd_townnet_owns()), the
 * owner hands their events to townd_townnet_event() and calls
 * townd_townnet_tick() at least once a second, never inside another
 * transaction on the database.
 */
#ifndef TOWND_TOWNNET_H
#define TOWND_TOWNNET_H

#include <stdbool.h>
#include <stdint.h>

#include "gm_frame.h"
#include "gmp_server.h"
#include "townd_config.h"
#include "townd_db.h"
#include "townd_loans.h"
#include "townd_tier.h"

#define TOWND_TOWNNET_CONNS	(2 * TOWND_NEIGHBOUR_MAX)	/* neighbours' connections */
#define TOWND_TOWNNET_TOKENS	(1 + TOWND_NEIGHBOUR_MAX + TOWND_TOWNNET_CONNS)

struct townd_townnet_hooks {
	void *ctx;
	/* A GMP_LOAN record for the main server (seq 0): into the upstream outbox. */
	void (*report)(void *ctx, struct gmp_msg *loan);
	/*
	 * Once a second: how much the town wants to hold borrowed and what it
	 * could lend (see the end of townd_loans.h for the allocation's part).
	 */
	void (*balance)(void *ctx, int64_t borrowed_w, int64_t lent_w, int64_t *need_w,
			int64_t *surplus_w);
	/* A journal line (syslog priority). May be NULL. */
	void (*log)(void *ctx, int level, const char *msg);
};

struct townd_townnet_conn {
	int fd;				/* -1: free */
	struct gm_rx rx;
	uint8_t *out;
	size_t out_len, out_cap;
	bool authentic;
	int64_t since_ms;		/* mono: accepted, or last authentic frame */
};

struct townd_townnet;

struct townd_townnet_link {
	struct townd_townnet *tn;
	int i;				/* neighbour index in cfg->tn.nb */
};

struct townd_townnet {
	const struct townd_config *cfg;
	struct townd_db *db;
	struct townd_townnet_hooks h;
	struct townd_loans loans;
	int n;				/* neighbours */
	struct townd_tier tier[TOWND_NEIGHBOUR_MAX];
	bool tier_open[TOWND_NEIGHBOUR_MAX];
	struct townd_townnet_link link[TOWND_NEIGHBOUR_MAX];
	struct gmps srv;
	bool srv_open;
	int lfd;
	int epfd;
	uint64_t base;			/* token base */
	struct townd_townnet_conn conn[TOWND_TOWNNET_CONNS];
	int64_t now;			/* UTC s of the event being handled */
	int64_t surplus_w;		/* from the last balance */
	uint64_t saved;			/* loans.changes last saved */
	bool failed;			/* storage failed: the owner stops */
	uint8_t *buf;
	/* counters */
	uint64_t reports, conns_accepted, conns_refused, cmds_queued;
};

/*
 * Open the links of cfg's [town_network] and [neighbour ID] sections (no
 * neighbours: nothing to do, 0) and restore the saved loans. The listener
 * is cfg->tn.listen, or listen_fd when >= 0 (already bound). 0, or -1 with
 * err.
 */
int townd_townnet_init(struct townd_townnet *t, const struct townd_config *cfg,
		       struct townd_db *db, const struct gmp_keypair *town_key,
		       const struct townd_townnet_hooks *h, int listen_fd, char *err,
		       size_t errlen);
void townd_townnet_free(struct townd_townnet *t);
/* Register the descriptors on epfd under tokens base .. base + TOWND_TOWNNET_TOKENS - 1. */
int townd_townnet_attach(struct townd_townnet *t, int epfd, uint64_t base);
static inline bool townd_townnet_owns(const struct townd_townnet *t, uint64_t token)
{
	return t->epfd >= 0 && token >= t->base && token < t->base + TOWND_TOWNNET_TOKENS;
}
/* Events of one of its tokens. 0, or -1 when the database failed. */
int townd_townnet_event(struct townd_townnet *t, uint64_t token, uint32_t events,
			int64_t mono_ms, int64_t real_ms);
/* Timers, keepalives, reconnections, the balance with the allocation. 0 or -1. */
int townd_townnet_tick(struct townd_townnet *t, int64_t mono_ms, int64_t real_ms);

/* The SQLite tables of the server side (CREATE TABLE IF NOT EXISTS). 0 or -1. */
int townd_townnet_schema(struct townd_db *db);

#endif
