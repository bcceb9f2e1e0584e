/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A full disk for the test's own process, root included: RLIMIT_FSIZE at
 * 0, so that every write() that would grow a file fails with EFBIG (the
 * SIGXFSZ it would raise ignored), until gm_disk_full_end() restores the
 * limits. Only the soft limit changes, so it can always be raised again.
 */
#ifndef GM_DISK_FULL_H
#define GM_DISK_FULL_H

#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

struct gm_disk_full {
	struct rlimit saved;
	void (*old_handler)(int);
};

static inline int gm_disk_full_begin(struct gm_disk_full *d)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_FSIZE, &d->saved))
		return -1;
	rl.rlim_cur = 0;
	rl.rlim_max = d->saved.rlim_max;
	d->old_handler = signal(SIGXFSZ, SIG_IGN);
	return setrlimit(RLIMIT_FSIZE, &rl);
}

static inline int gm_disk_full_end(struct gm_disk_full *d)
{
	int r = setrlimit(RLIMIT_FSIZE, &d->saved);

	signal(SIGXFSZ, d->old_handler);
	return r;
}

/*
 * Temporary files an atomic save left in @dir (lib/file/atomic_file.h:
 * NAME.XXXXXX, six letters or digits after the last dot); -1 if @dir
 * cannot be read.
 */
static inline int gm_stray_temporaries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		const char *dot = strrchr(e->d_name, '.');
		int k = 0;

		if (!dot || dot == e->d_name || strlen(dot + 1) != 6)
			continue;
		while (k < 6 && isalnum((unsigned char)dot[1 + k]))
			k++;
		n += k == 6;
	}
	closedir(d);
	return n;
}

#endif /* GM_DISK_FULL_H */
