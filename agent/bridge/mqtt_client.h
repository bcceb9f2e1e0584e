/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libmosquitto driven by sd-event, single-threaded: the socket in the event
 * loop (mosquitto_loop_read/write), mosquitto_loop_misc once a second for
 * PINGs, and our own reconnect with a 1 s..60 s doubling backoff (the
 * library's reconnect only works inside its own loops). The will is set
 * before every connect; subscriptions are made again in `connected`.
 * The first connect resolves and connects synchronously (mosquitto_connect).
 */
#ifndef GM_MQTT_CLIENT_H
#define GM_MQTT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <systemd/sd-event.h>

struct mqttc;

struct mqttc_cfg {
	const char *host;
	int port;
	const char *client_id;
	const char *username;	/* NULL: none */
	const char *password;	/* NULL: none */
	const char *ca_file;	/* NULL: no TLS */
	const char *cert_file;	/* NULL: no client certificate */
	const char *key_file;
	int keepalive_s;
	const char *will_topic;	/* NULL: no will */
	const char *will_payload;	/* retained, QoS 1 */
};

struct mqttc_ops {
	void (*connected)(void *ctx);
	void (*message)(void *ctx, const char *topic, const void *payload, size_t len, bool retained);
	void (*lost)(void *ctx, const char *why);
};

int mqttc_new(struct mqttc **out, sd_event *ev, const struct mqttc_cfg *cfg,
	      const struct mqttc_ops *ops, void *ctx);
void mqttc_free(struct mqttc *c);
bool mqttc_connected(const struct mqttc *c);
/* QoS 1. 0 or a negative errno (-ENOTCONN while disconnected). */
int mqttc_subscribe(struct mqttc *c, const char *topic);
int mqttc_publish(struct mqttc *c, const char *topic, const void *payload, size_t len, bool retain);
/* Publish then disconnect cleanly (our will is not sent): for shutdown. */
void mqttc_disconnect(struct mqttc *c);

#endif
