// SPDX-License-Identifier: GPL-2.0
/*
 * gm_sim_adc - test-only simulated two-channel ADC (IIO provider), 12-bit
 * by default (8..16 bits and the reference voltage are module parameters),
 * and simulated GPIO chip for the gridmeter guests.
 *
 * The ADC behaves like a multiplexed MCP3008/MCP3208: one conversion at a
 * time, and every conversion advances the simulated time by one conversion
 * period (1 / sim_conv_rate_hz), whatever the wall clock does. Reading the
 * voltage then the current therefore samples the current one conversion
 * later, and results never depend on guest timing.
 *
 * Each channel is dc + fundamental + 3rd + 5th harmonic (amplitude in
 * milli-codes, phase in millidegrees) + Gaussian noise, quantised to
 * 0..2^bits - 1. The default waveform is the same 230 V / 10 A line whatever
 * the resolution and reference (amplitudes and DC scale with them).
 * A load step switches the current amplitude after a number of conversions;
 * dropouts make reads fail with -EIO. All of it is set through sysfs
 * attributes of the IIO device (sim_*), documented in tests/guest/ct/README.
 *
 * CH2 and CH3 are spare inputs for home sensors (an MQ gas module, issue
 * 15): a DC level in mV set in sysfs (sim_ch2_mv, sim_ch3_mv), quantised
 * like the others, without noise. They are outside the scan mask and the
 * iio_map (sysfs reads only, like meterd's), and a read of them does not
 * advance the simulated time: a real MCP3008 would spend one conversion on
 * it and delay the CT's next pair, but the CT tests compare exact energies
 * over counted conversions, which a home sensor's reads must not shift.
 *
 * On platforms without device tree the module also registers the iio_map
 * that routes CH0/CH1 to the consumer "gridmeter-ct.0" (channels "voltage"
 * and "current"), and creates that consumer platform device with the
 * calibration properties of the simulated front end (software node). When
 * the device tree has a "gridmeter,sim-adc" node (arm64 guests), the module
 * only binds to it and the ct-sensor node there is the consumer.
 *
 * The GPIO chip "gm-sim-gpio" has an interrupt controller without a parent:
 * its interrupts are nested and threaded, raised with handle_nested_irq()
 * from the sysfs writer that changes an input line's level (sim_gpio_levels)
 * when that change matches the edge types requested. Output level changes
 * are time-stamped (wall clock and simulated time, sim_gpio_changed) so a
 * test can measure how fast a consumer reacts to a simulated event.
 */
#include <linux/delay.h>
#include <linux/gpio/driver.h>
#include <linux/iio/buffer.h>
#include <linux/iio/driver.h>
#include <linux/iio/iio.h>
#include <linux/iio/machine.h>
#include <linux/iio/sysfs.h>
#include <linux/iio/trigger_consumer.h>
#include <linux/iio/triggered_buffer.h>
#include <linux/sched.h>
#include <linux/interrupt.h>
#include <linux/math.h>
#include <linux/irq.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/mod_devicetable.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/of.h>
#include <linux/platform_device.h>
#include <linux/property.h>

#include "../../drivers/iio/ct/ct_compat.h"
#include "../../drivers/iio/ct/ct_costab.h"

#define SIM_NGPIO	8

static bool consumer = true;
module_param(consumer, bool, 0444);
MODULE_PARM_DESC(consumer, "create the gridmeter-ct.0 consumer device and its iio_map");

static unsigned int bad_props;
module_param(bad_props, uint, 0444);
MODULE_PARM_DESC(bad_props, "test the consumer's probe: 1 omits gridmeter,ct-turns-ratio, 2 makes the conversion delay a whole pair period, 3 gives a current-rms-offset beyond 2^24");

static unsigned int rate = 8000;
module_param(rate, uint, 0444);
MODULE_PARM_DESC(rate, "conversions per simulated second (2000..32000); the consumer gets rate/2 pairs/s");

static unsigned int bits = 12;
module_param(bits, uint, 0444);
MODULE_PARM_DESC(bits, "resolution (8..16): codes 0..2^bits-1, realbits, scale vref_mv >> bits");

static unsigned int vref_mv = 3300;
module_param(vref_mv, uint, 0444);
MODULE_PARM_DESC(vref_mv, "reference voltage, mV (1000..5500)");

static unsigned int adc_quirk;
module_param(adc_quirk, uint, 0444);
MODULE_PARM_DESC(adc_quirk, "test the consumer's probe: 1 channels without a scale, 2 channels with a non-zero offset, 3 no scan type (no realbits, like mcp320x)");

static unsigned int ct_ratio = 2000;
module_param(ct_ratio, uint, 0444);
MODULE_PARM_DESC(ct_ratio, "the consumer's gridmeter,ct-turns-ratio (2000)");

static unsigned int burden_uohm = 22000000;
module_param(burden_uohm, uint, 0444);
MODULE_PARM_DESC(burden_uohm, "the consumer's gridmeter,burden-resistor-micro-ohms (22000000)");

/*
 * A real ADC converts the signal at the instant it is read. The simulated
 * time counts conversions, so that the guests' scheduling jitter does not
 * show in the results, but it never falls more than this behind the wall
 * clock: a reader that stalls, or cannot keep up, finds the mains moved on
 * meanwhile, as a real one would.
 */
#define SIM_STALL_NS	(50 * NSEC_PER_MSEC)

enum sim_param {
	/* per channel, channel 0 (voltage) then channel 1 (current) */
	SIM_DC, SIM_AMP, SIM_PHASE, SIM_H3_AMP, SIM_H3_PHASE, SIM_H5_AMP,
	SIM_H5_PHASE, SIM_NOISE, SIM_STEP_AMP,
	SIM_PER_CH,
	/* global */
	SIM_FREQ = 2 * SIM_PER_CH, SIM_RATE, SIM_STEP_AFTER, SIM_FAIL_COUNT,
	SIM_FAIL_EVERY, SIM_STALL_MS,
	SIM_NPARAMS
};

/**
 * struct sim_adc - state of the simulated ADC
 * @lock:	protects every field below: parameters, simulated time and
 *		the noise generator (sysfs writers and conversions)
 * @p:		parameters, see enum sim_param
 * @conv:	conversions done since load (the simulated time)
 * @phase:	fundamental phase, 2^64 per turn
 * @step:	phase advance per conversion
 * @rng:	xorshift32 state of the noise
 * @stepped:	the load step happened
 * @step_ns:	ktime_get_ns() at the first conversion after the step (0: none)
 * @gpio:	the simulated GPIO chip
 * @t0_ns:	ktime_get_ns() at which the simulated time was anchored
 * @conv0:	@conv at @t0_ns
 * @jumps:	catch-ups of the simulated time (sim_catch_up()), @skipped the
 *		conversions they skipped (the mains went on unsampled)
 * @handler_comm: the task that last ran the buffer's trigger handler
 * @pairs:	channel-0 conversions timed since the last reset of the
 *		statistics (sim_pair_timing), @dev_sq2 the sum of squares of
 *		their interval's deviation from 2 / rate (ns^2 / 2^20), @dev_max
 *		the largest deviation, ns
 * @last_ch0_ns: ktime_get_ns() of the last channel-0 conversion
 * @scan:	buffer record (the trigger handler's)
 * @aux_mv:	DC level of CH2 and CH3, mV at the input (sim_ch2_mv, sim_ch3_mv)
 *
 * @conv is also read without @lock (READ_ONCE) by the GPIO chip to stamp
 * output changes with the simulated time; 64-bit platforms only.
 */
struct sim_adc {
	struct mutex lock;	/* see the kernel-doc above */
	s32 p[SIM_NPARAMS];
	u64 conv;
	u64 phase;
	u64 step;
	u32 rng;
	bool stepped;
	u64 step_ns;
	struct sim_gpio *gpio;
	u64 t0_ns;
	u64 conv0;
	u64 jumps, skipped;
	char handler_comm[TASK_COMM_LEN];
	u64 pairs;
	u64 dev_sq2;
	u64 dev_max;
	u64 last_ch0_ns;
	struct {
		u16 ch[2];
		u32 pad;
		s64 ts;
	} scan;
	s32 aux_mv[2];
};

/* at 3.3 V and 12 bits; sim_probe() scales DC and amplitudes to bits, vref */
static const s32 sim_defaults[SIM_NPARAMS] = {
	/* voltage: 230 V rms at 241.7 mV per code (ratio 300, 3.3 V, 12 bit) */
	[SIM_DC] = 2048, [SIM_AMP] = 1345795, [SIM_STEP_AMP] = -1,
	/* current: 10 A rms at 73.24 mA per code (2000:1 CT, 22 ohm) */
	[SIM_PER_CH + SIM_DC] = 2050, [SIM_PER_CH + SIM_AMP] = 193087,
	[SIM_PER_CH + SIM_STEP_AMP] = -1,
	[SIM_NOISE] = 500, [SIM_PER_CH + SIM_NOISE] = 500,
	[SIM_FREQ] = 50000, [SIM_RATE] = 8000,
};

/* A default amplitude at 3.3 V / 12 bits, for the resolution and reference. */
static s32 sim_scale_amp(s32 amp)
{
	return div_u64((u64)amp * 3300 << bits, vref_mv * 4096ULL);
}

static void sim_update_step(struct sim_adc *st)
{
	/* 2^64 * f / rate, f in mHz */
	st->step = mul_u64_u64_div_u64(st->p[SIM_FREQ], 1ULL << 63,
				       500ULL * st->p[SIM_RATE]);
}

/* cos of a phase (2^32 per turn), Q14, linearly interpolated. */
static s64 sim_cos(u32 th)
{
	u32 k = th >> (32 - CT_TAB_BITS);
	u32 frac = (th >> (16 - CT_TAB_BITS)) & 0xffff;
	s64 a = ct_cos_q14(k), b = ct_cos_q14((k + 1) % CT_TAB_SIZE);

	return a + (((b - a) * frac) >> 16);
}

static u32 sim_turns(s32 mdeg)
{
	return (u32)div_s64((s64)mdeg << 32, 360000);
}

static s64 sim_noise(struct sim_adc *st, s32 rms_milli)
{
	s64 sum = 0;
	int k;

	if (!rms_milli)
		return 0;
	for (k = 0; k < 4; k++) {
		st->rng ^= st->rng << 13;
		st->rng ^= st->rng >> 17;
		st->rng ^= st->rng << 5;
		sum += (s16)(st->rng >> 16);
	}
	/* the sum of four uniform s16 has a standard deviation of 37837 */
	return div_s64(sum * rms_milli, 37837);
}

/*
 * The mains went on while the reader lagged: bring the simulated time
 * within SIM_STALL_NS of the wall clock. Called before every conversion,
 * and before a parameter changes or the time is read, so that a change
 * takes effect at the simulated time of its wall-clock instant.
 */
static void sim_catch_up(struct sim_adc *st, u64 now)
{
	u64 due;

	if (!st->t0_ns) {
		st->t0_ns = now;
		st->conv0 = st->conv;
		return;
	}
	/* conversions the wall clock says have been due since t0 */
	due = st->conv0 + div_u64((now - st->t0_ns) * st->p[SIM_RATE], NSEC_PER_SEC);
	if (due > st->conv + div_u64(SIM_STALL_NS * st->p[SIM_RATE], NSEC_PER_SEC)) {
		st->phase += st->step * (due - st->conv);
		st->jumps++;
		st->skipped += due - st->conv;
		WRITE_ONCE(st->conv, due);
	}
}

/*
 * A spare channel (CH2, CH3): its DC level in codes, rounded, clamped to the
 * range. No simulated time passes (see the top of this file).
 */
static int sim_convert_aux(struct sim_adc *st, int ch)
{
	s64 code = div_s64(((s64)st->aux_mv[ch - 2] << (bits + 1)) + vref_mv, 2 * vref_mv);

	return clamp_t(s64, code, 0, (1 << bits) - 1);
}

/* One conversion of @ch at the current simulated time. */
static int sim_convert(struct sim_adc *st, int ch, int *val)
{
	const s32 *p = &st->p[ch * SIM_PER_CH];
	u64 n, now = ktime_get_ns();
	s64 x, amp;
	u32 th;

	if (st->p[SIM_STALL_MS] > 0) {
		/* a slow conversion: it blocks (the reader falls behind) */
		msleep(st->p[SIM_STALL_MS]);
		st->p[SIM_STALL_MS] = 0;
		now = ktime_get_ns();
	}
	sim_catch_up(st, now);
	n = st->conv;
	th = st->phase >> 32;
	if (!ch) {
		/* sampling jitter: the pair interval against 2 / rate */
		if (st->last_ch0_ns) {
			s64 d = (s64)(now - st->last_ch0_ns) -
				2 * (s64)NSEC_PER_SEC / st->p[SIM_RATE];
			u64 a = abs(d);

			st->pairs++;
			st->dev_sq2 += (a * a) >> 20;
			st->dev_max = max(st->dev_max, a);
		}
		st->last_ch0_ns = now;
	}
	WRITE_ONCE(st->conv, n + 1);
	st->phase += st->step;
	if (st->p[SIM_STEP_AFTER] > 0 && n >= (u64)st->p[SIM_STEP_AFTER] &&
	    !st->stepped) {
		st->stepped = true;
		st->step_ns = ktime_get_ns();
	}
	if (st->p[SIM_FAIL_COUNT] > 0) {
		st->p[SIM_FAIL_COUNT]--;
		return -EIO;
	}
	if (st->p[SIM_FAIL_EVERY] > 0 && !((n + 1) % st->p[SIM_FAIL_EVERY]))
		return -EIO;

	amp = (st->stepped && p[SIM_STEP_AMP] >= 0) ? p[SIM_STEP_AMP] : p[SIM_AMP];
	x = (s64)p[SIM_DC] * 1000 * 16384;
	x += amp * sim_cos(th + sim_turns(p[SIM_PHASE]));
	x += (s64)p[SIM_H3_AMP] * sim_cos(3 * th + sim_turns(p[SIM_H3_PHASE]));
	x += (s64)p[SIM_H5_AMP] * sim_cos(5 * th + sim_turns(p[SIM_H5_PHASE]));
	x += sim_noise(st, p[SIM_NOISE]) * 16384;
	/* milli-codes Q14 -> codes, rounded, clamped to the ADC's range */
	x = div_s64(x + 8192000, 16384000);
	*val = clamp_t(s64, x, 0, (1 << bits) - 1);
	return 0;
}

static int sim_read_raw(struct iio_dev *indio_dev,
			struct iio_chan_spec const *chan,
			int *val, int *val2, long mask)
{
	struct sim_adc *st = iio_priv(indio_dev);
	int ret;

	switch (mask) {
	case IIO_CHAN_INFO_RAW:
		mutex_lock(&st->lock);
		if (chan->channel >= 2) {
			*val = sim_convert_aux(st, chan->channel);
			ret = 0;
		} else {
			ret = sim_convert(st, chan->channel, val);
		}
		mutex_unlock(&st->lock);
		return ret ? ret : IIO_VAL_INT;
	case IIO_CHAN_INFO_SCALE:
		/* like mcp320x: vref / 2^resolution */
		*val = vref_mv;
		*val2 = bits;
		return IIO_VAL_FRACTIONAL_LOG2;
	case IIO_CHAN_INFO_OFFSET:
		/* adc_quirk=2 only: a bipolar-looking channel */
		*val = -(1 << (bits - 1));
		return IIO_VAL_INT;
	default:
		return -EINVAL;
	}
}

/* --- simulated GPIO chip: relays (outputs) and push buttons (inputs) ---- */

/**
 * struct sim_gpio - state of the simulated GPIO chip
 * @chip:	the gpio_chip, with its nested, threaded irq chip
 * @adc:	the simulated ADC, for its simulated time
 * @lock:	protects every field below; raw: the irq_chip callbacks are
 *		called under the irq descriptor's raw lock
 * @value:	line levels, bit per line
 * @output:	line directions, set bit = output
 * @irq_enabled: unmasked interrupts, bit per line
 * @irq_rising:	interrupts on rising edges, bit per line
 * @irq_falling: interrupts on falling edges, bit per line
 * @changed_conv: simulated time (ADC conversions) of each line's last change
 *		by gpio_chip.set (outputs)
 * @changed_ns:	ktime_get_ns() of the same change
 */
struct sim_gpio {
	struct gpio_chip chip;
	struct sim_adc *adc;
	raw_spinlock_t lock;	/* see the kernel-doc above */
	unsigned long value;
	unsigned long output;
	unsigned long irq_enabled;
	unsigned long irq_rising;
	unsigned long irq_falling;
	u64 changed_conv[SIM_NGPIO];
	u64 changed_ns[SIM_NGPIO];
};

static int sim_gpio_get(struct gpio_chip *gc, unsigned int off)
{
	struct sim_gpio *g = gpiochip_get_data(gc);
	unsigned long flags;
	int v;

	raw_spin_lock_irqsave(&g->lock, flags);
	v = !!(g->value & BIT(off));
	raw_spin_unlock_irqrestore(&g->lock, flags);
	return v;
}

static void sim_gpio_set(struct gpio_chip *gc, unsigned int off, int val)
{
	struct sim_gpio *g = gpiochip_get_data(gc);
	unsigned long flags, old;

	raw_spin_lock_irqsave(&g->lock, flags);
	old = g->value;
	if (val)
		g->value |= BIT(off);
	else
		g->value &= ~BIT(off);
	if (old != g->value) {
		g->changed_conv[off] = READ_ONCE(g->adc->conv);
		g->changed_ns[off] = ktime_get_ns();
	}
	raw_spin_unlock_irqrestore(&g->lock, flags);
}

static int sim_gpio_get_direction(struct gpio_chip *gc, unsigned int off)
{
	struct sim_gpio *g = gpiochip_get_data(gc);
	unsigned long flags;
	bool out;

	raw_spin_lock_irqsave(&g->lock, flags);
	out = g->output & BIT(off);
	raw_spin_unlock_irqrestore(&g->lock, flags);
	return out ? GPIO_LINE_DIRECTION_OUT : GPIO_LINE_DIRECTION_IN;
}

static int sim_gpio_direction_input(struct gpio_chip *gc, unsigned int off)
{
	struct sim_gpio *g = gpiochip_get_data(gc);
	unsigned long flags;

	raw_spin_lock_irqsave(&g->lock, flags);
	g->output &= ~BIT(off);
	raw_spin_unlock_irqrestore(&g->lock, flags);
	return 0;
}

static int sim_gpio_direction_output(struct gpio_chip *gc, unsigned int off,
				     int val)
{
	struct sim_gpio *g = gpiochip_get_data(gc);
	unsigned long flags;

	sim_gpio_set(gc, off, val);
	raw_spin_lock_irqsave(&g->lock, flags);
	g->output |= BIT(off);
	raw_spin_unlock_irqrestore(&g->lock, flags);
	return 0;
}

static void sim_gpio_irq_mask(struct irq_data *d)
{
	struct gpio_chip *gc = irq_data_get_irq_chip_data(d);
	struct sim_gpio *g = gpiochip_get_data(gc);
	irq_hw_number_t hw = irqd_to_hwirq(d);
	unsigned long flags;

	raw_spin_lock_irqsave(&g->lock, flags);
	g->irq_enabled &= ~BIT(hw);
	raw_spin_unlock_irqrestore(&g->lock, flags);
	gpiochip_disable_irq(gc, hw);
}

static void sim_gpio_irq_unmask(struct irq_data *d)
{
	struct gpio_chip *gc = irq_data_get_irq_chip_data(d);
	struct sim_gpio *g = gpiochip_get_data(gc);
	irq_hw_number_t hw = irqd_to_hwirq(d);
	unsigned long flags;

	gpiochip_enable_irq(gc, hw);
	raw_spin_lock_irqsave(&g->lock, flags);
	g->irq_enabled |= BIT(hw);
	raw_spin_unlock_irqrestore(&g->lock, flags);
}

/* Edges only: a simulated push button has no level-triggered users. */
static int sim_gpio_irq_set_type(struct irq_data *d, unsigned int type)
{
	struct gpio_chip *gc = irq_data_get_irq_chip_data(d);
	struct sim_gpio *g = gpiochip_get_data(gc);
	irq_hw_number_t hw = irqd_to_hwirq(d);
	unsigned long flags;

	if (type & ~IRQ_TYPE_EDGE_BOTH)
		return -EINVAL;
	raw_spin_lock_irqsave(&g->lock, flags);
	if (type & IRQ_TYPE_EDGE_RISING)
		g->irq_rising |= BIT(hw);
	else
		g->irq_rising &= ~BIT(hw);
	if (type & IRQ_TYPE_EDGE_FALLING)
		g->irq_falling |= BIT(hw);
	else
		g->irq_falling &= ~BIT(hw);
	raw_spin_unlock_irqrestore(&g->lock, flags);
	return 0;
}

static const struct irq_chip sim_gpio_irq_chip = {
	.name = "gm-sim-gpio",
	.irq_mask = sim_gpio_irq_mask,
	.irq_unmask = sim_gpio_irq_unmask,
	.irq_set_type = sim_gpio_irq_set_type,
	.flags = IRQCHIP_IMMUTABLE | IRQCHIP_SKIP_SET_WAKE,
	GPIOCHIP_IRQ_RESOURCE_HELPERS,
};

/*
 * Drive the input lines to @levels (output lines keep theirs), then raise
 * the interrupt of every input line whose change matches its requested
 * edges. Process context: handle_nested_irq() runs the consumers' threaded
 * handlers right here, after the new level is visible to them.
 */
static void sim_gpio_drive(struct sim_gpio *g, unsigned long levels)
{
	unsigned long flags, rose, fell, fire;
	unsigned int off;

	raw_spin_lock_irqsave(&g->lock, flags);
	levels = (levels & ~g->output) | (g->value & g->output);
	rose = levels & ~g->value;
	fell = g->value & ~levels;
	g->value = levels;
	fire = ((rose & g->irq_rising) | (fell & g->irq_falling)) & g->irq_enabled;
	raw_spin_unlock_irqrestore(&g->lock, flags);

	for_each_set_bit(off, &fire, SIM_NGPIO) {
		unsigned int irq = irq_find_mapping(g->chip.irq.domain, off);

		if (irq)
			handle_nested_irq(irq);
	}
}

static int sim_gpio_probe(struct device *dev, struct sim_adc *st)
{
	struct sim_gpio *g = devm_kzalloc(dev, sizeof(*g), GFP_KERNEL);
	struct gpio_irq_chip *girq;

	if (!g)
		return -ENOMEM;
	raw_spin_lock_init(&g->lock);
	g->adc = st;
	st->gpio = g;
	g->chip.label = "gm-sim-gpio";
	g->chip.parent = dev;
	g->chip.owner = THIS_MODULE;
	g->chip.base = -1;
	g->chip.ngpio = SIM_NGPIO;
	g->chip.get = sim_gpio_get;
	g->chip.set = sim_gpio_set;
	g->chip.get_direction = sim_gpio_get_direction;
	g->chip.direction_input = sim_gpio_direction_input;
	g->chip.direction_output = sim_gpio_direction_output;

	/* no parent interrupt: nested, threaded, raised by sim_gpio_drive() */
	girq = &g->chip.irq;
	gpio_irq_chip_set_chip(girq, &sim_gpio_irq_chip);
	girq->handler = handle_simple_irq;
	girq->default_type = IRQ_TYPE_NONE;
	girq->threaded = true;
	return devm_gpiochip_add_data(dev, &g->chip, g);
}

static ssize_t sim_gpio_levels_show(struct device *dev,
				    struct device_attribute *attr, char *buf)
{
	struct sim_gpio *g = ((struct sim_adc *)iio_priv(dev_to_iio_dev(dev)))->gpio;
	unsigned long flags, v;

	raw_spin_lock_irqsave(&g->lock, flags);
	v = g->value;
	raw_spin_unlock_irqrestore(&g->lock, flags);
	return sysfs_emit(buf, "0x%02lx\n", v);
}

static ssize_t sim_gpio_levels_store(struct device *dev,
				     struct device_attribute *attr,
				     const char *buf, size_t len)
{
	struct sim_gpio *g = ((struct sim_adc *)iio_priv(dev_to_iio_dev(dev)))->gpio;
	unsigned long v;
	int ret;

	ret = kstrtoul(buf, 0, &v);
	if (ret)
		return ret;
	if (v >= BIT(SIM_NGPIO))
		return -EINVAL;
	sim_gpio_drive(g, v);
	return len;
}

static ssize_t sim_gpio_changed_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	struct sim_gpio *g = ((struct sim_adc *)iio_priv(dev_to_iio_dev(dev)))->gpio;
	u64 conv[SIM_NGPIO], ns[SIM_NGPIO];
	unsigned long flags;
	int k, n = 0;

	raw_spin_lock_irqsave(&g->lock, flags);
	memcpy(conv, g->changed_conv, sizeof(conv));
	memcpy(ns, g->changed_ns, sizeof(ns));
	raw_spin_unlock_irqrestore(&g->lock, flags);
	for (k = 0; k < SIM_NGPIO; k++)
		n += sysfs_emit_at(buf, n, "%d %llu %llu\n", k, conv[k], ns[k]);
	return n;
}

static ssize_t sim_show(struct device *dev, struct device_attribute *attr,
			char *buf)
{
	struct sim_adc *st = iio_priv(dev_to_iio_dev(dev));
	int idx = to_iio_dev_attr(attr)->address;
	s32 v;

	mutex_lock(&st->lock);
	v = st->p[idx];
	mutex_unlock(&st->lock);
	return sysfs_emit(buf, "%d\n", v);
}

static ssize_t sim_store(struct device *dev, struct device_attribute *attr,
			 const char *buf, size_t len)
{
	struct sim_adc *st = iio_priv(dev_to_iio_dev(dev));
	int idx = to_iio_dev_attr(attr)->address;
	s32 v;
	int ret;

	ret = kstrtos32(buf, 0, &v);
	if (ret)
		return ret;
	if ((idx == SIM_FREQ && (v < 1000 || v > 1000000)) ||
	    (idx == SIM_RATE && (v < 100 || v > 1000000)) ||
	    (idx % SIM_PER_CH == SIM_NOISE && idx < SIM_FREQ && (v < 0 || v > 1000000)) ||
	    (idx == SIM_STALL_MS && (v < 0 || v > 10000)))
		return -EINVAL;
	mutex_lock(&st->lock);
	/* the change happens now: at the simulated time of this instant */
	if (st->t0_ns)
		sim_catch_up(st, ktime_get_ns());
	/* below Nyquist, which also keeps the phase step within 64 bits */
	if ((idx == SIM_FREQ && (s64)v >= 500LL * st->p[SIM_RATE]) ||
	    (idx == SIM_RATE && 500LL * v <= st->p[SIM_FREQ])) {
		mutex_unlock(&st->lock);
		return -EINVAL;
	}
	st->p[idx] = v;
	if (idx == SIM_FREQ || idx == SIM_RATE)
		sim_update_step(st);
	if (idx == SIM_RATE)
		st->t0_ns = 0;	/* the wall clock anchors again */
	if (idx == SIM_STEP_AFTER) {
		/* counted from now */
		st->stepped = false;
		st->step_ns = 0;
		if (v > 0)
			st->p[idx] = v + st->conv;
	}
	mutex_unlock(&st->lock);
	return len;
}

static ssize_t sim_aux_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	struct sim_adc *st = iio_priv(dev_to_iio_dev(dev));
	int idx = to_iio_dev_attr(attr)->address;
	s32 v;

	mutex_lock(&st->lock);
	v = st->aux_mv[idx];
	mutex_unlock(&st->lock);
	return sysfs_emit(buf, "%d\n", v);
}

/* 0 .. the reference voltage: the input's range (above it a real input clips) */
static ssize_t sim_aux_store(struct device *dev, struct device_attribute *attr,
			     const char *buf, size_t len)
{
	struct sim_adc *st = iio_priv(dev_to_iio_dev(dev));
	int idx = to_iio_dev_attr(attr)->address;
	s32 v;
	int ret;

	ret = kstrtos32(buf, 0, &v);
	if (ret)
		return ret;
	if (v < 0 || v > vref_mv)
		return -EINVAL;
	mutex_lock(&st->lock);
	st->aux_mv[idx] = v;
	mutex_unlock(&st->lock);
	return len;
}

static ssize_t sim_conversions_show(struct device *dev,
				    struct device_attribute *attr, char *buf)
{
	struct sim_adc *st = iio_priv(dev_to_iio_dev(dev));
	u64 n;

	mutex_lock(&st->lock);
	if (st->t0_ns)
		sim_catch_up(st, ktime_get_ns());
	n = st->conv;
	mutex_unlock(&st->lock);
	return sysfs_emit(buf, "%llu\n", n);
}

static ssize_t sim_step_ns_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct sim_adc *st = iio_priv(dev_to_iio_dev(dev));
	u64 ns;

	mutex_lock(&st->lock);
	ns = st->step_ns;
	mutex_unlock(&st->lock);
	return sysfs_emit(buf, "%llu\n", ns);
}

/*
 * "JUMPS SKIPPED": how often the simulated time caught up with the wall
 * clock and how many conversions that skipped. The driver decides on a gap
 * from its own schedule, the simulator from its own anchor: near the 50 ms
 * of both, one may jump where the other saw no gap.
 */
static ssize_t sim_catchups_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	struct sim_adc *st = iio_priv(dev_to_iio_dev(dev));
	u64 jumps, skipped;

	mutex_lock(&st->lock);
	if (st->t0_ns)
		sim_catch_up(st, ktime_get_ns());
	jumps = st->jumps;
	skipped = st->skipped;
	mutex_unlock(&st->lock);
	return sysfs_emit(buf, "%llu %llu\n", jumps, skipped);
}

/* The task that last ran the buffer's trigger handler ("" if none did). */
static ssize_t sim_handler_comm_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	struct sim_adc *st = iio_priv(dev_to_iio_dev(dev));
	ssize_t n;

	mutex_lock(&st->lock);
	n = sysfs_emit(buf, "%s\n", st->handler_comm);
	mutex_unlock(&st->lock);
	return n;
}

static IIO_DEVICE_ATTR(sim_handler_comm, 0444, sim_handler_comm_show, NULL, 0);

/*
 * Timing of the consumer's pairs (channel 0 then 1): "PAIRS RMS_NS MAX_NS",
 * the RMS and largest deviation of the interval between two channel-0
 * conversions from 2 / rate; any write restarts the statistics.
 */
static ssize_t sim_pair_timing_show(struct device *dev,
				    struct device_attribute *attr, char *buf)
{
	struct sim_adc *st = iio_priv(dev_to_iio_dev(dev));
	u64 n, sq, mx;

	mutex_lock(&st->lock);
	n = st->pairs;
	sq = st->dev_sq2;
	mx = st->dev_max;
	mutex_unlock(&st->lock);
	return sysfs_emit(buf, "%llu %llu %llu\n", n,
			  n ? (u64)int_sqrt64(div64_u64(sq, n) << 20) : 0ULL, mx);
}

static ssize_t sim_pair_timing_store(struct device *dev,
				     struct device_attribute *attr,
				     const char *buf, size_t len)
{
	struct sim_adc *st = iio_priv(dev_to_iio_dev(dev));

	mutex_lock(&st->lock);
	st->pairs = 0;
	st->dev_sq2 = 0;
	st->dev_max = 0;
	st->last_ch0_ns = 0;
	mutex_unlock(&st->lock);
	return len;
}

static IIO_DEVICE_ATTR(sim_pair_timing, 0644, sim_pair_timing_show,
		       sim_pair_timing_store, 0);

/*
 * Triggered buffer: one conversion of each channel per trigger, as an
 * ADC's SPI read in its own handler. Records who ran it.
 */
static irqreturn_t sim_trigger_handler(int irq, void *p)
{
	struct iio_poll_func *pf = p;
	struct iio_dev *indio_dev = pf->indio_dev;
	struct sim_adc *st = iio_priv(indio_dev);
	int k, val;

	mutex_lock(&st->lock);
	strscpy(st->handler_comm, current->comm, sizeof(st->handler_comm));
	for (k = 0; k < 2; k++)
		st->scan.ch[k] = sim_convert(st, k, &val) ? 0 : val;
	mutex_unlock(&st->lock);
	iio_push_to_buffers_with_timestamp(indio_dev, &st->scan,
					   iio_get_time_ns(indio_dev));
	iio_trigger_notify_done(indio_dev->trig);
	return IRQ_HANDLED;
}

static IIO_DEVICE_ATTR(sim_ch0_dc, 0644, sim_show, sim_store, SIM_DC);
static IIO_DEVICE_ATTR(sim_ch0_amp_milli, 0644, sim_show, sim_store, SIM_AMP);
static IIO_DEVICE_ATTR(sim_ch0_phase_mdeg, 0644, sim_show, sim_store, SIM_PHASE);
static IIO_DEVICE_ATTR(sim_ch0_h3_amp_milli, 0644, sim_show, sim_store, SIM_H3_AMP);
static IIO_DEVICE_ATTR(sim_ch0_h3_phase_mdeg, 0644, sim_show, sim_store, SIM_H3_PHASE);
static IIO_DEVICE_ATTR(sim_ch0_h5_amp_milli, 0644, sim_show, sim_store, SIM_H5_AMP);
static IIO_DEVICE_ATTR(sim_ch0_h5_phase_mdeg, 0644, sim_show, sim_store, SIM_H5_PHASE);
static IIO_DEVICE_ATTR(sim_ch0_noise_milli, 0644, sim_show, sim_store, SIM_NOISE);
static IIO_DEVICE_ATTR(sim_ch0_step_amp_milli, 0644, sim_show, sim_store, SIM_STEP_AMP);
static IIO_DEVICE_ATTR(sim_ch1_dc, 0644, sim_show, sim_store, SIM_PER_CH + SIM_DC);
static IIO_DEVICE_ATTR(sim_ch1_amp_milli, 0644, sim_show, sim_store, SIM_PER_CH + SIM_AMP);
static IIO_DEVICE_ATTR(sim_ch1_phase_mdeg, 0644, sim_show, sim_store, SIM_PER_CH + SIM_PHASE);
static IIO_DEVICE_ATTR(sim_ch1_h3_amp_milli, 0644, sim_show, sim_store, SIM_PER_CH + SIM_H3_AMP);
static IIO_DEVICE_ATTR(sim_ch1_h3_phase_mdeg, 0644, sim_show, sim_store, SIM_PER_CH + SIM_H3_PHASE);
static IIO_DEVICE_ATTR(sim_ch1_h5_amp_milli, 0644, sim_show, sim_store, SIM_PER_CH + SIM_H5_AMP);
static IIO_DEVICE_ATTR(sim_ch1_h5_phase_mdeg, 0644, sim_show, sim_store, SIM_PER_CH + SIM_H5_PHASE);
static IIO_DEVICE_ATTR(sim_ch1_noise_milli, 0644, sim_show, sim_store, SIM_PER_CH + SIM_NOISE);
static IIO_DEVICE_ATTR(sim_ch1_step_amp_milli, 0644, sim_show, sim_store,
		       SIM_PER_CH + SIM_STEP_AMP);
static IIO_DEVICE_ATTR(sim_freq_mhz, 0644, sim_show, sim_store, SIM_FREQ);
static IIO_DEVICE_ATTR(sim_conv_rate_hz, 0644, sim_show, sim_store, SIM_RATE);
static IIO_DEVICE_ATTR(sim_step_after, 0644, sim_show, sim_store, SIM_STEP_AFTER);
static IIO_DEVICE_ATTR(sim_fail_count, 0644, sim_show, sim_store, SIM_FAIL_COUNT);
static IIO_DEVICE_ATTR(sim_fail_every, 0644, sim_show, sim_store, SIM_FAIL_EVERY);
static IIO_DEVICE_ATTR(sim_stall_ms, 0644, sim_show, sim_store, SIM_STALL_MS);
static IIO_DEVICE_ATTR(sim_conversions, 0444, sim_conversions_show, NULL, 0);
static IIO_DEVICE_ATTR(sim_ch2_mv, 0644, sim_aux_show, sim_aux_store, 0);
static IIO_DEVICE_ATTR(sim_ch3_mv, 0644, sim_aux_show, sim_aux_store, 1);
static IIO_DEVICE_ATTR(sim_step_ns, 0444, sim_step_ns_show, NULL, 0);
static IIO_DEVICE_ATTR(sim_catchups, 0444, sim_catchups_show, NULL, 0);
static IIO_DEVICE_ATTR(sim_gpio_levels, 0644, sim_gpio_levels_show,
		       sim_gpio_levels_store, 0);
static IIO_DEVICE_ATTR(sim_gpio_changed, 0444, sim_gpio_changed_show, NULL, 0);

static struct attribute *sim_attrs[] = {
	&iio_dev_attr_sim_ch0_dc.dev_attr.attr,
	&iio_dev_attr_sim_ch0_amp_milli.dev_attr.attr,
	&iio_dev_attr_sim_ch0_phase_mdeg.dev_attr.attr,
	&iio_dev_attr_sim_ch0_h3_amp_milli.dev_attr.attr,
	&iio_dev_attr_sim_ch0_h3_phase_mdeg.dev_attr.attr,
	&iio_dev_attr_sim_ch0_h5_amp_milli.dev_attr.attr,
	&iio_dev_attr_sim_ch0_h5_phase_mdeg.dev_attr.attr,
	&iio_dev_attr_sim_ch0_noise_milli.dev_attr.attr,
	&iio_dev_attr_sim_ch0_step_amp_milli.dev_attr.attr,
	&iio_dev_attr_sim_ch1_dc.dev_attr.attr,
	&iio_dev_attr_sim_ch1_amp_milli.dev_attr.attr,
	&iio_dev_attr_sim_ch1_phase_mdeg.dev_attr.attr,
	&iio_dev_attr_sim_ch1_h3_amp_milli.dev_attr.attr,
	&iio_dev_attr_sim_ch1_h3_phase_mdeg.dev_attr.attr,
	&iio_dev_attr_sim_ch1_h5_amp_milli.dev_attr.attr,
	&iio_dev_attr_sim_ch1_h5_phase_mdeg.dev_attr.attr,
	&iio_dev_attr_sim_ch1_noise_milli.dev_attr.attr,
	&iio_dev_attr_sim_ch1_step_amp_milli.dev_attr.attr,
	&iio_dev_attr_sim_freq_mhz.dev_attr.attr,
	&iio_dev_attr_sim_conv_rate_hz.dev_attr.attr,
	&iio_dev_attr_sim_step_after.dev_attr.attr,
	&iio_dev_attr_sim_fail_count.dev_attr.attr,
	&iio_dev_attr_sim_fail_every.dev_attr.attr,
	&iio_dev_attr_sim_stall_ms.dev_attr.attr,
	&iio_dev_attr_sim_handler_comm.dev_attr.attr,
	&iio_dev_attr_sim_pair_timing.dev_attr.attr,
	&iio_dev_attr_sim_conversions.dev_attr.attr,
	&iio_dev_attr_sim_step_ns.dev_attr.attr,
	&iio_dev_attr_sim_catchups.dev_attr.attr,
	&iio_dev_attr_sim_gpio_levels.dev_attr.attr,
	&iio_dev_attr_sim_gpio_changed.dev_attr.attr,
	&iio_dev_attr_sim_ch2_mv.dev_attr.attr,
	&iio_dev_attr_sim_ch3_mv.dev_attr.attr,
	NULL
};

static const struct attribute_group sim_attr_group = {
	.attrs = sim_attrs,
};

static const struct iio_info sim_info = {
	.read_raw = sim_read_raw,
	.attrs = &sim_attr_group,
};

#define SIM_CHAN(_c) {						\
	.type = IIO_VOLTAGE,					\
	.indexed = 1,						\
	.channel = _c,						\
	.datasheet_name = "CH" #_c,				\
	.info_mask_separate = BIT(IIO_CHAN_INFO_RAW),		\
	.info_mask_shared_by_type = BIT(IIO_CHAN_INFO_SCALE),	\
	.scan_type = { .sign = 'u', .realbits = 12, .storagebits = 16, \
		       .endianness = IIO_CPU },			\
}

/*
 * template; sim_probe() sets the resolution and the adc_quirk. CH2 and CH3
 * are not in the buffer (scan index -1), the timestamp is its index 2.
 */
static const struct iio_chan_spec sim_channels[] = {
	SIM_CHAN(0),
	SIM_CHAN(1),
	SIM_CHAN(2),
	SIM_CHAN(3),
	IIO_CHAN_SOFT_TIMESTAMP(2),
};

#define SIM_NADC	4	/* ADC channels in sim_channels[] */

static const unsigned long sim_scan_masks[] = { 0x3, 0 };

static struct iio_map sim_maps[] = {
	{
		.consumer_dev_name = "gridmeter-ct.0",
		.consumer_channel = "voltage",
		.adc_channel_label = "CH0",
	}, {
		.consumer_dev_name = "gridmeter-ct.0",
		.consumer_channel = "current",
		.adc_channel_label = "CH1",
	},
	{ }
};

/* --- platform glue ------------------------------------------------------- */

static int sim_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct iio_chan_spec *chans;
	struct iio_dev *indio_dev;
	struct sim_adc *st;
	int ret, k;

	indio_dev = devm_iio_device_alloc(dev, sizeof(*st));
	if (!indio_dev)
		return -ENOMEM;
	chans = devm_kmemdup(dev, sim_channels, sizeof(sim_channels), GFP_KERNEL);
	if (!chans)
		return -ENOMEM;
	for (k = 0; k < SIM_NADC; k++) {
		chans[k].scan_index = k < 2 ? k : -1;
		chans[k].scan_type.realbits = bits;
		if (adc_quirk == 3) {
			/* like mcp320x: no scan type, no buffer */
			chans[k].scan_type.realbits = 0;
			chans[k].scan_type.storagebits = 0;
			chans[k].scan_index = -1;
		}
		if (adc_quirk == 1)
			chans[k].info_mask_shared_by_type = 0;
		if (adc_quirk == 2)
			chans[k].info_mask_shared_by_type |= BIT(IIO_CHAN_INFO_OFFSET);
	}
	st = iio_priv(indio_dev);
	mutex_init(&st->lock);
	memcpy(st->p, sim_defaults, sizeof(st->p));
	/* mid-scale bias (the current's 2 codes above), same line in volts */
	st->p[SIM_DC] = 1 << (bits - 1);
	st->p[SIM_PER_CH + SIM_DC] = (1 << (bits - 1)) + 2;
	st->p[SIM_AMP] = sim_scale_amp(st->p[SIM_AMP]);
	st->p[SIM_PER_CH + SIM_AMP] = sim_scale_amp(st->p[SIM_PER_CH + SIM_AMP]);
	st->p[SIM_RATE] = rate;
	st->rng = 0x2545f491;
	sim_update_step(st);

	indio_dev->name = "gm-sim-adc";
	indio_dev->info = &sim_info;
	indio_dev->modes = INDIO_DIRECT_MODE;
	indio_dev->channels = chans;
	indio_dev->num_channels = adc_quirk == 3 ? SIM_NADC : ARRAY_SIZE(sim_channels);
	if (adc_quirk != 3) {
		/* scan masks only with a buffer (6.12 loops on them otherwise) */
		indio_dev->available_scan_masks = sim_scan_masks;
		ret = devm_iio_triggered_buffer_setup(dev, indio_dev, NULL,
						      sim_trigger_handler, NULL);
		if (ret)
			return dev_err_probe(dev, ret, "cannot set up the buffer\n");
	}

	if (consumer && !dev->of_node) {
		ret = devm_iio_map_array_register(dev, indio_dev, sim_maps);
		if (ret)
			return dev_err_probe(dev, ret, "cannot register iio_map\n");
	}
	ret = sim_gpio_probe(dev, st);
	if (ret)
		return dev_err_probe(dev, ret, "cannot add the gpio chip\n");
	return devm_iio_device_register(dev, indio_dev);
}

static const struct of_device_id sim_of_match[] = {
	{ .compatible = "gridmeter,sim-adc" },
	{ }
};
MODULE_DEVICE_TABLE(of, sim_of_match);

static struct platform_driver sim_driver = {
	.driver = {
		.name = "gm-sim-adc",
		.of_match_table = sim_of_match,
	},
	.probe = sim_probe,
};

/*
 * Calibration of the simulated front end, as firmware properties; the
 * conversion delay and the pair rate follow the rate parameter (set in
 * sim_init()).
 */
static struct property_entry sim_consumer_props[] = {
	PROPERTY_ENTRY_U32("gridmeter,ct-turns-ratio", 2000),
	PROPERTY_ENTRY_U32("gridmeter,burden-resistor-micro-ohms", 22000000),
	PROPERTY_ENTRY_U32("gridmeter,voltage-ratio-milli", 300000),
	PROPERTY_ENTRY_U32("gridmeter,current-delay-ns", 125000),
	{ },		/* bad_props=3 */
	{ }
};

static struct platform_device *sim_adc_pdev, *sim_consumer_pdev;
static struct fwnode_handle *sim_consumer_fwnode;

static int __init sim_init(void)
{
	struct platform_device_info ci = {
		.name = "gridmeter-ct",
		.id = 0,
	};
	int ret;

	if (rate < 2000 || rate > 32000) {
		pr_err("gm_sim_adc: rate %u out of range 2000..32000\n", rate);
		return -EINVAL;
	}
	if (bits < 8 || bits > 16 || vref_mv < 1000 || vref_mv > 5500) {
		pr_err("gm_sim_adc: bits %u (8..16) or vref_mv %u (1000..5500) out of range\n",
		       bits, vref_mv);
		return -EINVAL;
	}
	/* one conversion between the voltage and the current of a pair */
	sim_consumer_props[0] = PROPERTY_ENTRY_U32("gridmeter,ct-turns-ratio", ct_ratio);
	sim_consumer_props[1] = PROPERTY_ENTRY_U32("gridmeter,burden-resistor-micro-ohms",
						   burden_uohm);
	sim_consumer_props[3] = PROPERTY_ENTRY_U32("gridmeter,current-delay-ns",
						   NSEC_PER_SEC / rate);
	if (bad_props == 1)
		sim_consumer_props[0] = PROPERTY_ENTRY_U32("gridmeter,unused", 0);
	if (bad_props == 2)
		sim_consumer_props[3] = PROPERTY_ENTRY_U32("gridmeter,current-delay-ns",
							   2 * NSEC_PER_SEC / rate);
	if (bad_props == 3)
		sim_consumer_props[4] = PROPERTY_ENTRY_U32("gridmeter,current-rms-offset",
							   (1 << 24) + 1);
	ret = platform_driver_register(&sim_driver);
	if (ret)
		return ret;
	/*
	 * arm64 guests describe the ADC and the ct-sensor consumer in the
	 * device tree (tests/guest/dt/ct-sensor.dtso): bind to that only.
	 */
	if (of_have_populated_dt()) {
		struct device_node *np;

		np = of_find_compatible_node(NULL, NULL, "gridmeter,sim-adc");
		of_node_put(np);
		if (np)
			return 0;
	}
	sim_adc_pdev = platform_device_register_simple("gm-sim-adc", -1,
						       NULL, 0);
	if (IS_ERR(sim_adc_pdev)) {
		ret = PTR_ERR(sim_adc_pdev);
		goto err_driver;
	}
	if (consumer) {
		/* our own software node: removed after the device, not by it */
		sim_consumer_fwnode = fwnode_create_software_node(sim_consumer_props,
								  NULL);
		if (IS_ERR(sim_consumer_fwnode)) {
			ret = PTR_ERR(sim_consumer_fwnode);
			goto err_adc;
		}
		ci.fwnode = sim_consumer_fwnode;
		sim_consumer_pdev = platform_device_register_full(&ci);
		if (IS_ERR(sim_consumer_pdev)) {
			ret = PTR_ERR(sim_consumer_pdev);
			goto err_node;
		}
	}
	return 0;

err_node:
	fwnode_remove_software_node(sim_consumer_fwnode);
err_adc:
	platform_device_unregister(sim_adc_pdev);
err_driver:
	platform_driver_unregister(&sim_driver);
	return ret;
}

static void __exit sim_exit(void)
{
	if (sim_consumer_pdev) {
		platform_device_unregister(sim_consumer_pdev);
		fwnode_remove_software_node(sim_consumer_fwnode);
	}
	if (sim_adc_pdev)
		platform_device_unregister(sim_adc_pdev);
	platform_driver_unregister(&sim_driver);
}

module_init(sim_init);
module_exit(sim_exit);

MODULE_DESCRIPTION("gridmeter test fixture: simulated ADC (IIO) and GPIO chip");
MODULE_LICENSE("GPL");
