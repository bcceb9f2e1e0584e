// SPDX-License-Identifier: GPL-2.0
#include "history.h"

#include <string.h>
#include <time.h>

int64_t mw_local_midnight(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm);
}

int64_t mw_local_day_add(int64_t midnight, int days)
{
	time_t tt = (time_t)midnight;
	struct tm tm;

	localtime_r(&tt, &tm);
	tm.tm_mday += days;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm);
}

void mw_intervals_span(const struct mw_interval *iv, size_t n, int64_t from, int64_t to, size_t *first,
		       size_t *last)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (iv[mid].start < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	while (lo < n && iv[lo].start < to)
		lo++;
	*last = lo;
}

size_t mw_fold_days(const struct mw_interval *iv, size_t n, int64_t now, unsigned ndays, struct mw_day *out)
{
	int64_t today = mw_local_midnight(now);
	size_t used = 0, i, last;

	if (!ndays)
		return 0;
	memset(out, 0, sizeof(*out) * ndays);
	for (unsigned d = 0; d < ndays; d++)
		out[d].start = mw_local_day_add(today, (int)d - (int)(ndays - 1));
	mw_intervals_span(iv, n, out[0].start, mw_local_day_add(today, 1), &i, &last);
	for (unsigned d = 0; i < last; i++) {
		while (d + 1 < ndays && iv[i].start >= out[d + 1].start)
			d++;
		out[d].import_mwh += iv[i].import_mwh;
		out[d].export_mwh += iv[i].export_mwh;
		out[d].renew_mwh += iv[i].renew_mwh;
		out[d].flags |= iv[i].flags;
		out[d].intervals++;
		used++;
	}
	return used;
}
