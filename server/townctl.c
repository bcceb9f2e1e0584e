// SPDX-License-Identifier: GPL-2.0
/*
 * townctl: provisioning and inspection of a town server's database
 * (Documentation/townd.md).
 *
 *   townctl [-c CONFIG] init-key            create the server key file
 *   townctl [-c CONFIG] pubkey              print the server public key
 *   townctl [-c CONFIG] provision ID [NAME] new meter key pair; prints the
 *                                           meter's provisioning material
 *   townctl [-c CONFIG] add ID PUBKEY [NAME] meter that made its own key
 *   townctl [-c CONFIG] show [ID]           what each meter last reported
 *   townctl [-c CONFIG] stats               server counters
 *   townctl [-c CONFIG] tariff ID EFFECTIVE MIN:IMPORT:EXPORT...
 *                                           queue a tariff (UTC seconds; minute
 *                                           of day, milli-minor units per kWh)
 *   townctl [-c CONFIG] grant ID REQ_ID WATTS UNTIL
 *                                           queue an allocation grant
 *   townctl schema                          the SQL schema
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "townd_config.h"
#include "townd_core.h"
#include "townd_db.h"

static int usage(void)
{
	fprintf(stderr, "usage: townctl [-c CONFIG] init-key | pubkey | provision ID [NAME] |\n"
		"       add ID PUBKEY [NAME] | show [ID] | stats | schema |\n"
		"       tariff ID EFFECTIVE MIN:IMPORT:EXPORT... | grant ID REQ_ID WATTS UNTIL\n");
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

static int show(struct townd_db *d, unsigned int only)
{
	sqlite3_stmt *st;
	char month[8];
	int rc;

	tdb_month((int64_t)time(NULL), month);
	rc = sqlite3_prepare_v2(d->db,
		"SELECT m.id, COALESCE(m.name, ''), m.last_seen, m.acked_upto, m.rejected, "
		"r.seq, r.start, r.interval_s, r.import_mwh, r.export_mwh, r.renew_mwh, "
		"t.import_mwh, t.export_mwh, t.readings "
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
		printf(": last seen ");
		if (sqlite3_column_type(st, 2) == SQLITE_NULL)
			printf("never");
		else
			print_time(sqlite3_column_int64(st, 2));
		printf(", stored up to #%lld, rejected %lld\n",
		       (long long)sqlite3_column_int64(st, 3), (long long)sqlite3_column_int64(st, 4));
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
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : 1;
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
	if (!strcmp(cmd, "provision") || !strcmp(cmd, "add")) {
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
			struct gmp_session probe;

			if (gmp_session_town(&probe, &town, meter.pk)) {
				fprintf(stderr, "townctl: unusable public key\n");
				rc = 1;
				goto out;
			}
			gmp_session_wipe(&probe);
		}
		if (tdb_add_meter(&db, id, meter.pk, name, (int64_t)time(NULL), err, sizeof(err))) {
			fprintf(stderr, "townctl: %s\n", err);
			rc = 1;
			goto out;
		}
		if (prov) {
			/* for meterd.conf's [uplink] section (Documentation/protocol.md) */
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
	} else if (!strcmp(cmd, "stats")) {
		rc = a == argc ? stats(&db) : usage();
	} else {
		rc = usage();
	}
out:
	sodium_memzero(&town, sizeof(town));
	tdb_close(&db);
	return rc;
}
