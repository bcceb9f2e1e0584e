/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal main server for townd's host tests: the server end of a tier
 * link built from gmproto's primitives (handshake, sessions, acks,
 * commands), in a child process on a listener the test made. It stores
 * every record it receives exactly once by its seq (the client's order),
 * as maind does, in its own SQLite file (a restart keeps what it had), and
 * sends one GMP_SUPPLY command to every town it hears from.
 *
 * Tables of the file: recs (seq, type, meter, hour, period, import_mwh,
 * export_mwh, renew_mwh, readings, flags, rev), cmds (tseq, status),
 * counters (name, value): bytes_in, bytes_out, frames_in, dup_records,
 * hellos.
 */
#ifndef MAINSIM_H
#define MAINSIM_H

#include <stdint.h>
#include <sys/types.h>

#include "gmproto.h"

struct mainsim {
	int lfd;
	uint16_t port;
	struct gmp_keypair kp;			/* the main server's key pair */
	uint8_t town_pk[GMP_KEY_LEN];
	uint16_t town_id;
	int64_t supply_w;			/* sent as GMP_SUPPLY tseq 1 (< 0: none) */
	char db[160];
	pid_t pid;
};

/* A listener on 127.0.0.1 and the state file in dir. 0 or -1. */
int mainsim_setup(struct mainsim *m, const char *dir, const uint8_t town_pk[GMP_KEY_LEN],
		  uint16_t town_id, int64_t supply_w);
/* Serve in a child process. */
void mainsim_start(struct mainsim *m);
/* Signal the child and reap it. */
void mainsim_stop(struct mainsim *m, int sig);
void mainsim_teardown(struct mainsim *m);
/* The first column of the first row of sql on the state file, -1 if none. */
int64_t mainsim_q1(struct mainsim *m, const char *sql);

#endif
