// SPDX-License-Identifier: GPL-2.0
/* org.gridmeter.Uplink1 (dbus_uplink.h). */
#include "dbus_uplink.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dbus.h"

#define EMIT_DELAY_USEC	200000	/* coalesce bursts of changes */

static void snapshot(const struct town_uplink *u, struct uplink_props *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->route, sizeof(p->route), "%s", town_uplink_route_name(u->route));
	snprintf(p->modem, sizeof(p->modem), "%s",
		 u->have_modem ? sim900_state_name(u->modem.state) : "none");
	snprintf(p->registration, sizeof(p->registration), "%s", town_uplink_registration(u));
	p->csq = u->have_modem ? u->modem.csq : 99;
	p->backlog = gmpc_backlog(&u->gc);
	p->acked = u->ob.acked;
	p->last_ack = u->last_ack_ms;
	snprintf(p->session, sizeof(p->session), "%s", gmpc_state_name(u->gc.state));
	snprintf(p->keys, sizeof(p->keys), "%s", u->cred.has_next_key ? "rotating" :
		 u->cred.has_next_town ? "town-key-pending" : "current");
	p->signed_handled = u->sc.handled;
}

/* SignedCommands: the last signed commands, newest first. */
static int signed_commands(sd_bus_message *reply, const struct signed_commands *sc)
{
	int r = sd_bus_message_open_container(reply, 'a', "(tsssx)");

	for (unsigned int i = 0; r >= 0 && i < sc->nrecent; i++) {
		const struct sc_recent *c = &sc->recent[i];

		r = sd_bus_message_append(reply, "(tsssx)", c->id, c->action, c->signers,
					  gmc_status_name(c->status), c->at);
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int get_prop(sd_bus *bus, const char *path, const char *iface, const char *p,
		    sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
	struct uplink_service *s = userdata;
	const struct town_uplink *u = s->u;
	struct uplink_props v;

	(void)bus;
	(void)path;
	(void)iface;
	(void)e;
	snapshot(u, &v);
	if (!strcmp(p, "MeterId"))
		return sd_bus_message_append(reply, "q", u->cred.meter_id);
	if (!strcmp(p, "Route"))
		return sd_bus_message_append(reply, "s", v.route);
	if (!strcmp(p, "RouteReason"))
		return sd_bus_message_append(reply, "s", u->reason);
	if (!strcmp(p, "ModemState"))
		return sd_bus_message_append(reply, "s", v.modem);
	if (!strcmp(p, "SignalQuality"))
		return sd_bus_message_append(reply, "u", (uint32_t)v.csq);
	if (!strcmp(p, "SignalStrength"))
		/* 27.007 +CSQ: 0 = -113 dBm ... 31 = -51 dBm or more; 99 unknown */
		return sd_bus_message_append(reply, "i", v.csq >= 0 && v.csq <= 31 ?
					     -113 + 2 * v.csq : 0);
	if (!strcmp(p, "Registration"))
		return sd_bus_message_append(reply, "s", v.registration);
	if (!strcmp(p, "Server")) {
		char buf[160] = "";

		if (u->have_modem)
			snprintf(buf, sizeof(buf), "%s:%u", u->modem.cfg.host, u->modem.cfg.port);
		return sd_bus_message_append(reply, "s", buf);
	}
	if (!strcmp(p, "Backlog"))
		return sd_bus_message_append(reply, "t", v.backlog);
	if (!strcmp(p, "Acknowledged"))
		return sd_bus_message_append(reply, "t", v.acked);
	if (!strcmp(p, "LastAcknowledgement"))
		return sd_bus_message_append(reply, "x", v.last_ack);
	if (!strcmp(p, "Session"))
		return sd_bus_message_append(reply, "s", v.session);
	if (!strcmp(p, "KeyState"))
		return sd_bus_message_append(reply, "s", v.keys);
	if (!strcmp(p, "SignedCommands"))
		return signed_commands(reply, &u->sc);
	if (!strcmp(p, "Counters"))
		return sd_bus_message_append(reply, "a{st}", 12,
			"records", u->records, "next-sequence", gmpc_next(&u->gc),
			"acknowledgements", u->gc.acks, "resends", u->gc.resends,
			"rejected", u->gc.rejected, "dropped", u->ob.dropped,
			"send-errors", u->send_errors, "route-changes", (uint64_t)u->route_changes,
			"modem-connects", (uint64_t)u->modem.connects,
			"modem-link-losses", (uint64_t)u->modem.link_losses,
			"modem-power-cycles", (uint64_t)u->modem.power_cycles,
			"handshakes", u->gc.handshakes);
	return -ENOENT;
}

static int emit(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct uplink_service *s = userdata;
	struct uplink_props v;
	const char *names[16];
	size_t n = 0;

	(void)es;
	(void)usec;
	snapshot(s->u, &v);
	if (strcmp(v.route, s->sent.route)) {
		names[n++] = "Route";
		names[n++] = "RouteReason";
	}
	if (strcmp(v.modem, s->sent.modem))
		names[n++] = "ModemState";
	if (strcmp(v.registration, s->sent.registration))
		names[n++] = "Registration";
	if (v.csq != s->sent.csq) {
		names[n++] = "SignalQuality";
		names[n++] = "SignalStrength";
	}
	if (v.backlog != s->sent.backlog)
		names[n++] = "Backlog";
	if (v.acked != s->sent.acked)
		names[n++] = "Acknowledged";
	if (v.last_ack != s->sent.last_ack)
		names[n++] = "LastAcknowledgement";
	if (strcmp(v.session, s->sent.session))
		names[n++] = "Session";
	if (strcmp(v.keys, s->sent.keys))
		names[n++] = "KeyState";
	if (v.signed_handled != s->sent.signed_handled)
		names[n++] = "SignedCommands";
	names[n] = NULL;
	s->sent = v;
	if (n)
		sd_bus_emit_properties_changed_strv(s->bus, METER_PATH, UPLINK_IFACE, (char **)names);
	return 0;
}

static void hook_changed(void *ctx)
{
	struct uplink_service *s = ctx;
	uint64_t now;

	if (!s->emit || sd_event_source_get_enabled(s->emit, NULL) > 0)
		return;		/* already due */
	sd_event_now(s->event, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(s->emit, now + EMIT_DELAY_USEC);
	sd_event_source_set_enabled(s->emit, SD_EVENT_ONESHOT);
}

static void hook_route(void *ctx, const char *route, const char *reason)
{
	struct uplink_service *s = ctx;

	sd_bus_emit_signal(s->bus, METER_PATH, UPLINK_IFACE, "RouteChanged", "ss", route, reason);
	hook_changed(s);
}

static int rotate_allowed(void *ctx, sd_bus_message *m, const char *who)
{
	struct uplink_service *s = ctx;
	char err[320] = "";
	int r;

	fprintf(stderr, "<5>uplink: key rotation asked by %s\n", who);
	r = town_uplink_rotate_key(s->u, err, sizeof(err));
	if (r)
		return sd_bus_reply_method_errorf(m, r == -EROFS ? METER_ERR_STATE : METER_ERR_FAILED,
						  "%s", err);
	return sd_bus_reply_method_return(m, NULL);
}

static int rotate_key(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct uplink_service *s = userdata;

	(void)e;
	if (s->u->cred.has_next_key)
		return sd_bus_reply_method_errorf(m, METER_ERR_STATE, "a key rotation is under way "
						  "(KeyState rotating)");
	return service_authorise(s->svc, m, "org.gridmeter.meter.rotate-key", rotate_allowed, s);
}

#define PROP(name, sig) SD_BUS_PROPERTY(name, sig, get_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)
static const sd_bus_vtable uplink_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("MeterId", "q", get_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Server", "s", get_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	PROP("Route", "s"),
	PROP("RouteReason", "s"),
	PROP("ModemState", "s"),
	PROP("SignalQuality", "u"),
	PROP("SignalStrength", "i"),
	PROP("Registration", "s"),
	PROP("Backlog", "t"),
	PROP("Acknowledged", "t"),
	PROP("LastAcknowledgement", "x"),
	PROP("Session", "s"),
	PROP("KeyState", "s"),
	PROP("SignedCommands", "a(tsssx)"),
	SD_BUS_PROPERTY("Counters", "a{st}", get_prop, 0, 0),
	SD_BUS_METHOD("RotateKey", "", "", rotate_key, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_NAMES("RouteChanged", "ss", SD_BUS_PARAM(route) SD_BUS_PARAM(reason), 0),
	SD_BUS_VTABLE_END,
};

int uplink_service_init(struct uplink_service *s, sd_bus *bus, sd_event *event,
			struct service *svc, struct town_uplink *u, struct town_uplink_hooks *hooks)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->svc = svc;
	s->bus = bus;
	s->event = event;
	s->u = u;
	r = sd_bus_add_object_vtable(bus, &s->slot, METER_PATH, UPLINK_IFACE, uplink_vtable, s);
	if (r < 0)
		return r;
	r = sd_event_add_time(event, &s->emit, CLOCK_MONOTONIC, 0, 10000, emit, s);
	if (r < 0)
		return r;
	sd_event_source_set_enabled(s->emit, SD_EVENT_OFF);
	hooks->ctx = s;
	hooks->changed = hook_changed;
	hooks->route = hook_route;
	return 0;
}

void uplink_service_done(struct uplink_service *s)
{
	s->emit = sd_event_source_disable_unref(s->emit);
	s->slot = sd_bus_slot_unref(s->slot);
}
