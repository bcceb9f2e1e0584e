// SPDX-License-Identifier: GPL-2.0
/*
 * lib/web/auth.c: Argon2id passwords, session tokens (only their hash kept),
 * absolute and idle expiry, ending a user's sessions, CSRF comparison,
 * login throttling. Times are given by the test (simulated clock).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "gm_harness.h"

TEST(password_hash_and_verify)
{
	char h1[128], h2[128];

	ASSERT_EQ(0, web_passwd_hash("correct horse", h1));
	ASSERT_EQ(0, web_passwd_hash("correct horse", h2));
	EXPECT_EQ(0, strncmp(h1, "$argon2id$v=19$m=", 17)) TH_LOG("%s", h1);
	EXPECT_STRNE(h1, h2);	/* salted */
	EXPECT_TRUE(web_passwd_verify(h1, "correct horse"));
	EXPECT_TRUE(web_passwd_verify(h2, "correct horse"));
	EXPECT_FALSE(web_passwd_verify(h1, "correct horsE"));
	EXPECT_FALSE(web_passwd_verify(h1, ""));
	EXPECT_FALSE(web_passwd_verify("", "correct horse"));
	EXPECT_FALSE(web_passwd_verify("$argon2id$garbage", "correct horse"));
	EXPECT_FALSE(web_passwd_verify(NULL, "x"));
	h1[strlen(h1) - 2] ^= 1;	/* a changed hash no longer matches */
	EXPECT_FALSE(web_passwd_verify(h1, "correct horse"));
}

TEST(tokens_are_distinct_base64url)
{
	char t[8][WEB_TOKEN_LEN + 1];

	for (int i = 0; i < 8; i++) {
		web_token_new(t[i]);
		EXPECT_EQ(WEB_TOKEN_LEN, strlen(t[i]));
		EXPECT_EQ(WEB_TOKEN_LEN, strspn(t[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"));
		for (int j = 0; j < i; j++)
			EXPECT_STRNE(t[i], t[j]);
	}
}

static struct web_session who(const char *user, enum web_role role, int64_t subject)
{
	struct web_session s;

	memset(&s, 0, sizeof(s));
	snprintf(s.user, sizeof(s.user), "%s", user);
	s.role = role;
	s.subject = subject;
	return s;
}

TEST(session_lifetime_and_idle)
{
	struct web_sessions t;
	struct web_session s = who("ann", WEB_ROLE_CUSTOMER, 42), got;
	char tok[WEB_TOKEN_LEN + 1];
	const int64_t t0 = 1700000000, life = 3600, idle = 600;

	ASSERT_EQ(0, web_sessions_init(&t, 4, life, idle));
	ASSERT_EQ(0, web_session_create(&t, &s, t0, tok));
	EXPECT_EQ(WEB_TOKEN_LEN, strlen(tok));
	EXPECT_EQ(WEB_TOKEN_LEN, strlen(s.csrf));
	EXPECT_EQ(t0 + life, s.expires);
	ASSERT_EQ(0, web_session_get(&t, tok, t0 + 1, &got));
	EXPECT_STREQ("ann", got.user);
	EXPECT_EQ(WEB_ROLE_CUSTOMER, got.role);
	EXPECT_EQ(42, got.subject);
	EXPECT_STREQ(s.csrf, got.csrf);

	/* Used every idle-1 s, it lives until its absolute end and not a second more. */
	for (int64_t now = t0 + idle - 1; now < t0 + life; now += idle - 1) {
		ASSERT_EQ(0, web_session_get(&t, tok, now, &got));
	}
	EXPECT_EQ(-1, web_session_get(&t, tok, t0 + life, &got));
	EXPECT_EQ(0, t.n);	/* removed */

	/* Idle: at last_seen + idle still alive, one second later gone. */
	ASSERT_EQ(0, web_session_create(&t, &s, t0, tok));
	ASSERT_EQ(0, web_session_get(&t, tok, t0 + 100, &got));
	ASSERT_EQ(0, web_session_get(&t, tok, t0 + 100 + idle, &got));
	EXPECT_EQ(-1, web_session_get(&t, tok, t0 + 101 + 2 * idle, &got));
	EXPECT_EQ(-1, web_session_get(&t, tok, t0 + 102 + 2 * idle, &got));

	/* Unknown, truncated and altered tokens. */
	ASSERT_EQ(0, web_session_create(&t, &s, t0, tok));
	EXPECT_EQ(-1, web_session_get(&t, "", t0, &got));
	EXPECT_EQ(-1, web_session_get(&t, NULL, t0, &got));
	tok[5] = tok[5] == 'A' ? 'B' : 'A';
	EXPECT_EQ(-1, web_session_get(&t, tok, t0, &got));
	web_sessions_free(&t);
}

TEST(session_full_update_end_and_end_user)
{
	struct web_sessions t;
	struct web_session s = who("op1", WEB_ROLE_OPERATOR, 0), got;
	char a[WEB_TOKEN_LEN + 1], b[WEB_TOKEN_LEN + 1], c[WEB_TOKEN_LEN + 1];
	char csrf[WEB_TOKEN_LEN + 1];

	ASSERT_EQ(0, web_sessions_init(&t, 2, 100, 50));
	s.pending_second_factor = true;
	ASSERT_EQ(0, web_session_create(&t, &s, 0, a));
	memcpy(csrf, s.csrf, sizeof(csrf));
	ASSERT_EQ(0, web_session_create(&t, &s, 0, b));
	EXPECT_STRNE(csrf, s.csrf);	/* each session its own CSRF token */
	EXPECT_EQ(-1, web_session_create(&t, &s, 10, c));	/* full */
	/* An expired one makes room. */
	ASSERT_EQ(0, web_session_get(&t, a, 40, &got));
	ASSERT_EQ(0, web_session_create(&t, &s, 60, c));	/* b idle since 0: dropped */
	EXPECT_EQ(-1, web_session_get(&t, b, 60, &got));

	/* The second factor passed: same token, same CSRF token, new state. */
	ASSERT_EQ(0, web_session_get(&t, a, 61, &got));
	EXPECT_TRUE(got.pending_second_factor);
	got.pending_second_factor = false;
	snprintf(got.csrf, sizeof(got.csrf), "forged");
	ASSERT_EQ(0, web_session_update(&t, a, &got));
	ASSERT_EQ(0, web_session_get(&t, a, 62, &got));
	EXPECT_FALSE(got.pending_second_factor);
	EXPECT_STREQ(csrf, got.csrf);
	EXPECT_EQ(-1, web_session_update(&t, b, &got));

	web_session_end(&t, c);
	EXPECT_EQ(-1, web_session_get(&t, c, 62, &got));
	ASSERT_EQ(0, web_session_get(&t, a, 62, &got));

	/* Every session of one user ends; another user's stays. */
	s = who("op2", WEB_ROLE_OPERATOR, 0);
	ASSERT_EQ(0, web_session_create(&t, &s, 62, b));
	web_sessions_end_user(&t, "op1");
	EXPECT_EQ(-1, web_session_get(&t, a, 63, &got));
	EXPECT_EQ(0, web_session_get(&t, b, 63, &got));
	EXPECT_EQ(1, t.n);
	web_sessions_free(&t);
}

TEST(sessions_trim_user)
{
	struct web_sessions t;
	struct web_session s, got;
	char tok[4][WEB_TOKEN_LEN + 1], other[WEB_TOKEN_LEN + 1];

	ASSERT_EQ(0, web_sessions_init(&t, 8, 3600, 600));
	/* four of u1's in the same second, the first used since; one of u2's */
	for (int i = 0; i < 4; i++) {
		s = who("u1", WEB_ROLE_CUSTOMER, 7);
		ASSERT_EQ(0, web_session_create(&t, &s, 100, tok[i]));
	}
	s = who("u2", WEB_ROLE_CUSTOMER, 8);
	ASSERT_EQ(0, web_session_create(&t, &s, 100, other));
	ASSERT_EQ(0, web_session_get(&t, tok[0], 101, &got));
	/* down to two: the least recently used go (ties: the oldest made) */
	web_sessions_trim_user(&t, "u1", 2);
	EXPECT_EQ(3, t.n);
	EXPECT_EQ(0, web_session_get(&t, tok[0], 102, &got));
	EXPECT_EQ(-1, web_session_get(&t, tok[1], 102, &got));
	EXPECT_EQ(-1, web_session_get(&t, tok[2], 102, &got));
	EXPECT_EQ(0, web_session_get(&t, tok[3], 102, &got));
	EXPECT_EQ(0, web_session_get(&t, other, 102, &got));
	/* fewer than keep: nothing ends */
	web_sessions_trim_user(&t, "u2", 2);
	EXPECT_EQ(3, t.n);
	web_sessions_free(&t);
}

TEST(csrf_compare)
{
	struct web_session s;
	char other[WEB_TOKEN_LEN + 1];

	memset(&s, 0, sizeof(s));
	EXPECT_FALSE(web_csrf_ok(&s, ""));	/* a session without a token accepts nothing */
	web_token_new(s.csrf);
	EXPECT_TRUE(web_csrf_ok(&s, s.csrf));
	EXPECT_FALSE(web_csrf_ok(&s, NULL));
	EXPECT_FALSE(web_csrf_ok(&s, ""));
	memcpy(other, s.csrf, sizeof(other));
	other[WEB_TOKEN_LEN - 1] ^= 1;
	EXPECT_FALSE(web_csrf_ok(&s, other));
	other[WEB_TOKEN_LEN - 1] ^= 1;
	EXPECT_TRUE(web_csrf_ok(&s, other));
	other[WEB_TOKEN_LEN - 1] = '\0';	/* a prefix */
	EXPECT_FALSE(web_csrf_ok(&s, other));
	EXPECT_FALSE(web_csrf_ok(NULL, s.csrf));
}

TEST(throttle)
{
	struct web_throttle t;
	const unsigned int burst = 3;
	const int64_t win = 300, t0 = 5000;

	ASSERT_EQ(0, web_throttle_init(&t, 4, burst, win));
	for (unsigned int i = 0; i < burst; i++) {
		EXPECT_TRUE(web_throttle_allowed(&t, "ip:192.0.2.1", t0 + i));
		web_throttle_failed(&t, "ip:192.0.2.1", t0 + i);
	}
	EXPECT_FALSE(web_throttle_allowed(&t, "ip:192.0.2.1", t0 + burst));
	EXPECT_FALSE(web_throttle_allowed(&t, "ip:192.0.2.1", t0 + win - 1));
	EXPECT_TRUE(web_throttle_allowed(&t, "ip:192.0.2.2", t0 + burst));	/* another key */
	EXPECT_TRUE(web_throttle_allowed(&t, "ip:192.0.2.1", t0 + win));	/* window over */
	/* A success resets the key. */
	web_throttle_failed(&t, "user:ann", t0);
	web_throttle_failed(&t, "user:ann", t0);
	web_throttle_reset(&t, "user:ann");
	for (unsigned int i = 0; i + 1 < burst; i++)
		web_throttle_failed(&t, "user:ann", t0);
	EXPECT_TRUE(web_throttle_allowed(&t, "user:ann", t0));
	web_throttle_failed(&t, "user:ann", t0);
	EXPECT_FALSE(web_throttle_allowed(&t, "user:ann", t0));
	/* A spray of new keys filling the table does not free the guessed one. */
	for (int i = 0; i < 20; i++) {
		char k[32];

		snprintf(k, sizeof(k), "ip:198.51.100.%d", i);
		web_throttle_failed(&t, k, t0 + 1);
	}
	EXPECT_FALSE(web_throttle_allowed(&t, "user:ann", t0 + 2));
	EXPECT_LE(t.n, t.cap);
	web_throttle_free(&t);
}

struct race {
	struct web_sessions *t;
	int64_t base;
	int ok;
};

static void *racer(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < 200; i++) {
		struct web_session s = who("racer", WEB_ROLE_GUEST, 0), got;
		char tok[WEB_TOKEN_LEN + 1];

		if (web_session_create(r->t, &s, r->base + i, tok) == 0 &&
		    web_session_get(r->t, tok, r->base + i, &got) == 0)
			r->ok++;
		web_session_end(r->t, tok);
	}
	return NULL;
}

TEST(sessions_from_threads)
{
	struct web_sessions t;
	pthread_t th[4];
	struct race r[4];
	int ok = 0;

	ASSERT_EQ(0, web_sessions_init(&t, 8, 0, 0));
	for (int i = 0; i < 4; i++) {
		r[i] = (struct race){ &t, 100, 0 };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, racer, &r[i]));
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ok += r[i].ok;
	}
	EXPECT_EQ(800, ok);
	EXPECT_EQ(0, t.n);
	web_sessions_free(&t);
}

TEST_HARNESS_MAIN
