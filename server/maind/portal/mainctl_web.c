// SPDX-License-Identifier: GPL-2.0
/*
 * mainctl: the portal's accounts (mainctl_parts.h, Documentation/portal.md
 * "Accounts").
 *
 *   web-user add LOGIN customer ID [--password-file F]
 *   web-user add LOGIN operator NAME [--password-file F]
 *   web-user passwd LOGIN [--password-file F]
 *   web-user disable LOGIN | enable LOGIN
 *   web-user list
 *
 * The password comes from the file's first line or from standard input
 * (asked for without echo on a terminal); only its Argon2id hash is kept.
 * An operator account gets a new TOTP secret, printed once with its
 * otpauth:// URI for the operator's authenticator app.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "auth.h"
#include "mainctl_parts.h"
#include "parse.h"
#include "totp.h"

#define PW_MIN	10	/* characters */
#define PW_MAX	256

void mctl_web_usage(void)
{
	fprintf(stderr,
		"  web-user add LOGIN customer ID [--password-file F]\n"
		"  web-user add LOGIN operator NAME [--password-file F]\n"
		"                                   a portal account (password: F's first line, else\n"
		"                                   standard input); operators get a TOTP secret\n"
		"  web-user passwd LOGIN [--password-file F]   a new password (sessions end)\n"
		"  web-user disable LOGIN | enable LOGIN       refuse or allow signing in\n"
		"  web-user list                    the portal's accounts\n");
}

static bool login_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 63 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._@-", s[i]))
			return false;
	return true;
}

/* The password from file (first line) or stdin; 0 or -1 (the reason printed). */
static int read_password(const char *file, char *pw, size_t size)
{
	struct termios old, quiet;
	bool tty = !file && isatty(0);
	FILE *f = file ? fopen(file, "re") : stdin;
	size_t n;
	char *ok;

	if (!f) {
		fprintf(stderr, "mainctl: %s: %s\n", file, strerror(errno));
		return -1;
	}
	if (tty) {
		fprintf(stderr, "password (at least %d characters): ", PW_MIN);
		tcgetattr(0, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(0, TCSANOW, &quiet);
	}
	ok = fgets(pw, (int)size, f);
	if (tty) {
		tcsetattr(0, TCSANOW, &old);
		fputc('\n', stderr);
	}
	if (file)
		fclose(f);
	if (!ok) {
		fprintf(stderr, "mainctl: no password given (%s is empty)\n",
			file ? file : "standard input");
		return -1;
	}
	n = strlen(pw);
	if (n && pw[n - 1] != '\n' && n == size - 1) {
		fprintf(stderr, "mainctl: the password is longer than %zu characters\n", size - 2);
		return -1;
	}
	while (n && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
		pw[--n] = '\0';
	if (n < PW_MIN) {
		fprintf(stderr, "mainctl: the password has %zu characters, at least %d are needed\n",
			n, PW_MIN);
		return -1;
	}
	return 0;
}

static int hash_from(const char *file, char hash[128])
{
	char pw[PW_MAX + 2];
	int rc = read_password(file, pw, sizeof(pw));

	if (!rc && web_passwd_hash(pw, hash)) {
		fprintf(stderr, "mainctl: hashing the password failed (out of memory?)\n");
		rc = -1;
	}
	sodium_memzero(pw, sizeof(pw));
	return rc;
}

/* "--password-file F" at args[i] (or nothing): the file or NULL; -1 on other words. */
static int pw_file_arg(int argc, char **args, int i, const char **file)
{
	*file = NULL;
	if (i == argc)
		return 0;
	if (i + 2 == argc && !strcmp(args[i], "--password-file")) {
		*file = args[i + 1];
		return 0;
	}
	fprintf(stderr, "mainctl: unexpected '%s' (only --password-file FILE may follow)\n",
		args[i]);
	return -1;
}

static int add(PGconn *c, int argc, char **args)
{
	const char *login = args[1], *role = args[2], *who = args[3], *file;
	char hash[128], b32[TOTP_B32_LEN + 1], id[24], uri[512];
	uint8_t secret[TOTP_SECRET_LEN];
	bool op;
	PGresult *r;

	if (argc < 4) {
		mctl_web_usage();
		return 2;
	}
	if (!login_ok(login)) {
		fprintf(stderr, "mainctl: login '%s': 1 to 63 letters, digits and . _ @ -, "
			"starting with a letter or digit\n", login);
		return 2;
	}
	op = !strcmp(role, "operator");
	if (!op && strcmp(role, "customer")) {
		fprintf(stderr, "mainctl: role '%s' is neither customer nor operator\n", role);
		return 2;
	}
	if (pw_file_arg(argc, args, 4, &file))
		return 2;
	r = mctl_q(c, "SELECT 1 FROM web_users WHERE login = $1", 1, &login);
	if (!r)
		return 1;
	if (PQntuples(r)) {
		fprintf(stderr, "mainctl: login '%s' exists (web-user passwd changes its password)\n",
			login);
		PQclear(r);
		return 1;
	}
	PQclear(r);
	if (op) {
		r = mctl_q(c, "SELECT id, revoked FROM operators WHERE name = $1", 1, &who);
		if (r && PQntuples(r) && !strcmp(PQgetvalue(r, 0, 1), "t")) {
			fprintf(stderr, "mainctl: operator %s's key is revoked: no account for it\n",
				who);
			PQclear(r);
			return 1;
		}
	} else {
		uint32_t cid;

		if (parse_u32(who, 1, INT32_MAX, &cid)) {
			fprintf(stderr, "mainctl: customer id '%s' is not a number\n", who);
			return 2;
		}
		r = mctl_q(c, "SELECT id FROM customers WHERE id = $1::integer", 1, &who);
	}
	if (!r)
		return 1;
	if (!PQntuples(r)) {
		fprintf(stderr, op ? "mainctl: no operator %s (mainctl op-add first)\n" :
			"mainctl: no customer %s (mainctl customer add first)\n", who);
		PQclear(r);
		return 1;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	if (hash_from(file, hash))
		return 1;
	b32[0] = '\0';
	if (op) {
		randombytes_buf(secret, sizeof(secret));
		totp_b32_encode(secret, sizeof(secret), b32, sizeof(b32));
		sodium_memzero(secret, sizeof(secret));
	}
	r = mctl_q(c, "INSERT INTO web_users (login, hash, role, customer, operator, totp_secret) "
		   "VALUES ($1, $2, $3, $4::integer, $5::integer, $6)", 6,
		   (const char *const[]){ login, hash, role, op ? NULL : id, op ? id : NULL,
					  op ? b32 : NULL });
	if (!r)
		return 1;
	PQclear(r);
	printf("web user %s added: %s %s\n", login, role, who);
	if (op) {
		if (totp_uri("gridmeter", login, b32, uri, sizeof(uri)))
			uri[0] = '\0';
		printf("TOTP secret: %s\notpauth URI: %s\n"
		       "(give them to the operator's authenticator app now: they are not shown "
		       "again)\n", b32, uri);
	}
	sodium_memzero(b32, sizeof(b32));
	return 0;
}

/* One UPDATE on LOGIN; its row count checked. */
static int update(PGconn *c, const char *sql, int n, const char *const *v, const char *done)
{
	PGresult *r = mctl_q(c, sql, n, v);

	if (!r)
		return 1;
	if (strcmp(PQcmdTuples(r), "1")) {
		fprintf(stderr, "mainctl: no web user '%s' (mainctl web-user list)\n", v[0]);
		PQclear(r);
		return 1;
	}
	PQclear(r);
	printf("web user %s %s\n", v[0], done);
	return 0;
}

int mctl_web(const struct mainctl_ctx *x, const char *cmd, int argc, char **args)
{
	const char *file;
	char hash[128];
	PGconn *c;
	int rc = 2;

	if (strcmp(cmd, "web-user"))
		return -2;
	if (argc < 1 || (strcmp(args[0], "list") && argc < 2)) {
		mctl_web_usage();
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "mainctl: libsodium failed to start\n");
		return 1;
	}
	c = mctl_open(!strcmp(args[0], "list") ? x->report : x->conninfo);
	if (!c)
		return 1;
	if (!strcmp(args[0], "add")) {
		rc = add(c, argc, args);
	} else if (!strcmp(args[0], "passwd")) {
		if (!pw_file_arg(argc, args, 2, &file)) {
			rc = 1;
			if (!hash_from(file, hash))
				rc = update(c, "UPDATE web_users SET hash = $2, password_changed = now() "
					    "WHERE login = $1", 2, (const char *const[]){ args[1], hash },
					    "has a new password (signed out everywhere)");
		}
	} else if ((!strcmp(args[0], "disable") || !strcmp(args[0], "enable")) && argc == 2) {
		bool dis = args[0][0] == 'd';

		rc = update(c, dis ? "UPDATE web_users SET disabled = true WHERE login = $1" :
			    "UPDATE web_users SET disabled = false WHERE login = $1", 1,
			    (const char *const[]){ args[1] },
			    dis ? "disabled (signed out everywhere)" : "enabled");
	} else if (!strcmp(args[0], "list") && argc == 1) {
		PGresult *r = mctl_q(c, "SELECT w.login, w.role, CASE w.role WHEN 'customer' THEN "
				     "w.customer || ' ' || cu.name ELSE o.name END AS who, "
				     "CASE WHEN w.disabled THEN 'disabled' ELSE 'enabled' END AS state, "
				     "to_char(w.created AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS "
				     "created, to_char(w.last_login AT TIME ZONE 'UTC', "
				     "'YYYY-MM-DD HH24:MI') AS last_login FROM web_users w "
				     "LEFT JOIN customers cu ON cu.id = w.customer LEFT JOIN operators o "
				     "ON o.id = w.operator ORDER BY w.role, w.login", 0, NULL);

		rc = 1;
		if (r) {
			mctl_table(r);
			PQclear(r);
			rc = 0;
		}
	} else {
		mctl_web_usage();
	}
	PQfinish(c);
	return rc;
}
