// SPDX-License-Identifier: GPL-2.0
/*
 * maind-notify: delivers the main server's customer and operator notices
 * by e-mail, SMS or post (Documentation/notices.md).
 *
 *   maind-notify [-c /etc/gridmeter/notify.conf] [--check] [--once]
 *
 * --check: read the configuration and exit (0 valid, 1 not);
 * --once: deliver what is due now and exit. SIGTERM / SIGINT: the notice
 * being delivered is finished first.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <curl/curl.h>

#include "notify.h"
#include "notify_config.h"

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "once", no_argument, NULL, 'o' },
		{ 0 },
	};
	const char *path = "/etc/gridmeter/notify.conf";
	struct notify_config cfg;
	char err[1024];
	int o, check = 0, once = 0, sfd, rc;
	sigset_t ss;

	while ((o = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = 1;
			break;
		case 'o':
			once = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-c notify.conf] [--check] [--once]\n", argv[0]);
			return 2;
		}
	}
	if (notify_config_load(&cfg, path, err, sizeof(err))) {
		fprintf(stderr, "maind-notify: %s\n", err);
		return 1;
	}
	if (check)
		return 0;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	sfd = signalfd(-1, &ss, SFD_CLOEXEC);
	if (sfd < 0 || curl_global_init(CURL_GLOBAL_DEFAULT)) {
		perror("maind-notify: signalfd or libcurl");
		return 1;
	}
	rc = notify_run(&cfg, sfd, once, err, sizeof(err));
	if (rc)
		fprintf(stderr, "maind-notify: %s\n", err);
	curl_global_cleanup();
	close(sfd);
	return rc ? 1 : 0;
}
