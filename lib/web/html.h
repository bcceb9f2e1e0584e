/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A growable byte buffer and HTML writing helpers: every value that comes
 * from outside (a name, a form field, a database text) goes out through
 * hb_text()/hb_attr() (escaped), never hb_raw().
 */
#ifndef GM_WEB_HTML_H
#define GM_WEB_HTML_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hbuf {
	char *p;
	size_t len, cap;
	bool oom;	/* an allocation failed: the content is truncated */
};

void hb_init(struct hbuf *b);
void hb_free(struct hbuf *b);
void hb_reset(struct hbuf *b);			/* len = 0, keeps the memory */
void hb_raw(struct hbuf *b, const char *s);	/* trusted markup */
void hb_rawn(struct hbuf *b, const char *s, size_t n);
/* printf of trusted markup: every %s argument must be trusted too (use hb_text for the rest) */
void hb_printf(struct hbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hb_vprintf(struct hbuf *b, const char *fmt, va_list ap);
void hb_text(struct hbuf *b, const char *s);	/* escapes & < > " ' */
void hb_attr(struct hbuf *b, const char *s);	/* same, for attribute values */
void hb_json_str(struct hbuf *b, const char *s);	/* a JSON string with quotes, escaped; also
						 * safe inside <script type="application/json"> */

/*
 * Fixed-point numbers as people read them: value in thousandths of unit,
 * shown with `decimals` decimals (0..3), rounded half away from zero,
 * thousands separated by a narrow no-break space (U+202F), a minus sign for negatives, then
 * a no-break space and the unit ("230.1 V", "1 234.567 kWh"). Plain text
 * (no markup), safe to put anywhere.
 */
void hb_milli(struct hbuf *b, int64_t milli, int decimals, const char *unit);
/* Money: amount in milli-minor units (1/1000 penny) as "£12.35" / "€3.40" / "12.35 XYZ". */
void hb_money(struct hbuf *b, int64_t milli_minor, const char *currency);
/* UTC seconds as local "2026-03-14 18:05" in the process's time zone (TZ). */
void hb_time(struct hbuf *b, int64_t utc_s);

#endif
