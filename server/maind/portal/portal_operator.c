// SPDX-License-Identifier: GPL-2.0
/*
 * maind-portal: what operators see (Documentation/portal.md "Operators"),
 * after their password and second factor. Read only: every change goes
 * through signed commands (portal_commands.c).
 *
 *   /op/towns          each town: its mode as the main server sees it
 *                      (normal, catching up, administrative: silent longer
 *                      than silent_after_s, never seen), last hour, backlog,
 *                      open loans, open alerts, meter alarms of the last day
 *   /op/meters?town=T  a town's meters: customer, last hour, energy of the
 *                      last 24 hours, alarms, open alerts
 *   /op/alerts         alerts, open first (?state=closed|all), and
 *   /op/alerts/ID      one alert with its evidence (the rule's JSON, shown
 *                      as keys and values)
 *   /op/audit          the audit log (newest 200 lines) and the result of
 *                      recomputing its whole hash chain (mcmd_audit_verify)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "commands/cmd.h"
#include "detect/detect.h"
#include "portal.h"


static int64_t gl(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void cell(struct hbuf *b, const PGresult *r, int row, int col)
{
	hb_raw(b, "<td>");
	hb_text(b, PQgetisnull(r, row, col) ? "\xe2\x80\x94" : PQgetvalue(r, row, col));
	hb_raw(b, "</td>");
}

static void num_cell(struct hbuf *b, int64_t v)
{
	hb_printf(b, "<td class=\"gm-num\">%lld</td>", (long long)v);
}

static void time_cell(struct hbuf *b, const PGresult *r, int row, int col)
{
	hb_raw(b, "<td>");
	if (PQgetisnull(r, row, col))
		hb_raw(b, "\xe2\x80\x94");
	else
		hb_time(b, gl(r, row, col));
	hb_raw(b, "</td>");
}

/* ---- towns ---------------------------------------------------------------------------------------- */

static struct web_resp *towns(struct portal_req *q)
{
	char silent[24];
	const char *v[1] = { silent };
	struct hbuf b;
	PGresult *r;

	snprintf(silent, sizeof(silent), "%u", q->app->cfg->silent_after_s);
	/* the mode as mainctl towns words it */
	r = mpg_query(q->db, "SELECT t.id, t.name, CASE WHEN t.last_seen IS NULL THEN 'never seen' "
		      "WHEN extract(epoch FROM now())::bigint - t.last_seen > $1::bigint THEN "
		      "'administrative' WHEN COALESCE(t.hello_next_seq, 1) - 1 > t.upto THEN "
		      "'catching up' ELSE 'normal' END, t.last_seen, "
		      "extract(epoch FROM t.last_hour)::bigint, "
		      "GREATEST(COALESCE(t.hello_next_seq, 1) - 1 - t.upto, 0), "
		      "(SELECT count(DISTINCT (lender, loan_id)) FROM loans l WHERE l.state = 0 AND "
		      "l.until > now() AND (l.lender = t.id OR l.borrower = t.id)), "
		      "(SELECT count(*) FROM alerts a WHERE a.town = t.id AND a.state = 'open'), "
		      "(SELECT count(*) FROM meter_alarms m WHERE m.town = t.id AND m.active AND "
		      "m.at > now() - interval '1 day'), t.revoked, "
		      "extract(epoch FROM t.last_admin_hour)::bigint "
		      "FROM towns t ORDER BY t.id", 1, v);
	hb_init(&b);
	if (!r)
		return portal_db_fail(q, &b, NULL, "towns");
	portal_page_begin(q, &b, "Towns", "/op/towns", false);
	hb_printf(&b, "<h1>Towns</h1>\n<p class=\"gm-sub\">A town silent for more than %u s is "
		  "taken to run in administrative mode (on its own).</p>\n",
		  q->app->cfg->silent_after_s);
	if (!PQntuples(r)) {
		hb_raw(&b, "<p>No town yet (mainctl add-town).</p>\n");
	} else {
		hb_raw(&b, "<div class=\"gm-table-wrap\"><table class=\"gm-table\" id=\"towns\">\n"
		       "<caption>Towns as the main server sees them</caption>\n<thead><tr>"
		       "<th scope=\"col\">Town</th><th scope=\"col\">Mode</th><th scope=\"col\">"
		       "Last heard</th><th scope=\"col\">Newest hour</th><th scope=\"col\" "
		       "class=\"gm-num\">Backlog (records)</th><th scope=\"col\" class=\"gm-num\">"
		       "Open loans</th><th scope=\"col\" class=\"gm-num\">Open alerts</th>"
		       "<th scope=\"col\" class=\"gm-num\">Meter alarms (24 h)</th></tr></thead>\n"
		       "<tbody>\n");
		for (int i = 0; i < PQntuples(r); i++) {
			hb_raw(&b, "<tr data-town=\"");
			hb_attr(&b, PQgetvalue(r, i, 0));
			hb_raw(&b, "\" data-mode=\"");
			hb_attr(&b, PQgetvalue(r, i, 2));
			hb_raw(&b, "\"><th scope=\"row\"><a href=\"/op/meters?town=");
			hb_attr(&b, PQgetvalue(r, i, 0));
			hb_raw(&b, "\">");
			hb_text(&b, PQgetvalue(r, i, 0));
			hb_raw(&b, " ");
			hb_text(&b, PQgetvalue(r, i, 1));
			hb_raw(&b, "</a>");
			if (PQgetvalue(r, i, 9)[0] == 't')
				hb_raw(&b, " <small>(key revoked)</small>");
			hb_raw(&b, "</th><td>");
			hb_text(&b, PQgetvalue(r, i, 2));
			if (!PQgetisnull(r, i, 10)) {
				hb_raw(&b, "<br><small>last hour built on its own: ");
				hb_time(&b, gl(r, i, 10));
				hb_raw(&b, "</small>");
			}
			hb_raw(&b, "</td>");
			time_cell(&b, r, i, 3);
			time_cell(&b, r, i, 4);
			for (int c = 5; c <= 8; c++)
				num_cell(&b, gl(r, i, c));
			hb_raw(&b, "</tr>\n");
		}
		hb_raw(&b, "</tbody></table></div>\n");
	}
	PQclear(r);
	portal_page_end(q, &b);
	return portal_done(&b, 200);
}

/* ---- meters ---------------------------------------------------------------------------------------- */

static struct web_resp *meters(struct portal_req *q)
{
	const char *town = web_query(q->r, "town");
	char title[64];
	struct hbuf b;
	PGresult *r;
	long t;
	char *end;

	t = town ? strtol(town, &end, 10) : 0;
	if (!town || !*town || *end || t < 1 || t > 65534) {
		hb_init(&b);
		r = mpg_query(q->db, "SELECT id, name FROM towns ORDER BY id", 0, NULL);
		if (!r)
			return portal_db_fail(q, &b, NULL, "towns");
		portal_page_begin(q, &b, "Meters", "/op/meters", false);
		hb_raw(&b, "<h1>Meters</h1>\n<p>Choose a town:</p>\n<ul class=\"gm-list\">\n");
		for (int i = 0; i < PQntuples(r); i++) {
			hb_raw(&b, "<li><a href=\"/op/meters?town=");
			hb_attr(&b, PQgetvalue(r, i, 0));
			hb_raw(&b, "\">Town ");
			hb_text(&b, PQgetvalue(r, i, 0));
			hb_raw(&b, " ");
			hb_text(&b, PQgetvalue(r, i, 1));
			hb_raw(&b, "</a></li>\n");
		}
		hb_raw(&b, "</ul>\n");
		PQclear(r);
		portal_page_end(q, &b);
		return portal_done(&b, 200);
	}
	/* meters a customer holds or that sent hours in the last 31 days */
	r = mpg_query(q->db, "WITH m AS (SELECT meter FROM customers WHERE town = $1::integer AND "
		      "(until IS NULL OR until > now()) UNION SELECT DISTINCT meter FROM meter_hours "
		      "WHERE town = $1::integer AND hour > now() - interval '31 days'), "
		      "h AS (SELECT meter, max(hour) AS last, sum(import_mwh) FILTER (WHERE hour > "
		      "now() - interval '1 day') AS imp, sum(export_mwh) FILTER (WHERE hour > now() - "
		      "interval '1 day') AS exp FROM meter_hours WHERE town = $1::integer AND hour > "
		      "now() - interval '31 days' GROUP BY meter) "
		      "SELECT m.meter, (SELECT name FROM customers c WHERE c.town = $1::integer AND "
		      "c.meter = m.meter AND (c.until IS NULL OR c.until > now()) ORDER BY since DESC "
		      "LIMIT 1), extract(epoch FROM h.last)::bigint, COALESCE(h.imp, 0), "
		      "COALESCE(h.exp, 0), (SELECT count(*) FROM meter_alarms a WHERE a.town = "
		      "$1::integer AND a.meter = m.meter AND a.active AND a.at > now() - interval "
		      "'1 day'), (SELECT count(*) FROM alerts a WHERE a.town = $1::integer AND "
		      "a.meter = m.meter AND a.state = 'open') FROM m LEFT JOIN h ON h.meter = m.meter "
		      "ORDER BY m.meter LIMIT 5000", 1, (const char *const[]){ town });
	hb_init(&b);
	if (!r)
		return portal_db_fail(q, &b, NULL, "meters");
	snprintf(title, sizeof(title), "Meters of town %ld", t);
	portal_page_begin(q, &b, title, "/op/meters", false);
	hb_printf(&b, "<h1>%s</h1>\n", title);
	if (!PQntuples(r)) {
		hb_raw(&b, "<p>No meter known in this town (no customer, no hour in 31 days).</p>\n");
	} else {
		hb_raw(&b, "<div class=\"gm-table-wrap\"><table class=\"gm-table\" id=\"meters\">\n"
		       "<caption>Meters, with the last 24 hours</caption>\n<thead><tr><th scope="
		       "\"col\">Meter</th><th scope=\"col\">Customer</th><th scope=\"col\">Newest "
		       "hour</th><th scope=\"col\" class=\"gm-num\">Imported</th><th scope=\"col\" "
		       "class=\"gm-num\">Exported</th><th scope=\"col\" class=\"gm-num\">Alarms</th>"
		       "<th scope=\"col\" class=\"gm-num\">Open alerts</th></tr></thead>\n<tbody>\n");
		for (int i = 0; i < PQntuples(r); i++) {
			hb_raw(&b, "<tr><th scope=\"row\">");
			hb_text(&b, PQgetvalue(r, i, 0));
			hb_raw(&b, "</th>");
			cell(&b, r, i, 1);
			time_cell(&b, r, i, 2);
			hb_raw(&b, "<td class=\"gm-num\">");
			hb_milli(&b, gl(r, i, 3) / 1000, 3, "kWh");
			hb_raw(&b, "</td><td class=\"gm-num\">");
			hb_milli(&b, gl(r, i, 4) / 1000, 3, "kWh");
			hb_raw(&b, "</td>");
			num_cell(&b, gl(r, i, 5));
			num_cell(&b, gl(r, i, 6));
			hb_raw(&b, "</tr>\n");
		}
		hb_raw(&b, "</tbody></table></div>\n");
	}
	PQclear(r);
	portal_page_end(q, &b);
	return portal_done(&b, 200);
}

/* ---- alerts ---------------------------------------------------------------------------------------- */

#define ALERT_COLS "id, extract(epoch FROM at)::bigint, rule, town, meter, severity, summary, " \
	"state, evidence, extract(epoch FROM closed_at)::bigint"

static void alert_row(struct hbuf *b, const PGresult *r, int i, bool link)
{
	hb_raw(b, "<tr data-severity=\"");
	hb_attr(b, PQgetvalue(r, i, 5));
	hb_raw(b, "\"><th scope=\"row\">");
	if (link) {
		hb_raw(b, "<a href=\"/op/alerts/");
		hb_attr(b, PQgetvalue(r, i, 0));
		hb_raw(b, "\">");
	}
	hb_text(b, PQgetvalue(r, i, 0));
	hb_raw(b, link ? "</a></th>" : "</th>");
	time_cell(b, r, i, 1);
	cell(b, r, i, 2);
	hb_raw(b, "<td>");
	if (!PQgetisnull(r, i, 3) && gl(r, i, 3)) {
		hb_text(b, PQgetvalue(r, i, 3));
		if (!PQgetisnull(r, i, 4) && gl(r, i, 4)) {
			hb_raw(b, ":");
			hb_text(b, PQgetvalue(r, i, 4));
		}
	} else {
		hb_raw(b, "\xe2\x80\x94");
	}
	hb_raw(b, "</td>");
	cell(b, r, i, 5);
	cell(b, r, i, 6);
	cell(b, r, i, 7);
	hb_raw(b, "</tr>\n");
}

static const char alert_head[] = "<thead><tr><th scope=\"col\">Alert</th><th scope=\"col\">"
	"Raised</th><th scope=\"col\">Rule</th><th scope=\"col\">Town:meter</th><th "
	"scope=\"col\">Severity</th><th scope=\"col\">Summary</th><th scope=\"col\">State</th>"
	"</tr></thead>\n";

static struct web_resp *alerts(struct portal_req *q)
{
	const char *st = web_query(q->r, "state");
	const char *v[1] = { st && !strcmp(st, "closed") ? "closed" : st && !strcmp(st, "all") ?
			     NULL : "open" };
	struct hbuf b;
	PGresult *r;

	r = mpg_query(q->db, "SELECT " ALERT_COLS " FROM alerts WHERE ($1::text IS NULL OR state = "
		      "$1) ORDER BY state = 'open' DESC, CASE severity WHEN 'critical' THEN 0 WHEN "
		      "'warning' THEN 1 ELSE 2 END, at DESC LIMIT 500", 1, v);
	hb_init(&b);
	if (!r)
		return portal_db_fail(q, &b, NULL, "alerts");
	portal_page_begin(q, &b, "Alerts", "/op/alerts", false);
	hb_raw(&b, "<h1>Alerts</h1>\n<p class=\"gm-sub\">Showing ");
	hb_text(&b, v[0] ? v[0] : "all");
	hb_raw(&b, " alerts. <a href=\"/op/alerts\">Open</a> &middot; <a href=\"/op/alerts?"
	       "state=closed\">closed</a> &middot; <a href=\"/op/alerts?state=all\">all</a></p>\n");
	if (!PQntuples(r)) {
		hb_raw(&b, "<p>No alert.</p>\n");
	} else {
		hb_raw(&b, "<div class=\"gm-table-wrap\"><table class=\"gm-table\" id=\"alerts\">\n"
		       "<caption>Alerts, most severe first (at most 500)</caption>\n");
		hb_raw(&b, alert_head);
		hb_raw(&b, "<tbody>\n");
		for (int i = 0; i < PQntuples(r); i++)
			alert_row(&b, r, i, true);
		hb_raw(&b, "</tbody></table></div>\n");
	}
	PQclear(r);
	portal_page_end(q, &b);
	return portal_done(&b, 200);
}

static struct web_resp *alert(struct portal_req *q, int64_t aid)
{
	char id[24], title[48];
	const char *v[1] = { id };
	struct hbuf b;
	PGresult *r, *e;

	snprintf(id, sizeof(id), "%lld", (long long)aid);
	r = mpg_query(q->db, "SELECT " ALERT_COLS " FROM alerts WHERE id = $1::bigint", 1, v);
	hb_init(&b);
	if (!r)
		return portal_db_fail(q, &b, NULL, "alert");
	if (PQntuples(r) != 1) {
		PQclear(r);
		hb_free(&b);
		return web_resp_error(404, "There is no such alert.");
	}
	/* the evidence as its keys and values (the rule wrote it as JSON) */
	e = mpg_query(q->db, "SELECT key, value::text FROM jsonb_each((SELECT CASE WHEN "
		      "jsonb_typeof(evidence::jsonb) = 'object' THEN evidence::jsonb ELSE "
		      "jsonb_build_object('evidence', evidence::jsonb) END FROM alerts WHERE id = "
		      "$1::bigint)) ORDER BY key", 1, v);
	if (!e)
		q->db->err[0] = '\0';	/* not JSON: shown as text below */
	snprintf(title, sizeof(title), "Alert %s", id);
	portal_page_begin(q, &b, title, "/op/alerts", false);
	hb_printf(&b, "<h1>%s</h1>\n<div class=\"gm-table-wrap\"><table class=\"gm-table\" "
		  "id=\"alert\">\n<caption>The alert</caption>\n", title);
	hb_raw(&b, alert_head);
	hb_raw(&b, "<tbody>\n");
	alert_row(&b, r, 0, false);
	hb_raw(&b, "</tbody></table></div>\n<h2>Evidence</h2>\n");
	if (e && PQntuples(e)) {
		hb_raw(&b, "<dl class=\"gm-facts\" id=\"evidence\">\n");
		for (int i = 0; i < PQntuples(e); i++) {
			hb_raw(&b, "<dt>");
			hb_text(&b, PQgetvalue(e, i, 0));
			hb_raw(&b, "</dt><dd><code>");
			hb_text(&b, PQgetvalue(e, i, 1));
			hb_raw(&b, "</code></dd>\n");
		}
		hb_raw(&b, "</dl>\n");
	} else {
		hb_raw(&b, "<pre class=\"gm-evidence\" id=\"evidence\">");
		hb_text(&b, PQgetvalue(r, 0, 8));
		hb_raw(&b, "</pre>\n");
	}
	PQclear(e);
	if (!PQgetisnull(r, 0, 9)) {
		hb_raw(&b, "<p>Closed ");
		hb_time(&b, gl(r, 0, 9));
		hb_raw(&b, ".</p>\n");
	}
	PQclear(r);
	portal_page_end(q, &b);
	return portal_done(&b, 200);
}

/* ---- the audit log ----------------------------------------------------------------------------------- */

static struct web_resp *audit(struct portal_req *q)
{
	struct mcmd_audit_check ck;
	char head[2 * MCMD_AUDIT_HASH_LEN + 1];
	struct hbuf b;
	PGresult *r;
	int v;

	hb_init(&b);
	/* the whole chain recomputed, as mainctl audit verify */
	v = mcmd_audit_verify(q->db, &ck);
	if (v < 0)
		return portal_db_fail(q, &b, NULL, "audit verify");
	r = mpg_query(q->db, "SELECT seq, extract(epoch FROM at)::bigint, actor, what, detail "
		      "FROM audit_log ORDER BY seq DESC LIMIT 200", 0, NULL);
	if (!r)
		return portal_db_fail(q, &b, NULL, "audit log");
	portal_page_begin(q, &b, "Audit log", "/op/audit", false);
	hb_raw(&b, "<h1>Audit log</h1>\n");
	if (v) {
		hb_printf(&b, "<p class=\"gm-alert gm-bad\" role=\"alert\" id=\"chain\" data-chain=\"broken\">"
			  "The audit log is <strong>broken at row %lld</strong>: ",
			  (long long)ck.bad_seq);
		hb_text(&b, ck.why);
		hb_printf(&b, " (%lld rows checked). Someone with database rights changed or "
			  "removed rows: tell security.</p>\n", (long long)ck.rows);
	} else {
		sodium_bin2hex(head, sizeof(head), ck.head, sizeof(ck.head));
		hb_printf(&b, "<p class=\"gm-alert gm-ok\" role=\"status\" id=\"chain\" data-chain=\"intact\">"
			  "The audit log is <strong>intact</strong>: the hash chain of all %lld rows "
			  "verifies. Newest hash <code class=\"gm-code\">%s</code>.</p>\n",
			  (long long)ck.rows, head);
	}
	hb_raw(&b, "<div class=\"gm-table-wrap\"><table class=\"gm-table\" id=\"audit\">\n"
	       "<caption>The newest 200 lines</caption>\n<thead><tr><th scope=\"col\" "
	       "class=\"gm-num\">Row</th><th scope=\"col\">When</th><th scope=\"col\">Who</th>"
	       "<th scope=\"col\">What</th><th scope=\"col\">Detail</th></tr></thead>\n<tbody>\n");
	for (int i = 0; i < PQntuples(r); i++) {
		hb_raw(&b, "<tr><th scope=\"row\" class=\"gm-num\">");
		hb_text(&b, PQgetvalue(r, i, 0));
		hb_raw(&b, "</th>");
		time_cell(&b, r, i, 1);
		cell(&b, r, i, 2);
		cell(&b, r, i, 3);
		hb_raw(&b, "<td class=\"gm-detail\">");
		hb_text(&b, PQgetvalue(r, i, 4));
		hb_raw(&b, "</td></tr>\n");
	}
	hb_raw(&b, "</tbody></table></div>\n");
	PQclear(r);
	portal_page_end(q, &b);
	return portal_done(&b, 200);
}

/* ---- routing ------------------------------------------------------------------------------------------ */

struct web_resp *portal_operator_route(struct portal_req *q)
{
	const char *path = q->r->path;
	int64_t id;

	if (strcmp(path, "/op") && strcmp(path, "/op/towns") && strcmp(path, "/op/meters") &&
	    strcmp(path, "/op/alerts") && strncmp(path, "/op/alerts/", 11) &&
	    strcmp(path, "/op/audit"))
		return NULL;
	if (!portal_is_operator(q))
		return portal_refuse(q);
	if (strcmp(q->r->method, "GET") && strcmp(q->r->method, "HEAD"))
		return web_resp_error(405, "These pages are read only: commands are signed on the "
				      "commands pages.");
	if (!strcmp(path, "/op"))
		return web_resp_redirect("/op/towns");
	if (!strcmp(path, "/op/towns"))
		return towns(q);
	if (!strcmp(path, "/op/meters"))
		return meters(q);
	if (!strcmp(path, "/op/alerts"))
		return alerts(q);
	if (!strcmp(path, "/op/audit"))
		return audit(q);
	id = portal_path_id(path, "/op/alerts/", NULL);
	if (id < 0)
		return web_resp_error(404, "There is no such alert.");
	return alert(q, id);
}
