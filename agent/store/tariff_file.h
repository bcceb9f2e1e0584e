/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The tariff set over D-Bus survives restarts in state_dir/tariff.conf
 * ("key = value" lines of the [tariff] keys), written atomically.
 */
#ifndef GM_TARIFF_FILE_H
#define GM_TARIFF_FILE_H

#include <stddef.h>

#include "tariff.h"

/* 0 and compiled tariff; -ENOENT if absent; -EINVAL with "file:line: key 'k': ..." in err. */
int tariff_file_load(const char *path, struct tariff_spec *spec, struct tariff *t,
		     char *err, size_t errlen);
int tariff_file_save(const char *dir, const char *name, const struct tariff_spec *spec);

#endif
