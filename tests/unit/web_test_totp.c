// SPDX-License-Identifier: GPL-2.0
/*
 * TOTP for operators (lib/web/totp.c): the published vectors of RFC 4226
 * (Appendix D) and RFC 6238 (Appendix B, SHA-1), base32 against RFC 4648
 * section 10, the drift window, replay refusal and the otpauth URI.
 */
#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "gm_harness.h"
#include "totp.h"

static const uint8_t rfc_key[] = "12345678901234567890";	/* both RFCs' SHA-1 secret */

TEST(rfc4226_appendix_d)
{
	static const uint32_t hotp[10] = {
		755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
	};

	for (uint64_t c = 0; c < 10; c++) {
		EXPECT_EQ(hotp[c], totp_hotp(rfc_key, 20, c, 6));
	}
}

TEST(rfc6238_appendix_b_sha1)
{
	static const struct {
		int64_t t;
		uint32_t code;
	} v[] = {
		{ 59, 94287082 }, { 1111111109, 7081804 }, { 1111111111, 14050471 },
		{ 1234567890, 89005924 }, { 2000000000, 69279037 }, { 20000000000, 65353130 },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		EXPECT_EQ(v[i].code, totp_hotp(rfc_key, 20, (uint64_t)(v[i].t / 30), 8))
			TH_LOG("t=%lld", (long long)v[i].t);
		/* The 6-digit code is the same truncation modulo 10^6. */
		EXPECT_EQ(v[i].code % 1000000, totp_code(rfc_key, 20, v[i].t));
	}
}

TEST(base32_rfc4648)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const enc[] = { "", "MY", "MZXQ", "MZXW6", "MZXW6YQ", "MZXW6YTB",
					   "MZXW6YTBOI" };
	char out[64];
	uint8_t back[64];

	for (size_t i = 0; i < 7; i++) {
		size_t n = strlen(plain[i]);

		EXPECT_EQ((int)strlen(enc[i]), totp_b32_encode((const uint8_t *)plain[i], n, out,
								 sizeof(out)));
		EXPECT_STREQ(enc[i], out);
		EXPECT_EQ((int)n, totp_b32_decode(enc[i], back, sizeof(back)));
		EXPECT_EQ(0, memcmp(back, plain[i], n));
	}
	/* Lower case, spaces and padding are accepted when typed. */
	EXPECT_EQ(6, totp_b32_decode("mzxw 6ytb oi======", back, sizeof(back)));
	EXPECT_EQ(0, memcmp(back, "foobar", 6));
	EXPECT_EQ(-1, totp_b32_decode("MZXW1", back, sizeof(back)));	/* 1 is not base32 */
	EXPECT_EQ(-1, totp_b32_decode("MZXW6YTBOI", back, 3));		/* too small */
	EXPECT_EQ(-1, totp_b32_encode((const uint8_t *)"foobar", 6, out, 10));
}

TEST(base32_round_trip_of_secrets)
{
	uint8_t key[TOTP_SECRET_LEN], back[TOTP_SECRET_LEN];
	char b32[TOTP_B32_LEN + 1];

	ASSERT_LE(0, sodium_init());
	for (int i = 0; i < 200; i++) {
		randombytes_buf(key, sizeof(key));
		ASSERT_EQ(TOTP_B32_LEN, totp_b32_encode(key, sizeof(key), b32, sizeof(b32)));
		ASSERT_EQ(TOTP_SECRET_LEN, totp_b32_decode(b32, back, sizeof(back)));
		ASSERT_EQ(0, memcmp(key, back, sizeof(key)));
	}
}

static void code_text(char *out, size_t size, uint32_t code)
{
	snprintf(out, size, "%06u", code);
}

TEST(drift_window_and_replay)
{
	uint8_t key[TOTP_SECRET_LEN];
	int64_t t = 1760000000 + 7;	/* inside a step */
	int64_t step = t / 30, last = 0;
	char code[16];

	ASSERT_LE(0, sodium_init());
	randombytes_buf(key, sizeof(key));

	/* The previous, current and next step are accepted... */
	for (int d = -1; d <= 1; d++) {
		last = 0;
		code_text(code, sizeof(code), totp_hotp(key, sizeof(key), (uint64_t)(step + d), 6));
		EXPECT_TRUE(totp_check(key, sizeof(key), code, t, &last)) TH_LOG("drift %d", d);
		EXPECT_EQ(step + d, last);
	}
	/* ...two steps away are not (unless the code happens to repeat). */
	for (int d = -3; d <= 3; d += 6) {
		uint32_t c = totp_hotp(key, sizeof(key), (uint64_t)(step + d), 6);
		bool collides = false;

		for (int k = -1; k <= 1; k++)
			collides |= c == totp_hotp(key, sizeof(key), (uint64_t)(step + k), 6);
		last = 0;
		code_text(code, sizeof(code), c);
		EXPECT_EQ(collides, totp_check(key, sizeof(key), code, t, &last));
	}

	/* A code used once is refused the second time, and so are older steps. */
	last = 0;
	code_text(code, sizeof(code), totp_code(key, sizeof(key), t));
	EXPECT_TRUE(totp_check(key, sizeof(key), code, t, &last));
	EXPECT_EQ(step, last);
	EXPECT_FALSE(totp_check(key, sizeof(key), code, t, &last));
	EXPECT_FALSE(totp_check(key, sizeof(key), code, t + 29, &last));
	code_text(code, sizeof(code), totp_hotp(key, sizeof(key), (uint64_t)(step - 1), 6));
	if (totp_hotp(key, sizeof(key), (uint64_t)(step - 1), 6) !=
	    totp_hotp(key, sizeof(key), (uint64_t)(step + 1), 6))
		EXPECT_FALSE(totp_check(key, sizeof(key), code, t, &last));
	/* The next step's code still works once. */
	code_text(code, sizeof(code), totp_hotp(key, sizeof(key), (uint64_t)(step + 1), 6));
	EXPECT_TRUE(totp_check(key, sizeof(key), code, t + 30, &last));
	EXPECT_EQ(step + 1, last);
}

TEST(typed_forms)
{
	uint8_t key[TOTP_SECRET_LEN];
	int64_t t = 1800000000, last = 0;
	uint32_t c;
	char code[32];

	ASSERT_LE(0, sodium_init());
	randombytes_buf(key, sizeof(key));
	c = totp_code(key, sizeof(key), t);
	snprintf(code, sizeof(code), "%03u %03u", c / 1000, c % 1000);
	EXPECT_TRUE(totp_check(key, sizeof(key), code, t, &last));
	last = 0;
	snprintf(code, sizeof(code), "%06u0", c);	/* seven digits */
	EXPECT_FALSE(totp_check(key, sizeof(key), code, t, &last));
	snprintf(code, sizeof(code), "%05u", c % 100000);	/* five */
	EXPECT_FALSE(totp_check(key, sizeof(key), code, t, &last));
	EXPECT_FALSE(totp_check(key, sizeof(key), "12a456", t, &last));
	EXPECT_FALSE(totp_check(key, sizeof(key), "", t, &last));
	EXPECT_FALSE(totp_check(key, sizeof(key), NULL, t, &last));
}

TEST(otpauth_uri)
{
	char uri[256], small[40];

	ASSERT_EQ(0, totp_uri("gridmeter utility", "ann@example.org", "JBSWY3DPEHPK3PXP", uri,
			      sizeof(uri)));
	EXPECT_STREQ("otpauth://totp/gridmeter%20utility:ann%40example.org?secret=JBSWY3DPEHPK3PXP"
		     "&issuer=gridmeter%20utility&algorithm=SHA1&digits=6&period=30", uri);
	EXPECT_EQ(-1, totp_uri("gridmeter utility", "ann", "JBSWY3DPEHPK3PXP", small,
			       sizeof(small)));
	ASSERT_EQ(0, totp_uri("a:b&c", "x?y", "A", uri, sizeof(uri)));
	EXPECT_NE(NULL, strstr(uri, "totp/a%3Ab%26c:x%3Fy?"));
}

TEST_HARNESS_MAIN
