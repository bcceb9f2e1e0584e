// SPDX-License-Identifier: GPL-2.0
/*
 * townd: the town server (Documentation/townd.md).
 *
 *   townd [-c CONFIG] [--check]
 *
 * --check validates the configuration (max_connections against the
 * open-file limit included), the key file and the database, then exits. Exit status 0 on a clean stop, 1 on any error; townd refuses
 * to start rather than guess.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "townd_config.h"
#include "townd_core.h"
#include "townd_net.h"

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *path = "/etc/gridmeter/townd.conf";
	struct townd_config cfg;
	char err[512];
	int check = 0, o, nfds, fds[TOWND_LISTEN_MAX];

	while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-c CONFIG] [--check]\n", argv[0]);
			return o == 'h' ? 0 : 1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return 1;
	}
	if (townd_config_load(&cfg, path, err, sizeof(err))) {
		fprintf(stderr, "townd: %s\n", err);
		sd_notifyf(0, "STATUS=configuration error: %s", err);
		return 1;
	}
	if (check) {
		struct gmp_keypair kp;
		struct townd_db db;
		uint32_t max_conn;
		/* the same limit as the service: ExecStartPre runs under its LimitNOFILE */
		int fit = townd_fd_limit(&cfg, cfg.n_listen, &max_conn, err, sizeof(err));

		if (fit)
			fprintf(stderr, "townd: %s\n", err);
		if (fit < 0)
			return 1;
		if (sodium_init() < 0 || townd_key_load(cfg.key_file, &kp, err, sizeof(err)) ||
		    tdb_open(&db, cfg.database, cfg.sync_full, err, sizeof(err))) {
			fprintf(stderr, "townd: %s\n", err);
			return 1;
		}
		tdb_close(&db);
		sodium_memzero(&kp, sizeof(kp));
		printf("%s: configuration, key and database are valid\n", path);
		return 0;
	}
	nfds = sd_listen_fds(1);
	if (nfds < 0 || nfds > TOWND_LISTEN_MAX) {
		fprintf(stderr, "townd: bad socket activation (%d sockets)\n", nfds);
		return 1;
	}
	for (int i = 0; i < nfds; i++)
		fds[i] = SD_LISTEN_FDS_START + i;
	if (townd_run(&cfg, fds, nfds, err, sizeof(err))) {
		fprintf(stderr, "townd: %s\n", err);
		sd_notifyf(0, "STATUS=cannot run: %s", err);
		return 1;
	}
	return 0;
}
