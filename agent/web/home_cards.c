// SPDX-License-Identifier: GPL-2.0
#include "home_cards.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DASH	" \xe2\x80\x94 "	/* " — " */
#define NBSP	"\xc2\xa0"

#define SHED_WORDS	"switched off to stay within your allocation"

static const char *switch_words(const char *sw)
{
	if (!strcmp(sw, "external"))
		return "smart plug";
	if (!strcmp(sw, "gpio"))
		return "wired relay";
	return sw[0] ? sw : "switch";
}

static bool load_unreachable(const struct mw_load *l)
{
	return !strcmp(l->state, "unreachable") || (!l->reachable && !strcmp(l->sw, "external"));
}

static void watts(struct hbuf *b, int32_t w)
{
	hb_milli(b, (int64_t)w * 1000, 0, NULL);
	hb_raw(b, NBSP "W");
}

void mw_load_line(struct hbuf *b, const struct mw_load *l)
{
	hb_raw(b, l->name);
	hb_raw(b, DASH);
	hb_raw(b, switch_words(l->sw));
	if (load_unreachable(l)) {
		/* it cannot be switched now: say what the meter wants of it */
		hb_raw(b, " not answering");
		if (l->shed || !l->wanted_on)
			hb_raw(b, ": it should be off to stay within your allocation");
		return;
	}
	hb_raw(b, DASH);
	if (!strcmp(l->state, "on")) {
		hb_raw(b, "on");
		if (l->shed)
			hb_raw(b, ", being " SHED_WORDS);
		else if (!l->wanted_on)
			hb_raw(b, ", the meter has asked it to switch off");
		if (l->measured_w >= 0) {
			hb_raw(b, ", ");
			watts(b, l->measured_w);
		}
	} else if (!strcmp(l->state, "off")) {
		if (l->shed)
			hb_raw(b, SHED_WORDS);
		else if (!l->wanted_on)
			hb_raw(b, "off, kept off by the meter");
		else
			hb_raw(b, "off");
	} else if (!strcmp(l->state, "unknown") || !l->state[0]) {
		hb_raw(b, "state not known yet");
	} else {
		hb_raw(b, l->state);	/* a newer meterd's word: as given */
	}
}

bool mw_home_alarm(const struct mw_home *h)
{
	return h->alarm || !strcmp(h->state, "alarm");
}

static bool is_temperature(const struct mw_home *h)
{
	return !strcmp(h->kind, "temperature");
}

/* Temperatures to 0.1; other quantities: 3 significant digits or whole units. */
static int decimals_of(const struct mw_home *h)
{
	int64_t a = llabs(h->value_milli);

	if (is_temperature(h))
		return 1;
	if (a >= 100000)
		return 0;
	return a >= 10000 ? 1 : 2;
}

static const char *unit_words(const struct mw_home *h)
{
	if (is_temperature(h) && (!strcmp(h->unit, "C") || !strcmp(h->unit, "degC") || !strcmp(h->unit, "celsius")))
		return "\xc2\xb0" "C";	/* °C */
	return h->unit;
}

void mw_home_value(struct hbuf *b, const struct mw_home *h)
{
	const char *u = unit_words(h);

	hb_milli(b, h->value_milli, decimals_of(h), NULL);
	if (u[0]) {
		hb_raw(b, NBSP);
		hb_raw(b, u);
	}
}

void mw_home_line(struct hbuf *b, const struct mw_home *h)
{
	bool gas = !strcmp(h->kind, "gas");

	hb_raw(b, h->name);
	hb_raw(b, DASH);
	if (!strcmp(h->state, "fault")) {
		hb_raw(b, gas ? "gas sensor" : is_temperature(h) ? "temperature sensor" : "sensor");
		hb_raw(b, " fault: no reading, have the sensor checked");
		return;
	}
	if (gas)
		hb_raw(b, "gas level ");
	else if (is_temperature(h))
		hb_raw(b, "temperature ");
	mw_home_value(b, h);
	hb_raw(b, DASH);
	if (mw_home_alarm(h))
		hb_raw(b, gas ? "GAS ALARM" : "alarm: outside its limits");
	else if (!strcmp(h->state, "warming-up"))
		hb_raw(b, "warming up: no alarms until the readings settle");
	else if (!strcmp(h->state, "ok"))
		hb_raw(b, "normal");
	else
		hb_raw(b, h->state[0] ? h->state : "state not known yet");
}

/*
 * Load i as the card shows it: from Loads, or for a meterd before Loads
 * from LoadRelays (a{sb}: the sheddable GPIO relays, open = shed).
 */
static unsigned nloads(const struct mw_state *st)
{
	return st->nxloads ? st->nxloads : st->loads.n < MW_MAX_LOADS ? st->loads.n : MW_MAX_LOADS;
}

static void load_at(const struct mw_state *st, unsigned i, struct mw_load *l)
{
	bool closed;

	if (st->nxloads) {
		*l = st->xloads[i];
		return;
	}
	closed = st->loads.e[i].v;
	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", st->loads.e[i].name);
	snprintf(l->sw, sizeof(l->sw), "gpio");
	snprintf(l->state, sizeof(l->state), closed ? "on" : "off");
	l->wanted_on = closed;
	l->shed = !closed;
	l->reachable = true;
	l->measured_w = -1;
}

void mw_gas_banner(struct hbuf *b, const struct mw_state *st)
{
	unsigned n = 0;

	for (unsigned i = 0; i < st->nhome; i++) {
		const struct mw_home *h = &st->home[i];

		if (strcmp(h->kind, "gas") || !mw_home_alarm(h))
			continue;
		hb_raw(b, n++ ? ", " : "Gas alarm: ");
		hb_raw(b, h->name);
		hb_raw(b, " (");
		mw_home_value(b, h);
		hb_raw(b, ")");
	}
	if (n)
		hb_raw(b, ". Do not switch lights or appliances on or off, do not use flames or a phone inside. "
			  "Open doors and windows, close the gas valve at the meter if you can do it safely, "
			  "leave the house and call the gas emergency number from outside.");
}

void mw_loads_summary(struct hbuf *b, const struct mw_state *st)
{
	unsigned shed = 0, silent = 0, n = nloads(st);

	if (!n) {
		hb_raw(b, "No loads are switched by this meter.");
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		struct mw_load l;

		load_at(st, i, &l);
		if (load_unreachable(&l))
			silent++;
		else if (l.shed)
			shed++;
	}
	hb_printf(b, "%u load%s", n, n == 1 ? "" : "s");
	if (!shed && !silent)
		hb_raw(b, n == 1 ? ", not switched off by the meter." : ", none switched off by the meter.");
	else {
		if (shed)
			hb_printf(b, ", %u " SHED_WORDS, shed);
		if (silent)
			hb_printf(b, ", %u not answering", silent);
		hb_raw(b, ".");
	}
}

void mw_home_summary(struct hbuf *b, const struct mw_state *st)
{
	unsigned alarms = 0, faults = 0;

	if (!st->nhome) {
		hb_raw(b, "No home sensors are configured.");
		return;
	}
	for (unsigned i = 0; i < st->nhome; i++) {
		if (mw_home_alarm(&st->home[i]))
			alarms++;
		else if (!strcmp(st->home[i].state, "fault"))
			faults++;
	}
	hb_printf(b, "%u sensor%s", st->nhome, st->nhome == 1 ? "" : "s");
	if (!alarms && !faults)
		hb_raw(b, ", no alarm.");
	else {
		if (alarms)
			hb_printf(b, ", %u in alarm", alarms);
		if (faults)
			hb_printf(b, ", %u not working", faults);
		hb_raw(b, ".");
	}
}

/* "load_3" -> 3 (below max), else -1 */
static int slot(const char *key, const char *prefix, unsigned max)
{
	size_t n = strlen(prefix);
	char *end;
	unsigned long i;

	if (strncmp(key, prefix, n) || key[n] < '0' || key[n] > '9')
		return -1;
	i = strtoul(key + n, &end, 10);
	if (*end || i >= max || (key[n] == '0' && key[n + 1]))
		return -1;
	return (int)i;
}

bool mw_home_text(struct hbuf *b, const char *key, const struct mw_state *st)
{
	int i;

	if (!strcmp(key, "loads_summary")) {
		mw_loads_summary(b, st);
	} else if (!strcmp(key, "home_summary")) {
		mw_home_summary(b, st);
	} else if (!strcmp(key, "gas_alarm")) {
		mw_gas_banner(b, st);
	} else if ((i = slot(key, "load_", MW_MAX_LOADS)) >= 0) {
		if ((unsigned)i < nloads(st)) {
			struct mw_load l;

			load_at(st, (unsigned)i, &l);
			mw_load_line(b, &l);
		}
	} else if ((i = slot(key, "home_", MW_MAX_HOME)) >= 0) {
		if ((unsigned)i < st->nhome)
			mw_home_line(b, &st->home[i]);
	} else {
		return false;
	}
	return true;
}

const char *mw_home_key(unsigned i, char *buf, unsigned len)
{
	if (i == 0)
		snprintf(buf, len, "loads_summary");
	else if (i <= MW_MAX_LOADS)
		snprintf(buf, len, "load_%u", i - 1);
	else if (i == MW_MAX_LOADS + 1)
		snprintf(buf, len, "home_summary");
	else if (i <= MW_MAX_LOADS + 1 + MW_MAX_HOME)
		snprintf(buf, len, "home_%u", i - MW_MAX_LOADS - 2);
	else if (i == MW_MAX_LOADS + MW_MAX_HOME + 2)
		snprintf(buf, len, "gas_alarm");
	else
		return NULL;
	return buf;
}

/* <TAG data-live="KEY">text</TAG>, the text escaped. */
static void live_item(struct hbuf *b, const char *tag, const char *cls, const char *key, const struct mw_state *st)
{
	struct hbuf t;

	hb_init(&t);
	mw_home_text(&t, key, st);
	hb_rawn(&t, "", 1);
	hb_printf(b, "<%s class=\"%s\" data-live=\"%s\">", tag, cls, key);
	hb_text(b, t.oom ? "" : t.p);
	hb_printf(b, "</%s>", tag);
	hb_free(&t);
}

/* Every slot is on the page, empty ones hidden (gm.css): a load or sensor that appears later shows live. */
static void items(struct hbuf *b, const char *prefix, unsigned max, const struct mw_state *st)
{
	hb_raw(b, "<ul class=\"gm-items\">");
	for (unsigned i = 0; i < max; i++) {
		char key[24];

		snprintf(key, sizeof(key), "%s%u", prefix, i);
		live_item(b, "li", "gm-item", key, st);
	}
	hb_raw(b, "</ul>");
}

void mw_section_loads(struct hbuf *b, const struct mw_state *st)
{
	hb_raw(b, "<section aria-labelledby=\"h-loads\" class=\"gm-card\" id=\"loads\"><h2 id=\"h-loads\">Loads</h2>");
	live_item(b, "p", "gm-note", "loads_summary", st);
	items(b, "load_", MW_MAX_LOADS, st);
	hb_raw(b, "<p class=\"gm-note\">Appliances the meter may switch off when the town cannot supply all the "
		  "power asked for, lowest priority first; it switches them on again when there is room.</p></section>");
}

void mw_section_home(struct hbuf *b, const struct mw_state *st)
{
	hb_raw(b, "<section aria-labelledby=\"h-home\" class=\"gm-card\" id=\"home-sensors\"><h2 id=\"h-home\">"
		  "Home sensors</h2>");
	live_item(b, "p", "gm-note", "home_summary", st);
	items(b, "home_", MW_MAX_HOME, st);
	hb_raw(b, "<p class=\"gm-note\">Read by the meter; the readings stay in your home. A gas alarm is also sent to "
		  "your utility as a notice when the meter is set up to do so.</p>"
		  "</section>");
}

void mw_banner_gas(struct hbuf *b, const struct mw_state *st)
{
	struct hbuf t;

	hb_init(&t);
	mw_gas_banner(&t, st);
	hb_rawn(&t, "", 1);
	hb_raw(b, "<p class=\"gm-alert gm-bad\" role=\"alert\" id=\"gas-alarm\" data-live=\"gas_alarm\">");
	hb_text(b, t.oom ? "" : t.p);
	hb_raw(b, "</p>");
	hb_free(&t);
}
