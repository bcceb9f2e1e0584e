// SPDX-License-Identifier: GPL-2.0
/* maind notices: its tables (Documentation/notices.md). */
#include <stddef.h>

#include "maind_pg.h"

const char *const mnotice_schema_sql[] = {
	NULL,
};
