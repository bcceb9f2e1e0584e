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

#include "gm_frame.h"

#define LOG_NAME	"meterd.log"
#define LOG_TMP		"meterd.log.tmp"
#define SNAP_NAME	"meterd.snap"
#define LIVE_NAME	"meterd.live"
#define MAX_LOG_READ	(64u << 20)

/* All of buf at off (off < 0: at the file's end, O_APPEND); 0 or -errno. */
static int write_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return 0;
}

static uint64_t pages(uint64_t from, uint64_t to)
{
	return to > from ? (to - 1) / STORE_PAGE - from / STORE_PAGE + 1 : 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t build_record(struct store *s, uint8_t *out, uint16_t type, const void *payload,
			   uint32_t len)
{
	struct store_rec_hdr h = {
		.magic = STORE_MAGIC, .type = type, .len = len, .len_inv = ~len, .seq = s->seq++,
	};

	memcpy(out, &h, sizeof(h));
	memcpy(out + sizeof(h), payload, len);
	put_le32(out + sizeof(h) + len, gm_crc32c(out, sizeof(h) + len));
	return sizeof(h) + len + STORE_CRC_LEN;
}

static bool len_ok(const struct store *s, uint16_t type, uint32_t len)
{
	if (type == STORE_REC_SNAPSHOT)
		return len && len <= s->max_snap;
	if (type == STORE_REC_PROFILE)
		return len == sizeof(struct profile_entry);
	return false;
}

/* A header that could start a record: its total length, else 0. */
static size_t plausible(const struct store *s, const uint8_t *buf, size_t size, size_t off,
			struct store_rec_hdr *h)
{
	if (size - off < sizeof(*h))
		return 0;
	memcpy(h, buf + off, sizeof(*h));
	if (h->magic != STORE_MAGIC || h->reserved || h->len_inv != ~h->len || !len_ok(s, h->type, h->len))
		return 0;
	return sizeof(*h) + h->len + STORE_CRC_LEN;
}

/* A valid record of the current format at off: its total length, else 0. */
static size_t record_at(const struct store *s, const uint8_t *buf, size_t size, size_t off,
			struct store_rec_hdr *h)
{
	size_t n = plausible(s, buf, size, off, h);

	if (!n || size - off < n)
		return 0;
	if (gm_crc32c(buf + off, n - STORE_CRC_LEN) != get_le32(buf + off + n - STORE_CRC_LEN))
		return 0;
	return n;
}

/*
 * The previous format, read once for migration: header { "GMR1", type,
 * reserved, len, crc, seq } then the payload; crc is the CRC-32 (IEEE
 * 802.3, reflected 0xedb88320, as zlib's crc32()) of the header with crc = 0
 * followed by the payload.
 */
size_t store_v1_record(const uint8_t *buf, size_t size, size_t off, struct store_rec_hdr *h)
{
	struct v1_hdr {
		uint32_t magic;
		uint16_t type, reserved;
		uint32_t len, crc;
		uint64_t seq;
	} o;
	uint32_t crc = 0xffffffffu;

	if (size - off < sizeof(o))
		return 0;
	memcpy(&o, buf + off, sizeof(o));
	if (o.magic != STORE_MAGIC_V1 || o.reserved ||
	    !(o.type == STORE_REC_SNAPSHOT ? o.len && o.len <= STORE_MAX_SNAPSHOT :
	      o.type == STORE_REC_PROFILE && o.len == sizeof(struct profile_entry)) ||
	    size - off - sizeof(o) < o.len)
		return 0;
	for (size_t i = 0; i < sizeof(o) + o.len; i++) {
		/* the header's crc field counts as zero */
		uint8_t b = i >= offsetof(struct v1_hdr, crc) && i < offsetof(struct v1_hdr, crc) + 4 ? 0 : buf[off + i];

		crc ^= b;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
	}
	if (~crc != o.crc)
		return 0;
	h->magic = o.magic;
	h->type = o.type;
	h->reserved = 0;
	h->len = o.len;
	h->len_inv = ~o.len;
	h->seq = o.seq;
	return sizeof(o) + o.len;
}

static size_t slot_stride(size_t max_snap)
{
	size_t n = sizeof(struct store_rec_hdr) + max_snap + STORE_CRC_LEN;

	return (n + STORE_PAGE - 1) / STORE_PAGE * STORE_PAGE;
}

int store_open(struct store *s, const char *state_dir, const char *runtime_dir, size_t max_snap)
{
	int rdir;

	memset(s, 0, sizeof(*s));
	s->dirfd = s->logfd = s->snapfd = s->livefd = -1;
	if (max_snap > STORE_MAX_SNAPSHOT || !max_snap)
		return -EINVAL;
	s->max_snap = max_snap;
	s->slot_bytes = slot_stride(max_snap);
	s->compact_bytes = 1u << 20;
	s->seq = 1;
	s->dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0)
		return -errno;
	/* One writer only: a second meterd must not interleave records. (The
	 * lock is on the directory, which compaction's rename does not replace.) */
	if (flock(s->dirfd, LOCK_EX | LOCK_NB)) {
		if (errno == EWOULDBLOCK)
			errno = EBUSY;
		goto fail;
	}
	s->logfd = openat(s->dirfd, LOG_NAME, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (s->logfd < 0)
		goto fail;
	/* on a full disk creating it may fail: store_save() falls back to the log */
	s->snapfd = openat(s->dirfd, SNAP_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
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
	if (s->snapfd >= 0)
		close(s->snapfd);
	if (s->logfd >= 0)
		close(s->logfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	s->livefd = s->snapfd = s->logfd = s->dirfd = -1;
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

struct found {
	bool have;
	uint64_t seq;
	size_t len;
	unsigned slot;		/* slot files: which slot held it */
};

static void take_snapshot(struct found *f, void *snap, const uint8_t *payload, const struct store_rec_hdr *h,
			  unsigned slot)
{
	if (f->have && h->seq <= f->seq)
		return;
	memcpy(snap, payload, h->len);
	f->have = true;
	f->seq = h->seq;
	f->len = h->len;
	f->slot = slot;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* The log: every record in order; bad regions are torn tails or corruption. */
static void scan_log(struct store *s, const uint8_t *buf, size_t size, void *snap, struct found *f,
		     struct profile *prof, struct store_recovery *rec, size_t *valid_end)
{
	size_t off = 0, max_rec = sizeof(struct store_rec_hdr) + s->max_snap + STORE_CRC_LEN;

	*valid_end = 0;
	while (off < size) {
		struct store_rec_hdr h;
		size_t n = record_at(s, buf, size, off, &h), hdr_len = sizeof(h);
		size_t next, announced;

		if (!n && (n = store_v1_record(buf, size, off, &h))) {
			rec->migrated_records++;
			hdr_len = n - h.len;
		}
		if (n) {
			const uint8_t *payload = buf + off + hdr_len;

			if (h.type == STORE_REC_SNAPSHOT && h.len <= s->max_snap) {
				take_snapshot(f, snap, payload, &h, 0);
			} else if (h.type == STORE_REC_PROFILE && prof) {
				struct profile_entry e;

				memcpy(&e, payload, sizeof(e));
				if (profile_put(prof, &e) >= 0)
					rec->profile_entries++;
			}
			if (h.seq >= s->seq)
				s->seq = h.seq + 1;
			off += n;
			*valid_end = off;
			continue;
		}
		/* Bad region: up to the next valid record. */
		announced = plausible(s, buf, size, off, &h);
		for (next = off + 1; next < size; next++)
			if (record_at(s, buf, size, next, &h) || store_v1_record(buf, size, next, &h))
				break;
		if (next == size && (all_zero(buf + off, size - off) ||
				     (announced ? size - off < announced : size - off < max_rec))) {
			rec->torn_bytes += size - off;	/* an append cut short */
		} else {
			rec->corrupt_records++;
			rec->skipped_bytes += next - off;
		}
		off = next;
	}
}

/* Slot files (meterd.snap, meterd.live): torn or stale slots are expected. */
static void scan_slots(struct store *s, const uint8_t *buf, size_t size, void *snap, struct found *f)
{
	for (unsigned slot = 0; slot < 2; slot++) {
		size_t off = slot * s->slot_bytes;
		struct store_rec_hdr h;

		if (off >= size || !record_at(s, buf, size, off, &h) || h.type != STORE_REC_SNAPSHOT)
			continue;
		take_snapshot(f, snap, buf + off + sizeof(h), &h, slot);
		if (h.seq >= s->seq)
			s->seq = h.seq + 1;
	}
}

static int read_slots(struct store *s, int fd, void *snap, struct found *f)
{
	uint8_t *buf;
	size_t size;
	int r;

	if (fd < 0)
		return 0;
	r = read_file(fd, &buf, &size);
	if (r)
		return r;
	scan_slots(s, buf, size, snap, f);
	free(buf);
	return 0;
}

/*
 * meterd.snap at its full size, written (zeros) and synced once, so that
 * later saves only overwrite allocated blocks. Never shrinks it.
 */
static bool snap_ready(struct store *s)
{
	static const uint8_t zero[STORE_PAGE];
	struct stat st;
	off_t want = (off_t)(2 * s->slot_bytes), at;

	if (s->snapfd < 0) {
		s->snapfd = openat(s->dirfd, SNAP_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
		if (s->snapfd < 0)
			return false;
	}
	if (fstat(s->snapfd, &st))
		return false;
	if (st.st_size >= want)
		return true;
	for (at = st.st_size; at < want; at += (off_t)sizeof(zero) - at % (off_t)sizeof(zero)) {
		size_t n = (size_t)((off_t)sizeof(zero) - at % (off_t)sizeof(zero));

		if (write_all(s->snapfd, zero, n, at))
			break;
	}
	if (at < want || fsync(s->snapfd) || fsync(s->dirfd)) {
		if (ftruncate(s->snapfd, st.st_size)) {
			/* a short slot file is only read as far as it goes */
		}
		return false;
	}
	s->bytes_written += (uint64_t)(want - st.st_size);
	s->fsyncs += 2;
	s->pages_synced += pages((uint64_t)st.st_size, (uint64_t)want) + 1;
	return true;
}

int store_recover(struct store *s, void *snap, size_t *snap_len, struct profile *prof,
		  struct store_recovery *rec)
{
	struct found log = { 0 }, slot = { 0 }, live = { 0 };
	uint8_t *buf = NULL, *tmp;
	size_t size = 0, valid_end = 0;
	int r;

	memset(rec, 0, sizeof(*rec));
	tmp = malloc(s->max_snap);
	if (!tmp)
		return -ENOMEM;
	r = read_file(s->logfd, &buf, &size);
	if (r)
		goto out;
	scan_log(s, buf, size, snap, &log, prof, rec, &valid_end);
	free(buf);
	s->log_bytes = s->log_synced = size;

	r = read_slots(s, s->snapfd, tmp, &slot);
	if (r)
		goto out;
	if (slot.have && (!log.have || slot.seq > log.seq)) {
		memcpy(snap, tmp, slot.len);
		rec->from_slot = true;
	}
	s->snap_slot = slot.have ? slot.slot ^ 1 : 0;	/* overwrite the older slot first */
	r = read_slots(s, s->livefd, tmp, &live);
	if (r)
		goto out;
	if (live.have && (!log.have || live.seq > log.seq) && (!slot.have || live.seq > slot.seq)) {
		memcpy(snap, tmp, live.len);
		rec->from_slot = false;
		rec->from_live = true;
	}
	s->live_slot = live.have ? live.slot : 1;	/* store_live() toggles before writing */

	rec->have_snapshot = log.have || slot.have || live.have;
	rec->snapshot_seq = rec->from_live ? live.seq : rec->from_slot ? slot.seq : log.seq;
	rec->snapshot_len = rec->from_live ? live.len : rec->from_slot ? slot.len : log.len;
	if (snap_len)
		*snap_len = rec->have_snapshot ? rec->snapshot_len : 0;
	if (rec->corrupt_records || rec->migrated_records) {
		r = store_compact(s, rec->have_snapshot ? snap : NULL, rec->snapshot_len, prof);
		if (r)
			goto out;
		rec->rewritten = true;
	} else if (rec->torn_bytes) {
		/* cut the torn tail so that new records follow the last good one */
		if (ftruncate(s->logfd, (off_t)valid_end) || fdatasync(s->logfd)) {
			r = -errno;
			goto out;
		}
		s->log_bytes = s->log_synced = valid_end;
	}
	if (s->snapfd >= 0)
		snap_ready(s);
out:
	free(tmp);
	return r;
}

int store_live(struct store *s, const void *snap, size_t len)
{
	uint8_t buf[STORE_REC_OVERHEAD + STORE_MAX_SNAPSHOT];
	size_t n;

	if (!len || len > s->max_snap)
		return -EINVAL;
	n = build_record(s, buf, STORE_REC_SNAPSHOT, snap, (uint32_t)len);
	s->live_slot ^= 1;
	return write_all(s->livefd, buf, n, (off_t)(s->live_slot * s->slot_bytes));
}

/* Cut the log back to its valid length after a failed append. */
static int cut_back(struct store *s)
{
	if (ftruncate(s->logfd, (off_t)s->log_bytes)) {
		s->log_torn = true;
		return -errno;
	}
	s->log_torn = false;
	if (s->log_synced > s->log_bytes)
		s->log_synced = s->log_bytes;
	return 0;
}

int store_commit(struct store *s, const void *snap, size_t len, const struct profile_entry *e,
		 size_t n, bool sync)
{
	size_t size = n * (STORE_REC_OVERHEAD + sizeof(*e)) + (snap ? STORE_REC_OVERHEAD + len : 0);
	uint8_t stack[2048], *buf = size <= sizeof(stack) ? stack : malloc(size);
	size_t at = 0;
	int r;

	if (!buf)
		return -ENOMEM;
	if (snap && (!len || len > s->max_snap)) {
		r = -EINVAL;
		goto out;
	}
	/* never append after a record that a failure left torn */
	if (s->log_torn && (r = cut_back(s)))
		goto out;
	/* profile first: a snapshot always follows the intervals it has closed */
	for (size_t i = 0; i < n; i++)
		at += build_record(s, buf + at, STORE_REC_PROFILE, &e[i], sizeof(*e));
	if (snap)
		at += build_record(s, buf + at, STORE_REC_SNAPSHOT, snap, (uint32_t)len);
	r = write_all(s->logfd, buf, at, -1);
	if (!r && sync && fdatasync(s->logfd))
		r = -errno;	/* not known durable: taken back, the next save writes it again */
	if (r) {
		cut_back(s);
		goto out;
	}
	s->log_bytes += at;
	s->bytes_written += at;
	if (sync) {
		s->fsyncs++;
		s->pages_synced += pages(s->log_synced, s->log_bytes);
		s->log_synced = s->log_bytes;
	}
	r = s->log_bytes > s->compact_bytes ? 1 : 0;
out:
	if (buf != stack)
		free(buf);
	return r;
}

int store_save(struct store *s, const void *snap, size_t len)
{
	uint8_t buf[STORE_REC_OVERHEAD + STORE_MAX_SNAPSHOT];
	size_t n;
	int r;

	if (!len || len > s->max_snap)
		return -EINVAL;
	if (!snap_ready(s)) {
		r = store_commit(s, snap, len, NULL, 0, true);
		return r < 0 ? r : 0;
	}
	n = build_record(s, buf, STORE_REC_SNAPSHOT, snap, (uint32_t)len);
	/* a torn slot is harmless: the other one holds the previous save */
	r = write_all(s->snapfd, buf, n, (off_t)(s->snap_slot * s->slot_bytes));
	if (!r && fdatasync(s->snapfd))
		r = -errno;
	if (r)
		return r;
	s->snap_slot ^= 1;
	s->bytes_written += n;
	s->fsyncs++;
	s->pages_synced += pages(0, n);
	return 0;
}

int store_compact(struct store *s, const void *snap, size_t len, const struct profile *prof)
{
	uint8_t buf[STORE_REC_OVERHEAD + STORE_MAX_SNAPSHOT];
	uint64_t total = 0;
	int fd, r = 0;

	if (snap && (!len || len > s->max_snap))
		return -EINVAL;
	fd = openat(s->dirfd, LOG_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	for (size_t i = 0; prof && i < prof->count && !r; i++) {
		size_t n = build_record(s, buf, STORE_REC_PROFILE, profile_at(prof, i),
					sizeof(struct profile_entry));

		r = write_all(fd, buf, n, -1);
		total += n;
	}
	if (!r && snap) {
		size_t n = build_record(s, buf, STORE_REC_SNAPSHOT, snap, (uint32_t)len);

		r = write_all(fd, buf, n, -1);
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
	s->log_bytes = s->log_synced = total;
	s->log_torn = false;
	/* next compaction when the log has doubled (at least 1 MiB): amortised writes */
	s->compact_bytes = 2 * total > (1u << 20) ? 2 * total : (1u << 20);
	s->bytes_written += total;
	s->fsyncs += 2;
	s->pages_synced += pages(0, total) + 1;
	return 0;
}

void store_recovery_describe(const struct store_recovery *rec, char *buf, size_t len)
{
	size_t l;

	if (!rec->have_snapshot && !rec->corrupt_records && !rec->torn_bytes) {
		snprintf(buf, len, "no stored state: starting with empty registers");
		return;
	}
	snprintf(buf, len, "%s snapshot #%llu from the %s file, %u profile intervals",
		 rec->have_snapshot ? "recovered" : "no valid",
		 (unsigned long long)rec->snapshot_seq,
		 rec->from_live ? "runtime" : rec->from_slot ? "snapshot" : "log", rec->profile_entries);
	l = strlen(buf);
	if (rec->torn_bytes && l < len)
		l += (size_t)snprintf(buf + l, len - l, "; a torn last record (%llu bytes, an interrupted "
				      "write) was cut off", (unsigned long long)rec->torn_bytes);
	if (rec->migrated_records && l < len)
		l += (size_t)snprintf(buf + l, len - l, "; %u records of the previous format converted",
				      rec->migrated_records);
	if (rec->corrupt_records && l < len)
		l += (size_t)snprintf(buf + l, len - l, "; CORRUPTION: %u bad region(s), %llu bytes skipped",
				      rec->corrupt_records, (unsigned long long)rec->skipped_bytes);
	if ((rec->corrupt_records || rec->migrated_records) && l < len)
		snprintf(buf + l, len - l, ", log %s", rec->rewritten ? "rewritten" : "NOT rewritten");
}
