// SPDX-License-Identifier: GPL-2.0
/*
 * Detection: silent meters, the meters' alarms and the towns' security
 * counts (det_silent.c, det_alarms.c, det_security.c) against a real
 * PostgreSQL 15, the records fed through maind_pg's ingest hooks as a
 * town's batches, the rules run by mdet_tick at its pace and by
 * mdet_run, an alert closed with mainctl's own command. Expectations come
 * from the thresholds (detect_settings) and the documented classes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "detect_world.h"
#include "mainctl_parts.h"

#define HOUR0		((int64_t)1790000000 / 86400 * 86400 - 3 * 86400)
#define METERS		10

DW_FIXTURE(det)

/* Hours h0..h1 of the town's meters that report then (last[m]: -1 stopped). */
static int hours(struct dworld *w, uint16_t town, int h0, int h1, const int *last)
{
	struct gmp_msg b[METERS * 24];
	size_t n = 0;

	for (int h = h0; h <= h1; h++)
		for (int m = 1; m <= METERS; m++)
			if (last[m] < 0 || h <= last[m])
				b[n++] = dw_hour(m, HOUR0 + h * 3600, 0, 300000 + 1000 * m, 0);
	return dw_send(w, town, b, n);
}

TEST_F(det, silent_meter_raises_route_notice)
{
	struct dworld *w = &self->w;
	struct mdet_settings s;
	int last[METERS + 1], stop4, stop5, end;
	int64_t now = 1000000;

	if (!self->pg)
		SKIP(return, PG_SKIP_WHY);
	ASSERT_EQ(0, mdet_settings_load(&w->p, &s));
	ASSERT_LE(2, s.silent_h);
	/* meter 4 stops silent_h + 2 hours before the end, meter 5 silent_h - 1 */
	end = (int)s.silent_h + 5;
	stop4 = end - (int)s.silent_h - 2;
	stop5 = end - (int)s.silent_h + 1;
	for (int m = 0; m <= METERS; m++)
		last[m] = -1;
	last[4] = stop4;
	last[5] = stop5;
	ASSERT_EQ(0, dw_town(w, 31));
	ASSERT_EQ(0, dw_town(w, 32));
	ASSERT_EQ(0, dw_x(w, "INSERT INTO customers (town, meter, name, medium, phone, since, "
			  "until) VALUES (31, 4, 'Old Four', 'sms', '+15550004', '2001-01-01', "
			  "'2020-01-01'), (31, 4, 'New Four', 'sms', '+15550044', '2020-01-01', "
			  "NULL), (31, 5, 'Five', 'email', NULL, '2001-01-01', NULL)"));
	ASSERT_EQ(0, dw_x(w, "UPDATE customers SET email = 'five@home.example' WHERE meter = 5"));
	ASSERT_EQ(0, hours(w, 31, 0, end, last)) TH_LOG("%s", w->p.err);
	/* town 32 stops altogether early: its meters are not "silent" */
	{
		int all[METERS + 1];

		for (int m = 0; m <= METERS; m++)
			all[m] = -1;
		ASSERT_EQ(0, hours(w, 32, 0, 1, all)) TH_LOG("%s", w->p.err);
	}
	ASSERT_EQ(0, mdet_tick(&w->p, now)) TH_LOG("%s", w->p.err);

	/* computed: silent iff the town's last hour - the meter's >= silent_h */
	for (int m = 1; m <= METERS; m++) {
		int want = last[m] >= 0 && end - last[m] >= s.silent_h;

		EXPECT_EQ(want, dw_1(w, "SELECT count(*) FROM alerts WHERE rule = 'silent' AND "
				     "town = 31 AND meter = %d AND key = 'silent:31:%d'", m, m))
			TH_LOG("meter %d", m);
	}
	EXPECT_EQ(0, dw_1(w, "SELECT count(*) FROM alerts WHERE town = 32"));
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts"));
	/* the evidence: the meter's last hour and the town's */
	EXPECT_EQ(HOUR0 + stop4 * 3600, dw_1(w, "SELECT extract(epoch FROM (evidence::jsonb->>"
					      "'meter_last_hour')::timestamptz) FROM alerts"));
	EXPECT_EQ(end - stop4, dw_1(w, "SELECT (evidence::jsonb->>'silent_hours')::int FROM "
				    "alerts"));
	/* a route notice for meter 4's current customer only; the operators told */
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM notices n JOIN customers c ON c.id = "
			  "n.customer WHERE n.kind = 'route'"));
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM notices n JOIN customers c ON c.id = "
			  "n.customer WHERE n.kind = 'route' AND c.name = 'New Four' AND n.ref = "
			  "(SELECT id FROM alerts) AND n.body LIKE '%%meter (number 4)%%'"));
	EXPECT_EQ(2, dw_1(w, "SELECT count(*) FROM notices WHERE kind = 'alert'"));

	/* an hour more without 4 and 5: 5 is silent long enough now, but the tick keeps pace */
	ASSERT_EQ(0, hours(w, 31, end + 1, end + 1, last)) TH_LOG("%s", w->p.err);
	ASSERT_EQ(0, mdet_tick(&w->p, now + MDET_TICK_S / 2));
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts"));
	ASSERT_EQ(0, mdet_tick(&w->p, now + MDET_TICK_S)) TH_LOG("%s", w->p.err);
	EXPECT_EQ(end + 1 - stop5 >= s.silent_h,
		  dw_1(w, "SELECT count(*) FROM alerts WHERE key = 'silent:31:5'"));
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM notices WHERE kind = 'route' AND customer = "
			  "(SELECT id FROM customers WHERE meter = 5)"));
	/* meter 4 still silent: the same condition, no second alert or notice */
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts WHERE key = 'silent:31:4'"));
	EXPECT_EQ(2, dw_1(w, "SELECT count(*) FROM notices WHERE kind = 'route'"));
}

static struct gmp_msg sec(int64_t t, int meter, uint32_t addr, int kind, int count)
{
	struct gmp_msg g = { .type = GMP_SECURITY };

	g.security.time = t;
	g.security.interval_s = 60;
	g.security.meter = meter;
	g.security.addr = addr;
	g.security.kind = kind;
	g.security.count = count;
	return g;
}

struct alarm_case {
	int meter, code, active;
	const char *notice;	/* the customer's notice (detection.md), NULL none */
	bool alert;
};

static struct gmp_msg alarm_msg(int meter, int code, int active, int64_t t)
{
	struct gmp_msg g = { .type = GMP_METER_ALARM };

	g.meter_alarm.time = t;
	g.meter_alarm.meter = meter;
	g.meter_alarm.code = code;
	g.meter_alarm.active = active;
	g.meter_alarm.value = 1000 * code + meter;
	return g;
}

TEST_F(det, tamper_alarm_raises_alert_and_customer_notice)
{
	struct dworld *w = &self->w;
	/* meterd's codes by number (detection.md): 0-2 trips, 3 lockout, 5 sensor,
	 * 7 store error, 10 reversed CT, 11 CT tamper (meterd's ALARM_*) */
	static const struct alarm_case cases[] = {
		{ 5, 11, 1, "tamper", true }, { 6, 10, 1, "tamper", true },
		{ 7, 2, 1, "trip", true }, { 8, 3, 1, "lockout", true },
		{ 9, 5, 1, NULL, true }, { 10, 7, 1, NULL, false },
		{ 11, 11, 0, NULL, false },	/* cleared: nothing */
		{ 5, 11, 1, "tamper", false },	/* raised again while its alert is open */
		/* issue 15: gas (14) tells the household; cleared nothing; home-sensor (15)
		 * never leaves a meter, and if a town sent one it would be stored only */
		{ 12, 14, 1, "gas", true }, { 13, 14, 0, NULL, false }, { 14, 15, 1, NULL, false },
	};
	const size_t nc = sizeof(cases) / sizeof(cases[0]);
	struct gmp_msg b[16];
	struct mdet_stats st;
	int64_t id, alerts = 0;
	char buf[64];

	if (!self->pg)
		SKIP(return, PG_SKIP_WHY);
	ASSERT_EQ(0, dw_town(w, 33));
	/* a town's numbers out of any range (a clock at the end of time, a meter
	 * id beyond the protocol's, a negative code) are stored, never fail the
	 * batch (which would stall the town's link for good), and raise nothing */
	b[0] = alarm_msg(5, 11, 1, INT64_MAX);
	b[1] = alarm_msg(5, -5, 1, INT64_MIN);
	b[2] = alarm_msg(5, 11, 1, HOUR0);
	b[2].meter_alarm.meter = (int64_t)1 << 40;
	b[3] = sec(INT64_MAX, INT32_MAX + 7LL, (uint32_t)-1, 70000, -1);
	b[3].security.interval_s = INT64_MAX;
	ASSERT_EQ(0, dw_send(w, 33, b, 4)) TH_LOG("%s", w->p.err);
	EXPECT_EQ(3, dw_1(w, "SELECT count(*) FROM meter_alarms WHERE town = 33"));
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM security_counts WHERE town = 33"));
	ASSERT_EQ(0, mdet_run(&w->p, -1, &st)) TH_LOG("%s", w->p.err);
	/* INT64_MAX as the time of a tamper of meter 5: raised at the time it arrived */
	EXPECT_EQ(1, st.raised);
	ASSERT_EQ(0, dw_x(w, "DELETE FROM notices; DELETE FROM alerts; DELETE FROM meter_alarms"));
	for (int m = 5; m <= 14; m++)
		ASSERT_EQ(0, dw_x(w, "INSERT INTO customers (town, meter, name, medium) VALUES "
				  "(33, %d, 'Household %d', 'post')", m, m));
	for (size_t i = 0; i < nc; i++)
		b[i] = alarm_msg(cases[i].meter, cases[i].code, cases[i].active,
				 HOUR0 + 60 * (int64_t)i);
	ASSERT_EQ(0, dw_send(w, 33, b, nc)) TH_LOG("%s", w->p.err);
	EXPECT_EQ((int64_t)nc, dw_1(w, "SELECT count(*) FROM meter_alarms WHERE town = 33"));
	ASSERT_EQ(0, mdet_run(&w->p, -1, &st)) TH_LOG("%s", w->p.err);
	EXPECT_EQ((int64_t)nc, st.alarms);
	for (size_t i = 0; i < nc; i++) {
		const struct alarm_case *c = &cases[i];

		if (!c->alert)
			continue;
		alerts++;
		EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts WHERE rule = 'meter-alarm' AND "
				  "town = 33 AND meter = %d AND (evidence::jsonb->>'code')::int = %d "
				  "AND extract(epoch FROM (evidence::jsonb->>'meter_time')::"
				  "timestamptz) = %lld", c->meter, c->code,
				  (long long)(HOUR0 + 60 * (int64_t)i))) TH_LOG("case %zu", i);
		EXPECT_EQ(c->notice ? 1 : 0,
			  dw_1(w, "SELECT count(*) FROM notices n JOIN customers c ON c.id = "
			       "n.customer WHERE c.meter = %d AND n.kind = '%s'", c->meter,
			       c->notice ? c->notice : "-")) TH_LOG("case %zu", i);
	}
	EXPECT_EQ(alerts, dw_1(w, "SELECT count(*) FROM alerts"));
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM notices WHERE customer IS NOT NULL AND "
			  "kind = 'tamper' AND customer = (SELECT id FROM customers WHERE meter = 5)"));
	EXPECT_EQ(0, dw_1(w, "SELECT count(*) FROM notices WHERE customer IN (SELECT id FROM "
			  "customers WHERE meter IN (10, 11))"));
	EXPECT_EQ(2 * alerts, dw_1(w, "SELECT count(*) FROM notices WHERE operator IS NOT NULL"));
	EXPECT_EQ(0, dw_s(w, buf, sizeof(buf), "SELECT severity FROM alerts WHERE key = "
			  "'alarm:33:5:ct-tamper'"));
	EXPECT_STREQ("critical", buf);
	/* gas: critical, and the household's notice says what to do */
	EXPECT_EQ(0, dw_s(w, buf, sizeof(buf), "SELECT severity FROM alerts WHERE key = "
			  "'alarm:33:12:gas'"));
	EXPECT_STREQ("critical", buf);
	{
		static const char *const words[] = { "gas at your home", "ventilate", "flames",
						     "switches", "gas emergency number" };

		for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++)
			EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM notices n JOIN customers c ON "
					  "c.id = n.customer WHERE c.meter = 12 AND n.kind = 'gas' AND "
					  "strpos(n.body, '%s') > 0", words[k]));
	}
	EXPECT_EQ(0, dw_1(w, "SELECT count(*) FROM alerts WHERE meter IN (13, 14)"));

	/* closed by an operator (mainctl's own command), then tampered with again: a new alert */
	id = dw_1(w, "SELECT id FROM alerts WHERE key = 'alarm:33:5:ct-tamper'");
	ASSERT_LT(0, id);
	{
		struct maind_config cfg;
		const struct mainctl_ctx x = { w->conninfo, w->conninfo, &cfg };
		char ids[24], *args[1] = { ids };

		maind_config_defaults(&cfg);
		snprintf(ids, sizeof(ids), "%lld", (long long)id);
		EXPECT_EQ(0, mctl_alert(&x, "alert-close", 1, args));
		EXPECT_EQ(1, mctl_alert(&x, "alert-close", 1, args));	/* not open any more */
		EXPECT_EQ(-2, mctl_alert(&x, "hours", 1, args));	/* not detection's */
	}
	EXPECT_EQ(0, dw_s(w, buf, sizeof(buf), "SELECT state FROM alerts WHERE id = %lld",
			  (long long)id));
	EXPECT_STREQ("closed", buf);
	b[0] = alarm_msg(5, 11, 1, HOUR0 + 3600);
	ASSERT_EQ(0, dw_send(w, 33, b, 1)) TH_LOG("%s", w->p.err);
	ASSERT_EQ(0, mdet_run(&w->p, -1, &st)) TH_LOG("%s", w->p.err);
	EXPECT_EQ(1, st.alarms);
	EXPECT_EQ(1, st.raised);
	EXPECT_EQ(2, dw_1(w, "SELECT count(*) FROM alerts WHERE key = 'alarm:33:5:ct-tamper'"));
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts WHERE key = 'alarm:33:5:ct-tamper' AND "
			  "state = 'open'"));
	EXPECT_EQ(2, dw_1(w, "SELECT count(*) FROM notices WHERE kind = 'tamper' AND customer = "
			  "(SELECT id FROM customers WHERE meter = 5)"));
}

TEST_F(det, burst_of_authentication_failures_raises_alert)
{
	struct dworld *w = &self->w;
	const uint32_t a5 = 0x0a000005, a9 = 0x0a000009;	/* 10.0.0.5, 10.0.0.9 */
	struct gmp_msg b[256];
	struct mdet_settings s;
	struct mdet_stats st;
	size_t n = 0;
	int64_t t = HOUR0, k;

	if (!self->pg)
		SKIP(return, PG_SKIP_WHY);
	ASSERT_EQ(0, mdet_settings_load(&w->p, &s));
	ASSERT_LT(2, s.auth_fail_h);
	ASSERT_GT(120, s.auth_fail_h);
	ASSERT_EQ(0, dw_town(w, 34));
	/* meter 12: one short of the threshold within half an hour, once a minute */
	for (k = 0; k < s.auth_fail_h - 1; k++)
		b[n++] = sec(t + 60 * (k % 30 + 1), 12, a5, GMP_SEC_AUTH_FAIL, 1);
	/* meter 13: one short in an hour, and again two hours later: never in one hour */
	b[n++] = sec(t + 600, 13, 0, GMP_SEC_AUTH_FAIL, (int)s.auth_fail_h - 1);
	b[n++] = sec(t + 600 + 7200, 13, 0, GMP_SEC_AUTH_FAIL, (int)s.auth_fail_h - 1);
	/* meter 14: replays at the threshold */
	b[n++] = sec(t + 900, 14, a9, GMP_SEC_REPLAY, (int)s.replay_h);
	/* address 10.0.0.9: frames from no meter, at the threshold over three minutes */
	for (k = 0; k < 3; k++)
		b[n++] = sec(t + 1200 + 60 * k, 0, a9, GMP_SEC_UNKNOWN,
			     (int)(s.unknown_h / 3 + (k < s.unknown_h % 3)));
	ASSERT_EQ(0, dw_send(w, 34, b, n)) TH_LOG("%s", w->p.err);
	ASSERT_EQ(0, mdet_run(&w->p, -1, &st)) TH_LOG("%s", w->p.err);
	EXPECT_EQ((int64_t)n, st.security);
	EXPECT_EQ(0, dw_1(w, "SELECT count(*) FROM alerts WHERE meter IN (12, 13)"));
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts WHERE key = 'security:34:meter:14:"
			  "replay' AND severity = 'critical'"));
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts WHERE key = 'security:34:addr:%u:"
			  "unknown-address' AND evidence::jsonb->>'address' = '10.0.0.9' AND "
			  "(evidence::jsonb->>'count')::int = %lld", a9, (long long)s.unknown_h));
	/* meter 14's replays came from 10.0.0.9: that address's own burst too */
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts WHERE key = 'security:34:addr:%u:"
			  "replay' AND evidence::jsonb->'meters_claimed'->>0 = '14'", a9));
	EXPECT_EQ(3, dw_1(w, "SELECT count(*) FROM alerts"));

	/* one more failure for meter 12 within its hour: the burst reaches the threshold */
	n = 0;
	b[n++] = sec(t + 60 * 31, 12, a5, GMP_SEC_AUTH_FAIL, 1);
	ASSERT_EQ(0, dw_send(w, 34, b, n)) TH_LOG("%s", w->p.err);
	ASSERT_EQ(0, mdet_run(&w->p, -1, &st)) TH_LOG("%s", w->p.err);
	EXPECT_EQ(2, st.raised);	/* meter 12, and its address 10.0.0.5 */
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts WHERE key = 'security:34:addr:%u:"
			  "auth-fail'", a5));
	EXPECT_EQ(s.auth_fail_h, dw_1(w, "SELECT (evidence::jsonb->>'count')::int FROM alerts "
				      "WHERE key = 'security:34:meter:12:auth-fail'"));
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts WHERE key = 'security:34:meter:12:"
			  "auth-fail' AND evidence::jsonb->'addresses'->>0 = '10.0.0.5'"));
	/* the burst goes on: the same condition, no second open alert, no new notices */
	k = dw_1(w, "SELECT count(*) FROM notices");
	n = 0;
	for (int i = 0; i < 10; i++)
		b[n++] = sec(t + 60 * (32 + i), 12, a5, GMP_SEC_AUTH_FAIL, 5);
	ASSERT_EQ(0, dw_send(w, 34, b, n)) TH_LOG("%s", w->p.err);
	ASSERT_EQ(0, mdet_run(&w->p, -1, &st)) TH_LOG("%s", w->p.err);
	EXPECT_EQ(0, st.raised);
	EXPECT_EQ(1, dw_1(w, "SELECT count(*) FROM alerts WHERE key = 'security:34:meter:12:"
			  "auth-fail'"));
	EXPECT_EQ(k, dw_1(w, "SELECT count(*) FROM notices"));
	EXPECT_EQ(10, k);	/* five alerts, two operators each */
}

TEST_HARNESS_MAIN
