// SPDX-License-Identifier: GPL-2.0
#include "json_scan.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

struct scan {
	const unsigned char *s;
	size_t len, pos;
	const char *path;	/* the whole path */
	size_t seg_end[JSON_MAX_DEPTH];	/* end of each path segment */
	size_t nseg;
	size_t matched;		/* leading path segments matched by the current key stack */
	struct json_val found;
	int nfound;
};

static void skip_ws(struct scan *c)
{
	while (c->pos < c->len && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' ||
				   c->s[c->pos] == '\n' || c->s[c->pos] == '\r'))
		c->pos++;
}

static bool hex(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* At the opening quote. Leaves pos after the closing quote; *escaped if any backslash. */
static int scan_string(struct scan *c, size_t *start, size_t *end, bool *escaped)
{
	*escaped = false;
	c->pos++;
	*start = c->pos;
	while (c->pos < c->len) {
		unsigned char ch = c->s[c->pos];

		if (ch == '"') {
			*end = c->pos++;
			return 0;
		}
		if (ch < 0x20)
			return -EINVAL;
		if (ch == '\\') {
			*escaped = true;
			if (++c->pos >= c->len)
				return -EINVAL;
			ch = c->s[c->pos];
			if (ch == 'u') {
				if (c->len - c->pos < 5)
					return -EINVAL;
				for (int i = 1; i <= 4; i++)
					if (!hex(c->s[c->pos + i]))
						return -EINVAL;
				c->pos += 4;
			} else if (!strchr("\"\\/bfnrt", ch) || !ch) {
				return -EINVAL;
			}
		}
		c->pos++;
	}
	return -EINVAL;
}

static bool digit(const struct scan *c)
{
	return c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9';
}

static int scan_number(struct scan *c)
{
	if (c->s[c->pos] == '-')
		c->pos++;
	if (!digit(c))
		return -EINVAL;
	if (c->s[c->pos] == '0')
		c->pos++;
	else
		while (digit(c))
			c->pos++;
	if (c->pos < c->len && c->s[c->pos] == '.') {
		c->pos++;
		if (!digit(c))
			return -EINVAL;
		while (digit(c))
			c->pos++;
	}
	if (c->pos < c->len && (c->s[c->pos] == 'e' || c->s[c->pos] == 'E')) {
		c->pos++;
		if (c->pos < c->len && (c->s[c->pos] == '+' || c->s[c->pos] == '-'))
			c->pos++;
		if (!digit(c))
			return -EINVAL;
		while (digit(c))
			c->pos++;
	}
	return 0;
}

static int scan_word(struct scan *c, const char *w)
{
	size_t n = strlen(w);

	if (c->len - c->pos < n || memcmp(c->s + c->pos, w, n))
		return -EINVAL;
	c->pos += n;
	return 0;
}

static int scan_value(struct scan *c, size_t depth);

/* Does key [ks, ke) equal path segment `seg`? */
static bool key_is_seg(const struct scan *c, size_t ks, size_t ke, size_t seg)
{
	size_t from = seg ? c->seg_end[seg - 1] + 1 : 0, n = c->seg_end[seg] - from;

	return ke - ks == n && !memcmp(c->s + ks, c->path + from, n);
}

static int scan_container(struct scan *c, size_t depth, bool object)
{
	char close = object ? '}' : ']';
	size_t outer = c->matched;
	int rc;

	if (depth >= JSON_MAX_DEPTH)
		return -EINVAL;
	c->pos++;
	skip_ws(c);
	if (c->pos < c->len && c->s[c->pos] == close) {
		c->pos++;
		return 0;
	}
	for (;;) {
		c->matched = object ? outer : 0;
		if (object) {
			size_t ks, ke;
			bool esc;

			skip_ws(c);
			if (c->pos >= c->len || c->s[c->pos] != '"')
				return -EINVAL;
			rc = scan_string(c, &ks, &ke, &esc);
			if (rc)
				return rc;
			/* Only a key directly under the matched prefix extends the match. */
			if (outer == depth && outer < c->nseg && !esc && key_is_seg(c, ks, ke, outer))
				c->matched = outer + 1;
			skip_ws(c);
			if (c->pos >= c->len || c->s[c->pos] != ':')
				return -EINVAL;
			c->pos++;
		}
		rc = scan_value(c, depth + 1);
		if (rc)
			return rc;
		skip_ws(c);
		if (c->pos >= c->len)
			return -EINVAL;
		if (c->s[c->pos] == ',') {
			c->pos++;
			continue;
		}
		if (c->s[c->pos] != close)
			return -EINVAL;
		c->pos++;
		c->matched = outer;
		return 0;
	}
}

/* depth: nesting of this value (the document is depth 0). */
static int scan_value(struct scan *c, size_t depth)
{
	size_t start, end, m = c->matched;
	enum json_type t;
	bool esc;
	int rc;

	skip_ws(c);
	if (c->pos >= c->len)
		return -EINVAL;
	start = c->pos;
	switch (c->s[c->pos]) {
	case '{':
		t = JSON_OBJECT;
		rc = scan_container(c, depth, true);
		break;
	case '[':
		t = JSON_ARRAY;
		rc = scan_container(c, depth, false);
		break;
	case '"':
		t = JSON_STRING;
		rc = scan_string(c, &start, &end, &esc);
		break;
	case 't':
		t = JSON_BOOL;
		rc = scan_word(c, "true");
		break;
	case 'f':
		t = JSON_BOOL;
		rc = scan_word(c, "false");
		break;
	case 'n':
		t = JSON_NULL;
		rc = scan_word(c, "null");
		break;
	default:
		t = JSON_NUMBER;
		rc = scan_number(c);
		break;
	}
	if (rc)
		return rc;
	if (t != JSON_STRING)
		end = c->pos;
	/* A full match needs the key chain to line up with the depth (arrays break it). */
	if (m == c->nseg && m == depth) {
		c->nfound++;
		c->found = (struct json_val){ .type = t, .p = (const char *)c->s + start,
					      .len = end - start };
	}
	return 0;
}

int json_find(const void *buf, size_t len, const char *path, struct json_val *out)
{
	struct scan c = { .s = buf, .len = len, .path = path };
	size_t plen = strlen(path);
	int rc;

	if (!buf && len)
		return -EINVAL;
	/* Split the path; an empty path or segment matches nothing sensible. */
	for (size_t i = 0; i <= plen; i++) {
		if (i == plen || path[i] == '.') {
			if (c.nseg == JSON_MAX_DEPTH || i == (c.nseg ? c.seg_end[c.nseg - 1] + 1 : 0))
				return -EINVAL;
			c.seg_end[c.nseg++] = i;
		}
	}
	rc = scan_value(&c, 0);
	if (rc)
		return rc;
	skip_ws(&c);
	if (c.pos != c.len)
		return -EINVAL;
	if (c.nfound > 1)
		return -EINVAL;
	if (!c.nfound)
		return -ENOENT;
	*out = c.found;
	return 0;
}

int json_milli(const struct json_val *v, int64_t *out)
{
	const int64_t lim = (int64_t)1 << 62;
	size_t i = 0;
	bool neg = false;
	int64_t whole = 0, frac = 0;
	int nfrac = 0, round = 0;

	if (v->type != JSON_NUMBER || !v->len)
		return -EINVAL;
	if (v->p[0] == '-') {
		neg = true;
		i++;
	}
	if (i == v->len || v->p[i] < '0' || v->p[i] > '9')
		return -EINVAL;
	for (; i < v->len && v->p[i] >= '0' && v->p[i] <= '9'; i++) {
		whole = whole * 10 + (v->p[i] - '0');
		if (whole > lim / 1000)
			return -ERANGE;
	}
	if (i < v->len && v->p[i] == '.') {
		if (++i == v->len)
			return -EINVAL;
		for (; i < v->len && v->p[i] >= '0' && v->p[i] <= '9'; i++) {
			if (nfrac < 3)
				frac = frac * 10 + (v->p[i] - '0');
			else if (nfrac == 3)
				round = v->p[i] >= '5';
			nfrac++;
		}
	}
	if (i != v->len)
		return -EINVAL;	/* exponent or junk */
	for (; nfrac < 3; nfrac++)
		frac *= 10;
	whole = whole * 1000 + frac + round;
	*out = neg ? -whole : whole;
	return 0;
}

int json_str_eq(const struct json_val *v, const char *s)
{
	size_t n = strlen(s);

	return v->type == JSON_STRING && v->len == n && !memchr(v->p, '\\', v->len) &&
	       !memcmp(v->p, s, n);
}
