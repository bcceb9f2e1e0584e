// SPDX-License-Identifier: GPL-2.0
/*
 * lib/web/html.c: escaping of every character that matters in HTML text,
 * attributes and JSON inside <script>, and numbers as people read them
 * (hb_milli, hb_money) against a second, independent formatter.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "html.h"
#include "gm_harness.h"

#define THIN "\xe2\x80\xaf"
#define NBSP "\xc2\xa0"

static char *take(struct hbuf *b)
{
	static char out[4096];

	snprintf(out, sizeof(out), "%s", b->p ? b->p : "");
	hb_reset(b);
	return out;
}

TEST(text_and_attr_escape_every_dangerous_char)
{
	struct hbuf b;

	hb_init(&b);
	hb_text(&b, "<script>alert('x')</script> & \"q\"");
	EXPECT_STREQ("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;", take(&b));
	hb_attr(&b, "\" onmouseover='a' x=<>&");
	EXPECT_STREQ("&quot; onmouseover=&#39;a&#39; x=&lt;&gt;&amp;", take(&b));
	/* Every byte: the five are replaced, every other byte passes unchanged. */
	for (int c = 1; c < 256; c++) {
		char in[2] = { (char)c, 0 }, *out;

		hb_text(&b, in);
		out = take(&b);
		if (strchr("&<>\"'", c)) {
			EXPECT_EQ('&', out[0]);
		} else {
			EXPECT_EQ(c, (unsigned char)out[0]);
		}
		EXPECT_EQ(NULL, strpbrk(out, "<>\"'"));
	}
	hb_text(&b, NULL);
	hb_text(&b, "");
	EXPECT_STREQ("", take(&b));
	hb_free(&b);
}

TEST(json_string_cannot_end_a_script)
{
	struct hbuf b;
	char *out;

	hb_init(&b);
	hb_json_str(&b, "</script><!-- a\"b\\c\n\t\x01'&");
	out = take(&b);
	EXPECT_STREQ("\"\\u003c/script\\u003e\\u003c!-- a\\\"b\\\\c\\n\\t\\u0001\\u0027\\u0026\"", out);
	EXPECT_EQ(NULL, strchr(out, '<'));
	EXPECT_EQ(NULL, strchr(out, '>'));
	hb_json_str(&b, "caf\xc3\xa9");	/* UTF-8 passes */
	EXPECT_STREQ("\"caf\xc3\xa9\"", take(&b));
	hb_json_str(&b, NULL);
	EXPECT_STREQ("\"\"", take(&b));
	hb_free(&b);
}

TEST(buffer_grows_and_printf)
{
	struct hbuf b;

	hb_init(&b);
	for (int i = 0; i < 10000; i++)
		hb_printf(&b, "%d,", i % 10);
	EXPECT_EQ(20000, b.len);
	EXPECT_FALSE(b.oom);
	EXPECT_EQ('\0', b.p[b.len]);
	hb_reset(&b);
	EXPECT_EQ(0, b.len);
	hb_rawn(&b, "abc", 2);
	EXPECT_STREQ("ab", b.p);
	hb_free(&b);
	EXPECT_EQ(NULL, b.p);
}

/*
 * The reference: round with (2|v| + div) / (2 div) in 128-bit arithmetic,
 * group by inserting separators into the digit string from the right.
 */
static void ref_fixed(char *out, size_t size, int64_t v, int drop, int decimals)
{
	__int128 mag = v < 0 ? -(__int128)v : (__int128)v, div = 1, fdiv = 1;
	char digits[64], grouped[128];
	int n, g = 0;

	for (int i = 0; i < drop; i++)
		div *= 10;
	for (int i = 0; i < decimals; i++)
		fdiv *= 10;
	mag = (2 * mag + div) / (2 * div);
	n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)(mag / fdiv));
	for (int i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0) {
			memcpy(grouped + g, THIN, 3);
			g += 3;
		}
		grouped[g++] = digits[i];
	}
	grouped[g] = '\0';
	if (decimals)
		snprintf(out, size, "%s%s.%0*llu", v < 0 && mag ? "-" : "", grouped, decimals,
			 (unsigned long long)(mag % fdiv));
	else
		snprintf(out, size, "%s%s", v < 0 && mag ? "-" : "", grouped);
}

TEST(milli_matches_reference)
{
	static const int64_t edge[] = {
		0, 1, -1, 4, 5, -5, 49, 50, -50, 499, 500, -500, 999, 1000, 1499, 1500, -1500,
		2500, 999499, 999500, 999999, 1000000, 1234567, -1234567, 230149, 230150,
		INT64_MAX, INT64_MIN, INT64_MIN + 1, 999999999999,
	};
	struct hbuf b;
	char want[256];
	uint64_t x = 88172645463325252ull;

	hb_init(&b);
	for (int d = 0; d <= 3; d++) {
		for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
			ref_fixed(want, sizeof(want), edge[i], 3 - d, d);
			hb_milli(&b, edge[i], d, NULL);
			EXPECT_STREQ(want, take(&b)) TH_LOG("%" PRId64 " with %d decimals", edge[i], d);
		}
		for (int i = 0; i < 20000; i++) {	/* xorshift: many magnitudes and signs */
			int64_t v;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			v = (int64_t)(x >> (x % 60));
			if (x & 1)
				v = -v;
			ref_fixed(want, sizeof(want), v, 3 - d, d);
			hb_milli(&b, v, d, NULL);
			ASSERT_STREQ(want, take(&b)) TH_LOG("%" PRId64 " with %d decimals", v, d);
		}
	}
	hb_free(&b);
}

TEST(milli_units_and_examples)
{
	struct hbuf b;

	hb_init(&b);
	hb_milli(&b, 230149, 1, "V");
	EXPECT_STREQ("230.1" NBSP "V", take(&b));
	hb_milli(&b, 1234567, 3, "kWh");
	EXPECT_STREQ("1" THIN "234.567" NBSP "kWh", take(&b));
	hb_milli(&b, -400, 0, "W");	/* rounds to zero: no minus sign */
	EXPECT_STREQ("0" NBSP "W", take(&b));
	hb_milli(&b, 5, 9, "A");	/* decimals clamped to 3 */
	EXPECT_STREQ("0.005" NBSP "A", take(&b));
	hb_milli(&b, 1500, -2, "");	/* and to 0; an empty unit adds nothing */
	EXPECT_STREQ("2", take(&b));
	hb_milli(&b, 1000, 0, "<u>");	/* the unit is text */
	EXPECT_STREQ("1" NBSP "&lt;u&gt;", take(&b));
	hb_free(&b);
}

TEST(money)
{
	static const int64_t v[] = { 0, 4, 5, -5, 12345, 12350, 1234567, -1234567, 99999995,
				     123456789012, INT64_MIN, INT64_MAX };
	struct hbuf b;
	char num[128], want[160];

	hb_init(&b);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		/* milli-minor -> minor (drop 3) -> major with 2 decimals */
		ref_fixed(num, sizeof(num), v[i], 3, 2);
		if (num[0] == '-')
			snprintf(want, sizeof(want), "-\xc2\xa3%s", num + 1);
		else
			snprintf(want, sizeof(want), "\xc2\xa3%s", num);
		hb_money(&b, v[i], "GBP");
		EXPECT_STREQ(want, take(&b)) TH_LOG("%" PRId64, v[i]);
		snprintf(want, sizeof(want), "%s" NBSP "XYZ", num);
		hb_money(&b, v[i], "XYZ");
		EXPECT_STREQ(want, take(&b));
	}
	hb_money(&b, 3400000, "EUR");
	EXPECT_STREQ("\xe2\x82\xac" "34.00", take(&b));
	hb_money(&b, 12345, "GBP");
	EXPECT_STREQ("\xc2\xa3" "0.12", take(&b));
	hb_money(&b, 1, "<b>");
	EXPECT_STREQ("0.00" NBSP "&lt;b&gt;", take(&b));
	hb_free(&b);
}

TEST(time_in_tz)
{
	struct hbuf b;

	hb_init(&b);
	setenv("TZ", "UTC", 1);
	tzset();
	hb_time(&b, 1773511500);	/* 2026-03-14 18:05:00 UTC */
	EXPECT_STREQ("2026-03-14 18:05", take(&b));
	setenv("TZ", "Europe/London", 1);
	tzset();
	hb_time(&b, 1784052300);	/* 2026-07-14 18:05 UTC = 19:05 BST */
	EXPECT_STREQ("2026-07-14 19:05", take(&b));
	hb_free(&b);
}

TEST_HARNESS_MAIN
