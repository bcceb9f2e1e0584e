// SPDX-License-Identifier: GPL-2.0
/* The CT driver's calibration trims and the file that keeps them (ct_calib.h). */
#include "atomic_file.h"
#include "ct_calib.h"
#include "ini.h"
#include "iio_sysfs.h"
#include "parse.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ATTR_V_SCALE	"in_altvoltage0_rms_calibscale"
/* 6.1/6.12 name, then the 6.18 one (drivers/gm_kcompat.h) */
static const char *const attr_i_scale[] = { "in_current0_rms_calibscale", "in_altcurrent0_rms_calibscale" };
static const char *const attr_phase[] = { "in_current0_rms_phase", "in_altcurrent0_rms_phase" };

int64_t ct_calib_phase_write_nrad(int32_t mdeg)
{
	/* the smallest |x| with trunc(x * 5729578 / 10^11) == mdeg */
	int64_t a = mdeg < 0 ? -(int64_t)mdeg : mdeg;
	int64_t x = (a * 100000000000LL + 5729578 - 1) / 5729578;

	return mdeg < 0 ? -x : x;
}

int64_t ct_calib_phase_read_nrad(int32_t mdeg)
{
	return (int64_t)mdeg * 17453293 / 1000;	/* C division truncates, as div_s64 */
}

int32_t ct_calib_phase_stored_mdeg(int64_t nrad)
{
	return (int32_t)(nrad * 5729578 / 100000000000LL);
}

int ct_calib_parse_units(const char *s, unsigned dec, int64_t *out)
{
	int64_t m;
	unsigned d;

	if (parse_fixed(s, &m, &d))
		return -EINVAL;
	if (d > 18 || dec > 18)
		return -ERANGE;
	if (d <= dec) {
		int64_t k = pow10_i64(dec - d);

		if (m > INT64_MAX / k || m < -(INT64_MAX / k))
			return -ERANGE;
		*out = m * k;
	} else {
		*out = mul_div_round(m, 1, pow10_i64(d - dec));
	}
	return 0;
}

void ct_calib_format_units(int64_t v, unsigned dec, char *buf, size_t len)
{
	int64_t one = pow10_i64(dec);
	uint64_t a = v < 0 ? -(uint64_t)v : (uint64_t)v;

	snprintf(buf, len, "%s%llu.%0*llu", v < 0 ? "-" : "", (unsigned long long)(a / (uint64_t)one),
		 (int)dec, (unsigned long long)(a % (uint64_t)one));
}

/* dir/name, the first of names that exists (NULL-safe list of two). */
static int attr_path(const char *dir, const char *const names[2], char *p, size_t n)
{
	for (int k = 0; k < 2; k++) {
		snprintf(p, n, "%s/%s", dir, names[k]);
		if (!access(p, F_OK))
			return 0;
	}
	snprintf(p, n, "%s/%s", dir, names[0]);
	return -ENOENT;
}

static int read_units(const char *p, unsigned dec, int64_t *v, char *err, size_t errlen)
{
	char buf[64];
	int r = iio_sysfs_read(p, buf, sizeof(buf));

	if (!r && ct_calib_parse_units(buf, dec, v))
		r = -EINVAL;
	if (r)
		snprintf(err, errlen, "%s: %s", p, r == -EINVAL ? "not a number" : strerror(-r));
	return r;
}

int ct_calib_read(const char *devdir, struct ct_calib *c, char *err, size_t errlen)
{
	const char *const vnames[2] = { ATTR_V_SCALE, ATTR_V_SCALE };
	char p[1024];
	int64_t nrad;
	int r;

	attr_path(devdir, vnames, p, sizeof(p));
	r = read_units(p, 6, &c->v_scale, err, errlen);
	if (!r) {
		attr_path(devdir, attr_i_scale, p, sizeof(p));
		r = read_units(p, 6, &c->i_scale, err, errlen);
	}
	if (!r) {
		attr_path(devdir, attr_phase, p, sizeof(p));
		r = read_units(p, 9, &nrad, err, errlen);
	}
	if (r)
		return r;
	/* the driver prints mdeg * 17453293 / 1000: back to its millidegrees */
	c->phase_mdeg = (int32_t)mul_div_round(nrad, 1000, 17453293);
	return 0;
}

static int write_attr(const char *p, const char *s, char *err, size_t errlen)
{
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", p, strerror(errno));
		return -errno;
	}
	n = write(fd, s, strlen(s));
	if (n != (ssize_t)strlen(s)) {
		int e = n < 0 ? errno : EIO;

		close(fd);
		snprintf(err, errlen, "%s: writing %s: %s", p, s, strerror(e));
		return -e;
	}
	close(fd);
	return 0;
}

static bool calib_in_range(const struct ct_calib *c)
{
	return c->v_scale >= CT_CALIB_SCALE_MIN && c->v_scale <= CT_CALIB_SCALE_MAX &&
	       c->i_scale >= CT_CALIB_SCALE_MIN && c->i_scale <= CT_CALIB_SCALE_MAX &&
	       c->phase_mdeg >= -CT_CALIB_PHASE_MDEG_MAX && c->phase_mdeg <= CT_CALIB_PHASE_MDEG_MAX;
}

int ct_calib_write(const char *devdir, const struct ct_calib *c, char *err, size_t errlen)
{
	const char *const vnames[2] = { ATTR_V_SCALE, ATTR_V_SCALE };
	struct ct_calib back;
	char p[1024], s[CT_CALIB_NUM_LEN];
	int r;

	if (!calib_in_range(c)) {
		snprintf(err, errlen, "calibration out of the driver's range (calibscale 0.5..2, "
			 "phase +-%d mdeg): voltage %lld, current %lld millionths, phase %d mdeg",
			 CT_CALIB_PHASE_MDEG_MAX, (long long)c->v_scale, (long long)c->i_scale,
			 c->phase_mdeg);
		return -ERANGE;
	}
	attr_path(devdir, vnames, p, sizeof(p));
	ct_calib_format_units(c->v_scale, 6, s, sizeof(s));
	r = write_attr(p, s, err, errlen);
	if (!r) {
		attr_path(devdir, attr_i_scale, p, sizeof(p));
		ct_calib_format_units(c->i_scale, 6, s, sizeof(s));
		r = write_attr(p, s, err, errlen);
	}
	if (!r) {
		attr_path(devdir, attr_phase, p, sizeof(p));
		ct_calib_format_units(ct_calib_phase_write_nrad(c->phase_mdeg), 9, s, sizeof(s));
		r = write_attr(p, s, err, errlen);
	}
	if (!r)
		r = ct_calib_read(devdir, &back, err, errlen);
	if (!r && (back.v_scale != c->v_scale || back.i_scale != c->i_scale ||
		   back.phase_mdeg != c->phase_mdeg)) {
		snprintf(err, errlen, "%s kept voltage %lld, current %lld millionths, phase %d mdeg "
			 "instead of %lld, %lld, %d", devdir, (long long)back.v_scale,
			 (long long)back.i_scale, back.phase_mdeg, (long long)c->v_scale,
			 (long long)c->i_scale, c->phase_mdeg);
		r = -EIO;
	}
	return r;
}

struct load_ctx {
	struct ct_calib *c;
	char *device;
	size_t devlen;
	bool have[4];
};

static int load_entry(struct ini *ini, const struct ini_entry *e, void *ctx)
{
	struct load_ctx *l = ctx;
	int64_t v;

	if (strcmp(e->section, "calibration"))
		return ini_error(ini, e->line, e->section, NULL, "unknown section (only [calibration])");
	if (!e->key)
		return 0;
	if (!strcmp(e->key, "device")) {
		if (!e->value[0] || strlcpy_chk(l->device, e->value, l->devlen))
			return ini_error(ini, e->line, e->section, e->key, "empty or too long");
		l->have[0] = true;
		return 0;
	}
	if (!strcmp(e->key, "voltage_calibscale") || !strcmp(e->key, "current_calibscale")) {
		bool volt = e->key[0] == 'v';

		if (ct_calib_parse_units(e->value, 6, &v) || v < CT_CALIB_SCALE_MIN || v > CT_CALIB_SCALE_MAX)
			return ini_error(ini, e->line, e->section, e->key,
					 "'%s' is not a gain trim 0.500000..2.000000", e->value);
		*(volt ? &l->c->v_scale : &l->c->i_scale) = v;
		l->have[volt ? 1 : 2] = true;
		return 0;
	}
	if (!strcmp(e->key, "current_phase_mdeg")) {
		if (ct_calib_parse_units(e->value, 0, &v) || strchr(e->value, '.') ||
		    v < -CT_CALIB_PHASE_MDEG_MAX || v > CT_CALIB_PHASE_MDEG_MAX)
			return ini_error(ini, e->line, e->section, e->key,
					 "'%s' is not whole millidegrees -%d..%d", e->value,
					 CT_CALIB_PHASE_MDEG_MAX, CT_CALIB_PHASE_MDEG_MAX);
		l->c->phase_mdeg = (int32_t)v;
		l->have[3] = true;
		return 0;
	}
	return ini_error(ini, e->line, e->section, e->key, "unknown key");
}

int ct_calib_load(const char *path, struct ct_calib *c, char *device, size_t devlen,
		  char *err, size_t errlen)
{
	static const char *const keys[4] = { "device", "voltage_calibscale", "current_calibscale",
					     "current_phase_mdeg" };
	struct load_ctx l = { .c = c, .device = device, .devlen = devlen };
	struct ini ini;
	int r;

	if (access(path, F_OK) && errno == ENOENT) {
		snprintf(err, errlen, "%s: no such file", path);
		return -ENOENT;
	}
	ini_init(&ini, path, 0, err, errlen);
	r = ini_parse_file(&ini, path, 4096, load_entry, &l);
	ini_free(&ini);
	for (int k = 0; !r && k < 4; k++) {
		if (!l.have[k]) {
			snprintf(err, errlen, "%s: [calibration] key '%s' missing", path, keys[k]);
			r = -EINVAL;
		}
	}
	return r;
}

int ct_calib_save(const char *path, const struct ct_calib *c, const char *device,
		  const char *comment, char *err, size_t errlen)
{
	char vs[CT_CALIB_NUM_LEN], is[CT_CALIB_NUM_LEN];
	struct atomic_file a;
	int r;

	if (!calib_in_range(c)) {
		snprintf(err, errlen, "%s: calibration out of range, not saved", path);
		return -ERANGE;
	}
	r = atomic_file_open_stream(&a, path, 0644);
	if (r) {
		snprintf(err, errlen, "%s: %s: %s", path, a.step, strerror(-r));
		return r;
	}
	ct_calib_format_units(c->v_scale, 6, vs, sizeof(vs));
	ct_calib_format_units(c->i_scale, 6, is, sizeof(is));
	fprintf(a.f, "# %s\n# Applied to the driver by meterd --setup-thresholds at every start of meterd\n"
		"# (Documentation/onsite.md). Remove it if the values are moved into config.txt.\n"
		"[calibration]\ndevice = %s\nvoltage_calibscale = %s\ncurrent_calibscale = %s\n"
		"current_phase_mdeg = %d\n", comment ? comment : "gridmeter calibration", device, vs, is,
		c->phase_mdeg);
	r = atomic_file_commit(&a, 0);
	if (r)
		snprintf(err, errlen, "%s: %s: %s", path, a.step, strerror(-r));
	return r;
}

int ct_calib_apply(const char *sysfs_root, const char *path, const char *want_device,
		   bool *applied, char *err, size_t errlen)
{
	struct ct_calib c;
	char device[64], dir[768];
	int r;

	*applied = false;
	r = ct_calib_load(path, &c, device, sizeof(device), err, errlen);
	if (r == -ENOENT)
		return 0;
	if (r)
		return r;
	if (strcmp(device, want_device)) {
		snprintf(err, errlen, "%s is for IIO device '%s', meterd.conf's mains_device is '%s'",
			 path, device, want_device);
		return -EINVAL;
	}
	r = iio_sysfs_find(sysfs_root, device, dir, sizeof(dir));
	if (r) {
		snprintf(err, errlen, "IIO device '%s' not found under %s/bus/iio/devices", device,
			 sysfs_root);
		return r;
	}
	r = ct_calib_write(dir, &c, err, errlen);
	*applied = !r;
	return r;
}
