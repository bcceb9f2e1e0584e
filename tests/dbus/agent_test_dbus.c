// SPDX-License-Identifier: GPL-2.0
/*
 * meterd on a private dbus-daemon: properties, InvalidArgs naming the
 * argument, AccessDenied for callers outside the technician group (the
 * group fallback: no polkit on the private bus), remote disconnect with
 * local confirmation, protection trip and reclose, tariff persistence,
 * rate-bounded PropertiesChanged, recovery after kill -9, a SIGTERM that
 * saves a clean snapshot (the trip thread must not take it), the clock
 * properties.
 *
 * Needs root (to call as other users) and dbus-daemon; skips otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

/* The 6.1 harness defines fixture setup/teardown functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "daemon.h"
#include "agent_privbus.h"

#define DEST	"org.gridmeter.Meter1"
#define PATH	"/org/gridmeter/Meter1"
#define IFACE	"org.gridmeter.Meter1"
#define TIFACE	"org.gridmeter.Meter1.Test"

static const char meterd_conf[] =
	"[meter]\ntimezone = Europe/London\nsample_interval_ms = 100\n"
	"[sensors]\nbackend = replay\n"
	"[protection]\nreclose_delay = 1\nlockout_trips = 3\nlockout_window = 60\n"
	"[relays]\nbackend = fake\n"
	"[load.pump]\nline = 5\nload = 1500\npriority = 1\n"
	"[load.heater]\nline = 6\nload = 3000\npriority = 2\n"
	"[load.washer]\nswitch = external\nload = 1800\npriority = 0\n"
	"[load.dryer]\nswitch = external\nload = 2500\npriority = 3\nstale_after = 600\n"
	"[allocation]\ngrid_allocation = 5000\nrestore_delay = 1\nsettle = 0\n"
	"[tariff]\ntype = flat\nrate = 25.5\nstanding_charge = 40\n"
	"[store]\nstate_dir = %s/state\nruntime_dir = %s/run\n"
	"[dbus]\nproperty_interval_ms = 500\ntechnician_group = nogroup\nappliance_group = daemon\n"
	"bridge_group = sys\n";

FIXTURE(meterd) {
	char dir[64];
	char conf[96];
	pid_t dbus_pid, meterd_pid;
	sd_bus *bus;
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static pid_t start_meterd(const char *dir, const char *conf)
{
	pid_t pid = fork();

	if (!pid) {
		char log[128];
		char *argv[] = { "meterd", "-c", (char *)conf, "--test-hooks", NULL };

		snprintf(log, sizeof(log), "%s/meterd.log", dir);
		if (!freopen(log, "a", stderr))
			_exit(3);
		setvbuf(stderr, NULL, _IONBF, 0);
		_exit(meterd_main(4, argv));
	}
	return pid;
}

static int wait_for_name(sd_bus *bus, int timeout_ms)
{
	(void)bus;
	return privbus_wait_name(DEST, timeout_ms);
}

static void stop_meterd(pid_t pid, int sig)
{
	if (pid > 0) {
		kill(pid, sig);
		waitpid(pid, NULL, 0);
	}
}

FIXTURE_SETUP(meterd)
{
	char path[128], text[1024];

	if (geteuid() != 0)
		SKIP(return, "needs root to call as other users");
	if (access("/usr/bin/dbus-daemon", X_OK))
		SKIP(return, "no dbus-daemon");
	strcpy(self->dir, "/tmp/agent_test_dbus.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(path, sizeof(path), "%s/state", self->dir);
	ASSERT_EQ(0, mkdir(path, 0700));
	snprintf(path, sizeof(path), "%s/run", self->dir);
	ASSERT_EQ(0, mkdir(path, 0700));
	snprintf(self->conf, sizeof(self->conf), "%s/meterd.conf", self->dir);
	snprintf(text, sizeof(text), meterd_conf, self->dir, self->dir);
	write_file(self->conf, text);

	self->dbus_pid = privbus_start(self->dir);
	ASSERT_LT(0, self->dbus_pid);

	self->meterd_pid = start_meterd(self->dir, self->conf);
	ASSERT_LE(0, sd_bus_open_system(&self->bus));
	ASSERT_EQ(0, wait_for_name(self->bus, 5000));
}

FIXTURE_TEARDOWN(meterd)
{
	char cmd[128];

	if (!self->dir[0])
		return;
	sd_bus_flush_close_unref(self->bus);
	stop_meterd(self->meterd_pid, SIGTERM);
	stop_meterd(self->dbus_pid, SIGTERM);
	if (getenv("AGENT_TEST_KEEP")) {
		TH_LOG("kept %s", self->dir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		TH_LOG("cleanup of %s failed", self->dir);
}

static int get_u32(sd_bus *bus, const char *prop, uint32_t *v)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r = sd_bus_get_property_trivial(bus, DEST, PATH, IFACE, prop, &e, 'u', v);

	sd_bus_error_free(&e);
	return r;
}

static int64_t get_x(sd_bus *bus, const char *prop)
{
	int64_t v = INT64_MIN;

	sd_bus_get_property_trivial(bus, DEST, PATH, IFACE, prop, NULL, 'x', &v);
	return v;
}

static uint64_t get_t(sd_bus *bus, const char *prop)
{
	uint64_t v = UINT64_MAX;

	sd_bus_get_property_trivial(bus, DEST, PATH, IFACE, prop, NULL, 't', &v);
	return v;
}

static char *get_s(sd_bus *bus, const char *prop)
{
	char *s = NULL;

	sd_bus_get_property_string(bus, DEST, PATH, IFACE, prop, NULL, &s);
	return s;
}

static bool str_is(char *s, const char *want)
{
	bool eq = s && !strcmp(s, want);

	free(s);
	return eq;
}

static bool alarm_active(sd_bus *bus, const char *name)
{
	char **v = NULL;
	bool found = false;

	sd_bus_get_property_strv(bus, DEST, PATH, IFACE, "Alarms", NULL, &v);
	for (char **p = v; p && *p; p++) {
		found |= !strcmp(*p, name);
		free(*p);
	}
	free(v);
	return found;
}

/* Poll a string property until it equals want (the trip runs on its own thread). */
static bool wait_str(sd_bus *bus, const char *prop, const char *want, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 5) {
		if (str_is(get_s(bus, prop), want))
			return true;
		usleep(5000);
	}
	return false;
}

static int inject(sd_bus *bus, uint32_t v_mv, int64_t p_mw)
{
	return sd_bus_call_method(bus, DEST, PATH, TIFACE, "InjectReading", NULL, NULL, "a{sx}", 3,
				  "voltage_mv", (int64_t)v_mv, "power_mw", p_mw,
				  "current_ma", p_mw > 0 ? p_mw / 230 : -p_mw / 230);
}

/* Call a no-argument method; return the D-Bus error name ("" on success) in err. */
static void call0(sd_bus *bus, const char *iface, const char *method, char *err, size_t len)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;

	if (sd_bus_call_method(bus, DEST, PATH, iface, method, &e, NULL, "") < 0)
		snprintf(err, len, "%s", e.name ? e.name : "?");
	else
		err[0] = 0;
	sd_bus_error_free(&e);
}

/*
 * Run fn on a fresh system-bus connection in a child process with user's
 * credentials only; what it writes to out (an error name or "") comes back
 * in err.
 */
typedef void (*as_user_fn)(sd_bus *b, const void *arg, char *out, size_t len);

static void as_user(const char *user, as_user_fn fn, const void *arg, char *err, size_t len)
{
	struct passwd *pw = getpwnam(user);
	int pfd[2];
	pid_t pid;
	ssize_t n;

	err[0] = 0;
	if (!pw || pipe(pfd)) {
		snprintf(err, len, "no user %s", user);
		return;
	}
	pid = fork();
	if (!pid) {
		sd_bus *b = NULL;
		char out[256] = "";

		close(pfd[0]);
		if (setgroups(0, NULL) || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid))
			_exit(1);
		if (sd_bus_open_system(&b) < 0)
			snprintf(out, sizeof(out), "connect failed");
		else
			fn(b, arg, out, sizeof(out));
		if (write(pfd[1], out, strlen(out) + 1) < 0)
			_exit(2);
		_exit(0);
	}
	close(pfd[1]);
	n = read(pfd[0], err, len - 1);
	err[n > 0 ? n : 0] = 0;
	close(pfd[0]);
	waitpid(pid, NULL, 0);
}

static void call0_fn(sd_bus *b, const void *method, char *out, size_t len)
{
	call0(b, IFACE, method, out, len);
}

/* Same, as another user, in a child process with that user's credentials only. */
static void call0_as(const char *user, const char *method, char *err, size_t len)
{
	as_user(user, call0_fn, method, err, len);
}

struct declare_args {
	const char *name;
	uint32_t watts;
};

static void declare_fn(sd_bus *b, const void *arg, char *out, size_t len)
{
	const struct declare_args *d = arg;
	sd_bus_error e = SD_BUS_ERROR_NULL;

	if (sd_bus_call_method(b, DEST, PATH, IFACE, "DeclareApplianceDemand", &e, NULL, "suu", d->name,
			       d->watts, 600) < 0)
		snprintf(out, len, "%s", e.name ? e.name : "?");
	sd_bus_error_free(&e);
}

/* DeclareApplianceDemand(name, watts, 600) as another user; error name or "". */
static void declare_as(const char *user, const char *name, uint32_t watts, char *err, size_t len)
{
	const struct declare_args d = { name, watts };

	as_user(user, declare_fn, &d, err, len);
}

/* ---- external loads: Loads, ReportLoad ---- */

struct load_row {
	char name[32], sw[16], state[16];
	int wanted, shed, reachable;
	int32_t w;
};

/* The Loads property into rows (priority order); the number of rows, or -1. */
static int read_loads(sd_bus *bus, struct load_row *row, int max)
{
	sd_bus_message *reply = NULL;
	const char *name, *sw, *state;
	int n = 0, wanted, shed, reachable;
	int32_t w;

	if (sd_bus_get_property(bus, DEST, PATH, IFACE, "Loads", NULL, &reply, "a(sssbbbi)") < 0 ||
	    sd_bus_message_enter_container(reply, 'a', "(sssbbbi)") < 0) {
		sd_bus_message_unref(reply);
		return -1;
	}
	while (n < max && sd_bus_message_read(reply, "(sssbbbi)", &name, &sw, &state, &wanted, &shed,
					      &reachable, &w) > 0) {
		snprintf(row[n].name, sizeof(row[n].name), "%s", name);
		snprintf(row[n].sw, sizeof(row[n].sw), "%s", sw);
		snprintf(row[n].state, sizeof(row[n].state), "%s", state);
		row[n].wanted = wanted;
		row[n].shed = shed;
		row[n].reachable = reachable;
		row[n].w = w;
		n++;
	}
	sd_bus_message_unref(reply);
	return n;
}

static const struct load_row *find_row(const struct load_row *row, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(row[i].name, name))
			return &row[i];
	return NULL;
}

/* ReportLoad on bus; the error name ("" on success) in err. */
static void report(sd_bus *bus, const char *name, int reachable, int on, int32_t w, char *err, size_t len)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;

	if (sd_bus_call_method(bus, DEST, PATH, IFACE, "ReportLoad", &e, NULL, "sbbiu", name, reachable, on,
			       w, 0) < 0)
		snprintf(err, len, "%s", e.name ? e.name : "?");
	else
		err[0] = 0;
	sd_bus_error_free(&e);
}

struct report_args {
	const char *name;
	int reachable, on;
	int32_t w;
};

static void report_fn(sd_bus *b, const void *arg, char *out, size_t len)
{
	const struct report_args *r = arg;

	report(b, r->name, r->reachable, r->on, r->w, out, len);
}

/* Same as another user, from a process that leaves the bus right after. */
static void report_as(const char *user, const char *name, int reachable, int on, int32_t w, char *err,
		      size_t len)
{
	const struct report_args r = { name, reachable, on, w };

	as_user(user, report_fn, &r, err, len);
}

/* Poll Loads until load `name` is in state `want`. */
static bool wait_load_state(sd_bus *bus, const char *name, const char *want, int timeout_ms)
{
	struct load_row row[8];

	for (int t = 0; t < timeout_ms; t += 10) {
		int n = read_loads(bus, row, 8);
		const struct load_row *r = find_row(row, n, name);

		if (r && !strcmp(r->state, want))
			return true;
		usleep(10000);
	}
	return false;
}

TEST_F(meterd, loads_start_wanted_on_and_external_unreachable)
{
	struct load_row row[8];
	int n = read_loads(self->bus, row, 8);

	ASSERT_EQ(4, n);
	/* priority order: washer (0), pump (1), heater (2), dryer (3) */
	EXPECT_STREQ("washer", row[0].name);
	EXPECT_STREQ("external", row[0].sw);
	EXPECT_STREQ("unreachable", row[0].state);
	EXPECT_EQ(1, row[0].wanted);
	EXPECT_EQ(0, row[0].shed);
	EXPECT_EQ(0, row[0].reachable);
	EXPECT_EQ(-1, row[0].w);
	EXPECT_STREQ("dryer", row[3].name);
	EXPECT_STREQ("unreachable", row[3].state);
	for (int i = 1; i < 3; i++) {
		EXPECT_STREQ("gpio", row[i].sw);
		EXPECT_STREQ("on", row[i].state);
		EXPECT_EQ(1, row[i].wanted);
		EXPECT_EQ(1, row[i].reachable);
		EXPECT_EQ(-1, row[i].w);
	}
	/* within stale_after of the start no alarm yet: the bridge has time for its first report */
	EXPECT_FALSE(alarm_active(self->bus, "load-unreachable"));
}

TEST_F(meterd, report_load_is_for_the_bridge_group_and_external_loads)
{
	char err[128];
	struct load_row row[8];
	const struct load_row *w;
	int n;

	/* daemon is a technician-less appliance user, nobody a technician: neither may report */
	report_as("daemon", "washer", 1, 1, 1700, err, sizeof(err));
	EXPECT_STREQ(SD_BUS_ERROR_ACCESS_DENIED, err);
	report_as("nobody", "washer", 1, 1, 1700, err, sizeof(err));
	EXPECT_STREQ(SD_BUS_ERROR_ACCESS_DENIED, err);
	EXPECT_TRUE(wait_load_state(self->bus, "washer", "unreachable", 100));
	/* root always; names are checked after the authorisation */
	report(self->bus, "pump", 1, 1, 1400, err, sizeof(err));
	EXPECT_STREQ("org.gridmeter.Error.NotExternal", err);
	report(self->bus, "dishwasher", 1, 1, 1400, err, sizeof(err));
	EXPECT_STREQ("org.gridmeter.Error.NoSuchLoad", err);
	report(self->bus, "washer", 1, 1, -7, err, sizeof(err));
	EXPECT_STREQ(SD_BUS_ERROR_INVALID_ARGS, err);
	/* [dbus] bridge_group = sys */
	report_as("sys", "washer", 1, 1, 1700, err, sizeof(err));
	EXPECT_STREQ("", err);
	/* the reporter's process has left the bus: every external load is unreachable at once */
	ASSERT_TRUE(wait_load_state(self->bus, "washer", "unreachable", 3000));
	EXPECT_TRUE(alarm_active(self->bus, "load-unreachable"));
	/* a reporter that stays: reachable, its state and draw shown */
	report(self->bus, "washer", 1, 0, 0, err, sizeof(err));
	EXPECT_STREQ("", err);
	n = read_loads(self->bus, row, 8);
	w = find_row(row, n, "washer");
	ASSERT_NE(NULL, w);
	EXPECT_STREQ("off", w->state);
	EXPECT_EQ(1, w->wanted);
	EXPECT_EQ(1, w->reachable);
	EXPECT_EQ(0, w->w);
	EXPECT_FALSE(alarm_active(self->bus, "load-unreachable"));
	/* the plug says offline (its last will) */
	report(self->bus, "washer", 0, 0, -1, err, sizeof(err));
	EXPECT_STREQ("", err);
	EXPECT_TRUE(wait_load_state(self->bus, "washer", "unreachable", 100));
	EXPECT_TRUE(alarm_active(self->bus, "load-unreachable"));
}

/*
 * The shedding rule with a plug's measured draw, expected from the loads as
 * configured: shed in priority order, each freeing its measured draw (its
 * nominal load when unknown), until the deficit is covered.
 */
TEST_F(meterd, idle_plug_shed_frees_its_measured_draw)
{
	static const struct { const char *name; int32_t nominal_w; } cfg[] = {
		{ "washer", 1800 }, { "pump", 1500 }, { "heater", 3000 },
	};
	const int32_t idle_w = 12, grant_w = 5000, demand_w = 7000;
	int64_t covered = 0;
	bool want_shed[3];
	struct load_row row[8];
	char err[128];
	int n;

	report(self->bus, "washer", 1, 1, idle_w, err, sizeof(err));
	ASSERT_STREQ("", err);
	for (int i = 0; i < 3; i++) {
		want_shed[i] = covered < demand_w - grant_w;
		if (want_shed[i])
			covered += i == 0 ? idle_w : cfg[i].nominal_w;
	}
	ASSERT_TRUE(want_shed[2]);	/* the idle plug freed too little: all three go */
	ASSERT_LE(0, inject(self->bus, 230000, (int64_t)demand_w * 1000));
	usleep(300000);
	n = read_loads(self->bus, row, 8);
	ASSERT_EQ(4, n);
	for (int i = 0; i < 3; i++) {
		const struct load_row *r = find_row(row, n, cfg[i].name);

		ASSERT_NE(NULL, r);
		EXPECT_EQ(want_shed[i], r->shed) TH_LOG("%s", cfg[i].name);
		EXPECT_EQ(!want_shed[i], r->wanted) TH_LOG("%s", cfg[i].name);
	}
	/* the plug has not followed yet: it still reports on */
	EXPECT_TRUE(wait_load_state(self->bus, "washer", "on", 100));
	report(self->bus, "washer", 1, 0, 0, err, sizeof(err));
	EXPECT_TRUE(wait_load_state(self->bus, "washer", "off", 100));
	EXPECT_FALSE(alarm_active(self->bus, "load-mismatch"));
	{
		/* figure for Documentation/meterd.md: a report's round trip, authorised already */
		struct timespec t0, t1;
		const int calls = 200;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < calls; i++)
			report(self->bus, "washer", 1, 0, i % 3, err, sizeof(err));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		EXPECT_STREQ("", err);
		TH_LOG("ReportLoad round trip: %lld us on average over %d calls",
		       ((t1.tv_sec - t0.tv_sec) * 1000000000LL + t1.tv_nsec - t0.tv_nsec) / 1000 / calls, calls);
	}
}

/* A reporter leaving the bus takes the loads it reported on, no others. */
TEST_F(meterd, a_reporter_leaving_takes_only_its_loads)
{
	sd_bus *bridge = NULL;
	char err[128];

	ASSERT_LE(0, sd_bus_open_system(&bridge));
	report(bridge, "washer", 1, 1, 1700, err, sizeof(err));
	ASSERT_STREQ("", err);
	report(bridge, "dryer", 1, 0, 0, err, sizeof(err));
	ASSERT_STREQ("", err);
	/* a technician's one-off report on the dryer, from a process that then exits */
	report_as("sys", "dryer", 1, 0, 0, err, sizeof(err));
	ASSERT_STREQ("", err);
	EXPECT_TRUE(wait_load_state(self->bus, "dryer", "unreachable", 3000));
	EXPECT_TRUE(wait_load_state(self->bus, "washer", "on", 100));
	/* the bridge still reports the dryer: back at once */
	report(bridge, "dryer", 1, 0, 0, err, sizeof(err));
	EXPECT_TRUE(wait_load_state(self->bus, "dryer", "off", 100));
	EXPECT_FALSE(alarm_active(self->bus, "load-unreachable"));
	/* the bridge stops: both */
	sd_bus_flush_close_unref(bridge);
	EXPECT_TRUE(wait_load_state(self->bus, "washer", "unreachable", 3000));
	EXPECT_TRUE(wait_load_state(self->bus, "dryer", "unreachable", 3000));
	EXPECT_TRUE(alarm_active(self->bus, "load-unreachable"));
	EXPECT_TRUE(wait_load_state(self->bus, "pump", "on", 100));
}

TEST_F(meterd, appliance_group_may_only_declare_demand)
{
	sd_bus_message *reply = NULL;
	const char *name;
	uint32_t w, washer = 0;
	char err[128];

	/* [dbus] appliance_group = daemon */
	declare_as("daemon", "washer", 1800, err, sizeof(err));
	EXPECT_STREQ("", err);
	call0_as("daemon", "Disconnect", err, sizeof(err));
	EXPECT_STREQ(SD_BUS_ERROR_ACCESS_DENIED, err);
	/* bin is in neither group */
	declare_as("bin", "dryer", 2000, err, sizeof(err));
	EXPECT_STREQ(SD_BUS_ERROR_ACCESS_DENIED, err);
	ASSERT_LE(0, sd_bus_get_property(self->bus, DEST, PATH, IFACE, "DeclaredDemand", NULL, &reply,
					 "a{su}"));
	ASSERT_LE(0, sd_bus_message_enter_container(reply, 'a', "{su}"));
	while (sd_bus_message_read(reply, "{su}", &name, &w) > 0) {
		EXPECT_STREQ("washer", name);
		washer = w;
	}
	sd_bus_message_unref(reply);
	EXPECT_EQ(1800u, washer);
}

TEST_F(meterd, properties_follow_readings)
{
	uint32_t v = 0;
	char *s;

	ASSERT_EQ(0, inject(self->bus, 231500, 1200000) < 0);
	ASSERT_LE(0, get_u32(self->bus, "Voltage", &v));
	EXPECT_EQ(231500u, v);
	EXPECT_EQ(1200000, get_x(self->bus, "ActivePower"));
	EXPECT_TRUE(str_is(get_s(self->bus, "MainRelay"), "closed"));
	EXPECT_TRUE(str_is(get_s(self->bus, "ProtectionState"), "normal"));
	EXPECT_TRUE(str_is(get_s(self->bus, "Currency"), "GBP"));
	EXPECT_TRUE(str_is(get_s(self->bus, "Authorization"), "group"));
	s = get_s(self->bus, "UplinkState");
	EXPECT_NE(NULL, s);
	free(s);
	/* no [uplink]: [meter] clock = system, trusted as it is */
	{
		int trusted = 0;

		ASSERT_LE(0, sd_bus_get_property_trivial(self->bus, DEST, PATH, IFACE, "ClockTrusted", NULL,
							 'b', &trusted));
		EXPECT_TRUE(trusted);
	}
	EXPECT_TRUE(str_is(get_s(self->bus, "ClockSource"), "system"));
	EXPECT_EQ(0, get_x(self->bus, "ClockOffset"));
}

TEST_F(meterd, price_so_far_matches_registers)
{
	uint64_t imp;
	int64_t start, price, days, expect;
	struct tm a, b;
	time_t now, st;

	ASSERT_LE(0, inject(self->bus, 230000, 3600000));	/* 3.6 kW = 1 Wh per second */
	usleep(1500000);
	/* the register and the price of the same sample: read again if a sample came between */
	for (int tries = 0;; tries++) {
		uint64_t again;

		imp = get_t(self->bus, "ImportEnergy");
		price = get_x(self->bus, "PriceSoFar");
		again = get_t(self->bus, "ImportEnergy");
		if (again == imp)
			break;
		ASSERT_GT(20, tries);
	}
	start = get_x(self->bus, "BillingPeriodStart");
	EXPECT_LT(0u, imp);
	EXPECT_GE(2000u, imp);
	/* independent: local calendar days in Europe/London since the period start */
	setenv("TZ", "Europe/London", 1);
	tzset();
	now = time(NULL);
	st = (time_t)start;
	localtime_r(&st, &a);
	localtime_r(&now, &b);
	EXPECT_EQ(0, a.tm_hour);
	EXPECT_EQ(1, a.tm_mday);
	days = b.tm_mday - a.tm_mday + 1;
	/* 40.000 p/day and 25.500 p/kWh, in milli-pence; round half up */
	expect = (days * 40000 * 1000000 + (int64_t)imp * 25500 + 500000) / 1000000;
	EXPECT_EQ(expect, price);
}

TEST_F(meterd, invalid_args_name_the_argument)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *m = NULL;

	EXPECT_GT(0, sd_bus_call_method(self->bus, DEST, PATH, IFACE, "GetLoadProfile", &e, NULL,
					"xx", (int64_t)10, (int64_t)5));
	EXPECT_TRUE(sd_bus_error_has_name(&e, SD_BUS_ERROR_INVALID_ARGS));
	EXPECT_EQ(0, strncmp(e.message, "from:", 5)) TH_LOG("%s", e.message);
	sd_bus_error_free(&e);

	EXPECT_GT(0, sd_bus_call_method(self->bus, DEST, PATH, IFACE, "DeclareApplianceDemand", &e,
					NULL, "suu", "bad name!", 100, 0));
	EXPECT_TRUE(sd_bus_error_has_name(&e, SD_BUS_ERROR_INVALID_ARGS));
	EXPECT_EQ(0, strncmp(e.message, "name:", 5)) TH_LOG("%s", e.message);
	sd_bus_error_free(&e);

	EXPECT_GT(0, sd_bus_call_method(self->bus, DEST, PATH, IFACE, "DeclareApplianceDemand", &e,
					NULL, "suu", "oven", 200000, 0));
	EXPECT_EQ(0, strncmp(e.message, "watts:", 6)) TH_LOG("%s", e.message);
	sd_bus_error_free(&e);

	ASSERT_LE(0, sd_bus_message_new_method_call(self->bus, &m, DEST, PATH, IFACE, "SetTariff"));
	ASSERT_LE(0, sd_bus_message_append(m, "a{sv}", 1, "rate", "u", 25));
	EXPECT_GT(0, sd_bus_call(self->bus, m, 0, &e, NULL));
	EXPECT_TRUE(sd_bus_error_has_name(&e, SD_BUS_ERROR_INVALID_ARGS));
	EXPECT_NE(NULL, strstr(e.message, "tariff['rate']")) TH_LOG("%s", e.message);
	sd_bus_error_free(&e);
	sd_bus_message_unref(m);

	EXPECT_GT(0, sd_bus_call_method(self->bus, DEST, PATH, IFACE, "SetTariff", &e, NULL, "a{sv}", 4,
					"type", "s", "tou", "rates", "s", "day:30, night:10",
					"weekday", "s", "00:00-07:00 night, 07:00-24:00 dya",
					"weekend", "s", "00:00-24:00 night"));
	EXPECT_TRUE(sd_bus_error_has_name(&e, SD_BUS_ERROR_INVALID_ARGS));
	EXPECT_NE(NULL, strstr(e.message, "tariff['weekday']")) TH_LOG("%s", e.message);
	EXPECT_NE(NULL, strstr(e.message, "dya")) TH_LOG("%s", e.message);
	sd_bus_error_free(&e);

	EXPECT_GT(0, sd_bus_call_method(self->bus, DEST, PATH, IFACE, "SetTariff", &e, NULL, "a{sv}", 1,
					"colour", "s", "green"));
	EXPECT_NE(NULL, strstr(e.message, "unknown key 'colour'")) TH_LOG("%s", e.message);
	sd_bus_error_free(&e);
	/* nothing changed */
	EXPECT_TRUE(str_is(get_s(self->bus, "CurrentTariffPeriod"), "flat"));
}

TEST_F(meterd, unauthorised_callers_get_access_denied)
{
	char err[128];

	/* daemon (uid 1) is not in nogroup */
	call0_as("daemon", "Disconnect", err, sizeof(err));
	EXPECT_STREQ(SD_BUS_ERROR_ACCESS_DENIED, err);
	call0_as("daemon", "ClearLockout", err, sizeof(err));
	EXPECT_STREQ(SD_BUS_ERROR_ACCESS_DENIED, err);
	call0_as("daemon", "SelfTest", err, sizeof(err));
	EXPECT_STREQ(SD_BUS_ERROR_ACCESS_DENIED, err);
	EXPECT_TRUE(str_is(get_s(self->bus, "RemoteState"), "connected"));
	EXPECT_TRUE(str_is(get_s(self->bus, "MainRelay"), "closed"));
	/* nobody's primary group is nogroup: a technician */
	call0_as("nobody", "Disconnect", err, sizeof(err));
	EXPECT_STREQ("", err);
	EXPECT_TRUE(str_is(get_s(self->bus, "RemoteState"), "disconnected"));
	/* reading stays open to everyone */
	EXPECT_TRUE(str_is(get_s(self->bus, "MainRelay"), "open"));
}

TEST_F(meterd, reconnect_needs_arm_then_local_confirmation)
{
	char err[128];

	call0(self->bus, IFACE, "Disconnect", err, sizeof(err));
	ASSERT_STREQ("", err);
	EXPECT_TRUE(str_is(get_s(self->bus, "MainRelay"), "open"));
	call0(self->bus, IFACE, "ConfirmReconnect", err, sizeof(err));
	EXPECT_STREQ("org.gridmeter.Meter1.Error.WrongState", err);
	call0(self->bus, IFACE, "ArmReconnect", err, sizeof(err));
	EXPECT_STREQ("", err);
	EXPECT_TRUE(str_is(get_s(self->bus, "RemoteState"), "armed"));
	EXPECT_TRUE(str_is(get_s(self->bus, "MainRelay"), "open"));
	call0(self->bus, TIFACE, "PressButton", err, sizeof(err));	/* local push button */
	EXPECT_STREQ("", err);
	EXPECT_TRUE(str_is(get_s(self->bus, "MainRelay"), "closed"));
	EXPECT_TRUE(str_is(get_s(self->bus, "RemoteState"), "connected"));
}

TEST_F(meterd, trip_reclose_and_lockout)
{
	char err[128];

	ASSERT_LE(0, inject(self->bus, 230000, 500000));
	for (int trip = 1; trip <= 3; trip++) {
		ASSERT_LE(0, sd_bus_call_method(self->bus, DEST, PATH, TIFACE, "InjectEvent", NULL, NULL,
						"s", "over-voltage"));
		ASSERT_TRUE(wait_str(self->bus, "ProtectionState", trip == 3 ? "lockout" : "tripped", 1000));
		ASSERT_TRUE(str_is(get_s(self->bus, "MainRelay"), "open"));
		EXPECT_TRUE(alarm_active(self->bus, "over-voltage"));
		EXPECT_EQ((uint64_t)trip, get_t(self->bus, "TripCount"));
		if (trip == 3)
			break;
		ASSERT_TRUE(str_is(get_s(self->bus, "ProtectionState"), "tripped"));
		/* normal voltage for the reclose delay (1 s) */
		ASSERT_LE(0, inject(self->bus, 230000, 0));
		usleep(1400000);
		ASSERT_TRUE(str_is(get_s(self->bus, "MainRelay"), "closed"));
	}
	ASSERT_TRUE(str_is(get_s(self->bus, "ProtectionState"), "lockout"));
	EXPECT_TRUE(alarm_active(self->bus, "lockout"));
	usleep(1400000);
	EXPECT_TRUE(str_is(get_s(self->bus, "MainRelay"), "open"));
	call0_as("daemon", "ClearLockout", err, sizeof(err));
	EXPECT_STREQ(SD_BUS_ERROR_ACCESS_DENIED, err);
	call0(self->bus, IFACE, "ClearLockout", err, sizeof(err));
	EXPECT_STREQ("", err);
	usleep(1400000);
	EXPECT_TRUE(str_is(get_s(self->bus, "MainRelay"), "closed"));
	EXPECT_FALSE(alarm_active(self->bus, "lockout"));
}

TEST_F(meterd, deficit_sheds_and_restores_loads)
{
	sd_bus_message *reply = NULL;
	const char *name;
	int closed, pump = -1, heater = -1;

	/* grant 5000 W, demand 7000 W: shed pump (1500) and heater (3000) */
	ASSERT_LE(0, inject(self->bus, 230000, 7000000));
	usleep(300000);
	ASSERT_LE(0, sd_bus_get_property(self->bus, DEST, PATH, IFACE, "LoadRelays", NULL, &reply, "a{sb}"));
	ASSERT_LE(0, sd_bus_message_enter_container(reply, 'a', "{sb}"));
	while (sd_bus_message_read(reply, "{sb}", &name, &closed) > 0)
		if (!strcmp(name, "pump") || !strcmp(name, "heater"))	/* not the external loads */
			*(strcmp(name, "pump") ? &heater : &pump) = closed;
	sd_bus_message_unref(reply);
	EXPECT_EQ(0, pump);
	EXPECT_EQ(0, heater);
	EXPECT_TRUE(alarm_active(self->bus, "supply-deficit"));
	/* the server grants more: both come back, one per restore delay */
	ASSERT_LE(0, sd_bus_call_method(self->bus, DEST, PATH, TIFACE, "SetGridAllocation", NULL, NULL,
					"x", (int64_t)20000));
	ASSERT_LE(0, inject(self->bus, 230000, 2500000));
	usleep(2800000);
	reply = NULL;
	ASSERT_LE(0, sd_bus_get_property(self->bus, DEST, PATH, IFACE, "LoadRelays", NULL, &reply, "a{sb}"));
	ASSERT_LE(0, sd_bus_message_enter_container(reply, 'a', "{sb}"));
	while (sd_bus_message_read(reply, "{sb}", &name, &closed) > 0)
		if (!strcmp(name, "pump") || !strcmp(name, "heater"))	/* not the external loads */
			*(strcmp(name, "pump") ? &heater : &pump) = closed;
	sd_bus_message_unref(reply);
	EXPECT_EQ(1, pump);
	EXPECT_EQ(1, heater);
}

static int count_changed(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	(void)m;
	(void)e;
	(*(int *)userdata)++;
	return 0;
}

TEST_F(meterd, properties_changed_is_rate_bounded)
{
	sd_bus *mon;
	int n = 0;
	struct timespec t0, t1;

	ASSERT_LE(0, sd_bus_open_system(&mon));
	ASSERT_LE(0, sd_bus_match_signal(mon, NULL, DEST, PATH, "org.freedesktop.DBus.Properties",
					 "PropertiesChanged", count_changed, &n));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* 40 distinct readings within about 2 s; property_interval_ms = 500 */
	for (int i = 0; i < 40; i++) {
		ASSERT_LE(0, inject(self->bus, 230000 + (uint32_t)i, 1000000 + i));
		usleep(50000);
		while (sd_bus_process(mon, NULL) > 0)
			;
	}
	for (int i = 0; i < 20; i++) {
		sd_bus_wait(mon, 50000);
		while (sd_bus_process(mon, NULL) > 0)
			;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	{
		double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;

		EXPECT_LE(1, n);
		EXPECT_GE((int)(secs / 0.5) + 1, n) TH_LOG("%d signals in %.2f s", n, secs);
	}
	sd_bus_flush_close_unref(mon);
}

TEST_F(meterd, tariff_survives_restart_and_kill_9_keeps_energy)
{
	uint64_t before, after;

	ASSERT_LE(0, sd_bus_call_method(self->bus, DEST, PATH, IFACE, "SetTariff", NULL, NULL, "a{sv}", 5,
					"type", "s", "tou", "rates", "s", "day:30, night:10.5",
					"weekday", "s", "00:00-07:00 night, 07:00-24:00 day",
					"weekend", "s", "00:00-24:00 night", "currency", "s", "EUR"));
	EXPECT_TRUE(str_is(get_s(self->bus, "Currency"), "EUR"));
	ASSERT_LE(0, inject(self->bus, 230000, 3600000));
	usleep(1200000);
	before = get_t(self->bus, "ImportEnergy");
	ASSERT_LT(0u, before);
	stop_meterd(self->meterd_pid, SIGKILL);
	self->meterd_pid = start_meterd(self->dir, self->conf);
	usleep(100000);
	ASSERT_EQ(0, wait_for_name(self->bus, 5000));
	after = get_t(self->bus, "ImportEnergy");
	/* everything up to the last sample (100 ms at 3.6 kW = 100 mWh) survives */
	EXPECT_LE(before, after + 100);
	EXPECT_GE(before + 300, after);
	EXPECT_TRUE(str_is(get_s(self->bus, "Currency"), "EUR"));
	EXPECT_TRUE(str_is(get_s(self->bus, "ProtectionState"), "normal"));
}

/* Attribute attr of the tag starting at tag (up to '>'), or "". */
static void tag_attr(const char *tag, const char *attr, char *out, size_t len)
{
	const char *end = strchr(tag, '>'), *a;
	char key[32];

	snprintf(key, sizeof(key), " %s=\"", attr);
	out[0] = 0;
	a = strstr(tag, key);
	if (!a || (end && a > end))
		return;
	a += strlen(key);
	snprintf(out, len, "%.*s", (int)(strcspn(a, "\"")), a);
}

/* One line per member and argument of interface org.gridmeter.Meter1, comments ignored. */
static void members(const char *xml, char *out, size_t len)
{
	const char *s = strstr(xml, "<interface name=\"org.gridmeter.Meter1\">");
	const char *end = s ? strstr(s, "</interface>") : NULL;
	size_t n = 0;

	out[0] = 0;
	while (s && s < end && (s = strchr(s + 1, '<')) && s < end) {
		static const char *const kinds[] = { "property", "method", "signal", "arg" };
		char name[64], type[64], dir[8];

		if (!strncmp(s, "<!--", 4)) {
			s = strstr(s, "-->");
			continue;
		}
		for (size_t k = 0; k < 4; k++) {
			size_t kl = strlen(kinds[k]);

			if (strncmp(s + 1, kinds[k], kl) || (s[1 + kl] != ' ' && s[1 + kl] != '>'))
				continue;
			tag_attr(s, "name", name, sizeof(name));
			tag_attr(s, "type", type, sizeof(type));
			tag_attr(s, "direction", dir, sizeof(dir));
			n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s %s %s %s\n", kinds[k],
					      name, type, dir);
		}
	}
}

TEST_F(meterd, introspection_matches_documentation)
{
	sd_bus_message *reply = NULL;
	const char *xml;
	static char live[8192], doc[8192], file[32768];
	FILE *f = fopen("Documentation/org.gridmeter.Meter1.xml", "r");
	size_t n;

	ASSERT_NE(NULL, f);
	n = fread(file, 1, sizeof(file) - 1, f);
	file[n] = 0;
	fclose(f);
	ASSERT_LE(0, sd_bus_call_method(self->bus, DEST, PATH, "org.freedesktop.DBus.Introspectable",
					"Introspect", NULL, &reply, ""));
	ASSERT_LE(0, sd_bus_message_read(reply, "s", &xml));
	members(xml, live, sizeof(live));
	members(file, doc, sizeof(doc));
	sd_bus_message_unref(reply);
	EXPECT_LT(40u, strlen(live) / 20);	/* the parser found the members */
	EXPECT_STREQ(live, doc);
}

TEST_F(meterd, losing_the_bus_exits_with_failure)
{
	int status = 0;
	pid_t r = 0;

	stop_meterd(self->dbus_pid, SIGTERM);	/* the system bus goes away */
	self->dbus_pid = -1;
	for (int t = 0; t < 300 && !r; t++) {
		r = waitpid(self->meterd_pid, &status, WNOHANG);
		usleep(10000);
	}
	ASSERT_EQ(self->meterd_pid, r);
	self->meterd_pid = -1;
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(1, WEXITSTATUS(status));	/* Restart=on-failure brings it back */
}

/* ---- polkit path: a fake org.freedesktop.PolicyKit1 on the private bus ---- */

/* Grants org.gridmeter.meter.* to uid 0 only; appends "action uid result" to log. */
static int fake_check(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	const char *log = userdata, *kind, *key, *name = NULL, *action;
	sd_bus_message *reply = NULL;
	uint32_t uid = UINT32_MAX;
	int r, ok;
	FILE *f;

	(void)e;
	r = sd_bus_message_enter_container(m, 'r', "sa{sv}");
	if (r >= 0)
		r = sd_bus_message_read(m, "s", &kind);
	if (r >= 0)
		r = sd_bus_message_enter_container(m, 'a', "{sv}");
	while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		r = sd_bus_message_read(m, "s", &key);
		if (r >= 0 && !strcmp(key, "name"))
			r = sd_bus_message_read(m, "v", "s", &name);
		else if (r >= 0)
			r = sd_bus_message_skip(m, "v");
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = sd_bus_message_read(m, "s", &action);
	if (r < 0 || strcmp(kind, "system-bus-name") || !name)
		return sd_bus_reply_method_errorf(m, SD_BUS_ERROR_INVALID_ARGS, "bad subject");
	if (sd_bus_call_method(sd_bus_message_get_bus(m), "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "GetConnectionUnixUser", NULL, &reply, "s",
			       name) >= 0)
		sd_bus_message_read(reply, "u", &uid);
	sd_bus_message_unref(reply);
	ok = uid == 0 && !strncmp(action, "org.gridmeter.meter.", 20);
	f = fopen(log, "a");
	if (f) {
		fprintf(f, "%s %u %s\n", action, uid, ok ? "yes" : "no");
		fclose(f);
	}
	return sd_bus_reply_method_return(m, "(bba{ss})", ok, 0, 0);
}

static const sd_bus_vtable fake_polkit_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("CheckAuthorization", "(sa{sv})sa{ss}us", "(bba{ss})", fake_check, 0),
	SD_BUS_VTABLE_END
};

static pid_t start_fake_polkit(const char *log)
{
	pid_t pid = fork();

	if (!pid) {
		sd_bus *b = NULL;

		if (sd_bus_open_system(&b) < 0 ||
		    sd_bus_add_object_vtable(b, NULL, "/org/freedesktop/PolicyKit1/Authority",
					     "org.freedesktop.PolicyKit1.Authority", fake_polkit_vtable,
					     (void *)log) < 0 ||
		    sd_bus_request_name(b, "org.freedesktop.PolicyKit1", 0) < 0)
			_exit(1);
		for (;;) {
			if (sd_bus_process(b, NULL) < 0)
				_exit(2);
			sd_bus_wait(b, UINT64_MAX);
		}
	}
	return pid;
}

FIXTURE(polkit) {
	char dir[64];
	char conf[96];
	char log[96];
	pid_t dbus_pid, polkit_pid, meterd_pid;
	sd_bus *bus;
};

FIXTURE_SETUP(polkit)
{
	char path[128], text[1024];

	if (geteuid() != 0)
		SKIP(return, "needs root to call as other users");
	if (access("/usr/bin/dbus-daemon", X_OK))
		SKIP(return, "no dbus-daemon");
	strcpy(self->dir, "/tmp/agent_test_dbus.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(path, sizeof(path), "%s/state", self->dir);
	ASSERT_EQ(0, mkdir(path, 0700));
	snprintf(path, sizeof(path), "%s/run", self->dir);
	ASSERT_EQ(0, mkdir(path, 0700));
	snprintf(self->conf, sizeof(self->conf), "%s/meterd.conf", self->dir);
	snprintf(text, sizeof(text), meterd_conf, self->dir, self->dir);
	/* authorization = auto (the default) must find the fake polkit */
	*strstr(text, "technician_group") = 0;
	write_file(self->conf, text);
	snprintf(self->log, sizeof(self->log), "%s/polkit.log", self->dir);
	self->dbus_pid = privbus_start(self->dir);
	ASSERT_LT(0, self->dbus_pid);
	self->polkit_pid = start_fake_polkit(self->log);
	ASSERT_EQ(0, privbus_wait_name("org.freedesktop.PolicyKit1", 5000));
	self->meterd_pid = start_meterd(self->dir, self->conf);
	ASSERT_LE(0, sd_bus_open_system(&self->bus));
	ASSERT_EQ(0, wait_for_name(self->bus, 5000));
}

FIXTURE_TEARDOWN(polkit)
{
	char cmd[128];

	if (!self->dir[0])
		return;
	sd_bus_flush_close_unref(self->bus);
	stop_meterd(self->meterd_pid, SIGTERM);
	stop_meterd(self->polkit_pid, SIGKILL);
	stop_meterd(self->dbus_pid, SIGTERM);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		TH_LOG("cleanup of %s failed", self->dir);
}

TEST_F(polkit, methods_are_checked_by_polkit)
{
	char err[128], line[256], all[1024] = "";
	FILE *f;

	EXPECT_TRUE(str_is(get_s(self->bus, "Authorization"), "polkit"));
	/* nobody is in nogroup, but polkit (the fake) only allows root */
	call0_as("nobody", "Disconnect", err, sizeof(err));
	EXPECT_STREQ(SD_BUS_ERROR_ACCESS_DENIED, err);
	EXPECT_TRUE(str_is(get_s(self->bus, "RemoteState"), "connected"));
	call0(self->bus, IFACE, "Disconnect", err, sizeof(err));
	EXPECT_STREQ("", err);
	EXPECT_TRUE(str_is(get_s(self->bus, "RemoteState"), "disconnected"));
	f = fopen(self->log, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		strncat(all, line, sizeof(all) - strlen(all) - 1);
	fclose(f);
	EXPECT_NE(NULL, strstr(all, "org.gridmeter.meter.disconnect 65534 no\n"));
	EXPECT_NE(NULL, strstr(all, "org.gridmeter.meter.disconnect 0 yes\n"));
}

TEST_F(polkit, report_load_is_checked_by_polkit_once_per_reporter)
{
	char err[128], line[256];
	int checks = 0;
	FILE *f;

	report_as("nobody", "washer", 1, 1, 900, err, sizeof(err));
	EXPECT_STREQ(SD_BUS_ERROR_ACCESS_DENIED, err);
	EXPECT_TRUE(wait_load_state(self->bus, "washer", "unreachable", 100));
	for (int i = 0; i < 3; i++) {
		report(self->bus, "washer", 1, 1, 900 + i, err, sizeof(err));
		EXPECT_STREQ("", err);
	}
	EXPECT_TRUE(wait_load_state(self->bus, "washer", "on", 100));
	f = fopen(self->log, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		EXPECT_EQ(NULL, strstr(line, "org.gridmeter.meter.report-load 0 no"));
		checks += strstr(line, "org.gridmeter.meter.report-load ") != NULL;
	}
	fclose(f);
	/* nobody once, then root's connection once: a unique name is authorised for good */
	EXPECT_EQ(2, checks);
}

/* ---- the production D-Bus policy (agent/system/org.gridmeter.Meter1.conf) ---- */

FIXTURE(policy) {
	char dir[64];
	char conf[96];
	pid_t dbus_pid, meterd_pid;
	sd_bus *bus;
};

FIXTURE_SETUP(policy)
{
	char path[128], text[1024], inc[4096];

	if (geteuid() != 0)
		SKIP(return, "needs root to call as other users");
	if (access("/usr/bin/dbus-daemon", X_OK))
		SKIP(return, "no dbus-daemon");
	ASSERT_NE(NULL, realpath("agent/system/org.gridmeter.Meter1.conf", inc));
	strcpy(self->dir, "/tmp/agent_test_dbus.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(path, sizeof(path), "%s/state", self->dir);
	ASSERT_EQ(0, mkdir(path, 0700));
	snprintf(path, sizeof(path), "%s/run", self->dir);
	ASSERT_EQ(0, mkdir(path, 0700));
	snprintf(self->conf, sizeof(self->conf), "%s/meterd.conf", self->dir);
	snprintf(text, sizeof(text), meterd_conf, self->dir, self->dir);
	write_file(self->conf, text);
	self->dbus_pid = privbus_start_system(self->dir, inc, DEST);
	ASSERT_LT(0, self->dbus_pid);
	self->meterd_pid = start_meterd(self->dir, self->conf);
	ASSERT_LE(0, sd_bus_open_system(&self->bus));
	ASSERT_EQ(0, wait_for_name(self->bus, 5000));
}

FIXTURE_TEARDOWN(policy)
{
	char cmd[128];

	if (!self->dir[0])
		return;
	sd_bus_flush_close_unref(self->bus);
	stop_meterd(self->meterd_pid, SIGTERM);
	stop_meterd(self->dbus_pid, SIGTERM);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		TH_LOG("cleanup of %s failed", self->dir);
}

struct iface_args {
	const char *iface, *method;
};

static void iface_fn(sd_bus *b, const void *arg, char *out, size_t len)
{
	const struct iface_args *a = arg;
	const char *iface = a->iface, *method = a->method;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r;

	if (!strcmp(method, "Get"))
		r = sd_bus_call_method(b, DEST, PATH, iface, method, &e, NULL, "ss", IFACE, "Voltage");
	else if (!strcmp(method, "ReportLoad"))
		r = sd_bus_call_method(b, DEST, PATH, iface, method, &e, NULL, "sbbiu", "washer", 1, 1, 100, 0);
	else if (!strcmp(method, "Set"))
		r = sd_bus_call_method(b, DEST, PATH, iface, method, &e, NULL, "ssv", IFACE, "Voltage", "u", 1);
	else
		r = sd_bus_call_method(b, DEST, PATH, iface, method, &e, NULL, "");
	if (r < 0)
		snprintf(out, len, "%s: %s", e.name ? e.name : "?", e.message ? e.message : "");
	sd_bus_error_free(&e);
}

/* As user `user`: call iface.method (no arguments, ReportLoad) or Properties.Get/Set; error or "". */
static void call_iface_as(const char *user, const char *iface, const char *method, char *err,
			  size_t len)
{
	const struct iface_args a = { iface, method };

	as_user(user, iface_fn, &a, err, len);
}

TEST_F(policy, production_policy_opens_reading_and_closes_test_hooks)
{
	char err[256];

	call_iface_as("daemon", "org.freedesktop.DBus.Properties", "Get", err, sizeof(err));
	EXPECT_STREQ("", err);
	call_iface_as("daemon", "org.freedesktop.DBus.Introspectable", "Introspect", err, sizeof(err));
	EXPECT_STREQ("", err);
	/* the bus itself refuses these */
	call_iface_as("daemon", TIFACE, "PressButton", err, sizeof(err));
	EXPECT_EQ(0, strncmp(err, SD_BUS_ERROR_ACCESS_DENIED, strlen(SD_BUS_ERROR_ACCESS_DENIED))) TH_LOG("%s", err);
	EXPECT_NE(NULL, strstr(err, "Rejected send message")) TH_LOG("%s", err);
	call_iface_as("daemon", "org.freedesktop.DBus.Properties", "Set", err, sizeof(err));
	EXPECT_NE(NULL, strstr(err, "Rejected send message")) TH_LOG("%s", err);
	/* methods reach meterd, which refuses a non-technician itself */
	call_iface_as("daemon", IFACE, "Disconnect", err, sizeof(err));
	EXPECT_NE(NULL, strstr(err, "is not authorised for org.gridmeter.meter.disconnect")) TH_LOG("%s", err);
	call_iface_as("daemon", IFACE, "ReportLoad", err, sizeof(err));
	EXPECT_NE(NULL, strstr(err, "is not authorised for org.gridmeter.meter.report-load")) TH_LOG("%s", err);
	/* [dbus] bridge_group = sys: the bus lets it through and meterd accepts it */
	call_iface_as("sys", IFACE, "ReportLoad", err, sizeof(err));
	EXPECT_STREQ("", err);
	EXPECT_TRUE(str_is(get_s(self->bus, "RemoteState"), "connected"));
}

/* ---- start-up refusal ---- */

TEST(bad_config_refuses_to_start_naming_file_line_and_key)
{
	char dir[] = "/tmp/agent_test_dbus.XXXXXX", conf[96], log[96], buf[512] = "";
	int status = 0;
	pid_t pid;
	FILE *f;

	ASSERT_NE(NULL, mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/meterd.conf", dir);
	snprintf(log, sizeof(log), "%s/stderr", dir);
	write_file(conf, "[meter]\ntimezone = Europe/London\n\n[protection]\nreclose_delay = soon\n");
	pid = fork();
	if (!pid) {
		char *argv[] = { "meterd", "-c", conf, NULL };

		if (!freopen(log, "w", stderr))
			_exit(3);
		exit(meterd_main(3, argv));	/* exit(), like main(): flushes stderr */
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(78, WEXITSTATUS(status));	/* EX_CONFIG: systemd does not restart it */
	f = fopen(log, "r");
	ASSERT_NE(NULL, f);
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, "meterd.conf:5: [protection] key 'reclose_delay': 'soon' is not a whole number"))
		TH_LOG("%s", buf);
	unlink(log);
	unlink(conf);
	rmdir(dir);
}

TEST_F(meterd, driver_counters_cover_a_crash_and_restart)
{
	uint64_t before, after;
	int64_t ctr = 7200000;	/* mJ, since the (simulated) driver was bound */

	for (int i = 0; i < 3; i++, ctr += 36000)	/* 10 mWh per step */
		ASSERT_LE(0, sd_bus_call_method(self->bus, DEST, PATH, TIFACE, "InjectReading", NULL, NULL,
						"a{sx}", 3, "voltage_mv", (int64_t)230000, "import_mj", ctr,
						"export_mj", (int64_t)0));
	usleep(300000);		/* a few samples of the same counters: no energy */
	before = get_t(self->bus, "ImportEnergy");
	EXPECT_EQ(20u, before);
	stop_meterd(self->meterd_pid, SIGKILL);
	/* while meterd is down the driver counts 1 kWh more */
	ctr += 3600000000ll;
	self->meterd_pid = start_meterd(self->dir, self->conf);
	ASSERT_EQ(0, wait_for_name(self->bus, 5000));
	ASSERT_LE(0, sd_bus_call_method(self->bus, DEST, PATH, TIFACE, "InjectReading", NULL, NULL,
					"a{sx}", 3, "voltage_mv", (int64_t)230000, "import_mj", ctr,
					"export_mj", (int64_t)0));
	after = get_t(self->bus, "ImportEnergy");
	/* the counters moved 10 mWh after the last injection, then 1 kWh while meterd was down */
	EXPECT_EQ(before + 10 + 1000000, after);
}

/* Whether a line containing s is in meterd's journal (stderr, in the test directory). */
static bool journal_has(const char *dir, const char *s)
{
	char path[128], line[1024];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/meterd.log", dir);
	f = fopen(path, "r");
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, s) != NULL;
	if (f)
		fclose(f);
	return found;
}

/*
 * systemctl stop / poweroff: SIGTERM. The trip thread runs (the replay
 * sensor has an event fd): had it not inherited the blocked mask, the
 * kernel could give it the signal, whose default action kills meterd
 * without a save. The runtime directory is then gone (a reboot): the
 * energy must come from the durable snapshot of the stop.
 */
TEST_F(meterd, sigterm_saves_a_clean_snapshot_before_exiting)
{
	uint64_t before, after;
	char live[128];
	int status = 0;

	ASSERT_LE(0, inject(self->bus, 230000, 3600000));
	usleep(1500000);
	before = get_t(self->bus, "ImportEnergy");
	ASSERT_LT(0u, before);
	ASSERT_EQ(0, kill(self->meterd_pid, SIGTERM));
	ASSERT_EQ(self->meterd_pid, waitpid(self->meterd_pid, &status, 0));
	self->meterd_pid = 0;
	EXPECT_TRUE(WIFEXITED(status)) TH_LOG("meterd died of signal %d", WTERMSIG(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_TRUE(journal_has(self->dir, "store: state saved at stop"));
	snprintf(live, sizeof(live), "%s/run/meterd.live", self->dir);
	ASSERT_EQ(0, unlink(live));
	self->meterd_pid = start_meterd(self->dir, self->conf);
	ASSERT_EQ(0, wait_for_name(self->bus, 5000));
	after = get_t(self->bus, "ImportEnergy");
	/* 3.6 kW ran until the stop: at least what was read before it, at most 2 s more */
	EXPECT_LE(before, after);
	EXPECT_GE(before + 2000, after);
	EXPECT_TRUE(journal_has(self->dir, "the last stop was clean"));
}

TEST_HARNESS_MAIN
