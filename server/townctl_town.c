// SPDX-License-Identifier: GPL-2.0
/*
 * townctl status and townctl price (issue 12): the upstream side of a
 * town server as its database shows it (Documentation/townd.md).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "townctl_town.h"
#include "townd_signed.h"
#include "townd_updb.h"

static void utc(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "%lld", (long long)t);
}

static int64_t stat_of(struct townd_db *d, const char *name)
{
	sqlite3_stmt *st;
	int64_t v = 0;

	if (sqlite3_prepare_v2(d->db, "SELECT value FROM stats WHERE name = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int townctl_status(struct townd_db *d, const struct townd_config *cfg, int64_t now)
{
	struct tup_status s;
	char t[32];

	if (tup_status(d, cfg->database, &s)) {
		fprintf(stderr, "townctl: %s\n", sqlite3_errmsg(d->db));
		return 1;
	}
	if (s.admin_since) {
		utc(s.admin_since, t);
		printf("mode administrative\nsince %s (%lld s)\n", t,
		       (long long)(now - s.admin_since));
	} else {
		printf("mode normal\n");
	}
	{
		char by[80];
		int64_t since = 0;
		int r = townd_town_stopped(d, &since, by, sizeof(by));

		if (r < 0) {
			fprintf(stderr, "townctl: %s\n", sqlite3_errmsg(d->db));
			return 1;
		}
		if (r) {
			utc(since, t);
			printf("town stopped by %s at %s: meters served and supplied, no new grants, "
			       "no loans\n", by, t);
		} else {
			printf("town running\n");
		}
	}
	if (cfg->up.enabled)
		printf("upstream town %u, outbox %s\n", cfg->up.town_id, cfg->up.outbox);
	else
		printf("upstream not configured: hours are built, nothing is sent\n");
	printf("backlog %lld records in the outbox not acknowledged, %lld hour rows not yet in "
	       "it\n", (long long)s.backlog, (long long)s.pending_rows);
	if (s.oldest_hour >= 0) {
		utc(s.oldest_hour, t);
		printf("oldest hour not acknowledged %s\n", t);
	} else {
		printf("oldest hour not acknowledged none\n");
	}
	printf("acknowledged up to record %lld\n", (long long)s.acked);
	if (s.supply_w >= 0) {
		utc(s.supply_at, t);
		printf("supply %lld W (set by the main server %s)\n", (long long)s.supply_w, t);
	} else {
		printf("supply not set by the main server\n");
	}
	if (s.kept_from) {
		char m[8];

		tdb_month(s.kept_from, m);
		printf("retention months before %s deleted\n", m);
	} else {
		printf("retention nothing deleted\n");
	}
	printf("disk database %lld bytes (%lld free), WAL %lld bytes, outbox %lld bytes\n",
	       (long long)s.db_bytes, (long long)s.free_bytes, (long long)s.wal_bytes,
	       (long long)stat_of(d, "disk_outbox_bytes"));
	printf("admin_entered %lld\nadmin_seconds %lld\n", (long long)stat_of(d, "admin_entered"),
	       (long long)stat_of(d, "admin_seconds"));
	return 0;
}

int townctl_price(struct townd_db *d, unsigned int id, int64_t now)
{
	int64_t from = tup_month_start(now), to = tup_month_next(from), milli, mwh, rows;
	char m[8];

	if (tup_price(d, id, from, to, &milli, &mwh, &rows)) {
		fprintf(stderr, "townctl: %s\n", sqlite3_errmsg(d->db));
		return 1;
	}
	tdb_month(from, m);
	/* milli-minor: 1234567 is 1234.567 minor units (e.g. pence) */
	printf("meter %u month %s hours %lld import_mwh %lld price_milli %lld\n", id, m,
	       (long long)rows, (long long)mwh, (long long)milli);
	return 0;
}
