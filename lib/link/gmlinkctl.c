// SPDX-License-Identifier: GPL-2.0
/*
 * gmlinkctl: configure and inspect gm_link links (Documentation/link-ldisc.md).
 *
 *   gmlinkctl link TTY ROLE [NODE [down]]   role of a tty attached with
 *                                           ldattach 29 TTY (or TIOCSETD)
 *   gmlinkctl show TTY                      role, node and counters of a link
 *   gmlinkctl id [NODE] METER_ID            set a node's meter id
 *   gmlinkctl node [NODE]                   meter id and local counters
 *   gmlinkctl send [NODE] DST TEXT          send one data frame
 *   gmlinkctl recv [NODE] [TIMEOUT_MS]      print one received frame
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "gmlink.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: gmlinkctl link TTY uplink|neighbour|none [NODE [down]]\n"
		"       gmlinkctl show TTY\n"
		"       gmlinkctl id [NODE] METER_ID\n"
		"       gmlinkctl node [NODE]\n"
		"       gmlinkctl send [NODE] DST TEXT\n"
		"       gmlinkctl recv [NODE] [TIMEOUT_MS]\n");
	return 2;
}

static int num(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	if (errno || *end || end == s || *out > max) {
		fprintf(stderr, "gmlinkctl: bad number '%s'\n", s);
		return -1;
	}
	return 0;
}

static int fail(const char *what)
{
	fprintf(stderr, "gmlinkctl: %s: %s\n", what, strerror(errno));
	return 1;
}

static void print_link_stats(const struct gm_link_stats *s)
{
#define P(f) printf("  %-20s %llu\n", #f, (unsigned long long)s->f)
	P(rx_bytes); P(rx_frames); P(rx_local); P(fwd_in); P(rx_dropped);
	P(duplicates); P(hop_exceeded); P(no_route); P(local_overflows);
	P(fwd_queue_full); P(crc_errors); P(framing_errors); P(oversize);
	P(tty_errors); P(tx_frames); P(tx_bytes); P(fwd_out);
	P(tx_queue_overflows); P(tx_flushed);
#undef P
}

int main(int argc, char **argv)
{
	unsigned long node = 0, v;
	int fd;

	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "link") && (argc >= 4 && argc <= 6)) {
		int role = gmlink_role_parse(argv[3]);
		int up = !(argc == 6 && !strcmp(argv[5], "down"));

		if (role < 0 || (argc >= 5 && num(argv[4], GM_NODES_MAX - 1, &node)))
			return usage();
		fd = open(argv[2], O_RDWR | O_NOCTTY | O_NONBLOCK);
		if (fd < 0)
			return fail(argv[2]);
		if (gmlink_configure(fd, (unsigned int)node, (unsigned int)role, up))
			return fail("GM_IOC_SET_LINK");
		return 0;
	}
	if (!strcmp(argv[1], "show") && argc == 3) {
		struct gm_link_conf c;
		struct gm_link_stats s;

		fd = open(argv[2], O_RDWR | O_NOCTTY | O_NONBLOCK);
		if (fd < 0)
			return fail(argv[2]);
		if (ioctl(fd, GM_IOC_GET_LINK, &c) || gmlink_link_stats(fd, &s))
			return fail("not a gm_link tty");
		printf("%s: node %u slot %d role %s %s\n", argv[2], c.node,
		       (int)c.slot, gmlink_role_name(c.role), c.up ? "up" : "down");
		print_link_stats(&s);
		return 0;
	}
	if (!strcmp(argv[1], "id") && (argc == 3 || argc == 4)) {
		if ((argc == 4 && num(argv[2], GM_NODES_MAX - 1, &node)) ||
		    num(argv[argc - 1], GM_ID_INVALID - 1, &v) || !v)
			return usage();
		fd = gmlink_open((unsigned int)node, (unsigned int)v, 0);
		if (fd < 0)
			return fail(GMLINK_DEV);
		return 0;
	}
	if (!strcmp(argv[1], "node") && argc <= 3) {
		struct gm_node_stats s;
		__u32 id;

		if (argc == 3 && num(argv[2], GM_NODES_MAX - 1, &node))
			return usage();
		fd = gmlink_open((unsigned int)node, 0, O_NONBLOCK);
		if (fd < 0 || ioctl(fd, GM_IOC_GET_METER_ID, &id) ||
		    gmlink_node_stats(fd, &s))
			return fail(GMLINK_DEV);
		printf("node %lu: meter id %u, %u links, %u routes\n", node, id,
		       s.links, s.routes);
		printf("  local_tx %llu local_rx %llu local_no_route %llu local_again %llu local_overflows %llu closed_tx_flushed %llu\n",
		       (unsigned long long)s.local_tx, (unsigned long long)s.local_rx,
		       (unsigned long long)s.local_no_route,
		       (unsigned long long)s.local_again,
		       (unsigned long long)s.local_overflows,
		       (unsigned long long)s.closed_tx_flushed);
		return 0;
	}
	if (!strcmp(argv[1], "send") && (argc == 4 || argc == 5)) {
		if ((argc == 5 && num(argv[2], GM_NODES_MAX - 1, &node)) ||
		    num(argv[argc - 2], GM_ID_INVALID - 1, &v))
			return usage();
		fd = gmlink_open((unsigned int)node, 0, 0);
		if (fd < 0)
			return fail(GMLINK_DEV);
		if (gmlink_send(fd, (unsigned int)v, GM_TYPE_DATA, 0,
				argv[argc - 1], strlen(argv[argc - 1])) < 0)
			return fail("send");
		return 0;
	}
	if (!strcmp(argv[1], "recv") && argc <= 4) {
		unsigned long tmo = 10000;
		struct gmlink_msg m;
		ssize_t n;

		if ((argc >= 3 && num(argv[2], GM_NODES_MAX - 1, &node)) ||
		    (argc == 4 && num(argv[3], 3600000, &tmo)))
			return usage();
		fd = gmlink_open((unsigned int)node, 0, O_NONBLOCK);
		if (fd < 0)
			return fail(GMLINK_DEV);
		n = gmlink_recv(fd, &m, (int)tmo);
		if (n < 0)
			return fail("recv");
		printf("from %u to %u seq %u type %u flags %#x hops %u len %zd: %.*s\n",
		       m.hdr.src, m.hdr.dst, m.hdr.seq, m.hdr.type, m.hdr.flags,
		       m.hdr.hop_limit, n, (int)n, (const char *)m.payload);
		return 0;
	}
	return usage();
}
