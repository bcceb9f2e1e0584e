// SPDX-License-Identifier: GPL-2.0
/*
 * meterd --generate-key (agent/uplink/keygen.c): the meter's key pair made
 * on the meter, the secret only in the key file (mode 0600, its directory
 * 0700, given to meterd's user when run as root), the public key and the
 * exact `townctl add` line printed, an existing key never replaced without
 * --force, and every bad option refused before anything is written.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "read_text.h"
#include "credentials.h"
#include "keygen.h"

#define NOBODY	65534

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

FIXTURE(keygen) {
	char dir[64];
	char keys[96];		/* <dir>/keys (not there at the start) */
	char path[128];		/* <dir>/keys/uplink.key */
	char conf[128];		/* meterd.conf naming it */
	struct gmp_keypair town;
	char town_hex[2 * GMP_KEY_LEN + 1];
	char out[4096], err[4096];
	struct keygen_result res;
	char msg[600];
};

FIXTURE_SETUP(keygen)
{
	char text[512];
	FILE *f;

	ASSERT_LE(0, sodium_init());
	unsetenv("CREDENTIALS_DIRECTORY");
	strcpy(self->dir, "/tmp/gm_keygen_XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->keys, sizeof(self->keys), "%s/keys", self->dir);
	snprintf(self->path, sizeof(self->path), "%s/uplink.key", self->keys);
	snprintf(self->conf, sizeof(self->conf), "%s/meterd.conf", self->dir);
	snprintf(text, sizeof(text), "[sensors]\nmains_device = ct0\n[uplink]\ncredentials = %s\n"
		 "[modem]\ndevice = /dev/ttyS1\napn = internet\nserver = 127.0.0.1:7700\n",
		 self->path);
	f = fopen(self->conf, "w");
	ASSERT_NE(NULL, f);
	fputs(text, f);
	ASSERT_EQ(0, fclose(f));
	/* the command runs as nobody in these tests: its directory is nobody's */
	if (!geteuid()) {
		ASSERT_EQ(0, chown(self->dir, NOBODY, NOBODY));
		ASSERT_EQ(0, chown(self->conf, NOBODY, NOBODY));
	}
	gmp_keypair_generate(&self->town);
	gmp_hex_encode(self->town.pk, GMP_KEY_LEN, self->town_hex);
}

FIXTURE_TEARDOWN(keygen)
{
	nftw(self->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/*
 * meterd's option handling ends in keygen_main(): run it in a child (as
 * nobody when the test runs as root: root would give the file to meterd's
 * user, which the test machine need not have), stdout and stderr to files.
 * Returns the exit status.
 */
static int run(FIXTURE_DATA(keygen) *self, const struct keygen_opts *o, const char *conf)
{
	char outp[128], errp[128];
	int status;
	pid_t pid;

	snprintf(outp, sizeof(outp), "%s/out", self->dir);
	snprintf(errp, sizeof(errp), "%s/err", self->dir);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		FILE *out, *err;

		if (!geteuid() && (setgid(NOBODY) || setuid(NOBODY)))
			_exit(100);
		out = fopen(outp, "w");
		err = fopen(errp, "w");
		if (!out || !err)
			_exit(101);
		status = keygen_main(o, conf ? conf : self->conf, out, err);
		fclose(out);
		fclose(err);
		_exit(status);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	read_text(outp, self->out, sizeof(self->out));
	read_text(errp, self->err, sizeof(self->err));
	unlink(outp);
	unlink(errp);
	return WEXITSTATUS(status);
}

static struct keygen_opts opts(FIXTURE_DATA(keygen) *self, const char *id)
{
	return (struct keygen_opts){ .generate = true, .meter_id = id, .town_key = self->town_hex };
}

TEST_F(keygen, generates_writes_and_prints_the_townctl_line)
{
	struct keygen_opts o = opts(self, "101");
	struct uplink_credentials c;
	char pk_hex[2 * GMP_KEY_LEN + 1], sk_hex[2 * GMP_KEY_LEN + 1], want[200];
	struct stat st;

	ASSERT_EQ(0, run(self, &o, NULL)) TH_LOG("%s", self->err);
	/* the key file: mode 0600 in a new directory of mode 0700 */
	ASSERT_EQ(0, stat(self->keys, &st));
	EXPECT_EQ(0700u, st.st_mode & 07777);
	ASSERT_EQ(0, stat(self->path, &st));
	EXPECT_EQ(0600u, st.st_mode & 07777);
	EXPECT_EQ(geteuid() ? geteuid() : NOBODY, st.st_uid);
	ASSERT_EQ(0, credentials_load(&c, self->path, self->msg, sizeof(self->msg)))
		TH_LOG("%s", self->msg);
	EXPECT_EQ(101, c.meter_id);
	EXPECT_EQ(0, memcmp(c.town_pk, self->town.pk, GMP_KEY_LEN));
	EXPECT_FALSE(c.has_next_key);
	EXPECT_FALSE(c.has_next_town);
	/* what it printed: the public key of the secret in the file, the exact townctl line */
	gmp_hex_encode(c.key.pk, GMP_KEY_LEN, pk_hex);
	gmp_hex_encode(c.key.sk, GMP_KEY_LEN, sk_hex);
	snprintf(want, sizeof(want), "\nmeter_public_key = %s\n", pk_hex);
	EXPECT_NE(NULL, strstr(self->out, want)) TH_LOG("%s", self->out);
	snprintf(want, sizeof(want), "\ntownctl add 101 %s\n", pk_hex);
	EXPECT_NE(NULL, strstr(self->out, want)) TH_LOG("%s", self->out);
	EXPECT_EQ(0, strncmp(self->out, self->path, strlen(self->path))) TH_LOG("%s", self->out);
	/* and never the secret */
	EXPECT_EQ(NULL, strstr(self->out, sk_hex));
	EXPECT_EQ(NULL, strstr(self->err, sk_hex));
	EXPECT_STREQ("", self->err);
	credentials_wipe(&c);
}

TEST_F(keygen, existing_key_kept_unless_forced)
{
	struct keygen_opts o = opts(self, "101");
	char before[1024], after[1024];
	struct uplink_credentials c;

	ASSERT_EQ(0, run(self, &o, NULL)) TH_LOG("%s", self->err);
	ASSERT_LT(0, read_text(self->path, before, sizeof(before)));
	/* again: refused, the key the town knows stays */
	o.meter_id = "102";
	EXPECT_EQ(1, run(self, &o, NULL));
	EXPECT_NE(NULL, strstr(self->err, "exists")) TH_LOG("%s", self->err);
	EXPECT_NE(NULL, strstr(self->err, "--force")) TH_LOG("%s", self->err);
	ASSERT_LT(0, read_text(self->path, after, sizeof(after)));
	EXPECT_STREQ(before, after);
	/* --force: a new key pair, and the line to replace the enrolled one */
	o.force = true;
	ASSERT_EQ(0, run(self, &o, NULL)) TH_LOG("%s", self->err);
	ASSERT_LT(0, read_text(self->path, after, sizeof(after)));
	EXPECT_STRNE(before, after);
	ASSERT_EQ(0, credentials_load(&c, self->path, self->msg, sizeof(self->msg)));
	EXPECT_EQ(102, c.meter_id);
	EXPECT_NE(NULL, strstr(self->out, "townctl replace 102 ")) TH_LOG("%s", self->out);
	credentials_wipe(&c);
}

/* Nothing is written for bad options; each says what it wants. */
TEST_F(keygen, bad_options_refused_before_anything_is_written)
{
	char zeros[2 * GMP_KEY_LEN + 1], shortk[2 * GMP_KEY_LEN];
	struct {
		struct keygen_opts o;
		int status;
		const char *says;
	} cases[] = {
		{ { .generate = true, .town_key = self->town_hex }, 2, "--meter-id" },
		{ { .generate = true, .meter_id = "0", .town_key = self->town_hex }, 2, "1..65534" },
		{ { .generate = true, .meter_id = "65535", .town_key = self->town_hex }, 2, "1..65534" },
		{ { .generate = true, .meter_id = "7x", .town_key = self->town_hex }, 2, "--meter-id" },
		{ { .generate = true, .meter_id = "7" }, 2, "--town-key" },
		{ { .generate = true, .meter_id = "7", .town_key = shortk }, 2, "64 hex digits" },
		{ { .generate = true, .meter_id = "7", .town_key = zeros }, 2, "not a usable" },
		{ { .meter_id = "7", .town_key = self->town_hex }, 2, "go with --generate-key" },
		{ { .force = true }, 2, "go with --generate-key" },
	};

	memset(zeros, '0', 2 * GMP_KEY_LEN);
	zeros[2 * GMP_KEY_LEN] = '\0';
	memcpy(shortk, self->town_hex, sizeof(shortk) - 1);
	shortk[sizeof(shortk) - 1] = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		EXPECT_TRUE(keygen_wanted(&cases[i].o));
		EXPECT_EQ(cases[i].status, run(self, &cases[i].o, NULL)) TH_LOG("case %zu", i);
		EXPECT_NE(NULL, strstr(self->err, cases[i].says))
			TH_LOG("case %zu: '%s' lacks '%s'", i, self->err, cases[i].says);
		EXPECT_EQ(-1, access(self->keys, F_OK)) TH_LOG("case %zu", i);
	}
	EXPECT_FALSE(keygen_wanted(&(struct keygen_opts){ 0 }));
}

TEST_F(keygen, bad_configuration_is_a_configuration_error)
{
	struct keygen_opts o = opts(self, "7");
	char conf[160];

	snprintf(conf, sizeof(conf), "%s/nothere.conf", self->dir);
	EXPECT_EQ(78, run(self, &o, conf));
	EXPECT_NE(NULL, strstr(self->err, "configuration error")) TH_LOG("%s", self->err);
	EXPECT_NE(NULL, strstr(self->err, conf)) TH_LOG("%s", self->err);
	EXPECT_EQ(-1, access(self->keys, F_OK));
}

/* Run as root: the directory and the file go to meterd's user. */
TEST_F(keygen, root_gives_file_and_directory_to_the_agent_user)
{
	struct stat st;

	if (geteuid())
		SKIP(return, "needs root");
	ASSERT_EQ(0, keygen_write(self->path, 9, self->town.pk, false, "nobody", &self->res,
				  self->msg, sizeof(self->msg))) TH_LOG("%s", self->msg);
	EXPECT_TRUE(self->res.dir_created);
	EXPECT_STREQ("", self->res.note);
	ASSERT_EQ(0, stat(self->keys, &st));
	EXPECT_EQ((uid_t)NOBODY, st.st_uid);
	EXPECT_EQ(0700u, st.st_mode & 07777);
	ASSERT_EQ(0, stat(self->path, &st));
	EXPECT_EQ((uid_t)NOBODY, st.st_uid);
	EXPECT_EQ((gid_t)NOBODY, st.st_gid);
	EXPECT_EQ(0600u, st.st_mode & 07777);
	/* an existing directory of someone else is left alone, with a note */
	ASSERT_EQ(0, chown(self->keys, 0, 0));
	ASSERT_EQ(0, keygen_write(self->path, 9, self->town.pk, true, "nobody", &self->res,
				  self->msg, sizeof(self->msg))) TH_LOG("%s", self->msg);
	EXPECT_TRUE(self->res.replaced);
	EXPECT_FALSE(self->res.dir_created);
	EXPECT_NE(NULL, strstr(self->res.note, "is not owned by nobody")) TH_LOG("%s", self->res.note);
	ASSERT_EQ(0, stat(self->keys, &st));
	EXPECT_EQ(0u, st.st_uid);
	/* a user that does not exist: nothing written */
	EXPECT_GT(0, keygen_write(self->path, 9, self->town.pk, true, "no-such-user-gm", &self->res,
				  self->msg, sizeof(self->msg)));
	EXPECT_NE(NULL, strstr(self->msg, "user 'no-such-user-gm' does not exist"))
		TH_LOG("%s", self->msg);
}

TEST_HARNESS_MAIN
