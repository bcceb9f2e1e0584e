/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The system clock for meterd (struct meter_clock_ops): the boot id,
 * adjtimex's verdict on synchronisation, steps through clock_settime(),
 * slews through adjtime(), and marking the kernel's clock synchronised
 * (adjtimex ADJ_STATUS clearing STA_UNSYNC, ADJ_ESTERROR, ADJ_MAXERROR) so
 * that timedatectl, the kernel's RTC sync and the next start of meterd
 * agree. Setting needs CAP_SYS_TIME and the @clock system calls
 * (agent/system/meterd.service).
 */
#ifndef GM_CLOCK_SET_H
#define GM_CLOCK_SET_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#include "meter.h"

extern const struct meter_clock_ops clock_set_ops;

/* ts + delta_ms, normalised (0 <= tv_nsec < 1e9). */
void clock_set_shift(struct timespec *ts, int64_t delta_ms);
/* delta_ms as the timeval adjtime() takes (tv_usec of the sign of tv_sec, |tv_usec| < 1e6). */
void clock_set_timeval(int64_t delta_ms, struct timeval *tv);

#endif
