/* SPDX-License-Identifier: GPL-2.0 */
/*
 * meterd's uplink to its town server (Documentation/meterd.md, "Uplink"):
 * the SIM900 bring-up on the modem's serial line, the gm_link discipline
 * on the modem (once CONNECT) and on the neighbour lines, the outbox and
 * gmproto client (lib/proto/gmp_client.c) on /dev/gmlink, the report timer, and
 * failover: when acknowledgements stop coming through the modem, the
 * modem's link is detached (so the kernel routes the meter's frames
 * through a neighbour) and the modem reconnects; once it is connected
 * again the meter is back on its own path.
 *
 * Runs in meterd's sd-event loop; implements struct uplink for the meter.
 */
#ifndef GM_UPLINK_TOWN_H
#define GM_UPLINK_TOWN_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "credentials.h"
#include "signed_commands.h"
#include "sim900.h"
#include "town_commands.h"
#include "town_reports.h"
#include "gmp_client.h"
#include "outbox.h"
#include "pwrkey.h"
#include "uplink.h"

struct meter;

enum tu_route {
	TU_ROUTE_NONE,		/* no usable path: records wait in the outbox */
	TU_ROUTE_MODEM,		/* the meter's own SIM900 */
	TU_ROUTE_NEIGHBOUR,	/* through a neighbour meter's link */
};

struct town_uplink_hooks {
	void *ctx;
	/* a property of org.gridmeter.Uplink1 may have changed */
	void (*changed)(void *ctx);
	/* the route changed (signal RouteChanged); the journal line is logged too */
	void (*route)(void *ctx, const char *route, const char *reason);
	/* journal line; level is a syslog priority */
	void (*log)(void *ctx, int level, const char *msg);
};

struct town_uplink {
	struct uplink base;		/* first: the meter's view */
	const struct meter_config *cfg;
	struct meter *m;
	sd_event *ev;
	struct town_uplink_hooks hooks;
	struct uplink_credentials cred;
	struct outbox ob;
	bool ob_open, gc_up;
	struct gmpc gc;

	bool have_modem;
	struct sim900 modem;
	struct pwrkey *pwrkey;
	int modem_fd;
	bool attached;			/* the modem line carries the discipline */
	int gml_fd;			/* /dev/gmlink */
	int nb_fd[CFG_MAX_NEIGHBOURS];
	size_t n_nb;

	enum tu_route route;
	char reason[160];
	uint32_t route_changes;
	sd_event_source *modem_src, *gml_src, *timer_src;
	bool want_out;			/* a write would block: wait for POLLOUT */
	bool broken_logged;		/* "acknowledgements missed" said for this route */
	int64_t retry_at;		/* mono ms: no route, try again then */

	struct town_reports rep;	/* readings and snapshots */
	struct town_commands cmd;	/* grants, tariffs, town keys */
	struct signed_commands sc;	/* operator-signed commands */
	uint64_t rotate_seq;		/* the key-rotate record of a meter key rotation; 0: none */
	/* allocation requests: the last request's id, what was sent, what is wanted */
	int64_t req_id;
	struct tr_request req;
	int64_t last_ack_ms;		/* real ms of the last acknowledgement; 0: none */
	uint64_t last_acks;
	uint64_t records, send_errors;
	int send_err;			/* the last pump's error, logged once */
};

/* Everything up; err says what is wrong. Call town_uplink_stop() either way. */
int town_uplink_start(struct town_uplink *u, const struct meter_config *cfg, struct meter *m,
		      sd_event *ev, const struct town_uplink_hooks *hooks, char *err, size_t errlen);
void town_uplink_stop(struct town_uplink *u);
const char *town_uplink_route_name(enum tu_route r);
/*
 * Rotate the meter's key pair: the next pair goes into the key file and its
 * public key to the town server as a record; once the town acknowledges
 * it, the meter uses it. 0, or -errno with why in err (e.g. -EROFS: the key
 * file is systemd's read-only copy).
 */
int town_uplink_rotate_key(struct town_uplink *u, char *err, size_t errlen);
/* +CREG status as a word (home, roaming, searching, denied, ...). */
const char *town_uplink_registration(const struct town_uplink *u);

#endif
