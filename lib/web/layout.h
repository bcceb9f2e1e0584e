/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The pages' common frame: one visual language for the dashboard and the
 * portal (web/static/gm.css). A page is
 *   web_page_begin(b, &page);  ...sections...  web_page_end(b, &page);
 * which writes the doctype, <head> (title, viewport for phones, the
 * stylesheet, the scripts with defer), a skip link, the header with the
 * product name, the navigation (the current item marked aria-current) and
 * the signed-in user with a sign-out form, then <main id="main">. The page
 * writes its own <h1> (usually pg->title). /static/gm.js is always included.
 */
#ifndef GM_WEB_LAYOUT_H
#define GM_WEB_LAYOUT_H

#include <stdbool.h>

#include "html.h"

struct web_nav {
	const char *href, *label;
};

struct web_page {
	const char *title;		/* "Your meter" (escaped) */
	const char *product;		/* "gridmeter home" / "gridmeter utility portal" */
	const struct web_nav *nav;	/* NULL-terminated by href == NULL, or NULL */
	const char *current;		/* href of the current nav item */
	const char *user;		/* signed-in user or NULL */
	const char *role_label;		/* "household", "guest (read only)", ... or NULL */
	const char *csrf;		/* for the sign-out form; NULL: no form */
	const char *logout_action;	/* "/logout" */
	const char *const *scripts;	/* NULL-terminated list of /static/... scripts, or NULL */
	bool charts;			/* include uPlot (its script and stylesheet) */
	const char *live;		/* URL of the page's server-sent event stream
					 * (<body data-live="...">, read by gm.js), or NULL */
};

void web_page_begin(struct hbuf *b, const struct web_page *pg);
void web_page_end(struct hbuf *b, const struct web_page *pg);

/* A hidden CSRF field: <input type="hidden" name="csrf" value="..."> */
void web_csrf_field(struct hbuf *b, const char *csrf);

#endif
