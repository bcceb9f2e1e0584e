// SPDX-License-Identifier: GPL-2.0
/*
 * IIO backend readings from sysfs files (a fake tree laid out as the CT
 * driver's ABI), exact decimal scales, and the fixed-point helpers.
 * Discovery through the real libiio runs on a fake /sys/bus/iio in a private
 * mount namespace (skipped where namespaces are not allowed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The 6.1 harness defines fixture setup/teardown functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "config.h"
#include "parse.h"
#include "sensor.h"
#include "sensor_iio.h"

TEST(fixed_point_parsing_and_rounding)
{
	int64_t m;
	unsigned d;

	ASSERT_EQ(0, parse_fixed("-0.987654\n", &m, &d));
	EXPECT_EQ(-987654, m);
	EXPECT_EQ(6u, d);
	ASSERT_EQ(0, parse_fixed("230123456", &m, &d));
	EXPECT_EQ(0u, d);
	EXPECT_NE(0, parse_fixed("1.2.3", &m, &d));
	EXPECT_NE(0, parse_fixed("", &m, &d));
	EXPECT_NE(0, parse_fixed("12x", &m, &d));
	EXPECT_NE(0, parse_fixed("1234567890123456789", &m, &d));	/* 19 digits */
	EXPECT_EQ(230123, mul_div_round(230123456, 1000, 1000000));	/* .456 down */
	EXPECT_EQ(230124, mul_div_round(230123500, 1000, 1000000));	/* .5 away from 0 */
	EXPECT_EQ(-230124, mul_div_round(-230123500, 1000, 1000000));
	EXPECT_EQ(INT64_MAX / 3, mul_div_round(INT64_MAX / 3, 1000000, 1000000));	/* no overflow */
	EXPECT_EQ(1000000000000000000ll, pow10_i64(18));
}

FIXTURE(tree) {
	char dir[64], pv[80];
	struct iio_found f;
	struct meter_config c;
};

static void put(const char *dir, const char *file, const char *text)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void files(struct iio_ct_files *f, const char *dir)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->devdir, sizeof(f->devdir), "%s", dir);
	strcpy(f->v, "in_altvoltage0_rms_raw");
	strcpy(f->i, "in_current0_rms_raw");
	strcpy(f->p, "in_power0_active_raw");
	strcpy(f->pf, "in_power0_powerfactor");
	strcpy(f->f, "in_altvoltage0_frequency");
	strcpy(f->e_imp, "in_energy0_active_raw");
	strcpy(f->e_exp, "in_energy1_active_raw");
	strcpy(f->v_scale, "in_altvoltage0_rms_scale");
	strcpy(f->i_scale, "in_current0_rms_scale");
	strcpy(f->p_scale, "in_power0_active_scale");
}

static void values(const char *dir, const char *v, const char *p, const char *e0, const char *e1)
{
	put(dir, "in_altvoltage0_rms_raw", v);
	put(dir, "in_current0_rms_raw", "5123456\n");
	put(dir, "in_power0_active_raw", p);
	put(dir, "in_power0_powerfactor", "-0.987654\n");
	put(dir, "in_altvoltage0_frequency", "50.001234\n");
	put(dir, "in_energy0_active_raw", e0);
	put(dir, "in_energy1_active_raw", e1);
	put(dir, "in_altvoltage0_rms_scale", "0.001000\n");
	put(dir, "in_current0_rms_scale", "0.001000\n");
	put(dir, "in_power0_active_scale", "1\n");
}

FIXTURE_SETUP(tree)
{
	strcpy(self->dir, "/tmp/agent_test_sensor_iio.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->pv, sizeof(self->pv), "%s/pv", self->dir);
	ASSERT_EQ(0, mkdir(self->pv, 0700));
	memset(&self->f, 0, sizeof(self->f));
	files(&self->f.mains, self->dir);
	config_defaults(&self->c);
	strcpy(self->c.mains_device, "gridmeter-ct");
	values(self->dir, "230123456\n", "-1178123\n", "123456789\n", "42\n");
}

FIXTURE_TEARDOWN(tree)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		TH_LOG("cleanup failed");
}

TEST_F(tree, reads_the_ct_driver_abi_exactly)
{
	char err[256];
	struct sensor *s = sensor_iio_open(&self->f, &self->c, false, err, sizeof(err));
	struct sensor_reading r;

	ASSERT_NE(NULL, s) TH_LOG("%s", err);
	ASSERT_EQ(0, s->ops->read(s, &r));
	EXPECT_EQ(230123u, r.v_mv);		/* 230123456 uV x 0.001 */
	EXPECT_EQ(5123u, r.i_ma);
	EXPECT_EQ(-1178123, r.p_mw);
	EXPECT_EQ(-988, r.pf_milli);
	EXPECT_EQ(50001u, r.f_mhz);
	EXPECT_TRUE(r.has_energy);
	EXPECT_EQ(123456789u, r.import_mj);
	EXPECT_EQ(42u, r.export_mj);
	EXPECT_FALSE(r.has_renew);
	/* the next cycle: every read is fresh (pread at 0 on kept descriptors) */
	values(self->dir, "207000000\n", "2500000\n", "123460389\n", "42\n");
	ASSERT_EQ(0, s->ops->read(s, &r));
	EXPECT_EQ(207000u, r.v_mv);
	EXPECT_EQ(2500000, r.p_mw);
	EXPECT_EQ(123460389u, r.import_mj);
	s->ops->destroy(s);
}

/* The driver's gap counters (issue 11): read when present, absent on old drivers. */
TEST_F(tree, sampling_gap_counters)
{
	char err[256];
	struct sensor *s;
	struct sensor_reading r;

	s = sensor_iio_open(&self->f, &self->c, false, err, sizeof(err));
	ASSERT_NE(NULL, s) TH_LOG("%s", err);
	ASSERT_EQ(0, s->ops->read(s, &r));
	EXPECT_FALSE(r.has_gaps);
	s->ops->destroy(s);

	put(self->dir, "missed_samples", "1200\n");
	put(self->dir, "gap_time_ns", "340000000\n");
	strcpy(self->f.mains.missed, "missed_samples");
	strcpy(self->f.mains.gap, "gap_time_ns");
	s = sensor_iio_open(&self->f, &self->c, false, err, sizeof(err));
	ASSERT_NE(NULL, s) TH_LOG("%s", err);
	ASSERT_EQ(0, s->ops->read(s, &r));
	EXPECT_TRUE(r.has_gaps);
	EXPECT_EQ(1200u, r.missed_samples);
	EXPECT_EQ(340000000u, r.gap_ns);
	put(self->dir, "gap_time_ns", "1340000000\n");
	ASSERT_EQ(0, s->ops->read(s, &r));
	EXPECT_EQ(1340000000u, r.gap_ns);
	s->ops->destroy(s);
}

TEST_F(tree, renewable_ct_and_missing_pieces)
{
	char err[256];
	struct sensor *s;
	struct sensor_reading r;

	files(&self->f.renew, self->pv);
	self->f.have_renew = 1;
	strcpy(self->c.renewable_device, "gridmeter-ct-pv");
	values(self->pv, "230000000\n", "-2000000\n", "7\n", "9000\n");	/* CT clamped backwards */
	s = sensor_iio_open(&self->f, &self->c, false, err, sizeof(err));
	ASSERT_NE(NULL, s) TH_LOG("%s", err);
	ASSERT_EQ(0, s->ops->read(s, &r));
	EXPECT_TRUE(r.has_renew);
	EXPECT_EQ(2000000, r.renew_mw);
	EXPECT_EQ(9000u, r.renew_mj);		/* the dominant direction */
	s->ops->destroy(s);

	/* no energy counters: power x time instead */
	unlink(strcat(strcpy(err, self->dir), "/in_energy1_active_raw"));
	self->f.have_renew = 0;
	s = sensor_iio_open(&self->f, &self->c, false, err, sizeof(err));
	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, s->ops->read(s, &r));
	EXPECT_FALSE(r.has_energy);
	s->ops->destroy(s);

	/* a missing scale is refused, not guessed */
	self->f.mains.i_scale[0] = 0;
	EXPECT_EQ(NULL, sensor_iio_open(&self->f, &self->c, false, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "scale"));
	/* so is a missing voltage file */
	files(&self->f.mains, self->dir);
	strcpy(self->f.mains.v, "in_voltage9_raw");
	EXPECT_EQ(NULL, sensor_iio_open(&self->f, &self->c, false, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "no voltage reading"));
}

TEST(discovery_without_the_device_reports_it)
{
	struct meter_config c;
	struct iio_found f;

	config_defaults(&c);
	strcpy(c.mains_device, "no-such-ct");
	EXPECT_NE(0, sensor_iio_discover(&c, &f));
	/* either libiio is missing or the device is: both are named */
	EXPECT_TRUE(strstr(f.err, "no-such-ct") || strstr(f.err, "libiio")) TH_LOG("%s", f.err);
}

/* In a child with its own mount namespace: a tmpfs over /sys/bus holding one fake device. */
static int fake_sysfs_discover(const char *current_file, struct iio_found *out)
{
	static const char *const files[] = {
		"in_altvoltage0_rms_raw", "in_altvoltage0_rms_scale", "in_current0_rms_scale",
		"in_power0_active_raw", "in_power0_active_scale", "in_power0_powerfactor",
		"in_altvoltage0_frequency", "in_energy0_active_raw", "in_energy1_active_raw",
		"sampling_frequency", NULL,
	};
	int pfd[2], status;
	pid_t pid;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (!pid) {
		const char *d = "/sys/bus/iio/devices/iio:device3";
		struct meter_config c;
		struct iio_found f;
		char p[256];

		close(pfd[0]);
		if (unshare(CLONE_NEWNS) || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("none", "/sys/bus", "tmpfs", 0, NULL))
			_exit(4);	/* no namespaces here: skip */
		mkdir("/sys/bus/iio", 0755);
		mkdir("/sys/bus/iio/devices", 0755);
		mkdir(d, 0755);
		put(d, "name", "gridmeter-ct\n");
		for (int k = 0; files[k]; k++)
			put(d, files[k], "1\n");
		put(d, current_file, "1\n");
		snprintf(p, sizeof(p), "%s/events", d);
		mkdir(p, 0755);
		config_defaults(&c);
		strcpy(c.mains_device, "gridmeter-ct");
		sensor_iio_discover(&c, &f);
		_exit(write(pfd[1], &f, sizeof(f)) == sizeof(f) ? 0 : 5);
	}
	close(pfd[1]);
	if (read(pfd[0], out, sizeof(*out)) != sizeof(*out))
		memset(out, 0, sizeof(*out));
	close(pfd[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(libiio_discovery_finds_the_abi_files)
{
	struct iio_found f;
	int r = fake_sysfs_discover("in_current0_rms_raw", &f);

	if (r == 4)
		SKIP(return, "no mount namespaces here");
	ASSERT_EQ(0, r);
	ASSERT_TRUE(f.ok) TH_LOG("%s", f.err);
	EXPECT_STREQ("/sys/bus/iio/devices/iio:device3", f.mains.devdir);
	EXPECT_STREQ("/dev/iio:device3", f.mains.devnode);
	EXPECT_STREQ("in_altvoltage0_rms_raw", f.mains.v);
	EXPECT_STREQ("in_altvoltage0_rms_scale", f.mains.v_scale);
	EXPECT_STREQ("in_current0_rms_raw", f.mains.i);
	EXPECT_STREQ("in_current0_rms_scale", f.mains.i_scale);
	EXPECT_STREQ("in_power0_active_raw", f.mains.p);
	EXPECT_STREQ("in_power0_active_scale", f.mains.p_scale);
	EXPECT_STREQ("in_power0_powerfactor", f.mains.pf);
	EXPECT_STREQ("in_altvoltage0_frequency", f.mains.f);
	/* libiio calls this one channel "energy0: active" with "raw": the file is what counts */
	EXPECT_STREQ("in_energy0_active_raw", f.mains.e_imp);
	EXPECT_STREQ("in_energy1_active_raw", f.mains.e_exp);
}

TEST(libiio_discovery_accepts_the_6_18_current_name)
{
	struct iio_found f;
	int r = fake_sysfs_discover("in_altcurrent0_rms_raw", &f);

	if (r == 4)
		SKIP(return, "no mount namespaces here");
	ASSERT_EQ(0, r);
	ASSERT_TRUE(f.ok) TH_LOG("%s", f.err);
	/* the 6.18 raw file is found (the scale keeps its 6.1 name in this tree) */
	EXPECT_STREQ("in_altcurrent0_rms_raw", f.mains.i);
}

TEST_HARNESS_MAIN
