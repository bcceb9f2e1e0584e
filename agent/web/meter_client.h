/* SPDX-License-Identifier: GPL-2.0 */
/*
 * meterweb's D-Bus client of meterd: a thread that owns one connection to
 * the system bus (or DBUS_SYSTEM_BUS_ADDRESS), reads every property of
 * org.gridmeter.Meter1 and org.gridmeter.Uplink1 when meterd appears,
 * follows PropertiesChanged, Alarm, RelayChanged and RouteChanged into the
 * snapshot, notices meterd leaving and coming back (NameOwnerChanged), and
 * reconnects to the bus when the connection is lost.
 *
 * Method calls from the HTTP threads (GetLoadProfile) use a connection of
 * their own per call (sd-bus connections are not shared between threads).
 */
#ifndef GM_MW_METER_CLIENT_H
#define GM_MW_METER_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

#define MW_DEST		"org.gridmeter.Meter1"
#define MW_PATH		"/org/gridmeter/Meter1"
#define MW_IFACE	"org.gridmeter.Meter1"
#define MW_UPLINK_IFACE	"org.gridmeter.Uplink1"

struct mw_client {
	struct mw_snapshot *snap;
	pthread_t thread;
	atomic_bool stop;
	atomic_uint reads;	/* full reads of meterd's properties (tests: a restart is seen) */
	int64_t (*now)(void);	/* UTC s, for the events' times */
};

int mw_client_start(struct mw_client *c, struct mw_snapshot *snap);
void mw_client_stop(struct mw_client *c);

/* One closed load-profile interval as GetLoadProfile gives it. */
struct mw_interval {
	int64_t start;
	uint32_t import_mwh, export_mwh, renew_mwh, flags;
};

struct mw_intervals {
	struct mw_interval *v;
	size_t n, cap;
};

void mw_intervals_free(struct mw_intervals *iv);
/*
 * GetLoadProfile(from, to) on a connection of its own, paged (meterd
 * answers at most 10000 intervals per call: the span is halved and the
 * rest asked from the last start + 1). Appends to out. 0 or -errno with
 * the bus error's message in err.
 */
int mw_load_profile(int64_t from, int64_t to, struct mw_intervals *out, char *err, size_t errlen);

#endif
