// SPDX-License-Identifier: GPL-2.0
#include "protect.h"

#include <errno.h>
#include <string.h>

void protect_init(struct protect *p, const struct protect_cfg *cfg)
{
	memset(p, 0, sizeof(*p));
	p->cfg = *cfg;
	if (p->cfg.lockout_trips > PROTECT_MAX_TRIPS)
		p->cfg.lockout_trips = PROTECT_MAX_TRIPS;
	p->state = PROT_NORMAL;
	p->remote = REMOTE_CONNECTED;
	p->normal_since_ms = -1;
}

bool protect_relay_closed(const struct protect *p)
{
	return p->state == PROT_NORMAL && p->remote == REMOTE_CONNECTED;
}

bool protect_fault(struct protect *p, unsigned faults, int64_t now_ms)
{
	bool was_closed = protect_relay_closed(p);
	unsigned n = p->cfg.lockout_trips;

	if (!faults)
		return false;
	p->normal_since_ms = -1;
	p->last_fault = faults;
	if (p->state != PROT_NORMAL)
		return false;	/* already open: one trip per fault episode */
	p->total_trips++;
	/* Keep the last n trips; lock out when the oldest is within the window. */
	if (n) {
		if (p->ntrips == n) {
			memmove(p->trip_ms, p->trip_ms + 1, (n - 1) * sizeof(p->trip_ms[0]));
			p->ntrips--;
		}
		p->trip_ms[p->ntrips++] = now_ms;
	}
	if (n && p->ntrips == n && now_ms - p->trip_ms[0] <= p->cfg.lockout_window_ms)
		p->state = PROT_LOCKOUT;
	else
		p->state = PROT_TRIPPED;
	return was_closed;
}

bool protect_tick(struct protect *p, bool voltage_normal, int64_t now_ms)
{
	if (!voltage_normal) {
		p->normal_since_ms = -1;
		return false;
	}
	if (p->normal_since_ms < 0)
		p->normal_since_ms = now_ms;
	if (p->state != PROT_TRIPPED || now_ms - p->normal_since_ms < p->cfg.reclose_delay_ms)
		return false;
	p->state = PROT_NORMAL;
	return protect_relay_closed(p);
}

int protect_disconnect(struct protect *p)
{
	if (p->remote == REMOTE_DISCONNECTED)
		return -EALREADY;
	p->remote = REMOTE_DISCONNECTED;
	return 0;
}

int protect_arm(struct protect *p)
{
	if (p->remote != REMOTE_DISCONNECTED)
		return -EALREADY;
	p->remote = REMOTE_ARMED;
	return 0;
}

int protect_confirm(struct protect *p)
{
	if (p->remote != REMOTE_ARMED)
		return -EPERM;
	p->remote = REMOTE_CONNECTED;
	return 0;
}

int protect_clear_lockout(struct protect *p, int64_t now_ms)
{
	if (p->state != PROT_LOCKOUT)
		return -EALREADY;
	p->state = PROT_TRIPPED;
	p->ntrips = 0;
	p->normal_since_ms = -1;
	(void)now_ms;
	return 0;
}

const char *protect_state_name(enum protect_state s)
{
	switch (s) {
	case PROT_NORMAL: return "normal";
	case PROT_TRIPPED: return "tripped";
	case PROT_LOCKOUT: return "lockout";
	}
	return "?";
}

const char *remote_state_name(enum remote_state s)
{
	switch (s) {
	case REMOTE_CONNECTED: return "connected";
	case REMOTE_DISCONNECTED: return "disconnected";
	case REMOTE_ARMED: return "armed";
	}
	return "?";
}
