// SPDX-License-Identifier: GPL-2.0
/* Lookup of the embedded static files (assets.h; the table is generated). */
#include <string.h>

#include "assets.h"

const struct web_asset *web_asset_find(const char *path)
{
	if (!path)
		return NULL;
	for (const struct web_asset *a = web_assets; a->path; a++)
		if (!strcmp(a->path, path))
			return a;
	return NULL;
}
