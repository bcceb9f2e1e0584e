// SPDX-License-Identifier: GPL-2.0
/*
 * meterd.conf [uplink], [modem] and [neighbour.NAME]: a complete config sets
 * every field, and each cross-check of validate_uplink() (and the key
 * parsers) refuses with "test.conf:LINE: [section] key 'k': why", LINE
 * being counted in the case's own text.
 */
#include <stdio.h>
#include <string.h>

#include "gm_harness.h"
#include "line_of.h"
#include "config.h"

static int parse(struct meter_config *c, const char *text, char *err, size_t errlen)
{
	err[0] = 0;
	return config_parse(c, "test.conf", text, err, errlen);
}

/* Without [sensors] mains_device an iio config fails before the uplink checks. */
#define SENSORS	"[sensors]\nmains_device = ct0\n"
#define UPLINK	"[uplink]\ncredentials = /etc/gridmeter/uplink.key\n"
#define MODEM_NOSRV "[modem]\ndevice = /dev/ttyS1\napn = internet\n"
#define MODEM	MODEM_NOSRV "server = town.example.net:7100\n"
#define NB_A	"[neighbour.a]\ndevice = /dev/ttyAMA1\n"

static const char full[] =
	SENSORS
	"[uplink]\n"
	"credentials = /etc/gridmeter/uplink.key\n"
	"[modem]\n"
	"device = /dev/ttyS1\n"
	"baud = 57600\n"
	"pwrkey_chip = gpiochip0\n"
	"pwrkey_line = 23\n"
	"pwrkey_active_low = true\n"
	"apn = internet.example\n"
	"user = meter\n"
	"password = s3cret\n"
	"server = town.example.net:7100\n"
	"connect_timeout_ms = 60000\n"
	"retries = 5\n"
	"[neighbour.a]\n"
	"device = /dev/ttyAMA1\n"
	"baud = 38400\n";

TEST(complete_config_sets_every_field)
{
	struct meter_config c;
	char err[256];

	ASSERT_EQ(0, parse(&c, full, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_TRUE(c.uplink);
	EXPECT_STREQ("/etc/gridmeter/uplink.key", c.credentials);
	/* billing data by default: one reading per hour and tariff period */
	EXPECT_STREQ("billing", c.detail);
	EXPECT_FALSE(config_detail_interval(&c));
	EXPECT_EQ(3600u, config_report_s(&c));
	EXPECT_EQ(900u, c.report_interval_s);	/* used with detail = interval only */
	EXPECT_EQ(0u, c.report_interval_line);
	EXPECT_EQ(3600u, c.snapshot_interval_s);
	EXPECT_STREQ("", c.outbox_dir);
	EXPECT_EQ(64u, c.outbox_max_mib);
	EXPECT_EQ(8u, c.ack_every);
	EXPECT_EQ(30000u, c.ack_timeout_ms);
	EXPECT_EQ(2u, c.broken_after);

	EXPECT_TRUE(c.modem);
	EXPECT_STREQ("/dev/ttyS1", c.modem_device);
	EXPECT_EQ(57600u, c.modem_baud);
	EXPECT_STREQ("gpiochip0", c.pwrkey_chip);
	EXPECT_EQ(23, c.pwrkey_line);
	EXPECT_TRUE(c.pwrkey_active_low);
	EXPECT_STREQ("internet.example", c.sim900.apn);
	EXPECT_STREQ("meter", c.sim900.user);
	EXPECT_STREQ("s3cret", c.sim900.pass);
	EXPECT_STREQ("town.example.net", c.sim900.host);
	EXPECT_EQ(7100, c.sim900.port);
	EXPECT_EQ(60000u, c.sim900.connect_timeout_ms);
	EXPECT_EQ(5u, c.sim900.retries);
	EXPECT_EQ(3000u, c.sim900.cmd_timeout_ms);	/* not given: default */

	ASSERT_EQ(1u, c.nneighbours);
	EXPECT_STREQ("a", c.neighbour[0].name);
	EXPECT_STREQ("/dev/ttyAMA1", c.neighbour[0].device);
	EXPECT_EQ(38400u, c.neighbour[0].baud);
	EXPECT_EQ(line_of(full, "[neighbour.a]"), c.neighbour[0].cfg_line);
}

TEST(neighbours_only_with_every_uplink_key)
{
	static const char text[] =
		SENSORS
		"[uplink]\n"
		"credentials = /run/credentials/meterd.service/uplink.key\n"
		"detail = interval\n"
		"report_interval = 300\n"
		"snapshot_interval = 0\n"
		"outbox_dir = /var/lib/gridmeter/out\n"
		"outbox_max = 16\n"
		"link_node = 3\n"
		"ack_every = 16\n"
		"ack_timeout_ms = 5000\n"
		"broken_after = 4\n"
		"[neighbour.north_1]\n"
		"device = /dev/ttyAMA1\n"
		"[neighbour.south]\n"
		"device = /dev/ttyAMA2\n"
		"baud = 9600\n";
	struct meter_config c;
	char err[256];

	ASSERT_EQ(0, parse(&c, text, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_TRUE(c.uplink);
	EXPECT_FALSE(c.modem);
	EXPECT_STREQ("/run/credentials/meterd.service/uplink.key", c.credentials);
	EXPECT_TRUE(config_detail_interval(&c));
	EXPECT_EQ(300u, c.report_interval_s);
	EXPECT_EQ(300u, config_report_s(&c));
	EXPECT_EQ(0u, c.report_interval_line);
	EXPECT_EQ(0u, c.snapshot_interval_s);	/* 0: no snapshots, not "shorter" */
	EXPECT_STREQ("/var/lib/gridmeter/out", c.outbox_dir);
	EXPECT_EQ(16u, c.outbox_max_mib);
	EXPECT_EQ(3u, c.link_node);
	EXPECT_EQ(16u, c.ack_every);
	EXPECT_EQ(5000u, c.ack_timeout_ms);
	EXPECT_EQ(4u, c.broken_after);
	ASSERT_EQ(2u, c.nneighbours);
	EXPECT_STREQ("north_1", c.neighbour[0].name);
	EXPECT_EQ(115200u, c.neighbour[0].baud);	/* default */
	EXPECT_STREQ("south", c.neighbour[1].name);
	EXPECT_STREQ("/dev/ttyAMA2", c.neighbour[1].device);
	EXPECT_EQ(9600u, c.neighbour[1].baud);
}

TEST(no_uplink_section_no_uplink)
{
	struct meter_config c;
	char err[256];

	ASSERT_EQ(0, parse(&c, SENSORS, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_FALSE(c.uplink);
	EXPECT_FALSE(c.modem);
	EXPECT_EQ(0u, c.nneighbours);
}

TEST(interval_bounds_accepted)
{
	static const char *const texts[] = {
		SENSORS "[uplink]\ndetail = interval\nreport_interval = 1\n" NB_A,
		SENSORS "[uplink]\ndetail = interval\nreport_interval = 3600\n" NB_A,	/* = default snapshot */
		SENSORS "[uplink]\ndetail = interval\nreport_interval = 600\nsnapshot_interval = 600\n" NB_A,
		SENSORS "[uplink]\ndetail = billing\nsnapshot_interval = 3600\n" NB_A,
		SENSORS "[uplink]\nsnapshot_interval = 86400\n" NB_A,
	};
	char err[256];

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct meter_config c;

		EXPECT_EQ(0, parse(&c, texts[i], err, sizeof(err)))
			TH_LOG("case %zu: %s", i, err);
	}
}

TEST(report_interval_of_an_older_config_is_noted_not_used)
{
	static const char text[] =
		SENSORS
		"[uplink]\n"
		"credentials = /etc/gridmeter/uplink.key\n"
		"report_interval = 60\n"
		NB_A;
	struct meter_config c;
	char err[256];

	/* meterd starts (a meter must not stay down after an upgrade) and sends billing data */
	ASSERT_EQ(0, parse(&c, text, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_FALSE(config_detail_interval(&c));
	EXPECT_EQ(3600u, config_report_s(&c));
	/* the line, for the journal's warning */
	EXPECT_EQ(line_of(text, "report_interval = 60"), c.report_interval_line);
}

struct bad_case {
	const char *text;
	const char *at;		/* the line the error must point at */
	const char *expect;	/* the error after "test.conf:LINE: " */
};

TEST(refusals_name_line_section_and_key)
{
	static const struct bad_case cases[] = {
		/* [modem] / [neighbour.*] need [uplink] */
		{ SENSORS MODEM, "[modem]",
		  "[modem] and [neighbour.*] need an [uplink] section" },
		{ SENSORS NB_A, "[neighbour.a]",
		  "[modem] and [neighbour.*] need an [uplink] section" },
		/* [uplink] needs a way out */
		{ SENSORS UPLINK, "[uplink]",
		  "[uplink] needs a [modem] or at least one [neighbour.NAME] section" },
		/* [modem] required keys */
		{ SENSORS UPLINK "[modem]\ndevice = /dev/ttyS1\nserver = town:7100\n", "[modem]",
		  "[modem] key 'apn': missing required key" },
		{ SENSORS UPLINK MODEM_NOSRV, "[modem]",
		  "[modem] key 'server': missing required key" },
		{ SENSORS UPLINK "[modem]\napn = internet\nserver = town:7100\n", "[modem]",
		  "[modem] key 'device': missing required key" },
		/* server is HOST:PORT */
		{ SENSORS UPLINK MODEM_NOSRV "server = town.example.net\n", "server = town.example.net",
		  "[modem] key 'server': 'town.example.net' is not HOST:PORT" },
		{ SENSORS UPLINK MODEM_NOSRV "server = :7100\n", "server = :7100",
		  "[modem] key 'server': ':7100' is not HOST:PORT" },
		{ SENSORS UPLINK MODEM_NOSRV "server = town:65536\n", "server = town:65536",
		  "[modem] key 'server': 'town:65536' is not HOST:PORT" },
		/* serial lines and speeds */
		{ SENSORS UPLINK MODEM "baud = 12345\n", "baud = 12345",
		  "[modem] key 'baud': 12345 is not one of 9600, 19200," },
		{ SENSORS UPLINK "[modem]\ndevice = ttyS1\napn = internet\nserver = town:7100\n",
		  "device = ttyS1", "[modem] key 'device': 'ttyS1' is not an absolute device path" },
		{ SENSORS UPLINK MODEM "[neighbour.a]\ndevice=/dev/ttyS1\n", "device=/dev/ttyS1",
		  "[neighbour.a] key 'device': /dev/ttyS1 is the modem's serial line" },
		{ SENSORS UPLINK NB_A "[neighbour.b]\ndevice=/dev/ttyAMA1\n", "device=/dev/ttyAMA1",
		  "[neighbour.b] key 'device': /dev/ttyAMA1 already used by neighbour a" },
		{ SENSORS UPLINK "[neighbour.a]\nbaud = 9600\n", "[neighbour.a]",
		  "[neighbour.a] key 'device': missing required key" },
		{ SENSORS UPLINK NB_A "baud = 12345\n", "baud = 12345",
		  "[neighbour.a] key 'baud': '12345' is not one of 9600," },
		{ SENSORS UPLINK "[neighbour.a]\ndevice = ttyAMA1\n", "device = ttyAMA1",
		  "[neighbour.a] key 'device': 'ttyAMA1' is not an absolute device path" },
		/* intervals */
		{ SENSORS "[uplink]\ndetail = interval\nreport_interval = 600\nsnapshot_interval = 599\n" MODEM,
		  "snapshot_interval = 599",
		  "[uplink] key 'snapshot_interval': 599 s is shorter than report_interval (600 s)" },
		{ SENSORS "[uplink]\nreport_interval = 600\nsnapshot_interval = 600\n" MODEM,
		  "snapshot_interval = 600",
		  "[uplink] key 'snapshot_interval': 600 s is shorter than the readings (3600 s: detail = billing)" },
		{ SENSORS "[uplink]\ndetail = hourly\n" NB_A, "detail = hourly",
		  "[uplink] key 'detail': 'hourly' is not one of billing|interval" },
		{ SENSORS "[uplink]\nreport_interval = 0\n" NB_A, "report_interval = 0",
		  "[uplink] key 'report_interval': '0' is not a whole number from 1 to 3600 seconds" },
		{ SENSORS "[uplink]\nreport_interval = 3601\n" NB_A, "report_interval = 3601",
		  "[uplink] key 'report_interval': '3601' is not a whole number from 1 to 3600 seconds" },
		{ SENSORS "[uplink]\ncredentials = uplink.key\n" NB_A, "credentials = uplink.key",
		  "[uplink] key 'credentials': 'uplink.key' is not an absolute path" },
		/* PWRKEY chip and line go together: the line given, the key missing */
		{ SENSORS UPLINK MODEM "pwrkey_line = 4\n", "pwrkey_line = 4",
		  "[modem] key 'pwrkey_chip': pwrkey_chip and pwrkey_line go together" },
		{ SENSORS UPLINK MODEM "pwrkey_chip = gpiochip0\n", "pwrkey_chip = gpiochip0",
		  "[modem] key 'pwrkey_line': pwrkey_chip and pwrkey_line go together" },
		/* keys handed to sim900_config_set() */
		{ SENSORS UPLINK MODEM "colour = red\n", "colour = red",
		  "[modem] key 'colour': unknown key" },
		{ SENSORS UPLINK MODEM "guard_ms = 5\n", "guard_ms = 5",
		  "[modem] key 'guard_ms': '5' is not 20..2550" },
		{ SENSORS UPLINK "[modem]\ndevice = /dev/ttyS1\napn = in\"ternet\n", "apn = in\"ternet",
		  "[modem] key 'apn': must be up to 63 printable characters" },
		{ SENSORS UPLINK MODEM "apn = other\n", "apn = other",
		  "[modem] key 'apn': given twice (first on line" },
		/* neighbour section names */
		{ SENSORS UPLINK "[neighbour.Bad-1]\n", "[neighbour.Bad-1]",
		  "section [neighbour.Bad-1]: neighbour name must be 1-15 characters of a-z, 0-9, _" },
		{ SENSORS UPLINK "[neighbour.]\n", "[neighbour.]",
		  "section [neighbour.]: neighbour name must be" },
		{ SENSORS UPLINK "[neighbour.abcdefghijklmnop]\n", "[neighbour.abcdefghijklmnop]",
		  "section [neighbour.abcdefghijklmnop]: neighbour name must be" },
		{ SENSORS UPLINK NB_A "[ neighbour.a ]\n", "[ neighbour.a ]",
		  "section [neighbour.a] given twice" },
		{ SENSORS UPLINK "[neighbour.a]\n[neighbour.b]\n[neighbour.c]\n[neighbour.d]\n"
		  "[neighbour.e]\n", "[neighbour.e]", "section [neighbour.e]: more than 4 neighbours" },
	};
	char err[256], want[320];

	/* the helper itself: counted from 1, exact lines, unique */
	ASSERT_EQ(2u, line_of("a\nb\nc", "b"));
	ASSERT_EQ(3u, line_of("a\nb\nc", "c"));
	ASSERT_EQ(0u, line_of("b\nb\n", "b"));
	ASSERT_EQ(0u, line_of("bb\n", "b"));

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct meter_config c;
		unsigned int at;

		at = line_of(cases[i].text, cases[i].at);
		ASSERT_NE(0u, at) TH_LOG("case %zu: '%s' is not exactly one line of the text",
					 i, cases[i].at);
		snprintf(want, sizeof(want), "test.conf:%u: %s", at, cases[i].expect);
		EXPECT_NE(0, parse(&c, cases[i].text, err, sizeof(err))) TH_LOG("case %zu", i);
		EXPECT_EQ(0, strncmp(err, want, strlen(want)))
			TH_LOG("case %zu: got '%s', want '%s...'", i, err, want);
	}
}

TEST_HARNESS_MAIN
