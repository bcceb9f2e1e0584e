/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small reads of IIO's sysfs, shared by the CT set-up (ct_setup.c) and the
 * home sensors (home_iio.c). sysfs is "/sys" in meterd, a fake tree in tests.
 */
#ifndef GM_IIO_SYSFS_H
#define GM_IIO_SYSFS_H

#include <stddef.h>

/* A small attribute as a string without its newline: 0 or -errno. */
int iio_sysfs_read(const char *path, char *buf, size_t len);
/* dir = <sysfs>/bus/iio/devices/iio:deviceN of the device called name: 0, -ENODEV or -errno. */
int iio_sysfs_find(const char *sysfs, const char *name, char *dir, size_t len);

#endif
