/* SPDX-License-Identifier: GPL-2.0 */
/*
 * SIM900 bring-up as a state machine driven by one fd and timers, for
 * meterd (Documentation/sim900.md). No threads, no global state, nothing
 * blocks: the owner polls the modem tty, calls sim900_input() with what it
 * read and sim900_tick() at sim900_deadline(). When the state becomes
 * SIM900_DATA the TCP connection to the town server is up in transparent
 * mode: the owner attaches the line discipline to the tty (uplink) and
 * stops feeding input; on a broken uplink it detaches it and calls
 * sim900_link_down(), which escapes with "+++" and brings the link back.
 *
 * Handled: echo, unsolicited result codes (RDY, Call Ready, +CFUN, +CPIN,
 * +CREG, RING, +PDP: DEACT, CLOSED, NO CARRIER, NORMAL POWER DOWN,
 * UNDER-VOLTAGE), ERROR and +CME ERROR, slow and missing answers (per
 * command timeouts and retries), CONNECT FAIL, registration searching and
 * denied, and a power cycle (PWRKEY) after repeated failed bring-ups or
 * when the modem stops answering.
 *
 * Storm control: every failed attempt (no CONNECT, a link that went down)
 * waits an exponential back-off with jitter and a cap before the next one;
 * power cycles are rationed (at most one per powercycle_interval_ms and
 * powercycles_per_hour in any hour), and a server that refuses TCP never
 * causes one. The jitter comes from a generator seeded from getrandom()
 * (sim900_seed() for tests).
 */
#ifndef GM_MODEM_SIM900_H
#define GM_MODEM_SIM900_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM900_MAX_CYCLES	60	/* most powercycles_per_hour */

struct sim900_config {
	char apn[64], user[64], pass[64];	/* user/pass may be empty */
	char host[128];				/* server address */
	uint16_t port;
	uint32_t cmd_timeout_ms;	/* ordinary command (default 3000) */
	uint32_t ciicr_timeout_ms;	/* AT+CIICR, bringing up GPRS (85000) */
	uint32_t connect_timeout_ms;	/* AT+CIPSTART to CONNECT (75000) */
	uint32_t reg_timeout_ms;	/* registration and attach (120000) */
	uint32_t reg_poll_ms;		/* AT+CREG?/AT+CGATT? polling (2000) */
	uint32_t guard_ms;		/* "+++" guard time (1000, as AT+CIPCCFG) */
	/*
	 * Back-off after a failed attempt (no CONNECT, a link that went down):
	 * min(retry_max_ms, retry_delay_ms x 2^n) x uniform(0.5, 1.5), n the
	 * failures in a row; n restarts at 0 once a link stayed connected for
	 * retry_reset_ms.
	 */
	uint32_t retry_delay_ms;	/* base (5000) */
	uint32_t retry_max_ms;		/* cap (600000) */
	uint32_t retry_reset_ms;	/* (300000) */
	uint32_t pwrkey_ms;		/* PWRKEY pulse (1200) */
	uint32_t boot_ms;		/* after power-up until AT answers (10000) */
	uint32_t powercycle_after;	/* failed bring-ups (modem side) before a power cycle (3) */
	/* power cycles (at most two PWRKEY pulses each: off, on) */
	uint32_t powercycle_interval_ms;	/* at least this apart (600000) */
	uint32_t powercycles_per_hour;		/* at most this many in any hour (3) */
	uint32_t retries;		/* attempts per command (3) */
};

enum sim900_state {
	SIM900_OFF,		/* powered down or not yet started */
	SIM900_POWER,		/* PWRKEY pulse in progress */
	SIM900_BOOT,		/* waiting for the modem to answer */
	SIM900_SETUP,		/* AT, ATE0, AT+CPIN? */
	SIM900_REGISTER,	/* AT+CSQ, AT+CREG?, AT+CGATT? */
	SIM900_GPRS,		/* CIPSHUT, CIPMODE, CSTT, CIICR, CIFSR */
	SIM900_CONNECT,		/* AT+CIPSTART until CONNECT */
	SIM900_DATA,		/* transparent: the tty carries link frames */
	SIM900_ESCAPE,		/* "+++" with guard times */
	SIM900_WAIT,		/* pause before the next attempt */
	SIM900_FATAL,		/* SIM needs a PIN/PUK: will not retry */
};

struct sim900_ops {
	/* write to the modem tty; returns bytes written or -1 */
	long (*write)(void *ctx, const void *buf, size_t len);
	/* drive the PWRKEY GPIO: true = asserted (key pressed) */
	void (*pwrkey)(void *ctx, bool asserted);
	/* state, signal or registration changed (D-Bus properties) */
	void (*changed)(void *ctx);
	/* a line of the log (journal) */
	void (*log)(void *ctx, const char *msg);
};

struct sim900 {
	struct sim900_config cfg;
	const struct sim900_ops *ops;
	void *ctx;
	enum sim900_state state;
	int step;			/* command within the state */
	int tries;			/* of the current command */
	uint32_t failures;		/* failed bring-ups in a row the modem may be to blame for */
	uint32_t backoff;		/* failed attempts in a row (the n of the back-off) */
	int64_t next_attempt;		/* no bring-up starts before (ms) */
	int64_t data_since;		/* connected since (ms) */
	uint32_t cycle_pulses;		/* pulses of the power cycle in progress (0: none) */
	int64_t cycle_at[SIM900_MAX_CYCLES];	/* starts of the last power cycles, by power_cycles % */
	/* counters */
	uint32_t attempts;		/* bring-ups started (setup .. connect) */
	uint32_t pulses;		/* PWRKEY pulses */
	uint32_t power_cycles;		/* power cycles (one or two pulses each) */
	uint32_t connects, link_losses;
	int csq;			/* 0..31, 99 unknown */
	int creg;			/* 0..5, -1 unknown (+CREG stat) */
	bool got_ok, got_info;
	int64_t deadline;		/* ms, INT64_MAX: none */
	int64_t phase_end;		/* registration / boot limit */
	char line[256];
	size_t line_len;
	char why[96];			/* last failure, for the log */
	uint64_t rng;			/* jitter generator state */
};

void sim900_config_defaults(struct sim900_config *c);
/*
 * Set one key of a [modem] config section ("apn", "user", "password",
 * "server" as HOST:PORT, "command_timeout_ms", ...). 0, or -1 with a reason
 * in err (the caller adds file and line).
 */
int sim900_config_set(struct sim900_config *c, const char *key, const char *value,
		      char *err, size_t errlen);
/* The config is complete (apn and server set). 0 or -1 with err. */
int sim900_config_check(const struct sim900_config *c, char *err, size_t errlen);

void sim900_init(struct sim900 *m, const struct sim900_config *cfg,
		 const struct sim900_ops *ops, void *ctx);
/* Seed the jitter generator (sim900_init() seeds it from getrandom()). */
void sim900_seed(struct sim900 *m, uint64_t seed);
/* Start: assume the modem is powered (it answers AT) or power it up. */
void sim900_start(struct sim900 *m, int64_t now_ms);
/*
 * Start a modem that may still be in transparent mode (meterd restarted
 * while connected): "+++" with guard times first, then the bring-up.
 */
void sim900_start_escape(struct sim900 *m, int64_t now_ms);
void sim900_input(struct sim900 *m, const char *buf, size_t len, int64_t now_ms);
void sim900_tick(struct sim900 *m, int64_t now_ms);
int64_t sim900_deadline(const struct sim900 *m);
/* The uplink stopped working (missing acks, DCD): escape and reconnect. */
void sim900_link_down(struct sim900 *m, int64_t now_ms);
const char *sim900_state_name(enum sim900_state s);

#endif
