// SPDX-License-Identifier: GPL-2.0
/* Dual-source allocation: source order, requests, surplus, shedding and hysteresis. */
#include <string.h>

#include "gm_harness.h"
#include "alloc.h"

static void setup(struct alloc *a)
{
	struct alloc_cfg cfg = { .restore_margin_w = 200, .restore_delay_ms = 60000, .settle_ms = 2000 };

	alloc_init(a, &cfg);
	alloc_add_load(a, "pool_pump", 1500);	/* shed first */
	alloc_add_load(a, "water_heater", 3000);
	alloc_add_load(a, "ev_charger", 7000);
}

TEST(grid_first_then_renewable)
{
	struct alloc a;
	struct alloc_decision d;
	struct alloc_input in = { .now_ms = 0, .grant_w = 4000, .measured_w = 5000,
				  .declared_w = 500, .renew_avail_w = 2000 };

	setup(&a);
	EXPECT_EQ(0, alloc_step(&a, &in, &d));
	EXPECT_EQ(5500, d.demand_w);
	EXPECT_EQ(4000, d.from_grid_w);
	EXPECT_EQ(1500, d.from_renew_w);
	EXPECT_EQ(0, d.deficit_w);
	EXPECT_EQ(0, d.request_w);
	EXPECT_EQ(0, d.surplus_w);
}

TEST(surplus_offered_back_when_grant_exceeds_demand)
{
	struct alloc a;
	struct alloc_decision d;
	struct alloc_input in = { .grant_w = 10000, .measured_w = 2500, .renew_avail_w = 3000 };

	setup(&a);
	alloc_step(&a, &in, &d);
	EXPECT_EQ(2500, d.from_grid_w);
	EXPECT_EQ(0, d.from_renew_w);
	EXPECT_EQ(10000 - 2500, d.surplus_w);
}

TEST(deficit_sheds_in_priority_order_until_covered)
{
	struct alloc a;
	struct alloc_decision d;
	struct alloc_input in = { .now_ms = 1000, .grant_w = 5000, .measured_w = 9000,
				  .renew_avail_w = 1000 };

	setup(&a);
	/* deficit 3000 W: pool pump (1500) is not enough, water heater too */
	EXPECT_EQ(1, alloc_step(&a, &in, &d));
	EXPECT_EQ(3000, d.deficit_w);
	EXPECT_EQ(3000, d.request_w);
	EXPECT_EQ(ALLOC_SHED, d.action);
	EXPECT_EQ(0x3u, d.changed_mask);
	EXPECT_TRUE(a.load[0].shed);
	EXPECT_TRUE(a.load[1].shed);
	EXPECT_FALSE(a.load[2].shed);
	/* the loads go off: measured demand drops by 4500 W; request keeps the shed loads */
	in.now_ms = 2000;
	in.measured_w = 4500;
	EXPECT_EQ(0, alloc_step(&a, &in, &d));
	EXPECT_EQ(0, d.deficit_w);
	EXPECT_EQ(4500 + 4500 - 5000 - 1000, d.request_w);
	EXPECT_EQ(0, d.surplus_w);
}

TEST(settle_time_prevents_overshedding)
{
	struct alloc a;
	struct alloc_decision d;
	struct alloc_input in = { .now_ms = 1000, .grant_w = 5000, .measured_w = 6000 };

	setup(&a);
	EXPECT_EQ(1, alloc_step(&a, &in, &d));	/* sheds the pool pump */
	EXPECT_EQ(0x1u, d.changed_mask);
	in.now_ms = 2000;			/* reading still shows the pump running */
	EXPECT_EQ(0, alloc_step(&a, &in, &d));
	EXPECT_FALSE(a.load[1].shed);
	in.now_ms = 3000;			/* settled, deficit persists: shed more */
	EXPECT_EQ(1, alloc_step(&a, &in, &d));
	EXPECT_EQ(0x2u, d.changed_mask);
}

TEST(restore_last_shed_first_with_hysteresis)
{
	struct alloc a;
	struct alloc_decision d;
	struct alloc_input in = { .now_ms = 0, .grant_w = 3000, .measured_w = 7000 };

	setup(&a);
	ASSERT_EQ(1, alloc_step(&a, &in, &d));	/* deficit 4000: pump + heater */
	ASSERT_EQ(0x3u, d.changed_mask);
	/* grant rises to 6000 with 2500 W measured: headroom 3500 >= 3000 + 200 */
	in.grant_w = 6000;
	in.measured_w = 2500;
	for (int64_t t = 10000; t < 70000; t += 1000) {
		in.now_ms = t;
		ASSERT_EQ(0, alloc_step(&a, &in, &d));
	}
	in.now_ms = 70000;	/* 60 s of continuous headroom since t=10 s */
	EXPECT_EQ(1, alloc_step(&a, &in, &d));
	EXPECT_EQ(ALLOC_RESTORE, d.action);
	EXPECT_EQ(0x2u, d.changed_mask);	/* water heater (shed last) comes back first */
	EXPECT_FALSE(a.load[1].shed);
	EXPECT_TRUE(a.load[0].shed);
	/* heater on: 5500 measured, headroom 500 < 1500 + 200: pump stays off */
	in.measured_w = 5500;
	for (int64_t t = 71000; t < 200000; t += 1000) {
		in.now_ms = t;
		ASSERT_EQ(0, alloc_step(&a, &in, &d));
	}
	EXPECT_TRUE(a.load[0].shed);
}

TEST(headroom_dip_restarts_restore_timer)
{
	struct alloc a;
	struct alloc_decision d;
	struct alloc_input in = { .now_ms = 0, .grant_w = 1000, .measured_w = 2000 };

	setup(&a);
	ASSERT_EQ(1, alloc_step(&a, &in, &d));	/* pump shed */
	in.grant_w = 5000;
	in.measured_w = 500;
	in.now_ms = 10000;
	EXPECT_EQ(0, alloc_step(&a, &in, &d));	/* timer starts */
	in.now_ms = 50000;
	in.measured_w = 4000;			/* headroom 1000 < 1700 */
	EXPECT_EQ(0, alloc_step(&a, &in, &d));
	in.measured_w = 500;
	in.now_ms = 60000;
	EXPECT_EQ(0, alloc_step(&a, &in, &d));	/* restarted at 60 s */
	in.now_ms = 119999;
	EXPECT_EQ(0, alloc_step(&a, &in, &d));
	in.now_ms = 120000;
	EXPECT_EQ(1, alloc_step(&a, &in, &d));
	EXPECT_FALSE(a.load[0].shed);
}

TEST(nothing_left_to_shed_keeps_requesting)
{
	struct alloc a;
	struct alloc_decision d;
	struct alloc_input in = { .now_ms = 0, .grant_w = 0, .measured_w = 20000 };

	setup(&a);
	ASSERT_EQ(1, alloc_step(&a, &in, &d));
	EXPECT_EQ(0x7u, d.changed_mask);
	in.now_ms = 5000;
	in.measured_w = 20000 - 11500;
	EXPECT_EQ(0, alloc_step(&a, &in, &d));
	EXPECT_EQ(8500, d.deficit_w);
	EXPECT_EQ(20000, d.request_w);
	EXPECT_NE(NULL, strstr(d.reason, "nothing left"));
}

TEST_HARNESS_MAIN
