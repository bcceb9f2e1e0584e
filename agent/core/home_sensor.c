// SPDX-License-Identifier: GPL-2.0
#include "home_sensor.h"

#include <errno.h>
#include <string.h>

#include "parse.h"

const char *hs_kind_name(enum hs_kind k)
{
	return k == HS_GAS ? "gas" : k == HS_TEMPERATURE ? "temperature" : "generic";
}

const char *hs_state_name(enum hs_state s)
{
	static const char *const n[] = {
		[HS_WARMING_UP] = "warming-up", [HS_OK] = "ok", [HS_ALARM] = "alarm",
		[HS_FAULT] = "fault",
	};

	return s <= HS_FAULT ? n[s] : "?";
}

void home_sensor_start(struct home_sensor *s, int64_t mono_ms)
{
	memset(s, 0, sizeof(*s));
	s->state = HS_WARMING_UP;
	s->start_ms = mono_ms;
	s->above_since = INT64_MIN;
}

static enum hs_state judged(const struct home_sensor *s)
{
	return s->alarm ? HS_ALARM : HS_OK;
}

unsigned home_sensor_step(struct home_sensor *s, const struct home_sensor_cfg *c, int err,
			  int64_t value_milli, int64_t mono_ms)
{
	enum hs_state was = s->state;
	bool alarm = s->alarm;
	unsigned ev = 0;

	if (err) {
		s->last_error = err;
		s->above_since = INT64_MIN;	/* the hold starts again with good readings */
		s->state = HS_FAULT;
		if (was != HS_FAULT)
			ev |= HS_EV_STATE | HS_EV_FAULT;
		return ev;
	}
	s->last_error = 0;
	if (!s->have_value || s->value_milli != value_milli)
		ev |= HS_EV_VALUE;
	s->have_value = true;
	s->value_milli = value_milli;
	if (was == HS_FAULT)
		ev |= HS_EV_RECOVERED;
	if (mono_ms - s->start_ms < (int64_t)c->warmup_s * 1000) {
		/* nothing judged yet (the alarm is false: it cannot have been raised) */
		s->state = HS_WARMING_UP;
		s->above_since = INT64_MIN;
	} else if (!c->have_alarm) {
		s->state = HS_OK;
	} else if (s->alarm) {
		if (value_milli < c->clear_milli)
			s->alarm = false;
		s->above_since = INT64_MIN;	/* a new hold after the next clear */
		s->state = judged(s);
	} else {
		if (value_milli > c->above_milli) {
			if (s->above_since == INT64_MIN)
				s->above_since = mono_ms;
			if (mono_ms - s->above_since >= (int64_t)c->hold_s * 1000)
				s->alarm = true;
		} else {
			s->above_since = INT64_MIN;
		}
		s->state = judged(s);
	}
	if (s->state != was)
		ev |= HS_EV_STATE;
	if (s->alarm != alarm)
		ev |= s->alarm ? HS_EV_RAISED : HS_EV_CLEARED;
	return ev;
}

static int64_t gcd64(int64_t a, int64_t b)
{
	while (b) {
		int64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* a/b x c/d, reduced; -ERANGE if it does not fit. */
static int mul_frac(int64_t a, int64_t b, int64_t c, int64_t d, int64_t *num, int64_t *den)
{
	int64_t g1 = gcd64(a < 0 ? -a : a, d), g2 = gcd64(c < 0 ? -c : c, b);

	if (!g1)
		g1 = 1;
	if (!g2)
		g2 = 1;
	if (__builtin_mul_overflow(a / g1, c / g2, num) || __builtin_mul_overflow(b / g2, d / g1, den))
		return -ERANGE;
	return 0;
}

int home_sensor_factor(const struct home_sensor_cfg *c, int64_t iio_num, int64_t iio_den,
		       bool iio_milli, int64_t *num, int64_t *den)
{
	int64_t n, d;

	if (c->have_scale) {
		n = c->scale_num;
		d = c->scale_den;
		iio_milli = false;
	} else {
		n = iio_num;
		d = iio_den;
	}
	if (d <= 0 || c->div_den <= 0)
		return -ERANGE;
	if (mul_frac(n, d, c->div_num, c->div_den, &n, &d) ||
	    mul_frac(n, d, iio_milli ? 1 : 1000, 1, num, den))
		return -ERANGE;
	return 0;
}

int64_t home_sensor_value(const struct home_sensor_cfg *c, int64_t raw, int64_t num, int64_t den)
{
	return mul_div_round(raw, num, den) + c->offset_milli;
}
