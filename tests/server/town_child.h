/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A town server for host tests: a fresh directory with key, database and
 * townd.conf, and the real loop (townd_run) in a child process listening
 * on 127.0.0.1, with the descriptors systemd would give it and its
 * journal (stderr) in a file. Used by townd_test_e2e and
 * townd_test_hostile.
 */
#ifndef TOWN_CHILD_H
#define TOWN_CHILD_H

#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "gmproto.h"
#include "simmeter.h"
#include "townd_config.h"

struct town {
	char dir[64], db[128], key[128], conf[128], log[128];
	struct gmp_keypair kp;		/* the town's key pair */
	struct townd_config cfg;	/* as townd read it from conf */
	int lfd;			/* the listening socket, 127.0.0.1:port */
	uint16_t port;
	pid_t pid;			/* townd, 0 when not running */
};

/*
 * Directory, key, database (schema made), and townd.conf with database,
 * key_file and the [server] lines in conf ("" for the defaults), read
 * with townd_config_load as townd reads it. 0 or -1.
 */
int town_setup(struct town *t, const char *conf);
/* townd in a child: stdin, stdout, stderr (t->log) and the listening socket as 3. */
void town_start(struct town *t);
/* The same with RLIMIT_NOFILE set first. */
void town_start_limited(struct town *t, const struct rlimit *nofile);
/* townd's exit status (128 + signal if killed), -1 if not gone within timeout_ms. */
int town_wait(struct town *t, int timeout_ms);
/* Send sig and wait (20 s at most). */
int town_stop(struct town *t, int sig);
/* Kill townd if it runs, remove the directory. */
void town_teardown(struct town *t);
/* Meter id with a fresh key pair in the database, and its simulated side. */
int town_provision(struct town *t, uint16_t id, struct simmeter *m);
/* The first column of the first row of sql (one optional ? = arg); -1 none, -2 no database. */
int64_t town_q1(struct town *t, const char *sql, int64_t arg);
/* A counter of the stats table (0 if never written). */
int64_t town_stat(struct town *t, const char *name);
/* Readings [from, to] of m (sim_reading) on fd, k per frame, each asking for an ack. */
int town_send_readings(struct simmeter *m, int fd, int64_t from, int64_t to, int k);
/* townd's journal on stderr as "# townd: ..." lines (for a failed test). */
void town_journal_dump(const struct town *t);

#endif
