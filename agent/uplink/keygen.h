/* SPDX-License-Identifier: GPL-2.0 */
/*
 * meterd --generate-key --meter-id N --town-key HEX [-c CONF] [--force]
 * (Documentation/meterd.md, "Keys"): the meter makes its own X25519 key
 * pair and keeps the secret in its key file ([uplink] credentials of CONF,
 * default /etc/gridmeter/keys/uplink.key); only the public key is printed,
 * with the `townctl add` line that enrols the meter on the town server.
 *
 * The key file is written atomically with mode 0600 (credentials_write()),
 * never over an existing one without --force; its directory is created
 * with mode 0700 if missing. Run as root, file and created directory are
 * given to the agent's user (KEYGEN_USER), so that meterd can read the
 * key and rewrite the file for key rotations.
 */
#ifndef GM_KEYGEN_H
#define GM_KEYGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gmproto.h"

#define KEYGEN_USER	"gridmeter"	/* User= of meterd.service */

struct keygen_opts {
	bool generate;		/* --generate-key */
	const char *meter_id;	/* --meter-id N */
	const char *town_key;	/* --town-key HEX ('townctl pubkey' on the town server) */
	bool force;		/* --force: replace an existing key file */
};

/* Whether any key generation option was given (then keygen_main() runs). */
bool keygen_wanted(const struct keygen_opts *o);

/*
 * The whole command: checks the options, reads CONF (config_path) for the
 * key file's name, writes it, prints the public key and the townctl line
 * to out, errors to errf. Returns the exit status: 0, 1 (not written),
 * 2 (bad options), 78 (bad configuration).
 */
int keygen_main(const struct keygen_opts *o, const char *config_path, FILE *out, FILE *errf);

struct keygen_result {
	uint8_t pk[GMP_KEY_LEN];	/* the new public key */
	bool replaced;			/* an existing key file was replaced (force) */
	bool dir_created;
	char note[512];			/* a warning for the technician, or "" */
};

/*
 * Generate a key pair for meter_id and write the key file at path (its
 * directory created 0700 if missing). owner: the user to own the file and
 * a created directory (NULL: the caller). 0 or -errno with err; -EEXIST
 * when the file exists and !force. The secret is wiped from memory.
 */
int keygen_write(const char *path, uint16_t meter_id, const uint8_t town_pk[GMP_KEY_LEN],
		 bool force, const char *owner, struct keygen_result *res, char *err,
		 size_t errlen);

#endif
