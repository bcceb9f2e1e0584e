// SPDX-License-Identifier: GPL-2.0
/* libgmlink: wrappers around the gm_link discipline; see gmlink.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "gmlink.h"

int gmlink_attach(int tty_fd, int ldisc)
{
	return ioctl(tty_fd, TIOCSETD, &ldisc);
}

int gmlink_configure(int tty_fd, unsigned int node, unsigned int role,
		     bool up)
{
	struct gm_link_conf c = { .node = node, .role = role, .up = up };

	return ioctl(tty_fd, GM_IOC_SET_LINK, &c);
}

int gmlink_link_stats(int tty_fd, struct gm_link_stats *st)
{
	memset(st, 0, sizeof(*st));
	return ioctl(tty_fd, GM_IOC_GET_LINK_STATS, st);
}

/*
 * Open /dev/gmlink bound to @node; set the meter id unless it is 0. A new
 * file is bound to node 0: binding (CAP_NET_ADMIN) is only asked for
 * another node, so reading node 0 needs no capability.
 */
int gmlink_open(unsigned int node, unsigned int meter_id, int flags)
{
	int fd = open(GMLINK_DEV, O_RDWR | O_CLOEXEC | flags);
	__u32 v = node;
	int err;

	if (fd < 0)
		return -1;
	if (node && ioctl(fd, GM_IOC_BIND_NODE, &v))
		goto fail;
	v = meter_id;
	if (meter_id && ioctl(fd, GM_IOC_SET_METER_ID, &v))
		goto fail;
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

int gmlink_node_stats(int fd, struct gm_node_stats *st)
{
	memset(st, 0, sizeof(*st));
	return ioctl(fd, GM_IOC_GET_NODE_STATS, st);
}

/* Returns the payload length sent, or -1 with errno (see link-ldisc.md). */
ssize_t gmlink_send(int fd, unsigned int dst, unsigned int type,
		    unsigned int flags, const void *payload, size_t len)
{
	struct gmlink_msg m;
	ssize_t n;

	if (len > GM_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	memset(&m.hdr, 0, sizeof(m.hdr));
	m.hdr.type = (u8)type;
	m.hdr.flags = (u8)flags;
	m.hdr.dst = (u16)dst;
	m.hdr.len = (u16)len;
	if (len)
		memcpy(m.payload, payload, len);
	n = write(fd, &m, sizeof(m.hdr) + len);
	return n < 0 ? -1 : n - (ssize_t)sizeof(m.hdr);
}

/*
 * Receive one frame; timeout_ms < 0 waits forever. Returns the payload
 * length, or -1 with errno (ETIMEDOUT on timeout, EMSGSIZE, ...).
 */
ssize_t gmlink_recv(int fd, struct gmlink_msg *m, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int r;

	r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return -1;
	if (r == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	n = read(fd, m, sizeof(*m));
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(m->hdr) ||
	    (size_t)n != sizeof(m->hdr) + m->hdr.len) {
		errno = EPROTO;
		return -1;
	}
	return m->hdr.len;
}

const char *gmlink_role_name(unsigned int role)
{
	switch (role) {
	case GM_ROLE_UPLINK:
		return "uplink";
	case GM_ROLE_NEIGHBOUR:
		return "neighbour";
	default:
		return "none";
	}
}

int gmlink_role_parse(const char *s)
{
	if (!strcasecmp(s, "uplink"))
		return GM_ROLE_UPLINK;
	if (!strcasecmp(s, "neighbour") || !strcasecmp(s, "neighbor"))
		return GM_ROLE_NEIGHBOUR;
	if (!strcasecmp(s, "none"))
		return GM_ROLE_NONE;
	return -1;
}
