/* SPDX-License-Identifier: GPL-2.0 */
/* A listening TCP socket for the servers (townd, its town network, maind). */
#ifndef GM_LISTEN_H
#define GM_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * A non-blocking, close-on-exec stream socket bound to ss (SO_REUSEADDR;
 * an IPv6 address takes IPv6 only, so that an IPv4 address of the same
 * port can be listened on beside it) and listening with the given backlog.
 * The descriptor, or -1 with "socket: ..." or "listen: ..." in err.
 */
int gm_listen(const struct sockaddr_storage *ss, socklen_t len, int backlog, char *err,
	      size_t errlen);

#endif /* GM_LISTEN_H */
