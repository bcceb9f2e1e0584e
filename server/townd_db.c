// SPDX-License-Identifier: GPL-2.0
/* townd storage on SQLite. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "townd_db.h"

/*
 * Portable subset: BIGINT/INTEGER/TEXT, composite primary keys, no
 * AUTOINCREMENT, upserts with ON CONFLICT ... DO UPDATE (SQLite >= 3.24,
 * PostgreSQL >= 9.5). Times are UTC seconds, energy in mWh.
 */
const char townd_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meters (\n"
	"  id         INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 65534),\n"
	"  pk         TEXT NOT NULL,              -- X25519 public key, hex\n"
	"  name       TEXT,\n"
	"  provisioned BIGINT NOT NULL,\n"
	"  rx_ctr     BIGINT NOT NULL DEFAULT 0,  -- last accepted counter\n"
	"  tx_ctr     BIGINT NOT NULL DEFAULT 0,  -- reserved send counters\n"
	"  acked_upto BIGINT NOT NULL DEFAULT 0,  -- all records <= stored\n"
	"  last_seen  BIGINT,\n"
	"  rejected   BIGINT NOT NULL DEFAULT 0\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS readings (\n"
	"  meter      INTEGER NOT NULL REFERENCES meters(id),\n"
	"  seq        BIGINT NOT NULL,\n"
	"  start      BIGINT NOT NULL,\n"
	"  interval_s INTEGER NOT NULL,\n"
	"  import_mwh BIGINT NOT NULL,\n"
	"  export_mwh BIGINT NOT NULL,\n"
	"  renew_mwh  BIGINT NOT NULL,\n"
	"  flags      INTEGER NOT NULL,\n"
	"  received   BIGINT NOT NULL,\n"
	"  PRIMARY KEY (meter, seq)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS events (\n"
	"  meter      INTEGER NOT NULL REFERENCES meters(id),\n"
	"  seq        BIGINT NOT NULL,\n"
	"  type       INTEGER NOT NULL,           -- gmproto message type\n"
	"  time       BIGINT NOT NULL,\n"
	"  a          BIGINT, b BIGINT, c BIGINT, -- per type, protocol.md\n"
	"  received   BIGINT NOT NULL,\n"
	"  PRIMARY KEY (meter, seq)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS month_totals (\n"
	"  meter      INTEGER NOT NULL REFERENCES meters(id),\n"
	"  month      TEXT NOT NULL,              -- YYYY-MM, UTC\n"
	"  import_mwh BIGINT NOT NULL,\n"
	"  export_mwh BIGINT NOT NULL,\n"
	"  renew_mwh  BIGINT NOT NULL,\n"
	"  readings   BIGINT NOT NULL,\n"
	"  PRIMARY KEY (meter, month)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS outgoing (     -- commands to meters\n"
	"  meter      INTEGER NOT NULL REFERENCES meters(id),\n"
	"  tseq       BIGINT NOT NULL,            -- per meter, from 1\n"
	"  body       TEXT NOT NULL,              -- the CBOR message, hex\n"
	"  created    BIGINT NOT NULL,\n"
	"  acked      BIGINT,                     -- meter-ack received\n"
	"  PRIMARY KEY (meter, tseq)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS stats (\n"
	"  name       TEXT PRIMARY KEY,\n"
	"  value      BIGINT NOT NULL\n"
	");\n";

static int prep(struct townd_db *d, const char *sql, sqlite3_stmt **st)
{
	return sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

void tdb_close(struct townd_db *d)
{
	sqlite3_stmt *all[] = { d->ins_reading, d->ins_event, d->month, d->upd_meter,
				d->stat, d->get_meter, d->pending, d->mack };

	if (!d->db)
		return;
	if (d->in_tx)
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		sqlite3_finalize(all[i]);
	sqlite3_close(d->db);
	memset(d, 0, sizeof(*d));
}

int tdb_open(struct townd_db *d, const char *path, int sync_full, char *err, size_t errlen)
{
	char *msg = NULL;
	int rc;

	memset(d, 0, sizeof(*d));
	rc = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, d->db ? sqlite3_errmsg(d->db) :
			 sqlite3_errstr(rc));
		tdb_close(d);
		return -1;
	}
	sqlite3_busy_timeout(d->db, 5000);
	rc = sqlite3_exec(d->db, sync_full ?
			  "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;" :
			  "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(d->db, townd_schema_sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		tdb_close(d);
		return -1;
	}
	if (prep(d, "INSERT INTO readings (meter, seq, start, interval_s, import_mwh, "
		 "export_mwh, renew_mwh, flags, received) VALUES (?,?,?,?,?,?,?,?,?) "
		 "ON CONFLICT (meter, seq) DO NOTHING", &d->ins_reading) ||
	    prep(d, "INSERT INTO events (meter, seq, type, time, a, b, c, received) "
		 "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (meter, seq) DO NOTHING", &d->ins_event) ||
	    prep(d, "INSERT INTO month_totals (meter, month, import_mwh, export_mwh, renew_mwh, "
		 "readings) VALUES (?,?,?,?,?,1) ON CONFLICT (meter, month) DO UPDATE SET "
		 "import_mwh = month_totals.import_mwh + excluded.import_mwh, "
		 "export_mwh = month_totals.export_mwh + excluded.export_mwh, "
		 "renew_mwh = month_totals.renew_mwh + excluded.renew_mwh, "
		 "readings = month_totals.readings + 1", &d->month) ||
	    prep(d, "UPDATE meters SET rx_ctr = ?, tx_ctr = ?, acked_upto = ?, "
		 "last_seen = ?, rejected = rejected + ? WHERE id = ?", &d->upd_meter) ||
	    prep(d, "INSERT INTO stats (name, value) VALUES (?, ?) ON CONFLICT (name) "
		 "DO UPDATE SET value = stats.value + excluded.value", &d->stat) ||
	    prep(d, "SELECT pk, rx_ctr, tx_ctr, acked_upto FROM meters WHERE id = ?",
		 &d->get_meter) ||
	    prep(d, "SELECT tseq, body FROM outgoing WHERE meter = ? AND acked IS NULL "
		 "ORDER BY tseq LIMIT 8", &d->pending) ||
	    prep(d, "UPDATE outgoing SET acked = ? WHERE meter = ? AND tseq <= ? "
		 "AND acked IS NULL", &d->mack)) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(d->db));
		tdb_close(d);
		return -1;
	}
	return 0;
}

int tdb_begin(struct townd_db *d)
{
	if (d->in_tx)
		return 0;
	if (sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	d->in_tx = 1;
	return 0;
}

void tdb_rollback(struct townd_db *d)
{
	if (d->in_tx)
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	d->in_tx = 0;
}

int tdb_commit(struct townd_db *d)
{
	if (!d->in_tx)
		return 0;
	d->in_tx = 0;
	if (sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int tdb_get_meter(struct townd_db *d, unsigned int id, struct townd_meter_row *row)
{
	sqlite3_stmt *st = d->get_meter;
	int rc, found = 0;

	sqlite3_bind_int(st, 1, (int)id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *hex = (const char *)sqlite3_column_text(st, 0);

		row->id = (uint16_t)id;
		if (hex && !gmp_hex_decode(hex, row->pk, GMP_KEY_LEN)) {
			row->rx_ctr = (uint64_t)sqlite3_column_int64(st, 1);
			row->tx_ctr = (uint64_t)sqlite3_column_int64(st, 2);
			row->upto = sqlite3_column_int64(st, 3);
			found = 1;
		} else {
			found = -1;	/* a corrupt key is an error, not a meter */
		}
	} else if (rc != SQLITE_DONE) {
		found = -1;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return found;
}

void tdb_month(int64_t t, char out[8])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm))
		memset(&tm, 0, sizeof(tm));
	unsigned int y = (unsigned int)(tm.tm_year + 1900) % 10000u;
	unsigned int mo = (unsigned int)tm.tm_mon % 12u + 1;

	out[0] = (char)('0' + y / 1000);
	out[1] = (char)('0' + y / 100 % 10);
	out[2] = (char)('0' + y / 10 % 10);
	out[3] = (char)('0' + y % 10);
	out[4] = '-';
	out[5] = (char)('0' + mo / 10);
	out[6] = (char)('0' + mo % 10);
	out[7] = '\0';
}

int tdb_store(struct townd_db *d, unsigned int meter, const struct gmp_msg *m, int64_t now)
{
	sqlite3_stmt *st;
	int64_t t, a = 0, b = 0, c = 0;

	if (m->type == GMP_READING) {
		char month[8];

		st = d->ins_reading;
		sqlite3_bind_int(st, 1, (int)meter);
		sqlite3_bind_int64(st, 2, m->reading.seq);
		sqlite3_bind_int64(st, 3, m->reading.start);
		sqlite3_bind_int64(st, 4, m->reading.interval_s);
		sqlite3_bind_int64(st, 5, m->reading.import_mwh);
		sqlite3_bind_int64(st, 6, m->reading.export_mwh);
		sqlite3_bind_int64(st, 7, m->reading.renew_mwh);
		sqlite3_bind_int64(st, 8, m->reading.flags);
		sqlite3_bind_int64(st, 9, now);
		if (step_done(st))
			return -1;
		if (sqlite3_changes(d->db) == 0)
			return 0;
		tdb_month(m->reading.start, month);
		st = d->month;
		sqlite3_bind_int(st, 1, (int)meter);
		sqlite3_bind_text(st, 2, month, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, m->reading.import_mwh);
		sqlite3_bind_int64(st, 4, m->reading.export_mwh);
		sqlite3_bind_int64(st, 5, m->reading.renew_mwh);
		return step_done(st) ? -1 : 1;
	}
	switch (m->type) {
	case GMP_REGISTERS:
		t = m->regs.time;
		a = m->regs.import_mwh;
		b = m->regs.export_mwh;
		c = m->regs.renew_mwh;
		break;
	case GMP_ALARM:
		t = m->alarm.time;
		a = m->alarm.code;
		b = m->alarm.active;
		c = m->alarm.value;
		break;
	case GMP_ALLOC_REQ:
		t = m->alloc_req.time;
		a = m->alloc_req.req_id;
		b = m->alloc_req.power_w;
		c = m->alloc_req.duration_s;
		break;
	case GMP_ALLOC_REL:
		t = m->alloc_rel.time;
		a = m->alloc_rel.req_id;
		break;
	default:
		return -1;
	}
	st = d->ins_event;
	sqlite3_bind_int(st, 1, (int)meter);
	sqlite3_bind_int64(st, 2, gmp_msg_seq(m));
	sqlite3_bind_int(st, 3, m->type);
	sqlite3_bind_int64(st, 4, t);
	sqlite3_bind_int64(st, 5, a);
	sqlite3_bind_int64(st, 6, b);
	sqlite3_bind_int64(st, 7, c);
	sqlite3_bind_int64(st, 8, now);
	if (step_done(st))
		return -1;
	return sqlite3_changes(d->db) ? 1 : 0;
}

int tdb_update_meter(struct townd_db *d, unsigned int id, uint64_t rx_ctr, uint64_t tx_ctr,
		     int64_t upto, int64_t last_seen, uint64_t rejected_delta)
{
	sqlite3_stmt *st = d->upd_meter;

	sqlite3_bind_int64(st, 1, (int64_t)rx_ctr);
	sqlite3_bind_int64(st, 2, (int64_t)tx_ctr);
	sqlite3_bind_int64(st, 3, upto);
	if (last_seen)
		sqlite3_bind_int64(st, 4, last_seen);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int64(st, 5, (int64_t)rejected_delta);
	sqlite3_bind_int(st, 6, (int)id);
	return step_done(st);
}

int tdb_add_rejected(struct townd_db *d, unsigned int id, uint64_t delta)
{
	sqlite3_stmt *st;
	int rc;

	/* rare (every stats interval, meters that got junk): not worth a kept statement */
	if (sqlite3_prepare_v2(d->db, "UPDATE meters SET rejected = rejected + ? WHERE id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, (int64_t)delta);
	sqlite3_bind_int(st, 2, (int)id);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

int tdb_add_stat(struct townd_db *d, const char *name, uint64_t delta)
{
	sqlite3_stmt *st = d->stat;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)delta);
	return step_done(st);
}

int tdb_seqs_above(struct townd_db *d, unsigned int id, int64_t upto,
		   void (*cb)(void *ctx, int64_t seq), void *ctx)
{
	static const char *const sql[2] = {
		"SELECT seq FROM readings WHERE meter = ? AND seq > ? AND seq <= ?",
		"SELECT seq FROM events WHERE meter = ? AND seq > ? AND seq <= ?",
	};

	for (int i = 0; i < 2; i++) {
		sqlite3_stmt *st;
		int rc;

		if (sqlite3_prepare_v2(d->db, sql[i], -1, &st, NULL) != SQLITE_OK)
			return -1;
		sqlite3_bind_int(st, 1, (int)id);
		sqlite3_bind_int64(st, 2, upto);
		sqlite3_bind_int64(st, 3, upto + 64);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			cb(ctx, sqlite3_column_int64(st, 0));
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return -1;
	}
	return 0;
}

int tdb_add_meter(struct townd_db *d, unsigned int id, const uint8_t pk[GMP_KEY_LEN],
		  const char *name, int64_t now, char *err, size_t errlen)
{
	char hex[2 * GMP_KEY_LEN + 1];
	sqlite3_stmt *st;
	int rc;

	if (id < 1 || id > 65534) {
		snprintf(err, errlen, "meter id %u is not 1..65534", id);
		return -1;
	}
	gmp_hex_encode(pk, GMP_KEY_LEN, hex);
	if (sqlite3_prepare_v2(d->db, "INSERT INTO meters (id, pk, name, provisioned) "
			       "VALUES (?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
		return -1;
	}
	sqlite3_bind_int(st, 1, (int)id);
	sqlite3_bind_text(st, 2, hex, -1, SQLITE_TRANSIENT);
	if (name)
		sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, now);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		if (rc == SQLITE_CONSTRAINT)
			snprintf(err, errlen, "meter %u is already provisioned", id);
		else
			snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
		return -1;
	}
	return 0;
}

int tdb_pending(struct townd_db *d, unsigned int id,
		int (*cb)(void *ctx, int64_t tseq, const uint8_t *msg, size_t len), void *ctx)
{
	sqlite3_stmt *st = d->pending;
	int rc;

	sqlite3_bind_int(st, 1, (int)id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *hex = (const char *)sqlite3_column_text(st, 1);
		uint8_t msg[GMP_PLAIN_MAX];
		size_t n = hex ? strlen(hex) / 2 : 0;

		if (!hex || n > sizeof(msg) || gmp_hex_decode(hex, msg, n))
			continue;	/* townctl wrote it; never send what we cannot read */
		if (cb(ctx, sqlite3_column_int64(st, 0), msg, n))
			break;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int tdb_mack(struct townd_db *d, unsigned int id, int64_t upto, int64_t now)
{
	sqlite3_stmt *st = d->mack;

	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int(st, 2, (int)id);
	sqlite3_bind_int64(st, 3, upto);
	return step_done(st);
}

int tdb_queue(struct townd_db *d, unsigned int id, struct gmp_msg *m, int64_t now,
	      char *err, size_t errlen)
{
	uint8_t buf[GMP_PLAIN_MAX];
	char hex[2 * GMP_PLAIN_MAX + 1];
	sqlite3_stmt *st;
	int64_t tseq = 1;
	size_t len = 0;
	int rc;

	if (sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
		return -1;
	}
	if (sqlite3_prepare_v2(d->db, "SELECT COALESCE(MAX(tseq), 0) + 1, "
			       "(SELECT COUNT(*) FROM meters WHERE id = ?1) "
			       "FROM outgoing WHERE meter = ?1", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int(st, 1, (int)id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		tseq = sqlite3_column_int64(st, 0);
		rc = sqlite3_column_int(st, 1) ? SQLITE_ROW : SQLITE_NOTFOUND;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_NOTFOUND) {
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, errlen, "meter %u is not provisioned", id);
		return -1;
	}
	if (rc != SQLITE_ROW)
		goto fail;
	if (m->type == GMP_GRANT)
		m->grant.tseq = tseq;
	else if (m->type == GMP_TARIFF)
		m->tariff.tseq = tseq;
	if (gmp_encode(m, buf, sizeof(buf), &len)) {
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, errlen, "the message does not encode (a value out of range)");
		return -1;
	}
	gmp_hex_encode(buf, len, hex);
	if (sqlite3_prepare_v2(d->db, "INSERT INTO outgoing (meter, tseq, body, created) "
			       "VALUES (?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int(st, 1, (int)id);
	sqlite3_bind_int64(st, 2, tseq);
	sqlite3_bind_text(st, 3, hex, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, now);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
	sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}
