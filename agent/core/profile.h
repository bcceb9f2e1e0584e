/* SPDX-License-Identifier: GPL-2.0 */
/* Load profile: a ring of closed demand intervals, oldest overwritten first. */
#ifndef GM_PROFILE_H
#define GM_PROFILE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Interval flags; the same bits as the flags of the town server's records
 * (Documentation/protocol.md), so the uplink can pass them on.
 */
#define PROFILE_GAP		0x01u	/* not measured for part of the interval */
#define PROFILE_TIME_UNTRUSTED	0x02u	/* the meter's clock was not trusted: times estimated */
#define PROFILE_RECONSTRUCTED	0x04u	/* energy held on monotonic time, mapped to real time later */
#define PROFILE_UNRECORDED	0x08u	/* energy not recorded (power cut, unclean stop): a lower bound */
#define PROFILE_CLOCK_STEP	0x10u	/* the clock was stepped in this interval */
#define PROFILE_SAMPLING_GAP	0x20u	/* the driver estimated the energy of time it did not sample */
#define PROFILE_RESTORED	0x40u	/* the registers were raised to the town's view */

struct profile_entry {
	int64_t start;		/* UTC seconds, aligned to the interval */
	uint32_t import_mwh;
	uint32_t export_mwh;
	uint32_t renew_mwh;
	uint32_t flags;
};

struct profile {
	struct profile_entry *e;
	size_t cap, head, count;	/* head: index of the oldest entry */
};

int profile_init(struct profile *p, size_t cap);
void profile_free(struct profile *p);
/* Append; entries must be in increasing start order (older or equal ones are ignored, returns -1). */
int profile_push(struct profile *p, const struct profile_entry *e);
/*
 * Append an entry newer than the newest (returns 0) or replace the newest
 * one when e has its start (returns 1: an entry merged after a backward
 * clock step, written again); older entries are ignored (-1).
 */
int profile_put(struct profile *p, const struct profile_entry *e);
/* The newest entry, for merging into it (NULL if empty). */
struct profile_entry *profile_newest_mut(struct profile *p);
const struct profile_entry *profile_at(const struct profile *p, size_t i);	/* 0 = oldest */
const struct profile_entry *profile_newest(const struct profile *p);
/* Index of the first entry with start >= from (count if none). */
size_t profile_lower_bound(const struct profile *p, int64_t from);

#endif
