/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Seam for the town-server uplink (a later issue). The meter tells the uplink
 * what it needs and offers; the uplink calls meter_set_grant() when the
 * server grants an allocation and reports its state for the UplinkState
 * property. Until then uplink_none is used: the grant is the configured
 * [allocation] grid_allocation.
 */
#ifndef GM_UPLINK_H
#define GM_UPLINK_H

#include <stdint.h>

struct uplink;

struct uplink_ops {
	const char *name;
	void (*request)(struct uplink *u, int64_t deficit_w);	/* 0: nothing needed */
	void (*offer)(struct uplink *u, int64_t surplus_w);
	const char *(*state)(struct uplink *u);
	/* Later: interval records for reporting (closed load-profile entries). */
	void (*interval)(struct uplink *u, const void *profile_entry);
};

struct uplink {
	const struct uplink_ops *ops;
};

extern struct uplink uplink_none;

#endif
