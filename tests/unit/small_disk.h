/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test helper: a disk that fills and frees. A small tmpfs mounted in the
 * calling process's own mount namespace (the kselftest harness runs each
 * test in a child process, so nothing leaks to the host), and a filler
 * file that takes every byte left.
 */
#ifndef GM_TEST_SMALL_DISK_H
#define GM_TEST_SMALL_DISK_H

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

/* 0: a tmpfs of `size` (mount option, e.g. "128k") is mounted on dir; else why not (skip). */
static inline const char *small_disk_mount(const char *dir, const char *size)
{
	char opt[32];

	if (geteuid() != 0)
		return "needs root for a tmpfs mount";
	if (unshare(CLONE_NEWNS) || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return "no mount namespaces here";
	snprintf(opt, sizeof(opt), "size=%s", size);
	return mount("none", dir, "tmpfs", 0, opt) ? "cannot mount a tmpfs" : NULL;
}

/* Fill the filesystem of path to the last byte (4 KiB blocks, then bytes). */
static inline void small_disk_fill(const char *path)
{
	static char block[4096];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	while (fd >= 0 && write(fd, block, sizeof(block)) == (ssize_t)sizeof(block))
		;
	while (fd >= 0 && write(fd, block, 1) == 1)
		;
	if (fd >= 0)
		close(fd);
}

#endif
