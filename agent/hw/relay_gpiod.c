// SPDX-License-Identifier: GPL-2.0
/*
 * libgpiod (v1 API) relays. Lines are requested as outputs at start-up at the
 * level they already drive (open on a cold boot), so restarting meterd does
 * not switch anything; the meter then drives them to its recovered state.
 * "closed" is the logical active level, active_low lines are inverted by the
 * kernel. A load with switch = external has no line here (the MQTT bridge
 * switches it; meterd never calls set() for it): set/get say -ENODEV. The push button is requested for edge events
 * (falling if active_low, else rising) and debounced in software (200 ms).
 */
#include <errno.h>
#include <gpiod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "relay.h"

#define CONSUMER	"meterd"
#define DEBOUNCE_NS	200000000ll

struct gpiod_relays {
	struct relays base;
	struct gpiod_chip *chip;
	struct gpiod_line *button;
	int64_t last_press_ns;
	struct gpiod_line *line[1 + ALLOC_MAX_LOADS];
};

static int g_set(struct relays *r, unsigned idx, bool closed)
{
	struct gpiod_relays *g = (struct gpiod_relays *)r;

	if (idx >= r->count)
		return -EINVAL;
	if (!g->line[idx])
		return -ENODEV;
	return gpiod_line_set_value(g->line[idx], closed) ? -errno : 0;
}

static int g_get(struct relays *r, unsigned idx, bool *closed)
{
	struct gpiod_relays *g = (struct gpiod_relays *)r;
	int v;

	if (idx >= r->count)
		return -EINVAL;
	if (!g->line[idx])
		return -ENODEV;
	v = gpiod_line_get_value(g->line[idx]);
	if (v < 0)
		return -errno;
	*closed = v;
	return 0;
}

static int g_button_fd(struct relays *r)
{
	struct gpiod_relays *g = (struct gpiod_relays *)r;

	return g->button ? gpiod_line_event_get_fd(g->button) : -1;
}

static int g_button_pressed(struct relays *r)
{
	struct gpiod_relays *g = (struct gpiod_relays *)r;
	struct gpiod_line_event ev;
	const struct timespec zero = { 0, 0 };
	int pressed = 0;

	if (!g->button)
		return 0;
	while (gpiod_line_event_wait(g->button, &zero) == 1) {
		int64_t ns;

		if (gpiod_line_event_read(g->button, &ev))
			return -errno;
		ns = (int64_t)ev.ts.tv_sec * 1000000000ll + ev.ts.tv_nsec;
		if (ns - g->last_press_ns >= DEBOUNCE_NS) {
			pressed = 1;
			g->last_press_ns = ns;
		}
	}
	return pressed;
}

static void g_destroy(struct relays *r)
{
	struct gpiod_relays *g = (struct gpiod_relays *)r;

	for (unsigned i = 0; i < r->count; i++)
		if (g->line[i])
			gpiod_line_release(g->line[i]);
	if (g->button)
		gpiod_line_release(g->button);
	if (g->chip)
		gpiod_chip_close(g->chip);
	free(g);
}

static const struct relay_ops gpiod_ops = {
	.name = "gpiod",
	.set = g_set,
	.get = g_get,
	.button_fd = g_button_fd,
	.button_pressed = g_button_pressed,
	.destroy = g_destroy,
};

/*
 * The level the line drives now (a previous meterd left it so), read without
 * changing its direction; 0 (open) if unknown. Re-requesting the output with
 * this level means a restart of meterd never blinks the house's supply.
 */
static int current_level(struct gpiod_line *l, int flags)
{
	struct gpiod_line_request_config rc = {
		.consumer = CONSUMER, .request_type = GPIOD_LINE_REQUEST_DIRECTION_AS_IS, .flags = flags,
	};
	int v;

	if (gpiod_line_direction(l) != GPIOD_LINE_DIRECTION_OUTPUT || gpiod_line_request(l, &rc, 0))
		return 0;
	v = gpiod_line_get_value(l);
	gpiod_line_release(l);
	return v > 0;
}

static int request_out(struct gpiod_relays *g, unsigned idx, unsigned offset, bool active_low,
		       char *err, size_t errlen)
{
	struct gpiod_line *l = gpiod_chip_get_line(g->chip, offset);
	int flags = active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;

	if (!l || gpiod_line_request_output_flags(l, CONSUMER, flags, current_level(l, flags))) {
		snprintf(err, errlen, "GPIO line %u: %s", offset, strerror(errno));
		return -1;
	}
	g->line[idx] = l;
	return 0;
}

struct relays *relay_gpiod_new(const struct meter_config *c, char *err, size_t errlen)
{
	struct gpiod_relays *g = calloc(1, sizeof(*g));

	if (!g) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->base.ops = &gpiod_ops;
	g->base.count = 1 + (unsigned)c->nloads;
	g->chip = gpiod_chip_open_lookup(c->gpiochip);
	if (!g->chip) {
		snprintf(err, errlen, "GPIO chip %s: %s", c->gpiochip, strerror(errno));
		goto fail;
	}
	if (request_out(g, 0, c->main_line, c->main_active_low, err, errlen))
		goto fail;
	for (size_t i = 0; i < c->nloads; i++)
		if (!c->load[i].external && request_out(g, (unsigned)i + 1, c->load[i].line, c->load[i].active_low, err, errlen))
			goto fail;
	if (c->button_line >= 0) {
		struct gpiod_line *b = gpiod_chip_get_line(g->chip, (unsigned)c->button_line);
		int flags = c->button_active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;

		/* with ACTIVE_LOW the press is a rising edge of the logical value */
		if (!b || gpiod_line_request_rising_edge_events_flags(b, CONSUMER, flags)) {
			snprintf(err, errlen, "GPIO button line %d: %s", c->button_line, strerror(errno));
			goto fail;
		}
		g->button = b;
	}
	return &g->base;
fail:
	g_destroy(&g->base);
	return NULL;
}
