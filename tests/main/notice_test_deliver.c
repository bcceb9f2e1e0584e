// SPDX-License-Identifier: GPL-2.0
/*
 * maind-notify end to end (Documentation/notices.md "Tests"): a throwaway
 * PostgreSQL 15 (scripts/pg-cluster.sh), a real SMTP server on loopback
 * (aiosmtpd, tests/main/notice_smtpd.py), the SIM900 simulator on a pty,
 * and maind-notify's engine in a child process (killed with SIGKILL where
 * the test says so). What was received is read back: the message as the
 * SMTP server parsed it, the SMS the modem sent, the PDF letter through
 * pdftotext. Expectations come from the notices the test queued.
 *
 * Skipped (with a message) only when PostgreSQL 15, python3-aiosmtpd or
 * poppler-utils is absent.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libpq-fe.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "mainctl_parts.h"
#include "maind_pg.h"
#include "notice_sms.h"
#include "notify.h"
#include "notify_config.h"
#include "pg_scratch.h"
#include "sim900sim.h"

#define PYTHON		"/usr/bin/python3"

struct world {
	char dir[64], pgdir[128], conninfo[256], mail[128], spool[128], smslog[128], conf[128];
	pid_t notifier, smtpd, modem;
	int smtpd_in;			/* its stdin: closing it stops it */
	int modem_ctl, modem_reply;	/* the simulator's control lines */
	uint16_t smtp_port;
	char pty[64];
	struct notify_config cfg;
};

/* A statement with text parameters; the first column of the first row as a number. */
static int64_t pgp(const char *conninfo, const char *sql, int nv, const char *const *v)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r = PQexecParams(c, sql, nv, NULL, v, NULL, NULL, 0);
	int64_t id = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r))
		id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fprintf(stderr, "# %s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	return id;
}

/* Wait until the query gives want (or timeout_ms passes); the last value. */
static int64_t wait_value(const char *conninfo, const char *sql, int64_t want, int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms, v;

	while ((v = pg1(conninfo, sql)) != want && mono_ms() < end)
		usleep(50000);
	return v;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *b;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	if (b)
		b[n] = '\0';
	fclose(f);
	return b;
}

/* Do the words of want appear in text in the same order (white space ignored)? */
static bool words_in_order(const char *text, const char *want)
{
	const char *p = text;
	char word[256];

	while (*want) {
		size_t n;

		want += strspn(want, " \n\r\t\f");
		n = strcspn(want, " \n\r\t\f");
		if (!n)
			break;
		if (n >= sizeof(word))
			n = sizeof(word) - 1;
		memcpy(word, want, n);
		word[n] = '\0';
		want += n;
		p = strstr(p, word);
		if (!p) {
			fprintf(stderr, "# missing '%s'\n", word);
			return false;
		}
		p += n;
	}
	return true;
}

static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name), s = strlen(suffix);

		n += l > s && !strcmp(e->d_name + l - s, suffix);
	}
	closedir(d);
	return n;
}

/* ---- the SMTP server, the modem, maind-notify ---- */

static int smtpd_start(struct world *w, const char *opts)
{
	int in[2], out[2];
	char port[16] = "", portarg[16];
	ssize_t n;

	if (pipe(in) || pipe(out))
		return -1;
	snprintf(portarg, sizeof(portarg), "%u", w->smtp_port);
	w->smtpd = fork();
	if (w->smtpd == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execl(PYTHON, PYTHON, "tests/main/notice_smtpd.py", "--dir", w->mail, "--port",
		      portarg, opts[0] ? opts : NULL, NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	w->smtpd_in = in[1];
	for (size_t len = 0; len + 1 < sizeof(port) && !strchr(port, '\n'); len += (size_t)n) {
		n = read(out[0], port + len, sizeof(port) - 1 - len);
		if (n <= 0)
			break;
		port[len + (size_t)n] = '\0';
	}
	close(out[0]);
	if (!strchr(port, '\n'))
		return -1;
	w->smtp_port = (uint16_t)atoi(port);
	return w->smtp_port ? 0 : -1;
}

static void smtpd_stop(struct world *w)
{
	if (w->smtpd > 0) {
		close(w->smtpd_in);
		kill(w->smtpd, SIGTERM);
		waitpid(w->smtpd, NULL, 0);
		w->smtpd = 0;
	}
}

static int modem_start(struct world *w)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), ctl[2], rep[2];
	struct termios t;
	const char *name;
	int slave;

	if (m < 0 || grantpt(m) || unlockpt(m) || !(name = ptsname(m)))
		return -1;
	snprintf(w->pty, sizeof(w->pty), "%s", name);
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);	/* kept open: raw, no pty echo */
	if (slave < 0 || tcgetattr(slave, &t))
		return -1;
	cfmakeraw(&t);
	tcsetattr(slave, TCSANOW, &t);
	if (pipe(ctl) || pipe(rep))
		return -1;
	w->modem = fork();
	if (w->modem == 0) {
		struct sim900sim s;

		close(ctl[1]);
		close(rep[0]);
		sim900sim_init(&s, m, 1000);
		sim900sim_run(&s, ctl[0], rep[1]);
		_exit(0);
	}
	close(m);
	close(ctl[0]);
	close(rep[1]);
	w->modem_ctl = ctl[1];
	w->modem_reply = rep[0];
	return 0;
}

/* A control command to the simulator; 0 if it answered "ok". */
static int modem(struct world *w, const char *cmd)
{
	char line[300];
	ssize_t n;

	snprintf(line, sizeof(line), "%s\n", cmd);
	if (write(w->modem_ctl, line, strlen(line)) < 0)
		return -1;
	n = read(w->modem_reply, line, sizeof(line) - 1);
	if (n <= 0)
		return -1;
	line[n] = '\0';
	return strncmp(line, "ok", 2) ? -1 : 0;
}

static void notifier_start(struct world *w)
{
	w->notifier = fork();
	if (w->notifier == 0) {
		char err[512];
		int p[2];

		/* the stop line: never readable, it is killed */
		if (pipe(p))
			_exit(1);
		curl_global_init(CURL_GLOBAL_DEFAULT);
		if (notify_run(&w->cfg, p[0], 0, err, sizeof(err))) {
			fprintf(stderr, "# notify_run: %s\n", err);
			_exit(1);
		}
		_exit(0);
	}
}

static void notifier_kill(struct world *w)
{
	if (w->notifier > 0) {
		kill(w->notifier, SIGKILL);
		waitpid(w->notifier, NULL, 0);
		w->notifier = 0;
	}
}

/* A free loopback port nobody listens on. */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint16_t p = 0;

	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &al))
		p = ntohs(a.sin_port);
	close(fd);
	return p;
}

static int write_conf(struct world *w, int max_attempts)
{
	char err[512];
	FILE *f = fopen(w->conf, "w");

	if (!f)
		return -1;
	fprintf(f, "# maind-notify for a test\n[database]\nconninfo = %s\n\n"
		"[retry]\nmax_attempts = %d\nbackoff_first = 1\nbackoff_max = 2\npoll = 1\n\n"
		"[email]\nurl = smtp://127.0.0.1:%u\nfrom = bills@utility.example\n"
		"from_name = Gridmeter Utility\ntls = none\ndomain = notices.utility.example\n"
		"timeout = 10\n\n[sms]\ndevice = %s\nbaud = 115200\ntimeout = 10\nmax_parts = 4\n\n"
		"[post]\nspool = %s\nsender = Gridmeter Utility|1 Grid Road|Townsville TV1 2AB\n",
		w->conninfo, max_attempts, w->smtp_port, w->pty, w->spool);
	fclose(f);
	if (notify_config_load(&w->cfg, w->conf, err, sizeof(err))) {
		fprintf(stderr, "# %s\n", err);
		return -1;
	}
	return 0;
}

/* A customer; its id. */
static int64_t customer(struct world *w, int meter, const char *name, const char *medium,
			const char *email, const char *phone, const char *address)
{
	char m[16];
	const char *v[] = { m, name, medium, email, phone, address };

	snprintf(m, sizeof(m), "%d", meter);
	return pgp(w->conninfo, "INSERT INTO customers (town, meter, name, medium, email, phone,"
		   " address) VALUES (11, $1::integer, $2, $3, $4, $5, $6) RETURNING id", 6, v);
}

/* A notice queued the way the other parts do it: one INSERT. Its id. */
static int64_t notice(struct world *w, int64_t cust, const char *kind, int64_t ref,
		      const char *subject, const char *body)
{
	char c[24], r[24];
	const char *v[] = { c, kind, r, subject, body };

	snprintf(c, sizeof(c), "%lld", (long long)cust);
	snprintf(r, sizeof(r), "%lld", (long long)ref);
	return pgp(w->conninfo, "INSERT INTO notices (customer, kind, ref, subject, body)"
		   " VALUES ($1::integer, $2, $3::bigint, $4, $5) RETURNING id", 5, v);
}

FIXTURE(notice) {
	struct world *w;
	bool ok;
};

FIXTURE_SETUP(notice)
{
	struct world *w;
	char err[512];

	self->ok = pg_available() && access(PYTHON, X_OK) == 0 &&
		   system(PYTHON " -c 'import aiosmtpd' 2>/dev/null") == 0 &&
		   system("pdftotext -v >/dev/null 2>&1") == 0;
	if (!self->ok)
		return;
	w = self->w = calloc(1, sizeof(*w));
	ASSERT_NE(NULL, w);
	ASSERT_EQ(0, scratch_dir(w->dir, sizeof(w->dir), "notice-test"));
	snprintf(w->mail, sizeof(w->mail), "%s/mail", w->dir);
	snprintf(w->spool, sizeof(w->spool), "%s/spool", w->dir);
	snprintf(w->smslog, sizeof(w->smslog), "%s/sms.log", w->dir);
	snprintf(w->conf, sizeof(w->conf), "%s/notify.conf", w->dir);
	ASSERT_EQ(0, mkdir(w->spool, 0755));
	ASSERT_EQ(0, mkdir(w->mail, 0755));
	ASSERT_EQ(0, pg_cluster_start(w->dir, w->pgdir, sizeof(w->pgdir), w->conninfo,
				      sizeof(w->conninfo)));
	ASSERT_EQ(0, pg_schema(w->conninfo, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, modem_start(w));
	{
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "sms_log %s", w->smslog);
		ASSERT_EQ(0, modem(w, cmd));
	}
	w->smtp_port = free_port();
	ASSERT_NE(0, w->smtp_port);
}

FIXTURE_TEARDOWN(notice)
{
	struct world *w = self->w;

	if (!self->ok)
		return;
	notifier_kill(w);
	smtpd_stop(w);
	if (w->modem > 0) {
		close(w->modem_ctl);
		kill(w->modem, SIGKILL);
		waitpid(w->modem, NULL, 0);
	}
	pg_cluster_stop(w->pgdir);
	scratch_remove(w->dir);
	free(w);
}

/* SMS lines of the simulator's log for number, reassembled: the parts' text without "(k/n) ". */
static int sms_read(struct world *w, const char *number, char *text, size_t n, int *parts)
{
	char *log = slurp(w->smslog), *line, *save = NULL;
	size_t len = 0;

	*parts = 0;
	text[0] = '\0';
	if (!log)
		return 0;
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t'), *t;
		unsigned k, of;
		int skip = 0;

		if (!tab || strncmp(line, number, (size_t)(tab - line)))
			continue;
		t = tab + 1;
		if (sscanf(t, "(%u/%u) %n", &k, &of, &skip) == 2 && skip)
			t += skip;
		(*parts)++;
		for (; *t && len + 2 < n; t++) {
			if (t[0] == '\\' && t[1] == 'n') {
				text[len++] = '\n';
				t++;
			} else if (t[0] == '\\' && t[1] == '\\') {
				text[len++] = '\\';
				t++;
			} else {
				text[len++] = *t;
			}
		}
		text[len++] = ' ';
		text[len] = '\0';
	}
	free(log);
	return *parts;
}

TEST_F(notice, each_medium)
{
	struct world *w = self->w;
	char body_mail[1024], body_sms[600], body_post[12000], sql[512], want[512], path[300];
	char *txt, got[2048], pdf[40000];
	int64_t alice, bob, carol, n_mail, n_sms, n_post, created;
	int parts;

	if (!self->ok)
		SKIP(return, "PostgreSQL 15, python3-aiosmtpd or poppler-utils not installed");
	ASSERT_EQ(0, smtpd_start(w, ""));
	ASSERT_EQ(0, write_conf(w, 3));
	alice = customer(w, 1, "Alice Émilie Dupont", "email", "alice@example.net", NULL,
			 "1 Mill Lane\nTownsville TV1 3CD");
	bob = customer(w, 2, "Bob Smith", "sms", NULL, "+447700900123", "2 Mill Lane");
	carol = customer(w, 3, "Carol Jones", "post", NULL, NULL,
			 "Flat 3, Rose House\n4 Mill Lane\nTownsville\nTV1 3EF");
	ASSERT_LT(0, alice);
	ASSERT_LT(0, bob);
	ASSERT_LT(0, carol);
	snprintf(body_mail, sizeof(body_mail),
		 "Dear Alice,\n\nyour bill for November 2026 is € 42.17 (import 183.4 kWh, "
		 "export 12.0 kWh, standing charge 30 days).\nA line that is long enough to be "
		 "folded by quoted-printable encoding at seventy-six characters, with = signs "
		 "and trailing space \nPayment is due by 15 December 2026.\n");
	n_mail = notice(w, alice, "bill", 4711, "Your bill for November 2026 (€ 42.17)",
			body_mail);
	snprintf(body_sms, sizeof(body_sms),
		 "Gridmeter: the data route from your meter 2 in town 11 is broken since "
		 "14:00. Your supply is not affected. Readings are kept in the meter and will be "
		 "sent when the route is repaired. A technician has been told; no action is "
		 "needed from you. Ref 0815.");
	n_sms = notice(w, bob, "route", 815, "Data route broken", body_sms);
	{
		size_t len = 0;

		len += (size_t)snprintf(body_post + len, sizeof(body_post) - len,
					"Dear Carol Jones,\n\nthe meter at your address reported "
					"that its current transformer was opened on 3 December "
					"2026 at 02:14.\n\n");
		for (int i = 1; i <= 70; i++)
			len += (size_t)snprintf(body_post + len, sizeof(body_post) - len,
						"Paragraph %d: readings around the event are kept "
						"as evidence and a field technician will visit.\n",
						i);
		snprintf(body_post + len, sizeof(body_post) - len, "\nYours sincerely,\nThe "
			 "Gridmeter Utility\n");
	}
	n_post = notice(w, carol, "tamper", 99, "Tamper alarm at your meter", body_post);
	notifier_start(w);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM notices WHERE state = 'delivered'");
	ASSERT_EQ(3, wait_value(w->conninfo, sql, 3, 30000));

	/* e-mail: as the SMTP server parsed it */
	snprintf(path, sizeof(path), "%s/1.txt", w->mail);
	txt = slurp(path);
	ASSERT_NE(NULL, txt);
	EXPECT_EQ(1, count_files(w->mail, ".txt"));
	EXPECT_NE(NULL, strstr(txt, "rcpt-to: <alice@example.net>\n") ?: strstr(txt, "rcpt-to: alice@example.net\n"));
	EXPECT_NE(NULL, strstr(txt, "\nSubject: Your bill for November 2026 (€ 42.17)\n"));
	EXPECT_NE(NULL, strstr(txt, "\nTo: Alice Émilie Dupont <alice@example.net>\n"))
		TH_LOG("%s", txt);
	EXPECT_NE(NULL, strstr(txt, "\nFrom: Gridmeter Utility <bills@utility.example>\n"));
	snprintf(sql, sizeof(sql), "SELECT extract(epoch FROM created)::bigint FROM notices "
		 "WHERE id = %lld", (long long)n_mail);
	created = pg1(w->conninfo, sql);
	snprintf(want, sizeof(want), "\nMessage-ID: <notice-%lld.%lld@notices.utility.example>\n",
		 (long long)n_mail, (long long)created);
	EXPECT_NE(NULL, strstr(txt, want)) TH_LOG("%s", txt);
	EXPECT_NE(NULL, strstr(txt, "\nDate: "));
	EXPECT_NE(NULL, strstr(txt, "\nMIME-Version: 1.0\n"));
	EXPECT_NE(NULL, strstr(txt, "\nContent-Type: multipart/mixed\n"));
	snprintf(want, sizeof(want), "\nattachment: bill-4711.pdf application/pdf ");
	EXPECT_NE(NULL, strstr(txt, want));
	EXPECT_NE(NULL, strstr(txt, "\n\n") ? strstr(strstr(txt, "\n\n") + 2, body_mail) : NULL)
		TH_LOG("body:\n%s", strstr(txt, "\n\n"));
	free(txt);
	snprintf(path, sizeof(path), "pdftotext %s/1-bill-4711.pdf -", w->mail);
	ASSERT_EQ(0, sh("%s", path, pdf, sizeof(pdf)));
	EXPECT_TRUE(words_in_order(pdf, "Your bill for November 2026"));
	EXPECT_TRUE(words_in_order(pdf, body_mail));

	/* SMS: as the modem sent it (the € becomes EUR: the GSM 7-bit alphabet through IRA) */
	ASSERT_LT(0, sms_read(w, "+447700900123", got, sizeof(got), &parts));
	EXPECT_EQ(2, parts);	/* 282 characters: two parts of at most 160 septets */
	EXPECT_TRUE(words_in_order(got, body_sms));
	EXPECT_TRUE(words_in_order(body_sms, got));
	{
		struct sms_parts sp;
		char *log = slurp(w->smslog);

		sms_compose(body_sms, 4, &sp);
		EXPECT_EQ((unsigned)parts, sp.n);
		for (unsigned k = 0; k < sp.n; k++) {
			EXPECT_GE(SMS_SEPTETS, (int)sms_septets(sp.part[k]));
			EXPECT_NE(NULL, strstr(log, sp.part[k]));
		}
		free(log);
	}

	/* post: the letter in the spool, read back */
	snprintf(path, sizeof(path), "pdftotext -layout %s/notice-%lld.pdf -", w->spool,
		 (long long)n_post);
	ASSERT_EQ(0, sh("%s", path, pdf, sizeof(pdf)));
	EXPECT_TRUE(words_in_order(pdf, "Gridmeter Utility 1 Grid Road Townsville TV1 2AB "
				   "Carol Jones Flat 3, Rose House 4 Mill Lane Townsville TV1 3EF "
				   "Tamper alarm at your meter"));
	EXPECT_TRUE(words_in_order(pdf, body_post));
	{
		int pages = 0;

		for (char *p = pdf; *p; p++)
			pages += *p == '\f';
		EXPECT_LE(2, pages);	/* 70 paragraphs do not fit on one page */
		snprintf(want, sizeof(want), "page %d of %d", pages, pages);
		EXPECT_NE(NULL, strstr(pdf, want));
	}

	/* each notice exactly one attempt, sent, and its medium recorded */
	EXPECT_EQ(3, pg1(w->conninfo, "SELECT count(*) FROM notice_attempts WHERE outcome = 'sent'"));
	EXPECT_EQ(3, pg1(w->conninfo, "SELECT count(*) FROM notice_attempts"));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM notices WHERE attempts = 1 AND "
		 "delivered_at IS NOT NULL AND ((id = %lld AND medium = 'email') OR (id = %lld AND "
		 "medium = 'sms') OR (id = %lld AND medium = 'post'))", (long long)n_mail,
		 (long long)n_sms, (long long)n_post);
	EXPECT_EQ(3, pg1(w->conninfo, sql));
}


/* An operator who is told about failed notices; its id. */
static int64_t operator(struct world *w, const char *name, const char *email, const char *phone)
{
	const char *v[] = { name, email, phone };

	return pgp(w->conninfo, "INSERT INTO operators (name, pk, email, phone) VALUES"
		   " ($1, decode(md5($1) || md5($1 || 'pk'), 'hex'), $2, $3) RETURNING id", 3, v);
}

/*
 * The SMTP server is down and the network refuses every SMS: each notice is
 * tried max_attempts times with a growing wait, then marked failed with
 * its last error, an alert raised and every operator told; the operators'
 * own notices fail the same way and stop there. Nothing is deleted. With
 * the server back, notice-retry delivers the e-mail and closes its alert.
 */
TEST_F(notice, retries_then_reports)
{
	struct world *w = self->w;
	char sql[512], err[256], idtxt[24], got[1024];
	int64_t alice, bob, n_mail, n_sms, ops;
	int parts;

	if (!self->ok)
		SKIP(return, "PostgreSQL 15, python3-aiosmtpd or poppler-utils not installed");
	ASSERT_EQ(0, write_conf(w, 3));		/* nothing listens on the SMTP port */
	ASSERT_EQ(0, modem(w, "cms 42 100"));	/* network congestion, every time */
	ASSERT_LT(0, operator(w, "olga", "olga@utility.example", NULL));
	ASSERT_LT(0, operator(w, "omar", NULL, "+447700900999"));
	ASSERT_LT(0, operator(w, "otto", NULL, NULL));	/* no way to reach him: not told */
	ops = 2;
	alice = customer(w, 1, "Alice", "email", "alice@example.net", NULL, "1 Mill Lane");
	bob = customer(w, 2, "Bob", "sms", NULL, "+447700900123", "2 Mill Lane");
	n_mail = notice(w, alice, "trip", 1, "Your supply tripped", "The main relay opened.");
	n_sms = notice(w, bob, "lockout", 2, "Lockout", "Your meter locked out.");
	notifier_start(w);
	/* the two notices, then the operators' notices about them: all failed */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM notices WHERE state = 'failed'");
	ASSERT_EQ(2 + 2 * ops, wait_value(w->conninfo, sql, 2 + 2 * ops, 40000));
	notifier_kill(w);
	/* none lost, none delivered, nothing more created */
	EXPECT_EQ(2 + 2 * ops, pg1(w->conninfo, "SELECT count(*) FROM notices"));
	EXPECT_EQ(0, pg1(w->conninfo, "SELECT count(*) FROM notices WHERE state <> 'failed'"));
	EXPECT_EQ(0, count_files(w->mail, ".txt"));
	EXPECT_EQ(0, sms_read(w, "+447700900123", got, sizeof(got), &parts));
	/* three attempts each, every one recorded with its error */
	EXPECT_EQ(0, pg1(w->conninfo, "SELECT count(*) FROM notices WHERE attempts <> 3"));
	EXPECT_EQ(3 * (2 + 2 * ops), pg1(w->conninfo, "SELECT count(*) FROM notice_attempts "
					 "WHERE outcome = 'failed' AND error IS NOT NULL"));
	snprintf(sql, sizeof(sql), "SELECT last_error FROM notices WHERE id = %lld",
		 (long long)n_sms);
	pgs(w->conninfo, sql, err, sizeof(err));
	EXPECT_NE(NULL, strstr(err, "+CMS ERROR: 42")) TH_LOG("%s", err);
	snprintf(sql, sizeof(sql), "SELECT last_error FROM notices WHERE id = %lld",
		 (long long)n_mail);
	pgs(w->conninfo, sql, err, sizeof(err));
	EXPECT_NE(NULL, strstr(err, "smtp://127.0.0.1:")) TH_LOG("%s", err);
	/* the waits grew: attempt k+1 started at least backoff(k) after attempt k ended */
	EXPECT_EQ(0, pg1(w->conninfo, "SELECT count(*) FROM notice_attempts a JOIN "
			 "notice_attempts b ON b.notice = a.notice AND b.n = a.n + 1 WHERE "
			 "b.started - a.finished < make_interval(secs => least(2, a.n) - 0.05)"));
	/* reported: an open alert per notice (with the last error), the operators told once */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM alerts WHERE rule = 'notice-failed' AND "
		 "state = 'open' AND key IN ('notice-failed:%lld', 'notice-failed:%lld') AND "
		 "evidence::json->>'last_error' <> '' AND meter IN (1, 2)", (long long)n_mail,
		 (long long)n_sms);
	EXPECT_EQ(2, pg1(w->conninfo, sql));
	EXPECT_EQ(2 + 2 * ops, pg1(w->conninfo, "SELECT count(*) FROM alerts"));
	snprintf(sql, sizeof(sql), "SELECT count(DISTINCT (operator, ref)) FROM notices WHERE "
		 "kind = 'notice-failed' AND ref IN (%lld, %lld) AND body LIKE '%%notice-retry%%'",
		 (long long)n_mail, (long long)n_sms);
	EXPECT_EQ(2 * ops, pg1(w->conninfo, sql));
	EXPECT_EQ(0, pg1(w->conninfo, "SELECT count(*) FROM notices n JOIN operators o ON "
			 "o.id = n.operator WHERE o.name = 'otto'"));

	/* the server is back: notice-retry delivers it and closes the alert */
	ASSERT_EQ(0, smtpd_start(w, ""));
	{
		const struct mainctl_ctx x = { w->conninfo, w->conninfo, NULL };
		char *args[] = { idtxt };

		snprintf(idtxt, sizeof(idtxt), "%lld", (long long)n_mail);
		char out[300], *shown;
		int keep = dup(1), fd;

		snprintf(out, sizeof(out), "%s/shown", w->dir);
		/* mainctl notice ID: the text, the error and the three attempts */
		fflush(stdout);
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		close(fd);
		EXPECT_EQ(0, mctl_notice(&x, "notice", 1, args));
		fflush(stdout);
		dup2(keep, 1);
		close(keep);
		shown = slurp(out);
		ASSERT_NE(NULL, shown);
		EXPECT_NE(NULL, strstr(shown, "The main relay opened."));
		EXPECT_NE(NULL, strstr(shown, "failed"));
		EXPECT_NE(NULL, strstr(shown, "last error  smtp://127.0.0.1:")) TH_LOG("%s", shown);
		{
			int failed = 0;

			for (char *p = shown; (p = strstr(p, "  failed  ")); p++)
				failed++;
			EXPECT_EQ(3, failed) TH_LOG("%s", shown);
		}
		free(shown);
		ASSERT_EQ(0, mctl_notice(&x, "notice-retry", 1, args));
		EXPECT_EQ(-2, mctl_notice(&x, "supply", 0, NULL));
	}
	notifier_start(w);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM notices WHERE id = %lld AND state = "
		 "'delivered' AND attempts = 1", (long long)n_mail);
	ASSERT_EQ(1, wait_value(w->conninfo, sql, 1, 15000));
	EXPECT_EQ(1, count_files(w->mail, ".txt"));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM alerts WHERE key = 'notice-failed:%lld' "
		 "AND state = 'closed'", (long long)n_mail);
	EXPECT_EQ(1, pg1(w->conninfo, sql));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM notice_attempts WHERE notice = %lld",
		 (long long)n_mail);
	EXPECT_EQ(4, pg1(w->conninfo, sql));	/* the history is kept */
	(void)bob;
}

/*
 * maind-notify killed while delivering (SIGKILL): the SMTP server holds
 * the first RCPT TO, the modem does not answer the first AT+CMGS. After a
 * restart each notice is delivered exactly once: one message with the
 * notice's Message-ID, one SMS; the interrupted attempts are recorded and
 * counted.
 */
TEST_F(notice, killed_mid_delivery)
{
	struct world *w = self->w;
	char sql[512], got[1024], path[300], *txt;
	int64_t alice, bob, n_mail, n_sms;
	int parts;

	if (!self->ok)
		SKIP(return, "PostgreSQL 15, python3-aiosmtpd or poppler-utils not installed");
	ASSERT_EQ(0, smtpd_start(w, "--stall-first"));
	ASSERT_EQ(0, write_conf(w, 5));
	ASSERT_EQ(0, modem(w, "mute CMGS 1"));
	alice = customer(w, 1, "Alice", "email", "alice@example.net", NULL, "1 Mill Lane");
	bob = customer(w, 2, "Bob", "sms", NULL, "+447700900123", "2 Mill Lane");
	n_mail = notice(w, alice, "bill", 5, "Your bill", "Your bill is 12.34 EUR.");
	n_sms = notice(w, bob, "tamper", 6, "Tamper", "Tamper alarm at your meter.");
	/* the e-mail: killed while the server holds RCPT TO */
	notifier_start(w);
	snprintf(path, sizeof(path), "%s/stalled", w->mail);
	for (int64_t end = mono_ms() + 15000; access(path, F_OK) && mono_ms() < end;)
		usleep(20000);
	ASSERT_EQ(0, access(path, F_OK));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM notice_attempts WHERE notice = %lld AND "
		 "outcome = 'sending'", (long long)n_mail);
	ASSERT_EQ(1, pg1(w->conninfo, sql));
	notifier_kill(w);
	/* the SMS: killed while waiting for the prompt */
	notifier_start(w);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM notices WHERE id = %lld AND state = "
		 "'delivered'", (long long)n_mail);
	ASSERT_EQ(1, wait_value(w->conninfo, sql, 1, 15000));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM notice_attempts WHERE notice = %lld AND "
		 "outcome = 'sending'", (long long)n_sms);
	ASSERT_EQ(1, wait_value(w->conninfo, sql, 1, 15000));
	usleep(300000);		/* well into the wait for "> " */
	notifier_kill(w);
	notifier_start(w);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM notices WHERE state = 'delivered'");
	ASSERT_EQ(2, wait_value(w->conninfo, sql, 2, 20000));
	notifier_kill(w);
	/* exactly once each */
	EXPECT_EQ(1, count_files(w->mail, ".txt"));
	snprintf(path, sizeof(path), "%s/1.txt", w->mail);
	txt = slurp(path);
	ASSERT_NE(NULL, txt);
	snprintf(sql, sizeof(sql), "Message-ID: <notice-%lld.", (long long)n_mail);
	EXPECT_NE(NULL, strstr(txt, sql));
	free(txt);
	EXPECT_EQ(1, sms_read(w, "+447700900123", got, sizeof(got), &parts));
	EXPECT_TRUE(words_in_order(got, "Tamper alarm at your meter."));
	/* each: one interrupted attempt, one sent, both counted */
	EXPECT_EQ(2, pg1(w->conninfo, "SELECT count(*) FROM notice_attempts WHERE outcome = "
			 "'interrupted' AND stage = 'before'"));
	EXPECT_EQ(2, pg1(w->conninfo, "SELECT count(*) FROM notice_attempts WHERE outcome = 'sent'"));
	EXPECT_EQ(2, pg1(w->conninfo, "SELECT count(*) FROM notices WHERE attempts = 2"));

	/*
	 * Killed after the Ctrl-Z, before the network's answer: the modem may
	 * have sent it. Not sent again blindly: failed, reported, one SMS.
	 */
	ASSERT_EQ(0, modem(w, "sms_delay 8000"));
	n_sms = notice(w, bob, "trip", 7, "Trip", "Your supply tripped at 14:02.");
	notifier_start(w);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM notice_attempts WHERE notice = %lld AND "
		 "outcome = 'sending' AND stage = 'handed'", (long long)n_sms);
	ASSERT_EQ(1, wait_value(w->conninfo, sql, 1, 15000));
	notifier_kill(w);
	ASSERT_EQ(0, modem(w, "sms_delay 0"));
	notifier_start(w);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM notices WHERE id = %lld AND state = "
		 "'failed' AND last_error LIKE '%%not sent again blindly%%'", (long long)n_sms);
	ASSERT_EQ(1, wait_value(w->conninfo, sql, 1, 15000));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM notice_attempts WHERE notice = %lld AND "
		 "outcome = 'unknown'", (long long)n_sms);
	EXPECT_EQ(1, pg1(w->conninfo, sql));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM alerts WHERE key = 'notice-failed:%lld'",
		 (long long)n_sms);
	EXPECT_EQ(1, pg1(w->conninfo, sql));
	sms_read(w, "+447700900123", got, sizeof(got), &parts);
	EXPECT_EQ(2, parts);	/* the tamper notice and this one, once */
}

TEST_HARNESS_MAIN
