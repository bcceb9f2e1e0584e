// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for the link frame encoder (drivers/tty/gm_frame.c):
 * any header (fields masked into range) and payload encode to at most
 * payload + GM_MAX_OVERHEAD bytes, with a delimiter at each end and none
 * inside, and decode back to exactly the same header and payload, fed at
 * once or in two pieces split anywhere.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gm_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void expect_frame(struct gm_rx *rx, const u8 *wire, size_t n,
			 size_t split, const struct gm_hdr *h,
			 const u8 *p, size_t len)
{
	enum gm_rx_status st = GM_RX_NONE;
	size_t pos = 0, used;

	gm_rx_init(rx);
	used = gm_rx_feed(rx, wire, split, &st);
	if (used != split || st != GM_RX_NONE) {
		/* only the final delimiter may complete the frame */
		if (split != n || st != GM_RX_FRAME)
			abort();
	} else {
		pos = split;
		while (pos < n && st == GM_RX_NONE)
			pos += gm_rx_feed(rx, wire + pos, n - pos, &st);
		if (st != GM_RX_FRAME || pos != n)
			abort();
	}
	if (memcmp(&rx->hdr, h, sizeof(*h)) || rx->payload_len != len ||
	    (len && memcmp(rx->payload, p, len)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static u8 wire[GM_MAX_WIRE];
	static struct gm_rx rx;
	struct gm_hdr h;
	size_t len, split;
	int n;

	if (size < 8)
		return 0;
	h.version = GM_VERSION;
	h.type = (u8)(1 + data[0] % GM_TYPE_MAX);
	h.flags = data[1] & GM_FLAG_MASK;
	h.hop_limit = data[1] >> 4;
	h.src = (u16)(data[2] << 8 | data[3]);
	h.dst = (u16)(data[4] << 8 | data[5]);
	if (h.src == GM_ID_INVALID)
		h.src = 1;
	if (h.dst == GM_ID_INVALID)
		h.dst = 2;
	h.seq = (u16)(data[6] << 8 | data[7]);
	data += 8;
	size -= 8;
	len = size > GM_MAX_PAYLOAD ? GM_MAX_PAYLOAD : size;

	n = gm_frame_encode(&h, data, len, wire, sizeof(wire));
	if (n <= 0 || (size_t)n > len + GM_MAX_OVERHEAD ||
	    (size_t)n > gm_frame_wire_len(len))
		abort();
	if (wire[0] || wire[n - 1] || memchr(wire + 1, 0, (size_t)n - 2))
		abort();
	split = len ? data[0] % ((size_t)n + 1) : (size_t)n;
	expect_frame(&rx, wire, (size_t)n, split, &h, data, len);
	return 0;
}
