// SPDX-License-Identifier: GPL-2.0
#include "tripper.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define T(r) ((struct tripper *)(void *)((char *)(r) - offsetof(struct tripper, wrap)))

static int w_set(struct relays *r, unsigned idx, bool closed)
{
	struct tripper *t = T(r);
	int e;

	pthread_mutex_lock(&t->lock);
	if (idx == 0 && closed && atomic_load(&t->pending))
		e = -EBUSY;	/* a trip is being handled: never close over it */
	else
		e = t->inner->ops->set(t->inner, idx, closed);
	pthread_mutex_unlock(&t->lock);
	return e;
}

static int w_get(struct relays *r, unsigned idx, bool *closed)
{
	struct tripper *t = T(r);
	int e;

	pthread_mutex_lock(&t->lock);
	e = t->inner->ops->get(t->inner, idx, closed);
	pthread_mutex_unlock(&t->lock);
	return e;
}

static int w_button_fd(struct relays *r)
{
	struct tripper *t = T(r);

	return t->inner->ops->button_fd(t->inner);
}

static int w_button_pressed(struct relays *r)
{
	struct tripper *t = T(r);

	return t->inner->ops->button_pressed(t->inner);
}

static void w_destroy(struct relays *r)
{
	(void)r;	/* the inner relays belong to the caller of tripper_start */
}

static const struct relay_ops wrap_ops = {
	.name = "guarded",
	.set = w_set,
	.get = w_get,
	.button_fd = w_button_fd,
	.button_pressed = w_button_pressed,
	.destroy = w_destroy,
};

static void *trip_main(void *arg)
{
	struct tripper *t = arg;
	struct pollfd p[2] = {
		{ .fd = t->sensor->ops->event_fd(t->sensor), .events = POLLIN },
		{ .fd = t->stop_fd, .events = POLLIN },
	};

	for (;;) {
		unsigned faults = 0;
		uint64_t one = 1;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			/* the driver went away: stop watching, tell the loop once */
			p[0].fd = -1;
			atomic_store(&t->lost, true);
			if (write(t->wake_fd, &one, sizeof(one)) < 0) {
				/* the loop still sees `lost` at its next wake-up */
			}
			continue;
		}
		if (!(p[0].revents & POLLIN) || t->sensor->ops->read_events(t->sensor, &faults) || !faults)
			continue;
		pthread_mutex_lock(&t->lock);
		atomic_fetch_or(&t->pending, faults);
		t->inner->ops->set(t->inner, 0, false);	/* open: always the safe direction */
		pthread_mutex_unlock(&t->lock);
		atomic_fetch_add(&t->trips, 1);
		if (write(t->wake_fd, &one, sizeof(one)) < 0) {
			/* the counter cannot overflow in practice; the loop still sees pending */
		}
	}
	return NULL;
}

int tripper_start(struct tripper *t, struct sensor *s, struct relays *inner)
{
	int e;

	memset(t, 0, sizeof(*t));
	t->inner = inner;
	t->sensor = s;
	t->wrap.ops = &wrap_ops;
	t->wrap.count = inner->count;
	atomic_init(&t->pending, 0);
	atomic_init(&t->trips, 0);
	atomic_init(&t->lost, false);
	pthread_mutex_init(&t->lock, NULL);
	t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->wake_fd < 0 || t->stop_fd < 0)
		return -errno;
	if (s->ops->event_fd(s) < 0)
		return 0;	/* nothing to watch (no thread) */
	{
		pthread_attr_t attr;

		/* the trip path needs little stack; do not reserve the default 8 MiB */
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		e = pthread_create(&t->thread, &attr, trip_main, t);
		pthread_attr_destroy(&attr);
	}
	if (e)
		return -e;
	t->running = true;
	return 0;
}

unsigned tripper_take(struct tripper *t)
{
	uint64_t v;

	if (read(t->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN) {
		/* nothing to drain */
	}
	return atomic_exchange(&t->pending, 0);
}

void tripper_stop(struct tripper *t)
{
	uint64_t one = 1;

	if (t->running) {
		if (write(t->stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(t->thread, NULL);
		t->running = false;
	}
	if (t->wake_fd >= 0)
		close(t->wake_fd);
	if (t->stop_fd >= 0)
		close(t->stop_fd);
	t->wake_fd = t->stop_fd = -1;
	pthread_mutex_destroy(&t->lock);
}
