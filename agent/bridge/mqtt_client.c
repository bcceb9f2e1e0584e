// SPDX-License-Identifier: GPL-2.0
#include "mqtt_client.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <mosquitto.h>
#include <systemd/sd-journal.h>

struct mqttc {
	struct mosquitto *m;
	sd_event *ev;
	sd_event_source *io, *tick;
	struct mqttc_ops ops;
	void *ctx;
	bool up;		/* CONNACK 0 received and not lost since */
	bool socket_open;	/* TCP (and TLS) connected, maybe waiting for CONNACK */
	bool first;		/* never connected yet: connect, not reconnect */
	uint32_t backoff_s;
	uint64_t retry_at_us;
	struct mqttc_cfg cfg;
};

static int to_errno(int rc)
{
	switch (rc) {
	case MOSQ_ERR_SUCCESS: return 0;
	case MOSQ_ERR_NOMEM: return -ENOMEM;
	case MOSQ_ERR_NO_CONN: case MOSQ_ERR_CONN_LOST: return -ENOTCONN;
	case MOSQ_ERR_PAYLOAD_SIZE: case MOSQ_ERR_OVERSIZE_PACKET: return -EMSGSIZE;
	case MOSQ_ERR_ERRNO: return errno ? -errno : -EIO;
	default: return -EINVAL;
	}
}

static void update_io(struct mqttc *c)
{
	if (c->io)
		sd_event_source_set_io_events(c->io, EPOLLIN | (mosquitto_want_write(c->m) ? EPOLLOUT : 0));
}

static void drop(struct mqttc *c, const char *why)
{
	bool was_up = c->up;

	c->io = sd_event_source_disable_unref(c->io);
	c->up = c->socket_open = false;
	if (!c->backoff_s)
		c->backoff_s = 1;
	else if (c->backoff_s < 60)
		c->backoff_s = c->backoff_s * 2 > 60 ? 60 : c->backoff_s * 2;
	sd_event_now(c->ev, CLOCK_MONOTONIC, &c->retry_at_us);
	c->retry_at_us += (uint64_t)c->backoff_s * 1000000;
	sd_journal_print(LOG_WARNING, "mqtt: %s: %s, retrying in %u s", c->cfg.host, why, c->backoff_s);
	if (was_up && c->ops.lost)
		c->ops.lost(c->ctx, why);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct mqttc *c = userdata;
	int rc = MOSQ_ERR_SUCCESS;

	(void)s;
	(void)fd;
	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
		rc = mosquitto_loop_read(c->m, 1);
	if (rc == MOSQ_ERR_SUCCESS && (revents & EPOLLOUT))
		rc = mosquitto_loop_write(c->m, 1);
	if (rc != MOSQ_ERR_SUCCESS) {
		drop(c, mosquitto_strerror(rc));
		return 0;
	}
	update_io(c);
	return 0;
}

static int try_connect(struct mqttc *c)
{
	int rc, fd, r;

	rc = c->first ? mosquitto_connect(c->m, c->cfg.host, c->cfg.port, c->cfg.keepalive_s) :
			mosquitto_reconnect(c->m);
	if (rc != MOSQ_ERR_SUCCESS) {
		drop(c, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		return 0;
	}
	c->first = false;
	fd = mosquitto_socket(c->m);
	r = sd_event_add_io(c->ev, &c->io, fd, EPOLLIN | EPOLLOUT, on_io, c);
	if (r < 0)
		return r;
	c->socket_open = true;
	update_io(c);
	return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct mqttc *c = userdata;

	if (c->socket_open) {
		int rc = mosquitto_loop_misc(c->m);

		if (rc != MOSQ_ERR_SUCCESS)
			drop(c, mosquitto_strerror(rc));
		else
			update_io(c);
	} else if (usec >= c->retry_at_us) {
		try_connect(c);
	}
	sd_event_source_set_time(s, usec + 1000000);
	return 0;
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
	struct mqttc *c = obj;

	(void)m;
	if (rc) {
		/* Refused (bad credentials, not authorised): the broker closes; retry slowly. */
		sd_journal_print(LOG_ERR, "mqtt: %s refused the connection: %s", c->cfg.host,
				 mosquitto_connack_string(rc));
		return;
	}
	sd_journal_print(LOG_INFO, "mqtt: connected to %s:%d", c->cfg.host, c->cfg.port);
	c->up = true;
	c->backoff_s = 0;
	if (c->ops.connected)
		c->ops.connected(c->ctx);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	struct mqttc *c = obj;

	(void)m;
	if (c->ops.message && msg->topic && msg->payloadlen >= 0)
		c->ops.message(c->ctx, msg->topic, msg->payload, (size_t)msg->payloadlen, msg->retain);
}

int mqttc_new(struct mqttc **out, sd_event *ev, const struct mqttc_cfg *cfg,
	      const struct mqttc_ops *ops, void *ctx)
{
	struct mqttc *c = calloc(1, sizeof(*c));
	int rc, r;

	if (!c)
		return -ENOMEM;
	mosquitto_lib_init();
	c->ev = sd_event_ref(ev);
	c->ops = *ops;
	c->ctx = ctx;
	c->cfg = *cfg;
	c->first = true;
	c->m = mosquitto_new(cfg->client_id, true, c);
	if (!c->m) {
		r = -errno;
		goto fail;
	}
	mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	mosquitto_connect_callback_set(c->m, on_connect);
	mosquitto_message_callback_set(c->m, on_message);
	rc = MOSQ_ERR_SUCCESS;
	if (cfg->username)
		rc = mosquitto_username_pw_set(c->m, cfg->username, cfg->password);
	if (rc == MOSQ_ERR_SUCCESS && cfg->will_topic)
		rc = mosquitto_will_set(c->m, cfg->will_topic, (int)strlen(cfg->will_payload),
					cfg->will_payload, 1, true);
	if (rc == MOSQ_ERR_SUCCESS && cfg->ca_file)
		rc = mosquitto_tls_set(c->m, cfg->ca_file, NULL, cfg->cert_file, cfg->key_file, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		r = to_errno(rc);
		goto fail;
	}
	r = sd_event_add_time_relative(ev, &c->tick, CLOCK_MONOTONIC, 0, 100000, on_tick, c);
	if (r < 0)
		goto fail;
	r = sd_event_source_set_enabled(c->tick, SD_EVENT_ON);
	if (r < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	mqttc_free(c);
	return r;
}

void mqttc_free(struct mqttc *c)
{
	if (!c)
		return;
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->tick);
	if (c->m)
		mosquitto_destroy(c->m);
	sd_event_unref(c->ev);
	mosquitto_lib_cleanup();
	free(c);
}

bool mqttc_connected(const struct mqttc *c)
{
	return c->up;
}

int mqttc_subscribe(struct mqttc *c, const char *topic)
{
	int rc;

	if (!c->up)
		return -ENOTCONN;
	rc = mosquitto_subscribe(c->m, NULL, topic, 1);
	update_io(c);
	return to_errno(rc);
}

int mqttc_publish(struct mqttc *c, const char *topic, const void *payload, size_t len, bool retain)
{
	int rc;

	if (!c->up)
		return -ENOTCONN;
	if (len > INT32_MAX)
		return -EMSGSIZE;
	rc = mosquitto_publish(c->m, NULL, topic, (int)len, payload, 1, retain);
	update_io(c);
	return to_errno(rc);
}

void mqttc_disconnect(struct mqttc *c)
{
	if (!c->socket_open)
		return;
	/* Flush what is queued, then DISCONNECT: the broker then drops our will. */
	for (int i = 0; i < 20 && mosquitto_want_write(c->m); i++)
		if (mosquitto_loop_write(c->m, 1) != MOSQ_ERR_SUCCESS)
			break;
	mosquitto_disconnect(c->m);
	mosquitto_loop_write(c->m, 1);
	c->io = sd_event_source_disable_unref(c->io);
	c->up = c->socket_open = false;
}
