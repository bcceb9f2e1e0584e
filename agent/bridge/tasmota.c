// SPDX-License-Identifier: GPL-2.0
#include "tasmota.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json_scan.h"

static const char *const kind_prefix[TAS_NKINDS] = {
	[TAS_SENSOR] = "tele", [TAS_STATE] = "tele", [TAS_LWT] = "tele",
	[TAS_RESULT] = "stat", [TAS_POWER] = "stat", [TAS_STATUS10] = "stat",
};

static const char *const kind_suffix[TAS_NKINDS] = {
	[TAS_SENSOR] = "SENSOR", [TAS_STATE] = "STATE", [TAS_LWT] = "LWT",
	[TAS_RESULT] = "RESULT", [TAS_POWER] = "POWER", [TAS_STATUS10] = "STATUS10",
};

static int word_ok(const char *w)
{
	size_t n = strlen(w);

	if (!n || n >= TAS_WORD_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)w[i] <= ' ' || w[i] == '"' || w[i] == '\\' ||
		    (unsigned char)w[i] >= 0x7f)
			return 0;
	return 1;
}

int tas_plug_init(struct tas_plug *p, const char *topic, unsigned relay, const char *on_word,
		  const char *off_word)
{
	size_t n = strlen(topic);

	memset(p, 0, sizeof(*p));
	if (!n || n >= TAS_TOPIC_MAX || relay > 8)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char ch = topic[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return -EINVAL;
	}
	on_word = on_word ? on_word : "ON";
	off_word = off_word ? off_word : "OFF";
	if (!word_ok(on_word) || !word_ok(off_word) || !strcmp(on_word, off_word))
		return -EINVAL;
	memcpy(p->topic, topic, n + 1);
	p->relay = relay;
	strcpy(p->on_word, on_word);
	strcpy(p->off_word, off_word);
	return 0;
}

/* "POWER" or "POWER<x>" */
static void power_key(const struct tas_plug *p, char key[8])
{
	strcpy(key, "POWER");
	if (p->relay)	/* 1-8, checked by tas_plug_init */
		key[5] = (char)('0' + p->relay % 10), key[6] = 0;
}

static int put(size_t len, int n)
{
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int tas_sub_topic(const struct tas_plug *p, enum tas_kind k, char *buf, size_t len)
{
	char key[8];

	if ((unsigned)k >= TAS_NKINDS)
		return -EINVAL;
	if (k == TAS_POWER) {
		power_key(p, key);
		return put(len, snprintf(buf, len, "stat/%s/%s", p->topic, key));
	}
	return put(len, snprintf(buf, len, "%s/%s/%s", kind_prefix[k], p->topic, kind_suffix[k]));
}

int tas_power_cmd_topic(const struct tas_plug *p, char *buf, size_t len)
{
	char key[8];

	power_key(p, key);
	return put(len, snprintf(buf, len, "cmnd/%s/%s", p->topic, key));
}

int tas_match(const struct tas_plug *p, const char *topic, enum tas_kind *k)
{
	char t[TAS_FULL_MAX];

	for (unsigned i = 0; i < TAS_NKINDS; i++) {
		if (tas_sub_topic(p, (enum tas_kind)i, t, sizeof(t)))
			continue;
		if (!strcmp(t, topic)) {
			*k = (enum tas_kind)i;
			return 0;
		}
	}
	return -ENOENT;
}

/* A state word, bare (stat POWER) or as a JSON string value. */
static int state_word(const struct tas_plug *p, const char *s, size_t n, bool *on)
{
	if (n == strlen(p->on_word) && !memcmp(s, p->on_word, n))
		*on = true;
	else if (n == strlen(p->off_word) && !memcmp(s, p->off_word, n))
		*on = false;
	else
		return -EINVAL;
	return 0;
}

static int json_state(const struct tas_plug *p, const void *payload, size_t len,
		      struct tas_report *r)
{
	struct json_val v;
	char key[8];
	int rc;

	power_key(p, key);
	rc = json_find(payload, len, key, &v);
	if (rc)
		return rc;
	if (v.type != JSON_STRING || memchr(v.p, '\\', v.len) ||
	    state_word(p, v.p, v.len, &r->on))
		return -EINVAL;
	r->have |= TAS_HAVE_ON;
	return 0;
}

static int energy(const void *payload, size_t len, const char *obj, struct tas_report *r)
{
	char path[48];
	struct json_val v;
	int64_t milli;
	int rc;

	snprintf(path, sizeof(path), "%s.Power", obj);
	rc = json_find(payload, len, path, &v);
	if (rc)
		return rc;	/* no ENERGY.Power: a plug without metering, or not JSON */
	if (json_milli(&v, &milli) || milli < 0)
		return -EINVAL;
	r->power_mw = milli;
	r->have |= TAS_HAVE_POWER;

	snprintf(path, sizeof(path), "%s.Total", obj);
	rc = json_find(payload, len, path, &v);
	if (!rc) {
		if (json_milli(&v, &milli) || milli < 0)
			return -EINVAL;
		r->total_wh = milli;	/* kWh in thousandths = Wh */
		r->have |= TAS_HAVE_TOTAL;
	}
	snprintf(path, sizeof(path), "%s.TotalStartTime", obj);
	if (!json_find(payload, len, path, &v) && v.type == JSON_STRING &&
	    v.len < sizeof(r->total_start) && !memchr(v.p, '\\', v.len)) {
		memcpy(r->total_start, v.p, v.len);
		r->total_start[v.len] = 0;
		r->have |= TAS_HAVE_START;
	}
	return 0;
}

int tas_parse(const struct tas_plug *p, enum tas_kind k, const void *payload, size_t len,
	      struct tas_report *r)
{
	bool on;

	memset(r, 0, sizeof(*r));
	if (len && !payload)
		return -EINVAL;
	switch (k) {
	case TAS_LWT:
		if (len == 6 && !memcmp(payload, "Online", 6))
			r->online = true;
		else if (len == 7 && !memcmp(payload, "Offline", 7))
			r->online = false;
		else
			return -EINVAL;
		r->have = TAS_HAVE_ONLINE;
		return 0;
	case TAS_POWER:
		if (state_word(p, payload, len, &on))
			return -EINVAL;
		r->on = on;
		r->have = TAS_HAVE_ON;
		return 0;
	case TAS_STATE:
	case TAS_RESULT:
		return json_state(p, payload, len, r);
	case TAS_SENSOR:
		return energy(payload, len, "ENERGY", r);
	case TAS_STATUS10:
		return energy(payload, len, "StatusSNS.ENERGY", r);
	case TAS_NKINDS:
		break;
	}
	return -EINVAL;
}
