/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Energy held apart while the meter's clock is not trusted: kept on the
 * monotonic clock, which is exact within a boot, in buckets of one
 * interval of monotonic time, and mapped to real time once the clock is
 * trusted (mono -> real is then one offset). At most HELD_MAX buckets: the
 * two oldest are merged when another is needed (their energy is then
 * spread evenly over both when mapped). Buckets of an earlier boot (their
 * monotonic times mean nothing now) are merged into one "prior" bucket that
 * keeps only its energy and its length.
 *
 * Pure: times and energies are passed in (ms, uJ).
 */
#ifndef GM_HELD_H
#define GM_HELD_H

#include <stdbool.h>
#include <stdint.h>

#define HELD_MAX	96

struct held_bucket {
	int64_t mono_from, mono_to;	/* ms; prior: only mono_to - mono_from counts */
	uint64_t import_uj, export_uj, renew_uj;
	uint32_t flags;			/* PROFILE_* of what was metered (PROFILE_GAP ...) */
	uint32_t prior;			/* 1: of an earlier boot */
};

struct held {
	uint32_t n;
	uint32_t len_ms;		/* bucket length: the profile interval */
	struct held_bucket b[HELD_MAX];	/* prior first, then by time */
};

void held_init(struct held *h, uint32_t len_ms);
/* Energy metered over [mono_from, mono_to] of this boot. */
void held_add(struct held *h, int64_t mono_from, int64_t mono_to, uint64_t import_uj,
	      uint64_t export_uj, uint64_t renew_uj, uint32_t flags);
/* The boot changed: everything held becomes one prior bucket. */
void held_new_boot(struct held *h);
void held_totals(const struct held *h, uint64_t *import_uj, uint64_t *export_uj, uint64_t *renew_uj);
/* Length of monotonic time held (ms), prior included. */
int64_t held_span_ms(const struct held *h);

#endif
