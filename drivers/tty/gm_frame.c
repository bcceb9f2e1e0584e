// SPDX-License-Identifier: GPL-2.0
/*
 * gridmeter link frame codec: CRC-32C, COBS, header packing and a
 * streaming receiver. This one file is compiled into the gm_link line
 * discipline and into the userspace library (lib/gmlink.mk), so the town
 * server, the unit tests, the fuzzer and the benchmarks run exactly the
 * kernel's code. It must therefore only use the few definitions gm_frame.h
 * provides for both worlds.
 *
 * Wire format (Documentation/link-frame-format.md):
 *
 *   0x00 | COBS( hdr[8] | payload[0..GM_MAX_PAYLOAD] | crc32c[4] ) | 0x00
 *
 *   hdr[0] = version << 4 | type      hdr[1] = flags << 4 | hop_limit
 *   hdr[2..3] = src (big endian)      hdr[4..5] = dst (big endian)
 *   hdr[6..7] = seq (big endian)
 *
 * The CRC-32C (Castagnoli, reflected, init and final xor 0xffffffff)
 * covers the header and the payload and is stored little endian.
 */
#ifdef __KERNEL__
#include <linux/string.h>
#else
#include <string.h>
#endif

#include "gm_frame.h"

/* CRC-32C lookup table, reflected polynomial 0x82f63b78 */
static const u32 gm_crc32c_table[256] = {
	0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4,
	0xc79a971f, 0x35f1141c, 0x26a1e7e8, 0xd4ca64eb,
	0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
	0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24,
	0x105ec76f, 0xe235446c, 0xf165b798, 0x030e349b,
	0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
	0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54,
	0x5d1d08bf, 0xaf768bbc, 0xbc267848, 0x4e4dfb4b,
	0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
	0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35,
	0xaa64d611, 0x580f5512, 0x4b5fa6e6, 0xb93425e5,
	0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
	0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45,
	0xf779deae, 0x05125dad, 0x1642ae59, 0xe4292d5a,
	0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
	0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595,
	0x417b1dbc, 0xb3109ebf, 0xa0406d4b, 0x522bee48,
	0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
	0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687,
	0x0c38d26c, 0xfe53516f, 0xed03a29b, 0x1f682198,
	0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
	0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38,
	0xdbfc821c, 0x2997011f, 0x3ac7f2eb, 0xc8ac71e8,
	0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
	0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096,
	0xa65c047d, 0x5437877e, 0x4767748a, 0xb50cf789,
	0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
	0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46,
	0x7198540d, 0x83f3d70e, 0x90a324fa, 0x62c8a7f9,
	0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
	0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36,
	0x3cdb9bdd, 0xceb018de, 0xdde0eb2a, 0x2f8b6829,
	0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
	0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93,
	0x082f63b7, 0xfa44e0b4, 0xe9141340, 0x1b7f9043,
	0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
	0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3,
	0x55326b08, 0xa759e80b, 0xb4091bff, 0x466298fc,
	0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
	0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033,
	0xa24bb5a6, 0x502036a5, 0x4370c551, 0xb11b4652,
	0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
	0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d,
	0xef087a76, 0x1d63f975, 0x0e330a81, 0xfc588982,
	0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
	0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622,
	0x38cc2a06, 0xcaa7a905, 0xd9f75af1, 0x2b9cd9f2,
	0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
	0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530,
	0x0417b1db, 0xf67c32d8, 0xe52cc12c, 0x1747422f,
	0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
	0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0,
	0xd3d3e1ab, 0x21b862a8, 0x32e8915c, 0xc083125f,
	0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
	0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90,
	0x9e902e7b, 0x6cfbad78, 0x7fab5e8c, 0x8dc0dd8f,
	0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
	0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1,
	0x69e9f0d5, 0x9b8273d6, 0x88d28022, 0x7ab90321,
	0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
	0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81,
	0x34f4f86a, 0xc69f7b69, 0xd5cf889d, 0x27a40b9e,
	0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
	0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

static u32 gm_crc32c_update(u32 crc, const u8 *p, size_t len)
{
	while (len--)
		crc = gm_crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

/**
 * gm_crc32c() - CRC-32C (Castagnoli) of a buffer
 * @buf: data
 * @len: its length in bytes
 *
 * Return: the CRC, e.g. 0xe3069283 for the nine bytes "123456789".
 */
u32 gm_crc32c(const void *buf, size_t len)
{
	return gm_crc32c_update(0xffffffff, buf, len) ^ 0xffffffff;
}

/*
 * Streaming COBS encoder. A block is closed when a zero arrives or, lazily,
 * when a byte arrives after 254 non-zero bytes; that laziness is what keeps
 * the overhead at one code byte per started 254-byte block.
 */
struct gm_cobs_enc {
	u8 *out;
	size_t code_pos;
	size_t pos;
	u8 code;
};

static void gm_cobs_start(struct gm_cobs_enc *e, u8 *out)
{
	e->out = out;
	e->code_pos = 0;
	e->pos = 1;
	e->code = 1;
}

static void gm_cobs_put(struct gm_cobs_enc *e, const u8 *p, size_t len)
{
	while (len--) {
		u8 b = *p++;

		if (e->code == 0xff) {
			e->out[e->code_pos] = e->code;
			e->code_pos = e->pos++;
			e->code = 1;
		}
		if (b == 0) {
			e->out[e->code_pos] = e->code;
			e->code_pos = e->pos++;
			e->code = 1;
		} else {
			e->out[e->pos++] = b;
			e->code++;
		}
	}
}

static size_t gm_cobs_finish(struct gm_cobs_enc *e)
{
	e->out[e->code_pos] = e->code;
	return e->pos;
}

/**
 * gm_cobs_encode() - COBS-encode a buffer
 * @in: data, may contain zeros
 * @len: its length
 * @out: room for at least @len + (@len + 253) / 254 + 1 bytes; must not
 *	overlap @in
 *
 * Return: the encoded length, at most @len + max(1, ceil(@len / 254)).
 * The output contains no zero byte.
 */
size_t gm_cobs_encode(const u8 *in, size_t len, u8 *out)
{
	struct gm_cobs_enc e;

	gm_cobs_start(&e, out);
	gm_cobs_put(&e, in, len);
	return gm_cobs_finish(&e);
}

/**
 * gm_cobs_decode() - decode one COBS body (without delimiters)
 * @in: encoded bytes
 * @len: their number
 * @out: output buffer; may be @in itself (decoding in place is safe)
 * @out_size: its size
 *
 * Return: decoded length, -EBADMSG if @in contains a zero or a block runs
 * past its end, -EMSGSIZE if @out is too small.
 */
int gm_cobs_decode(const u8 *in, size_t len, u8 *out, size_t out_size)
{
	size_t i = 0, o = 0;

	while (i < len) {
		u8 code = in[i++];
		size_t n;

		if (code == 0)
			return -EBADMSG;
		n = code - 1;
		if (n > len - i)
			return -EBADMSG;
		if (n > out_size - o)
			return -EMSGSIZE;
		/* byte by byte: o < i holds, so in-place decoding is safe */
		while (n--) {
			u8 b = in[i++];

			if (b == 0)
				return -EBADMSG;
			out[o++] = b;
		}
		if (code != 0xff && i < len) {
			if (o >= out_size)
				return -EMSGSIZE;
			out[o++] = 0;
		}
	}
	return (int)o;
}

/**
 * gm_hdr_pack() - write the 8-byte wire header
 * @h: header; fields must fit their widths (see gm_hdr_check())
 * @out: GM_HDR_LEN bytes
 */
void gm_hdr_pack(const struct gm_hdr *h, u8 *out)
{
	out[0] = (u8)((h->version & 0xf) << 4 | (h->type & 0xf));
	out[1] = (u8)((h->flags & 0xf) << 4 | (h->hop_limit & 0xf));
	out[2] = (u8)(h->src >> 8);
	out[3] = (u8)h->src;
	out[4] = (u8)(h->dst >> 8);
	out[5] = (u8)h->dst;
	out[6] = (u8)(h->seq >> 8);
	out[7] = (u8)h->seq;
}

/**
 * gm_hdr_check() - validate header fields
 * @h: header
 *
 * Return: 0, or -EINVAL if the version is not GM_VERSION, the type is 0 or
 * a field does not fit its width, or an id is GM_ID_INVALID.
 */
int gm_hdr_check(const struct gm_hdr *h)
{
	if (h->version != GM_VERSION || h->type == 0 || h->type > GM_TYPE_MAX ||
	    h->flags > GM_FLAG_MASK || h->hop_limit > GM_HOP_MAX ||
	    h->src == GM_ID_INVALID || h->dst == GM_ID_INVALID)
		return -EINVAL;
	return 0;
}

/**
 * gm_hdr_unpack() - parse and validate the 8-byte wire header
 * @in: GM_HDR_LEN bytes
 * @h: result
 *
 * Return: 0, or -EINVAL as gm_hdr_check().
 */
int gm_hdr_unpack(const u8 *in, struct gm_hdr *h)
{
	h->version = in[0] >> 4;
	h->type = in[0] & 0xf;
	h->flags = in[1] >> 4;
	h->hop_limit = in[1] & 0xf;
	h->src = (u16)(in[2] << 8 | in[3]);
	h->dst = (u16)(in[4] << 8 | in[5]);
	h->seq = (u16)(in[6] << 8 | in[7]);
	return gm_hdr_check(h);
}

/**
 * gm_frame_wire_len() - bytes on the wire for a payload length
 * @payload_len: 0..GM_MAX_PAYLOAD
 *
 * Return: the worst-case encoded size, delimiters included; never more than
 * @payload_len + GM_MAX_OVERHEAD.
 */
size_t gm_frame_wire_len(size_t payload_len)
{
	size_t raw = GM_HDR_LEN + payload_len + GM_CRC_LEN;

	return 2 + raw + (raw + 253) / 254;
}

/**
 * gm_frame_encode() - encode one frame for the wire
 * @h: header, validated with gm_hdr_check()
 * @payload: payload bytes (may be NULL if @len is 0)
 * @len: payload length, at most GM_MAX_PAYLOAD
 * @out: output buffer
 * @out_size: its size, at least gm_frame_wire_len(@len)
 *
 * Return: bytes written (leading and trailing delimiter included),
 * -EINVAL for a bad header, -EMSGSIZE if @len is too long, -ENOSPC if
 * @out_size is too small.
 */
int gm_frame_encode(const struct gm_hdr *h, const void *payload, size_t len,
		    u8 *out, size_t out_size)
{
	struct gm_cobs_enc e;
	u8 hdr[GM_HDR_LEN], crc[GM_CRC_LEN];
	u32 c;
	size_t n;

	if (gm_hdr_check(h))
		return -EINVAL;
	if (len > GM_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (out_size < gm_frame_wire_len(len))
		return -ENOSPC;

	gm_hdr_pack(h, hdr);
	c = gm_crc32c_update(0xffffffff, hdr, sizeof(hdr));
	c = gm_crc32c_update(c, payload, len) ^ 0xffffffff;
	crc[0] = (u8)c;
	crc[1] = (u8)(c >> 8);
	crc[2] = (u8)(c >> 16);
	crc[3] = (u8)(c >> 24);

	out[0] = GM_DELIM;
	gm_cobs_start(&e, out + 1);
	gm_cobs_put(&e, hdr, sizeof(hdr));
	gm_cobs_put(&e, payload, len);
	gm_cobs_put(&e, crc, sizeof(crc));
	n = gm_cobs_finish(&e);
	out[1 + n] = GM_DELIM;
	return (int)(n + 2);
}

/**
 * gm_frame_decode() - decode and verify one COBS body (without delimiters)
 * @body: the body; decoded in place
 * @len: its length
 * @h: decoded header on success
 * @payload: on success, points to the payload inside @body
 * @payload_len: its length
 *
 * Return: GM_RX_FRAME, GM_RX_ERR_FRAMING (bad COBS, too short or too long,
 * bad header) or GM_RX_ERR_CRC.
 */
enum gm_rx_status gm_frame_decode(u8 *body, size_t len, struct gm_hdr *h,
				  const u8 **payload, size_t *payload_len)
{
	int n = gm_cobs_decode(body, len, body, GM_MAX_RAW);
	u32 want, got;

	if (n < GM_HDR_LEN + GM_CRC_LEN)
		return GM_RX_ERR_FRAMING;
	n -= GM_CRC_LEN;
	want = (u32)body[n] | (u32)body[n + 1] << 8 |
	       (u32)body[n + 2] << 16 | (u32)body[n + 3] << 24;
	got = gm_crc32c(body, n);
	if (want != got)
		return GM_RX_ERR_CRC;
	if (gm_hdr_unpack(body, h))
		return GM_RX_ERR_FRAMING;
	*payload = body + GM_HDR_LEN;
	*payload_len = n - GM_HDR_LEN;
	return GM_RX_FRAME;
}

/**
 * gm_rx_init() - reset a streaming receiver
 * @rx: receiver
 */
void gm_rx_init(struct gm_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
}

/**
 * gm_rx_mark_bad() - the next byte fed was flagged bad by the driver
 * @rx: receiver
 *
 * The frame that byte belongs to is reported as GM_RX_ERR_FRAMING when its
 * delimiter arrives (unless it is already being skipped as oversize).
 */
void gm_rx_mark_bad(struct gm_rx *rx)
{
	if (!rx->skip)
		rx->bad = true;
}

/**
 * gm_rx_feed() - feed received bytes to a streaming receiver
 * @rx: receiver
 * @data: bytes
 * @len: their number
 * @status: what happened; GM_RX_NONE if all bytes were consumed without
 *	completing a frame or detecting an error
 *
 * Consumes bytes up to and including the first one that ends a frame or
 * reveals an error, so that every event is reported exactly once. Call
 * again with the rest. After GM_RX_FRAME, @rx->hdr, @rx->payload and
 * @rx->payload_len describe the frame until the next call. Empty bodies
 * (back-to-back delimiters) are not frames and are ignored.
 *
 * Return: the number of bytes consumed.
 */
size_t gm_rx_feed(struct gm_rx *rx, const u8 *data, size_t len,
		  enum gm_rx_status *status)
{
	size_t i;

	for (i = 0; i < len; i++) {
		u8 b = data[i];
		enum gm_rx_status st;
		const u8 *p;
		size_t n, plen;

		if (b != GM_DELIM) {
			if (rx->skip)
				continue;
			if (rx->len >= sizeof(rx->buf)) {
				rx->skip = true;
				rx->bad = false;
				rx->len = 0;
				*status = GM_RX_ERR_OVERSIZE;
				return i + 1;
			}
			rx->buf[rx->len++] = b;
			continue;
		}

		n = rx->len;
		rx->len = 0;
		if (rx->skip) {
			rx->skip = false;
			continue;
		}
		if (rx->bad) {
			rx->bad = false;
			*status = GM_RX_ERR_FRAMING;
			return i + 1;
		}
		if (n == 0)
			continue;
		st = gm_frame_decode(rx->buf, n, &rx->hdr, &p, &plen);
		if (st == GM_RX_FRAME) {
			rx->payload = p;
			rx->payload_len = (u16)plen;
		}
		*status = st;
		return i + 1;
	}
	*status = GM_RX_NONE;
	return len;
}
