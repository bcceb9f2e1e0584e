// SPDX-License-Identifier: GPL-2.0
/*
 * Two QEMU guests joined by a serial chardev (tests/guest/link/two-guests.sh),
 * each running the module. The kernel command line says which side this is:
 *
 *   gmlink.peer=a   meter 701, cut off: its only link is the serial port
 *   gmlink.peer=b   meter 702: neighbour link on the serial port, uplink on a
 *                   pty whose far end (the "town server") is this test
 *   gmlink.tty=DEV  the serial port (default /dev/ttyS1)
 *
 * A greets B until B answers (the other guest may still be booting), then
 * sends N frames to the server; B forwards them to its uplink, where they
 * must all arrive once and in order, unseen by B's agent. The server then
 * answers each one through B back to A. Without gmlink.peer the test skips.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "link_util.h"

#define N	300
#define ID_A	701
#define ID_B	702

static char peer;
static char tty_path[64] = "/dev/ttyS1";

static void read_cmdline(void)
{
	char buf[4096], *tok, *save;
	FILE *f = fopen("/proc/cmdline", "r");
	size_t n;

	if (!f)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	for (tok = strtok_r(buf, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save)) {
		if (!strncmp(tok, "gmlink.peer=", 12))
			peer = tok[12];
		else if (!strncmp(tok, "gmlink.tty=", 11))
			snprintf(tty_path, sizeof(tty_path), "%s", tok + 11);
	}
}

static int open_serial(void)
{
	struct termios t;
	int fd = open(tty_path, O_RDWR | O_NOCTTY);

	if (fd < 0)
		return -1;
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		cfsetspeed(&t, B115200);
		tcsetattr(fd, TCSANOW, &t);
	}
	if (lt_attach(fd) || gmlink_configure(fd, 0, GM_ROLE_NEIGHBOUR, 1)) {
		close(fd);
		return -1;
	}
	return fd;
}

FIXTURE(twoguest) {
	int unused;
};

FIXTURE_SETUP(twoguest)
{
	self->unused = 0;
}

FIXTURE_TEARDOWN(twoguest)
{
}

/* the other guest may take a while to boot under TCG */
TEST_F_TIMEOUT(twoguest, forwarding, 300)
{
	struct lt_frame f;
	int ser, g;

	read_cmdline();
	if (peer != 'a' && peer != 'b')
		SKIP(return, "not one of two guests (no gmlink.peer=)");
	ASSERT_EQ(0, lt_modprobe());
	/* the meter id first: until then every frame would be forwarded */
	g = lt_node_open(0, peer == 'a' ? ID_A : ID_B, false);
	ASSERT_GE(g, 0);
	ser = open_serial();
	ASSERT_GE(ser, 0);
	TH_LOG("guest %c on %s", peer, tty_path);

	if (peer == 'a') {
		u8 p[GM_MAX_PAYLOAD];
		int ready = 0;

		/* greet B until it answers: up to 120 s for the other boot */
		for (int i = 0; i < 600 && !ready; i++) {
			ASSERT_LT(0, lt_send(g, ID_B, "hello", 5));
			while (lt_recv(g, &f, 200) == 1)
				if (f.h.src == ID_B && f.len == 5 &&
				    !memcmp(f.p, "ready", 5))
					ready = 1;
		}
		ASSERT_EQ(1, ready);
		for (int i = 0; i < N; i++) {
			size_t len = (size_t)(i * 31) % (GM_MAX_PAYLOAD + 1);

			lt_fill(p, len, (unsigned int)i);
			ASSERT_LT(0, lt_send(g, GM_ID_SERVER, p, len));
		}
		/* the server's answers come back through B */
		for (int i = 0; i < N; i++) {
			do {
				ASSERT_EQ(1, lt_recv(g, &f, 60000));
			} while (f.h.src == ID_B);	/* late "ready"s */
			ASSERT_EQ(GM_ID_SERVER, f.h.src);
			ASSERT_EQ(4u, f.len);
			ASSERT_EQ((u8)i, f.p[0]);
			ASSERT_EQ((u8)(i >> 8), f.p[1]);
		}
	} else {
		int m, s, first = -1, got = 0;
		struct lt_wire w;
		u8 p[GM_MAX_PAYLOAD];

		ASSERT_EQ(0, lt_pty(&m, &s));
		ASSERT_EQ(0, lt_attach(s));
		ASSERT_EQ(0, gmlink_configure(s, 0, GM_ROLE_UPLINK, 1));
		lt_wire_init(&w, m);
		/* answer greetings while A's data arrives on the uplink */
		while (got < N) {
			while (lt_recv(g, &f, 0) == 1) {
				ASSERT_EQ(ID_A, f.h.src);
				ASSERT_EQ(0, memcmp(f.p, "hello", 5));
				ASSERT_LT(0, lt_send(g, ID_A, "ready", 5));
			}
			if (lt_wire_recv(&w, &f, first < 0 ? 200 : 60000) != 1) {
				ASSERT_LT(first, 0);
				continue;
			}
			size_t len = (size_t)got * 31 % (GM_MAX_PAYLOAD + 1);

			ASSERT_EQ(ID_A, f.h.src);
			if (first < 0)
				first = f.h.seq;
			ASSERT_EQ((u16)(first + got), f.h.seq);
			ASSERT_EQ(GM_HOP_DEFAULT - 1, f.h.hop_limit);
			ASSERT_EQ(len, f.len);
			lt_fill(p, len, (unsigned int)got);
			ASSERT_EQ(0, memcmp(p, f.p, len));
			got++;
		}
		EXPECT_EQ(0u, w.crc + w.framing + w.oversize);
		/* B's agent saw none of A's data */
		while (lt_recv(g, &f, 0) == 1)
			ASSERT_EQ(0, memcmp(f.p, "hello", 5));
		for (int i = 0; i < N; i++) {
			struct gm_hdr h = {
				.version = GM_VERSION, .type = GM_TYPE_DATA,
				.hop_limit = 4, .src = GM_ID_SERVER, .dst = ID_A,
				.seq = (u16)(1000 + i),
			};
			u8 r[4] = { (u8)i, (u8)(i >> 8), 'o', 'k' };

			ASSERT_EQ(0, lt_wire_send(m, &h, r, sizeof(r)));
			if (i % 32 == 31)
				lt_msleep(50);	/* A's agent reads as it goes */
		}
		/* stay until A had time to read them */
		lt_msleep(3000);
	}
}

TEST_HARNESS_MAIN
