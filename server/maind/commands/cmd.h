/* SPDX-License-Identifier: GPL-2.0 */
/*
 * maind's signed commands (Documentation/commands.md): the head end stores,
 * queues and follows commands that operators signed on their own machines
 * (lib/sign/gmcmd.h); it holds no operator secret and cannot make one.
 *
 * signed_commands: one row per command (per target), its signed bytes
 * (blob) as the operators made them, its state:
 *   awaiting-approval  a second operator's signature is needed (reason)
 *   queued             every signature it needs; in the town's command
 *                      queue (town_tseq set) or held by the disconnect
 *                      rate limit (town_tseq NULL, reason "held: ...")
 *   sent               maind pushed it to its town
 *   delivered          the town queued it for its meter (GMP_CMD_REPORT)
 *   executed | refused | expired   the target's (or the town's) verdict
 *   cancelled          withdrawn before it was sent
 * audit_log: append-only, hash-chained (cmd_audit.c).
 *
 * Everything here runs inside the caller's transaction unless said
 * otherwise; no global state.
 */
#ifndef MAIND_CMD_H
#define MAIND_CMD_H

#include <stdint.h>

#include "gmcmd.h"
#include "maind_config.h"
#include "maind_pg.h"

#define MCMD_AUDIT_HASH_LEN	32	/* SHA-256 */
#define MCMD_AUDIT_DOMAIN	"gridmeter audit v1"

struct mcmd_policy {
	uint32_t two_above;		/* gmc_policy.two_above */
	uint32_t disconnects_hour;	/* disconnects queued per rolling hour, system-wide */
};

void mcmd_policy_of(const struct maind_config *cfg, struct mcmd_policy *pol);

/* Append one audit row (audit_append() in SQL). 0 or -1 with p->err. */
int mcmd_audit(struct maind_pg *p, const char *actor, const char *what, const char *detail);

struct mcmd_audit_check {
	int64_t rows;				/* rows checked */
	int64_t bad_seq;			/* first bad row, 0: none */
	char why[200];
	uint8_t head[MCMD_AUDIT_HASH_LEN];	/* the last row's hash */
};

/* The hash of one row: SHA-256 over prev and the row's canonical bytes. */
void mcmd_audit_hash(const uint8_t prev[MCMD_AUDIT_HASH_LEN], int64_t seq, int64_t at_us,
		     const char *actor, const char *what, const char *detail,
		     uint8_t out[MCMD_AUDIT_HASH_LEN]);
/*
 * Recompute the whole chain in seq order: 0 intact, 1 broken (bad_seq and
 * why name the first bad row), -1 on a database error (p->err).
 */
int mcmd_audit_verify(struct maind_pg *p, struct mcmd_audit_check *out);

/*
 * Raise an alert (one open per key) and, when it is new, a notice to every
 * operator not revoked, and an audit row. town/meter < 0: none. 1 raised,
 * 0 already open, -1 error.
 */
int mcmd_alert(struct maind_pg *p, const char *rule, int town, int meter, const char *severity,
	       const char *summary, const char *evidence, const char *key);

/*
 * Look at every command not yet in a town's queue: verify its signed bytes
 * against the operators table (revoked keys refuse it and raise an alert),
 * keep it awaiting a second operator when the policy wants two, expire it,
 * hold disconnects over the hourly limit, else put it in its town's
 * command queue (a commands row of type GMP_SIGNED). Then the takeover
 * rules (mcmd_watch). now: UTC s. Count queued, or -1 with p->err.
 */
int mcmd_release(struct maind_pg *p, const struct mcmd_policy *pol, const char *actor,
		 int64_t now);
/* The command-pattern rules (Documentation/commands.md): alerts raised, or -1. */
int mcmd_watch(struct maind_pg *p, const struct mcmd_policy *pol);

/*
 * maind's periodic work for commands, in its own transaction: release held
 * commands when the hour allows, expire the waiting ones. 0 or -1.
 */
int mcmd_tick(struct maind_pg *p, const struct maind_config *cfg, int64_t now);

#endif
