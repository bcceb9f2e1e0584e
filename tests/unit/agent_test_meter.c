// SPDX-License-Identifier: GPL-2.0
/*
 * The meter with the replay sensor and fake relays, on fake time: relays
 * follow protection and allocation at once, state survives a clean restart
 * and a crash (no shutdown), lockout persists, clock steps keep energy exact,
 * a steady hour writes nothing to the journal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The 6.1 harness defines fixture setup/teardown functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "meter.h"

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
};

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

static void h_log(void *ctx, int level, const char *msg)
{
	(void)level;
	(void)msg;
	((struct events *)ctx)->log_lines++;
}

FIXTURE(meter) {
	char dir[64];
	struct meter_config cfg;
	struct meter m;
	struct sensor *s;
	struct relays *r;
	struct events ev;
	int64_t real, mono;
};

static int start(struct __test_metadata *_metadata, FIXTURE_DATA(meter) *self)
{
	struct meter_hooks h = { .ctx = &self->ev, .relay = h_relay, .alarm = h_alarm, .log = h_log };
	char err[256];
	int r;

	self->s = sensor_replay_new(NULL, err, sizeof(err));
	self->r = relay_fake_new(2);
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
	self->real = 1790000100000;	/* 2026-09-21, a few seconds into an interval */
	self->mono = 1000000;
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

TEST_HARNESS_MAIN
