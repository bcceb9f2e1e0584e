// SPDX-License-Identifier: GPL-2.0
/* townd storage on SQLite (townd_db.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "townd_db.h"

/*
 * Portable subset: BIGINT/INTEGER/TEXT, composite primary keys, no
 * AUTOINCREMENT, upserts with ON CONFLICT ... DO UPDATE (SQLite >= 3.24,
 * PostgreSQL >= 9.5). Times are UTC seconds, energy in mWh.
 */
const char townd_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta (\n"
	"  name       TEXT PRIMARY KEY,           -- schema_version, changes\n"
	"  value      BIGINT NOT NULL\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS meters (\n"
	"  id         INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 65534),\n"
	"  pk         TEXT NOT NULL,              -- X25519 public key, hex\n"
	"  name       TEXT,\n"
	"  provisioned BIGINT NOT NULL,\n"
	"  acked_upto BIGINT NOT NULL DEFAULT 0,  -- all records <= stored\n"
	"  last_seen  BIGINT,\n"
	"  rejected   BIGINT NOT NULL DEFAULT 0,\n"
	"  pk_next    TEXT,                       -- the meter's next key (rotation)\n"
	"  revoked    BIGINT,                     -- UTC s; a revoked meter is refused\n"
	"  cmd_floor  BIGINT NOT NULL DEFAULT 0,  -- the meter's command floor (HELLO)\n"
	"  reg_import BIGINT NOT NULL DEFAULT 0,  -- register view: last snapshot\n"
	"  reg_export BIGINT NOT NULL DEFAULT 0,  --   plus the readings after it\n"
	"  reg_renew  BIGINT NOT NULL DEFAULT 0,\n"
	"  reg_time   BIGINT NOT NULL DEFAULT 0,  -- the view reaches this time\n"
	"  reg_snap   BIGINT NOT NULL DEFAULT 0,  -- time of its snapshot\n"
	"  hellos     TEXT NOT NULL DEFAULT ''    -- recent HELLO randoms (replays)\n"
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
	"  booked     BIGINT NOT NULL DEFAULT 0,  -- the time it is billed at\n"
	"  PRIMARY KEY (meter, seq)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS events (\n"
	"  meter      INTEGER NOT NULL REFERENCES meters(id),\n"
	"  seq        BIGINT NOT NULL,\n"
	"  type       INTEGER NOT NULL,           -- gmproto message type\n"
	"  time       BIGINT NOT NULL,\n"
	"  a          BIGINT, b BIGINT, c BIGINT, -- per type, townd.md\n"
	"  received   BIGINT NOT NULL,\n"
	"  data       TEXT,                       -- key-rotate: the new key, hex\n"
	"  PRIMARY KEY (meter, seq)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS month_totals (\n"
	"  meter      INTEGER NOT NULL REFERENCES meters(id),\n"
	"  month      TEXT NOT NULL,              -- YYYY-MM of booked, UTC\n"
	"  import_mwh BIGINT NOT NULL,\n"
	"  export_mwh BIGINT NOT NULL,\n"
	"  renew_mwh  BIGINT NOT NULL,\n"
	"  readings   BIGINT NOT NULL,\n"
	"  PRIMARY KEY (meter, month)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS outgoing (     -- commands to meters\n"
	"  meter      INTEGER NOT NULL REFERENCES meters(id),\n"
	"  tseq       BIGINT NOT NULL,            -- per meter, increasing\n"
	"  body       TEXT NOT NULL,              -- the CBOR message, hex\n"
	"  created    BIGINT NOT NULL,\n"
	"  type       INTEGER NOT NULL DEFAULT 0, -- gmproto message type\n"
	"  sent       BIGINT,                     -- first sent\n"
	"  status     INTEGER,                    -- NULL pending; cmd-result; 100 superseded\n"
	"  result_at  BIGINT,\n"
	"  PRIMARY KEY (meter, tseq)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS journal (      -- key changes and other notable events\n"
	"  meter      INTEGER,\n"
	"  at         BIGINT NOT NULL,\n"
	"  what       TEXT NOT NULL\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS stats (\n"
	"  name       TEXT PRIMARY KEY,\n"
	"  value      BIGINT NOT NULL\n"
	");\n"
	/* schema 3: the hours sent to the main server (townd_updb.c) */
	"CREATE TABLE IF NOT EXISTS hours (       -- one meter's hour in one tariff period\n"
	"  meter      INTEGER NOT NULL,\n"
	"  hour       BIGINT NOT NULL,            -- UTC s, booked - booked % 3600\n"
	"  period     INTEGER NOT NULL,           -- tariff slot\n"
	"  import_mwh BIGINT NOT NULL,\n"
	"  export_mwh BIGINT NOT NULL,\n"
	"  renew_mwh  BIGINT NOT NULL,\n"
	"  readings   BIGINT NOT NULL,\n"
	"  flags      INTEGER NOT NULL,           -- the readings' flags, OR-ed\n"
	"  covered    BIGINT NOT NULL,            -- seconds of the hour the readings cover\n"
	"  rev        BIGINT NOT NULL DEFAULT 0,\n"
	"  sent_rev   BIGINT NOT NULL DEFAULT -1, -- in the upstream outbox (-1 never)\n"
	"  out_seq    BIGINT NOT NULL DEFAULT 0,  -- its upstream record seq\n"
	"  PRIMARY KEY (meter, hour, period)\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS hours_by_hour ON hours (hour);\n"
	"CREATE INDEX IF NOT EXISTS hours_pending ON hours (hour) WHERE sent_rev < rev;\n"
	"CREATE INDEX IF NOT EXISTS hours_by_out_seq ON hours (out_seq);\n"
	"CREATE TABLE IF NOT EXISTS town_hours (  -- the town's totals of one hour\n"
	"  hour       BIGINT PRIMARY KEY,\n"
	"  meters     BIGINT NOT NULL,\n"
	"  import_mwh BIGINT NOT NULL,\n"
	"  export_mwh BIGINT NOT NULL,\n"
	"  renew_mwh  BIGINT NOT NULL,\n"
	"  flags      INTEGER NOT NULL,\n"
	"  rev        BIGINT NOT NULL DEFAULT 0,\n"
	"  sent_rev   BIGINT NOT NULL DEFAULT -1,\n"
	"  out_seq    BIGINT NOT NULL DEFAULT 0\n"
	");\n"
	/* schema 4: operator-signed commands, reports up, summaries (townd_signed.c, townd_reports.c) */
	"CREATE TABLE IF NOT EXISTS signed_cmds ( -- GMP_SIGNED commands the town handled\n"
	"  id         BIGINT PRIMARY KEY,         -- the command's unique id\n"
	"  action     INTEGER NOT NULL,           -- enum gmc_action\n"
	"  meter      INTEGER NOT NULL,           -- 0: the town itself\n"
	"  arg        BIGINT NOT NULL DEFAULT 0,\n"
	"  issued     BIGINT NOT NULL,\n"
	"  expires    BIGINT NOT NULL,\n"
	"  signers    TEXT NOT NULL,              -- alice+bob (fingerprints if unknown here)\n"
	"  via        TEXT NOT NULL,              -- main | townctl\n"
	"  received   BIGINT NOT NULL,\n"
	"  tseq       BIGINT NOT NULL DEFAULT 0,  -- its row in outgoing (meter commands)\n"
	"  state      INTEGER NOT NULL,           -- enum gmp_cmd_state\n"
	"  status     INTEGER NOT NULL DEFAULT 0, -- enum gmp_cmd_status\n"
	"  updated    BIGINT NOT NULL\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS reports (     -- records for the main server, in order\n"
	"  rid        INTEGER PRIMARY KEY,\n"
	"  type       INTEGER NOT NULL,           -- GMP_CMD_REPORT, GMP_METER_ALARM, GMP_SECURITY\n"
	"  time       BIGINT NOT NULL,\n"
	"  a BIGINT NOT NULL, b BIGINT NOT NULL, c BIGINT NOT NULL, -- the fields after time\n"
	"  d BIGINT NOT NULL, e BIGINT NOT NULL,\n"
	"  out_seq    BIGINT NOT NULL DEFAULT 0   -- its upstream record seq (0: not yet)\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS reports_by_out_seq ON reports (out_seq);\n"
	"CREATE TABLE IF NOT EXISTS town_summaries ( -- GMP_TOWN_SUMMARY, as the main server sent it\n"
	"  month      INTEGER PRIMARY KEY,        -- YYYYMM\n"
	"  meters     BIGINT NOT NULL,\n"
	"  import_wh  BIGINT NOT NULL,\n"
	"  export_wh  BIGINT NOT NULL,\n"
	"  renew_wh   BIGINT NOT NULL,\n"
	"  lent_wh    BIGINT NOT NULL,\n"
	"  borrowed_wh BIGINT NOT NULL,\n"
	"  admin_hours BIGINT NOT NULL,\n"
	"  alarms     BIGINT NOT NULL,\n"
	"  estimated_hours BIGINT NOT NULL,\n"
	"  billed_minor BIGINT NOT NULL,\n"
	"  received   BIGINT NOT NULL\n"
	");\n";

/* ---- small helpers ---------------------------------------------------------------- */

static int prep(struct townd_db *d, const char *sql, sqlite3_stmt **st)
{
	return sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* A statement with int64 parameters ?1..?n bound, or NULL. */
static sqlite3_stmt *prepare_i64(struct townd_db *d, const char *sql, int n, const int64_t *v)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(st, i + 1, v[i]);
	return st;
}

/* One statement with int64 parameters, run to completion. */
static int exec_i64(struct townd_db *d, const char *sql, int n, const int64_t *v)
{
	sqlite3_stmt *st = prepare_i64(d, sql, n, v);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* The first column of the first row of a query with int64 parameters; dflt if none. */
static int query_i64(struct townd_db *d, const char *sql, int n, const int64_t *v,
		     int64_t dflt, int64_t *out)
{
	sqlite3_stmt *st = prepare_i64(d, sql, n, v);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL ?
	       sqlite3_column_int64(st, 0) : dflt;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static bool table_has(struct townd_db *d, const char *table, const char *column)
{
	char sql[160];
	sqlite3_stmt *st;
	bool found = false;

	snprintf(sql, sizeof(sql), "SELECT name FROM pragma_table_info('%s')", table);
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return false;
	while (sqlite3_step(st) == SQLITE_ROW)
		if (!column || !strcmp((const char *)sqlite3_column_text(st, 0), column))
			found = true;
	sqlite3_finalize(st);
	return found;
}

/* ---- opening and migration ------------------------------------------------------------ */

static int exec(struct townd_db *d, const char *sql, char *err, size_t errlen,
		const char *path)
{
	char *msg = NULL;

	if (sqlite3_exec(d->db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(d->db));
	sqlite3_free(msg);
	return -1;
}

/* The register view of a meter from its stored records (townd.md). */
static int compute_regview(struct townd_db *d, int64_t id, struct townd_regview *rv)
{
	sqlite3_stmt *st;
	int64_t seq0 = 0;
	int rc;

	memset(rv, 0, sizeof(*rv));
	if (sqlite3_prepare_v2(d->db, "SELECT seq, time, a, b, c FROM events WHERE meter = ? "
			       "AND type = 2 ORDER BY seq DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		seq0 = sqlite3_column_int64(st, 0);
		rv->snap = rv->time = sqlite3_column_int64(st, 1);
		rv->import_mwh = sqlite3_column_int64(st, 2);
		rv->export_mwh = sqlite3_column_int64(st, 3);
		rv->renew_mwh = sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	if (sqlite3_prepare_v2(d->db, "SELECT COALESCE(SUM(import_mwh), 0), "
			       "COALESCE(SUM(export_mwh), 0), COALESCE(SUM(renew_mwh), 0), "
			       "COALESCE(MAX(start + interval_s), 0) FROM readings WHERE meter = ? "
			       "AND seq > ? AND start >= ? AND (flags & 2) = 0", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, seq0);
	sqlite3_bind_int64(st, 3, rv->snap);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rv->import_mwh += sqlite3_column_int64(st, 0);
		rv->export_mwh += sqlite3_column_int64(st, 1);
		rv->renew_mwh += sqlite3_column_int64(st, 2);
		if (sqlite3_column_int64(st, 3) > rv->time)
			rv->time = sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/*
 * Version 1 -> 2: send counters go (nothing about nonces is stored any
 * more); key rotation, revocation, the command floor, the register view,
 * HELLO replay memory, booking time, command results and the journal
 * come. Every meter, reading, event and command is kept.
 */
static int migrate_v1(struct townd_db *d, const char *path, char *err, size_t errlen)
{
	static const char *const steps[] = {
		"ALTER TABLE meters ADD COLUMN pk_next TEXT",
		"ALTER TABLE meters ADD COLUMN revoked BIGINT",
		"ALTER TABLE meters ADD COLUMN cmd_floor BIGINT NOT NULL DEFAULT 0",
		"ALTER TABLE meters ADD COLUMN reg_import BIGINT NOT NULL DEFAULT 0",
		"ALTER TABLE meters ADD COLUMN reg_export BIGINT NOT NULL DEFAULT 0",
		"ALTER TABLE meters ADD COLUMN reg_renew BIGINT NOT NULL DEFAULT 0",
		"ALTER TABLE meters ADD COLUMN reg_time BIGINT NOT NULL DEFAULT 0",
		"ALTER TABLE meters ADD COLUMN reg_snap BIGINT NOT NULL DEFAULT 0",
		"ALTER TABLE meters ADD COLUMN hellos TEXT NOT NULL DEFAULT ''",
		"ALTER TABLE meters DROP COLUMN rx_ctr",
		"ALTER TABLE meters DROP COLUMN tx_ctr",
		"ALTER TABLE readings ADD COLUMN booked BIGINT NOT NULL DEFAULT 0",
		"UPDATE readings SET booked = start",
		"ALTER TABLE events ADD COLUMN data TEXT",
		"ALTER TABLE outgoing ADD COLUMN type INTEGER NOT NULL DEFAULT 0",
		"ALTER TABLE outgoing ADD COLUMN sent BIGINT",
		"ALTER TABLE outgoing ADD COLUMN status INTEGER",
		"ALTER TABLE outgoing ADD COLUMN result_at BIGINT",
		"UPDATE outgoing SET sent = acked, status = 101, result_at = acked "
		"WHERE acked IS NOT NULL",
		"ALTER TABLE outgoing DROP COLUMN acked",
	};
	sqlite3_stmt *st;
	int rc;

	if (exec(d, "BEGIN IMMEDIATE", err, errlen, path))
		return -1;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (exec(d, steps[i], err, errlen, path))
			goto fail;
	if (exec(d, townd_schema_sql, err, errlen, path))
		goto fail;
	/* the type of every command, from its body */
	if (sqlite3_prepare_v2(d->db, "SELECT meter, tseq, body FROM outgoing", -1, &st,
			       NULL) != SQLITE_OK)
		goto sqlfail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *hex = (const char *)sqlite3_column_text(st, 2);
		uint8_t body[GMP_PLAIN_MAX];
		size_t n = hex ? strlen(hex) / 2 : 0, off = 0;
		struct gmp_msg m;
		int64_t v[3] = { 0, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1) };

		/* version-1 bodies decode as version 2: same fields for grant and tariff */
		if (hex && n <= sizeof(body) && !gmp_hex_decode(hex, body, n) &&
		    gmp_decode_next(body, n, &off, &m) == 1)
			v[0] = m.type;
		if (exec_i64(d, "UPDATE outgoing SET type = ?1 WHERE meter = ?2 AND tseq = ?3",
			     3, v)) {
			sqlite3_finalize(st);
			goto sqlfail;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto sqlfail;
	/* the register view of every meter from what is stored */
	if (sqlite3_prepare_v2(d->db, "SELECT id FROM meters", -1, &st, NULL) != SQLITE_OK)
		goto sqlfail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct townd_regview rv;
		int64_t id = sqlite3_column_int64(st, 0);

		if (compute_regview(d, id, &rv) ||
		    exec_i64(d, "UPDATE meters SET reg_import = ?1, reg_export = ?2, "
			     "reg_renew = ?3, reg_time = ?4, reg_snap = ?5 WHERE id = ?6", 6,
			     (int64_t[]){ rv.import_mwh, rv.export_mwh, rv.renew_mwh, rv.time,
					  rv.snap, id })) {
			sqlite3_finalize(st);
			goto sqlfail;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto sqlfail;
	if (exec(d, "INSERT INTO journal (meter, at, what) VALUES (NULL, "
		 "CAST(strftime('%s', 'now') AS INTEGER), 'database migrated from schema "
		 "version 1 to 2 (send counters dropped)'); "
		 "INSERT INTO meta (name, value) VALUES ('schema_version', 2), ('changes', 0); "
		 "COMMIT", err, errlen, path))
		goto fail;
	return 0;
sqlfail:
	snprintf(err, errlen, "%s: migrating from schema version 1: %s", path,
		 sqlite3_errmsg(d->db));
fail:
	sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * Version 2 -> 3: the hours table and its bookkeeping (meta hours_rowid:
 * readings up to this rowid are in hours; 0 here, so every stored reading
 * is built into hours and sent upstream once a [upstream] is configured).
 */
static int migrate_v2(struct townd_db *d, const char *path, char *err, size_t errlen)
{
	return exec(d, "BEGIN IMMEDIATE", err, errlen, path) ||
	       exec(d, townd_schema_sql, err, errlen, path) ||
	       exec(d, "INSERT INTO journal (meter, at, what) VALUES (NULL, "
		    "CAST(strftime('%s', 'now') AS INTEGER), 'database migrated from schema "
		    "version 2 to 3 (hours for the main server; every stored reading will be "
		    "built into them)'); "
		    "UPDATE meta SET value = 3 WHERE name = 'schema_version'; COMMIT",
		    err, errlen, path) ? (sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL), -1)
				       : 0;
}

/* Version 3 -> 4: signed commands, reports to the main server, town summaries. */
static int migrate_v3(struct townd_db *d, const char *path, char *err, size_t errlen)
{
	return exec(d, "BEGIN IMMEDIATE", err, errlen, path) ||
	       exec(d, townd_schema_sql, err, errlen, path) ||
	       exec(d, "INSERT INTO journal (meter, at, what) VALUES (NULL, "
		    "CAST(strftime('%s', 'now') AS INTEGER), 'database migrated from schema "
		    "version 3 to 4 (signed commands, reports to the main server, town "
		    "summaries)'); "
		    "UPDATE meta SET value = 4 WHERE name = 'schema_version'; COMMIT",
		    err, errlen, path) ? (sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL), -1)
				       : 0;
}

static int schema(struct townd_db *d, const char *path, char *err, size_t errlen)
{
	int64_t version = 0;

	if (!table_has(d, "meters", NULL)) {
		/* a new database */
		return exec(d, "BEGIN IMMEDIATE", err, errlen, path) ||
		       exec(d, townd_schema_sql, err, errlen, path) ||
		       exec(d, "INSERT INTO meta (name, value) VALUES ('schema_version', 4), "
			    "('changes', 0); COMMIT", err, errlen, path) ? -1 : 0;
	}
	if (!table_has(d, "meta", NULL)) {
		if (!table_has(d, "meters", "rx_ctr")) {
			snprintf(err, errlen, "%s: not a townd database (no schema version)", path);
			return -1;
		}
		if (migrate_v1(d, path, err, errlen))
			return -1;
	}
	if (query_i64(d, "SELECT value FROM meta WHERE name = 'schema_version'", 0, NULL, 0,
		      &version)) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(d->db));
		return -1;
	}
	if (version == 2) {
		if (migrate_v2(d, path, err, errlen))
			return -1;
		version = 3;
	}
	if (version == 3) {
		if (migrate_v3(d, path, err, errlen))
			return -1;
		version = 4;
	}
	if (version != TOWND_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: schema version %lld, this townd knows %d", path,
			 (long long)version, TOWND_SCHEMA_VERSION);
		return -1;
	}
	return exec(d, townd_schema_sql, err, errlen, path);
}

void tdb_close(struct townd_db *d)
{
	sqlite3_stmt *all[] = { d->ins_reading, d->ins_event, d->month, d->upd_meter,
				d->stat, d->get_meter, d->pending, d->result, d->sent,
				d->changes };

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
	if (exec(d, sync_full ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;" :
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err, errlen, path) ||
	    schema(d, path, err, errlen) || tdb_alloc_schema(d, err, errlen)) {
		tdb_close(d);
		return -1;
	}
	if (prep(d, "INSERT INTO readings (meter, seq, start, interval_s, import_mwh, "
		 "export_mwh, renew_mwh, flags, received, booked) VALUES (?,?,?,?,?,?,?,?,?,?) "
		 "ON CONFLICT (meter, seq) DO NOTHING", &d->ins_reading) ||
	    prep(d, "INSERT INTO events (meter, seq, type, time, a, b, c, received, data) "
		 "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (meter, seq) DO NOTHING", &d->ins_event) ||
	    prep(d, "INSERT INTO month_totals (meter, month, import_mwh, export_mwh, renew_mwh, "
		 "readings) VALUES (?,?,?,?,?,1) ON CONFLICT (meter, month) DO UPDATE SET "
		 "import_mwh = month_totals.import_mwh + excluded.import_mwh, "
		 "export_mwh = month_totals.export_mwh + excluded.export_mwh, "
		 "renew_mwh = month_totals.renew_mwh + excluded.renew_mwh, "
		 "readings = month_totals.readings + 1", &d->month) ||
	    prep(d, "UPDATE meters SET acked_upto = ?1, last_seen = COALESCE(?2, last_seen), "
		 "rejected = rejected + ?3, cmd_floor = ?4, reg_import = ?5, reg_export = ?6, "
		 "reg_renew = ?7, reg_time = ?8, reg_snap = ?9 WHERE id = ?10", &d->upd_meter) ||
	    prep(d, "INSERT INTO stats (name, value) VALUES (?, ?) ON CONFLICT (name) "
		 "DO UPDATE SET value = stats.value + excluded.value", &d->stat) ||
	    prep(d, "SELECT pk, pk_next, revoked, acked_upto, cmd_floor, reg_import, reg_export, "
		 "reg_renew, reg_time, reg_snap FROM meters WHERE id = ?", &d->get_meter) ||
	    prep(d, "SELECT tseq, body FROM outgoing WHERE meter = ? AND (status IS NULL OR "
		 "status = 5) ORDER BY tseq LIMIT 8", &d->pending) ||
	    prep(d, "UPDATE outgoing SET status = ?1, result_at = ?2 WHERE meter = ?3 AND "
		 "tseq = ?4 AND (status IS NULL OR status = 5)", &d->result) ||
	    prep(d, "UPDATE outgoing SET sent = ?1 WHERE meter = ?2 AND tseq = ?3 AND "
		 "sent IS NULL", &d->sent) ||
	    prep(d, "SELECT value FROM meta WHERE name = 'changes'", &d->changes) ||
	    query_i64(d, "SELECT value FROM meta WHERE name = 'kept_from'", 0, NULL, 0,
		      &d->kept_from)) {
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

static int hex_key(sqlite3_stmt *st, int col, uint8_t *out)
{
	const char *hex = (const char *)sqlite3_column_text(st, col);

	return hex && !gmp_hex_decode(hex, out, GMP_KEY_LEN) ? 0 : -1;
}

int tdb_get_meter(struct townd_db *d, unsigned int id, struct townd_meter_row *row)
{
	sqlite3_stmt *st = d->get_meter;
	int rc, found = 0;

	memset(row, 0, sizeof(*row));
	sqlite3_bind_int(st, 1, (int)id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row->id = (uint16_t)id;
		found = 1;
		if (hex_key(st, 0, row->pk))
			found = -1;	/* a corrupt key is an error, not a meter */
		if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
			row->have_pk_next = true;
			if (hex_key(st, 1, row->pk_next))
				found = -1;
		}
		row->revoked = sqlite3_column_type(st, 2) != SQLITE_NULL;
		row->upto = sqlite3_column_int64(st, 3);
		row->cmd_floor = sqlite3_column_int64(st, 4);
		row->reg_import = sqlite3_column_int64(st, 5);
		row->reg_export = sqlite3_column_int64(st, 6);
		row->reg_renew = sqlite3_column_int64(st, 7);
		row->reg_time = sqlite3_column_int64(st, 8);
		row->reg_snap = sqlite3_column_int64(st, 9);
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

#define BOOK_FUTURE_S	300		/* a reading may end this far after its arrival */
#define BOOK_PAST_S	(400 * 86400)	/* and be at most this old */

int64_t tdb_booked(const struct gmp_msg *r, int64_t received)
{
	return tdb_booked_kept(r, received, 0);
}

int64_t tdb_booked_kept(const struct gmp_msg *r, int64_t received, int64_t kept_from)
{
	if (r->reading.flags & GMP_RF_TIME_UNTRUSTED ||
	    r->reading.start + r->reading.interval_s > received + BOOK_FUTURE_S ||
	    r->reading.start < received - BOOK_PAST_S || r->reading.start < kept_from)
		return received;
	return r->reading.start;
}

static int store_event(struct townd_db *d, unsigned int meter, int64_t seq, int type,
		       int64_t t, int64_t a, int64_t b, int64_t c, const char *data, int64_t now)
{
	sqlite3_stmt *st = d->ins_event;

	sqlite3_bind_int(st, 1, (int)meter);
	sqlite3_bind_int64(st, 2, seq);
	sqlite3_bind_int(st, 3, type);
	sqlite3_bind_int64(st, 4, t);
	sqlite3_bind_int64(st, 5, a);
	sqlite3_bind_int64(st, 6, b);
	sqlite3_bind_int64(st, 7, c);
	sqlite3_bind_int64(st, 8, now);
	if (data)
		sqlite3_bind_text(st, 9, data, -1, SQLITE_TRANSIENT);
	if (step_done(st))
		return -1;
	return sqlite3_changes(d->db) ? 1 : 0;
}

int tdb_store(struct townd_db *d, unsigned int meter, const struct gmp_msg *m, int64_t now)
{
	char hex[2 * GMP_KEY_LEN + 1];
	sqlite3_stmt *st;

	if (m->type == GMP_READING) {
		int64_t booked = tdb_booked_kept(m, now, d->kept_from);
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
		sqlite3_bind_int64(st, 10, booked);
		if (step_done(st))
			return -1;
		if (sqlite3_changes(d->db) == 0)
			return 0;
		tdb_month(booked, month);
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
		return store_event(d, meter, m->regs.seq, m->type, m->regs.time, m->regs.import_mwh,
				   m->regs.export_mwh, m->regs.renew_mwh, NULL, now);
	case GMP_ALARM:
		return store_event(d, meter, m->alarm.seq, m->type, m->alarm.time, m->alarm.code,
				   m->alarm.active, m->alarm.value, NULL, now);
	case GMP_ALLOC_REQ:
		return store_event(d, meter, m->alloc_req.seq, m->type, m->alloc_req.time,
				   m->alloc_req.req_id, m->alloc_req.power_w,
				   m->alloc_req.duration_s, NULL, now);
	case GMP_ALLOC_REL:
		return store_event(d, meter, m->alloc_rel.seq, m->type, m->alloc_rel.time,
				   m->alloc_rel.req_id, 0, 0, NULL, now);
	case GMP_KEY_ROTATE:
		gmp_hex_encode(m->key_rotate.pk, GMP_KEY_LEN, hex);
		return store_event(d, meter, m->key_rotate.seq, m->type, m->key_rotate.time, 0, 0,
				   0, hex, now);
	default:
		return -1;
	}
}

int tdb_store_lost(struct townd_db *d, unsigned int meter, int64_t first, int64_t last,
		   int64_t now)
{
	return store_event(d, meter, first, TDB_EV_LOST, now, first, last, last - first + 1,
			   NULL, now);
}

int tdb_update_meter(struct townd_db *d, unsigned int id, int64_t upto, int64_t last_seen,
		     uint64_t rejected_delta, int64_t cmd_floor, const struct townd_regview *rv)
{
	sqlite3_stmt *st = d->upd_meter;

	sqlite3_bind_int64(st, 1, upto);
	if (last_seen)
		sqlite3_bind_int64(st, 2, last_seen);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_int64(st, 3, (int64_t)rejected_delta);
	sqlite3_bind_int64(st, 4, cmd_floor);
	sqlite3_bind_int64(st, 5, rv->import_mwh);
	sqlite3_bind_int64(st, 6, rv->export_mwh);
	sqlite3_bind_int64(st, 7, rv->renew_mwh);
	sqlite3_bind_int64(st, 8, rv->time);
	sqlite3_bind_int64(st, 9, rv->snap);
	sqlite3_bind_int(st, 10, (int)id);
	return step_done(st);
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

int tdb_journal(struct townd_db *d, unsigned int id, int64_t now, const char *what)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(d->db, "INSERT INTO journal (meter, at, what) VALUES (?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (id)
		sqlite3_bind_int(st, 1, (int)id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_text(st, 3, what, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int64_t tdb_changes(struct townd_db *d)
{
	int64_t v = -1;

	if (sqlite3_step(d->changes) == SQLITE_ROW)
		v = sqlite3_column_int64(d->changes, 0);
	sqlite3_reset(d->changes);
	return v;
}

int tdb_bump_changes(struct townd_db *d)
{
	return exec_i64(d, "UPDATE meta SET value = value + 1 WHERE name = 'changes'", 0, NULL);
}

/* ---- handshakes ------------------------------------------------------------------ */

static int get_hellos(struct townd_db *d, unsigned int id, char *out, size_t size)
{
	sqlite3_stmt *st;
	int rc;

	out[0] = '\0';
	if (sqlite3_prepare_v2(d->db, "SELECT hellos FROM meters WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, (int)id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

#define HELLOS_HEX	(2 * TDB_HELLO_ID * TDB_HELLOS + 1)

int tdb_hello_seen(struct townd_db *d, unsigned int id, const uint8_t rm[GMP_RAND_LEN])
{
	char all[HELLOS_HEX], mine[2 * TDB_HELLO_ID + 1];
	size_t n;

	if (get_hellos(d, id, all, sizeof(all)))
		return -1;
	gmp_hex_encode(rm, TDB_HELLO_ID, mine);
	n = strlen(all) / (2 * TDB_HELLO_ID);
	for (size_t i = 0; i < n; i++)
		if (!strncmp(all + i * 2 * TDB_HELLO_ID, mine, 2 * TDB_HELLO_ID))
			return 1;
	return 0;
}

/* An update of one text column of a meter: ?1 the text, ?2 the id. */
static int set_meter_text(struct townd_db *d, const char *sql, const char *text,
			  unsigned int id)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, (int)id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int tdb_hello_add(struct townd_db *d, unsigned int id, const uint8_t rm[GMP_RAND_LEN])
{
	char all[HELLOS_HEX], out[HELLOS_HEX + 2 * TDB_HELLO_ID];
	size_t len, keep;

	if (get_hellos(d, id, all, sizeof(all)))
		return -1;
	len = strlen(all);
	keep = len >= 2 * TDB_HELLO_ID * TDB_HELLOS ? 2 * TDB_HELLO_ID * (TDB_HELLOS - 1) : len;
	gmp_hex_encode(rm, TDB_HELLO_ID, out);
	memcpy(out + 2 * TDB_HELLO_ID, all, keep);	/* newest first */
	out[2 * TDB_HELLO_ID + keep] = '\0';
	return set_meter_text(d, "UPDATE meters SET hellos = ?1 WHERE id = ?2", out, id);
}

int tdb_promote_pk(struct townd_db *d, unsigned int id, int64_t now)
{
	if (exec_i64(d, "UPDATE meters SET pk = pk_next, pk_next = NULL WHERE id = ?1 AND "
		     "pk_next IS NOT NULL", 1, (int64_t[]){ id }))
		return -1;
	return tdb_journal(d, id, now, "the meter's next key is its key now (a handshake "
			   "under it)");
}

int tdb_set_pk_next(struct townd_db *d, unsigned int id, const uint8_t pk[GMP_KEY_LEN])
{
	char hex[2 * GMP_KEY_LEN + 1];

	gmp_hex_encode(pk, GMP_KEY_LEN, hex);
	return set_meter_text(d, "UPDATE meters SET pk_next = ?1 WHERE id = ?2", hex, id);
}

/* ---- provisioning ------------------------------------------------------------------ */

static int meter_change(struct townd_db *d, unsigned int id, const char *sql, int n,
			const int64_t *v, const char *pk_hex, const char *what, int64_t now,
			char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(st, i + 1, v[i]);
	if (pk_hex)
		sqlite3_bind_text(st, n + 1, pk_hex, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	if (!sqlite3_changes(d->db)) {
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, errlen, "meter %u is not provisioned", id);
		return -1;
	}
	if (tdb_journal(d, id, now, what) || tdb_bump_changes(d) ||
	    sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
	sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
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
	if (tdb_bump_changes(d)) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
		return -1;
	}
	return 0;
}

int tdb_revoke(struct townd_db *d, unsigned int id, int64_t now, char *err, size_t errlen)
{
	return meter_change(d, id, "UPDATE meters SET revoked = ?1 WHERE id = ?2", 2,
			    (int64_t[]){ now, id }, NULL, "revoked", now, err, errlen);
}

int tdb_replace(struct townd_db *d, unsigned int id, const uint8_t pk[GMP_KEY_LEN],
		int64_t now, char *err, size_t errlen)
{
	char hex[2 * GMP_KEY_LEN + 1], what[120];

	gmp_hex_encode(pk, GMP_KEY_LEN, hex);
	snprintf(what, sizeof(what), "replaced: new hardware with key %.16s...", hex);
	return meter_change(d, id, "UPDATE meters SET pk = ?2, pk_next = NULL, revoked = NULL, "
			    "reg_import = 0, reg_export = 0, reg_renew = 0, reg_time = 0, "
			    "reg_snap = 0, hellos = '' WHERE id = ?1", 1, (int64_t[]){ id }, hex,
			    what, now, err, errlen);
}

/* ---- commands ---------------------------------------------------------------------- */

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

int tdb_mark_sent(struct townd_db *d, unsigned int id, int64_t tseq, int64_t now)
{
	sqlite3_stmt *st = d->sent;

	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int(st, 2, (int)id);
	sqlite3_bind_int64(st, 3, tseq);
	return step_done(st);
}

int tdb_cmd_result(struct townd_db *d, unsigned int id, int64_t tseq, int64_t status,
		   int64_t now)
{
	sqlite3_stmt *st = d->result;

	sqlite3_bind_int64(st, 1, status);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int(st, 3, (int)id);
	sqlite3_bind_int64(st, 4, tseq);
	if (step_done(st))
		return -1;
	return sqlite3_changes(d->db) ? 1 : 0;
}

/* The body of m with its tseq set, hex. */
static int body_hex(struct gmp_msg *m, int64_t tseq, char *hex)
{
	uint8_t buf[GMP_PLAIN_MAX];
	size_t len = 0;

	if (m->type == GMP_GRANT)
		m->grant.tseq = tseq;
	else if (m->type == GMP_TARIFF)
		m->tariff.tseq = tseq;
	else if (m->type == GMP_TOWN_KEY)
		m->town_key.tseq = tseq;
	else if (m->type == GMP_SIGNED)
		m->signed_cmd.tseq = tseq;	/* the blob itself is never touched */
	else
		return -1;
	if (gmp_encode(m, buf, sizeof(buf), &len))
		return -1;
	gmp_hex_encode(buf, len, hex);
	return 0;
}

static int insert_command(struct townd_db *d, unsigned int id, struct gmp_msg *m,
			  int64_t tseq, int64_t now)
{
	char hex[2 * GMP_PLAIN_MAX + 1];
	sqlite3_stmt *st;
	int rc;

	if (body_hex(m, tseq, hex))
		return -2;
	if (sqlite3_prepare_v2(d->db, "INSERT INTO outgoing (meter, tseq, body, created, type) "
			       "VALUES (?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, (int)id);
	sqlite3_bind_int64(st, 2, tseq);
	sqlite3_bind_text(st, 3, hex, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int(st, 5, m->type);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The next tseq of a meter: above every tseq it has and its reported floor. */
static int next_tseq(struct townd_db *d, unsigned int id, int64_t *tseq)
{
	return query_i64(d, "SELECT MAX(COALESCE((SELECT MAX(tseq) FROM outgoing WHERE "
			 "meter = ?1), 0), cmd_floor) + 1 FROM meters WHERE id = ?1", 1,
			 (int64_t[]){ id }, 0, tseq);
}

int tdb_queue(struct townd_db *d, unsigned int id, struct gmp_msg *m, int64_t now,
	      char *err, size_t errlen)
{
	int64_t tseq = 0;
	int rc;

	if (sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (next_tseq(d, id, &tseq))
		goto fail;
	if (!tseq) {
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, errlen, "meter %u is not provisioned", id);
		return -1;
	}
	rc = insert_command(d, id, m, tseq, now);
	if (rc == -2) {
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, errlen, "the message does not encode (a value out of range)");
		return -1;
	}
	if (rc || tdb_bump_changes(d) ||
	    sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
	sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* ---- allocation grants (townd_alloc_db.c): a command inside the open transaction ---- */
int tdb_queue_in_tx(struct townd_db *d, unsigned int id, struct gmp_msg *m, int64_t now,
		    int64_t *tseq)
{
	int rc;

	*tseq = 0;
	if (next_tseq(d, id, tseq))
		return -1;
	if (!*tseq)
		return -2;	/* not provisioned */
	rc = insert_command(d, id, m, *tseq, now);
	return rc ? -1 : 0;
}

/* A command's body decoded; 0, or -1 if the row is missing or unreadable. */
static int read_command(struct townd_db *d, unsigned int id, int64_t tseq, struct gmp_msg *m)
{
	uint8_t body[GMP_PLAIN_MAX];
	size_t n = 0, off = 0;
	const char *hex;
	sqlite3_stmt *st;
	int rc, ok = 0;

	if (sqlite3_prepare_v2(d->db, "SELECT body FROM outgoing WHERE meter = ? AND tseq = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, (int)id);
	sqlite3_bind_int64(st, 2, tseq);
	rc = sqlite3_step(st);
	hex = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	if (hex) {
		n = strlen(hex) / 2;
		ok = n <= sizeof(body) && !gmp_hex_decode(hex, body, n) &&
		     gmp_decode_next(body, n, &off, m) == 1;
	}
	sqlite3_finalize(st);
	return ok ? 0 : -1;
}

/* A pending command gets tseq to (its body too: the meter sees the number in it). */
static int renumber(struct townd_db *d, unsigned int id, int64_t from, int64_t to)
{
	char hex[2 * GMP_PLAIN_MAX + 1];
	struct gmp_msg m;
	sqlite3_stmt *st;
	int rc;

	if (read_command(d, id, from, &m) || body_hex(&m, to, hex))
		return exec_i64(d, "UPDATE outgoing SET status = 4 WHERE meter = ?1 AND "
				"tseq = ?2", 2, (int64_t[]){ id, from });	/* unreadable */
	if (sqlite3_prepare_v2(d->db, "UPDATE outgoing SET tseq = ?3, body = ?4 WHERE "
			       "meter = ?1 AND tseq = ?2", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, (int)id);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	sqlite3_bind_text(st, 4, hex, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Copy command row (meter, tseq) as a new command at *next, the old one
 * superseded; a grant only while its end is after grant_after (0: always).
 */
static int reissue(struct townd_db *d, unsigned int id, int64_t tseq, int64_t *next,
		   int64_t now, int64_t grant_after)
{
	struct gmp_msg m;

	if (read_command(d, id, tseq, &m) ||
	    (grant_after && m.type == GMP_GRANT && m.grant.until <= grant_after))
		return 0;	/* nothing usable (or worth) sending again */
	if (insert_command(d, id, &m, *next, now))
		return -1;
	(*next)++;
	return exec_i64(d, "UPDATE outgoing SET status = 100, result_at = ?3 WHERE meter = ?1 "
			"AND tseq = ?2", 3, (int64_t[]){ id, tseq, now });
}

/* The int64 first column of every row of a query on meter ?1, into a new array. */
static int collect(struct townd_db *d, const char *sql, unsigned int id, int64_t **out,
		   size_t *n)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, (int)id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			int64_t *p = realloc(*out, (cap = cap ? 2 * cap : 16) * sizeof(*p));

			if (!p) {
				rc = SQLITE_NOMEM;
				break;
			}
			*out = p;
		}
		(*out)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* Settled as delivered (the meter had it): applied, duplicate, or by a version-1 meter. */
#define SETTLED_OK	"status IN (0, 1, 101)"

int tdb_cmd_next(struct townd_db *d, unsigned int id, int64_t floor, int64_t *cmd_next)
{
	int64_t high = 0;

	if (query_i64(d, "SELECT MAX(tseq) FROM outgoing WHERE meter = ?1", 1,
		      (int64_t[]){ id }, 0, &high))
		return -1;
	if (floor > high) {
		*cmd_next = floor + 1;		/* what is pending is renumbered from there */
		return 0;
	}
	if (query_i64(d, "SELECT MIN(tseq) FROM outgoing WHERE meter = ?1 AND (status IS NULL "
		      "OR status = 5)", 1, (int64_t[]){ id }, 0, cmd_next))
		return -1;
	return *cmd_next ? 0 : next_tseq(d, id, cmd_next);
}

int tdb_reconcile(struct townd_db *d, unsigned int id, int64_t floor, int64_t now)
{
	int64_t high = 0, settled = 0, next, t;
	char what[160];

	if (query_i64(d, "SELECT MAX(tseq) FROM outgoing WHERE meter = ?1", 1,
		      (int64_t[]){ id }, 0, &high) ||
	    query_i64(d, "SELECT MAX(tseq) FROM outgoing WHERE meter = ?1 AND status IS NOT "
		      "NULL AND status NOT IN (5, 100)", 1, (int64_t[]){ id }, 0, &settled))
		return -1;
	if (floor > high) {
		/*
		 * The meter handled commands this database does not know (it
		 * was restored from a backup): whatever is pending here gets
		 * numbers above the meter's floor, so it is not taken for one
		 * of those.
		 */
		int64_t *ts = NULL;
		size_t n = 0;

		if (collect(d, "SELECT tseq FROM outgoing WHERE meter = ? AND (status IS NULL "
			    "OR status = 5) ORDER BY tseq", id, &ts, &n))
			return -1;
		next = floor + 1;
		for (size_t i = 0; i < n; i++)
			if (renumber(d, id, ts[i], next++)) {
				free(ts);
				return -1;
			}
		free(ts);
		snprintf(what, sizeof(what), "the meter's command floor %lld is above the "
			 "town's %lld (database restored): pending commands renumbered",
			 (long long)floor, (long long)high);
		if (tdb_journal(d, id, now, what))
			return -1;
	} else if (floor < settled) {
		/*
		 * The meter lost commands it had settled (its state was wiped
		 * or restored): its current tariff and unexpired grants again.
		 */
		int64_t *ts = NULL;
		size_t n = 0;

		next = high + 1;
		if (query_i64(d, "SELECT COUNT(*) FROM outgoing WHERE meter = ?1 AND type = 18 "
			      "AND (status IS NULL OR status = 5)", 1, (int64_t[]){ id }, 0, &t))
			return -1;
		if (!t && (query_i64(d, "SELECT MAX(tseq) FROM outgoing WHERE meter = ?1 AND "
				     "type = 18 AND " SETTLED_OK, 1, (int64_t[]){ id }, 0, &t) ||
			   (t && reissue(d, id, t, &next, now, 0))))
			return -1;
		if (collect(d, "SELECT tseq FROM outgoing WHERE meter = ? AND type = 17 AND "
			    SETTLED_OK " ORDER BY tseq", id, &ts, &n))
			return -1;
		for (size_t i = 0; i < n; i++)
			if (reissue(d, id, ts[i], &next, now, now)) {
				free(ts);
				return -1;
			}
		free(ts);
		snprintf(what, sizeof(what), "the meter's command floor %lld is below the %lld "
			 "it had settled (its state was lost): current tariff and grants sent "
			 "again", (long long)floor, (long long)settled);
		if (tdb_journal(d, id, now, what))
			return -1;
	}
	return exec_i64(d, "UPDATE meters SET cmd_floor = ?2 WHERE id = ?1", 2,
			(int64_t[]){ id, floor });
}

/* ---- statements with int64 parameters, for the other storage files (townd_updb.c) ---- */

sqlite3_stmt *tdb_prepare_i64(struct townd_db *d, const char *sql, int n, const int64_t *v)
{
	return prepare_i64(d, sql, n, v);
}

int tdb_exec_i64(struct townd_db *d, const char *sql, int n, const int64_t *v)
{
	return exec_i64(d, sql, n, v);
}

int tdb_query_i64(struct townd_db *d, const char *sql, int n, const int64_t *v, int64_t dflt,
		  int64_t *out)
{
	return query_i64(d, sql, n, v, dflt, out);
}
