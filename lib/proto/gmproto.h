/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gmproto: the meter <-> town server message protocol (version 2), carried
 * in the payload of link frames (Documentation/protocol.md).
 *
 *  - messages: CBOR arrays of integers and fixed-length byte strings
 *    (libcbor), several per frame as a CBOR sequence, consumption fields
 *    with fixed-width arguments, the plaintext padded with zero bytes to a
 *    multiple of GMP_PAD_QUANTUM so that no reading changes a frame's size;
 *  - long-term keys from crypto_kx (meter = client, town server = server),
 *    one per direction, used only to seal the handshake (HELLO, WELCOME,
 *    REHELLO) with random 192-bit XChaCha20 nonces;
 *  - session keys derived from fresh randomness of both ends for every
 *    handshake; session frames carry a session id and a counter that lives
 *    in memory only. Nothing a sender persists takes part in a nonce, so no
 *    lost, wiped or restored state can make a (key, nonce) pair repeat.
 *
 * No global state; nothing allocates. Call sodium_init() once first.
 */
#ifndef GMPROTO_H
#define GMPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMP_VERSION		2
#define GMP_ENV_HANDSHAKE	0x21	/* first envelope byte: version 2, kind 1 */
#define GMP_ENV_SESSION		0x22	/* version 2, kind 2 */

#define GMP_KEY_LEN		32	/* public, secret and session keys */
#define GMP_RAND_LEN		32	/* handshake randoms Rm, Rt */
#define GMP_TAG_LEN		16	/* Poly1305 tag */
#define GMP_NONCE_LEN		24	/* XChaCha20 nonce */
#define GMP_CTR_MAX_LEN		10	/* LEB128 of a 64-bit counter */
#define GMP_PAD_QUANTUM		16	/* plaintexts are padded to a multiple of this */
#define GMP_PAYLOAD_MAX		496	/* link frame payload (GM_MAX_PAYLOAD) */
/* Handshake envelope: kind byte, random nonce, ciphertext, tag. */
#define GMP_HS_OVERHEAD		(1 + GMP_NONCE_LEN + GMP_TAG_LEN)
/* Session envelope: kind byte, session id, LEB128 counter, ciphertext, tag. */
#define GMP_ENV_MIN		(1 + 1 + 1 + GMP_TAG_LEN)
#define GMP_ENV_OVERHEAD_MAX	(1 + 1 + GMP_CTR_MAX_LEN + GMP_TAG_LEN)
/* Largest plaintexts (padded) that always fit a link frame. */
#define GMP_PLAIN_MAX \
	((GMP_PAYLOAD_MAX - GMP_ENV_OVERHEAD_MAX) / GMP_PAD_QUANTUM * GMP_PAD_QUANTUM)
#define GMP_HS_PLAIN_MAX \
	((GMP_PAYLOAD_MAX - GMP_HS_OVERHEAD) / GMP_PAD_QUANTUM * GMP_PAD_QUANTUM)

/*
 * Message types. Records (1..5, 8..15, 40..42) carry the sender's record
 * sequence and are stored exactly once; 6, 7 are meter -> town control;
 * 16..25 go down (the ack and commands) in session frames; 32..34 the
 * handshake, in handshake envelopes only; 40..42 are a town's reports to the
 * main server.
 */
enum gmp_type {
	GMP_READING	= 1,	/* interval reading (load-profile entry) */
	GMP_REGISTERS	= 2,	/* register snapshot (cumulative totals) */
	GMP_ALARM	= 3,	/* alarm raised or cleared; sent at once */
	GMP_ALLOC_REQ	= 4,	/* allocation request; sent at once */
	GMP_ALLOC_REL	= 5,	/* allocation release */
	GMP_CMD_RESULT	= 6,	/* a command's outcome (GMP_CMD_*) */
	GMP_LOST	= 7,	/* records first..last will never come */
	GMP_HOUR	= 8,	/* town -> main: one meter's hour in one tariff period */
	GMP_TOWN_HOUR	= 9,	/* town -> main: the town's totals of one hour */
	GMP_LOAN	= 10,	/* town -> main: a loan between towns, as it stands */
	GMP_KEY_ROTATE	= 11,	/* record: the meter's next public key */
	/* town <-> town borrowing (Documentation/town-network.md): records
	 * up the borrower's session to its neighbour, commands back down */
	GMP_LOAN_ASK	= 12,	/* record: please lend (or find) power_w */
	GMP_LOAN_ACCEPT	= 13,	/* record: take power_w (<= offered) of an offer; 0 declines */
	GMP_LOAN_HOLD	= 14,	/* record: the borrower still holds the loan (keepalive) */
	GMP_LOAN_RETURN	= 15,	/* record: the borrower gives the loan back (or cancels it) */
	GMP_ACK		= 16,	/* town: stored everything of the meter up to upto */
	GMP_GRANT	= 17,	/* command: allocation grant */
	GMP_TARIFF	= 18,	/* command: tariff update */
	GMP_TOWN_KEY	= 19,	/* command: the town server's next public key */
	GMP_SUPPLY	= 20,	/* main -> town command: the town's grid capacity */
	GMP_LOAN_OFFER	= 21,	/* command: a reserved offer (or none: power 0, last) */
	GMP_LOAN_CONFIRM = 22,	/* command: the loan is open (and keepalive) */
	GMP_LOAN_END	= 23,	/* command: the lender's side ended the loan */
	GMP_SIGNED	= 24,	/* command: an operator-signed command (lib/sign/gmcmd.h),
				 * main -> town and town -> meter, verified by its target */
	GMP_TOWN_SUMMARY = 25,	/* main -> town command: the town's monthly summary */
	GMP_HELLO	= 32,	/* meter: start a session */
	GMP_WELCOME	= 33,	/* town: the session, and the town's view of the meter */
	GMP_REHELLO	= 34,	/* town: I hold no session of yours */
	GMP_CMD_REPORT	= 40,	/* town -> main: where a signed command stands */
	GMP_METER_ALARM	= 41,	/* town -> main: a meter's alarm, raised or cleared */
	GMP_SECURITY	= 42,	/* town -> main: authentication failures and replays seen */
	GMP_TYPE_MAX	= 63,
};

/* Where a message type may appear. */
enum gmp_class {
	GMP_CLASS_NONE = 0,	/* unknown type */
	GMP_CLASS_UP,		/* meter -> town, session envelope */
	GMP_CLASS_DOWN,		/* town -> meter, session envelope */
	GMP_CLASS_HELLO,	/* meter -> town, handshake envelope */
	GMP_CLASS_TOWN_HS,	/* town -> meter, handshake envelope */
	GMP_CLASS_TIER_UP,	/* town -> main server, session envelope (records);
				 * a town refuses them from its meters */
};

/* Flags of record messages (reading, registers, alarm, alloc-*). */
#define GMP_RF_GAP			0x01	/* not fully measured */
#define GMP_RF_TIME_UNTRUSTED		0x02	/* meter clock not trusted when made */
#define GMP_RF_TIME_RECONSTRUCTED	0x04	/* times mapped from the monotonic clock */
#define GMP_RF_UNRECORDED		0x08	/* energy not recorded (power cut): lower bounds */
#define GMP_RF_CLOCK_STEP		0x10	/* the clock was stepped in this interval */
#define GMP_RF_SAMPLING_GAP		0x20	/* the driver reported missed samples */
#define GMP_RF_RESTORED			0x40	/* registers raised to the town's view */

/* Flags of GMP_HOUR and GMP_TOWN_HOUR (beside the GMP_RF_* of the readings,
 * OR-ed, in the low byte). */
#define GMP_HF_INCOMPLETE	0x0100	/* readings do not cover the whole hour */
#define GMP_HF_ADMIN		0x0200	/* the town was in administrative mode */
#define GMP_HF_ESTIMATED	0x0400	/* reserved for the main server's estimates */

/* Priority of an alloc-request (its flags, bits 8-9; Documentation/townd.md,
 * "Allocation"): the town serves higher classes first. */
#define GMP_AF_PRIO_SHIFT	8
#define GMP_AF_PRIO_MASK	(3 << GMP_AF_PRIO_SHIFT)
#define GMP_AF_PRIO_NORMAL	0	/* the default: what meterd sends today */
#define GMP_AF_PRIO_ESSENTIAL	1	/* heating, cooking, water pumps */
#define GMP_AF_PRIO_CRITICAL	2	/* medical equipment, life support */
#define GMP_AF_PRIO_DEFERRABLE	3	/* can wait: EV charging, storage heaters */

/* GMP_CMD_REPORT states: where a signed command stands. */
enum gmp_cmd_state {
	GMP_CS_DELIVERED	= 1,	/* queued at the town for its meter */
	GMP_CS_EXECUTED		= 2,	/* the target verified and carried it out */
	GMP_CS_REFUSED		= 3,	/* the town or the target refused it (status: why) */
	GMP_CS_EXPIRED		= 4,	/* its expiry passed before it reached the target */
};

/* GMP_SECURITY kinds. */
enum gmp_sec_kind {
	GMP_SEC_AUTH_FAIL	= 1,	/* frames whose tag did not verify */
	GMP_SEC_REPLAY		= 2,	/* counters replayed, HELLOs seen before */
	GMP_SEC_UNKNOWN		= 3,	/* frames from an address no meter has */
	GMP_SEC_CMD_REFUSED	= 4,	/* signed commands refused (forged, replayed...) */
};

/* GMP_LOAN states. */
enum gmp_loan_state {
	GMP_LOAN_OPEN		= 0,	/* lent, running */
	GMP_LOAN_RETURNED	= 1,	/* given back before its end */
	GMP_LOAN_EXPIRED	= 2,	/* its end passed */
	GMP_LOAN_CANCELLED	= 3,	/* the link broke before it was confirmed */
};

/* HELLO flags. */
#define GMP_HELLO_OUTBOX_NEW	0x01	/* the outbox was created by this run */
#define GMP_HELLO_STORE_NEW	0x02	/* the meter's registers were not recovered */
#define GMP_HELLO_UNCLEAN	0x04	/* the last stop was not clean */

/* Command results (GMP_CMD_RESULT status). */
enum gmp_cmd_status {
	GMP_CMD_OK		= 0,	/* applied or scheduled */
	GMP_CMD_DUPLICATE	= 1,	/* tseq <= floor: handled before */
	GMP_CMD_UNSUPPORTED	= 2,	/* the meter cannot represent it */
	GMP_CMD_EXPIRED		= 3,	/* a grant whose end has passed */
	GMP_CMD_INVALID		= 4,	/* malformed or unknown command */
	GMP_CMD_STORAGE		= 5,	/* could not persist: the town resends */
	/* a signed command (GMP_SIGNED) refused by the one it targets */
	GMP_CMD_BAD_SIG		= 6,	/* a signature does not verify */
	GMP_CMD_UNKNOWN_KEY	= 7,	/* signed by a key not provisioned here */
	GMP_CMD_REPLAY		= 8,	/* this command id was handled before */
	GMP_CMD_NEED_TWO	= 9,	/* needs two operators' signatures */
	GMP_CMD_WRONG_TARGET	= 10,	/* addressed to another meter or town */
	GMP_CMD_RATE		= 11,	/* over the disconnect limit per hour */
	GMP_CMD_NOT_YET		= 12,	/* issued in the future, or lives too long */
	GMP_CMD_REFUSED		= 13,	/* the target cannot do it now (e.g. no relay) */
	GMP_CMD_STATUS_MAX	= 255,
};

/* REHELLO reasons. */
#define GMP_REHELLO_NO_SESSION	1	/* unknown session id (e.g. townd restarted) */

#define GMP_TARIFF_MAX		12
/* Largest byte string of variable length (GMP_SIGNED's command). */
#define GMP_BLOB_MAX		256
/* Town ids of a GMP_LOAN_ASK path, big-endian u16 each, unused ones 0. */
#define GMP_LOAN_PATH_MAX	(GMP_KEY_LEN / 2)
/* GMP_LOAN_OFFER flags. */
#define GMP_OFFER_LAST		0x01	/* no further offer follows for this request */

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
			int64_t import_mwh, export_mwh, renew_mwh;	/* fixed width */
			int64_t flags;		/* GMP_RF_* */
		} reading;
		struct {	/* GMP_REGISTERS */
			int64_t seq, time;
			int64_t import_mwh, export_mwh, renew_mwh;	/* 8-byte width */
			int64_t flags;
		} regs;
		struct {	/* GMP_ALARM */
			int64_t seq, time;
			int64_t code;		/* enum meter_alarm */
			int64_t active;		/* 0 cleared, 1 raised */
			int64_t value;		/* signed detail (e.g. mA), fixed width */
			int64_t flags;
		} alarm;
		struct {	/* GMP_ALLOC_REQ */
			int64_t seq, time;
			int64_t req_id;
			int64_t power_w;	/* > 0 needed, < 0 offered; fixed width */
			int64_t duration_s;
			int64_t flags;
		} alloc_req;
		struct {	/* GMP_ALLOC_REL */
			int64_t seq, time, req_id, flags;
		} alloc_rel;
		struct {	/* GMP_KEY_ROTATE */
			int64_t seq, time;
			uint8_t pk[GMP_KEY_LEN];	/* the meter's next public key */
		} key_rotate;
		struct {	/* GMP_CMD_RESULT */
			int64_t tseq;
			int64_t status;		/* enum gmp_cmd_status */
		} cmd_result;
		struct {	/* GMP_LOST */
			int64_t first, last;	/* first <= last */
		} lost;
		struct {	/* GMP_HOUR */
			int64_t seq;
			int64_t meter;		/* the meter's id in its town, 1..65535 */
			int64_t hour;		/* UTC s, a multiple of 3600 */
			int64_t period;		/* tariff slot index, 0..GMP_TARIFF_MAX-1 */
			int64_t import_mwh, export_mwh, renew_mwh;	/* fixed width */
			int64_t readings;	/* readings summed */
			int64_t flags;		/* GMP_RF_* | GMP_HF_* */
			int64_t rev;		/* 0 first; a later revision replaces it */
		} hour;
		struct {	/* GMP_TOWN_HOUR */
			int64_t seq;
			int64_t hour;		/* UTC s, a multiple of 3600 */
			int64_t meters;		/* meters with readings in it */
			int64_t import_mwh, export_mwh, renew_mwh;	/* fixed width */
			int64_t flags;		/* GMP_HF_* */
			int64_t rev;
		} town_hour;
		struct {	/* GMP_LOAN */
			int64_t seq, time;
			int64_t loan_id;	/* the lender's id of the loan */
			int64_t lender, borrower;	/* town ids */
			int64_t power_w;	/* fixed width */
			int64_t until;		/* UTC s */
			int64_t state;		/* enum gmp_loan_state */
		} loan;
		struct gmp_loan_ask {	/* GMP_LOAN_ASK */
			int64_t seq, time;
			int64_t origin;		/* the town that needs the power */
			int64_t req_id;		/* unique per origin */
			int64_t power_w;	/* still wanted, > 0; fixed width */
			int64_t duration_s;	/* of the loan, 1..86400 */
			int64_t wait_s;		/* the asker answers nothing after this */
			int64_t hops;		/* hops left including this one, 1.. */
			uint8_t path[GMP_KEY_LEN];	/* towns asked through, origin first */
		} loan_ask;
		struct gmp_loan_ref {	/* GMP_LOAN_ACCEPT, GMP_LOAN_HOLD, GMP_LOAN_RETURN */
			int64_t seq, time;
			int64_t lender, loan_id;	/* the loan, end to end */
			int64_t power_w;	/* ACCEPT: taken (0 declines); fixed width */
			int64_t state;		/* RETURN: RETURNED or CANCELLED */
		} loan_ref;
		struct gmp_loan_offer {	/* GMP_LOAN_OFFER */
			int64_t tseq;
			int64_t origin, req_id;	/* the request answered */
			int64_t lender, loan_id;	/* 0, 0 with power 0: nothing */
			int64_t power_w;	/* reserved for the asker; fixed width */
			int64_t until;		/* UTC s the loan would end */
			int64_t ttl_s;		/* the reservation is held this long */
			int64_t flags;		/* GMP_OFFER_* */
		} loan_offer;
		struct gmp_loan_down {	/* GMP_LOAN_CONFIRM, GMP_LOAN_END */
			int64_t tseq;
			int64_t lender, loan_id;
			int64_t power_w;	/* fixed width */
			int64_t until;
			int64_t state;		/* enum gmp_loan_state (CONFIRM: OPEN) */
		} loan_down;
		struct {	/* GMP_ACK */
			int64_t upto;		/* cumulative */
		} ack;
		struct {	/* GMP_GRANT */
			int64_t tseq, req_id;
			int64_t granted_w;	/* fixed width */
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
		struct {	/* GMP_SUPPLY */
			int64_t tseq;
			int64_t capacity_w;	/* grid capacity of the town, >= 0 */
		} supply;
		struct {	/* GMP_SIGNED */
			int64_t tseq;
			int64_t len;			/* 1..GMP_BLOB_MAX */
			uint8_t blob[GMP_BLOB_MAX];	/* gmc_encode()'s bytes */
		} signed_cmd;
		struct {	/* GMP_TOWN_SUMMARY: one month of the town, as the main server has it */
			int64_t tseq;
			int64_t month;			/* YYYYMM, local months of the town */
			int64_t meters;			/* meters billed */
			int64_t import_wh, export_wh, renew_wh;	/* fixed width */
			int64_t lent_wh, borrowed_wh;	/* loans to and from other towns */
			int64_t admin_hours;		/* hours built in administrative mode */
			int64_t alarms;			/* alarms raised in the month */
			int64_t estimated_hours;	/* meter-hours the main server estimated */
			int64_t billed_minor;		/* sum of the month's bills, minor units */
		} summary;
		struct {	/* GMP_CMD_REPORT */
			int64_t seq, time;
			int64_t cmd_id;			/* gmc_cmd.id */
			int64_t meter;			/* 0: the town itself */
			int64_t state;			/* enum gmp_cmd_state */
			int64_t status;			/* enum gmp_cmd_status */
		} cmd_report;
		struct {	/* GMP_METER_ALARM */
			int64_t seq, time;		/* time: the meter's */
			int64_t meter;
			int64_t code;			/* enum meter_alarm */
			int64_t active;
			int64_t value;
		} meter_alarm;
		struct {	/* GMP_SECURITY: counts over [time - interval_s, time) */
			int64_t seq, time;
			int64_t interval_s;
			int64_t meter;			/* the meter it claimed to be, 0 none */
			int64_t addr;			/* IPv4 of the peer (host order), 0 unknown */
			int64_t kind;			/* enum gmp_sec_kind */
			int64_t count;
		} security;
		struct {	/* GMP_TOWN_KEY */
			int64_t tseq;
			uint8_t pk[GMP_KEY_LEN];	/* the town server's next public key */
		} town_key;
		struct {	/* GMP_HELLO */
			uint8_t rm[GMP_RAND_LEN];	/* fresh for every attempt */
			int64_t now_ms;			/* the meter's clock (UTC ms) */
			int64_t clock_trusted;		/* 0/1 */
			int64_t cmd_floor;		/* highest command tseq handled */
			int64_t next_seq;		/* the meter's next record sequence */
			int64_t first_held;		/* oldest unacknowledged record held */
			int64_t flags;			/* GMP_HELLO_* */
		} hello;
		struct {	/* GMP_WELCOME */
			uint8_t rm[GMP_RAND_LEN];	/* the HELLO's, echoed */
			uint8_t rt[GMP_RAND_LEN];	/* the town's, fresh */
			int64_t sid;			/* session id, 1..255 */
			int64_t now_ms;			/* the town's clock (UTC ms) */
			int64_t upto;			/* every record <= upto is stored */
			int64_t cmd_next;		/* the next command tseq the town sends */
			int64_t reg_import_mwh, reg_export_mwh, reg_renew_mwh;	/* 8-byte width */
			int64_t reg_time;		/* UTC s the register view refers to */
		} welcome;
		struct {	/* GMP_REHELLO */
			int64_t reason;			/* GMP_REHELLO_* */
		} rehello;
	};
};

/* Errors (negative returns). */
enum gmp_err {
	GMP_E_SPACE	= 1,	/* output buffer too small */
	GMP_E_MALFORMED	= 2,	/* not CBOR of the schema */
	GMP_E_TYPE	= 3,	/* unknown message type */
	GMP_E_RANGE	= 4,	/* field out of range */
	GMP_E_VERSION	= 5,	/* envelope version (e.g. a version-1 envelope) */
	GMP_E_SHORT	= 6,	/* envelope truncated */
	GMP_E_REPLAY	= 7,	/* counter not above the last accepted one */
	GMP_E_AUTH	= 8,	/* authentication failed */
	GMP_E_KEY	= 9,	/* key derivation failed (bad public key) */
	GMP_E_SESSION	= 10,	/* no session, or an envelope of another session */
	GMP_E_KIND	= 11,	/* a handshake envelope where a session one belongs, or back */
};

const char *gmp_strerror(int err);
const char *gmp_type_name(int type);
/* enum gmp_class of a message type. */
int gmp_type_class(int type);
/* True for the types the town stores exactly once (they carry a seq). */
bool gmp_is_record(int type);
/* The record sequence of a record message, or 0. */
int64_t gmp_msg_seq(const struct gmp_msg *m);
/* Set the record sequence of a record message; -GMP_E_TYPE for others. */
int gmp_msg_set_seq(struct gmp_msg *m, int64_t seq);
/* The tseq of a command (GMP_GRANT, GMP_TARIFF, GMP_TOWN_KEY, GMP_SUPPLY,
 * GMP_LOAN_OFFER/CONFIRM/END, GMP_SIGNED, GMP_TOWN_SUMMARY), or 0. */
int64_t gmp_cmd_tseq(const struct gmp_msg *m);
/* Set the tseq of a command; -GMP_E_TYPE for other messages. */
int gmp_cmd_set_tseq(struct gmp_msg *m, int64_t tseq);
/* The plaintext length after padding (a multiple of GMP_PAD_QUANTUM). */
size_t gmp_pad_len(size_t len);

/*
 * Append one message to buf[*off..size). Consumption fields get their
 * fixed-width arguments. Returns 0 or -GMP_E_SPACE / -GMP_E_TYPE /
 * -GMP_E_RANGE; *off is unchanged on error.
 */
int gmp_encode(const struct gmp_msg *m, uint8_t *buf, size_t size, size_t *off);

/*
 * Decode the next message of a CBOR sequence at buf[*off..len). Returns 1
 * and advances *off; 0 at the end of the input or at padding (a zero byte
 * where a message would start, followed by nothing but zero bytes: *off is
 * then set to len); or a negative error (the rest of the input is then
 * unusable). Any argument width is accepted. Never reads outside
 * buf[0..len).
 */
int gmp_decode_next(const uint8_t *buf, size_t len, size_t *off, struct gmp_msg *m);

/* ---- keys, handshake and session ------------------------------------------ */

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

/* Long-term direction keys of one meter <-> town server pair. */
struct gmp_lt {
	uint8_t rx[GMP_KEY_LEN];	/* what the other end sends */
	uint8_t tx[GMP_KEY_LEN];	/* what this end sends */
};

/*
 * One session: keys derived from a handshake, counters in memory only
 * (never persisted: a new process, a restore or a wipe means a new
 * handshake and new keys). tx_ctr is the last counter used, rx_ctr the
 * last accepted one.
 */
struct gmp_session {
	uint8_t rx_key[GMP_KEY_LEN];
	uint8_t tx_key[GMP_KEY_LEN];
	uint64_t tx_ctr;
	uint64_t rx_ctr;
	uint8_t sid;		/* 1..255 */
	bool up;		/* keys derived */
};

void gmp_keypair_generate(struct gmp_keypair *kp);
/* The key pair of a provisioned secret key (its public key recomputed). 0 or -GMP_E_KEY. */
int gmp_keypair_from_secret(struct gmp_keypair *kp, const uint8_t sk[GMP_KEY_LEN]);
/* Meter side: its own key pair and the town server's public key. 0 or -GMP_E_KEY. */
int gmp_lt_meter(struct gmp_lt *k, const struct gmp_keypair *meter,
		 const uint8_t town_pk[GMP_KEY_LEN]);
/* Town server side: its key pair and the meter's public key. 0 or -GMP_E_KEY. */
int gmp_lt_town(struct gmp_lt *k, const struct gmp_keypair *town,
		const uint8_t meter_pk[GMP_KEY_LEN]);
void gmp_lt_wipe(struct gmp_lt *k);

/*
 * Handshake envelope: plain[0..len) padded, sealed under k->tx with a
 * random nonce. Returns the envelope length (len padded + GMP_HS_OVERHEAD)
 * or a negative error (len above GMP_HS_PLAIN_MAX, short buffer).
 */
int gmp_hs_seal(const struct gmp_lt *k, const struct gmp_addr *a, const uint8_t *plain,
		size_t len, uint8_t *out, size_t out_size);
/*
 * Open a handshake envelope under k->rx. Returns the (padded) plaintext
 * length or a negative error. Handshake envelopes carry no replay state:
 * the handshake itself makes replays harmless (Documentation/protocol.md).
 */
int gmp_hs_open(const struct gmp_lt *k, const struct gmp_addr *a, const uint8_t *env,
		size_t env_len, uint8_t *plain, size_t plain_size);

/*
 * The session of a handshake: S_dir = BLAKE2b-256(key = LT_dir,
 * "gmp2-session" || rm || rt || sid), counters at 0.
 */
void gmp_session_derive(struct gmp_session *s, const struct gmp_lt *k,
			const uint8_t rm[GMP_RAND_LEN], const uint8_t rt[GMP_RAND_LEN],
			uint8_t sid);
void gmp_session_wipe(struct gmp_session *s);

/*
 * Session envelope: plain[0..len) padded, sealed with counter
 * ++s->tx_ctr (out_size >= gmp_pad_len(len) + GMP_ENV_OVERHEAD_MAX).
 * Returns the envelope length or a negative error; a failure consumes no
 * counter.
 */
int gmp_seal(struct gmp_session *s, const struct gmp_addr *a,
	     const uint8_t *plain, size_t len, uint8_t *out, size_t out_size);

/*
 * Open a session envelope. On success returns the (padded) plaintext
 * length (plain must hold env_len bytes), stores the counter in *ctr and
 * sets s->rx_ctr. Rejects (without touching s) other kinds and versions,
 * other session ids, truncation, counters not above s->rx_ctr, and
 * anything failing authentication.
 */
int gmp_open(struct gmp_session *s, const struct gmp_addr *a,
	     const uint8_t *env, size_t env_len, uint8_t *plain, size_t plain_size,
	     uint64_t *ctr);

enum gmp_env_kind {
	GMP_KIND_HANDSHAKE = 1,
	GMP_KIND_SESSION = 2,
};

/*
 * What an envelope is, from its first bytes: GMP_KIND_HANDSHAKE,
 * GMP_KIND_SESSION (with its session id in *sid), -GMP_E_SHORT or
 * -GMP_E_VERSION (version 1 and anything unknown).
 */
int gmp_envelope_kind(const uint8_t *env, size_t len, uint8_t *sid);

/*
 * The nonce of a session envelope (its counter, canonical LEB128 after the
 * kind and session bytes) or of a handshake envelope (its 24 bytes), for
 * audits of captured traffic. Returns the envelope kind or a negative error.
 */
int gmp_envelope_nonce(const uint8_t *env, size_t len, uint8_t nonce[GMP_NONCE_LEN]);

/* Hex helpers for configuration and provisioning files. */
int gmp_hex_decode(const char *hex, uint8_t *out, size_t n);
void gmp_hex_encode(const uint8_t *in, size_t n, char *out /* 2n+1 */);

#endif
