/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A bounded JSON writer for the messages the bridge publishes (Home
 * Assistant discovery and state): text appended into caller storage, an
 * overflow remembered instead of checked at every call, strings escaped as
 * RFC 8259 requires. Always NUL-terminated while not over.
 */
#ifndef GM_JSON_OUT_H
#define GM_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>

struct json_out {
	char *p;
	size_t len;	/* size of p */
	size_t n;	/* bytes written, NUL excluded */
	bool over;	/* something did not fit: the text is incomplete */
};

/* printf-style raw text (the caller's JSON syntax, numbers). */
void json_out_raw(struct json_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string with its quotes: '"' and '\\' escaped, control characters as \u00XX. */
void json_out_str(struct json_out *o, const char *s);

#endif
