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
	"[store]\nstate_dir = %s/state\nruntime_dir = %s/run\n[dbus]\nproperty_interval_ms = 200\n"
	/* issue 15: a GPIO relay, a smart plug, a gas sensor whose IIO device the host has not (fault) */
	"[load.heater]\nline = 6\nload = 3000\npriority = 2\n"
	"[load.washer]\nswitch = external\nload = 1800\npriority = 1\n"
	"[sensor.kitchen_gas]\ndevice = gm-sim-adc-absent\nchannel = in_voltage2_raw\nkind = gas\n"
	"alarm_above = 1200\n";

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

static bool has_alarm(const struct mw_state *st, const char *name)
{
	for (unsigned i = 0; i < st->nalarms; i++)
		if (!strcmp(st->alarms[i], name))
			return true;
	return false;
}

static bool has_event(const struct mw_state *st, enum mw_event_kind kind, const char *name, bool on)
{
	for (unsigned i = 0; i < st->nevents; i++)
		if (st->events[i].kind == kind && !strcmp(st->events[i].name, name) && st->events[i].on == on)
			return true;
	return false;
}

/* The snapshot's loads equal the Loads property, field by field (read here with sd-bus directly). */
static bool loads_equal(const struct mw_state *st, char *why, size_t len)
{
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	unsigned n = 0;
	int r = sd_bus_open_system(&bus);

	if (r >= 0)
		r = sd_bus_get_property(bus, MW_DEST, MW_PATH, MW_IFACE, "Loads", NULL, &reply, "a(sssbbbi)");
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "(sssbbbi)");
	while (r >= 0) {
		const char *name, *sw, *state;
		int wanted, shed, reach;
		int32_t w;
		const struct mw_load *l = &st->xloads[n];

		r = sd_bus_message_read(reply, "(sssbbbi)", &name, &sw, &state, &wanted, &shed, &reach, &w);
		if (r <= 0)
			break;
		if (n >= st->nxloads || strcmp(l->name, name) || strcmp(l->sw, sw) || strcmp(l->state, state) ||
		    l->wanted_on != !!wanted || l->shed != !!shed || l->reachable != !!reach || l->measured_w != w) {
			snprintf(why, len, "load %u: Loads (%s %s %s %d %d %d %d), snapshot has %u loads", n, name, sw,
				 state, wanted, shed, reach, w, st->nxloads);
			r = -1;
			break;
		}
		n++;
	}
	sd_bus_message_unref(reply);
	sd_bus_flush_close_unref(bus);
	if (r < 0)
		return false;
	if (n != st->nxloads) {
		snprintf(why, len, "Loads has %u loads, the snapshot %u", n, st->nxloads);
		return false;
	}
	return true;
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
	/* (the sensor's fault alarm, home-sensor, may come before or after: look for these) */
	EXPECT_TRUE(WAIT_FOR(&self->snap, *st, 5000, !strcmp(st->main_relay, "open") && has_alarm(st, "over-voltage") &&
			     has_event(st, MW_EV_RELAY, "main", false) && has_event(st, MW_EV_ALARM, "over-voltage", true)));
	EXPECT_STREQ("tripped", st->protection);

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

/* Loads and HomeSensors (issue 15): read at start, followed when a plug reports. */
TEST_F(web_bus, loads_and_home_sensors)
{
	struct mw_state *st = calloc(1, sizeof(*st));
	sd_bus *reporter = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char why[256] = "";
	const struct mw_load *washer = NULL;

	ASSERT_NE(NULL, st);
	ASSERT_TRUE(WAIT_FOR(&self->snap, *st, 5000, st->connected && st->nxloads == 2));
	EXPECT_TRUE(loads_equal(st, why, sizeof(why))) TH_LOG("%s", why);
	for (unsigned i = 0; i < st->nxloads; i++)
		if (!strcmp(st->xloads[i].name, "washer"))
			washer = &st->xloads[i];
	ASSERT_NE(NULL, washer);
	EXPECT_STREQ("external", washer->sw);
	ASSERT_EQ(1u, st->nhome);
	EXPECT_STREQ("kitchen_gas", st->home[0].name);
	EXPECT_STREQ("gas", st->home[0].kind);
	EXPECT_STREQ("mV", st->home[0].unit);
	EXPECT_TRUE(WAIT_FOR(&self->snap, *st, 5000, !strcmp(st->home[0].state, "fault")));

	/* the bridge reports, on one connection that stays (leaving makes the plug unreachable) */
	ASSERT_LE(0, sd_bus_open_system(&reporter));
	ASSERT_LE(0, sd_bus_call_method(reporter, MW_DEST, MW_PATH, MW_IFACE, "ReportLoad", &e, NULL, "sbbiu",
					"washer", 1, 1, (int32_t)1234, (uint32_t)0)) TH_LOG("%s", e.message);
	EXPECT_TRUE(WAIT_FOR(&self->snap, *st, 5000, st->nxloads == 2 &&
			     (!strcmp(st->xloads[0].name, "washer") ? &st->xloads[0] : &st->xloads[1])->measured_w == 1234));
	EXPECT_TRUE(loads_equal(st, why, sizeof(why))) TH_LOG("%s", why);
	sd_bus_flush_close_unref(reporter);
	EXPECT_TRUE(WAIT_FOR(&self->snap, *st, 5000,
			     !strcmp((!strcmp(st->xloads[0].name, "washer") ? &st->xloads[0] : &st->xloads[1])->state,
				     "unreachable")));
	EXPECT_TRUE(loads_equal(st, why, sizeof(why))) TH_LOG("%s", why);
	sd_bus_error_free(&e);
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
