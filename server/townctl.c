// SPDX-License-Identifier: GPL-2.0
/*
 * townctl: provisioning and inspection of a town server's database
 * (Documentation/townd.md).
 *
 *   townctl [-c CONFIG] init-key            create the server key file
 *   townctl [-c CONFIG] pubkey              print the server public key
 *   townctl [-c CONFIG] add ID PUBKEY [NAME] a meter that made its own key
 *                                           (meterd --generate-key): the normal way
 *   townctl [-c CONFIG] provision ID [NAME] factories: a new meter key pair; prints
 *                                           the meter's key file (secret included)
 *   townctl [-c CONFIG] revoke ID           refuse the meter from now on
 *   townctl [-c CONFIG] replace ID PUBKEY   new hardware for meter ID
 *   townctl [-c CONFIG] rotate-town-key     next town key; town-key commands queued
 *   townctl [-c CONFIG] rotate-town-key --finish [--force]
 *                                           the next key becomes the key
 *   townctl [-c CONFIG] show [ID]           what each meter last reported, key state
 *   townctl [-c CONFIG] commands [ID]       commands and their outcome, signed
 *                                           commands and where they stand
 *   townctl [-c CONFIG] stats               server counters
 *   townctl [-c CONFIG] loans               loans with neighbour towns (lent, relayed,
 *                                           borrowed), live ones first
 *   townctl [-c CONFIG] status              mode (normal / administrative), backlog
 *                                           to the main server, supply, disk use
 *   townctl [-c CONFIG] price ID            price so far of this month (milli-minor)
 *   townctl [-c CONFIG] tariff ID EFFECTIVE MIN:IMPORT:EXPORT...
 *                                           queue a tariff (UTC seconds; minute
 *                                           of day, milli-minor units per kWh)
 *   townctl [-c CONFIG] grant ID REQ_ID WATTS UNTIL
 *                                           queue an allocation grant
 *   townctl [-c CONFIG] alloc [N]           allocation: pool, requests, offers,
 *                                           grants, shortfall, last N decisions (20)
 *   townctl [-c CONFIG] signed-queue ID FILE
 *                                           queue an operator-signed command (the
 *                                           file mainctl wrote: bytes or hex) for
 *                                           meter ID, which verifies it itself
 *   townctl [-c CONFIG] summary [YYYYMM]    the town's monthly summaries from the
 *                                           main server
 *   townctl schema                          the SQL schema
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "townd_alloc_db.h"
#include "townd_config.h"
#include "townd_core.h"
#include "townd_db.h"
#include "townd_loans_db.h"
#include "townd_signed.h"
#include "townctl_town.h"

static int usage(void)
{
	fprintf(stderr, "usage: townctl [-c CONFIG] init-key | pubkey | add ID PUBKEY [NAME] |\n"
		"       add-list FILE|- |\n"
		"       provision ID [NAME] | revoke ID | replace ID PUBKEY |\n"
		"       rotate-town-key [--finish [--force]] | show [ID] | commands [ID] |\n"
		"       stats | status | price ID | schema | loans |\n"
		"       tariff ID EFFECTIVE MIN:IMPORT:EXPORT... |\n"
		"       grant ID REQ_ID WATTS UNTIL | alloc [N] |\n"
		"       signed-queue ID FILE | summary [YYYYMM]\n");
	return 2;
}

static int parse_id(const char *s, unsigned int *id)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v < 1 || v > 65534) {
		fprintf(stderr, "townctl: meter id '%s' is not 1..65534\n", s);
		return -1;
	}
	*id = (unsigned int)v;
	return 0;
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || end == s)
		return -1;
	*out = v;
	return 0;
}

/* tariff/grant: build the message from argv[a..]; -1 on a bad argument. */
static int command_msg(const char *cmd, int argc, char **argv, int a, struct gmp_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (!strcmp(cmd, "grant")) {
		m->type = GMP_GRANT;
		m->grant.tseq = 1;	/* assigned by tdb_queue */
		return argc - a == 3 && !parse_i64(argv[a], &m->grant.req_id) &&
		       !parse_i64(argv[a + 1], &m->grant.granted_w) &&
		       !parse_i64(argv[a + 2], &m->grant.until) ? 0 : -1;
	}
	m->type = GMP_TARIFF;
	m->tariff.tseq = 1;
	if (argc - a < 2 || argc - a - 1 > GMP_TARIFF_MAX || parse_i64(argv[a], &m->tariff.effective))
		return -1;
	for (int i = a + 1; i < argc; i++) {
		long long mn, imp, exp;
		char tail;

		if (sscanf(argv[i], "%lld:%lld:%lld%c", &mn, &imp, &exp, &tail) != 3)
			return -1;
		m->tariff.p[m->tariff.n].start_min = mn;
		m->tariff.p[m->tariff.n].import_price = imp;
		m->tariff.p[m->tariff.n].export_price = exp;
		m->tariff.n++;
	}
	return 0;
}

static void print_time(int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		printf("%s", buf);
	else
		printf("%lld", (long long)t);
}

static const char *cmd_state(sqlite3_stmt *st, int sent_col, int status_col)
{
	if (sqlite3_column_type(st, status_col) == SQLITE_NULL)
		return sqlite3_column_type(st, sent_col) == SQLITE_NULL ? "queued" : "delivered";
	switch (sqlite3_column_int(st, status_col)) {
	case GMP_CMD_OK: return "applied";
	case GMP_CMD_DUPLICATE: return "applied (the meter had it)";
	case GMP_CMD_UNSUPPORTED: return "refused (unsupported)";
	case GMP_CMD_EXPIRED: return "refused (expired)";
	case GMP_CMD_INVALID: return "refused (invalid)";
	case GMP_CMD_STORAGE: return "delivered (the meter could not store it: resent)";
	case TDB_CMD_SUPERSEDED: return "superseded (issued again)";
	case TDB_CMD_V1_ACKED: return "acknowledged (version-1 meter)";
	default: {
		int s = sqlite3_column_int(st, status_col);

		/* a signed command the meter refused: why */
		return s > GMP_CMD_STORAGE && s <= GMP_CMD_REFUSED ? townd_cmd_status_name(s) :
		       "refused (unknown reason)";
	}
	}
}

/*
 * townctl add-list FILE ("-": standard input): one meter a line, "ID PUBKEY
 * [NAME]" as for add ('#' comments and blank lines skipped), all in one
 * transaction: every meter or none (a town enrolling a street of meters,
 * or a test provisioning hundreds). A bad line names file and line.
 */
static int add_list(struct townd_db *db, const struct gmp_keypair *town, const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char line[512], err[256];
	unsigned int n = 0, lineno = 0;
	int rc = 0;

	if (!f) {
		fprintf(stderr, "townctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (tdb_begin(db)) {
		fprintf(stderr, "townctl: %s\n", sqlite3_errmsg(db->db));
		rc = 1;
		goto out;
	}
	while (!rc && fgets(line, sizeof(line), f)) {
		char *id_s, *pk_s, *name, *end, *save = NULL;
		uint8_t pk[GMP_KEY_LEN];
		struct gmp_lt probe;
		unsigned long v;
		unsigned int id;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			fprintf(stderr, "townctl: %s:%u: line too long\n", path, lineno);
			rc = 1;
			break;
		}
		line[strcspn(line, "\r\n#")] = 0;
		id_s = strtok_r(line, " \t", &save);
		if (!id_s)
			continue;
		pk_s = strtok_r(NULL, " \t", &save);
		name = strtok_r(NULL, "", &save);
		if (name) {
			name += strspn(name, " \t");
			name[strcspn(name, "\t")] = 0;
			for (size_t k = strlen(name); k && name[k - 1] == ' '; k--)
				name[k - 1] = 0;
			if (!*name)
				name = NULL;
		}
		errno = 0;
		v = strtoul(id_s, &end, 10);
		if (errno || *end || v < 1 || v > 65534) {
			fprintf(stderr, "townctl: %s:%u: '%s' is not a meter id (1..65534)\n", path,
				lineno, id_s);
			rc = 1;
		} else if (id = (unsigned int)v, !pk_s || strlen(pk_s) != 2 * GMP_KEY_LEN ||
			   gmp_hex_decode(pk_s, pk, GMP_KEY_LEN)) {
			fprintf(stderr, "townctl: %s:%u: meter %u: the public key is not 64 hex "
				"digits\n", path, lineno, id);
			rc = 1;
		} else {
			int bad = gmp_lt_town(&probe, town, pk);

			gmp_lt_wipe(&probe);
			if (bad) {
				fprintf(stderr, "townctl: %s:%u: meter %u: unusable public key\n",
					path, lineno, id);
				rc = 1;
			} else if (tdb_add_meter(db, id, pk, name, (int64_t)time(NULL), err,
						 sizeof(err))) {
				fprintf(stderr, "townctl: %s:%u: %s\n", path, lineno, err);
				rc = 1;
			} else {
				n++;
			}
		}
	}
	if (!rc && ferror(f)) {
		fprintf(stderr, "townctl: %s: %s\n", path, strerror(errno));
		rc = 1;
	}
	if (!rc && tdb_commit(db)) {
		fprintf(stderr, "townctl: %s\n", sqlite3_errmsg(db->db));
		rc = 1;
	}
	if (rc) {
		tdb_rollback(db);
		fprintf(stderr, "townctl: %s: nothing added\n", path);
	} else {
		printf("%u meters added\n", n);
	}
out:
	if (f != stdin)
		fclose(f);
	return rc;
}

static int show(struct townd_db *d, unsigned int only)
{
	sqlite3_stmt *st;
	char month[8];
	int rc;

	tdb_month((int64_t)time(NULL), month);
	rc = sqlite3_prepare_v2(d->db,
		"SELECT m.id, COALESCE(m.name, ''), m.last_seen, m.acked_upto, m.rejected, "
		"r.seq, r.start, r.interval_s, r.import_mwh, r.export_mwh, r.renew_mwh, "
		"t.import_mwh, t.export_mwh, t.readings, m.pk, m.pk_next, m.revoked, "
		"m.reg_import, m.reg_export, m.reg_renew, m.reg_time, m.cmd_floor, "
		"(SELECT COUNT(*) FROM outgoing o WHERE o.meter = m.id AND (o.status IS NULL "
		"OR o.status = 5)) "
		"FROM meters m "
		"LEFT JOIN readings r ON r.meter = m.id AND r.seq = "
		"  (SELECT MAX(seq) FROM readings WHERE meter = m.id) "
		"LEFT JOIN month_totals t ON t.meter = m.id AND t.month = ? "
		"WHERE ? = 0 OR m.id = ? ORDER BY m.id", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "townctl: %s\n", sqlite3_errmsg(d->db));
		return 1;
	}
	sqlite3_bind_text(st, 1, month, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)only);
	sqlite3_bind_int(st, 3, (int)only);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		printf("meter %d", sqlite3_column_int(st, 0));
		if (*sqlite3_column_text(st, 1))
			printf(" (%s)", sqlite3_column_text(st, 1));
		printf(": ");
		if (sqlite3_column_type(st, 16) != SQLITE_NULL) {
			printf("REVOKED ");
			print_time(sqlite3_column_int64(st, 16));
			printf(", ");
		}
		printf("last seen ");
		if (sqlite3_column_type(st, 2) == SQLITE_NULL)
			printf("never");
		else
			print_time(sqlite3_column_int64(st, 2));
		printf(", stored up to #%lld, rejected %lld\n",
		       (long long)sqlite3_column_int64(st, 3), (long long)sqlite3_column_int64(st, 4));
		printf("  key %.16s...%s%.16s%s\n", sqlite3_column_text(st, 14),
		       sqlite3_column_type(st, 15) != SQLITE_NULL ? ", next key announced " : "",
		       sqlite3_column_type(st, 15) != SQLITE_NULL ?
		       (const char *)sqlite3_column_text(st, 15) : "",
		       sqlite3_column_type(st, 15) != SQLITE_NULL ? "... (rotation under way)" : "");
		if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
			printf("  last reading #%lld: ", (long long)sqlite3_column_int64(st, 5));
			print_time(sqlite3_column_int64(st, 6));
			printf(" +%llds import %lld mWh export %lld mWh renewable %lld mWh\n",
			       (long long)sqlite3_column_int64(st, 7),
			       (long long)sqlite3_column_int64(st, 8),
			       (long long)sqlite3_column_int64(st, 9),
			       (long long)sqlite3_column_int64(st, 10));
		}
		if (sqlite3_column_type(st, 13) != SQLITE_NULL)
			printf("  %s: import %lld mWh export %lld mWh in %lld readings\n", month,
			       (long long)sqlite3_column_int64(st, 11),
			       (long long)sqlite3_column_int64(st, 12),
			       (long long)sqlite3_column_int64(st, 13));
		if (sqlite3_column_int64(st, 20)) {
			printf("  register view: import %lld mWh export %lld mWh renewable %lld mWh "
			       "at ", (long long)sqlite3_column_int64(st, 17),
			       (long long)sqlite3_column_int64(st, 18),
			       (long long)sqlite3_column_int64(st, 19));
			print_time(sqlite3_column_int64(st, 20));
			printf("\n");
		}
		printf("  commands: floor #%lld, %lld pending\n",
		       (long long)sqlite3_column_int64(st, 21), (long long)sqlite3_column_int64(st, 22));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : 1;
}

static int commands(struct townd_db *d, unsigned int only)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(d->db, "SELECT meter, tseq, type, created, sent, status, "
			       "result_at FROM outgoing WHERE ? = 0 OR meter = ? "
			       "ORDER BY meter, tseq", -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "townctl: %s\n", sqlite3_errmsg(d->db));
		return 1;
	}
	sqlite3_bind_int(st, 1, (int)only);
	sqlite3_bind_int(st, 2, (int)only);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		printf("meter %d #%lld %s, queued ", sqlite3_column_int(st, 0),
		       (long long)sqlite3_column_int64(st, 1),
		       gmp_type_name(sqlite3_column_int(st, 2)));
		print_time(sqlite3_column_int64(st, 3));
		printf(": %s", cmd_state(st, 4, 5));
		if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
			printf(" ");
			print_time(sqlite3_column_int64(st, 6));
		} else if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
			printf(" ");
			print_time(sqlite3_column_int64(st, 4));
		}
		printf("\n");
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : 1;
}

/* "KEY_FILE.next" */
static void next_path(const struct townd_config *cfg, char *out, size_t n)
{
	snprintf(out, n, "%s.next", cfg->key_file);
}

/* Queue town-key commands with the next key to every meter not revoked. */
static int rotate_start(struct townd_db *d, const struct townd_config *cfg)
{
	struct gmp_keypair next;
	char path[300], err[512], hex[2 * GMP_KEY_LEN + 1];
	sqlite3_stmt *st;
	int rc, n = 0, bad = 0;

	next_path(cfg, path, sizeof(path));
	gmp_keypair_generate(&next);
	if (townd_key_write(path, &next, err, sizeof(err))) {
		fprintf(stderr, "townctl: %s (a rotation under way? finish it with "
			"rotate-town-key --finish)\n", err);
		sodium_memzero(&next, sizeof(next));
		return 1;
	}
	if (sqlite3_prepare_v2(d->db, "SELECT id FROM meters WHERE revoked IS NULL ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return 1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct gmp_msg m = { .type = GMP_TOWN_KEY, .town_key = { .tseq = 1 } };
		unsigned int id = (unsigned int)sqlite3_column_int(st, 0);

		memcpy(m.town_key.pk, next.pk, GMP_KEY_LEN);
		if (tdb_queue(d, id, &m, (int64_t)time(NULL), err, sizeof(err))) {
			fprintf(stderr, "townctl: meter %u: %s\n", id, err);
			bad++;
		} else {
			n++;
		}
	}
	sqlite3_finalize(st);
	gmp_hex_encode(next.pk, GMP_KEY_LEN, hex);
	sodium_memzero(&next, sizeof(next));
	printf("next town key %s in %s; town-key commands queued for %d meter(s)\n"
	       "townd accepts handshakes under both keys until rotate-town-key --finish\n",
	       hex, path, n);
	return bad || rc != SQLITE_DONE ? 1 : 0;
}

/* Every meter not revoked applied the town-key command for pk? Lists those that did not. */
static int rotation_missing(struct townd_db *d, const uint8_t pk[GMP_KEY_LEN])
{
	sqlite3_stmt *st;
	int missing = 0, rc;

	if (sqlite3_prepare_v2(d->db, "SELECT m.id, o.tseq, o.body, o.sent, o.status FROM "
			       "meters m LEFT JOIN outgoing o ON o.meter = m.id AND o.type = 19 "
			       "WHERE m.revoked IS NULL ORDER BY m.id, o.tseq DESC", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	for (int last = -1; (rc = sqlite3_step(st)) == SQLITE_ROW;) {
		int id = sqlite3_column_int(st, 0);
		const char *hex = (const char *)sqlite3_column_text(st, 2);
		uint8_t body[GMP_PLAIN_MAX];
		size_t n = hex ? strlen(hex) / 2 : 0, off = 0;
		struct gmp_msg m;
		bool ok;

		if (id == last)
			continue;	/* only the newest town-key command of each meter */
		last = id;
		ok = hex && n <= sizeof(body) && !gmp_hex_decode(hex, body, n) &&
		     gmp_decode_next(body, n, &off, &m) == 1 && m.type == GMP_TOWN_KEY &&
		     !memcmp(m.town_key.pk, pk, GMP_KEY_LEN) &&
		     sqlite3_column_type(st, 4) != SQLITE_NULL &&
		     (sqlite3_column_int(st, 4) == GMP_CMD_OK ||
		      sqlite3_column_int(st, 4) == GMP_CMD_DUPLICATE);
		if (ok)
			continue;
		missing++;
		printf("meter %d: %s\n", id, !hex ? "no town-key command" :
		       cmd_state(st, 3, 4));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? missing : -1;
}

static int rotate_finish(struct townd_db *d, const struct townd_config *cfg, bool force)
{
	struct gmp_keypair next;
	char path[300], err[512], dir[300], *slash;
	int missing, fd;

	next_path(cfg, path, sizeof(path));
	if (townd_key_load(path, &next, err, sizeof(err))) {
		fprintf(stderr, "townctl: %s (no rotation under way?)\n", err);
		return 1;
	}
	missing = rotation_missing(d, next.pk);
	sodium_memzero(&next, sizeof(next));
	if (missing < 0) {
		fprintf(stderr, "townctl: %s\n", sqlite3_errmsg(d->db));
		return 1;
	}
	if (missing && !force) {
		fprintf(stderr, "townctl: %d meter(s) have not applied the next town key; "
			"they could not reach townd after the switch. Wait, or --force\n", missing);
		return 1;
	}
	if (rename(path, cfg->key_file)) {
		fprintf(stderr, "townctl: %s -> %s: %s\n", path, cfg->key_file, strerror(errno));
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s", cfg->key_file);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	if (tdb_bump_changes(d) ||
	    tdb_journal(d, 0, (int64_t)time(NULL), force && missing ?
			"town key rotated (forced: some meters had not applied it)" :
			"town key rotated"))
		fprintf(stderr, "townctl: %s (restart townd to use the new key)\n",
			sqlite3_errmsg(d->db));
	printf("the next town key is the town key now%s\n", missing ?
	       "; the meters listed above can no longer connect until they get it" : "");
	return 0;
}

static int stats(struct townd_db *d)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(d->db, "SELECT name, value FROM stats ORDER BY name", -1, &st,
			       NULL) != SQLITE_OK)
		return 1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		printf("%s %lld\n", sqlite3_column_text(st, 0),
		       (long long)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : 1;
}

/* Loans between towns, as townd last saved them (Documentation/town-network.md). */
static int loans(struct townd_db *db)
{
	if (tln_print(db, stdout)) {
		fprintf(stderr, "townctl: loans: %s\n", sqlite3_errmsg(db->db));
		return 1;
	}
	return 0;
}

/*
 * townctl signed-queue: an operator on site (or in administrative mode,
 * when the main server cannot be reached) queues a command the operators
 * signed for meter id, with the town's checks (townd_signed_handle). The
 * meter verifies it exactly as one from the main server.
 */
static int signed_queue(struct townd_db *d, const struct townd_config *cfg, unsigned int id,
			const char *path)
{
	uint8_t blob[GMP_BLOB_MAX];
	struct townd_signed *s = malloc(sizeof(*s));
	struct gmc_cmd c;
	char err[400];
	int64_t cmd_id, tseq;
	size_t len;
	int st;

	if (!s)
		return 1;
	if (townd_signed_init(s, cfg, d, err, sizeof(err)) ||
	    townd_signed_read_file(path, blob, sizeof(blob), &len, err, sizeof(err))) {
		fprintf(stderr, "townctl: %s\n", err);
		free(s);
		return 1;
	}
	if (gmc_decode(blob, len, &c) || c.meter != id) {
		fprintf(stderr, "townctl: %s: %s\n", path, gmc_decode(blob, len, &c) ?
			"not a signed command" : "the command is for another meter");
		free(s);
		return 1;
	}
	st = townd_signed_handle(s, blob, len, "townctl", (int64_t)time(NULL), &cmd_id, &tseq);
	free(s);
	if (st != GMP_CMD_OK) {
		fprintf(stderr, "townctl: signed command %lld refused: %s\n", (long long)cmd_id,
			townd_cmd_status_name(st));
		return 1;
	}
	printf("signed command %lld (%s) queued for meter %u as #%lld\n", (long long)cmd_id,
	       gmc_action_name(c.action), id, (long long)tseq);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = "/etc/gridmeter/townd.conf", *cmd;
	struct townd_config cfg;
	struct gmp_keypair town, meter;
	struct townd_db db;
	char err[512], hex[2 * GMP_KEY_LEN + 1];
	unsigned int id = 0;
	int a = 1, rc = 0;

	if (argc > 2 && !strcmp(argv[1], "-c")) {
		path = argv[2];
		a = 3;
	}
	if (a >= argc)
		return usage();
	cmd = argv[a++];
	if (!strcmp(cmd, "schema")) {
		fputs(townd_schema_sql, stdout);
		fputs(townd_alloc_schema_sql, stdout);
		return 0;
	}
	if (sodium_init() < 0)
		return 1;
	if (townd_config_load(&cfg, path, err, sizeof(err))) {
		fprintf(stderr, "townctl: %s\n", err);
		return 1;
	}
	if (!strcmp(cmd, "init-key")) {
		if (a != argc)
			return usage();
		gmp_keypair_generate(&town);
		if (townd_key_write(cfg.key_file, &town, err, sizeof(err))) {
			fprintf(stderr, "townctl: %s\n", err);
			return 1;
		}
		gmp_hex_encode(town.pk, GMP_KEY_LEN, hex);
		printf("town_public_key = %s\n", hex);
		sodium_memzero(&town, sizeof(town));
		return 0;
	}
	if (townd_key_load(cfg.key_file, &town, err, sizeof(err))) {
		fprintf(stderr, "townctl: %s\n", err);
		return 1;
	}
	if (!strcmp(cmd, "pubkey")) {
		gmp_hex_encode(town.pk, GMP_KEY_LEN, hex);
		printf("%s\n", hex);
		return 0;
	}
	if (tdb_open(&db, cfg.database, cfg.sync_full, err, sizeof(err))) {
		fprintf(stderr, "townctl: %s\n", err);
		return 1;
	}
	if (!strcmp(cmd, "add-list")) {
		rc = a + 1 == argc ? add_list(&db, &town, argv[a]) : usage();
	} else if (!strcmp(cmd, "provision") || !strcmp(cmd, "add")) {
		int prov = cmd[0] == 'p';
		const char *name;

		if (a >= argc || parse_id(argv[a++], &id)) {
			rc = usage();
			goto out;
		}
		if (prov) {
			gmp_keypair_generate(&meter);
		} else if (a >= argc || gmp_hex_decode(argv[a++], meter.pk, GMP_KEY_LEN)) {
			fprintf(stderr, "townctl: add needs the meter's public key (64 hex digits)\n");
			rc = 2;
			goto out;
		}
		name = a < argc ? argv[a++] : NULL;
		if (a != argc) {
			rc = usage();
			goto out;
		}
		{
			struct gmp_lt probe;

			if (gmp_lt_town(&probe, &town, meter.pk)) {
				fprintf(stderr, "townctl: unusable public key\n");
				rc = 1;
				goto out;
			}
			gmp_lt_wipe(&probe);
		}
		if (tdb_add_meter(&db, id, meter.pk, name, (int64_t)time(NULL), err, sizeof(err))) {
			fprintf(stderr, "townctl: %s\n", err);
			rc = 1;
			goto out;
		}
		if (prov) {
			/* the factory path: the meter's key file (Documentation/meterd.md) */
			printf("meter_id = %u\n", id);
			gmp_hex_encode(meter.sk, GMP_KEY_LEN, hex);
			printf("meter_secret_key = %s\n", hex);
			gmp_hex_encode(town.pk, GMP_KEY_LEN, hex);
			printf("town_public_key = %s\n", hex);
			sodium_memzero(&meter, sizeof(meter));
			sodium_memzero(hex, sizeof(hex));
		} else {
			printf("meter %u added\n", id);
		}
	} else if (!strcmp(cmd, "show")) {
		if (a < argc && parse_id(argv[a++], &id)) {
			rc = 2;
			goto out;
		}
		rc = a == argc ? show(&db, id) : usage();
	} else if (!strcmp(cmd, "tariff") || !strcmp(cmd, "grant")) {
		struct gmp_msg m;

		if (a >= argc || parse_id(argv[a++], &id) || command_msg(cmd, argc, argv, a, &m)) {
			rc = usage();
			goto out;
		}
		if (tdb_queue(&db, id, &m, (int64_t)time(NULL), err, sizeof(err))) {
			fprintf(stderr, "townctl: %s\n", err);
			rc = 1;
			goto out;
		}
		printf("%s #%lld queued for meter %u\n", cmd, (long long)(m.type == GMP_GRANT ?
		       m.grant.tseq : m.tariff.tseq), id);
	} else if (!strcmp(cmd, "alloc")) {
		long n = a < argc ? strtol(argv[a++], NULL, 10) : 20;

		if (a != argc || n < 0 || n > 100000) {
			rc = usage();
			goto out;
		}
		rc = tdb_alloc_print(&db, stdout, (int)n) ? 1 : 0;
	} else if (!strcmp(cmd, "commands")) {
		if (a < argc && parse_id(argv[a++], &id)) {
			rc = 2;
			goto out;
		}
		rc = a == argc ? commands(&db, id) : usage();
		if (!rc)
			rc = townd_signed_print(&db, stdout, id);
	} else if (!strcmp(cmd, "signed-queue")) {
		rc = a + 2 == argc && !parse_id(argv[a], &id) ?
		     signed_queue(&db, &cfg, id, argv[a + 1]) : usage();
	} else if (!strcmp(cmd, "summary")) {
		int64_t month = 0;

		if (a < argc && (parse_i64(argv[a++], &month) || month < 190001 ||
				 month % 100 < 1 || month % 100 > 12)) {
			fprintf(stderr, "townctl: summary: the month is YYYYMM (e.g. 202603)\n");
			rc = 2;
			goto out;
		}
		rc = a == argc ? townd_summary_print(&db, stdout, month) : usage();
	} else if (!strcmp(cmd, "revoke")) {
		if (a >= argc || parse_id(argv[a++], &id) || a != argc) {
			rc = usage();
			goto out;
		}
		if (tdb_revoke(&db, id, (int64_t)time(NULL), err, sizeof(err))) {
			fprintf(stderr, "townctl: %s\n", err);
			rc = 1;
			goto out;
		}
		printf("meter %u revoked: townd refuses it from now on\n", id);
	} else if (!strcmp(cmd, "replace")) {
		struct gmp_lt probe;

		if (a >= argc || parse_id(argv[a++], &id) || a >= argc ||
		    gmp_hex_decode(argv[a++], meter.pk, GMP_KEY_LEN) || a != argc) {
			fprintf(stderr, "townctl: replace needs the meter id and the new hardware's "
				"public key (64 hex digits)\n");
			rc = 2;
			goto out;
		}
		if (gmp_lt_town(&probe, &town, meter.pk)) {
			fprintf(stderr, "townctl: unusable public key\n");
			rc = 1;
			goto out;
		}
		gmp_lt_wipe(&probe);
		if (tdb_replace(&db, id, meter.pk, (int64_t)time(NULL), err, sizeof(err))) {
			fprintf(stderr, "townctl: %s\n", err);
			rc = 1;
			goto out;
		}
		printf("meter %u replaced: its records continue, its register view starts again\n",
		       id);
	} else if (!strcmp(cmd, "rotate-town-key")) {
		bool finish = false, force = false;

		for (; a < argc; a++) {
			if (!strcmp(argv[a], "--finish"))
				finish = true;
			else if (!strcmp(argv[a], "--force"))
				force = true;
			else
				break;
		}
		if (a != argc || (force && !finish)) {
			rc = usage();
			goto out;
		}
		rc = finish ? rotate_finish(&db, &cfg, force) : rotate_start(&db, &cfg);
	} else if (!strcmp(cmd, "stats")) {
		rc = a == argc ? stats(&db) : usage();
	} else if (!strcmp(cmd, "status")) {
		rc = a == argc ? townctl_status(&db, &cfg, (int64_t)time(NULL)) : usage();
	} else if (!strcmp(cmd, "price")) {
		if (a >= argc || parse_id(argv[a++], &id) || a != argc) {
			rc = usage();
			goto out;
		}
		rc = townctl_price(&db, id, (int64_t)time(NULL));
	} else if (!strcmp(cmd, "loans")) {
		rc = a == argc ? loans(&db) : usage();
	} else {
		rc = usage();
	}
out:
	sodium_memzero(&town, sizeof(town));
	tdb_close(&db);
	return rc;
}
