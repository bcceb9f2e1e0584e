// SPDX-License-Identifier: GPL-2.0
/* townd configuration: valid files, and errors naming file, line and key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "gm_harness.h"
#include "line_of.h"
#include "townd_config.h"
#include "write_text.h"

static int load(const char *text, struct townd_config *c, char *err, size_t errlen,
		char *path)
{
	int rc;

	strcpy(path, "/tmp/townd-conf-XXXXXX");
	if (write_temp_text(path, text))
		return -2;
	rc = townd_config_load(c, path, err, errlen);
	unlink(path);
	return rc;
}

TEST(valid_file)
{
	static const char text[] =
		"# town server\n[server]\nlisten = 127.0.0.1:7700\n"
		"listen = [::1]:7701\n\ndatabase = /var/lib/x.db\n"
		"key_file = /etc/k\nmax_connections = 50\nidle_timeout = 60\n"
		"synchronous = normal\nmax_per_address = 7\nfirst_frame_timeout = 3\n"
		"stats_interval = 5\npeer_log_limit = 0\n";
	struct townd_config c;
	char err[256], path[64];
	const struct sockaddr_in *a4;
	const struct sockaddr_in6 *a6;

	ASSERT_EQ(0, load(text, &c, err, sizeof(err), path)) TH_LOG("%s", err);
	ASSERT_EQ(2, c.n_listen);
	a4 = (const struct sockaddr_in *)&c.listen[0];
	EXPECT_EQ(AF_INET, a4->sin_family);
	EXPECT_EQ(7700, ntohs(a4->sin_port));
	EXPECT_EQ(htonl(INADDR_LOOPBACK), a4->sin_addr.s_addr);
	a6 = (const struct sockaddr_in6 *)&c.listen[1];
	EXPECT_EQ(AF_INET6, a6->sin6_family);
	EXPECT_EQ(7701, ntohs(a6->sin6_port));
	EXPECT_EQ(1, a6->sin6_addr.s6_addr[15]);
	EXPECT_STREQ("/var/lib/x.db", c.database);
	EXPECT_STREQ("/etc/k", c.key_file);
	EXPECT_EQ(50, c.max_connections);
	EXPECT_EQ(60, c.idle_timeout_s);
	EXPECT_EQ(0, c.sync_full);
	EXPECT_EQ(7, c.max_per_address);
	EXPECT_EQ(3, c.first_frame_timeout_s);
	EXPECT_EQ(5, c.stats_interval_s);
	EXPECT_EQ(0, c.peer_log_limit);
	/* for the open-file limit check at start: where max_connections was set */
	EXPECT_STREQ(path, c.source);
	EXPECT_EQ(line_of(text, "max_connections = 50"), c.max_connections_line);
}

/* What an operator who writes only the required keys gets (townd.md). */
TEST(defaults)
{
	struct townd_config c;
	char err[256], path[64];

	ASSERT_EQ(0, load("[server]\ndatabase = /d\nkey_file = /k\n", &c, err, sizeof(err),
			  path)) TH_LOG("%s", err);
	EXPECT_EQ(0, c.n_listen);
	EXPECT_EQ(20000, c.max_connections);
	EXPECT_EQ(64, c.max_per_address);
	EXPECT_EQ(30, c.first_frame_timeout_s);
	EXPECT_EQ(900, c.idle_timeout_s);
	EXPECT_EQ(60, c.stats_interval_s);
	EXPECT_EQ(10, c.peer_log_limit);
	EXPECT_EQ(4096, c.max_batch);
	EXPECT_EQ(1, c.sync_full);
	EXPECT_EQ(0, c.max_connections_line);
}

/*
 * server/townd.conf.example documents every optional key with its
 * default: with the "# key = value" lines made active, the values must be
 * exactly townd's defaults.
 */
TEST(example_file_documents_the_defaults)
{
	struct townd_config ex, def;
	char text[8192], out[8192], err[256], path[64];
	size_t n, o = 0, keys = 0;
	FILE *f = fopen("server/townd.conf.example", "r");

	ASSERT_NE(NULL, f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		/* "# key = value  # comment": a key line; other comments stay comments */
		if (line[0] == '#' && line[1] == ' ' && line[2] >= 'a' && line[2] <= 'z' &&
		    strstr(line, " = ")) {
			line += 2;
			keys++;
		}
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s\n", line);
	}
	ASSERT_LT(o, sizeof(out));
	ASSERT_EQ(0, load(out, &ex, err, sizeof(err), path)) TH_LOG("%s", err);
	townd_config_defaults(&def);
	TH_LOG("%zu optional keys in the example", keys);
	EXPECT_EQ(8 + 5 + 7, keys);	/* [server], [town] allocation, [town] hours and [upstream] */
	EXPECT_EQ(def.max_connections, ex.max_connections);
	EXPECT_EQ(def.max_per_address, ex.max_per_address);
	EXPECT_EQ(def.first_frame_timeout_s, ex.first_frame_timeout_s);
	EXPECT_EQ(def.idle_timeout_s, ex.idle_timeout_s);
	EXPECT_EQ(def.stats_interval_s, ex.stats_interval_s);
	EXPECT_EQ(def.peer_log_limit, ex.peer_log_limit);
	EXPECT_EQ(def.max_batch, ex.max_batch);
	EXPECT_EQ(def.sync_full, ex.sync_full);
	EXPECT_EQ(def.grid_capacity_w, ex.grid_capacity_w);
	EXPECT_EQ(def.meter_allocation_w, ex.meter_allocation_w);
	EXPECT_EQ(def.alloc_hysteresis_w, ex.alloc_hysteresis_w);
	EXPECT_EQ(def.alloc_default_duration_s, ex.alloc_default_duration_s);
	EXPECT_EQ(def.alloc_max_duration_s, ex.alloc_max_duration_s);
	EXPECT_EQ(2, ex.n_listen);
	EXPECT_STREQ(def.town.timezone, ex.town.timezone);
	EXPECT_EQ(def.town.hour_grace_s, ex.town.hour_grace_s);
	EXPECT_EQ(def.town.retention_chunk, ex.town.retention_chunk);
	EXPECT_EQ(def.up.interval_s, ex.up.interval_s);
	EXPECT_EQ(def.up.admin_after_s, ex.up.admin_after_s);
	EXPECT_EQ(def.up.reconnect_max_s, ex.up.reconnect_max_s);
	EXPECT_EQ(def.up.outbox_max_mb, ex.up.outbox_max_mb);
	EXPECT_TRUE(ex.up.enabled);
}

/* [town] and [upstream] (issue 12): values, defaults, and no [upstream] at all. */
TEST(town_and_upstream)
{
	static const char text[] =
		"[server]\ndatabase = /d\nkey_file = /k\n"
		"[town]\ntimezone = Europe/London\nhour_grace = 0\nretention_chunk = 10\n"
		"[upstream]\naddress = 10.0.0.1:7800\ntown_id = 42\noutbox = /var/ob\n"
		"main_public_key = 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
		"interval = 2\nadmin_after = 5\nreconnect_max = 3\noutbox_max_mb = 7\n";
	const struct sockaddr_in *a;
	struct townd_config c;
	char err[256], path[64];

	ASSERT_EQ(0, load(text, &c, err, sizeof(err), path)) TH_LOG("%s", err);
	EXPECT_STREQ("Europe/London", c.town.timezone);
	EXPECT_EQ(0, c.town.hour_grace_s);
	EXPECT_EQ(10, c.town.retention_chunk);
	EXPECT_TRUE(c.up.enabled);
	a = (const struct sockaddr_in *)&c.up.addr;
	EXPECT_EQ(AF_INET, a->sin_family);
	EXPECT_EQ(7800, ntohs(a->sin_port));
	EXPECT_EQ(42, c.up.town_id);
	EXPECT_STREQ("/var/ob", c.up.outbox);
	EXPECT_EQ(0x00, c.up.main_pk[0]);
	EXPECT_EQ(0x11, c.up.main_pk[1]);
	EXPECT_EQ(0xff, c.up.main_pk[31]);
	EXPECT_EQ(2, c.up.interval_s);
	EXPECT_EQ(5, c.up.admin_after_s);
	EXPECT_EQ(3, c.up.reconnect_max_s);
	EXPECT_EQ(7, c.up.outbox_max_mb);

	ASSERT_EQ(0, load("[server]\ndatabase = /d\nkey_file = /k\n", &c, err, sizeof(err),
			  path)) TH_LOG("%s", err);
	EXPECT_FALSE(c.up.enabled);
	EXPECT_STREQ("UTC", c.town.timezone);
	EXPECT_EQ(300, c.town.hour_grace_s);
	EXPECT_EQ(2000, c.town.retention_chunk);
	EXPECT_EQ(3600, c.up.interval_s);
	EXPECT_EQ(900, c.up.admin_after_s);
	EXPECT_EQ(60, c.up.reconnect_max_s);
	EXPECT_EQ(1024, c.up.outbox_max_mb);
}

TEST(errors_name_file_line_and_key)
{
	static const struct { const char *text, *want; } c[] = {
		{ "[server]\ndatabase = /a\nkey_file = /b\nlisten = 127.0.0.1\n",
		  ":4: [server] key 'listen': '127.0.0.1' is not ADDRESS:PORT" },
		{ "[server]\nlisten = 1.2.3.4:99999\n", ":2: [server] key 'listen'" },
		{ "[server]\ndatabase = relative.db\n", ":2: [server] key 'database': must be an absolute" },
		{ "[server]\nmax_connections = 0\n", ":2: [server] key 'max_connections': '0' is not" },
		{ "[server]\nidle_timeout = 5s\n", ":2: [server] key 'idle_timeout'" },
		{ "[server]\nidle_timeout = 0\n", ":2: [server] key 'idle_timeout': '0' is not 1..86400" },
		{ "[server]\n#\nfirst_frame_timeout = 0\n",
		  ":3: [server] key 'first_frame_timeout': '0' is not 1..3600 seconds" },
		{ "[server]\nfirst_frame_timeout = 3601\n", ":2: [server] key 'first_frame_timeout'" },
		{ "[town]\ngrid_capacity_w = -5\n", ":2: [town] key 'grid_capacity_w': '-5' is not 0..4000000000 W" },
		{ "[town]\nalloc_max_duration = 0\n", ":2: [town] key 'alloc_max_duration': '0' is not 1..31622400 seconds" },
		{ "[town]\nmax_batch = 5\n", ":2: [town] key 'max_batch': unknown key" },
		{ "[server]\nmax_per_address = 0\n",
		  ":2: [server] key 'max_per_address': '0' is not 1..1000000" },
		{ "[server]\nmax_per_address = -1\n", ":2: [server] key 'max_per_address'" },
		{ "[server]\nstats_interval = 1m\n",
		  ":2: [server] key 'stats_interval': '1m' is not 1..3600 seconds" },
		{ "[server]\npeer_log_limit = 10001\n",
		  ":2: [server] key 'peer_log_limit': '10001' is not 0..10000 lines per minute" },
		{ "[server]\nfirst_frame_timeout = 5\nfirst_frame_timeout = 6\n",
		  ":3: [server] key 'first_frame_timeout': given twice (first on line 2)" },
		{ "[server]\nsynchronous = off\n", ":2: [server] key 'synchronous': 'off' is not full or normal" },
		{ "[server]\n\n\ncolour = blue\n", ":4: [server] key 'colour': unknown key" },
		{ "listen = 127.0.0.1:1\n", ":1: key 'listen': key outside any section" },
		{ "[client]\n", ":1: unknown section [client]" },
		{ "[server]\njust words\n", ":2: expected 'key = value'" },
		{ "[server]\nlisten =\n", ":2: [server] key 'listen': empty value" },
		{ "[server]\nkey_file = /k\n", "[server] key 'database': missing required key" },
		{ "[server]\ndatabase = /d\n", "[server] key 'key_file': missing required key" },
#define SRV "[server]\ndatabase = /d\nkey_file = /k\n"	/* lines 1-3 */
#define UP "[upstream]\naddress = 1.2.3.4:5\ntown_id = 3\noutbox = /o\n"	/* 4-7 */
#define PK "main_public_key = " \
	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
		{ SRV "[town]\ntimezone = Mars/Olympus\n",
		  ":5: [town] key 'timezone': unknown time zone 'Mars/Olympus'" },
		{ SRV "[town]\ntimezone = ../../etc/passwd\n", ":5: [town] key 'timezone'" },
		{ SRV "[town]\nhour_grace = 86401\n",
		  ":5: [town] key 'hour_grace': '86401' is not 0..86400 seconds" },
		{ SRV "[town]\nretention_chunk = 0\n", ":5: [town] key 'retention_chunk'" },
		{ SRV "[town]\ncolour = blue\n", ":5: [town] key 'colour': unknown key" },
		{ SRV UP, ":4: [upstream] key 'main_public_key': missing required key" },
		{ SRV "[upstream]\n" PK, ":4: [upstream] key 'address': missing required key" },
		{ SRV UP "main_public_key = 0011\n",
		  ":8: [upstream] key 'main_public_key': not 64 hex digits" },
		{ SRV UP "main_public_key = "
		  "0000000000000000000000000000000000000000000000000000000000000000\n",
		  ":8: [upstream] key 'main_public_key': not a usable public key" },
		{ SRV UP PK "interval = 0\n",
		  ":9: [upstream] key 'interval': '0' is not 1..86400 seconds" },
		{ SRV UP PK "admin_after = 604801\n", ":9: [upstream] key 'admin_after'" },
		{ SRV UP PK "address = 1.2.3.4\n", ":9: [upstream] key 'address': given twice" },
		{ SRV "[upstream]\naddress = somewhere:80\n",
		  ":5: [upstream] key 'address': 'somewhere:80' is not ADDRESS:PORT" },
		{ SRV "[upstream]\ntown_id = 65535\n",
		  ":5: [upstream] key 'town_id': '65535' is not 1..65534" },
		{ SRV "[upstream]\noutbox = relative\n",
		  ":5: [upstream] key 'outbox': must be an absolute path" },
		{ SRV "[upstream]\nreconnect_max = 0\n", ":5: [upstream] key 'reconnect_max'" },
		{ SRV "[upstream]\noutbox_max_mb = x\n", ":5: [upstream] key 'outbox_max_mb'" },
		{ SRV "[upstream]\nlisten = 1.2.3.4:5\n", ":5: [upstream] key 'listen': unknown key" },
		{ SRV "[upstream]\ninterval =\n", ":5: [upstream] key 'interval': empty value" },
#undef SRV
#undef UP
#undef PK
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct townd_config cfg;
		char err[256], path[64];

		EXPECT_EQ(-1, load(c[i].text, &cfg, err, sizeof(err), path));
		EXPECT_NE(NULL, strstr(err, c[i].want)) TH_LOG("case %zu: got '%s'", i, err);
		EXPECT_EQ(0, strncmp(err, path, strlen(path))) TH_LOG("no file name: '%s'", err);
	}
}

TEST(missing_file)
{
	struct townd_config c;
	char err[256];

	EXPECT_EQ(-1, townd_config_load(&c, "/nonexistent/townd.conf", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "/nonexistent/townd.conf: No such file"));
}

TEST(addresses)
{
	struct sockaddr_storage ss;
	socklen_t l;

	EXPECT_EQ(0, townd_parse_addr("0.0.0.0:1", &ss, &l));
	EXPECT_EQ(0, townd_parse_addr("[::]:65535", &ss, &l));
	EXPECT_EQ(-1, townd_parse_addr("[::1:80", &ss, &l));
	EXPECT_EQ(-1, townd_parse_addr("::1:80", &ss, &l));
	EXPECT_EQ(-1, townd_parse_addr("localhost:80", &ss, &l));
	EXPECT_EQ(-1, townd_parse_addr("1.2.3.4:", &ss, &l));
	EXPECT_EQ(-1, townd_parse_addr("1.2.3.4:-1", &ss, &l));
	EXPECT_EQ(-1, townd_parse_addr(":80", &ss, &l));
}

TEST_HARNESS_MAIN
