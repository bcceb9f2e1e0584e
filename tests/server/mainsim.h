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
 * hellos; reps (seq, type, time, a, b, c, d, e): the town's reports
 * (GMP_CMD_REPORT cmd_id, meter, state, status; GMP_METER_ALARM meter,
 * code, active, value; GMP_SECURITY interval_s, meter, addr, kind, count);
 * outq (tseq, type, body): commands a test queued (mainsim_queue_*), sent
 * in tseq order until the town's result settles them.
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
/*
 * Queue a GMP_SIGNED with these bytes (unchanged) / a GMP_TOWN_SUMMARY
 * (tseq filled in: after the GMP_SUPPLY's and every one queued). Works
 * while the child runs: it sends what is queued within 200 ms once a
 * session is up. The tseq, or -1.
 */
int64_t mainsim_queue_signed(struct mainsim *m, const uint8_t *blob, size_t len);
int64_t mainsim_queue_summary(struct mainsim *m, const struct gmp_msg *summary);
/* The first column of the first row of sql on the state file, -1 if none. */
int64_t mainsim_q1(struct mainsim *m, const char *sql);

#endif
