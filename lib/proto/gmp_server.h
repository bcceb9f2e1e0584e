/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The server end of a gmproto v2 tier link (Documentation/protocol.md,
 * Documentation/maind.md): a town's link to the main server (maind) and a
 * town's link to a neighbour town (townd). The client end is gmpc
 * (gmp_client.h), unchanged: a town talks to the server above it exactly
 * as a meter talks to its town.
 *
 * What it does, modelled on townd's ingest core (server/townd_core.c):
 *  - HELLO (sealed under the peer's long-term key, current or next, and
 *    ours, current or next) -> WELCOME with a fresh random and a new
 *    session; sessions and their counters live in this process's memory
 *    only, so no restart or restored database can repeat a (key, nonce)
 *    pair. A HELLO seen before (the peer's HELLO memory, persisted) is
 *    refused; the same HELLO again while its session is held gets the same
 *    WELCOME (a second route) and changes nothing.
 *  - what a HELLO reports (command floor, next_seq, first_held, flags) is
 *    acted on only when the peer's first session frame proves it fresh;
 *  - a session frame of a session we do not hold gets a REHELLO (at most
 *    every GMPS_REHELLO_EVERY_S per peer);
 *  - records are handed to storage in seq order, each exactly once
 *    (upto, plus a 64-record window of what is stored above it); a record
 *    after a missing one is not stored (the client's go-back-N resends);
 *    lost ranges raise upto;
 *  - acknowledgements (cumulative upto + the peer's unsettled commands)
 *    are prepared in the batch's transaction and sealed and sent only
 *    after the commit hook returned 0: nothing is acknowledged that is not
 *    committed;
 *  - commands are resent in every acknowledgement until their result
 *    comes; the client runs each once (its floor). The peer's floor from
 *    a confirmed HELLO goes to the reconcile hook (the storage renumbers
 *    or re-issues, as townd does for its meters).
 *
 * Storage is behind hooks (no SQL here): maind keeps it in PostgreSQL,
 * townd in SQLite. Every hook that writes is called inside the batch's
 * transaction, opened by the begin hook before the first write of a
 * batch; gmps_flush() commits it. When a hook fails the batch is rolled
 * back and gmps_flush() returns -1: the in-memory state is then no longer
 * trustworthy and the owner must gmps_free() and start again from storage
 * (maind exits and is restarted).
 *
 * Which messages a peer may send: records of class GMP_CLASS_TIER_UP
 * (gmp_is_record must be true for them), GMP_KEY_ROTATE, GMP_LOST and
 * GMP_CMD_RESULT. Anything else refuses the whole frame (counted as
 * malformed). A peer's id is its link id (1..65534).
 *
 * No I/O (the send hook writes frames), no clock reads (time is passed
 * in), no global state. Call sodium_init() once first.
 */
#ifndef GM_GMP_SERVER_H
#define GM_GMP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gm_frame.h"
#include "gmproto.h"

#define GMPS_SESSIONS		4	/* sessions held per peer */
#define GMPS_HELLOS		16	/* recent HELLO randoms remembered per peer */
#define GMPS_HELLO_ID		16	/* bytes of each remembered */
#define GMPS_CMDS_PER_ACK	8	/* unsettled commands sent with one acknowledgement */
#define GMPS_REHELLO_EVERY_S	10	/* REHELLOs to one peer at most this often */
#define GMPS_UNKNOWN_RECHECK_S	10	/* an unknown id is looked up again after */
#define GMPS_MSGS_PER_FRAME	(GMP_PLAIN_MAX / 3 + 1)

/*
 * A peer as storage keeps it. lookup fills it; save gets it back (in the
 * transaction) whenever something in it changed. The HELLO memory is
 * opaque to storage: keep the bytes.
 */
struct gmps_peer_state {
	uint16_t id;
	uint8_t pk[GMP_KEY_LEN];		/* the peer's public key */
	uint8_t pk_next[GMP_KEY_LEN];		/* its announced next key (GMP_KEY_ROTATE) */
	bool has_next;
	bool revoked;				/* frames refused, sessions dropped */
	int64_t upto;				/* every record <= upto is stored */
	int64_t cmd_floor;			/* highest command tseq the peer settled */
	int64_t last_seen;			/* UTC s of its last authentic frame */
	uint8_t n_hellos;			/* HELLO memory, newest first */
	uint8_t hellos[GMPS_HELLOS][GMPS_HELLO_ID];
};

/* What a HELLO said, handed over once its session is confirmed. */
struct gmps_hello {
	int64_t peer_ms;		/* the peer's clock (UTC ms) */
	bool clock_trusted;
	int64_t cmd_floor;		/* highest command tseq handled */
	int64_t next_seq;		/* the peer's next record sequence */
	int64_t first_held;		/* its oldest record not acknowledged */
	int64_t flags;			/* GMP_HELLO_* */
	int64_t upto;			/* what we held then: backlog = next_seq - 1 - upto */
};

struct gmps_hooks {
	void *ctx;
	/* A peer by id: 1 found (out filled), 0 unknown, -1 storage error. Required. */
	int (*lookup)(void *ctx, uint16_t id, struct gmps_peer_state *out);
	/* Open the batch's transaction. 0 or -1. NULL: storage has none. */
	int (*begin)(void *ctx);
	/*
	 * Store n records of peer id (consecutive seqs from upto + 1, in
	 * order, never one stored before), received at now (UTC s). 0 or -1.
	 * Required.
	 */
	int (*records)(void *ctx, uint16_t id, const struct gmp_msg *m, size_t n, int64_t now);
	/* Records first..last of peer id will never come. 0 or -1. NULL: ignored. */
	int (*lost)(void *ctx, uint16_t id, int64_t first, int64_t last, int64_t now);
	/* A command's outcome (enum gmp_cmd_status). 0 or -1. NULL: ignored. */
	int (*result)(void *ctx, uint16_t id, int64_t tseq, int64_t status, int64_t now);
	/*
	 * A fresh HELLO, confirmed by the session's first frame: reconcile
	 * the commands with the peer's floor h->cmd_floor (renumber pending
	 * ones above it when it is above what storage knows, re-issue what
	 * the peer lost when below), note the backlog. 0 or -1. NULL: ignored.
	 */
	int (*hello)(void *ctx, uint16_t id, const struct gmps_hello *h, int64_t now);
	/*
	 * The tseq the next command to the peer will carry, given its floor
	 * (the WELCOME's cmd_next): the lowest unsettled one, else one above
	 * everything issued, and never <= floor. 0 or -1. NULL: floor + 1.
	 */
	int (*cmd_next)(void *ctx, uint16_t id, int64_t floor, int64_t *next);
	/*
	 * Up to max unsettled commands (no result, or GMP_CMD_STORAGE) of
	 * peer id in tseq order, each with its tseq set: the count, or -1.
	 * Called in the transaction while an acknowledgement is prepared.
	 * NULL: no commands.
	 */
	int (*commands)(void *ctx, uint16_t id, struct gmp_msg *out, size_t max, int64_t now);
	/* Persist the peer's state (in the transaction). 0 or -1. Required. */
	int (*save)(void *ctx, const struct gmps_peer_state *p);
	/* Commit the transaction. 0, or -1 (nothing is acknowledged). Required. */
	int (*commit)(void *ctx);
	/* Roll the transaction back (after a failure). NULL: nothing. */
	void (*rollback)(void *ctx);
	/* One link frame (wire bytes) for connection conn. Required. */
	void (*send)(void *ctx, uint64_t conn, const uint8_t *wire, size_t len);
	/* A journal line; level is a syslog priority. NULL: none. */
	void (*log)(void *ctx, int level, const char *msg);
};

struct gmps_stats {
	uint64_t frames, not_for_us, unknown_peer, revoked, bad_version, truncated;
	uint64_t auth_failed, replayed, malformed;
	uint64_t hellos, hello_dups, welcomes, confirmed, no_session, rehellos;
	uint64_t stored, duplicates, ahead, lost, cmd_results, acks;
};

/* What gmps_frame() made of a frame. */
enum gmps_verdict {
	GMPS_REJECTED = 0,	/* not authentic, or not for us: must not keep a connection alive */
	GMPS_AUTHENTIC = 1,	/* opened under a peer's key */
	GMPS_DUPLICATE = 2,	/* a HELLO of a session already made: answered, proves nothing */
};

struct gmps_peer;	/* in memory: state, sessions, what to send */

struct gmps {
	struct gmps_hooks h;
	uint16_t own_id;			/* our link id (GM_ID_SERVER) */
	struct gmp_keypair key, key_next;
	bool have_key_next;
	struct gmps_peer **peers;		/* [65536] */
	uint32_t *unknown_checked;		/* [65536] last look-up (s) of unknown ids */
	uint16_t *pending;			/* peers with work for the flush */
	size_t n_pending;
	bool in_tx, failed;
	uint16_t tx_seq;			/* link-frame sequence */
	struct gmps_stats st;
	struct gmp_msg msgs[GMPS_MSGS_PER_FRAME];	/* decode scratch */
};

/*
 * own: our long-term key pair; own_id: our link id (frames are accepted
 * only when addressed to it; GM_ID_SERVER for a server). 0, or -1 (hooks
 * missing, out of memory).
 */
int gmps_init(struct gmps *s, const struct gmp_keypair *own, uint16_t own_id,
	      const struct gmps_hooks *h);
void gmps_free(struct gmps *s);
/* Our next key pair (a rotation under way: HELLOs under it are accepted), or NULL. */
void gmps_set_next_key(struct gmps *s, const struct gmp_keypair *next);
/*
 * One link frame received on connection conn (the token handed back to
 * the send hook) at now_ms (UTC ms). Returns enum gmps_verdict: only
 * GMPS_AUTHENTIC may keep a connection alive.
 */
int gmps_frame(struct gmps *s, uint64_t conn, const struct gm_hdr *h, const uint8_t *payload,
	       size_t len, int64_t now_ms);
/*
 * End of a batch: persist the peers' state, commit, then seal and send
 * acknowledgements (with the unsettled commands), WELCOMEs and REHELLOs.
 * 0, or -1 when storage failed (rolled back; see above).
 */
int gmps_flush(struct gmps *s, int64_t now_ms);
/*
 * Send peer id its unsettled commands now (an acknowledgement on its
 * latest session and connection) at the next flush, e.g. after a command
 * was queued. 0, or -1 when it holds no session.
 */
int gmps_kick(struct gmps *s, uint16_t id);
/*
 * Forget what is cached of peer id (-1: of every peer): its keys or
 * state changed in storage; it is looked up again at its next frame and
 * its sessions are dropped (it gets a REHELLO). Call between batches.
 */
void gmps_forget(struct gmps *s, int id);
/* Whether peer id holds a session that saw a frame (for status displays). */
bool gmps_connected(const struct gmps *s, uint16_t id);

#endif
