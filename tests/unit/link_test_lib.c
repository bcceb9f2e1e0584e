// SPDX-License-Identifier: GPL-2.0
/* Host unit tests of libgmlink (lib/link/gmlink.c) that need no kernel module. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "gm_harness.h"
#include "gmlink.h"

TEST(roles)
{
	EXPECT_EQ(GM_ROLE_UPLINK, gmlink_role_parse("uplink"));
	EXPECT_EQ(GM_ROLE_NEIGHBOUR, gmlink_role_parse("Neighbour"));
	EXPECT_EQ(GM_ROLE_NEIGHBOUR, gmlink_role_parse("neighbor"));
	EXPECT_EQ(GM_ROLE_NONE, gmlink_role_parse("none"));
	EXPECT_EQ(-1, gmlink_role_parse("modem"));
	for (unsigned int r = GM_ROLE_NONE; r <= GM_ROLE_NEIGHBOUR; r++)
		EXPECT_EQ((int)r, gmlink_role_parse(gmlink_role_name(r)));
}

/* The message layout read from /dev/gmlink, replayed through a pipe. */
TEST(recv_parses_messages)
{
	struct gmlink_msg in = { .hdr = {
		.version = GM_VERSION, .type = GM_TYPE_DATA, .flags = 1,
		.hop_limit = 3, .src = 7, .dst = 9, .seq = 1234, .len = 5,
	} }, out;
	int p[2];

	memcpy(in.payload, "hello", 5);
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ((ssize_t)(sizeof(in.hdr) + 5), write(p[1], &in, sizeof(in.hdr) + 5));
	ASSERT_EQ(5, gmlink_recv(p[0], &out, 1000));
	EXPECT_EQ(0, memcmp(&in.hdr, &out.hdr, sizeof(in.hdr)));
	EXPECT_EQ(0, memcmp("hello", out.payload, 5));

	/* nothing there: a timeout, not a zero-length frame */
	EXPECT_EQ(-1, gmlink_recv(p[0], &out, 10));
	EXPECT_EQ(ETIMEDOUT, errno);

	/* a length field that does not match what was read */
	in.hdr.len = 9;
	ASSERT_EQ((ssize_t)(sizeof(in.hdr) + 5), write(p[1], &in, sizeof(in.hdr) + 5));
	EXPECT_EQ(-1, gmlink_recv(p[0], &out, 1000));
	EXPECT_EQ(EPROTO, errno);
	close(p[0]);
	close(p[1]);
}

TEST(send_checks_size_first)
{
	u8 big[GM_MAX_PAYLOAD + 1] = { 0 };

	EXPECT_EQ(-1, gmlink_send(-1, 0, GM_TYPE_DATA, 0, big, sizeof(big)));
	EXPECT_EQ(EMSGSIZE, errno);
	EXPECT_EQ(-1, gmlink_send(-1, 0, GM_TYPE_DATA, 0, big, 1));
	EXPECT_EQ(EBADF, errno);
}

TEST_HARNESS_MAIN
