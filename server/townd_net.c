// SPDX-License-Identifier: GPL-2.0
/*
 * townd network loop: one epoll over the listening sockets, the TCP
 * connections of modems and wired gateways, signals and two timers.
 *
 * Hostile peers (Documentation/townd.md, "Hostile clients"): a connection
 * keeps its slot only with authentic traffic. Each connection is on one of
 * two lists ordered by the time that matters for it: `new` (accept time:
 * closed first_frame_timeout later unless a frame opens first) and `auth`
 * (time of the last frame that opened: closed idle_timeout later). An
 * authentic frame moves its connection to the tail of `auth`, so the
 * sweep only looks at list heads: O(expired), whatever the number of
 * connections. Bytes, frames that do not open, replays: none of them
 * move a connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>

#include "townd_core.h"
#include "townd_net.h"
#include "townd_peer.h"
#include "townd_signed.h"
#include "townd_townnet.h"
#include "townd_upstream.h"
#include "sendq.h"
#include "listen.h"

#define OUT_MAX		(256 * 1024)	/* unsent bytes before a peer is dropped */
#define READ_CHUNK	(64 * 1024)
#define ACCEPT_BURST	256		/* accepts per listener event, then the others' turn */
#define ACCEPT_PAUSE_MS	1000		/* listeners off after accept4 failed (EMFILE...) */
#define LOG_WINDOW_MS	60000		/* peer_log_limit is per this window */
#define TICK_MIN_MS	100
#define TICK_MAX_MS	1000
#define TOK_SIGNAL	(1ull << 63)
#define TOK_TIMER	((1ull << 63) | 1)
#define TOK_RESUME	((1ull << 63) | 2)
#define TOK_UPSTREAM	((1ull << 63) | 3)	/* the link to the main server */
#define TOK_TOWNNET	((1ull << 63) | 0x100)	/* + 0..TOWND_TOWNNET_TOKENS-1: neighbour towns */
#define TOK_LISTEN	(1ull << 62)	/* | index */
#define NIL		UINT32_MAX

enum { T_NEW, T_AUTH };		/* the timeout lists */

struct tconn {
	int fd;				/* -1: free slot */
	uint32_t gen;
	uint32_t prev, next;		/* in list n->tl[list], NIL-ended */
	uint8_t list;
	bool want_out;			/* EPOLLOUT armed */
	int64_t since_ms;		/* accepted (new), last authentic frame (auth) */
	uint64_t rx_bytes;
	uint32_t refused;		/* frames that did not open, CRC and framing errors */
	struct townd_peer peer;
	uint8_t *out;
	size_t out_len, out_cap;
	struct gm_rx rx;
};

struct tlist {
	uint32_t head, tail;
};

/* At most peer_log_limit lines per window; the rest counted, then reported. */
struct ratelog {
	int64_t start_ms;
	uint32_t lines;
	uint64_t suppressed;
};

struct townd_net {
	const struct townd_config *cfg;
	struct townd_core *core;
	int ep, sigfd, tfd, rtfd;
	int spare;			/* reserve descriptor, given up to accept on EMFILE */
	int lfd[TOWND_LISTEN_MAX * 2];
	int n_lfd;
	bool paused;			/* listeners out of epoll until rtfd fires */
	uint32_t max_conn;		/* max_connections, or what the open-file limit allows */
	int64_t stats_due_ms;		/* counters of rejected input written then */
	struct tconn *c;
	uint32_t cap, used;
	uint32_t *freel;
	uint32_t n_free;
	struct tlist tl[2];
	struct townd_addrtab addrs;
	struct ratelog log;
	uint8_t *buf;
	/* hours to the main server (townd_upstream.c), run between batches */
	struct townd_upstream *up;
	/* operator-signed commands (townd_signed.c), run between batches */
	struct townd_signed *sig;
	uint32_t up_events;		/* of TOK_UPSTREAM in this iteration */
	/* loans with neighbour towns (townd_townnet.c), run between batches */
	struct townd_townnet *tn;
	uint32_t tn_events[TOWND_TOWNNET_TOKENS];	/* of its tokens in this iteration */
	int64_t tn_tick_ms;		/* mono: its last tick */
	bool up_tick;			/* the timer fired in this iteration */
};

static int64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ratelog_roll(struct townd_net *n, int64_t now)
{
	if (now - n->log.start_ms < LOG_WINDOW_MS)
		return;
	if (n->log.suppressed)
		fprintf(stderr, "townd: %llu peer lines suppressed (peer_log_limit %u a minute)\n",
			(unsigned long long)n->log.suppressed, n->cfg->peer_log_limit);
	n->log.start_ms = now;
	n->log.lines = 0;
	n->log.suppressed = 0;
}

/* A line about a peer or about accepting: at most peer_log_limit a minute. */
static void __attribute__((format(printf, 3, 4)))
peer_log(struct townd_net *n, const struct townd_peer *p, const char *fmt, ...)
{
	char ps[TOWND_PEER_STR], msg[256];
	va_list ap;

	ratelog_roll(n, mono_ms());
	if (n->log.lines >= n->cfg->peer_log_limit) {
		n->log.suppressed++;
		return;
	}
	n->log.lines++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p)
		fprintf(stderr, "townd: peer %s: %s\n", townd_peer_str(p, ps), msg);
	else
		fprintf(stderr, "townd: %s\n", msg);
}

static void list_unlink(struct townd_net *n, uint32_t i)
{
	struct tconn *t = &n->c[i];
	struct tlist *l = &n->tl[t->list];

	if (t->prev != NIL)
		n->c[t->prev].next = t->next;
	else
		l->head = t->next;
	if (t->next != NIL)
		n->c[t->next].prev = t->prev;
	else
		l->tail = t->prev;
	t->prev = t->next = NIL;
}

static void list_append(struct townd_net *n, uint32_t i, uint8_t list)
{
	struct tconn *t = &n->c[i];
	struct tlist *l = &n->tl[list];

	t->list = list;
	t->next = NIL;
	t->prev = l->tail;
	if (l->tail != NIL)
		n->c[l->tail].next = i;
	else
		l->head = i;
	l->tail = i;
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
	list_unlink(n, (uint32_t)(t - n->c));
	townd_addrtab_del(&n->addrs, &t->peer);
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
	struct townd_net *n = ctx;
	struct tconn *t = by_token(n, tok);

	if (!t)
		return;		/* the connection went away; the meter resends */
	if (t->out_len + len > OUT_MAX) {
		peer_log(n, &t->peer, "closed: %zu bytes of acknowledgements not read", t->out_len);
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

/* Listeners out of epoll for ACCEPT_PAUSE_MS: no busy loop on a pending connection. */
static void listeners_pause(struct townd_net *n)
{
	struct itimerspec its = { .it_value = { ACCEPT_PAUSE_MS / 1000,
						(ACCEPT_PAUSE_MS % 1000) * 1000000L } };

	if (n->paused)
		return;
	for (int i = 0; i < n->n_lfd; i++)
		epoll_ctl(n->ep, EPOLL_CTL_DEL, n->lfd[i], NULL);
	timerfd_settime(n->rtfd, 0, &its, NULL);
	n->paused = true;
}

static int listeners_watch(struct townd_net *n)
{
	for (int i = 0; i < n->n_lfd; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TOK_LISTEN | (uint64_t)i };

		if (epoll_ctl(n->ep, EPOLL_CTL_ADD, n->lfd[i], &ev) && errno != EEXIST)
			return -1;
	}
	n->paused = false;
	return 0;
}

static void listeners_resume(struct townd_net *n)
{
	if (n->spare < 0)
		n->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (listeners_watch(n)) {
		peer_log(n, NULL, "epoll: %s; not accepting for %d ms", strerror(errno),
			 ACCEPT_PAUSE_MS);
		n->paused = false;
		listeners_pause(n);
	}
}

/* accept4 errors that concern one connection only (man 2 accept). */
static bool accept_transient(int e)
{
	switch (e) {
	case EINTR: case ECONNABORTED: case EPROTO: case EPERM: case ENETDOWN:
	case ENOPROTOOPT: case EHOSTDOWN: case ENONET: case EHOSTUNREACH:
	case EOPNOTSUPP: case ENETUNREACH: case ETIMEDOUT:
		return true;
	default:
		return false;
	}
}

/*
 * accept4 failed for want of a resource. Out of descriptors, the reserve
 * one is given up to accept the peer and close it at once (it learns it
 * should come back later instead of waiting in the backlog); then the
 * listeners rest for ACCEPT_PAUSE_MS either way: level-triggered epoll
 * would otherwise report the same pending connection again at once.
 */
static void accept_failed(struct townd_net *n, int lfd, int e)
{
	n->core->st.accept_errors++;
	if ((e == EMFILE || e == ENFILE) && n->spare >= 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct townd_peer p;
		int fd;

		close(n->spare);
		fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (fd >= 0) {
			townd_peer_from(&p, (struct sockaddr *)&ss, sl);
			n->core->st.conn_refused++;
			peer_log(n, &p, "refused: out of file descriptors");
			close(fd);
		}
		n->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	peer_log(n, NULL, "accept: %s; not accepting for %d ms (%u connections open)",
		 strerror(e), ACCEPT_PAUSE_MS, n->used);
	listeners_pause(n);
}

static int conn_slots_grow(struct townd_net *n)
{
	uint32_t cap = n->cap ? n->cap * 2 : 64;
	struct tconn *c = realloc(n->c, cap * sizeof(*c));
	uint32_t *fl;

	if (!c)
		return -1;
	n->c = c;
	fl = realloc(n->freel, cap * sizeof(*fl));
	if (!fl)
		return -1;
	n->freel = fl;
	for (uint32_t k = cap; k > n->cap; k--) {
		memset(&n->c[k - 1], 0, sizeof(n->c[0]));
		n->c[k - 1].fd = -1;
		n->freel[n->n_free++] = k - 1;
	}
	n->cap = cap;
	return 0;
}

/* A new connection from p: refused (closed) or in a slot on the `new` list. */
static void conn_add(struct townd_net *n, int fd, const struct townd_peer *p)
{
	struct epoll_event ev;
	struct tconn *t;
	uint32_t i;
	int r;

	if (n->used >= n->max_conn) {
		n->core->st.conn_refused++;
		peer_log(n, p, "refused: %u connections open (max_connections)", n->used);
		close(fd);
		return;
	}
	r = townd_addrtab_add(&n->addrs, p, n->cfg->max_per_address);
	if (r <= 0 || (!n->n_free && conn_slots_grow(n))) {
		if (r == 0) {
			n->core->st.addr_refused++;
			peer_log(n, p, "refused: %u connections from this address (max_per_address)",
				 townd_addrtab_count(&n->addrs, p));
		} else {
			if (r > 0)
				townd_addrtab_del(&n->addrs, p);
			n->core->st.conn_refused++;
			peer_log(n, p, "refused: out of memory");
		}
		close(fd);
		return;
	}
	i = n->freel[--n->n_free];
	t = &n->c[i];
	t->fd = fd;
	t->want_out = false;
	t->since_ms = mono_ms();
	t->rx_bytes = 0;
	t->refused = 0;
	t->peer = *p;
	gm_rx_init(&t->rx);
	list_append(n, i, T_NEW);
	n->used++;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	ev.events = EPOLLIN;
	ev.data.u64 = token(n, i);
	if (epoll_ctl(n->ep, EPOLL_CTL_ADD, fd, &ev))
		conn_close(n, t);
}

static void do_accept(struct townd_net *n, int lfd)
{
	for (int k = 0; k < ACCEPT_BURST && !n->paused; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct townd_peer p;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (accept_transient(errno))
				continue;
			accept_failed(n, lfd, errno);
			return;
		}
		townd_peer_from(&p, (struct sockaddr *)&ss, sl);
		conn_add(n, fd, &p);
	}
}

static void do_read(struct townd_net *n, struct tconn *t)
{
	uint32_t i = (uint32_t)(t - n->c);
	uint64_t tok = token(n, i);
	ssize_t r = recv(t->fd, n->buf, READ_CHUNK, MSG_DONTWAIT);
	int64_t now = now_s();
	size_t off = 0;

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		if (t->refused)
			peer_log(n, &t->peer, "disconnected after %u refused frames (%llu bytes)",
				 t->refused, (unsigned long long)t->rx_bytes);
		conn_close(n, t);
		return;
	}
	if (r < 0)
		return;
	t->rx_bytes += (uint64_t)r;
	while (off < (size_t)r) {
		enum gm_rx_status st;
		int v;

		off += gm_rx_feed(&t->rx, n->buf + off, (size_t)r - off, &st);
		switch (st) {
		case GM_RX_FRAME:
			/* for the security counts: IPv4 in host order, else unknown */
			n->core->frame_addr = t->peer.family == 4 ?
				(uint32_t)t->peer.addr[0] << 24 | (uint32_t)t->peer.addr[1] << 16 |
				(uint32_t)t->peer.addr[2] << 8 | t->peer.addr[3] : 0;
			v = townd_core_frame(n->core, tok, &t->rx.hdr, t->rx.payload,
					     t->rx.payload_len, now);
			if (v != TOWND_AUTHENTIC) {
				/* a duplicate HELLO is answered, not refused, but keeps no slot */
				t->refused += v == TOWND_REJECTED;
				break;
			}
			/* authentic: the only thing that keeps a slot */
			t->since_ms = mono_ms();
			list_unlink(n, i);
			list_append(n, i, T_AUTH);
			break;
		case GM_RX_ERR_CRC:
			n->core->st.crc_errors++;
			t->refused++;
			break;
		case GM_RX_ERR_FRAMING:
		case GM_RX_ERR_OVERSIZE:
			n->core->st.framing_errors++;
			t->refused++;
			break;
		case GM_RX_NONE:
			break;
		}
	}
}

/*
 * Close the connections whose deadline passed (list heads only); write
 * the counters when stats_interval has passed. -1 if the database failed.
 */
static int sweep(struct townd_net *n)
{
	int64_t now = mono_ms();
	int64_t first_ms = (int64_t)n->cfg->first_frame_timeout_s * 1000;
	int64_t idle_ms = (int64_t)n->cfg->idle_timeout_s * 1000;
	uint32_t i;

	while ((i = n->tl[T_NEW].head) != NIL && now - n->c[i].since_ms >= first_ms) {
		struct tconn *t = &n->c[i];

		n->core->st.first_frame_timeouts++;
		peer_log(n, &t->peer, "closed: no authentic frame within %u s "
			 "(%llu bytes, %u frames refused)", n->cfg->first_frame_timeout_s,
			 (unsigned long long)t->rx_bytes, t->refused);
		conn_close(n, t);
	}
	while ((i = n->tl[T_AUTH].head) != NIL && now - n->c[i].since_ms >= idle_ms) {
		struct tconn *t = &n->c[i];

		n->core->st.idle_timeouts++;
		if (t->refused)
			peer_log(n, &t->peer, "closed: no authentic frame for %u s "
				 "(%u frames refused)", n->cfg->idle_timeout_s, t->refused);
		conn_close(n, t);
	}
	ratelog_roll(n, now);
	if (now < n->stats_due_ms)
		return 0;
	n->stats_due_ms = now + (int64_t)n->cfg->stats_interval_s * 1000;
	return townd_core_save(n->core);
}

/*
 * The main server's link and the hours, after the batch was committed
 * (never inside the ingest transaction): its socket's events, then on
 * every timer tick (or at once while a bounded step left work) the
 * building, sending, mode and retention steps. -1 if the database failed.
 */
static int upstream_step(struct townd_net *n)
{
	int64_t mono = mono_ms(), real = now_s();

	if (n->up_events) {
		townd_upstream_event(n->up, n->up_events, mono, real);
		n->up_events = 0;
	}
	if (!n->up_tick && !townd_upstream_busy(n->up))
		return 0;
	n->up_tick = false;
	return townd_upstream_tick(n->up, mono, real);
}

/* A loan opened or ended: reported to the main server through the upstream outbox. */
static void townnet_report(void *ctx, struct gmp_msg *loan)
{
	struct townd_net *n = ctx;

	if (n->up && n->up->tier_open && townd_tier_record(&n->up->tier, loan) < 0)
		fprintf(stderr, "townd: loan %lld/%lld not stored in the upstream outbox\n",
			(long long)loan->loan.lender, (long long)loan->loan.loan_id);
}

static void townnet_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	if (level <= LOG_NOTICE || getenv("TOWND_DEBUG_LOANS"))
		fprintf(stderr, "townd: %s\n", msg);
}

/*
 * The balance between the loans and the allocation, once a second: the
 * loans in force go into the allocation's pool (decided at once), and the
 * allocation's decision says what the
 * town needs from outside in total (what it borrows now plus its
 * shortfall, less any surplus) and what it could lend in total (its
 * surplus plus what it lends now, less what it borrows: borrowed power is
 * never lent on).
 */
static void townnet_balance(void *ctx, int64_t borrowed, int64_t lent, int64_t *need,
			    int64_t *surplus)
{
	struct townd_core *c = ((struct townd_net *)ctx)->core;
	struct townd_alloc *a = &c->alloc;
	int64_t sf, sp;

	townd_alloc_set_borrowed(a, borrowed);
	townd_alloc_set_lent(a, lent);
	/*
	 * The figures below are the last decision's: decide with these loans
	 * first, or a loan just opened would still count as missing and be
	 * asked for again. A failure is the loop's to act on (its own
	 * allocation tick fails the same way and stops townd).
	 */
	(void)townd_core_alloc_tick(c);
	sf = townd_alloc_shortfall(a);
	sp = townd_alloc_surplus(a);
	*need = borrowed + sf - sp > 0 ? borrowed + sf - sp : 0;
	*surplus = sp - sf + lent - borrowed > 0 ? sp - sf + lent - borrowed : 0;
	if (a->stopped) {
		/* stopped: no new loan either way; those in force run on while needed */
		*need = *need < borrowed ? *need : borrowed;
		*surplus = *surplus < lent ? *surplus : lent;
	}
}

/*
 * The neighbour towns' links and the loans, after the batch was committed
 * (never inside the ingest transaction): their sockets' events, then once
 * a second the loans' timers and the balance with the allocation. -1 if
 * the database failed.
 */
static int townnet_step(struct townd_net *n)
{
	int64_t mono = mono_ms(), real = now_s() * 1000;

	if (!n->tn)
		return 0;
	for (int i = 0; i < TOWND_TOWNNET_TOKENS; i++)
		if (n->tn_events[i]) {
			uint32_t ev = n->tn_events[i];

			n->tn_events[i] = 0;
			if (townd_townnet_event(n->tn, TOK_TOWNNET + (uint64_t)i, ev, mono, real))
				return -1;
		}
	if (mono - n->tn_tick_ms < 1000)
		return 0;
	n->tn_tick_ms = mono;
	return townd_townnet_tick(n->tn, mono, real);
}

static int townnet_open(struct townd_net *n, const struct townd_config *cfg,
			const struct gmp_keypair *key, char *err, size_t errlen)
{
	const struct townd_townnet_hooks h = { .ctx = n, .report = townnet_report,
					       .balance = townnet_balance, .log = townnet_log };

	if (!cfg->tn.n)
		return 0;
	n->tn = calloc(1, sizeof(*n->tn));
	if (!n->tn) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (townd_townnet_init(n->tn, cfg, &n->core->db, key, &h, -1, err, errlen)) {
		free(n->tn);
		n->tn = NULL;
		return -1;
	}
	return 0;
}

/*
 * Descriptors townd needs besides its connections: stdio, epoll,
 * signalfd, two timerfds, the reserve descriptor, SQLite's database, WAL,
 * shared memory and temporary files, and a margin.
 */
#define FD_RESERVE	32

int townd_fd_limit(const struct townd_config *cfg, unsigned int n_listen, uint32_t *max_conn,
		   char *err, size_t errlen)
{
	rlim_t own = FD_RESERVE + n_listen, need = (rlim_t)cfg->max_connections + own;
	char where[300];
	struct rlimit rl;

	*max_conn = cfg->max_connections;
	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		snprintf(err, errlen, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return -1;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		struct rlimit up = { rl.rlim_max, rl.rlim_max };

		/* as far as allowed: the hard limit may be above fs.nr_open */
		if (setrlimit(RLIMIT_NOFILE, &up)) {
			up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ?
				      need : rl.rlim_max;
			if (up.rlim_cur > rl.rlim_cur)
				setrlimit(RLIMIT_NOFILE, &up);
		}
		if (getrlimit(RLIMIT_NOFILE, &rl)) {
			snprintf(err, errlen, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
			return -1;
		}
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return 0;
	if (!cfg->max_connections_line && rl.rlim_cur > own) {
		/* the default, not the operator's figure: as many as the limit allows */
		*max_conn = (uint32_t)(rl.rlim_cur - own);
		snprintf(err, errlen, "max_connections not configured: %u (the open-file limit "
			 "%llu less %u for townd itself) instead of the default %u", *max_conn,
			 (unsigned long long)rl.rlim_cur, (unsigned int)own, cfg->max_connections);
		return 1;
	}
	if (cfg->source[0] && cfg->max_connections_line)
		snprintf(where, sizeof(where), "%s:%u: [server] key 'max_connections'",
			 cfg->source, cfg->max_connections_line);
	else
		snprintf(where, sizeof(where), "%s%s[server] key 'max_connections'",
			 cfg->source, cfg->source[0] ? ": " : "");
	snprintf(err, errlen, "%s: %u connections need %llu open files (%u for townd itself), "
		 "but the limit is %llu (hard %llu): raise LimitNOFILE= in townd.service or "
		 "lower max_connections", where, cfg->max_connections, (unsigned long long)need,
		 (unsigned int)own, (unsigned long long)rl.rlim_cur,
		 rl.rlim_max == RLIM_INFINITY ? ~0ull : (unsigned long long)rl.rlim_max);
	return -1;
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
	if (n->rtfd >= 0)
		close(n->rtfd);
	if (n->spare >= 0)
		close(n->spare);
	townd_addrtab_free(&n->addrs);
	if (n->tn)
		townd_townnet_free(n->tn);
	free(n->tn);
	if (n->up)
		townd_upstream_free(n->up);
	free(n->up);
	free(n->sig);
	free(n->c);
	free(n->freel);
	free(n->buf);
	if (n->core)
		townd_core_free(n->core);
	free(n->core);
}

/* The sweep's period: a quarter of the shortest timeout, within 0.1..1 s. */
static struct timespec tick_of(const struct townd_config *cfg)
{
	uint32_t s = cfg->first_frame_timeout_s < cfg->idle_timeout_s ?
		     cfg->first_frame_timeout_s : cfg->idle_timeout_s;
	int64_t ms = (int64_t)s * 1000 / 4;

	if (ms < TICK_MIN_MS)
		ms = TICK_MIN_MS;
	if (ms > TICK_MAX_MS)
		ms = TICK_MAX_MS;
	return (struct timespec){ ms / 1000, (long)(ms % 1000) * 1000000L };
}

static void supply_cb(void *ctx, int64_t capacity_w)
{
	townd_core_set_capacity(ctx, capacity_w);
}

static void signed_queued(void *ctx, uint16_t meter)
{
	townd_core_kick(ctx, meter);	/* the command goes with an ack at once */
}

static void signed_stopped(void *ctx, bool stopped)
{
	townd_alloc_set_stopped(&((struct townd_core *)ctx)->alloc, stopped);
}

/* Signed commands: the operator keys, the replay memory, a stop in force. */
static int signed_open(struct townd_net *n, const struct townd_config *cfg, char *err,
		       size_t errlen)
{
	char by[80];
	int64_t since = 0;
	int rc;

	n->sig = malloc(sizeof(*n->sig));
	if (!n->sig) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (townd_signed_init(n->sig, cfg, &n->core->db, err, errlen))
		return -1;
	n->sig->sec = &n->core->sec;
	n->sig->ctx = n->core;
	n->sig->queued = signed_queued;
	n->sig->stopped = signed_stopped;
	n->sig->supply = supply_cb;
	if (!n->sig->keys.n)
		fprintf(stderr, "townd: no operator keys ([commands] operator_keys): signed town "
			"commands are refused\n");
	rc = townd_town_stopped(&n->core->db, &since, by, sizeof(by));
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", cfg->database, sqlite3_errmsg(n->core->db.db));
		return -1;
	}
	if (rc) {
		fprintf(stderr, "townd: the town is stopped (by %s since %lld): no loans, no new "
			"grants\n", by, (long long)since);
		townd_alloc_set_stopped(&n->core->alloc, true);
	}
	return 0;
}

int townd_run(const struct townd_config *cfg, const int *listen_fds, int n_fds,
	      char *err, size_t errlen)
{
	struct townd_net n = { .cfg = cfg, .ep = -1, .sigfd = -1, .tfd = -1, .rtfd = -1,
			       .spare = -1, .tl = { { NIL, NIL }, { NIL, NIL } } };
	struct itimerspec its;
	struct epoll_event ev;
	struct gmp_keypair key;
	sigset_t mask;
	bool stop = false;
	uint64_t batch0 = 0;
	int rc = townd_fd_limit(cfg, (unsigned int)n_fds + cfg->n_listen, &n.max_conn, err, errlen);

	if (rc < 0)
		return -1;
	if (rc > 0)
		fprintf(stderr, "townd: %s\n", err);	/* the default lowered: said, not fatal */
	rc = -1;
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return -1;
	}
	if (townd_key_load(cfg->key_file, &key, err, errlen))
		return -1;
	townd_addrtab_init(&n.addrs);
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
	n.core->stats_every_s = cfg->stats_interval_s;
	if (townd_core_alloc_config(n.core, &(struct ta_cfg){
			.capacity_w = cfg->grid_capacity_w, .base_w = cfg->meter_allocation_w,
			.hysteresis_w = cfg->alloc_hysteresis_w,
			.default_duration_s = cfg->alloc_default_duration_s,
			.max_duration_s = cfg->alloc_max_duration_s }, err, errlen))
		goto out;
	/* the town's time zone: tariff periods of the hours are local minutes */
	setenv("TZ", cfg->town.timezone, 1);
	tzset();
	n.up = calloc(1, sizeof(*n.up));
	if (!n.up || townd_upstream_init(n.up, cfg, &n.core->db, &key, err, errlen)) {
		if (!n.up)
			snprintf(err, errlen, "out of memory");
		free(n.up);
		n.up = NULL;
		goto out;
	}
	/* maind's GMP_SUPPLY, once on disk, sets the allocation's grid capacity */
	n.up->on_supply = supply_cb;
	n.up->on_supply_ctx = n.core;
	if (signed_open(&n, cfg, err, errlen))
		goto out;
	n.up->sig = n.sig;
	if (townnet_open(&n, cfg, &key, err, errlen))
		goto out;
	sodium_memzero(&key, sizeof(key));
	for (int i = 0; i < n_fds; i++)
		n.lfd[n.n_lfd++] = listen_fds[i];
	for (unsigned int i = 0; i < cfg->n_listen; i++) {
		int fd = gm_listen(&cfg->listen[i], cfg->listen_len[i], 1024, err, errlen);

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
	its.it_interval = its.it_value = tick_of(cfg);
	n.ep = epoll_create1(EPOLL_CLOEXEC);
	n.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	n.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	n.rtfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	n.spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (n.ep < 0 || n.sigfd < 0 || n.tfd < 0 || n.rtfd < 0 || n.spare < 0 ||
	    timerfd_settime(n.tfd, 0, &its, NULL)) {
		snprintf(err, errlen, "epoll/signalfd/timerfd//dev/null: %s", strerror(errno));
		goto out;
	}
	ev.events = EPOLLIN;
	ev.data.u64 = TOK_SIGNAL;
	epoll_ctl(n.ep, EPOLL_CTL_ADD, n.sigfd, &ev);
	ev.data.u64 = TOK_TIMER;
	epoll_ctl(n.ep, EPOLL_CTL_ADD, n.tfd, &ev);
	ev.data.u64 = TOK_RESUME;
	epoll_ctl(n.ep, EPOLL_CTL_ADD, n.rtfd, &ev);
	townd_upstream_attach(n.up, n.ep, TOK_UPSTREAM);
	if (n.tn && townd_townnet_attach(n.tn, n.ep, TOK_TOWNNET)) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		goto out;
	}
	for (int i = 0; i < n.n_lfd; i++)
		fcntl(n.lfd[i], F_SETFL, fcntl(n.lfd[i], F_GETFL) | O_NONBLOCK);
	if (listeners_watch(&n)) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		goto out;
	}
	n.log.start_ms = mono_ms();
	n.stats_due_ms = n.log.start_ms + (int64_t)cfg->stats_interval_s * 1000;
	sd_notify(0, "READY=1\nSTATUS=accepting meter connections");
	fprintf(stderr, "townd: ready, %d listening socket(s), database %s\n", n.n_lfd,
		cfg->database);
	while (!stop) {
		struct epoll_event evs[256];
		int k = epoll_wait(n.ep, evs, 256, townd_upstream_busy(n.up) ? 0 : n.tn ? 1000 : -1);

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

				if (read(n.tfd, &x, sizeof(x)) > 0 && sweep(&n)) {
					snprintf(err, errlen, "database %s: write failed, "
						 "stopping", cfg->database);
					goto out;
				}
				n.up_tick = true;
			} else if (tok == TOK_UPSTREAM) {
				n.up_events |= evs[i].events;
			} else if (n.tn && townd_townnet_owns(n.tn, tok)) {
				n.tn_events[tok - TOK_TOWNNET] |= evs[i].events;
			} else if (tok == TOK_RESUME) {
				uint64_t x;

				if (read(n.rtfd, &x, sizeof(x)) > 0)
					listeners_resume(&n);
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
		if (townd_core_flush(n.core, send_cb, &n) || townd_core_alloc_tick(n.core) ||
		    townd_signed_tick(n.sig, now_s())) {
			snprintf(err, errlen, "database %s: write failed, stopping",
				 cfg->database);
			goto out;
		}
		batch0 = n.core->st.frames;
		if (upstream_step(&n)) {
			snprintf(err, errlen, "database %s: write failed, stopping",
				 cfg->database);
			goto out;
		}
		if (townnet_step(&n)) {
			snprintf(err, errlen, "database %s: write failed (loans), stopping",
				 cfg->database);
			goto out;
		}
	}
	sd_notify(0, "STOPPING=1");
	n.log.start_ms -= LOG_WINDOW_MS;	/* report what the last window suppressed */
	ratelog_roll(&n, mono_ms());
	/* counters not written yet (rejected input) */
	if (townd_core_flush(n.core, send_cb, &n) || townd_core_save(n.core) ||
	    townd_upstream_save(n.up)) {
		snprintf(err, errlen, "database %s: write failed", cfg->database);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(&key, sizeof(key));
	net_free(&n);
	return rc;
}
