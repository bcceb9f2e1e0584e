// SPDX-License-Identifier: GPL-2.0
/*
 * townd's loans in SQLite (server/townd_loans_db.c): a loan made between
 * two towns in memory is saved, the database closed and opened again, and
 * the restored town holds the same loans; a damaged or foreign state is
 * refused with a message; townctl loans prints the rows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gm_harness.h"
#include "townd_loans_db.h"

struct box {
	uint16_t self;
	struct { uint16_t to; struct gmp_msg m; } q[64];
	int n;
	int64_t surplus;
};

static void h_send(void *ctx, uint16_t to, const struct gmp_msg *m)
{
	struct box *b = ctx;

	if (b->n < 64) {
		b->q[b->n].to = to;
		b->q[b->n++].m = *m;
	}
}

static void h_report(void *ctx, const struct gmp_msg *m)
{
	(void)ctx;
	(void)m;
}

static int64_t h_surplus(void *ctx, int64_t now)
{
	(void)now;
	return ((struct box *)ctx)->surplus;
}

static void town(struct townd_loans *l, struct box *b, uint16_t self, uint16_t other)
{
	struct townd_loans_cfg cfg;
	struct townd_loans_hooks h = { .ctx = b, .send = h_send, .report = h_report,
				       .surplus_w = h_surplus };

	townd_loans_defaults(&cfg, self);
	b->self = self;
	if (townd_loans_init(l, &cfg, &h) || townd_loans_add_neighbour(l, other, 1))
		abort();
	townd_loans_link(l, other, true, 0);
}

/* Deliver everything queued, both ways, until quiet. */
static void settle(struct townd_loans *a, struct box *ba, struct townd_loans *b, struct box *bb,
		   int64_t now)
{
	for (int round = 0; round < 20 && (ba->n || bb->n); round++) {
		struct box qa = *ba, qb = *bb;

		ba->n = bb->n = 0;
		for (int i = 0; i < qa.n; i++)
			townd_loans_recv(b, ba->self, &qa.q[i].m, now);
		for (int i = 0; i < qb.n; i++)
			townd_loans_recv(a, bb->self, &qb.q[i].m, now);
	}
}

TEST(saved_loans_come_back_after_a_restart)
{
	static struct townd_loans a, b, a2;
	static struct box ba, bb;
	struct townd_loan_info before[4], after[4];
	struct townd_db db;
	char path[] = "/tmp/townd-loans-db-XXXXXX", err[256] = "", *out = NULL;
	size_t outlen = 0;
	FILE *f;
	int fd = mkstemp(path);
	const int64_t t0 = 1800000000;

	ASSERT_LE(0, fd);
	close(fd);
	unlink(path);
	town(&a, &ba, 1, 2);
	town(&b, &bb, 2, 1);
	bb.surplus = 900;
	townd_loans_need(&a, 700, t0);
	settle(&a, &ba, &b, &bb, t0);
	ASSERT_EQ(700, townd_loans_borrowed_w(&a));
	ASSERT_EQ(700, townd_loans_lent_w(&b));

	ASSERT_EQ(0, tdb_open(&db, path, 1, err, sizeof(err))) TH_LOG("%s", err);
	/* nothing saved yet */
	town(&a2, &ba, 1, 2);
	EXPECT_EQ(0, tln_load(&db, &a2, err, sizeof(err)));
	ASSERT_EQ(0, tln_save(&db, &a, t0));
	ASSERT_EQ(0, tln_save(&db, &a, t0 + 1));	/* again: replaced, not added */
	tdb_close(&db);

	ASSERT_EQ(0, tdb_open(&db, path, 1, err, sizeof(err))) TH_LOG("%s", err);
	town(&a2, &ba, 1, 2);
	ASSERT_EQ(1, tln_load(&db, &a2, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(1, townd_loans_list(&a, before, 4));
	ASSERT_EQ(1, townd_loans_list(&a2, after, 4));
	EXPECT_EQ(0, memcmp(&before[0], &after[0], sizeof(before[0])));
	EXPECT_EQ(700, townd_loans_borrowed_w(&a2));

	/* townctl loans */
	f = open_memstream(&out, &outlen);
	ASSERT_EQ(0, tln_print(&db, f));
	fclose(f);
	if (getenv("LOANS_VERBOSE"))
		fputs(out, stderr);
	{
		char want[64];
		int lines = 0;

		snprintf(want, sizeof(want), "2/%lld", (long long)before[0].loan_id);
		EXPECT_NE(NULL, strstr(out, want)) TH_LOG("%s", out);
		EXPECT_NE(NULL, strstr(out, "borrower")) TH_LOG("%s", out);
		EXPECT_NE(NULL, strstr(out, " open ")) TH_LOG("%s", out);
		EXPECT_NE(NULL, strstr(out, " 700 ")) TH_LOG("%s", out);
		for (const char *p = out; *p; p++)
			lines += *p == '\n';
		EXPECT_EQ(2, lines) TH_LOG("a header and one row:\n%s", out);
	}
	free(out);

	/* another town's state is refused, and so is a damaged one */
	{
		static struct townd_loans other;
		static struct box bo;

		town(&other, &bo, 3, 2);
		EXPECT_EQ(-1, tln_load(&db, &other, err, sizeof(err)));
		EXPECT_NE(NULL, strstr(err, "not a state of town 3")) TH_LOG("%s", err);
	}
	ASSERT_EQ(SQLITE_OK, sqlite3_exec(db.db, "UPDATE loans_state SET state = x'00'", NULL, NULL,
					  NULL));
	town(&a2, &ba, 1, 2);
	EXPECT_EQ(-1, tln_load(&db, &a2, err, sizeof(err)));
	EXPECT_EQ(0, townd_loans_borrowed_w(&a2));	/* nothing half-restored */
	tdb_close(&db);
	unlink(path);
	strcat(path, "-wal");
	unlink(path);
	path[strlen(path) - 4] = '\0';
	strcat(path, "-shm");
	unlink(path);
}

TEST_HARNESS_MAIN
