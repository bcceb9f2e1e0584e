// SPDX-License-Identifier: GPL-2.0
/*
 * Host tests of the CT sensor's metering math under the faults of issue 11:
 * missed samples (the sampler fell behind), line frequencies at and beyond
 * the published range, no-load noise (creep) and the starting current, and
 * calibrations whose readings do not fit 32 bits.
 *
 * Every expectation comes from the waveform definition (ct_model.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gm_harness.h"
#include "ct_model.h"

/* The simulated front end of the guests (gm_sim_adc): 3.3 V / 4096 per code. */
#define SIM_I_GAIN_NA	73242188u	/* CT 2000:1 on 22 ohm */
#define SIM_V_GAIN_NV	241699219u	/* ratio 300 */

static double energy_j(const struct ct_meter *m)
{
	return ((double)m->e_import_mj * 1e6 + m->rem_imp_nj -
		((double)m->e_export_mj * 1e6 + m->rem_exp_nj)) * 1e-9;
}

/*
 * Feed pairs until the meter ends a cycle (published or not); return the
 * sample index (time) of that boundary.
 */
static long to_boundary(struct ctm_sim *s, struct ct_meter *m, long *published)
{
	u32 c = m->cycles;
	struct ct_reading r;
	uint16_t v, i;

	while (m->cycles == c) {
		ctm_pair(s, &v, &i);
		*published += ct_meter_push(m, v, i, &r);
	}
	return s->n;
}

/*
 * 10 A at PF 0.8 for 10 s, with a stall of @gap_ms in the middle: the
 * samples the sampler did not take are reported with ct_meter_gap(). The
 * energy between two cycle ends must be P * t, the gap included; after
 * @step_ms of the gap the current changes to @frac2 of Ib, so the gap's
 * true energy is known too.
 */
static void gap_case(struct __test_metadata *_metadata, double gap_ms,
		     double step_ms, double frac2)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	long pub = 0, n0, n1, n_gap, n_step;
	double p1, p2, e0, e1, want;
	uint16_t v, i;
	struct ct_reading r;
	u64 gap0;

	ctm_setup(&s, 50.0, 4000, 1.0, acos(0.8), 0, 0.5, 41);
	p1 = ctm_active(&s);
	ctm_cfg(&cfg, 4000);
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	while (s.n < 4000)
		to_boundary(&s, &m, &pub);
	n0 = to_boundary(&s, &m, &pub);
	e0 = energy_j(&m);
	/* 5 s, then the stall: the ADC is not read for gap_ms */
	while (s.n < n0 + 20000 + 37) {
		ctm_pair(&s, &v, &i);
		ct_meter_push(&m, v, i, &r);
	}
	gap0 = m.gap_ns;
	n_gap = lround(gap_ms * 4.0);
	n_step = lround(step_ms * 4.0);
	s.n += n_step;
	s.i.c[0].amp *= frac2;
	p2 = ctm_active(&s);
	s.n += n_gap - n_step;
	ct_meter_gap(&m, (u32)n_gap);
	while (s.n < n0 + 40000)
		to_boundary(&s, &m, &pub);
	n1 = to_boundary(&s, &m, &pub);
	e1 = energy_j(&m);
	/* P1 up to the change, P2 after it */
	want = p1 * (n0 + 20037 + n_step - n0) / 4000.0 +
	       p2 * (n1 - (n0 + 20037 + n_step)) / 4000.0;
	TH_LOG("stall %.0f ms (load %.0f%% -> %.0f%% at %.0f ms): energy %.3f J, expected %.3f J: %+.4f%%; missed %llu, gap %.1f ms",
	       gap_ms, 100.0, frac2 * 100, step_ms, e1 - e0, want,
	       ((e1 - e0) / want - 1) * 100, (unsigned long long)m.missed,
	       (m.gap_ns - gap0) / 1e6);
	EXPECT_LT(fabs((e1 - e0) / want - 1), 0.001);
	EXPECT_EQ((u64)n_gap, m.missed);
	/* the gap, and at most the two cycles it broke and the resync */
	EXPECT_GE(m.gap_ns - gap0, (u64)(gap_ms * 1e6));
	EXPECT_LE(m.gap_ns - gap0, (u64)(gap_ms * 1e6 + 3 * 20e6));
}

TEST(stall_300ms_energy_integrated)	{ gap_case(_metadata, 300, 150, 1.0); }
TEST(stall_1s_load_change_in_the_middle) { gap_case(_metadata, 1000, 500, 0.5); }
TEST(stall_2_pairs)			{ gap_case(_metadata, 0.5, 0.25, 1.0); }

/*
 * A stall can end anywhere in a cycle. The driver hands the pair it read
 * at the end of a stall to the meter after ct_meter_gap(), as here: handed
 * before it, that pair (a sample from after the gap) ends the broken cycle
 * at a false crossing whose power prices half the gap: the guests' stall
 * test lost 5 to 6 % over 4 s about one run in three, and this sweep with
 * the pair fed first fails 14 of its 108 stalls, by up to -9.8 % over 3 s.
 */
TEST(stall_ending_anywhere_in_the_cycle)
{
	double worst = 0;

	for (int off = 0; off < 80; off += 3) {
		for (int gq = 1200; gq < 1400; gq += 53) {
			struct ctm_sim s;
			struct ct_meter m;
			struct ct_meter_cfg cfg;
			long pub = 0, n0, n1;
			double p, e0, e1, rel;
			struct ct_reading r;
			uint16_t v, i;

			ctm_setup(&s, 50.0, 4000, 1.0, acos(0.9), 0, 1.0, 7 + off);
			p = ctm_active(&s);
			ctm_cfg(&cfg, 4000);
			ASSERT_EQ(0, ct_meter_init(&m, &cfg));
			while (s.n < 4000)
				to_boundary(&s, &m, &pub);
			n0 = to_boundary(&s, &m, &pub);
			e0 = energy_j(&m);
			while (s.n < n0 + 2000 + off) {
				ctm_pair(&s, &v, &i);
				ct_meter_push(&m, v, i, &r);
			}
			/* gq pairs not taken; the next one read at the end of the stall */
			s.n += gq;
			ct_meter_gap(&m, (u32)gq);
			while (s.n < n0 + 12000)
				to_boundary(&s, &m, &pub);
			n1 = to_boundary(&s, &m, &pub);
			e1 = energy_j(&m);
			rel = (e1 - e0) / (p * (n1 - n0) / 4000.0) - 1;
			if (fabs(rel) > fabs(worst))
				worst = rel;
			EXPECT_LT(fabs(rel), 0.001) TH_LOG("stall of %d pairs %d pairs into the cycle: %+.3f%%",
							   gq, off, rel * 100);
		}
	}
	TH_LOG("stalls of 300-350 ms ending at 27 points of the cycle: worst %+.4f%% of P * t",
	       worst * 100);
}

/*
 * An ADC error: the pair is missing and the cycle discarded; its time is
 * estimated, so the energy over the error is still right.
 */
TEST(read_error_time_estimated)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	long pub = 0, n0, n1;
	double p, e0, e1;
	uint16_t v, i;
	struct ct_reading r;

	ctm_setup(&s, 50.0, 4000, 1.0, 0, 0, 0.5, 43);
	p = ctm_active(&s);
	ctm_cfg(&cfg, 4000);
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	while (s.n < 4000)
		to_boundary(&s, &m, &pub);
	n0 = to_boundary(&s, &m, &pub);
	e0 = energy_j(&m);
	for (int k = 0; k < 30; k++) {
		ctm_pair(&s, &v, &i);
		ct_meter_push(&m, v, i, &r);
	}
	ctm_pair(&s, &v, &i);		/* this read fails */
	ct_meter_discard(&m);
	while (s.n < n0 + 8000)
		to_boundary(&s, &m, &pub);
	n1 = to_boundary(&s, &m, &pub);
	e1 = energy_j(&m);
	EXPECT_EQ(1u, m.discarded);
	EXPECT_LT(fabs((e1 - e0) / (p * (n1 - n0) / 4000.0) - 1), 0.001);
}

/*
 * 35..75 Hz in 0.5 Hz steps, 40.0 and 70.0 included, at both sampling
 * rates, one meter through the whole sweep (never re-initialised): inside
 * 40..70 Hz every cycle is published, outside none is (each counted in
 * withheld); the energy is right at every step, and back at 50 Hz the
 * readings resume at once.
 */
static void sweep(struct __test_metadata *_metadata, double fs)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	double worst = 0;

	ctm_cfg(&cfg, fs);
	ctm_setup(&s, 50.0, fs, 1.0, acos(0.8), 0, 0.5, 51);
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	for (int k = 0; k <= 81; k++) {
		double f = k < 81 ? 35.0 + 0.5 * k : 50.0;
		bool inside = f >= 40.0 && f <= 70.0;
		long pub = 0, n0, n1, cyc;
		u32 w0, c0;
		double e0, e1, p, err;

		s.f = f;
		p = ctm_active(&s);
		/* 0.5 s to settle on the new frequency */
		for (long n = s.n + (long)fs / 2; s.n < n;)
			to_boundary(&s, &m, &pub);
		n0 = to_boundary(&s, &m, &pub);
		e0 = energy_j(&m);
		w0 = m.withheld;
		c0 = m.cycles;
		pub = 0;
		while (s.n < n0 + 2 * (long)fs)
			to_boundary(&s, &m, &pub);
		n1 = to_boundary(&s, &m, &pub);
		e1 = energy_j(&m);
		cyc = m.cycles - c0;
		err = (e1 - e0) / (p * (n1 - n0) / fs) - 1;
		worst = fmax(worst, fabs(err));
		TH_LOG("fs %5.0f  %4.1f Hz: %3ld cycles, %3ld published, %3u withheld, energy %+.4f%%",
		       fs, f, cyc, pub, m.withheld - w0, err * 100);
		EXPECT_LT(fabs(err), 0.001);
		if (inside) {
			/* every cycle, but the one the DC estimate moved at */
			EXPECT_GE(pub, cyc - 1);
			EXPECT_EQ(0u, m.withheld - w0);
		} else {
			EXPECT_EQ(0, pub);
			EXPECT_EQ((u32)cyc, m.withheld - w0);
		}
	}
	TH_LOG("fs %.0f: worst energy error %.4f%%", fs, worst * 100);
}

TEST(frequency_sweep_4000)	{ sweep(_metadata, 4000); }
TEST(frequency_sweep_8000)	{ sweep(_metadata, 8000); }

/*
 * One hour of no-load noise at 115 % Un on the guests' front end (73 mA
 * and 242 mV per code), with the default no-load threshold: nothing may
 * reach either register, nor the reactive one.
 */
static void creep_case(struct __test_metadata *_metadata, double noise)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	struct ct_reading r;
	long pairs = 4000L * 3600, shown = 0;
	uint16_t v, i;

	ctm_setup(&s, 50.0, 4000, 0, 0, 0, noise, 61);
	s.i.n = 0;
	s.v.c[0].amp *= 1.15;
	ctm_cfg(&cfg, 4000);
	cfg.i_gain_na = SIM_I_GAIN_NA;
	cfg.no_load_ua = ct_default_no_load_ua(SIM_I_GAIN_NA);
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	while (s.n < pairs) {
		ctm_pair(&s, &v, &i);
		if (ct_meter_push(&m, v, i, &r) && (r.p_mw || r.i_rms_ua))
			shown++;
	}
	TH_LOG("1 h of no-load noise (%.1f LSB) at 115%% Un: import %llu mJ + %llu nJ, export %llu mJ + %llu nJ, reactive %lld mvar s, %ld cycles not reading zero",
	       noise, (unsigned long long)m.e_import_mj,
	       (unsigned long long)m.rem_imp_nj,
	       (unsigned long long)m.e_export_mj,
	       (unsigned long long)m.rem_exp_nj, (long long)m.e_reactive_mj,
	       shown);
	EXPECT_EQ(0ull, (unsigned long long)(m.e_import_mj + m.rem_imp_nj));
	EXPECT_EQ(0ull, (unsigned long long)(m.e_export_mj + m.rem_exp_nj));
	EXPECT_EQ(0ll, (long long)m.e_reactive_mj);
	EXPECT_EQ(0, shown);
}

TEST(no_creep_1h_noise_half_lsb)	{ creep_case(_metadata, 0.5); }
TEST(no_creep_1h_noise_1lsb)		{ creep_case(_metadata, 1.0); }

/*
 * The IEC 62053-21 starting current of a class 1 meter, 0.4 % of Ib
 * (Ib 10 A: 40 mA, about half a code of the guests' front end), at PF 1
 * and 0.5, in 1 LSB of noise with the default threshold: the meter starts
 * and registers P * t.
 */
static void start_case(struct __test_metadata *_metadata, double phi)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	long pub = 0, n0, n1;
	double p, e0, e1, scale = SIM_I_GAIN_NA / (double)CTM_I_GAIN_NA;

	/* the model draws amperes at its own gain: scale to the sim's codes */
	ctm_setup(&s, 50.0, 4000, 0.004 / scale, phi, 0, 1.0, 71);
	ctm_cfg(&cfg, 4000);
	cfg.i_gain_na = SIM_I_GAIN_NA;
	cfg.no_load_ua = ct_default_no_load_ua(SIM_I_GAIN_NA);
	p = ctm_active(&s) * scale;
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	while (s.n < 8000)
		to_boundary(&s, &m, &pub);
	n0 = to_boundary(&s, &m, &pub);
	e0 = energy_j(&m);
	while (s.n < n0 + 4000 * 120)
		to_boundary(&s, &m, &pub);
	n1 = to_boundary(&s, &m, &pub);
	e1 = energy_j(&m);
	TH_LOG("starting current 40 mA, PF %.1f: %.2f W, registered %.2f J of %.2f J (%+.2f%%)",
	       cos(phi), p, e1 - e0, p * (n1 - n0) / 4000.0,
	       ((e1 - e0) / (p * (n1 - n0) / 4000.0) - 1) * 100);
	/* IEC: it must register; within the window of the anti-creep decision */
	EXPECT_LT(fabs((e1 - e0) / (p * (n1 - n0) / 4000.0) - 1), 0.02);
}

TEST(starting_current_pf1)	{ start_case(_metadata, 0); }
TEST(starting_current_pf05)	{ start_case(_metadata, acos(0.5)); }

/*
 * A 5000 A, 4 kV line at the limits of the gains the driver accepts (4 A
 * and 4 V per code): 5.3 kA and 21 MW do not fit 32 bits (uA, mW), the
 * readings must not wrap.
 */
TEST(readings_do_not_wrap)
{
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_meter_cfg cfg;
	struct ct_reading r;
	double irms, vrms, p;
	uint16_t v, i;
	int got = 0;

	ctm_setup(&s, 50.0, 4000, 1.0, 0, 0, 0.5, 81);
	s.i.c[0].amp = 1900.0 * CTM_I_GAIN_NA * 1e-9;	/* 1900 codes peak */
	s.v.c[0].amp = 1400.0 * CTM_V_GAIN_NV * 1e-9;
	ctm_cfg(&cfg, 4000);
	cfg.i_gain_na = 4000000000u;
	cfg.v_gain_nv = 4000000000u;
	irms = 1900 * 4.0 / M_SQRT2;
	vrms = 1400 * 4.0 / M_SQRT2;
	p = irms * vrms;
	ASSERT_EQ(0, ct_meter_init(&m, &cfg));
	while (got < 100) {
		ctm_pair(&s, &v, &i);
		if (!ct_meter_push(&m, v, i, &r) || s.n < 4000)
			continue;
		got++;
		EXPECT_LT(fabs(r.i_rms_ua * 1e-6 / irms - 1), 0.002);
		EXPECT_LT(fabs(r.v_rms_uv * 1e-6 / vrms - 1), 0.002);
		EXPECT_LT(fabs(r.p_mw * 1e-3 / p - 1), 0.003);
		EXPECT_LT(fabs(r.s_mva * 1e-3 / p - 1), 0.003);
	}
	TH_LOG("%.0f A, %.0f V: read %.0f A, %.0f V, %.3f MW",
	       irms, vrms, r.i_rms_ua * 1e-6, r.v_rms_uv * 1e-6, r.p_mw * 1e-9);
}

TEST_HARNESS_MAIN
