// SPDX-License-Identifier: GPL-2.0
/* Simulated SIM900 modem (sim900sim.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sim900sim.h"

/* The simulator's time: CLOCK_MONOTONIC, or the test's simulated clock. */
static int64_t now_ms(const struct sim900sim *s)
{
	struct timespec ts;

	if (s->clock)
		return s->clock(s->clock_ctx);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_tty(struct sim900sim *s, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(s->tty, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pf = { .fd = s->tty, .events = POLLOUT };

				poll(&pf, 1, 100);
				continue;
			}
			return;
		}
		p += w;
		len -= (size_t)w;
	}
}

/* Queue "\r\nTEXT\r\n" (or raw text) after the configured delay. */
static void out(struct sim900sim *s, const char *text, bool framed)
{
	struct s9_out *o;

	if (s->nq == S9_OUTQ)
		return;
	o = &s->q[s->nq++];
	o->at = now_ms(s) + s->delay_ms;
	o->len = (uint16_t)snprintf(o->text, sizeof(o->text), framed ? "\r\n%s\r\n" : "%s", text);
}

static void flush_out(struct sim900sim *s, int64_t now)
{
	int k = 0;

	while (k < s->nq && s->q[k].at <= now) {
		write_tty(s, s->q[k].text, s->q[k].len);
		k++;
	}
	if (k) {
		memmove(s->q, s->q + k, (size_t)(s->nq - k) * sizeof(s->q[0]));
		s->nq -= k;
	}
}

static void close_tcp(struct sim900sim *s)
{
	if (s->tcp >= 0)
		close(s->tcp);
	s->tcp = -1;
}

static void power(struct sim900sim *s, bool on, bool announce)
{
	close_tcp(s);
	s->transparent = false;
	s->gprs_up = false;
	s->hung = false;
	s->echo = true;
	s->line_len = 0;
	s->pluses = 0;
	s->nq = 0;
	s->sms_entry = false;
	s->cmgf_text = false;
	if (on) {
		s->powered = true;
		s->boot_urc_at = now_ms(s) + 300;
		s->reg_at = now_ms(s) + s->reg_delay_ms;
	} else {
		if (announce && s->powered)
			write_tty(s, "\r\nNORMAL POWER DOWN\r\n", 21);
		s->powered = false;
		s->boot_urc_at = 0;
	}
}

void sim900sim_init(struct sim900sim *s, int tty_fd, uint32_t guard_ms)
{
	memset(s, 0, sizeof(*s));
	s->tty = tty_fd;
	s->tcp = -1;
	s->guard_ms = guard_ms;
	s->csq = 18;
	strcpy(s->pin, "READY");
	s->powered = true;
	s->echo = true;
	s->reg_at = 0;
}

/* "AT+CIICR" -> "CIICR", "AT" -> "AT", "ATE0" -> "E0" */
static void cmd_key(const char *line, char *key, size_t n)
{
	const char *p = line + 2;
	size_t k = 0;

	if (!*p) {
		snprintf(key, n, "AT");
		return;
	}
	if (*p == '+')
		p++;
	while (*p && *p != '=' && *p != '?' && k + 1 < n)
		key[k++] = (char)toupper((unsigned char)*p++);
	key[k] = '\0';
}

/* An injected failure for this command, consumed. 0 none, else the mode. */
static int injected(struct sim900sim *s, const char *key, int *code)
{
	for (int i = 0; i < S9_INJ_MAX; i++) {
		struct s9_inj *j = &s->inj[i];

		if (j->count > 0 && !strcasecmp(j->cmd, key)) {
			j->count--;
			*code = j->code;
			return j->mode;
		}
	}
	return 0;
}

/* Parse the n-th "quoted" argument of a command line. */
static int quoted(const char *l, int n, char *out, size_t size)
{
	const char *p = l;

	for (int i = 0; i <= n; i++) {
		const char *q;

		p = strchr(p, '"');
		if (!p)
			return -1;
		q = strchr(p + 1, '"');
		if (!q)
			return -1;
		if (i == n) {
			size_t len = (size_t)(q - p - 1);

			if (len >= size)
				return -1;
			memcpy(out, p + 1, len);
			out[len] = '\0';
			return 0;
		}
		p = q + 1;
	}
	return -1;
}

/* Only loopback: the simulator is for tests. */
static int tcp_connect(const char *host, const char *port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int fd;
	long p = strtol(port, NULL, 10);

	if (p < 1 || p > 65535)
		return -1;
	if (!strcmp(host, "localhost"))
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		if ((ntohl(a->sin_addr.s_addr) >> 24) != 127)
			return -1;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)p);
		sl = sizeof(*a);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		if (!IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return -1;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)p);
		sl = sizeof(*a);
	} else {
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, sl)) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	return fd;
}

/* AT+CMGS="NUMBER"[,TYPE]: the prompt, then the text (sms_byte()). */
static void sms_command(struct sim900sim *s, const char *l)
{
	char num[40];

	if (strstr(l, "=?")) {
		out(s, "OK", true);
		return;
	}
	if (!s->cmgf_text) {
		out(s, "+CMS ERROR: 304", true);	/* PDU mode wants a length */
		return;
	}
	if (quoted(l, 0, num, sizeof(num)) || !num[0] || strlen(num) >= sizeof(s->sms_to)) {
		out(s, "+CMS ERROR: 305", true);
		return;
	}
	strcpy(s->sms_to, num);
	s->sms_len = 0;
	s->sms_entry = true;
	out(s, "\r\n> ", false);
}

static unsigned septets(const char *t, size_t n)
{
	unsigned k = 0;

	for (size_t i = 0; i < n; i++)
		k += strchr("^{}\\[~]|", t[i]) && t[i] ? 2 : 1;
	return k;
}

static void sms_record(struct sim900sim *s)
{
	FILE *f;

	if (!s->sms_log[0] || !(f = fopen(s->sms_log, "a")))
		return;
	fprintf(f, "%s\t", s->sms_to);
	for (size_t i = 0; i < s->sms_len; i++) {
		char c = s->sms_text[i];

		if (c == '\n')
			fputs("\\n", f);
		else if (c == '\\')
			fputs("\\\\", f);
		else
			fputc(c, f);
	}
	fputc('\n', f);
	fclose(f);
}

/* A byte of an SMS being entered: Ctrl-Z sends, ESC cancels, CR is a new line. */
static void sms_byte(struct sim900sim *s, uint8_t c, int64_t now)
{
	char t[32];

	if (c == 0x1b) {
		s->sms_entry = false;
		out(s, "OK", true);
		return;
	}
	if (c == 0x08) {
		if (s->sms_len)
			s->sms_len--;
		return;
	}
	if (c != 0x1a) {
		if (s->echo)
			write_tty(s, &c, 1);
		if (c == '\r') {
			out(s, "\r\n> ", false);
			c = '\n';
		}
		if (s->sms_len + 1 < sizeof(s->sms_text))
			s->sms_text[s->sms_len++] = (char)c;
		return;
	}
	s->sms_entry = false;
	s->delay_ms += s->sms_delay_ms;		/* the network's answer */
	if (s->sms_fail > 0) {
		s->sms_fail--;
		snprintf(t, sizeof(t), "+CMS ERROR: %d", s->sms_fail_code);
		out(s, t, true);
	} else if (now < s->reg_at) {
		out(s, "+CMS ERROR: 331", true);	/* no network service */
	} else if (septets(s->sms_text, s->sms_len) > 160) {
		out(s, "+CMS ERROR: 305", true);	/* longer than one message */
	} else {
		s->sms_mr = (s->sms_mr + 1) & 0xff;
		s->sms_sent++;
		sms_record(s);
		snprintf(t, sizeof(t), "+CMGS: %u", s->sms_mr);
		out(s, t, true);
		out(s, "OK", true);
	}
	s->delay_ms -= s->sms_delay_ms;
}

static void at_command(struct sim900sim *s, char *l)
{
	char key[16], arg[3][130];
	int code = 0, mode;
	int64_t now = now_ms(s);

	s->commands++;
	if (s->echo) {
		write_tty(s, l, strlen(l));
		write_tty(s, "\r", 1);
	}
	if (strncasecmp(l, "AT", 2)) {
		out(s, "ERROR", true);
		return;
	}
	cmd_key(l, key, sizeof(key));
	mode = injected(s, key, &code);
	if (mode == 3)
		return;
	if (mode == 1) {
		out(s, "ERROR", true);
		return;
	}
	if (mode == 2) {
		char t[40];

		snprintf(t, sizeof(t), "+CME ERROR: %d", code);
		out(s, t, true);
		return;
	}
	if (!strcmp(key, "AT")) {
		out(s, "OK", true);
	} else if (!strcmp(key, "E0") || !strcmp(key, "E1")) {
		s->echo = key[1] == '1';
		out(s, "OK", true);
	} else if (!strcmp(key, "CPIN")) {
		char t[48];

		snprintf(t, sizeof(t), "+CPIN: %s", s->pin);
		out(s, t, true);
		out(s, "OK", true);
	} else if (!strcmp(key, "CSQ")) {
		char t[32];

		snprintf(t, sizeof(t), "+CSQ: %d,0", s->csq);
		out(s, t, true);
		out(s, "OK", true);
	} else if (!strcmp(key, "CREG")) {
		out(s, now >= s->reg_at ? "+CREG: 0,1" : "+CREG: 0,2", true);
		out(s, "OK", true);
	} else if (!strcmp(key, "CGATT")) {
		out(s, now >= s->reg_at ? "+CGATT: 1" : "+CGATT: 0", true);
		out(s, "OK", true);
	} else if (!strcmp(key, "CIPMODE")) {
		out(s, strstr(l, "=1") || strstr(l, "=0") ? "OK" : "ERROR", true);
	} else if (!strcmp(key, "CSTT")) {
		if (quoted(l, 0, arg[0], sizeof(arg[0])) || quoted(l, 1, arg[1], sizeof(arg[1])) ||
		    quoted(l, 2, arg[2], sizeof(arg[2])) || strlen(arg[0]) >= sizeof(s->apn)) {
			out(s, "ERROR", true);
			return;
		}
		strcpy(s->apn, arg[0]);
		out(s, "OK", true);
	} else if (!strcmp(key, "CIICR")) {
		s->ciicrs++;
		if (!s->apn[0] || (s->want_apn[0] && strcmp(s->apn, s->want_apn)) ||
		    now < s->reg_at) {
			out(s, "ERROR", true);
			return;
		}
		s->gprs_up = true;
		out(s, "OK", true);
	} else if (!strcmp(key, "CIFSR")) {
		out(s, s->gprs_up ? "10.64.3.17" : "ERROR", true);
	} else if (!strcmp(key, "CIPSTART")) {
		s->cipstarts++;
		if (!s->gprs_up || quoted(l, 0, arg[0], sizeof(arg[0])) ||
		    quoted(l, 1, arg[1], sizeof(arg[1])) || quoted(l, 2, arg[2], sizeof(arg[2])) ||
		    strcasecmp(arg[0], "TCP")) {
			out(s, "ERROR", true);
			return;
		}
		if (s->tcp >= 0) {
			out(s, "ALREADY CONNECT", true);
			return;
		}
		out(s, "OK", true);
		if (s->connect_fail > 0) {
			s->connect_fail--;
			out(s, "CONNECT FAIL", true);
			return;
		}
		s->tcp = tcp_connect(arg[1], arg[2]);
		if (s->tcp < 0) {
			out(s, "CONNECT FAIL", true);
			return;
		}
		s->connects++;
		s->transparent = true;
		s->last_data = now;
		s->pluses = 0;
		out(s, "CONNECT", true);
	} else if (!strcmp(key, "CIPSHUT")) {
		close_tcp(s);
		s->gprs_up = false;
		out(s, "SHUT OK", true);
	} else if (!strcmp(key, "CIPCLOSE")) {
		out(s, s->tcp >= 0 ? "CLOSE OK" : "ERROR", true);
		close_tcp(s);
	} else if (!strcmp(key, "O")) {
		if (s->tcp < 0) {
			out(s, "NO CARRIER", true);
			return;
		}
		s->transparent = true;
		s->last_data = now;
		out(s, "CONNECT", true);
	} else if (!strcmp(key, "CMGF")) {
		if (strstr(l, "?")) {
			out(s, s->cmgf_text ? "+CMGF: 1" : "+CMGF: 0", true);
			out(s, "OK", true);
		} else if (strstr(l, "=1") || strstr(l, "=0")) {
			s->cmgf_text = strstr(l, "=1") != NULL;
			out(s, "OK", true);
		} else {
			out(s, "ERROR", true);
		}
	} else if (!strcmp(key, "CSCS")) {
		if (strstr(l, "?")) {
			out(s, "+CSCS: \"IRA\"", true);
			out(s, "OK", true);
		} else {
			out(s, quoted(l, 0, arg[0], sizeof(arg[0])) ? "ERROR" : "OK", true);
		}
	} else if (!strcmp(key, "CMGS")) {
		sms_command(s, l);
	} else if (!strcmp(key, "CIPSTATUS")) {
		out(s, "OK", true);
		out(s, s->tcp >= 0 ? "STATE: CONNECT OK" : s->gprs_up ? "STATE: IP GPRSACT" :
		    "STATE: IP INITIAL", true);
	} else {
		out(s, "ERROR", true);
	}
}

/* Bytes from the serial line. */
static void tty_bytes(struct sim900sim *s, const uint8_t *b, size_t n, int64_t now)
{
	if (!s->powered || s->hung)
		return;
	for (size_t i = 0; i < n; i++) {
		if (s->sms_entry) {
			sms_byte(s, b[i], now);
			continue;
		}
		if (s->transparent) {
			bool plus_ok = b[i] == '+' &&
				((s->pluses == 0 && now - s->last_data >= s->guard_ms) ||
				 (s->pluses > 0 && s->pluses < 3 && now - s->plus_last < s->guard_ms));

			if (plus_ok) {
				s->pluses++;
				s->plus_last = now;
				continue;
			}
			if (s->pluses && s->tcp >= 0) {
				/* not an escape after all: the pluses were data */
				if (send(s->tcp, "+++", (size_t)s->pluses, MSG_NOSIGNAL) < 0)
					close_tcp(s);
			}
			s->pluses = 0;
			s->last_data = now;
			if (s->tcp >= 0) {
				if (send(s->tcp, b + i, 1, MSG_NOSIGNAL) < 0)
					close_tcp(s);
				s->bytes_up++;
			}
			continue;
		}
		if (b[i] == '\r' || b[i] == '\n') {
			s->line[s->line_len] = '\0';
			if (s->line_len)
				at_command(s, s->line);
			s->line_len = 0;
		} else if (s->line_len + 1 < sizeof(s->line)) {
			s->line[s->line_len++] = (char)b[i];
		}
	}
}

/* Leave transparent mode because the connection ended. */
static void lost(struct sim900sim *s, const char *urc, bool pdp)
{
	close_tcp(s);
	s->transparent = false;
	s->pluses = 0;
	if (pdp)
		s->gprs_up = false;
	out(s, urc, true);
}

void sim900sim_control(struct sim900sim *s, const char *cmd, char *reply, size_t n)
{
	char verb[32] = "", a[128] = "", b[32] = "";
	int k = sscanf(cmd, "%31s %127s %31s", verb, a, b);

	snprintf(reply, n, "ok");
	if (k < 1) {
		snprintf(reply, n, "error: empty command");
	} else if (!strcmp(verb, "error") || !strcmp(verb, "mute") || !strcmp(verb, "cme")) {
		int mode = verb[0] == 'e' ? 1 : verb[0] == 'c' ? 2 : 3, slot = -1;
		int count = 1, code = 0;

		if (k < 2 || strlen(a) >= sizeof(s->inj[0].cmd)) {
			snprintf(reply, n, "error: %s CMD ...", verb);
			return;
		}
		if (mode == 2) {
			char c2[16] = "";

			code = atoi(b);
			if (sscanf(cmd, "%*s %*s %*s %15s", c2) == 1)
				count = atoi(c2);
		} else if (k == 3) {
			count = atoi(b);
		}
		for (int i = 0; i < S9_INJ_MAX; i++)
			if (s->inj[i].count <= 0) {
				slot = i;
				break;
			}
		if (slot < 0 || count < 1) {
			snprintf(reply, n, "error: no room or bad count");
			return;
		}
		strcpy(s->inj[slot].cmd, a);
		s->inj[slot].mode = mode;
		s->inj[slot].count = count;
		s->inj[slot].code = code;
	} else if (!strcmp(verb, "delay")) {
		s->delay_ms = (uint32_t)atoi(a);
	} else if (!strcmp(verb, "urc")) {
		const char *text = strstr(cmd, "urc ") + 4;

		out(s, text, true);
	} else if (!strcmp(verb, "drop")) {
		if (s->tcp < 0)
			snprintf(reply, n, "error: no connection");
		else
			lost(s, "CLOSED", false);
	} else if (!strcmp(verb, "nocarrier")) {
		lost(s, "NO CARRIER", false);
	} else if (!strcmp(verb, "pdpdeact")) {
		lost(s, "+PDP: DEACT", true);
	} else if (!strcmp(verb, "connect_fail")) {
		s->connect_fail = atoi(a);
	} else if (!strcmp(verb, "reg_delay")) {
		s->reg_delay_ms = (uint32_t)atoi(a);
		s->reg_at = now_ms(s) + s->reg_delay_ms;
	} else if (!strcmp(verb, "csq")) {
		s->csq = atoi(a);
	} else if (!strcmp(verb, "apn")) {
		if (strlen(a) >= sizeof(s->want_apn))
			snprintf(reply, n, "error: APN too long");
		else
			strcpy(s->want_apn, a);
	} else if (!strcmp(verb, "pin")) {
		const char *text = strstr(cmd, "pin ") + 4;

		if (strlen(text) >= sizeof(s->pin))
			snprintf(reply, n, "error: too long");
		else
			strcpy(s->pin, text);
	} else if (!strcmp(verb, "hang")) {
		s->hung = true;
		s->nq = 0;
	} else if (!strcmp(verb, "pwrkey")) {
		s->pwrkeys++;
		power(s, !s->powered, !s->hung);
	} else if (!strcmp(verb, "off")) {
		power(s, false, false);
	} else if (!strcmp(verb, "cms")) {
		s->sms_fail_code = atoi(a);
		s->sms_fail = k == 3 ? atoi(b) : 1;
		if (k < 2 || s->sms_fail < 1)
			snprintf(reply, n, "error: cms CODE [N]");
	} else if (!strcmp(verb, "sms_delay")) {
		s->sms_delay_ms = (uint32_t)atoi(a);
	} else if (!strcmp(verb, "sms_log")) {
		if (k < 2 || strlen(a) >= sizeof(s->sms_log))
			snprintf(reply, n, "error: sms_log PATH (under %zu bytes)", sizeof(s->sms_log));
		else
			strcpy(s->sms_log, a);
	} else if (!strcmp(verb, "stats")) {
		snprintf(reply, n, "powered %d hung %d transparent %d connected %d commands %lu "
			 "escapes %lu ciicrs %lu cipstarts %lu connects %lu pwrkeys %lu up %lu "
			 "down %lu sms %lu", s->powered, s->hung, s->transparent, s->tcp >= 0,
			 s->commands, s->escapes, s->ciicrs, s->cipstarts, s->connects, s->pwrkeys,
			 s->bytes_up, s->bytes_down, s->sms_sent);
	} else {
		snprintf(reply, n, "error: unknown command '%s'", verb);
	}
}

void sim900sim_due(struct sim900sim *s)
{
	int64_t now = now_ms(s);

	flush_out(s, now);
	if (s->boot_urc_at && now >= s->boot_urc_at) {
		s->boot_urc_at = 0;
		out(s, "RDY", true);
		out(s, "+CFUN: 1", true);
		out(s, "+CPIN: READY", true);
		out(s, "Call Ready", true);
		flush_out(s, now);
	}
	if (s->transparent && s->pluses == 3 && now - s->plus_last >= s->guard_ms) {
		s->transparent = false;
		s->pluses = 0;
		s->escapes++;
		out(s, "OK", true);
		flush_out(s, now + s->delay_ms);
	}
}

int64_t sim900sim_next_event(const struct sim900sim *s)
{
	int64_t t = INT64_MAX;

	if (s->nq)
		t = s->q[0].at;
	if (s->boot_urc_at && s->boot_urc_at < t)
		t = s->boot_urc_at;
	if (s->transparent && s->pluses == 3 && s->plus_last + s->guard_ms < t)
		t = s->plus_last + s->guard_ms;
	return t;
}

void sim900sim_input(struct sim900sim *s, const void *buf, size_t len)
{
	tty_bytes(s, buf, len, now_ms(s));
}

int sim900sim_run(struct sim900sim *s, int ctl, int ctl_out)
{
	char cbuf[512];
	size_t clen = 0;

	for (;;) {
		struct pollfd p[3];
		int np = 0, timeout = 1000, ti = -1, ci = -1, ni = -1;
		int64_t now, next;
		uint8_t buf[4096];

		sim900sim_due(s);
		now = now_ms(s);
		next = sim900sim_next_event(s);
		if (next - now < timeout)
			timeout = (int)(next - now);
		if (timeout < 0)
			timeout = 0;
		p[np] = (struct pollfd){ .fd = s->tty, .events = POLLIN };
		ti = np++;
		if (s->tcp >= 0) {
			p[np] = (struct pollfd){ .fd = s->tcp, .events = POLLIN };
			ni = np++;
		}
		if (ctl >= 0) {
			p[np] = (struct pollfd){ .fd = ctl, .events = POLLIN };
			ci = np++;
		}
		if (poll(p, (nfds_t)np, timeout) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		now = now_ms(s);
		if (p[ti].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = read(s->tty, buf, sizeof(buf));

			if (r > 0)
				tty_bytes(s, buf, (size_t)r, now);
			else if (r == 0 || (errno != EAGAIN && errno != EINTR && errno != EIO))
				return -1;
			else if (errno == EIO)
				usleep(20000);	/* pty without a slave open yet */
		}
		if (ni >= 0 && s->tcp >= 0 && (p[ni].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t r = recv(s->tcp, buf, sizeof(buf), 0);

			if (r <= 0) {
				/* the server closed: in transparent mode the modem says so */
				lost(s, "CLOSED", false);
			} else if (s->transparent && s->powered && !s->hung) {
				write_tty(s, buf, (size_t)r);
				s->bytes_down += (unsigned long)r;
			}
			/* in command mode the data is dropped (not buffered) */
		}
		if (ci >= 0 && (p[ci].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t r = read(ctl, cbuf + clen, sizeof(cbuf) - 1 - clen);
			char *nl;

			if (r <= 0)
				return 0;
			clen += (size_t)r;
			cbuf[clen] = '\0';
			while ((nl = strchr(cbuf, '\n'))) {
				char reply[256];

				*nl = '\0';
				sim900sim_control(s, cbuf, reply, sizeof(reply));
				strcat(reply, "\n");
				if (write(ctl_out, reply, strlen(reply)) < 0)
					return 0;
				memmove(cbuf, nl + 1, clen - (size_t)(nl + 1 - cbuf) + 1);
				clen -= (size_t)(nl + 1 - cbuf);
			}
			if (clen == sizeof(cbuf) - 1)
				clen = 0;
		}
	}
}

int sim900sim_spawn(int master, int close_in_child, int *ctl)
{
	int sv[2], pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		struct sim900sim sim;

		close(sv[0]);
		if (close_in_child >= 0)
			close(close_in_child);
		sim900sim_init(&sim, master, 100);
		_exit(sim900sim_run(&sim, sv[1], sv[1]) ? 1 : 0);
	}
	close(master);
	close(sv[1]);
	*ctl = sv[0];
	return pid;
}
