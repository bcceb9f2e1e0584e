// SPDX-License-Identifier: GPL-2.0
/* The modem's PWRKEY on a GPIO line (pwrkey.h). */
#include "pwrkey.h"

#include <errno.h>
#include <gpiod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pwrkey {
	struct gpiod_chip *chip;
	struct gpiod_line *line;
};

struct pwrkey *pwrkey_open(const char *chip, unsigned int line, bool active_low,
			   char *err, size_t errlen)
{
	struct gpiod_line_request_config rc = {
		.consumer = "meterd-pwrkey",
		.request_type = GPIOD_LINE_REQUEST_DIRECTION_OUTPUT,
		.flags = active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0,
	};
	struct pwrkey *k = calloc(1, sizeof(*k));

	if (!k) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	k->chip = gpiod_chip_open_lookup(chip);
	if (!k->chip) {
		snprintf(err, errlen, "[modem] pwrkey_chip %s: %s", chip, strerror(errno));
		free(k);
		return NULL;
	}
	k->line = gpiod_chip_get_line(k->chip, line);
	if (!k->line || gpiod_line_request(k->line, &rc, 0)) {
		snprintf(err, errlen, "[modem] pwrkey_line %u on %s: %s", line, chip, strerror(errno));
		gpiod_chip_close(k->chip);
		free(k);
		return NULL;
	}
	return k;
}

int pwrkey_set(struct pwrkey *k, bool asserted)
{
	return gpiod_line_set_value(k->line, asserted) ? -errno : 0;
}

void pwrkey_close(struct pwrkey *k)
{
	if (!k)
		return;
	gpiod_line_release(k->line);
	gpiod_chip_close(k->chip);
	free(k);
}
