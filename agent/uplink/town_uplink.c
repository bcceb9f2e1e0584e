// SPDX-License-Identifier: GPL-2.0
/* meterd's uplink to its town server (town_uplink.h). */
#include "town_uplink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "gmlink.h"
#include "meter.h"
#include "serial_line.h"

#ifndef N_TTY
#define N_TTY		0
#endif
#define RETRY_MS	1000	/* no route (ENOLINK) or a dead modem line: try again */
#define REQ_DURATION_S	900	/* an allocation request stands for this long */

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void changed(struct town_uplink *u)
{
	if (u->hooks.changed)
		u->hooks.changed(u->hooks.ctx);
}

const char *town_uplink_route_name(enum tu_route r)
{
	switch (r) {
	case TU_ROUTE_MODEM:
		return "modem";
	case TU_ROUTE_NEIGHBOUR:
		return "neighbour";
	default:
		return "none";
	}
}

const char *town_uplink_registration(const struct town_uplink *u)
{
	static const char *const creg[] = {
		"not-registered", "home", "searching", "denied", "unknown", "roaming",
	};

	if (!u->have_modem)
		return "no-modem";
	return u->modem.creg >= 0 && u->modem.creg <= 5 ? creg[u->modem.creg] : "unknown";
}

/* ---- the modem (modem_sim900.c) -------------------------------------------- */

static long modem_write(void *ctx, const void *buf, size_t len)
{
	struct town_uplink *u = ctx;

	return write(u->modem_fd, buf, len);
}

static void modem_pwrkey(void *ctx, bool asserted)
{
	struct town_uplink *u = ctx;
	int r;

	if (!u->pwrkey) {
		if (asserted)
			meter_log(u->m, LOG_WARNING, "modem: a PWRKEY pulse is due, but [modem] has "
				  "no pwrkey_line: power-cycle the modem by hand if it stays silent");
		return;
	}
	r = pwrkey_set(u->pwrkey, asserted);
	if (r)
		meter_log(u->m, LOG_ERR, "modem: PWRKEY line: %s", strerror(-r));
}

static void modem_changed(void *ctx)
{
	changed(ctx);
}

static void modem_log(void *ctx, const char *msg)
{
	struct town_uplink *u = ctx;

	meter_log(u->m, LOG_INFO, "%s", msg);
}

static const struct sim900_ops modem_ops = {
	.write = modem_write,
	.pwrkey = modem_pwrkey,
	.changed = modem_changed,
	.log = modem_log,
};

/* The modem is connected (transparent mode): its line becomes the uplink. */
static int attach_modem(struct town_uplink *u)
{
	int ldisc = N_TTY;

	if (gmlink_attach(u->modem_fd, GMLINK_LDISC) ||
	    gmlink_configure(u->modem_fd, u->cfg->link_node, GM_ROLE_UPLINK, true)) {
		int e = errno;

		meter_log(u->m, LOG_ERR, "modem %s: attaching the gm_link discipline: %s",
			  u->cfg->modem_device, strerror(e));
		ioctl(u->modem_fd, TIOCSETD, &ldisc);
		return -e;
	}
	sd_event_source_set_enabled(u->modem_src, SD_EVENT_OFF);
	u->attached = true;
	return 0;
}

static void detach_modem(struct town_uplink *u)
{
	int ldisc = N_TTY;

	/* frames still queued on the link are dropped: the outbox has them */
	if (ioctl(u->modem_fd, TIOCSETD, &ldisc))
		meter_log(u->m, LOG_ERR, "modem %s: detaching the gm_link discipline: %s",
			  u->cfg->modem_device, strerror(errno));
	tcflush(u->modem_fd, TCIFLUSH);
	u->attached = false;
	sd_event_source_set_enabled(u->modem_src, SD_EVENT_ON);
}

/* ---- route --------------------------------------------------------------- */

static void set_route(struct town_uplink *u, enum tu_route r, const char *why)
{
	const char *from = town_uplink_route_name(u->route);

	u->route = r;
	u->route_changes++;
	snprintf(u->reason, sizeof(u->reason), "%s", why);
	meter_log(u->m, (r == TU_ROUTE_MODEM ? LOG_NOTICE : LOG_WARNING) | METER_LOG_EVENT,
		  "uplink route: %s -> %s (%s)", from, town_uplink_route_name(r), why);
	/* a handshake through the new path; then whatever the town lacks goes again */
	gmpc_route_changed(&u->gc, clock_ms(CLOCK_MONOTONIC));
	if (u->hooks.route)
		u->hooks.route(u->hooks.ctx, town_uplink_route_name(r), why);
	meter_changed(u->m, MP_UPLINK);
}

static void update_route(struct town_uplink *u, int64_t now)
{
	char why[160] = "";
	enum tu_route want;

	if (u->have_modem) {
		if (u->modem.state == SIM900_DATA && !u->attached) {
			if (!attach_modem(u))
				snprintf(why, sizeof(why), "modem connected to %s:%u",
					 u->modem.cfg.host, u->modem.cfg.port);
			else
				sim900_link_down(&u->modem, now);
		} else if (u->attached && u->gc.broken) {
			snprintf(why, sizeof(why), "%u acknowledgements missed through the modem",
				 u->gc.missed);
			detach_modem(u);
			sim900_link_down(&u->modem, now);
		}
	}
	want = u->attached ? TU_ROUTE_MODEM : u->n_nb ? TU_ROUTE_NEIGHBOUR : TU_ROUTE_NONE;
	if (want == u->route) {
		if (u->gc.broken && !u->broken_logged) {
			u->broken_logged = true;
			meter_log(u->m, LOG_WARNING, "uplink: %u acknowledgements missed through the "
				  "%s route; records wait in the outbox", u->gc.missed,
				  town_uplink_route_name(u->route));
		}
		return;
	}
	u->broken_logged = false;
	if (!why[0])
		snprintf(why, sizeof(why), "modem %s%s%s", sim900_state_name(u->modem.state),
			 u->modem.why[0] ? ": " : "", u->modem.why);
	set_route(u, want, why);
}

/* ---- link frames --------------------------------------------------------- */

static int send_frame(void *ctx, unsigned int flags, const uint8_t *payload, size_t len)
{
	struct town_uplink *u = ctx;

	if (gmlink_send(u->gml_fd, GM_ID_SERVER, GM_TYPE_DATA, flags, payload, len) >= 0)
		return 0;
	if (errno == EAGAIN) {
		u->want_out = true;
		return -EAGAIN;
	}
	if (errno == ENOLINK) {
		/* no link up at all (modem reconnecting, no neighbour): later */
		u->retry_at = clock_ms(CLOCK_MONOTONIC) + RETRY_MS;
		return -EAGAIN;
	}
	u->send_errors++;
	return -errno;
}

static void pump(struct town_uplink *u)
{
	int r;

	if (u->want_out || u->retry_at)
		return;
	r = gmpc_pump(&u->gc, clock_ms(CLOCK_MONOTONIC), clock_ms(CLOCK_REALTIME));
	/* once per kind of failure, not once per frame */
	if (r < 0 && r != u->send_err)
		meter_log(u->m, LOG_ERR, "uplink: sending to the town server: %s", strerror(-r));
	u->send_err = r < 0 ? r : 0;
	if (u->want_out)
		sd_event_source_set_io_events(u->gml_src, EPOLLIN | EPOLLOUT);
}

/* The record flags of this moment: is the meter's clock trusted. */
static uint32_t time_flags(const struct town_uplink *u)
{
	return meter_time_trusted(u->m) ? 0 : GMP_RF_TIME_UNTRUSTED;
}

/* >= 0 queued (on disk, or held in memory while the disk refuses), < 0 not. */
static int record(struct town_uplink *u, struct gmp_msg *msg)
{
	uint64_t dropped = u->ob.dropped;
	int r = gmpc_record(&u->gc, msg);

	if (r < 0) {
		meter_log(u->m, LOG_ERR, "uplink: outbox %s: %s: a %s record waits", u->ob.dir,
			  strerror(-r), gmp_type_name(msg->type));
		return r;
	}
	u->records++;
	if (u->ob.dropped != dropped)
		meter_log(u->m, LOG_WARNING, "uplink: outbox over [uplink] outbox_max (%u MiB): "
			  "%llu oldest records dropped unsent", u->cfg->outbox_max_mib,
			  (unsigned long long)(u->ob.dropped - dropped));
	return r;
}

static int record_sink(void *ctx, struct gmp_msg *m)
{
	return record(ctx, m);
}

/* ---- the key files: town key and meter key rotations ------------------------ */

/* The client takes the key file's keys for its next handshake. */
static void reload_keys(struct town_uplink *u)
{
	const struct uplink_credentials *c = &u->cred;

	if (gmpc_set_keys(&u->gc, &c->key, c->town_pk, c->has_next_town ? c->town_pk_next : NULL))
		meter_log(u->m, LOG_ERR, "uplink: the keys of %s are not usable", c->path);
	gmpc_rehandshake(&u->gc, clock_ms(CLOCK_MONOTONIC));
}

/* Start a rotation of the meter's key pair (D-Bus RotateKey, or resumed at start). */
int town_uplink_rotate_key(struct town_uplink *u, char *err, size_t errlen)
{
	struct gmp_msg r = { .type = GMP_KEY_ROTATE };
	int rc;

	rc = credentials_meter_rotation_begin(&u->cred, r.key_rotate.pk, err, errlen);
	if (rc)
		return rc;
	r.key_rotate.time = clock_ms(CLOCK_REALTIME) / 1000;
	rc = record(u, &r);
	if (rc < 0) {
		snprintf(err, errlen, "the outbox refused the key-rotate record: %s", strerror(-rc));
		return rc;
	}
	u->rotate_seq = (uint64_t)r.key_rotate.seq;
	meter_log(u->m, LOG_NOTICE, "uplink: key rotation: the next public key goes to the town "
		  "server as record %llu; the key changes once it is acknowledged",
		  (unsigned long long)u->rotate_seq);
	pump(u);
	return 0;
}

/* The town server holds the key-rotate record: the next key becomes ours. */
static void rotation_acknowledged(struct town_uplink *u)
{
	char err[320];

	if (!u->rotate_seq || u->ob.acked < u->rotate_seq)
		return;
	if (credentials_meter_rotation_finish(&u->cred, err, sizeof(err))) {
		meter_log(u->m, LOG_ERR, "uplink: key rotation: %s", err);
		return;
	}
	u->rotate_seq = 0;
	meter_log(u->m, LOG_NOTICE, "uplink: key rotation: the town server holds the new key; "
		  "the meter uses it from this handshake on");
	reload_keys(u);
}

/* ---- messages from the town server ---------------------------------------- */

/* A command of the town server, in order, once: its status goes back to the town. */
static int on_command(void *ctx, const struct gmp_msg *msg)
{
	struct town_uplink *u = ctx;
	int64_t now = clock_ms(CLOCK_REALTIME) / 1000;

	if (msg->type == GMP_SIGNED)
		return sc_command(&u->sc, msg, meter_time_trusted(u->m), now);
	return tc_command(&u->cmd, msg, now);
}

/* The gmproto client's status line for the next HELLO. */
static void hello_status(struct town_uplink *u)
{
	unsigned int f = 0;

	/* how this run started: told until the town has heard it once */
	if (!u->gc.welcomed && !u->m->recovery.have_snapshot)
		f |= GMP_HELLO_STORE_NEW;
	if (!u->gc.welcomed && u->m->recovery.have_snapshot && !u->m->last_clean)
		f |= GMP_HELLO_UNCLEAN;
	gmpc_set_status(&u->gc, meter_time_trusted(u->m), f);
}

/* A new session with the town server: its time and its view of our registers. */
static void on_welcome(void *ctx, const struct gmpc_welcome *w)
{
	struct town_uplink *u = ctx;
	uint64_t before[3], after[3], delta[3];
	char err[320];
	int r;

	meter_log(u->m, LOG_INFO, "uplink: session %u with the town server, round trip %lld ms, "
		  "it holds our records up to %lld", w->sid, (long long)w->rtt_ms,
		  (long long)w->upto);
	if (w->town_key_next) {
		/* the town answered under its next key: that key is the town's now */
		if (credentials_town_rotation_finish(&u->cred, err, sizeof(err)))
			meter_log(u->m, LOG_ERR, "uplink: town key rotation: %s", err);
		else if (gmpc_set_keys(&u->gc, &u->cred.key, u->cred.town_pk, NULL))
			meter_log(u->m, LOG_ERR, "uplink: town key rotation: the new key is not usable");
		else
			meter_log(u->m, LOG_NOTICE, "uplink: the town server's new key is in force");
	}
	if (w->time_ok) {
		r = meter_clock_sample(u->m, w->offset_ms, w->uncertainty_ms,
				       clock_ms(CLOCK_MONOTONIC));
		if (r < 0)
			meter_log(u->m, LOG_ERR, "uplink: the town server's time (%+lld ms) could not "
				  "be applied: %s", (long long)w->offset_ms, strerror(-r));
	} else {
		meter_log(u->m, LOG_WARNING, "uplink: the town server's time is not used: round trip "
			  "%lld ms", (long long)w->rtt_ms);
	}
	if (w->reg_import_mwh >= 0 && w->reg_export_mwh >= 0 && w->reg_renew_mwh >= 0) {
		meter_lifetime(u->m, &before[0], &before[1], &before[2]);
		if (meter_town_view(u->m, (uint64_t)w->reg_import_mwh, (uint64_t)w->reg_export_mwh,
				    (uint64_t)w->reg_renew_mwh) == 1) {
			meter_lifetime(u->m, &after[0], &after[1], &after[2]);
			for (int i = 0; i < 3; i++)
				delta[i] = after[i] > before[i] ? after[i] - before[i] : 0;
			tr_raised(&u->rep, delta);
		}
	}
	hello_status(u);
}

static void on_log(void *ctx, int level, const char *msg)
{
	struct town_uplink *u = ctx;

	meter_log(u->m, level, "%s", msg);
}

/* ---- allocation requests ----------------------------------------------------- */

static void send_request(struct town_uplink *u)
{
	int64_t now = clock_ms(CLOCK_REALTIME) / 1000, want_w = u->req.want_w;
	struct gmp_msg r;

	memset(&r, 0, sizeof(r));
	if (!want_w) {
		r.type = GMP_ALLOC_REL;
		r.alloc_rel.time = now;
		r.alloc_rel.req_id = u->req_id;
		r.alloc_rel.flags = time_flags(u);
	} else {
		/* a new request supersedes the one before */
		r.type = GMP_ALLOC_REQ;
		r.alloc_req.time = now;
		r.alloc_req.req_id = ++u->req_id;
		r.alloc_req.power_w = want_w;
		r.alloc_req.duration_s = REQ_DURATION_S;
		r.alloc_req.flags = time_flags(u);
	}
	if (record(u, &r) >= 0)
		tr_request_sent(&u->req, now);
	else
		tr_request_failed(&u->req, now);
}

/* When requests go: town_reports.h (tr_request_due()), not with the readings. */
static void request_changed(struct town_uplink *u, int64_t want_w)
{
	int64_t now = clock_ms(CLOCK_REALTIME) / 1000;

	tr_request_want(&u->req, want_w, now);
	if (tr_request_due(&u->req, REQ_DURATION_S) <= now) {
		send_request(u);
		pump(u);
	}
}

/* ---- reports ----------------------------------------------------------------- */

static void reports(struct town_uplink *u)
{
	struct tr_input in = { .now_s = clock_ms(CLOCK_REALTIME) / 1000, .tariff = &u->m->tariff,
			       .trusted = meter_time_trusted(u->m), .view_known = u->gc.welcomed };
	int64_t from_ms, to_ms, before = u->rep.report_from;

	in.reg[0] = u->m->reg.import.total_mwh;
	in.reg[1] = u->m->reg.export.total_mwh;
	in.reg[2] = u->m->reg.renew.total_mwh;
	if (meter_unrecorded(u->m, &from_ms, &to_ms)) {
		in.have_unrecorded = true;
		in.unrec_from_s = from_ms / 1000;
		in.unrec_to_s = to_ms / 1000;
	}
	if (meter_reconstructed(u->m, &from_ms, &to_ms)) {
		in.have_reconstructed = true;
		in.recon_from_s = from_ms / 1000;
		in.recon_to_s = to_ms / 1000;
	}
	tr_step(&u->rep, &in, record_sink, u);
	/* a changed amount not yet worth a message of its own goes with a reading, or when due */
	if ((u->rep.report_from != before && u->req.want_w != u->req.sent_w) ||
	    tr_request_due(&u->req, REQ_DURATION_S) <= in.now_s)
		send_request(u);
}

/* ---- struct uplink (the meter's view) ------------------------------------------ */

static void op_request(struct uplink *base, int64_t deficit_w)
{
	struct town_uplink *u = (struct town_uplink *)base;

	if (deficit_w > 0 || u->req.want_w > 0)
		request_changed(u, deficit_w > 0 ? deficit_w : 0);
}

static void op_offer(struct uplink *base, int64_t surplus_w)
{
	struct town_uplink *u = (struct town_uplink *)base;

	if (u->req.want_w > 0)
		return;		/* a need outranks an offer */
	request_changed(u, surplus_w > 0 ? -surplus_w : 0);
}

static const char *op_state(struct uplink *base)
{
	struct town_uplink *u = (struct town_uplink *)base;

	return town_uplink_route_name(u->route);
}

static void op_alarm(struct uplink *base, unsigned int code, bool active)
{
	struct town_uplink *u = (struct town_uplink *)base;
	struct gmp_msg r = { .type = GMP_ALARM };

	r.alarm.time = clock_ms(CLOCK_REALTIME) / 1000;
	r.alarm.code = code;
	r.alarm.active = active;
	r.alarm.flags = time_flags(u);
	record(u, &r);
	pump(u);
}

static const struct uplink_ops town_ops = {
	.name = "town",
	.request = op_request,
	.offer = op_offer,
	.state = op_state,
	.interval = NULL,
	.alarm = op_alarm,
};

/* ---- event loop ------------------------------------------------------------------ */

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static void arm(struct town_uplink *u)
{
	int64_t now = clock_ms(CLOCK_MONOTONIC), real = clock_ms(CLOCK_REALTIME);
	int64_t t = gmpc_deadline(&u->gc);

	if (u->have_modem)
		t = min64(t, sim900_deadline(&u->modem));
	if (u->retry_at)
		t = min64(t, u->retry_at);
	if (tr_due(&u->rep) != INT64_MAX)
		t = min64(t, now + tr_due(&u->rep) * 1000 - real);
	else
		t = min64(t, now + 1000);	/* reports wait for a trusted clock */
	if (tr_request_due(&u->req, REQ_DURATION_S) != INT64_MAX)
		t = min64(t, now + tr_request_due(&u->req, REQ_DURATION_S) * 1000 - real);
	if (tc_due(&u->cmd) != INT64_MAX)
		t = min64(t, now + tc_due(&u->cmd) * 1000 - real);
	if (t < now)
		t = now;
	sd_event_source_set_time(u->timer_src, (uint64_t)t * 1000);
	sd_event_source_set_enabled(u->timer_src, SD_EVENT_ONESHOT);
}

/* After anything happened: route, send, timers, properties. */
static void after(struct town_uplink *u)
{
	if (u->gc.acks != u->last_acks) {
		u->last_acks = u->gc.acks;
		u->last_ack_ms = clock_ms(CLOCK_REALTIME);
		u->broken_logged = false;
	}
	if (u->cmd.keys_changed) {
		u->cmd.keys_changed = false;
		reload_keys(u);
	}
	if (u->sc.rekey) {
		char why[320];

		/* a verified signed rekey: the rotation starts as with D-Bus RotateKey */
		u->sc.rekey = false;
		if (!u->cred.has_next_key && town_uplink_rotate_key(u, why, sizeof(why)))
			meter_log(u->m, LOG_ERR, "uplink: key rotation of a signed rekey: %s", why);
	}
	rotation_acknowledged(u);
	update_route(u, clock_ms(CLOCK_MONOTONIC));
	pump(u);
	arm(u);
	changed(u);
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct town_uplink *u = userdata;
	int64_t now = clock_ms(CLOCK_MONOTONIC);

	(void)es;
	(void)usec;
	if (u->retry_at && now >= u->retry_at) {
		u->retry_at = 0;
		if (u->have_modem && !u->attached)
			sd_event_source_set_enabled(u->modem_src, SD_EVENT_ON);
	}
	if (u->have_modem)
		sim900_tick(&u->modem, now);
	gmpc_tick(&u->gc, now);
	hello_status(u);
	reports(u);
	tc_tick(&u->cmd, clock_ms(CLOCK_REALTIME) / 1000);
	after(u);
	return 0;
}

static int on_modem(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct town_uplink *u = userdata;
	char buf[256];
	ssize_t n = 0;

	(void)revents;
	for (int i = 0; i < 16 && !u->attached; i++) {
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		sim900_input(&u->modem, buf, (size_t)n, clock_ms(CLOCK_MONOTONIC));
		if (u->modem.state == SIM900_DATA)
			break;	/* what follows CONNECT belongs to the discipline */
	}
	if (!u->attached && (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))) {
		/* hung up or failing: the modem machine times out; poll again later */
		sd_event_source_set_enabled(es, SD_EVENT_OFF);
		u->retry_at = clock_ms(CLOCK_MONOTONIC) + RETRY_MS;
	}
	after(u);
	return 0;
}

static int on_link(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct town_uplink *u = userdata;

	if (revents & EPOLLOUT) {
		u->want_out = false;
		sd_event_source_set_io_events(es, EPOLLIN);
	}
	for (int i = 0; i < 64 && (revents & EPOLLIN); i++) {
		struct gmlink_msg msg;
		ssize_t n = read(fd, &msg, sizeof(msg));

		if (n < 0)
			break;
		if ((size_t)n < sizeof(msg.hdr) || (size_t)n != sizeof(msg.hdr) + msg.hdr.len ||
		    msg.hdr.src != GM_ID_SERVER)
			continue;	/* only the town server talks to the agent */
		gmpc_input(&u->gc, msg.hdr.type, msg.hdr.flags, msg.payload, msg.hdr.len,
			   clock_ms(CLOCK_MONOTONIC), clock_ms(CLOCK_REALTIME));
	}
	after(u);
	return 0;
}

/* ---- start and stop ----------------------------------------------------------------- */

static int start_links(struct town_uplink *u, char *err, size_t errlen)
{
	const struct meter_config *c = u->cfg;

	u->gml_fd = gmlink_open(c->link_node, u->cred.meter_id, O_NONBLOCK);
	if (u->gml_fd < 0) {
		snprintf(err, errlen, "%s: %s (is the gm_link module loaded?)", GMLINK_DEV,
			 strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < c->nneighbours; i++) {
		const struct neighbour_cfg *n = &c->neighbour[i];
		int fd = serial_line_open(n->device, n->baud, err, errlen);

		if (fd < 0)
			return -1;
		u->nb_fd[u->n_nb++] = fd;
		if (gmlink_attach(fd, GMLINK_LDISC) ||
		    gmlink_configure(fd, c->link_node, GM_ROLE_NEIGHBOUR, true)) {
			snprintf(err, errlen, "[neighbour.%s] %s: attaching the gm_link discipline: %s",
				 n->name, n->device, strerror(errno));
			return -1;
		}
	}
	if (!c->modem)
		return 0;
	u->modem_fd = serial_line_open(c->modem_device, c->modem_baud, err, errlen);
	if (u->modem_fd < 0)
		return -1;
	if (c->pwrkey_line >= 0) {
		u->pwrkey = pwrkey_open(c->pwrkey_chip, (unsigned int)c->pwrkey_line,
					c->pwrkey_active_low, err, errlen);
		if (!u->pwrkey)
			return -1;
	}
	u->have_modem = true;
	sim900_init(&u->modem, &c->sim900, &modem_ops, u);
	return 0;
}

int town_uplink_start(struct town_uplink *u, const struct meter_config *cfg, struct meter *m,
		      sd_event *ev, const struct town_uplink_hooks *hooks, char *err, size_t errlen)
{
	const struct registers *rg = &m->reg;
	struct gmpc_config mc;
	struct gmpc_hooks gh = { .send = send_frame, .command = on_command,
				 .welcome = on_welcome, .log = on_log };
	char dir[CFG_PATH + 16];
	uint64_t reg[3];

	memset(u, 0, sizeof(*u));
	u->base.ops = &town_ops;
	u->cfg = cfg;
	u->m = m;
	u->ev = ev;
	u->modem_fd = u->gml_fd = -1;
	if (hooks)
		u->hooks = *hooks;
	if (credentials_load(&u->cred, cfg->credentials, err, errlen))
		return -EINVAL;
	if (cfg->outbox_dir[0])
		snprintf(dir, sizeof(dir), "%s", cfg->outbox_dir);
	else
		snprintf(dir, sizeof(dir), "%s/outbox", cfg->state_dir);
	if (mkdir(dir, 0750) && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -EIO;
	}
	if (outbox_open(&u->ob, dir, (uint64_t)cfg->outbox_max_mib << 20, err, errlen))
		return -EIO;
	u->ob_open = true;
	gmpc_config_defaults(&mc);
	mc.meter_id = u->cred.meter_id;
	mc.key = u->cred.key;
	memcpy(mc.town_pk, u->cred.town_pk, GMP_KEY_LEN);
	mc.ack_every = cfg->ack_every;
	mc.ack_timeout_ms = cfg->ack_timeout_ms;
	mc.broken_after = cfg->broken_after;
	gh.ctx = u;
	if (gmpc_init(&u->gc, &mc, &gh, &u->ob, err, errlen))
		return -EINVAL;
	u->gc_up = true;
	sodium_memzero(&mc, sizeof(mc));
	if (start_links(u, err, errlen))
		return -ENODEV;

	if (sd_event_add_io(ev, &u->gml_src, u->gml_fd, EPOLLIN, on_link, u) < 0 ||
	    sd_event_add_time(ev, &u->timer_src, CLOCK_MONOTONIC, 0, 1000, on_timer, u) < 0 ||
	    (u->have_modem &&
	     sd_event_add_io(ev, &u->modem_src, u->modem_fd, EPOLLIN, on_modem, u) < 0)) {
		snprintf(err, errlen, "event loop: out of memory");
		return -ENOMEM;
	}
	/* a register snapshot at every start, then readings from now on */
	reg[0] = rg->import.total_mwh;
	reg[1] = rg->export.total_mwh;
	reg[2] = rg->renew.total_mwh;
	tr_init(&u->rep, config_report_s(cfg), cfg->snapshot_interval_s,
		clock_ms(CLOCK_REALTIME) / 1000, meter_time_trusted(m), reg);
	if (cfg->report_interval_line)
		meter_log(m, LOG_WARNING, "%s:%u: [uplink] report_interval = %u is not used: "
			  "detail = billing sends one reading per hour and tariff period "
			  "(set detail = interval to send finer readings)", cfg->path,
			  cfg->report_interval_line, cfg->report_interval_s);
	tc_init(&u->cmd, m, cfg, &u->cred);
	if (sc_init(&u->sc, m, cfg, &u->cred, err, errlen))
		/* metering and readings go on; signed commands are refused */
		meter_log(m, LOG_ERR, "signed commands: %s", err);
	err[0] = '\0';
	hello_status(u);
	if (u->have_modem)
		sim900_start_escape(&u->modem, clock_ms(CLOCK_MONOTONIC));
	meter_log(m, LOG_INFO, "uplink: meter %u (%s), %s%s%s%zu neighbour link(s), outbox %s: "
		  "%llu records unacknowledged; readings %s %u s", u->cred.meter_id, u->cred.path,
		  u->have_modem ? "modem " : "no modem, ", u->have_modem ? cfg->modem_device : "",
		  u->have_modem ? ", " : "", u->n_nb, dir, (unsigned long long)gmpc_backlog(&u->gc),
		  config_detail_interval(cfg) ? "(detail = interval) every" :
		  "(detail = billing) per tariff period and", config_report_s(cfg));
	snprintf(u->reason, sizeof(u->reason), "starting");
	if (u->cred.has_next_key) {
		char why[320];

		/* a rotation an earlier run began: its record may not have reached the town */
		if (town_uplink_rotate_key(u, why, sizeof(why)))
			meter_log(m, LOG_ERR, "uplink: key rotation not resumed: %s", why);
	}
	reports(u);
	after(u);
	return 0;
}

void town_uplink_stop(struct town_uplink *u)
{
	u->timer_src = sd_event_source_disable_unref(u->timer_src);
	u->gml_src = sd_event_source_disable_unref(u->gml_src);
	u->modem_src = sd_event_source_disable_unref(u->modem_src);
	if (u->modem_fd >= 0)
		close(u->modem_fd);
	for (size_t i = 0; i < u->n_nb; i++)
		close(u->nb_fd[i]);
	if (u->gml_fd >= 0)
		close(u->gml_fd);
	pwrkey_close(u->pwrkey);
	if (u->gc_up)
		gmpc_free(&u->gc);
	if (u->ob_open)
		outbox_close(&u->ob);
	credentials_wipe(&u->cred);
	u->modem_fd = u->gml_fd = -1;
	u->n_nb = 0;
	u->pwrkey = NULL;
	u->gc_up = u->ob_open = false;
}
