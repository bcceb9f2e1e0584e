/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ESPHome's MQTT conventions for one switch with an optional power sensor
 * (topic_prefix = <p>, the default being the node name): availability on
 * <p>/status ("online"/"offline", ESPHome's birth and will), the switch's
 * state on <p>/switch/<switch_name>/state and its command topic
 * <p>/switch/<switch_name>/command ("ON"/"OFF"), a power sensor's plain
 * number on <p>/sensor/<power_sensor>/state (W). Object ids are the
 * sanitised entity names (issue15-research.md, ESPHome). Pure functions, no
 * I/O; reports in tasmota.h's struct tas_report so the bridge treats both
 * kinds alike.
 */
#ifndef GM_ESPHOME_H
#define GM_ESPHOME_H

#include <stdbool.h>
#include <stddef.h>

#include "tasmota.h"

#define ESP_PREFIX_MAX	64
#define ESP_ID_MAX	48

struct esp_plug {
	char prefix[ESP_PREFIX_MAX];		/* topic_prefix */
	char switch_id[ESP_ID_MAX];		/* object id of the switch */
	char power_id[ESP_ID_MAX];		/* object id of the power sensor; "" none */
};

enum esp_kind { ESP_STATUS, ESP_SWITCH_STATE, ESP_POWER, ESP_NKINDS };

/* Check and fill: 0 or -EINVAL (characters ESPHome would not put in a topic). */
int esp_plug_init(struct esp_plug *p, const char *prefix, const char *switch_id,
		  const char *power_id);
/* The topic to subscribe to for kind k: 0, -ENOENT (no power sensor) or -ENOSPC. */
int esp_sub_topic(const struct esp_plug *p, enum esp_kind k, char *buf, size_t len);
/* <p>/switch/<id>/command: 0 or -ENOSPC. Published with retain = false. */
int esp_cmd_topic(const struct esp_plug *p, char *buf, size_t len);
/* Which of this plug's topics `topic` is: 0 and *k, or -ENOENT. Exact match only. */
int esp_match(const struct esp_plug *p, const char *topic, enum esp_kind *k);
/*
 * Read a payload of kind k into r (TAS_HAVE_ONLINE / _ON / _POWER):
 * 0, or -EINVAL for bytes ESPHome does not send (the number "nan" that an
 * unavailable sensor publishes gives -ENOENT: nothing known).
 */
int esp_parse(const struct esp_plug *p, enum esp_kind k, const void *payload, size_t len,
	      struct tas_report *r);

#endif
