/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gm-mqttd's D-Bus link to meterd (org.gridmeter.Meter1 on the system bus,
 * or DBUS_SYSTEM_BUS_ADDRESS): one connection in the bridge's sd-event
 * loop, never blocking it (every call is asynchronous). It reads all of
 * meterd's properties when meterd appears (NameOwnerChanged) and follows
 * PropertiesChanged: Loads a(sssbbbi) for the plugs, the readings,
 * registers, tariff, relay, alarms and home sensors for Home Assistant,
 * MeterId from org.gridmeter.Uplink1 when meterd has an uplink, and
 * RelayChanged, which tells a shed or a restore at once (Loads follows at
 * meterd's property interval, 1 s by default). It passes
 * the plugs' reports on with ReportLoad. When the bus connection itself is
 * lost it reconnects every 2 s; meterd counts as gone meanwhile.
 */
#ifndef GM_METER_LINK_H
#define GM_METER_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "ha_state.h"

#define ML_MAX_LOADS	8	/* meterd's ALLOC_MAX_LOADS */
#define ML_MAX_HOME	8
#define ML_MAX_PERIODS	6	/* TARIFF_MAX_PERIODS */
#define ML_NAME_LEN	32

struct ml_load {
	char name[ML_NAME_LEN];
	bool external;		/* switch == "external" */
	char state[16];		/* on | off | unreachable | unknown */
	bool wanted_on, shed, reachable;
	int32_t measured_w;
};

struct ml_home {
	char name[ML_NAME_LEN];
	char kind[16];
	char unit[16];
	int64_t value_milli;
	char state[16];		/* ok | alarm | warming-up | fault */
	bool alarm;
};

struct meter_link;

struct meter_link_ops {
	/* meterd appeared (after its first full read) or vanished. */
	void (*presence)(void *ctx, bool present);
	/* Loads changed (or was read anew). */
	void (*loads)(void *ctx);
	/*
	 * Other properties changed. `urgent`: the relay or the alarms changed
	 * (Home Assistant should see it now, not at the next interval);
	 * `identity`: the meter id, currency or tariff periods changed
	 * (discovery must be sent again).
	 */
	void (*values)(void *ctx, bool urgent, bool identity);
};

/* 0 or -errno. Connects in the background when the bus is not there yet. */
int meter_link_new(struct meter_link **out, sd_event *ev, const struct meter_link_ops *ops, void *ctx);
void meter_link_free(struct meter_link *l);

bool meter_link_present(const struct meter_link *l);
/* meterd's load of that name, NULL when meterd has none (or is not there). */
const struct ml_load *meter_link_load(const struct meter_link *l, const char *name);
const struct ml_home *meter_link_home(const struct meter_link *l, size_t *n);
/* MeterId as decimal text, "" when meterd has no uplink (no Uplink1 interface). */
const char *meter_link_meter_id(const struct meter_link *l);
/* The tariff's currency ("" unknown) and period names (NULL-ended; empty until known). */
const char *meter_link_currency(const struct meter_link *l);
const char *const *meter_link_periods(const struct meter_link *l);
/*
 * ReportLoad(name, reachable, on, measured_w, declared_w), asynchronous;
 * a refusal is logged (once per name and error). -ENOTCONN when meterd is
 * not there (nothing sent: the state is reported again when it appears).
 */
int meter_link_report(struct meter_link *l, const char *name, bool reachable, bool on,
		      int32_t measured_w, uint32_t declared_w);
/* The meter's part of the Home Assistant state (plugs and home sensors not included). */
void meter_link_ha_values(const struct meter_link *l, struct ha_meter_values *v);
/* Calls made and refused (tests, status line). */
void meter_link_counts(const struct meter_link *l, unsigned long *reports, unsigned long *refused);

#endif
