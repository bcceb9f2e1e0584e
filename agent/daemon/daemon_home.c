// SPDX-License-Identifier: GPL-2.0
#include "daemon_home.h"

#include <string.h>
#include <syslog.h>

static uint64_t next_due(const struct daemon_home *h)
{
	uint64_t t = UINT64_MAX;

	for (size_t i = 0; i < h->io.n; i++)
		if (h->due_usec[i] < t)
			t = h->due_usec[i];
	return t;
}

static int on_home(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct daemon_home *h = userdata;

	for (size_t i = 0; i < h->io.n; i++) {
		uint64_t period = (uint64_t)h->m->cfg.sensor[i].period_s * 1000000;
		int64_t v = 0;
		int e;

		if (h->due_usec[i] > usec)
			continue;
		e = home_iio_read(&h->io, i, &v);
		meter_home_reading(h->m, i, e, h->io.ch[i].why, v, (int64_t)(usec / 1000));
		/* on a fixed grid; after a long stall (suspend) from now */
		h->due_usec[i] += period;
		if (h->due_usec[i] <= usec)
			h->due_usec[i] = usec + period;
	}
	sd_event_source_set_time(es, next_due(h));
	return sd_event_source_set_enabled(es, SD_EVENT_ONESHOT);
}

int daemon_home_start(struct daemon_home *h, struct meter *m, sd_event *event, const char *sysfs)
{
	uint64_t now;

	memset(h, 0, sizeof(*h));
	h->m = m;
	if (!m->cfg.nsensors)
		return 0;
	sd_event_now(event, CLOCK_MONOTONIC, &now);
	meter_home_start(m, (int64_t)(now / 1000));
	home_iio_init(&h->io, sysfs, m->cfg.sensor, m->cfg.nsensors);
	for (size_t i = 0; i < h->io.n; i++) {
		h->due_usec[i] = now;	/* a first reading at once: the value shows while warming up */
		if (h->io.ch[i].fd < 0)
			meter_log(m, LOG_WARNING, "home sensor %s: %s (looked for again each period)",
				  m->cfg.sensor[i].name, h->io.ch[i].why);
	}
	return sd_event_add_time(event, &h->timer, CLOCK_MONOTONIC, now, 1000, on_home, h);
}

void daemon_home_stop(struct daemon_home *h)
{
	if (h->timer)
		h->timer = sd_event_source_disable_unref(h->timer);
	home_iio_close(&h->io);
}
