/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The meter's key file ([uplink] credentials, default
 * /etc/gridmeter/keys/uplink.key; Documentation/meterd.md, "Keys"):
 *
 *   meter_id = 101
 *   meter_secret_key = <64 hex digits>
 *   town_public_key = <64 hex digits>
 *   meter_secret_key_next = <64 hex digits>	(a meter key rotation is under way)
 *   town_public_key_next = <64 hex digits>	(a town key rotation is under way)
 *
 * Written by `meterd --generate-key` (keygen.h) and rewritten by key
 * rotations, always atomically (credentials_write()). The factory path,
 * the three lines `townctl provision ID` prints, is the same format.
 *
 * The file holds the meter's secret: it must be readable and writable by
 * its owner only (mode 0600 or 0400; anything for group or others is
 * refused), in a directory of the agent's user (mode 0700). Under systemd,
 * LoadCredential=uplink.key:... hands meterd a private copy in
 * $CREDENTIALS_DIRECTORY, which is preferred when present; that copy is
 * read-only, so rotations are refused while it is used.
 */
#ifndef GM_CREDENTIALS_H
#define GM_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gmproto.h"

#define CRED_PATH	320

struct uplink_credentials {
	uint16_t meter_id;
	struct gmp_keypair key;
	uint8_t town_pk[GMP_KEY_LEN];
	bool has_next_key;		/* meter_secret_key_next given */
	struct gmp_keypair next_key;
	bool has_next_town;		/* town_public_key_next given */
	uint8_t town_pk_next[GMP_KEY_LEN];
	bool read_only;			/* systemd's copy in $CREDENTIALS_DIRECTORY */
	char path[CRED_PATH];		/* the file actually read */
};

/* 0, or -1 with "path:line: key 'k': why" (or "path: why") in err. */
int credentials_load(struct uplink_credentials *c, const char *path, char *err, size_t errlen);
void credentials_wipe(struct uplink_credentials *c);

enum {
	CRED_REPLACE = 1u << 0,		/* replace an existing file (else: refused, EEXIST) */
};

/*
 * Write c (every key it has) to path, atomically: a temporary file in the
 * same directory (mode 0600, owned by uid:gid unless (uid_t)-1), written,
 * fsync'ed, renamed over path (linked to it without CRED_REPLACE, so an
 * existing file is never overwritten), then the directory fsync'ed. A
 * crash leaves the old file or the new one, never a mix. Returns 0 or
 * -errno with "path: why" in err (-EEXIST: the file exists).
 */
int credentials_write(const struct uplink_credentials *c, const char *path, unsigned int flags,
		      uid_t uid, gid_t gid, char *err, size_t errlen);

/*
 * Key rotations, for the uplink (Documentation/meterd.md, "Keys"). Each
 * changes c and rewrites c->path with credentials_write(); if the write
 * fails, c is left as it was and -errno returned with the reason in err.
 * All refuse (-EROFS) when c was read from $CREDENTIALS_DIRECTORY.
 *
 * Meter key: _begin generates the next key pair (meter_secret_key_next;
 * an existing one is kept, so a rotation interrupted by a restart resumes
 * with the key the town may already have) and *pk gets its public key,
 * to be sent to the town in a key-rotate record; _finish, once the town
 * acknowledged that record, makes it the key (the next handshake uses it).
 */
int credentials_meter_rotation_begin(struct uplink_credentials *c, uint8_t pk[GMP_KEY_LEN],
				     char *err, size_t errlen);
int credentials_meter_rotation_finish(struct uplink_credentials *c, char *err, size_t errlen);
/*
 * Town key: _begin stores the town's next public key (town-key command;
 * replaces an earlier next key); _finish makes it the town key (a WELCOME
 * came under it). -EINVAL if pk is not a usable X25519 public key.
 */
int credentials_town_rotation_begin(struct uplink_credentials *c, const uint8_t pk[GMP_KEY_LEN],
				    char *err, size_t errlen);
int credentials_town_rotation_finish(struct uplink_credentials *c, char *err, size_t errlen);
/* Whether the rotations can write c->path: 0, or -EROFS with why in err. */
int credentials_writable(const struct uplink_credentials *c, char *err, size_t errlen);
/* A town public key the meter's key pair can derive session keys with. */
bool credentials_town_key_usable(const struct gmp_keypair *meter, const uint8_t pk[GMP_KEY_LEN]);

#endif
