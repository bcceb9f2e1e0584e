/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one INI reader of gridmeter: meterd.conf, townd.conf, meterd's
 * tariff.conf and the meter's credentials file all go through it, so every
 * program reports a bad line the same way:
 *
 *   FILE:LINE: [SECTION] key 'KEY': why     (or FILE:LINE: why, FILE: why)
 *
 * Syntax: "[section]" headers, "key = value" lines, blank lines, comment
 * lines starting with '#' or ';', and trailing " # comments" (a '#' after a
 * blank). Keys are case-sensitive; a key may appear once per section unless
 * the caller lists it as repeatable; a section header may appear once. Lines
 * longer than INI_LINE_MAX, NUL bytes and files larger than the caller's
 * limit are errors. The reader keeps the line of every section and key it
 * saw, so that validation after the parse can still name a line.
 *
 * No global state: struct ini is the parser, owned by the caller.
 */
#ifndef GM_INI_H
#define GM_INI_H

#include <stdbool.h>
#include <stddef.h>

#define INI_LINE_MAX	1024
#define INI_NAME_MAX	48	/* section and key names, NUL included */

enum {
	INI_NO_SECTIONS = 1u << 0,	/* keys need no [section] (credential files) */
};

struct ini_entry {
	const char *section;	/* "" before any header (INI_NO_SECTIONS) */
	const char *key;	/* NULL: the header of section `section` */
	const char *value;	/* trimmed; NULL for a header */
	unsigned int line;
};

struct ini_seen {
	char section[INI_NAME_MAX];
	char key[INI_NAME_MAX];	/* "" for a section header */
	unsigned int line;
};

struct ini {
	const char *name;		/* file name used in messages */
	char *err;
	size_t errlen;
	unsigned int flags;		/* INI_* */
	const char *const *repeatable;	/* keys that may be given more than once (NULL-ended) */
	struct ini_seen *seen;
	size_t nseen, cap;
};

/*
 * Called for every section header and every key. Returns 0 to go on, or a
 * negative errno after ini_error() (the parse stops and returns it).
 */
typedef int (*ini_fn)(struct ini *ini, const struct ini_entry *e, void *ctx);

void ini_init(struct ini *ini, const char *name, unsigned int flags, char *err, size_t errlen);
void ini_free(struct ini *ini);
/* Parse text (NUL-terminated). 0 or a negative errno with the message in ini->err. */
int ini_parse_text(struct ini *ini, const char *text, ini_fn fn, void *ctx);
/*
 * Read and parse a regular file of at most max_bytes. The text and the
 * line buffer are wiped after the parse (key files hold secrets).
 */
int ini_parse_file(struct ini *ini, const char *path, size_t max_bytes, ini_fn fn, void *ctx);
/* The same on an open file (checked with fstat by the caller, e.g. for its mode). */
int ini_parse_fd(struct ini *ini, int fd, size_t max_bytes, ini_fn fn, void *ctx);
/* Format an error as above into ini->err; returns -EINVAL. line 0: no line. */
int ini_error(struct ini *ini, unsigned int line, const char *section, const char *key,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Line of a key (or of its section if the key was not given), 0 if neither. */
unsigned int ini_key_line(const struct ini *ini, const char *section, const char *key);
/* Whether the key was given. */
bool ini_has_key(const struct ini *ini, const char *section, const char *key);
unsigned int ini_section_line(const struct ini *ini, const char *section);

#endif
