/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The client's outbox: every record for the town server stays on disk
 * until the server acknowledges it, and for a retention time after that
 * so that a server restored from a backup can get it again
 * (Documentation/protocol.md). A library for meterd (and townd's own
 * upstream link); no global state.
 *
 * On disk, in one directory:
 *   seg-<first seq, 16 hex>.log   append-only segments of records
 *   state                         "acked N" and "cmd N" (the command floor),
 *                                 replaced atomically
 *   quarantine/                   corrupt segments, kept for inspection
 * Record: magic 0xa7, 0, length (LE16), seq (LE64), payload, CRC-32C (LE32)
 * of all before it. Appends are fdatasync()ed before outbox_append()
 * returns; a failed append leaves no partial record. A torn record at the
 * tail of the last segment (power cut, kill -9) is cut off when the outbox
 * is opened; any other damage quarantines the segment (its valid records
 * are copied back) and leaves a hole in the numbering, which the client
 * reports to the server as lost.
 *
 * Nothing here takes part in a nonce: losing or restoring this directory
 * costs records at worst, never key stream.
 */
#ifndef GM_OUTBOX_H
#define GM_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OUTBOX_REC_MAX		496	/* payload bytes per record */
#define OUTBOX_REC_OVERHEAD	16	/* header 12 + CRC 4 */
#define OUTBOX_SEG_BYTES	(64 * 1024)
#define OUTBOX_RETAIN_S		(7 * 86400)	/* acknowledged segments kept (default) */

struct outbox_seg {
	uint64_t first, last;	/* seqs held (last < first: empty) */
	uint64_t size;		/* bytes */
	int64_t mtime;		/* UTC s of the newest append (the file's mtime) */
};

struct outbox {
	int dirfd;
	int fd;			/* last segment, open for append (-1: none) */
	char dir[256];
	uint64_t acked;		/* every seq <= acked is acknowledged */
	uint64_t cmd_floor;	/* the client's command floor (persisted with acked) */
	uint64_t next;		/* seq of the next append */
	uint64_t bytes, max_bytes;
	int64_t retain_s;	/* acknowledged segments are kept this long */
	uint64_t dropped;	/* unacknowledged records dropped by the disk budget */
	uint64_t expired;	/* acknowledged segments deleted after retain_s */
	uint64_t quarantined;	/* segments moved to quarantine/ */
	bool created;		/* opened without a state file or segment: a new outbox */
	bool new_run;		/* the next append starts a new segment */
	bool defer_sync;	/* appends are not synced one by one: outbox_sync() (set by
				 * an owner that appends in batches; false by default) */
	char note[640];		/* the last quarantine, for the owner's journal */
	struct outbox_seg *seg;
	size_t n_seg, cap_seg;
};

/*
 * Open or create. -1 with "path: why" in err. Corrupt segments are
 * quarantined (o->quarantined, o->note say which), not errors; an
 * unreadable directory or state file is.
 */
int outbox_open(struct outbox *o, const char *dir, uint64_t max_bytes, char *err,
		size_t errlen);
void outbox_close(struct outbox *o);
/* Oldest seq held and not acknowledged (== next when none). */
uint64_t outbox_first(const struct outbox *o);
/* Oldest seq held at all, acknowledged or not (== next when none). */
uint64_t outbox_oldest(const struct outbox *o);
/*
 * Durably append record seq == o->next. 0, or -errno (ENOSPC, EIO, ...):
 * the record is then not in the outbox and no partial record is left.
 */
int outbox_append(struct outbox *o, uint64_t seq, const void *data, size_t len);
/*
 * The server holds everything <= upto (persisted). Records the caller
 * held outside the outbox (above next) are skipped: next moves past upto.
 * Acknowledged segments older than retain_s are deleted. 0 or -errno.
 */
int outbox_ack(struct outbox *o, uint64_t upto);
/*
 * The server lost what it had acknowledged above upto (its database was
 * restored): acked goes back to upto (persisted) and the retained records
 * above it are unacknowledged again. 0 or -errno.
 */
int outbox_rewind(struct outbox *o, uint64_t upto);
/* Persist the client's command floor. 0 or -errno. */
int outbox_set_cmd(struct outbox *o, uint64_t floor);
/*
 * Records with seq >= from (and > acked), oldest first, until cb returns
 * non-zero (which is returned). Holes show as jumps in seq. -errno on a
 * read error.
 */
int outbox_for_each(struct outbox *o, uint64_t from,
		    int (*cb)(void *ctx, uint64_t seq, const uint8_t *data, size_t len),
		    void *ctx);
/*
 * Renumber every held record with seq >= from by + delta (delta > 0), its
 * payload rewritten by recode (which gets the old and new seq and returns
 * 0 with *out_len set, or -1). Crash-safe: at the next open either no
 * record or every record is renumbered. next moves by delta. 0 or -errno.
 */
typedef int (*outbox_recode_fn)(void *ctx, uint64_t old_seq, uint64_t new_seq,
				const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);
int outbox_rebase(struct outbox *o, uint64_t from, uint64_t delta, outbox_recode_fn recode,
		  void *ctx);
/*
 * With defer_sync: make every record appended so far durable (one
 * fdatasync for a batch; a segment is synced before the next begins). A
 * crash before it loses at most the records appended since the last
 * sync, from the tail: the next open has next at the first of them.
 * 0 or -errno.
 */
int outbox_sync(struct outbox *o);
/* Delete acknowledged segments whose newest append is older than now - retain_s. */
int outbox_expire(struct outbox *o, int64_t now);

#endif
