/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Sensor backend interface. The daemon reads one reading per sample period
 * and watches event_fd() (if >= 0) for threshold events, which must be
 * handled at once (protection trips).
 *   sensor_iio:    the gridmeter CT driver through libiio + IIO event fd
 *   sensor_replay: readings from a file and/or injected by the D-Bus test
 *                  hook, for host tests and demos
 */
#ifndef GM_SENSOR_H
#define GM_SENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct meter_config;

struct sensor_reading {
	uint32_t v_mv;		/* RMS voltage */
	uint32_t i_ma;		/* RMS current */
	int64_t p_mw;		/* mains active power: > 0 import, < 0 export */
	int32_t pf_milli;	/* power factor, thousandths, signed like p_mw */
	uint32_t f_mhz;		/* line frequency */
	bool has_renew;
	int64_t renew_mw;	/* renewable source output */
	int64_t renew_avail_mw;	/* what the source could deliver; -1: take renew_mw */
	/*
	 * Energy counters of the driver (since it was bound), if it has them:
	 * every mains cycle's own integral, so their deltas are exact however
	 * the samples fall. Without them energy is power x time per sample.
	 */
	bool has_energy;
	uint64_t import_mj, export_mj;
	uint64_t renew_mj;	/* renewable CT, dominant direction (valid with has_renew) */
	/*
	 * Sampling gaps of the mains CT (driver counters since it was bound,
	 * monotonic, like the energy counters): pairs the driver's sampler
	 * never took, and time not covered by a measured mains cycle, whose
	 * energy the driver estimated from the cycles around it. A rise
	 * between two reads marks the interval's energy as partly estimated.
	 */
	bool has_gaps;
	uint64_t missed_samples;
	uint64_t gap_ns;
};

struct sensor;

struct sensor_ops {
	const char *name;
	int (*read)(struct sensor *s, struct sensor_reading *r);
	int (*event_fd)(struct sensor *s);
	/* Drain pending events; *faults gets enum protect_fault bits. */
	int (*read_events)(struct sensor *s, unsigned *faults);
	void (*destroy)(struct sensor *s);
};

struct sensor {
	const struct sensor_ops *ops;
};

struct sensor *sensor_iio_new(const struct meter_config *c, char *err, size_t errlen);
struct sensor *sensor_replay_new(const char *path, char *err, size_t errlen);
/* Test hooks of the replay sensor (no-ops on other backends). */
int sensor_replay_set(struct sensor *s, const struct sensor_reading *r);
int sensor_replay_event(struct sensor *s, unsigned faults);
bool sensor_is_replay(const struct sensor *s);

#endif
