// SPDX-License-Identifier: GPL-2.0
/* maind detection: its tables, meters' alarms and towns' security counts (Documentation/detection.md). */
#include <stddef.h>

#include "maind_pg.h"

const char *const mdet_schema_sql[] = {
	NULL,
};

int mdet_store_alarm(struct maind_pg *p, uint16_t town, const struct gmp_msg *m)
{
	(void)p;
	(void)town;
	(void)m;
	return 0;
}

int mdet_store_security(struct maind_pg *p, uint16_t town, const struct gmp_msg *m)
{
	(void)p;
	(void)town;
	(void)m;
	return 0;
}

int mdet_tick(struct maind_pg *p, int64_t now)
{
	(void)p;
	(void)now;
	return 0;
}
