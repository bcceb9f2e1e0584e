// SPDX-License-Identifier: GPL-2.0
/*
 * Hardware check of gridmeter-setup (setup.h): the mains CT device samples
 * (frequency, voltage within [protection], counters not rising), the ADC's
 * raw channels (codes in range, no clipping, bias near mid-scale) and the
 * relay and button lines of meterd.conf can be requested on their chip.
 */
#include <dirent.h>
#include <errno.h>
#include <gpiod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iio_sysfs.h"
#include "parse.h"
#include "setup.h"

#define SAMPLING_WAIT_MS	2000
#define ADC_READS		100
#define ADC_GAP_US		10300	/* 100 pairs over 1 s: 51.5 cycles of 50 Hz, 61.8 of 60 Hz */

/* An integer attribute in units of 10^-dec (0 for plain integers): 0 or -errno. */
static int attr_units(const char *dir, const char *name, unsigned dec, int64_t *v)
{
	char p[1024], buf[64];
	int r;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	r = iio_sysfs_read(p, buf, sizeof(buf));
	if (!r && ct_calib_parse_units(buf, dec, v))
		r = -EINVAL;
	return r;
}

/* The current's attribute: 6.1/6.12 name, else 6.18's */
static int attr_current(const char *dir, const char *suffix, unsigned dec, int64_t *v)
{
	char n[64];

	snprintf(n, sizeof(n), "in_current0_%s", suffix);
	if (!attr_units(dir, n, dec, v))
		return 0;
	snprintf(n, sizeof(n), "in_altcurrent0_%s", suffix);
	return attr_units(dir, n, dec, v);
}

struct ct_counters {
	int64_t cycles, read_errors, missed;
	int64_t t_ms;
};

static int read_counters(const char *dir, struct ct_counters *c)
{
	c->t_ms = setup_now_ms();
	if (attr_units(dir, "cycles", 0, &c->cycles) || attr_units(dir, "read_errors", 0, &c->read_errors))
		return -EIO;
	/* missed_samples came with the hrtimer sampler; older drivers lack it */
	if (attr_units(dir, "missed_samples", 0, &c->missed))
		c->missed = 0;
	return 0;
}

int hw_check_ct(struct setup *s)
{
	const struct meter_config *cfg = s->cfg;
	struct ct_counters a, b;
	int64_t freq_uhz = 0, v_uv = 0, i_ua = 0, fs = 0;
	const char *dev;
	bool ok;

	if (strcmp(cfg->sensor_backend, "iio")) {
		report_add(&s->rep, CHECK_SKIP, true, "ct-device", "[sensors] backend = %s, not iio",
			   cfg->sensor_backend);
		return 0;
	}
	if (iio_sysfs_find(s->o.sysfs, cfg->mains_device, s->ct_dir, sizeof(s->ct_dir))) {
		s->ct_dir[0] = 0;
		report_add(&s->rep, CHECK_FAIL, true, "ct-device", "no IIO device '%s' under "
			   "%s/bus/iio/devices (module gridmeter_ct loaded? overlay in config.txt?)",
			   cfg->mains_device, s->o.sysfs);
		return 0;
	}
	dev = strrchr(s->ct_dir, '/') + 1;
	attr_units(s->ct_dir, "sampling_frequency", 0, &fs);
	report_add(&s->rep, CHECK_PASS, true, "ct-device", "%s is %s, %lld pairs/s",
		   cfg->mains_device, dev, (long long)fs);
	if (read_counters(s->ct_dir, &a)) {
		report_add(&s->rep, CHECK_FAIL, true, "ct-sampling", "%s: cannot read cycles and "
			   "read_errors", dev);
		return 0;
	}
	setup_sleep_ms(SAMPLING_WAIT_MS);
	if (read_counters(s->ct_dir, &b)) {
		report_add(&s->rep, CHECK_FAIL, true, "ct-sampling", "%s: counters unreadable", dev);
		return 0;
	}
	ok = b.cycles > a.cycles && b.read_errors == a.read_errors && b.missed == a.missed;
	report_add(&s->rep, ok ? CHECK_PASS : CHECK_FAIL, true, "ct-sampling",
		   "%lld cycles in %.1f s, read errors +%lld, missed pairs +%lld%s",
		   (long long)(b.cycles - a.cycles), (double)(b.t_ms - a.t_ms) / 1000,
		   (long long)(b.read_errors - a.read_errors), (long long)(b.missed - a.missed),
		   b.cycles > a.cycles ? "" : " (not sampling: ADC bound? dmesg)");
	s->ct_ok = b.cycles > a.cycles;

	attr_units(s->ct_dir, "in_altvoltage0_frequency", 6, &freq_uhz);
	ok = freq_uhz >= 45000000 && freq_uhz <= 65000000;
	report_add(&s->rep, ok ? CHECK_PASS : CHECK_FAIL, true, "ct-frequency",
		   "%.3f Hz (45..65 Hz)%s", freq_uhz / 1e6,
		   ok ? "" : ": no mains voltage seen on the voltage channel?");
	attr_units(s->ct_dir, "in_altvoltage0_rms_raw", 0, &v_uv);
	ok = v_uv >= (int64_t)cfg->under_voltage_mv * 1000 && v_uv <= (int64_t)cfg->over_voltage_mv * 1000;
	report_add(&s->rep, ok ? CHECK_PASS : CHECK_FAIL, true, "ct-voltage",
		   "%.3f V RMS (limits %.1f..%.1f V, [protection])", v_uv / 1e6,
		   cfg->under_voltage_mv / 1e3, cfg->over_voltage_mv / 1e3);
	attr_current(s->ct_dir, "rms_raw", 0, &i_ua);
	report_add(&s->rep, CHECK_INFO, false, "ct-current", "%.3f A RMS%s", i_ua / 1e6,
		   i_ua ? "" : " (no load, or below the no-load threshold)");
	return 0;
}

/* The ADC: --adc-device, or the first IIO device other than the CTs with both raw channels. */
static int find_adc(struct setup *s, char *dir, size_t len, char *name, size_t nlen)
{
	char base[512], p[1024];
	struct dirent *de;
	DIR *d;
	int r = -ENODEV;

	if (s->o.adc_device) {
		r = iio_sysfs_find(s->o.sysfs, s->o.adc_device, dir, len);
		snprintf(name, nlen, "%s", s->o.adc_device);
		return r;
	}
	snprintf(base, sizeof(base), "%s/bus/iio/devices", s->o.sysfs);
	d = opendir(base);
	if (!d)
		return -errno;
	while (r && (de = readdir(d))) {
		char n[128];
		bool both = true;

		if (strncmp(de->d_name, "iio:device", 10))
			continue;
		snprintf(p, sizeof(p), "%s/%s/name", base, de->d_name);
		if (iio_sysfs_read(p, n, sizeof(n)) || !strncmp(n, "gridmeter-ct", 12) ||
		    !strcmp(n, s->cfg->mains_device) || !strcmp(n, s->cfg->renewable_device))
			continue;
		for (int k = 0; k < 2; k++) {
			snprintf(p, sizeof(p), "%s/%s/in_voltage%u_raw", base, de->d_name, s->o.adc_chan[k]);
			both = both && !access(p, R_OK);
		}
		if (!both)
			continue;
		snprintf(dir, len, "%s/%s", base, de->d_name);
		snprintf(name, nlen, "%s", n);
		r = 0;
	}
	closedir(d);
	return r;
}

/* Resolution: the scan type (le:u12/16>>0), else the MCP320x part number; 0 unknown. */
static unsigned adc_bits(const char *dir, const char *name, unsigned chan)
{
	char p[1024], buf[64];
	unsigned bits;
	char sign;

	snprintf(p, sizeof(p), "%s/scan_elements/in_voltage%u_type", dir, chan);
	if (!iio_sysfs_read(p, buf, sizeof(buf)) && sscanf(buf, "%*[bl]e:%c%u/", &sign, &bits) == 2 &&
	    bits >= 1 && bits <= 24)
		return bits;
	if (!strcmp(name, "mcp3004") || !strcmp(name, "mcp3008"))
		return 10;
	if (!strcmp(name, "mcp3204") || !strcmp(name, "mcp3208"))
		return 12;
	return 0;
}

int hw_check_adc(struct setup *s)
{
	static const char *const what[2] = { "adc-voltage", "adc-current" };
	int64_t lo[2] = { INT64_MAX, INT64_MAX }, hi[2] = { INT64_MIN, INT64_MIN }, sum[2] = { 0, 0 };
	char dir[768], name[128];
	unsigned n[2] = { 0, 0 };

	if (strcmp(s->cfg->sensor_backend, "iio")) {
		report_add(&s->rep, CHECK_SKIP, false, "adc", "[sensors] backend = %s", s->cfg->sensor_backend);
		return 0;
	}
	if (find_adc(s, dir, sizeof(dir), name, sizeof(name))) {
		report_add(&s->rep, CHECK_SKIP, false, "adc", "no IIO ADC with in_voltage%u_raw and "
			   "in_voltage%u_raw%s%s (name it with --adc-device)", s->o.adc_chan[0],
			   s->o.adc_chan[1], s->o.adc_device ? " named " : "",
			   s->o.adc_device ? s->o.adc_device : "");
		return 0;
	}
	/*
	 * interleaved, as the CT driver reads them, ADC_GAP_US apart: spread
	 * over many mains cycles at phases that do not repeat (the gap is no
	 * multiple of a half cycle), not a burst within a fraction of one, so
	 * that the mean is the bias
	 */
	for (unsigned k = 0; k < 2 * ADC_READS; k++) {
		if (k & 1)
			usleep(ADC_GAP_US);
		unsigned c = k & 1;
		char a[32];
		int64_t v;

		snprintf(a, sizeof(a), "in_voltage%u_raw", s->o.adc_chan[c]);
		if (attr_units(dir, a, 0, &v))
			continue;
		lo[c] = v < lo[c] ? v : lo[c];
		hi[c] = v > hi[c] ? v : hi[c];
		sum[c] += v;
		n[c]++;
	}
	for (int c = 0; c < 2; c++) {
		unsigned bits = adc_bits(dir, name, s->o.adc_chan[c]);
		int64_t full = bits ? (1LL << bits) - 1 : 0, mid = bits ? 1LL << (bits - 1) : 0;
		int64_t mean = n[c] ? (sum[c] + n[c] / 2) / n[c] : 0;
		char why[120] = "";

		if (n[c] < ADC_READS)
			snprintf(why, sizeof(why), ": %u of %u reads failed", ADC_READS - n[c], ADC_READS);
		else if (lo[c] < 0 || (bits && hi[c] > full))
			snprintf(why, sizeof(why), ": codes outside 0..%lld", (long long)full);
		else if (bits && (lo[c] == 0 || hi[c] == full))
			snprintf(why, sizeof(why), ": clipping at a rail (bias lost, or the signal too large)");
		else if (bits && llabs(mean - mid) > (full + 1) / 10)
			snprintf(why, sizeof(why), ": bias far from mid-scale %lld (bias divider?)",
				 (long long)mid);
		else if (bits && c == 0 && hi[c] - lo[c] < (full + 1) / 50)
			snprintf(why, sizeof(why), ": no AC on the voltage channel");
		if (!n[c]) {
			report_add(&s->rep, CHECK_FAIL, true, what[c], "%s in_voltage%u_raw unreadable",
				   name, s->o.adc_chan[c]);
			continue;
		}
		report_add(&s->rep, why[0] ? CHECK_FAIL : CHECK_PASS, true, what[c],
			   "%s ch%u%s%.0u%s: codes %lld..%lld, mean %lld%s%s", name, s->o.adc_chan[c],
			   bits ? " " : "", bits, bits ? "-bit" : " (resolution unknown)",
			   (long long)lo[c], (long long)hi[c], (long long)mean,
			   bits ? (why[0] ? "" : " (near mid-scale)") : "", why);
	}
	return 0;
}

/* One line: on the chip, free (or meterd's, which is stopped), requestable as it is. */
static void check_line(struct setup *s, struct gpiod_chip *chip, const char *what, unsigned off)
{
	struct gpiod_line_request_config rc = {
		.consumer = "gridmeter-setup", .request_type = GPIOD_LINE_REQUEST_DIRECTION_AS_IS,
	};
	unsigned nlines = gpiod_chip_num_lines(chip);
	struct gpiod_line *l;
	const char *lname;
	int v;

	if (off >= nlines) {
		report_add(&s->rep, CHECK_FAIL, true, what, "%s has no line %u (%u lines)",
			   s->cfg->gpiochip, off, nlines);
		return;
	}
	l = gpiod_chip_get_line(chip, off);
	if (!l) {
		report_add(&s->rep, CHECK_FAIL, true, what, "%s line %u: %s", s->cfg->gpiochip, off,
			   strerror(errno));
		return;
	}
	lname = gpiod_line_name(l);
	if (gpiod_line_is_used(l)) {
		const char *who = gpiod_line_consumer(l);

		report_add(&s->rep, CHECK_FAIL, true, what, "%s line %u%s%s%s is in use by '%s'",
			   s->cfg->gpiochip, off, lname ? " (" : "", lname ? lname : "", lname ? ")" : "",
			   who ? who : "the kernel");
		return;
	}
	if (gpiod_line_request(l, &rc, 0)) {
		report_add(&s->rep, CHECK_FAIL, true, what, "%s line %u: request: %s",
			   s->cfg->gpiochip, off, strerror(errno));
		return;
	}
	v = gpiod_line_get_value(l);
	gpiod_line_release(l);
	report_add(&s->rep, CHECK_PASS, true, what, "%s line %u%s%s%s free and requested, %s %s",
		   s->cfg->gpiochip, off, lname ? " (" : "", lname ? lname : "", lname ? ")" : "",
		   gpiod_line_direction(l) == GPIOD_LINE_DIRECTION_OUTPUT ? "output" : "input",
		   v < 0 ? "level unreadable" : v ? "level 1" : "level 0");
}

int hw_check_relays(struct setup *s)
{
	const struct meter_config *cfg = s->cfg;
	struct gpiod_chip *chip;

	if (strcmp(cfg->relay_backend, "gpiod")) {
		report_add(&s->rep, CHECK_SKIP, true, "relays", "[relays] backend = %s, no GPIO lines",
			   cfg->relay_backend);
		return 0;
	}
	chip = gpiod_chip_open_lookup(cfg->gpiochip);
	if (!chip) {
		report_add(&s->rep, CHECK_FAIL, true, "relays", "GPIO chip '%s': %s", cfg->gpiochip,
			   strerror(errno));
		return 0;
	}
	check_line(s, chip, "relay-main", cfg->main_line);
	if (cfg->button_line >= 0)
		check_line(s, chip, "button", (unsigned)cfg->button_line);
	for (size_t k = 0; k < cfg->nloads; k++) {
		char what[24];

		snprintf(what, sizeof(what), "load-%.18s", cfg->load[k].name);
		if (cfg->load[k].external)
			report_add(&s->rep, CHECK_SKIP, false, what, "switch = external (MQTT bridge)");
		else
			check_line(s, chip, what, cfg->load[k].line);
	}
	gpiod_chip_close(chip);
	return 0;
}
