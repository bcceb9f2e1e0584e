// SPDX-License-Identifier: GPL-2.0
/* maind storage: PostgreSQL through libpq (maind_pg.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "maind_pg.h"

static const char *const schema_sql[] = {
	"CREATE TABLE IF NOT EXISTS settings (key text PRIMARY KEY, value bigint NOT NULL)",
	"INSERT INTO settings VALUES ('schema', 1), ('changes', 0) ON CONFLICT DO NOTHING",
	/* the towns: keys, exactly-once state, what their HELLO said */
	"CREATE TABLE IF NOT EXISTS towns ("
	" id integer PRIMARY KEY CHECK (id BETWEEN 1 AND 65534),"
	" name text NOT NULL,"
	" pk bytea NOT NULL CHECK (length(pk) = 32),"
	" pk_next bytea CHECK (length(pk_next) = 32),"
	" revoked boolean NOT NULL DEFAULT false,"
	" upto bigint NOT NULL DEFAULT 0,"		/* every record <= upto is stored */
	" cmd_floor bigint NOT NULL DEFAULT 0,"
	" hellos bytea NOT NULL DEFAULT '',"		/* HELLO memory (gmp_server) */
	" last_seen bigint,"				/* UTC s, last authentic frame */
	" last_hour timestamptz,"			/* newest hour received */
	" last_admin_hour timestamptz,"		/* newest hour built in administrative mode */
	" hello_at bigint, hello_next_seq bigint, hello_first_held bigint,"
	" hello_upto bigint, hello_flags integer,"
	" created timestamptz NOT NULL DEFAULT now())",
	/* one meter's hour in one tariff period, at its highest revision */
	"CREATE TABLE IF NOT EXISTS meter_hours ("
	" town integer NOT NULL, meter integer NOT NULL, hour timestamptz NOT NULL,"
	" period smallint NOT NULL, import_mwh bigint NOT NULL, export_mwh bigint NOT NULL,"
	" renew_mwh bigint NOT NULL, readings integer NOT NULL, flags integer NOT NULL,"
	" rev bigint NOT NULL, seq bigint NOT NULL,"
	" received timestamptz NOT NULL DEFAULT now(),"
	" PRIMARY KEY (town, meter, hour, period)) PARTITION BY RANGE (hour)",
	"CREATE TABLE IF NOT EXISTS town_hours ("
	" town integer NOT NULL, hour timestamptz NOT NULL, meters integer NOT NULL,"
	" import_mwh bigint NOT NULL, export_mwh bigint NOT NULL, renew_mwh bigint NOT NULL,"
	" flags integer NOT NULL, rev bigint NOT NULL, seq bigint NOT NULL,"
	" received timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (town, hour))",
	/* a loan as each side reported it, latest report */
	"CREATE TABLE IF NOT EXISTS loans ("
	" town integer NOT NULL, lender integer NOT NULL, loan_id bigint NOT NULL,"
	" borrower integer NOT NULL, power_w bigint NOT NULL, until timestamptz NOT NULL,"
	" state smallint NOT NULL, at timestamptz NOT NULL, seq bigint NOT NULL,"
	" PRIMARY KEY (town, lender, loan_id))",
	/* commands to towns: GMP_SUPPLY (capacity_w), GMP_SIGNED (blob: the
	 * operators' signed bytes), GMP_TOWN_SUMMARY (args: its fields after tseq) */
	"CREATE TABLE IF NOT EXISTS commands ("
	" town integer NOT NULL REFERENCES towns(id), tseq bigint NOT NULL,"
	" type smallint NOT NULL, capacity_w bigint,"
	" created timestamptz NOT NULL DEFAULT now(), sent timestamptz,"
	" status smallint, result_at timestamptz,"		/* NULL: no result yet */
	" PRIMARY KEY (town, tseq))",
	"ALTER TABLE commands ADD COLUMN IF NOT EXISTS blob bytea",
	"ALTER TABLE commands ADD COLUMN IF NOT EXISTS args bigint[]",
	/* customers: who is billed for a meter and how they are told (issue 13) */
	"CREATE TABLE IF NOT EXISTS customers ("
	" id serial PRIMARY KEY, town integer NOT NULL, meter integer NOT NULL,"
	" name text NOT NULL, address text NOT NULL DEFAULT '',"	/* postal, lines by \n */
	" medium text NOT NULL DEFAULT 'post' CHECK (medium IN ('email', 'sms', 'post')),"
	" email text, phone text,"
	" tariff text NOT NULL DEFAULT 'standard',"	/* tariff plan (billing) */
	" since timestamptz NOT NULL DEFAULT '2000-01-01 00:00:00+00',"
	" until timestamptz,"				/* NULL: still the customer */
	" UNIQUE (town, meter, since))",
	/* operators: who may sign commands, their public keys, how alerts reach them */
	"CREATE TABLE IF NOT EXISTS operators ("
	" id serial PRIMARY KEY, name text NOT NULL UNIQUE,"
	" pk bytea NOT NULL UNIQUE CHECK (length(pk) = 32), email text, phone text,"
	" revoked boolean NOT NULL DEFAULT false, created timestamptz NOT NULL DEFAULT now())",
	/* notices to customers (customer) or operators (operator), delivered by
	 * maind-notify through the customer's medium (e-mail to operators) */
	"CREATE TABLE IF NOT EXISTS notices ("
	" id bigserial PRIMARY KEY, customer integer REFERENCES customers(id),"
	" operator integer REFERENCES operators(id),"
	" kind text NOT NULL,"		/* bill, route, trip, lockout, tamper, alert, ... */
	" ref bigint,"			/* the bill or alert it is about */
	" subject text NOT NULL, body text NOT NULL,"
	" created timestamptz NOT NULL DEFAULT now(),"
	" medium text,"			/* set when delivered: email, sms, post */
	" state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'delivered', 'failed')),"
	" attempts integer NOT NULL DEFAULT 0, next_try timestamptz NOT NULL DEFAULT now(),"
	" last_error text, delivered_at timestamptz,"
	" CHECK ((customer IS NULL) <> (operator IS NULL)))",
	/* alerts raised by detection (maind's rules), with their evidence */
	"CREATE TABLE IF NOT EXISTS alerts ("
	" id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(),"
	" rule text NOT NULL, town integer, meter integer,"
	" severity text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),"
	" summary text NOT NULL, evidence text NOT NULL,"	/* evidence: JSON */
	" key text NOT NULL,"		/* one open alert per key (rule:town:meter:...) */
	" state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),"
	" closed_at timestamptz)",
	"CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts (key) WHERE state = 'open'",
	/* the (town, seq) ranges each commit stored: exactly once, auditable */
	"CREATE TABLE IF NOT EXISTS received ("
	" town integer NOT NULL, first_seq bigint NOT NULL, last_seq bigint NOT NULL,"
	" hours integer NOT NULL, at timestamptz NOT NULL DEFAULT now(),"
	" PRIMARY KEY (town, first_seq))",
	"CREATE TABLE IF NOT EXISTS lost ("
	" town integer NOT NULL, first_seq bigint NOT NULL, last_seq bigint NOT NULL,"
	" at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (town, first_seq))",
	"CREATE TABLE IF NOT EXISTS journal ("
	" id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), town integer,"
	" what text NOT NULL)",
	NULL,
};

static void seterr(struct maind_pg *p, const char *what, const PGresult *r)
{
	const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(p->c);
	size_t n;

	snprintf(p->err, sizeof(p->err), "%s: %s", what, m && *m ? m : "failed");
	n = strlen(p->err);
	while (n && (p->err[n - 1] == '\n' || p->err[n - 1] == ' '))
		p->err[--n] = '\0';
}

/* A statement with text parameters; 0 or -1. */
int mpg_exec(struct maind_pg *p, const char *sql, int n, const char *const *v)
{
	PGresult *r = PQexecParams(p->c, sql, n, NULL, v, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;

	if (rc)
		seterr(p, sql, r);
	PQclear(r);
	return rc;
}

#define execv_ mpg_exec

static int exec0(struct maind_pg *p, const char *sql)
{
	return execv_(p, sql, 0, NULL);
}

/* A query returning rows; NULL (err set) on failure. */
PGresult *mpg_query(struct maind_pg *p, const char *sql, int n, const char *const *v)
{
	PGresult *r = PQexecParams(p->c, sql, n, NULL, v, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		seterr(p, sql, r);
		PQclear(r);
		return NULL;
	}
	return r;
}

#define query mpg_query
#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))

static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;	/* NOTICEs ("already exists, skipping") */
}

int mpg_schema(PGconn *c, char *err, size_t errlen)
{
	/* the core first, then each part's tables (they may refer to the core's) */
	const char *const *const parts[] = {
		schema_sql, mbill_schema_sql, mnotice_schema_sql, mcmd_schema_sql,
		mdet_schema_sql, portal_schema_sql,
	};

	PQsetNoticeProcessor(c, quiet, NULL);
	for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++)
		for (size_t i = 0; parts[k][i]; i++) {
			PGresult *r = PQexec(c, parts[k][i]);

			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				snprintf(err, errlen, "schema: %s", PQresultErrorMessage(r));
				PQclear(r);
				return -1;
			}
			PQclear(r);
		}
	return 0;
}

/* ---- partitions ------------------------------------------------------------------------- */

static int32_t month_of(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	return (tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
}

static bool month_known(const struct maind_pg *p, int32_t ym)
{
	for (size_t i = 0; i < p->n_months; i++)
		if (p->months[i] == ym)
			return true;
	return false;
}

static int month_ensure(struct maind_pg *p, int32_t ym)
{
	int y = ym / 100, m = ym % 100, ny = m == 12 ? y + 1 : y, nm = m == 12 ? 1 : m + 1;
	char sql[400];

	if (month_known(p, ym))
		return 0;
	snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS meter_hours_%04d%02d PARTITION OF "
		 "meter_hours FOR VALUES FROM ('%04d-%02d-01 00:00:00+00') TO "
		 "('%04d-%02d-01 00:00:00+00')", y, m, y, m, ny, nm);
	if (exec0(p, sql))
		return -1;
	if (p->n_months == p->cap_months) {
		size_t cap = p->cap_months ? p->cap_months * 2 : 16;
		int32_t *n = realloc(p->months, cap * sizeof(*n));

		if (!n)
			return -1;
		p->months = n;
		p->cap_months = cap;
	}
	p->months[p->n_months++] = ym;
	return 0;
}

int mpg_partitions_ahead(struct maind_pg *p, int64_t now)
{
	int32_t ym = month_of(now);
	int y = ym / 100, m = ym % 100 - 1;	/* one month back: late hours */

	if (m == 0) {
		m = 12;
		y--;
	}
	for (int i = 0; i < MPG_MONTHS_AHEAD + 2; i++) {
		if (month_ensure(p, y * 100 + m))
			return -1;
		if (++m == 13) {
			m = 1;
			y++;
		}
	}
	return 0;
}

/* ---- open / close ---------------------------------------------------------------------- */

int mpg_open(struct maind_pg *p, const char *conninfo, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	p->c = PQconnectdb(conninfo);
	if (PQstatus(p->c) != CONNECTION_OK) {
		snprintf(err, errlen, "PostgreSQL (%s): %s", conninfo, PQerrorMessage(p->c));
		PQfinish(p->c);
		p->c = NULL;
		return -1;
	}
	if (mpg_schema(p->c, err, errlen))
		goto fail;
	if (exec0(p, "SET synchronous_commit = on") ||
	    exec0(p, "CREATE TEMP TABLE stage_hours (town integer, meter integer, hour bigint,"
		  " period smallint, import_mwh bigint, export_mwh bigint, renew_mwh bigint,"
		  " readings integer, flags integer, rev bigint, seq bigint) ON COMMIT DELETE ROWS") ||
	    exec0(p, "CREATE TEMP TABLE stage_town_hours (town integer, hour bigint,"
		  " meters integer, import_mwh bigint, export_mwh bigint, renew_mwh bigint,"
		  " flags integer, rev bigint, seq bigint) ON COMMIT DELETE ROWS") ||
	    exec0(p, "CREATE TEMP TABLE stage_loans (town integer, lender integer,"
		  " loan_id bigint, borrower integer, power_w bigint, until bigint, state smallint,"
		  " at bigint, seq bigint) ON COMMIT DELETE ROWS") ||
	    mpg_partitions_ahead(p, time(NULL))) {
		snprintf(err, errlen, "%s", p->err);
		goto fail;
	}
	return 0;
fail:
	PQfinish(p->c);
	p->c = NULL;
	return -1;
}

void mpg_close(struct maind_pg *p)
{
	if (p->c)
		PQfinish(p->c);
	free(p->hours.p);
	free(p->town_hours.p);
	free(p->loans.p);
	free(p->ranges);
	free(p->months);
	memset(p, 0, sizeof(*p));
}

/* ---- buffers ------------------------------------------------------------------------------ */

__attribute__((format(printf, 2, 3)))
static int bprintf(struct mpg_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -1;
		if (b->p && (size_t)n < room) {
			b->len += (size_t)n;
			b->rows++;
			return 0;
		}
		size_t cap = b->cap ? b->cap * 2 : 1 << 16;

		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);

		if (!np)
			return -1;
		b->p = np;
		b->cap = cap;
	}
}

static void breset(struct mpg_buf *b)
{
	b->len = 0;
	b->rows = 0;
}

static struct mpg_range *range_of(struct maind_pg *p, uint16_t town)
{
	for (size_t i = 0; i < p->n_ranges; i++)
		if (p->ranges[i].town == town)
			return &p->ranges[i];
	if (p->n_ranges == p->cap_ranges) {
		size_t cap = p->cap_ranges ? p->cap_ranges * 2 : 64;
		struct mpg_range *n = realloc(p->ranges, cap * sizeof(*n));

		if (!n)
			return NULL;
		p->ranges = n;
		p->cap_ranges = cap;
	}
	p->ranges[p->n_ranges] = (struct mpg_range){ town, 0, 0, 0, -1, -1 };
	return &p->ranges[p->n_ranges++];
}

/* COPY buf into table; 0 or -1. */
static int copy_in(struct maind_pg *p, const char *sql, const struct mpg_buf *b)
{
	PGresult *r;
	int rc = 0;

	if (!b->rows)
		return 0;
	r = PQexec(p->c, sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		seterr(p, sql, r);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	if (PQputCopyData(p->c, b->p, (int)b->len) != 1 || PQputCopyEnd(p->c, NULL) != 1) {
		seterr(p, "COPY", NULL);
		rc = -1;
	}
	while ((r = PQgetResult(p->c))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK && !rc) {
			seterr(p, sql, r);
			rc = -1;
		}
		PQclear(r);
	}
	return rc;
}

/* ---- hooks ---------------------------------------------------------------------------------- */

static int h_lookup(void *ctx, uint16_t id, struct gmps_peer_state *out)
{
	struct maind_pg *p = ctx;
	char a[24];
	const char *v[1] = { I64(a, id) };
	PGresult *r = query(p, "SELECT encode(pk, 'hex'), encode(pk_next, 'hex'), revoked, upto, "
			    "cmd_floor, COALESCE(last_seen, 0), encode(hellos, 'hex') FROM towns "
			    "WHERE id = $1", 1, v);
	const char *hel;
	size_t hl;

	if (!r)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return 0;
	}
	memset(out, 0, sizeof(*out));
	out->id = id;
	if (gmp_hex_decode(PQgetvalue(r, 0, 0), out->pk, GMP_KEY_LEN)) {
		PQclear(r);
		return 0;
	}
	out->has_next = !PQgetisnull(r, 0, 1) &&
			!gmp_hex_decode(PQgetvalue(r, 0, 1), out->pk_next, GMP_KEY_LEN);
	out->revoked = PQgetvalue(r, 0, 2)[0] == 't';
	out->upto = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
	out->cmd_floor = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
	out->last_seen = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
	hel = PQgetvalue(r, 0, 6);
	hl = strlen(hel) / 2;
	if (hl % GMPS_HELLO_ID == 0 && hl / GMPS_HELLO_ID <= GMPS_HELLOS) {
		uint8_t buf[GMPS_HELLOS * GMPS_HELLO_ID];
		char tmp[2 * GMPS_HELLOS * GMPS_HELLO_ID + 1];

		memcpy(tmp, hel, 2 * hl);
		tmp[2 * hl] = '\0';
		if (!gmp_hex_decode(tmp, buf, hl)) {
			out->n_hellos = (uint8_t)(hl / GMPS_HELLO_ID);
			memcpy(out->hellos, buf, hl);
		}
	}
	PQclear(r);
	return 1;
}

static int h_begin(void *ctx)
{
	struct maind_pg *p = ctx;

	/* the audit log's lock first, before any row (MPG_LOCK_AUDIT) */
	if (exec0(p, "BEGIN") || exec0(p, "SELECT pg_advisory_xact_lock(" MPG_LOCK_AUDIT ")"))
		return -1;
	p->in_tx = true;
	breset(&p->hours);
	breset(&p->town_hours);
	breset(&p->loans);
	p->n_ranges = 0;
	return 0;
}

static int h_records(void *ctx, uint16_t id, const struct gmp_msg *m, size_t n, int64_t now)
{
	struct maind_pg *p = ctx;
	struct mpg_range *rg = range_of(p, id);

	if (!rg)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct gmp_msg *g = &m[i];
		int64_t seq = gmp_msg_seq(g);
		int rc = 0;

		if (!rg->first)
			rg->first = seq;
		rg->last = seq;
		switch (g->type) {
		case GMP_HOUR:
			if (month_ensure(p, month_of(g->hour.hour)))
				return -1;
			rc = bprintf(&p->hours, "%u\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\t"
				     "%lld\t%lld\n", id, (long long)g->hour.meter,
				     (long long)g->hour.hour, (long long)g->hour.period,
				     (long long)g->hour.import_mwh, (long long)g->hour.export_mwh,
				     (long long)g->hour.renew_mwh, (long long)g->hour.readings,
				     (long long)g->hour.flags, (long long)g->hour.rev, (long long)seq);
			rg->hours++;
			if (g->hour.hour > rg->last_hour)
				rg->last_hour = g->hour.hour;
			if ((g->hour.flags & GMP_HF_ADMIN) && g->hour.hour > rg->admin_hour)
				rg->admin_hour = g->hour.hour;
			break;
		case GMP_TOWN_HOUR:
			rc = bprintf(&p->town_hours, "%u\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\t"
				     "%lld\n", id, (long long)g->town_hour.hour,
				     (long long)g->town_hour.meters,
				     (long long)g->town_hour.import_mwh,
				     (long long)g->town_hour.export_mwh,
				     (long long)g->town_hour.renew_mwh, (long long)g->town_hour.flags,
				     (long long)g->town_hour.rev, (long long)seq);
			if (g->town_hour.hour > rg->last_hour)
				rg->last_hour = g->town_hour.hour;
			if ((g->town_hour.flags & GMP_HF_ADMIN) && g->town_hour.hour > rg->admin_hour)
				rg->admin_hour = g->town_hour.hour;
			break;
		case GMP_LOAN:
			rc = bprintf(&p->loans, "%u\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\n",
				     id, (long long)g->loan.lender, (long long)g->loan.loan_id,
				     (long long)g->loan.borrower, (long long)g->loan.power_w,
				     (long long)g->loan.until, (long long)g->loan.state,
				     (long long)g->loan.time, (long long)seq);
			break;
		case GMP_CMD_REPORT:
			rc = mcmd_store_report(p, id, g);
			break;
		case GMP_METER_ALARM:
			rc = mdet_store_alarm(p, id, g);
			break;
		case GMP_SECURITY:
			rc = mdet_store_security(p, id, g);
			break;
		default:
			/* key rotation (gmp_server keeps the key), later types: counted only */
			break;
		}
		if (rc)
			return -1;
	}
	(void)now;
	return 0;
}

static int h_lost(void *ctx, uint16_t id, int64_t first, int64_t last, int64_t now)
{
	struct maind_pg *p = ctx;
	char a[24], b[24], c[24], what[160];
	const char *v[3] = { I64(a, id), I64(b, first), I64(c, last) };

	(void)now;
	snprintf(what, sizeof(what), "records %lld..%lld lost: the town no longer holds them",
		 (long long)first, (long long)last);
	if (execv_(p, "INSERT INTO lost (town, first_seq, last_seq) VALUES ($1, $2, $3) "
		   "ON CONFLICT DO NOTHING", 3, v))
		return -1;
	return mpg_journal(p, id, what);
}

static int h_result(void *ctx, uint16_t id, int64_t tseq, int64_t status, int64_t now)
{
	struct maind_pg *p = ctx;
	char a[24], b[24], c[24];
	const char *v[3] = { I64(a, id), I64(b, tseq), I64(c, status) };

	(void)now;
	return execv_(p, "UPDATE commands SET status = $3, result_at = now() WHERE town = $1 AND "
		      "tseq = $2 AND (status IS NULL OR status = 5)", 3, v);
}

/* One bigint from a query ("" / NULL -> def). */
static int q1(struct maind_pg *p, const char *sql, int n, const char *const *v, int64_t def,
	      int64_t *out)
{
	PGresult *r = query(p, sql, n, v);

	if (!r)
		return -1;
	*out = PQntuples(r) && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : def;
	PQclear(r);
	return 0;
}

/*
 * The town's command floor from a fresh HELLO (as townd does for its
 * meters): above everything we issued (our database was restored), pending
 * commands move above it; below what it had settled (its state was lost),
 * the current supply is issued again.
 */
static int reconcile(struct maind_pg *p, uint16_t id, int64_t floor)
{
	char a[24], b[24];
	const char *v1[1] = { I64(a, id) };
	int64_t high, settled, low;
	char what[200];

	if (q1(p, "SELECT MAX(tseq) FROM commands WHERE town = $1", 1, v1, 0, &high) ||
	    q1(p, "SELECT MAX(tseq) FROM commands WHERE town = $1 AND status IS NOT NULL AND "
	       "status <> 5", 1, v1, 0, &settled) ||
	    q1(p, "SELECT MIN(tseq) FROM commands WHERE town = $1 AND (status IS NULL OR "
	       "status = 5)", 1, v1, 0, &low))
		return -1;
	if (floor > high && low) {
		const char *v2[2] = { a, I64(b, floor + 1 - low) };

		if (execv_(p, "UPDATE commands SET tseq = -tseq WHERE town = $1 AND (status IS NULL "
			   "OR status = 5)", 1, v1) ||
		    execv_(p, "UPDATE commands SET tseq = -tseq + $2 WHERE town = $1 AND tseq < 0",
			   2, v2))
			return -1;
		snprintf(what, sizeof(what), "the town's command floor %lld is above ours %lld "
			 "(database restored): pending commands renumbered", (long long)floor,
			 (long long)high);
		return mpg_journal(p, id, what);
	}
	if (floor < settled) {
		int64_t pend;
		const char *v2[2] = { a, I64(b, high + 1) };

		if (q1(p, "SELECT COUNT(*) FROM commands WHERE town = $1 AND type = 20 AND "
		       "(status IS NULL OR status = 5)", 1, v1, 0, &pend))
			return -1;
		if (!pend && execv_(p, "INSERT INTO commands (town, tseq, type, capacity_w) "
				    "SELECT town, $2, type, capacity_w FROM commands WHERE town = $1 "
				    "AND type = 20 AND status IN (0, 1) ORDER BY tseq DESC LIMIT 1",
				    2, v2))
			return -1;
		snprintf(what, sizeof(what), "the town's command floor %lld is below the %lld it "
			 "had settled (its state was lost): the current supply sent again",
			 (long long)floor, (long long)settled);
		return mpg_journal(p, id, what);
	}
	return 0;
}

static int h_hello(void *ctx, uint16_t id, const struct gmps_hello *h, int64_t now)
{
	struct maind_pg *p = ctx;
	char a[24], b[24], c[24], d[24], e[24], f[24];
	const char *v[6] = { I64(a, id), I64(b, now), I64(c, h->next_seq), I64(d, h->first_held),
			     I64(e, h->upto), I64(f, h->flags) };

	if (execv_(p, "UPDATE towns SET hello_at = $2, hello_next_seq = $3, hello_first_held = $4,"
		   " hello_upto = $5, hello_flags = $6 WHERE id = $1", 6, v))
		return -1;
	if (h->next_seq - 1 > h->upto) {
		char what[160];

		snprintf(what, sizeof(what), "handshake: %lld records to catch up (stored up to "
			 "%lld, the town's next is %lld)", (long long)(h->next_seq - 1 - h->upto),
			 (long long)h->upto, (long long)h->next_seq);
		if (mpg_journal(p, id, what))
			return -1;
	}
	return reconcile(p, id, h->cmd_floor);
}

static int h_cmd_next(void *ctx, uint16_t id, int64_t floor, int64_t *next)
{
	struct maind_pg *p = ctx;
	char a[24];
	const char *v[1] = { I64(a, id) };
	int64_t high, low;

	if (q1(p, "SELECT MAX(tseq) FROM commands WHERE town = $1", 1, v, 0, &high) ||
	    q1(p, "SELECT MIN(tseq) FROM commands WHERE town = $1 AND (status IS NULL OR "
	       "status = 5)", 1, v, 0, &low))
		return -1;
	*next = floor > high ? floor + 1 : low ? low : high + 1;
	return 0;
}

int mpg_command_msg(int type, const char *capacity, const char *blob_hex, const char *args,
		    struct gmp_msg *m)
{
	int64_t *f = &m->summary.month;	/* GMP_TOWN_SUMMARY's fields after tseq, in order */
	const int nf = (int)((sizeof(m->summary) - sizeof(int64_t)) / sizeof(int64_t));
	uint8_t tmp[GMP_BLOB_MAX];
	size_t hl = strlen(blob_hex);
	int k = 0;

	memset(m, 0, sizeof(*m));
	m->type = type;
	switch (type) {
	case GMP_SUPPLY:
		m->supply.capacity_w = strtoll(capacity, NULL, 10);
		return 0;
	case GMP_SIGNED:
		if (!hl || hl % 2 || hl / 2 > GMP_BLOB_MAX)
			return -1;
		if (gmp_hex_decode(blob_hex, tmp, hl / 2))
			return -1;
		m->signed_cmd.len = (int64_t)(hl / 2);
		memcpy(m->signed_cmd.blob, tmp, hl / 2);
		return 0;
	case GMP_TOWN_SUMMARY:
		while (*args && k < nf) {
			char *end;

			f[k++] = strtoll(args, &end, 10);
			if (end == args)
				return -1;
			args = end + strspn(end, " ");
		}
		return k == nf && !*args ? 0 : -1;
	default:
		return -1;
	}
}

static int h_commands(void *ctx, uint16_t id, struct gmp_msg *out, size_t max, int64_t now)
{
	struct maind_pg *p = ctx;
	char a[24], b[24];
	const char *v[2] = { I64(a, id), I64(b, (int64_t)max) };
	PGresult *r = query(p, "UPDATE commands SET sent = now() WHERE (town, tseq) IN (SELECT "
			    "town, tseq FROM commands WHERE town = $1 AND (status IS NULL OR "
			    "status = 5) ORDER BY tseq LIMIT $2) RETURNING tseq, type, capacity_w, "
			    "encode(blob, 'hex'), array_to_string(args, ' ')", 2, v);
	int n, k = 0;

	(void)now;
	if (!r)
		return -1;
	n = PQntuples(r);
	for (int i = 0; i < n && (size_t)k < max; i++) {
		if (mpg_command_msg(atoi(PQgetvalue(r, i, 1)), PQgetvalue(r, i, 2),
				    PQgetvalue(r, i, 3), PQgetvalue(r, i, 4), &out[k])) {
			char what[120];

			snprintf(what, sizeof(what), "command %s of type %s cannot be encoded: "
				 "dropped", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
			mpg_journal(p, id, what);
			continue;
		}
		gmp_cmd_set_tseq(&out[k], strtoll(PQgetvalue(r, i, 0), NULL, 10));
		k++;
	}
	PQclear(r);
	/* RETURNING gives no order: tseq order for the client */
	for (int i = 1; i < k; i++)
		for (int j = i; j > 0 && gmp_cmd_tseq(&out[j]) < gmp_cmd_tseq(&out[j - 1]); j--) {
			struct gmp_msg t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return k;
}

static int h_save(void *ctx, const struct gmps_peer_state *s)
{
	struct maind_pg *p = ctx;
	char a[24], b[24], c[24], d[24];
	char pk[2 * GMP_KEY_LEN + 1], pkn[2 * GMP_KEY_LEN + 1];
	char hel[2 * GMPS_HELLOS * GMPS_HELLO_ID + 1];
	const char *v[7] = { I64(a, s->id), I64(b, s->upto), I64(c, s->cmd_floor),
			     I64(d, s->last_seen), hel, pk, s->has_next ? pkn : NULL };

	gmp_hex_encode(&s->hellos[0][0], (size_t)s->n_hellos * GMPS_HELLO_ID, hel);
	gmp_hex_encode(s->pk, GMP_KEY_LEN, pk);
	gmp_hex_encode(s->pk_next, GMP_KEY_LEN, pkn);
	return execv_(p, "UPDATE towns SET upto = $2, cmd_floor = $3, last_seen = $4, "
		      "hellos = decode($5, 'hex'), pk = decode($6, 'hex'), "
		      "pk_next = decode($7, 'hex') WHERE id = $1", 7, v);
}

static int h_commit(void *ctx)
{
	struct maind_pg *p = ctx;
	int rc;

	rc = copy_in(p, "COPY stage_hours FROM STDIN", &p->hours);
	if (!rc && p->hours.rows)
		rc = exec0(p, "INSERT INTO meter_hours (town, meter, hour, period, import_mwh, "
			   "export_mwh, renew_mwh, readings, flags, rev, seq) "
			   "SELECT DISTINCT ON (town, meter, hour, period) town, meter, "
			   "to_timestamp(hour), period, import_mwh, export_mwh, renew_mwh, readings, "
			   "flags, rev, seq FROM stage_hours "
			   "ORDER BY town, meter, hour, period, rev DESC "
			   "ON CONFLICT (town, meter, hour, period) DO UPDATE SET "
			   "import_mwh = EXCLUDED.import_mwh, export_mwh = EXCLUDED.export_mwh, "
			   "renew_mwh = EXCLUDED.renew_mwh, readings = EXCLUDED.readings, "
			   "flags = EXCLUDED.flags, rev = EXCLUDED.rev, seq = EXCLUDED.seq, "
			   "received = now() WHERE EXCLUDED.rev > meter_hours.rev");
	if (!rc)
		rc = copy_in(p, "COPY stage_town_hours FROM STDIN", &p->town_hours);
	if (!rc && p->town_hours.rows)
		rc = exec0(p, "INSERT INTO town_hours (town, hour, meters, import_mwh, export_mwh, "
			   "renew_mwh, flags, rev, seq) SELECT DISTINCT ON (town, hour) town, "
			   "to_timestamp(hour), meters, import_mwh, export_mwh, renew_mwh, flags, "
			   "rev, seq FROM stage_town_hours ORDER BY town, hour, rev DESC "
			   "ON CONFLICT (town, hour) DO UPDATE SET meters = EXCLUDED.meters, "
			   "import_mwh = EXCLUDED.import_mwh, export_mwh = EXCLUDED.export_mwh, "
			   "renew_mwh = EXCLUDED.renew_mwh, flags = EXCLUDED.flags, "
			   "rev = EXCLUDED.rev, seq = EXCLUDED.seq, received = now() "
			   "WHERE EXCLUDED.rev > town_hours.rev");
	if (!rc)
		rc = copy_in(p, "COPY stage_loans FROM STDIN", &p->loans);
	if (!rc && p->loans.rows)
		rc = exec0(p, "INSERT INTO loans (town, lender, loan_id, borrower, power_w, until, "
			   "state, at, seq) SELECT DISTINCT ON (town, lender, loan_id) town, lender, "
			   "loan_id, borrower, power_w, to_timestamp(until), state, to_timestamp(at), "
			   "seq FROM stage_loans ORDER BY town, lender, loan_id, seq DESC "
			   "ON CONFLICT (town, lender, loan_id) DO UPDATE SET "
			   "borrower = EXCLUDED.borrower, power_w = EXCLUDED.power_w, "
			   "until = EXCLUDED.until, state = EXCLUDED.state, at = EXCLUDED.at, "
			   "seq = EXCLUDED.seq WHERE EXCLUDED.seq > loans.seq");
	for (size_t i = 0; !rc && i < p->n_ranges; i++) {
		const struct mpg_range *g = &p->ranges[i];
		char a[24], b[24], c[24], d[24], e[24], f[24];
		const char *v[6] = { I64(a, g->town), I64(b, g->first), I64(c, g->last),
				     I64(d, g->hours), I64(e, g->last_hour), I64(f, g->admin_hour) };

		if (!g->first)
			continue;
		rc = execv_(p, "INSERT INTO received (town, first_seq, last_seq, hours) VALUES "
			    "($1, $2, $3, $4)", 4, v);
		if (!rc) {
			const char *w[3] = { a, e, f };

			rc = execv_(p, "UPDATE towns SET "
				    "last_hour = CASE WHEN $2::bigint < 0 THEN last_hour ELSE "
				    "GREATEST(last_hour, to_timestamp($2)) END, "
				    "last_admin_hour = CASE WHEN $3::bigint < 0 THEN last_admin_hour "
				    "ELSE GREATEST(last_admin_hour, to_timestamp($3)) END "
				    "WHERE id = $1", 3, w);
		}
	}
	if (!rc)
		rc = exec0(p, "COMMIT");
	if (rc) {
		PQclear(PQexec(p->c, "ROLLBACK"));
		p->in_tx = false;
		return -1;
	}
	p->in_tx = false;
	p->rows_hours += p->hours.rows;
	p->rows_town_hours += p->town_hours.rows;
	p->rows_loans += p->loans.rows;
	p->commits++;
	return 0;
}

static void h_rollback(void *ctx)
{
	struct maind_pg *p = ctx;

	if (p->c)
		PQclear(PQexec(p->c, "ROLLBACK"));
	p->in_tx = false;
}

void mpg_hooks(struct maind_pg *p, struct gmps_hooks *h)
{
	memset(h, 0, sizeof(*h));
	h->ctx = p;
	h->lookup = h_lookup;
	h->begin = h_begin;
	h->records = h_records;
	h->lost = h_lost;
	h->result = h_result;
	h->hello = h_hello;
	h->cmd_next = h_cmd_next;
	h->commands = h_commands;
	h->save = h_save;
	h->commit = h_commit;
	h->rollback = h_rollback;
}

int mpg_towns_with_commands(struct maind_pg *p, int64_t now, int resend_s, uint16_t *out,
			    size_t max)
{
	char a[24], b[24];
	const char *v[2] = { I64(a, resend_s), I64(b, (int64_t)max) };
	PGresult *r = query(p, "SELECT DISTINCT town FROM commands WHERE (status IS NULL OR "
			    "status = 5) AND (sent IS NULL OR sent < now() - make_interval(secs "
			    "=> $1::int)) LIMIT $2", 2, v);
	int n;

	(void)now;
	if (!r)
		return -1;
	n = PQntuples(r);
	for (int i = 0; i < n; i++)
		out[i] = (uint16_t)atoi(PQgetvalue(r, i, 0));
	PQclear(r);
	return n;
}

int64_t mpg_changes(struct maind_pg *p)
{
	int64_t v;

	if (q1(p, "SELECT value FROM settings WHERE key = 'changes'", 0, NULL, 0, &v))
		return -1;
	return v;
}

int mpg_journal(struct maind_pg *p, int town, const char *what)
{
	char a[24];
	const char *v[2] = { town > 0 ? I64(a, town) : NULL, what };

	return execv_(p, "INSERT INTO journal (town, what) VALUES ($1, $2)", 2, v);
}
