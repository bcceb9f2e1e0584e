// SPDX-License-Identifier: GPL-2.0
/*
 * HTTP for the web daemons on GNU libmicrohttpd (http.h): one thread per
 * connection, the security headers on every response, query/form/cookie
 * parsing, server-sent events, static assets with gzip and ETags.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "assets.h"
#include "http.h"

#define CSP "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
#define HSTS "max-age=31536000"
/* GnuTLS's defaults without TLS 1.0 and 1.1 (RFC 8996; gnutls 3.7 still offered them). */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define SSE_KEEPALIVE_S	15	/* a comment line this often keeps proxies and dead peers honest */

struct sse;

struct web_resp {
	int status;
	struct MHD_Response *r;
	struct sse *sse;	/* a server-sent event stream's state, or NULL */
};

struct web_server {
	struct MHD_Daemon *d;
	int fd;
	unsigned int port;
	bool tls;
	web_handler handler;
	void *app;
	bool (*accept)(void *app, const struct sockaddr *peer, socklen_t len);
	char *cert, *key;	/* libmicrohttpd keeps the pointers */
	atomic_bool stopping;	/* read by SSE streams between events */
};

/* Per request, from the first call of the access handler to the completion notice. */
struct req_ctx {
	struct hbuf body;
	bool too_large;
	struct web_param query[WEB_PARAMS_MAX];
	size_t nquery;
	struct web_param form[WEB_PARAMS_MAX];
	size_t nform;
};

/* ---- requests ----------------------------------------------------------- */

const char *web_query(const struct web_req *r, const char *name)
{
	for (size_t i = 0; i < r->nquery; i++)
		if (!strcmp(r->query[i].name, name))
			return r->query[i].value;
	return NULL;
}

const char *web_form(const struct web_req *r, const char *name)
{
	for (size_t i = 0; i < r->nform; i++)
		if (!strcmp(r->form[i].name, name))
			return r->form[i].value;
	return NULL;
}

int web_cookie(const struct web_req *r, const char *name, char *out, size_t size)
{
	const char *p = r->cookie_header;
	size_t nlen = strlen(name);

	if (!p || !size)
		return -1;
	while (*p) {
		const char *end, *v;
		size_t vlen;

		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (!end)
			end = p + strlen(p);
		if ((size_t)(end - p) > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
			v = p + nlen + 1;
			vlen = (size_t)(end - v);
			while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
				v++;
				vlen -= 2;
			}
			if (vlen >= size)
				return -1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return 0;
		}
		p = end;
	}
	return -1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes s in place ('+' is a space, %XX a byte); -1 for %00 (a NUL would cut the value). */
static int urldecode(char *s)
{
	char *w = s;

	for (; *s; s++) {
		int hi, lo;

		if (*s == '+') {
			*w++ = ' ';
		} else if (*s == '%' && (hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0) {
			if (!hi && !lo)
				return -1;
			*w++ = (char)(hi * 16 + lo);
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
	return 0;
}

/* application/x-www-form-urlencoded body (NUL-terminated, modified in place); -1 when malformed. */
static int parse_form(char *body, struct web_param *out, size_t *n)
{
	char *save = NULL;

	*n = 0;
	for (char *f = strtok_r(body, "&", &save); f; f = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(f, '=');

		if (eq)
			*eq = '\0';
		if (urldecode(f) || (eq && urldecode(eq + 1)))
			return -1;
		if (!*f)
			continue;
		if (*n == WEB_PARAMS_MAX)
			return -1;
		out[*n].name = f;
		out[*n].value = eq ? eq + 1 : "";
		(*n)++;
	}
	return 0;
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	struct req_ctx *c = cls;

	(void)kind;
	if (!key || c->nquery == WEB_PARAMS_MAX)
		return MHD_YES;
	c->query[c->nquery].name = key;
	c->query[c->nquery].value = value ? value : "";
	c->nquery++;
	return MHD_YES;
}

static void peer_to_text(const struct sockaddr *sa, char *out, size_t size)
{
	snprintf(out, size, "?");
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)size);
		else
			inet_ntop(AF_INET6, a, out, (socklen_t)size);
	}
}

bool web_peer_is_loopback(const struct web_req *r)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)&r->peer;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&r->peer;

	if (r->peer.ss_family == AF_INET)
		return (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
	if (r->peer.ss_family != AF_INET6)
		return false;
	if (IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr) && a6->sin6_addr.s6_addr[12] == 127;
}

bool web_addr_is_local(const struct sockaddr *sa)
{
	const uint8_t *b;

	if (!sa)
		return false;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		if ((a->s6_addr[0] & 0xfe) == 0xfc)		/* fc00::/7 unique local */
			return true;
		if (a->s6_addr[0] == 0xfe && (a->s6_addr[1] & 0xc0) == 0x80)	/* fe80::/10 */
			return true;
		if (!IN6_IS_ADDR_V4MAPPED(a))
			return false;
		b = &a->s6_addr[12];
	} else if (sa->sa_family == AF_INET) {
		b = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else {
		return sa->sa_family == AF_UNIX;
	}
	return b[0] == 127 ||					/* loopback */
	       b[0] == 10 ||					/* RFC 1918 */
	       (b[0] == 172 && (b[1] & 0xf0) == 16) ||
	       (b[0] == 192 && b[1] == 168) ||
	       (b[0] == 100 && (b[1] & 0xc0) == 64) ||		/* RFC 6598 */
	       (b[0] == 169 && b[1] == 254);			/* link-local */
}

/* ---- responses ---------------------------------------------------------- */

static struct web_resp *resp_wrap(int status, struct MHD_Response *r)
{
	struct web_resp *w;

	if (!r)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w) {
		MHD_destroy_response(r);
		return NULL;
	}
	w->status = status;
	w->r = r;
	if (MHD_add_response_header(r, "Content-Security-Policy", CSP) != MHD_YES ||
	    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") != MHD_YES ||
	    MHD_add_response_header(r, "X-Frame-Options", "DENY") != MHD_YES ||
	    MHD_add_response_header(r, "Referrer-Policy", "same-origin") != MHD_YES) {
		MHD_destroy_response(r);
		free(w);
		return NULL;
	}
	return w;
}

static void resp_free(struct web_resp *w)
{
	if (!w)
		return;
	MHD_destroy_response(w->r);
	free(w);
}

int web_resp_header(struct web_resp *resp, const char *name, const char *value)
{
	if (!resp || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
		return -1;
	return MHD_add_response_header(resp->r, name, value) == MHD_YES ? 0 : -1;
}

struct web_resp *web_resp_bytes(int status, const char *type, const void *data, size_t len,
				bool copy)
{
	struct web_resp *w = resp_wrap(status, MHD_create_response_from_buffer(
		len, (void *)data, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT));

	if (w && type && web_resp_header(w, "Content-Type", type)) {
		resp_free(w);
		return NULL;
	}
	return w;
}

struct web_resp *web_resp_html(int status, struct hbuf *page)
{
	struct web_resp *w;

	if (page->oom) {
		hb_free(page);
		return web_resp_error(500, "The page could not be built (out of memory).");
	}
	w = resp_wrap(status, MHD_create_response_from_buffer(page->len, page->p ? page->p : "",
		page->p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT));
	if (!w) {
		hb_free(page);
		return NULL;
	}
	hb_init(page);	/* the response owns the bytes now */
	if (web_resp_header(w, "Content-Type", "text/html; charset=utf-8") ||
	    web_resp_header(w, "Cache-Control", "no-store")) {
		resp_free(w);
		return NULL;
	}
	return w;
}

struct web_resp *web_resp_text(int status, const char *text)
{
	struct web_resp *w = web_resp_bytes(status, "text/plain; charset=utf-8", text,
					    strlen(text), true);

	if (w && web_resp_header(w, "Cache-Control", "no-store")) {
		resp_free(w);
		return NULL;
	}
	return w;
}

struct web_resp *web_resp_redirect(const char *location)
{
	struct web_resp *w = web_resp_bytes(303, NULL, "", 0, false);

	if (w && (web_resp_header(w, "Location", location) ||
		  web_resp_header(w, "Cache-Control", "no-store"))) {
		resp_free(w);
		return NULL;
	}
	return w;
}

static const char *status_words(int status)
{
	switch (status) {
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

struct web_resp *web_resp_error(int status, const char *msg)
{
	struct hbuf b;

	hb_init(&b);
	hb_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		  "<title>%d %s</title><link rel=\"stylesheet\" href=\"/static/gm.css\"></head>\n"
		  "<body><main id=\"main\" class=\"gm-error\"><h1>%d %s</h1>\n<p>",
		  status, status_words(status), status, status_words(status));
	hb_text(&b, msg);
	hb_raw(&b, "</p>\n<p><a href=\"/\">Back to the start page</a></p></main></body></html>\n");
	return web_resp_html(status, &b);
}

static bool cookie_token_ok(const char *s, bool value)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || c == ';' || c == ',' || c == '"' || c == '\\' ||
		    (!value && (c == '=' || c == '(' || c == ')' || c == '<' || c == '>' ||
				c == '@' || c == ':' || c == '/' || c == '[' || c == ']' ||
				c == '?' || c == '{' || c == '}')))
			return false;
	}
	return true;
}

int web_resp_cookie(struct web_resp *resp, const struct web_req *r, const char *name,
		    const char *value, int64_t max_age_s)
{
	char line[512];
	int n;

	if (!resp || !*name || !cookie_token_ok(name, false) || !cookie_token_ok(value, true))
		return -1;
	if (max_age_s < 0)
		max_age_s = 0;
	n = snprintf(line, sizeof(line), "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
		     name, max_age_s ? value : "", (long long)max_age_s,
		     r && r->tls ? "; Secure" : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return web_resp_header(resp, "Set-Cookie", line);
}

/* ---- server-sent events ------------------------------------------------- */

struct sse {
	int (*next)(void *ctx, struct hbuf *out);
	void (*done)(void *ctx);
	void *ctx;
	const atomic_bool *stopping;	/* set when the response is queued */
	struct hbuf pending;
	size_t off;
	bool ended;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *s = cls;
	int64_t last = mono_ms();

	(void)pos;
	while (s->off == s->pending.len) {
		int64_t t0;
		int rc;

		hb_reset(&s->pending);
		s->off = 0;
		if (s->ended || (s->stopping && atomic_load(s->stopping)))
			return MHD_CONTENT_READER_END_OF_STREAM;
		t0 = mono_ms();
		rc = s->next(s->ctx, &s->pending);
		if (s->pending.oom)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (rc < 0)
			s->ended = true;
		if (s->pending.len)
			break;
		if (!s->ended && mono_ms() - last >= SSE_KEEPALIVE_S * 1000) {
			hb_raw(&s->pending, ": keep-alive\n\n");
			break;
		}
		if (mono_ms() - t0 < 1) {	/* next() did not block: do not spin */
			struct timespec nap = { 0, 50 * 1000 * 1000 };

			nanosleep(&nap, NULL);
		}
	}
	if (max > s->pending.len - s->off)
		max = s->pending.len - s->off;
	memcpy(buf, s->pending.p + s->off, max);
	s->off += max;
	return (ssize_t)max;
}

static void sse_free(void *cls)
{
	struct sse *s = cls;

	if (s->done)
		s->done(s->ctx);
	hb_free(&s->pending);
	free(s);
}

struct web_resp *web_resp_sse(int (*next)(void *ctx, struct hbuf *out),
			      void (*done)(void *ctx), void *ctx)
{
	struct sse *s = calloc(1, sizeof(*s));
	struct web_resp *w;

	if (!s) {
		if (done)
			done(ctx);
		return NULL;
	}
	s->next = next;
	s->done = done;
	s->ctx = ctx;
	hb_init(&s->pending);
	/* On failure libmicrohttpd does not call sse_free: do it here. */
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
								    sse_read, s, sse_free);
	if (!r) {
		sse_free(s);
		return NULL;
	}
	w = resp_wrap(200, r);	/* destroys r, and so s, on failure */
	if (!w)
		return NULL;
	w->sse = s;
	if (web_resp_header(w, "Content-Type", "text/event-stream") ||
	    web_resp_header(w, "Cache-Control", "no-store") ||
	    web_resp_header(w, "X-Accel-Buffering", "no")) {
		resp_free(w);
		return NULL;
	}
	return w;
}

/* ---- static assets ------------------------------------------------------ */

/* true when the comma-separated header lists tag (or "*"), weak or not. */
static bool etag_listed(const char *header, const char *tag)
{
	size_t tlen = strlen(tag);
	const char *p = header;

	while (p && *p) {
		const char *end;
		size_t len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!strncmp(p, "W/", 2))
			p += 2;
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if ((len == 1 && *p == '*') || (len == tlen && !memcmp(p, tag, tlen)))
			return true;
		p = end;
	}
	return false;
}

/* true when Accept-Encoding allows gzip (listed, or "*", with q > 0). */
static bool accepts_gzip(const char *header)
{
	const char *p = header;
	bool star = false;

	while (p && *p) {
		const char *end, *semi, *q;
		size_t len;
		bool zero = false;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		semi = memchr(p, ';', (size_t)(end - p));
		len = (size_t)((semi ? semi : end) - p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (semi && (q = strstr(semi, "q=")) && q < end) {
			q += 2;
			zero = q[0] == '0' && (q[1] != '.' || strspn(q + 2, "0") ==
					       (size_t)(end - q - 2));
		}
		if ((len == 4 && !strncasecmp(p, "gzip", 4)) ||
		    (len == 6 && !strncasecmp(p, "x-gzip", 6)))
			return !zero;
		if (len == 1 && *p == '*')
			star = !zero;
		p = end;
	}
	return star;
}

struct web_resp *web_resp_asset(const struct web_req *r, const char *path)
{
	const struct web_asset *a = web_asset_find(path);
	struct web_resp *w;
	bool gz;

	if (!a)
		return NULL;
	if (r->if_none_match && etag_listed(r->if_none_match, a->etag)) {
		w = web_resp_bytes(304, NULL, "", 0, false);
	} else {
		gz = a->gz && accepts_gzip(r->accept_encoding);
		w = web_resp_bytes(200, a->type, gz ? a->gz : a->data, gz ? a->gz_len : a->len,
				   false);
		if (w && gz && web_resp_header(w, "Content-Encoding", "gzip")) {
			resp_free(w);
			return NULL;
		}
	}
	if (w && (web_resp_header(w, "ETag", a->etag) ||
		  web_resp_header(w, "Cache-Control", "no-cache") ||
		  web_resp_header(w, "Vary", "Accept-Encoding"))) {
		resp_free(w);
		return NULL;
	}
	return w;
}

/* ---- the server ---------------------------------------------------------- */

/*
 * The path and query arguments: %HH decoded except %00, which stays as
 * the three characters (a NUL would cut "/%00/x" to "/", and a query value
 * short). libmicrohttpd has already turned '+' into ' ' in arguments.
 */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	char *w = s, *start = s;

	(void)cls;
	(void)conn;
	for (; *s; s++) {
		int hi, lo;

		if (*s == '%' && (hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0 &&
		    (hi || lo)) {
			*w++ = (char)(hi * 16 + lo);
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
	return (size_t)(w - start);
}

static enum MHD_Result queue(struct web_server *s, struct MHD_Connection *conn,
			     struct web_resp *w)
{
	enum MHD_Result ret;

	if (!w)
		w = web_resp_error(500, "The server could not answer this request.");
	if (!w)
		return MHD_NO;
	if (s->tls)
		MHD_add_response_header(w->r, "Strict-Transport-Security", HSTS);
	if (w->sse) {
		w->sse->stopping = &s->stopping;
		/* No idle timeout: the stream sends a comment every SSE_KEEPALIVE_S. */
		MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, 0);
	}
	ret = MHD_queue_response(conn, (unsigned int)w->status, w->r);
	resp_free(w);
	return ret;
}

/*
 * A POST a browser sent from another site's page (login CSRF, or wrong
 * passwords posted through the household's own browser, which is on the
 * home network, to lock the household out) is refused. Browsers name the
 * page's origin in Origin and, since 2020, Sec-Fetch-Site; a client that
 * sends neither (curl, tests) is not a browser a page can drive. The
 * origin's host[:port] must be the Host the request was sent to (the
 * scheme is not compared: a TLS-terminating proxy in front is fine).
 */
static bool post_same_origin(struct MHD_Connection *conn)
{
	const char *site = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-Fetch-Site");
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	const char *sep;

	if (site && strcasecmp(site, "same-origin") && strcasecmp(site, "none"))
		return false;
	if (!origin)
		return true;
	sep = strstr(origin, "://");
	return sep && host && !strcasecmp(sep + 3, host);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct web_server *s = cls;
	struct req_ctx *c = *con_cls;
	const union MHD_ConnectionInfo *ci;
	struct web_req r;
	const char *ctype;

	(void)version;
	if (!c) {
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);

		c = calloc(1, sizeof(*c));
		if (!c)
			return MHD_NO;
		hb_init(&c->body);
		*con_cls = c;
		if (strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "POST")) {
			struct web_resp *w = web_resp_error(405, "This method is not used here.");

			if (w && web_resp_header(w, "Allow", "GET, HEAD, POST")) {
				resp_free(w);
				w = NULL;
			}
			return queue(s, conn, w);
		}
		if (!strcmp(method, "POST") && !post_same_origin(conn))
			return queue(s, conn, web_resp_error(403, "Forms are only taken from this "
							     "site's own pages."));
		if (cl && strtoull(cl, NULL, 10) > WEB_BODY_MAX)
			return queue(s, conn, web_resp_error(413, "The request is too large."));
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!c->too_large && c->body.len + *upload_data_size <= WEB_BODY_MAX)
			hb_rawn(&c->body, upload_data, *upload_data_size);
		else
			c->too_large = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (c->too_large)
		return queue(s, conn, web_resp_error(413, "The request is too large."));
	if (c->body.oom)
		return queue(s, conn, web_resp_error(500, "Out of memory."));

	memset(&r, 0, sizeof(r));
	r.method = method;
	r.path = url;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, c);
	r.query = c->query;
	r.nquery = c->nquery;
	ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!strcmp(method, "POST") && c->body.len && ctype &&
	    !strncasecmp(ctype, "application/x-www-form-urlencoded", 33)) {
		if (memchr(c->body.p, '\0', c->body.len) ||
		    parse_form(c->body.p, c->form, &c->nform))
			return queue(s, conn, web_resp_error(400, "The form could not be read."));
	}
	r.form = c->form;
	r.nform = c->nform;
	r.cookie_header = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
	r.accept_encoding = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_ACCEPT_ENCODING);
	r.if_none_match = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	r.user_agent = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						   MHD_HTTP_HEADER_USER_AGENT);
	r.forwarded_for = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		socklen_t len = ci->client_addr->sa_family == AF_INET6 ?
			sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

		memcpy(&r.peer, ci->client_addr, len);
		peer_to_text(ci->client_addr, r.peer_text, sizeof(r.peer_text));
	}
	{
		const char *proto = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								"X-Forwarded-Proto");

		r.tls = s->tls || (proto && !strcasecmp(proto, "https") &&
				   web_peer_is_loopback(&r));
	}
	r.conn = conn;
	return queue(s, conn, s->handler(s->app, &r));
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req_ctx *c = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (!c)
		return;
	hb_free(&c->body);
	free(c);
	*con_cls = NULL;
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct web_server *s = cls;

	if (atomic_load(&s->stopping))
		return MHD_NO;
	return !s->accept || s->accept(s->app, addr, len) ? MHD_YES : MHD_NO;
}

/* "ADDR:PORT", "[ADDR6]:PORT", ":PORT" or "PORT": a bound, listening socket, or -1. */
static int listen_on(const char *listen_spec, char *err, size_t errlen)
{
	char host[128] = "", port[16];
	const char *colon;
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, rc, one = 1, zero = 0;

	if (listen_spec[0] == '[') {
		const char *close = strchr(listen_spec, ']');

		if (!close || close[1] != ':' || (size_t)(close - listen_spec - 1) >= sizeof(host)) {
			snprintf(err, errlen, "listen \"%s\": expected [ADDR6]:PORT", listen_spec);
			return -1;
		}
		memcpy(host, listen_spec + 1, (size_t)(close - listen_spec - 1));
		host[close - listen_spec - 1] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(listen_spec, ':');
		if (colon) {
			if ((size_t)(colon - listen_spec) >= sizeof(host)) {
				snprintf(err, errlen, "listen \"%s\": address too long", listen_spec);
				return -1;
			}
			memcpy(host, listen_spec, (size_t)(colon - listen_spec));
			host[colon - listen_spec] = '\0';
		} else {
			colon = listen_spec - 1;	/* a port alone */
		}
	}
	if (!colon[1] || strlen(colon + 1) >= sizeof(port) ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) || atoi(colon + 1) > 65535) {
		snprintf(err, errlen, "listen \"%s\": bad port", listen_spec);
		return -1;
	}
	snprintf(port, sizeof(port), "%s", colon + 1);

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (!host[0]) {
		/* All addresses: IPv6 with IPv4-mapped peers, else IPv4 alone. */
		hints.ai_family = AF_INET6;
		rc = getaddrinfo(NULL, port, &hints, &res);
		if (!rc && (fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0) {
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(fd, res->ai_addr, res->ai_addrlen)) {
				close(fd);
				fd = -1;
			}
		}
		if (res)
			freeaddrinfo(res);
		res = NULL;
		if (fd >= 0)
			goto listening;
		hints.ai_family = AF_INET;
	} else {
		hints.ai_family = AF_UNSPEC;
	}
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "listen \"%s\": %s", listen_spec, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen))
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "listen \"%s\": %s", listen_spec, strerror(errno));
		return -1;
	}
listening:
	if (listen(fd, 64)) {
		snprintf(err, errlen, "listen \"%s\": %s", listen_spec, strerror(errno));
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

struct web_server *web_server_start(const struct web_server_config *cfg, web_handler handler,
				    void *app, char *err, size_t errlen)
{
	struct web_server *s;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			     MHD_USE_POLL | MHD_USE_ITC;
	struct MHD_OptionItem opts[11];
	size_t n = 0;
	unsigned int conn_max = cfg->conn_max ? cfg->conn_max : 32;
	unsigned int per_addr = cfg->conn_per_addr;

	if (!cfg->listen || !handler) {
		snprintf(err, errlen, "web server: no listen address or handler");
		return NULL;
	}
	if (!cfg->tls_cert_pem != !cfg->tls_key_pem) {
		snprintf(err, errlen, "web server: TLS needs both a certificate and a key");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "web server: out of memory");
		return NULL;
	}
	s->handler = handler;
	s->app = app;
	s->accept = cfg->accept;
	atomic_init(&s->stopping, false);
	s->fd = listen_on(cfg->listen, err, errlen);
	if (s->fd < 0) {
		free(s);
		return NULL;
	}
	if (!getsockname(s->fd, (struct sockaddr *)&ss, &sl))
		s->port = ntohs(ss.ss_family == AF_INET6 ?
				((struct sockaddr_in6 *)&ss)->sin6_port :
				((struct sockaddr_in *)&ss)->sin_port);

	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, s->fd, NULL };
	if (per_addr > conn_max)
		per_addr = conn_max;
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, conn_max, NULL };
	if (per_addr)
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_addr,
						     NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT,
					     cfg->timeout_s ? cfg->timeout_s : 30, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED,
					     (intptr_t)on_completed, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_UNESCAPE_CALLBACK,
					     (intptr_t)unescape, NULL };
	if (cfg->tls_cert_pem) {
		s->cert = strdup(cfg->tls_cert_pem);
		s->key = strdup(cfg->tls_key_pem);
		if (!s->cert || !s->key) {
			snprintf(err, errlen, "web server: out of memory");
			goto fail;
		}
		flags |= MHD_USE_TLS;
		s->tls = true;
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, s->key };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
						     (void *)TLS_PRIORITIES };
	}
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };

	s->d = MHD_start_daemon(flags, 0, on_accept, s, on_request, s,
				MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!s->d) {
		snprintf(err, errlen, "web server on %s: libmicrohttpd did not start%s",
			 cfg->listen, s->tls ? " (check the TLS certificate and key)" : "");
		goto fail;
	}
	return s;
fail:
	close(s->fd);	/* libmicrohttpd did not take it */
	free(s->cert);
	free(s->key);
	free(s);
	return NULL;
}

unsigned int web_server_port(const struct web_server *s)
{
	return s->port;
}

void web_server_stop(struct web_server *s)
{
	MHD_socket fd;

	if (!s)
		return;
	atomic_store(&s->stopping, true);
	/* Quiescing hands the listening socket back: it is ours to close. */
	fd = MHD_quiesce_daemon(s->d);
	MHD_stop_daemon(s->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	free(s->cert);
	free(s->key);
	free(s);
}
