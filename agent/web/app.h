/* SPDX-License-Identifier: GPL-2.0 */
/*
 * meterweb's HTTP side: the routes, who may see what, the live stream.
 *
 *   GET  /               the dashboard (household or guest)
 *   GET  /live           server-sent events: one JSON object of live values
 *                        a second and on every change (pages.h keys)
 *   GET  /api/profile?from=&to=   the load profile as GetLoadProfile gives it, JSON
 *   GET  /login, POST /login      the household's password or a guest code
 *   POST /logout
 *   GET  /guest, POST /guest      the household makes a one-time guest code
 *   GET  /static/...    the built-in stylesheet and scripts
 */
#ifndef GM_MW_APP_H
#define GM_MW_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "auth.h"
#include "guest.h"
#include "http.h"
#include "meter_client.h"
#include "mw_config.h"
#include "snapshot.h"

#define MW_COOKIE	"gm_session"
#define MW_HOUSEHOLD	"household"

struct mw_app {
	struct mw_config cfg;
	struct mw_snapshot snap;
	struct mw_client client;
	struct web_sessions house;	/* the household's sessions */
	struct web_sessions guest;	/* guests' sessions (their own lifetime) */
	struct web_throttle throttle;	/* failed logins and codes, per address and per user */
	struct mw_guests codes;
	/* One sign-in check at a time: each Argon2id verification takes 64 MiB, and
	 * the throttle's check and count (passwords and guest codes) must not be
	 * raced past. */
	pthread_mutex_t verify_lock;
	/* Under verify_lock: the password file's hash the household's sessions were
	 * opened with; when the file holds another, they all end ("meterweb passwd"). */
	char pw_seen[160];
	atomic_bool stopping;
	int64_t (*now)(void);		/* UTC s */
};

int mw_app_init(struct mw_app *a, const struct mw_config *cfg);
void mw_app_free(struct mw_app *a);
/* The web_handler of lib/web. */
struct web_resp *mw_app_handle(void *app, const struct web_req *r);
/* The accept callback: home-network addresses only unless allow_remote. */
bool mw_app_accept(void *app, const struct sockaddr *peer, socklen_t len);

#endif
