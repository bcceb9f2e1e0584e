// SPDX-License-Identifier: GPL-2.0
/* Helpers for the in-guest link layer tests; see link_util.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "link_util.h"

int lt_modprobe(void)
{
	if (access("/dev/gmlink", F_OK) == 0)
		return 0;
	if (system("modprobe gm_link 2>/dev/null") != 0)
		return -1;
	for (int i = 0; i < 100 && access("/dev/gmlink", F_OK); i++)
		lt_msleep(10);
	return access("/dev/gmlink", F_OK);
}

static int lt_raw(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &t))
		return -1;
	cfmakeraw(&t);
	return tcsetattr(fd, TCSANOW, &t);
}

int lt_pty(int *master, int *slave)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY), s;

	if (m < 0)
		return -1;
	if (grantpt(m) || unlockpt(m))
		goto fail;
	s = open(ptsname(m), O_RDWR | O_NOCTTY);
	if (s < 0)
		goto fail;
	/* the test side never blocks: every wait is a poll with a timeout */
	if (lt_raw(m) || lt_raw(s) || fcntl(m, F_SETFL, O_NONBLOCK)) {
		close(s);
		goto fail;
	}
	*master = m;
	*slave = s;
	return 0;
fail:
	close(m);
	return -1;
}

/*
 * The ioctl wrappers are libgmlink's (lib/link/gmlink.c), so the guest tests
 * exercise the library the agent uses; these adapt its calls to the tests.
 */
int lt_attach(int fd)
{
	return gmlink_attach(fd, LT_LDISC);
}

int lt_node_open(unsigned int node, unsigned int meter_id, bool nonblock)
{
	return gmlink_open(node, meter_id, nonblock ? O_NONBLOCK : 0);
}

ssize_t lt_send(int gfd, unsigned int dst, const void *p, size_t len)
{
	static u8 buf[sizeof(struct gm_msg_hdr) + GM_MAX_PAYLOAD + 64];
	struct gm_msg_hdr h = {
		.type = GM_TYPE_DATA, .dst = (u16)dst, .len = (u16)len,
	};

	if (len > sizeof(buf) - sizeof(h))
		return -1;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), p, len);
	return write(gfd, buf, sizeof(h) + len);
}

int lt_recv(int gfd, struct lt_frame *f, int timeout_ms)
{
	u8 buf[GM_MSG_MAX];
	struct pollfd pfd = { .fd = gfd, .events = POLLIN };
	struct gm_msg_hdr mh;
	ssize_t n;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	n = read(gfd, buf, sizeof(buf));
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	if ((size_t)n < sizeof(mh))
		return -EPROTO;
	memcpy(&mh, buf, sizeof(mh));
	if ((size_t)n != sizeof(mh) + mh.len)
		return -EPROTO;
	f->h = (struct gm_hdr) {
		.version = mh.version, .type = mh.type, .flags = mh.flags,
		.hop_limit = mh.hop_limit, .src = mh.src, .dst = mh.dst,
		.seq = mh.seq,
	};
	f->len = mh.len;
	memcpy(f->p, buf + sizeof(mh), mh.len);
	return 1;
}

void lt_wire_init(struct lt_wire *w, int fd)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	gm_rx_init(&w->rx);
}

int lt_write_all(int fd, const void *p, size_t len)
{
	const u8 *b = p;

	while (len) {
		ssize_t n = write(fd, b, len);

		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			poll(&pfd, 1, 100);
			continue;
		}
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

int lt_wire_send(int fd, const struct gm_hdr *h, const void *p, size_t len)
{
	u8 wire[GM_MAX_WIRE];
	int n = gm_frame_encode(h, p, len, wire, sizeof(wire));

	if (n < 0)
		return n;
	return lt_write_all(fd, wire, (size_t)n);
}

/* 1: a frame, 0: timeout, <0: read error. Invalid frames are counted. */
int lt_wire_recv(struct lt_wire *w, struct lt_frame *f, int timeout_ms)
{
	long long deadline = lt_now_ns() + timeout_ms * 1000000LL;

	for (;;) {
		while (w->off < w->len) {
			enum gm_rx_status st;

			w->off += gm_rx_feed(&w->rx, w->buf + w->off,
					     w->len - w->off, &st);
			switch (st) {
			case GM_RX_FRAME:
				f->h = w->rx.hdr;
				f->len = w->rx.payload_len;
				memcpy(f->p, w->rx.payload, f->len);
				return 1;
			case GM_RX_ERR_CRC:
				w->crc++;
				break;
			case GM_RX_ERR_FRAMING:
				w->framing++;
				break;
			case GM_RX_ERR_OVERSIZE:
				w->oversize++;
				break;
			case GM_RX_NONE:
				break;
			}
		}
		long long left = (deadline - lt_now_ns()) / 1000000;
		struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return 0;
		n = read(w->fd, w->buf, sizeof(w->buf));
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		w->off = 0;
		w->len = (size_t)n;
	}
}

u16 lt_server_seq(void)
{
	static unsigned int seq;

	if (!seq)
		seq = (unsigned int)time(NULL) * 977u | 1;
	return (u16)seq++;
}

void lt_fill(u8 *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (u8)(seed >> 16);
	}
}

long long lt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void lt_msleep(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}
