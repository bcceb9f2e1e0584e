// SPDX-License-Identifier: GPL-2.0
/*
 * uplink_wire: what the uplink end-to-end test (tests/uplink/e2e.py) does
 * with the bytes it captured on the serial line between meters A and B.
 *
 *   uplink_wire inspect CAPTURE TOWN_KEY A_ID A_CREDENTIALS B_CREDENTIALS
 *       Decode every frame; for those from meter A try to open the
 *       envelope with every key meter B holds (its two session keys with
 *       the town server) and with the town server's key for A. Prints
 *       counts and the record sequences found; exit 1 if B could open one
 *       or the town server could not.
 *   uplink_wire inject CAPTURE SRC HOST:PORT replay|forge|stranger
 *       Send one DATA frame from SRC found in CAPTURE to the town server
 *       over TCP (a wired gateway's connection): verbatim (replay); forged
 *       (forge): a counter far above any used, so that the replay check
 *       passes, one ciphertext bit flipped, and a valid CRC; or
 *       re-addressed from an unprovisioned meter (stranger).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "credentials.h"
#include "gm_frame.h"
#include "gmproto.h"
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

static int try_open(const uint8_t key[GMP_KEY_LEN], const struct frame *f, uint8_t *plain)
{
	struct gmp_session s = { 0 };
	struct gmp_addr a = { .type = f->h.type, .flags = f->h.flags, .src = f->h.src,
			      .dst = f->h.dst };

	memcpy(s.rx_key, key, GMP_KEY_LEN);
	return gmp_open(&s, &a, f->payload, f->len, plain, GM_MAX_PAYLOAD, NULL);
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

static int inspect(char **argv)
{
	struct uplink_credentials a, b;
	struct gmp_session town_a, b_s;
	struct gmp_keypair town;
	size_t n, from_a = 0, by_town = 0, by_b = 0, records = 0;
	int64_t lo = INT64_MAX, hi = 0;
	unsigned int a_id = (unsigned int)atoi(argv[3]);
	struct frame *fr;
	char err[400];

	if (townd_key_load(argv[2], &town, err, sizeof(err))) {
		fprintf(stderr, "uplink_wire: %s\n", err);
		return 2;
	}
	if (load_cred(argv[4], &a) || load_cred(argv[5], &b) ||
	    gmp_session_town(&town_a, &town, a.key.pk) ||
	    gmp_session_meter(&b_s, &b.key, b.town_pk))
		return 2;
	fr = frames_of(argv[1], &n);
	for (size_t i = 0; i < n; i++) {
		uint8_t plain[GM_MAX_PAYLOAD];
		struct gmp_msg m;
		size_t off = 0;
		int len;

		if (fr[i].h.src != a_id || fr[i].h.type != GM_TYPE_DATA)
			continue;
		from_a++;
		if (try_open(b_s.rx_key, &fr[i], plain) >= 0 || try_open(b_s.tx_key, &fr[i], plain) >= 0)
			by_b++;
		len = try_open(town_a.rx_key, &fr[i], plain);
		if (len < 0)
			continue;
		by_town++;
		while (gmp_decode_next(plain, (size_t)len, &off, &m) == 1) {
			int64_t seq = gmp_msg_seq(&m);

			if (!seq)
				continue;
			records++;
			lo = seq < lo ? seq : lo;
			hi = seq > hi ? seq : hi;
		}
	}
	printf("frames %zu from_a %zu opened_by_town %zu opened_by_b %zu records %zu seq_min %lld "
	       "seq_max %lld\n", n, from_a, by_town, by_b, records,
	       (long long)(records ? lo : 0), (long long)hi);
	free(fr);
	return by_b || by_town != from_a || !from_a ? 1 : 0;
}

static int inject(char **argv)
{
	unsigned int src = (unsigned int)atoi(argv[2]);
	const char *mode = argv[4], *colon = strrchr(argv[3], ':');
	struct sockaddr_in sa = { .sin_family = AF_INET };
	uint8_t wire[GM_MAX_WIRE];
	struct frame *fr, *f = NULL;
	size_t n;
	int fd, len;
	char host[64];

	if (!colon || (size_t)(colon - argv[3]) >= sizeof(host))
		return 2;
	memcpy(host, argv[3], (size_t)(colon - argv[3]));
	host[colon - argv[3]] = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return 2;
	fr = frames_of(argv[1], &n);
	for (size_t i = 0; i < n && !f; i++)
		if (fr[i].h.src == src && fr[i].h.type == GM_TYPE_DATA && fr[i].len > GMP_ENV_MIN)
			f = &fr[i];
	if (!f) {
		fprintf(stderr, "uplink_wire: no DATA frame from %u in %s\n", src, argv[1]);
		return 2;
	}
	if (!strcmp(mode, "forge")) {
		/* envelope: version, LEB128 counter, ciphertext and tag */
		uint8_t env[GM_MAX_PAYLOAD];
		size_t c = 1, k = 0;
		uint64_t ctr = 1ull << 62;

		while (c < f->len && (f->payload[c] & 0x80))
			c++;
		env[k++] = f->payload[0];
		do {
			env[k++] = (uint8_t)((ctr & 0x7f) | (ctr >= 0x80 ? 0x80 : 0));
			ctr >>= 7;
		} while (ctr);
		c++;
		if (f->len - c + k > sizeof(env))
			return 2;
		memcpy(env + k, f->payload + c, f->len - c);
		k += f->len - c;
		env[k - GMP_TAG_LEN - 1] ^= 0x10;	/* the last ciphertext byte */
		memcpy(f->payload, env, k);
		f->len = k;
	} else if (!strcmp(mode, "stranger"))
		f->h.src = 4242;			/* never provisioned */
	else if (strcmp(mode, "replay"))
		return 2;
	len = gm_frame_encode(&f->h, f->payload, f->len, wire, sizeof(wire));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (len < 0 || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, wire, (size_t)len) != len) {
		perror("uplink_wire: inject");
		return 1;
	}
	usleep(500000);		/* let the server read it before the hangup */
	close(fd);
	printf("injected %s frame from %u seq %u (%d bytes)\n", mode, f->h.src, f->h.seq, len);
	free(fr);
	return 0;
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 2;
	if (argc == 7 && !strcmp(argv[1], "inspect"))
		return inspect(argv + 1);
	if (argc == 6 && !strcmp(argv[1], "inject"))
		return inject(argv + 1);
	fprintf(stderr, "usage: uplink_wire inspect CAPTURE TOWN_KEY A_ID A_CRED B_CRED\n"
			"       uplink_wire inject CAPTURE SRC HOST:PORT replay|forge|stranger\n");
	return 2;
}
