// SPDX-License-Identifier: GPL-2.0
/* The meter's uplink credentials file (credentials.h). */
#include "credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ini.h"
#include "parse.h"

#define CRED_MAX	4096
#define NKEYS		3

static const char *const keys[NKEYS] = { "meter_id", "meter_secret_key", "town_public_key" };

void credentials_wipe(struct uplink_credentials *c)
{
	sodium_memzero(c, sizeof(*c));
}

/* $CREDENTIALS_DIRECTORY/<basename> if systemd passed it, else path. */
static void resolve(char *out, size_t n, const char *path)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (dir && *dir) {
		snprintf(out, n, "%s/%s", dir, base);
		if (!access(out, R_OK))
			return;
	}
	snprintf(out, n, "%s", path);
}

struct cred_parse {
	struct uplink_credentials *c;
	unsigned int seen;
};

static int on_entry(struct ini *ini, const struct ini_entry *e, void *ctx)
{
	struct cred_parse *p = ctx;
	struct uplink_credentials *c = p->c;
	const char *val = e->value;
	uint8_t sk[GMP_KEY_LEN];
	unsigned int k;
	uint32_t id;

	for (k = 0; k < NKEYS && strcmp(e->key, keys[k]); k++)
		;
	if (k == NKEYS)
		return ini_error(ini, e->line, NULL, e->key, "unknown key (meter_id, "
				 "meter_secret_key, town_public_key)");
	p->seen |= 1u << k;
	switch (k) {
	case 0:
		if (parse_u32(val, 1, 65534, &id))
			return ini_error(ini, e->line, NULL, e->key, "'%.20s' is not 1..65534", val);
		c->meter_id = (uint16_t)id;
		return 0;
	case 1:
		if (strlen(val) != 2 * GMP_KEY_LEN || gmp_hex_decode(val, sk, GMP_KEY_LEN) ||
		    gmp_keypair_from_secret(&c->key, sk)) {
			sodium_memzero(sk, sizeof(sk));
			return ini_error(ini, e->line, NULL, e->key, "not 64 hex digits of a key");
		}
		sodium_memzero(sk, sizeof(sk));
		return 0;
	default:
		if (strlen(val) != 2 * GMP_KEY_LEN || gmp_hex_decode(val, c->town_pk, GMP_KEY_LEN))
			return ini_error(ini, e->line, NULL, e->key, "not 64 hex digits");
		return 0;
	}
}

int credentials_load(struct uplink_credentials *c, const char *path, char *err, size_t errlen)
{
	struct cred_parse p = { .c = c };
	struct stat st;
	struct ini ini;
	int fd, rc;

	memset(c, 0, sizeof(*c));
	resolve(c->path, sizeof(c->path), path);
	fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s (provision the meter with 'townctl provision ID' on "
			 "the town server)", c->path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > CRED_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %d bytes", c->path, CRED_MAX);
		close(fd);
		return -1;
	}
	if (st.st_mode & 0007) {
		snprintf(err, errlen, "%s: readable by others (mode %04o): it holds the meter's "
			 "secret key; chmod 600 it", c->path, (unsigned int)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	ini_init(&ini, c->path, INI_NO_SECTIONS, err, errlen);
	rc = ini_parse_fd(&ini, fd, CRED_MAX, on_entry, &p);
	close(fd);
	ini_free(&ini);
	if (!rc && p.seen != (1u << NKEYS) - 1) {
		for (unsigned int k = 0; k < NKEYS; k++)
			if (!(p.seen & (1u << k))) {
				snprintf(err, errlen, "%s: key '%s': missing required key", c->path,
					 keys[k]);
				break;
			}
		rc = -1;
	}
	if (rc) {
		char keep[sizeof(c->path)];

		memcpy(keep, c->path, sizeof(keep));
		credentials_wipe(c);
		memcpy(c->path, keep, sizeof(keep));
	}
	return rc ? -1 : 0;
}
