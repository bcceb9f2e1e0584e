// SPDX-License-Identifier: GPL-2.0
/*
 * Crash-safe store: round trip, runtime and durable slots, truncated writes
 * at every byte (torn tails, not corruption), bit flips, garbage,
 * compaction, a real kill -9 of a writer, migration of a log written in the
 * previous format, and a disk that fills and frees (a small tmpfs in a
 * private mount namespace; skipped without root or namespaces).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The 6.1 harness defines fixture setup/teardown functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "gm_frame.h"
#include "old_formats.h"
#include "small_disk.h"
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

/* Flip a byte of a file: a torn or damaged write. */
static int tear(const char *path, off_t off)
{
	int fd = open(path, O_WRONLY), r;

	if (fd < 0)
		return -1;
	r = pwrite(fd, "X", 1, off) == 1 ? 0 : -1;
	close(fd);
	return r;
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
		ASSERT_LE(0, store_commit(&s, &sn, sizeof(sn), &e, 1, i == n));
		if (sizes)
			sizes[i] = file_size(log);
	}
	store_close(&s);
}

/* The store's checksum is the link's CRC-32C (the check value of the Castagnoli CRC). */
TEST(crc32c_check_value)
{
	EXPECT_EQ(0xe3069283u, gm_crc32c("123456789", 9));
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
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, &p, &rec));
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
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, NULL, &rec));
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

	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	fill(&sn, 5);
	ASSERT_LE(0, store_commit(&s, &sn, sizeof(sn), NULL, 0, true));
	for (uint64_t i = 6; i <= 9; i++) {
		fill(&sn, i);
		ASSERT_EQ(0, store_live(&s, &sn, sizeof(sn)));
	}
	store_close(&s);
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, NULL, &rec));
	EXPECT_TRUE(rec.from_live);
	EXPECT_EQ(9u, sn.counter);
	store_close(&s);

	/* Tear the slot holding #9 (slot 0 after four writes): #8 remains. */
	snprintf(live, sizeof(live), "%s/meterd.live", self->run);
	ASSERT_EQ(0, tear(live, 40));
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, NULL, &rec));
	EXPECT_TRUE(rec.from_live);
	EXPECT_EQ(8u, sn.counter);
	EXPECT_EQ(0u, rec.corrupt_records);	/* runtime tears are expected */
	store_close(&s);
}

#define PROFILE_REC	(STORE_REC_OVERHEAD + sizeof(struct profile_entry))

/* A crash in the middle of an append leaves a torn tail: cut off, never reported as corruption. */
TEST_F(store, truncated_write_at_every_byte_is_a_torn_tail_not_corruption)
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
		off_t good = cut >= sizes[4] + (off_t)PROFILE_REC ? sizes[4] + (off_t)PROFILE_REC : sizes[4];

		ASSERT_EQ(0, copy_file(bak, self->log));
		ASSERT_EQ(0, truncate(self->log, cut));
		ASSERT_EQ(0, profile_init(&p, 100));
		ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
		ASSERT_EQ(0, store_recover(&s, &sn, NULL, &p, &rec));
		fill(&want, 4);
		ASSERT_EQ(0, memcmp(&want, &sn, sizeof(sn))) TH_LOG("cut at %lld", (long long)cut);
		/* the profile entry of #5 survives if the cut is past it */
		ASSERT_EQ(good > sizes[4] ? 5u : 4u, p.count);
		ASSERT_EQ(0u, rec.corrupt_records) TH_LOG("cut at %lld", (long long)cut);
		ASSERT_EQ((uint64_t)(cut - good), rec.torn_bytes) TH_LOG("cut at %lld", (long long)cut);
		ASSERT_FALSE(rec.rewritten);
		ASSERT_EQ(good, file_size(self->log));	/* the tail is cut off */
		/* the repaired log takes new records and recovers cleanly */
		fill(&sn, 6);
		ASSERT_LE(0, store_commit(&s, &sn, sizeof(sn), NULL, 0, true));
		store_close(&s);
		profile_free(&p);
		ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
		ASSERT_EQ(0, store_recover(&s, &sn, NULL, NULL, &rec));
		ASSERT_EQ(0u, rec.corrupt_records);
		ASSERT_EQ(0u, rec.torn_bytes);
		ASSERT_EQ(6u, sn.counter);
		store_close(&s);
	}
}

/* A filesystem that extended the file but never wrote the data: zeros at the end are torn too. */
TEST_F(store, zero_filled_tail_is_torn_not_corrupt)
{
	off_t sizes[4];
	struct store s;
	struct snap sn;
	struct store_recovery rec;
	char desc[256];

	write_commits(_metadata, self->state, self->run, 3, sizes, self->log);
	ASSERT_EQ(0, truncate(self->log, sizes[3] + 8192));	/* longer than any record */
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, NULL, &rec));
	EXPECT_EQ(0u, rec.corrupt_records);
	EXPECT_EQ(8192u, rec.torn_bytes);
	EXPECT_EQ(3u, sn.counter);
	EXPECT_EQ(sizes[3], file_size(self->log));
	store_recovery_describe(&rec, desc, sizeof(desc));
	EXPECT_EQ(NULL, strstr(desc, "CORRUPTION")) TH_LOG("%s", desc);
	EXPECT_NE(NULL, strstr(desc, "torn")) TH_LOG("%s", desc);
	store_close(&s);
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
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, &p, &rec));
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
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, &p, &rec));
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
	memcpy(buf + 100, "GMR1", 4);	/* fake magics must not fool it */
	memcpy(buf + 900, "GMR2", 4);
	fd = open(self->log, O_WRONLY | O_CREAT, 0600);
	ASSERT_EQ((ssize_t)sizeof(buf), write(fd, buf, sizeof(buf)));
	close(fd);
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, NULL, &rec));
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
		r = store_commit(&s, &sn, sizeof(sn), &e, 1, false);
		ASSERT_LE(0, r);
	}
	ASSERT_EQ(1, r);
	ASSERT_EQ(0, store_compact(&s, &sn, sizeof(sn), &p));
	EXPECT_LT(file_size(self->log), 8192);
	store_close(&s);
	ASSERT_EQ(0, profile_init(&q, 50));
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	fill(&sn, 0);
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, &q, &rec));
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
			    store_recover(&s, &c, NULL, NULL, &rec))
				_exit(1);
			n = rec.have_snapshot ? c.counter : 0;
			for (;;) {
				fill(&c, ++n);
				if (store_live(&s, &c, sizeof(c)))
					_exit(2);
				if (n % 16 == 0 && store_commit(&s, &c, sizeof(c), NULL, 0, false) < 0)
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
		ASSERT_EQ(0, store_recover(&s, &sn, NULL, NULL, &rec));
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

/* meterd.snap: the frequent durable saves, newest wins, a torn slot falls back to the other. */
TEST_F(store, durable_slots_hold_the_newest_state_and_survive_a_torn_slot)
{
	struct store s;
	struct snap sn;
	struct store_recovery rec;
	uint64_t fsyncs, pages;
	char snapfile[100];

	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, NULL, &rec));
	fill(&sn, 1);
	ASSERT_LE(0, store_commit(&s, &sn, sizeof(sn), NULL, 0, true));
	fsyncs = s.fsyncs;
	pages = s.pages_synced;
	for (uint64_t i = 2; i <= 3; i++) {
		fill(&sn, i);
		ASSERT_EQ(0, store_save(&s, &sn, sizeof(sn)));
	}
	/* one fdatasync and one page per save: no size change, no allocation */
	EXPECT_EQ(fsyncs + 2, s.fsyncs);
	EXPECT_EQ(pages + 2, s.pages_synced);
	store_close(&s);
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, NULL, &rec));
	EXPECT_TRUE(rec.from_slot);
	EXPECT_EQ(3u, sn.counter);
	store_close(&s);
	/* #3 went to slot 1 (slot 0 first): tear it */
	snprintf(snapfile, sizeof(snapfile), "%s/meterd.snap", self->state);
	ASSERT_EQ(0, tear(snapfile, (off_t)s.slot_bytes + 60));
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, NULL, &rec));
	EXPECT_TRUE(rec.from_slot);
	EXPECT_EQ(2u, sn.counter);
	EXPECT_EQ(0u, rec.corrupt_records);
	/* the next save overwrites the torn slot, not #2 */
	fill(&sn, 4);
	ASSERT_EQ(0, store_save(&s, &sn, sizeof(sn)));
	store_close(&s);
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, NULL, &rec));
	EXPECT_EQ(4u, sn.counter);
	store_close(&s);
	ASSERT_EQ(0, tear(snapfile, (off_t)s.slot_bytes + 60));
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, NULL, &rec));
	EXPECT_EQ(2u, sn.counter);	/* slot 0 still holds #2 */
	store_close(&s);
}

TEST_F(store, log_of_the_previous_format_is_migrated)
{
	static uint8_t old[16384];
	size_t n = 0, last = 0;
	struct store s;
	struct snap sn;
	struct profile p;
	struct store_recovery rec;
	char magic[5] = "";
	int fd;

	ASSERT_EQ(0xcbf43926u, old_crc32(0, "123456789", 9));	/* the test's own CRC-32 */
	for (uint64_t i = 1; i <= 10; i++) {
		struct profile_entry e = entry(i);

		fill(&sn, i);
		n += old_record(old + n, STORE_REC_PROFILE, 2 * i - 1, &e, sizeof(e));
		last = n;
		n += old_record(old + n, STORE_REC_SNAPSHOT, 2 * i, &sn, sizeof(sn));
	}
	fd = open(self->log, O_WRONLY | O_CREAT, 0600);
	ASSERT_EQ((ssize_t)(last + 100), write(fd, old, last + 100));	/* ... torn in snapshot #10 */
	close(fd);

	ASSERT_EQ(0, profile_init(&p, 100));
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, &p, &rec));
	EXPECT_EQ(19u, rec.migrated_records);
	EXPECT_EQ(0u, rec.corrupt_records);
	EXPECT_EQ(100u, rec.torn_bytes);
	EXPECT_TRUE(rec.rewritten);
	EXPECT_EQ(9u, sn.counter);
	EXPECT_EQ(0, memcmp(sn.pad, (char[200]){ [0 ... 199] = 9 }, sizeof(sn.pad)));
	ASSERT_EQ(10u, p.count);
	EXPECT_EQ(entry(10).import_mwh, profile_newest(&p)->import_mwh);
	/* new records number on from the old ones */
	EXPECT_LT(19u, s.seq);
	fill(&sn, 11);
	ASSERT_LE(0, store_commit(&s, &sn, sizeof(sn), NULL, 0, true));
	store_close(&s);
	profile_free(&p);

	/* the log is now in the current format and recovers without migration */
	fd = open(self->log, O_RDONLY);
	ASSERT_EQ(4, read(fd, magic, 4));
	close(fd);
	EXPECT_STREQ("GMR2", magic);
	ASSERT_EQ(0, profile_init(&p, 100));
	ASSERT_EQ(0, store_open(&s, self->state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, &p, &rec));
	EXPECT_EQ(0u, rec.migrated_records);
	EXPECT_EQ(0u, rec.corrupt_records);
	EXPECT_EQ(0u, rec.torn_bytes);
	EXPECT_EQ(11u, sn.counter);
	EXPECT_EQ(10u, p.count);
	store_close(&s);
	profile_free(&p);
}

/*
 * A disk that fills and frees: a small tmpfs in this test's own mount
 * namespace (the harness runs each test in a child process).
 */
TEST_F(store, disk_that_fills_and_frees_leaves_no_torn_record)
{
	static struct profile_entry many[200];
	char mnt[100], state[120], filler[120];
	struct store s;
	struct snap sn;
	struct profile p;
	struct store_recovery rec;
	const char *skip;
	off_t before;
	int r;

	snprintf(mnt, sizeof(mnt), "%s/small", self->dir);
	snprintf(state, sizeof(state), "%s/state", mnt);
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	ASSERT_EQ(0, mkdir(mnt, 0700));
	skip = small_disk_mount(mnt, "128k");
	if (skip)
		SKIP(return, "%s", skip);
	ASSERT_EQ(0, mkdir(state, 0700));

	ASSERT_EQ(0, store_open(&s, state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, NULL, &rec));
	for (uint64_t i = 1; i <= 3; i++) {
		struct profile_entry e = entry(i);

		fill(&sn, i);
		ASSERT_LE(0, store_commit(&s, &sn, sizeof(sn), &e, 1, true));
	}
	small_disk_fill(filler);
	for (size_t i = 0; i < 200; i++)
		many[i] = entry(4 + i);

	/* full: the append fails and leaves the log as it was (it did write part of it) */
	{
		char log[140];

		snprintf(log, sizeof(log), "%s/meterd.log", state);
		before = file_size(log);
		fill(&sn, 4);
		r = store_commit(&s, &sn, sizeof(sn), many, 200, true);
		EXPECT_EQ(-ENOSPC, r);
		EXPECT_EQ(before, file_size(log));
		/* the durable slots were allocated when created: saves go on */
		fill(&sn, 5);
		EXPECT_EQ(0, store_save(&s, &sn, sizeof(sn)));
		/* space comes back: the same append succeeds */
		ASSERT_EQ(0, unlink(filler));
		fill(&sn, 6);
		EXPECT_LE(0, store_commit(&s, &sn, sizeof(sn), many, 200, true));
		EXPECT_EQ(before + (off_t)(200 * PROFILE_REC + STORE_REC_OVERHEAD + sizeof(sn)), file_size(log));
	}
	store_close(&s);
	ASSERT_EQ(0, profile_init(&p, 300));
	ASSERT_EQ(0, store_open(&s, state, self->run, sizeof(sn)));
	ASSERT_EQ(0, store_recover(&s, &sn, NULL, &p, &rec));
	EXPECT_EQ(0u, rec.corrupt_records);
	EXPECT_EQ(0u, rec.torn_bytes);
	EXPECT_EQ(6u, sn.counter);
	EXPECT_EQ(203u, p.count);
	store_close(&s);
	profile_free(&p);
	umount2(mnt, MNT_DETACH);
}

TEST_HARNESS_MAIN
