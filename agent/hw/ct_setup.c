// SPDX-License-Identifier: GPL-2.0
#include "ct_setup.h"
#include "iio_sysfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : n < 0 ? -errno : -EIO;
}

struct ev {
	const char *what;
	const char *prefix[2];	/* 6.1 name, 6.18 name */
	uint64_t value;		/* uV or uA */
	bool rising;
};

int ct_thresholds(const char *sysfs_root, const char *devname, uint32_t ov_mv, uint32_t uv_mv,
		  uint32_t oc_ma, bool apply, char *err, size_t errlen)
{
	struct ev evs[3] = {
		{ "over-voltage", { "in_altvoltage0_rms_thresh_rising", NULL }, (uint64_t)ov_mv * 1000, true },
		{ "under-voltage", { "in_altvoltage0_rms_thresh_falling", NULL }, (uint64_t)uv_mv * 1000, false },
		{ "over-current", { "in_current0_rms_thresh_rising", "in_altcurrent0_rms_thresh_rising" },
		  (uint64_t)oc_ma * 1000, true },
	};
	char dir[768];
	int r = iio_sysfs_find(sysfs_root, devname, dir, sizeof(dir));

	if (r) {
		snprintf(err, errlen, "IIO device '%s' not found under %s/bus/iio/devices", devname, sysfs_root);
		return r;
	}
	for (int k = 0; k < 3; k++) {
		char p[1024], buf[64], want[32];
		const char *pre = NULL;

		for (int j = 0; j < 2 && !pre; j++) {
			snprintf(p, sizeof(p), "%s/events/%s_value", dir, evs[k].prefix[j] ?: "-");
			if (evs[k].prefix[j] && !access(p, F_OK))
				pre = evs[k].prefix[j];
		}
		if (!pre) {
			snprintf(err, errlen, "%s: no %s threshold event in %s/events", devname, evs[k].what, dir);
			return -ENOENT;
		}
		snprintf(want, sizeof(want), "%llu", (unsigned long long)evs[k].value);
		if (apply) {
			char hyst[32];

			snprintf(hyst, sizeof(hyst), "%llu",
				 (unsigned long long)(evs[k].value * CT_HYST_PERCENT / 100));
			snprintf(p, sizeof(p), "%s/events/%s_value", dir, pre);
			r = write_str(p, want);
			if (!r) {
				snprintf(p, sizeof(p), "%s/events/%s_hysteresis", dir, pre);
				r = write_str(p, hyst);
			}
			if (!r) {
				snprintf(p, sizeof(p), "%s/events/%s_en", dir, pre);
				r = write_str(p, "1");
			}
			if (r) {
				snprintf(err, errlen, "%s: %s", p, strerror(-r));
				return r;
			}
			continue;
		}
		snprintf(p, sizeof(p), "%s/events/%s_en", dir, pre);
		r = iio_sysfs_read(p, buf, sizeof(buf));
		if (r || strcmp(buf, "1")) {
			snprintf(err, errlen, "%s event of %s is not enabled (run meterd --setup-thresholds)",
				 evs[k].what, devname);
			return r ? r : -EINVAL;
		}
		snprintf(p, sizeof(p), "%s/events/%s_value", dir, pre);
		r = iio_sysfs_read(p, buf, sizeof(buf));
		if (r || strtoull(buf, NULL, 10) != evs[k].value) {
			snprintf(err, errlen, "%s threshold of %s is %s, configured %s (run meterd --setup-thresholds)",
				 evs[k].what, devname, r ? "unreadable" : buf, want);
			return r ? r : -EINVAL;
		}
	}
	return 0;
}
