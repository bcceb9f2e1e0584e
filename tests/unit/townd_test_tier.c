// SPDX-License-Identifier: GPL-2.0
/*
 * The tier client (server/townd_tier.c): reconnection back-off against a
 * refused port, a whole exchange with a minimal main server (records in,
 * acknowledged, a command out), and the outbox's deferred sync it uses.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "mainsim.h"
#include "townd_tier.h"

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int rec_count(void *ctx, uint64_t seq, const uint8_t *data, size_t len)
{
	(void)seq;
	(void)data;
	(void)len;
	(*(int *)ctx)++;
	return 0;
}

TEST(outbox_deferred_sync)
{
	char dir[64], err[256];
	struct outbox o;
	uint8_t rec[40];
	int n = 0;

	strcpy(dir, "/tmp/townd-tier-ob-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(dir));
	ASSERT_EQ(0, outbox_open(&o, dir, 1 << 20, err, sizeof(err))) TH_LOG("%s", err);
	o.defer_sync = true;
	/* across a segment boundary: the full segment is synced before the next one */
	for (uint64_t seq = 1; seq <= 2000; seq++) {
		memset(rec, (int)seq, sizeof(rec));
		ASSERT_EQ(0, outbox_append(&o, seq, rec, sizeof(rec)));
	}
	EXPECT_LT(1, o.n_seg);
	ASSERT_EQ(0, outbox_sync(&o));
	outbox_close(&o);
	ASSERT_EQ(0, outbox_open(&o, dir, 1 << 20, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(2001, o.next);
	EXPECT_EQ(0, outbox_for_each(&o, 1, rec_count, &n));
	EXPECT_EQ(2000, n);
	EXPECT_EQ(0, o.quarantined);
	outbox_close(&o);
	snprintf(err, sizeof(err), "rm -rf '%s'", dir);
	ASSERT_EQ(0, system(err));
}

static void refused_addr(struct townd_tier_config *tc)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* a port that was free a moment ago and has no listener */
	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	memcpy(&tc->addr, &sa, sizeof(sa));
	tc->addr_len = sizeof(sa);
}

/* Run the tier's events for up to ms (real time). */
static void spin(struct townd_tier *t, int ep, int ms, int64_t fake_now)
{
	int64_t end = mono_ms() + ms;

	while (mono_ms() < end) {
		struct epoll_event ev[4];
		int k = epoll_wait(ep, ev, 4, 20);

		for (int i = 0; i < k; i++)
			townd_tier_event(t, ev[i].events, fake_now, 0);
		if (k > 0 && t->state == TIER_IDLE)
			return;
	}
}

TEST(reconnects_with_doubling_jittered_back_off)
{
	struct townd_tier_config tc;
	struct townd_tier t;
	char dir[64], err[256];
	int64_t now = 1000000, expect_backoff = 1000;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	ASSERT_LE(0, sodium_init());
	strcpy(dir, "/tmp/townd-tier-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(dir));
	townd_tier_defaults(&tc);
	snprintf(tc.name, sizeof(tc.name), "test");
	refused_addr(&tc);
	tc.own_id = 9;
	gmp_keypair_generate(&tc.key);
	{
		struct gmp_keypair peer;

		gmp_keypair_generate(&peer);
		memcpy(tc.peer_pk, peer.pk, GMP_KEY_LEN);
	}
	snprintf(tc.outbox, sizeof(tc.outbox), "%s/ob", dir);
	tc.reconnect_min_ms = 1000;
	tc.reconnect_max_ms = 4000;
	ASSERT_EQ(0, townd_tier_open(&t, &tc, NULL, err, sizeof(err))) TH_LOG("%s", err);
	townd_tier_attach(&t, ep, 77);
	for (int i = 0; i < 5; i++) {
		int64_t wait;

		townd_tier_tick(&t, now, 0);	/* a connect, refused at once or by an event */
		if (t.state == TIER_CONNECTING)
			spin(&t, ep, 2000, now);
		ASSERT_EQ(TIER_IDLE, t.state);
		wait = t.reconnect_at - now;
		/* x uniform(0.5, 1.5) of a back-off doubling from 1 s up to 4 s */
		EXPECT_LE(expect_backoff / 2, wait) TH_LOG("try %d", i);
		EXPECT_GE(expect_backoff + expect_backoff / 2, wait) TH_LOG("try %d", i);
		EXPECT_EQ(t.reconnect_at, townd_tier_deadline(&t));
		/* the next one: doubled, capped */
		EXPECT_EQ(expect_backoff * 2 > 4000 ? 4000 : expect_backoff * 2, t.backoff_ms);
		townd_tier_tick(&t, t.reconnect_at - 1, 0);	/* not before it is due */
		EXPECT_EQ(TIER_IDLE, t.state);
		now = t.reconnect_at;
		expect_backoff = expect_backoff * 2 > 4000 ? 4000 : expect_backoff * 2;
	}
	EXPECT_EQ(5, t.connect_failures);
	EXPECT_EQ(0, t.connects);
	townd_tier_close(&t);
	close(ep);
	snprintf(err, sizeof(err), "rm -rf '%s'", dir);
	ASSERT_EQ(0, system(err));
}

struct seen {
	int supply, acked_calls;
	uint64_t acked;
	int64_t capacity;
};

static int on_cmd(void *ctx, const struct gmp_msg *m)
{
	struct seen *s = ctx;

	if (m->type != GMP_SUPPLY)
		return GMP_CMD_UNSUPPORTED;
	s->supply++;
	s->capacity = m->supply.capacity_w;
	return GMP_CMD_OK;
}

static void on_acked(void *ctx, uint64_t acked)
{
	struct seen *s = ctx;

	s->acked = acked;
	s->acked_calls++;
}

/* Records to a server, acknowledged, its command applied once and answered. */
TEST(exchange_with_a_server)
{
	struct townd_tier_hooks hooks = { .command = on_cmd, .acked = on_acked };
	struct townd_tier_config tc;
	struct townd_tier t;
	struct mainsim ms;
	struct seen seen = { 0 };
	struct gmp_keypair town;
	char dir[64], err[256];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int64_t end;

	ASSERT_LE(0, sodium_init());
	strcpy(dir, "/tmp/townd-tier-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(dir));
	gmp_keypair_generate(&town);
	ASSERT_EQ(0, mainsim_setup(&ms, dir, town.pk, 9, 123456));
	mainsim_start(&ms);
	townd_tier_defaults(&tc);
	snprintf(tc.name, sizeof(tc.name), "test");
	{
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(ms.port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		memcpy(&tc.addr, &sa, sizeof(sa));
		tc.addr_len = sizeof(sa);
	}
	tc.own_id = 9;
	tc.key = town;
	memcpy(tc.peer_pk, ms.kp.pk, GMP_KEY_LEN);
	snprintf(tc.outbox, sizeof(tc.outbox), "%s/ob", dir);
	hooks.ctx = &seen;
	ASSERT_EQ(0, townd_tier_open(&t, &tc, &hooks, err, sizeof(err))) TH_LOG("%s", err);
	townd_tier_attach(&t, ep, 5);
	for (int i = 0; i < 50; i++) {
		struct gmp_msg m = { .type = GMP_TOWN_HOUR };

		m.town_hour.hour = 1790002800 + 3600 * i;
		m.town_hour.meters = i;
		m.town_hour.import_mwh = 1000 + i;
		ASSERT_LE(0, townd_tier_record(&t, &m));
		EXPECT_EQ(i + 1, m.town_hour.seq);
	}
	ASSERT_EQ(0, townd_tier_sync(&t));
	end = mono_ms() + 60000;	/* generous: exits as soon as done */
	while (mono_ms() < end && (seen.acked < 50 || !seen.supply)) {
		struct epoll_event ev[4];
		int k = epoll_wait(ep, ev, 4, 50);

		for (int i = 0; i < k; i++)
			townd_tier_event(&t, ev[i].events, mono_ms(), (int64_t)time(NULL) * 1000);
		townd_tier_tick(&t, mono_ms(), (int64_t)time(NULL) * 1000);
	}
	EXPECT_EQ(50, seen.acked);
	EXPECT_LE(1, seen.acked_calls);
	EXPECT_EQ(1, seen.supply);
	EXPECT_EQ(123456, seen.capacity);
	EXPECT_TRUE(townd_tier_up(&t));
	EXPECT_EQ(0, gmpc_backlog(townd_tier_client(&t)));
	/* the result goes with the next pump, in a frame of its own if need be */
	end = mono_ms() + 60000;	/* generous: exits as soon as done */
	while (mono_ms() < end && mainsim_q1(&ms, "SELECT status FROM cmds WHERE tseq = 1") < 0) {
		struct epoll_event ev[4];
		int k = epoll_wait(ep, ev, 4, 50);

		for (int i = 0; i < k; i++)
			townd_tier_event(&t, ev[i].events, mono_ms(), 0);
		townd_tier_tick(&t, mono_ms(), 0);
	}
	EXPECT_EQ(GMP_CMD_OK, mainsim_q1(&ms, "SELECT status FROM cmds WHERE tseq = 1"));
	EXPECT_EQ(1000 + 49, mainsim_q1(&ms, "SELECT import_mwh FROM recs WHERE seq = 50"));
	EXPECT_EQ(1, t.connects);
	townd_tier_close(&t);
	mainsim_teardown(&ms);
	close(ep);
	snprintf(err, sizeof(err), "rm -rf '%s'", dir);
	ASSERT_EQ(0, system(err));
}

TEST_HARNESS_MAIN
