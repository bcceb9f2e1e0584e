// SPDX-License-Identifier: GPL-2.0
/* Config parser: values, defaults, and errors naming file, line and key. */
#include <stdio.h>
#include <string.h>

#include "kselftest_harness.h"
#include "config.h"

static int parse(struct meter_config *c, const char *text, char *err)
{
	err[0] = 0;
	return config_parse(c, "test.conf", text, err, 256);
}

TEST(example_config_parses)
{
	struct meter_config c;
	char err[256];

	ASSERT_EQ(0, config_load(&c, "agent/system/meterd.conf.example", err, sizeof(err)))
		TH_LOG("%s", err);
	EXPECT_STREQ("Europe/London", c.timezone);
	EXPECT_EQ(900u, c.interval_s);
	EXPECT_EQ(253000u, c.over_voltage_mv);
	EXPECT_EQ(27, c.button_line);
	ASSERT_EQ(2u, c.nloads);
	EXPECT_STREQ("pool_pump", c.load[0].name);
	EXPECT_EQ(TARIFF_TOU, c.tariff.type);
	EXPECT_EQ(3u, c.tariff.nperiods);
	EXPECT_EQ(3u, c.tariff.nspecial);
	/* it has [uplink]: the town's time; the persistence bounds without the old alias */
	EXPECT_STREQ("town", c.clock);
	EXPECT_EQ(60u, c.persist_interval_s);
	EXPECT_EQ(100u, c.persist_energy_wh);
	EXPECT_EQ(0u, c.fsync_interval_line);
	EXPECT_EQ(-1, c.powerfail_line);
}

TEST(defaults_and_inline_comments)
{
	struct meter_config c;
	char err[256];

	ASSERT_EQ(0, parse(&c, "[sensors]\nmains_device = ct0   # the CT\n"
			   "[tariff]\nrate = 28.62\t# p/kWh\n", err)) TH_LOG("%s", err);
	EXPECT_STREQ("ct0", c.mains_device);
	EXPECT_EQ(28620, c.tariff.price[0]);
	EXPECT_EQ(900u, c.interval_s);
	EXPECT_EQ(-1, c.button_line);
	EXPECT_STREQ("gridmeter-technicians", c.technician_group);
}

TEST(loads_sorted_by_priority)
{
	struct meter_config c;
	char err[256];

	ASSERT_EQ(0, parse(&c, "[sensors]\nmains_device = ct0\n"
			   "[load.ev]\nline = 5\nload = 7000\npriority = 9\n"
			   "[load.pump]\nline = 6\nload = 1500\npriority = 2\n", err)) TH_LOG("%s", err);
	ASSERT_EQ(2u, c.nloads);
	EXPECT_STREQ("pump", c.load[0].name);
	EXPECT_STREQ("ev", c.load[1].name);
}

struct bad_case {
	const char *text;
	const char *expect;	/* substring of the error */
};

TEST(errors_name_file_line_and_key)
{
	static const struct bad_case cases[] = {
		{ "[meter]\ninterval = 7\n", "test.conf:2: [meter] key 'interval'" },
		{ "[meter]\n\n# c\ninterval = 7x\n", "test.conf:4: [meter] key 'interval'" },
		{ "[meter]\ninterval = 700\n[sensors]\nmains_device=x\n", "test.conf:2: [meter] key 'interval': 700 s does not divide an hour" },
		{ "[meter]\ncolour = red\n", "test.conf:2: [meter] key 'colour': unknown key" },
		{ "[metre]\n", "test.conf:1: unknown section [metre]" },
		{ "interval = 900\n", "test.conf:1: key 'interval': key outside any section" },
		{ "[meter]\ninterval\n", "test.conf:2: expected 'key = value'" },
		{ "[meter]\ninterval = 900\ninterval = 600\n", "test.conf:3: [meter] key 'interval': given twice (first on line 2)" },
		{ "[meter]\ntimezone = Mars/Olympus\n[sensors]\nmains_device=x\n", "test.conf:2: [meter] key 'timezone': unknown time zone" },
		{ "[sensors]\nbackend = iio\n", "[sensors] key 'mains_device': required with backend = iio" },
		{ "[sensors]\nbackend = magic\n", "test.conf:2: [sensors] key 'backend': 'magic' is not one of iio|replay" },
		{ "[sensors]\nmains_device=x\n[protection]\nover_voltage = 250.5\nunder_voltage = 251\n",
		  "test.conf:5: [protection] key 'under_voltage': must be below over_voltage" },
		{ "[sensors]\nmains_device=x\n[protection]\nover_voltage = 2x0\n", "test.conf:4: [protection] key 'over_voltage'" },
		{ "[sensors]\nmains_device=x\n[tariff]\ntype = tou\nrates = a:1\nweekday = 00:00-24:00 b\nweekend = 00:00-24:00 a\n",
		  "test.conf:6: [tariff] key 'weekday': unknown period 'b'" },
		{ "[sensors]\nmains_device=x\n[tariff]\nflavour = sweet\n", "test.conf:4: [tariff] key 'flavour': unknown key" },
		{ "[sensors]\nmains_device=x\n[load.pump]\nline = 17\nload = 100\npriority = 1\n",
		  "test.conf:4: [load.pump] key 'line': GPIO line 17 already used" },
		{ "[sensors]\nmains_device=x\n[load.pump]\nline = 3\nload = 100\n",
		  "test.conf:3: [load.pump] key 'priority': missing required key" },
		{ "[sensors]\nmains_device=x\n[load.a]\nline=3\nload=1\npriority=1\n[load.b]\nline=4\nload=1\npriority=1\n",
		  "test.conf:10: [load.b] key 'priority': priority 1 already used by load a" },
		{ "[load.Bad-Name]\n", "test.conf:1: section [load.Bad-Name]" },
		{ "[relays]\nbutton_line = maybe\n", "test.conf:2: [relays] key 'button_line'" },
		{ "[meter]\ninterval = 60\nprofile_days = 36\n[sensors]\nmains_device=x\n",
		  "test.conf:3: [meter] key 'profile_days': 36 days of 60 s intervals is more than 50400" },
		{ "[dbus]\nauthorization = trust-me\n", "test.conf:2: [dbus] key 'authorization'" },
		{ "[sensors]\nmains_device=x\n[meter]\nclock = town\n",
		  "test.conf:4: [meter] key 'clock': 'town' needs an [uplink] section" },
		{ "[meter]\nclock = ntp\n", "test.conf:2: [meter] key 'clock': 'ntp' is not one of town|system" },
		{ "[store]\npersist_interval = 1\n", "test.conf:2: [store] key 'persist_interval': '1' is not a whole number from 5 to 3600 seconds" },
		{ "[store]\npersist_energy = 0\n", "test.conf:2: [store] key 'persist_energy'" },
		{ "[sensors]\nmains_device=x\n[power]\nfail_line = 17\n",
		  "test.conf:4: [power] key 'fail_line': GPIO line 17 of gpiochip0 already used by [relays] main_line" },
		{ "[sensors]\nmains_device=x\n[relays]\nbutton_line=4\n[power]\n\nfail_line = 4\n",
		  "test.conf:7: [power] key 'fail_line': GPIO line 4 of gpiochip0 already used by [relays] button_line" },
		{ "[sensors]\nmains_device=x\n[power]\nfail_active_low = true\n",
		  "test.conf:3: [power] key 'fail_line': missing required key" },
		/* [load.NAME] switch = external (smart plugs through the MQTT bridge) */
		{ "[sensors]\nmains_device=x\n[load.washer]\nswitch = external\nline = 5\nload = 1800\npriority = 1\n",
		  "test.conf:5: [load.washer] key 'line': not with switch = external" },
		{ "[sensors]\nmains_device=x\n[load.washer]\nswitch = external\nload = 1800\npriority = 1\nactive_low = true\n",
		  "test.conf:7: [load.washer] key 'active_low': not with switch = external" },
		{ "[sensors]\nmains_device=x\n[load.pump]\nline = 5\nload = 100\npriority = 1\nstale_after = 60\n",
		  "test.conf:7: [load.pump] key 'stale_after': only with switch = external" },
		{ "[sensors]\nmains_device=x\n[load.washer]\nswitch = zigbee\n",
		  "test.conf:4: [load.washer] key 'switch': 'zigbee' is not one of gpio|external" },
		{ "[sensors]\nmains_device=x\n[load.washer]\nswitch = external\nstale_after = 5\n",
		  "test.conf:5: [load.washer] key 'stale_after': '5' is not a whole number from 10 to 3600 seconds" },
		{ "[sensors]\nmains_device=x\n[load.washer]\nswitch = external\nstale_after = 3601\n",
		  "test.conf:5: [load.washer] key 'stale_after'" },
		{ "[sensors]\nmains_device=x\n[load.washer]\nswitch = external\npriority = 1\n",
		  "test.conf:3: [load.washer] key 'load': missing required key" },
		{ "[sensors]\nmains_device=x\n[load.pump]\nline=3\nload=1\npriority=4\n"
		  "[load.washer]\nswitch = external\nload=1800\npriority=4\n",
		  "test.conf:10: [load.washer] key 'priority': priority 4 already used by load pump" },
		{ "[sensors]\nmains_device=x\n[load.washer]\nswitch = external\nload=1800\npriority=4\n"
		  "[load.pump]\nload=1\npriority=5\n",
		  "test.conf:7: [load.pump] key 'line': missing required key" },
	};
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct meter_config c;

		EXPECT_NE(0, parse(&c, cases[i].text, err));
		EXPECT_NE(NULL, strstr(err, cases[i].expect))
			TH_LOG("case %zu: got '%s', want '%s'", i, err, cases[i].expect);
	}
}

TEST(external_loads_have_no_line_and_share_the_priorities)
{
	struct meter_config c;
	char err[256];

	/* the plug needs no line: the GPIO pump may use any line, even the one after */
	ASSERT_EQ(0, parse(&c, "[sensors]\nmains_device = ct0\n"
			   "[load.washer]\nswitch = external\nload = 1800\npriority = 2\n"
			   "[load.dryer]\nswitch = external\nload = 2500\npriority = 0\nstale_after = 300\n"
			   "[load.pump]\nswitch = gpio\nline = 5\nload = 1500\npriority = 1\n", err))
		TH_LOG("%s", err);
	ASSERT_EQ(3u, c.nloads);
	EXPECT_STREQ("dryer", c.load[0].name);
	EXPECT_TRUE(c.load[0].external);
	EXPECT_EQ(300u, c.load[0].stale_after_s);
	EXPECT_STREQ("pump", c.load[1].name);
	EXPECT_FALSE(c.load[1].external);
	EXPECT_EQ(5u, c.load[1].line);
	EXPECT_STREQ("washer", c.load[2].name);
	EXPECT_TRUE(c.load[2].external);
	EXPECT_EQ((uint32_t)LOAD_STALE_DEFAULT_S, c.load[2].stale_after_s);
	EXPECT_EQ(1800u, c.load[2].load_w);
	EXPECT_STREQ("gridmeter-bridge", c.bridge_group);
	/* a line given to no GPIO load stays free for the power-fail input */
	ASSERT_EQ(0, parse(&c, "[sensors]\nmains_device = ct0\n"
			   "[load.washer]\nswitch = external\nload = 1800\npriority = 2\n"
			   "[power]\nfail_line = 0\n[dbus]\nbridge_group = mqtt\n", err))
		TH_LOG("%s", err);
	EXPECT_EQ(0, c.powerfail_line);
	EXPECT_STREQ("mqtt", c.bridge_group);
}

TEST(persistence_defaults_bound_the_energy_at_risk)
{
	struct meter_config c;
	char err[256];

	ASSERT_EQ(0, parse(&c, "[sensors]\nmains_device = ct0\n", err)) TH_LOG("%s", err);
	EXPECT_EQ(60u, c.persist_interval_s);
	EXPECT_EQ(100u, c.persist_energy_wh);
	EXPECT_EQ(0u, c.fsync_interval_line);
	EXPECT_EQ(-1, c.powerfail_line);
	/* no town server: the system's clock */
	EXPECT_STREQ("system", c.clock);
	EXPECT_FALSE(config_clock_town(&c));
	EXPECT_EQ(300u, c.clock_max_step_s);
	ASSERT_EQ(0, parse(&c, "[sensors]\nmains_device = ct0\n[store]\npersist_interval = 30\n"
			   "persist_energy = 20\n", err)) TH_LOG("%s", err);
	EXPECT_EQ(30u, c.persist_interval_s);
	EXPECT_EQ(20u, c.persist_energy_wh);
}

/* fsync_interval is accepted, remembered for a journal line, and no longer means "15 minutes at risk". */
TEST(fsync_interval_is_a_deprecated_alias)
{
	struct meter_config c;
	char err[256];

	/* the old example's "0" (at interval boundaries only) is now the default bound */
	ASSERT_EQ(0, parse(&c, "[sensors]\nmains_device = ct0\n[store]\n\nfsync_interval = 0\n", err));
	EXPECT_EQ(60u, c.persist_interval_s);
	EXPECT_EQ(5u, c.fsync_interval_line);
	ASSERT_EQ(0, parse(&c, "[sensors]\nmains_device = ct0\n[store]\nfsync_interval = 20\n", err));
	EXPECT_EQ(20u, c.persist_interval_s);
	ASSERT_EQ(0, parse(&c, "[sensors]\nmains_device = ct0\n[store]\nfsync_interval = 7200\n", err));
	EXPECT_EQ(3600u, c.persist_interval_s);
	/* the new key wins */
	ASSERT_EQ(0, parse(&c, "[sensors]\nmains_device = ct0\n[store]\nfsync_interval = 20\n"
			   "persist_interval = 45\n", err));
	EXPECT_EQ(45u, c.persist_interval_s);
}

TEST(power_fail_input_defaults_to_the_relays_chip)
{
	struct meter_config c;
	char err[256];

	ASSERT_EQ(0, parse(&c, "[sensors]\nmains_device = ct0\n[relays]\nchip = gpiochip2\n"
			   "[power]\nfail_line = 6\nfail_active_low = true\n", err)) TH_LOG("%s", err);
	EXPECT_STREQ("gpiochip2", c.powerfail_chip);
	EXPECT_EQ(6, c.powerfail_line);
	EXPECT_TRUE(c.powerfail_active_low);
	/* another chip: any line */
	ASSERT_EQ(0, parse(&c, "[sensors]\nmains_device = ct0\n[power]\nfail_chip = gpiochip1\n"
			   "fail_line = 17\n", err)) TH_LOG("%s", err);
	EXPECT_STREQ("gpiochip1", c.powerfail_chip);
}

TEST(clock_follows_the_town_with_an_uplink)
{
	static const char uplink[] = "[sensors]\nmains_device = ct0\n"
		"[uplink]\ncredentials = /etc/gridmeter/uplink.key\n"
		"[modem]\ndevice = /dev/ttyS1\napn = internet\nserver = town:7100\n";
	struct meter_config c;
	char text[512], err[256];

	ASSERT_EQ(0, parse(&c, uplink, err)) TH_LOG("%s", err);
	EXPECT_STREQ("town", c.clock);
	EXPECT_TRUE(config_clock_town(&c));
	snprintf(text, sizeof(text), "%s[meter]\nclock = system\nclock_max_step = 60\n", uplink);
	ASSERT_EQ(0, parse(&c, text, err)) TH_LOG("%s", err);
	EXPECT_STREQ("system", c.clock);
	EXPECT_EQ(60u, c.clock_max_step_s);
}

TEST(missing_file_names_it)
{
	struct meter_config c;
	char err[256];

	EXPECT_NE(0, config_load(&c, "/nonexistent/meterd.conf", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "/nonexistent/meterd.conf: No such file"));
}

TEST_HARNESS_MAIN
