// SPDX-License-Identifier: GPL-2.0
/*
 * The journal rate limiter (agent/core/log_limit.c): one line of a kind
 * (text without digits) per window, the rest counted and summarised, every
 * fed line accounted for (written, or counted in exactly one summary), and
 * the journal of a storm bounded by kinds x windows, not by its rate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "log_limit.h"

#define MIN_MS	60000

struct out {
	int n;
	char line[64][LOG_LIMIT_LINE];
	int level[64];
};

/* Feed one line, collect what is to be written. */
static int feed(struct log_limit *l, struct out *o, int level, const char *line, int64_t now)
{
	const char *w;
	int lvl, n = 0;

	log_limit_feed(l, level, line, now);
	while ((w = log_limit_next(l, &lvl))) {
		if (o && o->n < 64) {
			snprintf(o->line[o->n], LOG_LIMIT_LINE, "%s", w);
			o->level[o->n++] = lvl;
		}
		n++;
	}
	return n;
}

/* The N of "N similar lines suppressed", 0 if not a summary. */
static unsigned long summary_count(const char *line)
{
	char *end;
	unsigned long n = strtoul(line, &end, 10);

	if (end == line || (strncmp(end, " similar lines suppressed (last: ", 33) &&
			    strncmp(end, " similar line suppressed (last: ", 32)))
		return 0;
	return n;
}

TEST(same_kind_once_per_window_then_summary)
{
	struct log_limit l = { 0 };	/* zeroed: default window */
	struct out o = { 0 };

	EXPECT_EQ(1, feed(&l, &o, LOG_INFO, "modem: bring-up failed: CONNECT FAIL (attempt 1)", 0));
	EXPECT_STREQ("modem: bring-up failed: CONNECT FAIL (attempt 1)", o.line[0]);
	/* numbers differ: the same kind, held back until the window ends */
	EXPECT_EQ(0, feed(&l, &o, LOG_INFO, "modem: bring-up failed: CONNECT FAIL (attempt 2)", 5000));
	EXPECT_EQ(0, feed(&l, &o, LOG_WARNING, "modem: bring-up failed: CONNECT FAIL (attempt 3)",
			  LOG_LIMIT_WINDOW_MS - 1));
	/* another kind is not affected */
	EXPECT_EQ(1, feed(&l, &o, LOG_INFO, "modem: setup -> registering", 6000));
	/* the window of the first ended: the summary (most severe level), then the line */
	o.n = 0;
	EXPECT_EQ(2, feed(&l, &o, LOG_INFO, "modem: bring-up failed: CONNECT FAIL (attempt 4)",
			  LOG_LIMIT_WINDOW_MS));
	EXPECT_STREQ("2 similar lines suppressed (last: modem: bring-up failed: CONNECT FAIL "
		     "(attempt 3))", o.line[0]);
	EXPECT_EQ(LOG_WARNING, o.level[0]);
	EXPECT_STREQ("modem: bring-up failed: CONNECT FAIL (attempt 4)", o.line[1]);
	EXPECT_EQ(LOG_INFO, o.level[1]);
	EXPECT_EQ(3u, l.written);
	EXPECT_EQ(2u, l.suppressed);
	EXPECT_EQ(1u, l.summaries);
}

TEST(digits_are_the_only_wildcard)
{
	EXPECT_EQ(log_limit_key("next attempt in 37 s"), log_limit_key("next attempt in 412 s"));
	EXPECT_EQ(log_limit_key("address 10.64.3.17"), log_limit_key("address 10.0.0.1"));
	EXPECT_NE(log_limit_key("modem: gprs -> connecting"), log_limit_key("modem: setup -> connecting"));
	EXPECT_NE(log_limit_key("a b"), log_limit_key("ab"));
	EXPECT_NE(0u, log_limit_key(""));
}

/* A kind that stops: its summary comes out with the next line of any kind. */
TEST(summary_of_a_kind_that_stopped)
{
	struct log_limit l = { .window_ms = 1000 };
	struct out o = { 0 };

	feed(&l, &o, LOG_ERR, "uplink: sending: No buffer space available", 0);
	feed(&l, &o, LOG_ERR, "uplink: sending: No buffer space available", 10);
	feed(&l, &o, LOG_NOTICE, "other", 500);
	EXPECT_EQ(2, o.n);
	o.n = 0;
	EXPECT_EQ(2, feed(&l, &o, LOG_NOTICE, "third", 1000));
	EXPECT_STREQ("1 similar line suppressed (last: uplink: sending: No buffer space available)",
		     o.line[0]);
	EXPECT_EQ(LOG_ERR, o.level[0]);
	EXPECT_STREQ("third", o.line[1]);
	/* reported once only */
	o.n = 0;
	EXPECT_EQ(1, feed(&l, &o, LOG_NOTICE, "fourth", 5000));
}

/*
 * A storm: K kinds, each fed at its own pseudo-random rate for T. Written
 * lines of a kind <= floor(T / W) + 1, summaries as many, and every fed
 * line is either written or counted in exactly one summary.
 */
static void storm(struct __test_metadata *_metadata, unsigned int kinds, uint32_t window_ms)
{
	const int64_t T = 3 * 3600 * 1000LL;
	struct log_limit *l = calloc(1, sizeof(*l));
	unsigned long fed = 0, written = 0, counted = 0, per_kind[80] = { 0 };
	unsigned long long rng = 0x9e3779b97f4a7c15ull;
	int64_t next[80], bound = T / window_ms + 1;
	char text[80];

	ASSERT_NE(NULL, l);
	ASSERT_GE(80u, kinds);
	l->window_ms = window_ms;
	for (unsigned int k = 0; k < kinds; k++)
		next[k] = (int64_t)k;
	for (;;) {
		unsigned int k = 0;
		const char *w;
		int lvl;

		for (unsigned int i = 1; i < kinds; i++)
			if (next[i] < next[k])
				k = i;
		if (next[k] >= T)
			break;
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		/* kind k: letters from k, a number that changes every time */
		snprintf(text, sizeof(text), "kind %c%c: retry %llu", 'a' + k % 26, 'a' + k / 26,
			 rng >> 40);
		log_limit_feed(l, LOG_INFO, text, next[k]);
		fed++;
		while ((w = log_limit_next(l, &lvl))) {
			unsigned long n = summary_count(w);

			if (n) {
				counted += n;
			} else {
				unsigned int kk = (unsigned int)(w[5] - 'a') + 26u * (unsigned int)(w[6] - 'a');

				ASSERT_LT(kk, kinds);
				per_kind[kk]++;
				written++;
			}
		}
		next[k] += 200 + (int64_t)((rng >> 33) % (2000 * (k + 1)));	/* 0.2 s .. k x 2 s apart */
	}
	/* after every window ended, one more line drains the summaries */
	log_limit_feed(l, LOG_INFO, "the end", T + window_ms);
	for (const char *w; (w = log_limit_next(l, &(int){ 0 }));)
		counted += summary_count(w);
	EXPECT_EQ(fed, written + counted);
	EXPECT_EQ(fed, l->written + l->suppressed - 1);
	if (kinds <= LOG_LIMIT_SLOTS) {
		for (unsigned int k = 0; k < kinds; k++) {
			EXPECT_GE(bound, (int64_t)per_kind[k]) TH_LOG("kind %u", k);
		}
		EXPECT_GE((uint64_t)(kinds * bound), l->summaries);
	}
	TH_LOG("%u kinds, window %u s: %lu lines fed, %lu written + %llu summaries",
	       kinds, window_ms / 1000, fed, written, (unsigned long long)l->summaries);
	free(l);
}

TEST(storm_bounded_by_kinds_and_windows)
{
	storm(_metadata, 12, LOG_LIMIT_WINDOW_MS);
	storm(_metadata, LOG_LIMIT_SLOTS, 60000);
}

/* More kinds than slots: the limiter gives some up, but loses no count. */
TEST(more_kinds_than_slots_loses_no_count)
{
	storm(_metadata, LOG_LIMIT_SLOTS + 20, LOG_LIMIT_WINDOW_MS);
}

TEST(given_up_kind_reported_first)
{
	struct log_limit l = { 0 };
	struct out o = { 0 };
	char text[32];

	/* slot 0's kind gets one held-back line, then a new kind per slot */
	feed(&l, &o, LOG_INFO, "first kind 1", 0);
	feed(&l, &o, LOG_INFO, "first kind 2", 1);
	for (int i = 1; i < LOG_LIMIT_SLOTS; i++) {
		snprintf(text, sizeof(text), "kind %c%c", 'a' + i % 26, 'a' + i / 26);
		feed(&l, &o, LOG_INFO, text, 10 + i);
	}
	/* every slot is busy: the kind whose window ends first is given up */
	o.n = 0;
	EXPECT_EQ(2, feed(&l, &o, LOG_INFO, "a new kind", 100));
	EXPECT_STREQ("1 similar line suppressed (last: first kind 2)", o.line[0]);
	EXPECT_STREQ("a new kind", o.line[1]);
}

TEST_HARNESS_MAIN
