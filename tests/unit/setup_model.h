/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A model of what the CT driver reads for a known load, for the tests of
 * gridmeter-setup's calibration (setup_test_calib.c, setup_test_flow.c):
 * the front end has gain errors gv, gi (the overlay's nominal ratios are a
 * little off) and the CT leads by lead_rad; the driver multiplies by its
 * calibscale trims and rotates the fundamental by the phase it is set to
 * (whole millidegrees, as it stores it). Expectations of the tests come
 * from this definition, never from the code under test.
 */
#ifndef GM_SETUP_MODEL_H
#define GM_SETUP_MODEL_H

#include <math.h>
#include <stdint.h>

#include "calib_math.h"
#include "ct_calib.h"

struct ct_model {
	double v, i;		/* true RMS V, A */
	double angle;		/* true load angle, rad (inductive > 0) */
	double gv, gi;		/* front-end gain errors */
	double lead;		/* the CT's true phase lead, rad */
};

static inline void model_reading(const struct ct_model *m, const struct ct_calib *c,
				 struct calib_reading *r)
{
	double v = m->v * m->gv * (double)c->v_scale / 1e6;
	double i = m->i * m->gi * (double)c->i_scale / 1e6;
	double a = m->angle - m->lead + (double)c->phase_mdeg * M_PI / 180000.0;

	r->v_uv = llround(v * 1e6);
	r->i_ua = llround(i * 1e6);
	r->p_mw = llround(v * i * cos(a) * 1e3);
	r->q_mvar = llround(v * i * sin(a) * 1e3);
	r->freq_hz = 50;
	r->n = 1;
}

/* The reference meter's readings of the same load (exact). */
static inline void model_ref(const struct ct_model *m, bool resistive, struct calib_ref *ref)
{
	ref->v_uv = llround(m->v * 1e6);
	ref->i_ua = llround(m->i * 1e6);
	ref->phase = true;
	ref->resistive = resistive;
	ref->p_uw = llround(m->v * m->i * cos(m->angle) * 1e6);
}

#endif
