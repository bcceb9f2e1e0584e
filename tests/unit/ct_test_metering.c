// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of the CT sensor's metering math
 * (drivers/iio/ct/ct_metering.c, compiled unchanged for userspace).
 *
 * Every expectation comes from the waveform definition in ct_model.h
 * (amplitudes, phases, harmonics), never from the code under test.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gm_harness.h"
#include "ct_model.h"
#include "../../drivers/iio/ct/ct_compat.h"
#include "../../drivers/iio/ct/ct_costab.h"

#define PPM(x)	((long)lround((x) * 1e6))

static const double iec_fracs[] = { 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 1.2 };

/* The IEC 62053-21/22/23 points for one frequency, with or without harmonics. */
static int iec_sweep(struct __test_metadata *_metadata, double f, double fs,
		     int harmonics)
{
	double phis[] = { 0, acos(0.5), -acos(0.8) };
	/* the meter is calibrated at no load first (current-rms-offset) */
	int32_t bias = ctm_no_load_bias(f, fs, harmonics, 0.5, 99);
	int pi, ci;

	TH_LOG("no-load calibration: current mean-square bias %d (%.3f code^2)",
	       bias, bias / 65536.0);

	for (pi = 0; pi < 3; pi++) {
		for (ci = 0; ci < 8; ci++) {
			struct ctm_sim s;
			struct ct_meter m;
			struct ct_meter_cfg cfg;
			struct ctm_result r;
			double frac = iec_fracs[ci];
			long lim_p = frac < 0.05 ? 2000 : 1000;	/* ppm */

			ctm_setup(&s, f, fs, frac, phis[pi], harmonics, 0.5,
				  17 + ci + 8 * pi);
			ctm_cfg(&cfg, fs);
			cfg.i_ms_bias = bias;
			ASSERT_EQ(0, ct_meter_init(&m, &cfg));
			/*
			 * Below 5 % of Ib the signal is a code or two: measure
			 * longer (40 s instead of 10 s), as IEC test durations
			 * do, so the noise averages out of the RMS too.
			 */
			ctm_run(&s, &m, frac < 0.05 ? 2000 : 500, &r);
			TH_LOG("f %.1f fs %.0f h %d PF %.2f I %5.1f%%: Ep %+.4f%% Eq %+.4f%% Irms %+.4f%% Vrms %+.4f%% f %.4f Hz",
			       f, fs, harmonics, cos(phis[pi]), frac * 100,
			       r.e_p_err * 100, r.e_q_err * 100,
			       r.i_err * 100, r.v_err * 100, r.f_err_max);
			EXPECT_LE(labs(PPM(r.e_p_err)), lim_p);
			EXPECT_LE(labs(PPM(r.e_q_err)), 2000);
			EXPECT_LE(labs(PPM(r.i_err)), 500);
			EXPECT_LE(labs(PPM(r.v_err)), 500);
			EXPECT_LE(PPM(r.f_err_max), 10000);	/* 0.01 Hz */
		}
	}
	return 0;
}

TEST(iec_49_5hz)	{ iec_sweep(_metadata, 49.5, 4000, 0); }
TEST(iec_50hz)		{ iec_sweep(_metadata, 50.0, 4000, 0); }
TEST(iec_50_5hz)	{ iec_sweep(_metadata, 50.5, 4000, 0); }
TEST(iec_60hz)		{ iec_sweep(_metadata, 60.0, 4000, 0); }
TEST(iec_49_5hz_harm)	{ iec_sweep(_metadata, 49.5, 4000, 1); }
TEST(iec_50hz_harm)	{ iec_sweep(_metadata, 50.0, 4000, 1); }
TEST(iec_50_5hz_harm)	{ iec_sweep(_metadata, 50.5, 4000, 1); }
TEST(iec_60hz_harm)	{ iec_sweep(_metadata, 60.0, 4000, 1); }
TEST(iec_50hz_8k)	{ iec_sweep(_metadata, 50.0, 8000, 0); }
TEST(iec_60hz_harm_8k)	{ iec_sweep(_metadata, 60.0, 8000, 1); }

/* Per-cycle RMS at and above basic current: every single cycle within 0.05%. */
TEST(rms_per_cycle)
{
	double fr[] = { 0.5, 1.0, 1.2 };
	int k;

	for (k = 0; k < 3; k++) {
		struct ctm_sim s;
		struct ct_meter m;
		struct ct_meter_cfg cfg;
		struct ctm_result r;

		ctm_setup(&s, 50.0, 4000, fr[k], acos(0.5), 1, 0.5, 3 + k);
		ctm_cfg(&cfg, 4000);
		ASSERT_EQ(0, ct_meter_init(&m, &cfg));
		ctm_run(&s, &m, 200, &r);
		EXPECT_LE(PPM(r.v_err_max), 500);
		EXPECT_LE(PPM(r.i_err_max), 500);
		EXPECT_LE(PPM(r.pf_err_max), 1000);
	}
}

/* Noise-floor removal through the mean-square bias makes 1% Ib RMS exact. */
TEST(rms_noise_floor)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	struct ctm_result r;
	/* noise power of the model: Gaussian 0.5 LSB plus quantisation 1/12 */
	double floor_lsb2 = 0.5 * 0.5 + 1.0 / 12;

	ctm_setup(&s, 50.0, 4000, 0.01, 0, 0, 0.5, 99);
	ctm_cfg(&cfg, 4000);
	cfg.i_ms_bias = -(s32)lround(floor_lsb2 * 65536);
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	ctm_run(&s, &m, 2000, &r);
	TH_LOG("1%% Ib with noise-floor bias: Irms %+.4f%%", r.i_err * 100);
	EXPECT_LE(labs(PPM(r.i_err)), 500);
}

/* Idle line: voltage present, no current: exactly 0 W and no energy. */
TEST(idle_line_reads_zero)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	struct ct_reading r;
	uint16_t v, i;
	int cycles = 0;

	ctm_setup(&s, 50.0, 4000, 0.0, 0, 0, 0.5, 5);
	s.i.n = 0;		/* no current at all, only ADC noise */
	ctm_cfg(&cfg, 4000);
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	while (cycles < 300) {
		ctm_pair(&s, &v, &i);
		if (!ct_meter_push(&m, v, i, &r))
			continue;
		cycles++;
		EXPECT_EQ(0, r.p_mw);
		EXPECT_EQ(0, r.q_mvar);
		EXPECT_EQ(0u, r.s_mva);
		EXPECT_EQ(0u, r.i_rms_ua);
		EXPECT_LT(labs((long)r.v_rms_uv - 230000000L), 115000L);
	}
	EXPECT_EQ(0ull, (unsigned long long)m.e_import_mj);
	EXPECT_EQ(0ull, (unsigned long long)m.e_export_mj);
	EXPECT_EQ(0ll, (long long)m.e_reactive_mj);
	EXPECT_EQ(0ull, (unsigned long long)m.rem_imp_nj);
	EXPECT_EQ(0ull, (unsigned long long)m.rem_exp_nj);
}

/* Export (current in antiphase) counts as exported energy, negative power. */
static void export_case(struct __test_metadata *_metadata, bool reverse)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	struct ctm_result r;
	double p;

	ctm_setup(&s, 50.0, 4000, 0.5, M_PI, 0, 0.5, 11);
	p = ctm_active(&s);
	ASSERT_LT(p, 0);
	ctm_cfg(&cfg, 4000);
	cfg.reverse = reverse;
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	ctm_run(&s, &m, 200, &r);
	if (!reverse) {
		EXPECT_LE(labs(PPM(r.e_p_err)), 1000);
		EXPECT_EQ(0ull, (unsigned long long)m.e_import_mj);
		EXPECT_GT(m.e_export_mj, 0ull);
		EXPECT_LT(m.last.p_mw, 0);
		EXPECT_LT(m.last.pf_micro, -999000);
	} else {
		/* clamped the wrong way round: the same line reads as import */
		EXPECT_EQ(0ull, (unsigned long long)m.e_export_mj);
		EXPECT_GT(m.e_import_mj, 0ull);
		EXPECT_LE(labs(lround(m.last.p_mw * 1e-3 + p)), (long)(-p * 0.001) + 1);
	}
}

TEST(export_energy)	{ export_case(_metadata, false); }
TEST(reversed_ct)	{ export_case(_metadata, true); }

/* A CT leading by 6 degrees: compensated it meets class, uncompensated not. */
TEST(ct_phase_lead)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	struct ctm_result r;

	ctm_setup(&s, 50.0, 4000, 1.0, acos(0.5), 0, 0.5, 21);
	s.lead = 6.0 * M_PI / 180;
	ctm_cfg(&cfg, 4000);
	cfg.phase_mdeg = 6000;
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	ctm_run(&s, &m, 200, &r);
	TH_LOG("6 deg lead compensated: Ep %+.4f%% Eq %+.4f%%",
	       r.e_p_err * 100, r.e_q_err * 100);
	EXPECT_LE(labs(PPM(r.e_p_err)), 1000);
	EXPECT_LE(labs(PPM(r.e_q_err)), 2000);

	ctm_setup(&s, 50.0, 4000, 1.0, acos(0.5), 0, 0.5, 21);
	s.lead = 6.0 * M_PI / 180;
	cfg.phase_mdeg = 0;
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	ctm_run(&s, &m, 200, &r);
	/* cos(60 - 6) / cos(60) - 1 = +17.6%: the test can see the lead */
	EXPECT_GT(PPM(r.e_p_err), 100000);
}

/* An ADC error discards that cycle only, and is counted. */
TEST(discard_cycle)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	struct ct_reading r;
	uint16_t v, i;
	int got = 0, k;
	u32 seq_before = 0;

	ctm_setup(&s, 50.0, 4000, 1.0, 0, 0, 0.5, 8);
	ctm_cfg(&cfg, 4000);
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	while (got < 10) {
		ctm_pair(&s, &v, &i);
		if (ct_meter_push(&m, v, i, &r)) {
			got++;
			seq_before = r.seq;
		}
	}
	/* a read fails 20 pairs into the next cycle: the pair is skipped */
	for (k = 0; k < 20; k++) {
		ctm_pair(&s, &v, &i);
		ASSERT_EQ(0, ct_meter_push(&m, v, i, &r));
	}
	ct_meter_discard(&m);
	ctm_pair(&s, &v, &i);
	got = 0;
	while (!got) {
		ctm_pair(&s, &v, &i);
		got = ct_meter_push(&m, v, i, &r);
	}
	EXPECT_EQ(1u, m.discarded);
	EXPECT_EQ(seq_before + 2, r.seq);	/* one cycle missing */
	EXPECT_LT(labs((long)r.i_rms_ua - 10000000L), 5000L);
}

/* No voltage: windows end on the length limit and read 0 Hz. */
TEST(no_voltage)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	struct ct_reading r;
	uint16_t v, i;
	int got = 0, n = 0;

	ctm_setup(&s, 50.0, 4000, 1.0, 0, 0, 0.5, 9);
	s.v.n = 0;
	ctm_cfg(&cfg, 4000);
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	while (n++ < 4000 * 2) {
		ctm_pair(&s, &v, &i);
		if (ct_meter_push(&m, v, i, &r)) {
			got++;
			EXPECT_EQ(0u, r.freq_uhz);
			EXPECT_LT(r.v_rms_uv, 1000000u);	/* < 1 V: noise */
		}
	}
	/* 2 s at one window per 1/CT_DETECT_HZ_MIN s */
	EXPECT_GE(got, 2 * CT_DETECT_HZ_MIN - 2);
}

TEST(bad_config_is_einval)
{
	struct ct_meter_cfg cfg, bad;
	struct ct_meter m;

	ctm_cfg(&cfg, 4000);
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	bad = cfg;
	bad.fs = 999;
	EXPECT_EQ(-EINVAL, ct_meter_set_cfg(&m, &bad));
	bad = cfg;
	bad.fs = 16001;
	EXPECT_EQ(-EINVAL, ct_meter_init(&m, &bad));
	bad = cfg;
	bad.phase_mdeg = 20001;
	EXPECT_EQ(-EINVAL, ct_meter_set_cfg(&m, &bad));
	bad = cfg;
	bad.i_gain_na = 0;
	EXPECT_EQ(-EINVAL, ct_meter_set_cfg(&m, &bad));
	bad = cfg;
	bad.skew_q16 = 65536;
	EXPECT_EQ(-EINVAL, ct_meter_set_cfg(&m, &bad));
	/* nothing changed by the rejected writes */
	EXPECT_EQ(4000u, m.cfg.fs);
}

/* The committed sine/cosine table is what its header says it is. */
TEST(costab_matches_formula)
{
	int k, bad = 0;

	for (k = 0; k < CT_TAB_SIZE; k++) {
		double a = 2.0 * M_PI * k / CT_TAB_SIZE;

		if (ct_cos_q14(k) != (int)lround(16384.0 * cos(a)) ||
		    ct_sin_q14(k) != (int)lround(16384.0 * sin(a)))
			bad++;
	}
	EXPECT_EQ(0, bad);
}

/*
 * The hot loop sums products in packed 32-bit lanes (ct_lanes_unpack()):
 * at their bound, |v| = |i| = 4095 codes from the DC estimate and the
 * reference at full scale, 1000 pairs (many lane flushes, odd tails)
 * must give every per-term sum exactly, with both signs in both lanes.
 */
TEST(packed_lanes_at_full_scale)
{
	static const u32 phases[] = { 0, 1U << 30, 3U << 29, 5U << 29, 7U << 29 };
	static const unsigned int blocks[] = { 1, 7, 31, 32, 33, 64, 1000 };
	unsigned int k, b;

	for (k = 0; k < sizeof(phases) / sizeof(phases[0]); k++) {
		for (b = 0; b < sizeof(blocks) / sizeof(blocks[0]); b++) {
			u32 idx = phases[k] >> (32 - CT_TAB_BITS);
			s64 c = ct_cos_q14(idx), sn = ct_sin_q14(idx);
			struct ct_meter_cfg cfg;
			struct ct_meter m;
			struct ct_reading r;
			u16 pairs[2 * 1000];
			unsigned int n = 0, j;
			int ready;
			/* v = -4095 (0 against a DC of 4095, armed: no crossing), i = +4095 */
			s64 v = -4095, i = 4095;

			ctm_cfg(&cfg, 4000);
			ASSERT_EQ(0, ct_meter_init(&m, &cfg));
			m.dcv = 4095;
			m.dci = 0;
			m.ip = -4095;
			m.armed = 1;
			m.phase = phases[k];
			m.step = 0;
			m.n_max = 100000;
			for (j = 0; j < 1000; j++) {
				pairs[2 * j] = 0;
				pairs[2 * j + 1] = 4095;
			}
			while (n < 1000) {
				unsigned int len = 1000 - n < blocks[b] ? 1000 - n : blocks[b];

				ASSERT_EQ(len, ct_meter_feed(&m, pairs + 2 * n, len, &r, &ready));
				ASSERT_EQ(0, ready);
				n += len;
			}
			EXPECT_EQ(1000 * v, m.acc[CT_T_V]);
			EXPECT_EQ(1000 * i, m.acc[CT_T_I]);
			EXPECT_EQ(1000 * v * v, m.acc[CT_T_VV]);
			EXPECT_EQ(1000 * i * i, m.acc[CT_T_II]);
			EXPECT_EQ(1000 * v * i, m.acc[CT_T_VI]);
			/* the first pair's previous current is -4095, then +4095 */
			EXPECT_EQ(v * -4095 + 999 * v * i, m.acc[CT_T_VL]);
			EXPECT_EQ(1000 * v * c, m.acc[CT_T_VC]);
			EXPECT_EQ(1000 * v * sn, m.acc[CT_T_VS]);
			EXPECT_EQ(1000 * i * c, m.acc[CT_T_IC]);
			EXPECT_EQ(1000 * i * sn, m.acc[CT_T_IS]);
		}
	}
}

TEST(isqrt)
{
	uint64_t x = 0x243f6a8885a308d3ULL;
	int k;

	EXPECT_EQ(0ull, (unsigned long long)ct_isqrt64(0));
	EXPECT_EQ(1ull, (unsigned long long)ct_isqrt64(3));
	EXPECT_EQ(2ull, (unsigned long long)ct_isqrt64(4));
	EXPECT_EQ(4294967295ull, (unsigned long long)ct_isqrt64(~0ULL));
	for (k = 0; k < 100000; k++) {
		uint64_t r;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		r = ct_isqrt64(x >> (k % 40));
		ASSERT_LE((unsigned __int128)r * r, (unsigned __int128)(x >> (k % 40)));
		ASSERT_GT((unsigned __int128)(r + 1) * (r + 1),
			  (unsigned __int128)(x >> (k % 40)));
	}
}

/*
 * Energy counters: 64-bit millijoule. At 100 kW (far above a CT input)
 * 2^64 mJ lasts 5.8 million years; check a cycle added on top of a counter
 * near 50 years of 23 kW keeps exact millijoules.
 */
TEST(energy_counter_headroom)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	struct ctm_result r;
	uint64_t start = 23000ULL * 1000 * 3600 * 24 * 365 * 50;

	ctm_setup(&s, 50.0, 4000, 1.0, 0, 0, 0.5, 4);
	ctm_cfg(&cfg, 4000);
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	m.e_import_mj = start;
	ctm_run(&s, &m, 100, &r);
	EXPECT_GT(m.e_import_mj, start);
	EXPECT_LE(labs(PPM(r.e_p_err)), 1000);
}

/*
 * The widest input the driver accepts (CT_ADC_BITS_MAX, 12 bits): both
 * channels at full scale, codes 0..4095. The fundamental power is then
 * A_v * A_i * 2^15 ~ 2^37 in Q16 code^2, and its Q24 phase correction
 * stays below 2^61 (at 13 bits it would reach 2^63 and flip sign: see
 * ct_metering.h). The ct_test_metering_ubsan build of this file traps on
 * any signed overflow.
 */
static void full_scale_case(struct __test_metadata *_metadata, double phi)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	struct ctm_result r;
	const double half = CT_CODE_MAX / 2.0;	/* 2047.5 codes */

	ctm_setup(&s, 50.0, 4000, 1.0, phi, 0, 0, 31);
	s.v.dc = half;
	s.i.dc = half;
	s.v.c[0].amp = half * CTM_V_GAIN_NV * 1e-9;	/* peak, V */
	s.i.c[0].amp = half * CTM_I_GAIN_NA * 1e-9;	/* peak, A */
	ctm_cfg(&cfg, 4000);
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	ctm_run(&s, &m, 200, &r);
	TH_LOG("full scale, PF %.2f: Ep %+.4f%% Eq %+.4f%% Irms %+.4f%% Vrms %+.4f%% f %.4f Hz, P %d mW",
	       cos(phi), r.e_p_err * 100, r.e_q_err * 100, r.i_err * 100,
	       r.v_err * 100, r.f_err_max, m.last.p_mw);
	EXPECT_LE(labs(PPM(r.e_p_err)), 1000);
	EXPECT_LE(labs(PPM(r.e_q_err)), 2000);
	EXPECT_LE(labs(PPM(r.i_err)), 500);
	EXPECT_LE(labs(PPM(r.v_err)), 500);
	EXPECT_LE(PPM(r.f_err_max), 10000);
	/* the last cycle alone, from the waveform: P = V I cos(phi) / 2 */
	EXPECT_LT(fabs(m.last.p_mw * 1e-3 / (ctm_active(&s)) - 1), 0.001);
	EXPECT_LT(fabs(m.last.q_mvar * 1e-3 - ctm_reactive1(&s)),
		  0.002 * ctm_rms(&s.v) * ctm_rms(&s.i));
}

TEST(full_scale_12bit_pf1)	{ full_scale_case(_metadata, 0); }
TEST(full_scale_12bit_pf05)	{ full_scale_case(_metadata, acos(0.5)); }
TEST(full_scale_12bit_export)	{ full_scale_case(_metadata, M_PI - acos(0.8)); }

/*
 * Full-scale square waves on both channels, in phase and converted at the
 * same instant (no skew): the largest fundamental 12-bit codes can carry
 * (4/pi of the sine's). Every cycle must read V = I = 2047.5 codes rms,
 * P = S = V * I, Q = 0, PF 1: no overflow anywhere.
 */
TEST(full_scale_12bit_square)
{
	const double half = CT_CODE_MAX / 2.0;
	const double vrms = half * CTM_V_GAIN_NV * 1e-9;
	const double irms = half * CTM_I_GAIN_NA * 1e-9;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	struct ct_reading r;
	int n, got = 0;

	ctm_cfg(&cfg, 4000);
	cfg.skew_q16 = 0;
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	for (n = 0; n < 4000 * 4; n++) {
		/* 50 Hz at 4000 pairs/s: 40 samples high, 40 low */
		u16 x = (n % 80) < 40 ? CT_CODE_MAX : 0;

		if (!ct_meter_push(&m, x, x, &r) || n < 4000)
			continue;
		got++;
		EXPECT_LT(fabs(r.v_rms_uv * 1e-6 / vrms - 1), 0.001);
		EXPECT_LT(fabs(r.i_rms_ua * 1e-6 / irms - 1), 0.001);
		EXPECT_LT(fabs(r.s_mva * 1e-3 / (vrms * irms) - 1), 0.002);
		EXPECT_LT(fabs(r.p_mw * 1e-3 / (vrms * irms) - 1), 0.001);
		EXPECT_LT(fabs(r.q_mvar * 1e-3), 0.002 * vrms * irms);
		EXPECT_GT(r.pf_micro, 999000);
		EXPECT_LT(fabs(r.freq_uhz * 1e-6 - 50.0), 0.01);
	}
	EXPECT_GE(got, 145);	/* 3 s of 50 Hz */
	EXPECT_GT(m.e_import_mj, 0ull);
	EXPECT_EQ(0ull, (unsigned long long)m.e_export_mj);
}

TEST_HARNESS_MAIN
