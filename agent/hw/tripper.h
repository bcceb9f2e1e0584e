/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Trip thread: waits on the sensor's threshold-event fd and opens the main
 * relay itself, at once, whatever the event loop is doing (an fsync on an SD
 * card can take longer than a mains cycle). It then wakes the event loop,
 * which runs the protection state machine (meter_event) for the bookkeeping.
 *
 * The relays seen by the meter are wrapped: every relay operation holds the
 * tripper's mutex, and closing the main relay is refused (-EBUSY) while a
 * trip is pending, so a reclose can never race with a trip.
 */
#ifndef GM_TRIPPER_H
#define GM_TRIPPER_H

#include <pthread.h>
#include <stdatomic.h>

#include "relay.h"
#include "sensor.h"

struct tripper {
	struct relays wrap;		/* hand this to the meter */
	struct relays *inner;
	struct sensor *sensor;
	pthread_t thread;
	pthread_mutex_t lock;
	atomic_uint pending;		/* enum protect_fault bits not yet handled */
	int wake_fd;			/* eventfd: readable when pending != 0 */
	int stop_fd;
	bool running;
	atomic_ulong trips;		/* relay opened by the thread */
	atomic_bool lost;		/* the event fd hung up (driver gone): no more trips */
};

int tripper_start(struct tripper *t, struct sensor *s, struct relays *inner);
/* Event loop side: take the pending faults (and drain wake_fd). */
unsigned tripper_take(struct tripper *t);
void tripper_stop(struct tripper *t);

#endif
