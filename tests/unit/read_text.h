/* SPDX-License-Identifier: GPL-2.0 */
/* Test helper: a small file's text, NUL-terminated. */
#ifndef GM_TEST_READ_TEXT_H
#define GM_TEST_READ_TEXT_H

#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

/* Up to size - 1 bytes of path into buf; the length, or -1 (buf then ""). */
static inline int read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

#endif
