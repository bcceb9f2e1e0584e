/* SPDX-License-Identifier: GPL-2.0 */
/*
 * maind configuration file (Documentation/maind.md). Strict like townd's:
 * unknown sections and keys, bad values and missing required keys are
 * errors naming file, line and key; maind refuses to start on any of them.
 */
#ifndef MAIND_CONFIG_H
#define MAIND_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gmproto.h"

#define MAIND_LISTEN_MAX	8

struct maind_config {
	/* [server] */
	struct sockaddr_storage listen[MAIND_LISTEN_MAX];
	socklen_t listen_len[MAIND_LISTEN_MAX];
	unsigned int n_listen;
	char key_file[256];
	char conninfo[512];		/* libpq connection string of the primary */
	char report_conninfo[512];	/* mainctl's reports (e.g. a hot standby); "" = conninfo */
	uint32_t max_connections;	/* 1..100000 */
	uint32_t first_frame_timeout_s;	/* 1..3600 */
	uint32_t idle_timeout_s;	/* 1..86400 */
	uint32_t max_batch;		/* frames per transaction, 1..1000000 */
	uint32_t command_resend_s;	/* unsettled commands pushed again after, 1..86400 */
	uint32_t silent_after_s;	/* mainctl: a town silent this long is "administrative" */
	/* [commands] (Documentation/commands.md) */
	uint32_t cmd_two_above;		/* two operators for operations above this many targets */
	uint32_t cmd_disconnects_hour;	/* disconnects queued per hour, system-wide */
	/* [portal]: maind-portal, the utility portal (Documentation/portal.md) */
	char portal_listen[80];		/* "127.0.0.1:8443", "[::1]:8443", ":8443" */
	char portal_tls_cert[256], portal_tls_key[256];	/* PEM files, both or neither */
	uint32_t portal_session_s;	/* absolute session lifetime */
	uint32_t portal_idle_s;		/* signed out after this long without a request */
	uint32_t portal_pool;		/* database connections, 1..64 */
	uint32_t portal_conn_max;	/* HTTP connections at once */
	char portal_sender[512];	/* letters' return address, lines by '|' */
};

void maind_config_defaults(struct maind_config *c);
/* Parse path; on error -1 with "file:line: [section] key 'k': why" in err. */
int maind_config_load(struct maind_config *c, const char *path, char *err, size_t errlen);
/* "127.0.0.1:7800", "[::1]:7800" -> sockaddr. 0 or -1. */
int maind_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* Key file: one line, the secret key in hex, mode 0600 or stricter. 0 or -1 with err. */
int maind_key_load(const char *path, struct gmp_keypair *kp, char *err, size_t errlen);
/* A new key file (must not exist). 0 or -1 with err. */
int maind_key_create(const char *path, struct gmp_keypair *kp, char *err, size_t errlen);

#endif
