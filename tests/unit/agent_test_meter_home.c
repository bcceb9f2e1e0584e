// SPDX-License-Identifier: GPL-2.0
/*
 * Home sensors in the meter (agent/core/meter_home.c): one Alarm signal per
 * sensor change naming the sensor, the Alarms property while any sensor
 * holds the alarm, and what reaches the town: the gas alarm of sensors with
 * notify = yes only, never a temperature alarm, a fault or a reading.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm_harness.h"
#include "meter.h"

struct seen {
	int signals;
	char name[8][32], detail[8][256];
	bool active[8];
	int up;			/* alarms the uplink was given */
	unsigned up_code[8];
	bool up_active[8];
	unsigned changed;
};

struct fake_uplink {
	struct uplink base;
	struct seen *seen;
};

static struct seen *g_seen_for_uplink(struct uplink *u)
{
	return ((struct fake_uplink *)u)->seen;
}

static void fu_alarm(struct uplink *u, unsigned int code, bool active)
{
	struct seen *s = g_seen_for_uplink(u);

	if (s->up < 8) {
		s->up_code[s->up] = code;
		s->up_active[s->up] = active;
	}
	s->up++;
}

static const char *fu_state(struct uplink *u)
{
	(void)u;
	return "test";
}

static const struct uplink_ops fu_ops = { .name = "test", .state = fu_state, .alarm = fu_alarm };

static void h_alarm(void *ctx, const char *name, bool active, const char *detail)
{
	struct seen *s = ctx;

	if (s->signals < 8) {
		snprintf(s->name[s->signals], sizeof(s->name[0]), "%s", name);
		snprintf(s->detail[s->signals], sizeof(s->detail[0]), "%s", detail);
		s->active[s->signals] = active;
	}
	s->signals++;
}

static void h_changed(void *ctx, unsigned groups)
{
	((struct seen *)ctx)->changed |= groups;
}

static void h_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	(void)level;
	(void)msg;
}

static const char conf[] =
	"[sensors]\nbackend = replay\n"
	"[sensor.kitchen_gas]\ndevice = a\nchannel = in_voltage2_raw\nkind = gas\n"
	"alarm_above = 1200\nalarm_clear_below = 1000\nhold = 0\nwarmup = 0\n"
	"[sensor.cellar_gas]\ndevice = a\nchannel = in_voltage3_raw\nkind = gas\nnotify = no\n"
	"alarm_above = 900\nhold = 0\nwarmup = 0\n"
	"[sensor.lounge]\ndevice = b\nchannel = in_temp_input\nkind = temperature\n"
	"alarm_above = 35\nalarm_clear_below = 30\nhold = 0\n";

static struct meter *new_meter(struct seen *s, struct fake_uplink *u)
{
	struct meter *m = calloc(1, sizeof(*m));
	char err[256];

	if (!m || config_parse(&m->cfg, "test.conf", conf, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		free(m);
		return NULL;
	}
	memset(s, 0, sizeof(*s));
	u->base.ops = &fu_ops;
	u->seen = s;
	m->uplink = &u->base;
	m->hooks = (struct meter_hooks){ .ctx = s, .changed = h_changed, .alarm = h_alarm, .log = h_log };
	meter_home_start(m, 0);
	return m;
}

TEST(gas_alarm_goes_up_only_with_notify)
{
	struct seen s;
	struct fake_uplink u;
	struct meter *m = new_meter(&s, &u);
	const int64_t above0 = m ? m->cfg.sensor[0].above_milli : 0;
	const int64_t clear0 = m ? m->cfg.sensor[0].clear_milli : 0;
	const int64_t above1 = m ? m->cfg.sensor[1].above_milli : 0;

	ASSERT_NE(NULL, m);
	/* the cellar's gas (notify = no): the signal and the property, nothing to the town */
	meter_home_reading(m, 1, 0, NULL, above1 + 1, 1000);
	ASSERT_EQ(1, s.signals);
	EXPECT_STREQ("gas", s.name[0]);
	EXPECT_TRUE(s.active[0]);
	EXPECT_EQ(0, strncmp(s.detail[0], "cellar_gas:", 11)) TH_LOG("%s", s.detail[0]);
	EXPECT_TRUE(m->alarms & (1u << ALARM_GAS));
	EXPECT_EQ(0, s.up);
	EXPECT_TRUE(s.changed & MP_HOME);
	EXPECT_TRUE(s.changed & MP_ALARMS);
	/* the kitchen's (notify = yes): the town is told, once */
	meter_home_reading(m, 0, 0, NULL, above0 + 1, 1000);
	ASSERT_EQ(2, s.signals);
	EXPECT_EQ(0, strncmp(s.detail[1], "kitchen_gas:", 12)) TH_LOG("%s", s.detail[1]);
	ASSERT_EQ(1, s.up);
	EXPECT_EQ((unsigned)ALARM_GAS, s.up_code[0]);
	EXPECT_TRUE(s.up_active[0]);
	/* the cellar clears: the Alarms property keeps "gas" (the kitchen holds it) */
	meter_home_reading(m, 1, 0, NULL, above1 - 1, 3000);
	EXPECT_FALSE(s.active[2]);
	EXPECT_TRUE(m->alarms & (1u << ALARM_GAS));
	EXPECT_EQ(1, s.up);
	/* the kitchen clears below its clear level: the town is told it cleared */
	meter_home_reading(m, 0, 0, NULL, clear0 - 1, 3000);
	EXPECT_FALSE(m->alarms & (1u << ALARM_GAS));
	ASSERT_EQ(2, s.up);
	EXPECT_EQ((unsigned)ALARM_GAS, s.up_code[1]);
	EXPECT_FALSE(s.up_active[1]);
	free(m);
}

TEST(other_home_sensor_alarms_and_faults_stay_in_the_house)
{
	struct seen s;
	struct fake_uplink u;
	struct meter *m = new_meter(&s, &u);

	ASSERT_NE(NULL, m);
	meter_home_reading(m, 2, 0, NULL, m->cfg.sensor[2].above_milli + 1, 1000);
	ASSERT_EQ(1, s.signals);
	EXPECT_STREQ("home-sensor", s.name[0]);
	EXPECT_EQ(0, strncmp(s.detail[0], "lounge:", 7));
	EXPECT_TRUE(m->alarms & (1u << ALARM_HOME_SENSOR));
	/* a gas sensor that cannot be read: home-sensor, its gas alarm not cleared */
	meter_home_reading(m, 0, 0, NULL, m->cfg.sensor[0].above_milli + 1, 1000);
	meter_home_reading(m, 0, -5, "in_voltage2_raw: read: Input/output error", 0, 3000);
	EXPECT_STREQ("home-sensor", s.name[2]);
	EXPECT_NE(NULL, strstr(s.detail[2], "kitchen_gas: cannot be read: in_voltage2_raw"));
	EXPECT_EQ(HS_FAULT, m->home[0].state);
	EXPECT_TRUE(m->home[0].alarm);
	EXPECT_TRUE(m->alarms & (1u << ALARM_GAS));
	/* the temperature clears; home-sensor stays while the gas sensor is in fault */
	meter_home_reading(m, 2, 0, NULL, m->cfg.sensor[2].clear_milli - 1, 3000);
	EXPECT_TRUE(m->alarms & (1u << ALARM_HOME_SENSOR));
	meter_home_reading(m, 0, 0, NULL, m->cfg.sensor[0].above_milli + 1, 5000);
	EXPECT_FALSE(m->alarms & (1u << ALARM_HOME_SENSOR));
	/* only the kitchen's gas alarm ever went up */
	ASSERT_EQ(1, s.up);
	EXPECT_EQ((unsigned)ALARM_GAS, s.up_code[0]);
	free(m);
}

/* The meter's own path to the town (set_alarm) refuses the home sensors' alarms. */
TEST(meter_alarm_never_sends_home_sensor_alarms_up)
{
	struct seen s;
	struct fake_uplink u;
	struct meter *m = new_meter(&s, &u);

	ASSERT_NE(NULL, m);
	meter_alarm(m, ALARM_HOME_SENSOR, true, "lounge: test");
	meter_alarm(m, ALARM_GAS, true, "kitchen_gas: test");
	EXPECT_EQ(2, s.signals);
	EXPECT_EQ(0, s.up);
	meter_alarm(m, ALARM_SENSOR, true, "the CT: test");
	ASSERT_EQ(1, s.up);
	EXPECT_EQ((unsigned)ALARM_SENSOR, s.up_code[0]);
	free(m);
}

TEST_HARNESS_MAIN
