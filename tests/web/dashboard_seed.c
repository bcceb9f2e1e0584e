// SPDX-License-Identifier: GPL-2.0
/*
 * Seeds meterd's state directory with a load-profile history, written with
 * meterd's own store code (agent/store/store.c), so that the dashboard's
 * 7- and 30-day charts have data in the browser test:
 *
 *   dashboard_seed STATE_DIR RUNTIME_DIR INTERVAL_S DAYS NOW
 *
 * Every closed interval from DAYS local days before NOW's day up to NOW:
 * import shaped like a household's day (an evening peak), some export and
 * renewable around noon, pseudo-random but reproducible from the start time.
 * No snapshot is written: meterd starts as on a first boot with this profile.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "persist.h"
#include "profile.h"
#include "store.h"

static uint32_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return (uint32_t)x;
}

int main(int argc, char **argv)
{
	struct store st;
	struct profile_entry *e;
	int64_t interval, days, now, from;
	size_t n = 0, cap;
	struct tm tm;
	time_t t;
	int r;

	if (argc != 6) {
		fprintf(stderr, "usage: dashboard_seed STATE_DIR RUNTIME_DIR INTERVAL_S DAYS NOW\n");
		return 64;
	}
	interval = atoll(argv[3]);
	days = atoll(argv[4]);
	now = atoll(argv[5]);
	if (interval < 60 || days < 1 || days > 40 || now <= 0) {
		fprintf(stderr, "dashboard_seed: bad arguments\n");
		return 64;
	}
	t = (time_t)now;
	localtime_r(&t, &tm);
	tm.tm_mday -= (int)days;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	from = (int64_t)mktime(&tm);
	from -= from % interval;
	cap = (size_t)((now - from) / interval + 1);
	e = calloc(cap, sizeof(*e));
	if (!e)
		return 1;
	for (int64_t s = from; s + interval <= now - interval; s += interval) {
		uint32_t rnd = mix((uint64_t)s);
		int hour;

		t = (time_t)s;
		localtime_r(&t, &tm);
		hour = tm.tm_hour;
		/* W: base load, evening peak, noon sun */
		uint64_t w = 250 + rnd % 300 + (hour >= 17 && hour < 21 ? 1800 : 0) + (hour >= 7 && hour < 9 ? 900 : 0);
		uint64_t sun = hour >= 10 && hour < 16 ? 600 + (rnd >> 12) % 900 : 0;

		e[n].start = s;
		e[n].import_mwh = (uint32_t)(w * (uint64_t)interval * 1000 / 3600);
		e[n].renew_mwh = (uint32_t)(sun * (uint64_t)interval * 1000 / 3600);
		e[n].export_mwh = sun > 900 ? (uint32_t)((sun - 900) * (uint64_t)interval * 1000 / 3600) : 0;
		e[n].flags = 0;
		n++;
	}
	r = store_open(&st, argv[1], argv[2], PERSIST_MAX);
	if (r) {
		fprintf(stderr, "dashboard_seed: %s: %s\n", argv[1], strerror(-r));
		return 1;
	}
	r = store_commit(&st, NULL, 0, e, n, true);
	store_close(&st);
	free(e);
	if (r < 0) {
		fprintf(stderr, "dashboard_seed: writing the profile: %s\n", strerror(-r));
		return 1;
	}
	printf("%zu intervals from %lld\n", n, (long long)from);
	return 0;
}
