/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between meter.c (measuring, protection, persistence), meter_actions.c and meter_time.c. */
#ifndef GM_METER_INTERNAL_H
#define GM_METER_INTERNAL_H

#include "meter.h"

#define METER_TARIFF_FILE	"tariff.conf"

/* Drive the main relay to what protection and remote state allow. */
void meter_apply_main(struct meter *m, const char *reason);
/* One allocation step now. */
void meter_allocate(struct meter *m, int64_t mono_ms);
/* registers_interval_cb (ctx: the meter): profile, uplink, queued for the log. */
void meter_on_interval(void *ctx, const struct profile_entry *e, uint64_t demand_mw);
/* The queued intervals and a snapshot, durably into the log. */
void meter_store_intervals(struct meter *m);
/*
 * At start, after the recovery (p: the recovered state, NULL if none): is
 * the clock trusted, how old is the state, what was not recorded; journal
 * lines; the held energy replayed if the clock is trusted already.
 */
void meter_time_start(struct meter *m, const struct meter_persist *p);

#endif
