/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The meter: ties registers, tariff, allocation, protection and the store
 * to the sensor and relay backends. No D-Bus and no event loop here: the
 * daemon calls meter_sample() every period, meter_event() as soon as the
 * sensor's event fd is readable, and the methods on behalf of D-Bus callers.
 * Changes are reported through struct meter_hooks (the D-Bus service).
 */
#ifndef GM_METER_H
#define GM_METER_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "config.h"
#include "log_limit.h"
#include "profile.h"
#include "protect.h"
#include "registers.h"
#include "relay.h"
#include "sensor.h"
#include "store.h"
#include "tariff.h"
#include "uplink.h"

/* Property groups, for PropertiesChanged. */
enum {
	MP_READINGS = 1u << 0,
	MP_REGISTERS = 1u << 1,
	MP_TARIFF = 1u << 2,
	MP_ALLOC = 1u << 3,
	MP_RELAYS = 1u << 4,
	MP_ALARMS = 1u << 5,
	MP_UPLINK = 1u << 6,
};

enum meter_alarm {
	ALARM_OVERVOLTAGE, ALARM_UNDERVOLTAGE, ALARM_OVERCURRENT, ALARM_LOCKOUT,
	ALARM_DEFICIT, ALARM_SENSOR, ALARM_STORE_CORRUPT, ALARM_STORE_ERROR,
	ALARM_PROTECTION,	/* the driver's threshold events are not set up as configured */
	ALARM_COUNT
};

struct meter_hooks {
	void *ctx;
	void (*changed)(void *ctx, unsigned groups);
	void (*alarm)(void *ctx, const char *name, bool active, const char *detail);
	void (*relay)(void *ctx, const char *name, bool closed, const char *reason);
	/* journal line; level is a syslog priority */
	void (*log)(void *ctx, int level, const char *msg);
};

#define METER_MAX_APPLIANCES 16

struct appliance {
	char name[32];
	uint32_t watts;
	int64_t expires_ms;	/* monotonic; 0: until withdrawn */
};

/* The driver's energy counters at the last sample, and the boot they belong to. */
struct meter_counters {
	uint64_t import_mj, export_mj, renew_mj;
	char boot_id[40];
	uint32_t valid;
	uint32_t has_renew;
};

/* What is persisted (opaque to the store). */
struct meter_persist {
	uint32_t version;
	uint32_t size;
	uint32_t prot_state;
	uint32_t remote_state;
	uint64_t total_trips;
	struct registers reg;
	struct meter_counters ctr;
};

struct meter {
	struct meter_config cfg;
	struct tariff_spec spec;
	struct tariff tariff;
	struct registers reg;
	struct profile prof;
	struct alloc alloc;
	struct protect prot;
	struct store store;
	bool store_ok;
	struct store_recovery recovery;
	struct sensor *sensor;
	struct relays *relays;
	struct uplink *uplink;
	struct meter_hooks hooks;

	struct sensor_reading rd;
	bool have_reading;
	unsigned sensor_failures;
	int64_t grant_w;
	struct appliance appl[METER_MAX_APPLIANCES];
	struct alloc_decision decision;
	int64_t declared_w;
	unsigned alarms;		/* 1 << enum meter_alarm */
	int64_t alarm_ok_since[ALARM_COUNT];	/* condition gone since (mono ms); INT64_MIN: not */
	bool main_closed;
	bool load_closed[ALLOC_MAX_LOADS];
	int64_t last_sync_mono;
	int64_t last_sample_mono;	/* 0: no sample yet */
	struct meter_counters ctr;
	char boot_id[40];
	int64_t last_request_w, last_surplus_w;
	uint64_t log_bytes;		/* journal bytes produced, for the benchmark */
	struct log_limit log_limit;	/* meter_log(): repeated lines held back */
};

const char *meter_alarm_name(enum meter_alarm a);
/*
 * A journal line (counted for the benchmark), rate-limited: a line of the
 * same text but its digits at most once per 10 min (log_limit.h).
 */
void meter_log(struct meter *m, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Property groups changed (enum MP_*). */
void meter_changed(struct meter *m, unsigned groups);
/* Raise or clear an alarm from outside (backends, start-up checks). */
void meter_alarm(struct meter *m, enum meter_alarm a, bool on, const char *detail);

/* Recovers the store, drives the relays to the recovered state. err gets the reason on failure. */
int meter_init(struct meter *m, const struct meter_config *cfg, struct sensor *s,
	       struct relays *r, const struct meter_hooks *hooks, int64_t real_ms, int64_t mono_ms,
	       char *err, size_t errlen);
void meter_shutdown(struct meter *m);

void meter_sample(struct meter *m, const struct sensor_reading *r, int64_t real_ms, int64_t mono_ms);
void meter_sensor_failed(struct meter *m, int error);
/* Threshold events: the main relay opens before this returns. */
void meter_event(struct meter *m, unsigned faults, int64_t mono_ms);
void meter_button(struct meter *m);
void meter_set_grant(struct meter *m, int64_t grant_w);

/* Methods; who says on whose behalf (for the journal). 0 or -errno with msg. */
int meter_disconnect(struct meter *m, const char *who, char *msg, size_t len);
int meter_arm_reconnect(struct meter *m, const char *who, char *msg, size_t len);
int meter_confirm_reconnect(struct meter *m, const char *who, char *msg, size_t len);
int meter_clear_lockout(struct meter *m, const char *who, int64_t mono_ms, char *msg, size_t len);
int meter_set_tariff(struct meter *m, const struct tariff_spec *spec, const char *who,
		     const char **badkey, char *msg, size_t len);
int meter_declare(struct meter *m, const char *name, uint32_t watts, uint32_t duration_s,
		  int64_t mono_ms, char *msg, size_t len);
/* Self-test: appends one line per check to buf (lines separated by '\n'); true if all passed. */
bool meter_self_test(struct meter *m, char *buf, size_t len);
/* Flush the state to persistent storage now (shutdown, power fail). */
int meter_sync(struct meter *m);

int64_t meter_price_milli(const struct meter *m, int64_t real_ms);
const char *meter_period_name(const struct meter *m, int64_t real_ms);

#endif
