// SPDX-License-Identifier: GPL-2.0
/*
 * The core's allocation hooks (townd_core.h): requests and releases as they
 * are stored, decisions in the batch's transaction or on the tick, grants
 * queued as commands through the outgoing table.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "townd_alloc_db.h"
#include "townd_core.h"

static const struct ta_cfg alloc_defaults = {
	.capacity_w = 0, .base_w = 10000, .hysteresis_w = 100,
	.default_duration_s = 900, .max_duration_s = 86400,
};

int townd_core_alloc_config(struct townd_core *c, const struct ta_cfg *cfg, char *err,
			    size_t errlen)
{
	townd_alloc_free(&c->alloc);
	townd_alloc_init(&c->alloc, cfg ? cfg : &alloc_defaults);
	if (tdb_alloc_load(&c->db, &c->alloc)) {
		snprintf(err, errlen, "allocation state: %s", sqlite3_errmsg(c->db.db));
		return -1;
	}
	return 0;
}

void townd_core_alloc_record(struct townd_core *c, uint16_t meter, const struct gmp_msg *g,
			     int64_t now)
{
	int rc = 0;

	if (g->type == GMP_ALLOC_REQ)
		rc = townd_alloc_request(&c->alloc, meter, g->alloc_req.req_id, g->alloc_req.power_w,
					 g->alloc_req.duration_s, g->alloc_req.flags, now);
	else if (g->type == GMP_ALLOC_REL)
		rc = townd_alloc_release(&c->alloc, meter, g->alloc_rel.req_id, now);
	if (rc)
		c->db_failed = true;	/* out of memory: nothing acknowledged, townd restarts */
}

void townd_core_set_capacity(struct townd_core *c, int64_t capacity_w)
{
	townd_alloc_set_capacity(&c->alloc, capacity_w);
	c->alloc_supply_set = true;
	c->alloc_supply_w = capacity_w;
}

int townd_core_alloc_decide(struct townd_core *c, int64_t now)
{
	struct townd_alloc *a = &c->alloc;

	if (c->alloc_supply_set) {
		if (tdb_alloc_set_supply(&c->db, c->alloc_supply_w, now))
			return -1;
		c->alloc_supply_set = false;
	}
	if (!townd_alloc_due(a, now))
		return 0;
	if (townd_alloc_decide(a, now) || tdb_alloc_save(&c->db, a, now))
		return -1;
	for (size_t i = 0; i < a->ndec; i++) {
		const struct ta_decision *d = &a->dec[i];

		if (d->send) {
			fprintf(stderr, "townd: allocation: meter %u: grant %" PRId64 " W until %"
				PRId64 " (%s: %s)\n", d->meter, townd_alloc_absolute(a, d->new_w),
				d->until, townd_alloc_reason_name(d->reason), d->text);
			/* to the meter now, not with whatever it sends next */
			townd_core_kick(c, d->meter);
		}
		else if (d->reason == TA_R_SUPPLY)
			fprintf(stderr, "townd: allocation: %s\n", d->text);
	}
	return 0;
}

int townd_core_alloc_tick(struct townd_core *c)
{
	int64_t now = c->clock_ms(c->clock_ctx) / 1000;
	bool prune = now - c->alloc_pruned_at >= 3600;

	if (c->db_failed)
		return -1;
	if (!prune && !c->alloc_supply_set && !townd_alloc_due(&c->alloc, now))
		return 0;
	if (tdb_begin(&c->db))
		return -1;
	if (townd_core_alloc_decide(c, now) ||
	    (prune && tdb_alloc_prune(&c->db, now - TDB_ALLOC_KEEP_S) < 0) ||
	    tdb_commit(&c->db)) {
		tdb_rollback(&c->db);
		return -1;
	}
	if (prune)
		c->alloc_pruned_at = now;
	return 0;
}
