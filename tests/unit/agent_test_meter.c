// SPDX-License-Identifier: GPL-2.0
/*
 * The meter with the replay sensor and fake relays, on fake time: relays
 * follow protection and allocation at once, state survives a clean restart
 * and a crash (no shutdown), lockout persists, clock steps keep energy exact,
 * a steady hour writes nothing to the journal; power cuts lose at most the
 * persistence bound, clean stops nothing; clock steps never stop
 * persistence nor drop profile intervals; energy metered on an untrusted
 * clock is held and booked when the town's time arrives; a full disk
 * raises store-error and clears it when space returns.
 *
 * A fake clock (boot id, adjtimex's verdict, step and slew moving the
 * simulated real time) stands for agent/hw/clock_set.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The 6.1 harness defines fixture setup/teardown functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "meter.h"
#include "meter_internal.h"
#include "old_formats.h"
#include "small_disk.h"

static const char conf_fmt[] =
	"[meter]\ntimezone = UTC\n"
	"[sensors]\nbackend = replay\n"
	"[protection]\nreclose_delay = 30\nlockout_trips = 2\nlockout_window = 600\n"
	"[relays]\nbackend = fake\n"
	"[load.pump]\nline = 5\nload = 1500\npriority = 1\n"
	"[allocation]\ngrid_allocation = 5000\nrestore_delay = 10\nsettle = 2\n"
	"[tariff]\nrate = 20\n"
	"[store]\nstate_dir = %s/state\nruntime_dir = %s/run\n";

struct events {
	int relay_calls;
	char last_relay[32];
	bool last_closed;
	int alarms;
	int log_lines;
	char log[64][256];	/* the last 64 journal lines */
	int loads_changed;	/* meter_changed() with MP_LOADS */
};

/* The system clock as the meter's clock ops see it (agent/hw/clock_set.c in meterd). */
struct fake_clock {
	int64_t *real;		/* the fixture's CLOCK_REALTIME */
	char boot[40];
	int synced;		/* adjtimex: 1 synchronised */
	int steps, slews, marks;
	int64_t slewed_ms;
	int fail;		/* -errno for step and slew */
};

static int fc_boot(void *ctx, char *buf, size_t len)
{
	snprintf(buf, len, "%s", ((struct fake_clock *)ctx)->boot);
	return 0;
}

static int fc_synced(void *ctx)
{
	return ((struct fake_clock *)ctx)->synced;
}

static int fc_step(void *ctx, int64_t delta_ms)
{
	struct fake_clock *c = ctx;

	if (c->fail)
		return c->fail;
	*c->real += delta_ms;
	c->steps++;
	return 0;
}

static int fc_slew(void *ctx, int64_t delta_ms)
{
	struct fake_clock *c = ctx;

	if (c->fail)
		return c->fail;
	c->slewed_ms += delta_ms;	/* adjtime: takes effect gradually, not modelled */
	c->slews++;
	return 0;
}

static int fc_mark(void *ctx, int64_t esterror_ms)
{
	(void)esterror_ms;
	((struct fake_clock *)ctx)->marks++;
	((struct fake_clock *)ctx)->synced = 1;
	return 0;
}

static void h_relay(void *ctx, const char *name, bool closed, const char *reason)
{
	struct events *ev = ctx;

	(void)reason;
	ev->relay_calls++;
	snprintf(ev->last_relay, sizeof(ev->last_relay), "%s", name);
	ev->last_closed = closed;
}

static void h_alarm(void *ctx, const char *name, bool active, const char *detail)
{
	(void)name;
	(void)active;
	(void)detail;
	((struct events *)ctx)->alarms++;
}

static void h_changed(void *ctx, unsigned groups)
{
	if (groups & MP_LOADS)
		((struct events *)ctx)->loads_changed++;
}

static void h_log(void *ctx, int level, const char *msg)
{
	struct events *ev = ctx;

	(void)level;
	snprintf(ev->log[ev->log_lines % 64], sizeof(ev->log[0]), "%s", msg);
	ev->log_lines++;
}

/* The newest of the last 64 journal lines containing s, or NULL. */
static const char *logged(const struct events *ev, const char *s)
{
	for (int i = ev->log_lines - 1; i >= 0 && i >= ev->log_lines - 64; i--)
		if (strstr(ev->log[i % 64], s))
			return ev->log[i % 64];
	return NULL;
}

FIXTURE(meter) {
	char dir[64];
	struct meter_config cfg;
	struct meter m;
	struct sensor *s;
	struct relays *r;
	struct events ev;
	int64_t real, mono;
	struct fake_clock fc;
	struct meter_clock_ops ops;
	int boots;
};

static int start(struct __test_metadata *_metadata, FIXTURE_DATA(meter) *self)
{
	struct meter_hooks h = { .ctx = &self->ev, .relay = h_relay, .alarm = h_alarm, .log = h_log,
				 .changed = h_changed, .clock = &self->ops };
	char err[256];
	int r;

	self->s = sensor_replay_new(NULL, err, sizeof(err));
	self->r = relay_fake_new(1 + (unsigned)self->cfg.nloads);
	r = meter_init(&self->m, &self->cfg, self->s, self->r, &h, self->real, self->mono, err, sizeof(err));
	if (r)
		TH_LOG("meter_init: %s", err);
	return r;
}

static void stop(FIXTURE_DATA(meter) *self, bool clean)
{
	if (clean) {
		meter_shutdown(&self->m);
	} else {	/* crash: nothing synced, descriptors just go away */
		store_close(&self->m.store);
		profile_free(&self->m.prof);
		free(self->m.pend);
	}
	self->s->ops->destroy(self->s);
	self->r->ops->destroy(self->r);
}

FIXTURE_SETUP(meter)
{
	char text[1024], err[256], p[128];

	strcpy(self->dir, "/tmp/agent_test_meter.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(p, sizeof(p), "%s/state", self->dir);
	ASSERT_EQ(0, mkdir(p, 0700));
	snprintf(p, sizeof(p), "%s/run", self->dir);
	ASSERT_EQ(0, mkdir(p, 0700));
	snprintf(text, sizeof(text), conf_fmt, self->dir, self->dir);
	ASSERT_EQ(0, config_parse(&self->cfg, "test.conf", text, err, sizeof(err))) TH_LOG("%s", err);
	memset(&self->ev, 0, sizeof(self->ev));
	self->real = 1790000100000;	/* 2026-09-21, at an interval boundary */
	self->mono = 1000000;
	self->fc = (struct fake_clock){ .real = &self->real, .boot = "boot-1", .synced = 0 };
	self->ops = (struct meter_clock_ops){ .ctx = &self->fc, .boot_id = fc_boot, .synced = fc_synced,
					      .step = fc_step, .slew = fc_slew, .mark_synced = fc_mark };
	ASSERT_EQ(0, start(_metadata, self));
}

FIXTURE_TEARDOWN(meter)
{
	char cmd[128];

	stop(self, true);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		TH_LOG("cleanup failed");
}

static void run(FIXTURE_DATA(meter) *self, int seconds, uint32_t v_mv, int64_t p_mw)
{
	struct sensor_reading rd = { .v_mv = v_mv, .i_ma = (uint32_t)(p_mw > 0 ? p_mw / 230 : 0),
				     .p_mw = p_mw, .pf_milli = 1000, .f_mhz = 50000,
				     .renew_avail_mw = -1 };

	for (int i = 0; i < seconds; i++) {
		self->real += 1000;
		self->mono += 1000;
		meter_sample(&self->m, &rd, self->real, self->mono);
	}
}

static bool relay(FIXTURE_DATA(meter) *self, unsigned idx)
{
	bool closed = false;

	self->r->ops->get(self->r, idx, &closed);
	return closed;
}

TEST_F(meter, starts_with_relays_closed)
{
	EXPECT_TRUE(relay(self, 0));
	EXPECT_TRUE(relay(self, 1));
}

TEST_F(meter, event_opens_main_relay_before_returning)
{
	run(self, 2, 230000, 1000000);
	meter_event(&self->m, FAULT_OVERCURRENT, self->mono);
	EXPECT_FALSE(relay(self, 0));
	EXPECT_STREQ("main", self->ev.last_relay);
	EXPECT_FALSE(self->ev.last_closed);
	EXPECT_NE(0u, self->m.alarms & (1u << ALARM_OVERCURRENT));
	/* voltage normal for 29 s: still open; 30 s: reclosed */
	run(self, 30, 230000, 0);
	EXPECT_FALSE(relay(self, 0));
	run(self, 1, 230000, 0);
	EXPECT_TRUE(relay(self, 0));
}

TEST_F(meter, under_voltage_event_syncs_the_store)
{
	uint64_t before = self->m.store.fsyncs;

	meter_event(&self->m, FAULT_UNDERVOLTAGE, self->mono);
	EXPECT_EQ(before + 1, self->m.store.fsyncs);
	/* the same episode does not sync again every second */
	run(self, 5, 100000, 0);
	EXPECT_EQ(before + 1, self->m.store.fsyncs);
}

TEST_F(meter, software_check_trips_on_reading)
{
	run(self, 1, 260000, 0);	/* above 253 V */
	EXPECT_FALSE(relay(self, 0));
	EXPECT_EQ(PROT_TRIPPED, self->m.prot.state);
}

TEST_F(meter, lockout_survives_restart)
{
	meter_event(&self->m, FAULT_OVERVOLTAGE, self->mono);
	run(self, 31, 230000, 0);
	ASSERT_TRUE(relay(self, 0));
	meter_event(&self->m, FAULT_OVERVOLTAGE, self->mono);
	ASSERT_EQ(PROT_LOCKOUT, self->m.prot.state);
	stop(self, false);
	ASSERT_EQ(0, start(_metadata, self));
	EXPECT_EQ(PROT_LOCKOUT, self->m.prot.state);
	EXPECT_FALSE(relay(self, 0));
	run(self, 100, 230000, 0);
	EXPECT_FALSE(relay(self, 0));
}

TEST_F(meter, registers_survive_clean_restart_and_crash)
{
	uint64_t imp;
	size_t intervals;

	run(self, 3600, 230000, 2000000);	/* 2 kW for an hour: 2 kWh */
	imp = self->m.reg.import.total_mwh;
	EXPECT_EQ(2000000u, imp);
	intervals = self->m.prof.count;
	EXPECT_EQ(4u, intervals);
	stop(self, true);
	ASSERT_EQ(0, start(_metadata, self));
	EXPECT_EQ(imp, self->m.reg.import.total_mwh);
	EXPECT_EQ(intervals, self->m.prof.count);
	EXPECT_EQ((int64_t)imp * 20000, self->m.reg.bill_import_nano);
	/* crash in the middle of an interval: the runtime snapshot has the last second */
	run(self, 100, 230000, 3600000);
	imp = self->m.reg.import.total_mwh;
	stop(self, false);
	ASSERT_EQ(0, start(_metadata, self));
	EXPECT_TRUE(self->m.recovery.from_live);
	EXPECT_EQ(imp, self->m.reg.import.total_mwh);
	EXPECT_EQ(0u, self->m.recovery.corrupt_records);
}

TEST_F(meter, clock_step_keeps_energy_exact)
{
	struct sensor_reading rd = { .v_mv = 230000, .p_mw = 3600000, .renew_avail_mw = -1 };
	uint64_t imp;

	run(self, 10, 230000, 3600000);
	imp = self->m.reg.import.total_mwh;
	/* NTP steps the clock a day forward during one 1-second sample */
	self->real += 86400000 + 1000;
	self->mono += 1000;
	meter_sample(&self->m, &rd, self->real, self->mono);
	EXPECT_EQ(imp + 1000, self->m.reg.import.total_mwh);
	/* and back by an hour */
	self->real += -3600000 + 1000;
	self->mono += 1000;
	meter_sample(&self->m, &rd, self->real, self->mono);
	EXPECT_EQ(imp + 2000, self->m.reg.import.total_mwh);
}

TEST_F(meter, deficit_sheds_and_steady_hour_is_silent)
{
	int lines;

	run(self, 1, 230000, 6000000);	/* 6 kW against a 5 kW grant */
	EXPECT_FALSE(relay(self, 1));
	EXPECT_NE(0u, self->m.alarms & (1u << ALARM_DEFICIT));
	run(self, 11, 230000, 2000000);	/* headroom 3000 >= 1500 + 200 for 10 s */
	EXPECT_TRUE(relay(self, 1));
	EXPECT_NE(0u, self->m.alarms & (1u << ALARM_DEFICIT));	/* held 10 s more */
	run(self, 9, 230000, 2000000);
	EXPECT_NE(0u, self->m.alarms & (1u << ALARM_DEFICIT));
	run(self, 1, 230000, 2000000);
	EXPECT_EQ(0u, self->m.alarms & (1u << ALARM_DEFICIT));
	lines = self->ev.log_lines;
	run(self, 3600, 230000, 2000000);
	EXPECT_EQ(lines, self->ev.log_lines);
}

TEST_F(meter, declared_demand_counts_and_expires)
{
	char msg[64];

	ASSERT_EQ(0, meter_declare(&self->m, "oven", 2500, 60, self->mono, msg, sizeof(msg)));
	run(self, 3, 230000, 3000000);	/* 3 kW + 2.5 kW declared > 5 kW */
	EXPECT_FALSE(relay(self, 1));
	EXPECT_EQ(2500, self->m.declared_w);
	run(self, 56, 230000, 1500000);	/* declared until 60 s: 4 kW, headroom too small */
	EXPECT_EQ(2500, self->m.declared_w);
	EXPECT_FALSE(relay(self, 1));
	run(self, 1, 230000, 1500000);
	EXPECT_EQ(0, self->m.declared_w);
	run(self, 10, 230000, 1500000);	/* then the 10 s restore delay */
	EXPECT_TRUE(relay(self, 1));
}

static void run_counters(FIXTURE_DATA(meter) *self, int seconds, uint64_t *ctr_mj, uint64_t mj_per_s)
{
	/* power reads 0 on purpose: the registers must follow the counters */
	struct sensor_reading rd = { .v_mv = 230000, .f_mhz = 50000, .renew_avail_mw = -1,
				     .has_energy = true };

	for (int i = 0; i < seconds; i++) {
		self->real += 1000;
		self->mono += 1000;
		*ctr_mj += mj_per_s;
		rd.import_mj = *ctr_mj;
		rd.export_mj = 5;
		meter_sample(&self->m, &rd, self->real, self->mono);
	}
}

TEST_F(meter, driver_energy_counters_drive_the_registers)
{
	uint64_t ctr = 1000000;

	run_counters(self, 101, &ctr, 3600);	/* 3.6 J per second = 1 mWh */
	/* the first sample only sets the base */
	EXPECT_EQ(100u, self->m.reg.import.total_mwh);
	EXPECT_EQ(0u, self->m.reg.export.total_mwh);
}

TEST_F(meter, restart_in_same_boot_recovers_downtime_energy)
{
	uint64_t ctr = 5000000, before;

	run_counters(self, 11, &ctr, 36000);	/* 10 mWh per second */
	before = self->m.reg.import.total_mwh;
	EXPECT_EQ(100u, before);
	stop(self, false);			/* crash */
	self->real += 60000;			/* down for a minute, the driver counts on */
	self->mono += 60000;
	ctr += 60 * 36000;
	ASSERT_EQ(0, start(_metadata, self));
	run_counters(self, 1, &ctr, 36000);
	EXPECT_EQ(before + 610, self->m.reg.import.total_mwh);
	EXPECT_EQ(PROFILE_GAP, self->m.reg.ivl_flags & PROFILE_GAP);
}

/*
 * Issue 11: the driver counts the samples its sampler missed and the time
 * whose energy it estimated; a rise marks the interval it falls in, and
 * only that one, so that the town and the bill know the energy is partly
 * estimated. The first sample of a run only sets the base.
 */
TEST_F(meter, driver_sampling_gaps_mark_their_interval)
{
	struct sensor_reading rd = { .v_mv = 230000, .f_mhz = 50000, .renew_avail_mw = -1,
				     .has_energy = true, .has_gaps = true,
				     .missed_samples = 1234, .gap_ns = 987654321 };
	uint32_t ivl = self->m.reg.interval_s;
	uint64_t ctr = 1000000;
	const struct profile_entry *e;

	/* to the start of an interval, through a whole clean one */
	for (int i = 0; i < (int)(2 * ivl); i++) {
		self->real += 1000;
		self->mono += 1000;
		rd.import_mj = ctr += 3600;
		meter_sample(&self->m, &rd, self->real, self->mono);
	}
	ASSERT_NE(NULL, e = profile_newest(&self->m.prof));
	EXPECT_EQ(0u, e->flags & PROFILE_SAMPLING_GAP);
	EXPECT_EQ(0u, self->m.reg.ivl_flags & PROFILE_SAMPLING_GAP);
	/* 300 ms stall in this interval: the driver integrated it, and says so */
	rd.missed_samples += 1200;
	rd.gap_ns += 312500000;
	for (int i = 0; i < (int)ivl; i++) {
		self->real += 1000;
		self->mono += 1000;
		rd.import_mj = ctr += 3600;
		meter_sample(&self->m, &rd, self->real, self->mono);
		if (!i)
			EXPECT_EQ(PROFILE_SAMPLING_GAP, self->m.reg.ivl_flags & PROFILE_SAMPLING_GAP);
	}
	/* that interval closed with the flag and its energy whole; the next is clean */
	ASSERT_NE(NULL, e = profile_newest(&self->m.prof));
	EXPECT_EQ(PROFILE_SAMPLING_GAP, e->flags & PROFILE_SAMPLING_GAP);
	EXPECT_EQ(0u, self->m.reg.ivl_flags & PROFILE_SAMPLING_GAP);
	EXPECT_EQ(3 * ivl - 1, self->m.reg.import.total_mwh);
	/* an ADC error (estimated time, no missed sample) marks it too */
	rd.gap_ns += 250000;
	self->real += 1000;
	self->mono += 1000;
	rd.import_mj = ctr += 3600;
	meter_sample(&self->m, &rd, self->real, self->mono);
	EXPECT_EQ(PROFILE_SAMPLING_GAP, self->m.reg.ivl_flags & PROFILE_SAMPLING_GAP);
}

TEST_F(meter, counters_going_back_are_not_counted)
{
	uint64_t ctr = 1000000;

	run_counters(self, 11, &ctr, 3600);
	EXPECT_EQ(10u, self->m.reg.import.total_mwh);
	ctr = 0;				/* driver rebound */
	run_counters(self, 1, &ctr, 3600);
	EXPECT_EQ(10u, self->m.reg.import.total_mwh);
	run_counters(self, 5, &ctr, 3600);
	EXPECT_EQ(15u, self->m.reg.import.total_mwh);
}

TEST_F(meter, voltage_hovering_at_a_limit_does_not_flood_the_journal)
{
	int lines;

	/* lock out first, so trips stop counting */
	for (int i = 0; i < 2; i++) {
		meter_event(&self->m, FAULT_OVERVOLTAGE, self->mono);
		run(self, 31, 230000, 0);
	}
	ASSERT_EQ(PROT_LOCKOUT, self->m.prot.state);
	lines = self->ev.log_lines;
	/* an hour of 252.9 V / 253.1 V alternating every second around the 253 V limit */
	for (int i = 0; i < 1800; i++) {
		run(self, 1, 253100, 0);
		run(self, 1, 252900, 0);
	}
	EXPECT_GE(lines + 1, self->ev.log_lines);	/* at most the alarm being raised once */
	EXPECT_NE(0u, self->m.alarms & (1u << ALARM_OVERVOLTAGE));
	/* back to 230 V: cleared once it has been normal for the 10 s hold time */
	run(self, 10, 230000, 0);
	EXPECT_NE(0u, self->m.alarms & (1u << ALARM_OVERVOLTAGE));
	run(self, 1, 230000, 0);
	EXPECT_EQ(0u, self->m.alarms & (1u << ALARM_OVERVOLTAGE));
	EXPECT_GE(lines + 2, self->ev.log_lines);
}

TEST_F(meter, interval_change_keeps_the_registers)
{
	uint64_t imp;

	run(self, 1000, 230000, 3600000);
	imp = self->m.reg.import.total_mwh;
	EXPECT_EQ(1000000u, imp);
	stop(self, true);
	self->cfg.interval_s = 1800;
	ASSERT_EQ(0, start(_metadata, self));
	EXPECT_EQ(imp, self->m.reg.import.total_mwh);
	EXPECT_EQ(1800u, self->m.reg.interval_s);
	EXPECT_EQ(0, self->m.reg.ivl_start % 1800);
	run(self, 1, 230000, 3600000);
	EXPECT_EQ(imp + 1000, self->m.reg.import.total_mwh);
}

TEST_F(meter, declaring_demand_sheds_at_once)
{
	char msg[64];

	run(self, 1, 230000, 3000000);
	ASSERT_TRUE(relay(self, 1));
	/* 3 kW measured + 2.5 kW declared > 5 kW: no need to wait for a sample */
	ASSERT_EQ(0, meter_declare(&self->m, "oven", 2500, 0, self->mono, msg, sizeof(msg)));
	EXPECT_FALSE(relay(self, 1));
}

TEST_F(meter, sensor_failure_alarm_raises_after_three_and_clears_after_hold)
{
	meter_sensor_failed(&self->m, -EIO);
	meter_sensor_failed(&self->m, -EIO);
	EXPECT_EQ(0u, self->m.alarms & (1u << ALARM_SENSOR));
	meter_sensor_failed(&self->m, -EIO);
	EXPECT_NE(0u, self->m.alarms & (1u << ALARM_SENSOR));
	run(self, 5, 230000, 0);
	meter_sensor_failed(&self->m, -EIO);	/* flapping: the hold starts again */
	run(self, 10, 230000, 0);
	EXPECT_NE(0u, self->m.alarms & (1u << ALARM_SENSOR));
	run(self, 1, 230000, 0);
	EXPECT_EQ(0u, self->m.alarms & (1u << ALARM_SENSOR));
}

TEST_F(meter, billing_day_change_ends_the_period_at_the_new_day)
{
	struct tm tm;
	time_t next;

	/* UTC; the fixture starts on 2026-09-21, in the period that began on 09-01 */
	EXPECT_EQ(1788220800, self->m.reg.bill_start);		/* 2026-09-01 */
	stop(self, true);
	self->cfg.billing_day = 25;
	ASSERT_EQ(0, start(_metadata, self));
	next = (time_t)self->m.reg.bill_next;
	gmtime_r(&next, &tm);
	EXPECT_EQ(2026 - 1900, tm.tm_year);
	EXPECT_EQ(8, tm.tm_mon);	/* September: the 25th comes before October */
	EXPECT_EQ(25, tm.tm_mday);
	EXPECT_EQ(1788220800, self->m.reg.bill_start);	/* the period keeps its start */
}

/* ---- power cuts, clean stops, persistence bounds (issue 10, findings 10 and 11) ---- */

/*
 * A power cut of the whole gateway: nothing saved at stop, the runtime
 * directory (tmpfs) gone, off for off_s seconds, then a new boot (its
 * monotonic clock starts again).
 */
static int power_cut(struct __test_metadata *_metadata, FIXTURE_DATA(meter) *self, int off_s)
{
	char p[128];

	stop(self, false);
	snprintf(p, sizeof(p), "%s/run/meterd.live", self->dir);
	unlink(p);
	self->real += (int64_t)off_s * 1000;
	self->mono = 7000;
	snprintf(self->fc.boot, sizeof(self->fc.boot), "boot-%d", 2 + self->boots++);
	return start(_metadata, self);
}

static uint64_t mwh(int64_t p_mw, int64_t seconds)
{
	return (uint64_t)(p_mw * seconds / 3600);
}

TEST_F(meter, power_cut_loses_at_most_persist_interval_of_energy)
{
	int64_t p_mw = 3600000, cut, from, to;	/* 3.6 kW: 1 Wh a second */
	uint64_t before, after;

	/* 10 min 37 s: no interval boundary since the start (the old store saved only there) */
	run(self, 637, 230000, p_mw);
	before = self->m.reg.import.total_mwh;
	ASSERT_EQ(mwh(p_mw, 637), before);
	cut = self->real;
	ASSERT_EQ(0, power_cut(_metadata, self, 120));
	after = self->m.reg.import.total_mwh;
	EXPECT_GE(before, after);
	EXPECT_LE(before - after, mwh(p_mw, self->cfg.persist_interval_s))
		TH_LOG("lost %llu mWh", (unsigned long long)(before - after));
	EXPECT_FALSE(self->m.last_clean);
	/* how old the state is, and the span not recorded: journal and API */
	EXPECT_NE(NULL, logged(&self->ev, "the last stop was NOT clean"));
	EXPECT_NE(NULL, logged(&self->ev, "was not recorded: the gateway stopped without saving"));
	ASSERT_TRUE(meter_unrecorded(&self->m, &from, &to));
	EXPECT_EQ(self->real, to);
	EXPECT_GE(from, cut - (int64_t)self->cfg.persist_interval_s * 1000);
	EXPECT_LE(from, cut);
	/* what was lost and the time off are one span: the registers' time is its start */
	EXPECT_EQ(from + (int64_t)(before - after) * 3600 / (p_mw / 1000), cut);
	/* the first sample books it as a gap flagged unrecorded */
	run(self, 1, 230000, p_mw);
	EXPECT_EQ(PROFILE_GAP | PROFILE_UNRECORDED, self->m.reg.ivl_flags & (PROFILE_GAP | PROFILE_UNRECORDED));
}

TEST_F(meter, power_cut_at_high_power_loses_at_most_persist_energy)
{
	int64_t p_mw = 23000000;	/* 100 A at 230 V: 100 Wh in 15.7 s */
	uint64_t before, after;

	run(self, 500, 230000, p_mw);
	before = self->m.reg.import.total_mwh;
	ASSERT_EQ(0, power_cut(_metadata, self, 60));
	after = self->m.reg.import.total_mwh;
	/* the energy bound, plus the sample that crossed it */
	EXPECT_LE(before - after, (uint64_t)self->cfg.persist_energy_wh * 1000 + mwh(p_mw, 1))
		TH_LOG("lost %llu mWh", (unsigned long long)(before - after));
	EXPECT_LE((uint64_t)self->m.store.fsyncs, 500 / 15 + 4);	/* no more than needed */
}

TEST_F(meter, clean_stop_saves_everything_and_says_so)
{
	int64_t stopped, from, to;
	uint64_t before;

	run(self, 437, 230000, 3600000);
	before = self->m.reg.import.total_mwh;
	/* a restart within the same boot, 2 s: nothing lost, nothing unrecorded */
	stop(self, true);
	EXPECT_NE(NULL, logged(&self->ev, "store: state saved at stop"));
	self->real += 2000;
	self->mono += 2000;
	ASSERT_EQ(0, start(_metadata, self));
	EXPECT_EQ(before, self->m.reg.import.total_mwh);
	EXPECT_TRUE(self->m.last_clean);
	EXPECT_NE(NULL, logged(&self->ev, "2 s before this start (this boot); the last stop was clean"));
	EXPECT_FALSE(meter_unrecorded(&self->m, &from, &to));
	/* systemctl poweroff, the runtime directory gone, 30 s later a new boot */
	run(self, 100, 230000, 3600000);
	before = self->m.reg.import.total_mwh;
	stopped = self->real;
	stop(self, true);
	{
		char p[128];

		snprintf(p, sizeof(p), "%s/run/meterd.live", self->dir);
		ASSERT_EQ(0, unlink(p));
	}
	self->real += 30000;
	self->mono = 6000;
	strcpy(self->fc.boot, "boot-2");
	ASSERT_EQ(0, start(_metadata, self));
	EXPECT_EQ(before, self->m.reg.import.total_mwh);
	EXPECT_TRUE(self->m.last_clean);
	EXPECT_FALSE(self->m.recovery.from_live);
	/* the gateway was off: no driver counter covers that, it is unrecorded */
	ASSERT_TRUE(meter_unrecorded(&self->m, &from, &to));
	EXPECT_EQ(stopped, from);
	EXPECT_EQ(self->real, to);
	EXPECT_NE(NULL, logged(&self->ev, "was not recorded: the gateway was off"));
}

TEST_F(meter, power_fail_input_saves_at_once)
{
	uint64_t fs, before;

	run(self, 47, 230000, 3600000);
	fs = self->m.store.fsyncs;
	meter_powerfail(&self->m, true);
	EXPECT_EQ(fs + 1, self->m.store.fsyncs);
	EXPECT_NE(NULL, logged(&self->ev, "power-fail input: the supply is failing: state saved"));
	before = self->m.reg.import.total_mwh;
	ASSERT_EQ(0, power_cut(_metadata, self, 10));
	EXPECT_EQ(before, self->m.reg.import.total_mwh);
	meter_powerfail(&self->m, false);
	EXPECT_NE(NULL, logged(&self->ev, "power-fail input: the supply is back"));
}

/* ---- clock steps (finding 12) ----------------------------------------------------- */

static uint64_t profile_import(const struct profile *p)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < p->count; i++)
		sum += profile_at(p, i)->import_mwh;
	return sum;
}

TEST_F(meter, clock_step_back_keeps_saving_and_loses_no_energy)
{
	int64_t p_mw = 3600000, ivl = self->real / 1000;
	uint64_t fs, before, lost;
	struct profile_entry open;

	run(self, 300, 230000, p_mw);
	fs = self->m.store.fsyncs;
	self->real -= 3600000;		/* the clock is set back an hour */
	run(self, 130, 230000, p_mw);
	/* persistence follows the monotonic clock: saves went on */
	EXPECT_LE(fs + 2, self->m.store.fsyncs);
	/* the interval open at the step was closed there, flagged */
	ASSERT_EQ(1u, self->m.prof.count);
	EXPECT_EQ(ivl, profile_at(&self->m.prof, 0)->start);
	EXPECT_EQ(mwh(p_mw, 300), profile_at(&self->m.prof, 0)->import_mwh);
	EXPECT_EQ(PROFILE_CLOCK_STEP, profile_at(&self->m.prof, 0)->flags & PROFILE_CLOCK_STEP);
	EXPECT_EQ(ivl - 3600, self->m.reg.ivl_start);
	EXPECT_EQ(mwh(p_mw, 430), self->m.reg.import.total_mwh);
	registers_interval_so_far(&self->m.reg, &open);
	EXPECT_EQ(self->m.reg.import.total_mwh, profile_import(&self->m.prof) + open.import_mwh);
	/* a cut now loses at most the bound (the old meterd: everything since the step) */
	before = self->m.reg.import.total_mwh;
	ASSERT_EQ(0, power_cut(_metadata, self, 5));
	lost = before - self->m.reg.import.total_mwh;
	EXPECT_LE(lost, mwh(p_mw, self->cfg.persist_interval_s));
	/* an hour later the clock reaches the old interval again: its energy joins the newest entry */
	run(self, 3600, 230000, p_mw);
	EXPECT_EQ(self->m.reg.import.total_mwh - (self->m.reg.import.total_mwh - self->m.reg.ivl_base_import),
		  profile_import(&self->m.prof));
	EXPECT_EQ(ivl, profile_newest(&self->m.prof)->start);
}

TEST_F(meter, clock_step_forward_stores_every_skipped_interval)
{
	int64_t ivl = self->real / 1000;

	run(self, 100, 230000, 3600000);
	self->real += 6 * 3600000;	/* six hours forward: 24 intervals skipped */
	run(self, 10, 230000, 3600000);
	ASSERT_EQ(24u, self->m.prof.count);	/* the old meterd kept 8 */
	for (size_t i = 0; i < 24; i++) {
		EXPECT_EQ(ivl + (int64_t)i * 900, profile_at(&self->m.prof, i)->start);
		EXPECT_EQ(PROFILE_GAP | PROFILE_CLOCK_STEP, profile_at(&self->m.prof, i)->flags);
	}
	EXPECT_EQ(mwh(3600000, 100), profile_at(&self->m.prof, 0)->import_mwh);
	EXPECT_EQ(mwh(3600000, 110), self->m.reg.import.total_mwh);
	/* and all of them are in the log */
	stop(self, false);
	ASSERT_EQ(0, start(_metadata, self));
	EXPECT_EQ(24u, self->m.prof.count);
	EXPECT_EQ(24u, self->m.recovery.profile_entries);
}

/* ---- untrusted clock, town time (finding 4, the meter's side) ---------------------- */

/* A fresh gateway with [meter] clock = town booted with its clock at `boot_real`. */
static int fresh_town_meter(struct __test_metadata *_metadata, FIXTURE_DATA(meter) *self, int64_t boot_real)
{
	char cmd[160];

	stop(self, true);
	snprintf(cmd, sizeof(cmd), "rm -f '%s'/state/* '%s'/run/*", self->dir, self->dir);
	if (system(cmd))
		return -1;
	strcpy(self->cfg.clock, "town");
	self->fc.synced = 0;
	self->real = boot_real;
	self->mono = 9000;
	strcpy(self->fc.boot, "boot-fresh");
	return start(_metadata, self);
}

TEST_F(meter, untrusted_clock_holds_energy_until_the_town_time_arrives)
{
	int64_t truth = self->real;	/* 2026-09-21, an interval boundary */
	int64_t bogus = 2145916800000;	/* 2038-01-01: the clock years off */
	int64_t bill_start = self->m.reg.bill_start, from, to;
	uint64_t imp, exp, ren;

	ASSERT_EQ(0, fresh_town_meter(_metadata, self, bogus));
	EXPECT_FALSE(meter_time_trusted(&self->m));
	EXPECT_STREQ("none", meter_clock_source_name(&self->m));
	EXPECT_NE(NULL, logged(&self->ev, "clock: not trusted"));
	run(self, 1800, 230000, 3600000);	/* 30 minutes, 1.8 kWh */
	/* held apart: not in the registers, the billing period or the profile; in the lifetime totals */
	EXPECT_EQ(0u, self->m.reg.import.total_mwh);
	EXPECT_EQ(0u, self->m.prof.count);
	meter_lifetime(&self->m, &imp, &exp, &ren);
	EXPECT_EQ(mwh(3600000, 1800), imp);
	EXPECT_EQ(0, meter_price_milli(&self->m, self->real));
	/* it survives a durable save: the snapshot holds it */
	EXPECT_LT(0u, self->m.store.fsyncs);

	/* the clock cannot be set: nothing changes */
	self->fc.fail = -EPERM;
	EXPECT_EQ(-EPERM, meter_clock_sample(&self->m, truth + 1800000 - self->real, 400, self->mono));
	EXPECT_FALSE(meter_time_trusted(&self->m));
	self->fc.fail = 0;
	/* the town's time: 30 minutes after the true start */
	EXPECT_EQ(CLOCK_STEP, meter_clock_sample(&self->m, truth + 1800000 - self->real, 400, self->mono));
	EXPECT_EQ(truth + 1800000, self->real);
	EXPECT_TRUE(meter_time_trusted(&self->m));
	EXPECT_STREQ("town", meter_clock_source_name(&self->m));
	EXPECT_EQ(1, self->fc.marks);
	/* booked onto real time, in the true billing period, flagged reconstructed */
	EXPECT_EQ(mwh(3600000, 1800), self->m.reg.import.total_mwh);
	EXPECT_EQ(bill_start, self->m.reg.bill_start);
	EXPECT_EQ((int64_t)mwh(3600000, 1800) * 20000, self->m.reg.bill_import_nano);
	ASSERT_EQ(2u, self->m.prof.count);
	for (size_t i = 0; i < 2; i++) {
		const struct profile_entry *e = profile_at(&self->m.prof, i);

		EXPECT_EQ(truth / 1000 + (int64_t)i * 900, e->start);
		EXPECT_EQ(PROFILE_RECONSTRUCTED, e->flags & PROFILE_RECONSTRUCTED);
		EXPECT_LE(mwh(3600000, 900) - 1, e->import_mwh);
		EXPECT_GE(mwh(3600000, 900) + 1, e->import_mwh);
	}
	EXPECT_EQ(mwh(3600000, 1800), profile_import(&self->m.prof));
	ASSERT_TRUE(meter_reconstructed(&self->m, &from, &to));
	EXPECT_EQ(truth, from);
	EXPECT_EQ(truth + 1800000, to);
	EXPECT_FALSE(meter_unrecorded(&self->m, &from, &to));	/* nothing before: a new meter */
	EXPECT_NE(NULL, logged(&self->ev, "flagged reconstructed"));
	/* and on it goes, no step seen by the next sample */
	run(self, 60, 230000, 3600000);
	EXPECT_EQ(NULL, logged(&self->ev, "clock stepped"));
	EXPECT_EQ(mwh(3600000, 1860), self->m.reg.import.total_mwh);
}

TEST_F(meter, held_energy_survives_a_restart_of_meterd_in_the_same_boot)
{
	int64_t truth = self->real, bogus = truth - 86400000LL * 400, from, to;
	uint64_t imp, exp, ren;

	ASSERT_EQ(0, fresh_town_meter(_metadata, self, bogus));
	run(self, 600, 230000, 3600000);
	stop(self, false);		/* crash: same boot, runtime file kept */
	self->real += 10000;
	self->mono += 10000;
	ASSERT_EQ(0, start(_metadata, self));
	EXPECT_FALSE(meter_time_trusted(&self->m));
	meter_lifetime(&self->m, &imp, &exp, &ren);
	EXPECT_EQ(mwh(3600000, 600), imp);
	run(self, 290, 230000, 3600000);
	ASSERT_EQ(CLOCK_STEP, meter_clock_sample(&self->m, truth + 900000 - self->real, 100, self->mono));
	EXPECT_EQ(mwh(3600000, 890), self->m.reg.import.total_mwh);
	/* the 10 s meterd was down (no driver counters) is unrecorded, found on the monotonic clock */
	ASSERT_TRUE(meter_unrecorded(&self->m, &from, &to));
	EXPECT_EQ(truth + 900000 - 290000, to);
	EXPECT_EQ(10000, to - from);
	ASSERT_EQ(1u, self->m.prof.count);
	EXPECT_EQ(PROFILE_GAP | PROFILE_RECONSTRUCTED | PROFILE_UNRECORDED, profile_at(&self->m.prof, 0)->flags &
		  (PROFILE_GAP | PROFILE_RECONSTRUCTED | PROFILE_UNRECORDED));
}

TEST_F(meter, held_energy_of_an_earlier_boot_is_spread_and_flagged)
{
	int64_t truth = self->real, saved, from, to;
	uint64_t imp0, imp1, exp, ren, trusted_part;

	/* a town gateway whose kernel said "synchronised": trusted, 5 minutes metered */
	stop(self, true);
	strcpy(self->cfg.clock, "town");
	self->fc.synced = 1;
	ASSERT_EQ(0, start(_metadata, self));
	ASSERT_TRUE(meter_time_trusted(&self->m));
	EXPECT_STREQ("kernel", meter_clock_source_name(&self->m));
	run(self, 300, 230000, 3600000);
	ASSERT_EQ(0, power_cut(_metadata, self, 100));
	trusted_part = self->m.reg.import.total_mwh;
	saved = self->m.reg.last_ms;
	/* the next boot has no synchronised clock (and a wrong one): 10 minutes held */
	self->real = truth - 86400000LL * 1000;
	self->fc.synced = 0;
	stop(self, true);
	ASSERT_EQ(0, start(_metadata, self));
	ASSERT_FALSE(meter_time_trusted(&self->m));
	run(self, 600, 230000, 3600000);
	meter_lifetime(&self->m, &imp0, &exp, &ren);
	/* power cut again, and a third boot, still untrusted */
	ASSERT_EQ(0, power_cut(_metadata, self, 50));
	meter_lifetime(&self->m, &imp1, &exp, &ren);
	EXPECT_LE(imp0 - imp1, mwh(3600000, self->cfg.persist_interval_s));
	EXPECT_FALSE(meter_time_trusted(&self->m));
	run(self, 60, 230000, 3600000);
	/* the town's time: an hour after the first boot's start */
	ASSERT_EQ(CLOCK_STEP, meter_clock_sample(&self->m, truth + 3600000 - self->real, 100, self->mono));
	EXPECT_EQ(imp1 + mwh(3600000, 60), self->m.reg.import.total_mwh);
	EXPECT_EQ(self->m.reg.import.total_mwh,
		  profile_import(&self->m.prof) + self->m.reg.import.total_mwh - self->m.reg.ivl_base_import);
	/* the earlier boot's energy lies between the registers' time and this boot, flagged estimated */
	{
		bool seen = false;

		for (size_t i = 0; i < self->m.prof.count; i++) {
			const struct profile_entry *e = profile_at(&self->m.prof, i);

			if (e->start * 1000 >= saved - 900000 && e->start * 1000 < truth + 3600000 - 60000 - 9000 &&
			    e->import_mwh)
				seen |= (e->flags & (PROFILE_TIME_UNTRUSTED | PROFILE_RECONSTRUCTED)) ==
					(PROFILE_TIME_UNTRUSTED | PROFILE_RECONSTRUCTED);
		}
		EXPECT_TRUE(seen);
	}
	/* unrecorded: from the registers' last trusted time to this run's start */
	ASSERT_TRUE(meter_unrecorded(&self->m, &from, &to));
	EXPECT_EQ(saved, from);
	EXPECT_EQ(truth + 3600000 - 60000, to);
	EXPECT_LT(trusted_part, self->m.reg.import.total_mwh);
}

TEST_F(meter, trusted_clock_slews_steps_and_refuses_a_large_offset_until_confirmed)
{
	int64_t real;

	stop(self, true);
	strcpy(self->cfg.clock, "town");
	self->fc.synced = 1;
	ASSERT_EQ(0, start(_metadata, self));
	ASSERT_TRUE(meter_time_trusted(&self->m));
	run(self, 1, 230000, 0);
	EXPECT_EQ(CLOCK_SLEW, meter_clock_sample(&self->m, 300, 50, self->mono));
	EXPECT_EQ(300, self->fc.slewed_ms);
	EXPECT_EQ(300, self->m.clock_offset_ms);
	EXPECT_STREQ("town", meter_clock_source_name(&self->m));
	real = self->real;
	EXPECT_EQ(CLOCK_STEP, meter_clock_sample(&self->m, 60000, 50, self->mono));
	EXPECT_EQ(real + 60000, self->real);
	run(self, 1, 230000, 0);
	EXPECT_NE(NULL, logged(&self->ev, "clock stepped by +60 s"));
	/* an hour off: refused, clock-suspect */
	real = self->real;
	EXPECT_EQ(CLOCK_REFUSE, meter_clock_sample(&self->m, 3600000, 50, self->mono));
	EXPECT_EQ(real, self->real);
	EXPECT_NE(0u, self->m.alarms & (1u << ALARM_CLOCK_SUSPECT));
	run(self, 300, 230000, 0);
	EXPECT_EQ(CLOCK_REFUSE, meter_clock_sample(&self->m, 3600000, 50, self->mono));
	run(self, 300, 230000, 0);	/* 10 minutes after the first: agreeing within 2 s */
	EXPECT_EQ(CLOCK_STEP, meter_clock_sample(&self->m, 3601500, 50, self->mono));
	EXPECT_EQ(real + 600000 + 3601500, self->real);
	EXPECT_EQ(0u, self->m.alarms & (1u << ALARM_CLOCK_SUSPECT));
}

TEST_F(meter, system_clock_is_trusted_and_never_set)
{
	EXPECT_TRUE(meter_time_trusted(&self->m));
	EXPECT_STREQ("system", meter_clock_source_name(&self->m));
	EXPECT_EQ(CLOCK_NONE, meter_clock_sample(&self->m, 86400000, 50, self->mono));
	EXPECT_EQ(0, self->fc.steps + self->fc.slews);
	EXPECT_EQ(86400000, self->m.clock_offset_ms);
	EXPECT_NE(NULL, logged(&self->ev, "[meter] clock = system: not followed"));
}

TEST_F(meter, town_view_raises_lost_registers)
{
	uint64_t fs;
	struct profile_entry open;

	/* a first start: nothing recovered; 100 s at 3.6 kW before the town is heard */
	run(self, 100, 230000, 3600000);
	ASSERT_EQ(mwh(3600000, 100), self->m.reg.import.total_mwh);
	fs = self->m.store.fsyncs;
	/*
	 * The town holds 5000 Wh of readings, all from before this run (none
	 * of this run's records can have gone out before this WELCOME): the
	 * 100 Wh metered since come on top of them.
	 */
	EXPECT_EQ(1, meter_town_view(&self->m, 5000000, 0, 7));
	EXPECT_EQ(5000000u + mwh(3600000, 100), self->m.reg.import.total_mwh);
	EXPECT_EQ(7u, self->m.reg.renew.total_mwh);
	EXPECT_EQ(PROFILE_RESTORED, self->m.reg.ivl_flags & PROFILE_RESTORED);
	EXPECT_EQ(fs + 1, self->m.store.fsyncs);
	EXPECT_NE(NULL, logged(&self->ev, "import +5000000 mWh, export +0 mWh, renewable +7 mWh"));
	/* the open interval keeps its own energy */
	registers_interval_so_far(&self->m.reg, &open);
	EXPECT_EQ(mwh(3600000, 100), open.import_mwh);
	/* later views may hold this run's records: raised to the view itself, never lowered */
	EXPECT_EQ(0, meter_town_view(&self->m, 4000000, 0, 0));
	EXPECT_EQ(5000000u + mwh(3600000, 100), self->m.reg.import.total_mwh);
	run(self, 10, 230000, 3600000);
	EXPECT_EQ(1, meter_town_view(&self->m, 5200000, 0, 7));
	EXPECT_EQ(5200000u, self->m.reg.import.total_mwh);
}

/* ---- store: migration and a full disk (finding 13, the meter's side) ---------------- */

TEST_F(meter, state_of_layout_version_2_is_migrated)
{
	struct old_meter_persist_v2 v2;
	struct store st;
	struct store_recovery rec;
	char cmd[160];
	uint8_t buf[PERSIST_MAX];

	stop(self, true);
	snprintf(cmd, sizeof(cmd), "rm -f '%s'/state/* '%s'/run/*", self->dir, self->dir);
	ASSERT_EQ(0, system(cmd));
	memset(&v2, 0, sizeof(v2));
	v2.version = 2;
	v2.size = sizeof(v2);
	v2.prot_state = PROT_LOCKOUT;
	v2.total_trips = 7;
	registers_init(&v2.reg, 900, 1, self->real - 60000);
	v2.reg.import.total_mwh = 123456789;
	ASSERT_EQ(0, store_open(&st, self->cfg.state_dir, self->cfg.runtime_dir, PERSIST_MAX));
	ASSERT_EQ(0, store_recover(&st, buf, NULL, NULL, &rec));
	ASSERT_LE(0, store_commit(&st, &v2, sizeof(v2), NULL, 0, true));
	store_close(&st);
	ASSERT_EQ(0, start(_metadata, self));
	EXPECT_EQ(123456789u, self->m.reg.import.total_mwh);
	EXPECT_EQ(7u, self->m.prot.total_trips);
	EXPECT_EQ(PROT_LOCKOUT, self->m.prot.state);
	EXPECT_NE(NULL, logged(&self->ev, "state of layout version 2 migrated to version 3"));
	/* saved as version 3 from now on */
	run(self, 1, 230000, 0);
	stop(self, true);
	self->ev.log_lines = 0;
	ASSERT_EQ(0, start(_metadata, self));
	EXPECT_EQ(NULL, logged(&self->ev, "migrated"));
	EXPECT_EQ(123456789u, self->m.reg.import.total_mwh);
}

/* The state directory on a small tmpfs in this test's own mount namespace. */
TEST_F(meter, full_disk_raises_store_error_and_returning_space_clears_it)
{
	char filler[CFG_PATH + 16];
	uint64_t fs;
	int64_t ivl = self->real / 1000;
	const char *skip;

	stop(self, true);
	skip = small_disk_mount(self->cfg.state_dir, "192k");
	ASSERT_EQ(0, start(_metadata, self));
	if (skip)
		SKIP(return, "%s", skip);
	run(self, 100, 230000, 3600000);
	snprintf(filler, sizeof(filler), "%s/filler", self->cfg.state_dir);
	small_disk_fill(filler);
	/* the interval boundary: its record cannot be appended */
	run(self, 800, 230000, 3600000);
	EXPECT_NE(0u, self->m.alarms & (1u << ALARM_STORE_ERROR));
	EXPECT_NE(NULL, logged(&self->ev, "alarm store-error raised: interval commit: No space left"));
	/* durable snapshots go on regardless (their file was allocated when created) */
	fs = self->m.store.fsyncs;
	run(self, 125, 230000, 3600000);
	EXPECT_LE(fs + 2, self->m.store.fsyncs);
	EXPECT_NE(0u, self->m.alarms & (1u << ALARM_STORE_ERROR));
	/* space returns: the next durable save rewrites the log and clears the alarm */
	ASSERT_EQ(0, unlink(filler));
	run(self, 60, 230000, 3600000);
	EXPECT_EQ(0u, self->m.alarms & (1u << ALARM_STORE_ERROR));
	EXPECT_NE(NULL, logged(&self->ev, "store: log rewritten after a failed write"));
	/* a cut now: no corruption, no torn record, the interval is there */
	ASSERT_EQ(0, power_cut(_metadata, self, 5));
	EXPECT_EQ(0u, self->m.recovery.corrupt_records);
	EXPECT_EQ(0u, self->m.recovery.torn_bytes);
	ASSERT_EQ(1u, self->m.prof.count);
	EXPECT_EQ(ivl, profile_at(&self->m.prof, 0)->start);
	EXPECT_EQ(0u, self->m.alarms & (1u << ALARM_STORE_CORRUPT));
	stop(self, true);
	umount2(self->cfg.state_dir, MNT_DETACH);
	ASSERT_EQ(0, start(_metadata, self));	/* for the teardown */
}

static bool alarm_on(FIXTURE_DATA(meter) *self, enum meter_alarm a)
{
	return self->m.alarms & (1u << a);
}

TEST_F(meter, sustained_export_without_generation_raises_reversed_ct)
{
	const int64_t limit_mw = (int64_t)self->m.cfg.reverse_export_w * 1000;
	const int hold = (int)self->m.cfg.reverse_time_s;
	char msg[64];

	/* export just at the limit is not "above" it; an interruption starts again */
	run(self, 2 * hold, 230000, -limit_mw);
	EXPECT_FALSE(alarm_on(self, ALARM_REVERSED_CT));
	run(self, hold - 1, 230000, -limit_mw - 1000);
	run(self, 1, 230000, 0);
	run(self, hold, 230000, -limit_mw - 1000);
	EXPECT_FALSE(alarm_on(self, ALARM_REVERSED_CT));
	run(self, 1, 230000, -limit_mw - 1000);
	EXPECT_TRUE(alarm_on(self, ALARM_REVERSED_CT));
	EXPECT_NE(NULL, logged(&self->ev, "alarm reversed-ct raised"));
	/* a small import (below the limit) is not the right direction yet */
	run(self, 60, 230000, limit_mw / 2);
	EXPECT_TRUE(alarm_on(self, ALARM_REVERSED_CT));
	/* clear import for the hold: cleared */
	run(self, 10, 230000, limit_mw + 1000);
	EXPECT_TRUE(alarm_on(self, ALARM_REVERSED_CT));
	run(self, 1, 230000, limit_mw + 1000);
	EXPECT_FALSE(alarm_on(self, ALARM_REVERSED_CT));
	/* generation configured: export is expected */
	self->m.cfg.generation = true;
	run(self, 10 * hold, 230000, -50 * limit_mw);
	EXPECT_FALSE(alarm_on(self, ALARM_REVERSED_CT));
	snprintf(msg, sizeof(msg), "%s", meter_alarm_name(ALARM_REVERSED_CT));
	EXPECT_STREQ("reversed-ct", msg);
}

TEST_F(meter, no_current_for_hours_with_the_supply_on_raises_ct_tamper)
{
	const int idle = 300;
	char msg[128];

	self->m.cfg.idle_time_s = idle;	/* hours in the field; the rule is the same */
	run(self, idle, 230000, 0);
	EXPECT_FALSE(alarm_on(self, ALARM_CT_TAMPER));
	run(self, 1, 230000, 0);
	EXPECT_TRUE(alarm_on(self, ALARM_CT_TAMPER));
	EXPECT_NE(NULL, logged(&self->ev, "alarm ct-tamper raised"));
	/* current flows again for the hold: cleared */
	run(self, 11, 230000, 1000000);
	EXPECT_FALSE(alarm_on(self, ALARM_CT_TAMPER));
	/* the main relay open (a disconnect): no current is expected */
	ASSERT_EQ(0, meter_disconnect(&self->m, "test", msg, sizeof(msg)));
	run(self, 3 * idle, 230000, 0);
	EXPECT_FALSE(alarm_on(self, ALARM_CT_TAMPER));
	/* idle_time = 0: off (a holiday home, say) */
	self->m.prot.remote = REMOTE_CONNECTED;
	meter_apply_main(&self->m, "test");
	ASSERT_TRUE(relay(self, 0));
	self->m.cfg.idle_time_s = 0;	/* off */
	run(self, 3 * idle, 230000, 0);
	EXPECT_FALSE(alarm_on(self, ALARM_CT_TAMPER));
}

/* ---- loads switched outside meterd ([load.NAME] switch = external) ---- */

struct alarm_log {
	char name[32];
	bool active;
	char detail[256];
};

/* Restart the meter with the plug washer (external, shed first) before the GPIO pump. */
static int start_with_plug(struct __test_metadata *_metadata, FIXTURE_DATA(meter) *self,
			   uint32_t stale_after_s)
{
	static const char fmt[] =
		"[meter]\ntimezone = UTC\n[sensors]\nbackend = replay\n[relays]\nbackend = fake\n"
		"[load.washer]\nswitch = external\nload = 1800\npriority = 0\nstale_after = %u\n"
		"[load.pump]\nline = 5\nload = 1500\npriority = 1\n"
		"[allocation]\ngrid_allocation = 5000\nrestore_delay = 10\nsettle = 2\n"
		"[tariff]\nrate = 20\n[store]\nstate_dir = %s/state\nruntime_dir = %s/run\n";
	char text[1024], err[256];

	stop(self, true);
	snprintf(text, sizeof(text), fmt, stale_after_s, self->dir, self->dir);
	if (config_parse(&self->cfg, "test.conf", text, err, sizeof(err))) {
		TH_LOG("%s", err);
		return -1;
	}
	memset(&self->ev, 0, sizeof(self->ev));
	return start(_metadata, self);
}

static bool has_alarm(FIXTURE_DATA(meter) *self, enum meter_alarm a)
{
	return self->m.alarms & (1u << a);
}

static int rep(FIXTURE_DATA(meter) *self, const char *name, bool reachable, bool on, int32_t w)
{
	char msg[160];

	return meter_report_load(&self->m, name, reachable, on, w, 0, self->mono, msg, sizeof(msg));
}

TEST_F(meter, external_load_starts_wanted_on_unreachable_and_alarms_after_stale_after)
{
	uint32_t stale;

	ASSERT_EQ(0, start_with_plug(_metadata, self, 30));
	stale = self->cfg.load[0].stale_after_s;
	ASSERT_TRUE(meter_load_external(&self->m, 0));
	EXPECT_FALSE(meter_load_external(&self->m, 1));
	EXPECT_TRUE(self->m.load_closed[0]);		/* wanted on, like a GPIO relay at start */
	EXPECT_FALSE(self->m.alloc.load[0].reachable);
	EXPECT_STREQ("unreachable", meter_load_state(&self->m, 0));
	EXPECT_STREQ("on", meter_load_state(&self->m, 1));
	EXPECT_TRUE(relay(self, 2));			/* the pump's line */
	/* the bridge has stale_after for its first report */
	run(self, (int)stale - 1, 230000, 1000000);
	EXPECT_FALSE(has_alarm(self, ALARM_LOAD_UNREACHABLE));
	run(self, 1, 230000, 1000000);
	EXPECT_TRUE(has_alarm(self, ALARM_LOAD_UNREACHABLE));
	/* the first report: reachable, the alarm goes at once */
	ASSERT_EQ(0, rep(self, "washer", true, true, 1750));
	EXPECT_FALSE(has_alarm(self, ALARM_LOAD_UNREACHABLE));
	EXPECT_STREQ("on", meter_load_state(&self->m, 0));
	EXPECT_EQ(1750, self->m.alloc.load[0].measured_w);
	/* silence: unreachable exactly stale_after after the last report */
	run(self, (int)stale - 1, 230000, 1000000);
	EXPECT_STREQ("on", meter_load_state(&self->m, 0));
	run(self, 1, 230000, 1000000);
	EXPECT_STREQ("unreachable", meter_load_state(&self->m, 0));
	EXPECT_EQ(-1, self->m.alloc.load[0].measured_w);
	EXPECT_TRUE(has_alarm(self, ALARM_LOAD_UNREACHABLE));
	EXPECT_NE(NULL, logged(&self->ev, "load washer unreachable: no report for 30 s"));
	/* the plug's last will */
	ASSERT_EQ(0, rep(self, "washer", true, true, 1750));
	ASSERT_EQ(0, rep(self, "washer", false, false, -1));
	EXPECT_STREQ("unreachable", meter_load_state(&self->m, 0));
	EXPECT_TRUE(has_alarm(self, ALARM_LOAD_UNREACHABLE));
	EXPECT_NE(NULL, logged(&self->ev, "load washer unreachable: its switch reports it offline"));
}

TEST_F(meter, report_load_refuses_unknown_gpio_and_bad_values)
{
	ASSERT_EQ(0, start_with_plug(_metadata, self, 120));
	EXPECT_EQ(-ENOENT, rep(self, "dryer", true, true, 100));
	EXPECT_EQ(-EMEDIUMTYPE, rep(self, "pump", true, true, 100));
	EXPECT_EQ(-EINVAL, rep(self, "washer", true, true, -2));
	EXPECT_EQ(-EINVAL, rep(self, "washer", true, true, 1000001));
	/* none of them counted as a report */
	EXPECT_STREQ("unreachable", meter_load_state(&self->m, 0));
	EXPECT_EQ(0, rep(self, "washer", true, false, 0));
	EXPECT_STREQ("off", meter_load_state(&self->m, 0));
}

/*
 * Deficit 1000 W. The washer idles at idle_w: shedding it frees idle_w,
 * not its nominal 1800 W, so the pump is shed too; the washer's switch is
 * the bridge's job (RelayChanged, wanted off), the fake relay of index 1
 * is never touched.
 */
TEST_F(meter, idle_plug_shed_frees_its_measured_draw_so_the_next_is_shed)
{
	const int32_t idle_w = 4;
	const int64_t grant_w = 5000, demand_w = 6000;
	unsigned sets;

	ASSERT_EQ(0, start_with_plug(_metadata, self, 120));
	ASSERT_EQ(0, rep(self, "washer", true, true, idle_w));
	sets = relay_fake_sets(self->r);
	self->ev.relay_calls = 0;
	run(self, 1, 230000, demand_w * 1000);
	ASSERT_LT(0, demand_w - grant_w - idle_w);	/* what the washer frees leaves a deficit */
	EXPECT_TRUE(self->m.alloc.load[0].shed);
	EXPECT_TRUE(self->m.alloc.load[1].shed);
	EXPECT_FALSE(self->m.load_closed[0]);		/* wanted off */
	EXPECT_FALSE(relay(self, 2));			/* the pump's line opened */
	EXPECT_EQ(sets + 1, relay_fake_sets(self->r));	/* the pump only: the washer has no line */
	EXPECT_EQ(2, self->ev.relay_calls);		/* RelayChanged for both */
	EXPECT_NE(NULL, logged(&self->ev, "relay washer opened"));
	EXPECT_STREQ("on", meter_load_state(&self->m, 0));	/* the plug has not followed yet */
}

TEST_F(meter, a_plug_drawing_its_nominal_load_sheds_like_a_gpio_relay)
{
	ASSERT_EQ(0, start_with_plug(_metadata, self, 120));
	ASSERT_EQ(0, rep(self, "washer", true, true, 1800));
	run(self, 1, 230000, 6000000);			/* deficit 1000 <= 1800 */
	EXPECT_TRUE(self->m.alloc.load[0].shed);
	EXPECT_FALSE(self->m.alloc.load[1].shed);
	EXPECT_TRUE(relay(self, 2));
}

TEST_F(meter, unreachable_plug_is_skipped_and_the_next_load_shed)
{
	ASSERT_EQ(0, start_with_plug(_metadata, self, 120));
	run(self, 1, 230000, 6000000);			/* no report yet: washer unreachable */
	EXPECT_FALSE(self->m.alloc.load[0].shed);
	EXPECT_TRUE(self->m.load_closed[0]);		/* still wanted on */
	EXPECT_TRUE(self->m.alloc.load[1].shed);
	EXPECT_FALSE(relay(self, 2));
	/* back, still over the grant: the washer is shed after the settle time */
	ASSERT_EQ(0, rep(self, "washer", true, true, 1800));
	run(self, (int)self->cfg.settle_s, 230000, 6000000);	/* more came on */
	EXPECT_TRUE(self->m.alloc.load[0].shed);
	EXPECT_FALSE(self->m.load_closed[0]);
}

TEST_F(meter, stale_plug_becomes_unsheddable_and_a_restart_wants_it_on_again)
{
	uint32_t stale;

	ASSERT_EQ(0, start_with_plug(_metadata, self, 20));
	stale = self->cfg.load[0].stale_after_s;
	ASSERT_EQ(0, rep(self, "washer", true, true, 1800));
	run(self, 1, 230000, 6000000);
	ASSERT_TRUE(self->m.alloc.load[0].shed);
	ASSERT_EQ(0, rep(self, "washer", true, false, 0));	/* followed */
	/* too little headroom to restore it (1500 < 1800 + 200 W) while it goes silent */
	run(self, (int)stale, 230000, 3500000);
	EXPECT_STREQ("unreachable", meter_load_state(&self->m, 0));
	/* then plenty: it would be restored after restore_delay, but it cannot be switched */
	run(self, (int)self->cfg.restore_delay_s * 3, 230000, 1000000);
	EXPECT_TRUE(self->m.alloc.load[0].shed);	/* not restored while it cannot be switched */
	EXPECT_FALSE(self->m.load_closed[0]);
	/* meterd restarts: wanted on, unreachable until the first report */
	stop(self, true);
	ASSERT_EQ(0, start(_metadata, self));
	EXPECT_TRUE(self->m.load_closed[0]);
	EXPECT_FALSE(self->m.alloc.load[0].shed);
	EXPECT_STREQ("unreachable", meter_load_state(&self->m, 0));
	EXPECT_FALSE(has_alarm(self, ALARM_LOAD_UNREACHABLE));
}

TEST_F(meter, plug_not_following_raises_load_mismatch_after_the_grace_time)
{
	int64_t grace_s;

	ASSERT_EQ(0, start_with_plug(_metadata, self, 120));
	grace_s = self->cfg.settle_s > 5 ? self->cfg.settle_s : 5;	/* max(settle, 5 s) */
	ASSERT_EQ(0, rep(self, "washer", true, true, 1800));
	run(self, 1, 230000, 6000000);
	ASSERT_FALSE(self->m.load_closed[0]);
	/* the plug keeps reporting on */
	for (int i = 0; i < grace_s - 1; i++) {
		ASSERT_EQ(0, rep(self, "washer", true, true, 1800));
		run(self, 1, 230000, 4200000);
	}
	EXPECT_FALSE(has_alarm(self, ALARM_LOAD_MISMATCH));
	run(self, 1, 230000, 4200000);
	EXPECT_TRUE(has_alarm(self, ALARM_LOAD_MISMATCH));
	EXPECT_FALSE(self->m.load_closed[0]);		/* meterd keeps wanting it off */
	ASSERT_EQ(0, rep(self, "washer", true, false, 0));
	EXPECT_FALSE(has_alarm(self, ALARM_LOAD_MISMATCH));
}

TEST_F(meter, reporter_leaving_makes_every_external_load_unreachable_at_once)
{
	ASSERT_EQ(0, start_with_plug(_metadata, self, 120));
	ASSERT_EQ(0, rep(self, "washer", true, true, 1800));
	ASSERT_STREQ("on", meter_load_state(&self->m, 0));
	meter_loads_lost(&self->m, self->mono);
	EXPECT_STREQ("unreachable", meter_load_state(&self->m, 0));
	EXPECT_TRUE(has_alarm(self, ALARM_LOAD_UNREACHABLE));
	EXPECT_NE(NULL, logged(&self->ev, "load washer unreachable: its reporter left the bus"));
	/* GPIO loads are not reported on: untouched */
	EXPECT_TRUE(self->m.alloc.load[1].reachable);
	EXPECT_STREQ("on", meter_load_state(&self->m, 1));
	/* a deficit now sheds the pump, not the silent washer */
	run(self, 1, 230000, 6000000);
	EXPECT_FALSE(self->m.alloc.load[0].shed);
	EXPECT_TRUE(self->m.alloc.load[1].shed);
}

/* Loads changes are announced for every field but draw changes under 5 %. */
TEST_F(meter, loads_change_on_state_and_on_draw_changes_of_five_percent)
{
	const int32_t base = 1000;
	int n;

	ASSERT_EQ(0, start_with_plug(_metadata, self, 120));
	self->ev.loads_changed = 0;
	ASSERT_EQ(0, rep(self, "washer", true, true, base));
	EXPECT_EQ(1, self->ev.loads_changed);		/* reachable */
	n = self->ev.loads_changed;
	ASSERT_EQ(0, rep(self, "washer", true, true, base + base * 5 / 100 - 1));
	EXPECT_EQ(n, self->ev.loads_changed);		/* 4.9 %: not worth a signal */
	ASSERT_EQ(0, rep(self, "washer", true, true, base + base * 5 / 100));
	EXPECT_EQ(n + 1, self->ev.loads_changed);	/* 5 % of what Loads showed */
	n = self->ev.loads_changed;
	ASSERT_EQ(0, rep(self, "washer", true, false, base + base * 5 / 100));
	EXPECT_EQ(n + 1, self->ev.loads_changed);	/* the switch's state */
	n = self->ev.loads_changed;
	ASSERT_EQ(0, rep(self, "washer", true, false, -1));
	EXPECT_EQ(n + 1, self->ev.loads_changed);	/* draw unknown */
	n = self->ev.loads_changed;
	ASSERT_EQ(0, rep(self, "washer", false, false, -1));
	EXPECT_EQ(n + 1, self->ev.loads_changed);	/* unreachable */
}

/* A demand the plug announces goes through the appliance path under its name. */
TEST_F(meter, plug_declared_demand_is_an_appliance_until_withdrawn_or_offline)
{
	char msg[160];

	ASSERT_EQ(0, start_with_plug(_metadata, self, 30));
	/* someone else's declaration under another name is never touched */
	ASSERT_EQ(0, meter_declare(&self->m, "oven", 500, 0, self->mono, msg, sizeof(msg)));
	ASSERT_EQ(0, meter_report_load(&self->m, "washer", true, false, 0, 2000, self->mono, msg, sizeof(msg)));
	run(self, 1, 230000, 1000000);
	EXPECT_EQ(2500, self->m.declared_w);
	ASSERT_EQ(0, meter_report_load(&self->m, "washer", true, true, 1900, 0, self->mono, msg, sizeof(msg)));
	run(self, 1, 230000, 1000000);
	EXPECT_EQ(500, self->m.declared_w);		/* running: withdrawn */
	ASSERT_EQ(0, meter_report_load(&self->m, "washer", true, false, 0, 2000, self->mono, msg, sizeof(msg)));
	ASSERT_EQ(0, meter_report_load(&self->m, "washer", false, false, -1, 2000, self->mono, msg, sizeof(msg)));
	run(self, 1, 230000, 1000000);
	EXPECT_EQ(500, self->m.declared_w);		/* offline: withdrawn */
	/* not repeated: expires with stale_after */
	ASSERT_EQ(0, meter_report_load(&self->m, "washer", true, false, 0, 2000, self->mono, msg, sizeof(msg)));
	run(self, (int)self->cfg.load[0].stale_after_s - 1, 230000, 1000000);
	EXPECT_EQ(2500, self->m.declared_w);
	run(self, 1, 230000, 1000000);
	EXPECT_EQ(500, self->m.declared_w);
}

struct town_alarms {
	struct uplink base;
	unsigned sent;		/* 1 << code of every alarm sent */
};

static void ta_alarm(struct uplink *u, unsigned int code, bool active)
{
	(void)active;
	((struct town_alarms *)(void *)u)->sent |= 1u << code;
}

static void ta_request(struct uplink *u, int64_t w)
{
	(void)u;
	(void)w;
}

static const char *ta_state(struct uplink *u)
{
	(void)u;
	return "none";
}

/* The plugs' alarms are the household's: never sent to the town server. */
TEST_F(meter, load_alarms_stay_in_the_house)
{
	static const struct uplink_ops ops = { .name = "test", .request = ta_request, .offer = ta_request,
					       .state = ta_state, .alarm = ta_alarm };
	struct town_alarms town = { .base = { .ops = &ops } };

	ASSERT_EQ(0, start_with_plug(_metadata, self, 30));
	self->m.uplink = &town.base;
	ASSERT_EQ(0, rep(self, "washer", true, true, 1800));
	run(self, 1, 230000, 6000000);			/* shed: wanted off, still on */
	for (int i = 0; i < 10; i++) {
		ASSERT_EQ(0, rep(self, "washer", true, true, 1800));
		run(self, 1, 230000, 6000000);
	}
	EXPECT_TRUE(has_alarm(self, ALARM_LOAD_MISMATCH));
	meter_loads_lost(&self->m, self->mono);
	EXPECT_TRUE(has_alarm(self, ALARM_LOAD_UNREACHABLE));
	EXPECT_TRUE(has_alarm(self, ALARM_DEFICIT));
	EXPECT_NE(0u, town.sent & (1u << ALARM_DEFICIT));	/* the town does get this one */
	EXPECT_EQ(0u, town.sent & ((1u << ALARM_LOAD_UNREACHABLE) | (1u << ALARM_LOAD_MISMATCH)));
	self->m.uplink = &uplink_none;
}

TEST_HARNESS_MAIN
