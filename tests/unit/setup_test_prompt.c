// SPDX-License-Identifier: GPL-2.0
/*
 * gridmeter-setup's dialogue (agent/setup/prompt.c): defaults taken on an
 * empty line and with --yes, bad answers asked again with the reason, end
 * of input and --yes without a default cancel, \r\n of a serial console,
 * and the parsers of every kind of answer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"
#include "gmproto.h"
#include "prompt.h"

FIXTURE(dlg) {
	FILE *in, *out;
	char *text;
	size_t len;
	struct prompt p;
};

FIXTURE_SETUP(dlg)
{
	self->in = NULL;
	self->text = NULL;
	self->out = open_memstream(&self->text, &self->len);
	ASSERT_NE(NULL, self->out);
}

FIXTURE_TEARDOWN(dlg)
{
	if (self->in)
		fclose(self->in);
	fclose(self->out);
	free(self->text);
}

static void feed(struct __test_metadata *_metadata, FIXTURE_DATA(dlg) *self, const char *answers,
		 bool yes)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "%s", answers);
	self->in = fmemopen(buf, strlen(buf) ? strlen(buf) : 1, "r");
	ASSERT_NE(NULL, self->in);
	if (!strlen(buf))
		fgetc(self->in);	/* an empty stream: at its end at once */
	prompt_init(&self->p, self->in, self->out, yes);
}

TEST_F(dlg, quantity_reasked_until_valid)
{
	struct quantity v = { .min = 50000000, .max = 500000000, .unit = "V" };

	feed(_metadata, self, "abc\n230,4\n1000\n230.4 V\n", false);
	ASSERT_EQ(0, prompt_ask(&self->p, "Reference voltage, V", NULL, parse_answer_quantity, &v));
	EXPECT_EQ(230400000, v.micro);
	fflush(self->out);
	EXPECT_NE(NULL, strstr(self->text, "'abc': type a number in V")) TH_LOG("%s", self->text);
	EXPECT_NE(NULL, strstr(self->text, "'230,4': use a decimal point")) TH_LOG("%s", self->text);
	EXPECT_NE(NULL, strstr(self->text, "'1000': out of range 50..500 V")) TH_LOG("%s", self->text);
}

TEST_F(dlg, default_on_empty_line_and_crlf)
{
	bool yes = false;
	struct power_answer pw = { .w = { .min = 1000000, .max = 100000000000LL, .unit = "W" } };

	feed(_metadata, self, "\r\nn\r\n1991.86W\r\n", false);
	ASSERT_EQ(0, prompt_yesno(&self->p, "Calibrate?", true, &yes));
	EXPECT_TRUE(yes);
	ASSERT_EQ(0, prompt_yesno(&self->p, "Again?", true, &yes));
	EXPECT_FALSE(yes);
	ASSERT_EQ(0, prompt_ask(&self->p, "Power", "r", parse_answer_power, &pw));
	EXPECT_FALSE(pw.resistive);
	EXPECT_EQ(1991860000, pw.w.micro);
}

TEST_F(dlg, end_of_input_cancels)
{
	uint32_t id;

	feed(_metadata, self, "x\n", false);
	EXPECT_EQ(-ECANCELED, prompt_ask(&self->p, "Meter id", NULL, parse_answer_meter_id, &id));
	fflush(self->out);
	EXPECT_NE(NULL, strstr(self->text, "(end of input)")) TH_LOG("%s", self->text);
	EXPECT_NE(NULL, strstr(self->text, "'x': the meter id is a number 1..65534"));
}

TEST_F(dlg, end_of_input_without_newline_is_an_answer)
{
	uint32_t id = 0;

	feed(_metadata, self, "101", false);
	ASSERT_EQ(0, prompt_ask(&self->p, "Meter id", NULL, parse_answer_meter_id, &id));
	EXPECT_EQ(101u, id);
}

TEST_F(dlg, yes_takes_defaults_and_cancels_without_one)
{
	bool go = false;
	uint32_t id;

	feed(_metadata, self, "", true);
	ASSERT_EQ(0, prompt_yesno(&self->p, "Keep?", true, &go));
	EXPECT_TRUE(go);
	EXPECT_EQ(-ECANCELED, prompt_ask(&self->p, "Meter id", NULL, parse_answer_meter_id, &id));
}

TEST_F(dlg, too_many_bad_answers_give_up)
{
	bool go;

	feed(_metadata, self, "maybe\nperhaps\nsure\nok\nyep\ny\n", false);
	EXPECT_EQ(-ECANCELED, prompt_yesno(&self->p, "Keep?", true, &go));
	fflush(self->out);
	EXPECT_NE(NULL, strstr(self->text, "giving up after 5 answers"));
}

TEST(parsers)
{
	struct power_answer pw = { .w = { .min = 1000000, .max = 100000000000LL, .unit = "W" } };
	uint8_t key[GMP_KEY_LEN];
	char why[200], text[81], hex[2 * GMP_KEY_LEN + 1];
	uint32_t id;
	bool b;

	EXPECT_EQ(0, parse_answer_power("r", &pw, why, sizeof(why)));
	EXPECT_TRUE(pw.resistive);
	EXPECT_EQ(0, parse_answer_power("PF1", &pw, why, sizeof(why)));
	EXPECT_TRUE(pw.resistive);
	EXPECT_EQ(0, parse_answer_power("-", &pw, why, sizeof(why)));
	EXPECT_TRUE(pw.skip);
	EXPECT_EQ(-EINVAL, parse_answer_power("0.5", &pw, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "or r for a resistive load")) TH_LOG("%s", why);
	EXPECT_EQ(-EINVAL, parse_answer_meter_id("0", &id, why, sizeof(why)));
	EXPECT_EQ(-EINVAL, parse_answer_meter_id("65535", &id, why, sizeof(why)));
	EXPECT_EQ(0, parse_answer_meter_id("65534", &id, why, sizeof(why)));
	EXPECT_EQ(-EINVAL, parse_answer_yesno("ja", &b, why, sizeof(why)));
	for (int k = 0; k < GMP_KEY_LEN; k++)
		key[k] = (uint8_t)(k * 7 + 3);
	gmp_hex_encode(key, GMP_KEY_LEN, hex);
	memset(key, 0, sizeof(key));
	EXPECT_EQ(0, parse_answer_hexkey(hex, key, why, sizeof(why)));
	EXPECT_EQ(3 + 7 * 31, key[31]);
	hex[63] = 0;
	EXPECT_EQ(-EINVAL, parse_answer_hexkey(hex, key, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "63 hex digits")) TH_LOG("%s", why);
	hex[10] = 'g';
	EXPECT_EQ(-EINVAL, parse_answer_hexkey(hex, key, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "'g' at position 11")) TH_LOG("%s", why);
	EXPECT_EQ(0, parse_answer_text("12 High Street", text, why, sizeof(why)));
	EXPECT_STREQ("12 High Street", text);
	EXPECT_EQ(-EINVAL, parse_answer_text("12 \"High\" Street", text, why, sizeof(why)));
}

TEST_HARNESS_MAIN
