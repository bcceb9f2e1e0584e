// SPDX-License-Identifier: GPL-2.0
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ini.h"
#include "parse.h"

enum ktype { K_U32, K_STR, K_BOOL, K_MILLI, K_CHOICE, K_OPTLINE };

struct keydef {
	const char *section, *key;
	enum ktype type;
	size_t off, size;
	uint64_t min, max;
	const char *choices;	/* K_CHOICE: "a|b|c" */
	const char *unit;
};

#define OFF(f) offsetof(struct meter_config, f), sizeof(((struct meter_config *)0)->f)

static const struct keydef keys[] = {
	{ "meter", "timezone", K_STR, OFF(timezone), 0, 0, NULL, NULL },
	{ "meter", "interval", K_U32, OFF(interval_s), 60, 3600, NULL, "seconds" },
	{ "meter", "profile_days", K_U32, OFF(profile_days), 35, 400, NULL, "days" },
	{ "meter", "billing_day", K_U32, OFF(billing_day), 1, 31, NULL, NULL },
	{ "meter", "sample_interval_ms", K_U32, OFF(sample_ms), 100, 10000, NULL, "ms" },
	{ "meter", "clock", K_CHOICE, OFF(clock), 0, 0, "town|system", NULL },
	{ "meter", "clock_max_step", K_U32, OFF(clock_max_step_s), 1, 86400, NULL, "seconds" },

	{ "sensors", "backend", K_CHOICE, OFF(sensor_backend), 0, 0, "iio|replay", NULL },
	{ "sensors", "mains_device", K_STR, OFF(mains_device), 0, 0, NULL, NULL },
	{ "sensors", "renewable_device", K_STR, OFF(renewable_device), 0, 0, NULL, NULL },
	{ "sensors", "replay_file", K_STR, OFF(replay_file), 0, 0, NULL, NULL },

	{ "protection", "over_voltage", K_MILLI, OFF(over_voltage_mv), 1000, 1000000, NULL, "V" },
	{ "protection", "under_voltage", K_MILLI, OFF(under_voltage_mv), 1000, 1000000, NULL, "V" },
	{ "protection", "over_current", K_MILLI, OFF(over_current_ma), 100, 1000000, NULL, "A" },
	{ "protection", "reclose_delay", K_U32, OFF(reclose_delay_s), 1, 86400, NULL, "seconds" },
	{ "protection", "lockout_trips", K_U32, OFF(lockout_trips), 1, 16, NULL, NULL },
	{ "protection", "lockout_window", K_U32, OFF(lockout_window_s), 1, 7 * 86400, NULL, "seconds" },

	{ "relays", "backend", K_CHOICE, OFF(relay_backend), 0, 0, "gpiod|fake", NULL },
	{ "relays", "chip", K_STR, OFF(gpiochip), 0, 0, NULL, NULL },
	{ "relays", "main_line", K_U32, OFF(main_line), 0, 1023, NULL, NULL },
	{ "relays", "main_active_low", K_BOOL, OFF(main_active_low), 0, 0, NULL, NULL },
	{ "relays", "button_line", K_OPTLINE, OFF(button_line), 0, 1023, NULL, NULL },
	{ "relays", "button_active_low", K_BOOL, OFF(button_active_low), 0, 0, NULL, NULL },

	{ "allocation", "grid_allocation", K_U32, OFF(grid_allocation_w), 0, 1000000, NULL, "W" },
	{ "allocation", "restore_margin", K_U32, OFF(restore_margin_w), 0, 1000000, NULL, "W" },
	{ "allocation", "restore_delay", K_U32, OFF(restore_delay_s), 0, 86400, NULL, "seconds" },
	{ "allocation", "settle", K_U32, OFF(settle_s), 0, 600, NULL, "seconds" },

	{ "store", "state_dir", K_STR, OFF(state_dir), 0, 0, NULL, NULL },
	{ "store", "runtime_dir", K_STR, OFF(runtime_dir), 0, 0, NULL, NULL },
	{ "store", "persist_interval", K_U32, OFF(persist_interval_s), 5, 3600, NULL, "seconds" },
	{ "store", "persist_energy", K_U32, OFF(persist_energy_wh), 1, 100000, NULL, "Wh" },
	{ "store", "fsync_interval", K_U32, OFF(fsync_interval_s), 0, 86400, NULL, "seconds" },

	{ "power", "fail_chip", K_STR, OFF(powerfail_chip), 0, 0, NULL, NULL },
	{ "power", "fail_line", K_OPTLINE, OFF(powerfail_line), 0, 1023, NULL, NULL },
	{ "power", "fail_active_low", K_BOOL, OFF(powerfail_active_low), 0, 0, NULL, NULL },

	{ "dbus", "property_interval_ms", K_U32, OFF(property_interval_ms), 100, 60000, NULL, "ms" },
	{ "dbus", "technician_group", K_STR, OFF(technician_group), 0, 0, NULL, NULL },
	{ "dbus", "appliance_group", K_STR, OFF(appliance_group), 0, 0, NULL, NULL },
	{ "dbus", "bridge_group", K_STR, OFF(bridge_group), 0, 0, NULL, NULL },
	{ "dbus", "authorization", K_CHOICE, OFF(authorization), 0, 0, "auto|polkit|group", NULL },

	{ "uplink", "credentials", K_STR, OFF(credentials), 0, 0, NULL, NULL },
	{ "uplink", "detail", K_CHOICE, OFF(detail), 0, 0, "billing|interval", NULL },
	{ "uplink", "report_interval", K_U32, OFF(report_interval_s), 1, 3600, NULL, "seconds" },
	{ "uplink", "snapshot_interval", K_U32, OFF(snapshot_interval_s), 0, 86400, NULL, "seconds" },
	{ "uplink", "outbox_dir", K_STR, OFF(outbox_dir), 0, 0, NULL, NULL },
	{ "uplink", "outbox_max", K_U32, OFF(outbox_max_mib), 1, 65536, NULL, "MiB" },
	{ "uplink", "link_node", K_U32, OFF(link_node), 0, 7, NULL, NULL },
	{ "uplink", "ack_every", K_U32, OFF(ack_every), 1, 64, NULL, "frames" },
	{ "uplink", "ack_timeout_ms", K_U32, OFF(ack_timeout_ms), 500, 600000, NULL, "ms" },
	{ "uplink", "broken_after", K_U32, OFF(broken_after), 1, 100, NULL, "missed acknowledgements" },

	{ "modem", "device", K_STR, OFF(modem_device), 0, 0, NULL, NULL },
	{ "modem", "baud", K_U32, OFF(modem_baud), 1200, 460800, NULL, "baud" },
	{ "modem", "pwrkey_chip", K_STR, OFF(pwrkey_chip), 0, 0, NULL, NULL },
	{ "modem", "pwrkey_line", K_OPTLINE, OFF(pwrkey_line), 0, 1023, NULL, NULL },
	{ "modem", "pwrkey_active_low", K_BOOL, OFF(pwrkey_active_low), 0, 0, NULL, NULL },

	{ "commands", "operator_keys", K_STR, OFF(operator_keys), 0, 0, NULL, NULL },
	{ "commands", "town", K_U32, OFF(town_id), 1, 65534, NULL, NULL },
	{ "commands", "two_above", K_U32, OFF(two_above), 1, 65535, NULL, "meters" },

	{ "tamper", "reverse_export", K_U32, OFF(reverse_export_w), 0, 1000000, NULL, "W" },
	{ "tamper", "reverse_time", K_U32, OFF(reverse_time_s), 10, 86400, NULL, "seconds" },
	{ "tamper", "generation", K_BOOL, OFF(generation), 0, 0, NULL, NULL },
	{ "tamper", "idle_current", K_MILLI, OFF(idle_current_ma), 1, 10000, NULL, "A" },
	{ "tamper", "idle_time", K_U32, OFF(idle_time_s), 0, 7 * 86400, NULL, "seconds" },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct parser {
	struct meter_config *c;
	struct ini ini;
};

#define perr(p, line, section, key, ...) ini_error(&(p)->ini, line, section, key, __VA_ARGS__)

static bool find_seen(const struct parser *p, const char *section, const char *key)
{
	return ini_has_key(&p->ini, section, key);
}

static unsigned section_line(const struct parser *p, const char *section)
{
	return ini_section_line(&p->ini, section);
}

void config_defaults(struct meter_config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->timezone, "UTC");
	c->interval_s = 900;
	c->profile_days = 35;
	c->billing_day = 1;
	c->sample_ms = 1000;
	c->clock_max_step_s = 300;
	strcpy(c->sensor_backend, "iio");
	c->over_voltage_mv = 253000;
	c->under_voltage_mv = 207000;
	c->over_current_ma = 100000;
	c->reclose_delay_s = 180;
	c->lockout_trips = 3;
	c->lockout_window_s = 3600;
	strcpy(c->relay_backend, "gpiod");
	strcpy(c->gpiochip, "gpiochip0");
	c->main_line = 17;
	c->button_line = -1;
	c->button_active_low = true;
	c->grid_allocation_w = 10000;
	c->restore_margin_w = 200;
	c->restore_delay_s = 60;
	c->settle_s = 2;
	tariff_spec_init(&c->tariff_spec);
	strcpy(c->state_dir, "/var/lib/gridmeter");
	strcpy(c->runtime_dir, "/run/gridmeter");
	c->persist_interval_s = 60;
	c->persist_energy_wh = 100;
	c->powerfail_line = -1;
	c->property_interval_ms = 1000;
	strcpy(c->technician_group, "gridmeter-technicians");
	strcpy(c->appliance_group, "gridmeter-appliances");
	strcpy(c->bridge_group, "gridmeter-bridge");
	strcpy(c->authorization, "auto");
	strcpy(c->credentials, "/etc/gridmeter/keys/uplink.key");
	strcpy(c->detail, "billing");
	c->report_interval_s = 900;	/* with detail = interval */
	c->snapshot_interval_s = 3600;
	c->outbox_max_mib = 64;
	c->ack_every = 8;
	c->ack_timeout_ms = 30000;
	c->broken_after = 2;
	c->modem_baud = 115200;
	c->pwrkey_line = -1;
	sim900_config_defaults(&c->sim900);
	c->two_above = 10;		/* GMC_TWO_ABOVE */
	c->reverse_export_w = 100;
	c->reverse_time_s = 60;
	c->idle_current_ma = 50;
	c->idle_time_s = 6 * 3600;
}

bool config_baud_ok(uint32_t baud)
{
	static const uint32_t ok[] = { 9600, 19200, 38400, 57600, 115200, 230400, 460800 };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (baud == ok[i])
			return true;
	return false;
}

static int set_value(struct parser *p, const struct keydef *k, const char *val, unsigned line)
{
	char *field = (char *)p->c + k->off;
	uint64_t u;
	int64_t m;

	switch (k->type) {
	case K_U32:
		if (parse_u64(val, k->min, k->max, &u))
			return perr(p, line, k->section, k->key,
				    "'%s' is not a whole number from %llu to %llu%s%s", val,
				    (unsigned long long)k->min, (unsigned long long)k->max,
				    k->unit ? " " : "", k->unit ? k->unit : "");
		*(uint32_t *)field = (uint32_t)u;
		return 0;
	case K_MILLI:
		if (parse_milli(val, &m) || (uint64_t)m < k->min || (uint64_t)m > k->max)
			return perr(p, line, k->section, k->key,
				    "'%s' is not a decimal from %llu.%03llu to %llu.%03llu %s", val,
				    (unsigned long long)k->min / 1000, (unsigned long long)k->min % 1000,
				    (unsigned long long)k->max / 1000, (unsigned long long)k->max % 1000,
				    k->unit);
		*(uint32_t *)field = (uint32_t)m;
		return 0;
	case K_BOOL:
		if (parse_bool(val, (bool *)field))
			return perr(p, line, k->section, k->key, "'%s' is not true or false", val);
		return 0;
	case K_OPTLINE:
		if (!strcmp(val, "none")) {
			*(int32_t *)field = -1;
			return 0;
		}
		if (parse_u64(val, k->min, k->max, &u))
			return perr(p, line, k->section, k->key,
				    "'%s' is not a GPIO line offset (0 to %llu) or 'none'", val,
				    (unsigned long long)k->max);
		*(int32_t *)field = (int32_t)u;
		return 0;
	case K_CHOICE: {
		size_t n = strlen(val);
		const char *c = k->choices;

		while (n && c) {
			if (!strncmp(c, val, n) && (c[n] == '|' || !c[n]))
				return strlcpy_chk(field, val, k->size) ? -EINVAL : 0;
			c = strchr(c, '|');
			if (c)
				c++;
		}
		return perr(p, line, k->section, k->key, "'%s' is not one of %s", val, k->choices);
	}
	case K_STR:
		if (strlcpy_chk(field, val, k->size))
			return perr(p, line, k->section, k->key, "value longer than %zu characters",
				    k->size - 1);
		return 0;
	}
	return -EINVAL;
}

static struct load_cfg *find_load(struct meter_config *c, const char *name)
{
	for (size_t i = 0; i < c->nloads; i++)
		if (!strcmp(c->load[i].name, name))
			return &c->load[i];
	return NULL;
}

static int set_load_key(struct parser *p, const char *section, const char *key,
			const char *val, unsigned line)
{
	struct load_cfg *l = find_load(p->c, section + 5);
	uint64_t u;

	if (!strcmp(key, "line")) {
		if (parse_u64(val, 0, 1023, &u))
			return perr(p, line, section, key, "'%s' is not a GPIO line offset (0 to 1023)", val);
		l->line = (uint32_t)u;
	} else if (!strcmp(key, "load")) {
		if (parse_u64(val, 1, 1000000, &u))
			return perr(p, line, section, key, "'%s' is not a whole number from 1 to 1000000 W", val);
		l->load_w = (uint32_t)u;
	} else if (!strcmp(key, "priority")) {
		if (parse_u64(val, 0, 1000, &u))
			return perr(p, line, section, key, "'%s' is not a whole number from 0 to 1000", val);
		l->priority = (uint32_t)u;
	} else if (!strcmp(key, "active_low")) {
		if (parse_bool(val, &l->active_low))
			return perr(p, line, section, key, "'%s' is not true or false", val);
	} else if (!strcmp(key, "switch")) {
		if (strcmp(val, "gpio") && strcmp(val, "external"))
			return perr(p, line, section, key, "'%s' is not one of gpio|external", val);
		l->external = !strcmp(val, "external");
	} else if (!strcmp(key, "stale_after")) {
		if (parse_u64(val, LOAD_STALE_MIN_S, LOAD_STALE_MAX_S, &u))
			return perr(p, line, section, key, "'%s' is not a whole number from %d to %d seconds",
				    val, LOAD_STALE_MIN_S, LOAD_STALE_MAX_S);
		l->stale_after_s = (uint32_t)u;
	} else {
		return perr(p, line, section, key,
			    "unknown key (switch, line, load, priority, active_low, stale_after)");
	}
	return 0;
}

static int set_neighbour_key(struct parser *p, const char *section, const char *key,
			     const char *val, unsigned line)
{
	struct neighbour_cfg *n = &p->c->neighbour[p->c->nneighbours - 1];

	if (!strcmp(key, "device")) {
		if (strlcpy_chk(n->device, val, sizeof(n->device)) || val[0] != '/')
			return perr(p, line, section, key, "'%s' is not an absolute device path", val);
	} else if (!strcmp(key, "baud")) {
		if (parse_u32(val, 1200, 460800, &n->baud) || !config_baud_ok(n->baud))
			return perr(p, line, section, key,
				    "'%s' is not one of 9600, 19200, 38400, 57600, 115200, 230400, 460800", val);
	} else {
		return perr(p, line, section, key, "unknown key (device, baud)");
	}
	return 0;
}

static int set_key(struct parser *p, const char *section, const char *key, const char *val,
		   unsigned line)
{
	if (!strcmp(section, "tariff")) {
		int r = tariff_spec_set(&p->c->tariff_spec, key, val);

		if (r == -ENOENT)
			return perr(p, line, section, key, "unknown key");
		if (r)
			return perr(p, line, section, key, "value too long");
		return 0;
	}
	if (!strncmp(section, "load.", 5))
		return set_load_key(p, section, key, val, line);
	if (!strncmp(section, "neighbour.", 10))
		return set_neighbour_key(p, section, key, val, line);
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].section, section) && !strcmp(keys[i].key, key))
			return set_value(p, &keys[i], val, line);
	if (!strcmp(section, "modem")) {
		char why[160];

		if (sim900_config_set(&p->c->sim900, key, val, why, sizeof(why)))
			return perr(p, line, section, key, "%s", why);
		return 0;
	}
	return perr(p, line, section, key, "unknown key");
}

static int start_section(struct parser *p, char *name, unsigned line)
{
	static const char *const known[] = {
		"meter", "sensors", "protection", "relays", "allocation", "tariff", "store", "dbus",
		"uplink", "modem", "power", "commands", "tamper",
	};
	bool ok = false;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		ok |= !strcmp(known[i], name);
	if (!strncmp(name, "load.", 5)) {
		struct load_cfg *l;
		const char *n = name + 5;

		if (!*n || strlen(n) >= ALLOC_NAME_LEN || strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(n))
			return perr(p, line, NULL, NULL,
				    "section [%s]: load name must be 1-%d characters of a-z, 0-9, _",
				    name, ALLOC_NAME_LEN - 1);
		if (p->c->nloads == ALLOC_MAX_LOADS)
			return perr(p, line, NULL, NULL, "section [%s]: more than %d loads", name,
				    ALLOC_MAX_LOADS);
		l = &p->c->load[p->c->nloads++];
		memset(l, 0, sizeof(*l));
		strcpy(l->name, n);
		l->priority = UINT32_MAX;
		l->load_w = 0;
		l->stale_after_s = LOAD_STALE_DEFAULT_S;
		l->cfg_line = line;
		return 0;
	}
	if (!strncmp(name, "neighbour.", 10)) {
		struct neighbour_cfg *nb;
		const char *n = name + 10;

		if (!*n || strlen(n) >= sizeof(nb->name) ||
		    strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(n))
			return perr(p, line, NULL, NULL,
				    "section [%s]: neighbour name must be 1-%zu characters of a-z, 0-9, _",
				    name, sizeof(nb->name) - 1);
		if (p->c->nneighbours == CFG_MAX_NEIGHBOURS)
			return perr(p, line, NULL, NULL, "section [%s]: more than %d neighbours", name,
				    CFG_MAX_NEIGHBOURS);
		nb = &p->c->neighbour[p->c->nneighbours++];
		memset(nb, 0, sizeof(*nb));
		strcpy(nb->name, n);
		nb->baud = 115200;
		nb->cfg_line = line;
		return 0;
	}
	if (!ok)
		return perr(p, line, NULL, NULL, "unknown section [%s]", name);
	if (!strcmp(name, "uplink"))
		p->c->uplink = true;
	if (!strcmp(name, "modem"))
		p->c->modem = true;
	return 0;
}

static unsigned key_line(const struct parser *p, const char *section, const char *key)
{
	return ini_key_line(&p->ini, section, key);
}

static bool tz_known(const char *tz)
{
	const char *dir = getenv("TZDIR");
	char path[CFG_PATH + 64];

	if (strstr(tz, "..") || tz[0] == '/' || !tz[0])
		return false;
	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "/usr/share/zoneinfo", tz);
	return access(path, R_OK) == 0;
}

static int cmp_load(const void *a, const void *b)
{
	const struct load_cfg *x = a, *y = b;

	return (x->priority > y->priority) - (x->priority < y->priority);
}

/* [commands]: signed commands come through the town server, for this meter of this town. */
static int validate_commands(struct parser *p)
{
	struct meter_config *c = p->c;

	if (!c->operator_keys[0]) {
		if (find_seen(p, "commands", "town") || find_seen(p, "commands", "two_above"))
			return perr(p, section_line(p, "commands"), "commands", "operator_keys",
				    "missing required key");
		return 0;
	}
	c->operator_keys_line = key_line(p, "commands", "operator_keys");
	if (c->operator_keys[0] != '/')
		return perr(p, c->operator_keys_line, "commands", "operator_keys",
			    "'%s' is not an absolute path", c->operator_keys);
	if (!c->town_id)
		return perr(p, section_line(p, "commands"), "commands", "town",
			    "missing required key (this meter's town, the town's [upstream] town_id)");
	return 0;
}

static int validate_uplink(struct parser *p)
{
	struct meter_config *c = p->c;
	char why[160];

	if (!c->uplink) {
		if (c->modem || c->nneighbours)
			return perr(p, c->modem ? section_line(p, "modem") : c->neighbour[0].cfg_line,
				    NULL, NULL, "[modem] and [neighbour.*] need an [uplink] section");
		if (section_line(p, "commands"))
			return perr(p, section_line(p, "commands"), NULL, NULL,
				    "[commands] needs an [uplink] section (signed commands come "
				    "through the town server)");
		return 0;
	}
	if (c->credentials[0] != '/')
		return perr(p, key_line(p, "uplink", "credentials"), "uplink", "credentials",
			    "'%s' is not an absolute path", c->credentials);
	if (!config_detail_interval(c) && find_seen(p, "uplink", "report_interval"))
		/* moot: an older configuration's; meterd says so in the journal */
		c->report_interval_line = key_line(p, "uplink", "report_interval");
	if (c->snapshot_interval_s && c->snapshot_interval_s < config_report_s(c))
		return perr(p, key_line(p, "uplink", "snapshot_interval"), "uplink",
			    "snapshot_interval", config_detail_interval(c) ?
			    "%u s is shorter than report_interval (%u s)" :
			    "%u s is shorter than the readings (%u s: detail = billing)",
			    c->snapshot_interval_s, config_report_s(c));
	if (!c->modem && !c->nneighbours)
		return perr(p, section_line(p, "uplink"), NULL, NULL,
			    "[uplink] needs a [modem] or at least one [neighbour.NAME] section");
	for (size_t i = 0; i < c->nneighbours; i++) {
		const struct neighbour_cfg *n = &c->neighbour[i];
		char sec[32];

		snprintf(sec, sizeof(sec), "neighbour.%s", n->name);
		if (!n->device[0])
			return perr(p, n->cfg_line, sec, "device", "missing required key");
		if (c->modem && !strcmp(n->device, c->modem_device))
			return perr(p, key_line(p, sec, "device"), sec, "device",
				    "%s is the modem's serial line", n->device);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(c->neighbour[j].device, n->device))
				return perr(p, key_line(p, sec, "device"), sec, "device",
					    "%s already used by neighbour %s", n->device,
					    c->neighbour[j].name);
	}
	if (validate_commands(p))
		return -EINVAL;
	if (!c->modem)
		return 0;
	if (!c->modem_device[0])
		return perr(p, section_line(p, "modem"), "modem", "device", "missing required key");
	if (c->modem_device[0] != '/')
		return perr(p, key_line(p, "modem", "device"), "modem", "device",
			    "'%s' is not an absolute device path", c->modem_device);
	if (!config_baud_ok(c->modem_baud))
		return perr(p, key_line(p, "modem", "baud"), "modem", "baud",
			    "%u is not one of 9600, 19200, 38400, 57600, 115200, 230400, 460800",
			    c->modem_baud);
	if ((c->pwrkey_line >= 0) != (c->pwrkey_chip[0] != 0))
		return perr(p, key_line(p, "modem", c->pwrkey_line >= 0 ? "pwrkey_line" : "pwrkey_chip"),
			    "modem", c->pwrkey_line >= 0 ? "pwrkey_chip" : "pwrkey_line",
			    "pwrkey_chip and pwrkey_line go together");
	if (sim900_config_check(&c->sim900, why, sizeof(why))) {
		const char *k = c->sim900.apn[0] ? "server" : "apn";

		return perr(p, section_line(p, "modem"), "modem", k, "missing required key");
	}
	return 0;
}

/* The GPIO line of the chip the relays use that line is taken by, or NULL. */
static const char *relay_line_user(const struct meter_config *c, uint32_t line)
{
	if (line == c->main_line)
		return "main_line";
	if (c->button_line >= 0 && line == (uint32_t)c->button_line)
		return "button_line";
	for (size_t i = 0; i < c->nloads; i++)
		if (!c->load[i].external && c->load[i].line == line)
			return c->load[i].name;
	return NULL;
}

static int validate_time_and_power(struct parser *p)
{
	struct meter_config *c = p->c;
	const char *user;

	/* the town's time with a town server, the system's without */
	if (!c->clock[0])
		strcpy(c->clock, c->uplink ? "town" : "system");
	else if (config_clock_town(c) && !c->uplink)
		return perr(p, key_line(p, "meter", "clock"), "meter", "clock",
			    "'town' needs an [uplink] section (the town server's time)");
	if (find_seen(p, "store", "fsync_interval")) {
		/* deprecated: 0 (at interval boundaries) was the old default, now too rare */
		c->fsync_interval_line = key_line(p, "store", "fsync_interval");
		if (!find_seen(p, "store", "persist_interval") && c->fsync_interval_s)
			c->persist_interval_s = c->fsync_interval_s < 5 ? 5 :
						c->fsync_interval_s > 3600 ? 3600 : c->fsync_interval_s;
	}
	if (c->powerfail_line < 0) {
		if (find_seen(p, "power", "fail_chip") || find_seen(p, "power", "fail_active_low"))
			return perr(p, section_line(p, "power"), "power", "fail_line", "missing required key");
		return 0;
	}
	if (!c->powerfail_chip[0])
		snprintf(c->powerfail_chip, sizeof(c->powerfail_chip), "%s", c->gpiochip);
	if (!strcmp(c->relay_backend, "gpiod") && !strcmp(c->powerfail_chip, c->gpiochip) &&
	    (user = relay_line_user(c, (uint32_t)c->powerfail_line)))
		return perr(p, key_line(p, "power", "fail_line"), "power", "fail_line",
			    "GPIO line %d of %s already used by [relays] %s", c->powerfail_line,
			    c->gpiochip, user);
	return 0;
}

/*
 * [load.NAME]: switch = gpio (the default) needs a line of its own;
 * switch = external has none (and no active_low): something outside
 * meterd switches it and reports (ReportLoad). Priorities are one space.
 */
static int validate_load(struct parser *p, size_t i)
{
	struct meter_config *c = p->c;
	struct load_cfg *l = &c->load[i];
	char sec[48];

	snprintf(sec, sizeof(sec), "load.%s", l->name);
	if (l->priority == UINT32_MAX)
		return perr(p, l->cfg_line, sec, "priority", "missing required key");
	if (!l->load_w)
		return perr(p, l->cfg_line, sec, "load", "missing required key");
	for (size_t j = 0; j < i; j++)
		if (c->load[j].priority == l->priority)
			return perr(p, key_line(p, sec, "priority"), sec, "priority",
				    "priority %u already used by load %s", l->priority, c->load[j].name);
	if (l->external) {
		if (find_seen(p, sec, "line"))
			return perr(p, key_line(p, sec, "line"), sec, "line",
				    "not with switch = external (the load has no GPIO line)");
		if (find_seen(p, sec, "active_low"))
			return perr(p, key_line(p, sec, "active_low"), sec, "active_low",
				    "not with switch = external (the load has no GPIO line)");
		return 0;
	}
	if (find_seen(p, sec, "stale_after"))
		return perr(p, key_line(p, sec, "stale_after"), sec, "stale_after",
			    "only with switch = external (a GPIO relay does not report)");
	if (!find_seen(p, sec, "line"))
		return perr(p, l->cfg_line, sec, "line", "missing required key");
	if (l->line == c->main_line || (c->button_line >= 0 && l->line == (uint32_t)c->button_line))
		return perr(p, key_line(p, sec, "line"), sec, "line",
			    "GPIO line %u already used by the main relay or button", l->line);
	for (size_t j = 0; j < i; j++)
		if (!c->load[j].external && c->load[j].line == l->line)
			return perr(p, key_line(p, sec, "line"), sec, "line",
				    "GPIO line %u already used by load %s", l->line, c->load[j].name);
	return 0;
}

static int validate(struct parser *p)
{
	struct meter_config *c = p->c;
	const char *badkey = NULL;
	char msg[200];

	if (strcmp(c->timezone, "UTC") && !tz_known(c->timezone))
		return perr(p, key_line(p, "meter", "timezone"), "meter", "timezone",
			    "unknown time zone '%s' (not in the tz database)", c->timezone);
	if (3600 % c->interval_s && c->interval_s % 3600)
		return perr(p, key_line(p, "meter", "interval"), "meter", "interval",
			    "%u s does not divide an hour", c->interval_s);
	if ((uint64_t)c->profile_days * 86400 / c->interval_s > CFG_MAX_PROFILE)
		return perr(p, key_line(p, "meter", "profile_days"), "meter", "profile_days",
			    "%u days of %u s intervals is more than %u load-profile entries",
			    c->profile_days, c->interval_s, CFG_MAX_PROFILE);
	if (!strcmp(c->sensor_backend, "iio") && !c->mains_device[0])
		return perr(p, key_line(p, "sensors", "mains_device"), "sensors", "mains_device",
			    "required with backend = iio");
	if (c->under_voltage_mv >= c->over_voltage_mv)
		return perr(p, key_line(p, "protection", "under_voltage"), "protection",
			    "under_voltage", "must be below over_voltage");
	if (c->button_line >= 0 && (uint32_t)c->button_line == c->main_line)
		return perr(p, key_line(p, "relays", "button_line"), "relays", "button_line",
			    "same GPIO line as main_line");
	for (size_t i = 0; i < c->nloads; i++)
		if (validate_load(p, i))
			return -EINVAL;
	qsort(c->load, c->nloads, sizeof(c->load[0]), cmp_load);
	if (validate_uplink(p) || validate_time_and_power(p))
		return -EINVAL;
	if (tariff_compile(&c->tariff_spec, &c->tariff, &badkey, msg, sizeof(msg)))
		return perr(p, key_line(p, "tariff", badkey), "tariff", badkey, "%s", msg);
	return 0;
}

static int on_entry(struct ini *ini, const struct ini_entry *e, void *ctx)
{
	struct parser *p = ctx;
	char name[INI_NAME_MAX];

	(void)ini;
	if (!e->key) {
		snprintf(name, sizeof(name), "%s", e->section);
		return start_section(p, name, e->line);
	}
	return set_key(p, e->section, e->key, e->value, e->line);
}

/* The text given, or the file `name` when text is NULL. */
static int parse(struct meter_config *c, const char *name, const char *text, char *err,
		 size_t errlen)
{
	struct parser *p = calloc(1, sizeof(*p));
	int r;

	if (!p) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	p->c = c;
	ini_init(&p->ini, name, 0, err, errlen);
	config_defaults(c);
	strlcpy_chk(c->path, name, sizeof(c->path));
	r = text ? ini_parse_text(&p->ini, text, on_entry, p) :
		   ini_parse_file(&p->ini, name, 1u << 20, on_entry, p);
	if (!r)
		r = validate(p);
	ini_free(&p->ini);
	free(p);
	return r;
}

int config_parse(struct meter_config *c, const char *name, const char *text,
		 char *err, size_t errlen)
{
	return parse(c, name, text, err, errlen);
}

int config_load(struct meter_config *c, const char *path, char *err, size_t errlen)
{
	return parse(c, path, NULL, err, errlen);
}
