// SPDX-License-Identifier: GPL-2.0
#include "meter_auth.h"

#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PK_NAME		"org.freedesktop.PolicyKit1"
#define PK_PATH		"/org/freedesktop/PolicyKit1/Authority"
#define PK_IFACE	"org.freedesktop.PolicyKit1.Authority"

static int member_of(const char *group, const char *name, gid_t gid);

static bool polkit_present(sd_bus *bus)
{
	sd_bus_message *reply = NULL;
	int has = 0;
	char **names = NULL;
	bool found = false;

	if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "NameHasOwner", NULL, &reply, "s", PK_NAME) >= 0 &&
	    sd_bus_message_read(reply, "b", &has) >= 0 && has)
		found = true;
	sd_bus_message_unref(reply);
	reply = NULL;
	if (!found && sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
					 "org.freedesktop.DBus", "ListActivatableNames", NULL, &reply,
					 "") >= 0 &&
	    sd_bus_message_read_strv(reply, &names) >= 0) {
		for (char **n = names; n && *n; n++)
			found |= !strcmp(*n, PK_NAME);
	}
	if (names) {
		for (char **n = names; *n; n++)
			free(*n);
		free(names);
	}
	sd_bus_message_unref(reply);
	return found;
}

int auth_init(struct auth *a, sd_bus *bus, const char *mode, const char *group,
	      const char *appliance_group, const char *bridge_group, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	a->bus = bus;
	snprintf(a->group, sizeof(a->group), "%s", group);
	snprintf(a->appliance_group, sizeof(a->appliance_group), "%s", appliance_group);
	snprintf(a->bridge_group, sizeof(a->bridge_group), "%s", bridge_group);
	if (!strcmp(mode, "polkit")) {
		a->mode = AUTH_POLKIT;
	} else if (!strcmp(mode, "group")) {
		a->mode = AUTH_GROUP;
	} else if (!strcmp(mode, "auto")) {
		a->mode = polkit_present(bus) ? AUTH_POLKIT : AUTH_GROUP;
	} else {
		snprintf(err, errlen, "unknown authorization mode '%s'", mode);
		return -EINVAL;
	}
	if (a->mode == AUTH_GROUP && member_of(group, NULL, (gid_t)-1) < 0)
		fprintf(stderr, "<4>authorization: group '%s' does not exist: only root is authorised\n",
			group);
	return 0;
}

const char *auth_mode_name(const struct auth *a)
{
	return a->mode == AUTH_POLKIT ? "polkit" : "group";
}

/*
 * The user database is read from /etc/passwd and /etc/group directly
 * (fgetpwent/fgetgrent), not through NSS: loading NSS modules (e.g.
 * libnss_systemd, which pulls in libm) would cost meterd about 650 KiB of
 * resident memory. Users of the fallback live in those files on a gateway.
 */
static bool user_of(uid_t uid, char *name, size_t len, gid_t *gid)
{
	FILE *f = fopen("/etc/passwd", "re");
	struct passwd *pw;
	bool found = false;

	while (f && (pw = fgetpwent(f)))
		if (pw->pw_uid == uid) {
			snprintf(name, len, "%s", pw->pw_name);
			*gid = pw->pw_gid;
			found = true;
			break;
		}
	if (f)
		fclose(f);
	return found;
}

/* Is name (primary group gid) a member of group? -1: no such group. */
static int member_of(const char *group, const char *name, gid_t gid)
{
	FILE *f = fopen("/etc/group", "re");
	struct group *gr;
	int r = -1;

	while (f && (gr = fgetgrent(f))) {
		if (strcmp(gr->gr_name, group))
			continue;
		r = gr->gr_gid == gid;
		for (char **m = gr->gr_mem; !r && m && *m; m++)
			r = name && !strcmp(*m, name);
		break;
	}
	if (f)
		fclose(f);
	return r;
}

int auth_uid_in_group(uid_t uid, const char *group)
{
	char name[64];
	gid_t gid;

	return user_of(uid, name, sizeof(name), &gid) && member_of(group, name, gid) == 1;
}

static void describe(sd_bus_message *m, uid_t uid, bool have_uid, char *who, size_t len)
{
	char name[64] = "?";
	gid_t gid;

	if (have_uid && !user_of(uid, name, sizeof(name), &gid))
		strcpy(name, "?");
	if (have_uid)
		snprintf(who, len, "uid %u (%s) via %s", (unsigned)uid, name,
			 sd_bus_message_get_sender(m) ?: "?");
	else
		snprintf(who, len, "%s", sd_bus_message_get_sender(m) ?: "?");
}

/*
 * The bus's record of the peer (SO_PEERCRED at connection time, reported by
 * dbus-daemon as UnixUserID and mapped to EUID by sd-bus), never /proc.
 */
static int caller_uid(sd_bus_message *m, uid_t *uid)
{
	sd_bus_creds *c = NULL;
	int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &c);

	if (r >= 0)
		r = sd_bus_creds_get_euid(c, uid);
	sd_bus_creds_unref(c);
	return r;
}

struct pk_call {
	sd_bus_message *m;
	auth_cb cb;
	void *userdata;
	char who[128];
};

static int pk_reply(sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
	struct pk_call *pc = userdata;
	int authorized = 0, challenge = 0, r;

	(void)e;
	if (sd_bus_message_is_method_error(reply, NULL)) {
		const sd_bus_error *err = sd_bus_message_get_error(reply);

		/* polkit could not decide: refuse, and say why in the journal */
		fprintf(stderr, "<4>authorization: polkit failed for %s: %s: %s\n", pc->who,
			err && err->name ? err->name : "?", err && err->message ? err->message : "");
		r = -EACCES;
	} else {
		r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
		if (r >= 0)
			r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
		r = r < 0 ? r : authorized ? 1 : 0;
	}
	pc->cb(pc->userdata, pc->m, r, pc->who);
	sd_bus_message_unref(pc->m);
	free(pc);
	return 0;
}

int auth_check(struct auth *a, sd_bus_message *m, const char *action, auth_cb cb, void *userdata)
{
	char who[128];
	uid_t uid = (uid_t)-1;
	bool have_uid = caller_uid(m, &uid) >= 0;
	struct pk_call *pc;
	int r;

	describe(m, uid, have_uid, who, sizeof(who));
	if (a->mode == AUTH_GROUP && !strcmp(action, REPORT_LOAD_ACTION)) {
		cb(userdata, m, have_uid && (uid == 0 || (a->bridge_group[0] &&
							   auth_uid_in_group(uid, a->bridge_group))), who);
		return 0;
	}
	if (a->mode == AUTH_GROUP) {
		cb(userdata, m, have_uid && (uid == 0 || auth_uid_in_group(uid, a->group) ||
					     (!strcmp(action, APPLIANCE_ACTION) && a->appliance_group[0] &&
					      auth_uid_in_group(uid, a->appliance_group))), who);
		return 0;
	}
	pc = calloc(1, sizeof(*pc));
	if (!pc)
		return -ENOMEM;
	pc->m = sd_bus_message_ref(m);
	pc->cb = cb;
	pc->userdata = userdata;
	snprintf(pc->who, sizeof(pc->who), "%s", who);
	r = sd_bus_call_method_async(a->bus, NULL, PK_NAME, PK_PATH, PK_IFACE, "CheckAuthorization",
				     pk_reply, pc, "(sa{sv})sa{ss}us",
				     "system-bus-name", 1, "name", "s", sd_bus_message_get_sender(m),
				     action, 0,
				     sd_bus_message_get_allow_interactive_authorization(m) ? 1u : 0u, "");
	if (r < 0) {
		sd_bus_message_unref(pc->m);
		free(pc);
		cb(userdata, m, r, who);
	}
	return 0;
}
