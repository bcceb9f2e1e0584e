// SPDX-License-Identifier: GPL-2.0
/*
 * The meter's outbox (lib/proto/outbox.c): order and content across reopen,
 * acknowledgement, torn tails, corruption, the disk budget, the counter
 * reservation, and kill -9 of a writer in the middle of appends.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "outbox.h"

#define BUDGET	(1024 * 1024)

/* Record content is a function of its seq, of varying length. */
static size_t content(uint64_t seq, uint8_t *buf)
{
	size_t len = 1 + (size_t)(seq * 37 % 300);

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seq * 131 + i * 7);
	return len;
}

struct walk {
	uint64_t expect, count;
	int bad;
	uint64_t stop_after;
};

static int check_cb(void *ctx, uint64_t seq, const uint8_t *data, size_t len)
{
	struct walk *w = ctx;
	uint8_t want[OUTBOX_REC_MAX];
	size_t wl = content(seq, want);

	if (seq != w->expect || len != wl || memcmp(data, want, len))
		w->bad++;
	w->expect = seq + 1;
	w->count++;
	return w->stop_after && w->count == w->stop_after;
}

static int count_files(const char *dir)
{
	char cmd[160];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '^seg-'", dir);
	p = popen(cmd, "r");
	if (p) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

FIXTURE(ob) {
	char dir[64];
	struct outbox o;
};

FIXTURE_SETUP(ob)
{
	char err[256];

	strcpy(self->dir, "/tmp/outbox-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	strcat(self->dir, "/q");	/* outbox_open creates it */
	ASSERT_EQ(0, outbox_open(&self->o, self->dir, BUDGET, err, sizeof(err))) TH_LOG("%s", err);
}

FIXTURE_TEARDOWN(ob)
{
	char cmd[128];

	outbox_close(&self->o);
	self->dir[strlen(self->dir) - 2] = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd)) {
		/* nothing */
	}
}

static void fill(struct outbox *o, uint64_t from, uint64_t to, struct __test_metadata *_metadata)
{
	uint8_t buf[OUTBOX_REC_MAX];

	for (uint64_t s = from; s <= to; s++) {
		size_t len = content(s, buf);

		ASSERT_EQ(0, outbox_append(o, s, buf, len));
	}
}

static void reopen(struct _test_data_ob *self, struct __test_metadata *_metadata)
{
	char err[256];

	outbox_close(&self->o);
	ASSERT_EQ(0, outbox_open(&self->o, self->dir, BUDGET, err, sizeof(err))) TH_LOG("%s", err);
}

TEST_F(ob, order_and_content_survive_reopen)
{
	struct walk w = { .expect = 1 };
	uint8_t x = 0;

	EXPECT_EQ(1, self->o.next);
	EXPECT_EQ(-EINVAL, outbox_append(&self->o, 2, &x, 1));	/* no gaps */
	fill(&self->o, 1, 1000, _metadata);
	EXPECT_LT(1, count_files(self->dir));			/* several segments */
	reopen(self, _metadata);
	EXPECT_EQ(1001, self->o.next);
	EXPECT_EQ(1, outbox_first(&self->o));
	EXPECT_EQ(0, outbox_for_each(&self->o, 1, check_cb, &w));
	EXPECT_EQ(1000, w.count);
	EXPECT_EQ(0, w.bad);
	/* from the middle, stopping early */
	w = (struct walk){ .expect = 500, .stop_after = 10 };
	EXPECT_EQ(1, outbox_for_each(&self->o, 500, check_cb, &w));
	EXPECT_EQ(10, w.count);
	EXPECT_EQ(0, w.bad);
}

TEST_F(ob, ack_releases_and_survives_reopen)
{
	struct walk w = { .expect = 601 };
	int files_before;

	fill(&self->o, 1, 1000, _metadata);
	files_before = count_files(self->dir);
	ASSERT_EQ(0, outbox_ack(&self->o, 600));
	EXPECT_GT(files_before, count_files(self->dir));
	EXPECT_EQ(601, outbox_first(&self->o));
	reopen(self, _metadata);
	EXPECT_EQ(601, outbox_first(&self->o));
	EXPECT_EQ(0, outbox_for_each(&self->o, 1, check_cb, &w));
	EXPECT_EQ(400, w.count);
	EXPECT_EQ(0, w.bad);
	/* everything acknowledged: no segment left, numbering continues */
	ASSERT_EQ(0, outbox_ack(&self->o, 1000));
	EXPECT_EQ(0, count_files(self->dir));
	reopen(self, _metadata);
	EXPECT_EQ(1001, self->o.next);
	EXPECT_EQ(1001, outbox_first(&self->o));
	fill(&self->o, 1001, 1005, _metadata);
	w = (struct walk){ .expect = 1001 };
	EXPECT_EQ(0, outbox_for_each(&self->o, 0, check_cb, &w));
	EXPECT_EQ(5, w.count);
	/* the server holds more than we ever sent (our disk was replaced) */
	ASSERT_EQ(0, outbox_ack(&self->o, 5000));
	EXPECT_EQ(5001, self->o.next);
}

TEST_F(ob, torn_tail_is_cut_at_every_length)
{
	char path[128];
	struct stat st;
	off_t full;

	fill(&self->o, 1, 20, _metadata);
	snprintf(path, sizeof(path), "%s/seg-%016x.log", self->dir, 1);
	ASSERT_EQ(0, stat(path, &st));
	full = st.st_size;
	outbox_close(&self->o);
	/* cut the last record (seq 20) at every length inside it */
	for (off_t cut = 1; cut < (off_t)(OUTBOX_REC_OVERHEAD + content(20, (uint8_t[512]){ 0 }));
	     cut += 7) {
		char err[256];
		struct walk w = { .expect = 1 };

		ASSERT_EQ(0, truncate(path, full - cut));
		ASSERT_EQ(0, outbox_open(&self->o, self->dir, BUDGET, err, sizeof(err)))
			TH_LOG("%s", err);
		EXPECT_EQ(20, self->o.next);
		EXPECT_EQ(0, outbox_for_each(&self->o, 1, check_cb, &w));
		EXPECT_EQ(19, w.count);
		EXPECT_EQ(0, w.bad);
		/* append 20 again: the file is whole again */
		fill(&self->o, 20, 20, _metadata);
		outbox_close(&self->o);
		ASSERT_EQ(0, stat(path, &st));
		ASSERT_EQ(full, st.st_size);
	}
	/* garbage appended after the last record is cut too */
	{
		int fd = open(path, O_WRONLY | O_APPEND);
		char err[256];

		ASSERT_LE(0, fd);
		ASSERT_EQ(5, write(fd, "\xa7\0\x01\0\x15", 5));
		close(fd);
		ASSERT_EQ(0, outbox_open(&self->o, self->dir, BUDGET, err, sizeof(err)));
		EXPECT_EQ(21, self->o.next);
	}
}

TEST_F(ob, corruption_before_the_tail_refuses_to_open)
{
	char path[128], err[256];
	int fd;

	fill(&self->o, 1, 1000, _metadata);
	outbox_close(&self->o);
	snprintf(path, sizeof(path), "%s/seg-%016x.log", self->dir, 1);
	fd = open(path, O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, pwrite(fd, "\xff", 1, 100));
	close(fd);
	EXPECT_EQ(-1, outbox_open(&self->o, self->dir, BUDGET, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "seg-0000000000000001.log: corrupt record at offset"))
		TH_LOG("%s", err);
	/* and a bad state file */
	snprintf(path, sizeof(path), "%s/state", self->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ASSERT_EQ(9, write(fd, "acked 1x\n", 9));
	close(fd);
	EXPECT_EQ(-1, outbox_open(&self->o, self->dir, BUDGET, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "/state: not 'acked N'"));
	/* keep the teardown happy */
	outbox_open(&self->o, "/nonexistent/x/y", BUDGET, err, sizeof(err));
}

TEST_F(ob, disk_budget_drops_oldest_segments_only)
{
	char err[256];
	uint64_t n = 3000, first;
	struct walk w;

	outbox_close(&self->o);
	ASSERT_EQ(-1, outbox_open(&self->o, self->dir, 1000, err, sizeof(err)));
	ASSERT_EQ(0, outbox_open(&self->o, self->dir, 3 * OUTBOX_SEG_BYTES, err, sizeof(err)));
	fill(&self->o, 1, n, _metadata);
	EXPECT_GE(3 * OUTBOX_SEG_BYTES, self->o.bytes);
	first = outbox_first(&self->o);
	EXPECT_LT(1, first);
	EXPECT_EQ(first - 1, self->o.dropped);
	w = (struct walk){ .expect = first };
	EXPECT_EQ(0, outbox_for_each(&self->o, 1, check_cb, &w));
	EXPECT_EQ(n - first + 1, w.count);
	EXPECT_EQ(0, w.bad);
	outbox_close(&self->o);
	ASSERT_EQ(0, outbox_open(&self->o, self->dir, 3 * OUTBOX_SEG_BYTES, err, sizeof(err)));
	EXPECT_EQ(first, outbox_first(&self->o));
	EXPECT_EQ(n + 1, self->o.next);
}

TEST_F(ob, counter_reservation_persists)
{
	ASSERT_EQ(0, outbox_reserve_ctr(&self->o, 1024));
	ASSERT_EQ(0, outbox_reserve_ctr(&self->o, 100));	/* never goes down */
	fill(&self->o, 1, 3, _metadata);
	ASSERT_EQ(0, outbox_ack(&self->o, 2));
	reopen(self, _metadata);
	EXPECT_EQ(1024, self->o.ctr_ceiling);
	EXPECT_EQ(2, self->o.acked);
}

/*
 * A writer killed with SIGKILL at arbitrary points: every append it had
 * reported complete is there, intact, in order; at most the one in flight
 * is missing or present; appends continue without a gap.
 */
TEST_F(ob, kill_9_mid_append_loses_nothing_reported)
{
	uint64_t reported = 0;

	outbox_close(&self->o);
	for (int round = 0; round < 6; round++) {
		struct walk w = { .expect = 1 };
		char err[256];
		int p[2];
		pid_t pid;
		uint64_t v;

		ASSERT_EQ(0, pipe(p));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			struct outbox o;
			uint8_t buf[OUTBOX_REC_MAX];

			close(p[0]);
			if (outbox_open(&o, self->dir, BUDGET, err, sizeof(err)))
				_exit(1);
			for (;;) {
				uint64_t s = o.next;

				if (outbox_append(&o, s, buf, content(s, buf)))
					_exit(2);
				if (write(p[1], &s, sizeof(s)) != sizeof(s))
					_exit(3);
			}
		}
		close(p[1]);
		usleep((useconds_t)(3000 + round * 4000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		while (read(p[0], &v, sizeof(v)) == sizeof(v))
			reported = v;
		close(p[0]);
		ASSERT_EQ(0, outbox_open(&self->o, self->dir, BUDGET, err, sizeof(err)))
			TH_LOG("%s", err);
		EXPECT_EQ(0, outbox_for_each(&self->o, 1, check_cb, &w));
		EXPECT_EQ(0, w.bad);
		EXPECT_LE(reported, w.count);
		EXPECT_GE(reported + 1, w.count);
		EXPECT_EQ(w.count + 1, self->o.next);
		TH_LOG("round %d: %llu reported, %llu on disk", round,
		       (unsigned long long)reported, (unsigned long long)w.count);
		outbox_close(&self->o);
	}
	/* leave an open outbox for the teardown */
	{
		char err[256];

		ASSERT_EQ(0, outbox_open(&self->o, self->dir, BUDGET, err, sizeof(err)));
	}
}

TEST_HARNESS_MAIN
