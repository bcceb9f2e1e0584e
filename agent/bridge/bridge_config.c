// SPDX-License-Identifier: GPL-2.0
#include "bridge_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ini.h"
#include "parse.h"

/* Words given per plug before tas_plug_init checks them together. */
struct pending {
	char topic[TAS_TOPIC_MAX + 1];
	uint32_t relay;
	char on_word[TAS_WORD_MAX + 1], off_word[TAS_WORD_MAX + 1];
};

struct ctx {
	struct bridge_config *c;
	struct pending pend[BRIDGE_MAX_PLUGS];
};

void bridge_config_defaults(struct bridge_config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->host, "127.0.0.1");
	c->port = 1883;
	strcpy(c->client_id, "gridmeter-bridge");
	c->keepalive_s = 30;
	c->ha_enabled = true;
	c->ha_interval_s = 10;
	strcpy(c->discovery_prefix, "homeassistant");
	strcpy(c->base_topic, "gridmeter");
}

static int str(struct ini *ini, const struct ini_entry *e, char *dst, size_t size)
{
	if (strlcpy_chk(dst, e->value, size))
		return ini_error(ini, e->line, e->section, e->key, "longer than %zu characters", size - 1);
	return 0;
}

static int path(struct ini *ini, const struct ini_entry *e, char *dst, size_t size)
{
	if (e->value[0] && e->value[0] != '/')
		return ini_error(ini, e->line, e->section, e->key, "'%s' is not an absolute path", e->value);
	return str(ini, e, dst, size);
}

static int topic_value(struct ini *ini, const struct ini_entry *e, char *dst, size_t size)
{
	size_t n = strlen(e->value);

	if (!n || strpbrk(e->value, "+# ") || e->value[0] == '/' || e->value[n - 1] == '/')
		return ini_error(ini, e->line, e->section, e->key,
				 "'%s' is not a topic (no wildcards, blanks or outer '/')", e->value);
	return str(ini, e, dst, size);
}

static int u32(struct ini *ini, const struct ini_entry *e, uint32_t min, uint32_t max, uint32_t *out)
{
	if (parse_u32(e->value, min, max, out))
		return ini_error(ini, e->line, e->section, e->key, "'%s' is not a whole number in %u..%u",
				 e->value, min, max);
	return 0;
}

static int boolean(struct ini *ini, const struct ini_entry *e, bool *out)
{
	if (parse_bool(e->value, out))
		return ini_error(ini, e->line, e->section, e->key, "'%s' is not yes or no", e->value);
	return 0;
}

static int broker_key(struct ini *ini, const struct ini_entry *e, struct bridge_config *c)
{
	const char *k = e->key;

	if (!strcmp(k, "host"))
		return str(ini, e, c->host, sizeof(c->host));
	if (!strcmp(k, "port"))
		return u32(ini, e, 1, 65535, &c->port);
	if (!strcmp(k, "client_id"))
		return str(ini, e, c->client_id, sizeof(c->client_id));
	if (!strcmp(k, "username"))
		return str(ini, e, c->username, sizeof(c->username));
	if (!strcmp(k, "password_file"))
		return path(ini, e, c->password_file, sizeof(c->password_file));
	if (!strcmp(k, "ca_file"))
		return path(ini, e, c->ca_file, sizeof(c->ca_file));
	if (!strcmp(k, "cert_file"))
		return path(ini, e, c->cert_file, sizeof(c->cert_file));
	if (!strcmp(k, "key_file"))
		return path(ini, e, c->key_file, sizeof(c->key_file));
	if (!strcmp(k, "keepalive"))
		return u32(ini, e, 5, 300, &c->keepalive_s);
	if (!strcmp(k, "password"))
		return ini_error(ini, e->line, e->section, k,
				 "not accepted here: give password_file (a credential file)");
	return ini_error(ini, e->line, e->section, k,
			 "unknown key (host, port, client_id, username, password_file, ca_file, cert_file, key_file, keepalive)");
}

static int ha_key(struct ini *ini, const struct ini_entry *e, struct bridge_config *c)
{
	const char *k = e->key;

	if (!strcmp(k, "enabled"))
		return boolean(ini, e, &c->ha_enabled);
	if (!strcmp(k, "discovery_prefix"))
		return topic_value(ini, e, c->discovery_prefix, sizeof(c->discovery_prefix));
	if (!strcmp(k, "base_topic"))
		return topic_value(ini, e, c->base_topic, sizeof(c->base_topic));
	if (!strcmp(k, "home_sensors"))
		return boolean(ini, e, &c->home_sensors);
	if (!strcmp(k, "interval"))
		return u32(ini, e, 1, 3600, &c->ha_interval_s);
	return ini_error(ini, e->line, e->section, k,
			 "unknown key (enabled, discovery_prefix, base_topic, home_sensors, interval)");
}

static int plug_key(struct ini *ini, const struct ini_entry *e, struct plug_cfg *p,
		    struct pending *pd)
{
	const char *k = e->key;

	if (!strcmp(k, "type")) {
		if (!strcmp(e->value, "tasmota"))
			p->type = PLUG_TASMOTA;
		else if (!strcmp(e->value, "esphome"))
			p->type = PLUG_ESPHOME;
		else
			return ini_error(ini, e->line, e->section, k, "'%s' is not tasmota or esphome", e->value);
		return 0;
	}
	if (!strcmp(k, "topic"))
		return str(ini, e, pd->topic, sizeof(pd->topic));
	if (!strcmp(k, "relay"))
		return u32(ini, e, 0, 8, &pd->relay);
	/*
	 * Tasmota's TelePeriod is 10..3600 s, but an ESPHome sensor's
	 * update_interval may be shorter: 1 s up (the plug is stale after 3x).
	 */
	if (!strcmp(k, "telemetry"))
		return u32(ini, e, 1, 3600, &p->telemetry_s);
	if (!strcmp(k, "on_word"))
		return str(ini, e, pd->on_word, sizeof(pd->on_word));
	if (!strcmp(k, "off_word"))
		return str(ini, e, pd->off_word, sizeof(pd->off_word));
	if (!strcmp(k, "switch_name"))
		return str(ini, e, p->switch_name, sizeof(p->switch_name));
	if (!strcmp(k, "power_sensor"))
		return str(ini, e, p->power_sensor, sizeof(p->power_sensor));
	return ini_error(ini, e->line, e->section, k,
			 "unknown key (type, topic, relay, telemetry, on_word, off_word, switch_name, power_sensor)");
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= BRIDGE_NAME_LEN)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

static int on_entry(struct ini *ini, const struct ini_entry *e, void *arg)
{
	struct ctx *x = arg;
	struct bridge_config *c = x->c;

	if (!strncmp(e->section, "plug.", 5)) {
		if (!e->key) {
			struct plug_cfg *p;

			if (!name_ok(e->section + 5))
				return ini_error(ini, e->line, NULL, NULL,
						 "section [%s]: plug name must be 1-%d characters of a-z, 0-9, _ (meterd's load name)",
						 e->section, BRIDGE_NAME_LEN - 1);
			if (c->nplugs == BRIDGE_MAX_PLUGS)
				return ini_error(ini, e->line, NULL, NULL, "section [%s]: more than %d plugs",
						 e->section, BRIDGE_MAX_PLUGS);
			p = &c->plug[c->nplugs++];
			strcpy(p->name, e->section + 5);
			p->telemetry_s = 300;
			p->line = e->line;
			return 0;
		}
		return plug_key(ini, e, &c->plug[c->nplugs - 1], &x->pend[c->nplugs - 1]);
	}
	if (!strcmp(e->section, "broker"))
		return e->key ? broker_key(ini, e, c) : 0;
	if (!strcmp(e->section, "homeassistant"))
		return e->key ? ha_key(ini, e, c) : 0;
	return ini_error(ini, e->line, NULL, NULL,
			 "section [%s]: unknown (the sections are [broker], [homeassistant], [plug.NAME])",
			 e->section);
}

static int check(struct ctx *x, struct ini *ini)
{
	struct bridge_config *c = x->c;

	if (!c->cert_file[0] != !c->key_file[0]) {
		const char *k = c->cert_file[0] ? "key_file" : "cert_file";

		return ini_error(ini, ini_section_line(ini, "broker"), "broker", k,
				 "missing: cert_file and key_file go together");
	}
	if (c->cert_file[0] && !c->ca_file[0])
		return ini_error(ini, ini_key_line(ini, "broker", "cert_file"), "broker", "ca_file",
				 "missing: a client certificate needs TLS (ca_file)");
	if (c->password_file[0] && !c->username[0])
		return ini_error(ini, ini_key_line(ini, "broker", "password_file"), "broker", "username",
				 "missing: password_file needs a username");
	for (size_t i = 0; i < c->nplugs; i++) {
		struct plug_cfg *p = &c->plug[i];
		struct pending *pd = &x->pend[i];
		char sec[BRIDGE_NAME_LEN + 8];

		snprintf(sec, sizeof(sec), "plug.%s", p->name);
		if (!pd->topic[0])
			return ini_error(ini, p->line, sec, "topic", "missing required key");
		if (tas_plug_init(&p->tas, pd->topic, pd->relay, pd->on_word[0] ? pd->on_word : NULL,
				  pd->off_word[0] ? pd->off_word : NULL))
			return ini_error(ini, ini_key_line(ini, sec, "topic"), sec, "topic",
					 "'%s' (relay %u, words '%s'/'%s') is not a Tasmota topic of 1-%d characters of A-Z a-z 0-9 _ - with two different words",
					 pd->topic, pd->relay, pd->on_word[0] ? pd->on_word : "ON",
					 pd->off_word[0] ? pd->off_word : "OFF", TAS_TOPIC_MAX - 1);
		if (p->type == PLUG_ESPHOME && !p->switch_name[0])
			return ini_error(ini, p->line, sec, "switch_name", "missing: ESPHome plugs need it");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(c->plug[j].tas.topic, p->tas.topic) && c->plug[j].tas.relay == p->tas.relay)
				return ini_error(ini, ini_key_line(ini, sec, "topic"), sec, "topic",
						 "'%s' relay %u already used by plug %s", p->tas.topic,
						 p->tas.relay, c->plug[j].name);
	}
	return 0;
}

static int run(struct bridge_config *c, const char *name, const char *path, const char *text,
	       char *err, size_t errlen)
{
	struct ctx x = { .c = c };
	struct ini ini;
	int r;

	bridge_config_defaults(c);
	ini_init(&ini, name, 0, err, errlen);
	r = text ? ini_parse_text(&ini, text, on_entry, &x) :
		   ini_parse_file(&ini, path, 64 * 1024, on_entry, &x);
	if (!r)
		r = check(&x, &ini);
	ini_free(&ini);
	return r;
}

int bridge_config_load(struct bridge_config *c, const char *path, char *err, size_t errlen)
{
	return run(c, path, path, NULL, err, errlen);
}

int bridge_config_parse(struct bridge_config *c, const char *name, const char *text, char *err,
			size_t errlen)
{
	return run(c, name, NULL, text, err, errlen);
}
