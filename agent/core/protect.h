/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Protection and remote-disconnect state machines for the main relay.
 *
 * Two independent machines; the main relay is closed only when both allow:
 *   protection: NORMAL -> (fault) TRIPPED -> (voltage normal for
 *               reclose_delay) NORMAL; N trips within the window -> LOCKOUT,
 *               left only by protect_clear_lockout() (authorised technician).
 *   remote (DLMS style): CONNECTED -> disconnect -> DISCONNECTED -> arm ->
 *               ARMED -> local confirmation (D-Bus or push button) -> CONNECTED.
 * Pure logic: time passed in (ms); the caller drives the relay from
 * protect_relay_closed() immediately after every call.
 */
#ifndef GM_PROTECT_H
#define GM_PROTECT_H

#include <stdbool.h>
#include <stdint.h>

#define PROTECT_MAX_TRIPS	16

enum protect_state { PROT_NORMAL, PROT_TRIPPED, PROT_LOCKOUT };
enum remote_state { REMOTE_CONNECTED, REMOTE_DISCONNECTED, REMOTE_ARMED };

enum protect_fault {
	FAULT_OVERVOLTAGE = 1u << 0,
	FAULT_UNDERVOLTAGE = 1u << 1,
	FAULT_OVERCURRENT = 1u << 2,
};

struct protect_cfg {
	uint32_t reclose_delay_ms;	/* voltage normal this long before automatic reclose */
	uint32_t lockout_trips;		/* this many trips ... */
	uint32_t lockout_window_ms;	/* ... within this window lock out */
};

struct protect {
	struct protect_cfg cfg;
	enum protect_state state;
	enum remote_state remote;
	unsigned last_fault;		/* enum protect_fault bits of the last trip */
	int64_t normal_since_ms;	/* -1 while the voltage is not normal */
	int64_t trip_ms[PROTECT_MAX_TRIPS];	/* ring of recent trip times */
	unsigned ntrips;		/* trips in the ring (<= lockout_trips) */
	uint64_t total_trips;
};

void protect_init(struct protect *p, const struct protect_cfg *cfg);
bool protect_relay_closed(const struct protect *p);
/* A fault (driver event or software check). Returns true if the relay must open now. */
bool protect_fault(struct protect *p, unsigned faults, int64_t now_ms);
/* Periodic: voltage_normal says whether the supply is within limits. Returns true on reclose. */
bool protect_tick(struct protect *p, bool voltage_normal, int64_t now_ms);
/* Remote disconnect: 0, or -EALREADY. */
int protect_disconnect(struct protect *p);
/* Arm reconnect: 0, -EALREADY (connected or armed). */
int protect_arm(struct protect *p);
/* Local confirmation: 0, -EPERM if not armed. */
int protect_confirm(struct protect *p);
/* Clear a lockout: 0, -EALREADY if not locked out. Goes to TRIPPED (reclose rules apply). */
int protect_clear_lockout(struct protect *p, int64_t now_ms);

const char *protect_state_name(enum protect_state s);
const char *remote_state_name(enum remote_state s);

#endif
