// SPDX-License-Identifier: GPL-2.0
/*
 * gridmeter-setup's modem check (agent/setup/modem.c) against the
 * simulated SIM900 (tests/sim900/sim900sim.c, the code of the sim900sim
 * program) on a pty: a healthy modem passes AT, SIM, signal and network
 * with the figures it reports; a SIM that wants its PIN, a weak signal, a
 * modem that does not answer, and a registration that takes a while (polled
 * until it comes, or reported searching when it does not in time).
 */
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "setup.h"
#include "sim900sim.h"

FIXTURE(modem) {
	int tty;		/* the slave, kept open and raw */
	int ctl;		/* the simulator's control */
	pid_t sim;
	struct setup s;
	FILE *out;
	char *text;
	size_t len;
};

FIXTURE_SETUP(modem)
{
	struct termios t;
	int master;

	memset(&self->s, 0, sizeof(self->s));
	ASSERT_EQ(0, openpty(&master, &self->tty, NULL, NULL, NULL));
	tcgetattr(self->tty, &t);
	cfmakeraw(&t);
	tcsetattr(self->tty, TCSANOW, &t);
	self->sim = sim900sim_spawn(master, -1, &self->ctl);
	ASSERT_LE(0, self->sim);
	self->s.cfg = calloc(1, sizeof(*self->s.cfg));
	ASSERT_NE(NULL, self->s.cfg);
	config_defaults(self->s.cfg);
	self->s.cfg->modem = true;
	snprintf(self->s.cfg->modem_device, sizeof(self->s.cfg->modem_device), "%s", ttyname(self->tty));
	self->s.cfg->modem_baud = 115200;
	self->s.o.modem_timeout_s = 6;
	self->out = open_memstream(&self->text, &self->len);
	prompt_init(&self->s.p, stdin, self->out, true);
	report_init(&self->s.rep, &self->s.p);
}

FIXTURE_TEARDOWN(modem)
{
	kill(self->sim, SIGKILL);
	waitpid(self->sim, NULL, 0);
	close(self->ctl);
	close(self->tty);
	fclose(self->out);
	free(self->text);
	free(self->s.cfg);
}

static void ctl(int fd, const char *cmd)
{
	char c;

	if (write(fd, cmd, strlen(cmd)) < 0 || write(fd, "\n", 1) < 0)
		return;
	while (read(fd, &c, 1) == 1 && c != '\n')
		;
}

/* The check called name: its status, and its text in text. */
static int result(const struct setup *s, const char *name, const char **text)
{
	for (size_t k = 0; k < s->rep.n; k++)
		if (!strcmp(s->rep.c[k].name, name)) {
			*text = s->rep.c[k].text;
			return s->rep.c[k].status;
		}
	*text = "(none)";
	return -1;
}

TEST_F(modem, healthy_modem_passes_with_its_figures)
{
	const char *t;

	ctl(self->ctl, "csq 21");
	ASSERT_EQ(0, modem_check(&self->s));
	EXPECT_EQ(CHECK_PASS, result(&self->s, "modem-at", &t)) TH_LOG("%s", t);
	EXPECT_EQ(CHECK_PASS, result(&self->s, "modem-sim", &t)) TH_LOG("%s", t);
	EXPECT_NE(NULL, strstr(t, "+CPIN: READY"));
	EXPECT_EQ(CHECK_PASS, result(&self->s, "modem-signal", &t)) TH_LOG("%s", t);
	/* dBm = -113 + 2 * rssi */
	EXPECT_NE(NULL, strstr(t, "21 (-71 dBm)")) TH_LOG("%s", t);
	EXPECT_EQ(CHECK_PASS, result(&self->s, "modem-network", &t)) TH_LOG("%s", t);
	EXPECT_NE(NULL, strstr(t, "registered, home")) TH_LOG("%s", t);
	EXPECT_TRUE(report_passed(&self->s.rep));
}

TEST_F(modem, sim_pin_and_weak_signal_fail)
{
	const char *t;

	ctl(self->ctl, "pin SIM PIN");
	ctl(self->ctl, "csq 3");
	ASSERT_EQ(0, modem_check(&self->s));
	EXPECT_EQ(CHECK_PASS, result(&self->s, "modem-at", &t));
	EXPECT_EQ(CHECK_FAIL, result(&self->s, "modem-sim", &t));
	EXPECT_NE(NULL, strstr(t, "SIM PIN")) TH_LOG("%s", t);
	EXPECT_EQ(CHECK_FAIL, result(&self->s, "modem-signal", &t));
	EXPECT_NE(NULL, strstr(t, "too weak")) TH_LOG("%s", t);
	EXPECT_FALSE(report_passed(&self->s.rep));
}

TEST_F(modem, registration_polled_until_it_comes)
{
	const char *t;

	ctl(self->ctl, "reg_delay 3000");
	ASSERT_EQ(0, modem_check(&self->s));
	EXPECT_EQ(CHECK_PASS, result(&self->s, "modem-network", &t)) TH_LOG("%s", t);
}

TEST_F(modem, registration_not_in_time)
{
	const char *t;

	self->s.o.modem_timeout_s = 2;
	ctl(self->ctl, "reg_delay 60000");
	ASSERT_EQ(0, modem_check(&self->s));
	EXPECT_EQ(CHECK_FAIL, result(&self->s, "modem-network", &t));
	EXPECT_NE(NULL, strstr(t, "+CREG: 0,2: searching")) TH_LOG("%s", t);
}

TEST_F(modem, silent_modem_fails_after_an_escape)
{
	const char *t;

	ctl(self->ctl, "mute AT 10");
	ASSERT_EQ(0, modem_check(&self->s));
	EXPECT_EQ(CHECK_FAIL, result(&self->s, "modem-at", &t));
	EXPECT_NE(NULL, strstr(t, "no answer to AT")) TH_LOG("%s", t);
	EXPECT_EQ(-1, result(&self->s, "modem-sim", &t));
}

TEST_F(modem, answers_after_the_escape)
{
	const char *t;

	/* two silent ATs (a modem left in transparent mode), then the "+++" */
	ctl(self->ctl, "mute AT 2");
	ASSERT_EQ(0, modem_check(&self->s));
	EXPECT_EQ(CHECK_PASS, result(&self->s, "modem-at", &t)) TH_LOG("%s", t);
	EXPECT_EQ(CHECK_PASS, result(&self->s, "modem-network", &t)) TH_LOG("%s", t);
}

TEST_F(modem, not_configured_is_skipped)
{
	const char *t;

	self->s.cfg->modem = false;
	ASSERT_EQ(0, modem_check(&self->s));
	EXPECT_EQ(CHECK_SKIP, result(&self->s, "modem", &t));
	EXPECT_NE(NULL, strstr(t, "not configured")) TH_LOG("%s", t);
}

TEST_HARNESS_MAIN
