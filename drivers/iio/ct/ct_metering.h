/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Fixed-point single-phase metering math of the gridmeter CT sensor.
 *
 * The same source compiles in the kernel (drivers/iio/ct/ct_sensor.c) and in
 * userspace (tests/unit, bench); see ct_compat.h for the few helpers that
 * differ. No floating point anywhere.
 */
#ifndef CT_METERING_H
#define CT_METERING_H

#include "ct_compat.h"

#define CT_FS_MIN		1000	/* sample pairs per second */
#define CT_FS_MAX		16000
#define CT_LINE_HZ_MIN		40	/* readings are published for 40..70 Hz */
#define CT_LINE_HZ_MAX		70
#define CT_LINE_TOL_UHZ		50000	/* measurement tolerance at those limits */
#define CT_DETECT_HZ_MIN	30	/* cycles are measured from 30 to 90 Hz */
#define CT_DETECT_HZ_MAX	90
#define CT_NL_SIGMAS		6	/* anti-creep: significance of the power */
#define CT_NL_CYCLES		50	/* anti-creep: cycles decided together */
#define CT_PHASE_MDEG_MAX	20000	/* |CT phase lead| accepted, millidegrees */
#define CT_WARMUP_CYCLES	2	/* cycles after (re)sync that are not reported */
/*
 * Widest ADC code the math takes: the fundamental power of a cycle, Q16
 * code^2, reaches A_v * A_i * 2^15 (amplitudes in codes) and is multiplied
 * by Q24 coefficients in 64 bits, so A_v * A_i must stay below 2^24. At 12
 * bits a full-scale sine gives 2^22 (a full-scale square wave 2^22.7). A
 * driver refuses wider channels at probe and codes above CT_CODE_MAX at run
 * time.
 */
#define CT_ADC_BITS_MAX		12
#define CT_CODE_MAX		((1 << CT_ADC_BITS_MAX) - 1)

/**
 * struct ct_meter_cfg - calibration and acquisition parameters
 * @fs:		sample pairs per second, CT_FS_MIN..CT_FS_MAX
 * @skew_q16:	delay of the current conversion after the voltage conversion
 *		of the same pair, as a fraction of the pair period 1/@fs, Q16
 *		(0..65535). A multiplexed ADC read back to back gives
 *		conversion_time * fs.
 * @phase_mdeg:	phase lead of the current transformer at mains frequency,
 *		millidegrees (positive: the secondary current leads)
 * @i_gain_na:	primary current per ADC code, nanoamperes (burden, CT ratio,
 *		reference voltage and calibscale folded in)
 * @v_gain_nv:	primary voltage per ADC code, nanovolts
 * @i_ms_bias:	added to the current mean square, 1/65536 code^2 (a negative
 *		value removes the noise floor)
 * @v_ms_bias:	same for the voltage
 * @no_load_ua:	anti-creep: the fundamental current (coherent with the
 *		voltage, averaged over up to CT_NL_CYCLES cycles) below which
 *		the line is at no load: readings 0 A, 0 W, 0 var, no energy
 * @reverse:	current transformer clamped the wrong way round
 * @hyst:	zero-crossing hysteresis, ADC codes
 * @adc_bits:	ADC resolution (codes 0..2^@adc_bits - 1, at most
 *		CT_ADC_BITS_MAX): the DC estimates start at mid-scale
 */
struct ct_meter_cfg {
	u32 fs;
	u32 skew_q16;
	s32 phase_mdeg;
	u32 i_gain_na;
	u32 v_gain_nv;
	s32 i_ms_bias;
	s32 v_ms_bias;
	u32 no_load_ua;
	bool reverse;
	u32 hyst;
	u32 adc_bits;
};

/**
 * struct ct_reading - the result of one mains cycle
 * @i_rms_ua:	RMS current, microamperes
 * @v_rms_uv:	RMS voltage, microvolts
 * @p_mw:	active power, milliwatts; positive import, negative export
 * @q_mvar:	fundamental reactive power (IEC 62053-24), millivar; positive
 *		inductive
 * @s_mva:	apparent power V_rms * I_rms, millivoltampere
 * @pf_micro:	power factor P/S, millionths, signed like @p_mw
 * @freq_uhz:	line frequency, microhertz; 0 when no zero crossing was seen
 * @seq:	cycle sequence number since ct_meter_init()
 * @after_gap:	time since the previous reading was not measured (missed
 *		samples, an ADC error, a resynchronisation): its energy was
 *		estimated from the power of this cycle and the one before
 *
 * 64 bits wide: every calibration the driver accepts (up to 4.29 A and
 * 4.29 kV per code) fits, at any code the ADC can deliver.
 */
struct ct_reading {
	u64 i_rms_ua;
	u64 v_rms_uv;
	s64 p_mw;
	s64 q_mvar;
	u64 s_mva;
	s32 pf_micro;
	u32 freq_uhz;
	u32 seq;
	bool after_gap;
};

/* Per-term index into the accumulator arrays (see ct_metering.c). */
enum {
	CT_T_V, CT_T_I, CT_T_VV, CT_T_II, CT_T_VI, CT_T_VL,
	CT_T_VC, CT_T_VS, CT_T_IC, CT_T_IS,
	CT_NTERMS
};

/**
 * struct ct_meter - state of one current/voltage pair
 * @acc:	per-cycle sums of the terms (enum above), sample units
 * @dcv:	DC estimate of the voltage, ADC codes
 * @dci:	DC estimate of the current, ADC codes
 * @vp:		previous voltage sample, bias removed
 * @ip:		previous current sample, bias removed
 * @ipp:	current sample before @ip
 * @armed:	the voltage went below -@hyst since the last crossing
 * @phase:	phase of the fundamental reference, 2^32 per turn
 * @step:	reference advance per sample (from the previous cycle)
 * @n:		samples in the current cycle
 * @n_min:	fewer samples than this: not a mains cycle (70 Hz)
 * @n_max:	more samples than this: end the cycle (40 Hz)
 * @hyst:	zero-crossing hysteresis, ADC codes
 * @e_start:	share of the starting boundary segment, Q16 (see ct_edge())
 * @alpha_start: fraction of the sample period of the starting crossing, Q16
 * @synced:	the current cycle started at a zero crossing
 * @bad:	an ADC error hit the current cycle: discard it
 * @dc_moved:	the voltage DC estimate changed at the start of the cycle
 * @warmup:	cycles still to skip after (re)synchronisation
 * @pvc:	previous cycle's voltage phasor, real part (Q16 codes)
 * @pvs:	previous cycle's voltage phasor, imaginary part
 * @pl:		previous cycle's length, samples Q16
 * @pstep:	previous cycle's reference step
 * @pvalid:	@pvc, @pvs, @pl, @pstep can be used for the frequency
 * @cfg:	configuration
 * @phase_q30:	CT phase lead, radians Q30
 * @nl_codes:	@cfg.no_load_ua in ADC codes, Q16
 * @k_p:	power gain: nW = (Q16 code^2 * @k_p) >> @sh_p
 * @k_e:	energy gain: nJ = (Q16 code^2 samples * @k_e) >> @sh_e
 * @sh_p:	shift of @k_p
 * @sh_e:	shift of @k_e
 * @last:	the latest reading
 * @e_import_mj: active energy imported, millijoule
 * @e_export_mj: active energy exported, millijoule
 * @e_reactive_mj: net fundamental reactive energy, mvar*s
 * @rem_imp_nj:	imported energy not yet in @e_import_mj, nanojoule
 * @rem_exp_nj:	same for @e_export_mj
 * @rem_q_nj:	same for @e_reactive_mj
 * @cycles:	cycles ended (including warm-up and discarded ones)
 * @discarded:	cycles discarded because of ADC errors
 * @withheld:	cycles measured outside CT_LINE_HZ_MIN..CT_LINE_HZ_MAX: no
 *		reading published, energy integrated
 * @missed:	sample pairs never taken (ct_meter_gap())
 * @gap_ns:	time not covered by a measured cycle, nanoseconds: its energy
 *		is estimated (see @est_q16)
 * @est_q16:	unmeasured time whose energy waits for the next measured
 *		cycle, samples Q16: it is integrated at the mean of the power
 *		before and after it
 * @prev_p_nw:	registered active power of the last measured cycle, nW
 * @prev_q_nw:	same, reactive
 * @have_prev:	@prev_p_nw and @prev_q_nw are valid
 * @gap_flag:	a gap is waiting to be reported with the next reading
 * @nl_ep:	anti-creep window: active energy of its cycles, nJ
 * @nl_eq:	same, reactive, nvar s
 * @nl_zp:	sum of the cycles' fundamental active power, Q16 code^2
 * @nl_zq:	same, reactive
 * @nl_var:	sum of the variances of those powers from the noise, Q16
 *		code^4
 * @nl_v1:	sum of the cycles' fundamental RMS voltage, Q16 codes
 * @nl_n:	cycles in the window
 * @loaded:	the last anti-creep decision found a load
 * @cycle_loaded: the last cycle carried a load on its own
 *
 * Not locked: the owner serialises every call (the driver calls it under its
 * own lock, from its sampling thread and from sysfs).
 */
struct ct_meter {
	s64 acc[CT_NTERMS];
	s64 dcv, dci;
	s64 vp, ip, ipp;
	u32 armed;
	u32 phase, step;
	u32 n, n_min, n_max;
	s64 hyst;
	s64 e_start[CT_NTERMS];
	u32 alpha_start;
	bool synced;
	bool bad;
	bool dc_moved;
	u32 warmup;
	s64 pvc, pvs, pl;
	u32 pstep;
	bool pvalid;
	struct ct_meter_cfg cfg;
	s64 phase_q30;
	u64 nl_codes;
	u64 k_p;
	u64 k_e;
	u32 sh_p, sh_e;
	struct ct_reading last;
	u64 e_import_mj, e_export_mj;
	s64 e_reactive_mj;
	u64 rem_imp_nj, rem_exp_nj;
	s64 rem_q_nj;
	u32 cycles, discarded;
	u32 withheld;
	u64 missed;
	u64 gap_ns;
	u64 est_q16;
	s64 prev_p_nw, prev_q_nw;
	bool have_prev;
	bool gap_flag;
	s64 nl_ep, nl_eq;
	s64 nl_zp, nl_zq;
	u64 nl_var;
	u64 nl_v1;
	u32 nl_n;
	bool loaded;
	bool cycle_loaded;
};

int ct_meter_check_cfg(const struct ct_meter_cfg *cfg);
int ct_meter_init(struct ct_meter *m, const struct ct_meter_cfg *cfg);
int ct_meter_set_cfg(struct ct_meter *m, const struct ct_meter_cfg *cfg);
int ct_meter_push(struct ct_meter *m, u16 v, u16 i, struct ct_reading *out);
unsigned int ct_meter_feed(struct ct_meter *m, const u16 *pairs,
			   unsigned int n, struct ct_reading *out, int *ready);
void ct_meter_discard(struct ct_meter *m);
void ct_meter_gap(struct ct_meter *m, u32 missed);
u64 ct_isqrt64(u64 x);
u32 ct_default_no_load_ua(u32 i_gain_na);

#endif /* CT_METERING_H */
