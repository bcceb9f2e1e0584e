// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of the link frame codec (drivers/tty/gm_frame.c, the very
 * file the kernel module compiles).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm_harness.h"
#include "gm_frame.h"

/* Independent bitwise CRC-32C, to check the table-driven one. */
static u32 ref_crc32c(const u8 *p, size_t len)
{
	u32 c = 0xffffffff;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78 : c >> 1;
	}
	return ~c;
}

/* Deterministic PRNG so failures reproduce. */
static u32 rng_state = 0x12345678;
static u32 rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void fill(u8 *p, size_t n, unsigned int zero_pct)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (rnd() % 100 < zero_pct) ? 0 : (u8)(1 + rnd() % 255);
}

static size_t cobs_bound(size_t n)
{
	return n + (n == 0 ? 1 : (n + 253) / 254);
}

static struct gm_hdr mkhdr(u16 src, u16 dst, u16 seq)
{
	struct gm_hdr h = {
		.version = GM_VERSION, .type = GM_TYPE_DATA, .flags = 0x5,
		.hop_limit = 7, .src = src, .dst = dst, .seq = seq,
	};
	return h;
}

TEST(crc32c_check_value)
{
	EXPECT_EQ(0xe3069283u, gm_crc32c("123456789", 9));
	EXPECT_EQ(0u, gm_crc32c("", 0));
	/* RFC 3720 B.4: 32 bytes of zeros */
	u8 z[32] = { 0 };

	EXPECT_EQ(0x8a9136aau, gm_crc32c(z, sizeof(z)));
}

TEST(crc32c_matches_bitwise_reference)
{
	u8 buf[1024];

	for (int i = 0; i < 200; i++) {
		size_t n = rnd() % sizeof(buf);

		fill(buf, n, 10);
		ASSERT_EQ(ref_crc32c(buf, n), gm_crc32c(buf, n));
	}
}

struct cobs_vec {
	const u8 *in;
	size_t in_len;
	const u8 *out;
	size_t out_len;
};

TEST(cobs_known_vectors)
{
	static const u8 i1[] = { 0x00 }, o1[] = { 0x01, 0x01 };
	static const u8 i2[] = { 0x00, 0x00 }, o2[] = { 0x01, 0x01, 0x01 };
	static const u8 i3[] = { 0x11, 0x22, 0x00, 0x33 },
		o3[] = { 0x03, 0x11, 0x22, 0x02, 0x33 };
	static const u8 i4[] = { 0x11, 0x22, 0x33, 0x44 },
		o4[] = { 0x05, 0x11, 0x22, 0x33, 0x44 };
	static const u8 i5[] = { 0x11, 0x00, 0x00, 0x00 },
		o5[] = { 0x02, 0x11, 0x01, 0x01, 0x01 };
	static const u8 o0[] = { 0x01 };
	const struct cobs_vec v[] = {
		{ NULL, 0, o0, 1 }, { i1, 1, o1, 2 }, { i2, 2, o2, 3 },
		{ i3, 4, o3, 5 }, { i4, 4, o4, 5 }, { i5, 4, o5, 5 },
	};
	u8 out[16], back[16];

	for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
		size_t n = gm_cobs_encode(v[k].in, v[k].in_len, out);

		ASSERT_EQ(v[k].out_len, n);
		ASSERT_EQ(0, memcmp(v[k].out, out, n));
		ASSERT_EQ((int)v[k].in_len, gm_cobs_decode(out, n, back, sizeof(back)));
		if (v[k].in_len)
			ASSERT_EQ(0, memcmp(v[k].in, back, v[k].in_len));
	}
}

TEST(cobs_long_runs)
{
	u8 in[600], out[620], back[600];
	size_t n;

	/* 254 non-zero bytes: one 0xff block, no trailing code byte */
	for (int i = 0; i < 254; i++)
		in[i] = (u8)(i + 1);
	n = gm_cobs_encode(in, 254, out);
	ASSERT_EQ(255u, n);
	ASSERT_EQ(0xff, out[0]);
	ASSERT_EQ(0, memcmp(in, out + 1, 254));
	/* 255 bytes 01..ff: FF 01..FE 02 FF */
	for (int i = 0; i < 255; i++)
		in[i] = (u8)(i + 1);
	n = gm_cobs_encode(in, 255, out);
	ASSERT_EQ(257u, n);
	ASSERT_EQ(0x02, out[255]);
	ASSERT_EQ(0xff, out[256]);
	/* 254 non-zero then a zero: the zero must survive */
	for (int i = 0; i < 254; i++)
		in[i] = 0xaa;
	in[254] = 0;
	n = gm_cobs_encode(in, 255, out);
	ASSERT_EQ(255, gm_cobs_decode(out, n, back, sizeof(back)));
	ASSERT_EQ(0, memcmp(in, back, 255));
}

TEST(cobs_random_roundtrip_and_bound)
{
	static u8 in[1300], out[1400], back[1300];
	const unsigned int pct[] = { 0, 1, 5, 50, 100 };

	for (size_t n = 0; n <= 1200; n++) {
		unsigned int zp = pct[n % 5];
		size_t m;

		fill(in, n, zp);
		m = gm_cobs_encode(in, n, out);
		ASSERT_LE(m, cobs_bound(n));
		ASSERT_EQ(NULL, memchr(out, 0, m));
		ASSERT_EQ((int)n, gm_cobs_decode(out, m, back, sizeof(back)));
		ASSERT_EQ(0, memcmp(in, back, n));
		/* in place */
		ASSERT_EQ((int)n, gm_cobs_decode(out, m, out, m));
		ASSERT_EQ(0, memcmp(in, out, n));
	}
}

TEST(cobs_decode_rejects)
{
	const u8 zero_inside[] = { 0x03, 0x11, 0x00 };
	const u8 overrun[] = { 0x05, 0x11, 0x22 };
	const u8 ok[] = { 0x05, 0x11, 0x22, 0x33, 0x44 };
	u8 out[8];

	EXPECT_EQ(-EBADMSG, gm_cobs_decode(zero_inside, 3, out, sizeof(out)));
	EXPECT_EQ(-EBADMSG, gm_cobs_decode(overrun, 3, out, sizeof(out)));
	EXPECT_EQ(-EMSGSIZE, gm_cobs_decode(ok, 5, out, 3));
	EXPECT_EQ(4, gm_cobs_decode(ok, 5, out, 4));
}

TEST(header_layout)
{
	struct gm_hdr h = mkhdr(0x1234, 0xabcd, 0x0102), g;
	u8 b[GM_HDR_LEN];
	const u8 want[GM_HDR_LEN] = {
		GM_VERSION << 4 | GM_TYPE_DATA, 0x5 << 4 | 7,
		0x12, 0x34, 0xab, 0xcd, 0x01, 0x02,
	};

	gm_hdr_pack(&h, b);
	ASSERT_EQ(0, memcmp(want, b, sizeof(b)));
	ASSERT_EQ(0, gm_hdr_unpack(b, &g));
	EXPECT_EQ(0, memcmp(&h, &g, sizeof(h)));

	b[0] = 2 << 4 | 1;	/* unknown version */
	EXPECT_EQ(-EINVAL, gm_hdr_unpack(b, &g));
	b[0] = GM_VERSION << 4;	/* type 0 */
	EXPECT_EQ(-EINVAL, gm_hdr_unpack(b, &g));
	h.src = GM_ID_INVALID;
	EXPECT_EQ(-EINVAL, gm_hdr_check(&h));
}

TEST(encode_rejects)
{
	struct gm_hdr h = mkhdr(1, 0, 1);
	u8 out[GM_MAX_WIRE + 64], p[GM_MAX_PAYLOAD + 1] = { 0 };

	EXPECT_EQ(-EMSGSIZE, gm_frame_encode(&h, p, GM_MAX_PAYLOAD + 1, out, sizeof(out)));
	EXPECT_EQ(-ENOSPC, gm_frame_encode(&h, p, 10, out, gm_frame_wire_len(10) - 1));
	h.hop_limit = 16;
	EXPECT_EQ(-EINVAL, gm_frame_encode(&h, p, 10, out, sizeof(out)));
	h.hop_limit = 1;
	h.version = 0;
	EXPECT_EQ(-EINVAL, gm_frame_encode(&h, p, 10, out, sizeof(out)));
}

/* Every payload size, worst and typical content: round trip and overhead. */
TEST(frame_roundtrip_every_size)
{
	static u8 p[GM_MAX_PAYLOAD], wire[GM_MAX_WIRE];
	struct gm_rx rx;
	size_t max_over = 0;

	ASSERT_EQ(512, GM_MAX_WIRE);
	for (size_t len = 0; len <= GM_MAX_PAYLOAD; len++) {
		for (unsigned int zp = 0; zp <= 50; zp += 50) {
			struct gm_hdr h = mkhdr((u16)len, 0x77, (u16)(len * 3));
			enum gm_rx_status st;
			int n;

			fill(p, len, zp);
			n = gm_frame_encode(&h, p, len, wire, sizeof(wire));
			ASSERT_GT(n, 0);
			ASSERT_LE((size_t)n, gm_frame_wire_len(len));
			ASSERT_LE((size_t)n - len, (size_t)GM_MAX_OVERHEAD);
			if ((size_t)n - len > max_over)
				max_over = (size_t)n - len;
			ASSERT_EQ(0, wire[0]);
			ASSERT_EQ(0, wire[n - 1]);
			ASSERT_EQ(NULL, memchr(wire + 1, 0, n - 2));

			gm_rx_init(&rx);
			ASSERT_EQ((size_t)n, gm_rx_feed(&rx, wire, n, &st));
			ASSERT_EQ(GM_RX_FRAME, st);
			ASSERT_EQ(0, memcmp(&h, &rx.hdr, sizeof(h)));
			ASSERT_EQ(len, rx.payload_len);
			ASSERT_EQ(0, memcmp(p, rx.payload, len));
		}
	}
	EXPECT_EQ((size_t)GM_MAX_OVERHEAD, max_over);
}

/* Many frames, fed in random chunk sizes: all come out, in order. */
TEST(stream_random_chunks)
{
	static u8 stream[200 * GM_MAX_WIRE], p[GM_MAX_PAYLOAD];
	size_t lens[200], total = 0, pos = 0;
	struct gm_rx rx;
	int got = 0;

	for (int i = 0; i < 200; i++) {
		struct gm_hdr h = mkhdr(42, 0, (u16)i);

		lens[i] = rnd() % (GM_MAX_PAYLOAD + 1);
		memset(p, i, lens[i]);
		total += gm_frame_encode(&h, p, lens[i], stream + total,
					 sizeof(stream) - total);
	}
	gm_rx_init(&rx);
	while (pos < total) {
		size_t chunk = 1 + rnd() % 700, used;
		enum gm_rx_status st;

		if (chunk > total - pos)
			chunk = total - pos;
		used = gm_rx_feed(&rx, stream + pos, chunk, &st);
		pos += used;
		if (st == GM_RX_NONE)
			continue;
		ASSERT_EQ(GM_RX_FRAME, st);
		ASSERT_EQ(got, rx.hdr.seq);
		ASSERT_EQ(lens[got], rx.payload_len);
		for (size_t k = 0; k < lens[got]; k++)
			ASSERT_EQ((u8)got, rx.payload[k]);
		got++;
	}
	EXPECT_EQ(200, got);
}

/* Feed everything, count each outcome. */
struct tally {
	int frames, framing, crc, oversize;
	u16 last_seq;
};

static void feed_all(struct gm_rx *rx, const u8 *d, size_t n, struct tally *t)
{
	while (n) {
		enum gm_rx_status st;
		size_t used = gm_rx_feed(rx, d, n, &st);

		d += used;
		n -= used;
		switch (st) {
		case GM_RX_FRAME:
			t->frames++;
			t->last_seq = rx->hdr.seq;
			break;
		case GM_RX_ERR_FRAMING:
			t->framing++;
			break;
		case GM_RX_ERR_CRC:
			t->crc++;
			break;
		case GM_RX_ERR_OVERSIZE:
			t->oversize++;
			break;
		case GM_RX_NONE:
			break;
		}
	}
}

/* Every single-byte corruption of every position is caught. */
TEST(single_byte_corruption_never_delivered)
{
	u8 wire[GM_MAX_WIRE], good[GM_MAX_WIRE], p[64];
	struct gm_hdr h = mkhdr(9, 0, 1), h2 = mkhdr(9, 0, 2);
	int n, n2;

	fill(p, sizeof(p), 5);
	n = gm_frame_encode(&h, p, sizeof(p), wire, sizeof(wire));
	n2 = gm_frame_encode(&h2, p, 10, good, sizeof(good));
	for (int pos = 1; pos < n - 1; pos++) {
		for (int bit = 0; bit < 8; bit++) {
			u8 c[GM_MAX_WIRE];
			struct tally t = { 0 };
			struct gm_rx rx;

			memcpy(c, wire, n);
			c[pos] ^= (u8)(1 << bit);
			gm_rx_init(&rx);
			feed_all(&rx, c, n, &t);
			feed_all(&rx, good, n2, &t);
			/* the corrupted one is never delivered, the next one is */
			ASSERT_EQ(1, t.frames);
			ASSERT_EQ(2, t.last_seq);
			ASSERT_GE(t.framing + t.crc, 1);
		}
	}
}

TEST(truncated_oversized_garbage)
{
	u8 wire[GM_MAX_WIRE], good[GM_MAX_WIRE], junk[2000], p[100];
	struct gm_hdr h = mkhdr(3, 0, 1), h2 = mkhdr(3, 0, 2);
	struct tally t = { 0 };
	struct gm_rx rx;
	int n, n2;

	fill(p, sizeof(p), 5);
	n = gm_frame_encode(&h, p, sizeof(p), wire, sizeof(wire));
	n2 = gm_frame_encode(&h2, p, 5, good, sizeof(good));
	gm_rx_init(&rx);

	/* truncated: every cut length, closed by a delimiter */
	for (int cut = 2; cut < n - 1; cut++) {
		memset(&t, 0, sizeof(t));
		feed_all(&rx, wire, cut, &t);
		feed_all(&rx, (const u8 *)"", 1, &t);
		ASSERT_EQ(0, t.frames);
		ASSERT_EQ(1, t.framing + t.crc);
	}

	/* oversized: 2000 non-zero bytes count once */
	memset(&t, 0, sizeof(t));
	memset(junk, 0x55, sizeof(junk));
	feed_all(&rx, junk, sizeof(junk), &t);
	feed_all(&rx, good, n2, &t);
	EXPECT_EQ(1, t.oversize);
	EXPECT_EQ(1, t.frames);
	EXPECT_EQ(0, t.framing + t.crc);

	/* garbage with delimiters: never a frame, then resync */
	for (int round = 0; round < 50; round++) {
		memset(&t, 0, sizeof(t));
		fill(junk, sizeof(junk), 3);
		feed_all(&rx, junk, sizeof(junk), &t);
		feed_all(&rx, good, n2, &t);
		ASSERT_EQ(1, t.frames);
		ASSERT_EQ(2, t.last_seq);
	}

	/* a byte flagged by the driver spoils its frame only */
	memset(&t, 0, sizeof(t));
	feed_all(&rx, wire, 10, &t);
	gm_rx_mark_bad(&rx);
	feed_all(&rx, wire + 10, n - 10, &t);
	feed_all(&rx, good, n2, &t);
	EXPECT_EQ(1, t.framing);
	EXPECT_EQ(1, t.frames);
}

TEST_HARNESS_MAIN
