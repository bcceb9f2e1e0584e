/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A town server for townd's host tests and benchmarks: a scratch
 * directory with the key and the database, a listening socket on
 * 127.0.0.1, and the real server loop (townd_run) in a child process.
 */
#ifndef SIMTOWN_H
#define SIMTOWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "gmproto.h"
#include "townd_config.h"

struct sim_town {
	char dir[64];
	struct gmp_keypair kp;		/* the town's key pair */
	struct townd_config cfg;	/* database and key_file in dir */
	int lfd;
	uint16_t port;
	pid_t pid;			/* 0: not running */
};

/* /tmp/NAME-XXXXXX with townd.key and town.db; a listener on 127.0.0.1. 0 or -1. */
int sim_town_setup(struct sim_town *t, const char *name);
/* townd_run in a child process on the listener. */
void sim_town_start(struct sim_town *t);
/* Signal the child and reap it: its exit status, 128 + signal, or -1 if none ran. */
int sim_town_stop(struct sim_town *t, int sig);
/* Stop (SIGKILL) what runs, close, remove the directory unless keep. */
void sim_town_teardown(struct sim_town *t, bool keep);
/* Provision a meter with the given public key. 0 or -1. */
int sim_town_add(struct sim_town *t, uint16_t id, const uint8_t pk[GMP_KEY_LEN]);
/* The first column of the first row of sql (one optional ? = arg): -1 no row, -2 no database. */
int64_t sim_town_q1(struct sim_town *t, const char *sql, int64_t arg);
/* A counter of the stats table (0 if never written). */
int64_t sim_town_stat(struct sim_town *t, const char *name);

#endif
