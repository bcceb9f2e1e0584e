/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The tariff set over D-Bus survives restarts in state_dir/tariff.conf
 * ("key = value" lines of the [tariff] keys), written atomically; a town
 * server's update that waits for its effective time in tariff-next.conf,
 * the same format with `effective` and `tseq`.
 */
#ifndef GM_TARIFF_FILE_H
#define GM_TARIFF_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "tariff.h"

/*
 * A tariff that waits for its time (a town server's update, with the
 * command that brought it): the keys `effective` (UTC s) and `tseq` in the
 * same file. NULL where the file has none.
 */
struct tariff_when {
	int64_t effective;
	int64_t tseq;
};

/* 0 and compiled tariff; -ENOENT if absent; -EINVAL with "file:line: key 'k': ..." in err. */
int tariff_file_load(const char *path, struct tariff_spec *spec, struct tariff *t,
		     struct tariff_when *when, char *err, size_t errlen);
/* Atomic (temp file, fsync, rename, directory fsync). 0 or -errno. */
int tariff_file_save(const char *dir, const char *name, const struct tariff_spec *spec,
		     const struct tariff_when *when);

#endif
