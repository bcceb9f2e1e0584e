/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gridmeter-setup's dialogue: plain lines on stdin/stdout, for a serial
 * console, SSH or TERM=dumb alike (no curses, no cursor movement, lines
 * under 80 columns). Every question shows its default in brackets or says
 * what to type; an answer that does not parse is asked again with the
 * reason; end of input (Ctrl-D, a closed pipe) makes every question return
 * -ECANCELED, and the caller abandons what it has not committed.
 *
 * The parsers are pure functions (the unit tests call them directly):
 * each returns 0 or -EINVAL with the reason in why.
 */
#ifndef GM_SETUP_PROMPT_H
#define GM_SETUP_PROMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct prompt {
	FILE *in, *out;
	bool yes;		/* --yes: every question takes its default, nothing is read */
	bool color;		/* stdout is a terminal that is not TERM=dumb */
	unsigned max_tries;	/* bad answers before giving up (-ECANCELED) */
};

/* in/out, colour only if out is a terminal, TERM is set and not dumb, and NO_COLOR unset. */
void prompt_init(struct prompt *p, FILE *in, FILE *out, bool yes);

typedef int (*prompt_parse_fn)(const char *answer, void *out, char *why, size_t whylen);

/*
 * Ask question; def (NULL: none, an answer is needed) is shown as
 * "[def]" and taken for an empty line (and with --yes). The answer goes
 * through parse into out; a bad one is asked again with the reason.
 * 0, or -ECANCELED (end of input, too many bad answers, --yes without a
 * default).
 */
int prompt_ask(struct prompt *p, const char *question, const char *def, prompt_parse_fn parse,
	       void *out);
/* Yes/no, default def. */
int prompt_yesno(struct prompt *p, const char *question, bool def, bool *out);
/* "Press Enter when ..." (with --yes: returns at once). */
int prompt_enter(struct prompt *p, const char *what);

/* PASS / FAIL / SKIP, coloured when the terminal allows */
const char *prompt_status(const struct prompt *p, const char *status);

/* Parsers: out types in brackets. */
int parse_answer_yesno(const char *a, void *out, char *why, size_t whylen);		/* bool */
/* A decimal quantity as micro-units (int64_t), e.g. "230.4" -> 230400000; "V" or "A" suffix allowed. */
struct quantity {
	int64_t micro;		/* the answer, millionths */
	int64_t min, max;	/* accepted range, millionths */
	const char *unit;	/* "V", "A", "W": an optional suffix of the answer, and for messages */
};
int parse_answer_quantity(const char *a, void *out, char *why, size_t whylen);	/* struct quantity */
/* Active power in W, or r / resistive / pf1 for a resistive load: struct power_answer. */
struct power_answer {
	bool resistive;
	bool skip;		/* "-": keep the phase as it is */
	struct quantity w;
};
int parse_answer_power(const char *a, void *out, char *why, size_t whylen);
int parse_answer_meter_id(const char *a, void *out, char *why, size_t whylen);		/* uint32_t */
/* 64 hex digits (X25519 public key) -> uint8_t[32] */
int parse_answer_hexkey(const char *a, void *out, char *why, size_t whylen);
/* free text without control characters or double quotes, 1..80 chars (char[81]) */
int parse_answer_text(const char *a, void *out, char *why, size_t whylen);

#endif
