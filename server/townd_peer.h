/* SPDX-License-Identifier: GPL-2.0 */
/*
 * townd's view of a TCP peer: its address in a compact form, as text for
 * the journal, and the count of connections per address that enforces
 * max_per_address (Documentation/townd.md, "Hostile clients").
 *
 * Peers are grouped by IPv4 address (IPv4-mapped IPv6 included) or by
 * IPv6 /64 prefix: a /64 is what one subscriber gets, so a host that
 * picks new addresses inside its prefix still counts as one. The count
 * table is an open-addressing hash keyed with SipHash under a random key
 * chosen at start, so that a peer cannot pick addresses that collide.
 */
#ifndef TOWND_PEER_H
#define TOWND_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <sodium.h>

/* "[" INET6_ADDRSTRLEN "]:65535" */
#define TOWND_PEER_STR	56

struct townd_peer {
	uint8_t family;		/* 0 (none: e.g. AF_UNIX), 4 or 6 */
	uint16_t port;
	uint8_t addr[16];	/* IPv4: the first 4 bytes */
};

/* Fill p from an accepted peer's address (any family; unknown -> none). */
void townd_peer_from(struct townd_peer *p, const struct sockaddr *sa, socklen_t len);
/* "192.0.2.1:4000", "[2001:db8::1]:4000" or "local"; returns out. */
const char *townd_peer_str(const struct townd_peer *p, char out[TOWND_PEER_STR]);

struct townd_addr_slot {
	uint8_t key[9];		/* family, then 4 (IPv4) or 8 (IPv6 /64) bytes */
	uint32_t hash;
	uint32_t n;		/* connections; 0: free slot */
};

struct townd_addrtab {
	struct townd_addr_slot *slot;
	uint32_t cap;		/* power of two, or 0 before the first insert */
	uint32_t used;		/* slots with n > 0 */
	uint8_t hkey[crypto_shorthash_KEYBYTES];
};

/* Random hash key (libsodium must be initialised). */
void townd_addrtab_init(struct townd_addrtab *t);
void townd_addrtab_free(struct townd_addrtab *t);
/*
 * One more connection from p's address group: 1 counted, 0 refused
 * because the group already has max, -1 out of memory. Peers without an
 * address (family 0) are not limited and not counted: always 1.
 */
int townd_addrtab_add(struct townd_addrtab *t, const struct townd_peer *p, uint32_t max);
/* One connection fewer (after a successful add). */
void townd_addrtab_del(struct townd_addrtab *t, const struct townd_peer *p);
/* Connections counted for p's group. */
uint32_t townd_addrtab_count(const struct townd_addrtab *t, const struct townd_peer *p);

#endif
