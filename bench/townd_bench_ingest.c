// SPDX-License-Identifier: GPL-2.0
/*
 * townd ingest (issue 6 targets: >= 20 000 messages/s on 2 cores with
 * thousands of meters; memory per connected meter).
 *
 *  1. core only: pre-sealed frames of METERS meters fed to the ingest core
 *     in batches (authenticate, decrypt, decode, store, ack, commit), for
 *     synchronous=FULL and NORMAL;
 *  2. end to end: townd's real loop in a child process on 127.0.0.1,
 *     CONNS client connections carrying the frames of all meters (as
 *     neighbours and gateways would), until every meter has its final ack;
 *  3. memory: the child's RSS before and after CONNECTED meters each open
 *     their own connection (one SIM900 socket per meter) and report once.
 * Rates are wall-clock figures of this machine, for comparison between
 * runs, not a pass/fail verdict.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "simmeter.h"
#include "simtown.h"
#include "townd_core.h"
#include "townd_net.h"

#define METERS		2000
#define PER_METER	100	/* readings, one per frame */
#define CONNS		8
#define CONNECTED	1000

struct frame {
	uint16_t len;
	uint8_t wire[96];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int provision_all(const char *db_path, struct simmeter *m, int n, int first_id,
			 const struct gmp_keypair *town)
{
	struct townd_db db;
	char err[256];

	if (tdb_open(&db, db_path, 0, err, sizeof(err)))
		return -1;
	sqlite3_exec(db.db, "BEGIN", NULL, NULL, NULL);
	for (int i = 0; i < n; i++) {
		struct gmp_keypair kp;

		gmp_keypair_generate(&kp);
		if (tdb_add_meter(&db, (unsigned int)(first_id + i), kp.pk, NULL, 1, err,
				  sizeof(err)) ||
		    simmeter_init(&m[i], (uint16_t)(first_id + i), &kp, town->pk))
			return -1;
	}
	sqlite3_exec(db.db, "COMMIT", NULL, NULL, NULL);
	tdb_close(&db);
	return 0;
}

/* frames[r * METERS + i]: reading r + 1 of meter i; ack requested on the last (sessions up). */
static struct frame *seal_all(struct simmeter *m)
{
	struct frame *f = malloc(sizeof(*f) * METERS * PER_METER);

	if (!f)
		return NULL;
	for (int r = 0; r < PER_METER; r++)
		for (int i = 0; i < METERS; i++) {
			struct gmp_msg g;
			int len;

			sim_reading(m[i].id, r + 1, &g);
			len = simmeter_frame(&m[i], &g, 1,
					     r == PER_METER - 1 ? GM_FLAG_ACK_REQ : 0,
					     f[r * METERS + i].wire, sizeof(f[0].wire));
			if (len < 0)
				return NULL;
			f[r * METERS + i].len = (uint16_t)len;
		}
	return f;
}

static void ignore(void *ctx, uint64_t conn, const uint8_t *wire, size_t len)
{
	(void)conn;
	(void)wire;
	(*(uint64_t *)ctx) += len;
}

/* Meters first_id.. take the WELCOMEs addressed to them. */
struct hs_ctx {
	struct simmeter *m;
	int n, first_id, welcomed;
	int want;		/* stop reading once this many came (0: n) */
};

static int take_frame(void *ctx, const struct gm_hdr *h, const uint8_t *payload, size_t len)
{
	struct hs_ctx *hc = ctx;
	int i = (int)h->dst - hc->first_id;
	struct sim_ack a;

	if (i >= 0 && i < hc->n && simmeter_open_ack(&hc->m[i], h, payload, len, &a) &&
	    a.welcome)
		hc->welcomed++;
	return hc->welcomed == (hc->want ? hc->want : hc->n);
}

static void take_welcome(void *ctx, uint64_t conn, const uint8_t *wire, size_t len)
{
	struct gm_rx rx;
	enum gm_rx_status st;

	(void)conn;
	gm_rx_init(&rx);
	gm_rx_feed(&rx, wire, len, &st);
	if (st == GM_RX_FRAME)
		take_frame(ctx, &rx.hdr, rx.payload, rx.payload_len);
}

/* The measured part of the handshakes: HELLO in, WELCOME out, for n meters. */
__attribute__((noinline)) int handshake_measured(struct townd_core *c, struct hs_ctx *hc);
__attribute__((noinline)) int handshake_measured(struct townd_core *c, struct hs_ctx *hc)
{
	for (int i = 0; i < hc->n; i++) {
		uint8_t wire[GM_MAX_WIRE];
		struct gm_rx rx;
		enum gm_rx_status st;
		int len = simmeter_hello(&hc->m[i], 0, wire, sizeof(wire));

		gm_rx_init(&rx);
		gm_rx_feed(&rx, wire, (size_t)len, &st);
		if (len < 0 || st != GM_RX_FRAME)
			return -1;
		townd_core_frame(c, 1, &rx.hdr, rx.payload, rx.payload_len, 1790000000);
		if ((i + 1) % 1000 == 0 && townd_core_flush(c, take_welcome, hc))
			return -1;
	}
	if (townd_core_flush(c, take_welcome, hc))
		return -1;
	return hc->welcomed == hc->n ? 0 : -1;
}

static int core_only(const char *dir, int sync_full, const struct gmp_keypair *town)
{
	struct simmeter *m = calloc(METERS, sizeof(*m));
	struct townd_core *c = malloc(sizeof(*c));
	struct frame *f;
	char db[256], err[256];
	uint64_t ackbytes = 0;
	double t0, t1;

	struct hs_ctx hc = { .n = METERS, .first_id = 1 };

	snprintf(db, sizeof(db), "%s/core-%d.db", dir, sync_full);
	hc.m = m;
	if (!m || !c || provision_all(db, m, METERS, 1, town))
		return -1;
	if (townd_core_init(c, db, sync_full, town, err, sizeof(err)))
		return -1;
	t0 = now_s();
	if (handshake_measured(c, &hc))
		return -1;
	t1 = now_s();
	printf("core only, synchronous=%-6s %d handshakes (HELLO in, WELCOME out): %.0f/s\n",
	       sync_full ? "full" : "normal", METERS, METERS / (t1 - t0));
	if (!(f = seal_all(m)))
		return -1;
	t0 = now_s();
	for (size_t k = 0; k < (size_t)METERS * PER_METER; k++) {
		struct gm_rx rx;
		enum gm_rx_status st;

		gm_rx_init(&rx);
		gm_rx_feed(&rx, f[k].wire, f[k].len, &st);
		if (st != GM_RX_FRAME)
			return -1;
		townd_core_frame(c, 1, &rx.hdr, rx.payload, rx.payload_len, 1790000000);
		if ((k + 1) % 1000 == 0 && townd_core_flush(c, ignore, &ackbytes))
			return -1;
	}
	if (townd_core_flush(c, ignore, &ackbytes))
		return -1;
	t1 = now_s();
	printf("core only, synchronous=%-6s %d meters x %d readings: %.0f messages/s "
	       "(stored %llu, acks %llu)\n", sync_full ? "full" : "normal", METERS, PER_METER,
	       METERS * PER_METER / (t1 - t0), (unsigned long long)c->st.stored,
	       (unsigned long long)c->st.acks);
	townd_core_free(c);
	free(c);
	free(f);
	free(m);
	return 0;
}

#define CG_METERS	200
#define CG_PER_METER	50

/* The measured part: feed and flush; everything else is set-up. */
__attribute__((noinline)) int ingest_measured(struct townd_core *c, struct frame *f, size_t n,
					      uint64_t *ackbytes);
__attribute__((noinline)) int ingest_measured(struct townd_core *c, struct frame *f, size_t n,
					      uint64_t *ackbytes)
{
	for (size_t k = 0; k < n; k++) {
		struct gm_rx rx;
		enum gm_rx_status st;

		gm_rx_init(&rx);
		gm_rx_feed(&rx, f[k].wire, f[k].len, &st);
		if (st != GM_RX_FRAME)
			return -1;
		townd_core_frame(c, 1, &rx.hdr, rx.payload, rx.payload_len, 1790000000);
		if ((k + 1) % 1000 == 0 && townd_core_flush(c, ignore, ackbytes))
			return -1;
	}
	return townd_core_flush(c, ignore, ackbytes);
}

static int callgrind_run(const char *dir, const struct gmp_keypair *town)
{
	struct simmeter *m = calloc(CG_METERS, sizeof(*m));
	struct townd_core *c = malloc(sizeof(*c));
	struct frame *f = malloc(sizeof(*f) * CG_METERS * CG_PER_METER);
	char db[256], err[256];
	uint64_t ackbytes = 0;

	struct hs_ctx hc = { .m = m, .n = CG_METERS, .first_id = 1 };

	snprintf(db, sizeof(db), "%s/cg.db", dir);
	if (!m || !c || !f || provision_all(db, m, CG_METERS, 1, town))
		return -1;
	if (townd_core_init(c, db, 0, town, err, sizeof(err)))
		return -1;
	if (handshake_measured(c, &hc))
		return -1;
	for (int r = 0; r < CG_PER_METER; r++)
		for (int i = 0; i < CG_METERS; i++) {
			struct gmp_msg g;
			int len;

			sim_reading(m[i].id, r + 1, &g);
			len = simmeter_frame(&m[i], &g, 1, r == CG_PER_METER - 1 ? GM_FLAG_ACK_REQ : 0,
					     f[r * CG_METERS + i].wire, sizeof(f[0].wire));
			if (len < 0)
				return -1;
			f[r * CG_METERS + i].len = (uint16_t)len;
		}
	if (ingest_measured(c, f, (size_t)CG_METERS * CG_PER_METER, &ackbytes))
		return -1;
	printf("messages %d\nhandshakes %d\n", CG_METERS * CG_PER_METER, CG_METERS);
	townd_core_free(c);
	free(c);
	free(f);
	free(m);
	return 0;
}

struct acks_ctx {
	int left;
	char *done;
};

static int count_final(void *ctx, const struct gm_hdr *h, const uint8_t *p, size_t len)
{
	struct acks_ctx *a = ctx;

	(void)p;
	(void)len;
	/* acks are sealed; the final one of each meter is all that is counted */
	if (h->src == 0 && h->dst >= 1 && h->dst <= METERS && !a->done[h->dst]) {
		a->done[h->dst] = 1;
		a->left--;
	}
	return a->left == 0;
}

static long rss_kb(pid_t pid)
{
	char path[64], line[128];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int end_to_end(void)
{
	struct simmeter *m = calloc(METERS, sizeof(*m));
	struct sim_town t;
	struct frame *f;
	struct acks_ctx ac = { .left = METERS, .done = calloc(METERS + 1, 1) };
	struct sim_rx *rx = calloc(CONNS, sizeof(*rx));
	int fd[CONNS];
	double t0, t1;

	if (!m || !rx || !ac.done || sim_town_setup(&t, "townd-bench-e2e") ||
	    provision_all(t.cfg.database, m, METERS, 1, &t.kp))
		return -1;
	sim_town_start(&t);
	for (int c = 0; c < CONNS; c++) {
		fd[c] = sim_connect(t.port);
		if (fd[c] < 0)
			return -1;
		sim_rx_init(&rx[c]);
	}
	/* every meter's handshake over its connection (set-up, not measured) */
	for (int c = 0; c < CONNS; c++) {
		struct hs_ctx hc = { .m = m, .n = METERS, .first_id = 1 };
		int want = 0;

		for (int i = c; i < METERS; i += CONNS) {
			uint8_t wire[GM_MAX_WIRE];
			int len = simmeter_hello(&m[i], 0, wire, sizeof(wire));

			if (len < 0 || sim_send_all(fd[c], wire, (size_t)len))
				return -1;
			want++;
		}
		hc.want = want;
		while (hc.welcomed < want)
			if (sim_read_frames(fd[c], &rx[c], 10000, take_frame, &hc) <= 0 &&
			    hc.welcomed < want)
				return -1;
	}
	if (!(f = seal_all(m)))
		return -1;
	t0 = now_s();
	/* each connection gets the frames of meters i % CONNS, interleaved */
	{
		uint8_t *buf[CONNS];
		size_t len[CONNS] = { 0 };

		for (int c = 0; c < CONNS; c++)
			buf[c] = malloc((size_t)METERS * PER_METER / CONNS * 96 + 96 * METERS);
		for (size_t k = 0; k < (size_t)METERS * PER_METER; k++) {
			int c = (int)(k % METERS) % CONNS;

			memcpy(buf[c] + len[c], f[k].wire, f[k].len);
			len[c] += f[k].len;
		}
		/* the writes are blocking; acks are read afterwards (they fit buffers) */
		for (size_t off = 0;; off += 65536) {
			int more = 0;

			for (int c = 0; c < CONNS; c++)
				if (off < len[c]) {
					size_t n = len[c] - off < 65536 ? len[c] - off : 65536;

					if (sim_send_all(fd[c], buf[c] + off, n))
						return -1;
					more = 1;
				}
			if (!more)
				break;
		}
		for (int c = 0; c < CONNS; c++)
			free(buf[c]);
	}
	for (int c = 0; c < CONNS && ac.left; c++)
		while (ac.left && sim_read_frames(fd[c], &rx[c], 100, count_final, &ac) == 1)
			;
	while (ac.left) {
		int progress = 0;

		for (int c = 0; c < CONNS && ac.left; c++)
			progress |= sim_read_frames(fd[c], &rx[c], 200, count_final, &ac) != 0;
		if (!progress && now_s() - t0 > 120)
			return -1;
	}
	t1 = now_s();
	printf("end to end over 127.0.0.1, %d connections, synchronous=full: %.0f messages/s "
	       "(%d meters x %d readings, all acknowledged)\n", CONNS,
	       METERS * PER_METER / (t1 - t0), METERS, PER_METER);

	for (int c = 0; c < CONNS; c++)
		close(fd[c]);
	sim_town_teardown(&t, false);
	free(f);
	free(m);
	free(rx);
	free(ac.done);
	return 0;
}

/*
 * Memory per connected meter: a townd forked before the other runs (so
 * that it inherits no freed heap to reuse), idle, then CONNECTED meters
 * each on its own connection, handshake done and one reading stored.
 */
static int memory_run(void)
{
	struct simmeter *m = calloc(CONNECTED, sizeof(*m));
	int *cfd = calloc(CONNECTED, sizeof(int));
	struct sim_town t;
	long before, after;

	if (!m || !cfd || sim_town_setup(&t, "townd-bench-mem") ||
	    provision_all(t.cfg.database, m, CONNECTED, 1, &t.kp))
		return -1;
	sim_town_start(&t);
	{
		int probe = -1;

		for (int k = 0; k < 100 && probe < 0; k++) {
			probe = sim_connect(t.port);
			if (probe < 0)
				usleep(20000);
		}
		if (probe < 0)
			return -1;
		close(probe);
	}
	usleep(200000);
	before = rss_kb(t.pid);
	for (int i = 0; i < CONNECTED; i++) {
		uint8_t wire[GM_MAX_WIRE];
		int len = simmeter_hello(&m[i], 0, wire, sizeof(wire));

		cfd[i] = sim_connect(t.port);
		if (cfd[i] < 0 || len < 0 || sim_send_all(cfd[i], wire, (size_t)len))
			return -1;
	}
	for (int i = 0; i < CONNECTED; i++) {
		struct sim_rx r1;
		struct sim_ack a;
		struct gmp_msg g;
		struct frame one;
		int len;

		sim_rx_init(&r1);
		if (sim_wait_ack(&m[i], cfd[i], &r1, 10000, &a) != 1 || !a.welcome)
			return -1;
		sim_reading(m[i].id, 1, &g);
		len = simmeter_frame(&m[i], &g, 1, GM_FLAG_ACK_REQ, one.wire, sizeof(one.wire));
		if (len < 0 || sim_send_all(cfd[i], one.wire, (size_t)len))
			return -1;
	}
	for (int i = 0; i < CONNECTED; i++) {
		struct sim_rx r1;
		struct sim_ack a;

		sim_rx_init(&r1);
		if (sim_wait_ack(&m[i], cfd[i], &r1, 10000, &a) != 1 || a.upto != 1)
			return -1;
	}
	after = rss_kb(t.pid);
	printf("memory: RSS %ld KiB idle, %ld KiB with %d meters each on its own connection, "
	       "session up, one reading stored: %.0f bytes per connected meter "
	       "(struct townd_meter: %zu bytes)\n", before, after, CONNECTED,
	       (after - before) * 1024.0 / CONNECTED, sizeof(struct townd_meter));
	for (int i = 0; i < CONNECTED; i++)
		close(cfd[i]);
	sim_town_teardown(&t, false);
	free(m);
	free(cfd);
	return 0;
}

/*
 * --callgrind: only the ingest core, small and with synchronous=NORMAL, for
 * bench/townd_bench_ingest.sh to count instructions per message.
 */
static int callgrind_run(const char *dir, const struct gmp_keypair *town);

int main(int argc, char **argv)
{
	char dir[] = "/tmp/townd-bench-XXXXXX", cmd[160];
	struct gmp_keypair town;
	struct rlimit rl;
	int rc = 0;

	if (sodium_init() < 0 || !mkdtemp(dir))
		return 1;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < CONNECTED + 256) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	gmp_keypair_generate(&town);
	if (argc > 1 && !strcmp(argv[1], "--callgrind")) {
		rc = callgrind_run(dir, &town);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		return system(cmd) || rc ? 1 : 0;
	}
	if (memory_run()) {
		fprintf(stderr, "memory benchmark failed\n");
		rc = 1;
	}
	if (core_only(dir, 1, &town) || core_only(dir, 0, &town)) {
		fprintf(stderr, "core benchmark failed\n");
		rc = 1;
	}
	if (end_to_end()) {
		fprintf(stderr, "end-to-end benchmark failed\n");
		rc = 1;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		rc = 1;
	return rc;
}
