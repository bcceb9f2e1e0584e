// SPDX-License-Identifier: GPL-2.0
/*
 * townd.conf sections [town_network] and [neighbour ID] (issue 12,
 * Documentation/town-network.md): where neighbour towns connect to this
 * one, and the neighbours this town connects to, with their keys and link
 * costs. Same strictness and messages as [server] (townd_config.c).
 *
 *   [town_network]
 *   listen = 0.0.0.0:7710
 *   [neighbour 12]
 *   address = 192.0.2.12:7710
 *   public_key = <64 hex digits: the neighbour's town key>
 *   cost = 5
 *   outbox = /var/lib/gridmeter/neighbour-12
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmproto.h"
#include "ini.h"
#include "parse.h"
#include "townd_config.h"

#define NB_PREFIX	"neighbour "

/* Keys seen in a [neighbour ID] section (bits). */
#define NB_ADDRESS	0x1
#define NB_KEY		0x2
#define NB_OUTBOX	0x4

void townd_neighbour_defaults(struct townd_config *c)
{
	memset(&c->tn, 0, sizeof(c->tn));
	c->tn.hop_limit = 3;
	c->tn.loan_duration_s = 3600;
	c->tn.lease_s = 90;
}

bool townd_neighbour_section(const char *section)
{
	return !strcmp(section, "town_network") ||
	       !strncmp(section, NB_PREFIX, strlen(NB_PREFIX)) || !strcmp(section, "neighbour");
}

/* The neighbour being read: the last one started (sections are read in order). */
static struct townd_neighbour_config *current(struct townd_config *c)
{
	return c->tn.n ? &c->tn.nb[c->tn.n - 1] : NULL;
}

static int header(struct ini *ini, const struct ini_entry *e, struct townd_config *c)
{
	const char *s = e->section;
	struct townd_neighbour_config *nb;
	uint32_t id;

	if (!strcmp(s, "town_network"))
		return 0;
	if (!strcmp(s, "neighbour") ||
	    parse_u32(s + strlen(NB_PREFIX), 1, 65534, &id))
		return ini_error(ini, e->line, NULL, NULL,
				 "section [%s]: a neighbour is [neighbour ID], ID its town id 1..65534",
				 s);
	for (unsigned int i = 0; i < c->tn.n; i++)
		if (c->tn.nb[i].id == id)
			return ini_error(ini, e->line, NULL, NULL,
					 "section [%s]: town %u already given on line %u", s, id,
					 c->tn.nb[i].line);
	if (c->tn.n == TOWND_NEIGHBOUR_MAX)
		return ini_error(ini, e->line, NULL, NULL, "section [%s]: more than %d neighbours",
				 s, TOWND_NEIGHBOUR_MAX);
	nb = &c->tn.nb[c->tn.n++];
	memset(nb, 0, sizeof(*nb));
	nb->id = (uint16_t)id;
	nb->cost = 1;
	nb->line = e->line;
	return 0;
}

struct nb_u32 {
	const char *key;
	size_t off;		/* of the uint32_t in struct townd_townnet_config */
	uint32_t min, max;
	const char *unit;
};

static const struct nb_u32 *townnet_u32(const char *k)
{
	static const struct nb_u32 keys[] = {
#define K(name, field, min, max, unit) \
	{ name, offsetof(struct townd_townnet_config, field), min, max, unit }
		K("hop_limit", hop_limit, 1, GMP_LOAN_PATH_MAX, " hops"),
		K("loan_duration", loan_duration_s, 60, 86400, " seconds"),
		K("lease", lease_s, 10, 3600, " seconds"),
#undef K
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(k, keys[i].key))
			return &keys[i];
	return NULL;
}

int townd_neighbour_entry(struct ini *ini, const struct ini_entry *e, struct townd_config *c)
{
	const char *s = e->section, *k = e->key, *v = e->value;
	struct townd_neighbour_config *nb;
	const struct nb_u32 *n;

	if (!k)
		return header(ini, e, c);
	if (!*v)
		return ini_error(ini, e->line, s, k, "empty value");
	if (!strcmp(s, "town_network")) {
		if (!strcmp(k, "listen")) {
			if (townd_parse_addr(v, &c->tn.listen, &c->tn.listen_len))
				return ini_error(ini, e->line, s, k,
						 "'%s' is not ADDRESS:PORT or [ADDRESS6]:PORT", v);
		} else if ((n = townnet_u32(k))) {
			if (parse_u32(v, n->min, n->max, (uint32_t *)((char *)&c->tn + n->off)))
				return ini_error(ini, e->line, s, k, "'%s' is not %u..%u%s", v, n->min,
						 n->max, n->unit);
		} else {
			return ini_error(ini, e->line, s, k, "unknown key");
		}
		return 0;
	}
	nb = current(c);
	if (!strcmp(k, "address")) {
		if (townd_parse_addr(v, &nb->addr, &nb->addr_len))
			return ini_error(ini, e->line, s, k,
					 "'%s' is not ADDRESS:PORT or [ADDRESS6]:PORT", v);
	} else if (!strcmp(k, "public_key")) {
		struct gmp_keypair probe;
		struct gmp_lt lt;
		int bad;

		if (strlen(v) != 2 * GMP_KEY_LEN || gmp_hex_decode(v, nb->pk, GMP_KEY_LEN))
			return ini_error(ini, e->line, s, k,
					 "not %d hex digits (the neighbour's townctl pubkey)",
					 2 * GMP_KEY_LEN);
		/* a key no session can be made with (a low-order point: all zeros...) */
		memset(probe.sk, 0x5a, sizeof(probe.sk));
		bad = gmp_keypair_from_secret(&probe, probe.sk) || gmp_lt_meter(&lt, &probe, nb->pk);
		gmp_lt_wipe(&lt);
		if (bad)
			return ini_error(ini, e->line, s, k,
					 "not a usable public key (the neighbour's townctl pubkey)");
	} else if (!strcmp(k, "cost")) {
		if (parse_u32(v, 1, 1000000, &nb->cost))
			return ini_error(ini, e->line, s, k, "'%s' is not 1..1000000", v);
	} else if (!strcmp(k, "outbox")) {
		if (v[0] != '/' || strlen(v) >= sizeof(nb->outbox))
			return ini_error(ini, e->line, s, k, "must be an absolute path under %zu bytes",
					 sizeof(nb->outbox));
		strcpy(nb->outbox, v);
	} else {
		return ini_error(ini, e->line, s, k, "unknown key");
	}
	return 0;
}

int townd_neighbour_check(struct ini *ini, struct townd_config *c)
{
	static const char *const required[] = { "address", "public_key", "outbox" };

	for (unsigned int i = 0; i < c->tn.n; i++) {
		const struct townd_neighbour_config *nb = &c->tn.nb[i];
		char sec[INI_NAME_MAX];

		snprintf(sec, sizeof(sec), NB_PREFIX "%u", nb->id);
		for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++) {
			/* the section as written ("neighbour 012" is town 12 too) */
			bool has = false;

			for (size_t j = 0; j < ini->nseen; j++)
				if (ini->seen[j].line > nb->line && !strcmp(ini->seen[j].key, required[k]) &&
				    !strncmp(ini->seen[j].section, NB_PREFIX, strlen(NB_PREFIX)) &&
				    (unsigned int)atoi(ini->seen[j].section + strlen(NB_PREFIX)) == nb->id)
					has = true;
			if (!has)
				return ini_error(ini, nb->line, sec, required[k], "missing required key");
		}
		if (nb->id == c->up.town_id)
			return ini_error(ini, nb->line, sec, NULL,
					 "[%s]: town %u is this town ([upstream] town_id)", sec, nb->id);
		for (unsigned int j = 0; j < i; j++)
			if (!strcmp(nb->outbox, c->tn.nb[j].outbox))
				return ini_error(ini, nb->line, sec, "outbox",
						 "the outbox of [neighbour %u] too", c->tn.nb[j].id);
		if (c->up.enabled && !strcmp(nb->outbox, c->up.outbox))
			return ini_error(ini, nb->line, sec, "outbox", "the outbox of [upstream] too");
	}
	if (c->tn.n && !c->up.town_id)
		return ini_error(ini, c->tn.nb[0].line, NULL, NULL,
				 "[neighbour %u]: neighbours need this town's own id: [upstream] town_id",
				 c->tn.nb[0].id);
	return 0;
}
