// SPDX-License-Identifier: GPL-2.0
/* maind configuration file and key file. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ini.h"
#include "maind_config.h"
#include "parse.h"

void maind_config_defaults(struct maind_config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->key_file, "/etc/gridmeter/maind.key");
	c->max_connections = 10000;
	c->first_frame_timeout_s = 30;
	c->idle_timeout_s = 900;
	c->max_batch = 100000;
	c->command_resend_s = 60;
	c->silent_after_s = 900;
	c->cmd_two_above = 10;
	c->cmd_disconnects_hour = 50;
	strcpy(c->portal_listen, "127.0.0.1:8443");
	c->portal_session_s = 8 * 3600;
	c->portal_idle_s = 30 * 60;
	c->portal_pool = 4;
	c->portal_conn_max = 64;
	strcpy(c->portal_sender, "gridmeter");
}

int maind_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon, *h = s;
	bool v6 = *s == '[';
	unsigned long port;
	char *end;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (v6) {
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
	if (!hl || hl >= sizeof(host) || !isdigit((unsigned char)colon[1]))
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port > 65535)
		return -1;
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a);
		return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;

	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	*len = sizeof(*a);
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

struct u32_key {
	const char *key;
	size_t off;
	uint32_t min, max;
	const char *unit;
};

static const struct u32_key *u32_key(const char *k)
{
	static const struct u32_key keys[] = {
#define K(name, field, min, max, unit) { name, offsetof(struct maind_config, field), min, max, unit }
		K("max_connections", max_connections, 1, 100000, ""),
		K("first_frame_timeout", first_frame_timeout_s, 1, 3600, " seconds"),
		K("idle_timeout", idle_timeout_s, 1, 86400, " seconds"),
		K("max_batch", max_batch, 1, 1000000, ""),
		K("command_resend", command_resend_s, 1, 86400, " seconds"),
		K("silent_after", silent_after_s, 1, 86400 * 30, " seconds"),
#undef K
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(k, keys[i].key))
			return &keys[i];
	return NULL;
}

/* [portal] (Documentation/portal.md "Configuration"): read by maind-portal. */
static int portal_entry(struct ini *ini, const struct ini_entry *e, struct maind_config *c)
{
	static const struct {
		const char *key;
		size_t off;
		uint32_t min, max, mul;
	} num[] = {
		{ "session_minutes", offsetof(struct maind_config, portal_session_s), 1, 10080, 60 },
		{ "session_seconds", offsetof(struct maind_config, portal_session_s), 5, 604800, 1 },
		{ "idle_minutes", offsetof(struct maind_config, portal_idle_s), 1, 10080, 60 },
		{ "idle_seconds", offsetof(struct maind_config, portal_idle_s), 5, 604800, 1 },
		{ "pool", offsetof(struct maind_config, portal_pool), 1, 64, 1 },
		{ "max_connections", offsetof(struct maind_config, portal_conn_max), 1, 1024, 1 },
	};
	const char *k = e->key, *v = e->value;
	struct sockaddr_storage ss;
	socklen_t len;
	uint32_t n;

	for (size_t i = 0; i < sizeof(num) / sizeof(num[0]); i++) {
		if (strcmp(k, num[i].key))
			continue;
		if (parse_u32(v, num[i].min, num[i].max, &n))
			return ini_error(ini, e->line, e->section, k, "'%s' is not %u..%u", v,
					 num[i].min, num[i].max);
		*(uint32_t *)((char *)c + num[i].off) = n * num[i].mul;
		return 0;
	}
	if (!strcmp(k, "listen")) {
		char full[96];

		/* ":PORT" is every address; else the form [server] listen takes */
		snprintf(full, sizeof(full), "%s%s", v[0] == ':' ? "0.0.0.0" : "", v);
		if (maind_parse_addr(full, &ss, &len) || strlcpy_chk(c->portal_listen, v,
								      sizeof(c->portal_listen)))
			return ini_error(ini, e->line, e->section, k,
					 "'%s' is not ADDRESS:PORT, [ADDRESS6]:PORT or :PORT", v);
	} else if (!strcmp(k, "tls_cert") || !strcmp(k, "tls_key")) {
		char *dst = k[4] == 'c' ? c->portal_tls_cert : c->portal_tls_key;

		if (v[0] != '/' || strlcpy_chk(dst, v, sizeof(c->portal_tls_cert)))
			return ini_error(ini, e->line, e->section, k,
					 "must be an absolute path under %zu bytes",
					 sizeof(c->portal_tls_cert));
	} else if (!strcmp(k, "letter_sender")) {
		if (strlcpy_chk(c->portal_sender, v, sizeof(c->portal_sender)))
			return ini_error(ini, e->line, e->section, k, "longer than %zu bytes",
					 sizeof(c->portal_sender) - 1);
	} else {
		return ini_error(ini, e->line, e->section, k, "unknown key");
	}
	return 0;
}

struct mparse {
	struct maind_config *c;
	bool seen_key, seen_conninfo;
};

static int on_entry(struct ini *ini, const struct ini_entry *e, void *ctx)
{
	struct mparse *p = ctx;
	struct maind_config *c = p->c;
	const char *k = e->key, *v = e->value;
	const struct u32_key *n;

	if (!k) {
		if (strcmp(e->section, "server") && strcmp(e->section, "commands") &&
		    strcmp(e->section, "portal"))
			return ini_error(ini, e->line, NULL, NULL, "unknown section [%s]", e->section);
		return 0;
	}
	if (!*v)
		return ini_error(ini, e->line, e->section, k, "empty value");
	if (!strcmp(e->section, "commands")) {
		bool two = !strcmp(k, "two_above");

		if (!two && strcmp(k, "disconnects_per_hour"))
			return ini_error(ini, e->line, e->section, k, "unknown key");
		if (parse_u32(v, two ? 1 : 0, two ? 65535 : 1000000,
			      two ? &c->cmd_two_above : &c->cmd_disconnects_hour))
			return ini_error(ini, e->line, e->section, k, "'%s' is not %u..%u", v,
					 two ? 1 : 0, two ? 65535 : 1000000);
		return 0;
	}
	if (!strcmp(e->section, "portal"))
		return portal_entry(ini, e, c);
	if (!strcmp(k, "listen")) {
		if (c->n_listen == MAIND_LISTEN_MAX)
			return ini_error(ini, e->line, e->section, k, "more than %d addresses",
					 MAIND_LISTEN_MAX);
		if (maind_parse_addr(v, &c->listen[c->n_listen], &c->listen_len[c->n_listen]))
			return ini_error(ini, e->line, e->section, k,
					 "'%s' is not ADDRESS:PORT or [ADDRESS6]:PORT", v);
		c->n_listen++;
	} else if (!strcmp(k, "key_file")) {
		if (v[0] != '/' || strlcpy_chk(c->key_file, v, sizeof(c->key_file)))
			return ini_error(ini, e->line, e->section, k,
					 "must be an absolute path under %zu bytes", sizeof(c->key_file));
		p->seen_key = true;
	} else if (!strcmp(k, "conninfo") || !strcmp(k, "report_conninfo")) {
		char *dst = k[0] == 'c' ? c->conninfo : c->report_conninfo;

		if (strlcpy_chk(dst, v, sizeof(c->conninfo)))
			return ini_error(ini, e->line, e->section, k, "longer than %zu bytes",
					 sizeof(c->conninfo) - 1);
		p->seen_conninfo |= k[0] == 'c';
	} else if ((n = u32_key(k))) {
		if (parse_u32(v, n->min, n->max, (uint32_t *)((char *)c + n->off)))
			return ini_error(ini, e->line, e->section, k, "'%s' is not %u..%u%s", v,
					 n->min, n->max, n->unit);
	} else {
		return ini_error(ini, e->line, e->section, k, "unknown key");
	}
	return 0;
}

int maind_config_load(struct maind_config *c, const char *path, char *err, size_t errlen)
{
	static const char *const repeatable[] = { "listen", NULL };
	struct mparse p = { .c = c };
	struct ini ini;
	int r;

	maind_config_defaults(c);
	ini_init(&ini, path, 0, err, errlen);
	ini.repeatable = repeatable;
	r = ini_parse_file(&ini, path, 1u << 20, on_entry, &p);
	if (!r && (!p.seen_key || !p.seen_conninfo))
		r = ini_error(&ini, ini_section_line(&ini, "server"), "server",
			      !p.seen_key ? "key_file" : "conninfo", "missing required key");
	if (!r && !c->n_listen)
		r = ini_error(&ini, ini_section_line(&ini, "server"), "server", "listen",
			      "missing required key");
	if (!r && !c->portal_tls_cert[0] != !c->portal_tls_key[0])
		r = ini_error(&ini, ini_section_line(&ini, "portal"), "portal",
			      c->portal_tls_cert[0] ? "tls_key" : "tls_cert",
			      "tls_cert and tls_key go together");
	ini_free(&ini);
	return r ? -1 : 0;
}

int maind_key_load(const char *path, struct gmp_keypair *kp, char *err, size_t errlen)
{
	char buf[2 * GMP_KEY_LEN + 3];
	uint8_t sk[GMP_KEY_LEN];
	struct stat sb;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) || (sb.st_mode & 077)) {
		close(fd);
		snprintf(err, errlen, "%s: must not be accessible by group or others", path);
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	rc = gmp_hex_decode(buf, sk, GMP_KEY_LEN) || gmp_keypair_from_secret(kp, sk) ? -1 : 0;
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(sk, sizeof(sk));
	if (rc)
		snprintf(err, errlen, "%s: expected one line of %d hex digits (a secret key)",
			 path, 2 * GMP_KEY_LEN);
	return rc;
}

int maind_key_create(const char *path, struct gmp_keypair *kp, char *err, size_t errlen)
{
	char hex[2 * GMP_KEY_LEN + 2];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	bool ok;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	gmp_keypair_generate(kp);
	gmp_hex_encode(kp->sk, GMP_KEY_LEN, hex);
	strcat(hex, "\n");
	ok = write(fd, hex, strlen(hex)) == (ssize_t)strlen(hex) && !fsync(fd);
	sodium_memzero(hex, sizeof(hex));
	if (close(fd) || !ok) {
		snprintf(err, errlen, "%s: write failed", path);
		return -1;
	}
	return 0;
}
