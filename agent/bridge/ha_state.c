// SPDX-License-Identifier: GPL-2.0
/*
 * The <base>/state JSON message (ha_state.h). Every value is a JSON string
 * holding an exact decimal in the unit its discovery payload announces, so
 * that Home Assistant's template renders exactly what was computed here
 * (a JSON number would go through a float). "None" is Home Assistant's
 * word for "unknown" (sensor and binary_sensor MQTT platforms).
 */
#include "ha_state.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "ha_discovery.h"
#include "json_out.h"

/* The writer and whether the next key is the object's first. */
struct out {
	struct json_out j;
	bool first;
};

static void key(struct out *o, const char *k, const char *suffix)
{
	json_out_raw(&o->j, o->first ? "\"%s%s\":" : ",\"%s%s\":", k, suffix);
	o->first = false;
}

static void kstr(struct out *o, const char *k, const char *suffix, const char *v)
{
	key(o, k, suffix);
	json_out_str(&o->j, v);
}

/* v / 10^dec as an exact decimal string with dec decimals (dec 0..6). */
static void kdec(struct out *o, const char *k, const char *suffix, int64_t v, unsigned dec)
{
	static const uint64_t pow10[] = { 1, 10, 100, 1000, 10000, 100000, 1000000 };
	uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	uint64_t p = pow10[dec];

	key(o, k, suffix);
	if (!dec)
		json_out_raw(&o->j, "\"%s%" PRIu64 "\"", v < 0 ? "-" : "", mag);
	else
		json_out_raw(&o->j, "\"%s%" PRIu64 ".%0*" PRIu64 "\"", v < 0 ? "-" : "", mag / p, (int)dec,
		    mag % p);
}

/* Decimals of a currency whose major unit is `mpm` minor units: 1 -> 0, 100 -> 2; -1 if not 10^k. */
static int currency_decimals(unsigned mpm)
{
	int d = 0;

	if (!mpm)
		return -1;
	while (mpm % 10 == 0) {
		mpm /= 10;
		d++;
	}
	return mpm == 1 && d <= 6 ? d : -1;
}

/* Whether alarm object "alarm_over_voltage" is named in the list (as "over-voltage" or the object). */
static bool alarm_active(const struct ha_meter_values *v, const char *object)
{
	const char *a = object + strlen("alarm_");

	for (size_t i = 0; i < v->nactive_alarms && i < HA_STATE_MAX_ALARMS; i++) {
		const char *n = v->active_alarms[i];
		size_t j;

		if (!n)
			continue;
		if (!strcmp(n, object))
			return true;
		for (j = 0; a[j] && n[j]; j++)
			if (a[j] != (n[j] == '-' ? '_' : n[j]))
				break;
		if (!a[j] && !n[j])
			return true;
	}
	return false;
}

int ha_state_format(struct ha_state *st, const struct ha_meter_values *v, char *buf, size_t len)
{
	static const char *const reg_key[3] = { "import_energy", "export_energy", "renewable_energy" };
	struct out o = { .j = { .p = buf, .len = len }, .first = true };
	struct ha_state next = *st;
	int cur_dec = -1;

	if (!len)
		return -ENOSPC;
	if (v->nplugs > HA_STATE_MAX_PLUGS || v->nhome > HA_STATE_MAX_HOME ||
	    v->nactive_alarms > HA_STATE_MAX_ALARMS)
		return -EINVAL;
	if (v->have_tariff && (cur_dec = currency_decimals(v->minor_per_major)) < 0)
		return -EINVAL;
	for (size_t i = 0; i < v->nplugs; i++)
		if (!ha_ident_ok(v->plug[i].object))
			return -EINVAL;
	for (size_t i = 0; i < v->nhome; i++)
		if (!ha_ident_ok(v->home[i].object))
			return -EINVAL;

	json_out_raw(&o.j, "{");
	if (v->have_registers) {
		const uint64_t mwh[3] = { v->import_mwh, v->export_mwh, v->renew_mwh };

		for (int i = 0; i < 3; i++) {
			if (next.published[i] && mwh[i] < next.last_mwh[i]) {
				next.held_back++;
				continue;
			}
			next.published[i] = true;
			next.last_mwh[i] = mwh[i];
			/* kWh with 3 decimals: whole Wh, truncated (never ahead of the register) */
			kdec(&o, reg_key[i], "", (int64_t)(mwh[i] / 1000), 3);
		}
	}
	if (v->have_readings) {
		kdec(&o, "power", "", v->power_mw, 3);
		kdec(&o, "voltage", "", v->voltage_mv, 3);
		kdec(&o, "current", "", v->current_ma, 3);
		kdec(&o, "power_factor", "", v->pf_milli, 3);
		kdec(&o, "frequency", "", v->frequency_mhz, 3);
	}
	if (v->have_tariff) {
		/* milli-minor -> minor, half away from zero, shown in major units */
		uint64_t mag = v->price_milli < 0 ? (uint64_t)0 - (uint64_t)v->price_milli :
						    (uint64_t)v->price_milli;
		int64_t minor = (int64_t)((mag + 500) / 1000);

		kdec(&o, "cost", "", v->price_milli < 0 ? -minor : minor, (unsigned)cur_dec);
		if (v->period)
			kstr(&o, "tariff_period", "", v->period);
	}
	if (v->have_relay)
		kstr(&o, "relay", "", v->relay_closed ? "ON" : "OFF");
	for (size_t i = 0; i < ha_meter_nentities; i++) {
		const char *obj = ha_meter_entities[i].object;

		if (!strncmp(obj, "alarm_", 6))
			kstr(&o, obj, "", alarm_active(v, obj) ? "ON" : "OFF");
	}
	for (size_t i = 0; i < v->nplugs; i++) {
		const struct ha_plug_value *p = &v->plug[i];

		kstr(&o, p->object, "", !p->reachable ? "None" : p->on ? "ON" : "OFF");
		if (p->reachable && p->power_mw >= 0)
			kdec(&o, p->object, "_power", p->power_mw, 3);
		else
			kstr(&o, p->object, "_power", "None");
	}
	for (size_t i = 0; i < v->nhome; i++) {
		const struct ha_home_value *h = &v->home[i];

		if (h->valid)
			kdec(&o, h->object, "", h->value_milli, 3);
		else
			kstr(&o, h->object, "", "None");
		kstr(&o, h->object, "_alarm", h->alarm ? "ON" : "OFF");
	}
	json_out_raw(&o.j, "}");
	if (o.j.over)
		return -ENOSPC;
	*st = next;
	return (int)o.j.n;
}
