// SPDX-License-Identifier: GPL-2.0
/*
 * uplink_wire: what the uplink end-to-end test (tests/uplink/e2e.py) does
 * with the bytes it captured (gmproto v2).
 *
 *   uplink_wire inspect CAPTURE TOWN_KEY A_ID A_CREDENTIALS B_CREDENTIALS [CAPTURE...]
 *       Decode every frame of CAPTURE (the line A -> B); for those from
 *       meter A try every key meter B holds (its long-term direction keys
 *       with the town server, as handshake and as session keys), and the
 *       town server's: A's long-term keys for handshakes, and for session
 *       frames the session keys of every WELCOME to A found in all the
 *       captures given (the WELCOMEs travel the other way: give the
 *       B -> A capture too). Prints counts and the record sequences found;
 *       exit 1 if B could open one or the town server could not.
 *   uplink_wire inject CAPTURE SRC HOST:PORT replay|forge|stranger [TOWN_KEY TOWN_DB CAPTURE...]
 *       Send one HELLO of SRC found in CAPTURE to the town server over
 *       TCP (a wired gateway's connection): verbatim (replay: townd
 *       remembers the meter's recent HELLO randoms and refuses it), with
 *       one ciphertext bit flipped and a valid CRC (forge), or re-addressed
 *       from an unprovisioned meter (stranger). Without keys the first
 *       HELLO of SRC; with the town's key, its database and the captures of
 *       the other direction, the first HELLO of SRC that a WELCOME answered
 *       (one townd certainly received: a HELLO lost on its way, sent again
 *       with a fresh random, is no replay; and the oldest, so that it is not
 *       the meter's live session, whose HELLO townd answers again with the
 *       same WELCOME as a copy that came by a second route).
 *   uplink_wire command TOWN_KEY TOWN_DB METER TSEQ OUT CAPTURE...
 *       Find in the captures the first frame of the town server to METER
 *       that carries the command TSEQ (a tariff, a grant, a town key) and
 *       write it to OUT as link-frame bytes, ready to be replayed to the
 *       meter. Its link sequence (not authenticated) is moved half the
 *       sequence space away, so that the meter's link layer does not drop
 *       it as a duplicate and the replay reaches meterd's session layer.
 *   uplink_wire audit TOWN_KEY TOWN_DB CAPTURE...
 *       Every frame of every capture (raw link-frame byte streams, any
 *       direction): the key and nonce each envelope was sealed with, found
 *       from the town's key (and KEY.next), the meters' keys in TOWN_DB
 *       and the WELCOMEs in the captures. Prints frames, attributed
 *       envelopes, copies and (key, nonce) repeats; exit 1 on a repeat.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "credentials.h"
#include "gm_frame.h"
#include "gmproto.h"
#include "nonce_audit.h"
#include "townd_core.h"

#define CAP_MAX		(64 << 20)

struct frame {
	struct gm_hdr h;
	uint8_t payload[GM_MAX_PAYLOAD];
	size_t len;
};

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(CAP_MAX);

	if (!f || !buf) {
		perror(path);
		exit(2);
	}
	*len = fread(buf, 1, CAP_MAX, f);
	fclose(f);
	return buf;
}

/* Every valid frame of the capture, in order. */
static struct frame *frames_of(const char *path, size_t *n)
{
	size_t len, off = 0, cap = 1024;
	uint8_t *buf = read_all(path, &len);
	struct frame *fr = malloc(cap * sizeof(*fr));
	struct gm_rx rx;

	gm_rx_init(&rx);
	*n = 0;
	while (off < len) {
		enum gm_rx_status st;

		off += gm_rx_feed(&rx, buf + off, len - off, &st);
		if (st != GM_RX_FRAME)
			continue;
		if (*n == cap)
			fr = realloc(fr, (cap *= 2) * sizeof(*fr));
		fr[*n].h = rx.hdr;
		memcpy(fr[*n].payload, rx.payload, rx.payload_len);
		fr[*n].len = rx.payload_len;
		(*n)++;
	}
	free(buf);
	return fr;
}

static int add_capture(struct nonce_audit *a, const char *path)
{
	size_t len;
	uint8_t *buf = read_all(path, &len);
	int n = nonce_audit_stream(a, buf, len);

	free(buf);
	return n;
}

/* Every frame of several captures, in order; n_first: those of the first. */
struct capset {
	struct frame *fr;
	size_t n, n_first;
};

static void capset_load(struct capset *cs, char **paths, int n_paths)
{
	memset(cs, 0, sizeof(*cs));
	for (int i = 0; i < n_paths; i++) {
		size_t n;
		struct frame *fr = frames_of(paths[i], &n);

		cs->fr = realloc(cs->fr, (cs->n + n + 1) * sizeof(*cs->fr));
		if (!cs->fr) {
			perror("uplink_wire");
			exit(2);
		}
		memcpy(cs->fr + cs->n, fr, n * sizeof(*fr));
		cs->n += n;
		if (!i)
			cs->n_first = n;
		free(fr);
	}
}

static int db_keys(struct nonce_audit *au, const struct gmp_keypair *town, const char *db_path);

/* The town's key (and KEY.next) with every meter key of the database. */
static int town_keys(struct nonce_audit *au, const char *key_path, const char *db_path)
{
	struct gmp_keypair town[2];
	char err[400], next[300];
	struct stat sb;
	int n_town = 1, keys = 0;

	if (townd_key_load(key_path, &town[0], err, sizeof(err))) {
		fprintf(stderr, "uplink_wire: %s\n", err);
		return -1;
	}
	snprintf(next, sizeof(next), "%s.next", key_path);
	if (!stat(next, &sb) && !townd_key_load(next, &town[1], err, sizeof(err)))
		n_town = 2;
	for (int t = 0; t < n_town && keys >= 0; t++) {
		int k = db_keys(au, &town[t], db_path);

		keys = k < 0 ? -1 : keys + k;
	}
	sodium_memzero(town, sizeof(town));
	return keys;
}

/* What opened, per frame of a capture set (nonce_audit's on_plain). */
struct opened {
	const struct capset *cs;
	int *type;			/* first message, 0: did not open */
	uint8_t (*rm)[GMP_RAND_LEN];	/* HELLO and WELCOME randoms */
	unsigned int cmd_meter;		/* command search: to this meter */
	int64_t cmd_tseq;		/* with this tseq */
	size_t cmd_frame;		/* the first such frame, or SIZE_MAX */
};

static void on_opened(void *ctx, size_t i, const struct gm_hdr *h, const uint8_t *plain,
		      size_t len)
{
	struct opened *o = ctx;
	struct gmp_msg m;
	size_t off = 0;

	while (gmp_decode_next(plain, len, &off, &m) == 1) {
		if (!o->type[i])
			o->type[i] = m.type;
		if (m.type == GMP_HELLO)
			memcpy(o->rm[i], m.hello.rm, GMP_RAND_LEN);
		else if (m.type == GMP_WELCOME)
			memcpy(o->rm[i], m.welcome.rm, GMP_RAND_LEN);
		if (h->src != GM_ID_SERVER || h->dst != o->cmd_meter || i >= o->cmd_frame)
			continue;
		if ((m.type == GMP_TARIFF && m.tariff.tseq == o->cmd_tseq) ||
		    (m.type == GMP_GRANT && m.grant.tseq == o->cmd_tseq) ||
		    (m.type == GMP_TOWN_KEY && m.town_key.tseq == o->cmd_tseq))
			o->cmd_frame = i;
	}
}

/* Open every frame of the set with the town's keys. 0 or -1. */
static int open_all(struct opened *o, const struct capset *cs, const char *key_path,
		    const char *db_path)
{
	struct nonce_audit au;
	int rc = -1;

	o->cs = cs;
	o->type = calloc(cs->n + 1, sizeof(*o->type));
	o->rm = calloc(cs->n + 1, sizeof(*o->rm));
	o->cmd_frame = SIZE_MAX;
	nonce_audit_init(&au);
	au.on_plain = on_opened;
	au.ctx = o;
	if (!o->type || !o->rm || town_keys(&au, key_path, db_path) < 0)
		goto out;
	for (size_t i = 0; i < cs->n; i++)
		if (nonce_audit_frame(&au, &cs->fr[i].h, cs->fr[i].payload, cs->fr[i].len))
			goto out;
	rc = nonce_audit_run(&au);
out:
	nonce_audit_free(&au);
	return rc;
}

static int load_cred(const char *path, struct uplink_credentials *c)
{
	char err[400];

	if (credentials_load(c, path, err, sizeof(err))) {
		fprintf(stderr, "uplink_wire: %s\n", err);
		return -1;
	}
	return 0;
}

/* Does any key B holds open the frame? */
static bool b_opens(const struct gmp_lt *b, const struct frame *f)
{
	struct gmp_addr a = { f->h.type, f->h.flags, f->h.src, f->h.dst };
	uint8_t plain[GM_MAX_PAYLOAD], sid = 0;
	const uint8_t *keys[2] = { b->rx, b->tx };

	for (int k = 0; k < 2; k++) {
		struct gmp_lt lt;
		struct gmp_session s = { .up = true };

		memcpy(lt.rx, keys[k], GMP_KEY_LEN);
		if (gmp_hs_open(&lt, &a, f->payload, f->len, plain, sizeof(plain)) >= 0)
			return true;
		if (gmp_envelope_kind(f->payload, f->len, &sid) != GMP_KIND_SESSION)
			continue;
		s.sid = sid;
		memcpy(s.rx_key, keys[k], GMP_KEY_LEN);
		if (gmp_open(&s, &a, f->payload, f->len, plain, sizeof(plain), NULL) >= 0)
			return true;
	}
	return false;
}

struct records {
	size_t first_capture_frames;	/* frames of CAPTURE come first in the audit */
	unsigned int a_id;
	size_t n;
	int64_t lo, hi;
};

static void count_records(void *ctx, size_t frame, const struct gm_hdr *h,
			  const uint8_t *plain, size_t len)
{
	struct records *r = ctx;
	struct gmp_msg m;
	size_t off = 0;

	if (frame >= r->first_capture_frames || h->src != r->a_id)
		return;
	while (gmp_decode_next(plain, len, &off, &m) == 1) {
		int64_t seq = gmp_msg_seq(&m);

		if (!seq)
			continue;
		r->n++;
		r->lo = seq < r->lo ? seq : r->lo;
		r->hi = seq > r->hi ? seq : r->hi;
	}
}

static int inspect(int argc, char **argv)
{
	struct uplink_credentials a, b;
	struct gmp_keypair town;
	struct gmp_lt b_lt;
	struct nonce_audit au;
	struct records rec = { .lo = INT64_MAX };
	size_t n, from_a = 0, by_town = 0, by_b = 0;
	struct frame *fr;
	char err[400];
	int rc;

	rec.a_id = (unsigned int)atoi(argv[3]);
	if (townd_key_load(argv[2], &town, err, sizeof(err))) {
		fprintf(stderr, "uplink_wire: %s\n", err);
		return 2;
	}
	if (load_cred(argv[4], &a) || load_cred(argv[5], &b) ||
	    gmp_lt_meter(&b_lt, &b.key, b.town_pk))
		return 2;
	nonce_audit_init(&au);
	au.on_plain = count_records;
	au.ctx = &rec;
	if (nonce_audit_key(&au, &town, (uint16_t)rec.a_id, a.key.pk))
		return 2;
	fr = frames_of(argv[1], &n);
	for (size_t i = 0; i < n; i++)
		nonce_audit_frame(&au, &fr[i].h, fr[i].payload, fr[i].len);
	rec.first_capture_frames = n;
	for (int k = 6; k < argc; k++)
		if (add_capture(&au, argv[k]) < 0)
			return 2;
	if (nonce_audit_run(&au))
		return 2;
	for (size_t i = 0; i < n; i++) {
		if (fr[i].h.src != rec.a_id || fr[i].h.type != GM_TYPE_DATA)
			continue;
		from_a++;
		by_b += b_opens(&b_lt, &fr[i]);
		by_town += au.opened[i];
	}
	printf("frames %zu from_a %zu opened_by_town %zu opened_by_b %zu records %zu seq_min %lld "
	       "seq_max %lld sessions %llu\n", n, from_a, by_town, by_b, rec.n,
	       (long long)(rec.n ? rec.lo : 0), (long long)(rec.n ? rec.hi : 0),
	       (unsigned long long)au.welcomes);
	rc = by_b || by_town != from_a || !from_a ? 1 : 0;
	nonce_audit_free(&au);
	free(fr);
	sodium_memzero(&town, sizeof(town));
	return rc;
}

static bool is_hello(const struct frame *f, unsigned int src)
{
	return f->h.src == src && f->h.type == GM_TYPE_DATA &&
	       gmp_envelope_kind(f->payload, f->len, NULL) == GMP_KIND_HANDSHAKE &&
	       f->len > GMP_HS_OVERHEAD;
}

/* The first HELLO of src in the first capture whose random a WELCOME echoes. */
static struct frame *answered_hello(struct capset *cs, unsigned int src, const char *key_path,
				    const char *db_path)
{
	struct opened o = { .cmd_meter = GM_ID_SERVER };
	struct frame *f = NULL;

	if (open_all(&o, cs, key_path, db_path))
		exit(2);
	for (size_t i = 0; i < cs->n_first && !f; i++) {
		if (!is_hello(&cs->fr[i], src) || o.type[i] != GMP_HELLO)
			continue;
		for (size_t j = 0; j < cs->n && !f; j++)
			if (o.type[j] == GMP_WELCOME && cs->fr[j].h.dst == src &&
			    !memcmp(o.rm[j], o.rm[i], GMP_RAND_LEN))
				f = &cs->fr[i];
	}
	free(o.type);
	free(o.rm);
	return f;
}

static int send_frame(const char *hostport, const struct gm_hdr *h, const uint8_t *payload,
		      size_t plen)
{
	const char *colon = strrchr(hostport, ':');
	struct sockaddr_in sa = { .sin_family = AF_INET };
	uint8_t wire[GM_MAX_WIRE];
	char host[64];
	int fd, len;

	if (!colon || (size_t)(colon - hostport) >= sizeof(host))
		return -1;
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	len = gm_frame_encode(h, payload, plen, wire, sizeof(wire));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (len < 0 || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, wire, (size_t)len) != len) {
		perror("uplink_wire: inject");
		return -1;
	}
	usleep(500000);		/* let the server read it before the hangup */
	close(fd);
	return len;
}

static int inject(int argc, char **argv)
{
	unsigned int src = (unsigned int)atoi(argv[2]);
	const char *mode = argv[4];
	struct capset cs;
	struct frame *f = NULL;
	int len;

	if (argc > 5 && argc < 8)
		return 2;
	if (argc > 5) {
		/* the first capture (the HELLOs), then the others (their WELCOMEs) */
		char **caps = malloc((size_t)(argc - 6) * sizeof(char *));

		if (!caps)
			return 2;
		caps[0] = argv[1];
		for (int i = 7; i < argc; i++)
			caps[i - 6] = argv[i];
		capset_load(&cs, caps, argc - 6);
		free(caps);
		f = answered_hello(&cs, src, argv[5], argv[6]);
	} else {
		capset_load(&cs, argv + 1, 1);
		for (size_t i = 0; i < cs.n && !f; i++)
			if (is_hello(&cs.fr[i], src))
				f = &cs.fr[i];
	}
	if (!f) {
		fprintf(stderr, "uplink_wire: no %sHELLO from %u in %s\n",
			argc > 5 ? "answered " : "", src, argv[1]);
		return 2;
	}
	if (!strcmp(mode, "forge"))
		f->payload[f->len - GMP_TAG_LEN - 1] ^= 0x10;	/* the last ciphertext byte */
	else if (!strcmp(mode, "stranger"))
		f->h.src = 4242;				/* never provisioned */
	else if (strcmp(mode, "replay"))
		return 2;
	len = send_frame(argv[3], &f->h, f->payload, f->len);
	if (len < 0)
		return 1;
	printf("injected %s frame from %u seq %u (%d bytes)\n", mode, f->h.src, f->h.seq, len);
	free(cs.fr);
	return 0;
}

/* The first frame of the town server to METER carrying command TSEQ, to OUT. */
static int command(int argc, char **argv)
{
	struct opened o = { .cmd_meter = (unsigned int)atoi(argv[3]),
			    .cmd_tseq = atoll(argv[4]) };
	uint8_t wire[GM_MAX_WIRE];
	struct capset cs;
	struct frame *f;
	struct gm_hdr h;
	FILE *out;
	int len;

	capset_load(&cs, argv + 6, argc - 6);
	if (open_all(&o, &cs, argv[1], argv[2]))
		return 2;
	if (o.cmd_frame == SIZE_MAX) {
		fprintf(stderr, "uplink_wire: no frame of the town server to %u with command %lld "
			"in %zu frames\n", o.cmd_meter, (long long)o.cmd_tseq, cs.n);
		return 1;
	}
	f = &cs.fr[o.cmd_frame];
	h = f->h;
	h.seq = (uint16_t)(h.seq + 0x8000);
	len = gm_frame_encode(&h, f->payload, f->len, wire, sizeof(wire));
	out = fopen(argv[5], "wb");
	if (len < 0 || !out || fwrite(wire, 1, (size_t)len, out) != (size_t)len || fclose(out)) {
		perror(argv[5]);
		return 2;
	}
	printf("command %lld to meter %u: frame %zu of %zu, session %u, link seq %u (replayed as "
	       "%u), %d bytes\n", (long long)o.cmd_tseq, o.cmd_meter, o.cmd_frame, cs.n,
	       f->len > 1 ? f->payload[1] : 0, f->h.seq, h.seq, len);
	free(o.type);
	free(o.rm);
	free(cs.fr);
	return 0;
}

/* Every meter key in the database (and the announced next keys). */
static int db_keys(struct nonce_audit *au, const struct gmp_keypair *town, const char *db_path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = 0, rc;

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT id, pk, pk_next FROM meters", -1, &st, NULL) !=
	    SQLITE_OK) {
		fprintf(stderr, "uplink_wire: %s: %s\n", db_path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int col = 1; col <= 2; col++) {
			const char *hex = (const char *)sqlite3_column_text(st, col);
			uint8_t pk[GMP_KEY_LEN];

			if (hex && !gmp_hex_decode(hex, pk, GMP_KEY_LEN) &&
			    !nonce_audit_key(au, town, (uint16_t)sqlite3_column_int(st, 0), pk))
				n++;
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == SQLITE_DONE ? n : -1;
}

static int audit(int argc, char **argv)
{
	struct nonce_audit au;
	int keys, frames = 0, rc;

	nonce_audit_init(&au);
	keys = town_keys(&au, argv[1], argv[2]);
	if (keys < 0)
		return 2;
	for (int i = 3; i < argc; i++) {
		int k = add_capture(&au, argv[i]);

		if (k < 0)
			return 2;
		frames += k;
	}
	if (nonce_audit_run(&au))
		return 2;
	printf("captures %d frames %d gmproto %llu handshake %llu session %llu sessions %llu "
	       "unattributed %llu copies %llu repeats %llu (keys: %d)\n", argc - 3, frames,
	       (unsigned long long)au.frames, (unsigned long long)au.handshakes,
	       (unsigned long long)au.sessions, (unsigned long long)au.welcomes,
	       (unsigned long long)au.unattributed, (unsigned long long)au.copies,
	       (unsigned long long)au.repeats, keys);
	rc = au.repeats ? 1 : 0;
	nonce_audit_free(&au);
	return rc;
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 2;
	if (argc >= 7 && !strcmp(argv[1], "inspect"))
		return inspect(argc - 1, argv + 1);
	if ((argc == 6 || argc >= 9) && !strcmp(argv[1], "inject"))
		return inject(argc - 1, argv + 1);
	if (argc >= 8 && !strcmp(argv[1], "command"))
		return command(argc - 1, argv + 1);
	if (argc >= 5 && !strcmp(argv[1], "audit"))
		return audit(argc - 1, argv + 1);
	fprintf(stderr, "usage: uplink_wire inspect CAPTURE TOWN_KEY A_ID A_CRED B_CRED [CAPTURE...]\n"
			"       uplink_wire inject CAPTURE SRC HOST:PORT replay|forge|stranger "
			"[TOWN_KEY TOWN_DB CAPTURE...]\n"
			"       uplink_wire command TOWN_KEY TOWN_DB METER TSEQ OUT CAPTURE...\n"
			"       uplink_wire audit TOWN_KEY TOWN_DB CAPTURE...\n");
	return 2;
}
