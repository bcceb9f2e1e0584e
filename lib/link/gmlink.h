/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libgmlink: userspace side of the gridmeter link layer.
 *
 *  - the frame codec (gm_frame.h), the very file the kernel module
 *    compiles, for programs that speak the wire format themselves (the
 *    town server behind the modem, tests, fuzzers, benchmarks);
 *  - small wrappers around the gm_link discipline and /dev/gmlink for the
 *    meter's agent and tools (Documentation/link-ldisc.md).
 *
 * Build: add $(GMLINK_SRCS) to a program's _SRCS and $(GMLINK_CFLAGS) to
 * its include folders (lib/link/link.mk).
 */
#ifndef GMLINK_H
#define GMLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "gm_frame.h"
/*
 * Node binding (gmlink_open() with a node other than 0, gmlinkctl's NODE
 * arguments) is the kernel's test-only multi-node API: one gateway is one
 * node. Its names live outside the production uapi header.
 */
#include <gridmeter/link_test.h>

#define GMLINK_DEV	"/dev/gmlink"
#define GMLINK_LDISC	29	/* N_DEVELOPMENT, the module default */

struct gmlink_msg {
	struct gm_msg_hdr hdr;
	u8 payload[GM_MAX_PAYLOAD];
};

int gmlink_attach(int tty_fd, int ldisc);
int gmlink_configure(int tty_fd, unsigned int node, unsigned int role,
		     bool up);
int gmlink_link_stats(int tty_fd, struct gm_link_stats *st);
int gmlink_open(unsigned int node, unsigned int meter_id, int flags);
int gmlink_node_stats(int fd, struct gm_node_stats *st);
ssize_t gmlink_send(int fd, unsigned int dst, unsigned int type,
		    unsigned int flags, const void *payload, size_t len);
ssize_t gmlink_recv(int fd, struct gmlink_msg *m, int timeout_ms);
const char *gmlink_role_name(unsigned int role);
int gmlink_role_parse(const char *s);

#endif
