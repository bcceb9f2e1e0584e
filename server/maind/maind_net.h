/* SPDX-License-Identifier: GPL-2.0 */
/*
 * maind network loop: epoll over the listening sockets and the towns' TCP
 * connections, each a byte stream of link frames (drivers/tty/gm_frame.c),
 * into gmp_server with PostgreSQL behind it (maind_pg.h).
 */
#ifndef MAIND_NET_H
#define MAIND_NET_H

#include <stddef.h>

#include "maind_config.h"

/*
 * Run until SIGTERM/SIGINT. listen_fds: already-listening sockets (tests,
 * socket activation) besides the configured ones. 0 on a clean stop, -1
 * with err (PostgreSQL failed: nothing unacknowledged is lost, the towns
 * resend; the service manager restarts maind).
 */
int maind_run(const struct maind_config *cfg, const int *listen_fds, int n_fds, char *err,
	      size_t errlen);

#endif
