/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gridmeter-setup, the installer's on-site walk-through (Documentation/
 * onsite.md): hardware check, calibration against a known load, the
 * meter's key and enrolment line, self-test report. The steps share one
 * context; each step is its own file:
 *
 *   flow.c        options, the order of the steps, exit status (main.c calls it)
 *   prompt.c      the line-based dialogue
 *   hwcheck.c     CT device, ADC channels, relay and button lines
 *   modem.c       the SIM900 answers (AT, +CPIN, +CSQ, +CREG)
 *   calibrate.c   measuring, writing and keeping the calibration
 *   calib_math.c  its arithmetic
 *   enrol.c       the meter's key and the townctl line
 *   service.c     meterd stopped and started (systemctl), its D-Bus values
 *   report.c      the results and the report file
 */
#ifndef GM_SETUP_H
#define GM_SETUP_H

#include <stdbool.h>
#include <stdint.h>

#include "calib_math.h"
#include "config.h"
#include "ct_calib.h"
#include "gmproto.h"
#include "prompt.h"
#include "report.h"

struct setup_opts {
	const char *config;		/* -c, --config */
	const char *sysfs;		/* --sysfs-root (default /sys) */
	const char *calib_file;		/* --calibration-file (default CT_CALIB_PATH) */
	const char *report_path;	/* --report FILE ("" : not saved) */
	const char *report_dir;		/* default /var/lib/gridmeter */
	const char *adc_device;		/* --adc-device NAME (default: found) */
	unsigned adc_chan[2];		/* --adc-channels V,I (default 0,1) */
	bool yes;			/* --yes: defaults, no questions */
	bool force;			/* --force: replace an existing key */
	bool no_service;		/* --no-service: leave meterd and D-Bus alone */
	bool skip_calibration, skip_enrol, skip_modem;
	unsigned measure_s;		/* --measure-seconds (default 3) */
	unsigned modem_timeout_s;	/* --modem-timeout (registration wait, default 30) */
	/* reference readings given as options (-1: not given) */
	int64_t ref_v_uv, ref_i_ua, ref_p_uw;
	bool ref_resistive;
	const char *meter_id;		/* --meter-id */
	const char *town_key;		/* --town-key */
	const char *address;		/* --address, for the townctl line */
};

struct setup {
	struct setup_opts o;
	struct meter_config *cfg;
	struct prompt p;
	struct report rep;
	char ct_dir[768];		/* the mains CT's IIO directory ("" : not found) */
	bool ct_ok;			/* the CT samples: calibration possible */
	/* calibration */
	bool calibrated;
	struct ct_calib cal_before, cal_after;
	/* enrolment */
	bool have_key;
	uint16_t meter_id;
	uint8_t meter_pk[GMP_KEY_LEN];
	/* meterd */
	bool systemd, unit_loaded, was_active, stopped_it;
	bool running;			/* meterd runs at the end (live values to read) */
};

/* The steps. Each adds its checks to s->rep; -ECANCELED: the installer's input ended. */
int hw_check_ct(struct setup *s);
int hw_check_adc(struct setup *s);
int hw_check_relays(struct setup *s);
int modem_check(struct setup *s);
int calibrate(struct setup *s);
int enrol(struct setup *s);

/* meterd and its bus (service.c) */
void service_probe(struct setup *s);
int service_stop_for_walkthrough(struct setup *s);
int service_restore(struct setup *s, bool ask);
void service_live_values(struct setup *s);

/* The whole command (flow.c): options, steps, report; the exit status. */
int setup_main(int argc, char **argv);

/* milliseconds sleep (cut short by an interruption); a monotonic clock in ms */
void setup_sleep_ms(unsigned ms);
int64_t setup_now_ms(void);
/* SIGINT, SIGTERM, SIGHUP: interrupt (setup_interrupted()), SIGPIPE ignored. */
void setup_signals(void);
bool setup_interrupted(void);
/* Start meterd again if the walk-through stopped it (after an abort). */
void service_start_again(struct setup *s);

#endif
