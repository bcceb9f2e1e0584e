/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Passwords, tokens, sessions and CSRF for the web daemons
 * (Documentation/web.md "Access").
 *
 * Passwords: Argon2id through libsodium's crypto_pwhash_str (its
 * "$argon2id$v=19$m=...,t=...,p=..." string is what files and the
 * database hold), OPSLIMIT/MEMLIMIT_INTERACTIVE by default (about 64 MiB
 * and 0.1-0.5 s on a Pi: logins are rare).
 *
 * Sessions live in memory (a daemon restart logs everyone out): a random
 * 256-bit token in an HttpOnly SameSite=Strict cookie; the table keeps only
 * its SHA-256, so a memory dump does not give sessions away. Each session
 * has its own CSRF token (random, sent in every form as the hidden field
 * "csrf" and compared in constant time on every POST), an absolute
 * lifetime and an idle timeout.
 */
#ifndef GM_WEB_AUTH_H
#define GM_WEB_AUTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEB_TOKEN_LEN	43	/* base64url of 32 random bytes, no padding */
#define WEB_USER_MAX	64

/* Argon2id hash of password into out (crypto_pwhash_STRBYTES = 128); 0 or -1. */
int web_passwd_hash(const char *password, char out[128]);
/* true when password matches hash (constant time). */
bool web_passwd_verify(const char *hash, const char *password);

/* A new random token: WEB_TOKEN_LEN characters and a NUL. */
void web_token_new(char out[WEB_TOKEN_LEN + 1]);

enum web_role {
	WEB_ROLE_NONE = 0,
	WEB_ROLE_GUEST,		/* dashboard: read-only, from a one-time code */
	WEB_ROLE_HOUSEHOLD,	/* dashboard: the household */
	WEB_ROLE_CUSTOMER,	/* portal: one customer's data */
	WEB_ROLE_OPERATOR,	/* portal: utility staff (after the second factor) */
};

struct web_session {
	char user[WEB_USER_MAX];	/* login name */
	enum web_role role;
	int64_t subject;		/* customer id (portal), 0 otherwise */
	char csrf[WEB_TOKEN_LEN + 1];
	int64_t created, last_seen, expires;	/* CLOCK_REALTIME s; expires: absolute */
	bool pending_second_factor;	/* operator: password given, TOTP not yet */
};

struct web_sessions {
	pthread_mutex_t lock;	/* guards everything below */
	size_t n, cap;
	struct web_session_slot *slot;
	uint64_t seq;		/* sessions made so far: orders them by age */
	int64_t lifetime_s;	/* absolute lifetime, default 8 h */
	int64_t idle_s;		/* idle timeout, default 30 min */
};

int web_sessions_init(struct web_sessions *t, size_t cap, int64_t lifetime_s, int64_t idle_s);
void web_sessions_free(struct web_sessions *t);
/* A new session for s (user, role, subject, pending_second_factor filled in by the caller;
 * csrf and times are set here). token receives the cookie value. 0 or -1 (table full). */
int web_session_create(struct web_sessions *t, struct web_session *s, int64_t now,
		       char token[WEB_TOKEN_LEN + 1]);
/* The session of token, copied into out (last_seen updated); 0, or -1 when
 * unknown, expired or idle too long (then removed). */
int web_session_get(struct web_sessions *t, const char *token, int64_t now,
		    struct web_session *out);
/* Replace the session's content (e.g. second factor passed) keeping its token. 0 or -1. */
int web_session_update(struct web_sessions *t, const char *token, const struct web_session *s);
void web_session_end(struct web_sessions *t, const char *token);
/* Remove every session of user (password changed, account removed). */
void web_sessions_end_user(struct web_sessions *t, const char *user);
/* End user's least recently used sessions until at most keep remain (before creating
 * one more: one account cannot fill the table and lock everyone else out). */
void web_sessions_trim_user(struct web_sessions *t, const char *user, size_t keep);
/* true when the form's csrf field equals the session's (constant time). */
bool web_csrf_ok(const struct web_session *s, const char *form_value);

/*
 * Login throttling: at most `burst` failures per client address (and per
 * user name) per window; further attempts are refused (429) until the
 * window passes, whether or not the password would be right.
 */
struct web_throttle {
	pthread_mutex_t lock;	/* guards the table */
	struct web_throttle_entry *e;
	size_t n, cap;
	unsigned int burst;	/* default 5 */
	int64_t window_s;	/* default 300 */
};

int web_throttle_init(struct web_throttle *t, size_t cap, unsigned int burst, int64_t window_s);
void web_throttle_free(struct web_throttle *t);
bool web_throttle_allowed(struct web_throttle *t, const char *key, int64_t now);
void web_throttle_failed(struct web_throttle *t, const char *key, int64_t now);
void web_throttle_reset(struct web_throttle *t, const char *key);

#endif
