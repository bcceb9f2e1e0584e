// SPDX-License-Identifier: GPL-2.0
/* Dual-source allocation: source order, requests, surplus, shedding and hysteresis. */
#include <errno.h>
#include <string.h>

#include "kselftest_harness.h"
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

/*
 * External switches (smart plugs): a shed counts what the plug really draws,
 * so an idle plug does not stop the next load from being shed.
 */
TEST(idle_plug_frees_only_what_it_draws)
{
	struct alloc a;
	struct alloc_decision d;
	struct alloc_input in = { .now_ms = 0, .grant_w = 4000, .measured_w = 5000 };
	const int32_t idle_w = 3;

	setup(&a);
	ASSERT_EQ(0, alloc_set_report(&a, 0, true, idle_w));
	ASSERT_EQ(1, alloc_step(&a, &in, &d));
	/* deficit 1000 W: pool_pump frees 3 W, so water_heater goes too */
	EXPECT_EQ(in.measured_w - in.grant_w, d.deficit_w);
	EXPECT_EQ(0x3u, d.changed_mask);
	EXPECT_TRUE(a.load[0].shed);
	EXPECT_TRUE(a.load[1].shed);
	EXPECT_FALSE(a.load[2].shed);
	EXPECT_EQ(-EINVAL, alloc_set_report(&a, 3, true, 0));
}

/* A plug that cannot be switched is passed over when shedding and when restoring. */
TEST(unreachable_plug_is_neither_shed_nor_restored)
{
	struct alloc a;
	struct alloc_decision d;
	struct alloc_input in = { .now_ms = 0, .grant_w = 4000, .measured_w = 5000 };

	setup(&a);
	ASSERT_EQ(0, alloc_set_report(&a, 0, false, -1));
	ASSERT_EQ(1, alloc_step(&a, &in, &d));
	EXPECT_EQ(0x2u, d.changed_mask);	/* water_heater, not pool_pump */
	EXPECT_FALSE(a.load[0].shed);

	/* Shed pool_pump too, then lose water_heater: restoring passes over it. */
	ASSERT_EQ(0, alloc_set_report(&a, 0, true, -1));
	in.now_ms = 10000;
	in.measured_w = 5000 - 3000 + 1000;	/* heater off; another 1 kW came on */
	in.grant_w = 1500;
	ASSERT_EQ(1, alloc_step(&a, &in, &d));
	EXPECT_EQ(0x1u, d.changed_mask);
	ASSERT_EQ(0, alloc_set_report(&a, 1, false, -1));
	in.measured_w = 0;
	in.grant_w = 1500 + 200;	/* exactly pool_pump + margin, far from the heater's 3200 */
	in.now_ms = 20000;
	EXPECT_EQ(0, alloc_step(&a, &in, &d));	/* headroom timer starts */
	in.now_ms += 60000;
	ASSERT_EQ(1, alloc_step(&a, &in, &d));
	EXPECT_EQ(ALLOC_RESTORE, d.action);
	EXPECT_EQ(0x1u, d.changed_mask);
	EXPECT_FALSE(a.load[0].shed);
	EXPECT_TRUE(a.load[1].shed);	/* still wanted off: switched when it is back */
}

/*
 * GPIO relays keep today's decisions bit for bit. The reference is the rule
 * as it stood before external switches (a shed frees the nominal load, every
 * load can be switched), written out here; alloc_step runs beside it over a
 * long pseudo-random day of demand, grant and renewable changes. A plug
 * that is reachable and reports exactly its nominal draw must decide the
 * same way too.
 */
struct model {
	bool shed[ALLOC_MAX_LOADS];
	int64_t since, last_shed;
};

static int64_t pos64(int64_t v)
{
	return v > 0 ? v : 0;
}

static uint32_t model_step(struct model *mo, const struct alloc *a, const struct alloc_input *in,
			   enum alloc_action *action)
{
	int64_t demand = pos64(in->measured_w) + pos64(in->declared_w);
	int64_t grant = pos64(in->grant_w), renew = pos64(in->renew_avail_w);
	int64_t grid = demand < grant ? demand : grant;
	int64_t from_renew = demand - grid < renew ? demand - grid : renew;
	int64_t deficit = demand - grid - from_renew, covered = 0;
	uint32_t mask = 0;

	*action = ALLOC_NONE;
	if (deficit > 0) {
		mo->since = -1;
		if (in->now_ms - mo->last_shed < a->cfg.settle_ms)
			return 0;
		for (size_t i = 0; i < a->nloads && covered < deficit; i++) {
			if (mo->shed[i])
				continue;
			mo->shed[i] = true;
			mask |= 1u << i;
			covered += a->load[i].load_w;
		}
		if (mask) {
			mo->last_shed = in->now_ms;
			*action = ALLOC_SHED;
		}
		return mask;
	}
	for (size_t i = a->nloads; i-- > 0;) {
		if (!mo->shed[i])
			continue;
		if (grant + renew - demand < (int64_t)a->load[i].load_w + a->cfg.restore_margin_w) {
			mo->since = -1;
			return 0;
		}
		if (mo->since < 0)
			mo->since = in->now_ms;
		if (in->now_ms - mo->since < a->cfg.restore_delay_ms)
			return 0;
		mo->shed[i] = false;
		mo->since = -1;
		*action = ALLOC_RESTORE;
		return 1u << i;
	}
	mo->since = -1;
	return 0;
}

TEST(gpio_only_decides_as_before_and_a_plug_at_nominal_draw_alike)
{
	struct alloc gpio, plug;
	struct alloc_decision dg, dp;
	struct alloc_input in = { .now_ms = 0, .grant_w = 6000, .measured_w = 3000, .renew_avail_w = 0 };
	struct model mo = { .since = -1, .last_shed = INT64_MIN / 2 };
	uint32_t seed = 12345, sheds = 0, restores = 0;

	setup(&gpio);
	setup(&plug);
	for (size_t i = 0; i < plug.nloads; i++)
		ASSERT_EQ(0, alloc_set_report(&plug, i, true, (int32_t)plug.load[i].load_w));
	for (int step = 0; step < 86400; step++) {
		enum alloc_action want;
		uint32_t mask;

		/* xorshift32; about one change a minute, the restore delay's scale */
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		switch (seed % 240) {
		case 0: in.measured_w = (seed >> 8) % 14000; break;
		case 1: in.grant_w = (seed >> 8) % 12000; break;
		case 2: in.renew_avail_w = (seed >> 8) % 4000; break;
		case 3: in.declared_w = (seed >> 8) % 2 ? (seed >> 9) % 3000 : 0; break;
		default: break;
		}
		in.now_ms += 1000;
		mask = model_step(&mo, &gpio, &in, &want);
		alloc_step(&gpio, &in, &dg);
		alloc_step(&plug, &in, &dp);
		ASSERT_EQ(mask, dg.changed_mask) TH_LOG("step %d", step);
		ASSERT_EQ(want, dg.action) TH_LOG("step %d", step);
		ASSERT_EQ(0, memcmp(&dg, &dp, sizeof(dg))) TH_LOG("step %d: %s / %s", step, dg.reason, dp.reason);
		for (size_t i = 0; i < gpio.nloads; i++)
			ASSERT_EQ(mo.shed[i], gpio.load[i].shed);
		sheds += want == ALLOC_SHED;
		restores += want == ALLOC_RESTORE;
	}
	/* the day exercised both directions many times */
	EXPECT_LT(50u, sheds);
	EXPECT_LT(50u, restores);
}

TEST_HARNESS_MAIN
