// SPDX-License-Identifier: GPL-2.0
/*
 * The meter's uplink credentials file (agent/uplink/credentials.c), as printed by
 * `townctl provision ID`: keys from gmp_keypair_generate(), the public key
 * recomputed from the secret one, the mode check, $CREDENTIALS_DIRECTORY,
 * and refusals naming "path:line: key 'k'" (line counted in the text).
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "line_of.h"
#include "credentials.h"

static int write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	/* fchmod: the umask does not decide the mode under test */
	if (write(fd, text, len) != (ssize_t)len || fchmod(fd, mode)) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

FIXTURE(cred) {
	char dir[64];
	char path[128];		/* <dir>/uplink.key */
	struct gmp_keypair meter, town;
	char sk[2 * GMP_KEY_LEN + 1], town_pk[2 * GMP_KEY_LEN + 1];
	char text[1024];
	char err[512];
	struct uplink_credentials c;
};

FIXTURE_SETUP(cred)
{
	ASSERT_LE(0, sodium_init());
	unsetenv("CREDENTIALS_DIRECTORY");
	strcpy(self->dir, "/tmp/gm_cred_XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/uplink.key", self->dir);
	gmp_keypair_generate(&self->meter);
	gmp_keypair_generate(&self->town);
	gmp_hex_encode(self->meter.sk, GMP_KEY_LEN, self->sk);
	gmp_hex_encode(self->town.pk, GMP_KEY_LEN, self->town_pk);
}

FIXTURE_TEARDOWN(cred)
{
	unsetenv("CREDENTIALS_DIRECTORY");
	nftw(self->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* What townctl provision prints, with meter_id = id. */
static const char *provisioned(FIXTURE_DATA(cred) *self, unsigned int id)
{
	snprintf(self->text, sizeof(self->text),
		 "# townctl provision %u \"Mill Lane 3\"\n"
		 "\n"
		 "meter_id = %u\n"
		 "meter_secret_key = %s\n"
		 "town_public_key = %s\n", id, id, self->sk, self->town_pk);
	return self->text;
}

static int put(const char *path, const char *text, mode_t mode)
{
	return write_file(path, text, strlen(text), mode);
}

static int load_text(FIXTURE_DATA(cred) *self, const char *text, mode_t mode)
{
	if (put(self->path, text, mode))
		return -100;
	self->err[0] = 0;
	return credentials_load(&self->c, self->path, self->err, sizeof(self->err));
}

TEST_F(cred, provisioned_file_loads)
{
	ASSERT_EQ(0, load_text(self, provisioned(self, 101), 0600)) TH_LOG("%s", self->err);
	EXPECT_EQ(101, self->c.meter_id);
	/* the loader recomputes the public key from the secret one */
	EXPECT_EQ(0, memcmp(self->c.key.pk, self->meter.pk, GMP_KEY_LEN));
	EXPECT_EQ(0, memcmp(self->c.key.sk, self->meter.sk, GMP_KEY_LEN));
	EXPECT_EQ(0, memcmp(self->c.town_pk, self->town.pk, GMP_KEY_LEN));
	EXPECT_STREQ(self->path, self->c.path);
	credentials_wipe(&self->c);
	EXPECT_TRUE(all_zero(&self->c, sizeof(self->c)));
}

TEST_F(cred, group_readable_accepted)
{
	ASSERT_EQ(0, load_text(self, provisioned(self, 7), 0640)) TH_LOG("%s", self->err);
	EXPECT_EQ(7, self->c.meter_id);
}

TEST_F(cred, meter_id_bounds)
{
	ASSERT_EQ(0, load_text(self, provisioned(self, 1), 0600)) TH_LOG("%s", self->err);
	EXPECT_EQ(1, self->c.meter_id);
	ASSERT_EQ(0, load_text(self, provisioned(self, 65534), 0600)) TH_LOG("%s", self->err);
	EXPECT_EQ(65534, self->c.meter_id);
}

TEST_F(cred, readable_by_others_refused)
{
	static const mode_t modes[] = { 0644, 0604, 0606 };
	char want[256];

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		EXPECT_EQ(-1, load_text(self, provisioned(self, 101), modes[i]));
		snprintf(want, sizeof(want), "%s: readable by others (mode %04o)", self->path,
			 (unsigned int)modes[i]);
		EXPECT_EQ(0, strncmp(self->err, want, strlen(want)))
			TH_LOG("got '%s', want '%s...'", self->err, want);
		EXPECT_NE(NULL, strstr(self->err, "chmod 600")) TH_LOG("%s", self->err);
		EXPECT_EQ(0, self->c.meter_id);
	}
}

TEST_F(cred, missing_key_named)
{
	static const char *const keys[] = { "meter_id", "meter_secret_key", "town_public_key" };
	char want[256];

	for (size_t k = 0; k < 3; k++) {
		char text[sizeof(self->text)] = "";
		char *line, *save = NULL;

		/* the provisioned file without the line of keys[k] */
		provisioned(self, 101);
		for (line = strtok_r(self->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			if (strncmp(line, keys[k], strlen(keys[k]))) {
				strcat(text, line);
				strcat(text, "\n");
			}
		EXPECT_EQ(-1, load_text(self, text, 0600)) TH_LOG("without %s", keys[k]);
		snprintf(want, sizeof(want), "%s: key '%s': missing required key", self->path,
			 keys[k]);
		EXPECT_STREQ(want, self->err);
	}
}

struct bad_case {
	const char *line;	/* a line of the file, after the three good ones */
	const char *key;	/* the key the error names */
	const char *why;	/* what it says after the key */
};

/* One wrong line after (or replacing) the provisioned ones, each named by line and key. */
TEST_F(cred, refusals_name_path_line_and_key)
{
	char bad_sk[2 * GMP_KEY_LEN + 1], short_pk[2 * GMP_KEY_LEN + 1];
	char sk_line[200], pk_line[200];
	const struct bad_case cases[] = {
		{ "meter_id = 102", "meter_id", "given twice" },
		{ "meter_id = 0", "meter_id", "'0' is not 1..65534" },
		{ "meter_id = 65535", "meter_id", "'65535' is not 1..65534" },
		{ "meter_id = -1", "meter_id", "'-1' is not 1..65534" },
		{ sk_line, "meter_secret_key", "not 64 hex digits of a key" },
		{ pk_line, "town_public_key", "not 64 hex digits" },
		{ "colour = red", "colour", "unknown key (meter_id, meter_secret_key, town_public_key)" },
	};
	char want[256], text[sizeof(self->text) + 200];

	strcpy(bad_sk, self->sk);
	bad_sk[10] = 'g';
	strcpy(short_pk, self->town_pk);
	short_pk[2 * GMP_KEY_LEN - 2] = '\0';
	snprintf(sk_line, sizeof(sk_line), "meter_secret_key = %s", bad_sk);
	snprintf(pk_line, sizeof(pk_line), "town_public_key = %s", short_pk);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *key = cases[i].key;
		unsigned int at;
		char *p;

		/*
		 * meter_id cases: the bad line replaces the good one unless it is
		 * the duplicate; key cases: the bad line comes first (it is the
		 * first of its key), the good ones after it.
		 */
		provisioned(self, 101);
		if (!strcmp(key, "meter_id") && strcmp(cases[i].why, "given twice")) {
			p = strstr(self->text, "meter_id = 101\n");
			ASSERT_NE(NULL, p);
			snprintf(text, sizeof(text), "%.*s%s\n%s", (int)(p - self->text), self->text,
				 cases[i].line, p + strlen("meter_id = 101\n"));
		} else if (strcmp(key, "meter_id") && strcmp(key, "colour")) {
			p = strstr(self->text, key);
			ASSERT_NE(NULL, p);
			snprintf(text, sizeof(text), "%.*s%s\n%s", (int)(p - self->text), self->text,
				 cases[i].line, p);
		} else {
			snprintf(text, sizeof(text), "%s%s\n", self->text, cases[i].line);
		}
		at = line_of(text, cases[i].line);
		ASSERT_NE(0u, at) TH_LOG("case %zu: '%s' not exactly one line", i, cases[i].line);
		EXPECT_EQ(-1, load_text(self, text, 0600)) TH_LOG("case %zu", i);
		if (!strcmp(cases[i].why, "given twice"))
			snprintf(want, sizeof(want), "%s:%u: key '%s': given twice (first on line %u)",
				 self->path, at, key, line_of(text, "meter_id = 101"));
		else
			snprintf(want, sizeof(want), "%s:%u: key '%s': %s", self->path, at, key,
				 cases[i].why);
		EXPECT_STREQ(want, self->err) TH_LOG("case %zu", i);
	}
}

TEST_F(cred, failure_leaves_no_key_behind)
{
	char text[sizeof(self->text) + 32];

	/* the keys are parsed before the bad last line */
	snprintf(text, sizeof(text), "%scolour = red\n", provisioned(self, 101));
	ASSERT_EQ(-1, load_text(self, text, 0600));
	EXPECT_EQ(0, self->c.meter_id);
	EXPECT_TRUE(all_zero(self->c.key.sk, GMP_KEY_LEN));
	EXPECT_TRUE(all_zero(self->c.key.pk, GMP_KEY_LEN));
	EXPECT_TRUE(all_zero(self->c.town_pk, GMP_KEY_LEN));
	EXPECT_STREQ(self->path, self->c.path);	/* still says which file */
}

TEST_F(cred, line_without_equals_refused)
{
	char text[sizeof(self->text) + 32], want[256];

	snprintf(text, sizeof(text), "%sjunk\n", provisioned(self, 101));
	EXPECT_EQ(-1, load_text(self, text, 0600));
	snprintf(want, sizeof(want), "%s:%u: expected 'key = value', got 'junk'", self->path,
		 line_of(text, "junk"));
	EXPECT_STREQ(want, self->err);
}

TEST_F(cred, nul_byte_refused)
{
	char text[sizeof(self->text) + 32], want[256];
	size_t n;

	/* a NUL hiding a bad line from a string parser */
	n = (size_t)snprintf(text, sizeof(text), "%s", provisioned(self, 101));
	memcpy(text + n, "\0colour = red\n", 14);
	n += 14;
	ASSERT_EQ(0, write_file(self->path, text, n, 0600));
	EXPECT_EQ(-1, credentials_load(&self->c, self->path, self->err, sizeof(self->err)));
	snprintf(want, sizeof(want), "%s: contains a NUL byte", self->path);
	EXPECT_STREQ(want, self->err);
}

TEST_F(cred, missing_file_says_how_to_provision)
{
	char want[256];

	EXPECT_EQ(-1, credentials_load(&self->c, self->path, self->err, sizeof(self->err)));
	snprintf(want, sizeof(want), "%s: No such file or directory", self->path);
	EXPECT_EQ(0, strncmp(self->err, want, strlen(want))) TH_LOG("%s", self->err);
	EXPECT_NE(NULL, strstr(self->err, "townctl provision")) TH_LOG("%s", self->err);
}

TEST_F(cred, credentials_directory_preferred)
{
	char creds[128], copy[192], other[192];

	/* the configured file says 101, systemd's private copy 202 */
	ASSERT_EQ(0, put(self->path, provisioned(self, 101), 0600));
	snprintf(creds, sizeof(creds), "%s/creds", self->dir);
	ASSERT_EQ(0, mkdir(creds, 0700));
	snprintf(copy, sizeof(copy), "%s/uplink.key", creds);
	ASSERT_EQ(0, put(copy, provisioned(self, 202), 0600));

	ASSERT_EQ(0, setenv("CREDENTIALS_DIRECTORY", creds, 1));
	ASSERT_EQ(0, credentials_load(&self->c, self->path, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	EXPECT_EQ(202, self->c.meter_id);
	EXPECT_STREQ(copy, self->c.path);

	/* no file of that basename there: the configured path */
	snprintf(other, sizeof(other), "%s/other.key", self->dir);
	ASSERT_EQ(0, put(other, provisioned(self, 303), 0600));
	ASSERT_EQ(0, credentials_load(&self->c, other, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	EXPECT_EQ(303, self->c.meter_id);
	EXPECT_STREQ(other, self->c.path);

	/* and errors name the file actually read */
	ASSERT_EQ(0, chmod(copy, 0644));
	EXPECT_EQ(-1, credentials_load(&self->c, self->path, self->err, sizeof(self->err)));
	EXPECT_EQ(0, strncmp(self->err, copy, strlen(copy))) TH_LOG("%s", self->err);

	ASSERT_EQ(0, unsetenv("CREDENTIALS_DIRECTORY"));
	ASSERT_EQ(0, credentials_load(&self->c, self->path, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	EXPECT_EQ(101, self->c.meter_id);
}

TEST_HARNESS_MAIN
