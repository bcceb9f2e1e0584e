// SPDX-License-Identifier: GPL-2.0
/*
 * maind-portal: a customer's own pages (Documentation/portal.md
 * "Customers").
 *
 *   /bills                 their bills, newest first (the running one too)
 *   /bills/ID              one bill: its lines, energy, total, its letter
 *   /bills/ID/letter.pdf   the bill's letter, rendered now from its notice
 *                          (notices/notice_letter.c, as maind-notify prints it)
 *   /usage                 graphs from meter_hours: a day by hour, a month by
 *                          day, a year by month (never finer than hourly),
 *                          in the local time of their tariff plan
 *   /notices               how notices reach them and every notice sent
 *   /alerts                alerts about their meter they were told about
 *
 * Isolation: every statement here has the session's customer id as a
 * parameter in its WHERE clause (or joins through a row that has it), so a
 * bill, notice or hour of another customer is never read, whatever the URL
 * says: another customer's bill number gives the same 404 as a number that
 * does not exist. A customer record is one household at one meter for one
 * time (since, until): hours outside it are not theirs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notice_letter.h"
#include "portal.h"

/* The customer as the pages show them. */
struct cust {
	char id[24];
	char name[128];
	char currency[8];
	char tz[64];
	int town, meter;
};

#define CUST_SQL \
	"SELECT cu.name, coalesce(tp.currency, ''), coalesce(tp.tz, 'UTC'), cu.town, cu.meter " \
	"FROM customers cu LEFT JOIN tariff_plans tp ON tp.name = cu.tariff WHERE cu.id = $1::integer"

/* 1 found, 0 not (the account's customer was removed), -1 error. */
static int cust_load(struct portal_req *q, struct cust *c)
{
	const char *v[1] = { c->id };
	PGresult *r;

	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%lld", (long long)q->s.subject);
	r = mpg_query(q->db, CUST_SQL, 1, v);
	if (!r)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return 0;
	}
	snprintf(c->name, sizeof(c->name), "%s", PQgetvalue(r, 0, 0));
	snprintf(c->currency, sizeof(c->currency), "%s",
		 *PQgetvalue(r, 0, 1) ? PQgetvalue(r, 0, 1) : q->app->currency);
	snprintf(c->tz, sizeof(c->tz), "%s", PQgetvalue(r, 0, 2));
	c->town = atoi(PQgetvalue(r, 0, 3));
	c->meter = atoi(PQgetvalue(r, 0, 4));
	PQclear(r);
	return 1;
}

static int64_t gl(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Energy in mWh as kWh with three decimals (to the Wh, half away from zero). */
static void hb_kwh(struct hbuf *b, int64_t mwh)
{
	hb_milli(b, mwh >= 0 ? (mwh + 500) / 1000 : -((-mwh + 500) / 1000), 3, "kWh");
}

static void hb_minor(struct hbuf *b, int64_t minor, const char *currency)
{
	hb_money(b, minor * 1000, currency);
}

static struct web_resp *page_done(struct hbuf *b)
{
	struct web_resp *resp = web_resp_html(200, b);

	hb_free(b);
	return resp;
}

static struct web_resp *fail(struct portal_req *q, struct hbuf *b, PGresult *r, const char *what)
{
	PQclear(r);
	hb_free(b);
	return portal_db_error(q, what);
}

static void who_line(struct hbuf *b, const struct cust *c)
{
	hb_printf(b, "<p class=\"gm-hint\">");
	hb_text(b, c->name);
	hb_printf(b, " &middot; meter %d of town %d</p>\n", c->meter, c->town);
}

/* ---- bills -------------------------------------------------------------------------------- */

static struct web_resp *bills_list(struct portal_req *q, const struct cust *c)
{
	const char *v[1] = { c->id };
	struct hbuf b;
	PGresult *r;

	r = mpg_query(q->db, "SELECT id, month, state, "
		      "to_char(period_start AT TIME ZONE $2, 'YYYY-MM-DD'), "
		      "to_char((period_end AT TIME ZONE $2) - interval '1 day', 'YYYY-MM-DD'), "
		      "import_mwh, export_mwh, total_minor, est_hours, "
		      "to_char(rated_upto AT TIME ZONE $2, 'YYYY-MM-DD HH24:MI') "
		      "FROM bills WHERE customer = $1::integer ORDER BY period_start DESC LIMIT 120",
		      2, (const char *const[]){ v[0], c->tz });
	hb_init(&b);
	if (!r)
		return fail(q, &b, NULL, "bills");
	portal_page_begin(q, &b, "Your bills", "/bills", false);
	hb_raw(&b, "<h1>Your bills</h1>\n");
	who_line(&b, c);
	if (!PQntuples(r)) {
		hb_raw(&b, "<p>No bill yet: the first comes after your first month.</p>\n");
	} else {
		hb_raw(&b, "<div class=\"gm-table-wrap\"><table class=\"gm-table\" id=\"bills\">\n"
		       "<caption>Bills, newest first</caption>\n<thead><tr><th scope=\"col\">Month"
		       "</th><th scope=\"col\">Period</th><th scope=\"col\" class=\"gm-num\">Imported"
		       "</th><th scope=\"col\" class=\"gm-num\">Exported</th><th scope=\"col\" "
		       "class=\"gm-num\">Total</th><th scope=\"col\">State</th></tr></thead>\n<tbody>\n");
		for (int i = 0; i < PQntuples(r); i++) {
			int month = atoi(PQgetvalue(r, i, 1));
			bool issued = !strcmp(PQgetvalue(r, i, 2), "issued");

			hb_printf(&b, "<tr data-bill=\"%lld\"><th scope=\"row\"><a href=\"/bills/%lld\">"
				  "%04d-%02d</a></th><td>", (long long)gl(r, i, 0),
				  (long long)gl(r, i, 0), month / 100, month % 100);
			hb_text(&b, PQgetvalue(r, i, 3));
			hb_raw(&b, " to ");
			hb_text(&b, PQgetvalue(r, i, 4));
			hb_raw(&b, "</td><td class=\"gm-num\">");
			hb_kwh(&b, gl(r, i, 5));
			hb_raw(&b, "</td><td class=\"gm-num\">");
			hb_kwh(&b, gl(r, i, 6));
			hb_raw(&b, "</td><td class=\"gm-num\" data-total-minor=\"");
			hb_printf(&b, "%lld\">", (long long)gl(r, i, 7));
			hb_minor(&b, gl(r, i, 7), c->currency);
			hb_raw(&b, "</td><td>");
			if (issued) {
				hb_raw(&b, "issued");
			} else {
				hb_raw(&b, "running (so far");
				if (!PQgetisnull(r, i, 9)) {
					hb_raw(&b, ", to ");
					hb_text(&b, PQgetvalue(r, i, 9));
				}
				hb_raw(&b, ")");
			}
			hb_raw(&b, "</td></tr>\n");
		}
		hb_raw(&b, "</tbody></table></div>\n");
	}
	PQclear(r);
	portal_page_end(q, &b);
	return page_done(&b);
}

static struct web_resp *bill_letter(struct portal_req *q, const struct cust *c, const char *id)
{
	const char *v[2] = { id, c->id };
	struct letter_in in = { 0 };
	struct web_resp *resp;
	unsigned char *pdf;
	unsigned pages;
	char disp[96];
	size_t len;
	PGresult *r;

	/* the bill's notice, only when the bill is this customer's */
	r = mpg_query(q->db, "SELECT n.id, extract(epoch FROM n.created)::bigint, n.subject, n.body, "
		      "cu.name, cu.address FROM notices n JOIN bills b ON b.id = n.ref "
		      "JOIN customers cu ON cu.id = n.customer WHERE n.kind = 'bill' AND "
		      "n.ref = $1::bigint AND b.customer = $2::integer AND n.customer = $2::integer "
		      "ORDER BY n.id LIMIT 1", 2, v);
	if (!r)
		return portal_db_error(q, "letter");
	if (!PQntuples(r)) {
		PQclear(r);
		return web_resp_error(404, "This bill has no letter (a running bill gets one when "
				      "it is issued).");
	}
	in.notice = gl(r, 0, 0);
	in.date = gl(r, 0, 1);
	in.subject = PQgetvalue(r, 0, 2);
	in.body = PQgetvalue(r, 0, 3);
	in.to_name = PQgetvalue(r, 0, 4);
	in.address = PQgetvalue(r, 0, 5);
	in.sender = q->app->cfg->portal_sender;
	pdf = letter_pdf(&in, &len, &pages);
	PQclear(r);
	if (!pdf)
		return web_resp_error(500, "The letter could not be made. Please try again later.");
	resp = web_resp_bytes(200, "application/pdf", pdf, len, true);
	free(pdf);
	snprintf(disp, sizeof(disp), "inline; filename=\"bill-%s.pdf\"", id);
	if (resp)
		web_resp_header(resp, "Content-Disposition", disp);
	return resp;
}

static struct web_resp *bill_detail(struct portal_req *q, const struct cust *c, int64_t bill,
				    const char *rest)
{
	char id[24];
	const char *v[3] = { id, c->id, c->tz };
	struct hbuf b;
	PGresult *r, *l;
	bool issued;
	int month;

	snprintf(id, sizeof(id), "%lld", (long long)bill);
	if (!strcmp(rest, "/letter.pdf"))
		return bill_letter(q, c, id);
	if (*rest)
		return web_resp_error(404, "There is no such page.");
	r = mpg_query(q->db, "SELECT month, state, to_char(period_start AT TIME ZONE $3, "
		      "'YYYY-MM-DD'), to_char((period_end AT TIME ZONE $3) - interval '1 day', "
		      "'YYYY-MM-DD'), import_mwh, export_mwh, renew_mwh, hours, est_hours, "
		      "total_minor, to_char(issued_at AT TIME ZONE $3, 'YYYY-MM-DD'), plan, "
		      "to_char(rated_upto AT TIME ZONE $3, 'YYYY-MM-DD HH24:MI') "
		      "FROM bills WHERE id = $1::bigint AND customer = $2::integer", 3, v);
	if (!r)
		return portal_db_error(q, "bill");
	if (!PQntuples(r)) {
		PQclear(r);
		return web_resp_error(404, "There is no such bill among yours.");
	}
	l = mpg_query(q->db, "SELECT l.no, l.kind, l.text, l.amount_minor FROM bill_lines l "
		      "JOIN bills b ON b.id = l.bill WHERE l.bill = $1::bigint AND "
		      "b.customer = $2::integer ORDER BY l.no", 2, v);
	hb_init(&b);
	if (!l)
		return fail(q, &b, r, "bill lines");
	month = atoi(PQgetvalue(r, 0, 0));
	issued = !strcmp(PQgetvalue(r, 0, 1), "issued");
	portal_page_begin(q, &b, "Bill", "/bills", false);
	hb_printf(&b, "<h1>Bill %s for %04d-%02d</h1>\n", id, month / 100, month % 100);
	who_line(&b, c);
	hb_raw(&b, "<dl class=\"gm-facts\" id=\"bill-facts\">\n<dt>Period</dt><dd>");
	hb_text(&b, PQgetvalue(r, 0, 2));
	hb_raw(&b, " to ");
	hb_text(&b, PQgetvalue(r, 0, 3));
	hb_raw(&b, "</dd>\n<dt>Tariff</dt><dd>");
	hb_text(&b, PQgetvalue(r, 0, 11));
	hb_raw(&b, "</dd>\n<dt>State</dt><dd>");
	if (issued) {
		hb_raw(&b, "issued ");
		hb_text(&b, PQgetvalue(r, 0, 10));
	} else {
		hb_raw(&b, "running: the amounts so far");
		if (!PQgetisnull(r, 0, 12)) {
			hb_raw(&b, ", up to ");
			hb_text(&b, PQgetvalue(r, 0, 12));
		}
	}
	hb_raw(&b, "</dd>\n<dt>Imported</dt><dd>");
	hb_kwh(&b, gl(r, 0, 4));
	hb_raw(&b, "</dd>\n<dt>Exported</dt><dd>");
	hb_kwh(&b, gl(r, 0, 5));
	hb_raw(&b, "</dd>\n<dt>From renewable sources</dt><dd>");
	hb_kwh(&b, gl(r, 0, 6));
	hb_printf(&b, "</dd>\n<dt>Hours</dt><dd>%lld measured, %lld estimated</dd>\n",
		  (long long)(gl(r, 0, 7) - gl(r, 0, 8)), (long long)gl(r, 0, 8));
	hb_printf(&b, "<dt>Total</dt><dd class=\"gm-total\" data-total-minor=\"%lld\">",
		  (long long)gl(r, 0, 9));
	hb_minor(&b, gl(r, 0, 9), c->currency);
	hb_raw(&b, "</dd>\n</dl>\n");
	if (PQntuples(l)) {
		int64_t sum = 0;

		hb_raw(&b, "<div class=\"gm-table-wrap\"><table class=\"gm-table\" id=\"bill-lines\">\n"
		       "<caption>The bill's lines</caption>\n<thead><tr><th scope=\"col\">Line</th>"
		       "<th scope=\"col\" class=\"gm-num\">Amount</th></tr></thead>\n<tbody>\n");
		for (int i = 0; i < PQntuples(l); i++) {
			hb_printf(&b, "<tr data-kind=\"%lld\"><td>", (long long)gl(l, i, 1));
			hb_text(&b, PQgetvalue(l, i, 2));
			hb_printf(&b, "</td><td class=\"gm-num\" data-minor=\"%lld\">",
				  (long long)gl(l, i, 3));
			hb_minor(&b, gl(l, i, 3), c->currency);
			hb_raw(&b, "</td></tr>\n");
			sum += gl(l, i, 3);
		}
		hb_raw(&b, "</tbody>\n<tfoot><tr><th scope=\"row\">Total</th><td class=\"gm-num\">");
		hb_minor(&b, sum, c->currency);
		hb_raw(&b, "</td></tr></tfoot></table></div>\n");
	} else {
		hb_raw(&b, "<p>The lines are written when the bill is issued, after the month's "
		       "end.</p>\n");
	}
	if (issued)
		hb_printf(&b, "<p><a class=\"gm-button\" href=\"/bills/%s/letter.pdf\" "
			  "id=\"letter\">The letter (PDF)</a></p>\n", id);
	hb_raw(&b, "<p><a href=\"/bills\">All your bills</a></p>\n");
	PQclear(l);
	PQclear(r);
	portal_page_end(q, &b);
	return page_done(&b);
}

/* ---- usage graphs -------------------------------------------------------------------------- */

enum view { V_DAY, V_MONTH, V_YEAR };

static const struct {
	const char *name, *bucket, *span, *title, *col;
} views[] = {
	[V_DAY] = { "day", "hour", "1 day", "by hour", "Hour" },
	[V_MONTH] = { "month", "day", "1 month", "by day", "Day" },
	[V_YEAR] = { "year", "month", "1 year", "by month", "Month" },
};

/* "YYYY-MM-DD" into tm (a real date, years 2000..2999); 0 or -1. */
static int parse_date(const char *s, struct tm *tm)
{
	int y, m, d, n = 0;
	struct tm t = { 0 };
	time_t tt;

	if (!s || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || s[n] || y < 2000 ||
	    y > 2999 || m < 1 || m > 12 || d < 1 || d > 31)
		return -1;
	t.tm_year = y - 1900;
	t.tm_mon = m - 1;
	t.tm_mday = d;
	tt = timegm(&t);
	gmtime_r(&tt, tm);
	return tm->tm_mday == d ? 0 : -1;
}

static void fmt_date(char *out, size_t len, const struct tm *tm)
{
	snprintf(out, len, "%04d-%02d-%02d", tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday);
}

/* The first day of the view's period containing tm, moved by `step` periods. */
static void period_start(struct tm *tm, enum view v, int step)
{
	time_t tt;

	if (v == V_DAY)
		tm->tm_mday += step;
	if (v >= V_MONTH) {
		tm->tm_mday = 1;
		tm->tm_mon += v == V_MONTH ? step : 0;
	}
	if (v == V_YEAR) {
		tm->tm_mon = 0;
		tm->tm_year += step;
	}
	tm->tm_hour = 12;	/* timegm normalises; no zone involved */
	tt = timegm(tm);
	gmtime_r(&tt, tm);
}

static void view_link(struct hbuf *b, enum view v, const struct tm *tm, const char *label,
		      const char *rel)
{
	char d[40];

	fmt_date(d, sizeof(d), tm);
	hb_printf(b, "<a href=\"/usage?view=%s&amp;date=%s\"%s%s%s>", views[v].name, d,
		  rel ? " rel=\"" : "", rel ? rel : "", rel ? "\"" : "");
	hb_text(b, label);
	hb_raw(b, "</a>");
}

static void label_of(char *out, size_t len, enum view v, const struct tm *tm)
{
	static const char *const mon[] = { "January", "February", "March", "April", "May", "June",
					   "July", "August", "September", "October", "November",
					   "December" };

	if (v == V_DAY)
		fmt_date(out, len, tm);
	else if (v == V_MONTH)
		snprintf(out, len, "%s %d", mon[tm->tm_mon], tm->tm_year + 1900);
	else
		snprintf(out, len, "%d", tm->tm_year + 1900);
}

static struct web_resp *usage(struct portal_req *q, const struct cust *c)
{
	const char *vname = web_query(q->r, "view"), *date = web_query(q->r, "date");
	char start[48], d[40], label[48], prev_l[48], next_l[48];
	enum view v = V_DAY;
	struct tm tm, prev, next;
	int64_t tot[3] = { 0 };
	bool any_export = false;
	struct hbuf b;
	PGresult *r;
	int n;

	if (vname) {
		for (v = V_DAY; v <= V_YEAR && strcmp(vname, views[v].name); v++)
			;
		if (v > V_YEAR)
			return web_resp_error(400, "The view is one of day, month or year.");
	}
	if (date && parse_date(date, &tm))
		return web_resp_error(400, "The date is YYYY-MM-DD.");
	if (!date) {	/* the newest day with readings, else today (their local time) */
		r = mpg_query(q->db, "SELECT to_char(coalesce(max(h.hour), now()) AT TIME ZONE $2, "
			      "'YYYY-MM-DD') FROM customers cu, meter_hours h WHERE cu.id = $1::integer "
			      "AND h.town = cu.town AND h.meter = cu.meter AND h.hour >= cu.since AND "
			      "h.hour < coalesce(cu.until, 'infinity')", 2,
			      (const char *const[]){ c->id, c->tz });
		if (!r)
			return portal_db_error(q, "usage");
		n = parse_date(PQgetvalue(r, 0, 0), &tm);
		PQclear(r);
		if (n)
			return portal_db_error(q, "usage date");
	}
	period_start(&tm, v, 0);
	prev = tm;
	next = tm;
	period_start(&prev, v, -1);
	period_start(&next, v, 1);
	fmt_date(d, sizeof(d), &tm);
	snprintf(start, sizeof(start), "%s 00:00", d);
	/*
	 * Buckets of the customer's local time (their plan's zone): x is the
	 * bucket's start in UTC s. Only the customer's meter during their time.
	 */
	r = mpg_query(q->db,
		"WITH c AS (SELECT cu.town, cu.meter, cu.since, coalesce(cu.until, 'infinity') AS "
		"until FROM customers cu WHERE cu.id = $1::integer), "
		"p AS (SELECT ($2::timestamp AT TIME ZONE $5) AS t0, "
		"(($2::timestamp + $4::interval) AT TIME ZONE $5) AS t1) "
		"SELECT extract(epoch FROM date_trunc($3, h.hour AT TIME ZONE $5) AT TIME ZONE $5)"
		"::bigint, to_char(date_trunc($3, h.hour AT TIME ZONE $5), $6), sum(h.import_mwh), "
		"sum(h.export_mwh), sum(h.renew_mwh), count(DISTINCT h.hour) "
		"FROM c, p, meter_hours h WHERE h.town = c.town AND h.meter = c.meter AND "
		"h.hour >= greatest(p.t0, c.since) AND h.hour < least(p.t1, c.until) "
		"GROUP BY 1, 2 ORDER BY 1", 6,
		(const char *const[]){ c->id, start, views[v].bucket, views[v].span, c->tz,
				       v == V_DAY ? "HH24:MI" : v == V_MONTH ? "YYYY-MM-DD" :
				       "YYYY-MM" });
	hb_init(&b);
	if (!r)
		return fail(q, &b, NULL, "usage");
	label_of(label, sizeof(label), v, &tm);
	label_of(prev_l, sizeof(prev_l), v, &prev);
	label_of(next_l, sizeof(next_l), v, &next);
	portal_page_begin(q, &b, "Your electricity use", "/usage", true);
	hb_raw(&b, "<h1>Your electricity use</h1>\n");
	who_line(&b, c);
	hb_raw(&b, "<nav class=\"gm-tabs\" aria-label=\"Period\"><p>");
	for (enum view k = V_DAY; k <= V_YEAR; k++) {
		static const char *const tab[] = { "A day, by hour", "A month, by day",
						   "A year, by month" };

		if (k)
			hb_raw(&b, " &middot; ");
		if (k == v) {	/* the view shown: plain words, not a link */
			hb_raw(&b, "<strong aria-current=\"page\">");
			hb_text(&b, tab[k]);
			hb_raw(&b, "</strong>");
		} else {
			view_link(&b, k, &tm, tab[k], NULL);
		}
	}
	hb_raw(&b, "</p></nav>\n<p class=\"gm-pager\">");
	view_link(&b, v, &prev, prev_l, "prev");
	hb_raw(&b, " &middot; <strong>");
	hb_text(&b, label);
	hb_raw(&b, "</strong> &middot; ");
	view_link(&b, v, &next, next_l, "next");
	hb_printf(&b, "</p>\n<form method=\"get\" action=\"/usage\" class=\"gm-inline\">"
		  "<input type=\"hidden\" name=\"view\" value=\"%s\"><label for=\"date\">Show the "
		  "%s of</label> <input type=\"date\" id=\"date\" name=\"date\" value=\"%s\"> "
		  "<button type=\"submit\">Show</button></form>\n", views[v].name, views[v].name, d);
	n = PQntuples(r);
	for (int i = 0; i < n; i++)
		any_export |= gl(r, i, 3) != 0;
	hb_printf(&b, "<figure class=\"gm-chart\" id=\"usage-chart\" data-kind=\"bars\" "
		  "data-unit=\"kWh\" data-scale=\"1000000\" data-view=\"%s\" data-start=\"%s\">\n"
		  "<figcaption>Electricity ", views[v].name, d);
	hb_text(&b, views[v].title);
	hb_raw(&b, ", ");
	hb_text(&b, label);
	hb_printf(&b, " (%s time)</figcaption>\n<script type=\"application/json\" "
		  "class=\"gm-chart-data\">{\"x\":[", "local");
	for (int i = 0; i < n; i++)
		hb_printf(&b, "%s%lld", i ? "," : "", (long long)gl(r, i, 0));
	hb_raw(&b, "],\"series\":[{\"label\":\"Import\",\"values\":[");
	for (int i = 0; i < n; i++)
		hb_printf(&b, "%s%lld", i ? "," : "", (long long)gl(r, i, 2));
	hb_raw(&b, "]}");
	if (any_export) {
		hb_raw(&b, ",{\"label\":\"Export\",\"values\":[");
		for (int i = 0; i < n; i++)
			hb_printf(&b, "%s%lld", i ? "," : "", (long long)gl(r, i, 3));
		hb_raw(&b, "]}");
	}
	hb_raw(&b, "]}</script>\n");
	if (!n)
		hb_raw(&b, "<p>No readings for this period.</p>\n");
	hb_raw(&b, "<details><summary>The numbers</summary>\n<table class=\"gm-chart-table gm-table\">"
	       "\n<thead><tr><th scope=\"col\">");
	hb_text(&b, views[v].col);
	hb_raw(&b, "</th><th scope=\"col\" class=\"gm-num\">Import</th><th scope=\"col\" "
	       "class=\"gm-num\">Export</th><th scope=\"col\" class=\"gm-num\">Renewable</th>"
	       "<th scope=\"col\" class=\"gm-num\">Hours</th></tr></thead>\n<tbody>\n");
	for (int i = 0; i < n; i++) {
		hb_printf(&b, "<tr data-x=\"%lld\" data-import-mwh=\"%lld\"><th scope=\"row\">",
			  (long long)gl(r, i, 0), (long long)gl(r, i, 2));
		hb_text(&b, PQgetvalue(r, i, 1));
		hb_raw(&b, "</th>");
		for (int k = 0; k < 3; k++) {
			hb_raw(&b, "<td class=\"gm-num\">");
			hb_kwh(&b, gl(r, i, 2 + k));
			hb_raw(&b, "</td>");
			tot[k] += gl(r, i, 2 + k);
		}
		hb_printf(&b, "<td class=\"gm-num\">%lld</td></tr>\n", (long long)gl(r, i, 5));
	}
	hb_raw(&b, "</tbody></table></details>\n</figure>\n<p>In all: ");
	hb_kwh(&b, tot[0]);
	hb_raw(&b, " imported, ");
	hb_kwh(&b, tot[1]);
	hb_raw(&b, " exported, ");
	hb_kwh(&b, tot[2]);
	hb_raw(&b, " from renewable sources. The finest detail kept here is the hour; hours "
	       "missing from the readings are estimated on your bill and not drawn here.</p>\n");
	PQclear(r);
	portal_page_end(q, &b);
	return page_done(&b);
}

/* ---- notices and alerts -------------------------------------------------------------------- */

/* Plain text as paragraphs, one per line. */
static void paragraphs(struct hbuf *b, const char *s)
{
	while (*s) {
		const char *e = strchr(s, '\n');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		if (n) {
			hb_raw(b, "<p>");
			for (size_t k = 0; k < n; k += 200) {
				char part[201];

				snprintf(part, sizeof(part), "%.*s", (int)(n - k < 200 ? n - k : 200), s + k);
				hb_text(b, part);
			}
			hb_raw(b, "</p>\n");
		}
		s += n + (e ? 1 : 0);
	}
}

static struct web_resp *notices(struct portal_req *q, const struct cust *c)
{
	const char *v[2] = { c->id, c->tz };
	struct hbuf b;
	PGresult *r, *n;
	const char *medium;

	r = mpg_query(q->db, "SELECT medium, address, coalesce(email, ''), coalesce(phone, '') "
		      "FROM customers WHERE id = $1::integer", 1, v);
	if (!r)
		return portal_db_error(q, "notices");
	n = mpg_query(q->db, "SELECT id, to_char(created AT TIME ZONE $2, 'YYYY-MM-DD HH24:MI'), "
		      "kind, subject, state, coalesce(medium, ''), ref FROM notices "
		      "WHERE customer = $1::integer ORDER BY id DESC LIMIT 200", 2, v);
	hb_init(&b);
	if (!n || PQntuples(r) != 1)
		return fail(q, &b, r, "notice history");
	medium = PQgetvalue(r, 0, 0);
	portal_page_begin(q, &b, "Your notices", "/notices", false);
	hb_raw(&b, "<h1>Your notices</h1>\n");
	who_line(&b, c);
	hb_raw(&b, "<h2>How we reach you</h2>\n<dl class=\"gm-facts\" id=\"medium\">\n<dt>By</dt><dd>");
	hb_text(&b, !strcmp(medium, "email") ? "e-mail" : !strcmp(medium, "sms") ?
		    "text message (SMS)" : "post");
	hb_raw(&b, "</dd>\n<dt>Postal address</dt><dd>");
	for (const char *s = PQgetvalue(r, 0, 1), *e; *s; s = *e ? e + 1 : e) {
		char line[256];

		e = strchr(s, '\n');
		if (!e)
			e = s + strlen(s);
		snprintf(line, sizeof(line), "%.*s", (int)(e - s), s);
		hb_text(&b, line);
		if (*e)
			hb_raw(&b, "<br>");
	}
	if (!*PQgetvalue(r, 0, 1))
		hb_raw(&b, "none given");
	hb_raw(&b, "</dd>\n<dt>E-mail</dt><dd>");
	hb_text(&b, *PQgetvalue(r, 0, 2) ? PQgetvalue(r, 0, 2) : "none given");
	hb_raw(&b, "</dd>\n<dt>Phone</dt><dd>");
	hb_text(&b, *PQgetvalue(r, 0, 3) ? PQgetvalue(r, 0, 3) : "none given");
	hb_raw(&b, "</dd>\n</dl>\n<p class=\"gm-hint\">To change how we reach you, call or write "
	       "to us: we confirm changes of address with you first.</p>\n<h2>Notices sent to "
	       "you</h2>\n");
	if (!PQntuples(n)) {
		hb_raw(&b, "<p>None yet.</p>\n");
	} else {
		hb_raw(&b, "<div class=\"gm-table-wrap\"><table class=\"gm-table\" id=\"notice-list\">\n"
		       "<thead><tr><th scope=\"col\">Date</th><th scope=\"col\">Subject</th>"
		       "<th scope=\"col\">Sent by</th><th scope=\"col\">State</th></tr></thead>\n"
		       "<tbody>\n");
		for (int i = 0; i < PQntuples(n); i++) {
			bool bill = !strcmp(PQgetvalue(n, i, 2), "bill");

			hb_raw(&b, "<tr><td>");
			hb_text(&b, PQgetvalue(n, i, 1));
			hb_raw(&b, "</td><td>");
			if (bill && !PQgetisnull(n, i, 6))
				hb_printf(&b, "<a href=\"/bills/%lld\">", (long long)gl(n, i, 6));
			hb_text(&b, PQgetvalue(n, i, 3));
			if (bill && !PQgetisnull(n, i, 6))
				hb_raw(&b, "</a>");
			hb_raw(&b, "</td><td>");
			hb_text(&b, *PQgetvalue(n, i, 5) ? PQgetvalue(n, i, 5) : "-");
			hb_raw(&b, "</td><td>");
			hb_text(&b, !strcmp(PQgetvalue(n, i, 4), "delivered") ? "delivered" :
				    !strcmp(PQgetvalue(n, i, 4), "failed") ? "could not be delivered" :
				    "on its way");
			hb_raw(&b, "</td></tr>\n");
		}
		hb_raw(&b, "</tbody></table></div>\n");
	}
	PQclear(r);
	PQclear(n);
	portal_page_end(q, &b);
	return page_done(&b);
}

static struct web_resp *alerts(struct portal_req *q, const struct cust *c)
{
	const char *v[2] = { c->id, c->tz };
	struct hbuf b;
	PGresult *r;

	/* what the household was told: the rule's own letter to them, and the alert's state */
	r = mpg_query(q->db, "SELECT a.id, to_char(a.at AT TIME ZONE $2, 'YYYY-MM-DD HH24:MI'), "
		      "a.severity, n.subject, n.body, a.state, "
		      "to_char(a.closed_at AT TIME ZONE $2, 'YYYY-MM-DD HH24:MI') "
		      "FROM notices n JOIN alerts a ON a.id = n.ref WHERE n.customer = $1::integer "
		      "AND n.kind <> 'bill' ORDER BY a.at DESC, a.id DESC LIMIT 100", 2, v);
	hb_init(&b);
	if (!r)
		return fail(q, &b, NULL, "alerts");
	portal_page_begin(q, &b, "Alerts about your meter", "/alerts", false);
	hb_raw(&b, "<h1>Alerts about your meter</h1>\n");
	who_line(&b, c);
	if (!PQntuples(r))
		hb_raw(&b, "<p>None: your meter has reported nothing unusual.</p>\n");
	for (int i = 0; i < PQntuples(r); i++) {
		bool open = !strcmp(PQgetvalue(r, i, 5), "open");

		hb_printf(&b, "<article class=\"gm-alert gm-%s\" data-alert=\"%lld\">\n<h2>",
			  !strcmp(PQgetvalue(r, i, 2), "critical") ? "bad" :
			  !strcmp(PQgetvalue(r, i, 2), "warning") ? "warn" : "ok",
			  (long long)gl(r, i, 0));
		hb_text(&b, PQgetvalue(r, i, 3));
		hb_raw(&b, "</h2>\n<p class=\"gm-hint\">");
		hb_text(&b, PQgetvalue(r, i, 1));
		hb_raw(&b, " &middot; ");
		if (open) {
			hb_raw(&b, "still open");
		} else {
			hb_raw(&b, "closed ");
			hb_text(&b, PQgetvalue(r, i, 6));
		}
		hb_raw(&b, "</p>\n");
		paragraphs(&b, PQgetvalue(r, i, 4));
		hb_raw(&b, "</article>\n");
	}
	PQclear(r);
	portal_page_end(q, &b);
	return page_done(&b);
}

/* ---- routing -------------------------------------------------------------------------------- */

static bool own_path(const char *p)
{
	return !strcmp(p, "/bills") || !strncmp(p, "/bills/", 7) || !strcmp(p, "/usage") ||
	       !strcmp(p, "/notices") || !strcmp(p, "/alerts");
}

struct web_resp *portal_customer_route(struct portal_req *q)
{
	const char *path = q->r->path, *rest = "";
	struct cust c;
	int64_t bill;
	int rc;

	if (!own_path(path))
		return NULL;
	if (!portal_is_customer(q))
		return portal_refuse(q);
	if (strcmp(q->r->method, "GET") && strcmp(q->r->method, "HEAD"))
		return web_resp_error(405, "These pages are read only.");
	rc = cust_load(q, &c);
	if (rc < 0)
		return portal_db_error(q, "customer");
	if (!rc)
		return web_resp_error(404, "Your account is not linked to a customer any more. "
				      "Please call us.");
	if (!strcmp(path, "/bills"))
		return bills_list(q, &c);
	if (!strcmp(path, "/usage"))
		return usage(q, &c);
	if (!strcmp(path, "/notices"))
		return notices(q, &c);
	if (!strcmp(path, "/alerts"))
		return alerts(q, &c);
	bill = portal_path_id(path, "/bills/", &rest);
	if (bill < 0)
		return web_resp_error(404, "There is no such bill among yours.");
	return bill_detail(q, &c, bill, rest);
}
