/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Crash-safe persistence of the meter state (an opaque snapshot of at most
 * max_snap bytes) and of the load profile. Three files:
 *
 *   state_dir/meterd.log     persistent, append-only log of checksummed
 *                            records: every closed profile interval and a
 *                            snapshot at every interval boundary,
 *                            fdatasync'ed. Compacted (snapshot + profile to a
 *                            temporary file, fsync, rename, directory fsync)
 *                            when it has doubled, at least past 1 MiB.
 *   state_dir/meterd.snap    persistent, two snapshot slots of a fixed size,
 *                            written in full (zeros) once when created and
 *                            then overwritten in place, alternately, with an
 *                            fdatasync each: the frequent durable saves
 *                            (store_save) change no file size and no block
 *                            allocation, so a full disk cannot stop them and
 *                            each costs one data page on the SD card.
 *   runtime_dir/meterd.live  tmpfs, two alternating slots rewritten every
 *                            sample, never synced: a crash of meterd loses at
 *                            most one sample period.
 *
 * Record: header { magic "GMR2", type, reserved, len, ~len, seq } (24
 * bytes, host order), the payload, then the CRC-32C (gm_crc32c, the link's
 * CRC) of header and payload, little endian. Every record of every file
 * carries a sequence number from one counter; recovery keeps the snapshot
 * with the highest one, replays the profile from the log, and:
 *   - a bad region that runs to the end of the log and is shorter than the
 *     record its header announces (or than the largest record, or is all
 *     zeros) is a torn tail: an append cut by a crash. It is cut off and
 *     reported as such, never as corruption;
 *   - any other bad region is corruption: skipped by resynchronising on the
 *     next valid header, counted, and the log is rewritten cleanly;
 *   - records of the previous format (magic "GMR1", CRC-32 in the header)
 *     are read by one function, store_v1_record(), and the log is rewritten
 *     in the current format (migration).
 * A failed append is cut back (ftruncate) to the length before it, so a
 * full disk never leaves a torn record behind; if even that fails, nothing
 * more is appended until it succeeds.
 */
#ifndef GM_STORE_H
#define GM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.h"

#define STORE_MAGIC		0x32524d47u	/* "GMR2": CRC-32C trailer */
#define STORE_MAGIC_V1		0x31524d47u	/* "GMR1": CRC-32 in the header (migration only) */
#define STORE_MAX_SNAPSHOT	8192
#define STORE_PAGE		4096u		/* for the count of pages synced */

enum store_rec_type { STORE_REC_SNAPSHOT = 1, STORE_REC_PROFILE = 2 };

struct store_rec_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t reserved;
	uint32_t len;
	uint32_t len_inv;	/* ~len: a header can be trusted before its CRC is */
	uint64_t seq;
};
#define STORE_CRC_LEN		4u
#define STORE_REC_OVERHEAD	(sizeof(struct store_rec_hdr) + STORE_CRC_LEN)

struct store {
	int dirfd;
	int logfd;
	int snapfd;			/* -1 until meterd.snap could be created */
	int livefd;
	size_t max_snap;
	size_t slot_bytes;		/* stride of the snapshot slots */
	uint64_t seq;			/* next sequence number */
	uint64_t log_bytes;		/* length of the log's valid records */
	uint64_t log_synced;		/* bytes of it known durable */
	uint64_t compact_bytes;
	unsigned live_slot, snap_slot;
	bool log_torn;			/* a failed append could not be cut back */
	/* for the benchmark and the documentation: what reaches the SD card */
	uint64_t bytes_written;		/* to persistent files */
	uint64_t fsyncs;		/* fdatasync / fsync calls */
	uint64_t pages_synced;		/* 4 KiB pages those syncs wrote, at least */
};

struct store_recovery {
	bool have_snapshot;
	bool from_live;			/* the newest snapshot came from the runtime file */
	bool from_slot;			/* ... from meterd.snap */
	uint64_t snapshot_seq;
	size_t snapshot_len;
	unsigned profile_entries;
	unsigned corrupt_records;	/* bad regions that are not a torn tail */
	uint64_t skipped_bytes;		/* bytes of those regions */
	uint64_t torn_bytes;		/* a torn tail cut off (not corruption) */
	unsigned migrated_records;	/* records of the previous format converted */
	bool rewritten;			/* the log was rewritten (corruption, migration) */
};

/* Open (creating) the files. 0 < max_snap <= STORE_MAX_SNAPSHOT. */
int store_open(struct store *s, const char *state_dir, const char *runtime_dir, size_t max_snap);
void store_close(struct store *s);
/*
 * Recover the newest snapshot into snap (max_snap bytes; left untouched if
 * none), its length into *snap_len, and replay the profile into prof (may be
 * NULL). Repairs and migrates the log if needed. Returns 0 or -errno (I/O
 * only: corruption is reported in *rec, not an error).
 */
int store_recover(struct store *s, void *snap, size_t *snap_len, struct profile *prof,
		  struct store_recovery *rec);
/* Every sample: rewrite a runtime slot (no sync). */
int store_live(struct store *s, const void *snap, size_t len);
/*
 * Append closed profile intervals (n may be 0) and optionally a snapshot to
 * the log, fdatasync if sync. Returns 1 if the log should now be compacted,
 * 0, or -errno with nothing of this call left in the log.
 */
int store_commit(struct store *s, const void *snap, size_t len, const struct profile_entry *e,
		 size_t n, bool sync);
/* A durable snapshot now: a slot of meterd.snap (else the log), fdatasync. */
int store_save(struct store *s, const void *snap, size_t len);
/* Rewrite the log as profile + snapshot (atomic rename). */
int store_compact(struct store *s, const void *snap, size_t len, const struct profile *prof);
/* Human-readable summary of a recovery, for the journal. */
void store_recovery_describe(const struct store_recovery *rec, char *buf, size_t len);

/*
 * The one reader of the previous record format (kept for migration): if a
 * valid "GMR1" record starts at buf[off], fill *h (magic, type, len, seq as
 * read; len_inv set) and return its total length, else 0.
 */
size_t store_v1_record(const uint8_t *buf, size_t size, size_t off, struct store_rec_hdr *h);

#endif
