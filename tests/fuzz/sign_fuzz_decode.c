// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for lib/sign: any bytes as a signed command (decoded,
 * then verified against a fixed key set: nothing random may verify) and as
 * an operator key set file (parsed; errors name a line inside the input).
 * A seed corpus comes from tests/fuzz/run.sh (a command signed by a fixed
 * key, once and twice).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gmcmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t seed1[32] = { 1 }, seed2[32] = { 2 };

static void keys(struct gmc_keyset *ks, uint8_t sk[2][GMC_SK_LEN])
{
	const uint8_t *seeds[2] = { seed1, seed2 };

	memset(ks, 0, sizeof(*ks));
	for (int i = 0; i < 2; i++) {
		crypto_sign_seed_keypair(ks->k[i].pk, sk[i], seeds[i]);
		gmc_fingerprint(ks->k[i].pk, ks->k[i].fpr);
		snprintf(ks->k[i].name, GMC_NAME_MAX, "op%d", i);
	}
	ks->n = 2;
}

#ifdef GM_FUZZ_SEEDS
int main(int argc, char **argv)
{
	struct gmc_keyset ks;
	uint8_t sk[2][GMC_SK_LEN], w[GMC_LEN_MAX];
	struct gmc_cmd c = { .action = GMC_DISCONNECT, .town = 7, .meter = 42, .id = 99,
			     .issued = 1790000000, .expires = 1790000900, .batch = 1 };
	char path[4096];

	if (argc != 2 || sodium_init() < 0)
		return 2;
	keys(&ks, sk);
	for (int n = 1; n <= 2; n++) {
		FILE *f;
		int len;

		if (gmc_sign(&c, sk[n - 1]))
			return 1;
		len = gmc_encode(&c, w, sizeof(w));
		snprintf(path, sizeof(path), "%s/signed-%d", argv[1], n);
		f = fopen(path, "wb");
		if (!f || len < 0 || fwrite(w, 1, (size_t)len, f) != (size_t)len || fclose(f))
			return 1;
	}
	return 0;
}
#else
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gmc_keyset ks;
	static uint8_t sk[2][GMC_SK_LEN];
	static int ready;
	struct gmc_cmd c;
	struct gmc_keyset parsed;
	char *text, err[256];

	if (!ready) {
		if (sodium_init() < 0)
			abort();
		keys(&ks, sk);
		ready = 1;
	}
	if (!gmc_decode(data, size, &c)) {
		struct gmc_policy p = { GMC_TWO_ABOVE };
		uint8_t re[GMC_LEN_MAX];
		char who[80];

		/* what decodes encodes back to the same bytes */
		if (gmc_encode(&c, re, sizeof(re)) != (int)size || memcmp(re, data, size))
			abort();
		gmc_signers(&c, &ks, who, sizeof(who));
		(void)gmc_verify(&c, &ks, &p, c.town, c.meter, c.issued);
	}
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (gmc_keyset_parse(&parsed, text, "fuzz", err, sizeof(err)) == 0 &&
	    parsed.n > GMC_KEYS_MAX)
		abort();
	free(text);
	return 0;
}
#endif
