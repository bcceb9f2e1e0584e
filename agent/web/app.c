// SPDX-License-Identifier: GPL-2.0
#include "app.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "history.h"
#include "layout.h"
#include "pages.h"
#include "parse.h"
#include "tariff_view.h"

static int64_t real_now(void)
{
	return (int64_t)time(NULL);
}

int mw_app_init(struct mw_app *a, const struct mw_config *cfg)
{
	int64_t idle = (int64_t)cfg->idle_minutes * 60;

	memset(a, 0, sizeof(*a));
	a->cfg = *cfg;
	a->now = real_now;
	atomic_store(&a->stopping, false);
	if (mw_snapshot_init(&a->snap))
		return -ENOMEM;
	if (web_sessions_init(&a->house, 64, (int64_t)cfg->session_minutes * 60, idle) ||
	    web_sessions_init(&a->guest, 64, (int64_t)cfg->guest_session_minutes * 60, idle) ||
	    web_throttle_init(&a->throttle, 256, cfg->login_burst, cfg->login_window) ||
	    mw_guests_init(&a->codes, cfg->guest_code_s) || pthread_mutex_init(&a->verify_lock, NULL))
		return -ENOMEM;
	return 0;
}

void mw_app_free(struct mw_app *a)
{
	web_sessions_free(&a->house);
	web_sessions_free(&a->guest);
	web_throttle_free(&a->throttle);
	mw_guests_destroy(&a->codes);
	pthread_mutex_destroy(&a->verify_lock);
	mw_snapshot_destroy(&a->snap);
}

bool mw_app_accept(void *app, const struct sockaddr *peer, socklen_t len)
{
	struct mw_app *a = app;

	(void)len;
	return a->cfg.allow_remote || web_addr_is_local(peer);
}

/* ---- sessions -------------------------------------------------------------------- */

struct who {
	bool in;
	bool guest;
	char token[WEB_TOKEN_LEN + 1];
	struct web_session s;
};

static int read_hash(const char *path, char *out, size_t size);

/* Caller holds verify_lock: hash is the password file's now; a change ends the
 * household's sessions (all of them: they were opened with the old password). */
static void note_hash(struct mw_app *a, const char *hash)
{
	if (a->pw_seen[0] && strcmp(a->pw_seen, hash)) {
		web_sessions_end_user(&a->house, MW_HOUSEHOLD);
		syslog(LOG_NOTICE, "meterweb: the household password changed: its sessions end");
	}
	snprintf(a->pw_seen, sizeof(a->pw_seen), "%s", hash);
}

/* Before a household session is used: the password file read again (a small
 * file; a missing or damaged one changes nothing here, sign-in reports it). */
static void check_password_file(struct mw_app *a)
{
	char hash[160];

	if (read_hash(a->cfg.password_file, hash, sizeof(hash)))
		return;
	pthread_mutex_lock(&a->verify_lock);
	note_hash(a, hash);
	pthread_mutex_unlock(&a->verify_lock);
}

static struct who who_is(struct mw_app *a, const struct web_req *r)
{
	struct who w = { 0 };

	if (web_cookie(r, MW_COOKIE, w.token, sizeof(w.token)))
		return w;
	if (!web_session_get(&a->house, w.token, a->now(), &w.s)) {
		check_password_file(a);
		w.in = !web_session_get(&a->house, w.token, a->now(), &w.s);
		if (w.in)
			return w;
	}
	if (!web_session_get(&a->guest, w.token, a->now(), &w.s))
		w.in = w.guest = true;
	return w;
}

static const struct web_nav nav_household[] = {
	{ "/", "Meter" }, { "/guest", "Guest codes" }, { NULL, NULL }
};
static const struct web_nav nav_guest[] = { { "/", "Meter" }, { NULL, NULL } };

static void frame(struct web_page *pg, const struct who *w, const char *title, const char *current)
{
	memset(pg, 0, sizeof(*pg));
	pg->title = title;
	pg->product = "gridmeter home";
	if (w && w->in) {
		pg->nav = w->guest ? nav_guest : nav_household;
		pg->current = current;
		pg->user = w->guest ? "guest" : MW_HOUSEHOLD;
		pg->role_label = w->guest ? "guest (read only)" : "household";
		pg->csrf = w->s.csrf;
		pg->logout_action = "/logout";
	}
}

/* ---- login ------------------------------------------------------------------------- */

static struct web_resp *login_page(int status, const char *msg)
{
	struct web_page pg;
	struct hbuf b;

	frame(&pg, NULL, "Sign in", NULL);
	hb_init(&b);
	web_page_begin(&b, &pg);
	hb_raw(&b, "<h1>Sign in to your meter</h1>");
	if (msg) {
		hb_raw(&b, "<p class=\"gm-error\" role=\"alert\" id=\"login-error\">");
		hb_text(&b, msg);
		hb_raw(&b, "</p>");
	}
	hb_raw(&b, "<div class=\"gm-cols\"><section class=\"gm-card\" aria-labelledby=\"h-house\"><h2 id=\"h-house\">Household</h2>"
		   "<form method=\"post\" action=\"/login\" id=\"login-household\">"
		   "<label for=\"password\">Password</label>"
		   "<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>"
		   "<button type=\"submit\">Sign in</button></form></section>"
		   "<section class=\"gm-card\" aria-labelledby=\"h-guest\"><h2 id=\"h-guest\">Guest</h2>"
		   "<form method=\"post\" action=\"/login\" id=\"login-guest\">"
		   "<label for=\"code\">Guest code (8 digits, works once)</label>"
		   "<input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" "
		   "pattern=\"[0-9 -]{8,12}\" required>"
		   "<button type=\"submit\">Look at the meter</button></form></section></div>");
	web_page_end(&b, &pg);
	return web_resp_html(status, &b);
}

/* The household's hash, read at each login so that "meterweb passwd" needs no restart. */
static int read_hash(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "r");
	int r = -1;

	if (!f)
		return -errno;
	if (fgets(out, (int)size, f)) {
		out[strcspn(out, "\r\n")] = 0;
		r = strncmp(out, "$argon2id$", 10) ? -EINVAL : 0;
	}
	fclose(f);
	return r;
}

static struct web_resp *signed_in(struct mw_app *a, const struct web_req *r, struct web_sessions *t,
				  const char *user, enum web_role role)
{
	struct web_session s = { 0 };
	char token[WEB_TOKEN_LEN + 1];
	struct web_resp *resp;

	snprintf(s.user, sizeof(s.user), "%s", user);
	s.role = role;
	if (web_session_create(t, &s, a->now(), token))
		return web_resp_error(429, "Too many people are signed in; try again later.");
	resp = web_resp_redirect("/");
	if (resp)
		web_resp_cookie(resp, r, MW_COOKIE, token, t->lifetime_s);
	return resp;
}

static struct web_resp *login_post(struct mw_app *a, const struct web_req *r)
{
	const char *password = web_form(r, "password"), *code = web_form(r, "code");
	char kaddr[80], hash[160];
	const char *kuser = password ? "user:" MW_HOUSEHOLD : "user:guest-code";
	int64_t now = a->now();
	int rc;

	snprintf(kaddr, sizeof(kaddr), "addr:%s", r->peer_text);
	if (!web_throttle_allowed(&a->throttle, kaddr, now) || !web_throttle_allowed(&a->throttle, kuser, now)) {
		syslog(LOG_NOTICE, "meterweb: sign-in from %s refused: too many failures", r->peer_text);
		return web_resp_error(429, "Too many failed attempts: wait a few minutes and try again.");
	}
	if (password) {
		bool ok;

		rc = read_hash(a->cfg.password_file, hash, sizeof(hash));
		if (rc) {
			syslog(LOG_ERR, "meterweb: %s: %s (set it with 'meterweb passwd')", a->cfg.password_file,
			       rc == -EINVAL ? "not an Argon2id hash" : strerror(-rc));
			return login_page(503, "No household password is set on this meter yet.");
		}
		/* The throttle asked again under the lock: the failures counted
		 * while this request waited its turn count now. */
		pthread_mutex_lock(&a->verify_lock);
		now = a->now();
		if (!web_throttle_allowed(&a->throttle, kaddr, now) ||
		    !web_throttle_allowed(&a->throttle, kuser, now)) {
			pthread_mutex_unlock(&a->verify_lock);
			syslog(LOG_NOTICE, "meterweb: sign-in from %s refused: too many failures", r->peer_text);
			return web_resp_error(429, "Too many failed attempts: wait a few minutes and try again.");
		}
		ok = web_passwd_verify(hash, password);
		note_hash(a, hash);
		if (ok) {
			web_throttle_reset(&a->throttle, kaddr);
			web_throttle_reset(&a->throttle, kuser);
		} else {
			web_throttle_failed(&a->throttle, kaddr, now);
			web_throttle_failed(&a->throttle, kuser, now);
		}
		pthread_mutex_unlock(&a->verify_lock);
		sodium_memzero(hash, sizeof(hash));
		if (ok)
			return signed_in(a, r, &a->house, MW_HOUSEHOLD, WEB_ROLE_HOUSEHOLD);
		syslog(LOG_NOTICE, "meterweb: wrong household password from %s", r->peer_text);
		return login_page(401, "Wrong password.");
	}
	if (code) {
		/* As for passwords: the check and the count of a failure together. */
		pthread_mutex_lock(&a->verify_lock);
		if (!web_throttle_allowed(&a->throttle, kaddr, now) ||
		    !web_throttle_allowed(&a->throttle, kuser, now)) {
			pthread_mutex_unlock(&a->verify_lock);
			return web_resp_error(429, "Too many failed attempts: wait a few minutes and try again.");
		}
		rc = mw_guest_redeem(&a->codes, code, now);
		if (rc) {
			/* Per address and in all: a device can take many addresses (IPv6
			 * link-local, several leases) to guess 10^8 codes. */
			web_throttle_failed(&a->throttle, kaddr, now);
			web_throttle_failed(&a->throttle, kuser, now);
		}
		pthread_mutex_unlock(&a->verify_lock);
		if (!rc) {
			syslog(LOG_INFO, "meterweb: guest code used from %s", r->peer_text);
			return signed_in(a, r, &a->guest, "guest", WEB_ROLE_GUEST);
		}
		return login_page(401, rc == -ETIME ? "This guest code has expired." :
				  rc == -EINVAL ? "A guest code is 8 digits." :
				  "This guest code is not valid (each code works once).");
	}
	return login_page(400, "Give the password or a guest code.");
}

static struct web_resp *logout_post(struct mw_app *a, const struct web_req *r, const struct who *w)
{
	struct web_resp *resp;

	if (w->in) {
		if (!web_csrf_ok(&w->s, web_form(r, "csrf")))
			return web_resp_error(403, "The form has expired: reload the page and try again.");
		web_session_end(w->guest ? &a->guest : &a->house, w->token);
	}
	resp = web_resp_redirect("/login");
	if (resp)
		web_resp_cookie(resp, r, MW_COOKIE, "", 0);
	return resp;
}

/* ---- guest codes ------------------------------------------------------------------- */

static struct web_resp *guest_page(struct mw_app *a, const struct web_req *r, const struct who *w)
{
	struct web_page pg;
	struct hbuf b;
	char code[MW_GUEST_DIGITS + 1] = "";
	int64_t expires = 0, now = a->now();

	if (w->guest)
		return web_resp_error(403, "Guests cannot make guest codes.");
	if (!strcmp(r->method, "POST")) {
		if (!web_csrf_ok(&w->s, web_form(r, "csrf")))
			return web_resp_error(403, "The form has expired: reload the page and try again.");
		if (mw_guest_create(&a->codes, now, code, &expires))
			return web_resp_error(500, "No guest code could be made.");
		syslog(LOG_INFO, "meterweb: guest code made, valid %u s", a->cfg.guest_code_s);
	}
	frame(&pg, w, "Guest codes", "/guest");
	hb_init(&b);
	web_page_begin(&b, &pg);
	hb_raw(&b, "<h1>Guest codes</h1><section class=\"gm-card\" aria-labelledby=\"h-code\"><h2 id=\"h-code\">Let a guest look</h2>");
	if (code[0]) {
		hb_raw(&b, "<p>Give this code to your guest:</p><p class=\"gm-code\"><output id=\"guest-code\">");
		hb_text(&b, code);
		hb_raw(&b, "</output></p><p>It works <strong>once</strong>, until ");
		hb_time(&b, expires);
		hb_printf(&b, ". The guest sees the meter for %u minutes and can change nothing.</p>",
			  a->cfg.guest_session_minutes);
	} else {
		hb_printf(&b, "<p>A guest code lets one person see this meter, read-only, for %u minutes. "
			  "It must be used within %u minutes and works once.</p>",
			  a->cfg.guest_session_minutes, (a->cfg.guest_code_s + 59) / 60);
	}
	hb_printf(&b, "<p>Codes waiting to be used: <span id=\"guest-waiting\">%u</span></p>",
		  mw_guest_waiting(&a->codes, now));
	hb_raw(&b, "<form method=\"post\" action=\"/guest\" id=\"guest-new\">");
	web_csrf_field(&b, w->s.csrf);
	hb_raw(&b, "<button type=\"submit\">Make a guest code</button></form></section>");
	web_page_end(&b, &pg);
	return web_resp_html(200, &b);
}

/* ---- the dashboard ----------------------------------------------------------------- */

static void tariff_of(const struct mw_state *st, int64_t now, struct mw_tariff_view *tv)
{
	if (!st->have_tariff) {
		memset(tv, 0, sizeof(*tv));
		snprintf(tv->err, sizeof(tv->err), "meterd has not been read yet");
		return;
	}
	mw_tariff_view(&st->tariff, now, 0, tv);
	if (tv->valid && tv->type == TARIFF_TIERED && st->period[0])
		snprintf(tv->now_name, sizeof(tv->now_name), "%s", st->period);	/* meterd knows the tier */
}

static struct web_resp *dashboard(struct mw_app *a, const struct who *w)
{
	struct mw_state *st = malloc(sizeof(*st));
	struct mw_day month[MW_MONTH_DAYS];
	struct mw_intervals iv = { 0 };
	struct mw_tariff_view tv;
	struct mw_page_data d = { 0 };
	struct web_page pg;
	char err[200] = "";
	int64_t now = a->now(), today = mw_local_midnight(now);
	size_t first = 0, last = 0;
	struct hbuf b;

	if (!st)
		return web_resp_error(500, "Out of memory.");
	mw_snapshot_get(&a->snap, st);
	tariff_of(st, now, &tv);
	d.st = st;
	d.tv = &tv;
	d.now = now;
	d.month = month;
	d.profile_ok = !mw_load_profile(mw_local_day_add(today, 1 - MW_MONTH_DAYS), mw_local_day_add(today, 1),
					&iv, err, sizeof(err));
	d.profile_err = err;
	mw_fold_days(iv.v, iv.n, now, MW_MONTH_DAYS, month);
	mw_intervals_span(iv.v, iv.n, today, mw_local_day_add(today, 1), &first, &last);
	d.today = iv.v ? iv.v + first : NULL;
	d.ntoday = last - first;
	frame(&pg, w, "Your meter", "/");
	pg.charts = true;
	pg.live = "/live";
	hb_init(&b);
	mw_page_dashboard(&b, &pg, &d);
	mw_intervals_free(&iv);
	free(st);
	return web_resp_html(200, &b);
}

/* ---- /live ----------------------------------------------------------------------- */

struct live {
	struct mw_app *a;
	char token[WEB_TOKEN_LEN + 1];
	bool guest, first;
	uint64_t gen;
	struct mw_state st;
	struct tariff_spec spec;	/* the tariff tv was computed for */
	int64_t tv_at;
	struct mw_tariff_view tv;
};

static int live_next(void *ctx, struct hbuf *out)
{
	struct live *l = ctx;
	struct mw_app *a = l->a;
	struct web_session s;
	int64_t now;

	if (!l->first)
		mw_snapshot_wait(&a->snap, &l->gen, 1000, &l->st);
	else
		mw_snapshot_wait(&a->snap, &l->gen, 0, &l->st);
	l->first = false;
	if (!l->guest)
		check_password_file(a);
	if (atomic_load(&a->stopping) ||
	    web_session_get(l->guest ? &a->guest : &a->house, l->token, a->now(), &s))
		return -1;	/* signed out, expired, or the daemon stops */
	now = a->now();
	if (memcmp(&l->spec, &l->st.tariff, sizeof(l->spec)) || now - l->tv_at >= 60 ||
	    (l->tv.has_next && now >= l->tv.next_at)) {
		l->spec = l->st.tariff;
		l->tv_at = now;
		tariff_of(&l->st, now, &l->tv);
	}
	hb_raw(out, "data: ");
	mw_live_json(out, &l->st, &l->tv, now);
	hb_raw(out, "\n\n");
	return 0;
}

static void live_done(void *ctx)
{
	free(ctx);
}

static struct web_resp *live(struct mw_app *a, const struct who *w)
{
	struct live *l = calloc(1, sizeof(*l));
	struct web_resp *resp;

	if (!l)
		return web_resp_error(500, "Out of memory.");
	l->a = a;
	memcpy(l->token, w->token, sizeof(l->token));
	l->guest = w->guest;
	l->first = true;
	l->gen = UINT64_MAX;
	l->tv_at = INT64_MIN / 2;
	resp = web_resp_sse(live_next, live_done, l);
	if (!resp)
		free(l);
	return resp;
}

/* ---- /api/profile ---------------------------------------------------------------- */

static int arg_time(const struct web_req *r, const char *name, int64_t dflt, int64_t *out)
{
	const char *s = web_query(r, name);
	int64_t mant;
	unsigned dec;

	if (!s || !*s) {
		*out = dflt;
		return 0;
	}
	if (parse_fixed(s, &mant, &dec) || dec)
		return -1;
	*out = mant;
	return 0;
}

static struct web_resp *api_profile(struct mw_app *a, const struct web_req *r)
{
	struct mw_intervals iv = { 0 };
	int64_t now = a->now(), from, to;
	char err[200];
	struct hbuf b;
	struct web_resp *resp;

	if (arg_time(r, "from", now - 86400, &from) || arg_time(r, "to", now, &to))
		return web_resp_error(400, "from and to are UTC seconds.");
	if (from > to || to - from > 400 * 86400)
		return web_resp_error(400, "from must not be after to, at most 400 days apart.");
	if (mw_load_profile(from, to, &iv, err, sizeof(err))) {
		mw_intervals_free(&iv);
		resp = web_resp_text(503, err);
		return resp;
	}
	hb_init(&b);
	hb_printf(&b, "{\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"fields\":[\"start\",\"import_mwh\",\"export_mwh\","
		  "\"renewable_mwh\",\"flags\"],\"intervals\":[", from, to);
	for (size_t i = 0; i < iv.n; i++)
		hb_printf(&b, "%s[%" PRId64 ",%u,%u,%u,%u]", i ? "," : "", iv.v[i].start, iv.v[i].import_mwh,
			  iv.v[i].export_mwh, iv.v[i].renew_mwh, iv.v[i].flags);
	hb_raw(&b, "]}\n");
	mw_intervals_free(&iv);
	if (b.oom) {
		hb_free(&b);
		return web_resp_error(500, "Out of memory.");
	}
	resp = web_resp_bytes(200, "application/json", b.p, b.len, true);
	hb_free(&b);
	if (resp)
		web_resp_header(resp, "Cache-Control", "no-store");
	return resp;
}

/* ---- routing ------------------------------------------------------------------------ */

struct web_resp *mw_app_handle(void *app, const struct web_req *r)
{
	struct mw_app *a = app;
	bool get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD"), post = !strcmp(r->method, "POST");
	struct who w;

	if (!strncmp(r->path, "/static/", 8)) {
		struct web_resp *resp = get ? web_resp_asset(r, r->path) : NULL;

		return resp ? resp : web_resp_error(get ? 404 : 405, get ? "No such file." : "Method not allowed.");
	}
	w = who_is(a, r);
	if (!strcmp(r->path, "/login")) {
		if (post)
			return login_post(a, r);
		if (get)
			return w.in ? web_resp_redirect("/") : login_page(200, NULL);
		return web_resp_error(405, "Method not allowed.");
	}
	if (!strcmp(r->path, "/logout"))
		return post ? logout_post(a, r, &w) : web_resp_error(405, "Sign out with the button.");
	if (!w.in) {
		if (!strcmp(r->path, "/live") || !strncmp(r->path, "/api/", 5))
			return web_resp_error(401, "Sign in first.");
		return web_resp_redirect("/login");
	}
	if (!strcmp(r->path, "/") && get)
		return dashboard(a, &w);
	if (!strcmp(r->path, "/live") && get)
		return live(a, &w);
	if (!strcmp(r->path, "/api/profile") && get)
		return api_profile(a, r);
	if (!strcmp(r->path, "/guest") && (get || post))
		return guest_page(a, r, &w);
	return web_resp_error(404, "There is no such page.");
}
