/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Crash-safe persistence of the meter state (an opaque, fixed-size snapshot)
 * and of the load profile.
 *
 *   state_dir/meterd.log     persistent, append-only log of checksummed
 *                            records: a snapshot and the closed profile
 *                            interval at every interval boundary, fsync'ed
 *                            then (and on shutdown / power-fail).
 *   runtime_dir/meterd.live  tmpfs, two alternating checksummed snapshot
 *                            slots rewritten every second: a daemon crash
 *                            (kill -9) loses at most the last second.
 *
 * Record: header { magic, type, len, seq, crc32 over header(crc=0)+payload }
 * then payload. Recovery reads every valid record, resynchronises past
 * corrupt ones (scanning for the next valid header), keeps the snapshot with
 * the highest sequence number from either file, and rewrites the log cleanly
 * (compaction) when anything was corrupt or truncated. The log is compacted
 * (snapshot + profile, written to a temporary file, fsync'ed, renamed) when it
 * grows past compact_bytes.
 */
#ifndef GM_STORE_H
#define GM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.h"

#define STORE_MAGIC		0x31524d47u	/* "GMR1" */
#define STORE_MAX_SNAPSHOT	8192

enum store_rec_type { STORE_REC_SNAPSHOT = 1, STORE_REC_PROFILE = 2 };

struct store_rec_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t reserved;
	uint32_t len;
	uint32_t crc;
	uint64_t seq;
};

struct store {
	int dirfd;
	int logfd;
	int livefd;
	size_t snap_len;
	uint64_t seq;			/* next sequence number */
	uint64_t log_bytes;
	uint64_t compact_bytes;
	unsigned live_slot;
	uint64_t bytes_written;		/* to persistent storage, for the benchmark */
	uint64_t fsyncs;
};

struct store_recovery {
	bool have_snapshot;
	bool from_live;			/* the newest snapshot came from the runtime file */
	uint64_t snapshot_seq;
	unsigned profile_entries;
	unsigned corrupt_records;	/* records with a bad header or checksum */
	uint64_t skipped_bytes;		/* bytes not part of any valid record */
	bool rewritten;			/* the log was compacted to drop bad data */
};

/* Open (creating) both files. snap_len <= STORE_MAX_SNAPSHOT. */
int store_open(struct store *s, const char *state_dir, const char *runtime_dir, size_t snap_len);
void store_close(struct store *s);
/*
 * Recover the newest snapshot into snap (left untouched if none) and replay
 * the profile. Repairs the log if needed. Returns 0 or -errno (I/O only:
 * corruption is reported in *rec, not an error).
 */
int store_recover(struct store *s, void *snap, struct profile *prof, struct store_recovery *rec);
/* Every second: rewrite a runtime slot (no fsync). */
int store_live(struct store *s, const void *snap);
/* Append a snapshot and optionally a closed profile interval; fsync if sync. */
int store_commit(struct store *s, const void *snap, const struct profile_entry *e, bool sync);
/* Rewrite the log as snapshot + profile (atomic rename). */
int store_compact(struct store *s, const void *snap, const struct profile *prof);
/* Human-readable summary of a recovery, for the journal. */
void store_recovery_describe(const struct store_recovery *rec, char *buf, size_t len);

#endif
