// SPDX-License-Identifier: GPL-2.0
/* The meter's crash-safe outbox of unacknowledged messages (outbox.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gm_frame.h"
#include "outbox.h"

#define REC_MAGIC	0xa7
#define HDR_LEN		12
#define SEG_READ_MAX	(OUTBOX_SEG_BYTES + OUTBOX_REC_MAX + OUTBOX_REC_OVERHEAD)

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void seg_name(uint64_t first, char *buf, size_t n)
{
	snprintf(buf, n, "seg-%016" PRIx64 ".log", first);
}

/*
 * Parse records of a segment image. Returns the byte length of the valid
 * prefix; *last gets the last seq (first - 1 if none).
 */
static size_t parse_seg(const uint8_t *buf, size_t len, uint64_t first, uint64_t *last,
			int (*cb)(void *, uint64_t, const uint8_t *, size_t), void *ctx,
			uint64_t from, int *cbrc)
{
	size_t off = 0;
	uint64_t expect = first;

	while (len - off >= OUTBOX_REC_OVERHEAD) {
		const uint8_t *p = buf + off;
		size_t plen = (size_t)get_le(p + 2, 2);
		uint64_t seq = get_le(p + 4, 8);

		if (p[0] != REC_MAGIC || p[1] != 0 || plen > OUTBOX_REC_MAX ||
		    len - off < OUTBOX_REC_OVERHEAD + plen || seq != expect)
			break;
		if (gm_crc32c(p, HDR_LEN + plen) != (uint32_t)get_le(p + HDR_LEN + plen, 4))
			break;
		if (cb && seq >= from && !*cbrc)
			*cbrc = cb(ctx, seq, p + HDR_LEN, plen);
		off += OUTBOX_REC_OVERHEAD + plen;
		expect++;
	}
	*last = expect - 1;
	return off;
}

static int read_file(int dirfd, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t r = read(fd, buf + got, cap - got);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			close(fd);
			return (int)r;
		}
		if (r == 0 || (got += (size_t)r) == cap)
			break;
	}
	close(fd);
	*len = got;
	return 0;
}

static int write_state(struct outbox *o, uint64_t acked, uint64_t ctr)
{
	char buf[80];
	int fd, n, rc = 0;

	n = snprintf(buf, sizeof(buf), "acked %" PRIu64 "\nctr %" PRIu64 "\n", acked, ctr);
	fd = openat(o->dirfd, "state.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)n) != n || fsync(fd))
		rc = errno ? -errno : -EIO;
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && renameat(o->dirfd, "state.tmp", o->dirfd, "state"))
		rc = -errno;
	if (!rc && fsync(o->dirfd))
		rc = -errno;
	if (!rc) {
		o->acked = acked;
		o->ctr_ceiling = ctr;
	}
	return rc;
}

static int read_state(struct outbox *o, char *err, size_t errlen)
{
	char buf[96], canon[96], tail;
	size_t len = 0;
	unsigned long long a, c;
	int rc = read_file(o->dirfd, "state", (uint8_t *)buf, sizeof(buf) - 1, &len);

	if (rc == -ENOENT)
		return 0;
	if (rc) {
		snprintf(err, errlen, "%s/state: %s", o->dir, strerror(-rc));
		return -1;
	}
	buf[len] = '\0';
	if (sscanf(buf, "acked %llu\nctr %llu%c", &a, &c, &tail) == 3)
		snprintf(canon, sizeof(canon), "acked %llu\nctr %llu\n", a, c);
	else
		canon[0] = '\0';
	if (strcmp(buf, canon)) {
		snprintf(err, errlen, "%s/state: not 'acked N' and 'ctr N' lines", o->dir);
		return -1;
	}
	o->acked = a;
	o->ctr_ceiling = c;
	return 0;
}

static int seg_cmp(const void *a, const void *b)
{
	const struct outbox_seg *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

static int seg_push(struct outbox *o, uint64_t first)
{
	if (o->n_seg == o->cap_seg) {
		size_t cap = o->cap_seg ? o->cap_seg * 2 : 16;
		struct outbox_seg *s = realloc(o->seg, cap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		o->seg = s;
		o->cap_seg = cap;
	}
	o->seg[o->n_seg++] = (struct outbox_seg){ .first = first, .last = first - 1 };
	return 0;
}

/* Remove the oldest segment (file first, then the table entry). */
static int drop_oldest(struct outbox *o)
{
	char name[40];

	seg_name(o->seg[0].first, name, sizeof(name));
	if (o->n_seg == 1 && o->fd >= 0) {
		close(o->fd);
		o->fd = -1;
	}
	if (unlinkat(o->dirfd, name, 0) && errno != ENOENT)
		return -errno;
	o->bytes -= o->seg[0].size;
	memmove(o->seg, o->seg + 1, (o->n_seg - 1) * sizeof(*o->seg));
	o->n_seg--;
	return 0;
}

void outbox_close(struct outbox *o)
{
	if (o->fd >= 0)
		close(o->fd);
	if (o->dirfd >= 0)
		close(o->dirfd);
	free(o->seg);
	memset(o, 0, sizeof(*o));
	o->fd = o->dirfd = -1;
}

int outbox_open(struct outbox *o, const char *dir, uint64_t max_bytes, char *err,
		size_t errlen)
{
	uint8_t *buf = NULL;
	DIR *d;
	struct dirent *de;
	int dfd;

	memset(o, 0, sizeof(*o));
	o->fd = o->dirfd = -1;
	if (strlen(dir) >= sizeof(o->dir)) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -1;
	}
	strcpy(o->dir, dir);
	if (max_bytes < 2 * OUTBOX_SEG_BYTES) {
		snprintf(err, errlen, "%s: disk budget %" PRIu64 " below the minimum %d", dir,
			 max_bytes, 2 * OUTBOX_SEG_BYTES);
		return -1;
	}
	o->max_bytes = max_bytes;
	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	o->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (o->dirfd < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (read_state(o, err, errlen))
		goto fail;
	dfd = dup(o->dirfd);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		goto fail;
	}
	while ((de = readdir(d))) {
		uint64_t first;
		char name[40], tail;

		if (sscanf(de->d_name, "seg-%16" SCNx64 ".lo%c", &first, &tail) != 2 ||
		    tail != 'g' || first == 0)
			continue;
		seg_name(first, name, sizeof(name));
		if (strcmp(name, de->d_name))
			continue;
		if (seg_push(o, first)) {
			closedir(d);
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	closedir(d);
	unlinkat(o->dirfd, "state.tmp", 0);
	if (o->n_seg)
		qsort(o->seg, o->n_seg, sizeof(*o->seg), seg_cmp);
	buf = malloc(SEG_READ_MAX);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < o->n_seg; i++) {
		struct outbox_seg *s = &o->seg[i];
		char name[40];
		size_t len, valid;
		int cbrc = 0, rc;

		seg_name(s->first, name, sizeof(name));
		rc = read_file(o->dirfd, name, buf, SEG_READ_MAX, &len);
		if (rc) {
			snprintf(err, errlen, "%s/%s: %s", dir, name, strerror(-rc));
			goto fail;
		}
		valid = parse_seg(buf, len, s->first, &s->last, NULL, NULL, 0, &cbrc);
		if (i > 0 && s->first != o->seg[i - 1].last + 1) {
			snprintf(err, errlen, "%s/%s: starts at %" PRIu64 ", expected %" PRIu64,
				 dir, name, s->first, o->seg[i - 1].last + 1);
			goto fail;
		}
		if (valid < len) {
			int fd;

			if (i + 1 < o->n_seg) {
				snprintf(err, errlen, "%s/%s: corrupt record at offset %zu", dir,
					 name, valid);
				goto fail;
			}
			/* torn tail of the last segment: cut it off, durably */
			fd = openat(o->dirfd, name, O_WRONLY | O_CLOEXEC);
			if (fd < 0 || ftruncate(fd, (off_t)valid) || fsync(fd)) {
				snprintf(err, errlen, "%s/%s: cannot truncate: %s", dir, name,
					 strerror(errno));
				if (fd >= 0)
					close(fd);
				goto fail;
			}
			close(fd);
		}
		s->size = valid;
		o->bytes += valid;
	}
	free(buf);
	buf = NULL;
	o->next = o->acked + 1;
	if (o->n_seg && o->seg[o->n_seg - 1].last + 1 > o->next)
		o->next = o->seg[o->n_seg - 1].last + 1;
	/* segments acknowledged before a crash that left their files */
	while (o->n_seg && o->seg[0].last <= o->acked) {
		if (drop_oldest(o)) {
			snprintf(err, errlen, "%s: %s", dir, strerror(errno));
			goto fail;
		}
	}
	if (o->n_seg) {
		char name[40];

		seg_name(o->seg[o->n_seg - 1].first, name, sizeof(name));
		o->fd = openat(o->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (o->fd < 0) {
			snprintf(err, errlen, "%s/%s: %s", dir, name, strerror(errno));
			goto fail;
		}
	}
	fsync(o->dirfd);
	return 0;
fail:
	free(buf);
	outbox_close(o);
	return -1;
}

uint64_t outbox_first(const struct outbox *o)
{
	for (size_t i = 0; i < o->n_seg; i++) {
		const struct outbox_seg *s = &o->seg[i];

		if (s->last >= s->first && s->last > o->acked)
			return s->first > o->acked ? s->first : o->acked + 1;
	}
	return o->next;
}

static int new_segment(struct outbox *o, uint64_t first)
{
	char name[40];
	int fd, rc;

	seg_name(first, name, sizeof(name));
	fd = openat(o->dirfd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* an empty leftover of the same name is harmless: we append from 0 */
	if (ftruncate(fd, 0) || fsync(o->dirfd)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	rc = seg_push(o, first);
	if (rc) {
		close(fd);
		return rc;
	}
	if (o->fd >= 0)
		close(o->fd);
	o->fd = fd;
	return 0;
}

int outbox_append(struct outbox *o, uint64_t seq, const void *data, size_t len)
{
	uint8_t rec[OUTBOX_REC_MAX + OUTBOX_REC_OVERHEAD];
	size_t n = OUTBOX_REC_OVERHEAD + len, done = 0;
	struct outbox_seg *cur;
	int rc;

	if (seq != o->next || len > OUTBOX_REC_MAX)
		return -EINVAL;
	if (!o->n_seg || o->fd < 0 || o->seg[o->n_seg - 1].size + n > OUTBOX_SEG_BYTES) {
		rc = new_segment(o, seq);
		if (rc)
			return rc;
	}
	/* disk budget: drop whole oldest segments, never the one we append to */
	while (o->bytes + n > o->max_bytes && o->n_seg > 1) {
		const struct outbox_seg *s = &o->seg[0];

		if (s->last >= s->first && s->last > o->acked)
			o->dropped += s->last - (s->first > o->acked ? s->first : o->acked + 1) + 1;
		rc = drop_oldest(o);
		if (rc)
			return rc;
		fsync(o->dirfd);
	}
	rec[0] = REC_MAGIC;
	rec[1] = 0;
	put_le(rec + 2, len, 2);
	put_le(rec + 4, seq, 8);
	memcpy(rec + HDR_LEN, data, len);
	put_le(rec + HDR_LEN + len, gm_crc32c(rec, HDR_LEN + len), 4);
	while (done < n) {
		ssize_t w = write(o->fd, rec + done, n - done);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto undo;
		}
		done += (size_t)w;
	}
	if (fdatasync(o->fd))
		goto undo;
	cur = &o->seg[o->n_seg - 1];
	cur->last = seq;
	cur->size += n;
	o->bytes += n;
	o->next++;
	return 0;
undo:
	rc = -errno;
	/* leave no partial record behind: the next open would cut it anyway */
	if (ftruncate(o->fd, (off_t)o->seg[o->n_seg - 1].size)) {
		/* the torn record is cut off at the next open */
	}
	return rc;
}

int outbox_ack(struct outbox *o, uint64_t upto)
{
	int rc;

	if (upto <= o->acked)
		return 0;
	rc = write_state(o, upto, o->ctr_ceiling);
	if (rc)
		return rc;
	/*
	 * The server holds records we never wrote (our disk was replaced or
	 * wiped): continue above them, or new records would be taken for
	 * duplicates and discarded.
	 */
	if (upto >= o->next)
		o->next = upto + 1;
	/* whole segments acknowledged; the next append starts a fresh one */
	while (o->n_seg && o->seg[0].last <= upto) {
		rc = drop_oldest(o);
		if (rc)
			return rc;
	}
	if (o->n_seg == 0 && o->fd >= 0) {
		close(o->fd);
		o->fd = -1;
	}
	return fsync(o->dirfd) ? -errno : 0;
}

int outbox_for_each(struct outbox *o, uint64_t from,
		    int (*cb)(void *ctx, uint64_t seq, const uint8_t *data, size_t len),
		    void *ctx)
{
	uint8_t *buf = malloc(SEG_READ_MAX);
	int cbrc = 0;

	if (!buf)
		return -ENOMEM;
	if (from <= o->acked)
		from = o->acked + 1;
	for (size_t i = 0; i < o->n_seg && !cbrc; i++) {
		struct outbox_seg *s = &o->seg[i];
		char name[40];
		uint64_t last;
		size_t len;
		int rc;

		if (s->last < from || s->last < s->first)
			continue;
		seg_name(s->first, name, sizeof(name));
		rc = read_file(o->dirfd, name, buf, SEG_READ_MAX, &len);
		if (rc) {
			free(buf);
			return rc;
		}
		if (len > s->size)
			len = (size_t)s->size;
		parse_seg(buf, len, s->first, &last, cb, ctx, from, &cbrc);
		if (!cbrc && last != s->last) {
			free(buf);
			return -EIO;	/* changed under us */
		}
	}
	free(buf);
	return cbrc;
}

int outbox_reserve_ctr(struct outbox *o, uint64_t ceiling)
{
	if (ceiling <= o->ctr_ceiling)
		return 0;
	return write_state(o, o->acked, ceiling);
}
