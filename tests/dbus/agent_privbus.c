// SPDX-License-Identifier: GPL-2.0
#include "agent_privbus.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

static const char bus_conf[] =
	"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
	" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	"<busconfig><listen>unix:path=%s/bus</listen><auth>EXTERNAL</auth>\n"
	"<policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/>\n"
	"<allow send_destination=\"*\"/><allow receive_sender=\"*\"/></policy></busconfig>\n";

static const char system_conf[] =
	"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
	" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	"<busconfig><listen>unix:path=%s/bus</listen><auth>EXTERNAL</auth>\n"
	"<policy context=\"default\"><allow user=\"*\"/><deny own=\"*\"/>\n"
	"<deny send_type=\"method_call\"/><allow send_type=\"signal\"/>\n"
	"<allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
	"<allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
	"<allow receive_type=\"method_call\"/><allow receive_type=\"method_return\"/>\n"
	"<allow receive_type=\"error\"/><allow receive_type=\"signal\"/>\n"
	"<allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
	"<allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
	"</policy>\n"
	"<policy user=\"root\"><allow own=\"%s\"/><allow send_destination=\"%s\"/></policy>\n"
	"<include>%s</include></busconfig>\n";

static pid_t start(const char *dir, const char *include, const char *name);

pid_t privbus_start(const char *dir)
{
	return start(dir, NULL, NULL);
}

pid_t privbus_start_system(const char *dir, const char *include, const char *name)
{
	return start(dir, include, name);
}

static pid_t start(const char *dir, const char *include, const char *name)
{
	char path[256], addr[512] = "";
	int pfd[2];
	pid_t pid;
	ssize_t n;
	FILE *f;

	chmod(dir, 0755);
	snprintf(path, sizeof(path), "%s/bus.conf", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	if (include)
		fprintf(f, system_conf, dir, name, name, include);
	else
		fprintf(f, bus_conf, dir);
	fclose(f);
	if (pipe(pfd))
		return -1;
	pid = fork();
	if (!pid) {
		char fdarg[32], log[256];

		snprintf(fdarg, sizeof(fdarg), "--print-address=%d", pfd[1]);
		snprintf(log, sizeof(log), "%s/dbus-daemon.log", dir);
		close(pfd[0]);
		if (!freopen(log, "a", stderr))
			_exit(126);
		execl("/usr/bin/dbus-daemon", "dbus-daemon", "--nofork", "--nopidfile", fdarg,
		      "--config-file", path, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	n = read(pfd[0], addr, sizeof(addr) - 1);
	close(pfd[0]);
	if (n <= 0) {
		privbus_stop(pid, SIGKILL);
		return -1;
	}
	addr[strcspn(addr, "\n")] = 0;
	setenv("DBUS_SYSTEM_BUS_ADDRESS", addr, 1);
	snprintf(path, sizeof(path), "%s/bus", dir);
	chmod(path, 0777);
	return pid;
}

int privbus_wait_name(const char *name, int timeout_ms)
{
	sd_bus *bus = NULL;
	int r = -ETIMEDOUT;

	if (sd_bus_open_system(&bus) < 0)
		return -ENOTCONN;
	for (int t = 0; t < timeout_ms; t += 20) {
		sd_bus_message *reply = NULL;
		int has = 0;

		if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
				       "org.freedesktop.DBus", "NameHasOwner", NULL, &reply, "s",
				       name) >= 0 && sd_bus_message_read(reply, "b", &has) >= 0 && has) {
			sd_bus_message_unref(reply);
			r = 0;
			break;
		}
		sd_bus_message_unref(reply);
		usleep(20000);
	}
	sd_bus_flush_close_unref(bus);
	return r;
}

void privbus_stop(pid_t pid, int sig)
{
	if (pid > 0) {
		kill(pid, sig);
		waitpid(pid, NULL, 0);
	}
}
