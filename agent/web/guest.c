// SPDX-License-Identifier: GPL-2.0
#include "guest.h"

#include <errno.h>
#include <string.h>
#include <sodium.h>

int mw_guests_init(struct mw_guests *g, int64_t valid_s)
{
	memset(g, 0, sizeof(*g));
	g->valid_s = valid_s;
	if (sodium_init() < 0)
		return -EIO;
	return pthread_mutex_init(&g->lock, NULL) ? -ENOMEM : 0;
}

void mw_guests_destroy(struct mw_guests *g)
{
	sodium_memzero(g->c, sizeof(g->c));
	pthread_mutex_destroy(&g->lock);
}

static void drop(struct mw_guests *g, unsigned i)
{
	sodium_memzero(&g->c[i], sizeof(g->c[i]));
	g->c[i] = g->c[--g->n];
}

static void expire(struct mw_guests *g, int64_t now)
{
	for (unsigned i = 0; i < g->n;)
		if (now >= g->c[i].expires)
			drop(g, i);
		else
			i++;
}

int mw_guest_create(struct mw_guests *g, int64_t now, char out[MW_GUEST_DIGITS + 1], int64_t *expires)
{
	struct mw_guest_code c;

	/* uniform over 00000000..99999999 */
	for (int i = 0; i < MW_GUEST_DIGITS; i++)
		c.code[i] = (char)('0' + randombytes_uniform(10));
	c.code[MW_GUEST_DIGITS] = 0;
	c.created = now;
	c.expires = now + g->valid_s;
	pthread_mutex_lock(&g->lock);
	expire(g, now);
	if (g->n == MW_GUEST_MAX) {
		unsigned oldest = 0;

		for (unsigned i = 1; i < g->n; i++)
			if (g->c[i].created < g->c[oldest].created)
				oldest = i;
		drop(g, oldest);
	}
	g->c[g->n++] = c;
	pthread_mutex_unlock(&g->lock);
	memcpy(out, c.code, sizeof(c.code));
	*expires = c.expires;
	sodium_memzero(&c, sizeof(c));
	return 0;
}

int mw_guest_redeem(struct mw_guests *g, const char *typed, int64_t now)
{
	char code[MW_GUEST_DIGITS];
	unsigned n = 0;
	int r = -ENOENT;

	for (const char *p = typed; p && *p; p++) {
		if (*p == ' ' || *p == '-' || *p == '\t')
			continue;
		if (*p < '0' || *p > '9' || n == MW_GUEST_DIGITS)
			return -EINVAL;
		code[n++] = *p;
	}
	if (n != MW_GUEST_DIGITS)
		return -EINVAL;
	pthread_mutex_lock(&g->lock);
	for (unsigned i = 0; i < g->n; i++) {
		if (sodium_memcmp(g->c[i].code, code, MW_GUEST_DIGITS))
			continue;
		r = now >= g->c[i].expires ? -ETIME : 0;
		drop(g, i);	/* used or expired: gone either way */
		break;
	}
	expire(g, now);
	pthread_mutex_unlock(&g->lock);
	sodium_memzero(code, sizeof(code));
	return r;
}

unsigned mw_guest_waiting(struct mw_guests *g, int64_t now)
{
	unsigned n;

	pthread_mutex_lock(&g->lock);
	expire(g, now);
	n = g->n;
	pthread_mutex_unlock(&g->lock);
	return n;
}
