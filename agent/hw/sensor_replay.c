// SPDX-License-Identifier: GPL-2.0
/*
 * Replay sensor: one reading per line of a file,
 *     v_mv i_ma p_mw pf_milli f_mhz [renew_mw [renew_avail_mw]]
 * or "event ov|uv|oc" lines, which raise a threshold event. '#' comments.
 * At the end of the file the last reading is held. Readings and events can
 * also be injected (the D-Bus test hook); an injected reading is held until
 * the next injection.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "protect.h"
#include "sensor.h"

struct replay {
	struct sensor base;
	FILE *f;
	int efd;
	atomic_uint pending;	/* written by the test hook, read by the trip thread */
	struct sensor_reading cur;
};

static const struct sensor_ops replay_ops;

static unsigned parse_event(const char *s)
{
	if (!strncmp(s, "ov", 2))
		return FAULT_OVERVOLTAGE;
	if (!strncmp(s, "uv", 2))
		return FAULT_UNDERVOLTAGE;
	if (!strncmp(s, "oc", 2))
		return FAULT_OVERCURRENT;
	return 0;
}

static int replay_read(struct sensor *s, struct sensor_reading *r)
{
	struct replay *rp = (struct replay *)s;
	char line[256];

	while (rp->f && fgets(line, sizeof(line), rp->f)) {
		struct sensor_reading n = { .renew_avail_mw = -1 };
		int k;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (!strncmp(line, "event ", 6)) {
			sensor_replay_event(s, parse_event(line + 6));
			continue;
		}
		k = sscanf(line, "%" SCNu32 " %" SCNu32 " %" SCNd64 " %" SCNd32 " %" SCNu32 " %" SCNd64 " %" SCNd64,
			   &n.v_mv, &n.i_ma, &n.p_mw, &n.pf_milli, &n.f_mhz, &n.renew_mw, &n.renew_avail_mw);
		if (k < 5)
			return -EINVAL;
		n.has_renew = k >= 6;
		rp->cur = n;
		break;
	}
	*r = rp->cur;
	return 0;
}

static int replay_event_fd(struct sensor *s)
{
	return ((struct replay *)s)->efd;
}

static int replay_read_events(struct sensor *s, unsigned *faults)
{
	struct replay *rp = (struct replay *)s;
	uint64_t v;

	if (read(rp->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	*faults = atomic_exchange(&rp->pending, 0);
	return 0;
}

static void replay_destroy(struct sensor *s)
{
	struct replay *rp = (struct replay *)s;

	if (rp->f)
		fclose(rp->f);
	close(rp->efd);
	free(rp);
}

static const struct sensor_ops replay_ops = {
	.name = "replay",
	.read = replay_read,
	.event_fd = replay_event_fd,
	.read_events = replay_read_events,
	.destroy = replay_destroy,
};

struct sensor *sensor_replay_new(const char *path, char *err, size_t errlen)
{
	struct replay *rp = calloc(1, sizeof(*rp));

	if (!rp) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rp->base.ops = &replay_ops;
	rp->cur = (struct sensor_reading){ .v_mv = 230000, .f_mhz = 50000, .pf_milli = 1000,
					   .renew_avail_mw = -1 };
	rp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (rp->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		free(rp);
		return NULL;
	}
	if (path && *path) {
		rp->f = fopen(path, "re");
		if (!rp->f) {
			snprintf(err, errlen, "replay file %s: %s", path, strerror(errno));
			close(rp->efd);
			free(rp);
			return NULL;
		}
	}
	return &rp->base;
}

bool sensor_is_replay(const struct sensor *s)
{
	return s->ops == &replay_ops;
}

int sensor_replay_set(struct sensor *s, const struct sensor_reading *r)
{
	struct replay *rp = (struct replay *)s;

	if (!sensor_is_replay(s))
		return -EOPNOTSUPP;
	if (rp->f) {
		fclose(rp->f);
		rp->f = NULL;
	}
	rp->cur = *r;
	return 0;
}

int sensor_replay_event(struct sensor *s, unsigned faults)
{
	struct replay *rp = (struct replay *)s;
	uint64_t one = 1;

	if (!sensor_is_replay(s))
		return -EOPNOTSUPP;
	atomic_fetch_or(&rp->pending, faults);
	return write(rp->efd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}
