// SPDX-License-Identifier: GPL-2.0
#include "dbus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

int64_t service_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t service_real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- properties ---------------------------------------------------------- */

static const char *const group_props[][12] = {
	/* MP_READINGS */ { "Voltage", "Current", "ActivePower", "RenewablePower", "PowerFactor",
			    "Frequency", NULL },
	/* MP_REGISTERS */ { "ImportEnergy", "ExportEnergy", "RenewableEnergy", "ImportEnergyByPeriod",
			     "ExportEnergyByPeriod", "RenewableEnergyByPeriod", "MaxDemand",
			     "BillingPeriodStart", "PriceSoFar", "LastBill", "CurrentTariffPeriod", NULL },
	/* MP_TARIFF */ { "Tariff", "Currency", "CurrentTariffPeriod", NULL },
	/* MP_ALLOC */ { "Allocation", "AllocationReason", "DeclaredDemand", NULL },
	/* MP_RELAYS */ { "MainRelay", "ProtectionState", "RemoteState", "LoadRelays", "TripCount", "Loads",
			  NULL },
	/* MP_ALARMS */ { "Alarms", NULL },
	/* MP_UPLINK */ { "UplinkState", NULL },
	/* MP_CLOCK */ { "ClockTrusted", "ClockOffset", "ClockSource", "PriceSoFar", "CurrentTariffPeriod",
			 NULL },
	/* MP_LOADS */ { "Loads", NULL },
};
#define NGROUPS (sizeof(group_props) / sizeof(group_props[0]))

static int append_by_period(sd_bus_message *reply, const struct meter *m, const uint64_t *v)
{
	int r = sd_bus_message_open_container(reply, 'a', "{st}");

	for (unsigned i = 0; r >= 0 && i < m->tariff.nperiods; i++)
		r = sd_bus_message_append(reply, "{st}", m->tariff.period_name[i], v[i]);
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int get_prop(sd_bus *bus, const char *path, const char *iface, const char *p,
		    sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
	struct service *s = userdata;
	const struct meter *m = s->m;
	const struct registers *rg = &m->reg;
	int64_t now = service_real_ms();
	uint64_t imp, exp, ren;
	int r = 0;

	(void)bus;
	(void)path;
	(void)iface;
	(void)e;
	if (!strcmp(p, "Voltage"))
		return sd_bus_message_append(reply, "u", m->rd.v_mv);
	if (!strcmp(p, "Current"))
		return sd_bus_message_append(reply, "u", m->rd.i_ma);
	if (!strcmp(p, "ActivePower"))
		return sd_bus_message_append(reply, "x", m->rd.p_mw);
	if (!strcmp(p, "RenewablePower"))
		return sd_bus_message_append(reply, "x", m->rd.has_renew ? m->rd.renew_mw : (int64_t)0);
	if (!strcmp(p, "PowerFactor"))
		return sd_bus_message_append(reply, "i", m->rd.pf_milli);
	if (!strcmp(p, "Frequency"))
		return sd_bus_message_append(reply, "u", m->rd.f_mhz);
	/* lifetime totals include energy held while the clock is not trusted */
	meter_lifetime(m, &imp, &exp, &ren);
	if (!strcmp(p, "ImportEnergy"))
		return sd_bus_message_append(reply, "t", imp);
	if (!strcmp(p, "ExportEnergy"))
		return sd_bus_message_append(reply, "t", exp);
	if (!strcmp(p, "RenewableEnergy"))
		return sd_bus_message_append(reply, "t", ren);
	if (!strcmp(p, "ImportEnergyByPeriod"))
		return append_by_period(reply, m, rg->import.period_mwh);
	if (!strcmp(p, "ExportEnergyByPeriod"))
		return append_by_period(reply, m, rg->export.period_mwh);
	if (!strcmp(p, "RenewableEnergyByPeriod"))
		return append_by_period(reply, m, rg->renew.period_mwh);
	if (!strcmp(p, "MaxDemand"))
		return sd_bus_message_append(reply, "(tx)", rg->bill_max_demand_mw, rg->bill_max_demand_at);
	if (!strcmp(p, "BillingPeriodStart"))
		return sd_bus_message_append(reply, "x", rg->bill_start);
	if (!strcmp(p, "PriceSoFar"))
		return sd_bus_message_append(reply, "x", meter_price_milli(m, now));
	if (!strcmp(p, "LastBill"))
		return sd_bus_message_append(reply, "x", rg->last_bill_nano / 1000000);
	if (!strcmp(p, "CurrentTariffPeriod"))
		return sd_bus_message_append(reply, "s", meter_period_name(m, now));
	if (!strcmp(p, "Currency"))
		return sd_bus_message_append(reply, "s", m->tariff.currency);
	if (!strcmp(p, "Tariff")) {
		r = sd_bus_message_open_container(reply, 'a', "{sv}");
		for (unsigned i = 0; r >= 0 && tariff_spec_keys[i]; i++)
			r = sd_bus_message_append(reply, "{sv}", tariff_spec_keys[i], "s",
						  tariff_spec_get(&m->spec, tariff_spec_keys[i]));
		return r < 0 ? r : sd_bus_message_close_container(reply);
	}
	if (!strcmp(p, "Allocation")) {
		const struct alloc_decision *d = &m->decision;

		return sd_bus_message_append(reply, "a{sx}", 9, "grant", m->grant_w, "demand", d->demand_w,
					     "declared", m->declared_w, "from-grid", d->from_grid_w,
					     "from-renewable", d->from_renew_w, "deficit", d->deficit_w,
					     "request", d->request_w, "surplus", d->surplus_w,
					     "shed", alloc_shed_w(&m->alloc));
	}
	if (!strcmp(p, "AllocationReason"))
		return sd_bus_message_append(reply, "s", m->decision.reason);
	if (!strcmp(p, "DeclaredDemand")) {
		r = sd_bus_message_open_container(reply, 'a', "{su}");
		for (unsigned i = 0; r >= 0 && i < METER_MAX_APPLIANCES; i++)
			if (m->appl[i].name[0])
				r = sd_bus_message_append(reply, "{su}", m->appl[i].name, m->appl[i].watts);
		return r < 0 ? r : sd_bus_message_close_container(reply);
	}
	if (!strcmp(p, "MainRelay"))
		return sd_bus_message_append(reply, "s", m->main_closed ? "closed" : "open");
	if (!strcmp(p, "ProtectionState"))
		return sd_bus_message_append(reply, "s", protect_state_name(m->prot.state));
	if (!strcmp(p, "RemoteState"))
		return sd_bus_message_append(reply, "s", remote_state_name(m->prot.remote));
	if (!strcmp(p, "TripCount"))
		return sd_bus_message_append(reply, "t", m->prot.total_trips);
	if (!strcmp(p, "LoadRelays")) {
		r = sd_bus_message_open_container(reply, 'a', "{sb}");
		for (size_t i = 0; r >= 0 && i < m->alloc.nloads; i++)
			r = sd_bus_message_append(reply, "{sb}", m->alloc.load[i].name, (int)m->load_closed[i]);
		return r < 0 ? r : sd_bus_message_close_container(reply);
	}
	if (!strcmp(p, "Loads")) {
		/* name, switch, state, wanted_on, shed, reachable, measured_w */
		r = sd_bus_message_open_container(reply, 'a', "(sssbbbi)");
		for (size_t i = 0; r >= 0 && i < m->alloc.nloads; i++) {
			const struct alloc_load *l = &m->alloc.load[i];

			r = sd_bus_message_append(reply, "(sssbbbi)", l->name,
						  meter_load_external(m, i) ? "external" : "gpio",
						  meter_load_state(m, i), (int)m->load_closed[i], (int)l->shed,
						  (int)l->reachable, l->measured_w);
		}
		return r < 0 ? r : sd_bus_message_close_container(reply);
	}
	if (!strcmp(p, "Alarms")) {
		r = sd_bus_message_open_container(reply, 'a', "s");
		for (unsigned a = 0; r >= 0 && a < ALARM_COUNT; a++)
			if (m->alarms & (1u << a))
				r = sd_bus_message_append(reply, "s", meter_alarm_name(a));
		return r < 0 ? r : sd_bus_message_close_container(reply);
	}
	if (!strcmp(p, "UplinkState"))
		return sd_bus_message_append(reply, "s", m->uplink->ops->state(m->uplink));
	if (!strcmp(p, "ClockTrusted"))
		return sd_bus_message_append(reply, "b", (int)meter_time_trusted(m));
	if (!strcmp(p, "ClockOffset"))
		return sd_bus_message_append(reply, "x", m->clock_offset_ms);
	if (!strcmp(p, "ClockSource"))
		return sd_bus_message_append(reply, "s", meter_clock_source_name(m));
	if (!strcmp(p, "Authorization"))
		return sd_bus_message_append(reply, "s", auth_mode_name(&s->auth));
	return -ENOENT;
}

/* ---- rate-bounded PropertiesChanged -------------------------------------- */

static void emit_now(struct service *s)
{
	const char *names[64];
	size_t n = 0;

	for (unsigned g = 0; g < NGROUPS; g++) {
		if (!(s->dirty & (1u << g)))
			continue;
		for (unsigned i = 0; group_props[g][i]; i++) {
			bool dup = false;

			for (size_t k = 0; k < n; k++)
				dup |= !strcmp(names[k], group_props[g][i]);
			if (!dup && n < 63)
				names[n++] = group_props[g][i];
		}
	}
	names[n] = NULL;
	s->dirty = 0;
	if (n && sd_bus_emit_properties_changed_strv(s->bus, METER_PATH, METER_IFACE, (char **)names) >= 0)
		s->emitted++;
}

static int emit_timer_cb(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct service *s = userdata;

	(void)es;
	s->last_emit_usec = usec;
	emit_now(s);
	return 0;
}

static void hook_changed(void *ctx, unsigned groups)
{
	struct service *s = ctx;
	uint64_t now, at;

	s->dirty |= groups;
	if (!s->m || !s->event)
		return;
	if (sd_event_source_get_enabled(s->emit_timer, NULL) > 0)
		return;	/* already scheduled */
	sd_event_now(s->event, CLOCK_MONOTONIC, &now);
	at = s->last_emit_usec + s->interval_usec;
	if (at < now)
		at = now;
	sd_event_source_set_time(s->emit_timer, at);
	sd_event_source_set_enabled(s->emit_timer, SD_EVENT_ONESHOT);
}

static void hook_alarm(void *ctx, const char *name, bool active, const char *detail)
{
	struct service *s = ctx;

	sd_bus_emit_signal(s->bus, METER_PATH, METER_IFACE, "Alarm", "sbs", name, (int)active, detail);
}

static void hook_relay(void *ctx, const char *name, bool closed, const char *reason)
{
	struct service *s = ctx;

	sd_bus_emit_signal(s->bus, METER_PATH, METER_IFACE, "RelayChanged", "sbs", name, (int)closed,
			   reason);
}

static void hook_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "<%d>%s\n", level, msg);
}

/* ---- authorised methods --------------------------------------------------- */

struct pending {
	service_authorised_fn fn;
	void *ctx;
	const char *action;
};

static void auth_done(void *userdata, sd_bus_message *m, int allowed, const char *who)
{
	struct pending *p = userdata;

	if (allowed < 0)
		sd_bus_reply_method_errorf(m, SD_BUS_ERROR_ACCESS_DENIED,
					   "authorisation check for %s failed: %s", p->action,
					   strerror(-allowed));
	else if (!allowed)
		sd_bus_reply_method_errorf(m, SD_BUS_ERROR_ACCESS_DENIED, "%s is not authorised for %s",
					   who, p->action);
	else if (sd_bus_message_rewind(m, true) >= 0)
		p->fn(p->ctx, m, who);
	free(p);
}

int service_authorise(struct service *s, sd_bus_message *m, const char *action,
		      service_authorised_fn fn, void *ctx)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->ctx = ctx;
	p->action = action;
	return auth_check(&s->auth, m, action, auth_done, p) < 0 ? -ENOMEM : 1;
}

/* The meter's own methods: fn runs with the service as its context. */
static int authorise(struct service *s, sd_bus_message *m, const char *action,
		     service_authorised_fn fn)
{
	return service_authorise(s, m, action, fn, s);
}

static int reply_result(sd_bus_message *m, int r, const char *msg)
{
	if (r >= 0)
		return sd_bus_reply_method_return(m, NULL);
	if (r == -EALREADY || r == -EPERM)
		return sd_bus_reply_method_errorf(m, METER_ERR_STATE, "%s", msg);
	return sd_bus_reply_method_errorf(m, METER_ERR_FAILED, "%s", msg);
}

static int do_disconnect(void *ctx, sd_bus_message *m, const char *who)
{
	struct service *s = ctx;
	char msg[128] = "";

	return reply_result(m, meter_disconnect(s->m, who, msg, sizeof(msg)), msg);
}

static int do_arm(void *ctx, sd_bus_message *m, const char *who)
{
	struct service *s = ctx;
	char msg[128] = "";

	return reply_result(m, meter_arm_reconnect(s->m, who, msg, sizeof(msg)), msg);
}

static int do_confirm(void *ctx, sd_bus_message *m, const char *who)
{
	struct service *s = ctx;
	char msg[128] = "";

	return reply_result(m, meter_confirm_reconnect(s->m, who, msg, sizeof(msg)), msg);
}

static int do_clear_lockout(void *ctx, sd_bus_message *m, const char *who)
{
	struct service *s = ctx;
	char msg[128] = "";

	return reply_result(m, meter_clear_lockout(s->m, who, service_mono_ms(), msg, sizeof(msg)), msg);
}

static int do_self_test(void *ctx, sd_bus_message *m, const char *who)
{
	struct service *s = ctx;
	char buf[2048];
	sd_bus_message *reply = NULL;
	char *line, *save = NULL;
	bool ok;
	int r;

	(void)who;
	ok = meter_self_test(s->m, buf, sizeof(buf));
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "b", (int)ok);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "s");
	for (line = strtok_r(buf, "\n", &save); r >= 0 && line; line = strtok_r(NULL, "\n", &save))
		r = sd_bus_message_append(reply, "s", line);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

#define SIMPLE_METHOD(fname, action, fn)						\
static int fname(sd_bus_message *m, void *userdata, sd_bus_error *e)			\
{											\
	(void)e;									\
	return authorise(userdata, m, action, fn);					\
}
SIMPLE_METHOD(method_disconnect, "org.gridmeter.meter.disconnect", do_disconnect)
SIMPLE_METHOD(method_arm, "org.gridmeter.meter.reconnect", do_arm)
SIMPLE_METHOD(method_confirm, "org.gridmeter.meter.confirm-reconnect", do_confirm)
SIMPLE_METHOD(method_clear_lockout, "org.gridmeter.meter.clear-lockout", do_clear_lockout)
SIMPLE_METHOD(method_self_test, "org.gridmeter.meter.self-test", do_self_test)

/* SetTariff(a{sv}): parse into a spec, validating every key; used twice (check, then apply). */
static int read_tariff(sd_bus_message *m, struct tariff_spec *spec, sd_bus_error *e)
{
	const char *key, *val;
	int r;

	tariff_spec_init(spec);
	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		char type;
		const char *contents;

		r = sd_bus_message_read(m, "s", &key);
		if (r < 0)
			return r;
		r = sd_bus_message_peek_type(m, &type, &contents);
		if (r < 0)
			return r;
		if (strcmp(contents, "s"))
			return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS,
						 "tariff['%s']: value must be a string, not '%s'", key, contents);
		r = sd_bus_message_read(m, "v", "s", &val);
		if (r < 0)
			return r;
		r = tariff_spec_set(spec, key, val);
		if (r == -ENOENT)
			return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS, "tariff: unknown key '%s'", key);
		if (r)
			return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS, "tariff['%s']: value too long", key);
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

static int do_set_tariff(void *ctx, sd_bus_message *m, const char *who)
{
	struct service *s = ctx;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	struct tariff_spec spec;
	const char *bad = NULL;
	char msg[256] = "";
	int r = read_tariff(m, &spec, &e);

	if (r < 0) {
		r = sd_bus_reply_method_error(m, &e);
		sd_bus_error_free(&e);
		return r;
	}
	r = meter_set_tariff(s->m, &spec, who, &bad, msg, sizeof(msg));
	if (r && bad)
		return sd_bus_reply_method_errorf(m, SD_BUS_ERROR_INVALID_ARGS, "tariff['%s']: %s", bad, msg);
	return reply_result(m, r, msg);
}

static int method_set_tariff(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct service *s = userdata;
	struct tariff_spec spec;
	struct tariff t;
	const char *bad = NULL;
	char msg[256];
	int r = read_tariff(m, &spec, e);

	if (r < 0)
		return r;
	if (tariff_compile(&spec, &t, &bad, msg, sizeof(msg)))
		return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS, "tariff['%s']: %s", bad, msg);
	return authorise(s, m, "org.gridmeter.meter.set-tariff", do_set_tariff);
}

static int check_declare(sd_bus_message *m, const char **name, uint32_t *watts, uint32_t *dur,
			 sd_bus_error *e)
{
	int r = sd_bus_message_read(m, "suu", name, watts, dur);
	size_t len;

	if (r < 0)
		return r;
	len = strlen(*name);
	if (!len || len > 31 || strspn(*name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != len)
		return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS,
					 "name: must be 1-31 characters of A-Z a-z 0-9 _ - .");
	if (*watts > 100000)
		return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS, "watts: %u exceeds 100000 W", *watts);
	if (*dur > 7 * 86400)
		return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS,
					 "duration: %u s exceeds 7 days (0 means until withdrawn)", *dur);
	return 0;
}

static int do_declare(void *ctx, sd_bus_message *m, const char *who)
{
	struct service *s = ctx;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	const char *name;
	uint32_t watts, dur;
	char msg[128] = "";
	int r = check_declare(m, &name, &watts, &dur, &e);

	(void)who;
	if (r < 0) {
		r = sd_bus_reply_method_error(m, &e);
		sd_bus_error_free(&e);
		return r;
	}
	return reply_result(m, meter_declare(s->m, name, watts, dur, service_mono_ms(), msg, sizeof(msg)), msg);
}

static int method_declare(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	const char *name;
	uint32_t watts, dur;
	int r = check_declare(m, &name, &watts, &dur, e);

	if (r < 0)
		return r;
	return authorise(userdata, m, APPLIANCE_ACTION, do_declare);
}

/* ---- external loads (the MQTT bridge) ---------------------------------------- */

static int do_report(void *ctx, sd_bus_message *m, const char *who)
{
	struct service *s = ctx;
	const char *name;
	int reachable, on, r;
	int32_t measured;
	uint32_t declared;
	char msg[160] = "";

	(void)who;
	r = sd_bus_message_read(m, "sbbiu", &name, &reachable, &on, &measured, &declared);
	if (r < 0)
		return sd_bus_reply_method_errorf(m, SD_BUS_ERROR_INVALID_ARGS, "%s", strerror(-r));
	r = meter_report_load(s->m, name, reachable, on, measured, declared, service_mono_ms(), msg,
			      sizeof(msg));
	if (r == -ENOENT)
		return sd_bus_reply_method_errorf(m, METER_ERR_NO_SUCH_LOAD, "%s", msg);
	if (r == -EMEDIUMTYPE)
		return sd_bus_reply_method_errorf(m, METER_ERR_NOT_EXTERNAL, "%s", msg);
	if (r < 0)
		return sd_bus_reply_method_errorf(m, SD_BUS_ERROR_INVALID_ARGS, "%s", msg);
	for (size_t i = 0; i < s->m->alloc.nloads; i++)
		if (!strcmp(s->m->alloc.load[i].name, name))
			reporters_note(&s->reporters, i, sd_bus_message_get_sender(m));
	return sd_bus_reply_method_return(m, NULL);
}

/*
 * ReportLoad(s name, b reachable, b on, i measured_w, u declared_w): the
 * bridge's reports, authorised for org.gridmeter.meter.report-load once
 * per unique name (each report would otherwise cost a polkit round trip).
 */
static int method_report_load(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct service *s = userdata;
	const char *sender = sd_bus_message_get_sender(m);

	(void)e;
	if (reporters_known(&s->reporters, sender)) {
		int r = do_report(s, m, sender);

		return r < 0 ? r : 1;
	}
	return authorise(s, m, REPORT_LOAD_ACTION, do_report);
}

/* ---- open methods ----------------------------------------------------------- */

#define PROFILE_MAX_REPLY	10000	/* about 240 KB of reply */

static int method_load_profile(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct service *s = userdata;
	const struct profile *p = &s->m->prof;
	sd_bus_message *reply = NULL;
	int64_t from, to;
	int r = sd_bus_message_read(m, "xx", &from, &to);

	if (r < 0)
		return r;
	if (from > to)
		return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS, "from: %lld is after to (%lld)",
					 (long long)from, (long long)to);
	{
		size_t first = profile_lower_bound(p, from), last = profile_lower_bound(p, to);

		if (last - first > PROFILE_MAX_REPLY)
			return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS,
						 "to: the range holds %zu intervals, at most %d per call "
						 "(ask again from the last start + 1)",
						 last - first, PROFILE_MAX_REPLY);
	}
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(xuuuu)");
	for (size_t i = profile_lower_bound(p, from); r >= 0 && i < p->count; i++) {
		const struct profile_entry *pe = profile_at(p, i);

		if (pe->start >= to)
			break;
		r = sd_bus_message_append(reply, "(xuuuu)", pe->start, pe->import_mwh, pe->export_mwh,
					  pe->renew_mwh, pe->flags);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 1;
}

/* ---- vtables ----------------------------------------------------------------- */

#define PROP(name, sig) SD_BUS_PROPERTY(name, sig, get_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)

static const sd_bus_vtable meter_vtable[] = {
	SD_BUS_VTABLE_START(0),
	PROP("Voltage", "u"),
	PROP("Current", "u"),
	PROP("ActivePower", "x"),
	PROP("RenewablePower", "x"),
	PROP("PowerFactor", "i"),
	PROP("Frequency", "u"),
	PROP("ImportEnergy", "t"),
	PROP("ExportEnergy", "t"),
	PROP("RenewableEnergy", "t"),
	PROP("ImportEnergyByPeriod", "a{st}"),
	PROP("ExportEnergyByPeriod", "a{st}"),
	PROP("RenewableEnergyByPeriod", "a{st}"),
	PROP("MaxDemand", "(tx)"),
	PROP("BillingPeriodStart", "x"),
	PROP("PriceSoFar", "x"),
	PROP("LastBill", "x"),
	PROP("Currency", "s"),
	PROP("CurrentTariffPeriod", "s"),
	PROP("Tariff", "a{sv}"),
	PROP("Allocation", "a{sx}"),
	PROP("AllocationReason", "s"),
	PROP("DeclaredDemand", "a{su}"),
	PROP("MainRelay", "s"),
	PROP("ProtectionState", "s"),
	PROP("RemoteState", "s"),
	PROP("TripCount", "t"),
	PROP("LoadRelays", "a{sb}"),
	PROP("Loads", "a(sssbbbi)"),
	PROP("Alarms", "as"),
	PROP("UplinkState", "s"),
	PROP("ClockTrusted", "b"),
	PROP("ClockOffset", "x"),
	PROP("ClockSource", "s"),
	SD_BUS_PROPERTY("Authorization", "s", get_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_METHOD_WITH_NAMES("GetLoadProfile", "xx", SD_BUS_PARAM(from) SD_BUS_PARAM(to),
				 "a(xuuuu)", SD_BUS_PARAM(intervals), method_load_profile,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("SetTariff", "a{sv}", SD_BUS_PARAM(tariff), "", ,
				 method_set_tariff, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Disconnect", "", "", method_disconnect, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("ArmReconnect", "", "", method_arm, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("ConfirmReconnect", "", "", method_confirm, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("DeclareApplianceDemand", "suu",
				 SD_BUS_PARAM(name) SD_BUS_PARAM(watts) SD_BUS_PARAM(duration), "", ,
				 method_declare, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("ClearLockout", "", "", method_clear_lockout, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ReportLoad", "sbbiu",
				 SD_BUS_PARAM(name) SD_BUS_PARAM(reachable) SD_BUS_PARAM(on)
				 SD_BUS_PARAM(measured_w) SD_BUS_PARAM(declared_w), "", ,
				 method_report_load, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("SelfTest", "", , "bas", SD_BUS_PARAM(passed) SD_BUS_PARAM(results),
				 method_self_test, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_NAMES("Alarm", "sbs", SD_BUS_PARAM(name) SD_BUS_PARAM(active) SD_BUS_PARAM(detail), 0),
	SD_BUS_SIGNAL_WITH_NAMES("RelayChanged", "sbs", SD_BUS_PARAM(relay) SD_BUS_PARAM(closed) SD_BUS_PARAM(reason), 0),
	SD_BUS_VTABLE_END
};

int service_init(struct service *s, sd_bus *bus, sd_event *event, uint32_t interval_ms,
		 bool test_hooks, struct meter_hooks *hooks)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->bus = bus;
	s->event = event;
	s->interval_usec = (uint64_t)interval_ms * 1000;
	s->test_hooks = test_hooks;
	hooks->ctx = s;
	hooks->changed = hook_changed;
	hooks->alarm = hook_alarm;
	hooks->relay = hook_relay;
	hooks->log = hook_log;
	r = sd_event_add_time(event, &s->emit_timer, CLOCK_MONOTONIC, 0, 0, emit_timer_cb, s);
	if (r < 0)
		return r;
	return sd_event_source_set_enabled(s->emit_timer, SD_EVENT_OFF);
}

int service_start(struct service *s, struct meter *m, char *err, size_t errlen)
{
	int r;

	r = auth_init(&s->auth, s->bus, m->cfg.authorization, m->cfg.technician_group,
		      m->cfg.appliance_group, m->cfg.bridge_group, err, errlen);
	if (r < 0)
		return r;
	r = sd_bus_add_object_vtable(s->bus, &s->slot, METER_PATH, METER_IFACE, meter_vtable, s);
	if (r < 0) {
		snprintf(err, errlen, "registering %s: %s", METER_PATH, strerror(-r));
		return r;
	}
	if (s->test_hooks) {
		r = service_add_test_hooks(s);
		if (r < 0)
			return r;
	}
	s->m = m;
	reporters_init(&s->reporters, s->bus, m);
	fprintf(stderr, "<6>D-Bus: authorisation by %s%s%s\n", auth_mode_name(&s->auth),
		s->auth.mode == AUTH_GROUP ? ", group " : "", s->auth.mode == AUTH_GROUP ? s->auth.group : "");
	return 0;
}

void service_done(struct service *s)
{
	sd_bus_slot_unref(s->slot);
	sd_bus_slot_unref(s->test_slot);
	reporters_done(&s->reporters);
	sd_event_source_unref(s->emit_timer);
	s->slot = s->test_slot = NULL;
	s->emit_timer = NULL;
}
