// SPDX-License-Identifier: GPL-2.0
/* The arithmetic of the calibration (calib_math.h). */
#include "calib_math.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "parse.h"

int calib_ref_angle(const struct calib_ref *ref, double *rad, char *why, size_t whylen)
{
	double s, pf;

	if (ref->resistive || !ref->phase) {
		*rad = 0;
		return 0;
	}
	s = (double)ref->v_uv * (double)ref->i_ua / 1e6;	/* uW */
	if (s <= 0 || ref->p_uw <= 0) {
		snprintf(why, whylen, "the reference power must be positive");
		return -EINVAL;
	}
	pf = (double)ref->p_uw / s;
	if (pf > 1.005) {
		snprintf(why, whylen, "%.3f W is more than V x I = %.3f VA (PF %.4f): check the "
			 "readings", ref->p_uw / 1e6, s / 1e6, pf);
		return -EINVAL;
	}
	*rad = pf >= 1 ? 0 : acos(pf);
	return 0;
}

double calib_measured_angle(const struct calib_reading *m)
{
	return atan2((double)m->q_mvar, (double)m->p_mw);
}

double calib_error_pct(int64_t reading, int64_t ref)
{
	return ref ? ((double)reading - (double)ref) * 100.0 / (double)ref : 0;
}

int32_t calib_rad_to_mdeg(double rad)
{
	return (int32_t)lround(rad * 180000.0 / M_PI);
}

int calib_compute(const struct ct_calib *old, const struct calib_reading *m,
		  const struct calib_ref *ref, struct ct_calib *out, char *why, size_t whylen)
{
	double ref_rad, meas_rad;
	int64_t mdeg;
	int r;

	*out = *old;
	if (m->v_uv <= 0) {
		snprintf(why, whylen, "the driver reads no voltage: is the voltage transformer connected?");
		return -EINVAL;
	}
	if (m->i_ua <= 0) {
		snprintf(why, whylen, "the driver reads no current (below the no-load threshold): "
			 "is the load on and the CT clamped round one conductor?");
		return -EINVAL;
	}
	if (ref->v_uv <= 0 || ref->i_ua <= 0) {
		snprintf(why, whylen, "the reference voltage and current must be positive");
		return -EINVAL;
	}
	out->v_scale = mul_div_round(old->v_scale, ref->v_uv, m->v_uv);
	out->i_scale = mul_div_round(old->i_scale, ref->i_ua, m->i_ua);
	if (out->v_scale < CT_CALIB_SCALE_MIN || out->v_scale > CT_CALIB_SCALE_MAX ||
	    out->i_scale < CT_CALIB_SCALE_MIN || out->i_scale > CT_CALIB_SCALE_MAX) {
		snprintf(why, whylen, "the readings are off by more than a factor of 2 (gain trims "
			 "%.6f, %.6f; the driver takes 0.5..2): check the wiring and the overlay's "
			 "ct_ratio, burden_uohm and vratio_milli", out->v_scale / 1e6,
			 out->i_scale / 1e6);
		return -ERANGE;
	}
	if (!ref->phase)
		return 0;
	if (m->p_mw <= 0) {
		snprintf(why, whylen, "the active power reads %lld mW (export): the CT is clamped the "
			 "wrong way round (turn it, or the overlay parameter 'reversed')",
			 (long long)m->p_mw);
		return -EINVAL;
	}
	r = calib_ref_angle(ref, &ref_rad, why, whylen);
	if (r)
		return r;
	meas_rad = calib_measured_angle(m);
	mdeg = (int64_t)old->phase_mdeg + calib_rad_to_mdeg(ref_rad - meas_rad);
	if (mdeg < -CT_CALIB_PHASE_MDEG_MAX || mdeg > CT_CALIB_PHASE_MDEG_MAX) {
		snprintf(why, whylen, "the phase correction would be %.3f degrees, beyond the "
			 "driver's +-%d: check the reference power and that the load is "
			 "inductive (or resistive, answered r)", (double)mdeg / 1000,
			 CT_CALIB_PHASE_MDEG_MAX / 1000);
		return -ERANGE;
	}
	out->phase_mdeg = (int32_t)mdeg;
	return 0;
}
