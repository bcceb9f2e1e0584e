// SPDX-License-Identifier: GPL-2.0
/* Growable byte buffer and HTML writing helpers (html.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "html.h"

#define THIN_SPACE	"\xe2\x80\xaf"	/* U+202F narrow no-break space: thousands (no line break inside a number) */
#define NBSP		"\xc2\xa0"	/* U+00A0, between a number and its unit */

void hb_init(struct hbuf *b)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = false;
}

void hb_free(struct hbuf *b)
{
	free(b->p);
	hb_init(b);
}

void hb_reset(struct hbuf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

/* Room for n more bytes and a NUL; false (oom set) when memory runs out. */
static bool hb_room(struct hbuf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->oom)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	if (n > SIZE_MAX / 2 - b->len) {
		b->oom = true;
		return false;
	}
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void hb_rawn(struct hbuf *b, const char *s, size_t n)
{
	if (!hb_room(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void hb_raw(struct hbuf *b, const char *s)
{
	if (s)
		hb_rawn(b, s, strlen(s));
}

void hb_vprintf(struct hbuf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0 || !hb_room(b, (size_t)n))
		return;
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void hb_printf(struct hbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hb_vprintf(b, fmt, ap);
	va_end(ap);
}

void hb_text(struct hbuf *b, const char *s)
{
	const char *run;

	if (!s)
		return;
	for (run = s; *s; s++) {
		const char *rep;

		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default: continue;
		}
		hb_rawn(b, run, (size_t)(s - run));
		hb_raw(b, rep);
		run = s + 1;
	}
	hb_rawn(b, run, (size_t)(s - run));
}

void hb_attr(struct hbuf *b, const char *s)
{
	/* Attribute values are always written between double quotes by the
	 * pages; escaping the same five characters makes them safe there and
	 * between single quotes. */
	hb_text(b, s);
}

void hb_json_str(struct hbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)(s ? s : "");

	hb_raw(b, "\"");
	for (; *u; u++) {
		char esc[7];

		switch (*u) {
		case '"': hb_raw(b, "\\\""); continue;
		case '\\': hb_raw(b, "\\\\"); continue;
		case '\n': hb_raw(b, "\\n"); continue;
		case '\r': hb_raw(b, "\\r"); continue;
		case '\t': hb_raw(b, "\\t"); continue;
		default: break;
		}
		/* Control characters, and < > & ' so that "</script>" or "<!--"
		 * inside a <script type="application/json"> cannot end it. */
		if (*u < 0x20 || *u == '<' || *u == '>' || *u == '&' || *u == '\'') {
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[*u >> 4];
			esc[5] = hex[*u & 15];
			hb_rawn(b, esc, 6);
			continue;
		}
		hb_rawn(b, (const char *)u, 1);
	}
	hb_raw(b, "\"");
}

/* Unsigned integer with thin-space thousands separators. */
static void hb_grouped(struct hbuf *b, uint64_t v)
{
	char digits[24];
	int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);

	for (int i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			hb_raw(b, THIN_SPACE);
		hb_rawn(b, digits + i, 1);
	}
}

/* |v| / 10^drop rounded half away from zero, as an unsigned magnitude. */
static uint64_t round_mag(int64_t v, int drop)
{
	uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	uint64_t div = 1;

	for (int i = 0; i < drop; i++)
		div *= 10;
	if (div == 1)
		return mag;
	return mag / div + (mag % div >= div / 2 ? 1 : 0);
}

/* sign, grouped whole part, '.', frac_digits decimals of scaled (= value * 10^frac_digits). */
static void hb_fixed(struct hbuf *b, bool negative, uint64_t scaled, int frac_digits)
{
	uint64_t div = 1;

	for (int i = 0; i < frac_digits; i++)
		div *= 10;
	if (negative && scaled)
		hb_raw(b, "-");
	hb_grouped(b, scaled / div);
	if (frac_digits > 0)
		hb_printf(b, ".%0*llu", frac_digits, (unsigned long long)(scaled % div));
}

void hb_milli(struct hbuf *b, int64_t milli, int decimals, const char *unit)
{
	if (decimals < 0)
		decimals = 0;
	if (decimals > 3)
		decimals = 3;
	hb_fixed(b, milli < 0, round_mag(milli, 3 - decimals), decimals);
	if (unit && *unit) {
		hb_raw(b, NBSP);
		hb_text(b, unit);
	}
}

void hb_money(struct hbuf *b, int64_t milli_minor, const char *currency)
{
	static const struct {
		const char *code, *symbol;
	} sym[] = {
		{ "GBP", "\xc2\xa3" }, { "EUR", "\xe2\x82\xac" }, { "USD", "$" },
	};
	uint64_t minor = round_mag(milli_minor, 3);
	const char *prefix = NULL;

	for (size_t i = 0; currency && i < sizeof(sym) / sizeof(sym[0]); i++)
		if (!strcmp(currency, sym[i].code))
			prefix = sym[i].symbol;
	if (milli_minor < 0 && minor)
		hb_raw(b, "-");
	if (prefix)
		hb_raw(b, prefix);
	hb_fixed(b, false, minor, 2);
	if (!prefix && currency && *currency) {
		hb_raw(b, NBSP);
		hb_text(b, currency);
	}
}

void hb_time(struct hbuf *b, int64_t utc_s)
{
	time_t t = (time_t)utc_s;
	struct tm tm;
	char s[32];

	if (!localtime_r(&t, &tm) || !strftime(s, sizeof(s), "%Y-%m-%d %H:%M", &tm)) {
		hb_raw(b, "?");
		return;
	}
	hb_raw(b, s);
}
