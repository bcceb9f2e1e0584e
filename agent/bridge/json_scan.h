/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A bounded JSON reader for the payloads the MQTT bridge receives (Tasmota
 * SENSOR/STATE/RESULT/STATUS10). It validates the whole document (RFC 8259
 * grammar, nesting at most JSON_MAX_DEPTH, no bytes after the value) and
 * finds the value at a dot-separated key path such as "ENERGY.Power".
 * It never reads outside [buf, buf + len), needs no NUL, allocates nothing
 * and keeps no state between calls: any bytes give a result or an error.
 *
 * Keys with escapes never match a path (Tasmota's keys have none); a path
 * that appears twice in one document is an error (-EINVAL), not a guess.
 */
#ifndef GM_JSON_SCAN_H
#define GM_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH	16

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_OBJECT, JSON_ARRAY };

struct json_val {
	enum json_type type;
	const char *p;	/* the value's bytes; for a string, between the quotes (raw, escapes kept) */
	size_t len;
};

/*
 * 0 and *out when the document is valid and the path is in it; -ENOENT when
 * valid and absent; -EINVAL when the bytes are not one valid JSON value,
 * nest deeper than JSON_MAX_DEPTH or hold the path twice.
 */
int json_find(const void *buf, size_t len, const char *path, struct json_val *out);

/*
 * A JSON number as an exact integer in thousandths ("3.705" -> 3705,
 * "5" -> 5000, "-0.021" -> -21); more than 3 decimals round half away from
 * zero. -ERANGE beyond +-2^62, -EINVAL for exponents or anything else.
 */
int json_milli(const struct json_val *v, int64_t *out);

/* Whether v is a string without escapes equal to s. */
int json_str_eq(const struct json_val *v, const char *s);

#endif
