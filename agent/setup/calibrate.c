// SPDX-License-Identifier: GPL-2.0
/*
 * Calibration against a known load (setup.h; Documentation/ct-sensor.md,
 * "Calibration", steps 2-4, automated). The installer connects a load and
 * types what a reference meter reads (voltage, current, and the active
 * power of an inductive load, or r for a resistive one); the driver's
 * readings are averaged until two halves of the measuring time agree
 * (settled), the new trims computed (calib_math.c), written, measured again
 * and shown before and after. Kept: written to the calibration file (for
 * meterd --setup-thresholds at every start). Not kept, or the input ended:
 * the driver's old trims are written back.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iio_sysfs.h"
#include "parse.h"
#include "setup.h"

#define SAMPLE_MS	100
#define SETTLE_TOL_PPM	2000	/* halves of a measurement agree within 0.2 % */
#define MEASURE_TRIES	4
#define KEEP_TOL_PCT	0.5	/* after calibration: V and I within 0.5 % */
#define KEEP_TOL_DEG	0.3	/* and the angle within 0.3 degrees */

static int read_i64(const char *dir, const char *name, const char *alt, unsigned dec, int64_t *v)
{
	char p[1024], buf[64];
	int r;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	r = iio_sysfs_read(p, buf, sizeof(buf));
	if (r && alt) {
		snprintf(p, sizeof(p), "%s/%s", dir, alt);
		r = iio_sysfs_read(p, buf, sizeof(buf));
	}
	return r ? r : ct_calib_parse_units(buf, dec, v);
}

struct acc {
	int64_t v, i, p, q, f;
};

/* One measurement: n samples SAMPLE_MS apart, means of each half. */
static int measure_once(const char *dir, unsigned n, struct calib_reading *m, bool *settled)
{
	struct acc h[2] = { { 0 } };
	int64_t c0 = 0, c1 = 0, g0 = 0, g1 = 0;

	read_i64(dir, "cycles", NULL, 0, &c0);
	read_i64(dir, "gap_time_ns", NULL, 0, &g0);
	for (unsigned k = 0; k < n; k++) {
		struct acc a;
		struct acc *x = &h[k >= n / 2];

		if (read_i64(dir, "in_altvoltage0_rms_raw", NULL, 0, &a.v) ||
		    read_i64(dir, "in_current0_rms_raw", "in_altcurrent0_rms_raw", 0, &a.i) ||
		    read_i64(dir, "in_power0_active_raw", NULL, 0, &a.p) ||
		    read_i64(dir, "in_power0_reactive_raw", NULL, 0, &a.q) ||
		    read_i64(dir, "in_altvoltage0_frequency", NULL, 6, &a.f))
			return -EIO;
		x->v += a.v;
		x->i += a.i;
		x->p += a.p;
		x->q += a.q;
		x->f += a.f;
		setup_sleep_ms(SAMPLE_MS);
		if (setup_interrupted())
			return -ECANCELED;
	}
	read_i64(dir, "cycles", NULL, 0, &c1);
	read_i64(dir, "gap_time_ns", NULL, 0, &g1);
	if (c1 == c0)
		return -EAGAIN;		/* not sampling: stale readings */
	{
		unsigned na = n / 2, nb = n - n / 2;
		int64_t va = h[0].v / na, vb = h[1].v / nb, ia = h[0].i / na, ib = h[1].i / nb;

		/*
		 * the halves agree, and the sampling had no gap (a late
		 * sampler, an ADC error: cycles around it are not clean)
		 */
		*settled = llabs(va - vb) * 1000000 <= SETTLE_TOL_PPM * (va > vb ? va : vb) &&
			   llabs(ia - ib) * 1000000 <= SETTLE_TOL_PPM * (ia > ib ? ia : ib) && g1 == g0;
	}
	m->n = n;
	m->v_uv = (h[0].v + h[1].v + n / 2) / n;
	m->i_ua = (h[0].i + h[1].i + n / 2) / n;
	m->p_mw = (h[0].p + h[1].p) / (int64_t)n;
	m->q_mvar = (h[0].q + h[1].q) / (int64_t)n;
	m->freq_hz = (double)(h[0].f + h[1].f) / n / 1e6;
	return 0;
}

/* Measure until settled (a changing load is measured again). */
static int measure(struct setup *s, struct calib_reading *m)
{
	unsigned n = s->o.measure_s * 1000 / SAMPLE_MS;
	bool settled = false;
	int r = 0;

	if (n < 4)
		n = 4;
	for (int t = 0; t < MEASURE_TRIES; t++) {
		fprintf(s->p.out, "  measuring for %u s ...\n", n * SAMPLE_MS / 1000);
		fflush(s->p.out);
		r = measure_once(s->ct_dir, n, m, &settled);
		if (r)
			return r;
		if (settled)
			return 0;
		fprintf(s->p.out, "  the readings moved, or the sampling had a gap (%.3f V, %.3f A):\n"
			"  measuring again\n", m->v_uv / 1e6, m->i_ua / 1e6);
	}
	return -EAGAIN;
}

static void show(struct setup *s, const char *when, const struct calib_reading *m)
{
	double sva = (double)m->v_uv * (double)m->i_ua / 1e9;	/* mVA */

	fprintf(s->p.out, "  %-7s %.3f V  %.3f A  %.3f W  %.3f var\n"
		"          PF %.4f  angle %.3f deg  %.3f Hz\n",
		when, m->v_uv / 1e6, m->i_ua / 1e6, m->p_mw / 1e3, m->q_mvar / 1e3,
		sva > 0 ? m->p_mw / sva : 0, calib_measured_angle(m) * 180 / M_PI, m->freq_hz);
}

static int ask_reference(struct setup *s, struct calib_ref *ref)
{
	struct quantity v = { .min = 50000000, .max = 500000000, .unit = "V" };
	struct quantity i = { .min = 50000, .max = 200000000, .unit = "A" };
	struct power_answer pw = { .w = { .min = 1000000, .max = 100000000000LL, .unit = "W" } };
	bool given = s->o.ref_v_uv >= 0 && s->o.ref_i_ua >= 0;
	char why[200];
	int r;

	if (given) {
		ref->v_uv = s->o.ref_v_uv;
		ref->i_ua = s->o.ref_i_ua;
		ref->resistive = s->o.ref_resistive;
		ref->p_uw = s->o.ref_p_uw;
		ref->phase = ref->resistive || ref->p_uw >= 0;
		fprintf(s->p.out, "  reference (options): %.3f V, %.3f A, %s\n", ref->v_uv / 1e6,
			ref->i_ua / 1e6, ref->resistive ? "resistive (PF 1)" : !ref->phase ?
			"phase not calibrated" : "active power given");
		if (ref->phase && calib_ref_angle(ref, &(double){ 0 }, why, sizeof(why))) {
			fprintf(s->p.out, "  --reference-power: %s\n", why);
			return -EINVAL;
		}
		return 0;
	}
	r = prompt_enter(&s->p, "Connect the known load (a heater or kettle: resistive; a motor:\n"
			 "inductive) and a reference meter at the meter's supply");
	if (!r)
		r = prompt_ask(&s->p, "Reference voltage, V (e.g. 230.4)", NULL, parse_answer_quantity, &v);
	if (!r)
		r = prompt_ask(&s->p, "Reference current, A (e.g. 9.87)", NULL, parse_answer_quantity, &i);
	ref->v_uv = v.micro;
	ref->i_ua = i.micro;
	while (!r) {
		r = prompt_ask(&s->p, "Active power W of an inductive load, r if resistive (PF 1),\n"
			       "or - to keep the phase", "r", parse_answer_power, &pw);
		if (r)
			break;
		ref->resistive = pw.resistive;
		ref->phase = !pw.skip;
		ref->p_uw = pw.w.micro;
		if (!ref->phase || !calib_ref_angle(ref, &(double){ 0 }, why, sizeof(why)))
			break;
		fprintf(s->p.out, "  %s. Please answer again.\n", why);
	}
	return r;
}

/* A u32 property of the device's device-tree node (big-endian cells): 0 or -errno. */
static int of_u32(const char *devdir, const char *prop, uint32_t *v)
{
	char p[1024];
	unsigned char b[4];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/of_node/%s", devdir, prop);
	f = fopen(p, "rb");
	if (!f)
		return -errno;
	n = fread(b, 1, 4, f);
	fclose(f);
	if (n != 4)
		return -EINVAL;
	*v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	return 0;
}

/*
 * The same calibration as overlay parameters (dts-overlays/README): the
 * voltage gain goes with vratio_milli, the current's with ct_ratio /
 * burden_uohm (the burden takes the trim: finer steps than the turns).
 */
static void overlay_hint(struct setup *s, const struct ct_calib *c)
{
	uint32_t vr, bu;
	char vs[CT_CALIB_NUM_LEN], is[CT_CALIB_NUM_LEN];

	fprintf(s->p.out, "\n  To make it part of the device tree instead (config.txt, dts-overlays/README):\n");
	if (!of_u32(s->ct_dir, "gridmeter,voltage-ratio-milli", &vr) &&
	    !of_u32(s->ct_dir, "gridmeter,burden-resistor-micro-ohms", &bu)) {
		fprintf(s->p.out, "    dtparam=vratio_milli=%lld\n    dtparam=burden_uohm=%lld\n"
			"    dtparam=phase_mdeg=%d\n",
			(long long)mul_div_round(vr, c->v_scale, CT_CALIB_SCALE_ONE),
			(long long)mul_div_round(bu, CT_CALIB_SCALE_ONE, c->i_scale), c->phase_mdeg);
	} else {
		ct_calib_format_units(c->v_scale, 6, vs, sizeof(vs));
		ct_calib_format_units(c->i_scale, 6, is, sizeof(is));
		fprintf(s->p.out, "    vratio_milli = (its value now) x %s\n    burden_uohm = (its value now) / %s\n"
			"    phase_mdeg = %d\n  (this device has no device-tree node to read them from)\n",
			vs, is, c->phase_mdeg);
	}
	fprintf(s->p.out, "  and then delete %s\n  (both would apply the trims twice).\n", s->o.calib_file);
}

int calibrate(struct setup *s)
{
	struct calib_reading before, after;
	struct calib_ref ref = { 0 };
	struct ct_calib cal;
	double ref_rad = 0, ea_v, ea_i, ea_deg;
	char why[400], vb[CT_CALIB_NUM_LEN], va[CT_CALIB_NUM_LEN], ib[CT_CALIB_NUM_LEN], ia[CT_CALIB_NUM_LEN];
	bool keep = true, given = s->o.ref_v_uv >= 0 && s->o.ref_i_ua >= 0;
	int r;

	fprintf(s->p.out, "\n== Calibration against a known load ==\n");
	if (s->o.skip_calibration || !s->ct_ok || (s->p.yes && !given)) {
		report_add(&s->rep, CHECK_SKIP, false, "calibration", "%s", s->o.skip_calibration ?
			   "--no-calibration" : !s->ct_ok ? "the CT device does not sample" :
			   "no reference given (--reference-voltage, --reference-current)");
		return 0;
	}
	if (!given && !s->p.yes) {
		bool go;

		r = prompt_yesno(&s->p, "Calibrate now against a known load?", true, &go);
		if (r)
			return r;
		if (!go) {
			report_add(&s->rep, CHECK_SKIP, false, "calibration", "declined by the installer");
			return 0;
		}
	}
	r = ask_reference(s, &ref);
	if (r == -EINVAL) {
		report_add(&s->rep, CHECK_FAIL, true, "calibration", "bad reference options");
		return 0;
	}
	if (r)
		return r;
	if (ct_calib_read(s->ct_dir, &s->cal_before, why, sizeof(why))) {
		report_add(&s->rep, CHECK_FAIL, true, "calibration", "%s", why);
		return 0;
	}
	r = measure(s, &before);
	if (r == -ECANCELED)
		return r;
	if (r) {
		report_add(&s->rep, CHECK_FAIL, true, "calibration", "%s", r == -EAGAIN ?
			   "the readings did not settle (is the load steady?)" : "the readings are unreadable");
		return 0;
	}
	show(s, "before:", &before);
	r = calib_compute(&s->cal_before, &before, &ref, &cal, why, sizeof(why));
	if (r) {
		report_add(&s->rep, CHECK_FAIL, true, "calibration", "%s", why);
		return 0;
	}
	r = ct_calib_write(s->ct_dir, &cal, why, sizeof(why));
	if (r) {
		report_add(&s->rep, CHECK_FAIL, true, "calibration", "%s", why);
		ct_calib_write(s->ct_dir, &s->cal_before, why, sizeof(why));
		return 0;
	}
	/* the next cycles use the new trims; the measurement waits for a few */
	setup_sleep_ms(300);
	r = measure(s, &after);
	if (r) {
		ct_calib_write(s->ct_dir, &s->cal_before, why, sizeof(why));
		if (r == -ECANCELED) {
			fprintf(s->p.out, "  the driver's trims are back to what they were\n");
			return r;
		}
		report_add(&s->rep, CHECK_FAIL, true, "calibration", "measuring again failed");
		return 0;
	}
	show(s, "after:", &after);
	calib_ref_angle(&ref, &ref_rad, why, sizeof(why));
	ea_v = calib_error_pct(after.v_uv, ref.v_uv);
	ea_i = calib_error_pct(after.i_ua, ref.i_ua);
	ea_deg = (calib_measured_angle(&after) - ref_rad) * 180 / M_PI;
	ct_calib_format_units(s->cal_before.v_scale, 6, vb, sizeof(vb));
	ct_calib_format_units(cal.v_scale, 6, va, sizeof(va));
	ct_calib_format_units(s->cal_before.i_scale, 6, ib, sizeof(ib));
	ct_calib_format_units(cal.i_scale, 6, ia, sizeof(ia));
	report_add(&s->rep, fabs(ea_v) <= KEEP_TOL_PCT ? CHECK_PASS : CHECK_FAIL, true, "calib-voltage",
		   "ref %.3f V: read %.3f -> %.3f V (%+.3f%% -> %+.3f%%), calibscale %s -> %s",
		   ref.v_uv / 1e6, before.v_uv / 1e6, after.v_uv / 1e6,
		   calib_error_pct(before.v_uv, ref.v_uv), ea_v, vb, va);
	report_add(&s->rep, fabs(ea_i) <= KEEP_TOL_PCT ? CHECK_PASS : CHECK_FAIL, true, "calib-current",
		   "ref %.3f A: read %.3f -> %.3f A (%+.3f%% -> %+.3f%%), calibscale %s -> %s",
		   ref.i_ua / 1e6, before.i_ua / 1e6, after.i_ua / 1e6,
		   calib_error_pct(before.i_ua, ref.i_ua), ea_i, ib, ia);
	if (ref.phase)
		report_add(&s->rep, fabs(ea_deg) <= KEEP_TOL_DEG ? CHECK_PASS : CHECK_FAIL, true,
			   "calib-phase", "ref angle %.3f deg: read %.3f -> %.3f deg, phase %d -> %d mdeg",
			   ref_rad * 180 / M_PI, calib_measured_angle(&before) * 180 / M_PI,
			   calib_measured_angle(&after) * 180 / M_PI, s->cal_before.phase_mdeg, cal.phase_mdeg);
	else
		report_add(&s->rep, CHECK_SKIP, false, "calib-phase", "kept at %d mdeg (no reference power)",
			   cal.phase_mdeg);
	r = prompt_yesno(&s->p, "Keep this calibration?", true, &keep);
	if (r || !keep) {
		ct_calib_write(s->ct_dir, &s->cal_before, why, sizeof(why));
		fprintf(s->p.out, "  the driver's trims are back to what they were\n");
		if (r)
			return r;
		report_add(&s->rep, CHECK_SKIP, false, "calibration", "not kept by the installer");
		return 0;
	}
	{
		char comment[128];
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(comment, sizeof(comment), "written by gridmeter-setup on %Y-%m-%d %H:%M:%S UTC", &tm);
		r = ct_calib_save(s->o.calib_file, &cal, s->cfg->mains_device, comment, why, sizeof(why));
	}
	report_add(&s->rep, r ? CHECK_FAIL : CHECK_PASS, true, "calib-saved", "%s%s",
		   r ? why : s->o.calib_file, r ? "" : " (meterd applies it at every start)");
	s->calibrated = !r;
	s->cal_after = cal;
	if (!r)
		overlay_hint(s, &cal);
	return 0;
}
