/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Operator-signed commands (Documentation/commands.md): the bytes an
 * operator signs with Ed25519 (libsodium), carried unchanged from mainctl
 * through maind and the town server to the meter (GMP_SIGNED), and verified
 * by the one they target against the operator keys provisioned there.
 *
 * Wire form (big-endian, GMC_BODY_LEN bytes of body, then the signatures):
 *
 *   0  version (1)        1  action (enum gmc_action)
 *   2  town (u16)         4  meter (u16; 0 for a town command)
 *   6  id (u64, unique, 1..2^63-1)
 *  14  issued (s64, UTC s)        22  expires (s64, UTC s)
 *  30  arg (s64: GMC_TOWN_SUPPLY's watts, else 0)
 *  38  batch (u32: targets of the operation this command belongs to, >= 1)
 *  42  nsig (1..GMC_SIG_MAX)
 *  43  nsig x { fingerprint (GMC_FPR_LEN), signature (64) }
 *
 * Every signature is over GMC_DOMAIN followed by the body, so a signature
 * made for anything else never verifies as a command. No global state.
 * Call sodium_init() once first.
 */
#ifndef GMCMD_H
#define GMCMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMC_VERSION	1
#define GMC_DOMAIN	"gridmeter signed command v1"
#define GMC_BODY_LEN	42
#define GMC_SIG_MAX	2
#define GMC_FPR_LEN	8
#define GMC_SIG_LEN	64
#define GMC_PK_LEN	32
#define GMC_SK_LEN	64	/* libsodium's Ed25519 secret key (seed || public key) */
#define GMC_LEN_MAX	(GMC_BODY_LEN + 1 + GMC_SIG_MAX * (GMC_FPR_LEN + GMC_SIG_LEN))
#define GMC_KEYS_MAX	16	/* operator keys a meter or town holds */
#define GMC_NAME_MAX	32
#define GMC_LIFETIME_MAX 86400	/* expires - issued */
#define GMC_SKEW_S	300	/* issued may be this far in the verifier's future */

enum gmc_action {
	GMC_DISCONNECT	= 1,	/* open the meter's main relay */
	GMC_RECONNECT	= 2,	/* arm the reconnection; the customer confirms at the meter */
	GMC_REKEY	= 3,	/* the meter makes a new key pair and rotates to it */
	GMC_TOWN_STOP	= 4,	/* the town server stops (Documentation/commands.md) */
	GMC_TOWN_START	= 5,	/* ... and starts again */
	GMC_TOWN_SUPPLY	= 6,	/* the town's grid capacity: arg watts */
	GMC_ACTION_MAX	= 6,
};

struct gmc_sig {
	uint8_t fpr[GMC_FPR_LEN];	/* gmc_fingerprint() of the signer's public key */
	uint8_t sig[GMC_SIG_LEN];
};

struct gmc_cmd {
	uint8_t action;		/* enum gmc_action */
	uint16_t town;		/* 1..65534 */
	uint16_t meter;		/* 1..65535, 0: the town itself */
	uint64_t id;		/* unique, 1..INT64_MAX */
	int64_t issued, expires;	/* UTC s */
	int64_t arg;
	uint32_t batch;		/* >= 1 */
	uint8_t nsig;
	struct gmc_sig sig[GMC_SIG_MAX];
};

/* The operator keys a verifier trusts, with their names (for logs). */
struct gmc_keyset {
	size_t n;
	struct {
		uint8_t pk[GMC_PK_LEN];
		uint8_t fpr[GMC_FPR_LEN];
		char name[GMC_NAME_MAX];
	} k[GMC_KEYS_MAX];
};

/* What needs two operators: batches above two_above targets; GMC_REKEY and
 * GMC_TOWN_STOP always. */
struct gmc_policy {
	uint32_t two_above;	/* default GMC_TWO_ABOVE */
};
#define GMC_TWO_ABOVE	10

const char *gmc_action_name(int action);
/* enum gmc_action of a name ("disconnect", "reconnect", "rekey", "town-stop",
 * "town-start", "town-supply"), or -1. */
int gmc_action_parse(const char *name);
/* True for the actions a town carries out itself (meter 0). */
bool gmc_is_town_action(int action);

/* BLAKE2b-64 of the public key: how signatures name their key. */
void gmc_fingerprint(const uint8_t pk[GMC_PK_LEN], uint8_t fpr[GMC_FPR_LEN]);
/* The signed bytes: GMC_DOMAIN then the body. */
size_t gmc_signed_bytes(const struct gmc_cmd *c, uint8_t *out, size_t size);

/*
 * Add a signature with an Ed25519 secret key. 0, or -1 when the command
 * already carries GMC_SIG_MAX signatures or one by the same key.
 */
int gmc_sign(struct gmc_cmd *c, const uint8_t sk[GMC_SK_LEN]);

/*
 * Add a signature made elsewhere (e.g. in the operator's browser, over
 * gmc_signed_bytes()) after checking it: 0, GMP_CMD_BAD_SIG when sig is not
 * pk's Ed25519 signature of this command's signed bytes, GMP_CMD_NEED_TWO
 * when the command already carries a signature by pk, GMP_CMD_INVALID when it
 * carries GMC_SIG_MAX signatures or its fields are out of range. c is
 * unchanged unless 0.
 */
int gmc_add_signature(struct gmc_cmd *c, const uint8_t pk[GMC_PK_LEN],
		      const uint8_t sig[GMC_SIG_LEN]);

/* Wire form: the length written, or -1 (buffer too small, fields out of range). */
int gmc_encode(const struct gmc_cmd *c, uint8_t *buf, size_t size);
/* Parse the wire form (any bytes): 0, or -1 when it is not a command of this
 * version with 1..GMC_SIG_MAX signatures and nothing after them. */
int gmc_decode(const uint8_t *buf, size_t len, struct gmc_cmd *c);
/* The body alone (GMC_BODY_LEN bytes, what is signed after GMC_DOMAIN): an
 * unsigned command (nsig 0). 0, or -1 when it is not a valid body. */
int gmc_body_decode(const uint8_t *buf, size_t len, struct gmc_cmd *c);

/* Whether the command needs two different operators under a policy. */
bool gmc_needs_two(const struct gmc_cmd *c, const struct gmc_policy *p);

/*
 * Everything a target checks except replay (gmc_seen_*): addressed to this
 * town and meter (meter 0: the town), issued no later than now + GMC_SKEW_S,
 * not expired (now < expires), lifetime within GMC_LIFETIME_MAX, every
 * signature by a key in ks and valid, distinct signers, two of them when the
 * policy says so. Returns 0 or the enum gmp_cmd_status that refuses it
 * (GMP_CMD_WRONG_TARGET, GMP_CMD_NOT_YET, GMP_CMD_EXPIRED, GMP_CMD_UNKNOWN_KEY,
 * GMP_CMD_BAD_SIG, GMP_CMD_NEED_TWO, GMP_CMD_INVALID).
 */
int gmc_verify(const struct gmc_cmd *c, const struct gmc_keyset *ks,
	       const struct gmc_policy *p, uint16_t town, uint16_t meter, int64_t now);

/* A command status (enum gmp_cmd_status) as a word: "ok", "bad-signature", ...; "unknown". */
const char *gmc_status_name(int status);

/* Names of the keys that signed (for logs): "alice+bob" into out. */
void gmc_signers(const struct gmc_cmd *c, const struct gmc_keyset *ks, char *out, size_t size);

/*
 * Key files (one reader for each):
 *   operator key set   lines "NAME HEX-PUBLIC-KEY" (64 hex digits), '#' comments;
 *                      names [A-Za-z0-9._-]{1,31}, unique, keys unique
 *   operator secret    one line "NAME HEX-SECRET-KEY" (128 hex digits), mode 0600
 * 0, or -1 with err naming file, line and what is wrong.
 */
int gmc_keyset_load(struct gmc_keyset *ks, const char *path, char *err, size_t errlen);
int gmc_keyset_parse(struct gmc_keyset *ks, const char *text, const char *path, char *err,
		     size_t errlen);
int gmc_secret_load(const char *path, char name[GMC_NAME_MAX], uint8_t sk[GMC_SK_LEN],
		    char *err, size_t errlen);
/* A new operator key: the secret file (O_EXCL, 0600) and the public key. */
int gmc_secret_create(const char *path, const char *name, uint8_t pk[GMC_PK_LEN],
		      char *err, size_t errlen);

#endif
