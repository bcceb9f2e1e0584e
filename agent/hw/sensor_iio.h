/* SPDX-License-Identifier: GPL-2.0 */
/* Internals of the IIO backend, exposed for its host test (fake sysfs tree). */
#ifndef GM_SENSOR_IIO_H
#define GM_SENSOR_IIO_H

#include <stdbool.h>
#include <stddef.h>

struct meter_config;
struct sensor;

/* Where one CT's attributes live, as libiio found them. "" = absent. */
struct iio_ct_files {
	char devdir[96];	/* /sys/bus/iio/devices/iio:deviceN */
	char devnode[48];	/* /dev/iio:deviceN */
	char v[64], i[64], p[64], pf[64], f[64], e_imp[64], e_exp[64];
	char v_scale[64], i_scale[64], p_scale[64];	/* scale files ("0.001000") */
	char missed[64], gap[64];	/* gap counters (device attributes) */
};

struct iio_found {
	int ok;
	int have_renew;
	struct iio_ct_files mains, renew;
	char err[256];
};

/* Discovery through libiio in a child process. 0, or -errno with f->err set. */
int sensor_iio_discover(const struct meter_config *c, struct iio_found *f);
/* Open the readings (and, if events, the event fd) of what discovery found. */
struct sensor *sensor_iio_open(const struct iio_found *f, const struct meter_config *c, bool events,
			       char *err, size_t errlen);

#endif
