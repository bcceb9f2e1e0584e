// SPDX-License-Identifier: GPL-2.0
/*
 * In-guest tests of the gm_link line discipline over pty pairs.
 *
 * A pty whose slave carries the discipline and whose master is read and
 * written raw by the test is a link to a scripted peer ("the wire"). A pty
 * with the discipline on both ends joins two nodes of the module (the
 * module runs GM_NODES_MAX independent nodes), which builds chains and
 * rings inside one kernel. Expected counters are computed by running the
 * same bytes through the kernel's codec in userspace.
 *
 * The kselftest harness forks every test, so everything a test opened is
 * closed (and detached) when it ends, even on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <linux/capability.h>

#include "kselftest_harness.h"
#include "link_util.h"

/*
 * ms to wait for anything that should happen: generous, because a TCG guest
 * on a loaded host can stall for seconds, and it only costs time when a test
 * is failing anyway. Waits for things that must NOT happen are short.
 */
#define TMO	10000

static void node_reset(unsigned int node)
{
	int g = lt_node_open(node, 0, true);
	struct lt_frame f;

	if (g < 0)
		return;
	while (lt_recv(g, &f, 0) == 1)
		;
	close(g);
}

static struct gm_hdr srv_hdr(u16 dst, u8 hop)
{
	struct gm_hdr h = {
		.version = GM_VERSION, .type = GM_TYPE_DATA, .hop_limit = hop,
		.src = GM_ID_SERVER, .dst = dst, .seq = lt_server_seq(),
	};
	return h;
}

/* The counter invariants of struct gm_link_stats, on a quiet link. */
static bool stats_consistent(const struct gm_link_stats *st)
{
	return st->rx_frames == st->rx_local + st->fwd_in + st->rx_dropped &&
	       st->rx_dropped == st->duplicates + st->hop_exceeded +
				 st->no_route + st->local_overflows +
				 st->fwd_queue_full;
}

/* A node with one uplink whose far end (the server) is the test. */
struct uplink_node {
	int master, slave, g;
};

static int uplink_node_open(struct uplink_node *u, unsigned int node, u16 id)
{
	node_reset(node);
	if (lt_pty(&u->master, &u->slave) || lt_attach(u->slave) ||
	    gmlink_configure(u->slave, node, GM_ROLE_UPLINK, 1))
		return -1;
	u->g = lt_node_open(node, id, false);
	return u->g < 0 ? -1 : 0;
}

TEST(attach_and_configure)
{
	struct gm_link_conf c;
	int m, s, ld = -1, g;
	__u32 id = 0;

	ASSERT_EQ(0, lt_modprobe());
	ASSERT_EQ(0, lt_pty(&m, &s));
	ASSERT_EQ(0, lt_attach(s));
	ASSERT_EQ(0, ioctl(s, TIOCGETD, &ld));
	EXPECT_EQ(LT_LDISC, ld);
	/* unconfigured until SET_LINK */
	ASSERT_EQ(0, ioctl(s, GM_IOC_GET_LINK, &c));
	EXPECT_EQ(GM_ROLE_NONE, c.role);
	EXPECT_EQ(-1, (int)c.slot);
	ASSERT_EQ(0, gmlink_configure(s, 6, GM_ROLE_NEIGHBOUR, 1));
	ASSERT_EQ(0, ioctl(s, GM_IOC_GET_LINK, &c));
	EXPECT_EQ(6u, c.node);
	EXPECT_EQ(GM_ROLE_NEIGHBOUR, c.role);
	EXPECT_EQ(1u, c.up);
	EXPECT_EQ(-1, gmlink_configure(s, GM_NODES_MAX, GM_ROLE_UPLINK, 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, gmlink_configure(s, 6, 7, 1));
	EXPECT_EQ(EINVAL, errno);
	/* meter id set through the tty is the node's */
	id = 4242;
	ASSERT_EQ(0, ioctl(s, GM_IOC_SET_METER_ID, &id));
	g = lt_node_open(6, 0, true);
	ASSERT_GE(g, 0);
	id = 0;
	ASSERT_EQ(0, ioctl(g, GM_IOC_GET_METER_ID, &id));
	EXPECT_EQ(4242u, id);
	id = GM_ID_INVALID;
	EXPECT_EQ(-1, ioctl(g, GM_IOC_SET_METER_ID, &id));
	EXPECT_EQ(EINVAL, errno);
	/* termios ioctls still work (ldattach sets the line speed) */
	struct termios t;

	EXPECT_EQ(0, tcgetattr(s, &t));
	/* back to N_TTY and again */
	ld = 0;
	ASSERT_EQ(0, ioctl(s, TIOCSETD, &ld));
	ASSERT_EQ(0, lt_attach(s));
	close(g);
	close(s);
	close(m);
}

/* Attaching needs CAP_NET_ADMIN. */
TEST(attach_needs_cap_net_admin)
{
	int m, s, status;
	pid_t pid;

	ASSERT_EQ(0, lt_modprobe());
	ASSERT_EQ(0, lt_pty(&m, &s));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct __user_cap_header_struct hdr = {
			.version = _LINUX_CAPABILITY_VERSION_3,
		};
		struct __user_cap_data_struct d[2];

		memset(d, 0, sizeof(d));
		if (syscall(SYS_capget, &hdr, d))
			_exit(2);
		d[0].effective &= ~(1u << CAP_NET_ADMIN);
		if (syscall(SYS_capset, &hdr, d))
			_exit(3);
		if (lt_attach(s) == 0)
			_exit(4);
		_exit(errno == EPERM ? 0 : 5);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(s);
	close(m);
}

/* Local frames of every size, up and down, through one uplink. */
TEST(roundtrip_every_size)
{
	static u8 p[GM_MAX_PAYLOAD];
	struct uplink_node u;
	struct gm_link_stats st;
	struct gm_node_stats ns0, ns;
	struct lt_wire w;
	struct lt_frame f;
	int prev_seq = -1;

	ASSERT_EQ(0, lt_modprobe());
	ASSERT_EQ(0, uplink_node_open(&u, 0, 10));
	lt_wire_init(&w, u.master);
	/* node counters are cumulative: other programs may have used node 0 */
	ASSERT_EQ(0, gmlink_node_stats(u.g, &ns0));

	for (unsigned int len = 0; len <= GM_MAX_PAYLOAD; len++) {
		struct gm_hdr h;

		lt_fill(p, len, len);
		ASSERT_EQ((ssize_t)(sizeof(struct gm_msg_hdr) + len),
			  lt_send(u.g, GM_ID_SERVER, p, len));
		ASSERT_EQ(1, lt_wire_recv(&w, &f, TMO));
		ASSERT_EQ(10, f.h.src);
		ASSERT_EQ(GM_ID_SERVER, f.h.dst);
		ASSERT_EQ(GM_HOP_DEFAULT, f.h.hop_limit);
		ASSERT_EQ(len, f.len);
		ASSERT_EQ(0, memcmp(p, f.p, len));
		if (prev_seq >= 0)
			ASSERT_EQ((u16)(prev_seq + 1), f.h.seq);
		prev_seq = f.h.seq;

		h = srv_hdr(10, 3);
		lt_fill(p, len, ~len);
		ASSERT_EQ(0, lt_wire_send(u.master, &h, p, len));
		ASSERT_EQ(1, lt_recv(u.g, &f, TMO));
		ASSERT_EQ(GM_ID_SERVER, f.h.src);
		ASSERT_EQ(h.seq, f.h.seq);
		ASSERT_EQ(3, f.h.hop_limit);
		ASSERT_EQ(len, f.len);
		ASSERT_EQ(0, memcmp(p, f.p, len));
	}
	EXPECT_EQ(0u, w.crc + w.framing + w.oversize);
	ASSERT_EQ(0, gmlink_link_stats(u.slave, &st));
	EXPECT_EQ(GM_MAX_PAYLOAD + 1, st.tx_frames);
	EXPECT_EQ(GM_MAX_PAYLOAD + 1, st.rx_frames);
	EXPECT_EQ(GM_MAX_PAYLOAD + 1, st.rx_local);
	EXPECT_EQ(0u, st.rx_dropped + st.crc_errors + st.framing_errors);
	ASSERT_EQ(0, gmlink_node_stats(u.g, &ns));
	EXPECT_EQ(GM_MAX_PAYLOAD + 1, ns.local_tx - ns0.local_tx);
	EXPECT_EQ(GM_MAX_PAYLOAD + 1, ns.local_rx - ns0.local_rx);
}

/* Clear errors: EMSGSIZE, EAGAIN, ENOLINK, EADDRNOTAVAIL, EINVAL. */
TEST(local_errors)
{
	static u8 buf[sizeof(struct gm_msg_hdr) + GM_MAX_PAYLOAD + 1];
	struct gm_msg_hdr mh = { .type = GM_TYPE_DATA };
	struct uplink_node u;
	struct gm_node_stats ns;
	struct gm_hdr h;
	struct lt_frame f;
	int g;

	ASSERT_EQ(0, lt_modprobe());
	node_reset(7);
	g = lt_node_open(7, 0, true);
	ASSERT_GE(g, 0);
	/* no meter id yet */
	EXPECT_EQ(-1, lt_send(g, GM_ID_SERVER, "x", 1));
	EXPECT_EQ(EADDRNOTAVAIL, errno);
	close(g);
	g = lt_node_open(7, 70, true);
	ASSERT_GE(g, 0);
	/* no link at all: ENOLINK */
	EXPECT_EQ(-1, lt_send(g, GM_ID_SERVER, "x", 1));
	EXPECT_EQ(ENOLINK, errno);
	ASSERT_EQ(0, gmlink_node_stats(g, &ns));
	EXPECT_EQ(1u, ns.local_no_route);
	/* oversize payload */
	mh.len = GM_MAX_PAYLOAD + 1;
	memcpy(buf, &mh, sizeof(mh));
	EXPECT_EQ(-1, write(g, buf, sizeof(buf)));
	EXPECT_EQ(EMSGSIZE, errno);
	/* length mismatch, bad type */
	mh.len = 5;
	memcpy(buf, &mh, sizeof(mh));
	EXPECT_EQ(-1, write(g, buf, sizeof(mh) + 4));
	EXPECT_EQ(EINVAL, errno);
	mh.len = 0;
	mh.type = 0;
	memcpy(buf, &mh, sizeof(mh));
	EXPECT_EQ(-1, write(g, buf, sizeof(mh)));
	EXPECT_EQ(EINVAL, errno);
	/* nothing to read, non-blocking */
	EXPECT_EQ(-1, read(g, buf, sizeof(buf)));
	EXPECT_EQ(EAGAIN, errno);
	close(g);

	/* a frame does not fit the read buffer: EMSGSIZE, and it stays */
	ASSERT_EQ(0, uplink_node_open(&u, 7, 70));
	h = srv_hdr(70, 1);
	ASSERT_EQ(0, lt_wire_send(u.master, &h, buf, 100));
	struct pollfd pfd = { .fd = u.g, .events = POLLIN };

	ASSERT_EQ(1, poll(&pfd, 1, TMO));
	EXPECT_EQ(-1, read(u.g, buf, sizeof(struct gm_msg_hdr) + 99));
	EXPECT_EQ(EMSGSIZE, errno);
	ASSERT_EQ(1, lt_recv(u.g, &f, TMO));
	EXPECT_EQ(100u, f.len);
	EXPECT_EQ(h.seq, f.h.seq);
}

/* Corrupted, CRC-broken, truncated, oversized and garbage input. */
TEST(bad_input_counted_never_delivered)
{
	static u8 stream[64 * 1024], p[GM_MAX_PAYLOAD];
	struct uplink_node u;
	struct gm_link_stats st;
	struct gm_rx *rx = malloc(sizeof(*rx));
	unsigned int crc = 0, framing = 0, oversize = 0, good = 0;
	size_t len = 0, pos = 0;
	struct lt_frame f;
	int n;

	ASSERT_NE(NULL, rx);
	ASSERT_EQ(0, lt_modprobe());
	ASSERT_EQ(0, uplink_node_open(&u, 1, 11));

	for (int i = 0; i < 40; i++) {
		struct gm_hdr h = srv_hdr(11, 2);
		size_t plen = (size_t)(i * 37) % GM_MAX_PAYLOAD;
		u8 *fr = stream + len;

		lt_fill(p, plen, (unsigned int)i);
		n = gm_frame_encode(&h, p, plen, fr, sizeof(stream) - len);
		ASSERT_GT(n, 0);
		switch (i % 5) {
		case 0:	/* corrupted byte */
			fr[1 + (size_t)i % ((size_t)n - 2)] ^= 0x40;
			if (fr[1 + (size_t)i % ((size_t)n - 2)] == 0)
				fr[1 + (size_t)i % ((size_t)n - 2)] = 0x11;
			break;
		case 1:	/* CRC broken: re-encode with a wrong CRC byte */
			fr[n - 2] = fr[n - 2] == 0xff ? 0x01 : fr[n - 2] + 1;
			break;
		case 2:	/* truncated */
			n = n / 2;
			fr[n++] = 0;
			break;
		case 3:	/* oversized run of non-zero bytes */
			memset(fr, 0x5a, 700);
			fr[700] = 0;
			n = 701;
			break;
		case 4:	/* garbage */
			lt_fill(fr, 300, (unsigned int)i * 7);
			fr[299] = 0;
			n = 300;
			break;
		}
		len += (size_t)n;
	}
	/* then one good frame */
	struct gm_hdr last = srv_hdr(11, 2);

	n = gm_frame_encode(&last, "ok", 2, stream + len, sizeof(stream) - len);
	ASSERT_GT(n, 0);
	len += (size_t)n;

	/* expected counts: the same bytes through the same decoder */
	gm_rx_init(rx);
	while (pos < len) {
		enum gm_rx_status s;

		pos += gm_rx_feed(rx, stream + pos, len - pos, &s);
		crc += s == GM_RX_ERR_CRC;
		framing += s == GM_RX_ERR_FRAMING;
		oversize += s == GM_RX_ERR_OVERSIZE;
		good += s == GM_RX_FRAME;
	}
	TH_LOG("expect crc=%u framing=%u oversize=%u good=%u", crc, framing,
	       oversize, good);
	ASSERT_GE(crc + framing, 24u);
	ASSERT_EQ(8u, oversize);

	ASSERT_EQ(0, lt_write_all(u.master, stream, len));
	ASSERT_EQ(1, lt_recv(u.g, &f, TMO));
	EXPECT_EQ(last.seq, f.h.seq);
	EXPECT_EQ(2u, f.len);
	/* nothing else was delivered */
	EXPECT_EQ(good - 1, 0u);
	ASSERT_EQ(0, gmlink_link_stats(u.slave, &st));
	EXPECT_EQ(len, st.rx_bytes);
	EXPECT_EQ(crc, st.crc_errors);
	EXPECT_EQ(framing, st.framing_errors);
	EXPECT_EQ(oversize, st.oversize);
	EXPECT_EQ(good, st.rx_frames);
	EXPECT_EQ(good, st.rx_local);
	EXPECT_TRUE(stats_consistent(&st));
	free(rx);
}

/* A full transmit queue: EAGAIN, POLLOUT, nothing lost. */
TEST(full_transmit_queue)
{
	static u8 p[GM_MAX_PAYLOAD];
	struct uplink_node u;
	struct gm_link_stats st;
	struct gm_node_stats ns0, ns;
	struct lt_wire w;
	struct lt_frame f;
	unsigned int sent = 0, got = 0, agains = 0, tries = 0;
	int fl, first_seq = -1;

	ASSERT_EQ(0, lt_modprobe());
	ASSERT_EQ(0, uplink_node_open(&u, 2, 12));
	ASSERT_EQ(0, gmlink_node_stats(u.g, &ns0));
	fl = fcntl(u.g, F_GETFL);
	ASSERT_EQ(0, fcntl(u.g, F_SETFL, fl | O_NONBLOCK));
	/*
	 * Nobody reads the wire: the pty fills up, then our queue. The pty
	 * still moves what it holds into the master's buffers for a while
	 * (the flip buffer's work runs when it is scheduled), making room
	 * again: fill until a send refused after a 200 ms pause is refused
	 * at once, so that nothing moves any more.
	 */
	for (;;) {
		ssize_t r = lt_send(u.g, GM_ID_SERVER, p, sizeof(p));

		ASSERT_LT(++tries, 20000u);
		if (r >= 0) {
			sent++;
			continue;
		}
		ASSERT_EQ(EAGAIN, errno);
		agains++;
		usleep(200000);
		r = lt_send(u.g, GM_ID_SERVER, p, sizeof(p));
		if (r < 0) {
			ASSERT_EQ(EAGAIN, errno);
			agains++;
			break;
		}
		sent++;
	}
	struct pollfd pfd = { .fd = u.g, .events = POLLOUT };

	EXPECT_EQ(0, poll(&pfd, 1, 0));
	ASSERT_EQ(0, gmlink_node_stats(u.g, &ns));
	EXPECT_EQ(agains, ns.local_again - ns0.local_again);
	EXPECT_EQ(sent, ns.local_tx - ns0.local_tx);
	ASSERT_EQ(0, gmlink_link_stats(u.slave, &st));
	EXPECT_EQ(agains, st.tx_queue_overflows);

	/* drain: every accepted frame arrives once, in order */
	lt_wire_init(&w, u.master);
	while (got < sent && lt_wire_recv(&w, &f, TMO) == 1) {
		if (first_seq < 0)
			first_seq = f.h.seq;
		ASSERT_EQ((u16)(first_seq + got), f.h.seq);
		got++;
	}
	EXPECT_EQ(sent, got);
	EXPECT_EQ(1, poll(&pfd, 1, TMO));
	/* blocking writer gets through once there is room again */
	ASSERT_EQ(0, fcntl(u.g, F_SETFL, fl));
	EXPECT_EQ((ssize_t)(sizeof(struct gm_msg_hdr) + 1), lt_send(u.g, 0, p, 1));
	EXPECT_EQ(1, lt_wire_recv(&w, &f, TMO));
}

/* The server end of an uplink, read by a thread while the test writes. */
struct collector {
	struct lt_wire w;
	int want, got, bad;
	u16 first;
	struct lt_frame *f;
};

static void *collect(void *arg)
{
	struct collector *c = arg;

	while (c->got < c->want &&
	       lt_wire_recv(&c->w, &c->f[c->got], TMO) == 1)
		c->got++;
	return NULL;
}

/*
 * Chain A -> B -> C -> uplink: A and B are cut off, B and C forward A's
 * frames. Readers on B and C see nothing; the server gets every frame
 * once and in order. Replies from the server go back to A.
 */
TEST(chain_forwarding_and_downlink)
{
	enum { A = 3, B = 4, C = 5, N = 500 };
	static struct lt_frame up[N + 1];
	struct collector col = { .want = N, .f = up };
	pthread_t th;
	static u8 p[GM_MAX_PAYLOAD];
	int ab[2], bc[2], cu[2], ga, gb, gc;
	struct gm_link_stats sa, sb_in, sb_out, sc_in, sc_up;
	struct lt_frame f;
	int first = -1;

	ASSERT_EQ(0, lt_modprobe());
	for (int n = A; n <= C; n++)
		node_reset(n);
	/* ab[1]: A's link (slave), ab[0]: B's (master), and so on */
	ASSERT_EQ(0, lt_pty(&ab[0], &ab[1]));
	ASSERT_EQ(0, lt_pty(&bc[0], &bc[1]));
	ASSERT_EQ(0, lt_pty(&cu[0], &cu[1]));
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, lt_attach(ab[i]));
		ASSERT_EQ(0, lt_attach(bc[i]));
	}
	ASSERT_EQ(0, lt_attach(cu[1]));
	ASSERT_EQ(0, gmlink_configure(ab[1], A, GM_ROLE_NEIGHBOUR, 1));
	ASSERT_EQ(0, gmlink_configure(ab[0], B, GM_ROLE_NEIGHBOUR, 1));
	ASSERT_EQ(0, gmlink_configure(bc[1], B, GM_ROLE_NEIGHBOUR, 1));
	ASSERT_EQ(0, gmlink_configure(bc[0], C, GM_ROLE_NEIGHBOUR, 1));
	ASSERT_EQ(0, gmlink_configure(cu[1], C, GM_ROLE_UPLINK, 1));
	ga = lt_node_open(A, 301, false);
	gb = lt_node_open(B, 302, true);
	gc = lt_node_open(C, 303, true);
	ASSERT_GE(ga, 0);
	ASSERT_GE(gb, 0);
	ASSERT_GE(gc, 0);

	/* the server reads while A writes as fast as its queue allows */
	lt_wire_init(&col.w, cu[0]);
	ASSERT_EQ(0, pthread_create(&th, NULL, collect, &col));
	for (int i = 0; i < N; i++) {
		size_t len = (size_t)(i * 53) % (GM_MAX_PAYLOAD + 1);

		lt_fill(p, len, (unsigned int)i);
		ASSERT_EQ((ssize_t)(sizeof(struct gm_msg_hdr) + len),
			  lt_send(ga, GM_ID_SERVER, p, len));
	}
	pthread_join(th, NULL);
	ASSERT_EQ(N, col.got);
	/* exactly once: nothing more on the wire */
	EXPECT_EQ(0, lt_wire_recv(&col.w, &up[N], 300));
	for (int i = 0; i < N; i++) {
		size_t len = (size_t)(i * 53) % (GM_MAX_PAYLOAD + 1);

		f = up[i];
		ASSERT_EQ(301, f.h.src);
		if (first < 0)
			first = f.h.seq;
		ASSERT_EQ((u16)(first + i), f.h.seq);
		ASSERT_EQ(GM_HOP_DEFAULT - 2, f.h.hop_limit);
		ASSERT_EQ(len, f.len);
		lt_fill(p, len, (unsigned int)i);
		ASSERT_EQ(0, memcmp(p, f.p, len));
	}
	EXPECT_EQ(0u, col.w.crc + col.w.framing + col.w.oversize);
	/* the forwarders' readers saw none of it */
	EXPECT_EQ(0, lt_recv(gb, &f, 0));
	EXPECT_EQ(0, lt_recv(gc, &f, 0));
	ASSERT_EQ(0, gmlink_link_stats(ab[0], &sb_in));
	ASSERT_EQ(0, gmlink_link_stats(bc[1], &sb_out));
	ASSERT_EQ(0, gmlink_link_stats(bc[0], &sc_in));
	ASSERT_EQ(0, gmlink_link_stats(cu[1], &sc_up));
	EXPECT_EQ((__u64)N, sb_in.fwd_in);
	EXPECT_EQ(0u, sb_in.rx_local);
	EXPECT_EQ((__u64)N, sb_out.fwd_out);
	EXPECT_EQ((__u64)N, sc_in.fwd_in);
	EXPECT_EQ(0u, sc_in.rx_local);
	EXPECT_EQ((__u64)N, sc_up.fwd_out);
	EXPECT_EQ((__u64)N, sc_up.tx_frames);
	EXPECT_TRUE(stats_consistent(&sb_in));
	EXPECT_TRUE(stats_consistent(&sc_in));

	/*
	 * downlink: the server answers A; routes were learnt on the way up.
	 * In bursts of 32, below A's local receive queue (rxqlen 64).
	 */
	for (int i = 0; i < N; i++) {
		struct gm_hdr h = srv_hdr(301, 4);

		lt_fill(p, 64, (unsigned int)i + 1000);
		p[0] = (u8)i;
		ASSERT_EQ(0, lt_wire_send(cu[0], &h, p, 64));
		if (i % 32 != 31 && i != N - 1)
			continue;
		for (int k = i - i % 32; k <= i; k++) {
			ASSERT_EQ(1, lt_recv(ga, &f, TMO));
			ASSERT_EQ((u8)k, f.p[0]);
			ASSERT_EQ(GM_ID_SERVER, f.h.src);
			ASSERT_EQ(301, f.h.dst);
			ASSERT_EQ(2, f.h.hop_limit);
			ASSERT_EQ(64u, f.len);
		}
	}
	EXPECT_EQ(0, lt_recv(gb, &f, 0));
	EXPECT_EQ(0, lt_recv(gc, &f, 0));
	ASSERT_EQ(0, gmlink_link_stats(ab[1], &sa));
	EXPECT_EQ((__u64)N, sa.rx_local);
	EXPECT_EQ(0u, sa.rx_dropped);

	/* a reply for a meter nobody has heard of is dropped and counted */
	struct gm_hdr h = srv_hdr(999, 4);

	ASSERT_EQ(0, lt_wire_send(cu[0], &h, "?", 1));
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(0, gmlink_link_stats(cu[1], &sc_up));
		if (sc_up.no_route)
			break;
		lt_msleep(20);
	}
	EXPECT_EQ(1u, sc_up.no_route);
	EXPECT_EQ(1u, sc_up.rx_dropped);
	EXPECT_TRUE(stats_consistent(&sc_up));
	EXPECT_TRUE(stats_consistent(&sa));
}

/*
 * A ring of cut-off meters B -> C -> D -> B, fed by an outside neighbour
 * of B. A frame goes round once and is stopped by duplicate suppression;
 * with hop limit 1 it is stopped by the hop limit after one forward.
 */
TEST(ring_loop_stopped)
{
	enum { B = 5, C = 6, D = 7 };
	int bc[2], cd[2], db[2], ext[2], gb, gc, gd;
	struct gm_link_stats s[6], se;
	struct gm_hdr h;
	__u64 fwd, dup, hop;
	struct lt_frame f;

	ASSERT_EQ(0, lt_modprobe());
	for (int n = B; n <= D; n++)
		node_reset(n);
	ASSERT_EQ(0, lt_pty(&bc[0], &bc[1]));
	ASSERT_EQ(0, lt_pty(&cd[0], &cd[1]));
	ASSERT_EQ(0, lt_pty(&db[0], &db[1]));
	ASSERT_EQ(0, lt_pty(&ext[0], &ext[1]));
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, lt_attach(bc[i]));
		ASSERT_EQ(0, lt_attach(cd[i]));
		ASSERT_EQ(0, lt_attach(db[i]));
	}
	ASSERT_EQ(0, lt_attach(ext[1]));
	/* B: ext, bc; C: bc, cd; D: cd, db; B: db */
	ASSERT_EQ(0, gmlink_configure(ext[1], B, GM_ROLE_NEIGHBOUR, 1));
	ASSERT_EQ(0, gmlink_configure(bc[1], B, GM_ROLE_NEIGHBOUR, 1));
	ASSERT_EQ(0, gmlink_configure(bc[0], C, GM_ROLE_NEIGHBOUR, 1));
	ASSERT_EQ(0, gmlink_configure(cd[1], C, GM_ROLE_NEIGHBOUR, 1));
	ASSERT_EQ(0, gmlink_configure(cd[0], D, GM_ROLE_NEIGHBOUR, 1));
	ASSERT_EQ(0, gmlink_configure(db[1], D, GM_ROLE_NEIGHBOUR, 1));
	ASSERT_EQ(0, gmlink_configure(db[0], B, GM_ROLE_NEIGHBOUR, 1));
	gb = lt_node_open(B, 502, true);
	gc = lt_node_open(C, 503, true);
	gd = lt_node_open(D, 504, true);
	ASSERT_GE(gb, 0);
	ASSERT_GE(gc, 0);
	ASSERT_GE(gd, 0);

	/* a frame of meter 777 for the server enters at B */
	h = (struct gm_hdr) {
		.version = GM_VERSION, .type = GM_TYPE_DATA, .hop_limit = 15,
		.src = 777, .dst = GM_ID_SERVER, .seq = 1,
	};
	ASSERT_EQ(0, lt_wire_send(ext[0], &h, "loop", 4));
	/* and one with hop limit 1 */
	h.seq = 2;
	h.hop_limit = 1;
	ASSERT_EQ(0, lt_wire_send(ext[0], &h, "hop", 3));

	/* settle: counters stop moving */
	__u64 last = ~0ULL;

	for (int round = 0; round < 50; round++) {
		int fds[6] = { bc[1], bc[0], cd[1], cd[0], db[1], db[0] };

		lt_msleep(100);
		fwd = dup = hop = 0;
		for (int i = 0; i < 6; i++) {
			ASSERT_EQ(0, gmlink_link_stats(fds[i], &s[i]));
			fwd += s[i].fwd_in;
			dup += s[i].duplicates;
			hop += s[i].hop_exceeded;
		}
		if (fwd + dup + hop == last && dup + hop >= 2)
			break;
		last = fwd + dup + hop;
	}
	ASSERT_EQ(0, gmlink_link_stats(ext[1], &se));
	TH_LOG("ring: ext fwd_in=%llu, ring fwd_in=%llu dup=%llu hop=%llu",
	       (unsigned long long)se.fwd_in, (unsigned long long)fwd,
	       (unsigned long long)dup, (unsigned long long)hop);
	/* seq 1: B -> C -> D -> B (duplicate): 2 forwards in the ring */
	/* seq 2: B -> C (hop limit 0 at C): 0 forwards in the ring */
	EXPECT_EQ(2u, se.fwd_in);
	EXPECT_TRUE(stats_consistent(&se));
	for (int i = 0; i < 6; i++)
		EXPECT_TRUE(stats_consistent(&s[i]));
	EXPECT_EQ(2u, fwd);
	EXPECT_EQ(1u, dup);
	EXPECT_EQ(1u, hop);
	/* nobody delivered it locally */
	EXPECT_EQ(0, lt_recv(gb, &f, 0));
	EXPECT_EQ(0, lt_recv(gc, &f, 0));
	EXPECT_EQ(0, lt_recv(gd, &f, 0));
}

/* Traffic in both directions while the test hangs up and switches ldisc. */
struct churn {
	int g;
	volatile int stop;
	unsigned long sent, errs;
};

static void *churn_writer(void *arg)
{
	struct churn *c = arg;
	u8 p[200];

	memset(p, 0xab, sizeof(p));
	while (!c->stop) {
		if (lt_send(c->g, GM_ID_SERVER, p, sizeof(p)) > 0)
			c->sent++;
		else
			c->errs++;
		if ((c->sent + c->errs) % 64 == 0)
			lt_msleep(1);
	}
	return NULL;
}

TEST(hangup_and_ldisc_switch_during_traffic)
{
	struct churn c = { 0 };
	pthread_t th;
	long long end;
	int rounds = 0;
	u8 junk[4096];
	char taint_before[32] = "", taint_after[32] = "";
	FILE *tf;

	ASSERT_EQ(0, lt_modprobe());
	tf = fopen("/proc/sys/kernel/tainted", "r");
	if (tf) {
		if (!fgets(taint_before, sizeof(taint_before), tf))
			taint_before[0] = 0;
		fclose(tf);
	}
	node_reset(1);
	c.g = lt_node_open(1, 21, true);
	ASSERT_GE(c.g, 0);
	ASSERT_EQ(0, pthread_create(&th, NULL, churn_writer, &c));

	end = lt_now_ns() + 4000000000LL;
	while (lt_now_ns() < end) {
		int m, s, nm, ns, ld0 = 0;
		struct gm_hdr h = srv_hdr(21, 2);
		static u8 wire[64 * GM_MAX_WIRE], p[32];
		size_t len = 0;
		int n;

		ASSERT_EQ(0, lt_pty(&m, &s));
		ASSERT_EQ(0, lt_attach(s));
		ASSERT_EQ(0, gmlink_configure(s, 1, GM_ROLE_UPLINK, 1));
		/* a neighbour whose frames the node forwards to that uplink */
		ASSERT_EQ(0, lt_pty(&nm, &ns));
		ASSERT_EQ(0, lt_attach(ns));
		ASSERT_EQ(0, gmlink_configure(ns, 1, GM_ROLE_NEIGHBOUR, 1));
		n = gm_frame_encode(&h, "down", 4, wire, sizeof(wire));
		for (int i = 0; i < 20; i++) {
			if (write(m, wire, (size_t)n) < 0)
				break;
			if (read(m, junk, sizeof(junk)) < 0 && errno != EAGAIN)
				break;
		}
		/* fill the uplink with forwarded traffic until ingress stalls */
		for (int i = 0; i < 64; i++) {
			struct gm_hdr fh = {
				.version = GM_VERSION, .type = GM_TYPE_DATA,
				.hop_limit = 5, .src = 555, .dst = GM_ID_SERVER,
				.seq = (u16)(rounds * 64 + i),
			};

			n = gm_frame_encode(&fh, p, sizeof(p), wire + len,
					    sizeof(wire) - len);
			len += (size_t)n;
		}
		if (write(nm, wire, len) < 0 && errno != EAGAIN)
			break;
		if (rounds % 2)
			lt_msleep(2);
		switch (rounds % 4) {
		case 0:	/* hangup of the slave by closing the master */
			close(m);
			lt_msleep(1);
			close(s);
			break;
		case 1:	/* ldisc switch under traffic, then close */
			ioctl(s, TIOCSETD, &ld0);
			lt_attach(s);
			gmlink_configure(s, 1, GM_ROLE_UPLINK, 1);
			ioctl(s, TIOCSETD, &ld0);
			close(s);
			close(m);
			break;
		case 2:	/* explicit vhangup of the slave */
			ioctl(s, TIOCVHANGUP);
			close(s);
			close(m);
			break;
		case 3:	/* the stalled neighbour goes first */
			close(nm);
			close(ns);
			nm = ns = -1;
			close(s);
			close(m);
			break;
		}
		if (nm >= 0) {
			close(nm);
			close(ns);
		}
		rounds++;
	}
	c.stop = 1;
	pthread_join(th, NULL);
	TH_LOG("%d attach/detach rounds, %lu frames written, %lu refused",
	       rounds, c.sent, c.errs);
	EXPECT_GT(rounds, 10);
	EXPECT_GT(c.sent, 0ul);
	/* whatever was addressed to us is readable or counted */
	struct lt_frame f;

	while (lt_recv(c.g, &f, 0) == 1)
		EXPECT_EQ(4u, f.len);
	tf = fopen("/proc/sys/kernel/tainted", "r");
	if (tf) {
		if (!fgets(taint_after, sizeof(taint_after), tf))
			taint_after[0] = 0;
		fclose(tf);
	}
	EXPECT_STREQ(taint_before, taint_after);
}

/*
 * With util-linux ldattach (run in the foreground with -d when the guest
 * has it, else a process doing what it does): one process attaches and
 * holds the tty, the configuration comes from another file descriptor
 * (gmlinkctl when installed).
 */
TEST(ldattach_configuration)
{
	int m, s, s2, status, ld = 0;
	struct uplink_node u;
	struct lt_wire w;
	struct lt_frame f;
	char path[64];
	pid_t pid;

	ASSERT_EQ(0, lt_modprobe());
	ASSERT_EQ(0, lt_pty(&m, &s));
	ASSERT_EQ(0, ptsname_r(m, path, sizeof(path)));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		close(s);
		execlp("ldattach", "ldattach", "-d", "29", path, (char *)NULL);
		/* no ldattach: do what it does */
		s = open(path, O_RDWR | O_NOCTTY);
		if (s < 0 || lt_attach(s))
			_exit(1);
		pause();
		_exit(0);
	}
	s2 = open(path, O_RDWR | O_NOCTTY);
	ASSERT_GE(s2, 0);
	for (int i = 0; i < 300 && ld != LT_LDISC; i++) {
		ASSERT_EQ(0, ioctl(s2, TIOCGETD, &ld));
		if (ld != LT_LDISC)
			lt_msleep(10);
	}
	ASSERT_EQ(LT_LDISC, ld);
	node_reset(6);
	if (access("/usr/local/bin/gmlinkctl", X_OK) == 0) {
		char cmd[160];

		snprintf(cmd, sizeof(cmd),
			 "gmlinkctl link %s uplink 6 && gmlinkctl id 6 606", path);
		ASSERT_EQ(0, system(cmd));
	} else {
		__u32 id = 606;

		ASSERT_EQ(0, gmlink_configure(s2, 6, GM_ROLE_UPLINK, 1));
		ASSERT_EQ(0, ioctl(s2, GM_IOC_SET_METER_ID, &id));
	}
	u.g = lt_node_open(6, 0, false);
	ASSERT_GE(u.g, 0);
	lt_wire_init(&w, m);
	ASSERT_EQ(6, lt_send(u.g, GM_ID_SERVER, "hello!", 6) - (ssize_t)sizeof(struct gm_msg_hdr));
	ASSERT_EQ(1, lt_wire_recv(&w, &f, TMO));
	EXPECT_EQ(606, f.h.src);
	EXPECT_EQ(0, memcmp("hello!", f.p, 6));
	kill(pid, SIGTERM);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	close(s2);
	close(s);
	close(m);
}

/*
 * Wait until a link counter reaches @want; return the stats in @st. A
 * dropped frame is counted last in rx_dropped (after its reason).
 */
static int wait_link_stat(int fd, struct gm_link_stats *st, size_t off,
			  __u64 want)
{
	for (int i = 0; i < 150; i++) {
		__u64 v;

		if (gmlink_link_stats(fd, st))
			return -1;
		memcpy(&v, (const char *)st + off, sizeof(v));
		if (v >= want)
			return 0;
		lt_msleep(20);
	}
	return -1;
}

#define WAIT_STAT(fd, st, field, want) \
	wait_link_stat(fd, st, offsetof(struct gm_link_stats, field), want)

/*
 * A server frame for a meter the node has no route to is dropped; once
 * the meter has been heard (route learnt), the server's retransmission
 * with the same (source, seq) is forwarded, exactly once; a true
 * duplicate of it is still suppressed.
 */
TEST(retransmit_after_no_route)
{
	enum { N = 2, METER = 888 };
	struct gm_link_stats su, sn;
	struct uplink_node u;
	struct lt_wire wu, wn;
	struct lt_frame f;
	struct gm_hdr h, mh;
	int nb[2];

	ASSERT_EQ(0, lt_modprobe());
	ASSERT_EQ(0, uplink_node_open(&u, N, 20));
	/* nb[1]: the node's neighbour link, nb[0]: meter METER, scripted */
	ASSERT_EQ(0, lt_pty(&nb[0], &nb[1]));
	ASSERT_EQ(0, lt_attach(nb[1]));
	ASSERT_EQ(0, gmlink_configure(nb[1], N, GM_ROLE_NEIGHBOUR, 1));
	lt_wire_init(&wu, u.master);
	lt_wire_init(&wn, nb[0]);

	/* no route to METER yet: dropped */
	h = srv_hdr(METER, 4);
	ASSERT_EQ(0, lt_wire_send(u.master, &h, "cmd", 3));
	ASSERT_EQ(0, WAIT_STAT(u.slave, &su, rx_dropped, 1));
	EXPECT_EQ(1u, su.no_route);
	EXPECT_EQ(0u, su.duplicates);
	EXPECT_EQ(0, lt_wire_recv(&wn, &f, 300));

	/* METER talks to the server: the route is learnt */
	mh = (struct gm_hdr) {
		.version = GM_VERSION, .type = GM_TYPE_DATA, .hop_limit = 8,
		.src = METER, .dst = GM_ID_SERVER, .seq = lt_server_seq(),
	};
	ASSERT_EQ(0, lt_wire_send(nb[0], &mh, "up", 2));
	ASSERT_EQ(1, lt_wire_recv(&wu, &f, TMO));
	EXPECT_EQ(METER, f.h.src);
	EXPECT_EQ(mh.seq, f.h.seq);

	/* the retransmission, same (source, seq): forwarded once */
	ASSERT_EQ(0, lt_wire_send(u.master, &h, "cmd", 3));
	ASSERT_EQ(1, lt_wire_recv(&wn, &f, TMO));
	EXPECT_EQ(GM_ID_SERVER, f.h.src);
	EXPECT_EQ(METER, f.h.dst);
	EXPECT_EQ(h.seq, f.h.seq);
	EXPECT_EQ(3, f.h.hop_limit);
	ASSERT_EQ(3u, f.len);
	EXPECT_EQ(0, memcmp("cmd", f.p, 3));

	/* a true duplicate of it is suppressed */
	ASSERT_EQ(0, lt_wire_send(u.master, &h, "cmd", 3));
	ASSERT_EQ(0, WAIT_STAT(u.slave, &su, rx_dropped, 2));
	EXPECT_EQ(0, lt_wire_recv(&wn, &f, 300));
	EXPECT_EQ(0u, wn.crc + wn.framing + wn.oversize);

	ASSERT_EQ(0, gmlink_link_stats(u.slave, &su));
	ASSERT_EQ(0, gmlink_link_stats(nb[1], &sn));
	EXPECT_EQ(3u, su.rx_frames);
	EXPECT_EQ(1u, su.no_route);
	EXPECT_EQ(1u, su.fwd_in);
	EXPECT_EQ(1u, su.duplicates);
	EXPECT_EQ(2u, su.rx_dropped);
	EXPECT_TRUE(stats_consistent(&su));
	EXPECT_EQ(1u, sn.fwd_out);
	EXPECT_EQ(1u, sn.tx_frames);
	EXPECT_EQ(1u, sn.rx_frames);
	EXPECT_EQ(1u, sn.fwd_in);
	EXPECT_TRUE(stats_consistent(&sn));
}

static unsigned int module_param_uint(const char *name, unsigned int dflt)
{
	char path[128];
	unsigned int v = dflt;
	FILE *fp;

	snprintf(path, sizeof(path), "/sys/module/gm_link/parameters/%s", name);
	fp = fopen(path, "r");
	if (fp) {
		if (fscanf(fp, "%u", &v) != 1)
			v = dflt;
		fclose(fp);
	}
	return v;
}

/*
 * A frame for the agent dropped because its queue was full is delivered
 * when sent again with the same (source, seq) once there is room, exactly
 * once; a true duplicate is suppressed.
 */
TEST(retransmit_after_local_overflow)
{
	enum { N = 3, ME = 30, SRC = 3777 };
	unsigned int q = module_param_uint("rxqlen", 64);
	struct gm_node_stats ns0, ns;
	struct gm_link_stats st;
	struct uplink_node u;
	struct lt_frame f;
	struct gm_hdr h;
	u16 seq0 = lt_server_seq();

	ASSERT_EQ(0, lt_modprobe());
	ASSERT_EQ(0, uplink_node_open(&u, N, ME));
	ASSERT_GT(q, 0u);
	ASSERT_LT(q, 1000u);
	ASSERT_EQ(0, gmlink_node_stats(u.g, &ns0));
	h = (struct gm_hdr) {
		.version = GM_VERSION, .type = GM_TYPE_DATA, .hop_limit = 2,
		.src = SRC, .dst = ME,
	};
	/* q frames fill the agent's queue, the last one overflows */
	for (unsigned int i = 0; i <= q; i++) {
		h.seq = (u16)(seq0 + i);
		ASSERT_EQ(0, lt_wire_send(u.master, &h, &i, sizeof(i)));
	}
	/* the overflow is the last thing counted for these frames */
	ASSERT_EQ(0, WAIT_STAT(u.slave, &st, rx_dropped, 1));
	EXPECT_EQ((__u64)q + 1, st.rx_frames);
	EXPECT_EQ((__u64)q, st.rx_local);
	EXPECT_EQ(1u, st.local_overflows);
	EXPECT_EQ(0u, st.duplicates);
	for (unsigned int i = 0; i < q; i++) {
		ASSERT_EQ(1, lt_recv(u.g, &f, TMO));
		EXPECT_EQ((u16)(seq0 + i), f.h.seq);
	}
	EXPECT_EQ(0, lt_recv(u.g, &f, 0));

	/* sent again, same (source, seq): delivered once */
	ASSERT_EQ(0, lt_wire_send(u.master, &h, &q, sizeof(q)));
	ASSERT_EQ(1, lt_recv(u.g, &f, TMO));
	EXPECT_EQ(SRC, f.h.src);
	EXPECT_EQ(h.seq, f.h.seq);
	ASSERT_EQ(sizeof(q), f.len);
	EXPECT_EQ(0, memcmp(&q, f.p, sizeof(q)));
	/* and a true duplicate is suppressed */
	ASSERT_EQ(0, lt_wire_send(u.master, &h, &q, sizeof(q)));
	ASSERT_EQ(0, WAIT_STAT(u.slave, &st, rx_dropped, 2));
	EXPECT_EQ(0, lt_recv(u.g, &f, 300));

	ASSERT_EQ(0, gmlink_link_stats(u.slave, &st));
	EXPECT_EQ((__u64)q + 3, st.rx_frames);
	EXPECT_EQ((__u64)q + 1, st.rx_local);
	EXPECT_EQ(1u, st.local_overflows);
	EXPECT_EQ(1u, st.duplicates);
	EXPECT_TRUE(stats_consistent(&st));
	ASSERT_EQ(0, gmlink_node_stats(u.g, &ns));
	EXPECT_EQ(1u, ns.local_overflows - ns0.local_overflows);
	EXPECT_EQ((__u64)q + 1, ns.local_rx - ns0.local_rx);
}

/*
 * Frames still queued when a link goes (here by an ldisc change, which
 * unlike a hangup leaves the bytes already written in the pty) are
 * counted in the node, which survives the link: every frame written is
 * on the wire or in the node's closed_tx_flushed.
 */
TEST(queued_frames_counted_when_link_closes)
{
	static u8 p[GM_MAX_PAYLOAD];
	struct gm_node_stats ns0, ns;
	struct gm_link_stats st, st2;
	struct uplink_node u;
	unsigned int sent = 0, on_wire = 0;
	struct lt_wire w;
	struct lt_frame f;
	__u64 queued;
	int fl, ld0 = 0;

	ASSERT_EQ(0, lt_modprobe());
	ASSERT_EQ(0, uplink_node_open(&u, 4, 40));
	ASSERT_EQ(0, gmlink_node_stats(u.g, &ns0));
	fl = fcntl(u.g, F_GETFL);
	ASSERT_EQ(0, fcntl(u.g, F_SETFL, fl | O_NONBLOCK));
	/*
	 * Nobody reads the wire: the pty fills up, then the link's queue.
	 * Until the queue is full and the transmit work has stopped making
	 * progress (slow guests drain the first queues into the pty).
	 */
	memset(&st, 0, sizeof(st));
	for (int round = 0; round < 100; round++) {
		while (sent < 20000 &&
		       lt_send(u.g, GM_ID_SERVER, p, sizeof(p)) >= 0)
			sent++;
		ASSERT_LT(sent, 20000u);
		ASSERT_EQ(EAGAIN, errno);
		lt_msleep(100);
		ASSERT_EQ(0, gmlink_link_stats(u.slave, &st2));
		if (round && st2.tx_frames == st.tx_frames &&
		    st2.tx_bytes == st.tx_bytes)
			break;
		st = st2;
	}
	ASSERT_EQ(st.tx_frames, st2.tx_frames);
	ASSERT_EQ(st.tx_bytes, st2.tx_bytes);
	queued = sent - st.tx_frames;
	TH_LOG("%u frames written, %llu sent, %llu queued", sent,
	       (unsigned long long)st.tx_frames, (unsigned long long)queued);
	ASSERT_GE(queued, 1u);
	EXPECT_EQ(0u, st.tx_flushed);

	/* back to N_TTY: the discipline is closed with its queue */
	ASSERT_EQ(0, ioctl(u.slave, TIOCSETD, &ld0));
	ASSERT_EQ(0, gmlink_node_stats(u.g, &ns));
	EXPECT_EQ((__u64)sent, ns.local_tx - ns0.local_tx);
	EXPECT_EQ(queued, ns.closed_tx_flushed - ns0.closed_tx_flushed);
	EXPECT_EQ(ns0.links - 1, ns.links);
	/* the rest are on the wire, complete, once each */
	lt_wire_init(&w, u.master);
	while (lt_wire_recv(&w, &f, 500) == 1)
		on_wire++;
	EXPECT_EQ(st.tx_frames, on_wire);
	EXPECT_EQ((__u64)sent, on_wire + ns.closed_tx_flushed -
			       ns0.closed_tx_flushed);
	EXPECT_EQ(0u, w.crc + w.framing + w.oversize);
	/* the node has no link left */
	EXPECT_EQ(-1, lt_send(u.g, GM_ID_SERVER, p, 1));
	EXPECT_EQ(ENOLINK, errno);
}

/* Neighbour frames from many sources, written until told to stop. */
#define FLOOD_SRCS	200	/* all fit the route table (no eviction) */

struct route_flood {
	int fd;
	volatile int stop;
	unsigned long frames;
};

static void *route_flood_writer(void *arg)
{
	static u8 wire[64 * 32];
	struct route_flood *rf = arg;
	u16 seq = lt_server_seq();

	while (!rf->stop) {
		size_t len = 0;

		/* source k of frame j: 4000 + j % SRCS, its seq j / SRCS */
		for (int i = 0; i < 64; i++) {
			unsigned long j = rf->frames + (unsigned long)i;
			struct gm_hdr h = {
				.version = GM_VERSION, .type = GM_TYPE_DATA,
				.hop_limit = 4, .src = (u16)(4000 + j % FLOOD_SRCS),
				.dst = GM_ID_SERVER, .seq = (u16)(seq + j / FLOOD_SRCS),
			};
			int n = gm_frame_encode(&h, NULL, 0, wire + len,
						sizeof(wire) - len);

			if (n < 0)
				return NULL;
			len += (size_t)n;
		}
		if (lt_write_all(rf->fd, wire, len))
			return NULL;
		rf->frames += 64;
	}
	return NULL;
}

/*
 * A neighbour link moved between two nodes while it receives frames from
 * many sources: every route it learnt leaves with it, none is learnt for
 * it in a node it has left (the nodes' route counts come back). A stress
 * test: the races it covers (a route learnt between the purge and the
 * link's slot becoming -1, or in the node the link just left) are narrow.
 */
TEST(routes_leave_with_the_link)
{
	enum { X = 6, Y = 7 };
	struct gm_node_stats x0, y0, x, y;
	struct route_flood rf = { 0 };
	int m, s, gx, gy, moves = 0;
	pthread_t th;
	long long end;

	ASSERT_EQ(0, lt_modprobe());
	gx = lt_node_open(X, 0, true);
	gy = lt_node_open(Y, 0, true);
	ASSERT_GE(gx, 0);
	ASSERT_GE(gy, 0);
	ASSERT_EQ(0, gmlink_node_stats(gx, &x0));
	ASSERT_EQ(0, gmlink_node_stats(gy, &y0));
	ASSERT_EQ(0, lt_pty(&m, &s));
	ASSERT_EQ(0, lt_attach(s));
	ASSERT_EQ(0, gmlink_configure(s, X, GM_ROLE_NEIGHBOUR, 1));
	rf.fd = m;
	ASSERT_EQ(0, pthread_create(&th, NULL, route_flood_writer, &rf));
	end = lt_now_ns() + 2000000000LL;
	while (lt_now_ns() < end) {
		ASSERT_EQ(0, gmlink_configure(s, moves % 2 ? X : Y,
					 GM_ROLE_NEIGHBOUR, 1));
		moves++;
	}
	rf.stop = 1;
	pthread_join(th, NULL);
	TH_LOG("%d moves, %lu frames", moves, rf.frames);
	EXPECT_GT(rf.frames, 0ul);

	/* it does learn: frames heard now leave routes in its node */
	ASSERT_EQ(0, gmlink_configure(s, X, GM_ROLE_NEIGHBOUR, 1));
	rf.stop = 0;	/* frames keeps counting: seqs only go forward */
	ASSERT_EQ(0, pthread_create(&th, NULL, route_flood_writer, &rf));
	for (int i = 0; i < 150; i++) {
		ASSERT_EQ(0, gmlink_node_stats(gx, &x));
		if (x.routes >= x0.routes + FLOOD_SRCS)
			break;
		lt_msleep(20);
	}
	rf.stop = 1;
	pthread_join(th, NULL);
	EXPECT_EQ(x0.routes + FLOOD_SRCS, x.routes);

	close(s);
	close(m);
	ASSERT_EQ(0, gmlink_node_stats(gx, &x));
	ASSERT_EQ(0, gmlink_node_stats(gy, &y));
	EXPECT_EQ(x0.links, x.links);
	EXPECT_EQ(y0.links, y.links);
	EXPECT_EQ(x0.routes, x.routes);
	EXPECT_EQ(y0.routes, y.routes);
}

/* Binding /dev/gmlink to a node needs CAP_NET_ADMIN; reading does not. */
TEST(bind_node_needs_cap_net_admin)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, lt_modprobe());
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct __user_cap_header_struct hdr = {
			.version = _LINUX_CAPABILITY_VERSION_3,
		};
		struct __user_cap_data_struct d[2];
		struct gm_node_stats ns;
		__u32 v = 1;
		int g;

		memset(d, 0, sizeof(d));
		if (syscall(SYS_capget, &hdr, d))
			_exit(2);
		d[0].effective &= ~(1u << CAP_NET_ADMIN);
		if (syscall(SYS_capset, &hdr, d))
			_exit(3);
		g = open("/dev/gmlink", O_RDWR | O_NONBLOCK);
		if (g < 0)
			_exit(4);
		if (ioctl(g, GM_IOC_BIND_NODE, &v) == 0)
			_exit(5);
		if (errno != EPERM)
			_exit(6);
		if (ioctl(g, GM_IOC_GET_NODE_STATS, &ns))
			_exit(7);
		if (ioctl(g, GM_IOC_GET_METER_ID, &v))
			_exit(8);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

struct poller {
	int fd, ret;
	short revents;
};

static void *poll_thread(void *arg)
{
	struct poller *p = arg;
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };

	p->ret = poll(&pfd, 1, 2 * TMO);	/* under the harness's 30 s */
	p->revents = pfd.revents;
	return NULL;
}

/*
 * A poll() already sleeping and an epoll set registered while the file
 * was bound to one node both see a frame for the node it is rebound to.
 */
TEST(rebind_moves_pollers)
{
	enum { OLD = 1, NEW = 5, ME = 55 };
	struct poller pt = { .ret = -2 };
	struct epoll_event ev = { .events = EPOLLIN };
	struct uplink_node u;
	struct lt_frame f;
	struct gm_hdr h;
	pthread_t th;
	int g, ep;
	__u32 v = OLD;

	ASSERT_EQ(0, lt_modprobe());
	node_reset(OLD);
	ASSERT_EQ(0, uplink_node_open(&u, NEW, ME));
	g = open("/dev/gmlink", O_RDWR | O_NONBLOCK);
	ASSERT_GE(g, 0);
	ASSERT_EQ(0, ioctl(g, GM_IOC_BIND_NODE, &v));
	ep = epoll_create1(0);
	ASSERT_GE(ep, 0);
	ev.data.fd = g;
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, g, &ev));
	pt.fd = g;
	ASSERT_EQ(0, pthread_create(&th, NULL, poll_thread, &pt));
	lt_msleep(300);		/* the thread sleeps in poll() */
	EXPECT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	EXPECT_EQ(-2, pt.ret);

	v = NEW;
	ASSERT_EQ(0, ioctl(g, GM_IOC_BIND_NODE, &v));
	lt_msleep(300);		/* woken by the rebind, nothing to read yet */
	EXPECT_EQ(-2, pt.ret);
	/* the rebind's wakeup is consumed: only the new node can wake it */
	EXPECT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	h = srv_hdr(ME, 2);
	ASSERT_EQ(0, lt_wire_send(u.master, &h, "new", 3));
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, TMO));
	EXPECT_TRUE(ev.events & EPOLLIN);
	pthread_join(th, NULL);
	EXPECT_EQ(1, pt.ret);
	EXPECT_TRUE(pt.revents & POLLIN);
	ASSERT_EQ(1, lt_recv(g, &f, 0));
	EXPECT_EQ(h.seq, f.h.seq);
	EXPECT_EQ(3u, f.len);
	close(ep);
	close(g);
}

/* The module cannot go while a tty uses it, and can once it is detached. */
TEST(module_unload)
{
	int m, s, ld0 = 0;

	ASSERT_EQ(0, lt_modprobe());
	ASSERT_EQ(0, lt_pty(&m, &s));
	ASSERT_EQ(0, lt_attach(s));
	ASSERT_EQ(0, gmlink_configure(s, 0, GM_ROLE_UPLINK, 1));
	EXPECT_NE(0, system("rmmod gm_link 2>/dev/null"));
	ASSERT_EQ(0, ioctl(s, TIOCSETD, &ld0));
	/* nor while the agent has /dev/gmlink open */
	int g = lt_node_open(0, 0, true);

	ASSERT_GE(g, 0);
	EXPECT_NE(0, system("rmmod gm_link 2>/dev/null"));
	close(g);
	close(s);
	close(m);
	EXPECT_EQ(0, system("rmmod gm_link"));
	EXPECT_NE(0, access("/dev/gmlink", F_OK));
	EXPECT_NE(0, system("modprobe gm_link ldisc_num=99 2>/dev/null"));
	EXPECT_EQ(0, lt_modprobe());
}

/* Is @name registered under @num in /proc/tty/ldiscs ("name num")? */
static bool ldisc_listed(const char *name, int num)
{
	FILE *f = fopen("/proc/tty/ldiscs", "r");
	char n[32];
	int k;
	bool found = false;

	while (f && fscanf(f, "%31s %d", n, &k) == 2)
		if (!strcmp(n, name) && k == num)
			found = true;
	if (f)
		fclose(f);
	return found;
}

/*
 * ldisc_num naming a discipline of the kernel (N_TTY, N_PPP, N_SLCAN,
 * N_NULL, N_CAN327) is refused: tty_register_ldisc() would silently
 * replace it. N_TTY keeps working on a fresh pty afterwards.
 */
TEST(ldisc_num_of_a_kernel_discipline_refused)
{
	static const int taken[] = { 0, 3, 17, 27, 30 };
	struct termios t;
	char cmd[96], buf[16] = "";
	int m, s, ld = -1;

	system("rmmod gm_link 2>/dev/null");
	for (size_t k = 0; k < sizeof(taken) / sizeof(taken[0]); k++) {
		snprintf(cmd, sizeof(cmd), "modprobe gm_link ldisc_num=%d 2>/dev/null",
			 taken[k]);
		EXPECT_NE(0, system(cmd)) {
			TH_LOG("ldisc_num=%d was accepted", taken[k]);
			system("rmmod gm_link");
		}
		EXPECT_NE(0, system("grep -q gmlink /proc/tty/ldiscs"));
	}
	EXPECT_TRUE(ldisc_listed("n_tty", 0));
	EXPECT_EQ(0, system("dmesg | grep -q 'ldisc_num 0 belongs to a kernel line discipline'"));
	/* a new pty still gets N_TTY, and it still works */
	ASSERT_EQ(0, lt_pty(&m, &s));
	ASSERT_EQ(0, ioctl(s, TIOCGETD, &ld));
	EXPECT_EQ(0, ld);
	ASSERT_EQ(0, tcgetattr(s, &t));
	t.c_lflag |= ICANON;
	ASSERT_EQ(0, tcsetattr(s, TCSANOW, &t));
	ASSERT_EQ(3, write(m, "hi\n", 3));
	EXPECT_EQ(3, read(s, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "hi\n", 3));
	close(s);
	close(m);
	/* the default, N_DEVELOPMENT, is taken */
	ASSERT_EQ(0, lt_modprobe());
	EXPECT_TRUE(ldisc_listed("gmlink", LT_LDISC));
}

/*
 * A neighbour floods frames for the server while the uplink is not read:
 * the discipline forwards what fits in the uplink's ring, holds the
 * neighbour back for at most one wait (its writes block meanwhile), then
 * counts the rest in fwd_queue_full without waiting, and a frame for this
 * meter that follows the flood is delivered, not held behind the forwarded
 * ones. (Before: the stalled frame blocked the link for 5 s per frame.)
 */
TEST(forwarding_never_stalls_the_link)
{
	static u8 wire[GM_MAX_WIRE], p[GM_MAX_PAYLOAD];
	const int flood = 400;
	struct uplink_node u;
	struct gm_link_stats nst, ust;
	struct lt_frame f;
	int nm, ns, n;
	long long t0;

	ASSERT_EQ(0, lt_modprobe());
	ASSERT_EQ(0, uplink_node_open(&u, 3, 31));
	ASSERT_EQ(0, lt_pty(&nm, &ns));
	ASSERT_EQ(0, lt_attach(ns));
	ASSERT_EQ(0, gmlink_configure(ns, 3, GM_ROLE_NEIGHBOUR, 1));
	t0 = lt_now_ns();
	for (int i = 0; i < flood; i++) {
		struct gm_hdr h = {
			.version = GM_VERSION, .type = GM_TYPE_DATA,
			.hop_limit = 5, .src = 777, .dst = GM_ID_SERVER,
			.seq = (u16)i,
		};

		n = gm_frame_encode(&h, p, sizeof(p), wire, sizeof(wire));
		ASSERT_GT(n, 0);
		/* blocking: it only completes if the discipline reads */
		ASSERT_EQ(0, lt_write_all(nm, wire, (size_t)n));
	}
	struct gm_hdr mine = srv_hdr(31, 3);

	n = gm_frame_encode(&mine, "here", 4, wire, sizeof(wire));
	ASSERT_EQ(0, lt_write_all(nm, wire, (size_t)n));
	ASSERT_EQ(1, lt_recv(u.g, &f, TMO));
	TH_LOG("%d forwarded frames and ours written and ours delivered in %.2f s",
	       flood, (lt_now_ns() - t0) / 1e9);
	EXPECT_EQ(4u, f.len);
	ASSERT_EQ(0, gmlink_link_stats(ns, &nst));
	ASSERT_EQ(0, gmlink_link_stats(u.slave, &ust));
	TH_LOG("neighbour: rx %llu local %llu fwd_in %llu fwd_queue_full %llu",
	       (unsigned long long)nst.rx_frames, (unsigned long long)nst.rx_local,
	       (unsigned long long)nst.fwd_in, (unsigned long long)nst.fwd_queue_full);
	EXPECT_EQ((__u64)flood + 1, nst.rx_frames);
	EXPECT_EQ(1u, nst.rx_local);
	EXPECT_EQ((__u64)flood, nst.fwd_in + nst.fwd_queue_full);
	EXPECT_GT(nst.fwd_queue_full, 0u);
	EXPECT_TRUE(stats_consistent(&nst));
	/* the uplink took what its ring and the pty hold, and refused the rest */
	EXPECT_EQ(nst.fwd_in, ust.fwd_out);
	EXPECT_EQ(nst.fwd_queue_full, ust.tx_queue_overflows);
	close(ns);
	close(nm);
}

TEST_HARNESS_MAIN
