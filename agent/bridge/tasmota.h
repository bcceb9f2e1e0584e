/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tasmota's MQTT conventions for one plug (default FullTopic
 * "%prefix%/%topic%/", prefixes cmnd/stat/tele): which topics the bridge
 * subscribes to, which one a message arrived on, and what a payload says.
 * Pure functions, no I/O. Sources: Tasmota docs MQTT.md and Commands.md and
 * the firmware's EnergyShow() (see Documentation/mqtt.md).
 */
#ifndef GM_TASMOTA_H
#define GM_TASMOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TAS_TOPIC_MAX	64	/* %topic%, NUL included */
#define TAS_WORD_MAX	16	/* StateText words, NUL included */
#define TAS_FULL_MAX	(TAS_TOPIC_MAX + 16)

struct tas_plug {
	char topic[TAS_TOPIC_MAX];	/* %topic%: 1-63 of A-Z a-z 0-9 _ - */
	unsigned relay;			/* 0: "POWER"; 1-8: "POWER<x>" (multi-relay or SetOption26) */
	char on_word[TAS_WORD_MAX];	/* StateText2, "ON" by default */
	char off_word[TAS_WORD_MAX];	/* StateText1, "OFF" by default */
};

enum tas_kind {
	TAS_SENSOR,	/* tele/<t>/SENSOR   {"Time":..,"ENERGY":{..}} */
	TAS_STATE,	/* tele/<t>/STATE    {..,"POWER":"ON",..} */
	TAS_LWT,	/* tele/<t>/LWT      Online | Offline */
	TAS_RESULT,	/* stat/<t>/RESULT   {"POWER":"OFF"} (and other command replies) */
	TAS_POWER,	/* stat/<t>/POWER[x] ON | OFF */
	TAS_STATUS10,	/* stat/<t>/STATUS10 {"StatusSNS":{..,"ENERGY":{..}}} */
	TAS_NKINDS
};

/* What one message told; `have` says which fields are set. */
enum {
	TAS_HAVE_ONLINE = 1u << 0,
	TAS_HAVE_ON = 1u << 1,
	TAS_HAVE_POWER = 1u << 2,
	TAS_HAVE_TOTAL = 1u << 3,
	TAS_HAVE_START = 1u << 4,
};

struct tas_report {
	unsigned have;
	bool online;
	bool on;
	int64_t power_mw;	/* ENERGY.Power, W as milliwatts */
	int64_t total_wh;	/* ENERGY.Total, kWh as Wh (exact to the 3 decimals sent) */
	char total_start[24];	/* ENERGY.TotalStartTime: a change means the counter was reset */
};

/* Fill defaults and check a configured plug: 0 or -EINVAL. */
int tas_plug_init(struct tas_plug *p, const char *topic, unsigned relay, const char *on_word,
		  const char *off_word);
/* The topic to subscribe to for kind k: 0, or -ENOSPC. */
int tas_sub_topic(const struct tas_plug *p, enum tas_kind k, char *buf, size_t len);
/* cmnd/<t>/POWER[x]: 0, or -ENOSPC. Publish with retain = false (ghost switching). */
int tas_power_cmd_topic(const struct tas_plug *p, char *buf, size_t len);
/* Which of this plug's topics `topic` is: 0 and *k, or -ENOENT. Exact match only. */
int tas_match(const struct tas_plug *p, const char *topic, enum tas_kind *k);
/*
 * Read a payload of kind k. 0 when something useful was found (r->have),
 * -ENOENT when the message is valid but says nothing the bridge uses (e.g. a
 * RESULT for another command), -EINVAL for bytes that are not what Tasmota
 * sends (bad JSON, unknown state words, negative power...).
 */
int tas_parse(const struct tas_plug *p, enum tas_kind k, const void *payload, size_t len,
	      struct tas_report *r);

#endif
