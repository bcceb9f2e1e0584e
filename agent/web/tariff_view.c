// SPDX-License-Identifier: GPL-2.0
#include "tariff_view.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int32_t permille(int64_t now, int64_t next)
{
	int64_t d = (now - next) * 1000;

	if (now <= 0)
		return 0;
	/* half away from zero */
	return (int32_t)(d >= 0 ? (d + now / 2) / now : -((-d + now / 2) / now));
}

int mw_tariff_view(const struct tariff_spec *spec, int64_t now, uint64_t bill_import_mwh,
		   struct mw_tariff_view *v)
{
	struct tariff t;
	const char *badkey = NULL;
	char why[120];
	unsigned p;

	memset(v, 0, sizeof(*v));
	if (tariff_compile(spec, &t, &badkey, why, sizeof(why))) {
		snprintf(v->err, sizeof(v->err), "tariff['%s']: %s", badkey ? badkey : "?", why);
		return -EINVAL;
	}
	v->valid = true;
	v->type = t.type;
	memcpy(v->currency, t.currency, sizeof(v->currency));
	v->standing_milli = t.standing_milli;
	v->feed_in_milli = t.feed_in_milli;
	p = tariff_period_at(&t, (time_t)now, bill_import_mwh);
	memcpy(v->now_name, t.period_name[p], TARIFF_NAME_LEN);
	v->now_price = t.price[p];
	if (t.type != TARIFF_TOU)
		return 0;	/* flat and tiered prices do not change with the time of day */
	{
		time_t until = (time_t)(now + MW_TARIFF_HORIZON);
		time_t at = tariff_next_change(&t, (time_t)now, until);
		unsigned q;

		if (at >= until)
			return 0;
		q = tariff_period_at(&t, at, bill_import_mwh);
		v->has_next = true;
		v->next_at = at;
		memcpy(v->next_name, t.period_name[q], TARIFF_NAME_LEN);
		v->next_price = t.price[q];
		v->cheaper_permille = permille(v->now_price, v->next_price);
	}
	return 0;
}
