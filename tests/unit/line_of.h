/* SPDX-License-Identifier: GPL-2.0 */
/* Test helper: where a line is in a config text, for exact "file:line" checks. */
#ifndef GM_TEST_LINE_OF_H
#define GM_TEST_LINE_OF_H

#include <string.h>

/* 1-based number of the line of text that is exactly `line`; 0 unless exactly one is. */
static inline unsigned int line_of(const char *text, const char *line)
{
	size_t len = strlen(line);
	unsigned int n = 1, found = 0, hits = 0;

	for (const char *s = text; *s; n++) {
		const char *nl = strchr(s, '\n');
		size_t l = nl ? (size_t)(nl - s) : strlen(s);

		if (l == len && !memcmp(s, line, len)) {
			found = n;
			hits++;
		}
		if (!nl)
			break;
		s = nl + 1;
	}
	return hits == 1 ? found : 0;
}

#endif
