// SPDX-License-Identifier: GPL-2.0
/* A town server's tariff update as a tariff_spec (tariff_gmp.h). */
#include "tariff_gmp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Append to a NUL-terminated string; -1 if it does not fit. */
static int cat(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cat(char *dst, size_t size, const char *fmt, ...)
{
	size_t off = strlen(dst);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst + off, size - off, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size - off ? -1 : 0;
}

static int price(char *dst, size_t size, int64_t milli)
{
	return cat(dst, size, "%lld.%03lld", (long long)(milli / 1000), (long long)(milli % 1000));
}

int tariff_from_gmp(const struct gmp_msg *m, const struct tariff_spec *cur,
		    struct tariff_spec *out, char *err, size_t errlen)
{
	int64_t prices[TARIFF_MAX_PERIODS];
	unsigned int np = 0, period[GMP_TARIFF_MAX];
	int64_t n = m->tariff.n;
	int r = 0;

	*out = *cur;
	if (m->type != GMP_TARIFF || n < 1 || n > GMP_TARIFF_MAX || m->tariff.p[0].start_min) {
		snprintf(err, errlen, "the first window must start at 00:00");
		return -1;
	}
	for (int64_t i = 0; i < n; i++) {
		unsigned int k;

		if (i && m->tariff.p[i].start_min <= m->tariff.p[i - 1].start_min) {
			snprintf(err, errlen, "window %lld does not start after the one before",
				 (long long)i + 1);
			return -1;
		}
		if (m->tariff.p[i].import_price < 0 || m->tariff.p[i].export_price < 0) {
			snprintf(err, errlen, "window %lld: negative prices are not supported by "
				 "the meter's tariff", (long long)i + 1);
			return -1;
		}
		if (m->tariff.p[i].export_price != m->tariff.p[0].export_price) {
			snprintf(err, errlen, "export prices differ by window: the meter has one "
				 "feed-in price");
			return -1;
		}
		for (k = 0; k < np && prices[k] != m->tariff.p[i].import_price; k++)
			;
		if (k == np) {
			if (np == TARIFF_MAX_PERIODS) {
				snprintf(err, errlen, "more than %d distinct import prices",
					 TARIFF_MAX_PERIODS);
				return -1;
			}
			prices[np++] = m->tariff.p[i].import_price;
		}
		period[i] = k;
	}
	out->rates[0] = out->weekday[0] = out->feed_in[0] = out->rate[0] = '\0';
	out->weekend[0] = out->special[0] = '\0';
	if (np == 1) {
		strcpy(out->type, "flat");
		r |= price(out->rate, sizeof(out->rate), prices[0]);
	} else {
		strcpy(out->type, "tou");
		for (unsigned int k = 0; k < np; k++) {
			r |= cat(out->rates, sizeof(out->rates), "%sp%u:", k ? ", " : "", k + 1);
			r |= price(out->rates, sizeof(out->rates), prices[k]);
		}
		for (int64_t i = 0; i < n; i++) {
			int64_t a = m->tariff.p[i].start_min;
			int64_t b = i + 1 < n ? m->tariff.p[i + 1].start_min : 1440;

			r |= cat(out->weekday, sizeof(out->weekday), "%s%02lld:%02lld-%02lld:%02lld p%u",
				 i ? ", " : "", (long long)(a / 60), (long long)(a % 60),
				 (long long)(b / 60), (long long)(b % 60), period[i] + 1);
		}
		strcpy(out->weekend, out->weekday);
		strcpy(out->special, out->weekday);
	}
	r |= price(out->feed_in, sizeof(out->feed_in), m->tariff.p[0].export_price);
	if (r) {
		snprintf(err, errlen, "too long for the meter's tariff");
		return -1;
	}
	return 0;
}
