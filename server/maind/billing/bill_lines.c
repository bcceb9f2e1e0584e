// SPDX-License-Identifier: GPL-2.0
/* maind billing: the tariffs in memory and a bill's lines (billing.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing/billing.h"

int64_t mbill_round(int64_t nano)
{
	const int64_t u = 1000000000;

	return nano >= 0 ? (nano + u / 2) / u : -((-nano + u / 2) / u);
}

static int64_t round_div(int64_t a, int64_t b)	/* b > 0, half away from zero */
{
	return a >= 0 ? (a + b / 2) / b : -((-a + b / 2) / b);
}

void mbill_fmt_milli(char *buf, size_t len, int64_t milli)
{
	int64_t a = milli < 0 ? -milli : milli;

	snprintf(buf, len, "%s%lld.%03lld", milli < 0 ? "-" : "", (long long)(a / 1000),
		 (long long)(a % 1000));
}

void mbill_fmt_minor(char *buf, size_t len, int64_t minor)
{
	int64_t a = minor < 0 ? -minor : minor;

	snprintf(buf, len, "%s%lld.%02lld", minor < 0 ? "-" : "", (long long)(a / 100),
		 (long long)(a % 100));
}

void mbill_fmt_kwh(char *buf, size_t len, int64_t mwh)
{
	mbill_fmt_milli(buf, len, mwh / 1000);	/* mWh -> Wh shown as kWh.xxx */
}

/* ---- tariffs ------------------------------------------------------------------------- */

int mbill_tariffs_load(struct maind_pg *p, struct mbill_tariffs *T)
{
	static const char *const keys[] = { "type", "rates", "tiers", "rate", "weekday",
					    "weekend", "special", "special_days",
					    "standing_charge", "feed_in" };
	PGresult *r = mpg_query(p, "SELECT v.id, v.plan, t.tz, t.currency, "
				"v.effective - date '1970-01-01', to_char(v.effective, 'YYYYMMDD'), "
				"v.tax_bp, v.type, v.rates, v.tiers, v.rate, v.weekday, v.weekend, "
				"v.special, v.special_days, v.standing_charge, v.feed_in "
				"FROM tariff_versions v JOIN tariff_plans t ON t.name = v.plan "
				"ORDER BY v.plan, v.effective", 0, NULL);
	int n;

	memset(T, 0, sizeof(*T));
	if (!r)
		return -1;
	n = PQntuples(r);
	T->v = calloc(n ? (size_t)n : 1, sizeof(*T->v));
	if (!T->v) {
		PQclear(r);
		snprintf(p->err, sizeof(p->err), "billing: out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct mbill_version *v = &T->v[T->n];
		struct tariff_spec spec;
		const char *bad = "";
		char err[200];

		tariff_spec_init(&spec);
		v->id = atoi(PQgetvalue(r, i, 0));
		snprintf(v->plan, sizeof(v->plan), "%s", PQgetvalue(r, i, 1));
		snprintf(v->tz, sizeof(v->tz), "%s", PQgetvalue(r, i, 2));
		tariff_spec_set(&spec, "currency", PQgetvalue(r, i, 3));
		v->eff_day = atoi(PQgetvalue(r, i, 4));
		v->eff_ymd = atoi(PQgetvalue(r, i, 5));
		v->tax_bp = atoi(PQgetvalue(r, i, 6));
		for (int k = 0; k < 10; k++)
			tariff_spec_set(&spec, keys[k], PQgetvalue(r, i, 7 + k));
		if (tariff_compile(&spec, &v->t, &bad, err, sizeof(err))) {
			/* mainctl checked it on the way in: a hand-made row */
			snprintf(p->err, sizeof(p->err), "tariff %s version %d: %s: %s", v->plan,
				 v->id, bad, err);
			PQclear(r);
			mbill_tariffs_free(T);
			return -1;
		}
		T->n++;
	}
	PQclear(r);
	return 0;
}

void mbill_tariffs_free(struct mbill_tariffs *T)
{
	free(T->v);
	memset(T, 0, sizeof(*T));
}

const struct mbill_version *mbill_version_at(const struct mbill_tariffs *T, const char *plan,
					     int32_t day)
{
	const struct mbill_version *best = NULL;

	for (size_t i = 0; i < T->n; i++)
		if (!strcmp(T->v[i].plan, plan) && T->v[i].eff_day <= day)
			best = &T->v[i];
	return best;
}

const struct mbill_version *mbill_version_id(const struct mbill_tariffs *T, int id)
{
	for (size_t i = 0; i < T->n; i++)
		if (T->v[i].id == id)
			return &T->v[i];
	return NULL;
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

unsigned mbill_period_local(const struct tariff *t, int32_t ymd, int wday, int minute)
{
	enum tariff_daytype d;

	if (t->type != TARIFF_TOU)
		return 0;
	if (t->nspecial && bsearch(&ymd, t->special, t->nspecial, sizeof(ymd), cmp_i32))
		d = TARIFF_SPECIAL;
	else
		d = wday == 0 || wday == 6 ? TARIFF_WEEKEND : TARIFF_WEEKDAY;
	for (unsigned i = 0; i < t->nwindows[d]; i++)
		if (minute < t->window[d][i].end_min)
			return t->window[d][i].period;
	return 0;
}

/* ---- lines ----------------------------------------------------------------------------- */

static struct mbill_line *add(struct mbill_line *out, size_t *n, size_t max, int kind,
			      const struct mbill_version *v)
{
	struct mbill_line *l;

	if (*n >= max)
		return NULL;
	l = &out[(*n)++];
	memset(l, 0, sizeof(*l));
	l->kind = kind;
	l->version = v ? v->id : 0;
	return l;
}

static void vname(const struct mbill_version *v, char *buf, size_t len)
{
	snprintf(buf, len, "%s from %04d-%02d-%02d", v->plan, v->eff_ymd / 10000,
		 v->eff_ymd / 100 % 100, v->eff_ymd % 100);
}

size_t mbill_make_lines(const struct mbill_tariffs *T, const char *plan, int32_t first_day,
			int32_t end_day, const struct mbill_acc *acc, size_t n_acc,
			const struct mbill_adj *adj, size_t n_adj, struct mbill_line *out,
			size_t max, int64_t *total_minor)
{
	size_t n = 0;
	int64_t total = 0;

	for (size_t i = 0; i < T->n; i++) {
		const struct mbill_version *v = &T->v[i];
		const struct mbill_version *next = i + 1 < T->n &&
			!strcmp(T->v[i + 1].plan, v->plan) ? &T->v[i + 1] : NULL;
		int32_t from = v->eff_day > first_day ? v->eff_day : first_day;
		int32_t to = next && next->eff_day < end_day ? next->eff_day : end_day;
		int64_t vsum = 0;
		bool used = false;
		char vn[64], q[32], u[32], est[32];
		struct mbill_line *l;

		if (strcmp(v->plan, plan))
			continue;
		vname(v, vn, sizeof(vn));
		/* energy: import by period / tier, estimates apart, then export */
		for (int kind = 0; kind < 4; kind++)
			for (size_t k = 0; k < n_acc; k++) {
				const struct mbill_acc *a = &acc[k];
				bool imp = kind == MBILL_IMPORT || kind == MBILL_IMPORT_EST;

				if (a->version != v->id || a->kind != kind || (!a->mwh && !a->nano))
					continue;
				l = add(out, &n, max, kind, v);
				if (!l)
					goto full;
				used = true;
				l->period = a->period;
				l->qty = a->mwh;
				l->nano = imp ? a->nano : -a->nano;
				l->unit_milli = imp ? v->t.price[a->period < TARIFF_MAX_PERIODS ?
								a->period : 0] :
						      v->t.feed_in_milli;
				l->minor = mbill_round(l->nano);
				mbill_fmt_kwh(q, sizeof(q), a->mwh);
				mbill_fmt_milli(u, sizeof(u), l->unit_milli);
				est[0] = '\0';
				if (kind >= MBILL_IMPORT_EST)
					snprintf(est, sizeof(est), ", estimated %lld h",
						 (long long)a->hours);
				snprintf(l->text, sizeof(l->text), "%s%s %s kWh at %s/kWh%s (%s)",
					 imp ? "Import " : "Export credit",
					 imp ? v->t.period_name[a->period % TARIFF_MAX_PERIODS] : "",
					 q, u, est, vn);
				vsum += l->minor;
			}
		/* standing charge: the local days of the period under this version */
		if (to > from) {
			l = add(out, &n, max, MBILL_LINE_STANDING, v);
			if (!l)
				goto full;
			used = true;
			l->qty = to - from;
			l->unit_milli = v->t.standing_milli;
			l->nano = l->qty * v->t.standing_milli * 1000000;
			l->minor = mbill_round(l->nano);
			mbill_fmt_milli(u, sizeof(u), l->unit_milli);
			snprintf(l->text, sizeof(l->text), "Standing charge %lld days at %s/day (%s)",
				 (long long)l->qty, u, vn);
			vsum += l->minor;
		}
		/* corrections of hours rated under this version, by reason */
		for (size_t k = 0; k < n_adj; k++) {
			int64_t hours = 0, di = 0, de = 0, dn = 0;
			bool first = true;

			if (adj[k].version != v->id)
				continue;
			for (size_t j = 0; j < k; j++)
				if (adj[j].version == v->id && !strcmp(adj[j].reason, adj[k].reason))
					first = false;
			if (!first)
				continue;
			for (size_t j = k; j < n_adj; j++)
				if (adj[j].version == v->id && !strcmp(adj[j].reason, adj[k].reason)) {
					hours++;
					di += adj[j].d_import_mwh;
					de += adj[j].d_export_mwh;
					dn += adj[j].d_nano;
				}
			l = add(out, &n, max, MBILL_LINE_ADJUST, v);
			if (!l)
				goto full;
			used = true;
			l->qty = di;
			l->nano = dn;
			l->minor = mbill_round(dn);
			mbill_fmt_kwh(q, sizeof(q), di);
			mbill_fmt_kwh(u, sizeof(u), de);
			snprintf(l->text, sizeof(l->text), "Adjustment: %.40s, %lld h: import %s kWh, "
				 "export %s kWh (%s)", adj[k].reason, (long long)hours, q, u, vn);
			vsum += l->minor;
		}
		if (used && v->tax_bp) {
			l = add(out, &n, max, MBILL_LINE_TAX, v);
			if (!l)
				goto full;
			l->qty = vsum;
			l->unit_milli = v->tax_bp;
			l->minor = round_div(vsum * v->tax_bp, 10000);
			l->nano = l->minor * 1000000000;
			mbill_fmt_minor(q, sizeof(q), vsum);
			snprintf(l->text, sizeof(l->text), "Tax %d.%02d%% on %s (%s)", v->tax_bp / 100,
				 v->tax_bp % 100, q, vn);
			vsum += l->minor;
		}
		total += vsum;
	}
full:
	*total_minor = total;
	return n;
}
