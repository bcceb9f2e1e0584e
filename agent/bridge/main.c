// SPDX-License-Identifier: GPL-2.0
/*
 * gm-mqttd: the MQTT bridge between meterd and the house's smart plugs and
 * Home Assistant (Documentation/mqtt.md; design of issue 15).
 *
 * One sd-event loop holds the broker connection (mqtt_client.c, password
 * from a credential file or TLS with a client certificate), the D-Bus link
 * to meterd (meter_link.c) and the plugs' rules (plug_ctl.c): meterd's
 * Loads say which state each plug should be in and the bridge publishes
 * it; every report of a plug goes to meterd with ReportLoad; a plug that
 * goes silent, drops off the broker, or a broker that goes away makes the
 * plug unreachable for meterd. Home Assistant gets retained discovery with
 * meterd's identity and an availability topic that is online only while
 * both the broker and meterd are there. Logs go to stderr with syslog
 * level prefixes (the journal reads them).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "bridge_config.h"
#include "esphome.h"
#include "ha_discovery.h"
#include "ha_state.h"
#include "meter_link.h"
#include "mqtt_client.h"
#include "plug_ctl.h"
#include "tasmota.h"

#define DEFAULT_CONFIG "/etc/gridmeter/mqtt.conf"
#define QUERY_DELAY_US	2000000

struct bridge;

struct plug_rt {
	struct bridge *b;
	size_t idx;
	struct plug_ctl ctl;
	struct esp_plug esp;		/* type = esphome */
	sd_event_source *query;		/* the POWER query 2 s after LWT Online */
	bool warned;			/* "not an external load of meterd" said once */
};

struct bridge {
	struct bridge_config cfg;
	struct mqttc *mq;
	struct meter_link *ml;
	sd_event *ev;
	sd_event_source *tick;		/* the plugs' silence checks */
	sd_event_source *watchdog;
	sd_event_source *ha_timer;	/* the next <base>/state when one was held back */
	struct ha_state hst;
	int64_t last_state_ms;
	struct ha_entity_store plug_ent[BRIDGE_MAX_PLUGS][HA_PLUG_NENTITIES];
	struct ha_entity_store home_ent[ML_MAX_HOME][HA_HOME_NENTITIES];
	size_t nhome_ent;
	char status_topic[80];
	char state_topic[80];
	char meter_id[64];
	unsigned long dropped;	/* messages on topics we did not configure */
	struct plug_rt plug[BRIDGE_MAX_PLUGS];
};

static void blog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void blog(int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "<%d>%s\n", level, msg);
}

static int64_t now_ms(struct bridge *b)
{
	uint64_t us;

	sd_event_now(b->ev, CLOCK_MONOTONIC, &us);
	return (int64_t)(us / 1000);
}

/* ---- plugs ------------------------------------------------------------------- */

/* meterd's load for this plug when it is one meterd lets the bridge switch. */
static const struct ml_load *external_load(struct plug_rt *p)
{
	const struct ml_load *ld = meter_link_load(p->b->ml, p->b->cfg.plug[p->idx].name);

	if (!meter_link_present(p->b->ml))
		return NULL;
	if (!ld || !ld->external) {
		if (!p->warned)
			blog(3, "plug %s: meterd has no [load.%s] with switch = external: not switched, not reported",
			     p->b->cfg.plug[p->idx].name, p->b->cfg.plug[p->idx].name);
		p->warned = true;
		return NULL;
	}
	p->warned = false;
	return ld;
}

/* Where the plug takes ON/OFF: cmnd/<t>/POWER[x] (Tasmota) or <p>/switch/<id>/command (ESPHome). */
static int cmd_topic(const struct plug_rt *p, char *buf, size_t len)
{
	const struct plug_cfg *pc = &p->b->cfg.plug[p->idx];

	return pc->type == PLUG_ESPHOME ? esp_cmd_topic(&p->esp, buf, len) : tas_power_cmd_topic(&pc->tas, buf, len);
}

static void rearm_tick(struct bridge *b);
static void state_changed(struct bridge *b, bool urgent);

static void act(struct plug_rt *p, unsigned what)
{
	struct bridge *b = p->b;
	const struct plug_cfg *pc = &b->cfg.plug[p->idx];
	char t[ESP_PREFIX_MAX + ESP_ID_MAX + 24];

	if ((what & PLUG_SEND_WANTED) && p->ctl.have_wanted && mqttc_connected(b->mq) &&
	    !cmd_topic(p, t, sizeof(t))) {
		bool on = plug_take_wanted(&p->ctl, now_ms(b));

		/* Commands are never retained (a retained POWER switches the plug at every reconnect). */
		mqttc_publish(b->mq, t, on ? "ON" : "OFF", on ? 2 : 3, false);
		blog(6, "plug %s: %s %s", pc->name, t, on ? "ON" : "OFF");
	}
	/* ESPHome has no status query: its power sensor's updates are the telemetry. */
	if ((what & PLUG_ASK_STATUS) && pc->type == PLUG_TASMOTA && mqttc_connected(b->mq)) {
		snprintf(t, sizeof(t), "cmnd/%s/Status", pc->tas.topic);
		mqttc_publish(b->mq, t, "10", 2, false);
		blog(5, "plug %s: silent for %u s, asking for its status", pc->name, 2 * pc->telemetry_s);
	}
	if ((what & PLUG_REPORT) && external_load(p)) {
		int32_t w = plug_measured_w(&p->ctl);

		meter_link_report(b->ml, pc->name, p->ctl.reachable, p->ctl.on, w, 0);
	}
	rearm_tick(b);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct bridge *b = userdata;
	int64_t now = now_ms(b);

	(void)s;
	(void)usec;
	for (size_t i = 0; i < b->cfg.nplugs; i++) {
		bool was = b->plug[i].ctl.reachable;
		unsigned what = plug_tick(&b->plug[i].ctl, now);

		if (was && !b->plug[i].ctl.reachable) {
			blog(4, "plug %s: nothing for %u s (3 x telemetry): unreachable", b->cfg.plug[i].name,
			     3 * b->cfg.plug[i].telemetry_s);
			state_changed(b, true);
		}
		act(&b->plug[i], what);
	}
	rearm_tick(b);
	return 0;
}

static void rearm_tick(struct bridge *b)
{
	int64_t next = INT64_MAX;

	for (size_t i = 0; i < b->cfg.nplugs; i++) {
		int64_t t = plug_next_tick(&b->plug[i].ctl);

		if (t < next)
			next = t;
	}
	if (next == INT64_MAX) {
		sd_event_source_set_enabled(b->tick, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(b->tick, (uint64_t)next * 1000);
	sd_event_source_set_enabled(b->tick, SD_EVENT_ONESHOT);
}

static int query_later(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct plug_rt *p = userdata;
	char t[TAS_FULL_MAX];

	(void)usec;
	if (!tas_power_cmd_topic(&p->b->cfg.plug[p->idx].tas, t, sizeof(t)))
		mqttc_publish(p->b->mq, t, "", 0, false);
	p->query = sd_event_source_unref(p->query);
	(void)s;
	return 0;
}

/* ---- Home Assistant ------------------------------------------------------------- */

static void set_meter_id(struct bridge *b)
{
	const char *id = meter_link_meter_id(b->ml), *last;

	if (!id[0]) {
		/* No uplink in meterd: the last level of base_topic ("gridmeter/101"). */
		last = strrchr(b->cfg.base_topic, '/');
		id = last ? last + 1 : b->cfg.base_topic;
	}
	snprintf(b->meter_id, sizeof(b->meter_id), "%s", id);
	for (char *p = b->meter_id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			*p = '_';
}

static void announce(struct bridge *b, const struct ha_device *d, const struct ha_entity *e, char *topic,
		     size_t tlen, char *payload, size_t plen)
{
	int n = ha_config_payload(d, e, payload, plen);

	if (n < 0 || ha_config_topic(d, e, topic, tlen)) {
		blog(3, "homeassistant: cannot build %s: %s", e->object, strerror(n < 0 ? -n : ENOSPC));
		return;
	}
	mqttc_publish(b->mq, topic, payload, (size_t)n, true);
}

static void publish_discovery(struct bridge *b)
{
	const char *cur = meter_link_currency(b->ml);
	struct ha_device d = { .prefix = b->cfg.discovery_prefix, .base = b->cfg.base_topic,
			       .meter_id = b->meter_id, .sw_version = "0.1", .currency = cur,
			       .tariff_periods = meter_link_periods(b->ml) };
	char topic[256], payload[2048];

	/* Announced with meterd's identity only: a guess would leave stale entities in HA. */
	if (!b->cfg.ha_enabled || !mqttc_connected(b->mq) || !meter_link_present(b->ml) || !cur[0] ||
	    !d.tariff_periods[0])
		return;
	set_meter_id(b);
	for (size_t i = 0; i < ha_meter_nentities; i++)
		announce(b, &d, &ha_meter_entities[i], topic, sizeof(topic), payload, sizeof(payload));
	for (size_t i = 0; i < b->cfg.nplugs; i++)
		for (size_t k = 0; k < HA_PLUG_NENTITIES; k++)
			if (b->plug_ent[i][k].e.object)
				announce(b, &d, &b->plug_ent[i][k].e, topic, sizeof(topic), payload, sizeof(payload));
	b->nhome_ent = 0;
	if (b->cfg.home_sensors) {
		size_t n;
		const struct ml_home *h = meter_link_home(b->ml, &n);

		for (size_t i = 0; i < n; i++) {
			if (ha_home_entities(h[i].name, h[i].kind, h[i].unit, b->home_ent[b->nhome_ent]) < 0) {
				blog(4, "homeassistant: home sensor %s (%s, %s) cannot be announced", h[i].name,
				     h[i].kind, h[i].unit);
				continue;
			}
			for (size_t k = 0; k < HA_HOME_NENTITIES; k++)
				announce(b, &d, &b->home_ent[b->nhome_ent][k].e, topic, sizeof(topic), payload,
					 sizeof(payload));
			b->nhome_ent++;
		}
	}
}

static void publish_state(struct bridge *b)
{
	struct ha_meter_values v;
	char buf[4096];
	int n;

	if (!b->cfg.ha_enabled || !mqttc_connected(b->mq) || !meter_link_present(b->ml))
		return;
	meter_link_ha_values(b->ml, &v);
	for (size_t i = 0; i < b->cfg.nplugs && b->plug_ent[i][0].e.object; i++) {
		const struct plug_ctl *c = &b->plug[i].ctl;

		v.plug[v.nplugs++] = (struct ha_plug_value){ .object = b->plug_ent[i][0].object,
			.reachable = c->reachable && c->have_on, .on = c->on,
			.power_mw = c->reachable ? c->power_mw : -1 };
	}
	if (b->cfg.home_sensors) {
		size_t nh;
		const struct ml_home *h = meter_link_home(b->ml, &nh);

		for (size_t i = 0; i < nh; i++)
			for (size_t k = 0; k < b->nhome_ent; k++)
				if (!strcmp(b->home_ent[k][0].object + 5, h[i].name))
					v.home[v.nhome++] = (struct ha_home_value){
						.object = b->home_ent[k][0].object,
						.valid = !strcmp(h[i].state, "ok") || !strcmp(h[i].state, "alarm"),
						.value_milli = h[i].value_milli, .alarm = h[i].alarm };
	}
	n = ha_state_format(&b->hst, &v, buf, sizeof(buf));
	if (n < 0) {
		blog(3, "homeassistant: state message not built: %s", strerror(-n));
		return;
	}
	mqttc_publish(b->mq, b->state_topic, buf, (size_t)n, false);
	b->last_state_ms = now_ms(b);
}

static int on_ha_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	publish_state(userdata);
	return 0;
}

/* At most once per interval; `urgent` (relay, alarm, a plug switched): now. */
static void state_changed(struct bridge *b, bool urgent)
{
	int64_t due = b->last_state_ms + (int64_t)b->cfg.ha_interval_s * 1000;

	if (urgent || !b->last_state_ms || now_ms(b) >= due) {
		sd_event_source_set_enabled(b->ha_timer, SD_EVENT_OFF);
		publish_state(b);
		return;
	}
	if (sd_event_source_get_enabled(b->ha_timer, NULL) > 0)
		return;		/* already due */
	sd_event_source_set_time(b->ha_timer, (uint64_t)due * 1000);
	sd_event_source_set_enabled(b->ha_timer, SD_EVENT_ONESHOT);
}

static void publish_availability(struct bridge *b)
{
	bool up = meter_link_present(b->ml);

	if (mqttc_connected(b->mq))
		mqttc_publish(b->mq, b->status_topic, up ? "online" : "offline", up ? 6 : 7, true);
}

/* ---- meterd ------------------------------------------------------------------------ */

static void on_meter_presence(void *ctx, bool present)
{
	struct bridge *b = ctx;

	blog(5, "meterd %s", present ? "is there" : "has left the bus");
	publish_availability(b);
	if (!present)
		return;
	/* A meterd that (re)started knows nothing of the plugs: tell it what we know. */
	for (size_t i = 0; i < b->cfg.nplugs; i++)
		if (b->plug[i].ctl.have_on || b->plug[i].ctl.reachable)
			act(&b->plug[i], PLUG_REPORT);
	sd_notify(0, "STATUS=meterd there");
}

static void on_meter_loads(void *ctx)
{
	struct bridge *b = ctx;

	for (size_t i = 0; i < b->cfg.nplugs; i++) {
		const struct ml_load *ld = external_load(&b->plug[i]);

		if (ld)
			act(&b->plug[i], plug_on_wanted(&b->plug[i].ctl, ld->wanted_on, now_ms(b)));
	}
}

static void on_meter_values(void *ctx, bool urgent, bool identity)
{
	struct bridge *b = ctx;

	if (identity)
		publish_discovery(b);
	state_changed(b, urgent || identity);
}

/* ---- the broker ------------------------------------------------------------------------ */

static void on_connected(void *ctx)
{
	struct bridge *b = ctx;
	char t[ESP_PREFIX_MAX + ESP_ID_MAX + 24];

	for (size_t i = 0; i < b->cfg.nplugs; i++) {
		struct plug_rt *p = &b->plug[i];
		const struct tas_plug *tp = &b->cfg.plug[i].tas;

		if (b->cfg.plug[i].type == PLUG_ESPHOME) {
			/* ESPHome keeps its states retained: subscribing brings them. */
			for (unsigned k = 0; k < ESP_NKINDS; k++)
				if (!esp_sub_topic(&p->esp, (enum esp_kind)k, t, sizeof(t)))
					mqttc_subscribe(b->mq, t);
		} else {
			for (unsigned k = 0; k < TAS_NKINDS; k++)
				if (!tas_sub_topic(tp, (enum tas_kind)k, t, sizeof(t)))
					mqttc_subscribe(b->mq, t);
			/*
			 * Ask every plug for its relay state now (never retained: ghost
			 * switching), and again 2 s later: a plug that connected just
			 * before us may not have subscribed yet (seen in t_bridge.py).
			 */
			if (!tas_power_cmd_topic(tp, t, sizeof(t)))
				mqttc_publish(b->mq, t, "", 0, false);
			if (!p->query)
				sd_event_add_time_relative(b->ev, &p->query, CLOCK_MONOTONIC, QUERY_DELAY_US, 0,
							   query_later, p);
		}
		act(p, plug_on_connected(&p->ctl, now_ms(b)));
	}
	if (b->cfg.ha_enabled) {
		mqttc_subscribe(b->mq, "homeassistant/status");
		publish_discovery(b);
	}
	publish_availability(b);
	state_changed(b, true);
	sd_notify(0, "READY=1\nSTATUS=connected to the broker");
}

static void on_message(void *ctx, const char *topic, const void *payload, size_t len, bool retained)
{
	struct bridge *b = ctx;
	struct tas_report r;
	enum tas_kind k;
	enum esp_kind ek;

	if (b->cfg.ha_enabled && !strcmp(topic, "homeassistant/status")) {
		if (len == 6 && !memcmp(payload, "online", 6))
			publish_discovery(b);	/* HA restarted: announce again */
		return;
	}
	for (size_t i = 0; i < b->cfg.nplugs; i++) {
		struct plug_rt *p = &b->plug[i];
		const struct plug_cfg *pc = &b->cfg.plug[i];
		bool was_on = p->ctl.on, had_on = p->ctl.have_on, was_reachable = p->ctl.reachable;
		int rc;

		if (pc->type == PLUG_ESPHOME) {
			if (esp_match(&p->esp, topic, &ek))
				continue;
			rc = esp_parse(&p->esp, ek, payload, len, &r);
			/*
			 * ESPHome publishes its states and its birth/will retained: a
			 * retained state is the current one (the will replaces "online").
			 */
			retained = false;
		} else {
			if (tas_match(&pc->tas, topic, &k))
				continue;
			rc = tas_parse(&pc->tas, k, payload, len, &r);
		}
		if (rc == -EINVAL) {
			blog(4, "plug %s: %s: not what %s sends (%zu bytes), ignored", pc->name, topic,
			     pc->type == PLUG_ESPHOME ? "ESPHome" : "Tasmota", len);
			return;
		}
		if (rc)
			return;
		if (r.have & TAS_HAVE_ONLINE) {
			blog(5, "plug %s: %s%s", pc->name, r.online ? "online" : "offline",
			     retained ? " (retained)" : "");
			/*
			 * A plug that (re)connects does not answer its own empty POWER
			 * (it publishes it before subscribing): ask it, to learn its relay,
			 * a little later, since our query could otherwise reach the broker
			 * before the plug's SUBSCRIBE (seen in t_bridge.py).
			 */
			if (r.online && !retained && !p->query && pc->type == PLUG_TASMOTA)
				sd_event_add_time_relative(b->ev, &p->query, CLOCK_MONOTONIC, QUERY_DELAY_US, 0,
							   query_later, p);
		}
		act(p, plug_on_report(&p->ctl, &r, retained, now_ms(b)));
		if (p->ctl.have_on && (!had_on || was_on != p->ctl.on))
			blog(6, "plug %s: relay %s", pc->name, p->ctl.on ? "on" : "off");
		if (p->ctl.reachable != was_reachable)
			blog(5, "plug %s: %s", pc->name, p->ctl.reachable ? "reachable" : "unreachable");
		state_changed(b, (p->ctl.have_on && (!had_on || was_on != p->ctl.on)) ||
				 p->ctl.reachable != was_reachable);
		return;
	}
	b->dropped++;
	blog(4, "mqtt: message on unconfigured topic %s dropped (%lu so far)", topic, b->dropped);
}

static void on_lost(void *ctx, const char *why)
{
	struct bridge *b = ctx;

	sd_notifyf(0, "STATUS=broker connection lost: %s", why);
	blog(4, "mqtt: broker connection lost (%s): every plug unreachable", why);
	for (size_t i = 0; i < b->cfg.nplugs; i++)
		act(&b->plug[i], plug_on_lost(&b->plug[i].ctl));
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata)
{
	uint64_t period = *(uint64_t *)userdata;

	sd_notify(0, "WATCHDOG=1");
	sd_event_source_set_time(s, usec + period);
	sd_event_source_set_enabled(s, SD_EVENT_ON);
	return 0;
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
	static struct bridge b;	/* 20 KB: not on the stack */
	char err[512], password[256] = "";
	struct mqttc_cfg mc;
	struct mqttc_ops ops = { .connected = on_connected, .message = on_message, .lost = on_lost };
	struct meter_link_ops mops = { .presence = on_meter_presence, .loads = on_meter_loads,
				       .values = on_meter_values };
	uint64_t wd_usec = 0;
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
	snprintf(b.status_topic, sizeof(b.status_topic), "%s/status", b.cfg.base_topic);
	snprintf(b.state_topic, sizeof(b.state_topic), "%s/state", b.cfg.base_topic);
	for (size_t i = 0; i < b.cfg.nplugs; i++)
		if (ha_plug_entities(b.cfg.plug[i].name, b.plug_ent[i]) < 0)
			memset(b.plug_ent[i], 0, sizeof(b.plug_ent[i]));	/* names are checked: not reached */

	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	r = sd_event_default(&b.ev);
	if (r < 0)
		return 1;
	for (size_t i = 0; i < b.cfg.nplugs; i++) {
		const struct plug_cfg *pc = &b.cfg.plug[i];
		uint32_t tele = pc->telemetry_s;

		b.plug[i].b = &b;
		b.plug[i].idx = i;
		if (pc->type == PLUG_ESPHOME) {
			if (esp_plug_init(&b.plug[i].esp, pc->tas.topic, pc->switch_name, pc->power_sensor)) {
				fprintf(stderr, "%s:%u: [plug.%s]: topic '%s', switch_name '%s', power_sensor '%s': "
					"not an ESPHome topic_prefix and object ids\n", config, pc->line, pc->name,
					pc->tas.topic, pc->switch_name, pc->power_sensor);
				return 1;
			}
			/* Without a power sensor ESPHome says nothing periodically: only its will counts. */
			if (!pc->power_sensor[0])
				tele = 0;
		}
		plug_init(&b.plug[i].ctl, tele, now_ms(&b));
	}
	sd_event_add_signal(b.ev, NULL, SIGTERM, on_signal, &b);
	sd_event_add_signal(b.ev, NULL, SIGINT, on_signal, &b);
	r = sd_event_add_time(b.ev, &b.tick, CLOCK_MONOTONIC, UINT64_MAX, 10000, on_tick, &b);
	if (r >= 0)
		r = sd_event_add_time(b.ev, &b.ha_timer, CLOCK_MONOTONIC, UINT64_MAX, 10000, on_ha_timer, &b);
	if (r < 0)
		return 1;
	if (sd_watchdog_enabled(0, &wd_usec) > 0) {
		wd_usec /= 2;
		sd_event_add_time_relative(b.ev, &b.watchdog, CLOCK_MONOTONIC, wd_usec, 0, on_watchdog, &wd_usec);
	}
	r = meter_link_new(&b.ml, b.ev, &mops, &b);
	if (r < 0) {
		fprintf(stderr, "meterd link: %s\n", strerror(-r));
		return 1;
	}
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
	meter_link_free(b.ml);
	for (size_t i = 0; i < b.cfg.nplugs; i++)
		sd_event_source_unref(b.plug[i].query);
	sd_event_source_unref(b.tick);
	sd_event_source_unref(b.ha_timer);
	sd_event_source_unref(b.watchdog);
	sd_event_unref(b.ev);
	return r < 0 ? 1 : 0;
}
