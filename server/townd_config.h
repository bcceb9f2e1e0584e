/* SPDX-License-Identifier: GPL-2.0 */
/*
 * townd configuration file (Documentation/townd.md). Strict: unknown
 * sections and keys, bad values and missing required keys are errors
 * naming file, line and key; townd refuses to start on any of them.
 */
#ifndef TOWND_CONFIG_H
#define TOWND_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TOWND_LISTEN_MAX	8

struct townd_config {
	/* [server] */
	struct sockaddr_storage listen[TOWND_LISTEN_MAX];
	socklen_t listen_len[TOWND_LISTEN_MAX];
	unsigned int n_listen;		/* 0: socket activation only */
	char database[256];
	char key_file[256];
	uint32_t max_connections;	/* 1..1000000 */
	uint32_t max_per_address;	/* per IPv4 address or IPv6 /64, 1..1000000 */
	uint32_t first_frame_timeout_s;	/* no authentic frame yet, 1..3600 */
	uint32_t idle_timeout_s;	/* no authentic frame since, 1..86400 */
	uint32_t stats_interval_s;	/* counters of rejected input saved, 1..3600 */
	uint32_t peer_log_limit;	/* peer lines per minute, 0..10000 */
	uint32_t max_batch;		/* frames per transaction, 1..100000 */
	int sync_full;			/* synchronous = full (1) | normal (0) */
	/* [town]: allocation (townd_alloc.h; Documentation/townd.md "Allocation") */
	uint32_t grid_capacity_w;	/* handed out beyond the meters' own allocations */
	uint32_t meter_allocation_w;	/* a meter's own: meterd's [allocation] grid_allocation */
	uint32_t alloc_hysteresis_w;	/* a grant follows its fair share only beyond this */
	uint32_t alloc_default_duration_s;	/* a request of duration 0 */
	uint32_t alloc_max_duration_s;		/* longer requests are cut */
	/* where max_connections came from, for the open-file limit check */
	char source[256];		/* the file read; "" for the defaults */
	unsigned int max_connections_line;	/* 0: not in the file */
};

/* Defaults for everything optional. */
void townd_config_defaults(struct townd_config *c);
/* Parse path; on error returns -1 with "file:line: key 'k': why" in err. */
int townd_config_load(struct townd_config *c, const char *path, char *err, size_t errlen);
/* "127.0.0.1:7700", "[::1]:7700" -> sockaddr. 0 or -1. */
int townd_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);

#endif
