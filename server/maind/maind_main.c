// SPDX-License-Identifier: GPL-2.0
/* maind: the main server (Documentation/maind.md). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "maind_config.h"
#include "maind_net.h"

int main(int argc, char **argv)
{
	const char *path = "/etc/gridmeter/maind.conf";
	struct maind_config cfg;
	char err[768];
	bool check = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "--check")) {
			check = true;
		} else {
			fprintf(stderr, "usage: maind [-c maind.conf] [--check]\n");
			return 2;
		}
	}
	if (maind_config_load(&cfg, path, err, sizeof(err))) {
		fprintf(stderr, "maind: %s\n", err);
		return 1;
	}
	if (check)
		return 0;
	if (maind_run(&cfg, NULL, 0, err, sizeof(err))) {
		fprintf(stderr, "maind: %s\n", err);
		return 1;
	}
	return 0;
}
