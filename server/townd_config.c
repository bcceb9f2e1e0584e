// SPDX-License-Identifier: GPL-2.0
/* townd configuration file parser. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"
#include "parse.h"
#include "townd_config.h"

/* ---- [town] allocation keys (Documentation/townd.md "Allocation") ---- */
static void alloc_defaults(struct townd_config *c)
{
	c->grid_capacity_w = 0;
	c->meter_allocation_w = 10000;
	c->alloc_hysteresis_w = 100;
	c->alloc_default_duration_s = 900;
	c->alloc_max_duration_s = 86400;
}

/* 1 if k is an allocation key of [town] (parsed, or an error raised: *r), 0 if not. */
static int alloc_entry(struct ini *ini, const struct ini_entry *e, struct townd_config *c,
		       int *r)
{
	static const struct {
		const char *key;
		size_t off;
		uint32_t min, max;
		const char *unit;
	} keys[] = {
#define K(name, field, min, max, unit) { name, offsetof(struct townd_config, field), min, max, unit }
		K("grid_capacity_w", grid_capacity_w, 0, 4000000000u, " W"),
		K("meter_allocation_w", meter_allocation_w, 0, 1000000, " W"),
		K("alloc_hysteresis_w", alloc_hysteresis_w, 0, 1000000, " W"),
		K("alloc_default_duration", alloc_default_duration_s, 1, 86400 * 366, " seconds"),
		K("alloc_max_duration", alloc_max_duration_s, 1, 86400 * 366, " seconds"),
#undef K
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(e->key, keys[i].key))
			continue;
		*r = 0;
		if (parse_u32(e->value, keys[i].min, keys[i].max,
			      (uint32_t *)((char *)c + keys[i].off)))
			*r = ini_error(ini, e->line, e->section, e->key, "'%s' is not %u..%u%s",
				       e->value, keys[i].min, keys[i].max, keys[i].unit);
		return 1;
	}
	return 0;
}

void townd_config_defaults(struct townd_config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->database, "/var/lib/gridmeter/town.db");
	strcpy(c->key_file, "/etc/gridmeter/townd.key");
	c->max_connections = 20000;
	c->max_per_address = 64;
	c->first_frame_timeout_s = 30;
	c->idle_timeout_s = 900;
	c->stats_interval_s = 60;
	c->peer_log_limit = 10;
	c->max_batch = 4096;
	c->sync_full = 1;
	alloc_defaults(c);
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

struct tparse {
	struct townd_config *c;
	bool seen_db, seen_key;
};

/* The keys that are a number in a range (Documentation/townd.md). */
struct u32_key {
	const char *key;
	size_t off;		/* of the uint32_t in struct townd_config */
	uint32_t min, max;
	const char *unit;	/* after the range in an error */
};

static const struct u32_key *u32_key(const char *k)
{
	static const struct u32_key keys[] = {
#define K(name, field, min, max, unit) { name, offsetof(struct townd_config, field), min, max, unit }
		K("max_connections", max_connections, 1, 1000000, ""),
		K("max_per_address", max_per_address, 1, 1000000, ""),
		K("first_frame_timeout", first_frame_timeout_s, 1, 3600, " seconds"),
		K("idle_timeout", idle_timeout_s, 1, 86400, " seconds"),
		K("stats_interval", stats_interval_s, 1, 3600, " seconds"),
		K("peer_log_limit", peer_log_limit, 0, 10000, " lines per minute"),
		K("max_batch", max_batch, 1, 100000, ""),
#undef K
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(k, keys[i].key))
			return &keys[i];
	return NULL;
}

static int on_entry(struct ini *ini, const struct ini_entry *e, void *ctx)
{
	struct tparse *p = ctx;
	struct townd_config *c = p->c;
	const char *k = e->key, *v = e->value;
	unsigned int line = e->line;
	const struct u32_key *n;

	if (!k) {
		if (strcmp(e->section, "server") && strcmp(e->section, "town"))
			return ini_error(ini, line, NULL, NULL, "unknown section [%s]", e->section);
		return 0;
	}
	if (!*v)
		return ini_error(ini, line, e->section, k, "empty value");
	if (!strcmp(e->section, "town")) {
		int r = 0;

		if (alloc_entry(ini, e, c, &r))
			return r;
		return ini_error(ini, line, e->section, k, "unknown key");
	}
	if (!strcmp(k, "listen")) {
		if (c->n_listen == TOWND_LISTEN_MAX)
			return ini_error(ini, line, e->section, k, "more than %d addresses",
					 TOWND_LISTEN_MAX);
		if (townd_parse_addr(v, &c->listen[c->n_listen], &c->listen_len[c->n_listen]))
			return ini_error(ini, line, e->section, k,
					 "'%s' is not ADDRESS:PORT or [ADDRESS6]:PORT", v);
		c->n_listen++;
	} else if (!strcmp(k, "database") || !strcmp(k, "key_file")) {
		char *dst = k[0] == 'd' ? c->database : c->key_file;

		if (v[0] != '/' || strlen(v) >= sizeof(c->database))
			return ini_error(ini, line, e->section, k,
					 "must be an absolute path under %zu bytes", sizeof(c->database));
		strcpy(dst, v);
		if (k[0] == 'd')
			p->seen_db = true;
		else
			p->seen_key = true;
	} else if ((n = u32_key(k))) {
		if (parse_u32(v, n->min, n->max, (uint32_t *)((char *)c + n->off)))
			return ini_error(ini, line, e->section, k, "'%s' is not %u..%u%s", v, n->min,
					 n->max, n->unit);
	} else if (!strcmp(k, "synchronous")) {
		if (!strcmp(v, "full"))
			c->sync_full = 1;
		else if (!strcmp(v, "normal"))
			c->sync_full = 0;
		else
			return ini_error(ini, line, e->section, k, "'%s' is not full or normal", v);
	} else {
		return ini_error(ini, line, e->section, k, "unknown key");
	}
	return 0;
}

int townd_config_load(struct townd_config *c, const char *path, char *err, size_t errlen)
{
	static const char *const repeatable[] = { "listen", NULL };
	struct tparse p = { .c = c };
	struct ini ini;
	int r;

	townd_config_defaults(c);
	ini_init(&ini, path, 0, err, errlen);
	ini.repeatable = repeatable;
	r = ini_parse_file(&ini, path, 1u << 20, on_entry, &p);
	if (!r && (!p.seen_db || !p.seen_key))
		r = ini_error(&ini, ini_section_line(&ini, "server"), "server",
			      !p.seen_db ? "database" : "key_file", "missing required key");
	if (!r && strlcpy_chk(c->source, path, sizeof(c->source)))
		c->source[0] = '\0';
	if (!r && ini_has_key(&ini, "server", "max_connections"))
		c->max_connections_line = ini_key_line(&ini, "server", "max_connections");
	ini_free(&ini);
	return r ? -1 : 0;
}
