// SPDX-License-Identifier: GPL-2.0
/*
 * Home sensors in the meter: their state machines (home_sensor.c), their
 * alarms and what of them leaves the house (Documentation/meterd.md,
 * "Home sensors"). Readings never do: the HomeSensors property is on the
 * system bus only. The gas alarm of a sensor with notify = yes goes to the
 * town as the meter's alarm ALARM_GAS (raised while any such sensor is in
 * alarm); every other home sensor alarm stays in the house.
 */
#include "meter.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>

void meter_home_start(struct meter *m, int64_t mono_ms)
{
	for (size_t i = 0; i < m->cfg.nsensors; i++)
		home_sensor_start(&m->home[i], mono_ms);
	m->home_gas_up = false;
}

/* Is alarm a (ALARM_GAS / ALARM_HOME_SENSOR) held by any sensor; the gas alarm the town may know. */
static bool held(const struct meter *m, enum meter_alarm a, bool notified_only)
{
	for (size_t i = 0; i < m->cfg.nsensors; i++) {
		const struct home_sensor_cfg *c = &m->cfg.sensor[i];
		const struct home_sensor *s = &m->home[i];

		if (a == ALARM_GAS && c->kind == HS_GAS && s->alarm && (!notified_only || c->notify))
			return true;
		if (a == ALARM_HOME_SENSOR &&
		    ((c->kind != HS_GAS && s->alarm) || s->state == HS_FAULT))
			return true;
	}
	return false;
}

/* One sensor's alarm changed: its signal, the journal, the Alarms property, the town (gas). */
static void home_alarm(struct meter *m, enum meter_alarm a, bool on, const char *detail)
{
	unsigned bit = 1u << a;
	bool any = held(m, a, false);

	meter_log(m, (on ? LOG_WARNING : LOG_NOTICE) | METER_LOG_EVENT, "alarm %s %s: %s",
		  meter_alarm_name(a), on ? "raised" : "cleared", detail);
	if (m->hooks.alarm)
		m->hooks.alarm(m->hooks.ctx, meter_alarm_name(a), on, detail);
	if (!!(m->alarms & bit) != any) {
		m->alarms = any ? m->alarms | bit : m->alarms & ~bit;
		meter_changed(m, MP_ALARMS);
	}
	if (a == ALARM_GAS) {
		bool up = held(m, ALARM_GAS, true);

		if (up != m->home_gas_up && m->uplink->ops->alarm)
			m->uplink->ops->alarm(m->uplink, ALARM_GAS, up);
		m->home_gas_up = up;
	}
}

static void milli_str(char *buf, size_t len, int64_t v)
{
	uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	snprintf(buf, len, "%s%llu.%03llu", v < 0 ? "-" : "", (unsigned long long)(a / 1000),
		 (unsigned long long)(a % 1000));
}

void meter_home_reading(struct meter *m, size_t i, int err, const char *why, int64_t value_milli,
			int64_t mono_ms)
{
	const struct home_sensor_cfg *c = &m->cfg.sensor[i];
	struct home_sensor *s = &m->home[i];
	enum meter_alarm a = c->kind == HS_GAS ? ALARM_GAS : ALARM_HOME_SENSOR;
	char d[512], v[32], lv[32];
	unsigned ev;

	if (i >= m->cfg.nsensors)
		return;
	ev = home_sensor_step(s, c, err, value_milli, mono_ms);
	milli_str(v, sizeof(v), s->value_milli);
	if (ev & HS_EV_RAISED) {
		milli_str(lv, sizeof(lv), c->above_milli);
		snprintf(d, sizeof(d), "%s: %s %s above %s %s for %u s", c->name, v, c->unit, lv,
			 c->unit, c->hold_s);
		home_alarm(m, a, true, d);
	}
	if (ev & HS_EV_CLEARED) {
		milli_str(lv, sizeof(lv), c->clear_milli);
		snprintf(d, sizeof(d), "%s: %s %s, below %s %s", c->name, v, c->unit, lv, c->unit);
		home_alarm(m, a, false, d);
	}
	if (ev & HS_EV_FAULT) {
		snprintf(d, sizeof(d), "%s: cannot be read: %s", c->name, why && why[0] ? why : "error");
		home_alarm(m, ALARM_HOME_SENSOR, true, d);
	}
	if (ev & HS_EV_RECOVERED) {
		snprintf(d, sizeof(d), "%s: read again (%s %s)", c->name, v, c->unit);
		home_alarm(m, ALARM_HOME_SENSOR, false, d);
	}
	if ((ev & HS_EV_STATE) && !(ev & (HS_EV_RAISED | HS_EV_CLEARED | HS_EV_FAULT)))
		meter_log(m, LOG_INFO | METER_LOG_EVENT, "home sensor %s: %s (%s %s)", c->name,
			  hs_state_name(s->state), v, c->unit);
	if (ev)
		meter_changed(m, MP_HOME);
}
