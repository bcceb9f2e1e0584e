// SPDX-License-Identifier: GPL-2.0
#include "meter_link.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "tariff.h"

#define ML_DEST		"org.gridmeter.Meter1"
#define ML_PATH		"/org/gridmeter/Meter1"
#define ML_IFACE	"org.gridmeter.Meter1"
#define ML_UPLINK	"org.gridmeter.Uplink1"
#define ML_RETRY_USEC	2000000
#define ML_MAX_ALARMS	HA_STATE_MAX_ALARMS

struct ml_refusal {
	char name[ML_NAME_LEN];
	char error[96];
};

struct meter_link {
	sd_event *ev;
	sd_bus *bus;
	sd_event_source *retry;
	sd_bus_slot *read_slot;		/* GetAll or Get(MeterId) in flight */
	const struct meter_link_ops *ops;
	void *ctx;
	bool present;
	bool said_no_bus;
	/* meterd's properties, in its units */
	bool have_readings;
	uint32_t voltage_mv, current_ma, frequency_mhz;
	int64_t power_mw;
	int32_t pf_milli;
	bool have_import, have_export, have_renew;
	uint64_t import_mwh, export_mwh, renew_mwh;
	bool have_price;
	int64_t price_milli;
	char currency[8];
	char period[16];
	char periods[ML_MAX_PERIODS][16];
	const char *period_ptr[ML_MAX_PERIODS + 1];
	bool have_relay;
	bool relay_closed;
	char alarm[ML_MAX_ALARMS][24];
	size_t nalarms;
	struct ml_load load[ML_MAX_LOADS];
	size_t nloads;
	struct ml_home home[ML_MAX_HOME];
	size_t nhome;
	char meter_id[8];
	unsigned long reports, refused;
	struct ml_refusal refusal[ML_MAX_LOADS];
};

static void ml_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ml_log(int level, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "<%d>meterd link: %s\n", level, msg);
}

/* ---- reading properties -------------------------------------------------------- */

struct changes {
	bool loads, values, urgent, identity;
};

static int read_str(sd_bus_message *m, char *buf, size_t len)
{
	const char *s;
	int r = sd_bus_message_read(m, "v", "s", &s);

	if (r >= 0)
		snprintf(buf, len, "%s", s);
	return r;
}

/* A property's variant holding an array a<CONTENTS>: entered down to the array's elements. */
static int enter_array(sd_bus_message *m, const char *contents)
{
	char vsig[24];
	int r;

	snprintf(vsig, sizeof(vsig), "a%s", contents);
	r = sd_bus_message_enter_container(m, 'v', vsig);
	return r < 0 ? r : sd_bus_message_enter_container(m, 'a', contents);
}

/* Out of the array and its variant. */
static int exit_array(sd_bus_message *m)
{
	int r = sd_bus_message_exit_container(m);

	return r < 0 ? r : sd_bus_message_exit_container(m);
}

static int read_loads(struct meter_link *l, sd_bus_message *m, struct changes *c)
{
	struct ml_load nl[ML_MAX_LOADS];
	size_t n = 0;
	const char *name, *sw, *state;
	int wanted, shed, reach;
	int32_t w;
	int r;

	r = enter_array(m, "(sssbbbi)");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(m, "(sssbbbi)", &name, &sw, &state, &wanted, &shed, &reach, &w)) > 0) {
		if (n == ML_MAX_LOADS)
			continue;
		memset(&nl[n], 0, sizeof(nl[n]));
		snprintf(nl[n].name, sizeof(nl[n].name), "%s", name);
		nl[n].external = !strcmp(sw, "external");
		snprintf(nl[n].state, sizeof(nl[n].state), "%s", state);
		nl[n].wanted_on = wanted;
		nl[n].shed = shed;
		nl[n].reachable = reach;
		nl[n].measured_w = w;
		n++;
	}
	if (r < 0)
		return r;
	r = exit_array(m);
	if (r < 0)
		return r;
	if (n != l->nloads || memcmp(nl, l->load, n * sizeof(nl[0])))
		c->loads = true;
	memcpy(l->load, nl, n * sizeof(nl[0]));
	l->nloads = n;
	return 0;
}

static int read_home(struct meter_link *l, sd_bus_message *m, struct changes *c)
{
	const char *name, *kind, *unit, *state;
	int64_t v;
	int alarm, r;
	size_t n = 0;

	r = enter_array(m, "(sssxsb)");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(m, "(sssxsb)", &name, &kind, &unit, &v, &state, &alarm)) > 0) {
		struct ml_home *h;

		if (n == ML_MAX_HOME)
			continue;
		h = &l->home[n];
		memset(h, 0, sizeof(*h));
		snprintf(h->name, sizeof(h->name), "%s", name);
		snprintf(h->kind, sizeof(h->kind), "%s", kind);
		snprintf(h->unit, sizeof(h->unit), "%s", unit);
		snprintf(h->state, sizeof(h->state), "%s", state);
		h->value_milli = v;
		h->alarm = alarm;
		n++;
	}
	if (r < 0)
		return r;
	if (n != l->nhome)
		c->identity = true;	/* entities to announce */
	l->nhome = n;
	c->values = true;
	return exit_array(m);
}

static int read_alarms(struct meter_link *l, sd_bus_message *m, struct changes *c)
{
	char na[ML_MAX_ALARMS][24];
	const char *s;
	size_t n = 0;
	int r;

	memset(na, 0, sizeof(na));
	r = enter_array(m, "s");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(m, "s", &s)) > 0)
		if (n < ML_MAX_ALARMS)
			snprintf(na[n++], sizeof(na[0]), "%s", s);
	if (r < 0)
		return r;
	if (n != l->nalarms || memcmp(na, l->alarm, sizeof(na)))
		c->urgent = true;
	memcpy(l->alarm, na, sizeof(na));
	l->nalarms = n;
	return exit_array(m);
}

/* The Tariff property is the tariff's text: compile it as meterd does, for the period names. */
static int read_tariff(struct meter_link *l, sd_bus_message *m, struct changes *c)
{
	struct tariff_spec spec;
	struct tariff t;
	const char *key, *val, *bad = NULL;
	char err[160], names[ML_MAX_PERIODS][16];
	int r;

	tariff_spec_init(&spec);
	r = enter_array(m, "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		r = sd_bus_message_read(m, "s", &key);
		if (r >= 0)
			r = sd_bus_message_read(m, "v", "s", &val);
		if (r < 0)
			return r;
		tariff_spec_set(&spec, key, val);	/* a key we do not know: not ours to judge */
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	r = exit_array(m);
	if (r < 0)
		return r;
	if (tariff_compile(&spec, &t, &bad, err, sizeof(err))) {
		ml_log(4, "meterd's Tariff not understood (%s: %s): periods left as they were",
		       bad ? bad : "?", err);
		return 0;
	}
	memset(names, 0, sizeof(names));
	for (unsigned i = 0; i < t.nperiods && i < ML_MAX_PERIODS; i++)
		snprintf(names[i], sizeof(names[i]), "%s", t.period_name[i]);
	if (memcmp(names, l->periods, sizeof(names))) {
		memcpy(l->periods, names, sizeof(names));
		c->identity = true;
	}
	for (unsigned i = 0; i <= ML_MAX_PERIODS; i++)
		l->period_ptr[i] = i < ML_MAX_PERIODS && l->periods[i][0] ? l->periods[i] : NULL;
	return 0;
}

#define RD(sig, dst) sd_bus_message_read(m, "v", sig, dst)

static int apply_prop(struct meter_link *l, const char *iface, const char *p, sd_bus_message *m,
		      struct changes *c)
{
	if (!strcmp(iface, ML_UPLINK)) {
		if (!strcmp(p, "MeterId")) {
			uint16_t id;
			char s[8];
			int r = RD("q", &id);

			if (r < 0)
				return r;
			snprintf(s, sizeof(s), "%u", id);
			if (strcmp(s, l->meter_id)) {
				strcpy(l->meter_id, s);
				c->identity = true;
			}
			return 0;
		}
		return sd_bus_message_skip(m, "v");
	}
	if (!strcmp(p, "Loads"))
		return read_loads(l, m, c);
	if (!strcmp(p, "HomeSensors"))
		return read_home(l, m, c);
	if (!strcmp(p, "Alarms"))
		return read_alarms(l, m, c);
	if (!strcmp(p, "Tariff"))
		return read_tariff(l, m, c);
	c->values = true;
	if (!strcmp(p, "Voltage")) {
		l->have_readings = true;
		return RD("u", &l->voltage_mv);
	}
	if (!strcmp(p, "Current"))
		return RD("u", &l->current_ma);
	if (!strcmp(p, "ActivePower"))
		return RD("x", &l->power_mw);
	if (!strcmp(p, "PowerFactor"))
		return RD("i", &l->pf_milli);
	if (!strcmp(p, "Frequency"))
		return RD("u", &l->frequency_mhz);
	if (!strcmp(p, "ImportEnergy")) {
		l->have_import = true;
		return RD("t", &l->import_mwh);
	}
	if (!strcmp(p, "ExportEnergy")) {
		l->have_export = true;
		return RD("t", &l->export_mwh);
	}
	if (!strcmp(p, "RenewableEnergy")) {
		l->have_renew = true;
		return RD("t", &l->renew_mwh);
	}
	if (!strcmp(p, "PriceSoFar")) {
		l->have_price = true;
		return RD("x", &l->price_milli);
	}
	if (!strcmp(p, "CurrentTariffPeriod"))
		return read_str(m, l->period, sizeof(l->period));
	if (!strcmp(p, "Currency")) {
		char cur[sizeof(l->currency)];
		int r = read_str(m, cur, sizeof(cur));

		if (r >= 0 && strcmp(cur, l->currency)) {
			strcpy(l->currency, cur);
			c->identity = true;
		}
		return r;
	}
	if (!strcmp(p, "MainRelay")) {
		char s[16];
		int r = read_str(m, s, sizeof(s));
		bool closed = !strcmp(s, "closed");

		if (r >= 0 && (!l->have_relay || closed != l->relay_closed))
			c->urgent = true;
		l->have_relay = true;
		l->relay_closed = closed;
		return r;
	}
	c->values = false;
	return sd_bus_message_skip(m, "v");
}

/* An a{sv} of one interface (GetAll reply, or PropertiesChanged after its interface name). */
static int apply_dict(struct meter_link *l, const char *iface, sd_bus_message *m, struct changes *c)
{
	const char *p;
	int r = sd_bus_message_enter_container(m, 'a', "{sv}");

	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		bool was = c->values;

		r = sd_bus_message_read(m, "s", &p);
		if (r >= 0)
			r = apply_prop(l, iface, p, m, c);
		c->values |= was;
		if (r < 0)
			return r;
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

static void tell(struct meter_link *l, const struct changes *c)
{
	if (!l->present)
		return;
	if (c->loads && l->ops->loads)
		l->ops->loads(l->ctx);
	if ((c->values || c->urgent || c->identity) && l->ops->values)
		l->ops->values(l->ctx, c->urgent, c->identity);
}

static void gone(struct meter_link *l)
{
	l->read_slot = sd_bus_slot_unref(l->read_slot);
	if (!l->present)
		return;
	l->present = false;
	l->nloads = 0;
	l->nhome = 0;
	l->have_readings = l->have_import = l->have_export = l->have_renew = false;
	l->have_price = l->have_relay = false;
	if (l->ops->presence)
		l->ops->presence(l->ctx, false);
}

static int on_meter_id(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct meter_link *l = userdata;
	struct changes c = { .loads = true, .values = true, .urgent = true, .identity = true };

	(void)e;
	l->read_slot = sd_bus_slot_unref(l->read_slot);
	if (sd_bus_message_is_method_error(m, NULL))
		l->meter_id[0] = 0;	/* no uplink: no Uplink1 interface */
	else if (apply_prop(l, ML_UPLINK, "MeterId", m, &c) < 0)
		l->meter_id[0] = 0;
	/* What meterd holds first (plugs, discovery), then "it is there" (availability online). */
	l->present = true;
	tell(l, &c);
	if (l->ops->presence)
		l->ops->presence(l->ctx, true);
	return 0;
}

static sd_bus_message *new_call(struct meter_link *l, const char *iface, const char *member)
{
	sd_bus_message *m = NULL;

	if (sd_bus_message_new_method_call(l->bus, &m, ML_DEST, ML_PATH, iface, member) < 0)
		return NULL;
	sd_bus_message_set_auto_start(m, 0);	/* meterd is started by systemd, not by us */
	return m;
}

static int on_get_all(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct meter_link *l = userdata;
	struct changes c = { 0 };
	sd_bus_message *call;
	int r;

	(void)e;
	l->read_slot = sd_bus_slot_unref(l->read_slot);
	if (sd_bus_message_is_method_error(m, NULL)) {
		const sd_bus_error *err = sd_bus_message_get_error(m);

		if (!sd_bus_error_has_name(err, SD_BUS_ERROR_SERVICE_UNKNOWN) &&
		    !sd_bus_error_has_name(err, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
			ml_log(4, "reading meterd's properties: %s", err->message ? err->message : err->name);
		gone(l);	/* NameOwnerChanged tells when it is there */
		return 0;
	}
	r = apply_dict(l, ML_IFACE, m, &c);
	if (r < 0) {
		ml_log(3, "meterd's properties not understood: %s", strerror(-r));
		return 0;
	}
	call = new_call(l, "org.freedesktop.DBus.Properties", "Get");
	if (!call || sd_bus_message_append(call, "ss", ML_UPLINK, "MeterId") < 0 ||
	    sd_bus_call_async(l->bus, &l->read_slot, call, on_meter_id, l, 0) < 0)
		on_meter_id(m, l, NULL);	/* cannot ask: no meter id */
	sd_bus_message_unref(call);
	return 0;
}

static void read_all(struct meter_link *l)
{
	sd_bus_message *call;

	l->read_slot = sd_bus_slot_unref(l->read_slot);
	call = new_call(l, "org.freedesktop.DBus.Properties", "GetAll");
	if (!call || sd_bus_message_append(call, "s", ML_IFACE) < 0 ||
	    sd_bus_call_async(l->bus, &l->read_slot, call, on_get_all, l, 0) < 0)
		ml_log(3, "cannot ask meterd for its properties");
	sd_bus_message_unref(call);
}

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct meter_link *l = userdata;
	struct changes c = { 0 };
	const char *which;

	(void)e;
	if (sd_bus_message_is_signal(m, "org.freedesktop.DBus", "NameOwnerChanged")) {
		const char *name, *old, *new;

		if (sd_bus_message_read(m, "sss", &name, &old, &new) < 0 || strcmp(name, ML_DEST))
			return 0;
		if (old[0])
			gone(l);
		if (new[0])
			read_all(l);
		return 0;
	}
	if (!l->present || l->read_slot)
		return 0;	/* a full read is on its way */
	if (sd_bus_message_is_signal(m, ML_IFACE, "RelayChanged")) {
		/*
		 * A shed or a restore is signalled at once; Loads follows at
		 * meterd's property interval (1 s by default). Act on the signal,
		 * and let Loads confirm (it is what a missed signal falls back on).
		 */
		const char *relay, *reason;
		int closed;

		if (sd_bus_message_read(m, "sbs", &relay, &closed, &reason) < 0)
			return 0;
		for (size_t i = 0; i < l->nloads; i++)
			if (l->load[i].external && !strcmp(l->load[i].name, relay) &&
			    l->load[i].wanted_on != (bool)closed) {
				l->load[i].wanted_on = closed;
				c.loads = true;
			}
		tell(l, &c);
		return 0;
	}
	if (!sd_bus_message_is_signal(m, "org.freedesktop.DBus.Properties", "PropertiesChanged") ||
	    sd_bus_message_read_basic(m, 's', &which) < 0 ||
	    (strcmp(which, ML_IFACE) && strcmp(which, ML_UPLINK)))
		return 0;
	if (apply_dict(l, which, m, &c) < 0) {
		read_all(l);	/* could not follow: read everything again */
		return 0;
	}
	tell(l, &c);
	return 0;
}

/* ---- the bus connection ---------------------------------------------------------- */

static void schedule_retry(struct meter_link *l);

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct meter_link *l = userdata;

	(void)e;
	if (!sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected"))
		return 0;
	ml_log(4, "the system bus connection was lost; trying again every 2 s");
	gone(l);
	schedule_retry(l);	/* the dead connection is dropped there, not inside its own callback */
	return 1;
}

static void drop_bus(struct meter_link *l)
{
	if (l->bus) {
		sd_bus_detach_event(l->bus);
		l->bus = sd_bus_flush_close_unref(l->bus);
	}
}

static int connect_bus(struct meter_link *l)
{
	int r = sd_bus_open_system(&l->bus);

	if (r >= 0)
		r = sd_bus_attach_event(l->bus, l->ev, SD_EVENT_PRIORITY_NORMAL);
	if (r >= 0)
		r = sd_bus_add_filter(l->bus, NULL, on_disconnected, l);
	if (r >= 0)
		r = sd_bus_add_match(l->bus, NULL, "type='signal',sender='" ML_DEST "',path='" ML_PATH
				     "',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'",
				     on_signal, l);
	if (r >= 0)
		r = sd_bus_add_match(l->bus, NULL, "type='signal',sender='" ML_DEST "',path='" ML_PATH
				     "',interface='" ML_IFACE "',member='RelayChanged'", on_signal, l);
	if (r >= 0)
		r = sd_bus_add_match(l->bus, NULL, "type='signal',sender='org.freedesktop.DBus',"
				     "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='"
				     ML_DEST "'", on_signal, l);
	if (r < 0) {
		drop_bus(l);
		return r;
	}
	l->said_no_bus = false;
	read_all(l);
	return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct meter_link *l = userdata;
	int r;

	(void)s;
	(void)usec;
	drop_bus(l);
	r = connect_bus(l);
	if (r < 0) {
		if (!l->said_no_bus)
			ml_log(4, "no system bus (%s); trying again every 2 s", strerror(-r));
		l->said_no_bus = true;
		schedule_retry(l);
	}
	return 0;
}

static void schedule_retry(struct meter_link *l)
{
	uint64_t now;

	sd_event_now(l->ev, CLOCK_MONOTONIC, &now);
	if (!l->retry)
		sd_event_add_time(l->ev, &l->retry, CLOCK_MONOTONIC, now + ML_RETRY_USEC, 100000, on_retry, l);
	else {
		sd_event_source_set_time(l->retry, now + ML_RETRY_USEC);
		sd_event_source_set_enabled(l->retry, SD_EVENT_ONESHOT);
	}
}

int meter_link_new(struct meter_link **out, sd_event *ev, const struct meter_link_ops *ops, void *ctx)
{
	struct meter_link *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->ev = sd_event_ref(ev);
	l->ops = ops;
	l->ctx = ctx;
	l->period_ptr[0] = NULL;
	*out = l;
	on_retry(NULL, 0, l);
	return 0;
}

void meter_link_free(struct meter_link *l)
{
	if (!l)
		return;
	sd_bus_slot_unref(l->read_slot);
	sd_event_source_unref(l->retry);
	drop_bus(l);
	sd_event_unref(l->ev);
	free(l);
}

/* ---- what the bridge asks ------------------------------------------------------------ */

bool meter_link_present(const struct meter_link *l)
{
	return l->present;
}

const struct ml_load *meter_link_load(const struct meter_link *l, const char *name)
{
	for (size_t i = 0; l->present && i < l->nloads; i++)
		if (!strcmp(l->load[i].name, name))
			return &l->load[i];
	return NULL;
}

const struct ml_home *meter_link_home(const struct meter_link *l, size_t *n)
{
	*n = l->present ? l->nhome : 0;
	return l->home;
}

const char *meter_link_meter_id(const struct meter_link *l)
{
	return l->meter_id;
}

const char *meter_link_currency(const struct meter_link *l)
{
	return l->currency;
}

const char *const *meter_link_periods(const struct meter_link *l)
{
	return l->period_ptr;
}

static struct ml_refusal *refusal_of(struct meter_link *l, const char *name)
{
	struct ml_refusal *free_slot = NULL;

	for (size_t i = 0; i < ML_MAX_LOADS; i++) {
		if (!strcmp(l->refusal[i].name, name))
			return &l->refusal[i];
		if (!free_slot && !l->refusal[i].name[0])
			free_slot = &l->refusal[i];
	}
	if (free_slot)
		snprintf(free_slot->name, sizeof(free_slot->name), "%s", name);
	return free_slot;
}

struct report_call {
	struct meter_link *l;
	char name[ML_NAME_LEN];
};

static int on_report_reply(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct report_call *rc = userdata;
	struct ml_refusal *f = refusal_of(rc->l, rc->name);

	(void)e;
	if (sd_bus_message_is_method_error(m, NULL)) {
		const sd_bus_error *err = sd_bus_message_get_error(m);
		char what[96];

		rc->l->refused++;
		snprintf(what, sizeof(what), "%s", err->name ? err->name : "?");
		if (!f || strcmp(f->error, what)) {
			ml_log(3, "ReportLoad(%s) refused: %s: %s", rc->name, what,
			       err->message ? err->message : "");
			if (f)
				strcpy(f->error, what);
		}
	} else if (f && f->error[0]) {
		ml_log(5, "ReportLoad(%s) accepted again", rc->name);
		f->error[0] = 0;
	}
	return 0;
}

int meter_link_report(struct meter_link *l, const char *name, bool reachable, bool on,
		      int32_t measured_w, uint32_t declared_w)
{
	sd_bus_message *call;
	struct report_call *rc;
	int r;

	if (!l->present || !l->bus)
		return -ENOTCONN;
	rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	rc->l = l;
	snprintf(rc->name, sizeof(rc->name), "%s", name);
	call = new_call(l, ML_IFACE, "ReportLoad");
	r = call ? sd_bus_message_append(call, "sbbiu", name, (int)reachable, (int)on, measured_w,
					 declared_w) : -ENOMEM;
	if (r >= 0) {
		sd_bus_slot *slot = NULL;

		/* A floating slot: freed with the reply, and rc with it. */
		r = sd_bus_call_async(l->bus, &slot, call, on_report_reply, rc, 0);
		if (r >= 0) {
			sd_bus_slot_set_destroy_callback(slot, free);
			sd_bus_slot_set_floating(slot, 1);
			sd_bus_slot_unref(slot);
			rc = NULL;
		}
	}
	sd_bus_message_unref(call);
	free(rc);
	if (r >= 0)
		l->reports++;
	return r < 0 ? r : 0;
}

static unsigned minor_per_major(const char *currency)
{
	/* ISO 4217 minor units other than 2 among the currencies in use. */
	static const char *const zero[] = { "JPY", "KRW", "ISK", "CLP", "VND", "XAF", "XOF", "HUF", NULL };
	static const char *const three[] = { "BHD", "KWD", "OMR", "TND", "JOD", "IQD", "LYD", NULL };

	for (size_t i = 0; zero[i]; i++)
		if (!strcmp(currency, zero[i]))
			return 1;
	for (size_t i = 0; three[i]; i++)
		if (!strcmp(currency, three[i]))
			return 1000;
	return 100;
}

void meter_link_ha_values(const struct meter_link *l, struct ha_meter_values *v)
{
	memset(v, 0, sizeof(*v));
	if (!l->present)
		return;
	v->have_readings = l->have_readings;
	v->voltage_mv = l->voltage_mv;
	v->current_ma = l->current_ma;
	v->power_mw = l->power_mw;
	v->pf_milli = l->pf_milli;
	v->frequency_mhz = l->frequency_mhz;
	v->have_registers = l->have_import && l->have_export && l->have_renew;
	v->import_mwh = l->import_mwh;
	v->export_mwh = l->export_mwh;
	v->renew_mwh = l->renew_mwh;
	v->have_tariff = l->have_price && l->currency[0];
	v->price_milli = l->price_milli;
	v->minor_per_major = minor_per_major(l->currency);
	v->period = l->period;
	v->have_relay = l->have_relay;
	v->relay_closed = l->relay_closed;
	for (size_t i = 0; i < l->nalarms && i < HA_STATE_MAX_ALARMS; i++)
		v->active_alarms[v->nactive_alarms++] = l->alarm[i];
}

void meter_link_counts(const struct meter_link *l, unsigned long *reports, unsigned long *refused)
{
	*reports = l->reports;
	*refused = l->refused;
}
