/* SPDX-License-Identifier: GPL-2.0 */
/*
 * D-Bus interface org.gridmeter.Uplink1 on /org/gridmeter/Meter1: the
 * uplink to the town server (route, modem, signal, registration, outbox,
 * session, keys, the last operator-signed commands): properties with PropertiesChanged, the RouteChanged
 * signal and RotateKey() (technicians).
 * See Documentation/dbus-api.md.
 */
#ifndef GM_DBUS_UPLINK_H
#define GM_DBUS_UPLINK_H

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "town_uplink.h"

#define UPLINK_IFACE	"org.gridmeter.Uplink1"

struct service;

struct uplink_props {
	char route[16], modem[16], registration[16], session[16], keys[24];
	int csq;
	uint64_t backlog, acked;
	int64_t last_ack;
	uint64_t signed_handled;	/* signed commands handled (SignedCommands changes) */
};

struct uplink_service {
	sd_bus *bus;
	sd_event *event;
	struct town_uplink *u;
	struct service *svc;		/* Meter1's, for authorisation */
	sd_bus_slot *slot;
	sd_event_source *emit;
	struct uplink_props sent;	/* values last announced */
};

/* Export the interface and fill hooks for town_uplink_start(). */
int uplink_service_init(struct uplink_service *s, sd_bus *bus, sd_event *event,
			struct service *svc, struct town_uplink *u, struct town_uplink_hooks *hooks);
void uplink_service_done(struct uplink_service *s);

#endif
