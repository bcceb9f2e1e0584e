// SPDX-License-Identifier: GPL-2.0
#include "clock_set.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/timex.h>

/* the kernel's maximum error grows by 500 ppm from here (then STA_UNSYNC at 16 s) */
#define MAXERROR_MARGIN_US	100000

void clock_set_shift(struct timespec *ts, int64_t delta_ms)
{
	int64_t ns = (int64_t)ts->tv_nsec + (delta_ms % 1000) * 1000000;

	ts->tv_sec += (time_t)(delta_ms / 1000);
	if (ns < 0) {
		ns += 1000000000;
		ts->tv_sec--;
	} else if (ns >= 1000000000) {
		ns -= 1000000000;
		ts->tv_sec++;
	}
	ts->tv_nsec = (long)ns;
}

void clock_set_timeval(int64_t delta_ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(delta_ms / 1000);
	tv->tv_usec = (suseconds_t)((delta_ms % 1000) * 1000);
}

static int cs_boot_id(void *ctx, char *buf, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	int r = -ENOENT;

	(void)ctx;
	buf[0] = 0;
	if (!f)
		return -errno;
	if (fgets(buf, (int)len, f)) {
		buf[strcspn(buf, "\n")] = 0;
		r = 0;
	}
	fclose(f);
	return r;
}

static int cs_synced(void *ctx)
{
	struct timex tx;
	int st;

	(void)ctx;
	memset(&tx, 0, sizeof(tx));
	st = adjtimex(&tx);
	if (st < 0)
		return -errno;
	return st != TIME_ERROR && !(tx.status & STA_UNSYNC);
}

static int cs_step(void *ctx, int64_t delta_ms)
{
	struct timespec ts;

	(void)ctx;
	if (clock_gettime(CLOCK_REALTIME, &ts))
		return -errno;
	clock_set_shift(&ts, delta_ms);
	return clock_settime(CLOCK_REALTIME, &ts) ? -errno : 0;
}

static int cs_slew(void *ctx, int64_t delta_ms)
{
	struct timeval tv;

	(void)ctx;
	clock_set_timeval(delta_ms, &tv);
	return adjtime(&tv, NULL) ? -errno : 0;
}

static int cs_mark_synced(void *ctx, int64_t esterror_ms)
{
	struct timex tx;

	(void)ctx;
	memset(&tx, 0, sizeof(tx));
	if (adjtimex(&tx) < 0)
		return -errno;
	tx.modes = ADJ_STATUS | ADJ_ESTERROR | ADJ_MAXERROR;
	tx.status &= ~STA_UNSYNC;
	tx.esterror = (long)(esterror_ms * 1000);
	tx.maxerror = (long)(esterror_ms * 1000 + MAXERROR_MARGIN_US);
	return adjtimex(&tx) < 0 ? -errno : 0;
}

const struct meter_clock_ops clock_set_ops = {
	.ctx = NULL,
	.boot_id = cs_boot_id,
	.synced = cs_synced,
	.step = cs_step,
	.slew = cs_slew,
	.mark_synced = cs_mark_synced,
};
