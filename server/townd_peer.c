// SPDX-License-Identifier: GPL-2.0
/* townd peers: compact addresses, text, per-address connection counts. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "townd_peer.h"

void townd_peer_from(struct townd_peer *p, const struct sockaddr *sa, socklen_t len)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(p, 0, sizeof(*p));
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

		p->family = 4;
		p->port = ntohs(a->sin_port);
		memcpy(p->addr, &a->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

		p->port = ntohs(a->sin6_port);
		if (!memcmp(a->sin6_addr.s6_addr, v4mapped, sizeof(v4mapped))) {
			p->family = 4;
			memcpy(p->addr, a->sin6_addr.s6_addr + 12, 4);
		} else {
			p->family = 6;
			memcpy(p->addr, a->sin6_addr.s6_addr, 16);
		}
	}
}

const char *townd_peer_str(const struct townd_peer *p, char out[TOWND_PEER_STR])
{
	char a[INET6_ADDRSTRLEN];

	if (p->family == 4 && inet_ntop(AF_INET, p->addr, a, sizeof(a)))
		snprintf(out, TOWND_PEER_STR, "%s:%u", a, p->port);
	else if (p->family == 6 && inet_ntop(AF_INET6, p->addr, a, sizeof(a)))
		snprintf(out, TOWND_PEER_STR, "[%s]:%u", a, p->port);
	else
		snprintf(out, TOWND_PEER_STR, "local");
	return out;
}

/* The group of p: 0 for none, else the key length. */
static size_t group_key(const struct townd_peer *p, uint8_t key[9])
{
	memset(key, 0, 9);
	key[0] = p->family;
	if (p->family == 4)
		memcpy(key + 1, p->addr, 4);
	else if (p->family == 6)
		memcpy(key + 1, p->addr, 8);	/* the /64 */
	else
		return 0;
	return 9;
}

static uint32_t hash_of(const struct townd_addrtab *t, const uint8_t key[9])
{
	uint8_t h[crypto_shorthash_BYTES];
	uint32_t v;

	crypto_shorthash(h, key, 9, t->hkey);
	memcpy(&v, h, sizeof(v));
	return v;
}

void townd_addrtab_init(struct townd_addrtab *t)
{
	memset(t, 0, sizeof(*t));
	crypto_shorthash_keygen(t->hkey);
}

void townd_addrtab_free(struct townd_addrtab *t)
{
	free(t->slot);
	t->slot = NULL;
	t->cap = t->used = 0;
}

/* Index of key's slot, or of the free slot where it would go. */
static uint32_t find(const struct townd_addrtab *t, const uint8_t key[9], uint32_t h)
{
	uint32_t mask = t->cap - 1, i = h & mask;

	while (t->slot[i].n && (t->slot[i].hash != h || memcmp(t->slot[i].key, key, 9)))
		i = (i + 1) & mask;
	return i;
}

static int grow(struct townd_addrtab *t)
{
	uint32_t cap = t->cap ? t->cap * 2 : 64;
	struct townd_addr_slot *old = t->slot, *s;
	uint32_t ocap = t->cap;

	if (!cap)
		return -1;
	s = calloc(cap, sizeof(*s));
	if (!s)
		return -1;
	t->slot = s;
	t->cap = cap;
	for (uint32_t i = 0; i < ocap; i++)
		if (old[i].n)
			s[find(t, old[i].key, old[i].hash)] = old[i];
	free(old);
	return 0;
}

int townd_addrtab_add(struct townd_addrtab *t, const struct townd_peer *p, uint32_t max)
{
	uint8_t key[9];
	uint32_t h, i;

	if (!group_key(p, key))
		return 1;
	/* at most half full, so that probe sequences stay short */
	if ((t->used + 1) * 2 > t->cap && grow(t))
		return -1;
	h = hash_of(t, key);
	i = find(t, key, h);
	if (t->slot[i].n >= max)
		return 0;
	if (!t->slot[i].n) {
		memcpy(t->slot[i].key, key, 9);
		t->slot[i].hash = h;
		t->used++;
	}
	t->slot[i].n++;
	return 1;
}

uint32_t townd_addrtab_count(const struct townd_addrtab *t, const struct townd_peer *p)
{
	uint8_t key[9];

	if (!group_key(p, key) || !t->cap)
		return 0;
	return t->slot[find(t, key, hash_of(t, key))].n;
}

void townd_addrtab_del(struct townd_addrtab *t, const struct townd_peer *p)
{
	uint8_t key[9];
	uint32_t mask, i, j;

	if (!group_key(p, key) || !t->cap)
		return;
	mask = t->cap - 1;
	i = find(t, key, hash_of(t, key));
	if (!t->slot[i].n || --t->slot[i].n)
		return;
	/*
	 * The group's last connection: free the slot by shifting back the
	 * entries of the probe run after it that may move (linear probing
	 * without tombstones, so that the table never fills with them).
	 */
	t->used--;
	for (j = i;;) {
		uint32_t home;

		j = (j + 1) & mask;
		if (!t->slot[j].n)
			break;
		home = t->slot[j].hash & mask;
		/* stays if its home lies cyclically in (i, j] */
		if (i < j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		t->slot[i] = t->slot[j];
		i = j;
	}
	t->slot[i].n = 0;
}
