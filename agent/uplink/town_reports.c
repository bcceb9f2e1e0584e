// SPDX-License-Identifier: GPL-2.0
/* What the meter reports to its town server (town_reports.h). */
#include "town_reports.h"

#include <string.h>

static int64_t align_down(int64_t t, uint32_t step)
{
	int64_t m = t % (int64_t)step;

	return t - (m < 0 ? m + step : m);
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/*
 * The first cut after `after`: the next multiple of the report interval or
 * of the hour, or a change of tariff period before them. The tariff scan
 * (up to an hour of local minutes) is remembered until `after` or the
 * tariff changes, since tr_step() asks at every tick of the uplink.
 */
static int64_t next_cut(struct town_reports *r, const struct tariff *t, int64_t after)
{
	int64_t end = min64(align_down(after, r->report_s) + r->report_s,
			    align_down(after, TR_HOUR_S) + TR_HOUR_S);

	if (!t || t->type != TARIFF_TOU)
		return end;
	if (!r->cut_known || r->cut_from != after || r->cut_until != end ||
	    memcmp(&r->cut_tariff, t, sizeof(*t))) {
		r->cut_known = true;
		r->cut_from = after;
		r->cut_until = end;
		r->cut_tariff = *t;
		r->cut_at = tariff_next_change(t, after, end);
	}
	return r->cut_at;
}

/* The last cut at or before now after `from` (or the last report boundary or hour if none is). */
static int64_t last_cut(const struct town_reports *r, const struct tariff *t, int64_t from,
			int64_t now)
{
	int64_t c = max64(align_down(now, r->report_s), align_down(now, TR_HOUR_S));

	if (t && t->type == TARIFF_TOU && now > from) {
		int64_t a = max64(c, from), x;

		while ((x = tariff_next_change(t, a, now + 1)) <= now)
			a = c = x;
	}
	return c;
}

void tr_init(struct town_reports *r, uint32_t report_s, uint32_t snapshot_s, int64_t now_s,
	     bool trusted, const uint64_t reg[3])
{
	memset(r, 0, sizeof(*r));
	r->report_s = report_s ? report_s : TR_HOUR_S;
	r->snapshot_s = snapshot_s;
	memcpy(r->base, reg, sizeof(r->base));
	if (trusted) {
		r->known = true;
		r->report_from = now_s;
		r->next_report = next_cut(r, NULL, now_s);
		r->next_snapshot = now_s;	/* a snapshot at every start */
	}
}

void tr_raised(struct town_reports *r, const uint64_t delta[3])
{
	for (int i = 0; i < 3; i++)
		r->base[i] += delta[i];
	r->flags |= GMP_RF_RESTORED;
	r->snap_flags |= GMP_RF_RESTORED;
}

int64_t tr_due(const struct town_reports *r)
{
	if (!r->known)
		return INT64_MAX;
	if (r->snapshot_s && r->next_snapshot < r->next_report)
		return r->next_snapshot;
	return r->next_report;
}

/*
 * Readings over [from, to), sharing the energy e[] in proportion to their
 * length (the last takes the remainder): split at every hour and change of
 * tariff period (t, NULL: none) when hourly, else in pieces of at most
 * TR_MAX_READING_S. Returns how many were queued; *done_to and done_e[]
 * say how far.
 */
static int readings(const int64_t from, const int64_t to, const uint64_t e[3], uint32_t flags,
		    bool hourly, const struct tariff *t, tr_record_fn fn, void *ctx,
		    int64_t *done_to, uint64_t done_e[3])
{
	int64_t span = to - from, t0 = from;
	int n = 0;

	memset(done_e, 0, 3 * sizeof(uint64_t));
	*done_to = from;
	while (t0 < to) {
		int64_t end = min64(to, t0 + TR_MAX_READING_S);
		struct gmp_msg m = { .type = GMP_READING };
		uint64_t part[3];

		if (hourly) {
			end = min64(end, align_down(t0, TR_HOUR_S) + TR_HOUR_S);
			if (t)
				end = tariff_next_change(t, t0, end);
		}
		for (int i = 0; i < 3; i++)
			part[i] = end == to ? e[i] - done_e[i] :
				  (uint64_t)((unsigned __int128)e[i] * (uint64_t)(end - from) /
					     (uint64_t)span) - done_e[i];
		m.reading.start = t0;
		m.reading.interval_s = end - t0;
		m.reading.import_mwh = (int64_t)part[0];
		m.reading.export_mwh = (int64_t)part[1];
		m.reading.renew_mwh = (int64_t)part[2];
		m.reading.flags = flags;
		if (fn(ctx, &m) < 0)
			break;
		n++;
		for (int i = 0; i < 3; i++)
			done_e[i] += part[i];
		*done_to = end;
		t0 = end;
	}
	return n;
}

static int unrecorded(struct town_reports *r, const struct tr_input *in, tr_record_fn fn,
		      void *ctx)
{
	static const uint64_t none[3];
	uint64_t done_e[3];
	int64_t to, done;
	int n;

	if (r->unrecorded_done || !in->have_unrecorded)
		return 0;
	to = in->unrec_to_s > in->now_s ? in->now_s : in->unrec_to_s;
	if (to <= in->unrec_from_s) {
		r->unrecorded_done = true;
		return 0;
	}
	n = readings(in->unrec_from_s, to, none, GMP_RF_UNRECORDED, false, NULL, fn, ctx, &done,
		     done_e);
	r->unrecorded_done = done == to;
	return n;
}

int tr_step(struct town_reports *r, const struct tr_input *in, tr_record_fn fn, void *ctx)
{
	int64_t now = in->now_s;
	int n = 0;

	if (!in->trusted)
		return 0;	/* nothing is reported on untrusted time */
	if (!r->known) {
		/* the clock just became trusted: report from where the held energy was put */
		r->known = true;
		r->report_from = now;
		if (in->have_reconstructed && in->recon_from_s < now) {
			r->report_from = in->recon_from_s;
			r->flags |= GMP_RF_TIME_RECONSTRUCTED;
		}
		r->next_snapshot = now;
	}
	n += unrecorded(r, in, fn, ctx);
	/* the tariff may have changed since: where the reading in progress ends */
	if (r->report_from <= now)
		r->next_report = next_cut(r, in->tariff, r->report_from);
	if (now >= r->next_report || now < r->report_from) {
		int64_t from = r->report_from, end = last_cut(r, in->tariff, from, now);
		uint32_t flags = r->flags;
		uint64_t e[3], done_e[3];
		int64_t done;

		if (end < from) {
			/* the clock went back: one interval at the new time, marked */
			from = end - r->report_s;
			flags |= GMP_RF_CLOCK_STEP;
		}
		if (end <= from)
			end = now;
		for (int i = 0; i < 3; i++)
			e[i] = in->reg[i] > r->base[i] ? in->reg[i] - r->base[i] : 0;
		if (end > from) {
			int k = readings(from, end, e, flags, true, in->tariff, fn, ctx, &done, done_e);

			n += k;
			for (int i = 0; i < 3; i++)
				r->base[i] += done_e[i];
			if (done != end)
				return n;	/* not queued: the rest goes with the next try */
			r->report_from = end;
			r->flags = 0;
		}
		r->next_report = next_cut(r, in->tariff, r->report_from);
	}
	if (r->snapshot_s && in->view_known &&
	    (now >= r->next_snapshot || r->next_snapshot - now > r->snapshot_s)) {
		struct gmp_msg m = { .type = GMP_REGISTERS };

		/* the registers as the readings so far add up to */
		m.regs.time = r->report_from;
		m.regs.import_mwh = (int64_t)r->base[0];
		m.regs.export_mwh = (int64_t)r->base[1];
		m.regs.renew_mwh = (int64_t)r->base[2];
		m.regs.flags = r->snap_flags;
		if (fn(ctx, &m) >= 0) {
			n++;
			r->snap_flags = 0;
			r->next_snapshot = align_down(now, r->snapshot_s) + r->snapshot_s;
		}
	}
	return n;
}

static int64_t abs64(int64_t v)
{
	return v < 0 ? -v : v;
}

void tr_request_want(struct tr_request *q, int64_t want_w, int64_t now_s)
{
	if (want_w != q->want_w && q->want_w == q->sent_w)
		q->since = now_s;
	q->want_w = want_w;
}

static int64_t request_due(const struct tr_request *q, uint32_t duration_s)
{
	int64_t d = abs64(q->want_w - q->sent_w);
	bool turned = (q->want_w > 0) != (q->sent_w > 0) || (q->want_w < 0) != (q->sent_w < 0);

	if (q->want_w != q->sent_w) {
		if (turned || (d >= 50 && d * 10 >= abs64(q->sent_w)))
			return q->since;
		return q->since + TR_REQ_WAIT_S;
	}
	if (q->sent_w && duration_s > TR_REQ_RENEW_S)
		return q->sent_at + duration_s - TR_REQ_RENEW_S;
	return INT64_MAX;
}

int64_t tr_request_due(const struct tr_request *q, uint32_t duration_s)
{
	int64_t t = request_due(q, duration_s);

	return t == INT64_MAX ? t : max64(t, q->not_before);
}

void tr_request_sent(struct tr_request *q, int64_t now_s)
{
	q->sent_w = q->want_w;
	q->sent_at = now_s;
	q->not_before = 0;
}

void tr_request_failed(struct tr_request *q, int64_t now_s)
{
	q->not_before = now_s + TR_REQ_RETRY_S;
}
