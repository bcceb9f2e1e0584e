// SPDX-License-Identifier: GPL-2.0
/*
 * The meter's key file (agent/uplink/credentials.c): the factory format
 * `townctl provision ID` prints, keys from gmp_keypair_generate(), the
 * public key recomputed from the secret one, the mode check (nothing for
 * group or others), $CREDENTIALS_DIRECTORY, refusals naming "path:line:
 * key 'k'" (line counted in the text), the rotation keys (_next), the
 * atomic rewrite and the rotations built on it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "read_text.h"
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

TEST_F(cred, owner_only_modes_accepted)
{
	static const mode_t modes[] = { 0600, 0400, 0700 };

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		EXPECT_EQ(0, load_text(self, provisioned(self, 7), modes[i]))
			TH_LOG("mode %04o: %s", (unsigned int)modes[i], self->err);
		EXPECT_EQ(7, self->c.meter_id);
	}
}

TEST_F(cred, meter_id_bounds)
{
	ASSERT_EQ(0, load_text(self, provisioned(self, 1), 0600)) TH_LOG("%s", self->err);
	EXPECT_EQ(1, self->c.meter_id);
	ASSERT_EQ(0, load_text(self, provisioned(self, 65534), 0600)) TH_LOG("%s", self->err);
	EXPECT_EQ(65534, self->c.meter_id);
}

/* Issue 10 finding 6: a key file the agent's group could read was accepted. */
TEST_F(cred, open_to_group_or_others_refused)
{
	static const mode_t modes[] = { 0640, 0660, 0620, 0610, 0644, 0604, 0606, 0602 };
	char want[256];

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		EXPECT_EQ(-1, load_text(self, provisioned(self, 101), modes[i]));
		snprintf(want, sizeof(want), "%s: open to %s (mode %04o)", self->path,
			 modes[i] & 0007 ? "others" : "its group", (unsigned int)modes[i]);
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
	char sk_line[200], pk_line[200], sk_next_line[200], pk_next_line[200];
	const struct bad_case cases[] = {
		{ "meter_id = 102", "meter_id", "given twice" },
		{ "meter_id = 0", "meter_id", "'0' is not 1..65534" },
		{ "meter_id = 65535", "meter_id", "'65535' is not 1..65534" },
		{ "meter_id = -1", "meter_id", "'-1' is not 1..65534" },
		{ sk_line, "meter_secret_key", "not 64 hex digits of a key" },
		{ pk_line, "town_public_key", "not 64 hex digits" },
		{ sk_next_line, "meter_secret_key_next", "not 64 hex digits of a key" },
		{ pk_next_line, "town_public_key_next", "not 64 hex digits" },
		{ "colour = red", "colour", "unknown key (meter_id, meter_secret_key, town_public_key, "
		  "meter_secret_key_next, town_public_key_next)" },
	};
	char want[256], text[sizeof(self->text) + 200];

	strcpy(bad_sk, self->sk);
	bad_sk[10] = 'g';
	strcpy(short_pk, self->town_pk);
	short_pk[2 * GMP_KEY_LEN - 2] = '\0';
	snprintf(sk_line, sizeof(sk_line), "meter_secret_key = %s", bad_sk);
	snprintf(pk_line, sizeof(pk_line), "town_public_key = %s", short_pk);
	snprintf(sk_next_line, sizeof(sk_next_line), "meter_secret_key_next = %s", bad_sk);
	snprintf(pk_next_line, sizeof(pk_next_line), "town_public_key_next = %s", short_pk);

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
		} else if (strcmp(key, "meter_id") && strcmp(key, "colour") && !strstr(key, "_next")) {
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
	EXPECT_NE(NULL, strstr(self->err, "meterd --generate-key")) TH_LOG("%s", self->err);
	EXPECT_NE(NULL, strstr(self->err, "townctl add")) TH_LOG("%s", self->err);
	EXPECT_NE(NULL, strstr(self->err, "townctl provision")) TH_LOG("%s", self->err);
}

/* A low-order point as the town key: no session key could be derived. */
TEST_F(cred, unusable_town_key_refused)
{
	static const char *const keys[] = { "town_public_key", "town_public_key_next" };
	char zero[2 * GMP_KEY_LEN + 1], text[sizeof(self->text) + 200], line[200], want[300];

	memset(zero, '0', 2 * GMP_KEY_LEN);
	zero[2 * GMP_KEY_LEN] = '\0';
	for (size_t k = 0; k < 2; k++) {
		provisioned(self, 101);
		snprintf(line, sizeof(line), "%s = %s", keys[k], zero);
		if (k == 0) {
			char *p = strstr(self->text, "town_public_key = ");

			ASSERT_NE(NULL, p);
			snprintf(text, sizeof(text), "%.*s%s\n", (int)(p - self->text), self->text, line);
		} else {
			snprintf(text, sizeof(text), "%s%s\n", self->text, line);
		}
		EXPECT_EQ(-1, load_text(self, text, 0600));
		snprintf(want, sizeof(want), "%s:%u: key '%s': not a usable X25519 public key",
			 self->path, line_of(text, line), keys[k]);
		EXPECT_STREQ(want, self->err);
	}
}

/* A file in the middle of both rotations. */
TEST_F(cred, next_keys_load)
{
	struct gmp_keypair next, town_next;
	char sk_next[2 * GMP_KEY_LEN + 1], pk_next[2 * GMP_KEY_LEN + 1];
	char text[sizeof(self->text) + 300];

	gmp_keypair_generate(&next);
	gmp_keypair_generate(&town_next);
	gmp_hex_encode(next.sk, GMP_KEY_LEN, sk_next);
	gmp_hex_encode(town_next.pk, GMP_KEY_LEN, pk_next);
	ASSERT_EQ(0, load_text(self, provisioned(self, 9), 0600));
	EXPECT_FALSE(self->c.has_next_key);
	EXPECT_FALSE(self->c.has_next_town);
	snprintf(text, sizeof(text), "%smeter_secret_key_next = %s\ntown_public_key_next = %s\n",
		 provisioned(self, 9), sk_next, pk_next);
	ASSERT_EQ(0, load_text(self, text, 0600)) TH_LOG("%s", self->err);
	EXPECT_TRUE(self->c.has_next_key);
	EXPECT_EQ(0, memcmp(self->c.next_key.pk, next.pk, GMP_KEY_LEN));
	EXPECT_EQ(0, memcmp(self->c.next_key.sk, next.sk, GMP_KEY_LEN));
	EXPECT_TRUE(self->c.has_next_town);
	EXPECT_EQ(0, memcmp(self->c.town_pk_next, town_next.pk, GMP_KEY_LEN));
	/* the current ones are still the current ones */
	EXPECT_EQ(0, memcmp(self->c.key.pk, self->meter.pk, GMP_KEY_LEN));
	EXPECT_EQ(0, memcmp(self->c.town_pk, self->town.pk, GMP_KEY_LEN));
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

/* ---- the atomic write and the rotations ----------------------------------- */

/* Files in dir other than the key file: temporary files left behind. */
static int strays(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && strcmp(e->d_name, "uplink.key"))
			n++;
	closedir(d);
	return n;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) ? (mode_t)-1 : st.st_mode & 07777;
}

/* Every field written comes back, the secret only in the file. */
TEST_F(cred, write_then_load_round_trip)
{
	struct uplink_credentials w = { .meter_id = 4321, .has_next_key = true, .has_next_town = true };
	struct gmp_keypair town_next;
	char text[2048], hex[2 * GMP_KEY_LEN + 1];
	mode_t mask;

	w.key = self->meter;
	memcpy(w.town_pk, self->town.pk, GMP_KEY_LEN);
	gmp_keypair_generate(&w.next_key);
	gmp_keypair_generate(&town_next);
	memcpy(w.town_pk_next, town_next.pk, GMP_KEY_LEN);
	mask = umask(0);	/* the mode must not depend on the umask */
	ASSERT_EQ(0, credentials_write(&w, self->path, 0, (uid_t)-1, (gid_t)-1, self->err,
				       sizeof(self->err))) TH_LOG("%s", self->err);
	umask(mask);
	EXPECT_EQ(0600, mode_of(self->path));
	EXPECT_EQ(0, strays(self->dir));
	ASSERT_EQ(0, credentials_load(&self->c, self->path, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	EXPECT_EQ(4321, self->c.meter_id);
	EXPECT_EQ(0, memcmp(&self->c.key, &w.key, sizeof(w.key)));
	EXPECT_EQ(0, memcmp(self->c.town_pk, w.town_pk, GMP_KEY_LEN));
	EXPECT_TRUE(self->c.has_next_key);
	EXPECT_EQ(0, memcmp(&self->c.next_key, &w.next_key, sizeof(w.next_key)));
	EXPECT_TRUE(self->c.has_next_town);
	EXPECT_EQ(0, memcmp(self->c.town_pk_next, w.town_pk_next, GMP_KEY_LEN));
	/* the factory path's lines are the first ones, as townctl provision prints them */
	ASSERT_LT(0, read_text(self->path, text, sizeof(text)));
	gmp_hex_encode(w.key.sk, GMP_KEY_LEN, hex);
	EXPECT_NE(NULL, strstr(text, "\nmeter_id = 4321\nmeter_secret_key = ")) TH_LOG("%s", text);
	EXPECT_NE(NULL, strstr(text, hex));
}

/* Without CRED_REPLACE an existing file is never touched. */
TEST_F(cred, write_never_overwrites_without_replace)
{
	struct uplink_credentials w = { .meter_id = 5 };
	char before[1024], after[1024], want[256];

	w.key = self->meter;
	memcpy(w.town_pk, self->town.pk, GMP_KEY_LEN);
	ASSERT_EQ(0, put(self->path, provisioned(self, 101), 0600));
	ASSERT_LT(0, read_text(self->path, before, sizeof(before)));
	EXPECT_EQ(-EEXIST, credentials_write(&w, self->path, 0, (uid_t)-1, (gid_t)-1, self->err,
					     sizeof(self->err)));
	snprintf(want, sizeof(want), "%s: exists", self->path);
	EXPECT_STREQ(want, self->err);
	ASSERT_LT(0, read_text(self->path, after, sizeof(after)));
	EXPECT_STREQ(before, after);
	EXPECT_EQ(0, strays(self->dir));
	/* with it, replaced whole */
	ASSERT_EQ(0, credentials_write(&w, self->path, CRED_REPLACE, (uid_t)-1, (gid_t)-1,
				       self->err, sizeof(self->err))) TH_LOG("%s", self->err);
	ASSERT_EQ(0, credentials_load(&self->c, self->path, self->err, sizeof(self->err)));
	EXPECT_EQ(5, self->c.meter_id);
	EXPECT_EQ(0, strays(self->dir));
}

/* Run as root: the file is given to the owner asked for (meterd's user). */
TEST_F(cred, write_gives_the_file_to_its_owner)
{
	struct uplink_credentials w = { .meter_id = 5 };
	struct stat st;

	if (geteuid())
		SKIP(return, "needs root to give files away");
	w.key = self->meter;
	memcpy(w.town_pk, self->town.pk, GMP_KEY_LEN);
	ASSERT_EQ(0, credentials_write(&w, self->path, 0, 65534, 65534, self->err,
				       sizeof(self->err))) TH_LOG("%s", self->err);
	ASSERT_EQ(0, stat(self->path, &st));
	EXPECT_EQ(65534u, st.st_uid);
	EXPECT_EQ(65534u, st.st_gid);
	EXPECT_EQ(0600u, st.st_mode & 07777);
}

TEST_F(cred, meter_key_rotation)
{
	struct uplink_credentials again;
	uint8_t pk[GMP_KEY_LEN], pk2[GMP_KEY_LEN];

	ASSERT_EQ(0, load_text(self, provisioned(self, 101), 0600));
	EXPECT_EQ(-ENOENT, credentials_meter_rotation_finish(&self->c, self->err,
							     sizeof(self->err)));
	/* begin: a next pair in the file, its public key for the key-rotate record */
	ASSERT_EQ(0, credentials_meter_rotation_begin(&self->c, pk, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	EXPECT_TRUE(self->c.has_next_key);
	EXPECT_EQ(0, memcmp(pk, self->c.next_key.pk, GMP_KEY_LEN));
	EXPECT_NE(0, memcmp(pk, self->meter.pk, GMP_KEY_LEN));
	EXPECT_EQ(0, memcmp(self->c.key.pk, self->meter.pk, GMP_KEY_LEN));	/* still in use */
	EXPECT_EQ(0600, mode_of(self->path));
	/* a restart in between: the same next key is found, begin again keeps it */
	ASSERT_EQ(0, credentials_load(&again, self->path, self->err, sizeof(self->err)));
	EXPECT_TRUE(again.has_next_key);
	ASSERT_EQ(0, credentials_meter_rotation_begin(&again, pk2, self->err, sizeof(self->err)));
	EXPECT_EQ(0, memcmp(pk, pk2, GMP_KEY_LEN));
	/* finish: the next key is the key; the old secret is gone from the file */
	ASSERT_EQ(0, credentials_meter_rotation_finish(&again, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	EXPECT_FALSE(again.has_next_key);
	EXPECT_EQ(0, memcmp(again.key.pk, pk, GMP_KEY_LEN));
	ASSERT_EQ(0, credentials_load(&self->c, self->path, self->err, sizeof(self->err)));
	EXPECT_EQ(0, memcmp(self->c.key.pk, pk, GMP_KEY_LEN));
	EXPECT_FALSE(self->c.has_next_key);
	EXPECT_EQ(101, self->c.meter_id);
	EXPECT_EQ(0, memcmp(self->c.town_pk, self->town.pk, GMP_KEY_LEN));
	{
		char text[2048];

		ASSERT_LT(0, read_text(self->path, text, sizeof(text)));
		EXPECT_EQ(NULL, strstr(text, self->sk));
	}
	EXPECT_EQ(0, strays(self->dir));
}

TEST_F(cred, town_key_rotation)
{
	struct gmp_keypair next;
	uint8_t zero[GMP_KEY_LEN] = { 0 };
	char before[2048], after[2048];

	gmp_keypair_generate(&next);
	ASSERT_EQ(0, load_text(self, provisioned(self, 101), 0600));
	EXPECT_EQ(-ENOENT, credentials_town_rotation_finish(&self->c, self->err,
							    sizeof(self->err)));
	/* an unusable key is refused and nothing is written */
	ASSERT_LT(0, read_text(self->path, before, sizeof(before)));
	EXPECT_EQ(-EINVAL, credentials_town_rotation_begin(&self->c, zero, self->err,
							   sizeof(self->err)));
	ASSERT_LT(0, read_text(self->path, after, sizeof(after)));
	EXPECT_STREQ(before, after);
	EXPECT_FALSE(self->c.has_next_town);
	/* the town-key command: stored as the next key */
	ASSERT_EQ(0, credentials_town_rotation_begin(&self->c, next.pk, self->err,
						     sizeof(self->err))) TH_LOG("%s", self->err);
	EXPECT_TRUE(self->c.has_next_town);
	EXPECT_EQ(0, memcmp(self->c.town_pk, self->town.pk, GMP_KEY_LEN));
	ASSERT_EQ(0, credentials_load(&self->c, self->path, self->err, sizeof(self->err)));
	EXPECT_TRUE(self->c.has_next_town);
	EXPECT_EQ(0, memcmp(self->c.town_pk_next, next.pk, GMP_KEY_LEN));
	/* a WELCOME under it: promoted */
	ASSERT_EQ(0, credentials_town_rotation_finish(&self->c, self->err, sizeof(self->err)));
	ASSERT_EQ(0, credentials_load(&self->c, self->path, self->err, sizeof(self->err)));
	EXPECT_FALSE(self->c.has_next_town);
	EXPECT_EQ(0, memcmp(self->c.town_pk, next.pk, GMP_KEY_LEN));
	EXPECT_EQ(0, memcmp(self->c.key.sk, self->meter.sk, GMP_KEY_LEN));
	EXPECT_EQ(0, strays(self->dir));
}

/* The file cannot be rewritten: the rotation fails and nothing changes. */
TEST_F(cred, rotation_that_cannot_write_changes_nothing)
{
	char moved[160];
	uint8_t pk[GMP_KEY_LEN];
	struct uplink_credentials before;

	ASSERT_EQ(0, load_text(self, provisioned(self, 101), 0600));
	before = self->c;
	/* the directory went away under meterd */
	snprintf(moved, sizeof(moved), "%s.gone", self->dir);
	ASSERT_EQ(0, rename(self->dir, moved));
	EXPECT_EQ(-ENOENT, credentials_meter_rotation_begin(&self->c, pk, self->err,
							    sizeof(self->err)));
	EXPECT_NE(NULL, strstr(self->err, self->path)) TH_LOG("%s", self->err);
	EXPECT_EQ(0, memcmp(&before, &self->c, sizeof(before)));
	ASSERT_EQ(0, rename(moved, self->dir));
}

/* systemd's copy is read-only: rotations refused, saying why. */
TEST_F(cred, rotation_refused_on_credentials_directory_copy)
{
	char creds[128], copy[192];
	uint8_t pk[GMP_KEY_LEN];

	snprintf(creds, sizeof(creds), "%s/creds", self->dir);
	ASSERT_EQ(0, mkdir(creds, 0700));
	snprintf(copy, sizeof(copy), "%s/uplink.key", creds);
	ASSERT_EQ(0, put(copy, provisioned(self, 202), 0400));
	ASSERT_EQ(0, setenv("CREDENTIALS_DIRECTORY", creds, 1));
	ASSERT_EQ(0, credentials_load(&self->c, self->path, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	EXPECT_TRUE(self->c.read_only);
	EXPECT_EQ(-EROFS, credentials_meter_rotation_begin(&self->c, pk, self->err,
							   sizeof(self->err)));
	EXPECT_NE(NULL, strstr(self->err, "LoadCredential=")) TH_LOG("%s", self->err);
	EXPECT_EQ(-EROFS, credentials_town_rotation_begin(&self->c, self->town.pk, self->err,
							  sizeof(self->err)));
	EXPECT_FALSE(self->c.has_next_key);
	EXPECT_FALSE(self->c.has_next_town);
}

TEST_HARNESS_MAIN
