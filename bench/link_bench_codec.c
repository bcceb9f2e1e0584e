// SPDX-License-Identifier: GPL-2.0
/*
 * Link layer benchmark, host side (runs the kernel's codec file):
 *  1. framing overhead in bytes per frame against PPP in async HDLC framing
 *     (RFC 1662: flag, address, control, 16-bit protocol, FCS-16 or
 *     FCS-32, 0x7d escaping with the default ACCM) for the same payload,
 *     for typical (random) and worst-case content;
 *  2. encoder and decoder throughput (frames/s, MB/s) on this CPU;
 *  3. the codec's CPU time per forwarded frame: what gm_link does to every
 *     frame it forwards (stream-decode, check, re-encode with the hop limit
 *     decremented), without the tty and routing around it.
 * The pty and forwarding numbers need the module and run in the guest
 * (tests/guest/link/link_bench_pty.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gm_frame.h"

/* PPP async HDLC-like framing, RFC 1662, default ACCM (0x00-0x1f escaped). */
static int hdlc_escape(unsigned char b, unsigned int accm_all)
{
	return b == 0x7e || b == 0x7d || (accm_all && b < 0x20);
}

static size_t ppp_hdlc_len(const u8 *p, size_t len, int fcs_bytes,
			   unsigned int accm_all)
{
	/* flag + escaped(addr ctrl proto[2] payload fcs) + flag; the FCS
	 * value is pseudo-random, count it as its expected escaped size */
	size_t n = 2;
	const u8 head[4] = { 0xff, 0x03, 0x00, 0x21 };

	for (int i = 0; i < 4; i++)
		n += 1 + hdlc_escape(head[i], accm_all);
	for (size_t i = 0; i < len; i++)
		n += 1 + hdlc_escape(p[i], accm_all);
	return n + (size_t)fcs_bytes;
}

static u32 rng = 0x9e3779b9;
static u32 rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
	static u8 p[GM_MAX_PAYLOAD], wire[GM_MAX_WIRE], stream[1 << 20];
	const size_t sizes[] = { 0, 16, 32, 64, 128, 240, 256, 496 };
	struct gm_hdr h = {
		.version = GM_VERSION, .type = GM_TYPE_DATA, .hop_limit = 8,
		.src = 0x1234, .dst = 0, .seq = 1,
	};
	struct gm_rx *rx = malloc(sizeof(*rx));
	size_t total = 0, frames = 0;
	double t0, t;
	int iters = 0;

	if (!rx)
		return 1;
	printf("# framing overhead, bytes per frame (payload excluded)\n");
	printf("# content    payload  gmlink  ppp-fcs16  ppp-fcs32  ppp-fcs16-accm0\n");
	for (int c = 0; c < 3; c++) {
		const char *name = c == 0 ? "random" : c == 1 ? "zeros" : "all-7e";

		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t len = sizes[i];
			int n;

			for (size_t k = 0; k < len; k++)
				p[k] = c == 0 ? (u8)rnd() : c == 1 ? 0 : 0x7e;
			n = gm_frame_encode(&h, p, len, wire, sizeof(wire));
			if (n < 0)
				return 1;
			printf("%-10s  %7zu  %6zu  %9zu  %9zu  %15zu\n", name,
			       len, (size_t)n - len,
			       ppp_hdlc_len(p, len, 2, 1) - len,
			       ppp_hdlc_len(p, len, 4, 1) - len,
			       ppp_hdlc_len(p, len, 2, 0) - len);
		}
	}
	printf("# gmlink worst case for any content: %d bytes (bound %d)\n",
	       (int)(gm_frame_wire_len(GM_MAX_PAYLOAD) - GM_MAX_PAYLOAD),
	       GM_MAX_OVERHEAD);

	/* encoder throughput: 64-byte payloads (a typical meter reading) */
	for (size_t k = 0; k < sizeof(p); k++)
		p[k] = (u8)rnd();
	t0 = now();
	do {
		for (int i = 0; i < 10000; i++) {
			h.seq = (u16)i;
			total += (size_t)gm_frame_encode(&h, p, 64, wire, sizeof(wire));
		}
		frames += 10000;
		t = now() - t0;
	} while (t < 0.5);
	printf("encode 64B:  %.0f frames/s  %.1f MB/s (wire)\n",
	       frames / t, total / t / 1e6);

	/* decoder throughput over a stream of max-size frames */
	total = 0;
	for (size_t n = 0; total + GM_MAX_WIRE <= sizeof(stream); n++) {
		h.seq = (u16)n;
		total += (size_t)gm_frame_encode(&h, p, GM_MAX_PAYLOAD,
						 stream + total,
						 sizeof(stream) - total);
	}
	frames = 0;
	t0 = now();
	do {
		size_t pos = 0;

		gm_rx_init(rx);
		while (pos < total) {
			enum gm_rx_status st;

			pos += gm_rx_feed(rx, stream + pos, total - pos, &st);
			if (st == GM_RX_FRAME)
				frames++;
			else if (st != GM_RX_NONE)
				return 1;
		}
		iters++;
		t = now() - t0;
	} while (t < 0.5);
	printf("decode 496B: %.0f frames/s  %.1f MB/s (wire)\n",
	       frames / t, (double)total * iters / t / 1e6);

	/* forwarding: decode + re-encode, per frame */
	for (int k = 0; k < 2; k++) {
		size_t plen = k ? GM_MAX_PAYLOAD : 64, flen;
		static u8 out[GM_MAX_WIRE];

		h.seq = 1;
		flen = (size_t)gm_frame_encode(&h, p, plen, wire, sizeof(wire));
		frames = 0;
		t0 = now();
		do {
			for (int i = 0; i < 10000; i++) {
				enum gm_rx_status st;
				struct gm_hdr fh;

				gm_rx_init(rx);
				gm_rx_feed(rx, wire, flen, &st);
				if (st != GM_RX_FRAME)
					return 1;
				fh = rx->hdr;
				fh.hop_limit--;
				if (gm_frame_encode(&fh, rx->payload,
						    rx->payload_len, out,
						    sizeof(out)) <= 0)
					return 1;
			}
			frames += 10000;
			t = now() - t0;
		} while (t < 0.5);
		printf("forward %3zuB: %.0f ns CPU per forwarded frame (codec part)\n",
		       plen, t * 1e9 / (double)frames);
	}
	free(rx);
	return 0;
}
