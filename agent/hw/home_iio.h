/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Home sensors' readings ([sensor.NAME], home_sensor.h) from IIO sysfs:
 * the device is found by its IIO name (<sysfs>/bus/iio/devices/iio:deviceN/name,
 * the attribute libiio's local backend reads too), the channel file is
 * kept open and read with pread at offset 0 each period, its scale and
 * offset files are read once as exact decimals. No libiio and no floating
 * point. A device or file that is not there (yet) is looked for again at
 * the next read: the sensor shows "fault" meanwhile, metering goes on.
 */
#ifndef GM_HOME_IIO_H
#define GM_HOME_IIO_H

#include <stddef.h>
#include <stdint.h>

#include "home_sensor.h"

struct home_iio_chan {
	int fd;				/* the channel file; -1: not open */
	int64_t num, den;		/* raw (x 10^off_dec, + off_mant) -> thousandths of unit */
	int64_t off_mant;		/* the IIO offset, exact: off_mant / 10^off_dec */
	unsigned off_dec;
	char why[400];			/* why it is not open (for the journal) */
};

struct home_iio {
	char sysfs[64];			/* "/sys"; a test tree in the unit test */
	size_t n;
	const struct home_sensor_cfg *cfg;
	struct home_iio_chan ch[HS_MAX];
};

/* Remember the sensors; opens what it finds (the rest at their first read). */
void home_iio_init(struct home_iio *h, const char *sysfs, const struct home_sensor_cfg *cfg,
		   size_t n);
/* One reading of sensor i in thousandths of its unit: 0, or -errno (why in h->ch[i].why). */
int home_iio_read(struct home_iio *h, size_t i, int64_t *value_milli);
void home_iio_close(struct home_iio *h);

#endif
