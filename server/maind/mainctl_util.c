// SPDX-License-Identifier: GPL-2.0
/* mainctl: what every part's commands share (mainctl_parts.h). */
#include <stdio.h>
#include <string.h>

#include "mainctl_parts.h"

PGconn *mctl_open(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "mainctl: PostgreSQL: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

PGresult *mctl_q(PGconn *c, const char *sql, int n, const char *const *v)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		fprintf(stderr, "mainctl: %s", PQresultErrorMessage(r));
		PQclear(r);
		return NULL;
	}
	return r;
}

void mctl_table(const PGresult *r)
{
	enum { COLS = 32 };
	int nf = PQnfields(r), nt = PQntuples(r), w[COLS] = { 0 };

	if (nf > COLS)
		nf = COLS;
	for (int f = 0; f < nf; f++) {
		w[f] = (int)strlen(PQfname(r, f));
		for (int t = 0; t < nt; t++)
			if ((int)strlen(PQgetvalue(r, t, f)) > w[f])
				w[f] = (int)strlen(PQgetvalue(r, t, f));
	}
	for (int f = 0; f < nf; f++)
		printf("%-*s%s", f + 1 < nf ? w[f] : 0, PQfname(r, f), f + 1 < nf ? "  " : "\n");
	for (int t = 0; t < nt; t++)
		for (int f = 0; f < nf; f++)
			printf("%-*s%s", f + 1 < nf ? w[f] : 0,
			       PQgetisnull(r, t, f) ? "-" : PQgetvalue(r, t, f),
			       f + 1 < nf ? "  " : "\n");
}
