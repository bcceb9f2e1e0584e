// SPDX-License-Identifier: GPL-2.0
/* Replacing a file atomically and durably: see atomic_file.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"

static int fail(struct atomic_file *a, const char *step, int err)
{
	a->step = step;
	return -err;
}

int atomic_file_open(struct atomic_file *a, const char *path, mode_t mode)
{
	a->fd = -1;
	a->f = NULL;
	a->err = 0;
	a->step = "creating a temporary file beside it";
	a->tmp[0] = 0;
	if ((size_t)snprintf(a->path, sizeof(a->path), "%s", path) >= sizeof(a->path) ||
	    (size_t)snprintf(a->tmp, sizeof(a->tmp), "%s.XXXXXX", path) >= sizeof(a->tmp)) {
		a->tmp[0] = 0;
		return fail(a, "path too long", ENAMETOOLONG);
	}
	a->fd = mkostemp(a->tmp, O_CLOEXEC);	/* mode 0600 until fchmod */
	if (a->fd < 0) {
		int e = errno;

		a->tmp[0] = 0;
		return fail(a, "creating a temporary file beside it", e);
	}
	if (fchmod(a->fd, mode)) {
		int e = errno;

		atomic_file_abort(a);
		return fail(a, "setting the mode of a temporary file", e);
	}
	return 0;
}

int atomic_file_chown(struct atomic_file *a, uid_t uid, gid_t gid)
{
	if (fchown(a->fd, uid, gid))
		return fail(a, "setting the owner of a temporary file", errno);
	return 0;
}

int atomic_file_open_stream(struct atomic_file *a, const char *path, mode_t mode)
{
	int r = atomic_file_open(a, path, mode);

	if (r)
		return r;
	a->f = fdopen(a->fd, "w");
	if (!a->f) {
		int e = errno;

		atomic_file_abort(a);
		return fail(a, "opening a temporary file", e);
	}
	return 0;
}

int atomic_file_write(struct atomic_file *a, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len) {
		ssize_t w = write(a->fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (!a->err)
				a->err = w < 0 ? errno : EIO;
			return fail(a, "writing", a->err);
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int sync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, r = 0;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		r = -errno;
	close(fd);
	return r;
}

int atomic_file_commit(struct atomic_file *a, unsigned int flags)
{
	const char *step = "writing";
	int e = a->err, r;

	if (a->f && fflush(a->f) && !e)
		e = errno;
	if (a->f && ferror(a->f) && !e)
		e = EIO;
	if (!e && fsync(a->fd))
		e = errno, step = "syncing";
	if ((a->f ? fclose(a->f) : close(a->fd)) && !e)
		e = errno, step = "closing";
	a->f = NULL;
	a->fd = -1;
	if (!e) {
		step = "installing the new file";
		if ((flags & ATOMIC_FILE_NO_REPLACE) ? link(a->tmp, a->path) :
		    rename(a->tmp, a->path))
			e = errno;
	}
	if (e || (flags & ATOMIC_FILE_NO_REPLACE))
		unlink(a->tmp);
	a->tmp[0] = 0;
	if (e)
		return fail(a, step, e);
	r = sync_dir(a->path);
	if (r)
		return fail(a, "syncing the directory", -r);
	a->step = NULL;
	return 0;
}

void atomic_file_abort(struct atomic_file *a)
{
	if (a->f)
		fclose(a->f);
	else if (a->fd >= 0)
		close(a->fd);
	a->f = NULL;
	a->fd = -1;
	if (a->tmp[0])
		unlink(a->tmp);
	a->tmp[0] = 0;
}
