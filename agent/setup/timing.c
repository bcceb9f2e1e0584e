// SPDX-License-Identifier: GPL-2.0
/*
 * gridmeter-setup's clock, sleep and interruption (setup.h). Ctrl-C, a
 * closed SSH session (SIGHUP) or SIGTERM set a flag (the one piece of
 * global state: a signal handler has nowhere else to put it) and interrupt
 * the read or sleep under way; the steps then abandon what is not
 * committed, as at the end of input, and meterd is started again.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "setup.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

void setup_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: a blocked read returns */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* the terminal may be gone: writes fail instead of killing us */
	signal(SIGPIPE, SIG_IGN);
}

bool setup_interrupted(void)
{
	return interrupted != 0;
}

void setup_sleep_ms(unsigned ms)
{
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) && errno == EINTR && !interrupted)
		;
}

int64_t setup_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}
