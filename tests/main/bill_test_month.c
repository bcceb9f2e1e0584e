// SPDX-License-Identifier: GPL-2.0
/*
 * maind billing over a month, against a real PostgreSQL 15
 * (scripts/pg-cluster.sh): two towns of 100 meters each send March 2026
 * (Europe/London, the DST change of 29 March inside it) hour by hour
 * through maind's ingest hooks (maind_pg, as gmp_server calls them), the
 * tariff changes on 16 March, and mbill_tick runs in simulated time after
 * every day. The hours are sums of 15-minute readings the test makes;
 * some never come, some come late, some are impossible, some are revised.
 *
 * Checked, with expectations the test computes itself from its raw
 * readings (never from maind's tables):
 *  - every line and the total of every issued bill (estimates computed by
 *    the documented method), and a running bill mid-month;
 *  - each energy line against meterd's own price for the same readings
 *    (agent/core/tariff.c, 15-minute intervals, TZ=Europe/London), and the
 *    standing-charge difference against meterd's rule, explained;
 *  - VEE findings, estimates kept and marked replaced, late readings as
 *    adjustments on the next bill, the issued bill unchanged;
 *  - issued bills, lines and summaries refused any change; a second bill
 *    run issues nothing; one notice per bill; the towns' summaries and
 *    their GMP_TOWN_SUMMARY commands.
 * Skipped (with a message) only when PostgreSQL 15's binaries are absent.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "billing/billing.h"
#include "mainctl_parts.h"
#include "maind_pg.h"
#include "pg_scratch.h"
#include "tariff.h"

#define NTOWNS		2
#define METERS		100
#define MAR_HOURS	743		/* 1 March 00:00 GMT .. 1 April 00:00 BST */
#define ALL_HOURS	(MAR_HOURS + 24)	/* and the first UTC day of April */
#define IVL		4		/* 15-minute readings per hour */
#define MAXV		3

enum st { SENT, GAP_LATE, GAP, REJECT, REVISED };

struct ver {
	int id;
	const char *plan;
	int32_t eff_ymd;
	int tax_bp;
	struct tariff t;
};

struct world {
	char dir[64], pgdir[128], conninfo[256];
	struct maind_pg p;
	struct gmps_hooks h;
	int64_t t0;			/* 2026-03-01 00:00 UTC */
	int64_t seq[NTOWNS];
	struct ver v[MAXV];
	uint8_t st[NTOWNS][METERS][ALL_HOURS];
	int64_t est[NTOWNS][METERS][MAR_HOURS][3];	/* the test's own estimates */
	struct gmp_msg *batch;
	size_t nbatch;
};

static const char *const tou1[] = {
	"type=tou", "rates=offpeak:12.5, peak:35.1, shoulder:24.0",
	"weekday=00:00-07:00 offpeak, 07:00-16:00 shoulder, 16:00-19:00 peak, 19:00-24:00 shoulder",
	"weekend=00:00-08:00 offpeak, 08:00-24:00 shoulder", "standing_charge=45.5",
	"feed_in=15", NULL };
static const char *const tou2[] = {
	"type=tou", "rates=offpeak:13.2, peak:37.9, shoulder:25.5",
	"weekday=00:00-06:00 offpeak, 06:00-17:00 shoulder, 17:00-20:00 peak, 20:00-24:00 shoulder",
	"weekend=00:00-08:00 offpeak, 08:00-24:00 shoulder", "standing_charge=48.25",
	"feed_in=16.5", NULL };
static const char *const tier1[] = {
	"type=tiered", "tiers=150:20.0, 400:25.5, *:31.2", "standing_charge=40",
	"feed_in=10", NULL };

/* ---- the raw readings -------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t key(int t, int m, int h, int k)
{
	return mix(((uint64_t)t << 48) ^ ((uint64_t)m << 32) ^ ((uint64_t)h << 8) ^ (uint64_t)k);
}

static bool tiered(int m)
{
	return m % 10 == 9;
}

/* One 15-minute reading (mWh): import, export, renewable. */
static void ivl(int t, int m, int h, int k, int64_t out[3])
{
	int uh = (h % 24 + 24) % 24;
	bool solar = m % 5 == 0 && uh >= 9 && uh < 16;

	out[0] = 40000 + (int64_t)(key(t, m, h, k) % 360000);
	if (t == 1 && m == 3 && h == 300)
		out[0] = 2500000;	/* a real spike: 10 kWh in the hour */
	out[1] = solar ? (int64_t)(key(t, m, h, k + 16) % 300000) : 0;
	out[2] = out[1] + (solar ? 20000 : 0);
}

static void hour_val(int t, int m, int h, int64_t out[3])
{
	out[0] = out[1] = out[2] = 0;
	for (int k = 0; k < IVL; k++) {
		int64_t r[3];

		ivl(t, m, h, k, r);
		for (int j = 0; j < 3; j++)
			out[j] += r[j];
	}
}

/* ---- time and tariffs, as meterd sees them (TZ=Europe/London) ---------------------- */

static int32_t local_ymd(int64_t when)
{
	time_t tt = (time_t)when;
	struct tm tm;

	localtime_r(&tt, &tm);
	return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

static const struct ver *ver_at(const struct world *w, const char *plan, int64_t when)
{
	const struct ver *best = NULL;
	int32_t ymd = local_ymd(when);

	for (int i = 0; i < MAXV; i++)
		if (!strcmp(w->v[i].plan, plan) && w->v[i].eff_ymd <= ymd)
			best = &w->v[i];
	return best;
}

static const char *plan_of(int m)
{
	return tiered(m) ? "tiered" : "tou";
}

static int64_t rnd(int64_t nano)
{
	const int64_t u = 1000000000;

	return nano >= 0 ? (nano + u / 2) / u : -((-nano + u / 2) / u);
}

static int64_t rdiv(int64_t a, int64_t b)	/* a >= 0, b > 0: half up */
{
	return (a + b / 2) / b;
}

/* ---- the expected bill ------------------------------------------------------------- */

struct xline {
	int kind, version, period;
	int64_t mwh, nano, minor;
};

struct xbill {
	struct xline l[64];
	int n;
	int64_t total;
};

static struct xline *xl(struct xbill *b, int kind, int version, int period)
{
	for (int i = 0; i < b->n; i++)
		if (b->l[i].kind == kind && b->l[i].version == version && b->l[i].period == period)
			return &b->l[i];
	b->l[b->n] = (struct xline){ kind, version, period, 0, 0, 0 };
	return &b->l[b->n++];
}

/* Rate one hour into b as maind's rules say (cum: tiers). */
static void xrate(struct xbill *b, const struct ver *v, int64_t when, const int64_t val[3],
		  bool est, int64_t *cum)
{
	struct tariff_part parts[TARIFF_MAX_PERIODS];
	unsigned n = tariff_split_import(&v->t, (time_t)when, (uint64_t)*cum, (uint64_t)val[0],
					 parts);

	for (unsigned k = 0; k < n; k++) {
		struct xline *l = xl(b, est ? MBILL_IMPORT_EST : MBILL_IMPORT, v->id,
				     (int)parts[k].period);

		l->mwh += (int64_t)parts[k].mwh;
		l->nano += parts[k].cost_nano;
	}
	if (val[1]) {
		struct xline *l = xl(b, est ? MBILL_EXPORT_EST : MBILL_EXPORT, v->id, 0);

		l->mwh += val[1];
		l->nano -= tariff_export_credit_nano(&v->t, (uint64_t)val[1]);
	}
	*cum += val[0];
}

static int64_t xnet(const struct ver *v, int64_t when, const int64_t val[3])
{
	struct tariff_part parts[TARIFF_MAX_PERIODS];
	unsigned n = tariff_split_import(&v->t, (time_t)when, 0, (uint64_t)val[0], parts);
	int64_t s = 0;

	for (unsigned k = 0; k < n; k++)
		s += parts[k].cost_nano;
	return s - tariff_export_credit_nano(&v->t, (uint64_t)val[1]);
}

/* Standing charges for local days [d0, d1) (YYYYMMDD of local midnights), taxes, total. */
static void xfinish(const struct world *w, struct xbill *b, const char *plan, int64_t from,
		    int64_t to)
{
	int64_t vsum[MAXV] = { 0 };

	/* one standing day per local day started in [from, to) */
	for (int64_t t = from; t < to; t += 3600) {
		int32_t ymd = local_ymd(t);

		if (t != from && local_ymd(t - 3600) == ymd)
			continue;
		const struct ver *v = ver_at(w, plan, t);
		struct xline *l = xl(b, MBILL_LINE_STANDING, v->id, 0);

		l->mwh++;
		l->nano += v->t.standing_milli * 1000000;
	}
	for (int i = 0; i < b->n; i++) {
		struct xline *l = &b->l[i];

		l->minor = rnd(l->nano);
		for (int k = 0; k < MAXV; k++)
			if (w->v[k].id == l->version)
				vsum[k] += l->minor;
	}
	b->total = 0;
	for (int k = 0; k < MAXV; k++) {
		bool used = false;
		int64_t tax;

		if (strcmp(w->v[k].plan, plan))
			continue;
		for (int i = 0; i < b->n; i++)
			used |= b->l[i].version == w->v[k].id;
		if (!used)
			continue;
		tax = vsum[k] >= 0 ? rdiv(vsum[k] * w->v[k].tax_bp, 10000) :
				     -rdiv(-vsum[k] * w->v[k].tax_bp, 10000);
		xl(b, MBILL_LINE_TAX, w->v[k].id, 0)->minor = tax;
		b->total += vsum[k] + tax;
	}
}

/* ---- feeding maind ------------------------------------------------------------------- */

static void add_hour(struct world *w, int t, int m, int h, int64_t imp, int64_t exp,
		     int64_t ren, int64_t flags, int64_t rev)
{
	struct gmp_msg *g = &w->batch[w->nbatch++];
	int64_t when = w->t0 + (int64_t)h * 3600;
	const struct ver *v = ver_at(w, plan_of(m), when);

	memset(g, 0, sizeof(*g));
	g->type = GMP_HOUR;
	g->hour.seq = ++w->seq[t];
	g->hour.meter = m + 1;
	g->hour.hour = when;
	g->hour.period = v->t.type == TARIFF_TOU ? tariff_period_at(&v->t, (time_t)when, 0) : 0;
	g->hour.import_mwh = imp;
	g->hour.export_mwh = exp;
	g->hour.renew_mwh = ren;
	g->hour.readings = 4;
	g->hour.flags = flags;
	g->hour.rev = rev;
}

static int commit_town(struct world *w, int t, int64_t now)
{
	int rc = w->h.begin(w->h.ctx) || w->h.records(w->h.ctx, (uint16_t)(11 + t), w->batch,
						      w->nbatch, now) || w->h.commit(w->h.ctx);

	w->nbatch = 0;
	return rc;
}

/* The hours of UTC day d (and the revisions of the day before). */
static int feed_day(struct world *w, int d, bool late)
{
	for (int t = 0; t < NTOWNS; t++) {
		for (int m = 0; m < METERS; m++)
			for (int h = d * 24; h < d * 24 + 24 && h < ALL_HOURS; h++) {
				int64_t v[3];

				hour_val(t, m, h, v);
				switch (w->st[t][m][h]) {
				case GAP_LATE:
					if (!late)
						break;
					/* fallthrough */
				case SENT:
					add_hour(w, t, m, h, v[0], v[1], v[2], 0, 0);
					break;
				case REJECT:
					add_hour(w, t, m, h, 40000000, v[1], v[2], 0, 0);
					break;
				case REVISED:
					add_hour(w, t, m, h, v[0] / 2, v[1] / 2, v[2] / 2,
						 GMP_HF_INCOMPLETE, 0);
					break;
				}
				if (h >= 24 && w->st[t][m][h - 24] == REVISED && !late) {
					hour_val(t, m, h - 24, v);
					add_hour(w, t, m, h - 24, v[0], v[1], v[2], 0, 1);
				}
			}
		if (!late && d == 5) {	/* a day of the town in administrative mode */
			for (int h = 5 * 24; h < 6 * 24; h++) {
				struct gmp_msg *g = &w->batch[w->nbatch++];

				memset(g, 0, sizeof(*g));
				g->type = GMP_TOWN_HOUR;
				g->town_hour.seq = ++w->seq[t];
				g->town_hour.hour = w->t0 + (int64_t)h * 3600;
				g->town_hour.meters = METERS;
				g->town_hour.flags = t == 0 ? GMP_HF_ADMIN : 0;
			}
		}
		if (!late && d == 10) {	/* town 11 lends town 12 5 kW for two hours */
			struct gmp_msg *g = &w->batch[w->nbatch++];

			memset(g, 0, sizeof(*g));
			g->type = GMP_LOAN;
			g->loan.seq = ++w->seq[t];
			g->loan.time = w->t0 + 10 * 86400 + 3600;
			g->loan.loan_id = 1;
			g->loan.lender = 11;
			g->loan.borrower = 12;
			g->loan.power_w = 5000;
			g->loan.until = g->loan.time + 7200;
			g->loan.state = GMP_LOAN_OPEN;
		}
		if (commit_town(w, t, w->t0 + (int64_t)(d + 1) * 86400))
			return -1;
	}
	return 0;
}

/* ---- the test's own estimates (Documentation/billing.md "Estimation") ----------------- */

static bool real_at_issue(const struct world *w, int t, int m, int h)
{
	return h >= 0 && h < MAR_HOURS && (w->st[t][m][h] == SENT || w->st[t][m][h] == REVISED);
}

static void estimate(struct world *w, int t, int m, int h)
{
	int64_t s[3] = { 0 }, v[3], *e = w->est[t][m][h];
	int n = 0, hb = -1, ha = -1;

	for (int k = 1; k <= 4; k++)
		if (real_at_issue(w, t, m, h - 168 * k)) {
			hour_val(t, m, h - 168 * k, v);
			for (int j = 0; j < 3; j++)
				s[j] += v[j];
			n++;
		}
	if (n) {
		for (int j = 0; j < 3; j++)
			e[j] = rdiv(s[j], n);
		return;
	}
	for (int k = h - 1; k >= 0 && hb < 0; k--)
		if (real_at_issue(w, t, m, k))
			hb = k;
	for (int k = h + 1; k < MAR_HOURS && ha < 0; k++)
		if (real_at_issue(w, t, m, k))
			ha = k;
	if (hb >= 0 && ha >= 0) {
		int64_t b[3], a[3];

		hour_val(t, m, hb, b);
		hour_val(t, m, ha, a);
		for (int j = 0; j < 3; j++)
			e[j] = rdiv(b[j] * (ha - hb) + (a[j] - b[j]) * (h - hb), ha - hb);
	} else if (hb >= 0 || ha >= 0) {
		hour_val(t, m, hb >= 0 ? hb : ha, e);
	} else {
		e[0] = e[1] = e[2] = 0;
	}
}

/* The March bill of (t, m) as maind should issue it; its meterd reference too. */
static void expect_march(struct world *w, int t, int m, struct xbill *b, int64_t upto_h,
			 bool issued)
{
	int64_t cum = 0;
	const char *plan = plan_of(m);

	memset(b, 0, sizeof(*b));
	for (int h = 0; h < upto_h; h++) {
		int64_t when = w->t0 + (int64_t)h * 3600, v[3], half[3];
		const struct ver *ve = ver_at(w, plan, when);

		hour_val(t, m, h, v);
		switch (w->st[t][m][h]) {
		case SENT:
			xrate(b, ve, when, v, false, &cum);
			break;
		case REVISED:
			for (int j = 0; j < 3; j++)
				half[j] = v[j] / 2;
			xrate(b, ve, when, half, false, &cum);
			if (h + 24 < upto_h || issued)	/* the revision came the next day */
				xl(b, MBILL_LINE_ADJUST, ve->id, 0)->nano += xnet(ve, when, v) -
									      xnet(ve, when, half);
			break;
		default:
			if (issued)
				xrate(b, ve, when, w->est[t][m][h], true, &cum);
			break;
		}
	}
	xfinish(w, b, plan, w->t0, w->t0 + (int64_t)upto_h * 3600);
}

/* ---- PostgreSQL -------------------------------------------------------------------- */

/* pg1 on the world's connection, the statement printf-formatted (-1: none or an error). */
static int64_t pgw1(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int64_t pgw1(struct world *w, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	PGresult *r;
	int64_t v = -1;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	r = PQexec(w->p.c, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fprintf(stderr, "# %s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	return v;
}

/* A statement expected to fail: its error, or "" when it went through. */
static void pg_refused(struct world *w, const char *sql, char *err, size_t len)
{
	PGresult *r = PQexec(w->p.c, sql);

	snprintf(err, len, "%s", PQresultStatus(r) == PGRES_COMMAND_OK ||
		 PQresultStatus(r) == PGRES_TUPLES_OK ? "" : PQresultErrorMessage(r));
	PQclear(r);
}

static int ctl(struct world *w, const char *cmd, const char *const *words)
{
	const struct mainctl_ctx x = { w->conninfo, w->conninfo, NULL };
	char *args[16];
	int n = 0;

	int out, rc, null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	while (words[n] && n < 15) {
		args[n] = (char *)words[n];	/* the commands only read them (tariff add: copies) */
		n++;
	}
	/* what mainctl prints for the operator is not TAP: away with it */
	fflush(stdout);
	out = dup(1);
	dup2(null, 1);
	rc = mctl_bill(&x, cmd, n, args);
	fflush(stdout);
	dup2(out, 1);
	close(out);
	close(null);
	return rc;
}

static int tariff_add(struct world *w, const char *plan, const char *eff, int tax,
		      const char *const *spec, struct ver *v)
{
	char a[MAXV * 4][300], taxs[24];
	const char *words[16] = { "add", plan, "Europe/London", eff };
	struct tariff_spec ts;
	const char *bad;
	char err[200];
	int n = 4, k;

	tariff_spec_init(&ts);
	for (k = 0; spec[k]; k++) {
		char *eq;

		snprintf(a[k], sizeof(a[k]), "%s", spec[k]);
		words[n++] = a[k];
		eq = strchr(a[k], '=');
		*eq = '\0';
		tariff_spec_set(&ts, a[k], eq + 1);
		*eq = '=';
	}
	snprintf(taxs, sizeof(taxs), "tax=%d.%02d", tax / 100, tax % 100);
	words[n++] = taxs;
	words[n] = NULL;
	if (ctl(w, "tariff", words))
		return -1;
	if (tariff_compile(&ts, &v->t, &bad, err, sizeof(err)))
		return -1;
	v->plan = plan;
	v->tax_bp = tax;
	v->eff_ymd = atoi(eff) * 10000 + atoi(eff + 5) * 100 + atoi(eff + 8);
	v->id = (int)pgw1(w, "SELECT id FROM tariff_versions WHERE plan = '%s' AND effective = '%s'",
			  plan, eff);
	return v->id > 0 ? 0 : -1;
}

FIXTURE(bill) {
	struct world *w;
	bool pg;
};

FIXTURE_SETUP(bill)
{
	struct world *w;
	char err[768], sql[256];
	struct tm tm = { .tm_year = 126, .tm_mon = 2, .tm_mday = 1 };

	self->pg = pg_available();
	if (!self->pg)
		return;
	setenv("TZ", "Europe/London", 1);	/* meterd's local time, for tariff.c */
	tzset();
	w = self->w = calloc(1, sizeof(*w));
	ASSERT_NE(NULL, w);
	w->t0 = timegm(&tm);
	w->batch = calloc(NTOWNS * METERS * 60 + 64, sizeof(*w->batch));
	ASSERT_NE(NULL, w->batch);
	ASSERT_EQ(0, scratch_dir(w->dir, sizeof(w->dir), "bill-test"));
	ASSERT_EQ(0, pg_cluster_start(w->dir, w->pgdir, sizeof(w->pgdir), w->conninfo,
				      sizeof(w->conninfo)));
	ASSERT_EQ(0, mpg_open(&w->p, w->conninfo, err, sizeof(err))) TH_LOG("%s", err);
	mpg_hooks(&w->p, &w->h);
	for (int t = 0; t < NTOWNS; t++) {
		snprintf(sql, sizeof(sql), "INSERT INTO towns (id, name, pk) VALUES (%d, 'town%d', "
			 "decode(repeat('%02x', 32), 'hex'))", 11 + t, 11 + t, t + 1);
		PQclear(PQexec(w->p.c, sql));
	}
}

FIXTURE_TEARDOWN(bill)
{
	struct world *w = self->w;

	if (!self->pg)
		return;
	mpg_close(&w->p);
	pg_cluster_stop(w->pgdir);
	scratch_remove(w->dir);
	free(w->batch);
	free(w);
}

/* Compare bill `id` with b line by line; the count of differences. */
static int check_lines(struct world *w, int64_t id, const struct xbill *b, bool issued,
		       int64_t *db_total)
{
	char sql[256];
	PGresult *r;
	int bad = 0, n = 0;

	*db_total = pgw1(w, "SELECT total_minor FROM bills WHERE id = %lld", (long long)id);
	if (!issued)
		return 0;
	snprintf(sql, sizeof(sql), "SELECT kind, version, period, amount_minor FROM bill_lines "
		 "WHERE bill = %lld", (long long)id);
	r = PQexec(w->p.c, sql);
	for (int i = 0; i < PQntuples(r); i++) {
		int kind = atoi(PQgetvalue(r, i, 0)), ver = atoi(PQgetvalue(r, i, 1));
		int per = atoi(PQgetvalue(r, i, 2));
		int64_t amt = strtoll(PQgetvalue(r, i, 3), NULL, 10);
		bool found = false;

		for (int k = 0; k < b->n; k++)
			if (b->l[k].kind == kind && b->l[k].version == ver && b->l[k].period == per) {
				found = true;
				if (b->l[k].minor != amt) {
					fprintf(stderr, "# bill %lld line %d/%d/%d: %lld, expected "
						"%lld\n", (long long)id, kind, ver, per,
						(long long)amt, (long long)b->l[k].minor);
					bad++;
				}
			}
		if (!found) {
			fprintf(stderr, "# bill %lld: unexpected line %d/%d/%d\n", (long long)id,
				kind, ver, per);
			bad++;
		}
		n++;
	}
	PQclear(r);
	for (int k = 0; k < b->n; k++)
		if (b->l[k].minor || b->l[k].mwh || b->l[k].kind == MBILL_LINE_TAX)
			n--;
	if (n) {
		fprintf(stderr, "# bill %lld: %d lines more than expected\n", (long long)id, n);
		bad++;
	}
	return bad;
}

TEST_F_TIMEOUT(bill, a_month_billed_against_the_raw_readings_and_meterd, 300)
{
	struct world *w = self->w;
	int64_t now, n, billed[NTOWNS] = { 0 }, import_mwh[NTOWNS] = { 0 };
	int64_t est_hours[NTOWNS] = { 0 }, late = 0, revised = 0, clean = 0;
	int bad = 0, explained = 0;
	char err[512];
	bool own_alarms;
	int64_t t_start = mono_ms(), t_feed = 0, t_tick = 0;

	if (!self->pg)
		SKIP(return, PG_SKIP_WHY);
	ASSERT_EQ(0, tariff_add(w, "tou", "2026-01-01", 500, tou1, &w->v[0]));
	ASSERT_EQ(0, tariff_add(w, "tou", "2026-03-16", 500, tou2, &w->v[1]));
	ASSERT_EQ(0, tariff_add(w, "tiered", "2026-01-01", 500, tier1, &w->v[2]));
	/* two customers through mainctl, the others in one statement */
	ASSERT_EQ(0, ctl(w, "customer", (const char *const[]){ "add", "11", "1", "Customer 11-1",
			 "tariff=tou", "since=2026-03-01", "medium=email", "email=a@example.org",
			 NULL }));
	ASSERT_EQ(0, ctl(w, "customer", (const char *const[]){ "add", "11", "2", "Customer 11-2",
			 "tariff=tou", "since=2026-03-01", NULL }));
	EXPECT_EQ(2, ctl(w, "customer", (const char *const[]){ "add", "11", "3", "X",
			 "tariff=tou", "medium=sms", NULL }));	/* no phone */
	EXPECT_EQ(1, ctl(w, "customer", (const char *const[]){ "add", "11", "3", "X",
			 "tariff=none", NULL }));
	ASSERT_EQ(1, pgw1(w, "WITH c AS (INSERT INTO customers (town, meter, name, tariff, since) "
			  "SELECT t, m, 'Customer ' || t || '-' || m, CASE WHEN (m - 1) %% 10 = 9 "
			  "THEN 'tiered' ELSE 'tou' END, '2026-03-01 00:00+00' FROM "
			  "generate_series(11, %d) t, generate_series(1, %d) m WHERE NOT (t = 11 AND "
			  "m <= 2) RETURNING 1) SELECT (count(*) = %d)::int FROM c", 10 + NTOWNS, METERS,
			  NTOWNS * METERS - 2));
	/* what each meter-hour does: gaps on a quarter of the meters, late ones, a block */
	for (int t = 0; t < NTOWNS; t++)
		for (int m = 0; m < METERS; m++)
			for (int h = 0; h < ALL_HOURS; h++) {
				uint64_t k = key(t, m, h, 99);
				uint8_t *s = &w->st[t][m][h];

				*s = SENT;
				if (h >= MAR_HOURS || tiered(m))
					continue;
				if (m % 4 == 2 && k % 50 == 0)
					*s = k % 3 == 0 ? GAP_LATE : GAP;
				if ((t == 0 && m == 6 && h >= 9 * 24 && h < 11 * 24) ||
				    (t == 1 && m == 10 && h >= 2 && h < 6))
					*s = GAP;
				if (t == 0 && (m == 3 || m == 4 || m == 5) && h == 200)
					*s = REJECT;
				if (m % 25 == 1 && (h == 130 || h == 418))
					*s = REVISED;
			}
	own_alarms = pgw1(w, "SELECT (to_regclass('meter_alarms') IS NULL)::int") == 1;
	if (own_alarms) {	/* as the detection part keeps them */
		PQclear(PQexec(w->p.c, "CREATE TABLE meter_alarms (town integer, meter integer, "
			       "code integer, active boolean, at timestamptz)"));
		PQclear(PQexec(w->p.c, "INSERT INTO meter_alarms VALUES (12, 4, 1, true, "
			       "'2026-03-05 10:00+00'), (12, 5, 2, true, '2026-03-20 10:00+00'), "
			       "(12, 5, 2, false, '2026-03-20 11:00+00'), "
			       "(12, 5, 2, true, '2026-04-01 10:00+00')"));
	}
	TH_LOG("set up: %lld ms", (long long)(mono_ms() - t_start));
	/* March, day by day, a tick after each */
	for (int d = 0; d * 24 < MAR_HOURS; d++) {
		int64_t t1 = mono_ms(), t2;

		ASSERT_EQ(0, feed_day(w, d, false)) TH_LOG("%s", w->p.err);
		t2 = mono_ms();
		now = w->t0 + (int64_t)(d + 1) * 86400 + 600;
		/* every other day here (maind: every 5 minutes, rating what is new) */
		if (d % 2 == 1 || (d + 1) * 24 >= MAR_HOURS)
			ASSERT_EQ(0, mbill_tick(&w->p, now)) TH_LOG("%s", w->p.err);
		t_feed += t2 - t1;
		t_tick += mono_ms() - t2;
		if (d == 9) {	/* a running bill up to the reading: 10 days */
			struct xbill b;
			int64_t tot;

			expect_march(w, 0, 0, &b, 240, false);
			check_lines(w, pgw1(w, "SELECT id FROM bills WHERE town = 11 AND meter = 1"),
				    &b, false, &tot);
			EXPECT_EQ(b.total, tot);
			expect_march(w, 1, 9, &b, 240, false);	/* tiered */
			check_lines(w, pgw1(w, "SELECT id FROM bills WHERE town = 12 AND meter = 10"),
				    &b, false, &tot);
			EXPECT_EQ(b.total, tot);
		}
	}
	TH_LOG("March fed and rated: %lld ms (feeding %lld ms, ticks %lld ms)",
	       (long long)(mono_ms() - t_start), (long long)t_feed, (long long)t_tick);
	EXPECT_EQ(0, pgw1(w, "SELECT count(*) FROM bills WHERE state = 'issued'"));
	/* 1 April 06:00 UTC + the issue delay: March is issued by the tick */
	now = w->t0 + (int64_t)MAR_HOURS * 3600 + MBILL_ISSUE_DELAY_S + 7 * 3600;
	ASSERT_EQ(0, mbill_tick(&w->p, now)) TH_LOG("%s", w->p.err);
	EXPECT_EQ(NTOWNS * METERS, pgw1(w, "SELECT count(*) FROM bills WHERE state = 'issued' "
				        "AND month = 202603"));
	TH_LOG("March issued: %lld ms", (long long)(mono_ms() - t_start));
	/* every bill, line by line */
	for (int t = 0; t < NTOWNS; t++)
		for (int m = 0; m < METERS; m++)
			for (int h = 0; h < MAR_HOURS; h++)
				if (w->st[t][m][h] == GAP || w->st[t][m][h] == GAP_LATE ||
				    w->st[t][m][h] == REJECT)
					estimate(w, t, m, h);
	for (int t = 0; t < NTOWNS; t++)
		for (int m = 0; m < METERS; m++) {
			struct xbill b;
			int64_t id = pgw1(w, "SELECT id FROM bills WHERE town = %d AND meter = %d AND "
					  "month = 202603", 11 + t, m + 1), tot;
			int e = 0;

			expect_march(w, t, m, &b, MAR_HOURS, true);
			bad += check_lines(w, id, &b, true, &tot);
			if (tot != b.total) {
				fprintf(stderr, "# bill %lld (%d, %d): total %lld, expected %lld\n",
					(long long)id, 11 + t, m + 1, (long long)tot,
					(long long)b.total);
				bad++;
			}
			billed[t] += b.total;
			for (int h = 0; h < MAR_HOURS; h++) {
				int64_t v[3];

				hour_val(t, m, h, v);
				switch (w->st[t][m][h]) {
				case SENT:
					import_mwh[t] += v[0];
					break;
				case REVISED:
					import_mwh[t] += v[0] / 2;
					break;
				default:
					import_mwh[t] += w->est[t][m][h][0];
					e++;
				}
			}
			est_hours[t] += e;
		}
	EXPECT_EQ(0, bad);
	/* meterd's price for the same readings, 15-minute intervals, line by line */
	for (int t = 0; t < NTOWNS; t++)
		for (int m = 0; m < METERS; m++) {
			int64_t nano[MAXV][TARIFF_MAX_PERIODS] = { { 0 } }, cum = 0, standing = 0;
			int64_t id = pgw1(w, "SELECT id FROM bills WHERE town = %d AND meter = %d AND "
					  "month = 202603", 11 + t, m + 1);
			bool is_clean = true;
			const struct ver *last = NULL;

			bool revised_m = false;
			int64_t days_v[MAXV] = { 0 }, days = 0, want_standing = 0, db_standing;

			for (int h = 0; h < MAR_HOURS; h++) {
				int64_t when = w->t0 + (int64_t)h * 3600;

				if (!h || local_ymd(when - 3600) != local_ymd(when)) {
					days_v[ver_at(w, plan_of(m), when) - w->v]++;
					days++;
				}
				revised_m |= w->st[t][m][h] == REVISED;
				if (w->st[t][m][h] != SENT) {
					is_clean = false;
					continue;	/* estimated or adjusted: explained below */
				}
				for (int k = 0; k < IVL; k++) {
					int64_t r[3];
					const struct ver *v;
					struct tariff_part parts[TARIFF_MAX_PERIODS];
					unsigned np;

					when = w->t0 + (int64_t)h * 3600 + k * 900;
					v = ver_at(w, plan_of(m), when);
					ivl(t, m, h, k, r);
					np = tariff_split_import(&v->t, (time_t)when, (uint64_t)cum,
								 (uint64_t)r[0], parts);
					for (unsigned j = 0; j < np; j++)
						nano[v - w->v][parts[j].period] += parts[j].cost_nano;
					cum += r[0];
				}
			}
			last = ver_at(w, plan_of(m), w->t0 + (int64_t)(MAR_HOURS - 1) * 3600);
			/* meterd: the standing charge in force, for every local day started */
			EXPECT_EQ(days, tariff_local_days((time_t)w->t0,
							  (time_t)(w->t0 + (MAR_HOURS - 1) * 3600)));
			standing = last->t.standing_milli * 1000000 * days;
			for (int k = 0; k < MAXV; k++)
				if (days_v[k])
					want_standing += rnd(days_v[k] * w->v[k].t.standing_milli * 1000000);
			db_standing = pgw1(w, "SELECT sum(amount_minor) FROM bill_lines WHERE bill = "
					   "%lld AND kind = 10", (long long)id);
			if (db_standing != want_standing)
				bad++;
			if (!explained && days_v[0] && days_v[1]) {
				TH_LOG("standing charge explained against meterd: maind %lld (each "
				       "version for its %lld + %lld days), meterd %lld (the version in "
				       "force at the end for all %lld days)", (long long)db_standing,
				       (long long)days_v[0], (long long)days_v[1],
				       (long long)rnd(standing), (long long)days);
				explained = 1;
			}
			/* tiers depend on all that came before; revised hours were rated twice */
			if ((tiered(m) && !is_clean) || revised_m)
				continue;
			for (int k = 0; k < MAXV; k++)
				for (int p = 0; p < TARIFF_MAX_PERIODS; p++) {
					int64_t db;

					if (!nano[k][p])
						continue;
					db = pgw1(w, "SELECT amount_minor FROM bill_lines WHERE bill = %lld "
						  "AND kind = 0 AND version = %d AND period = %d",
						  (long long)id, w->v[k].id, p);
					if (db != rnd(nano[k][p])) {
						fprintf(stderr, "# bill %lld: import %s/%d %lld, meterd %lld\n",
							(long long)id, w->v[k].plan, p, (long long)db,
							(long long)rnd(nano[k][p]));
						bad++;
					}
				}
			if (is_clean)
				clean++;
			if (!explained && !tiered(m) && !is_clean) {
				TH_LOG("bill %lld explained against meterd: import lines equal for the "
				       "hours read; estimated and revised hours and the standing charge "
				       "(maind: each version for its days; meterd: %lld.%03lld/day at "
				       "the last version for all) make the rest", (long long)id,
				       (long long)last->t.standing_milli / 1000,
				       (long long)last->t.standing_milli % 1000);
				explained = 1;
			}
		}
	EXPECT_EQ(0, bad);
	EXPECT_LT(NTOWNS * METERS / 2, clean);
	/* VEE findings */
	EXPECT_EQ(3, pgw1(w, "SELECT count(*) FROM vee_issues WHERE code = 'impossible'"));
	EXPECT_EQ(1, pgw1(w, "SELECT count(*) FROM vee_issues WHERE code = 'spike' AND town = 12 "
			  "AND meter = 4"));
	EXPECT_EQ(0, pgw1(w, "SELECT count(*) FROM vee_issues WHERE code = 'period'"));
	for (int t = 0; t < NTOWNS; t++)
		for (int m = 0; m < METERS; m++)
			for (int h = 0; h < MAR_HOURS; h++)
				revised += w->st[t][m][h] == REVISED;
	EXPECT_EQ(revised, pgw1(w, "SELECT count(*) FROM vee_issues WHERE code = 'incomplete'"));
	EXPECT_EQ(revised, pgw1(w, "SELECT count(*) FROM bill_adjust WHERE reason = "
			        "'revised reading'"));
	EXPECT_EQ(est_hours[0] + est_hours[1], pgw1(w, "SELECT count(*) FROM meter_estimates"));
	/* notices: one per bill, complete */
	EXPECT_EQ(NTOWNS * METERS, pgw1(w, "SELECT count(*) FROM notices WHERE kind = 'bill'"));
	EXPECT_EQ(NTOWNS * METERS, pgw1(w, "SELECT count(*) FROM notices n JOIN bills b ON "
				        "b.id = n.ref WHERE n.customer = b.customer AND n.body LIKE "
				        "'%%Total%%' || to_char(b.total_minor / 100.0, 'FM9999990.00') "
				        "|| E'\\n%%'"));
	/* the towns' summaries and their commands */
	for (int t = 0; t < NTOWNS; t++) {
		char sql[256];
		PGresult *r;
		struct gmp_msg g;

		snprintf(sql, sizeof(sql), "SELECT type, array_to_string(args, ' ') FROM commands "
			 "WHERE town = %d AND type = 25", 11 + t);
		r = PQexec(w->p.c, sql);
		ASSERT_EQ(1, PQntuples(r));
		ASSERT_EQ(0, mpg_command_msg(25, "", "", PQgetvalue(r, 0, 1), &g));
		PQclear(r);
		EXPECT_EQ(202603, g.summary.month);
		EXPECT_EQ(METERS, g.summary.meters);
		EXPECT_EQ(rdiv(import_mwh[t], 1000), g.summary.import_wh);
		EXPECT_EQ(t == 0 ? 10000 : 0, g.summary.lent_wh);
		EXPECT_EQ(t == 1 ? 10000 : 0, g.summary.borrowed_wh);
		EXPECT_EQ(t == 0 ? 24 : 0, g.summary.admin_hours);
		if (own_alarms)
			EXPECT_EQ(t == 1 ? 2 : 0, g.summary.alarms);
		EXPECT_EQ(est_hours[t], g.summary.estimated_hours);
		EXPECT_EQ(billed[t], g.summary.billed_minor);
	}
	EXPECT_EQ(NTOWNS * METERS, pgw1(w, "SELECT count(*) FROM meter_months WHERE month = 202603"));
	EXPECT_EQ(pgw1(w, "SELECT sum(max_mwh) FROM bills WHERE month = 202603"),
		  pgw1(w, "SELECT sum(max_mwh) FROM meter_months"));
	/* issued is final */
	n = pgw1(w, "SELECT id FROM bills WHERE town = 11 AND meter = 1");
	{
		char sql[160];

		snprintf(sql, sizeof(sql), "UPDATE bills SET total_minor = 0 WHERE id = %lld",
			 (long long)n);
		pg_refused(w, sql, err, sizeof(err));
		EXPECT_NE(NULL, strstr(err, "immutable")) TH_LOG("%s", err);
		snprintf(sql, sizeof(sql), "DELETE FROM bill_lines WHERE bill = %lld", (long long)n);
		pg_refused(w, sql, err, sizeof(err));
		EXPECT_NE(NULL, strstr(err, "immutable")) TH_LOG("%s", err);
		snprintf(sql, sizeof(sql), "INSERT INTO bill_lines VALUES (%lld, 99, 11, 1, 0, 'x', "
			 "0, 0, -100000)", (long long)n);
		pg_refused(w, sql, err, sizeof(err));
		EXPECT_NE(NULL, strstr(err, "issued")) TH_LOG("%s", err);
		pg_refused(w, "UPDATE meter_months SET cost_minor = 0", err, sizeof(err));
		EXPECT_NE(NULL, strstr(err, "immutable")) TH_LOG("%s", err);
	}
	/* a second run issues nothing */
	{
		int64_t totals = pgw1(w, "SELECT sum(total_minor) FROM bills");

		ASSERT_EQ(0, mbill_issue(&w->p, 202603, now, &n)) TH_LOG("%s", w->p.err);
		EXPECT_EQ(0, n);
		EXPECT_EQ(totals, pgw1(w, "SELECT sum(total_minor) FROM bills"));
		EXPECT_EQ(NTOWNS * METERS, pgw1(w, "SELECT count(*) FROM notices"));
	}
	/* April's first day, with March's late readings: adjustments on April's bill */
	{
		int64_t march = pgw1(w, "SELECT sum(total_minor) FROM bills WHERE month = 202603");
		int64_t lines = pgw1(w, "SELECT count(*) FROM bill_lines");
		int64_t sum_d = 0;

		ASSERT_EQ(0, feed_day(w, MAR_HOURS / 24 + 1, false));	/* April's first UTC day */
		/* the late March hours, sent now */
		for (int t = 0; t < NTOWNS; t++) {
			for (int m = 0; m < METERS; m++)
				for (int h = 0; h < MAR_HOURS; h++)
					if (w->st[t][m][h] == GAP_LATE) {
						int64_t v[3];

						hour_val(t, m, h, v);
						add_hour(w, t, m, h, v[0], v[1], v[2], 0, 0);
						late++;
					}
			ASSERT_EQ(0, commit_town(w, t, now));
		}
		now += 3600;
		ASSERT_EQ(0, mbill_tick(&w->p, now)) TH_LOG("%s", w->p.err);
		EXPECT_EQ(late, pgw1(w, "SELECT count(*) FROM bill_adjust j JOIN bills b ON "
				     "b.id = j.bill JOIN bills f ON f.id = j.from_bill WHERE "
				     "j.reason = 'estimate replaced by reading' AND b.month = 202604 "
				     "AND f.month = 202603 AND b.customer = j.customer"));
		EXPECT_EQ(late, pgw1(w, "SELECT count(*) FROM meter_estimates WHERE replaced_at IS "
				     "NOT NULL AND adjust IS NOT NULL"));
		/* each adjustment: the reading less the estimate, priced by the test */
		for (int t = 0; t < NTOWNS; t++)
			for (int m = 0; m < METERS; m++)
				for (int h = 0; h < MAR_HOURS; h++)
					if (w->st[t][m][h] == GAP_LATE) {
						int64_t when = w->t0 + (int64_t)h * 3600, v[3];
						const struct ver *ve = ver_at(w, plan_of(m), when);

						hour_val(t, m, h, v);
						sum_d += xnet(ve, when, v) - xnet(ve, when, w->est[t][m][h]);
					}
		EXPECT_EQ(sum_d, pgw1(w, "SELECT sum(d_nano) FROM bill_adjust WHERE reason = "
				      "'estimate replaced by reading'"));
		EXPECT_EQ(march, pgw1(w, "SELECT sum(total_minor) FROM bills WHERE month = 202603"));
		EXPECT_EQ(lines, pgw1(w, "SELECT count(*) FROM bill_lines"));
		/* April's running bill carries them: its total, computed here */
		bad = 0;
		for (int t = 0; t < NTOWNS; t++)
			for (int m = 0; m < METERS; m++) {
				struct xbill b;
				int64_t cum = 0, tot;

				memset(&b, 0, sizeof(b));
				for (int h = MAR_HOURS; h < ALL_HOURS; h++) {
					int64_t when = w->t0 + (int64_t)h * 3600, v[3];

					hour_val(t, m, h, v);
					xrate(&b, ver_at(w, plan_of(m), when), when, v, false, &cum);
				}
				for (int h = 0; h < MAR_HOURS; h++)
					if (w->st[t][m][h] == GAP_LATE) {
						int64_t when = w->t0 + (int64_t)h * 3600, v[3];
						const struct ver *ve = ver_at(w, plan_of(m), when);

						hour_val(t, m, h, v);
						xl(&b, MBILL_LINE_ADJUST, ve->id, 0)->nano +=
							xnet(ve, when, v) - xnet(ve, when, w->est[t][m][h]);
					}
				xfinish(w, &b, plan_of(m), w->t0 + (int64_t)MAR_HOURS * 3600,
					w->t0 + (int64_t)ALL_HOURS * 3600);
				tot = pgw1(w, "SELECT total_minor FROM bills WHERE town = %d AND meter = %d "
					   "AND month = 202604 AND state = 'running'", 11 + t, m + 1);
				if (tot != b.total) {
					fprintf(stderr, "# April (%d, %d): running %lld, expected %lld\n",
						11 + t, m + 1, (long long)tot, (long long)b.total);
					bad++;
				}
			}
		EXPECT_EQ(0, bad);
		EXPECT_LT(0, late);
		TH_LOG("April's running bills checked: %lld ms", (long long)(mono_ms() - t_start));
	}
}

TEST_HARNESS_MAIN
