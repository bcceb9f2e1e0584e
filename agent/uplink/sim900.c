// SPDX-License-Identifier: GPL-2.0
/* SIM900 bring-up state machine (modem_sim900.h, Documentation/sim900.md). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "sim900.h"
#include "parse.h"

#define BOOT_PROBE_MS	1000	/* "AT" while waiting for a booting modem */
#define RETRY_PAUSE_MS	500	/* before repeating a failed command */
#define HOUR_MS		3600000LL

static const char *const state_names[] = {
	[SIM900_OFF] = "off", [SIM900_POWER] = "power-key", [SIM900_BOOT] = "booting",
	[SIM900_SETUP] = "setup", [SIM900_REGISTER] = "registering",
	[SIM900_GPRS] = "gprs", [SIM900_CONNECT] = "connecting", [SIM900_DATA] = "connected",
	[SIM900_ESCAPE] = "escaping", [SIM900_WAIT] = "waiting", [SIM900_FATAL] = "failed",
};

const char *sim900_state_name(enum sim900_state s)
{
	return (unsigned int)s < sizeof(state_names) / sizeof(state_names[0]) ?
		state_names[s] : "unknown";
}

void sim900_config_defaults(struct sim900_config *c)
{
	memset(c, 0, sizeof(*c));
	c->cmd_timeout_ms = 3000;
	c->ciicr_timeout_ms = 85000;
	c->connect_timeout_ms = 75000;
	c->reg_timeout_ms = 120000;
	c->reg_poll_ms = 2000;
	c->guard_ms = 1000;
	c->retry_delay_ms = 5000;
	c->retry_max_ms = 600000;
	c->retry_reset_ms = 300000;
	c->powercycle_interval_ms = 600000;
	c->powercycles_per_hour = 3;
	c->pwrkey_ms = 1200;
	c->boot_ms = 10000;
	c->powercycle_after = 3;
	c->retries = 3;
}

/* Values go inside AT command quotes: printable ASCII, no '"' or '\'. */
static int at_safe(const char *v, size_t max)
{
	size_t n = strlen(v);

	if (n >= max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] < 0x20 || v[i] > 0x7e || v[i] == '"' || v[i] == '\\')
			return 0;
	return 1;
}

int sim900_config_set(struct sim900_config *c, const char *key, const char *value,
		      char *err, size_t errlen)
{
	static const struct { const char *key; size_t off; uint32_t lo, hi; } num[] = {
		{ "command_timeout_ms", offsetof(struct sim900_config, cmd_timeout_ms), 100, 600000 },
		{ "gprs_timeout_ms", offsetof(struct sim900_config, ciicr_timeout_ms), 100, 600000 },
		{ "connect_timeout_ms", offsetof(struct sim900_config, connect_timeout_ms), 100, 600000 },
		{ "registration_timeout_ms", offsetof(struct sim900_config, reg_timeout_ms), 100, 3600000 },
		{ "registration_poll_ms", offsetof(struct sim900_config, reg_poll_ms), 10, 60000 },
		{ "guard_ms", offsetof(struct sim900_config, guard_ms), 20, 2550 },
		{ "retry_delay_ms", offsetof(struct sim900_config, retry_delay_ms), 10, 3600000 },
		{ "retry_max_ms", offsetof(struct sim900_config, retry_max_ms), 10, 86400000 },
		{ "retry_reset_ms", offsetof(struct sim900_config, retry_reset_ms), 1000, 86400000 },
		{ "powercycle_interval_ms", offsetof(struct sim900_config, powercycle_interval_ms),
		  0, 86400000 },
		{ "powercycles_per_hour", offsetof(struct sim900_config, powercycles_per_hour), 1,
		  SIM900_MAX_CYCLES },
		{ "pwrkey_ms", offsetof(struct sim900_config, pwrkey_ms), 10, 10000 },
		{ "boot_ms", offsetof(struct sim900_config, boot_ms), 100, 120000 },
		{ "powercycle_after", offsetof(struct sim900_config, powercycle_after), 1, 100 },
		{ "retries", offsetof(struct sim900_config, retries), 1, 100 },
	};

	if (!strcmp(key, "apn") || !strcmp(key, "user") || !strcmp(key, "password")) {
		char *dst = key[0] == 'a' ? c->apn : key[0] == 'u' ? c->user : c->pass;

		if (!at_safe(value, sizeof(c->apn))) {
			snprintf(err, errlen, "must be up to %zu printable characters without '\"' "
				 "or '\\'", sizeof(c->apn) - 1);
			return -1;
		}
		strcpy(dst, value);
		return 0;
	}
	if (!strcmp(key, "server")) {
		const char *colon = strrchr(value, ':');
		uint32_t port;
		size_t hl = colon ? (size_t)(colon - value) : 0;

		if (!colon || hl == 0 || hl >= sizeof(c->host) ||
		    parse_u32(colon + 1, 1, 65535, &port)) {
			snprintf(err, errlen, "'%s' is not HOST:PORT", value);
			return -1;
		}
		memcpy(c->host, value, hl);
		c->host[hl] = '\0';
		if (!at_safe(c->host, sizeof(c->host))) {
			c->host[0] = '\0';
			snprintf(err, errlen, "'%s' is not HOST:PORT", value);
			return -1;
		}
		c->port = (uint16_t)port;
		return 0;
	}
	for (size_t i = 0; i < sizeof(num) / sizeof(num[0]); i++) {
		if (strcmp(key, num[i].key))
			continue;
		if (parse_u32(value, num[i].lo, num[i].hi, (uint32_t *)((char *)c + num[i].off))) {
			snprintf(err, errlen, "'%s' is not %u..%u", value, num[i].lo, num[i].hi);
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, "unknown key");
	return -1;
}

int sim900_config_check(const struct sim900_config *c, char *err, size_t errlen)
{
	if (!c->apn[0]) {
		snprintf(err, errlen, "key 'apn' is required");
		return -1;
	}
	if (!c->host[0] || !c->port) {
		snprintf(err, errlen, "key 'server' is required");
		return -1;
	}
	if (c->retry_max_ms < c->retry_delay_ms) {
		snprintf(err, errlen, "key 'retry_max_ms': %u is below retry_delay_ms (%u)",
			 c->retry_max_ms, c->retry_delay_ms);
		return -1;
	}
	return 0;
}

/* ---- plumbing ---------------------------------------------------------- */

static void __attribute__((format(printf, 2, 3))) logm(struct sim900 *m, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	if (!m->ops->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	m->ops->log(m->ctx, msg);
}

static void set_state(struct sim900 *m, enum sim900_state s)
{
	if (m->state == s)
		return;
	logm(m, "modem: %s -> %s", sim900_state_name(m->state), sim900_state_name(s));
	m->state = s;
	m->step = 0;
	m->tries = 0;
	if (m->ops->changed)
		m->ops->changed(m->ctx);
}

static void send_raw(struct sim900 *m, const char *s)
{
	if (m->ops->write(m->ctx, s, strlen(s)) < 0)
		logm(m, "modem: write failed: %s", strerror(errno));
}

static void command(struct sim900 *m, int64_t now, uint32_t timeout)
{
	char cmd[300];

	m->got_ok = m->got_info = false;
	switch (m->state) {
	case SIM900_BOOT:
		strcpy(cmd, "AT");
		break;
	case SIM900_SETUP:
		strcpy(cmd, (const char *[]){ "AT", "ATE0", "AT+CPIN?" }[m->step]);
		break;
	case SIM900_REGISTER:
		strcpy(cmd, (const char *[]){ "AT+CSQ", "AT+CREG?", "AT+CGATT?" }[m->step]);
		break;
	case SIM900_GPRS:
		if (m->step == 2)
			snprintf(cmd, sizeof(cmd), "AT+CSTT=\"%s\",\"%s\",\"%s\"", m->cfg.apn,
				 m->cfg.user, m->cfg.pass);
		else
			strcpy(cmd, (const char *[]){ "AT+CIPSHUT", "AT+CIPMODE=1", "",
						      "AT+CIICR", "AT+CIFSR" }[m->step]);
		break;
	case SIM900_CONNECT:
		snprintf(cmd, sizeof(cmd), "AT+CIPSTART=\"TCP\",\"%s\",\"%u\"", m->cfg.host,
			 m->cfg.port);
		break;
	default:
		return;
	}
	strcat(cmd, "\r");
	send_raw(m, cmd);
	m->deadline = now + timeout;
}

static void start_state(struct sim900 *m, enum sim900_state s, int64_t now)
{
	set_state(m, s);
	m->step = 0;
	m->tries = 0;
	if (s == SIM900_REGISTER)
		m->phase_end = now + m->cfg.reg_timeout_ms;
	command(m, now, m->cfg.cmd_timeout_ms);
}

/* ---- back-off and power cycles -------------------------------------------- */

/* splitmix64: the jitter needs spread between meters, not secrecy */
static uint64_t next_random(struct sim900 *m)
{
	uint64_t z = (m->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * The wait before the next attempt after a failure: min(cap, base x 2^n)
 * x uniform(0.5, 1.5), n the failures in a row so far; then n + 1.
 */
static int64_t backoff_delay(struct sim900 *m)
{
	uint64_t d = m->cfg.retry_delay_ms, cap = m->cfg.retry_max_ms;

	for (uint32_t i = 0; i < m->backoff && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	if (m->backoff < UINT32_MAX)
		m->backoff++;
	return (int64_t)(d / 2 + next_random(m) % (d + 1));
}

/* When the power-cycle policy allows the next cycle. */
static int64_t cycle_allowed_at(const struct sim900 *m)
{
	uint32_t n = m->power_cycles, per_hour = m->cfg.powercycles_per_hour;
	int64_t t = INT64_MIN;

	if (n)
		t = m->cycle_at[(n - 1) % SIM900_MAX_CYCLES] + m->cfg.powercycle_interval_ms;
	if (n >= per_hour) {
		int64_t h = m->cycle_at[(n - per_hour) % SIM900_MAX_CYCLES] + HOUR_MS;

		if (h > t)
			t = h;
	}
	return t;
}

static void pulse(struct sim900 *m, int64_t now)
{
	set_state(m, SIM900_POWER);
	m->pulses++;
	m->cycle_pulses++;
	m->csq = 99;
	m->creg = -1;
	if (m->ops->pwrkey)
		m->ops->pwrkey(m->ctx, true);
	m->deadline = now + m->cfg.pwrkey_ms;
}

/*
 * Start a power cycle if the policy allows one now: one pulse (a second
 * one follows if this one turned the modem off). false if held back.
 */
static bool power_cycle(struct sim900 *m, int64_t now, const char *why)
{
	int64_t at = cycle_allowed_at(m);

	if (at > now) {
		logm(m, "modem: a power cycle is due (%s) but held back for %lld s (at most one "
		     "per %u s and %u per hour)", why, (long long)((at - now + 999) / 1000),
		     m->cfg.powercycle_interval_ms / 1000, m->cfg.powercycles_per_hour);
		return false;
	}
	logm(m, "modem: power cycle (%s)", why);
	m->cycle_at[m->power_cycles % SIM900_MAX_CYCLES] = now;
	m->power_cycles++;
	m->failures = 0;
	m->cycle_pulses = 0;
	pulse(m, now);
	return true;
}

static void start_state(struct sim900 *m, enum sim900_state s, int64_t now);

/* A bring-up from setup, or a wait until the back-off allows one. */
static void begin_attempt(struct sim900 *m, int64_t now)
{
	if (now < m->next_attempt) {
		set_state(m, SIM900_WAIT);
		m->deadline = m->next_attempt;
		return;
	}
	m->attempts++;
	start_state(m, SIM900_SETUP, now);
}

/*
 * A failed attempt: wait out the back-off. modem: counts towards a power
 * cycle (registration, GPRS, a modem that does not answer); a server that
 * refuses or drops the connection does not.
 */
static void fail(struct sim900 *m, int64_t now, bool modem, const char *why, const char *detail)
{
	int64_t delay = backoff_delay(m);

	snprintf(m->why, sizeof(m->why), "%s%s", why, detail);
	if (modem)
		m->failures++;
	m->next_attempt = now + delay;
	logm(m, "modem: bring-up failed: %s%s; next attempt in %lld s", why, detail,
	     (long long)((delay + 999) / 1000));
	set_state(m, SIM900_WAIT);
	m->deadline = m->next_attempt;
}

/* The current command failed (ERROR, +CME ERROR, timeout): retry or give up. */
static void cmd_failed(struct sim900 *m, int64_t now, const char *why)
{
	if (++m->tries < (int)m->cfg.retries) {
		m->deadline = now + RETRY_PAUSE_MS;
		m->got_ok = m->got_info = false;
		m->step |= 0x100;	/* marks "resend at deadline" */
		return;
	}
	/* a modem that does not even answer AT is off or hung */
	if (m->state == SIM900_SETUP && (m->step & 0xff) == 0 && !strcmp(why, "no answer")) {
		logm(m, "modem: no answer to AT");
		if (power_cycle(m, now, "no answer to AT"))
			return;
	}
	fail(m, now, true, why, "");
}

static void next_step(struct sim900 *m, int64_t now)
{
	static const int steps[] = {
		[SIM900_SETUP] = 3, [SIM900_REGISTER] = 3, [SIM900_GPRS] = 5, [SIM900_CONNECT] = 1,
	};
	uint32_t timeout = m->cfg.cmd_timeout_ms;

	m->tries = 0;
	if (++m->step < steps[m->state]) {
		if (m->state == SIM900_GPRS && m->step == 3)
			timeout = m->cfg.ciicr_timeout_ms;
		command(m, now, timeout);
		return;
	}
	switch (m->state) {
	case SIM900_SETUP:
		start_state(m, SIM900_REGISTER, now);
		break;
	case SIM900_REGISTER:
		start_state(m, SIM900_GPRS, now);
		break;
	case SIM900_GPRS:
		set_state(m, SIM900_CONNECT);
		command(m, now, m->cfg.connect_timeout_ms);
		break;
	default:
		break;
	}
}

/* Poll registration/attach again later, within the registration time. */
static void poll_later(struct sim900 *m, int64_t now, const char *what)
{
	if (now + (int64_t)m->cfg.reg_poll_ms > m->phase_end) {
		fail(m, now, true, what, "");
		return;
	}
	m->step |= 0x100;
	m->deadline = now + m->cfg.reg_poll_ms;
}

void sim900_init(struct sim900 *m, const struct sim900_config *cfg,
		 const struct sim900_ops *ops, void *ctx)
{
	memset(m, 0, sizeof(*m));
	m->cfg = *cfg;
	m->ops = ops;
	m->ctx = ctx;
	m->state = SIM900_OFF;
	m->csq = 99;
	m->creg = -1;
	m->deadline = INT64_MAX;
	m->next_attempt = INT64_MIN;
	/* meters that lost the town together must not retry together */
	if (getrandom(&m->rng, sizeof(m->rng), GRND_NONBLOCK) != sizeof(m->rng)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		m->rng = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec ^
			 ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)m;
	}
}

void sim900_seed(struct sim900 *m, uint64_t seed)
{
	m->rng = seed;
}

void sim900_start(struct sim900 *m, int64_t now)
{
	/* probe first: a modem that is already on answers AT */
	set_state(m, SIM900_BOOT);
	m->phase_end = now + m->cfg.boot_ms;
	command(m, now, BOOT_PROBE_MS);
}

void sim900_start_escape(struct sim900 *m, int64_t now)
{
	/* silence for the guard time, "+++", silence again */
	set_state(m, SIM900_ESCAPE);
	m->step = 0;
	m->deadline = now + m->cfg.guard_ms;
}

int64_t sim900_deadline(const struct sim900 *m)
{
	return m->state == SIM900_DATA || m->state == SIM900_FATAL || m->state == SIM900_OFF ?
		INT64_MAX : m->deadline;
}

void sim900_link_down(struct sim900 *m, int64_t now)
{
	int64_t up = now - m->data_since, delay;

	if (m->state != SIM900_DATA)
		return;
	m->link_losses++;
	/* a link that worked for a while starts the back-off again */
	if (up >= (int64_t)m->cfg.retry_reset_ms)
		m->backoff = 0;
	delay = backoff_delay(m);
	m->next_attempt = now + delay;
	logm(m, "modem: link down after %lld s connected; next attempt in %lld s",
	     (long long)(up / 1000), (long long)((delay + 999) / 1000));
	/* escape at once (the modem back in command mode), then wait */
	sim900_start_escape(m, now);
}

/* ---- responses ------------------------------------------------------------- */

static bool starts(const char *l, const char *p)
{
	return !strncmp(l, p, strlen(p));
}

/* Unsolicited result codes; true if consumed. */
static bool urc(struct sim900 *m, const char *l, int64_t now)
{
	if (!strcmp(l, "RDY") || !strcmp(l, "Call Ready") || !strcmp(l, "SMS Ready") ||
	    starts(l, "+CFUN:")) {
		if (m->state == SIM900_BOOT) {
			/* booted: give it a moment, then AT */
			m->deadline = now + 100;
		}
		return true;
	}
	if (starts(l, "NORMAL POWER DOWN") || starts(l, "UNDER-VOLTAGE POWER DOWN")) {
		logm(m, "modem: %s", l);
		if (m->state == SIM900_POWER)
			return true;
		if (m->state == SIM900_BOOT && m->cycle_pulses == 1) {
			/* our press turned it off: the second press of the cycle turns it on */
			pulse(m, now);
		} else if (!power_cycle(m, now, "the modem powered down")) {
			fail(m, now, true, "powered down", "");
		}
		return true;
	}
	if (!strcmp(l, "+PDP: DEACT")) {
		logm(m, "modem: GPRS context deactivated by the network");
		if (m->state == SIM900_GPRS || m->state == SIM900_CONNECT)
			fail(m, now, true, "+PDP: DEACT", "");
		return true;
	}
	if (!strcmp(l, "CLOSED") || !strcmp(l, "NO CARRIER")) {
		if (m->state == SIM900_CONNECT)
			fail(m, now, false, "connection closed: ", l);
		return true;
	}
	if (!strcmp(l, "RING") || starts(l, "+CMTI:") || starts(l, "UNDER-VOLTAGE WARNING") ||
	    starts(l, "OVER-VOLTAGE WARNING"))
		return true;
	/* unsolicited +CREG: <stat> (one number; the answer to AT+CREG? has two) */
	if (starts(l, "+CREG: ") && !strchr(l, ',')) {
		int st = atoi(l + 7);

		if (st != m->creg) {
			m->creg = st;
			if (m->ops->changed)
				m->ops->changed(m->ctx);
		}
		return true;
	}
	/* +CPIN: READY at boot, when not asked */
	if (starts(l, "+CPIN:") && !(m->state == SIM900_SETUP && (m->step & 0xff) == 2))
		return true;
	return false;
}

static void line(struct sim900 *m, const char *l, int64_t now)
{
	int step = m->step & 0xff;

	if (!*l)
		return;
	if (urc(m, l, now))
		return;
	if (starts(l, "AT") || m->state == SIM900_WAIT || m->state == SIM900_POWER ||
	    m->state == SIM900_OFF || m->state == SIM900_FATAL || m->state == SIM900_DATA)
		return;		/* echo, or nothing asked */
	if (m->step & 0x100)
		return;		/* a late answer to a command we gave up on */
	if (m->state == SIM900_ESCAPE) {
		if (!strcmp(l, "OK") && m->step == 1) {
			/* back in command mode */
			begin_attempt(m, now);
		}
		return;
	}
	if (!strcmp(l, "ERROR") || starts(l, "+CME ERROR") || !strcmp(l, "CONNECT FAIL") ||
	    starts(l, "STATE: PDP DEACT")) {
		if (m->state == SIM900_BOOT)
			return;
		if (m->state == SIM900_CONNECT) {
			/* CONNECT FAIL: the modem works, the server refused or is unreachable */
			fail(m, now, strcmp(l, "CONNECT FAIL") != 0, "AT+CIPSTART: ", l);
			return;
		}
		logm(m, "modem: command failed: %s", l);
		cmd_failed(m, now, l);
		return;
	}
	switch (m->state) {
	case SIM900_BOOT:
		if (!strcmp(l, "OK")) {
			/* the modem answers: AT done, continue with ATE0 */
			m->cycle_pulses = 0;
			m->attempts++;
			set_state(m, SIM900_SETUP);
			m->step = 0;
			next_step(m, now);
		}
		return;
	case SIM900_SETUP:
		if (step == 2 && starts(l, "+CPIN: ")) {
			if (strcmp(l + 7, "READY")) {
				snprintf(m->why, sizeof(m->why), "SIM: %s", l + 7);
				logm(m, "modem: SIM needs %s; not retrying", l + 7);
				set_state(m, SIM900_FATAL);
				return;
			}
			m->got_info = true;
			return;
		}
		if (!strcmp(l, "OK") && (step != 2 || m->got_info))
			next_step(m, now);
		return;
	case SIM900_REGISTER:
		if (step == 0 && starts(l, "+CSQ: ")) {
			int rssi = atoi(l + 6);

			if (rssi != m->csq) {
				m->csq = rssi;
				if (m->ops->changed)
					m->ops->changed(m->ctx);
			}
			m->got_info = true;
		} else if (step == 1 && starts(l, "+CREG: ") && strchr(l, ',')) {
			int st = atoi(strchr(l, ',') + 1);

			if (st != m->creg) {
				m->creg = st;
				if (m->ops->changed)
					m->ops->changed(m->ctx);
			}
			m->got_info = true;
		} else if (step == 2 && starts(l, "+CGATT: ")) {
			m->got_info = atoi(l + 8) == 1;
		} else if (!strcmp(l, "OK")) {
			if (step == 0) {
				next_step(m, now);
			} else if (step == 1) {
				if (m->creg == 1 || m->creg == 5)
					next_step(m, now);
				else if (m->creg == 3)
					fail(m, now, true, "registration denied", "");
				else
					poll_later(m, now, "not registered");
			} else if (m->got_info) {
				next_step(m, now);
			} else {
				poll_later(m, now, "GPRS not attached");
			}
		}
		return;
	case SIM900_GPRS:
		if (step == 0 && !strcmp(l, "SHUT OK")) {
			next_step(m, now);
		} else if (step == 4) {
			/* AT+CIFSR answers with the address alone, no OK */
			unsigned int a, b, c, d;
			char tail;

			if (sscanf(l, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 &&
			    a < 256 && b < 256 && c < 256 && d < 256) {
				logm(m, "modem: GPRS up, address %s", l);
				next_step(m, now);
			}
		} else if (step > 0 && !strcmp(l, "OK")) {
			next_step(m, now);
		}
		return;
	case SIM900_CONNECT:
		if (!strcmp(l, "OK")) {
			m->got_ok = true;	/* command accepted; CONNECT follows */
		} else if (!strcmp(l, "CONNECT") || !strcmp(l, "ALREADY CONNECT")) {
			m->connects++;
			m->failures = 0;
			m->data_since = now;
			m->why[0] = '\0';
			set_state(m, SIM900_DATA);
			m->deadline = INT64_MAX;
		}
		return;
	default:
		return;
	}
}

void sim900_input(struct sim900 *m, const char *buf, size_t len, int64_t now)
{
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];

		if (m->state == SIM900_DATA)
			return;		/* the owner should not feed data bytes */
		if (c == '\r' || c == '\n') {
			m->line[m->line_len] = '\0';
			if (m->line_len)
				line(m, m->line, now);
			m->line_len = 0;
			continue;
		}
		if (m->line_len + 1 < sizeof(m->line))
			m->line[m->line_len++] = c;
	}
}

void sim900_tick(struct sim900 *m, int64_t now)
{
	if (now < m->deadline)
		return;
	switch (m->state) {
	case SIM900_POWER:
		if (m->ops->pwrkey)
			m->ops->pwrkey(m->ctx, false);
		set_state(m, SIM900_BOOT);
		m->phase_end = now + m->cfg.boot_ms;
		m->deadline = now + BOOT_PROBE_MS;
		return;
	case SIM900_BOOT:
		if (now < m->phase_end) {
			command(m, now, BOOT_PROBE_MS);
			return;
		}
		/* nothing: the press of this cycle turned it off, or it is off or dead */
		if (m->cycle_pulses == 1) {
			pulse(m, now);
			return;
		}
		if (m->cycle_pulses || !power_cycle(m, now, "no answer after power-up"))
			fail(m, now, true, "no answer after power-up", "");
		return;
	case SIM900_WAIT:
		if (m->failures >= m->cfg.powercycle_after) {
			char why[64];

			snprintf(why, sizeof(why), "%u failed bring-ups", m->failures);
			if (power_cycle(m, now, why))
				return;
		}
		m->attempts++;
		start_state(m, SIM900_SETUP, now);
		return;
	case SIM900_ESCAPE:
		if (m->step == 0) {
			send_raw(m, "+++");
			m->step = 1;
			m->deadline = now + m->cfg.guard_ms + m->cfg.cmd_timeout_ms;
		} else {
			/* no OK: perhaps already in command mode (CLOSED); resync */
			begin_attempt(m, now);
		}
		return;
	case SIM900_SETUP:
	case SIM900_REGISTER:
	case SIM900_GPRS:
	case SIM900_CONNECT:
		if (m->step & 0x100) {
			uint32_t t = m->cfg.cmd_timeout_ms;

			m->step &= 0xff;
			if (m->state == SIM900_GPRS && m->step == 3)
				t = m->cfg.ciicr_timeout_ms;
			if (m->state == SIM900_CONNECT)
				t = m->cfg.connect_timeout_ms;
			command(m, now, t);
			return;
		}
		if (m->state == SIM900_CONNECT) {
			/* OK but no CONNECT: the server does not answer, not the modem's fault */
			fail(m, now, !m->got_ok, m->got_ok ? "no CONNECT" : "no answer to AT+CIPSTART",
			     "");
			return;
		}
		cmd_failed(m, now, "no answer");
		return;
	default:
		m->deadline = INT64_MAX;
		return;
	}
}
