// SPDX-License-Identifier: GPL-2.0
#include "plug_ctl.h"

#include <string.h>

void plug_init(struct plug_ctl *p, uint32_t telemetry_s, int64_t now_ms)
{
	memset(p, 0, sizeof(*p));
	p->telemetry_ms = telemetry_s * 1000u;
	p->power_mw = -1;
	p->last_heard_ms = now_ms;	/* a first silence is counted from the start */
	p->last_cmd_ms = INT64_MIN;
}

static bool may_resend(const struct plug_ctl *p, int64_t now_ms)
{
	return p->last_cmd_ms == INT64_MIN || now_ms - p->last_cmd_ms >= PLUG_RESEND_MS;
}

unsigned plug_on_report(struct plug_ctl *p, const struct tas_report *r, bool retained, int64_t now_ms)
{
	unsigned act = 0;

	if (r->have & TAS_HAVE_ON) {
		p->have_on = true;
		p->on = r->on;
	}
	if (r->have & TAS_HAVE_POWER)
		p->power_mw = r->power_mw;
	if ((r->have & TAS_HAVE_ONLINE) && !r->online) {
		/* LWT Offline (the broker's will, or retained from before): cannot be switched. */
		p->power_mw = -1;
		if (p->reachable) {
			p->reachable = false;
			act |= PLUG_REPORT;
		}
		return act;
	}
	if (retained)
		return act;	/* what the broker kept, not news of the plug */
	p->last_heard_ms = now_ms;
	p->status_asked = false;
	/*
	 * LWT Online proves a connection, not the relay state: the state comes
	 * with the answer to the bridge's POWER query a moment later.
	 */
	if (!p->have_on || r->have == TAS_HAVE_ONLINE)
		return act;
	act |= PLUG_REPORT;
	if (!p->reachable) {
		/* Back (or heard for the first time): assert what meterd wants. */
		p->reachable = true;
		if (p->have_wanted)
			act |= PLUG_SEND_WANTED;
	} else if (p->have_wanted && (r->have & TAS_HAVE_ON) && p->on != p->wanted_on &&
		   may_resend(p, now_ms)) {
		act |= PLUG_SEND_WANTED;
	}
	return act;
}

unsigned plug_on_wanted(struct plug_ctl *p, bool wanted_on, int64_t now_ms)
{
	(void)now_ms;
	if (p->have_wanted && p->wanted_on == wanted_on)
		return 0;
	p->have_wanted = true;
	p->wanted_on = wanted_on;
	return PLUG_SEND_WANTED;
}

unsigned plug_on_connected(struct plug_ctl *p, int64_t now_ms)
{
	p->last_heard_ms = now_ms;	/* silence counts from our reconnect */
	p->status_asked = false;
	return p->have_wanted ? PLUG_SEND_WANTED : 0;
}

unsigned plug_on_lost(struct plug_ctl *p)
{
	if (!p->reachable)
		return 0;
	p->reachable = false;
	return PLUG_REPORT;
}

unsigned plug_tick(struct plug_ctl *p, int64_t now_ms)
{
	int64_t silent = now_ms - p->last_heard_ms;
	unsigned act = 0;

	if (!p->telemetry_ms)
		return 0;
	if (p->reachable && silent >= 3 * (int64_t)p->telemetry_ms) {
		p->reachable = false;
		p->power_mw = -1;
		act |= PLUG_REPORT;
	}
	if (!p->status_asked && silent >= 2 * (int64_t)p->telemetry_ms) {
		p->status_asked = true;
		act |= PLUG_ASK_STATUS;
	}
	return act;
}

int64_t plug_next_tick(const struct plug_ctl *p)
{
	if (!p->telemetry_ms)
		return INT64_MAX;
	if (!p->status_asked)
		return p->last_heard_ms + 2 * (int64_t)p->telemetry_ms;
	if (p->reachable)
		return p->last_heard_ms + 3 * (int64_t)p->telemetry_ms;
	return INT64_MAX;
}

bool plug_take_wanted(struct plug_ctl *p, int64_t now_ms)
{
	p->last_cmd_ms = now_ms;
	return p->wanted_on;
}

int32_t plug_measured_w(const struct plug_ctl *p)
{
	if (p->power_mw < 0 || !p->reachable)
		return -1;
	if (p->power_mw > (int64_t)INT32_MAX * 1000)
		return INT32_MAX;
	return (int32_t)((p->power_mw + 500) / 1000);
}
