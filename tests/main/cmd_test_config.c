// SPDX-License-Identifier: GPL-2.0
/*
 * maind.conf's [commands] section (Documentation/commands.md): the
 * defaults, the values, and errors naming file, line and key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "commands/cmd.h"
#include "maind_config.h"
#include "../unit/write_text.h"

#define HEAD "[server]\nlisten = 127.0.0.1:7800\nkey_file = /etc/k\nconninfo = dbname=x\n"

/* Load text as a file; the parser's return, err filled. */
static int load(const char *text, struct maind_config *c, char *path, char *err, size_t errlen)
{
	int rc;

	strcpy(path, "/tmp/cmd-conf-XXXXXX");
	if (write_temp_text(path, text))
		return -2;
	rc = maind_config_load(c, path, err, errlen);
	unlink(path);
	return rc;
}

TEST(defaults_and_values)
{
	struct maind_config c;
	struct mcmd_policy pol;
	char path[32], err[512];

	ASSERT_EQ(0, load(HEAD, &c, path, err, sizeof(err))) TH_LOG("%s", err);
	mcmd_policy_of(&c, &pol);
	EXPECT_EQ(GMC_TWO_ABOVE, pol.two_above);
	EXPECT_EQ(50, pol.disconnects_hour);
	ASSERT_EQ(0, load(HEAD "[commands]\ntwo_above = 4\ndisconnects_per_hour = 0\n", &c, path,
			  err, sizeof(err))) TH_LOG("%s", err);
	mcmd_policy_of(&c, &pol);
	EXPECT_EQ(4, pol.two_above);
	EXPECT_EQ(0, pol.disconnects_hour);	/* every disconnect held */
}

TEST(errors_name_file_line_key)
{
	static const struct { const char *text, *line, *key; } bad[] = {
		{ HEAD "[commands]\ntwo_above = 0\n", ":6:", "two_above" },
		{ HEAD "[commands]\ndisconnects_per_hour = many\n", ":6:", "disconnects_per_hour" },
		{ HEAD "[commands]\nlisten = 127.0.0.1:1\n", ":6:", "listen" },
		{ HEAD "two_above = 3\n", ":5:", "two_above" },	/* not a [server] key */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct maind_config c;
		char path[32], err[512];

		EXPECT_EQ(-1, load(bad[i].text, &c, path, err, sizeof(err)));
		EXPECT_NE(NULL, strstr(err, path)) TH_LOG("%s", err);
		EXPECT_NE(NULL, strstr(err, bad[i].line)) TH_LOG("%s", err);
		EXPECT_NE(NULL, strstr(err, bad[i].key)) TH_LOG("%s", err);
	}
}

TEST_HARNESS_MAIN
