// SPDX-License-Identifier: GPL-2.0
#include "uplink.h"

#include <stddef.h>

/* No [uplink] configured: requests and offers go nowhere. */
static void none_request(struct uplink *u, int64_t w)
{
	(void)u;
	(void)w;
}

static const char *none_state(struct uplink *u)
{
	(void)u;
	return "not-configured";
}

static const struct uplink_ops none_ops = {
	.name = "none",
	.request = none_request,
	.offer = none_request,
	.state = none_state,
	.interval = NULL,
	.alarm = NULL,
};

struct uplink uplink_none = { .ops = &none_ops };
