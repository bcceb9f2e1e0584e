// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for the gmproto (version 2) message decoder and the
 * envelope openers (lib/proto/gmproto.c).
 *
 * The input is decoded as a CBOR sequence with gmp_decode_next() until it
 * returns <= 0. Properties checked:
 *   - no crash, no out-of-bounds access (ASan/UBSan; libcbor and libsodium
 *     are not instrumented);
 *   - *off only moves forward, never past len, is unchanged when an error
 *     is returned; 0 (end) is returned only at len or at padding (a zero
 *     byte followed by zero bytes only), and *off is then len;
 *   - the decoder writes every byte of struct gmp_msg: two decodes into
 *     structs poisoned with different bytes compare equal with memcmp();
 *   - every accepted message re-encodes with gmp_encode(), decoding the
 *     re-encoding gives an identical struct and consumes all of it, and
 *     encoding that again gives the same bytes (the encoding is a fixed
 *     point; consumption fields may re-encode wider than they came);
 *   - a message decodes the same from exactly its own bytes (the decoder
 *     does not look past the end of a message).
 * The input is also opened as a session envelope with a fixed town server
 * session and as a handshake envelope with fixed long-term keys. Openers
 * return a negative error or a padded plaintext length below the input
 * length, and a refused session envelope leaves the session untouched.
 * When one opens, sealing its plaintext again must reproduce the input
 * exactly: the session envelope by gmp_seal() with the same counter, the
 * handshake envelope by libsodium directly with the envelope's nonce and
 * the associated data written out here from the specification (only a
 * correctly sealed envelope opens); the plaintext is decoded as above.
 *
 * Built with -DGM_FUZZ_SEEDS it is instead a program writing seed inputs
 * into the directory given as argv[1] (tests/fuzz/run.sh): each message
 * type, tariffs of several periods, a sequence of all types, a padded
 * sequence, and sealed session and handshake envelopes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gmproto.h"

/* The largest message is a tariff of GMP_TARIFF_MAX periods: < 300 bytes. */
#define MSG_BUF		512

static const struct gmp_addr fuzz_addr = {
	.type = 1, .flags = 1, .src = 17, .dst = 0,
};

/* Fixed long-term keys and one session of a fixed handshake, both ends. */
static void fixed_keys(struct gmp_lt *lmeter, struct gmp_lt *ltown,
		       struct gmp_session *meter, struct gmp_session *town)
{
	unsigned char seed[crypto_kx_SEEDBYTES];
	uint8_t rm[GMP_RAND_LEN], rt[GMP_RAND_LEN];
	struct gmp_keypair mk, tk;

	if (sodium_init() < 0)
		abort();
	memset(seed, 0x4d, sizeof(seed));
	crypto_kx_seed_keypair(mk.pk, mk.sk, seed);
	memset(seed, 0x54, sizeof(seed));
	crypto_kx_seed_keypair(tk.pk, tk.sk, seed);
	if (gmp_lt_meter(lmeter, &mk, tk.pk) || gmp_lt_town(ltown, &tk, mk.pk))
		abort();
	memset(rm, 0x52, sizeof(rm));
	memset(rt, 0x72, sizeof(rt));
	gmp_session_derive(meter, lmeter, rm, rt, 9);
	gmp_session_derive(town, ltown, rm, rt, 9);
}

#ifndef GM_FUZZ_SEEDS
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_msg(const uint8_t *buf, size_t start, size_t end,
		      const struct gmp_msg *m)
{
	static uint8_t re[MSG_BUF], re2[MSG_BUF];
	struct gmp_msg m2, m3;
	size_t rl = 0, rl2 = 0, o = 0;

	if (gmp_encode(m, re, sizeof(re), &rl) || rl == 0)
		abort();
	memset(&m2, 0x5a, sizeof(m2));
	if (gmp_decode_next(re, rl, &o, &m2) != 1 || o != rl ||
	    memcmp(m, &m2, sizeof(m2)))
		abort();
	if (gmp_encode(&m2, re2, sizeof(re2), &rl2) || rl2 != rl ||
	    memcmp(re, re2, rl))
		abort();
	o = 0;
	memset(&m3, 0xc3, sizeof(m3));
	if (gmp_decode_next(buf + start, end - start, &o, &m3) != 1 ||
	    o != end - start || memcmp(m, &m3, sizeof(m3)))
		abort();
}

static void decode_all(const uint8_t *buf, size_t len)
{
	struct gmp_msg m;
	size_t off = 0;
	int rc;

	for (;;) {
		size_t prev = off;

		memset(&m, 0xa5, sizeof(m));
		rc = gmp_decode_next(buf, len, &off, &m);
		if (rc < 0) {
			/* an error only before the end, and nothing consumed */
			if (off != prev || off >= len)
				abort();
			return;
		}
		if (rc == 0) {
			/* the end, or padding: zero bytes only, all consumed */
			if (off != len)
				abort();
			for (size_t i = prev; i < len; i++)
				if (buf[i])
					abort();
			return;
		}
		if (rc != 1 || off <= prev || off > len)
			abort();
		check_msg(buf, prev, off, &m);
	}
}

static void check_session(const struct gmp_session *meter0,
			  const struct gmp_session *town0,
			  const uint8_t *data, size_t size)
{
	static uint8_t plain[4096], env[GMP_PLAIN_MAX + GMP_ENV_OVERHEAD_MAX];
	struct gmp_session t = *town0, m = *meter0;
	uint64_t ctr = 0;
	int n, e;

	if (size > sizeof(plain))
		return;
	n = gmp_open(&t, &fuzz_addr, data, size, plain, sizeof(plain), &ctr);
	if (n < 0) {
		if (memcmp(&t, town0, sizeof(t)))
			abort();	/* a rejected envelope left a trace */
		return;
	}
	if ((size_t)n + GMP_ENV_MIN > size || ctr == 0 || t.rx_ctr != ctr ||
	    n % GMP_PAD_QUANTUM)
		abort();
	/* only what the meter would have sent with that counter opens */
	m.tx_ctr = ctr - 1;
	e = gmp_seal(&m, &fuzz_addr, plain, (size_t)n, env, sizeof(env));
	if (e < 0 || (size_t)e != size || memcmp(env, data, size))
		abort();
	decode_all(plain, (size_t)n);
}

static void check_handshake(const struct gmp_lt *lmeter, const struct gmp_lt *ltown,
			    const uint8_t *data, size_t size)
{
	static uint8_t plain[4096], env[4096 + GMP_HS_OVERHEAD];
	uint8_t ad[6 + 1 + GMP_NONCE_LEN];
	unsigned long long clen;
	int n;

	if (size > sizeof(plain))
		return;
	n = gmp_hs_open(ltown, &fuzz_addr, data, size, plain, sizeof(plain));
	if (n < 0)
		return;
	if ((size_t)n + GMP_HS_OVERHEAD != size || n % GMP_PAD_QUANTUM)
		abort();
	/* protocol.md: frame version<<4 | type, flags, src, dst, then the prefix */
	ad[0] = (uint8_t)(1 << 4 | fuzz_addr.type);
	ad[1] = fuzz_addr.flags;
	ad[2] = (uint8_t)(fuzz_addr.src >> 8);
	ad[3] = (uint8_t)fuzz_addr.src;
	ad[4] = (uint8_t)(fuzz_addr.dst >> 8);
	ad[5] = (uint8_t)fuzz_addr.dst;
	memcpy(ad + 6, data, 1 + GMP_NONCE_LEN);
	env[0] = GMP_ENV_HANDSHAKE;
	memcpy(env + 1, data + 1, GMP_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(env + 1 + GMP_NONCE_LEN, &clen, plain,
						   (size_t)n, ad, sizeof(ad), NULL, data + 1,
						   lmeter->tx);
	if (1 + GMP_NONCE_LEN + clen != size || memcmp(env, data, size))
		abort();
	decode_all(plain, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gmp_session meter, town;
	static struct gmp_lt lmeter, ltown;
	static int ready;

	if (!ready) {
		fixed_keys(&lmeter, &ltown, &meter, &town);
		ready = 1;
	}
	decode_all(data, size);
	check_session(&meter, &town, data, size);
	check_handshake(&lmeter, &ltown, data, size);
	return 0;
}
#else
static const struct gmp_msg examples[] = {
	{ .type = GMP_READING, .reading = {
		.seq = 70000, .start = 1790000000, .interval_s = 60,
		.import_mwh = 33333, .export_mwh = 0, .renew_mwh = 250, .flags = 1 } },
	{ .type = GMP_REGISTERS, .regs = {
		.seq = 70001, .time = 1790000060, .import_mwh = 123456789012LL,
		.export_mwh = 42, .renew_mwh = 7, .flags = GMP_RF_RESTORED } },
	{ .type = GMP_ALARM, .alarm = {
		.seq = 70002, .time = 1790000061, .code = 3, .active = 1,
		.value = -12000 } },
	{ .type = GMP_ALLOC_REQ, .alloc_req = {
		.seq = 70003, .time = 1790000062, .req_id = 4000000000LL,
		.power_w = -3500, .duration_s = 7200 } },
	{ .type = GMP_ALLOC_REL, .alloc_rel = {
		.seq = 70004, .time = 1790000063, .req_id = 9 } },
	{ .type = GMP_CMD_RESULT, .cmd_result = { .tseq = 12, .status = GMP_CMD_UNSUPPORTED } },
	{ .type = GMP_LOST, .lost = { .first = 69000, .last = 69010 } },
	{ .type = GMP_KEY_ROTATE, .key_rotate = { .seq = 70005, .time = 1790000065,
		.pk = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 } } },
	{ .type = GMP_ACK, .ack = { .upto = 70004 } },
	{ .type = GMP_GRANT, .grant = {
		.tseq = 13, .req_id = 4000000000LL, .granted_w = -3000,
		.until = 1790007262 } },
	{ .type = GMP_TARIFF, .tariff = {
		.tseq = 14, .effective = 1790006400, .n = 4,
		.p = { { 0, 120000, -5000 }, { 420, 310000, 80000 },
		       { 1020, 450000, 100000 }, { 1320, 150000, 0 } } } },
	{ .type = GMP_TOWN_KEY, .town_key = { .tseq = 15, .pk = { 0xfe, 0xed } } },
	{ .type = GMP_HELLO, .hello = { .rm = { 0x11, 0x22 }, .now_ms = 1790000064123LL,
		.clock_trusted = 1, .cmd_floor = 14, .next_seq = 70006, .first_held = 69011,
		.flags = GMP_HELLO_UNCLEAN } },
	{ .type = GMP_WELCOME, .welcome = { .rm = { 0x11, 0x22 }, .rt = { 0x33 }, .sid = 9,
		.now_ms = 1790000064200LL, .upto = 70004, .cmd_next = 15,
		.reg_import_mwh = 123456789012LL, .reg_export_mwh = 42, .reg_renew_mwh = 7,
		.reg_time = 1790000060 } },
	{ .type = GMP_REHELLO, .rehello = { .reason = GMP_REHELLO_NO_SESSION } },
	/* edges: the largest values of the widest fields */
	{ .type = GMP_READING, .reading = {
		.seq = INT64_MAX, .start = (int64_t)1 << 40, .interval_s = 86400,
		.import_mwh = (int64_t)1 << 53, .export_mwh = (int64_t)1 << 53,
		.renew_mwh = (int64_t)1 << 53, .flags = 0xffff } },
	{ .type = GMP_ALARM, .alarm = {
		.seq = 1, .time = 0, .code = 255, .active = 0,
		.value = INT64_MIN } },
	{ .type = GMP_TARIFF, .tariff = { .tseq = 1, .effective = 0, .n = 1 } },
	/* issue 13: signed commands (a byte string of variable length), town reports */
	{ .type = GMP_SIGNED, .signed_cmd = { .tseq = 16, .len = 187,
		.blob = { 1, 1, 0, 7, 0, 42 } } },
	{ .type = GMP_SIGNED, .signed_cmd = { .tseq = 17, .len = 1, .blob = { 0xff } } },
	{ .type = GMP_TOWN_SUMMARY, .summary = { .tseq = 18, .month = 202611, .meters = 300,
		.import_wh = 123456789, .export_wh = 4567, .renew_wh = 890, .lent_wh = 12000,
		.borrowed_wh = 3400, .admin_hours = 5, .alarms = 2, .estimated_hours = 17,
		.billed_minor = 9876543 } },
	{ .type = GMP_CMD_REPORT, .cmd_report = { .seq = 70010, .time = 1790000070,
		.cmd_id = INT64_MAX, .meter = 42, .state = GMP_CS_REFUSED,
		.status = GMP_CMD_BAD_SIG } },
	{ .type = GMP_METER_ALARM, .meter_alarm = { .seq = 70011, .time = 1790000071,
		.meter = 65535, .code = 3, .active = 1, .value = -12000 } },
	{ .type = GMP_SECURITY, .security = { .seq = 70012, .time = 1790000100,
		.interval_s = 60, .meter = 42, .addr = 0x7f000001, .kind = GMP_SEC_REPLAY,
		.count = 17 } },
};

#define NEXAMPLES	(sizeof(examples) / sizeof(examples[0]))

static int write_seed(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return -1;
	if (fwrite(b, 1, n, f) != n) {
		fclose(f);
		return -1;
	}
	return fclose(f) ? -1 : 0;
}

static int encode_or_die(const struct gmp_msg *m, uint8_t *buf, size_t size, size_t *off)
{
	int rc = gmp_encode(m, buf, size, off);

	if (rc)
		fprintf(stderr, "proto seeds: %s: %s\n", gmp_type_name(m->type),
			gmp_strerror(rc));
	return rc;
}

int main(int argc, char **argv)
{
	static uint8_t buf[4096], env[GMP_PAYLOAD_MAX];
	struct gmp_session meter, town;
	struct gmp_lt lmeter, ltown;
	struct gmp_msg full;
	size_t n, seq = 0;
	char name[64];
	int e;

	if (argc != 2)
		return 2;
	fixed_keys(&lmeter, &ltown, &meter, &town);
	for (size_t i = 0; i < NEXAMPLES; i++) {
		n = 0;
		if (encode_or_die(&examples[i], buf, sizeof(buf), &n))
			return 1;
		snprintf(name, sizeof(name), "%02zu-%s", i, gmp_type_name(examples[i].type));
		if (write_seed(argv[1], name, buf, n))
			return 1;
	}

	/* a tariff of every period the protocol allows */
	full = (struct gmp_msg){ .type = GMP_TARIFF, .tariff = {
		.tseq = 15, .effective = 1790092800, .n = GMP_TARIFF_MAX } };
	for (int i = 0; i < GMP_TARIFF_MAX; i++) {
		full.tariff.p[i].start_min = i * 120;
		full.tariff.p[i].import_price = 100000 + i * 25000;
		full.tariff.p[i].export_price = i % 2 ? -i * 1000 : i * 5000;
	}
	n = 0;
	if (encode_or_die(&full, buf, sizeof(buf), &n) ||
	    write_seed(argv[1], "tariff-max", buf, n))
		return 1;

	/* every example in one CBOR sequence, then the same padded */
	for (size_t i = 0; i < NEXAMPLES; i++)
		if (encode_or_die(&examples[i], buf, sizeof(buf), &seq))
			return 1;
	if (write_seed(argv[1], "sequence", buf, seq))
		return 1;
	memset(buf + seq, 0, gmp_pad_len(seq) - seq);
	if (write_seed(argv[1], "sequence-padded", buf, gmp_pad_len(seq)))
		return 1;

	/* a sealed session frame payload: the meter -> town messages of the examples */
	seq = 0;
	for (size_t i = 0; i < 5; i++)
		if (encode_or_die(&examples[i], buf, GMP_PLAIN_MAX, &seq))
			return 1;
	meter.tx_ctr = 299;	/* a two-byte counter */
	e = gmp_seal(&meter, &fuzz_addr, buf, seq, env, sizeof(env));
	if (e < 0) {
		fprintf(stderr, "proto seeds: seal: %s\n", gmp_strerror(e));
		return 1;
	}
	if (write_seed(argv[1], "envelope", env, (size_t)e))
		return 1;
	/* a sealed HELLO (the meter's long-term key, as the town opens it) */
	for (size_t i = 0; i < NEXAMPLES; i++) {
		if (examples[i].type != GMP_HELLO)
			continue;
		n = 0;
		if (encode_or_die(&examples[i], buf, sizeof(buf), &n))
			return 1;
		e = gmp_hs_seal(&lmeter, &fuzz_addr, buf, n, env, sizeof(env));
		if (e < 0 || write_seed(argv[1], "handshake", env, (size_t)e))
			return 1;
	}
	gmp_session_wipe(&meter);
	gmp_session_wipe(&town);
	gmp_lt_wipe(&lmeter);
	gmp_lt_wipe(&ltown);
	return 0;
}
#endif
