/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Home sensors (meterd [sensor.NAME], Documentation/meterd.md "Home
 * sensors"): a gas level, a room temperature or any quantity read from an
 * IIO channel, with an alarm level, hysteresis, a hold time and a warm-up.
 *
 * This file is pure: the conversion of a raw reading into thousandths of
 * the configured unit (exact integer arithmetic) and the state machine
 *
 *   warming-up --(warmup s after start)--> ok <--> alarm
 *        any state --(read error)--> fault --(good read)--> ok / alarm
 *
 * ok -> alarm when the value stays above alarm_above for hold s (hold 0:
 * at the first reading above); alarm -> ok at the first reading below
 * alarm_clear_below. During the warm-up nothing is judged: no alarm, and
 * no "ok" either (an MQ sensor's heater reads high, then low, while it
 * heats: research 5.1). A fault keeps the alarm as it was: a gas alarm is
 * never cleared because the sensor stopped answering.
 * Time is passed in (monotonic ms); the reading and the D-Bus side are the
 * daemon's (agent/hw/home_iio.c, agent/core/meter_home.c).
 */
#ifndef GM_HOME_SENSOR_H
#define GM_HOME_SENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HS_MAX		8	/* [sensor.NAME] sections */
#define HS_NAME_LEN	32
#define HS_UNIT_LEN	16

enum hs_kind { HS_GENERIC, HS_GAS, HS_TEMPERATURE };
enum hs_state { HS_WARMING_UP, HS_OK, HS_ALARM, HS_FAULT };

struct home_sensor_cfg {
	char name[HS_NAME_LEN];
	char device[64];	/* IIO device name (its "name" attribute) */
	char channel[64];	/* sysfs file of the device: in_voltage2_raw, in_temp_input ... */
	enum hs_kind kind;
	char unit[HS_UNIT_LEN];	/* of the value shown; thresholds are in it */
	/*
	 * value = (raw + iio offset) x scale x divider + offset. scale: given
	 * (unit per count, exact), else the channel's IIO scale file (for a
	 * _raw channel) converted from the IIO unit (mV, milli degree C) to unit.
	 */
	bool have_scale;
	int64_t scale_num, scale_den;
	int64_t div_num, div_den;	/* 1/1: none */
	int64_t offset_milli;
	bool have_alarm;		/* alarm_above given */
	int64_t above_milli, clear_milli;	/* clear <= above */
	uint32_t hold_s, warmup_s, period_s;
	bool notify;			/* gas only: the alarm goes to the town as a notice */
	unsigned cfg_line;		/* where the section starts, for messages */
};

struct home_sensor {
	enum hs_state state;
	bool alarm;		/* above alarm_above for hold (kept through a fault) */
	bool have_value;
	int64_t value_milli;	/* the last good reading, thousandths of unit */
	int64_t start_ms;	/* monotonic: the warm-up ends warmup s later */
	int64_t above_since;	/* monotonic: above alarm_above since; INT64_MIN: not */
	int last_error;		/* the last read error (-errno), 0 */
};

/* What a step changed. */
enum {
	HS_EV_VALUE = 1u << 0,	/* value_milli (or have_value) changed */
	HS_EV_STATE = 1u << 1,	/* state changed */
	HS_EV_RAISED = 1u << 2,	/* alarm became true */
	HS_EV_CLEARED = 1u << 3,	/* alarm became false */
	HS_EV_FAULT = 1u << 4,	/* the sensor could not be read (state became fault) */
	HS_EV_RECOVERED = 1u << 5,	/* read again after a fault */
};

/*
 * The IIO unit of a channel file after its scale (sysfs-bus-iio): in_voltage*
 * millivolts, in_temp* milli degrees C, in_humidityrelative* milli percent.
 * Returns the unit meterd shows without a `scale =` ("mV", "°C", "%") and
 * whether the IIO value is already thousandths of it; NULL for other types.
 */
static inline const char *hs_channel_unit(const char *channel, bool *milli)
{
	static const struct { const char *prefix, *unit; bool milli; } t[] = {
		{ "in_voltage", "mV", false }, { "in_temp", "\xc2\xb0" "C", true },
		{ "in_humidityrelative", "%", true },
	};

	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		unsigned n = 0;

		while (t[i].prefix[n] && t[i].prefix[n] == channel[n])
			n++;
		if (!t[i].prefix[n]) {
			*milli = t[i].milli;
			return t[i].unit;
		}
	}
	*milli = false;
	return NULL;
}

const char *hs_kind_name(enum hs_kind k);
const char *hs_state_name(enum hs_state s);
/* The defaults of a [sensor.NAME] section (inline: the configuration reader needs only this). */
static inline void home_sensor_cfg_defaults(struct home_sensor_cfg *c)
{
	*c = (struct home_sensor_cfg){ .scale_num = 1, .scale_den = 1, .div_num = 1, .div_den = 1,
				       .hold_s = 5, .period_s = 2 };
}
void home_sensor_start(struct home_sensor *s, int64_t mono_ms);
/*
 * One reading: err 0 and value_milli, or err = -errno (the read failed).
 * Returns HS_EV_* bits.
 */
unsigned home_sensor_step(struct home_sensor *s, const struct home_sensor_cfg *c, int err,
			  int64_t value_milli, int64_t mono_ms);

/*
 * The exact factor from a raw count to thousandths of the unit:
 * value_milli = round(raw x num / den) + offset_milli, raw with the channel's
 * IIO offset already added (home_iio.c: it may be fractional, so it is folded
 * into raw and den there).
 * iio_num/iio_den: the channel's IIO scale (ignored when c->have_scale),
 * iio_milli: 1 if the IIO unit after scale is already thousandths of the
 * unit (temperature: milli degree C for a unit of degree C), else 0 (mV
 * shown in mV: x 1000). 0, or -ERANGE when it does not fit 64 bits.
 */
int home_sensor_factor(const struct home_sensor_cfg *c, int64_t iio_num, int64_t iio_den,
		       bool iio_milli, int64_t *num, int64_t *den);
int64_t home_sensor_value(const struct home_sensor_cfg *c, int64_t raw, int64_t num, int64_t den);

#endif
