/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The meter's uplink credentials: the file `townctl provision ID` prints
 * (Documentation/townd.md), kept apart from meterd.conf because it holds
 * the meter's secret key:
 *
 *   meter_id = 101
 *   meter_secret_key = <64 hex digits>
 *   town_public_key = <64 hex digits>
 *
 * The file must not be readable by others (mode 0600 or 0640). Under
 * systemd, LoadCredential=uplink.key:... hands meterd a private copy in
 * $CREDENTIALS_DIRECTORY, which is preferred when present.
 */
#ifndef GM_CREDENTIALS_H
#define GM_CREDENTIALS_H

#include <stddef.h>
#include <stdint.h>

#include "gmproto.h"

struct uplink_credentials {
	uint16_t meter_id;
	struct gmp_keypair key;
	uint8_t town_pk[GMP_KEY_LEN];
	char path[320];		/* the file actually read */
};

/* 0, or -1 with "path:line: key 'k': why" (or "path: why") in err. */
int credentials_load(struct uplink_credentials *c, const char *path, char *err, size_t errlen);
void credentials_wipe(struct uplink_credentials *c);

#endif
