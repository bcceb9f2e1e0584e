// SPDX-License-Identifier: GPL-2.0
/*
 * gmproto version 2 envelopes: the handshake (long-term keys, random
 * nonces) and sessions derived from it; rejection of replayed, reordered,
 * forged, truncated, misaddressed, reflected, cross-session and version-1
 * envelopes; every bit flip of both kinds; padded lengths.
 */
#include <string.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "gmproto.h"

FIXTURE(pair) {
	struct gmp_keypair town, meter, other;
	struct gmp_lt lm, lt, lo;		/* meter's, town's (for meter), other meter's */
	struct gmp_session m, t;		/* one handshake's session, both ends */
	struct gmp_addr up, down;
	uint8_t rm[GMP_RAND_LEN], rt[GMP_RAND_LEN];
};

FIXTURE_SETUP(pair)
{
	ASSERT_LE(0, sodium_init());
	gmp_keypair_generate(&self->town);
	gmp_keypair_generate(&self->meter);
	gmp_keypair_generate(&self->other);
	ASSERT_EQ(0, gmp_lt_meter(&self->lm, &self->meter, self->town.pk));
	ASSERT_EQ(0, gmp_lt_town(&self->lt, &self->town, self->meter.pk));
	ASSERT_EQ(0, gmp_lt_meter(&self->lo, &self->other, self->town.pk));
	randombytes_buf(self->rm, sizeof(self->rm));
	randombytes_buf(self->rt, sizeof(self->rt));
	gmp_session_derive(&self->m, &self->lm, self->rm, self->rt, 7);
	gmp_session_derive(&self->t, &self->lt, self->rm, self->rt, 7);
	self->up = (struct gmp_addr){ .type = 1, .flags = 1, .src = 17, .dst = 0 };
	self->down = (struct gmp_addr){ .type = 2, .flags = 0, .src = 0, .dst = 17 };
}

FIXTURE_TEARDOWN(pair) {}

/* The whole handshake with real messages, then a session both ways. */
TEST_F(pair, handshake_then_session_both_ways)
{
	struct gmp_msg h = { .type = GMP_HELLO, .hello = { .now_ms = 1790000000000,
		.cmd_floor = 3, .next_seq = 100, .first_held = 90 } }, w, got;
	struct gmp_session ms, ts;
	uint8_t plain[GMP_HS_PLAIN_MAX], env[GMP_PAYLOAD_MAX], out[GMP_PAYLOAD_MAX];
	size_t n = 0, off = 0;
	int e, k;

	randombytes_buf(h.hello.rm, sizeof(h.hello.rm));
	ASSERT_EQ(0, gmp_encode(&h, plain, sizeof(plain), &n));
	e = gmp_hs_seal(&self->lm, &self->up, plain, n, env, sizeof(env));
	ASSERT_EQ((int)(gmp_pad_len(n) + GMP_HS_OVERHEAD), e);
	EXPECT_EQ(GMP_ENV_HANDSHAKE, env[0]);
	EXPECT_EQ(GMP_KIND_HANDSHAKE, gmp_envelope_kind(env, (size_t)e, NULL));
	k = gmp_hs_open(&self->lt, &self->up, env, (size_t)e, out, sizeof(out));
	ASSERT_EQ((int)gmp_pad_len(n), k);
	ASSERT_EQ(1, gmp_decode_next(out, (size_t)k, &off, &got));
	EXPECT_EQ(0, memcmp(&h, &got, sizeof(h)));
	EXPECT_EQ(0, gmp_decode_next(out, (size_t)k, &off, &got));
	/* a HELLO cannot be reflected: the meter's own key does not open it */
	EXPECT_EQ(-GMP_E_AUTH, gmp_hs_open(&self->lm, &self->up, env, (size_t)e, out,
					   sizeof(out)));

	memset(&w, 0, sizeof(w));
	w.type = GMP_WELCOME;
	memcpy(w.welcome.rm, got.hello.rm, GMP_RAND_LEN);
	randombytes_buf(w.welcome.rt, GMP_RAND_LEN);
	w.welcome.sid = 200;
	w.welcome.now_ms = 1790000000500;
	w.welcome.upto = 99;
	w.welcome.cmd_next = 4;
	n = 0;
	ASSERT_EQ(0, gmp_encode(&w, plain, sizeof(plain), &n));
	e = gmp_hs_seal(&self->lt, &self->down, plain, n, env, sizeof(env));
	ASSERT_LT(0, e);
	k = gmp_hs_open(&self->lm, &self->down, env, (size_t)e, out, sizeof(out));
	ASSERT_LT(0, k);
	off = 0;
	ASSERT_EQ(1, gmp_decode_next(out, (size_t)k, &off, &got));
	EXPECT_EQ(0, memcmp(&w, &got, sizeof(w)));

	gmp_session_derive(&ms, &self->lm, h.hello.rm, got.welcome.rt, 200);
	gmp_session_derive(&ts, &self->lt, h.hello.rm, w.welcome.rt, 200);
	EXPECT_EQ(0, memcmp(ms.tx_key, ts.rx_key, GMP_KEY_LEN));
	EXPECT_EQ(0, memcmp(ms.rx_key, ts.tx_key, GMP_KEY_LEN));
	EXPECT_NE(0, memcmp(ms.tx_key, ms.rx_key, GMP_KEY_LEN));
	/* session keys are not the long-term keys */
	EXPECT_NE(0, memcmp(ms.tx_key, self->lm.tx, GMP_KEY_LEN));

	e = gmp_seal(&ms, &self->up, (const uint8_t *)"reading", 7, env, sizeof(env));
	ASSERT_EQ(2 + 1 + 16 + GMP_TAG_LEN, e);
	EXPECT_EQ(GMP_ENV_SESSION, env[0]);
	EXPECT_EQ(200, env[1]);
	EXPECT_EQ(1, env[2]);		/* counter 1, LEB128 */
	k = gmp_open(&ts, &self->up, env, (size_t)e, out, sizeof(out), NULL);
	ASSERT_EQ(16, k);
	EXPECT_EQ(0, memcmp(out, "reading\0\0\0\0\0\0\0\0\0", 16));
	EXPECT_EQ(NULL, memmem(env, (size_t)e, "reading", 7));
	e = gmp_seal(&ts, &self->down, (const uint8_t *)"ack", 3, env, sizeof(env));
	EXPECT_EQ(16, gmp_open(&ms, &self->down, env, (size_t)e, out, sizeof(out), NULL));
	/* directions use different keys: the meter's own frame reflected back fails */
	e = gmp_seal(&ms, &self->down, (const uint8_t *)"x", 1, env, sizeof(env));
	EXPECT_EQ(-GMP_E_AUTH, gmp_open(&ms, &self->down, env, (size_t)e, out, sizeof(out),
					NULL));
}

/*
 * The same HELLO answered twice (a replay, or a town restored from a
 * backup): the town's fresh random makes new keys, so no frame of one
 * session opens in the other, even with the same session id and counter.
 */
TEST_F(pair, replays_across_sessions_rejected)
{
	uint8_t rt2[GMP_RAND_LEN], env[64], plain[64];
	struct gmp_session m2, t2;
	int e;

	randombytes_buf(rt2, sizeof(rt2));
	gmp_session_derive(&m2, &self->lm, self->rm, rt2, 7);
	gmp_session_derive(&t2, &self->lt, self->rm, rt2, 7);
	EXPECT_NE(0, memcmp(m2.tx_key, self->m.tx_key, GMP_KEY_LEN));
	EXPECT_NE(0, memcmp(m2.rx_key, self->m.rx_key, GMP_KEY_LEN));
	e = gmp_seal(&self->m, &self->up, (const uint8_t *)"old", 3, env, sizeof(env));
	ASSERT_LT(0, e);
	EXPECT_EQ(-GMP_E_AUTH, gmp_open(&t2, &self->up, env, (size_t)e, plain, sizeof(plain),
					NULL));
	e = gmp_seal(&self->t, &self->down, (const uint8_t *)"ack", 3, env, sizeof(env));
	EXPECT_EQ(-GMP_E_AUTH, gmp_open(&m2, &self->down, env, (size_t)e, plain,
					sizeof(plain), NULL));
	/* another session id: refused before any crypto */
	gmp_session_derive(&t2, &self->lt, self->rm, self->rt, 8);
	EXPECT_EQ(-GMP_E_SESSION, gmp_open(&t2, &self->up, env, (size_t)e, plain,
					   sizeof(plain), NULL));
	/* no session at all */
	memset(&t2, 0, sizeof(t2));
	EXPECT_EQ(-GMP_E_SESSION, gmp_open(&t2, &self->up, env, (size_t)e, plain,
					   sizeof(plain), NULL));
	EXPECT_EQ(-GMP_E_SESSION, gmp_seal(&t2, &self->up, plain, 1, env, sizeof(env)));
	EXPECT_EQ(0, t2.tx_ctr);
}

TEST_F(pair, replay_and_reorder_rejected)
{
	uint8_t e1[64], e2[64], e3[64], plain[64];
	int n1, n2, n3;

	n1 = gmp_seal(&self->m, &self->up, (const uint8_t *)"1", 1, e1, sizeof(e1));
	n2 = gmp_seal(&self->m, &self->up, (const uint8_t *)"2", 1, e2, sizeof(e2));
	n3 = gmp_seal(&self->m, &self->up, (const uint8_t *)"3", 1, e3, sizeof(e3));
	EXPECT_EQ(16, gmp_open(&self->t, &self->up, e1, (size_t)n1, plain, sizeof(plain), NULL));
	EXPECT_EQ(-GMP_E_REPLAY, gmp_open(&self->t, &self->up, e1, (size_t)n1, plain,
					  sizeof(plain), NULL));
	EXPECT_EQ(16, gmp_open(&self->t, &self->up, e3, (size_t)n3, plain, sizeof(plain), NULL));
	EXPECT_EQ('3', plain[0]);
	EXPECT_EQ(-GMP_E_REPLAY, gmp_open(&self->t, &self->up, e2, (size_t)n2, plain,
					  sizeof(plain), NULL));
	EXPECT_EQ(3, self->t.rx_ctr);
}

/* Flip every bit of an envelope, truncate it everywhere: nothing opens. */
static void flip_all(struct __test_metadata *_metadata, const uint8_t *env, int n,
		     int (*open)(void *ctx, const uint8_t *env, size_t len), void *ctx)
{
	uint8_t bad[GMP_PAYLOAD_MAX];

	for (int i = 0; i < n; i++) {
		for (int b = 0; b < 8; b++) {
			memcpy(bad, env, (size_t)n);
			bad[i] ^= (uint8_t)(1 << b);
			EXPECT_GT(0, open(ctx, bad, (size_t)n)) TH_LOG("byte %d bit %d accepted", i, b);
		}
	}
	for (int len = 0; len < n; len++) {
		EXPECT_GT(0, open(ctx, env, (size_t)len)) TH_LOG("truncated to %d accepted", len);
	}
}

struct open_ctx {
	struct gmp_session *s;
	const struct gmp_lt *k;
	const struct gmp_addr *a;
};

static int open_session(void *ctx, const uint8_t *env, size_t len)
{
	struct open_ctx *o = ctx;
	uint8_t plain[GMP_PAYLOAD_MAX];

	return gmp_open(o->s, o->a, env, len, plain, sizeof(plain), NULL);
}

static int open_hs(void *ctx, const uint8_t *env, size_t len)
{
	struct open_ctx *o = ctx;
	uint8_t plain[GMP_PAYLOAD_MAX];

	return gmp_hs_open(o->k, o->a, env, len, plain, sizeof(plain));
}

TEST_F(pair, every_bit_flip_and_truncation_rejected)
{
	uint8_t env[GMP_PAYLOAD_MAX], plain[GMP_PAYLOAD_MAX];
	struct open_ctx so = { &self->t, NULL, &self->up }, ho = { NULL, &self->lt, &self->up };
	const uint64_t before = self->t.rx_ctr;
	int n;

	/* a two-byte counter, so that its continuation bit is flipped too */
	self->m.tx_ctr = 299;
	n = gmp_seal(&self->m, &self->up, (const uint8_t *)"0123456789", 10, env, sizeof(env));
	ASSERT_LT(0, n);
	flip_all(_metadata, env, n, open_session, &so);
	EXPECT_EQ(before, self->t.rx_ctr);
	/* header fields in the associated data */
	struct gmp_addr a = self->up;

	a.src = 18;
	EXPECT_EQ(-GMP_E_AUTH, gmp_open(&self->t, &a, env, (size_t)n, plain, sizeof(plain), NULL));
	a = self->up;
	a.dst = 5;
	EXPECT_EQ(-GMP_E_AUTH, gmp_open(&self->t, &a, env, (size_t)n, plain, sizeof(plain), NULL));
	a = self->up;
	a.type = 3;
	EXPECT_EQ(-GMP_E_AUTH, gmp_open(&self->t, &a, env, (size_t)n, plain, sizeof(plain), NULL));
	a = self->up;
	a.flags = 0;
	EXPECT_EQ(-GMP_E_AUTH, gmp_open(&self->t, &a, env, (size_t)n, plain, sizeof(plain), NULL));
	/* untouched, it still opens */
	EXPECT_EQ(16, gmp_open(&self->t, &self->up, env, (size_t)n, plain, sizeof(plain), NULL));

	n = gmp_hs_seal(&self->lm, &self->up, (const uint8_t *)"hello", 5, env, sizeof(env));
	ASSERT_EQ(16 + GMP_HS_OVERHEAD, n);
	flip_all(_metadata, env, n, open_hs, &ho);
	a = self->up;
	a.src = 18;
	EXPECT_EQ(-GMP_E_AUTH, gmp_hs_open(&self->lt, &a, env, (size_t)n, plain, sizeof(plain)));
	EXPECT_EQ(16, gmp_hs_open(&self->lt, &self->up, env, (size_t)n, plain, sizeof(plain)));
	/* another meter's long-term key cannot speak for meter 17 */
	n = gmp_hs_seal(&self->lo, &self->up, (const uint8_t *)"hello", 5, env, sizeof(env));
	EXPECT_EQ(-GMP_E_AUTH, gmp_hs_open(&self->lt, &self->up, env, (size_t)n, plain,
					   sizeof(plain)));
}

TEST_F(pair, kinds_and_versions)
{
	uint8_t env[GMP_PAYLOAD_MAX], plain[GMP_PAYLOAD_MAX], v1[64], nonce[GMP_NONCE_LEN];
	uint8_t sid = 0;
	int n, h;

	n = gmp_seal(&self->m, &self->up, (const uint8_t *)"x", 1, env, sizeof(env));
	EXPECT_EQ(GMP_KIND_SESSION, gmp_envelope_kind(env, (size_t)n, &sid));
	EXPECT_EQ(7, sid);
	EXPECT_EQ(-GMP_E_KIND, gmp_hs_open(&self->lt, &self->up, env, (size_t)n, plain,
					   sizeof(plain)));
	EXPECT_EQ(GMP_KIND_SESSION, gmp_envelope_nonce(env, (size_t)n, nonce));
	EXPECT_EQ(1, nonce[0]);
	for (int i = 1; i < GMP_NONCE_LEN; i++)
		EXPECT_EQ(0, nonce[i]);
	h = gmp_hs_seal(&self->lm, &self->up, (const uint8_t *)"x", 1, v1, sizeof(v1));
	EXPECT_EQ(-GMP_E_KIND, gmp_open(&self->t, &self->up, v1, (size_t)h, plain,
					sizeof(plain), NULL));
	EXPECT_EQ(GMP_KIND_HANDSHAKE, gmp_envelope_nonce(v1, (size_t)h, nonce));
	EXPECT_EQ(0, memcmp(nonce, v1 + 1, GMP_NONCE_LEN));
	/* a version-1 envelope: version byte 1, counter, ciphertext, tag */
	memset(v1, 0x5a, sizeof(v1));
	v1[0] = 1;
	v1[1] = 5;
	EXPECT_EQ(-GMP_E_VERSION, gmp_envelope_kind(v1, 40, NULL));
	EXPECT_EQ(-GMP_E_VERSION, gmp_open(&self->t, &self->up, v1, 40, plain, sizeof(plain),
					   NULL));
	EXPECT_EQ(-GMP_E_VERSION, gmp_hs_open(&self->lt, &self->up, v1, 40, plain,
					      sizeof(plain)));
	EXPECT_EQ(-GMP_E_SHORT, gmp_envelope_kind(v1, 0, NULL));
	v1[0] = GMP_ENV_SESSION;
	EXPECT_EQ(-GMP_E_SHORT, gmp_envelope_kind(v1, 1, NULL));
}

/* Handshake nonces are random: the same plaintext never gives the same envelope. */
TEST_F(pair, handshake_nonces_are_fresh)
{
	uint8_t a[64], b[64], plain[64];
	int na = gmp_hs_seal(&self->lm, &self->up, (const uint8_t *)"same", 4, a, sizeof(a));
	int nb = gmp_hs_seal(&self->lm, &self->up, (const uint8_t *)"same", 4, b, sizeof(b));

	ASSERT_EQ(na, nb);
	EXPECT_NE(0, memcmp(a + 1, b + 1, GMP_NONCE_LEN));
	EXPECT_NE(0, memcmp(a, b, (size_t)na));
	/* replayable by design: the handshake makes that harmless */
	EXPECT_EQ(16, gmp_hs_open(&self->lt, &self->up, a, (size_t)na, plain, sizeof(plain)));
	EXPECT_EQ(16, gmp_hs_open(&self->lt, &self->up, a, (size_t)na, plain, sizeof(plain)));
}

TEST_F(pair, large_counters_and_canonical_encoding)
{
	uint8_t env[64], plain[64];
	int n;

	self->m.tx_ctr = UINT64_MAX - 2;
	n = gmp_seal(&self->m, &self->up, (const uint8_t *)"z", 1, env, sizeof(env));
	ASSERT_EQ(2 + 10 + 16 + GMP_TAG_LEN, n);
	EXPECT_EQ(16, gmp_open(&self->t, &self->up, env, (size_t)n, plain, sizeof(plain), NULL));
	EXPECT_EQ(UINT64_MAX - 1, self->t.rx_ctr);
	n = gmp_seal(&self->m, &self->up, (const uint8_t *)"z", 1, env, sizeof(env));
	ASSERT_LT(0, n);
	/* the counter never wraps to reuse a nonce */
	EXPECT_EQ(-GMP_E_RANGE, gmp_seal(&self->m, &self->up, (const uint8_t *)"z", 1, env,
					 sizeof(env)));

	/* an overlong counter encoding (0x81 0x00 = 1) is refused */
	struct gmp_session t2 = self->t;
	uint8_t over[64];

	t2.rx_ctr = 0;
	self->m.tx_ctr = 0;
	n = gmp_seal(&self->m, &self->up, (const uint8_t *)"z", 1, env, sizeof(env));
	memcpy(over, env, 2);
	over[2] = 0x81;
	over[3] = 0x00;
	memcpy(over + 4, env + 3, (size_t)n - 3);
	EXPECT_EQ(-GMP_E_AUTH, gmp_open(&t2, &self->up, over, (size_t)n + 1, plain,
					sizeof(plain), NULL));
	EXPECT_EQ(16, gmp_open(&t2, &self->up, env, (size_t)n, plain, sizeof(plain), NULL));
}

TEST_F(pair, padded_lengths_and_short_buffers)
{
	uint8_t env[GMP_PAYLOAD_MAX], plain[GMP_PAYLOAD_MAX];

	memset(plain, 0xa5, sizeof(plain));
	EXPECT_EQ(-GMP_E_SPACE, gmp_seal(&self->m, &self->up, plain, 10, env, 10));
	EXPECT_EQ(0, self->m.tx_ctr);
	EXPECT_EQ(-GMP_E_SPACE, gmp_seal(&self->m, &self->up, plain, GMP_PLAIN_MAX + 1, env,
					 sizeof(env)));
	EXPECT_EQ(-GMP_E_SPACE, gmp_hs_seal(&self->lm, &self->up, plain, GMP_HS_PLAIN_MAX + 1,
					    env, sizeof(env)));
	EXPECT_EQ(0, self->m.tx_ctr);
	/* every plaintext length: the envelope grows in steps of 16 only */
	for (size_t len = 0; len <= GMP_PLAIN_MAX; len++) {
		int n = gmp_seal(&self->m, &self->up, plain, len, env, sizeof(env));
		size_t ctr_len = self->m.tx_ctr < 128 ? 1 : 2;

		ASSERT_EQ((int)(2 + ctr_len + gmp_pad_len(len) + GMP_TAG_LEN), n);
		ASSERT_GE(GMP_PAYLOAD_MAX, n);
		ASSERT_EQ((int)gmp_pad_len(len), gmp_open(&self->t, &self->up, env, (size_t)n,
							  plain + 0, sizeof(plain), NULL));
		memset(plain, 0xa5, sizeof(plain));
	}
	for (size_t len = 0; len <= GMP_HS_PLAIN_MAX; len += 7) {
		int n = gmp_hs_seal(&self->lm, &self->up, plain, len, env, sizeof(env));

		ASSERT_EQ((int)(gmp_pad_len(len) + GMP_HS_OVERHEAD), n);
		ASSERT_GE(GMP_PAYLOAD_MAX, n);
	}
}

TEST(bad_public_key_refused)
{
	struct gmp_keypair kp;
	struct gmp_lt k;
	uint8_t zero[GMP_KEY_LEN] = { 0 };

	ASSERT_LE(0, sodium_init());
	gmp_keypair_generate(&kp);
	EXPECT_EQ(-GMP_E_KEY, gmp_lt_meter(&k, &kp, zero));
	EXPECT_EQ(-GMP_E_KEY, gmp_lt_town(&k, &kp, zero));
}

TEST(hex)
{
	uint8_t b[4], in[4] = { 0x00, 0x9f, 0xa0, 0xff };
	char h[9];

	gmp_hex_encode(in, 4, h);
	EXPECT_STREQ("009fa0ff", h);
	EXPECT_EQ(0, gmp_hex_decode("009FA0ff", b, 4));
	EXPECT_EQ(0, memcmp(in, b, 4));
	EXPECT_EQ(-1, gmp_hex_decode("009fa0f", b, 4));
	EXPECT_EQ(-1, gmp_hex_decode("009fa0ff0", b, 4));
	EXPECT_EQ(-1, gmp_hex_decode("009fa0fg", b, 4));
}

TEST_HARNESS_MAIN
