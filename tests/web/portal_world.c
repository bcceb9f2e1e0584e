// SPDX-License-Identifier: GPL-2.0
/*
 * portal_world: the utility portal's browser-test fixture (issue 14,
 * tests/web/README). A main server's database with something in it, and
 * maind-portal serving it.
 *
 * Usage (from the top of the tree, after `make web-progs userspace`):
 *
 *   build/host/web/portal_world [-d DIR] [--conninfo CONNINFO] [--no-portal]
 *                               [--run CMD [ARG...]]
 *
 *   -d DIR        where everything goes (default: a new /tmp/portal-world-XXXXXX,
 *                 removed at the end; a DIR given is kept)
 *   --conninfo C  use this database (it must be empty or hold maind's schema
 *                 without these towns) instead of a scratch PostgreSQL 15
 *                 cluster in DIR/pg (scripts/pg-cluster.sh)
 *   --no-portal   do not start maind-portal: DIR/maind.conf and
 *                 DIR/maind-short.conf are written for the caller to start
 *                 (build/x86_64/bin/maind-portal -c DIR/maind.conf)
 *   --run CMD...  when the world is ready, run CMD with GM_WORLD=DIR/world.json
 *                 in its environment, then stop everything and exit with
 *                 CMD's status; without --run, print "ready DIR/world.json"
 *                 and wait for SIGTERM/SIGINT, then stop everything
 *
 * The world (all in Europe/London, March 2026 issued, April running):
 *   towns 11 and 12; customers a (town 11 meter 1, e-mail) and b (town 12
 *   meter 1, post) and six more; every meter-hour of 1 March .. 3 April
 *   sent through maind's own ingest hooks; a TOU tariff added with mainctl;
 *   bills rated and issued by billing's own mbill_tick (notices included);
 *   an alert about customer a's meter raised by detection's mdet_raise;
 *   operators alice and bob (mainctl op-add) with key files made like
 *   `mainctl op-keygen` (DIR/keys/NAME.key, gmc_secret_create);
 *   web users (mainctl web-user add): cust-a, cust-b, alice, bob.
 *
 * DIR/world.json (read by tests/web/portal-*.mjs; every number computed by
 * this program from its own inputs unless marked "db"):
 *   { "url": "http://127.0.0.1:PORT", "url_short": "...": a second portal
 *     whose sessions end after 5 s idle (session expiry tests),
 *     "portal_pids": [pid, pid] (0 with --no-portal: for RSS figures),
 *     "conninfo": "...", "dir": "DIR", "tz": "Europe/London",
 *     "customers": { "a": { "login", "password", "id", "town", "meter", "name",
 *        "bills": [ { "id", "month", "state", "total_minor" (db) } ],
 *        "day": "2026-03-14", "day_hours": [ { "x": UTC s, "import_mwh" } ],
 *        "month_import_mwh": March's import, "alert": alert id }, "b": {...} },
 *     "operators": [ { "login", "password", "name", "totp_secret", "key_file",
 *        "pk" } ], "towns": [11, 12] }
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "billing/billing.h"
#include "detect/detect.h"
#include "gmcmd.h"
#include "mainctl_parts.h"
#include "maind_config.h"
#include "maind_pg.h"
#include "pg_scratch.h"
#include "tariff.h"

#define NTOWNS		2
#define METERS		4
#define T0		1772323200	/* 2026-03-01 00:00 UTC */
#define HOURS		((31 + 3) * 24)	/* March and 1..3 April (UTC) */
#define MARCH_HOURS	743		/* to 1 April 00:00 BST */
#define DAY_OFFSET	(13 * 24)	/* 14 March: GMT, so local day = UTC day */

static const char *const tou[] = {
	"type=tou", "rates=offpeak:12.5, peak:35.1, shoulder:24.0",
	"weekday=00:00-07:00 offpeak, 07:00-16:00 shoulder, 16:00-19:00 peak, 19:00-24:00 shoulder",
	"weekend=00:00-08:00 offpeak, 08:00-24:00 shoulder", "standing_charge=45.5",
	"feed_in=15", NULL };

struct world {
	char dir[256], pgdir[300], conninfo[512], json[300];
	bool own_dir, own_pg;
	struct maind_config cfg;
	struct tariff t;
	pid_t portal[2];
	unsigned port[2];
};

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The world's readings: import, export, renewable of (town index, meter, hour) in mWh. */
static void hour_val(int t, int m, int h, int64_t v[3])
{
	int uh = h % 24;
	bool solar = m == 2 && uh >= 9 && uh < 16;

	v[0] = 150000 + (int64_t)(mix(((uint64_t)t << 40) ^ ((uint64_t)m << 32) ^ (uint64_t)h) %
				  1200000);
	if (uh >= 17 && uh < 20)
		v[0] += 800000;		/* the evening peak */
	v[1] = solar ? (int64_t)(mix((uint64_t)h * 7 + (uint64_t)m) % 400000) : 0;
	v[2] = v[1];
}

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "portal_world: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return -1;
}

/* A mainctl part's command, its chatter on stdout sent to stderr. */
static int ctl(struct world *w, int (*part)(const struct mainctl_ctx *, const char *, int, char **),
	       const char *cmd, const char *const *words)
{
	const struct mainctl_ctx x = { w->conninfo, w->conninfo, &w->cfg };
	char *args[16];
	int n = 0, out, rc;

	/* copies: some commands cut their words in place */
	while (words[n] && n < 15) {
		args[n] = strdup(words[n]);
		if (!args[n++])
			return die("out of memory");
	}
	args[n] = NULL;
	fflush(stdout);
	out = dup(1);
	dup2(2, 1);
	rc = part(&x, cmd, n, args);
	fflush(stdout);
	dup2(out, 1);
	close(out);
	while (n)
		free(args[--n]);
	return rc;
}

static int write_file(const char *path, int mode, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int write_file(const char *path, int mode, const char *fmt, ...)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	va_list ap;

	if (!f)
		return die("%s: %s", path, strerror(errno));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	return fclose(f) ? die("%s: write failed", path) : 0;
}

/* ---- the database ------------------------------------------------------------------------- */

static int feed(struct world *w, struct maind_pg *p)
{
	struct gmps_hooks h;
	struct gmp_msg *batch = calloc(METERS * 24, sizeof(*batch));
	int64_t seq[NTOWNS] = { 0 };

	if (!batch)
		return die("out of memory");
	mpg_hooks(p, &h);
	for (int d = 0; d * 24 < HOURS; d++)
		for (int t = 0; t < NTOWNS; t++) {
			size_t n = 0;

			for (int m = 1; m <= METERS; m++)
				for (int hr = d * 24; hr < d * 24 + 24; hr++) {
					struct gmp_msg *g = &batch[n++];
					int64_t v[3], when = T0 + (int64_t)hr * 3600;

					hour_val(t, m, hr, v);
					memset(g, 0, sizeof(*g));
					g->type = GMP_HOUR;
					g->hour.seq = ++seq[t];
					g->hour.meter = (uint16_t)m;
					g->hour.hour = when;
					g->hour.period = tariff_period_at(&w->t, (time_t)when, 0);
					g->hour.import_mwh = v[0];
					g->hour.export_mwh = v[1];
					g->hour.renew_mwh = v[2];
					g->hour.readings = 4;
				}
			if (h.begin(h.ctx) || h.records(h.ctx, (uint16_t)(11 + t), batch, n,
							T0 + (int64_t)(d + 1) * 86400) ||
			    h.commit(h.ctx)) {
				free(batch);
				return die("ingest: %s", p->err);
			}
		}
	free(batch);
	return 0;
}

static int build_db(struct world *w)
{
	struct maind_pg p;
	struct tariff_spec ts;
	const char *bad;
	char err[768], sql[512];
	int64_t now = T0 + (int64_t)HOURS * 3600;

	if (mpg_open(&p, w->conninfo, err, sizeof(err)))
		return die("%s", err);
	for (int t = 0; t < NTOWNS; t++) {
		snprintf(sql, sizeof(sql), "INSERT INTO towns (id, name, pk) VALUES (%d, '%s', "
			 "decode(repeat('%02x', 32), 'hex'))", 11 + t, t ? "Eastfield" : "Westbrook",
			 t + 1);
		if (mpg_exec(&p, sql, 0, NULL))
			return die("%s", p.err);
	}
	{
		const char *words[12] = { "add", "home", "Europe/London", "2026-01-01" };
		char copy[8][300];	/* tariff add writes into its words */
		int n = 4;

		tariff_spec_init(&ts);
		for (int k = 0; tou[k]; k++) {
			char a[300], *eq;

			snprintf(copy[k], sizeof(copy[k]), "%s", tou[k]);
			words[n++] = copy[k];
			snprintf(a, sizeof(a), "%s", tou[k]);
			eq = strchr(a, '=');
			*eq = '\0';
			tariff_spec_set(&ts, a, eq + 1);
		}
		words[n++] = "tax=5.00";
		words[n] = NULL;
		if (ctl(w, mctl_bill, "tariff", words) || tariff_compile(&ts, &w->t, &bad, err,
									 sizeof(err)))
			return die("tariff add failed");
	}
	if (ctl(w, mctl_bill, "customer", (const char *const[]){ "add", "11", "1",
		"Ada Lovelace", "tariff=home", "since=2026-03-01", "medium=email",
		"email=ada@example.org", "address=1 Mill Lane\nWestbrook\nWB1 2AA", NULL }) ||
	    ctl(w, mctl_bill, "customer", (const char *const[]){ "add", "12", "1",
		"Brunel Bakery", "tariff=home", "since=2026-03-01", "medium=post",
		"address=3 High Street\nEastfield\nEF3 4BB", NULL }))
		return die("customer add failed");
	for (int t = 0; t < NTOWNS; t++)
		for (int m = 2; m <= METERS; m++) {
			char town[8], meter[8], name[32];

			snprintf(town, sizeof(town), "%d", 11 + t);
			snprintf(meter, sizeof(meter), "%d", m);
			snprintf(name, sizeof(name), "Household %d-%d", 11 + t, m);
			if (ctl(w, mctl_bill, "customer", (const char *const[]){ "add", town, meter,
				name, "tariff=home", "since=2026-03-01", NULL }))
				return die("customer add failed");
		}
	if (feed(w, &p))
		return -1;
	/* March issued 6 h after its end, April rated so far: billing's own tick */
	if (mbill_tick(&p, now) || (p.bill_at = 0, mbill_tick(&p, now + 600)))
		return die("billing: %s", p.err);
	{
		struct mdet_alert a = {
			.rule = "silent", .town = 11, .meter = 1, .severity = "warning",
			.summary = "meter 1 of town 11 silent for 3 hours",
			.evidence = "{\"hours\": 3}", .key = "silent:11:1",
			.cust_kind = "route", .cust_subject = "Your meter stopped reporting",
			.cust_body = "Your meter has not reported for 3 hours. Nothing to do: we "
				     "are looking into it.",
		};

		if (mdet_raise(&p, &a, NULL) < 0)
			return die("alert: %s", p.err);
	}
	mpg_close(&p);
	return 0;
}

/* ---- people ------------------------------------------------------------------------------ */

static int users(struct world *w)
{
	static const char *const ops[] = { "alice", "bob" };
	char path[400], pwf[400], pk_hex[2 * GMC_PK_LEN + 1], err[300];
	uint8_t pk[GMC_PK_LEN];

	snprintf(path, sizeof(path), "%s/keys", w->dir);
	mkdir(path, 0700);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/keys/%s.key", w->dir, ops[i]);
		if (gmc_secret_create(path, ops[i], pk, err, sizeof(err)))
			return die("%s", err);
		sodium_bin2hex(pk_hex, sizeof(pk_hex), pk, GMC_PK_LEN);
		if (ctl(w, mctl_cmd, "op-add", (const char *const[]){ ops[i], pk_hex, NULL }))
			return die("op-add %s failed", ops[i]);
	}
	/* the passwords: login + "-portal-pw" (known to the tests, nowhere else) */
	char ida[24], idb[24];
	const char *const who[][3] = {
		{ "cust-a", "customer", ida }, { "cust-b", "customer", idb },
		{ "alice", "operator", "alice" }, { "bob", "operator", "bob" },
	};

	if (pgs(w->conninfo, "SELECT id FROM customers WHERE town = 11 AND meter = 1", ida,
		sizeof(ida)) ||
	    pgs(w->conninfo, "SELECT id FROM customers WHERE town = 12 AND meter = 1", idb,
		sizeof(idb)))
		return die("customers a and b not found");
	for (int i = 0; i < 4; i++) {
		snprintf(pwf, sizeof(pwf), "%s/%s.pw", w->dir, who[i][0]);
		if (write_file(pwf, 0600, "%s-portal-pw\n", who[i][0]) ||
		    ctl(w, mctl_web, "web-user", (const char *const[]){ "add", who[i][0], who[i][1],
			who[i][2], "--password-file", pwf, NULL }))
			return die("web-user add %s failed", who[i][0]);
	}
	return 0;
}

/* ---- world.json ------------------------------------------------------------------------------ */

static void json_customer(FILE *f, struct world *w, PGconn *c, const char *key, int cid, int t)
{
	char sql[512];
	PGresult *r;
	int64_t month = 0;

	snprintf(sql, sizeof(sql), "SELECT login FROM web_users WHERE customer = %d", cid);
	r = PQexec(c, sql);
	fprintf(f, "  \"%s\": {\"login\": \"%s\", \"password\": \"%s-portal-pw\", \"id\": %d, "
		"\"town\": %d, \"meter\": 1,\n   \"bills\": [", key, PQgetvalue(r, 0, 0),
		PQgetvalue(r, 0, 0), cid, 11 + t);
	PQclear(r);
	snprintf(sql, sizeof(sql), "SELECT id, month, state, total_minor FROM bills WHERE "
		 "customer = %d ORDER BY period_start", cid);
	r = PQexec(c, sql);
	for (int i = 0; i < PQntuples(r); i++)
		fprintf(f, "%s{\"id\": %s, \"month\": %s, \"state\": \"%s\", \"total_minor\": %s}",
			i ? ", " : "", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
			PQgetvalue(r, i, 3));
	PQclear(r);
	fprintf(f, "],\n   \"day\": \"2026-03-14\", \"day_hours\": [");
	for (int h = DAY_OFFSET; h < DAY_OFFSET + 24; h++) {
		int64_t v[3];

		hour_val(t, 1, h, v);
		fprintf(f, "%s{\"x\": %lld, \"import_mwh\": %lld}", h > DAY_OFFSET ? ", " : "",
			(long long)(T0 + (int64_t)h * 3600), (long long)v[0]);
	}
	for (int h = 0; h < MARCH_HOURS; h++) {
		int64_t v[3];

		hour_val(t, 1, h, v);
		month += v[0];
	}
	snprintf(sql, sizeof(sql), "SELECT coalesce(max(a.id), 0) FROM alerts a JOIN customers cu "
		 "ON cu.town = a.town AND cu.meter = a.meter WHERE cu.id = %d", cid);
	r = PQexec(c, sql);
	fprintf(f, "],\n   \"month_import_mwh\": %lld, \"alert\": %s}", (long long)month,
		PQgetvalue(r, 0, 0));
	PQclear(r);
	(void)w;
}

static int write_json(struct world *w)
{
	PGconn *c = PQconnectdb(w->conninfo);
	char tmp[320];
	FILE *f;

	if (PQstatus(c) != CONNECTION_OK)
		return die("PostgreSQL: %s", PQerrorMessage(c));
	snprintf(w->json, sizeof(w->json), "%s/world.json", w->dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", w->json);
	f = fopen(tmp, "w");
	if (!f)
		return die("%s: %s", tmp, strerror(errno));
	fprintf(f, "{\"url\": \"http://127.0.0.1:%u\", \"url_short\": \"http://127.0.0.1:%u\",\n"
		" \"portal_pids\": [%d, %d],\n", w->port[0], w->port[1], (int)w->portal[0],
		(int)w->portal[1]);
	fprintf(f, " \"dir\": \"%s\", \"conninfo\": \"%s\", \"tz\": \"Europe/London\", "
		"\"towns\": [11, 12],\n \"customers\": {\n", w->dir, w->conninfo);
	json_customer(f, w, c, "a", (int)pg1(w->conninfo, "SELECT id FROM customers WHERE "
					     "town = 11 AND meter = 1"), 0);
	fprintf(f, ",\n");
	json_customer(f, w, c, "b", (int)pg1(w->conninfo, "SELECT id FROM customers WHERE "
					     "town = 12 AND meter = 1"), 1);
	fprintf(f, "\n },\n \"operators\": [");
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "bob" : "alice";
		char sql[256];
		PGresult *r;

		snprintf(sql, sizeof(sql), "SELECT w.totp_secret, encode(o.pk, 'hex') FROM web_users w "
			 "JOIN operators o ON o.id = w.operator WHERE w.login = '%s'", name);
		r = PQexec(c, sql);
		fprintf(f, "%s\n  {\"login\": \"%s\", \"password\": \"%s-portal-pw\", \"name\": \"%s\", "
			"\"totp_secret\": \"%s\", \"key_file\": \"%s/keys/%s.key\", \"pk\": \"%s\"}",
			i ? "," : "", name, name, name, PQntuples(r) ? PQgetvalue(r, 0, 0) : "",
			w->dir, name, PQntuples(r) ? PQgetvalue(r, 0, 1) : "");
		PQclear(r);
	}
	fprintf(f, "\n ]\n}\n");
	PQfinish(c);
	if (fclose(f) || rename(tmp, w->json))
		return die("%s: write failed", w->json);
	return 0;
}

/* ---- the portals ----------------------------------------------------------------------------- */

static unsigned free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unsigned port = 0;

	if (s >= 0 && !bind(s, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(s, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

static bool answers(unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = s >= 0 && !connect(s, (struct sockaddr *)&a, sizeof(a));

	if (s >= 0)
		close(s);
	return ok;
}

static int portals(struct world *w, bool start)
{
	for (int i = 0; i < 2; i++) {
		char conf[320];

		w->port[i] = free_port();
		snprintf(conf, sizeof(conf), "%s/maind%s.conf", w->dir, i ? "-short" : "");
		if (write_file(conf, 0600, "[server]\nlisten = 127.0.0.1:1\nkey_file = %s/maind.key\n"
			       "conninfo = %s\n\n[portal]\nlisten = 127.0.0.1:%u\npool = 3\n"
			       "letter_sender = Gridmeter Utility|1 Power Street|Westbrook WB1 1AA\n"
			       "%s", w->dir, w->conninfo, w->port[i],
			       i ? "idle_seconds = 5\nsession_seconds = 30\n" : ""))
			return -1;
		if (!start)
			continue;
		w->portal[i] = fork();
		if (w->portal[i] < 0)
			return die("fork: %s", strerror(errno));
		if (!w->portal[i]) {
			execl("build/x86_64/bin/maind-portal", "maind-portal", "-c", conf, (char *)NULL);
			fprintf(stderr, "portal_world: build/x86_64/bin/maind-portal: %s (make "
				"userspace)\n", strerror(errno));
			_exit(127);
		}
	}
	for (int i = 0; start && i < 2; i++) {
		int64_t until = mono_ms() + 20000;

		while (!answers(w->port[i])) {
			int st;

			if (waitpid(w->portal[i], &st, WNOHANG) == w->portal[i]) {
				w->portal[i] = 0;
				return die("maind-portal exited (status %d)", st);
			}
			if (mono_ms() > until)
				return die("maind-portal does not answer on port %u", w->port[i]);
			usleep(20000);
		}
	}
	return 0;
}

static void stop(struct world *w)
{
	for (int i = 0; i < 2; i++)
		if (w->portal[i] > 0) {
			kill(w->portal[i], SIGTERM);
			waitpid(w->portal[i], NULL, 0);
			w->portal[i] = 0;
		}
	if (w->own_pg)
		pg_cluster_stop(w->pgdir);
	if (w->own_dir)
		scratch_remove(w->dir);
}

int main(int argc, char **argv)
{
	struct world w = { 0 };
	bool start = true;
	char **run = NULL;
	int rc = 1;
	sigset_t set;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-d") && i + 1 < argc) {
			snprintf(w.dir, sizeof(w.dir), "%s", argv[++i]);
		} else if (!strcmp(argv[i], "--conninfo") && i + 1 < argc) {
			snprintf(w.conninfo, sizeof(w.conninfo), "%s", argv[++i]);
		} else if (!strcmp(argv[i], "--no-portal")) {
			start = false;
		} else if (!strcmp(argv[i], "--run") && i + 1 < argc) {
			run = argv + i + 1;
			break;
		} else {
			fprintf(stderr, "usage: portal_world [-d DIR] [--conninfo CONNINFO] "
				"[--no-portal] [--run CMD [ARG...]]\n");
			return 2;
		}
	}
	if (sodium_init() < 0)
		return die("libsodium failed"), 1;
	setenv("TZ", "Europe/London", 1);
	tzset();
	maind_config_defaults(&w.cfg);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (!w.dir[0]) {
		if (scratch_dir(w.dir, sizeof(w.dir), "portal-world"))
			return die("mkdtemp: %s", strerror(errno)), 1;
		w.own_dir = true;
	} else if (mkdir(w.dir, 0755) && errno != EEXIST) {
		return die("%s: %s", w.dir, strerror(errno)), 1;
	}
	chmod(w.dir, 0755);
	if (!w.conninfo[0]) {
		char old[300];

		/* a DIR used before: its cluster is stale (and stopped), start afresh */
		snprintf(old, sizeof(old), "%s/pg", w.dir);
		pg_cluster_stop(old);
		if (!w.own_dir)
			sh("rm -rf '%s'", old, NULL, 0);
		snprintf(old, sizeof(old), "%s/keys", w.dir);
		if (!w.own_dir)
			sh("rm -rf '%s'", old, NULL, 0);
		if (!pg_available()) {
			fprintf(stderr, "portal_world: %s\n", PG_SKIP_WHY);
			return 77;
		}
		if (pg_cluster_start(w.dir, w.pgdir, sizeof(w.pgdir), w.conninfo,
				     sizeof(w.conninfo)))
			goto out;
		w.own_pg = true;
	}
	snprintf(w.cfg.conninfo, sizeof(w.cfg.conninfo), "%s", w.conninfo);
	if (build_db(&w) || users(&w) || portals(&w, start) || write_json(&w))
		goto out;
	if (run) {
		pid_t pid = fork();
		int st = 0;

		if (pid == 0) {
			sigprocmask(SIG_UNBLOCK, &set, NULL);
			setenv("GM_WORLD", w.json, 1);
			execvp(run[0], run);
			_exit(127);
		}
		rc = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	} else {
		int sig;

		printf("ready %s\n", w.json);
		fflush(stdout);
		sigwait(&set, &sig);
		rc = 0;
	}
out:
	stop(&w);
	return rc;
}
