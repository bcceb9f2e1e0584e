/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The unsent bytes of a non-blocking stream socket: what townd, maind and
 * their tier links queue for a peer and write out when it can take them.
 */
#ifndef GM_SENDQ_H
#define GM_SENDQ_H

#include <stddef.h>
#include <stdint.h>

/*
 * Write buf[0..*len) to the non-blocking socket fd as far as it takes it
 * (MSG_NOSIGNAL: a peer gone is an error, not a signal), and move what is
 * left to the front of buf. Returns 0 (*len is what is left: 0 when all
 * went, more when the socket is full) or -1 with errno (the connection
 * is broken).
 */
int gm_sendq_drain(int fd, uint8_t *buf, size_t *len);

#endif /* GM_SENDQ_H */
