// SPDX-License-Identifier: GPL-2.0
/* Journal rate limiter (log_limit.h). */
#include "log_limit.h"

#include <stdio.h>
#include <string.h>

uint64_t log_limit_key(const char *line)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)line; *p; p++) {
		if (*p >= '0' && *p <= '9')
			continue;
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	return h ? h : 1;
}

static void summary(char *out, const struct log_limit_slot *s)
{
	snprintf(out, LOG_LIMIT_LINE, "%u similar line%s suppressed (last: %s)", s->suppressed,
		 s->suppressed == 1 ? "" : "s", s->sample);
}

static void clear_count(struct log_limit_slot *s)
{
	s->suppressed = 0;
	s->report = false;
	s->sample[0] = '\0';
}

/* A slot for a new kind: a free one, else the one whose window ends first. */
static struct log_limit_slot *take_slot(struct log_limit *l, int64_t now)
{
	struct log_limit_slot *best = NULL;

	for (unsigned int i = 0; i < LOG_LIMIT_SLOTS; i++) {
		struct log_limit_slot *s = &l->slot[i];

		if (!s->key || (now >= s->until && !s->suppressed))
			return s;
		if (!best || s->until < best->until)
			best = s;
	}
	if (best->suppressed) {
		/* given up while lines are held back: say so before anything else */
		summary(l->evicted, best);
		l->evicted_due = true;
		l->evicted_level = best->level;
		l->summaries++;
	}
	clear_count(best);
	return best;
}

void log_limit_feed(struct log_limit *l, int level, const char *line, int64_t now)
{
	int64_t window = l->window_ms ? l->window_ms : LOG_LIMIT_WINDOW_MS;
	uint64_t key = log_limit_key(line);
	struct log_limit_slot *s = NULL;

	l->cursor = 0;
	l->evicted_due = false;
	for (unsigned int i = 0; i < LOG_LIMIT_SLOTS; i++) {
		struct log_limit_slot *t = &l->slot[i];

		if (t->key && t->suppressed && now >= t->until)
			t->report = true;
		if (t->key == key)
			s = t;
	}
	if (s && now < s->until) {
		/* held back: counted, the last one kept for the summary */
		if (!s->suppressed || level < s->level)
			s->level = level;
		s->suppressed++;
		snprintf(s->sample, sizeof(s->sample), "%s", line);
		l->suppressed++;
		l->line = NULL;
		return;
	}
	if (!s) {
		s = take_slot(l, now);
		s->key = key;
		clear_count(s);
	}
	s->until = now + window;
	l->written++;
	l->line = line;
	l->line_level = level;
}

const char *log_limit_next(struct log_limit *l, int *level)
{
	const char *line;

	if (l->evicted_due) {
		l->evicted_due = false;
		*level = l->evicted_level;
		return l->evicted;
	}
	while (l->cursor < LOG_LIMIT_SLOTS) {
		struct log_limit_slot *s = &l->slot[l->cursor++];

		if (!s->report)
			continue;
		summary(l->out, s);
		*level = s->level;
		l->summaries++;
		clear_count(s);
		return l->out;
	}
	line = l->line;
	l->line = NULL;
	if (line)
		*level = l->line_level;
	return line;
}
