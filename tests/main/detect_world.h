/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The detection tests' world (tests/main/detect_world.c): a throwaway
 * PostgreSQL 15 (scripts/pg-cluster.sh), maind's storage opened on it as
 * maind opens it, and records fed through maind_pg's ingest hooks (begin,
 * records, commit) exactly as gmp_server calls them for a town.
 */
#ifndef DETECT_WORLD_H
#define DETECT_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect/detect.h"
#include "maind_pg.h"
#include "pg_scratch.h"

#define DW_TOWNS	8

struct dworld {
	char dir[64], pgdir[128], conninfo[256];
	struct maind_pg p;
	struct gmps_hooks h;
	uint16_t town[DW_TOWNS];
	int64_t seq[DW_TOWNS];
};

/* The program's cluster (started by its first test), a database of this test's own,
 * maind's connection with the schema; operators alice, bob, carol (revoked). 0 or -1. */
int dw_start(struct dworld *w, char *err, size_t len);
void dw_stop(struct dworld *w);
/* Provision a town (as mainctl add-town). 0 or -1. */
int dw_town(struct dworld *w, uint16_t town);
/* Records of a town in one batch (seqs set here, in order). 0 or -1 (w->p.err). */
int dw_send(struct dworld *w, uint16_t town, struct gmp_msg *m, size_t n);
/* One hour record. */
struct gmp_msg dw_hour(int64_t meter, int64_t hour, int64_t period, int64_t import_mwh,
		       int64_t export_mwh);
/* A statement (printf-formatted); 0 or -1 (printed). */
int dw_x(struct dworld *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first column of the first row as a number; -1 when no row or NULL, -2 on error. */
int64_t dw_1(struct dworld *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ... as text into out ("" when no row); 0 or -1. */
int dw_s(struct dworld *w, char *out, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * The detection tests' fixture NAME: a dworld w started for each test, or
 * pg false (the test then skips with PG_SKIP_WHY) without PostgreSQL 15.
 * For files that include gm_harness.h.
 */
#define DW_FIXTURE(name)							\
	FIXTURE(name) {								\
		struct dworld w;						\
		bool pg;							\
	};									\
	FIXTURE_SETUP(name)							\
	{									\
		char err[768];							\
										\
		self->pg = pg_available();					\
		if (!self->pg)							\
			return;							\
		ASSERT_EQ(0, dw_start(&self->w, err, sizeof(err))) TH_LOG("%s", err); \
	}									\
	FIXTURE_TEARDOWN(name)							\
	{									\
		if (self->pg)							\
			dw_stop(&self->w);					\
	}

#endif
