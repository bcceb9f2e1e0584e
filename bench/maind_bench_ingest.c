// SPDX-License-Identifier: GPL-2.0
/*
 * maind ingest (issue 12): one hour of 1,000,000 meters into PostgreSQL
 * 15 with fsync on, through the real path: TOWNS towns (gmpc clients,
 * outboxes in /dev/shm) -> link frames -> gmp_server -> maind_pg (COPY
 * into a staging table, upsert into the month's meter_hours partition,
 * the towns' state, COMMIT) -> acknowledgements. In one process, without
 * TCP, so that the figure is the server's: rows per second, commits, and
 * the bytes on the wire per meter-hour (frames up and down, link framing
 * included). A throwaway cluster (scripts/pg-cluster.sh) in
 * build/bench-maind. Wall-clock figures of this machine, for comparison
 * between runs, not a verdict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "gm_frame.h"
#include "gmp_client.h"
#include "gmp_server.h"
#include "maind_pg.h"
#include "outbox.h"

#define METERS		1000000
#define TOWNS		16
#define PER_TOWN	(METERS / TOWNS)	/* 62,500 meters: ids 1..65535 */
#define HOUR		((int64_t)1790000000 / 3600 * 3600)

struct town {
	uint16_t id;
	struct gmp_keypair kp;
	struct outbox ob;
	struct gmpc c;
};

struct bench {
	struct maind_pg pg;
	struct gmps srv;
	struct town t[TOWNS];
	struct { struct gm_hdr h; uint8_t p[GM_MAX_PAYLOAD]; size_t len; } *up;
	size_t n_up, cap_up;
	uint8_t (*down)[GM_MAX_WIRE];
	size_t *down_len, n_down, cap_down;
	uint64_t bytes_up, bytes_down, frames_up, frames_down;
	int cur;		/* the town sending */
};

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int to_server(void *ctx, unsigned int flags, const uint8_t *payload, size_t len)
{
	struct town *t = ctx;
	struct bench *b = (struct bench *)((char *)(t - (t->id - 1)) - offsetof(struct bench, t));

	if (b->n_up == b->cap_up) {
		size_t cap = b->cap_up ? b->cap_up * 2 : 4096;
		void *n = realloc(b->up, cap * sizeof(*b->up));

		if (!n)
			return -EAGAIN;
		b->up = n;
		b->cap_up = cap;
	}
	b->up[b->n_up].h = (struct gm_hdr){ GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, t->id,
					     GM_ID_SERVER, 0 };
	memcpy(b->up[b->n_up].p, payload, len);
	b->up[b->n_up++].len = len;
	b->bytes_up += gm_frame_wire_len(len);
	b->frames_up++;
	return 0;
}

static void to_towns(void *ctx, uint64_t conn, const uint8_t *wire, size_t len)
{
	struct bench *b = (struct bench *)((char *)ctx - offsetof(struct bench, pg));

	(void)conn;
	if (b->n_down == b->cap_down) {
		size_t cap = b->cap_down ? b->cap_down * 2 : 1024;

		b->down = realloc(b->down, cap * sizeof(*b->down));
		b->down_len = realloc(b->down_len, cap * sizeof(*b->down_len));
		if (!b->down || !b->down_len)
			abort();
		b->cap_down = cap;
	}
	memcpy(b->down[b->n_down], wire, len);
	b->down_len[b->n_down++] = len;
	b->bytes_down += len;
	b->frames_down++;
}

static int run(const char *cmd)
{
	int rc = system(cmd);

	return rc == 0 ? 0 : -1;
}

int main(void)
{
	static struct bench b;
	struct gmps_hooks h;
	struct gmp_keypair main_kp;
	char err[768], conninfo[256], shm[64], sql[512], hex[65];
	double t0, t1, in_flush = 0;
	FILE *f;
	int rounds = 0;

	if (sodium_init() < 0)
		return 1;
	if (access("/usr/lib/postgresql/15/bin/initdb", X_OK)) {
		printf("maind_bench_ingest: PostgreSQL 15 not installed (scripts/deps.sh): skipped\n");
		return 0;
	}
	run("scripts/pg-cluster.sh stop build/bench-maind >/dev/null 2>&1; rm -rf build/bench-maind");
	f = popen("scripts/pg-cluster.sh start build/bench-maind", "r");
	if (!f || !fgets(conninfo, sizeof(conninfo), f) || pclose(f)) {
		fprintf(stderr, "maind_bench_ingest: cluster did not start\n");
		return 1;
	}
	conninfo[strcspn(conninfo, "\n")] = '\0';
	if (mpg_open(&b.pg, conninfo, err, sizeof(err))) {
		fprintf(stderr, "maind_bench_ingest: %s\n", err);
		return 1;
	}
	gmp_keypair_generate(&main_kp);
	mpg_hooks(&b.pg, &h);
	h.send = to_towns;
	if (gmps_init(&b.srv, &main_kp, GM_ID_SERVER, &h))
		return 1;
	strcpy(shm, "/dev/shm/maind-bench-XXXXXX");
	if (!mkdtemp(shm))
		return 1;
	for (int i = 0; i < TOWNS; i++) {
		struct town *t = &b.t[i];
		struct gmpc_config cfg;
		struct gmpc_hooks ch = { .ctx = t, .send = to_server };
		char dir[128];
		PGresult *r;

		t->id = (uint16_t)(i + 1);
		gmp_keypair_generate(&t->kp);
		gmp_hex_encode(t->kp.pk, GMP_KEY_LEN, hex);
		snprintf(sql, sizeof(sql), "INSERT INTO towns (id, name, pk) VALUES (%u, 't%u', "
			 "decode('%s', 'hex'))", t->id, t->id, hex);
		r = PQexec(b.pg.c, sql);
		PQclear(r);
		snprintf(dir, sizeof(dir), "%s/t%u", shm, t->id);
		if (outbox_open(&t->ob, dir, (uint64_t)1 << 30, err, sizeof(err)))
			return 1;
		gmpc_config_defaults(&cfg);
		cfg.meter_id = t->id;
		cfg.key = t->kp;
		memcpy(cfg.town_pk, main_kp.pk, GMP_KEY_LEN);
		cfg.window = 20000;
		cfg.ack_every = 1000;
		if (gmpc_init(&t->c, &cfg, &ch, &t->ob, err, sizeof(err)))
			return 1;
		for (int m = 0; m < PER_TOWN; m++) {
			struct gmp_msg g = { .type = GMP_HOUR };

			g.hour.meter = m + 1;
			g.hour.hour = HOUR;
			g.hour.period = m % 3;
			g.hour.import_mwh = 100000 + (m * 7919) % 2000000;
			g.hour.export_mwh = m % 5 ? 0 : 50000 + m % 1000;
			g.hour.renew_mwh = m % 5 ? 0 : 60000 + m % 1000;
			g.hour.readings = 1;
			if (gmpc_record(&t->c, &g))
				return 1;
		}
	}
	/* the handshakes first: the figure is the ingest */
	for (int k = 0; k < 3; k++) {
		for (int i = 0; i < TOWNS; i++)
			gmpc_pump(&b.t[i].c, 0, real_ms());
		for (size_t i = 0; i < b.n_up; i++)
			if (gmp_envelope_kind(b.up[i].p, b.up[i].len, NULL) == GMP_KIND_HANDSHAKE)
				gmps_frame(&b.srv, 1, &b.up[i].h, b.up[i].p, b.up[i].len, real_ms());
		b.n_up = 0;
		gmps_flush(&b.srv, real_ms());
		for (size_t i = 0; i < b.n_down; i++) {
			struct gm_rx rx;
			enum gm_rx_status st;

			gm_rx_init(&rx);
			gm_rx_feed(&rx, b.down[i], b.down_len[i], &st);
			if (st == GM_RX_FRAME)
				gmpc_input(&b.t[rx.hdr.dst - 1].c, rx.hdr.type, rx.hdr.flags,
					   rx.payload, rx.payload_len, 0, real_ms());
		}
		b.n_down = 0;
	}
	b.bytes_up = b.bytes_down = b.frames_up = b.frames_down = 0;
	t0 = mono_s();
	for (;;) {
		uint64_t backlog = 0;
		double f0;

		for (int i = 0; i < TOWNS; i++) {
			gmpc_tick(&b.t[i].c, 0);
			gmpc_pump(&b.t[i].c, 0, real_ms());
			backlog += gmpc_backlog(&b.t[i].c);
		}
		if (!backlog)
			break;
		for (size_t i = 0; i < b.n_up; i++)
			gmps_frame(&b.srv, 1, &b.up[i].h, b.up[i].p, b.up[i].len, real_ms());
		b.n_up = 0;
		f0 = mono_s();
		if (gmps_flush(&b.srv, real_ms())) {
			fprintf(stderr, "maind_bench_ingest: %s\n", b.pg.err);
			return 1;
		}
		in_flush += mono_s() - f0;
		for (size_t i = 0; i < b.n_down; i++) {
			struct gm_rx rx;
			enum gm_rx_status st;

			gm_rx_init(&rx);
			gm_rx_feed(&rx, b.down[i], b.down_len[i], &st);
			if (st == GM_RX_FRAME && rx.hdr.dst >= 1 && rx.hdr.dst <= TOWNS)
				gmpc_input(&b.t[rx.hdr.dst - 1].c, rx.hdr.type, rx.hdr.flags,
					   rx.payload, rx.payload_len, 0, real_ms());
		}
		b.n_down = 0;
		rounds++;
	}
	t1 = mono_s();
	{
		PGresult *r = PQexec(b.pg.c, "SELECT count(*), pg_total_relation_size("
				     "(SELECT inhrelid FROM pg_inherits JOIN pg_class c ON c.oid = "
				     "inhrelid WHERE inhparent = 'meter_hours'::regclass AND "
				     "c.relname = to_char(to_timestamp(" "1790000000" "), "
				     "'\"meter_hours_\"YYYYMM') LIMIT 1)) FROM meter_hours");
		long long rows = PQresultStatus(r) == PGRES_TUPLES_OK ?
				 atoll(PQgetvalue(r, 0, 0)) : -1;
		long long bytes = PQresultStatus(r) == PGRES_TUPLES_OK ?
				  atoll(PQgetvalue(r, 0, 1)) : -1;

		PQclear(r);
		printf("maind ingest: %d meters x 1 hour, %d towns, PostgreSQL 15, fsync on\n",
		       METERS, TOWNS);
		printf("  rows stored                %lld (%s)\n", rows,
		       rows == METERS ? "every meter-hour once" : "MISMATCH");
		printf("  wall time                  %.2f s (%d rounds, %llu commits)\n", t1 - t0,
		       rounds, (unsigned long long)b.pg.commits);
		printf("  rows per second            %.0f end to end (protocol + PostgreSQL)\n",
		       METERS / (t1 - t0));
		printf("  rows per second            %.0f in flush (COPY, upsert, commit)\n",
		       METERS / in_flush);
		printf("  bytes per meter-hour       %.1f up + %.2f down on the wire "
		       "(%llu frames up, %llu down)\n", (double)b.bytes_up / METERS,
		       (double)b.bytes_down / METERS, (unsigned long long)b.frames_up,
		       (unsigned long long)b.frames_down);
		printf("  partition size             %.1f MB (%.0f bytes per row, index "
		       "included)\n", bytes / 1e6, (double)bytes / METERS);
	}
	for (int i = 0; i < TOWNS; i++) {
		gmpc_free(&b.t[i].c);
		outbox_close(&b.t[i].ob);
	}
	gmps_free(&b.srv);
	mpg_close(&b.pg);
	snprintf(sql, sizeof(sql), "rm -rf '%s'", shm);
	run(sql);
	run("scripts/pg-cluster.sh stop build/bench-maind >/dev/null 2>&1; rm -rf build/bench-maind");
	return 0;
}
