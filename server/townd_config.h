/* SPDX-License-Identifier: GPL-2.0 */
/*
 * townd configuration file (Documentation/townd.md). Strict: unknown
 * sections and keys, bad values and missing required keys are errors
 * naming file, line and key; townd refuses to start on any of them.
 */
#ifndef TOWND_CONFIG_H
#define TOWND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TOWND_LISTEN_MAX	8

/* [town]: what the town's hours are built with (Documentation/townd.md, "Hours"). */
struct townd_town_config {
	char timezone[64];		/* IANA name (tz database), "UTC" by default */
	uint32_t hour_grace_s;		/* an hour H closes at H + 3600 + this, 0..86400 (300) */
	uint32_t retention_chunk;	/* rows deleted per loop iteration, 1..1000000 (2000) */
};

/* [upstream]: the link to the main server (maind). */
struct townd_upstream_config {
	bool enabled;			/* the section is in the file */
	struct sockaddr_storage addr;	/* address: maind's ADDRESS:PORT */
	socklen_t addr_len;
	uint8_t main_pk[32];		/* main_public_key */
	uint16_t town_id;		/* 1..65534, the town's id at maind */
	char outbox[256];		/* directory of the upstream outbox */
	uint32_t interval_s;		/* hours put in the outbox every, 1..86400 (3600) */
	uint32_t admin_after_s;		/* no ack (or no session) for this long: admin mode (900) */
	uint32_t reconnect_max_s;	/* cap of the reconnection back-off, 1..3600 (60) */
	uint32_t outbox_max_mb;		/* disk budget of the outbox, 1..100000 MB (1024) */
};

/* [commands]: operator-signed commands (Documentation/townd.md, "Signed commands"). */
struct townd_commands_config {
	char operator_keys[256];	/* key set file provisioned at enrolment ("": none) */
	uint32_t two_above;		/* batches above this need two operators, 1..65535 (10) */
	uint32_t disconnects_per_hour;	/* meters disconnected through this town, 0..100000 (60) */
};

/* [neighbour ID]: a neighbour town (borrowing, Documentation/town-network.md). */
#define TOWND_NEIGHBOUR_MAX	16
struct townd_neighbour_config {
	uint16_t id;			/* its town id, 1..65534 (from the section name) */
	struct sockaddr_storage addr;	/* address: its [town_network] listen */
	socklen_t addr_len;
	uint8_t pk[32];			/* public_key: its town key */
	uint32_t cost;			/* link cost, 1..1000000 (1): cheaper asked first */
	char outbox[256];		/* outbox directory of our client link to it */
	unsigned int line;		/* of the section header */
};

/* [town_network]: this town's end of the links with its neighbours. */
struct townd_townnet_config {
	struct sockaddr_storage listen;	/* where neighbours connect */
	socklen_t listen_len;		/* 0: not given */
	uint32_t hop_limit;		/* 1..16 (3) */
	uint32_t loan_duration_s;	/* loans asked for last, 60..86400 (3600) */
	uint32_t lease_s;		/* an open loan not heard of is cancelled, 10..3600 (90) */
	unsigned int n;
	struct townd_neighbour_config nb[TOWND_NEIGHBOUR_MAX];
};

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
	/* [town] and [upstream]: hours to the main server (issue 12, townd_config_town.c) */
	struct townd_town_config town;
	struct townd_upstream_config up;
	struct townd_commands_config cmd;	/* [commands] (townd_config_town.c) */
	/* [town_network] and [neighbour ID] (townd_config_neighbour.c) */
	struct townd_townnet_config tn;
	/* where max_connections came from, for the open-file limit check */
	char source[256];		/* the file read; "" for the defaults */
	unsigned int max_connections_line;	/* 0: not in the file */
};

/* Defaults for everything optional. */
void townd_config_defaults(struct townd_config *c);
/* Parse path; on error returns -1 with "file:line: key 'k': why" in err. */
int townd_config_load(struct townd_config *c, const char *path, char *err, size_t errlen);
/*
 * [town], [upstream] and [commands] (townd_config_town.c): defaults, one entry, and the
 * checks after the whole file was read (required keys). Return 0 or
 * ini_error()'s value.
 */
struct ini;
struct ini_entry;
void townd_town_defaults(struct townd_config *c);
bool townd_town_section(const char *section);
int townd_town_entry(struct ini *ini, const struct ini_entry *e, struct townd_config *c);
int townd_town_check(struct ini *ini, struct townd_config *c);
/* [town_network] and [neighbour ID] (townd_config_neighbour.c), as above. */
void townd_neighbour_defaults(struct townd_config *c);
bool townd_neighbour_section(const char *section);
int townd_neighbour_entry(struct ini *ini, const struct ini_entry *e, struct townd_config *c);
int townd_neighbour_check(struct ini *ini, struct townd_config *c);
/* Whether tz names a zone of the tz database (TZDIR or /usr/share/zoneinfo). */
bool townd_tz_known(const char *tz);

/* "127.0.0.1:7700", "[::1]:7700" -> sockaddr. 0 or -1. */
int townd_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);

#endif
