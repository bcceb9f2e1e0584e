// SPDX-License-Identifier: GPL-2.0
/*
 * meterd: event loop (sd-event) around the meter and its D-Bus service.
 *
 *   trip thread       opens the main relay on a sensor event (tripper.c)
 *   trip wake fd      priority IMPORTANT: protection state machine
 *   power-fail fd     [power] fail_line: a sample and a durable snapshot at once
 *   button fd         local reconnect confirmation
 *   sample timer      every sample_interval_ms: read, integrate, allocate
 *   D-Bus             method calls, rate-bounded PropertiesChanged
 *   uplink            modem line, /dev/gmlink and its timer (uplink_town.c),
 *                     when [uplink] is configured
 *   SIGTERM/SIGINT    a durable snapshot flagged clean, then exit; blocked in
 *                     every thread (before the first starts), taken by sd-event
 *   watchdog          WATCHDOG=1 from sd-event when WatchdogSec= is set
 */
#include "daemon.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include <sodium.h>

#include "clock_set.h"
#include "config.h"
#include "credentials.h"
#include "ct_calib.h"
#include "ct_setup.h"
#include "daemon_home.h"
#include "dbus.h"
#include "dbus_uplink.h"
#include "gmcmd.h"
#include "keygen.h"
#include "meter.h"
#include "powerfail.h"
#include "relay.h"
#include "sensor.h"
#include "tripper.h"
#include "town_uplink.h"

/* sysexits.h EX_CONFIG: the unit does not restart on it (RestartPreventExitStatus=) */
#define EXIT_CONFIG	78
/* a bouncing power-fail line saves at most this often */
#define POWERFAIL_SAVE_MS	1000

struct daemon {
	struct meter_config cfg;
	struct meter meter;
	struct service svc;
	struct sensor *sensor;
	struct relays *relays;
	struct tripper trip;
	bool trip_up;
	sd_event *event;
	sd_bus *bus;
	uint64_t period_usec;
	bool meter_up;
	struct town_uplink town;
	struct uplink_service usvc;
	bool town_up;
	struct powerfail *pf;
	int64_t pf_saved_mono;
	bool pf_lost;
	struct daemon_home home;	/* [sensor.NAME] */
};

/*
 * The uplink is not needed to meter: if it cannot start, meterd meters,
 * protects and keeps its registers, and says why in the journal.
 */
static void start_uplink(struct daemon *d)
{
	struct town_uplink_hooks hooks = { 0 };
	char err[512] = "";
	int r;

	r = uplink_service_init(&d->usvc, d->bus, d->event, &d->svc, &d->town, &hooks);
	if (r >= 0)
		r = town_uplink_start(&d->town, &d->cfg, &d->meter, d->event, &hooks, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "<3>meterd: uplink to the town server not started: %s\n",
			err[0] ? err : strerror(-r));
		town_uplink_stop(&d->town);
		uplink_service_done(&d->usvc);
		return;
	}
	d->town_up = true;
	d->meter.uplink = &d->town.base;
}

static int on_sample(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;
	struct sensor_reading r;
	int e;

	e = d->sensor->ops->read(d->sensor, &r);
	if (e)
		meter_sensor_failed(&d->meter, e);
	else
		meter_sample(&d->meter, &r, service_real_ms(), (int64_t)(usec / 1000));
	/* next sample on a fixed grid: no drift however long this one took */
	sd_event_source_set_time(es, usec + d->period_usec);
	return sd_event_source_set_enabled(es, SD_EVENT_ONESHOT);
}

/* The trip thread has already opened the main relay: now the state machine. */
static int on_trip(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct daemon *d = userdata;
	unsigned faults = tripper_take(&d->trip);

	(void)es;
	(void)fd;
	(void)revents;
	if (faults)
		meter_event(&d->meter, faults, service_mono_ms());
	if (atomic_load(&d->trip.lost))
		meter_alarm(&d->meter, ALARM_PROTECTION, true,
			    "the driver's event channel hung up: only the per-sample check protects now");
	return 0;
}

/* The supply is failing: a sample now (so that the snapshot holds all that was metered), then save. */
static int on_powerfail(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct daemon *d = userdata;
	bool edge, lost;
	int64_t mono = service_mono_ms();
	int r;

	(void)es;
	(void)fd;
	(void)revents;
	r = powerfail_read(d->pf, &edge, &lost);
	if (r < 0) {
		meter_log(&d->meter, LOG_ERR, "power-fail input: %s", strerror(-r));
		return 0;
	}
	if (edge && (!d->pf_saved_mono || mono - d->pf_saved_mono >= POWERFAIL_SAVE_MS)) {
		struct sensor_reading rd;

		if (!d->sensor->ops->read(d->sensor, &rd))
			meter_sample(&d->meter, &rd, service_real_ms(), mono);
		meter_powerfail(&d->meter, true);
		d->pf_saved_mono = mono;
	} else if (!lost && d->pf_lost) {
		meter_powerfail(&d->meter, false);
	}
	d->pf_lost = lost;
	return 0;
}

/*
 * Without the power-fail input meterd meters on: persistence is bounded
 * anyway ([store] persist_interval / persist_energy).
 */
static void start_powerfail(struct daemon *d)
{
	char err[256];
	int r;

	d->pf = powerfail_open(d->cfg.powerfail_chip, (unsigned)d->cfg.powerfail_line,
			       d->cfg.powerfail_active_low, err, sizeof(err));
	if (!d->pf) {
		meter_log(&d->meter, LOG_ERR, "power-fail input not available: %s", err);
		return;
	}
	r = sd_event_add_io(d->event, NULL, powerfail_fd(d->pf), EPOLLIN, on_powerfail, d);
	if (r < 0) {
		meter_log(&d->meter, LOG_ERR, "power-fail input: %s", strerror(-r));
		powerfail_close(d->pf);
		d->pf = NULL;
		return;
	}
	d->pf_lost = powerfail_lost(d->pf);
	meter_log(&d->meter, d->pf_lost ? LOG_WARNING : LOG_INFO, "power-fail input: %s line %d%s, %s",
		  d->cfg.powerfail_chip, d->cfg.powerfail_line,
		  d->cfg.powerfail_active_low ? " (active low)" : "",
		  d->pf_lost ? "the supply is failing now" : "the supply is good");
	if (d->pf_lost) {
		meter_powerfail(&d->meter, true);
		d->pf_saved_mono = service_mono_ms();
	}
}

static int on_button(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct daemon *d = userdata;

	(void)es;
	(void)fd;
	(void)revents;
	if (d->relays->ops->button_pressed(d->relays) > 0)
		meter_button(&d->meter);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: meterd [-c CONFIG] [--check] [--test-hooks]\n"
		   "       meterd --generate-key --meter-id N --town-key HEX [-c CONFIG] [--force]\n"
		   "  -c, --config FILE   configuration (default /etc/gridmeter/meterd.conf)\n"
		   "      --check         validate the configuration and exit\n"
		   "      --test-hooks    export org.gridmeter.Meter1.Test (replay sensor only)\n"
		   "      --setup-thresholds  write [protection] to the CT driver's events and the\n"
		   "                      calibration of " CT_CALIB_PATH " (if any)\n"
		   "                      to the driver, and exit\n"
		   "      --generate-key  write a new key pair to [uplink] credentials, print the\n"
		   "                      public key and the 'townctl add' line, and exit\n"
		   "      --meter-id N    the meter's number at the town server\n"
		   "      --town-key HEX  the town server's public key ('townctl pubkey')\n"
		   "      --force         replace an existing key file\n");
}

static int setup(struct daemon *d, bool test_hooks, char *err, size_t errlen)
{
	struct meter_hooks hooks = { 0 };
	int r, fd;

	if (!strcmp(d->cfg.sensor_backend, "replay"))
		d->sensor = sensor_replay_new(d->cfg.replay_file, err, errlen);
	else
		d->sensor = sensor_iio_new(&d->cfg, err, errlen);
	if (!d->sensor)
		return -ENODEV;
	if (test_hooks && !sensor_is_replay(d->sensor)) {
		snprintf(err, errlen, "--test-hooks needs [sensors] backend = replay");
		return -EINVAL;
	}
	if (!strcmp(d->cfg.relay_backend, "fake"))
		d->relays = relay_fake_new(1 + (unsigned)d->cfg.nloads);
	else
		d->relays = relay_gpiod_new(&d->cfg, err, errlen);
	if (!d->relays)
		return -ENODEV;

	r = tripper_start(&d->trip, d->sensor, d->relays);
	if (r < 0) {
		snprintf(err, errlen, "trip thread: %s", strerror(-r));
		return r;
	}
	d->trip_up = true;

	r = sd_event_default(&d->event);
	if (r < 0)
		return r;
	/* blocked since meterd_main(): a stop waiting here is taken by the loop at once */
	sd_event_add_signal(d->event, NULL, SIGTERM, NULL, NULL);
	sd_event_add_signal(d->event, NULL, SIGINT, NULL, NULL);

	r = sd_bus_open_system(&d->bus);
	if (r < 0) {
		snprintf(err, errlen, "connecting to the system bus: %s", strerror(-r));
		return r;
	}
	r = service_init(&d->svc, d->bus, d->event, d->cfg.property_interval_ms, test_hooks, &hooks);
	if (r < 0)
		return r;
	/* [meter] clock = town sets the clock; system only reads the boot id */
	hooks.clock = &clock_set_ops;
	r = meter_init(&d->meter, &d->cfg, d->sensor, &d->trip.wrap, &hooks, service_real_ms(),
		       service_mono_ms(), err, errlen);
	if (r < 0)
		return r;
	d->meter_up = true;
	if (d->cfg.powerfail_line >= 0)
		start_powerfail(d);
	if (d->cfg.uplink)
		start_uplink(d);
	r = daemon_home_start(&d->home, &d->meter, d->event, "/sys");
	if (r < 0) {
		snprintf(err, errlen, "home sensors: %s", strerror(-r));
		return r;
	}
	if (!sensor_is_replay(d->sensor)) {
		char why[512];

		/* Protection within a mains cycle needs the driver's events armed. */
		if (ct_thresholds("/sys", d->cfg.mains_device, d->cfg.over_voltage_mv,
				  d->cfg.under_voltage_mv, d->cfg.over_current_ma, false, why, sizeof(why)))
			meter_alarm(&d->meter, ALARM_PROTECTION, true, why);
	}
	r = service_start(&d->svc, &d->meter, err, errlen);
	if (r < 0)
		return r;
	r = sd_bus_attach_event(d->bus, d->event, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0)
		return r;
	/* bus gone (dbus restarted): leave with a failure, systemd restarts us */
	sd_bus_set_exit_on_disconnect(d->bus, 1);
	r = sd_bus_request_name(d->bus, METER_BUS_NAME, 0);
	if (r < 0) {
		snprintf(err, errlen, "acquiring %s: %s", METER_BUS_NAME, strerror(-r));
		return r;
	}

	{
		sd_event_source *es;

		r = sd_event_add_io(d->event, &es, d->trip.wake_fd, EPOLLIN, on_trip, d);
		if (r < 0)
			return r;
		sd_event_source_set_priority(es, SD_EVENT_PRIORITY_IMPORTANT);
		sd_event_source_set_floating(es, 1);
		sd_event_source_unref(es);
	}
	fd = d->relays->ops->button_fd(d->relays);
	if (fd >= 0) {
		r = sd_event_add_io(d->event, NULL, fd, EPOLLIN, on_button, d);
		if (r < 0)
			return r;
	}
	d->period_usec = (uint64_t)d->cfg.sample_ms * 1000;
	{
		uint64_t now;

		sd_event_now(d->event, CLOCK_MONOTONIC, &now);
		r = sd_event_add_time(d->event, NULL, CLOCK_MONOTONIC, now + d->period_usec, 1000,
				      on_sample, d);
		if (r < 0)
			return r;
	}
	sd_event_set_watchdog(d->event, true);
	return 0;
}

int meterd_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'C' },
		{ "test-hooks", no_argument, NULL, 'T' },
		{ "setup-thresholds", no_argument, NULL, 'S' },
		{ "generate-key", no_argument, NULL, 'G' },
		{ "meter-id", required_argument, NULL, 'I' },
		{ "town-key", required_argument, NULL, 'K' },
		{ "force", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = "/etc/gridmeter/meterd.conf";
	bool check = false, test_hooks = false, setup_thresholds = false;
	struct keygen_opts keygen = { 0 };
	struct daemon *d;
	char err[512] = "";
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'C': check = true; break;
		case 'T': test_hooks = true; break;
		case 'S': setup_thresholds = true; break;
		case 'G': keygen.generate = true; break;
		case 'I': keygen.meter_id = optarg; break;
		case 'K': keygen.town_key = optarg; break;
		case 'F': keygen.force = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (keygen_wanted(&keygen))
		return keygen_main(&keygen, path, stdout, stderr);
	if (sodium_init() < 0)
		return 1;
	/*
	 * A stop must always save: SIGTERM and SIGINT are blocked here, before
	 * any thread (the trip thread) or child exists, so every thread
	 * inherits the mask and no thread can take the default action (death
	 * without a save); sd-event takes them through a signalfd.
	 */
	{
		sigset_t ss;

		sigemptyset(&ss);
		sigaddset(&ss, SIGTERM);
		sigaddset(&ss, SIGINT);
		sigprocmask(SIG_BLOCK, &ss, NULL);
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	if (config_load(&d->cfg, path, err, sizeof(err))) {
		fprintf(stderr, "<3>meterd: configuration error: %s\n", err);
		sd_notifyf(0, "STATUS=configuration error: %s", err);
		free(d);
		return EXIT_CONFIG;
	}
	if (check && d->cfg.uplink) {
		struct uplink_credentials cred;

		r = credentials_load(&cred, d->cfg.credentials, err, sizeof(err));
		credentials_wipe(&cred);
		if (r) {
			fprintf(stderr, "<3>meterd: uplink credentials: %s\n", err);
			free(d);
			return EXIT_CONFIG;
		}
	}
	if (check && d->cfg.operator_keys[0]) {
		struct gmc_keyset ks;
		char why[400];

		if (gmc_keyset_load(&ks, d->cfg.operator_keys, why, sizeof(why))) {
			fprintf(stderr, "<3>meterd: configuration error: %s:%u: [commands] "
				"key 'operator_keys': %s\n", path, d->cfg.operator_keys_line, why);
			free(d);
			return EXIT_CONFIG;
		}
	}
	if (check) {
		struct ct_calib cal;
		char dev[64];

		/* gridmeter-setup's calibration, applied by --setup-thresholds */
		r = ct_calib_load(CT_CALIB_PATH, &cal, dev, sizeof(dev), err, sizeof(err));
		if (!r && strcmp(dev, d->cfg.mains_device)) {
			snprintf(err, sizeof(err), "%s is for IIO device '%s', [sensors] mains_device "
				 "is '%s'", CT_CALIB_PATH, dev, d->cfg.mains_device);
			r = -EINVAL;
		}
		if (r && r != -ENOENT) {
			fprintf(stderr, "<3>meterd: calibration: %s\n", err);
			free(d);
			return EXIT_CONFIG;
		}
		printf("%s: ok\n", path);
		free(d);
		return 0;
	}
	if (setup_thresholds) {
		bool applied = false;
		int rc = 0;

		/*
		 * privileged (ExecStartPre=+): the installer's calibration
		 * (gridmeter-setup), then the driver's events with [protection]
		 */
		rc = strcmp(d->cfg.sensor_backend, "iio") ? 0 :
		     ct_calib_apply("/sys", CT_CALIB_PATH, d->cfg.mains_device, &applied, err,
				    sizeof(err));
		if (rc)
			fprintf(stderr, "<3>meterd: calibration not applied: %s\n", err);
		else if (applied)
			fprintf(stderr, "<6>meterd: calibration of %s applied to %s\n", CT_CALIB_PATH,
				d->cfg.mains_device);
		r = strcmp(d->cfg.sensor_backend, "iio") ? 0 :
		    ct_thresholds("/sys", d->cfg.mains_device, d->cfg.over_voltage_mv,
				  d->cfg.under_voltage_mv, d->cfg.over_current_ma, true, err, sizeof(err));
		if (r)
			fprintf(stderr, "<3>meterd: threshold events: %s\n", err);
		free(d);
		return r || rc ? 1 : 0;
	}
	r = setup(d, test_hooks, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "<3>meterd: cannot start: %s\n", err[0] ? err : strerror(-r));
		sd_notifyf(0, "STATUS=cannot start: %s", err[0] ? err : strerror(-r));
	} else {
		sd_notifyf(0, "READY=1\nSTATUS=metering, authorisation by %s", auth_mode_name(&d->svc.auth));
		r = sd_event_loop(d->event);	/* 0 on SIGTERM/SIGINT, > 0 if the bus went away */
		sd_notify(0, "STOPPING=1");
		fprintf(stderr, r ? "<3>meterd: stopping: %s\n" : "<6>meterd: stopping\n",
			r > 0 ? "lost the system bus" : strerror(-r));
	}
	if (d->town_up) {
		d->meter.uplink = &uplink_none;
		town_uplink_stop(&d->town);
		uplink_service_done(&d->usvc);
	}
	if (d->pf)
		powerfail_close(d->pf);
	daemon_home_stop(&d->home);
	if (d->meter_up)
		meter_shutdown(&d->meter);
	service_done(&d->svc);
	if (d->bus)
		sd_bus_flush_close_unref(d->bus);
	if (d->event)
		sd_event_unref(d->event);
	if (d->trip_up)
		tripper_stop(&d->trip);
	if (d->sensor)
		d->sensor->ops->destroy(d->sensor);
	if (d->relays)
		d->relays->ops->destroy(d->relays);
	free(d);
	return r ? 1 : 0;
}
