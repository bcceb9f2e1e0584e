/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lib/web: the HTTP side of gridmeter's two web daemons (the in-home
 * dashboard meterweb and the utility portal maind-portal), on GNU
 * libmicrohttpd. Documentation/web.md.
 *
 * One thread per connection (MHD_USE_THREAD_PER_CONNECTION, at most
 * conn_max connections, per-connection timeout): a handler may block (a
 * database query, a server-sent event stream waiting for the next value).
 * Handlers therefore run concurrently: whatever they share is locked by
 * its owner (see each daemon's state struct).
 *
 * A POST that a browser says comes from another site's page (Sec-Fetch-Site
 * other than same-origin/none, or an Origin whose host is not the Host) is
 * refused with 403 before the handler sees it.
 *
 * Every response carries the same security headers: a Content-Security-Policy
 * that allows only this origin's scripts, styles and images ("default-src
 * 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
 * X-Content-Type-Options nosniff, Referrer-Policy same-origin, and, on
 * TLS, Strict-Transport-Security. No inline scripts anywhere: pages pass
 * data to the scripts in data- attributes or <script type="application/json">.
 */
#ifndef GM_WEB_HTTP_H
#define GM_WEB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "html.h"

#define WEB_PARAMS_MAX	64	/* query + form fields kept per request */
#define WEB_BODY_MAX	(64 * 1024)	/* a larger request body is refused (413) */

struct web_param {
	const char *name, *value;	/* NUL-terminated, owned by the request */
};

struct web_req {
	const char *method;		/* "GET", "POST", ... */
	const char *path;		/* decoded, without the query */
	const struct web_param *query;	/* ?a=b&c=d, decoded */
	size_t nquery;
	const struct web_param *form;	/* application/x-www-form-urlencoded body (POST) */
	size_t nform;
	const char *cookie_header;	/* raw Cookie: header or NULL */
	const char *accept_encoding;	/* or NULL */
	const char *if_none_match;	/* or NULL */
	const char *user_agent;		/* or NULL */
	const char *forwarded_for;	/* X-Forwarded-For (a reverse proxy's word) or NULL */
	struct sockaddr_storage peer;	/* the client */
	char peer_text[64];		/* "192.0.2.1" / "2001:db8::1" */
	bool tls;			/* served over TLS: here, or by the reverse proxy in
					 * front (X-Forwarded-Proto: https from loopback) */
	void *conn;			/* libmicrohttpd's connection (lib/web only) */
};

/* The client connected from a loopback address (a reverse proxy on this host, or a
 * local program): only then are X-Forwarded-* headers believed. */
bool web_peer_is_loopback(const struct web_req *r);

/* A query or form field (first of that name) or NULL. */
const char *web_query(const struct web_req *r, const char *name);
const char *web_form(const struct web_req *r, const char *name);
/* The value of cookie name from the Cookie: header into out; 0 or -1 (absent / too long). */
int web_cookie(const struct web_req *r, const char *name, char *out, size_t size);

/*
 * A response. Build with the helpers below; the handler returns it to
 * lib/web, which sends it and frees it. Headers set here come after the
 * security headers.
 */
struct web_resp;

struct web_resp *web_resp_html(int status, struct hbuf *page);	/* takes page's bytes */
struct web_resp *web_resp_bytes(int status, const char *type, const void *data, size_t len,
				bool copy);	/* copy false: data must outlive the response */
struct web_resp *web_resp_text(int status, const char *text);	/* text/plain, copied */
struct web_resp *web_resp_redirect(const char *location);	/* 303 See Other */
/* A standard error page (status 400/401/403/404/405/413/429/500) with msg in words. */
struct web_resp *web_resp_error(int status, const char *msg);
/* Add a header; 0 or -1. */
int web_resp_header(struct web_resp *resp, const char *name, const char *value);
/*
 * Set-Cookie with HttpOnly, SameSite=Strict, Path=/ and, when the request
 * came over TLS, Secure. max_age_s 0 deletes the cookie.
 */
int web_resp_cookie(struct web_resp *resp, const struct web_req *r, const char *name,
		    const char *value, int64_t max_age_s);

/*
 * A server-sent event stream (text/event-stream). next() is called from
 * the connection's own thread; it may block (e.g. a condition variable
 * with a timeout) and appends zero or more complete events
 * ("event: x\ndata: ...\n\n") to out. It returns 0 to go on, -1 to end
 * the stream. done() is called once when the stream ends (client gone or
 * -1) with the same ctx.
 */
struct web_resp *web_resp_sse(int (*next)(void *ctx, struct hbuf *out),
			      void (*done)(void *ctx), void *ctx);

typedef struct web_resp *(*web_handler)(void *app, const struct web_req *r);

struct web_server_config {
	const char *listen;	/* "ADDR:PORT", "[ADDR6]:PORT" or ":PORT" (all addresses) */
	unsigned int conn_max;	/* default 32 */
	/* Connections one client address may hold (slow clients, event streams), so that
	 * one client cannot take them all; 0: no limit (a portal behind a proxy sees one
	 * address); at most conn_max. */
	unsigned int conn_per_addr;
	unsigned int timeout_s;	/* idle connection timeout, default 30 (not for SSE) */
	const char *tls_cert_pem, *tls_key_pem;	/* PEM text, both or neither */
	/* Called for each new connection; false refuses it (e.g. not a home-network address). */
	bool (*accept)(void *app, const struct sockaddr *peer, socklen_t len);
};

struct web_server;

/* Listens and serves: handler(app, req) for each request. NULL with err set on failure. */
struct web_server *web_server_start(const struct web_server_config *cfg, web_handler handler,
				    void *app, char *err, size_t errlen);
/* The port actually bound (for ":0" in tests). */
unsigned int web_server_port(const struct web_server *s);
void web_server_stop(struct web_server *s);

/* An embedded static asset (lib/web/assets.h) as a response, or NULL when path is not one:
 * gzip when the client accepts it, ETag and Cache-Control, 304 on If-None-Match. */
struct web_resp *web_resp_asset(const struct web_req *r, const char *path);

/* True for loopback, RFC 1918, RFC 6598 (CGNAT), link-local, fc00::/7, fe80::/10. */
bool web_addr_is_local(const struct sockaddr *sa);

#endif
