// SPDX-License-Identifier: GPL-2.0
/*
 * maind-portal's main(): maind.conf ([server] conninfo, [portal]), the TLS
 * files, the HTTP server, until SIGTERM or SIGINT (Documentation/portal.md).
 *
 *   maind-portal [-c /etc/gridmeter/maind.conf] [--check]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portal.h"

/* A PEM file into memory (at most 1 MiB). NULL with err. */
static char *read_pem(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(1u << 20);
	n = buf ? fread(buf, 1, (1u << 20) - 1, f) : 0;
	fclose(f);
	if (!buf || !n || !strstr((buf[n] = '\0', buf), "-----BEGIN ")) {
		snprintf(err, errlen, "%s: not a PEM file", path);
		free(buf);
		return NULL;
	}
	return buf;
}

int main(int argc, char **argv)
{
	const char *path = "/etc/gridmeter/maind.conf";
	struct web_server_config wc = { 0 };
	struct maind_config cfg;
	struct web_server *srv;
	struct portal app;
	char err[768], *cert = NULL, *key = NULL;
	bool check = false;
	sigset_t set;
	int sig;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "--check")) {
			check = true;
		} else {
			fprintf(stderr, "usage: maind-portal [-c maind.conf] [--check]\n");
			return 2;
		}
	}
	if (maind_config_load(&cfg, path, err, sizeof(err))) {
		fprintf(stderr, "maind-portal: %s\n", err);
		return 1;
	}
	if (cfg.portal_tls_cert[0]) {
		cert = read_pem(cfg.portal_tls_cert, err, sizeof(err));
		key = cert ? read_pem(cfg.portal_tls_key, err, sizeof(err)) : NULL;
		if (!key) {
			fprintf(stderr, "maind-portal: [portal] %s\n", err);
			free(cert);
			return 1;
		}
	}
	if (check) {
		printf("maind-portal: %s is valid\n", path);
		free(cert);
		free(key);
		return 0;
	}
	/* signals are taken by sigwait below, in this thread only */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (portal_open(&app, &cfg, NULL, err, sizeof(err))) {
		fprintf(stderr, "maind-portal: %s\n", err);
		return 1;
	}
	wc.listen = cfg.portal_listen;
	wc.conn_max = cfg.portal_conn_max;
	wc.timeout_s = 30;
	wc.tls_cert_pem = cert;
	wc.tls_key_pem = key;
	/* the PEM text stays until the server stops (libmicrohttpd may read it later) */
	srv = web_server_start(&wc, portal_handle, &app, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "maind-portal: %s: %s\n", cfg.portal_listen, err);
		portal_close(&app);
		free(key);
		free(cert);
		return 1;
	}
	fprintf(stderr, "maind-portal: serving %s on %s (port %u), %u database connections\n",
		cfg.portal_tls_cert[0] ? "https" : "http", cfg.portal_listen,
		web_server_port(srv), cfg.portal_pool);
	do {
		if (sigwait(&set, &sig))
			sig = SIGTERM;
	} while (sig == SIGHUP);	/* nothing to reload: sessions stay */
	fprintf(stderr, "maind-portal: signal %d, stopping\n", sig);
	web_server_stop(srv);
	portal_close(&app);
	if (key) {
		memset(key, 0, strlen(key));
		free(key);
	}
	free(cert);
	return 0;
}
