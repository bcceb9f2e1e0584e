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
 * Files: portal_main.c (config, server, routing), portal_auth.c (login,
 * second factor, sessions), portal_schema.c (web_users), portal_customer.c,
 * portal_operator.c (towns, meters, alerts, audit), portal_commands.c
 * (issue and approve), mainctl_web.c (mainctl web-user ...).
 */
#ifndef MAIND_PORTAL_H
#define MAIND_PORTAL_H

#include <pthread.h>
#include <stdint.h>

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

/* The schema list (appended to maind's, like every part's). */
extern const char *const portal_schema_sql[];

#endif
