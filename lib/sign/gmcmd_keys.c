// SPDX-License-Identifier: GPL-2.0
/* Operator key files: the public key set and one operator's secret (gmcmd.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "gmcmd.h"

#define FILE_MAX 16384

static int read_all(const char *path, char *buf, size_t size, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (n < 0 || len == size - 1) {
		snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "file too large");
		return -1;
	}
	buf[len] = '\0';
	return 0;
}

static bool name_ok(const char *s, size_t n)
{
	if (n < 1 || n >= GMC_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/* Split "NAME HEX" (leading and trailing blanks allowed); 0 or -1 with why. */
static int split(const char *line, size_t len, const char **name, size_t *nl, const char **hex,
		 size_t *hl, const char **why)
{
	size_t i = 0;

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	*name = line + i;
	while (i < len && line[i] != ' ' && line[i] != '\t')
		i++;
	*nl = (size_t)(line + i - *name);
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	*hex = line + i;
	while (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
		i++;
	*hl = (size_t)(line + i - *hex);
	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
		i++;
	if (i != len || !*hl) {
		*why = "expected 'NAME HEX-KEY'";
		return -1;
	}
	if (!name_ok(*name, *nl)) {
		*why = "the name must be 1-31 of A-Z a-z 0-9 . _ -";
		return -1;
	}
	return 0;
}

static int unhex(const char *hex, size_t hl, uint8_t *out, size_t n)
{
	size_t got;

	if (hl != 2 * n)
		return -1;
	return sodium_hex2bin(out, n, hex, hl, NULL, &got, NULL) || got != n ? -1 : 0;
}

int gmc_keyset_parse(struct gmc_keyset *ks, const char *text, const char *path, char *err,
		     size_t errlen)
{
	const char *p = text;
	unsigned int line = 0;

	memset(ks, 0, sizeof(*ks));
	while (*p) {
		const char *e = strchr(p, '\n'), *name, *hex, *why = NULL;
		size_t len = e ? (size_t)(e - p) : strlen(p), nl, hl, k = 0;

		line++;
		while (k < len && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r'))
			k++;
		if (k == len || p[k] == '#')
			goto next;
		if (split(p, len, &name, &nl, &hex, &hl, &why))
			goto bad;
		if (ks->n == GMC_KEYS_MAX) {
			why = "more than 16 operator keys";
			goto bad;
		}
		if (unhex(hex, hl, ks->k[ks->n].pk, GMC_PK_LEN)) {
			why = "the key must be 64 hex digits";
			goto bad;
		}
		memcpy(ks->k[ks->n].name, name, nl);
		ks->k[ks->n].name[nl] = '\0';
		gmc_fingerprint(ks->k[ks->n].pk, ks->k[ks->n].fpr);
		for (size_t i = 0; i < ks->n; i++) {
			if (!strcmp(ks->k[i].name, ks->k[ks->n].name))
				why = "this name is listed twice";
			else if (!memcmp(ks->k[i].fpr, ks->k[ks->n].fpr, GMC_FPR_LEN))
				why = "this key is listed twice";
		}
		if (why)
			goto bad;
		ks->n++;
next:
		p += len + (e ? 1 : 0);
		continue;
bad:
		snprintf(err, errlen, "%s:%u: %s", path, line, why);
		memset(ks, 0, sizeof(*ks));
		return -1;
	}
	return 0;
}

int gmc_keyset_load(struct gmc_keyset *ks, const char *path, char *err, size_t errlen)
{
	char buf[FILE_MAX];

	if (read_all(path, buf, sizeof(buf), err, errlen))
		return -1;
	return gmc_keyset_parse(ks, buf, path, err, errlen);
}

int gmc_secret_load(const char *path, char name[GMC_NAME_MAX], uint8_t sk[GMC_SK_LEN],
		    char *err, size_t errlen)
{
	char buf[512];
	const char *n, *hex, *why = NULL;
	size_t nl, hl, len;
	uint8_t pk[GMC_PK_LEN];
	struct stat st;

	if (read_all(path, buf, sizeof(buf), err, errlen))
		return -1;
	if (!stat(path, &st) && (st.st_mode & 077)) {
		why = "readable by others: chmod 600";
		goto bad;
	}
	len = strcspn(buf, "\n");
	if (buf[len] == '\n' && buf[len + 1 + strspn(buf + len + 1, " \t\r\n")] != '\0') {
		why = "more than one line";
		goto bad;
	}
	if (split(buf, len, &n, &nl, &hex, &hl, &why))
		goto bad;
	if (unhex(hex, hl, sk, GMC_SK_LEN)) {
		why = "the secret key must be 128 hex digits";
		goto bad;
	}
	/* the public half must be the one the seed makes */
	crypto_sign_ed25519_sk_to_pk(pk, sk);
	{
		uint8_t pk2[GMC_PK_LEN], sk2[GMC_SK_LEN];

		crypto_sign_seed_keypair(pk2, sk2, sk);
		sodium_memzero(sk2, sizeof(sk2));
		if (memcmp(pk, pk2, GMC_PK_LEN)) {
			why = "not an Ed25519 secret key (its halves disagree)";
			goto bad;
		}
	}
	memcpy(name, n, nl);
	name[nl] = '\0';
	sodium_memzero(buf, sizeof(buf));
	return 0;
bad:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(sk, GMC_SK_LEN);
	snprintf(err, errlen, "%s:1: %s", path, why);
	return -1;
}

int gmc_secret_create(const char *path, const char *name, uint8_t pk[GMC_PK_LEN],
		      char *err, size_t errlen)
{
	uint8_t sk[GMC_SK_LEN];
	char line[GMC_NAME_MAX + 2 * GMC_SK_LEN + 4];
	int fd, n;
	bool ok;

	if (!name_ok(name, strlen(name))) {
		snprintf(err, errlen, "operator name '%s': 1-31 of A-Z a-z 0-9 . _ -", name);
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	crypto_sign_keypair(pk, sk);
	n = snprintf(line, sizeof(line), "%s ", name);
	sodium_bin2hex(line + n, sizeof(line) - (size_t)n, sk, GMC_SK_LEN);
	strcat(line, "\n");
	ok = write(fd, line, strlen(line)) == (ssize_t)strlen(line) && !fsync(fd);
	sodium_memzero(line, sizeof(line));
	sodium_memzero(sk, sizeof(sk));
	if (close(fd) || !ok) {
		unlink(path);
		snprintf(err, errlen, "%s: write failed", path);
		return -1;
	}
	return 0;
}
