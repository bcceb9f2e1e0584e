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

/* An alarm clears once its condition has been gone this long (and, for
 * limits, by 2 %): a value hovering at a limit does not flood the journal. */
#define ALARM_HOLD_MS	10000
#define ALARM_MARGIN_PCT 2
/* real and monotonic time disagreeing by more over a sample: the clock was stepped */
#define STEP_TOLERANCE_MS	2000
/* a durable snapshot that failed is tried again this much later */
#define DURABLE_RETRY_MS	10000
#define UJ_PER_WH		(UJ_PER_MWH * 1000)

_Static_assert(PERSIST_MAX <= STORE_MAX_SNAPSHOT, "the meter's snapshot fits the store");

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
	[ALARM_CLOCK_SUSPECT] = "clock-suspect",
	[ALARM_REVERSED_CT] = "reversed-ct",
	[ALARM_CT_TAMPER] = "ct-tamper",
	[ALARM_LOAD_UNREACHABLE] = "load-unreachable",
	[ALARM_LOAD_MISMATCH] = "load-mismatch",
	[ALARM_GAS] = "gas",
	[ALARM_HOME_SENSOR] = "home-sensor",
};

const char *meter_alarm_name(enum meter_alarm a)
{
	return a < ALARM_COUNT ? alarm_names[a] : "?";
}

void meter_log(struct meter *m, int level, const char *fmt, ...)
{
	char msg[512];
	const char *line;
	struct timespec ts;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (level & METER_LOG_EVENT) {
		/* a change of state is never held back (its own logic paces it) */
		level &= ~METER_LOG_EVENT;
		m->log_bytes += strlen(msg) + 1;
		if (m->hooks.log)
			m->hooks.log(m->hooks.ctx, level, msg);
		else
			fprintf(stderr, "<%d>%s\n", level, msg);
		return;
	}
	/* monotonic: a clock step neither releases nor holds back lines */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	log_limit_feed(&m->log_limit, level, msg, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	while ((line = log_limit_next(&m->log_limit, &level))) {
		m->log_bytes += strlen(line) + 1;
		if (m->hooks.log)
			m->hooks.log(m->hooks.ctx, level, line);
		else
			fprintf(stderr, "<%d>%s\n", level, line);
	}
}

void meter_changed(struct meter *m, unsigned groups)
{
	if (groups && m->hooks.changed)
		m->hooks.changed(m->hooks.ctx, groups);
}

/*
 * Alarms about the house's own appliances (smart plugs the bridge switches)
 * stay in the house: D-Bus, the journal, the dashboard; the town server
 * has nothing to do with a washing machine's plug being offline.
 */
static bool alarm_to_town(enum meter_alarm a)
{
	return a != ALARM_LOAD_UNREACHABLE && a != ALARM_LOAD_MISMATCH;
}

static void set_alarm(struct meter *m, enum meter_alarm a, bool on, const char *detail)
{
	unsigned bit = 1u << a;

	if (!!(m->alarms & bit) == on)
		return;
	m->alarms = on ? m->alarms | bit : m->alarms & ~bit;
	meter_log(m, (on ? LOG_WARNING : LOG_NOTICE) | METER_LOG_EVENT, "alarm %s %s: %s", alarm_names[a],
	     on ? "raised" : "cleared", detail);
	if (m->hooks.alarm)
		m->hooks.alarm(m->hooks.ctx, alarm_names[a], on, detail);
	if (m->uplink->ops->alarm && alarm_to_town(a))
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

/*
 * Relay idx (0 main, i + 1 load i) to closed. A load with switch = external
 * has no line: its wanted state changes (Loads, RelayChanged) and the MQTT
 * bridge carries it to the plug.
 */
static void set_relay(struct meter *m, unsigned idx, bool closed, const char *reason)
{
	const char *name = idx ? m->alloc.load[idx - 1].name : "main";
	bool *state = idx ? &m->load_closed[idx - 1] : &m->main_closed;
	bool external = idx && meter_load_external(m, idx - 1);
	int r;

	if (*state == closed)
		return;
	r = external ? 0 : m->relays->ops->set(m->relays, idx, closed);
	if (r < 0) {
		meter_log(m, LOG_ERR, "relay %s: cannot %s: %s", name, closed ? "close" : "open", strerror(-r));
		return;
	}
	*state = closed;
	if (external) {
		m->ext[idx - 1].mismatch_since = INT64_MIN;	/* the plug gets its time to follow */
		meter_changed(m, MP_LOADS);
	}
	meter_log(m, (idx ? LOG_INFO : LOG_NOTICE) | METER_LOG_EVENT, "relay %s %s: %s", name,
		  closed ? "closed" : "opened", reason);
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

/* ---- persistence ------------------------------------------------------------ */

static size_t persist_fill(const struct meter *m, void *buf, size_t size, uint32_t flags)
{
	struct meter_persist p;

	memset(&p, 0, sizeof(p));
	p.prot_state = m->prot.state;
	p.remote_state = m->prot.remote;
	p.total_trips = m->prot.total_trips;
	p.reg = m->reg;
	p.ctr = m->ctr;
	p.flags = flags | (m->clk.trusted ? PERSIST_TRUSTED : 0) | (m->reg_placed ? PERSIST_PLACED : 0);
	p.saved_real_ms = m->last_real;
	p.saved_mono_ms = m->last_mono;
	memcpy(p.boot_id, m->boot_id, sizeof(p.boot_id));
	p.clock_offset_ms = m->clock_offset_ms;
	p.clock_source = m->clock_source;
	return persist_encode(&p, &m->held, buf, size);
}

/* Which boot the monotonic clock belongs to; none known: every start is a new boot. */
static void read_boot_id(struct meter *m)
{
	m->boot_id[0] = 0;
	if (m->clock_ops && m->clock_ops->boot_id &&
	    m->clock_ops->boot_id(m->clock_ops->ctx, m->boot_id, sizeof(m->boot_id)))
		m->boot_id[0] = 0;
}

static void store_failed(struct meter *m, const char *what, int r)
{
	char d[128];

	snprintf(d, sizeof(d), "%s: %s", what, strerror(-r));
	set_alarm(m, ALARM_STORE_ERROR, true, d);
}

/* store-error clears once every kind of write works again */
static void store_healthy(struct meter *m)
{
	if (!m->store_behind && !m->durable_failing && !m->live_failing)
		set_alarm(m, ALARM_STORE_ERROR, false, "storage writes succeed again");
}

static void durable_done(struct meter *m)
{
	int64_t dt = m->last_mono - m->last_durable_mono;

	if (m->since_durable_uj > m->max_at_risk_uj)
		m->max_at_risk_uj = m->since_durable_uj;
	if (dt > m->max_at_risk_ms)
		m->max_at_risk_ms = dt;
	m->last_durable_mono = m->last_mono;
	m->since_durable_uj = 0;
	m->durable_saves++;
	m->retry_mono = 0;
}

/*
 * A durable snapshot into meterd.snap (one page: fast, even while the
 * supply fails), then, if a write to the log failed earlier, the log
 * rewritten with the profile held in memory.
 */
static int write_snapshot(struct meter *m, uint32_t flags)
{
	uint8_t buf[PERSIST_MAX];
	size_t n;
	int r;

	if (!m->store_ok)
		return -ENODEV;
	n = persist_fill(m, buf, sizeof(buf), flags);
	r = store_save(&m->store, buf, n);
	if (r) {
		m->durable_failing = true;
		store_failed(m, "durable snapshot", r);
	} else {
		m->durable_failing = false;
		durable_done(m);
	}
	if (m->store_behind && !store_compact(&m->store, buf, n, &m->prof)) {
		m->store_behind = false;
		meter_log(m, LOG_NOTICE, "store: log rewritten after a failed write (%zu profile intervals)",
			  m->prof.count);
		if (r) {
			/* the rewritten log holds the snapshot: durable after all */
			m->durable_failing = false;
			durable_done(m);
			r = 0;
		}
	}
	store_healthy(m);
	return r;
}

int meter_sync(struct meter *m)
{
	return write_snapshot(m, 0);
}

static void persist_live(struct meter *m)
{
	uint8_t buf[PERSIST_MAX];
	size_t n;
	int e;

	if (!m->store_ok)
		return;
	n = persist_fill(m, buf, sizeof(buf), 0);
	e = store_live(&m->store, buf, n);
	if (e) {
		m->live_failing = true;
		store_failed(m, "runtime snapshot", e);
	} else if (m->live_failing) {
		m->live_failing = false;
		store_healthy(m);
	}
}

/*
 * Every closed interval: into the profile (after a backward clock step an
 * interval whose time the profile has passed joins the newest entry,
 * flagged), to the uplink, and queued for the log.
 */
void meter_on_interval(void *ctx, const struct profile_entry *e, uint64_t demand_mw)
{
	struct meter *m = ctx;
	struct profile_entry x = *e;
	const struct profile_entry *last = profile_newest(&m->prof);

	(void)demand_mw;
	if (last && x.start <= last->start) {
		struct profile_entry merged = *last;

		merged.import_mwh += x.import_mwh;
		merged.export_mwh += x.export_mwh;
		merged.renew_mwh += x.renew_mwh;
		merged.flags |= x.flags | PROFILE_CLOCK_STEP;
		x = merged;
	}
	profile_put(&m->prof, &x);
	if (m->uplink->ops->interval)
		m->uplink->ops->interval(m->uplink, &x);
	if (m->npend && m->pend[m->npend - 1].start == x.start) {
		m->pend[m->npend - 1] = x;
		return;
	}
	if (m->npend == m->pend_cap) {
		size_t cap = m->pend_cap ? 2 * m->pend_cap : 16;
		struct profile_entry *p = realloc(m->pend, cap * sizeof(*p));

		if (!p) {
			m->store_behind = true;	/* the profile has it: the next save rewrites the log */
			return;
		}
		m->pend = p;
		m->pend_cap = cap;
	}
	m->pend[m->npend++] = x;
}

/* The intervals closed since the last call, with a snapshot, durably into the log. */
void meter_store_intervals(struct meter *m)
{
	uint8_t buf[PERSIST_MAX];
	size_t n, count = m->npend;
	int r;

	m->npend = 0;
	if (!count || !m->store_ok)
		return;
	if (m->store_behind) {
		write_snapshot(m, 0);	/* a rewrite of the whole log, if there is room */
		return;
	}
	n = persist_fill(m, buf, sizeof(buf), 0);
	r = store_commit(&m->store, buf, n, m->pend, count, true);
	if (r < 0) {
		m->store_behind = true;
		store_failed(m, "interval commit", r);
		write_snapshot(m, 0);	/* the snapshot at least, into meterd.snap */
		return;
	}
	durable_done(m);
	store_healthy(m);
	if (r == 1) {
		r = store_compact(&m->store, buf, n, &m->prof);
		if (r < 0)
			store_failed(m, "compaction", r);
		else
			meter_log(m, LOG_INFO, "store: log compacted (%zu profile intervals)", m->prof.count);
	}
}

/* ---- start and stop ------------------------------------------------------------ */

/* The recovered snapshot: registers, protection, counters, held energy, time. */
static void restore(struct meter *m, const struct meter_persist *p, const struct held *h)
{
	const struct meter_config *cfg = &m->cfg;
	uint32_t max_close = m->reg.max_close;

	m->recovered = true;
	m->last_clean = p->flags & PERSIST_CLEAN;
	m->same_boot = m->boot_id[0] && !strcmp(p->boot_id, m->boot_id);
	m->reg_placed = p->flags & PERSIST_PLACED;
	m->clock_offset_ms = p->clock_offset_ms;
	m->reg = p->reg;
	m->reg.max_close = max_close;
	if (p->reg.interval_s != cfg->interval_s) {
		meter_log(m, LOG_WARNING, "interval changed from %u s to %u s: the registers are kept, "
		     "the load profile continues with the new length", p->reg.interval_s,
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
	if (p->prot_state == PROT_LOCKOUT || p->prot_state == PROT_TRIPPED)
		m->prot.state = p->prot_state;
	if (p->remote_state <= REMOTE_ARMED)
		m->prot.remote = p->remote_state;
	m->prot.total_trips = p->total_trips;
	m->held = *h;
	if (!m->same_boot)
		held_new_boot(&m->held);	/* their monotonic times mean nothing now */
	/* the driver's counters go on while meterd is down, until the next boot */
	if (p->ctr.valid && m->boot_id[0] && !strcmp(p->ctr.boot_id, m->boot_id)) {
		m->ctr = p->ctr;
		if (m->same_boot && p->saved_mono_ms <= m->start_mono) {
			/* the first sample's counters cover the time since the save */
			m->last_mono = p->saved_mono_ms;
			m->last_real = p->saved_real_ms;
		}
	}
}

static int recover(struct meter *m, char *err, size_t errlen)
{
	uint8_t buf[PERSIST_MAX];
	struct meter_persist p;
	struct held h;
	char desc[400];
	size_t len = 0;
	uint32_t version = 0;
	int r;

	r = store_recover(&m->store, buf, &len, &m->prof, &m->recovery);
	if (r) {
		snprintf(err, errlen, "reading the store in %s: %s", m->cfg.state_dir, strerror(-r));
		return r;
	}
	store_recovery_describe(&m->recovery, desc, sizeof(desc));
	meter_log(m, m->recovery.corrupt_records ? LOG_ERR : m->recovery.torn_bytes ? LOG_NOTICE : LOG_INFO,
		  "store: %s", desc);
	if (m->recovery.corrupt_records)
		set_alarm(m, ALARM_STORE_CORRUPT, true, desc);
	if (!m->recovery.have_snapshot) {
		meter_time_start(m, NULL);
		return 0;
	}
	memcpy(&version, buf, sizeof(version));
	r = persist_decode(buf, len, &p, &h);
	if (r == -EPROTONOSUPPORT) {
		meter_log(m, LOG_ERR, "store: snapshot of layout version %u ignored (this meterd writes %u)",
			  p.version, PERSIST_VERSION);
	} else if (r) {
		meter_log(m, LOG_ERR, "store: snapshot of layout version %u, %zu bytes, not understood: ignored",
			  version, len);
	} else {
		if (version != PERSIST_VERSION)
			meter_log(m, LOG_NOTICE, "store: state of layout version %u migrated to version %u",
				  version, PERSIST_VERSION);
		restore(m, &p, &h);
		meter_time_start(m, &p);
		return 0;
	}
	meter_time_start(m, NULL);
	return 0;
}

int meter_init(struct meter *m, const struct meter_config *cfg, struct sensor *s,
	       struct relays *rl, const struct meter_hooks *hooks, int64_t real_ms, int64_t mono_ms,
	       char *err, size_t errlen)
{
	struct alloc_cfg acfg;
	struct protect_cfg pcfg;
	char path[CFG_PATH + 32];
	int r;

	memset(m, 0, sizeof(*m));
	m->cfg = *cfg;
	m->sensor = s;
	m->relays = rl;
	m->uplink = &uplink_none;
	if (hooks) {
		m->hooks = *hooks;
		m->clock_ops = hooks->clock;
	}
	m->grant_w = cfg->grid_allocation_w;
	m->start_real = m->last_real = real_ms;
	m->start_mono = m->last_mono = m->last_durable_mono = mono_ms;
	m->real_minus_mono = real_ms - mono_ms;
	m->unrec_mono_from = INT64_MIN;
	read_boot_id(m);
	for (unsigned a = 0; a < ALARM_COUNT; a++)
		m->alarm_ok_since[a] = INT64_MIN;
	m->export_since = m->idle_since = INT64_MIN;
	clock_policy_init(&m->clk_policy, cfg->clock_max_step_s);
	held_init(&m->held, cfg->interval_s * 1000);

	setenv("TZ", cfg->timezone, 1);
	tzset();

	m->spec = cfg->tariff_spec;
	m->tariff = cfg->tariff;
	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, METER_TARIFF_FILE);
	r = tariff_file_load(path, &m->spec, &m->tariff, NULL, err, errlen);
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
	for (size_t i = 0; i < cfg->nloads; i++) {
		alloc_add_load(&m->alloc, cfg->load[i].name, cfg->load[i].load_w);
		m->ext[i].last_report_ms = mono_ms;
		m->ext[i].mismatch_since = INT64_MIN;
		m->ext[i].shown_w = -1;
		/* an external load cannot be switched until its first report */
		if (cfg->load[i].external)
			alloc_set_report(&m->alloc, i, false, -1);
	}
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
	/* a long clock step emits at most what the profile can hold */
	m->reg.max_close = (uint32_t)m->prof.cap;
	if (cfg->fsync_interval_line)
		meter_log(m, LOG_WARNING, "%s:%u: [store] fsync_interval is deprecated, use persist_interval: "
			  "a durable snapshot every %u s or %u Wh, whichever comes first", cfg->path,
			  cfg->fsync_interval_line, cfg->persist_interval_s, cfg->persist_energy_wh);

	r = store_open(&m->store, cfg->state_dir, cfg->runtime_dir, PERSIST_MAX);
	if (r) {
		snprintf(err, errlen, "store in %s and %s: %s", cfg->state_dir, cfg->runtime_dir,
			 strerror(-r));
		return r;
	}
	m->store_ok = true;
	r = recover(m, err, errlen);
	if (r)
		return r;
	m->run_start_mwh[0] = m->reg.import.total_mwh;
	m->run_start_mwh[1] = m->reg.export.total_mwh;
	m->run_start_mwh[2] = m->reg.renew.total_mwh;
	/*
	 * A first start (or one after the state was lost) saves at once, so
	 * that a cut before the first periodic save is still recognised as an
	 * unclean stop of a known state, with its age.
	 */
	if (!m->recovery.have_snapshot)
		meter_sync(m);

	/* Drive every relay to a known state: loads on, main as recovered. */
	m->main_closed = !protect_relay_closed(&m->prot);
	for (size_t i = 0; i < m->alloc.nloads; i++) {
		m->load_closed[i] = false;
		set_relay(m, (unsigned)i + 1, true, "start-up");
	}
	meter_apply_main(m, "start-up");
	meter_log(m, LOG_INFO, "meter ready: tariff %s (%s), %zu sheddable loads, sensor %s, relays %s, "
		  "a durable snapshot every %u s or %u Wh",
	     m->spec.type, m->tariff.currency, m->alloc.nloads, s->ops->name, rl->ops->name,
	     cfg->persist_interval_s, cfg->persist_energy_wh);
	return 0;
}

void meter_shutdown(struct meter *m)
{
	if (m->store_ok) {
		int r;

		meter_store_intervals(m);
		r = write_snapshot(m, PERSIST_CLEAN);
		if (r)
			meter_log(m, LOG_ERR, "store: the state could NOT be saved at stop: %s", strerror(-r));
		else
			meter_log(m, LOG_INFO, "store: state saved at stop (import %llu mWh, export %llu mWh, "
				  "renewable %llu mWh)", (unsigned long long)m->reg.import.total_mwh,
				  (unsigned long long)m->reg.export.total_mwh,
				  (unsigned long long)m->reg.renew.total_mwh);
		store_close(&m->store);
		m->store_ok = false;
	}
	free(m->pend);
	m->pend = NULL;
	m->npend = m->pend_cap = 0;
	profile_free(&m->prof);
}

void meter_powerfail(struct meter *m, bool lost)
{
	int r;

	if (!lost) {
		meter_log(m, LOG_NOTICE, "power-fail input: the supply is back");
		return;
	}
	r = meter_sync(m);
	meter_log(m, r ? LOG_ERR : LOG_WARNING, "power-fail input: the supply is failing: %s%s",
		  r ? "the state could NOT be saved: " : "state saved", r ? strerror(-r) : "");
}

void meter_lifetime(const struct meter *m, uint64_t *import_mwh, uint64_t *export_mwh,
		    uint64_t *renew_mwh)
{
	uint64_t i, e, r;

	held_totals(&m->held, &i, &e, &r);
	*import_mwh = m->reg.import.total_mwh + (m->reg.import.rem_uj + i) / UJ_PER_MWH;
	*export_mwh = m->reg.export.total_mwh + (m->reg.export.rem_uj + e) / UJ_PER_MWH;
	*renew_mwh = m->reg.renew.total_mwh + (m->reg.renew.rem_uj + r) / UJ_PER_MWH;
}

/* ---- energy --------------------------------------------------------------------- */

/*
 * Where a sample's energy goes: onto real time when the clock is trusted,
 * else held on monotonic time. dt: the monotonic time it covers.
 */
static void place(struct meter *m, int64_t real_ms, int64_t dt, uint64_t imp, uint64_t exp,
		  uint64_t ren, uint32_t flags)
{
	int64_t from = real_ms - dt;

	if (!m->clk.trusted) {
		held_add(&m->held, m->last_mono, m->last_mono + dt, imp, exp, ren, flags);
		return;
	}
	if (!m->reg_placed) {
		registers_place(&m->reg, from);
		m->reg_placed = true;
	}
	if (!m->have_sample) {
		/* meterd was not metering from the registers' time to this sample */
		if (from - m->reg.last_ms > (int64_t)m->reg.max_gap_ms) {
			registers_add_energy(&m->reg, &m->tariff, from, 0, 0, 0, PROFILE_GAP | m->unrec_flag,
					     meter_on_interval, m);
			m->unrec_flag = 0;
		}
	} else if (from - m->last_real > STEP_TOLERANCE_MS || m->last_real - from > STEP_TOLERANCE_MS) {
		/* the clock was stepped: registers follow the new time, energy stays exact */
		int64_t step = from - m->last_real;

		meter_log(m, LOG_WARNING, "clock stepped by %+lld s: registers follow the new time",
			  (long long)(step / 1000));
		if (step > 0)
			registers_add_energy(&m->reg, &m->tariff, from, 0, 0, 0,
					     PROFILE_GAP | PROFILE_CLOCK_STEP, meter_on_interval, m);
		else
			registers_clock_step(&m->reg, from, meter_on_interval, m);
	}
	registers_add_energy(&m->reg, &m->tariff, real_ms, imp, exp, ren, flags, meter_on_interval, m);
}

/*
 * The energy of one sample: the driver's energy counters when it has them
 * (exact, and they cover a restart of meterd within the same boot),
 * otherwise power x monotonic time (no energy over a gap longer than
 * max_gap_ms). Real time only says where it is booked.
 */
static void take_energy(struct meter *m, const struct sensor_reading *r, int64_t real_ms, int64_t mono_ms)
{
	struct meter_counters *c = &m->ctr;
	int64_t dt = mono_ms > m->last_mono ? mono_ms - m->last_mono : 0;
	uint64_t imp = 0, exp = 0, ren = 0;
	uint32_t flags = 0;

	if (r->has_energy) {
		if (c->valid && r->import_mj >= c->import_mj && r->export_mj >= c->export_mj &&
		    (!r->has_renew || (c->has_renew && r->renew_mj >= c->renew_mj))) {
			imp = (r->import_mj - c->import_mj) * 1000;
			exp = (r->export_mj - c->export_mj) * 1000;
			ren = r->has_renew ? (r->renew_mj - c->renew_mj) * 1000 : 0;
			if (dt > (int64_t)m->reg.max_gap_ms) {
				flags |= PROFILE_GAP;
				meter_log(m, LOG_INFO, "energy counters cover %lld s without samples",
					  (long long)(dt / 1000));
			}
		} else {
			if (c->valid)
				meter_log(m, LOG_WARNING, "energy counters of the driver went back (rebound?): "
					  "step not counted");
			if (dt > (int64_t)m->reg.max_gap_ms)
				flags |= PROFILE_GAP;
		}
		c->import_mj = r->import_mj;
		c->export_mj = r->export_mj;
		c->renew_mj = r->renew_mj;
		c->has_renew = r->has_renew;
		c->valid = 1;
		snprintf(c->boot_id, sizeof(c->boot_id), "%s", m->boot_id);
	} else {
		c->valid = 0;
		if (dt > (int64_t)m->reg.max_gap_ms) {
			flags |= PROFILE_GAP;
		} else {
			imp = r->p_mw > 0 ? (uint64_t)r->p_mw * (uint64_t)dt : 0;
			exp = r->p_mw < 0 ? (uint64_t)-r->p_mw * (uint64_t)dt : 0;
			ren = r->has_renew && r->renew_mw > 0 ? (uint64_t)r->renew_mw * (uint64_t)dt : 0;
		}
	}
	/* energy the driver estimated for time it did not measure */
	if (r->has_gaps) {
		if (m->gaps_valid && (r->missed_samples != m->last_missed || r->gap_ns != m->last_gap_ns))
			flags |= PROFILE_SAMPLING_GAP;
		m->last_missed = r->missed_samples;
		m->last_gap_ns = r->gap_ns;
	}
	m->gaps_valid = r->has_gaps;
	m->since_durable_uj += imp + exp + ren;
	place(m, real_ms, dt, imp, exp, ren, flags);
	m->last_real = real_ms;
	m->last_mono = mono_ms;
	m->real_minus_mono = real_ms - mono_ms;
	m->have_sample = true;
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

/* since: when cond began to hold (INT64_MIN: it does not); true once it held for hold_ms. */
static bool held_for(int64_t *since, bool cond, int64_t now_ms, int64_t hold_ms)
{
	if (!cond) {
		*since = INT64_MIN;
		return false;
	}
	if (*since == INT64_MIN)
		*since = now_ms;
	return now_ms - *since >= hold_ms;
}

/*
 * The tamper alarms ([tamper], Documentation/meterd.md "Tamper alarms"):
 *   reversed-ct  export above reverse_export for reverse_time while the meter
 *                knows of no generation (no renewable CT, [tamper] generation
 *                false): a clamp put on backwards reads the house's load as
 *                export. Cleared once it reads import above reverse_export
 *                again (for ALARM_HOLD_MS): the right direction.
 *   ct-tamper    current below idle_current for idle_time while the voltage
 *                is normal and the main relay closed: the supply is on, yet
 *                nothing in the house draws for hours, which a clamp taken
 *                off, an open CT circuit or a bypass around the clamp reads as.
 *                Cleared once current above idle_current flows again.
 * Both are evidence for the main server's detection (GMP_ALARM); neither
 * changes the supply.
 */
static void tamper_checks(struct meter *m, const struct sensor_reading *r, bool vnormal,
			  int64_t now_ms)
{
	const struct meter_config *c = &m->cfg;
	int64_t limit_mw = (int64_t)c->reverse_export_w * 1000;
	bool generation = c->generation || c->renewable_device[0] || r->has_renew;
	char d[160];

	if (held_for(&m->export_since, c->reverse_export_w && !generation && r->p_mw < -limit_mw,
		     now_ms, (int64_t)c->reverse_time_s * 1000)) {
		snprintf(d, sizeof(d), "export of %lld W for %u s with no generation configured "
			 "([tamper] generation, [sensors] renewable_device)",
			 (long long)(-r->p_mw / 1000), c->reverse_time_s);
		set_alarm(m, ALARM_REVERSED_CT, true, d);
	}
	clear_when_settled(m, ALARM_REVERSED_CT, r->p_mw > limit_mw, now_ms, "the CT reads import");
	if (held_for(&m->idle_since, c->idle_time_s && vnormal && m->main_closed &&
		     r->i_ma < c->idle_current_ma, now_ms, (int64_t)c->idle_time_s * 1000)) {
		snprintf(d, sizeof(d), "%u mA for %u s with the supply on and the main relay closed: "
			 "CT removed, open or bypassed?", r->i_ma, c->idle_time_s);
		set_alarm(m, ALARM_CT_TAMPER, true, d);
	}
	clear_when_settled(m, ALARM_CT_TAMPER, r->i_ma >= c->idle_current_ma, now_ms,
			   "current flows through the CT");
}

void meter_sample(struct meter *m, const struct sensor_reading *r, int64_t real_ms, int64_t mono_ms)
{
	uint64_t imp, exp, ren, imp1, exp1, ren1;
	int64_t bill = m->reg.bill_start;
	size_t closed;
	unsigned faults;
	bool vnormal;

	if (!m->have_reading || readings_differ(r, &m->rd))
		meter_changed(m, MP_READINGS);
	m->rd = *r;
	m->have_reading = true;
	m->sensor_failures = 0;
	clear_when_settled(m, ALARM_SENSOR, true, mono_ms, "readings resumed");

	meter_lifetime(m, &imp, &exp, &ren);
	take_energy(m, r, real_ms, mono_ms);
	closed = m->npend;
	meter_store_intervals(m);
	meter_lifetime(m, &imp1, &exp1, &ren1);
	if (imp != imp1 || exp != exp1 || ren != ren1 || bill != m->reg.bill_start || closed)
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
	tamper_checks(m, r, vnormal, mono_ms);

	meter_loads_tick(m, mono_ms);
	meter_allocate(m, mono_ms);

	if (m->store_ok) {
		/*
		 * Bounded loss on a power cut: a durable snapshot every
		 * persist_interval of monotonic time (clock steps change
		 * nothing here) or persist_energy, whichever comes first.
		 */
		bool due = mono_ms - m->last_durable_mono >= (int64_t)m->cfg.persist_interval_s * 1000 ||
			   m->since_durable_uj >= (uint64_t)m->cfg.persist_energy_wh * UJ_PER_WH;

		persist_live(m);
		if (due && mono_ms >= m->retry_mono && meter_sync(m))
			m->retry_mono = mono_ms + DURABLE_RETRY_MS;
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
