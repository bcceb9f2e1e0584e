/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The arithmetic of the calibration against a known load (Documentation/
 * ct-sensor.md, "Calibration", steps 2-4), pure: no I/O.
 *
 * Gains: the driver's RMS readings scale with its calibscale, so
 *   new calibscale = old * reference / reading
 * in integers (millionths, micro-units), rounded half away from zero.
 *
 * Phase: in_current0_rms_phase is the CT's phase lead theta; the driver
 * rotates the measured fundamental V * conj(I) by the value set, phi_set,
 * so the angle it reports, atan2(Q, P), is phi_true - theta + phi_set (Q
 * positive inductive). The lead that makes it read the load's true angle
 * is
 *   theta = phi_set + phi_ref - phi_measured
 * with phi_ref = acos(P_ref / (V_ref * I_ref)) for an inductive load, 0 for
 * a resistive one (PF 1). The measured angle is atan2(Q, P), not
 * acos(P / S): near PF 1, acos loses the sign and 0.01 % of error in P / S
 * is already 0.8 degrees; atan2 of the fundamental Q is as precise at PF 1
 * as anywhere, so a resistive load calibrates the phase too.
 */
#ifndef GM_SETUP_CALIB_MATH_H
#define GM_SETUP_CALIB_MATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ct_calib.h"

/* Means of the driver's readings over the measuring time. */
struct calib_reading {
	int64_t v_uv;		/* RMS voltage, uV */
	int64_t i_ua;		/* RMS current, uA */
	int64_t p_mw;		/* active power, mW */
	int64_t q_mvar;		/* fundamental reactive power, mvar */
	double freq_hz;
	unsigned n;		/* samples */
};

/* What the installer typed: the reference meter's readings. */
struct calib_ref {
	int64_t v_uv;		/* V, microvolts */
	int64_t i_ua;		/* A, microamperes */
	bool phase;		/* calibrate the phase too */
	bool resistive;		/* PF 1 */
	int64_t p_uw;		/* active power, microwatts (phase && !resistive) */
};

/* Reference angle of the load, radians (0 resistive); -EINVAL if P > V * I by more than 0.5 %. */
int calib_ref_angle(const struct calib_ref *ref, double *rad, char *why, size_t whylen);
/* The measured angle atan2(Q, P), radians. */
double calib_measured_angle(const struct calib_reading *m);
/* Relative error of a reading against its reference, percent. */
double calib_error_pct(int64_t reading, int64_t ref);
/* Radians to millidegrees, rounded. */
int32_t calib_rad_to_mdeg(double rad);

/*
 * The new trims from the old ones, one measurement and the reference.
 * 0, or -EINVAL / -ERANGE with the reason (no voltage, no current,
 * export, a gain outside 0.5..2, a phase beyond the driver's range).
 */
int calib_compute(const struct ct_calib *old, const struct calib_reading *m,
		  const struct calib_ref *ref, struct ct_calib *out, char *why, size_t whylen);

#endif
