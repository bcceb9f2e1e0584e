// SPDX-License-Identifier: GPL-2.0
/*
 * meterd benchmark. Prints one line per metric with its target and exits
 * non-zero if a target is missed.
 *
 * 1. A simulated day (fake time, 86400 samples at 1 Hz) of a household with
 *    solar, an evening peak, an EV, shedding and a voltage sag, through the
 *    meter core and the store at the default persistence bounds
 *    ([store] persist_interval 60 s, persist_energy 100 Wh): journal bytes
 *    per hour, bytes written to the persistent store per day, fdatasyncs
 *    and the 4 KiB pages they write (what the SD card sees, at least),
 *    the largest energy and time between two durable saves (the most a
 *    power cut could have lost that day), host CPU time per sample.
 * 2. The real daemon (build/x86_64/bin/meterd if built, else this program in
 *    daemon mode) on a private dbus-daemon with the replay sensor:
 *    resident memory (VmHWM, and the private part).
 * 3. The real daemon under callgrind, run for two durations: instructions
 *    per second of operation at 1 Hz = difference / difference in time, and
 *    the share of one core assuming 1.5e9 instructions/s (Cortex-A72 at
 *    1.5 GHz, IPC 1; conservative for the Raspberry Pi 4).
 *
 * 4. With --ext4 (root: a loop device): what one durable snapshot and one
 *    interval commit cost on a real ext4 (default mount options), in
 *    device sectors written with the journal's commits in between (the
 *    saves 6 s apart, each in its own 5 s commit as at 60 s), and so the
 *    bytes per day that reach the SD card at the defaults. About 3 minutes.
 *
 * Usage: agent_bench_meterd [--quick] [--ext4]   (--quick skips callgrind)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

#include "daemon.h"
#include "meter.h"
#include "../tests/dbus/agent_privbus.h"

#define TARGET_RSS_KB		4096
#define TARGET_CORE_PCT		1.0
#define TARGET_BYTES_PER_DAY	(1u << 20)
#define CORE_IPS		1.5e9
#define METERD_BIN		"build/x86_64/bin/meterd"	/* from the top directory */

static int failures;

/* the simulated day's durable snapshots and interval commits, for --ext4 */
static struct {
	uint64_t saves, commits;
} day;

static void report(const char *metric, double value, const char *unit, double target, bool below)
{
	bool ok = below ? value < target : true;

	printf("agent_bench: %-34s %12.2f %-10s target < %.2f %s\n", metric, value, unit, target,
	       below ? (ok ? "PASS" : "FAIL") : "info");
	failures += !ok;
}

static void info(const char *metric, double value, const char *unit)
{
	printf("agent_bench: %-34s %12.2f %s\n", metric, value, unit);
}

static struct {
	uint64_t log_bytes, log_lines;
} journal;

static void count_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	(void)level;
	journal.log_bytes += strlen(msg) + 1;
	journal.log_lines++;
}

static unsigned lcg(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) & 0x7fff;
}

/* Household model: grid power and renewable output at second t of the day. */
static void household(unsigned t, const struct meter *m, unsigned *seed, struct sensor_reading *r)
{
	unsigned h = t / 3600;
	int64_t demand = 350 + (t % 2400 < 900 ? 120 : 0) + (int64_t)(lcg(seed) % 40);
	int64_t sun = 0;

	if ((h == 7 && t % 3600 < 180) || (h == 7 && t % 3600 >= 1800 && t % 3600 < 1980))
		demand += 2500;				/* kettle */
	if (h >= 17 && h < 21)
		demand += 1800;				/* cooking, lights */
	if (h >= 22 || h < 1)
		demand += 3000;				/* EV charger */
	if (h >= 10 && h < 16 && m->load_closed[0])
		demand += 1500;				/* pool pump */
	if (((h >= 5 && h < 7) || (h >= 18 && h < 20)) && m->load_closed[1])
		demand += 3000;				/* water heater */
	if (t > 6 * 3600 && t < 20 * 3600) {
		int64_t x = (int64_t)t - 13 * 3600;	/* parabola, 3.5 kW at 13:00 */

		sun = 3500 - 3500 * x / (7 * 3600) * x / (7 * 3600);
		if (sun < 0)
			sun = 0;
	}
	if (!m->main_closed)
		demand = 0;
	memset(r, 0, sizeof(*r));
	r->v_mv = 230000 + (uint32_t)(lcg(seed) % 2000) - 1000;
	if (t >= 3 * 3600 && t < 3 * 3600 + 2)
		r->v_mv = 190000;			/* sag: trip, reclose after 180 s */
	r->p_mw = (demand - sun) * 1000;
	r->i_ma = (uint32_t)((demand > sun ? demand - sun : sun - demand) * 1000000 / r->v_mv);
	r->pf_milli = 980;
	r->f_mhz = 50000 + lcg(seed) % 40 - 20;
	r->has_renew = true;
	r->renew_mw = sun * 1000;
	r->renew_avail_mw = -1;
}

static int simulate_day(const char *dir)
{
	static const char conf_fmt[] =
		"[meter]\ntimezone = Europe/London\n[sensors]\nbackend = replay\n[relays]\nbackend = fake\n"
		"[load.pool_pump]\nline = 5\nload = 1500\npriority = 1\n"
		"[load.water_heater]\nline = 6\nload = 3000\npriority = 2\n"
		"[allocation]\ngrid_allocation = 5000\n"
		"[tariff]\ntype = tou\nrates = peak:35, offpeak:12\n"
		"weekday = 00:00-07:00 offpeak, 07:00-24:00 peak\nweekend = 00:00-24:00 offpeak\n"
		"standing_charge = 60\nfeed_in = 15\n"
		"[store]\nstate_dir = %s\nruntime_dir = %s\n";
	struct meter_hooks hooks = { .log = count_log };
	struct meter_config cfg;
	struct meter *m = calloc(1, sizeof(*m));
	struct sensor *s;
	struct relays *r;
	char text[1024], err[256];
	struct timespec c0, c1;
	int64_t real = 1790035200000;	/* 2026-09-22 00:00 UTC, 01:00 BST */
	int64_t mono = 1000;
	unsigned seed = 1;
	uint64_t bytes0, lines0, logb0, syncs0, pages0, saves0;
	double cpu;

	snprintf(text, sizeof(text), conf_fmt, dir, dir);
	if (!m || config_parse(&cfg, "bench.conf", text, err, sizeof(err))) {
		fprintf(stderr, "config: %s\n", err);
		return -1;
	}
	s = sensor_replay_new(NULL, err, sizeof(err));
	r = relay_fake_new(3);
	if (meter_init(m, &cfg, s, r, &hooks, real, mono, err, sizeof(err))) {
		fprintf(stderr, "meter_init: %s\n", err);
		return -1;
	}
	bytes0 = m->store.bytes_written;
	syncs0 = m->store.fsyncs;
	pages0 = m->store.pages_synced;
	saves0 = m->durable_saves;
	lines0 = journal.log_lines;
	logb0 = journal.log_bytes;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	for (unsigned t = 1; t <= 86400; t++) {
		struct sensor_reading rd;

		household((t + 3600) % 86400, m, &seed, &rd);	/* local time of day */
		real += 1000;
		mono += 1000;
		meter_sample(m, &rd, real, mono);
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	report("journal bytes per hour (day avg)", (double)(journal.log_bytes - logb0) / 24, "bytes",
	       TARGET_BYTES_PER_DAY / 24.0, true);
	info("journal lines per day", (double)(journal.log_lines - lines0), "lines");
	report("persistent store bytes per day", (double)(m->store.bytes_written - bytes0), "bytes",
	       TARGET_BYTES_PER_DAY, true);
	report("journal + store bytes per day",
	       (double)(m->store.bytes_written - bytes0 + journal.log_bytes - logb0), "bytes",
	       TARGET_BYTES_PER_DAY, true);
	info("store fdatasyncs per day", (double)(m->store.fsyncs - syncs0), "");
	info("durable snapshots per day", (double)(m->durable_saves - saves0), "");
	info("SD card pages written per day", (double)(m->store.pages_synced - pages0), "x 4 KiB");
	info("SD card bytes per day (at least)", (double)(m->store.pages_synced - pages0) * STORE_PAGE, "bytes");
	info("profile interval records per day", (double)m->prof.count, "");
	day.commits = m->prof.count;
	day.saves = m->durable_saves - saves0 - day.commits;
	info("most energy between durable saves", (double)m->max_at_risk_uj / 3.6e9, "Wh");
	info("longest time between durable saves", (double)m->max_at_risk_ms / 1000, "s");
	info("host CPU per sample (core only)", cpu / 86400 * 1e6, "us");
	info("import energy of the day", (double)m->reg.import.total_mwh / 1e6, "kWh");
	info("export energy of the day", (double)m->reg.export.total_mwh / 1e6, "kWh");
	info("price so far", (double)meter_price_milli(m, real) / 1e5, "GBP");
	meter_shutdown(m);
	s->ops->destroy(s);
	r->ops->destroy(r);
	free(m);
	return 0;
}

static void write_daemon_files(const char *dir)
{
	char p[256];
	FILE *f;
	unsigned seed = 7;

	snprintf(p, sizeof(p), "%s/replay.txt", dir);
	f = fopen(p, "w");
	for (int i = 0; f && i < 4000; i++)
		fprintf(f, "%u %u %d 980 %u %d\n", 229000 + lcg(&seed) % 2000, 4000 + lcg(&seed) % 500,
			900000 + (int)(lcg(&seed) % 100000), 49980 + lcg(&seed) % 40,
			(int)(lcg(&seed) % 1000) * 1000);
	if (f)
		fclose(f);
	snprintf(p, sizeof(p), "%s/meterd.conf", dir);
	f = fopen(p, "w");
	if (f) {
		fprintf(f, "[meter]\ntimezone = Europe/London\n[sensors]\nbackend = replay\n"
			   "replay_file = %s/replay.txt\n[relays]\nbackend = fake\n"
			   "[load.pool_pump]\nline = 5\nload = 1500\npriority = 1\n"
			   "[tariff]\nrate = 28.62\nstanding_charge = 60\n"
			   "[store]\nstate_dir = %s/state\nruntime_dir = %s/run\n", dir, dir, dir);
		fclose(f);
	}
	snprintf(p, sizeof(p), "%s/state", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/run", dir);
	mkdir(p, 0700);
}

static pid_t spawn(const char *dir, const char *cg_out)
{
	char self[512], conf[256];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	pid_t pid;

	if (n <= 0)
		return -1;
	self[n] = 0;
	snprintf(conf, sizeof(conf), "%s/meterd.conf", dir);
	pid = fork();
	if (!pid) {
		char log[256];

		snprintf(log, sizeof(log), "%s/meterd.log", dir);
		if (!freopen(log, "a", stderr))
			_exit(126);
		if (cg_out) {
			char outarg[300];

			snprintf(outarg, sizeof(outarg), "--callgrind-out-file=%s", cg_out);
			if (!access(METERD_BIN, X_OK))
				execlp("valgrind", "valgrind", "--tool=callgrind", "-q", outarg, METERD_BIN,
				       "-c", conf, (char *)NULL);
			execlp("valgrind", "valgrind", "--tool=callgrind", "-q", outarg, self, "--meterd",
			       "-c", conf, (char *)NULL);
			_exit(127);
		}
		/* a fresh exec, so the measured memory is the daemon's own: the real
		 * meterd when it has been built, else this program in daemon mode */
		if (!access(METERD_BIN, X_OK))
			execl(METERD_BIN, "meterd", "-c", conf, (char *)NULL);
		execl(self, self, "--meterd", "-c", conf, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static long status_kb(pid_t pid, const char *file, const char *key)
{
	char p[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/%s", (int)pid, file);
	f = fopen(p, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = strtol(line + strlen(key), NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static int measure_rss(const char *dir)
{
	pid_t pid = spawn(dir, NULL);
	long hwm, pss, anon, priv_clean, priv_dirty;

	if (pid < 0 || privbus_wait_name("org.gridmeter.Meter1", 5000)) {
		fprintf(stderr, "meterd did not start (see %s/meterd.log)\n", dir);
		privbus_stop(pid, SIGKILL);
		return -1;
	}
	{
		/* exercise the bus paths too: properties, an authorised method, the profile */
		sd_bus *b = NULL;

		if (sd_bus_open_system(&b) >= 0) {
			for (int k = 0; k < 20; k++) {
				sd_bus_call_method(b, "org.gridmeter.Meter1", "/org/gridmeter/Meter1",
						   "org.freedesktop.DBus.Properties", "GetAll", NULL, NULL, "s",
						   "org.gridmeter.Meter1");
				sd_bus_call_method(b, "org.gridmeter.Meter1", "/org/gridmeter/Meter1",
						   "org.gridmeter.Meter1", "SelfTest", NULL, NULL, "");
				sd_bus_call_method(b, "org.gridmeter.Meter1", "/org/gridmeter/Meter1",
						   "org.gridmeter.Meter1", "GetLoadProfile", NULL, NULL, "xx",
						   (int64_t)0, INT64_MAX);
			}
			sd_bus_flush_close_unref(b);
		}
	}
	sleep(5);
	hwm = status_kb(pid, "status", "VmHWM:");
	anon = status_kb(pid, "status", "RssAnon:");
	pss = status_kb(pid, "smaps_rollup", "Pss:");
	priv_clean = status_kb(pid, "smaps_rollup", "Private_Clean:");
	priv_dirty = status_kb(pid, "smaps_rollup", "Private_Dirty:");
	privbus_stop(pid, SIGTERM);
	report("daemon peak RSS (VmHWM)", (double)hwm, "KiB", TARGET_RSS_KB, true);
	info("daemon PSS", (double)pss, "KiB");
	info("daemon private (clean + dirty)", (double)(priv_clean + priv_dirty), "KiB");
	info("daemon anonymous RSS", (double)anon, "KiB");
	return 0;
}

static long long callgrind_ir(const char *file)
{
	char line[256];
	long long ir = -1;
	FILE *f = fopen(file, "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "summary:", 8) || !strncmp(line, "totals:", 7))
			ir = strtoll(strchr(line, ':') + 1, NULL, 10);
	if (f)
		fclose(f);
	return ir;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int measure_cpu(const char *dir)
{
	static const int secs[2] = { 5, 35 };
	long long ir[2];
	double dur[2];

	if (system("valgrind --version >/dev/null 2>&1")) {
		printf("agent_bench: callgrind not available: CPU per second not measured\n");
		return 0;
	}
	for (int k = 0; k < 2; k++) {
		char out[256], cmd[600];
		pid_t pid;
		double t0;

		snprintf(out, sizeof(out), "%s/callgrind.%d", dir, k);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s/state'/* '%s/run'/*", dir, dir);
		if (system(cmd))
			return -1;
		pid = spawn(dir, out);
		if (pid < 0 || privbus_wait_name("org.gridmeter.Meter1", 30000)) {
			privbus_stop(pid, SIGKILL);
			return -1;
		}
		t0 = now_s();
		sleep((unsigned)secs[k]);
		dur[k] = now_s() - t0;
		privbus_stop(pid, SIGTERM);
		ir[k] = callgrind_ir(out);
		if (ir[k] < 0)
			return -1;
	}
	{
		double ips = (double)(ir[1] - ir[0]) / (dur[1] - dur[0]);

		info("instructions per second at 1 Hz", ips, "Ir/s");
		report("share of one core (1.5e9 instr/s)", ips / CORE_IPS * 100, "%", TARGET_CORE_PCT, true);
	}
	return 0;
}

/* Sectors written to a block device so far (/sys/block/DEV/stat, field 7). */
static long long dev_sectors(const char *dev)
{
	char p[128];
	long long v[7] = { 0 };
	FILE *f;

	snprintf(p, sizeof(p), "/sys/block/%s/stat", dev);
	f = fopen(p, "r");
	for (int i = 0; f && i < 7; i++)
		if (fscanf(f, "%lld", &v[i]) != 1)
			break;
	if (f)
		fclose(f);
	return v[6];
}

/* KiB written to dev per store write (a durable snapshot, or an interval commit). */
static double ext4_kib_per_write(const char *state, const char *run, const char *dev, bool commit)
{
	static uint8_t snap[sizeof(struct meter_persist)];
	struct profile_entry e = { 0 };
	struct store_recovery rec;
	struct store s;
	const int n = 10, gap_s = 6;
	long long a;

	if (store_open(&s, state, run, PERSIST_MAX) || store_recover(&s, snap, NULL, NULL, &rec))
		return -1;
	for (int i = 0; i < 3; i++) {	/* both slots written once, as in service */
		store_save(&s, snap, sizeof(snap));
		sleep(gap_s);
	}
	sync();
	sleep(gap_s);
	a = dev_sectors(dev);
	for (int i = 0; i < n; i++) {
		snap[0] = (uint8_t)i;
		e.start = 1790000100 + i * 900;
		if (commit)
			store_commit(&s, snap, sizeof(snap), &e, 1, true);
		else
			store_save(&s, snap, sizeof(snap));
		sleep(gap_s);
	}
	sleep(gap_s);	/* the last journal commit */
	a = dev_sectors(dev) - a;
	store_close(&s);
	return (double)a * 512 / 1024 / n;
}

static int measure_ext4(const char *dir)
{
	char cmd[512], dev[64] = "", state[300], run[300], path[300];
	double slot, log;
	FILE *f;

	if (geteuid()) {
		printf("agent_bench: --ext4 needs root (a loop device): not measured\n");
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "cd '%s' && truncate -s 64M ext4.img && mkfs.ext4 -q -F ext4.img && "
		 "mkdir -p mnt && losetup -f --show ext4.img > loopdev && mount \"$(cat loopdev)\" mnt && "
		 "mkdir mnt/state mnt/run", dir);
	if (system(cmd)) {
		printf("agent_bench: no loop device or mkfs.ext4: ext4 not measured\n");
		return 0;
	}
	snprintf(path, sizeof(path), "%s/loopdev", dir);
	f = fopen(path, "r");
	if (!f || !fgets(dev, sizeof(dev), f))
		dev[0] = 0;
	if (f)
		fclose(f);
	dev[strcspn(dev, "\n")] = 0;
	snprintf(state, sizeof(state), "%s/mnt/state", dir);
	snprintf(run, sizeof(run), "%s/mnt/run", dir);
	slot = ext4_kib_per_write(state, run, strrchr(dev, '/') ? strrchr(dev, '/') + 1 : dev, false);
	log = ext4_kib_per_write(state, run, strrchr(dev, '/') ? strrchr(dev, '/') + 1 : dev, true);
	snprintf(cmd, sizeof(cmd), "umount '%s/mnt' && losetup -d '%s'", dir, dev);
	if (system(cmd))
		return -1;
	if (slot < 0 || log < 0)
		return -1;
	info("ext4: device KiB per durable snapshot", slot, "KiB");
	info("ext4: device KiB per interval commit", log, "KiB");
	info("ext4: device bytes per day at the defaults",
	     ((double)day.saves * slot + (double)day.commits * log) * 1024, "bytes");
	return 0;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/agent_bench.XXXXXX";
	bool quick = false, ext4 = false;
	pid_t bus;
	char cmd[128];

	if (argc > 1 && !strcmp(argv[1], "--meterd"))
		return meterd_main(argc - 1, argv + 1);
	for (int i = 1; i < argc; i++) {
		quick |= !strcmp(argv[i], "--quick");
		ext4 |= !strcmp(argv[i], "--ext4");
	}
	if (!mkdtemp(dir))
		return 1;
	if (simulate_day(dir))
		return 1;
	if (ext4 && measure_ext4(dir))
		failures++;
	snprintf(cmd, sizeof(cmd), "rm -f '%s'/meterd.*", dir);
	if (system(cmd))
		return 1;
	write_daemon_files(dir);
	bus = privbus_start(dir);
	if (bus < 0) {
		printf("agent_bench: no dbus-daemon: daemon metrics not measured\n");
	} else {
		if (measure_rss(dir))
			failures++;
		if (!quick && measure_cpu(dir))
			failures++;
		privbus_stop(bus, SIGTERM);
	}
	if (!getenv("AGENT_BENCH_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd))
			return 1;
	} else {
		printf("agent_bench: kept %s\n", dir);
	}
	printf("agent_bench: %s\n", failures ? "FAILED" : "all targets met");
	return failures ? 1 : 0;
}
