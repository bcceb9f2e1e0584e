// SPDX-License-Identifier: GPL-2.0
/*
 * home_test_gas - meterd's home sensors in the guest (issue 15): a gas
 * sensor on the simulated ADC's spare channel CH2 (gm_sim_adc sim_ch2_mv),
 * read by the real meterd through IIO sysfs, watched on a private system
 * bus through its HomeSensors property and Alarm signal.
 *
 * - no alarm while warming up, however high the level;
 * - the alarm after the warm-up and the hold, not before (times measured
 *   from before meterd started, so "not before" is exact);
 * - it stays between the two levels (hysteresis), clears below the clear
 *   level;
 * - HomeSensors' values are those computed here from the mV set, the ADC's
 *   resolution and reference (module parameters) and the divider;
 * - a sensor whose device is absent shows "fault" and raises home-sensor.
 * Timeouts are generous (TCG); nothing is judged on speed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
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
#include "agent_privbus.h"

#define DEST	"org.gridmeter.Meter1"
#define PATH	"/org/gridmeter/Meter1"
#define IFACE	"org.gridmeter.Meter1"
#define SYS_IIO	"/sys/bus/iio/devices"

/* the configuration below */
#define WARMUP_S	6
#define HOLD_S		3
#define ABOVE_MV	1200
#define CLEAR_MV	1000
#define DIV_NUM		5000
#define DIV_DEN		3300

static const char conf_fmt[] =
	"[meter]\ntimezone = UTC\n"
	"[sensors]\nbackend = replay\n"
	"[relays]\nbackend = fake\n"
	"[store]\nstate_dir = %s/state\nruntime_dir = %s/run\n"
	"[dbus]\nproperty_interval_ms = 200\nauthorization = group\n"
	"technician_group = root\nappliance_group = root\n"
	"[sensor.kitchen_gas]\ndevice = gm-sim-adc\nchannel = in_voltage2_raw\nkind = gas\n"
	"divider = %d/%d\nalarm_above = %d\nalarm_clear_below = %d\nhold = %d\nwarmup = %d\n"
	"period = 1\n"
	"[sensor.spare]\ndevice = gm-sim-adc\nchannel = in_voltage3_raw\nperiod = 1\n"
	"[sensor.ghost]\ndevice = gm-no-such-adc\nchannel = in_voltage0_raw\nperiod = 1\n";

struct hs {
	char name[32], kind[16], unit[16], state[16];
	int64_t value;
	int alarm;
};

struct alarm_sig {
	char name[32], detail[256];
	int active;
	int64_t at_ms;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sh(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int rd_long(const char *path, long *v)
{
	char buf[64];
	int fd = open(path, O_RDONLY), n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	*v = strtol(buf, NULL, 10);
	return 0;
}

static int find_sim(char *dir, size_t len)
{
	char path[128], buf[64];

	for (int i = 0; i < 16; i++) {
		int fd, n;

		snprintf(path, sizeof(path), SYS_IIO "/iio:device%d/name", i);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0 && !strncmp(buf, "gm-sim-adc\n", 11)) {
			snprintf(dir, len, SYS_IIO "/iio:device%d", i);
			return 0;
		}
	}
	return -ENODEV;
}

static int set_mv(const char *sim, const char *attr, int mv)
{
	char path[192], b[32];
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", sim, attr);
	snprintf(b, sizeof(b), "%d", mv);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, b, strlen(b)) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* round half away from zero of p/q, q > 0, p >= 0 */
static int64_t rdiv(__int128 p, __int128 q)
{
	return (int64_t)((p + q / 2) / q);
}

FIXTURE(gas) {
	char dir[64], sim[96];
	pid_t dbus_pid, meterd_pid;
	sd_bus *bus;
	long bits, vref;
	struct alarm_sig sig[32];
	int nsig;
	int64_t t_start;
	int home_changed;	/* PropertiesChanged signals carrying HomeSensors */
};

static int on_alarm(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct _test_data_gas *self = userdata;
	const char *name, *detail;
	int active;

	(void)e;
	if (sd_bus_message_read(m, "sbs", &name, &active, &detail) < 0 || self->nsig >= 32)
		return 0;
	snprintf(self->sig[self->nsig].name, sizeof(self->sig[0].name), "%s", name);
	snprintf(self->sig[self->nsig].detail, sizeof(self->sig[0].detail), "%s", detail);
	self->sig[self->nsig].active = active;
	self->sig[self->nsig].at_ms = now_ms();
	self->nsig++;
	return 0;
}

static int on_props(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct _test_data_gas *self = userdata;
	const char *iface, *name;

	(void)e;
	if (sd_bus_message_read(m, "s", &iface) < 0 || strcmp(iface, IFACE) ||
	    sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
		return 0;
	while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
		if (sd_bus_message_read(m, "s", &name) < 0)
			return 0;
		self->home_changed += !strcmp(name, "HomeSensors");
		if (sd_bus_message_skip(m, "v") < 0 || sd_bus_message_exit_container(m) < 0)
			return 0;
	}
	return 0;
}

FIXTURE_SETUP(gas)
{
	char conf[128], cmd[256];
	FILE *f;

	snprintf(self->dir, sizeof(self->dir), "/tmp/gm-home-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	sh("rmmod gridmeter_ct 2>/dev/null; rmmod gm_sim_adc 2>/dev/null");
	ASSERT_EQ(0, sh("modprobe gm_sim_adc"));
	ASSERT_EQ(0, find_sim(self->sim, sizeof(self->sim)));
	ASSERT_EQ(0, rd_long("/sys/module/gm_sim_adc/parameters/bits", &self->bits));
	ASSERT_EQ(0, rd_long("/sys/module/gm_sim_adc/parameters/vref_mv", &self->vref));
	snprintf(conf, sizeof(conf), "%s/meterd.conf", self->dir);
	f = fopen(conf, "w");
	ASSERT_NE(NULL, f);
	fprintf(f, conf_fmt, self->dir, self->dir, DIV_NUM, DIV_DEN, ABOVE_MV, CLEAR_MV, HOLD_S,
		WARMUP_S);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/state %s/run", self->dir, self->dir);
	ASSERT_EQ(0, sh(cmd));
	self->dbus_pid = privbus_start(self->dir);
	ASSERT_LT(0, self->dbus_pid);
	ASSERT_LE(0, sd_bus_open_system(&self->bus));
	ASSERT_LE(0, sd_bus_match_signal(self->bus, NULL, NULL, PATH, IFACE, "Alarm", on_alarm, self));
	ASSERT_LE(0, sd_bus_match_signal(self->bus, NULL, NULL, PATH, "org.freedesktop.DBus.Properties",
					 "PropertiesChanged", on_props, self));
	/* gas far above the alarm level before meterd even starts */
	ASSERT_EQ(0, set_mv(self->sim, "sim_ch2_mv", 1500));
	ASSERT_EQ(0, set_mv(self->sim, "sim_ch3_mv", 777));
	self->t_start = now_ms();
	self->meterd_pid = fork();
	if (!self->meterd_pid) {
		char log[128];

		snprintf(log, sizeof(log), "%s/meterd.log", self->dir);
		if (!freopen(log, "w", stderr))
			_exit(126);
		execlp("meterd", "meterd", "-c", conf, (char *)NULL);
		_exit(127);
	}
	ASSERT_EQ(0, privbus_wait_name(DEST, 60000));
}

FIXTURE_TEARDOWN(gas)
{
	char cmd[160];

	if (self->meterd_pid > 0) {
		kill(self->meterd_pid, SIGTERM);
		waitpid(self->meterd_pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "cat %s/meterd.log >&2", self->dir);
	if (self->meterd_pid > 0)
		sh(cmd);
	sd_bus_flush_close_unref(self->bus);
	privbus_stop(self->dbus_pid, SIGTERM);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	sh(cmd);
	sh("rmmod gm_sim_adc 2>/dev/null");
}

/* HomeSensors into hs[] (n at most); the number read or -errno. */
static int home_sensors(sd_bus *bus, struct hs *hs, int n)
{
	sd_bus_message *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	const char *name, *kind, *unit, *state;
	int64_t value;
	int alarm, r, k = 0;

	r = sd_bus_get_property(bus, DEST, PATH, IFACE, "HomeSensors", &e, &reply, "a(sssxsb)");
	sd_bus_error_free(&e);
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(reply, 'a', "(sssxsb)");
	while (r >= 0 && (r = sd_bus_message_read(reply, "(sssxsb)", &name, &kind, &unit, &value,
						   &state, &alarm)) > 0 && k < n) {
		snprintf(hs[k].name, sizeof(hs[k].name), "%s", name);
		snprintf(hs[k].kind, sizeof(hs[k].kind), "%s", kind);
		snprintf(hs[k].unit, sizeof(hs[k].unit), "%s", unit);
		snprintf(hs[k].state, sizeof(hs[k].state), "%s", state);
		hs[k].value = value;
		hs[k].alarm = alarm;
		k++;
	}
	sd_bus_message_unref(reply);
	return r < 0 ? r : k;
}

/* Process the bus for ms (signals into self->sig). */
static void pump(sd_bus *bus, int ms)
{
	int64_t end = now_ms() + ms;

	while (now_ms() < end) {
		while (sd_bus_process(bus, NULL) > 0)
			;
		sd_bus_wait(bus, 100000);
	}
}

/* The first signal named name with active, from index from; -1 if none. */
static int find_sig(const struct _test_data_gas *self, const char *name, int active, int from)
{
	for (int i = from; i < self->nsig; i++)
		if (!strcmp(self->sig[i].name, name) && self->sig[i].active == active)
			return i;
	return -1;
}

/* What HomeSensors must show for mv at the input: the ADC's code, its scale, the divider. */
static int64_t expect_milli(const struct _test_data_gas *self, int mv, int64_t div_num,
			    int64_t div_den)
{
	int64_t code = rdiv((__int128)mv << self->bits, self->vref);

	if (code > (1 << self->bits) - 1)
		code = (1 << self->bits) - 1;
	/* code x vref / 2^bits mV x divider, in thousandths of mV */
	return rdiv((__int128)code * self->vref * div_num * 1000,
		    ((__int128)div_den) << self->bits);
}

/* Wait until sensor i's state is state (or timeout); returns its last view. */
static int wait_state(struct _test_data_gas *self, int i, const char *state, struct hs *out,
		      int timeout_ms)
{
	struct hs hs[4];
	int64_t end = now_ms() + timeout_ms;

	do {
		pump(self->bus, 200);
		if (home_sensors(self->bus, hs, 4) > i) {
			*out = hs[i];
			if (!strcmp(hs[i].state, state))
				return 0;
		}
	} while (now_ms() < end);
	return -ETIMEDOUT;
}

TEST_F_TIMEOUT(gas, alarm_after_warmup_and_hold_cleared_below_clear_level, 300)
{
	struct hs hs[4], h;
	int n, raised, cleared, r;
	int64_t want, mid;

	/* warming up: values shown, no alarm whatever the level */
	pump(self->bus, 1500);
	n = home_sensors(self->bus, hs, 4);
	ASSERT_EQ(3, n);
	EXPECT_STREQ("kitchen_gas", hs[0].name);
	EXPECT_STREQ("gas", hs[0].kind);
	EXPECT_STREQ("mV", hs[0].unit);
	EXPECT_STREQ("generic", hs[1].kind);
	if (now_ms() < self->t_start + WARMUP_S * 1000) {
		EXPECT_STREQ("warming-up", hs[0].state);
		EXPECT_FALSE(hs[0].alarm);
	}
	/* IIO prints the scale with 9 decimals: within one thousandth of a mV */
	want = expect_milli(self, 1500, DIV_NUM, DIV_DEN);
	EXPECT_GE(1, llabs(hs[0].value - want)) TH_LOG("gas %lld, want %lld", (long long)hs[0].value,
						       (long long)want);
	want = expect_milli(self, 777, 1, 1);
	EXPECT_GE(1, llabs(hs[1].value - want)) TH_LOG("spare %lld, want %lld",
						       (long long)hs[1].value, (long long)want);
	/* no warm-up for a generic sensor, which has no alarm level: ok */
	EXPECT_STREQ("ok", hs[1].state);
	/* the absent device: fault, and a home-sensor alarm naming it */
	EXPECT_STREQ("fault", hs[2].state);
	r = find_sig(self, "home-sensor", 1, 0);
	ASSERT_LE(0, r);
	EXPECT_NE(NULL, strstr(self->sig[r].detail, "ghost"));

	/* the gas alarm: after the warm-up and the hold, never before */
	ASSERT_EQ(0, wait_state(self, 0, "alarm", &h, 120000)) TH_LOG("state %s", h.state);
	pump(self->bus, 500);
	raised = find_sig(self, "gas", 1, 0);
	ASSERT_LE(0, raised);
	EXPECT_LE(self->t_start + (WARMUP_S + HOLD_S) * 1000, self->sig[raised].at_ms);
	EXPECT_NE(NULL, strstr(self->sig[raised].detail, "kitchen_gas"));
	EXPECT_TRUE(h.alarm);
	EXPECT_EQ(1, find_sig(self, "gas", 1, raised + 1) < 0);	/* once */
	{
		sd_bus_error e = SD_BUS_ERROR_NULL;
		sd_bus_message *reply = NULL;
		const char *a;
		int gas = 0;

		ASSERT_LE(0, sd_bus_get_property(self->bus, DEST, PATH, IFACE, "Alarms", &e, &reply,
						 "as"));
		ASSERT_LE(0, sd_bus_message_enter_container(reply, 'a', "s"));
		while (sd_bus_message_read(reply, "s", &a) > 0)
			gas |= !strcmp(a, "gas");
		sd_bus_message_unref(reply);
		sd_bus_error_free(&e);
		EXPECT_TRUE(gas);
	}

	/* between the clear level and the alarm level: stays in alarm (hysteresis) */
	mid = (CLEAR_MV + ABOVE_MV) / 2;
	/* the mV at the ADC input for a level at the module: divided back */
	ASSERT_EQ(0, set_mv(self->sim, "sim_ch2_mv", (int)(mid * DIV_DEN / DIV_NUM)));
	pump(self->bus, 3000);
	ASSERT_EQ(3, home_sensors(self->bus, hs, 4));
	EXPECT_STREQ("alarm", hs[0].state);
	EXPECT_TRUE(hs[0].alarm);
	want = expect_milli(self, (int)(mid * DIV_DEN / DIV_NUM), DIV_NUM, DIV_DEN);
	EXPECT_GE(1, llabs(hs[0].value - want));
	EXPECT_GT(ABOVE_MV * 1000, hs[0].value);
	EXPECT_LT(CLEAR_MV * 1000, hs[0].value);
	EXPECT_GT(0, find_sig(self, "gas", 0, raised));

	/* below the clear level: cleared */
	ASSERT_EQ(0, set_mv(self->sim, "sim_ch2_mv", (CLEAR_MV - 100) * DIV_DEN / DIV_NUM));
	ASSERT_EQ(0, wait_state(self, 0, "ok", &h, 60000)) TH_LOG("state %s", h.state);
	pump(self->bus, 500);
	cleared = find_sig(self, "gas", 0, raised);
	ASSERT_LT(raised, cleared);
	EXPECT_NE(NULL, strstr(self->sig[cleared].detail, "kitchen_gas"));
	EXPECT_FALSE(h.alarm);
	EXPECT_GT(CLEAR_MV * 1000, h.value);
	/* the state changes were announced (warming-up, ok, alarm, ok at least) */
	EXPECT_LE(3, self->home_changed);
	printf("# gas raised %lld ms after meterd was started (warm-up %d s + hold %d s), "
	       "cleared; %d Alarm signals, %d PropertiesChanged with HomeSensors\n",
	       (long long)(self->sig[raised].at_ms - self->t_start), WARMUP_S, HOLD_S, self->nsig,
	       self->home_changed);
	fflush(stdout);
}

TEST_HARNESS_MAIN
