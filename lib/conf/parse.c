// SPDX-License-Identifier: GPL-2.0
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;
	int r = parse_u64(s, min, max, &v);

	if (r == 0)
		*out = (uint32_t)v;
	return r;
}

int parse_milli(const char *s, int64_t *out)
{
	int64_t ip = 0, fp = 0;
	int fdigits = 0, idigits = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++, idigits++) {
		if (ip > (INT64_MAX / 1000 - 9) / 10)
			return -ERANGE;
		ip = ip * 10 + (*s - '0');
	}
	if (*s == '.') {
		s++;
		for (; isdigit((unsigned char)*s); s++, fdigits++) {
			if (fdigits == 3)
				return -EINVAL;
			fp = fp * 10 + (*s - '0');
		}
		if (!fdigits)
			return -EINVAL;
	}
	if (*s || !idigits)
		return -EINVAL;
	for (; fdigits < 3; fdigits++)
		fp *= 10;
	*out = ip * 1000 + fp;
	return 0;
}

int64_t pow10_i64(unsigned n)
{
	int64_t p = 1;

	while (n--)
		p *= 10;
	return p;
}

int parse_fixed(const char *s, int64_t *mant, unsigned *decimals)
{
	bool neg = false, dot = false;
	unsigned digits = 0, dec = 0;
	int64_t m = 0;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	for (; *s; s++) {
		if (*s == '.' && !dot) {
			dot = true;
			continue;
		}
		if (!isdigit((unsigned char)*s))
			break;
		if (digits == 18)
			return -ERANGE;
		m = m * 10 + (*s - '0');
		digits++;
		dec += dot;
	}
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	if (*s || !digits)
		return -EINVAL;
	*mant = neg ? -m : m;
	*decimals = dec;
	return 0;
}

int64_t mul_div_round(int64_t value, int64_t num, int64_t den)
{
	__int128 p = (__int128)value * num;
	__int128 q = p / den, r = p % den;

	if (2 * (r < 0 ? -r : r) >= den)
		q += p < 0 ? -1 : 1;
	return (int64_t)q;
}

int parse_hhmm(const char *s, unsigned *minutes)
{
	uint64_t h, m;
	char buf[8];

	if (!s || strlen(s) != 5 || s[2] != ':')
		return -EINVAL;
	memcpy(buf, s, 2);
	buf[2] = 0;
	if (parse_u64(buf, 0, 24, &h))
		return -EINVAL;
	if (parse_u64(s + 3, 0, 59, &m))
		return -EINVAL;
	if (h == 24 && m)
		return -EINVAL;
	*minutes = (unsigned)(h * 60 + m);
	return 0;
}

static bool leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned char d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && leap(y) ? 29 : d[m - 1];
}

int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm. */
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * ((int64_t)m + (m > 2 ? -3 : 9)) + 2) / 5 + (int64_t)d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int parse_date(const char *s, int32_t *yyyymmdd)
{
	char buf[11];
	uint64_t y, m, d;

	if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -EINVAL;
	memcpy(buf, s, 11);
	buf[4] = buf[7] = 0;
	if (parse_u64(buf, 1970, 2199, &y) || parse_u64(buf + 5, 1, 12, &m) ||
	    parse_u64(buf + 8, 1, 31, &d))
		return -EINVAL;
	if (d > days_in_month((unsigned)y, (unsigned)m))
		return -EINVAL;
	*yyyymmdd = (int32_t)(y * 10000 + m * 100 + d);
	return 0;
}

int parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "1")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "0")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

char *strtrim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = 0;
	return s;
}

int strlcpy_chk(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (n >= size)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

char *next_item(char **cursor)
{
	char *s = *cursor, *comma;

	if (!s)
		return NULL;
	comma = strchr(s, ',');
	if (comma) {
		*comma = 0;
		*cursor = comma + 1;
	} else {
		*cursor = NULL;
	}
	return strtrim(s);
}
