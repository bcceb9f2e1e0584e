// SPDX-License-Identifier: GPL-2.0
/*
 * townd's storage of its loans between towns (townd_loans_db.h).
 */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gmproto.h"
#include "townd_loans_db.h"

int tln_schema(struct townd_db *d)
{
	static const char sql[] =
		"CREATE TABLE IF NOT EXISTS loans_state ("
		" id INTEGER PRIMARY KEY CHECK (id = 1),"
		" state BLOB NOT NULL,"		/* townd_loans_save() */
		" saved_at INTEGER NOT NULL);"
		"CREATE TABLE IF NOT EXISTS loans ("
		" lender INTEGER NOT NULL,"	/* town that lends: the loan is (lender, loan_id) */
		" loan_id INTEGER NOT NULL,"
		" origin INTEGER NOT NULL,"	/* town the power is for */
		" req_id INTEGER NOT NULL,"
		" up INTEGER NOT NULL,"		/* neighbour we lend to, 0: we borrow */
		" down INTEGER NOT NULL,"	/* neighbour we borrow from, 0: we lend */
		" role TEXT NOT NULL,"		/* lender | relay | borrower */
		" phase TEXT NOT NULL,"		/* offered | accepted | open | ended */
		" end_state INTEGER,"		/* enum gmp_loan_state once ended */
		" power_w INTEGER NOT NULL,"
		" until INTEGER NOT NULL,"
		" asked_at INTEGER NOT NULL,"
		" opened_at INTEGER,"
		" ended_at INTEGER,"
		" PRIMARY KEY (lender, loan_id));";

	return sqlite3_exec(d->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int rows(struct townd_db *d, const struct townd_loans *l)
{
	sqlite3_stmt *st = NULL;
	size_t n;
	int rc = -1;

	if (sqlite3_exec(d->db, "DELETE FROM loans", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(d->db, "INSERT INTO loans VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1,
			       &st, NULL) != SQLITE_OK)
		goto out;
	n = townd_loans_list(l, NULL, 0);
	for (size_t i = 0, k = 0; i < TOWND_LOANS_MAX && k < n; i++) {
		const struct townd_loans_seg *s = &l->seg[i];
		int c = 1;

		if (!s->used)
			continue;
		k++;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, c++, s->lender);
		sqlite3_bind_int64(st, c++, s->loan_id);
		sqlite3_bind_int64(st, c++, s->origin);
		sqlite3_bind_int64(st, c++, s->req_id);
		sqlite3_bind_int64(st, c++, s->up);
		sqlite3_bind_int64(st, c++, s->down);
		sqlite3_bind_text(st, c++, townd_loan_role_name(s->role), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, c++, townd_loan_phase_name(s->phase), -1, SQLITE_STATIC);
		if (s->phase == TOWND_LOAN_ENDED)
			sqlite3_bind_int64(st, c++, s->end);
		else
			sqlite3_bind_null(st, c++);
		sqlite3_bind_int64(st, c++, s->power_w);
		sqlite3_bind_int64(st, c++, s->until);
		sqlite3_bind_int64(st, c++, s->asked_at);
		if (s->opened_at)
			sqlite3_bind_int64(st, c++, s->opened_at);
		else
			sqlite3_bind_null(st, c++);
		if (s->phase == TOWND_LOAN_ENDED)
			sqlite3_bind_int64(st, c++, s->ended_at);
		else
			sqlite3_bind_null(st, c++);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int tln_save(struct townd_db *d, const struct townd_loans *l, int64_t now)
{
	static const char sql[] = "INSERT OR REPLACE INTO loans_state VALUES (1, ?, ?)";
	uint8_t buf[TOWND_LOANS_SAVE_MAX];
	sqlite3_stmt *st = NULL;
	bool own = !d->in_tx;
	int len = townd_loans_save(l, buf, sizeof(buf)), rc = -1;

	if (len < 0 || tln_schema(d) || (own && tdb_begin(d)))
		return -1;
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_blob(st, 1, buf, len, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, now);
	if (sqlite3_step(st) != SQLITE_DONE || rows(d, l))
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	if (own) {
		if (rc)
			tdb_rollback(d);
		else
			rc = tdb_commit(d);
	}
	return rc;
}

int tln_load(struct townd_db *d, struct townd_loans *l, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	if (tln_schema(d) ||
	    sqlite3_prepare_v2(d->db, "SELECT state FROM loans_state WHERE id = 1", -1, &st,
			       NULL) != SQLITE_OK) {
		snprintf(err, errlen, "loans: %s", sqlite3_errmsg(d->db));
		goto out;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		rc = 0;
	} else if (step != SQLITE_ROW) {
		snprintf(err, errlen, "loans: %s", sqlite3_errmsg(d->db));
	} else if (townd_loans_restore(l, sqlite3_column_blob(st, 0),
				       (size_t)sqlite3_column_bytes(st, 0))) {
		snprintf(err, errlen, "loans: the saved state (%d bytes) is not a state of town %u",
			 sqlite3_column_bytes(st, 0), l->cfg.self);
	} else {
		rc = 1;
	}
out:
	sqlite3_finalize(st);
	return rc;
}

static const char *end_name(int state)
{
	switch (state) {
	case GMP_LOAN_RETURNED: return "returned";
	case GMP_LOAN_EXPIRED: return "expired";
	case GMP_LOAN_CANCELLED: return "cancelled";
	default: return "open";
	}
}

int tln_print(struct townd_db *d, FILE *out)
{
	static const char sql[] =
		"SELECT lender, loan_id, origin, role, phase, end_state, up, down, power_w, until,"
		" asked_at, opened_at, ended_at FROM loans"
		" ORDER BY phase = 'ended', asked_at DESC, lender, loan_id";
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	if (tln_schema(d) || sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	fprintf(out, "%-12s %-6s %-8s %-9s %-9s %5s %5s %10s %10s %10s %10s\n", "loan", "for",
		"role", "phase", "end", "to", "from", "power_w", "asked", "opened", "until");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		char key[24];
		bool ended = !strcmp((const char *)sqlite3_column_text(st, 4), "ended");

		snprintf(key, sizeof(key), "%lld/%lld", sqlite3_column_int64(st, 0),
			 sqlite3_column_int64(st, 1));
		fprintf(out, "%-12s %-6lld %-8s %-9s %-9s %5lld %5lld %10lld %10lld %10lld %10lld\n",
			key, sqlite3_column_int64(st, 2), sqlite3_column_text(st, 3),
			sqlite3_column_text(st, 4),
			ended ? end_name(sqlite3_column_int(st, 5)) : "-",
			sqlite3_column_int64(st, 6), sqlite3_column_int64(st, 7),
			sqlite3_column_int64(st, 8), sqlite3_column_int64(st, 10),
			sqlite3_column_int64(st, 11), sqlite3_column_int64(st, 9));
	}
	rc = step == SQLITE_DONE ? 0 : -1;
out:
	sqlite3_finalize(st);
	return rc;
}
