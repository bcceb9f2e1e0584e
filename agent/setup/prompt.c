// SPDX-License-Identifier: GPL-2.0
/* gridmeter-setup's line-based dialogue (prompt.h). */
#include "prompt.h"
#include "report.h"
#include "setup.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ct_calib.h"
#include "gmproto.h"
#include "parse.h"

void prompt_init(struct prompt *p, FILE *in, FILE *out, bool yes)
{
	const char *term = getenv("TERM");

	p->in = in;
	p->out = out;
	p->yes = yes;
	p->max_tries = 5;
	p->color = isatty(fileno(out)) && term && term[0] && strcmp(term, "dumb") && !getenv("NO_COLOR");
}

const char *prompt_status(const struct prompt *p, const char *status)
{
	if (!p->color)
		return status;
	if (!strcmp(status, "PASS"))
		return "\033[32mPASS\033[0m";
	if (!strcmp(status, "FAIL"))
		return "\033[1;31mFAIL\033[0m";
	return status;
}

/* One line without its end (\n, \r\n or \r of a serial console): 0 or -ECANCELED at EOF. */
static int read_line(struct prompt *p, char *buf, size_t len)
{
	size_t n = 0;
	int c;

	while ((c = getc(p->in)) != EOF && c != '\n') {
		if (n + 1 < len)
			buf[n++] = (char)c;
	}
	/* Ctrl-C, a closed session: the read was interrupted */
	if (setup_interrupted())
		return -ECANCELED;
	if (c == EOF && !n)
		return -ECANCELED;
	while (n && (buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = 0;
	/* piped answers are not echoed by a terminal: show them in the transcript */
	if (!isatty(fileno(p->in)))
		fprintf(p->out, "%s\n", buf);
	return 0;
}

int prompt_ask(struct prompt *p, const char *question, const char *def, prompt_parse_fn parse,
	       void *out)
{
	char line[256], why[200];
	const char *a;

	for (unsigned t = 0; t < p->max_tries; t++) {
		bool show = def && def[0];	/* "" : Enter answers nothing, the question says so */

		size_t ql = strlen(question);

		/* a question ending in a newline takes its answer on the next line */
		fprintf(p->out, "%s%s%s%s%s", question, show ? " [" : "", show ? def : "", show ? "]" : "",
			ql && question[ql - 1] == '\n' && !show ? "" : " ");
		if (p->yes) {
			if (!def) {
				fprintf(p->out, "\n");
				return -ECANCELED;
			}
			fprintf(p->out, "%s\n", def);
		}
		fflush(p->out);
		if (!p->yes && read_line(p, line, sizeof(line))) {
			fprintf(p->out, "\n(%s)\n", setup_interrupted() ? "interrupted" : "end of input");
			return -ECANCELED;
		}
		a = p->yes ? def : line;
		while (*a == ' ' || *a == '\t')
			a++;
		if (!*a && def)
			a = def;
		why[0] = 0;
		if (!*a && !def)
			snprintf(why, sizeof(why), "an answer is needed");
		else if (!parse(a, out, why, sizeof(why)))
			return 0;
		{
			char msg[400];

			snprintf(msg, sizeof(msg), "'%.60s': %s. Please answer again.", a,
				 why[0] ? why : "not understood");
			report_wrap(p->out, "  ", 4, msg);
		}
		if (p->yes)
			return -ECANCELED;
	}
	fprintf(p->out, "  giving up after %u answers\n", p->max_tries);
	return -ECANCELED;
}

int prompt_yesno(struct prompt *p, const char *question, bool def, bool *out)
{
	char q[300];

	snprintf(q, sizeof(q), "%s (y/n)", question);
	return prompt_ask(p, q, def ? "y" : "n", parse_answer_yesno, out);
}

static int parse_any(const char *a, void *out, char *why, size_t whylen)
{
	(void)a;
	(void)out;
	(void)why;
	(void)whylen;
	return 0;
}

int prompt_enter(struct prompt *p, const char *what)
{
	char q[300];

	snprintf(q, sizeof(q), "%s, then press Enter", what);
	return prompt_ask(p, q, "", parse_any, NULL);
}

int parse_answer_yesno(const char *a, void *out, char *why, size_t whylen)
{
	static const char *const yes[] = { "y", "yes", "Y", "YES", "Yes" };
	static const char *const no[] = { "n", "no", "N", "NO", "No" };

	for (size_t k = 0; k < 5; k++) {
		if (!strcmp(a, yes[k]) || !strcmp(a, no[k])) {
			*(bool *)out = !strcmp(a, yes[k]);
			return 0;
		}
	}
	snprintf(why, whylen, "type y or n");
	return -EINVAL;
}

int parse_answer_quantity(const char *a, void *out, char *why, size_t whylen)
{
	struct quantity *q = out;
	char buf[64], lo[CT_CALIB_NUM_LEN], hi[CT_CALIB_NUM_LEN];
	size_t n;
	int64_t v;

	if (strlcpy_chk(buf, a, sizeof(buf))) {
		snprintf(why, whylen, "too long");
		return -EINVAL;
	}
	n = strlen(buf);
	/* an optional unit suffix: "230.4 V", "5.2A" */
	if (q->unit && n >= strlen(q->unit) && !strcasecmp(buf + n - strlen(q->unit), q->unit)) {
		buf[n - strlen(q->unit)] = 0;
		strtrim(buf);
	}
	for (char *c = buf; *c; c++)
		if (*c == ',') {
			snprintf(why, whylen, "use a decimal point, not a comma");
			return -EINVAL;
		}
	ct_calib_format_units(q->min, 6, lo, sizeof(lo));
	ct_calib_format_units(q->max, 6, hi, sizeof(hi));
	/* trailing zeros of the range off: "50.000000" -> "50" */
	for (char *s = lo; s; s = s == lo ? hi : NULL) {
		char *e = s + strlen(s) - 1;

		while (*e == '0')
			*e-- = 0;
		if (*e == '.')
			*e = 0;
	}
	if (buf[0] == '+' || ct_calib_parse_units(buf, 6, &v)) {
		snprintf(why, whylen, "type a number in %s, e.g. 230.4", q->unit ? q->unit : "units");
		return -EINVAL;
	}
	if (v < q->min || v > q->max) {
		snprintf(why, whylen, "out of range %s..%s %s", lo, hi, q->unit ? q->unit : "");
		return -EINVAL;
	}
	q->micro = v;
	return 0;
}

int parse_answer_power(const char *a, void *out, char *why, size_t whylen)
{
	struct power_answer *pw = out;

	pw->resistive = pw->skip = false;
	if (!strcasecmp(a, "r") || !strcasecmp(a, "resistive") || !strcasecmp(a, "pf1")) {
		pw->resistive = true;
		return 0;
	}
	if (!strcmp(a, "-")) {
		pw->skip = true;
		return 0;
	}
	if (parse_answer_quantity(a, &pw->w, why, whylen)) {
		size_t n = strlen(why);

		snprintf(why + n, whylen - n, "; or r for a resistive load (PF 1), - to keep the phase");
		return -EINVAL;
	}
	return 0;
}

int parse_answer_meter_id(const char *a, void *out, char *why, size_t whylen)
{
	if (parse_u32(a, 1, 65534, out)) {
		snprintf(why, whylen, "the meter id is a number 1..65534 (the town server's number "
			 "for this meter)");
		return -EINVAL;
	}
	return 0;
}

int parse_answer_hexkey(const char *a, void *out, char *why, size_t whylen)
{
	size_t n = strlen(a);

	for (size_t k = 0; k < n; k++)
		if (!isxdigit((unsigned char)a[k])) {
			snprintf(why, whylen, "'%c' at position %zu is not a hex digit", a[k], k + 1);
			return -EINVAL;
		}
	if (n != 2 * GMP_KEY_LEN) {
		snprintf(why, whylen, "%zu hex digits, a public key has %d ('townctl pubkey' "
			 "on the town server)", n, 2 * GMP_KEY_LEN);
		return -EINVAL;
	}
	if (gmp_hex_decode(a, out, GMP_KEY_LEN)) {
		snprintf(why, whylen, "not a hex key");
		return -EINVAL;
	}
	return 0;
}

int parse_answer_text(const char *a, void *out, char *why, size_t whylen)
{
	size_t n = strlen(a);

	if (n > 80) {
		snprintf(why, whylen, "at most 80 characters");
		return -EINVAL;
	}
	for (size_t k = 0; k < n; k++)
		if ((unsigned char)a[k] < 0x20 || a[k] == '"' || a[k] == '\\' || a[k] == 0x7f) {
			snprintf(why, whylen, "no quotes, backslashes or control characters");
			return -EINVAL;
		}
	memcpy(out, a, n + 1);
	return 0;
}
