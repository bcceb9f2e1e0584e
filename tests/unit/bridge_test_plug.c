// SPDX-License-Identifier: GPL-2.0
/*
 * The bridge's per-plug rules (agent/bridge/plug_ctl.c) in simulated time:
 * when the wanted state is published, when meterd is told, when a silent
 * plug is asked for Status 10 and then declared unreachable.
 */
#include <stdint.h>

#include "gm_harness.h"
#include "plug_ctl.h"

#define T_S	10	/* telemetry period of the plug under test */

static struct tas_report rep(unsigned have, bool on, int64_t power_mw)
{
	struct tas_report r = { .have = have, .on = on, .power_mw = power_mw };

	if (have & TAS_HAVE_ONLINE)
		r.online = on;
	return r;
}

TEST(first_state_makes_reachable_and_asserts_wanted)
{
	struct plug_ctl p;
	struct tas_report r;

	plug_init(&p, T_S, 0);
	EXPECT_EQ(PLUG_SEND_WANTED, plug_on_wanted(&p, true, 0));
	EXPECT_TRUE(plug_take_wanted(&p, 0));
	EXPECT_EQ(0u, plug_on_wanted(&p, true, 10));	/* same: nothing */
	/* A SENSOR alone does not say the relay state: nothing to tell meterd yet. */
	r = rep(TAS_HAVE_POWER, false, 1234567);
	EXPECT_EQ(0u, plug_on_report(&p, &r, false, 100));
	EXPECT_FALSE(p.reachable);
	/* LWT Online: connected, state still unknown. */
	r = rep(TAS_HAVE_ONLINE, true, 0);
	EXPECT_EQ(0u, plug_on_report(&p, &r, false, 200));
	r = rep(TAS_HAVE_ON, true, 0);
	EXPECT_EQ(PLUG_REPORT | PLUG_SEND_WANTED, plug_on_report(&p, &r, false, 300));
	EXPECT_TRUE(p.reachable);
	EXPECT_EQ((1234567 + 500) / 1000, plug_measured_w(&p));
}

TEST(disagreeing_reports_resend_at_most_once_a_second)
{
	struct plug_ctl p;
	struct tas_report on = rep(TAS_HAVE_ON, true, 0), off = rep(TAS_HAVE_ON, false, 0);
	int64_t t = 0;

	plug_init(&p, T_S, t);
	plug_on_wanted(&p, true, t);
	plug_take_wanted(&p, t);
	EXPECT_EQ(PLUG_REPORT | PLUG_SEND_WANTED, plug_on_report(&p, &on, false, t += 100));
	plug_take_wanted(&p, t);
	EXPECT_EQ(PLUG_SEND_WANTED, plug_on_wanted(&p, false, t += 100));
	EXPECT_FALSE(plug_take_wanted(&p, t));
	/* The plug still says ON (a report on its way before our command). */
	EXPECT_EQ((unsigned)PLUG_REPORT, plug_on_report(&p, &on, false, t + PLUG_RESEND_MS - 1));
	EXPECT_EQ(PLUG_REPORT | PLUG_SEND_WANTED, plug_on_report(&p, &on, false, t + PLUG_RESEND_MS));
	plug_take_wanted(&p, t + PLUG_RESEND_MS);
	EXPECT_EQ((unsigned)PLUG_REPORT, plug_on_report(&p, &off, false, t + 3 * PLUG_RESEND_MS));
}

TEST(silence_asks_status_then_unreachable)
{
	struct plug_ctl p;
	struct tas_report on = rep(TAS_HAVE_ON | TAS_HAVE_POWER, true, 800000);
	int64_t t0 = 5000, tms = T_S * 1000;

	plug_init(&p, T_S, 0);
	plug_on_report(&p, &on, false, t0);
	EXPECT_TRUE(p.reachable);
	EXPECT_EQ(t0 + 2 * tms, plug_next_tick(&p));
	EXPECT_EQ(0u, plug_tick(&p, t0 + 2 * tms - 1));
	EXPECT_EQ((unsigned)PLUG_ASK_STATUS, plug_tick(&p, t0 + 2 * tms));
	EXPECT_EQ(0u, plug_tick(&p, t0 + 2 * tms + 1));	/* asked once only */
	EXPECT_EQ(t0 + 3 * tms, plug_next_tick(&p));
	EXPECT_EQ(0u, plug_tick(&p, t0 + 3 * tms - 1));
	EXPECT_EQ((unsigned)PLUG_REPORT, plug_tick(&p, t0 + 3 * tms));
	EXPECT_FALSE(p.reachable);
	EXPECT_EQ(-1, plug_measured_w(&p));
	EXPECT_EQ(INT64_MAX, plug_next_tick(&p));
	/* It answers later: reachable again, wanted state re-asserted. */
	plug_on_wanted(&p, false, t0 + 3 * tms);
	plug_take_wanted(&p, t0 + 3 * tms);
	EXPECT_EQ(PLUG_REPORT | PLUG_SEND_WANTED, plug_on_report(&p, &on, false, t0 + 4 * tms));
	EXPECT_TRUE(p.reachable);
}

TEST(a_status_answer_keeps_it_reachable)
{
	struct plug_ctl p;
	struct tas_report on = rep(TAS_HAVE_ON, true, 0), sns = rep(TAS_HAVE_POWER, true, 5000);
	int64_t tms = T_S * 1000;

	plug_init(&p, T_S, 0);
	plug_on_report(&p, &on, false, 0);
	EXPECT_EQ((unsigned)PLUG_ASK_STATUS, plug_tick(&p, 2 * tms));
	EXPECT_EQ((unsigned)PLUG_REPORT, plug_on_report(&p, &sns, false, 2 * tms + 300));
	EXPECT_EQ(0u, plug_tick(&p, 3 * tms));
	EXPECT_TRUE(p.reachable);
	EXPECT_EQ(5, plug_measured_w(&p));
}

TEST(offline_and_broker_loss)
{
	struct plug_ctl p;
	struct tas_report on = rep(TAS_HAVE_ON, true, 0), lwt_off = rep(TAS_HAVE_ONLINE, false, 0);

	plug_init(&p, T_S, 0);
	plug_on_wanted(&p, true, 0);
	plug_on_report(&p, &on, false, 10);
	EXPECT_EQ((unsigned)PLUG_REPORT, plug_on_report(&p, &lwt_off, false, 20));
	EXPECT_FALSE(p.reachable);
	EXPECT_EQ(0u, plug_on_report(&p, &lwt_off, true, 30));	/* already known */
	/* A retained relay state is not news of the plug. */
	EXPECT_EQ(0u, plug_on_report(&p, &on, true, 40));
	EXPECT_FALSE(p.reachable);
	plug_on_report(&p, &on, false, 50);
	EXPECT_TRUE(p.reachable);
	EXPECT_EQ((unsigned)PLUG_REPORT, plug_on_lost(&p));
	EXPECT_EQ(0u, plug_on_lost(&p));
	/* Reconnected: the wanted state goes out again; silence counts from now. */
	EXPECT_EQ((unsigned)PLUG_SEND_WANTED, plug_on_connected(&p, 1000000));
	EXPECT_EQ(1000000 + 2 * T_S * 1000, plug_next_tick(&p));
}

TEST_HARNESS_MAIN
