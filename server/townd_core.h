/* SPDX-License-Identifier: GPL-2.0 */
/*
 * townd ingest core, independent of sockets: one decoded link frame in,
 * authenticated, decrypted, stored exactly once, acknowledgements out.
 * The network loop (townd_net.c), tests and benchmarks drive it.
 *
 * Batching: frames are processed inside one SQLite transaction;
 * townd_core_flush() seals the acknowledgements the batch asked for,
 * commits, and only then hands the acknowledgement frames to the caller,
 * so nothing is acknowledged that is not on disk.
 *
 * Frames that do not open write nothing: they are counted in memory
 * (stats, each meter's `rejected`), and the counters reach the database
 * with the next authentic work or through townd_core_save_stats(), which
 * the network loop calls every stats_interval and at stop.
 */
#ifndef TOWND_CORE_H
#define TOWND_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "gm_frame.h"
#include "gmproto.h"
#include "townd_db.h"

#define TOWND_CTR_RESERVE	1024	/* send counters reserved per DB write */
#define TOWND_MSGS_PER_FRAME	(GMP_PLAIN_MAX / 3 + 1)	/* smallest message: 3 bytes */

struct townd_stats {
	uint64_t crc_errors, framing_errors;	/* on the byte streams */
	uint64_t frames, not_for_us, unknown_meter, auth_failed, replayed,
		 truncated, malformed, stored, duplicates, acks;
	uint64_t ahead;		/* records after a missing one: not stored, resent later */
	/* the network loop's (townd_net.c) */
	uint64_t conn_refused;		/* max_connections reached, or no descriptor */
	uint64_t addr_refused;		/* max_per_address reached */
	uint64_t accept_errors;		/* accept4 failed (EMFILE, ENFILE, ENOBUFS...) */
	uint64_t first_frame_timeouts;	/* no authentic frame within first_frame_timeout */
	uint64_t idle_timeouts;		/* no authentic frame within idle_timeout */
};

struct townd_meter {
	struct gmp_session s;
	uint64_t tx_ceiling;		/* persisted; tx_ctr never passes it */
	int64_t upto;			/* every record <= upto is stored */
	uint64_t win;			/* bit i: record upto + 1 + i is stored */
	int64_t last_seen;
	int64_t time_sent;		/* last GMP_TIME to this meter */
	uint64_t rejected;		/* not yet persisted */
	uint64_t ack_conn;		/* connection token for the pending ack */
	uint16_t id;
	bool dirty, ack_pending, send_time;
};

struct townd_core {
	struct townd_db db;
	struct gmp_keypair key;
	struct townd_meter *meters[65536];
	uint32_t unknown_checked[65536];	/* last DB look-up (s), unknown ids */
	uint16_t *pending;			/* meters with work for flush */
	size_t n_pending;
	uint16_t tx_seq;			/* link-frame sequence of the server */
	struct townd_stats st, st_saved;
	size_t n_meters;
	bool db_failed;				/* the batch cannot be committed */
	struct gmp_msg msgs[TOWND_MSGS_PER_FRAME];	/* decode scratch */
};

/* Callback for each sealed acknowledgement frame after the commit. */
typedef void (*townd_send_fn)(void *ctx, uint64_t conn, const uint8_t *wire, size_t len);

int townd_core_init(struct townd_core *c, const char *db_path, int sync_full,
		    const struct gmp_keypair *key, char *err, size_t errlen);
void townd_core_free(struct townd_core *c);
/* What townd_core_frame() made of a frame. */
enum townd_verdict {
	TOWND_REJECTED = 0,	/* not authentic (or not for us): must not refresh timers */
	TOWND_AUTHENTIC = 1,	/* opened under a meter's key */
};

/*
 * One valid link frame received on connection token conn at time now (s).
 * Returns enum townd_verdict: only TOWND_AUTHENTIC traffic may keep a
 * connection alive (Documentation/townd.md).
 */
int townd_core_frame(struct townd_core *c, uint64_t conn, const struct gm_hdr *h,
		     const uint8_t *payload, size_t len, int64_t now);
/*
 * Seal acks, persist, commit, then send. -1 if the database failed: the
 * batch is rolled back and the in-memory state is no longer trustworthy;
 * the caller must exit (townd does; systemd restarts it).
 */
int townd_core_flush(struct townd_core *c, townd_send_fn send, void *ctx);
/*
 * Write the counters (stats and the meters' rejected frames) if any
 * changed since they were last written; call between batches (after
 * townd_core_flush). -1 if the database failed (as townd_core_flush).
 */
int townd_core_save_stats(struct townd_core *c);

/* Key file: one line, the secret key in hex; must not be group/world readable. */
int townd_key_load(const char *path, struct gmp_keypair *kp, char *err, size_t errlen);
int townd_key_write(const char *path, const struct gmp_keypair *kp, char *err, size_t errlen);

#endif
