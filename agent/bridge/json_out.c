// SPDX-License-Identifier: GPL-2.0
#include "json_out.h"

#include <stdarg.h>
#include <stdio.h>

void json_out_raw(struct json_out *o, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (o->over || o->n >= o->len) {
		o->over = true;
		return;
	}
	va_start(ap, fmt);
	k = vsnprintf(o->p + o->n, o->len - o->n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= o->len - o->n)
		o->over = true;
	else
		o->n += (size_t)k;
}

void json_out_str(struct json_out *o, const char *s)
{
	json_out_raw(o, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			json_out_raw(o, "\\%c", ch);
		else if (ch < 0x20)
			json_out_raw(o, "\\u%04x", ch);
		else
			json_out_raw(o, "%c", ch);
	}
	json_out_raw(o, "\"");
}
