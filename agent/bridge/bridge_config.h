/* SPDX-License-Identifier: GPL-2.0 */
/*
 * /etc/gridmeter/mqtt.conf, the bridge's configuration (Documentation/mqtt.md):
 * [broker], [homeassistant] and one [plug.NAME] per smart plug, NAME being
 * meterd's [load.NAME] with switch = external. Read through lib/conf/ini, so
 * errors read FILE:LINE: [section] key 'k': why. The broker password is never
 * in this file, only the path of a file holding it (a systemd credential).
 */
#ifndef GM_BRIDGE_CONFIG_H
#define GM_BRIDGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tasmota.h"

#define BRIDGE_MAX_PLUGS	8	/* = meterd's ALLOC_MAX_LOADS */
#define BRIDGE_NAME_LEN		32
#define BRIDGE_PATH_LEN		256

enum plug_type { PLUG_TASMOTA, PLUG_ESPHOME };

struct plug_cfg {
	char name[BRIDGE_NAME_LEN];	/* meterd load name: 1-31 of a-z 0-9 _ */
	enum plug_type type;
	struct tas_plug tas;		/* topic, relay, words (ESPHome: topic = topic_prefix) */
	uint32_t telemetry_s;		/* the plug's TelePeriod: stale after 3x without news */
	char switch_name[BRIDGE_NAME_LEN];	/* ESPHome only */
	char power_sensor[BRIDGE_NAME_LEN];	/* ESPHome only */
	unsigned line;			/* of the section, for messages */
};

struct bridge_config {
	/* [broker] */
	char host[128];
	uint32_t port;
	char client_id[64];
	char username[64];
	char password_file[BRIDGE_PATH_LEN];
	char ca_file[BRIDGE_PATH_LEN];
	char cert_file[BRIDGE_PATH_LEN];
	char key_file[BRIDGE_PATH_LEN];
	uint32_t keepalive_s;
	/* [homeassistant] */
	bool ha_enabled;
	char discovery_prefix[64];
	char base_topic[64];
	bool home_sensors;
	uint32_t ha_interval_s;		/* <base>/state at most this often (relay/alarm changes at once) */
	/* [plug.*] */
	size_t nplugs;
	struct plug_cfg plug[BRIDGE_MAX_PLUGS];
};

void bridge_config_defaults(struct bridge_config *c);
/* 0, or -errno with "FILE:LINE: ..." in err. */
int bridge_config_load(struct bridge_config *c, const char *path, char *err, size_t errlen);
int bridge_config_parse(struct bridge_config *c, const char *name, const char *text, char *err,
			size_t errlen);

#endif
