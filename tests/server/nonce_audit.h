/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An audit of captured gmproto v2 traffic, from the wire alone: given
 * every frame that crossed (both directions, any order of captures) and
 * the long-term keys, find the key each envelope was sealed with and its
 * nonce, and count (key, nonce) pairs used more than once.
 *
 * Handshake envelopes open under a meter's long-term direction keys (the
 * town's secret with each of the meter's public keys); every WELCOME that
 * opens gives (Rm, Rt, sid), hence that session's keys (gmp_session_derive);
 * session envelopes are then opened by trial with the sessions of their
 * (meter, sid). The nonce is read from the envelope (the counter, or the
 * 24 random bytes). A frame no key opens is counted as unattributed: it
 * was not sealed by a meter or the town (forgery, garbage). The same
 * envelope seen twice is a copy (a replay, a frame in two captures), not
 * a repeat: a repeat is two different envelopes under one (key, nonce).
 *
 * Used by the host tests (tests/server/townd_test_restore.c,
 * tests/unit/proto_test_uplink.c) and by uplink_wire audit.
 */
#ifndef NONCE_AUDIT_H
#define NONCE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gm_frame.h"
#include "gmproto.h"

struct na_frame;
struct na_lt;
struct na_session;

struct nonce_audit {
	/* optional: each envelope that opens, with its frame index (insertion order) */
	void (*on_plain)(void *ctx, size_t frame, const struct gm_hdr *h, const uint8_t *plain,
			 size_t len);
	void *ctx;
	bool *opened;			/* after nonce_audit_run(): per frame */
	struct na_frame *f;
	size_t n_f, cap_f;
	struct na_lt *lt;		/* per meter: long-term keys (town view) */
	size_t n_lt, cap_lt;
	struct na_session *ses;
	size_t n_ses, cap_ses;
	/* results of nonce_audit_run() */
	uint64_t frames;		/* gmproto frames (data/ack, to or from the town) */
	uint64_t handshakes, sessions;	/* envelopes attributed to a key, by kind */
	uint64_t welcomes;		/* sessions learned */
	uint64_t unattributed;		/* no key opens it */
	uint64_t repeats;		/* different envelopes under a (key, nonce) already used */
	uint64_t copies;		/* the same envelope again (a replay, or captured twice) */
};

void nonce_audit_init(struct nonce_audit *a);
void nonce_audit_free(struct nonce_audit *a);
/* The town's key pair and a meter's public key: the pair's long-term keys. 0 or -1. */
int nonce_audit_key(struct nonce_audit *a, const struct gmp_keypair *town, uint16_t meter,
		    const uint8_t meter_pk[GMP_KEY_LEN]);
/* One captured frame (header and payload as received). 0 or -1 (memory). */
int nonce_audit_frame(struct nonce_audit *a, const struct gm_hdr *h, const uint8_t *payload,
		      size_t len);
/* Every frame of a byte stream of link frames. Returns frames added or -1. */
int nonce_audit_stream(struct nonce_audit *a, const uint8_t *buf, size_t len);
/* Attribute every frame, count repeats. 0 or -1 (memory). */
int nonce_audit_run(struct nonce_audit *a);

#endif
