// SPDX-License-Identifier: GPL-2.0
/*
 * gridmeter CT sensor: single-phase electricity metering from two channels
 * of an ADC that has its own IIO driver (MCP3008/MCP3208 on the Raspberry
 * Pi, or the test fixture gm_sim_adc).
 *
 * A current transformer with its burden resistor feeds the "current"
 * io-channel, a voltage transformer or divider the "voltage" one. A kernel
 * thread samples the pair at sampling_frequency, ct_metering.c turns every
 * mains cycle into RMS current and voltage, active/reactive/apparent power,
 * power factor and line frequency, and accumulates the energies. Readings
 * are published with the metering ABI of Linux 6.18 (ADE9000) where the
 * running kernel has the identifiers, with the closest 6.1 names otherwise
 * (Documentation/ABI/testing/sysfs-bus-iio-gridmeter-ct), streamed per cycle
 * through a buffer with timestamps, and checked against over-voltage,
 * under-voltage and over-current thresholds every cycle.
 */
#include <linux/bits.h>
#include <linux/hrtimer.h>
#include <linux/iio/buffer.h>
#include <linux/iio/consumer.h>
#include <linux/iio/events.h>
#include <linux/iio/iio.h>
#include <linux/iio/sysfs.h>
#include <linux/iio/trigger.h>
#include <linux/iio/trigger_consumer.h>
#include <linux/iio/triggered_buffer.h>
#include <linux/irq_work.h>
#include <linux/kthread.h>
#include <linux/mod_devicetable.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/platform_device.h>
#include <linux/property.h>
#include <linux/sched.h>

#include "../../gm_kcompat.h"
#include "ct_metering.h"

#define CT_BATCH		40	/* pairs read before they are processed */
#define CT_FS_DEFAULT		4000
#define CT_CALIBSCALE_ONE	1000000
/* later than this, the pairs not taken are missed, not caught up */
#define CT_RESYNC_NS		(50 * NSEC_PER_MSEC)
#define CT_RING			16	/* cycles waiting for the buffer */
#define CT_NO_LOAD_UA_MAX	100000000	/* 100 A */
#define CT_MS_BIAS_MAX		16777216	/* 2^24: |calibbias|, 2^-16 code^2 */
/* ADC scale accepted: up to 2^40 nV per 1024 codes, 1.07 V per code */
#define CT_NV_X1024_MAX		BIT_ULL(40)

/*
 * Channels named the same on every kernel: with the metering modifiers
 * where the kernel has them (gm_kcompat.h), with extend_name before.
 */
#define CT_NAMED(_type, _mod, _name)					\
	.type = (_type), .modified = GM_IIO_METERING_ABI, .channel2 = (_mod),	\
	.extend_name = GM_IIO_METERING_ABI ? NULL : (_name)

enum ct_addr {
	CT_I, CT_V, CT_P, CT_Q, CT_S, CT_PF, CT_F,
	CT_E_IMPORT, CT_E_EXPORT, CT_E_REACTIVE,
	CT_TS,
};

/* Device counters (sysfs attribute address). */
enum ct_counter {
	CT_C_READ_ERRORS, CT_C_DISCARDED, CT_C_CYCLES, CT_C_WITHHELD,
	CT_C_MISSED, CT_C_GAP_NS,
};

enum ct_event_id { CT_EV_OVER_V, CT_EV_UNDER_V, CT_EV_OVER_I, CT_NEV };

/**
 * struct ct_event - one threshold event
 * @value:	threshold, raw units of the channel (uV or uA)
 * @hyst:	hysteresis, same units: re-armed once back past value -/+ hyst
 * @enabled:	the event is enabled
 * @active:	the threshold is crossed and the event was pushed
 */
struct ct_event {
	s64 value;
	s64 hyst;
	bool enabled;
	bool active;
};

/**
 * struct ct_state - driver state
 * @dev:	the platform device
 * @indio_dev:	our IIO device
 * @vchan:	ADC channel of the voltage transformer
 * @ichan:	ADC channel of the current transformer
 * @thread:	the sampling thread
 * @trig:	the per-cycle trigger, fired after each cycle from @trig_work
 * @trig_work:	hard-irq work queued by @thread: iio_trigger_poll() runs the
 *		trigger's consumers (our buffer, other devices) in their own
 *		threads, never in @thread
 * @lock:	protects @meter, @cfg, @last, @have, @ring, @ev, the
 *		calibration, @no_load_default and the counters; taken by the sampling
 *		thread for each batch, by the buffer's handler and by sysfs
 * @meter:	the metering state
 * @cfg:	the configuration given to @meter
 * @last:	the latest reading
 * @last_ts:	timestamp of @last, ns
 * @have:	@last holds a reading
 * @ring:	readings not yet pushed to the buffer (own trigger), with
 *		their timestamps; @ring_head and @ring_len index it
 * @ring_ts:	timestamps of @ring
 * @ring_head:	oldest entry of @ring
 * @ring_len:	entries in @ring
 * @ev:		threshold events
 * @nv_i_x1024:	ADC nanovolts per code (x1024) of the current channel
 * @nv_v_x1024:	same, voltage channel
 * @ct_ratio:	CT turns ratio
 * @burden_uohm: burden resistor, microohm
 * @vratio_milli: voltage ratio x1000
 * @delay_ns:	time from the voltage to the current conversion
 * @cs_i:	calibscale of the current, millionths
 * @cs_v:	calibscale of the voltage, millionths
 * @read_errors: ADC reads that failed
 * @no_load_default: the anti-creep threshold (@cfg.no_load_ua, sysfs) is
 *		the default, which follows the front end (calibscale)
 * @fs:		sampling frequency, read locklessly by the thread
 * @scan:	buffer record, used by the trigger handler only
 */
struct ct_state {
	struct device *dev;
	struct iio_dev *indio_dev;
	struct iio_channel *vchan;
	struct iio_channel *ichan;
	struct task_struct *thread;
	struct iio_trigger *trig;
	struct irq_work trig_work;
	struct mutex lock;		/* see the kernel-doc above */
	struct ct_meter meter;
	struct ct_meter_cfg cfg;
	struct ct_reading last;
	s64 last_ts;
	bool have;
	struct ct_reading ring[CT_RING];
	s64 ring_ts[CT_RING];
	unsigned int ring_head;
	unsigned int ring_len;
	struct ct_event ev[CT_NEV];
	u64 nv_i_x1024;
	u64 nv_v_x1024;
	u32 ct_ratio;
	u32 burden_uohm;
	u32 vratio_milli;
	u32 delay_ns;
	u32 cs_i;
	u32 cs_v;
	u64 read_errors;
	bool no_load_default;
	u32 fs;
	struct {
		u64 i, v;
		s64 p, q;
		u64 s;
		s64 ts;		/* offset 40: 8-byte aligned */
	} scan;
};

/* --- calibration ---------------------------------------------------------- */

/*
 * Gains of the metering math from the ADC scale, the front end and the
 * calibscale trims. Return: 0 or -EINVAL when a gain is 0 or > 4.29 A (V)
 * per code.
 */
static int ct_gains(const struct ct_state *st, u32 cs_i, u32 cs_v,
		    struct ct_meter_cfg *cfg)
{
	u64 gi, gv;

	/*
	 * nA * 1024 per code: (nV / ohm) * turns. nv_*_x1024 <= 2^40
	 * (ct_get_adc()), ct_ratio < 2^17, vratio_milli * cs_v < 2^48: no
	 * product or quotient below can overflow 64 bits.
	 */
	gi = mul_u64_u64_div_u64(st->nv_i_x1024 * st->ct_ratio, 1000000,
				 st->burden_uohm);
	gi = mul_u64_u64_div_u64(gi, cs_i, 1024ULL * CT_CALIBSCALE_ONE);
	gv = mul_u64_u64_div_u64(st->nv_v_x1024, (u64)st->vratio_milli * cs_v,
				 1024ULL * 1000 * CT_CALIBSCALE_ONE);
	if (!gi || gi > U32_MAX || !gv || gv > U32_MAX)
		return -EINVAL;
	cfg->i_gain_na = gi;
	cfg->v_gain_nv = gv;
	return 0;
}

/* Current delay as a fraction of the pair period, Q16; -EINVAL if >= 1. */
static int ct_skew(u32 delay_ns, u32 fs, u32 *skew)
{
	u64 q = div_u64((u64)delay_ns * fs << 16, NSEC_PER_SEC);

	if (q > 0xffff)
		return -EINVAL;
	*skew = q;
	return 0;
}

/* --- sampling -------------------------------------------------------------- */

static void ct_events(struct ct_state *st, const struct ct_reading *r, s64 ts)
{
	static const struct {
		enum iio_chan_type type;
		enum iio_event_direction dir;
		int mod;
	} code[CT_NEV] = {
		[CT_EV_OVER_V] = { IIO_ALTVOLTAGE, IIO_EV_DIR_RISING, GM_IIO_MOD_RMS },
		[CT_EV_UNDER_V] = { IIO_ALTVOLTAGE, IIO_EV_DIR_FALLING, GM_IIO_MOD_RMS },
		[CT_EV_OVER_I] = { GM_IIO_ALTCURRENT, IIO_EV_DIR_RISING, GM_IIO_MOD_RMS },
	};
	s64 val[CT_NEV] = { r->v_rms_uv, r->v_rms_uv, r->i_rms_ua };
	int k;

	for (k = 0; k < CT_NEV; k++) {
		struct ct_event *e = &st->ev[k];
		bool rising = code[k].dir == IIO_EV_DIR_RISING;
		bool beyond = rising ? val[k] > e->value : val[k] < e->value;
		bool back = rising ? val[k] < e->value - e->hyst :
				     val[k] > e->value + e->hyst;

		if (!e->enabled)
			continue;
		if (!e->active && beyond) {
			e->active = true;
			iio_push_event(st->indio_dev,
				       IIO_EVENT_CODE(code[k].type, 0, code[k].mod,
						      code[k].dir,
						      IIO_EV_TYPE_THRESH, 0, 0, 0),
				       ts);
		} else if (e->active && back) {
			e->active = false;
		}
	}
}

/*
 * Feed a batch to the metering math; publish every completed cycle: latest
 * reading, events, the buffer's queue, and the per-cycle trigger.
 */
static void ct_process(struct ct_state *st, const u16 *pairs, unsigned int n)
{
	struct ct_reading r;
	unsigned int k = 0;
	bool fire = false;
	int ready;

	mutex_lock(&st->lock);
	while (k < n) {
		k += ct_meter_feed(&st->meter, pairs + 2 * k, n - k, &r, &ready);
		if (!ready)
			continue;
		st->last = r;
		st->last_ts = iio_get_time_ns(st->indio_dev);
		st->have = true;
		/* the oldest reading goes if the buffer's thread is late */
		if (st->ring_len == CT_RING) {
			st->ring_head = (st->ring_head + 1) % CT_RING;
			st->ring_len--;
		}
		st->ring[(st->ring_head + st->ring_len) % CT_RING] = r;
		st->ring_ts[(st->ring_head + st->ring_len) % CT_RING] = st->last_ts;
		st->ring_len++;
		ct_events(st, &r, st->last_ts);
		fire = true;
	}
	mutex_unlock(&st->lock);
	if (fire)
		irq_work_queue(&st->trig_work);
}

/* Hard-irq context: the consumers' top halves, then their own threads. */
static void ct_trig_work(struct irq_work *work)
{
	struct ct_state *st = container_of(work, struct ct_state, trig_work);

	iio_trigger_poll(st->trig);
}

static void ct_sync_trig_work(void *data)
{
	irq_work_sync(data);
}

/* A buffer starts with the next cycle, not with what the ring still holds. */
static int ct_buffer_preenable(struct iio_dev *indio_dev)
{
	struct ct_state *st = iio_priv(indio_dev);

	mutex_lock(&st->lock);
	st->ring_len = 0;
	mutex_unlock(&st->lock);
	return 0;
}

static const struct iio_buffer_setup_ops ct_buffer_ops = {
	.preenable = ct_buffer_preenable,
};

static void ct_scan_fill(struct ct_state *st, const struct ct_reading *r)
{
	st->scan.i = r->i_rms_ua;
	st->scan.v = r->v_rms_uv;
	st->scan.p = r->p_mw;
	st->scan.q = r->q_mvar;
	st->scan.s = r->s_mva;
}

/*
 * Buffer. Under our own trigger: every cycle since the last push (the
 * handler's thread may run after more than one). Under another trigger:
 * the latest cycle at each firing. Nothing before the first cycle.
 */
static irqreturn_t ct_trigger_handler(int irq, void *p)
{
	struct iio_poll_func *pf = p;
	struct iio_dev *indio_dev = pf->indio_dev;
	struct ct_state *st = iio_priv(indio_dev);
	bool own = iio_trigger_using_own(indio_dev);
	s64 ts;

	for (;;) {
		mutex_lock(&st->lock);
		if (own && st->ring_len) {
			ct_scan_fill(st, &st->ring[st->ring_head]);
			ts = st->ring_ts[st->ring_head];
			st->ring_head = (st->ring_head + 1) % CT_RING;
			st->ring_len--;
		} else if (!own && st->have) {
			ct_scan_fill(st, &st->last);
			ts = st->last_ts;
			own = true;	/* once */
			st->ring_len = 0;
		} else {
			mutex_unlock(&st->lock);
			break;
		}
		mutex_unlock(&st->lock);
		iio_push_to_buffers_with_timestamp(indio_dev, &st->scan, ts);
	}
	iio_trigger_notify_done(indio_dev->trig);
	return IRQ_HANDLED;
}

/*
 * A full batch to the meter; the sampling frequency is read again (a new
 * one takes effect between batches). Returns the emptied batch.
 */
static inline u16 *ct_batch_done(struct ct_state *st, u16 *pairs, u32 *period)
{
	ct_process(st, pairs, CT_BATCH);
	*period = NSEC_PER_SEC / READ_ONCE(st->fs);
	return pairs;
}

/*
 * The sampling loop. bench/ct_bench.c (drv_loop()) runs a copy of it, with
 * the kernel's primitives replaced by stubs, to count its instructions per
 * pair: change both together.
 */
static int ct_thread(void *data)
{
	struct ct_state *st = data;
	const unsigned int code_max = (1U << st->cfg.adc_bits) - 1;
	u16 pairs[2 * CT_BATCH], *w = pairs;
	/* a new sampling_frequency takes effect at the next batch */
	u32 period = NSEC_PER_SEC / READ_ONCE(st->fs);
	ktime_t next = ktime_get();

	for (;;) {
		int v, i, ret;
		s64 late;

		ret = iio_read_channel_raw(st->vchan, &v);
		if (ret >= 0)
			ret = iio_read_channel_raw(st->ichan, &i);
		/*
		 * Codes beyond the resolution (or negative) would overflow the
		 * metering math; code_max is 2^bits - 1, so one compare.
		 */
		if (ret >= 0 && (unsigned int)(v | i) > code_max)
			ret = -ERANGE;
		if (likely(ret >= 0)) {
			*w++ = v;
			*w++ = i;
		} else {
			/* never a garbage reading: drop the whole cycle */
			ct_process(st, pairs, (w - pairs) / 2);
			w = pairs;
			mutex_lock(&st->lock);
			ct_meter_discard(&st->meter);
			st->read_errors++;
			mutex_unlock(&st->lock);
			dev_warn_ratelimited(st->dev, "ADC read failed (%d), cycle discarded\n",
					     ret);
		}

		next = ktime_add_ns(next, period);
		late = ktime_to_ns(ktime_sub(ktime_get(), next));
		if (late < 0) {
			if (w == pairs + 2 * CT_BATCH)
				w = ct_batch_done(st, pairs, &period);
			/*
			 * Tested after the state is set: kthread_stop()'s
			 * wake-up cannot fall between the test and the sleep.
			 * The sleep returns in TASK_RUNNING.
			 */
			set_current_state(TASK_IDLE);
			if (kthread_should_stop()) {
				__set_current_state(TASK_RUNNING);
				break;
			}
			schedule_hrtimeout_range(&next, 0, HRTIMER_MODE_ABS);
		} else if (unlikely(late > CT_RESYNC_NS)) {
			/*
			 * Fell far behind (a slow ADC, a busy CPU): the pairs
			 * due since then were never taken. They are counted,
			 * and their time is integrated at the power of the
			 * cycles around it (ct_meter_gap()). The pair just
			 * read may have been converted only now, at the end
			 * of the gap: it goes after it, never into the cycle
			 * the gap broke (whose end it would fake).
			 */
			u32 missed = div_u64(late, period);

			if (ret >= 0)
				w -= 2;
			ct_process(st, pairs, (w - pairs) / 2);
			w = pairs;
			next = ktime_add_ns(next, (u64)missed * period);
			mutex_lock(&st->lock);
			ct_meter_gap(&st->meter, missed);
			mutex_unlock(&st->lock);
			if (ret >= 0) {
				*w++ = v;
				*w++ = i;
			}
			period = NSEC_PER_SEC / READ_ONCE(st->fs);
			if (kthread_should_stop())
				break;
		} else {
			if (w == pairs + 2 * CT_BATCH)
				w = ct_batch_done(st, pairs, &period);
			if (kthread_should_stop())
				break;
			/* catching up: read the next pair at once */
			cond_resched();
		}
	}
	return 0;
}

static void ct_stop_thread(void *data)
{
	kthread_stop(data);
}

/* --- IIO interface --------------------------------------------------------- */

static const struct iio_event_spec ct_v_events[] = {
	{
		.type = IIO_EV_TYPE_THRESH,
		.dir = IIO_EV_DIR_RISING,
		.mask_separate = BIT(IIO_EV_INFO_VALUE) |
				 BIT(IIO_EV_INFO_HYSTERESIS) |
				 BIT(IIO_EV_INFO_ENABLE),
	}, {
		.type = IIO_EV_TYPE_THRESH,
		.dir = IIO_EV_DIR_FALLING,
		.mask_separate = BIT(IIO_EV_INFO_VALUE) |
				 BIT(IIO_EV_INFO_HYSTERESIS) |
				 BIT(IIO_EV_INFO_ENABLE),
	},
};

static const struct iio_event_spec ct_i_events[] = {
	{
		.type = IIO_EV_TYPE_THRESH,
		.dir = IIO_EV_DIR_RISING,
		.mask_separate = BIT(IIO_EV_INFO_VALUE) |
				 BIT(IIO_EV_INFO_HYSTERESIS) |
				 BIT(IIO_EV_INFO_ENABLE),
	},
};

static ssize_t ct_pf_read(struct iio_dev *indio_dev, uintptr_t priv,
			  const struct iio_chan_spec *chan, char *buf)
{
	struct ct_state *st = iio_priv(indio_dev);
	s32 pf;

	mutex_lock(&st->lock);
	pf = st->last.pf_micro;
	mutex_unlock(&st->lock);
	return sysfs_emit(buf, "%s%d.%06d\n", pf < 0 ? "-" : "",
			  abs(pf) / 1000000, abs(pf) % 1000000);
}

static const struct iio_chan_spec_ext_info ct_pf_ext_info[] = {
	{
		.name = "powerfactor",
		.read = ct_pf_read,
		.shared = IIO_SEPARATE,
	},
	{ }
};

/* 64 bits: no calibration the probe accepts can make a reading wrap */
#define CT_SCAN(_idx, _sign) \
	.scan_index = (_idx), \
	.scan_type = { .sign = (_sign), .realbits = 64, .storagebits = 64, \
		       .endianness = IIO_CPU }

#define CT_BUF_CHAN(_type, _index, _addr, _scan, _sign) { \
	.type = (_type), \
	.indexed = 1, \
	.channel = (_index), \
	.address = (_addr), \
	CT_SCAN(_scan, _sign), \
}

static const struct iio_chan_spec ct_channels[] = {
	{
		CT_NAMED(GM_IIO_ALTCURRENT, GM_IIO_MOD_RMS, "rms"),
		.indexed = 1,
		.address = CT_I,
		.info_mask_separate = BIT(IIO_CHAN_INFO_RAW) |
				      BIT(IIO_CHAN_INFO_SCALE) |
				      BIT(IIO_CHAN_INFO_CALIBSCALE) |
				      BIT(IIO_CHAN_INFO_CALIBBIAS) |
				      BIT(IIO_CHAN_INFO_PHASE),
		.info_mask_shared_by_all = BIT(IIO_CHAN_INFO_SAMP_FREQ),
		.event_spec = ct_i_events,
		.num_event_specs = ARRAY_SIZE(ct_i_events),
		CT_SCAN(0, 'u'),
	}, {
		CT_NAMED(IIO_ALTVOLTAGE, GM_IIO_MOD_RMS, "rms"),
		.indexed = 1,
		.address = CT_V,
		.info_mask_separate = BIT(IIO_CHAN_INFO_RAW) |
				      BIT(IIO_CHAN_INFO_SCALE) |
				      BIT(IIO_CHAN_INFO_CALIBSCALE) |
				      BIT(IIO_CHAN_INFO_CALIBBIAS),
		.event_spec = ct_v_events,
		.num_event_specs = ARRAY_SIZE(ct_v_events),
		.scan_index = -1,
	}, {
		CT_NAMED(IIO_POWER, GM_IIO_MOD_ACTIVE, "active"),
		.indexed = 1,
		.address = CT_P,
		.info_mask_separate = BIT(IIO_CHAN_INFO_RAW) |
				      BIT(IIO_CHAN_INFO_SCALE),
		.scan_index = -1,
	}, {
		CT_NAMED(IIO_POWER, GM_IIO_MOD_REACTIVE, "reactive"),
		.indexed = 1,
		.address = CT_Q,
		.info_mask_separate = BIT(IIO_CHAN_INFO_RAW) |
				      BIT(IIO_CHAN_INFO_SCALE),
		.scan_index = -1,
	}, {
		CT_NAMED(IIO_POWER, GM_IIO_MOD_APPARENT, "apparent"),
		.indexed = 1,
		.address = CT_S,
		.info_mask_separate = BIT(IIO_CHAN_INFO_RAW) |
				      BIT(IIO_CHAN_INFO_SCALE),
		.scan_index = -1,
	}, {
		/* in_power0_powerfactor */
		.type = IIO_POWER,
		.indexed = 1,
		.address = CT_PF,
		.ext_info = ct_pf_ext_info,
		.scan_index = -1,
	}, {
		/* in_altvoltage0_frequency */
		.type = IIO_ALTVOLTAGE,
		.indexed = 1,
		.address = CT_F,
		.info_mask_separate = BIT(IIO_CHAN_INFO_FREQUENCY),
		.scan_index = -1,
	}, {
		CT_NAMED(IIO_ENERGY, GM_IIO_MOD_ACTIVE, "active"),
		.indexed = 1,
		.channel = 0,
		.address = CT_E_IMPORT,
		.info_mask_separate = BIT(IIO_CHAN_INFO_RAW) |
				      BIT(IIO_CHAN_INFO_SCALE),
		.scan_index = -1,
	}, {
		CT_NAMED(IIO_ENERGY, GM_IIO_MOD_ACTIVE, "active"),
		.indexed = 1,
		.channel = 1,
		.address = CT_E_EXPORT,
		.info_mask_separate = BIT(IIO_CHAN_INFO_RAW) |
				      BIT(IIO_CHAN_INFO_SCALE),
		.scan_index = -1,
	}, {
		CT_NAMED(IIO_ENERGY, GM_IIO_MOD_REACTIVE, "reactive"),
		.indexed = 1,
		.address = CT_E_REACTIVE,
		.info_mask_separate = BIT(IIO_CHAN_INFO_RAW) |
				      BIT(IIO_CHAN_INFO_SCALE),
		.scan_index = -1,
	},
	/*
	 * Buffer-only channels, no sysfs value. They do not share type and
	 * index with a named channel above: libiio (0.24) cannot tell apart
	 * scan elements of channels that differ only in their extended name.
	 * Each carries its own quantity under its own type; power factor and
	 * frequency have no IIO channel type and stay out of the buffer.
	 */
	CT_BUF_CHAN(IIO_ALTVOLTAGE, 1, CT_V, 1, 'u'),	/* RMS voltage, uV */
	CT_BUF_CHAN(IIO_POWER, 1, CT_P, 2, 's'),	/* active power, mW */
	CT_BUF_CHAN(IIO_POWER, 2, CT_Q, 3, 's'),	/* reactive, mvar */
	CT_BUF_CHAN(IIO_POWER, 3, CT_S, 4, 'u'),	/* apparent, mVA */
	IIO_CHAN_SOFT_TIMESTAMP(5),
};

static const unsigned long ct_scan_masks[] = { GENMASK(4, 0), 0 };

static int ct_read_raw(struct iio_dev *indio_dev,
		       struct iio_chan_spec const *chan,
		       int *val, int *val2, long mask)
{
	struct ct_state *st = iio_priv(indio_dev);
	const struct ct_reading *r = &st->last;
	s64 e;
	int ret = IIO_VAL_INT;

	mutex_lock(&st->lock);
	switch (mask) {
	case IIO_CHAN_INFO_RAW:
		/* 64 bits: see ct_reading */
		ret = IIO_VAL_INT_64;
		switch (chan->address) {
		case CT_I:
			e = r->i_rms_ua;
			break;
		case CT_V:
			e = r->v_rms_uv;
			break;
		case CT_P:
			e = r->p_mw;
			break;
		case CT_Q:
			e = r->q_mvar;
			break;
		case CT_S:
			e = r->s_mva;
			break;
		case CT_E_IMPORT:
		case CT_E_EXPORT:
		case CT_E_REACTIVE:
			e = chan->address == CT_E_IMPORT ? st->meter.e_import_mj :
			    chan->address == CT_E_EXPORT ? st->meter.e_export_mj :
			    st->meter.e_reactive_mj;
			break;
		default:
			ret = -EINVAL;
		}
		*val = lower_32_bits(e);
		*val2 = upper_32_bits(e);
		break;
	case IIO_CHAN_INFO_SCALE:
		switch (chan->address) {
		case CT_I:		/* uA -> mA */
		case CT_V:		/* uV -> mV */
		case CT_E_IMPORT:	/* mJ -> J */
		case CT_E_EXPORT:
		case CT_E_REACTIVE:
			*val = 1;
			*val2 = 1000;
			ret = IIO_VAL_FRACTIONAL;
			break;
		default:		/* mW, mvar, mVA */
			*val = 1;
			break;
		}
		break;
	case IIO_CHAN_INFO_CALIBSCALE:
		e = chan->address == CT_I ? st->cs_i : st->cs_v;
		*val = div_s64_rem(e, CT_CALIBSCALE_ONE, val2);
		ret = IIO_VAL_INT_PLUS_MICRO;
		break;
	case IIO_CHAN_INFO_CALIBBIAS:
		*val = chan->address == CT_I ? st->cfg.i_ms_bias :
					       st->cfg.v_ms_bias;
		break;
	case IIO_CHAN_INFO_PHASE:
		/* radians, from millidegrees: pi / 180000 */
		e = div_s64((s64)st->cfg.phase_mdeg * 17453293, 1000);
		*val = div_s64_rem(e, NSEC_PER_SEC, val2);
		ret = IIO_VAL_INT_PLUS_NANO;
		break;
	case IIO_CHAN_INFO_FREQUENCY:
		*val = r->freq_uhz / 1000000;
		*val2 = r->freq_uhz % 1000000;
		ret = IIO_VAL_INT_PLUS_MICRO;
		break;
	case IIO_CHAN_INFO_SAMP_FREQ:
		*val = st->cfg.fs;
		break;
	default:
		ret = -EINVAL;
	}
	mutex_unlock(&st->lock);
	return ret;
}

static int ct_write_raw_get_fmt(struct iio_dev *indio_dev,
				struct iio_chan_spec const *chan, long mask)
{
	switch (mask) {
	case IIO_CHAN_INFO_PHASE:
		return IIO_VAL_INT_PLUS_NANO;
	case IIO_CHAN_INFO_CALIBSCALE:
		return IIO_VAL_INT_PLUS_MICRO;
	default:
		return IIO_VAL_INT;
	}
}

/* One rate-limited line for a rejected write, in the attribute's format. */
static void ct_log_rejected(struct ct_state *st, struct iio_chan_spec const *chan,
			    int val, int val2, long mask)
{
	int fmt = ct_write_raw_get_fmt(st->indio_dev, chan, mask);

	if (fmt == IIO_VAL_INT)
		dev_info_ratelimited(st->dev, "rejected write of %d to attribute %ld: out of range\n",
				     val, mask);
	else
		dev_info_ratelimited(st->dev, "rejected write of %s%d.%0*d to attribute %ld: out of range\n",
				     val < 0 || val2 < 0 ? "-" : "", abs(val),
				     fmt == IIO_VAL_INT_PLUS_NANO ? 9 : 6,
				     abs(val2), mask);
}

static int ct_write_raw(struct iio_dev *indio_dev,
			struct iio_chan_spec const *chan,
			int val, int val2, long mask)
{
	struct ct_state *st = iio_priv(indio_dev);
	struct ct_meter_cfg cfg;
	s64 x;
	u32 cs_i, cs_v;
	int ret = -EINVAL;

	mutex_lock(&st->lock);
	cfg = st->cfg;
	cs_i = st->cs_i;
	cs_v = st->cs_v;
	switch (mask) {
	case IIO_CHAN_INFO_CALIBSCALE:
		/* 0.5 .. 2.0 */
		x = (s64)val * CT_CALIBSCALE_ONE + val2;
		if (x < CT_CALIBSCALE_ONE / 2 || x > 2 * CT_CALIBSCALE_ONE)
			break;
		if (chan->address == CT_I)
			cs_i = x;
		else
			cs_v = x;
		ret = ct_gains(st, cs_i, cs_v, &cfg);
		/* the default no-load threshold follows the front end */
		if (st->no_load_default && cfg.no_load_ua)
			cfg.no_load_ua = ct_default_no_load_ua(cfg.i_gain_na);
		break;
	case IIO_CHAN_INFO_CALIBBIAS:
		if (val2 || val < -CT_MS_BIAS_MAX || val > CT_MS_BIAS_MAX)
			break;
		if (chan->address == CT_I)
			cfg.i_ms_bias = val;
		else
			cfg.v_ms_bias = val;
		ret = 0;
		break;
	case IIO_CHAN_INFO_PHASE:
		/* radians (val + val2 nano) -> millidegrees: 180000 / pi */
		x = (s64)val * NSEC_PER_SEC + val2;
		if (x < -400000000LL || x > 400000000LL)
			break;
		cfg.phase_mdeg = div64_s64(x * 5729578, 100000000000LL);
		ret = 0;
		break;
	case IIO_CHAN_INFO_SAMP_FREQ:
		if (val2 || val < CT_FS_MIN || val > CT_FS_MAX)
			break;
		cfg.fs = val;
		ret = ct_skew(st->delay_ns, val, &cfg.skew_q16);
		break;
	default:
		break;
	}
	if (!ret)
		ret = ct_meter_set_cfg(&st->meter, &cfg);
	if (!ret) {
		st->cfg = cfg;
		st->cs_i = cs_i;
		st->cs_v = cs_v;
		WRITE_ONCE(st->fs, cfg.fs);
	}
	mutex_unlock(&st->lock);
	if (ret)
		ct_log_rejected(st, chan, val, val2, mask);
	return ret;
}

static int ct_event_id(const struct iio_chan_spec *chan,
		       enum iio_event_direction dir)
{
	if (chan->address == CT_I)
		return dir == IIO_EV_DIR_RISING ? CT_EV_OVER_I : -EINVAL;
	return dir == IIO_EV_DIR_RISING ? CT_EV_OVER_V : CT_EV_UNDER_V;
}

static int ct_read_event_config(struct iio_dev *indio_dev,
				const struct iio_chan_spec *chan,
				enum iio_event_type type,
				enum iio_event_direction dir)
{
	struct ct_state *st = iio_priv(indio_dev);
	int id = ct_event_id(chan, dir);
	int ret;

	if (id < 0)
		return id;
	mutex_lock(&st->lock);
	ret = st->ev[id].enabled;
	mutex_unlock(&st->lock);
	return ret;
}

static int ct_write_event_config(struct iio_dev *indio_dev,
				 const struct iio_chan_spec *chan,
				 enum iio_event_type type,
				 enum iio_event_direction dir, int state)
{
	struct ct_state *st = iio_priv(indio_dev);
	int id = ct_event_id(chan, dir);

	if (id < 0)
		return id;
	mutex_lock(&st->lock);
	st->ev[id].enabled = state;
	st->ev[id].active = false;
	mutex_unlock(&st->lock);
	return 0;
}

static int ct_read_event_value(struct iio_dev *indio_dev,
			       const struct iio_chan_spec *chan,
			       enum iio_event_type type,
			       enum iio_event_direction dir,
			       enum iio_event_info info, int *val, int *val2)
{
	struct ct_state *st = iio_priv(indio_dev);
	int id = ct_event_id(chan, dir);

	if (id < 0)
		return id;
	mutex_lock(&st->lock);
	*val = info == IIO_EV_INFO_HYSTERESIS ? st->ev[id].hyst :
						st->ev[id].value;
	mutex_unlock(&st->lock);
	return IIO_VAL_INT;
}

static int ct_write_event_value(struct iio_dev *indio_dev,
				const struct iio_chan_spec *chan,
				enum iio_event_type type,
				enum iio_event_direction dir,
				enum iio_event_info info, int val, int val2)
{
	struct ct_state *st = iio_priv(indio_dev);
	int id = ct_event_id(chan, dir);

	if (id < 0)
		return id;
	if (val < 0 || val2) {
		dev_info_ratelimited(st->dev, "rejected event %s %d: must be >= 0\n",
				     info == IIO_EV_INFO_HYSTERESIS ?
				     "hysteresis" : "value", val);
		return -EINVAL;
	}
	mutex_lock(&st->lock);
	if (info == IIO_EV_INFO_HYSTERESIS)
		st->ev[id].hyst = val;
	else
		st->ev[id].value = val;
	st->ev[id].active = false;
	mutex_unlock(&st->lock);
	return 0;
}

static ssize_t ct_counter_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct ct_state *st = iio_priv(dev_to_iio_dev(dev));
	u64 v;

	mutex_lock(&st->lock);
	switch ((enum ct_counter)to_iio_dev_attr(attr)->address) {
	case CT_C_READ_ERRORS:
		v = st->read_errors;
		break;
	case CT_C_DISCARDED:
		v = st->meter.discarded;
		break;
	case CT_C_CYCLES:
		v = st->meter.cycles;
		break;
	case CT_C_WITHHELD:
		v = st->meter.withheld;
		break;
	case CT_C_MISSED:
		v = st->meter.missed;
		break;
	default:
		v = st->meter.gap_ns;
		break;
	}
	mutex_unlock(&st->lock);
	return sysfs_emit(buf, "%llu\n", v);
}

/* Anti-creep threshold, uA: policy, with a default from the front end. */
static ssize_t ct_no_load_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct ct_state *st = iio_priv(dev_to_iio_dev(dev));
	u32 v;

	mutex_lock(&st->lock);
	v = st->cfg.no_load_ua;
	mutex_unlock(&st->lock);
	return sysfs_emit(buf, "%u\n", v);
}

static ssize_t ct_no_load_store(struct device *dev,
				struct device_attribute *attr,
				const char *buf, size_t len)
{
	struct ct_state *st = iio_priv(dev_to_iio_dev(dev));
	struct ct_meter_cfg cfg;
	u32 v;
	int ret;

	ret = kstrtou32(buf, 10, &v);
	if (ret || v > CT_NO_LOAD_UA_MAX) {
		dev_info_ratelimited(st->dev, "rejected no_load_current_raw: 0..%u uA\n",
				     CT_NO_LOAD_UA_MAX);
		return -EINVAL;
	}
	mutex_lock(&st->lock);
	cfg = st->cfg;
	cfg.no_load_ua = v;
	ret = ct_meter_set_cfg(&st->meter, &cfg);
	if (!ret) {
		st->cfg = cfg;
		st->no_load_default = false;
	}
	mutex_unlock(&st->lock);
	return ret ?: len;
}

static IIO_DEVICE_ATTR(read_errors, 0444, ct_counter_show, NULL, CT_C_READ_ERRORS);
static IIO_DEVICE_ATTR(cycles_discarded, 0444, ct_counter_show, NULL, CT_C_DISCARDED);
static IIO_DEVICE_ATTR(cycles, 0444, ct_counter_show, NULL, CT_C_CYCLES);
static IIO_DEVICE_ATTR(cycles_withheld, 0444, ct_counter_show, NULL, CT_C_WITHHELD);
static IIO_DEVICE_ATTR(missed_samples, 0444, ct_counter_show, NULL, CT_C_MISSED);
static IIO_DEVICE_ATTR(gap_time_ns, 0444, ct_counter_show, NULL, CT_C_GAP_NS);
static IIO_DEVICE_ATTR(no_load_current_raw, 0644, ct_no_load_show,
		       ct_no_load_store, 0);

static struct attribute *ct_attrs[] = {
	&iio_dev_attr_read_errors.dev_attr.attr,
	&iio_dev_attr_cycles_discarded.dev_attr.attr,
	&iio_dev_attr_cycles.dev_attr.attr,
	&iio_dev_attr_cycles_withheld.dev_attr.attr,
	&iio_dev_attr_missed_samples.dev_attr.attr,
	&iio_dev_attr_gap_time_ns.dev_attr.attr,
	&iio_dev_attr_no_load_current_raw.dev_attr.attr,
	NULL
};

static const struct attribute_group ct_attr_group = {
	.attrs = ct_attrs,
};

static const struct iio_info ct_info = {
	.read_raw = ct_read_raw,
	.write_raw = ct_write_raw,
	.write_raw_get_fmt = ct_write_raw_get_fmt,
	.read_event_config = ct_read_event_config,
	.write_event_config = ct_write_event_config,
	.read_event_value = ct_read_event_value,
	.write_event_value = ct_write_event_value,
	.attrs = &ct_attr_group,
};

/* --- probe ----------------------------------------------------------------- */

/*
 * ADC volts per code, as nanovolts per 1024 codes, from the channel's scale
 * (millivolts per code): num / den mV. Return: 0, or -EINVAL when the scale
 * is not positive or beyond CT_NV_X1024_MAX.
 */
static int ct_scale_nv_x1024(int type, int val, int val2, u64 *nv_x1024)
{
	u64 num, den;

	switch (type) {
	case IIO_VAL_INT:
		num = val;
		den = 1;
		break;
	case IIO_VAL_INT_PLUS_MICRO:
	case IIO_VAL_INT_PLUS_NANO:
		/* negative when either part is: never a usable scale */
		if (val < 0 || val2 < 0)
			return -EINVAL;
		den = type == IIO_VAL_INT_PLUS_MICRO ? USEC_PER_SEC : NSEC_PER_SEC;
		num = (u64)val * den + val2;
		break;
	case IIO_VAL_FRACTIONAL:
		if (val2 <= 0)
			return -EINVAL;
		num = val;
		den = val2;
		break;
	case IIO_VAL_FRACTIONAL_LOG2:
		if (val2 < 0 || val2 > 62)
			return -EINVAL;
		num = val;
		den = 1ULL << val2;
		break;
	default:
		return -EINVAL;
	}
	if (val < 0 || !num || div64_u64(num, den) >= CT_NV_X1024_MAX >> 30)
		return -EINVAL;
	/* below 2^40 (checked above), so the quotient cannot overflow */
	*nv_x1024 = mul_u64_u64_div_u64(num, 1024ULL * NSEC_PER_MSEC, den);
	if (!*nv_x1024 || *nv_x1024 > CT_NV_X1024_MAX)
		return -EINVAL;
	return 0;
}

static int ct_get_adc(struct ct_state *st, const char *name,
		      struct iio_channel **chan, u64 *nv_x1024, u32 *bits)
{
	struct device *dev = st->dev;
	const struct iio_chan_spec *spec;
	enum iio_chan_type type;
	int ret, val, val2;

	*chan = devm_iio_channel_get(dev, name);
	if (IS_ERR(*chan))
		return dev_err_probe(dev, PTR_ERR(*chan),
				     "cannot get the '%s' io-channel\n", name);
	spec = (*chan)->channel;
	ret = iio_get_channel_type(*chan, &type);
	if (ret || type != IIO_VOLTAGE)
		return dev_err_probe(dev, ret ?: -EINVAL,
				     "io-channel '%s' is not an ADC voltage channel\n",
				     name);
	/* the bias is removed by the metering, an offset would be ignored */
	if (iio_channel_has_info(spec, IIO_CHAN_INFO_OFFSET)) {
		ret = iio_read_channel_offset(*chan, &val, &val2);
		if (ret < 0)
			return dev_err_probe(dev, ret,
					     "io-channel '%s': cannot read its offset\n",
					     name);
		if (val || ((ret == IIO_VAL_INT_PLUS_MICRO ||
			     ret == IIO_VAL_INT_PLUS_NANO) && val2))
			return dev_err_probe(dev, -EINVAL,
					     "io-channel '%s' has a non-zero offset: not supported\n",
					     name);
	}
	if (!iio_channel_has_info(spec, IIO_CHAN_INFO_SCALE))
		return dev_err_probe(dev, -EINVAL,
				     "io-channel '%s' has no scale\n", name);
	ret = iio_read_channel_scale(*chan, &val, &val2);
	if (ret < 0)
		return dev_err_probe(dev, ret,
				     "io-channel '%s': cannot read its scale\n",
				     name);
	if (ct_scale_nv_x1024(ret, val, val2, nv_x1024))
		return dev_err_probe(dev, -EINVAL,
				     "io-channel '%s' has no usable scale (type %d: %d, %d)\n",
				     name, ret, val, val2);
	/*
	 * The resolution: realbits, or for drivers that declare no scan
	 * type (mcp320x) the 2^bits of a Vref / 2^bits scale. Wider codes
	 * would overflow the metering math (ct_metering.h).
	 */
	*bits = spec->scan_type.realbits;
	if (!*bits && ret == IIO_VAL_FRACTIONAL_LOG2)
		*bits = val2;
	if (!*bits)
		return dev_err_probe(dev, -EINVAL,
				     "io-channel '%s': resolution unknown (no realbits, scale not Vref / 2^bits)\n",
				     name);
	if (*bits > CT_ADC_BITS_MAX)
		return dev_err_probe(dev, -EINVAL,
				     "io-channel '%s' has %u-bit codes: at most %d bits supported\n",
				     name, *bits, CT_ADC_BITS_MAX);
	return 0;
}

static int ct_read_u32(struct device *dev, const char *prop, u32 def,
		       u32 min, u32 max, u32 *out)
{
	int ret = device_property_read_u32(dev, prop, out);

	if (ret == -EINVAL && def != U32_MAX) {
		*out = def;		/* optional, absent */
		return 0;
	}
	if (ret)
		return dev_err_probe(dev, -EINVAL, "%s: %s\n", prop,
				     ret == -EINVAL ? "missing" : "not a u32");
	if (*out < min || *out > max)
		return dev_err_probe(dev, -EINVAL, "%s = %u: out of range %u..%u\n",
				     prop, *out, min, max);
	return 0;
}

static int ct_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct iio_dev *indio_dev;
	struct ct_state *st;
	u32 phase = 0, fs = CT_FS_DEFAULT, bias_i = 0, bias_v = 0, bits_v, bits_i;
	int ret;

	indio_dev = devm_iio_device_alloc(dev, sizeof(*st));
	if (!indio_dev)
		return -ENOMEM;
	st = iio_priv(indio_dev);
	st->dev = dev;
	st->indio_dev = indio_dev;
	mutex_init(&st->lock);

	ret = ct_get_adc(st, "voltage", &st->vchan, &st->nv_v_x1024, &bits_v);
	if (ret)
		return ret;
	ret = ct_get_adc(st, "current", &st->ichan, &st->nv_i_x1024, &bits_i);
	if (ret)
		return ret;

	ret = ct_read_u32(dev, "gridmeter,ct-turns-ratio", U32_MAX, 1, 100000,
			  &st->ct_ratio);
	if (!ret)
		ret = ct_read_u32(dev, "gridmeter,burden-resistor-micro-ohms",
				  U32_MAX, 100000, 4000000000U, &st->burden_uohm);
	if (!ret)
		ret = ct_read_u32(dev, "gridmeter,voltage-ratio-milli", U32_MAX,
				  1000, 100000000, &st->vratio_milli);
	if (!ret)
		ret = ct_read_u32(dev, "gridmeter,current-delay-ns", 0, 0,
				  NSEC_PER_SEC / CT_FS_MIN, &st->delay_ns);
	if (!ret)
		ret = ct_read_u32(dev, "gridmeter,ct-phase-lead-millidegrees", 0,
				  0, U32_MAX - 1, &phase);
	if (!ret)
		ret = ct_read_u32(dev, "gridmeter,current-rms-offset", 0, 0,
				  U32_MAX - 1, &bias_i);
	if (!ret)
		ret = ct_read_u32(dev, "gridmeter,voltage-rms-offset", 0, 0,
				  U32_MAX - 1, &bias_v);
	if (ret)
		return ret;
	/* signed properties travel as u32 cells */
	if ((s32)phase > CT_PHASE_MDEG_MAX || (s32)phase < -CT_PHASE_MDEG_MAX)
		return dev_err_probe(dev, -EINVAL,
				     "gridmeter,ct-phase-lead-millidegrees = %d: out of range +-%d\n",
				     (s32)phase, CT_PHASE_MDEG_MAX);
	/* the limit of the calibbias attributes */
	if ((s32)bias_i > CT_MS_BIAS_MAX || (s32)bias_i < -CT_MS_BIAS_MAX)
		return dev_err_probe(dev, -EINVAL,
				     "gridmeter,current-rms-offset = %d: out of range +-%d\n",
				     (s32)bias_i, CT_MS_BIAS_MAX);
	if ((s32)bias_v > CT_MS_BIAS_MAX || (s32)bias_v < -CT_MS_BIAS_MAX)
		return dev_err_probe(dev, -EINVAL,
				     "gridmeter,voltage-rms-offset = %d: out of range +-%d\n",
				     (s32)bias_v, CT_MS_BIAS_MAX);

	st->cs_i = CT_CALIBSCALE_ONE;
	st->cs_v = CT_CALIBSCALE_ONE;
	/* policy (sampling rate, no-load threshold): sysfs, with defaults */
	st->cfg.fs = fs;
	st->cfg.phase_mdeg = (s32)phase;
	st->cfg.adc_bits = max(bits_v, bits_i);
	st->cfg.reverse = device_property_read_bool(dev, "gridmeter,ct-reversed");
	st->cfg.i_ms_bias = (s32)bias_i;
	st->cfg.v_ms_bias = (s32)bias_v;
	st->cfg.hyst = 16;
	if (ct_skew(st->delay_ns, fs, &st->cfg.skew_q16))
		return dev_err_probe(dev, -EINVAL,
				     "gridmeter,current-delay-ns = %u: not below the pair period at %u Hz\n",
				     st->delay_ns, fs);
	if (ct_gains(st, st->cs_i, st->cs_v, &st->cfg))
		return dev_err_probe(dev, -EINVAL,
				     "ct-turns-ratio / burden-resistor-micro-ohms / voltage-ratio-milli: gain per ADC code out of range\n");
	st->cfg.no_load_ua = ct_default_no_load_ua(st->cfg.i_gain_na);
	st->no_load_default = true;
	ret = ct_meter_init(&st->meter, &st->cfg);
	if (ret)
		return dev_err_probe(dev, ret, "inconsistent calibration\n");
	st->fs = fs;

	indio_dev->name = "gridmeter-ct";
	indio_dev->info = &ct_info;
	indio_dev->modes = INDIO_DIRECT_MODE;
	indio_dev->channels = ct_channels;
	indio_dev->num_channels = ARRAY_SIZE(ct_channels);
	indio_dev->available_scan_masks = ct_scan_masks;

	/*
	 * A trigger per mains cycle, the default one of the buffer. Allocated
	 * without a module owner: as our own default trigger, a module
	 * reference would pin the module for as long as the device is bound
	 * (rmmod -EAGAIN). No trigger op lives in this module, and the trigger
	 * is unregistered before the module can go.
	 */
	st->trig = __devm_iio_trigger_alloc(dev, NULL, "%s-cycle", dev_name(dev));
	if (!st->trig)
		return -ENOMEM;
	ret = devm_iio_trigger_register(dev, st->trig);
	if (ret)
		return dev_err_probe(dev, ret, "cannot register the trigger\n");
	indio_dev->trig = iio_trigger_get(st->trig);
	st->trig_work = IRQ_WORK_INIT_HARD(ct_trig_work);
	/* after the sampling thread stops (devm runs in reverse) */
	ret = devm_add_action_or_reset(dev, ct_sync_trig_work, &st->trig_work);
	if (ret)
		return ret;
	ret = devm_iio_triggered_buffer_setup(dev, indio_dev, NULL,
					      ct_trigger_handler, &ct_buffer_ops);
	if (ret)
		return dev_err_probe(dev, ret, "cannot set up the buffer\n");

	st->thread = kthread_run(ct_thread, st, "gridmeter-ct/%s", dev_name(dev));
	if (IS_ERR(st->thread))
		return dev_err_probe(dev, PTR_ERR(st->thread),
				     "cannot start the sampling thread\n");
	ret = devm_add_action_or_reset(dev, ct_stop_thread, st->thread);
	if (ret)
		return ret;

	return devm_iio_device_register(dev, indio_dev);
}

static const struct of_device_id ct_of_match[] = {
	{ .compatible = "gridmeter,ct-sensor" },
	{ }
};
MODULE_DEVICE_TABLE(of, ct_of_match);

static const struct platform_device_id ct_id[] = {
	{ "gridmeter-ct" },
	{ }
};
MODULE_DEVICE_TABLE(platform, ct_id);

static struct platform_driver ct_driver = {
	.driver = {
		.name = "gridmeter-ct",
		.of_match_table = ct_of_match,
	},
	.probe = ct_probe,
	.id_table = ct_id,
};
module_platform_driver(ct_driver);

MODULE_DESCRIPTION("gridmeter CT sensor: metering from two IIO ADC channels");
MODULE_LICENSE("GPL");
