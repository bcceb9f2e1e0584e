/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Dual-source allocation: serve the house's demand from the grid allocation
 * granted by the town server first, then from the renewable source; request
 * the remaining deficit, offer unused allocation back, and shed non-critical
 * loads (in configured priority order) while a deficit is not covered,
 * restoring them with hysteresis. Pure logic, time passed in (ms).
 */
#ifndef GM_ALLOC_H
#define GM_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALLOC_MAX_LOADS	8
#define ALLOC_NAME_LEN	32

struct alloc_load {
	char name[ALLOC_NAME_LEN];
	uint32_t load_w;	/* nominal load behind the relay */
	bool shed;
	/*
	 * Loads switched from outside meterd (smart plugs through the MQTT
	 * bridge) also report; GPIO relays keep the defaults (-1, true) and
	 * decide exactly as before. measured_w: the draw while on, -1 unknown;
	 * a shed then counts what it really frees. !reachable: the switch
	 * cannot be driven now, so the load is neither shed nor restored.
	 */
	int32_t measured_w;
	bool reachable;
};

struct alloc_cfg {
	uint32_t restore_margin_w;	/* headroom needed beyond the load to restore it */
	uint32_t restore_delay_ms;	/* ...continuously for this long */
	uint32_t settle_ms;		/* after a shed, wait this long before shedding more */
};

struct alloc {
	struct alloc_cfg cfg;
	size_t nloads;
	struct alloc_load load[ALLOC_MAX_LOADS];	/* index 0 is shed first */
	int64_t headroom_since_ms;	/* -1: not enough headroom to restore */
	int64_t last_shed_ms;
};

struct alloc_input {
	int64_t now_ms;
	int64_t grant_w;	/* grid allocation granted by the town server */
	int64_t measured_w;	/* house demand as measured (grid import + renewable - export) */
	int64_t declared_w;	/* requirements declared by smart appliances, not yet running */
	int64_t renew_avail_w;	/* power the renewable source can deliver */
};

enum alloc_action { ALLOC_NONE, ALLOC_SHED, ALLOC_RESTORE };

struct alloc_decision {
	int64_t demand_w;	/* measured + declared */
	int64_t from_grid_w;
	int64_t from_renew_w;
	int64_t deficit_w;	/* demand not covered now */
	int64_t request_w;	/* asked of the town server: deficit including shed loads */
	int64_t surplus_w;	/* grid allocation offered back */
	enum alloc_action action;
	uint32_t changed_mask;	/* bit i: load i changed state in this step */
	char reason[160];
};

void alloc_init(struct alloc *a, const struct alloc_cfg *cfg);
int alloc_add_load(struct alloc *a, const char *name, uint32_t load_w);
/* One decision step. Returns 1 if any relay changed state, 0 otherwise. */
int alloc_step(struct alloc *a, const struct alloc_input *in, struct alloc_decision *d);
int64_t alloc_shed_w(const struct alloc *a);
/* What an external switch reported for load i: 0, or -EINVAL for no such load. */
int alloc_set_report(struct alloc *a, size_t i, bool reachable, int32_t measured_w);

#endif
