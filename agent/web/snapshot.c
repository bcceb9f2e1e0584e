// SPDX-License-Identifier: GPL-2.0
#include "snapshot.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "parse.h"

#define METER_IFACE	"org.gridmeter.Meter1"
#define UPLINK_IFACE	"org.gridmeter.Uplink1"

int mw_snapshot_init(struct mw_snapshot *sn)
{
	pthread_condattr_t ca;
	int r;

	memset(sn, 0, sizeof(*sn));
	if (pthread_mutex_init(&sn->lock, NULL))
		return -ENOMEM;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	r = pthread_cond_init(&sn->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (r) {
		pthread_mutex_destroy(&sn->lock);
		return -ENOMEM;
	}
	return 0;
}

void mw_snapshot_destroy(struct mw_snapshot *sn)
{
	pthread_cond_destroy(&sn->cond);
	pthread_mutex_destroy(&sn->lock);
}

void mw_snapshot_get(struct mw_snapshot *sn, struct mw_state *out)
{
	pthread_mutex_lock(&sn->lock);
	*out = sn->s;
	pthread_mutex_unlock(&sn->lock);
}

bool mw_snapshot_wait(struct mw_snapshot *sn, uint64_t *gen, int timeout_ms, struct mw_state *out)
{
	struct timespec until;
	bool changed;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&sn->lock);
	while (sn->s.gen == *gen)
		if (pthread_cond_timedwait(&sn->cond, &sn->lock, &until) == ETIMEDOUT)
			break;
	changed = sn->s.gen != *gen;
	*gen = sn->s.gen;
	*out = sn->s;
	pthread_mutex_unlock(&sn->lock);
	return changed;
}

int64_t mw_kv_get(const struct mw_kvs *kv, const char *name, int64_t dflt)
{
	for (unsigned i = 0; i < kv->n; i++)
		if (!strcmp(kv->e[i].name, name))
			return kv->e[i].v;
	return dflt;
}

static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

/*
 * An array of structs a(CONTENTS) (type 'r') or of dict entries a{CONTENTS}
 * (type 'e'): one() reads each element's fields.
 */
static int read_each(sd_bus_message *m, char type, const char *contents,
		     int (*one)(sd_bus_message *m, void *ctx), void *ctx)
{
	char asig[24];
	int r;

	snprintf(asig, sizeof(asig), type == 'r' ? "(%s)" : "{%s}", contents);
	r = sd_bus_message_enter_container(m, 'a', asig);
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, type, contents)) > 0) {
		r = one(m, ctx);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

struct kv_read {
	char t;
	struct mw_kvs *kv;
};

/* One entry {sT} of an a{sT}. */
static int read_kv(sd_bus_message *m, void *ctx)
{
	struct kv_read *k = ctx;
	char t = k->t;
	const char *name;
	union { uint64_t t; int64_t x; uint32_t u; int32_t i; int b; } v = { 0 };
	int64_t val;
	int r = sd_bus_message_read_basic(m, 's', &name);

	if (r >= 0)
		r = sd_bus_message_read_basic(m, t, &v);
	if (r < 0)
		return r;
	val = t == 't' ? (int64_t)v.t : t == 'x' ? v.x : t == 'u' ? (int64_t)v.u :
	      t == 'i' ? (int64_t)v.i : (int64_t)!!v.b;
	if (k->kv->n < MW_MAX_KV) {
		copy_str(k->kv->e[k->kv->n].name, MW_NAME_LEN, name);
		k->kv->e[k->kv->n++].v = val;
	}
	return r;
}

/* a{sT} for T one of t x u i b: into kv (at most MW_MAX_KV kept). */
static int read_kvs(sd_bus_message *m, char t, struct mw_kvs *kv)
{
	char esig[3] = { 's', t, 0 };
	struct kv_read k = { t, kv };

	kv->n = 0;
	return read_each(m, 'e', esig, read_kv, &k);
}

static int read_alarms(sd_bus_message *m, struct mw_state *st)
{
	const char *a;
	int r = sd_bus_message_enter_container(m, 'a', "s");

	if (r < 0)
		return r;
	st->nalarms = 0;
	while ((r = sd_bus_message_read_basic(m, 's', &a)) > 0)
		if (st->nalarms < MW_MAX_ALARMS)
			copy_str(st->alarms[st->nalarms++], MW_NAME_LEN, a);
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

/* One of Loads a(sssbbbi): at most MW_MAX_LOADS kept. */
static int read_load(sd_bus_message *m, void *ctx)
{
	struct mw_state *st = ctx;
	const char *name, *sw, *state;
	int wanted, shed, reachable;
	int32_t w;
	struct mw_load *l;
	int r = sd_bus_message_read(m, "sssbbbi", &name, &sw, &state, &wanted, &shed, &reachable, &w);

	if (r < 0 || st->nxloads >= MW_MAX_LOADS)
		return r;
	l = &st->xloads[st->nxloads++];
	copy_str(l->name, sizeof(l->name), name);
	copy_str(l->sw, sizeof(l->sw), sw);
	copy_str(l->state, sizeof(l->state), state);
	l->wanted_on = wanted;
	l->shed = shed;
	l->reachable = reachable;
	l->measured_w = w;
	return r;
}

/* One of HomeSensors a(sssxsb): at most MW_MAX_HOME kept. */
static int read_home(sd_bus_message *m, void *ctx)
{
	struct mw_state *st = ctx;
	const char *name, *kind, *unit, *state;
	int64_t v;
	int alarm;
	struct mw_home *h;
	int r = sd_bus_message_read(m, "sssxsb", &name, &kind, &unit, &v, &state, &alarm);

	if (r < 0 || st->nhome >= MW_MAX_HOME)
		return r;
	h = &st->home[st->nhome++];
	copy_str(h->name, sizeof(h->name), name);
	copy_str(h->kind, sizeof(h->kind), kind);
	copy_str(h->unit, sizeof(h->unit), unit);
	copy_str(h->state, sizeof(h->state), state);
	h->value_milli = v;
	h->alarm = alarm;
	return r;
}

/* One {sv} of the Tariff property: a string, a key of SetTariff. */
static int read_tariff_key(sd_bus_message *m, void *ctx)
{
	const char *k, *v;
	int r = sd_bus_message_read_basic(m, 's', &k);

	if (r < 0)
		return r;
	if (sd_bus_message_enter_container(m, 'v', "s") <= 0)
		return sd_bus_message_skip(m, "v");
	r = sd_bus_message_read_basic(m, 's', &v);
	if (r < 0)
		return r;
	tariff_spec_set(ctx, k, v);	/* unknown keys of a newer meterd: ignored */
	return sd_bus_message_exit_container(m);
}

/* The Tariff property: a{sv} of strings, the keys of SetTariff. */
static int read_tariff(sd_bus_message *m, struct mw_state *st)
{
	struct tariff_spec spec;
	int r;

	tariff_spec_init(&spec);
	r = read_each(m, 'e', "sv", read_tariff_key, &spec);
	if (r < 0)
		return r;
	st->tariff = spec;
	st->have_tariff = true;
	return r;
}

enum ptype { P_U32, P_I32, P_I64, P_U64, P_BOOL, P_STR };

struct propdef {
	const char *name;
	const char *sig;
	enum ptype type;
	size_t off, size;
};

#define F(f) offsetof(struct mw_state, f), sizeof(((struct mw_state *)0)->f)

static const struct propdef meter_props[] = {
	{ "Voltage", "u", P_U32, F(voltage_mv) },
	{ "Current", "u", P_U32, F(current_ma) },
	{ "ActivePower", "x", P_I64, F(active_mw) },
	{ "RenewablePower", "x", P_I64, F(renewable_mw) },
	{ "PowerFactor", "i", P_I32, F(pf_milli) },
	{ "Frequency", "u", P_U32, F(frequency_mhz) },
	{ "ImportEnergy", "t", P_U64, F(import_mwh) },
	{ "ExportEnergy", "t", P_U64, F(export_mwh) },
	{ "RenewableEnergy", "t", P_U64, F(renew_mwh) },
	{ "BillingPeriodStart", "x", P_I64, F(billing_start) },
	{ "PriceSoFar", "x", P_I64, F(price_milli) },
	{ "LastBill", "x", P_I64, F(last_bill_milli) },
	{ "Currency", "s", P_STR, F(currency) },
	{ "CurrentTariffPeriod", "s", P_STR, F(period) },
	{ "AllocationReason", "s", P_STR, F(alloc_reason) },
	{ "MainRelay", "s", P_STR, F(main_relay) },
	{ "ProtectionState", "s", P_STR, F(protection) },
	{ "RemoteState", "s", P_STR, F(remote) },
	{ "TripCount", "t", P_U64, F(trip_count) },
	{ "UplinkState", "s", P_STR, F(uplink_state) },
	{ "ClockTrusted", "b", P_BOOL, F(clock_trusted) },
	{ "ClockSource", "s", P_STR, F(clock_source) },
	{ NULL, NULL, 0, 0, 0 }
};

static const struct propdef uplink_props[] = {
	{ "Route", "s", P_STR, F(route) },
	{ "RouteReason", "s", P_STR, F(route_reason) },
	{ "ModemState", "s", P_STR, F(modem_state) },
	{ "Registration", "s", P_STR, F(registration) },
	{ "Session", "s", P_STR, F(session) },
	{ "SignalQuality", "u", P_U32, F(signal_quality) },
	{ "SignalStrength", "i", P_I32, F(signal_dbm) },
	{ "Backlog", "t", P_U64, F(backlog) },
	{ "LastAcknowledgement", "x", P_I64, F(last_ack_ms) },
	{ NULL, NULL, 0, 0, 0 }
};

static int read_simple(sd_bus_message *m, struct mw_state *st, const struct propdef *p)
{
	char *field = (char *)st + p->off;
	int r;

	if (p->type == P_STR) {
		const char *s;

		r = sd_bus_message_read_basic(m, 's', &s);
		if (r >= 0)
			copy_str(field, p->size, s);
	} else if (p->type == P_BOOL) {
		int b;

		r = sd_bus_message_read_basic(m, 'b', &b);
		if (r >= 0)
			*(bool *)field = b;
	} else {
		r = sd_bus_message_read_basic(m, p->sig[0], field);
	}
	return r;
}

/* Properties of a dictionary type (or a struct): their own readers. */
static int read_special(sd_bus_message *m, struct mw_state *st, const char *name)
{
	if (!strcmp(name, "ImportEnergyByPeriod"))
		return read_kvs(m, 't', &st->import_by);
	if (!strcmp(name, "ExportEnergyByPeriod"))
		return read_kvs(m, 't', &st->export_by);
	if (!strcmp(name, "RenewableEnergyByPeriod"))
		return read_kvs(m, 't', &st->renew_by);
	if (!strcmp(name, "Allocation"))
		return read_kvs(m, 'x', &st->alloc);
	if (!strcmp(name, "DeclaredDemand"))
		return read_kvs(m, 'u', &st->declared);
	if (!strcmp(name, "LoadRelays"))
		return read_kvs(m, 'b', &st->loads);
	if (!strcmp(name, "Alarms"))
		return read_alarms(m, st);
	if (!strcmp(name, "Tariff"))
		return read_tariff(m, st);
	if (!strcmp(name, "Loads")) {
		st->nxloads = 0;
		return read_each(m, 'r', "sssbbbi", read_load, st);
	}
	if (!strcmp(name, "HomeSensors")) {
		st->nhome = 0;
		return read_each(m, 'r', "sssxsb", read_home, st);
	}
	if (!strcmp(name, "MaxDemand"))
		return sd_bus_message_read(m, "(tx)", &st->max_demand_mw, &st->max_demand_at);
	return -ENOENT;
}

static const char *special_sig(const char *name)
{
	static const struct { const char *name, *sig; } t[] = {
		{ "ImportEnergyByPeriod", "a{st}" }, { "ExportEnergyByPeriod", "a{st}" },
		{ "RenewableEnergyByPeriod", "a{st}" }, { "Allocation", "a{sx}" },
		{ "DeclaredDemand", "a{su}" }, { "LoadRelays", "a{sb}" }, { "Alarms", "as" },
		{ "Tariff", "a{sv}" }, { "MaxDemand", "(tx)" }, { "Loads", "a(sssbbbi)" },
		{ "HomeSensors", "a(sssxsb)" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(t[i].name, name))
			return t[i].sig;
	return NULL;
}

int mw_state_apply_prop(struct mw_state *st, const char *iface, const char *name, sd_bus_message *m)
{
	const struct propdef *p = NULL, *tab = NULL;
	const char *sig = NULL, *have;
	char type;
	int r;

	if (!strcmp(iface, METER_IFACE))
		tab = meter_props;
	else if (!strcmp(iface, UPLINK_IFACE)) {
		tab = uplink_props;
		st->has_uplink = true;
	}
	for (const struct propdef *q = tab; q && q->name; q++)
		if (!strcmp(q->name, name))
			p = q;
	if (p)
		sig = p->sig;
	else if (tab == meter_props)
		sig = special_sig(name);
	r = sd_bus_message_peek_type(m, &type, &have);
	if (r < 0)
		return r;
	if (!sig || type != 'v' || !have || strcmp(have, sig))
		return sd_bus_message_skip(m, "v");	/* unknown, or of another type */
	r = sd_bus_message_enter_container(m, 'v', sig);
	if (r < 0)
		return r;
	r = p ? read_simple(m, st, p) : read_special(m, st, name);
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

struct prop_read {
	struct mw_state *st;
	const char *iface;
};

static int apply_entry(sd_bus_message *m, void *ctx)
{
	struct prop_read *p = ctx;
	const char *name;
	int r = sd_bus_message_read_basic(m, 's', &name);

	return r < 0 ? r : mw_state_apply_prop(p->st, p->iface, name, m);
}

int mw_state_apply_dict(struct mw_state *st, const char *iface, sd_bus_message *m)
{
	struct prop_read p = { st, iface };

	return read_each(m, 'e', "sv", apply_entry, &p);
}

void mw_state_event(struct mw_state *st, enum mw_event_kind kind, const char *name, bool on,
		    const char *detail, int64_t at)
{
	struct mw_event *e;

	memmove(&st->events[1], &st->events[0], sizeof(st->events[0]) * (MW_MAX_EVENTS - 1));
	if (st->nevents < MW_MAX_EVENTS)
		st->nevents++;
	e = &st->events[0];
	memset(e, 0, sizeof(*e));
	e->at = at;
	e->kind = kind;
	e->on = on;
	copy_str(e->name, sizeof(e->name), name);
	copy_str(e->detail, sizeof(e->detail), detail ? detail : "");
}
