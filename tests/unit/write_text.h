/* SPDX-License-Identifier: GPL-2.0 */
/* Test helper: a text (a config file, say) written to a new temporary file. */
#ifndef GM_TEST_WRITE_TEXT_H
#define GM_TEST_WRITE_TEXT_H

#include <stdio.h>
#include <unistd.h>

/*
 * text into a new file named after the mkstemp() template path (the name
 * is left in path). 0, or -1 when it could not be made or written whole
 * (nothing is then left behind).
 */
static inline int write_temp_text(char *path, const char *text)
{
	int fd = mkstemp(path);
	FILE *f;
	int bad;

	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(path);
		return -1;
	}
	bad = fputs(text, f) == EOF;
	bad |= fclose(f) != 0;
	if (bad)
		unlink(path);
	return bad ? -1 : 0;
}

#endif
