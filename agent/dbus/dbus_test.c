// SPDX-License-Identifier: GPL-2.0
/*
 * org.gridmeter.Meter1.Test: hooks for host tests, exported only with
 * "meterd --test-hooks" and the replay sensor, and denied by the production
 * D-Bus policy. They stand in for the CT driver (readings, threshold events),
 * the push button and the town server's grant.
 */
#include <errno.h>
#include <string.h>

#include "dbus.h"

static int test_inject(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct service *s = userdata;
	struct sensor_reading rd = s->m->rd;
	const char *key;
	int64_t v;
	int r;

	r = sd_bus_message_enter_container(m, 'a', "{sx}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(m, "{sx}", &key, &v)) > 0) {
		if (!strcmp(key, "voltage_mv"))
			rd.v_mv = (uint32_t)v;
		else if (!strcmp(key, "current_ma"))
			rd.i_ma = (uint32_t)v;
		else if (!strcmp(key, "power_mw"))
			rd.p_mw = v;
		else if (!strcmp(key, "pf_milli"))
			rd.pf_milli = (int32_t)v;
		else if (!strcmp(key, "frequency_mhz"))
			rd.f_mhz = (uint32_t)v;
		else if (!strcmp(key, "renewable_mw")) {
			rd.renew_mw = v;
			rd.has_renew = true;
		} else if (!strcmp(key, "renewable_avail_mw")) {
			rd.renew_avail_mw = v;
		} else if (!strcmp(key, "import_mj") && v >= 0) {
			rd.import_mj = (uint64_t)v;	/* the driver's energy counters */
			rd.has_energy = true;
		} else if (!strcmp(key, "export_mj") && v >= 0) {
			rd.export_mj = (uint64_t)v;
			rd.has_energy = true;
		} else
			return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS, "reading: unknown key '%s'", key);
	}
	if (r < 0)
		return r;
	sensor_replay_set(s->m->sensor, &rd);
	meter_sample(s->m, &rd, service_real_ms(), service_mono_ms());
	return sd_bus_reply_method_return(m, NULL);
}

static int test_event(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct service *s = userdata;
	const char *ev;
	unsigned f;
	int r = sd_bus_message_read(m, "s", &ev);

	if (r < 0)
		return r;
	f = !strcmp(ev, "over-voltage") ? FAULT_OVERVOLTAGE : !strcmp(ev, "under-voltage") ? FAULT_UNDERVOLTAGE :
	    !strcmp(ev, "over-current") ? FAULT_OVERCURRENT : 0;
	if (!f)
		return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS,
					 "event: '%s' is not over-voltage, under-voltage or over-current", ev);
	r = sensor_replay_event(s->m->sensor, f);
	return r < 0 ? r : sd_bus_reply_method_return(m, NULL);
}

static int test_button(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	(void)e;
	meter_button(((struct service *)userdata)->m);
	return sd_bus_reply_method_return(m, NULL);
}

static int test_grant(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	int64_t w;
	int r = sd_bus_message_read(m, "x", &w);

	if (r < 0)
		return r;
	if (w < 0)
		return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS, "watts: must not be negative");
	meter_set_grant(((struct service *)userdata)->m, w);
	return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable test_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("InjectReading", "a{sx}", "", test_inject, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("InjectEvent", "s", "", test_event, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("PressButton", "", "", test_button, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("SetGridAllocation", "x", "", test_grant, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END
};

int service_add_test_hooks(struct service *s)
{
	return sd_bus_add_object_vtable(s->bus, &s->test_slot, METER_PATH, METER_TEST_IFACE, test_vtable, s);
}
