// SPDX-License-Identifier: GPL-2.0
#include "mw_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ini.h"
#include "parse.h"

enum ktype { K_STR, K_U32, K_BOOL, K_MINUTES };

struct keydef {
	const char *key;
	enum ktype type;
	size_t off, size;
	uint32_t min, max;
};

#define OFF(f) offsetof(struct mw_config, f), sizeof(((struct mw_config *)0)->f)

static const struct keydef keys[] = {
	{ "listen", K_STR, OFF(listen), 0, 0 },
	{ "allow_remote", K_BOOL, OFF(allow_remote), 0, 0 },
	{ "tls_cert", K_STR, OFF(tls_cert), 0, 0 },
	{ "tls_key", K_STR, OFF(tls_key), 0, 0 },
	{ "password_file", K_STR, OFF(password_file), 0, 0 },
	{ "guest_code_minutes", K_MINUTES, OFF(guest_code_s), 1, 7 * 24 * 3600 },
	{ "guest_session_minutes", K_U32, OFF(guest_session_minutes), 1, 7 * 24 * 60 },
	{ "session_minutes", K_U32, OFF(session_minutes), 5, 30 * 24 * 60 },
	{ "idle_minutes", K_U32, OFF(idle_minutes), 1, 24 * 60 },
	{ "login_burst", K_U32, OFF(login_burst), 1, 1000 },
	{ "login_window", K_U32, OFF(login_window), 1, 86400 },
	{ "conn_max", K_U32, OFF(conn_max), 2, 1024 },
	{ "conn_per_addr", K_U32, OFF(conn_per_addr), 1, 1024 },
	{ "timezone", K_STR, OFF(timezone), 0, 0 },
};

void mw_config_defaults(struct mw_config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->listen, ":8080");
	strcpy(c->password_file, MW_DEFAULT_PASSWD);
	c->guest_code_s = 3600;
	c->guest_session_minutes = 120;
	c->session_minutes = 480;
	c->idle_minutes = 30;
	c->login_burst = 5;
	c->login_window = 300;
	c->conn_max = 32;
	c->conn_per_addr = 16;
}

static int on_entry(struct ini *ini, const struct ini_entry *e, void *ctx)
{
	struct mw_config *c = ctx;

	if (strcmp(e->section, "web"))
		return ini_error(ini, e->line, e->section, NULL, "unknown section (meterweb reads [web])");
	if (!e->key)
		return 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct keydef *k = &keys[i];
		char *field = (char *)c + k->off;

		if (strcmp(k->key, e->key))
			continue;
		switch (k->type) {
		case K_STR:
			if (strlcpy_chk(field, e->value, k->size))
				return ini_error(ini, e->line, "web", e->key, "longer than %zu characters",
						 k->size - 1);
			return 0;
		case K_BOOL:
			if (parse_bool(e->value, (bool *)field))
				return ini_error(ini, e->line, "web", e->key, "'%s' is not yes or no", e->value);
			return 0;
		case K_MINUTES: {
			int64_t milli;

			/* minutes with up to three decimals, kept in whole seconds */
			if (parse_milli(e->value, &milli) || milli * 60 / 1000 < k->min || milli * 60 / 1000 > k->max)
				return ini_error(ini, e->line, "web", e->key,
						 "'%s' is not a number of minutes from %u s to %u days", e->value, k->min,
						 k->max / 86400);
			*(uint32_t *)field = (uint32_t)(milli * 60 / 1000);
			return 0;
		}
		case K_U32:
			if (parse_u32(e->value, k->min, k->max, (uint32_t *)field))
				return ini_error(ini, e->line, "web", e->key, "'%s' is not a whole number in %u..%u",
						 e->value, k->min, k->max);
			return 0;
		}
	}
	return ini_error(ini, e->line, "web", e->key, "unknown key");
}

static int check(struct mw_config *c, struct ini *ini)
{
	if (!c->listen[0])
		return ini_error(ini, ini_key_line(ini, "web", "listen"), "web", "listen", "must not be empty");
	if (!c->tls_cert[0] != !c->tls_key[0]) {
		const char *k = c->tls_cert[0] ? "tls_key" : "tls_cert";

		return ini_error(ini, ini_section_line(ini, "web"), "web", k,
				 "missing: tls_cert and tls_key go together");
	}
	if (!c->password_file[0])
		return ini_error(ini, ini_key_line(ini, "web", "password_file"), "web", "password_file",
				 "must not be empty");
	return 0;
}

static int run(struct mw_config *c, const char *name, const char *path, const char *text,
	       char *err, size_t errlen)
{
	struct ini ini;
	int r;

	ini_init(&ini, name, 0, err, errlen);
	r = text ? ini_parse_text(&ini, text, on_entry, c) : ini_parse_file(&ini, path, 64 * 1024, on_entry, c);
	if (!r)
		r = check(c, &ini);
	ini_free(&ini);
	return r;
}

int mw_config_load(struct mw_config *c, const char *path, char *err, size_t errlen)
{
	return run(c, path, path, NULL, err, errlen);
}

int mw_config_parse(struct mw_config *c, const char *name, const char *text, char *err, size_t errlen)
{
	return run(c, name, NULL, text, err, errlen);
}
