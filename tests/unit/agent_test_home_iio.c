// SPDX-License-Identifier: GPL-2.0
/*
 * Home sensors read from IIO sysfs (agent/hw/home_iio.c) in a fake sysfs
 * tree: the device found by name, the channel's own or shared scale and
 * offset, exact values, a device that appears later, a bad value.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The 6.1 harness defines fixture setup/teardown functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "home_iio.h"

static void put(const char *root, const char *rel, const char *text)
{
	char p[512], dir[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", p);
	for (char *s = dir + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = 0;
		mkdir(dir, 0755);
		*s = '/';
	}
	f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static int64_t rdiv(__int128 p, __int128 q)
{
	__int128 a = p < 0 ? -p : p, r = (a + q / 2) / q;

	return (int64_t)(p < 0 ? -r : r);
}

FIXTURE(tree) {
	char root[64];
	struct home_sensor_cfg cfg[3];
};

FIXTURE_SETUP(tree)
{
	snprintf(self->root, sizeof(self->root), "/tmp/gm-home-iio-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->root));
	/* the CT on device0, the ADC on device1 (its scale shared by the type), a temperature on device2 */
	put(self->root, "bus/iio/devices/iio:device0/name", "gridmeter-ct\n");
	put(self->root, "bus/iio/devices/iio:device1/name", "gm-sim-adc\n");
	put(self->root, "bus/iio/devices/iio:device1/in_voltage2_raw", "372\n");
	put(self->root, "bus/iio/devices/iio:device1/in_voltage_scale", "3.222656250\n");
	put(self->root, "bus/iio/devices/iio:device2/name", "tmp117\n");
	put(self->root, "bus/iio/devices/iio:device2/in_temp_raw", "2731\n");
	put(self->root, "bus/iio/devices/iio:device2/in_temp_scale", "7.8125\n");
	put(self->root, "bus/iio/devices/iio:device2/in_temp_offset", "-12.5\n");
	for (int i = 0; i < 3; i++)
		home_sensor_cfg_defaults(&self->cfg[i]);
	strcpy(self->cfg[0].device, "gm-sim-adc");
	strcpy(self->cfg[0].channel, "in_voltage2_raw");
	self->cfg[0].div_num = 5000;
	self->cfg[0].div_den = 3300;
	strcpy(self->cfg[1].device, "tmp117");
	strcpy(self->cfg[1].channel, "in_temp_raw");
	strcpy(self->cfg[2].device, "mcp3008");	/* not there yet */
	strcpy(self->cfg[2].channel, "in_voltage3_raw");
}

FIXTURE_TEARDOWN(tree)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->root);
	if (system(cmd))
		TH_LOG("cleanup failed");
}

TEST_F(tree, values_are_exact_and_a_late_device_is_found)
{
	struct home_iio h;
	int64_t v;

	home_iio_init(&h, self->root, self->cfg, 3);
	/* 372 counts x 3.222656250 mV x 5000/3300, in thousandths of mV */
	ASSERT_EQ(0, home_iio_read(&h, 0, &v)) TH_LOG("%s", h.ch[0].why);
	EXPECT_EQ(rdiv((__int128)372 * 3222656250LL * 5000 * 1000, (__int128)1000000000LL * 3300), v);
	/* (raw + offset) x scale = milli degrees C = thousandths of degree C */
	ASSERT_EQ(0, home_iio_read(&h, 1, &v)) TH_LOG("%s", h.ch[1].why);
	EXPECT_EQ(rdiv((__int128)(27310 - 125) * 78125, (__int128)10 * 10000), v);
	/* a new reading each time (pread at 0) */
	put(self->root, "bus/iio/devices/iio:device1/in_voltage2_raw", "1023\n");
	ASSERT_EQ(0, home_iio_read(&h, 0, &v));
	EXPECT_EQ(rdiv((__int128)1023 * 3222656250LL * 5000 * 1000, (__int128)1000000000LL * 3300), v);
	/* the device that is not there: a fault that names it, until it appears */
	EXPECT_EQ(-ENODEV, home_iio_read(&h, 2, &v));
	EXPECT_NE(NULL, strstr(h.ch[2].why, "'mcp3008' not found"));
	put(self->root, "bus/iio/devices/iio:device3/name", "mcp3008\n");
	put(self->root, "bus/iio/devices/iio:device3/in_voltage3_raw", "17\n");
	EXPECT_EQ(-ENOENT, home_iio_read(&h, 2, &v));	/* no scale: refused, not guessed */
	EXPECT_NE(NULL, strstr(h.ch[2].why, "no valid scale"));
	put(self->root, "bus/iio/devices/iio:device3/in_voltage3_scale", "0.5\n");
	ASSERT_EQ(0, home_iio_read(&h, 2, &v)) TH_LOG("%s", h.ch[2].why);
	EXPECT_EQ(17 * 500, v);
	/* junk in the file */
	put(self->root, "bus/iio/devices/iio:device3/in_voltage3_raw", "12.5\n");
	EXPECT_EQ(-EINVAL, home_iio_read(&h, 2, &v));
	home_iio_close(&h);
}

TEST_HARNESS_MAIN
