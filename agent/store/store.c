// SPDX-License-Identifier: GPL-2.0
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32.h"

#define LOG_NAME	"meterd.log"
#define LOG_TMP		"meterd.log.tmp"
#define LIVE_NAME	"meterd.live"
#define MAX_LOG_READ	(64u << 20)

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static size_t build_record(struct store *s, void *out, uint16_t type, const void *payload,
			   uint32_t len)
{
	struct store_rec_hdr h = {
		.magic = STORE_MAGIC, .type = type, .len = len, .crc = 0, .seq = s->seq++,
	};
	uint32_t crc;

	crc = gm_crc32(0, &h, sizeof(h));
	crc = gm_crc32(crc, payload, len);
	h.crc = crc;
	memcpy(out, &h, sizeof(h));
	memcpy((char *)out + sizeof(h), payload, len);
	return sizeof(h) + len;
}

static bool record_valid(const struct store *s, const uint8_t *buf, size_t size, size_t off,
			 struct store_rec_hdr *h)
{
	struct store_rec_hdr c;
	uint32_t crc;

	if (size - off < sizeof(*h))
		return false;
	memcpy(h, buf + off, sizeof(*h));
	if (h->magic != STORE_MAGIC || h->reserved)
		return false;
	if (h->type == STORE_REC_SNAPSHOT) {
		if (h->len != s->snap_len)
			return false;
	} else if (h->type == STORE_REC_PROFILE) {
		if (h->len != sizeof(struct profile_entry))
			return false;
	} else {
		return false;
	}
	if (size - off - sizeof(*h) < h->len)
		return false;
	c = *h;
	c.crc = 0;
	crc = gm_crc32(0, &c, sizeof(c));
	crc = gm_crc32(crc, buf + off + sizeof(*h), h->len);
	return crc == h->crc;
}

int store_open(struct store *s, const char *state_dir, const char *runtime_dir, size_t snap_len)
{
	int rdir;

	memset(s, 0, sizeof(*s));
	s->dirfd = s->logfd = s->livefd = -1;
	if (snap_len > STORE_MAX_SNAPSHOT || !snap_len)
		return -EINVAL;
	s->snap_len = snap_len;
	s->compact_bytes = 1u << 20;
	s->seq = 1;
	s->dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0)
		return -errno;
	s->logfd = openat(s->dirfd, LOG_NAME, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (s->logfd < 0)
		goto fail;
	/* One writer only: a second meterd must not interleave records. (The
	 * lock is on the directory, which compaction's rename does not replace.) */
	if (flock(s->dirfd, LOCK_EX | LOCK_NB)) {
		if (errno == EWOULDBLOCK)
			errno = EBUSY;
		goto fail;
	}
	rdir = open(runtime_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rdir < 0)
		goto fail;
	s->livefd = openat(rdir, LIVE_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	close(rdir);
	if (s->livefd < 0)
		goto fail;
	return 0;
fail:
	{
		int e = -errno;

		store_close(s);
		return e;
	}
}

void store_close(struct store *s)
{
	if (s->livefd >= 0)
		close(s->livefd);
	if (s->logfd >= 0)
		close(s->logfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	s->livefd = s->logfd = s->dirfd = -1;
}

static int read_file(int fd, uint8_t **out, size_t *size)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;

	if (fstat(fd, &st))
		return -errno;
	if ((uint64_t)st.st_size > MAX_LOG_READ)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	*out = buf;
	*size = got;
	return 0;
}

/* Scan a buffer of records; the snapshot with the highest seq wins. */
static void scan(struct store *s, const uint8_t *buf, size_t size, void *snap, uint64_t *snap_seq,
		 bool *have, struct profile *prof, struct store_recovery *rec, bool count_bad)
{
	size_t off = 0;

	while (off < size) {
		struct store_rec_hdr h;

		if (record_valid(s, buf, size, off, &h)) {
			const uint8_t *payload = buf + off + sizeof(h);

			if (h.type == STORE_REC_SNAPSHOT && (!*have || h.seq > *snap_seq)) {
				memcpy(snap, payload, h.len);
				*snap_seq = h.seq;
				*have = true;
			} else if (h.type == STORE_REC_PROFILE && prof) {
				struct profile_entry e;

				memcpy(&e, payload, sizeof(e));
				if (!profile_push(prof, &e))
					rec->profile_entries++;
			}
			if (h.seq >= s->seq)
				s->seq = h.seq + 1;
			off += sizeof(h) + h.len;
			continue;
		}
		/* Bad region: resynchronise on the next valid record. */
		{
			size_t next = off + 1;

			while (next < size && !record_valid(s, buf, size, next, &h))
				next++;
			if (count_bad) {
				rec->corrupt_records++;
				rec->skipped_bytes += next - off;
			}
			off = next;
		}
	}
}

int store_recover(struct store *s, void *snap, struct profile *prof, struct store_recovery *rec)
{
	uint8_t *buf = NULL, *tmp;
	size_t size = 0;
	uint64_t log_seq = 0, live_seq = 0;
	bool have_log = false, have_live = false;
	struct store_recovery dummy;
	int r;

	memset(rec, 0, sizeof(*rec));
	tmp = malloc(s->snap_len);
	if (!tmp)
		return -ENOMEM;
	r = read_file(s->logfd, &buf, &size);
	if (r) {
		free(tmp);
		return r;
	}
	scan(s, buf, size, snap, &log_seq, &have_log, prof, rec, true);
	s->log_bytes = size;
	free(buf);

	/* Runtime slots: torn or stale slots are expected, not corruption. */
	r = read_file(s->livefd, &buf, &size);
	if (!r) {
		memset(&dummy, 0, sizeof(dummy));
		scan(s, buf, size, tmp, &live_seq, &have_live, NULL, &dummy, false);
		free(buf);
		if (have_live && (!have_log || live_seq > log_seq)) {
			memcpy(snap, tmp, s->snap_len);
			rec->from_live = true;
		}
	}
	free(tmp);
	rec->have_snapshot = have_log || have_live;
	rec->snapshot_seq = rec->from_live ? live_seq : log_seq;
	if (rec->corrupt_records) {
		r = store_compact(s, rec->have_snapshot ? snap : NULL, prof);
		if (r)
			return r;
		rec->rewritten = true;
	}
	return 0;
}

int store_live(struct store *s, const void *snap)
{
	uint8_t buf[sizeof(struct store_rec_hdr) + STORE_MAX_SNAPSHOT];
	size_t n = build_record(s, buf, STORE_REC_SNAPSHOT, snap, (uint32_t)s->snap_len);
	ssize_t w;

	s->live_slot ^= 1;
	w = pwrite(s->livefd, buf, n, (off_t)(s->live_slot * n));
	if (w < 0)
		return -errno;
	return (size_t)w == n ? 0 : -EIO;
}

int store_commit(struct store *s, const void *snap, const struct profile_entry *e, bool sync)
{
	uint8_t buf[2 * sizeof(struct store_rec_hdr) + STORE_MAX_SNAPSHOT + sizeof(*e)];
	size_t n = 0;
	int r;

	/* Profile first: a snapshot always follows the intervals it has closed. */
	if (e)
		n += build_record(s, buf, STORE_REC_PROFILE, e, sizeof(*e));
	if (snap)
		n += build_record(s, buf + n, STORE_REC_SNAPSHOT, snap, (uint32_t)s->snap_len);
	r = write_all(s->logfd, buf, n);
	if (r)
		return r;
	s->log_bytes += n;
	s->bytes_written += n;
	if (sync) {
		if (fdatasync(s->logfd))
			return -errno;
		s->fsyncs++;
	}
	return s->log_bytes > s->compact_bytes ? 1 : 0;
}

int store_compact(struct store *s, const void *snap, const struct profile *prof)
{
	uint8_t buf[sizeof(struct store_rec_hdr) + STORE_MAX_SNAPSHOT];
	uint64_t total = 0;
	int fd, r = 0;

	fd = openat(s->dirfd, LOG_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	for (size_t i = 0; prof && i < prof->count && !r; i++) {
		size_t n = build_record(s, buf, STORE_REC_PROFILE, profile_at(prof, i),
					sizeof(struct profile_entry));

		r = write_all(fd, buf, n);
		total += n;
	}
	if (!r && snap) {
		size_t n = build_record(s, buf, STORE_REC_SNAPSHOT, snap, (uint32_t)s->snap_len);

		r = write_all(fd, buf, n);
		total += n;
	}
	if (!r && fsync(fd))
		r = -errno;
	close(fd);
	if (!r && renameat(s->dirfd, LOG_TMP, s->dirfd, LOG_NAME))
		r = -errno;
	if (r) {
		unlinkat(s->dirfd, LOG_TMP, 0);
		return r;
	}
	fsync(s->dirfd);
	close(s->logfd);
	s->logfd = openat(s->dirfd, LOG_NAME, O_RDWR | O_APPEND | O_CLOEXEC);
	if (s->logfd < 0)
		return -errno;
	s->log_bytes = total;
	/* next compaction when the log has doubled (at least 1 MiB): amortised writes */
	s->compact_bytes = 2 * total > (1u << 20) ? 2 * total : (1u << 20);
	s->bytes_written += total;
	s->fsyncs++;
	return 0;
}

void store_recovery_describe(const struct store_recovery *rec, char *buf, size_t len)
{
	if (!rec->have_snapshot && !rec->corrupt_records) {
		snprintf(buf, len, "no stored state: starting with empty registers");
		return;
	}
	snprintf(buf, len, "%s snapshot #%llu from the %s file, %u profile intervals%s%s",
		 rec->have_snapshot ? "recovered" : "no valid",
		 (unsigned long long)rec->snapshot_seq, rec->from_live ? "runtime" : "persistent",
		 rec->profile_entries, rec->corrupt_records ? "; CORRUPTION: " : "",
		 rec->corrupt_records ? "" : "");
	if (rec->corrupt_records) {
		size_t l = strlen(buf);

		snprintf(buf + l, len - l, "%u bad region(s), %llu bytes skipped, log %s",
			 rec->corrupt_records, (unsigned long long)rec->skipped_bytes,
			 rec->rewritten ? "rewritten" : "NOT rewritten");
	}
}
