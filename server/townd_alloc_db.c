// SPDX-License-Identifier: GPL-2.0
/* The allocation's tables (townd_alloc_db.h). */
#include "townd_alloc_db.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char townd_alloc_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS alloc_requests (  -- the allocator's state per meter\n"
	"  meter BIGINT PRIMARY KEY,\n"
	"  req_id BIGINT NOT NULL,\n"
	"  rank BIGINT NOT NULL,          -- 0 deferrable, 1 normal, 2 essential, 3 critical\n"
	"  want_w BIGINT NOT NULL,        -- beyond base: > 0 asked, < 0 offered\n"
	"  since BIGINT NOT NULL,\n"
	"  expires BIGINT NOT NULL,\n"
	"  grant_w BIGINT NOT NULL,       -- beyond base, as sent\n"
	"  grant_until BIGINT NOT NULL,\n"
	"  taken BIGINT NOT NULL          -- an offer in the pool\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS alloc_decisions (\n"
	"  time BIGINT NOT NULL,\n"
	"  meter BIGINT NOT NULL,         -- 0: the pool changed\n"
	"  req_id BIGINT,\n"
	"  want_w BIGINT,\n"
	"  old_w BIGINT,\n"
	"  new_w BIGINT,\n"
	"  granted_w BIGINT,              -- absolute, in the grant command\n"
	"  until_t BIGINT,\n"
	"  tseq BIGINT,                   -- the grant command, NULL if none sent\n"
	"  reason TEXT NOT NULL,\n"
	"  detail TEXT NOT NULL\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS alloc_decisions_time ON alloc_decisions (time);\n"
	"CREATE TABLE IF NOT EXISTS alloc_pool (\n"
	"  name TEXT PRIMARY KEY,\n"
	"  value BIGINT NOT NULL\n"
	");\n";

int tdb_alloc_schema(struct townd_db *d, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(d->db, townd_alloc_schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "allocation tables: %s", msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int tdb_alloc_figure(struct townd_db *d, const char *name, int64_t *v)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(d->db, "SELECT value FROM alloc_pool WHERE name = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : -1;
}

static int put_figure(struct townd_db *d, const char *name, int64_t v)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(d->db, "INSERT INTO alloc_pool (name, value) VALUES (?, ?) "
			       "ON CONFLICT (name) DO UPDATE SET value = excluded.value", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, v);
	return step_done(st);
}

int tdb_alloc_load(struct townd_db *d, struct townd_alloc *a)
{
	sqlite3_stmt *st;
	int64_t cap;
	int rc;

	rc = tdb_alloc_figure(d, "supply_capacity_w", &cap);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		townd_alloc_set_capacity(a, cap);
		a->supply_note[0] = '\0';	/* not a change: what it was */
	}
	if (sqlite3_prepare_v2(d->db, "SELECT meter, req_id, rank, want_w, since, expires, grant_w, "
			       "grant_until, taken FROM alloc_requests", -1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ta_entry e = {
			.meter = (uint16_t)sqlite3_column_int(st, 0),
			.req_id = sqlite3_column_int64(st, 1),
			.rank = (uint8_t)sqlite3_column_int(st, 2),
			.want_w = sqlite3_column_int64(st, 3),
			.since = sqlite3_column_int64(st, 4),
			.expires = sqlite3_column_int64(st, 5),
			.grant_w = sqlite3_column_int64(st, 6),
			.grant_until = sqlite3_column_int64(st, 7),
			.taken = sqlite3_column_int(st, 8) != 0,
		};

		if (townd_alloc_restore(a, &e) == -ENOMEM) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int save_entry(struct townd_db *d, const struct townd_alloc *a, uint16_t meter)
{
	const struct ta_entry *e = townd_alloc_find(a, meter);
	sqlite3_stmt *st;

	if (!e) {
		if (sqlite3_prepare_v2(d->db, "DELETE FROM alloc_requests WHERE meter = ?", -1, &st,
				       NULL) != SQLITE_OK)
			return -1;
		sqlite3_bind_int(st, 1, meter);
		return step_done(st);
	}
	if (sqlite3_prepare_v2(d->db, "INSERT INTO alloc_requests (meter, req_id, rank, want_w, "
			       "since, expires, grant_w, grant_until, taken) VALUES "
			       "(?,?,?,?,?,?,?,?,?) ON CONFLICT (meter) DO UPDATE SET "
			       "req_id = excluded.req_id, rank = excluded.rank, "
			       "want_w = excluded.want_w, since = excluded.since, "
			       "expires = excluded.expires, grant_w = excluded.grant_w, "
			       "grant_until = excluded.grant_until, taken = excluded.taken",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, e->meter);
	sqlite3_bind_int64(st, 2, e->req_id);
	sqlite3_bind_int(st, 3, e->rank);
	sqlite3_bind_int64(st, 4, e->want_w);
	sqlite3_bind_int64(st, 5, e->since);
	sqlite3_bind_int64(st, 6, e->expires);
	sqlite3_bind_int64(st, 7, e->grant_w);
	sqlite3_bind_int64(st, 8, e->grant_until);
	sqlite3_bind_int(st, 9, e->taken);
	return step_done(st);
}

static int log_decision(struct townd_db *d, const struct townd_alloc *a,
			const struct ta_decision *x, int64_t tseq, int64_t now)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(d->db, "INSERT INTO alloc_decisions (time, meter, req_id, want_w, "
			       "old_w, new_w, granted_w, until_t, tseq, reason, detail) VALUES "
			       "(?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int(st, 2, x->meter);
	if (x->meter) {
		sqlite3_bind_int64(st, 3, x->req_id);
		sqlite3_bind_int64(st, 4, x->want_w);
		sqlite3_bind_int64(st, 5, x->old_w);
		sqlite3_bind_int64(st, 6, x->new_w);
		if (x->send)
			sqlite3_bind_int64(st, 7, townd_alloc_absolute(a, x->new_w));
		if (x->until)
			sqlite3_bind_int64(st, 8, x->until);
		if (tseq)
			sqlite3_bind_int64(st, 9, tseq);
	}
	sqlite3_bind_text(st, 10, townd_alloc_reason_name(x->reason), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, x->text, -1, SQLITE_STATIC);
	return step_done(st);
}

int tdb_alloc_save(struct townd_db *d, const struct townd_alloc *a, int64_t now)
{
	const struct ta_figures *f = &a->fig;
	const struct { const char *name; int64_t v; } figs[] = {
		{ "capacity_w", f->capacity_w }, { "borrowed_w", f->borrowed_w },
		{ "lent_w", f->lent_w }, { "asked_w", f->asked_w }, { "offered_w", f->offered_w },
		{ "taken_w", f->taken_w }, { "pool_w", f->pool_w }, { "granted_w", f->granted_w },
		{ "shortfall_w", f->shortfall_w }, { "surplus_w", f->surplus_w },
		{ "base_w", a->cfg.base_w }, { "hysteresis_w", a->cfg.hysteresis_w },
		{ "decided_at", now },
	};

	for (size_t i = 0; i < a->ndec; i++) {
		const struct ta_decision *x = &a->dec[i];
		int64_t tseq = 0;

		if (x->send) {
			struct gmp_msg m;
			int rc;

			memset(&m, 0, sizeof(m));
			m.type = GMP_GRANT;
			m.grant.tseq = 1;	/* assigned by tdb_queue_in_tx */
			m.grant.req_id = x->req_id;
			m.grant.granted_w = townd_alloc_absolute(a, x->new_w);
			m.grant.until = x->until;
			rc = tdb_queue_in_tx(d, x->meter, &m, now, &tseq);
			if (rc == -1)
				return -1;
			if (rc == -2)
				tseq = 0;	/* removed meanwhile: logged without a command */
		}
		if (log_decision(d, a, x, tseq, now) || (x->meter && save_entry(d, a, x->meter)))
			return -1;
	}
	for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]); i++)
		if (put_figure(d, figs[i].name, figs[i].v))
			return -1;
	return 0;
}

int tdb_alloc_set_supply(struct townd_db *d, int64_t capacity_w, int64_t now)
{
	(void)now;
	return put_figure(d, "supply_capacity_w", capacity_w);
}

int tdb_alloc_prune(struct townd_db *d, int64_t before)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(d->db, "DELETE FROM alloc_decisions WHERE rowid IN (SELECT rowid "
			       "FROM alloc_decisions WHERE time < ? LIMIT ?)", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, before);
	sqlite3_bind_int(st, 2, TDB_ALLOC_PRUNE_ROWS);
	if (step_done(st))
		return -1;
	return sqlite3_changes(d->db);
}

int tdb_alloc_print(struct townd_db *d, FILE *out, int recent)
{
	static const char *const names[] = { "capacity_w", "borrowed_w", "lent_w", "taken_w",
					     "pool_w", "asked_w", "offered_w", "granted_w",
					     "shortfall_w", "surplus_w", "base_w", "decided_at" };
	int64_t v[sizeof(names) / sizeof(names[0])] = { 0 };
	sqlite3_stmt *st;
	int rc;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (tdb_alloc_figure(d, names[i], &v[i]) < 0)
			return -1;
	if (!v[11]) {
		fprintf(out, "no allocation decided yet\n");
	} else {
		fprintf(out, "pool %lld W = capacity %lld + borrowed %lld - lent %lld + offers taken "
			"%lld (decided at %lld)\n", (long long)v[4], (long long)v[0],
			(long long)v[1], (long long)v[2], (long long)v[3], (long long)v[11]);
		fprintf(out, "asked %lld W, offered %lld W, granted %lld W, shortfall %lld W, "
			"surplus %lld W; a meter's own allocation %lld W\n", (long long)v[5],
			(long long)v[6], (long long)v[7], (long long)v[8], (long long)v[9],
			(long long)v[10]);
	}
	if (sqlite3_prepare_v2(d->db, "SELECT meter, req_id, rank, want_w, grant_w, grant_until, "
			       "expires, taken FROM alloc_requests ORDER BY meter", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	fprintf(out, "%-6s %-8s %-10s %8s %9s %9s %9s %11s %11s\n", "meter", "kind", "priority",
		"request", "want W", "grant W", "meter W", "grant until", "ends");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t want = sqlite3_column_int64(st, 3), g = sqlite3_column_int64(st, 4);

		fprintf(out, "%-6d %-8s %-10s %8lld %9lld %9lld %9lld %11lld %11lld\n",
			sqlite3_column_int(st, 0),
			want > 0 ? "request" : want < 0 ? (sqlite3_column_int(st, 7) ? "offer*" :
							   "offer") : "held",
			townd_alloc_rank_name((unsigned int)sqlite3_column_int(st, 2)),
			(long long)sqlite3_column_int64(st, 1), (long long)want, (long long)g,
			(long long)(v[10] + g), (long long)sqlite3_column_int64(st, 5),
			(long long)sqlite3_column_int64(st, 6));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	fprintf(out, "(offer*: taken into the pool; meter W: the allocation the grant sets)\n"
		"recent decisions, newest first:\n");
	if (sqlite3_prepare_v2(d->db, "SELECT time, meter, reason, old_w, new_w, granted_w, tseq, "
			       "detail FROM alloc_decisions ORDER BY rowid DESC LIMIT ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, recent);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char sent[48] = "-";

		if (sqlite3_column_type(st, 6) != SQLITE_NULL)
			snprintf(sent, sizeof(sent), "%lld W (tseq %lld)",
				 (long long)sqlite3_column_int64(st, 5),
				 (long long)sqlite3_column_int64(st, 6));
		if (sqlite3_column_int(st, 1))
			fprintf(out, "%lld meter %d %s: %lld -> %lld, sent %s: %s\n",
				(long long)sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1),
				(const char *)sqlite3_column_text(st, 2),
				(long long)sqlite3_column_int64(st, 3),
				(long long)sqlite3_column_int64(st, 4), sent,
				(const char *)sqlite3_column_text(st, 7));
		else
			fprintf(out, "%lld %s: %s\n", (long long)sqlite3_column_int64(st, 0),
				(const char *)sqlite3_column_text(st, 2),
				(const char *)sqlite3_column_text(st, 7));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}
