/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Replacing a file atomically and durably: the new contents go to a
 * temporary file beside it (same directory, so the same file system),
 * which gets its mode and owner, is written, synced and renamed over the
 * old one; then the directory is synced, so that the rename itself
 * survives a power cut. A reader sees the old file or the new one, never
 * a part; after a crash at any point the old file is intact (at worst a
 * stray NAME.XXXXXX temporary is left beside it).
 *
 *	struct atomic_file a;
 *
 *	r = atomic_file_open_stream(&a, path, 0640);
 *	if (r)
 *		return r;		// -errno, a.step says what failed
 *	fprintf(a.f, ...);		// or atomic_file_open() and _write()
 *	r = atomic_file_commit(&a, 0);	// or atomic_file_abort(&a)
 *
 * Every function returns 0 or a negative errno and leaves in a.step the
 * step that failed, for messages ("%s: %s: %s", path, a.step, strerror(-r)).
 * After a failure of open or commit nothing is left to clean up.
 */
#ifndef GM_ATOMIC_FILE_H
#define GM_ATOMIC_FILE_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* atomic_file_commit(): never replace an existing file (-EEXIST instead) */
#define ATOMIC_FILE_NO_REPLACE	1u

struct atomic_file {
	char path[PATH_MAX];
	char tmp[PATH_MAX];
	int fd;
	FILE *f;		/* atomic_file_open_stream(), else NULL */
	int err;		/* first error of a write, kept for commit */
	const char *step;	/* what failed, for messages */
};

/* A temporary file beside @path, mode @mode (umask not applied). */
int atomic_file_open(struct atomic_file *a, const char *path, mode_t mode);

/* The same with a stdio stream on it in @a->f; its errors surface at commit. */
int atomic_file_open_stream(struct atomic_file *a, const char *path, mode_t mode);

/* Give the temporary file an owner (before commit). */
int atomic_file_chown(struct atomic_file *a, uid_t uid, gid_t gid);

/* Write all of @buf (short writes and EINTR retried). */
int atomic_file_write(struct atomic_file *a, const void *buf, size_t len);

/*
 * Sync, close and rename the temporary file over the path (with
 * ATOMIC_FILE_NO_REPLACE: link it there, -EEXIST if the path exists), then
 * sync the directory. On any failure the temporary file is removed; if
 * only the directory sync failed, the new file is in place (-errno all
 * the same, step "syncing the directory").
 */
int atomic_file_commit(struct atomic_file *a, unsigned int flags);

/* Give up: close and remove the temporary file. */
void atomic_file_abort(struct atomic_file *a);

#endif /* GM_ATOMIC_FILE_H */
