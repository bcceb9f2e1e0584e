// SPDX-License-Identifier: GPL-2.0
/*
 * maind-portal: signed commands for operators (Documentation/portal.md
 * "Operators", Documentation/commands.md "Approving in the portal").
 *
 *   GET  /op/commands                    commands, newest first (?state=S);
 *                                        operations awaiting a second operator
 *   GET  /op/commands/ID                 one command, its signers and history
 *   GET  /op/operations/OP               one operation's commands and states
 *   GET  /op/commands/new                the form: action, targets, expiry, arg
 *   POST /op/commands/new                -> the signing page: the unsigned
 *                                        commands the server made (random ids,
 *                                        times) for the browser to sign
 *   POST /op/commands/sign               the bodies and the browser's signatures
 *                                        -> mcmd_submit (as mainctl cmd issue)
 *   GET  /op/operations/OP/approve       the signing page of an operation
 *                                        awaiting approval (mcmd_approve_load)
 *   POST /op/operations/OP/approve       the signatures -> mcmd_approve_store
 *
 * The server never holds an operator's secret: the page carries the exact
 * bytes each signature covers (gmc_signed_bytes) and web/static/gm-sign.js
 * signs them in the browser with the operator's key file. What comes back is
 * checked against the operator's registered key and stored by the same
 * functions as mainctl's (commands/cmd_submit.c): the same checks, rows,
 * audit lines, two-person rule and release. CSRF: portal_main.c checks the
 * session's token on every POST before any handler runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "commands/cmd.h"
#include "layout.h"
#include "portal.h"

/* Commands in one operation from the portal: each costs about 230 bytes of
 * form (body and signature in hex), and a request body is at most
 * WEB_BODY_MAX; mainctl takes larger operations. */
#define PORTAL_CMD_MAX	200

/* The signed-in operator: the operators row their web account names. */
struct opr {
	char name[GMC_NAME_MAX];
	char pk_hex[2 * GMC_PK_LEN + 1];
	uint8_t pk[GMC_PK_LEN];
	bool revoked;
};

/* 1 found, 0 not, -1 error */
static int opr_load(struct portal_req *q, struct opr *o)
{
	char id[24];
	const char *v[1] = { id };
	PGresult *r;

	memset(o, 0, sizeof(*o));
	snprintf(id, sizeof(id), "%lld", (long long)q->s.subject);
	r = mpg_query(q->db, "SELECT name, encode(pk, 'hex'), revoked FROM operators WHERE "
		      "id = $1::integer", 1, v);
	if (!r)
		return -1;
	if (PQntuples(r) != 1 || gmp_hex_decode(PQgetvalue(r, 0, 1), o->pk, GMC_PK_LEN)) {
		PQclear(r);
		return 0;
	}
	snprintf(o->name, sizeof(o->name), "%s", PQgetvalue(r, 0, 0));
	snprintf(o->pk_hex, sizeof(o->pk_hex), "%s", PQgetvalue(r, 0, 1));
	o->revoked = PQgetvalue(r, 0, 2)[0] == 't';
	PQclear(r);
	return 1;
}


/* A page that says, in words, why nothing was done (and how to go on). */
static struct web_resp *refusal(struct portal_req *q, int status, const char *title,
				const char *why, const char *back, const char *back_label)
{
	struct hbuf b;

	hb_init(&b);
	portal_page_begin(q, &b, title, "/op/commands", false);
	hb_raw(&b, "<h1>");
	hb_text(&b, title);
	hb_raw(&b, "</h1>\n<p class=\"gm-alert gm-bad\" role=\"alert\" id=\"why\">");
	hb_text(&b, why);
	hb_raw(&b, "</p>\n<p><a href=\"");
	hb_attr(&b, back);
	hb_raw(&b, "\">");
	hb_text(&b, back_label);
	hb_raw(&b, "</a></p>\n");
	portal_page_end(q, &b);
	return portal_done(&b, status);
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
	sodium_bin2hex(out, 2 * n + 1, p, n);
}

/* ---- describing commands in words ------------------------------------------------------------ */

static const char *action_words(int action)
{
	switch (action) {
	case GMC_DISCONNECT:
		return "Disconnect (open the main relay of)";
	case GMC_RECONNECT:
		return "Allow reconnection (the customer confirms at the meter) of";
	case GMC_REKEY:
		return "Make a new key pair at";
	case GMC_TOWN_STOP:
		return "Stop the town server of";
	case GMC_TOWN_START:
		return "Start the town server of";
	case GMC_TOWN_SUPPLY:
		return "Set the grid capacity of";
	default:
		return "?";
	}
}

/* c sorted by town then meter: "town 11: meters 1-12, 20" ... */
static void targets_words(struct hbuf *b, const struct gmc_cmd *c, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;

		if (i)
			hb_raw(b, "; ");
		if (!c[i].meter) {
			hb_printf(b, "town %u", c[i].town);
			i++;
			continue;
		}
		while (j < n && c[j].town == c[i].town)
			j++;
		hb_printf(b, "town %u: meter%s ", c[i].town, j - i > 1 ? "s" : "");
		for (size_t k = i; k < j;) {
			size_t e = k;

			while (e + 1 < j && c[e + 1].meter == c[e].meter + 1)
				e++;
			hb_printf(b, "%s%u", k > i ? ", " : "", c[k].meter);
			if (e > k)
				hb_printf(b, "\xe2\x80\x93%u", c[e].meter);	/* en dash */
			k = e + 1;
		}
		i = j;
	}
}

static int cmd_order(const void *a, const void *b)
{
	const struct gmc_cmd *x = a, *y = b;

	return x->town != y->town ? x->town - y->town : x->meter - y->meter;
}

/* What the operator is about to sign, in one paragraph. */
static void summary(struct portal_req *q, struct hbuf *b, const struct gmc_cmd *c, size_t n,
		    const char *first_signer)
{
	struct gmc_cmd *s = malloc(n * sizeof(*s));
	struct mcmd_policy pol;
	struct gmc_policy gp;

	mcmd_policy_of(q->app->cfg, &pol);
	gp.two_above = pol.two_above;
	hb_raw(b, "<p class=\"gm-sign-summary\" id=\"summary\"><strong>");
	hb_text(b, action_words(c[0].action));
	hb_printf(b, " %zu %s%s</strong>: ", n, c[0].meter ? "meter" : "town",
		  n == 1 ? "" : "s");
	if (s) {
		memcpy(s, c, n * sizeof(*s));
		qsort(s, n, sizeof(*s), cmd_order);
		targets_words(b, s, n);
		free(s);
	}
	if (c[0].action == GMC_TOWN_SUPPLY) {
		hb_raw(b, ", to ");
		hb_milli(b, c[0].arg * 1000, 0, "W");
	}
	hb_raw(b, ". Valid from ");
	hb_time(b, c[0].issued);
	hb_raw(b, " until ");
	hb_time(b, c[0].expires);
	hb_printf(b, " (%lld minutes).", (long long)((c[0].expires - c[0].issued) / 60));
	if (first_signer) {
		hb_raw(b, " First signed by ");
		hb_text(b, first_signer);
		hb_raw(b, "; your signature is the second.");
	} else if (gmc_needs_two(&c[0], &gp)) {
		hb_printf(b, " It needs a second operator's approval (%s) before it is sent.",
			  c[0].action == GMC_REKEY || c[0].action == GMC_TOWN_STOP ?
			  "this action always does" : "more targets than the two-person limit");
	} else {
		hb_raw(b, " It is sent as soon as you sign it.");
	}
	hb_raw(b, "</p>\n");
}

/*
 * The signing form: per command the bytes to sign (data-msg), the body
 * (first signature only: the server takes it back and checks it), an
 * empty signature field; the key file input has no name (never sent).
 */
static void signing_form(struct portal_req *q, struct hbuf *b, const struct opr *me,
			 const char *action, const struct gmc_cmd *c, size_t n, bool with_bodies,
			 const char *button)
{
	hb_raw(b, "<form method=\"post\" class=\"gm-sign\" action=\"");
	hb_attr(b, action);
	hb_raw(b, "\" data-signer=\"");
	hb_attr(b, me->name);
	hb_raw(b, "\" data-signer-pk=\"");
	hb_attr(b, me->pk_hex);
	hb_raw(b, "\">\n");
	web_csrf_field(b, q->s.csrf);
	hb_printf(b, "<input type=\"hidden\" name=\"n\" value=\"%zu\">\n", n);
	hb_printf(b, "<details class=\"gm-sign-list\"><summary>The %zu command%s and the bytes "
		  "signed</summary>\n<ol>\n", n, n == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++) {
		uint8_t m[sizeof(GMC_DOMAIN) + GMC_BODY_LEN];
		size_t ml = gmc_signed_bytes(&c[i], m, sizeof(m));
		char mh[2 * sizeof(m) + 1], bh[2 * GMC_BODY_LEN + 1];

		hex_of(m, ml, mh);
		hex_of(m + ml - GMC_BODY_LEN, GMC_BODY_LEN, bh);
		hb_printf(b, "<li data-msg=\"%s\">%s town %u", mh, gmc_action_name(c[i].action),
			  c[i].town);
		if (c[i].meter)
			hb_printf(b, " meter %u", c[i].meter);
		hb_printf(b, ", command %llu <code class=\"gm-code\">%s</code>",
			  (unsigned long long)c[i].id, bh);
		if (with_bodies)
			hb_printf(b, "<input type=\"hidden\" name=\"b%zu\" value=\"%s\">", i, bh);
		hb_printf(b, "<input type=\"hidden\" class=\"gm-sig\" name=\"s%zu\" value=\"\"></li>\n",
			  i);
	}
	hb_raw(b, "</ol>\n</details>\n"
	       "<p><label for=\"gm-key\">Your key file (from <code>mainctl op-keygen</code>; it is "
	       "read by this page and never sent)</label>\n"
	       "<input type=\"file\" id=\"gm-key\" class=\"gm-sign-key\" accept=\".key,.txt,"
	       "text/plain\" required></p>\n"
	       "<p class=\"gm-sign-status\" role=\"status\" aria-live=\"polite\" id=\"sign-status\">"
	       "</p>\n<p><button type=\"submit\">");
	hb_text(b, button);
	hb_raw(b, "</button></p>\n</form>\n");
}

/* ---- lists -------------------------------------------------------------------------------------- */

static void state_cell(struct hbuf *b, const char *state, const char *why)
{
	hb_raw(b, "<td><span class=\"gm-state gm-state-");
	hb_attr(b, state);
	hb_raw(b, "\">");
	hb_text(b, state);
	hb_raw(b, "</span>");
	if (*why) {
		hb_raw(b, "<br><small>");
		hb_text(b, why);
		hb_raw(b, "</small>");
	}
	hb_raw(b, "</td>");
}

#define LIST_COLS "id, op, action, town || CASE WHEN meter > 0 THEN ':' || meter ELSE '' END, " \
	"batch, array_to_string(signers, ' + '), state, COALESCE(reason, status_text, ''), " \
	"extract(epoch FROM expires)::bigint, extract(epoch FROM issued)::bigint"

static void command_table(struct hbuf *b, PGresult *r, const char *id, const char *caption)
{
	hb_raw(b, "<div class=\"gm-table-wrap\"><table class=\"gm-table\" id=\"");
	hb_attr(b, id);
	hb_raw(b, "\">\n<caption>");
	hb_text(b, caption);
	hb_raw(b, "</caption>\n<thead><tr><th scope=\"col\">Command</th><th scope=\"col\">"
	       "Operation</th><th scope=\"col\">Action</th><th scope=\"col\">Target</th>"
	       "<th scope=\"col\">Signed by</th><th scope=\"col\">State</th><th scope=\"col\">"
	       "Issued</th><th scope=\"col\">Expires</th></tr></thead>\n<tbody>\n");
	for (int i = 0; i < PQntuples(r); i++) {
		hb_raw(b, "<tr data-state=\"");
		hb_attr(b, PQgetvalue(r, i, 6));
		hb_raw(b, "\"><th scope=\"row\"><a href=\"/op/commands/");
		hb_attr(b, PQgetvalue(r, i, 0));
		hb_raw(b, "\">");
		hb_text(b, PQgetvalue(r, i, 0));
		hb_raw(b, "</a></th><td><a href=\"/op/operations/");
		hb_attr(b, PQgetvalue(r, i, 1));
		hb_raw(b, "\">");
		hb_text(b, PQgetvalue(r, i, 1));
		hb_raw(b, "</a></td><td>");
		hb_text(b, PQgetvalue(r, i, 2));
		hb_raw(b, "</td><td>");
		hb_text(b, PQgetvalue(r, i, 3));
		hb_raw(b, "</td><td>");
		hb_text(b, PQgetvalue(r, i, 5));
		hb_raw(b, "</td>");
		state_cell(b, PQgetvalue(r, i, 6), PQgetvalue(r, i, 7));
		hb_raw(b, "<td>");
		hb_time(b, strtoll(PQgetvalue(r, i, 9), NULL, 10));
		hb_raw(b, "</td><td>");
		hb_time(b, strtoll(PQgetvalue(r, i, 8), NULL, 10));
		hb_raw(b, "</td></tr>\n");
	}
	hb_raw(b, "</tbody></table></div>\n");
}

static const char *const states[] = { "awaiting-approval", "queued", "sent", "delivered",
				      "executed", "refused", "expired", "cancelled", NULL };

static struct web_resp *list(struct portal_req *q, const struct opr *me)
{
	const char *state = web_query(q->r, "state");
	const char *v[1] = { NULL };
	struct hbuf b;
	PGresult *r;

	for (int i = 0; state && states[i]; i++)
		if (!strcmp(state, states[i]))
			v[0] = states[i];
	hb_init(&b);
	portal_page_begin(q, &b, "Signed commands", "/op/commands", false);
	hb_raw(&b, "<h1>Signed commands</h1>\n<p><a class=\"gm-button\" href=\"/op/commands/new\">"
	       "Issue a command</a></p>\n");
	/* what waits for a second operator: one line per operation */
	r = mpg_query(q->db, "SELECT op, min(action), count(*), min(issuer), "
		      "extract(epoch FROM min(expires))::bigint, min(reason) FROM signed_commands "
		      "WHERE state = 'awaiting-approval' GROUP BY op ORDER BY op", 0, NULL);
	if (!r)
		return portal_db_fail(q, &b, NULL, "pending operations");
	hb_raw(&b, "<section aria-labelledby=\"pending-h\"><h2 id=\"pending-h\">Awaiting a second "
	       "operator</h2>\n");
	if (!PQntuples(r))
		hb_raw(&b, "<p>Nothing awaits approval.</p>\n");
	else
		hb_raw(&b, "<ul class=\"gm-list\" id=\"pending\">\n");
	for (int i = 0; i < PQntuples(r); i++) {
		bool own = !strcmp(PQgetvalue(r, i, 3), me->name);

		hb_raw(&b, "<li data-op=\"");
		hb_attr(&b, PQgetvalue(r, i, 0));
		hb_raw(&b, "\">Operation <a href=\"/op/operations/");
		hb_attr(&b, PQgetvalue(r, i, 0));
		hb_raw(&b, "\">");
		hb_text(&b, PQgetvalue(r, i, 0));
		hb_raw(&b, "</a>: ");
		hb_text(&b, PQgetvalue(r, i, 1));
		hb_raw(&b, ", ");
		hb_text(&b, PQgetvalue(r, i, 2));
		hb_raw(&b, " command(s) by ");
		hb_text(&b, PQgetvalue(r, i, 3));
		hb_raw(&b, ", until ");
		hb_time(&b, strtoll(PQgetvalue(r, i, 4), NULL, 10));
		hb_raw(&b, " (");
		hb_text(&b, PQgetvalue(r, i, 5));
		hb_raw(&b, ")");
		if (own) {
			hb_raw(&b, " &middot; yours: another operator approves it");
		} else {
			hb_raw(&b, " &middot; <a href=\"/op/operations/");
			hb_attr(&b, PQgetvalue(r, i, 0));
			hb_raw(&b, "/approve\">Review and approve</a>");
		}
		hb_raw(&b, "</li>\n");
	}
	if (PQntuples(r))
		hb_raw(&b, "</ul>\n");
	hb_raw(&b, "</section>\n");
	PQclear(r);
	/* the commands */
	r = mpg_query(q->db, "SELECT " LIST_COLS " FROM signed_commands WHERE ($1::text IS NULL "
		      "OR state = $1) ORDER BY issued DESC, op DESC, town, meter LIMIT 300", 1, v);
	if (!r)
		return portal_db_fail(q, &b, NULL, "commands");
	hb_raw(&b, "<h2>Commands</h2>\n<form method=\"get\" class=\"gm-filter\"><label for=\"state\">"
	       "State</label> <select id=\"state\" name=\"state\"><option value=\"\">any</option>");
	for (int i = 0; states[i]; i++)
		hb_printf(&b, "<option%s>%s</option>", v[0] == states[i] ? " selected" : "",
			  states[i]);
	hb_raw(&b, "</select> <button type=\"submit\">Show</button></form>\n");
	if (!PQntuples(r))
		hb_raw(&b, "<p>No command.</p>\n");
	else
		command_table(&b, r, "commands", "Commands, newest first (at most 300)");
	PQclear(r);
	portal_page_end(q, &b);
	return portal_done(&b, 200);
}

/* The audit lines about one command, oldest first. */
static int history(struct portal_req *q, struct hbuf *b, const char *id)
{
	const char *v[1] = { id };
	PGresult *r = mpg_query(q->db, "SELECT seq, extract(epoch FROM at)::bigint, actor, what, "
				"detail FROM audit_log WHERE detail LIKE 'command ' || $1 || ' %' OR "
				"detail LIKE 'command ' || $1 || ':%' ORDER BY seq", 1, v);

	if (!r)
		return -1;
	hb_raw(b, "<h2>History (audit log)</h2>\n<ol class=\"gm-history\" id=\"history\">\n");
	for (int i = 0; i < PQntuples(r); i++) {
		hb_raw(b, "<li data-what=\"");
		hb_attr(b, PQgetvalue(r, i, 3));
		hb_raw(b, "\"><time>");
		hb_time(b, strtoll(PQgetvalue(r, i, 1), NULL, 10));
		hb_raw(b, "</time> <strong>");
		hb_text(b, PQgetvalue(r, i, 3));
		hb_raw(b, "</strong> by ");
		hb_text(b, PQgetvalue(r, i, 2));
		hb_raw(b, ": <span class=\"gm-detail\">");
		hb_text(b, PQgetvalue(r, i, 4));
		hb_raw(b, "</span></li>\n");
	}
	hb_raw(b, "</ol>\n");
	PQclear(r);
	return 0;
}

static struct web_resp *command(struct portal_req *q, int64_t cid)
{
	char id[24], title[64];
	const char *v[1] = { id };
	struct hbuf b;
	PGresult *r;

	snprintf(id, sizeof(id), "%lld", (long long)cid);
	r = mpg_query(q->db, "SELECT " LIST_COLS ", arg, issuer, status, encode(blob, 'hex'), "
		      "town_tseq FROM signed_commands WHERE id = $1::bigint", 1, v);
	hb_init(&b);
	if (!r)
		return portal_db_fail(q, &b, NULL, "command");
	if (PQntuples(r) != 1) {
		PQclear(r);
		hb_free(&b);
		return web_resp_error(404, "There is no such command.");
	}
	snprintf(title, sizeof(title), "Command %s", id);
	portal_page_begin(q, &b, title, "/op/commands", false);
	hb_printf(&b, "<h1>%s</h1>\n", title);
	command_table(&b, r, "command", "The command");
	hb_raw(&b, "<dl class=\"gm-facts\">\n<dt>First signed by</dt><dd>");
	hb_text(&b, PQgetvalue(r, 0, 11));
	hb_raw(&b, "</dd>\n<dt>Argument</dt><dd>");
	hb_text(&b, PQgetvalue(r, 0, 10));
	hb_raw(&b, "</dd>\n<dt>Batch</dt><dd>");
	hb_text(&b, PQgetvalue(r, 0, 4));
	hb_raw(&b, " command(s) in its operation</dd>\n<dt>Town queue</dt><dd>");
	hb_text(&b, PQgetisnull(r, 0, 14) ? "not queued" : PQgetvalue(r, 0, 14));
	hb_raw(&b, "</dd>\n<dt>Signed bytes (what its target verifies)</dt><dd><code "
	       "class=\"gm-code\" id=\"blob\">");
	hb_text(&b, PQgetvalue(r, 0, 13));
	hb_raw(&b, "</code></dd>\n</dl>\n");
	PQclear(r);
	if (history(q, &b, id))
		return portal_db_fail(q, &b, NULL, "history");
	portal_page_end(q, &b);
	return portal_done(&b, 200);
}

static struct web_resp *operation(struct portal_req *q, const struct opr *me, int64_t opn)
{
	char op[24], title[64];
	const char *v[1] = { op };
	bool waiting = false, own = false;
	struct hbuf b;
	PGresult *r;

	snprintf(op, sizeof(op), "%lld", (long long)opn);
	r = mpg_query(q->db, "SELECT " LIST_COLS ", issuer FROM signed_commands WHERE op = "
		      "$1::bigint ORDER BY town, meter", 1, v);
	hb_init(&b);
	if (!r)
		return portal_db_fail(q, &b, NULL, "operation");
	if (!PQntuples(r)) {
		PQclear(r);
		hb_free(&b);
		return web_resp_error(404, "There is no such operation.");
	}
	for (int i = 0; i < PQntuples(r); i++)
		waiting |= !strcmp(PQgetvalue(r, i, 6), "awaiting-approval");
	own = !strcmp(PQgetvalue(r, 0, 10), me->name);
	snprintf(title, sizeof(title), "Operation %s", op);
	portal_page_begin(q, &b, title, "/op/commands", false);
	hb_printf(&b, "<h1>%s</h1>\n<p class=\"gm-sub\" id=\"op-state\">", title);
	hb_text(&b, PQgetvalue(r, 0, 2));
	hb_printf(&b, ", %d command%s, issued by ", PQntuples(r), PQntuples(r) == 1 ? "" : "s");
	hb_text(&b, PQgetvalue(r, 0, 10));
	hb_raw(&b, ".");
	if (waiting && own)
		hb_raw(&b, " It waits for a second operator: you issued it, so another operator "
		       "must approve it.");
	else if (waiting)
		hb_printf(&b, " It waits for a second operator. <a href=\"/op/operations/%s/approve\">"
			  "Review and approve</a>", op);
	hb_raw(&b, "</p>\n");
	command_table(&b, r, "operation", "Its commands");
	PQclear(r);
	portal_page_end(q, &b);
	return portal_done(&b, 200);
}

/* ---- issue --------------------------------------------------------------------------------------- */

static const struct {
	const char *value, *label;
	int64_t s;
} expiries[] = {
	{ "5m", "5 minutes", 300 }, { "15m", "15 minutes", 900 }, { "1h", "1 hour", 3600 },
	{ "4h", "4 hours", 14400 }, { "24h", "24 hours", 86400 },
};

static void issue_form(struct portal_req *q, struct hbuf *b, const char *action,
		       const char *targets, const char *expires, const char *arg)
{
	hb_raw(b, "<form method=\"post\" action=\"/op/commands/new\" class=\"gm-form\" "
	       "id=\"issue\">\n");
	web_csrf_field(b, q->s.csrf);
	hb_raw(b, "<p><label for=\"action\">Action</label>\n<select id=\"action\" name=\"action\">");
	for (int a = 1; a <= GMC_ACTION_MAX; a++)
		hb_printf(b, "<option value=\"%s\"%s>%s</option>", gmc_action_name(a),
			  action && !strcmp(action, gmc_action_name(a)) ? " selected" : "",
			  gmc_action_name(a));
	hb_raw(b, "</select></p>\n<p><label for=\"targets\">Targets: <code>TOWN:METER</code>, "
	       "<code>TOWN:FIRST-LAST</code> for meters, <code>TOWN</code> for a town's action, "
	       "separated by spaces or commas</label>\n<textarea id=\"targets\" name=\"targets\" "
	       "rows=\"3\" required>");
	hb_text(b, targets ? targets : "");
	hb_raw(b, "</textarea></p>\n<p><label for=\"expires\">Valid for</label>\n<select "
	       "id=\"expires\" name=\"expires\">");
	for (size_t i = 0; i < sizeof(expiries) / sizeof(expiries[0]); i++)
		hb_printf(b, "<option value=\"%s\"%s>%s</option>", expiries[i].value,
			  (expires ? !strcmp(expires, expiries[i].value) : i == 1) ? " selected" : "",
			  expiries[i].label);
	hb_raw(b, "</select></p>\n<p><label for=\"arg\">Grid capacity in watts (town-supply only)"
	       "</label>\n<input id=\"arg\" name=\"arg\" inputmode=\"numeric\" value=\"");
	hb_attr(b, arg ? arg : "");
	hb_raw(b, "\"></p>\n<p><button type=\"submit\">Prepare for signing</button></p>\n</form>\n");
}

static struct web_resp *issue_page(struct portal_req *q, int status, const char *error)
{
	struct hbuf b;

	hb_init(&b);
	portal_page_begin(q, &b, "Issue a command", "/op/commands", false);
	hb_raw(&b, "<h1>Issue a command</h1>\n<p>The portal prepares the commands; you sign them "
	       "on the next page with your own key file, in this browser. Your key never leaves "
	       "your computer.</p>\n");
	if (error) {
		hb_raw(&b, "<p class=\"gm-alert gm-bad\" role=\"alert\" id=\"why\">");
		hb_text(&b, error);
		hb_raw(&b, "</p>\n");
	}
	issue_form(q, &b, web_form(q->r, "action"), web_form(q->r, "targets"),
		   web_form(q->r, "expires"), web_form(q->r, "arg"));
	portal_page_end(q, &b);
	return portal_done(&b, status);
}

/* Targets from the form: TOWN:METER, TOWN:A-B, TOWN. 0, or -1 with why. */
static int parse_targets(const char *text, bool town_action, struct mcmd_target *t, size_t *n,
			 char *why, size_t whylen)
{
	char buf[4096], *save = NULL;

	*n = 0;
	if (strlen(text) >= sizeof(buf)) {
		snprintf(why, whylen, "Too many targets for one page: at most %d (mainctl takes "
			 "more).", PORTAL_CMD_MAX);
		return -1;
	}
	strcpy(buf, text);
	for (char *w = strtok_r(buf, " ,;\t\r\n", &save); w; w = strtok_r(NULL, " ,;\t\r\n", &save)) {
		char *dash = town_action ? NULL : strchr(w, '-');
		struct mcmd_target a, z;

		if (dash) {
			char first[32];
			const char *colon = strchr(w, ':');

			*dash = '\0';
			if (!colon || mcmd_target_parse(w, false, &a) ||
			    snprintf(first, sizeof(first), "%u:%s", a.town, dash + 1) >=
			    (int)sizeof(first) || mcmd_target_parse(first, false, &z) ||
			    z.meter < a.meter) {
				snprintf(why, whylen, "'%.40s-%.20s' is not a range of meters "
					 "(TOWN:FIRST-LAST).", w, dash + 1);
				return -1;
			}
		} else if (mcmd_target_parse(w, town_action, &a)) {
			snprintf(why, whylen, "'%.40s' is not %s.", w, town_action ?
				 "a town number (1 to 65534)" :
				 "a meter (TOWN:METER, 1 to 65534 : 1 to 65535)");
			return -1;
		} else {
			z = a;
		}
		for (uint32_t m = a.meter; m <= z.meter; m++) {
			if (*n == PORTAL_CMD_MAX) {
				snprintf(why, whylen, "More than %d targets: use mainctl cmd issue for "
					 "larger operations.", PORTAL_CMD_MAX);
				return -1;
			}
			t[(*n)++] = (struct mcmd_target){ a.town, (uint16_t)m };
		}
	}
	if (!*n) {
		snprintf(why, whylen, "Name at least one target.");
		return -1;
	}
	return 0;
}

static struct web_resp *prepare(struct portal_req *q, const struct opr *me)
{
	const char *action_s = web_form(q->r, "action"), *targets = web_form(q->r, "targets");
	const char *expires = web_form(q->r, "expires"), *arg_s = web_form(q->r, "arg");
	struct mcmd_target t[PORTAL_CMD_MAX], dup;
	struct gmc_cmd c[PORTAL_CMD_MAX];
	int64_t life = 0, arg = 0, now = time(NULL);
	char why[200];
	size_t n;
	int action = action_s ? gmc_action_parse(action_s) : -1;
	struct hbuf b;

	if (action < 0)
		return issue_page(q, 400, "Choose an action.");
	for (size_t i = 0; expires && i < sizeof(expiries) / sizeof(expiries[0]); i++)
		if (!strcmp(expires, expiries[i].value))
			life = expiries[i].s;
	if (!life)
		return issue_page(q, 400, "Choose how long the command is valid.");
	if (action == GMC_TOWN_SUPPLY) {
		char *end;
		long long w = arg_s ? strtoll(arg_s, &end, 10) : -1;

		if (!arg_s || !*arg_s || *end || w < 0 || w > (1ll << 40))
			return issue_page(q, 400, "A town's grid capacity is a whole number of watts.");
		arg = w;
	} else if (arg_s && *arg_s) {
		return issue_page(q, 400, "Only town-supply takes a number of watts.");
	}
	if (parse_targets(targets ? targets : "", gmc_is_town_action(action), t, &n, why,
			  sizeof(why)))
		return issue_page(q, 400, why);
	if (mcmd_targets_sort(t, n, &dup)) {
		snprintf(why, sizeof(why), "Target %u:%u is named twice.", dup.town, dup.meter);
		return issue_page(q, 400, why);
	}
	if (mcmd_prepare(c, t, n, action, arg, now, life))
		return issue_page(q, 400, "These commands cannot be made (a field is out of range).");
	hb_init(&b);
	portal_page_begin(q, &b, "Sign the command", "/op/commands", false);
	hb_raw(&b, "<h1>Sign the command</h1>\n");
	summary(q, &b, c, n, NULL);
	hb_raw(&b, "<p>Nothing is stored until you sign. Signing happens in this browser with "
	       "your key file; only the signatures are sent.</p>\n");
	signing_form(q, &b, me, "/op/commands/sign", c, n, true, "Sign and issue");
	portal_page_end(q, &b);
	return portal_done(&b, 200);
}

/* n from the form, 1..max; -1 when absent or wrong */
static long form_n(struct portal_req *q, long max)
{
	const char *s = web_form(q->r, "n");
	char *end;
	long n = s ? strtol(s, &end, 10) : -1;

	return s && *s && !*end && n >= 1 && n <= max ? n : -1;
}

/* A signature field: 128 hex digits into sig. 0, or -1 (empty or not hex). */
static int form_sig(struct portal_req *q, size_t i, uint8_t sig[GMC_SIG_LEN])
{
	char name[16];
	const char *s;

	snprintf(name, sizeof(name), "s%zu", i);
	s = web_form(q->r, name);
	return s && strlen(s) == 2 * GMC_SIG_LEN && !gmp_hex_decode(s, sig, GMC_SIG_LEN) ? 0 : -1;
}

static const char no_sig[] = "The signatures did not come: signing needs JavaScript and your "
	"key file in this page (or use mainctl on your own computer).";

/*
 * The form sent again (a double click, back and resend): its commands' ids
 * are stored already, which mcmd_submit meets as a database error (the
 * primary key: a replay is never stored). true with the operation that
 * holds them in op, so the answer can say so instead of "try again".
 */
static bool issued_before(struct portal_req *q, const struct gmc_cmd *c, size_t n,
			  char op[MCMD_OP_LEN])
{
	char id[24];
	const char *v[1] = { id };
	PGresult *r;
	bool found = false;

	for (size_t i = 0; i < n && !found; i++) {
		snprintf(id, sizeof(id), "%llu", (unsigned long long)c[i].id);
		r = mpg_query(q->db, "SELECT op FROM signed_commands WHERE id = $1::bigint", 1, v);
		if (!r)
			return false;
		if (PQntuples(r) == 1) {
			snprintf(op, MCMD_OP_LEN, "%s", PQgetvalue(r, 0, 0));
			found = true;
		}
		PQclear(r);
	}
	return found;
}

static struct web_resp *refusal_op(struct portal_req *q, const char *op)
{
	char why[160], where[64];

	snprintf(why, sizeof(why), "These commands were already issued, in operation %s: a "
		 "signed form is stored once.", op);
	snprintf(where, sizeof(where), "/op/operations/%s", op);
	return refusal(q, 409, "Not issued again", why, where, "The operation");
}

static struct web_resp *submit(struct portal_req *q, const struct opr *me)
{
	struct gmc_cmd c[PORTAL_CMD_MAX];
	struct mcmd_policy pol;
	char op[MCMD_OP_LEN], why[300], where[64];
	long n = form_n(q, PORTAL_CMD_MAX);
	int rc;

	if (n < 0)
		return refusal(q, 400, "Not issued", "The form is incomplete: prepare the command "
			       "again.", "/op/commands/new", "Issue a command");
	for (long i = 0; i < n; i++) {
		char name[16];
		const char *h;
		uint8_t body[GMC_BODY_LEN];

		snprintf(name, sizeof(name), "b%ld", i);
		h = web_form(q->r, name);
		if (!h || strlen(h) != 2 * GMC_BODY_LEN || gmp_hex_decode(h, body, GMC_BODY_LEN) ||
		    gmc_body_decode(body, GMC_BODY_LEN, &c[i]))
			return refusal(q, 400, "Not issued", "The form is damaged: prepare the command "
				       "again.", "/op/commands/new", "Issue a command");
		if (form_sig(q, (size_t)i, c[i].sig[0].sig))
			return refusal(q, 400, "Not issued", no_sig, "/op/commands/new",
				       "Issue a command");
		/* named as this operator's: mcmd_submit checks it with their registered key */
		gmc_fingerprint(me->pk, c[i].sig[0].fpr);
		c[i].nsig = 1;
	}
	mcmd_policy_of(q->app->cfg, &pol);
	rc = mcmd_submit(q->db, &pol, me->name, c, (size_t)n, time(NULL), op, why, sizeof(why));
	if (rc < 0 && issued_before(q, c, (size_t)n, op))
		return refusal_op(q, op);
	if (rc < 0)
		return portal_db_error(q, "issue");
	if (rc)
		return refusal(q, 422, "Not issued", why, "/op/commands/new", "Issue a command");
	fprintf(stderr, "maind-portal: %s issued operation %s (%ld %s)\n", me->name, op, n,
		gmc_action_name(c[0].action));
	snprintf(where, sizeof(where), "/op/operations/%s", op);
	return web_resp_redirect(where);
}

/* ---- approve ------------------------------------------------------------------------------------- */

static struct web_resp *approve(struct portal_req *q, const struct opr *me, int64_t opn,
				bool post)
{
	struct mcmd_policy pol;
	struct mcmd_op o;
	char op[24], why[300], back[64], action[64];
	int64_t now = time(NULL);
	struct hbuf b;
	int rc;

	snprintf(op, sizeof(op), "%lld", (long long)opn);
	snprintf(back, sizeof(back), "/op/operations/%s", op);
	mcmd_policy_of(q->app->cfg, &pol);
	rc = mcmd_approve_load(q->db, &pol, NULL, NULL, op, me->name, now, &o, why, sizeof(why));
	if (rc < 0)
		return portal_db_error(q, "approve");
	if (rc)
		return refusal(q, 409, "Not approved", why, back, "Back to the operation");
	if (post) {
		long n = form_n(q, (long)o.n);

		if (n != (long)o.n) {
			mcmd_op_free(&o);
			return refusal(q, 409, "Not approved", "The operation changed since the page "
				       "was shown: review it again.", back, "Back to the operation");
		}
		for (size_t i = 0; i < o.n; i++) {
			if (form_sig(q, i, o.c[i].sig[1].sig)) {
				mcmd_op_free(&o);
				return refusal(q, 400, "Not approved", no_sig, back,
					       "Back to the operation");
			}
			/* checked against the approver's registered key by mcmd_approve_store */
			gmc_fingerprint(me->pk, o.c[i].sig[1].fpr);
			o.c[i].nsig = 2;
		}
		rc = mcmd_approve_store(q->db, &pol, NULL, NULL, &o, me->name, now, why,
					sizeof(why));
		mcmd_op_free(&o);
		if (rc < 0)
			return portal_db_error(q, "approve");
		if (rc)
			return refusal(q, 422, "Not approved", why, back, "Back to the operation");
		fprintf(stderr, "maind-portal: %s approved operation %s\n", me->name, op);
		return web_resp_redirect(back);
	}
	hb_init(&b);
	portal_page_begin(q, &b, "Approve an operation", "/op/commands", false);
	hb_printf(&b, "<h1>Approve operation %s</h1>\n", op);
	{
		char first[GMC_NAME_MAX * 2 + 8];
		const char *by = strstr(o.what, "first signed by ");

		snprintf(first, sizeof(first), "%s", by ? by + 16 : "another operator");
		summary(q, &b, o.c, o.n, first);
	}
	hb_raw(&b, "<p>Check that this is what was asked for. Your signature makes it valid at "
	       "its targets; it is sent at once.</p>\n");
	snprintf(action, sizeof(action), "/op/operations/%s/approve", op);
	signing_form(q, &b, me, action, o.c, o.n, false, "Sign and approve");
	mcmd_op_free(&o);
	portal_page_end(q, &b);
	return portal_done(&b, 200);
}

/* ---- routing --------------------------------------------------------------------------------------- */

struct web_resp *portal_commands_route(struct portal_req *q)
{
	const char *path = q->r->path, *rest = "";
	bool post = !strcmp(q->r->method, "POST");
	struct opr me;
	int64_t id;
	int rc;

	if (strcmp(path, "/op/commands") && strncmp(path, "/op/commands/", 13) &&
	    strncmp(path, "/op/operations/", 15))
		return NULL;
	if (!portal_is_operator(q))
		return portal_refuse(q);
	rc = opr_load(q, &me);
	if (rc < 0)
		return portal_db_error(q, "operator");
	if (!rc)
		return web_resp_error(403, "Your account is not linked to an operator any more.");
	if (!strcmp(path, "/op/commands/new"))
		return post ? prepare(q, &me) : issue_page(q, 200, NULL);
	if (!strcmp(path, "/op/commands/sign"))
		return post ? submit(q, &me) : web_resp_redirect("/op/commands/new");
	if (!strcmp(path, "/op/commands"))
		return post ? web_resp_error(405, "This page is read only.") : list(q, &me);
	id = portal_path_id(path, "/op/operations/", &rest);
	if (id > 0 && !*rest && !post)
		return operation(q, &me, id);
	if (id > 0 && !strcmp(rest, "/approve"))
		return approve(q, &me, id, post);
	id = portal_path_id(path, "/op/commands/", NULL);
	if (id > 0 && !post)
		return command(q, id);
	return web_resp_error(404, "There is no such page.");
}
