/* SPDX-License-Identifier: GPL-2.0 */
/*
 * maind-portal: the utility portal, maind's web face (issue 14,
 * Documentation/portal.md). Its own process beside maind and
 * maind-notify, on the same PostgreSQL database: customers read their
 * bills, letters, graphs (never finer than hourly), notices and alerts;
 * operators (password + TOTP) see towns, meters, alerts with evidence,
 * signed commands and the audit log, and issue and approve commands,
 * signing them **in their browser** with their own key file (the key never
 * reaches the server: the same signed-command path as mainctl,
 * commands/cmd_submit.c).
 *
 * Files: portal_main.c (pool, sessions, routing, page frame),
 * portal_daemon.c (main: config, TLS files, the server), portal_auth.c (login,
 * second factor, sessions), portal_schema.c (web_users), portal_customer.c,
 * portal_operator.c (towns, meters, alerts, audit), portal_commands.c
 * (issue and approve), mainctl_web.c (mainctl web-user ...).
 */
#ifndef MAIND_PORTAL_H
#define MAIND_PORTAL_H

#include <pthread.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "auth.h"
#include "http.h"
#include "maind_config.h"
#include "maind_pg.h"

/* A database connection per request thread, from a small pool. */
struct portal_pool {
	pthread_mutex_t lock;	/* guards free list */
	pthread_cond_t cond;
	struct maind_pg *conn;	/* size connections */
	int *free_idx;
	int size, nfree;
	char conninfo[512];
};

struct portal {
	const struct maind_config *cfg;
	struct portal_pool pool;
	struct web_sessions sessions;	/* own lock */
	struct web_throttle throttle;	/* own lock */
	char currency[8];		/* for money on pages, from the tariffs */
};

/* The request as the page handlers see it: the session (role NONE when signed out). */
struct portal_req {
	struct portal *app;
	const struct web_req *r;
	struct web_session s;
	char token[WEB_TOKEN_LEN + 1];
	struct maind_pg *db;		/* a pooled connection for this request */
};

/* Handlers: each returns a response or NULL when the path is not its own. */
struct web_resp *portal_auth_route(struct portal_req *q);
struct web_resp *portal_customer_route(struct portal_req *q);
struct web_resp *portal_operator_route(struct portal_req *q);
struct web_resp *portal_commands_route(struct portal_req *q);

/* Page frame for the portal with its navigation for q's role. */
void portal_page_begin(struct portal_req *q, struct hbuf *b, const char *title,
		       const char *current, bool charts);
void portal_page_end(struct portal_req *q, struct hbuf *b);

/*
 * Sessions one account may hold at once (its devices, its tabs after each
 * sign-in): one more ends its least recently used, so that one account
 * cannot fill the session table and lock everyone else out.
 */
#define PORTAL_SESSIONS_PER_USER	8

/* The session cookie's name. */
#define PORTAL_COOKIE	"gm_portal"

/*
 * The portal's state: the pool (cfg->portal_pool connections to
 * conninfo), sessions (cfg's lifetimes), throttles, the currency. The
 * schema is created or checked on the first connection (mpg_schema).
 * 0 or -1 with err.
 */
int portal_open(struct portal *app, const struct maind_config *cfg, const char *conninfo,
		char *err, size_t errlen);
void portal_close(struct portal *app);
/* lib/web's handler for every request (app: struct portal). */
struct web_resp *portal_handle(void *app, const struct web_req *r);

/* The pool: a connection (blocks until one is free; reconnects a broken one) and back. */
int portal_pool_init(struct portal_pool *p, const char *conninfo, int size, char *err,
		     size_t errlen);
void portal_pool_free(struct portal_pool *p);
struct maind_pg *portal_pool_get(struct portal_pool *p);
void portal_pool_put(struct portal_pool *p, struct maind_pg *c);

/* Helpers for the handlers (portal_main.c). */
/* q's session is a customer's / an operator's who passed the second factor. */
bool portal_is_customer(const struct portal_req *q);
bool portal_is_operator(const struct portal_req *q);
/* Not signed in: to the login page; signed in with another role: 404 (nothing to see). */
struct web_resp *portal_refuse(const struct portal_req *q);
/* The 500 page, the database's error logged on stderr (never shown). */
struct web_resp *portal_db_error(const struct portal_req *q, const char *what);
/* The page in b as an HTML response (b's bytes taken, b freed). */
struct web_resp *portal_done(struct hbuf *b, int status);
/* A database error while writing b: r cleared, b freed, the error page. */
struct web_resp *portal_db_fail(struct portal_req *q, struct hbuf *b, PGresult *r,
				const char *what);
/* A path's numeric tail: "/bills/12" with prefix "/bills/" -> 12; -1 when not a number. */
int64_t portal_path_id(const char *path, const char *prefix, const char **rest);

/* The schema list (appended to maind's, like every part's). */
extern const char *const portal_schema_sql[];

#endif
