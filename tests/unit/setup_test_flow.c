// SPDX-License-Identifier: GPL-2.0
/*
 * The whole of gridmeter-setup (agent/setup) on a fake sysfs tree: a "CT
 * driver" process rewrites the readings of the model in setup_model.h from
 * the trims the command writes (front-end gain errors, a CT phase lead, a
 * load at PF 0.9 with a little noise), a fake MCP3208 gives sine codes, the
 * simulated SIM900 answers on a pty. Non-interactively (options) and
 * through the dialogue: the trims written and saved are those of the model
 * within the noise, the driver then reads the reference, the key file is
 * the one whose public key and townctl line are printed, the report says
 * PASS and is saved. End of input half-way, or a hang-up (SIGHUP of a closed
 * SSH session) at a question, writes nothing; a calibration
 * not kept is taken back; a gap in the sampling (gap_time_ns rising) during
 * a measurement has it measured again; an existing key is kept unless
 * --force; a missing CT fails the report.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "credentials.h"
#include "setup.h"
#include "setup_model.h"
#include "sim900sim.h"

#define NOBODY		65534
#define NOISE_PPM	200	/* +- on each sample of V and I */

/* the load: 230 V, 10 A at PF 0.9 inductive; the front end 4.6 % high, 4.7 % low, CT 3.5 deg */
static const struct ct_model model = { 230.0, 10.0, 0.45102681179626236 /* acos(0.9) */,
				       1.046, 0.953, 3.5 * M_PI / 180 };

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return lchown(path, NOBODY, NOBODY);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void put(const char *dir, const char *f, const char *text)
{
	char p[600], tmp[640];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", dir, f);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	fp = fopen(tmp, "w");
	if (!fp)
		return;
	fputs(text, fp);
	fclose(fp);
	rename(tmp, p);
}

static void get(const char *dir, const char *f, char *buf, size_t len)
{
	char p[600];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", dir, f);
	buf[0] = 0;
	fp = fopen(p, "r");
	if (fp) {
		if (!fgets(buf, (int)len, fp))
			buf[0] = 0;
		fclose(fp);
	}
	buf[strcspn(buf, "\n")] = 0;
}

/* The fake driver: every 2 ms, readings of the model under the trims in the tree. */
static void fake_driver(const char *ct, const char *gapflag)
{
	uint32_t rng = 2463534242u;
	unsigned long gap = 0;

	for (unsigned long k = 1;; k++) {
		/* while the test says so, the sampler is late: gap_time_ns rises */
		if (!access(gapflag, F_OK)) {
			char g[32];

			snprintf(g, sizeof(g), "%lu\n", (gap += 20000000));
			put(ct, "gap_time_ns", g);
		}
		struct ct_model m = model;
		struct calib_reading r;
		struct ct_calib c;
		char err[300], v[64];

		if (!ct_calib_read(ct, &c, err, sizeof(err))) {
			rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
			m.v *= 1 + ((double)(rng % 2001) - 1000) * NOISE_PPM / 1e9;
			rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
			m.i *= 1 + ((double)(rng % 2001) - 1000) * NOISE_PPM / 1e9;
			model_reading(&m, &c, &r);
			snprintf(v, sizeof(v), "%lld\n", (long long)r.v_uv);
			put(ct, "in_altvoltage0_rms_raw", v);
			snprintf(v, sizeof(v), "%lld\n", (long long)r.i_ua);
			put(ct, "in_current0_rms_raw", v);
			snprintf(v, sizeof(v), "%lld\n", (long long)r.p_mw);
			put(ct, "in_power0_active_raw", v);
			snprintf(v, sizeof(v), "%lld\n", (long long)r.q_mvar);
			put(ct, "in_power0_reactive_raw", v);
			snprintf(v, sizeof(v), "%lu\n", k);
			put(ct, "cycles", v);
		}
		usleep(2000);
	}
}

/*
 * The fake MCP3208: every read of a channel's file is a conversion (inotify
 * tells of the read, the next sample replaces the file): 12-bit codes round
 * mid-scale, the current lagging by the load's angle.
 */
static void fake_adc(const char *adc)
{
	static const char *const file[2] = { "in_voltage0_raw", "in_voltage1_raw" };
	char buf[4096] __attribute__((aligned(8))), v[32];
	unsigned long k[2] = { 0, 0 };
	int in = inotify_init1(IN_CLOEXEC);

	if (in < 0 || inotify_add_watch(in, adc, IN_CLOSE_NOWRITE) < 0)
		return;
	for (;;) {
		for (int c = 0; c < 2; c++) {
			double x = 0.37 * (double)k[c] - (c ? model.angle : 0);

			snprintf(v, sizeof(v), "%ld\n", lround(c ? 2050 + 193 * sin(x) : 2048 + 1345 * sin(x)));
			put(adc, file[c], v);
		}
		for (ssize_t n = read(in, buf, sizeof(buf)), o = 0; n > 0 && o < n;) {
			const struct inotify_event *e = (const void *)(buf + o);

			for (int c = 0; c < 2; c++)
				k[c] += e->len && !strcmp(e->name, file[c]);
			o += (ssize_t)sizeof(*e) + e->len;
		}
	}
}

FIXTURE(flow) {
	char dir[64];
	char sys[128], ct[300], adc[300];
	char conf[128], calib[128], report[128], key[128], out[128], in[128], gapflag[128];
	pid_t driver, adcpid, sim;
	int tty;
	struct gmp_keypair town;
	char town_hex[2 * GMP_KEY_LEN + 1];
	char text[16384];
};

FIXTURE_SETUP(flow)
{
	char p[400], conf[1024];
	struct termios t;
	int master;
	FILE *f;

	ASSERT_LE(0, sodium_init());
	unsetenv("CREDENTIALS_DIRECTORY");
	strcpy(self->dir, "/tmp/gm_setup_XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->sys, sizeof(self->sys), "%s/sys", self->dir);
	snprintf(p, sizeof(p), "mkdir -p %s/bus/iio/devices/iio:device0 %s/bus/iio/devices/iio:device1",
		 self->sys, self->sys);
	ASSERT_EQ(0, system(p));
	snprintf(self->ct, sizeof(self->ct), "%s/bus/iio/devices/iio:device0", self->sys);
	snprintf(self->adc, sizeof(self->adc), "%s/bus/iio/devices/iio:device1", self->sys);
	put(self->ct, "name", "gridmeter-ct\n");
	put(self->ct, "sampling_frequency", "4000\n");
	put(self->ct, "in_altvoltage0_frequency", "50.000000\n");
	put(self->ct, "read_errors", "0\n");
	put(self->ct, "missed_samples", "0\n");
	put(self->ct, "cycles", "0\n");
	put(self->ct, "gap_time_ns", "0\n");
	put(self->ct, "in_altvoltage0_rms_calibscale", "1.000000\n");
	put(self->ct, "in_current0_rms_calibscale", "1.000000\n");
	put(self->ct, "in_current0_rms_phase", "0.000000000\n");
	put(self->adc, "name", "mcp3208\n");
	snprintf(self->conf, sizeof(self->conf), "%s/meterd.conf", self->dir);
	snprintf(self->calib, sizeof(self->calib), "%s/calibration.conf", self->dir);
	snprintf(self->report, sizeof(self->report), "%s/report.txt", self->dir);
	snprintf(self->key, sizeof(self->key), "%s/keys/uplink.key", self->dir);
	snprintf(self->out, sizeof(self->out), "%s/out.txt", self->dir);
	snprintf(self->in, sizeof(self->in), "%s/in.txt", self->dir);
	snprintf(self->gapflag, sizeof(self->gapflag), "%s/gap", self->dir);

	/* the simulated SIM900 on a pty */
	ASSERT_EQ(0, openpty(&master, &self->tty, NULL, NULL, NULL));
	tcgetattr(self->tty, &t);
	cfmakeraw(&t);
	tcsetattr(self->tty, TCSANOW, &t);
	self->sim = fork();
	ASSERT_LE(0, self->sim);
	if (!self->sim) {
		struct sim900sim s;

		sim900sim_init(&s, master, 100);
		_exit(sim900sim_run(&s, -1, -1) ? 1 : 0);
	}
	close(master);
	snprintf(conf, sizeof(conf), "[sensors]\nmains_device = gridmeter-ct\n[protection]\n"
		 "over_voltage = 253.0\nunder_voltage = 207.0\n[relays]\nbackend = fake\n"
		 "[uplink]\ncredentials = %s\n[modem]\ndevice = %s\nbaud = 115200\napn = internet\n"
		 "server = 127.0.0.1:7700\n", self->key, ttyname(self->tty));
	f = fopen(self->conf, "w");
	ASSERT_NE(NULL, f);
	fputs(conf, f);
	fclose(f);
	/* the command runs as nobody here (as root it would give the key to 'gridmeter') */
	if (!geteuid()) {
		ASSERT_EQ(0, nftw(self->dir, chown_one, 8, FTW_PHYS));
		ASSERT_EQ(0, chown(ttyname(self->tty), NOBODY, NOBODY));
	}
	self->driver = fork();
	ASSERT_LE(0, self->driver);
	if (!self->driver) {
		fake_driver(self->ct, self->gapflag);
		_exit(0);
	}
	self->adcpid = fork();
	ASSERT_LE(0, self->adcpid);
	if (!self->adcpid) {
		fake_adc(self->adc);
		_exit(0);
	}
	gmp_keypair_generate(&self->town);
	gmp_hex_encode(self->town.pk, GMP_KEY_LEN, self->town_hex);
}

FIXTURE_TEARDOWN(flow)
{
	kill(self->driver, SIGKILL);
	kill(self->adcpid, SIGKILL);
	kill(self->sim, SIGKILL);
	waitpid(self->driver, NULL, 0);
	waitpid(self->adcpid, NULL, 0);
	waitpid(self->sim, NULL, 0);
	close(self->tty);
	if (!getenv("SETUP_TEST_KEEP"))
		nftw(self->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Run gridmeter-setup with the answers on stdin; its exit status, its output in self->text. */
static int run(FIXTURE_DATA(flow) *self, const char *answers, const char *const extra[])
{
	const char *argv[40] = { "gridmeter-setup", "-c", self->conf, "--sysfs-root", self->sys,
				 "--no-service", "--measure-seconds", "1", "--calibration-file",
				 self->calib, "--report", self->report, "--modem-timeout", "3" };
	int argc = 14, st;
	pid_t pid;
	FILE *f;
	size_t n;

	for (int k = 0; extra[k]; k++)
		argv[argc++] = extra[k];
	f = fopen(self->in, "w");
	if (!f)
		return -1;
	fputs(answers, f);
	fclose(f);
	chown(self->in, NOBODY, NOBODY);
	pid = fork();
	if (!pid) {
		int in = open(self->in, O_RDONLY), out = open(self->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(126);
		if (!geteuid() && (setgid(NOBODY) || setuid(NOBODY)))
			_exit(125);
		_exit(setup_main(argc, (char **)argv));
	}
	waitpid(pid, &st, 0);
	f = fopen(self->out, "r");
	n = f ? fread(self->text, 1, sizeof(self->text) - 1, f) : 0;
	self->text[n] = 0;
	if (f)
		fclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The trims the model needs (setup_model.h): computed, not copied. */
static void expect_model_trims(struct __test_metadata *_metadata, const struct ct_calib *c)
{
	/* the mean of 10 samples of +-200 ppm noise: well within 300 ppm */
	EXPECT_GE(300, llabs(c->v_scale - llround(1e6 / model.gv))) TH_LOG("voltage %lld", (long long)c->v_scale);
	EXPECT_GE(300, llabs(c->i_scale - llround(1e6 / model.gi))) TH_LOG("current %lld", (long long)c->i_scale);
	EXPECT_GE(30, abs(c->phase_mdeg - (int)lround(model.lead * 180000 / M_PI))) TH_LOG("phase %d", c->phase_mdeg);
}

static void expect_enrolled(struct __test_metadata *_metadata, FIXTURE_DATA(flow) *self, const char *addr)
{
	struct uplink_credentials c;
	char err[400], hex[2 * GMP_KEY_LEN + 1], line[300];

	ASSERT_EQ(0, credentials_load(&c, self->key, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(101, c.meter_id);
	EXPECT_EQ(0, memcmp(c.town_pk, self->town.pk, GMP_KEY_LEN));
	gmp_hex_encode(c.key.pk, GMP_KEY_LEN, hex);
	credentials_wipe(&c);
	snprintf(line, sizeof(line), "\ntownctl add 101 %s \"%s\"\n", hex, addr);
	EXPECT_NE(NULL, strstr(self->text, line)) TH_LOG("%s", self->text);
	snprintf(line, sizeof(line), "meter_public_key = %s\n", hex);
	EXPECT_NE(NULL, strstr(self->text, line));
	/* the secret never printed */
	EXPECT_EQ(NULL, strstr(self->text, "secret"));
}

static void expect_driver_reads_reference(struct __test_metadata *_metadata, FIXTURE_DATA(flow) *self)
{
	struct ct_calib c;
	struct calib_reading r;
	char err[300];

	ASSERT_EQ(0, ct_calib_read(self->ct, &c, err, sizeof(err)));
	model_reading(&model, &c, &r);
	EXPECT_GT(0.05, fabs(calib_error_pct(r.v_uv, llround(model.v * 1e6)))) TH_LOG("V %lld", (long long)r.v_uv);
	EXPECT_GT(0.05, fabs(calib_error_pct(r.i_ua, llround(model.i * 1e6)))) TH_LOG("I %lld", (long long)r.i_ua);
	EXPECT_GT(0.05, fabs(calib_measured_angle(&r) - model.angle) * 180 / M_PI);
}

/* The calibration lines of the report block, for the log: the figures of the run. */
static void show_calibration(struct __test_metadata *_metadata, const char *text)
{
	const char *a = strstr(text, "\nPASS  calib-voltage"), *b = a ? strstr(a, "\nPASS  calib-saved") : NULL;

	if (a && b)
		TH_LOG("%.*s", (int)(b - a - 1), a + 1);
}

TEST_F(flow, options_only)
{
	const char *const extra[] = { "--yes", "--reference-voltage", "230", "--reference-current", "10.000",
				      "--reference-power", "2070.0", "--meter-id", "101", "--town-key",
				      self->town_hex, "--address", "12 High Street", NULL };
	struct ct_calib c;
	char dev[64], err[300], buf[128];
	FILE *f;
	size_t n;

	ASSERT_EQ(0, run(self, "", extra)) TH_LOG("%s", self->text);
	show_calibration(_metadata, self->text);
	EXPECT_NE(NULL, strstr(self->text, "OVERALL: PASS")) TH_LOG("%s", self->text);
	for (const char *k = "ct-device\0ct-sampling\0ct-frequency\0ct-voltage\0adc-voltage\0adc-current\0"
			     "modem-at\0modem-sim\0modem-signal\0modem-network\0calib-voltage\0"
			     "calib-current\0calib-phase\0calib-saved\0key\0config\0"; *k; k += strlen(k) + 1) {
		snprintf(buf, sizeof(buf), "\nPASS  %-14s ", k);
		EXPECT_NE(NULL, strstr(self->text, buf)) TH_LOG("no %s", buf);
	}
	/* the file, the driver and the model agree */
	ASSERT_EQ(0, ct_calib_load(self->calib, &c, dev, sizeof(dev), err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_STREQ("gridmeter-ct", dev);
	expect_model_trims(_metadata, &c);
	{
		struct ct_calib d;

		ASSERT_EQ(0, ct_calib_read(self->ct, &d, err, sizeof(err)));
		EXPECT_EQ(0, memcmp(&c, &d, sizeof(c)));
	}
	expect_driver_reads_reference(_metadata, self);
	expect_enrolled(_metadata, self, "12 High Street");
	/* the report saved is the block printed */
	f = fopen(self->report, "r");
	ASSERT_NE(NULL, f);
	n = fread(err, 1, sizeof(err) - 1, f);
	err[n] = 0;
	fclose(f);
	EXPECT_NE(NULL, strstr(self->text, err));
	EXPECT_NE(NULL, strstr(err, "gridmeter-setup report"));
}

TEST_F(flow, dialogue_with_a_bad_answer)
{
	const char *const extra[] = { NULL };
	char answers[512];
	struct ct_calib c;
	char dev[64], err[300];

	/* calibrate? Enter; load connected: Enter; V; I (a comma first); power; keep? Enter;
	 * key? Enter; meter id (a letter first); town key; address */
	snprintf(answers, sizeof(answers), "\n\n230.0\n10,0\n10.0\n2070\n\n\nabc\n101\n%s\n12 High Street\n",
		 self->town_hex);
	ASSERT_EQ(0, run(self, answers, extra)) TH_LOG("%s", self->text);
	show_calibration(_metadata, self->text);
	EXPECT_NE(NULL, strstr(self->text, "'10,0': use a decimal point")) TH_LOG("%s", self->text);
	EXPECT_NE(NULL, strstr(self->text, "'abc': the meter id is a number"));
	EXPECT_NE(NULL, strstr(self->text, "OVERALL: PASS"));
	ASSERT_EQ(0, ct_calib_load(self->calib, &c, dev, sizeof(dev), err, sizeof(err))) TH_LOG("%s", err);
	expect_model_trims(_metadata, &c);
	expect_enrolled(_metadata, self, "12 High Street");
	/* every line fits 80 columns, but for the keys (64 hex digits) */
	for (const char *l = self->text; *l;) {
		int len = (int)strcspn(l, "\n");
		bool key_line = memmem(l, (size_t)len, "townctl add", 11) || memmem(l, (size_t)len, "public", 6) ||
				memmem(l, (size_t)len, self->town_hex, 64);

		if (!key_line && len > 80)
			EXPECT_GE(80, len) TH_LOG("%.*s", len, self->text + (l - self->text));
		l += len + (l[len] != 0);
	}
}

TEST_F(flow, end_of_input_writes_nothing)
{
	const char *const extra[] = { NULL };
	char buf[64];

	/* input ends at the current question */
	EXPECT_EQ(3, run(self, "\n\n230.0\n", extra)) TH_LOG("%s", self->text);
	EXPECT_NE(NULL, strstr(self->text, "aborted"));
	EXPECT_NE(0, access(self->calib, F_OK));
	EXPECT_NE(0, access(self->key, F_OK));
	get(self->ct, "in_altvoltage0_rms_calibscale", buf, sizeof(buf));
	EXPECT_STREQ("1.000000", buf);
	get(self->ct, "in_current0_rms_calibscale", buf, sizeof(buf));
	EXPECT_STREQ("1.000000", buf);
	/* and at the "keep it?" question, after the trims were written: taken back */
	EXPECT_EQ(3, run(self, "\n\n230.0\n10\n2070\n", extra)) TH_LOG("%s", self->text);
	EXPECT_NE(NULL, strstr(self->text, "back to what they were")) TH_LOG("%s", self->text);
	EXPECT_NE(0, access(self->calib, F_OK));
	get(self->ct, "in_altvoltage0_rms_calibscale", buf, sizeof(buf));
	EXPECT_STREQ("1.000000", buf);
	get(self->ct, "in_current0_rms_phase", buf, sizeof(buf));
	EXPECT_STREQ("0.000000000", buf);
}

TEST_F(flow, calibration_not_kept_and_key_declined)
{
	const char *const extra[] = { NULL };
	char buf[256];

	/* without a key, meterd.conf's [uplink] fails the configuration check, as meterd --check */
	EXPECT_EQ(1, run(self, "y\n\n230\n10\n2070\nn\nn\n", extra)) TH_LOG("%s", self->text);
	EXPECT_NE(NULL, strstr(self->text, "SKIP  calibration    not kept by the installer"));
	EXPECT_NE(NULL, strstr(self->text, "SKIP  key            declined by the installer"));
	snprintf(buf, sizeof(buf), "FAIL  config         %s: No such file", self->key);
	EXPECT_NE(NULL, strstr(self->text, buf)) TH_LOG("%s", self->text);
	EXPECT_NE(0, access(self->calib, F_OK));
	get(self->ct, "in_current0_rms_calibscale", buf, sizeof(buf));
	EXPECT_STREQ("1.000000", buf);
}

TEST_F(flow, existing_key_kept_unless_forced)
{
	const char *const first[] = { "--yes", "--no-calibration", "--meter-id", "101", "--town-key",
				      self->town_hex, "--address", "A", NULL };
	const char *const force[] = { "--yes", "--no-calibration", "--meter-id", "101", "--town-key",
				      self->town_hex, "--address", "A", "--force", NULL };
	struct uplink_credentials c;
	uint8_t pk1[GMP_KEY_LEN];
	char err[300];

	ASSERT_EQ(0, run(self, "", first)) TH_LOG("%s", self->text);
	ASSERT_EQ(0, credentials_load(&c, self->key, err, sizeof(err)));
	memcpy(pk1, c.key.pk, GMP_KEY_LEN);
	credentials_wipe(&c);
	ASSERT_EQ(0, run(self, "", first)) TH_LOG("%s", self->text);
	EXPECT_NE(NULL, strstr(self->text, "kept (meter 101)")) TH_LOG("%s", self->text);
	ASSERT_EQ(0, credentials_load(&c, self->key, err, sizeof(err)));
	EXPECT_EQ(0, memcmp(pk1, c.key.pk, GMP_KEY_LEN));
	credentials_wipe(&c);
	expect_enrolled(_metadata, self, "A");
	/* asked interactively: the default is to keep it */
	ASSERT_EQ(0, run(self, "n\n\n", (const char *const[]){ "--no-calibration", NULL }));
	EXPECT_NE(NULL, strstr(self->text, "Replace it with a new key"));
	ASSERT_EQ(0, run(self, "", force)) TH_LOG("%s", self->text);
	EXPECT_NE(NULL, strstr(self->text, "townctl replace 101"));
	ASSERT_EQ(0, credentials_load(&c, self->key, err, sizeof(err)));
	EXPECT_NE(0, memcmp(pk1, c.key.pk, GMP_KEY_LEN));
	credentials_wipe(&c);
}

TEST_F(flow, missing_ct_fails_the_report)
{
	const char *const extra[] = { "--yes", "--no-enrol", NULL };
	char p[600];

	snprintf(p, sizeof(p), "%s/name", self->ct);
	put(self->ct, "name", "something-else\n");
	EXPECT_EQ(1, run(self, "", extra)) TH_LOG("%s", self->text);
	EXPECT_NE(NULL, strstr(self->text, "FAIL  ct-device      no IIO device 'gridmeter-ct'"));
	EXPECT_NE(NULL, strstr(self->text, "SKIP  calibration    the CT device does not sample"));
	EXPECT_NE(NULL, strstr(self->text, "OVERALL: FAIL"));
}

/* Wait (up to 60 s) until the output holds what; the output in self->text. */
static bool wait_output(FIXTURE_DATA(flow) *self, const char *what)
{
	for (int k = 0; k < 600; k++) {
		FILE *f = fopen(self->out, "r");
		size_t n = f ? fread(self->text, 1, sizeof(self->text) - 1, f) : 0;

		self->text[n] = 0;
		if (f)
			fclose(f);
		if (strstr(self->text, what))
			return true;
		usleep(100000);
	}
	return false;
}

/* Start gridmeter-setup reading its answers from a pipe; *in: the pipe's end to write them to. */
static pid_t start(FIXTURE_DATA(flow) *self, int *in)
{
	static const char *argv[14];
	int pfd[2];
	pid_t pid;

	memcpy(argv, (const char *[]){ "gridmeter-setup", "-c", self->conf, "--sysfs-root", self->sys,
		"--no-service", "--measure-seconds", "1", "--calibration-file", self->calib,
		"--report", self->report, "--no-modem", NULL }, sizeof(argv));
	if (pipe(pfd))
		return -1;
	pid = fork();
	if (!pid) {
		int out = open(self->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		close(pfd[1]);
		if (out < 0 || dup2(pfd[0], 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(126);
		if (!geteuid() && (setgid(NOBODY) || setuid(NOBODY)))
			_exit(125);
		_exit(setup_main(13, (char **)argv));
	}
	close(pfd[0]);
	*in = pfd[1];
	return pid;
}

TEST_F(flow, a_gap_in_the_sampling_is_measured_again)
{
	struct ct_calib c;
	char dev[64], err[300];
	int in, st;
	pid_t pid = start(self, &in);

	ASSERT_LT(0, pid);
	ASSERT_EQ(9, write(in, "\n\n230\n10\n", 9));
	ASSERT_TRUE(wait_output(self, "Active power W")) TH_LOG("%s", self->text);
	/* the sampler falls behind while the first measurement runs */
	close(open(self->gapflag, O_WRONLY | O_CREAT, 0644));
	ASSERT_EQ(5, write(in, "2070\n", 5));
	ASSERT_TRUE(wait_output(self, "the sampling had a gap")) TH_LOG("%s", self->text);
	unlink(self->gapflag);
	ASSERT_TRUE(wait_output(self, "Keep this calibration?")) TH_LOG("%s", self->text);
	/* kept; then the input ends at the key: the confirmed calibration stays */
	ASSERT_EQ(2, write(in, "y\n", 2));
	close(in);
	waitpid(pid, &st, 0);
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(3, WEXITSTATUS(st)) TH_LOG("%s", self->text);
	ASSERT_EQ(0, ct_calib_load(self->calib, &c, dev, sizeof(dev), err, sizeof(err))) TH_LOG("%s", err);
	expect_model_trims(_metadata, &c);
}

TEST_F(flow, hangup_at_a_question_takes_the_trims_back)
{
	const char *answers = "\n\n230\n10\n2070\n";
	char buf[64];
	int in, st;
	pid_t pid = start(self, &in);

	/* the answers through a pipe left open: it waits at "Keep this calibration?" */
	ASSERT_LT(0, pid);
	ASSERT_EQ((ssize_t)strlen(answers), write(in, answers, strlen(answers)));
	ASSERT_TRUE(wait_output(self, "Keep this calibration?")) TH_LOG("%s", self->text);
	get(self->ct, "in_altvoltage0_rms_calibscale", buf, sizeof(buf));
	EXPECT_STRNE("1.000000", buf);		/* the new trims are in the driver */
	/* the SSH session closes */
	kill(pid, SIGHUP);
	waitpid(pid, &st, 0);
	close(in);
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(3, WEXITSTATUS(st));
	get(self->ct, "in_altvoltage0_rms_calibscale", buf, sizeof(buf));
	EXPECT_STREQ("1.000000", buf);
	get(self->ct, "in_current0_rms_phase", buf, sizeof(buf));
	EXPECT_STREQ("0.000000000", buf);
	EXPECT_NE(0, access(self->calib, F_OK));
}

TEST_HARNESS_MAIN
