// SPDX-License-Identifier: GPL-2.0
/*
 * What gm-mqttd announces to Home Assistant, without a broker: every
 * discovery message the bridge's code builds (the meter, two plugs, a gas
 * and a temperature home sensor), the availability, and a run of state
 * messages in which meterd's import register goes down once (the formatter
 * must hold it back). One "topic<TAB>payload<TAB>r|-" line per message, the
 * input of tests/mqtt/ha_check.py --file (used by t_ha_check.py).
 */
#include <stdio.h>
#include <string.h>

#include "ha_discovery.h"
#include "ha_state.h"

static const char *const periods[] = { "night", "day", "peak", NULL };
static const struct ha_device dev = { .prefix = "homeassistant", .base = "gridmeter/101",
				      .meter_id = "101", .sw_version = "0.1", .currency = "EUR",
				      .tariff_periods = periods };

static int announce(const struct ha_entity *e)
{
	char topic[256], payload[2048];
	int n = ha_config_payload(&dev, e, payload, sizeof(payload));

	if (n < 0 || ha_config_topic(&dev, e, topic, sizeof(topic))) {
		fprintf(stderr, "ha_dump: %s: cannot build\n", e->object);
		return 1;
	}
	printf("%s\t%s\tr\n", topic, payload);
	return 0;
}

int main(void)
{
	static const uint64_t import_wh[] = { 1000, 1250, 1500, 1400, 1600, 2000 };
	struct ha_entity_store plug[2][HA_PLUG_NENTITIES], home[2][HA_HOME_NENTITIES];
	struct ha_state st = { 0 };
	int rc = 0;

	for (size_t i = 0; i < ha_meter_nentities; i++)
		rc |= announce(&ha_meter_entities[i]);
	if (ha_plug_entities("washer", plug[0]) < 0 || ha_plug_entities("heater", plug[1]) < 0 ||
	    ha_home_entities("kitchen_gas", "gas", "mV", home[0]) < 0 ||
	    ha_home_entities("hall", "temperature", "C", home[1]) < 0)
		return 1;
	for (size_t i = 0; i < 2; i++) {
		for (size_t j = 0; j < HA_PLUG_NENTITIES; j++)
			rc |= announce(&plug[i][j].e);
		for (size_t j = 0; j < HA_HOME_NENTITIES; j++)
			rc |= announce(&home[i][j].e);
	}
	printf("gridmeter/101/status\tonline\tr\n");
	for (size_t k = 0; k < sizeof(import_wh) / sizeof(import_wh[0]); k++) {
		static const char *const alarms[] = { "gas" };
		struct ha_meter_values v = {
			.have_readings = true, .voltage_mv = 229500 + 100 * (uint32_t)k,
			.current_ma = 4000 + 10 * (uint32_t)k, .power_mw = 918000 - 200000 * (int64_t)k,
			.pf_milli = 985, .frequency_mhz = 49990 + (uint32_t)k, .have_registers = true,
			.import_mwh = import_wh[k] * 1000 + 7, .export_mwh = 500 * k, .renew_mwh = 3000 * k,
			.have_tariff = true, .price_milli = 28620 * (int64_t)k, .minor_per_major = 100,
			.period = periods[k % 3], .have_relay = true, .relay_closed = k != 4,
			.nactive_alarms = k == 3, .nplugs = 2, .nhome = 2,
		};
		char buf[4096];
		int n;

		v.active_alarms[0] = alarms[0];
		v.plug[0] = (struct ha_plug_value){ plug[0][0].e.object, true, k < 3, k < 3 ? 1800000 : 2500 };
		v.plug[1] = (struct ha_plug_value){ plug[1][0].e.object, k != 2, true, -1 };
		v.home[0] = (struct ha_home_value){ home[0][0].e.object, k > 0, 900000 + 150000 * (int64_t)k,
						     k == 3 };
		v.home[1] = (struct ha_home_value){ home[1][0].e.object, true, 21500 - 250 * (int64_t)k,
						     false };
		n = ha_state_format(&st, &v, buf, sizeof(buf));
		if (n < 0) {
			fprintf(stderr, "ha_dump: state %zu: %d\n", k, n);
			return 1;
		}
		printf("gridmeter/101/state\t%s\t-\n", buf);
	}
	fprintf(stderr, "ha_dump: %lu register values held back\n", st.held_back);
	return rc;
}
