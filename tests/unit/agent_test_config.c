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
	};
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct meter_config c;

		EXPECT_NE(0, parse(&c, cases[i].text, err));
		EXPECT_NE(NULL, strstr(err, cases[i].expect))
			TH_LOG("case %zu: got '%s', want '%s'", i, err, cases[i].expect);
	}
}

TEST(missing_file_names_it)
{
	struct meter_config c;
	char err[256];

	EXPECT_NE(0, config_load(&c, "/nonexistent/meterd.conf", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "/nonexistent/meterd.conf: No such file"));
}

TEST_HARNESS_MAIN
