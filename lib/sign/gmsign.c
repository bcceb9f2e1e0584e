// SPDX-License-Identifier: GPL-2.0
/*
 * gmsign: an operator's tool for signed commands (gmcmd.h), on the
 * operator's own machine; its only library is libsodium.
 *
 *   gmsign keygen NAME FILE          a new key: the secret into FILE (0600),
 *                                    "NAME HEX-PUBLIC-KEY" on stdout (a line
 *                                    of the operator key set)
 *   gmsign new ACTION TOWN METER [--expires S] [--batch N] [--arg W]
 *              [--issued UTC] -o FILE
 *                                    an unsigned command (ACTION: disconnect,
 *                                    reconnect, rekey, town-stop, town-start,
 *                                    town-supply; METER 0 for a town's)
 *   gmsign sign KEYFILE FILE         add this operator's signature
 *   gmsign show FILE                 what the command says, and who signed
 *   gmsign verify KEYSET FILE TOWN METER [--now UTC] [--two-above N]
 *                                    as the target would: "ok" or the refusal
 *                                    (exit 0 / 1)
 *
 * FILE holds the command's wire form (gmc_encode(), what `townctl
 * signed-queue` and maind carry unchanged); before its first signature it
 * is the body with a signature count of 0 (a draft no target accepts).
 * Files are replaced atomically. Exit status: 0 ok, 1 refused or failed,
 * 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "atomic_file.h"
#include "gmcmd.h"
#include "gmproto.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: gmsign keygen NAME FILE\n"
		"       gmsign new ACTION TOWN METER [--expires SECONDS] [--batch N] [--arg W]\n"
		"                  [--issued UTC-SECONDS] -o FILE\n"
		"       gmsign sign KEYFILE FILE\n"
		"       gmsign show FILE\n"
		"       gmsign verify KEYSET FILE TOWN METER [--now UTC-SECONDS] [--two-above N]\n");
	return 2;
}

static int num(const char *s, int64_t lo, int64_t hi, int64_t *v)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || end == s || *end || x < lo || x > hi) {
		fprintf(stderr, "gmsign: '%s' is not a whole number from %" PRId64 " to %" PRId64 "\n",
			s, lo, hi);
		return -1;
	}
	*v = x;
	return 0;
}

/* The command in path: signed (gmc_decode) or a draft (body, count 0). */
static int load(const char *path, struct gmc_cmd *c)
{
	uint8_t buf[GMC_LEN_MAX + 1], tmp[GMC_LEN_MAX];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "gmsign: %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n == GMC_BODY_LEN + 1 && buf[GMC_BODY_LEN] == 0) {
		/* a draft: decode its body with a placeholder signature */
		memcpy(tmp, buf, GMC_BODY_LEN);
		tmp[GMC_BODY_LEN] = 1;
		memset(tmp + GMC_BODY_LEN + 1, 0, GMC_FPR_LEN + GMC_SIG_LEN);
		if (!gmc_decode(tmp, GMC_BODY_LEN + 1 + GMC_FPR_LEN + GMC_SIG_LEN, c)) {
			c->nsig = 0;
			memset(c->sig, 0, sizeof(c->sig));
			return 0;
		}
	} else if (n > 0 && !gmc_decode(buf, (size_t)n, c)) {
		return 0;
	}
	fprintf(stderr, "gmsign: %s: not a signed command (or a draft) of version %d\n", path,
		GMC_VERSION);
	return -1;
}

/* Write the command (a draft if unsigned) atomically to path. */
static int save(const char *path, const struct gmc_cmd *c)
{
	uint8_t buf[GMC_LEN_MAX];
	struct atomic_file a;
	int len, r;

	if (c->nsig) {
		len = gmc_encode(c, buf, sizeof(buf));
	} else {
		struct gmc_cmd d = *c;

		/* the body as a one-signature command would carry it, the count 0 */
		d.nsig = 1;
		len = gmc_encode(&d, buf, sizeof(buf));
		if (len > 0) {
			len = GMC_BODY_LEN + 1;
			buf[GMC_BODY_LEN] = 0;
		}
	}
	if (len < 0) {
		fprintf(stderr, "gmsign: the command's fields are out of range\n");
		return -1;
	}
	r = atomic_file_open(&a, path, 0644);
	if (!r)
		r = atomic_file_write(&a, buf, (size_t)len);
	if (!r)
		r = atomic_file_commit(&a, 0);
	else
		atomic_file_abort(&a);
	if (r) {
		fprintf(stderr, "gmsign: %s: %s: %s\n", path, a.step, strerror(-r));
		return -1;
	}
	return 0;
}

static int cmd_keygen(int argc, char **argv)
{
	uint8_t pk[GMC_PK_LEN];
	char err[400], hex[2 * GMC_PK_LEN + 1];

	if (argc != 2)
		return usage();
	if (gmc_secret_create(argv[1], argv[0], pk, err, sizeof(err))) {
		fprintf(stderr, "gmsign: %s\n", err);
		return 1;
	}
	sodium_bin2hex(hex, sizeof(hex), pk, GMC_PK_LEN);
	printf("%s %s\n", argv[0], hex);
	return 0;
}

static int cmd_new(int argc, char **argv)
{
	struct gmc_cmd c = { .batch = 1 };
	const char *out = NULL;
	int64_t v, lifetime = 900;
	int action;

	if (argc < 3)
		return usage();
	action = gmc_action_parse(argv[0]);
	if (action < 0) {
		fprintf(stderr, "gmsign: '%s' is not an action (disconnect, reconnect, rekey, "
			"town-stop, town-start, town-supply)\n", argv[0]);
		return 2;
	}
	c.action = (uint8_t)action;
	if (num(argv[1], 1, 65534, &v))
		return 2;
	c.town = (uint16_t)v;
	if (num(argv[2], 0, 65535, &v))
		return 2;
	c.meter = (uint16_t)v;
	c.issued = time(NULL);
	for (int i = 3; i < argc; i++) {
		const char *o = argv[i];

		if (i + 1 == argc)
			return usage();
		if (!strcmp(o, "-o"))
			out = argv[++i];
		else if (!strcmp(o, "--expires") && !num(argv[++i], 1, GMC_LIFETIME_MAX, &v))
			lifetime = v;
		else if (!strcmp(o, "--batch") && !num(argv[++i], 1, UINT32_MAX, &v))
			c.batch = (uint32_t)v;
		else if (!strcmp(o, "--arg") && !num(argv[++i], 0, INT64_MAX, &v))
			c.arg = v;
		else if (!strcmp(o, "--issued") && !num(argv[++i], 0, INT64_MAX / 2, &v))
			c.issued = v;
		else
			return usage();
	}
	if (!out)
		return usage();
	c.expires = c.issued + lifetime;
	randombytes_buf(&c.id, sizeof(c.id));
	c.id = (c.id & INT64_MAX) ? c.id & INT64_MAX : 1;
	if (gmc_is_town_action(c.action) != (c.meter == 0)) {
		fprintf(stderr, "gmsign: %s %s\n", argv[0], c.meter ? "is a town's action: METER must "
			"be 0" : "is a meter's action: METER must not be 0");
		return 2;
	}
	if (c.action != GMC_TOWN_SUPPLY && c.arg) {
		fprintf(stderr, "gmsign: --arg is for town-supply only\n");
		return 2;
	}
	if (save(out, &c))
		return 1;
	printf("%" PRIu64 "\n", c.id);
	return 0;
}

static int cmd_sign(int argc, char **argv)
{
	struct gmc_cmd c;
	uint8_t sk[GMC_SK_LEN];
	char name[GMC_NAME_MAX], err[400];
	int r;

	if (argc != 2)
		return usage();
	if (load(argv[1], &c))
		return 1;
	if (gmc_secret_load(argv[0], name, sk, err, sizeof(err))) {
		fprintf(stderr, "gmsign: %s\n", err);
		return 1;
	}
	r = gmc_sign(&c, sk);
	sodium_memzero(sk, sizeof(sk));
	if (r) {
		fprintf(stderr, "gmsign: %s: %s cannot sign it: it carries %d signatures already, "
			"or one of this key\n", argv[1], name, GMC_SIG_MAX);
		return 1;
	}
	if (save(argv[1], &c))
		return 1;
	fprintf(stderr, "gmsign: %s signed %s (%u signature%s)\n", name, argv[1], c.nsig,
		c.nsig == 1 ? "" : "s");
	return 0;
}

static void utc(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm))
		strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(buf, n, "%" PRId64, t);
}

static int cmd_show(int argc, char **argv)
{
	struct gmc_cmd c;
	char a[32], b[32], hex[2 * GMC_FPR_LEN + 1];

	if (argc != 1)
		return usage();
	if (load(argv[0], &c))
		return 1;
	utc(c.issued, a, sizeof(a));
	utc(c.expires, b, sizeof(b));
	printf("id %" PRIu64 "\naction %s\ntown %u\nmeter %u\nissued %" PRId64 " %s\n"
	       "expires %" PRId64 " %s\nbatch %u\narg %" PRId64 "\nsignatures %u\n", c.id,
	       gmc_action_name(c.action), c.town, c.meter, c.issued, a, c.expires, b, c.batch,
	       c.arg, c.nsig);
	for (unsigned int i = 0; i < c.nsig; i++) {
		sodium_bin2hex(hex, sizeof(hex), c.sig[i].fpr, GMC_FPR_LEN);
		printf("signer %s\n", hex);
	}
	return 0;
}

static int cmd_verify(int argc, char **argv)
{
	struct gmc_keyset ks;
	struct gmc_policy pol = { .two_above = GMC_TWO_ABOVE };
	struct gmc_cmd c;
	char err[400], who[2 * GMC_NAME_MAX + 2];
	int64_t town, meter, now = time(NULL), v;
	int st;

	if (argc < 4)
		return usage();
	for (int i = 4; i < argc; i++) {
		if (i + 1 == argc)
			return usage();
		if (!strcmp(argv[i], "--now") && !num(argv[++i], 0, INT64_MAX / 2, &v))
			now = v;
		else if (!strcmp(argv[i], "--two-above") && !num(argv[++i], 1, UINT32_MAX, &v))
			pol.two_above = (uint32_t)v;
		else
			return usage();
	}
	if (num(argv[2], 1, 65534, &town) || num(argv[3], 0, 65535, &meter))
		return 2;
	if (gmc_keyset_load(&ks, argv[0], err, sizeof(err))) {
		fprintf(stderr, "gmsign: %s\n", err);
		return 1;
	}
	if (load(argv[1], &c))
		return 1;
	if (!c.nsig) {
		printf("invalid: not signed\n");
		return 1;
	}
	st = gmc_verify(&c, &ks, &pol, (uint16_t)town, (uint16_t)meter, now);
	gmc_signers(&c, &ks, who, sizeof(who));
	printf("%s: %s %" PRIu64 " signed by %s\n", gmc_status_name(st), gmc_action_name(c.action),
	       c.id, who);
	return st ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "gmsign: libsodium could not start\n");
		return 1;
	}
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "keygen"))
		return cmd_keygen(argc - 2, argv + 2);
	if (!strcmp(argv[1], "new"))
		return cmd_new(argc - 2, argv + 2);
	if (!strcmp(argv[1], "sign"))
		return cmd_sign(argc - 2, argv + 2);
	if (!strcmp(argv[1], "show"))
		return cmd_show(argc - 2, argv + 2);
	if (!strcmp(argv[1], "verify"))
		return cmd_verify(argc - 2, argv + 2);
	return usage();
}
