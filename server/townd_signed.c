// SPDX-License-Identifier: GPL-2.0
/* Operator-signed commands at the town (townd_signed.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "townd_signed.h"
#include "townd_updb.h"

int townd_signed_init(struct townd_signed *s, const struct townd_config *cfg,
		      struct townd_db *db, char *err, size_t errlen)
{
	char dir[sizeof(cfg->database)];

	memset(s, 0, sizeof(*s));
	s->db = db;
	s->town = cfg->up.enabled ? cfg->up.town_id : 0;
	s->pol.two_above = cfg->cmd.two_above;
	s->disconnects_per_hour = cfg->cmd.disconnects_per_hour;
	if (cfg->cmd.operator_keys[0] &&
	    gmc_keyset_load(&s->keys, cfg->cmd.operator_keys, err, errlen))
		return -1;
	snprintf(dir, sizeof(dir), "%s", cfg->database);
	snprintf(s->seen_path, sizeof(s->seen_path), "%s/signed.seen", dirname(dir));
	return gmc_seen_load(&s->seen, s->seen_path, err, errlen);
}

const char *townd_cmd_state_name(int state)
{
	static const char *const n[] = { "received", "delivered", "executed", "refused",
					 "expired" };

	return state >= 0 && state <= GMP_CS_EXPIRED ? n[state] : "?";
}

const char *townd_cmd_status_name(int status)
{
	static const char *const n[] = { "ok", "duplicate", "unsupported", "expired", "invalid",
					 "storage", "bad-signature", "unknown-key", "replay",
					 "needs-two", "wrong-target", "rate", "not-yet",
					 "refused" };

	return status >= 0 && status <= GMP_CMD_REFUSED ? n[status] : "?";
}

/* The command's row (kept if one with its id exists: the first one stands). */
static int row(struct townd_signed *s, const struct gmc_cmd *c, const char *signers,
	       const char *via, int64_t now, int64_t tseq, int state, int status)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db->db, "INSERT INTO signed_cmds (id, action, meter, arg, issued, "
			       "expires, signers, via, received, tseq, state, status, updated) "
			       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?9) "
			       "ON CONFLICT (id) DO NOTHING", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, (int64_t)c->id);
	sqlite3_bind_int(st, 2, c->action);
	sqlite3_bind_int(st, 3, c->meter);
	sqlite3_bind_int64(st, 4, c->arg);
	sqlite3_bind_int64(st, 5, c->issued);
	sqlite3_bind_int64(st, 6, c->expires);
	sqlite3_bind_text(st, 7, signers, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 8, via, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, now);
	sqlite3_bind_int64(st, 10, tseq);
	sqlite3_bind_int(st, 11, state);
	sqlite3_bind_int(st, 12, status);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Refused by the town (or expired before it could go on): row, report, count. */
static int refuse(struct townd_signed *s, const struct gmc_cmd *c, const char *signers,
		  const char *via, int64_t now, int status)
{
	int state = status == GMP_CMD_EXPIRED ? GMP_CS_EXPIRED : GMP_CS_REFUSED;

	if (tdb_begin(s->db))
		return GMP_CMD_STORAGE;
	if ((c && row(s, c, signers, via, now, 0, state, status)) ||
	    trep_cmd(s->db, now, c ? (int64_t)c->id : 0, c ? c->meter : 0, state, status) ||
	    tdb_commit(s->db)) {
		tdb_rollback(s->db);
		return GMP_CMD_STORAGE;
	}
	if (s->sec)
		townd_sec_count(s->sec, c ? c->meter : 0, 0, GMP_SEC_CMD_REFUSED, now);
	fprintf(stderr, "townd: signed command %" PRIu64 " (%s, meter %u, from %s, signed by %s) "
		"refused: %s\n", c ? c->id : 0, c ? gmc_action_name(c->action) : "undecodable",
		c ? c->meter : 0, via, signers, townd_cmd_status_name(status));
	return status;
}

static bool id_known(struct townd_db *d, uint64_t id)
{
	int64_t n = 1;

	tdb_query_i64(d, "SELECT COUNT(*) FROM signed_cmds WHERE id = ?1", 1,
		      (int64_t[]){ (int64_t)id }, 1, &n);
	return n > 0;
}

static int town_action(struct townd_signed *s, const struct gmc_cmd *c, const char *signers,
		       const char *via, int64_t now)
{
	char err[300], what[200];
	int st = s->keys.n ? gmc_verify(c, &s->keys, &s->pol, s->town, 0, now)
			   : GMP_CMD_UNKNOWN_KEY;

	if (!st && (gmc_seen_has(&s->seen, c->id) || id_known(s->db, c->id)))
		st = GMP_CMD_REPLAY;
	if (!st && gmc_seen_add(&s->seen, c->id, c->expires, now))
		st = GMP_CMD_REFUSED;	/* the memory is full of live ids */
	if (st)
		return refuse(s, c, signers, via, now, st);
	/* remembered on disk before anything is done: a power cut cannot make it run twice */
	if (gmc_seen_save(&s->seen, s->seen_path, err, sizeof(err))) {
		fprintf(stderr, "townd: %s: signed command %" PRIu64 " not carried out\n", err,
			c->id);
		gmc_seen_load(&s->seen, s->seen_path, err, sizeof(err));
		return GMP_CMD_STORAGE;
	}
	if (tdb_begin(s->db))
		return GMP_CMD_STORAGE;
	if (c->action == GMC_TOWN_STOP) {
		snprintf(what, sizeof(what), "town stopped by %s (signed command %" PRIu64 ", via %s)",
			 signers, c->id, via);
		st = tup_meta_set(s->db, "town_stopped", now) ||
		     tup_meta_set(s->db, "town_stop_cmd", (int64_t)c->id);
	} else if (c->action == GMC_TOWN_START) {
		snprintf(what, sizeof(what), "town started by %s (signed command %" PRIu64 ", via %s)",
			 signers, c->id, via);
		st = tup_meta_set(s->db, "town_stopped", 0) ||
		     tup_meta_set(s->db, "town_stop_cmd", 0);
	} else {
		snprintf(what, sizeof(what), "town supply set to %" PRId64 " W by %s (signed command "
			 "%" PRIu64 ", via %s)", c->arg, signers, c->id, via);
		st = tup_supply_set(s->db, c->arg, 0, now);
	}
	if (st || tdb_journal(s->db, 0, now, what) ||
	    row(s, c, signers, via, now, 0, GMP_CS_EXECUTED, GMP_CMD_OK) ||
	    trep_cmd(s->db, now, (int64_t)c->id, 0, GMP_CS_EXECUTED, GMP_CMD_OK) ||
	    tdb_bump_changes(s->db) || tdb_commit(s->db)) {
		tdb_rollback(s->db);
		fprintf(stderr, "townd: signed command %" PRIu64 ": database: %s (not carried out; "
			"its id stays remembered)\n", c->id, sqlite3_errmsg(s->db->db));
		return GMP_CMD_STORAGE;
	}
	fprintf(stderr, "townd: %s\n", what);
	if (c->action == GMC_TOWN_SUPPLY) {
		if (s->supply)
			s->supply(s->ctx, c->arg);
	} else if (s->stopped) {
		s->stopped(s->ctx, c->action == GMC_TOWN_STOP);
	}
	return GMP_CMD_OK;
}

static int meter_action(struct townd_signed *s, const struct gmc_cmd *c, const uint8_t *blob,
			size_t len, const char *signers, const char *via, int64_t now,
			int64_t *tseq)
{
	struct gmp_msg m = { .type = GMP_SIGNED };
	struct townd_meter_row mr;
	int64_t n = 0;
	int st = 0;

	if (c->action < GMC_DISCONNECT || c->action > GMC_REKEY)
		st = GMP_CMD_INVALID;
	else if (s->town && c->town != s->town)
		st = GMP_CMD_WRONG_TARGET;
	else if (tdb_get_meter(s->db, c->meter, &mr) != 1 || mr.revoked)
		st = GMP_CMD_WRONG_TARGET;	/* no such meter here */
	else if (now >= c->expires)
		st = GMP_CMD_EXPIRED;
	else if (id_known(s->db, c->id))
		st = GMP_CMD_REPLAY;
	else if (c->action == GMC_DISCONNECT &&
		 (tdb_query_i64(s->db, "SELECT COUNT(*) FROM signed_cmds WHERE action = ?1 AND "
				"meter != 0 AND tseq > 0 AND received > ?2", 2,
				(int64_t[]){ GMC_DISCONNECT, now - 3600 }, 0, &n) ||
		  n >= (int64_t)s->disconnects_per_hour))
		st = GMP_CMD_RATE;
	if (st)
		return refuse(s, c, signers, via, now, st);
	m.signed_cmd.len = (int64_t)len;
	memcpy(m.signed_cmd.blob, blob, len);
	if (tdb_begin(s->db))
		return GMP_CMD_STORAGE;
	if (tdb_queue_in_tx(s->db, c->meter, &m, now, tseq) ||
	    row(s, c, signers, via, now, *tseq, GMP_CS_DELIVERED, GMP_CMD_OK) ||
	    trep_cmd(s->db, now, (int64_t)c->id, c->meter, GMP_CS_DELIVERED, GMP_CMD_OK) ||
	    tdb_commit(s->db)) {
		tdb_rollback(s->db);
		*tseq = 0;
		return GMP_CMD_STORAGE;
	}
	fprintf(stderr, "townd: signed command %" PRIu64 " (%s, signed by %s, via %s) queued for "
		"meter %u as #%" PRId64 "\n", c->id, gmc_action_name(c->action), signers, via,
		c->meter, *tseq);
	if (s->queued)
		s->queued(s->ctx, c->meter);
	return GMP_CMD_OK;
}

int townd_signed_handle(struct townd_signed *s, const uint8_t *blob, size_t len,
			const char *via, int64_t now, int64_t *cmd_id, int64_t *tseq)
{
	struct gmc_cmd c;
	char signers[2 * GMC_NAME_MAX + 2];

	*cmd_id = 0;
	*tseq = 0;
	if (!len || len > GMP_BLOB_MAX || gmc_decode(blob, len, &c))
		return refuse(s, NULL, "nobody", via, now, GMP_CMD_INVALID);
	*cmd_id = (int64_t)c.id;
	gmc_signers(&c, &s->keys, signers, sizeof(signers));
	if (!c.meter)
		return town_action(s, &c, signers, via, now);
	return meter_action(s, &c, blob, len, signers, via, now, tseq);
}

int townd_signed_result(struct townd_db *d, unsigned int meter, int64_t tseq, int64_t status,
			int64_t now)
{
	int64_t id = 0, was = 0;
	int state;

	if (tdb_query_i64(d, "SELECT id FROM signed_cmds WHERE meter = ?1 AND tseq = ?2 AND "
			  "state IN (1, 4)", 2, (int64_t[]){ meter, tseq }, 0, &id) ||
	    tdb_query_i64(d, "SELECT state FROM signed_cmds WHERE id = ?1", 1, (int64_t[]){ id },
			  0, &was))
		return -1;
	/* reported expired already (the meter had it, its answer was late): only news count */
	if (!id || status == GMP_CMD_STORAGE || (was == GMP_CS_EXPIRED && status == GMP_CMD_EXPIRED))
		return 0;
	/*
	 * DUPLICATE: the meter handled this tseq before and its result was
	 * lost; what it did is not known here: refused with that status.
	 */
	state = status == GMP_CMD_OK ? GMP_CS_EXECUTED :
		status == GMP_CMD_EXPIRED ? GMP_CS_EXPIRED : GMP_CS_REFUSED;
	if (tdb_exec_i64(d, "UPDATE signed_cmds SET state = ?2, status = ?3, updated = ?4 "
			 "WHERE id = ?1", 4, (int64_t[]){ id, state, status, now }) ||
	    trep_cmd(d, now, id, meter, state, (int)status))
		return -1;
	return state == GMP_CS_EXECUTED ? 1 : 2;
}

int townd_signed_tick(struct townd_signed *s, int64_t now)
{
	int64_t due = 0, ids[64], meters[64], tseqs[64], sent[64];
	sqlite3_stmt *st;
	size_t n = 0;

	if (now == s->ticked)
		return 0;
	s->ticked = now;
	if (tdb_query_i64(s->db, "SELECT COUNT(*) FROM signed_cmds WHERE state = 1 AND "
			  "expires <= ?1", 1, (int64_t[]){ now }, 0, &due))
		return -1;
	if (!due)
		return 0;
	/*
	 * No result before its expiry. One never sent is withdrawn; one sent
	 * stays in the queue, so that a late answer of the meter still
	 * settles it (EXECUTED if it took it in time; the meter refuses it
	 * EXPIRED otherwise).
	 */
	st = tdb_prepare_i64(s->db, "SELECT s.id, s.meter, s.tseq, o.sent IS NOT NULL FROM "
			     "signed_cmds s JOIN outgoing o ON o.meter = s.meter AND o.tseq = s.tseq "
			     "WHERE s.state = 1 AND s.expires <= ?1 AND (o.status IS NULL OR "
			     "o.status = 5) LIMIT 64", 1, (int64_t[]){ now });
	if (!st)
		return -1;
	while (n < 64 && sqlite3_step(st) == SQLITE_ROW) {
		ids[n] = sqlite3_column_int64(st, 0);
		meters[n] = sqlite3_column_int64(st, 1);
		tseqs[n] = sqlite3_column_int64(st, 2);
		sent[n++] = sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	if (!n)
		return 0;
	if (tdb_begin(s->db))
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((!sent[i] && tdb_exec_i64(s->db, "UPDATE outgoing SET status = ?3, result_at = ?4 "
					      "WHERE meter = ?1 AND tseq = ?2", 4,
					      (int64_t[]){ meters[i], tseqs[i], GMP_CMD_EXPIRED,
							   now })) ||
		    tdb_exec_i64(s->db, "UPDATE signed_cmds SET state = ?2, status = ?3, updated = ?4 "
				 "WHERE id = ?1", 4,
				 (int64_t[]){ ids[i], GMP_CS_EXPIRED, GMP_CMD_EXPIRED, now }) ||
		    trep_cmd(s->db, now, ids[i], (unsigned int)meters[i], GMP_CS_EXPIRED,
			     GMP_CMD_EXPIRED)) {
			tdb_rollback(s->db);
			return -1;
		}
	if (tdb_commit(s->db)) {
		tdb_rollback(s->db);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "townd: signed command %" PRId64 " for meter %" PRId64 " expired "
			"before the meter took it\n", ids[i], meters[i]);
	return 0;
}

int townd_town_stopped(struct townd_db *d, int64_t *since, char *by, size_t bylen)
{
	int64_t id = 0;
	sqlite3_stmt *st;

	if (bylen)
		snprintf(by, bylen, "?");
	if (tup_meta_get(d, "town_stopped", 0, since) || tup_meta_get(d, "town_stop_cmd", 0, &id))
		return -1;
	if (!*since)
		return 0;
	st = tdb_prepare_i64(d, "SELECT signers FROM signed_cmds WHERE id = ?1", 1,
			     (int64_t[]){ id });
	if (st && sqlite3_step(st) == SQLITE_ROW && bylen)
		snprintf(by, bylen, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return 1;
}

static void utc(int64_t t, char out[24])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(out, 24, "%Y-%m-%d %H:%M:%SZ", &tm))
		snprintf(out, 24, "%" PRId64, t);
}

int townd_signed_print(struct townd_db *d, FILE *out, unsigned int id)
{
	sqlite3_stmt *st = tdb_prepare_i64(d, "SELECT id, action, meter, arg, expires, signers, "
					   "via, received, tseq, state, status, updated FROM "
					   "signed_cmds WHERE ?1 = 0 OR meter = ?1 ORDER BY "
					   "received DESC, rowid DESC LIMIT 200", 1,
					   (int64_t[]){ id });
	int rc, n = 0;

	if (!st)
		return 1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char rec[24], exp[24], upd[24];
		int action = sqlite3_column_int(st, 1), meter = sqlite3_column_int(st, 2);

		if (!n++)
			fprintf(out, "signed commands (newest first):\n");
		utc(sqlite3_column_int64(st, 7), rec);
		utc(sqlite3_column_int64(st, 4), exp);
		utc(sqlite3_column_int64(st, 11), upd);
		fprintf(out, "  %" PRId64 " %s", (int64_t)sqlite3_column_int64(st, 0),
			gmc_action_name(action));
		if (action == GMC_TOWN_SUPPLY)
			fprintf(out, " %" PRId64 " W", (int64_t)sqlite3_column_int64(st, 3));
		if (meter)
			fprintf(out, " meter %d (#%" PRId64 ")", meter,
				(int64_t)sqlite3_column_int64(st, 8));
		else
			fprintf(out, " town");
		fprintf(out, " signed by %s via %s, received %s, expires %s: %s",
			(const char *)sqlite3_column_text(st, 5),
			(const char *)sqlite3_column_text(st, 6), rec, exp,
			townd_cmd_state_name(sqlite3_column_int(st, 9)));
		if (sqlite3_column_int(st, 9) != GMP_CS_DELIVERED &&
		    sqlite3_column_int(st, 9) != GMP_CS_EXECUTED)
			fprintf(out, " (%s)", townd_cmd_status_name(sqlite3_column_int(st, 10)));
		fprintf(out, " at %s\n", upd);
	}
	sqlite3_finalize(st);
	if (!n)
		fprintf(out, "no signed commands\n");
	return rc == SQLITE_DONE ? 0 : 1;
}

int townd_summary_print(struct townd_db *d, FILE *out, int64_t month)
{
	sqlite3_stmt *st = tdb_prepare_i64(d, "SELECT month, meters, import_wh, export_wh, renew_wh, "
					   "lent_wh, borrowed_wh, admin_hours, alarms, "
					   "estimated_hours, billed_minor, received FROM "
					   "town_summaries WHERE ?1 = 0 OR month = ?1 ORDER BY "
					   "month DESC", 1, (int64_t[]){ month });
	int rc, n = 0;

	if (!st)
		return 1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t v[12];
		char rec[24];

		for (int i = 0; i < 12; i++)
			v[i] = sqlite3_column_int64(st, i);
		utc(v[11], rec);
		fprintf(out, "%s%04" PRId64 "-%02" PRId64 " (from the main server, %s)\n"
			"  meters billed     %" PRId64 "\n"
			"  import            %" PRId64 " Wh\n"
			"  export            %" PRId64 " Wh\n"
			"  renewable         %" PRId64 " Wh\n"
			"  lent / borrowed   %" PRId64 " / %" PRId64 " Wh\n"
			"  admin hours       %" PRId64 "\n"
			"  alarms            %" PRId64 "\n"
			"  estimated hours   %" PRId64 "\n"
			"  billed            %" PRId64 " minor units\n", n++ ? "\n" : "",
			v[0] / 100, v[0] % 100, rec, v[1], v[2], v[3], v[4], v[5], v[6], v[7],
			v[8], v[9], v[10]);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return 1;
	if (!n) {
		if (month)
			fprintf(out, "no summary of %04" PRId64 "-%02" PRId64 " yet\n", month / 100,
				month % 100);
		else
			fprintf(out, "no summaries yet (the main server sends each month's)\n");
		return month ? 1 : 0;
	}
	return 0;
}

int townd_signed_read_file(const char *path, uint8_t *blob, size_t size, size_t *len,
			   char *err, size_t errlen)
{
	char buf[2 * GMP_BLOB_MAX + 8], hex[2 * GMP_BLOB_MAX + 1];
	size_t nh = 0;
	ssize_t n;
	bool is_hex = true;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0 || (size_t)n == sizeof(buf)) {
		snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) :
			 n ? "too long for a signed command" : "empty");
		return -1;
	}
	for (ssize_t i = 0; i < n && is_hex; i++) {
		if (isxdigit((unsigned char)buf[i]))
			hex[nh++] = buf[i];
		else if (!isspace((unsigned char)buf[i]))
			is_hex = false;
	}
	if (is_hex && nh && nh % 2 == 0 && nh / 2 <= size) {
		hex[nh] = '\0';
		*len = nh / 2;
		return gmp_hex_decode(hex, blob, *len) ? -1 : 0;
	}
	if ((size_t)n > size) {
		snprintf(err, errlen, "%s: too long for a signed command", path);
		return -1;
	}
	memcpy(blob, buf, (size_t)n);
	*len = (size_t)n;
	return 0;
}
