/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one JSON state message the bridge publishes on <base>/state for Home
 * Assistant (every entity of ha_discovery.h takes its value from a key of
 * it). Values arrive in meterd's D-Bus units (Documentation/meterd.md,
 * "Units": mV, mA, mW, mHz, thousandths, mWh, milli-minor) and leave in
 * the units the discovery payloads announce (V, A, W, Hz, kWh, currency),
 * formatted with integer arithmetic only. Energy sensors are
 * total_increasing: a register below the last one published is left out
 * of the message (and counted), never sent, so Home Assistant never sees a
 * decrease. Pure functions, no I/O.
 */
#ifndef GM_HA_STATE_H
#define GM_HA_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HA_STATE_MAX_PLUGS	8
#define HA_STATE_MAX_HOME	8
#define HA_STATE_MAX_ALARMS	16

/* Keys <object> ("ON"/"OFF"; "None" = unknown when unreachable) and <object>_power (W). */
struct ha_plug_value {
	const char *object;	/* "plug_<name>" as in ha_plug_entities() */
	bool reachable;
	bool on;
	int64_t power_mw;	/* < 0: unknown (no metering); "None" too when unreachable */
};

/* Keys <object> (the value in the sensor's unit, "None" when not valid) and <object>_alarm. */
struct ha_home_value {
	const char *object;	/* "home_<name>" as in ha_home_entities() */
	bool valid;		/* false: warming up or fault (published as "None": unknown) */
	int64_t value_milli;	/* the sensor's unit x 1000 */
	bool alarm;		/* HomeSensors' alarm flag (added in session 2; false if not set) */
};

/* A snapshot of meterd's properties; `have_*` false: not known yet (keys left out). */
struct ha_meter_values {
	bool have_readings;
	uint32_t voltage_mv;
	uint32_t current_ma;
	int64_t power_mw;
	int32_t pf_milli;
	uint32_t frequency_mhz;
	bool have_registers;
	uint64_t import_mwh, export_mwh, renew_mwh;
	bool have_tariff;
	int64_t price_milli;		/* PriceSoFar: milli-minor units */
	unsigned minor_per_major;	/* 100 for EUR/GBP/USD */
	const char *period;		/* CurrentTariffPeriod */
	bool have_relay;
	bool relay_closed;		/* MainRelay == "closed" */
	/* alarm_<object> keys: every alarm object of ha_meter_entities, ON when named here */
	const char *active_alarms[HA_STATE_MAX_ALARMS];
	size_t nactive_alarms;
	struct ha_plug_value plug[HA_STATE_MAX_PLUGS];
	size_t nplugs;
	struct ha_home_value home[HA_STATE_MAX_HOME];
	size_t nhome;
};

/* What was last published, so that energy never decreases. Zero-initialise. */
struct ha_state {
	bool published[3];
	uint64_t last_mwh[3];	/* import, export, renewable */
	unsigned long held_back;	/* registers left out because they went down */
};

/*
 * The JSON object for <base>/state: its length, -ENOSPC (st unchanged), or
 * -EINVAL (more items than the maxima, an object name not [a-z0-9_], or a
 * minor_per_major that is not a power of ten). Keys are the entity objects
 * of ha_discovery.h; every value is a JSON string holding an exact decimal
 * (kWh truncated to whole Wh, W/V/A/Hz/power factor with 3 decimals, cost
 * rounded half away from zero to the minor unit) or ON/OFF/None. Alarm keys:
 * active_alarms may name meterd's alarm ("over-voltage") or the object
 * ("alarm_over_voltage"); every alarm entity is present, OFF when not named.
 */
int ha_state_format(struct ha_state *st, const struct ha_meter_values *v, char *buf, size_t len);

#endif
