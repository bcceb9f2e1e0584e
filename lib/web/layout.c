// SPDX-License-Identifier: GPL-2.0
/* The pages' common frame (layout.h). */
#include <string.h>

#include "layout.h"

void web_csrf_field(struct hbuf *b, const char *csrf)
{
	hb_raw(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
	hb_attr(b, csrf);
	hb_raw(b, "\">");
}

static void script(struct hbuf *b, const char *src)
{
	hb_raw(b, "<script defer src=\"");
	hb_attr(b, src);
	hb_raw(b, "\"></script>\n");
}

void web_page_begin(struct hbuf *b, const struct web_page *pg)
{
	const char *product = pg->product ? pg->product : "gridmeter";

	hb_raw(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		  "<meta name=\"color-scheme\" content=\"light\">\n<title>");
	if (pg->title && *pg->title) {
		hb_text(b, pg->title);
		hb_raw(b, " \xc2\xb7 ");	/* middle dot */
	}
	hb_text(b, product);
	hb_raw(b, "</title>\n<link rel=\"stylesheet\" href=\"/static/gm.css\">\n");
	if (pg->charts) {
		hb_raw(b, "<link rel=\"stylesheet\" href=\"/static/uPlot.min.css\">\n");
		script(b, "/static/uPlot.min.js");
	}
	script(b, "/static/gm.js");
	for (const char *const *s = pg->scripts; s && *s; s++)
		script(b, *s);
	hb_raw(b, "</head>\n<body");
	if (pg->live) {
		hb_raw(b, " data-live=\"");
		hb_attr(b, pg->live);
		hb_raw(b, "\"");
	}
	hb_raw(b, ">\n<a class=\"gm-skip\" href=\"#main\">Skip to content</a>\n"
		  "<header class=\"gm-header\">\n<a class=\"gm-product\" href=\"/\">");
	hb_text(b, product);
	hb_raw(b, "</a>\n");
	if (pg->nav && pg->nav->href) {
		hb_raw(b, "<nav class=\"gm-nav\" aria-label=\"Main\"><ul>\n");
		for (const struct web_nav *n = pg->nav; n->href; n++) {
			hb_raw(b, "<li><a href=\"");
			hb_attr(b, n->href);
			hb_raw(b, "\"");
			if (pg->current && !strcmp(pg->current, n->href))
				hb_raw(b, " aria-current=\"page\"");
			hb_raw(b, ">");
			hb_text(b, n->label);
			hb_raw(b, "</a></li>\n");
		}
		hb_raw(b, "</ul></nav>\n");
	}
	if (pg->user) {
		hb_raw(b, "<div class=\"gm-user\"><span class=\"gm-user-name\">");
		hb_text(b, pg->user);
		hb_raw(b, "</span>");
		if (pg->role_label) {
			hb_raw(b, " <span class=\"gm-user-role\">(");
			hb_text(b, pg->role_label);
			hb_raw(b, ")</span>");
		}
		if (pg->csrf) {
			hb_raw(b, "\n<form class=\"gm-logout\" method=\"post\" action=\"");
			hb_attr(b, pg->logout_action ? pg->logout_action : "/logout");
			hb_raw(b, "\">");
			web_csrf_field(b, pg->csrf);
			hb_raw(b, "<button type=\"submit\">Sign out</button></form>");
		}
		hb_raw(b, "</div>\n");
	}
	hb_raw(b, "</header>\n<main id=\"main\" tabindex=\"-1\">\n");
}

void web_page_end(struct hbuf *b, const struct web_page *pg)
{
	hb_raw(b, "</main>\n<footer class=\"gm-footer\"><p>");
	hb_text(b, pg->product ? pg->product : "gridmeter");
	hb_raw(b, "</p></footer>\n</body>\n</html>\n");
}
