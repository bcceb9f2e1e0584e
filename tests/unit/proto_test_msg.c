// SPDX-License-Identifier: GPL-2.0
/*
 * gmproto message encoding: exact CBOR bytes built by hand from RFC 8949,
 * round trips of every type, range checks, malformed input and a bounded
 * random-bytes robustness run of the decoder.
 */
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "gmproto.h"

/* RFC 8949 head of major type mt for value v, written by hand. */
static size_t head(uint8_t mt, uint64_t v, uint8_t *p)
{
	mt <<= 5;
	if (v < 24) {
		p[0] = mt | (uint8_t)v;
		return 1;
	}
	if (v <= 0xff) {
		p[0] = mt | 24;
		p[1] = (uint8_t)v;
		return 2;
	}
	if (v <= 0xffff) {
		p[0] = mt | 25;
		p[1] = (uint8_t)(v >> 8);
		p[2] = (uint8_t)v;
		return 3;
	}
	if (v <= 0xffffffffull) {
		p[0] = mt | 26;
		for (int i = 0; i < 4; i++)
			p[1 + i] = (uint8_t)(v >> (24 - 8 * i));
		return 5;
	}
	p[0] = mt | 27;
	for (int i = 0; i < 8; i++)
		p[1 + i] = (uint8_t)(v >> (56 - 8 * i));
	return 9;
}

static size_t hint(int64_t v, uint8_t *p)
{
	return v >= 0 ? head(0, (uint64_t)v, p) : head(1, (uint64_t)(-(v + 1)), p);
}

TEST(reading_bytes_match_rfc8949)
{
	struct gmp_msg m = { .type = GMP_READING, .reading = {
		.seq = 70000, .start = 1790000000, .interval_s = 60,
		.import_mwh = 33333, .export_mwh = 0, .renew_mwh = 250, .flags = 1 } };
	int64_t v[] = { GMP_READING, 70000, 1790000000, 60, 33333, 0, 250, 1 };
	uint8_t want[64], got[64];
	size_t wn = 0, off = 0;

	wn += head(4, 8, want);
	for (size_t i = 0; i < 8; i++)
		wn += hint(v[i], want + wn);
	ASSERT_EQ(0, gmp_encode(&m, got, sizeof(got), &off));
	ASSERT_EQ(wn, off);
	EXPECT_EQ(0, memcmp(want, got, wn));
}

TEST(negative_values_and_tariff_bytes)
{
	struct gmp_msg m = { .type = GMP_TARIFF, .tariff = {
		.tseq = 3, .effective = 1800000000, .n = 2,
		.p = { { 0, 120000, -5000 }, { 420, 310000, 80000 } } } };
	uint8_t want[64], got[64];
	size_t wn = 0, off = 0;

	wn += head(4, 4, want + wn);
	wn += hint(GMP_TARIFF, want + wn);
	wn += hint(3, want + wn);
	wn += hint(1800000000, want + wn);
	wn += head(4, 2, want + wn);
	wn += head(4, 3, want + wn);
	wn += hint(0, want + wn);
	wn += hint(120000, want + wn);
	wn += hint(-5000, want + wn);
	wn += head(4, 3, want + wn);
	wn += hint(420, want + wn);
	wn += hint(310000, want + wn);
	wn += hint(80000, want + wn);
	ASSERT_EQ(0, gmp_encode(&m, got, sizeof(got), &off));
	ASSERT_EQ(wn, off);
	EXPECT_EQ(0, memcmp(want, got, wn));
}

static int64_t rnd_in(int64_t lo, int64_t hi)
{
	uint64_t span = (uint64_t)hi - (uint64_t)lo, r;

	r = (uint64_t)random() << 42 ^ (uint64_t)random() << 21 ^ (uint64_t)random();
	/* favour the edges: they are where encodings change size */
	switch (random() % 4) {
	case 0: return lo;
	case 1: return hi;
	default: return span == UINT64_MAX ? (int64_t)r : (int64_t)((uint64_t)lo + r % (span + 1));
	}
}

static void random_msg(struct gmp_msg *m, int type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	switch (type) {
	case GMP_READING:
		m->reading.seq = rnd_in(1, INT64_MAX);
		m->reading.start = rnd_in(0, (int64_t)1 << 40);
		m->reading.interval_s = rnd_in(1, 86400);
		m->reading.import_mwh = rnd_in(0, (int64_t)1 << 53);
		m->reading.export_mwh = rnd_in(0, (int64_t)1 << 53);
		m->reading.renew_mwh = rnd_in(0, (int64_t)1 << 53);
		m->reading.flags = rnd_in(0, 0xffff);
		break;
	case GMP_REGISTERS:
		m->regs.seq = rnd_in(1, INT64_MAX);
		m->regs.time = rnd_in(0, 1 << 30);
		m->regs.import_mwh = rnd_in(0, (int64_t)1 << 53);
		m->regs.export_mwh = rnd_in(0, (int64_t)1 << 53);
		m->regs.renew_mwh = rnd_in(0, (int64_t)1 << 53);
		break;
	case GMP_ALARM:
		m->alarm.seq = rnd_in(1, INT64_MAX);
		m->alarm.time = rnd_in(0, 1 << 30);
		m->alarm.code = rnd_in(0, 255);
		m->alarm.active = rnd_in(0, 1);
		m->alarm.value = rnd_in(INT64_MIN, INT64_MAX);
		break;
	case GMP_ALLOC_REQ:
		m->alloc_req.seq = rnd_in(1, INT64_MAX);
		m->alloc_req.time = rnd_in(0, 1 << 30);
		m->alloc_req.req_id = rnd_in(0, UINT32_MAX);
		m->alloc_req.power_w = rnd_in(-((int64_t)1 << 40), (int64_t)1 << 40);
		m->alloc_req.duration_s = rnd_in(0, 86400);
		break;
	case GMP_ALLOC_REL:
		m->alloc_rel.seq = rnd_in(1, INT64_MAX);
		m->alloc_rel.time = rnd_in(0, 1 << 30);
		m->alloc_rel.req_id = rnd_in(0, UINT32_MAX);
		break;
	case GMP_MACK:
	case GMP_ACK:
		m->ack.upto = rnd_in(0, INT64_MAX);
		break;
	case GMP_SYNC:
		m->sync.base = rnd_in(1, INT64_MAX);
		break;
	case GMP_GRANT:
		m->grant.tseq = rnd_in(1, INT64_MAX);
		m->grant.req_id = rnd_in(0, UINT32_MAX);
		m->grant.granted_w = rnd_in(-((int64_t)1 << 40), (int64_t)1 << 40);
		m->grant.until = rnd_in(0, 1 << 30);
		break;
	case GMP_TARIFF:
		m->tariff.tseq = rnd_in(1, INT64_MAX);
		m->tariff.effective = rnd_in(0, 1 << 30);
		m->tariff.n = rnd_in(1, GMP_TARIFF_MAX);
		for (int i = 0; i < m->tariff.n; i++) {
			m->tariff.p[i].start_min = rnd_in(0, 1439);
			m->tariff.p[i].import_price = rnd_in(-1000000, 1000000);
			m->tariff.p[i].export_price = rnd_in(-1000000, 1000000);
		}
		break;
	case GMP_TIME:
		m->time.unix_ms = rnd_in(0, (int64_t)1 << 49);
		break;
	}
}

static const int all_types[] = {
	GMP_READING, GMP_REGISTERS, GMP_ALARM, GMP_ALLOC_REQ, GMP_ALLOC_REL,
	GMP_MACK, GMP_SYNC, GMP_ACK, GMP_GRANT, GMP_TARIFF, GMP_TIME,
};
#define NTYPES (sizeof(all_types) / sizeof(all_types[0]))

TEST(roundtrip_every_type_as_a_sequence)
{
	srandom(1);
	for (int round = 0; round < 2000; round++) {
		struct gmp_msg in[NTYPES], out;
		uint8_t buf[2048];
		size_t off = 0, roff = 0;

		for (size_t i = 0; i < NTYPES; i++) {
			random_msg(&in[i], all_types[i]);
			ASSERT_EQ(0, gmp_encode(&in[i], buf, sizeof(buf), &off));
		}
		for (size_t i = 0; i < NTYPES; i++) {
			ASSERT_EQ(1, gmp_decode_next(buf, off, &roff, &out));
			ASSERT_EQ(0, memcmp(&in[i], &out, sizeof(out)))
				TH_LOG("type %d round %d", all_types[i], round);
		}
		EXPECT_EQ(off, roff);
		EXPECT_EQ(0, gmp_decode_next(buf, off, &roff, &out));
	}
}

TEST(encode_rejects_out_of_range_and_short_buffers)
{
	struct gmp_msg m = { .type = GMP_READING, .reading = {
		.seq = 0, .start = 1, .interval_s = 60 } };
	uint8_t buf[64];
	size_t off = 0;

	EXPECT_EQ(-GMP_E_RANGE, gmp_encode(&m, buf, sizeof(buf), &off));
	m.reading.seq = 1;
	m.reading.interval_s = 86401;
	EXPECT_EQ(-GMP_E_RANGE, gmp_encode(&m, buf, sizeof(buf), &off));
	m.reading.interval_s = 60;
	m.reading.import_mwh = -1;
	EXPECT_EQ(-GMP_E_RANGE, gmp_encode(&m, buf, sizeof(buf), &off));
	m.reading.import_mwh = 5;
	m.type = 42;
	EXPECT_EQ(-GMP_E_TYPE, gmp_encode(&m, buf, sizeof(buf), &off));
	m.type = GMP_READING;
	EXPECT_EQ(0, off);
	ASSERT_EQ(0, gmp_encode(&m, buf, sizeof(buf), &off));
	for (size_t n = 0; n < off; n++) {
		size_t o2 = 0;

		EXPECT_EQ(-GMP_E_SPACE, gmp_encode(&m, buf, n, &o2));
		EXPECT_EQ(0, o2);
	}
}

TEST(decode_rejects_what_the_schema_forbids)
{
	/* each case built by hand; all must fail without consuming */
	static const struct { uint8_t b[16]; size_t n; int err; } c[] = {
		{ { 0x81, 0x10 }, 2, -GMP_E_MALFORMED },		/* [16] too short */
		{ { 0x83, 0x10, 0x01, 0x02 }, 4, -GMP_E_MALFORMED },	/* ack with 2 fields */
		{ { 0x82, 0x18, 0x2a, 0x01 }, 4, -GMP_E_TYPE },		/* type 42 */
		{ { 0x82, 0x10, 0x20 }, 3, -GMP_E_RANGE },		/* ack upto -1 */
		{ { 0x82, 0x07, 0x00 }, 3, -GMP_E_RANGE },		/* sync base 0 */
		{ { 0xa1, 0x01, 0x02 }, 3, -GMP_E_MALFORMED },		/* map */
		{ { 0x9f, 0x10, 0x01, 0xff }, 4, -GMP_E_MALFORMED },	/* indefinite */
		{ { 0x82, 0x10, 0x41, 0x00 }, 4, -GMP_E_MALFORMED },	/* bytes */
		{ { 0x82, 0x10, 0xf5 }, 3, -GMP_E_MALFORMED },		/* true */
		{ { 0x82, 0x10, 0xc1, 0x01 }, 4, -GMP_E_MALFORMED },	/* tag */
		{ { 0x82, 0x10, 0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0 }, 11, -GMP_E_MALFORMED }, /* 2^63 */
		{ { 0x82, 0x10, 0x1b, 0x00 }, 4, -GMP_E_MALFORMED },	/* truncated */
		{ { 0x82, 0x13, 0xfb, 0, 0, 0, 0, 0, 0, 0, 0 }, 11, -GMP_E_MALFORMED }, /* float */
		{ { 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 9, -GMP_E_MALFORMED },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct gmp_msg m;
		size_t off = 0;

		EXPECT_EQ(c[i].err, gmp_decode_next(c[i].b, c[i].n, &off, &m)) TH_LOG("case %zu", i);
		EXPECT_EQ(0, off);
	}
}

TEST(every_truncation_is_an_error)
{
	struct gmp_msg m;
	uint8_t buf[512];

	srandom(2);
	for (size_t t = 0; t < NTYPES; t++) {
		size_t len = 0;

		random_msg(&m, all_types[t]);
		ASSERT_EQ(0, gmp_encode(&m, buf, sizeof(buf), &len));
		for (size_t n = 1; n < len; n++) {
			size_t off = 0;
			uint8_t *copy = malloc(n);	/* exact size: ASan/valgrind see overreads */

			memcpy(copy, buf, n);
			EXPECT_GT(0, gmp_decode_next(copy, n, &off, &m));
			free(copy);
		}
	}
}

/*
 * Random bytes and mutations of valid messages: the decoder returns, and
 * whatever it accepts re-encodes to exactly the bytes it consumed (CBOR's
 * preferred encoding is the only one libcbor's encoder produces; a longer
 * head for the same value is accepted but then re-encodes shorter).
 */
TEST(random_bytes_never_crash)
{
	uint8_t buf[256], re[512];
	unsigned long accepted = 0;

	srandom(3);
	for (int it = 0; it < 200000; it++) {
		size_t len = (size_t)(random() % 64), off = 0;
		struct gmp_msg m, m2;
		int rc;

		if (it % 2) {
			size_t l2 = 0;

			random_msg(&m, all_types[random() % NTYPES]);
			gmp_encode(&m, buf, sizeof(buf), &l2);
			len = l2;
			for (int k = 0; k < 1 + random() % 3; k++)
				buf[random() % len] ^= (uint8_t)(1 + random() % 255);
		} else {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)random();
		}
		while ((rc = gmp_decode_next(buf, len, &off, &m)) == 1) {
			size_t rl = 0, o3 = 0;

			accepted++;
			ASSERT_LE(off, len);
			ASSERT_EQ(0, gmp_encode(&m, re, sizeof(re), &rl));
			ASSERT_EQ(1, gmp_decode_next(re, rl, &o3, &m2));
			ASSERT_EQ(0, memcmp(&m, &m2, sizeof(m)));
		}
		ASSERT_GE(0, rc);
	}
	TH_LOG("accepted %lu messages from mutated input", accepted);
}

TEST(sizes_of_a_typical_day)
{
	/* a 60 s reading of ~2 kW, a year into the sequence */
	struct gmp_msg r = { .type = GMP_READING, .reading = {
		.seq = 525600, .start = 1790000000, .interval_s = 60,
		.import_mwh = 33333, .export_mwh = 0, .renew_mwh = 0 } };
	struct gmp_msg a = { .type = GMP_ACK, .ack = { .upto = 525600 } };
	uint8_t buf[64];
	size_t n = 0;

	ASSERT_EQ(0, gmp_encode(&r, buf, sizeof(buf), &n));
	/* 1 array + 1 type + 5 seq + 5 start + 2 interval + 3 import + 3 x 1 */
	EXPECT_EQ(1 + 1 + 5 + 5 + 2 + 3 + 1 + 1 + 1, n);
	n = 0;
	ASSERT_EQ(0, gmp_encode(&a, buf, sizeof(buf), &n));
	EXPECT_EQ(1 + 1 + 5, n);	/* type 16 fits the head */
}

TEST_HARNESS_MAIN
