// SPDX-License-Identifier: GPL-2.0
/* townd configuration: [town_network] and [neighbour ID] (borrowing between towns). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "gm_harness.h"
#include "townd_config.h"
#include "write_text.h"

#define KEY_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define ZERO "0000000000000000000000000000000000000000000000000000000000000000"
#define BASE \
	"[server]\ndatabase = /var/lib/t.db\nkey_file = /etc/k\n" \
	"[upstream]\naddress = 127.0.0.1:7800\nmain_public_key = " KEY_A "\n" \
	"town_id = 7\noutbox = /var/lib/up\n"
/* BASE is 8 lines long: what follows starts on line 9 */

static int load(const char *text, struct townd_config *c, char *err, size_t errlen)
{
	char path[] = "/tmp/townd-nb-conf-XXXXXX";
	int rc;

	if (write_temp_text(path, text))
		return -2;
	rc = townd_config_load(c, path, err, errlen);
	unlink(path);
	return rc;
}

TEST(neighbours_and_their_keys)
{
	static const char text[] = BASE
		"[town_network]\nlisten = 0.0.0.0:7710\nhop_limit = 4\nlease = 120\n"
		"[neighbour 12]\naddress = 192.0.2.12:7710\npublic_key = " KEY_B "\n"
		"cost = 5\noutbox = /var/lib/n12\n"
		"[neighbour 3]\naddress = [2001:db8::3]:7710\npublic_key = " KEY_A "\n"
		"outbox = /var/lib/n3\n";
	struct townd_config c;
	char err[256] = "";

	ASSERT_EQ(0, load(text, &c, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(4, c.tn.hop_limit);
	EXPECT_EQ(120, c.tn.lease_s);
	EXPECT_EQ(3600, c.tn.loan_duration_s);
	EXPECT_EQ(sizeof(struct sockaddr_in), c.tn.listen_len);
	ASSERT_EQ(2, c.tn.n);
	EXPECT_EQ(12, c.tn.nb[0].id);
	EXPECT_EQ(5, c.tn.nb[0].cost);
	EXPECT_EQ(0xff, c.tn.nb[0].pk[0]);
	EXPECT_STREQ("/var/lib/n12", c.tn.nb[0].outbox);
	EXPECT_EQ(AF_INET, c.tn.nb[0].addr.ss_family);
	EXPECT_EQ(3, c.tn.nb[1].id);
	EXPECT_EQ(1, c.tn.nb[1].cost);	/* the default */
	EXPECT_EQ(AF_INET6, c.tn.nb[1].addr.ss_family);
	EXPECT_EQ(0x00, c.tn.nb[1].pk[0]);
	EXPECT_EQ(0x11, c.tn.nb[1].pk[1]);
}

TEST(no_neighbours_is_a_town_alone)
{
	struct townd_config c;
	char err[256] = "";

	ASSERT_EQ(0, load(BASE, &c, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(0, c.tn.n);
	EXPECT_EQ(0, c.tn.listen_len);
	EXPECT_EQ(3, c.tn.hop_limit);
	EXPECT_EQ(90, c.tn.lease_s);
}

TEST(errors_name_file_line_and_key)
{
	static const struct { const char *text, *want; } c[] = {
		{ BASE "[neighbour]\n", ":9: section [neighbour]: a neighbour is [neighbour ID]" },
		{ BASE "[neighbour 0]\n", ":9: section [neighbour 0]: a neighbour is" },
		{ BASE "[neighbour 65535]\n", ":9: section [neighbour 65535]" },
		{ BASE "[neighbour x]\n", ":9: section [neighbour x]" },
		{ BASE "[neighbour 2]\naddress = 1.2.3.4:5\npublic_key = " KEY_A "\noutbox = /o\n"
		  "[neighbour 02]\n", ":13: section [neighbour 02]: town 2 already given on line 9" },
		{ BASE "[neighbour 2]\naddress = 1.2.3.4\n",
		  ":10: [neighbour 2] key 'address': '1.2.3.4' is not ADDRESS:PORT" },
		{ BASE "[neighbour 2]\npublic_key = abcd\n",
		  ":10: [neighbour 2] key 'public_key': not 64 hex digits" },
		{ BASE "[neighbour 2]\npublic_key = " ZERO "\n",
		  ":10: [neighbour 2] key 'public_key': not a usable public key" },
		{ BASE "[neighbour 2]\ncost = 0\n", ":10: [neighbour 2] key 'cost': '0' is not 1..1000000" },
		{ BASE "[neighbour 2]\noutbox = rel\n",
		  ":10: [neighbour 2] key 'outbox': must be an absolute path" },
		{ BASE "[neighbour 2]\ncolour = red\n", ":10: [neighbour 2] key 'colour': unknown key" },
		{ BASE "[neighbour 2]\naddress = 1.2.3.4:5\noutbox = /o\n",
		  ":9: [neighbour 2] key 'public_key': missing required key" },
		{ BASE "[neighbour 2]\npublic_key = " KEY_A "\noutbox = /o\n",
		  ":9: [neighbour 2] key 'address': missing required key" },
		{ BASE "[neighbour 2]\naddress = 1.2.3.4:5\npublic_key = " KEY_A "\n",
		  ":9: [neighbour 2] key 'outbox': missing required key" },
		{ BASE "[neighbour 7]\naddress = 1.2.3.4:5\npublic_key = " KEY_A "\noutbox = /o\n",
		  ":9: [neighbour 7]: town 7 is this town" },
		{ BASE "[neighbour 2]\naddress = 1.2.3.4:5\npublic_key = " KEY_A "\noutbox = /o\n"
		  "[neighbour 3]\naddress = 1.2.3.4:6\npublic_key = " KEY_A "\noutbox = /o\n",
		  ":13: [neighbour 3] key 'outbox': the outbox of [neighbour 2] too" },
		{ BASE "[neighbour 2]\naddress = 1.2.3.4:5\npublic_key = " KEY_A "\noutbox = /var/lib/up\n",
		  ":9: [neighbour 2] key 'outbox': the outbox of [upstream] too" },
		{ "[server]\ndatabase = /d\nkey_file = /k\n[neighbour 2]\naddress = 1.2.3.4:5\n"
		  "public_key = " KEY_A "\noutbox = /o\n",
		  ":4: [neighbour 2]: neighbours need this town's own id" },
		{ BASE "[town_network]\nhop_limit = 17\n",
		  ":10: [town_network] key 'hop_limit': '17' is not 1..16 hops" },
		{ BASE "[town_network]\nlease = 5\n", ":10: [town_network] key 'lease': '5' is not 10..3600" },
		{ BASE "[town_network]\nlisten = nowhere\n", ":10: [town_network] key 'listen'" },
		{ BASE "[town_network]\nneighbours = 3\n", ":10: [town_network] key 'neighbours': unknown key" },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct townd_config cfg;
		char err[400] = "";

		EXPECT_EQ(-1, load(c[i].text, &cfg, err, sizeof(err))) TH_LOG("case %zu", i);
		EXPECT_NE(NULL, strstr(err, c[i].want)) TH_LOG("case %zu: got '%s', want '%s'", i, err,
							      c[i].want);
	}
}

TEST(at_most_sixteen_neighbours)
{
	char text[8192];
	size_t o = 0;
	struct townd_config c;
	char err[256] = "";

	o += (size_t)snprintf(text + o, sizeof(text) - o, "%s", BASE);
	for (int i = 1; i <= TOWND_NEIGHBOUR_MAX + 1; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
				      "[neighbour %d]\naddress = 10.0.0.%d:7710\npublic_key = %s\n"
				      "outbox = /var/lib/n%d\n", 100 + i, i, KEY_A, i);
	ASSERT_LT(o, sizeof(text));
	EXPECT_EQ(-1, load(text, &c, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "more than 16 neighbours")) TH_LOG("%s", err);
}

TEST_HARNESS_MAIN
