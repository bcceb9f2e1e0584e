// SPDX-License-Identifier: GPL-2.0
/*
 * ESPHome's MQTT conventions (esphome.h). Sources: ESPHome's MQTT client
 * documentation (components/mqtt: <topic_prefix>/status birth "online" and
 * will "offline", <prefix>/<component>/<object_id>/state and /command) and
 * its mqtt_switch.cpp / mqtt_sensor.cpp (switch state "ON"/"OFF", sensor
 * state the number printed with accuracy_decimals, "nan" when the sensor has
 * no value); see Documentation/mqtt.md "ESPHome".
 */
#include "esphome.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json_scan.h"

/* An object id as ESPHome makes it (str_snake_case + str_sanitize): a-z 0-9 _ - */
static bool id_ok(const char *s, bool empty_ok)
{
	size_t n = s ? strlen(s) : 0;

	if (!n)
		return empty_ok;
	if (n >= ESP_ID_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* topic_prefix: levels of A-Z a-z 0-9 _ - separated by single '/', no wildcard, no empty level. */
static bool prefix_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	char prev = '/';

	if (!n || n >= ESP_PREFIX_MAX)
		return false;
	for (; *s; prev = *s, s++) {
		if (*s == '/') {
			if (prev == '/')
				return false;
			continue;
		}
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	}
	return prev != '/';
}

int esp_plug_init(struct esp_plug *p, const char *prefix, const char *switch_id,
		  const char *power_id)
{
	memset(p, 0, sizeof(*p));
	if (!prefix_ok(prefix) || !id_ok(switch_id, false) || !id_ok(power_id, true))
		return -EINVAL;
	strcpy(p->prefix, prefix);
	strcpy(p->switch_id, switch_id);
	if (power_id)
		strcpy(p->power_id, power_id);
	return 0;
}

static int put(size_t len, int n)
{
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int esp_sub_topic(const struct esp_plug *p, enum esp_kind k, char *buf, size_t len)
{
	switch (k) {
	case ESP_STATUS:
		return put(len, snprintf(buf, len, "%s/status", p->prefix));
	case ESP_SWITCH_STATE:
		return put(len, snprintf(buf, len, "%s/switch/%s/state", p->prefix, p->switch_id));
	case ESP_POWER:
		if (!p->power_id[0])
			return -ENOENT;
		return put(len, snprintf(buf, len, "%s/sensor/%s/state", p->prefix, p->power_id));
	default:
		return -EINVAL;
	}
}

int esp_cmd_topic(const struct esp_plug *p, char *buf, size_t len)
{
	return put(len, snprintf(buf, len, "%s/switch/%s/command", p->prefix, p->switch_id));
}

int esp_match(const struct esp_plug *p, const char *topic, enum esp_kind *k)
{
	char t[ESP_PREFIX_MAX + ESP_ID_MAX + 16];

	for (unsigned i = 0; i < ESP_NKINDS; i++)
		if (!esp_sub_topic(p, (enum esp_kind)i, t, sizeof(t)) && !strcmp(t, topic)) {
			*k = (enum esp_kind)i;
			return 0;
		}
	return -ENOENT;
}

static bool is(const void *payload, size_t len, const char *word)
{
	return len == strlen(word) && !memcmp(payload, word, len);
}

int esp_parse(const struct esp_plug *p, enum esp_kind k, const void *payload, size_t len,
	      struct tas_report *r)
{
	struct json_val v = { .type = JSON_NUMBER, .p = payload, .len = len };
	int64_t w;

	(void)p;
	memset(r, 0, sizeof(*r));
	switch (k) {
	case ESP_STATUS:
		if (!is(payload, len, "online") && !is(payload, len, "offline"))
			return -EINVAL;
		r->have = TAS_HAVE_ONLINE;
		r->online = is(payload, len, "online");
		return 0;
	case ESP_SWITCH_STATE:
		if (!is(payload, len, "ON") && !is(payload, len, "OFF"))
			return -EINVAL;
		r->have = TAS_HAVE_ON;
		r->on = is(payload, len, "ON");
		return 0;
	case ESP_POWER:
		/* printf's spelling of NaN: an unavailable sensor, not an error */
		if (is(payload, len, "nan") || is(payload, len, "-nan"))
			return -ENOENT;
		if (json_milli(&v, &w))
			return -EINVAL;
		if (w < 0)
			return -EINVAL;	/* "-0.0" is 0; a plug's draw is never negative */
		r->have = TAS_HAVE_POWER;
		r->power_mw = w;
		return 0;
	default:
		return -EINVAL;
	}
}
