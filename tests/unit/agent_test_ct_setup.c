// SPDX-License-Identifier: GPL-2.0
/* Threshold events of the CT driver, on a fake sysfs tree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The 6.1 harness defines fixture setup/teardown functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "ct_setup.h"

static void put(const char *dir, const char *file, const char *text)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void get(const char *dir, const char *file, char *buf, size_t len)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	buf[0] = 0;
	f = fopen(p, "r");
	if (f) {
		if (!fgets(buf, (int)len, f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
}

FIXTURE(sysfs) {
	char root[64];
	char dev[160];
};

static void make_dev(const char *root, const char *id, const char *name, const char *cur, char *out)
{
	char p[256], ev[300];
	const char *evs[] = { "in_altvoltage0_rms_thresh_rising", "in_altvoltage0_rms_thresh_falling", cur };

	snprintf(p, sizeof(p), "%s/bus/iio/devices/%s", root, id);
	mkdir(p, 0755);
	put(p, "name", name);
	snprintf(ev, sizeof(ev), "%s/events", p);
	mkdir(ev, 0755);
	for (int k = 0; k < 3; k++) {
		char f[128];

		snprintf(f, sizeof(f), "%s_value", evs[k]);
		put(ev, f, "0\n");
		snprintf(f, sizeof(f), "%s_hysteresis", evs[k]);
		put(ev, f, "0\n");
		snprintf(f, sizeof(f), "%s_en", evs[k]);
		put(ev, f, "0\n");
	}
	if (out)
		strcpy(out, ev);
}

FIXTURE_SETUP(sysfs)
{
	char p[128];

	strcpy(self->root, "/tmp/agent_test_ct_setup.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->root));
	snprintf(p, sizeof(p), "%s/bus", self->root);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/bus/iio", self->root);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/bus/iio/devices", self->root);
	mkdir(p, 0755);
	make_dev(self->root, "iio:device0", "mcp3008", "in_current0_rms_thresh_rising", NULL);
	make_dev(self->root, "iio:device1", "gridmeter-ct", "in_current0_rms_thresh_rising", self->dev);
}

FIXTURE_TEARDOWN(sysfs)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->root);
	if (system(cmd))
		TH_LOG("cleanup failed");
}

TEST_F(sysfs, apply_writes_microunits_hysteresis_and_enables)
{
	char err[256], buf[64];

	ASSERT_EQ(0, ct_thresholds(self->root, "gridmeter-ct", 253000, 207000, 100000, true, err, sizeof(err)))
		TH_LOG("%s", err);
	get(self->dev, "in_altvoltage0_rms_thresh_rising_value", buf, sizeof(buf));
	EXPECT_STREQ("253000000", buf);
	get(self->dev, "in_altvoltage0_rms_thresh_rising_hysteresis", buf, sizeof(buf));
	EXPECT_STREQ("5060000", buf);	/* 2 % of 253 V */
	get(self->dev, "in_altvoltage0_rms_thresh_falling_value", buf, sizeof(buf));
	EXPECT_STREQ("207000000", buf);
	get(self->dev, "in_current0_rms_thresh_rising_value", buf, sizeof(buf));
	EXPECT_STREQ("100000000", buf);
	get(self->dev, "in_current0_rms_thresh_rising_en", buf, sizeof(buf));
	EXPECT_STREQ("1", buf);
	/* and the check passes afterwards */
	EXPECT_EQ(0, ct_thresholds(self->root, "gridmeter-ct", 253000, 207000, 100000, false, err, sizeof(err)));
}

TEST_F(sysfs, check_reports_disabled_or_different_events)
{
	char err[256];

	EXPECT_NE(0, ct_thresholds(self->root, "gridmeter-ct", 253000, 207000, 100000, false, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "not enabled"));
	ASSERT_EQ(0, ct_thresholds(self->root, "gridmeter-ct", 253000, 207000, 100000, true, err, sizeof(err)));
	put(self->dev, "in_altvoltage0_rms_thresh_falling_value", "190000000\n");
	EXPECT_NE(0, ct_thresholds(self->root, "gridmeter-ct", 253000, 207000, 100000, false, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "under-voltage threshold of gridmeter-ct is 190000000, configured 207000000"))
		TH_LOG("%s", err);
	/* the other device was not touched */
	{
		char buf[64], p[160];

		snprintf(p, sizeof(p), "%s/bus/iio/devices/iio:device0/events", self->root);
		get(p, "in_altvoltage0_rms_thresh_rising_value", buf, sizeof(buf));
		EXPECT_STREQ("0", buf);
	}
}

TEST_F(sysfs, linux_6_18_current_name_and_missing_device)
{
	char err[256], buf[64], dev[160];

	make_dev(self->root, "iio:device2", "gridmeter-ct-pv", "in_altcurrent0_rms_thresh_rising", dev);
	ASSERT_EQ(0, ct_thresholds(self->root, "gridmeter-ct-pv", 250000, 200000, 32000, true, err, sizeof(err)))
		TH_LOG("%s", err);
	get(dev, "in_altcurrent0_rms_thresh_rising_value", buf, sizeof(buf));
	EXPECT_STREQ("32000000", buf);
	EXPECT_NE(0, ct_thresholds(self->root, "nonexistent", 250000, 200000, 32000, true, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "'nonexistent' not found"));
}

TEST_HARNESS_MAIN
