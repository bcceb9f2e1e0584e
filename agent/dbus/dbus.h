/* SPDX-License-Identifier: GPL-2.0 */
/*
 * D-Bus service org.gridmeter.Meter1 at /org/gridmeter/Meter1 (sd-bus).
 * See Documentation/dbus-api.md and agent/org.gridmeter.Meter1.xml.
 */
#ifndef GM_DBUS_H
#define GM_DBUS_H

#include <stdbool.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "load_reporters.h"
#include "meter_auth.h"
#include "meter.h"

#define METER_BUS_NAME	"org.gridmeter.Meter1"
#define METER_PATH	"/org/gridmeter/Meter1"
#define METER_IFACE	"org.gridmeter.Meter1"
#define METER_TEST_IFACE "org.gridmeter.Meter1.Test"
#define METER_ERR_STATE	"org.gridmeter.Meter1.Error.WrongState"
#define METER_ERR_FAILED "org.gridmeter.Meter1.Error.Failed"
/* ReportLoad: no [load.NAME] of that name / a load switched by a GPIO line */
#define METER_ERR_NO_SUCH_LOAD	"org.gridmeter.Error.NoSuchLoad"
#define METER_ERR_NOT_EXTERNAL	"org.gridmeter.Error.NotExternal"

struct service {
	struct meter *m;
	sd_bus *bus;
	sd_event *event;
	struct auth auth;
	sd_bus_slot *slot, *test_slot;
	sd_event_source *emit_timer;
	unsigned dirty;
	uint64_t last_emit_usec;
	uint64_t interval_usec;
	uint64_t emitted;		/* PropertiesChanged signals sent */
	bool test_hooks;
	struct load_reporters reporters;	/* who reports on external loads (ReportLoad) */
};

/* Registers the object (and the test interface if test_hooks) and fills hooks for meter_init(). */
int service_init(struct service *s, sd_bus *bus, sd_event *event, uint32_t interval_ms,
		 bool test_hooks, struct meter_hooks *hooks);
/* After meter_init(): authorisation (may talk to the bus), then the meter pointer. */
int service_start(struct service *s, struct meter *m, char *err, size_t errlen);
void service_done(struct service *s);
/*
 * Authorise a method call of another interface of the meter (Uplink1) with
 * the same polkit/group rules: fn runs (and replies) when it is allowed,
 * else the caller gets AccessDenied. 1, or -errno.
 */
typedef int (*service_authorised_fn)(void *ctx, sd_bus_message *m, const char *who);
int service_authorise(struct service *s, sd_bus_message *m, const char *action,
		      service_authorised_fn fn, void *ctx);
/* Export org.gridmeter.Meter1.Test (dbus_test.c). */
int service_add_test_hooks(struct service *s);

/* Monotonic and real time in ms, as the daemon sees them. */
int64_t service_mono_ms(void);
int64_t service_real_ms(void);

#endif
