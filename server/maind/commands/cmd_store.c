// SPDX-License-Identifier: GPL-2.0
/* maind signed commands: its tables and the towns' reports (Documentation/commands.md). */
#include <stddef.h>

#include "maind_pg.h"

const char *const mcmd_schema_sql[] = {
	NULL,
};

int mcmd_store_report(struct maind_pg *p, uint16_t town, const struct gmp_msg *m)
{
	(void)p;
	(void)town;
	(void)m;
	return 0;
}
