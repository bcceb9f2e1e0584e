/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Who reports on meterd's external loads (ReportLoad): the unique bus name
 * that last reported each load, authorised once (unique names are never
 * reused on a bus), and watched: when it leaves the bus the loads it
 * reported on become unreachable at once (meter_load_lost), instead of
 * after stale_after. Normally one name, the MQTT bridge, reports on all of
 * them; a technician's one-off busctl call only takes the load it named.
 */
#ifndef GM_LOAD_REPORTERS_H
#define GM_LOAD_REPORTERS_H

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "meter.h"

#define REPORTERS_MAX	(ALLOC_MAX_LOADS + 1)

struct load_reporters {
	sd_bus *bus;
	struct meter *m;
	struct {
		char name[128];		/* "": free */
		sd_bus_slot *slot;	/* NameOwnerChanged with arg0 = name */
	} who[REPORTERS_MAX];
	char of_load[ALLOC_MAX_LOADS][128];	/* the name that last reported load i */
};

void reporters_init(struct load_reporters *r, sd_bus *bus, struct meter *m);
/* name reported before and is still on the bus: authorised already. */
bool reporters_known(const struct load_reporters *r, const char *name);
/* name (authorised) reported on load i: watch it. */
void reporters_note(struct load_reporters *r, size_t load, const char *name);
void reporters_done(struct load_reporters *r);

#endif
