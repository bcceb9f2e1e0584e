/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between meter.c (measuring, protection, persistence) and meter_actions.c. */
#ifndef GM_METER_INTERNAL_H
#define GM_METER_INTERNAL_H

#include "meter.h"

#define METER_TARIFF_FILE	"tariff.conf"

/* Drive the main relay to what protection and remote state allow. */
void meter_apply_main(struct meter *m, const char *reason);
/* One allocation step now. */
void meter_allocate(struct meter *m, int64_t mono_ms);

#endif
