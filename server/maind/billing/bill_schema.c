// SPDX-License-Identifier: GPL-2.0
/* maind billing: its tables (Documentation/billing.md). */
#include <stddef.h>

#include "maind_pg.h"

const char *const mbill_schema_sql[] = {
	NULL,
};

int mbill_tick(struct maind_pg *p, int64_t now)
{
	(void)p;
	(void)now;
	return 0;
}
