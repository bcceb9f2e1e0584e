/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Authorisation of D-Bus method calls that change the meter.
 *   polkit: org.freedesktop.PolicyKit1 CheckAuthorization for the caller's
 *           bus name, asynchronously (the event loop never blocks on it);
 *           interactive authentication if the caller allowed it.
 *   group:  fallback when polkit is not available: the caller's uid, as
 *           recorded by the bus at connection time, must be root or a member
 *           of the technician group (/etc/passwd, /etc/group: primary or supplementary);
 *           members of the appliance group may declare appliance demand only;
 *           reporting on external loads (REPORT_LOAD_ACTION) is for root and
 *           members of the bridge group only (not technicians: the reports
 *           steer the allocation, only the MQTT bridge makes them).
 * "auto" picks polkit when it owns or can activate its bus name at start-up.
 */
#ifndef GM_AUTH_H
#define GM_AUTH_H

#include <stddef.h>
#include <systemd/sd-bus.h>

enum auth_mode { AUTH_POLKIT, AUTH_GROUP };

struct auth {
	enum auth_mode mode;
	sd_bus *bus;
	char group[64];			/* technicians: every action */
	char appliance_group[64];	/* only APPLIANCE_ACTION */
	char bridge_group[64];		/* only REPORT_LOAD_ACTION */
};

#define APPLIANCE_ACTION "org.gridmeter.meter.declare-demand"
#define REPORT_LOAD_ACTION "org.gridmeter.meter.report-load"

/* allowed: 1 yes, 0 no, < 0 the check itself failed. who: caller description. */
typedef void (*auth_cb)(void *userdata, sd_bus_message *m, int allowed, const char *who);

int auth_init(struct auth *a, sd_bus *bus, const char *mode, const char *group,
	      const char *appliance_group, const char *bridge_group, char *err, size_t errlen);
const char *auth_mode_name(const struct auth *a);
/* Calls cb exactly once, possibly before returning. Returns < 0 only if cb was not called. */
int auth_check(struct auth *a, sd_bus_message *m, const char *action, auth_cb cb, void *userdata);
/* Group membership test used by the fallback (exposed for tests). */
int auth_uid_in_group(uid_t uid, const char *group);

#endif
