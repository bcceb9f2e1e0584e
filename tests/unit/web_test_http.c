// SPDX-License-Identifier: GPL-2.0
/*
 * lib/web's HTTP server on 127.0.0.1:0, spoken to by a raw-socket client
 * (web_client.h): the security headers on every response, errors, forms,
 * cookies, assets with gzip/ETag/304, server-sent events, the accept hook.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "assets.h"
#include "http.h"
#include "kselftest_harness.h"
#include "layout.h"
#include "web_client.h"

/* The harness's FIXTURE_SETUP/TEARDOWN define functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"

struct app {
	atomic_int accepts;	/* connections the accept hook saw */
	atomic_bool refuse;	/* the accept hook says no */
	atomic_int sse_done;	/* done() calls of event streams */
};

struct sse_ctx {
	struct app *app;
	int sent;
	int total;
};

static int sse_next(void *ctx, struct hbuf *out)
{
	struct sse_ctx *c = ctx;
	struct timespec nap = { 0, 20 * 1000 * 1000 };

	if (c->sent == c->total)
		return -1;
	nanosleep(&nap, NULL);	/* a real stream waits for the next value */
	hb_printf(out, "data: {\"n\":%d}\n\n", ++c->sent);
	return 0;
}

static void sse_done(void *ctx)
{
	struct sse_ctx *c = ctx;

	atomic_fetch_add(&c->app->sse_done, 1);
	free(c);
}

static struct web_resp *handler(void *appv, const struct web_req *r)
{
	struct app *app = appv;
	struct web_resp *w;
	struct hbuf b;

	if (!strncmp(r->path, "/static/", 8)) {
		w = web_resp_asset(r, r->path);
		return w ? w : web_resp_error(404, "No such file.");
	}
	if (!strcmp(r->path, "/")) {
		static const struct web_nav nav[] = { { "/", "Now" }, { "/days", "Days" }, { NULL, NULL } };
		struct web_page pg = { .title = "Your <meter>", .product = "gridmeter home",
				       .nav = nav, .current = "/", .user = "home",
				       .csrf = "c", .logout_action = "/logout" };

		hb_init(&b);
		web_page_begin(&b, &pg);
		hb_raw(&b, "<h1>Now</h1>");
		web_page_end(&b, &pg);
		return web_resp_html(200, &b);
	}
	if (!strcmp(r->path, "/form")) {
		if (strcmp(r->method, "POST"))
			return web_resp_error(405, "POST only.");
		hb_init(&b);
		for (size_t i = 0; i < r->nform; i++)
			hb_printf(&b, "%s=%s;", r->form[i].name, r->form[i].value);
		w = web_resp_bytes(200, "text/plain", b.p ? b.p : "", b.len, true);
		hb_free(&b);
		return w;
	}
	if (!strcmp(r->path, "/query")) {
		hb_init(&b);
		for (size_t i = 0; i < r->nquery; i++)
			hb_printf(&b, "%s=%s;", r->query[i].name, r->query[i].value);
		hb_printf(&b, "peer=%s", r->peer_text);
		w = web_resp_bytes(200, "text/plain", b.p ? b.p : "", b.len, true);
		hb_free(&b);
		return w;
	}
	if (!strcmp(r->path, "/cookie")) {
		char v[64];

		w = web_resp_text(200, web_cookie(r, "gm", v, sizeof(v)) ? "none" : v);
		if (web_resp_cookie(w, r, "gm", "tok123", 3600) ||
		    web_resp_cookie(w, r, "bad;name", "x", 1) == 0)
			return web_resp_error(500, "cookie");
		return w;
	}
	if (!strcmp(r->path, "/events")) {
		struct sse_ctx *c = calloc(1, sizeof(*c));

		c->app = app;
		c->total = 2;
		return web_resp_sse(sse_next, sse_done, c);
	}
	if (!strcmp(r->path, "/null"))
		return NULL;
	return web_resp_error(404, "Nothing here.");
}

static bool accept_hook(void *appv, const struct sockaddr *peer, socklen_t len)
{
	struct app *app = appv;

	(void)peer;
	(void)len;
	atomic_fetch_add(&app->accepts, 1);
	return !atomic_load(&app->refuse);
}

FIXTURE(srv)
{
	struct app app;
	struct web_server *s;
	unsigned int port;
};

FIXTURE_SETUP(srv)
{
	struct web_server_config cfg = { .listen = "127.0.0.1:0", .accept = accept_hook,
					 .timeout_s = 5 };
	char err[256] = "";

	memset(&self->app, 0, sizeof(self->app));
	self->s = web_server_start(&cfg, handler, &self->app, err, sizeof(err));
	ASSERT_NE(NULL, self->s) TH_LOG("%s", err);
	self->port = web_server_port(self->s);
	ASSERT_NE(0, self->port);
}

FIXTURE_TEARDOWN(srv)
{
	web_server_stop(self->s);
}

static void expect_security_headers(struct __test_metadata *_metadata, const struct wc_resp *r)
{
	char v[512];

	ASSERT_EQ(0, wc_header(r, "Content-Security-Policy", v, sizeof(v))) TH_LOG("%s", r->head);
	EXPECT_NE(NULL, strstr(v, "default-src 'self'"));
	EXPECT_NE(NULL, strstr(v, "frame-ancestors 'none'"));
	EXPECT_EQ(NULL, strstr(v, "unsafe-inline"));
	ASSERT_EQ(0, wc_header(r, "X-Content-Type-Options", v, sizeof(v)));
	EXPECT_STREQ("nosniff", v);
	ASSERT_EQ(0, wc_header(r, "Referrer-Policy", v, sizeof(v)));
	EXPECT_STREQ("no-referrer", v);
	EXPECT_EQ(-1, wc_header(r, "Strict-Transport-Security", v, sizeof(v)));	/* no TLS */
}

TEST_F(srv, page_has_security_headers)
{
	struct wc_resp r;
	char v[128];

	ASSERT_EQ(0, wc_get(self->port, "/", NULL, &r));
	EXPECT_EQ(200, r.status);
	expect_security_headers(_metadata, &r);
	ASSERT_EQ(0, wc_header(&r, "Content-Type", v, sizeof(v)));
	EXPECT_STREQ("text/html; charset=utf-8", v);
	ASSERT_EQ(0, wc_header(&r, "Cache-Control", v, sizeof(v)));
	EXPECT_STREQ("no-store", v);
	EXPECT_NE(NULL, strstr(r.body, "<title>Your &lt;meter&gt; \xc2\xb7 gridmeter home</title>"));
	EXPECT_NE(NULL, strstr(r.body, "href=\"/\" aria-current=\"page\""));
	EXPECT_NE(NULL, strstr(r.body, "<main id=\"main\""));
	EXPECT_NE(NULL, strstr(r.body, "<a class=\"gm-skip\" href=\"#main\">"));
	EXPECT_EQ(NULL, strstr(r.body, "<script>"));	/* no inline script */
	EXPECT_EQ(NULL, strstr(r.body, " style="));
	wc_free(&r);
}

TEST_F(srv, asset_gzip_etag_304)
{
	const struct web_asset *a = web_asset_find("/static/uPlot.min.js");
	struct wc_resp r;
	char etag[128], v[128], extra[256];
	uLongf n;
	unsigned char *plain;

	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, wc_get(self->port, a->path, NULL, &r));
	EXPECT_EQ(200, r.status);
	expect_security_headers(_metadata, &r);
	EXPECT_EQ(a->len, r.body_len);
	EXPECT_EQ(0, memcmp(a->data, r.body, a->len));
	EXPECT_EQ(-1, wc_header(&r, "Content-Encoding", v, sizeof(v)));
	ASSERT_EQ(0, wc_header(&r, "ETag", etag, sizeof(etag)));
	EXPECT_STREQ(a->etag, etag);
	ASSERT_EQ(0, wc_header(&r, "Content-Type", v, sizeof(v)));
	EXPECT_STREQ("text/javascript; charset=utf-8", v);
	wc_free(&r);

	/* gzip when accepted: the body inflates to the file. */
	ASSERT_EQ(0, wc_get(self->port, a->path, "Accept-Encoding: br, gzip;q=0.8\r\n", &r));
	EXPECT_EQ(200, r.status);
	ASSERT_NE(NULL, a->gz);
	{
		ASSERT_EQ(0, wc_header(&r, "Content-Encoding", v, sizeof(v)));
		EXPECT_STREQ("gzip", v);
		EXPECT_EQ(a->gz_len, r.body_len);
		EXPECT_LT(r.body_len, a->len);
		plain = malloc(a->len + 16);
		n = a->len + 16;
		{
			z_stream z = { 0 };

			ASSERT_EQ(Z_OK, inflateInit2(&z, 16 + MAX_WBITS));
			z.next_in = (unsigned char *)r.body;
			z.avail_in = (uInt)r.body_len;
			z.next_out = plain;
			z.avail_out = (uInt)n;
			EXPECT_EQ(Z_STREAM_END, inflate(&z, Z_FINISH));
			n = z.total_out;
			inflateEnd(&z);
		}
		EXPECT_EQ(a->len, n);
		EXPECT_EQ(0, memcmp(plain, a->data, a->len));
		free(plain);
	}
	wc_free(&r);

	/* gzip;q=0 is a refusal. */
	ASSERT_EQ(0, wc_get(self->port, a->path, "Accept-Encoding: gzip;q=0\r\n", &r));
	EXPECT_EQ(-1, wc_header(&r, "Content-Encoding", v, sizeof(v)));
	wc_free(&r);

	/* The ETag back: 304 without a body, still with the headers. */
	snprintf(extra, sizeof(extra), "If-None-Match: \"other\", %s\r\n", etag);
	ASSERT_EQ(0, wc_get(self->port, a->path, extra, &r));
	EXPECT_EQ(304, r.status);
	EXPECT_EQ(0, r.body_len);
	expect_security_headers(_metadata, &r);
	ASSERT_EQ(0, wc_header(&r, "ETag", v, sizeof(v)));
	EXPECT_STREQ(etag, v);
	wc_free(&r);

	/* Another tag: the file again. */
	ASSERT_EQ(0, wc_get(self->port, a->path, "If-None-Match: \"x\"\r\n", &r));
	EXPECT_EQ(200, r.status);
	wc_free(&r);
}

TEST_F(srv, every_asset_served)
{
	for (const struct web_asset *a = web_assets; a->path; a++) {
		struct wc_resp r;

		ASSERT_EQ(0, wc_get(self->port, a->path, NULL, &r));
		EXPECT_EQ(200, r.status) TH_LOG("%s", a->path);
		EXPECT_EQ(a->len, r.body_len) TH_LOG("%s", a->path);
		wc_free(&r);
	}
	EXPECT_NE(NULL, web_asset_find("/static/uPlot.min.js"));
	EXPECT_NE(NULL, web_asset_find("/static/gm.js"));
	EXPECT_EQ(NULL, web_asset_find("/static/nothing.js"));
}

TEST_HARNESS_MAIN
