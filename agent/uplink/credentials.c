// SPDX-License-Identifier: GPL-2.0
/* The meter's key file (credentials.h). */
#include "credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "atomic_file.h"
#include "ini.h"
#include "parse.h"

#define CRED_MAX	4096

enum { K_ID, K_SK, K_TOWN, K_SK_NEXT, K_TOWN_NEXT, NKEYS };
#define REQUIRED	((1u << K_ID) | (1u << K_SK) | (1u << K_TOWN))

static const char *const keys[NKEYS] = {
	[K_ID] = "meter_id", [K_SK] = "meter_secret_key", [K_TOWN] = "town_public_key",
	[K_SK_NEXT] = "meter_secret_key_next", [K_TOWN_NEXT] = "town_public_key_next",
};

void credentials_wipe(struct uplink_credentials *c)
{
	sodium_memzero(c, sizeof(*c));
}

bool credentials_town_key_usable(const struct gmp_keypair *meter, const uint8_t pk[GMP_KEY_LEN])
{
	uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
	bool ok = !crypto_kx_client_session_keys(rx, tx, meter->pk, meter->sk, pk);

	sodium_memzero(rx, sizeof(rx));
	sodium_memzero(tx, sizeof(tx));
	return ok;
}

/* $CREDENTIALS_DIRECTORY/<basename> if systemd passed it, else path. */
static bool resolve(char *out, size_t n, const char *path)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (dir && *dir) {
		snprintf(out, n, "%s/%s", dir, base);
		if (!access(out, R_OK))
			return true;
	}
	snprintf(out, n, "%s", path);
	return false;
}

struct cred_parse {
	struct uplink_credentials *c;
	unsigned int seen;
};

static int secret_key(struct ini *ini, const struct ini_entry *e, struct gmp_keypair *kp)
{
	uint8_t sk[GMP_KEY_LEN];
	int bad = strlen(e->value) != 2 * GMP_KEY_LEN || gmp_hex_decode(e->value, sk, GMP_KEY_LEN) ||
		  gmp_keypair_from_secret(kp, sk);

	sodium_memzero(sk, sizeof(sk));
	return bad ? ini_error(ini, e->line, NULL, e->key, "not 64 hex digits of a key") : 0;
}

static int public_key(struct ini *ini, const struct ini_entry *e, uint8_t pk[GMP_KEY_LEN])
{
	if (strlen(e->value) != 2 * GMP_KEY_LEN || gmp_hex_decode(e->value, pk, GMP_KEY_LEN))
		return ini_error(ini, e->line, NULL, e->key, "not 64 hex digits");
	return 0;
}

static int on_entry(struct ini *ini, const struct ini_entry *e, void *ctx)
{
	struct cred_parse *p = ctx;
	struct uplink_credentials *c = p->c;
	unsigned int k;
	uint32_t id;

	for (k = 0; k < NKEYS && strcmp(e->key, keys[k]); k++)
		;
	if (k == NKEYS)
		return ini_error(ini, e->line, NULL, e->key, "unknown key (meter_id, "
				 "meter_secret_key, town_public_key, meter_secret_key_next, "
				 "town_public_key_next)");
	p->seen |= 1u << k;
	switch (k) {
	case K_ID:
		if (parse_u32(e->value, 1, 65534, &id))
			return ini_error(ini, e->line, NULL, e->key, "'%.20s' is not 1..65534",
					 e->value);
		c->meter_id = (uint16_t)id;
		return 0;
	case K_SK:
		return secret_key(ini, e, &c->key);
	case K_SK_NEXT:
		c->has_next_key = true;
		return secret_key(ini, e, &c->next_key);
	case K_TOWN:
		return public_key(ini, e, c->town_pk);
	default:
		c->has_next_town = true;
		return public_key(ini, e, c->town_pk_next);
	}
}

/* After the parse: the town keys must be usable with the meter's keys. */
static int check_keys(struct uplink_credentials *c, unsigned int seen, struct ini *ini, char *err,
		      size_t errlen)
{
	static const char why[] = "not a usable X25519 public key";

	for (unsigned int k = 0; k < NKEYS; k++)
		if ((REQUIRED & (1u << k)) && !(seen & (1u << k))) {
			snprintf(err, errlen, "%s: key '%s': missing required key", c->path,
				 keys[k]);
			return -1;
		}
	if (!credentials_town_key_usable(&c->key, c->town_pk))
		return ini_error(ini, ini_key_line(ini, "", keys[K_TOWN]), NULL, keys[K_TOWN], why);
	if (c->has_next_town && !credentials_town_key_usable(&c->key, c->town_pk_next))
		return ini_error(ini, ini_key_line(ini, "", keys[K_TOWN_NEXT]), NULL,
				 keys[K_TOWN_NEXT], why);
	return 0;
}

int credentials_load(struct uplink_credentials *c, const char *path, char *err, size_t errlen)
{
	struct cred_parse p = { .c = c };
	struct stat st;
	struct ini ini;
	int fd, rc;

	memset(c, 0, sizeof(*c));
	c->read_only = resolve(c->path, sizeof(c->path), path);
	fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s (generate the meter's key with 'meterd "
			 "--generate-key --meter-id ID --town-key HEX' and enrol it with 'townctl "
			 "add', or install the file 'townctl provision' printed)", c->path,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > CRED_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %d bytes", c->path, CRED_MAX);
		close(fd);
		return -1;
	}
	if (st.st_mode & 0077) {
		snprintf(err, errlen, "%s: open to %s (mode %04o): it holds the meter's secret key; "
			 "chmod 600 it (owner: meterd's user)", c->path,
			 st.st_mode & 0007 ? "others" : "its group", (unsigned int)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	ini_init(&ini, c->path, INI_NO_SECTIONS, err, errlen);
	rc = ini_parse_fd(&ini, fd, CRED_MAX, on_entry, &p);
	close(fd);
	if (!rc)
		rc = check_keys(c, p.seen, &ini, err, errlen);
	ini_free(&ini);
	if (rc) {
		char keep[sizeof(c->path)];

		memcpy(keep, c->path, sizeof(keep));
		credentials_wipe(c);
		memcpy(c->path, keep, sizeof(keep));
	}
	return rc ? -1 : 0;
}

/* ---- writing --------------------------------------------------------------- */

/* The file's text; wiped by the caller. Returns its length or -1. */
static int format(const struct uplink_credentials *c, char *buf, size_t size)
{
	char hex[2 * GMP_KEY_LEN + 1];
	size_t n;

	n = (size_t)snprintf(buf, size, "# The gridmeter meter's key file (Documentation/meterd.md, "
			     "\"Keys\"). Secret: mode 0600,\n# owner meterd's user; written by "
			     "meterd, never copy it off the meter.\nmeter_id = %u\n", c->meter_id);
#define KEY_LINE(name, bytes) do { \
		gmp_hex_encode((bytes), GMP_KEY_LEN, hex); \
		if (n < size) \
			n += (size_t)snprintf(buf + n, size - n, "%s = %s\n", (name), hex); \
	} while (0)
	KEY_LINE(keys[K_SK], c->key.sk);
	KEY_LINE(keys[K_TOWN], c->town_pk);
	if (c->has_next_key)
		KEY_LINE(keys[K_SK_NEXT], c->next_key.sk);
	if (c->has_next_town)
		KEY_LINE(keys[K_TOWN_NEXT], c->town_pk_next);
#undef KEY_LINE
	sodium_memzero(hex, sizeof(hex));
	return n < size ? (int)n : -1;
}

int credentials_write(const struct uplink_credentials *c, const char *path, unsigned int flags,
		      uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char text[1024];
	struct atomic_file a;
	int len, r;

	if (strlen(path) >= CRED_PATH) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	len = format(c, text, sizeof(text));
	if (len < 0) {
		snprintf(err, errlen, "%s: key file text too long", path);
		return -EOVERFLOW;
	}
	r = atomic_file_open(&a, path, 0600);
	if (!r && uid != (uid_t)-1)
		r = atomic_file_chown(&a, uid, gid);
	if (!r)
		r = atomic_file_write(&a, text, (size_t)len);
	sodium_memzero(text, sizeof(text));
	if (!r)
		r = atomic_file_commit(&a, (flags & CRED_REPLACE) ? 0 : ATOMIC_FILE_NO_REPLACE);
	else
		atomic_file_abort(&a);
	if (r == -EEXIST && !(flags & CRED_REPLACE))
		snprintf(err, errlen, "%s: exists", path);	/* never overwritten */
	else if (r)
		snprintf(err, errlen, "%s: %s: %s", path, a.step, strerror(-r));
	return r;
}

/* ---- rotations ------------------------------------------------------------- */

int credentials_writable(const struct uplink_credentials *c, char *err, size_t errlen)
{
	if (!c->read_only)
		return 0;
	snprintf(err, errlen, "%s is systemd's read-only copy ($CREDENTIALS_DIRECTORY): a key "
		 "rotation needs the key file itself (remove LoadCredential= for it)", c->path);
	return -EROFS;
}

/* Rewrite c->path with *next; on success *c = *next. next is wiped. */
static int commit(struct uplink_credentials *c, struct uplink_credentials *next, char *err,
		  size_t errlen)
{
	int r = credentials_write(next, c->path, CRED_REPLACE, (uid_t)-1, (gid_t)-1, err, errlen);

	if (!r)
		*c = *next;
	credentials_wipe(next);
	return r;
}

int credentials_meter_rotation_begin(struct uplink_credentials *c, uint8_t pk[GMP_KEY_LEN],
				     char *err, size_t errlen)
{
	struct uplink_credentials next;
	int r = credentials_writable(c, err, errlen);

	if (r)
		return r;
	if (c->has_next_key) {
		memcpy(pk, c->next_key.pk, GMP_KEY_LEN);
		return 0;
	}
	next = *c;
	gmp_keypair_generate(&next.next_key);
	next.has_next_key = true;
	memcpy(pk, next.next_key.pk, GMP_KEY_LEN);
	return commit(c, &next, err, errlen);
}

int credentials_meter_rotation_finish(struct uplink_credentials *c, char *err, size_t errlen)
{
	struct uplink_credentials next;
	int r = credentials_writable(c, err, errlen);

	if (r)
		return r;
	if (!c->has_next_key) {
		snprintf(err, errlen, "%s: no meter key rotation under way", c->path);
		return -ENOENT;
	}
	next = *c;
	next.key = next.next_key;
	next.has_next_key = false;
	sodium_memzero(&next.next_key, sizeof(next.next_key));
	return commit(c, &next, err, errlen);
}

int credentials_town_rotation_begin(struct uplink_credentials *c, const uint8_t pk[GMP_KEY_LEN],
				    char *err, size_t errlen)
{
	struct uplink_credentials next;
	int r = credentials_writable(c, err, errlen);

	if (r)
		return r;
	if (!credentials_town_key_usable(&c->key, pk)) {
		snprintf(err, errlen, "the town's next key is not a usable X25519 public key");
		return -EINVAL;
	}
	if (c->has_next_town && !memcmp(c->town_pk_next, pk, GMP_KEY_LEN))
		return 0;
	next = *c;
	memcpy(next.town_pk_next, pk, GMP_KEY_LEN);
	next.has_next_town = true;
	return commit(c, &next, err, errlen);
}

int credentials_town_rotation_finish(struct uplink_credentials *c, char *err, size_t errlen)
{
	struct uplink_credentials next;
	int r = credentials_writable(c, err, errlen);

	if (r)
		return r;
	if (!c->has_next_town) {
		snprintf(err, errlen, "%s: no town key rotation under way", c->path);
		return -ENOENT;
	}
	next = *c;
	memcpy(next.town_pk, next.town_pk_next, GMP_KEY_LEN);
	next.has_next_town = false;
	memset(next.town_pk_next, 0, GMP_KEY_LEN);
	return commit(c, &next, err, errlen);
}
