// SPDX-License-Identifier: GPL-2.0
#include "meter.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "meter_internal.h"
#include "tariff_file.h"

#define PERSIST_VERSION	2
/* An alarm clears once its condition has been gone this long (and, for
 * limits, by 2 %): a value hovering at a limit does not flood the journal. */
#define ALARM_HOLD_MS	10000
#define ALARM_MARGIN_PCT 2

static const char *const alarm_names[ALARM_COUNT] = {
	[ALARM_OVERVOLTAGE] = "over-voltage",
	[ALARM_UNDERVOLTAGE] = "under-voltage",
	[ALARM_OVERCURRENT] = "over-current",
	[ALARM_LOCKOUT] = "lockout",
	[ALARM_DEFICIT] = "supply-deficit",
	[ALARM_SENSOR] = "sensor-failure",
	[ALARM_STORE_CORRUPT] = "store-corrupt",
	[ALARM_STORE_ERROR] = "store-error",
	[ALARM_PROTECTION] = "protection-degraded",
};

const char *meter_alarm_name(enum meter_alarm a)
{
	return a < ALARM_COUNT ? alarm_names[a] : "?";
}

void meter_log(struct meter *m, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	m->log_bytes += strlen(msg) + 1;
	if (m->hooks.log)
		m->hooks.log(m->hooks.ctx, level, msg);
	else
		fprintf(stderr, "<%d>%s\n", level, msg);
}

void meter_changed(struct meter *m, unsigned groups)
{
	if (groups && m->hooks.changed)
		m->hooks.changed(m->hooks.ctx, groups);
}

static void set_alarm(struct meter *m, enum meter_alarm a, bool on, const char *detail)
{
	unsigned bit = 1u << a;

	if (!!(m->alarms & bit) == on)
		return;
	m->alarms = on ? m->alarms | bit : m->alarms & ~bit;
	meter_log(m, on ? LOG_WARNING : LOG_NOTICE, "alarm %s %s: %s", alarm_names[a],
	     on ? "raised" : "cleared", detail);
	if (m->hooks.alarm)
		m->hooks.alarm(m->hooks.ctx, alarm_names[a], on, detail);
	if (m->uplink->ops->alarm)
		m->uplink->ops->alarm(m->uplink, a, on);
	meter_changed(m, MP_ALARMS);
}

void meter_alarm(struct meter *m, enum meter_alarm a, bool on, const char *detail)
{
	set_alarm(m, a, on, detail);
}

static void clear_when_settled(struct meter *m, enum meter_alarm a, bool ok, int64_t now_ms,
			       const char *detail)
{
	if (!ok) {
		m->alarm_ok_since[a] = INT64_MIN;
		return;
	}
	if (!(m->alarms & (1u << a)))
		return;
	if (m->alarm_ok_since[a] == INT64_MIN)
		m->alarm_ok_since[a] = now_ms;
	if (now_ms - m->alarm_ok_since[a] >= ALARM_HOLD_MS)
		set_alarm(m, a, false, detail);
}

static void set_relay(struct meter *m, unsigned idx, bool closed, const char *reason)
{
	const char *name = idx ? m->alloc.load[idx - 1].name : "main";
	bool *state = idx ? &m->load_closed[idx - 1] : &m->main_closed;
	int r;

	if (*state == closed)
		return;
	r = m->relays->ops->set(m->relays, idx, closed);
	if (r < 0) {
		meter_log(m, LOG_ERR, "relay %s: cannot %s: %s", name, closed ? "close" : "open", strerror(-r));
		return;
	}
	*state = closed;
	meter_log(m, idx ? LOG_INFO : LOG_NOTICE, "relay %s %s: %s", name, closed ? "closed" : "opened", reason);
	if (m->hooks.relay)
		m->hooks.relay(m->hooks.ctx, name, closed, reason);
	meter_changed(m, MP_RELAYS);
}

void meter_apply_main(struct meter *m, const char *reason)
{
	set_relay(m, 0, protect_relay_closed(&m->prot), reason);
	set_alarm(m, ALARM_LOCKOUT, m->prot.state == PROT_LOCKOUT,
		  m->prot.state == PROT_LOCKOUT ? "too many trips: a technician must clear the lockout"
						 : "lockout cleared");
}

static void persist_fill(const struct meter *m, struct meter_persist *p)
{
	memset(p, 0, sizeof(*p));
	p->version = PERSIST_VERSION;
	p->size = sizeof(*p);
	p->prot_state = m->prot.state;
	p->remote_state = m->prot.remote;
	p->total_trips = m->prot.total_trips;
	p->reg = m->reg;
	p->ctr = m->ctr;
}

static void read_boot_id(char *buf, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	buf[0] = 0;
	if (f) {
		if (fgets(buf, (int)len, f))
			buf[strcspn(buf, "\n")] = 0;
		fclose(f);
	}
}

static void store_failed(struct meter *m, const char *what, int r)
{
	char d[128];

	snprintf(d, sizeof(d), "%s: %s", what, strerror(-r));
	set_alarm(m, ALARM_STORE_ERROR, true, d);
}

int meter_sync(struct meter *m)
{
	struct meter_persist p;
	int r;

	if (!m->store_ok)
		return -ENODEV;
	persist_fill(m, &p);
	r = store_commit(&m->store, &p, sizeof(p), NULL, 0, true);
	if (r < 0)
		store_failed(m, "sync", r);
	return r < 0 ? r : 0;
}

int meter_init(struct meter *m, const struct meter_config *cfg, struct sensor *s,
	       struct relays *rl, const struct meter_hooks *hooks, int64_t real_ms, int64_t mono_ms,
	       char *err, size_t errlen)
{
	struct alloc_cfg acfg;
	struct protect_cfg pcfg;
	struct meter_persist p;
	char path[CFG_PATH + 32], desc[256];
	int r;

	memset(m, 0, sizeof(*m));
	m->cfg = *cfg;
	m->sensor = s;
	m->relays = rl;
	m->uplink = &uplink_none;
	if (hooks)
		m->hooks = *hooks;
	m->grant_w = cfg->grid_allocation_w;
	m->last_sync_mono = mono_ms;
	read_boot_id(m->boot_id, sizeof(m->boot_id));
	for (unsigned a = 0; a < ALARM_COUNT; a++)
		m->alarm_ok_since[a] = INT64_MIN;

	setenv("TZ", cfg->timezone, 1);
	tzset();

	m->spec = cfg->tariff_spec;
	m->tariff = cfg->tariff;
	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, METER_TARIFF_FILE);
	r = tariff_file_load(path, &m->spec, &m->tariff, err, errlen);
	if (r == -ENOENT) {
		m->spec = cfg->tariff_spec;
		m->tariff = cfg->tariff;
	} else if (r) {
		return r;
	}

	acfg.restore_margin_w = cfg->restore_margin_w;
	acfg.restore_delay_ms = cfg->restore_delay_s * 1000;
	acfg.settle_ms = cfg->settle_s * 1000;
	alloc_init(&m->alloc, &acfg);
	for (size_t i = 0; i < cfg->nloads; i++)
		alloc_add_load(&m->alloc, cfg->load[i].name, cfg->load[i].load_w);
	pcfg.reclose_delay_ms = cfg->reclose_delay_s * 1000;
	pcfg.lockout_trips = cfg->lockout_trips;
	pcfg.lockout_window_ms = cfg->lockout_window_s * 1000;
	protect_init(&m->prot, &pcfg);

	registers_init(&m->reg, cfg->interval_s, cfg->billing_day, real_ms);
	m->reg.max_gap_ms = cfg->sample_ms * 3 > 5000 ? cfg->sample_ms * 3 : 5000;
	r = profile_init(&m->prof, (size_t)cfg->profile_days * 86400 / cfg->interval_s);
	if (r) {
		snprintf(err, errlen, "out of memory for the load profile");
		return r;
	}

	r = store_open(&m->store, cfg->state_dir, cfg->runtime_dir, sizeof(p));
	if (r) {
		snprintf(err, errlen, "store in %s and %s: %s", cfg->state_dir, cfg->runtime_dir,
			 strerror(-r));
		return r;
	}
	m->store_ok = true;
	persist_fill(m, &p);
	r = store_recover(&m->store, &p, NULL, &m->prof, &m->recovery);
	if (r) {
		snprintf(err, errlen, "reading the store in %s: %s", cfg->state_dir, strerror(-r));
		return r;
	}
	store_recovery_describe(&m->recovery, desc, sizeof(desc));
	meter_log(m, m->recovery.corrupt_records ? LOG_ERR : LOG_INFO, "store: %s", desc);
	if (m->recovery.corrupt_records)
		set_alarm(m, ALARM_STORE_CORRUPT, true, desc);
	if (m->recovery.have_snapshot && p.version == PERSIST_VERSION && p.size == sizeof(p)) {
		m->reg = p.reg;
		if (p.reg.interval_s != cfg->interval_s) {
			meter_log(m, LOG_WARNING, "interval changed from %u s to %u s: the registers are kept, "
			     "the load profile continues with the new length", p.reg.interval_s,
			     cfg->interval_s);
			registers_set_interval(&m->reg, cfg->interval_s);
		}
		if (m->reg.billing_day != cfg->billing_day) {
			/* the current period ends at the first new billing day after its start */
			m->reg.bill_next = tariff_billing_next(
				tariff_billing_start((time_t)m->reg.bill_start, cfg->billing_day),
				cfg->billing_day);
			meter_log(m, LOG_WARNING, "billing day changed from %u to %u: this period ends at %lld",
				  m->reg.billing_day, cfg->billing_day, (long long)m->reg.bill_next);
		}
		m->reg.billing_day = cfg->billing_day;
		m->reg.max_gap_ms = cfg->sample_ms * 3 > 5000 ? cfg->sample_ms * 3 : 5000;
		if (p.prot_state == PROT_LOCKOUT || p.prot_state == PROT_TRIPPED)
			m->prot.state = p.prot_state;
		if (p.remote_state <= REMOTE_ARMED)
			m->prot.remote = p.remote_state;
		m->prot.total_trips = p.total_trips;
		/* the driver's counters go on while meterd is down, until the next boot */
		if (p.ctr.valid && m->boot_id[0] && !strcmp(p.ctr.boot_id, m->boot_id))
			m->ctr = p.ctr;
	} else if (m->recovery.have_snapshot) {
		meter_log(m, LOG_ERR, "store: snapshot of layout version %u ignored (this meterd writes %u)",
		     p.version, PERSIST_VERSION);
	}

	/* Drive every relay to a known state: loads on, main as recovered. */
	m->main_closed = !protect_relay_closed(&m->prot);
	for (size_t i = 0; i < m->alloc.nloads; i++) {
		m->load_closed[i] = false;
		set_relay(m, (unsigned)i + 1, true, "start-up");
	}
	meter_apply_main(m, "start-up");
	meter_log(m, LOG_INFO, "meter ready: tariff %s (%s), %zu sheddable loads, sensor %s, relays %s",
	     m->spec.type, m->tariff.currency, m->alloc.nloads, s->ops->name, rl->ops->name);
	return 0;
}

void meter_shutdown(struct meter *m)
{
	if (m->store_ok) {
		meter_sync(m);
		store_close(&m->store);
		m->store_ok = false;
	}
	profile_free(&m->prof);
}

struct pending_intervals {
	struct profile_entry e[8];
	unsigned n, dropped;
};

static void on_interval(void *ctx, const struct profile_entry *e, uint64_t demand_mw)
{
	struct pending_intervals *pi = ctx;

	(void)demand_mw;
	if (pi->n < 8)
		pi->e[pi->n++] = *e;
	else
		pi->dropped++;
}

static void persist_intervals(struct meter *m, struct pending_intervals *pi, int64_t mono_ms)
{
	struct meter_persist p;
	bool sync_each = m->cfg.fsync_interval_s == 0;
	int r = 0;

	persist_fill(m, &p);
	for (unsigned i = 0; i < pi->n; i++) {
		profile_push(&m->prof, &pi->e[i]);
		if (m->uplink->ops->interval)
			m->uplink->ops->interval(m->uplink, &pi->e[i]);
		if (!m->store_ok)
			continue;
		r = store_commit(&m->store, i + 1 == pi->n ? &p : NULL, sizeof(p), &pi->e[i], 1,
				 i + 1 == pi->n && sync_each);
		if (r < 0) {
			store_failed(m, "interval commit", r);
			return;
		}
	}
	if (pi->n && sync_each)
		m->last_sync_mono = mono_ms;
	if (r == 1) {
		r = store_compact(&m->store, &p, sizeof(p), &m->prof);
		if (r < 0)
			store_failed(m, "compaction", r);
		else
			meter_log(m, LOG_INFO, "store: log compacted (%zu profile intervals)", m->prof.count);
	}
}

/*
 * Prefer the driver's energy counters (exact, and they cover a restart of
 * meterd within the same boot); otherwise power x time.
 */
static void integrate(struct meter *m, const struct sensor_reading *r, int64_t real_ms,
		      struct pending_intervals *pi)
{
	struct meter_counters *c = &m->ctr;

	if (!r->has_energy) {
		c->valid = 0;
		registers_integrate(&m->reg, &m->tariff, real_ms, r->p_mw, r->has_renew ? r->renew_mw : 0,
				    on_interval, pi);
		return;
	}
	if (c->valid && r->import_mj >= c->import_mj && r->export_mj >= c->export_mj &&
	    (!r->has_renew || (c->has_renew && r->renew_mj >= c->renew_mj))) {
		bool gap = real_ms - m->reg.last_ms > (int64_t)m->reg.max_gap_ms;

		if (gap)
			meter_log(m, LOG_INFO, "energy counters cover %lld s without samples",
			     (long long)((real_ms - m->reg.last_ms) / 1000));
		registers_add_energy(&m->reg, &m->tariff, real_ms, (r->import_mj - c->import_mj) * 1000,
				     (r->export_mj - c->export_mj) * 1000,
				     r->has_renew ? (r->renew_mj - c->renew_mj) * 1000 : 0, gap,
				     on_interval, pi);
	} else {
		if (c->valid)
			meter_log(m, LOG_WARNING, "energy counters of the driver went back (rebound?): step not counted");
		registers_integrate(&m->reg, &m->tariff, real_ms, 0, 0, on_interval, pi);
	}
	c->import_mj = r->import_mj;
	c->export_mj = r->export_mj;
	c->renew_mj = r->renew_mj;
	c->has_renew = r->has_renew;
	c->valid = 1;
	snprintf(c->boot_id, sizeof(c->boot_id), "%s", m->boot_id);
}

static bool readings_differ(const struct sensor_reading *a, const struct sensor_reading *b)
{
	return a->v_mv != b->v_mv || a->i_ma != b->i_ma || a->p_mw != b->p_mw ||
	       a->pf_milli != b->pf_milli || a->f_mhz != b->f_mhz || a->renew_mw != b->renew_mw;
}

static unsigned reading_faults(const struct meter *m, const struct sensor_reading *r)
{
	unsigned f = 0;

	if (r->v_mv > m->cfg.over_voltage_mv)
		f |= FAULT_OVERVOLTAGE;
	/* 0 V is a power cut, not a reading of an under-voltage: still a trip */
	if (r->v_mv < m->cfg.under_voltage_mv)
		f |= FAULT_UNDERVOLTAGE;
	if (r->i_ma > m->cfg.over_current_ma)
		f |= FAULT_OVERCURRENT;
	return f;
}

static void fault_alarms(struct meter *m, unsigned faults, const char *src)
{
	char d[96];

	snprintf(d, sizeof(d), "%s, %u.%03u V, %u.%03u A", src, m->rd.v_mv / 1000, m->rd.v_mv % 1000,
		 m->rd.i_ma / 1000, m->rd.i_ma % 1000);
	if (faults & FAULT_OVERVOLTAGE)
		set_alarm(m, ALARM_OVERVOLTAGE, true, d);
	if (faults & FAULT_UNDERVOLTAGE)
		set_alarm(m, ALARM_UNDERVOLTAGE, true, d);
	if (faults & FAULT_OVERCURRENT)
		set_alarm(m, ALARM_OVERCURRENT, true, d);
}

static void persist_live(struct meter *m)
{
	struct meter_persist p;
	int e;

	if (!m->store_ok)
		return;
	persist_fill(m, &p);
	e = store_live(&m->store, &p, sizeof(p));
	if (e)
		store_failed(m, "runtime snapshot", e);
}

void meter_event(struct meter *m, unsigned faults, int64_t mono_ms)
{
	enum protect_state before = m->prot.state;
	bool open_now = protect_fault(&m->prot, faults, mono_ms);
	bool new_uv = (faults & FAULT_UNDERVOLTAGE) && !(m->alarms & (1u << ALARM_UNDERVOLTAGE));

	/* Relay first: everything else can wait for the next mains cycle. */
	if (open_now)
		meter_apply_main(m, faults & FAULT_OVERCURRENT ? "trip: over-current" :
			      faults & FAULT_OVERVOLTAGE ? "trip: over-voltage" : "trip: under-voltage");
	else
		meter_apply_main(m, "protection");
	fault_alarms(m, faults, "driver event");
	if (new_uv || (m->prot.state == PROT_LOCKOUT && before != PROT_LOCKOUT))
		meter_sync(m);	/* power cut possible / lockout must survive one */
	else if (m->prot.state != before)
		persist_live(m);
	meter_changed(m, MP_RELAYS);
}

void meter_allocate(struct meter *m, int64_t mono_ms)
{
	struct alloc_input in;
	struct alloc_decision d;
	int64_t declared = 0, renew_w;

	for (unsigned i = 0; i < METER_MAX_APPLIANCES; i++) {
		struct appliance *a = &m->appl[i];

		if (!a->name[0])
			continue;
		if (a->expires_ms && mono_ms >= a->expires_ms) {
			meter_log(m, LOG_INFO, "appliance %s: declared demand of %u W expired", a->name, a->watts);
			memset(a, 0, sizeof(*a));
			continue;
		}
		declared += a->watts;
	}
	m->declared_w = declared;
	renew_w = m->rd.has_renew ? m->rd.renew_mw / 1000 : 0;
	in.now_ms = mono_ms;
	in.grant_w = m->grant_w;
	in.measured_w = m->rd.p_mw / 1000 + renew_w;
	in.declared_w = declared;
	in.renew_avail_w = m->rd.renew_avail_mw >= 0 ? m->rd.renew_avail_mw / 1000 : renew_w;
	if (alloc_step(&m->alloc, &in, &d)) {
		meter_log(m, LOG_NOTICE, "allocation: %s", d.reason);
		for (size_t i = 0; i < m->alloc.nloads; i++)
			if (d.changed_mask & (1u << i))
				set_relay(m, (unsigned)i + 1, !m->alloc.load[i].shed, d.reason);
	}
	if (d.deficit_w > 0)
		set_alarm(m, ALARM_DEFICIT, true, d.reason);
	clear_when_settled(m, ALARM_DEFICIT, d.deficit_w <= 0 && alloc_shed_w(&m->alloc) == 0, mono_ms,
			   "demand covered");
	if (d.request_w != m->last_request_w) {
		m->uplink->ops->request(m->uplink, d.request_w);
		m->last_request_w = d.request_w;
	}
	if (d.surplus_w != m->last_surplus_w) {
		m->uplink->ops->offer(m->uplink, d.surplus_w);
		m->last_surplus_w = d.surplus_w;
	}
	if (memcmp(&d, &m->decision, offsetof(struct alloc_decision, reason)) ||
	    strcmp(d.reason, m->decision.reason))
		meter_changed(m, MP_ALLOC);
	m->decision = d;
}

void meter_sample(struct meter *m, const struct sensor_reading *r, int64_t real_ms, int64_t mono_ms)
{
	struct pending_intervals pi = { .n = 0 };
	uint64_t imp = m->reg.import.total_mwh, exp = m->reg.export.total_mwh,
		 ren = m->reg.renew.total_mwh;
	int64_t bill = m->reg.bill_start;
	unsigned faults;
	bool vnormal;

	if (!m->have_reading || readings_differ(r, &m->rd))
		meter_changed(m, MP_READINGS);
	m->rd = *r;
	m->have_reading = true;
	m->sensor_failures = 0;
	clear_when_settled(m, ALARM_SENSOR, true, mono_ms, "readings resumed");

	/*
	 * Energy follows the monotonic clock: if the real-time clock was stepped
	 * (NTP after boot on a board without RTC), move the registers' time to
	 * the new clock first (a gap: no energy), then integrate the monotonic
	 * duration of this step at the new time.
	 */
	if (m->last_sample_mono && mono_ms > m->last_sample_mono &&
	    mono_ms - m->last_sample_mono <= m->reg.max_gap_ms) {
		int64_t dt = mono_ms - m->last_sample_mono;
		int64_t step = real_ms - (m->reg.last_ms + dt);

		if (step > 2000 || step < -2000) {
			meter_log(m, LOG_WARNING, "clock stepped by %+lld s: registers follow the new time",
			     (long long)(step / 1000));
			registers_integrate(&m->reg, &m->tariff, real_ms - dt, 0, 0, on_interval, &pi);
		}
	}
	m->last_sample_mono = mono_ms;
	integrate(m, r, real_ms, &pi);
	persist_intervals(m, &pi, mono_ms);
	if (imp != m->reg.import.total_mwh || exp != m->reg.export.total_mwh ||
	    ren != m->reg.renew.total_mwh || bill != m->reg.bill_start || pi.n)
		meter_changed(m, MP_REGISTERS);

	/* Software check of every reading, behind the driver's own events. */
	faults = reading_faults(m, r);
	if (faults)
		meter_event(m, faults, mono_ms);
	vnormal = !(faults & (FAULT_OVERVOLTAGE | FAULT_UNDERVOLTAGE));
	clear_when_settled(m, ALARM_OVERVOLTAGE,
			   (uint64_t)r->v_mv * 100 <= (uint64_t)m->cfg.over_voltage_mv * (100 - ALARM_MARGIN_PCT),
			   mono_ms, "voltage normal");
	clear_when_settled(m, ALARM_UNDERVOLTAGE,
			   (uint64_t)r->v_mv * 100 >= (uint64_t)m->cfg.under_voltage_mv * (100 + ALARM_MARGIN_PCT),
			   mono_ms, "voltage normal");
	clear_when_settled(m, ALARM_OVERCURRENT,
			   (uint64_t)r->i_ma * 100 <= (uint64_t)m->cfg.over_current_ma * (100 - ALARM_MARGIN_PCT),
			   mono_ms, "current normal");
	if (protect_tick(&m->prot, vnormal, mono_ms))
		meter_apply_main(m, "automatic reclose: voltage normal");

	meter_allocate(m, mono_ms);

	if (m->store_ok) {
		persist_live(m);
		if (m->cfg.fsync_interval_s &&
		    mono_ms - m->last_sync_mono >= (int64_t)m->cfg.fsync_interval_s * 1000) {
			if (!meter_sync(m))
				m->last_sync_mono = mono_ms;
		}
	}
}

void meter_sensor_failed(struct meter *m, int error)
{
	char d[96];

	m->alarm_ok_since[ALARM_SENSOR] = INT64_MIN;	/* a failure restarts the clearing hold */
	if (m->sensor_failures++ == 2) {
		snprintf(d, sizeof(d), "%s: %s", m->sensor->ops->name, strerror(error < 0 ? -error : error));
		set_alarm(m, ALARM_SENSOR, true, d);
	}
}

void meter_button(struct meter *m)
{
	char msg[128];

	meter_confirm_reconnect(m, "push button", msg, sizeof(msg));
}

void meter_set_grant(struct meter *m, int64_t grant_w)
{
	if (grant_w == m->grant_w)
		return;
	meter_log(m, LOG_NOTICE, "allocation: grid grant %lld W -> %lld W", (long long)m->grant_w,
	     (long long)grant_w);
	m->grant_w = grant_w;
	meter_changed(m, MP_ALLOC);
}
