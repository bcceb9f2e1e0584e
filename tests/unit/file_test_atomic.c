// SPDX-License-Identifier: GPL-2.0
/*
 * lib/file/atomic_file.c: a file is replaced whole or not at all, with the
 * mode asked for, and a failure at any step (a full disk, a missing
 * directory, an existing file that must not be replaced) leaves the old
 * contents and no temporary file behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "gm_disk_full.h"
/* the harness defines non-static fixture functions */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

FIXTURE(af) {
	char dir[64];
	char path[128];
};

FIXTURE_SETUP(af)
{
	snprintf(self->dir, sizeof(self->dir), "/tmp/gm_af_XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/state.txt", self->dir);
}

FIXTURE_TEARDOWN(af)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		TH_LOG("could not remove %s", self->dir);
}

/* The file's contents, or "" when it cannot be read. */
static const char *contents(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = 0;
	return buf;
}

static int save(const char *path, const char *text, mode_t mode, unsigned int flags)
{
	struct atomic_file a;
	int r = atomic_file_open_stream(&a, path, mode);

	if (r)
		return r;
	fputs(text, a.f);
	return atomic_file_commit(&a, flags);
}

TEST_F(af, replaces_with_the_mode_asked_for)
{
	struct stat st;
	mode_t old = umask(077);	/* the mode is not the umask's */

	ASSERT_EQ(0, save(self->path, "one\n", 0640, 0));
	EXPECT_STREQ("one\n", contents(self->path));
	ASSERT_EQ(0, stat(self->path, &st));
	EXPECT_EQ(0640, st.st_mode & 07777);
	ASSERT_EQ(0, save(self->path, "two\n", 0644, 0));
	EXPECT_STREQ("two\n", contents(self->path));
	ASSERT_EQ(0, stat(self->path, &st));
	EXPECT_EQ(0644, st.st_mode & 07777);
	EXPECT_EQ(0, gm_stray_temporaries(self->dir));
	umask(old);
}

TEST_F(af, raw_writes_of_any_bytes)
{
	unsigned char buf[70000];
	struct atomic_file a;
	struct stat st;
	size_t k;

	for (k = 0; k < sizeof(buf); k++)
		buf[k] = (unsigned char)(k * 7 + k / 256);
	ASSERT_EQ(0, atomic_file_open(&a, self->path, 0600));
	ASSERT_EQ(0, atomic_file_write(&a, buf, sizeof(buf)));
	ASSERT_EQ(0, atomic_file_commit(&a, 0));
	ASSERT_EQ(0, stat(self->path, &st));
	EXPECT_EQ((off_t)sizeof(buf), st.st_size);
	EXPECT_EQ(0600, st.st_mode & 07777);
}

TEST_F(af, a_full_disk_keeps_the_old_file)
{
	struct gm_disk_full full;
	struct atomic_file a;
	int r;

	ASSERT_EQ(0, save(self->path, "old\n", 0644, 0));
	ASSERT_EQ(0, gm_disk_full_begin(&full));
	r = save(self->path, "new and longer\n", 0644, 0);
	ASSERT_EQ(0, gm_disk_full_end(&full));
	EXPECT_EQ(-EFBIG, r);
	EXPECT_STREQ("old\n", contents(self->path));
	EXPECT_EQ(0, gm_stray_temporaries(self->dir));

	/* raw writes fail at once, and say so */
	ASSERT_EQ(0, atomic_file_open(&a, self->path, 0644));
	ASSERT_EQ(0, gm_disk_full_begin(&full));
	r = atomic_file_write(&a, "x", 1);
	ASSERT_EQ(0, gm_disk_full_end(&full));
	EXPECT_EQ(-EFBIG, r);
	EXPECT_STREQ("writing", a.step);
	atomic_file_abort(&a);
	EXPECT_STREQ("old\n", contents(self->path));
	EXPECT_EQ(0, gm_stray_temporaries(self->dir));
}

TEST_F(af, no_replace_never_overwrites)
{
	ASSERT_EQ(0, save(self->path, "first\n", 0600, ATOMIC_FILE_NO_REPLACE));
	EXPECT_STREQ("first\n", contents(self->path));
	EXPECT_EQ(-EEXIST, save(self->path, "second\n", 0600, ATOMIC_FILE_NO_REPLACE));
	EXPECT_STREQ("first\n", contents(self->path));
	EXPECT_EQ(0, gm_stray_temporaries(self->dir));
}

TEST_F(af, abort_leaves_nothing)
{
	struct atomic_file a;

	ASSERT_EQ(0, atomic_file_open_stream(&a, self->path, 0644));
	fputs("half", a.f);
	atomic_file_abort(&a);
	EXPECT_NE(0, access(self->path, F_OK));
	EXPECT_EQ(0, gm_stray_temporaries(self->dir));
}

TEST_F(af, errors_name_their_step)
{
	char path[PATH_MAX + 16];
	struct atomic_file a;

	snprintf(path, sizeof(path), "%s/no/such/dir/file", self->dir);
	EXPECT_EQ(-ENOENT, atomic_file_open(&a, path, 0644));
	EXPECT_STREQ("creating a temporary file beside it", a.step);

	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = 0;
	EXPECT_EQ(-ENAMETOOLONG, atomic_file_open(&a, path, 0644));
	EXPECT_STREQ("path too long", a.step);

	/* a directory where the file goes: the rename fails, nothing is left */
	ASSERT_EQ(0, mkdir(self->path, 0700));
	ASSERT_EQ(0, mkdir(strcat(strcpy(path, self->path), "/x"), 0700));
	EXPECT_GT(0, save(self->path, "y\n", 0644, 0));
	EXPECT_EQ(0, gm_stray_temporaries(self->dir));
}

TEST_HARNESS_MAIN
