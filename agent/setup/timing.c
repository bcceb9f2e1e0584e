// SPDX-License-Identifier: GPL-2.0
/* gridmeter-setup's clock and sleep (setup.h). */
#include <errno.h>
#include <time.h>

#include "setup.h"

void setup_sleep_ms(unsigned ms)
{
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

int64_t setup_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}
