/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The town server's commands to the meter (Documentation/protocol.md,
 * "Commands"), each handed over once and in order by the gmproto client,
 * each answered with a status the town server shows in `townctl commands`:
 *
 *   grant      the grid allocation until `until` (EXPIRED if that passed)
 *   tariff     the town's tariff at its effective time (UNSUPPORTED if the
 *              meter cannot represent it); one that waits for its time is
 *              kept in state_dir/tariff-next.conf, so that a restart or a
 *              power cut in between does not lose it
 *   town-key   the town server's next public key, written to the key file
 *              (the next handshake uses it)
 *
 * Uses the meter (agent/core) and the key file (credentials.h); reads no
 * clock (time passed in).
 */
#ifndef GM_TOWN_COMMANDS_H
#define GM_TOWN_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>

#include "credentials.h"
#include "gmproto.h"
#include "tariff.h"

struct meter;
struct meter_config;

#define TC_NEXT_FILE	"tariff-next.conf"

struct town_commands {
	struct meter *m;
	const struct meter_config *cfg;
	struct uplink_credentials *cred;
	struct tariff_spec next;	/* a tariff update waiting for its time */
	int64_t next_at, next_tseq;	/* UTC s; next_at 0: none waiting */
	int64_t grant_until;		/* UTC s; 0: no grant of the town server in force */
	bool keys_changed;		/* the key file changed: the owner reloads the client's keys */
};

/* Loads a tariff update left waiting by an earlier run (logged). */
void tc_init(struct town_commands *t, struct meter *m, const struct meter_config *cfg,
	     struct uplink_credentials *cred);
/* One command, in order, once: returns its enum gmp_cmd_status. */
int tc_command(struct town_commands *t, const struct gmp_msg *msg, int64_t now_s);
/* Tariffs whose time came, grants that expired. */
void tc_tick(struct town_commands *t, int64_t now_s);
/* The next time (UTC s) tc_tick() has something to do; INT64_MAX: none. */
int64_t tc_due(const struct town_commands *t);

#endif
