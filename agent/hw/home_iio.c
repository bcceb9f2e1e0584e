// SPDX-License-Identifier: GPL-2.0
#include "home_iio.h"
#include "iio_sysfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "parse.h"

/*
 * An exact decimal attribute of the channel: <base>_<what> (in_voltage2_scale)
 * or the type's shared one (in_voltage_scale). -ENOENT if neither exists.
 */
static int chan_attr(const char *dir, const char *channel, const char *what, int64_t *mant,
		     unsigned *dec)
{
	char base[64], p[256], buf[64];
	size_t n;
	int r;

	snprintf(base, sizeof(base), "%s", channel);
	n = strlen(base);
	n -= n > 4 && !strcmp(base + n - 4, "_raw") ? 4 : 6;	/* _raw or _input (config.c) */
	base[n] = 0;
	for (int shared = 0; shared < 2; shared++) {
		if (shared) {
			while (n && base[n - 1] >= '0' && base[n - 1] <= '9')
				base[--n] = 0;
		}
		snprintf(p, sizeof(p), "%s/%s_%s", dir, base, what);
		r = iio_sysfs_read(p, buf, sizeof(buf));
		if (r == -ENOENT)
			continue;
		if (r)
			return r;
		return parse_fixed(buf, mant, dec) ? -EINVAL : 0;
	}
	return -ENOENT;
}

static int open_chan(struct home_iio *h, size_t i)
{
	const struct home_sensor_cfg *c = &h->cfg[i];
	struct home_iio_chan *ch = &h->ch[i];
	bool raw = strstr(c->channel, "_raw") != NULL, milli;
	int64_t sm = 1, num, den;
	unsigned sd = 0;
	char dir[160], p[256];
	int r;

	r = iio_sysfs_find(h->sysfs, c->device, dir, sizeof(dir));
	if (r) {
		snprintf(ch->why, sizeof(ch->why), "IIO device '%s' not found", c->device);
		return r;
	}
	hs_channel_unit(c->channel, &milli);
	ch->off_mant = 0;
	ch->off_dec = 0;
	if (raw && !c->have_scale) {
		/* guessing 1 would misread by orders of magnitude */
		r = chan_attr(dir, c->channel, "scale", &sm, &sd);
		if (r || sm <= 0) {
			snprintf(ch->why, sizeof(ch->why), "%s: no valid scale for %s", dir, c->channel);
			return r ? r : -EINVAL;
		}
	}
	if (raw) {
		r = chan_attr(dir, c->channel, "offset", &ch->off_mant, &ch->off_dec);
		if (r && r != -ENOENT) {
			snprintf(ch->why, sizeof(ch->why), "%s: invalid offset for %s", dir, c->channel);
			return r;
		}
	}
	if (home_sensor_factor(c, sm, pow10_i64(sd), milli, &num, &den) ||
	    __builtin_mul_overflow(den, pow10_i64(ch->off_dec), &ch->den)) {
		snprintf(ch->why, sizeof(ch->why), "%s: scale x divider out of range", c->channel);
		return -ERANGE;
	}
	ch->num = num;
	snprintf(p, sizeof(p), "%s/%s", dir, c->channel);
	ch->fd = open(p, O_RDONLY | O_CLOEXEC);
	if (ch->fd < 0) {
		r = -errno;
		snprintf(ch->why, sizeof(ch->why), "%s: %s", p, strerror(-r));
		return r;
	}
	ch->why[0] = 0;
	return 0;
}

void home_iio_init(struct home_iio *h, const char *sysfs, const struct home_sensor_cfg *cfg,
		   size_t n)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->sysfs, sizeof(h->sysfs), "%s", sysfs);
	h->cfg = cfg;
	h->n = n > HS_MAX ? HS_MAX : n;
	for (size_t i = 0; i < h->n; i++) {
		h->ch[i].fd = -1;
		open_chan(h, i);
	}
}

int home_iio_read(struct home_iio *h, size_t i, int64_t *value_milli)
{
	struct home_iio_chan *ch = &h->ch[i];
	int64_t raw, x;
	unsigned dec;
	char buf[64];
	ssize_t n;
	int r;

	if (ch->fd < 0 && (r = open_chan(h, i)))
		return r;
	n = pread(ch->fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0) {
		r = n < 0 ? -errno : -EIO;
		snprintf(ch->why, sizeof(ch->why), "%s: read: %s", h->cfg[i].channel, strerror(-r));
		/* the device may have gone (module unloaded): look for it again next time */
		close(ch->fd);
		ch->fd = -1;
		return r;
	}
	buf[n] = 0;
	if (parse_fixed(buf, &raw, &dec) || dec ||
	    __builtin_mul_overflow(raw, pow10_i64(ch->off_dec), &x) ||
	    __builtin_add_overflow(x, ch->off_mant, &x)) {
		snprintf(ch->why, sizeof(ch->why), "%s: not a whole number", h->cfg[i].channel);
		return -EINVAL;
	}
	*value_milli = home_sensor_value(&h->cfg[i], x, ch->num, ch->den);
	return 0;
}

void home_iio_close(struct home_iio *h)
{
	for (size_t i = 0; i < h->n; i++) {
		if (h->ch[i].fd >= 0)
			close(h->ch[i].fd);
		h->ch[i].fd = -1;
	}
}
