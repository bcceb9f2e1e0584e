// SPDX-License-Identifier: GPL-2.0
/* A town server's client link to a tier server (townd_tier.h). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <sodium.h>

#include "townd_tier.h"
#include "sendq.h"

void townd_tier_defaults(struct townd_tier_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	gmpc_config_defaults(&cfg->gmpc);
	cfg->gmpc.ack_every = 1;	/* few frames an hour: each one acknowledged */
	cfg->gmpc.hello_retry_ms = 2000;
	cfg->gmpc.hello_retry_max_ms = 60000;
	cfg->outbox_max_bytes = 1024ull << 20;
	cfg->reconnect_min_ms = 1000;
	cfg->reconnect_max_ms = 60000;
	cfg->connect_timeout_ms = 10000;
}

__attribute__((format(printf, 3, 4)))
static void tlog(struct townd_tier *t, int level, const char *fmt, ...)
{
	char msg[400];
	int n;
	va_list ap;

	if (!t->hooks.log)
		return;
	n = snprintf(msg, sizeof(msg), "%s: ", t->cfg.name);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	t->hooks.log(t->hooks.ctx, level, msg);
}

static void watch(struct townd_tier *t, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.u64 = t->token };

	if (t->epfd < 0 || t->fd < 0 || ev == t->ev)
		return;
	if (epoll_ctl(t->epfd, t->ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, t->fd, &e) == 0)
		t->ev = ev;
}

static int flush_out(struct townd_tier *t)
{
	if (gm_sendq_drain(t->fd, t->out, &t->out_len))
		return -1;
	watch(t, EPOLLIN | (t->out_len ? EPOLLOUT : 0));
	return 0;
}

static void drop(struct townd_tier *t, int64_t now, const char *why)
{
	uint64_t d;

	if (t->fd >= 0) {
		if (t->epfd >= 0 && t->ev)
			epoll_ctl(t->epfd, EPOLL_CTL_DEL, t->fd, NULL);
		close(t->fd);
	}
	if (t->state == TIER_CONNECTED)
		t->disconnects++;
	else if (t->state == TIER_CONNECTING)
		t->connect_failures++;
	if (why)
		tlog(t, t->state == TIER_CONNECTED ? LOG_WARNING : LOG_INFO, "%s; again in about "
		     "%u s", why, t->backoff_ms / 1000 ? t->backoff_ms / 1000 : 1);
	t->fd = -1;
	t->ev = 0;
	t->state = TIER_IDLE;
	t->connected_at = 0;
	t->out_len = 0;
	/* x uniform(0.5, 1.5): towns that lost one server do not come back together */
	d = t->backoff_ms / 2 + randombytes_uniform(t->backoff_ms + 1);
	t->reconnect_at = now + (int64_t)d;
	t->backoff_ms = t->backoff_ms * 2 > t->cfg.reconnect_max_ms ? t->cfg.reconnect_max_ms :
			t->backoff_ms * 2;
}

static void connected(struct townd_tier *t, int64_t now)
{
	t->state = TIER_CONNECTED;
	t->connected_at = now;
	t->connects++;
	gm_rx_init(&t->rx);
	setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	watch(t, EPOLLIN);
	tlog(t, LOG_INFO, "connected");
	/* a new route: a new handshake through it, everything unacknowledged again */
	gmpc_route_changed(&t->c, now);
}

static void start_connect(struct townd_tier *t, int64_t now)
{
	t->fd = socket(t->cfg.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0) {
		drop(t, now, "socket failed");
		return;
	}
	if (connect(t->fd, (const struct sockaddr *)&t->cfg.addr, t->cfg.addr_len) == 0) {
		connected(t, now);
		return;
	}
	if (errno != EINPROGRESS) {
		char why[160];

		t->state = TIER_CONNECTING;
		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		drop(t, now, why);
		return;
	}
	t->state = TIER_CONNECTING;
	t->connect_started = now;
	watch(t, EPOLLOUT);
}

static int send_hook(void *ctx, unsigned int flags, const uint8_t *payload, size_t len)
{
	struct townd_tier *t = ctx;
	struct gm_hdr h = { .version = GM_VERSION, .type = GM_TYPE_DATA, .flags = (u8)flags,
			    .hop_limit = GM_HOP_DEFAULT, .src = t->cfg.own_id,
			    .dst = GM_ID_SERVER, .seq = t->frame_seq };
	uint8_t wire[GM_MAX_WIRE];
	int n;

	if (t->state != TIER_CONNECTED || t->out_len + sizeof(wire) > TOWND_TIER_OUT_MAX)
		return -EAGAIN;
	n = gm_frame_encode(&h, payload, len, wire, sizeof(wire));
	if (n < 0)
		return -EINVAL;
	if (t->out_len + (size_t)n > t->out_cap) {
		size_t cap = t->out_cap ? t->out_cap * 2 : 4096;
		uint8_t *p;

		while (cap < t->out_len + (size_t)n)
			cap *= 2;
		p = realloc(t->out, cap);
		if (!p)
			return -EAGAIN;
		t->out = p;
		t->out_cap = cap;
	}
	memcpy(t->out + t->out_len, wire, (size_t)n);
	t->out_len += (size_t)n;
	t->frame_seq++;
	t->frames_out++;
	t->bytes_out += (uint64_t)n;
	return flush_out(t) ? -EAGAIN : 0;
}

static int command_hook(void *ctx, const struct gmp_msg *m)
{
	struct townd_tier *t = ctx;

	return t->hooks.command ? t->hooks.command(t->hooks.ctx, m) : GMP_CMD_UNSUPPORTED;
}

static void welcome_hook(void *ctx, const struct gmpc_welcome *w)
{
	struct townd_tier *t = ctx;

	tlog(t, LOG_INFO, "session %u (the server holds our records up to %lld)", w->sid,
	     (long long)w->upto);
	if (t->hooks.welcome)
		t->hooks.welcome(t->hooks.ctx, w);
}

static void log_hook(void *ctx, int level, const char *msg)
{
	struct townd_tier *t = ctx;

	tlog(t, level, "%s", msg);
}

int townd_tier_open(struct townd_tier *t, const struct townd_tier_config *cfg,
		    const struct townd_tier_hooks *hooks, char *err, size_t errlen)
{
	struct gmpc_hooks gh = { .ctx = t, .send = send_hook, .command = command_hook,
				 .welcome = welcome_hook, .log = log_hook };
	struct gmpc_config gc = cfg->gmpc;

	memset(t, 0, sizeof(*t));
	t->cfg = *cfg;
	if (hooks)
		t->hooks = *hooks;
	t->fd = -1;
	t->epfd = -1;
	t->ob.dirfd = t->ob.fd = -1;
	t->backoff_ms = cfg->reconnect_min_ms ? cfg->reconnect_min_ms : 1000;
	if (!t->cfg.connect_timeout_ms)
		t->cfg.connect_timeout_ms = 10000;
	if (t->cfg.reconnect_max_ms < t->backoff_ms)
		t->cfg.reconnect_max_ms = t->backoff_ms;
	if (outbox_open(&t->ob, cfg->outbox, cfg->outbox_max_bytes, err, errlen))
		return -1;
	/* records come in batches: one fdatasync per batch (townd_tier_sync) */
	t->ob.defer_sync = true;
	gc.meter_id = cfg->own_id;
	gc.key = cfg->key;
	memcpy(gc.town_pk, cfg->peer_pk, GMP_KEY_LEN);
	gc.have_town_pk_next = false;
	if (gmpc_init(&t->c, &gc, &gh, &t->ob, err, errlen)) {
		outbox_close(&t->ob);
		sodium_memzero(&gc, sizeof(gc));
		return -1;
	}
	sodium_memzero(&gc, sizeof(gc));
	gmpc_set_status(&t->c, true, 0);
	t->acked_seen = t->ob.acked;
	return 0;
}

void townd_tier_close(struct townd_tier *t)
{
	if (t->fd >= 0) {
		if (t->epfd >= 0 && t->ev)
			epoll_ctl(t->epfd, EPOLL_CTL_DEL, t->fd, NULL);
		close(t->fd);
		t->fd = -1;
	}
	gmpc_free(&t->c);
	outbox_close(&t->ob);
	free(t->out);
	t->out = NULL;
	sodium_memzero(&t->cfg.key, sizeof(t->cfg.key));
}

void townd_tier_attach(struct townd_tier *t, int epfd, uint64_t token)
{
	t->epfd = epfd;
	t->token = token;
}

static void check_acked(struct townd_tier *t)
{
	if (t->ob.acked != t->acked_seen) {
		t->acked_seen = t->ob.acked;
		if (t->hooks.acked)
			t->hooks.acked(t->hooks.ctx, t->ob.acked);
	}
}

void townd_tier_pump(struct townd_tier *t, int64_t mono, int64_t real)
{
	/* nothing leaves that is not on disk */
	if (t->state == TIER_CONNECTED && outbox_sync(&t->ob) == 0 &&
	    gmpc_pump(&t->c, mono, real) < 0)
		drop(t, mono, "sending failed");
}

static void do_read(struct townd_tier *t, int64_t mono, int64_t real)
{
	uint8_t buf[16384];

	for (int k = 0; k < 16 && t->state == TIER_CONNECTED; k++) {
		ssize_t r = recv(t->fd, buf, sizeof(buf), MSG_DONTWAIT);
		size_t off = 0;

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			drop(t, mono, r == 0 ? "the server closed the connection" :
			     "the connection failed");
			return;
		}
		if (r < 0)
			return;
		t->bytes_in += (uint64_t)r;
		while (off < (size_t)r) {
			enum gm_rx_status st;

			off += gm_rx_feed(&t->rx, buf + off, (size_t)r - off, &st);
			if (st != GM_RX_FRAME)
				continue;
			if (t->rx.hdr.src != GM_ID_SERVER || t->rx.hdr.dst != t->cfg.own_id ||
			    !gmpc_input(&t->c, t->rx.hdr.type, t->rx.hdr.flags, t->rx.payload,
					t->rx.payload_len, mono, real))
				t->frames_refused++;
			else
				t->frames_in++;
		}
	}
}

void townd_tier_event(struct townd_tier *t, uint32_t events, int64_t mono, int64_t real)
{
	if (t->state == TIER_CONNECTING) {
		int e = 0;
		socklen_t l = sizeof(e);

		if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &e, &l) || e) {
			char why[160];

			snprintf(why, sizeof(why), "connect: %s", strerror(e ? e : errno));
			drop(t, mono, why);
			return;
		}
		connected(t, mono);
		townd_tier_pump(t, mono, real);
		return;
	}
	if (t->state != TIER_CONNECTED)
		return;
	if (events & EPOLLOUT && flush_out(t)) {
		drop(t, mono, "the connection failed");
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		do_read(t, mono, real);
	check_acked(t);
	townd_tier_pump(t, mono, real);
}

void townd_tier_tick(struct townd_tier *t, int64_t mono, int64_t real)
{
	if (t->state == TIER_IDLE && mono >= t->reconnect_at)
		start_connect(t, mono);
	if (t->state == TIER_CONNECTING &&
	    mono - t->connect_started >= (int64_t)t->cfg.connect_timeout_ms)
		drop(t, mono, "connect: no answer");
	if (t->state == TIER_CONNECTED) {
		gmpc_tick(&t->c, mono);
		if (t->c.broken) {
			/* acks stopped on a connection that looks open: a new one */
			t->c.broken = false;
			drop(t, mono, "no acknowledgement from the server");
			return;
		}
		/* a connection that delivers data is a good one: the back-off starts over */
		if (t->c.state == GMPC_UP && mono - t->connected_at > 10000)
			t->backoff_ms = t->cfg.reconnect_min_ms ? t->cfg.reconnect_min_ms : 1000;
	}
	check_acked(t);
	townd_tier_pump(t, mono, real);
}

int64_t townd_tier_deadline(const struct townd_tier *t)
{
	if (t->state == TIER_IDLE)
		return t->reconnect_at;
	if (t->state == TIER_CONNECTED)
		return gmpc_deadline(&t->c);
	return t->connect_started + (int64_t)t->cfg.connect_timeout_ms;
}

int townd_tier_record(struct townd_tier *t, struct gmp_msg *m)
{
	return gmpc_record(&t->c, m);
}

int townd_tier_sync(struct townd_tier *t)
{
	return outbox_sync(&t->ob);
}
