/* SPDX-License-Identifier: GPL-2.0 */
/* meterd's home sensors in the event loop: each [sensor.NAME] read every period s. */
#ifndef GM_DAEMON_HOME_H
#define GM_DAEMON_HOME_H

#include <systemd/sd-event.h>

#include "home_iio.h"
#include "meter.h"

struct daemon_home {
	struct home_iio io;
	struct meter *m;
	sd_event_source *timer;
	uint64_t due_usec[HS_MAX];	/* CLOCK_MONOTONIC */
};

/* After meter_init(): the sensors start warming up now. Nothing to do without sensors. */
int daemon_home_start(struct daemon_home *h, struct meter *m, sd_event *event, const char *sysfs);
void daemon_home_stop(struct daemon_home *h);

#endif
