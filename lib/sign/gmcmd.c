// SPDX-License-Identifier: GPL-2.0
/* Operator-signed commands: wire form, signatures, verification (gmcmd.h). */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "gmcmd.h"
#include "gmproto.h"

static const char *const action_names[GMC_ACTION_MAX + 1] = {
	[GMC_DISCONNECT] = "disconnect", [GMC_RECONNECT] = "reconnect",
	[GMC_REKEY] = "rekey", [GMC_TOWN_STOP] = "town-stop",
	[GMC_TOWN_START] = "town-start", [GMC_TOWN_SUPPLY] = "town-supply",
};

const char *gmc_action_name(int action)
{
	return action >= 1 && action <= GMC_ACTION_MAX ? action_names[action] : "unknown";
}

int gmc_action_parse(const char *name)
{
	for (int a = 1; a <= GMC_ACTION_MAX; a++)
		if (!strcmp(name, action_names[a]))
			return a;
	return -1;
}

bool gmc_is_town_action(int action)
{
	return action == GMC_TOWN_STOP || action == GMC_TOWN_START || action == GMC_TOWN_SUPPLY;
}

void gmc_fingerprint(const uint8_t pk[GMC_PK_LEN], uint8_t fpr[GMC_FPR_LEN])
{
	crypto_generichash(fpr, GMC_FPR_LEN, pk, GMC_PK_LEN, NULL, 0);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* UTC seconds and watts a command may carry (gmproto's limits): with
 * them no difference of two times can overflow. */
#define GMC_TIME_MAX	((int64_t)1 << 40)
#define GMC_ARG_MAX	((int64_t)1 << 40)

/* The fields' own ranges (everything a body must satisfy to be encoded). */
static bool fields_ok(const struct gmc_cmd *c)
{
	return c->issued >= 0 && c->issued <= GMC_TIME_MAX && c->expires >= 0 &&
	       c->expires <= GMC_TIME_MAX && c->arg <= GMC_ARG_MAX &&
	       c->action >= 1 && c->action <= GMC_ACTION_MAX && c->town >= 1 &&
	       c->town <= 65534 && c->id >= 1 && c->id <= (uint64_t)INT64_MAX &&
	       c->batch >= 1 && (gmc_is_town_action(c->action) ? c->meter == 0 : c->meter != 0) &&
	       (c->action == GMC_TOWN_SUPPLY ? c->arg >= 0 : c->arg == 0);
}

static void body(const struct gmc_cmd *c, uint8_t b[GMC_BODY_LEN])
{
	b[0] = GMC_VERSION;
	b[1] = c->action;
	put16(b + 2, c->town);
	put16(b + 4, c->meter);
	put64(b + 6, c->id);
	put64(b + 14, (uint64_t)c->issued);
	put64(b + 22, (uint64_t)c->expires);
	put64(b + 30, (uint64_t)c->arg);
	put32(b + 38, c->batch);
}

size_t gmc_signed_bytes(const struct gmc_cmd *c, uint8_t *out, size_t size)
{
	size_t dl = sizeof(GMC_DOMAIN) - 1;

	if (size < dl + GMC_BODY_LEN)
		return 0;
	memcpy(out, GMC_DOMAIN, dl);
	body(c, out + dl);
	return dl + GMC_BODY_LEN;
}

int gmc_sign(struct gmc_cmd *c, const uint8_t sk[GMC_SK_LEN])
{
	uint8_t m[sizeof(GMC_DOMAIN) + GMC_BODY_LEN], fpr[GMC_FPR_LEN];
	size_t ml = gmc_signed_bytes(c, m, sizeof(m));

	if (c->nsig >= GMC_SIG_MAX || !fields_ok(c))
		return -1;
	/* libsodium's secret key ends with the public key */
	gmc_fingerprint(sk + 32, fpr);
	for (unsigned int i = 0; i < c->nsig; i++)
		if (!memcmp(c->sig[i].fpr, fpr, GMC_FPR_LEN))
			return -1;
	if (crypto_sign_detached(c->sig[c->nsig].sig, NULL, m, ml, sk))
		return -1;
	memcpy(c->sig[c->nsig].fpr, fpr, GMC_FPR_LEN);
	c->nsig++;
	return 0;
}

int gmc_add_signature(struct gmc_cmd *c, const uint8_t pk[GMC_PK_LEN],
		      const uint8_t sig[GMC_SIG_LEN])
{
	uint8_t m[sizeof(GMC_DOMAIN) + GMC_BODY_LEN], fpr[GMC_FPR_LEN];
	size_t ml = gmc_signed_bytes(c, m, sizeof(m));

	if (c->nsig >= GMC_SIG_MAX || !fields_ok(c))
		return GMP_CMD_INVALID;
	gmc_fingerprint(pk, fpr);
	for (unsigned int i = 0; i < c->nsig; i++)
		if (!memcmp(c->sig[i].fpr, fpr, GMC_FPR_LEN))
			return GMP_CMD_NEED_TWO;
	if (crypto_sign_verify_detached(sig, m, ml, pk))
		return GMP_CMD_BAD_SIG;
	memcpy(c->sig[c->nsig].fpr, fpr, GMC_FPR_LEN);
	memcpy(c->sig[c->nsig].sig, sig, GMC_SIG_LEN);
	c->nsig++;
	return 0;
}

int gmc_encode(const struct gmc_cmd *c, uint8_t *buf, size_t size)
{
	size_t len = GMC_BODY_LEN + 1 + (size_t)c->nsig * (GMC_FPR_LEN + GMC_SIG_LEN);
	uint8_t *p = buf + GMC_BODY_LEN + 1;

	if (c->nsig < 1 || c->nsig > GMC_SIG_MAX || !fields_ok(c) || size < len)
		return -1;
	body(c, buf);
	buf[GMC_BODY_LEN] = c->nsig;
	for (unsigned int i = 0; i < c->nsig; i++) {
		memcpy(p, c->sig[i].fpr, GMC_FPR_LEN);
		memcpy(p + GMC_FPR_LEN, c->sig[i].sig, GMC_SIG_LEN);
		p += GMC_FPR_LEN + GMC_SIG_LEN;
	}
	return (int)len;
}

/* body()'s inverse (the fields unchecked) */
static void unbody(const uint8_t b[GMC_BODY_LEN], struct gmc_cmd *c)
{
	c->action = b[1];
	c->town = (uint16_t)get(b + 2, 2);
	c->meter = (uint16_t)get(b + 4, 2);
	c->id = get(b + 6, 8);
	c->issued = (int64_t)get(b + 14, 8);
	c->expires = (int64_t)get(b + 22, 8);
	c->arg = (int64_t)get(b + 30, 8);
	c->batch = (uint32_t)get(b + 38, 4);
}

int gmc_decode(const uint8_t *buf, size_t len, struct gmc_cmd *c)
{
	const uint8_t *p = buf + GMC_BODY_LEN + 1;

	memset(c, 0, sizeof(*c));
	if (len < GMC_BODY_LEN + 1 || buf[0] != GMC_VERSION)
		return -1;
	unbody(buf, c);
	c->nsig = buf[GMC_BODY_LEN];
	if (c->nsig < 1 || c->nsig > GMC_SIG_MAX ||
	    len != GMC_BODY_LEN + 1 + (size_t)c->nsig * (GMC_FPR_LEN + GMC_SIG_LEN) ||
	    !fields_ok(c)) {
		memset(c, 0, sizeof(*c));
		return -1;
	}
	for (unsigned int i = 0; i < c->nsig; i++) {
		memcpy(c->sig[i].fpr, p, GMC_FPR_LEN);
		memcpy(c->sig[i].sig, p + GMC_FPR_LEN, GMC_SIG_LEN);
		p += GMC_FPR_LEN + GMC_SIG_LEN;
	}
	return 0;
}

int gmc_body_decode(const uint8_t *buf, size_t len, struct gmc_cmd *c)
{
	memset(c, 0, sizeof(*c));
	if (len != GMC_BODY_LEN || buf[0] != GMC_VERSION)
		return -1;
	unbody(buf, c);
	if (!fields_ok(c)) {
		memset(c, 0, sizeof(*c));
		return -1;
	}
	return 0;
}

bool gmc_needs_two(const struct gmc_cmd *c, const struct gmc_policy *p)
{
	return c->action == GMC_REKEY || c->action == GMC_TOWN_STOP || c->batch > p->two_above;
}

static int key_of(const struct gmc_keyset *ks, const uint8_t fpr[GMC_FPR_LEN])
{
	for (size_t i = 0; i < ks->n; i++)
		if (!memcmp(ks->k[i].fpr, fpr, GMC_FPR_LEN))
			return (int)i;
	return -1;
}

int gmc_verify(const struct gmc_cmd *c, const struct gmc_keyset *ks,
	       const struct gmc_policy *p, uint16_t town, uint16_t meter, int64_t now)
{
	uint8_t m[sizeof(GMC_DOMAIN) + GMC_BODY_LEN];
	size_t ml = gmc_signed_bytes(c, m, sizeof(m));
	int who[GMC_SIG_MAX];

	if (c->nsig < 1 || c->nsig > GMC_SIG_MAX || !fields_ok(c))
		return GMP_CMD_INVALID;
	if (c->town != town || c->meter != meter)
		return GMP_CMD_WRONG_TARGET;
	if (c->expires <= c->issued || c->expires - c->issued > GMC_LIFETIME_MAX ||
	    c->issued > now + GMC_SKEW_S)
		return GMP_CMD_NOT_YET;
	if (now >= c->expires)
		return GMP_CMD_EXPIRED;
	for (unsigned int i = 0; i < c->nsig; i++) {
		who[i] = key_of(ks, c->sig[i].fpr);
		if (who[i] < 0)
			return GMP_CMD_UNKNOWN_KEY;
		if (crypto_sign_verify_detached(c->sig[i].sig, m, ml, ks->k[who[i]].pk))
			return GMP_CMD_BAD_SIG;
		for (unsigned int j = 0; j < i; j++)
			if (who[j] == who[i])
				return GMP_CMD_NEED_TWO;	/* the same operator twice */
	}
	if (gmc_needs_two(c, p) && c->nsig < 2)
		return GMP_CMD_NEED_TWO;
	return 0;
}

void gmc_signers(const struct gmc_cmd *c, const struct gmc_keyset *ks, char *out, size_t size)
{
	size_t off = 0;

	if (size)
		out[0] = '\0';
	for (unsigned int i = 0; i < c->nsig && i < GMC_SIG_MAX && off < size; i++) {
		int k = key_of(ks, c->sig[i].fpr);
		char hex[2 * GMC_FPR_LEN + 1];
		int n;

		sodium_bin2hex(hex, sizeof(hex), c->sig[i].fpr, GMC_FPR_LEN);
		n = snprintf(out + off, size - off, "%s%s", i ? "+" : "",
			     k >= 0 ? ks->k[k].name : hex);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

static const char *const status_names[] = {
	[GMP_CMD_OK] = "ok", [GMP_CMD_DUPLICATE] = "duplicate",
	[GMP_CMD_UNSUPPORTED] = "unsupported", [GMP_CMD_EXPIRED] = "expired",
	[GMP_CMD_INVALID] = "invalid", [GMP_CMD_STORAGE] = "storage",
	[GMP_CMD_BAD_SIG] = "bad-signature", [GMP_CMD_UNKNOWN_KEY] = "unknown-key",
	[GMP_CMD_REPLAY] = "replay", [GMP_CMD_NEED_TWO] = "needs-two-operators",
	[GMP_CMD_WRONG_TARGET] = "wrong-target", [GMP_CMD_RATE] = "rate-limited",
	[GMP_CMD_NOT_YET] = "not-yet-valid", [GMP_CMD_REFUSED] = "refused",
};

const char *gmc_status_name(int status)
{
	if (status >= 0 && (size_t)status < sizeof(status_names) / sizeof(status_names[0]) &&
	    status_names[status])
		return status_names[status];
	return "unknown";
}
