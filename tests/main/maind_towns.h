/* SPDX-License-Identifier: GPL-2.0 */
/*
 * maind end to end over TCP (tests/main/maind_towns.c): maind (maind_run)
 * in a child process on a loopback listener, and towns as real gmpc
 * clients (outboxes on disk) that connect to it, with the short timers
 * these tests use. The tests' own town state goes in a struct that begins
 * with a struct tcp_town.
 */
#ifndef GM_TEST_MAIND_TOWNS_H
#define GM_TEST_MAIND_TOWNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gm_frame.h"
#include "gmp_client.h"
#include "maind_config.h"
#include "outbox.h"

#define TCP_TOWNS_MAX	16

struct tcp_town {
	uint16_t id;
	struct gmp_keypair kp;
	struct outbox ob;
	struct gmpc c;
	int fd;				/* -1: not connected */
	struct gm_rx rx;
	uint16_t fseq;			/* the next link frame's sequence */
};

/* A listening TCP socket on 127.0.0.1, an ephemeral port (into *port). 0 or -1. */
int loopback_listen(int *fd, uint16_t *port);

/* maind_run(cfg) on the listener lfd in a child process (its error on stderr); the pid. */
pid_t maind_child(const struct maind_config *cfg, int *lfd);
/* The child sent sig and reaped; *pid then 0. Nothing when *pid is 0. */
void maind_child_kill(pid_t *pid, int sig);

/*
 * The town's gmpc hook "send" (ctx: the struct tcp_town, or the test's
 * struct that begins with one): payload as one link frame on its
 * connection; -EAGAIN while it has none. A connection that fails is
 * closed (the frame is lost: the ack timeout resends).
 */
int tcp_town_send(void *ctx, unsigned int flags, const uint8_t *payload, size_t len);
/*
 * gmpc_config defaults for town t (its id and key) under maind's public
 * key main_pk, with these tests' short timers (ack 1.5 s, hellos 0.2 s to
 * 1 s, rehello 0.2 s).
 */
void tcp_town_config(struct gmpc_config *cfg, const struct tcp_town *t, const uint8_t *main_pk);
/* The town's connection closed, its gmpc freed, its outbox closed. */
void tcp_town_close(struct tcp_town *t);
/* One pass over n towns (at most TCP_TOWNS_MAX): (re)connect to port, tick, pump, poll
 * 20 ms, read what came. */
void tcp_towns_step(struct tcp_town *const *t, int n, uint16_t port);

#endif
