/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Simulated meters for townd's host tests and benchmarks: the meter side
 * of gmproto over a TCP byte stream of link frames, as a SIM900 in
 * transparent mode or a wired gateway would carry it.
 */
#ifndef SIMMETER_H
#define SIMMETER_H

#include <stdint.h>
#include <sys/types.h>

#include "gm_frame.h"
#include "gmproto.h"

struct simmeter {
	uint16_t id;
	uint16_t frame_seq;
	struct gmp_keypair kp;
	struct gmp_session s;
};

struct sim_ack {
	int64_t upto;		/* -1: none */
	int64_t time_ms;	/* 0: no time message */
};

int simmeter_init(struct simmeter *m, uint16_t id, const struct gmp_keypair *kp,
		  const uint8_t town_pk[GMP_KEY_LEN]);
/* A reading as the tests define it: values are a function of (id, seq). */
void sim_reading(uint16_t id, int64_t seq, struct gmp_msg *out);
/* Seal msgs into one frame; returns its wire length or -1. */
int simmeter_frame(struct simmeter *m, const struct gmp_msg *msgs, size_t n,
		   unsigned int flags, uint8_t *wire, size_t size);
int sim_connect(uint16_t port);			/* 127.0.0.1:port, -1 on error */
int sim_send_all(int fd, const void *buf, size_t len);
struct sim_rx {
	struct gm_rx rx;
	uint8_t buf[4096];
	size_t len, off;
};

void sim_rx_init(struct sim_rx *rx);
/*
 * Open and decode one frame from the town server for meter m. 1 with *ack
 * filled (upto -1 if the frame had no acknowledgement), 0 if the frame is
 * not for m or does not open.
 */
int simmeter_open_ack(struct simmeter *m, const struct gm_hdr *h, const uint8_t *payload,
		      size_t len, struct sim_ack *ack);
/*
 * Feed frames arriving on fd to cb until cb returns non-zero or timeout_ms
 * passes. Returns cb's value, 0 on timeout, -1 when the peer closed.
 */
typedef int (*sim_frame_cb)(void *ctx, const struct gm_hdr *h, const uint8_t *payload,
			    size_t len);
int sim_read_frames(int fd, struct sim_rx *rx, int timeout_ms, sim_frame_cb cb, void *ctx);
/* Frames for m until an acknowledgement arrives: 1 with *ack, 0, -1. */
int sim_wait_ack(struct simmeter *m, int fd, struct sim_rx *rx, int timeout_ms,
		 struct sim_ack *ack);

#endif
