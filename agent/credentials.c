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

static int parse_line(struct uplink_credentials *c, char *line, unsigned int lineno,
		      unsigned int *seen, char *err, size_t errlen)
{
	char *eq = strchr(line, '='), *key, *val;
	unsigned int k;
	uint32_t id;
	uint8_t sk[GMP_KEY_LEN];

	if (!eq) {
		snprintf(err, errlen, "%s:%u: expected 'key = value'", c->path, lineno);
		return -1;
	}
	*eq = '\0';
	key = strtrim(line);
	val = strtrim(eq + 1);
	for (k = 0; k < NKEYS && strcmp(key, keys[k]); k++)
		;
	if (k == NKEYS) {
		snprintf(err, errlen, "%s:%u: key '%.40s': unknown key (meter_id, meter_secret_key, "
			 "town_public_key)", c->path, lineno, key);
		return -1;
	}
	if (*seen & (1u << k)) {
		snprintf(err, errlen, "%s:%u: key '%s': given twice", c->path, lineno, key);
		return -1;
	}
	*seen |= 1u << k;
	switch (k) {
	case 0:
		if (parse_u32(val, 1, 65534, &id)) {
			snprintf(err, errlen, "%s:%u: key 'meter_id': '%.20s' is not 1..65534",
				 c->path, lineno, val);
			return -1;
		}
		c->meter_id = (uint16_t)id;
		return 0;
	case 1:
		if (strlen(val) != 2 * GMP_KEY_LEN || gmp_hex_decode(val, sk, GMP_KEY_LEN) ||
		    gmp_keypair_from_secret(&c->key, sk)) {
			sodium_memzero(sk, sizeof(sk));
			snprintf(err, errlen, "%s:%u: key 'meter_secret_key': not 64 hex digits of a "
				 "key", c->path, lineno);
			return -1;
		}
		sodium_memzero(sk, sizeof(sk));
		return 0;
	default:
		if (strlen(val) != 2 * GMP_KEY_LEN || gmp_hex_decode(val, c->town_pk, GMP_KEY_LEN)) {
			snprintf(err, errlen, "%s:%u: key 'town_public_key': not 64 hex digits",
				 c->path, lineno);
			return -1;
		}
		return 0;
	}
}

int credentials_load(struct uplink_credentials *c, const char *path, char *err, size_t errlen)
{
	char *text, *s, *nl;
	unsigned int lineno = 0, seen = 0;
	struct stat st;
	ssize_t n;
	int fd, rc = 0;

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
	text = sodium_malloc(CRED_MAX + 1);
	if (!text) {
		close(fd);
		snprintf(err, errlen, "%s: out of memory", c->path);
		return -1;
	}
	n = read(fd, text, CRED_MAX);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", c->path, strerror(errno));
		sodium_free(text);
		return -1;
	}
	text[n] = '\0';
	if ((size_t)n != strlen(text)) {
		snprintf(err, errlen, "%s: contains a NUL byte", c->path);
		sodium_free(text);
		return -1;
	}
	for (s = text; s && *s && !rc; s = nl) {
		char *line;

		nl = strchr(s, '\n');
		if (nl)
			*nl++ = '\0';
		lineno++;
		line = strtrim(s);
		if (!*line || *line == '#' || *line == ';')
			continue;
		rc = parse_line(c, line, lineno, &seen, err, errlen);
	}
	sodium_free(text);
	if (!rc && seen != (1u << NKEYS) - 1) {
		for (unsigned int k = 0; k < NKEYS; k++)
			if (!(seen & (1u << k))) {
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
	return rc;
}
