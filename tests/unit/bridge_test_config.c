// SPDX-License-Identifier: GPL-2.0
/* The bridge's mqtt.conf: a full example, defaults, and errors naming file, line and key. */
#include <errno.h>
#include <string.h>

#include "gm_harness.h"
#include "bridge_config.h"

static const char good[] =
	"[broker]\n"
	"host = broker.lan\n"
	"port = 8883\n"
	"username = gridmeter-bridge\n"
	"password_file = /run/credentials/gm-mqttd.service/mqtt-password\n"
	"ca_file = /etc/gridmeter/mqtt-ca.crt\n"
	"cert_file = /etc/gridmeter/mqtt.crt\n"
	"key_file = /etc/gridmeter/mqtt.key\n"
	"\n"
	"[homeassistant]\n"
	"base_topic = gridmeter/101\n"
	"\n"
	"[plug.washer]\n"
	"type = tasmota\n"
	"topic = tasmota_A1B2C3\n"
	"telemetry = 60\n"
	"\n"
	"[plug.heater]\n"
	"type = tasmota\n"
	"topic = sonoff4ch\n"
	"relay = 2\n"
	"on_word = AN\n"
	"off_word = AUS\n";

TEST(full_example)
{
	struct bridge_config c;
	char err[256] = "";

	ASSERT_EQ(0, bridge_config_parse(&c, "mqtt.conf", good, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_STREQ("broker.lan", c.host);
	EXPECT_EQ(8883u, c.port);
	EXPECT_EQ(30u, c.keepalive_s);
	EXPECT_TRUE(c.ha_enabled);
	EXPECT_STREQ("homeassistant", c.discovery_prefix);
	EXPECT_STREQ("gridmeter/101", c.base_topic);
	EXPECT_FALSE(c.home_sensors);
	EXPECT_EQ(10u, c.ha_interval_s);	/* the default */
	ASSERT_EQ(2u, c.nplugs);
	EXPECT_STREQ("washer", c.plug[0].name);
	EXPECT_STREQ("tasmota_A1B2C3", c.plug[0].tas.topic);
	EXPECT_EQ(0u, c.plug[0].tas.relay);
	EXPECT_EQ(60u, c.plug[0].telemetry_s);
	EXPECT_STREQ("ON", c.plug[0].tas.on_word);
	EXPECT_EQ(2u, c.plug[1].tas.relay);
	EXPECT_EQ(300u, c.plug[1].telemetry_s);
	EXPECT_STREQ("AUS", c.plug[1].tas.off_word);
}

/* Each case: text, then the exact start of the message. */
TEST(errors_name_file_line_and_key)
{
	static const struct { const char *text, *msg; } c[] = {
		{ "[broker]\npassword = x\n", "m.conf:2: [broker] key 'password': not accepted here" },
		{ "[broker]\nport = 0\n", "m.conf:2: [broker] key 'port': '0' is not a whole number in 1..65535" },
		{ "[broker]\nca_file = ca.crt\n", "m.conf:2: [broker] key 'ca_file': 'ca.crt' is not an absolute path" },
		{ "[broker]\ncert_file = /a\n", "m.conf:1: [broker] key 'key_file': missing" },
		{ "[broker]\nusername = u\ncert_file = /a\nkey_file = /b\n", "m.conf:3: [broker] key 'ca_file': missing" },
		{ "[broker]\npassword_file = /p\n", "m.conf:2: [broker] key 'username': missing" },
		{ "[homeassistant]\nbase_topic = gm/#\n", "m.conf:2: [homeassistant] key 'base_topic': 'gm/#' is not a topic" },
		{ "[homeassistant]\ninterval = 0\n", "m.conf:2: [homeassistant] key 'interval': '0' is not a whole number in 1..3600" },
		{ "[plug.w]\ntopic = t\ntelemetry = 0\n", "m.conf:3: [plug.w] key 'telemetry': '0' is not a whole number in 1..3600" },
		{ "[mqtt]\n", "m.conf:1: section [mqtt]: unknown" },
		{ "[plug.Washer]\n", "m.conf:1: section [plug.Washer]: plug name" },
		{ "[plug.w]\ntype = tasmota\n", "m.conf:1: [plug.w] key 'topic': missing required key" },
		{ "[plug.w]\ntopic = a/b\n", "m.conf:2: [plug.w] key 'topic': 'a/b'" },
		{ "[plug.w]\ntopic = t\ntype = shelly\n", "m.conf:3: [plug.w] key 'type': 'shelly' is not tasmota or esphome" },
		{ "[plug.w]\ntopic = t\nrelay = 9\n", "m.conf:3: [plug.w] key 'relay': '9' is not a whole number in 0..8" },
		{ "[plug.w]\ntopic = t\non_word = X\noff_word = X\n", "m.conf:2: [plug.w] key 'topic'" },
		{ "[plug.w]\ntopic = t\n[plug.v]\ntopic = t\n", "m.conf:4: [plug.v] key 'topic': 't' relay 0 already used by plug w" },
		{ "[plug.w]\ntopic = t\ntype = esphome\n", "m.conf:1: [plug.w] key 'switch_name': missing" },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct bridge_config cfg;
		char err[256] = "";

		EXPECT_EQ(-EINVAL, bridge_config_parse(&cfg, "m.conf", c[i].text, err, sizeof(err)));
		EXPECT_EQ(0, strncmp(err, c[i].msg, strlen(c[i].msg))) TH_LOG("case %zu: got '%s'", i, err);
	}
}

TEST(at_most_eight_plugs)
{
	char text[2048] = "", err[256];
	struct bridge_config cfg;
	size_t n = 0;

	for (int i = 0; i <= BRIDGE_MAX_PLUGS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "[plug.p%d]\ntopic = t%d\n", i, i);
	EXPECT_EQ(-EINVAL, bridge_config_parse(&cfg, "m.conf", text, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "more than 8 plugs")) TH_LOG("%s", err);
}

TEST_HARNESS_MAIN
