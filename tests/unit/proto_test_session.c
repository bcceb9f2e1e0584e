// SPDX-License-Identifier: GPL-2.0
/*
 * gmproto session: both directions, and rejection of replayed, reordered,
 * forged, truncated, misaddressed and reflected envelopes.
 */
#include <string.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "gmproto.h"

FIXTURE(pair) {
	struct gmp_keypair town, meter, other;
	struct gmp_session m, t, o;
	struct gmp_addr up, down;
};

FIXTURE_SETUP(pair)
{
	ASSERT_LE(0, sodium_init());
	gmp_keypair_generate(&self->town);
	gmp_keypair_generate(&self->meter);
	gmp_keypair_generate(&self->other);
	ASSERT_EQ(0, gmp_session_meter(&self->m, &self->meter, self->town.pk));
	ASSERT_EQ(0, gmp_session_town(&self->t, &self->town, self->meter.pk));
	ASSERT_EQ(0, gmp_session_meter(&self->o, &self->other, self->town.pk));
	self->up = (struct gmp_addr){ .type = 1, .flags = 1, .src = 17, .dst = 0 };
	self->down = (struct gmp_addr){ .type = 2, .flags = 0, .src = 0, .dst = 17 };
}

FIXTURE_TEARDOWN(pair) {}

TEST_F(pair, both_directions_and_independent_keys)
{
	uint8_t env[128], plain[128];
	uint64_t ctr;
	int n;

	n = gmp_seal(&self->m, &self->up, (const uint8_t *)"reading", 7, env, sizeof(env));
	ASSERT_EQ(1 + 1 + 7 + GMP_TAG_LEN, n);
	EXPECT_EQ(GMP_VERSION, env[0]);
	EXPECT_EQ(1, env[1]);		/* counter 1, LEB128 */
	EXPECT_EQ(7, gmp_open(&self->t, &self->up, env, (size_t)n, plain, sizeof(plain), &ctr));
	EXPECT_EQ(0, memcmp(plain, "reading", 7));
	EXPECT_EQ(1, ctr);
	/* the ciphertext does not contain the plaintext */
	EXPECT_EQ(NULL, memmem(env, (size_t)n, "reading", 7));

	n = gmp_seal(&self->t, &self->down, (const uint8_t *)"ack", 3, env, sizeof(env));
	ASSERT_LT(0, n);
	EXPECT_EQ(3, gmp_open(&self->m, &self->down, env, (size_t)n, plain, sizeof(plain), &ctr));
	/* directions use different keys: the meter's own frame reflected back fails */
	n = gmp_seal(&self->m, &self->down, (const uint8_t *)"x", 1, env, sizeof(env));
	EXPECT_EQ(-GMP_E_AUTH, gmp_open(&self->m, &self->down, env, (size_t)n, plain,
					sizeof(plain), &ctr));
	/* another meter's key cannot speak for meter 17 */
	self->o.tx_ctr = 100;
	n = gmp_seal(&self->o, &self->up, (const uint8_t *)"x", 1, env, sizeof(env));
	EXPECT_EQ(-GMP_E_AUTH, gmp_open(&self->t, &self->up, env, (size_t)n, plain,
					sizeof(plain), &ctr));
	EXPECT_EQ(1, self->t.rx_ctr);
}

TEST_F(pair, replay_and_reorder_rejected)
{
	uint8_t e1[64], e2[64], e3[64], plain[64];
	int n1, n2, n3;

	n1 = gmp_seal(&self->m, &self->up, (const uint8_t *)"1", 1, e1, sizeof(e1));
	n2 = gmp_seal(&self->m, &self->up, (const uint8_t *)"2", 1, e2, sizeof(e2));
	n3 = gmp_seal(&self->m, &self->up, (const uint8_t *)"3", 1, e3, sizeof(e3));
	EXPECT_EQ(1, gmp_open(&self->t, &self->up, e1, (size_t)n1, plain, sizeof(plain), NULL));
	EXPECT_EQ(-GMP_E_REPLAY, gmp_open(&self->t, &self->up, e1, (size_t)n1, plain,
					  sizeof(plain), NULL));
	EXPECT_EQ(1, gmp_open(&self->t, &self->up, e3, (size_t)n3, plain, sizeof(plain), NULL));
	EXPECT_EQ('3', plain[0]);
	EXPECT_EQ(-GMP_E_REPLAY, gmp_open(&self->t, &self->up, e2, (size_t)n2, plain,
					  sizeof(plain), NULL));
	EXPECT_EQ(3, self->t.rx_ctr);
}

TEST_F(pair, every_bit_flip_and_truncation_rejected)
{
	uint8_t env[64], bad[64], plain[64];
	const uint64_t before = self->t.rx_ctr;
	int n = gmp_seal(&self->m, &self->up, (const uint8_t *)"0123456789", 10, env, sizeof(env));

	ASSERT_LT(0, n);
	for (int i = 0; i < n; i++)
		for (int b = 0; b < 8; b++) {
			int rc;

			memcpy(bad, env, (size_t)n);
			bad[i] ^= (uint8_t)(1 << b);
			rc = gmp_open(&self->t, &self->up, bad, (size_t)n, plain, sizeof(plain), NULL);
			EXPECT_GT(0, rc) TH_LOG("byte %d bit %d accepted", i, b);
		}
	for (int len = 0; len < n; len++)
		EXPECT_GT(0, gmp_open(&self->t, &self->up, env, (size_t)len, plain,
				      sizeof(plain), NULL));
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
	EXPECT_EQ(10, gmp_open(&self->t, &self->up, env, (size_t)n, plain, sizeof(plain), NULL));
}

TEST_F(pair, large_counters_and_canonical_encoding)
{
	uint8_t env[64], plain[64];
	int n;

	self->m.tx_ctr = UINT64_MAX - 2;
	n = gmp_seal(&self->m, &self->up, (const uint8_t *)"z", 1, env, sizeof(env));
	ASSERT_EQ(1 + 10 + 1 + GMP_TAG_LEN, n);
	EXPECT_EQ(1, gmp_open(&self->t, &self->up, env, (size_t)n, plain, sizeof(plain), NULL));
	EXPECT_EQ(UINT64_MAX - 1, self->t.rx_ctr);
	n = gmp_seal(&self->m, &self->up, (const uint8_t *)"z", 1, env, sizeof(env));
	ASSERT_LT(0, n);
	/* the counter never wraps to reuse a nonce */
	EXPECT_EQ(-GMP_E_RANGE, gmp_seal(&self->m, &self->up, (const uint8_t *)"z", 1, env,
					 sizeof(env)));

	/* an overlong counter encoding (0x81 0x00 = 1) is refused */
	struct gmp_session t2;
	uint8_t over[64];

	ASSERT_EQ(0, gmp_session_town(&t2, &self->town, self->meter.pk));
	self->m.tx_ctr = 0;
	n = gmp_seal(&self->m, &self->up, (const uint8_t *)"z", 1, env, sizeof(env));
	over[0] = env[0];
	over[1] = 0x81;
	over[2] = 0x00;
	memcpy(over + 3, env + 2, (size_t)n - 2);
	EXPECT_EQ(-GMP_E_AUTH, gmp_open(&t2, &self->up, over, (size_t)n + 1, plain,
					sizeof(plain), NULL));
	EXPECT_EQ(1, gmp_open(&t2, &self->up, env, (size_t)n, plain, sizeof(plain), NULL));
}

TEST_F(pair, short_buffer_consumes_no_counter)
{
	uint8_t env[GMP_PLAIN_MAX + GMP_ENV_OVERHEAD_MAX], plain[GMP_PLAIN_MAX];

	memset(plain, 0xa5, sizeof(plain));
	EXPECT_EQ(-GMP_E_SPACE, gmp_seal(&self->m, &self->up, plain, 10, env, 10));
	EXPECT_EQ(0, self->m.tx_ctr);
	EXPECT_EQ(-GMP_E_SPACE, gmp_seal(&self->m, &self->up, plain, GMP_PLAIN_MAX + 1, env,
					 sizeof(env)));
	int n = gmp_seal(&self->m, &self->up, plain, GMP_PLAIN_MAX, env, sizeof(env));

	ASSERT_LT(0, n);
	EXPECT_GE(496, n);
	EXPECT_EQ(GMP_PLAIN_MAX, gmp_open(&self->t, &self->up, env, (size_t)n, plain,
					  sizeof(plain), NULL));
}

TEST(bad_public_key_refused)
{
	struct gmp_keypair kp;
	struct gmp_session s;
	uint8_t zero[GMP_KEY_LEN] = { 0 };

	ASSERT_LE(0, sodium_init());
	gmp_keypair_generate(&kp);
	EXPECT_EQ(-GMP_E_KEY, gmp_session_meter(&s, &kp, zero));
	EXPECT_EQ(-GMP_E_KEY, gmp_session_town(&s, &kp, zero));
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
