// SPDX-License-Identifier: GPL-2.0
/* meterd --generate-key (keygen.h). */
#include "keygen.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "credentials.h"
#include "parse.h"

#define EXIT_USAGE	2
#define EXIT_CONFIG	78

bool keygen_wanted(const struct keygen_opts *o)
{
	return o->generate || o->meter_id || o->town_key || o->force;
}

/* The directory part of path ("" if none). */
static void dir_of(const char *path, char *dir, size_t n)
{
	const char *slash = strrchr(path, '/');

	snprintf(dir, n, "%.*s", slash ? (int)(slash == path ? 1 : slash - path) : 0, path);
}

/* The key file's directory: created 0700 (and given to the owner) if missing. */
static int key_dir(const char *path, const struct passwd *pw, struct keygen_result *res,
		   char *err, size_t errlen)
{
	char dir[CRED_PATH];
	struct stat st;

	dir_of(path, dir, sizeof(dir));
	if (!dir[0])
		snprintf(dir, sizeof(dir), ".");
	if (!stat(dir, &st)) {
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s: not a directory", dir);
			return -ENOTDIR;
		}
		/* an existing directory is the installer's: say what rotations need */
		if (pw && st.st_uid != pw->pw_uid)
			snprintf(res->note, sizeof(res->note), "%s is not owned by %.32s: meterd needs "
				 "to write there to rotate its key (chown it to %.32s, mode 700)", dir,
				 pw->pw_name, pw->pw_name);
		else if (st.st_mode & 0077)
			snprintf(res->note, sizeof(res->note), "%s is open to others (mode %04o): "
				 "chmod 700 it", dir, (unsigned int)(st.st_mode & 07777));
		return 0;
	}
	if (errno != ENOENT || mkdir(dir, 0700) || chmod(dir, 0700) ||
	    (pw && chown(dir, pw->pw_uid, pw->pw_gid))) {
		int e = errno;

		snprintf(err, errlen, "%s: %s", dir, strerror(e));
		return -e;
	}
	res->dir_created = true;
	return 0;
}

int keygen_write(const char *path, uint16_t meter_id, const uint8_t town_pk[GMP_KEY_LEN],
		 bool force, const char *owner, struct keygen_result *res, char *err,
		 size_t errlen)
{
	struct uplink_credentials c = { .meter_id = meter_id };
	struct passwd *pw = NULL;
	struct stat st;
	int r;

	memset(res, 0, sizeof(*res));
	if (owner) {
		errno = 0;
		pw = getpwnam(owner);
		if (!pw) {
			snprintf(err, errlen, "user '%s' does not exist (install meterd's system "
				 "files first: systemd-sysusers)", owner);
			return errno ? -errno : -ENOENT;
		}
	}
	gmp_keypair_generate(&c.key);
	memcpy(c.town_pk, town_pk, GMP_KEY_LEN);
	if (!credentials_town_key_usable(&c.key, town_pk)) {
		credentials_wipe(&c);
		snprintf(err, errlen, "the town key is not a usable X25519 public key");
		return -EINVAL;
	}
	r = key_dir(path, pw, res, err, errlen);
	if (!r) {
		res->replaced = force && !lstat(path, &st);
		r = credentials_write(&c, path, force ? CRED_REPLACE : 0,
				      pw ? pw->pw_uid : (uid_t)-1, pw ? pw->pw_gid : (gid_t)-1,
				      err, errlen);
	}
	if (r == -EEXIST)
		snprintf(err, errlen, "%s exists: it holds this meter's key, which the town server "
			 "knows; --force replaces it (then 'townctl replace' on the town server)",
			 path);
	if (!r)
		memcpy(res->pk, c.key.pk, GMP_KEY_LEN);
	credentials_wipe(&c);
	return r;
}

int keygen_main(const struct keygen_opts *o, const char *config_path, FILE *out, FILE *errf)
{
	struct meter_config *cfg;
	struct keygen_result res;
	uint8_t town_pk[GMP_KEY_LEN];
	char err[600], hex[2 * GMP_KEY_LEN + 1];
	const char *owner = geteuid() == 0 ? KEYGEN_USER : NULL;
	uint32_t id;
	int r;

	if (!o->generate) {
		fprintf(errf, "meterd: --meter-id, --town-key and --force go with --generate-key\n");
		return EXIT_USAGE;
	}
	if (!o->meter_id || parse_u32(o->meter_id, 1, 65534, &id)) {
		fprintf(errf, "meterd: --generate-key needs --meter-id N (1..65534, the meter's "
			"number at the town server)\n");
		return EXIT_USAGE;
	}
	if (!o->town_key || strlen(o->town_key) != 2 * GMP_KEY_LEN ||
	    gmp_hex_decode(o->town_key, town_pk, GMP_KEY_LEN)) {
		fprintf(errf, "meterd: --generate-key needs --town-key HEX (64 hex digits: "
			"'townctl pubkey' on the town server)\n");
		return EXIT_USAGE;
	}
	if (sodium_init() < 0)
		return 1;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return 1;
	if (config_load(cfg, config_path, err, sizeof(err))) {
		fprintf(errf, "meterd: configuration error: %s\n", err);
		free(cfg);
		return EXIT_CONFIG;
	}
	r = keygen_write(cfg->credentials, (uint16_t)id, town_pk, o->force, owner, &res, err,
			 sizeof(err));
	if (r) {
		fprintf(errf, "meterd: %s\n", err);
		free(cfg);
		return r == -EINVAL ? EXIT_USAGE : 1;
	}
	gmp_hex_encode(res.pk, GMP_KEY_LEN, hex);
	if (!owner) {
		struct passwd *pw = getpwuid(geteuid());

		owner = pw ? pw->pw_name : "this user";
	}
	fprintf(out, "%s: %s key pair of meter %u (mode 0600, owner %s)\n", cfg->credentials,
		res.replaced ? "replaced by a new" : "new", id, owner);
	if (res.note[0])
		fprintf(out, "note: %s\n", res.note);
	if (!cfg->uplink)
		fprintf(out, "note: %s has no [uplink] section: meterd reports to the town only "
			"with one (credentials = %s)\n", config_path, cfg->credentials);
	fprintf(out, "meter_public_key = %s\n"
		"Enrol the meter on the town server with:\n"
		"townctl add %u %s\n", hex, id, hex);
	if (res.replaced)
		fprintf(out, "(meter %u enrolled already: townctl replace %u %s)\n", id, id, hex);
	free(cfg);
	return 0;
}
