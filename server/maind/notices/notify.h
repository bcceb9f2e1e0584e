/* SPDX-License-Identifier: GPL-2.0 */
/*
 * maind-notify's engine (Documentation/notices.md "Delivery"): claims the
 * oldest due notice in PostgreSQL (FOR NO KEY UPDATE SKIP LOCKED, the lock
 * held in an open transaction while it is delivered), records the attempt
 * on a second connection before anything is handed to a server or modem,
 * delivers it through the medium, and commits the outcome: delivered, or
 * queued again with backoff, or failed after max_attempts and reported
 * (an alert and a notice to every operator). A notice is never deleted.
 */
#ifndef NOTIFY_H
#define NOTIFY_H

#include <stdint.h>

#include <libpq-fe.h>

#include "notify_config.h"

struct notify {
	const struct notify_config *cfg;
	PGconn *c;		/* claims and outcomes */
	PGconn *log;		/* attempt records, committed at once */
	char err[512];
	uint64_t delivered, retried, failed;
};

/* Connect twice, create or check the schema, LISTEN gm_notices. 0 or -1 with err. */
int notify_open(struct notify *n, const struct notify_config *cfg, char *err, size_t errlen);
void notify_close(struct notify *n);
/* The oldest due notice, delivered or not: 1 one handled, 0 none due, -1 (n->err). */
int notify_one(struct notify *n);
/* Seconds until the next queued notice is due (0 if one is due), at most cap; -1 on error. */
int notify_due_in(struct notify *n, int cap);
/*
 * maind-notify: deliver until stop_fd is readable (e.g. a signalfd), waking
 * on NOTIFY gm_notices, on the next due time and every poll seconds;
 * reconnects when the database goes away. once: until nothing is due.
 * 0, or -1 with err when it could never start.
 */
int notify_run(const struct notify_config *cfg, int stop_fd, int once, char *err,
	       size_t errlen);

#endif
