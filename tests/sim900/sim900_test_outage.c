// SPDX-License-Identifier: GPL-2.0
/*
 * Hours of trouble in simulated time: the meter's SIM900 state machine
 * (agent/uplink/sim900.c, production timings) against the simulated SIM900
 * (tests/sim900/sim900sim.c) in the same process, joined by a socketpair,
 * one clock for both. Each scenario reports attach attempts (AT+CIICR and
 * AT+CIPSTART the modem received), PWRKEY pulses and journal lines (raw,
 * and through the journal rate limiter meterd uses, agent/core/log_limit.c)
 * and checks them against bounds computed from the back-off and power-cycle
 * policy in the configuration:
 *
 *   - the town server refuses TCP for an hour (its port is closed);
 *   - the modem is dead for an hour (nothing answers, pulses do nothing);
 *   - the town accepts TCP but never answers (the owner calls link down);
 *   - a link that worked for retry_reset_ms starts the back-off again.
 *
 * Jitter comes from the machine's seeded generator: every run is the same.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "log_limit.h"
#include "sim900.h"
#include "sim900sim.h"

#define HOUR_MS		3600000LL
#define MAX_KINDS	256
#define MAX_PULSES	4096

struct rig {
	int64_t now;
	int mfd, sfd;			/* socketpair: the meter's tty, the modem's */
	int town;			/* the town's port: bound, and listening or not */
	bool dead;			/* the modem ignores its PWRKEY (no power) */
	struct sim900sim sim;
	struct sim900 m;
	struct sim900_config cfg;
	struct log_limit lim;		/* the journal, as meterd writes it */
	unsigned long raw_lines, journal_lines;
	unsigned long commands;		/* command lines the machine wrote */
	int64_t setup_at;		/* first entry into setup since cleared (0: none) */
	int64_t brownout_ms;		/* > 0: the modem powers down this long after power-up */
	int64_t brownout_at;		/* when it will (0: not powered by a pulse) */
	char kinds[MAX_KINDS][96];	/* distinct lines without their digits */
	unsigned int nkinds;
	int64_t pulse_at[MAX_PULSES];
	unsigned int pulses;
	bool verbose;
};

static int64_t sim_clock(void *ctx)
{
	return ((struct rig *)ctx)->now;
}

static long w_tty(void *ctx, const void *buf, size_t len)
{
	struct rig *r = ctx;

	for (size_t i = 0; i < len; i++)
		r->commands += ((const char *)buf)[i] == '\r';
	return write(r->mfd, buf, len);
}

static void pwrkey(void *ctx, bool on)
{
	struct rig *r = ctx;
	char rep[64];

	if (on)
		return;
	/* the modem sees the press when the key is released */
	if (r->pulses < MAX_PULSES)
		r->pulse_at[r->pulses] = r->now;
	r->pulses++;
	if (!r->dead)
		sim900sim_control(&r->sim, "pwrkey", rep, sizeof(rep));
	if (r->brownout_ms && r->sim.powered)
		r->brownout_at = r->now + r->brownout_ms;
}

/* A weak supply: the modem browns out under its first transmit burst. */
static void brownout(struct rig *r)
{
	char rep[64];

	if (!r->brownout_at || r->now < r->brownout_at)
		return;
	r->brownout_at = 0;
	sim900sim_control(&r->sim, "off", rep, sizeof(rep));
	sim900sim_control(&r->sim, "urc UNDER-VOLTAGE POWER DOWN", rep, sizeof(rep));
}

/* The test's own idea of "the same line": the text without its digits. */
static void note_kind(struct rig *r, const char *msg)
{
	char k[96];
	size_t n = 0;

	for (const char *p = msg; *p && n + 1 < sizeof(k); p++)
		if (*p < '0' || *p > '9')
			k[n++] = *p;
	k[n] = '\0';
	for (unsigned int i = 0; i < r->nkinds; i++)
		if (!strcmp(r->kinds[i], k))
			return;
	if (r->nkinds < MAX_KINDS)
		strcpy(r->kinds[r->nkinds++], k);
}

static void logmsg(void *ctx, const char *msg)
{
	struct rig *r = ctx;
	const char *line;
	int level;

	r->raw_lines++;
	note_kind(r, msg);
	log_limit_feed(&r->lim, 6, msg, r->now);
	while ((line = log_limit_next(&r->lim, &level))) {
		r->journal_lines++;
		if (r->verbose)
			fprintf(stderr, "# %7.1f s  %s\n", (double)r->now / 1000, line);
	}
}

static void changed(void *ctx)
{
	struct rig *r = ctx;

	if (r->m.state == SIM900_SETUP && !r->setup_at)
		r->setup_at = r->now;
}

static const struct sim900_ops ops = {
	.write = w_tty, .pwrkey = pwrkey, .changed = changed, .log = logmsg,
};

static int rig_setup(struct rig *r, bool town_listens)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	char err[128];
	int sv[2];

	memset(r, 0, sizeof(*r));
	r->verbose = getenv("SIM900_TEST_VERBOSE") != NULL;
	r->now = 1000000;	/* any start: nothing may depend on it */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv))
		return -1;
	r->mfd = sv[0];
	r->sfd = sv[1];
	/* the town: a bound port that refuses (no listen) or accepts and stays silent */
	r->town = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->town < 0 || bind(r->town, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(r->town, (struct sockaddr *)&sa, &sl) ||
	    (town_listens && listen(r->town, 64)))
		return -1;
	sim900sim_init(&r->sim, r->sfd, 1000);
	r->sim.clock = sim_clock;
	r->sim.clock_ctx = r;
	/* production timings and policy */
	sim900_config_defaults(&r->cfg);
	if (sim900_config_set(&r->cfg, "apn", "gridmeter.example", err, sizeof(err)))
		return -1;
	snprintf(r->cfg.host, sizeof(r->cfg.host), "127.0.0.1");
	r->cfg.port = ntohs(sa.sin_port);
	return 0;
}

static void rig_init_machine(struct rig *r, uint64_t seed)
{
	sim900_init(&r->m, &r->cfg, &ops, r);
	sim900_seed(&r->m, seed);
}

static void rig_teardown(struct rig *r)
{
	close(r->mfd);
	close(r->sfd);
	close(r->town);
}

/* Move bytes both ways and fire what is due, until nothing moves at r->now. */
static void settle(struct rig *r)
{
	bool moved = true;

	while (moved) {
		char buf[1024];
		ssize_t k;

		moved = false;
		brownout(r);
		sim900sim_due(&r->sim);
		k = read(r->mfd, buf, sizeof(buf));
		if (k > 0) {
			sim900_input(&r->m, buf, (size_t)k, r->now);
			moved = true;
		}
		sim900_tick(&r->m, r->now);
		k = read(r->sfd, buf, sizeof(buf));
		if (k > 0) {
			sim900sim_input(&r->sim, buf, (size_t)k);
			moved = true;
		}
	}
}

/* Run until `until` (simulated ms), or until the machine reaches state stop. */
static void run_until(struct rig *r, int64_t until, int stop)
{
	while (r->now < until) {
		int64_t next;

		settle(r);
		if ((int)r->m.state == stop)
			return;
		next = sim900_deadline(&r->m);
		if (sim900sim_next_event(&r->sim) < next)
			next = sim900sim_next_event(&r->sim);
		if (r->brownout_at && r->brownout_at < next)
			next = r->brownout_at;
		r->now = next <= r->now ? r->now + 1 : next > until ? until : next;
	}
	settle(r);
}

/* ---- bounds from the policy --------------------------------------------- */

/* The n-th delay before jitter: min(cap, base x 2^n). */
static int64_t backoff(const struct sim900_config *c, unsigned int n)
{
	int64_t d = c->retry_delay_ms;

	while (n-- && d < c->retry_max_ms)
		d *= 2;
	return d < c->retry_max_ms ? d : c->retry_max_ms;
}

/*
 * Most attempts in T: the first at once, each next one after at least half
 * the delay its failure earned (jitter >= 0.5).
 */
static unsigned long max_attempts(const struct sim900_config *c, int64_t T)
{
	unsigned long n = 1;
	int64_t t = 0;

	for (unsigned int k = 0;; k++) {
		t += backoff(c, k) / 2;
		if (t > T)
			return n;
		n++;
	}
}

/*
 * Fewest attempts in T: each delay at most 1.5 times, each attempt taking
 * at most `attempt_ms`, the first after `start_ms`.
 */
static unsigned long min_attempts(const struct sim900_config *c, int64_t T, int64_t start_ms,
				  int64_t attempt_ms)
{
	unsigned long n = 0;
	int64_t t = start_ms + attempt_ms;

	for (unsigned int k = 0; t <= T; k++) {
		n++;
		t += backoff(c, k) * 3 / 2 + attempt_ms;
	}
	return n;
}

/* Most power cycles in T: interval apart, per_hour in any hour. */
static unsigned long max_cycles(const struct sim900_config *c, int64_t T)
{
	unsigned long by_interval = c->powercycle_interval_ms ?
		(unsigned long)(T / c->powercycle_interval_ms) + 1 : ~0ul;
	unsigned long by_hour = c->powercycles_per_hour * (unsigned long)((T + HOUR_MS - 1) / HOUR_MS);

	return by_interval < by_hour ? by_interval : by_hour;
}

/* Journal lines: per kind one per window and one summary per window. */
static unsigned long max_journal(const struct rig *r, int64_t T)
{
	return 2ul * r->nkinds * (unsigned long)(T / LOG_LIMIT_WINDOW_MS + 1);
}

/*
 * Pulses closer than a power cycle takes (pulse, boot wait, pulse) belong
 * to one cycle. Counts the cycles and the breaches of the policy: more than
 * two pulses in a cycle, cycles less than powercycle_interval_ms apart,
 * more than powercycles_per_hour in an hour. *first names the first breach.
 */
static unsigned int power_cycles(const struct rig *r, unsigned int *breaches, char *first,
				 size_t n)
{
	int64_t span = r->cfg.pwrkey_ms * 2 + r->cfg.boot_ms + 2000;
	unsigned int cycles = 0, in_cycle = 0, per_hour = r->cfg.powercycles_per_hour;
	static int64_t start[MAX_PULSES];

	*breaches = 0;
	first[0] = '\0';
#define BREACH(...) do { if (!(*breaches)++) snprintf(first, n, __VA_ARGS__); } while (0)
	for (unsigned int i = 0; i < r->pulses && i < MAX_PULSES; i++) {
		int64_t at = r->pulse_at[i];

		if (cycles && at - r->pulse_at[i - 1] <= span) {
			if (++in_cycle > 2)
				BREACH("pulse %u at %lld ms is the %u-th of its cycle", i,
				       (long long)at, in_cycle);
			continue;
		}
		start[cycles++] = at;
		in_cycle = 1;
		if (cycles > 1 && at - start[cycles - 2] < (int64_t)r->cfg.powercycle_interval_ms)
			BREACH("power cycles %u and %u %lld ms apart", cycles - 2, cycles - 1,
			       (long long)(at - start[cycles - 2]));
		if (cycles > per_hour && at - start[cycles - 1 - per_hour] < HOUR_MS)
			BREACH("power cycles %u..%u within an hour", cycles - 1 - per_hour,
			       cycles - 1);
	}
#undef BREACH
	return cycles;
}

/*
 * What every hour must respect: power cycles within the ration, and the
 * journal within two lines per kind per window. Returns the power cycles.
 */
static unsigned int expect_policy(struct __test_metadata *_metadata, const struct rig *r,
				  int64_t T)
{
	unsigned int breaches, cycles;
	char first[160];

	cycles = power_cycles(r, &breaches, first, sizeof(first));
	EXPECT_GE(max_cycles(&r->cfg, T), (unsigned long)cycles);
	EXPECT_GE(2ul * cycles, (unsigned long)r->pulses);
	EXPECT_EQ(0u, breaches) TH_LOG("%s", first);
	EXPECT_GE(max_journal(r, T), r->journal_lines);
	return cycles;
}

/* ---- scenarios ---------------------------------------------------------- */

/* The town server refuses TCP for an hour: CONNECT FAIL every attempt. */
TEST(town_refuses_tcp_for_an_hour)
{
	struct rig *r = calloc(1, sizeof(*r));
	int64_t t0, T = HOUR_MS;
	unsigned long lo, hi;
	unsigned int cycles;

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, rig_setup(r, false));
	rig_init_machine(r, 1);
	t0 = r->now;
	/* as meterd starts: "+++" first, in case a previous run left it connected */
	sim900_start_escape(&r->m, r->now);
	run_until(r, t0 + T, -1);
	cycles = expect_policy(_metadata, r, T);
	hi = max_attempts(&r->cfg, T);
	/* an attempt against this modem takes well under a command timeout; the escape 2 guards */
	lo = min_attempts(&r->cfg, T, 3 * r->cfg.guard_ms + r->cfg.cmd_timeout_ms,
			  r->cfg.cmd_timeout_ms);
	TH_LOG("town refuses TCP, 60 min: %lu GPRS activations, %lu TCP attempts (bound %lu..%lu), "
	       "%u PWRKEY pulses in %u power cycles, %lu journal lines (bound %lu; %lu raw lines, "
	       "%u kinds)", r->sim.ciicrs, r->sim.cipstarts, lo, hi, r->pulses, cycles,
	       r->journal_lines, max_journal(r, T), r->raw_lines, r->nkinds);

	/* every bring-up got as far as AT+CIPSTART, and was refused */
	EXPECT_EQ(0ul, r->sim.connects);
	EXPECT_EQ(r->sim.ciicrs, r->sim.cipstarts);
	EXPECT_GE(hi, r->sim.cipstarts);
	EXPECT_LE(lo, r->sim.cipstarts);
	/* a server that refuses is no reason to power-cycle a modem that works */
	EXPECT_EQ(0u, r->pulses);
	rig_teardown(r);
	free(r);
}

/* Nothing answers for an hour and the PWRKEY does nothing: a dead modem. */
TEST(dead_modem_for_an_hour)
{
	struct rig *r = calloc(1, sizeof(*r));
	int64_t t0, T = HOUR_MS;
	unsigned long hi;
	unsigned int cycles;
	char rep[64];

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, rig_setup(r, false));
	rig_init_machine(r, 2);
	r->dead = true;
	sim900sim_control(&r->sim, "off", rep, sizeof(rep));
	t0 = r->now;
	sim900_start(&r->m, r->now);
	run_until(r, t0 + T, -1);
	cycles = expect_policy(_metadata, r, T);
	/*
	 * "AT" into the void: `retries` per bring-up (one per back-off, one
	 * after each power cycle), and one a second while waiting for a
	 * modem to boot after each pulse.
	 */
	hi = (max_attempts(&r->cfg, T) + max_cycles(&r->cfg, T)) * r->cfg.retries +
	     2 * max_cycles(&r->cfg, T) * (r->cfg.boot_ms / 1000 + 1);
	TH_LOG("dead modem, 60 min: %lu commands (bound %lu), %u PWRKEY pulses in %u power "
	       "cycles (bound %lu), %lu journal lines (bound %lu; %lu raw lines, %u kinds)",
	       r->commands, hi, r->pulses, cycles, max_cycles(&r->cfg, T), r->journal_lines,
	       max_journal(r, T), r->raw_lines, r->nkinds);

	EXPECT_LE(1u, cycles);		/* it does try the key */
	EXPECT_GE(hi, r->commands);
	rig_teardown(r);
	free(r);
}

/*
 * Run, acting as meterd on a connection: once connected, call link down
 * after give_up_ms (no handshake from a silent town) or at `until`.
 */
static void run_owner(struct rig *r, int64_t until, int64_t give_up_ms)
{
	while (r->now < until) {
		int64_t connected;

		run_until(r, until, SIM900_DATA);
		if (r->m.state != SIM900_DATA)
			return;
		connected = r->now;
		r->now = connected + give_up_ms < until ? connected + give_up_ms : until;
		settle(r);
		sim900_link_down(&r->m, r->now);
	}
}

/* The town accepts TCP but never answers: meterd gives up after 60 s each time. */
TEST(silent_town_for_an_hour)
{
	struct rig *r = calloc(1, sizeof(*r));
	int64_t t0, T = HOUR_MS, give_up = 60000;
	unsigned long hi;
	unsigned int cycles;

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, rig_setup(r, true));
	rig_init_machine(r, 3);
	t0 = r->now;
	sim900_start_escape(&r->m, r->now);
	run_owner(r, t0 + T, give_up);
	cycles = expect_policy(_metadata, r, T);
	hi = max_attempts(&r->cfg, T);
	TH_LOG("silent town, 60 min: %lu TCP attempts, %lu connected (bound %lu), %u link losses, "
	       "%u PWRKEY pulses, %lu journal lines (bound %lu; %lu raw lines, %u kinds)",
	       r->sim.cipstarts, r->sim.connects, hi, r->m.link_losses, r->pulses,
	       r->journal_lines, max_journal(r, T), r->raw_lines, r->nkinds);

	EXPECT_LE(2ul, r->sim.connects);
	EXPECT_GE(hi, r->sim.cipstarts);
	EXPECT_EQ(r->sim.connects, (unsigned long)r->m.link_losses + (r->m.state == SIM900_DATA));
	/* never connected for retry_reset_ms: the back-off only grew */
	EXPECT_EQ(r->m.link_losses, r->m.backoff);
	EXPECT_EQ(0u, r->pulses);
	EXPECT_EQ(0u, cycles);
	rig_teardown(r);
	free(r);
}

/*
 * After an outage the back-off is long; a link that works for
 * retry_reset_ms starts it again at retry_delay_ms, one that works less
 * does not.
 */
TEST(backoff_restarts_after_a_working_link)
{
	struct rig *r = calloc(1, sizeof(*r));
	int64_t t0, down, escape_ms;
	uint32_t n;

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, rig_setup(r, false));
	rig_init_machine(r, 4);
	escape_ms = 2 * r->cfg.guard_ms + r->cfg.cmd_timeout_ms;
	t0 = r->now;
	sim900_start_escape(&r->m, r->now);
	/* 20 minutes refused */
	run_until(r, t0 + 20 * 60000, -1);
	n = r->m.backoff;
	EXPECT_LE(5u, n);
	/* the town is back: connected within the longest wait */
	ASSERT_EQ(0, listen(r->town, 64));
	run_until(r, r->now + r->cfg.retry_max_ms * 3 / 2 + escape_ms + 1000, SIM900_DATA);
	ASSERT_EQ(SIM900_DATA, r->m.state);
	EXPECT_EQ(n, r->m.backoff);

	/* up one minute short of retry_reset_ms: the next wait is the next step of the back-off */
	r->now += r->cfg.retry_reset_ms - 60000;
	sim900_link_down(&r->m, r->now);
	down = r->now;
	r->setup_at = 0;
	EXPECT_EQ(n + 1, r->m.backoff);
	run_until(r, down + HOUR_MS, SIM900_DATA);
	ASSERT_EQ(SIM900_DATA, r->m.state);
	EXPECT_LE(backoff(&r->cfg, n) / 2, r->setup_at - down);
	EXPECT_GE(backoff(&r->cfg, n) * 3 / 2 + 1, r->setup_at - down);
	TH_LOG("link up %u s: next attempt after %lld s (back-off step %u: %lld..%lld s)",
	       (r->cfg.retry_reset_ms - 60000) / 1000, (long long)(r->setup_at - down) / 1000, n,
	       (long long)backoff(&r->cfg, n) / 2000, (long long)backoff(&r->cfg, n) * 3 / 2000);

	/* up retry_reset_ms: back to retry_delay_ms */
	r->now += r->cfg.retry_reset_ms;
	sim900_link_down(&r->m, r->now);
	down = r->now;
	r->setup_at = 0;
	EXPECT_EQ(1u, r->m.backoff);
	run_until(r, down + HOUR_MS, SIM900_DATA);
	ASSERT_EQ(SIM900_DATA, r->m.state);
	/* the escape ("+++" with guard times) may take longer than the wait */
	EXPECT_LE(r->cfg.retry_delay_ms / 2, r->setup_at - down);
	EXPECT_GE((r->cfg.retry_delay_ms * 3 / 2 > escape_ms ? r->cfg.retry_delay_ms * 3 / 2 :
		   escape_ms) + 1, r->setup_at - down);
	TH_LOG("link up %u s: next attempt after %lld ms (retry_delay_ms %u x 0.5..1.5)",
	       r->cfg.retry_reset_ms / 1000, (long long)(r->setup_at - down), r->cfg.retry_delay_ms);
	rig_teardown(r);
	free(r);
}

/* The modem browns out 20 s after every power-up, for an hour. */
TEST(brownout_loop_for_an_hour)
{
	struct rig *r = calloc(1, sizeof(*r));
	int64_t t0, T = HOUR_MS;
	unsigned int cycles;

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, rig_setup(r, true));
	rig_init_machine(r, 5);
	r->brownout_ms = 20000;
	r->brownout_at = r->now + r->brownout_ms;	/* powered at the start */
	t0 = r->now;
	sim900_start(&r->m, r->now);
	run_owner(r, t0 + T, 60000);
	cycles = expect_policy(_metadata, r, T);
	TH_LOG("brown-out loop, 60 min: %lu TCP attempts, %u PWRKEY pulses in %u power cycles "
	       "(bound %lu), %lu journal lines (bound %lu; %lu raw lines, %u kinds)",
	       r->sim.cipstarts, r->pulses, cycles, max_cycles(&r->cfg, T), r->journal_lines,
	       max_journal(r, T), r->raw_lines, r->nkinds);

	EXPECT_LE(1u, cycles);
	EXPECT_GE(max_attempts(&r->cfg, T) + max_cycles(&r->cfg, T), r->sim.cipstarts);
	rig_teardown(r);
	free(r);
}

/* The same seed, the same hour; another seed, other times. */
TEST(jitter_is_seeded)
{
	struct rig *r = calloc(3, sizeof(*r));
	int64_t last[3];

	ASSERT_NE(NULL, r);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(0, rig_setup(&r[i], false));
		rig_init_machine(&r[i], i < 2 ? 77 : 78);
		sim900_start_escape(&r[i].m, r[i].now);
		run_until(&r[i], r[i].now + HOUR_MS, -1);
		last[i] = r[i].m.next_attempt;
	}
	EXPECT_EQ(last[0], last[1]);
	EXPECT_EQ(r[0].sim.cipstarts, r[1].sim.cipstarts);
	EXPECT_NE(last[0], last[2]);
	for (int i = 0; i < 3; i++)
		rig_teardown(&r[i]);
	free(r);
}

TEST_HARNESS_MAIN
