/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * gm_link: the test-only part of the link layer's user ABI.
 *
 * A gateway runs one node (node 0). For its tests the module runs
 * GM_NODES_MAX independent nodes in one kernel, so that chains and rings of
 * meters can be built over pty pairs: struct gm_link_conf.node picks a tty's
 * node and GM_IOC_BIND_NODE binds a /dev/gmlink file to one. Neither is part
 * of the production ABI (include/uapi/gridmeter/link.h).
 */
#ifndef _GRIDMETER_LINK_TEST_H
#define _GRIDMETER_LINK_TEST_H

#include <gridmeter/link.h>

#define GM_NODES_MAX		8	/* node instances per kernel */

/* /dev/gmlink fd: bind the file to node 0..GM_NODES_MAX-1; CAP_NET_ADMIN */
#define GM_IOC_BIND_NODE	_IOW(GM_IOC_MAGIC, 6, __u32)

#endif /* _GRIDMETER_LINK_TEST_H */
