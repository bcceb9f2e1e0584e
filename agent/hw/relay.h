/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Relay backend interface: relay 0 is the main relay, relays 1..n the
 * sheddable loads (in priority order); plus the optional local reconnect
 * push button.
 *   relay_gpiod: libgpiod v1 output lines and a falling/rising edge button
 *   relay_fake:  in-memory, for host tests
 */
#ifndef GM_RELAY_H
#define GM_RELAY_H

#include <stdbool.h>
#include <stddef.h>

struct meter_config;
struct relays;

struct relay_ops {
	const char *name;
	int (*set)(struct relays *r, unsigned idx, bool closed);
	int (*get)(struct relays *r, unsigned idx, bool *closed);
	int (*button_fd)(struct relays *r);		/* -1: no button */
	int (*button_pressed)(struct relays *r);	/* drain; > 0 if pressed */
	void (*destroy)(struct relays *r);
};

struct relays {
	const struct relay_ops *ops;
	unsigned count;		/* 1 + loads */
};

struct relays *relay_gpiod_new(const struct meter_config *c, char *err, size_t errlen);
struct relays *relay_fake_new(unsigned count);
/* Fake only: number of set() calls so far, to test that nothing toggles needlessly. */
unsigned relay_fake_sets(const struct relays *r);

#endif
