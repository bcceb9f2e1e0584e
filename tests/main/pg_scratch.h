/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The main server's tests against a throwaway PostgreSQL 15
 * (tests/main/pg_scratch.c): a scratch directory, a cluster in it made and
 * stopped by scripts/pg-cluster.sh (owned by "nobody" when the test runs
 * as root), maind's schema, one-shot queries by conninfo, a shell
 * command's output, millisecond clocks. The test programs run from the
 * top of the tree (scripts/pg-cluster.sh is a relative path).
 */
#ifndef GM_TEST_PG_SCRATCH_H
#define GM_TEST_PG_SCRATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PG_BIN		"/usr/lib/postgresql/15/bin"
/* What a test says when it skips for want of PostgreSQL. */
#define PG_SKIP_WHY	"PostgreSQL 15 not installed (" PG_BIN "/initdb): scripts/deps.sh"

/* Milliseconds on CLOCK_MONOTONIC and on CLOCK_REALTIME. */
int64_t mono_ms(void);
int64_t real_ms(void);

/*
 * Run fmt with %s replaced by a (snprintf: one %s at most) through
 * popen(). With out, its stdout (at most outlen - 1 bytes, trailing
 * newlines cut) goes there; without, it is copied to stderr. 0 when the
 * command exited 0, else -1 (also when the command line did not fit).
 */
int sh(const char *fmt, const char *a, char *out, size_t outlen);

/* PostgreSQL 15's initdb installed? Without it the tests skip (PG_SKIP_WHY). */
bool pg_available(void);

/*
 * A scratch directory /tmp/NAME-XXXXXX (mkdtemp) opened to others (0755):
 * the cluster runs as nobody below it when the test is root. 0 or -1.
 */
int scratch_dir(char *dir, size_t len, const char *name);
/* A scratch directory /dev/shm/NAME-XXXXXX (files in memory), else a copy of fallback. */
void scratch_shm(char *dir, size_t len, const char *name, const char *fallback);
/* rm -rf dir (what is left of it stays in /tmp when that fails). */
void scratch_remove(const char *dir);

/*
 * A cluster in DIR/pg (its path into pgdir), its primary started; the
 * superuser's conninfo (dbname=postgres) into conninfo. 0 or -1 (the
 * script's messages on stderr).
 */
int pg_cluster_start(const char *dir, char *pgdir, size_t pglen, char *conninfo, size_t len);
/* A streaming hot standby of the cluster in pgdir, started; its conninfo. 0 or -1. */
int pg_cluster_standby(const char *pgdir, char *conninfo, size_t len);
/* Primary and standby stopped (fast shutdown); nothing when none runs. */
void pg_cluster_stop(const char *pgdir);

/* maind's schema (mpg_schema) on the database of conninfo. 0 or -1 (err). */
int pg_schema(const char *conninfo, char *err, size_t errlen);

/*
 * One-shot statements, each on a connection of its own (so that a server
 * killed or restarted between them leaves nothing stale). Errors are
 * printed on stderr as "# SQL: message".
 */
/* The first column of the first row as a number; -1 when no row, NULL or an error,
 * -2 when there is no connection. */
int64_t pg1(const char *conninfo, const char *sql);
/* A statement (or several, ';'-separated: the last one's status); 0 or -1. */
int pgx(const char *conninfo, const char *sql);
/* The first column of the first row as text into out; 0, or -1 (out "") when none. */
int pgs(const char *conninfo, const char *sql, char *out, size_t outlen);

#endif
