// SPDX-License-Identifier: GPL-2.0
/*
 * townd.conf sections [town] and [upstream] (issue 12): the town's time
 * zone and hour closing, and the link to the main server; [commands]
 * (issue 13): the operator keys signed commands are verified against, the
 * two-person threshold and the town's disconnect limit. Same strictness
 * and messages as [server] (townd_config.c).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gmproto.h"
#include "ini.h"
#include "parse.h"
#include "townd_config.h"

void townd_town_defaults(struct townd_config *c)
{
	strcpy(c->town.timezone, "UTC");
	c->town.hour_grace_s = 300;
	c->town.retention_chunk = 2000;
	memset(&c->up, 0, sizeof(c->up));
	c->up.interval_s = 3600;
	c->up.admin_after_s = 900;
	c->up.reconnect_max_s = 60;
	c->up.outbox_max_mb = 1024;
	memset(&c->cmd, 0, sizeof(c->cmd));
	c->cmd.two_above = 10;
	c->cmd.disconnects_per_hour = 60;
}

bool townd_town_section(const char *section)
{
	return !strcmp(section, "town") || !strcmp(section, "upstream") ||
	       !strcmp(section, "commands");
}

bool townd_tz_known(const char *tz)
{
	const char *dir = getenv("TZDIR");
	char path[512];

	if (!strcmp(tz, "UTC"))
		return true;
	if (!tz[0] || tz[0] == '/' || strstr(tz, "..") || strlen(tz) >= 64)
		return false;
	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "/usr/share/zoneinfo", tz);
	return access(path, R_OK) == 0;
}

struct town_u32 {
	const char *section, *key;
	size_t off;		/* of the uint32_t in struct townd_config */
	uint32_t min, max;
	const char *unit;
};

static const struct town_u32 *town_u32(const char *section, const char *k)
{
	static const struct town_u32 keys[] = {
#define K(s, name, field, min, max, unit) \
	{ s, name, offsetof(struct townd_config, field), min, max, unit }
		K("town", "hour_grace", town.hour_grace_s, 0, 86400, " seconds"),
		K("town", "retention_chunk", town.retention_chunk, 1, 1000000, " rows"),
		K("upstream", "interval", up.interval_s, 1, 86400, " seconds"),
		K("upstream", "admin_after", up.admin_after_s, 1, 604800, " seconds"),
		K("upstream", "reconnect_max", up.reconnect_max_s, 1, 3600, " seconds"),
		K("upstream", "outbox_max_mb", up.outbox_max_mb, 1, 100000, " MB"),
		K("commands", "two_above", cmd.two_above, 1, 65535, " meters"),
		K("commands", "disconnects_per_hour", cmd.disconnects_per_hour, 0, 100000, ""),
#undef K
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(section, keys[i].section) && !strcmp(k, keys[i].key))
			return &keys[i];
	return NULL;
}

int townd_town_entry(struct ini *ini, const struct ini_entry *e, struct townd_config *c)
{
	const char *s = e->section, *k = e->key, *v = e->value;
	const struct town_u32 *n;
	uint32_t id;

	if (!k) {
		if (!strcmp(s, "upstream"))
			c->up.enabled = true;
		return 0;
	}
	if (!*v)
		return ini_error(ini, e->line, s, k, "empty value");
	if ((n = town_u32(s, k))) {
		if (parse_u32(v, n->min, n->max, (uint32_t *)((char *)c + n->off)))
			return ini_error(ini, e->line, s, k, "'%s' is not %u..%u%s", v, n->min,
					 n->max, n->unit);
	} else if (!strcmp(s, "town") && !strcmp(k, "timezone")) {
		if (!townd_tz_known(v))
			return ini_error(ini, e->line, s, k, "unknown time zone '%s' (not in the "
					 "tz database)", v);
		strcpy(c->town.timezone, v);
	} else if (!strcmp(s, "upstream") && !strcmp(k, "address")) {
		if (townd_parse_addr(v, &c->up.addr, &c->up.addr_len))
			return ini_error(ini, e->line, s, k,
					 "'%s' is not ADDRESS:PORT or [ADDRESS6]:PORT", v);
	} else if (!strcmp(s, "upstream") && !strcmp(k, "main_public_key")) {
		struct gmp_keypair probe;
		struct gmp_lt lt;
		int bad;

		if (strlen(v) != 2 * GMP_KEY_LEN || gmp_hex_decode(v, c->up.main_pk, GMP_KEY_LEN))
			return ini_error(ini, e->line, s, k, "not %d hex digits (mainctl pubkey)",
					 2 * GMP_KEY_LEN);
		/* a key no session can be made with (a low-order point: all zeros...) */
		memset(probe.sk, 0x5a, sizeof(probe.sk));
		bad = gmp_keypair_from_secret(&probe, probe.sk) ||
		      gmp_lt_meter(&lt, &probe, c->up.main_pk);
		gmp_lt_wipe(&lt);
		if (bad)
			return ini_error(ini, e->line, s, k, "not a usable public key (mainctl "
					 "pubkey)");
	} else if (!strcmp(s, "upstream") && !strcmp(k, "town_id")) {
		if (parse_u32(v, 1, 65534, &id))
			return ini_error(ini, e->line, s, k, "'%s' is not 1..65534", v);
		c->up.town_id = (uint16_t)id;
	} else if (!strcmp(s, "commands") && !strcmp(k, "operator_keys")) {
		if (v[0] != '/' || strlen(v) >= sizeof(c->cmd.operator_keys))
			return ini_error(ini, e->line, s, k, "must be an absolute path under %zu bytes",
					 sizeof(c->cmd.operator_keys));
		strcpy(c->cmd.operator_keys, v);
	} else if (!strcmp(s, "upstream") && !strcmp(k, "outbox")) {
		if (v[0] != '/' || strlen(v) >= sizeof(c->up.outbox))
			return ini_error(ini, e->line, s, k, "must be an absolute path under %zu bytes",
					 sizeof(c->up.outbox));
		strcpy(c->up.outbox, v);
	} else {
		return ini_error(ini, e->line, s, k, "unknown key");
	}
	return 0;
}

int townd_town_check(struct ini *ini, struct townd_config *c)
{
	static const char *const required[] = { "address", "main_public_key", "town_id",
						"outbox" };

	if (!c->up.enabled)
		return 0;
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!ini_has_key(ini, "upstream", required[i]))
			return ini_error(ini, ini_section_line(ini, "upstream"), "upstream",
					 required[i], "missing required key");
	return 0;
}
