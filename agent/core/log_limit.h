/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Journal rate limiter (Documentation/meterd.md, "Journal"): a line whose
 * text, once its digits are removed, equals one written less than
 * window_ms ago is not written; it is counted, and when the window of that
 * text has ended one line "N similar lines suppressed (last: TEXT)" says
 * so. A modem retrying every few seconds, a link that flaps or a sensor
 * that keeps failing therefore costs each kind of line at most one journal
 * line (plus one summary) per window, whatever the rate.
 *
 * Pure: time is passed in (monotonic ms), nothing is written here. The
 * owner feeds each line and then drains the lines to write, in order:
 *
 *	log_limit_feed(&l, level, msg, now_ms);
 *	while ((out = log_limit_next(&l, &lvl)))
 *		write_to_journal(lvl, out);
 *
 * A zeroed struct log_limit is ready to use with the default window.
 * Texts are told apart by a 64-bit hash of the text without digits; at
 * most LOG_LIMIT_SLOTS kinds are tracked at a time (the one whose window
 * ends first is given up for a new kind, its count reported first).
 */
#ifndef GM_LOG_LIMIT_H
#define GM_LOG_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_LIMIT_WINDOW_MS	600000u	/* 10 min */
#define LOG_LIMIT_SLOTS		32
#define LOG_LIMIT_SAMPLE	200	/* the last suppressed line, kept for the summary */
#define LOG_LIMIT_LINE		(LOG_LIMIT_SAMPLE + 64)

struct log_limit_slot {
	uint64_t key;			/* hash of the text without digits; 0: free */
	int64_t until;			/* ms: lines of this kind are held back until then */
	uint32_t suppressed;		/* held back since the last one written */
	int level;			/* most severe (lowest) level held back */
	bool report;			/* its summary is due in the current drain */
	char sample[LOG_LIMIT_SAMPLE];	/* the last line held back */
};

struct log_limit {
	uint32_t window_ms;		/* 0: LOG_LIMIT_WINDOW_MS */
	uint64_t written, suppressed;	/* lines fed: written / held back (summaries not counted) */
	uint64_t summaries;		/* summary lines produced */
	/* the drain of the last feed */
	const char *line;		/* the fed line if it is to be written, else NULL */
	int line_level;
	unsigned int cursor;		/* next slot to look at for a due summary */
	bool evicted_due;		/* evicted[] is to be returned first */
	int evicted_level;
	char evicted[LOG_LIMIT_LINE];	/* summary of a kind given up for a new one */
	char out[LOG_LIMIT_LINE];	/* the summary being returned */
	struct log_limit_slot slot[LOG_LIMIT_SLOTS];
};

/* Hash of line with its digits removed (never 0): lines of one kind share it. */
uint64_t log_limit_key(const char *line);
/*
 * One journal line at now_ms (monotonic). line must stay valid until
 * log_limit_next() returned NULL.
 */
void log_limit_feed(struct log_limit *l, int level, const char *line, int64_t now_ms);
/*
 * The next line to write after log_limit_feed(), or NULL when done:
 * summaries of kinds whose window ended with lines held back (or that were
 * given up for a new kind), then the fed line unless it is held back.
 * *level gets the line's level (a summary: the most severe one held back).
 */
const char *log_limit_next(struct log_limit *l, int *level);

#endif
