/* SPDX-License-Identifier: GPL-2.0 */
/*
 * meterd configuration: an INI-style file ("[section]", "key = value",
 * '#' or ';' comments). Every error names the file, the line and the key;
 * unknown sections and keys are errors, so typos never pass silently.
 * See agent/system/meterd.conf.example and Documentation/meterd.md.
 */
#ifndef GM_CONFIG_H
#define GM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "sim900.h"
#include "tariff.h"

#define CFG_STR		64
#define CFG_PATH	256
#define CFG_MAX_PROFILE	50400	/* 35 days of 1-minute intervals, 24 bytes each in memory */

struct load_cfg {
	char name[ALLOC_NAME_LEN];
	bool external;		/* switch = external: switched outside meterd (MQTT bridge), no line */
	uint32_t line;		/* GPIO line offset (switch = gpio) */
	bool active_low;
	uint32_t stale_after_s;	/* external: no report for this long -> unreachable */
	uint32_t load_w;
	uint32_t priority;	/* lower is shed first */
	unsigned cfg_line;	/* where the section starts, for messages */
};

#define CFG_MAX_NEIGHBOURS 4

struct neighbour_cfg {
	char name[16];
	char device[CFG_PATH];	/* serial line to the neighbour meter */
	uint32_t baud;
	unsigned cfg_line;
};

struct meter_config {
	char path[CFG_PATH];

	/* [meter] */
	char timezone[CFG_STR];
	uint32_t interval_s;
	uint32_t profile_days;
	uint32_t billing_day;
	uint32_t sample_ms;
	char clock[8];			/* town | system ("" until validated: town with [uplink]) */
	uint32_t clock_max_step_s;	/* larger town offsets need two agreeing samples */

	/* [sensors] */
	char sensor_backend[16];	/* iio | replay */
	char mains_device[CFG_STR];
	char renewable_device[CFG_STR];	/* empty: none */
	char replay_file[CFG_PATH];

	/* [protection] */
	uint32_t over_voltage_mv;
	uint32_t under_voltage_mv;
	uint32_t over_current_ma;
	uint32_t reclose_delay_s;
	uint32_t lockout_trips;
	uint32_t lockout_window_s;

	/* [relays] */
	char relay_backend[16];		/* gpiod | fake */
	char gpiochip[CFG_STR];
	uint32_t main_line;
	bool main_active_low;
	int32_t button_line;		/* -1: no push button */
	bool button_active_low;

	/* [load.NAME], sorted by priority */
	size_t nloads;
	struct load_cfg load[ALLOC_MAX_LOADS];

	/* [allocation] */
	uint32_t grid_allocation_w;
	uint32_t restore_margin_w;
	uint32_t restore_delay_s;
	uint32_t settle_s;

	/* [tariff] */
	struct tariff_spec tariff_spec;
	struct tariff tariff;

	/* [store] */
	char state_dir[CFG_PATH];
	char runtime_dir[CFG_PATH];
	uint32_t persist_interval_s;	/* a durable snapshot at least this often ... */
	uint32_t persist_energy_wh;	/* ... or once this much energy was metered */
	uint32_t fsync_interval_s;	/* deprecated alias of persist_interval */
	unsigned fsync_interval_line;	/* where it was set (0: not set), for the journal */

	/* [power]: the optional power-fail input (supercap / UPS HAT) */
	char powerfail_chip[CFG_STR];	/* "" : [relays] chip */
	int32_t powerfail_line;		/* -1: none */
	bool powerfail_active_low;

	/* [dbus] */
	uint32_t property_interval_ms;
	char technician_group[CFG_STR];
	char appliance_group[CFG_STR];	/* may only declare appliance demand */
	char bridge_group[CFG_STR];	/* may only report external loads (ReportLoad) */
	char authorization[16];		/* auto | polkit | group */

	/* [uplink]: no section, no town server (Documentation/meterd.md) */
	bool uplink;
	char credentials[CFG_PATH];	/* what townctl provision printed */
	char detail[16];		/* billing | interval: what readings leave the home */
	uint32_t report_interval_s;	/* readings to the town server, with detail = interval */
	unsigned report_interval_line;	/* set with detail = billing (not used), for the journal */
	uint32_t snapshot_interval_s;	/* register snapshots; 0: none */
	char outbox_dir[CFG_PATH];	/* empty: <state_dir>/outbox */
	uint32_t outbox_max_mib;
	uint32_t link_node;		/* gm_link node (0 on a gateway) */
	uint32_t ack_every;
	uint32_t ack_timeout_ms;
	uint32_t broken_after;

	/* [modem] (SIM900): none means neighbours only */
	bool modem;
	char modem_device[CFG_PATH];
	uint32_t modem_baud;
	char pwrkey_chip[CFG_STR];	/* empty: no PWRKEY line */
	int32_t pwrkey_line;
	bool pwrkey_active_low;
	struct sim900_config sim900;

	/* [neighbour.NAME] */
	size_t nneighbours;
	struct neighbour_cfg neighbour[CFG_MAX_NEIGHBOURS];

	/* [commands]: operator-signed commands (signed_commands.h); needs [uplink] */
	char operator_keys[CFG_PATH];	/* the operators' public keys; "": none (all refused) */
	unsigned operator_keys_line;	/* where it was set, for messages */
	uint32_t town_id;		/* this meter's town (the town's [upstream] town_id) */
	uint32_t two_above;		/* batches above this many meters need two operators */

	/* [tamper]: the meter's tamper alarms (Documentation/meterd.md, "Tamper alarms") */
	uint32_t reverse_export_w;	/* reversed-ct: export above this ... (0: off) */
	uint32_t reverse_time_s;	/* ... for this long, with no generation configured */
	bool generation;		/* export is expected (generation without a renewable CT) */
	uint32_t idle_current_ma;	/* ct-tamper: current below this ... */
	uint32_t idle_time_s;		/* ... for this long, supply on, relay closed (0: off) */
};

#define LOAD_STALE_DEFAULT_S	120
#define LOAD_STALE_MIN_S	10
#define LOAD_STALE_MAX_S	3600

/* [meter] clock = town: the time comes from the town server (else the system's clock). */
static inline bool config_clock_town(const struct meter_config *c)
{
	return c->clock[0] == 't';
}

/*
 * [uplink] detail = interval: readings every report_interval; billing (the
 * default): one reading per hour and tariff period (Documentation/
 * data-inventory.md).
 */
static inline bool config_detail_interval(const struct meter_config *c)
{
	return c->detail[0] == 'i';
}

/* The readings' grid (town_reports.h): report_interval with detail = interval, else an hour. */
static inline uint32_t config_report_s(const struct meter_config *c)
{
	return config_detail_interval(c) ? c->report_interval_s : 3600;
}

void config_defaults(struct meter_config *c);
/* Parse text as if read from `name`. 0, or -EINVAL with "name:line: ..." in err. */
int config_parse(struct meter_config *c, const char *name, const char *text,
		 char *err, size_t errlen);
/* Read and parse a file; errors as above (or "name: <strerror>"). */
int config_load(struct meter_config *c, const char *path, char *err, size_t errlen);
/* Serial speeds meterd accepts (9600 ... 460800). */
bool config_baud_ok(uint32_t baud);

#endif
