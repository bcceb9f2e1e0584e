/* SPDX-License-Identifier: GPL-2.0 */
/*
 * meterweb's configuration: the [web] section of meterweb.conf, read with
 * the one INI reader (lib/conf). Errors name file, line and key.
 */
#ifndef GM_MW_CONFIG_H
#define GM_MW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MW_PATH_MAX	256

struct mw_config {
	char listen[80];		/* "ADDR:PORT", "[ADDR6]:PORT", ":PORT"; default ":8080" */
	bool allow_remote;		/* serve addresses outside the home network */
	char tls_cert[MW_PATH_MAX];	/* PEM files; both or neither */
	char tls_key[MW_PATH_MAX];
	char password_file[MW_PATH_MAX];	/* the household's Argon2id hash */
	uint32_t guest_code_s;		/* guest_code_minutes (decimals allowed: 0.1 = 6 s), in s (default 3600) */
	uint32_t guest_session_minutes;	/* a guest's session lasts this long (default 120) */
	uint32_t session_minutes;	/* the household's session, absolute (default 480) */
	uint32_t idle_minutes;		/* idle timeout of every session (default 30) */
	uint32_t login_burst;		/* failed logins per address per window (default 5) */
	uint32_t login_window;		/* seconds (default 300) */
	uint32_t conn_max;		/* concurrent connections (default 32) */
	uint32_t conn_per_addr;		/* of them from one client address (default 16) */
	char timezone[64];		/* local time of the pages; default: the system's (TZ) */
};

#define MW_DEFAULT_CONF		"/etc/gridmeter/meterweb.conf"
#define MW_DEFAULT_PASSWD	"/etc/gridmeter/meterweb.passwd"

void mw_config_defaults(struct mw_config *c);
/* Read path over the defaults; 0, or -errno with "FILE:LINE: [web] key 'K': why" in err. */
int mw_config_load(struct mw_config *c, const char *path, char *err, size_t errlen);
/* The same from text (tests); name is used in messages. */
int mw_config_parse(struct mw_config *c, const char *name, const char *text, char *err, size_t errlen);

#endif
