// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark of the CT sensor's metering math (drivers/iio/ct/ct_metering.c,
 * compiled unchanged for userspace).
 *
 *   ct_bench            accuracy table at the IEC 62053-21/22 test points,
 *                       then instructions per sample pair measured by
 *                       re-running itself under callgrind
 *   ct_bench --perf FS F  the callgrind workload: 10 s of F Hz mains at FS
 *                       pairs/s (120% Ib, PF 0.8C, harmonics, noise) through
 *                       ct_meter_feed()
 *   ct_bench --driver FS F  the same samples the way the driver feeds them:
 *                       per pair the sampling thread's own arithmetic (range
 *                       check, batch store, pacing), every CT_DRV_BATCH pairs
 *                       ct_meter_feed() until the batch is consumed, and per
 *                       cycle the copy into the buffer's queue
 *
 * Counts, not wall-clock: the instruction count is what callgrind reports
 * for ct_meter_feed() and everything it calls (or for the driver loop),
 * divided by the pairs fed. The kernel primitives around the driver's loop
 * (the ADC reads, ktime_get(), the hrtimer sleep, the mutex per batch) are
 * not part of it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tests/unit/ct_model.h"

#define PERF_SECONDS	10
#define CT_DRV_BATCH	40	/* CT_BATCH in drivers/iio/ct/ct_sensor.c */
#define CT_DRV_RING	16	/* CT_RING */

/* What the driver keeps per cycle for its buffer (ct_process()). */
struct drv_ring {
	struct ct_reading r[CT_DRV_RING];
	long long ts[CT_DRV_RING];
	unsigned int head, len;
};

/*
 * The sampling thread's work per pair, as ct_thread() and ct_process() do
 * it, on pairs already read: range check, batch, pacing arithmetic against
 * a clock that advances one period per pair, the metering per batch, and
 * the queueing of each completed cycle.
 */
static __attribute__((noinline)) long drv_loop(struct ct_meter *m, const uint16_t *src,
					       unsigned int total, unsigned int fs,
					       struct drv_ring *q)
{
	const unsigned int code_max = (1U << m->cfg.adc_bits) - 1;
	uint16_t pairs[2 * CT_DRV_BATCH];
	long long next = 0, now = 0, period = 1000000000LL / fs;
	unsigned int n = 0, k;
	long cycles = 0;

	for (k = 0; k < total; k++) {
		int v = src[2 * k], i = src[2 * k + 1];

		if ((unsigned int)(v | i) > code_max)
			continue;
		pairs[2 * n] = v;
		pairs[2 * n + 1] = i;
		if (++n == CT_DRV_BATCH) {
			unsigned int j = 0;

			while (j < n) {
				struct ct_reading r;
				int ready;

				j += ct_meter_feed(m, pairs + 2 * j, n - j, &r, &ready);
				if (!ready)
					continue;
				if (q->len == CT_DRV_RING) {
					q->head = (q->head + 1) % CT_DRV_RING;
					q->len--;
				}
				q->r[(q->head + q->len) % CT_DRV_RING] = r;
				q->ts[(q->head + q->len) % CT_DRV_RING] = now;
				q->len++;
				cycles++;
			}
			n = 0;
		}
		next += period;
		now += period;
		if (now - next > 50000000LL)
			next = now;
	}
	return cycles;
}

static int perf_driver(double fs, double f)
{
	unsigned int n = (unsigned int)(fs * PERF_SECONDS), k;
	uint16_t *pairs = malloc(2 * n * sizeof(*pairs));
	static struct drv_ring q;
	struct ct_meter_cfg cfg;
	struct ctm_sim s;
	struct ct_meter m;

	if (!pairs)
		return 1;
	ctm_setup(&s, f, fs, 1.0, acos(0.8), 1, 0.5, 7);
	for (k = 0; k < n; k++)
		ctm_pair(&s, &pairs[2 * k], &pairs[2 * k + 1]);
	ctm_cfg(&cfg, fs);
	if (ct_meter_init(&m, &cfg))
		return 1;
	printf("pairs %u cycles %ld\n", n, drv_loop(&m, pairs, n, (unsigned int)fs, &q));
	free(pairs);
	return 0;
}

static int perf(double fs, double f)
{
	unsigned int n = (unsigned int)(fs * PERF_SECONDS), k = 0, used;
	uint16_t *pairs = malloc(2 * n * sizeof(*pairs));
	struct ct_meter_cfg cfg;
	struct ctm_sim s;
	struct ct_meter m;
	struct ct_reading r;
	long cycles = 0;
	int ready;

	if (!pairs)
		return 1;
	ctm_setup(&s, f, fs, 1.0, acos(0.8), 1, 0.5, 7);
	for (k = 0; k < n; k++)
		ctm_pair(&s, &pairs[2 * k], &pairs[2 * k + 1]);
	ctm_cfg(&cfg, fs);
	if (ct_meter_init(&m, &cfg))
		return 1;
	for (k = 0; k < n; k += used) {
		used = ct_meter_feed(&m, pairs + 2 * k, n - k, &r, &ready);
		cycles += ready;
	}
	printf("pairs %u cycles %ld\n", n, cycles);
	free(pairs);
	return 0;
}

/* Instructions per pair of @fn at @fs, via callgrind; < 0 if n/a. */
static double count_instructions(const char *self, const char *mode,
				 const char *fn, double fs, double mains)
{
	char out[] = "/tmp/ct_bench_cg.XXXXXX", cmd[1024], line[512];
	unsigned long long ir = 0;
	FILE *f;
	int fd = mkstemp(out);

	if (fd < 0)
		return -1;
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 "valgrind --tool=callgrind --callgrind-out-file=%s "
		 "--toggle-collect=%s* %s %s %.0f %.1f >/dev/null 2>&1",
		 out, fn, self, mode, fs, mains);
	if (system(cmd) != 0) {
		unlink(out);
		return -1;
	}
	f = fopen(out, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "totals:", 7) || !strncmp(line, "summary:", 8))
			ir = strtoull(strchr(line, ':') + 1, NULL, 10);
	if (f)
		fclose(f);
	unlink(out);
	return ir ? (double)ir / (fs * PERF_SECONDS) : -1;
}

static void table(double fs, double noise)
{
	static const double freqs[] = { 49.5, 50, 50.5, 60 };
	static const double fracs[] = { 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 1.2 };
	static const char *const pfname[] = { "1", "0.5L", "0.8C" };
	double phis[] = { 0, acos(0.5), -acos(0.8) };
	double worst_p = 0, worst_p_low = 0, worst_q = 0, worst_i = 0;
	double worst_v = 0, worst_f = 0;
	int h, fi, pi, ci;

	printf("\nfs %.0f pairs/s, 12-bit ADC, noise %.1f LSB rms, skew 1/2 pair;\n"
	       "calibrated at no load (current mean-square bias); 1-2%% Ib measured 40 s, others 10 s\n",
	       fs, noise);
	printf("%-5s %-5s %-4s %6s %9s %9s %9s %9s %8s\n", "harm", "f/Hz",
	       "PF", "I/Ib%", "Ep err%", "Eq err%", "Irms err%", "Vrms err%",
	       "f err/Hz");
	for (h = 0; h < 2; h++)
		for (fi = 0; fi < 4; fi++)
			for (pi = 0; pi < 3; pi++)
				for (ci = 0; ci < 8; ci++) {
					struct ctm_sim s;
					struct ct_meter m;
					struct ct_meter_cfg cfg;
					struct ctm_result r;
					int low = fracs[ci] < 0.05;

					ctm_setup(&s, freqs[fi], fs, fracs[ci],
						  phis[pi], h, noise,
						  1 + ci + 10 * pi + 100 * fi + 1000 * h);
					ctm_cfg(&cfg, fs);
					cfg.i_ms_bias = ctm_no_load_bias(freqs[fi], fs, h, noise, 99);
					ct_meter_init(&m, &cfg);
					ctm_run(&s, &m, low ? 2000 : 500, &r);
					char eq[16] = "        -";

					if (pi)
						snprintf(eq, sizeof(eq), "%+9.4f",
							 r.e_q_err * 100);
					printf("%-5s %-5.1f %-4s %6.0f %+9.4f %9s %+9.4f %+9.4f %8.4f\n",
					       h ? "3+5" : "none", freqs[fi],
					       pfname[pi], fracs[ci] * 100,
					       r.e_p_err * 100, eq, r.i_err * 100,
					       r.v_err * 100, r.f_err_max);
					if (low)
						worst_p_low = fmax(worst_p_low, fabs(r.e_p_err));
					else
						worst_p = fmax(worst_p, fabs(r.e_p_err));
					if (pi)
						worst_q = fmax(worst_q, fabs(r.e_q_err));
					worst_i = fmax(worst_i, fabs(r.i_err));
					worst_v = fmax(worst_v, fabs(r.v_err));
					worst_f = fmax(worst_f, r.f_err_max);
				}
	printf("worst: Ep %.4f%% (>=5%% Ib), %.4f%% (1-2%% Ib); Eq %.4f%%; "
	       "Irms %.4f%% (mean); Vrms %.4f%%; f %.4f Hz (per cycle)\n",
	       worst_p * 100, worst_p_low * 100, worst_q * 100, worst_i * 100,
	       worst_v * 100, worst_f);
}

int main(int argc, char **argv)
{
	double fs;

	if (argc == 4 && !strcmp(argv[1], "--perf"))
		return perf(atof(argv[2]), atof(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "--driver"))
		return perf_driver(atof(argv[2]), atof(argv[3]));

	table(4000, 0.5);
	table(8000, 0.5);
	printf("\ninstructions per sample pair (callgrind; metering: ct_meter_feed() "
	       "and the per-cycle work it calls, on a 10 s block; driver path: the "
	       "same fed as the driver feeds it, %d-pair batches, the thread's own "
	       "arithmetic and the buffer queue):\n", CT_DRV_BATCH);
	for (fs = 4000; fs <= 8000; fs += 4000) {
		double f;

		for (f = 50; f <= 60; f += 10) {
			double ipp = count_instructions(argv[0], "--perf", "ct_meter_feed", fs, f);
			double drv = count_instructions(argv[0], "--driver", "drv_loop", fs, f);

			if (ipp < 0 || drv < 0)
				printf("  fs %.0f: valgrind not available\n", fs);
			else
				printf("  fs %.0f, %.0f Hz mains: metering %.1f, driver path %.1f instructions/pair (%.0f per second)\n",
				       fs, f, ipp, drv, drv * fs);
		}
	}
	return 0;
}
