/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The meter's outbox: every message for the town server stays on disk
 * until the server acknowledges it (Documentation/protocol.md). A library
 * for meterd; no global state.
 *
 * On disk, in one directory:
 *   seg-<first seq, 16 hex>.log   append-only segments of records
 *   state                         acknowledged upto and the reserved
 *                                 send-counter ceiling (atomic rename)
 * Record: magic 0xa7, 0, length (LE16), seq (LE64), payload, CRC-32C (LE32)
 * of all before it. Appends are fdatasync()ed before outbox_append()
 * returns; a torn record at the tail of the last segment (power cut, kill
 * -9) is cut off when the outbox is opened. Records are numbered 1, 2, 3 ...
 * without gaps.
 *
 * Disk budget: when an append would exceed max_bytes, whole oldest
 * segments are dropped (counted in ->dropped); the caller then tells the
 * server with a sync message (base = outbox_first()).
 */
#ifndef GM_OUTBOX_H
#define GM_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#define OUTBOX_REC_MAX		496	/* payload bytes per record */
#define OUTBOX_REC_OVERHEAD	16	/* header 12 + CRC 4 */
#define OUTBOX_SEG_BYTES	(64 * 1024)

struct outbox_seg {
	uint64_t first, last;	/* seqs held (last < first: empty) */
	uint64_t size;		/* bytes */
};

struct outbox {
	int dirfd;
	int fd;			/* last segment, open for append */
	char dir[256];
	uint64_t acked;		/* every seq <= acked is acknowledged */
	uint64_t next;		/* seq of the next append */
	uint64_t ctr_ceiling;	/* send counters below it may have been used */
	uint64_t bytes, max_bytes;
	uint64_t dropped;	/* records dropped by the disk budget */
	struct outbox_seg *seg;
	size_t n_seg, cap_seg;
};

/* Open or create. -1 with "path: why" in err (corruption is an error). */
int outbox_open(struct outbox *o, const char *dir, uint64_t max_bytes, char *err,
		size_t errlen);
void outbox_close(struct outbox *o);
/* Oldest seq still held and not acknowledged (== next when empty). */
uint64_t outbox_first(const struct outbox *o);
/* Durably append record seq == o->next. 0, or -errno. */
int outbox_append(struct outbox *o, uint64_t seq, const void *data, size_t len);
/* The server holds everything <= upto. 0 or -errno. */
int outbox_ack(struct outbox *o, uint64_t upto);
/*
 * Records with seq >= from, oldest first, until cb returns non-zero (which
 * is returned). -errno on a read error.
 */
int outbox_for_each(struct outbox *o, uint64_t from,
		    int (*cb)(void *ctx, uint64_t seq, const uint8_t *data, size_t len),
		    void *ctx);
/* Persist a new send-counter ceiling (reserve before use). 0 or -errno. */
int outbox_reserve_ctr(struct outbox *o, uint64_t ceiling);

#endif
