// SPDX-License-Identifier: GPL-2.0
/*
 * What D-Bus callers (and the push button) do to the meter: remote
 * disconnect and DLMS reconnect, lockout clearing, tariff changes, appliance
 * demand, the self-test, and the derived values shown as properties.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "meter.h"
#include "meter_internal.h"
#include "tariff_file.h"

int meter_disconnect(struct meter *m, const char *who, char *msg, size_t len)
{
	if (protect_disconnect(&m->prot)) {
		snprintf(msg, len, "already disconnected");
		return -EALREADY;
	}
	meter_log(m, LOG_NOTICE, "remote disconnect by %s", who);
	meter_apply_main(m, "remote disconnect");
	meter_sync(m);
	meter_changed(m, MP_RELAYS);
	return 0;
}

int meter_arm_reconnect(struct meter *m, const char *who, char *msg, size_t len)
{
	if (protect_arm(&m->prot)) {
		snprintf(msg, len, "not disconnected (remote state %s)", remote_state_name(m->prot.remote));
		return -EALREADY;
	}
	meter_log(m, LOG_NOTICE, "reconnect armed by %s: waiting for local confirmation", who);
	meter_sync(m);
	meter_changed(m, MP_RELAYS);
	return 0;
}

int meter_confirm_reconnect(struct meter *m, const char *who, char *msg, size_t len)
{
	if (protect_confirm(&m->prot)) {
		snprintf(msg, len, "reconnect not armed (remote state %s)", remote_state_name(m->prot.remote));
		return -EPERM;
	}
	meter_log(m, LOG_NOTICE, "reconnect confirmed locally by %s", who);
	meter_apply_main(m, "reconnect confirmed");
	meter_sync(m);
	meter_changed(m, MP_RELAYS);
	return 0;
}

int meter_clear_lockout(struct meter *m, const char *who, int64_t mono_ms, char *msg, size_t len)
{
	if (protect_clear_lockout(&m->prot, mono_ms)) {
		snprintf(msg, len, "not locked out (protection state %s)", protect_state_name(m->prot.state));
		return -EALREADY;
	}
	meter_log(m, LOG_NOTICE, "lockout cleared by %s", who);
	meter_apply_main(m, "lockout cleared");
	meter_sync(m);
	meter_changed(m, MP_RELAYS);
	return 0;
}

static bool same_periods(const struct tariff *a, const struct tariff *b)
{
	if (a->nperiods != b->nperiods)
		return false;
	for (unsigned i = 0; i < a->nperiods; i++)
		if (strcmp(a->period_name[i], b->period_name[i]))
			return false;
	return true;
}

int meter_set_tariff(struct meter *m, const struct tariff_spec *spec, const char *who,
		     const char **badkey, char *msg, size_t len)
{
	struct tariff t;
	int r;

	r = tariff_compile(spec, &t, badkey, msg, len);
	if (r)
		return r;
	r = tariff_file_save(m->cfg.state_dir, METER_TARIFF_FILE, spec, NULL);
	if (r) {
		*badkey = NULL;
		snprintf(msg, len, "cannot save the tariff in %s: %s", m->cfg.state_dir, strerror(-r));
		return r;
	}
	if (!same_periods(&t, &m->tariff))
		registers_reset_periods(&m->reg);
	m->tariff = t;
	m->spec = *spec;
	meter_log(m, LOG_NOTICE, "tariff set by %s: type %s, %u periods", who, spec->type, t.nperiods);
	meter_sync(m);
	meter_changed(m, MP_TARIFF | MP_REGISTERS);
	return 0;
}

int meter_declare(struct meter *m, const char *name, uint32_t watts, uint32_t duration_s,
		  int64_t mono_ms, char *msg, size_t len)
{
	struct appliance *slot = NULL, *free_slot = NULL;

	for (unsigned i = 0; i < METER_MAX_APPLIANCES; i++) {
		if (!strcmp(m->appl[i].name, name))
			slot = &m->appl[i];
		else if (!m->appl[i].name[0] && !free_slot)
			free_slot = &m->appl[i];
	}
	if (!watts) {
		if (slot) {
			meter_log(m, LOG_INFO, "appliance %s: declared demand withdrawn", name);
			memset(slot, 0, sizeof(*slot));
			meter_changed(m, MP_ALLOC);
		}
		return 0;
	}
	if (!slot)
		slot = free_slot;
	if (!slot) {
		snprintf(msg, len, "already %d appliances declared", METER_MAX_APPLIANCES);
		return -ENOSPC;
	}
	snprintf(slot->name, sizeof(slot->name), "%s", name);
	slot->watts = watts;
	slot->expires_ms = duration_s ? mono_ms + (int64_t)duration_s * 1000 : 0;
	meter_log(m, LOG_INFO, "appliance %s: declares %u W for %s%u s", name, watts,
	     duration_s ? "" : "until withdrawn, ", duration_s);
	meter_changed(m, MP_ALLOC);
	if (m->have_reading)
		meter_allocate(m, mono_ms);	/* make room now, not at the next sample */
	return 0;
}

static void line(char *buf, size_t len, bool *all, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void line(char *buf, size_t len, bool *all, bool ok, const char *fmt, ...)
{
	size_t l = strlen(buf);
	va_list ap;

	if (l + 8 >= len)
		return;
	l += (size_t)snprintf(buf + l, len - l, "%s ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vsnprintf(buf + l, len - l, fmt, ap);
	va_end(ap);
	l = strlen(buf);
	if (l + 1 < len) {
		buf[l] = '\n';
		buf[l + 1] = 0;
	}
	*all &= ok;
}

bool meter_self_test(struct meter *m, char *buf, size_t len)
{
	struct sensor_reading r;
	bool all = true;
	int e;

	buf[0] = 0;
	e = m->sensor->ops->read(m->sensor, &r);
	line(buf, len, &all, !e, "sensor %s: %s", m->sensor->ops->name, e ? strerror(-e) : "reading ok");
	line(buf, len, &all, m->sensor->ops->event_fd(m->sensor) >= 0,
	     "sensor threshold events: %s", m->sensor->ops->event_fd(m->sensor) >= 0 ? "subscribed" : "not available");
	for (unsigned i = 0; i < m->relays->count; i++) {
		bool closed, want = i ? m->load_closed[i - 1] : m->main_closed;
		const char *name = i ? m->alloc.load[i - 1].name : "main";

		if (i && meter_load_external(m, i - 1)) {
			/* switched by the MQTT bridge: what it last reported */
			const char *st = meter_load_state(m, i - 1);

			line(buf, len, &all, !strcmp(st, want ? "on" : "off"), "load %s (external): %s, wanted %s",
			     name, st, want ? "on" : "off");
			continue;
		}
		e = m->relays->ops->get(m->relays, i, &closed);
		line(buf, len, &all, !e && closed == want, "relay %s: %s%s", name,
		     e ? strerror(-e) : closed ? "closed" : "open",
		     !e && closed != want ? " (does not match the commanded state)" : "");
	}
	line(buf, len, &all, !(m->alarms & (1u << ALARM_PROTECTION)), "driver threshold events: %s",
	     m->alarms & (1u << ALARM_PROTECTION) ? "NOT armed as configured" : "as configured");
	e = meter_sync(m);
	line(buf, len, &all, !e, "store: %s", e ? strerror(-e) : "synced");
	line(buf, len, &all, !(m->alarms & (1u << ALARM_STORE_CORRUPT)), "store integrity: %s",
	     m->alarms & (1u << ALARM_STORE_CORRUPT) ? "corruption recovered at start" : "ok");
	meter_log(m, all ? LOG_INFO : LOG_WARNING, "self-test %s", all ? "passed" : "FAILED");
	return all;
}

int64_t meter_price_milli(const struct meter *m, int64_t real_ms)
{
	/* an untrusted clock says nothing of the days started: the registers' time does */
	int64_t n = registers_price_nano(&m->reg, &m->tariff, m->clk.trusted ? real_ms : m->reg.last_ms);

	/* round half away from zero to milli-minor units */
	return n >= 0 ? (n + 500000) / 1000000 : -((-n + 500000) / 1000000);
}

const char *meter_period_name(const struct meter *m, int64_t real_ms)
{
	int64_t at = m->clk.trusted ? real_ms : m->reg.last_ms;
	unsigned p = tariff_period_at(&m->tariff, (time_t)(at / 1000), m->reg.bill_import_mwh);

	return m->tariff.period_name[p];
}
