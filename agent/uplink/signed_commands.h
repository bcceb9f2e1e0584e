/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Operator-signed commands at the meter (Documentation/meterd.md, "Signed
 * commands"): GMP_SIGNED from the town server carries the operators' bytes
 * (lib/sign/gmcmd.h) unchanged; the meter itself verifies them against the
 * operator keys provisioned at enrolment ([commands] operator_keys), for
 * this meter of this town ([commands] town and the key file's meter_id), so
 * that neither the town server nor a forwarding neighbour can forge, alter
 * or replay one. In order:
 *
 *   decode (INVALID) -> gmc_verify (WRONG_TARGET, NOT_YET, EXPIRED,
 *   UNKNOWN_KEY, BAD_SIG, NEED_TWO) -> the meter's clock trusted (else
 *   REFUSED, see below) -> replay memory (REPLAY) -> the id added to the
 *   memory and the memory saved with fsync (else STORAGE: not executed, the
 *   town resends) -> executed -> OK, or REFUSED if the meter could not do it
 *
 *   disconnect  the main relay opens (meter_disconnect, "operators A+B")
 *   reconnect   armed: the relay stays open until the customer confirms at
 *               the meter (meter_arm_reconnect), as a D-Bus reconnect
 *   rekey       the meter starts a key rotation (like D-Bus RotateKey): the
 *               uplink, which owns the key file and the outbox, sees
 *               `rekey` set and calls town_uplink_rotate_key()
 *
 * A meter whose clock is not trusted refuses every signed command that
 * verifies (REFUSED, not remembered: the same file can be sent again once
 * the clock is trusted): it cannot tell an expired command from a live one,
 * and running a stale disconnect is worse than asking the operators to send
 * it again.
 *
 * Every signed command is logged once, with its signers and its outcome,
 * and the last SC_RECENT are kept for D-Bus (Uplink1.SignedCommands).
 * Without operator keys every signed command is refused (UNKNOWN_KEY).
 * Reads no clock (time passed in).
 */
#ifndef GM_SIGNED_COMMANDS_H
#define GM_SIGNED_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>

#include "credentials.h"
#include "gmcmd.h"
#include "gmproto.h"
#include "seen.h"

struct meter;
struct meter_config;

#define SC_SEEN_FILE	"signed-commands.seen"
#define SC_RECENT	8

struct sc_recent {
	uint64_t id;
	int64_t at;			/* the meter's UTC s when it was handled */
	char action[16];		/* gmc_action_name(), "invalid" if undecodable */
	char signers[2 * GMC_NAME_MAX + 2];	/* "alice+bob" (unknown keys as hex) */
	int status;			/* enum gmp_cmd_status */
};

struct signed_commands {
	struct meter *m;
	const struct meter_config *cfg;
	const struct uplink_credentials *cred;
	struct gmc_keyset keys;		/* n 0: none (every command UNKNOWN_KEY) */
	struct gmc_policy pol;
	struct gmc_seen seen;
	char seen_path[300];
	/* the replay memory could not be read: refused until everything it can hold expired */
	bool seen_bad;
	int64_t seen_bad_until;		/* UTC s; 0: not known yet (the file's time) */
	bool rekey;			/* a verified rekey: the owner starts the rotation, clears it */
	struct sc_recent recent[SC_RECENT];	/* newest first */
	unsigned int nrecent;
	uint64_t handled;		/* signed commands seen (refused ones too) */
};

/*
 * Load the operator keys and the replay memory. 0, or -1 with err naming
 * the file and line (the configuration's line of operator_keys and the key
 * file's line); the commands are then refused (UNKNOWN_KEY, or REFUSED
 * while the replay memory is unreadable) but s is usable.
 */
int sc_init(struct signed_commands *s, struct meter *m, const struct meter_config *cfg,
	    const struct uplink_credentials *cred, char *err, size_t errlen);
/* A GMP_SIGNED command, in order, once: its enum gmp_cmd_status. */
int sc_command(struct signed_commands *s, const struct gmp_msg *msg, bool clock_trusted,
	       int64_t now_s);

#endif
