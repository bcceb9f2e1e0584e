// SPDX-License-Identifier: GPL-2.0
/* townd's storage of what goes to the main server (townd_updb.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "townd_updb.h"

/* ---- small helpers ------------------------------------------------------------------ */

static sqlite3_stmt *q(struct townd_db *d, const char *sql, int n, const int64_t *v)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(st, i + 1, v[i]);
	return st;
}

static int run(struct townd_db *d, const char *sql, int n, const int64_t *v)
{
	sqlite3_stmt *st = q(d, sql, n, v);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* First column of the first row; dflt for no row or NULL. */
static int one(struct townd_db *d, const char *sql, int n, const int64_t *v, int64_t dflt,
	       int64_t *out)
{
	sqlite3_stmt *st = q(d, sql, n, v);
	int rc;

	*out = dflt;
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

#define V(...) (sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)), (int64_t[]){ __VA_ARGS__ }

static int begin(struct townd_db *d)
{
	if (d->in_tx)
		return -1;	/* never inside the ingest transaction */
	return sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int commit(struct townd_db *d)
{
	if (sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int rollback(struct townd_db *d)
{
	sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int tup_meta_get(struct townd_db *d, const char *name, int64_t dflt, int64_t *v)
{
	sqlite3_stmt *st;
	int rc;

	*v = dflt;
	if (sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE name = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int set_kv(struct townd_db *d, const char *table, const char *name, int64_t v)
{
	char sql[160];
	sqlite3_stmt *st;
	int rc;

	snprintf(sql, sizeof(sql), "INSERT INTO %s (name, value) VALUES (?, ?) ON CONFLICT "
		 "(name) DO UPDATE SET value = excluded.value", table);
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, v);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int tup_meta_set(struct townd_db *d, const char *name, int64_t v)
{
	return set_kv(d, "meta", name, v);
}

int tup_stat_set(struct townd_db *d, const char *name, int64_t v)
{
	return set_kv(d, "stats", name, v);
}

int64_t tup_month_start(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm))
		return 0;
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return (int64_t)timegm(&tm);
}

int64_t tup_month_next(int64_t month_start)
{
	return tup_month_start(month_start + 32 * 86400);
}

/* ---- supply ------------------------------------------------------------------------- */

int tup_supply_get(struct townd_db *d, int64_t *watts, int64_t *at)
{
	int64_t w, t;

	if (tup_meta_get(d, "supply_w", -1, &w) || tup_meta_get(d, "supply_at", 0, &t))
		return -1;
	if (w < 0)
		return 0;
	*watts = w;
	if (at)
		*at = t;
	return 1;
}

int tup_supply_set(struct townd_db *d, int64_t watts, int64_t tseq, int64_t now)
{
	bool own = !d->in_tx;
	char what[160];

	if (own && begin(d))
		return -1;
	snprintf(what, sizeof(what), "supply: the main server set the grid capacity to %lld W "
		 "(command %lld)", (long long)watts, (long long)tseq);
	if (tup_meta_set(d, "supply_w", watts) || tup_meta_set(d, "supply_at", now) ||
	    tdb_journal(d, 0, now, what))
		return own ? rollback(d) : -1;
	return own ? commit(d) : 0;
}

/* ---- tariffs --------------------------------------------------------------------------- */

int tup_tariffs(struct townd_db *d, unsigned int meter, struct th_tariff *out, size_t max,
		size_t *n)
{
	/* applied, duplicate, pending, storage (resent), superseded (a copy exists), v1 */
	sqlite3_stmt *st = q(d, "SELECT body FROM outgoing WHERE meter = ?1 AND type = 18 AND "
			     "(status IS NULL OR status IN (0, 1, 5, 100, 101)) ORDER BY tseq",
			     V(meter));
	int rc;

	*n = 0;
	if (!st)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *hex = (const char *)sqlite3_column_text(st, 0);
		uint8_t body[GMP_PLAIN_MAX];
		size_t len = hex ? strlen(hex) / 2 : 0, off = 0;
		struct gmp_msg m;

		if (!hex || len > sizeof(body) || gmp_hex_decode(hex, body, len) ||
		    gmp_decode_next(body, len, &off, &m) != 1 ||
		    th_tariff_from_msg(&out[*n], &m))
			continue;
		if (*n + 1 < max)
			(*n)++;
		else	/* keep the newest max */
			memmove(out, out + 1, (max - 1) * sizeof(*out));
	}
	sqlite3_finalize(st);
	th_tariffs_sort(out, *n);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- building hours ------------------------------------------------------------------- */

#define TARIFFS_MAX	64

struct tcache {
	unsigned int meter;	/* 0: empty */
	size_t n;
	struct th_tariff t[TARIFFS_MAX];
};

static int get_row(struct townd_db *d, int64_t meter, int64_t hour, int64_t period,
		   struct th_row *r, bool *found)
{
	sqlite3_stmt *st = q(d, "SELECT import_mwh, export_mwh, renew_mwh, readings, flags, "
			     "covered, rev, sent_rev FROM hours WHERE meter = ?1 AND hour = ?2 "
			     "AND period = ?3", V(meter, hour, period));
	int rc;

	th_row_init(r);
	*found = false;
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r->import_mwh = sqlite3_column_int64(st, 0);
		r->export_mwh = sqlite3_column_int64(st, 1);
		r->renew_mwh = sqlite3_column_int64(st, 2);
		r->readings = sqlite3_column_int64(st, 3);
		r->flags = sqlite3_column_int64(st, 4);
		r->covered = sqlite3_column_int64(st, 5);
		r->rev = sqlite3_column_int64(st, 6);
		r->sent_rev = sqlite3_column_int64(st, 7);
		*found = true;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int put_row(struct townd_db *d, int64_t meter, int64_t hour, int64_t period,
		   const struct th_row *r)
{
	return run(d, "INSERT INTO hours (meter, hour, period, import_mwh, export_mwh, renew_mwh, "
		   "readings, flags, covered, rev, sent_rev) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
		   "?8, ?9, ?10, ?11) ON CONFLICT (meter, hour, period) DO UPDATE SET "
		   "import_mwh = ?4, export_mwh = ?5, renew_mwh = ?6, readings = ?7, flags = ?8, "
		   "covered = ?9, rev = ?10, sent_rev = ?11",
		   V(meter, hour, period, r->import_mwh, r->export_mwh, r->renew_mwh, r->readings,
		     r->flags, r->covered, r->rev, r->sent_rev));
}

int tup_build(struct townd_db *d, th_offset_fn off, void *off_ctx, size_t max, size_t *built)
{
	struct tcache *tc = NULL;
	sqlite3_stmt *st = NULL;
	int64_t mark = 0, last;
	int rc = -1, s;

	*built = 0;
	if (tup_meta_get(d, "hours_rowid", 0, &mark))
		return -1;
	last = mark;
	tc = calloc(1, sizeof(*tc));
	if (!tc || begin(d)) {
		free(tc);
		return -1;
	}
	st = q(d, "SELECT rowid, meter, start, interval_s, import_mwh, export_mwh, renew_mwh, "
	       "flags, booked FROM readings WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
	       V(mark, (int64_t)max));
	if (!st)
		goto out;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		unsigned int meter = (unsigned int)sqlite3_column_int(st, 1);
		int64_t booked = sqlite3_column_int64(st, 8), hour = th_hour_of(booked);
		struct gmp_msg m = { .type = GMP_READING };
		struct th_row r;
		bool found;
		int period;

		last = sqlite3_column_int64(st, 0);
		m.reading.start = sqlite3_column_int64(st, 2);
		m.reading.interval_s = sqlite3_column_int64(st, 3);
		m.reading.import_mwh = sqlite3_column_int64(st, 4);
		m.reading.export_mwh = sqlite3_column_int64(st, 5);
		m.reading.renew_mwh = sqlite3_column_int64(st, 6);
		m.reading.flags = sqlite3_column_int64(st, 7);
		if (tc->meter != meter) {
			tc->meter = meter;
			if (tup_tariffs(d, meter, tc->t, TARIFFS_MAX, &tc->n))
				goto out;
		}
		period = th_period(tc->t, tc->n, booked, off, off_ctx);
		if (get_row(d, meter, hour, period, &r, &found))
			goto out;
		th_row_add(&r, &m, hour);
		/* a reading of a sent meter-hour: every row of it gets a new revision */
		if (put_row(d, meter, hour, period, &r) ||
		    run(d, "UPDATE hours SET rev = sent_rev + 1 WHERE meter = ?1 AND hour = ?2 AND "
			"sent_rev >= rev", V(meter, hour)))
			goto out;
		(*built)++;
	}
	if (s != SQLITE_DONE)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	if (last != mark && tup_meta_set(d, "hours_rowid", last))
		goto out;
	rc = commit(d);
	free(tc);
	return rc;
out:
	sqlite3_finalize(st);
	free(tc);
	return rollback(d);
}

/* ---- sending -------------------------------------------------------------------------- */

/* The town's totals of an hour, from its rows. */
static int town_of(struct townd_db *d, int64_t hour, bool admin, struct th_town *t)
{
	sqlite3_stmt *st = q(d, "SELECT COUNT(DISTINCT meter), COALESCE(SUM(import_mwh), 0), "
			     "COALESCE(SUM(export_mwh), 0), COALESCE(SUM(renew_mwh), 0) FROM hours "
			     "WHERE hour = ?1", V(hour));
	int64_t short_meters = 0;
	int rc;

	memset(t, 0, sizeof(*t));
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		t->meters = sqlite3_column_int64(st, 0);
		t->import_mwh = sqlite3_column_int64(st, 1);
		t->export_mwh = sqlite3_column_int64(st, 2);
		t->renew_mwh = sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return -1;
	if (one(d, "SELECT COUNT(*) FROM (SELECT meter FROM hours WHERE hour = ?1 GROUP BY meter "
		"HAVING SUM(covered) < 3600) AS s", V(hour), 0, &short_meters))
		return -1;
	t->flags = (short_meters ? GMP_HF_INCOMPLETE : 0) | (admin ? GMP_HF_ADMIN : 0);
	return 0;
}

/*
 * Town hour of hour H: new (rev 0) or changed since its last send (rev +
 * 1), made pending; a pending one takes the current totals. The message
 * if pending (1), 0 if nothing to send.
 */
static int town_hour(struct townd_db *d, int64_t hour, bool admin, int64_t seq,
		     struct gmp_msg *out)
{
	sqlite3_stmt *st;
	struct th_town t;
	int64_t rev = 0, sent_rev = -1;
	bool found = false, same = false;
	int rc;

	if (town_of(d, hour, admin, &t))
		return -1;
	st = q(d, "SELECT meters, import_mwh, export_mwh, renew_mwh, flags, rev, sent_rev FROM "
	       "town_hours WHERE hour = ?1", V(hour));
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		found = true;
		same = sqlite3_column_int64(st, 0) == t.meters &&
		       sqlite3_column_int64(st, 1) == t.import_mwh &&
		       sqlite3_column_int64(st, 2) == t.export_mwh &&
		       sqlite3_column_int64(st, 3) == t.renew_mwh &&
		       (sqlite3_column_int64(st, 4) & GMP_HF_INCOMPLETE) ==
		       (t.flags & GMP_HF_INCOMPLETE);
		rev = sqlite3_column_int64(st, 5);
		sent_rev = sqlite3_column_int64(st, 6);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	if (found && sent_rev >= rev) {
		if (same)
			return 0;
		rev = sent_rev + 1;
	}
	if (run(d, "INSERT INTO town_hours (hour, meters, import_mwh, export_mwh, renew_mwh, flags, "
		"rev, sent_rev, out_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8) ON CONFLICT "
		"(hour) DO UPDATE SET meters = ?2, import_mwh = ?3, export_mwh = ?4, "
		"renew_mwh = ?5, flags = ?6, rev = ?7, sent_rev = ?7, out_seq = ?8",
		V(hour, t.meters, t.import_mwh, t.export_mwh, t.renew_mwh, t.flags, rev, seq)))
		return -1;
	memset(out, 0, sizeof(*out));
	out->type = GMP_TOWN_HOUR;
	out->town_hour.seq = seq;
	out->town_hour.hour = hour;
	out->town_hour.meters = t.meters;
	out->town_hour.import_mwh = t.import_mwh;
	out->town_hour.export_mwh = t.export_mwh;
	out->town_hour.renew_mwh = t.renew_mwh;
	out->town_hour.flags = t.flags;
	out->town_hour.rev = rev;
	return 1;
}

int tup_next_batch(struct townd_db *d, int64_t now, uint32_t grace_s, bool admin,
		   int64_t next_seq, struct gmp_msg *out, size_t max)
{
	int64_t limit = now - TH_HOUR - (int64_t)grace_s, hour = -1, town = -1, left = 0;
	sqlite3_stmt *st = NULL;
	size_t n = 0;
	int s;

	if (max < 2 || begin(d))
		return -1;
	if (one(d, "SELECT MIN(hour) FROM hours WHERE sent_rev < rev AND hour <= ?1", V(limit),
		-1, &hour) ||
	    one(d, "SELECT MIN(hour) FROM town_hours WHERE sent_rev < rev", 0, NULL, -1, &town))
		goto fail;
	if (hour < 0 && town < 0) {
		rollback(d);
		return 0;
	}
	if (hour >= 0 && (town < 0 || hour <= town)) {
		st = q(d, "SELECT meter, period, import_mwh, export_mwh, renew_mwh, readings, flags, "
		       "rev, (SELECT SUM(covered) FROM hours c WHERE c.meter = h.meter AND "
		       "c.hour = h.hour) FROM hours h WHERE hour = ?1 AND sent_rev < rev "
		       "ORDER BY meter, period LIMIT ?2", V(hour, (int64_t)max - 1));
		if (!st)
			goto fail;
		while ((s = sqlite3_step(st)) == SQLITE_ROW) {
			struct gmp_msg *m = &out[n];

			memset(m, 0, sizeof(*m));
			m->type = GMP_HOUR;
			m->hour.seq = next_seq + (int64_t)n;
			m->hour.meter = sqlite3_column_int64(st, 0);
			m->hour.hour = hour;
			m->hour.period = sqlite3_column_int64(st, 1);
			m->hour.import_mwh = sqlite3_column_int64(st, 2);
			m->hour.export_mwh = sqlite3_column_int64(st, 3);
			m->hour.renew_mwh = sqlite3_column_int64(st, 4);
			m->hour.readings = sqlite3_column_int64(st, 5);
			m->hour.flags = th_hour_flags(sqlite3_column_int64(st, 6),
						      sqlite3_column_int64(st, 8), admin);
			m->hour.rev = sqlite3_column_int64(st, 7);
			n++;
		}
		sqlite3_finalize(st);
		if (s != SQLITE_DONE)
			goto fail;
		for (size_t i = 0; i < n; i++)
			if (run(d, "UPDATE hours SET sent_rev = rev, out_seq = ?4 WHERE meter = ?1 AND "
				"hour = ?2 AND period = ?3", V(out[i].hour.meter, hour,
							       out[i].hour.period, out[i].hour.seq)))
				goto fail;
		if (one(d, "SELECT COUNT(*) FROM hours WHERE hour = ?1 AND sent_rev < rev", V(hour),
			0, &left))
			goto fail;
		town = left ? -1 : hour;
	}
	if (town >= 0) {
		int r = town_hour(d, town, admin, next_seq + (int64_t)n, &out[n]);

		if (r < 0)
			goto fail;
		n += (size_t)r;
	}
	if (commit(d))
		return -1;
	return (int)n;
fail:
	return rollback(d);
}

int tup_pending_closed(struct townd_db *d, int64_t now, uint32_t grace_s, int64_t *n)
{
	int64_t a = 0, b = 0;

	if (one(d, "SELECT COUNT(*) FROM hours WHERE sent_rev < rev AND hour <= ?1",
		V(now - TH_HOUR - (int64_t)grace_s), 0, &a) ||
	    one(d, "SELECT COUNT(*) FROM town_hours WHERE sent_rev < rev", 0, NULL, 0, &b))
		return -1;
	*n = a + b;
	return 0;
}

int tup_unsend_from(struct townd_db *d, int64_t seq)
{
	if (begin(d))
		return -1;
	if (run(d, "UPDATE hours SET sent_rev = rev - 1 WHERE out_seq >= ?1 AND sent_rev = rev",
		V(seq)) ||
	    run(d, "UPDATE town_hours SET sent_rev = rev - 1 WHERE out_seq >= ?1 AND "
		"sent_rev = rev", V(seq)))
		return rollback(d);
	return commit(d);
}

int tup_rebase(struct townd_db *d, int64_t from, int64_t delta)
{
	if (begin(d))
		return -1;
	if (run(d, "UPDATE hours SET out_seq = out_seq + ?2 WHERE out_seq >= ?1", V(from, delta)) ||
	    run(d, "UPDATE town_hours SET out_seq = out_seq + ?2 WHERE out_seq >= ?1",
		V(from, delta)))
		return rollback(d);
	return commit(d);
}

/* ---- status ---------------------------------------------------------------------------- */

static int64_t min_valid(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

int tup_oldest_unacked(struct townd_db *d, int64_t acked, int64_t *hour)
{
	int64_t a, b, c, e;

	if (one(d, "SELECT MIN(hour) FROM hours WHERE sent_rev < rev", 0, NULL, -1, &a) ||
	    one(d, "SELECT MIN(hour) FROM hours WHERE out_seq > ?1", V(acked), -1, &b) ||
	    one(d, "SELECT MIN(hour) FROM town_hours WHERE sent_rev < rev OR out_seq > ?1",
		V(acked), -1, &c) ||
	    one(d, "SELECT MIN(booked) FROM readings WHERE rowid > (SELECT COALESCE((SELECT value "
		"FROM meta WHERE name = 'hours_rowid'), 0))", 0, NULL, -1, &e))
		return -1;
	*hour = min_valid(min_valid(a, b), min_valid(c, e >= 0 ? th_hour_of(e) : -1));
	return 0;
}

static int64_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) ? 0 : (int64_t)sb.st_size;
}

int tup_status(struct townd_db *d, const char *db_path, struct tup_status *st)
{
	int64_t pages = 0, psize = 0, freel = 0;
	char wal[300];

	memset(st, 0, sizeof(*st));
	if (tup_meta_get(d, "admin_since", 0, &st->admin_since) ||
	    tup_meta_get(d, "up_backlog", 0, &st->backlog) ||
	    tup_meta_get(d, "up_acked", 0, &st->acked) ||
	    tup_meta_get(d, "kept_from", 0, &st->kept_from) ||
	    one(d, "SELECT COUNT(*) FROM hours WHERE sent_rev < rev", 0, NULL, 0,
		&st->pending_rows) ||
	    tup_oldest_unacked(d, st->acked, &st->oldest_hour) ||
	    one(d, "PRAGMA page_count", 0, NULL, 0, &pages) ||
	    one(d, "PRAGMA page_size", 0, NULL, 0, &psize) ||
	    one(d, "PRAGMA freelist_count", 0, NULL, 0, &freel))
		return -1;
	st->supply_w = -1;
	st->supply_at = 0;
	if (tup_supply_get(d, &st->supply_w, &st->supply_at) < 0)
		return -1;
	st->db_bytes = pages * psize;
	st->free_bytes = freel * psize;
	snprintf(wal, sizeof(wal), "%s-wal", db_path);
	st->wal_bytes = file_size(wal);
	return 0;
}

/* ---- retention ------------------------------------------------------------------------ */

/*
 * Deletion stages of the months before kept_from, each in chunks: readings
 * and events by rowid windows (a cursor in ret_cursor; the tables have no
 * index on time), then month_totals, hours and town_hours by their keys.
 */
enum { RET_IDLE, RET_READINGS, RET_EVENTS, RET_TOTALS, RET_HOURS, RET_TOWN, RET_DONE };

/* The oldest month that may go: past, closed, built and acknowledged. 0 none. */
static int deletable(struct townd_db *d, int64_t now, uint32_t grace_s, int64_t acked,
		     int64_t *month)
{
	int64_t oldest = -1, unacked, m0, m1;

	*month = 0;
	if (one(d, "SELECT MIN(hour) FROM hours", 0, NULL, -1, &oldest) || oldest < 0)
		return oldest < 0 ? 0 : -1;
	m0 = tup_month_start(oldest);
	m1 = tup_month_next(m0);
	if (m1 > tup_month_start(now) || now < m1 + TH_HOUR + (int64_t)grace_s)
		return 0;
	if (tup_oldest_unacked(d, acked, &unacked))
		return -1;
	if (unacked >= 0 && unacked < m1)
		return 0;
	*month = m0;
	return 0;
}

static int chunk_rowid(struct townd_db *d, const char *table, const char *cond, int64_t kept,
		       int64_t cursor, uint32_t chunk, int64_t *next, int64_t *deleted)
{
	char sql[400];

	snprintf(sql, sizeof(sql), "SELECT MAX(rowid) FROM (SELECT rowid FROM %s WHERE rowid > ?1 "
		 "ORDER BY rowid LIMIT ?2) AS w", table);
	if (one(d, sql, V(cursor, (int64_t)chunk), -1, next))
		return -1;
	if (*next < 0)
		return 0;
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE rowid > ?1 AND rowid <= ?2 AND %s < ?3",
		 table, cond);
	if (run(d, sql, V(cursor, *next, kept)))
		return -1;
	*deleted += sqlite3_changes(d->db);
	return 1;
}

static int chunk_key(struct townd_db *d, const char *table, const char *cond, int64_t kept,
		     uint32_t chunk, int64_t *deleted)
{
	char sql[300];
	int n;

	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE rowid IN (SELECT rowid FROM %s WHERE "
		 "%s < ?1 LIMIT ?2)", table, table, cond);
	if (run(d, sql, V(kept, (int64_t)chunk)))
		return -1;
	n = sqlite3_changes(d->db);
	*deleted += n;
	return n > 0;
}

int tup_retention_step(struct townd_db *d, int64_t now, uint32_t grace_s, int64_t acked,
		       uint32_t chunk, int64_t *deleted, int64_t *month_done)
{
	int64_t stage, cursor, kept, month, next = -1, maxrow, mark;
	char month_s[8], what[200];
	int r = 0;

	*deleted = 0;
	*month_done = 0;
	if (begin(d))
		return -1;
	if (tup_meta_get(d, "ret_stage", RET_IDLE, &stage) ||
	    tup_meta_get(d, "ret_cursor", 0, &cursor) ||
	    tup_meta_get(d, "kept_from", 0, &kept))
		goto fail;
	if (stage == RET_IDLE) {
		if (deletable(d, now, grace_s, acked, &month))
			goto fail;
		if (!month) {
			rollback(d);
			return 0;
		}
		/* from now on readings of that month are booked at their arrival */
		kept = tup_month_next(month);
		tdb_month(month, month_s);
		snprintf(what, sizeof(what), "retention: month %s is acknowledged by the main "
			 "server: deleting it", month_s);
		if (tup_meta_set(d, "kept_from", kept) || tup_meta_set(d, "ret_stage", RET_READINGS) ||
		    tup_meta_set(d, "ret_cursor", 0) || tdb_journal(d, 0, now, what))
			goto fail;
		if (commit(d))
			return -1;
		d->kept_from = kept;
		return 1;
	}
	switch (stage) {
	case RET_READINGS:
		r = chunk_rowid(d, "readings", "booked", kept, cursor, chunk, &next, deleted);
		break;
	case RET_EVENTS:
		r = chunk_rowid(d, "events", "received", kept, cursor, chunk, &next, deleted);
		break;
	case RET_TOTALS:
		tdb_month(kept, month_s);
		{
			sqlite3_stmt *st;

			if (sqlite3_prepare_v2(d->db, "DELETE FROM month_totals WHERE rowid IN "
					       "(SELECT rowid FROM month_totals WHERE month < ?1 "
					       "LIMIT ?2)", -1, &st, NULL) != SQLITE_OK)
				goto fail;
			sqlite3_bind_text(st, 1, month_s, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, chunk);
			r = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
			sqlite3_finalize(st);
			if (r < 0)
				goto fail;
			*deleted += sqlite3_changes(d->db);
			r = sqlite3_changes(d->db) > 0;
		}
		break;
	case RET_HOURS:
		r = chunk_key(d, "hours", "hour", kept, chunk, deleted);
		break;
	case RET_TOWN:
		r = chunk_key(d, "town_hours", "hour", kept, chunk, deleted);
		break;
	default:
		r = 0;
		break;
	}
	if (r < 0)
		goto fail;
	if (r > 0 && (stage == RET_READINGS || stage == RET_EVENTS)) {
		if (tup_meta_set(d, "ret_cursor", next))
			goto fail;
	} else if (r == 0) {
		stage++;
		if (tup_meta_set(d, "ret_cursor", 0))
			goto fail;
		if (stage == RET_DONE) {
			stage = RET_IDLE;
			/* deleted rowids may come again: the build mark must not be above them */
			if (one(d, "SELECT MAX(rowid) FROM readings", 0, NULL, 0, &maxrow) ||
			    tup_meta_get(d, "hours_rowid", 0, &mark) ||
			    (maxrow < mark && tup_meta_set(d, "hours_rowid", maxrow)))
				goto fail;
			tdb_month(kept, month_s);
			snprintf(what, sizeof(what), "retention: deleted; the oldest month kept is %s",
				 month_s);
			if (tdb_journal(d, 0, now, what))
				goto fail;
			*month_done = tup_month_start(kept - 1);
		}
		if (tup_meta_set(d, "ret_stage", stage))
			goto fail;
	}
	if (commit(d))
		return -1;
	return 1;
fail:
	return rollback(d);
}

/* ---- prices ------------------------------------------------------------------------------ */

int tup_price(struct townd_db *d, unsigned int meter, int64_t from, int64_t to,
	      int64_t *milli, int64_t *import_mwh, int64_t *rows)
{
	struct th_tariff *t = calloc(TARIFFS_MAX, sizeof(*t));
	int64_t nano = 0;
	sqlite3_stmt *st;
	size_t n = 0;
	int s;

	*milli = *import_mwh = *rows = 0;
	if (!t || tup_tariffs(d, meter, t, TARIFFS_MAX, &n)) {
		free(t);
		return -1;
	}
	st = q(d, "SELECT hour, period, import_mwh, export_mwh FROM hours WHERE meter = ?1 AND "
	       "hour >= ?2 AND hour < ?3", V(meter, from, to));
	if (!st) {
		free(t);
		return -1;
	}
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t hour = sqlite3_column_int64(st, 0);
		const struct th_tariff *in_force = th_tariff_at(t, n, hour);

		if (!in_force)
			in_force = th_tariff_at(t, n, hour + TH_HOUR - 1);
		nano += th_price_nano(in_force, sqlite3_column_int(st, 1),
				      sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3));
		*import_mwh += sqlite3_column_int64(st, 2);
		(*rows)++;
	}
	sqlite3_finalize(st);
	free(t);
	*milli = th_round_milli(nano);
	return s == SQLITE_DONE ? 0 : -1;
}
