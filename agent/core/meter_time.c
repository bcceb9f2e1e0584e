// SPDX-License-Identifier: GPL-2.0
/*
 * The meter's time (meter.h): whether the clock is trusted, the town's
 * time samples through the policy of clock.c, energy held on untrusted time
 * replayed onto real time, the span that was not recorded, the town's view
 * of the registers.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "meter_internal.h"

/* a clock that drifted from monotonic time by more: someone stepped it */
#define DRIFT_TOLERANCE_MS	2000
/* [meter] clock = system: the town's time this far off is worth a journal line */
#define SYSTEM_WARN_MS		10000

static const char *const source_names[] = {
	[CLOCK_SRC_NONE] = "none", [CLOCK_SRC_SYSTEM] = "system",
	[CLOCK_SRC_KERNEL] = "kernel", [CLOCK_SRC_TOWN] = "town",
};

const char *meter_clock_source_name(const struct meter *m)
{
	return m->clock_source <= CLOCK_SRC_TOWN ? source_names[m->clock_source] : "none";
}

bool meter_time_trusted(const struct meter *m)
{
	return m->clk.trusted;
}

bool meter_unrecorded(const struct meter *m, int64_t *from_ms, int64_t *to_ms)
{
	if (!m->have_unrec)
		return false;
	*from_ms = m->unrec_from;
	*to_ms = m->unrec_to;
	return true;
}

bool meter_reconstructed(const struct meter *m, int64_t *from_ms, int64_t *to_ms)
{
	if (!m->have_recon)
		return false;
	*from_ms = m->recon_from;
	*to_ms = m->recon_to;
	return true;
}

static int64_t abs64(int64_t v)
{
	return v < 0 ? -v : v;
}

/* UTC, to the second: 2026-09-21T10:15:00Z */
static const char *utc(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%lld ms", (long long)ms);
	return buf;
}

/*
 * The span from the recovered state to the start of this run was not
 * metered: within a boot from the save (on the monotonic clock), else from
 * the registers' time. real = mono + map.
 */
static void resolve_unrecorded(struct meter *m, int64_t map)
{
	bool mono = m->unrec_mono_from != INT64_MIN;
	int64_t from = mono ? m->unrec_mono_from + map : m->reg.last_ms, start_real = m->start_mono + map;
	char a[32], b[32];
	const char *why;

	if ((!mono && !m->reg_placed) || start_real - from <= (int64_t)m->reg.max_gap_ms)
		return;
	m->have_unrec = true;
	m->unrec_from = from;
	m->unrec_to = start_real;
	m->unrec_flag = PROFILE_UNRECORDED;
	why = m->last_clean ? (m->same_boot ? "meterd was stopped" : "the gateway was off") :
	      m->same_boot ? "meterd stopped without saving (crash or kill)" :
			     "the gateway stopped without saving (power cut)";
	meter_log(m, LOG_NOTICE, "store: energy from %s to %s (%lld s) was not recorded: %s; "
		  "reported as unrecorded", utc(from, a, sizeof(a)), utc(start_real, b, sizeof(b)),
		  (long long)((start_real - from) / 1000), why);
}

/*
 * Energy held on monotonic time, booked in order onto real time
 * (real = mono + map), every interval flagged PROFILE_RECONSTRUCTED. A
 * prior bucket (an earlier boot: its times are unknown) is spread over the
 * time from the registers to this boot, flagged as estimated.
 */
static bool replay_held(struct meter *m, int64_t map)
{
	struct held *h = &m->held;
	int64_t from = 0, to = 0;
	uint64_t imp, exp, ren;
	char a[32], b[32];

	if (!h->n)
		return false;
	held_totals(h, &imp, &exp, &ren);
	for (unsigned i = 0; i < h->n; i++) {
		const struct held_bucket *k = &h->b[i];
		uint32_t fl = k->flags | PROFILE_RECONSTRUCTED;
		int64_t rs, re;

		if (k->prior) {
			re = map;	/* this boot's monotonic zero */
			rs = re - (k->mono_to - k->mono_from);
			if (!m->reg_placed) {
				registers_place(&m->reg, rs);
				m->reg_placed = true;
			}
			fl |= PROFILE_TIME_UNTRUSTED | PROFILE_GAP | m->unrec_flag;
			m->unrec_flag = 0;
		} else {
			rs = k->mono_from + map;
			re = k->mono_to + map;
			if (!m->reg_placed) {
				registers_place(&m->reg, rs);
				m->reg_placed = true;
			}
			if (rs - m->reg.last_ms > (int64_t)m->reg.max_gap_ms) {
				registers_add_energy(&m->reg, &m->tariff, rs, 0, 0, 0, PROFILE_GAP | m->unrec_flag,
						     meter_on_interval, m);
				m->unrec_flag = 0;
			}
		}
		if (!i)
			from = m->reg.last_ms;
		registers_add_energy(&m->reg, &m->tariff, re, k->import_uj, k->export_uj, k->renew_uj, fl,
				     meter_on_interval, m);
		to = m->reg.last_ms;
	}
	held_init(h, h->len_ms);
	m->have_recon = true;
	m->recon_from = from;
	m->recon_to = to;
	meter_log(m, LOG_NOTICE, "clock trusted: energy held on the monotonic clock (import %llu mWh, "
		  "export %llu mWh, renewable %llu mWh) booked from %s to %s, flagged reconstructed",
		  (unsigned long long)(imp / UJ_PER_MWH), (unsigned long long)(exp / UJ_PER_MWH),
		  (unsigned long long)(ren / UJ_PER_MWH), utc(from, a, sizeof(a)), utc(to, b, sizeof(b)));
	return true;
}

/* The clock is trusted from now on; real = mono + map. */
static void trust_begins(struct meter *m, int64_t map)
{
	bool saved;

	m->clk.trusted = true;
	/* the last sample on the trusted clock: the next one sees no step */
	m->last_real = m->last_mono + map;
	m->real_minus_mono = map;
	if (m->unrec_pending) {
		m->unrec_pending = false;
		resolve_unrecorded(m, map);
	}
	saved = replay_held(m, map);
	if (saved) {
		meter_store_intervals(m);
		meter_sync(m);
	}
	meter_changed(m, MP_REGISTERS | MP_CLOCK);
}

void meter_time_start(struct meter *m, const struct meter_persist *p)
{
	const struct meter_clock_ops *o = m->clock_ops;
	bool trusted = false;
	char when[32], age[112];
	uint64_t imp, exp, ren;

	if (!config_clock_town(&m->cfg)) {
		trusted = true;
		m->clock_source = CLOCK_SRC_SYSTEM;
	} else if (o && o->synced && o->synced(o->ctx) == 1) {
		trusted = true;
		m->clock_source = CLOCK_SRC_KERNEL;
	} else if (p && m->same_boot && (p->flags & PERSIST_TRUSTED) && p->saved_mono_ms <= m->start_mono) {
		/* this boot's previous run trusted it: still, unless it was stepped since */
		int64_t drift = (m->start_real - m->start_mono) - (p->saved_real_ms - p->saved_mono_ms);

		if (abs64(drift) <= DRIFT_TOLERANCE_MS + (m->start_mono - p->saved_mono_ms) / 2000) {
			trusted = true;
			m->clock_source = p->clock_source == CLOCK_SRC_TOWN ? CLOCK_SRC_TOWN : CLOCK_SRC_KERNEL;
		}
	}
	if (p) {
		if (m->same_boot && p->saved_mono_ms <= m->start_mono)
			snprintf(age, sizeof(age), "%lld s before this start (this boot)",
				 (long long)((m->start_mono - p->saved_mono_ms) / 1000));
		else if (trusted && (p->flags & PERSIST_TRUSTED))
			snprintf(age, sizeof(age), "%lld s before this start (an earlier boot)",
				 (long long)((m->start_real - p->saved_real_ms) / 1000));
		else
			snprintf(age, sizeof(age), "before this start, how long is not known until the clock "
				 "is trusted (an earlier boot)");
		meter_lifetime(m, &imp, &exp, &ren);
		meter_log(m, m->last_clean ? LOG_INFO : LOG_NOTICE,
			  "store: the recovered state was saved at %s, %s; the last stop was %s; "
			  "registers import %llu mWh, export %llu mWh, renewable %llu mWh",
			  p->flags & PERSIST_TRUSTED ? utc(p->saved_real_ms, when, sizeof(when)) : "an untrusted time",
			  age, m->last_clean ? "clean" : "NOT clean (no save at stop)",
			  (unsigned long long)imp, (unsigned long long)exp, (unsigned long long)ren);
		/* what was not metered, unless the driver's counters cover it */
		m->unrec_pending = !(m->same_boot && p->ctr.valid);
		m->unrec_mono_from = m->same_boot && p->saved_mono_ms <= m->start_mono ? p->saved_mono_ms : INT64_MIN;
	}
	if (!trusted) {
		m->clock_source = CLOCK_SRC_NONE;
		meter_log(m, LOG_NOTICE, "clock: not trusted (the kernel does not say it is synchronised): "
			  "energy is held on the monotonic clock until the town server's time arrives");
		return;
	}
	trust_begins(m, m->real_minus_mono);
}

int meter_clock_sample(struct meter *m, int64_t offset_ms, int64_t uncertainty_ms, int64_t mono_ms)
{
	const struct meter_clock_ops *o = m->clock_ops;
	struct clock_state before = m->clk;
	struct clock_decision d;
	enum clock_action a;
	int r = 0;

	m->clock_offset_ms = offset_ms;
	meter_changed(m, MP_CLOCK);
	if (!config_clock_town(&m->cfg)) {
		if (abs64(offset_ms) > SYSTEM_WARN_MS)
			meter_log(m, LOG_WARNING, "clock: the town server's time is %+lld ms from this clock "
				  "([meter] clock = system: not followed)", (long long)offset_ms);
		return CLOCK_NONE;
	}
	a = clock_sample(&m->clk_policy, &m->clk, offset_ms, uncertainty_ms, mono_ms, &d);
	if (a == CLOCK_STEP)
		r = o && o->step ? o->step(o->ctx, d.delta_ms) : -EOPNOTSUPP;
	else if (a == CLOCK_SLEW)
		r = o && o->slew ? o->slew(o->ctx, d.delta_ms) : -EOPNOTSUPP;
	if (r) {
		m->clk = before;	/* nothing changed */
		meter_log(m, LOG_ERR, "clock: cannot %s the clock by %+lld ms: %s", a == CLOCK_STEP ? "step" : "slew",
			  (long long)d.delta_ms, strerror(-r));
		return r;
	}
	if (a == CLOCK_REFUSE) {
		meter_alarm(m, ALARM_CLOCK_SUSPECT, true, d.why);
		return a;
	}
	if (o && o->mark_synced && (r = o->mark_synced(o->ctx, uncertainty_ms)))
		meter_log(m, LOG_WARNING, "clock: cannot mark the kernel's clock synchronised: %s", strerror(-r));
	meter_alarm(m, ALARM_CLOCK_SUSPECT, false, "the clock follows the town server's time");
	if (a != CLOCK_NONE)
		meter_log(m, a == CLOCK_STEP ? LOG_NOTICE : LOG_INFO, "clock: %s", d.why);
	m->clock_source = CLOCK_SRC_TOWN;
	if (!before.trusted)
		trust_begins(m, m->real_minus_mono + d.delta_ms);
	return a;
}

int meter_town_view(struct meter *m, uint64_t import_mwh, uint64_t export_mwh, uint64_t renew_mwh)
{
	struct registers *r = &m->reg;
	/* the first view of the run: this run's energy comes on top of it (meter.h) */
	const uint64_t *from = m->town_view_seen ? (const uint64_t[3]){ r->import.total_mwh,
		r->export.total_mwh, r->renew.total_mwh } : m->run_start_mwh;
	uint64_t di = import_mwh > from[0] ? import_mwh - from[0] : 0;
	uint64_t de = export_mwh > from[1] ? export_mwh - from[1] : 0;
	uint64_t dr = renew_mwh > from[2] ? renew_mwh - from[2] : 0;

	m->town_view_seen = true;
	if (!di && !de && !dr)
		return 0;
	/* lifetime totals only: the open interval does not count it */
	r->import.total_mwh += di;
	r->export.total_mwh += de;
	r->renew.total_mwh += dr;
	r->ivl_base_import += di;
	r->ivl_base_export += de;
	r->ivl_base_renew += dr;
	r->ivl_flags |= PROFILE_RESTORED;
	meter_log(m, LOG_WARNING, "registers raised to the town server's view: import +%llu mWh, export "
		  "+%llu mWh, renewable +%llu mWh (this meter's state was lost or older than the readings "
		  "the town holds)", (unsigned long long)di, (unsigned long long)de, (unsigned long long)dr);
	meter_sync(m);
	meter_changed(m, MP_REGISTERS);
	return 1;
}
