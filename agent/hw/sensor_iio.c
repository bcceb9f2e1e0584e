// SPDX-License-Identifier: GPL-2.0
/*
 * IIO backend for the gridmeter CT driver (drivers/iio/ct/,
 * Documentation/ABI/testing/sysfs-bus-iio-gridmeter-ct).
 *
 * Discovery goes through libiio, in a short-lived child process that
 * dlopen()s it: which IIO device has the configured name, and which sysfs
 * files hold its channels' attributes (6.1 and 6.18 names alike). meterd
 * itself never maps libiio (in Debian it pulls in libxml2, ICU and libstdc++,
 * about 2.7 MiB of resident memory). Readings then come straight from those
 * sysfs files through descriptors kept open (one pread each), and the
 * threshold events from the character device via IIO_GET_EVENT_FD_IOCTL.
 *
 *   voltage  in_altvoltage0_rms_raw x in_altvoltage0_rms_scale -> mV; _frequency (Hz)
 *   current  in_current0_rms_raw (6.18: in_altcurrent0_rms_raw) x its _scale -> mA
 *   power    in_power0_active_raw x in_power0_active_scale -> mW; in_power0_powerfactor
 *   energy   in_energy0_active_raw (import), in_energy1_active_raw (export): mJ (optional)
 *   gaps     missed_samples, gap_time_ns: sampling gaps (optional)
 * (and the plain IIO names as fall-backs; see the want_* lists).
 * No floating point: scales are parsed as exact decimals.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <iio.h>
#include <linux/iio/events.h>
#include <linux/iio/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "parse.h"
#include "protect.h"
#include "sensor.h"
#include "sensor_iio.h"

/* ---- discovery (child process, libiio) ------------------------------------ */

struct libiio {
	void *h;
	struct iio_context *(*create_local)(void);
	void (*destroy)(struct iio_context *);
	struct iio_device *(*find_device)(const struct iio_context *, const char *);
	const char *(*device_id)(const struct iio_device *);
	unsigned int (*nchannels)(const struct iio_device *);
	struct iio_channel *(*channel)(const struct iio_device *, unsigned int);
	unsigned int (*nattrs)(const struct iio_channel *);
	const char *(*attr)(const struct iio_channel *, unsigned int);
	const char *(*attr_filename)(const struct iio_channel *, const char *);
	unsigned int (*ndev_attrs)(const struct iio_device *);
	const char *(*dev_attr)(const struct iio_device *, unsigned int);
};

#define SYM(f, name) (*(void **)&l->f = dlsym(l->h, name))

static int load_libiio(struct libiio *l, char *err, size_t errlen)
{
	l->h = dlopen("libiio.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!l->h) {
		snprintf(err, errlen, "libiio: %s", dlerror());
		return -ENOENT;
	}
	if (!SYM(create_local, "iio_create_local_context") || !SYM(destroy, "iio_context_destroy") ||
	    !SYM(find_device, "iio_context_find_device") || !SYM(device_id, "iio_device_get_id") ||
	    !SYM(nchannels, "iio_device_get_channels_count") || !SYM(channel, "iio_device_get_channel") ||
	    !SYM(nattrs, "iio_channel_get_attrs_count") || !SYM(attr, "iio_channel_get_attr") ||
	    !SYM(attr_filename, "iio_channel_attr_get_filename") ||
	    !SYM(ndev_attrs, "iio_device_get_attrs_count") || !SYM(dev_attr, "iio_device_get_attr")) {
		snprintf(err, errlen, "libiio: missing symbols");
		return -ENOENT;
	}
	return 0;
}

/*
 * The sysfs files the CT driver's ABI names, most specific first (6.1
 * extend_name files, 6.18 modifier files, plain IIO). They are matched
 * against the files libiio enumerates for the device, so it does not matter
 * how libiio splits a file name into channel and attribute.
 */
static const char *const want_v[] = { "in_altvoltage0_rms_raw", "in_voltage0_rms_raw", "in_altvoltage0_raw", NULL };
static const char *const want_vs[] = { "in_altvoltage0_rms_scale", "in_voltage0_rms_scale", "in_altvoltage0_scale", "in_altvoltage_scale", NULL };
static const char *const want_i[] = { "in_current0_rms_raw", "in_altcurrent0_rms_raw", "in_current0_raw", NULL };
static const char *const want_is[] = { "in_current0_rms_scale", "in_altcurrent0_rms_scale", "in_current0_scale", "in_current_scale", NULL };
static const char *const want_p[] = { "in_power0_active_raw", "in_power0_raw", NULL };
static const char *const want_ps[] = { "in_power0_active_scale", "in_power0_scale", "in_power_scale", NULL };
static const char *const want_pf[] = { "in_power0_powerfactor", NULL };
static const char *const want_f[] = { "in_altvoltage0_frequency", "in_voltage0_frequency", NULL };
static const char *const want_e0[] = { "in_energy0_active_raw", NULL };
static const char *const want_e1[] = { "in_energy1_active_raw", NULL };
static const char *const want_missed[] = { "missed_samples", NULL };
static const char *const want_gap[] = { "gap_time_ns", NULL };

struct wanted {
	const char *const *names;
	char *out;
	size_t len;
	int rank;	/* index of the best name found so far */
};

static void offer(struct wanted *w, size_t n, const char *file)
{
	for (size_t k = 0; k < n; k++)
		for (int j = 0; w[k].names[j]; j++)
			if (!strcmp(w[k].names[j], file) && j < w[k].rank) {
				snprintf(w[k].out, w[k].len, "%s", file);
				w[k].rank = j;
			}
}

static int discover_one(const struct libiio *l, struct iio_context *ctx, const char *name,
			struct iio_ct_files *f, char *err, size_t errlen)
{
	struct iio_device *d = l->find_device(ctx, name);
	struct wanted w[] = {
		{ want_v, f->v, sizeof(f->v), 99 }, { want_vs, f->v_scale, sizeof(f->v_scale), 99 },
		{ want_i, f->i, sizeof(f->i), 99 }, { want_is, f->i_scale, sizeof(f->i_scale), 99 },
		{ want_p, f->p, sizeof(f->p), 99 }, { want_ps, f->p_scale, sizeof(f->p_scale), 99 },
		{ want_pf, f->pf, sizeof(f->pf), 99 }, { want_f, f->f, sizeof(f->f), 99 },
		{ want_e0, f->e_imp, sizeof(f->e_imp), 99 }, { want_e1, f->e_exp, sizeof(f->e_exp), 99 },
		{ want_missed, f->missed, sizeof(f->missed), 99 }, { want_gap, f->gap, sizeof(f->gap), 99 },
	};
	size_t nw = sizeof(w) / sizeof(w[0]);

	if (!d) {
		snprintf(err, errlen, "IIO device '%s' not found", name);
		return -ENODEV;
	}
	snprintf(f->devdir, sizeof(f->devdir), "/sys/bus/iio/devices/%s", l->device_id(d));
	snprintf(f->devnode, sizeof(f->devnode), "/dev/%s", l->device_id(d));
	for (unsigned int ci = 0; ci < l->nchannels(d); ci++) {
		struct iio_channel *ch = l->channel(d, ci);

		for (unsigned int ai = 0; ai < l->nattrs(ch); ai++) {
			const char *file = l->attr_filename(ch, l->attr(ch, ai));

			if (file)
				offer(w, nw, file);
		}
	}
	for (unsigned int ai = 0; ai < l->ndev_attrs(d); ai++)
		offer(w, nw, l->dev_attr(d, ai));
	return 0;
}

int sensor_iio_discover(const struct meter_config *c, struct iio_found *out)
{
	int pfd[2], status = 0;
	pid_t pid;
	ssize_t n;

	memset(out, 0, sizeof(*out));
	if (pipe(pfd)) {
		snprintf(out->err, sizeof(out->err), "pipe: %s", strerror(errno));
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(out->err, sizeof(out->err), "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -EAGAIN;
	}
	if (!pid) {
		struct iio_found f = { 0 };
		struct libiio l = { 0 };
		struct iio_context *ctx = NULL;

		close(pfd[0]);
		if (!load_libiio(&l, f.err, sizeof(f.err))) {
			ctx = l.create_local();
			if (!ctx)
				snprintf(f.err, sizeof(f.err), "libiio local context: %s", strerror(errno));
		}
		if (ctx && !discover_one(&l, ctx, c->mains_device, &f.mains, f.err, sizeof(f.err)) &&
		    (!c->renewable_device[0] ||
		     !discover_one(&l, ctx, c->renewable_device, &f.renew, f.err, sizeof(f.err)))) {
			f.ok = 1;
			f.have_renew = c->renewable_device[0] != 0;
		}
		if (ctx)
			l.destroy(ctx);
		_exit(write(pfd[1], &f, sizeof(f)) == sizeof(f) ? 0 : 1);
	}
	close(pfd[1]);
	n = read(pfd[0], out, sizeof(*out));
	close(pfd[0]);
	waitpid(pid, &status, 0);
	if (n != (ssize_t)sizeof(*out)) {
		snprintf(out->err, sizeof(out->err), "IIO discovery failed (status %d)", status);
		return -EIO;
	}
	return out->ok ? 0 : -ENODEV;
}

/* ---- readings (sysfs descriptors, no libiio) -------------------------------- */

struct ct_fds {
	int v, i, p, pf, f, e_imp, e_exp, missed, gap;
	int64_t v_num, v_den, i_num, i_den, p_num, p_den;
};

struct iio_sensor {
	struct sensor base;
	struct ct_fds mains, renew;
	bool have_renew;
	int evfd;
};

static int open_attr(const char *dir, const char *file)
{
	char p[512];

	if (!file[0])
		return -1;
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	return open(p, O_RDONLY | O_CLOEXEC);
}

/* A scale file ("0.001000") as an exact fraction num/den. */
static int scale_of(const char *dir, const char *file, int64_t *num, int64_t *den)
{
	char p[512], buf[64];
	unsigned dec;
	ssize_t n;
	int fd;

	if (!file[0])
		return -ENOENT;
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	if (parse_fixed(buf, num, &dec) || *num <= 0)
		return -EINVAL;
	*den = pow10_i64(dec);
	return 0;
}

static int open_ct(const struct iio_ct_files *f, const char *name, struct ct_fds *d, char *err,
		   size_t errlen)
{
	d->v = open_attr(f->devdir, f->v);
	d->i = open_attr(f->devdir, f->i);
	d->p = open_attr(f->devdir, f->p);
	d->pf = open_attr(f->devdir, f->pf);
	d->f = open_attr(f->devdir, f->f);
	d->e_imp = open_attr(f->devdir, f->e_imp);
	d->e_exp = open_attr(f->devdir, f->e_exp);
	d->missed = open_attr(f->devdir, f->missed);
	d->gap = open_attr(f->devdir, f->gap);
	if (d->v < 0 || d->i < 0 || d->p < 0) {
		snprintf(err, errlen, "IIO device '%s' (%s): no %s reading", name, f->devdir,
			 d->v < 0 ? "voltage" : d->i < 0 ? "current" : "active power");
		return -ENODEV;
	}
	/* A missing scale is an error: guessing 1 would misread by 1000 (uV vs mV). */
	if (scale_of(f->devdir, f->v_scale, &d->v_num, &d->v_den) ||
	    scale_of(f->devdir, f->i_scale, &d->i_num, &d->i_den) ||
	    scale_of(f->devdir, f->p_scale, &d->p_num, &d->p_den)) {
		snprintf(err, errlen, "IIO device '%s': missing or invalid scale (files '%s', '%s', '%s')",
			 name, f->v_scale, f->i_scale, f->p_scale);
		return -ENODEV;
	}
	return 0;
}

static void close_ct(struct ct_fds *d)
{
	int *fds[] = { &d->v, &d->i, &d->p, &d->pf, &d->f, &d->e_imp, &d->e_exp, &d->missed,
		       &d->gap };

	for (size_t k = 0; k < sizeof(fds) / sizeof(fds[0]); k++) {
		if (*fds[k] >= 0)
			close(*fds[k]);
		*fds[k] = -1;
	}
}

/* Fresh value of a sysfs attribute: pread at 0 makes the driver show it again. */
static int read_fixed(int fd, int64_t *mant, unsigned *dec)
{
	char buf[64];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = 0;
	return parse_fixed(buf, mant, dec);
}

static int read_int(int fd, int64_t *v)
{
	unsigned dec;
	int r = read_fixed(fd, v, &dec);

	return r ? r : dec ? -EINVAL : 0;
}

/* A decimal attribute in thousandths (powerfactor, frequency); 0 if absent. */
static int64_t read_milli(int fd)
{
	int64_t m;
	unsigned dec;

	if (fd < 0 || read_fixed(fd, &m, &dec))
		return 0;
	return mul_div_round(m, 1000, pow10_i64(dec));
}

static int read_ct(struct ct_fds *d, int64_t *v, int64_t *i, int64_t *p)
{
	int64_t rv, ri, rp;
	int e;

	if ((e = read_int(d->v, &rv)) || (e = read_int(d->i, &ri)) || (e = read_int(d->p, &rp)))
		return e;
	*v = mul_div_round(rv, d->v_num, d->v_den);
	*i = mul_div_round(ri, d->i_num, d->i_den);
	*p = mul_div_round(rp, d->p_num, d->p_den);
	return 0;
}

static int read_energy(struct ct_fds *d, uint64_t *imp, uint64_t *exp)
{
	int64_t a, b;

	if (d->e_imp < 0 || d->e_exp < 0 || read_int(d->e_imp, &a) || read_int(d->e_exp, &b) || a < 0 || b < 0)
		return -ENOENT;
	*imp = (uint64_t)a;
	*exp = (uint64_t)b;
	return 0;
}

static int iio_read(struct sensor *s, struct sensor_reading *r)
{
	struct iio_sensor *is = (struct iio_sensor *)s;
	int64_t v, i, p;
	int e;

	memset(r, 0, sizeof(*r));
	r->renew_avail_mw = -1;
	e = read_ct(&is->mains, &v, &i, &p);
	if (e)
		return e;
	r->v_mv = v < 0 ? 0 : (uint32_t)v;
	r->i_ma = i < 0 ? 0 : (uint32_t)i;
	r->p_mw = p;
	r->pf_milli = (int32_t)read_milli(is->mains.pf);
	r->f_mhz = (uint32_t)read_milli(is->mains.f);
	r->has_energy = !read_energy(&is->mains, &r->import_mj, &r->export_mj);
	{
		int64_t m, g;

		r->has_gaps = is->mains.missed >= 0 && is->mains.gap >= 0 &&
			      !read_int(is->mains.missed, &m) && !read_int(is->mains.gap, &g) &&
			      m >= 0 && g >= 0;
		if (r->has_gaps) {
			r->missed_samples = (uint64_t)m;
			r->gap_ns = (uint64_t)g;
		}
	}
	if (is->have_renew) {
		uint64_t a, b;

		e = read_ct(&is->renew, &v, &i, &p);
		if (e)
			return e;
		r->has_renew = true;
		r->renew_mw = p < 0 ? -p : p;	/* orientation of the CT does not matter */
		if (r->has_energy && !read_energy(&is->renew, &a, &b))
			r->renew_mj = a > b ? a : b;	/* dominant direction; still monotonic */
		else
			r->has_energy = false;
	}
	return 0;
}

static int iio_event_fd(struct sensor *s)
{
	return ((struct iio_sensor *)s)->evfd;
}

static int iio_read_events(struct sensor *s, unsigned *faults)
{
	struct iio_sensor *is = (struct iio_sensor *)s;
	struct iio_event_data ev[16];
	ssize_t n;

	*faults = 0;
	while ((n = read(is->evfd, ev, sizeof(ev))) > 0) {
		for (size_t k = 0; k < (size_t)n / sizeof(ev[0]); k++) {
			unsigned type = IIO_EVENT_CODE_EXTRACT_CHAN_TYPE(ev[k].id);
			unsigned dir = IIO_EVENT_CODE_EXTRACT_DIR(ev[k].id);

			/* IIO_CURRENT on 6.1; 6.18's IIO_ALTCURRENT is not in these headers */
			if (type == IIO_ALTVOLTAGE || type == IIO_VOLTAGE)
				*faults |= dir == IIO_EV_DIR_FALLING ? FAULT_UNDERVOLTAGE : FAULT_OVERVOLTAGE;
			else if (dir == IIO_EV_DIR_RISING)
				*faults |= FAULT_OVERCURRENT;
		}
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	return 0;
}

static void iio_destroy(struct sensor *s)
{
	struct iio_sensor *is = (struct iio_sensor *)s;

	if (is->evfd >= 0)
		close(is->evfd);
	close_ct(&is->mains);
	close_ct(&is->renew);
	free(is);
}

static const struct sensor_ops iio_ops = {
	.name = "iio",
	.read = iio_read,
	.event_fd = iio_event_fd,
	.read_events = iio_read_events,
	.destroy = iio_destroy,
};

static int open_events(const char *devnode, char *err, size_t errlen)
{
	int fd, efd = -1;

	fd = open(devnode, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", devnode, strerror(errno));
		return -1;
	}
	if (ioctl(fd, IIO_GET_EVENT_FD_IOCTL, &efd) < 0 || efd < 0) {
		snprintf(err, errlen, "%s: IIO_GET_EVENT_FD_IOCTL: %s", devnode, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	fcntl(efd, F_SETFL, fcntl(efd, F_GETFL) | O_NONBLOCK);
	fcntl(efd, F_SETFD, FD_CLOEXEC);
	return efd;
}

struct sensor *sensor_iio_open(const struct iio_found *f, const struct meter_config *c, bool events,
			       char *err, size_t errlen)
{
	struct iio_sensor *is = calloc(1, sizeof(*is));

	if (!is) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	is->base.ops = &iio_ops;
	is->evfd = -1;
	is->mains = (struct ct_fds){ -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0 };
	is->renew = is->mains;
	if (open_ct(&f->mains, c->mains_device, &is->mains, err, errlen))
		goto fail;
	if (f->have_renew) {
		if (open_ct(&f->renew, c->renewable_device, &is->renew, err, errlen))
			goto fail;
		is->have_renew = true;
	}
	if (events) {
		is->evfd = open_events(f->mains.devnode, err, errlen);
		if (is->evfd < 0)
			goto fail;	/* protection depends on the events: refuse to run without */
	}
	return &is->base;
fail:
	iio_destroy(&is->base);
	return NULL;
}

struct sensor *sensor_iio_new(const struct meter_config *c, char *err, size_t errlen)
{
	struct iio_found f;

	if (sensor_iio_discover(c, &f)) {
		snprintf(err, errlen, "%s", f.err);
		return NULL;
	}
	return sensor_iio_open(&f, c, true, err, errlen);
}
