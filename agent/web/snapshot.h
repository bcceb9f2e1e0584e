/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What meterweb knows of meterd: every property of org.gridmeter.Meter1 and
 * org.gridmeter.Uplink1 as last read or announced, and the last events
 * (Alarm, RelayChanged, RouteChanged). One copy lives in struct
 * mw_snapshot under its mutex; the bus thread writes it, the HTTP threads
 * copy it out (mw_snapshot_get) and the live streams wait on the condition
 * variable for the next generation.
 */
#ifndef GM_MW_SNAPSHOT_H
#define GM_MW_SNAPSHOT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "tariff.h"

#define MW_NAME_LEN	32
#define MW_TEXT_LEN	160
#define MW_MAX_KV	12
#define MW_MAX_ALARMS	16
#define MW_MAX_EVENTS	8
#define MW_MAX_LOADS	8	/* meterd's ALLOC_MAX_LOADS */
#define MW_MAX_HOME	8	/* home sensors shown */

/* One entry of meterd's Loads property, a(sssbbbi). */
struct mw_load {
	char name[MW_NAME_LEN];
	char sw[16];			/* "gpio" | "external" */
	char state[16];			/* "on" | "off" | "unreachable" | "unknown" */
	bool wanted_on, shed, reachable;
	int32_t measured_w;		/* -1: unknown */
};

/* One entry of meterd's HomeSensors property, a(sssxsb). */
struct mw_home {
	char name[MW_NAME_LEN];
	char kind[16];			/* "gas" | "temperature" | "generic" */
	char unit[16];
	int64_t value_milli;
	char state[16];			/* "ok" | "alarm" | "warming-up" | "fault" */
	bool alarm;
};

struct mw_kv {
	char name[MW_NAME_LEN];
	int64_t v;
};

struct mw_kvs {
	unsigned n;
	struct mw_kv e[MW_MAX_KV];
};

enum mw_event_kind { MW_EV_ALARM, MW_EV_RELAY, MW_EV_ROUTE };

struct mw_event {
	int64_t at;			/* UTC s, when meterweb received it */
	enum mw_event_kind kind;
	char name[MW_NAME_LEN];		/* alarm, relay or route */
	bool on;			/* alarm active / relay closed */
	char detail[MW_TEXT_LEN];	/* detail / reason */
};

struct mw_state {
	bool connected;			/* meterd is on the bus and was read */
	uint64_t gen;			/* bumped by every change */
	int64_t updated;		/* UTC s of the last change */

	/* org.gridmeter.Meter1 */
	uint32_t voltage_mv, current_ma, frequency_mhz;
	int64_t active_mw, renewable_mw;
	int32_t pf_milli;
	uint64_t import_mwh, export_mwh, renew_mwh;
	struct mw_kvs import_by, export_by, renew_by;	/* mWh per tariff period */
	uint64_t max_demand_mw;
	int64_t max_demand_at, billing_start, price_milli, last_bill_milli;
	char currency[8], period[TARIFF_NAME_LEN];
	bool have_tariff;
	struct tariff_spec tariff;	/* the Tariff property's keys */
	struct mw_kvs alloc;		/* W */
	char alloc_reason[MW_TEXT_LEN];
	struct mw_kvs declared;		/* appliance -> W */
	char main_relay[16], protection[16], remote[16];
	uint64_t trip_count;
	struct mw_kvs loads;		/* load relay -> 1 closed / 0 open */
	/* Loads and HomeSensors (issue 15): none when meterd does not have them */
	unsigned nxloads, nhome;
	struct mw_load xloads[MW_MAX_LOADS];
	struct mw_home home[MW_MAX_HOME];
	unsigned nalarms;
	char alarms[MW_MAX_ALARMS][MW_NAME_LEN];
	char uplink_state[20];
	bool clock_trusted;
	char clock_source[16];

	/* org.gridmeter.Uplink1 (has_uplink: meterd exports it) */
	bool has_uplink;
	char route[16], route_reason[MW_TEXT_LEN], modem_state[16], registration[20], session[16];
	uint32_t signal_quality;
	int32_t signal_dbm;
	uint64_t backlog;
	int64_t last_ack_ms;

	/* newest first */
	unsigned nevents;
	struct mw_event events[MW_MAX_EVENTS];
};

struct mw_snapshot {
	pthread_mutex_t lock;	/* guards s */
	pthread_cond_t cond;	/* broadcast when s.gen changes */
	struct mw_state s;
};

int mw_snapshot_init(struct mw_snapshot *sn);
void mw_snapshot_destroy(struct mw_snapshot *sn);
/* Copy the state out. */
void mw_snapshot_get(struct mw_snapshot *sn, struct mw_state *out);
/*
 * Wait until the generation differs from *gen or timeout_ms passes; copy
 * the state out and set *gen. true when it changed.
 */
bool mw_snapshot_wait(struct mw_snapshot *sn, uint64_t *gen, int timeout_ms, struct mw_state *out);

/*
 * Apply one property: m is positioned at its variant. iface is
 * org.gridmeter.Meter1 or org.gridmeter.Uplink1. Unknown properties and
 * unexpected types are skipped. 0 or a negative errno (message unreadable).
 */
int mw_state_apply_prop(struct mw_state *st, const char *iface, const char *name, sd_bus_message *m);
/* A dictionary a{sv} of properties (GetAll's reply, PropertiesChanged's second argument). */
int mw_state_apply_dict(struct mw_state *st, const char *iface, sd_bus_message *m);
/* Record an event (newest first, at most MW_MAX_EVENTS kept). */
void mw_state_event(struct mw_state *st, enum mw_event_kind kind, const char *name, bool on,
		    const char *detail, int64_t at);
/* Value of name in kv, or dflt. */
int64_t mw_kv_get(const struct mw_kvs *kv, const char *name, int64_t dflt);

#endif
