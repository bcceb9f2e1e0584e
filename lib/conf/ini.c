// SPDX-License-Identifier: GPL-2.0
/* The one INI reader (ini.h). */
#include "ini.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parse.h"

void ini_init(struct ini *ini, const char *name, unsigned int flags, char *err, size_t errlen)
{
	memset(ini, 0, sizeof(*ini));
	ini->name = name;
	ini->flags = flags;
	ini->err = err;
	ini->errlen = errlen;
}

void ini_free(struct ini *ini)
{
	free(ini->seen);
	ini->seen = NULL;
	ini->nseen = ini->cap = 0;
}

int ini_error(struct ini *ini, unsigned int line, const char *section, const char *key,
	      const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key && section && *section)
		snprintf(ini->err, ini->errlen, "%s:%u: [%s] key '%s': %s", ini->name, line,
			 section, key, msg);
	else if (key)
		snprintf(ini->err, ini->errlen, "%s:%u: key '%s': %s", ini->name, line, key, msg);
	else if (line)
		snprintf(ini->err, ini->errlen, "%s:%u: %s", ini->name, line, msg);
	else
		snprintf(ini->err, ini->errlen, "%s: %s", ini->name, msg);
	return -EINVAL;
}

static const struct ini_seen *find(const struct ini *ini, const char *section, const char *key)
{
	for (size_t i = 0; i < ini->nseen; i++)
		if (!strcmp(ini->seen[i].section, section) && !strcmp(ini->seen[i].key, key))
			return &ini->seen[i];
	return NULL;
}

unsigned int ini_section_line(const struct ini *ini, const char *section)
{
	const struct ini_seen *s = find(ini, section, "");

	return s ? s->line : 0;
}

bool ini_has_key(const struct ini *ini, const char *section, const char *key)
{
	return *key && find(ini, section, key);
}

unsigned int ini_key_line(const struct ini *ini, const char *section, const char *key)
{
	const struct ini_seen *s = key && *key ? find(ini, section, key) : NULL;

	return s ? s->line : ini_section_line(ini, section);
}

static bool repeatable(const struct ini *ini, const char *key)
{
	for (const char *const *r = ini->repeatable; r && *r; r++)
		if (!strcmp(*r, key))
			return true;
	return false;
}

static int remember(struct ini *ini, const char *section, const char *key, unsigned int line)
{
	if (ini->nseen == ini->cap) {
		size_t cap = ini->cap ? ini->cap * 2 : 64;
		struct ini_seen *s = realloc(ini->seen, cap * sizeof(*s));

		if (!s)
			return ini_error(ini, line, NULL, NULL, "out of memory");
		ini->seen = s;
		ini->cap = cap;
	}
	snprintf(ini->seen[ini->nseen].section, INI_NAME_MAX, "%s", section);
	snprintf(ini->seen[ini->nseen].key, INI_NAME_MAX, "%s", key);
	ini->seen[ini->nseen++].line = line;
	return 0;
}

/* One logical line, already cut out and NUL-terminated in buf. */
static int line_of(struct ini *ini, char *buf, unsigned int lineno, char *section,
		   ini_fn fn, void *ctx)
{
	struct ini_entry e = { .line = lineno };
	const struct ini_seen *was;
	char *line, *eq, *key, *val;
	int r;

	for (char *h = strchr(buf, '#'); h; h = strchr(h + 1, '#'))
		if (h > buf && (h[-1] == ' ' || h[-1] == '\t')) {
			*h = '\0';	/* trailing comment */
			break;
		}
	line = strtrim(buf);
	if (!*line || *line == '#' || *line == ';')
		return 0;
	if (*line == '[') {
		char *end = strchr(line, ']');

		if (ini->flags & INI_NO_SECTIONS)
			return ini_error(ini, lineno, NULL, NULL, "this file has no [sections]");
		if (!end || end[1])
			return ini_error(ini, lineno, NULL, NULL, "malformed section header '%s'",
					 line);
		*end = '\0';
		line = strtrim(line + 1);
		if (!*line || strlen(line) >= INI_NAME_MAX)
			return ini_error(ini, lineno, NULL, NULL, "section name empty or longer "
					 "than %d characters", INI_NAME_MAX - 1);
		if (ini_section_line(ini, line))
			return ini_error(ini, lineno, NULL, NULL, "section [%s] given twice "
					 "(first on line %u)", line, ini_section_line(ini, line));
		strcpy(section, line);
		r = remember(ini, section, "", lineno);
		if (r)
			return r;
		e.section = section;
		return fn(ini, &e, ctx);
	}
	eq = strchr(line, '=');
	if (!eq)
		return ini_error(ini, lineno, NULL, NULL, "expected 'key = value', got '%.60s'", line);
	*eq = '\0';
	key = strtrim(line);
	val = strtrim(eq + 1);
	if (!*key || strlen(key) >= INI_NAME_MAX || strpbrk(key, " \t[]"))
		return ini_error(ini, lineno, NULL, NULL, "bad key name '%.60s'", key);
	if (!section[0] && !(ini->flags & INI_NO_SECTIONS))
		return ini_error(ini, lineno, "", key, "key outside any section");
	was = find(ini, section, key);
	if (was && !repeatable(ini, key))
		return ini_error(ini, lineno, section, key, "given twice (first on line %u)",
				 was->line);
	if (!was) {
		r = remember(ini, section, key, lineno);
		if (r)
			return r;
	}
	e.section = section;
	e.key = key;
	e.value = val;
	return fn(ini, &e, ctx);
}

int ini_parse_text(struct ini *ini, const char *text, ini_fn fn, void *ctx)
{
	char section[INI_NAME_MAX] = "";
	char buf[INI_LINE_MAX];
	unsigned int lineno = 0;
	const char *s = text;
	int r = 0;

	while (*s && !r) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);

		lineno++;
		if (len >= sizeof(buf))
			return ini_error(ini, lineno, NULL, NULL, "line longer than %zu characters",
					 sizeof(buf) - 1);
		memcpy(buf, s, len);
		buf[len] = '\0';
		s = nl ? nl + 1 : s + len;
		r = line_of(ini, buf, lineno, section, fn, ctx);
	}
	explicit_bzero(buf, sizeof(buf));
	return r;
}

int ini_parse_fd(struct ini *ini, int fd, size_t max_bytes, ini_fn fn, void *ctx)
{
	struct stat st;
	char *text;
	size_t got = 0;
	int r;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max_bytes)
		return ini_error(ini, 0, NULL, NULL, "not a regular file of at most %zu bytes",
				 max_bytes);
	text = malloc((size_t)st.st_size + 1);
	if (!text)
		return ini_error(ini, 0, NULL, NULL, "out of memory");
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, text + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	text[got] = '\0';
	if (strlen(text) != got)
		r = ini_error(ini, 0, NULL, NULL, "contains a NUL byte");
	else
		r = ini_parse_text(ini, text, fn, ctx);
	explicit_bzero(text, got);
	free(text);
	return r;
}

int ini_parse_file(struct ini *ini, const char *path, size_t max_bytes, ini_fn fn, void *ctx)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0) {
		int e = errno;

		ini_error(ini, 0, NULL, NULL, "%s", strerror(e));
		return -e;
	}
	r = ini_parse_fd(ini, fd, max_bytes, fn, ctx);
	close(fd);
	return r;
}
