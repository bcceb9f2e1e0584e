// SPDX-License-Identifier: GPL-2.0
/*
 * maind-portal: the database pool, the sessions, routing every request to
 * the part that owns its path, and the page frame with each role's
 * navigation (portal.h, Documentation/portal.md "Architecture").
 *
 * A request runs on its own connection thread (lib/web): it borrows one
 * pooled PostgreSQL connection for its whole life and gives it back, so
 * at most `pool` queries run at once and a slow page waits for a free
 * connection instead of opening one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "layout.h"
#include "portal.h"

/* ---- the pool ----------------------------------------------------------------------------- */

static int pg_connect(struct maind_pg *c, const char *conninfo, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->c = PQconnectdb(conninfo);
	if (PQstatus(c->c) != CONNECTION_OK) {
		snprintf(err, errlen, "PostgreSQL: %s", PQerrorMessage(c->c));
		return -1;
	}
	return 0;
}

int portal_pool_init(struct portal_pool *p, const char *conninfo, int size, char *err,
		     size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (size < 1 || snprintf(p->conninfo, sizeof(p->conninfo), "%s", conninfo) >=
	    (int)sizeof(p->conninfo)) {
		snprintf(err, errlen, "pool: bad size or conninfo too long");
		return -1;
	}
	p->conn = calloc((size_t)size, sizeof(*p->conn));
	p->free_idx = calloc((size_t)size, sizeof(*p->free_idx));
	if (!p->conn || !p->free_idx) {
		snprintf(err, errlen, "pool: out of memory");
		portal_pool_free(p);
		return -1;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (int i = 0; i < size; i++) {
		p->size++;
		if (pg_connect(&p->conn[i], conninfo, err, errlen)) {
			portal_pool_free(p);
			return -1;
		}
		p->free_idx[p->nfree++] = i;
	}
	return 0;
}

void portal_pool_free(struct portal_pool *p)
{
	for (int i = 0; p->conn && i < p->size; i++)
		PQfinish(p->conn[i].c);
	if (p->conn) {
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
	}
	free(p->conn);
	free(p->free_idx);
	p->conn = NULL;
	p->free_idx = NULL;
	p->size = p->nfree = 0;
}

struct maind_pg *portal_pool_get(struct portal_pool *p)
{
	struct maind_pg *c;

	pthread_mutex_lock(&p->lock);
	while (!p->nfree)
		pthread_cond_wait(&p->cond, &p->lock);
	c = &p->conn[p->free_idx[--p->nfree]];
	pthread_mutex_unlock(&p->lock);
	/* PostgreSQL restarted since: one new try (the request fails cleanly if not) */
	if (PQstatus(c->c) != CONNECTION_OK)
		PQreset(c->c);
	c->err[0] = '\0';
	return c;
}

void portal_pool_put(struct portal_pool *p, struct maind_pg *c)
{
	/* a handler that failed inside a transaction leaves it to us */
	if (PQtransactionStatus(c->c) != PQTRANS_IDLE)
		PQclear(PQexec(c->c, "ROLLBACK"));
	c->in_tx = false;
	pthread_mutex_lock(&p->lock);
	p->free_idx[p->nfree++] = (int)(c - p->conn);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* ---- the portal ----------------------------------------------------------------------------- */

int portal_open(struct portal *app, const struct maind_config *cfg, const char *conninfo,
		char *err, size_t errlen)
{
	PGresult *r;

	memset(app, 0, sizeof(*app));
	app->cfg = cfg;
	if (!conninfo)
		conninfo = cfg->conninfo;
	if (portal_pool_init(&app->pool, conninfo, (int)cfg->portal_pool, err, errlen))
		return -1;
	/*
	 * maind's schema is maind's to make (and mainctl's): the portal makes it
	 * only when its own table is missing (a first start before maind's), one
	 * process at a time (CREATE OR REPLACE run concurrently fails).
	 */
	r = PQexec(app->pool.conn[0].c, "SELECT to_regclass('web_users') IS NULL");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "PostgreSQL: %s", PQresultErrorMessage(r));
		PQclear(r);
		goto fail;
	}
	if (!strcmp(PQgetvalue(r, 0, 0), "t")) {
		int rc;

		PQclear(PQexec(app->pool.conn[0].c, "SELECT pg_advisory_lock(" MPG_LOCK_PORTAL ")"));
		rc = mpg_schema(app->pool.conn[0].c, err, errlen);
		PQclear(PQexec(app->pool.conn[0].c, "SELECT pg_advisory_unlock(" MPG_LOCK_PORTAL ")"));
		if (rc) {
			PQclear(r);
			goto fail;
		}
	}
	PQclear(r);
	snprintf(app->currency, sizeof(app->currency), "GBP");
	r = PQexec(app->pool.conn[0].c, "SELECT currency FROM tariff_plans GROUP BY currency "
		   "ORDER BY count(*) DESC, currency LIMIT 1");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r))
		snprintf(app->currency, sizeof(app->currency), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	if (web_sessions_init(&app->sessions, 4096, cfg->portal_session_s, cfg->portal_idle_s)) {
		snprintf(err, errlen, "sessions: out of memory");
		goto fail;
	}
	/* 5 failed logins per address or name per 5 minutes, as lib/web's default */
	if (web_throttle_init(&app->throttle, 4096, 5, 300)) {
		web_sessions_free(&app->sessions);
		snprintf(err, errlen, "throttle: out of memory");
		goto fail;
	}
	return 0;
fail:
	portal_pool_free(&app->pool);
	return -1;
}

void portal_close(struct portal *app)
{
	web_throttle_free(&app->throttle);
	web_sessions_free(&app->sessions);
	portal_pool_free(&app->pool);
}

/* ---- helpers for the handlers --------------------------------------------------------------- */

bool portal_is_customer(const struct portal_req *q)
{
	return q->s.role == WEB_ROLE_CUSTOMER && q->s.subject > 0 && !q->s.pending_second_factor;
}

bool portal_is_operator(const struct portal_req *q)
{
	return q->s.role == WEB_ROLE_OPERATOR && !q->s.pending_second_factor;
}

struct web_resp *portal_refuse(const struct portal_req *q)
{
	if (q->s.role == WEB_ROLE_NONE)
		return web_resp_redirect("/login");
	if (q->s.pending_second_factor)
		return web_resp_redirect("/totp");
	return web_resp_error(404, "There is no such page.");
}

struct web_resp *portal_db_error(const struct portal_req *q, const char *what)
{
	fprintf(stderr, "maind-portal: %s %s: %s: %s\n", q->r->method, q->r->path, what,
		q->db && q->db->err[0] ? q->db->err :
		q->db ? PQerrorMessage(q->db->c) : "no connection");
	return web_resp_error(500, "The database did not answer. Please try again in a minute.");
}

int64_t portal_path_id(const char *path, const char *prefix, const char **rest)
{
	size_t n = strlen(prefix);
	int64_t v = 0;
	const char *s;

	if (strncmp(path, prefix, n))
		return -1;
	s = path + n;
	if (*s < '1' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (rest)
		*rest = s;
	else if (*s)
		return -1;
	return v;
}

/* ---- the page frame ----------------------------------------------------------------------- */

static const struct web_nav customer_nav[] = {
	{ "/bills", "Bills" },
	{ "/usage", "Usage" },
	{ "/notices", "Notices" },
	{ "/alerts", "Alerts" },
	{ NULL, NULL },
};

static const struct web_nav operator_nav[] = {
	{ "/op/towns", "Towns" },
	{ "/op/meters", "Meters" },
	{ "/op/alerts", "Alerts" },
	{ "/op/commands", "Commands" },
	{ "/op/audit", "Audit log" },
	{ NULL, NULL },
};

/* gm.js comes with every page (layout.c); operators' pages also sign commands */
static const char *const scripts_operator[] = { "/static/gm-sign.js", NULL };

static void page_of(const struct portal_req *q, struct web_page *pg, const char *title,
		    const char *current, bool charts)
{
	bool cust = portal_is_customer(q), op = portal_is_operator(q);

	memset(pg, 0, sizeof(*pg));
	pg->title = title;
	pg->product = "gridmeter utility portal";
	pg->nav = cust ? customer_nav : op ? operator_nav : NULL;
	pg->current = current;
	pg->user = q->s.role != WEB_ROLE_NONE ? q->s.user : NULL;
	pg->role_label = cust ? "customer" : op ? "operator" :
			 q->s.pending_second_factor ? "second factor needed" : NULL;
	pg->csrf = q->s.role != WEB_ROLE_NONE ? q->s.csrf : NULL;
	pg->logout_action = "/logout";
	pg->scripts = op ? scripts_operator : NULL;
	pg->charts = charts;
}

void portal_page_begin(struct portal_req *q, struct hbuf *b, const char *title,
		       const char *current, bool charts)
{
	struct web_page pg;

	page_of(q, &pg, title, current, charts);
	web_page_begin(b, &pg);
}

void portal_page_end(struct portal_req *q, struct hbuf *b)
{
	struct web_page pg;

	page_of(q, &pg, NULL, NULL, false);
	web_page_end(b, &pg);
}

/* ---- routing -------------------------------------------------------------------------------- */

struct web_resp *portal_handle(void *vapp, const struct web_req *r)
{
	struct portal *app = vapp;
	struct portal_req q = { .app = app, .r = r };
	struct web_resp *resp = NULL;
	int64_t now = time(NULL);
	bool post = !strcmp(r->method, "POST");

	if (!strncmp(r->path, "/static/", 8)) {
		resp = web_resp_asset(r, r->path);
		return resp ? resp : web_resp_error(404, "There is no such file.");
	}
	if (!post && strcmp(r->method, "GET") && strcmp(r->method, "HEAD"))
		return web_resp_error(405, "Only GET and POST are used here.");
	if (web_cookie(r, PORTAL_COOKIE, q.token, sizeof(q.token)) ||
	    web_session_get(&app->sessions, q.token, now, &q.s)) {
		memset(&q.s, 0, sizeof(q.s));
		q.token[0] = '\0';
	}
	/* every form that changes something carries the session's token (the login
	 * form has its own, portal_auth.c): a page of another site cannot post here */
	if (post && strcmp(r->path, "/login") &&
	    (q.s.role == WEB_ROLE_NONE || !web_csrf_ok(&q.s, web_form(r, "csrf"))))
		return web_resp_error(403, "This form has expired or did not come from this "
				      "portal. Please go back, reload the page and try again.");
	q.db = portal_pool_get(&app->pool);
	resp = portal_auth_route(&q);
	if (!resp && q.s.pending_second_factor)
		resp = web_resp_redirect("/totp");
	if (!resp)
		resp = portal_customer_route(&q);
	if (!resp)
		resp = portal_operator_route(&q);
	if (!resp)
		resp = portal_commands_route(&q);
	portal_pool_put(&app->pool, q.db);
	/* (not a redirect to /login when signed out: a browser's own requests, such
	 * as /favicon.ico, would fetch the login page and renew its token) */
	if (!resp)
		resp = web_resp_error(404, "There is no such page.");
	/* personal pages: never kept by a browser or a proxy */
	if (resp)
		web_resp_header(resp, "Cache-Control", "no-store");
	return resp;
}

struct web_resp *portal_done(struct hbuf *b, int status)
{
	struct web_resp *resp = web_resp_html(status, b);

	hb_free(b);
	return resp;
}

struct web_resp *portal_db_fail(struct portal_req *q, struct hbuf *b, PGresult *r,
				const char *what)
{
	PQclear(r);
	hb_free(b);
	return portal_db_error(q, what);
}
