/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The client end of gmproto (version 2) over an uplink
 * (Documentation/protocol.md): meterd's link to its town server, and later
 * a town server's own link upstream.
 *
 * - Handshake: HELLO with a fresh random, WELCOME with the server's; the
 *   session keys come from both, counters live in memory only. A new
 *   handshake at start, after REHELLO, after a route change, when
 *   acknowledgements stop coming, and every session_lifetime_ms.
 * - Records go to the outbox first (or, while the disk refuses writes, to
 *   a small volatile tail in memory), then out in order; acknowledgements
 *   release them; missing acknowledgements resend (go-back-N) and mark
 *   the route broken so the owner can fail over.
 * - Resynchronisation from each WELCOME: the server's upto renumbers this
 *   run's records above what the server already holds (rebase: our state
 *   was wiped or restored), or rewinds our acknowledged mark (the server's
 *   database was restored) and resends the retained records, reporting
 *   with `lost` what we no longer hold.
 * - Commands (grant, tariff, town key) are handed to the owner strictly in
 *   tseq order, once; the owner's status goes back in a cmd-result after
 *   the new floor is on disk.
 *
 * No I/O of its own (the send hook writes frames), no clock reads (time is
 * passed in: monotonic for timers, real for the HELLO and the time
 * sample), no global state.
 */
#ifndef GM_GMP_CLIENT_H
#define GM_GMP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gmproto.h"
#include "outbox.h"

#define GMPC_VOLATILE	1	/* gmpc_record(): held in memory, not yet on disk */
#define GMPC_RESULTS_MAX 16	/* command results waiting for a frame */

struct gmpc_config {
	uint16_t meter_id;		/* this client's link id */
	struct gmp_keypair key;		/* its long-term key pair */
	uint8_t town_pk[GMP_KEY_LEN];	/* the server's public key */
	bool have_town_pk_next;		/* a town key rotation is under way: */
	uint8_t town_pk_next[GMP_KEY_LEN];	/* the server's next public key */
	uint32_t ack_every;		/* request an ack every N frames (8) */
	uint32_t ack_timeout_ms;	/* an ack requested must come by then (30000) */
	uint32_t broken_after;		/* missed acks or WELCOMEs before the route is broken (2) */
	uint32_t batch;			/* records per frame in a backlog (20) */
	uint32_t window;		/* records in flight unacknowledged (400) */
	uint32_t idle_ack_ms;		/* ask for an ack when records wait (600000); keep > ack_every x interval */
	uint32_t hello_retry_ms;	/* first HELLO retry (5000), doubled per try, jittered */
	uint32_t hello_retry_max_ms;	/* cap of the HELLO retry (300000) */
	uint32_t rehello_min_ms;	/* a REHELLO starts no handshake sooner than this after one (10000) */
	uint32_t max_rtt_ms;		/* a WELCOME's time is used only within this round trip (30000) */
	uint32_t session_lifetime_ms;	/* rekey (and a new time sample) after (86400000) */
	uint32_t tail_max;		/* records held in memory while the disk refuses (256) */
};

/* What a WELCOME brought, for the owner (after the client acted on it). */
struct gmpc_welcome {
	uint8_t sid;
	bool town_key_next;		/* it opened under the next town key: promote it */
	bool time_ok;			/* the round trip was short enough for the sample */
	int64_t rtt_ms;			/* HELLO sent -> WELCOME received (monotonic) */
	int64_t town_now_ms;		/* the server's clock in the WELCOME */
	int64_t offset_ms;		/* town_now + rtt/2 - our real time at reception */
	int64_t uncertainty_ms;		/* rtt/2 + 1 */
	int64_t upto;			/* the server holds every record <= upto */
	int64_t cmd_next;
	int64_t reg_import_mwh, reg_export_mwh, reg_renew_mwh, reg_time;	/* register view */
	uint64_t rebase_from, rebase_delta;	/* records renumbered (delta 0: none) */
	bool rewound;			/* the server had lost acknowledged records */
};

struct gmpc_hooks {
	void *ctx;
	/* One sealed payload as a link frame to the server (GM_TYPE_DATA,
	 * flags as given): 0, -EAGAIN (try again later), or -errno. */
	int (*send)(void *ctx, unsigned int flags, const uint8_t *payload, size_t len);
	/* A command (GMP_GRANT, GMP_TARIFF, GMP_TOWN_KEY) in tseq order, once:
	 * returns its enum gmp_cmd_status. NULL: every command UNSUPPORTED. */
	int (*command)(void *ctx, const struct gmp_msg *m);
	/* After each accepted WELCOME. */
	void (*welcome)(void *ctx, const struct gmpc_welcome *w);
	/* Journal line; level is a syslog priority. */
	void (*log)(void *ctx, int level, const char *msg);
};

enum gmpc_state {
	GMPC_NONE,		/* no session; a HELLO is due at hello_due */
	GMPC_HANDSHAKING,	/* a HELLO is out, waiting for its WELCOME */
	GMPC_UP,		/* session up */
};

struct gmpc_rec {
	uint64_t seq;
	uint16_t len;
	uint8_t data[OUTBOX_REC_MAX];
};

struct gmpc_result {
	int64_t tseq, status;
};

struct gmpc {
	struct gmpc_config cfg;
	struct gmpc_hooks hooks;
	struct outbox *ob;
	struct gmp_lt lt, lt_next;	/* long-term keys under town_pk, town_pk_next */
	struct gmp_session s;
	enum gmpc_state state;
	/* handshake */
	uint8_t rm[GMP_RAND_LEN];	/* of the outstanding HELLO */
	bool hello_next_key;		/* ... sealed under the next town key */
	int64_t hello_sent;		/* mono ms the outstanding HELLO left */
	int64_t hello_due;		/* mono ms: send a HELLO (GMPC_NONE) or retry */
	int64_t hs_started;		/* mono ms this handshake began (REHELLO limit) */
	int64_t session_start;		/* mono ms of the WELCOME */
	uint32_t hello_tries;		/* in this handshake, for the back-off */
	bool clock_trusted;		/* for the HELLO (gmpc_set_status) */
	unsigned int hello_flags;	/* GMP_HELLO_STORE_NEW, GMP_HELLO_UNCLEAN */
	uint64_t start_next;		/* the outbox's next when this run started (S0) */
	bool welcomed;			/* a WELCOME came in this run */
	/* records in memory while the disk refuses them, seqs from ob->next on */
	struct gmpc_rec *tail;
	size_t n_tail;
	/* sending */
	uint64_t sent;			/* records up to here went out in this session/route */
	uint64_t frames;		/* frames sent (ack_every counting) */
	int64_t ack_due;		/* ms; INT64_MAX: no ack outstanding */
	int64_t idle_due;		/* unrequested records wait; ask by then */
	bool force_req;			/* the next frame asks for an ack */
	uint64_t req_upto;		/* records sent when the ack was asked */
	uint32_t missed;		/* acks (or WELCOMEs) missed in a row */
	bool broken;			/* route considered broken */
	struct gmpc_result results[GMPC_RESULTS_MAX];
	size_t n_results;
	/* counters */
	uint64_t acks, resends, rejected, handshakes, hellos, rehellos, rebases, rewinds;
	uint64_t commands, lost_sent, volatile_records;
};

void gmpc_config_defaults(struct gmpc_config *c);
/* 0, or -1 with err (bad keys or configuration). Starts with a HELLO due now. */
int gmpc_init(struct gmpc *c, const struct gmpc_config *cfg, const struct gmpc_hooks *hooks,
	      struct outbox *ob, char *err, size_t errlen);
/* Wipe keys, free the tail (records still in it are lost: they were never durable). */
void gmpc_free(struct gmpc *c);
/* For the next HELLO: is the clock trusted, GMP_HELLO_STORE_NEW / _UNCLEAN. */
void gmpc_set_status(struct gmpc *c, bool clock_trusted, unsigned int hello_flags);
/*
 * Store a record (reading, registers, alarm, alloc-*, key-rotate): assigns
 * its seq (m is updated), appends it durably. 0 when on disk; GMPC_VOLATILE
 * when the disk refused and it waits in memory (sent all the same, written
 * as soon as the disk takes it); -errno when it could not be queued at all
 * (the caller keeps its baseline and tries again).
 */
int gmpc_record(struct gmpc *c, struct gmp_msg *m);
/* Handshake or send what is due, in order. 0 or -errno (a send error). */
int gmpc_pump(struct gmpc *c, int64_t mono_ms, int64_t real_ms);
/*
 * A frame from the server addressed to this client. Returns 1 if it was
 * authentic and used, 0 if refused (counted in ->rejected).
 */
int gmpc_input(struct gmpc *c, unsigned int type, unsigned int flags, const uint8_t *payload,
	       size_t len, int64_t mono_ms, int64_t real_ms);
/* Timers: acknowledgement and HELLO timeouts, idle records, rekeying. */
void gmpc_tick(struct gmpc *c, int64_t mono_ms);
/* The next time gmpc_tick() has something to do (mono ms; INT64_MAX: none). */
int64_t gmpc_deadline(const struct gmpc *c);
/* The route changed (failover or back): a new handshake through it now. */
void gmpc_route_changed(struct gmpc *c, int64_t mono_ms);
/* Start a new handshake now (e.g. after the owner changed keys). */
void gmpc_rehandshake(struct gmpc *c, int64_t mono_ms);
/*
 * New long-term keys: the client's key pair and the server's key, and the
 * server's next key (NULL: none). The next handshake uses them. 0 or -1.
 */
int gmpc_set_keys(struct gmpc *c, const struct gmp_keypair *key,
		  const uint8_t town_pk[GMP_KEY_LEN], const uint8_t *town_pk_next);
/* Records held and not acknowledged (outbox and volatile tail). */
uint64_t gmpc_backlog(const struct gmpc *c);
/* The seq the next record gets. */
uint64_t gmpc_next(const struct gmpc *c);
const char *gmpc_state_name(enum gmpc_state s);

#endif
