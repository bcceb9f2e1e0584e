// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation inside a town (server/townd_alloc.c): the cost of one decision
 * as a function of the meters taking part. Each round: one meter's request
 * arrives and the town decides (what townd does per alloc-request before
 * the ack that carries the grant). Prints decisions per second (wall
 * clock, noisy on a shared machine: compare runs, or run it under
 * valgrind --tool=callgrind for instructions per decision).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "townd_alloc.h"

static int64_t ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	static const unsigned int sizes[] = { 10, 100, 1000, 10000 };
	int rounds = argc > 1 ? atoi(argv[1]) : 200;
	unsigned int seed = 12;

	printf("%-8s %-8s %14s %14s %12s\n", "meters", "rounds", "us/decision", "decisions/s",
	       "grants sent");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct ta_cfg cfg = { .capacity_w = (int64_t)sizes[s] * 1500, .base_w = 10000,
				      .hysteresis_w = 100, .default_duration_s = 900,
				      .max_duration_s = 86400 };
		struct townd_alloc a;
		int64_t t0, t1, now = 1790000000, sends = 0;

		townd_alloc_init(&a, &cfg);
		for (unsigned int m = 1; m <= sizes[s]; m++)
			townd_alloc_request(&a, (uint16_t)m, 1, 500 + rand_r(&seed) % 3000,
					    86400, (int64_t)(rand_r(&seed) % 4) << GMP_AF_PRIO_SHIFT,
					    now);
		townd_alloc_decide(&a, now);
		t0 = ns();
		for (int r = 0; r < rounds; r++) {
			uint16_t m = (uint16_t)(1 + rand_r(&seed) % sizes[s]);

			now++;
			townd_alloc_request(&a, m, 2 + r, (int64_t)(rand_r(&seed) % 2000) - 1000,
					    86400, 0, now);
			townd_alloc_decide(&a, now);
			for (size_t k = 0; k < a.ndec; k++)
				sends += a.dec[k].send;
		}
		t1 = ns();
		printf("%-8u %-8d %14.1f %14.0f %12" PRId64 "\n", sizes[s], rounds,
		       (double)(t1 - t0) / rounds / 1000.0, rounds * 1e9 / (double)(t1 - t0), sends);
		townd_alloc_free(&a);
	}
	return 0;
}
