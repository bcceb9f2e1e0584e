/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace model of the CT sensor's analog front end for the unit tests and
 * the benchmark: waveforms defined analytically, a 12-bit multiplexed ADC
 * (voltage converted first, current one conversion later), optional Gaussian
 * noise, and the expected readings computed from the waveform definition
 * alone (never from the code under test).
 */
#ifndef CT_MODEL_H
#define CT_MODEL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../../drivers/iio/ct/ct_metering.h"

#define CTM_MAXH	4
#define CTM_IB_A	10.0		/* basic current, A rms */
#define CTM_UN_V	230.0		/* nominal voltage, V rms */
#define CTM_I_GAIN_NA	12000000u	/* 12 mA per code: 120% Ib + harmonics < full scale */
#define CTM_V_GAIN_NV	250000000u	/* 0.25 V per code */

struct ctm_comp {
	int h;		/* harmonic order */
	double amp;	/* peak, physical units (A or V) */
	double ph;	/* phase at t = 0, radians */
};

struct ctm_wave {
	double dc;	/* ADC codes */
	int n;
	struct ctm_comp c[CTM_MAXH];
};

struct ctm_sim {
	double f;	/* line frequency, Hz */
	double fs;	/* sample pairs per second */
	double skew;	/* current conversion delay, pairs */
	double lead;	/* CT phase lead of the fundamental, rad */
	double noise;	/* Gaussian noise, codes rms (0: none) */
	struct ctm_wave v, i;
	uint64_t rng;
	long n;
};

static inline double ctm_uniform(struct ctm_sim *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return ((s->rng >> 11) + 0.5) / 9007199254740992.0;
}

static inline double ctm_gauss(struct ctm_sim *s)
{
	return sqrt(-2.0 * log(ctm_uniform(s))) *
	       cos(2.0 * M_PI * ctm_uniform(s));
}

static inline double ctm_eval(const struct ctm_wave *w, double f, double t,
			      double lead)
{
	double x = 0;
	int k;

	for (k = 0; k < w->n; k++)
		x += w->c[k].amp * cos(2.0 * M_PI * w->c[k].h * f * t +
				       w->c[k].ph + (w->c[k].h == 1 ? lead : 0));
	return x;
}

static inline uint16_t ctm_adc(double code)
{
	long q = lround(code);

	return q < 0 ? 0 : q > 4095 ? 4095 : (uint16_t)q;
}

/* One pair as the ADC delivers it. */
static inline void ctm_pair(struct ctm_sim *s, uint16_t *v, uint16_t *i)
{
	double tv = s->n / s->fs, ti = (s->n + s->skew) / s->fs;
	double nv = s->noise ? s->noise * ctm_gauss(s) : 0;
	double ni = s->noise ? s->noise * ctm_gauss(s) : 0;

	*v = ctm_adc(s->v.dc + ctm_eval(&s->v, s->f, tv, 0) * 1e9 / CTM_V_GAIN_NV + nv);
	*i = ctm_adc(s->i.dc + ctm_eval(&s->i, s->f, ti, s->lead) * 1e9 / CTM_I_GAIN_NA + ni);
	s->n++;
}

/* Expected values, from the definition only. */
static inline double ctm_rms(const struct ctm_wave *w)
{
	double ms = 0;
	int k;

	for (k = 0; k < w->n; k++)
		ms += w->c[k].amp * w->c[k].amp / 2;
	return sqrt(ms);
}

static inline double ctm_active(const struct ctm_sim *s)
{
	double p = 0;
	int a, b;

	for (a = 0; a < s->v.n; a++)
		for (b = 0; b < s->i.n; b++)
			if (s->v.c[a].h == s->i.c[b].h)
				p += s->v.c[a].amp * s->i.c[b].amp / 2 *
				     cos(s->v.c[a].ph - s->i.c[b].ph);
	return p;
}

/* Fundamental reactive power, positive when the current lags. */
static inline double ctm_reactive1(const struct ctm_sim *s)
{
	double q = 0;
	int a, b;

	for (a = 0; a < s->v.n; a++)
		for (b = 0; b < s->i.n; b++)
			if (s->v.c[a].h == 1 && s->i.c[b].h == 1)
				q += s->v.c[a].amp * s->i.c[b].amp / 2 *
				     sin(s->v.c[a].ph - s->i.c[b].ph);
	return q;
}

/*
 * IEC test point: current as a fraction of Ib, power factor angle phi
 * (positive: current lags, inductive), optional harmonics:
 * voltage 3rd 5% / 5th 4%, current 3rd 20% / 5th 15%, the harmonic currents
 * displaced by 40 and -25 degrees from the harmonic voltages.
 */
static inline void ctm_setup(struct ctm_sim *s, double f, double fs,
			     double frac_ib, double phi, int harmonics,
			     double noise, uint64_t seed)
{
	double vp = CTM_UN_V * M_SQRT2, ip = CTM_IB_A * frac_ib * M_SQRT2;

	memset(s, 0, sizeof(*s));
	s->f = f;
	s->fs = fs;
	s->skew = 0.5;
	s->noise = noise;
	s->rng = seed * 0x9e3779b97f4a7c15ULL + 1;
	s->v.dc = 2047.3;
	s->i.dc = 2049.6;
	s->v.c[s->v.n++] = (struct ctm_comp){ 1, vp, 0.3 };
	s->i.c[s->i.n++] = (struct ctm_comp){ 1, ip, 0.3 - phi };
	if (harmonics) {
		s->v.c[s->v.n++] = (struct ctm_comp){ 3, 0.05 * vp, 1.1 };
		s->v.c[s->v.n++] = (struct ctm_comp){ 5, 0.04 * vp, -0.7 };
		s->i.c[s->i.n++] = (struct ctm_comp){ 3, 0.20 * ip,
						      1.1 - 40 * M_PI / 180 };
		s->i.c[s->i.n++] = (struct ctm_comp){ 5, 0.15 * ip,
						      -0.7 + 25 * M_PI / 180 };
	}
}

static inline void ctm_cfg(struct ct_meter_cfg *cfg, double fs)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->fs = (uint32_t)fs;
	cfg->skew_q16 = 32768;	/* one conversion = half a pair period */
	cfg->i_gain_na = CTM_I_GAIN_NA;
	cfg->v_gain_nv = CTM_V_GAIN_NV;
	cfg->no_load_ua = ct_default_no_load_ua(CTM_I_GAIN_NA);
	cfg->hyst = 16;
	cfg->adc_bits = 12;
}

/*
 * No-load calibration, as an installer does it with the clamp open: the
 * current channel then carries only the ADC's noise (and quantisation),
 * whose mean square adds to every reading. Measure it with anti-creep off
 * and return the current mean-square bias (1/65536 code^2) that removes it.
 */
static inline int32_t ctm_no_load_bias(double f, double fs, int harmonics,
				       double noise, uint64_t seed)
{
	struct ctm_sim s;
	struct ct_meter_cfg cfg;
	struct ct_meter m;
	struct ct_reading r;
	double ms = 0, code_a;
	long n = 0, settle = (long)f;
	uint16_t v, i;

	ctm_setup(&s, f, fs, 0, 0, harmonics, noise, seed);
	ctm_cfg(&cfg, fs);
	cfg.no_load_ua = 0;
	if (ct_meter_init(&m, &cfg))
		return 0;
	code_a = cfg.i_gain_na * 1e-9;		/* amperes per code */
	while (n < 200) {
		ctm_pair(&s, &v, &i);
		if (!ct_meter_push(&m, v, i, &r))
			continue;
		if (settle > 0) {
			settle--;
			continue;
		}
		ms += (r.i_rms_ua * 1e-6 / code_a) * (r.i_rms_ua * 1e-6 / code_a);
		n++;
	}
	return (int32_t)lround(-ms / n * 65536.0);
}

struct ctm_result {
	double e_p_err, e_q_err;	/* relative energy errors */
	double i_err, v_err;		/* relative error of the mean RMS */
	double i_err_max, v_err_max;	/* worst single cycle */
	double f_err_max;		/* worst single cycle, Hz */
	double pf_err_max;		/* worst single cycle, absolute */
	long cycles;
};

/*
 * Run @cycles mains cycles after a settling second and compare the energy
 * accumulated between two cycle ends with P * (cycles / f).
 */
static inline void ctm_run(struct ctm_sim *s, struct ct_meter *m,
			   long cycles, struct ctm_result *res)
{
	double p = ctm_active(s), q = ctm_reactive1(s);
	double irms = ctm_rms(&s->i), vrms = ctm_rms(&s->v);
	double e0p = 0, e0q = 0, isum = 0, vsum = 0, pf;
	struct ct_reading r;
	long k = -1, settle = (long)s->f;	/* one second */
	uint16_t v, i;

	memset(res, 0, sizeof(*res));
	pf = irms > 0 ? p / (irms * vrms) : 0;
	while (k < cycles) {
		ctm_pair(s, &v, &i);
		if (!ct_meter_push(m, v, i, &r))
			continue;
		if (settle > 0) {
			settle--;
			continue;
		}
		if (k >= 0) {
			double ei = irms > 0 ? r.i_rms_ua * 1e-6 / irms - 1 : r.i_rms_ua;
			double ev = r.v_rms_uv * 1e-6 / vrms - 1;
			double ef = fabs(r.freq_uhz * 1e-6 - s->f);

			isum += r.i_rms_ua * 1e-6;
			vsum += r.v_rms_uv * 1e-6;
			if (fabs(ei) > res->i_err_max)
				res->i_err_max = fabs(ei);
			if (fabs(ev) > res->v_err_max)
				res->v_err_max = fabs(ev);
			if (ef > res->f_err_max)
				res->f_err_max = ef;
			if (fabs(r.pf_micro * 1e-6 - pf) > res->pf_err_max)
				res->pf_err_max = fabs(r.pf_micro * 1e-6 - pf);
		} else {
			e0p = (double)m->e_import_mj * 1e6 + m->rem_imp_nj -
			      ((double)m->e_export_mj * 1e6 + m->rem_exp_nj);
			e0q = (double)m->e_reactive_mj * 1e6 + m->rem_q_nj;
		}
		k++;
	}
	{
		double ep = (double)m->e_import_mj * 1e6 + m->rem_imp_nj -
			    ((double)m->e_export_mj * 1e6 + m->rem_exp_nj) - e0p;
		double eq = (double)m->e_reactive_mj * 1e6 + m->rem_q_nj - e0q;
		double t = cycles / s->f;

		ep *= 1e-9;	/* J */
		eq *= 1e-9;
		res->e_p_err = p != 0 ? ep / (p * t) - 1 : ep;
		/* at PF 1 (no reactive power): relative to the apparent energy */
		res->e_q_err = q != 0 ? eq / (q * t) - 1 : eq / (vrms * irms * t);
		res->i_err = irms > 0 ? isum / cycles / irms - 1 : isum;
		res->v_err = vsum / cycles / vrms - 1;
		res->cycles = cycles;
	}
}

#endif /* CT_MODEL_H */
