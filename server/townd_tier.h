/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A town server's client link to a server of the tier network: the main
 * server (townd_upstream.c), or a neighbour town. One TCP connection
 * carrying link frames (gm_frame stream codec), a gmproto client (`gmpc`,
 * lib/proto/gmp_client.c) with its own outbox directory, exactly as a
 * meter talks to its town: HELLO/WELCOME with fresh randoms, store and
 * forward, acknowledgements, commands down.
 *
 * Driven by the owner's epoll loop: townd_tier_attach() gives it the epoll
 * descriptor and the token its socket is registered under (the tier adds,
 * modifies and removes the registration itself as it reconnects); the
 * owner calls townd_tier_event() for events of that token and
 * townd_tier_tick() at least every second (and by townd_tier_deadline()).
 * Connecting is non-blocking; a failed or dropped connection is tried
 * again after a back-off (reconnect_min_ms doubling up to reconnect_max_ms,
 * x uniform(0.5, 1.5)); a route gmpc finds broken (acks missing) is
 * dropped and made again. Nothing here blocks but the outbox's fdatasync.
 */
#ifndef TOWND_TIER_H
#define TOWND_TIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gm_frame.h"
#include "gmp_client.h"
#include "outbox.h"

#define TOWND_TIER_OUT_MAX	(256 * 1024)	/* unsent bytes before sends wait */

struct townd_tier_config {
	char name[32];				/* "upstream", "neighbour 7": log lines */
	struct sockaddr_storage addr;		/* the server */
	socklen_t addr_len;
	uint16_t own_id;			/* our id at the server (gmpc meter_id) */
	struct gmp_keypair key;			/* our long-term key pair (the town key) */
	uint8_t peer_pk[GMP_KEY_LEN];		/* the server's public key */
	char outbox[256];			/* outbox directory (created if missing) */
	uint64_t outbox_max_bytes;
	uint32_t reconnect_min_ms;		/* first back-off (1000) */
	uint32_t reconnect_max_ms;		/* cap (60000) */
	uint32_t connect_timeout_ms;		/* a connect not answered by then fails (10000) */
	/* timers of the client (townd_tier_defaults: gmpc's, acks asked for every frame) */
	struct gmpc_config gmpc;
};

struct townd_tier_hooks {
	void *ctx;
	/* A command from the server in tseq order, once: its enum gmp_cmd_status. */
	int (*command)(void *ctx, const struct gmp_msg *m);
	/* After each WELCOME (rebase and rewind in it: the owner's bookkeeping). */
	void (*welcome)(void *ctx, const struct gmpc_welcome *w);
	/* The outbox's acknowledged seq moved (to c->ob->acked). */
	void (*acked)(void *ctx, uint64_t acked);
	/* A journal line (syslog priority). */
	void (*log)(void *ctx, int level, const char *msg);
};

enum townd_tier_state {
	TIER_IDLE,		/* no socket; a connect is due at reconnect_at */
	TIER_CONNECTING,	/* non-blocking connect under way */
	TIER_CONNECTED,
};

struct townd_tier {
	struct townd_tier_config cfg;
	struct townd_tier_hooks hooks;
	struct outbox ob;
	struct gmpc c;
	enum townd_tier_state state;
	int fd;
	int epfd;			/* -1: not attached */
	uint64_t token;
	uint32_t ev;			/* events registered */
	int64_t reconnect_at;		/* mono ms */
	uint32_t backoff_ms;		/* the next back-off */
	int64_t connected_at;		/* mono ms, 0: not connected */
	int64_t connect_started;	/* mono ms of the connect under way */
	uint16_t frame_seq;
	uint64_t acked_seen;
	struct gm_rx rx;
	uint8_t *out;
	size_t out_len, out_cap;
	/* counters */
	uint64_t connects, connect_failures, disconnects;
	uint64_t bytes_out, bytes_in, frames_out, frames_in, frames_refused;
};

/* Defaults: back-off 1 s .. 60 s, gmpc's timers with an ack asked for every frame. */
void townd_tier_defaults(struct townd_tier_config *cfg);
/* Opens the outbox and the client. 0, or -1 with err. Not connected yet. */
int townd_tier_open(struct townd_tier *t, const struct townd_tier_config *cfg,
		    const struct townd_tier_hooks *hooks, char *err, size_t errlen);
void townd_tier_close(struct townd_tier *t);
/* The epoll instance and token of this tier's socket (before the first tick). */
void townd_tier_attach(struct townd_tier *t, int epfd, uint64_t token);
/* Events of the token. */
void townd_tier_event(struct townd_tier *t, uint32_t events, int64_t mono_ms, int64_t real_ms);
/* Connect when due, the client's timers, send what is due. */
void townd_tier_tick(struct townd_tier *t, int64_t mono_ms, int64_t real_ms);
/* When townd_tier_tick() next has something to do (mono ms). */
int64_t townd_tier_deadline(const struct townd_tier *t);
/*
 * A record (GMP_HOUR, GMP_TOWN_HOUR, GMP_LOAN, ...) into the outbox:
 * gmpc_record(), not synced one by one: townd_tier_sync() after a batch
 * (townd_tier_pump() syncs before it sends anything). A crash before the
 * sync loses the batch's tail: the outbox reopens with gmpc_next() at its
 * first lost record, which the owner's bookkeeping must expect.
 */
int townd_tier_record(struct townd_tier *t, struct gmp_msg *m);
/* Make the records appended so far durable. 0 or -errno. */
int townd_tier_sync(struct townd_tier *t);
/* Send what is due now (after records were added). */
void townd_tier_pump(struct townd_tier *t, int64_t mono_ms, int64_t real_ms);
static inline bool townd_tier_connected(const struct townd_tier *t)
{
	return t->state == TIER_CONNECTED;
}
/* A session with the server is up (WELCOME received, not broken). */
static inline bool townd_tier_up(const struct townd_tier *t)
{
	return t->state == TIER_CONNECTED && t->c.state == GMPC_UP;
}
static inline struct gmpc *townd_tier_client(struct townd_tier *t)
{
	return &t->c;
}

#endif
