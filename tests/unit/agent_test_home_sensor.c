// SPDX-License-Identifier: GPL-2.0
/*
 * Home sensors (agent/core/home_sensor.c): the exact conversion of a raw
 * count and the state machine (warm-up, hold, hysteresis, fault). Every
 * expectation is computed here from the configuration and the readings fed.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "gm_harness.h"
#include "home_sensor.h"

/* An MQ gas module at 5 V through a 5000/3300 divider on an MCP3008 (10 bits, 3.3 V). */
static void gas_cfg(struct home_sensor_cfg *c, uint32_t hold_s, uint32_t warmup_s)
{
	home_sensor_cfg_defaults(c);
	strcpy(c->name, "kitchen_gas");
	c->kind = HS_GAS;
	strcpy(c->unit, "mV");
	c->div_num = 5000;
	c->div_den = 3300;
	c->have_alarm = true;
	c->above_milli = 1200000;	/* 1200 mV */
	c->clear_milli = 1000000;	/* 1000 mV */
	c->hold_s = hold_s;
	c->warmup_s = warmup_s;
	c->period_s = 2;
	c->notify = true;
}

/* Round half away from zero of p/q, the test's own arithmetic (no library call). */
static int64_t rdiv(__int128 p, __int128 q)
{
	__int128 a = p < 0 ? -p : p, r = (a + q / 2) / q;

	return (int64_t)(p < 0 ? -r : r);
}

TEST(conversion_is_exact_through_scale_and_divider)
{
	struct home_sensor_cfg c;
	/* mcp320x: in_voltage_scale = 3300 / 1024 mV printed as "3.222656250" (IIO_VAL_FRACTIONAL_LOG2) */
	const int64_t sn = 3222656250LL, sd = 1000000000LL;
	int64_t num, den;

	gas_cfg(&c, 5, 0);
	ASSERT_EQ(0, home_sensor_factor(&c, sn, sd, false, &num, &den));
	for (int64_t raw = 0; raw <= 1023; raw += 31) {
		/* mV at the pin x 5000/3300 = mV at the module, x 1000 for thousandths */
		int64_t want = rdiv((__int128)raw * sn * 5000 * 1000, (__int128)sd * 3300);

		EXPECT_EQ(want, home_sensor_value(&c, raw, num, den)) TH_LOG("raw %lld", (long long)raw);
	}
	/* an offset (in the unit), on a count with its IIO offset (7) added by the caller */
	c.offset_milli = -250;
	EXPECT_EQ(rdiv((__int128)(100 + 7) * sn * 5000 * 1000, (__int128)sd * 3300) - 250,
		  home_sensor_value(&c, 100 + 7, num, den));

	/* a temperature input already in milli degrees C, shown in degrees C: x 1 */
	home_sensor_cfg_defaults(&c);
	ASSERT_EQ(0, home_sensor_factor(&c, 1, 1, true, &num, &den));
	EXPECT_EQ(21375, home_sensor_value(&c, 21375, num, den));
	/* a scale given in the configuration replaces the IIO one (and its unit rule) */
	c.have_scale = true;
	c.scale_num = 25;
	c.scale_den = 100;	/* 0.25 unit per count */
	ASSERT_EQ(0, home_sensor_factor(&c, sn, sd, true, &num, &den));
	EXPECT_EQ(rdiv(-13 * 25 * 1000, 100), home_sensor_value(&c, -13, num, den));
	/* what does not fit 64 bits is refused, not wrapped */
	c.scale_num = INT64_MAX / 3;
	c.scale_den = 7;
	c.div_num = 1000003;
	EXPECT_EQ(-ERANGE, home_sensor_factor(&c, 1, 1, false, &num, &den));
}

/* Feed value v every period from t to t_end; returns the first time the alarm was raised, or -1. */
static int64_t feed(struct home_sensor *s, const struct home_sensor_cfg *c, int64_t v,
		    int64_t *t, int64_t t_end, unsigned *evs)
{
	int64_t raised = -1;

	for (; *t < t_end; *t += (int64_t)c->period_s * 1000) {
		unsigned ev = home_sensor_step(s, c, 0, v, *t);

		*evs |= ev;
		if ((ev & HS_EV_RAISED) && raised < 0)
			raised = *t;
	}
	return raised;
}

TEST(no_alarm_during_warmup_then_after_hold)
{
	struct home_sensor_cfg c;
	struct home_sensor s;
	const int64_t t0 = 5000;
	int64_t t = t0, p, raised, first_after;
	unsigned ev = 0;

	gas_cfg(&c, 5, 30);
	p = (int64_t)c.period_s * 1000;
	home_sensor_start(&s, t0);
	EXPECT_STREQ("warming-up", hs_state_name(s.state));
	/* far above the alarm level throughout the warm-up: nothing */
	EXPECT_EQ(-1, feed(&s, &c, c.above_milli * 3, &t, t0 + c.warmup_s * 1000, &ev));
	EXPECT_EQ(HS_WARMING_UP, s.state);
	EXPECT_FALSE(s.alarm);
	EXPECT_FALSE(ev & (HS_EV_RAISED | HS_EV_STATE));
	/* from the first reading after the warm-up the hold runs: raised hold s later */
	first_after = t;
	raised = feed(&s, &c, c.above_milli * 3, &t, t + 10 * c.hold_s * 1000, &ev);
	EXPECT_EQ(first_after + (c.hold_s * 1000 + p - 1) / p * p, raised);
	EXPECT_EQ(HS_ALARM, s.state);
	EXPECT_TRUE(s.alarm);
	EXPECT_EQ(c.above_milli * 3, s.value_milli);
}

TEST(hold_restarts_when_the_level_dips)
{
	struct home_sensor_cfg c;
	struct home_sensor s;
	int64_t t = 0, p, raised;
	unsigned ev = 0;

	gas_cfg(&c, 6, 0);
	p = (int64_t)c.period_s * 1000;
	home_sensor_start(&s, 0);
	/* above for less than the hold, then exactly at the level (not above) once */
	EXPECT_EQ(-1, feed(&s, &c, c.above_milli + 1, &t, c.hold_s * 1000 - p + 1, &ev));
	EXPECT_EQ(HS_OK, s.state);
	EXPECT_EQ(HS_EV_VALUE, home_sensor_step(&s, &c, 0, c.above_milli, t));
	t += p;
	/* the hold starts again from here */
	{
		int64_t from = t;

		raised = feed(&s, &c, c.above_milli + 1, &t, t + 4 * c.hold_s * 1000, &ev);
		EXPECT_EQ(from + (c.hold_s * 1000 + p - 1) / p * p, raised);
	}
	/* hold 0: the first reading above raises */
	gas_cfg(&c, 0, 0);
	home_sensor_start(&s, 0);
	EXPECT_EQ(HS_EV_RAISED | HS_EV_STATE | HS_EV_VALUE,
		  home_sensor_step(&s, &c, 0, c.above_milli + 1, 0));
}

TEST(hysteresis_clears_only_below_the_clear_level)
{
	struct home_sensor_cfg c;
	struct home_sensor s;
	int64_t t = 0, mid;
	unsigned ev = 0;

	gas_cfg(&c, 0, 0);
	home_sensor_start(&s, 0);
	feed(&s, &c, c.above_milli + 1000, &t, 1, &ev);
	ASSERT_TRUE(s.alarm);
	/* between the two levels, and exactly at the clear level: still in alarm */
	mid = (c.above_milli + c.clear_milli) / 2;
	ev = 0;
	feed(&s, &c, mid, &t, t + 20000, &ev);
	feed(&s, &c, c.clear_milli, &t, t + 1, &ev);
	EXPECT_TRUE(s.alarm);
	EXPECT_EQ(0u, ev & (HS_EV_CLEARED | HS_EV_STATE));
	/* one thousandth below: cleared at once */
	EXPECT_EQ(HS_EV_CLEARED | HS_EV_STATE | HS_EV_VALUE,
		  home_sensor_step(&s, &c, 0, c.clear_milli - 1, t));
	EXPECT_EQ(HS_OK, s.state);
	/* back between the levels: not raised again (needs above alarm_above) */
	ev = 0;
	t += 2000;
	feed(&s, &c, mid, &t, t + 20000, &ev);
	EXPECT_FALSE(s.alarm);
	EXPECT_EQ(0u, ev & HS_EV_RAISED);
}

TEST(fault_keeps_the_alarm_and_restarts_the_hold)
{
	struct home_sensor_cfg c;
	struct home_sensor s;
	int64_t t = 0, p, from, raised;
	unsigned ev = 0;

	gas_cfg(&c, 4, 0);
	p = (int64_t)c.period_s * 1000;
	home_sensor_start(&s, 0);
	/* part of the hold, then a failed read: the hold starts again after it */
	feed(&s, &c, c.above_milli + 1, &t, c.hold_s * 1000 - 1, &ev);
	EXPECT_FALSE(s.alarm);
	EXPECT_EQ(HS_EV_STATE | HS_EV_FAULT, home_sensor_step(&s, &c, -EIO, 0, t));
	EXPECT_EQ(HS_FAULT, s.state);
	EXPECT_EQ(-EIO, s.last_error);
	/* a second failure changes nothing */
	t += p;
	EXPECT_EQ(0u, home_sensor_step(&s, &c, -EIO, 0, t));
	t += p;
	from = t;
	raised = feed(&s, &c, c.above_milli + 1, &t, t + 4 * c.hold_s * 1000, &ev);
	EXPECT_EQ(from + (c.hold_s * 1000 + p - 1) / p * p, raised);
	/* in alarm, a failed read: state fault, the alarm stays (gas is not known gone) */
	EXPECT_EQ(HS_EV_STATE | HS_EV_FAULT, home_sensor_step(&s, &c, -ENODEV, 0, t));
	EXPECT_TRUE(s.alarm);
	EXPECT_EQ(c.above_milli + 1, s.value_milli);	/* the last good reading */
	t += p;
	/* read again, still high: back to alarm, nothing raised twice */
	EXPECT_EQ(HS_EV_STATE | HS_EV_RECOVERED, home_sensor_step(&s, &c, 0, c.above_milli + 1, t));
	EXPECT_EQ(HS_ALARM, s.state);
}

TEST(without_alarm_level_only_ok)
{
	struct home_sensor_cfg c;
	struct home_sensor s;
	int64_t t = 0;
	unsigned ev = 0;

	home_sensor_cfg_defaults(&c);
	c.kind = HS_TEMPERATURE;
	home_sensor_start(&s, 0);
	feed(&s, &c, INT64_MAX / 2, &t, 60000, &ev);
	EXPECT_EQ(HS_OK, s.state);
	EXPECT_FALSE(s.alarm);
	EXPECT_STREQ("temperature", hs_kind_name(c.kind));
}

TEST_HARNESS_MAIN
