/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The pages' static files, built into the daemons at build time
 * (scripts/web-assets.sh writes build/web/assets.c from web/static/ and
 * uPlot from the npm lock file): nothing is fetched at run time, by the
 * daemon or by the browser. Each file also kept gzip -9 compressed.
 */
#ifndef GM_WEB_ASSETS_H
#define GM_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *path;		/* "/static/gm.css" */
	const char *type;		/* "text/css; charset=utf-8" */
	const unsigned char *data;
	size_t len;
	const unsigned char *gz;	/* gzip form, or NULL when it is not smaller */
	size_t gz_len;
	const char *etag;		/* "\"sha256-prefix\"" */
};

const struct web_asset *web_asset_find(const char *path);
/* All assets, NULL-terminated by path == NULL (tests, page weight). */
extern const struct web_asset web_assets[];

#endif
