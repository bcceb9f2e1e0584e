// SPDX-License-Identifier: GPL-2.0
/*
 * maind-notify's formats without a server (Documentation/notices.md): the
 * SMS text (GSM 7-bit through IRA, parts of at most 160 septets, "(k/n) ",
 * truncation), the e-mail message (RFC 5322 lines, no header injection,
 * RFC 2047 words and quoted-printable that decode back to the input), and
 * notify.conf's errors. Random bytes through both composers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "notice_mail.h"
#include "notice_sms.h"
#include "notify_config.h"

/* The parts without their "(k/n) " prefixes, joined by spaces. */
static void reassemble(const struct sms_parts *p, char *out, size_t n)
{
	size_t len = 0;

	out[0] = '\0';
	for (unsigned k = 0; k < p->n; k++) {
		const char *t = p->part[k];
		unsigned a, b;
		int skip = 0;

		if (p->n > 1 && sscanf(t, "(%u/%u) %n", &a, &b, &skip) == 2 && skip) {
			if (a != k + 1 || b != p->n)
				return;
			t += skip;
		}
		len += (size_t)snprintf(out + len, n - len, "%s%s", k ? " " : "", t);
	}
}

/* Words of a, in order, equal those of b? */
static bool same_words(const char *a, const char *b)
{
	for (;;) {
		size_t na, nb;

		a += strspn(a, " \n");
		b += strspn(b, " \n");
		na = strcspn(a, " \n");
		nb = strcspn(b, " \n");
		if (na != nb || strncmp(a, b, na))
			return false;
		if (!na)
			return true;
		a += na;
		b += nb;
	}
}

TEST(sms_short_and_charset)
{
	struct sms_parts p;

	sms_compose("Your bill: 42.17 EUR.\nThanks.", 4, &p);
	ASSERT_EQ(1u, p.n);
	EXPECT_STREQ("Your bill: 42.17 EUR.\nThanks.", p.part[0]);
	EXPECT_FALSE(p.truncated);
	sms_compose("Café Ørsted: € 5 – “ok” ‘x’ `y` £2…\tend", 4, &p);
	ASSERT_EQ(1u, p.n);
	EXPECT_STREQ("Cafe Orsted: EUR 5 - \"ok\" 'x' 'y' GBP2... end", p.part[0]);
	sms_compose("bad \xff\xfe utf8 \xe2\x82", 4, &p);	/* never crashes, never passes raw bytes */
	ASSERT_EQ(1u, p.n);
	for (const char *c = p.part[0]; *c; c++)
		EXPECT_TRUE(*c == '\n' || (*c >= 0x20 && *c < 0x7f));
	EXPECT_EQ(6u, sms_septets("[ab]"));
	EXPECT_EQ(3u, sms_septets("abc"));
	EXPECT_TRUE(sms_number_ok("+447700900123"));
	EXPECT_FALSE(sms_number_ok("07700 900123"));
	EXPECT_FALSE(sms_number_ok("+4\"7;"));
}

TEST(sms_split_and_truncate)
{
	char text[2000], back[2200];
	struct sms_parts p;
	size_t len = 0;

	for (int i = 0; len < 600; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "word%d ", i);
	text[len - 1] = '\0';
	for (unsigned max = 1; max <= 9; max++) {
		unsigned need = (unsigned)((strlen(text) + 153) / 154);

		sms_compose(text, max, &p);
		EXPECT_EQ(max < need ? max : p.n, p.n);
		EXPECT_EQ(p.n < need || (max == 1 && strlen(text) > 160), p.truncated);
		for (unsigned k = 0; k < p.n; k++)
			EXPECT_GE(160u, sms_septets(p.part[k]));
		if (!p.truncated) {
			reassemble(&p, back, sizeof(back));
			EXPECT_TRUE(same_words(text, back)) TH_LOG("%s", back);
		} else {
			EXPECT_EQ(0, strcmp(p.part[p.n - 1] + strlen(p.part[p.n - 1]) - 3, "..."));
		}
	}
	/* extension characters count two septets */
	memset(text, '[', 150);
	text[150] = '\0';
	sms_compose(text, 4, &p);
	EXPECT_EQ(2u, p.n);
	for (unsigned k = 0; k < p.n; k++)
		EXPECT_GE(160u, sms_septets(p.part[k]));
}

TEST(sms_random_bytes)
{
	char text[1200];
	struct sms_parts p;

	ASSERT_LE(0, sodium_init());
	for (int i = 0; i < 3000; i++) {
		size_t n = randombytes_uniform(sizeof(text) - 1);

		randombytes_buf(text, n);
		for (size_t k = 0; k < n; k++)
			if (!text[k])
				text[k] = ' ';
		text[n] = '\0';
		sms_compose(text, 1 + randombytes_uniform(9), &p);
		ASSERT_LE(1u, p.n);
		for (unsigned k = 0; k < p.n; k++)
			ASSERT_GE(160u, sms_septets(p.part[k]));
	}
}

/* Decode quoted-printable (CRLF line ends, soft breaks) into out. */
static void qp_decode(const char *s, char *out)
{
	while (*s) {
		if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
			s += 3;
		} else if (s[0] == '=') {
			unsigned v;

			sscanf(s + 1, "%2X", &v);
			*out++ = (char)v;
			s += 3;
		} else if (s[0] == '\r' && s[1] == '\n') {
			*out++ = '\n';
			s += 2;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* The decoded value of a header made of RFC 2047 encoded words. */
static void words_decode(const char *v, char *out, size_t n)
{
	size_t len = 0;

	while ((v = strstr(v, "=?UTF-8?B?"))) {
		const char *e = strstr(v + 10, "?=");
		size_t got = 0;

		if (!e)
			break;
		sodium_base642bin((unsigned char *)out + len, n - len, v + 10, (size_t)(e - v - 10),
				  NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL);
		len += got;
		v = e + 2;
	}
	out[len] = '\0';
}

TEST(mail_message)
{
	const char *body = "Dear Zoë,\n\nA = sign, a line long enough to be folded somewhere past "
			   "the seventy-sixth column of quoted-printable text, and more.\ntrail \n";
	const char *subject = "Facture de novembre: 42,17 € — à payer avant le 15 décembre 2026";
	struct mail_in in = {
		"Gridmeter", "bills@u.example", "Zoë \"Z\" Ångström", "zoe@example.net", subject,
		body, "notice-1.2@u.example", 1796400000, NULL, 0, "x.pdf",
	};
	size_t len, hl;
	char *m = mail_compose(&in, &len), *b, dec[1024], subj[512];
	const char *line;

	ASSERT_NE(NULL, m);
	ASSERT_EQ(strlen(m), len);
	/* every line ends in CRLF and is at most 78 characters */
	for (line = m; *line;) {
		const char *e = strstr(line, "\r\n");

		ASSERT_NE(NULL, e);
		EXPECT_GE(78, (int)(e - line)) TH_LOG("%.*s", (int)(e - line), line);
		EXPECT_EQ(NULL, memchr(line, '\n', (size_t)(e - line)));
		line = e + 2;
	}
	b = strstr(m, "\r\n\r\n");
	ASSERT_NE(NULL, b);
	hl = (size_t)(b - m);
	EXPECT_NE(NULL, strstr(m, "Message-ID: <notice-1.2@u.example>\r\n"));
	/* date -u -R -d @1796400000 */
	EXPECT_NE(NULL, strstr(m, "\r\nDate: Fri, 04 Dec 2026 16:00:00 +0000\r\n") ?: strstr(m, "Date: Fri, 04 Dec 2026 16:00:00 +0000\r\n"));
	EXPECT_NE(NULL, strstr(m, "Content-Type: text/plain; charset=UTF-8\r\n"));
	/* the subject: encoded words that decode to it */
	{
		const char *s = strstr(m, "\r\nSubject: ");
		const char *e = s ? strstr(s + 11, "\r\nMessage-ID") : NULL;
		char v[1024];

		ASSERT_NE(NULL, e);
		snprintf(v, sizeof(v), "%.*s", (int)(e - s - 11), s + 11);
		words_decode(v, subj, sizeof(subj));
		EXPECT_STREQ(subject, subj);
	}
	qp_decode(b + 4, dec);
	EXPECT_EQ(0, strncmp(dec, body, strlen(body))) TH_LOG("%s", dec);
	(void)hl;
	free(m);

	/* header injection: a line end in a subject or name is a space */
	in.subject = "Hello\r\nBcc: victim@example.org";
	in.to_name = "Eve\nX-Evil: 1";
	m = mail_compose(&in, &len);
	ASSERT_NE(NULL, m);
	EXPECT_EQ(NULL, strstr(m, "\r\nBcc:"));
	EXPECT_EQ(NULL, strstr(m, "\r\nX-Evil:"));
	free(m);
	/* addresses that could carry anything else are refused */
	in.to_addr = "a@b>\r\nRCPT TO:<c@d";
	EXPECT_EQ(NULL, mail_compose(&in, &len));
	in.to_addr = "no-at-sign";
	EXPECT_EQ(NULL, mail_compose(&in, &len));
}

static int conf(const char *text, struct notify_config *c, char *err, size_t n)
{
	char path[] = "/tmp/notify-conf-XXXXXX";
	int fd = mkstemp(path), rc;

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return -2;
	close(fd);
	rc = notify_config_load(c, path, err, n);
	unlink(path);
	return rc;
}

TEST(config_errors)
{
	struct notify_config c;
	char err[512];

	EXPECT_EQ(0, conf("[database]\nconninfo = dbname=x\n", &c, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(8u, c.max_attempts);
	EXPECT_EQ(NOTIFY_TLS_REQUIRED, c.tls);
	EXPECT_EQ(-1, conf("[database]\nconninfo = x\n[email]\nurl = smtp://h\n", &c, err,
			   sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "from")) TH_LOG("%s", err);
	EXPECT_EQ(-1, conf("[database]\nconninfo = x\n[retry]\nmax_attempt = 3\n", &c, err,
			   sizeof(err)));
	EXPECT_NE(NULL, strstr(err, ":4:")) TH_LOG("%s", err);
	EXPECT_NE(NULL, strstr(err, "max_attempt")) TH_LOG("%s", err);
	EXPECT_EQ(-1, conf("[database]\nconninfo = x\n[email]\ntls = maybe\n", &c, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "tls")) TH_LOG("%s", err);
	EXPECT_EQ(-1, conf("[database]\nconninfo = x\n[retry]\nbackoff_first = 100\n"
			   "backoff_max = 10\n", &c, err, sizeof(err)));
	EXPECT_EQ(-1, conf("[database]\nconninfo = x\n[sms]\nbaud = 9601\n", &c, err, sizeof(err)));
	EXPECT_EQ(-1, conf("[database]\nconninfo = x\n[email]\nfrom = Bills <b@x>\n", &c, err,
			   sizeof(err)));
	EXPECT_EQ(-1, conf("[database]\nconninfo = x\n[fax]\n", &c, err, sizeof(err)));
	{
		char path[] = "/tmp/notify-pw-XXXXXX", text[256];
		int fd = mkstemp(path);

		ASSERT_LE(0, fd);
		ASSERT_EQ(7, write(fd, "secret\n", 7));
		close(fd);
		chmod(path, 0644);
		snprintf(text, sizeof(text), "[database]\nconninfo = x\n[email]\npassword_file = %s\n",
			 path);
		EXPECT_EQ(-1, conf(text, &c, err, sizeof(err)));
		EXPECT_NE(NULL, strstr(err, "group or others")) TH_LOG("%s", err);
		chmod(path, 0600);
		EXPECT_EQ(0, conf(text, &c, err, sizeof(err))) TH_LOG("%s", err);
		EXPECT_STREQ("secret", c.password);
		unlink(path);
	}
}

TEST_HARNESS_MAIN
