// SPDX-License-Identifier: GPL-2.0
/*
 * Loads switched from outside meterd ([load.NAME] switch = external): smart
 * plugs that the MQTT bridge (gm-mqttd) switches and reports on. meterd
 * decides exactly as for a GPIO load relay (alloc.c: same priority order,
 * settle, restore margin and delay); only the output differs: the wanted
 * state is published (Loads, RelayChanged) instead of driving a line.
 *
 * What the bridge reports (ReportLoad) feeds the allocation:
 *   reachable  false (plug offline, no report for stale_after, the bridge
 *              left the bus): the load is neither shed nor restored, since
 *              a silent plug cannot be switched; alarm load-unreachable.
 *   measured_w what a shed of it frees (an idling plug frees little, so the
 *              next load is shed too); never added to demand (the CT clamp
 *              measures the whole house).
 *   on         compared with the wanted state: still different after the
 *              grace time (max(settle, LOAD_MISMATCH_MIN_MS)): alarm
 *              load-mismatch. meterd keeps wanting; the bridge re-sends.
 * At start every external load is wanted on and unreachable until its
 * first report; the alarm only comes if none arrives within stale_after.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "meter.h"
#include "meter_internal.h"

/* a reported state different from the wanted one is given this long at least */
#define LOAD_MISMATCH_MIN_MS	5000

bool meter_load_external(const struct meter *m, size_t i)
{
	return i < m->cfg.nloads && m->cfg.load[i].external;
}

const char *meter_load_state(const struct meter *m, size_t i)
{
	if (!meter_load_external(m, i))
		return m->load_closed[i] ? "on" : "off";
	if (!m->alloc.load[i].reachable)
		return "unreachable";
	if (!m->ext[i].known)
		return "unknown";
	return m->ext[i].reported_on ? "on" : "off";
}

static int64_t stale_ms(const struct meter *m, size_t i)
{
	return (int64_t)m->cfg.load[i].stale_after_s * 1000;
}

static int64_t mismatch_ms(const struct meter *m)
{
	int64_t settle = (int64_t)m->cfg.settle_s * 1000;

	return settle > LOAD_MISMATCH_MIN_MS ? settle : LOAD_MISMATCH_MIN_MS;
}

/* Append name to a ", "-separated list in buf. */
static void list_add(char *buf, size_t len, const char *name)
{
	size_t l = strlen(buf);

	snprintf(buf + l, len - l, "%s%s", l ? ", " : "", name);
}

/* The two alarms from the loads' state (one alarm each; the detail names the loads). */
static void loads_alarms(struct meter *m, int64_t now_ms)
{
	char unreach[192] = "", mism[192] = "", d[256];

	for (size_t i = 0; i < m->alloc.nloads; i++) {
		const struct ext_load *x = &m->ext[i];

		if (!meter_load_external(m, i))
			continue;
		if (!m->alloc.load[i].reachable) {
			/* after a start, the bridge has stale_after for its first report */
			if (x->reported || now_ms - m->start_mono >= stale_ms(m, i))
				list_add(unreach, sizeof(unreach), m->alloc.load[i].name);
		} else if (x->mismatch_since != INT64_MIN && now_ms - x->mismatch_since >= mismatch_ms(m)) {
			list_add(mism, sizeof(mism), m->alloc.load[i].name);
		}
	}
	snprintf(d, sizeof(d), "%s: %s", unreach[0] ? unreach : "all external loads",
		 unreach[0] ? "cannot be switched (not shed, not restored)" : "reachable");
	meter_alarm(m, ALARM_LOAD_UNREACHABLE, unreach[0], d);
	snprintf(d, sizeof(d), "%s: %s", mism[0] ? mism : "all external loads",
		 mism[0] ? "not in the state meterd wants" : "in the wanted state");
	meter_alarm(m, ALARM_LOAD_MISMATCH, mism[0], d);
}

static void track_mismatch(struct meter *m, size_t i, int64_t now_ms)
{
	struct ext_load *x = &m->ext[i];
	bool differs = m->alloc.load[i].reachable && x->known && x->reported_on != m->load_closed[i];

	if (!differs)
		x->mismatch_since = INT64_MIN;
	else if (x->mismatch_since == INT64_MIN)
		x->mismatch_since = now_ms;
}

static void set_unreachable(struct meter *m, size_t i, const char *why)
{
	struct ext_load *x = &m->ext[i];

	x->known = false;
	x->mismatch_since = INT64_MIN;
	if (!m->alloc.load[i].reachable)
		return;
	alloc_set_report(&m->alloc, i, false, -1);
	meter_log(m, LOG_WARNING | METER_LOG_EVENT, "load %s unreachable: %s", m->alloc.load[i].name, why);
	meter_changed(m, MP_LOADS);
}

/* shown -> now changes by 5 % of shown or more, or one of them is unknown: worth a PropertiesChanged */
static bool draw_changed(int32_t shown, int32_t now)
{
	int64_t diff = (int64_t)now - shown;

	if (shown == now)
		return false;
	if (shown < 0 || now < 0)
		return true;
	return (diff < 0 ? -diff : diff) * 20 >= shown;
}

int meter_report_load(struct meter *m, const char *name, bool reachable, bool on,
		      int32_t measured_w, uint32_t declared_w, int64_t mono_ms, char *msg, size_t len)
{
	struct ext_load *x;
	struct alloc_load *l;
	size_t i;
	bool was_reachable, was_known, was_on;

	for (i = 0; i < m->alloc.nloads; i++)
		if (!strcmp(m->alloc.load[i].name, name))
			break;
	if (i == m->alloc.nloads) {
		snprintf(msg, len, "no load '%s' in %s", name, m->cfg.path);
		return -ENOENT;
	}
	if (!meter_load_external(m, i)) {
		snprintf(msg, len, "load '%s' is switched by a GPIO line, not externally", name);
		return -EMEDIUMTYPE;
	}
	if (measured_w < -1 || measured_w > 1000000 || declared_w > 100000) {
		snprintf(msg, len, "%s out of range (-1..1000000 W measured, 0..100000 W declared)",
			 measured_w < -1 || measured_w > 1000000 ? "measured_w" : "declared_w");
		return -EINVAL;
	}
	x = &m->ext[i];
	l = &m->alloc.load[i];
	was_reachable = l->reachable;
	was_known = x->known;
	was_on = x->reported_on;
	x->reported = true;
	x->last_report_ms = mono_ms;
	if (!reachable) {
		set_unreachable(m, i, "its switch reports it offline");
	} else {
		x->known = true;
		x->reported_on = on;
		alloc_set_report(&m->alloc, i, true, measured_w);
		if (!was_reachable)
			meter_log(m, LOG_NOTICE | METER_LOG_EVENT, "load %s reachable again: %s, wanted %s",
				  name, on ? "on" : "off", m->load_closed[i] ? "on" : "off");
		if (!was_reachable || !was_known || was_on != on || draw_changed(x->shown_w, l->measured_w)) {
			x->shown_w = l->measured_w;
			meter_changed(m, MP_LOADS);
		}
	}
	track_mismatch(m, i, mono_ms);
	loads_alarms(m, mono_ms);
	/*
	 * A demand the plug announces: the appliance path under the load's
	 * name, expiring after stale_after unless repeated; withdrawn when it
	 * announces none or goes offline (only what its reports declared).
	 */
	if (reachable && declared_w) {
		char dmsg[96];

		x->declared = !meter_declare(m, name, declared_w, m->cfg.load[i].stale_after_s, mono_ms, dmsg,
					     sizeof(dmsg));
	} else if (x->declared) {
		char dmsg[96];

		meter_declare(m, name, 0, 0, mono_ms, dmsg, sizeof(dmsg));
		x->declared = false;
	}
	return 0;
}

void meter_load_lost(struct meter *m, size_t i, int64_t mono_ms)
{
	if (!meter_load_external(m, i))
		return;
	set_unreachable(m, i, "its reporter left the bus");
	loads_alarms(m, mono_ms);
}

void meter_loads_lost(struct meter *m, int64_t mono_ms)
{
	for (size_t i = 0; i < m->alloc.nloads; i++)
		if (meter_load_external(m, i))
			set_unreachable(m, i, "its reporter left the bus");
	loads_alarms(m, mono_ms);
}

/* Every sample: a house without external loads pays nothing here. */
void meter_loads_tick(struct meter *m, int64_t mono_ms)
{
	bool any = false;
	char why[64];

	for (size_t i = 0; i < m->alloc.nloads; i++) {
		if (!meter_load_external(m, i))
			continue;
		any = true;
		if (m->alloc.load[i].reachable && mono_ms - m->ext[i].last_report_ms >= stale_ms(m, i)) {
			snprintf(why, sizeof(why), "no report for %u s (stale_after)",
				 m->cfg.load[i].stale_after_s);
			set_unreachable(m, i, why);
		}
		track_mismatch(m, i, mono_ms);
	}
	if (any)
		loads_alarms(m, mono_ms);
}
