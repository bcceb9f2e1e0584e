/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gridmeter link frame codec, shared by the kernel line discipline and the
 * userspace library (lib/), tests, fuzzers and the town server.
 * See Documentation/link-frame-format.md.
 *
 * The codec keeps no global state and allocates nothing: every function
 * works on caller-provided buffers, so it needs no locking of its own. A
 * struct gm_rx belongs to one receiver; its owner serialises calls on it.
 */
#ifndef _GM_FRAME_H
#define _GM_FRAME_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/errno.h>
#else
#include <stdbool.h>
#include <stddef.h>
#include <errno.h>
#include <linux/types.h>
#ifndef GM_FRAME_HAVE_KTYPES
#define GM_FRAME_HAVE_KTYPES
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
#endif
#endif

#include <gridmeter/link.h>

/**
 * struct gm_hdr - decoded frame header (host byte order)
 * @version: GM_VERSION
 * @type: 1..GM_TYPE_MAX
 * @flags: GM_FLAG_* (4 bits)
 * @hop_limit: hops the frame may still make, 0..GM_HOP_MAX
 * @src: source meter id
 * @dst: destination meter id
 * @seq: sequence number of @src
 */
struct gm_hdr {
	u8 version;
	u8 type;
	u8 flags;
	u8 hop_limit;
	u16 src;
	u16 dst;
	u16 seq;
};

/* Outcome of feeding bytes to a struct gm_rx. */
enum gm_rx_status {
	GM_RX_NONE = 0,		/* all input consumed, no frame boundary */
	GM_RX_FRAME,		/* a valid frame: rx->hdr, rx->payload */
	GM_RX_ERR_FRAMING,	/* bad COBS, too short, bad version/fields */
	GM_RX_ERR_CRC,		/* CRC-32C mismatch */
	GM_RX_ERR_OVERSIZE,	/* longer than GM_MAX_WIRE; rest is skipped */
};

/**
 * struct gm_rx - streaming receiver state
 * @len: bytes of the current COBS body collected in @buf
 * @skip: an oversize body is being skipped up to the next delimiter
 * @bad: the current body contains a byte the driver flagged as bad
 * @buf: the COBS body, decoded in place when its delimiter arrives
 * @hdr: header of the last GM_RX_FRAME
 * @payload: payload of the last GM_RX_FRAME (points into @buf)
 * @payload_len: its length
 */
struct gm_rx {
	u16 len;
	bool skip;
	bool bad;
	u8 buf[GM_MAX_COBS];
	struct gm_hdr hdr;
	const u8 *payload;
	u16 payload_len;
};

u32 gm_crc32c(const void *buf, size_t len);
size_t gm_cobs_encode(const u8 *in, size_t len, u8 *out);
int gm_cobs_decode(const u8 *in, size_t len, u8 *out, size_t out_size);
void gm_hdr_pack(const struct gm_hdr *h, u8 *out);
int gm_hdr_unpack(const u8 *in, struct gm_hdr *h);
int gm_hdr_check(const struct gm_hdr *h);
size_t gm_frame_wire_len(size_t payload_len);
int gm_frame_encode(const struct gm_hdr *h, const void *payload, size_t len,
		    u8 *out, size_t out_size);
enum gm_rx_status gm_frame_decode(u8 *body, size_t len, struct gm_hdr *h,
				  const u8 **payload, size_t *payload_len);
void gm_rx_init(struct gm_rx *rx);
void gm_rx_mark_bad(struct gm_rx *rx);
size_t gm_rx_feed(struct gm_rx *rx, const u8 *data, size_t len,
		  enum gm_rx_status *status);

#endif /* _GM_FRAME_H */
