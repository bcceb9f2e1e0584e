// SPDX-License-Identifier: GPL-2.0
/* SMS through a SIM900 in text mode (notice_sms.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "notice_sms.h"

/* ---- text: UTF-8 to IRA characters of the GSM 7-bit default alphabet ---- */

/* U+00C0..U+00FF without their accents */
static const char latin1[] = "AAAAAAACEEEEIIIIDNOOOOOxOUUUUYTsaaaaaaaceeeeiiiidnooooo/ouuuuyty";

/* One code point of s (advanced), or -1 for a malformed sequence (one byte skipped). */
static long utf8_next(const unsigned char **s)
{
	const unsigned char *p = *s;
	unsigned n;
	long cp;

	if (p[0] < 0x80) {
		*s = p + 1;
		return p[0];
	}
	if ((p[0] & 0xe0) == 0xc0) {
		n = 1;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 2;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 3;
		cp = p[0] & 0x07;
	} else {
		*s = p + 1;
		return -1;
	}
	for (unsigned i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			*s = p + 1;
			return -1;
		}
		cp = cp << 6 | (p[i] & 0x3f);
	}
	*s = p + n + 1;
	return cp;
}

/* What the modem is given for code point cp. */
static const char *ira_of(long cp, char one[2])
{
	one[1] = '\0';
	if (cp == '`') {
		one[0] = '\'';		/* not in the GSM alphabet */
	} else if (cp == '\t' || cp == 0xa0) {
		one[0] = ' ';
	} else if (cp == '\n' || (cp >= 0x20 && cp < 0x7f)) {
		one[0] = (char)cp;
	} else if (cp >= 0xc0 && cp <= 0xff) {
		one[0] = latin1[cp - 0xc0];
	} else if (cp == 0x20ac) {
		return "EUR";
	} else if (cp == 0xa3) {
		return "GBP";
	} else if (cp == 0x2013 || cp == 0x2014 || cp == 0x2212) {
		one[0] = '-';
	} else if (cp == 0x2018 || cp == 0x2019) {
		one[0] = '\'';
	} else if (cp == 0x201c || cp == 0x201d) {
		one[0] = '"';
	} else if (cp == 0x2026) {
		return "...";
	} else if (cp == '\r') {
		return "";
	} else {
		one[0] = '?';
	}
	return one;
}

unsigned sms_septets(const char *ira)
{
	unsigned n = 0;

	for (; *ira; ira++)
		n += strchr("^{}\\[~]|", *ira) ? 2 : 1;
	return n;
}

/* Bytes of s that fit in cap septets, ending at a space or newline if one is in reach. */
static size_t fit(const char *s, unsigned cap, bool *all)
{
	size_t i = 0, brk = 0;
	unsigned used = 0;

	while (s[i]) {
		unsigned c = strchr("^{}\\[~]|", s[i]) ? 2 : 1;

		if (used + c > cap)
			break;
		used += c;
		i++;
		if (s[i] == ' ' || s[i] == '\n')
			brk = i;
	}
	*all = !s[i];
	if (*all || !brk || brk < i / 2)
		return i;
	return brk;
}

static const char *skip_space(const char *s)
{
	while (*s == ' ' || *s == '\n')
		s++;
	return s;
}

void sms_compose(const char *utf8, unsigned max_parts, struct sms_parts *out)
{
	size_t cap = strlen(utf8) * 3 + 1, len = 0;
	char *t = malloc(cap), one[2];
	const unsigned char *s = (const unsigned char *)utf8;
	const char *rest;
	unsigned k = 0, n;
	bool all;

	memset(out, 0, sizeof(*out));
	if (max_parts < 1)
		max_parts = 1;
	if (max_parts > SMS_PARTS_MAX)
		max_parts = SMS_PARTS_MAX;
	if (!t)
		return;
	while (*s) {
		const char *r = ira_of(utf8_next(&s), one);
		size_t rl = strlen(r);

		memcpy(t + len, r, rl);	/* at most 3 bytes per input byte */
		len += rl;
	}
	t[len] = '\0';
	/* trailing white space costs septets and says nothing */
	while (len && (t[len - 1] == ' ' || t[len - 1] == '\n'))
		t[--len] = '\0';
	rest = skip_space(t);
	if (sms_septets(rest) <= SMS_SEPTETS) {
		snprintf(out->part[0], sizeof(out->part[0]), "%s", rest);
		out->n = 1;
		free(t);
		return;
	}
	/* how many parts of 154 septets after "(k/n) " */
	for (n = 0; *rest && n <= max_parts; n++)
		rest = skip_space(rest + fit(rest, SMS_SEPTETS - 6, &all));
	if (n > max_parts)
		n = max_parts;
	out->n = n;
	rest = skip_space(t);
	for (k = 0; k < n; k++) {
		bool last = k + 1 == n;
		unsigned room = n == 1 ? SMS_SEPTETS : SMS_SEPTETS - 6;
		size_t b = fit(rest, room, &all);
		int pre = n == 1 ? 0 : snprintf(out->part[k], sizeof(out->part[k]), "(%u/%u) ",
						k + 1, n);

		if (last && !all) {
			out->truncated = true;
			b = fit(rest, room - 3, &all);
			while (b && (rest[b - 1] == ' ' || rest[b - 1] == '\n'))
				b--;
			snprintf(out->part[k] + pre, sizeof(out->part[k]) - (size_t)pre, "%.*s...",
				 (int)b, rest);
		} else {
			size_t e = b;

			while (e && (rest[e - 1] == ' ' || rest[e - 1] == '\n'))
				e--;
			snprintf(out->part[k] + pre, sizeof(out->part[k]) - (size_t)pre, "%.*s",
				 (int)e, rest);
		}
		rest = skip_space(rest + b);
	}
	free(t);
}

bool sms_number_ok(const char *number)
{
	size_t n = 0;

	if (*number == '+')
		number++;
	for (; *number; number++, n++)
		if (*number < '0' || *number > '9')
			return false;
	return n >= 3 && n <= 20;
}

/* ---- the modem ---- */

struct modem {
	int fd;
	char buf[1024];
	size_t len;
	int mr;
	int code;		/* +CMS/+CME ERROR code */
};

enum answer { A_OK, A_ERROR, A_CMS, A_PROMPT, A_TIMEOUT, A_IO };

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int put(struct modem *m, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(m->fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { m->fd, POLLOUT, 0 };

			poll(&p, 1, 100);
			continue;
		}
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Read until a final answer (or the "> " prompt if want_prompt) within
 * timeout_ms. Echoed command lines and unsolicited codes are skipped.
 */
static enum answer wait_answer(struct modem *m, int timeout_ms, bool want_prompt)
{
	int64_t end = mono_ms() + timeout_ms;

	for (;;) {
		char *nl;

		while ((nl = memchr(m->buf, '\n', m->len))) {
			size_t ll = (size_t)(nl - m->buf) + 1;
			char line[sizeof(m->buf)];
			size_t k = ll - 1;

			memcpy(line, m->buf, k);
			if (k && line[k - 1] == '\r')
				k--;
			line[k] = '\0';
			memmove(m->buf, m->buf + ll, m->len - ll);
			m->len -= ll;
			if (!strcmp(line, "OK"))
				return A_OK;
			if (!strcmp(line, "ERROR"))
				return A_ERROR;
			if (!strncmp(line, "+CMS ERROR:", 11) || !strncmp(line, "+CME ERROR:", 11)) {
				m->code = atoi(line + 11);
				return A_CMS;
			}
			if (!strncmp(line, "+CMGS:", 6))
				m->mr = atoi(line + 6);
		}
		if (want_prompt && m->len >= 2 && !memcmp(m->buf, "> ", 2)) {
			memmove(m->buf, m->buf + 2, m->len - 2);
			m->len -= 2;
			return A_PROMPT;
		}
		int64_t left = end - mono_ms();
		struct pollfd p = { m->fd, POLLIN, 0 };
		ssize_t r;

		if (left <= 0)
			return A_TIMEOUT;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return A_IO;
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (m->len == sizeof(m->buf))
			m->len = 0;	/* a line that long is noise */
		r = read(m->fd, m->buf + m->len, sizeof(m->buf) - m->len);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			return A_IO;
		m->len += (size_t)r;
	}
}

static const char *answer_name(const struct modem *m, enum answer a, char *t, size_t n)
{
	switch (a) {
	case A_OK:
		return "OK";
	case A_ERROR:
		return "ERROR";
	case A_CMS:
		snprintf(t, n, "+CMS ERROR: %d", m->code);
		return t;
	case A_PROMPT:
		return "the prompt";
	case A_TIMEOUT:
		return "no answer";
	default:
		return "the serial line failed";
	}
}

/* Numbers the network will never take, or a message it will never carry. */
static bool cms_permanent(int code)
{
	static const int perm[] = { 1, 8, 10, 21, 28, 29, 50, 96, 302, 304, 305, 325 };

	for (size_t i = 0; i < sizeof(perm) / sizeof(perm[0]); i++)
		if (perm[i] == code)
			return true;
	return false;
}

static speed_t speed_of(uint32_t baud)
{
	switch (baud) {
	case 1200: return B1200;
	case 2400: return B2400;
	case 4800: return B4800;
	case 9600: return B9600;
	case 19200: return B19200;
	case 38400: return B38400;
	case 57600: return B57600;
	default: return B115200;
	}
}

static int open_line(const char *device, uint32_t baud)
{
	int fd = open(device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	struct termios t;

	if (fd < 0)
		return -1;
	if (!tcgetattr(fd, &t)) {
		cfmakeraw(&t);
		t.c_cflag |= CLOCAL | CREAD;
		cfsetispeed(&t, speed_of(baud));
		cfsetospeed(&t, speed_of(baud));
		tcsetattr(fd, TCSANOW, &t);
		tcflush(fd, TCIOFLUSH);
	}
	return fd;
}

/* A command answered OK, or the failure in err. */
static enum sms_result command(struct modem *m, const char *cmd, int timeout_ms, char *err,
			       size_t errlen)
{
	char t[32];
	enum answer a;

	if (put(m, cmd, strlen(cmd)) || put(m, "\r", 1)) {
		snprintf(err, errlen, "%s: the serial line failed", cmd);
		return SMS_TEMPORARY;
	}
	a = wait_answer(m, timeout_ms, false);
	if (a == A_OK)
		return SMS_OK;
	snprintf(err, errlen, "%s answered %s", cmd, answer_name(m, a, t, sizeof(t)));
	return SMS_TEMPORARY;
}

enum sms_result sms_send(const char *device, uint32_t baud, uint32_t timeout_s,
			 const char *number, const struct sms_parts *p, unsigned first,
			 const struct sms_hooks *h, char *err, size_t errlen)
{
	struct modem m = { .fd = open_line(device, baud) };
	enum sms_result rc = SMS_OK;
	char cmd[64], t[32];
	int tries;

	if (m.fd < 0) {
		snprintf(err, errlen, "%s: %s", device, strerror(errno));
		return SMS_TEMPORARY;
	}
	if (!sms_number_ok(number)) {
		snprintf(err, errlen, "'%s' is not a phone number", number);
		close(m.fd);
		return SMS_PERMANENT;
	}
	/* wake it (autobauding modems need a few ATs), no echo, text mode, IRA */
	for (tries = 0; tries < 3; tries++)
		if (command(&m, "AT", 2000, err, errlen) == SMS_OK)
			break;
	if (tries == 3 || command(&m, "ATE0", 2000, err, errlen) ||
	    command(&m, "AT+CMGF=1", 5000, err, errlen) ||
	    command(&m, "AT+CSCS=\"IRA\"", 5000, err, errlen)) {
		close(m.fd);
		return SMS_TEMPORARY;
	}
	for (unsigned k = first; k < p->n && rc == SMS_OK; k++) {
		enum answer a;

		snprintf(cmd, sizeof(cmd), "AT+CMGS=\"%s\",%d\r", number, number[0] == '+' ? 145 : 129);
		if (put(&m, cmd, strlen(cmd))) {
			snprintf(err, errlen, "AT+CMGS: the serial line failed");
			rc = SMS_TEMPORARY;
			break;
		}
		a = wait_answer(&m, 10000, true);
		if (a != A_PROMPT) {
			snprintf(err, errlen, "AT+CMGS answered %s instead of the prompt",
				 answer_name(&m, a, t, sizeof(t)));
			rc = a == A_CMS && cms_permanent(m.code) ? SMS_PERMANENT : SMS_TEMPORARY;
			break;
		}
		if (put(&m, p->part[k], strlen(p->part[k]))) {
			snprintf(err, errlen, "part %u: the serial line failed", k + 1);
			rc = SMS_TEMPORARY;
			break;
		}
		if (h && h->handing && h->handing(h->ctx, k)) {
			put(&m, "\x1b", 1);	/* ESC: not sent */
			wait_answer(&m, 2000, false);
			snprintf(err, errlen, "part %u: not handed to the modem (no record)", k + 1);
			rc = SMS_TEMPORARY;
			break;
		}
		m.mr = -1;
		if (put(&m, "\x1a", 1)) {
			snprintf(err, errlen, "part %u: the serial line failed at Ctrl-Z", k + 1);
			rc = SMS_TEMPORARY;
			break;
		}
		a = wait_answer(&m, (int)timeout_s * 1000, false);
		if (a != A_OK || m.mr < 0) {
			snprintf(err, errlen, "part %u of %u: AT+CMGS answered %s", k + 1, p->n,
				 a == A_OK ? "OK without +CMGS" : answer_name(&m, a, t, sizeof(t)));
			rc = a == A_CMS && cms_permanent(m.code) ? SMS_PERMANENT : SMS_TEMPORARY;
			break;
		}
		if (h && h->sent)
			h->sent(h->ctx, k, m.mr);
	}
	close(m.fd);
	return rc;
}
