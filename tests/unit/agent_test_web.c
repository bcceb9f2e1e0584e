// SPDX-License-Identifier: GPL-2.0
/*
 * meterweb's pure pieces: its config (errors name file, line, key), the
 * load profile folded into local days (a DST day is 23 h), the tariff now
 * and next around midnight and daylight saving, guest codes (one use,
 * expiry) with simulated time. Expectations are computed here with the C
 * library's local time, independently of the code under test.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "guest.h"
#include "history.h"
#include "home_cards.h"
#include "mw_config.h"
#include "pages.h"
#include "tariff_view.h"

static int64_t local(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi,
			 .tm_isdst = -1 };

	return (int64_t)mktime(&tm);
}

static void london(void)
{
	setenv("TZ", "Europe/London", 1);
	tzset();
}

TEST(config_errors_name_file_line_key)
{
	struct mw_config c;
	char err[256];

	mw_config_defaults(&c);
	ASSERT_EQ(0, mw_config_parse(&c, "m.conf", "[web]\nlisten = :9000\nguest_code_minutes = 0.5\n", err, sizeof(err)));
	EXPECT_STREQ(":9000", c.listen);
	EXPECT_EQ(30u, c.guest_code_s);
	EXPECT_EQ(120u, c.guest_session_minutes);
	mw_config_defaults(&c);
	EXPECT_EQ(-EINVAL, mw_config_parse(&c, "m.conf", "[web]\n\nidle_minutes = 0\n", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "m.conf:3"));
	EXPECT_NE(NULL, strstr(err, "idle_minutes"));
	mw_config_defaults(&c);
	EXPECT_EQ(-EINVAL, mw_config_parse(&c, "m.conf", "[web]\ncolour = red\n", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "m.conf:2"));
	EXPECT_NE(NULL, strstr(err, "colour"));
	mw_config_defaults(&c);
	EXPECT_EQ(-EINVAL, mw_config_parse(&c, "m.conf", "[web]\ntls_cert = /x.pem\n", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "tls_key"));
	mw_config_defaults(&c);
	EXPECT_EQ(-EINVAL, mw_config_parse(&c, "m.conf", "[web]\nallow_remote = perhaps\n", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "allow_remote"));
}

/* Ten days of 15-minute intervals across the spring DST change, folded into 7 local days. */
TEST(fold_days_across_dst)
{
	int64_t from = local(2026, 3, 24, 0, 0), now = local(2026, 3, 31, 12, 0);
	size_t n = (size_t)((now - from) / 900);
	struct mw_interval *iv = calloc(n, sizeof(*iv));
	struct mw_day days[7];
	uint64_t want[7] = { 0 }, wantn[7] = { 0 };
	struct tm first;
	time_t t0;

	london();
	from = local(2026, 3, 24, 0, 0);
	now = local(2026, 3, 31, 12, 0);
	n = (size_t)((now - from) / 900);
	ASSERT_NE(NULL, iv);
	for (size_t i = 0; i < n; i++) {
		iv[i].start = from + (int64_t)i * 900;
		iv[i].import_mwh = (uint32_t)(1000 + i % 97);
		iv[i].export_mwh = (uint32_t)(i % 5);
		iv[i].renew_mwh = (uint32_t)(i % 7);
	}
	/* expectation: the local calendar date of each interval, days counted back from now's */
	t0 = (time_t)now;
	localtime_r(&t0, &first);
	for (size_t i = 0; i < n; i++) {
		time_t t = (time_t)iv[i].start;
		struct tm tm;
		int back;

		localtime_r(&t, &tm);
		back = (first.tm_yday - tm.tm_yday);	/* same year here */
		if (back >= 0 && back < 7) {
			want[6 - back] += iv[i].import_mwh;
			wantn[6 - back]++;
		}
	}
	EXPECT_EQ(wantn[0] + wantn[1] + wantn[2] + wantn[3] + wantn[4] + wantn[5] + wantn[6],
		  mw_fold_days(iv, n, now, 7, days));
	for (int d = 0; d < 7; d++) {
		time_t t = (time_t)days[d].start;
		struct tm tm;

		localtime_r(&t, &tm);
		EXPECT_EQ(0, tm.tm_hour);	/* a local midnight */
		EXPECT_EQ(0, tm.tm_min);
		EXPECT_EQ(want[d], days[d].import_mwh);
		EXPECT_EQ(wantn[d], days[d].intervals);
	}
	/* Sunday 29 March is 23 hours long: fewer intervals than the full days around it */
	EXPECT_EQ(wantn[4] + 4, wantn[3]);	/* days: 25 ... 31 March, the 29th is [4] */
	EXPECT_EQ(wantn[4] + 4, wantn[5]);
	free(iv);
}

static int tou(struct tariff_spec *s)
{
	tariff_spec_init(s);
	return tariff_spec_set(s, "type", "tou") | tariff_spec_set(s, "currency", "GBP") |
	       tariff_spec_set(s, "rates", "peak:35.5, offpeak:12.25") |
	       tariff_spec_set(s, "weekday", "00:00-07:00 offpeak, 07:00-24:00 peak") |
	       tariff_spec_set(s, "weekend", "00:00-07:00 offpeak, 07:00-24:00 peak");
}

static int32_t permille(int64_t now, int64_t next)
{
	int64_t d = (now - next) * 1000;

	return (int32_t)(d >= 0 ? (d + now / 2) / now : -((-d + now / 2) / now));
}

TEST(tariff_next_around_midnight_and_dst)
{
	struct tariff_spec s;
	struct mw_tariff_view v;
	int64_t now;

	london();
	ASSERT_EQ(0, tou(&s));
	/* 23:30 on a winter Friday: peak now, offpeak from midnight, 65.5 % cheaper */
	now = local(2026, 1, 16, 23, 30);
	ASSERT_EQ(0, mw_tariff_view(&s, now, 0, &v));
	EXPECT_STREQ("peak", v.now_name);
	EXPECT_EQ(35500, v.now_price);
	ASSERT_TRUE(v.has_next);
	EXPECT_EQ(local(2026, 1, 17, 0, 0), v.next_at);
	EXPECT_STREQ("offpeak", v.next_name);
	EXPECT_EQ(12250, v.next_price);
	EXPECT_EQ(permille(35500, 12250), v.cheaper_permille);
	EXPECT_LT(0, v.cheaper_permille);
	/* offpeak at 00:30, peak at 07:00: dearer (negative) */
	now = local(2026, 1, 17, 0, 30);
	ASSERT_EQ(0, mw_tariff_view(&s, now, 0, &v));
	EXPECT_STREQ("offpeak", v.now_name);
	EXPECT_EQ(local(2026, 1, 17, 7, 0), v.next_at);
	EXPECT_EQ(permille(12250, 35500), v.cheaper_permille);
	EXPECT_GT(0, v.cheaper_permille);
	/* the spring night (29 March 2026): 07:00 BST is 5.5 h after 00:30 GMT, not 6.5 */
	now = local(2026, 3, 29, 0, 30);
	ASSERT_EQ(0, mw_tariff_view(&s, now, 0, &v));
	EXPECT_EQ(local(2026, 3, 29, 7, 0), v.next_at);
	EXPECT_EQ(now + 5 * 3600 + 1800, v.next_at);
	/* the autumn night (25 October 2026): 7.5 h */
	now = local(2026, 10, 25, 0, 30);
	ASSERT_EQ(0, mw_tariff_view(&s, now, 0, &v));
	EXPECT_EQ(local(2026, 10, 25, 7, 0), v.next_at);
	EXPECT_EQ(now + 7 * 3600 + 1800, v.next_at);
}

TEST(tariff_flat_and_bad)
{
	struct tariff_spec s;
	struct mw_tariff_view v;

	london();
	tariff_spec_init(&s);
	ASSERT_EQ(0, tariff_spec_set(&s, "type", "flat"));
	ASSERT_EQ(0, tariff_spec_set(&s, "rate", "25.5"));
	ASSERT_EQ(0, mw_tariff_view(&s, local(2026, 1, 16, 12, 0), 0, &v));
	EXPECT_EQ(25500, v.now_price);
	EXPECT_FALSE(v.has_next);
	ASSERT_EQ(0, tou(&s));
	ASSERT_EQ(0, tariff_spec_set(&s, "weekday", "00:00-07:00 cheap, 07:00-24:00 peak"));
	EXPECT_EQ(-EINVAL, mw_tariff_view(&s, local(2026, 1, 16, 12, 0), 0, &v));
	EXPECT_FALSE(v.valid);
	EXPECT_NE(NULL, strstr(v.err, "weekday"));
}

TEST(guest_codes_once_and_expiry)
{
	struct mw_guests g;
	char c1[MW_GUEST_DIGITS + 1], c2[MW_GUEST_DIGITS + 1], typed[16], wrong[MW_GUEST_DIGITS + 1];
	int64_t t = 1000000, exp;

	ASSERT_EQ(0, mw_guests_init(&g, 600));
	ASSERT_EQ(0, mw_guest_create(&g, t, c1, &exp));
	EXPECT_EQ(t + 600, exp);
	EXPECT_EQ(MW_GUEST_DIGITS, (int)strlen(c1));
	EXPECT_EQ(1u, mw_guest_waiting(&g, t));
	/* a code that is not this one (every digit changed) */
	for (int i = 0; i < MW_GUEST_DIGITS; i++)
		wrong[i] = (char)('0' + (c1[i] - '0' + 1) % 10);
	wrong[MW_GUEST_DIGITS] = 0;
	EXPECT_EQ(-ENOENT, mw_guest_redeem(&g, wrong, t + 1));
	EXPECT_EQ(-EINVAL, mw_guest_redeem(&g, "1234", t + 1));
	EXPECT_EQ(-EINVAL, mw_guest_redeem(&g, "12345678x", t + 1));
	/* typed with a dash in the middle: accepted, once */
	snprintf(typed, sizeof(typed), "%.4s-%.4s", c1, c1 + 4);
	EXPECT_EQ(0, mw_guest_redeem(&g, typed, t + 599));
	EXPECT_EQ(-ENOENT, mw_guest_redeem(&g, c1, t + 599));
	/* expiry: valid up to valid_s, refused at valid_s */
	ASSERT_EQ(0, mw_guest_create(&g, t, c2, &exp));
	EXPECT_EQ(-ETIME, mw_guest_redeem(&g, c2, exp));
	EXPECT_EQ(-ENOENT, mw_guest_redeem(&g, c2, exp - 1));	/* gone once seen expired */
	/* at most MW_GUEST_MAX wait: the oldest goes first */
	ASSERT_EQ(0, mw_guest_create(&g, t, c1, &exp));
	for (int i = 1; i <= MW_GUEST_MAX; i++)
		ASSERT_EQ(0, mw_guest_create(&g, t + i, c2, &exp));
	EXPECT_EQ((unsigned)MW_GUEST_MAX, mw_guest_waiting(&g, t + MW_GUEST_MAX));
	if (strcmp(c1, c2))
		EXPECT_EQ(-ENOENT, mw_guest_redeem(&g, c1, t + MW_GUEST_MAX));
	EXPECT_EQ(0, mw_guest_redeem(&g, c2, t + MW_GUEST_MAX));
	/* all expire together */
	EXPECT_EQ(0u, mw_guest_waiting(&g, t + MW_GUEST_MAX + 600));
	mw_guests_destroy(&g);
}

/* ---- the Loads and Home sensors cards (issue 15) ---------------------------------- */

/* hbuf as a C string (the test keeps it until hb_free). */
static const char *cstr(struct hbuf *b)
{
	hb_rawn(b, "", 1);
	b->len--;
	return b->p;
}

/* An integer as people read it, written here independently of lib/web: U+202F every three digits. */
static void grouped(char *out, size_t len, int64_t v, const char *unit)
{
	char digits[32], *o = out;
	int n = snprintf(digits, sizeof(digits), "%lld", (long long)(v < 0 ? -v : v));

	if (v < 0)
		*o++ = '-';
	for (int i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			o += sprintf(o, "\xe2\x80\xaf");
		*o++ = digits[i];
	}
	snprintf(o, len - (size_t)(o - out), "\xc2\xa0%s", unit);
}

static struct mw_load mkload(const char *name, const char *sw, const char *state, bool wanted, bool shed,
			     bool reachable, int32_t w)
{
	struct mw_load l;

	memset(&l, 0, sizeof(l));
	snprintf(l.name, sizeof(l.name), "%s", name);
	snprintf(l.sw, sizeof(l.sw), "%s", sw);
	snprintf(l.state, sizeof(l.state), "%s", state);
	l.wanted_on = wanted;
	l.shed = shed;
	l.reachable = reachable;
	l.measured_w = w;
	return l;
}

static struct mw_home mkhome(const char *name, const char *kind, const char *unit, int64_t v, const char *state,
			     bool alarm)
{
	struct mw_home h;

	memset(&h, 0, sizeof(h));
	snprintf(h.name, sizeof(h.name), "%s", name);
	snprintf(h.kind, sizeof(h.kind), "%s", kind);
	snprintf(h.unit, sizeof(h.unit), "%s", unit);
	snprintf(h.state, sizeof(h.state), "%s", state);
	h.value_milli = v;
	h.alarm = alarm;
	return h;
}

/* Every combination of Loads' fields gives a line that starts with the name and says what matters. */
TEST(load_lines_every_state)
{
	static const char *const sws[] = { "gpio", "external" };
	static const char *const states[] = { "on", "off", "unreachable", "unknown" };
	static const int32_t ws[] = { -1, 0, 1850, 12345 };
	struct hbuf b;

	hb_init(&b);
	for (int s = 0; s < 2; s++)
		for (int k = 0; k < 4; k++)
			for (int f = 0; f < 8; f++)
				for (int wi = 0; wi < 4; wi++) {
					bool wanted = f & 1, shed = f & 2, reach = f & 4;
					struct mw_load l = mkload("washer", sws[s], states[k], wanted, shed, reach, ws[wi]);
					bool silent = !strcmp(states[k], "unreachable") || (!reach && s == 1);
					char watts[64];
					const char *t;

					hb_reset(&b);
					mw_load_line(&b, &l);
					t = cstr(&b);
					ASSERT_EQ(0, strncmp(t, "washer \xe2\x80\x94 ", 10)) TH_LOG("%s", t);
					EXPECT_NE(NULL, strstr(t, s ? "smart plug" : "wired relay")) TH_LOG("%s", t);
					grouped(watts, sizeof(watts), ws[wi], "W");
					if (silent) {
						EXPECT_NE(NULL, strstr(t, "not answering")) TH_LOG("%s", t);
						EXPECT_EQ(shed || !wanted, strstr(t, "should be off") != NULL) TH_LOG("%s", t);
						EXPECT_EQ(NULL, strstr(t, "\xc2\xa0W")) TH_LOG("%s", t);
						continue;
					}
					EXPECT_EQ(NULL, strstr(t, "not answering")) TH_LOG("%s", t);
					if (!strcmp(states[k], "on")) {
						EXPECT_NE(NULL, strstr(t, "\xe2\x80\x94 on")) TH_LOG("%s", t);
						EXPECT_EQ(ws[wi] >= 0, strstr(t, watts) != NULL) TH_LOG("%s / %s", t, watts);
						EXPECT_EQ(shed, strstr(t, "being switched off to stay within your allocation") != NULL)
							TH_LOG("%s", t);
						EXPECT_EQ(!shed && !wanted, strstr(t, "asked it to switch off") != NULL) TH_LOG("%s", t);
					} else if (!strcmp(states[k], "off")) {
						EXPECT_EQ(shed, strstr(t, "\xe2\x80\x94 switched off to stay within your allocation") != NULL)
							TH_LOG("%s", t);
						EXPECT_EQ(!shed && !wanted, strstr(t, "kept off by the meter") != NULL) TH_LOG("%s", t);
						EXPECT_EQ(NULL, strstr(t, "\xc2\xa0W")) TH_LOG("%s", t);
					} else {
						EXPECT_NE(NULL, strstr(t, "not known yet")) TH_LOG("%s", t);
					}
				}
	hb_free(&b);
}

/* Home sensors: value with its unit and thousands separator, every state word, the gas words. */
TEST(home_lines_every_state)
{
	static const struct {
		const char *kind, *unit;
		int64_t milli;
		int decimals;
		const char *shown_unit, *what;
	} k[] = {
		{ "gas", "mV", 1350000, 0, "mV", "gas level " },
		{ "gas", "ppm", 12345678, 0, "ppm", "gas level " },
		{ "temperature", "C", 21500, 1, "\xc2\xb0" "C", "temperature " },
		{ "temperature", "\xc2\xb0" "C", -4000, 1, "\xc2\xb0" "C", "temperature " },
		{ "generic", "%", 55250, 1, "%", "" },
		{ "generic", "V", 3300, 2, "V", "" },
	};
	static const char *const states[] = { "ok", "alarm", "warming-up", "fault" };
	struct hbuf b;

	hb_init(&b);
	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
		for (int s = 0; s < 4; s++)
			for (int a = 0; a < 2; a++) {
				struct mw_home h = mkhome("kitchen", k[i].kind, k[i].unit, k[i].milli, states[s], a);
				bool gas = !strcmp(k[i].kind, "gas"), alarm = a || s == 1;
				char want[96], num[64];
				int64_t p10 = k[i].decimals == 0 ? 1000 : k[i].decimals == 1 ? 100 : 10;
				int64_t q = (llabs(k[i].milli) + p10 / 2) / p10, whole = q, frac = 0;
				const char *t;

				for (int d = 0; d < k[i].decimals; d++)
					whole /= 10;
				frac = q - whole * (k[i].decimals == 1 ? 10 : k[i].decimals == 2 ? 100 : 1);
				grouped(num, sizeof(num), k[i].milli < 0 ? -whole : whole, "");
				num[strlen(num) - 2] = 0;	/* drop the NBSP grouped() adds */
				if (k[i].decimals)
					snprintf(want, sizeof(want), "%s%s.%0*lld\xc2\xa0%s", k[i].what, num, k[i].decimals,
						 (long long)frac, k[i].shown_unit);
				else
					snprintf(want, sizeof(want), "%s%s\xc2\xa0%s", k[i].what, num, k[i].shown_unit);
				hb_reset(&b);
				mw_home_line(&b, &h);
				t = cstr(&b);
				ASSERT_EQ(0, strncmp(t, "kitchen \xe2\x80\x94 ", 11)) TH_LOG("%s", t);
				if (s == 3 && !a) {
					EXPECT_NE(NULL, strstr(t, "fault: no reading")) TH_LOG("%s", t);
					EXPECT_EQ(NULL, strstr(t, want)) TH_LOG("%s", t);
					continue;
				}
				if (s == 3)
					continue;	/* fault with the alarm flag: either is acceptable */
				EXPECT_NE(NULL, strstr(t, want)) TH_LOG("%s / want %s", t, want);
				EXPECT_EQ(alarm && gas, strstr(t, "GAS ALARM") != NULL) TH_LOG("%s", t);
				EXPECT_EQ(alarm && !gas, strstr(t, "alarm: outside its limits") != NULL) TH_LOG("%s", t);
				EXPECT_EQ(!alarm && s == 0, strstr(t, "normal") != NULL) TH_LOG("%s", t);
				EXPECT_EQ(!alarm && s == 2, strstr(t, "warming up") != NULL) TH_LOG("%s", t);
			}
	hb_free(&b);
}

/* The gas banner: only a gas sensor in alarm raises it, and it says what to do. */
TEST(gas_banner)
{
	struct mw_state st;
	struct hbuf b;

	memset(&st, 0, sizeof(st));
	hb_init(&b);
	st.nhome = 3;
	st.home[0] = mkhome("hall", "temperature", "C", 45000, "alarm", true);
	st.home[1] = mkhome("kitchen", "gas", "mV", 900000, "ok", false);
	st.home[2] = mkhome("cellar", "gas", "mV", 1500000, "warming-up", false);
	mw_gas_banner(&b, &st);
	EXPECT_STREQ("", cstr(&b));
	mw_home_summary(&b, &st);
	EXPECT_STREQ("3 sensors, 1 in alarm.", cstr(&b));
	hb_reset(&b);
	st.home[1] = mkhome("kitchen", "gas", "mV", 1350000, "alarm", true);
	mw_gas_banner(&b, &st);
	EXPECT_EQ(0, strncmp(cstr(&b), "Gas alarm: kitchen (1\xe2\x80\xaf" "350\xc2\xa0mV).", 30)) TH_LOG("%s", cstr(&b));
	EXPECT_NE(NULL, strstr(cstr(&b), "leave the house"));
	EXPECT_NE(NULL, strstr(cstr(&b), "gas emergency number"));
	EXPECT_EQ(NULL, strstr(cstr(&b), "hall"));
	hb_free(&b);
}

/* No Loads / HomeSensors (an older meterd): the cards say so, every slot is empty. */
TEST(cards_without_properties)
{
	struct mw_state st;
	struct hbuf b;
	char key[24];
	unsigned n = 0;

	memset(&st, 0, sizeof(st));
	hb_init(&b);
	for (unsigned i = 0; mw_home_key(i, key, sizeof(key)); i++, n++) {
		hb_reset(&b);
		ASSERT_TRUE(mw_home_text(&b, key, &st));
		if (!strcmp(key, "loads_summary")) {
			EXPECT_STREQ("No loads are switched by this meter.", cstr(&b));
		} else if (!strcmp(key, "home_summary")) {
			EXPECT_STREQ("No home sensors are configured.", cstr(&b));
		} else {
			EXPECT_STREQ("", cstr(&b)) TH_LOG("%s", key);
		}
	}
	EXPECT_EQ(MW_MAX_LOADS + MW_MAX_HOME + 3u, n);
	EXPECT_FALSE(mw_home_text(&b, "load_8", &st));
	EXPECT_FALSE(mw_home_text(&b, "load_01", &st));
	EXPECT_FALSE(mw_home_text(&b, "home_", &st));

	/* a meterd before Loads: its LoadRelays (open = shed) */
	st.loads.n = 2;
	snprintf(st.loads.e[0].name, MW_NAME_LEN, "heater");
	st.loads.e[0].v = 0;
	snprintf(st.loads.e[1].name, MW_NAME_LEN, "pump");
	st.loads.e[1].v = 1;
	hb_reset(&b);
	mw_home_text(&b, "load_0", &st);
	EXPECT_STREQ("heater \xe2\x80\x94 wired relay \xe2\x80\x94 switched off to stay within your allocation", cstr(&b));
	hb_reset(&b);
	mw_home_text(&b, "load_1", &st);
	EXPECT_STREQ("pump \xe2\x80\x94 wired relay \xe2\x80\x94 on", cstr(&b));
	hb_reset(&b);
	mw_home_text(&b, "loads_summary", &st);
	EXPECT_STREQ("2 loads, 1 switched off to stay within your allocation.", cstr(&b));
	/* Loads, when there, wins */
	st.nxloads = 1;
	st.xloads[0] = mkload("washer", "external", "unreachable", true, false, false, -1);
	hb_reset(&b);
	mw_home_text(&b, "loads_summary", &st);
	EXPECT_STREQ("1 load, 1 not answering.", cstr(&b));
	hb_reset(&b);
	mw_home_text(&b, "load_1", &st);
	EXPECT_STREQ("", cstr(&b));
	hb_free(&b);
}

/* Names come from meterd's configuration: escaped on the page and in the stream, plain in the texts. */
TEST(cards_escape_names)
{
	static const char evil[] = "<img src=x onerror=alert(1)>&\"'";
	struct mw_state st;
	struct mw_tariff_view tv;
	struct web_page frame = { .title = "Your meter", .product = "gridmeter home" };
	struct mw_day month[MW_MONTH_DAYS];
	struct mw_page_data d = { .st = &st, .tv = &tv, .now = 1770000000, .month = month };
	struct hbuf b, t;

	memset(&st, 0, sizeof(st));
	memset(&tv, 0, sizeof(tv));
	memset(month, 0, sizeof(month));
	hb_init(&b);
	hb_init(&t);
	st.connected = true;
	st.nxloads = 2;
	st.xloads[0] = mkload(evil, "external", "off", false, true, true, 3);
	st.xloads[1] = mkload("heater", "gpio", "on", true, false, true, -1);
	st.nhome = 1;
	st.home[0] = mkhome(evil, "gas", "<b>", 1350000, "alarm", true);

	mw_load_line(&t, &st.xloads[0]);
	EXPECT_EQ(0, strncmp(cstr(&t), evil, strlen(evil)));

	mw_page_dashboard(&b, &frame, &d);
	EXPECT_EQ(NULL, strstr(cstr(&b), "<img"));
	EXPECT_EQ(NULL, strstr(cstr(&b), "<b>"));
	EXPECT_NE(NULL, strstr(cstr(&b), "&lt;img src=x onerror=alert(1)&gt;&amp;&quot;&#39;")) TH_LOG("%s", cstr(&b));
	EXPECT_NE(NULL, strstr(cstr(&b), "data-live=\"load_1\">heater \xe2\x80\x94 wired relay \xe2\x80\x94 on</li>"));
	EXPECT_NE(NULL, strstr(cstr(&b), "data-live=\"load_2\"></li>"));
	EXPECT_NE(NULL, strstr(cstr(&b), "role=\"alert\" id=\"gas-alarm\" data-live=\"gas_alarm\">Gas alarm: &lt;img"));
	EXPECT_NE(NULL, strstr(cstr(&b), "data-live=\"loads_summary\">2 loads, 1 switched off to stay within your allocation.<"));
	EXPECT_NE(NULL, strstr(cstr(&b), "id=\"h-home\">Home sensors<"));

	hb_reset(&b);
	mw_live_json(&b, &st, &tv, 1770000000);
	EXPECT_EQ(NULL, strstr(cstr(&b), "<"));
	EXPECT_NE(NULL, strstr(cstr(&b), "\"load_0\":\"\\u003cimg src=x onerror=alert(1)\\u003e\\u0026\\\"\\u0027 \xe2\x80\x94 smart plug \xe2\x80\x94 switched off"))
		TH_LOG("%s", cstr(&b));
	EXPECT_NE(NULL, strstr(cstr(&b), "\"load_7\":\"\""));
	EXPECT_NE(NULL, strstr(cstr(&b), "\"home_7\":\"\""));
	EXPECT_NE(NULL, strstr(cstr(&b), "\"gas_alarm\":\"Gas alarm: \\u003cimg"));
	hb_free(&b);
	hb_free(&t);
}

TEST_HARNESS_MAIN
