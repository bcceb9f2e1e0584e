/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Simulated meters for townd's host tests and benchmarks: the meter side
 * of gmproto v2 over a TCP byte stream of link frames, as a SIM900 in
 * transparent mode or a wired gateway would carry it. A test drives the
 * records itself (seqs of its choice); the handshake is done here.
 */
#ifndef SIMMETER_H
#define SIMMETER_H

#include <stdint.h>
#include <sys/types.h>

#include "gm_frame.h"
#include "gmcmd.h"
#include "gmproto.h"
#include "seen.h"

#define SIM_SIGNED_MAX	8

/*
 * A meter that verifies operator-signed commands (GMP_SIGNED in its
 * acks) as meterd does: lib/sign against its operator keys, its town and
 * id, replay memory in memory. NULL keys (the default): commands ignored.
 */
struct sim_signed {
	const struct gmc_keyset *keys;
	struct gmc_policy pol;
	uint16_t town;
	int64_t now;			/* the meter's clock (UTC s) */
	struct gmc_seen seen;
	int64_t floor;			/* highest tseq handled */
	size_t n;			/* results not yet sent (simmeter_results) */
	struct {
		int64_t tseq, status;
		uint64_t id;
		int action;
	} r[SIM_SIGNED_MAX];
	uint64_t executed, refused;
	uint8_t last_blob[GMP_BLOB_MAX];	/* the last GMP_SIGNED received, as received */
	size_t last_len;
};

struct simmeter {
	uint16_t id;
	uint16_t frame_seq;
	struct gmp_keypair kp;
	struct gmp_lt lt;
	struct gmp_session s;		/* s.up once a WELCOME came */
	uint8_t rm[GMP_RAND_LEN];	/* of the HELLO outstanding */
	struct sim_signed *sig;		/* NULL: signed commands ignored */
};

/*
 * The GMP_CMD_RESULTs of the signed commands verified so far, as messages
 * (at most max); they are then forgotten. The count.
 */
size_t simmeter_results(struct simmeter *m, struct gmp_msg *out, size_t max);
/*
 * A GMP_SIGNED the town sent m (m->sig set, its now the meter's clock):
 * verified, checked against the replay memory and remembered as meterd
 * does; its result is then in m->sig->r[m->sig->n - 1] (none when its
 * tseq was handled before or no room is left: the town sends it again).
 */
void simmeter_take_signed(struct simmeter *m, const struct gmp_msg *g);

struct sim_ack {
	int64_t upto;		/* -1: none (from an ack or a WELCOME) */
	int64_t time_ms;	/* 0: no WELCOME */
	bool welcome;		/* a WELCOME: the session is new */
	bool rehello;		/* the town holds no session of ours */
};

int simmeter_init(struct simmeter *m, uint16_t id, const struct gmp_keypair *kp,
		  const uint8_t town_pk[GMP_KEY_LEN]);
/* A HELLO (fresh random) with the given command floor; its wire length or -1. */
int simmeter_hello(struct simmeter *m, int64_t cmd_floor, uint8_t *wire, size_t size);
/* What a HELLO says about the meter (struct gmp_msg's hello fields). */
struct sim_hello {
	int64_t now_ms, clock_trusted, cmd_floor, next_seq, first_held, flags;
};

/* A HELLO (fresh random) saying what hv says; its wire length or -1. */
int simmeter_hello_with(struct simmeter *m, const struct sim_hello *hv, uint8_t *wire,
			size_t size);
/* A reading as the tests define it: values are a function of (id, seq). */
void sim_reading(uint16_t id, int64_t seq, struct gmp_msg *out);
/* Seal msgs into one frame; returns its wire length or -1. */
int simmeter_frame(struct simmeter *m, const struct gmp_msg *msgs, size_t n,
		   unsigned int flags, uint8_t *wire, size_t size);
/* Readings [from, to] of m on fd, k per frame (at most 32), each frame asking for an ack: 0 or -1. */
int sim_send_range(struct simmeter *m, int fd, int64_t from, int64_t to, int k);
int sim_connect(uint16_t port);			/* 127.0.0.1:port, -1 on error */
int sim_send_all(int fd, const void *buf, size_t len);
struct sim_rx {
	struct gm_rx rx;
	uint8_t buf[4096];
	size_t len, off;
};

void sim_rx_init(struct sim_rx *rx);
/*
 * Open and decode one frame from the town server for meter m: a WELCOME
 * answering its HELLO (the session is taken; upto and the time in *ack),
 * a REHELLO, or a session frame (its ack). 1 with *ack filled (upto -1 if
 * there was no acknowledgement), 0 if the frame is not for m or does not
 * open.
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
/* Frames for m until an acknowledgement, a WELCOME or a REHELLO arrives: 1 with *ack, 0, -1. */
int sim_wait_ack(struct simmeter *m, int fd, struct sim_rx *rx, int timeout_ms,
		 struct sim_ack *ack);
/* HELLO on fd, then its WELCOME: 1 with *ack (upto: what the town holds), 0, -1. */
int sim_handshake(struct simmeter *m, int fd, struct sim_rx *rx, int timeout_ms,
		  struct sim_ack *ack);

#endif
