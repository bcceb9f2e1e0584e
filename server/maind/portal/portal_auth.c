// SPDX-License-Identifier: GPL-2.0
/*
 * maind-portal: signing in and out (Documentation/portal.md "Access").
 *
 *   GET/POST /login    login and password (Argon2id hash in web_users),
 *                      throttled per client address and per login name
 *   GET/POST /totp     operators: the 6-digit code of their authenticator
 *                      (RFC 6238); a code is accepted once: the step that
 *                      matched is kept in web_users.totp_last_step, read
 *                      and written under a row lock
 *   POST /logout       the session ends
 *   GET /              to the role's first page
 *
 * The login form is protected from cross-site posting like every form
 * here, though there is no session yet: a random token in a cookie of its
 * own (SameSite=Strict) and the same token in the form (double submit).
 * Every request of a signed-in user also checks that the account is not
 * disabled, its password not changed since the session began and an
 * operator's key not revoked (mainctl web-user disable / passwd and
 * mainctl op-revoke act at once, from another process).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "layout.h"
#include "portal.h"
#include "totp.h"

#define LOGIN_COOKIE	"gm_login"
#define LOGIN_MAX	64
#define PASSWORD_MAX	256

/*
 * An Argon2id hash of a random password nobody knows, checked when the
 * login does not exist or is disabled: the answer takes as long as for a
 * real account, so timing tells nobody which logins exist.
 */
static const char dummy_hash[] =
	"$argon2id$v=19$m=65536,t=2,p=1$exfmci2xeMJ0OIFWo/ZIzQ$"
	"bD3KI9sIpXeeMcZSaZQ7uryS4Pkn5WYD0THAVK5U5i4";

static const char *role_home(const struct portal_req *q)
{
	if (portal_is_customer(q))
		return "/bills";
	if (portal_is_operator(q))
		return "/op/towns";
	return q->s.pending_second_factor ? "/totp" : "/login";
}

/* ---- pages ----------------------------------------------------------------------------------- */

static struct web_resp *login_page(struct portal_req *q, int status, const char *msg,
				   const char *login)
{
	char tok[WEB_TOKEN_LEN + 1];
	struct web_resp *resp;
	struct hbuf b;

	/* the browser's token stays while it has one (another tab's form still works) */
	if (web_cookie(q->r, LOGIN_COOKIE, tok, sizeof(tok)) || strlen(tok) != WEB_TOKEN_LEN)
		web_token_new(tok);
	hb_init(&b);
	portal_page_begin(q, &b, "Sign in", NULL, false);
	hb_raw(&b, "<section class=\"gm-card gm-narrow\"><h1>Sign in</h1>\n");
	if (msg) {
		hb_raw(&b, "<p class=\"gm-alert gm-bad\" role=\"alert\">");
		hb_text(&b, msg);
		hb_raw(&b, "</p>\n");
	}
	hb_raw(&b, "<form method=\"post\" action=\"/login\" class=\"gm-form\">\n");
	web_csrf_field(&b, tok);
	hb_raw(&b, "<label for=\"login\">Login</label>\n<input id=\"login\" name=\"login\" "
	       "autocomplete=\"username\" required maxlength=\"63\" autocapitalize=\"none\" "
	       "spellcheck=\"false\" value=\"");
	hb_attr(&b, login ? login : "");
	hb_raw(&b, "\">\n<label for=\"password\">Password</label>\n<input id=\"password\" "
	       "name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n"
	       "<button type=\"submit\">Sign in</button>\n</form>\n"
	       "<p class=\"gm-hint\">Customers: the login and password from your welcome letter. "
	       "Staff: your authenticator's code is asked next.</p></section>\n");
	portal_page_end(q, &b);
	resp = web_resp_html(status, &b);
	hb_free(&b);
	if (resp)
		web_resp_cookie(resp, q->r, LOGIN_COOKIE, tok, 3600);
	return resp;
}

static struct web_resp *totp_page(struct portal_req *q, int status, const char *msg)
{
	struct web_resp *resp;
	struct hbuf b;

	hb_init(&b);
	portal_page_begin(q, &b, "Second factor", NULL, false);
	hb_raw(&b, "<section class=\"gm-card gm-narrow\"><h1>Second factor</h1>\n");
	if (msg) {
		hb_raw(&b, "<p class=\"gm-alert gm-bad\" role=\"alert\">");
		hb_text(&b, msg);
		hb_raw(&b, "</p>\n");
	}
	hb_raw(&b, "<form method=\"post\" action=\"/totp\" class=\"gm-form\">\n");
	web_csrf_field(&b, q->s.csrf);
	hb_raw(&b, "<label for=\"code\">The 6-digit code your authenticator shows now</label>\n"
	       "<input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" "
	       "pattern=\"[0-9 ]{6,7}\" maxlength=\"7\" required>\n"
	       "<button type=\"submit\">Continue</button>\n</form>\n"
	       "<p class=\"gm-hint\">Each code is accepted once; wait for the next one if it was "
	       "just used.</p></section>\n");
	portal_page_end(q, &b);
	resp = web_resp_html(status, &b);
	hb_free(&b);
	return resp;
}

/* ---- sessions ------------------------------------------------------------------------------- */

/* A new session for s (a fresh token: none is carried over from before the login). */
static struct web_resp *start_session(struct portal_req *q, struct web_session *s,
				      const char *to)
{
	char tok[WEB_TOKEN_LEN + 1];
	struct web_resp *resp;

	if (q->token[0])
		web_session_end(&q->app->sessions, q->token);
	web_sessions_trim_user(&q->app->sessions, s->user, PORTAL_SESSIONS_PER_USER - 1);
	if (web_session_create(&q->app->sessions, s, time(NULL), tok))
		return web_resp_error(500, "Too many people are signed in. Please try again later.");
	resp = web_resp_redirect(to);
	if (resp) {
		web_resp_cookie(resp, q->r, PORTAL_COOKIE, tok, q->app->sessions.lifetime_s);
		web_resp_cookie(resp, q->r, LOGIN_COOKIE, "", 0);
	}
	sodium_memzero(tok, sizeof(tok));
	return resp;
}

/*
 * The session's account still enabled, its password unchanged since the
 * session began and, for an operator, their key not revoked (mainctl
 * op-revoke: a revoked operator loses the portal with their key)?
 */
static bool account_current(struct portal_req *q)
{
	char created[24];
	const char *v[2] = { q->s.user, created };
	PGresult *r;
	bool ok;

	snprintf(created, sizeof(created), "%lld", (long long)q->s.created);
	r = mpg_query(q->db, "SELECT 1 FROM web_users w LEFT JOIN operators o ON o.id = "
		      "w.operator WHERE w.login = $1 AND NOT w.disabled AND NOT "
		      "coalesce(o.revoked, false) AND "
		      "floor(extract(epoch FROM w.password_changed)) <= $2::bigint", 2, v);
	if (!r)
		return false;
	ok = PQntuples(r) == 1;
	PQclear(r);
	return ok;
}

/* ---- login ---------------------------------------------------------------------------------- */

/*
 * The client, as the throttle and the log name it. Behind the reverse
 * proxy (the default listen address is loopback) every peer is 127.0.0.1:
 * there the last X-Forwarded-For entry, the one the proxy added, is the
 * client (earlier entries are the client's own word). A remote peer's
 * header is not believed.
 */
static void client_of(const struct web_req *r, char *out, size_t len)
{
	const char *xff = r->forwarded_for, *last;
	size_t n;

	snprintf(out, len, "%s", r->peer_text);
	if (!xff || !web_peer_is_loopback(r))
		return;
	last = strrchr(xff, ',');
	last = last ? last + 1 : xff;
	last += strspn(last, " \t");
	n = strcspn(last, " \t");
	if (n && n < 64 && strspn(last, "0123456789abcdefABCDEF.:[]") >= n)
		snprintf(out, len, "%.*s (via %s)", (int)n, last, r->peer_text);
}

static void throttle_keys(const char *client, const char *login, char *ka, size_t la, char *ku,
			  size_t lu)
{
	snprintf(ka, la, "addr:%s", client);
	snprintf(ku, lu, "user:%s", login);
}

static struct web_resp *login_post(struct portal_req *q)
{
	const char *login = web_form(q->r, "login"), *pw = web_form(q->r, "password");
	const char *form_tok = web_form(q->r, "csrf");
	char ka[160], ku[96], cookie[WEB_TOKEN_LEN + 1], client[128];
	struct web_session s = { 0 }, tmp = { 0 };
	int64_t now = time(NULL);
	const char *hash = dummy_hash;
	PGresult *r = NULL;
	bool ok;

	if (!login || !pw || !*login || strlen(login) > LOGIN_MAX || strlen(pw) > PASSWORD_MAX)
		return login_page(q, 400, "Please give your login and password.", NULL);
	/* the double-submit token: the form came from our own login page */
	if (web_cookie(q->r, LOGIN_COOKIE, cookie, sizeof(cookie)) || !form_tok)
		return login_page(q, 403, "The sign-in form had expired: please try again.", login);
	snprintf(tmp.csrf, sizeof(tmp.csrf), "%s", cookie);
	if (!web_csrf_ok(&tmp, form_tok))
		return login_page(q, 403, "The sign-in form had expired: please try again.", login);
	client_of(q->r, client, sizeof(client));
	throttle_keys(client, login, ka, sizeof(ka), ku, sizeof(ku));
	if (!web_throttle_allowed(&q->app->throttle, ka, now) ||
	    !web_throttle_allowed(&q->app->throttle, ku, now))
		return login_page(q, 429, "Too many failed attempts. Please wait five minutes "
				  "before trying again.", login);
	r = mpg_query(q->db, "SELECT w.hash, w.role, coalesce(w.customer, w.operator), "
		      "extract(epoch FROM now())::bigint FROM web_users w LEFT JOIN operators o "
		      "ON o.id = w.operator WHERE w.login = $1 AND NOT w.disabled AND NOT "
		      "coalesce(o.revoked, false)", 1, &login);
	if (!r)
		return portal_db_error(q, "login");
	if (PQntuples(r) == 1)
		hash = PQgetvalue(r, 0, 0);
	ok = web_passwd_verify(hash, pw) && hash != dummy_hash;
	if (!ok) {
		PQclear(r);
		web_throttle_failed(&q->app->throttle, ka, now);
		web_throttle_failed(&q->app->throttle, ku, now);
		fprintf(stderr, "maind-portal: failed login for '%s' from %s\n", login, client);
		return login_page(q, 401, "Wrong login or password.", login);
	}
	web_throttle_reset(&q->app->throttle, ku);
	snprintf(s.user, sizeof(s.user), "%s", login);
	s.subject = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
	if (!strcmp(PQgetvalue(r, 0, 1), "operator")) {
		s.role = WEB_ROLE_OPERATOR;
		s.pending_second_factor = true;
	} else {
		s.role = WEB_ROLE_CUSTOMER;
		mpg_exec(q->db, "UPDATE web_users SET last_login = now() WHERE login = $1", 1,
			 &login);
	}
	PQclear(r);
	return start_session(q, &s, s.pending_second_factor ? "/totp" : "/bills");
}

/* ---- second factor -------------------------------------------------------------------------- */

/*
 * The code checked and its step stored in one transaction, the row locked:
 * two requests with the same code (two tabs, two portal processes, an
 * attacker who saw it) cannot both pass. 1 accepted, 0 refused, -1 error.
 */
static int totp_verify(struct portal_req *q, const char *code, int64_t now)
{
	const char *v[2] = { q->s.user, NULL };
	uint8_t key[64];
	int64_t last;
	char step[24];
	PGresult *r;
	int n, ok;

	if (mpg_exec(q->db, "BEGIN", 0, NULL))
		return -1;
	r = mpg_query(q->db, "SELECT totp_secret, totp_last_step FROM web_users WHERE login = $1 "
		      "AND role = 'operator' AND NOT disabled FOR UPDATE", 1, v);
	if (!r)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		mpg_exec(q->db, "ROLLBACK", 0, NULL);
		return 0;
	}
	n = totp_b32_decode(PQgetvalue(r, 0, 0), key, sizeof(key));
	last = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	PQclear(r);
	ok = n > 0 && totp_check(key, (size_t)n, code, now, &last);
	sodium_memzero(key, sizeof(key));
	if (!ok) {
		mpg_exec(q->db, "ROLLBACK", 0, NULL);
		return 0;
	}
	snprintf(step, sizeof(step), "%lld", (long long)last);
	v[1] = step;
	if (mpg_exec(q->db, "UPDATE web_users SET totp_last_step = $2::bigint, last_login = now() "
		     "WHERE login = $1", 2, v) ||
	    mpg_exec(q->db, "COMMIT", 0, NULL))
		return -1;
	return 1;
}

static struct web_resp *totp_post(struct portal_req *q)
{
	const char *code = web_form(q->r, "code");
	int64_t now = time(NULL);
	struct web_session s;
	char ku[96];
	int rc;

	snprintf(ku, sizeof(ku), "totp:%s", q->s.user);
	if (!web_throttle_allowed(&q->app->throttle, ku, now))
		return totp_page(q, 429, "Too many wrong codes. Please wait five minutes.");
	if (!code || strlen(code) > 16)
		return totp_page(q, 400, "Please type the 6-digit code.");
	rc = totp_verify(q, code, now);
	if (rc < 0)
		return portal_db_error(q, "totp");
	if (!rc) {
		web_throttle_failed(&q->app->throttle, ku, now);
		char client[128];

		client_of(q->r, client, sizeof(client));
		fprintf(stderr, "maind-portal: wrong or reused code for '%s' from %s\n", q->s.user,
			client);
		return totp_page(q, 401, "That code is wrong or was already used. Please type the "
				 "next code your authenticator shows.");
	}
	web_throttle_reset(&q->app->throttle, ku);
	s = q->s;
	s.pending_second_factor = false;
	return start_session(q, &s, "/op/towns");
}

/* ---- routing -------------------------------------------------------------------------------- */

struct web_resp *portal_auth_route(struct portal_req *q)
{
	const char *path = q->r->path;
	bool post = !strcmp(q->r->method, "POST");

	if (q->s.role != WEB_ROLE_NONE && !account_current(q)) {
		web_session_end(&q->app->sessions, q->token);
		memset(&q->s, 0, sizeof(q->s));
		q->token[0] = '\0';
		if (post && strcmp(path, "/login"))
			return web_resp_redirect("/login");
	}
	if (!strcmp(path, "/"))
		return web_resp_redirect(role_home(q));
	if (!strcmp(path, "/login")) {
		if (post)
			return login_post(q);
		if (q->s.role != WEB_ROLE_NONE)
			return web_resp_redirect(role_home(q));
		return login_page(q, 200, NULL, NULL);
	}
	if (!strcmp(path, "/totp")) {
		if (q->s.role != WEB_ROLE_OPERATOR || !q->s.pending_second_factor)
			return web_resp_redirect(role_home(q));
		return post ? totp_post(q) : totp_page(q, 200, NULL);
	}
	if (!strcmp(path, "/logout")) {
		struct web_resp *resp;

		if (!post)
			return web_resp_error(405, "Sign out with the button on the page.");
		if (q->token[0])
			web_session_end(&q->app->sessions, q->token);
		resp = web_resp_redirect("/login");
		if (resp)
			web_resp_cookie(resp, q->r, PORTAL_COOKIE, "", 0);
		return resp;
	}
	return NULL;
}
