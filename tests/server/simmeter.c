// SPDX-License-Identifier: GPL-2.0
/* Simulated meters for townd's host tests and benchmarks (gmproto v2). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "simmeter.h"

int simmeter_init(struct simmeter *m, uint16_t id, const struct gmp_keypair *kp,
		  const uint8_t town_pk[GMP_KEY_LEN])
{
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->kp = *kp;
	return gmp_lt_meter(&m->lt, kp, town_pk);
}

int simmeter_hello_with(struct simmeter *m, const struct sim_hello *hv, uint8_t *wire,
			size_t size)
{
	struct gm_hdr h = { .version = GM_VERSION, .type = GM_TYPE_DATA, .flags = 0,
			    .hop_limit = GM_HOP_DEFAULT, .src = m->id, .dst = GM_ID_SERVER,
			    .seq = m->frame_seq++ };
	struct gmp_addr a = { .type = GM_TYPE_DATA, .flags = 0, .src = m->id,
			      .dst = GM_ID_SERVER };
	struct gmp_msg hello = { .type = GMP_HELLO, .hello = { .now_ms = hv->now_ms,
		.clock_trusted = hv->clock_trusted, .cmd_floor = hv->cmd_floor,
		.next_seq = hv->next_seq, .first_held = hv->first_held, .flags = hv->flags } };
	uint8_t plain[GMP_HS_PLAIN_MAX], env[GM_MAX_PAYLOAD];
	size_t off = 0;
	int len;

	randombytes_buf(hello.hello.rm, GMP_RAND_LEN);
	memcpy(m->rm, hello.hello.rm, GMP_RAND_LEN);
	if (gmp_encode(&hello, plain, sizeof(plain), &off))
		return -1;
	len = gmp_hs_seal(&m->lt, &a, plain, off, env, sizeof(env));
	if (len < 0)
		return -1;
	return gm_frame_encode(&h, env, (size_t)len, wire, size);
}

int simmeter_hello(struct simmeter *m, int64_t cmd_floor, uint8_t *wire, size_t size)
{
	struct sim_hello hv = { .now_ms = 1790000000000LL, .clock_trusted = 1,
				.cmd_floor = cmd_floor, .next_seq = 1, .first_held = 1 };

	return simmeter_hello_with(m, &hv, wire, size);
}

void sim_reading(uint16_t id, int64_t seq, struct gmp_msg *out)
{
	memset(out, 0, sizeof(*out));
	out->type = GMP_READING;
	out->reading.seq = seq;
	out->reading.start = 1790000000 + 60 * seq;	/* 2026-09 */
	out->reading.interval_s = 60;
	out->reading.import_mwh = (int64_t)id * 1000 + seq % 997;
	out->reading.export_mwh = seq % 7;
	out->reading.renew_mwh = (int64_t)id % 5;
	out->reading.flags = seq % 50 == 0;
}

int simmeter_frame(struct simmeter *m, const struct gmp_msg *msgs, size_t n,
		   unsigned int flags, uint8_t *wire, size_t size)
{
	struct gm_hdr h = { .version = GM_VERSION, .type = GM_TYPE_DATA, .flags = (u8)flags,
			    .hop_limit = GM_HOP_DEFAULT, .src = m->id, .dst = GM_ID_SERVER,
			    .seq = m->frame_seq++ };
	struct gmp_addr a = { .type = GM_TYPE_DATA, .flags = (uint8_t)flags, .src = m->id,
			      .dst = GM_ID_SERVER };
	uint8_t plain[GMP_PLAIN_MAX], env[GM_MAX_PAYLOAD];
	size_t off = 0;
	int len;

	for (size_t i = 0; i < n; i++)
		if (gmp_encode(&msgs[i], plain, sizeof(plain), &off))
			return -1;
	len = gmp_seal(&m->s, &a, plain, off, env, sizeof(env));
	if (len < 0)
		return -1;
	return gm_frame_encode(&h, env, (size_t)len, wire, size);
}

int sim_send_range(struct simmeter *m, int fd, int64_t from, int64_t to, int k)
{
	struct gmp_msg msgs[32];
	uint8_t wire[GM_MAX_WIRE];

	if (k < 1 || k > 32)
		return -1;
	while (from <= to) {
		int n = 0, len;

		while (n < k && from <= to)
			sim_reading(m->id, from++, &msgs[n++]);
		len = simmeter_frame(m, msgs, (size_t)n, GM_FLAG_ACK_REQ, wire, sizeof(wire));
		if (len < 0 || sim_send_all(fd, wire, (size_t)len))
			return -1;
	}
	return 0;
}

int sim_connect(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	return fd;
}

int sim_send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sim_rx_init(struct sim_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
	gm_rx_init(&rx->rx);
}

int simmeter_open_ack(struct simmeter *m, const struct gm_hdr *h, const uint8_t *payload,
		      size_t len, struct sim_ack *ack)
{
	struct gmp_addr a = { .type = h->type, .flags = h->flags, .src = h->src, .dst = h->dst };
	uint8_t plain[GM_MAX_PAYLOAD];
	struct gmp_msg g;
	size_t o = 0;
	int n;

	memset(ack, 0, sizeof(*ack));
	ack->upto = -1;
	if (h->dst != m->id || h->src != GM_ID_SERVER)
		return 0;
	if (gmp_envelope_kind(payload, len, NULL) == GMP_KIND_HANDSHAKE) {
		n = gmp_hs_open(&m->lt, &a, payload, len, plain, sizeof(plain));
		if (n < 0 || gmp_decode_next(plain, (size_t)n, &o, &g) != 1)
			return 0;
		if (g.type == GMP_REHELLO) {
			ack->rehello = true;
			return 1;
		}
		if (g.type != GMP_WELCOME || memcmp(g.welcome.rm, m->rm, GMP_RAND_LEN))
			return 0;
		gmp_session_derive(&m->s, &m->lt, m->rm, g.welcome.rt, (uint8_t)g.welcome.sid);
		ack->welcome = true;
		ack->upto = g.welcome.upto;
		ack->time_ms = g.welcome.now_ms;
		return 1;
	}
	n = gmp_open(&m->s, &a, payload, len, plain, sizeof(plain), NULL);
	if (n < 0)
		return 0;
	while (gmp_decode_next(plain, (size_t)n, &o, &g) == 1) {
		if (g.type == GMP_ACK)
			ack->upto = g.ack.upto;
		else if (g.type == GMP_SIGNED && m->sig)
			simmeter_take_signed(m, &g);
	}
	return 1;
}

/* As meterd: decode -> verify -> seen? -> remember -> carry out -> result. */
void simmeter_take_signed(struct simmeter *m, const struct gmp_msg *g)
{
	struct sim_signed *s = m->sig;
	struct gmc_cmd c = { 0 };
	int64_t status;

	if (g->signed_cmd.tseq <= s->floor || s->n == SIM_SIGNED_MAX)
		return;		/* handled before (its result went), or no room: resent */
	memcpy(s->last_blob, g->signed_cmd.blob, (size_t)g->signed_cmd.len);
	s->last_len = (size_t)g->signed_cmd.len;
	if (gmc_decode(g->signed_cmd.blob, (size_t)g->signed_cmd.len, &c))
		status = GMP_CMD_INVALID;
	else
		status = gmc_verify(&c, s->keys, &s->pol, s->town, m->id, s->now);
	if (!status && gmc_seen_has(&s->seen, c.id))
		status = GMP_CMD_REPLAY;
	if (!status && gmc_seen_add(&s->seen, c.id, c.expires, s->now))
		status = GMP_CMD_REFUSED;
	if (status)
		s->refused++;
	else
		s->executed++;
	s->floor = g->signed_cmd.tseq;
	s->r[s->n].tseq = g->signed_cmd.tseq;
	s->r[s->n].status = status;
	s->r[s->n].id = c.id;
	s->r[s->n++].action = c.action;
}

size_t simmeter_results(struct simmeter *m, struct gmp_msg *out, size_t max)
{
	size_t n = 0;

	for (; m->sig && n < m->sig->n && n < max; n++)
		out[n] = (struct gmp_msg){ .type = GMP_CMD_RESULT,
					   .cmd_result = { .tseq = m->sig->r[n].tseq,
							   .status = m->sig->r[n].status } };
	if (m->sig) {
		memmove(m->sig->r, m->sig->r + n, (m->sig->n - n) * sizeof(m->sig->r[0]));
		m->sig->n -= n;
	}
	return n;
}

int sim_read_frames(int fd, struct sim_rx *rx, int timeout_ms, sim_frame_cb cb, void *ctx)
{
	int64_t end = mono_ms() + timeout_ms;

	for (;;) {
		while (rx->off < rx->len) {
			enum gm_rx_status st;
			int r;

			rx->off += gm_rx_feed(&rx->rx, rx->buf + rx->off, rx->len - rx->off, &st);
			if (st != GM_RX_FRAME)
				continue;
			r = cb(ctx, &rx->rx.hdr, rx->rx.payload, rx->rx.payload_len);
			if (r)
				return r;
		}
		{
			int64_t left = end - mono_ms();
			struct pollfd p = { .fd = fd, .events = POLLIN };
			ssize_t r;

			if (left <= 0)
				return 0;
			if (poll(&p, 1, (int)left) <= 0)
				continue;
			r = read(fd, rx->buf, sizeof(rx->buf));
			if (r <= 0)
				return -1;
			rx->len = (size_t)r;
			rx->off = 0;
		}
	}
}

struct wait_ctx {
	struct simmeter *m;
	struct sim_ack *ack;
};

static int wait_cb(void *ctx, const struct gm_hdr *h, const uint8_t *payload, size_t len)
{
	struct wait_ctx *w = ctx;

	return simmeter_open_ack(w->m, h, payload, len, w->ack) &&
	       (w->ack->upto >= 0 || w->ack->rehello);
}

int sim_wait_ack(struct simmeter *m, int fd, struct sim_rx *rx, int timeout_ms,
		 struct sim_ack *ack)
{
	struct wait_ctx w = { m, ack };

	memset(ack, 0, sizeof(*ack));
	ack->upto = -1;
	return sim_read_frames(fd, rx, timeout_ms, wait_cb, &w);
}

static int welcome_cb(void *ctx, const struct gm_hdr *h, const uint8_t *payload, size_t len)
{
	struct wait_ctx *w = ctx;

	return simmeter_open_ack(w->m, h, payload, len, w->ack) && w->ack->welcome;
}

int sim_handshake(struct simmeter *m, int fd, struct sim_rx *rx, int timeout_ms,
		  struct sim_ack *ack)
{
	uint8_t wire[GM_MAX_WIRE];
	struct wait_ctx w = { m, ack };
	int len = simmeter_hello(m, 0, wire, sizeof(wire));

	memset(ack, 0, sizeof(*ack));
	ack->upto = -1;
	if (len < 0 || sim_send_all(fd, wire, (size_t)len))
		return -1;
	return sim_read_frames(fd, rx, timeout_ms, welcome_cb, &w);
}
