// SPDX-License-Identifier: GPL-2.0
/*
 * maind network loop. Towns are few (one connection each, a few more
 * while one reconnects), so timeouts are a scan of the connections once a
 * second; a connection keeps its slot only with authentic frames
 * (first_frame_timeout, then idle_timeout), as in townd.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "commands/cmd.h"
#include "gm_frame.h"
#include "gmp_server.h"
#include "maind_net.h"
#include "maind_pg.h"
#include "sendq.h"
#include "listen.h"

#define OUT_MAX		(1024 * 1024)	/* unsent bytes before a peer is dropped */
#define READ_CHUNK	(64 * 1024)
#define TOK_SIGNAL	(1ull << 63)
#define TOK_TIMER	((1ull << 63) | 1)
#define TOK_LISTEN	(1ull << 62)	/* | index */
#define KICK_MAX	256
#define PARTITIONS_EVERY_S 3600

struct mconn {
	int fd;				/* -1: free */
	uint32_t gen;
	bool authentic, want_out;
	int64_t since_ms;		/* accepted, or last authentic frame */
	uint8_t *out;
	size_t out_len, out_cap;
	struct gm_rx rx;
};

struct maind_net {
	const struct maind_config *cfg;
	struct maind_pg pg;
	struct gmps srv;
	int ep, sigfd, tfd;
	int lfd[MAIND_LISTEN_MAX * 2];
	int n_lfd;
	struct mconn *c;
	uint32_t cap, used;
	int64_t changes, partitions_at;
	uint8_t *buf;
};

static int64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_cb(void *ctx, int level, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "%smaind: %s\n", level <= LOG_ERR ? "<3>" : level <= LOG_WARNING ?
		"<4>" : "<6>", msg);
}

static uint64_t token(const struct maind_net *n, uint32_t i)
{
	return (uint64_t)n->c[i].gen << 32 | i;
}

static struct mconn *by_token(struct maind_net *n, uint64_t tok)
{
	uint32_t i = (uint32_t)tok;

	if (i >= n->cap || n->c[i].fd < 0 || n->c[i].gen != (uint32_t)(tok >> 32))
		return NULL;
	return &n->c[i];
}

static void conn_close(struct maind_net *n, struct mconn *t)
{
	epoll_ctl(n->ep, EPOLL_CTL_DEL, t->fd, NULL);
	close(t->fd);
	t->fd = -1;
	t->gen++;
	free(t->out);
	t->out = NULL;
	t->out_len = t->out_cap = 0;
	n->used--;
}

static int conn_flush(struct maind_net *n, struct mconn *t)
{
	struct epoll_event ev;

	if (gm_sendq_drain(t->fd, t->out, &t->out_len))
		return -1;
	if (!!t->out_len == t->want_out)
		return 0;
	t->want_out = t->out_len != 0;
	ev.events = EPOLLIN | (t->want_out ? EPOLLOUT : 0);
	ev.data.u64 = token(n, (uint32_t)(t - n->c));
	epoll_ctl(n->ep, EPOLL_CTL_MOD, t->fd, &ev);
	return 0;
}

static void send_cb(void *ctx, uint64_t tok, const uint8_t *wire, size_t len)
{
	/* every hook's ctx is the storage, which lives in the loop */
	struct maind_net *n = (struct maind_net *)((char *)ctx - offsetof(struct maind_net, pg));
	struct mconn *t = by_token(n, tok);

	if (!t)
		return;		/* gone: the town resends, and gets its ack then */
	if (t->out_len + len > OUT_MAX) {
		conn_close(n, t);
		return;
	}
	if (t->out_len + len > t->out_cap) {
		size_t cap = t->out_cap ? t->out_cap * 2 : 4096;
		uint8_t *p;

		while (cap < t->out_len + len)
			cap *= 2;
		p = realloc(t->out, cap);
		if (!p) {
			conn_close(n, t);
			return;
		}
		t->out = p;
		t->out_cap = cap;
	}
	memcpy(t->out + t->out_len, wire, len);
	t->out_len += len;
	if (conn_flush(n, t))
		conn_close(n, t);
}

static void do_accept(struct maind_net *n, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		uint32_t i;

		if (fd < 0)
			return;
		if (n->used >= n->cfg->max_connections) {
			close(fd);
			continue;
		}
		for (i = 0; i < n->cap && n->c[i].fd >= 0; i++)
			;
		if (i == n->cap) {
			uint32_t cap = n->cap ? n->cap * 2 : 16;
			struct mconn *c = realloc(n->c, cap * sizeof(*c));

			if (!c) {
				close(fd);
				continue;
			}
			for (uint32_t k = n->cap; k < cap; k++) {
				memset(&c[k], 0, sizeof(c[k]));
				c[k].fd = -1;
			}
			n->c = c;
			n->cap = cap;
		}
		n->c[i].fd = fd;
		n->c[i].authentic = n->c[i].want_out = false;
		n->c[i].since_ms = mono_ms();
		gm_rx_init(&n->c[i].rx);
		n->used++;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
		ev.data.u64 = token(n, i);
		if (epoll_ctl(n->ep, EPOLL_CTL_ADD, fd, &ev))
			conn_close(n, &n->c[i]);
	}
}

static void do_read(struct maind_net *n, struct mconn *t)
{
	uint64_t tok = token(n, (uint32_t)(t - n->c));
	ssize_t r = recv(t->fd, n->buf, READ_CHUNK, MSG_DONTWAIT);
	size_t off = 0;

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(n, t);
		return;
	}
	while (r > 0 && off < (size_t)r) {
		enum gm_rx_status st;

		off += gm_rx_feed(&t->rx, n->buf + off, (size_t)r - off, &st);
		if (st == GM_RX_FRAME &&
		    gmps_frame(&n->srv, tok, &t->rx.hdr, t->rx.payload, t->rx.payload_len,
			       real_ms()) == GMPS_AUTHENTIC) {
			t->authentic = true;
			t->since_ms = mono_ms();
		}
	}
}

/* Once a second: timeouts, commands to push, mainctl's changes, partitions. */
static int tick(struct maind_net *n)
{
	int64_t now = mono_ms(), ch, rs = real_ms() / 1000;
	uint16_t towns[KICK_MAX];
	int k;

	for (uint32_t i = 0; i < n->cap; i++) {
		struct mconn *t = &n->c[i];
		int64_t limit = (int64_t)(t->authentic ? n->cfg->idle_timeout_s :
					  n->cfg->first_frame_timeout_s) * 1000;

		if (t->fd >= 0 && now - t->since_ms >= limit)
			conn_close(n, t);
	}
	ch = mpg_changes(&n->pg);
	if (ch < 0)
		return -1;
	if (ch != n->changes) {
		n->changes = ch;
		gmps_forget(&n->srv, -1);	/* towns added or keys changed: read again */
	}
	k = mpg_towns_with_commands(&n->pg, rs, (int)n->cfg->command_resend_s, towns, KICK_MAX);
	if (k < 0)
		return -1;
	for (int i = 0; i < k; i++)
		gmps_kick(&n->srv, towns[i]);
	if (rs - n->partitions_at >= PARTITIONS_EVERY_S) {
		if (mpg_partitions_ahead(&n->pg, rs))
			return -1;
		n->partitions_at = rs;
	}
	/* the parts' periodic work (each keeps its own pace in n->pg): a
	 * failure is logged and retried at the next tick, ingest goes on */
	if (mbill_tick(&n->pg, rs))
		fprintf(stderr, "maind: billing: %s\n", n->pg.err);
	if (mdet_tick(&n->pg, rs))
		fprintf(stderr, "maind: detection: %s\n", n->pg.err);
	if (mcmd_tick(&n->pg, n->cfg, rs))
		fprintf(stderr, "maind: signed commands: %s\n", n->pg.err);
	return 0;
}

static void net_free(struct maind_net *n)
{
	for (uint32_t i = 0; i < n->cap; i++)
		if (n->c[i].fd >= 0)
			conn_close(n, &n->c[i]);
	for (int i = 0; i < n->n_lfd; i++)
		close(n->lfd[i]);
	if (n->ep >= 0)
		close(n->ep);
	if (n->sigfd >= 0)
		close(n->sigfd);
	if (n->tfd >= 0)
		close(n->tfd);
	free(n->c);
	free(n->buf);
	gmps_free(&n->srv);
	mpg_close(&n->pg);
}

int maind_run(const struct maind_config *cfg, const int *listen_fds, int n_fds, char *err,
	      size_t errlen)
{
	struct maind_net n = { .cfg = cfg, .ep = -1, .sigfd = -1, .tfd = -1 };
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };
	struct gmps_hooks h;
	struct gmp_keypair key;
	struct epoll_event ev;
	sigset_t mask;
	bool stop = false;
	uint64_t batch0 = 0;
	int rc = -1;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return -1;
	}
	if (maind_key_load(cfg->key_file, &key, err, errlen))
		return -1;
	n.buf = malloc(READ_CHUNK);
	if (!n.buf || mpg_open(&n.pg, cfg->conninfo, err, errlen)) {
		if (!n.buf)
			snprintf(err, errlen, "out of memory");
		free(n.buf);
		sodium_memzero(&key, sizeof(key));
		return -1;
	}
	mpg_hooks(&n.pg, &h);
	h.send = send_cb;
	h.log = log_cb;
	if (gmps_init(&n.srv, &key, GM_ID_SERVER, &h)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	n.changes = mpg_changes(&n.pg);
	n.partitions_at = real_ms() / 1000;
	for (int i = 0; i < n_fds; i++)
		n.lfd[n.n_lfd++] = listen_fds[i];
	for (unsigned int i = 0; i < cfg->n_listen; i++) {
		int fd = gm_listen(&cfg->listen[i], cfg->listen_len[i], 128, err, errlen);

		if (fd < 0)
			goto out;
		n.lfd[n.n_lfd++] = fd;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	n.ep = epoll_create1(EPOLL_CLOEXEC);
	n.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	n.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (n.ep < 0 || n.sigfd < 0 || n.tfd < 0 || timerfd_settime(n.tfd, 0, &its, NULL)) {
		snprintf(err, errlen, "epoll/signalfd/timerfd: %s", strerror(errno));
		goto out;
	}
	ev.events = EPOLLIN;
	ev.data.u64 = TOK_SIGNAL;
	epoll_ctl(n.ep, EPOLL_CTL_ADD, n.sigfd, &ev);
	ev.data.u64 = TOK_TIMER;
	epoll_ctl(n.ep, EPOLL_CTL_ADD, n.tfd, &ev);
	for (int i = 0; i < n.n_lfd; i++) {
		fcntl(n.lfd[i], F_SETFL, fcntl(n.lfd[i], F_GETFL) | O_NONBLOCK);
		ev.data.u64 = TOK_LISTEN | (uint64_t)i;
		epoll_ctl(n.ep, EPOLL_CTL_ADD, n.lfd[i], &ev);
	}
	fprintf(stderr, "maind: ready, %d listening socket(s)\n", n.n_lfd);
	while (!stop) {
		struct epoll_event evs[64];
		int k = epoll_wait(n.ep, evs, 64, -1);

		if (k < 0 && errno != EINTR) {
			snprintf(err, errlen, "epoll_wait: %s", strerror(errno));
			goto out;
		}
		for (int i = 0; i < k; i++) {
			uint64_t tok = evs[i].data.u64;
			struct mconn *t;

			if (tok == TOK_SIGNAL) {
				stop = true;
			} else if (tok == TOK_TIMER) {
				uint64_t x;

				/* the ticks run outside any batch: close the open one */
				if (gmps_flush(&n.srv, real_ms()))
					goto db_failed;
				batch0 = n.srv.st.frames;
				if (read(n.tfd, &x, sizeof(x)) > 0 && tick(&n)) {
					snprintf(err, errlen, "PostgreSQL: %s", n.pg.err);
					goto out;
				}
			} else if (tok & TOK_LISTEN) {
				do_accept(&n, n.lfd[tok & 0xff]);
			} else if ((t = by_token(&n, tok))) {
				if (n.srv.st.frames - batch0 >= cfg->max_batch) {
					if (gmps_flush(&n.srv, real_ms()))
						goto db_failed;
					batch0 = n.srv.st.frames;
					if (!by_token(&n, tok))
						continue;
				}
				if (evs[i].events & (EPOLLERR | EPOLLHUP) &&
				    !(evs[i].events & EPOLLIN)) {
					conn_close(&n, t);
					continue;
				}
				if (evs[i].events & EPOLLOUT && conn_flush(&n, t)) {
					conn_close(&n, t);
					continue;
				}
				if (evs[i].events & EPOLLIN)
					do_read(&n, t);
			}
		}
		if (gmps_flush(&n.srv, real_ms()))
			goto db_failed;
		batch0 = n.srv.st.frames;
	}
	if (gmps_flush(&n.srv, real_ms()))
		goto db_failed;
	fprintf(stderr, "maind: stopping (%llu hour rows, %llu commits)\n",
		(unsigned long long)n.pg.rows_hours, (unsigned long long)n.pg.commits);
	rc = 0;
	goto out;
db_failed:
	snprintf(err, errlen, "PostgreSQL: %s: stopping (nothing unacknowledged is lost)",
		 n.pg.err[0] ? n.pg.err : "write failed");
out:
	sodium_memzero(&key, sizeof(key));
	net_free(&n);
	return rc;
}
