// SPDX-License-Identifier: GPL-2.0
/*
 * mainctl: maind's operator tool (Documentation/maind.md). Talks to
 * PostgreSQL directly; read-only reports may go to a hot standby
 * (report_conninfo in maind.conf, or --standby CONNINFO).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "gmproto.h"
#include "maind_config.h"
#include "mainctl_parts.h"
#include "maind_pg.h"
#include "parse.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: mainctl [-c maind.conf] [-d CONNINFO] [--standby CONNINFO] COMMAND\n"
		"  schema                       create or check the schema\n"
		"  keygen FILE                  a new key file for maind; prints its public key\n"
		"  add-town ID PUBKEY NAME      provision a town (PUBKEY: 64 hex digits)\n"
		"  towns                        towns, mode as seen, last hour, backlog\n"
		"  hours TOWN [METER]           hours received (the newest 200)\n"
		"  supply TOWN WATTS            queue a grid capacity command for a town\n"
		"  loans                        loans between towns as reported\n");
	mctl_bill_usage();
	mctl_notice_usage();
	mctl_cmd_usage();
	mctl_alert_usage();
	mctl_web_usage();
}

static PGconn *connect_or_die(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "mainctl: PostgreSQL: %s", PQerrorMessage(c));
		PQfinish(c);
		exit(1);
	}
	return c;
}

static PGresult *run(PGconn *c, const char *sql, int n, const char *const *v)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		fprintf(stderr, "mainctl: %s", PQresultErrorMessage(r));
		PQclear(r);
		PQfinish(c);
		exit(1);
	}
	return r;
}

static int bump_changes(PGconn *c)
{
	PQclear(run(c, "UPDATE settings SET value = value + 1 WHERE key = 'changes'", 0, NULL));
	return 0;
}

int main(int argc, char **argv)
{
	const char *cfgpath = NULL, *conninfo = NULL, *standby = NULL;
	struct maind_config cfg;
	char err[768], silent[24];
	const char *cmd;
	PGconn *c;
	int i = 1;

	if (sodium_init() < 0)
		return 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc)
			cfgpath = argv[++i];
		else if (!strcmp(argv[i], "-d") && i + 1 < argc)
			conninfo = argv[++i];
		else if (!strcmp(argv[i], "--standby") && i + 1 < argc)
			standby = argv[++i];
		else {
			usage();
			return 2;
		}
	}
	if (i >= argc) {
		usage();
		return 2;
	}
	cmd = argv[i++];
	if (!strcmp(cmd, "keygen")) {
		struct gmp_keypair kp;
		char hex[2 * GMP_KEY_LEN + 1];

		if (i + 1 != argc) {
			usage();
			return 2;
		}
		if (maind_key_create(argv[i], &kp, err, sizeof(err))) {
			fprintf(stderr, "mainctl: %s\n", err);
			return 1;
		}
		gmp_hex_encode(kp.pk, GMP_KEY_LEN, hex);
		sodium_memzero(&kp, sizeof(kp));
		printf("%s\n", hex);
		return 0;
	}
	if (!strcmp(cmd, "op-keygen"))	/* on an operator's machine: no database */
		return mctl_cmd(NULL, cmd, argc - i, argv + i);
	maind_config_defaults(&cfg);
	if (!conninfo || cfgpath) {
		if (maind_config_load(&cfg, cfgpath ? cfgpath : "/etc/gridmeter/maind.conf", err,
				      sizeof(err))) {
			fprintf(stderr, "mainctl: %s\n", err);
			return 1;
		}
		if (!conninfo)
			conninfo = cfg.conninfo;
		if (!standby && cfg.report_conninfo[0])
			standby = cfg.report_conninfo;
	}
	snprintf(silent, sizeof(silent), "%u", cfg.silent_after_s);
	if (!strcmp(cmd, "schema") && i == argc) {
		c = connect_or_die(conninfo);
		if (mpg_schema(c, err, sizeof(err))) {
			fprintf(stderr, "mainctl: %s\n", err);
			PQfinish(c);
			return 1;
		}
		printf("schema version %d\n", MPG_SCHEMA_VERSION);
	} else if (!strcmp(cmd, "add-town") && i + 3 == argc) {
		uint32_t id;
		uint8_t pk[GMP_KEY_LEN];
		const char *v[3] = { argv[i], argv[i + 1], argv[i + 2] };

		if (parse_u32(argv[i], 1, 65534, &id)) {
			fprintf(stderr, "mainctl: town id '%s' is not 1..65534\n", argv[i]);
			return 2;
		}
		if (gmp_hex_decode(argv[i + 1], pk, GMP_KEY_LEN)) {
			fprintf(stderr, "mainctl: public key '%s' is not %d hex digits\n",
				argv[i + 1], 2 * GMP_KEY_LEN);
			return 2;
		}
		c = connect_or_die(conninfo);
		if (mpg_schema(c, err, sizeof(err))) {
			fprintf(stderr, "mainctl: %s\n", err);
			return 1;
		}
		PQclear(run(c, "BEGIN", 0, NULL));
		PQclear(run(c, "INSERT INTO towns (id, pk, name) VALUES ($1, decode($2, 'hex'), $3) "
			    "ON CONFLICT (id) DO UPDATE SET pk = EXCLUDED.pk, name = EXCLUDED.name, "
			    "pk_next = NULL, revoked = false", 3, v));
		PQclear(run(c, "INSERT INTO journal (town, what) VALUES ($1, 'provisioned: ' || $2)",
			    2, (const char *const[]){ argv[i], argv[i + 2] }));
		bump_changes(c);
		PQclear(run(c, "COMMIT", 0, NULL));
	} else if (!strcmp(cmd, "supply") && i + 2 == argc) {
		uint32_t id;
		uint64_t w;
		PGresult *r;

		if (parse_u32(argv[i], 1, 65534, &id) || parse_u64(argv[i + 1], 0, 1ull << 40, &w)) {
			fprintf(stderr, "mainctl: supply TOWN WATTS: a town id and 0..%llu watts\n",
				1ull << 40);
			return 2;
		}
		c = connect_or_die(conninfo);
		PQclear(run(c, "BEGIN", 0, NULL));
		r = run(c, "SELECT 1 FROM towns WHERE id = $1 FOR UPDATE", 1,
			(const char *const[]){ argv[i] });
		if (PQntuples(r) != 1) {
			fprintf(stderr, "mainctl: no town %s\n", argv[i]);
			PQclear(r);
			PQfinish(c);
			return 1;
		}
		PQclear(r);
		/* a newer capacity supersedes one not yet delivered */
		PQclear(run(c, "UPDATE commands SET status = 100, result_at = now() WHERE town = $1 "
			    "AND type = 20 AND status IS NULL AND sent IS NULL", 1,
			    (const char *const[]){ argv[i] }));
		r = run(c, "INSERT INTO commands (town, tseq, type, capacity_w) SELECT $1, "
			"GREATEST(COALESCE((SELECT MAX(tseq) FROM commands WHERE town = $1), 0), "
			"(SELECT cmd_floor FROM towns WHERE id = $1)) + 1, 20, $2 RETURNING tseq", 2,
			(const char *const[]){ argv[i], argv[i + 1] });
		printf("queued: town %s supply %s W, command %s\n", argv[i], argv[i + 1],
		       PQgetvalue(r, 0, 0));
		PQclear(r);
		PQclear(run(c, "COMMIT", 0, NULL));
	} else if (!strcmp(cmd, "towns") && i == argc) {
		c = connect_or_die(standby ? standby : conninfo);
		mctl_table(run(c, "SELECT id, name, CASE "
			  "WHEN last_seen IS NULL THEN 'never seen' "
			  "WHEN extract(epoch FROM now())::bigint - last_seen > $1::bigint THEN "
			  "'administrative (silent since ' || to_char(to_timestamp(last_seen) AT "
			  "TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC)' "
			  "WHEN COALESCE(hello_next_seq, 1) - 1 > upto THEN 'catching up' "
			  "ELSE 'normal' END AS mode, "
			  "to_char(last_hour AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00') AS last_hour, "
			  "GREATEST(COALESCE(hello_next_seq, 1) - 1 - upto, 0) AS backlog, "
			  "upto AS records, "
			  "to_char(last_admin_hour AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00') AS "
			  "last_admin_hour FROM towns ORDER BY id", 1,
			  (const char *const[]){ silent }));
	} else if (!strcmp(cmd, "hours") && (i + 1 == argc || i + 2 == argc)) {
		const char *v[2] = { argv[i], i + 2 == argc ? argv[i + 1] : NULL };

		c = connect_or_die(standby ? standby : conninfo);
		mctl_table(run(c, "SELECT * FROM (SELECT meter, to_char(hour AT TIME ZONE 'UTC', "
			  "'YYYY-MM-DD HH24:00') AS hour, period, import_mwh, export_mwh, renew_mwh, "
			  "readings, to_hex(flags) AS flags, rev FROM meter_hours WHERE town = $1 "
			  "AND ($2::integer IS NULL OR meter = $2) ORDER BY hour DESC, meter, period "
			  "LIMIT 200) h ORDER BY hour, meter, period", 2, v));
	} else if (!strcmp(cmd, "loans") && i == argc) {
		c = connect_or_die(standby ? standby : conninfo);
		mctl_table(run(c, "SELECT town AS reported_by, lender, loan_id, borrower, power_w, "
			  "to_char(until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS until, "
			  "CASE state WHEN 0 THEN 'open' WHEN 1 THEN 'returned' WHEN 2 THEN "
			  "'expired' ELSE 'cancelled' END AS state FROM loans ORDER BY lender, "
			  "loan_id, town", 0, NULL));
	} else {
		const struct mainctl_ctx x = { conninfo, standby ? standby : conninfo, &cfg };
		int (*const parts[])(const struct mainctl_ctx *, const char *, int, char **) = {
			mctl_bill, mctl_notice, mctl_cmd, mctl_alert, mctl_web,
		};

		for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
			int rc = parts[k](&x, cmd, argc - i, argv + i);

			if (rc != -2)
				return rc;
		}
		usage();
		return 2;
	}
	PQfinish(c);
	return 0;
}
