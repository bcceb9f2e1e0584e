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

#include <stdbool.h>
#include <stddef.h>
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

/* ---- storing what operators signed (cmd_submit.c) ------------------------------------
 *
 * The one path from signed commands to signed_commands, for mainctl (which
 * signs with the operator's key file) and the portal (whose pages have the
 * operator's browser sign): the same checks, rows, audit lines and release.
 * Each of mcmd_submit, mcmd_approve_load and mcmd_approve_store runs in a
 * transaction of its own (p must have none open) and returns
 *   0   done
 *   1   refused: why says why in words (the transaction rolled back; where
 *       said, the refusal is written to the audit log in one of its own)
 *  -1   a database error (p->err; rolled back)
 */
#define MCMD_OP_LEN		24
#define MCMD_TARGETS_MAX	100000	/* commands in one operation */

struct mcmd_target {
	uint16_t town, meter;	/* meter 0: the town's own action */
};

/* "TOWN:METER" (a meter's action) or "TOWN" (town_action): 0, or -1. */
int mcmd_target_parse(const char *s, bool town_action, struct mcmd_target *t);
/* Sort targets by town then meter: 0, or -1 with *dup the first given twice. */
int mcmd_targets_sort(struct mcmd_target *t, size_t n, struct mcmd_target *dup);

/*
 * The unsigned commands of one operation, one per target: random ids,
 * issued now, expiring now + life, batch n. 0, or -1 when a field is out
 * of range (action, target, life 1..GMC_LIFETIME_MAX, arg).
 */
int mcmd_prepare(struct gmc_cmd *c, const struct mcmd_target *t, size_t n, int action,
		 int64_t arg, int64_t now, int64_t life);

/*
 * Store one operation operator signed (c[0..n-1], each with its one
 * signature): one action, issued, expires, arg for all, batch n, distinct
 * targets and ids, a lifetime of 1..GMC_LIFETIME_MAX s not over at now,
 * issued no later than now + GMC_SKEW_S, every town known, every
 * signature by operator's registered key (a revoked key: "sign-refused"
 * audited and alerted; a signature that does not verify: "issue-refused"
 * audited). Then the rows (state awaiting-approval), an "issued" audit line
 * each, mcmd_release (what one signature allows is queued at once). The
 * operation's number into op.
 */
int mcmd_submit(struct maind_pg *p, const struct mcmd_policy *pol, const char *operator_name,
		const struct gmc_cmd *c, size_t n, int64_t now, char op[MCMD_OP_LEN],
		char *why, size_t whylen);

/*
 * An operation awaiting a second operator: its commands by id as stored
 * (one signature each), for the approver to sign (gmc_sign, or the
 * browser's signatures through gmc_add_signature) and hand to
 * mcmd_approve_store.
 */
struct mcmd_op {
	char op[MCMD_OP_LEN];
	size_t n;
	struct gmc_cmd *c;	/* n, malloc'd */
	int64_t expires;	/* UTC s */
	char what[300];		/* "disconnect, 12 targets, first signed by alice" */
};

void mcmd_op_free(struct mcmd_op *o);

/*
 * Load operation op for approver: refused ("approve-refused" audited) when
 * nothing of it awaits approval, when approver signed it already (a second,
 * different operator must approve), when a first signature does not verify
 * against ks (NULL: the operators table, named ks_name or "operators" in
 * words), or when its commands are not one signed intent (same action,
 * times, arg, first signer; as many as their batch). An approver whose key
 * is revoked is refused ("sign-refused" audited and alerted).
 */
int mcmd_approve_load(struct maind_pg *p, const struct mcmd_policy *pol,
		      const struct gmc_keyset *ks, const char *ks_name, const char *op,
		      const char *approver, int64_t now, struct mcmd_op *out, char *why,
		      size_t whylen);
/*
 * Store o's commands, each now carrying approver's signature as its
 * second: the operation must still be exactly what mcmd_approve_load gave
 * (checked again, the rows locked), every second signature must verify
 * against approver's registered key. Then the rows, an "approved" audit
 * line each, mcmd_release. Refusals as above.
 */
int mcmd_approve_store(struct maind_pg *p, const struct mcmd_policy *pol,
		       const struct gmc_keyset *ks, const char *ks_name, const struct mcmd_op *o,
		       const char *approver, int64_t now, char *why, size_t whylen);

/*
 * An operator whose key is revoked tried to sign: an audit line
 * ("sign-refused") and a critical alert, in a transaction of its own. 0 or -1.
 */
int mcmd_sign_refused(struct maind_pg *p, const char *name);

#endif
