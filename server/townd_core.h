/* SPDX-License-Identifier: GPL-2.0 */
/*
 * townd ingest core, independent of sockets: one decoded link frame in,
 * authenticated, decrypted, stored exactly once, acknowledgements out.
 * The network loop (townd_net.c), tests and benchmarks drive it.
 *
 * gmproto v2: a HELLO (sealed under the meter's long-term key) gets a
 * WELCOME with a new session whose keys come from both ends' randoms;
 * sessions and their counters live in this process's memory only, so a
 * restart or a restored database can never send a used (key, nonce)
 * again. A session frame of a session we do not hold gets a REHELLO.
 *
 * Batching: frames are processed inside one SQLite transaction, begun by
 * the first authentic frame that changes something; townd_core_flush()
 * prepares the acknowledgements, commits, and only then seals and hands
 * the frames to the caller, so nothing is acknowledged that is not on
 * disk. Unauthenticated input writes nothing: rejections are counted in
 * memory and persisted with authentic work or every TOWND_STATS_EVERY_S.
 */
#ifndef TOWND_CORE_H
#define TOWND_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "gm_frame.h"
#include "gmproto.h"
#include "townd_alloc.h"
#include "townd_db.h"
#include "townd_reports.h"

#define TOWND_MSGS_PER_FRAME	(GMP_PLAIN_MAX / 3 + 1)	/* smallest message: 3 bytes */
#define TOWND_SESSIONS		4	/* sessions held per meter */
#define TOWND_STATS_EVERY_S	60	/* counters of rejected input persisted at most this often */
#define TOWND_REHELLO_EVERY_S	10	/* REHELLOs to one meter at most this often */

struct townd_stats {
	uint64_t crc_errors, framing_errors;	/* on the byte streams */
	uint64_t frames, not_for_us, unknown_meter, auth_failed, replayed,
		 truncated, malformed, stored, duplicates, acks;
	uint64_t ahead;		/* records after a missing one: not stored, resent later */
	uint64_t bad_version;	/* envelopes of another protocol version (e.g. 1) */
	uint64_t revoked;	/* frames of revoked meters */
	uint64_t hellos, welcomes, hello_dups;	/* handshakes (a HELLO again via another route) */
	uint64_t confirmed;	/* sessions whose first frame came: their HELLO was fresh */
	uint64_t no_session, rehellos;	/* session frames without a session, answers */
	uint64_t lost, cmd_results, rebased;
	/* the network loop's (townd_net.c) */
	uint64_t conn_refused;		/* max_connections reached, or no descriptor */
	uint64_t addr_refused;		/* max_per_address reached */
	uint64_t accept_errors;		/* accept4 failed (EMFILE, ENFILE, ENOBUFS...) */
	uint64_t first_frame_timeouts;	/* no authentic frame within first_frame_timeout */
	uint64_t idle_timeouts;		/* no authentic frame within idle_timeout */
};

/* One session of a meter, in memory only. */
struct townd_session {
	struct gmp_session s;		/* s.up false: a free slot */
	uint8_t rm[GMP_RAND_LEN], rt[GMP_RAND_LEN];
	uint8_t mk, tk;			/* meter key, town key it was made under (0 current, 1 next) */
	int64_t created, last_rx;	/* UTC s; last_rx 0: no frame on it yet */
	/*
	 * What the HELLO reported, acted on (commands reconciled, the
	 * journal) only when the meter's first frame in the session proves
	 * the HELLO fresh: a replayed old HELLO gets a WELCOME nobody can
	 * use and changes nothing.
	 */
	bool confirmed;
	bool hs_clock_trusted;
	int64_t hs_cmd_floor, hs_next_seq, hs_flags;
};

struct townd_meter {
	uint16_t id;
	uint8_t pk[GMP_KEY_LEN], pk_next[GMP_KEY_LEN];
	bool have_pk_next, revoked;
	struct gmp_lt lt;		/* (pk, current town key), cached */
	struct townd_session ses[TOWND_SESSIONS];
	int reply;			/* slot the meter used last: acks go there (-1 none) */
	uint8_t next_sid;
	int64_t upto;			/* every record <= upto is stored */
	uint64_t win;			/* bit i: record upto + 1 + i is stored */
	int64_t last_seen;
	int64_t cmd_floor;
	struct townd_regview rv;	/* register view (persisted with upto) */
	int64_t rehello_at;		/* last REHELLO (s) */
	uint64_t rejected;		/* not yet persisted */
	uint64_t ack_conn, hs_conn, rehello_conn;	/* connection tokens for the answers */
	int welcome_slot;		/* a WELCOME to send from this slot (-1 none) */
	int64_t welcome_cmd_next;
	bool pending;			/* in the core's pending list */
	bool changed;			/* authentic changes to persist */
	bool ack_pending, rehello_pending;
};

struct townd_core {
	struct townd_db db;
	struct gmp_keypair key, key_next;	/* the town's key pair, and the next one */
	bool have_key_next;
	char key_file[256];		/* "" unless townd_core_set_key_file() */
	struct townd_meter *meters[65536];
	uint32_t unknown_checked[65536];	/* last DB look-up (s), unknown ids */
	uint16_t *pending;			/* meters with work for flush */
	size_t n_pending;
	uint16_t tx_seq;			/* link-frame sequence of the server */
	struct townd_stats st, st_saved;
	int64_t stats_saved_at;			/* s */
	uint32_t stats_every_s;			/* TOWND_STATS_EVERY_S, or townd.conf's stats_interval */
	int64_t changes, changes_checked;	/* the database's changes counter, and when read */
	size_t n_meters;
	bool db_failed;				/* the batch cannot be committed */
	/* the real clock in ms (the WELCOME's time); tests replace it */
	int64_t (*clock_ms)(void *ctx);
	void *clock_ctx;
	struct gmp_msg msgs[TOWND_MSGS_PER_FRAME];	/* decode scratch */
	/* allocation inside the town (townd_core_alloc.c) */
	struct townd_alloc alloc;
	bool alloc_supply_set;			/* a GMP_SUPPLY capacity to persist */
	int64_t alloc_supply_w;
	int64_t alloc_pruned_at;		/* s */
	/* security counts for the main server (townd_reports.h), written once a minute */
	struct townd_sec sec;
	uint32_t frame_addr;			/* IPv4 (host order) of the frame's peer, 0 unknown:
						 * the network loop sets it before townd_core_frame() */
};

/* What townd_core_frame() made of a frame. */
enum townd_verdict {
	TOWND_REJECTED = 0,	/* not authentic (or not for us): must not refresh timers */
	TOWND_AUTHENTIC = 1,	/* opened under a meter's key */
	/*
	 * A HELLO of a session already made, answered with its WELCOME again:
	 * the same HELLO by a second route, or a captured one replayed. Proves
	 * nothing fresh: must not refresh timers either.
	 */
	TOWND_DUPLICATE = 2,
};

/*
 * Commands queued outside the meter's own traffic (an allocation decision
 * that changed its grant): an ack carrying them goes out at the next
 * townd_core_flush() over the connection the meter last asked an ack on,
 * if it holds a session; otherwise they wait for its next ack.
 */
void townd_core_kick(struct townd_core *c, uint16_t id);

/* Callback for each sealed frame after the commit. */
typedef void (*townd_send_fn)(void *ctx, uint64_t conn, const uint8_t *wire, size_t len);

int townd_core_init(struct townd_core *c, const char *db_path, int sync_full,
		    const struct gmp_keypair *key, char *err, size_t errlen);
/*
 * Where the town key came from: path.next, when it exists, is the next
 * key of a rotation (townctl rotate-town-key); both are read again when
 * townctl changes something. 0, or -1 with err.
 */
int townd_core_set_key_file(struct townd_core *c, const char *path, char *err, size_t errlen);
void townd_core_free(struct townd_core *c);
/*
 * One valid link frame received on connection token conn at time now (s).
 * Returns enum townd_verdict: only TOWND_AUTHENTIC traffic may keep a
 * connection alive (Documentation/townd.md).
 */
int townd_core_frame(struct townd_core *c, uint64_t conn, const struct gm_hdr *h,
		     const uint8_t *payload, size_t len, int64_t now);
/*
 * Persist, commit, then seal and send acks, WELCOMEs and REHELLOs. -1 if
 * the database failed: the batch is rolled back and the in-memory state is
 * no longer trustworthy; the caller must exit (townd does; systemd
 * restarts it).
 */
int townd_core_flush(struct townd_core *c, townd_send_fn send, void *ctx);
/*
 * Persist the counters now if they changed (the network loop: every
 * stats_interval and at a clean stop; call between batches). 0 or -1.
 */
int townd_core_save(struct townd_core *c);

/* ---- allocation (townd_core_alloc.c, Documentation/townd.md "Allocation") ---- */
/*
 * The allocation's configuration ([town] keys); reloads the allocator's
 * state from the database. townd_core_init() starts with the defaults.
 */
int townd_core_alloc_config(struct townd_core *c, const struct ta_cfg *cfg, char *err,
			    size_t errlen);
/*
 * Decide when due (requests ended, pool changed by the setters below) and
 * queue the grants, in a transaction of its own; townd_core_flush() decides
 * too, before the acknowledgements, so a requesting meter gets its grant
 * with the ack of its request. The network loop calls this at least every
 * second. 0, or -1 if the database failed (exit, as for flush).
 */
int townd_core_alloc_tick(struct townd_core *c);
/* The main server's GMP_SUPPLY: the town's grid capacity (kept across restarts). */
void townd_core_set_capacity(struct townd_core *c, int64_t capacity_w);
/*
 * Borrowing (townd_loans): townd_alloc_shortfall(&c->alloc) is what the
 * town lacks; townd_alloc_set_borrowed(&c->alloc, W) / _set_lent(...)
 * change the pool; the next tick or flush decides.
 */
/* Called by the core for each newly stored alloc-request / alloc-release. */
void townd_core_alloc_record(struct townd_core *c, uint16_t meter, const struct gmp_msg *g,
			     int64_t now);
/* In flush, inside the batch's transaction. 0 or -1. */
int townd_core_alloc_decide(struct townd_core *c, int64_t now);

/* Key file: one line, the secret key in hex; must not be group/world readable. */
int townd_key_load(const char *path, struct gmp_keypair *kp, char *err, size_t errlen);
int townd_key_write(const char *path, const struct gmp_keypair *kp, char *err, size_t errlen);

#endif
