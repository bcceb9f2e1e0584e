// SPDX-License-Identifier: GPL-2.0
#include "meter_client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static int64_t real_s(void)
{
	return (int64_t)time(NULL);
}

/* Under the snapshot's lock: a change is published. */
static void publish(struct mw_client *c)
{
	c->snap->s.gen++;
	c->snap->s.updated = c->now();
	pthread_cond_broadcast(&c->snap->cond);
}

static int read_all(struct mw_client *c, sd_bus *bus)
{
	static const char *const ifaces[] = { MW_IFACE, MW_UPLINK_IFACE };
	sd_bus_message *reply[2] = { NULL, NULL };
	int r = 0;

	for (int i = 0; i < 2; i++) {
		sd_bus_error e = SD_BUS_ERROR_NULL;

		r = sd_bus_call_method(bus, MW_DEST, MW_PATH, "org.freedesktop.DBus.Properties", "GetAll",
				       &e, &reply[i], "s", ifaces[i]);
		sd_bus_error_free(&e);
		if (r < 0 && i == 0)
			return r;	/* meterd is not there */
	}
	pthread_mutex_lock(&c->snap->lock);
	{
		struct mw_state *st = &c->snap->s;
		/* A meterd without [uplink] has no Uplink1: keep nothing of an earlier one. */
		st->has_uplink = false;
		st->route[0] = st->route_reason[0] = 0;
		/* Nor of Loads / HomeSensors: an older meterd does not have them. */
		st->nxloads = st->nhome = 0;
		r = mw_state_apply_dict(st, MW_IFACE, reply[0]);
		if (r >= 0 && reply[1])
			mw_state_apply_dict(st, MW_UPLINK_IFACE, reply[1]);
		st->connected = r >= 0;
		/* counted before the change is published: a waiter that sees it connected sees the read */
		if (r >= 0)
			atomic_fetch_add(&c->reads, 1);
		publish(c);
	}
	pthread_mutex_unlock(&c->snap->lock);
	sd_bus_message_unref(reply[0]);
	sd_bus_message_unref(reply[1]);
	return r;
}

static void set_gone(struct mw_client *c)
{
	pthread_mutex_lock(&c->snap->lock);
	if (c->snap->s.connected) {
		c->snap->s.connected = false;
		publish(c);
	}
	pthread_mutex_unlock(&c->snap->lock);
}

struct loop {
	struct mw_client *c;
	bool need_read;		/* meterd (re)appeared or a read failed */
};

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct loop *l = userdata;
	struct mw_client *c = l->c;
	const char *iface = sd_bus_message_get_interface(m), *member = sd_bus_message_get_member(m);
	int r = 0;

	(void)e;
	if (!iface || !member)
		return 0;
	if (!strcmp(iface, "org.freedesktop.DBus") && !strcmp(member, "NameOwnerChanged")) {
		const char *name, *old, *new;

		if (sd_bus_message_read(m, "sss", &name, &old, &new) < 0 || strcmp(name, MW_DEST))
			return 0;
		if (new[0])
			l->need_read = true;
		else
			set_gone(c);
		return 0;
	}
	pthread_mutex_lock(&c->snap->lock);
	if (!strcmp(iface, "org.freedesktop.DBus.Properties") && !strcmp(member, "PropertiesChanged")) {
		const char *which;

		r = sd_bus_message_read_basic(m, 's', &which);
		if (r >= 0 && (!strcmp(which, MW_IFACE) || !strcmp(which, MW_UPLINK_IFACE)))
			r = mw_state_apply_dict(&c->snap->s, which, m);
		/* invalidated properties: meterd sends values, never only names */
	} else if (!strcmp(iface, MW_IFACE) && !strcmp(member, "Alarm")) {
		const char *name, *detail;
		int active;

		r = sd_bus_message_read(m, "sbs", &name, &active, &detail);
		if (r >= 0)
			mw_state_event(&c->snap->s, MW_EV_ALARM, name, active, detail, c->now());
	} else if (!strcmp(iface, MW_IFACE) && !strcmp(member, "RelayChanged")) {
		const char *relay, *reason;
		int closed;

		r = sd_bus_message_read(m, "sbs", &relay, &closed, &reason);
		if (r >= 0) {
			mw_state_event(&c->snap->s, MW_EV_RELAY, relay, closed, reason, c->now());
			if (!strcmp(relay, "main"))
				strcpy(c->snap->s.main_relay, closed ? "closed" : "open");
		}
	} else if (!strcmp(iface, MW_UPLINK_IFACE) && !strcmp(member, "RouteChanged")) {
		const char *route, *reason;

		r = sd_bus_message_read(m, "ss", &route, &reason);
		if (r >= 0) {
			mw_state_event(&c->snap->s, MW_EV_ROUTE, route, true, reason, c->now());
			snprintf(c->snap->s.route, sizeof(c->snap->s.route), "%s", route);
			snprintf(c->snap->s.route_reason, sizeof(c->snap->s.route_reason), "%s", reason);
		}
	} else {
		pthread_mutex_unlock(&c->snap->lock);
		return 0;
	}
	if (r >= 0)
		publish(c);
	pthread_mutex_unlock(&c->snap->lock);
	if (r < 0)
		l->need_read = true;	/* could not follow: read everything again */
	return 0;
}

/* One bus connection, until it fails or we are stopped. */
static void run_connection(struct mw_client *c, sd_bus *bus)
{
	struct loop l = { .c = c, .need_read = true };
	int r;

	r = sd_bus_add_match(bus, NULL,
			     "type='signal',sender='" MW_DEST "',path='" MW_PATH "'", on_signal, &l);
	if (r >= 0)
		r = sd_bus_add_match(bus, NULL,
				     "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
				     "member='NameOwnerChanged',arg0='" MW_DEST "'", on_signal, &l);
	if (r < 0)
		return;
	while (!atomic_load(&c->stop)) {
		if (l.need_read) {
			l.need_read = false;
			if (read_all(c, bus) < 0)
				set_gone(c);	/* NameOwnerChanged will tell when it is back */
		}
		r = sd_bus_process(bus, NULL);
		if (r < 0)
			return;
		if (r > 0)
			continue;
		r = sd_bus_wait(bus, 250000);
		if (r < 0 && r != -EINTR)
			return;
	}
}

static void *client_thread(void *arg)
{
	struct mw_client *c = arg;
	bool said = false;

	while (!atomic_load(&c->stop)) {
		sd_bus *bus = NULL;
		int r = sd_bus_open_system(&bus);

		if (r >= 0) {
			said = false;
			run_connection(c, bus);
		} else if (!said) {
			syslog(LOG_WARNING, "meterweb: no system bus (%s); trying again every second",
			       strerror(-r));
			said = true;
		}
		sd_bus_flush_close_unref(bus);
		set_gone(c);
		for (int i = 0; i < 10 && !atomic_load(&c->stop); i++)
			usleep(100000);
	}
	return NULL;
}

int mw_client_start(struct mw_client *c, struct mw_snapshot *snap)
{
	c->snap = snap;
	atomic_store(&c->stop, false);
	atomic_store(&c->reads, 0);
	if (!c->now)
		c->now = real_s;
	return -pthread_create(&c->thread, NULL, client_thread, c);
}

void mw_client_stop(struct mw_client *c)
{
	atomic_store(&c->stop, true);
	pthread_join(c->thread, NULL);
}

void mw_intervals_free(struct mw_intervals *iv)
{
	free(iv->v);
	memset(iv, 0, sizeof(*iv));
}

static int push(struct mw_intervals *iv, const struct mw_interval *e)
{
	if (iv->n == iv->cap) {
		size_t cap = iv->cap ? iv->cap * 2 : 256;
		struct mw_interval *v = realloc(iv->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		iv->v = v;
		iv->cap = cap;
	}
	iv->v[iv->n++] = *e;
	return 0;
}

/* One call: 0 done, -E2BIG range too large, other -errno. *last: newest start seen. */
static int call_once(sd_bus *bus, int64_t from, int64_t to, struct mw_intervals *out, char *err,
		     size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	struct mw_interval iv;
	int r;

	r = sd_bus_call_method(bus, MW_DEST, MW_PATH, MW_IFACE, "GetLoadProfile", &e, &reply, "xx", from, to);
	if (r < 0) {
		if (sd_bus_error_has_name(&e, SD_BUS_ERROR_INVALID_ARGS) && e.message &&
		    !strncmp(e.message, "to:", 3) && to - from > 1)
			r = -E2BIG;
		else
			snprintf(err, errlen, "GetLoadProfile: %s", e.message ? e.message : strerror(-r));
		sd_bus_error_free(&e);
		return r;
	}
	r = sd_bus_message_enter_container(reply, 'a', "(xuuuu)");
	while (r >= 0 && (r = sd_bus_message_read(reply, "(xuuuu)", &iv.start, &iv.import_mwh,
						   &iv.export_mwh, &iv.renew_mwh, &iv.flags)) > 0)
		if (push(out, &iv))
			r = -ENOMEM;
	sd_bus_message_unref(reply);
	if (r < 0)
		snprintf(err, errlen, "GetLoadProfile: reply not understood (%s)", strerror(-r));
	return r < 0 ? r : 0;
}

int mw_load_profile(int64_t from, int64_t to, struct mw_intervals *out, char *err, size_t errlen)
{
	sd_bus *bus = NULL;
	int r;

	if (from > to) {
		snprintf(err, errlen, "from: %lld is after to (%lld)", (long long)from, (long long)to);
		return -EINVAL;
	}
	r = sd_bus_open_system(&bus);
	if (r < 0) {
		snprintf(err, errlen, "system bus: %s", strerror(-r));
		return r;
	}
	while (from < to) {
		int64_t end = to;

		while ((r = call_once(bus, from, end, out, err, errlen)) == -E2BIG)
			end = from + (end - from) / 2;
		if (r < 0)
			break;
		from = end;
	}
	sd_bus_flush_close_unref(bus);
	return r < 0 ? r : 0;
}
