// SPDX-License-Identifier: GPL-2.0
/*
 * gm-mqttd: the MQTT bridge between meterd and the house's smart plugs and
 * Home Assistant (Documentation/mqtt.md; design of issue 15).
 *
 * This first version connects to the broker (password from a credential
 * file, or TLS with a client certificate), announces the meter to Home
 * Assistant (retained discovery, availability with a will), subscribes to
 * exactly the configured plugs' topics and logs what each plug reports.
 * Not yet: the D-Bus link to meterd (ReportLoad, Loads) that makes plugs
 * loads meterd sheds, the state message, ESPHome plugs.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "bridge_config.h"
#include "ha_discovery.h"
#include "mqtt_client.h"
#include "tasmota.h"

#define DEFAULT_CONFIG "/etc/gridmeter/mqtt.conf"
#define QUERY_DELAY_US	2000000

struct bridge;

struct plug_query {
	struct bridge *b;
	size_t plug;
};

struct bridge {
	struct bridge_config cfg;
	struct mqttc *mq;
	sd_event *ev;
	char status_topic[80];
	char meter_id[64];
	unsigned long dropped;	/* messages on topics we did not configure */
	struct plug_query query[BRIDGE_MAX_PLUGS];
};

static int query_later(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct plug_query *q = userdata;
	char t[TAS_FULL_MAX];

	(void)s;
	(void)usec;
	if (!tas_power_cmd_topic(&q->b->cfg.plug[q->plug].tas, t, sizeof(t)))
		mqttc_publish(q->b->mq, t, "", 0, false);
	return 0;
}

static void publish_discovery(struct bridge *b)
{
	static const char *const no_periods[] = { "standard", NULL };	/* until meterd tells */
	struct ha_device d = { .prefix = b->cfg.discovery_prefix, .base = b->cfg.base_topic,
			       .meter_id = b->meter_id, .sw_version = "0.1", .currency = "EUR",
			       .tariff_periods = no_periods };
	char topic[256], payload[2048];

	for (size_t i = 0; i < ha_meter_nentities; i++) {
		int n = ha_config_payload(&d, &ha_meter_entities[i], payload, sizeof(payload));

		if (n < 0 || ha_config_topic(&d, &ha_meter_entities[i], topic, sizeof(topic))) {
			sd_journal_print(LOG_ERR, "homeassistant: cannot build %s: %s",
					 ha_meter_entities[i].object, strerror(n < 0 ? -n : ENOSPC));
			continue;
		}
		mqttc_publish(b->mq, topic, payload, (size_t)n, true);
	}
}

static void on_connected(void *ctx)
{
	struct bridge *b = ctx;
	char t[TAS_FULL_MAX];

	for (size_t i = 0; i < b->cfg.nplugs; i++) {
		const struct tas_plug *p = &b->cfg.plug[i].tas;

		for (unsigned k = 0; k < TAS_NKINDS; k++)
			if (!tas_sub_topic(p, (enum tas_kind)k, t, sizeof(t)))
				mqttc_subscribe(b->mq, t);
		/* Ask every plug for its relay state now (never retained: ghost switching). */
		if (!tas_power_cmd_topic(p, t, sizeof(t)))
			mqttc_publish(b->mq, t, "", 0, false);
	}
	if (b->cfg.ha_enabled) {
		mqttc_subscribe(b->mq, "homeassistant/status");
		publish_discovery(b);
	}
	mqttc_publish(b->mq, b->status_topic, "online", 6, true);
	sd_notify(0, "READY=1\nSTATUS=connected to the broker");
}

static void on_message(void *ctx, const char *topic, const void *payload, size_t len, bool retained)
{
	struct bridge *b = ctx;
	struct tas_report r;
	enum tas_kind k;

	if (b->cfg.ha_enabled && !strcmp(topic, "homeassistant/status")) {
		if (len == 6 && !memcmp(payload, "online", 6))
			publish_discovery(b);	/* HA restarted: announce again */
		return;
	}
	for (size_t i = 0; i < b->cfg.nplugs; i++) {
		const struct plug_cfg *p = &b->cfg.plug[i];
		int rc;

		if (tas_match(&p->tas, topic, &k))
			continue;
		rc = tas_parse(&p->tas, k, payload, len, &r);
		if (rc == -EINVAL) {
			sd_journal_print(LOG_WARNING, "plug %s: %s: not what Tasmota sends (%zu bytes), ignored",
					 p->name, topic, len);
			return;
		}
		if (rc)
			return;
		if (r.have & TAS_HAVE_ONLINE) {
			sd_journal_print(LOG_NOTICE, "plug %s: %s%s", p->name, r.online ? "online" : "offline",
					 retained ? " (retained)" : "");
			/*
			 * A plug that (re)connects does not answer its own empty POWER
			 * (it publishes it before subscribing): ask it, to learn its relay,
			 * a little later, since our query could otherwise reach the broker
			 * before the plug's SUBSCRIBE (seen in t_bridge.py).
			 */
			if (r.online && !retained)
				sd_event_add_time_relative(b->ev, NULL, CLOCK_MONOTONIC, QUERY_DELAY_US, 0,
							   query_later, &b->query[i]);
		}
		if (r.have & TAS_HAVE_ON)
			sd_journal_print(LOG_INFO, "plug %s: relay %s", p->name, r.on ? "on" : "off");
		if (r.have & TAS_HAVE_POWER)
			sd_journal_print(LOG_INFO, "plug %s: %lld.%03lld W, total %lld Wh", p->name,
					 (long long)(r.power_mw / 1000), (long long)(r.power_mw % 1000),
					 (long long)r.total_wh);
		return;
	}
	b->dropped++;
	sd_journal_print(LOG_WARNING, "mqtt: message on unconfigured topic %s dropped", topic);
}

static void on_lost(void *ctx, const char *why)
{
	(void)ctx;
	sd_notifyf(0, "STATUS=broker connection lost: %s", why);
}

/* The broker password from a credential file: one line, at most 255 bytes, not world-readable. */
static int read_secret(const char *path, char *buf, size_t len)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (st.st_mode & 0007)) {
		close(fd);
		return -EPERM;
	}
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	return buf[0] ? 0 : -ENODATA;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct bridge *b = userdata;

	(void)si;
	sd_notify(0, "STOPPING=1");
	mqttc_publish(b->mq, b->status_topic, "offline", 7, true);
	mqttc_disconnect(b->mq);
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

int main(int argc, char **argv)
{
	const char *config = DEFAULT_CONFIG;
	struct bridge b = { 0 };
	char err[512], password[256] = "";
	const char *last;
	struct mqttc_cfg mc;
	struct mqttc_ops ops = { .connected = on_connected, .message = on_message, .lost = on_lost };
	sigset_t ss;
	int opt, r;

	while ((opt = getopt(argc, argv, "c:")) != -1) {
		if (opt != 'c') {
			fprintf(stderr, "usage: %s [-c %s]\n", argv[0], DEFAULT_CONFIG);
			return 2;
		}
		config = optarg;
	}
	if (bridge_config_load(&b.cfg, config, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (b.cfg.password_file[0]) {
		r = read_secret(b.cfg.password_file, password, sizeof(password));
		if (r) {
			fprintf(stderr, "%s: %s\n", b.cfg.password_file,
				r == -EPERM ? "not a regular file, or readable by others" : strerror(-r));
			return 1;
		}
	}
	/* The meter's id for HA's unique ids: the last level of base_topic ("gridmeter/101"). */
	last = strrchr(b.cfg.base_topic, '/');
	snprintf(b.meter_id, sizeof(b.meter_id), "%s", last ? last + 1 : b.cfg.base_topic);
	for (char *p = b.meter_id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			*p = '_';
	snprintf(b.status_topic, sizeof(b.status_topic), "%s/status", b.cfg.base_topic);
	for (size_t i = 0; i < BRIDGE_MAX_PLUGS; i++)
		b.query[i] = (struct plug_query){ .b = &b, .plug = i };

	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	r = sd_event_default(&b.ev);
	if (r < 0)
		return 1;
	sd_event_add_signal(b.ev, NULL, SIGTERM, on_signal, &b);
	sd_event_add_signal(b.ev, NULL, SIGINT, on_signal, &b);
	mc = (struct mqttc_cfg){
		.host = b.cfg.host, .port = (int)b.cfg.port, .client_id = b.cfg.client_id,
		.username = b.cfg.username[0] ? b.cfg.username : NULL,
		.password = password[0] ? password : NULL,
		.ca_file = b.cfg.ca_file[0] ? b.cfg.ca_file : NULL,
		.cert_file = b.cfg.cert_file[0] ? b.cfg.cert_file : NULL,
		.key_file = b.cfg.key_file[0] ? b.cfg.key_file : NULL,
		.keepalive_s = (int)b.cfg.keepalive_s,
		.will_topic = b.status_topic, .will_payload = "offline",
	};
	r = mqttc_new(&b.mq, b.ev, &mc, &ops, &b);
	explicit_bzero(password, sizeof(password));
	if (r < 0) {
		fprintf(stderr, "mqtt: %s\n", strerror(-r));
		return 1;
	}
	r = sd_event_loop(b.ev);
	mqttc_free(b.mq);
	sd_event_unref(b.ev);
	return r < 0 ? 1 : 0;
}
