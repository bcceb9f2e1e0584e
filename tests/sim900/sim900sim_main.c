// SPDX-License-Identifier: GPL-2.0
/*
 * sim900sim: a simulated SIM900 modem for tests (Documentation/sim900.md).
 *
 *   sim900sim --pty LINK [--guard-ms MS]     serial line on a new pty; LINK
 *                                            becomes a symlink to its slave
 *   sim900sim --unix PATH [--guard-ms MS]    serial line on a unix socket,
 *                                            for QEMU: -chardev socket,path=PATH
 *
 * Control commands (sim900sim.h) are read from stdin, one per line, and
 * answered on stdout; the program ends when stdin closes.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "sim900sim.h"

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pty", required_argument, NULL, 'p' },
		{ "unix", required_argument, NULL, 'u' },
		{ "guard-ms", required_argument, NULL, 'g' },
		{ 0 },
	};
	const char *pty_link = NULL, *unix_path = NULL;
	struct sim900sim s;
	unsigned long guard = 1000;
	int o, tty = -1, slave = -1;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			pty_link = optarg;
			break;
		case 'u':
			unix_path = optarg;
			break;
		case 'g':
			guard = strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: %s --pty LINK | --unix PATH [--guard-ms MS]\n",
				argv[0]);
			return 2;
		}
	}
	if (!pty_link == !unix_path || guard < 20 || guard > 2550) {
		fprintf(stderr, "%s: exactly one of --pty and --unix; guard 20..2550 ms\n",
			argv[0]);
		return 2;
	}
	if (pty_link) {
		struct termios t;
		const char *name;

		tty = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (tty < 0 || grantpt(tty) || unlockpt(tty) || !(name = ptsname(tty))) {
			perror("pty");
			return 1;
		}
		/* keep the slave open and raw: no echo from the pty itself */
		slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (slave < 0 || tcgetattr(slave, &t)) {
			perror(name);
			return 1;
		}
		cfmakeraw(&t);
		tcsetattr(slave, TCSANOW, &t);
		unlink(pty_link);
		if (symlink(name, pty_link)) {
			perror(pty_link);
			return 1;
		}
		fprintf(stderr, "sim900sim: serial line %s -> %s\n", pty_link, name);
	} else {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (strlen(unix_path) >= sizeof(sa.sun_path)) {
			fprintf(stderr, "%s: path too long\n", unix_path);
			return 1;
		}
		strcpy(sa.sun_path, unix_path);
		unlink(unix_path);
		if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1)) {
			perror(unix_path);
			return 1;
		}
		fprintf(stderr, "sim900sim: waiting for the serial line on %s\n", unix_path);
		tty = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		close(l);
		if (tty < 0) {
			perror("accept");
			return 1;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sim900sim_init(&s, tty, (uint32_t)guard);
	o = sim900sim_run(&s, STDIN_FILENO, STDOUT_FILENO);
	if (pty_link)
		unlink(pty_link);
	if (slave >= 0)
		close(slave);
	return o ? 1 : 0;
}
