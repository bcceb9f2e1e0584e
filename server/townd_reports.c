// SPDX-License-Identifier: GPL-2.0
/* The town's reports to the main server and its monthly summaries (townd_reports.h). */
#include <string.h>

#include "townd_reports.h"

static int add(struct townd_db *d, int type, int64_t time, int64_t a, int64_t b, int64_t c,
	       int64_t dd, int64_t e)
{
	return tdb_exec_i64(d, "INSERT INTO reports (type, time, a, b, c, d, e) "
			    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", 7,
			    (int64_t[]){ type, time, a, b, c, dd, e });
}

int trep_cmd(struct townd_db *d, int64_t now, int64_t cmd_id, unsigned int meter, int state,
	     int status)
{
	return add(d, GMP_CMD_REPORT, now, cmd_id, meter, state, status, 0);
}

int trep_alarm(struct townd_db *d, unsigned int meter, const struct gmp_msg *g)
{
	return add(d, GMP_METER_ALARM, g->alarm.time, meter, g->alarm.code, g->alarm.active,
		   g->alarm.value, 0);
}

/* ---- security counts ------------------------------------------------------------------ */

void townd_sec_count(struct townd_sec *s, unsigned int meter, uint32_t addr, int kind,
		     int64_t now)
{
	size_t i;

	if (!s->start)
		s->start = now;
	for (i = 0; i < s->n; i++)
		if (s->e[i].meter == meter && s->e[i].addr == addr && s->e[i].kind == kind)
			break;
	if (i == s->n) {
		if (s->n == TOWND_SEC_KEYS) {
			s->overflow++;
			return;
		}
		s->e[i].meter = (uint16_t)meter;
		s->e[i].addr = addr;
		s->e[i].kind = (uint8_t)kind;
		s->e[i].count = 0;
		s->n++;
	}
	s->e[i].count++;
}

bool townd_sec_due(const struct townd_sec *s, int64_t now, bool force)
{
	return (s->n || s->overflow) && (force || now - s->start >= TOWND_SEC_INTERVAL_S ||
					 now < s->start);
}

int townd_sec_write(struct townd_sec *s, struct townd_db *d, int64_t now)
{
	int64_t interval = now > s->start ? now - s->start : 1;

	for (size_t i = 0; i < s->n; i++)
		if (add(d, GMP_SECURITY, now, interval, s->e[i].meter, s->e[i].addr, s->e[i].kind,
			(int64_t)s->e[i].count))
			return -1;
	/* beyond the table: one row, no meter, no address, under the kind most seen */
	if (s->overflow && add(d, GMP_SECURITY, now, interval, 0, 0, GMP_SEC_UNKNOWN,
			       (int64_t)s->overflow))
		return -1;
	s->n = 0;
	s->overflow = 0;
	s->start = 0;
	return 0;
}

/* ---- into the upstream outbox ------------------------------------------------------------ */

static void to_msg(int type, int64_t seq, int64_t time, const int64_t v[5], struct gmp_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	if (type == GMP_CMD_REPORT) {
		m->cmd_report.seq = seq;
		m->cmd_report.time = time;
		m->cmd_report.cmd_id = v[0];
		m->cmd_report.meter = v[1];
		m->cmd_report.state = v[2];
		m->cmd_report.status = v[3];
	} else if (type == GMP_METER_ALARM) {
		m->meter_alarm.seq = seq;
		m->meter_alarm.time = time;
		m->meter_alarm.meter = v[0];
		m->meter_alarm.code = v[1];
		m->meter_alarm.active = v[2];
		m->meter_alarm.value = v[3];
	} else {
		m->security.seq = seq;
		m->security.time = time;
		m->security.interval_s = v[0];
		m->security.meter = v[1];
		m->security.addr = v[2];
		m->security.kind = v[3];
		m->security.count = v[4];
	}
}


int trep_next_batch(struct townd_db *d, int64_t next_seq, struct gmp_msg *out, size_t max)
{
	sqlite3_stmt *st;
	int64_t rids[64];
	size_t n = 0;
	int rc;

	if (max > sizeof(rids) / sizeof(rids[0]))
		max = sizeof(rids) / sizeof(rids[0]);
	if (tdb_begin(d))
		return -1;
	st = tdb_prepare_i64(d, "SELECT rid, type, time, a, b, c, d, e FROM reports WHERE "
			     "out_seq = 0 ORDER BY rid LIMIT ?1", 1, (int64_t[]){ (int64_t)max });
	if (!st)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < max) {
		int64_t v[5];

		for (int i = 0; i < 5; i++)
			v[i] = sqlite3_column_int64(st, 3 + i);
		rids[n] = sqlite3_column_int64(st, 0);
		to_msg(sqlite3_column_int(st, 1), next_seq + (int64_t)n,
		       sqlite3_column_int64(st, 2), v, &out[n]);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (tdb_exec_i64(d, "UPDATE reports SET out_seq = ?2 WHERE rid = ?1", 2,
				 (int64_t[]){ rids[i], next_seq + (int64_t)i }))
			goto fail;
	if (tdb_commit(d))
		goto fail;
	return (int)n;
fail:
	tdb_rollback(d);
	return -1;
}

static int one_tx(struct townd_db *d, const char *sql, int n, const int64_t *v)
{
	if (tdb_begin(d))
		return -1;
	if (tdb_exec_i64(d, sql, n, v) || tdb_commit(d)) {
		tdb_rollback(d);
		return -1;
	}
	return 0;
}

int trep_unsend_from(struct townd_db *d, int64_t seq)
{
	return one_tx(d, "UPDATE reports SET out_seq = 0 WHERE out_seq >= ?1", 1,
		      (int64_t[]){ seq });
}

int trep_rebase(struct townd_db *d, int64_t from, int64_t delta)
{
	return one_tx(d, "UPDATE reports SET out_seq = out_seq + ?2 WHERE out_seq >= ?1", 2,
		      (int64_t[]){ from, delta });
}

int trep_prune(struct townd_db *d, int64_t acked)
{
	int64_t n = 0;

	if (tdb_query_i64(d, "SELECT COUNT(*) FROM reports WHERE out_seq > 0 AND out_seq <= ?1",
			  1, (int64_t[]){ acked }, 0, &n))
		return -1;
	return n ? one_tx(d, "DELETE FROM reports WHERE out_seq > 0 AND out_seq <= ?1", 1,
			  (int64_t[]){ acked }) : 0;
}

int trep_drop_all(struct townd_db *d)
{
	int64_t n = 0;

	if (tdb_query_i64(d, "SELECT COUNT(*) FROM reports", 0, NULL, 0, &n))
		return -1;
	return n ? one_tx(d, "DELETE FROM reports", 0, NULL) : 0;
}

int trep_summary_store(struct townd_db *d, const struct gmp_msg *m, int64_t now)
{
	const int64_t v[] = { m->summary.month, m->summary.meters, m->summary.import_wh,
			      m->summary.export_wh, m->summary.renew_wh, m->summary.lent_wh,
			      m->summary.borrowed_wh, m->summary.admin_hours, m->summary.alarms,
			      m->summary.estimated_hours, m->summary.billed_minor, now };

	return one_tx(d, "INSERT INTO town_summaries (month, meters, import_wh, export_wh, "
		      "renew_wh, lent_wh, borrowed_wh, admin_hours, alarms, estimated_hours, "
		      "billed_minor, received) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
		      "?11, ?12) ON CONFLICT (month) DO UPDATE SET meters = excluded.meters, "
		      "import_wh = excluded.import_wh, export_wh = excluded.export_wh, "
		      "renew_wh = excluded.renew_wh, lent_wh = excluded.lent_wh, "
		      "borrowed_wh = excluded.borrowed_wh, admin_hours = excluded.admin_hours, "
		      "alarms = excluded.alarms, estimated_hours = excluded.estimated_hours, "
		      "billed_minor = excluded.billed_minor, received = excluded.received",
		      (int)(sizeof(v) / sizeof(v[0])), v);
}
