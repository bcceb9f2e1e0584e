// SPDX-License-Identifier: GPL-2.0
/* maind billing: rows for COPY (billing.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing/billing.h"

static int grow(struct mb_copy *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 1 << 16;
	char *n;

	while (cap < b->len + need + 1)
		cap *= 2;
	if (cap == b->cap)
		return 0;
	n = realloc(b->p, cap);
	if (!n)
		return -1;
	b->p = n;
	b->cap = cap;
	return 0;
}

int mb_printf(struct mb_copy *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || grow(b, (size_t)n))
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	if (n && b->p[b->len - 1] == '\n')
		b->rows++;
	return 0;
}

int mb_text(struct mb_copy *b, const char *s)
{
	if (grow(b, 2 * strlen(s)))
		return -1;
	for (; *s; s++) {
		char c = *s;

		if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
			b->p[b->len++] = '\\';
			c = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
		}
		b->p[b->len++] = c;
	}
	b->p[b->len] = '\0';
	return 0;
}

int mb_exec(struct maind_pg *p, const char *sql)
{
	return mpg_exec(p, sql, 0, NULL);
}

int mb_flush(struct maind_pg *p, const char *table_cols, struct mb_copy *b)
{
	char sql[512];
	PGresult *r;
	int rc = 0;

	if (!b->rows)
		return 0;
	snprintf(sql, sizeof(sql), "COPY %s FROM STDIN", table_cols);
	r = PQexec(p->c, sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		snprintf(p->err, sizeof(p->err), "%.200s: %.300s", sql, PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	PQclear(r);
	for (size_t off = 0; off < b->len && !rc;) {
		size_t n = b->len - off > (1 << 20) ? 1 << 20 : b->len - off;

		if (PQputCopyData(p->c, b->p + off, (int)n) != 1)
			rc = -1;
		off += n;
	}
	if (PQputCopyEnd(p->c, rc ? "failed" : NULL) != 1)
		rc = -1;
	if (rc)
		snprintf(p->err, sizeof(p->err), "%.200s: %.300s", sql, PQerrorMessage(p->c));
	while ((r = PQgetResult(p->c))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK && !rc) {
			snprintf(p->err, sizeof(p->err), "%.200s: %.300s", sql, PQresultErrorMessage(r));
			rc = -1;
		}
		PQclear(r);
	}
	b->len = 0;
	b->rows = 0;
	return rc;
}

void mb_free(struct mb_copy *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}
