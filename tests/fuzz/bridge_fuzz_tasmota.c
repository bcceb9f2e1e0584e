// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: the MQTT bridge's JSON reader, Tasmota and ESPHome
 * payload parsers (agent/bridge/json_scan.c, tasmota.c, esphome.c) on any
 * bytes, as every kind of Tasmota and ESPHome message. Whatever they accept, a found value lies inside the
 * input, a number read as thousandths is within the documented range and a
 * report only carries fields its `have` bits name.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "esphome.h"
#include "json_scan.h"
#include "tasmota.h"

static const char *const paths[] = { "ENERGY.Power", "StatusSNS.ENERGY.Total", "POWER", "a" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size heap copy: ASan sees any read past the end. */
	uint8_t *buf = malloc(size ? size : 1);
	struct tas_plug p;
	struct esp_plug e;
	struct tas_report r;
	struct json_val v;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		int rc = json_find(buf, size, paths[i], &v);

		if (rc != 0 && rc != -ENOENT && rc != -EINVAL)
			abort();
		if (!rc) {
			int64_t m;

			if ((const uint8_t *)v.p < buf || (const uint8_t *)v.p + v.len > buf + size)
				abort();
			rc = json_milli(&v, &m);
			if (rc != 0 && rc != -EINVAL && rc != -ERANGE)
				abort();
			if (!rc && (m > (int64_t)1 << 62 || m < -((int64_t)1 << 62)))
				abort();
		}
	}
	if (tas_plug_init(&p, "plug1", 0, NULL, NULL))
		abort();
	for (unsigned k = 0; k < TAS_NKINDS; k++) {
		int rc = tas_parse(&p, (enum tas_kind)k, buf, size, &r);

		if (rc != 0 && rc != -ENOENT && rc != -EINVAL)
			abort();
		if (!rc && (!r.have || ((r.have & TAS_HAVE_POWER) && r.power_mw < 0) ||
			    ((r.have & TAS_HAVE_TOTAL) && r.total_wh < 0) ||
			    (!(r.have & TAS_HAVE_START) && r.total_start[0]) ||
			    memchr(r.total_start, 0, sizeof(r.total_start)) == NULL))
			abort();
	}
	if (esp_plug_init(&e, "washer", "relay", "power"))
		abort();
	for (unsigned k = 0; k < ESP_NKINDS; k++) {
		int rc = esp_parse(&e, (enum esp_kind)k, buf, size, &r);

		if (rc != 0 && rc != -ENOENT && rc != -EINVAL)
			abort();
		/* exactly one field, the one of its kind; a power never negative */
		if (!rc && (r.have != (k == ESP_STATUS ? TAS_HAVE_ONLINE :
				       k == ESP_SWITCH_STATE ? TAS_HAVE_ON : TAS_HAVE_POWER) ||
			    ((r.have & TAS_HAVE_POWER) && r.power_mw < 0)))
			abort();
	}
	free(buf);
	return 0;
}
