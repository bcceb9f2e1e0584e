// SPDX-License-Identifier: GPL-2.0
#include "words.h"

#include <stddef.h>
#include <string.h>

struct word {
	const char *name, *words;
};

static const char *lookup(const struct word *w, const char *name, const char *dflt)
{
	if (!name)
		return dflt;
	for (; w->name; w++)
		if (!strcmp(w->name, name))
			return w->words;
	return name[0] ? name : dflt;
}

const char *mw_route_words(const char *route, int has_uplink)
{
	static const struct word w[] = {
		{ "modem", "own modem" }, { "neighbour", "through neighbour" }, { "none", "no route" },
		{ NULL, NULL }
	};

	if (!has_uplink)
		return "not configured";
	return lookup(w, route, "no route");
}

const char *mw_alarm_words(const char *alarm)
{
	static const struct word w[] = {
		{ "over-voltage", "Voltage too high" },
		{ "under-voltage", "Voltage too low" },
		{ "over-current", "Current too high" },
		{ "lockout", "Supply locked out after repeated trips: a technician must clear it" },
		{ "supply-deficit", "The town cannot supply all the power asked for" },
		{ "sensor-failure", "The meter cannot read its sensor" },
		{ "store-corrupt", "A damaged record was found in the meter's memory" },
		{ "store-error", "The meter cannot save its data" },
		{ "protection-degraded", "Protection is not armed as configured" },
		{ "clock-suspect", "The town server's time disagrees with the meter's clock" },
		{ "reversed-ct", "The current clamp seems to be on backwards" },
		{ "ct-tamper", "No current measured for hours: the clamp may be removed" },
		{ "load-unreachable", "A smart plug is not answering" },
		{ "load-mismatch", "A smart plug did not switch as the meter asked" },
		{ "gas", "Gas detected: see the warning at the top of the page" },
		{ "home-sensor", "A home sensor is outside its limits or not working" },
		{ NULL, NULL }
	};

	return lookup(w, alarm, "unknown alarm");
}

const char *mw_relay_words(const char *main_relay)
{
	static const struct word w[] = { { "closed", "supply on" }, { "open", "supply off" }, { NULL, NULL } };

	return lookup(w, main_relay, "unknown");
}

const char *mw_protection_words(const char *protection)
{
	static const struct word w[] = {
		{ "normal", "normal" },
		{ "tripped", "tripped: reconnects by itself when the fault is gone" },
		{ "lockout", "locked out: a technician must clear it" },
		{ NULL, NULL }
	};

	return lookup(w, protection, "unknown");
}

const char *mw_remote_words(const char *remote)
{
	static const struct word w[] = {
		{ "connected", "connected" },
		{ "disconnected", "disconnected by the utility" },
		{ "armed", "reconnection allowed: press the button on the meter" },
		{ NULL, NULL }
	};

	return lookup(w, remote, "unknown");
}

const char *mw_alloc_label(const char *key)
{
	static const struct word w[] = {
		{ "grant", "Granted by the town" }, { "demand", "Demand" }, { "declared", "Declared by appliances" },
		{ "from-grid", "From the grid" }, { "from-renewable", "From renewable" }, { "deficit", "Deficit" },
		{ "request", "Asked of the town" }, { "surplus", "Offered back" }, { "shed", "Loads shed" },
		{ NULL, NULL }
	};

	return lookup(w, key, "?");
}
