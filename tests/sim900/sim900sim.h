/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Simulated SIM900 GSM/GPRS modem (Documentation/sim900.md): speaks the
 * SIM900 AT dialect on a serial line (a pty master, or a socket that QEMU's
 * serial chardev connects to), bridges transparent mode (AT+CIPMODE=1) to a
 * real TCP connection, and fails on request in the ways real modems do.
 *
 * Driven by text control commands (sim900sim_control(), or the control
 * socket of the sim900sim program), one per line:
 *   error CMD [N]        answer ERROR to the next N (1) CMD (e.g. CIICR, CSQ, AT)
 *   cme CMD CODE [N]     answer +CME ERROR: CODE
 *   mute CMD [N]         do not answer
 *   delay MS             every answer MS late (slow modem)
 *   urc TEXT             send an unsolicited result code now
 *   drop                 the server closed: CLOSED, back to command mode
 *   nocarrier            the carrier dropped: NO CARRIER, back to command mode
 *   pdpdeact             the network deactivated GPRS: +PDP: DEACT
 *   connect_fail N       the next N AT+CIPSTART end in CONNECT FAIL
 *   reg_delay MS         registration takes MS after power-up (+CREG: 0,2 meanwhile)
 *   csq N                signal quality reported by AT+CSQ
 *   apn NAME             only this APN works (AT+CIICR fails otherwise)
 *   pin TEXT             AT+CPIN? answers +CPIN: TEXT (e.g. "SIM PIN")
 *   hang                 stop answering anything until the PWRKEY is pulsed
 *   pwrkey               a PWRKEY pulse: toggles power (with boot URCs)
 *   off                  power off silently
 *   cms CODE [N]         the next N (1) SMS are refused by the network:
 *                        +CMS ERROR: CODE after the Ctrl-Z
 *   sms_delay MS         the network takes MS to answer each SMS (+CMGS late)
 *   sms_log PATH         append every SMS sent to PATH, one line each:
 *                        NUMBER TAB TEXT (newline as \n, backslash as \\)
 *   stats                one line of counters (ciicrs, cipstarts: AT+CIICR and
 *                        AT+CIPSTART received; sms: messages sent)
 * SMS (text mode, Documentation/sim900.md "SMS"): AT+CMGF=1 (PDU mode, 0,
 * is the default), AT+CSCS, AT+CMGS="NUMBER"[,TYPE] -> "\r\n> ", the text,
 * Ctrl-Z sends (+CMGS: MR, OK), ESC cancels (OK); more than 160 septets
 * +CMS ERROR: 305; not registered +CMS ERROR: 331; AT+CMGS in PDU mode
 * with a quoted number +CMS ERROR: 304.
 * Each command is answered with "ok" or "error: why", stats with its line.
 */
#ifndef SIM900SIM_H
#define SIM900SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define S9_INJ_MAX	16
#define S9_OUTQ		32

struct s9_inj {
	char cmd[16];
	int mode;		/* 1 ERROR, 2 +CME ERROR, 3 mute */
	int count;
	int code;
};

struct s9_out {
	int64_t at;
	uint16_t len;
	char text[200];
};

struct sim900sim {
	int tty;			/* serial line, our side */
	int tcp;			/* bridged connection or -1 */
	uint32_t guard_ms;
	bool powered, hung, echo, transparent, gprs_up;
	int64_t boot_urc_at;		/* boot URCs due (0: none) */
	int64_t reg_at;			/* registered from then on */
	uint32_t reg_delay_ms, delay_ms;
	int csq, connect_fail;
	char apn[64], want_apn[64], pin[32];
	char line[512];
	size_t line_len;
	/* "+++" detection */
	int64_t last_data;
	int pluses;
	int64_t plus_last;
	struct s9_inj inj[S9_INJ_MAX];
	struct s9_out q[S9_OUTQ];
	int nq;
	/* counters */
	unsigned long commands, escapes, connects, pwrkeys, bytes_up, bytes_down;
	unsigned long ciicrs, cipstarts;	/* GPRS activations, TCP attempts */
	/* SMS */
	bool cmgf_text;			/* AT+CMGF=1 */
	bool sms_entry;			/* after the "> " prompt, until Ctrl-Z / ESC */
	char sms_to[32];
	char sms_text[512];
	size_t sms_len;
	int sms_fail, sms_fail_code;	/* injected network refusals */
	uint32_t sms_delay_ms;		/* the network's time to take a message */
	unsigned sms_mr;		/* TP-Message-Reference, 0..255 */
	unsigned long sms_sent;
	char sms_log[256];		/* "" none */
	/* time (ms): CLOCK_MONOTONIC unless a test sets a simulated clock */
	int64_t (*clock)(void *ctx);
	void *clock_ctx;
};

void sim900sim_init(struct sim900sim *s, int tty_fd, uint32_t guard_ms);
/* One control command; the answer (no newline) goes to reply. */
void sim900sim_control(struct sim900sim *s, const char *cmd, char *reply, size_t n);
/*
 * In-process use in simulated time (set s->clock): bytes the meter wrote
 * to the serial line; then sim900sim_due() writes what is due by now
 * (answers, boot URCs, the OK of an escape) to the tty fd, and
 * sim900sim_next_event() says when something is due next (INT64_MAX: only
 * input will change anything).
 */
void sim900sim_input(struct sim900sim *s, const void *buf, size_t len);
void sim900sim_due(struct sim900sim *s);
int64_t sim900sim_next_event(const struct sim900sim *s);
/*
 * Serve until the control input (line-based; answers go to ctl_out) closes
 * or fails, or forever if ctl < 0. Returns 0, or -1 if the serial line
 * went away.
 */
int sim900sim_run(struct sim900sim *s, int ctl, int ctl_out);
/*
 * The tests' simulated modem: a child process serving the pty MASTER
 * (guard time 100 ms) with its control line on a socketpair. The parent's
 * MASTER is closed, and so is CLOSE_IN_CHILD (>= 0: the test's own end of
 * the pty) in the child. Returns the child's pid with the control end in
 * *ctl, or -1.
 */
int sim900sim_spawn(int master, int close_in_child, int *ctl);

#endif
