/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Borrowing between towns (Documentation/town-network.md): the protocol
 * logic alone. No sockets, no SQLite, no clock: the caller passes the time
 * in, hands received messages to townd_loans_recv(), calls
 * townd_loans_tick() about once a second, and carries out what the hooks
 * ask (send a message to a neighbour, report a loan to maind). State is
 * saved and restored as a byte string (townd_loans_save/restore) so that a
 * restarted town resumes its loans.
 *
 * Model. A loan is known end to end by (lender town, loan id). Between two
 * neighbours it is a "segment": the town nearer the lender lends, the other
 * borrows. A town that relays a loan for another holds one segment with
 * both neighbours (role RELAY), a lender and a borrower one each.
 *
 *   borrower --ASK-->   ... --ASK-->    lender     (records, up)
 *            <--OFFER-- ... <--OFFER--            (commands, down; reserved)
 *            --ACCEPT-> ... --ACCEPT->            (<= offered; 0 declines)
 *            <-CONFIRM- ... <-CONFIRM-            (open; repeated as keepalive)
 *            --HOLD-->  ... --HOLD-->             (keepalive)
 *            --RETURN-> ... / <--END-- ...        (the end, either side)
 *
 * Rules: a lender reserves before it offers, so the sum it has lent or
 * offered never exceeds its surplus; a borrower accepts at most what it
 * still wants and declines every other offer explicitly; an ask carries its
 * hop budget (default 3) and the path of towns it went through (no town
 * answers an ask whose path holds it); every wait has a timeout; an open
 * segment not heard of by its other end for lease_s is cancelled on both
 * sides, so a cut link ends its loans on both ends within the lease and
 * each town falls back to its own pool.
 *
 * Not thread-safe; one instance per town; nothing global.
 */
#ifndef TOWND_LOANS_H
#define TOWND_LOANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gmproto.h"

#define TOWND_LOANS_NEIGH_MAX	16	/* neighbours of one town */
#define TOWND_LOANS_REQ_MAX	32	/* asks being worked on (own and relayed) */
#define TOWND_LOANS_MAX		128	/* segments held (open, pending, ended recently) */
#define TOWND_LOANS_ID_SKIP	256	/* ids skipped on restore (see townd_loans_restore) */

struct townd_loans_cfg {
	uint16_t self;		/* this town's id, 1..65535 */
	int hop_limit;		/* hops an own ask may travel (1..GMP_LOAN_PATH_MAX), 3 */
	int64_t wait_s;		/* an own ask waits this long for answers, 30 */
	int64_t hop_slack_s;	/* each hop answers this much before its asker gives up, 5 */
	int64_t offer_ttl_s;	/* a lender holds a reservation this long, 20 */
	int64_t confirm_s;	/* an accept not confirmed within this is cancelled, 15 */
	int64_t refresh_s;	/* keepalive period of open loans, 30 */
	int64_t lease_s;	/* an open loan not heard of this long is cancelled, 90 */
	int64_t duration_s;	/* length of the loans this town asks for, 3600 */
	int64_t retry_s;	/* pause before asking again after an unanswered need, 30 */
	int64_t linger_s;	/* ended loans kept to answer late messages, 600 */
};

/* The defaults above for town self. */
void townd_loans_defaults(struct townd_loans_cfg *cfg, uint16_t self);

struct townd_loans_hooks {
	void *ctx;
	/*
	 * Send m to neighbour `to`: records (GMP_LOAN_ASK..RETURN, seq 0) go up
	 * this town's client session to that neighbour, commands
	 * (GMP_LOAN_OFFER..END, tseq 0) down that neighbour's session to this
	 * town's server. The transport numbers them (seq/tseq).
	 */
	void (*send)(void *ctx, uint16_t to, const struct gmp_msg *m);
	/* A GMP_LOAN record (seq 0) for maind: a loan opened or ended here. */
	void (*report)(void *ctx, const struct gmp_msg *loan);
	/*
	 * What this town could lend now: its own pool minus what its own
	 * meters request, never counting borrowed power, >= 0. The loans
	 * module subtracts what it has lent or reserved itself.
	 */
	int64_t (*surplus_w)(void *ctx, int64_t now);
	/* A one-line decision, for the journal (may be NULL). */
	void (*log)(void *ctx, const char *line);
};

enum townd_loan_role { TOWND_LOAN_LENDER = 1, TOWND_LOAN_RELAY, TOWND_LOAN_BORROWER };
enum townd_loan_phase {
	TOWND_LOAN_OFFERED = 1,	/* reserved (lender) or relayed, no accept yet */
	TOWND_LOAN_ACCEPTED,	/* accept sent down, waiting for the confirm */
	TOWND_LOAN_OPEN,
	TOWND_LOAN_ENDED,	/* see end */
};

/* One segment as this town sees it (townctl loans, tests). */
struct townd_loan_info {
	uint16_t lender;	/* end to end key: lender town ... */
	int64_t loan_id;	/* ... and its id */
	uint16_t origin;	/* the town the power is for */
	uint32_t req_id;	/* the origin's request */
	uint16_t up;		/* the neighbour we lend to (0: we are the borrower) */
	uint16_t down;		/* the neighbour we borrow from (0: we are the lender) */
	int role;		/* enum townd_loan_role */
	int phase;		/* enum townd_loan_phase */
	int end;		/* enum gmp_loan_state once ENDED */
	int64_t power_w, until;
	int64_t asked_at;	/* when the origin's ask reached us (origin: when made) */
	int64_t opened_at;	/* 0 if never open */
	int64_t ended_at;
};

struct townd_loans_neigh {
	uint16_t id;
	uint32_t cost;
	bool up;
};

struct townd_loans_req {
	bool used;
	uint16_t origin;
	uint32_t req_id;
	uint16_t from;		/* neighbour that asked us; 0: our own need */
	int64_t want_w;		/* still to find */
	int64_t duration_s;
	int hops;		/* hop budget of the asks we send */
	int npath;
	uint16_t path[GMP_LOAN_PATH_MAX];	/* ending with self */
	int64_t made;		/* when it reached us */
	int64_t deadline;	/* answer upward / give up by */
	uint16_t asking;	/* neighbour asked now, 0 none */
	int64_t ask_until;
	uint32_t tried;		/* bit i: neighbour i asked */
};

struct townd_loans_seg {
	bool used;
	uint8_t role, phase, end;
	uint16_t lender;
	int64_t loan_id;
	uint16_t origin;
	uint32_t req_id;
	uint16_t up, down;
	int64_t power_w, until;
	int64_t deadline;	/* OFFERED: reservation; ACCEPTED: confirm */
	int64_t heard_up, heard_down, kept;
	int64_t asked_at, opened_at, ended_at;
};

struct townd_loans {
	struct townd_loans_cfg cfg;
	struct townd_loans_hooks h;
	int nneigh;
	struct townd_loans_neigh neigh[TOWND_LOANS_NEIGH_MAX];	/* by cost, then id */
	struct townd_loans_req req[TOWND_LOANS_REQ_MAX];
	struct townd_loans_seg seg[TOWND_LOANS_MAX];
	uint32_t next_req;
	int64_t next_loan;
	int64_t need_w;		/* total the town wants to hold borrowed */
	int64_t retry_at;	/* no new own ask before */
	uint64_t changes;	/* bumped on every change worth saving */
	struct {		/* counters (stats) */
		uint64_t asks_sent, asks_recv, offers_sent, offers_recv, declined,
			 opened, returned, expired, cancelled, recalled, refused;
	} n;
};

int townd_loans_init(struct townd_loans *l, const struct townd_loans_cfg *cfg,
		     const struct townd_loans_hooks *h);
/* 0, -EEXIST (id twice or self), -ENOSPC, -EINVAL (id 0). */
int townd_loans_add_neighbour(struct townd_loans *l, uint16_t id, uint32_t cost);
/* The transport's view of a neighbour: session up or down. */
void townd_loans_link(struct townd_loans *l, uint16_t id, bool up, int64_t now);

/*
 * The total the town wants to hold borrowed (from the allocation: power
 * its meters request beyond its own pool, see below). Asks for what is
 * missing; returns loans when it holds more (whole loans, newest first).
 */
void townd_loans_need(struct townd_loans *l, int64_t watts, int64_t now);

/*
 * A message from neighbour `from` (authenticated by the transport).
 * 0 handled (including answers to stale messages), -ENOENT from a town
 * that is not a neighbour, -EPERM about a loan `from` is no party to,
 * -EPROTO a message type this module does not take, -EINVAL bad fields.
 */
int townd_loans_recv(struct townd_loans *l, uint16_t from, const struct gmp_msg *m, int64_t now);

/* Timeouts, keepalives, expiries, recalls, new asks. Call about once a second. */
void townd_loans_tick(struct townd_loans *l, int64_t now);

/* Open loans held as borrower (what the allocation may grant on top of its pool). */
int64_t townd_loans_borrowed_w(const struct townd_loans *l);
/* Open and reserved loans given as lender (out of the surplus). */
int64_t townd_loans_lent_w(const struct townd_loans *l);
/* Segments, the live ones first; returns how many there are (may exceed max). */
size_t townd_loans_list(const struct townd_loans *l, struct townd_loan_info *out, size_t max);

/*
 * Save the state (requests, segments, counters) into buf. Returns the
 * length, or -ENOSPC (TOWND_LOANS_SAVE_MAX always suffices).
 */
#define TOWND_LOANS_REQ_INTS	(11 + GMP_LOAN_PATH_MAX)
#define TOWND_LOANS_SEG_INTS	18
#define TOWND_LOANS_SAVE_MAX	(5 + 8 * (7 + TOWND_LOANS_REQ_MAX * TOWND_LOANS_REQ_INTS + \
					  TOWND_LOANS_MAX * TOWND_LOANS_SEG_INTS))
int townd_loans_save(const struct townd_loans *l, uint8_t *buf, size_t size);
/*
 * Restore a saved state into an instance freshly initialised with the same
 * self (neighbours added or not). Returns 0 or -EINVAL (not a state of this
 * town, truncated, out of range: nothing is changed then). Request and loan
 * ids continue TOWND_LOANS_ID_SKIP past the saved ones, so ids handed out
 * after the last save are never reused. Links start down.
 */
int townd_loans_restore(struct townd_loans *l, const uint8_t *buf, size_t len);

const char *townd_loan_role_name(int role);
const char *townd_loan_phase_name(int phase);

/*
 * What the glue in townd needs from the allocation (part C,
 * server/townd_alloc.h), called once a second before townd_loans_tick():
 *
 *   int64_t townd_alloc_shortfall(const struct townd_alloc *a);
 *       power its meters request beyond what it has to give
 *       (capacity + borrowed - lent + offers), >= 0;
 *   int64_t townd_alloc_surplus(const struct townd_alloc *a);
 *       what it could give away without cutting a grant, >= 0;
 *   void townd_alloc_set_borrowed(struct townd_alloc *a, int64_t w);
 *   void townd_alloc_set_lent(struct townd_alloc *a, int64_t w);
 *       townd_loans_borrowed_w() and townd_loans_lent_w().
 *
 * The glue passes need = max(0, borrowed + shortfall - surplus) to
 * townd_loans_need(), and its surplus_w hook returns
 * max(0, surplus - shortfall + lent - borrowed): the own pool less the
 * meters' requests. The town's own meters come first, so a loan the town
 * can no longer afford is recalled.
 */

#endif
