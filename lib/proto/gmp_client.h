/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The meter's side of gmproto over its uplink (Documentation/protocol.md):
 * records go to the outbox first, then out in order as sealed link-frame
 * payloads; acknowledgements release them; missing acknowledgements rewind
 * and resend, and mark the route broken so meterd fails over to a
 * neighbour link and back. A library for meterd: no I/O of its own (the
 * send callback writes to /dev/gmlink), no global state, time passed in.
 */
#ifndef GM_MODEM_UPLINK_H
#define GM_MODEM_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gmproto.h"
#include "outbox.h"

#define MU_CTR_RESERVE	1024	/* send counters reserved per state-file write */

struct mu_config {
	uint16_t meter_id;
	struct gmp_keypair key;
	uint8_t town_pk[GMP_KEY_LEN];
	uint32_t ack_every;		/* request an ack every N frames (8) */
	uint32_t ack_timeout_ms;	/* an ack requested must come by then (30000) */
	uint32_t broken_after;		/* missed acks before the route is broken (2) */
	uint32_t batch;			/* records per frame in a backlog (20) */
	uint32_t window;		/* records in flight unacknowledged (400) */
	uint32_t idle_ack_ms;		/* ask for an ack when records wait (600000); keep > ack_every x interval */
};

/*
 * Send one sealed payload as a link frame to the town server (type
 * GM_TYPE_DATA, flags as given). 0, -EAGAIN (try again later), or -errno.
 */
typedef int (*mu_send_fn)(void *ctx, unsigned int flags, const uint8_t *payload, size_t len);
/*
 * A message from the town server other than an ack: time, and grants and
 * tariffs (each once, in tseq order; acknowledged to the server with a
 * meter-ack in the next frame). town_upto is not persisted: after a restart
 * meterd may see the last unacknowledged ones again (apply idempotently).
 */
typedef void (*mu_msg_fn)(void *ctx, const struct gmp_msg *m);

struct modem_uplink {
	struct mu_config cfg;
	struct gmp_session s;
	struct outbox *ob;
	uint64_t sent;			/* records up to here went out on this route */
	uint64_t frames;		/* frames sent (ack_every counting) */
	int64_t ack_due;		/* ms; INT64_MAX: no ack outstanding */
	int64_t idle_due;		/* unrequested records wait; ask by then */
	bool force_req;			/* the next frame asks for an ack */
	uint64_t req_upto;		/* records sent when the ack was asked */
	int64_t town_upto;		/* grants/tariffs received up to this tseq */
	bool mack_due;			/* tell the server (meter-ack) */
	uint32_t missed;		/* acks missed in a row */
	bool broken;			/* route considered broken */
	bool sync_due;			/* tell the server about dropped records */
	uint64_t acks, resends, rejected;
};

void mu_config_defaults(struct mu_config *c);
/* 0, or -1 with err (bad keys). Continues the send counter above the outbox's reservation. */
int mu_init(struct modem_uplink *u, const struct mu_config *cfg, struct outbox *ob,
	    char *err, size_t errlen);
/*
 * Store a record: assigns m's seq (reading, registers, alarm, alloc-*),
 * appends it durably. 0 or -errno. Send with mu_pump().
 */
int mu_record(struct modem_uplink *u, struct gmp_msg *m);
/* Send what has not gone out on this route yet, in order. 0 or -errno. */
int mu_pump(struct modem_uplink *u, int64_t now_ms, mu_send_fn send, void *ctx);
/*
 * A frame from the town server (addressed to this meter). Returns 1 if it
 * was authentic and used, 0 if refused (counted in ->rejected).
 */
int mu_input(struct modem_uplink *u, unsigned int type, unsigned int flags,
	     const uint8_t *payload, size_t len, int64_t now_ms, mu_msg_fn on_msg, void *ctx);
/* Acknowledgement timeout: rewind and count a miss. */
void mu_tick(struct modem_uplink *u, int64_t now_ms);
int64_t mu_deadline(const struct modem_uplink *u);
/* The route changed (failover or back): resend everything unacknowledged. */
void mu_route_changed(struct modem_uplink *u);
/* Records held and not acknowledged. */
uint64_t mu_backlog(const struct modem_uplink *u);

#endif
