// SPDX-License-Identifier: GPL-2.0
/*
 * The town network over real links (server/townd_townnet.c): four towns
 * in a chain on 127.0.0.1, each with its SQLite database, its key pair, a
 * gmproto client (outbox on disk) to each neighbour and a gmp_server for
 * its neighbours' clients. The town at one end needs power, the one at the
 * other end has it: the loan travels three hops through two intermediaries
 * over authenticated, encrypted, acknowledged links. Then an intermediary
 * is stopped and started again from its database: the loan stays open on
 * every side. Generous real-time limits (nothing depends on speed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "gm_harness.h"
#include "townd_loans_db.h"
#include "townd_townnet.h"

#define NT	4
#define BASE	1000
#define LIMIT_MS	(getenv("LOANS_LIMIT_MS") ? atoi(getenv("LOANS_LIMIT_MS")) : 20000)

struct town {
	int id;
	bool up;
	struct townd_config cfg;
	struct gmp_keypair key;
	struct townd_db db;
	struct townd_townnet tn;
	int ep;
	int64_t need, surplus;
	int reports[4];
};

static struct town towns[NT + 1];
static char dir[64];

static int64_t ms(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void h_report(void *ctx, struct gmp_msg *m)
{
	struct town *t = ctx;

	t->reports[m->loan.state]++;
}

static void h_balance(void *ctx, int64_t borrowed, int64_t lent, int64_t *need, int64_t *surplus)
{
	struct town *t = ctx;

	(void)borrowed;
	(void)lent;
	*need = t->need;
	*surplus = t->surplus;
}

static void h_log(void *ctx, int level, const char *msg)
{
	struct town *t = ctx;

	(void)level;
	if (getenv("LOANS_VERBOSE"))
		fprintf(stderr, "town %d: %s\n", t->id, msg);
}

static int listen_on(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	/* accepted connections inherit it: the port can be bound again after a stop */
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&a, &l))
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static int town_start(struct town *t, int lfd, char *err)
{
	struct townd_townnet_hooks h = { .ctx = t, .report = h_report, .balance = h_balance,
					 .log = h_log };

	if (tdb_open(&t->db, t->cfg.database, 1, err, 256))
		return -1;
	t->ep = epoll_create1(EPOLL_CLOEXEC);
	if (townd_townnet_init(&t->tn, &t->cfg, &t->db, &t->key, &h, lfd, err, 256))
		return -1;
	if (townd_townnet_attach(&t->tn, t->ep, BASE))
		return -1;
	t->up = true;
	return 0;
}

static void town_stop(struct town *t)
{
	townd_townnet_free(&t->tn);
	tdb_close(&t->db);
	close(t->ep);
	t->up = false;
}

/* Run every town's loop for a while, or until done() says so. */
static int run(int64_t limit_ms, bool (*done)(void))
{
	int64_t end = ms(CLOCK_MONOTONIC) + limit_ms;

	while (ms(CLOCK_MONOTONIC) < end) {
		for (int i = 1; i <= NT; i++) {
			struct town *t = &towns[i];
			struct epoll_event evs[32];
			int k;

			if (!t->up)
				continue;
			k = epoll_wait(t->ep, evs, 32, 0);
			for (int e = 0; e < k; e++)
				if (townd_townnet_event(&t->tn, evs[e].data.u64, evs[e].events,
							ms(CLOCK_MONOTONIC), ms(CLOCK_REALTIME)))
					return -1;
			if (townd_townnet_tick(&t->tn, ms(CLOCK_MONOTONIC), ms(CLOCK_REALTIME)))
				return -1;
		}
		if (done && done())
			return 0;
		usleep(5000);
	}
	return done ? -ETIMEDOUT : 0;
}

static bool borrowed(void)
{
	return townd_loans_borrowed_w(&towns[1].tn.loans) == towns[1].need;
}

static bool all_up(void)
{
	for (int i = 1; i <= NT; i++)
		for (int k = 0; k < towns[i].tn.n; k++)
			if (!townd_tier_up(&towns[i].tn.tier[k]))
				return false;
	return true;
}

static int relays_open(int i)
{
	int n = 0;

	for (int k = 0; k < TOWND_LOANS_MAX; k++) {
		const struct townd_loans_seg *s = &towns[i].tn.loans.seg[k];

		n += s->used && s->role == TOWND_LOAN_RELAY && s->phase == TOWND_LOAN_OPEN;
	}
	return n;
}

TEST(three_hops_over_real_links_and_a_restart)
{
	uint16_t port[NT + 1];
	int lfd[NT + 1];
	char err[256] = "";
	int64_t t0, took;

	ASSERT_LE(0, sodium_init());
	snprintf(dir, sizeof(dir), "/tmp/townd-net-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(dir));
	for (int i = 1; i <= NT; i++) {
		lfd[i] = listen_on(&port[i]);
		ASSERT_LE(0, lfd[i]);
		towns[i].id = i;
		gmp_keypair_generate(&towns[i].key);
	}
	for (int i = 1; i <= NT; i++) {
		struct townd_config *c = &towns[i].cfg;

		townd_config_defaults(c);
		snprintf(c->database, sizeof(c->database), "%s/town%d.db", dir, i);
		c->up.town_id = (uint16_t)i;
		for (int j = i - 1; j <= i + 1; j += 2) {
			struct townd_neighbour_config *nb;
			char a[32];

			if (j < 1 || j > NT)
				continue;
			nb = &c->tn.nb[c->tn.n++];
			nb->id = (uint16_t)j;
			nb->cost = 1;
			memcpy(nb->pk, towns[j].key.pk, GMP_KEY_LEN);
			snprintf(a, sizeof(a), "127.0.0.1:%u", port[j]);
			ASSERT_EQ(0, townd_parse_addr(a, &nb->addr, &nb->addr_len));
			snprintf(nb->outbox, sizeof(nb->outbox), "%s/out-%d-to-%d", dir, i, j);
		}
	}
	towns[NT].surplus = 1000;
	for (int i = 1; i <= NT; i++) {
		ASSERT_EQ(0, town_start(&towns[i], lfd[i], err)) TH_LOG("town %d: %s", i, err);
	}
	/* every link connected and its session up; then town 1 needs power */
	ASSERT_EQ(0, run(LIMIT_MS, all_up));
	towns[1].need = 600;
	t0 = ms(CLOCK_MONOTONIC);
	if (run(LIMIT_MS, borrowed)) {
		for (int i = 1; i <= NT; i++) {
			const struct gmps_stats *g = &towns[i].tn.srv.st;

			TH_LOG("town %d: server frames %llu stored %llu malformed %llu auth %llu "
			       "unknown %llu acks %llu; client 0 frames out %llu in %llu backlog %llu",
			       i, (unsigned long long)g->frames, (unsigned long long)g->stored,
			       (unsigned long long)g->malformed, (unsigned long long)g->auth_failed,
			       (unsigned long long)g->unknown_peer, (unsigned long long)g->acks,
			       (unsigned long long)towns[i].tn.tier[0].frames_out,
			       (unsigned long long)towns[i].tn.tier[0].frames_in,
			       (unsigned long long)gmpc_backlog(&towns[i].tn.tier[0].c));
		}
		for (int i = 1; i <= NT; i++)
			for (int k = 0; k < towns[i].tn.n; k++)
				TH_LOG("town %d tier %d: out %llu in %llu backlog %llu next %llu state %d/%d",
				       i, k, (unsigned long long)towns[i].tn.tier[k].frames_out,
				       (unsigned long long)towns[i].tn.tier[k].frames_in,
				       (unsigned long long)gmpc_backlog(&towns[i].tn.tier[k].c),
				       (unsigned long long)gmpc_next(&towns[i].tn.tier[k].c),
				       towns[i].tn.tier[k].state, towns[i].tn.tier[k].c.state);
		ASSERT_TRUE(false) TH_LOG("town 1 borrowed %lld",
					  (long long)townd_loans_borrowed_w(&towns[1].tn.loans));
	}
	took = ms(CLOCK_MONOTONIC) - t0;
	printf("# over TCP on loopback, sessions up: the loan opened %lld ms after the need "
	       "(4 towns, 3 hops, every record stored before it is acknowledged)\n",
	       (long long)took);
	fflush(stdout);
	/* let the confirms and reports settle */
	ASSERT_EQ(0, run(500, NULL));
	EXPECT_EQ(600, townd_loans_lent_w(&towns[NT].tn.loans));
	EXPECT_EQ(1, relays_open(2));
	EXPECT_EQ(1, relays_open(3));
	for (int i = 1; i <= NT; i++) {
		EXPECT_EQ(1, towns[i].reports[GMP_LOAN_OPEN]) TH_LOG("town %d", i);
	}

	/* an intermediary stops and starts again from its database */
	town_stop(&towns[3]);
	ASSERT_EQ(0, run(1000, NULL));
	{
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port[3]),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
		ASSERT_EQ(0, bind(fd, (struct sockaddr *)&a, sizeof(a))) TH_LOG("%s", strerror(errno));
		ASSERT_EQ(0, listen(fd, 16));
		ASSERT_EQ(0, town_start(&towns[3], fd, err)) TH_LOG("%s", err);
	}
	EXPECT_EQ(1, relays_open(3));	/* restored */
	ASSERT_EQ(0, run(LIMIT_MS, all_up));	/* reconnected (after the clients' back-off) */
	ASSERT_EQ(0, run(1000, NULL));
	EXPECT_EQ(600, townd_loans_borrowed_w(&towns[1].tn.loans));
	EXPECT_EQ(600, townd_loans_lent_w(&towns[NT].tn.loans));
	EXPECT_EQ(1, relays_open(2));
	EXPECT_EQ(1, relays_open(3));
	for (int i = 1; i <= NT; i++) {
		EXPECT_EQ(0, towns[i].reports[GMP_LOAN_CANCELLED]) TH_LOG("town %d", i);
		EXPECT_TRUE(townd_tier_up(&towns[i].tn.tier[0])) TH_LOG("town %d", i);
	}
	/* the borrower no longer needs it: returned on every side */
	towns[1].need = 0;
	ASSERT_EQ(0, run(3000, NULL));
	for (int i = 1; i <= NT; i++) {
		EXPECT_EQ(1, towns[i].reports[GMP_LOAN_RETURNED]) TH_LOG("town %d", i);
	}
	EXPECT_EQ(0, townd_loans_lent_w(&towns[NT].tn.loans));
	for (int i = 1; i <= NT; i++)
		town_stop(&towns[i]);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		EXPECT_EQ(0, system(cmd));
	}
}

TEST_HARNESS_MAIN
