// SPDX-License-Identifier: GPL-2.0
#include "iio_sysfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int iio_sysfs_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

int iio_sysfs_find(const char *sysfs, const char *name, char *dir, size_t len)
{
	char base[512], path[1024], got[128];
	struct dirent *de;
	DIR *d;
	int r = -ENODEV;

	if ((size_t)snprintf(base, sizeof(base), "%s/bus/iio/devices", sysfs) >= sizeof(base))
		return -ENAMETOOLONG;
	d = opendir(base);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "iio:device", 10))
			continue;
		snprintf(path, sizeof(path), "%s/%s/name", base, de->d_name);
		if (iio_sysfs_read(path, got, sizeof(got)) || strcmp(got, name))
			continue;
		if ((size_t)snprintf(dir, len, "%s/%s", base, de->d_name) >= len)
			r = -ENAMETOOLONG;
		else
			r = 0;
		break;
	}
	closedir(d);
	return r;
}
