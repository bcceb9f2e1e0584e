/* SPDX-License-Identifier: GPL-2.0 */
/* Load profile: a ring of closed demand intervals, oldest overwritten first. */
#ifndef GM_PROFILE_H
#define GM_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#define PROFILE_GAP	0x1u	/* the daemon was not measuring for part of the interval */

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
const struct profile_entry *profile_at(const struct profile *p, size_t i);	/* 0 = oldest */
const struct profile_entry *profile_newest(const struct profile *p);
/* Index of the first entry with start >= from (count if none). */
size_t profile_lower_bound(const struct profile *p, int64_t from);

#endif
