// SPDX-License-Identifier: GPL-2.0
/* townd's side of the link to the main server (townd_upstream.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "townd_reports.h"
#include "townd_updb.h"
#include "townd_upstream.h"

__attribute__((format(printf, 2, 3)))
static void ulog(struct townd_upstream *u, const char *fmt, ...)
{
	va_list ap;

	(void)u;
	fputs("townd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int64_t real_now(void)
{
	return (int64_t)time(NULL);
}

/* ---- tier hooks ------------------------------------------------------------------------ */

static int on_command(void *ctx, const struct gmp_msg *m)
{
	struct townd_upstream *u = ctx;

	if (m->type == GMP_SIGNED) {
		int64_t id, tseq;

		if (!u->sig)
			return GMP_CMD_UNSUPPORTED;
		u->st.signed_commands++;
		/* the result to maind; where the command stands comes as GMP_CMD_REPORT */
		return townd_signed_handle(u->sig, m->signed_cmd.blob, (size_t)m->signed_cmd.len,
					   "main", real_now(), &id, &tseq);
	}
	if (m->type == GMP_TOWN_SUMMARY) {
		if (m->summary.month < 190001 || m->summary.month % 100 < 1 ||
		    m->summary.month % 100 > 12)
			return GMP_CMD_INVALID;
		if (trep_summary_store(u->db, m, real_now()))
			return GMP_CMD_STORAGE;
		ulog(u, "summary of %lld received from the main server",
		     (long long)m->summary.month);
		u->st.summaries++;
		return GMP_CMD_OK;
	}
	if (m->type != GMP_SUPPLY)
		return GMP_CMD_UNSUPPORTED;
	if (m->supply.capacity_w < 0)
		return GMP_CMD_INVALID;
	if (tup_supply_set(u->db, m->supply.capacity_w, m->supply.tseq, real_now())) {
		ulog(u, "supply: storing the grid capacity failed: the main server sends it again");
		return GMP_CMD_STORAGE;
	}
	ulog(u, "supply: the main server set the grid capacity to %lld W",
	     (long long)m->supply.capacity_w);
	u->st.supply_commands++;
	if (u->on_supply)
		u->on_supply(u->on_supply_ctx, m->supply.capacity_w);
	return GMP_CMD_OK;
}

static void on_welcome(void *ctx, const struct gmpc_welcome *w)
{
	struct townd_upstream *u = ctx;

	u->heard = true;
	/* the outbox renumbered its records: the hours' record numbers follow */
	if (w->rebase_delta && (tup_rebase(u->db, (int64_t)w->rebase_from,
					   (int64_t)w->rebase_delta) ||
				trep_rebase(u->db, (int64_t)w->rebase_from, (int64_t)w->rebase_delta)))
		u->db_failed = true;
}

static void on_acked(void *ctx, uint64_t acked)
{
	struct townd_upstream *u = ctx;
	int rc = sqlite3_exec(u->db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	u->heard = true;
	if (rc == SQLITE_OK && !tup_meta_set(u->db, "up_acked", (int64_t)acked) &&
	    sqlite3_exec(u->db->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return;
	sqlite3_exec(u->db->db, "ROLLBACK", NULL, NULL, NULL);
	u->db_failed = true;
}

static void on_log(void *ctx, int level, const char *msg)
{
	struct townd_upstream *u = ctx;

	(void)level;
	ulog(u, "%s", msg);
}

/* ---- set-up ---------------------------------------------------------------------------- */

int townd_upstream_init(struct townd_upstream *u, const struct townd_config *cfg,
			struct townd_db *db, const struct gmp_keypair *town_key, char *err,
			size_t errlen)
{
	const struct townd_tier_hooks hooks = { .ctx = u, .command = on_command,
						.welcome = on_welcome, .acked = on_acked,
						.log = on_log };
	struct townd_tier_config tc;
	int64_t since = 0;

	memset(u, 0, sizeof(*u));
	u->cfg = cfg;
	u->db = db;
	u->enabled = cfg->up.enabled;
	if (tup_meta_get(db, "admin_since", 0, &since)) {
		snprintf(err, errlen, "%s: %s", cfg->database, sqlite3_errmsg(db->db));
		return -1;
	}
	u->admin = since > 0;
	u->admin_since = since;
	if (!u->enabled)
		return 0;
	townd_tier_defaults(&tc);
	snprintf(tc.name, sizeof(tc.name), "upstream");
	tc.addr = cfg->up.addr;
	tc.addr_len = cfg->up.addr_len;
	tc.own_id = cfg->up.town_id;
	tc.key = *town_key;
	memcpy(tc.peer_pk, cfg->up.main_pk, GMP_KEY_LEN);
	snprintf(tc.outbox, sizeof(tc.outbox), "%s", cfg->up.outbox);
	tc.outbox_max_bytes = (uint64_t)cfg->up.outbox_max_mb << 20;
	tc.reconnect_max_ms = cfg->up.reconnect_max_s * 1000;
	if (tc.reconnect_min_ms > tc.reconnect_max_ms)
		tc.reconnect_min_ms = tc.reconnect_max_ms;
	if (townd_tier_open(&u->tier, &tc, &hooks, err, errlen)) {
		char e2[300];

		snprintf(e2, sizeof(e2), "%s", err);
		snprintf(err, errlen, "[upstream] %s", e2);
		memset(&tc.key, 0, sizeof(tc.key));
		return -1;
	}
	memset(&tc.key, 0, sizeof(tc.key));
	u->tier_open = true;
	/* intents of the last run that never reached the outbox are pending again */
	if (tup_unsend_from(db, (int64_t)gmpc_next(&u->tier.c)) ||
	    trep_unsend_from(db, (int64_t)gmpc_next(&u->tier.c)) ||
	    tup_meta_set(db, "up_acked", (int64_t)u->tier.ob.acked)) {
		snprintf(err, errlen, "%s: %s", cfg->database, sqlite3_errmsg(db->db));
		townd_upstream_free(u);
		return -1;
	}
	return 0;
}

void townd_upstream_free(struct townd_upstream *u)
{
	if (u->tier_open)
		townd_tier_close(&u->tier);
	u->tier_open = false;
}

void townd_upstream_attach(struct townd_upstream *u, int epfd, uint64_t token)
{
	if (u->tier_open)
		townd_tier_attach(&u->tier, epfd, token);
}

void townd_upstream_event(struct townd_upstream *u, uint32_t events, int64_t mono,
			  int64_t real)
{
	if (u->tier_open)
		townd_tier_event(&u->tier, events, mono, real * 1000);
}

int townd_supply_capacity(struct townd_db *db, int64_t *watts)
{
	return tup_supply_get(db, watts, NULL);
}

bool townd_upstream_busy(const struct townd_upstream *u)
{
	return u->building || u->sending || u->retaining;
}

/* ---- counters ---------------------------------------------------------------------------- */

int townd_upstream_save(struct townd_upstream *u)
{
	static const struct { const char *name; size_t off; } names[] = {
#define S(n) { #n, offsetof(struct townd_up_stats, n) }
		S(hours_sent), S(town_hours_sent), S(revisions), S(readings_built),
		S(admin_entered), S(admin_seconds), S(supply_commands), S(retention_rows),
		S(months_deleted), S(reports_sent), S(signed_commands), S(summaries),
#undef S
	};
	struct tup_status ts;
	bool any = false;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		any |= *(uint64_t *)((char *)&u->st + names[i].off) !=
		       *(uint64_t *)((char *)&u->st_saved + names[i].off);
	if (sqlite3_exec(u->db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	for (size_t i = 0; any && i < sizeof(names) / sizeof(names[0]); i++) {
		uint64_t now = *(uint64_t *)((char *)&u->st + names[i].off);
		uint64_t was = *(uint64_t *)((char *)&u->st_saved + names[i].off);

		if (now != was && tdb_add_stat(u->db, names[i].name, now - was))
			goto fail;
	}
	/* gauges: the disk */
	if (tup_status(u->db, u->cfg->database, &ts) ||
	    tup_stat_set(u->db, "disk_db_bytes", ts.db_bytes) ||
	    tup_stat_set(u->db, "disk_wal_bytes", ts.wal_bytes) ||
	    tup_stat_set(u->db, "disk_outbox_bytes",
			 u->tier_open ? (int64_t)u->tier.ob.bytes : 0) ||
	    tup_stat_set(u->db, "upstream_backlog",
			 u->tier_open ? (int64_t)gmpc_backlog(&u->tier.c) : 0) ||
	    tup_meta_set(u->db, "up_backlog",
			 u->tier_open ? (int64_t)gmpc_backlog(&u->tier.c) : 0))
		goto fail;
	if (sqlite3_exec(u->db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	u->st_saved = u->st;
	return 0;
fail:
	sqlite3_exec(u->db->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* ---- administrative mode ------------------------------------------------------------------ */

static int set_mode(struct townd_upstream *u, bool admin, int64_t real, int64_t backlog,
		    int64_t pending)
{
	char msg[300];
	int rc;

	if (admin)
		snprintf(msg, sizeof(msg), "administrative mode: entered (no acknowledgement or "
			 "session from the main server for %u s; %lld records and %lld hour rows "
			 "wait)", u->cfg->up.admin_after_s, (long long)backlog, (long long)pending);
	else
		snprintf(msg, sizeof(msg), "administrative mode: left after %lld s (everything "
			 "acknowledged by the main server)", (long long)(real - u->admin_since));
	if (sqlite3_exec(u->db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	/* the edge, its counter and its journal line together: a kill right
	 * after loses none, and a reader never sees the mode without its line */
	rc = tup_meta_set(u->db, "admin_since", admin ? real : 0) ||
	     (admin && tdb_add_stat(u->db, "admin_entered", 1)) ||
	     tdb_journal(u->db, 0, real, msg);
	if (rc || sqlite3_exec(u->db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(u->db->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	ulog(u, "%s", msg);
	if (admin) {
		u->st.admin_entered++;
		u->st_saved.admin_entered++;	/* written above */
	}
	u->admin = admin;
	u->admin_since = admin ? real : 0;
	return 0;
}

static int mode(struct townd_upstream *u, int64_t mono, int64_t real)
{
	int64_t backlog = (int64_t)gmpc_backlog(&u->tier.c), pending = 0;
	bool up = townd_tier_up(&u->tier);

	if (u->heard || (up && !backlog))
		u->last_ok_ms = mono;
	u->heard = false;
	if (u->admin) {
		u->admin_ms += mono - u->last_tick_ms;
		u->st.admin_seconds += (uint64_t)(u->admin_ms / 1000);
		u->admin_ms %= 1000;
	}
	if (!u->admin && mono - u->last_ok_ms >= (int64_t)u->cfg->up.admin_after_s * 1000) {
		if (tup_pending_closed(u->db, real, u->cfg->town.hour_grace_s, &pending))
			return -1;
		return set_mode(u, true, real, backlog, pending);
	}
	if (u->admin && up && !backlog && !u->building && !u->sending) {
		/* nothing closed waits to go either */
		if (tup_pending_closed(u->db, real, u->cfg->town.hour_grace_s, &pending))
			return -1;
		if (!pending)
			return set_mode(u, false, real, 0, 0);
	}
	return 0;
}

/* ---- work ---------------------------------------------------------------------------------- */

static int build(struct townd_upstream *u)
{
	size_t built = 0;

	if (tup_build(u->db, th_offset_localtime, NULL, TOWND_UP_BUILD_CHUNK, &built))
		return -1;
	u->st.readings_built += built;
	u->building = built == TOWND_UP_BUILD_CHUNK;
	return 0;
}

static int send_batches(struct townd_upstream *u, int64_t mono, int64_t real)
{
	struct gmp_msg msgs[TOWND_UP_SEND_BATCH];

	u->sending = false;
	for (int b = 0; b < TOWND_UP_SEND_BATCHES; b++) {
		int64_t seq = (int64_t)gmpc_next(&u->tier.c);
		int n;

		if (u->tier.c.n_tail)
			return 0;	/* the disk refuses the outbox: wait */
		n = tup_next_batch(u->db, real, u->cfg->town.hour_grace_s, u->admin, seq, msgs,
				   TOWND_UP_SEND_BATCH);
		if (n < 0)
			return -1;
		for (int i = 0; i < n; i++) {
			int rc = townd_tier_record(&u->tier, &msgs[i]);

			if (rc < 0 || gmp_msg_seq(&msgs[i]) != seq + i) {
				ulog(u, "upstream: the outbox refused hour records (%s): sent later",
				     rc < 0 ? strerror(-rc) : "numbering");
				return tup_unsend_from(u->db, seq + i);
			}
			if (msgs[i].type == GMP_HOUR) {
				u->st.hours_sent++;
				u->st.revisions += msgs[i].hour.rev > 0;
			} else {
				u->st.town_hours_sent++;
				u->st.revisions += msgs[i].town_hour.rev > 0;
			}
		}
		if (n && townd_tier_sync(&u->tier)) {
			ulog(u, "upstream: the outbox could not sync its records: sent later");
			return tup_unsend_from(u->db, seq);
		}
		if (n)
			townd_tier_pump(&u->tier, mono, real * 1000);
		if (!n)
			return 0;	/* a batch is one hour's: only an empty one means done */
	}
	u->sending = true;
	return 0;
}

/*
 * The town's reports (townd_reports.h) into the outbox, every tick: a
 * command's state or an alarm goes at once, not with the next hours.
 * Acknowledged ones are deleted.
 */
static int send_reports(struct townd_upstream *u, int64_t mono, int64_t real)
{
	struct gmp_msg msgs[TOWND_UP_SEND_BATCH];

	if (trep_prune(u->db, (int64_t)u->tier.ob.acked))
		return -1;
	for (int b = 0; b < TOWND_UP_SEND_BATCHES; b++) {
		int64_t seq = (int64_t)gmpc_next(&u->tier.c);
		int n;

		if (u->tier.c.n_tail)
			return 0;	/* the disk refuses the outbox: wait */
		n = trep_next_batch(u->db, seq, msgs, TOWND_UP_SEND_BATCH);
		if (n <= 0)
			return n;
		for (int i = 0; i < n; i++) {
			int rc = townd_tier_record(&u->tier, &msgs[i]);

			if (rc < 0 || gmp_msg_seq(&msgs[i]) != seq + i) {
				ulog(u, "upstream: the outbox refused reports (%s): sent later",
				     rc < 0 ? strerror(-rc) : "numbering");
				return trep_unsend_from(u->db, seq + i);
			}
			u->st.reports_sent++;
		}
		if (townd_tier_sync(&u->tier)) {
			ulog(u, "upstream: the outbox could not sync reports: sent later");
			return trep_unsend_from(u->db, seq);
		}
		townd_tier_pump(&u->tier, mono, real * 1000);
		if (n < TOWND_UP_SEND_BATCH)
			return 0;
	}
	return 0;
}

static int retain(struct townd_upstream *u, int64_t real)
{
	int64_t deleted = 0, done = 0;
	int r = tup_retention_step(u->db, real, u->cfg->town.hour_grace_s,
				   (int64_t)u->tier.ob.acked, u->cfg->town.retention_chunk,
				   &deleted, &done);

	if (r < 0)
		return -1;
	u->retaining = r > 0;
	u->st.retention_rows += (uint64_t)deleted;
	if (done)
		u->st.months_deleted++;
	return 0;
}

int townd_upstream_tick(struct townd_upstream *u, int64_t mono, int64_t real)
{
	bool interval;

	if (u->db_failed || u->db->in_tx)
		return u->db_failed ? -1 : 0;
	if (!u->last_tick_ms) {
		u->last_tick_ms = mono;
		u->last_ok_ms = mono;
		u->next_send_ms = mono;
		u->stats_due_ms = mono + (int64_t)u->cfg->stats_interval_s * 1000;
	}
	interval = mono >= u->next_send_ms;
	if (interval)
		u->next_send_ms = mono + (int64_t)u->cfg->up.interval_s * 1000;
	if ((interval || u->building) && build(u))
		return -1;
	if (!u->enabled && trep_drop_all(u->db))
		return -1;	/* no main server: nobody to report to */
	if (u->enabled) {
		townd_tier_tick(&u->tier, mono, real * 1000);
		if (send_reports(u, mono, real))
			return -1;
		if (!u->building && (interval || u->sending) && send_batches(u, mono, real))
			return -1;
		if (mode(u, mono, real))
			return -1;
		if ((interval || u->retaining) && !u->building && !u->sending && retain(u, real))
			return -1;
	}
	u->last_tick_ms = mono;
	if (mono >= u->stats_due_ms || interval) {
		u->stats_due_ms = mono + (int64_t)u->cfg->stats_interval_s * 1000;
		if (townd_upstream_save(u))
			return -1;
	}
	return u->db_failed ? -1 : 0;
}
