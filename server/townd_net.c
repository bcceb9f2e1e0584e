// SPDX-License-Identifier: GPL-2.0
/* townd network loop. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "townd_core.h"
#include "townd_net.h"

#define OUT_MAX		(256 * 1024)	/* unsent bytes before a peer is dropped */
#define READ_CHUNK	(64 * 1024)
#define TOK_SIGNAL	(1ull << 63)
#define TOK_TIMER	((1ull << 63) | 1)
#define TOK_LISTEN	(1ull << 62)	/* | index */

struct tconn {
	int fd;				/* -1: free slot */
	uint32_t gen;
	int64_t last_rx;
	bool want_out;			/* EPOLLOUT armed */
	uint8_t *out;
	size_t out_len, out_cap;
	struct gm_rx rx;
};

struct townd_net {
	const struct townd_config *cfg;
	struct townd_core *core;
	int ep, sigfd, tfd;
	int lfd[TOWND_LISTEN_MAX * 2];
	int n_lfd;
	struct tconn *c;
	uint32_t cap, used;
	uint32_t *freel;
	uint32_t n_free;
	uint8_t *buf;
};

static int64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

static int64_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static uint64_t token(const struct townd_net *n, uint32_t i)
{
	return (uint64_t)n->c[i].gen << 32 | i;
}

static struct tconn *by_token(struct townd_net *n, uint64_t tok)
{
	uint32_t i = (uint32_t)tok;

	if (i >= n->cap || n->c[i].fd < 0 || n->c[i].gen != (uint32_t)(tok >> 32))
		return NULL;
	return &n->c[i];
}

static void conn_close(struct townd_net *n, struct tconn *t)
{
	epoll_ctl(n->ep, EPOLL_CTL_DEL, t->fd, NULL);
	close(t->fd);
	t->fd = -1;
	t->gen++;
	free(t->out);
	t->out = NULL;
	t->out_len = t->out_cap = 0;
	n->freel[n->n_free++] = (uint32_t)(t - n->c);
	n->used--;
}

static int conn_flush(struct townd_net *n, struct tconn *t)
{
	struct epoll_event ev = { .data.u64 = 0 };

	while (t->out_len) {
		ssize_t w = send(t->fd, t->out, t->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			return -1;
		}
		memmove(t->out, t->out + w, t->out_len - (size_t)w);
		t->out_len -= (size_t)w;
	}
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
	struct townd_net *n = ctx;
	struct tconn *t = by_token(n, tok);

	if (!t)
		return;		/* the connection went away; the meter resends */
	if (t->out_len + len > OUT_MAX) {
		conn_close(n, t);
		return;
	}
	if (t->out_len + len > t->out_cap) {
		size_t cap = t->out_cap ? t->out_cap * 2 : 1024;
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

static void do_accept(struct townd_net *n, int lfd)
{
	for (;;) {
		struct epoll_event ev;
		struct tconn *t;
		uint32_t i;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (n->used >= n->cfg->max_connections) {
			close(fd);
			continue;
		}
		if (!n->n_free) {
			uint32_t cap = n->cap ? n->cap * 2 : 64;
			struct tconn *c = realloc(n->c, cap * sizeof(*c));
			uint32_t *fl;

			if (!c) {
				close(fd);
				return;
			}
			n->c = c;
			fl = realloc(n->freel, cap * sizeof(*fl));
			if (!fl) {
				close(fd);
				return;
			}
			n->freel = fl;
			for (uint32_t k = cap; k > n->cap; k--) {
				memset(&n->c[k - 1], 0, sizeof(n->c[0]));
				n->c[k - 1].fd = -1;
				n->freel[n->n_free++] = k - 1;
			}
			n->cap = cap;
		}
		i = n->freel[--n->n_free];
		t = &n->c[i];
		t->fd = fd;
		t->want_out = false;
		t->last_rx = mono_s();
		gm_rx_init(&t->rx);
		n->used++;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
		ev.events = EPOLLIN;
		ev.data.u64 = token(n, i);
		if (epoll_ctl(n->ep, EPOLL_CTL_ADD, fd, &ev))
			conn_close(n, t);
	}
}

static void do_read(struct townd_net *n, struct tconn *t)
{
	uint64_t tok = token(n, (uint32_t)(t - n->c));
	ssize_t r = recv(t->fd, n->buf, READ_CHUNK, MSG_DONTWAIT);
	int64_t now = now_s();
	size_t off = 0;

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(n, t);
		return;
	}
	if (r < 0)
		return;
	t->last_rx = mono_s();
	while (off < (size_t)r) {
		enum gm_rx_status st;

		off += gm_rx_feed(&t->rx, n->buf + off, (size_t)r - off, &st);
		switch (st) {
		case GM_RX_FRAME:
			townd_core_frame(n->core, tok, &t->rx.hdr, t->rx.payload,
					 t->rx.payload_len, now);
			break;
		case GM_RX_ERR_CRC:
			n->core->st.crc_errors++;
			break;
		case GM_RX_ERR_FRAMING:
		case GM_RX_ERR_OVERSIZE:
			n->core->st.framing_errors++;
			break;
		case GM_RX_NONE:
			break;
		}
	}
}

static void idle_sweep(struct townd_net *n)
{
	int64_t now = mono_s();

	for (uint32_t i = 0; i < n->cap; i++)
		if (n->c[i].fd >= 0 && now - n->c[i].last_rx > n->cfg->idle_timeout_s)
			conn_close(n, &n->c[i]);
}

static int open_listener(const struct sockaddr_storage *ss, socklen_t len, char *err,
			 size_t errlen)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){ 1 }, sizeof(int));
	if (bind(fd, (const struct sockaddr *)ss, len) || listen(fd, 1024)) {
		snprintf(err, errlen, "listen: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void net_free(struct townd_net *n)
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
	free(n->freel);
	free(n->buf);
	if (n->core)
		townd_core_free(n->core);
	free(n->core);
}

int townd_run(const struct townd_config *cfg, const int *listen_fds, int n_fds,
	      char *err, size_t errlen)
{
	struct townd_net n = { .cfg = cfg, .ep = -1, .sigfd = -1, .tfd = -1 };
	struct itimerspec its = { .it_interval = { 5, 0 }, .it_value = { 5, 0 } };
	struct epoll_event ev;
	struct gmp_keypair key;
	sigset_t mask;
	bool stop = false;
	uint64_t batch0 = 0;
	int rc = -1;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return -1;
	}
	if (townd_key_load(cfg->key_file, &key, err, errlen))
		return -1;
	n.core = malloc(sizeof(*n.core));
	n.buf = malloc(READ_CHUNK);
	if (!n.core || !n.buf) {
		snprintf(err, errlen, "out of memory");
		free(n.core);
		free(n.buf);
		return -1;
	}
	if (townd_core_init(n.core, cfg->database, cfg->sync_full, &key, err, errlen)) {
		free(n.core);
		n.core = NULL;
		goto out;
	}
	if (townd_core_set_key_file(n.core, cfg->key_file, err, errlen))
		goto out;
	sodium_memzero(&key, sizeof(key));
	for (int i = 0; i < n_fds; i++)
		n.lfd[n.n_lfd++] = listen_fds[i];
	for (unsigned int i = 0; i < cfg->n_listen; i++) {
		int fd = open_listener(&cfg->listen[i], cfg->listen_len[i], err, errlen);

		if (fd < 0)
			goto out;
		n.lfd[n.n_lfd++] = fd;
	}
	if (!n.n_lfd) {
		snprintf(err, errlen, "no 'listen' address configured and no socket passed by systemd");
		goto out;
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
		if (epoll_ctl(n.ep, EPOLL_CTL_ADD, n.lfd[i], &ev)) {
			snprintf(err, errlen, "epoll: %s", strerror(errno));
			goto out;
		}
	}
	sd_notify(0, "READY=1\nSTATUS=accepting meter connections");
	fprintf(stderr, "townd: ready, %d listening socket(s), database %s\n", n.n_lfd,
		cfg->database);
	while (!stop) {
		struct epoll_event evs[256];
		int k = epoll_wait(n.ep, evs, 256, -1);

		if (k < 0 && errno != EINTR) {
			snprintf(err, errlen, "epoll_wait: %s", strerror(errno));
			goto out;
		}
		for (int i = 0; i < k; i++) {
			uint64_t tok = evs[i].data.u64;
			struct tconn *t;

			if (tok == TOK_SIGNAL) {
				stop = true;
			} else if (tok == TOK_TIMER) {
				uint64_t x;

				if (read(n.tfd, &x, sizeof(x)) > 0)
					idle_sweep(&n);
			} else if (tok & TOK_LISTEN) {
				do_accept(&n, n.lfd[tok & 0xff]);
			} else if ((t = by_token(&n, tok))) {
				if (n.core->st.frames - batch0 >= cfg->max_batch) {
					if (townd_core_flush(n.core, send_cb, &n)) {
						snprintf(err, errlen, "database %s: write failed, "
							 "stopping", cfg->database);
						goto out;
					}
					batch0 = n.core->st.frames;
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
		if (townd_core_flush(n.core, send_cb, &n)) {
			snprintf(err, errlen, "database %s: write failed, stopping",
				 cfg->database);
			goto out;
		}
		batch0 = n.core->st.frames;
	}
	sd_notify(0, "STOPPING=1");
	/* counters of the last iteration (e.g. only bad frames) */
	if (townd_core_flush(n.core, send_cb, &n) || townd_core_save(n.core)) {
		snprintf(err, errlen, "database %s: write failed", cfg->database);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(&key, sizeof(key));
	net_free(&n);
	return rc;
}
