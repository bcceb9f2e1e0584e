/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The meter: ties registers, tariff, allocation, protection and the store
 * to the sensor and relay backends. No D-Bus and no event loop here: the
 * daemon calls meter_sample() every period, meter_event() as soon as the
 * sensor's event fd is readable, and the methods on behalf of D-Bus callers.
 * Changes are reported through struct meter_hooks (the D-Bus service).
 *
 * Energy follows the monotonic clock; where it is booked follows the real
 * clock once that is trusted. Until then ([meter] clock = town, no sample of
 * the town's time yet) energy is held apart on monotonic time (held.h) and
 * replayed onto real time when the clock becomes trusted (meter_time.c).
 * A durable snapshot is written at least every [store] persist_interval
 * (monotonic) and whenever persist_energy has been metered since the last
 * one, at every interval boundary, on a clean stop, on the power-fail input
 * and on an under-voltage event (Documentation/meterd.md, "Persistence").
 */
#ifndef GM_METER_H
#define GM_METER_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "held.h"
#include "log_limit.h"
#include "persist.h"
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
	MP_CLOCK = 1u << 7,
	MP_LOADS = 1u << 8,	/* Loads: reported state, reachability, measured draw */
};

enum meter_alarm {
	ALARM_OVERVOLTAGE, ALARM_UNDERVOLTAGE, ALARM_OVERCURRENT, ALARM_LOCKOUT,
	ALARM_DEFICIT, ALARM_SENSOR, ALARM_STORE_CORRUPT, ALARM_STORE_ERROR,
	ALARM_PROTECTION,	/* the driver's threshold events are not set up as configured */
	ALARM_CLOCK_SUSPECT,	/* the town's time is far from a trusted clock: not followed (yet) */
	ALARM_REVERSED_CT,	/* sustained export with no generation configured ([tamper]) */
	ALARM_CT_TAMPER,	/* no current for hours, supply on, relay closed ([tamper]) */
	/* issue 15 (numbers are sent to the town: append only) */
	ALARM_LOAD_UNREACHABLE,	/* an external load's switch does not answer (detail: its name) */
	ALARM_LOAD_MISMATCH,	/* an external load is not in the state meterd wants */
	ALARM_GAS,		/* a gas sensor above its alarm level (detail: the sensor) */
	ALARM_HOME_SENSOR,	/* another home sensor above its alarm level, or failed */
	ALARM_COUNT
};

/*
 * The system's clock and the boot's identity (agent/hw/clock_set.c for
 * meterd; the unit tests pass fakes). A NULL member: not available (no
 * boot id: every start is taken as a new boot; no setting: the clock is
 * never changed).
 */
struct meter_clock_ops {
	void *ctx;
	/* which boot CLOCK_MONOTONIC belongs to (/proc/sys/kernel/random/boot_id) */
	int (*boot_id)(void *ctx, char *buf, size_t len);
	/* 1: the kernel says the clock is synchronised (adjtimex), 0: not, < 0: -errno */
	int (*synced)(void *ctx);
	/* move CLOCK_REALTIME by delta_ms at once / gradually; 0 or -errno */
	int (*step)(void *ctx, int64_t delta_ms);
	int (*slew)(void *ctx, int64_t delta_ms);
	/* mark the kernel's clock synchronised, estimated error esterror_ms */
	int (*mark_synced)(void *ctx, int64_t esterror_ms);
};

enum meter_clock_source {
	CLOCK_SRC_NONE,		/* not trusted */
	CLOCK_SRC_SYSTEM,	/* [meter] clock = system: trusted as it is */
	CLOCK_SRC_KERNEL,	/* trusted at start: the kernel said synchronised */
	CLOCK_SRC_TOWN,		/* set from the town server's time */
};

struct meter_hooks {
	const struct meter_clock_ops *clock;	/* NULL: no boot id, clock never set */
	void *ctx;
	void (*changed)(void *ctx, unsigned groups);
	void (*alarm)(void *ctx, const char *name, bool active, const char *detail);
	void (*relay)(void *ctx, const char *name, bool closed, const char *reason);
	/* journal line; level is a syslog priority */
	void (*log)(void *ctx, int level, const char *msg);
};

#define METER_MAX_APPLIANCES 16

/*
 * A [load.NAME] switch = external (a smart plug behind the MQTT bridge):
 * what its reporter last said. The wanted state is load_closed[] as for
 * GPIO loads; reachability and the measured draw live in struct alloc_load.
 */
struct ext_load {
	bool reported;		/* a report arrived in this run */
	bool known;		/* reported_on is the switch's state (reachable and reported) */
	bool reported_on;
	int64_t last_report_ms;	/* monotonic; at start: the start */
	int64_t mismatch_since;	/* reported != wanted since (mono ms); INT64_MIN: they agree */
	int32_t shown_w;	/* measured_w last announced in Loads (changes < 5 % are not) */
	bool declared;		/* its reports declared a demand (an appliance of its name) */
};

struct appliance {
	char name[32];
	uint32_t watts;
	int64_t expires_ms;	/* monotonic; 0: until withdrawn */
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
	int64_t export_since, idle_since;	/* [tamper] conditions hold since (mono ms); INT64_MIN: not */
	bool main_closed;
	bool load_closed[ALLOC_MAX_LOADS];	/* GPIO: the line; external: the wanted state */
	struct ext_load ext[ALLOC_MAX_LOADS];	/* switch = external loads only */
	struct meter_counters ctr;
	/* the driver's sampling-gap counters at the last sample of this run (gaps_valid) */
	uint64_t last_missed, last_gap_ns;
	bool gaps_valid;
	/* lifetime registers (mWh) as this run started; the town's view seen in this run */
	uint64_t run_start_mwh[3];
	bool town_view_seen;
	char boot_id[40];
	int64_t last_request_w, last_surplus_w;
	uint64_t log_bytes;		/* journal bytes produced, for the benchmark */
	struct log_limit log_limit;	/* meter_log(): repeated lines held back */

	/* the last sample (at start: the start, or the saved state of this boot) */
	int64_t last_real, last_mono;
	bool have_sample;		/* a sample in this run */
	int64_t real_minus_mono;	/* the clocks' relation at the last reading of both, this run */
	int64_t start_real, start_mono;	/* this run began */

	/* persistence (monotonic time) */
	int64_t last_durable_mono;	/* the last durable snapshot */
	uint64_t since_durable_uj;	/* energy metered since */
	bool store_behind;		/* a log write failed: the next durable save rewrites it */
	bool durable_failing;		/* the last durable snapshot failed */
	bool live_failing;		/* the runtime snapshot cannot be written */
	int64_t retry_mono;		/* a failed durable snapshot is tried again then */
	struct profile_entry *pend;	/* intervals closed by this sample, not yet stored */
	size_t npend, pend_cap;
	uint64_t durable_saves;		/* for the benchmark */
	uint64_t max_at_risk_uj;	/* largest energy between two durable saves */
	int64_t max_at_risk_ms;		/* longest time between two durable saves */

	/* time */
	const struct meter_clock_ops *clock_ops;
	struct clock_policy clk_policy;
	struct clock_state clk;		/* clk.trusted: the real clock is trusted */
	enum meter_clock_source clock_source;
	int64_t clock_offset_ms;	/* the last town sample */
	bool reg_placed;		/* the registers have run on trusted time */
	struct held held;		/* energy metered on untrusted time */

	/* what the start found */
	bool recovered;			/* a snapshot of this meter */
	bool last_clean;		/* the last stop saved its state */
	bool same_boot;			/* ... in this boot */
	bool unrec_pending;		/* the span below is unrecorded, its end not known yet */
	int64_t unrec_mono_from;	/* same boot: its start on the monotonic clock (else INT64_MIN) */
	bool have_unrec;		/* [unrec_from, unrec_to] (real ms) was not recorded */
	int64_t unrec_from, unrec_to;
	uint32_t unrec_flag;		/* PROFILE_UNRECORDED for the gap placed next */
	bool have_recon;		/* [recon_from, recon_to]: held energy replayed onto real time */
	int64_t recon_from, recon_to;
};

const char *meter_alarm_name(enum meter_alarm a);
/*
 * A journal line (counted for the benchmark), rate-limited: a line of the
 * same text but its digits at most once per 10 min (log_limit.h).
 */
/*
 * Journal lines go through a rate limiter (log_limit.h): a line repeated
 * within 10 min is held back and counted. A change of state (relay, alarm,
 * route) ORs METER_LOG_EVENT into its level and is always written.
 */
#define METER_LOG_EVENT	0x100
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

/* ---- loads switched from outside meterd (meter_loads.c) ------------------------------ */

/* Is load i (alloc order) switch = external? */
bool meter_load_external(const struct meter *m, size_t i);
/* "on" | "off" | "unreachable" | "unknown" (external, reachable, no state reported yet) */
const char *meter_load_state(const struct meter *m, size_t i);
/*
 * A report on external load `name` (D-Bus ReportLoad, from the MQTT bridge):
 * reachable (false: the plug is offline), on (its relay, meaningful when
 * reachable), measured_w (-1 unknown), declared_w (a demand the plug
 * announces before it runs: declared like DeclareApplianceDemand under the
 * load's name, expiring after stale_after; 0 withdraws it). Restarts the
 * stale timer. 0; -ENOENT no such load; -EMEDIUMTYPE a GPIO load; -EINVAL
 * bad value; msg says why.
 */
int meter_report_load(struct meter *m, const char *name, bool reachable, bool on,
		      int32_t measured_w, uint32_t declared_w, int64_t mono_ms, char *msg, size_t len);
/* The reporter left the bus: every external load is unreachable at once. */
void meter_loads_lost(struct meter *m, int64_t mono_ms);
/* ... or the reporter of load i (alloc order) only; nothing for a GPIO load. */
void meter_load_lost(struct meter *m, size_t i, int64_t mono_ms);
/* Staleness and mismatch of external loads; meter_sample() calls it before allocating. */
void meter_loads_tick(struct meter *m, int64_t mono_ms);
/* Self-test: appends one line per check to buf (lines separated by '\n'); true if all passed. */
bool meter_self_test(struct meter *m, char *buf, size_t len);
/* A durable snapshot now (fdatasync): power fail, state changes, self-test. 0 or -errno. */
int meter_sync(struct meter *m);
/* The power-fail input changed (lost: the supply is failing): on loss, a durable snapshot now
 * (the daemon takes a sample first, so that it holds everything metered). */
void meter_powerfail(struct meter *m, bool lost);
/* Lifetime totals, mWh, including energy held on untrusted time (D-Bus ImportEnergy ...). */
void meter_lifetime(const struct meter *m, uint64_t *import_mwh, uint64_t *export_mwh,
		    uint64_t *renew_mwh);

/* ---- time, and what the uplink reports (meter_time.c) ------------------------------ */

/*
 * Whether the meter's real-time clock is trusted: [meter] clock = system
 * always; town: once a town sample was applied, or at start if the kernel
 * said the clock was synchronised (or this boot's previous run trusted it
 * and nobody stepped it since). While it is not, energy is held apart and
 * the uplink sends no readings (their times would be wrong).
 */
bool meter_time_trusted(const struct meter *m);
/*
 * A sample of the town server's time, from the uplink after each WELCOME:
 * offset_ms = town time - the meter's real time (when the WELCOME arrived,
 * corrected by half the round trip), uncertainty_ms = half the round trip
 * + 1, mono_ms = CLOCK_MONOTONIC then. Applies the policy of clock.h through
 * the clock ops (step / slew, then the kernel marked synchronised): the
 * first sample makes the clock trusted and replays the held energy. With
 * [meter] clock = system the sample is only recorded (ClockOffset).
 * Returns the enum clock_action taken (>= 0) or -errno if the clock could
 * not be set (then nothing changed: still untrusted if it was).
 */
int meter_clock_sample(struct meter *m, int64_t offset_ms, int64_t uncertainty_ms, int64_t mono_ms);
/*
 * The span of real time (ms) whose energy this meter did not record: from
 * the recovered state (its save, within a boot; else the registers' time)
 * to the start of this run,
 * when meterd was not metering and no driver counter covers it (a power
 * cut, the gateway off, meterd down without the driver's counters). False
 * if there is none, or while its end is not known (clock not yet trusted).
 * The uplink reports it as a reading flagged UNRECORDED with zero energy;
 * its intervals carry PROFILE_UNRECORDED.
 */
bool meter_unrecorded(const struct meter *m, int64_t *from_ms, int64_t *to_ms);
/*
 * The span of real time (ms) onto which energy held on untrusted time was
 * replayed when the clock became trusted (PROFILE_RECONSTRUCTED
 * intervals); false if none. The uplink's first reading after trust
 * covers it (split into readings of at most a day).
 */
bool meter_reconstructed(const struct meter *m, int64_t *from_ms, int64_t *to_ms);
/*
 * The town server's view of this meter's lifetime registers (mWh), from a
 * WELCOME: the town holds readings of that energy. Registers below it (the
 * state was lost or restored from an older copy) are raised to it. The
 * first view of a run comes before any record of this run can have reached
 * the town (records go out only in the session this WELCOME opens), so
 * what this run metered comes on top of it: the registers become the view
 * plus this run's energy. A later view may hold this run's records: the
 * registers are raised to the view itself. The raise is added to the
 * lifetime totals only (not to the billing
 * period, the tariff periods or the profile), the open interval is flagged
 * PROFILE_RESTORED, a journal line gives the amounts and a durable snapshot
 * follows. Returns 1 if anything was raised, 0 if not.
 */
int meter_town_view(struct meter *m, uint64_t import_mwh, uint64_t export_mwh, uint64_t renew_mwh);
/* "none", "system", "kernel", "town" (D-Bus ClockSource) */
const char *meter_clock_source_name(const struct meter *m);

int64_t meter_price_milli(const struct meter *m, int64_t real_ms);
const char *meter_period_name(const struct meter *m, int64_t real_ms);

#endif
