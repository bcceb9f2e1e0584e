// SPDX-License-Identifier: GPL-2.0
/* The hours a town sends upstream: pure rules (townd_hours.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "townd_hours.h"

int32_t th_offset_localtime(void *ctx, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	(void)ctx;
	if (!localtime_r(&tt, &tm))
		return 0;
	return (int32_t)tm.tm_gmtoff;
}

int th_tariff_from_msg(struct th_tariff *t, const struct gmp_msg *m)
{
	if (m->type != GMP_TARIFF || m->tariff.n < 1 || m->tariff.n > GMP_TARIFF_MAX)
		return -1;
	memset(t, 0, sizeof(*t));
	t->effective = m->tariff.effective;
	t->tseq = m->tariff.tseq;
	t->n = (int)m->tariff.n;
	for (int i = 0; i < t->n; i++) {
		t->start_min[i] = m->tariff.p[i].start_min;
		t->import_price[i] = m->tariff.p[i].import_price;
		t->export_price[i] = m->tariff.p[i].export_price;
	}
	return 0;
}

static int cmp_tariff(const void *a, const void *b)
{
	const struct th_tariff *x = a, *y = b;

	if (x->effective != y->effective)
		return x->effective < y->effective ? -1 : 1;
	return (x->tseq > y->tseq) - (x->tseq < y->tseq);
}

void th_tariffs_sort(struct th_tariff *t, size_t n)
{
	if (n > 1)
		qsort(t, n, sizeof(*t), cmp_tariff);
}

const struct th_tariff *th_tariff_at(const struct th_tariff *t, size_t n, int64_t when)
{
	const struct th_tariff *in_force = NULL;

	for (size_t i = 0; i < n && t[i].effective <= when; i++)
		in_force = &t[i];
	return in_force;
}

int th_local_minute(int64_t t, th_offset_fn off, void *ctx)
{
	int64_t local = t + (off ? off(ctx, t) : 0);

	return (int)(((local % 86400) + 86400) % 86400 / 60);
}

int th_slot(const struct th_tariff *t, int64_t when, th_offset_fn off, void *ctx)
{
	int min = th_local_minute(when, off, ctx), slot = t->n - 1;

	/* the slots start in increasing minutes; before the first, the last runs on */
	for (int i = 0; i < t->n; i++)
		if (t->start_min[i] <= min)
			slot = i;
	return slot;
}

int th_period(const struct th_tariff *t, size_t n, int64_t booked, th_offset_fn off,
	      void *ctx)
{
	const struct th_tariff *in_force = th_tariff_at(t, n, booked);

	return in_force ? th_slot(in_force, booked, off, ctx) : 0;
}

int64_t th_covered(int64_t start, int64_t interval, int64_t hour)
{
	int64_t a = start > hour ? start : hour;
	int64_t b = start + interval < hour + TH_HOUR ? start + interval : hour + TH_HOUR;

	return b > a ? b - a : 0;
}

bool th_closed(int64_t hour, int64_t now, uint32_t grace_s)
{
	return now >= hour + TH_HOUR + (int64_t)grace_s;
}

void th_row_init(struct th_row *r)
{
	memset(r, 0, sizeof(*r));
	r->sent_rev = -1;
}

void th_row_add(struct th_row *r, const struct gmp_msg *m, int64_t hour)
{
	r->import_mwh += m->reading.import_mwh;
	r->export_mwh += m->reading.export_mwh;
	r->renew_mwh += m->reading.renew_mwh;
	r->readings++;
	r->flags |= m->reading.flags & 0xff;
	r->covered += th_covered(m->reading.start, m->reading.interval_s, hour);
}

void th_row_touch(struct th_row *r)
{
	if (r->sent_rev >= r->rev)
		r->rev = r->sent_rev + 1;
}

int64_t th_hour_flags(int64_t rf_flags, int64_t meter_hour_covered, bool admin)
{
	int64_t f = rf_flags & 0xff;

	if (meter_hour_covered < TH_HOUR)
		f |= GMP_HF_INCOMPLETE;
	if (admin)
		f |= GMP_HF_ADMIN;
	return f;
}

int64_t th_price_nano(const struct th_tariff *t, int slot, int64_t import_mwh,
		      int64_t export_mwh)
{
	if (!t || slot < 0 || slot >= t->n)
		return 0;
	return import_mwh * t->import_price[slot] - export_mwh * t->export_price[slot];
}

int64_t th_round_milli(int64_t nano)
{
	int64_t q = nano / 1000000, r = nano % 1000000;

	if (r >= 500000)
		q++;
	else if (r <= -500000)
		q--;
	return q;
}
