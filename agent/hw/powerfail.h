/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The optional power-fail input ([power] fail_chip, fail_line,
 * fail_active_low): the "power lost" line of a supercap or UPS HAT, which
 * keeps the Pi running for the seconds a durable snapshot needs. libgpiod
 * (v1) edge events on both edges, like the push button (relay_gpiod.c);
 * "lost" is the line's logical active level (fail_active_low inverts it in
 * the kernel). Every "lost" edge counts (a bouncing line must not hide
 * one); the daemon saves at most once a second for them.
 */
#ifndef GM_POWERFAIL_H
#define GM_POWERFAIL_H

#include <stdbool.h>
#include <stddef.h>

struct powerfail;

struct powerfail *powerfail_open(const char *chip, unsigned line, bool active_low, char *err,
				 size_t errlen);
/* For the event loop: readable when an edge arrived. */
int powerfail_fd(const struct powerfail *pf);
/* Drain the edges: *lost_edge if one of them said "lost", *lost the level after the last. 0 or -errno. */
int powerfail_read(struct powerfail *pf, bool *lost_edge, bool *lost);
/* The state now (at start). */
bool powerfail_lost(const struct powerfail *pf);
void powerfail_close(struct powerfail *pf);

#endif
