// SPDX-License-Identifier: GPL-2.0
/*
 * A stand-in for the MQTT bridge in the dashboard's browser test: it stays on
 * the bus (DBUS_SYSTEM_BUS_ADDRESS) as one connection, as gm-mqttd does, and
 * makes meterd's ReportLoad calls it reads from stdin, one a line:
 *
 *   NAME REACHABLE ON MEASURED_W DECLARED_W      e.g. "washer 1 1 1850 0"
 *
 * answering "ok" or "error NAME: MESSAGE" on stdout for each. meterd treats
 * every external load as unreachable when the reporter leaves the bus: the
 * test closes stdin to see that (busctl, one connection a call, would make
 * every report followed at once by "reporter left").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-bus.h>

int main(void)
{
	sd_bus *bus = NULL;
	char line[256];
	int r = sd_bus_open_system(&bus);

	if (r < 0) {
		fprintf(stderr, "dashboard_plug: bus: %s\n", strerror(-r));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		sd_bus_error e = SD_BUS_ERROR_NULL;
		char name[64];
		int reach, on;
		int32_t w;
		uint32_t declared;

		if (sscanf(line, "%63s %d %d %" SCNd32 " %" SCNu32, name, &reach, &on, &w, &declared) != 5) {
			printf("error bad line\n");
			continue;
		}
		r = sd_bus_call_method(bus, "org.gridmeter.Meter1", "/org/gridmeter/Meter1", "org.gridmeter.Meter1",
				       "ReportLoad", &e, NULL, "sbbiu", name, reach != 0, on != 0, w, declared);
		if (r < 0)
			printf("error %s: %s\n", e.name ? e.name : "?", e.message ? e.message : strerror(-r));
		else
			printf("ok\n");
		sd_bus_error_free(&e);
	}
	sd_bus_flush_close_unref(bus);
	return 0;
}
