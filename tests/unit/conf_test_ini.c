// SPDX-License-Identifier: GPL-2.0
/*
 * The one INI reader (lib/conf/ini.c): what it hands its caller, the lines
 * it remembers, and every refusal naming file, line, section and key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gm_harness.h"
#include "ini.h"
#include "line_of.h"

struct got {
	char text[2048];
	int stop_at;		/* line on which the callback fails, 0: never */
};

static int record(struct ini *ini, const struct ini_entry *e, void *ctx)
{
	struct got *g = ctx;
	size_t l = strlen(g->text);

	if (g->stop_at && (int)e->line == g->stop_at)
		return ini_error(ini, e->line, e->section, e->key, "refused by the caller");
	if (e->key)
		snprintf(g->text + l, sizeof(g->text) - l, "%u:%s.%s=%s\n", e->line, e->section,
			 e->key, e->value);
	else
		snprintf(g->text + l, sizeof(g->text) - l, "%u:[%s]\n", e->line, e->section);
	return 0;
}

static int parse(const char *text, unsigned int flags, const char *const *rep, struct got *g,
		 char *err)
{
	struct ini ini;
	int r;

	err[0] = '\0';
	ini_init(&ini, "f.conf", flags, err, 256);
	ini.repeatable = rep;
	r = ini_parse_text(&ini, text, record, g);
	ini_free(&ini);
	return r;
}

TEST(entries_in_order_with_lines_and_trimmed_values)
{
	static const char text[] = "# head\n\n[a]\n  k1 =  v 1  \nk2=v2 # note\n; c\n[b]\nk1 = x#y\n";
	struct got g = { "", 0 };
	char err[256];

	ASSERT_EQ(0, parse(text, 0, NULL, &g, err)) TH_LOG("%s", err);
	EXPECT_STREQ("3:[a]\n4:a.k1=v 1\n5:a.k2=v2\n7:[b]\n8:b.k1=x#y\n", g.text);
}

TEST(remembers_lines_for_later_validation)
{
	static const char text[] = "[s]\n\nalpha = 1\n[t]\nbeta = 2\n";
	struct got g = { "", 0 };
	struct ini ini;
	char err[256];

	ini_init(&ini, "f.conf", 0, err, sizeof(err));
	ASSERT_EQ(0, ini_parse_text(&ini, text, record, &g));
	EXPECT_EQ(line_of(text, "alpha = 1"), ini_key_line(&ini, "s", "alpha"));
	EXPECT_EQ(line_of(text, "[t]"), ini_key_line(&ini, "t", "gamma"));	/* the section's */
	EXPECT_EQ(0u, ini_key_line(&ini, "u", "alpha"));
	EXPECT_TRUE(ini_has_key(&ini, "t", "beta"));
	EXPECT_FALSE(ini_has_key(&ini, "s", "beta"));
	EXPECT_EQ(line_of(text, "[s]"), ini_section_line(&ini, "s"));
	ini_free(&ini);
}

TEST(refusals_name_file_line_section_and_key)
{
	static const struct { const char *text, *want; } c[] = {
		{ "[a]\nk = 1\nk = 2\n", "f.conf:3: [a] key 'k': given twice (first on line 2)" },
		{ "[a]\n[b]\n[a]\n", "f.conf:3: section [a] given twice (first on line 1)" },
		{ "k = 1\n", "f.conf:1: key 'k': key outside any section" },
		{ "[a]\nno equals here\n", "f.conf:2: expected 'key = value', got 'no equals here'" },
		{ "[a\n", "f.conf:1: malformed section header '[a'" },
		{ "[a] x\n", "f.conf:1: malformed section header '[a] x'" },
		{ "[]\n", "f.conf:1: section name empty or longer than 47 characters" },
		{ "[a]\n = 3\n", "f.conf:2: bad key name ''" },
		{ "[a]\nmy key = 3\n", "f.conf:2: bad key name 'my key'" },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct got g = { "", 0 };
		char err[256];

		EXPECT_EQ(-EINVAL, parse(c[i].text, 0, NULL, &g, err)) TH_LOG("case %zu", i);
		EXPECT_STREQ(c[i].want, err) TH_LOG("case %zu", i);
	}
}

TEST(caller_refusal_stops_the_parse)
{
	struct got g = { "", 3 };
	char err[256];

	EXPECT_EQ(-EINVAL, parse("[a]\nx = 1\ny = 2\nz = 3\n", 0, NULL, &g, err));
	EXPECT_STREQ("f.conf:3: [a] key 'y': refused by the caller", err);
	EXPECT_STREQ("1:[a]\n2:a.x=1\n", g.text);
}

TEST(repeatable_keys_and_files_without_sections)
{
	static const char *const rep[] = { "listen", NULL };
	struct got g = { "", 0 };
	char err[256];

	ASSERT_EQ(0, parse("[s]\nlisten = a\nlisten = b\n", 0, rep, &g, err)) TH_LOG("%s", err);
	EXPECT_STREQ("1:[s]\n2:s.listen=a\n3:s.listen=b\n", g.text);
	g.text[0] = '\0';
	ASSERT_EQ(0, parse("id = 7\nkey = ab\n", INI_NO_SECTIONS, NULL, &g, err)) TH_LOG("%s", err);
	EXPECT_STREQ("1:.id=7\n2:.key=ab\n", g.text);
	EXPECT_EQ(-EINVAL, parse("[s]\n", INI_NO_SECTIONS, NULL, &g, err));
	EXPECT_STREQ("f.conf:1: this file has no [sections]", err);
}

TEST(long_lines_nul_bytes_and_size_limit)
{
	char path[] = "/tmp/gm_ini_XXXXXX", err[256], *text;
	struct got g = { "", 0 };
	struct ini ini;
	int fd;

	text = malloc(INI_LINE_MAX + 16);
	ASSERT_NE(NULL, text);
	memcpy(text, "[a]\nk = ", 8);
	memset(text + 8, 'v', INI_LINE_MAX);
	text[8 + INI_LINE_MAX] = '\0';
	EXPECT_EQ(-EINVAL, parse(text, 0, NULL, &g, err));
	EXPECT_STREQ("f.conf:2: line longer than 1023 characters", err);
	free(text);

	fd = mkstemp(path);
	ASSERT_LE(0, fd);
	ASSERT_EQ(10, write(fd, "[a]\nk=1\0\n\n", 10));
	close(fd);
	ini_init(&ini, path, 0, err, sizeof(err));
	EXPECT_EQ(-EINVAL, ini_parse_file(&ini, path, 4096, record, &g));
	EXPECT_NE(NULL, strstr(err, ": contains a NUL byte"));
	EXPECT_EQ(-EINVAL, ini_parse_file(&ini, path, 9, record, &g));
	EXPECT_NE(NULL, strstr(err, ": not a regular file of at most 9 bytes"));
	unlink(path);
	EXPECT_EQ(-ENOENT, ini_parse_file(&ini, path, 4096, record, &g));
	EXPECT_NE(NULL, strstr(err, ": No such file or directory"));
	ini_free(&ini);
}

TEST_HARNESS_MAIN
