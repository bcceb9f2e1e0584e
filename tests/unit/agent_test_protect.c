// SPDX-License-Identifier: GPL-2.0
/* Protection and remote-disconnect state machines. */
#include <errno.h>

#include "gm_harness.h"
#include "protect.h"

static const struct protect_cfg cfg = {
	.reclose_delay_ms = 30000, .lockout_trips = 3, .lockout_window_ms = 600000,
};

TEST(fault_opens_relay_once)
{
	struct protect p;

	protect_init(&p, &cfg);
	ASSERT_TRUE(protect_relay_closed(&p));
	EXPECT_TRUE(protect_fault(&p, FAULT_OVERVOLTAGE, 1000));
	EXPECT_FALSE(protect_relay_closed(&p));
	EXPECT_EQ(PROT_TRIPPED, p.state);
	/* further events of the same episode do not count as trips */
	EXPECT_FALSE(protect_fault(&p, FAULT_OVERVOLTAGE, 1020));
	EXPECT_EQ(1u, p.total_trips);
	EXPECT_FALSE(protect_fault(&p, 0, 1040));
}

TEST(reclose_after_voltage_normal_for_delay)
{
	struct protect p;

	protect_init(&p, &cfg);
	protect_fault(&p, FAULT_UNDERVOLTAGE, 0);
	EXPECT_FALSE(protect_tick(&p, false, 1000));
	EXPECT_FALSE(protect_tick(&p, true, 2000));	/* normal since 2 s */
	EXPECT_FALSE(protect_tick(&p, true, 31999));
	EXPECT_FALSE(protect_tick(&p, false, 20000 + 2000));	/* dip: restart */
	EXPECT_FALSE(protect_tick(&p, true, 40000));
	EXPECT_FALSE(protect_tick(&p, true, 69999));
	EXPECT_TRUE(protect_tick(&p, true, 70000));
	EXPECT_TRUE(protect_relay_closed(&p));
}

TEST(lockout_after_n_trips_in_window)
{
	struct protect p;
	int64_t t = 0;

	protect_init(&p, &cfg);
	for (int i = 0; i < 2; i++) {
		protect_fault(&p, FAULT_OVERCURRENT, t);
		protect_tick(&p, true, t + 1);
		ASSERT_TRUE(protect_tick(&p, true, t + 1 + 30000));
		t += 100000;
	}
	/* third trip at 200 s, first at 0: within 600 s */
	protect_fault(&p, FAULT_OVERCURRENT, t);
	EXPECT_EQ(PROT_LOCKOUT, p.state);
	EXPECT_FALSE(protect_tick(&p, true, t + 1));
	EXPECT_FALSE(protect_tick(&p, true, t + 10000000));
	EXPECT_FALSE(protect_relay_closed(&p));
	/* only clearing it helps; then the normal reclose rule */
	EXPECT_EQ(0, protect_clear_lockout(&p, t + 10000001));
	EXPECT_EQ(PROT_TRIPPED, p.state);
	EXPECT_FALSE(protect_tick(&p, true, t + 10000002));
	EXPECT_TRUE(protect_tick(&p, true, t + 10000002 + 30000));
	EXPECT_EQ(-EALREADY, protect_clear_lockout(&p, t + 20000000));
}

TEST(trips_spread_beyond_window_do_not_lock_out)
{
	struct protect p;
	int64_t t = 0;

	protect_init(&p, &cfg);
	for (int i = 0; i < 10; i++) {
		protect_fault(&p, FAULT_OVERVOLTAGE, t);
		ASSERT_EQ(PROT_TRIPPED, p.state);
		protect_tick(&p, true, t + 1);
		ASSERT_TRUE(protect_tick(&p, true, t + 1 + 30000));
		t += 300001;	/* three trips span 600002 ms > window */
	}
	EXPECT_EQ(10u, p.total_trips);
}

TEST(remote_disconnect_needs_arm_and_local_confirm)
{
	struct protect p;

	protect_init(&p, &cfg);
	EXPECT_EQ(-EPERM, protect_confirm(&p));
	EXPECT_EQ(-EALREADY, protect_arm(&p));
	EXPECT_EQ(0, protect_disconnect(&p));
	EXPECT_FALSE(protect_relay_closed(&p));
	EXPECT_EQ(-EALREADY, protect_disconnect(&p));
	EXPECT_EQ(-EPERM, protect_confirm(&p));		/* not armed yet */
	EXPECT_EQ(0, protect_arm(&p));
	EXPECT_FALSE(protect_relay_closed(&p));		/* arming alone never closes */
	EXPECT_EQ(REMOTE_ARMED, p.remote);
	EXPECT_EQ(0, protect_confirm(&p));
	EXPECT_TRUE(protect_relay_closed(&p));
}

TEST(remote_and_protection_are_independent)
{
	struct protect p;

	protect_init(&p, &cfg);
	protect_disconnect(&p);
	protect_fault(&p, FAULT_OVERVOLTAGE, 0);	/* trips while disconnected */
	EXPECT_EQ(PROT_TRIPPED, p.state);
	protect_tick(&p, true, 1);
	EXPECT_FALSE(protect_tick(&p, true, 40000));	/* reclosed protection, still disconnected */
	EXPECT_EQ(PROT_NORMAL, p.state);
	EXPECT_FALSE(protect_relay_closed(&p));
	protect_arm(&p);
	protect_fault(&p, FAULT_UNDERVOLTAGE, 50000);
	EXPECT_EQ(0, protect_confirm(&p));		/* confirmed, but protection holds it open */
	EXPECT_FALSE(protect_relay_closed(&p));
	protect_tick(&p, true, 50001);
	EXPECT_TRUE(protect_tick(&p, true, 80001));
	EXPECT_TRUE(protect_relay_closed(&p));
}

TEST_HARNESS_MAIN
