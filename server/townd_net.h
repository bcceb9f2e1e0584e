/* SPDX-License-Identifier: GPL-2.0 */
/*
 * townd network loop: epoll over the listening sockets (configured or
 * passed by systemd socket activation) and the TCP connections of modems
 * and wired gateways, each a byte stream of link frames.
 */
#ifndef TOWND_NET_H
#define TOWND_NET_H

#include <stddef.h>
#include <stdint.h>

#include "townd_config.h"

/*
 * Run until SIGTERM/SIGINT. listen_fds: extra already-listening sockets
 * (socket activation, tests). Returns 0 on a clean stop, -1 with err.
 * Checks the open-file limit first (townd_fd_limit).
 */
int townd_run(const struct townd_config *cfg, const int *listen_fds, int n_fds,
	      char *err, size_t errlen);

/*
 * Whether RLIMIT_NOFILE holds max_connections plus what townd needs for
 * itself with n_listen listening sockets; the soft limit is raised to the
 * hard one when it is too low. 0 with *max_conn = max_connections; 1 when
 * max_connections was not configured and the default does not fit: then
 * *max_conn is what fits and err says so; -1 with err naming the
 * configuration file, line and key when a configured max_connections
 * does not fit.
 */
int townd_fd_limit(const struct townd_config *cfg, unsigned int n_listen, uint32_t *max_conn,
		   char *err, size_t errlen);

#endif
