// SPDX-License-Identifier: GPL-2.0
/*
 * Crash-safe store: round trip, runtime slots, truncated writes at every
 * byte, bit flips, garbage, compaction, and a real kill -9 of a writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The 6.1 harness defines fixture setup/teardown functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "crc32.h"
#include "store.h"

struct snap {
	uint64_t counter;
	uint64_t energy_mwh;
	char pad[200];
};

static void fill(struct snap *s, uint64_t n)
{
	memset(s, 0, sizeof(*s));
	s->counter = n;
	s->energy_mwh = n * 277;
	memset(s->pad, (int)(n & 0x7f), sizeof(s->pad));
}

static struct profile_entry entry(uint64_t n)
{
	struct profile_entry e = { .start = 1700000000 + (int64_t)n * 900,
				   .import_mwh = (uint32_t)n * 10, .export_mwh = 1, .renew_mwh = 2 };
	return e;
}

FIXTURE(store) {
	char dir[64], state[80], run[80], log[100];
};

FIXTURE_SETUP(store)
{
	strcpy(self->dir, "/tmp/agent_test_store.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->state, sizeof(self->state), "%s/state", self->dir);
	snprintf(self->run, sizeof(self->run), "%s/run", self->dir);
	snprintf(self->log, sizeof(self->log), "%s/meterd.log", self->state);
	ASSERT_EQ(0, mkdir(self->state, 0700));
	ASSERT_EQ(0, mkdir(self->run, 0700));
}

FIXTURE_TEARDOWN(store)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		TH_LOG("cleanup failed");
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n = 0;

	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			n = -1;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return in < 0 || out < 0 || n < 0 ? -1 : 0;
}

static off_t file_size(const char *p)
{
	struct stat st;

	return stat(p, &st) ? -1 : st.st_size;
}

/* Write n commits (snapshot i with profile entry i), return the log size after each. */
static void write_commits(struct __test_metadata *_metadata, const char *state, const char *run,
			  int n, off_t *sizes, const char *log)
{
	struct store s;
	struct snap sn;

	ASSERT_EQ(0, store_open(&s, state, run, sizeof(sn)));
	for (int i = 1; i <= n; i++) {
		struct profile_entry e = entry((uint64_t)i);

		fill(&sn, (uint64_t)i);
		ASSERT_LE(0, store_commit(&s, &sn, &e, i == n));
		if (sizes)
			sizes[i] = file_size(log);
	}
	store_close(&s);
}

TEST(crc32_check_value)
{
	EXPECT_EQ(0xcbf43926u, gm_crc32(0, "123456789", 9));
	EXPECT_EQ(gm_crc32(gm_crc32(0, "1234", 4), "56789", 5), gm_crc32(0, "123456789", 9));
}

TEST_F(store, round_trip)
{
	struct store s;
	struct snap sn, want;
	struct profile p;
	struct store_recovery rec;

	write_commits(_metadata, self->state, self->run, 20, NULL, self->log);
	ASSERT_EQ(0, profile_init(&p, 100));
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	memset(&sn, 0, sizeof(sn));
	ASSERT_EQ(0, store_recover(&s, &sn, &p, &rec));
	fill(&want, 20);
	EXPECT_TRUE(rec.have_snapshot);
	EXPECT_FALSE(rec.from_live);
	EXPECT_EQ(0u, rec.corrupt_records);
	EXPECT_EQ(0, memcmp(&want, &sn, sizeof(sn)));
	ASSERT_EQ(20u, p.count);
	EXPECT_EQ(entry(7).import_mwh, profile_at(&p, 6)->import_mwh);
	store_close(&s);
	profile_free(&p);
}

TEST_F(store, empty_store_reports_nothing)
{
	struct store s;
	struct snap sn;
	struct store_recovery rec;

	fill(&sn, 99);
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, &rec));
	EXPECT_FALSE(rec.have_snapshot);
	EXPECT_EQ(99u, sn.counter);	/* untouched */
	store_close(&s);
}

TEST_F(store, runtime_slot_newer_than_log_wins_and_survives_torn_slot)
{
	struct store s;
	struct snap sn;
	struct store_recovery rec;
	char live[100];
	int fd;

	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	fill(&sn, 5);
	ASSERT_LE(0, store_commit(&s, &sn, NULL, true));
	for (uint64_t i = 6; i <= 9; i++) {
		fill(&sn, i);
		ASSERT_EQ(0, store_live(&s, &sn));
	}
	store_close(&s);
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, &rec));
	EXPECT_TRUE(rec.from_live);
	EXPECT_EQ(9u, sn.counter);
	store_close(&s);

	/* Tear the slot holding #9 (slot 0 after four writes): #8 remains. */
	snprintf(live, sizeof(live), "%s/meterd.live", self->run);
	fd = open(live, O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, pwrite(fd, "X", 1, 40));
	close(fd);
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, &rec));
	EXPECT_TRUE(rec.from_live);
	EXPECT_EQ(8u, sn.counter);
	EXPECT_EQ(0u, rec.corrupt_records);	/* runtime tears are expected */
	store_close(&s);
}

TEST_F(store, truncated_write_at_every_byte_recovers_previous_record)
{
	off_t sizes[6];
	char bak[120];

	write_commits(_metadata, self->state, self->run, 5, sizes, self->log);
	snprintf(bak, sizeof(bak), "%s.bak", self->log);
	ASSERT_EQ(0, copy_file(self->log, bak));
	/* every cut inside the last commit (profile #5 + snapshot #5) */
	for (off_t cut = sizes[4]; cut < sizes[5]; cut++) {
		struct store s;
		struct snap sn, want;
		struct profile p;
		struct store_recovery rec;
		bool torn = cut != sizes[4];

		ASSERT_EQ(0, copy_file(bak, self->log));
		ASSERT_EQ(0, truncate(self->log, cut));
		ASSERT_EQ(0, profile_init(&p, 100));
		ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
		ASSERT_EQ(0, store_recover(&s, &sn, &p, &rec));
		fill(&want, 4);
		ASSERT_EQ(0, memcmp(&want, &sn, sizeof(sn))) TH_LOG("cut at %lld", (long long)cut);
		/* the profile entry of #5 survives if the cut is past it */
		ASSERT_EQ(cut >= sizes[4] + (off_t)(sizeof(struct store_rec_hdr) + sizeof(struct profile_entry)) ? 5u : 4u,
			  p.count);
		ASSERT_EQ(torn && cut != sizes[4] + (off_t)(sizeof(struct store_rec_hdr) + sizeof(struct profile_entry)),
			  rec.corrupt_records == 1);
		ASSERT_EQ(rec.corrupt_records != 0, rec.rewritten);
		/* the repaired log takes new records and recovers cleanly */
		fill(&sn, 6);
		ASSERT_LE(0, store_commit(&s, &sn, NULL, true));
		store_close(&s);
		profile_free(&p);
		ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
		ASSERT_EQ(0, store_recover(&s, &sn, NULL, &rec));
		ASSERT_EQ(0u, rec.corrupt_records);
		ASSERT_EQ(6u, sn.counter);
		store_close(&s);
	}
}

TEST_F(store, bit_flip_in_middle_is_detected_and_later_records_kept)
{
	off_t sizes[11];
	struct store s;
	struct snap sn;
	struct profile p;
	struct store_recovery rec;
	int fd;
	uint8_t b;

	write_commits(_metadata, self->state, self->run, 10, sizes, self->log);
	/* flip a bit inside snapshot #3's payload */
	fd = open(self->log, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, pread(fd, &b, 1, sizes[3] - 10));
	b ^= 0x10;
	ASSERT_EQ(1, pwrite(fd, &b, 1, sizes[3] - 10));
	close(fd);
	ASSERT_EQ(0, profile_init(&p, 100));
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, &p, &rec));
	EXPECT_EQ(1u, rec.corrupt_records);
	EXPECT_TRUE(rec.rewritten);
	EXPECT_EQ(10u, sn.counter);
	EXPECT_EQ(10u, p.count);
	store_close(&s);
	profile_free(&p);
	/* the newest snapshot corrupt: the one before is the last good state */
	fd = open(self->log, O_RDWR);
	ASSERT_LE(0, fd);
	{
		off_t end = file_size(self->log);

		ASSERT_EQ(1, pread(fd, &b, 1, end - 1));
		b ^= 0xff;
		ASSERT_EQ(1, pwrite(fd, &b, 1, end - 1));
	}
	close(fd);
	/* after the rewrite the log holds profile #1-#10 then one snapshot (#10); corrupting it leaves none */
	ASSERT_EQ(0, profile_init(&p, 100));
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	fill(&sn, 0);
	ASSERT_EQ(0, store_recover(&s, &sn, &p, &rec));
	EXPECT_EQ(1u, rec.corrupt_records);
	EXPECT_FALSE(rec.have_snapshot);
	EXPECT_EQ(10u, p.count);
	store_close(&s);
	profile_free(&p);
}

TEST_F(store, garbage_file_is_reported_not_trusted)
{
	struct store s;
	struct snap sn;
	struct store_recovery rec;
	char buf[4096];
	int fd;
	char desc[256];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 7 + 3);
	memcpy(buf + 100, "GMR1", 4);	/* a fake magic must not fool it */
	fd = open(self->log, O_WRONLY | O_CREAT, 0600);
	ASSERT_EQ((ssize_t)sizeof(buf), write(fd, buf, sizeof(buf)));
	close(fd);
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, &rec));
	EXPECT_FALSE(rec.have_snapshot);
	EXPECT_EQ(1u, rec.corrupt_records);
	EXPECT_EQ(sizeof(buf), rec.skipped_bytes);
	store_recovery_describe(&rec, desc, sizeof(desc));
	EXPECT_NE(NULL, strstr(desc, "CORRUPTION"));
	EXPECT_EQ(0, file_size(self->log));	/* rewritten empty */
	store_close(&s);
}

TEST_F(store, compaction_keeps_state_and_shrinks_log)
{
	struct store s;
	struct snap sn;
	struct profile p, q;
	struct store_recovery rec;
	int r = 0, i;

	ASSERT_EQ(0, profile_init(&p, 50));
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	s.compact_bytes = 8192;
	for (i = 1; i < 1000 && r != 1; i++) {
		struct profile_entry e = entry((uint64_t)i);

		profile_push(&p, &e);
		fill(&sn, (uint64_t)i);
		r = store_commit(&s, &sn, &e, false);
		ASSERT_LE(0, r);
	}
	ASSERT_EQ(1, r);
	ASSERT_EQ(0, store_compact(&s, &sn, &p));
	EXPECT_LT(file_size(self->log), 8192);
	store_close(&s);
	ASSERT_EQ(0, profile_init(&q, 50));
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	fill(&sn, 0);
	ASSERT_EQ(0, store_recover(&s, &sn, &q, &rec));
	EXPECT_EQ((uint64_t)i - 1, sn.counter);
	EXPECT_EQ(p.count, q.count);
	EXPECT_EQ(profile_newest(&p)->start, profile_newest(&q)->start);
	EXPECT_EQ(0u, rec.corrupt_records);
	store_close(&s);
	profile_free(&p);
	profile_free(&q);
}

TEST_F(store, kill_9_loses_at_most_the_last_second)
{
	int pipefd[2];
	pid_t pid;
	uint64_t acked = 0, v;
	struct store s;
	struct snap sn;
	struct store_recovery rec;

	for (int round = 0; round < 5; round++) {
		ASSERT_EQ(0, pipe(pipefd));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			/* the "daemon": live snapshot every step, a commit every 16 */
			struct snap c;
			uint64_t n = acked;

			close(pipefd[0]);
			if (store_open(&s, self->state, self->run, sizeof(c)) ||
			    store_recover(&s, &c, NULL, &rec))
				_exit(1);
			n = rec.have_snapshot ? c.counter : 0;
			for (;;) {
				fill(&c, ++n);
				if (store_live(&s, &c))
					_exit(2);
				if (n % 16 == 0 && store_commit(&s, &c, NULL, false) < 0)
					_exit(3);
				if (write(pipefd[1], &n, sizeof(n)) != sizeof(n))
					_exit(4);
			}
		}
		close(pipefd[1]);
		for (int k = 0; k < 200 + round * 37; k++)
			if (read(pipefd[0], &v, sizeof(v)) == sizeof(v))
				acked = v;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		while (read(pipefd[0], &v, sizeof(v)) == sizeof(v))
			acked = v;
		close(pipefd[0]);
		ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
		ASSERT_EQ(0, store_recover(&s, &sn, NULL, &rec));
		/* everything acknowledged is there (the writer may be one step ahead) */
		ASSERT_TRUE(rec.have_snapshot);
		ASSERT_LE(acked, sn.counter);
		ASSERT_GE(acked + 1, sn.counter);
		ASSERT_EQ(0u, rec.corrupt_records);
		fill(&sn, sn.counter);	/* payload matches its counter: not torn */
		store_close(&s);
		acked = sn.counter;
	}
}

TEST_F(store, a_second_writer_is_refused)
{
	struct store a, b;
	struct snap sn;

	ASSERT_EQ(0, store_open(&a, self->state, self->run, sizeof(sn)));
	EXPECT_EQ(-EBUSY, store_open(&b, self->state, self->run, sizeof(sn)));
	store_close(&a);
	ASSERT_EQ(0, store_open(&b, self->state, self->run, sizeof(sn)));
	store_close(&b);
}

TEST_HARNESS_MAIN
