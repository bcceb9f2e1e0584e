// SPDX-License-Identifier: GPL-2.0
/*
 * gridmeter-setup's calibration arithmetic (agent/setup/calib_math.c) and
 * the driver's trims and their file (agent/hw/ct_calib.c): against a model
 * of the front end (setup_model.h), the new trims are those that make the
 * model read the reference (gain 1/error, the CT's own lead), whatever the
 * load angle, resistive or inductive; a second pass changes nothing; bad
 * loads and references are refused with the reason; the phase is written
 * so that the driver stores exactly the millidegrees meant; the file
 * round-trips and names its errors.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "calib_math.h"
#include "ct_calib.h"
#include "setup_model.h"

static const struct ct_calib nominal = { CT_CALIB_SCALE_ONE, CT_CALIB_SCALE_ONE, 0 };

/* The trims the model needs: gain 1/error (rounded to the driver's millionths), the CT's lead. */
static void expected(const struct ct_model *m, struct ct_calib *c)
{
	c->v_scale = llround(1e6 / m->gv);
	c->i_scale = llround(1e6 / m->gi);
	c->phase_mdeg = (int32_t)lround(m->lead * 180000.0 / M_PI);
}

TEST(gains_and_phase_over_loads)
{
	const double angles_deg[] = { 0, 10, 25.84, 36.87, 60 };
	const double gv[] = { 0.93, 1.0, 1.046 }, gi[] = { 0.88, 1.0, 1.071 };
	const double lead_deg[] = { -1.5, 0, 2.0, 3.5, 8.0 };
	unsigned n = 0;

	for (size_t a = 0; a < 5; a++)
	for (size_t g = 0; g < 3; g++)
	for (size_t l = 0; l < 5; l++) {
		struct ct_model m = { 230.0 + g, 9.87 + l, angles_deg[a] * M_PI / 180, gv[g], gi[2 - g],
				      lead_deg[l] * M_PI / 180 };
		struct calib_reading r, r2;
		struct calib_ref ref;
		struct ct_calib got, again, want;
		char why[300] = "";

		model_reading(&m, &nominal, &r);
		model_ref(&m, angles_deg[a] == 0, &ref);
		expected(&m, &want);
		ASSERT_EQ(0, calib_compute(&nominal, &r, &ref, &got, why, sizeof(why))) TH_LOG("%s", why);
		/* readings are whole uV / uA: the gain is within a millionth or two of 1/error */
		EXPECT_GE(2, llabs(got.v_scale - want.v_scale)) TH_LOG("gv %f: %lld vs %lld", m.gv,
			(long long)got.v_scale, (long long)want.v_scale);
		EXPECT_GE(2, llabs(got.i_scale - want.i_scale)) TH_LOG("gi %f", m.gi);
		EXPECT_GE(1, abs(got.phase_mdeg - want.phase_mdeg)) TH_LOG("angle %f lead %f: %d vs %d",
			angles_deg[a], lead_deg[l], got.phase_mdeg, want.phase_mdeg);
		/* the model then reads the reference, and a second pass keeps the trims */
		model_reading(&m, &got, &r2);
		EXPECT_GT(5e-6, fabs(calib_error_pct(r2.v_uv, ref.v_uv)) / 100);
		EXPECT_GT(5e-6, fabs(calib_error_pct(r2.i_ua, ref.i_ua)) / 100);
		EXPECT_GT(2e-5, fabs(calib_measured_angle(&r2) - m.angle));
		ASSERT_EQ(0, calib_compute(&got, &r2, &ref, &again, why, sizeof(why)));
		EXPECT_GE(2, llabs(again.v_scale - got.v_scale));
		EXPECT_GE(2, llabs(again.i_scale - got.i_scale));
		EXPECT_GE(1, abs(again.phase_mdeg - got.phase_mdeg));
		n++;
	}
	EXPECT_EQ(75u, n);
}

TEST(trims_compose_with_the_old_ones)
{
	/* the driver was trimmed already (e.g. at the factory): the new trim is relative to it */
	struct ct_model m = { 231.4, 16.2, 30 * M_PI / 180, 1.02, 0.97, 4 * M_PI / 180 };
	struct ct_calib old = { 1010000, 990000, 1000 }, got;
	struct calib_reading r;
	struct calib_ref ref;
	char why[300];

	model_reading(&m, &old, &r);
	model_ref(&m, false, &ref);
	ASSERT_EQ(0, calib_compute(&old, &r, &ref, &got, why, sizeof(why))) TH_LOG("%s", why);
	EXPECT_GE(2, llabs(got.v_scale - llround(1e6 / m.gv)));
	EXPECT_GE(2, llabs(got.i_scale - llround(1e6 / m.gi)));
	EXPECT_GE(1, abs(got.phase_mdeg - 4000));
}

TEST(without_phase_reference_the_phase_is_kept)
{
	struct ct_model m = { 229.0, 5.0, 20 * M_PI / 180, 1.03, 1.02, 3 * M_PI / 180 };
	struct ct_calib old = { CT_CALIB_SCALE_ONE, CT_CALIB_SCALE_ONE, 1234 }, got;
	struct calib_reading r;
	struct calib_ref ref;
	char why[300];

	model_reading(&m, &old, &r);
	model_ref(&m, false, &ref);
	ref.phase = false;
	ASSERT_EQ(0, calib_compute(&old, &r, &ref, &got, why, sizeof(why)));
	EXPECT_EQ(1234, got.phase_mdeg);
	EXPECT_GE(2, llabs(got.v_scale - llround(1e6 / m.gv)));
}

TEST(bad_loads_and_references_refused)
{
	struct ct_model m = { 230, 10, 0.5, 1.0, 1.0, 0 };
	struct calib_reading r;
	struct calib_ref ref;
	struct ct_calib got;
	char why[300];

	/* CT the wrong way round: export */
	model_reading(&m, &nominal, &r);
	model_ref(&m, false, &ref);
	r.p_mw = -r.p_mw;
	r.q_mvar = -r.q_mvar;
	EXPECT_EQ(-EINVAL, calib_compute(&nominal, &r, &ref, &got, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "wrong way round")) TH_LOG("%s", why);
	/* no current (below the no-load threshold) */
	model_reading(&m, &nominal, &r);
	r.i_ua = 0;
	EXPECT_EQ(-EINVAL, calib_compute(&nominal, &r, &ref, &got, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "no current")) TH_LOG("%s", why);
	/* a front end off by more than the driver's 0.5..2 trims */
	m.gv = 2.5;
	model_reading(&m, &nominal, &r);
	EXPECT_EQ(-ERANGE, calib_compute(&nominal, &r, &ref, &got, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "factor of 2")) TH_LOG("%s", why);
	/* more watts than volt-amperes */
	m.gv = 1;
	model_reading(&m, &nominal, &r);
	ref.p_uw = ref.v_uv * ref.i_ua / 1000000 * 102 / 100;
	EXPECT_EQ(-EINVAL, calib_compute(&nominal, &r, &ref, &got, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "more than V x I")) TH_LOG("%s", why);
	/* a correction beyond the driver's +-20 degrees */
	m.lead = 25 * M_PI / 180;
	model_reading(&m, &nominal, &r);
	model_ref(&m, false, &ref);
	EXPECT_EQ(-ERANGE, calib_compute(&nominal, &r, &ref, &got, why, sizeof(why)));
}

TEST(phase_written_as_the_driver_stores_it)
{
	/* every millidegree the driver takes survives its truncating conversions */
	for (int32_t m = -CT_CALIB_PHASE_MDEG_MAX; m <= CT_CALIB_PHASE_MDEG_MAX; m++) {
		int64_t w = ct_calib_phase_write_nrad(m), rd = ct_calib_phase_read_nrad(m);

		ASSERT_EQ(m, ct_calib_phase_stored_mdeg(w)) TH_LOG("mdeg %d written as %lld", m, (long long)w);
		/* the smallest such value: one nanoradian less is the next millidegree down */
		if (m > 0)
			ASSERT_EQ(m - 1, ct_calib_phase_stored_mdeg(w - 1));
		ASSERT_GE(400000000LL, llabs(w));
		/* what ct_calib_read() makes of the driver's read-back */
		ASSERT_EQ(m, (int32_t)llround((double)rd * 1000 / 17453293));
		/* and the radians meant: within half a millidegree */
		ASSERT_GT(M_PI / 360000 + 1e-9, fabs((double)w / 1e9 - m * M_PI / 180000));
	}
}

TEST(units_parse_and_format)
{
	char buf[CT_CALIB_NUM_LEN];
	int64_t v;

	ASSERT_EQ(0, ct_calib_parse_units("-0.069813172\n", 9, &v));
	EXPECT_EQ(-69813172, v);
	ASSERT_EQ(0, ct_calib_parse_units("230.4", 6, &v));
	EXPECT_EQ(230400000, v);
	ASSERT_EQ(0, ct_calib_parse_units("1.0000005", 6, &v));
	EXPECT_EQ(1000001, v);		/* half away from zero */
	EXPECT_NE(0, ct_calib_parse_units("1,5", 6, &v));
	EXPECT_NE(0, ct_calib_parse_units("", 6, &v));
	ct_calib_format_units(-69813172, 9, buf, sizeof(buf));
	EXPECT_STREQ("-0.069813172", buf);
	ct_calib_format_units(987650, 6, buf, sizeof(buf));
	EXPECT_STREQ("0.987650", buf);
}

static void put(const char *dir, const char *f, const char *text)
{
	char p[512];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", dir, f);
	fp = fopen(p, "w");
	if (fp) {
		fputs(text, fp);
		fclose(fp);
	}
}

TEST(file_round_trip_apply_and_errors)
{
	char dir[] = "/tmp/gm_calib_XXXXXX", dev[300], path[300], err[600], name[64], buf[64];
	struct ct_calib c = { 1012345, 987650, -3500 }, back, none;
	bool applied;
	FILE *f;

	ASSERT_NE(NULL, mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/calibration.conf", dir);
	/* no file: nothing to apply, no error */
	ASSERT_EQ(0, ct_calib_apply(dir, path, "gridmeter-ct", &applied, err, sizeof(err)));
	EXPECT_FALSE(applied);
	ASSERT_EQ(0, ct_calib_save(path, &c, "gridmeter-ct", "test", err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, ct_calib_load(path, &back, name, sizeof(name), err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(0, memcmp(&c, &back, sizeof(c)));
	EXPECT_STREQ("gridmeter-ct", name);
	/* applied to a fake sysfs tree: the driver's attributes get exactly those numbers */
	snprintf(dev, sizeof(dev), "%s/bus", dir);
	mkdir(dev, 0755);
	strcat(dev, "/iio");
	mkdir(dev, 0755);
	strcat(dev, "/devices");
	mkdir(dev, 0755);
	strcat(dev, "/iio:device3");
	mkdir(dev, 0755);
	put(dev, "name", "gridmeter-ct\n");
	put(dev, "in_altvoltage0_rms_calibscale", "1.000000\n");
	put(dev, "in_current0_rms_calibscale", "1.000000\n");
	put(dev, "in_current0_rms_phase", "0.000000000\n");
	ASSERT_EQ(0, ct_calib_apply(dir, path, "gridmeter-ct", &applied, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_TRUE(applied);
	ASSERT_EQ(0, ct_calib_read(dev, &back, err, sizeof(err)));
	EXPECT_EQ(0, memcmp(&c, &back, sizeof(c)));
	snprintf(path, sizeof(path), "%s/in_current0_rms_phase", dev);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(buf, sizeof(buf), f));
	fclose(f);
	/* what was written: the nanoradians the driver stores as -3500 mdeg, no newline */
	snprintf(name, sizeof(name), "-0.%09lld", (long long)-ct_calib_phase_write_nrad(-3500));
	EXPECT_STREQ(name, buf);
	/* another device named: refused, nothing written */
	snprintf(path, sizeof(path), "%s/calibration.conf", dir);
	EXPECT_EQ(-EINVAL, ct_calib_apply(dir, path, "gridmeter-ct-pv", &applied, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "gridmeter-ct-pv")) TH_LOG("%s", err);
	/* out of range: not written at all */
	none = (struct ct_calib){ 2100000, CT_CALIB_SCALE_ONE, 0 };
	EXPECT_EQ(-ERANGE, ct_calib_write(dev, &none, err, sizeof(err)));
	ASSERT_EQ(0, ct_calib_read(dev, &back, err, sizeof(err)));
	EXPECT_EQ(c.v_scale, back.v_scale);
	/* a bad file names its line and key */
	f = fopen(path, "w");
	ASSERT_NE(NULL, f);
	fputs("[calibration]\ndevice = gridmeter-ct\nvoltage_calibscale = 2.5\n", f);
	fclose(f);
	EXPECT_EQ(-EINVAL, ct_calib_load(path, &back, name, sizeof(name), err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, ":3: [calibration] key 'voltage_calibscale'")) TH_LOG("%s", err);
	f = fopen(path, "w");
	ASSERT_NE(NULL, f);
	fputs("[calibration]\ndevice = gridmeter-ct\nvoltage_calibscale = 1\ncurrent_calibscale = 1\n", f);
	fclose(f);
	EXPECT_EQ(-EINVAL, ct_calib_load(path, &back, name, sizeof(name), err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "current_phase_mdeg' missing")) TH_LOG("%s", err);
	snprintf(buf, sizeof(buf), "rm -rf %s", dir);
	EXPECT_EQ(0, system(buf));
}

TEST_HARNESS_MAIN
