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
 *   ct_bench --driver FS F  the same samples through a copy of the driver's
 *                       sampling thread (ct_thread(), ct_process(),
 *                       ct_events() of drivers/iio/ct/ct_sensor.c, statement
 *                       for statement) whose kernel primitives are stubs:
 *                       the reads, range check, batching, pacing and stop
 *                       test per pair, ct_meter_feed() per CT_BATCH pairs,
 *                       the buffer's queue and the events per cycle
 *
 * Counts, not wall-clock: the instruction count is what callgrind reports
 * for ct_meter_feed() and everything it calls (or for the driver loop),
 * divided by the pairs fed. In the driver loop the calls to the kernel's
 * primitives (iio_read_channel_raw(), ktime_get(), kthread_should_stop(),
 * the hrtimer sleep, the mutex per batch) are counted, their bodies are not.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tests/unit/ct_model.h"

#define PERF_SECONDS	10
#define CT_BATCH	40	/* as in drivers/iio/ct/ct_sensor.c */
#define CT_RING		16
#define CT_NEV		3
#define CT_RESYNC_NS	50000000LL
#define NSEC_PER_SEC	1000000000U

/*
 * The kernel primitives the sampling thread calls, as stubs: what they
 * return is the input of the driver's own code, their cost is not counted
 * (count_instructions() subtracts every drv_k_* function). The calls, the
 * tests of what they return and everything else the driver computes are
 * counted. The ADC delivers the pre-computed samples; the clock says the
 * thread woke on time and read the pair in half a period, so it sleeps
 * after every pair as the driver does when it keeps up.
 */
struct drv_k {
	const uint16_t *adc;
	long long t, step;
	unsigned int left;
};

static __attribute__((noinline)) int drv_k_read(struct drv_k *k, int *val)
{
	*val = *k->adc++;
	return 0;
}

static __attribute__((noinline)) long long drv_k_ktime_get(struct drv_k *k)
{
	return k->t += k->step;
}

static __attribute__((noinline)) int drv_k_should_stop(struct drv_k *k)
{
	return !k->left--;
}

static __attribute__((noinline)) void drv_k_call(struct drv_k *k)
{
	__asm__ volatile("" : : "r"(k) : "memory");
}

static __attribute__((noinline)) void drv_k_push_event(struct drv_k *k, long long ts)
{
	__asm__ volatile("" : : "r"(k), "r"(ts) : "memory");
}

/* struct ct_state, the parts the sampling thread uses */
struct drv_event {
	long long value, hyst;
	bool enabled, active;
};

struct drv_state {
	struct drv_k *k;
	struct ct_meter meter;
	struct ct_reading last;
	long long last_ts;
	bool have;
	struct ct_reading ring[CT_RING];
	long long ring_ts[CT_RING];
	unsigned int ring_head, ring_len;
	struct drv_event ev[CT_NEV];
	unsigned long long read_errors;
	unsigned int fs;
	long cycles;
};

/* ct_events() */
static void drv_events(struct drv_state *st, const struct ct_reading *r, long long ts)
{
	static const bool rising_k[CT_NEV] = { true, false, true };
	long long val[CT_NEV] = { r->v_rms_uv, r->v_rms_uv, r->i_rms_ua };
	int k;

	for (k = 0; k < CT_NEV; k++) {
		struct drv_event *e = &st->ev[k];
		bool rising = rising_k[k];
		bool beyond = rising ? val[k] > e->value : val[k] < e->value;
		bool back = rising ? val[k] < e->value - e->hyst :
				     val[k] > e->value + e->hyst;

		if (!e->enabled)
			continue;
		if (!e->active && beyond) {
			e->active = true;
			drv_k_push_event(st->k, ts);
		} else if (e->active && back) {
			e->active = false;
		}
	}
}

/* ct_process() */
static void drv_process(struct drv_state *st, const uint16_t *pairs, unsigned int n)
{
	struct ct_reading r;
	unsigned int k = 0;
	bool fire = false;
	int ready;

	drv_k_call(st->k);			/* mutex_lock() */
	while (k < n) {
		k += ct_meter_feed(&st->meter, pairs + 2 * k, n - k, &r, &ready);
		if (!ready)
			continue;
		st->last = r;
		st->last_ts = drv_k_ktime_get(st->k);	/* iio_get_time_ns() */
		st->have = true;
		if (st->ring_len == CT_RING) {
			st->ring_head = (st->ring_head + 1) % CT_RING;
			st->ring_len--;
		}
		st->ring[(st->ring_head + st->ring_len) % CT_RING] = r;
		st->ring_ts[(st->ring_head + st->ring_len) % CT_RING] = st->last_ts;
		st->ring_len++;
		drv_events(st, &r, st->last_ts);
		fire = true;
		st->cycles++;
	}
	drv_k_call(st->k);			/* mutex_unlock() */
	if (fire)
		drv_k_call(st->k);		/* irq_work_queue() */
}

/*
 * ct_thread(), statement for statement; the metering is the real
 * ct_meter_feed(). Change it together with the driver.
 */
/* ct_batch_done() */
static inline uint16_t *drv_batch_done(struct drv_state *st, uint16_t *pairs,
				       unsigned int *period)
{
	drv_process(st, pairs, CT_BATCH);
	*period = NSEC_PER_SEC / *(volatile unsigned int *)&st->fs;
	return pairs;
}

static __attribute__((noinline)) void drv_loop(struct drv_state *st)
{
	struct drv_k *kp = st->k;
	const unsigned int code_max = (1U << st->meter.cfg.adc_bits) - 1;
	uint16_t pairs[2 * CT_BATCH], *w = pairs;
	unsigned int period = NSEC_PER_SEC / *(volatile unsigned int *)&st->fs;
	long long next = drv_k_ktime_get(kp);

	for (;;) {
		int v, i, ret;
		long long late;

		ret = drv_k_read(kp, &v);
		if (ret >= 0)
			ret = drv_k_read(kp, &i);
		if (ret >= 0 && (unsigned int)(v | i) > code_max)
			ret = -ERANGE;
		if (__builtin_expect(ret >= 0, 1)) {
			*w++ = v;
			*w++ = i;
		} else {
			drv_process(st, pairs, (w - pairs) / 2);
			w = pairs;
			drv_k_call(kp);			/* mutex_lock() */
			ct_meter_discard(&st->meter);
			st->read_errors++;
			drv_k_call(kp);			/* mutex_unlock(), dev_warn() */
		}

		next = next + period;
		late = drv_k_ktime_get(kp) - next;
		if (late < 0) {
			if (w == pairs + 2 * CT_BATCH)
				w = drv_batch_done(st, pairs, &period);
			drv_k_call(kp);			/* set_current_state() */
			if (drv_k_should_stop(kp)) {
				drv_k_call(kp);		/* __set_current_state() */
				break;
			}
			drv_k_call(kp);			/* schedule_hrtimeout_range() */
		} else if (__builtin_expect(late > CT_RESYNC_NS, 0)) {
			unsigned int missed = late / period;

			if (ret >= 0)
				w -= 2;
			drv_process(st, pairs, (w - pairs) / 2);
			w = pairs;
			next = next + (unsigned long long)missed * period;
			drv_k_call(kp);			/* mutex_lock() */
			ct_meter_gap(&st->meter, missed);
			drv_k_call(kp);			/* mutex_unlock() */
			if (ret >= 0) {
				*w++ = v;
				*w++ = i;
			}
			period = NSEC_PER_SEC / *(volatile unsigned int *)&st->fs;
			if (drv_k_should_stop(kp))
				break;
		} else {
			if (w == pairs + 2 * CT_BATCH)
				w = drv_batch_done(st, pairs, &period);
			if (drv_k_should_stop(kp))
				break;
			drv_k_call(kp);			/* cond_resched() */
		}
	}
}

static int perf_driver(double fs, double f)
{
	unsigned int n = (unsigned int)(fs * PERF_SECONDS), k;
	uint16_t *pairs = malloc(2 * n * sizeof(*pairs));
	static struct drv_state st;
	struct ct_meter_cfg cfg;
	struct ctm_sim s;
	struct drv_k kk;

	if (!pairs)
		return 1;
	ctm_setup(&s, f, fs, 1.0, acos(0.8), 1, 0.5, 7);
	for (k = 0; k < n; k++)
		ctm_pair(&s, &pairs[2 * k], &pairs[2 * k + 1]);
	ctm_cfg(&cfg, fs);
	if (ct_meter_init(&st.meter, &cfg))
		return 1;
	st.fs = cfg.fs;
	st.k = &kk;
	/* n pairs: one stop test after each */
	kk.adc = pairs;
	kk.left = n - 1;
	kk.step = NSEC_PER_SEC / cfg.fs / 2;
	kk.t = 0;
	/* the over-/under-voltage and over-current events enabled, not hit */
	st.ev[0] = (struct drv_event){ .value = 1LL << 40, .enabled = true };
	st.ev[1] = (struct drv_event){ .value = 0, .enabled = true };
	st.ev[2] = (struct drv_event){ .value = 1LL << 40, .enabled = true };
	drv_loop(&st);
	printf("pairs %u cycles %ld\n", n, st.cycles);
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
	/*
	 * Collection toggles on entry and exit: on in @fn, off again inside
	 * the kernel stubs it calls.
	 */
	snprintf(cmd, sizeof(cmd),
		 "valgrind --tool=callgrind --callgrind-out-file=%s "
		 "--toggle-collect=%s* --toggle-collect=drv_k_* %s %s %.0f %.1f >/dev/null 2>&1",
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
	       "same through the driver's sampling thread, %d-pair batches, its "
	       "calls to the kernel counted, not the kernel's work):\n", CT_BATCH);
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
