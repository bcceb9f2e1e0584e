// SPDX-License-Identifier: GPL-2.0
/* townd peers: addresses, text, and the per-address connection counts. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "gm_harness.h"
#include "townd_peer.h"

static struct townd_peer v4(const char *a, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct townd_peer p;

	inet_pton(AF_INET, a, &sa.sin_addr);
	townd_peer_from(&p, (struct sockaddr *)&sa, sizeof(sa));
	return p;
}

static struct townd_peer v6(const char *a, uint16_t port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct townd_peer p;

	inet_pton(AF_INET6, a, &sa.sin6_addr);
	townd_peer_from(&p, (struct sockaddr *)&sa, sizeof(sa));
	return p;
}

TEST(addresses_as_text)
{
	struct sockaddr_un su = { .sun_family = AF_UNIX };
	struct townd_peer p;
	char s[TOWND_PEER_STR];

	p = v4("192.0.2.7", 4000);
	EXPECT_STREQ("192.0.2.7:4000", townd_peer_str(&p, s));
	p = v6("2001:db8::1", 65535);
	EXPECT_STREQ("[2001:db8::1]:65535", townd_peer_str(&p, s));
	p = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	EXPECT_STREQ("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", townd_peer_str(&p, s));
	/* a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d */
	p = v6("::ffff:198.51.100.3", 7);
	EXPECT_EQ(4, p.family);
	EXPECT_STREQ("198.51.100.3:7", townd_peer_str(&p, s));
	townd_peer_from(&p, (struct sockaddr *)&su, sizeof(su));
	EXPECT_EQ(0, p.family);
	EXPECT_STREQ("local", townd_peer_str(&p, s));
	/* a truncated address is no address */
	{
		struct sockaddr_in sa = { .sin_family = AF_INET };

		townd_peer_from(&p, (struct sockaddr *)&sa, 4);
		EXPECT_EQ(0, p.family);
	}
}

TEST(groups_are_ipv4_addresses_and_ipv6_slash_64)
{
	struct townd_addrtab t;
	struct townd_peer a = v4("192.0.2.1", 1), a2 = v4("192.0.2.1", 2),
			  mapped = v6("::ffff:192.0.2.1", 3), b = v4("192.0.2.2", 1),
			  x = v6("2001:db8:0:1::1", 1), x2 = v6("2001:db8:0:1:ffff::9", 1),
			  y = v6("2001:db8:0:2::1", 1), local = { 0 };

	ASSERT_LE(0, sodium_init());
	townd_addrtab_init(&t);
	EXPECT_EQ(1, townd_addrtab_add(&t, &a, 3));
	EXPECT_EQ(1, townd_addrtab_add(&t, &a2, 3));
	EXPECT_EQ(1, townd_addrtab_add(&t, &mapped, 3));
	EXPECT_EQ(0, townd_addrtab_add(&t, &a, 3));	/* the fourth from 192.0.2.1 */
	EXPECT_EQ(3, townd_addrtab_count(&t, &a2));
	EXPECT_EQ(1, townd_addrtab_add(&t, &b, 3));
	EXPECT_EQ(1, townd_addrtab_count(&t, &b));
	EXPECT_EQ(1, townd_addrtab_add(&t, &x, 2));
	EXPECT_EQ(1, townd_addrtab_add(&t, &x2, 2));	/* same /64 */
	EXPECT_EQ(0, townd_addrtab_add(&t, &x, 2));
	EXPECT_EQ(1, townd_addrtab_add(&t, &y, 2));	/* the next /64 */
	for (int i = 0; i < 10; i++)			/* no address: no limit */
		EXPECT_EQ(1, townd_addrtab_add(&t, &local, 1));
	EXPECT_EQ(0, townd_addrtab_count(&t, &local));
	EXPECT_EQ(4, t.used);
	townd_addrtab_del(&t, &mapped);
	EXPECT_EQ(2, townd_addrtab_count(&t, &a));
	EXPECT_EQ(1, townd_addrtab_add(&t, &a, 3));
	townd_addrtab_del(&t, &b);
	EXPECT_EQ(0, townd_addrtab_count(&t, &b));
	EXPECT_EQ(3, t.used);
	townd_addrtab_free(&t);
}

/*
 * Random adds and deletes over a small set of addresses (many
 * collisions, every slot freed and reused, the table grown) against a
 * plain array of counts.
 */
TEST(matches_a_reference_under_random_churn)
{
	enum { ADDRS = 3000, OPS = 400000, MAX = 5 };
	uint32_t *ref = calloc(ADDRS, sizeof(*ref));
	struct townd_addrtab t;
	uint32_t groups = 0, seed = 12345;

	ASSERT_NE(NULL, ref);
	ASSERT_LE(0, sodium_init());
	townd_addrtab_init(&t);
	for (int op = 0; op < OPS; op++) {
		struct townd_peer p = { .family = 4 };
		uint32_t k;
		int r;

		seed = seed * 1103515245u + 12345u;
		k = (seed >> 8) % ADDRS;
		/* the first third of the run mostly adds, the rest mostly deletes */
		memcpy(p.addr, &k, sizeof(k));
		if ((seed >> 4) % 3 < (op < OPS / 3 ? 2u : 1u)) {
			r = townd_addrtab_add(&t, &p, MAX);
			ASSERT_EQ(ref[k] < MAX ? 1 : 0, r);
			if (r == 1 && !ref[k]++)
				groups++;
		} else if (ref[k]) {
			townd_addrtab_del(&t, &p);
			if (!--ref[k])
				groups--;
		}
		ASSERT_EQ(groups, t.used);
		if (op % 1000 == 0)
			for (uint32_t i = 0; i < ADDRS; i++) {
				memcpy(p.addr, &i, sizeof(i));
				ASSERT_EQ(ref[i], townd_addrtab_count(&t, &p)) TH_LOG("op %d addr %u", op, i);
			}
	}
	TH_LOG("%u groups left in %u slots", t.used, t.cap);
	EXPECT_GE(t.cap, 2 * t.used);
	townd_addrtab_free(&t);
	free(ref);
}

TEST_HARNESS_MAIN
