// SPDX-License-Identifier: GPL-2.0
/* The detection tests' world (detect_world.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "detect_world.h"
#include "pg_scratch.h"

/*
 * One cluster per test program, started by its first test (each test runs
 * in a child of the harness: the cluster is named after that parent) and
 * stopped by the parent at its exit; each test has a database of its own.
 */
static void cluster_dir(pid_t parent, char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/detect-test-%ld", (long)parent);
}

__attribute__((destructor)) static void cluster_stop(void)
{
	char dir[64], pgdir[128];
	struct stat sb;

	cluster_dir(getpid(), dir, sizeof(dir));
	if (stat(dir, &sb))
		return;
	snprintf(pgdir, sizeof(pgdir), "%s/pg", dir);
	pg_cluster_stop(pgdir);
	scratch_remove(dir);
}

int dw_start(struct dworld *w, char *err, size_t len)
{
	char admin[256], sql[96];
	PGconn *c;
	PGresult *r;
	int ok;

	memset(w, 0, sizeof(*w));
	cluster_dir(getppid(), w->dir, sizeof(w->dir));
	mkdir(w->dir, 0755);
	chmod(w->dir, 0755);	/* the cluster runs as nobody below it */
	if (pg_cluster_start(w->dir, w->pgdir, sizeof(w->pgdir), admin, sizeof(admin))) {
		snprintf(err, len, "pg-cluster.sh start failed");
		return -1;
	}
	c = PQconnectdb(admin);
	snprintf(sql, sizeof(sql), "CREATE DATABASE t%ld", (long)getpid());
	r = PQexec(c, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		snprintf(err, len, "%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	if (!ok)
		return -1;
	/* the admin conninfo ends with dbname=postgres */
	snprintf(w->conninfo, sizeof(w->conninfo), "%.*s dbname=t%ld",
		 (int)(strstr(admin, " dbname=") ? strstr(admin, " dbname=") - admin :
		       (long)strlen(admin)), admin, (long)getpid());
	if (mpg_open(&w->p, w->conninfo, err, len))
		return -1;
	mpg_hooks(&w->p, &w->h);
	return dw_x(w, "INSERT INTO operators (name, pk, email, revoked) VALUES "
		    "('alice', decode(repeat('a1', 32), 'hex'), 'alice@utility.example', false), "
		    "('bob', decode(repeat('b2', 32), 'hex'), 'bob@utility.example', false), "
		    "('carol', decode(repeat('c3', 32), 'hex'), 'carol@utility.example', true)");
}

void dw_stop(struct dworld *w)
{
	if (w->p.c)
		mpg_close(&w->p);
	/* the database stays until the cluster goes (the parent, at its exit) */
}

int dw_town(struct dworld *w, uint16_t town)
{
	for (int i = 0; i < DW_TOWNS; i++)
		if (!w->town[i]) {
			w->town[i] = town;
			w->seq[i] = 0;
			return dw_x(w, "INSERT INTO towns (id, name, pk) VALUES (%u, 'town%u', "
				    "decode(lpad(to_hex(%u), 64, '0'), 'hex'))", town, town, town);
		}
	return -1;
}

int dw_send(struct dworld *w, uint16_t town, struct gmp_msg *m, size_t n)
{
	int t = -1;

	for (int i = 0; i < DW_TOWNS; i++)
		if (w->town[i] == town)
			t = i;
	if (t < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		gmp_msg_set_seq(&m[i], ++w->seq[t]);
	if (w->h.begin(w->h.ctx))
		return -1;
	if (w->h.records(w->h.ctx, town, m, n, (int64_t)time(NULL))) {
		w->h.rollback(w->h.ctx);
		return -1;
	}
	return w->h.commit(w->h.ctx);
}

struct gmp_msg dw_hour(int64_t meter, int64_t hour, int64_t period, int64_t import_mwh,
		       int64_t export_mwh)
{
	struct gmp_msg g = { .type = GMP_HOUR };

	g.hour.meter = meter;
	g.hour.hour = hour;
	g.hour.period = period;
	g.hour.import_mwh = import_mwh;
	g.hour.export_mwh = export_mwh;
	g.hour.readings = 360;
	return g;
}

static PGresult *vq(struct dworld *w, const char *fmt, va_list ap)
{
	char sql[4096];

	vsnprintf(sql, sizeof(sql), fmt, ap);
	return PQexec(w->p.c, sql);
}

int dw_x(struct dworld *w, const char *fmt, ...)
{
	va_list ap;
	PGresult *r;
	int rc;

	va_start(ap, fmt);
	r = vq(w, fmt, ap);
	va_end(ap);
	rc = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
	if (rc)
		fprintf(stderr, "# %s", PQresultErrorMessage(r));
	PQclear(r);
	return rc;
}

int64_t dw_1(struct dworld *w, const char *fmt, ...)
{
	va_list ap;
	PGresult *r;
	int64_t v = -1;

	va_start(ap, fmt);
	r = vq(w, fmt, ap);
	va_end(ap);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "# %s", PQresultErrorMessage(r));
		v = -2;
	} else if (PQntuples(r) && !PQgetisnull(r, 0, 0)) {
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	}
	PQclear(r);
	return v;
}

int dw_s(struct dworld *w, char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	PGresult *r;
	int rc = 0;

	va_start(ap, fmt);
	r = vq(w, fmt, ap);
	va_end(ap);
	out[0] = '\0';
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "# %s", PQresultErrorMessage(r));
		rc = -1;
	} else if (PQntuples(r) && !PQgetisnull(r, 0, 0)) {
		snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	return rc;
}
