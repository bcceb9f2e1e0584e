// SPDX-License-Identifier: GPL-2.0
/*
 * meterd during the walk-through (setup.h). meterd holds the relay lines
 * and the modem's serial line: on a systemd system, as root, the
 * walk-through stops it (saying so) and starts it again at the end; not
 * as root while it runs, gridmeter-setup refuses (nothing done). At the end
 * the live values come from meterd itself over D-Bus (org.gridmeter.Meter1,
 * Documentation/dbus-api.md), with its own SelfTest().
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "setup.h"

#define UNIT		"meterd.service"
#define BUS_NAME	"org.gridmeter.Meter1"
#define BUS_PATH	"/org/gridmeter/Meter1"
#define BUS_IFACE	"org.gridmeter.Meter1"
#define START_WAIT_MS	60000

extern char **environ;

/* Run systemctl ARGS; its first output line in out (may be NULL). Exit status or -errno. */
static int systemctl(const char *const args[], char *out, size_t outlen)
{
	const char *argv[8] = { "systemctl" };
	posix_spawn_file_actions_t fa;
	int pfd[2], st = 0, r;
	pid_t pid;
	size_t n = 0;

	for (int k = 0; args[k] && k < 6; k++)
		argv[k + 1] = args[k];
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	r = posix_spawnp(&pid, "systemctl", &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (r) {
		close(pfd[0]);
		return -r;
	}
	if (out) {
		ssize_t k;

		while (n + 1 < outlen && (k = read(pfd[0], out + n, outlen - 1 - n)) > 0)
			n += (size_t)k;
		out[n] = 0;
		out[strcspn(out, "\n")] = 0;
	}
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

void service_probe(struct setup *s)
{
	const char *load[] = { "show", "-p", "LoadState", "--value", UNIT, NULL };
	const char *active[] = { "is-active", UNIT, NULL };
	char buf[64];

	s->systemd = !s->o.no_service && !access("/run/systemd/system", F_OK);
	if (!s->systemd)
		return;
	s->unit_loaded = systemctl(load, buf, sizeof(buf)) == 0 && !strcmp(buf, "loaded");
	s->was_active = s->unit_loaded && systemctl(active, buf, sizeof(buf)) == 0;
}

int service_stop_for_walkthrough(struct setup *s)
{
	const char *stop[] = { "stop", UNIT, NULL };
	bool go = true;
	int r;

	if (!s->was_active)
		return 0;
	fprintf(s->p.out, "meterd is running: it holds the relay lines and the modem's serial line.\n"
		"The walk-through stops it (the supply stays as it is: the relays keep their\n"
		"level) and starts it again at the end.\n");
	if (geteuid() != 0) {
		fprintf(s->p.out, "Run gridmeter-setup as root (sudo gridmeter-setup) so that it can stop\n"
			"and start meterd, or stop it first (systemctl stop meterd). Nothing was changed.\n");
		return -EPERM;
	}
	r = prompt_yesno(&s->p, "Stop meterd for the walk-through?", true, &go);
	if (r)
		return r;
	if (!go) {
		fprintf(s->p.out, "Not stopped: the walk-through needs the lines meterd holds. Nothing was "
			"changed.\n");
		return -ECANCELED;
	}
	r = systemctl(stop, NULL, 0);
	if (r) {
		fprintf(s->p.out, "systemctl stop meterd failed (status %d)\n", r);
		return -EIO;
	}
	s->stopped_it = true;
	fprintf(s->p.out, "meterd stopped.\n");
	return 0;
}

int service_restore(struct setup *s, bool ask)
{
	const char *start[] = { "start", UNIT, NULL };
	bool go = s->stopped_it;
	int r;

	if (!s->systemd || !s->unit_loaded) {
		report_add(&s->rep, CHECK_SKIP, false, "meterd", "%s", s->o.no_service ? "--no-service" :
			   !s->systemd ? "not a systemd system" : "meterd.service is not installed");
		return 0;
	}
	if (!go && ask && geteuid() == 0) {
		r = prompt_yesno(&s->p, "meterd is not running. Start it now?", true, &go);
		if (r)
			return r;
	}
	if (!go) {
		bool active = systemctl((const char *[]){ "is-active", UNIT, NULL }, NULL, 0) == 0;

		report_add(&s->rep, active ? CHECK_PASS : CHECK_FAIL, true, "meterd", "%s",
			   active ? "running" : "not running (systemctl start meterd)");
		s->running = active;
		return 0;
	}
	r = systemctl(start, NULL, 0);
	s->stopped_it = r != 0 && s->stopped_it;
	s->running = r == 0;
	report_add(&s->rep, r ? CHECK_FAIL : CHECK_PASS, true, "meterd", "%s",
		   r ? "systemctl start meterd failed: journalctl -u meterd" : "started (systemctl start meterd)");
	return 0;
}

void service_start_again(struct setup *s)
{
	const char *start[] = { "start", UNIT, NULL };

	if (!s->stopped_it)
		return;
	fprintf(s->p.out, "starting meterd again\n");
	fflush(s->p.out);
	if (systemctl(start, NULL, 0))
		fprintf(s->p.out, "systemctl start meterd failed: start it by hand\n");
	else
		s->stopped_it = false;
}

static int get_u32(sd_bus *bus, const char *name, uint32_t *v)
{
	return sd_bus_get_property_trivial(bus, BUS_NAME, BUS_PATH, BUS_IFACE, name, NULL, 'u', v);
}

void service_live_values(struct setup *s)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *m = NULL;
	sd_bus *bus = NULL;
	uint32_t mv = 0, ma = 0, mhz = 0;
	int64_t mw = 0;
	int32_t pf = 0;
	int r, passed = 0, n = 0;
	int64_t end = setup_now_ms() + START_WAIT_MS;
	char failed[REPORT_TEXT] = "";

	if (!s->running)
		return;
	r = sd_bus_open_system(&bus);
	if (r < 0) {
		report_add(&s->rep, CHECK_FAIL, true, "dbus", "system bus: %s", strerror(-r));
		return;
	}
	/* meterd owns its name once started; the readings come with the first samples */
	do {
		r = get_u32(bus, "Voltage", &mv);
		if (r >= 0 && mv)
			break;
		setup_sleep_ms(500);
	} while (setup_now_ms() < end);
	if (r < 0 || !mv) {
		report_add(&s->rep, CHECK_FAIL, true, "live-values", "%s", r < 0 ?
			   "org.gridmeter.Meter1 did not answer in 60 s (journalctl -u meterd)" :
			   "meterd reads 0 V");
		sd_bus_unref(bus);
		return;
	}
	get_u32(bus, "Current", &ma);
	get_u32(bus, "Frequency", &mhz);
	sd_bus_get_property_trivial(bus, BUS_NAME, BUS_PATH, BUS_IFACE, "ActivePower", NULL, 'x', &mw);
	sd_bus_get_property_trivial(bus, BUS_NAME, BUS_PATH, BUS_IFACE, "PowerFactor", NULL, 'i', &pf);
	report_add(&s->rep, CHECK_PASS, true, "live-values", "meterd: %.3f V, %.3f A, %.3f W, PF %.3f, %.3f Hz",
		   mv / 1e3, ma / 1e3, (double)mw / 1e3, pf / 1e3, mhz / 1e3);
	r = sd_bus_get_property(bus, BUS_NAME, BUS_PATH, BUS_IFACE, "Alarms", &e, &m, "as");
	if (r >= 0) {
		char list[REPORT_TEXT] = "";
		const char *a;

		sd_bus_message_enter_container(m, 'a', "s");
		while (sd_bus_message_read(m, "s", &a) > 0)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", list[0] ? ", " : "", a);
		report_add(&s->rep, CHECK_INFO, false, "alarms", "%s", list[0] ? list : "none");
	}
	m = sd_bus_message_unref(m);
	sd_bus_error_free(&e);
	r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, BUS_IFACE, "SelfTest", &e, &m, "");
	if (r < 0) {
		report_add(&s->rep, CHECK_SKIP, false, "selftest", "SelfTest(): %s",
			   e.message ? e.message : strerror(-r));
	} else {
		int ok = 0;
		const char *line;

		sd_bus_message_read(m, "b", &ok);
		sd_bus_message_enter_container(m, 'a', "s");
		while (sd_bus_message_read(m, "s", &line) > 0) {
			n++;
			if (!strncmp(line, "PASS", 4))
				passed++;
			else if (strlen(failed) + strlen(line) + 3 < sizeof(failed))
				snprintf(failed + strlen(failed), sizeof(failed) - strlen(failed), "%s%s",
					 failed[0] ? "; " : "", line);
		}
		report_add(&s->rep, ok ? CHECK_PASS : CHECK_FAIL, true, "selftest",
			   "meterd SelfTest(): %d of %d passed%s%s", passed, n, failed[0] ? ": " : "", failed);
	}
	sd_bus_message_unref(m);
	sd_bus_error_free(&e);
	sd_bus_unref(bus);
}
