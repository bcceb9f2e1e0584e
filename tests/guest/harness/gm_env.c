// SPDX-License-Identifier: GPL-2.0
/*
 * gm_env - checks that the test guest provides what every other suite
 * relies on: modules matching the running kernel, a working modprobe, pty
 * pairs, and a real dbus-daemon that busctl can talk to.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "kselftest_harness.h"

static int run(const char *cmd, char *out, size_t outlen)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	int st;

	if (!p)
		return -1;
	if (out && outlen) {
		n = fread(out, 1, outlen - 1, p);
		out[n] = '\0';
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(modules_match_running_kernel)
{
	struct utsname u;
	char path[PATH_MAX];
	struct stat st;

	ASSERT_EQ(0, uname(&u));
	snprintf(path, sizeof(path), "/lib/modules/%s/modules.dep", u.release);
	ASSERT_EQ(0, stat(path, &st)) TH_LOG("%s: %s", path, strerror(errno));
	EXPECT_GT(st.st_size, 0);
}

TEST(modprobe_loads_a_debian_module)
{
	struct stat st;

	ASSERT_EQ(0, run("modprobe industrialio 2>&1", NULL, 0));
	EXPECT_EQ(0, stat("/sys/module/industrialio", &st));
	EXPECT_EQ(0, stat("/sys/bus/iio", &st));
}

TEST(pty_pair_passes_bytes)
{
	const char msg[] = "gridmeter";
	char buf[sizeof(msg)] = "";
	struct termios tio;
	int master, slave;

	master = posix_openpt(O_RDWR | O_NOCTTY);
	ASSERT_GE(master, 0);
	ASSERT_EQ(0, grantpt(master));
	ASSERT_EQ(0, unlockpt(master));
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	ASSERT_GE(slave, 0);
	/* raw mode, as the line discipline tests use it */
	ASSERT_EQ(0, tcgetattr(slave, &tio));
	cfmakeraw(&tio);
	ASSERT_EQ(0, tcsetattr(slave, TCSANOW, &tio));
	ASSERT_EQ((ssize_t)sizeof(msg), write(master, msg, sizeof(msg)));
	usleep(10000);
	EXPECT_GT(read(slave, buf, sizeof(buf)), 0);
	EXPECT_EQ(0, strncmp(buf, msg, strlen(msg)));
	close(slave);
	close(master);
}

TEST(dbus_daemon_answers_busctl)
{
	char out[4096], cmd[512];
	const char *addr = "unix:path=/run/gm-env-bus";
	pid_t pid;
	int i;

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		execlp("dbus-daemon", "dbus-daemon", "--session", "--nofork",
		       "--nopidfile", "--address=unix:path=/run/gm-env-bus",
		       (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100 && access("/run/gm-env-bus", F_OK); i++)
		usleep(50000);
	ASSERT_EQ(0, access("/run/gm-env-bus", F_OK));

	/* busctl speaks to the real daemon: the daemon's own name is listed. */
	snprintf(cmd, sizeof(cmd), "busctl --address=%s list --no-legend 2>&1", addr);
	EXPECT_EQ(0, run(cmd, out, sizeof(out))) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "org.freedesktop.DBus"));

	snprintf(cmd, sizeof(cmd),
		 "busctl --address=%s call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId 2>&1",
		 addr);
	EXPECT_EQ(0, run(cmd, out, sizeof(out))) TH_LOG("%s", out);
	EXPECT_EQ(0, strncmp(out, "s \"", 3)) TH_LOG("%s", out);

	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/*
 * On arm64 the harness adds the overlays in tests/guest/dt to QEMU's virt DTB; the
 * probe overlay's node must be visible to the guest kernel.
 */
TEST(device_tree_overlays_reach_the_guest)
{
	char buf[64] = "";
	int fd;

	if (access("/proc/device-tree", F_OK))
		SKIP(return, "no device tree on this architecture");
	fd = open("/proc/device-tree/gm-probe/compatible", O_RDONLY);
	ASSERT_GE(fd, 0) TH_LOG("the harness-probe overlay node is missing");
	ASSERT_GT(read(fd, buf, sizeof(buf) - 1), 0);
	close(fd);
	EXPECT_STREQ("gridmeter,harness-probe", buf);
}

TEST_HARNESS_MAIN
