// SPDX-License-Identifier: GPL-2.0
#include "load_reporters.h"

#include <stdio.h>
#include <string.h>

#include "dbus.h"

void reporters_init(struct load_reporters *r, sd_bus *bus, struct meter *m)
{
	memset(r, 0, sizeof(*r));
	r->bus = bus;
	r->m = m;
}

static int find(const struct load_reporters *r, const char *name)
{
	for (int i = 0; i < REPORTERS_MAX; i++)
		if (r->who[i].name[0] && !strcmp(r->who[i].name, name))
			return i;
	return -1;
}

bool reporters_known(const struct load_reporters *r, const char *name)
{
	return name && find(r, name) >= 0;
}

static bool reports_a_load(const struct load_reporters *r, const char *name)
{
	for (size_t i = 0; i < ALLOC_MAX_LOADS; i++)
		if (!strcmp(r->of_load[i], name))
			return true;
	return false;
}

static void forget(struct load_reporters *r, int k)
{
	r->who[k].slot = sd_bus_slot_unref(r->who[k].slot);
	r->who[k].name[0] = 0;
}

/* name left the bus: the loads it reported on cannot be switched now. */
static void gone(struct load_reporters *r, const char *name)
{
	int k = find(r, name);

	if (k < 0)
		return;
	fprintf(stderr, "<4>D-Bus: %s, a reporter of external loads, left the bus\n", name);
	for (size_t i = 0; i < ALLOC_MAX_LOADS; i++)
		if (!strcmp(r->of_load[i], name)) {
			r->of_load[i][0] = 0;
			meter_load_lost(r->m, i, service_mono_ms());
		}
	forget(r, k);
}

static int name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	const char *name, *old_owner, *new_owner;

	(void)e;
	if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 && !new_owner[0])
		gone(userdata, name);
	return 0;
}

/* Watch name; it may have left before the match was in place: ask the bus once. */
static void watch(struct load_reporters *r, int k, const char *name)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char rule[384];

	snprintf(r->who[k].name, sizeof(r->who[k].name), "%s", name);
	snprintf(rule, sizeof(rule), "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
		 "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'", name);
	if (sd_bus_add_match(r->bus, &r->who[k].slot, rule, name_owner_changed, r) < 0) {
		fprintf(stderr, "<3>D-Bus: cannot watch %s: its leaving will only be seen by stale_after\n",
			name);
		return;
	}
	if (sd_bus_call_method(r->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
			       "GetNameOwner", &e, NULL, "s", name) < 0 &&
	    sd_bus_error_has_name(&e, "org.freedesktop.DBus.Error.NameHasNoOwner"))
		gone(r, name);
	sd_bus_error_free(&e);
}

void reporters_note(struct load_reporters *r, size_t load, const char *name)
{
	int k;

	if (!name || load >= ALLOC_MAX_LOADS)
		return;
	snprintf(r->of_load[load], sizeof(r->of_load[load]), "%s", name);
	if (find(r, name) >= 0)
		return;
	/* a free slot, or one whose name reports on no load any more (one always is) */
	for (k = 0; k < REPORTERS_MAX; k++)
		if (!r->who[k].name[0] || !reports_a_load(r, r->who[k].name))
			break;
	if (k == REPORTERS_MAX)
		return;
	forget(r, k);
	watch(r, k, name);
}

void reporters_done(struct load_reporters *r)
{
	for (int k = 0; k < REPORTERS_MAX; k++)
		forget(r, k);
}
