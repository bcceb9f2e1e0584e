/* SPDX-License-Identifier: GPL-2.0 */
/* townctl status and townctl price (townctl_town.c). */
#ifndef TOWNCTL_TOWN_H
#define TOWNCTL_TOWN_H

#include <stdint.h>

#include "townd_config.h"
#include "townd_db.h"

/* Mode, since, backlog, oldest hour, supply, retention, disk use. Exit status. */
int townctl_status(struct townd_db *d, const struct townd_config *cfg, int64_t now);
/*
 * Price so far of the current (UTC) month of a meter: its hours and its
 * tariffs (tup_price), integer milli-minor units. Exit status.
 */
int townctl_price(struct townd_db *d, unsigned int id, int64_t now);

#endif
