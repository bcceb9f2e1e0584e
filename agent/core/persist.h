/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the meter persists (the store keeps it opaque): layout version 3, a
 * fixed part followed by the held-energy buckets in use. Version 2 (the
 * fixed part up to the driver's counters) is migrated by one function,
 * persist_from_v2(). Host byte order: the files never leave the gateway.
 */
#ifndef GM_PERSIST_H
#define GM_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "held.h"
#include "registers.h"

#define PERSIST_VERSION	3

/* The driver's energy counters at the last sample, and the boot they belong to. */
struct meter_counters {
	uint64_t import_mj, export_mj, renew_mj;
	char boot_id[40];
	uint32_t valid;
	uint32_t has_renew;
};

enum {
	PERSIST_CLEAN = 1u << 0,	/* written by a clean stop: nothing after it was metered */
	PERSIST_TRUSTED = 1u << 1,	/* the clock was trusted when saved */
	PERSIST_PLACED = 1u << 2,	/* the registers have run on trusted time */
};

struct meter_persist {
	uint32_t version;
	uint32_t size;			/* of this fixed part */
	uint32_t prot_state;
	uint32_t remote_state;
	uint64_t total_trips;
	struct registers reg;
	struct meter_counters ctr;
	/* version 3 */
	uint32_t flags;			/* PERSIST_* */
	uint32_t nheld;			/* held buckets after this part */
	int64_t saved_real_ms;		/* when saved: real time (trusted or not) ... */
	int64_t saved_mono_ms;		/* ... and monotonic time of boot_id */
	char boot_id[40];
	int64_t clock_offset_ms;	/* the last town sample (D-Bus ClockOffset) */
	uint32_t held_len_ms;
	uint32_t clock_source;		/* enum meter_clock_source when saved */
};

#define PERSIST_MAX	(sizeof(struct meter_persist) + HELD_MAX * sizeof(struct held_bucket))

/* Serialise p (version, size, nheld set here) and the buckets of h; returns the length. */
size_t persist_encode(struct meter_persist *p, const struct held *h, void *buf, size_t size);
/*
 * Parse a snapshot of version 3 (or 2, migrated) into p and h. 0, or
 * -EPROTONOSUPPORT (another version: its number in p->version) or -EINVAL.
 */
int persist_decode(const void *buf, size_t len, struct meter_persist *p, struct held *h);
/* The one migration: a version 2 snapshot (the fixed part up to ctr). */
int persist_from_v2(const void *buf, size_t len, struct meter_persist *p);

#endif
