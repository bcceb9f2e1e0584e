// SPDX-License-Identifier: GPL-2.0
/*
 * gmproto: message encoding (CBOR via libcbor) and the AEAD session
 * (libsodium). See gmproto.h and Documentation/protocol.md.
 */
#include <stddef.h>
#include <string.h>

#include <cbor.h>
#include <sodium.h>

#include "gmproto.h"

/* ---- schema -------------------------------------------------------------- */

struct gmp_field {
	unsigned short off;	/* offset in struct gmp_msg */
	int64_t min, max;
};

struct gmp_schema {
	int type;
	const char *name;
	unsigned int n;		/* integer fields after the type */
	struct gmp_field f[7];
};

#define F(member, lo, hi) { offsetof(struct gmp_msg, member), (lo), (hi) }
#define SEQ_MAX		INT64_MAX
#define T_MAX		((int64_t)1 << 40)	/* UTC seconds: year 36812 */
#define MWH_MAX		((int64_t)1 << 53)
#define POW_MAX		((int64_t)1 << 40)

static const struct gmp_schema schemas[] = {
	{ GMP_READING, "reading", 7, {
		F(reading.seq, 1, SEQ_MAX), F(reading.start, 0, T_MAX),
		F(reading.interval_s, 1, 86400), F(reading.import_mwh, 0, MWH_MAX),
		F(reading.export_mwh, 0, MWH_MAX), F(reading.renew_mwh, 0, MWH_MAX),
		F(reading.flags, 0, 0xffff) } },
	{ GMP_REGISTERS, "registers", 5, {
		F(regs.seq, 1, SEQ_MAX), F(regs.time, 0, T_MAX),
		F(regs.import_mwh, 0, MWH_MAX), F(regs.export_mwh, 0, MWH_MAX),
		F(regs.renew_mwh, 0, MWH_MAX) } },
	{ GMP_ALARM, "alarm", 5, {
		F(alarm.seq, 1, SEQ_MAX), F(alarm.time, 0, T_MAX),
		F(alarm.code, 0, 255), F(alarm.active, 0, 1),
		F(alarm.value, INT64_MIN, INT64_MAX) } },
	{ GMP_ALLOC_REQ, "alloc-request", 5, {
		F(alloc_req.seq, 1, SEQ_MAX), F(alloc_req.time, 0, T_MAX),
		F(alloc_req.req_id, 0, UINT32_MAX), F(alloc_req.power_w, -POW_MAX, POW_MAX),
		F(alloc_req.duration_s, 0, 86400 * 366) } },
	{ GMP_ALLOC_REL, "alloc-release", 3, {
		F(alloc_rel.seq, 1, SEQ_MAX), F(alloc_rel.time, 0, T_MAX),
		F(alloc_rel.req_id, 0, UINT32_MAX) } },
	{ GMP_MACK, "meter-ack", 1, { F(ack.upto, 0, SEQ_MAX) } },
	{ GMP_SYNC, "sync", 1, { F(sync.base, 1, SEQ_MAX) } },
	{ GMP_ACK, "ack", 1, { F(ack.upto, 0, SEQ_MAX) } },
	{ GMP_GRANT, "grant", 4, {
		F(grant.tseq, 1, SEQ_MAX), F(grant.req_id, 0, UINT32_MAX),
		F(grant.granted_w, -POW_MAX, POW_MAX), F(grant.until, 0, T_MAX) } },
	{ GMP_TARIFF, "tariff", 2, {
		F(tariff.tseq, 1, SEQ_MAX), F(tariff.effective, 0, T_MAX) } },
	{ GMP_TIME, "time", 1, { F(time.unix_ms, 0, T_MAX * 1000) } },
};

static const struct gmp_field tariff_fields[3] = {
	{ 0, 0, 1439 }, { 0, -POW_MAX, POW_MAX }, { 0, -POW_MAX, POW_MAX },
};
#undef F

static const struct gmp_schema *schema_of(int type)
{
	for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++)
		if (schemas[i].type == type)
			return &schemas[i];
	return NULL;
}

static const struct gmp_field *field_at(const struct gmp_schema *s, unsigned int i)
{
	return &s->f[i];
}

static int64_t *field_ptr(struct gmp_msg *m, const struct gmp_field *f)
{
	return (int64_t *)((char *)m + f->off);
}

static int64_t field_get(const struct gmp_msg *m, const struct gmp_field *f)
{
	return *(const int64_t *)((const char *)m + f->off);
}

const char *gmp_type_name(int type)
{
	const struct gmp_schema *s = schema_of(type);

	return s ? s->name : "unknown";
}

int64_t gmp_msg_seq(const struct gmp_msg *m)
{
	switch (m->type) {
	case GMP_READING: return m->reading.seq;
	case GMP_REGISTERS: return m->regs.seq;
	case GMP_ALARM: return m->alarm.seq;
	case GMP_ALLOC_REQ: return m->alloc_req.seq;
	case GMP_ALLOC_REL: return m->alloc_rel.seq;
	default: return 0;
	}
}

const char *gmp_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0: return "success";
	case GMP_E_SPACE: return "buffer too small";
	case GMP_E_MALFORMED: return "malformed message";
	case GMP_E_TYPE: return "unknown message type";
	case GMP_E_RANGE: return "field out of range";
	case GMP_E_VERSION: return "unsupported protocol version";
	case GMP_E_SHORT: return "truncated envelope";
	case GMP_E_REPLAY: return "replayed or reordered counter";
	case GMP_E_AUTH: return "authentication failed";
	case GMP_E_KEY: return "bad key";
	default: return "unknown error";
	}
}

/* ---- encoding ------------------------------------------------------------ */

static size_t enc_int(int64_t v, uint8_t *p, size_t room)
{
	if (v >= 0)
		return cbor_encode_uint((uint64_t)v, p, room);
	return cbor_encode_negint((uint64_t)(-(v + 1)), p, room);
}

static int put_int(int64_t v, const struct gmp_field *f, uint8_t *buf, size_t size,
		   size_t *pos)
{
	size_t n;

	if (v < f->min || v > f->max)
		return -GMP_E_RANGE;
	n = enc_int(v, buf + *pos, size - *pos);
	if (!n)
		return -GMP_E_SPACE;
	*pos += n;
	return 0;
}

static int put_head(size_t (*fn)(size_t, unsigned char *, size_t), size_t v,
		    uint8_t *buf, size_t size, size_t *pos)
{
	size_t n = fn(v, buf + *pos, size - *pos);

	if (!n)
		return -GMP_E_SPACE;
	*pos += n;
	return 0;
}

int gmp_encode(const struct gmp_msg *m, uint8_t *buf, size_t size, size_t *off)
{
	const struct gmp_schema *s = schema_of(m->type);
	static const struct gmp_field type_field = { 0, 0, 31 };
	size_t pos = *off;
	int rc;

	if (!s)
		return -GMP_E_TYPE;
	if (pos > size)
		return -GMP_E_SPACE;
	rc = put_head(cbor_encode_array_start, 1 + s->n + (m->type == GMP_TARIFF),
		      buf, size, &pos);
	if (!rc)
		rc = put_int(m->type, &type_field, buf, size, &pos);
	for (unsigned int i = 0; !rc && i < s->n; i++)
		rc = put_int(field_get(m, field_at(s, i)), field_at(s, i), buf, size, &pos);
	if (!rc && m->type == GMP_TARIFF) {
		if (m->tariff.n < 1 || m->tariff.n > GMP_TARIFF_MAX)
			return -GMP_E_RANGE;
		rc = put_head(cbor_encode_array_start, (size_t)m->tariff.n, buf, size, &pos);
		for (int64_t i = 0; !rc && i < m->tariff.n; i++) {
			rc = put_head(cbor_encode_array_start, 3, buf, size, &pos);
			if (!rc)
				rc = put_int(m->tariff.p[i].start_min, &tariff_fields[0],
					     buf, size, &pos);
			if (!rc)
				rc = put_int(m->tariff.p[i].import_price, &tariff_fields[1],
					     buf, size, &pos);
			if (!rc)
				rc = put_int(m->tariff.p[i].export_price, &tariff_fields[2],
					     buf, size, &pos);
		}
	}
	if (rc)
		return rc;
	*off = pos;
	return 0;
}

/* ---- decoding: one CBOR head at a time, through libcbor's stream API ---- */

enum tok_kind { TOK_NONE, TOK_INT, TOK_ARRAY, TOK_BAD };

struct tok {
	enum tok_kind kind;
	int64_t v;		/* TOK_INT value, TOK_ARRAY length */
};

static void t_uint(void *c, uint64_t v)
{
	struct tok *t = c;

	if (v > (uint64_t)INT64_MAX) {
		t->kind = TOK_BAD;
		return;
	}
	t->kind = TOK_INT;
	t->v = (int64_t)v;
}

static void t_u8(void *c, uint8_t v) { t_uint(c, v); }
static void t_u16(void *c, uint16_t v) { t_uint(c, v); }
static void t_u32(void *c, uint32_t v) { t_uint(c, v); }

static void t_neg(void *c, uint64_t v)
{
	struct tok *t = c;

	if (v > (uint64_t)INT64_MAX) {
		t->kind = TOK_BAD;
		return;
	}
	t->kind = TOK_INT;
	t->v = -(int64_t)v - 1;
}

static void t_n8(void *c, uint8_t v) { t_neg(c, v); }
static void t_n16(void *c, uint16_t v) { t_neg(c, v); }
static void t_n32(void *c, uint32_t v) { t_neg(c, v); }

static void t_array(void *c, size_t n)
{
	struct tok *t = c;

	t->kind = TOK_ARRAY;
	t->v = n > 64 ? 65 : (int64_t)n;
}

static void t_bad0(void *c) { ((struct tok *)c)->kind = TOK_BAD; }
static void t_bad_str(void *c, cbor_data d, size_t n) { (void)d; (void)n; t_bad0(c); }
static void t_bad_sz(void *c, size_t n) { (void)n; t_bad0(c); }
static void t_bad64(void *c, uint64_t v) { (void)v; t_bad0(c); }
static void t_bad_f(void *c, float v) { (void)v; t_bad0(c); }
static void t_bad_d(void *c, double v) { (void)v; t_bad0(c); }
static void t_bad_b(void *c, bool v) { (void)v; t_bad0(c); }

static const struct cbor_callbacks tok_cb = {
	.uint8 = t_u8, .uint16 = t_u16, .uint32 = t_u32, .uint64 = t_uint,
	.negint8 = t_n8, .negint16 = t_n16, .negint32 = t_n32, .negint64 = t_neg,
	.byte_string_start = t_bad0, .byte_string = t_bad_str,
	.string = t_bad_str, .string_start = t_bad0,
	.indef_array_start = t_bad0, .array_start = t_array,
	.indef_map_start = t_bad0, .map_start = t_bad_sz,
	.tag = t_bad64, .float2 = t_bad_f, .float4 = t_bad_f, .float8 = t_bad_d,
	.undefined = t_bad0, .null = t_bad0, .boolean = t_bad_b, .indef_break = t_bad0,
};

static enum tok_kind next_tok(const uint8_t *buf, size_t len, size_t *pos, struct tok *t)
{
	struct cbor_decoder_result r;

	t->kind = TOK_NONE;
	if (*pos >= len)
		return TOK_BAD;
	r = cbor_stream_decode(buf + *pos, len - *pos, &tok_cb, t);
	if (r.status != CBOR_DECODER_FINISHED || r.read == 0 || r.read > len - *pos ||
	    t->kind == TOK_NONE)
		return TOK_BAD;
	*pos += r.read;
	return t->kind;
}

static int get_int(const uint8_t *buf, size_t len, size_t *pos, const struct gmp_field *f,
		   int64_t *out)
{
	struct tok t;

	if (next_tok(buf, len, pos, &t) != TOK_INT)
		return -GMP_E_MALFORMED;
	if (t.v < f->min || t.v > f->max)
		return -GMP_E_RANGE;
	*out = t.v;
	return 0;
}

int gmp_decode_next(const uint8_t *buf, size_t len, size_t *off, struct gmp_msg *m)
{
	static const struct gmp_field type_field = { 0, 0, 31 };
	const struct gmp_schema *s;
	size_t pos = *off;
	struct tok t;
	int64_t type;
	int rc;

	if (pos >= len)
		return 0;
	if (next_tok(buf, len, &pos, &t) != TOK_ARRAY || t.v < 2)
		return -GMP_E_MALFORMED;
	rc = get_int(buf, len, &pos, &type_field, &type);
	if (rc)
		return rc == -GMP_E_RANGE ? -GMP_E_TYPE : rc;
	s = schema_of((int)type);
	if (!s)
		return -GMP_E_TYPE;
	if (t.v != 1 + s->n + (type == GMP_TARIFF))
		return -GMP_E_MALFORMED;
	memset(m, 0, sizeof(*m));
	m->type = (int)type;
	for (unsigned int i = 0; i < s->n; i++) {
		rc = get_int(buf, len, &pos, field_at(s, i), field_ptr(m, field_at(s, i)));
		if (rc)
			return rc;
	}
	if (type == GMP_TARIFF) {
		if (next_tok(buf, len, &pos, &t) != TOK_ARRAY)
			return -GMP_E_MALFORMED;
		if (t.v < 1 || t.v > GMP_TARIFF_MAX)
			return -GMP_E_RANGE;
		m->tariff.n = t.v;
		for (int64_t i = 0; i < m->tariff.n; i++) {
			struct tok a;

			if (next_tok(buf, len, &pos, &a) != TOK_ARRAY || a.v != 3)
				return -GMP_E_MALFORMED;
			rc = get_int(buf, len, &pos, &tariff_fields[0], &m->tariff.p[i].start_min);
			if (!rc)
				rc = get_int(buf, len, &pos, &tariff_fields[1],
					     &m->tariff.p[i].import_price);
			if (!rc)
				rc = get_int(buf, len, &pos, &tariff_fields[2],
					     &m->tariff.p[i].export_price);
			if (rc)
				return rc;
		}
	}
	*off = pos;
	return 1;
}

/* ---- session --------------------------------------------------------------- */

void gmp_keypair_generate(struct gmp_keypair *kp)
{
	crypto_kx_keypair(kp->pk, kp->sk);
}

int gmp_keypair_from_secret(struct gmp_keypair *kp, const uint8_t sk[GMP_KEY_LEN])
{
	memcpy(kp->sk, sk, GMP_KEY_LEN);
	if (crypto_scalarmult_base(kp->pk, kp->sk)) {
		sodium_memzero(kp, sizeof(*kp));
		return -GMP_E_KEY;
	}
	return 0;
}

int gmp_session_meter(struct gmp_session *s, const struct gmp_keypair *meter,
		      const uint8_t town_pk[GMP_KEY_LEN])
{
	memset(s, 0, sizeof(*s));
	if (crypto_kx_client_session_keys(s->rx_key, s->tx_key, meter->pk, meter->sk,
					  town_pk))
		return -GMP_E_KEY;
	return 0;
}

int gmp_session_town(struct gmp_session *s, const struct gmp_keypair *town,
		     const uint8_t meter_pk[GMP_KEY_LEN])
{
	memset(s, 0, sizeof(*s));
	if (crypto_kx_server_session_keys(s->rx_key, s->tx_key, town->pk, town->sk,
					  meter_pk))
		return -GMP_E_KEY;
	return 0;
}

void gmp_session_wipe(struct gmp_session *s)
{
	sodium_memzero(s, sizeof(*s));
}

/* AAD: frame version/type, flags, src, dst (6 bytes) + envelope prefix. */
static size_t make_ad(const struct gmp_addr *a, const uint8_t *prefix, size_t plen,
		      uint8_t *ad)
{
	ad[0] = (uint8_t)(1u << 4 | (a->type & 0xf));
	ad[1] = a->flags & 0xf;
	ad[2] = (uint8_t)(a->src >> 8);
	ad[3] = (uint8_t)a->src;
	ad[4] = (uint8_t)(a->dst >> 8);
	ad[5] = (uint8_t)a->dst;
	memcpy(ad + 6, prefix, plen);
	return 6 + plen;
}

static void make_nonce(uint64_t ctr, uint8_t *nonce)
{
	memset(nonce, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	for (int i = 0; i < 8; i++)
		nonce[i] = (uint8_t)(ctr >> (8 * i));
}

int gmp_seal(struct gmp_session *s, const struct gmp_addr *a,
	     const uint8_t *plain, size_t len, uint8_t *out, size_t out_size)
{
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	uint8_t ad[6 + 1 + GMP_CTR_MAX_LEN];
	unsigned long long clen;
	uint64_t ctr, v;
	size_t p = 0;

	if (s->tx_ctr == UINT64_MAX)
		return -GMP_E_RANGE;
	ctr = s->tx_ctr + 1;
	/* worst case first, so a short buffer never consumes a counter */
	if (out_size < len + GMP_ENV_OVERHEAD_MAX || len > GMP_PLAIN_MAX)
		return -GMP_E_SPACE;
	out[p++] = GMP_VERSION;
	v = ctr;
	do {
		out[p++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	make_nonce(ctr, nonce);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + p, &clen, plain, len,
						   ad, make_ad(a, out, p, ad),
						   NULL, nonce, s->tx_key);
	s->tx_ctr = ctr;
	return (int)(p + clen);
}

int gmp_open(struct gmp_session *s, const struct gmp_addr *a,
	     const uint8_t *env, size_t env_len, uint8_t *plain, size_t plain_size,
	     uint64_t *ctr)
{
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	uint8_t ad[6 + 1 + GMP_CTR_MAX_LEN];
	unsigned long long mlen;
	uint64_t c = 0;
	size_t p = 1;
	int shift = 0;

	if (env_len < 1)
		return -GMP_E_SHORT;
	if (env[0] != GMP_VERSION)
		return -GMP_E_VERSION;
	for (;;) {
		uint8_t b;

		if (p >= env_len)
			return -GMP_E_SHORT;
		b = env[p++];
		if (shift == 63 && (b & 0x7e))
			return -GMP_E_AUTH;	/* more than 64 bits */
		c |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
		shift += 7;
		if (shift > 63)
			return -GMP_E_AUTH;
	}
	/* canonical LEB128 only: the counter has one encoding */
	if (p > 2 && env[p - 1] == 0)
		return -GMP_E_AUTH;
	if (env_len - p < GMP_TAG_LEN)
		return -GMP_E_SHORT;
	if (plain_size < env_len - p - GMP_TAG_LEN)
		return -GMP_E_SPACE;
	if (c == 0 || c <= s->rx_ctr)
		return -GMP_E_REPLAY;
	make_nonce(c, nonce);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &mlen, NULL, env + p,
						       env_len - p, ad,
						       make_ad(a, env, p, ad), nonce,
						       s->rx_key))
		return -GMP_E_AUTH;
	s->rx_ctr = c;
	if (ctr)
		*ctr = c;
	return (int)mlen;
}

/* ---- hex -------------------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int gmp_hex_decode(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo;

		if (hi < 0)
			return -1;
		lo = hexval(hex[2 * i + 1]);
		if (lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[2 * n] == '\0' ? 0 : -1;
}

void gmp_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}
