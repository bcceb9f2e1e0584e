// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for the link frame decoder (drivers/tty/gm_frame.c).
 *
 * Input: byte 0 selects the chunk size used to feed the streaming
 * receiver, the rest is the received byte stream. Properties checked:
 *   - no crash, no out-of-bounds access (ASan/UBSan);
 *   - gm_rx_feed() always consumes at least one byte and never more than
 *     it was given;
 *   - every frame it accepts has a valid header and a payload of at most
 *     GM_MAX_PAYLOAD bytes, and re-encoding it yields a frame that decodes
 *     to the same header and payload within the overhead bound;
 *   - gm_cobs_decode() on the raw input never writes past its buffer and,
 *     when it succeeds, re-encoding and decoding is the identity.
 *
 * Built with -DGM_FUZZ_SEEDS it is instead a program writing seed frames
 * into the directory given as argv[1] (tests/fuzz/run.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm_frame.h"

#ifndef GM_FUZZ_SEEDS
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_frame(const struct gm_rx *rx)
{
	static u8 wire[GM_MAX_WIRE];
	static u8 payload[GM_MAX_PAYLOAD];
	struct gm_rx rx2;
	enum gm_rx_status st;
	size_t plen = rx->payload_len;
	int n;

	if (gm_hdr_check(&rx->hdr) || plen > GM_MAX_PAYLOAD)
		abort();
	memcpy(payload, rx->payload, plen);
	n = gm_frame_encode(&rx->hdr, payload, plen, wire, sizeof(wire));
	if (n <= 0 || (size_t)n > plen + GM_MAX_OVERHEAD)
		abort();
	gm_rx_init(&rx2);
	if (gm_rx_feed(&rx2, wire, (size_t)n, &st) != (size_t)n ||
	    st != GM_RX_FRAME)
		abort();
	if (memcmp(&rx2.hdr, &rx->hdr, sizeof(rx->hdr)) ||
	    rx2.payload_len != plen || memcmp(rx2.payload, payload, plen))
		abort();
}

static void check_cobs(const uint8_t *data, size_t size)
{
	static u8 out[4096], enc[4200], back[4096];
	int n;
	size_t m;

	if (size > sizeof(out))
		size = sizeof(out);
	n = gm_cobs_decode(data, size, out, sizeof(out));
	if (n < 0)
		return;
	m = gm_cobs_encode(out, (size_t)n, enc);
	if (m > (size_t)n + 1 + (size_t)n / 254 + 1)
		abort();
	if (gm_cobs_decode(enc, m, back, sizeof(back)) != n ||
	    memcmp(back, out, (size_t)n))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gm_rx *rx;
	size_t chunk;

	if (size == 0)
		return 0;
	chunk = 1 + data[0] % 64;
	data++;
	size--;
	check_cobs(data, size);

	rx = malloc(sizeof(*rx));
	if (!rx)
		abort();
	gm_rx_init(rx);
	while (size) {
		size_t give = size < chunk ? size : chunk;

		while (give) {
			enum gm_rx_status st;
			size_t used = gm_rx_feed(rx, data, give, &st);

			if (used == 0 || used > give)
				abort();
			if (st == GM_RX_NONE && used != give)
				abort();
			if (st == GM_RX_FRAME)
				check_frame(rx);
			data += used;
			size -= used;
			give -= used;
		}
		if (size && data[0] == 0xa5)
			gm_rx_mark_bad(rx);
	}
	free(rx);
	return 0;
}
#else
int main(int argc, char **argv)
{
	static u8 wire[4 * GM_MAX_WIRE + 1], p[GM_MAX_PAYLOAD];
	const size_t lens[] = { 0, 1, 17, 250, 251, 252, 253, 254, 255, 496 };

	if (argc != 2)
		return 2;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct gm_hdr h = {
			.version = GM_VERSION, .type = GM_TYPE_DATA,
			.hop_limit = 8, .src = (u16)(i + 1), .dst = 0,
			.seq = (u16)i,
		};
		char path[4096];
		size_t n = 1;
		FILE *f;

		for (size_t k = 0; k < lens[i]; k++)
			p[k] = (u8)(k % 7 ? k : 0);
		wire[0] = (u8)i;	/* chunk selector */
		for (int r = 0; r < 2; r++)
			n += (size_t)gm_frame_encode(&h, p, lens[i], wire + n,
						     sizeof(wire) - n);
		snprintf(path, sizeof(path), "%s/seed-%zu", argv[1], lens[i]);
		f = fopen(path, "wb");
		if (!f || fwrite(wire, 1, n, f) != n || fclose(f))
			return 1;
	}
	return 0;
}
#endif
