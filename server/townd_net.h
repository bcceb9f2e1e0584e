/* SPDX-License-Identifier: GPL-2.0 */
/*
 * townd network loop: epoll over the listening sockets (configured or
 * passed by systemd socket activation) and the TCP connections of modems
 * and wired gateways, each a byte stream of link frames.
 */
#ifndef TOWND_NET_H
#define TOWND_NET_H

#include <stddef.h>

#include "townd_config.h"

/*
 * Run until SIGTERM/SIGINT. listen_fds: extra already-listening sockets
 * (socket activation, tests). Returns 0 on a clean stop, -1 with err.
 */
int townd_run(const struct townd_config *cfg, const int *listen_fds, int n_fds,
	      char *err, size_t errlen);

#endif
