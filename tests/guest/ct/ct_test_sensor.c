// SPDX-License-Identifier: GPL-2.0
/*
 * ct_test_sensor - in-guest tests of the gridmeter CT sensor driver
 * (gridmeter_ct) on the simulated ADC (gm_sim_adc): bound through its
 * iio_map and software node on x86_64, through the device tree
 * (tests/guest/dt/ct-sensor.dtso) on arm64.
 *
 * Every expectation is computed from the simulated waveform (amplitude in
 * milli-codes, phase) and the calibration the fixture gives the driver
 * (3.3 V / 4096 per code, CT 2000:1 on 22 ohm, voltage ratio 300), never
 * read back from the driver.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/iio/events.h>
#include <linux/iio/types.h>

#include "kselftest_harness.h"

#define SYS_IIO		"/sys/bus/iio/devices"
#define PLAT		"/sys/bus/platform"
#define CT_DRV		PLAT "/drivers/gridmeter-ct"
#define VOLT_PER_CODE	(3.3 / 4096 * 300.0)
#define AMP_PER_CODE	(3.3 / 4096 / 22.0 * 2000.0)
#define FS		4000.0

struct dev {
	char ct[320];		/* sysfs dir of gridmeter-ct */
	char sim[320];		/* sysfs dir of gm-sim-adc */
	char node[320];		/* /dev/iio:deviceN of gridmeter-ct */
	char cur[32];		/* "current0_rms" or "altcurrent0_rms" */
};

static int sh(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int find_dev(const char *name, char *dir, size_t len, char *node,
		    size_t nlen)
{
	DIR *d = opendir(SYS_IIO);
	struct dirent *e;
	char path[PATH_MAX], buf[64];
	int found = -1;


	while (d && (e = readdir(d))) {
		FILE *f;

		if (strncmp(e->d_name, "iio:device", 10))
			continue;
		snprintf(path, sizeof(path), SYS_IIO "/%s/name", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && !strncmp(buf, name, strlen(name)) &&
		    buf[strlen(name)] == '\n') {
			snprintf(dir, len, SYS_IIO "/%s", e->d_name);
			if (node)
				snprintf(node, nlen, "/dev/%s", e->d_name);
			found = 0;
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

static int rd_str(const char *dir, const char *attr, char *buf, size_t len)
{
	char path[PATH_MAX];
	int fd, n;

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	buf[n] = '\0';
	close(fd);
	return 0;
}

static double rd(const char *dir, const char *attr)
{
	char buf[128];

	if (rd_str(dir, attr, buf, sizeof(buf)))
		return NAN;
	return strtod(buf, NULL);
}

/* Write; returns 0 or -errno of the write. */
static int wr(const char *dir, const char *attr, const char *val)
{
	char path[PATH_MAX];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static int wr_int(const char *dir, const char *attr, long v)
{
	char b[32];

	snprintf(b, sizeof(b), "%ld", v);
	return wr(dir, attr, b);
}

/*
 * arm64: the ADC and its consumers are device-tree nodes. Besides the
 * consumer "ct-sensor", tests/guest/dt/ct-sensor.dtso has nodes that no
 * driver matches; a test binds one of them (driver_override) in place of
 * "ct-sensor", one consumer at a time on the simulated ADC.
 */
static bool dt_path(void)
{
	return !access("/sys/firmware/devicetree/base/adc-sim", F_OK);
}

static const char * const dt_test_nodes[] = {
	"ct-sensor-8k", "ct-sensor-no-ratio", "ct-sensor-bad-delay",
	"ct-sensor-bad-offset",
};

/* Back to "ct-sensor" only: no override left on the test-only nodes. */
static void dt_reset(void)
{
	char dir[PATH_MAX];
	size_t k;

	for (k = 0; dt_path() && k < sizeof(dt_test_nodes) / sizeof(dt_test_nodes[0]); k++) {
		snprintf(dir, sizeof(dir), PLAT "/devices/%s", dt_test_nodes[k]);
		wr(CT_DRV, "unbind", dt_test_nodes[k]);
		wr(dir, "driver_override", "\n");
	}
}

/* Unbind "ct-sensor", bind @node instead. Return: the bind's 0 or -errno. */
static int dt_bind_instead(const char *node)
{
	char dir[PATH_MAX];
	int ret;

	wr(CT_DRV, "unbind", "ct-sensor");
	snprintf(dir, sizeof(dir), PLAT "/devices/%s", node);
	ret = wr(dir, "driver_override", "gridmeter-ct");
	return ret ? ret : wr(CT_DRV, "bind", node);
}

/* Name of the consumer's platform device: the parent of the IIO device. */
static const char *pdev_name(const struct dev *d)
{
	static char b[PATH_MAX];
	char path[PATH_MAX + 8];
	char *slash;

	snprintf(path, sizeof(path), "%s/..", d->ct);
	if (!realpath(path, b))
		return "gridmeter-ct.0";
	slash = strrchr(b, '/');
	return slash ? slash + 1 : b;
}

static const char *cur_attr(const struct dev *d, const char *suffix)
{
	static char b[96];

	snprintf(b, sizeof(b), "in_%s_%s", d->cur, suffix);
	return b;
}

/* Wait until the driver has completed @n more cycles (30 s at most). */
static int wait_cycles(const struct dev *d, int n)
{
	double start = rd(d->ct, "cycles");
	int k;

	for (k = 0; k < 3000; k++) {
		if (rd(d->ct, "cycles") >= start + n)
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

/* The energy counter (J) and the cycle count read together, consistently. */
static double energy_at(const struct dev *d, const char *attr, double *cycles)
{
	double c0, c1, e;

	do {
		c0 = rd(d->ct, "cycles");
		e = rd(d->ct, attr) * rd(d->ct, "in_energy0_active_scale");
		c1 = rd(d->ct, "cycles");
	} while (c0 != c1);
	*cycles = c0;
	return e;
}

/*
 * The import energy (J) over @n whole cycles (counts at both ends), over a
 * window the sampler took without a gap: a gap's time is integrated but
 * counted in no cycle, and the guest's scheduling is not what these tests
 * look at. Up to 5 windows; -EAGAIN if every one had a gap.
 */
static int energy_over_cycles(const struct dev *d, int n, double *e0, double *c0,
			      double *e1, double *c1)
{
	for (int k = 0; k < 5; k++) {
		double g0 = rd(d->ct, "gap_time_ns");

		*e0 = energy_at(d, "in_energy0_active_raw", c0);
		if (wait_cycles(d, n))
			return -ETIMEDOUT;
		*e1 = energy_at(d, "in_energy0_active_raw", c1);
		if (rd(d->ct, "gap_time_ns") == g0)
			return 0;
	}
	return -EAGAIN;
}

static double rel(double got, double want)
{
	return fabs(got / want - 1.0);
}

FIXTURE(ct) {
	struct dev d;
};

/* the harness defines these non-static */
void ct_setup(struct __test_metadata *_metadata, FIXTURE_DATA(ct) *self,
	      const FIXTURE_VARIANT(ct) *variant);
void ct_teardown(struct __test_metadata *_metadata, FIXTURE_DATA(ct) *self,
		 const FIXTURE_VARIANT(ct) *variant);

FIXTURE_SETUP(ct)
{
	char buf[64];
	int k;

	sh("rmmod gridmeter_ct 2>/dev/null; rmmod gm_sim_adc 2>/dev/null");
	dt_reset();
	ASSERT_EQ(0, sh("modprobe gm_sim_adc"));
	ASSERT_EQ(0, sh("modprobe gridmeter_ct"));
	for (k = 0; k < 200; k++) {
		if (!find_dev("gridmeter-ct", self->d.ct, sizeof(self->d.ct),
			      self->d.node, sizeof(self->d.node)))
			break;
		usleep(10000);
	}
	ASSERT_EQ(0, find_dev("gridmeter-ct", self->d.ct, sizeof(self->d.ct),
			      self->d.node, sizeof(self->d.node)));
	ASSERT_EQ(0, find_dev("gm-sim-adc", self->d.sim, sizeof(self->d.sim),
			      NULL, 0));
	strcpy(self->d.cur, "altcurrent0_rms");
	if (rd_str(self->d.ct, "in_altcurrent0_rms_raw", buf, sizeof(buf)))
		strcpy(self->d.cur, "current0_rms");
	ASSERT_EQ(0, rd_str(self->d.ct, cur_attr(&self->d, "raw"), buf, sizeof(buf)));
	/* the first reading comes after the warm-up cycles */
	for (k = 0; k < 3000; k++) {
		if (rd(self->d.ct, "in_altvoltage0_frequency") > 0)
			break;
		usleep(10000);
	}
	ASSERT_GT(rd(self->d.ct, "in_altvoltage0_frequency"), 0);
}

FIXTURE_TEARDOWN(ct)
{
	/* a buffer left enabled would pin the driver (see the buffer test) */
	wr(self->d.ct, "buffer/enable", "0");
	sh("rmmod gridmeter_ct 2>/dev/null; rmmod gm_sim_adc 2>/dev/null");
	dt_reset();
}

/* 230 V, 10 A, PF 0.5 inductive at 50 Hz with 0.5 LSB noise. */
TEST_F(ct, readings_match_waveform)
{
	struct dev *d = &self->d;
	double va = rd(d->sim, "sim_ch0_amp_milli") / 1000 * VOLT_PER_CODE;
	double ia = rd(d->sim, "sim_ch1_amp_milli") / 1000 * AMP_PER_CODE;
	double phi = 60.0 * M_PI / 180;
	double v, i, p, q, s, pf, f, e0, e1, c0, c1;

	ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_phase_mdeg", -60000));
	ASSERT_EQ(0, wait_cycles(d, 20));

	v = rd(d->ct, "in_altvoltage0_rms_raw") * rd(d->ct, "in_altvoltage0_rms_scale") / 1000;
	i = rd(d->ct, cur_attr(d, "raw")) * rd(d->ct, cur_attr(d, "scale")) / 1000;
	p = rd(d->ct, "in_power0_active_raw") * rd(d->ct, "in_power0_active_scale") / 1000;
	q = rd(d->ct, "in_power0_reactive_raw") * rd(d->ct, "in_power0_reactive_scale") / 1000;
	s = rd(d->ct, "in_power0_apparent_raw") * rd(d->ct, "in_power0_apparent_scale") / 1000;
	pf = rd(d->ct, "in_power0_powerfactor");
	f = rd(d->ct, "in_altvoltage0_frequency");
	TH_LOG("V %.3f (%.3f) I %.4f (%.4f) P %.2f Q %.2f S %.2f PF %.5f f %.4f",
	       v, va / M_SQRT2, i, ia / M_SQRT2, p, q, s, pf, f);
	EXPECT_LT(rel(v, va / M_SQRT2), 0.001);
	EXPECT_LT(rel(i, ia / M_SQRT2), 0.002);
	EXPECT_LT(rel(p, va * ia / 2 * cos(phi)), 0.002);
	EXPECT_LT(rel(q, va * ia / 2 * sin(phi)), 0.002);
	EXPECT_LT(rel(s, va * ia / 2), 0.002);
	EXPECT_LT(fabs(pf - cos(phi)), 0.002);
	EXPECT_LT(fabs(f - 50.0), 0.01);

	/* energy over whole cycles: P / f per cycle */
	ASSERT_EQ(0, energy_over_cycles(d, 100, &e0, &c0, &e1, &c1));
	TH_LOG("energy %.3f J over %.0f cycles, expected %.3f", e1 - e0,
	       c1 - c0, va * ia / 2 * cos(phi) * (c1 - c0) / 50.0);
	EXPECT_LT(rel(e1 - e0, va * ia / 2 * cos(phi) * (c1 - c0) / 50.0), 0.001);
	EXPECT_EQ(0, rd(d->ct, "in_energy1_active_raw"));
}

TEST_F(ct, line_frequency)
{
	struct dev *d = &self->d;

	ASSERT_EQ(0, wr_int(d->sim, "sim_freq_mhz", 60000));
	ASSERT_EQ(0, wait_cycles(d, 10));
	EXPECT_LT(fabs(rd(d->ct, "in_altvoltage0_frequency") - 60.0), 0.01);
	ASSERT_EQ(0, wr_int(d->sim, "sim_freq_mhz", 49500));
	ASSERT_EQ(0, wait_cycles(d, 10));
	EXPECT_LT(fabs(rd(d->ct, "in_altvoltage0_frequency") - 49.5), 0.01);
}

TEST_F(ct, export_counts_exported_energy)
{
	struct dev *d = &self->d;
	double imp0, imp1, exp0, exp1, c0, c1;

	ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_phase_mdeg", 180000));
	ASSERT_EQ(0, wait_cycles(d, 5));
	imp0 = energy_at(d, "in_energy0_active_raw", &c0);
	exp0 = energy_at(d, "in_energy1_active_raw", &c0);
	ASSERT_EQ(0, wait_cycles(d, 50));
	imp1 = energy_at(d, "in_energy0_active_raw", &c1);
	exp1 = energy_at(d, "in_energy1_active_raw", &c1);
	EXPECT_EQ(imp0, imp1);
	EXPECT_GT(exp1, exp0);
	EXPECT_LT(rd(d->ct, "in_power0_active_raw"), 0);
	EXPECT_LT(rd(d->ct, "in_power0_powerfactor"), -0.99);
}

TEST_F(ct, idle_line_reads_zero)
{
	struct dev *d = &self->d;
	double e0, e1, c0, c1;
	int k;

	ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_amp_milli", 0));
	ASSERT_EQ(0, wait_cycles(d, 5));
	e0 = energy_at(d, "in_energy0_active_raw", &c0);
	for (k = 0; k < 20; k++) {
		ASSERT_EQ(0, wait_cycles(d, 1));
		EXPECT_EQ(0, rd(d->ct, "in_power0_active_raw"));
		EXPECT_EQ(0, rd(d->ct, "in_power0_reactive_raw"));
		EXPECT_EQ(0, rd(d->ct, cur_attr(d, "raw")));
	}
	e1 = energy_at(d, "in_energy0_active_raw", &c1);
	EXPECT_EQ(e0, e1);
	EXPECT_EQ(0, rd(d->ct, "in_energy1_active_raw"));
}

static int open_events(const struct dev *d)
{
	int fd = open(d->node, O_RDONLY), efd = -1;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, IIO_GET_EVENT_FD_IOCTL, &efd) < 0)
		efd = -errno;
	close(fd);
	return efd;
}

/* Next event within @ms, or -ETIMEDOUT. */
static int next_event(int efd, struct iio_event_data *ev, int ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -ETIMEDOUT;
	return read(efd, ev, sizeof(*ev)) == sizeof(*ev) ? 0 : -EIO;
}

TEST_F(ct, threshold_events)
{
	struct dev *d = &self->d;
	struct iio_event_data ev;
	int efd;

	ASSERT_EQ(0, wait_cycles(d, 3));
	efd = open_events(d);
	ASSERT_GE(efd, 0);

	/* over-voltage at 240 V, hysteresis 2 V; the line goes to 250 V */
	ASSERT_EQ(0, wr_int(d->ct, "events/in_altvoltage0_rms_thresh_rising_value", 240000000));
	ASSERT_EQ(0, wr_int(d->ct, "events/in_altvoltage0_rms_thresh_rising_hysteresis", 2000000));
	ASSERT_EQ(0, wr(d->ct, "events/in_altvoltage0_rms_thresh_rising_en", "1"));
	EXPECT_EQ(-ETIMEDOUT, next_event(efd, &ev, 300));
	ASSERT_EQ(0, wr_int(d->sim, "sim_ch0_amp_milli", lround(250 * M_SQRT2 / VOLT_PER_CODE * 1000)));
	ASSERT_EQ(0, next_event(efd, &ev, 5000));
	EXPECT_EQ(IIO_ALTVOLTAGE, IIO_EVENT_CODE_EXTRACT_CHAN_TYPE(ev.id));
	EXPECT_EQ(IIO_EV_TYPE_THRESH, IIO_EVENT_CODE_EXTRACT_TYPE(ev.id));
	EXPECT_EQ(IIO_EV_DIR_RISING, IIO_EVENT_CODE_EXTRACT_DIR(ev.id));
	/* pushed once, not every cycle */
	EXPECT_EQ(-ETIMEDOUT, next_event(efd, &ev, 300));

	/* sag below 200 V */
	ASSERT_EQ(0, wr_int(d->ct, "events/in_altvoltage0_rms_thresh_falling_value", 200000000));
	ASSERT_EQ(0, wr(d->ct, "events/in_altvoltage0_rms_thresh_falling_en", "1"));
	ASSERT_EQ(0, wr_int(d->sim, "sim_ch0_amp_milli", lround(180 * M_SQRT2 / VOLT_PER_CODE * 1000)));
	ASSERT_EQ(0, next_event(efd, &ev, 5000));
	EXPECT_EQ(IIO_EV_DIR_FALLING, IIO_EVENT_CODE_EXTRACT_DIR(ev.id));

	/* over-current: a load step from 10 A to 20 A */
	ASSERT_EQ(0, wr_int(d->ct, "events/in_current0_rms_thresh_rising_value", 15000000) &&
		  wr_int(d->ct, "events/in_altcurrent0_rms_thresh_rising_value", 15000000));
	ASSERT_EQ(0, wr(d->ct, "events/in_current0_rms_thresh_rising_en", "1") &&
		  wr(d->ct, "events/in_altcurrent0_rms_thresh_rising_en", "1"));
	ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_step_amp_milli", lround(20 * M_SQRT2 / AMP_PER_CODE * 1000)));
	ASSERT_EQ(0, wr_int(d->sim, "sim_step_after", 400));
	ASSERT_EQ(0, next_event(efd, &ev, 5000));
	EXPECT_EQ(IIO_EV_DIR_RISING, IIO_EVENT_CODE_EXTRACT_DIR(ev.id));
	EXPECT_NE(IIO_ALTVOLTAGE, IIO_EVENT_CODE_EXTRACT_CHAN_TYPE(ev.id));
	close(efd);
}

TEST_F(ct, read_errors_discard_cycles)
{
	struct dev *d = &self->d;
	double err0, dis0;
	double va = rd(d->sim, "sim_ch0_amp_milli") / 1000 * VOLT_PER_CODE;
	int k;

	ASSERT_EQ(0, wait_cycles(d, 3));
	err0 = rd(d->ct, "read_errors");
	dis0 = rd(d->ct, "cycles_discarded");
	ASSERT_EQ(0, wr_int(d->sim, "sim_fail_count", 3));
	ASSERT_EQ(0, wait_cycles(d, 3));
	EXPECT_EQ(err0 + 3, rd(d->ct, "read_errors"));
	EXPECT_GE(rd(d->ct, "cycles_discarded"), dis0 + 1);
	/* never a garbage reading: every reading stays right */
	for (k = 0; k < 10; k++) {
		ASSERT_EQ(0, wait_cycles(d, 1));
		EXPECT_LT(rel(rd(d->ct, "in_altvoltage0_rms_raw") / 1e6, va / M_SQRT2), 0.002);
	}
}

TEST_F(ct, invalid_writes_are_einval)
{
	struct dev *d = &self->d;

	EXPECT_EQ(-EINVAL, wr(d->ct, cur_attr(d, "calibscale"), "5"));
	EXPECT_EQ(-EINVAL, wr(d->ct, cur_attr(d, "calibscale"), "0.1"));
	EXPECT_EQ(-EINVAL, wr(d->ct, cur_attr(d, "calibscale"), "abc"));
	EXPECT_EQ(-EINVAL, wr(d->ct, cur_attr(d, "phase"), "1.0"));
	EXPECT_EQ(-EINVAL, wr(d->ct, "sampling_frequency", "100"));
	EXPECT_EQ(-EINVAL, wr(d->ct, "sampling_frequency", "20000"));
	/* 8000 pairs/s cannot hold the fixture's 125 us conversion delay */
	EXPECT_EQ(-EINVAL, wr(d->ct, "sampling_frequency", "8000"));
	EXPECT_EQ(-EINVAL, wr(d->ct, "events/in_altvoltage0_rms_thresh_rising_value", "-1"));
	EXPECT_EQ(4000, rd(d->ct, "sampling_frequency"));
	EXPECT_EQ(1.0, rd(d->ct, cur_attr(d, "calibscale")));
	EXPECT_EQ(0, wr(d->ct, "sampling_frequency", "4000"));
}

TEST_F(ct, calibration_at_runtime)
{
	struct dev *d = &self->d;
	double va = rd(d->sim, "sim_ch0_amp_milli") / 1000 * VOLT_PER_CODE;
	double ia = rd(d->sim, "sim_ch1_amp_milli") / 1000 * AMP_PER_CODE;
	double p, v;


	ASSERT_EQ(0, wr(d->ct, "in_altvoltage0_rms_calibscale", "1.100000"));
	EXPECT_EQ(1.1, rd(d->ct, "in_altvoltage0_rms_calibscale"));
	ASSERT_EQ(0, wait_cycles(d, 5));
	v = rd(d->ct, "in_altvoltage0_rms_raw") / 1e6;
	TH_LOG("calibscale 1.1: %.3f V, expected %.3f", v, 1.1 * va / M_SQRT2);
	EXPECT_LT(rel(v, 1.1 * va / M_SQRT2), 0.001);
	ASSERT_EQ(0, wr(d->ct, "in_altvoltage0_rms_calibscale", "1"));

	/* the CT leads 5 degrees; compensated through the phase attribute */
	ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_phase_mdeg", -60000 + 5000));
	ASSERT_EQ(0, wr(d->ct, cur_attr(d, "phase"), "0.087266463"));
	ASSERT_EQ(0, wait_cycles(d, 5));
	p = rd(d->ct, "in_power0_active_raw") / 1000;
	TH_LOG("P %.2f W, expected %.2f", p, va * ia / 2 * 0.5);
	EXPECT_LT(rel(p, va * ia / 2 * 0.5), 0.002);
}

/* Stream per-cycle records, then unbind, rebind and rmmod while streaming. */
static int enable_buffer(const struct dev *d)
{
	static const char * const el[] = {
		"in_altvoltage1_en", "in_power1_en", "in_power2_en",
		"in_power3_en", "in_timestamp_en",
	};
	char path[PATH_MAX];
	size_t k;
	int ret;

	snprintf(path, sizeof(path), "%s/scan_elements", d->ct);
	ret = wr(path, d->cur[0] == 'a' ? "in_altcurrent0_rms_en" : "in_current0_rms_en", "1");
	for (k = 0; !ret && k < sizeof(el) / sizeof(el[0]); k++)
		ret = wr(path, el[k], "1");
	if (!ret)
		ret = wr(d->ct, "buffer/length", "64");
	if (!ret)
		ret = wr(d->ct, "buffer/enable", "1");
	return ret;
}

struct rec {
	uint64_t i, v;
	int64_t p, q;
	uint64_t s;
	int64_t ts;
};

TEST_F(ct, buffer_stream_unbind_rebind_rmmod)
{
	struct dev *d = &self->d;
	struct rec r[8];
	int fd, k, n;
	int64_t last = 0;

	char trig[64] = "", want[PATH_MAX + 16], pdev[PATH_MAX];

	snprintf(pdev, sizeof(pdev), "%s", pdev_name(d));
	/* the per-cycle trigger is the buffer's default */
	snprintf(want, sizeof(want), "%s-cycle\n", pdev);
	EXPECT_EQ(0, rd_str(d->ct, "trigger/current_trigger", trig, sizeof(trig)));
	EXPECT_EQ(0, strcmp(trig, want)) TH_LOG("trigger '%s'", trig);
	ASSERT_EQ(0, enable_buffer(d));
	fd = open(d->node, O_RDONLY);
	ASSERT_GE(fd, 0);
	for (k = 0; k < 5; k++) {
		n = read(fd, r, sizeof(r));
		ASSERT_GT(n, 0);
		ASSERT_EQ(0, n % (int)sizeof(r[0]));
		for (int j = 0; j < n / (int)sizeof(r[0]); j++) {
			EXPECT_LT(fabs(r[j].v / 1e6 - 230.0), 0.5);
			EXPECT_LT(fabs(r[j].s / 1e3 - 2300.0), 5.0);
			EXPECT_GT(r[j].ts, last);
			last = r[j].ts;
		}
	}
	/* unbind with the buffer enabled and the file open */
	ASSERT_EQ(0, wr("/sys/bus/platform/drivers/gridmeter-ct", "unbind", pdev));
	n = read(fd, r, sizeof(r));
	EXPECT_LE(n, 0);
	close(fd);
	ASSERT_EQ(0, wr("/sys/bus/platform/drivers/gridmeter-ct", "bind", pdev));
	usleep(200000);
	ASSERT_EQ(0, find_dev("gridmeter-ct", d->ct, sizeof(d->ct), d->node, sizeof(d->node)));
	ASSERT_EQ(0, enable_buffer(d));
	fd = open(d->node, O_RDONLY);
	ASSERT_GE(fd, 0);
	n = read(fd, r, sizeof(r));
	EXPECT_GT(n, 0);
	/* an open file pins the module: rmmod must refuse, not crash */
	EXPECT_NE(0, sh("rmmod gridmeter_ct 2>/dev/null"));
	close(fd);
	/*
	 * While a trigger drives the buffer the IIO core pins the driver
	 * (iio_trigger_attach_poll_func): rmmod refuses cleanly, and works
	 * once the buffer is off.
	 */
	EXPECT_NE(0, sh("rmmod gridmeter_ct 2>/dev/null"));
	usleep(100000);
	EXPECT_GT(rd(d->ct, "cycles"), 0);
	ASSERT_EQ(0, wr(d->ct, "buffer/enable", "0"));
	EXPECT_EQ(0, sh("rmmod gridmeter_ct"));
	/* and the provider goes away under a bound consumer */
	EXPECT_EQ(0, sh("modprobe gridmeter_ct"));
	usleep(200000);
	EXPECT_EQ(0, sh("rmmod gm_sim_adc"));
	usleep(100000);
	EXPECT_EQ(0, sh("rmmod gridmeter_ct"));
	/* no sampling thread left behind */
	EXPECT_NE(0, sh("grep -q gridmeter-ct /proc/[0-9]*/comm 2>/dev/null"));
}

/* Twenty unbind/bind rounds, each with the buffer streaming and read. */
TEST_F(ct, unbind_bind_while_streaming_repeated)
{
	struct dev *d = &self->d;
	char pdev[PATH_MAX];
	struct rec r[4];
	int k, fd, n;

	snprintf(pdev, sizeof(pdev), "%s", pdev_name(d));
	for (k = 0; k < 20; k++) {
		ASSERT_EQ(0, enable_buffer(d));
		fd = open(d->node, O_RDONLY);
		ASSERT_GE(fd, 0);
		n = read(fd, r, sizeof(r));
		EXPECT_GT(n, 0);
		ASSERT_EQ(0, wr("/sys/bus/platform/drivers/gridmeter-ct", "unbind", pdev));
		close(fd);
		ASSERT_EQ(0, wr("/sys/bus/platform/drivers/gridmeter-ct", "bind", pdev));
		for (n = 0; n < 100 && find_dev("gridmeter-ct", d->ct, sizeof(d->ct),
						d->node, sizeof(d->node)); n++)
			usleep(10000);
		ASSERT_LT(n, 100);
	}
	/* one sampling thread, not twenty */
	EXPECT_EQ(0, sh("test $(grep -l gridmeter-ct /proc/[0-9]*/comm 2>/dev/null | wc -l) -eq 1"));
}

/*
 * The over-voltage event belongs to the cycle that crossed: its timestamp
 * is that of the first buffered cycle above the threshold.
 */
TEST_F(ct, event_in_the_crossing_cycle)
{
	struct dev *d = &self->d;
	struct iio_event_data ev;
	struct rec r;
	int efd, fd, k;

	ASSERT_EQ(0, enable_buffer(d));
	fd = open(d->node, O_RDONLY);
	ASSERT_GE(fd, 0);
	/* one open of the character device: events and buffer share it */
	efd = -1;
	ASSERT_EQ(0, ioctl(fd, IIO_GET_EVENT_FD_IOCTL, &efd));
	ASSERT_GE(efd, 0);
	ASSERT_EQ(0, wr_int(d->ct, "events/in_altvoltage0_rms_thresh_rising_value", 240000000));
	ASSERT_EQ(0, wr(d->ct, "events/in_altvoltage0_rms_thresh_rising_en", "1"));
	ASSERT_EQ(0, wr_int(d->sim, "sim_ch0_amp_milli", lround(250 * M_SQRT2 / VOLT_PER_CODE * 1000)));
	ASSERT_EQ(0, next_event(efd, &ev, 5000));
	for (k = 0; k < 500; k++) {
		ASSERT_EQ((int)sizeof(r), read(fd, &r, sizeof(r)));
		if (r.v > 240000000)
			break;
	}
	ASSERT_LT(k, 500);
	EXPECT_EQ(ev.timestamp, r.ts);
	close(efd);
	close(fd);
}

/*
 * Missing or inconsistent properties, or an ADC channel the driver cannot
 * use: no device, one clear log line. The properties come from
 * gm_sim_adc's software node (bad_props) on x86_64 and from deliberately
 * wrong device-tree nodes on arm64; the ADC cases from gm_sim_adc's
 * parameters on both.
 */
TEST(probe_rejects_bad_properties)
{
	static const struct {
		const char *sim_args;	/* x86_64; on arm64 too unless dt_node */
		const char *dt_node;	/* arm64: the consumer node to bind */
		const char *line;
	} c[] = {
		{ "bad_props=1", "ct-sensor-no-ratio",
		  "gridmeter,ct-turns-ratio: missing" },
		{ "bad_props=2", "ct-sensor-bad-delay",
		  "gridmeter,current-delay-ns = 250000: not below the pair period" },
		{ "bad_props=3", "ct-sensor-bad-offset",
		  "gridmeter,current-rms-offset = 16777217: out of range +-16777216" },
		{ "bits=14", NULL,
		  "io-channel 'voltage' has 14-bit codes: at most 12 bits supported" },
		/* mcp320x declares no scan type: the bits come from its scale */
		{ "bits=13 adc_quirk=3", NULL,
		  "io-channel 'voltage' has 13-bit codes: at most 12 bits supported" },
		{ "adc_quirk=1", NULL, "io-channel 'voltage' has no scale" },
		{ "adc_quirk=2", NULL,
		  "io-channel 'voltage' has a non-zero offset: not supported" },
	};
	bool dt = dt_path();
	char cmd[512], dir[320];
	size_t k;

	for (k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		bool node = dt && c[k].dt_node;
		const char *consumer = node ? c[k].dt_node :
				       dt ? "ct-sensor" : "gridmeter-ct.0";

		sh("rmmod gridmeter_ct 2>/dev/null; rmmod gm_sim_adc 2>/dev/null; dmesg -c >/dev/null");
		dt_reset();
		snprintf(cmd, sizeof(cmd), "modprobe gm_sim_adc %s",
			 node ? "" : c[k].sim_args);
		ASSERT_EQ(0, sh(cmd));
		ASSERT_EQ(0, sh("modprobe gridmeter_ct"));
		usleep(200000);
		if (node) {
			/* the probe's error comes back from the bind */
			EXPECT_NE(0, dt_bind_instead(c[k].dt_node));
			usleep(100000);
		}
		EXPECT_NE(0, find_dev("gridmeter-ct", dir, sizeof(dir), NULL, 0));
		snprintf(dir, sizeof(dir), PLAT "/devices/%s", consumer);
		EXPECT_EQ(0, access(dir, F_OK));
		strncat(dir, "/driver", sizeof(dir) - strlen(dir) - 1);
		EXPECT_NE(0, access(dir, F_OK));
		/*
		 * exactly one line from the driver, and it is this one (6.12's
		 * driver core adds its own "probe with driver ... failed")
		 */
		snprintf(cmd, sizeof(cmd),
			 "test $(dmesg | grep -c \"gridmeter-ct %s: .*%s\") -eq 1 && "
			 "test $(dmesg | grep \"gridmeter-ct %s: \" | grep -vc 'probe with driver') -eq 1",
			 consumer, c[k].line, consumer);
		EXPECT_EQ(0, sh(cmd)) sh("dmesg | tail -5");
	}
	sh("rmmod gridmeter_ct; rmmod gm_sim_adc");
	dt_reset();
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/*
 * Reload the fixture with @sim_args; on arm64 bind @dt_node (when given)
 * instead of "ct-sensor". Then wait for the first reading.
 */
static int reload(struct dev *d, const char *sim_args, const char *dt_node)
{
	char cmd[256];
	int k;

	sh("rmmod gridmeter_ct 2>/dev/null; rmmod gm_sim_adc 2>/dev/null");
	dt_reset();
	snprintf(cmd, sizeof(cmd), "modprobe gm_sim_adc %s", sim_args);
	if (sh(cmd) || sh("modprobe gridmeter_ct"))
		return -1;
	if (dt_path() && dt_node) {
		usleep(200000);
		if (dt_bind_instead(dt_node))
			return -2;
	}
	for (k = 0; k < 200 && find_dev("gridmeter-ct", d->ct, sizeof(d->ct),
					d->node, sizeof(d->node)); k++)
		usleep(10000);
	if (find_dev("gridmeter-ct", d->ct, sizeof(d->ct), d->node, sizeof(d->node)) ||
	    find_dev("gm-sim-adc", d->sim, sizeof(d->sim), NULL, 0))
		return -3;
	/* pairs at the fixture's pace (the rate is policy, set in sysfs) */
	if (wr_int(d->ct, "sampling_frequency", lround(rd(d->sim, "sim_conv_rate_hz") / 2)))
		return -5;
	for (k = 0; k < 3000 && !(rd(d->ct, "in_altvoltage0_frequency") > 0); k++)
		usleep(10000);
	return rd(d->ct, "in_altvoltage0_frequency") > 0 ? 0 : -4;
}

/* Completed cycles and the ADC's conversions, read consistently. */
/* The simulator's catch-ups of its time: jumps, and the conversions skipped. */
static void sim_catchups(const struct dev *d, double *jumps, double *skipped)
{
	char buf[128];

	*jumps = NAN;
	*skipped = NAN;
	if (!rd_str(d->sim, "sim_catchups", buf, sizeof(buf)) &&
	    sscanf(buf, "%lf %lf", jumps, skipped) != 2)
		*jumps = NAN;
}

static void cycles_conversions(const struct dev *d, double *cycles, double *conv)
{
	double c0, c1;

	do {
		c0 = rd(d->ct, "cycles");
		*conv = rd(d->sim, "sim_conversions");
		c1 = rd(d->ct, "cycles");
	} while (c0 != c1);
	*cycles = c0;
}

/*
 * 8000 pairs/s: the fixture converts at 16 kHz (one conversion = 62.5 us
 * between voltage and current); on arm64 the node "ct-sensor-8k" describes
 * that consumer. Readings must stay right, and every simulated mains cycle
 * must be measured (counters, not time). The real-time rate the guest
 * sustains is only logged: a TCG guest is no Raspberry Pi, and wall-clock
 * time is no pass/fail criterion.
 */
TEST_F(ct, pairs_8000_per_second)
{
	struct dev *d = &self->d;
	double va, ia, c0, c1, n0, n1, dis0, per_cycle, t0, t1, g0, gaps, j0, j1, k0, k1;

	ASSERT_EQ(0, reload(d, "rate=16000", "ct-sensor-8k"));
	/* policy, not hardware: reload() set the rate in sysfs */
	EXPECT_EQ(8000, rd(d->ct, "sampling_frequency"));
	EXPECT_EQ(16000, rd(d->sim, "sim_conv_rate_hz"));
	ASSERT_EQ(0, wait_cycles(d, 10));
	va = rd(d->sim, "sim_ch0_amp_milli") / 1000 * VOLT_PER_CODE;
	ia = rd(d->sim, "sim_ch1_amp_milli") / 1000 * AMP_PER_CODE;
	EXPECT_LT(rel(rd(d->ct, "in_altvoltage0_rms_raw") / 1e6, va / M_SQRT2), 0.001);
	EXPECT_LT(rel(rd(d->ct, cur_attr(d, "raw")) / 1e6, ia / M_SQRT2), 0.002);
	EXPECT_LT(rel(rd(d->ct, "in_power0_active_raw") / 1e3, va * ia / 2), 0.002);
	EXPECT_LT(fabs(rd(d->ct, "in_altvoltage0_frequency") - 50.0), 0.01);

	/* conversions per mains cycle: 16000 / 50 = 320 */
	per_cycle = rd(d->sim, "sim_conv_rate_hz") * 1000 / rd(d->sim, "sim_freq_mhz");
	dis0 = rd(d->ct, "cycles_discarded");
	g0 = rd(d->ct, "gap_time_ns");
	sim_catchups(d, &j0, &k0);
	cycles_conversions(d, &c0, &n0);
	t0 = now_s();
	ASSERT_EQ(0, wait_cycles(d, 100));
	cycles_conversions(d, &c1, &n1);
	t1 = now_s();
	sim_catchups(d, &j1, &k1);
	gaps = rd(d->ct, "gap_time_ns") - g0;
	/* a figure only: stderr, the test child's stdout is not flushed */
	TH_LOG("sustained %.0f pairs/s of 8000 (wall clock, logged only)",
	       (n1 - n0) / 2 / (t1 - t0));
	TH_LOG("%.0f cycles over %.0f conversions (%.2f expected), discarded %.0f, read errors %.0f",
	       c1 - c0, n1 - n0, (n1 - n0) / per_cycle,
	       rd(d->ct, "cycles_discarded") - dis0, rd(d->ct, "read_errors"));
	/*
	 * One cycle per simulated mains cycle, up to the one in progress;
	 * where the guest could not keep up (a sampling gap: the mains went
	 * on), the cycles the gap covered and the two it broke are not counted.
	 * The simulator decides that the mains went on by its own clock: a
	 * catch-up of just over 50 ms can come where the driver, by its
	 * schedule, was just under 50 ms late and read on (seen once on arm64:
	 * 2.8 cycles skipped, no gap); the cycles it skipped were never
	 * sampled, and the one it broke may count once or twice.
	 */
	ASSERT_FALSE(isnan(j0) || isnan(j1));
	if (gaps > 0)
		TH_LOG("the guest fell behind: %.1f ms not measured", gaps / 1e6);
	if (j1 > j0)
		TH_LOG("the simulated mains went on unsampled %.0f times: %.2f cycles",
		       j1 - j0, (k1 - k0) / per_cycle);
	EXPECT_LT(fabs(c1 - c0 - (n1 - n0 - (gaps > 0 ? 0 : k1 - k0)) / per_cycle),
		  1.1 + (gaps > 0 ? gaps / 20e6 + 2 : 0) + 2 * (j1 - j0));
	EXPECT_EQ(dis0, rd(d->ct, "cycles_discarded"));
	EXPECT_EQ(0, rd(d->ct, "read_errors"));
	EXPECT_LT(rel(rd(d->ct, "in_altvoltage0_rms_raw") / 1e6, va / M_SQRT2), 0.001);
	EXPECT_LT(fabs(rd(d->ct, "in_altvoltage0_frequency") - 50.0), 0.01);
}

/*
 * A 10-bit ADC with the MCP3008's scale, 3.3 V / 2^10 as
 * IIO_VAL_FRACTIONAL_LOG2 (3.3e9 nV per 1024 codes: more than an int).
 * The same 230 V, 10 A, PF 0.5 line, quantised 4x coarser: the means of 50
 * consecutive buffered cycles and the energy must match the waveform.
 */
TEST_F(ct, mcp3008_10bit_3v3)
{
	const double vpc = 3.3 / 1024 * 300.0, apc = 3.3 / 1024 / 22.0 * 2000.0;
	const double phi = 60.0 * M_PI / 180;
	struct dev *d = &self->d;
	double va, ia, v = 0, i = 0, p = 0, q = 0, s = 0, f = 0, e0, e1, c0, c1;
	struct rec r[8];
	int fd, n, k = 0;

	ASSERT_EQ(0, reload(d, "bits=10 vref_mv=3300", NULL));
	/* the fixture really presents an MCP3008 at 3.3 V */
	EXPECT_LT(fabs(rd(d->sim, "in_voltage_scale") - 3300.0 / 1024), 1e-9);
	ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_phase_mdeg", -60000));
	va = rd(d->sim, "sim_ch0_amp_milli") / 1000 * vpc;
	ia = rd(d->sim, "sim_ch1_amp_milli") / 1000 * apc;
	EXPECT_GT(va, 320);	/* 230 V rms, in codes of a 10-bit ADC */
	EXPECT_LE(rd(d->sim, "sim_ch0_dc") + rd(d->sim, "sim_ch0_amp_milli") / 1000, 1023);
	ASSERT_EQ(0, wait_cycles(d, 5));

	ASSERT_EQ(0, enable_buffer(d));
	fd = open(d->node, O_RDONLY);
	ASSERT_GE(fd, 0);
	while (k < 50) {
		n = read(fd, r, sizeof(r));
		ASSERT_GT(n, 0);
		for (int j = 0; j < n / (int)sizeof(r[0]) && k < 50; j++, k++) {
			v += r[j].v / 1e6 / 50;
			i += r[j].i / 1e6 / 50;
			p += r[j].p / 1e3 / 50;
			q += r[j].q / 1e3 / 50;
			s += r[j].s / 1e3 / 50;
		}
	}
	close(fd);
	f = rd(d->ct, "in_altvoltage0_frequency");
	TH_LOG("10 bit: V %.3f (%.3f) I %.4f (%.4f) P %.2f (%.2f) Q %.2f S %.2f f %.4f",
	       v, va / M_SQRT2, i, ia / M_SQRT2, p, va * ia / 2 * cos(phi), q, s, f);
	EXPECT_LT(rel(v, va / M_SQRT2), 0.001);
	EXPECT_LT(rel(i, ia / M_SQRT2), 0.002);
	EXPECT_LT(rel(p, va * ia / 2 * cos(phi)), 0.002);
	EXPECT_LT(rel(q, va * ia / 2 * sin(phi)), 0.002);
	EXPECT_LT(rel(s, va * ia / 2), 0.002);
	EXPECT_LT(fabs(f - 50.0), 0.01);

	ASSERT_EQ(0, energy_over_cycles(d, 100, &e0, &c0, &e1, &c1));
	TH_LOG("energy %.3f J over %.0f cycles, expected %.3f", e1 - e0,
	       c1 - c0, va * ia / 2 * cos(phi) * (c1 - c0) / 50.0);
	EXPECT_LT(rel(e1 - e0, va * ia / 2 * cos(phi) * (c1 - c0) / 50.0), 0.001);
	EXPECT_EQ(0, rd(d->ct, "read_errors"));
}

/* The fixture's GPIO chip (relays): found by label, lines latch their level. */
TEST_F(ct, sim_gpio_chip)
{
	EXPECT_EQ(0, sh("gpiodetect | grep -q 'gm-sim-gpio.*8 lines'")) sh("gpiodetect");
	EXPECT_EQ(0, sh("gpioset gm-sim-gpio 3=1 && test $(gpioget gm-sim-gpio 3) = 1"));
	EXPECT_EQ(0, sh("gpioset gm-sim-gpio 3=0 && test $(gpioget gm-sim-gpio 3) = 0"));
	EXPECT_EQ(0, sh("gpioset gm-sim-gpio 7=1 && test $(gpioget gm-sim-gpio 3) = 0"));
}

TEST_F(ct, libiio_tools)
{
	struct dev *d = &self->d;
	char cmd[256];

	EXPECT_EQ(0, sh("iio_info >/tmp/iio_info.txt 2>&1")) {
		sh("tail -20 /tmp/iio_info.txt");
		sh("command -v strace >/dev/null && strace -f iio_info 2>&1 | tail -60");
		sh("ls /sys/bus/iio/devices/*/ /sys/bus/iio/devices/*/scan_elements");
	}
	EXPECT_EQ(0, sh("grep -q gridmeter-ct /tmp/iio_info.txt"));
	EXPECT_EQ(0, sh("grep -q powerfactor /tmp/iio_info.txt"));
	EXPECT_EQ(0, sh("iio_attr -d gridmeter-ct sampling_frequency | grep -q 4000"));
	EXPECT_EQ(0, sh("iio_attr -c gridmeter-ct power0 powerfactor >/dev/null"));
	snprintf(cmd, sizeof(cmd),
		 "iio_readdev -b 4 -s 4 gridmeter-ct %s altvoltage1 timestamp 2>/tmp/rd.err >/tmp/rd.bin",
		 d->cur[0] == 'a' ? "altcurrent0" : "current0");
	/* (iio_readdev warns that the buffer has no mmap: not a kernel warning) */
	EXPECT_EQ(0, sh(cmd)) sh("sed 's/WARNING/note/' /tmp/rd.err");
	/* 4 samples of current, voltage (8 bytes each) and the timestamp */
	EXPECT_EQ(0, sh("test $(wc -c </tmp/rd.bin) -eq 96"))
		sh("wc -c </tmp/rd.bin; sed 's/WARNING/note/' /tmp/rd.err; "
		   "cd /sys/bus/iio/devices/iio:device1 && grep . buffer/* scan_elements/*_en");
}

/*
 * Energy (J) and the simulated time (conversions), read together: in the
 * same cycle, and while the sampler was keeping up. Reading the simulated
 * time brings it up to the wall clock; had the sampler been held off just
 * then (a loaded TCG host pauses the guest, the scheduler runs this test
 * instead), the reference would include a gap the meter has not yet seen,
 * let alone integrated, and the energy would look short by all of it. So
 * a read after which the meter finds missed samples is taken again.
 */
static double energy_conv(const struct dev *d, double *conv)
{
	double c0, c1, m0, e;

	for (int tries = 0;; tries++) {
		m0 = rd(d->ct, "missed_samples");
		c0 = rd(d->ct, "cycles");
		e = rd(d->ct, "in_energy0_active_raw") * rd(d->ct, "in_energy0_active_scale");
		*conv = rd(d->sim, "sim_conversions");
		c1 = rd(d->ct, "cycles");
		if (c0 != c1)
			continue;
		if (tries == 10 || wait_cycles(d, 2) || rd(d->ct, "missed_samples") == m0)
			return e;
	}
}

/*
 * Issue 11, defect 1: a slow conversion stalls the sampler for 300 ms (the
 * simulated mains goes on meanwhile, as a real one would), three times, at
 * different points of the cycle (the pair read at the end of a stall must
 * not end the cycle the stall broke: one stall in three lost 5-7 % when it
 * did). The pairs not taken are counted, the gap is counted, and the
 * energy over the stalls still matches the known load over the simulated
 * time.
 */
TEST_F(ct, stall_energy_integrated)
{
	struct dev *d = &self->d;
	double va = rd(d->sim, "sim_ch0_amp_milli") / 1000 * VOLT_PER_CODE;
	double ia = rd(d->sim, "sim_ch1_amp_milli") / 1000 * AMP_PER_CODE;
	double rate = rd(d->sim, "sim_conv_rate_hz");
	double p = va * ia / 2, e0, e1, n0, n1, m0, m1, g0, g1, want;
	const int stalls = 3;

	ASSERT_EQ(0, wait_cycles(d, 5));
	m0 = rd(d->ct, "missed_samples");
	g0 = rd(d->ct, "gap_time_ns");
	ASSERT_FALSE(isnan(m0));
	e0 = energy_conv(d, &n0);
	for (int k = 0; k < stalls; k++) {
		/* 0, 7 and 14 ms after a cycle's end: 0, 0.35 and 0.7 of a cycle */
		ASSERT_EQ(0, wait_cycles(d, 1));
		usleep(7000 * k);
		ASSERT_EQ(0, wr_int(d->sim, "sim_stall_ms", 300));
		ASSERT_EQ(0, wait_cycles(d, 60));
	}
	e1 = energy_conv(d, &n1);
	m1 = rd(d->ct, "missed_samples");
	g1 = rd(d->ct, "gap_time_ns");
	want = p * (n1 - n0) / rate;
	TH_LOG("%d stalls of 300 ms: energy %.2f J, load x simulated time %.2f J (%+.3f%%); missed %.0f pairs, gap %.1f ms",
	       stalls, e1 - e0, want, (e1 - e0) / want * 100 - 100, m1 - m0, (g1 - g0) / 1e6);
	/*
	 * A cycle at each end (20 ms of about 4.6 s) and what a loaded TCG
	 * host adds to the stalls: 3 %, where dropping a stall loses 6 %.
	 */
	EXPECT_LT(rel(e1 - e0, want), 0.03);
	/* 300 ms of pairs at 4000 per second each, give or take the scheduling */
	EXPECT_GE(m1 - m0, stalls * 0.29 * FS);
	EXPECT_LE(m1 - m0, stalls * 0.40 * FS);
	EXPECT_GE(g1 - g0, stalls * 0.29e9);
}

/* A real-time CPU hog on every CPU for @ms: the sampler (SCHED_OTHER) stalls. */
static void hog(int ms)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	pid_t kids[8];
	int k;

	for (k = 0; k < ncpu && k < 8; k++) {
		kids[k] = fork();
		if (!kids[k]) {
			struct sched_param sp = { .sched_priority = 50 };
			cpu_set_t set;
			double end = now_s() + ms / 1000.0;

			CPU_ZERO(&set);
			CPU_SET(k, &set);
			sched_setaffinity(0, sizeof(set), &set);
			sched_setscheduler(0, SCHED_FIFO, &sp);
			while (now_s() < end)
				;
			_exit(0);
		}
	}
	for (k = 0; k < ncpu && k < 8; k++)
		waitpid(kids[k], NULL, 0);
}

/*
 * Issue 11, defect 1 again, the other way: real-time hogs starve the
 * sampling thread five times for 200 ms; the energy still matches the
 * load over the simulated time.
 */
TEST_F_TIMEOUT(ct, cpu_hog_energy_integrated, 120)
{
	struct dev *d = &self->d;
	double va = rd(d->sim, "sim_ch0_amp_milli") / 1000 * VOLT_PER_CODE;
	double ia = rd(d->sim, "sim_ch1_amp_milli") / 1000 * AMP_PER_CODE;
	double rate = rd(d->sim, "sim_conv_rate_hz");
	double e0, e1, n0, n1, m0, m1, g0, g1, want;

	ASSERT_EQ(0, wait_cycles(d, 5));
	m0 = rd(d->ct, "missed_samples");
	g0 = rd(d->ct, "gap_time_ns");
	e0 = energy_conv(d, &n0);
	for (int k = 0; k < 5; k++) {
		hog(200);
		ASSERT_EQ(0, wait_cycles(d, 20));
	}
	/* and a sampler that cannot keep up: half of every 40 ms, for 4 s */
	for (int k = 0; k < 100; k++) {
		hog(20);
		usleep(20000);
	}
	ASSERT_EQ(0, wait_cycles(d, 20));
	e1 = energy_conv(d, &n1);
	m1 = rd(d->ct, "missed_samples");
	g1 = rd(d->ct, "gap_time_ns");
	want = va * ia / 2 * (n1 - n0) / rate;
	TH_LOG("5 x 200 ms, then 100 x 20 ms of real-time hogs: energy %.2f J, load x simulated time %.2f J (%+.3f%%); missed %.0f pairs, gap %.1f ms",
	       e1 - e0, want, (e1 - e0) / want * 100 - 100, m1 - m0, (g1 - g0) / 1e6);
	/*
	 * Each stall also costs the cycles it broke, and a loaded TCG host
	 * can stretch the stalls to a third of the time: 3 %, where a meter
	 * that drops the time it did not sample loses all of it.
	 */
	EXPECT_LT(rel(e1 - e0, want), 0.03);
}

/*
 * Load steps (voltage, current, power factor; one exporting) changed while
 * the driver samples: the import and export registers grow by the energy
 * of each step over its simulated time (the gateway's meterd test, on the
 * driver alone).
 */
TEST_F_TIMEOUT(ct, load_steps_energy, 120)
{
	static const struct { double v, i, pf; int cycles; } st[] = {
		{ 230, 40, 1.0, 150 }, { 240, 25, 0.8, 120 },
		{ 225, 30, -0.9, 120 }, { 232, 12, 0.5, 100 },
	};
	struct dev *d = &self->d;
	double rate = rd(d->sim, "sim_conv_rate_hz"), imp0, exp0, imp1, exp1;
	double want_imp = 0, want_exp = 0, n_prev, n, v = 230, i = 0, pf = 1, g0;

	ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_amp_milli", 0));
	ASSERT_EQ(0, wait_cycles(d, 100));
	g0 = rd(d->ct, "gap_time_ns");
	imp0 = rd(d->ct, "in_energy0_active_raw");
	exp0 = rd(d->ct, "in_energy1_active_raw");
	n_prev = rd(d->sim, "sim_conversions");
	for (size_t k = 0; k < sizeof(st) / sizeof(st[0]); k++) {
		const double ph = -acos(fabs(st[k].pf)) * 180 / M_PI + (st[k].pf < 0 ? 180 : 0);
		const double steps[3][3] = {
			{ v, i, st[k].pf }, { st[k].v, i, st[k].pf }, { st[k].v, st[k].i, st[k].pf },
		};

		for (int j = 0; j < 3; j++) {
			if (j == 0)
				ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_phase_mdeg", lround(ph * 1000)));
			if (j == 1)
				ASSERT_EQ(0, wr_int(d->sim, "sim_ch0_amp_milli",
						    lround(st[k].v * M_SQRT2 / VOLT_PER_CODE * 1000)));
			if (j == 2)
				ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_amp_milli",
						    lround(st[k].i * M_SQRT2 / AMP_PER_CODE * 1000)));
			n = rd(d->sim, "sim_conversions");
			/* the previous state up to this write */
			{
				double e = v * i * pf * (n - n_prev) / rate;

				if (e > 0)
					want_imp += e;
				else
					want_exp -= e;
			}
			v = steps[j][0];
			i = steps[j][1];
			pf = steps[j][2];
			n_prev = n;
		}
		ASSERT_EQ(0, wait_cycles(d, st[k].cycles));
	}
	ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_amp_milli", 0));
	n = rd(d->sim, "sim_conversions");
	{
		double e = v * i * pf * (n - n_prev) / rate;

		if (e > 0)
			want_imp += e;
		else
			want_exp -= e;
	}
	ASSERT_EQ(0, wait_cycles(d, 100));
	imp1 = rd(d->ct, "in_energy0_active_raw");
	exp1 = rd(d->ct, "in_energy1_active_raw");
	TH_LOG("load steps: import %.1f J of %.1f J, export %.1f J of %.1f J; gaps %.1f ms",
	       (imp1 - imp0) / 1000, want_imp, (exp1 - exp0) / 1000, want_exp,
	       (rd(d->ct, "gap_time_ns") - g0) / 1e6);
	EXPECT_LT(rel((imp1 - imp0) / 1000, want_imp), 0.01);
	EXPECT_LT(rel((exp1 - exp0) / 1000, want_exp), 0.01);
}

/*
 * A sampler that shares its CPUs with busy processes for 6 s: it falls
 * behind again and again, the pairs it cannot take are missed; the energy
 * still matches the load over the simulated time.
 */
TEST_F_TIMEOUT(ct, overloaded_sampler_energy, 120)
{
	struct dev *d = &self->d;
	double va, ia, rate, e0, e1, n0, n1, m0, m1, want, t0, t1;

	pid_t busy[4];

	va = rd(d->sim, "sim_ch0_amp_milli") / 1000 * VOLT_PER_CODE;
	ia = rd(d->sim, "sim_ch1_amp_milli") / 1000 * AMP_PER_CODE;
	rate = rd(d->sim, "sim_conv_rate_hz");
	ASSERT_EQ(0, wait_cycles(d, 10));
	m0 = rd(d->ct, "missed_samples");
	e0 = energy_conv(d, &n0);
	t0 = now_s();
	/* four ordinary busy loops share the two CPUs with the sampler */
	for (int k = 0; k < 4; k++) {
		busy[k] = fork();
		if (!busy[k]) {
			double end = now_s() + 6;

			while (now_s() < end)
				;
			_exit(0);
		}
	}
	for (int k = 0; k < 4; k++)
		waitpid(busy[k], NULL, 0);
	e1 = energy_conv(d, &n1);
	t1 = now_s();
	m1 = rd(d->ct, "missed_samples");
	want = va * ia / 2 * (n1 - n0) / rate;
	TH_LOG("4000 pairs/s with 4 busy loops: %.0f taken per second, %.0f missed; energy %.2f J, load x simulated time %.2f J (%+.3f%%)",
	       ((n1 - n0) / 2 - (m1 - m0)) / (t1 - t0), (m1 - m0) / (t1 - t0),
	       e1 - e0, want, (e1 - e0) / want * 100 - 100);
	/* a cycle at each end, and the estimate of what the sampler lost: 3 % */
	EXPECT_LT(rel(e1 - e0, want), 0.03);
}

/*
 * Issue 11, defect 2: another device's buffer on our per-cycle trigger
 * (the simulated ADC's, whose handler converts like an SPI read) runs its
 * handler in its own thread, never in the sampling thread.
 */
TEST_F(ct, trigger_consumers_not_in_sampling_thread)
{
	struct dev *d = &self->d;
	char trig[96], comm[64] = "", path[PATH_MAX];

	snprintf(trig, sizeof(trig), "%s-cycle", pdev_name(d));
	snprintf(path, sizeof(path), "%s/trigger", d->sim);
	ASSERT_EQ(0, wr(path, "current_trigger", trig));
	snprintf(path, sizeof(path), "%s/scan_elements", d->sim);
	ASSERT_EQ(0, wr(path, "in_voltage0_en", "1"));
	ASSERT_EQ(0, wr(path, "in_voltage1_en", "1"));
	ASSERT_EQ(0, wr(d->sim, "buffer/enable", "1"));
	ASSERT_EQ(0, wait_cycles(d, 10));
	EXPECT_EQ(0, rd_str(d->sim, "sim_handler_comm", comm, sizeof(comm)));
	TH_LOG("the simulated ADC's trigger handler ran in '%s'", strtok(comm, "\n"));
	EXPECT_NE(0, comm[0]);
	EXPECT_NE(0, strncmp(comm, "gridmeter-ct", 12));
	EXPECT_EQ(0, wr(d->sim, "buffer/enable", "0"));
	snprintf(path, sizeof(path), "%s/trigger", d->sim);
	wr(path, "current_trigger", "\n");
}

/*
 * Issue 11, defect 3: at 35 and 75 Hz the readings are withheld and
 * counted, the energy goes on; back at 50 Hz the meter reads at once.
 */
TEST_F_TIMEOUT(ct, off_nominal_frequency, 120)
{
	struct dev *d = &self->d;
	const double fr[] = { 35.0, 75.0, 40.0, 70.0 };
	double va = rd(d->sim, "sim_ch0_amp_milli") / 1000 * VOLT_PER_CODE;
	double ia = rd(d->sim, "sim_ch1_amp_milli") / 1000 * AMP_PER_CODE;

	for (size_t k = 0; k < 4; k++) {
		double w0, w1, e0, e1, n0, n1, want;
		bool inside = fr[k] >= 40 && fr[k] <= 70;

		ASSERT_EQ(0, wr_int(d->sim, "sim_freq_mhz", lround(fr[k] * 1000)));
		ASSERT_EQ(0, wait_cycles(d, 10));
		w0 = rd(d->ct, "cycles_withheld");
		e0 = energy_conv(d, &n0);
		/* long enough that a cycle at each end is about 1 % */
		ASSERT_EQ(0, wait_cycles(d, 100));
		w1 = rd(d->ct, "cycles_withheld");
		e1 = energy_conv(d, &n1);
		want = va * ia / 2 * (n1 - n0) / rd(d->sim, "sim_conv_rate_hz");
		TH_LOG("%.1f Hz: %.0f cycles withheld, f read %.3f Hz, energy %.1f J of %.1f J",
		       fr[k], w1 - w0, rd(d->ct, "in_altvoltage0_frequency"),
		       e1 - e0, want);
		EXPECT_LT(rel(e1 - e0, want), 0.02);
		if (inside) {
			EXPECT_EQ(w0, w1);
			EXPECT_LT(fabs(rd(d->ct, "in_altvoltage0_frequency") - fr[k]), 0.01);
		} else {
			EXPECT_GE(w1 - w0, 99);
		}
	}
	ASSERT_EQ(0, wr_int(d->sim, "sim_freq_mhz", 50000));
	ASSERT_EQ(0, wait_cycles(d, 10));
	EXPECT_LT(fabs(rd(d->ct, "in_altvoltage0_frequency") - 50.0), 0.01);
}

/*
 * Issue 11, defect 4: no load at 115 % Un with 1 LSB of noise, default
 * threshold: not a millijoule in either register over 10 s; then the
 * starting current of 0.4 % of 10 A registers.
 */
TEST_F_TIMEOUT(ct, no_creep_then_starting_current, 120)
{
	struct dev *d = &self->d;
	double va = rd(d->sim, "sim_ch0_amp_milli");
	double e0, x0, e1, x1, n0, n1, p;

	ASSERT_EQ(0, wr_int(d->sim, "sim_ch0_amp_milli", lround(va * 1.15)));
	ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_amp_milli", 0));
	ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_noise_milli", 1000));
	ASSERT_EQ(0, wait_cycles(d, 60));
	e0 = energy_conv(d, &n0);
	x0 = rd(d->ct, "in_energy1_active_raw");
	ASSERT_EQ(0, wait_cycles(d, 500));
	e1 = energy_conv(d, &n1);
	x1 = rd(d->ct, "in_energy1_active_raw");
	TH_LOG("no load, 115%% Un, 1 LSB noise, %.0f s: import %+.3f J, export %+.3f J",
	       (n1 - n0) / 8000, e1 - e0, (x1 - x0) / 1000);
	EXPECT_EQ(e0, e1);
	EXPECT_EQ(x0, x1);
	/* 40 mA at PF 1 */
	ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_amp_milli", lround(0.040 * M_SQRT2 / AMP_PER_CODE * 1000)));
	p = va * 1.15 / 1000 * VOLT_PER_CODE / M_SQRT2 * 0.040;
	ASSERT_EQ(0, wait_cycles(d, 60));
	e0 = energy_conv(d, &n0);
	ASSERT_EQ(0, wait_cycles(d, 500));
	e1 = energy_conv(d, &n1);
	TH_LOG("starting current 40 mA (%.2f W): %.2f J registered of %.2f J",
	       p, e1 - e0, p * (n1 - n0) / 8000);
	EXPECT_LT(rel(e1 - e0, p * (n1 - n0) / 8000), 0.10);
}

/*
 * Issue 11, defect 5: a 3000:1 CT on 1 ohm reads 2.4 A per code; 2500 A
 * is beyond 2^31 uA and must read positive and right.
 */
TEST_F(ct, large_current_does_not_wrap)
{
	struct dev *d = &self->d;
	const double apc = 3.3 / 4096 / 1.0 * 3000.0;
	double i;

	ASSERT_EQ(0, reload(d, "ct_ratio=3000 burden_uohm=1000000", "ct-sensor-3000"));
	ASSERT_EQ(0, wr_int(d->sim, "sim_ch1_amp_milli", lround(2500 * M_SQRT2 / apc * 1000)));
	ASSERT_EQ(0, wait_cycles(d, 10));
	i = rd(d->ct, cur_attr(d, "raw")) * rd(d->ct, cur_attr(d, "scale")) / 1000;
	TH_LOG("2500 A on a 3000:1 CT and 1 ohm: read %.1f A (raw %s)", i, "64-bit");
	EXPECT_LT(rel(i, 2500.0), 0.005);
	EXPECT_GT(rd(d->ct, cur_attr(d, "raw")), 2147483647.0);
}

/* Sampling jitter and missed pairs over 5 s (logged, not judged). */
TEST_F(ct, sampling_jitter)
{
	struct dev *d = &self->d;
	char t[96] = "";
	double m0, m1;
	unsigned long long n = 0, rms = 0, mx = 0;

	ASSERT_EQ(0, wait_cycles(d, 5));
	m0 = rd(d->ct, "missed_samples");
	ASSERT_EQ(0, wr(d->sim, "sim_pair_timing", "0"));
	ASSERT_EQ(0, wait_cycles(d, 250));
	ASSERT_EQ(0, rd_str(d->sim, "sim_pair_timing", t, sizeof(t)));
	m1 = rd(d->ct, "missed_samples");
	ASSERT_EQ(3, sscanf(t, "%llu %llu %llu", &n, &rms, &mx));
	TH_LOG("jitter at 4000 pairs/s: %llu pairs, interval deviation rms %llu us, max %llu us; missed %.0f pairs",
	       n, rms / 1000, mx / 1000, m1 - m0);
	EXPECT_GT(n, 0ull);
}

TEST_HARNESS_MAIN
