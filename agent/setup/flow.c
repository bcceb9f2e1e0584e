// SPDX-License-Identifier: GPL-2.0
/*
 * gridmeter-setup: the installer's on-site walk-through of a new meter
 * (Documentation/onsite.md; the steps in setup.h). Options, the order of
 * the steps, the report, and the exit status: 0 only if every mandatory
 * check passed, 1 otherwise, 2 bad options, 3 aborted (end of input),
 * 78 bad configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "credentials.h"
#include "gmcmd.h"
#include "setup.h"

#define EXIT_ABORTED	3
#define EXIT_CONFIG	78

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: gridmeter-setup [OPTIONS]\n"
		"The on-site walk-through of a new meter: hardware check, calibration against a\n"
		"known load, the meter's key and enrolment line, self-test report.\n"
		"  -c, --config FILE            meterd.conf (default /etc/gridmeter/meterd.conf)\n"
		"  -y, --yes                    no questions: defaults and the options below\n"
		"      --reference-voltage V    reference meter's voltage (calibration)\n"
		"      --reference-current A    reference meter's current\n"
		"      --reference-power W      active power of an inductive load (phase)\n"
		"      --resistive              the load is resistive: PF 1 (phase)\n"
		"      --measure-seconds N      averaging time of each measurement (default 3)\n"
		"      --meter-id N             the town's number for this meter (key)\n"
		"      --town-key HEX           the town server's public key ('townctl pubkey')\n"
		"      --address TEXT           name for the 'townctl add' line\n"
		"      --force                  replace an existing key file\n"
		"      --no-calibration, --no-enrol, --no-modem   leave that step out\n"
		"      --modem-timeout S        wait for registration (default 30)\n"
		"      --adc-device NAME        the ADC's IIO name (default: found)\n"
		"      --adc-channels V,I       its voltage and current channels (default 0,1)\n"
		"      --no-service             leave meterd alone (no systemctl, no D-Bus)\n"
		"      --calibration-file FILE  default " CT_CALIB_PATH "\n"
		"      --report FILE            default /var/lib/gridmeter/setup-report-DATE-TIME.txt\n"
		"      --sysfs-root DIR         default /sys\n");
}

static int opt_quantity(const char *name, const char *arg, int64_t min, int64_t max, const char *unit,
			int64_t *out)
{
	struct quantity q = { .min = min, .max = max, .unit = unit };
	char why[200];

	if (parse_answer_quantity(arg, &q, why, sizeof(why))) {
		fprintf(stderr, "gridmeter-setup: --%s %s: %s\n", name, arg, why);
		return -1;
	}
	*out = q.micro;
	return 0;
}

static int parse_opts(struct setup_opts *o, int argc, char **argv)
{
	enum { O_RV = 256, O_RI, O_RP, O_RES, O_MS, O_ID, O_TK, O_ADDR, O_FORCE, O_NOCAL, O_NOENR,
	       O_NOMODEM, O_MT, O_ADC, O_ADCCH, O_NOSVC, O_CALF, O_REP, O_SYS };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "yes", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ "reference-voltage", required_argument, NULL, O_RV },
		{ "reference-current", required_argument, NULL, O_RI },
		{ "reference-power", required_argument, NULL, O_RP },
		{ "resistive", no_argument, NULL, O_RES },
		{ "measure-seconds", required_argument, NULL, O_MS },
		{ "meter-id", required_argument, NULL, O_ID },
		{ "town-key", required_argument, NULL, O_TK },
		{ "address", required_argument, NULL, O_ADDR },
		{ "force", no_argument, NULL, O_FORCE },
		{ "no-calibration", no_argument, NULL, O_NOCAL },
		{ "no-enrol", no_argument, NULL, O_NOENR },
		{ "no-modem", no_argument, NULL, O_NOMODEM },
		{ "modem-timeout", required_argument, NULL, O_MT },
		{ "adc-device", required_argument, NULL, O_ADC },
		{ "adc-channels", required_argument, NULL, O_ADCCH },
		{ "no-service", no_argument, NULL, O_NOSVC },
		{ "calibration-file", required_argument, NULL, O_CALF },
		{ "report", required_argument, NULL, O_REP },
		{ "sysfs-root", required_argument, NULL, O_SYS },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct setup_opts){
		.config = "/etc/gridmeter/meterd.conf", .sysfs = "/sys", .calib_file = CT_CALIB_PATH,
		.report_dir = "/var/lib/gridmeter", .adc_chan = { 0, 1 }, .measure_s = 3,
		.modem_timeout_s = 30, .ref_v_uv = -1, .ref_i_ua = -1, .ref_p_uw = -1,
	};
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:yh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'y': o->yes = true; break;
		case 'h': usage(stdout); return 1;
		case O_RV:
			if (opt_quantity("reference-voltage", optarg, 50000000, 500000000, "V", &o->ref_v_uv))
				return -1;
			break;
		case O_RI:
			if (opt_quantity("reference-current", optarg, 50000, 200000000, "A", &o->ref_i_ua))
				return -1;
			break;
		case O_RP:
			if (opt_quantity("reference-power", optarg, 1000000, 100000000000LL, "W", &o->ref_p_uw))
				return -1;
			break;
		case O_RES: o->ref_resistive = true; break;
		case O_MS:
			o->measure_s = (unsigned)strtoul(optarg, NULL, 10);
			if (o->measure_s < 1 || o->measure_s > 60) {
				fprintf(stderr, "gridmeter-setup: --measure-seconds: 1..60\n");
				return -1;
			}
			break;
		case O_ID: o->meter_id = optarg; break;
		case O_TK: o->town_key = optarg; break;
		case O_ADDR: o->address = optarg; break;
		case O_FORCE: o->force = true; break;
		case O_NOCAL: o->skip_calibration = true; break;
		case O_NOENR: o->skip_enrol = true; break;
		case O_NOMODEM: o->skip_modem = true; break;
		case O_MT: o->modem_timeout_s = (unsigned)strtoul(optarg, NULL, 10); break;
		case O_ADC: o->adc_device = optarg; break;
		case O_ADCCH:
			if (sscanf(optarg, "%u,%u", &o->adc_chan[0], &o->adc_chan[1]) != 2 ||
			    o->adc_chan[0] > 15 || o->adc_chan[1] > 15) {
				fprintf(stderr, "gridmeter-setup: --adc-channels V,I: two channel numbers 0..15\n");
				return -1;
			}
			break;
		case O_NOSVC: o->no_service = true; break;
		case O_CALF: o->calib_file = optarg; break;
		case O_REP: o->report_path = optarg; break;
		case O_SYS: o->sysfs = optarg; break;
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "gridmeter-setup: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (o->ref_resistive && o->ref_p_uw >= 0) {
		fprintf(stderr, "gridmeter-setup: --resistive or --reference-power, not both\n");
		return -1;
	}
	if ((o->ref_v_uv >= 0) != (o->ref_i_ua >= 0)) {
		fprintf(stderr, "gridmeter-setup: --reference-voltage and --reference-current go together\n");
		return -1;
	}
	return 0;
}

/* What `meterd --check` checks: the configuration, the key file, the operator keys, the calibration. */
static void config_check(struct setup *s)
{
	struct meter_config *c = calloc(1, sizeof(*c));
	char err[600] = "";
	int r;

	if (!c)
		return;
	r = config_load(c, s->o.config, err, sizeof(err));
	if (!r && c->uplink) {
		struct uplink_credentials cred;

		r = credentials_load(&cred, c->credentials, err, sizeof(err));
		credentials_wipe(&cred);
	}
	if (!r && c->operator_keys[0]) {
		struct gmc_keyset ks;

		r = gmc_keyset_load(&ks, c->operator_keys, err, sizeof(err));
	}
	if (!r) {
		struct ct_calib cal;
		char dev[64];

		r = ct_calib_load(s->o.calib_file, &cal, dev, sizeof(dev), err, sizeof(err));
		if (!r && strcmp(dev, c->mains_device)) {
			snprintf(err, sizeof(err), "%s is for '%s', mains_device is '%s'", s->o.calib_file,
				 dev, c->mains_device);
			r = -EINVAL;
		}
		if (r == -ENOENT)
			r = 0;
	}
	report_add(&s->rep, r ? CHECK_FAIL : CHECK_PASS, true, "config", "%s%s", r ? err : s->o.config,
		   r ? "" : " ok (as meterd --check)");
	free(c);
}

static void header(const struct setup *s, char *h, size_t len, const char *when)
{
	char host[HOST_NAME_MAX + 1] = "?", vs[CT_CALIB_NUM_LEN], is[CT_CALIB_NUM_LEN];
	size_t n;

	gethostname(host, sizeof(host));
	n = (size_t)snprintf(h, len, "host:        %s\ndate:        %s\nconfig:      %s\n", host, when,
			     s->o.config);
	if (s->calibrated && n < len) {
		ct_calib_format_units(s->cal_after.v_scale, 6, vs, sizeof(vs));
		ct_calib_format_units(s->cal_after.i_scale, 6, is, sizeof(is));
		n += (size_t)snprintf(h + n, len - n, "calibration: %s\n             voltage %s, current %s, "
				      "phase %d mdeg\n", s->o.calib_file, vs, is, s->cal_after.phase_mdeg);
	}
	if (s->have_key && n < len) {
		char hex[2 * GMP_KEY_LEN + 1];

		gmp_hex_encode(s->meter_pk, GMP_KEY_LEN, hex);
		snprintf(h + n, len - n, "meter:       %u\npublic key:  %s\n", s->meter_id, hex);
	}
}

static int finish(struct setup *s)
{
	char when[64], h[1024], path[PATH_MAX], err[600];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	header(s, h, sizeof(h), when);
	if (s->o.report_path)
		snprintf(path, sizeof(path), "%s", s->o.report_path);
	else
		snprintf(path, sizeof(path), "%s/setup-report-%04d%02d%02d-%02d%02d%02d.txt", s->o.report_dir,
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	fprintf(s->p.out, "\n");
	report_write(&s->rep, s->p.out, h);
	if (path[0]) {
		if (report_save(&s->rep, path, h, err, sizeof(err)))
			fprintf(s->p.out, "report not saved: %s\n", err);
		else
			fprintf(s->p.out, "report saved to %s\n", path);
	}
	return report_passed(&s->rep) ? 0 : 1;
}

/* The input ended (or the installer said no where there is no going on): leave things as they were. */
static int aborted(struct setup *s)
{
	fprintf(s->p.out, "\ngridmeter-setup: aborted, nothing half-written: the driver's trims are as\n"
		"they were, the calibration and key files as the last confirmed step left them.\n");
	service_start_again(s);
	return EXIT_ABORTED;
}

int setup_main(int argc, char **argv)
{
	struct setup *s = calloc(1, sizeof(*s));
	char err[600];
	int r;

	if (!s)
		return 1;
	r = parse_opts(&s->o, argc, argv);
	if (r)
		return r > 0 ? 0 : 2;
	if (sodium_init() < 0)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	setup_signals();
	prompt_init(&s->p, stdin, stdout, s->o.yes);
	report_init(&s->rep, &s->p);
	s->cfg = calloc(1, sizeof(*s->cfg));
	if (!s->cfg)
		return 1;
	if (config_load(s->cfg, s->o.config, err, sizeof(err))) {
		fprintf(stderr, "gridmeter-setup: configuration error: %s\n", err);
		return EXIT_CONFIG;
	}
	printf("gridmeter-setup: walk-through of this meter (%s)\n", s->o.config);
	printf("Every question shows its default in [brackets]: Enter takes it.\n");
	service_probe(s);
	r = service_stop_for_walkthrough(s);
	if (r == -EPERM || r == -EIO)
		return 1;
	if (r)
		return aborted(s);

	printf("\n== Hardware ==\n");
	hw_check_ct(s);
	hw_check_adc(s);
	hw_check_relays(s);
	modem_check(s);
	if (setup_interrupted())
		return aborted(s);

	r = calibrate(s);
	if (!r && !setup_interrupted())
		r = enrol(s);
	if (r || setup_interrupted())
		return aborted(s);

	printf("\n== Self-test ==\n");
	config_check(s);
	r = service_restore(s, true);
	if (r)
		return aborted(s);
	service_live_values(s);
	r = finish(s);
	free(s->cfg);
	free(s);
	return r;
}
