// SPDX-License-Identifier: GPL-2.0
/* The client's crash-safe outbox of records for the server (outbox.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gm_frame.h"
#include "outbox.h"

#define REC_MAGIC	0xa7
#define HDR_LEN		12
#define REC_BYTES_MAX	(OUTBOX_REC_MAX + OUTBOX_REC_OVERHEAD)
/* Segments never exceed OUTBOX_SEG_BYTES; anything longer is damage. */
#define SEG_READ_MAX	(OUTBOX_SEG_BYTES + REC_BYTES_MAX)
#define QDIR		"quarantine"
#define REBASE_MARK	"rebase"
#define MAX_RUNS	64

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

static void seg_name(const char *prefix, uint64_t first, char *buf, size_t n)
{
	snprintf(buf, n, "%s-%016" PRIx64 ".log", prefix, first);
}

/* "PREFIX-<16 hex>.log" exactly: its first seq, or 0. */
static uint64_t parse_name(const char *prefix, const char *name)
{
	char canon[48];
	uint64_t first;
	size_t pl = strlen(prefix);

	if (strncmp(name, prefix, pl) || name[pl] != '-' ||
	    sscanf(name + pl + 1, "%16" SCNx64, &first) != 1 || !first)
		return 0;
	seg_name(prefix, first, canon, sizeof(canon));
	return strcmp(canon, name) ? 0 : first;
}

static int64_t now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

/* ---- records ---------------------------------------------------------------- */

static size_t put_record(uint8_t *rec, uint64_t seq, const void *data, size_t len)
{
	rec[0] = REC_MAGIC;
	rec[1] = 0;
	put_le(rec + 2, len, 2);
	put_le(rec + 4, seq, 8);
	memcpy(rec + HDR_LEN, data, len);
	put_le(rec + HDR_LEN + len, gm_crc32c(rec, HDR_LEN + len), 4);
	return OUTBOX_REC_OVERHEAD + len;
}

/* A whole, intact record at buf[off..len): its seq and payload length. */
static bool record_at(const uint8_t *buf, size_t len, size_t off, uint64_t *seq, size_t *plen)
{
	const uint8_t *p = buf + off;
	size_t pl;

	if (len - off < OUTBOX_REC_OVERHEAD || p[0] != REC_MAGIC || p[1] != 0)
		return false;
	pl = (size_t)get_le(p + 2, 2);
	if (pl > OUTBOX_REC_MAX || len - off < OUTBOX_REC_OVERHEAD + pl)
		return false;
	if (gm_crc32c(p, HDR_LEN + pl) != (uint32_t)get_le(p + HDR_LEN + pl, 4))
		return false;
	*seq = get_le(p + 4, 8);
	*plen = pl;
	return true;
}

/* A stretch of consecutive records [off, end) holding seqs first..last. */
struct run {
	size_t off, end;
	uint64_t first, last;
};

/*
 * The valid runs of a segment image that should start at seq first. After
 * damage, the scan resynchronises on the next intact record with a higher
 * seq. Returns the number of runs; *clean is true when one run (or none,
 * for an empty file) covers every byte.
 */
static size_t scan_seg(const uint8_t *buf, size_t len, uint64_t first, struct run *runs,
		       bool *clean)
{
	size_t n = 0, off = 0;
	uint64_t expect = first, seq;
	size_t pl;

	while (off < len && n < MAX_RUNS) {
		struct run *r = &runs[n];

		if (!record_at(buf, len, off, &seq, &pl) || seq != expect) {
			/* damage: look for the next intact record further on */
			size_t k;

			for (k = off + 1; k < len; k++)
				if (record_at(buf, len, k, &seq, &pl) && seq >= expect)
					break;
			if (k >= len)
				break;
			off = k;
			expect = seq;
		}
		r->off = off;
		r->first = expect;
		while (off < len && record_at(buf, len, off, &seq, &pl) && seq == expect) {
			off += OUTBOX_REC_OVERHEAD + pl;
			expect++;
		}
		r->end = off;
		r->last = expect - 1;
		n++;
	}
	*clean = len == 0 || (n == 1 && runs[0].off == 0 && runs[0].end == len &&
			      runs[0].first == first);
	return n;
}

/* Call cb for each record of a clean segment image with seq >= from. */
static int walk_seg(const uint8_t *buf, size_t len, uint64_t from,
		    int (*cb)(void *, uint64_t, const uint8_t *, size_t), void *ctx,
		    uint64_t *last)
{
	size_t off = 0, pl;
	uint64_t seq;
	int rc = 0;

	*last = 0;
	while (off < len && record_at(buf, len, off, &seq, &pl)) {
		if (seq >= from && (rc = cb(ctx, seq, buf + off + HDR_LEN, pl)))
			return rc;
		*last = seq;
		off += OUTBOX_REC_OVERHEAD + pl;
	}
	return off == len ? 0 : -EIO;
}

/* ---- files -------------------------------------------------------------------- */

static int read_file(int dirfd, const char *name, uint8_t *buf, size_t cap, size_t *len,
		     int64_t *mtime)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	size_t got = 0;

	if (fd < 0)
		return -errno;
	if (mtime && !fstat(fd, &sb))
		*mtime = sb.st_mtim.tv_sec;
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

/* Write a whole file under a temporary name, fsync, rename to name. */
static int write_file(int dirfd, const char *name, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t done = 0;
	int fd, rc = 0;

	fd = openat(dirfd, "write.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (done < len) {
		ssize_t w = write(fd, p + done, len - done);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		done += (size_t)w;
	}
	if (!rc && fsync(fd))
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && renameat(dirfd, "write.tmp", dirfd, name))
		rc = -errno;
	if (rc)
		unlinkat(dirfd, "write.tmp", 0);
	return rc;
}

static int write_state(struct outbox *o, uint64_t acked, uint64_t cmd)
{
	char buf[80];
	int n, rc;

	n = snprintf(buf, sizeof(buf), "acked %" PRIu64 "\ncmd %" PRIu64 "\n", acked, cmd);
	rc = write_file(o->dirfd, "state", buf, (size_t)n);
	if (!rc && fsync(o->dirfd))
		rc = -errno;
	if (!rc) {
		o->acked = acked;
		o->cmd_floor = cmd;
	}
	return rc;
}

/* "acked N / cmd N"; a version-1 file ("acked N / ctr N") is read as cmd 0. */
static int read_state(struct outbox *o, bool *found, char *err, size_t errlen)
{
	char buf[96], canon[96], kind[8], tail;
	size_t len = 0;
	unsigned long long a, c;
	int rc = read_file(o->dirfd, "state", (uint8_t *)buf, sizeof(buf) - 1, &len, NULL);

	*found = false;
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		snprintf(err, errlen, "%s/state: %s", o->dir, strerror(-rc));
		return -1;
	}
	buf[len] = '\0';
	canon[0] = '\0';
	if (sscanf(buf, "acked %llu\n%3s %llu%c", &a, kind, &c, &tail) == 4 &&
	    (!strcmp(kind, "cmd") || !strcmp(kind, "ctr")))
		snprintf(canon, sizeof(canon), "acked %llu\n%s %llu\n", a, kind, c);
	if (strcmp(buf, canon)) {
		snprintf(err, errlen, "%s/state: not 'acked N' and 'cmd N' lines", o->dir);
		return -1;
	}
	o->acked = a;
	o->cmd_floor = strcmp(kind, "cmd") ? 0 : c;	/* ctr: a version-1 send counter */
	*found = true;
	return 0;
}

/* ---- the segment table ------------------------------------------------------------ */

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

static void seg_remove(struct outbox *o, size_t i)
{
	o->bytes -= o->seg[i].size;
	memmove(o->seg + i, o->seg + i + 1, (o->n_seg - i - 1) * sizeof(*o->seg));
	o->n_seg--;
}

/* Remove the oldest segment (file first, then the table entry). */
static int drop_oldest(struct outbox *o)
{
	char name[48];

	seg_name("seg", o->seg[0].first, name, sizeof(name));
	if (o->n_seg == 1 && o->fd >= 0) {
		close(o->fd);
		o->fd = -1;
	}
	if (unlinkat(o->dirfd, name, 0) && errno != ENOENT)
		return -errno;
	seg_remove(o, 0);
	return 0;
}

static void close_fd(struct outbox *o)
{
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
}

void outbox_close(struct outbox *o)
{
	close_fd(o);
	if (o->dirfd >= 0)
		close(o->dirfd);
	free(o->seg);
	memset(o, 0, sizeof(*o));
	o->fd = o->dirfd = -1;
}

/*
 * cb for every "PREFIX-<16 hex>.log" in the directory. The names are
 * collected first: cb may rename or remove files, and a directory changed
 * while it is read may skip entries.
 */
static int list_dir(struct outbox *o, const char *prefix,
		    int (*cb)(struct outbox *o, const char *name, uint64_t first))
{
	struct dirent *de;
	int dfd = dup(o->dirfd), rc = 0;
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	uint64_t *firsts = NULL;
	size_t n = 0, cap = 0;

	if (!d) {
		rc = -errno;
		if (dfd >= 0)
			close(dfd);
		return rc;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		uint64_t first = parse_name(prefix, de->d_name);

		if (!first)
			continue;
		if (n == cap) {
			uint64_t *p = realloc(firsts, (cap = cap ? 2 * cap : 64) * sizeof(*p));

			if (!p) {
				rc = -ENOMEM;
				break;
			}
			firsts = p;
		}
		firsts[n++] = first;
	}
	closedir(d);
	for (size_t i = 0; !rc && i < n; i++) {
		char name[48];

		seg_name(prefix, firsts[i], name, sizeof(name));
		rc = cb(o, name, firsts[i]);
	}
	free(firsts);
	return rc;
}

static int push_cb(struct outbox *o, const char *name, uint64_t first)
{
	(void)name;
	return seg_push(o, first);
}

static int unlink_cb(struct outbox *o, const char *name, uint64_t first)
{
	(void)first;
	return unlinkat(o->dirfd, name, 0) && errno != ENOENT ? -errno : 0;
}

static int rename_new_cb(struct outbox *o, const char *name, uint64_t first)
{
	char to[48];

	seg_name("seg", first, to, sizeof(to));
	return renameat(o->dirfd, name, o->dirfd, to) ? -errno : 0;
}

/*
 * A rebase (outbox_rebase) commits by writing the marker "delete" with the
 * list of the old segments; finish it: delete them, turn the marker into
 * "rename" (a renamed new segment may carry an old one's name: from then
 * on nothing is deleted), rename the new ones, remove the marker. Without
 * a marker, new-* files are the leftovers of a rebase that never committed.
 */
static int finish_rebase(struct outbox *o)
{
	static const char rename_mark[] = "rename\n";
	struct stat sb;
	char *buf;
	size_t len = 0;
	int rc;

	if (fstatat(o->dirfd, REBASE_MARK, &sb, 0))
		return errno == ENOENT ? list_dir(o, "new", unlink_cb) : -errno;
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf)
		return -ENOMEM;
	rc = read_file(o->dirfd, REBASE_MARK, (uint8_t *)buf, (size_t)sb.st_size, &len, NULL);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	if (!strncmp(buf, "delete\n", 7)) {
		for (char *line = buf + 7, *nl; *line; line = nl + 1) {
			nl = strchr(line, '\n');
			if (!nl)
				break;
			*nl = '\0';
			if (parse_name("seg", line) && unlinkat(o->dirfd, line, 0) &&
			    errno != ENOENT) {
				free(buf);
				return -errno;
			}
		}
		if (fsync(o->dirfd) ||
		    write_file(o->dirfd, REBASE_MARK, rename_mark, sizeof(rename_mark) - 1) ||
		    fsync(o->dirfd)) {
			free(buf);
			return -EIO;
		}
	} else if (strcmp(buf, rename_mark)) {
		free(buf);
		return -EINVAL;		/* not a marker this code wrote */
	}
	free(buf);
	rc = list_dir(o, "new", rename_new_cb);
	if (rc || fsync(o->dirfd))
		return rc ? rc : -errno;
	if (unlinkat(o->dirfd, REBASE_MARK, 0) && errno != ENOENT)
		return -errno;
	return fsync(o->dirfd) ? -errno : 0;
}

/* Keep a damaged segment for inspection: a hard link in quarantine/. */
static int quarantine_link(struct outbox *o, const char *name, char *qname, size_t qlen)
{
	int qfd;

	if (mkdirat(o->dirfd, QDIR, 0700) && errno != EEXIST)
		return -errno;
	qfd = openat(o->dirfd, QDIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (qfd < 0)
		return -errno;
	for (int k = 0; k < 1000; k++) {
		if (k)
			snprintf(qname, qlen, "%s.%d", name, k);
		else
			snprintf(qname, qlen, "%s", name);
		if (!linkat(o->dirfd, name, qfd, qname, 0)) {
			fsync(qfd);
			close(qfd);
			return 0;
		}
		if (errno != EEXIST)
			break;
	}
	close(qfd);
	return -errno;
}

/*
 * Segment i is damaged: keep it in quarantine/, write its valid runs back
 * as segments of their own, and replace its table entry by theirs.
 */
static int quarantine(struct outbox *o, size_t i, const uint8_t *buf, const struct run *runs,
		      size_t n_runs, size_t bad_off)
{
	struct outbox_seg s = o->seg[i];
	char name[48], qname[64], kept[96] = "nothing kept";
	bool replaced = false;
	int rc;

	seg_name("seg", s.first, name, sizeof(name));
	rc = quarantine_link(o, name, qname, sizeof(qname));
	if (rc)
		return rc;
	seg_remove(o, i);
	for (size_t k = 0; k < n_runs; k++) {
		char rname[48];

		seg_name("seg", runs[k].first, rname, sizeof(rname));
		rc = write_file(o->dirfd, rname, buf + runs[k].off, runs[k].end - runs[k].off);
		if (rc)
			return rc;
		replaced |= runs[k].first == s.first;
		rc = seg_push(o, runs[k].first);
		if (rc)
			return rc;
		o->seg[o->n_seg - 1].last = runs[k].last;
		o->seg[o->n_seg - 1].size = runs[k].end - runs[k].off;
		o->seg[o->n_seg - 1].mtime = s.mtime;
		o->bytes += runs[k].end - runs[k].off;
	}
	if (!replaced && unlinkat(o->dirfd, name, 0) && errno != ENOENT)
		return -errno;
	if (fsync(o->dirfd))
		return -errno;
	qsort(o->seg, o->n_seg, sizeof(*o->seg), seg_cmp);
	o->quarantined++;
	if (n_runs)
		snprintf(kept, sizeof(kept), "records %" PRIu64 "..%" PRIu64 " kept in %zu segment(s)",
			 runs[0].first, runs[n_runs - 1].last, n_runs);
	snprintf(o->note, sizeof(o->note), "%s/%s: corrupt record at offset %zu: kept as "
		 QDIR "/%s; %s", o->dir, name, bad_off, qname, kept);
	return 0;
}

/*
 * Read and check every segment: clean ones as they are, a torn tail of the
 * last one cut off, anything else quarantined; overlapping segments (which
 * only damage can make) quarantined whole.
 */
static int load_segments(struct outbox *o, char *err, size_t errlen)
{
	uint8_t *buf = malloc(SEG_READ_MAX + 1);
	struct run runs[MAX_RUNS];
	int rc;

	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	o->n_seg = 0;
	o->bytes = 0;
	rc = list_dir(o, "seg", push_cb);
	if (rc) {
		snprintf(err, errlen, "%s: %s", o->dir, strerror(-rc));
		goto fail;
	}
	if (o->n_seg)
		qsort(o->seg, o->n_seg, sizeof(*o->seg), seg_cmp);
	for (size_t i = 0; i < o->n_seg; i++) {
		struct outbox_seg *s = &o->seg[i];
		char name[48];
		size_t len = 0, n_runs, tail;
		bool clean, last = i + 1 == o->n_seg;

		seg_name("seg", s->first, name, sizeof(name));
		rc = read_file(o->dirfd, name, buf, SEG_READ_MAX + 1, &len, &s->mtime);
		if (rc) {
			snprintf(err, errlen, "%s/%s: %s", o->dir, name, strerror(-rc));
			goto fail;
		}
		n_runs = scan_seg(buf, len, s->first, runs, &clean);
		tail = n_runs ? runs[n_runs - 1].end : 0;
		if (!clean && last && len <= SEG_READ_MAX && len - tail < REC_BYTES_MAX &&
		    (n_runs == 0 || (n_runs == 1 && runs[0].off == 0 &&
				     runs[0].first == s->first))) {
			/* a torn tail of the last segment: cut it off, durably */
			int fd = openat(o->dirfd, name, O_WRONLY | O_CLOEXEC);

			if (fd < 0 || ftruncate(fd, (off_t)tail) || fsync(fd)) {
				snprintf(err, errlen, "%s/%s: cannot truncate: %s", o->dir, name,
					 strerror(errno));
				if (fd >= 0)
					close(fd);
				goto fail;
			}
			close(fd);
			len = tail;
			clean = true;
		}
		if (clean && i > 0 && n_runs && s->first <= o->seg[i - 1].last) {
			/* overlaps the segment before: keep it out of the way */
			n_runs = 0;
			clean = false;
		}
		if (!clean) {
			size_t bad = n_runs && runs[0].off == 0 ? runs[0].end : 0;

			rc = quarantine(o, i, buf, runs, n_runs, bad);
			if (rc) {
				snprintf(err, errlen, "%s/%s: quarantine: %s", o->dir, name,
					 strerror(-rc));
				goto fail;
			}
			i = (size_t)-1;	/* the table changed: check it again */
			continue;
		}
		if (!len && (!last || (i > 0 && s->first <= o->seg[i - 1].last))) {
			/* an empty leftover (a segment created, nothing appended) */
			if (unlinkat(o->dirfd, name, 0) && errno != ENOENT) {
				snprintf(err, errlen, "%s/%s: %s", o->dir, name, strerror(errno));
				goto fail;
			}
			seg_remove(o, i);
			i--;
			continue;
		}
		s->last = n_runs ? runs[0].last : s->first - 1;
		s->size = len;
	}
	o->bytes = 0;
	for (size_t i = 0; i < o->n_seg; i++)
		o->bytes += o->seg[i].size;
	free(buf);
	return 0;
fail:
	free(buf);
	return -1;
}

int outbox_open(struct outbox *o, const char *dir, uint64_t max_bytes, char *err,
		size_t errlen)
{
	bool state_found;
	int rc;

	memset(o, 0, sizeof(*o));
	o->fd = o->dirfd = -1;
	o->retain_s = OUTBOX_RETAIN_S;
	o->new_run = true;
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
	if (read_state(o, &state_found, err, errlen))
		goto fail;
	unlinkat(o->dirfd, "write.tmp", 0);
	unlinkat(o->dirfd, "state.tmp", 0);
	rc = finish_rebase(o);
	if (rc) {
		snprintf(err, errlen, "%s: finishing a renumbering: %s", dir, strerror(-rc));
		goto fail;
	}
	if (load_segments(o, err, errlen))
		goto fail;
	o->created = !state_found && !o->n_seg && !o->quarantined;
	o->next = o->acked + 1;
	if (o->n_seg && o->seg[o->n_seg - 1].last + 1 > o->next)
		o->next = o->seg[o->n_seg - 1].last + 1;
	rc = outbox_expire(o, now_real());
	if (rc) {
		snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
		goto fail;
	}
	fsync(o->dirfd);
	return 0;
fail:
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

uint64_t outbox_oldest(const struct outbox *o)
{
	for (size_t i = 0; i < o->n_seg; i++)
		if (o->seg[i].last >= o->seg[i].first)
			return o->seg[i].first;
	return o->next;
}

static int new_segment(struct outbox *o, uint64_t first)
{
	char name[48];
	int fd, rc;

	seg_name("seg", first, name, sizeof(name));
	fd = openat(o->dirfd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/*
	 * An empty leftover of the same name is harmless: we append from 0.
	 * Reserve the whole segment now, so that a disk filling up fails here,
	 * before a record is half written, rather than in the middle of one.
	 */
	if (ftruncate(fd, 0))
		goto undo;
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, OUTBOX_SEG_BYTES) &&
	    errno != EOPNOTSUPP && errno != ENOSYS)
		goto undo;
	if (fsync(o->dirfd))
		goto undo;
	rc = seg_push(o, first);
	if (rc) {
		close(fd);
		unlinkat(o->dirfd, name, 0);
		return rc;
	}
	o->seg[o->n_seg - 1].mtime = now_real();
	close_fd(o);
	o->fd = fd;
	return 0;
undo:
	rc = -errno;
	close(fd);
	unlinkat(o->dirfd, name, 0);
	return rc;
}

int outbox_append(struct outbox *o, uint64_t seq, const void *data, size_t len)
{
	uint8_t rec[REC_BYTES_MAX];
	size_t n = OUTBOX_REC_OVERHEAD + len, done = 0;
	struct outbox_seg *cur;
	int rc;

	if (seq != o->next || len > OUTBOX_REC_MAX)
		return -EINVAL;
	if (!o->n_seg || o->fd < 0 || o->new_run ||
	    o->seg[o->n_seg - 1].size + n > OUTBOX_SEG_BYTES ||
	    o->seg[o->n_seg - 1].last + 1 != seq) {
		/* deferred records of the segment left are durable before the next one */
		if (o->defer_sync && o->fd >= 0 && fdatasync(o->fd))
			return -errno;
		rc = new_segment(o, seq);
		if (rc)
			return rc;
		o->new_run = false;
	}
	/* disk budget: drop whole oldest segments (acknowledged ones come first) */
	while (o->bytes + n > o->max_bytes && o->n_seg > 1) {
		const struct outbox_seg *s = &o->seg[0];

		if (s->last >= s->first && s->last > o->acked)
			o->dropped += s->last - (s->first > o->acked ? s->first : o->acked + 1) + 1;
		rc = drop_oldest(o);
		if (rc)
			return rc;
		fsync(o->dirfd);
	}
	put_record(rec, seq, data, len);
	while (done < n) {
		ssize_t w = write(o->fd, rec + done, n - done);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto undo;
		}
		done += (size_t)w;
	}
	if (!o->defer_sync && fdatasync(o->fd))
		goto undo;
	cur = &o->seg[o->n_seg - 1];
	cur->last = seq;
	cur->size += n;
	cur->mtime = now_real();
	o->bytes += n;
	o->next++;
	return 0;
undo:
	rc = -errno;
	/* leave no partial record behind; if even that fails, the next open cuts it */
	if (ftruncate(o->fd, (off_t)o->seg[o->n_seg - 1].size) || fdatasync(o->fd)) {
		/* reopened as the torn tail of the last segment */
	}
	return rc;
}

int outbox_sync(struct outbox *o)
{
	if (o->fd >= 0 && fdatasync(o->fd))
		return -errno;
	return 0;
}

int outbox_expire(struct outbox *o, int64_t now)
{
	bool gone = false;

	while (o->n_seg) {
		const struct outbox_seg *s = &o->seg[0];
		int rc;

		if (s->last > o->acked || s->mtime > now - o->retain_s)
			break;
		rc = drop_oldest(o);
		if (rc)
			return rc;
		o->expired++;
		gone = true;
	}
	return gone && fsync(o->dirfd) ? -errno : 0;
}

int outbox_ack(struct outbox *o, uint64_t upto)
{
	int rc;

	if (upto <= o->acked)
		return 0;
	rc = write_state(o, upto, o->cmd_floor);
	if (rc)
		return rc;
	/* the caller's records above next (its volatile tail) are settled too */
	if (upto >= o->next) {
		o->next = upto + 1;
		o->new_run = true;
	}
	return outbox_expire(o, now_real());
}

int outbox_rewind(struct outbox *o, uint64_t upto)
{
	if (upto >= o->acked)
		return 0;
	return write_state(o, upto, o->cmd_floor);
}

int outbox_set_cmd(struct outbox *o, uint64_t floor)
{
	if (floor == o->cmd_floor)
		return 0;
	return write_state(o, o->acked, floor);
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
		char name[48];
		uint64_t last;
		size_t len;
		int rc;

		if (s->last < from || s->last < s->first)
			continue;
		seg_name("seg", s->first, name, sizeof(name));
		rc = read_file(o->dirfd, name, buf, SEG_READ_MAX, &len, NULL);
		if (rc) {
			free(buf);
			return rc;
		}
		if (len > s->size)
			len = (size_t)s->size;
		cbrc = walk_seg(buf, len, from, cb, ctx, &last);
		if (cbrc < 0 || (!cbrc && last != s->last)) {
			free(buf);
			return -EIO;	/* changed under us */
		}
	}
	free(buf);
	return cbrc;
}

/* ---- renumbering ------------------------------------------------------------------ */

struct rebase_out {
	struct outbox *o;
	uint8_t *buf;		/* the new segment being built */
	size_t len;
	uint64_t first, next;	/* its first seq, the next expected */
	uint64_t from, delta;
	uint8_t *keep;		/* records below from of the segment being read */
	size_t keep_len;
	outbox_recode_fn recode;
	void *ctx;
	int err;
};

static int flush_new(struct rebase_out *r)
{
	char name[48];
	int rc;

	if (!r->len)
		return 0;
	seg_name("new", r->first, name, sizeof(name));
	rc = write_file(r->o->dirfd, name, r->buf, r->len);
	r->len = 0;
	return rc;
}

static int rebase_cb(void *ctx, uint64_t seq, const uint8_t *data, size_t len)
{
	struct rebase_out *r = ctx;
	uint8_t payload[OUTBOX_REC_MAX];
	size_t plen = sizeof(payload);

	if (seq < r->from) {
		r->keep_len += put_record(r->keep + r->keep_len, seq, data, len);
		return 0;
	}
	if (r->recode(r->ctx, seq, seq + r->delta, data, len, payload, &plen) ||
	    plen > OUTBOX_REC_MAX) {
		r->err = -EINVAL;
		return 1;
	}
	if (r->len && (r->len + OUTBOX_REC_OVERHEAD + plen > OUTBOX_SEG_BYTES ||
		       seq + r->delta != r->next)) {
		r->err = flush_new(r);
		if (r->err)
			return 1;
	}
	if (!r->len)
		r->first = seq + r->delta;
	r->len += put_record(r->buf + r->len, seq + r->delta, payload, plen);
	r->next = seq + r->delta + 1;
	return 0;
}

int outbox_rebase(struct outbox *o, uint64_t from, uint64_t delta, outbox_recode_fn recode,
		  void *ctx)
{
	struct rebase_out r = { .o = o, .from = from, .delta = delta, .recode = recode,
				.ctx = ctx };
	uint8_t *in = malloc(SEG_READ_MAX);
	char *mark = NULL;
	size_t mark_len = 0;
	int rc = 0;

	r.buf = malloc(SEG_READ_MAX);
	r.keep = malloc(SEG_READ_MAX);
	mark = malloc(o->n_seg * 48 + 16);
	if (mark)
		mark_len = (size_t)sprintf(mark, "delete\n");
	if (!in || !r.buf || !r.keep || !mark) {
		rc = -ENOMEM;
		goto out;
	}
	if (!delta)
		goto out;
	/* 1. every affected segment written anew under new-* names */
	for (size_t i = 0; i < o->n_seg && !rc; i++) {
		struct outbox_seg *s = &o->seg[i];
		char name[48];
		uint64_t last;
		size_t len;

		if (s->last < from || s->last < s->first)
			continue;
		seg_name("seg", s->first, name, sizeof(name));
		rc = read_file(o->dirfd, name, in, SEG_READ_MAX, &len, NULL);
		if (rc)
			break;
		if (len > s->size)
			len = (size_t)s->size;
		r.keep_len = 0;
		rc = walk_seg(in, len, 0, rebase_cb, &r, &last);
		if (rc > 0 || r.err)
			rc = r.err ? r.err : -EIO;
		if (!rc && r.keep_len) {
			char kname[48];

			seg_name("new", s->first, kname, sizeof(kname));
			rc = write_file(o->dirfd, kname, r.keep, r.keep_len);
		}
		mark_len += (size_t)sprintf(mark + mark_len, "%s\n", name);
	}
	if (!rc)
		rc = flush_new(&r);
	if (!rc && fsync(o->dirfd))
		rc = -errno;
	if (rc) {
		list_dir(o, "new", unlink_cb);
		goto out;
	}
	/* 2. the commit point: the list of the segments the new ones replace */
	rc = write_file(o->dirfd, REBASE_MARK, mark, mark_len);
	if (!rc && fsync(o->dirfd))
		rc = -errno;
	if (rc) {
		list_dir(o, "new", unlink_cb);
		goto out;
	}
	/* 3. the switch, as an open after a crash would finish it */
	close_fd(o);
	rc = finish_rebase(o);
	if (!rc) {
		char err[256];

		if (load_segments(o, err, sizeof(err)))
			rc = -EIO;
	}
	o->next += delta;
	if (o->n_seg && o->seg[o->n_seg - 1].last + 1 > o->next)
		o->next = o->seg[o->n_seg - 1].last + 1;
	o->new_run = true;
out:
	free(in);
	free(r.buf);
	free(r.keep);
	free(mark);
	return rc;
}
