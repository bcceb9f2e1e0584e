/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the in-guest link layer tests and benchmarks: pty pairs,
 * attaching the gm_link discipline, /dev/gmlink nodes, and a "wire" end
 * that speaks the frame format with the kernel's own codec.
 */
#ifndef LINK_UTIL_H
#define LINK_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "gm_frame.h"
#include "gmlink.h"

#define LT_LDISC	29	/* N_DEVELOPMENT, the module's default */

struct lt_frame {
	struct gm_hdr h;
	unsigned int len;
	u8 p[GM_MAX_PAYLOAD];
};

/* One end of a pty read/written as raw bytes, decoded with the codec. */
struct lt_wire {
	int fd;
	struct gm_rx rx;
	u8 buf[8192];
	size_t off, len;
	unsigned int crc, framing, oversize;
};

int lt_modprobe(void);
int lt_pty(int *master, int *slave);
int lt_attach(int fd);
int lt_node_open(unsigned int node, unsigned int meter_id, bool nonblock);
ssize_t lt_send(int gfd, unsigned int dst, const void *p, size_t len);
int lt_recv(int gfd, struct lt_frame *f, int timeout_ms);
void lt_wire_init(struct lt_wire *w, int fd);
int lt_wire_send(int fd, const struct gm_hdr *h, const void *p, size_t len);
int lt_wire_recv(struct lt_wire *w, struct lt_frame *f, int timeout_ms);
int lt_write_all(int fd, const void *p, size_t len);
u16 lt_server_seq(void);
void lt_fill(u8 *p, size_t len, unsigned int seed);
long long lt_now_ns(void);
void lt_msleep(unsigned int ms);

#endif
