/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * gridmeter link layer: user ABI.
 *
 * Wire format (Documentation/link-frame-format.md):
 *
 *   0x00 | COBS( header[8] | payload[0..496] | CRC-32C[4] ) | 0x00
 *
 * Userspace interface (Documentation/link-ldisc.md):
 *   - tty fds carrying the line discipline: GM_IOC_SET_LINK, GM_IOC_GET_LINK,
 *     GM_IOC_GET_LINK_STATS, GM_IOC_SET_METER_ID, GM_IOC_GET_METER_ID;
 *   - /dev/gmlink: read()/write() of one struct gm_msg_hdr + payload per
 *     call, poll(), GM_IOC_SET_METER_ID, GM_IOC_GET_METER_ID,
 *     GM_IOC_GET_NODE_STATS.
 *
 * A gateway runs one node, node 0. The module can run more nodes in one
 * kernel for its tests (chains and rings of meters over pty pairs); that
 * test-only API (GM_NODES_MAX, GM_IOC_BIND_NODE) is not part of this header:
 * tests/include/gridmeter/link_test.h.
 */
#ifndef _UAPI_GRIDMETER_LINK_H
#define _UAPI_GRIDMETER_LINK_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* ---- wire format ------------------------------------------------------ */

#define GM_VERSION		1
#define GM_HDR_LEN		8	/* packed wire header */
#define GM_CRC_LEN		4	/* CRC-32C, little endian */
#define GM_MAX_PAYLOAD		496
/* header + payload + CRC before COBS encoding */
#define GM_MAX_RAW		(GM_HDR_LEN + GM_MAX_PAYLOAD + GM_CRC_LEN)
/* COBS adds one code byte per started 254-byte block (2 for GM_MAX_RAW) */
#define GM_MAX_COBS		(GM_MAX_RAW + (GM_MAX_RAW + 253) / 254)
/* plus the leading and the trailing 0x00 delimiter: 512 bytes */
#define GM_MAX_WIRE		(GM_MAX_COBS + 2)
#define GM_MAX_OVERHEAD		16	/* GM_MAX_WIRE - GM_MAX_PAYLOAD */

#define GM_DELIM		0x00

/* Meter ids are 16 bit. 0 is the town server, 0xffff is never valid. */
#define GM_ID_SERVER		0x0000
#define GM_ID_INVALID		0xffff

/* Frame types (4 bits). The kernel forwards every type unchanged. */
#define GM_TYPE_DATA		0x1	/* meter data, server commands */
#define GM_TYPE_ACK		0x2	/* end-to-end acknowledgment */
#define GM_TYPE_CTRL		0x3	/* link/agent control */
#define GM_TYPE_MAX		0xf

/* Flags (4 bits). The kernel forwards them unchanged. */
#define GM_FLAG_ACK_REQ		0x1	/* sender wants a GM_TYPE_ACK */
#define GM_FLAG_MORE		0x2	/* more fragments of one message follow */
#define GM_FLAG_MASK		0xf

#define GM_HOP_MAX		15	/* 4-bit hop limit */
#define GM_HOP_DEFAULT		8

/* ---- /dev/gmlink messages ---------------------------------------------- */

/**
 * struct gm_msg_hdr - header of one message read from or written to /dev/gmlink
 * @version:   read: wire version of the frame; write: 0 or GM_VERSION
 * @type:      frame type, 1..GM_TYPE_MAX
 * @flags:     GM_FLAG_* (4 bits)
 * @hop_limit: read: hops left on arrival; write: 0 = module default, else 1..15
 * @src:       read: source meter id; write: ignored (the node's meter id)
 * @dst:       destination meter id (GM_ID_SERVER for the town server)
 * @seq:       read: sequence number; write: ignored (assigned by the kernel)
 * @len:       payload length, 0..GM_MAX_PAYLOAD; the payload follows
 *
 * All fields are in host byte order. A write() must pass exactly
 * sizeof(struct gm_msg_hdr) + @len bytes.
 */
struct gm_msg_hdr {
	__u8	version;
	__u8	type;
	__u8	flags;
	__u8	hop_limit;
	__u16	src;
	__u16	dst;
	__u16	seq;
	__u16	len;
};

#define GM_MSG_MAX		(sizeof(struct gm_msg_hdr) + GM_MAX_PAYLOAD)

/* ---- ioctls --------------------------------------------------------------- */

#define GM_LINKS_MAX		8	/* links per node */

enum gm_link_role {
	GM_ROLE_NONE = 0,	/* attached, not configured: traffic dropped */
	GM_ROLE_UPLINK = 1,	/* towards the town server (modem) */
	GM_ROLE_NEIGHBOUR = 2,	/* to a neighbouring meter of the ring */
};

/**
 * struct gm_link_conf - configuration of one attached tty
 * @node: node instance: 0 (other values only for the module's tests)
 * @role: enum gm_link_role
 * @up:   1 if the link may carry traffic, 0 to take it out of routing
 * @slot: read only: index of the link in its node
 */
struct gm_link_conf {
	__u32	node;
	__u32	role;
	__u32	up;
	__u32	slot;
};

/*
 * struct gm_link_stats - per-link counters, all monotonic
 *
 * Every valid received frame (@rx_frames) ends in exactly one of
 * @rx_local, @fwd_in or @rx_dropped (at most one per link may still be
 * waiting for egress queue space); @rx_dropped is the sum of its five
 * reasons. Every invalid one is counted once in @crc_errors,
 * @framing_errors or @oversize. Every frame queued for transmission ends
 * in @tx_frames, or, if its link closes first (close, line discipline
 * change, hangup), in gm_node_stats.closed_tx_flushed: a link's counters
 * go with it. Flushing the tty (TCIFLUSH, hangup) discards received data
 * only, never queued frames; a link discards its queued frames only when
 * it closes, so @tx_flushed stays 0 (kept for the ABI).
 */
struct gm_link_stats {
	__u64	rx_bytes;		/* bytes received from the tty */
	__u64	rx_frames;		/* valid frames received */
	__u64	rx_local;		/* ... delivered to the local agent */
	__u64	fwd_in;			/* ... forwarded to another link */
	__u64	rx_dropped;		/* ... dropped (sum of the five below) */
	__u64	duplicates;		/*   seen (source, seq) before, or own frame */
	__u64	hop_exceeded;		/*   hop limit 0, cannot be forwarded */
	__u64	no_route;		/*   no usable egress link / link unconfigured */
	__u64	local_overflows;	/*   local receive queue full */
	__u64	fwd_queue_full;		/*   egress transmit queue full */
	__u64	crc_errors;		/* invalid frames: CRC mismatch */
	__u64	framing_errors;		/* invalid frames: COBS, length, version */
	__u64	oversize;		/* invalid frames: longer than GM_MAX_WIRE */
	__u64	tty_errors;		/* bytes flagged by the driver (parity, ...) */
	__u64	tx_frames;		/* frames completely written to the tty */
	__u64	tx_bytes;		/* bytes written to the tty */
	__u64	fwd_out;		/* frames forwarded onto this link */
	__u64	tx_queue_overflows;	/* frames refused: transmit queue full */
	__u64	tx_flushed;		/* always 0: see closed_tx_flushed */
};

/*
 * struct gm_node_stats - per-node counters of local traffic
 */
struct gm_node_stats {
	__u64	local_tx;		/* frames written by the local agent and queued */
	__u64	local_rx;		/* frames read by the local agent */
	__u64	local_no_route;		/* writes refused with ENOLINK */
	__u64	local_again;		/* writes refused with EAGAIN (queue full) */
	__u64	local_overflows;	/* frames for us dropped: receive queue full */
	__u64	closed_tx_flushed;	/* queued frames discarded when their link closed */
	__u32	links;			/* links attached to this node */
	__u32	routes;			/* learnt routes */
};

/*
 * 0xBE: free in Documentation/userspace-api/ioctl/ioctl-number.rst (0xB7,
 * used before, belongs to nsfs and remoteproc).
 */
#define GM_IOC_MAGIC		0xBE

/* tty fd (line discipline attached) */
#define GM_IOC_SET_LINK		_IOW(GM_IOC_MAGIC, 1, struct gm_link_conf)
#define GM_IOC_GET_LINK		_IOR(GM_IOC_MAGIC, 2, struct gm_link_conf)
#define GM_IOC_GET_LINK_STATS	_IOR(GM_IOC_MAGIC, 3, struct gm_link_stats)
/* tty fd: the link's node; /dev/gmlink fd: the bound node */
#define GM_IOC_SET_METER_ID	_IOW(GM_IOC_MAGIC, 4, __u32)
#define GM_IOC_GET_METER_ID	_IOR(GM_IOC_MAGIC, 5, __u32)
/* /dev/gmlink fd (number 6 is the tests' GM_IOC_BIND_NODE) */
#define GM_IOC_GET_NODE_STATS	_IOR(GM_IOC_MAGIC, 7, struct gm_node_stats)

#endif /* _UAPI_GRIDMETER_LINK_H */
