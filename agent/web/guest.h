/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest codes (seed 002): the household makes an 8-digit code that lets
 * one person in, once, read-only, within valid_s of its making. A code is
 * gone once used or expired; at most MW_GUEST_MAX wait at a time (the
 * oldest is dropped for a new one). Codes are compared in constant time.
 * Time is passed in (tests simulate it).
 */
#ifndef GM_MW_GUEST_H
#define GM_MW_GUEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define MW_GUEST_MAX		16
#define MW_GUEST_DIGITS		8

struct mw_guest_code {
	char code[MW_GUEST_DIGITS + 1];
	int64_t created, expires;	/* UTC s */
};

struct mw_guests {
	pthread_mutex_t lock;	/* guards n and c */
	int64_t valid_s;
	unsigned n;
	struct mw_guest_code c[MW_GUEST_MAX];
};

int mw_guests_init(struct mw_guests *g, int64_t valid_s);
void mw_guests_destroy(struct mw_guests *g);
/* A new random code into out (and its expiry into *expires). 0 or -errno. */
int mw_guest_create(struct mw_guests *g, int64_t now, char out[MW_GUEST_DIGITS + 1], int64_t *expires);
/*
 * Use a code typed at now (blanks and dashes ignored): 0 when it was
 * waiting and valid (it is gone from now on), -ENOENT when unknown or used,
 * -ETIME when it expired (and is gone), -EINVAL when not 8 digits.
 */
int mw_guest_redeem(struct mw_guests *g, const char *typed, int64_t now);
/* Codes still waiting at now (expired ones are dropped). */
unsigned mw_guest_waiting(struct mw_guests *g, int64_t now);

#endif
