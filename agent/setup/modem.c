// SPDX-License-Identifier: GPL-2.0
/*
 * The modem check of gridmeter-setup (setup.h): the [modem] device of
 * meterd.conf answers AT with OK (after "+++" if meterd left it in
 * transparent mode), its SIM is ready (AT+CPIN?), the signal (AT+CSQ) and
 * the registration (AT+CREG?, polled while searching, up to
 * --modem-timeout). A blocking exchange with timeouts: meterd is stopped
 * meanwhile and nothing else uses the line.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serial_line.h"
#include "setup.h"

#define AT_TIMEOUT_MS	2000
#define AT_TRIES	3

/*
 * Send cmd (with "\r") and collect the answer lines until OK, ERROR or
 * +CME ERROR (final), echo and blank lines dropped. 1 OK, 0 error, -ETIMEDOUT.
 */
static int at_cmd(int fd, const char *cmd, char *info, size_t infolen, unsigned timeout_ms)
{
	char line[256];
	size_t n = 0;
	int64_t end = setup_now_ms() + timeout_ms;

	info[0] = 0;
	if (cmd && (write(fd, cmd, strlen(cmd)) < 0 || write(fd, "\r", 1) < 0))
		return -errno;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = end - setup_now_ms();
		char c;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -ETIMEDOUT;
		while (read(fd, &c, 1) == 1) {
			if (c != '\r' && c != '\n') {
				if (n + 1 < sizeof(line))
					line[n++] = c;
				continue;
			}
			line[n] = 0;
			n = 0;
			if (!line[0] || (cmd && !strcmp(line, cmd)))
				continue;	/* blank, or the echo */
			if (!strcmp(line, "OK"))
				return 1;
			if (!strcmp(line, "ERROR") || !strncmp(line, "+CME ERROR", 10)) {
				snprintf(info, infolen, "%.100s", line);
				return 0;
			}
			/* the information line of the command, not URCs */
			if (cmd && !strncmp(line, cmd + 2, strcspn(cmd + 2, "?=")) && line[0] == '+')
				snprintf(info, infolen, "%.100s", line);
		}
	}
}

/* Leave transparent mode: 1 s of silence, "+++", 1 s of silence. */
static void escape(int fd)
{
	char info[64];

	setup_sleep_ms(1100);
	if (write(fd, "+++", 3) < 0)
		return;
	at_cmd(fd, NULL, info, sizeof(info), 1500);
	/* in command mode "+++" began a line: end it, drop its ERROR */
	if (write(fd, "\r", 1) == 1)
		at_cmd(fd, NULL, info, sizeof(info), 500);
}

int modem_check(struct setup *s)
{
	const struct meter_config *cfg = s->cfg;
	char info[128];
	int fd, r = -ETIMEDOUT, rssi = -1, stat = -1;
	int64_t end;

	if (!cfg->modem) {
		report_add(&s->rep, CHECK_SKIP, false, "modem", "not configured (no [modem] in %s)", cfg->path);
		return 0;
	}
	if (s->o.skip_modem) {
		report_add(&s->rep, CHECK_SKIP, false, "modem", "--no-modem");
		return 0;
	}
	fd = serial_line_open(cfg->modem_device, cfg->modem_baud, info, sizeof(info));
	if (fd < 0) {
		report_add(&s->rep, CHECK_FAIL, true, "modem", "%s", info);
		return 0;
	}
	for (int k = 0; k < AT_TRIES && r != 1; k++) {
		if (k == AT_TRIES - 1)
			escape(fd);	/* meterd may have left it connected */
		r = at_cmd(fd, "AT", info, sizeof(info), AT_TIMEOUT_MS);
	}
	if (r != 1) {
		report_add(&s->rep, CHECK_FAIL, true, "modem-at", "%s at %u baud: %s", cfg->modem_device,
			   cfg->modem_baud, r ? "no answer to AT (powered? meterd powers it with "
			   "PWRKEY at start; wiring TX/RX?)" : "AT answered ERROR");
		close(fd);
		return 0;
	}
	report_add(&s->rep, CHECK_PASS, true, "modem-at", "%s at %u baud: AT -> OK", cfg->modem_device,
		   cfg->modem_baud);
	r = at_cmd(fd, "AT+CPIN?", info, sizeof(info), AT_TIMEOUT_MS);
	report_add(&s->rep, r == 1 && !strcmp(info, "+CPIN: READY") ? CHECK_PASS : CHECK_FAIL, true,
		   "modem-sim", "AT+CPIN? -> %s", r < 0 ? "no answer" : info[0] ? info : "OK");
	r = at_cmd(fd, "AT+CSQ", info, sizeof(info), AT_TIMEOUT_MS);
	if (r == 1)
		sscanf(info, "+CSQ: %d", &rssi);
	if (rssi >= 0 && rssi <= 31)
		report_add(&s->rep, rssi >= 5 ? CHECK_PASS : CHECK_FAIL, true, "modem-signal",
			   "AT+CSQ -> %d (%d dBm)%s", rssi, -113 + 2 * rssi,
			   rssi >= 5 ? "" : ": too weak, move the antenna");
	else
		report_add(&s->rep, CHECK_FAIL, true, "modem-signal", "AT+CSQ -> %s",
			   r < 0 ? "no answer" : rssi == 99 ? "99 (no signal)" : info);
	end = setup_now_ms() + (int64_t)s->o.modem_timeout_s * 1000;
	for (;;) {
		r = at_cmd(fd, "AT+CREG?", info, sizeof(info), AT_TIMEOUT_MS);
		stat = -1;
		if (r == 1 && sscanf(info, "+CREG: %*d,%d", &stat) != 1)
			stat = -1;
		/* 2: searching, 0: not searching yet after a power-up */
		if ((stat != 2 && stat != 0) || setup_now_ms() >= end)
			break;
		setup_sleep_ms(2000);
	}
	{
		static const char *const names[] = { "not registered, not searching", "registered, home",
						     "searching", "registration denied", "unknown",
						     "registered, roaming" };

		report_add(&s->rep, stat == 1 || stat == 5 ? CHECK_PASS : CHECK_FAIL, true, "modem-network",
			   "AT+CREG? -> %s%s%s", r < 0 ? "no answer" : info,
			   stat >= 0 && stat <= 5 ? ": " : "", stat >= 0 && stat <= 5 ? names[stat] : "");
	}
	close(fd);
	return 0;
}
