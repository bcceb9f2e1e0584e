// SPDX-License-Identifier: GPL-2.0
#include "powerfail.h"

#include <errno.h>
#include <gpiod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONSUMER	"meterd-powerfail"

struct powerfail {
	struct gpiod_chip *chip;
	struct gpiod_line *line;
	bool lost;
};

struct powerfail *powerfail_open(const char *chip, unsigned line, bool active_low, char *err,
				 size_t errlen)
{
	struct powerfail *pf = calloc(1, sizeof(*pf));
	int flags = active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
	int v;

	if (!pf) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pf->chip = gpiod_chip_open_lookup(chip);
	if (!pf->chip) {
		snprintf(err, errlen, "GPIO chip %s: %s", chip, strerror(errno));
		goto fail;
	}
	pf->line = gpiod_chip_get_line(pf->chip, line);
	if (!pf->line || gpiod_line_request_both_edges_events_flags(pf->line, CONSUMER, flags)) {
		snprintf(err, errlen, "GPIO chip %s line %u: %s", chip, line, strerror(errno));
		pf->line = NULL;
		goto fail;
	}
	v = gpiod_line_get_value(pf->line);
	if (v < 0) {
		snprintf(err, errlen, "GPIO chip %s line %u: reading: %s", chip, line, strerror(errno));
		goto fail;
	}
	pf->lost = v > 0;
	return pf;
fail:
	powerfail_close(pf);
	return NULL;
}

int powerfail_fd(const struct powerfail *pf)
{
	return gpiod_line_event_get_fd(pf->line);
}

int powerfail_read(struct powerfail *pf, bool *lost_edge, bool *lost)
{
	const struct timespec zero = { 0, 0 };
	struct gpiod_line_event ev;

	*lost_edge = false;
	while (gpiod_line_event_wait(pf->line, &zero) == 1) {
		if (gpiod_line_event_read(pf->line, &ev))
			return -errno;
		pf->lost = ev.event_type == GPIOD_LINE_EVENT_RISING_EDGE;
		*lost_edge |= pf->lost;
	}
	*lost = pf->lost;
	return 0;
}

bool powerfail_lost(const struct powerfail *pf)
{
	return pf->lost;
}

void powerfail_close(struct powerfail *pf)
{
	if (!pf)
		return;
	if (pf->line)
		gpiod_line_release(pf->line);
	if (pf->chip)
		gpiod_chip_close(pf->chip);
	free(pf);
}
