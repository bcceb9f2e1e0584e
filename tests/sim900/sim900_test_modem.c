// SPDX-License-Identifier: GPL-2.0
/*
 * The meter's SIM900 state machine (agent/uplink/sim900.c) against the
 * simulated SIM900 (tests/sim900/sim900sim.c) over a pty, with transparent
 * mode bridged to TCP servers on 127.0.0.1: bring-up, every failure the
 * simulator can inject, link loss and escape, power-key recovery, and a
 * meter reading through the modem to townd and its acknowledgement back.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "sim900.h"
#include "sim900sim.h"
#include "simmeter.h"
#include "townd_config.h"
#include "townd_core.h"
#include "townd_net.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct rig {
	int tty;		/* the meter's side of the pty */
	int ctl;		/* control of the simulator */
	pid_t sim;
	int lfd;		/* the "town server" for bridging tests */
	uint16_t port;
	struct sim900 m;
	struct sim900_config cfg;
	int pwrkey_presses;
	int states_seen[16];
};

static long w_tty(void *ctx, const void *buf, size_t len)
{
	struct rig *r = ctx;

	return write(r->tty, buf, len);
}

static char *ctl(struct rig *r, const char *cmd, char *reply, size_t n)
{
	size_t got = 0;

	if (write(r->ctl, cmd, strlen(cmd)) < 0 || write(r->ctl, "\n", 1) < 0)
		return NULL;
	while (got + 1 < n) {
		ssize_t k = read(r->ctl, reply + got, 1);

		if (k <= 0)
			return NULL;
		if (reply[got] == '\n')
			break;
		got++;
	}
	reply[got] = '\0';
	return reply;
}

static void pwrkey(void *ctx, bool on)
{
	struct rig *r = ctx;
	char rep[64];

	/* the GPIO: the simulator sees the press when it is released */
	if (!on) {
		r->pwrkey_presses++;
		ctl(r, "pwrkey", rep, sizeof(rep));
	}
}

static void changed(void *ctx)
{
	struct rig *r = ctx;

	r->states_seen[r->m.state]++;
}

static void logmsg(void *ctx, const char *msg)
{
	(void)ctx;
	if (getenv("SIM900_TEST_VERBOSE"))
		fprintf(stderr, "# %s\n", msg);
}

static const struct sim900_ops ops = {
	.write = w_tty, .pwrkey = pwrkey, .changed = changed, .log = logmsg,
};

static int rig_setup(struct rig *r)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct termios t;
	int master;
	char err[128];

	memset(r, 0, sizeof(*r));
	if (openpty(&master, &r->tty, NULL, NULL, NULL))
		return -1;
	tcgetattr(r->tty, &t);
	cfmakeraw(&t);
	tcsetattr(r->tty, TCSANOW, &t);
	fcntl(r->tty, F_SETFL, O_NONBLOCK);
	r->sim = sim900sim_spawn(master, r->tty, &r->ctl);
	if (r->sim < 0)
		return -1;
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(r->lfd, 8) || getsockname(r->lfd, (struct sockaddr *)&sa, &sl))
		return -1;
	r->port = ntohs(sa.sin_port);
	sim900_config_defaults(&r->cfg);
	if (sim900_config_set(&r->cfg, "apn", "gridmeter.example", err, sizeof(err)) ||
	    sim900_config_set(&r->cfg, "user", "meter", err, sizeof(err)) ||
	    sim900_config_set(&r->cfg, "password", "s3cret", err, sizeof(err)))
		return -1;
	snprintf(r->cfg.host, sizeof(r->cfg.host), "127.0.0.1");
	r->cfg.port = r->port;
	/* short timings for the test; the same logic as the defaults */
	r->cfg.cmd_timeout_ms = 700;
	r->cfg.ciicr_timeout_ms = 1500;
	r->cfg.connect_timeout_ms = 1500;
	r->cfg.reg_timeout_ms = 4000;
	r->cfg.reg_poll_ms = 100;
	r->cfg.guard_ms = 100;
	r->cfg.retry_delay_ms = 100;
	r->cfg.pwrkey_ms = 50;
	r->cfg.boot_ms = 1500;
	sim900_init(&r->m, &r->cfg, &ops, r);
	return 0;
}

static void rig_teardown(struct rig *r)
{
	if (r->ctl > 0)
		close(r->ctl);
	if (r->sim > 0) {
		kill(r->sim, SIGTERM);
		waitpid(r->sim, NULL, 0);
	}
	if (r->tty > 0)
		close(r->tty);
	if (r->lfd > 0)
		close(r->lfd);
}

/* Run the state machine until it reaches state (or timeout): 0 or -1. */
static int drive(struct rig *r, enum sim900_state want, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (r->m.state != want) {
		int64_t now = now_ms(), dl = sim900_deadline(&r->m);
		int wait = (int)(end - now);
		struct pollfd p = { .fd = r->tty, .events = POLLIN };
		char buf[512];

		if (now >= end)
			return -1;
		if (dl != INT64_MAX && dl - now < wait)
			wait = dl - now < 0 ? 0 : (int)(dl - now);
		if (poll(&p, 1, wait) > 0) {
			ssize_t k = read(r->tty, buf, sizeof(buf));

			if (k > 0)
				sim900_input(&r->m, buf, (size_t)k, now_ms());
		}
		sim900_tick(&r->m, now_ms());
	}
	return 0;
}

static int stat_of(struct rig *r, const char *name)
{
	char rep[256], *p;

	if (!ctl(r, "stats", rep, sizeof(rep)))
		return -1;
	p = strstr(rep, name);
	return p ? atoi(p + strlen(name) + 1) : -1;
}

/* Accept the simulator's bridged connection. */
static int accept_bridge(struct rig *r)
{
	struct pollfd p = { .fd = r->lfd, .events = POLLIN };

	if (poll(&p, 1, 2000) != 1)
		return -1;
	return accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
}

static int read_n(int fd, void *buf, size_t n, int timeout_ms)
{
	size_t got = 0;
	int64_t end = now_ms() + timeout_ms;

	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t k;

		if (now_ms() >= end || poll(&p, 1, (int)(end - now_ms())) <= 0)
			return -1;
		k = read(fd, (char *)buf + got, n - got);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = write(fd, (const char *)buf + done, n - done);

		if (k < 0 && errno == EAGAIN) {
			usleep(1000);
			continue;
		}
		if (k <= 0)
			return -1;
		done += (size_t)k;
	}
	return 0;
}

FIXTURE(modem) {
	struct rig r;
};

FIXTURE_SETUP(modem)
{
	ASSERT_EQ(0, rig_setup(&self->r));
}

FIXTURE_TEARDOWN(modem)
{
	rig_teardown(&self->r);
}

TEST_F(modem, bring_up_and_transparent_bridge)
{
	struct rig *r = &self->r;
	uint8_t up[300], down[300], got[300];
	int srv;

	sim900_start(&r->m, now_ms());
	ASSERT_EQ(0, drive(r, SIM900_DATA, 5000));
	EXPECT_EQ(18, r->m.csq);
	EXPECT_EQ(1, r->m.creg);
	EXPECT_EQ(1, stat_of(r, "connects"));
	EXPECT_EQ(0, r->pwrkey_presses);
	srv = accept_bridge(r);
	ASSERT_LE(0, srv);
	/* binary both ways, "+++" inside data without guard times stays data */
	for (size_t i = 0; i < sizeof(up); i++) {
		up[i] = (uint8_t)(i * 7);
		down[i] = (uint8_t)(255 - i);
	}
	memcpy(up + 100, "+++", 3);
	ASSERT_EQ(0, write_all(r->tty, up, sizeof(up)));
	ASSERT_EQ(0, read_n(srv, got, sizeof(up), 2000));
	EXPECT_EQ(0, memcmp(up, got, sizeof(up)));
	ASSERT_EQ(0, write_all(srv, down, sizeof(down)));
	ASSERT_EQ(0, read_n(r->tty, got, sizeof(down), 2000));
	EXPECT_EQ(0, memcmp(down, got, sizeof(down)));
	EXPECT_EQ(0, stat_of(r, "escapes"));
	close(srv);
}

TEST_F(modem, errors_slow_and_missing_answers_and_urcs)
{
	struct rig *r = &self->r;
	char rep[64];
	int srv;

	ASSERT_STREQ("ok", ctl(r, "error CIICR 1", rep, sizeof(rep)));
	ASSERT_STREQ("ok", ctl(r, "cme CPIN 14 1", rep, sizeof(rep)));	/* SIM busy */
	ASSERT_STREQ("ok", ctl(r, "mute CSQ 1", rep, sizeof(rep)));
	ASSERT_STREQ("ok", ctl(r, "error CSTT 2", rep, sizeof(rep)));
	ASSERT_STREQ("ok", ctl(r, "reg_delay 800", rep, sizeof(rep)));	/* +CREG: 0,2 */
	ASSERT_STREQ("ok", ctl(r, "delay 250", rep, sizeof(rep)));	/* slow, in time */
	ASSERT_STREQ("ok", ctl(r, "urc RING", rep, sizeof(rep)));
	ASSERT_STREQ("ok", ctl(r, "urc +CREG: 2", rep, sizeof(rep)));
	sim900_start(&r->m, now_ms());
	ASSERT_EQ(0, drive(r, SIM900_DATA, 15000));
	/* every failure was absorbed by retrying the command, none by a restart */
	EXPECT_EQ(0, r->m.failures);
	EXPECT_EQ(0, r->states_seen[SIM900_WAIT]);
	EXPECT_EQ(0, r->pwrkey_presses);
	srv = accept_bridge(r);
	EXPECT_LE(0, srv);
	close(srv);
}

TEST_F(modem, connect_fail_restarts_without_power_cycle)
{
	struct rig *r = &self->r;
	char rep[64];
	int srv;

	ASSERT_STREQ("ok", ctl(r, "connect_fail 2", rep, sizeof(rep)));
	sim900_start(&r->m, now_ms());
	ASSERT_EQ(0, drive(r, SIM900_DATA, 15000));
	EXPECT_EQ(2, r->states_seen[SIM900_WAIT]);
	EXPECT_EQ(0, r->pwrkey_presses);
	EXPECT_EQ(1, stat_of(r, "connects"));
	srv = accept_bridge(r);
	EXPECT_LE(0, srv);
	close(srv);
}

TEST_F(modem, wrong_apn_fails_until_power_cycle_limit)
{
	struct rig *r = &self->r;
	char rep[64];

	ASSERT_STREQ("ok", ctl(r, "apn other.apn", rep, sizeof(rep)));
	sim900_start(&r->m, now_ms());
	/* three failed bring-ups, then the power key */
	ASSERT_EQ(0, drive(r, SIM900_POWER, 20000));
	EXPECT_EQ(3, r->states_seen[SIM900_WAIT]);
	EXPECT_STREQ("ERROR", r->m.why);
}

/* Healthy connection, but the meter sees no acks: "+++" with guard times. */
TEST_F(modem, link_down_escapes_and_reconnects)
{
	struct rig *r = &self->r;
	int srv, srv2;
	char buf[16];

	sim900_start(&r->m, now_ms());
	ASSERT_EQ(0, drive(r, SIM900_DATA, 5000));
	srv = accept_bridge(r);
	ASSERT_LE(0, srv);
	sim900_link_down(&r->m, now_ms());
	EXPECT_EQ(SIM900_ESCAPE, r->m.state);
	ASSERT_EQ(0, drive(r, SIM900_DATA, 8000));
	EXPECT_EQ(1, stat_of(r, "escapes"));
	EXPECT_EQ(2, stat_of(r, "connects"));
	/* AT+CIPSHUT closed the old connection; the new one works */
	EXPECT_EQ(0, read(srv, buf, sizeof(buf)));
	srv2 = accept_bridge(r);
	ASSERT_LE(0, srv2);
	ASSERT_EQ(0, write_all(r->tty, "abc", 3));
	ASSERT_EQ(0, read_n(srv2, buf, 3, 2000));
	EXPECT_EQ(0, memcmp(buf, "abc", 3));
	close(srv);
	close(srv2);
}

/* The server closes; CLOSED, NO CARRIER, +PDP: DEACT arrive in the data stream. */
TEST_F(modem, closed_nocarrier_pdpdeact_recover)
{
	static const char *const how[] = { "drop", "nocarrier", "pdpdeact" };
	static const char *const urc[] = { "CLOSED", "NO CARRIER", "+PDP: DEACT" };
	struct rig *r = &self->r;

	sim900_start(&r->m, now_ms());
	for (int i = 0; i < 3; i++) {
		char rep[64], buf[64] = "";
		int srv;

		ASSERT_EQ(0, drive(r, SIM900_DATA, 8000));
		srv = accept_bridge(r);
		ASSERT_LE(0, srv);
		ASSERT_STREQ("ok", ctl(r, how[i], rep, sizeof(rep)));
		/* the owner (meterd) sees the text where frames should be */
		ASSERT_EQ(0, read_n(r->tty, buf, strlen(urc[i]) + 4, 2000));
		EXPECT_NE(NULL, strstr(buf, urc[i]));
		sim900_link_down(&r->m, now_ms());
		close(srv);
	}
	ASSERT_EQ(0, drive(r, SIM900_DATA, 8000));
	EXPECT_EQ(4, stat_of(r, "connects"));
	EXPECT_EQ(0, r->pwrkey_presses);
}

/* A hung modem: no answer at all; the power key brings it back. */
TEST_F(modem, hung_modem_is_power_cycled)
{
	struct rig *r = &self->r;
	char rep[64];
	int srv;

	sim900_start(&r->m, now_ms());
	ASSERT_EQ(0, drive(r, SIM900_DATA, 5000));
	srv = accept_bridge(r);
	close(srv);
	ASSERT_STREQ("ok", ctl(r, "hang", rep, sizeof(rep)));
	sim900_link_down(&r->m, now_ms());
	ASSERT_EQ(0, drive(r, SIM900_DATA, 20000));
	/* one power cycle: the first press turned the hung modem off, the second on */
	EXPECT_EQ(2, r->pwrkey_presses);
	EXPECT_EQ(2, stat_of(r, "pwrkeys"));
	EXPECT_EQ(2, (int)r->m.pulses);
	EXPECT_EQ(1, (int)r->m.power_cycles);
	srv = accept_bridge(r);
	EXPECT_LE(0, srv);
	close(srv);
}

TEST_F(modem, sim_pin_is_fatal)
{
	struct rig *r = &self->r;
	char rep[64];

	ASSERT_STREQ("ok", ctl(r, "pin SIM PIN", rep, sizeof(rep)));
	sim900_start(&r->m, now_ms());
	ASSERT_EQ(0, drive(r, SIM900_FATAL, 5000));
	EXPECT_EQ(INT64_MAX, sim900_deadline(&r->m));
	EXPECT_STREQ("SIM: SIM PIN", r->m.why);
}

TEST(config_keys)
{
	struct sim900_config c;
	char err[128];

	sim900_config_defaults(&c);
	EXPECT_EQ(-1, sim900_config_check(&c, err, sizeof(err)));
	EXPECT_STREQ("key 'apn' is required", err);
	EXPECT_EQ(0, sim900_config_set(&c, "apn", "internet", err, sizeof(err)));
	EXPECT_EQ(-1, sim900_config_check(&c, err, sizeof(err)));
	EXPECT_STREQ("key 'server' is required", err);
	EXPECT_EQ(0, sim900_config_set(&c, "server", "town.example.org:7700", err, sizeof(err)));
	EXPECT_STREQ("town.example.org", c.host);
	EXPECT_EQ(7700, c.port);
	EXPECT_EQ(0, sim900_config_check(&c, err, sizeof(err)));
	EXPECT_EQ(-1, sim900_config_set(&c, "apn", "in\"ternet", err, sizeof(err)));
	EXPECT_EQ(-1, sim900_config_set(&c, "server", "host", err, sizeof(err)));
	EXPECT_EQ(-1, sim900_config_set(&c, "server", "host:0", err, sizeof(err)));
	EXPECT_EQ(-1, sim900_config_set(&c, "guard_ms", "5", err, sizeof(err)));
	EXPECT_STREQ("'5' is not 20..2550", err);
	EXPECT_EQ(0, sim900_config_set(&c, "guard_ms", "1000", err, sizeof(err)));
	EXPECT_EQ(-1, sim900_config_set(&c, "baud", "9600", err, sizeof(err)));
	EXPECT_STREQ("unknown key", err);
	/* the back-off and power-cycle policy */
	EXPECT_EQ(5000u, c.retry_delay_ms);
	EXPECT_EQ(600000u, c.retry_max_ms);
	EXPECT_EQ(300000u, c.retry_reset_ms);
	EXPECT_EQ(600000u, c.powercycle_interval_ms);
	EXPECT_EQ(3u, c.powercycles_per_hour);
	EXPECT_EQ(0, sim900_config_set(&c, "retry_max_ms", "120000", err, sizeof(err)));
	EXPECT_EQ(0, sim900_config_set(&c, "retry_reset_ms", "60000", err, sizeof(err)));
	EXPECT_EQ(0, sim900_config_set(&c, "powercycle_interval_ms", "0", err, sizeof(err)));
	EXPECT_EQ(0, sim900_config_set(&c, "powercycles_per_hour", "60", err, sizeof(err)));
	EXPECT_EQ(-1, sim900_config_set(&c, "powercycles_per_hour", "61", err, sizeof(err)));
	EXPECT_STREQ("'61' is not 1..60", err);
	EXPECT_EQ(-1, sim900_config_set(&c, "powercycles_per_hour", "0", err, sizeof(err)));
	EXPECT_EQ(0, sim900_config_check(&c, err, sizeof(err)));
	EXPECT_EQ(0, sim900_config_set(&c, "retry_delay_ms", "200000", err, sizeof(err)));
	EXPECT_EQ(-1, sim900_config_check(&c, err, sizeof(err)));
	EXPECT_STREQ("key 'retry_max_ms': 120000 is below retry_delay_ms (200000)", err);
}

/* Meter A reports through its simulated SIM900 to townd; the ack comes back. */
TEST(reading_through_modem_to_townd)
{
	struct rig r;
	struct townd_config cfg;
	struct gmp_keypair town, meter;
	struct simmeter a;
	struct townd_db db;
	struct sim_rx rx;
	struct sim_ack ack;
	struct gmp_msg g;
	char dir[] = "/tmp/sim900-townd-XXXXXX", err[256], cmd[96];
	uint8_t wire[GM_MAX_WIRE];
	pid_t townd;
	int len, lfd;

	ASSERT_LE(0, sodium_init());
	ASSERT_NE(NULL, mkdtemp(dir));
	ASSERT_EQ(0, rig_setup(&r));
	/* townd takes the rig's listening socket on 127.0.0.1 */
	townd_config_defaults(&cfg);
	snprintf(cfg.database, sizeof(cfg.database), "%s/t.db", dir);
	snprintf(cfg.key_file, sizeof(cfg.key_file), "%s/k", dir);
	gmp_keypair_generate(&town);
	gmp_keypair_generate(&meter);
	ASSERT_EQ(0, townd_key_write(cfg.key_file, &town, err, sizeof(err)));
	ASSERT_EQ(0, tdb_open(&db, cfg.database, 1, err, sizeof(err)));
	ASSERT_EQ(0, tdb_add_meter(&db, 7, meter.pk, "A", 1, err, sizeof(err)));
	tdb_close(&db);
	lfd = r.lfd;
	townd = fork();
	if (townd == 0) {
		close(r.ctl);
		_exit(townd_run(&cfg, &lfd, 1, err, sizeof(err)) ? 1 : 0);
	}
	sim900_start(&r.m, now_ms());
	ASSERT_EQ(0, drive(&r, SIM900_DATA, 5000));
	/* meterd would now attach the line discipline; here the test frames */
	ASSERT_EQ(0, simmeter_init(&a, 7, &meter, town.pk));
	sim_rx_init(&rx);
	fcntl(r.tty, F_SETFL, 0);
	/* gmproto v2: the handshake first */
	len = simmeter_hello(&a, 0, wire, sizeof(wire));
	ASSERT_LT(0, len);
	ASSERT_EQ(0, write_all(r.tty, wire, (size_t)len));
	ASSERT_EQ(1, sim_wait_ack(&a, r.tty, &rx, 5000, &ack));
	ASSERT_TRUE(ack.welcome);
	sim_reading(7, 1, &g);
	len = simmeter_frame(&a, &g, 1, GM_FLAG_ACK_REQ, wire, sizeof(wire));
	ASSERT_LT(0, len);
	ASSERT_EQ(0, write_all(r.tty, wire, (size_t)len));
	ASSERT_EQ(1, sim_wait_ack(&a, r.tty, &rx, 5000, &ack));
	EXPECT_EQ(1, ack.upto);
	kill(townd, SIGTERM);
	waitpid(townd, NULL, 0);
	rig_teardown(&r);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	EXPECT_EQ(0, system(cmd));
}

TEST_HARNESS_MAIN
