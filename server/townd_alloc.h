/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Allocation inside a town (Documentation/townd.md, "Allocation"): pure
 * logic, no SQLite, no sockets, time passed in (UTC s).
 *
 * What a meter says and what it can apply (agent/uplink/town_uplink.c,
 * agent/uplink/town_commands.c):
 *  - alloc-request power_w > 0: "I need power_w more than the grid
 *    allocation I hold now"; power_w < 0: "|power_w| of what I hold is
 *    unused" (an offer); alloc-release: "what I hold covers me". Amounts
 *    are relative to the allocation in force at the meter.
 *  - a grant sets the meter's grid allocation to granted_w (absolute)
 *    until its `until`; then the meter goes back to its own
 *    [allocation] grid_allocation (here: base_w) by itself.
 * So the allocator keeps, per meter, a signed `want` relative to base_w
 * (want = what it holds from the town + power_w; > 0 asks, < 0 offers)
 * and decides a signed `grant` relative to base_w: 0..want for an asking
 * meter, -offer for a meter whose offer is taken into the pool. The grant
 * command carries base_w + grant.
 *
 * Pool = grid capacity (beyond the meters' own base allocations) +
 * borrowed - lent + offers taken. Offers are taken, whole and oldest
 * first, only while the grid part cannot cover what is asked. Requests
 * are served by priority class (from the request flags, GMP_AF_PRIO),
 * max-min fair inside a class (water-filling; watts left over by the
 * integer division go to the earliest requests). Hysteresis: a grant
 * moves to its fair share only when it differs by more than hysteresis_w,
 * when the share is all that is asked or nothing, or when the pool needs
 * it back; so grants do not flap with small changes.
 *
 * Invariants (tests/unit/townd_test_alloc.c checks them after every step):
 * sum of grants to asking meters <= pool; 0 <= grant <= want for an asking
 * meter; a class gets nothing while a higher one is not fully served; a
 * grant differs from its max-min share by at most hysteresis_w (unless it
 * was cut to fit the pool).
 */
#ifndef TOWND_ALLOC_H
#define TOWND_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gmproto.h"

#define TA_REASON_LEN	160
#define TA_PRIOS	4

/* Priority rank (higher is served first) of a request's flags. */
enum ta_rank { TA_DEFERRABLE = 0, TA_NORMAL = 1, TA_ESSENTIAL = 2, TA_CRITICAL = 3 };

struct ta_cfg {
	int64_t capacity_w;	/* grid capacity the town hands out beyond base allocations */
	int64_t base_w;		/* a meter's allocation without a grant (meterd's grid_allocation) */
	int64_t hysteresis_w;	/* a grant follows its fair share only beyond this */
	int64_t default_duration_s;	/* a request with duration 0 */
	int64_t max_duration_s;		/* longer requests are cut to this */
};

struct ta_entry {
	uint16_t meter;
	uint8_t rank;		/* enum ta_rank */
	bool taken;		/* an offer in the pool */
	bool touched;		/* a request/release arrived since the last decision */
	bool released;		/* ... and it was a release */
	int64_t req_id;		/* the meter's last request */
	int64_t want_w;		/* relative to base_w: > 0 asked, < 0 offered */
	int64_t since;		/* arrival of the current want (UTC s) */
	int64_t expires;	/* the want ends (arrival + duration) */
	int64_t grant_w;	/* decided and sent, relative to base_w */
	int64_t grant_until;	/* until of the grant sent; 0: none in force */
	int64_t target_w;	/* scratch: the max-min fair share */
	int64_t new_w;		/* scratch: the grant being decided */
};

enum ta_reason {
	TA_R_FULL,		/* all it asked */
	TA_R_FAIR,		/* its max-min share of a pool too small */
	TA_R_PRIORITY,		/* less: higher priority requests took the pool */
	TA_R_REDUCED,		/* cut back: the pool shrank or others came */
	TA_R_ASKED_LESS,	/* cut to what it asks now */
	TA_R_OFFER_TAKEN,	/* its offer went into the pool: its grant lowered */
	TA_R_OFFER_RETURNED,	/* its offer no longer needed: back to base */
	TA_R_RENEWED,		/* same amount, the request's new end */
	TA_R_KEPT,		/* unchanged (within hysteresis, or nothing to give) */
	TA_R_RELEASED,		/* a release ended a request that held nothing */
	TA_R_EXPIRED,		/* the request's end: the meter returns to base by itself */
	TA_R_SUPPLY,		/* the pool changed (capacity, loans): no meter */
	TA_R_COUNT
};

struct ta_decision {
	uint16_t meter;		/* 0 for TA_R_SUPPLY */
	int64_t req_id;
	int64_t want_w;
	int64_t old_w, new_w;	/* grants relative to base_w */
	int64_t until;
	bool send;		/* a grant command is due: base_w + new_w until `until` */
	enum ta_reason reason;
	char text[TA_REASON_LEN];
};

/* Figures of the last decision (townctl alloc; borrowing). */
struct ta_figures {
	int64_t capacity_w, borrowed_w, lent_w;
	int64_t asked_w;	/* sum of wants > 0 */
	int64_t offered_w;	/* sum of offers */
	int64_t taken_w;	/* offers in the pool */
	int64_t pool_w;		/* capacity + borrowed - lent + taken (>= 0) */
	int64_t granted_w;	/* sum of grants to asking meters */
	int64_t shortfall_w;	/* asked - (capacity + borrowed - lent) - offered, >= 0 */
	int64_t surplus_w;	/* capacity + borrowed - lent + offered - asked, >= 0 */
	size_t requests, offers;
};

struct townd_alloc {
	struct ta_cfg cfg;
	int64_t borrowed_w, lent_w;
	struct ta_entry *e;		/* sorted by meter */
	size_t n, cap;
	bool dirty;			/* something to decide */
	struct ta_figures fig;
	struct ta_decision *dec;	/* the last townd_alloc_decide()'s */
	size_t ndec, deccap;
	char supply_note[TA_REASON_LEN - 16];	/* a pool change to log with the next decision */
	/*
	 * The town is stopped (a signed GMC_TOWN_STOP, Documentation/townd.md
	 * "A stopped town"): nobody is cut, a grant in force runs to its end
	 * unchanged, a new request gets nothing beyond what the meter holds
	 * (its base allocation when it holds no grant).
	 */
	bool stopped;
};

/* The rank of a request's flags (GMP_AF_PRIO bits). */
enum ta_rank townd_alloc_rank(int64_t flags);
const char *townd_alloc_rank_name(unsigned int rank);
const char *townd_alloc_reason_name(enum ta_reason r);

void townd_alloc_init(struct townd_alloc *a, const struct ta_cfg *cfg);
void townd_alloc_free(struct townd_alloc *a);

/*
 * The pool's grid part. set_capacity: [town] grid_capacity_w, or what the
 * main server set by GMP_SUPPLY. set_borrowed: watts borrowed from other
 * towns now in force (part E). set_lent: watts lent to other towns now
 * (taken out of the pool). Each marks a decision due.
 */
void townd_alloc_set_capacity(struct townd_alloc *a, int64_t w);
void townd_alloc_set_borrowed(struct townd_alloc *a, int64_t w);
void townd_alloc_set_lent(struct townd_alloc *a, int64_t w);
/* Stopped or running again (marks a decision due). */
void townd_alloc_set_stopped(struct townd_alloc *a, bool stopped);

/*
 * What the town lacks / could spare, as of the last decision (call
 * townd_alloc_decide() first when townd_alloc_dirty()). Shortfall: what
 * must be borrowed for every request to be served in full, counting every
 * offer; surplus: what could be lent without cutting a grant.
 */
int64_t townd_alloc_shortfall(const struct townd_alloc *a);
int64_t townd_alloc_surplus(const struct townd_alloc *a);

/*
 * A stored alloc-request record of a meter, arrived at now. power_w is
 * relative to what the meter holds from the town (above). 0, -ENOMEM.
 */
int townd_alloc_request(struct townd_alloc *a, uint16_t meter, int64_t req_id, int64_t power_w,
			int64_t duration_s, int64_t flags, int64_t now);
/* A stored alloc-release. A release of another request than the last is stale: ignored. */
int townd_alloc_release(struct townd_alloc *a, uint16_t meter, int64_t req_id, int64_t now);

/* Restore an entry (townd's alloc_state table at start). 0, -ENOMEM, -EINVAL. */
int townd_alloc_restore(struct townd_alloc *a, const struct ta_entry *e);

/* A decision is due: something changed, or a request ends at or before now. */
bool townd_alloc_due(const struct townd_alloc *a, int64_t now);
/* The earliest end of a request (INT64_MAX: none). */
int64_t townd_alloc_next_expiry(const struct townd_alloc *a);

/*
 * Decide at now: expiries, offers taken or returned, grants. Fills a->dec
 * (a->ndec): one per meter whose grant changed or whose request arrived,
 * ended or was released, and one TA_R_SUPPLY when the pool changed. 0 or
 * -ENOMEM (nothing changed then).
 */
int townd_alloc_decide(struct townd_alloc *a, int64_t now);

/* The entry of a meter, or NULL. */
const struct ta_entry *townd_alloc_find(const struct townd_alloc *a, uint16_t meter);

/* Absolute watts for a grant command (base + relative, never below 0). */
int64_t townd_alloc_absolute(const struct townd_alloc *a, int64_t rel_w);

#endif
