// SPDX-License-Identifier: GPL-2.0
/*
 * maind-portal against a real PostgreSQL 15 (scripts/pg-cluster.sh), its
 * handler served by lib/web on 127.0.0.1:0 in this process and spoken to
 * with raw HTTP (tests/unit/web_client.h):
 *  - web_users' constraints (a customer account needs a customer, an
 *    operator account an operator and a TOTP secret);
 *  - mainctl web-user add / passwd / disable / enable and their errors;
 *  - signing in: wrong password, the login form's token, throttling,
 *    sessions ended by passwd and disable;
 *  - operators' second factor: pages wait for it, a code accepted once
 *    (the same code again refused, the next step's accepted);
 *  - isolation: customer a asking for customer b's bill, letter or hours by
 *    number gets 404 and nothing of b's.
 * Skipped only when PostgreSQL 15's binaries are absent.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "commands/cmd.h"
#include "mainctl_parts.h"
#include "pg_scratch.h"
#include "portal.h"
#include "totp.h"
#include "web_client.h"

struct env {
	char dir[64], pgdir[128], conninfo[256];
	struct maind_config cfg;
	struct portal app;
	struct web_server *srv;
	unsigned port;
	int64_t bill_a, bill_b, cust_a, cust_b;
};

/* mainctl web-user WORDS... (its output to stderr); the exit status. */
static int webuser(struct env *e, const char *first, ...)
{
	const struct mainctl_ctx x = { e->conninfo, e->conninfo, &e->cfg };
	char *args[12];
	int n = 0, out, rc;
	va_list ap;

	va_start(ap, first);
	for (const char *w = first; w && n < 11; w = va_arg(ap, const char *))
		args[n++] = strdup(w);
	va_end(ap);
	fflush(stdout);
	out = dup(1);
	dup2(2, 1);
	rc = mctl_web(&x, "web-user", n, args);
	fflush(stdout);
	dup2(out, 1);
	close(out);
	while (n)
		free(args[--n]);
	return rc;
}

static void pwfile(struct env *e, const char *name, const char *pw, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s.pw", e->dir, name);
	f = fopen(path, "w");
	fprintf(f, "%s\n", pw);
	fclose(f);
}

/* ---- a tiny browser ------------------------------------------------------------------------ */

struct client {
	char login_tok[WEB_TOKEN_LEN + 1];	/* gm_login cookie (= the form's csrf) */
	char session[WEB_TOKEN_LEN + 1];	/* gm_portal cookie */
	char csrf[WEB_TOKEN_LEN + 1];		/* the session's form token */
	const char *header;			/* one more header line ("Name: value\r\n") */
};

static void cookie_of(const struct wc_resp *r, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name);

	for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		const char *l = p + 2;

		if (!strncasecmp(l, "Set-Cookie: ", 12) && !strncmp(l + 12, name, nl) &&
		    l[12 + nl] == '=') {
			const char *v = l + 13 + nl;
			size_t n = strcspn(v, ";\r");

			if (n < size) {
				memcpy(out, v, n);
				out[n] = '\0';
			}
		}
	}
}

/* The value of the first hidden csrf field of a page. */
static void form_token(const struct wc_resp *r, char *out, size_t size)
{
	const char *p = r->body ? strstr(r->body, "name=\"csrf\" value=\"") : NULL;

	out[0] = '\0';
	if (p)
		snprintf(out, size, "%.*s", (int)strcspn(p + 19, "\""), p + 19);
}

static int req(struct env *e, struct client *c, const char *method, const char *path,
	       const char *form, struct wc_resp *r)
{
	char raw[4096];

	snprintf(raw, sizeof(raw), "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
		 "Cookie: gm_login=%s; gm_portal=%s\r\n%s%s%s", method, path, c->login_tok,
		 c->session, form ? "Content-Type: application/x-www-form-urlencoded\r\n" : "",
		 c->header ? c->header : "", form ? "" : "\r\n");
	if (form)
		snprintf(raw + strlen(raw), sizeof(raw) - strlen(raw), "Content-Length: %zu\r\n\r\n%s",
			 strlen(form), form);
	if (wc_request(e->port, raw, strlen(raw), r))
		return -1;
	cookie_of(r, "gm_login", c->login_tok, sizeof(c->login_tok));
	cookie_of(r, "gm_portal", c->session, sizeof(c->session));
	return r->status;
}

static void done(struct wc_resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* GET /login then POST it: the status of the POST (303 when signed in). */
static int sign_in(struct env *e, struct client *c, const char *login, const char *pw)
{
	struct wc_resp r;
	char form[512];
	int st;

	if (req(e, c, "GET", "/login", NULL, &r) != 200)
		return -1;
	done(&r);
	snprintf(form, sizeof(form), "csrf=%s&login=%s&password=%s", c->login_tok, login, pw);
	st = req(e, c, "POST", "/login", form, &r);
	done(&r);
	return st;
}

/* A signed-in page's csrf field (any page with the sign-out form). */
static void page_token(struct env *e, struct client *c, const char *path)
{
	struct wc_resp r;

	req(e, c, "GET", path, NULL, &r);
	form_token(&r, c->csrf, sizeof(c->csrf));
	done(&r);
}

/* ---- fixture --------------------------------------------------------------------------------- */

FIXTURE(portal) {
	struct env *e;
	bool pg;
};

FIXTURE_SETUP(portal)
{
	struct env *e;
	struct web_server_config wc = { .listen = "127.0.0.1:0" };
	char err[768];
	struct maind_pg p;

	self->pg = pg_available();
	if (!self->pg)
		return;
	ASSERT_EQ(0, sodium_init() < 0);
	e = self->e = calloc(1, sizeof(*e));
	ASSERT_EQ(0, scratch_dir(e->dir, sizeof(e->dir), "portal-test"));
	ASSERT_EQ(0, pg_cluster_start(e->dir, e->pgdir, sizeof(e->pgdir), e->conninfo,
				      sizeof(e->conninfo)));
	maind_config_defaults(&e->cfg);
	snprintf(e->cfg.conninfo, sizeof(e->cfg.conninfo), "%s", e->conninfo);
	ASSERT_EQ(0, mpg_open(&p, e->conninfo, err, sizeof(err))) TH_LOG("%s", err);
	mpg_close(&p);
	/* two customers, a running bill each, b's bill notice, an hour each yesterday */
	ASSERT_EQ(0, pgx(e->conninfo,
		"INSERT INTO tariff_plans (name, tz) VALUES ('home', 'UTC');"
		"INSERT INTO customers (town, meter, name, address, tariff) VALUES "
		"(11, 1, 'Ada Lovelace', '1 Mill Lane', 'home'), "
		"(12, 1, 'Brunel Bakery', '3 High Street', 'home');"
		"INSERT INTO operators (name, pk) VALUES ('alice', decode(repeat('a1', 32), 'hex'))"));
	e->cust_a = pg1(e->conninfo, "SELECT id FROM customers WHERE meter = 1 AND town = 11");
	e->cust_b = pg1(e->conninfo, "SELECT id FROM customers WHERE meter = 1 AND town = 12");
	ASSERT_EQ(0, pgx(e->conninfo,
		"INSERT INTO bills (customer, town, meter, plan, month, period_start, period_end, "
		"first_day, end_day, total_minor) SELECT id, town, meter, 'home', 202603, "
		"'2026-03-01', '2026-04-01', 20513, 20544, 1000 * town + 7 FROM customers;"
		"INSERT INTO notices (customer, kind, ref, subject, body) SELECT b.customer, 'bill', "
		"b.id, 'Your bill', 'Brunel''s bill' FROM bills b WHERE b.town = 12;"
		"INSERT INTO meter_hours (town, meter, hour, period, import_mwh, export_mwh, "
		"renew_mwh, readings, flags, rev, seq) SELECT town, 1, date_trunc('day', now()) - "
		"interval '1 day' + interval '10 hours', 0, 123000 * town, 0, 0, 4, 0, 0, 1 "
		"FROM customers"));
	e->bill_a = pg1(e->conninfo, "SELECT id FROM bills WHERE town = 11");
	e->bill_b = pg1(e->conninfo, "SELECT id FROM bills WHERE town = 12");
	ASSERT_EQ(0, portal_open(&e->app, &e->cfg, NULL, err, sizeof(err))) TH_LOG("%s", err);
	e->srv = web_server_start(&wc, portal_handle, &e->app, err, sizeof(err));
	ASSERT_NE(NULL, e->srv) TH_LOG("%s", err);
	e->port = web_server_port(e->srv);
}

FIXTURE_TEARDOWN(portal)
{
	struct env *e = self->e;

	if (!self->pg)
		return;
	if (e->srv)
		web_server_stop(e->srv);
	portal_close(&e->app);
	pg_cluster_stop(e->pgdir);
	scratch_remove(e->dir);
	free(e);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void schema_and_web_user_commands(struct __test_metadata *_metadata, struct env *e)
{
	char pw[256], shortpw[256], id[24], b32[64];
	uint8_t key[64];

	/* the table refuses accounts that point nowhere, whoever writes them */
	EXPECT_EQ(-1, pgx(e->conninfo, "INSERT INTO web_users (login, hash, role) VALUES "
			  "('x', '$argon2id$v=19$x', 'customer')"));
	EXPECT_EQ(-1, pgx(e->conninfo, "INSERT INTO web_users (login, hash, role, operator) VALUES "
			  "('y', '$argon2id$v=19$x', 'operator', 1)"));	/* no TOTP secret */
	EXPECT_EQ(-1, pgx(e->conninfo, "INSERT INTO web_users (login, hash, role, customer) VALUES "
			  "('z', 'plain', 'customer', 1)"));		/* not a hash */
	pwfile(e, "a", "correct horse battery", pw, sizeof(pw));
	pwfile(e, "short", "short", shortpw, sizeof(shortpw));
	snprintf(id, sizeof(id), "%lld", (long long)e->cust_a);
	EXPECT_EQ(2, webuser(e, "add", "bad login!", "customer", id, "--password-file", pw, NULL));
	EXPECT_EQ(2, webuser(e, "add", "ada", "admin", id, "--password-file", pw, NULL));
	EXPECT_EQ(1, webuser(e, "add", "ada", "customer", "999", "--password-file", pw, NULL));
	EXPECT_EQ(1, webuser(e, "add", "ada", "customer", id, "--password-file", shortpw, NULL));
	EXPECT_EQ(1, webuser(e, "add", "ada", "operator", "nobody", "--password-file", pw, NULL));
	EXPECT_EQ(0, pg1(e->conninfo, "SELECT count(*) FROM web_users"));
	ASSERT_EQ(0, webuser(e, "add", "ada", "customer", id, "--password-file", pw, NULL));
	EXPECT_EQ(1, webuser(e, "add", "ada", "customer", id, "--password-file", pw, NULL));
	ASSERT_EQ(0, webuser(e, "add", "alice", "operator", "alice", "--password-file", pw, NULL));
	/* the hash is Argon2id of the password; the secret 20 bytes of base32 */
	{
		char hash[256];

		ASSERT_EQ(0, pgs(e->conninfo, "SELECT hash FROM web_users WHERE login = 'ada'", hash,
				 sizeof(hash)));
		EXPECT_EQ(0, strncmp(hash, "$argon2id$", 10));
		EXPECT_TRUE(web_passwd_verify(hash, "correct horse battery"));
		EXPECT_FALSE(web_passwd_verify(hash, "correct horse battery "));
	}
	ASSERT_EQ(0, pgs(e->conninfo, "SELECT totp_secret FROM web_users WHERE login = 'alice'", b32,
			 sizeof(b32)));
	EXPECT_EQ(TOTP_SECRET_LEN, totp_b32_decode(b32, key, sizeof(key)));
	EXPECT_EQ(1, webuser(e, "passwd", "nobody", "--password-file", pw, NULL));
	EXPECT_EQ(1, webuser(e, "disable", "nobody", NULL));
	EXPECT_EQ(0, webuser(e, "disable", "ada", NULL));
	EXPECT_EQ(1, pg1(e->conninfo, "SELECT count(*) FROM web_users WHERE disabled"));
	EXPECT_EQ(0, webuser(e, "enable", "ada", NULL));
	EXPECT_EQ(0, webuser(e, "list", NULL));
}

static void sign_in_throttle_passwd_disable(struct __test_metadata *_metadata, struct env *e)
{
	struct client c = { 0 }, c2 = { 0 };
	struct wc_resp r;
	char pw[256], pw2[256], id[24], form[256];

	snprintf(id, sizeof(id), "%lld", (long long)e->cust_a);
	pwfile(e, "a", "correct horse battery", pw, sizeof(pw));
	pwfile(e, "a2", "another good password", pw2, sizeof(pw2));
	ASSERT_EQ(0, webuser(e, "add", "ada", "customer", id, "--password-file", pw, NULL));
	/* signed out: the pages send to the login page */
	EXPECT_EQ(303, req(e, &c, "GET", "/bills", NULL, &r));
	done(&r);
	EXPECT_EQ(401, sign_in(e, &c, "ada", "wrong+password"));
	EXPECT_EQ(0, c.session[0]);
	/* the login form without its token (another site's form): refused */
	snprintf(form, sizeof(form), "login=ada&password=correct+horse+battery");
	EXPECT_EQ(403, req(e, &c2, "POST", "/login", form, &r));
	done(&r);
	EXPECT_EQ(303, sign_in(e, &c, "ada", "correct+horse+battery"));
	ASSERT_EQ(WEB_TOKEN_LEN, strlen(c.session));
	EXPECT_EQ(200, req(e, &c, "GET", "/bills", NULL, &r));
	EXPECT_NE(NULL, strstr(r.body, "Ada Lovelace"));
	done(&r);
	/* a POST without the session's token is refused; with it, it works */
	EXPECT_EQ(403, req(e, &c, "POST", "/logout", "csrf=nope", &r));
	done(&r);
	/* the password changed elsewhere: the session ends at its next request */
	sleep(1);	/* password_changed is compared in whole seconds */
	ASSERT_EQ(0, webuser(e, "passwd", "ada", "--password-file", pw2, NULL));
	EXPECT_EQ(303, req(e, &c, "GET", "/bills", NULL, &r));
	done(&r);
	EXPECT_EQ(401, sign_in(e, &c, "ada", "correct+horse+battery"));
	EXPECT_EQ(303, sign_in(e, &c, "ada", "another+good+password"));
	page_token(e, &c, "/bills");
	/* disabled: signed out at once, and no new sign-in even with the password */
	ASSERT_EQ(0, webuser(e, "disable", "ada", NULL));
	EXPECT_EQ(303, req(e, &c, "GET", "/bills", NULL, &r));
	done(&r);
	EXPECT_EQ(401, sign_in(e, &c, "ada", "another+good+password"));
	ASSERT_EQ(0, webuser(e, "enable", "ada", NULL));
	/* five failures (two above) then refused whatever the password: 429 */
	for (int i = 0; i < 2; i++)	/* the old password and the disabled account counted */
		EXPECT_EQ(401, sign_in(e, &c, "ada", "wrong+password"));
	EXPECT_EQ(429, sign_in(e, &c, "ada", "another+good+password"));
}

static void operator_second_factor_once(struct __test_metadata *_metadata, struct env *e)
{
	struct client c = { 0 };
	struct wc_resp r;
	char pw[256], b32[64], form[128];
	uint8_t key[64];
	int n;
	int64_t step, now;

	pwfile(e, "o", "operator password", pw, sizeof(pw));
	ASSERT_EQ(0, webuser(e, "add", "alice", "operator", "alice", "--password-file", pw, NULL));
	ASSERT_EQ(0, pgs(e->conninfo, "SELECT totp_secret FROM web_users WHERE login = 'alice'", b32,
			 sizeof(b32)));
	n = totp_b32_decode(b32, key, sizeof(key));
	ASSERT_EQ(TOTP_SECRET_LEN, n);
	/* the password alone: only the second-factor page */
	ASSERT_EQ(303, sign_in(e, &c, "alice", "operator+password"));
	EXPECT_EQ(303, req(e, &c, "GET", "/op/towns", NULL, &r));
	EXPECT_NE(NULL, strstr(r.head, "Location: /totp"));
	done(&r);
	EXPECT_EQ(303, req(e, &c, "GET", "/bills", NULL, &r));
	done(&r);
	page_token(e, &c, "/totp");
	snprintf(form, sizeof(form), "csrf=%s&code=000000", c.csrf);
	now = time(NULL);
	step = now / TOTP_STEP_S;
	if (totp_hotp(key, (size_t)n, (uint64_t)step, 6) == 0)
		snprintf(form, sizeof(form), "csrf=%s&code=111111", c.csrf);
	EXPECT_EQ(401, req(e, &c, "POST", "/totp", form, &r));
	done(&r);
	snprintf(form, sizeof(form), "csrf=%s&code=%06u", c.csrf,
		 totp_hotp(key, (size_t)n, (uint64_t)step, 6));
	EXPECT_EQ(303, req(e, &c, "POST", "/totp", form, &r));
	EXPECT_NE(NULL, strstr(r.head, "Location: /op/towns"));
	done(&r);
	EXPECT_EQ(step, pg1(e->conninfo, "SELECT totp_last_step FROM web_users WHERE login = 'alice'"));
	/* a customer's page is not an operator's: 404 */
	EXPECT_EQ(404, req(e, &c, "GET", "/bills", NULL, &r));
	done(&r);
	/* the same code again, in a new sign-in: refused (replay) */
	memset(&c, 0, sizeof(c));
	ASSERT_EQ(303, sign_in(e, &c, "alice", "operator+password"));
	page_token(e, &c, "/totp");
	snprintf(form, sizeof(form), "csrf=%s&code=%06u", c.csrf,
		 totp_hotp(key, (size_t)n, (uint64_t)step, 6));
	EXPECT_EQ(401, req(e, &c, "POST", "/totp", form, &r));
	done(&r);
	/* the next step's code (allowed: one step of drift) goes through, once */
	snprintf(form, sizeof(form), "csrf=%s&code=%06u", c.csrf,
		 totp_hotp(key, (size_t)n, (uint64_t)(step + 1), 6));
	EXPECT_EQ(303, req(e, &c, "POST", "/totp", form, &r));
	done(&r);
	EXPECT_EQ(step + 1, pg1(e->conninfo, "SELECT totp_last_step FROM web_users WHERE login = "
				"'alice'"));
	/*
	 * The operator's key revoked (mainctl op-revoke, another process) while
	 * the session is open: signed out on the next request, like a disabled
	 * account, and no new sign-in until re-keyed.
	 */
	EXPECT_EQ(200, req(e, &c, "GET", "/op/towns", NULL, &r));
	done(&r);
	ASSERT_EQ(0, pgx(e->conninfo, "UPDATE operators SET revoked = true WHERE name = 'alice'"));
	EXPECT_EQ(303, req(e, &c, "GET", "/op/towns", NULL, &r));
	EXPECT_NE(NULL, strstr(r.head, "Location: /login"));
	done(&r);
	EXPECT_EQ(303, req(e, &c, "GET", "/op/commands", NULL, &r));
	EXPECT_NE(NULL, strstr(r.head, "Location: /login"));
	done(&r);
	memset(&c, 0, sizeof(c));
	EXPECT_EQ(401, sign_in(e, &c, "alice", "operator+password"));
	ASSERT_EQ(0, pgx(e->conninfo, "UPDATE operators SET revoked = false WHERE name = 'alice'"));
}

static void a_customer_sees_only_their_own(struct __test_metadata *_metadata, struct env *e)
{
	struct client c = { 0 };
	struct wc_resp r;
	char pw[256], id[24], path[96], total_b[16];

	snprintf(id, sizeof(id), "%lld", (long long)e->cust_a);
	pwfile(e, "a", "correct horse battery", pw, sizeof(pw));
	ASSERT_EQ(0, webuser(e, "add", "ada", "customer", id, "--password-file", pw, NULL));
	ASSERT_EQ(303, sign_in(e, &c, "ada", "correct+horse+battery"));
	snprintf(total_b, sizeof(total_b), "%lld", (long long)(1000 * 12 + 7));
	/* own bill: there */
	snprintf(path, sizeof(path), "/bills/%lld", (long long)e->bill_a);
	EXPECT_EQ(200, req(e, &c, "GET", path, NULL, &r));
	done(&r);
	/* b's bill, letter, and any bill number: 404 and nothing of b's */
	snprintf(path, sizeof(path), "/bills/%lld", (long long)e->bill_b);
	EXPECT_EQ(404, req(e, &c, "GET", path, NULL, &r));
	EXPECT_EQ(NULL, strstr(r.body, "Brunel"));
	EXPECT_EQ(NULL, strstr(r.body, total_b));
	done(&r);
	snprintf(path, sizeof(path), "/bills/%lld/letter.pdf", (long long)e->bill_b);
	EXPECT_EQ(404, req(e, &c, "GET", path, NULL, &r));
	done(&r);
	EXPECT_EQ(404, req(e, &c, "GET", "/bills/99999", NULL, &r));
	done(&r);
	EXPECT_EQ(404, req(e, &c, "GET", "/bills/1x", NULL, &r));
	done(&r);
	/* lists and graphs: a's numbers only */
	const char *pages[] = { "/bills", "/usage?view=month", "/usage?view=day", "/notices",
				"/alerts" };
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		EXPECT_EQ(200, req(e, &c, "GET", pages[i], NULL, &r)) TH_LOG("%s", pages[i]);
		EXPECT_EQ(NULL, strstr(r.body, "Brunel")) TH_LOG("%s", pages[i]);
		EXPECT_EQ(NULL, strstr(r.body, "High Street")) TH_LOG("%s", pages[i]);
		EXPECT_EQ(NULL, strstr(r.body, "1476000")) TH_LOG("%s", pages[i]);	/* b's hour */
		if (!strncmp(pages[i], "/usage", 6))
			EXPECT_NE(NULL, strstr(r.body, "1353000")) TH_LOG("%s", pages[i]);	/* a's */
		done(&r);
	}
	EXPECT_EQ(400, req(e, &c, "GET", "/usage?view=day&date=2026-02-30", NULL, &r));
	done(&r);
}

/*
 * The second factor is throttled like the password: after 5 wrong codes
 * for a login, 429 whatever the code, also in a new sign-in (the count is
 * the login's, not the session's).
 */
static void second_factor_throttled(struct __test_metadata *_metadata, struct env *e)
{
	struct client c = { 0 };
	struct wc_resp r;
	char b32[64], form[128];
	uint8_t key[64];
	int64_t step = time(NULL) / TOTP_STEP_S;
	unsigned wrong = 0;
	int n;

	ASSERT_EQ(0, pgs(e->conninfo, "SELECT totp_secret FROM web_users WHERE login = 'alice'", b32,
			 sizeof(b32)));
	n = totp_b32_decode(b32, key, sizeof(key));
	ASSERT_EQ(TOTP_SECRET_LEN, n);
	/* a code no step near now gives (the next minute's two steps too) */
	for (int64_t k = step - 1; k <= step + 3; k++)
		if (totp_hotp(key, (size_t)n, (uint64_t)k, 6) == wrong)
			wrong++, k = step - 2;
	ASSERT_EQ(0, pgx(e->conninfo, "UPDATE web_users SET totp_last_step = 0 WHERE login = "
			 "'alice'"));
	ASSERT_EQ(303, sign_in(e, &c, "alice", "operator+password"));
	page_token(e, &c, "/totp");
	snprintf(form, sizeof(form), "csrf=%s&code=%06u", c.csrf, wrong);
	for (int i = 0; i < 5; i++) {
		EXPECT_EQ(401, req(e, &c, "POST", "/totp", form, &r)) TH_LOG("%d", i);
		done(&r);
	}
	memset(&c, 0, sizeof(c));
	ASSERT_EQ(303, sign_in(e, &c, "alice", "operator+password"));
	page_token(e, &c, "/totp");
	snprintf(form, sizeof(form), "csrf=%s&code=%06u", c.csrf,
		 totp_hotp(key, (size_t)n, (uint64_t)(time(NULL) / TOTP_STEP_S), 6));
	EXPECT_EQ(429, req(e, &c, "POST", "/totp", form, &r));
	done(&r);
	EXPECT_EQ(303, req(e, &c, "GET", "/op/towns", NULL, &r));
	EXPECT_NE(NULL, strstr(r.head, "Location: /totp"));
	done(&r);
	EXPECT_EQ(0, pg1(e->conninfo, "SELECT totp_last_step FROM web_users WHERE login = 'alice'"));
	web_throttle_reset(&e->app.throttle, "totp:alice");
}

/*
 * The signing form sent twice (a double click, the browser's back and
 * resend): the commands are stored once and the second answer says, in
 * words, that they were already issued, with the operation (not "the
 * database did not answer", which invites trying again). alice's key is
 * made here and "the browser" signs with it as gm-sign.js does.
 */
static void command_form_sent_twice(struct __test_metadata *_metadata, struct env *e)
{
	struct client c = { 0 };
	struct web_session s = { 0 };
	struct wc_resp r;
	uint8_t pk[GMC_PK_LEN], sk[GMC_SK_LEN], body[GMC_BODY_LEN], sig[GMC_SIG_LEN];
	uint8_t m[sizeof(GMC_DOMAIN) + GMC_BODY_LEN];
	char pkhex[2 * GMC_PK_LEN + 1], sighex[2 * GMC_SIG_LEN + 1], bhex[2 * GMC_BODY_LEN + 1];
	char sql[256], form[1024], op[32];
	const char *p;
	struct gmc_cmd cmd;
	int64_t rows;

	crypto_sign_keypair(pk, sk);
	sodium_bin2hex(pkhex, sizeof(pkhex), pk, sizeof(pk));
	snprintf(sql, sizeof(sql), "UPDATE operators SET pk = decode('%s', 'hex') WHERE name = "
		 "'alice'; INSERT INTO towns (id, name, pk) VALUES (11, 'Eleven', "
		 "decode(repeat('b2', 32), 'hex')) ON CONFLICT DO NOTHING", pkhex);
	ASSERT_EQ(0, pgx(e->conninfo, sql));
	/* alice signed in with both factors (tested above): her session made directly */
	snprintf(s.user, sizeof(s.user), "alice");
	s.role = WEB_ROLE_OPERATOR;
	s.subject = pg1(e->conninfo, "SELECT id FROM operators WHERE name = 'alice'");
	ASSERT_EQ(0, web_session_create(&e->app.sessions, &s, time(NULL) + 1, c.session));
	page_token(e, &c, "/op/commands/new");
	ASSERT_EQ(WEB_TOKEN_LEN, strlen(c.csrf));
	snprintf(form, sizeof(form), "csrf=%s&action=disconnect&targets=11%%3A1&expires=1h&arg=",
		 c.csrf);
	ASSERT_EQ(200, req(e, &c, "POST", "/op/commands/new", form, &r));
	p = strstr(r.body, "name=\"b0\" value=\"");
	ASSERT_NE(NULL, p);
	snprintf(bhex, sizeof(bhex), "%.*s", 2 * GMC_BODY_LEN, p + 17);
	done(&r);
	ASSERT_EQ(0, gmp_hex_decode(bhex, body, GMC_BODY_LEN));
	ASSERT_EQ(0, gmc_body_decode(body, GMC_BODY_LEN, &cmd));
	ASSERT_EQ(0, crypto_sign_detached(sig, NULL, m, gmc_signed_bytes(&cmd, m, sizeof(m)), sk));
	sodium_bin2hex(sighex, sizeof(sighex), sig, sizeof(sig));
	snprintf(form, sizeof(form), "csrf=%s&n=1&b0=%s&s0=%s", c.csrf, bhex, sighex);
	rows = pg1(e->conninfo, "SELECT count(*) FROM signed_commands");
	ASSERT_EQ(303, req(e, &c, "POST", "/op/commands/sign", form, &r));
	done(&r);
	EXPECT_EQ(rows + 1, pg1(e->conninfo, "SELECT count(*) FROM signed_commands"));
	snprintf(op, sizeof(op), "operation %lld", (long long)pg1(e->conninfo,
		 "SELECT max(op) FROM signed_commands"));
	EXPECT_EQ(409, req(e, &c, "POST", "/op/commands/sign", form, &r));
	EXPECT_NE(NULL, r.body ? strstr(r.body, "already issued") : NULL);
	EXPECT_NE(NULL, r.body ? strstr(r.body, op) : NULL) TH_LOG("%s", op);
	done(&r);
	EXPECT_EQ(rows + 1, pg1(e->conninfo, "SELECT count(*) FROM signed_commands"));
	sodium_memzero(sk, sizeof(sk));
}

/*
 * One account signing in again and again (a script, or a household's
 * every device) cannot fill the session table and lock everyone else out:
 * it keeps at most PORTAL_SESSIONS_PER_USER sessions, the least recently
 * used ending first. The table is made small here so that filling it is quick.
 */
static void one_account_cannot_fill_the_table(struct __test_metadata *_metadata, struct env *e)
{
	const size_t cap = PORTAL_SESSIONS_PER_USER + 4;
	struct client c[PORTAL_SESSIONS_PER_USER + 4], bob = { 0 };
	struct wc_resp r;
	char pw[256], id[24];

	web_sessions_free(&e->app.sessions);
	ASSERT_EQ(0, web_sessions_init(&e->app.sessions, cap, e->cfg.portal_session_s,
				       e->cfg.portal_idle_s));
	pwfile(e, "a", "correct horse battery", pw, sizeof(pw));	/* ada's, made before */
	for (size_t i = 0; i < cap; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		ASSERT_EQ(303, sign_in(e, &c[i], "ada", "correct+horse+battery")) TH_LOG("%zu", i);
	}
	EXPECT_GE(PORTAL_SESSIONS_PER_USER, e->app.sessions.n);
	snprintf(id, sizeof(id), "%lld", (long long)e->cust_b);
	pwfile(e, "b", "brunel bakery bread", pw, sizeof(pw));
	ASSERT_EQ(0, webuser(e, "add", "bob", "customer", id, "--password-file", pw, NULL));
	EXPECT_EQ(303, sign_in(e, &bob, "bob", "brunel+bakery+bread"));
	EXPECT_EQ(200, req(e, &bob, "GET", "/bills", NULL, &r));
	done(&r);
	/* his letter: a PDF no browser or proxy keeps */
	{
		char path[96];

		snprintf(path, sizeof(path), "/bills/%lld/letter.pdf", (long long)e->bill_b);
		EXPECT_EQ(200, req(e, &bob, "GET", path, NULL, &r));
		EXPECT_NE(NULL, strstr(r.head, "application/pdf"));
		EXPECT_NE(NULL, strstr(r.head, "Cache-Control: no-store"));
		done(&r);
	}
	/* ada's newest sessions are there, her oldest ended */
	for (size_t i = 0; i < cap; i++) {
		EXPECT_EQ(i + PORTAL_SESSIONS_PER_USER >= cap ? 200 : 303,
			  req(e, &c[i], "GET", "/bills", NULL, &r)) TH_LOG("%zu", i);
		done(&r);
	}
}

/*
 * Behind the reverse proxy Documentation/portal.md asks for, every client
 * comes from 127.0.0.1: the per-address throttle must count the client the
 * proxy names (the last X-Forwarded-For entry, the one it added), or five
 * wrong passwords from anyone shut everyone out. Only a loopback peer is
 * believed: a remote client's header is its own word.
 */
static void throttle_behind_a_proxy(struct __test_metadata *_metadata, struct env *e)
{
	struct client c = { 0 };

	web_throttle_reset(&e->app.throttle, "addr:127.0.0.1");
	/* five wrong passwords for five logins from one address behind the proxy */
	c.header = "X-Forwarded-For: 198.51.100.7\r\n";
	for (int i = 0; i < 5; i++) {
		char login[16];

		snprintf(login, sizeof(login), "nobody%d", i);
		EXPECT_EQ(401, sign_in(e, &c, login, "wrong+password+1")) TH_LOG("%d", i);
	}
	/* that address is stopped, even with a right password and a forged first entry */
	EXPECT_EQ(429, sign_in(e, &c, "ada", "correct+horse+battery"));
	c.header = "X-Forwarded-For: 203.0.113.9, 198.51.100.7\r\n";
	EXPECT_EQ(429, sign_in(e, &c, "ada", "correct+horse+battery"));
	/* another client through the same proxy is not */
	memset(&c, 0, sizeof(c));
	c.header = "X-Forwarded-For: 198.51.100.8\r\n";
	EXPECT_EQ(303, sign_in(e, &c, "ada", "correct+horse+battery"));
}

/*
 * TLS ended at the proxy: the cookies must still be Secure (never sent
 * back over plain HTTP). A loopback peer's X-Forwarded-Proto: https says
 * so; without it, plain HTTP here, no Secure (the browser would drop the
 * cookie over http://localhost).
 */
static void secure_cookie_behind_a_tls_proxy(struct __test_metadata *_metadata, struct env *e)
{
	for (int https = 0; https < 2; https++) {
		struct client c = { 0 };
		struct wc_resp r;
		char form[512];
		const char *sc;

		c.header = https ? "X-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.9\r\n" :
			   "X-Forwarded-For: 198.51.100.9\r\n";
		ASSERT_EQ(200, req(e, &c, "GET", "/login", NULL, &r));
		sc = strstr(r.head, "gm_login=");
		ASSERT_NE(NULL, sc);
		EXPECT_EQ(https, strstr(sc, "; Secure") && strstr(sc, "; Secure") < strchr(sc, '\n'));
		done(&r);
		snprintf(form, sizeof(form), "csrf=%s&login=ada&password=correct+horse+battery",
			 c.login_tok);
		ASSERT_EQ(303, req(e, &c, "POST", "/login", form, &r));
		sc = strstr(r.head, "gm_portal=");
		ASSERT_NE(NULL, sc);
		EXPECT_EQ(https, strstr(sc, "; Secure") && strstr(sc, "; Secure") < strchr(sc, '\n'))
			TH_LOG("%s", r.head);
		done(&r);
	}
}

/*
 * One scratch cluster for all (starting one costs seconds): the parts use
 * their own logins, in this order (a and alice are made again by each part
 * after the table is emptied).
 */
TEST_F(portal, accounts_sign_in_second_factor_isolation)
{
	struct env *e = self->e;

	if (!self->pg)
		SKIP(return, PG_SKIP_WHY);
	schema_and_web_user_commands(_metadata, e);
	ASSERT_EQ(0, pgx(e->conninfo, "DELETE FROM web_users"));
	sign_in_throttle_passwd_disable(_metadata, e);
	ASSERT_EQ(0, pgx(e->conninfo, "DELETE FROM web_users"));
	/* the throttle counted this address's failures: a new "client" */
	web_throttle_reset(&e->app.throttle, "addr:127.0.0.1");
	operator_second_factor_once(_metadata, e);
	command_form_sent_twice(_metadata, e);
	second_factor_throttled(_metadata, e);
	ASSERT_EQ(0, pgx(e->conninfo, "DELETE FROM web_users"));
	web_throttle_reset(&e->app.throttle, "addr:127.0.0.1");
	a_customer_sees_only_their_own(_metadata, e);
	one_account_cannot_fill_the_table(_metadata, e);
	throttle_behind_a_proxy(_metadata, e);
	secure_cookie_behind_a_tls_proxy(_metadata, e);
}

TEST_HARNESS_MAIN
