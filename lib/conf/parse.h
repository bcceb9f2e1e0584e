/* SPDX-License-Identifier: GPL-2.0 */
/* Small strict parsers shared by the config file and D-Bus arguments. */
#ifndef GM_PARSE_H
#define GM_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decimal unsigned integer, no sign, no trailing junk, within [min, max]. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* The same into a uint32_t (min and max within uint32_t). */
int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
/*
 * Fixed-point decimal with up to three fraction digits, e.g. "28.62" ->
 * 28620 (thousandths). Negative values are rejected.
 */
int parse_milli(const char *s, int64_t *out);
/*
 * Signed decimal with up to 18 significant digits, e.g. "-0.987654" ->
 * mantissa -987654 and 6 decimals. Trailing blanks and a newline are allowed
 * (sysfs values).
 */
int parse_fixed(const char *s, int64_t *mant, unsigned *decimals);
/* round(value * num / den), half away from zero, exact for any int64 inputs (den > 0). */
int64_t mul_div_round(int64_t value, int64_t num, int64_t den);
/* 10^n for n <= 18. */
int64_t pow10_i64(unsigned n);
/* "HH:MM" with 00:00..24:00 -> minutes after midnight. */
int parse_hhmm(const char *s, unsigned *minutes);
/* "YYYY-MM-DD" -> YYYYMMDD after a calendar validity check. */
int parse_date(const char *s, int32_t *yyyymmdd);
/* Days in month m (1..12) of year y. */
unsigned days_in_month(unsigned y, unsigned m);
/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
int parse_bool(const char *s, bool *out);
/* Trim leading and trailing blanks in place; returns s advanced. */
char *strtrim(char *s);
/* Copy with truncation check: -1 if it did not fit. */
int strlcpy_chk(char *dst, const char *src, size_t size);
/* Split the next comma-separated item off *cursor (modified in place). */
char *next_item(char **cursor);

#endif
