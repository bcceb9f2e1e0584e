// SPDX-License-Identifier: GPL-2.0
/*
 * lib/sign: a signed command verifies only at its target, unchanged, in its
 * lifetime, signed by provisioned keys, by two operators where the policy
 * says so; every single-byte change of the wire form is refused; the replay
 * memory survives a save and load and forgets what expired.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "gmcmd.h"
#include "gmproto.h"
#include "seen.h"
#include "gm_harness.h"

struct op {
	uint8_t pk[GMC_PK_LEN], sk[GMC_SK_LEN];
};

static void ops(struct op *o, int n, struct gmc_keyset *ks)
{
	memset(ks, 0, sizeof(*ks));
	for (int i = 0; i < n; i++) {
		crypto_sign_keypair(o[i].pk, o[i].sk);
		memcpy(ks->k[i].pk, o[i].pk, GMC_PK_LEN);
		gmc_fingerprint(o[i].pk, ks->k[i].fpr);
		snprintf(ks->k[i].name, GMC_NAME_MAX, "op%d", i);
	}
	ks->n = (size_t)n;
}

static struct gmc_cmd cmd(int action, uint16_t meter, int64_t now)
{
	struct gmc_cmd c = { .action = (uint8_t)action, .town = 7, .meter = meter,
			     .issued = now, .expires = now + 900, .batch = 1 };

	randombytes_buf(&c.id, sizeof(c.id));
	c.id = (c.id & INT64_MAX) | 1;
	return c;
}

TEST(verifies_only_unchanged_at_its_target_in_its_lifetime)
{
	struct op o[3];
	struct gmc_keyset ks, other;
	struct gmc_policy pol = { .two_above = GMC_TWO_ABOVE };
	const int64_t now = 1790000000;
	struct gmc_cmd c = cmd(GMC_DISCONNECT, 42, now), d;
	uint8_t w[GMC_LEN_MAX];
	int len;

	ASSERT_EQ(0, sodium_init() < 0);
	ops(o, 3, &ks);
	ASSERT_EQ(0, gmc_sign(&c, o[0].sk));
	len = gmc_encode(&c, w, sizeof(w));
	ASSERT_EQ(GMC_BODY_LEN + 1 + GMC_FPR_LEN + GMC_SIG_LEN, len);
	ASSERT_EQ(0, gmc_decode(w, (size_t)len, &d));
	EXPECT_EQ(0, gmc_verify(&d, &ks, &pol, 7, 42, now));
	EXPECT_EQ(0, gmc_verify(&d, &ks, &pol, 7, 42, now + 899));
	EXPECT_EQ(GMP_CMD_EXPIRED, gmc_verify(&d, &ks, &pol, 7, 42, now + 900));
	EXPECT_EQ(0, gmc_verify(&d, &ks, &pol, 7, 42, now - GMC_SKEW_S));
	EXPECT_EQ(GMP_CMD_NOT_YET, gmc_verify(&d, &ks, &pol, 7, 42, now - GMC_SKEW_S - 1));
	EXPECT_EQ(GMP_CMD_WRONG_TARGET, gmc_verify(&d, &ks, &pol, 7, 43, now));
	EXPECT_EQ(GMP_CMD_WRONG_TARGET, gmc_verify(&d, &ks, &pol, 8, 42, now));
	/* a key the verifier does not hold */
	ops(o + 2, 1, &other);
	EXPECT_EQ(GMP_CMD_UNKNOWN_KEY, gmc_verify(&d, &other, &pol, 7, 42, now));
	/* every single-byte change of the wire form is refused */
	for (int i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			struct gmc_cmd e;
			int rc;

			w[i] ^= (uint8_t)(1 << bit);
			rc = gmc_decode(w, (size_t)len, &e) ? GMP_CMD_INVALID :
			     gmc_verify(&e, &ks, &pol, e.town, e.meter, now);
			w[i] ^= (uint8_t)(1 << bit);
			EXPECT_NE(0, rc) TH_LOG("byte %d bit %d accepted", i, bit);
		}
	}
	/* times and watts outside what gmproto carries: refused when decoded
	 * (a time near INT64_MIN made expires - issued overflow: seen by the
	 * fuzzer, sign_fuzz_decode) */
	{
		static const int offs[] = { 14, 22 };

		for (size_t k = 0; k < 2; k++) {
			uint8_t save = w[offs[k]];

			w[offs[k]] = 0x80;	/* the top byte: negative */
			EXPECT_EQ(-1, gmc_decode(w, (size_t)len, &d));
			w[offs[k]] = 0x01;	/* 2^56 s */
			EXPECT_EQ(-1, gmc_decode(w, (size_t)len, &d));
			w[offs[k]] = save;
		}
		ASSERT_EQ(0, gmc_decode(w, (size_t)len, &d));
	}
	/* truncated or extended */
	EXPECT_EQ(-1, gmc_decode(w, (size_t)len - 1, &d));
	EXPECT_EQ(-1, gmc_decode(w, (size_t)len + 1, &d));
	/* a lifetime above the maximum */
	c = cmd(GMC_DISCONNECT, 42, now);
	c.expires = now + GMC_LIFETIME_MAX + 1;
	ASSERT_EQ(0, gmc_sign(&c, o[0].sk));
	EXPECT_EQ(GMP_CMD_NOT_YET, gmc_verify(&c, &ks, &pol, 7, 42, now));
}

TEST(two_operators_where_the_policy_says_so)
{
	struct op o[2];
	struct gmc_keyset ks;
	struct gmc_policy pol = { .two_above = 10 };
	const int64_t now = 1790000000;
	struct gmc_cmd c;

	ASSERT_EQ(0, sodium_init() < 0);
	ops(o, 2, &ks);
	for (int a = 1; a <= GMC_ACTION_MAX; a++) {
		bool town = gmc_is_town_action(a);
		bool two = a == GMC_REKEY || a == GMC_TOWN_STOP;
		uint8_t w[GMC_LEN_MAX];

		c = cmd(a, town ? 0 : 42, now);
		ASSERT_EQ(0, gmc_sign(&c, o[0].sk));
		EXPECT_EQ(two ? GMP_CMD_NEED_TWO : 0,
			  gmc_verify(&c, &ks, &pol, 7, town ? 0 : 42, now)) TH_LOG("%s",
										gmc_action_name(a));
		/* the same operator cannot sign twice */
		EXPECT_EQ(-1, gmc_sign(&c, o[0].sk));
		ASSERT_EQ(0, gmc_sign(&c, o[1].sk));
		EXPECT_EQ(0, gmc_verify(&c, &ks, &pol, 7, town ? 0 : 42, now));
		EXPECT_EQ(-1, gmc_sign(&c, o[1].sk));	/* full */
		/* a duplicated signature slot is one operator, not two */
		c.sig[1] = c.sig[0];
		EXPECT_NE(0, gmc_verify(&c, &ks, &pol, 7, town ? 0 : 42, now));
		EXPECT_EQ(a, gmc_action_parse(gmc_action_name(a)));
		EXPECT_LT(0, gmc_encode(&c, w, sizeof(w)));
	}
	/* a batch of 10 needs one, of 11 two */
	c = cmd(GMC_DISCONNECT, 42, now);
	c.batch = 10;
	ASSERT_EQ(0, gmc_sign(&c, o[0].sk));
	EXPECT_EQ(0, gmc_verify(&c, &ks, &pol, 7, 42, now));
	c = cmd(GMC_DISCONNECT, 42, now);
	c.batch = 11;
	ASSERT_EQ(0, gmc_sign(&c, o[0].sk));
	EXPECT_EQ(GMP_CMD_NEED_TWO, gmc_verify(&c, &ks, &pol, 7, 42, now));
	/* a town action aimed at a meter, a meter action at the town: not encodable */
	c = cmd(GMC_TOWN_STOP, 42, now);
	EXPECT_EQ(-1, gmc_sign(&c, o[0].sk));
	c = cmd(GMC_DISCONNECT, 0, now);
	EXPECT_EQ(-1, gmc_sign(&c, o[0].sk));
}

TEST(random_bytes_never_crash_the_decoder)
{
	uint8_t b[GMC_LEN_MAX + 8];
	struct gmc_cmd c;
	unsigned int ok = 0;

	srandom(5);
	for (int it = 0; it < 100000; it++) {
		size_t len = (size_t)(random() % (int)sizeof(b));

		for (size_t i = 0; i < len; i++)
			b[i] = (uint8_t)random();
		if (len > 0 && random() % 2)
			b[0] = GMC_VERSION;
		if (len > GMC_BODY_LEN && random() % 2)
			b[GMC_BODY_LEN] = (uint8_t)(1 + random() % 2);
		ok += !gmc_decode(b, len, &c);
	}
	TH_LOG("%u random inputs decoded (and then fail verification)", ok);
}

TEST(key_files_name_file_and_line)
{
	struct gmc_keyset ks;
	char err[256], text[512], hex[2 * GMC_PK_LEN + 1];
	uint8_t pk[GMC_PK_LEN], sk[GMC_SK_LEN];
	char path[] = "/tmp/gmc-keyXXXXXX", name[GMC_NAME_MAX];
	int fd = mkstemp(path);

	ASSERT_EQ(0, sodium_init() < 0);
	ASSERT_LE(0, fd);
	close(fd);
	unlink(path);
	ASSERT_EQ(0, gmc_secret_create(path, "alice", pk, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, gmc_secret_load(path, name, sk, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_STREQ("alice", name);
	EXPECT_EQ(0, memcmp(pk, sk + 32, GMC_PK_LEN));
	EXPECT_EQ(-1, gmc_secret_create(path, "alice", pk, err, sizeof(err)));
	chmod(path, 0644);
	EXPECT_EQ(-1, gmc_secret_load(path, name, sk, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "chmod 600"));
	unlink(path);

	sodium_bin2hex(hex, sizeof(hex), pk, GMC_PK_LEN);
	snprintf(text, sizeof(text), "# operators\nalice %s\n\n  bob   %s  \n", hex, hex);
	EXPECT_EQ(-1, gmc_keyset_parse(&ks, text, "ops", err, sizeof(err)));
	EXPECT_STREQ("ops:4: this key is listed twice", err);
	snprintf(text, sizeof(text), "alice %s\nbob %.63s\n", hex, hex);
	EXPECT_EQ(-1, gmc_keyset_parse(&ks, text, "ops", err, sizeof(err)));
	EXPECT_STREQ("ops:2: the key must be 64 hex digits", err);
	snprintf(text, sizeof(text), "alice %s extra\n", hex);
	EXPECT_EQ(-1, gmc_keyset_parse(&ks, text, "ops", err, sizeof(err)));
	EXPECT_STREQ("ops:1: expected 'NAME HEX-KEY'", err);
	snprintf(text, sizeof(text), "al/ice %s\n", hex);
	EXPECT_EQ(-1, gmc_keyset_parse(&ks, text, "ops", err, sizeof(err)));
	snprintf(text, sizeof(text), "alice %s", hex);
	ASSERT_EQ(0, gmc_keyset_parse(&ks, text, "ops", err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(1, ks.n);
}

TEST(replay_memory_survives_a_restart_and_forgets_what_expired)
{
	static struct gmc_seen s, t;
	char dir[] = "/tmp/gmc-seenXXXXXX", path[64], err[256];
	FILE *f;

	ASSERT_NE(NULL, mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/seen", dir);
	ASSERT_EQ(0, gmc_seen_load(&s, path, err, sizeof(err)));	/* missing: empty */
	EXPECT_EQ(0, s.n);
	for (uint64_t id = 1; id <= 100; id++)
		ASSERT_EQ(0, gmc_seen_add(&s, id, 1000 + (int64_t)id, 0));
	ASSERT_EQ(0, gmc_seen_save(&s, path, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, gmc_seen_load(&t, path, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(100, t.n);
	EXPECT_TRUE(gmc_seen_has(&t, 50));
	gmc_seen_prune(&t, 1050);
	EXPECT_EQ(50, t.n);
	EXPECT_FALSE(gmc_seen_has(&t, 50));
	EXPECT_TRUE(gmc_seen_has(&t, 51));
	/* full of live ids: refused, not silently forgotten */
	memset(&s, 0, sizeof(s));
	for (uint64_t id = 1; id <= GMC_SEEN_MAX; id++)
		ASSERT_EQ(0, gmc_seen_add(&s, id, 5000, 0));
	EXPECT_EQ(-1, gmc_seen_add(&s, GMC_SEEN_MAX + 1, 5000, 0));
	EXPECT_EQ(0, gmc_seen_add(&s, GMC_SEEN_MAX + 1, 6000, 5000));	/* all expired */
	/* a damaged file is named with its line */
	f = fopen(path, "w");
	fputs("5 100\nbad\n", f);
	fclose(f);
	EXPECT_EQ(-1, gmc_seen_load(&t, path, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, ":2:"));
	unlink(path);
	rmdir(dir);
}

/*
 * A signature made elsewhere (the operator's browser signs gmc_signed_bytes
 * with WebCrypto) is attached only when it is that key's signature of these
 * very bytes: the same as gmc_sign would have made (Ed25519 is
 * deterministic), never a second one by the same key, never a third.
 */
TEST(signature_made_elsewhere_is_checked_before_it_is_added)
{
	struct op o[3];
	struct gmc_keyset ks;
	struct gmc_policy pol = { .two_above = GMC_TWO_ABOVE };
	const int64_t now = 1790000000;
	struct gmc_cmd c = cmd(GMC_REKEY, 9, now), ref = c, before, d;
	uint8_t m[sizeof(GMC_DOMAIN) + GMC_BODY_LEN], sig[3][GMC_SIG_LEN], w[GMC_LEN_MAX];
	size_t ml;
	int len;

	ASSERT_EQ(0, sodium_init() < 0);
	ops(o, 3, &ks);
	ml = gmc_signed_bytes(&c, m, sizeof(m));
	ASSERT_EQ(sizeof(GMC_DOMAIN) - 1 + GMC_BODY_LEN, ml);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, crypto_sign_detached(sig[i], NULL, m, ml, o[i].sk));
	/* op1's signature offered as op0's: refused, nothing added */
	EXPECT_EQ(GMP_CMD_BAD_SIG, gmc_add_signature(&c, o[0].pk, sig[1]));
	EXPECT_EQ(0, c.nsig);
	/* op0's own: added, byte for byte what gmc_sign makes */
	EXPECT_EQ(0, gmc_add_signature(&c, o[0].pk, sig[0]));
	ASSERT_EQ(0, gmc_sign(&ref, o[0].sk));
	EXPECT_EQ(0, memcmp(&ref.sig[0], &c.sig[0], sizeof(c.sig[0])));
	/* a rekey needs two: one is not enough at the meter */
	EXPECT_EQ(GMP_CMD_NEED_TWO, gmc_verify(&c, &ks, &pol, 7, 9, now));
	/* the same key again (even its valid signature) is no second operator */
	before = c;
	EXPECT_EQ(GMP_CMD_NEED_TWO, gmc_add_signature(&c, o[0].pk, sig[0]));
	EXPECT_EQ(0, memcmp(&before, &c, sizeof(c)));
	/* a signature of other bytes (the body changed by one bit) is refused */
	{
		struct gmc_cmd e = c;
		uint8_t em[sizeof(m)], esig[GMC_SIG_LEN];

		e.expires++;
		ASSERT_EQ(ml, gmc_signed_bytes(&e, em, sizeof(em)));
		ASSERT_EQ(0, crypto_sign_detached(esig, NULL, em, ml, o[1].sk));
		EXPECT_EQ(GMP_CMD_BAD_SIG, gmc_add_signature(&c, o[1].pk, esig));
		/* and a flipped bit in a good signature */
		memcpy(esig, sig[1], GMC_SIG_LEN);
		esig[17] ^= 4;
		EXPECT_EQ(GMP_CMD_BAD_SIG, gmc_add_signature(&c, o[1].pk, esig));
		EXPECT_EQ(1, c.nsig);
	}
	EXPECT_EQ(0, gmc_add_signature(&c, o[1].pk, sig[1]));
	EXPECT_EQ(0, gmc_verify(&c, &ks, &pol, 7, 9, now));
	/* no room for a third */
	EXPECT_EQ(GMP_CMD_INVALID, gmc_add_signature(&c, o[2].pk, sig[2]));
	EXPECT_EQ(2, c.nsig);
	/* the wire form carries both, and decodes to the same command */
	len = gmc_encode(&c, w, sizeof(w));
	ASSERT_LT(0, len);
	ASSERT_EQ(0, gmc_decode(w, (size_t)len, &d));
	EXPECT_EQ(0, memcmp(&c, &d, sizeof(c)));
	/* the body alone (what the browser is given after the domain) decodes unsigned */
	ASSERT_EQ(0, gmc_body_decode(m + sizeof(GMC_DOMAIN) - 1, GMC_BODY_LEN, &d));
	EXPECT_EQ(0, d.nsig);
	EXPECT_EQ(c.id, d.id);
	EXPECT_EQ(c.expires, d.expires);
	EXPECT_EQ(c.meter, d.meter);
	EXPECT_EQ(-1, gmc_body_decode(m + sizeof(GMC_DOMAIN) - 1, GMC_BODY_LEN - 1, &d));
	EXPECT_EQ(-1, gmc_body_decode(w, GMC_BODY_LEN + 1, &d));
	/* a body out of range (a meter's action addressed to meter 0) */
	{
		uint8_t b[GMC_BODY_LEN];

		memcpy(b, m + sizeof(GMC_DOMAIN) - 1, GMC_BODY_LEN);
		b[4] = b[5] = 0;
		EXPECT_EQ(-1, gmc_body_decode(b, GMC_BODY_LEN, &d));
	}
}

TEST_HARNESS_MAIN
