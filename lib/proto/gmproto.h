/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gmproto: the meter <-> town server message protocol (version 1), carried
 * in the payload of link frames (Documentation/protocol.md).
 *
 *  - messages: CBOR arrays of integers (libcbor), several per frame as a
 *    CBOR sequence;
 *  - session: per-meter keys from crypto_kx (meter = client, town server =
 *    server), XChaCha20-Poly1305 IETF per frame with a 64-bit counter in
 *    the nonce, the frame header (less hop limit and sequence) as
 *    associated data, strictly increasing counters on receive.
 *
 * No global state; nothing allocates. Call sodium_init() once first.
 */
#ifndef GMPROTO_H
#define GMPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMP_VERSION		1

#define GMP_KEY_LEN		32	/* public, secret and session keys */
#define GMP_TAG_LEN		16	/* Poly1305 tag */
#define GMP_CTR_MAX_LEN		10	/* LEB128 of a 64-bit counter */
/* Envelope: version byte + LEB128 counter + ciphertext + tag. */
#define GMP_ENV_MIN		(1 + 1 + GMP_TAG_LEN)
#define GMP_ENV_OVERHEAD_MAX	(1 + GMP_CTR_MAX_LEN + GMP_TAG_LEN)
/* Largest plaintext that always fits a link frame (496-byte payload). */
#define GMP_PLAIN_MAX		(496 - GMP_ENV_OVERHEAD_MAX)

/* Message types. 1..15 meter -> town server, 16..31 town server -> meter. */
enum gmp_type {
	GMP_READING	= 1,	/* interval reading (load-profile entry) */
	GMP_REGISTERS	= 2,	/* register snapshot (cumulative totals) */
	GMP_ALARM	= 3,	/* alarm raised or cleared; sent at once */
	GMP_ALLOC_REQ	= 4,	/* allocation request; sent at once */
	GMP_ALLOC_REL	= 5,	/* allocation release */
	GMP_MACK	= 6,	/* meter acknowledges town messages up to seq */
	GMP_SYNC	= 7,	/* meter: nothing below base will come again */
	GMP_ACK		= 16,	/* town: stored everything of the meter up to seq */
	GMP_GRANT	= 17,	/* allocation grant */
	GMP_TARIFF	= 18,	/* tariff update */
	GMP_TIME	= 19,	/* time of the town server */
};

#define GMP_TARIFF_MAX		12

/*
 * One decoded message. Every numeric field is int64_t; unsigned fields of
 * the wire format are rejected when above INT64_MAX or negative.
 */
struct gmp_msg {
	int type;		/* enum gmp_type */
	union {
		struct {	/* GMP_READING */
			int64_t seq;		/* meter record sequence, >= 1 */
			int64_t start;		/* UTC seconds, interval start */
			int64_t interval_s;	/* 1..86400 */
			int64_t import_mwh, export_mwh, renew_mwh;
			int64_t flags;		/* PROFILE_GAP = 1 */
		} reading;
		struct {	/* GMP_REGISTERS */
			int64_t seq, time;
			int64_t import_mwh, export_mwh, renew_mwh;
		} regs;
		struct {	/* GMP_ALARM */
			int64_t seq, time;
			int64_t code;		/* enum meter_alarm */
			int64_t active;		/* 0 cleared, 1 raised */
			int64_t value;		/* signed detail (e.g. mA) */
		} alarm;
		struct {	/* GMP_ALLOC_REQ */
			int64_t seq, time;
			int64_t req_id;
			int64_t power_w;	/* > 0 needed, < 0 offered */
			int64_t duration_s;
		} alloc_req;
		struct {	/* GMP_ALLOC_REL */
			int64_t seq, time, req_id;
		} alloc_rel;
		struct {	/* GMP_MACK, GMP_ACK */
			int64_t upto;		/* cumulative */
		} ack;
		struct {	/* GMP_SYNC */
			int64_t base;		/* oldest record still held */
		} sync;
		struct {	/* GMP_GRANT */
			int64_t tseq, req_id;
			int64_t granted_w;
			int64_t until;		/* UTC seconds */
		} grant;
		struct {	/* GMP_TARIFF */
			int64_t tseq, effective;	/* UTC seconds */
			int64_t n;			/* 1..GMP_TARIFF_MAX */
			struct {
				int64_t start_min;	/* minute of the day, 0..1439 */
				int64_t import_price;	/* milli-minor per kWh */
				int64_t export_price;
			} p[GMP_TARIFF_MAX];
		} tariff;
		struct {	/* GMP_TIME */
			int64_t unix_ms;
		} time;
	};
};

/* Errors (negative returns). */
enum gmp_err {
	GMP_E_SPACE	= 1,	/* output buffer too small */
	GMP_E_MALFORMED	= 2,	/* not CBOR of the schema */
	GMP_E_TYPE	= 3,	/* unknown message type */
	GMP_E_RANGE	= 4,	/* field out of range */
	GMP_E_VERSION	= 5,	/* envelope version */
	GMP_E_SHORT	= 6,	/* envelope truncated */
	GMP_E_REPLAY	= 7,	/* counter not above the last accepted one */
	GMP_E_AUTH	= 8,	/* authentication failed */
	GMP_E_KEY	= 9,	/* key derivation failed (bad public key) */
};

const char *gmp_strerror(int err);
const char *gmp_type_name(int type);
/* Highest sequence carried by a stored message type, or 0. */
int64_t gmp_msg_seq(const struct gmp_msg *m);

/*
 * Append one message to buf[*off..size). Returns 0 or -GMP_E_SPACE /
 * -GMP_E_TYPE / -GMP_E_RANGE; *off is unchanged on error.
 */
int gmp_encode(const struct gmp_msg *m, uint8_t *buf, size_t size, size_t *off);

/*
 * Decode the next message of a CBOR sequence at buf[*off..len). Returns 1
 * and advances *off, 0 at the end of the input, or a negative error (the
 * rest of the input is then unusable). Never reads outside buf[0..len).
 */
int gmp_decode_next(const uint8_t *buf, size_t len, size_t *off, struct gmp_msg *m);

/* ---- session ------------------------------------------------------------ */

struct gmp_keypair {
	uint8_t pk[GMP_KEY_LEN];
	uint8_t sk[GMP_KEY_LEN];
};

/* The authenticated part of a link frame header. */
struct gmp_addr {
	uint8_t type;		/* GM_TYPE_* */
	uint8_t flags;		/* GM_FLAG_* */
	uint16_t src, dst;
};

/*
 * One direction pair between a meter and the town server. tx_ctr is the
 * last counter used (the next frame uses tx_ctr + 1); rx_ctr the last
 * accepted one. Both must be persisted by the owner: a counter may never
 * be used twice with the same key.
 */
struct gmp_session {
	uint8_t rx_key[GMP_KEY_LEN];
	uint8_t tx_key[GMP_KEY_LEN];
	uint64_t tx_ctr;
	uint64_t rx_ctr;
};

void gmp_keypair_generate(struct gmp_keypair *kp);
/* The key pair of a provisioned secret key (its public key recomputed). 0 or -GMP_E_KEY. */
int gmp_keypair_from_secret(struct gmp_keypair *kp, const uint8_t sk[GMP_KEY_LEN]);
/* Meter side: its own key pair and the town server's public key. */
int gmp_session_meter(struct gmp_session *s, const struct gmp_keypair *meter,
		      const uint8_t town_pk[GMP_KEY_LEN]);
/* Town server side: its key pair and the meter's public key. */
int gmp_session_town(struct gmp_session *s, const struct gmp_keypair *town,
		     const uint8_t meter_pk[GMP_KEY_LEN]);
void gmp_session_wipe(struct gmp_session *s);

/*
 * Seal plain[0..len) into out (size >= len + GMP_ENV_OVERHEAD_MAX) with
 * counter ++s->tx_ctr. Returns the envelope length or a negative error.
 */
int gmp_seal(struct gmp_session *s, const struct gmp_addr *a,
	     const uint8_t *plain, size_t len, uint8_t *out, size_t out_size);

/*
 * Open an envelope. On success returns the plaintext length (plain must
 * hold env_len bytes), stores the counter in *ctr and sets s->rx_ctr.
 * Rejects (without touching s) bad versions, truncation, counters not
 * above s->rx_ctr, and anything failing authentication.
 */
int gmp_open(struct gmp_session *s, const struct gmp_addr *a,
	     const uint8_t *env, size_t env_len, uint8_t *plain, size_t plain_size,
	     uint64_t *ctr);

/* Hex helpers for configuration and provisioning files. */
int gmp_hex_decode(const char *hex, uint8_t *out, size_t n);
void gmp_hex_encode(const uint8_t *in, size_t n, char *out /* 2n+1 */);

#endif
