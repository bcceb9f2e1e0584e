// SPDX-License-Identifier: GPL-2.0
/* Passwords, tokens, sessions, CSRF and login throttling (auth.h). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

_Static_assert(crypto_pwhash_STRBYTES == 128, "web_passwd_hash writes 128 bytes");

struct web_session_slot {
	bool used;
	uint64_t seq;	/* creation order (web_sessions.seq), breaks last_seen's ties */
	uint8_t hash[crypto_hash_sha256_BYTES];	/* SHA-256 of the cookie token */
	struct web_session s;
};

struct web_throttle_entry {
	uint8_t key[crypto_hash_sha256_BYTES];	/* SHA-256 of the key: any length, fixed size */
	unsigned int fails;
	int64_t first;	/* time of the first failure of this window */
};

/* libsodium is initialised at most once; sodium_init() itself is thread-safe. */
static bool sodium_ready(void)
{
	return sodium_init() >= 0;
}

int web_passwd_hash(const char *password, char out[128])
{
	if (!sodium_ready() || !password)
		return -1;
	return crypto_pwhash_str(out, password, strlen(password),
				 crypto_pwhash_OPSLIMIT_INTERACTIVE,
				 crypto_pwhash_MEMLIMIT_INTERACTIVE) ? -1 : 0;
}

bool web_passwd_verify(const char *hash, const char *password)
{
	if (!sodium_ready() || !hash || !password || strncmp(hash, "$argon2id$", 10))
		return false;
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

void web_token_new(char out[WEB_TOKEN_LEN + 1])
{
	uint8_t raw[32];

	if (!sodium_ready())
		abort();	/* no randomness: nothing safe to hand out */
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(out, WEB_TOKEN_LEN + 1, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
}

static bool token_hash(const char *token, uint8_t h[crypto_hash_sha256_BYTES])
{
	if (!token || strlen(token) != WEB_TOKEN_LEN)
		return false;
	crypto_hash_sha256(h, (const unsigned char *)token, WEB_TOKEN_LEN);
	return true;
}

int web_sessions_init(struct web_sessions *t, size_t cap, int64_t lifetime_s, int64_t idle_s)
{
	memset(t, 0, sizeof(*t));
	if (!sodium_ready() || !cap)
		return -1;
	t->slot = calloc(cap, sizeof(*t->slot));
	if (!t->slot)
		return -1;
	t->cap = cap;
	t->lifetime_s = lifetime_s > 0 ? lifetime_s : 8 * 3600;
	t->idle_s = idle_s > 0 ? idle_s : 30 * 60;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void web_sessions_free(struct web_sessions *t)
{
	if (!t->slot)
		return;
	sodium_memzero(t->slot, t->cap * sizeof(*t->slot));
	free(t->slot);
	t->slot = NULL;
	t->n = t->cap = 0;
	pthread_mutex_destroy(&t->lock);
}

static void slot_clear(struct web_sessions *t, struct web_session_slot *sl)
{
	if (!sl->used)
		return;
	sodium_memzero(sl, sizeof(*sl));
	t->n--;
}

static bool slot_dead(const struct web_sessions *t, const struct web_session_slot *sl,
		      int64_t now)
{
	return now >= sl->s.expires || now - sl->s.last_seen > t->idle_s;
}

/* Caller holds t->lock. */
static struct web_session_slot *slot_find(struct web_sessions *t, const uint8_t *h)
{
	for (size_t i = 0; i < t->cap; i++)
		if (t->slot[i].used && !memcmp(t->slot[i].hash, h, sizeof(t->slot[i].hash)))
			return &t->slot[i];
	return NULL;
}

int web_session_create(struct web_sessions *t, struct web_session *s, int64_t now,
		       char token[WEB_TOKEN_LEN + 1])
{
	struct web_session_slot *free_slot = NULL;
	int rc = -1;

	web_token_new(s->csrf);
	s->created = now;
	s->last_seen = now;
	s->expires = now + t->lifetime_s;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->cap; i++) {
		struct web_session_slot *sl = &t->slot[i];

		if (sl->used && slot_dead(t, sl, now))
			slot_clear(t, sl);
		if (!sl->used && !free_slot)
			free_slot = sl;
	}
	if (free_slot) {
		do {
			web_token_new(token);
			token_hash(token, free_slot->hash);
		} while (slot_find(t, free_slot->hash));	/* 2^-256: for form's sake */
		free_slot->s = *s;
		free_slot->seq = ++t->seq;
		free_slot->used = true;
		t->n++;
		rc = 0;
	}
	pthread_mutex_unlock(&t->lock);
	if (rc)
		token[0] = '\0';
	return rc;
}

int web_session_get(struct web_sessions *t, const char *token, int64_t now,
		    struct web_session *out)
{
	uint8_t h[crypto_hash_sha256_BYTES];
	struct web_session_slot *sl;
	int rc = -1;

	if (!token_hash(token, h))
		return -1;
	pthread_mutex_lock(&t->lock);
	sl = slot_find(t, h);
	if (sl && slot_dead(t, sl, now)) {
		slot_clear(t, sl);
	} else if (sl) {
		if (now > sl->s.last_seen)
			sl->s.last_seen = now;
		*out = sl->s;
		rc = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int web_session_update(struct web_sessions *t, const char *token, const struct web_session *s)
{
	uint8_t h[crypto_hash_sha256_BYTES];
	struct web_session_slot *sl;

	if (!token_hash(token, h))
		return -1;
	pthread_mutex_lock(&t->lock);
	sl = slot_find(t, h);
	if (sl) {
		/* Who the session is; its CSRF token and times stay the table's. */
		memcpy(sl->s.user, s->user, sizeof(sl->s.user));
		sl->s.user[sizeof(sl->s.user) - 1] = '\0';
		sl->s.role = s->role;
		sl->s.subject = s->subject;
		sl->s.pending_second_factor = s->pending_second_factor;
	}
	pthread_mutex_unlock(&t->lock);
	return sl ? 0 : -1;
}

void web_session_end(struct web_sessions *t, const char *token)
{
	uint8_t h[crypto_hash_sha256_BYTES];
	struct web_session_slot *sl;

	if (!token_hash(token, h))
		return;
	pthread_mutex_lock(&t->lock);
	sl = slot_find(t, h);
	if (sl)
		slot_clear(t, sl);
	pthread_mutex_unlock(&t->lock);
}

void web_sessions_end_user(struct web_sessions *t, const char *user)
{
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->cap; i++)
		if (t->slot[i].used && !strcmp(t->slot[i].s.user, user))
			slot_clear(t, &t->slot[i]);
	pthread_mutex_unlock(&t->lock);
}

void web_sessions_trim_user(struct web_sessions *t, const char *user, size_t keep)
{
	pthread_mutex_lock(&t->lock);
	for (;;) {
		struct web_session_slot *lru = NULL;
		size_t n = 0;

		for (size_t i = 0; i < t->cap; i++) {
			struct web_session_slot *sl = &t->slot[i];

			if (!sl->used || strcmp(sl->s.user, user))
				continue;
			n++;
			if (!lru || sl->s.last_seen < lru->s.last_seen ||
			    (sl->s.last_seen == lru->s.last_seen && sl->seq < lru->seq))
				lru = sl;
		}
		if (n <= keep)
			break;
		slot_clear(t, lru);
	}
	pthread_mutex_unlock(&t->lock);
}

bool web_csrf_ok(const struct web_session *s, const char *form_value)
{
	if (!s || !form_value || strlen(s->csrf) != WEB_TOKEN_LEN ||
	    strlen(form_value) != WEB_TOKEN_LEN)
		return false;
	return sodium_memcmp(s->csrf, form_value, WEB_TOKEN_LEN) == 0;
}

/* ---- login throttling --------------------------------------------------- */

int web_throttle_init(struct web_throttle *t, size_t cap, unsigned int burst, int64_t window_s)
{
	memset(t, 0, sizeof(*t));
	if (!sodium_ready() || !cap)
		return -1;
	t->e = calloc(cap, sizeof(*t->e));
	if (!t->e)
		return -1;
	t->cap = cap;
	t->burst = burst ? burst : 5;
	t->window_s = window_s > 0 ? window_s : 300;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void web_throttle_free(struct web_throttle *t)
{
	if (!t->e)
		return;
	free(t->e);
	t->e = NULL;
	t->n = t->cap = 0;
	pthread_mutex_destroy(&t->lock);
}

/* Caller holds t->lock: the live entry of key (stale ones dropped), or NULL. */
static struct web_throttle_entry *throttle_find(struct web_throttle *t, const uint8_t *h,
					       int64_t now)
{
	for (size_t i = 0; i < t->n; i++) {
		struct web_throttle_entry *e = &t->e[i];

		if (memcmp(e->key, h, sizeof(e->key)))
			continue;
		if (now - e->first >= t->window_s) {
			t->e[i] = t->e[--t->n];
			return NULL;
		}
		return e;
	}
	return NULL;
}

bool web_throttle_allowed(struct web_throttle *t, const char *key, int64_t now)
{
	uint8_t h[crypto_hash_sha256_BYTES];
	struct web_throttle_entry *e;
	bool ok;

	crypto_hash_sha256(h, (const unsigned char *)key, strlen(key));
	pthread_mutex_lock(&t->lock);
	e = throttle_find(t, h, now);
	ok = !e || e->fails < t->burst;
	pthread_mutex_unlock(&t->lock);
	return ok;
}

void web_throttle_failed(struct web_throttle *t, const char *key, int64_t now)
{
	uint8_t h[crypto_hash_sha256_BYTES];
	struct web_throttle_entry *e;

	crypto_hash_sha256(h, (const unsigned char *)key, strlen(key));
	pthread_mutex_lock(&t->lock);
	e = throttle_find(t, h, now);
	if (!e) {
		if (t->n == t->cap) {
			/* Full: drop stale entries, then the one with the fewest failures
			 * (the oldest among those), so a spray of new keys cannot free
			 * a key that is being guessed at. */
			size_t victim = 0;

			for (size_t i = t->n; i-- > 0;)
				if (now - t->e[i].first >= t->window_s)
					t->e[i] = t->e[--t->n];
			if (t->n == t->cap) {
				for (size_t i = 1; i < t->n; i++)
					if (t->e[i].fails < t->e[victim].fails ||
					    (t->e[i].fails == t->e[victim].fails &&
					     t->e[i].first < t->e[victim].first))
						victim = i;
				t->e[victim] = t->e[--t->n];
			}
		}
		e = &t->e[t->n++];
		memcpy(e->key, h, sizeof(e->key));
		e->fails = 0;
		e->first = now;
	}
	if (e->fails < UINT32_MAX)
		e->fails++;
	pthread_mutex_unlock(&t->lock);
}

void web_throttle_reset(struct web_throttle *t, const char *key)
{
	uint8_t h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)key, strlen(key));
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++)
		if (!memcmp(t->e[i].key, h, sizeof(h))) {
			t->e[i] = t->e[--t->n];
			break;
		}
	pthread_mutex_unlock(&t->lock);
}
