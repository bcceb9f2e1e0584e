/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The meter's view of its town-server uplink. The meter tells the uplink
 * what it needs and offers and which alarms it raises; the uplink calls
 * meter_set_grant() when the server grants an allocation and reports its
 * state for the UplinkState property. uplink_town.c is the real one (a
 * configured [uplink]); without it uplink_none is used and the grant is
 * the configured [allocation] grid_allocation.
 */
#ifndef GM_UPLINK_H
#define GM_UPLINK_H

#include <stdbool.h>
#include <stdint.h>

struct uplink;

struct uplink_ops {
	const char *name;
	void (*request)(struct uplink *u, int64_t deficit_w);	/* 0: nothing needed */
	void (*offer)(struct uplink *u, int64_t surplus_w);
	const char *(*state)(struct uplink *u);
	/* closed load-profile entries (NULL: not wanted) */
	void (*interval)(struct uplink *u, const void *profile_entry);
	/* an alarm raised or cleared (enum meter_alarm); NULL: not wanted */
	void (*alarm)(struct uplink *u, unsigned int code, bool active);
};

struct uplink {
	const struct uplink_ops *ops;
};

extern struct uplink uplink_none;

#endif
