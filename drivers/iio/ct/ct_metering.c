// SPDX-License-Identifier: GPL-2.0
/*
 * Fixed-point single-phase metering math of the gridmeter CT sensor.
 *
 * Compiled into the kernel driver and, unchanged, into the host unit tests
 * and benchmark (see ct_compat.h).
 *
 * Method, per sample pair (v, i) of ADC codes:
 *
 * - The DC bias is removed with an integer estimate from the previous cycles;
 *   what remains is removed exactly per cycle from the first moments
 *   (C_xy = T_xy - T_x * T_y / L).
 * - A cycle runs from one positive-going zero crossing of the voltage to the
 *   next. The crossing is interpolated linearly between the two samples that
 *   straddle it (fraction alpha), and every accumulated term is integrated
 *   with the trapezoidal rule over exactly [crossing, next crossing]: the
 *   boundary segment is split between the two cycles it belongs to, so each
 *   cycle integrates an exact (non-integer) number of samples L and
 *   consecutive cycles still partition the sample stream: no energy is lost
 *   or counted twice at a boundary.
 * - Active power is the mean of v*i with the voltage linearly interpolated to
 *   the instant the current was converted (skew d of the multiplexed ADC):
 *   (1 - d) * v[n] * i[n] + d * v[n+1] * i[n]. This handles the skew for the
 *   harmonics too, to second order.
 * - The fundamental voltage and current phasors are measured with a one-bin
 *   DFT against a cos/sin table whose step follows the previous cycle's
 *   length. They give the fundamental reactive power (IEC 62053-24) and the
 *   exact phase correction of the fundamental for the skew and for the CT's
 *   phase lead; the fundamental's share of the interpolated active power is
 *   replaced by its exactly corrected value.
 * - Anti-creep: a cycle whose RMS current is below the no-load threshold
 *   reads 0 A, 0 W, 0 var, 0 VA and adds no energy.
 *
 * Per pair that is 10 accumulations (8 multiplications) and a table look-up;
 * everything else runs once per cycle.
 */
#include "ct_metering.h"
#include "ct_costab.h"

#define CT_Q16		65536LL
#define CT_TWO_PI_Q46	442139859501778LL	/* 2 * pi * 2^46 */
#define CT_MDEG_TO_Q30	18740330LL		/* pi / 180000 * 2^30 * 1000 */
#define CT_TURN_PER_RAD	683565276LL		/* 2^32 / (2 * pi) */

static inline s64 ct_abs64(s64 x)
{
	return x < 0 ? -x : x;
}

/*
 * a * b / c, truncated, for signed a, b and positive c, with a 128-bit
 * intermediate product when a * b does not fit 63 bits.
 */
static s64 ct_muldiv(s64 a, s64 b, s64 c)
{
	u64 ua = ct_abs64(a), ub = ct_abs64(b), q;

	if (ua < (1ULL << 31) && ub < (1ULL << 31))
		return div64_s64(a * b, c);
	/*
	 * The quotient must fit 64 bits: x86's divq traps otherwise. Results
	 * that large are garbage input anyway; saturate.
	 */
	if (fls64(ua) + fls64(ub) - fls64(c) >= 63)
		q = 0x7fffffffffffffffULL;
	else
		q = mul_u64_u64_div_u64(ua, ub, c);
	return ((a < 0) != (b < 0)) ? -(s64)q : (s64)q;
}

/* a * 2^16 / c for signed a and positive c. */
static s64 ct_shl16_div(s64 a, s64 c)
{
	if (ct_abs64(a) < (1LL << 46))
		return div64_s64(a * CT_Q16, c);
	return ct_muldiv(a, CT_Q16, c);
}

/* (a * k) >> sh for signed a, unsigned k, 128-bit intermediate. */
static s64 ct_mulshr(s64 a, u64 k, unsigned int sh)
{
	u64 q = mul_u64_u64_shr(ct_abs64(a), k, sh);

	return a < 0 ? -(s64)q : (s64)q;
}

/* x * q / 2^16 for signed x and 0 <= q < 2^16, without overflow. */
static s64 ct_mul_q16(s64 x, u32 q)
{
	return (x >> 16) * q + (((x & 0xffff) * q) >> 16);
}

/**
 * ct_isqrt64() - integer square root
 * @x: radicand
 *
 * Newton's iteration from above, a handful of divisions.
 *
 * Return: floor(sqrt(@x)).
 */
u64 ct_isqrt64(u64 x)
{
	u64 r, y;

	if (x < 2)
		return x;
	r = 1ULL << ((fls64(x) + 1) / 2);	/* >= sqrt(x) */
	for (;;) {
		y = (r + div64_u64(x, r)) >> 1;
		if (y >= r)
			return r;
		r = y;
	}
}

/*
 * sin and cos of a small angle, all Q30, by Taylor series: @terms 3 (to x^5
 * and x^6: error < 6e-6 for |x| < 0.4 rad, the CT phase plus the skew) or 2
 * (to x^3 and x^4: error < 2e-7 for |x| < 0.1 rad, one sample period at
 * 1000 pairs/s of 70 Hz mains is 0.44 rad, 6e-5 there).
 */
static void ct_sincos_q30(s64 x, int terms, s64 *s, s64 *c)
{
	s64 x2 = (x * x) >> 30;
	s64 x3 = (x2 * x) >> 30;
	s64 x4 = (x2 * x2) >> 30;

	*s = x - x3 / 6;
	*c = (1LL << 30) - x2 / 2 + x4 / 24;
	if (terms > 2) {
		s64 x5 = (x4 * x) >> 30;
		s64 x6 = (x4 * x2) >> 30;

		*s += x5 / 120;
		*c -= x6 / 720;
	}
}

/*
 * k = num * 2^sh / den with sh chosen so that 2^60 <= k < 2^62 (when
 * 0 <= sh <= 62 allows it), without a quotient that overflows 64 bits.
 */
static u64 ct_scale(u64 num, u64 den, u32 *sh)
{
	int s = 61 - fls64(num) + fls64(den);

	s = s < 0 ? 0 : s > 62 ? 62 : s;
	*sh = s;
	if (fls64(num) + s - fls64(den) >= 63)
		return 0;
	return mul_u64_u64_div_u64(num, 1ULL << s, den);
}

/**
 * ct_meter_check_cfg() - validate a configuration
 * @cfg: configuration
 *
 * Return: 0, or -EINVAL when a field is out of range.
 */
int ct_meter_check_cfg(const struct ct_meter_cfg *cfg)
{
	if (cfg->fs < CT_FS_MIN || cfg->fs > CT_FS_MAX)
		return -EINVAL;
	if (cfg->skew_q16 > 0xffff)
		return -EINVAL;
	if (cfg->phase_mdeg > CT_PHASE_MDEG_MAX ||
	    cfg->phase_mdeg < -CT_PHASE_MDEG_MAX)
		return -EINVAL;
	if (!cfg->i_gain_na || !cfg->v_gain_nv)
		return -EINVAL;
	if (cfg->hyst > 1024)
		return -EINVAL;
	if (!cfg->adc_bits || cfg->adc_bits > CT_ADC_BITS_MAX)
		return -EINVAL;
	return 0;
}

/**
 * ct_meter_set_cfg() - change the configuration, keeping the energy counters
 * @m: meter
 * @cfg: new configuration
 *
 * Takes effect at the next cycle; a change of @cfg->fs resynchronises.
 *
 * Return: 0, or -EINVAL (and nothing changed) when @cfg is out of range.
 */
int ct_meter_set_cfg(struct ct_meter *m, const struct ct_meter_cfg *cfg)
{
	u64 k_fw;
	int ret = ct_meter_check_cfg(cfg);

	if (ret)
		return ret;
	if (cfg->fs != m->cfg.fs) {
		m->synced = false;
		m->pvalid = false;
		m->warmup = CT_WARMUP_CYCLES;
		m->step = (u32)div64_u64((u64)50 << 32, cfg->fs);
	}
	m->cfg = *cfg;
	m->n_min = cfg->fs / CT_DETECT_HZ_MAX;
	m->n_max = cfg->fs / CT_DETECT_HZ_MIN + 1;
	m->hyst = cfg->hyst;
	m->phase_q30 = div64_s64((s64)cfg->phase_mdeg * CT_MDEG_TO_Q30, 1000);
	m->nl_codes = div64_u64((u64)cfg->no_load_ua * 1000 << 16, cfg->i_gain_na);
	/* nA * nV = 1e-18 W: femtowatt per code^2 */
	k_fw = div64_u64((u64)cfg->i_gain_na * cfg->v_gain_nv, 1000);
	m->k_p = ct_scale(k_fw, CT_Q16 * 1000000, &m->sh_p);
	m->k_e = ct_scale(k_fw, CT_Q16 * 1000000 * cfg->fs, &m->sh_e);
	return 0;
}

/**
 * ct_default_no_load_ua() - the no-load current threshold a front end gets
 * @i_gain_na: primary current per ADC code, nA
 *
 * An eighth of the current of one ADC code. The fundamental current that
 * 1 LSB of noise shows, averaged over CT_NL_CYCLES cycles, is about 0.02
 * code, far below it; the IEC 62053-21 starting current of a class 1 meter
 * (0.4 % of Ib) is above it for any Ib above 31 codes' current (2.3 A on
 * a front end of 73 mA per code).
 *
 * Return: the threshold, uA.
 */
u32 ct_default_no_load_ua(u32 i_gain_na)
{
	return i_gain_na / 8000;
}

/**
 * ct_meter_init() - initialise a meter: counters zero, waiting for a crossing
 * @m: meter
 * @cfg: configuration
 *
 * Return: 0 or -EINVAL.
 */
int ct_meter_init(struct ct_meter *m, const struct ct_meter_cfg *cfg)
{
	int ret = ct_meter_check_cfg(cfg);

	if (ret)
		return ret;
	memset(m, 0, sizeof(*m));
	/* mid-scale: a biased front end's DC, refined from whole cycles */
	m->dcv = 1 << (cfg->adc_bits - 1);
	m->dci = 1 << (cfg->adc_bits - 1);
	return ct_meter_set_cfg(m, cfg);
}

static void ct_gap_add(struct ct_meter *m, s64 l);

/**
 * ct_meter_discard() - drop the current cycle (an ADC read failed)
 * @m: meter
 *
 * The cycle in progress is not reported, and counted in
 * &ct_meter.discarded when it ends; its time and that of the pair that
 * failed are not measured, and their energy is estimated from the cycles
 * around them (&ct_meter.gap_ns).
 */
void ct_meter_discard(struct ct_meter *m)
{
	m->bad = true;
	ct_gap_add(m, CT_Q16);
}

/**
 * ct_meter_gap() - account for sample pairs that were never taken
 * @m: meter
 * @missed: pairs missed since the last one fed (the sampler fell behind)
 *
 * The cycle in progress cannot be measured any more: its time and the
 * missed pairs' are counted in &ct_meter.gap_ns and &ct_meter.missed, and
 * their energy is integrated at the power of the measured cycles before
 * and after the gap. The meter resynchronises at the next zero crossing.
 * Call it before feeding any pair converted after the gap.
 */
void ct_meter_gap(struct ct_meter *m, u32 missed)
{
	ct_gap_add(m, ((s64)m->n << 16) + 32768 - m->alpha_start +
		   ((s64)missed << 16));
	m->missed += missed;
	memset(m->acc, 0, sizeof(m->acc));
	memset(m->e_start, 0, sizeof(m->e_start));
	m->alpha_start = 32768;
	m->n = 0;
	m->synced = false;
	m->armed = 0;
	m->bad = false;
	m->pvalid = false;
}

/* Terms of the accumulators for one sample, from bias-free v, i. */
static void ct_terms(s64 *x, s64 v, s64 i, s64 iprev, u32 phase)
{
	u32 k = phase >> (32 - CT_TAB_BITS);
	s64 c = ct_cos_q14(k);
	s64 s = ct_sin_q14(k);

	x[CT_T_V] = v;
	x[CT_T_I] = i;
	x[CT_T_VV] = v * v;
	x[CT_T_II] = i * i;
	x[CT_T_VI] = v * i;
	x[CT_T_VL] = v * iprev;
	x[CT_T_VC] = v * c;
	x[CT_T_VS] = v * s;
	x[CT_T_IC] = i * c;
	x[CT_T_IS] = i * s;
}

/*
 * Share of the boundary segment [b, b + 1] that belongs to the cycle ending
 * at b + alpha, beyond the trapezoid rule of the samples up to b (Q16):
 * xb * (alpha - 1/2) + alpha^2 / 2 * (xa - xb).
 */
static void ct_edge(s64 *e, s64 vb, s64 ib, s64 ibp, u32 pb,
		    s64 va, s64 ia, u32 pa, u32 alpha)
{
	s64 xb[CT_NTERMS], xa[CT_NTERMS];
	s64 a2 = ((s64)alpha * alpha) >> 17;	/* alpha^2 / 2, Q16 */
	int k;

	ct_terms(xb, vb, ib, ibp, pb);
	ct_terms(xa, va, ia, ib, pa);
	for (k = 0; k < CT_NTERMS; k++)
		e[k] = xb[k] * ((s64)alpha - 32768) + a2 * (xa[k] - xb[k]);
}

static void ct_accumulate_energy(struct ct_meter *m, s64 ep, s64 eq)
{
	u64 q;

	if (ep >= 0) {
		m->rem_imp_nj += ep;
		q = div64_u64(m->rem_imp_nj, 1000000);
		m->e_import_mj += q;
		m->rem_imp_nj -= q * 1000000;
	} else {
		m->rem_exp_nj += -ep;
		q = div64_u64(m->rem_exp_nj, 1000000);
		m->e_export_mj += q;
		m->rem_exp_nj -= q * 1000000;
	}
	m->rem_q_nj += eq;
	q = div64_s64(m->rem_q_nj, 1000000);
	m->e_reactive_mj += (s64)q;
	m->rem_q_nj -= (s64)q * 1000000;
}

static s64 ct_round_div(s64 a, s64 b)
{
	return div64_s64(a + (a < 0 ? -b / 2 : b / 2), b);
}

/* sqrt(a^2 + b^2), without overflow. */
static u64 ct_hypot(s64 a, s64 b)
{
	u64 x = ct_abs64(a), y = ct_abs64(b);
	int sh = fls64(x | y) - 31;	/* both below 2^31 after the shift */

	if (sh > 0) {
		x >>= sh;
		y >>= sh;
	} else {
		sh = 0;
	}
	return ct_isqrt64(x * x + y * y) << sh;
}

/*
 * Time not covered by a measured cycle (@l samples, Q16): counted, and its
 * energy left for ct_gap_resolve().
 */
static void ct_gap_add(struct ct_meter *m, s64 l)
{
	if (l <= 0)
		return;
	m->est_q16 += l;
	m->gap_ns += mul_u64_u64_div_u64(l, 1000000000ULL, (u64)m->cfg.fs << 16);
	m->gap_flag = true;
}

/*
 * A measured cycle registered @p_nw and @q_nw: integrate the unmeasured
 * time before it, half at the power of the measured cycle before the gap
 * (this one's if there was none), half at this one's, so that a load that
 * changed during the gap splits between import and export correctly.
 */
static void ct_gap_resolve(struct ct_meter *m, s64 p_nw, s64 q_nw)
{
	s64 den = (s64)m->cfg.fs << 17;	/* half of the time, in seconds */
	s64 p0 = m->have_prev ? m->prev_p_nw : p_nw;
	s64 q0 = m->have_prev ? m->prev_q_nw : q_nw;
	s64 t = (s64)m->est_q16;

	if (t) {
		ct_accumulate_energy(m, ct_muldiv(p0, t, den), ct_muldiv(q0, t, den));
		ct_accumulate_energy(m, ct_muldiv(p_nw, t, den), ct_muldiv(q_nw, t, den));
		m->est_q16 = 0;
	}
	m->prev_p_nw = p_nw;
	m->prev_q_nw = q_nw;
	m->have_prev = true;
}

/*
 * Is the fundamental power @zp + j@zq, summed over cycles whose voltages
 * sum to @v1 (RMS, Q16 codes) and whose noise variances sum to @var (Q16
 * code^4), a load? It must stand CT_NL_SIGMAS standard deviations above
 * the noise, and the current it implies must reach the no-load threshold.
 */
static bool ct_nl_load(const struct ct_meter *m, s64 zp, s64 zq, u64 var, u64 v1)
{
	u64 z = ct_hypot(zp, zq);

	return z >= CT_NL_SIGMAS * (ct_isqrt64(var) << 8) &&
	       z >= mul_u64_u64_shr(v1, m->nl_codes, 16);
}

static void ct_nl_reset(struct ct_meter *m)
{
	m->nl_ep = 0;
	m->nl_eq = 0;
	m->nl_zp = 0;
	m->nl_zq = 0;
	m->nl_var = 0;
	m->nl_v1 = 0;
	m->nl_n = 0;
}

/* Decide the anti-creep window: register its energy if it held a load. */
static void ct_nl_decide(struct ct_meter *m)
{
	m->loaded = ct_nl_load(m, m->nl_zp, m->nl_zq, m->nl_var, m->nl_v1);
	if (m->loaded)
		ct_accumulate_energy(m, m->nl_ep, m->nl_eq);
	ct_nl_reset(m);
}

/*
 * Line frequency from the advance of the fundamental voltage phasor between
 * this cycle and the previous one, against the reference oscillator whose
 * phase advance over the same interval is known exactly. The zero crossings
 * only place the two windows, so their noise barely matters. Return: uHz,
 * or 0 when the phasors cannot be compared.
 */
static u32 ct_phasor_freq(struct ct_meter *m, s64 vc, s64 vs, s64 l)
{
	s64 re = vc * m->pvc + vs * m->pvs;
	s64 im = vc * m->pvs - vs * m->pvc;
	s64 x, x2, dphi, adv, span;
	int sh;

	if (!m->pvalid || re <= 0)
		return 0;
	/* scale both so that im << 30 cannot overflow */
	sh = fls64(re | ct_abs64(im)) - 32;
	if (sh > 0) {
		re >>= sh;
		im >>= sh;
	}
	if (!re)
		return 0;
	x = div64_s64(im * (1LL << 30), re);		/* tan(dphi), Q30 */
	if (ct_abs64(x) > (1LL << 28))
		return 0;
	x2 = (x * x) >> 30;
	dphi = x - ((x2 * x) >> 30) / 3 + ((((x2 * x2) >> 30) * x) >> 30) / 5;
	/* reference advance between the window centres, 2^32 per turn */
	adv = ((s64)m->pstep * m->pl + (s64)m->step * l) >> 17;
	adv += (dphi * CT_TURN_PER_RAD) >> 30;
	span = (m->pl + l) >> 1;			/* samples, Q16 */
	if (adv <= 0 || span <= 0)
		return 0;
	/* f = adv / 2^32 turns over span / 2^16 samples at fs */
	return (u32)mul_u64_u64_shr(div64_u64((u64)adv << 24, span),
				    (u64)m->cfg.fs * 1000000, 40);
}

/*
 * Turn one window's integrals into a reading and register its energy.
 * @whole: the window is one measured cycle (crossing to crossing); else it
 * ended on the length limit without a crossing (no voltage, or a frequency
 * below CT_DETECT_HZ_MIN), and its energy is the plain integral of v * i.
 * Return: 1 with @out set, 0 when the reading is withheld (a cycle outside
 * CT_LINE_HZ_MIN..CT_LINE_HZ_MAX); the energy is registered either way.
 */
static int ct_finish(struct ct_meter *m, const s64 *t, s64 l, bool whole,
		     struct ct_reading *out)
{
	const struct ct_meter_cfg *cfg = &m->cfg;
	s64 cvv, cii, cvi, cvl, cint, vc, vs, ic, is, p1m, q1m;
	s64 w, beta, sb, cb, sw, cw, d, reg, img, p1t, q1t, p1i, p, q, e;
	s64 p_nw, q_nw, s_q16, ep, eq, reg_p = 0, reg_q = 0;
	u64 msv, msi, rv, ri, iua, v1ms, i1ms, resid, var, v1;
	struct ct_reading r = { 0 };
	bool loaded;
	int ret = 1;

	/* exact removal of the residual DC over the window */
	cvv = t[CT_T_VV] - ct_muldiv(t[CT_T_V], t[CT_T_V], l);
	cii = t[CT_T_II] - ct_muldiv(t[CT_T_I], t[CT_T_I], l);
	cvl = ct_muldiv(t[CT_T_V], t[CT_T_I], l);
	cvi = t[CT_T_VI] - cvl;
	cvl = t[CT_T_VL] - cvl;
	/*
	 * Fundamental phasors, amplitude Q16 codes: X = 8 * T_x(c|s) / L
	 * (the reference sums to ~0 over a cycle, so the sub-code residual
	 * DC left by the integer estimate does not leak in).
	 */
	vc = div64_s64(t[CT_T_VC] * 8, l);
	vs = div64_s64(t[CT_T_VS] * 8, l);
	ic = div64_s64(t[CT_T_IC] * 8, l);
	is = div64_s64(t[CT_T_IS] * 8, l);
	/* Z = V conj(I) / 2: fundamental P and Q as measured, Q16 code^2 */
	p1m = (vc * ic + vs * is) >> 17;
	q1m = (vc * is - vs * ic) >> 17;

	/* RMS, Q16 codes; the bias is in 1/65536 code^2 */
	msv = cvv > 0 ? (u64)ct_shl16_div(cvv, l) : 0;
	msi = cii > 0 ? (u64)ct_shl16_div(cii, l) : 0;
	/* the current's noise: what is not its fundamental (>= quantisation) */
	i1ms = (u64)(ic * ic + is * is) >> 17;
	resid = msi > i1ms + CT_Q16 / 12 ? msi - i1ms : CT_Q16 / 12;
	msv = (s64)msv + cfg->v_ms_bias > 0 ? msv + cfg->v_ms_bias : 0;
	msi = (s64)msi + cfg->i_ms_bias > 0 ? msi + cfg->i_ms_bias : 0;
	rv = ct_isqrt64(msv << 16);
	ri = ct_isqrt64(msi << 16);

	/*
	 * Phase correction of the fundamental: the current was converted d
	 * samples late (phase w*d) and the CT leads by phase_q30, so the true
	 * Z is the measured one rotated by beta = phase + w*d. The
	 * interpolated product saw the fundamental as G*Z with
	 * G = (1 - d) + d*e^(jw).
	 */
	w = div64_s64(CT_TWO_PI_Q46, l);		/* rad per sample, Q30 */
	d = (s64)cfg->skew_q16 << 14;			/* Q30 */
	beta = m->phase_q30 + ((w * cfg->skew_q16) >> 16);
	ct_sincos_q30(beta, 3, &sb, &cb);
	ct_sincos_q30(w, 2, &sw, &cw);
	reg = (1LL << 30) - d + ((d * cw) >> 30);
	img = (d * sw) >> 30;
	sb >>= 6;					/* Q24 */
	cb >>= 6;
	reg >>= 6;
	img >>= 6;
	p1t = (p1m * cb - q1m * sb) >> 24;
	q1t = (p1m * sb + q1m * cb) >> 24;
	p1i = (p1m * reg - q1m * img) >> 24;

	if (whole) {
		/* interpolated total active power, Q16 code^2, and its integral */
		cint = cvi + ct_mul_q16(cvl - cvi, cfg->skew_q16);
		e = cint + ((p1t - p1i) * (l >> 4) >> 12);	/* Q16 code^2 samples */
		p = ct_shl16_div(cint, l) + p1t - p1i;
		q = q1t;
	} else {
		/*
		 * Not a cycle: no DC removal over the window, no phase
		 * correction of a fundamental it may not contain; the
		 * integral of the interpolated product is still the energy.
		 */
		cint = t[CT_T_VI] + ct_mul_q16(t[CT_T_VL] - t[CT_T_VI], cfg->skew_q16);
		e = cint;
		p = ct_shl16_div(cint, l);
		q = 0;
	}
	if (cfg->reverse) {
		p = -p;
		q = -q;
		e = -e;
		p1t = -p1t;
		q1t = -q1t;
	}

	iua = div64_u64(ri * cfg->i_gain_na, CT_Q16 * 1000);
	r.v_rms_uv = div64_u64(rv * cfg->v_gain_nv, CT_Q16 * 1000);
	r.seq = m->cycles;
	r.after_gap = m->est_q16 != 0;
	if (whole) {
		r.freq_uhz = ct_phasor_freq(m, vc, vs, l);
		if (!r.freq_uhz)
			r.freq_uhz = (u32)div64_u64((u64)cfg->fs * 1000000ULL << 16, l);
	}
	m->pvc = vc;
	m->pvs = vs;
	m->pl = l;
	m->pstep = m->step;
	m->pvalid = whole;

	s_q16 = (s64)((rv * ri) >> 16);
	p_nw = ct_mulshr(p, m->k_p, m->sh_p);
	q_nw = ct_mulshr(q, m->k_p, m->sh_p);
	ep = ct_mulshr(e, m->k_e, m->sh_e);
	eq = ct_mulshr((q * (l >> 4)) >> 12, m->k_e, m->sh_e);

	/*
	 * Anti-creep. The noise of the fundamental power over this window
	 * is V1^2 * sigma_i^2 / L (sigma_i: the current's non-fundamental
	 * content, its noise at no load). A cycle that stands out of it
	 * and carries the no-load current registers at once; the others
	 * are decided together, CT_NL_CYCLES at a time, which finds the
	 * starting current in noise of 1 LSB and more.
	 */
	v1ms = (u64)(vc * vc + vs * vs) >> 17;
	v1 = ct_isqrt64(v1ms << 16);
	var = mul_u64_u64_div_u64(v1ms, resid, (u64)(l > CT_Q16 ? l : CT_Q16));
	/* a threshold of 0 turns anti-creep off (no-load calibration) */
	loaded = !cfg->no_load_ua || ct_nl_load(m, p1t, q1t, var, v1);
	if (loaded) {
		/* the undecided cycles just before a load belong to it */
		ct_accumulate_energy(m, m->nl_ep + ep, m->nl_eq + eq);
		ct_nl_reset(m);
		m->loaded = true;
	} else {
		/* the load fell away: the next window decides again */
		if (m->cycle_loaded)
			m->loaded = false;
		m->nl_ep += ep;
		m->nl_eq += eq;
		m->nl_zp += p1t;
		m->nl_zq += q1t;
		m->nl_var += var;
		m->nl_v1 += v1;
		if (++m->nl_n >= CT_NL_CYCLES)
			ct_nl_decide(m);
	}
	m->cycle_loaded = loaded;
	if (loaded || m->loaded) {
		reg_p = p_nw;
		reg_q = q_nw;
		r.i_rms_ua = iua;
		r.p_mw = ct_round_div(p_nw, 1000000);
		r.q_mvar = ct_round_div(q_nw, 1000000);
		r.s_mva = (u64)ct_round_div(ct_mulshr(s_q16, m->k_p, m->sh_p), 1000000);
		if (s_q16 > 0) {
			s64 pf = div64_s64(p * 1000000, s_q16);

			r.pf_micro = pf > 1000000 ? 1000000 :
				     pf < -1000000 ? -1000000 : (s32)pf;
		}
	}
	/* the unmeasured time before this window, at the power around it */
	ct_gap_resolve(m, reg_p, reg_q);
	m->gap_flag = false;

	if (whole && (r.freq_uhz + CT_LINE_TOL_UHZ < CT_LINE_HZ_MIN * 1000000U ||
		      r.freq_uhz > CT_LINE_HZ_MAX * 1000000U + CT_LINE_TOL_UHZ)) {
		/* not mains: withheld, counted; the energy is registered */
		m->withheld++;
		ret = 0;
	}
	m->last = r;
	*out = r;
	return ret;
}

/*
 * Rare path: the sample after a positive-going zero crossing, or the sample
 * that makes the cycle too long. Ends the cycle, updates the DC and the
 * reference step, and rewrites *v, *i if the DC moved so that the caller
 * accumulates the sample into the new cycle. Return: 1 with @out set.
 */
static int ct_boundary(struct ct_meter *m, s64 vr, s64 ir, s64 *v, s64 *i,
		       struct ct_reading *out)
{
	bool crossed = *v >= 0 && m->armed;
	s64 t[CT_NTERMS], e_end[CT_NTERMS];
	u32 pa = m->phase + m->step, alpha = 0;
	s64 l, dv = 0, di = 0;
	int k, ret = 0;
	bool measured;

	if (crossed && m->n < m->n_min) {
		/* too early to be mains: a glitch, wait for a real crossing */
		m->armed = 0;
		return 0;
	}
	if (!crossed && m->n < m->n_max)
		return 0;

	if (crossed) {
		alpha = (u32)div64_s64(-m->vp * CT_Q16, *v - m->vp);
		ct_edge(e_end, m->vp, m->ip, m->ipp, m->phase, *v, *i, pa, alpha);
		l = ((s64)m->n << 16) + alpha - m->alpha_start;
	} else {
		memset(e_end, 0, sizeof(e_end));
		l = ((s64)m->n << 16) + 32768 - m->alpha_start;
	}
	for (k = 0; k < CT_NTERMS; k++)
		t[k] = m->acc[k] * CT_Q16 + e_end[k] - m->e_start[k];

	/* a whole cycle, from crossing to crossing, without an ADC error */
	measured = crossed && m->synced && !m->bad && l > 0;
	if (measured && m->warmup) {
		m->warmup--;
		measured = false;
	}
	if (measured) {
		ret = ct_finish(m, t, l, true, out);
		/*
		 * The voltage DC moved at the start of this cycle, so its
		 * two crossings were found against different levels: the
		 * energy (an integral over whatever window) is right, the
		 * per-cycle RMS and frequency are not worth publishing.
		 */
		if (m->dc_moved) {
			ret = 0;
			m->pvalid = false;
		}
	} else if (!crossed && !m->bad && l > 0) {
		/* the longest cycle ended without a crossing: no voltage */
		ret = ct_finish(m, t, l, false, out);
		m->pvalid = false;
	} else {
		/* not a measured cycle: its energy is estimated */
		ct_gap_add(m, l);
		m->pvalid = false;
	}
	if (m->bad)
		m->discarded++;
	m->cycles++;

	/*
	 * DC and reference frequency for the next cycle, from whole cycles
	 * only: the mean of part of a cycle is not its DC.
	 */
	if (measured || (crossed && m->synced && !m->bad && l > 0)) {
		/*
		 * Whole codes only, truncated: the residual (< 1 code) is
		 * removed exactly per cycle anyway, and a DC that does not
		 * dither between two codes keeps the boundary cheap.
		 */
		dv = div64_s64(t[CT_T_V], l);
		di = div64_s64(t[CT_T_I], l);
		m->step = (u32)div64_u64(1ULL << 48, l);
	}
	m->dc_moved = dv != 0;
	if (dv || di) {
		m->dcv += dv;
		m->dci += di;
		*v = vr - m->dcv;
		*i = ir - m->dci;
		m->vp -= dv;
		m->ip -= di;
		m->ipp -= di;
	}

	/* the new cycle starts at this boundary */
	memset(m->acc, 0, sizeof(m->acc));
	if (crossed && !dv && !di) {
		/* the other side of the same segment, same DC */
		for (k = 0; k < CT_NTERMS; k++)
			m->e_start[k] = e_end[k];
	} else if (crossed) {
		ct_edge(m->e_start, m->vp, m->ip, m->ipp, m->phase, *v, *i, pa,
			alpha);
	} else {
		memset(m->e_start, 0, sizeof(m->e_start));
		alpha = 32768;
	}
	m->alpha_start = alpha;
	m->synced = crossed;
	m->bad = false;
	m->armed = 0;
	m->n = 0;
	return ret;
}

/*
 * Pairs accumulated in packed form before ct_lanes_unpack(): each packed
 * product x * (y + 2^32 z) carries x * y and x * z in 32-bit lanes. With
 * |x| <= 4095 (a 12-bit code less its DC estimate, which is a mean of
 * such codes) and |y|, |z| <= 16384 (the Q14 table; a current sample is
 * within 4095), 32 products sum to less than 32 * 4095 * 16384 < 2^31 in
 * either lane.
 */
#define CT_LANE_PAIRS	32
static_assert(CT_LANE_PAIRS * (s64)CT_CODE_MAX * 16384 < (1LL << 31),
	      "a packed lane can overflow");

/* Hot-loop state, kept in registers by the compiler. */
struct ct_hot {
	s64 av, ai, avv, aii;
	u64 pvil, pvcs, pics;		/* packed: VI|VL, VC|VS, IC|IS */
	s64 avi, avl, avc, avs, aic, ais;
	s64 dcv, dci, ip;
	u32 ph, step;
};

/* Low and high lane of a packed sum (see CT_LANE_PAIRS). */
static __always_inline s64 ct_lane_lo(u64 x)
{
	return (s32)(u32)x;
}

static __always_inline s64 ct_lane_hi(u64 x)
{
	return (s32)(u32)((x - (u64)ct_lane_lo(x)) >> 32);
}

/* The packed sums into the per-term sums, and cleared. */
static __always_inline void ct_lanes_unpack(struct ct_hot *h)
{
	h->avi += ct_lane_lo(h->pvil);
	h->avl += ct_lane_hi(h->pvil);
	h->avc += ct_lane_lo(h->pvcs);
	h->avs += ct_lane_hi(h->pvcs);
	h->aic += ct_lane_lo(h->pics);
	h->ais += ct_lane_hi(h->pics);
	h->pvil = 0;
	h->pvcs = 0;
	h->pics = 0;
}

/*
 * One pair into the hot-loop sums; @ip is the current of the pair before.
 * Five multiplications for the eight products: v * (i + 2^32 ip) and
 * v * (cos + 2^32 sin), i * (cos + 2^32 sin) give two each, in u64 (the
 * lanes wrap into each other by design, which signed arithmetic may not).
 */
static __always_inline void ct_acc(struct ct_hot *h, s64 v, s64 i, s64 ip)
{
	u64 cs;

	h->ph += h->step;
	cs = ct_cs_q14[h->ph >> (32 - CT_TAB_BITS)];
	h->av += v;
	h->ai += i;
	h->avv += v * v;
	h->aii += i * i;
	h->pvil += (u64)v * ((u64)i + ((u64)ip << 32));
	h->pvcs += (u64)v * cs;
	h->pics += (u64)i * cs;
}

/*
 * Accumulate pairs until the zero-crossing state machine has an event:
 * disarmed, the voltage going below -hyst; armed, the voltage reaching 0.
 * One loop per state keeps the test to a single compare; two pairs per
 * iteration halve the loop's own work and need no copy of the previous
 * current. At most CT_LANE_PAIRS pairs: the caller unpacks the lanes.
 */
static __always_inline const u16 *ct_run_lanes(struct ct_hot *h, const u16 *p,
					       const u16 *end, s64 thr, bool armed)
{
	const u16 *end2 = p + (end - p) / 4 * 4;

	for (; p < end2; p += 4) {
		s64 v0 = p[0] - h->dcv, i0 = p[1] - h->dci;
		s64 v1 = p[2] - h->dcv, i1 = p[3] - h->dci;

		if (armed ? v0 >= 0 : v0 < thr)
			return p;
		ct_acc(h, v0, i0, h->ip);
		if (armed ? v1 >= 0 : v1 < thr) {
			h->ip = i0;
			return p + 2;
		}
		ct_acc(h, v1, i1, i0);
		h->ip = i1;
	}
	if (p < end) {
		s64 v = p[0] - h->dcv, i = p[1] - h->dci;

		if (armed ? v >= 0 : v < thr)
			return p;
		ct_acc(h, v, i, h->ip);
		h->ip = i;
		p += 2;
	}
	return p;
}

/* ct_run_lanes() over any number of pairs, CT_LANE_PAIRS at a time. */
static __always_inline const u16 *ct_run(struct ct_hot *h, const u16 *p,
					 const u16 *end, s64 thr, bool armed)
{
	while (p < end) {
		const u16 *cend = end - p > 2 * CT_LANE_PAIRS ? p + 2 * CT_LANE_PAIRS : end;
		const u16 *q = ct_run_lanes(h, p, cend, thr, armed);

		ct_lanes_unpack(h);
		if (q < cend)
			return q;
		p = q;
	}
	return p;
}

/**
 * ct_meter_feed() - process a block of sample pairs
 * @m: meter
 * @pairs: @n sample pairs, ADC codes (0..CT_CODE_MAX): voltage, then current
 *         (converted after the voltage, see &ct_meter_cfg.skew_q16)
 * @n: number of pairs
 * @out: filled when a cycle completes
 * @ready: set to 1 when @out was filled, else 0
 *
 * This is the hot path: per pair two subtractions, a table look-up, five
 * multiplications for eight products (two of them packed in each of three,
 * see CT_LANE_PAIRS), seven accumulations and one compare for the zero
 * crossing state machine. The state lives in locals and is written back
 * when an event (arming, crossing, length limit) needs the rare path, or on
 * return. Returns after each event so the caller can use a reading before
 * the next one.
 *
 * Return: the number of pairs consumed.
 */
unsigned int ct_meter_feed(struct ct_meter *m, const u16 *pairs,
			   unsigned int n, struct ct_reading *out, int *ready)
{
	struct ct_hot h = {
		.av = m->acc[CT_T_V], .ai = m->acc[CT_T_I],
		.avv = m->acc[CT_T_VV], .aii = m->acc[CT_T_II],
		.avi = m->acc[CT_T_VI], .avl = m->acc[CT_T_VL],
		.avc = m->acc[CT_T_VC], .avs = m->acc[CT_T_VS],
		.aic = m->acc[CT_T_IC], .ais = m->acc[CT_T_IS],
		.dcv = m->dcv, .dci = m->dci, .ip = m->ip,
		.ph = m->phase, .step = m->step,
	};
	unsigned int lim = m->n_max > m->n ? m->n_max - m->n : 0;
	const u16 *p, *end = pairs + 2 * (n < lim ? n : lim);
	bool event;
	s64 v, i;

	*ready = 0;
	p = pairs;
	if (!m->armed) {
		p = ct_run(&h, p, end, -m->hyst, false);
		if (p < end && p[0] - h.dcv < 0) {
			/* the voltage went below -hyst: arm, go on armed */
			ct_run(&h, p, p + 2, -(1LL << 40), false);
			p += 2;
			m->armed = 1;
		}
	}
	if (m->armed)
		p = ct_run(&h, p, end, 0, true);
	event = p < end;
	m->acc[CT_T_V] = h.av;
	m->acc[CT_T_I] = h.ai;
	m->acc[CT_T_VV] = h.avv;
	m->acc[CT_T_II] = h.aii;
	m->acc[CT_T_VI] = h.avi;
	m->acc[CT_T_VL] = h.avl;
	m->acc[CT_T_VC] = h.avc;
	m->acc[CT_T_VS] = h.avs;
	m->acc[CT_T_IC] = h.aic;
	m->acc[CT_T_IS] = h.ais;
	m->phase = h.ph;
	/* previous samples, for the boundary interpolation */
	if (p - pairs >= 4) {
		m->vp = p[-2] - h.dcv;
		m->ipp = p[-3] - h.dci;
	} else if (p - pairs == 2) {
		m->ipp = m->ip;
		m->vp = p[-2] - h.dcv;
	}
	m->ip = h.ip;
	m->n += (p - pairs) / 2;
	if (!event && (p - pairs) / 2 < n && m->n >= m->n_max)
		event = true;		/* cycle too long: no voltage */
	if (!event)
		return (p - pairs) / 2;

	v = p[0] - h.dcv;
	i = p[1] - h.dci;
	h.ph = m->phase + m->step;
	*ready = ct_boundary(m, p[0], p[1], &v, &i, out);
	/* accumulate the event's sample (into the new cycle after a boundary) */
	m->phase = h.ph;
	{
		u32 idx = h.ph >> (32 - CT_TAB_BITS);
		s64 c = ct_cos_q14(idx);
		s64 s = ct_sin_q14(idx);
		s64 *a = m->acc;

		a[CT_T_V] += v;
		a[CT_T_I] += i;
		a[CT_T_VV] += v * v;
		a[CT_T_II] += i * i;
		a[CT_T_VI] += v * i;
		a[CT_T_VL] += v * m->ip;
		a[CT_T_VC] += v * c;
		a[CT_T_VS] += v * s;
		a[CT_T_IC] += i * c;
		a[CT_T_IS] += i * s;
	}
	m->ipp = m->ip;
	m->vp = v;
	m->ip = i;
	m->n++;
	return (p - pairs) / 2 + 1;
}

/**
 * ct_meter_push() - process one sample pair
 * @m: meter
 * @v: voltage sample, ADC code (0..CT_CODE_MAX)
 * @i: current sample, ADC code, converted after @v
 * @out: filled when a cycle completes
 *
 * Return: 1 when @out holds the reading of a completed cycle, else 0.
 */
int ct_meter_push(struct ct_meter *m, u16 v, u16 i, struct ct_reading *out)
{
	u16 pair[2] = { v, i };
	int ready;

	ct_meter_feed(m, pair, 1, out, &ready);
	return ready;
}
