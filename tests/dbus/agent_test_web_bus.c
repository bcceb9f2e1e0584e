// SPDX-License-Identifier: GPL-2.0
/*
 * meterweb's D-Bus client against a real meterd (replay sensor, fake
 * relays, --test-hooks) on a private bus: the snapshot holds what the
 * properties say, follows a load step and a trip (PropertiesChanged,
 * Alarm, RelayChanged), notices meterd stopping and reads it again when it
 * comes back; GetLoadProfile paging returns every one of 11520 seeded
 * intervals (more than meterd's 10000 a call).
 */
#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "agent_privbus.h"
#include "daemon.h"
#include "meter_client.h"
#include "persist.h"
#include "store.h"

#define SEED_N		11520	/* 8 days of 1-minute intervals */

static const char conf_fmt[] =
	"[meter]\ntimezone = Europe/London\ninterval = 60\nsample_interval_ms = 100\nclock = system\n"
	"[sensors]\nbackend = replay\n[relays]\nbackend = fake\n"
	"[protection]\nreclose_delay = 60\n"
	"[tariff]\ntype = tou\ncurrency = GBP\nrates = peak:30, offpeak:10\n"
	"weekday = 00:00-07:00 offpeak, 07:00-24:00 peak\nweekend = 00:00-24:00 offpeak\n"
	"[store]\nstate_dir = %s/state\nruntime_dir = %s/run\n[dbus]\nproperty_interval_ms = 200\n";

FIXTURE(web_bus) {
	char dir[64], conf[96];
	pid_t dbus_pid, meterd_pid;
	struct mw_snapshot snap;
	struct mw_client client;
	bool client_on;
	int64_t seed_from;
};

static pid_t start_meterd(const char *dir, const char *conf)
{
	pid_t pid = fork();

	if (!pid) {
		char log[128];
		char *argv[] = { "meterd", "-c", (char *)conf, "--test-hooks", NULL };

		snprintf(log, sizeof(log), "%s/meterd.log", dir);
		if (!freopen(log, "a", stderr))
			_exit(3);
		_exit(meterd_main(4, argv));
	}
	return pid;
}

static void stop_pid(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

static uint32_t seed_import(int64_t start)
{
	return (uint32_t)(100 + (start / 60) % 977);
}

FIXTURE_SETUP(web_bus)
{
	char path[128], text[1024];
	struct profile_entry *e;
	struct store st;
	FILE *f;

	if (access("/usr/bin/dbus-daemon", X_OK))
		SKIP(return, "no dbus-daemon");
	strcpy(self->dir, "/tmp/agent_test_web.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(path, sizeof(path), "%s/state", self->dir);
	ASSERT_EQ(0, mkdir(path, 0700));
	snprintf(text, sizeof(text), "%s/run", self->dir);
	ASSERT_EQ(0, mkdir(text, 0700));
	/* the seeded history, with meterd's own store code */
	e = calloc(SEED_N, sizeof(*e));
	ASSERT_NE(NULL, e);
	self->seed_from = ((int64_t)time(NULL) / 60 - SEED_N - 5) * 60;
	for (int i = 0; i < SEED_N; i++) {
		e[i].start = self->seed_from + i * 60;
		e[i].import_mwh = seed_import(e[i].start);
		e[i].export_mwh = (uint32_t)(i % 3);
	}
	ASSERT_EQ(0, store_open(&st, path, text, PERSIST_MAX));
	ASSERT_LE(0, store_commit(&st, NULL, 0, e, SEED_N, true));
	store_close(&st);
	free(e);

	snprintf(self->conf, sizeof(self->conf), "%s/meterd.conf", self->dir);
	f = fopen(self->conf, "w");
	ASSERT_NE(NULL, f);
	fprintf(f, conf_fmt, self->dir, self->dir);
	fclose(f);
	self->dbus_pid = privbus_start(self->dir);
	ASSERT_LT(0, self->dbus_pid);
	self->meterd_pid = start_meterd(self->dir, self->conf);
	ASSERT_EQ(0, privbus_wait_name("org.gridmeter.Meter1", 10000));
	ASSERT_EQ(0, mw_snapshot_init(&self->snap));
	memset(&self->client, 0, sizeof(self->client));
	ASSERT_EQ(0, mw_client_start(&self->client, &self->snap));
	self->client_on = true;
}

FIXTURE_TEARDOWN(web_bus)
{
	char cmd[128];

	if (!self->dir[0])
		return;
	if (self->client_on) {
		mw_client_stop(&self->client);
		mw_snapshot_destroy(&self->snap);
	}
	stop_pid(self->meterd_pid);
	stop_pid(self->dbus_pid);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		TH_LOG("cleanup of %s failed", self->dir);
}

/* Wait (at most ms) until pred holds for the snapshot. */
#define WAIT_FOR(sn, st, ms, pred) ({						\
	uint64_t _g = 0;							\
	bool _ok = false;							\
	for (int _t = 0; _t < (ms) && !_ok; _t += 100) {			\
		mw_snapshot_wait((sn), &_g, 100, &(st));			\
		_ok = (pred);							\
	}									\
	_ok;									\
})

static int call(const char *iface, const char *member, const char *sig, ...)
{
	sd_bus *bus = NULL;
	sd_bus_message *m = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	va_list ap;
	int r = sd_bus_open_system(&bus);

	if (r >= 0)
		r = sd_bus_message_new_method_call(bus, &m, MW_DEST, MW_PATH, iface, member);
	va_start(ap, sig);
	if (r >= 0 && sig)
		r = sd_bus_message_appendv(m, sig, ap);
	va_end(ap);
	if (r >= 0)
		r = sd_bus_call(bus, m, 5000000, &e, NULL);
	sd_bus_error_free(&e);
	sd_bus_message_unref(m);
	sd_bus_flush_close_unref(bus);
	return r;
}

static char *get_s(const char *prop)
{
	sd_bus *bus = NULL;
	char *s = NULL;

	if (sd_bus_open_system(&bus) >= 0)
		sd_bus_get_property_string(bus, MW_DEST, MW_PATH, MW_IFACE, prop, NULL, &s);
	sd_bus_flush_close_unref(bus);
	return s;
}

TEST_F(web_bus, snapshot_follows_meterd)
{
	struct mw_state *st = calloc(1, sizeof(*st));
	char *cur = NULL, *period = NULL;

	ASSERT_NE(NULL, st);
	ASSERT_TRUE(WAIT_FOR(&self->snap, *st, 5000, st->connected));
	/* what the properties say */
	cur = get_s("Currency");
	period = get_s("CurrentTariffPeriod");
	ASSERT_NE(NULL, cur);
	ASSERT_NE(NULL, period);
	EXPECT_STREQ(cur, st->currency);
	EXPECT_STREQ(period, st->period);
	EXPECT_TRUE(st->have_tariff);
	EXPECT_STREQ("tou", st->tariff.type);
	EXPECT_STREQ("peak:30, offpeak:10", st->tariff.rates);
	EXPECT_STREQ("closed", st->main_relay);
	EXPECT_STREQ("normal", st->protection);
	EXPECT_FALSE(st->has_uplink);	/* no [uplink]: no Uplink1 */
	EXPECT_NE(0u, st->alloc.n);
	free(cur);
	free(period);

	/* a load step: PropertiesChanged */
	ASSERT_LE(0, call("org.gridmeter.Meter1.Test", "InjectReading", "a{sx}", 3, "voltage_mv", (int64_t)241300,
			  "current_ma", (int64_t)7000, "power_mw", (int64_t)1666000));
	EXPECT_TRUE(WAIT_FOR(&self->snap, *st, 5000, st->voltage_mv == 241300 && st->active_mw == 1666000));
	EXPECT_EQ(7000u, st->current_ma);

	/* a trip: RelayChanged and Alarm arrive as events, the relay opens */
	ASSERT_LE(0, call("org.gridmeter.Meter1.Test", "InjectReading", "a{sx}", 1, "voltage_mv", (int64_t)262000));
	ASSERT_LE(0, call("org.gridmeter.Meter1.Test", "InjectEvent", "s", "over-voltage"));
	EXPECT_TRUE(WAIT_FOR(&self->snap, *st, 5000, !strcmp(st->main_relay, "open") && st->nalarms > 0 &&
			     st->nevents >= 2));
	{
		bool relay = false, alarm = false;

		for (unsigned i = 0; i < st->nevents; i++) {
			relay |= st->events[i].kind == MW_EV_RELAY && !strcmp(st->events[i].name, "main") &&
				 !st->events[i].on;
			alarm |= st->events[i].kind == MW_EV_ALARM && !strcmp(st->events[i].name, "over-voltage") &&
				 st->events[i].on;
		}
		EXPECT_TRUE(relay);
		EXPECT_TRUE(alarm);
		EXPECT_STREQ("over-voltage", st->alarms[0]);
		EXPECT_STREQ("tripped", st->protection);
	}

	/* meterd stops: not connected; it comes back: read again */
	stop_pid(self->meterd_pid);
	self->meterd_pid = 0;
	EXPECT_TRUE(WAIT_FOR(&self->snap, *st, 5000, !st->connected));
	{
		unsigned reads = atomic_load(&self->client.reads);

		self->meterd_pid = start_meterd(self->dir, self->conf);
		EXPECT_TRUE(WAIT_FOR(&self->snap, *st, 10000, st->connected));
		EXPECT_LT(reads, atomic_load(&self->client.reads));
	}
	free(st);
}

TEST_F(web_bus, load_profile_pages)
{
	struct mw_intervals iv = { 0 };
	char err[200] = "";
	size_t seeded = 0;

	ASSERT_EQ(0, mw_load_profile(self->seed_from, self->seed_from + SEED_N * 60, &iv, err, sizeof(err)))
		TH_LOG("%s", err);
	for (size_t i = 0; i < iv.n; i++) {
		ASSERT_EQ(self->seed_from + (int64_t)i * 60, iv.v[i].start);
		ASSERT_EQ(seed_import(iv.v[i].start), iv.v[i].import_mwh);
		seeded++;
	}
	EXPECT_EQ((size_t)SEED_N, seeded);
	mw_intervals_free(&iv);
	/* from after to: the bus error's message, naming the argument */
	EXPECT_GT(0, mw_load_profile(10, 5, &iv, err, sizeof(err)));
	mw_intervals_free(&iv);
}

TEST_HARNESS_MAIN
