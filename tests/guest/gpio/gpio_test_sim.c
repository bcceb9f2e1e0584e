// SPDX-License-Identifier: GPL-2.0
/*
 * gpio_test_sim - in-guest tests of the simulated GPIO chip "gm-sim-gpio"
 * (tests/kmod/gm_sim_adc.c): its nested, threaded interrupts seen through
 * the GPIO character device (uAPI v2 edge events), with the input levels
 * driven through the sim_gpio_levels attribute of the IIO device
 * "gm-sim-adc". Every expected event follows from the levels the test
 * writes and the edges it requested; none may be missing or extra.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/gpio.h>

#include "kselftest_harness.h"

#define SYS_IIO		"/sys/bus/iio/devices"
#define RISING		GPIO_V2_LINE_EVENT_RISING_EDGE
#define FALLING		GPIO_V2_LINE_EVENT_FALLING_EDGE

static int sh(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int find_sim(char *dir, size_t len)
{
	DIR *d = opendir(SYS_IIO);
	struct dirent *e;
	char path[PATH_MAX], buf[64];
	int found = -1;

	while (d && (e = readdir(d))) {
		FILE *f;

		if (strncmp(e->d_name, "iio:device", 10))
			continue;
		snprintf(path, sizeof(path), SYS_IIO "/%s/name", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && !strcmp(buf, "gm-sim-adc\n")) {
			snprintf(dir, len, SYS_IIO "/%s", e->d_name);
			found = 0;
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

/* The /dev/gpiochipN labelled gm-sim-gpio, opened, or -1. */
static int open_chip(void)
{
	char path[64];
	int n;

	for (n = 0; n < 64; n++) {
		struct gpiochip_info info;
		int fd;

		snprintf(path, sizeof(path), "/dev/gpiochip%d", n);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, &info) &&
		    !strcmp(info.label, "gm-sim-gpio"))
			return fd;
		close(fd);
	}
	return -1;
}

static int drive(const char *sim, unsigned int levels)
{
	char path[PATH_MAX], val[16];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/sim_gpio_levels", sim);
	snprintf(val, sizeof(val), "0x%x", levels);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static long levels(const char *sim)
{
	char path[PATH_MAX], buf[32];
	FILE *f;
	long v = -1;

	snprintf(path, sizeof(path), "%s/sim_gpio_levels", sim);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 0);
	fclose(f);
	return v;
}

/* Request @n lines from @off with @flags; the request fd or -errno. */
static int request(int chip, unsigned int off, unsigned int n, uint64_t flags)
{
	struct gpio_v2_line_request req;
	unsigned int k;

	memset(&req, 0, sizeof(req));
	for (k = 0; k < n; k++)
		req.offsets[k] = off + k;
	req.num_lines = n;
	req.config.flags = flags;
	snprintf(req.consumer, sizeof(req.consumer), "gpio_test_sim");
	if (ioctl(chip, GPIO_V2_GET_LINE_IOCTL, &req) < 0)
		return -errno;
	return req.fd;
}

/*
 * Read the events that arrive within @ms into @ev (at most @max); the
 * nested interrupt runs in the writer's context, so the events of a write
 * are queued when the write returns and a short wait for stragglers is
 * only there to catch extra ones.
 */
static int events(int fd, struct gpio_v2_line_event *ev, int max, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = 0;

	while (n < max + 1 && poll(&p, 1, ms) == 1) {
		struct gpio_v2_line_event e;

		if (read(fd, &e, sizeof(e)) != sizeof(e))
			break;
		if (n < max)
			ev[n] = e;
		n++;
	}
	return n;
}

FIXTURE(sim) {
	char sim[320];
	int chip;
};

/* the harness defines these non-static */
void sim_setup(struct __test_metadata *_metadata, FIXTURE_DATA(sim) *self,
	       const FIXTURE_VARIANT(sim) *variant);
void sim_teardown(struct __test_metadata *_metadata, FIXTURE_DATA(sim) *self,
		  const FIXTURE_VARIANT(sim) *variant);

FIXTURE_SETUP(sim)
{
	sh("rmmod gridmeter_ct 2>/dev/null; rmmod gm_sim_adc 2>/dev/null");
	ASSERT_EQ(0, sh("modprobe gm_sim_adc consumer=0"));
	ASSERT_EQ(0, find_sim(self->sim, sizeof(self->sim)));
	self->chip = open_chip();
	ASSERT_LE(0, self->chip);
}

FIXTURE_TEARDOWN(sim)
{
	if (self->chip >= 0)
		close(self->chip);
	sh("rmmod gm_sim_adc 2>/dev/null");
}

/* Every line is an input at level 0 after load, and has an interrupt. */
TEST_F(sim, lines_have_interrupts)
{
	struct gpiochip_info info;
	unsigned int k;

	ASSERT_EQ(0, ioctl(self->chip, GPIO_GET_CHIPINFO_IOCTL, &info));
	ASSERT_EQ(8, info.lines);
	EXPECT_EQ(0, levels(self->sim));
	for (k = 0; k < info.lines; k++) {
		int fd = request(self->chip, k, 1, GPIO_V2_LINE_FLAG_INPUT |
				 GPIO_V2_LINE_FLAG_EDGE_RISING |
				 GPIO_V2_LINE_FLAG_EDGE_FALLING);

		EXPECT_LE(0, fd) TH_LOG("line %u: edge request: %s", k, strerror(-fd));
		if (fd >= 0)
			close(fd);
	}
	/* an out-of-range level mask is refused */
	EXPECT_EQ(-EINVAL, drive(self->sim, 0x100));
}

/* Rising edges only: one event per 0 -> 1, none for 1 -> 0 or no change. */
TEST_F(sim, rising_only)
{
	struct gpio_v2_line_event ev[8];
	int fd, n;

	fd = request(self->chip, 1, 1, GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_RISING);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, drive(self->sim, 0x02));
	n = events(fd, ev, 8, 100);
	ASSERT_EQ(1, n);
	EXPECT_EQ(RISING, ev[0].id);
	EXPECT_EQ(1, ev[0].offset);
	EXPECT_EQ(1, ev[0].line_seqno);
	EXPECT_NE(0, ev[0].timestamp_ns);
	ASSERT_EQ(0, drive(self->sim, 0x02));		/* no change */
	ASSERT_EQ(0, drive(self->sim, 0x00));		/* falling: not requested */
	EXPECT_EQ(0, events(fd, ev, 8, 100));
	ASSERT_EQ(0, drive(self->sim, 0x02));
	n = events(fd, ev, 8, 100);
	ASSERT_EQ(1, n);
	EXPECT_EQ(RISING, ev[0].id);
	EXPECT_EQ(2, ev[0].line_seqno);
	/* the value read back follows the driven level */
	{
		struct gpio_v2_line_values v = { .mask = 1 };

		ASSERT_EQ(0, ioctl(fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v));
		EXPECT_EQ(1, v.bits & 1);
	}
	close(fd);
}

TEST_F(sim, falling_only)
{
	struct gpio_v2_line_event ev[8];
	int fd;

	ASSERT_EQ(0, drive(self->sim, 0x04));		/* high before the request */
	fd = request(self->chip, 2, 1, GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_FALLING);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, drive(self->sim, 0x00));
	ASSERT_EQ(1, events(fd, ev, 8, 100));
	EXPECT_EQ(FALLING, ev[0].id);
	EXPECT_EQ(2, ev[0].offset);
	ASSERT_EQ(0, drive(self->sim, 0x04));
	EXPECT_EQ(0, events(fd, ev, 8, 100));
	close(fd);
}

/* Both edges on two lines: exactly the edges of the level sequence, in order. */
TEST_F(sim, both_edges_sequence)
{
	static const unsigned int seq[] = { 0x10, 0x30, 0x20, 0x00, 0x30, 0x30, 0x00 };
	struct gpio_v2_line_event ev[32];
	unsigned int prev = 0, k, want = 0;
	int fd, n, i = 0;

	fd = request(self->chip, 4, 2, GPIO_V2_LINE_FLAG_INPUT |
		     GPIO_V2_LINE_FLAG_EDGE_RISING | GPIO_V2_LINE_FLAG_EDGE_FALLING);
	ASSERT_LE(0, fd);
	for (k = 0; k < sizeof(seq) / sizeof(seq[0]); k++) {
		ASSERT_EQ(0, drive(self->sim, seq[k]));
		want += __builtin_popcount((seq[k] ^ prev) & 0x30);
		prev = seq[k];
	}
	n = events(fd, ev, 32, 200);
	ASSERT_EQ(want, n);
	/* replay the sequence: each event is the next edge, lower line first */
	prev = 0;
	for (k = 0; k < sizeof(seq) / sizeof(seq[0]); k++) {
		unsigned int off;

		for (off = 4; off <= 5; off++) {
			unsigned int bit = 1u << off;

			if (!((seq[k] ^ prev) & bit))
				continue;
			ASSERT_LT(i, n);
			EXPECT_EQ(off, ev[i].offset);
			EXPECT_EQ((seq[k] & bit) ? RISING : FALLING, ev[i].id);
			EXPECT_EQ(i + 1, ev[i].seqno);
			if (i)
				EXPECT_LE(ev[i - 1].timestamp_ns, ev[i].timestamp_ns);
			i++;
		}
		prev = seq[k];
	}
	close(fd);
}

/* An active-low line: the physical falling edge is the logical rising one. */
TEST_F(sim, active_low)
{
	struct gpio_v2_line_event ev[8];
	int fd;

	ASSERT_EQ(0, drive(self->sim, 0x08));
	fd = request(self->chip, 3, 1, GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_ACTIVE_LOW |
		     GPIO_V2_LINE_FLAG_EDGE_RISING);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, drive(self->sim, 0x00));		/* pressed */
	ASSERT_EQ(1, events(fd, ev, 8, 100));
	EXPECT_EQ(RISING, ev[0].id);
	ASSERT_EQ(0, drive(self->sim, 0x08));		/* released */
	EXPECT_EQ(0, events(fd, ev, 8, 100));
	close(fd);
}

/*
 * Outputs keep their level whatever is driven, raise no event, and their
 * changes are stamped with the simulated time; a released edge line stops
 * its interrupts and can be requested again.
 */
TEST_F(sim, outputs_and_release)
{
	struct gpio_v2_line_event ev[8];
	struct gpio_v2_line_values v = { .bits = 1, .mask = 1 };
	char path[PATH_MAX], buf[512];
	unsigned long long conv = 0, ns = 0;
	int out, in, line = -1;
	FILE *f;

	out = request(self->chip, 0, 1, GPIO_V2_LINE_FLAG_OUTPUT);
	ASSERT_LE(0, out);
	ASSERT_EQ(0, ioctl(out, GPIO_V2_LINE_SET_VALUES_IOCTL, &v));
	EXPECT_EQ(0x01, levels(self->sim));
	ASSERT_EQ(0, drive(self->sim, 0x00));
	EXPECT_EQ(0x01, levels(self->sim));		/* output kept */
	snprintf(path, sizeof(path), "%s/sim_gpio_changed", self->sim);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(buf, sizeof(buf), f));
	fclose(f);
	ASSERT_EQ(3, sscanf(buf, "%d %llu %llu", &line, &conv, &ns));
	EXPECT_EQ(0, line);
	EXPECT_NE(0, ns);
	close(out);

	in = request(self->chip, 6, 1, GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_RISING);
	ASSERT_LE(0, in);
	close(in);
	ASSERT_EQ(0, drive(self->sim, 0x40));		/* nobody listens */
	ASSERT_EQ(0, drive(self->sim, 0x00));
	in = request(self->chip, 6, 1, GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_RISING);
	ASSERT_LE(0, in);
	ASSERT_EQ(0, drive(self->sim, 0x40));
	ASSERT_EQ(1, events(in, ev, 8, 100));
	EXPECT_EQ(1, ev[0].line_seqno);
	close(in);
}

TEST_HARNESS_MAIN
