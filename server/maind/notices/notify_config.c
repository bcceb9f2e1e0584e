// SPDX-License-Identifier: GPL-2.0
/* notify.conf (notify_config.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ini.h"
#include "notify_config.h"
#include "parse.h"

void notify_config_defaults(struct notify_config *c)
{
	memset(c, 0, sizeof(*c));
	c->max_attempts = 8;
	c->backoff_first_s = 60;
	c->backoff_max_s = 6 * 3600;
	c->poll_s = 30;
	c->tls = NOTIFY_TLS_REQUIRED;
	strcpy(c->domain, "gridmeter.invalid");
	c->email_timeout_s = 60;
	c->attach_letter = true;
	c->sms_baud = 115200;
	c->sms_timeout_s = 60;
	c->sms_max_parts = 4;
}

struct u32_key {
	const char *section, *key;
	size_t off;
	uint32_t min, max;
};

static const struct u32_key *u32_key(const char *section, const char *k)
{
	static const struct u32_key keys[] = {
#define K(s, name, field, min, max) { s, name, offsetof(struct notify_config, field), min, max }
		K("retry", "max_attempts", max_attempts, 1, 100),
		K("retry", "backoff_first", backoff_first_s, 1, 86400),
		K("retry", "backoff_max", backoff_max_s, 1, 7 * 86400),
		K("retry", "poll", poll_s, 1, 3600),
		K("email", "timeout", email_timeout_s, 1, 3600),
		K("sms", "timeout", sms_timeout_s, 1, 600),
		K("sms", "max_parts", sms_max_parts, 1, 9),
#undef K
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(section, keys[i].section) && !strcmp(k, keys[i].key))
			return &keys[i];
	return NULL;
}

struct str_key {
	const char *section, *key;
	size_t off, size;
};

static const struct str_key *str_key(const char *section, const char *k)
{
	static const struct str_key keys[] = {
#define S(s, name, field) { s, name, offsetof(struct notify_config, field), \
			    sizeof(((struct notify_config *)0)->field) }
		S("database", "conninfo", conninfo),
		S("email", "url", smtp_url),
		S("email", "from", from_address),
		S("email", "from_name", from_name),
		S("email", "user", user),
		S("email", "ca_file", ca_file),
		S("email", "domain", domain),
		S("sms", "device", sms_device),
		S("post", "spool", spool),
		S("post", "sender", sender),
#undef S
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(section, keys[i].section) && !strcmp(k, keys[i].key))
			return &keys[i];
	return NULL;
}

/* The SMTP password: one line of a file nobody else may read. */
static int password_file(struct notify_config *c, const char *path, char *why, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	ssize_t r;

	if (fd < 0) {
		snprintf(why, n, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) || (sb.st_mode & 077)) {
		close(fd);
		snprintf(why, n, "%s must not be accessible by group or others", path);
		return -1;
	}
	r = read(fd, c->password, sizeof(c->password) - 1);
	close(fd);
	if (r < 0 || (size_t)r == sizeof(c->password) - 1) {
		snprintf(why, n, "%s: unreadable or longer than %zu bytes", path,
			 sizeof(c->password) - 2);
		return -1;
	}
	c->password[r] = '\0';
	c->password[strcspn(c->password, "\r\n")] = '\0';
	return 0;
}

static int on_entry(struct ini *ini, const struct ini_entry *e, void *ctx)
{
	static const char *const sections[] = { "database", "retry", "email", "sms", "post" };
	struct notify_config *c = ctx;
	const char *s = e->section, *k = e->key, *v = e->value;
	const struct u32_key *u;
	const struct str_key *t;
	char why[320];

	if (!k) {
		for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
			if (!strcmp(s, sections[i]))
				return 0;
		return ini_error(ini, e->line, NULL, NULL, "unknown section [%s]", s);
	}
	if (!*v)
		return ini_error(ini, e->line, s, k, "empty value");
	if ((u = u32_key(s, k))) {
		if (parse_u32(v, u->min, u->max, (uint32_t *)((char *)c + u->off)))
			return ini_error(ini, e->line, s, k, "'%s' is not %u..%u", v, u->min,
					 u->max);
	} else if ((t = str_key(s, k))) {
		if (strlcpy_chk((char *)c + t->off, v, t->size))
			return ini_error(ini, e->line, s, k, "longer than %zu bytes", t->size - 1);
		if ((!strcmp(k, "spool") || !strcmp(k, "device") || !strcmp(k, "ca_file")) &&
		    v[0] != '/')
			return ini_error(ini, e->line, s, k, "must be an absolute path");
		if (!strcmp(k, "url") && strncmp(v, "smtp://", 7) && strncmp(v, "smtps://", 8))
			return ini_error(ini, e->line, s, k, "'%s' is not smtp://HOST[:PORT] or "
					 "smtps://HOST[:PORT]", v);
		if (!strcmp(k, "from") && (!strchr(v, '@') || strpbrk(v, "<>\" \t")))
			return ini_error(ini, e->line, s, k, "'%s' is not a bare address "
					 "(user@domain; the name goes in from_name)", v);
	} else if (!strcmp(s, "email") && !strcmp(k, "password_file")) {
		if (v[0] != '/')
			return ini_error(ini, e->line, s, k, "must be an absolute path");
		if (password_file(c, v, why, sizeof(why)))
			return ini_error(ini, e->line, s, k, "%s", why);
	} else if (!strcmp(s, "email") && !strcmp(k, "tls")) {
		if (!strcmp(v, "none"))
			c->tls = NOTIFY_TLS_NONE;
		else if (!strcmp(v, "opportunistic"))
			c->tls = NOTIFY_TLS_TRY;
		else if (!strcmp(v, "required"))
			c->tls = NOTIFY_TLS_REQUIRED;
		else
			return ini_error(ini, e->line, s, k, "'%s' is not none, opportunistic or "
					 "required", v);
	} else if (!strcmp(s, "email") && !strcmp(k, "attach_letter")) {
		if (parse_bool(v, &c->attach_letter))
			return ini_error(ini, e->line, s, k, "'%s' is not a boolean", v);
	} else if (!strcmp(s, "sms") && !strcmp(k, "baud")) {
		static const uint32_t rates[] = { 1200, 2400, 4800, 9600, 19200, 38400, 57600,
						  115200 };
		uint32_t b = 0;
		bool ok = false;

		if (!parse_u32(v, 1200, 115200, &b))
			for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
				ok |= rates[i] == b;
		if (!ok)
			return ini_error(ini, e->line, s, k, "'%s' is not one of 1200 2400 4800 "
					 "9600 19200 38400 57600 115200", v);
		c->sms_baud = b;
	} else {
		return ini_error(ini, e->line, s, k, "unknown key");
	}
	return 0;
}

int notify_config_load(struct notify_config *c, const char *path, char *err, size_t errlen)
{
	struct ini ini;
	int r;

	notify_config_defaults(c);
	ini_init(&ini, path, 0, err, errlen);
	r = ini_parse_file(&ini, path, 1u << 20, on_entry, c);
	if (!r && !c->conninfo[0])
		r = ini_error(&ini, ini_section_line(&ini, "database"), "database", "conninfo",
			      "missing required key");
	if (!r && c->smtp_url[0] && !c->from_address[0])
		r = ini_error(&ini, ini_section_line(&ini, "email"), "email", "from",
			      "missing required key (url is set)");
	if (!r && c->backoff_max_s < c->backoff_first_s)
		r = ini_error(&ini, ini_key_line(&ini, "retry", "backoff_max"), "retry",
			      "backoff_max", "shorter than backoff_first");
	ini_free(&ini);
	return r ? -1 : 0;
}
