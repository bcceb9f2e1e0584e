// SPDX-License-Identifier: GPL-2.0
/* A throwaway PostgreSQL 15 for the main server's tests (pg_scratch.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "maind_pg.h"
#include "pg_scratch.h"

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

int64_t real_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int sh(const char *fmt, const char *a, char *out, size_t outlen)
{
	char cmd[768];
	FILE *f;
	size_t n = 0;
	int len;

	len = snprintf(cmd, sizeof(cmd), fmt, a);
	if (len < 0 || (size_t)len >= sizeof(cmd)) {
		fprintf(stderr, "# command too long: %s\n", fmt);
		return -1;
	}
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (out) {
		n = fread(out, 1, outlen - 1, f);
		out[n] = '\0';
		while (n && out[n - 1] == '\n')
			out[--n] = '\0';
	} else {
		char buf[256];

		while (fgets(buf, sizeof(buf), f))
			fputs(buf, stderr);
	}
	return pclose(f) == 0 ? 0 : -1;
}

bool pg_available(void)
{
	return access(PG_BIN "/initdb", X_OK) == 0;
}

int scratch_dir(char *dir, size_t len, const char *name)
{
	if (snprintf(dir, len, "/tmp/%s-XXXXXX", name) >= (int)len || !mkdtemp(dir))
		return -1;
	return chmod(dir, 0755);
}

void scratch_shm(char *dir, size_t len, const char *name, const char *fallback)
{
	if (snprintf(dir, len, "/dev/shm/%s-XXXXXX", name) >= (int)len || !mkdtemp(dir))
		snprintf(dir, len, "%s", fallback);
}

void scratch_remove(const char *dir)
{
	sh("rm -rf '%s'", dir, NULL, 0);
}

int pg_cluster_start(const char *dir, char *pgdir, size_t pglen, char *conninfo, size_t len)
{
	if (snprintf(pgdir, pglen, "%s/pg", dir) >= (int)pglen)
		return -1;
	return sh("scripts/pg-cluster.sh start %s", pgdir, conninfo, len);
}

int pg_cluster_standby(const char *pgdir, char *conninfo, size_t len)
{
	return sh("scripts/pg-cluster.sh standby %s", pgdir, conninfo, len);
}

void pg_cluster_stop(const char *pgdir)
{
	sh("scripts/pg-cluster.sh stop %s", pgdir, NULL, 0);
}

int pg_schema(const char *conninfo, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(conninfo);
	int rc = mpg_schema(c, err, errlen);

	PQfinish(c);
	return rc;
}

int64_t pg1(const char *conninfo, const char *sql)
{
	PGconn *c = PQconnectdb(conninfo);
	int64_t v = -1;
	PGresult *r;

	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return -2;
	}
	r = PQexec(c, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fprintf(stderr, "# %s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	return v;
}

int pgx(const char *conninfo, const char *sql)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r = PQexec(c, sql);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK ?
		 0 : -1;

	if (rc)
		fprintf(stderr, "# %s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return rc;
}

int pgs(const char *conninfo, const char *sql, char *out, size_t outlen)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r = PQexec(c, sql);
	int rc = -1;

	out[0] = '\0';
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) && !PQgetisnull(r, 0, 0)) {
		snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
		rc = 0;
	} else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "# %s: %s", sql, PQerrorMessage(c));
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}
