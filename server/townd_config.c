// SPDX-License-Identifier: GPL-2.0
/* townd configuration file parser. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "townd_config.h"

void townd_config_defaults(struct townd_config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->database, "/var/lib/gridmeter/town.db");
	strcpy(c->key_file, "/etc/gridmeter/townd.key");
	c->max_connections = 20000;
	c->idle_timeout_s = 900;
	c->max_batch = 4096;
	c->sync_full = 1;
}

int townd_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon, *h = s;
	size_t hl;
	char *end;
	unsigned long port;

	memset(ss, 0, sizeof(*ss));
	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -1;
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (!isdigit((unsigned char)colon[1]))
		return -1;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port > 65535)
		return -1;
	if (*s == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -1;
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -1;
		*len = sizeof(*a);
	}
	return 0;
}

static int fail(char *err, size_t errlen, const char *path, unsigned int line,
		const char *key, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key)
		snprintf(err, errlen, "%s:%u: key '%s': %s", path, line, key, msg);
	else
		snprintf(err, errlen, "%s:%u: %s", path, line, msg);
	return -1;
}

int townd_config_load(struct townd_config *c, const char *path, char *err, size_t errlen)
{
	char buf[512];
	unsigned int line = 0;
	int in_server = 0, seen_db = 0, seen_key = 0;
	FILE *f = fopen(path, "re");

	townd_config_defaults(c);
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(buf, sizeof(buf), f)) {
		char *s, *eq, *k, *v;

		line++;
		if (!strchr(buf, '\n') && !feof(f)) {
			fclose(f);
			return fail(err, errlen, path, line, NULL, "line too long");
		}
		s = strtrim(buf);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			if (strcmp(s, "[server]")) {
				fclose(f);
				return fail(err, errlen, path, line, NULL, "unknown section %s", s);
			}
			in_server = 1;
			continue;
		}
		eq = strchr(s, '=');
		if (!eq) {
			fclose(f);
			return fail(err, errlen, path, line, NULL, "expected key = value");
		}
		*eq = '\0';
		k = strtrim(s);
		v = strtrim(eq + 1);
		if (!in_server) {
			fclose(f);
			return fail(err, errlen, path, line, k, "outside the [server] section");
		}
		if (!*v) {
			fclose(f);
			return fail(err, errlen, path, line, k, "empty value");
		}
		if (!strcmp(k, "listen")) {
			if (c->n_listen == TOWND_LISTEN_MAX) {
				fclose(f);
				return fail(err, errlen, path, line, k, "more than %d addresses",
					    TOWND_LISTEN_MAX);
			}
			if (townd_parse_addr(v, &c->listen[c->n_listen], &c->listen_len[c->n_listen])) {
				fclose(f);
				return fail(err, errlen, path, line, k,
					    "'%s' is not ADDRESS:PORT or [ADDRESS6]:PORT", v);
			}
			c->n_listen++;
		} else if (!strcmp(k, "database") || !strcmp(k, "key_file")) {
			char *dst = k[0] == 'd' ? c->database : c->key_file;

			if (v[0] != '/' || strlen(v) >= sizeof(c->database)) {
				fclose(f);
				return fail(err, errlen, path, line, k,
					    "must be an absolute path under %zu bytes",
					    sizeof(c->database));
			}
			strcpy(dst, v);
			if (k[0] == 'd')
				seen_db = 1;
			else
				seen_key = 1;
		} else if (!strcmp(k, "max_connections")) {
			if (parse_u32(v, 1, 1000000, &c->max_connections)) {
				fclose(f);
				return fail(err, errlen, path, line, k, "'%s' is not 1..1000000", v);
			}
		} else if (!strcmp(k, "idle_timeout")) {
			if (parse_u32(v, 10, 86400, &c->idle_timeout_s)) {
				fclose(f);
				return fail(err, errlen, path, line, k,
					    "'%s' is not 10..86400 seconds", v);
			}
		} else if (!strcmp(k, "max_batch")) {
			if (parse_u32(v, 1, 100000, &c->max_batch)) {
				fclose(f);
				return fail(err, errlen, path, line, k, "'%s' is not 1..100000", v);
			}
		} else if (!strcmp(k, "synchronous")) {
			if (!strcmp(v, "full")) {
				c->sync_full = 1;
			} else if (!strcmp(v, "normal")) {
				c->sync_full = 0;
			} else {
				fclose(f);
				return fail(err, errlen, path, line, k,
					    "'%s' is not full or normal", v);
			}
		} else {
			fclose(f);
			return fail(err, errlen, path, line, k, "unknown key");
		}
	}
	fclose(f);
	if (!seen_db || !seen_key) {
		snprintf(err, errlen, "%s: key '%s' is required", path,
			 !seen_db ? "database" : "key_file");
		return -1;
	}
	return 0;
}
