// SPDX-License-Identifier: GPL-2.0
/* maind-notify's engine (notify.h). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maind_pg.h"
#include "notice_letter.h"
#include "notice_mail.h"
#include "notice_sms.h"
#include "notify.h"

/* ---- SQL ---- */

static PGresult *run(PGconn *c, const char *sql, int nv, const char *const *v, char *err,
		     size_t errlen)
{
	PGresult *r = PQexecParams(c, sql, nv, NULL, v, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return r;
	snprintf(err, errlen, "%s", PQresultErrorMessage(r));
	err[strcspn(err, "\n")] = '\0';
	PQclear(r);
	return NULL;
}

static int exec(PGconn *c, const char *sql, int nv, const char *const *v, char *err,
		size_t errlen)
{
	PGresult *r = run(c, sql, nv, v, err, errlen);

	PQclear(r);
	return r ? 0 : -1;
}

static const char Q_CLAIM[] =
	"SELECT n.id, n.kind, coalesce(n.ref::text, ''), n.subject, n.body,"
	" extract(epoch FROM n.created)::bigint, n.customer IS NOT NULL,"
	" coalesce(c.name, o.name), coalesce(c.address, ''),"
	" coalesce(c.medium, CASE WHEN o.email IS NOT NULL THEN 'email'"
	"  WHEN o.phone IS NOT NULL THEN 'sms' ELSE 'email' END),"
	" coalesce(c.email, o.email, ''), coalesce(c.phone, o.phone, ''), n.attempts,"
	" extract(epoch FROM now())::bigint, coalesce(c.id, o.id)"
	" FROM notices n LEFT JOIN customers c ON c.id = n.customer"
	" LEFT JOIN operators o ON o.id = n.operator"
	" WHERE n.state = 'queued' AND n.next_try <= now()"
	" ORDER BY n.next_try, n.id LIMIT 1 FOR NO KEY UPDATE OF n SKIP LOCKED";

/* Attempts a stopped maind-notify left in flight (we hold the notice: nobody else is sending). */
static const char Q_ORPHANS[] =
	"UPDATE notice_attempts SET finished = now(),"
	" outcome = CASE WHEN stage = 'handed' THEN 'unknown' ELSE 'interrupted' END,"
	" error = CASE WHEN stage = 'handed' THEN 'maind-notify stopped after handing it over,"
	" before the answer' ELSE 'maind-notify stopped before handing anything over' END"
	" WHERE notice = $1 AND outcome = 'sending' RETURNING medium, stage, parts_sent";

struct job {
	struct notify *n;
	int64_t id, created, now;
	int attempts;		/* before this one (interrupted ones included) */
	int orphans;		/* attempts a stopped maind-notify left in flight */
	bool customer;
	const char *kind, *ref, *subject, *body, *name, *address, *medium, *email, *phone;
	int64_t who;
	char attempt_id[24];
	char message_id[256];
	char recipient[256];
	unsigned first_part;	/* SMS parts already accepted by an earlier attempt */
	bool unknown_sms;	/* an earlier SMS attempt's outcome is unknown */
	int log_failed;
};

static int mark_handed(void *arg)
{
	struct job *j = arg;
	const char *v[] = { j->attempt_id };

	if (exec(j->n->log, "UPDATE notice_attempts SET stage = 'handed' WHERE id = $1", 1, v,
		 j->n->err, sizeof(j->n->err))) {
		j->log_failed = 1;
		return -1;
	}
	return 0;
}

static int sms_handing(void *arg, unsigned k)
{
	struct job *j = arg;
	char pk[16];
	const char *v[] = { j->attempt_id, pk };

	snprintf(pk, sizeof(pk), "%u", k);
	if (exec(j->n->log, "UPDATE notice_attempts SET stage = 'handed', parts_sent = $2"
		 " WHERE id = $1", 2, v, j->n->err, sizeof(j->n->err))) {
		j->log_failed = 1;
		return -1;
	}
	return 0;
}

static void sms_sent(void *arg, unsigned k, int mr)
{
	struct job *j = arg;
	char pk[16];
	const char *v[] = { j->attempt_id, pk };

	(void)mr;
	snprintf(pk, sizeof(pk), "%u", k + 1);
	/* if this fails the attempt stays "handed": unknown, never resent blindly */
	exec(j->n->log, "UPDATE notice_attempts SET stage = 'before', parts_sent = $2"
	     " WHERE id = $1", 2, v, j->n->err, sizeof(j->n->err));
}

static unsigned char *letter_of(const struct job *j, size_t *len)
{
	struct letter_in in = {
		.sender = j->n->cfg->sender, .to_name = j->name, .address = j->address,
		.date = j->created, .subject = j->subject, .body = j->body, .notice = j->id,
	};
	unsigned pages;

	return letter_pdf(&in, len, &pages);
}

/* 0 sent, -1 temporary, -2 permanent; why in err. */
static int deliver(struct job *j, char *err, size_t errlen)
{
	const struct notify_config *cfg = j->n->cfg;

	if (!strcmp(j->medium, "email")) {
		const char *from_name = cfg->from_name;
		unsigned char *pdf = NULL;
		size_t len = 0, pdf_len = 0;
		char *msg, pdf_name[64];
		int rc;

		if (!cfg->smtp_url[0]) {
			snprintf(err, errlen, "no [email] url in notify.conf");
			return -1;
		}
		if (!strcmp(j->kind, "bill") && cfg->attach_letter)
			pdf = letter_of(j, &pdf_len);
		snprintf(pdf_name, sizeof(pdf_name), "%s-%s.pdf", j->kind,
			 j->ref[0] ? j->ref : "notice");
		struct mail_in in = {
			.from_name = from_name, .from_addr = cfg->from_address,
			.to_name = j->name, .to_addr = j->email, .subject = j->subject,
			.body = j->body, .message_id = j->message_id, .date = j->now,
			.pdf = pdf, .pdf_len = pdf_len, .pdf_name = pdf_name,
		};

		msg = mail_compose(&in, &len);
		free(pdf);
		if (!msg) {
			snprintf(err, errlen, "cannot compose a message to '%s'", j->email);
			return -2;
		}
		rc = mail_send(cfg, j->email, msg, len, mark_handed, j, err, errlen);
		free(msg);
		return rc;
	}
	if (!strcmp(j->medium, "sms")) {
		struct sms_parts *p;
		struct sms_hooks h = { sms_handing, sms_sent, j };
		enum sms_result rc;

		if (!cfg->sms_device[0]) {
			snprintf(err, errlen, "no [sms] device in notify.conf");
			return -1;
		}
		p = malloc(sizeof(*p));
		if (!p) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		sms_compose(j->body, cfg->sms_max_parts, p);
		rc = sms_send(cfg->sms_device, cfg->sms_baud, cfg->sms_timeout_s, j->phone, p,
			      j->first_part, &h, err, errlen);
		free(p);
		return rc == SMS_OK ? 0 : rc == SMS_PERMANENT ? -2 : -1;
	}
	/* post */
	unsigned char *pdf;
	size_t len;
	char path[600];
	int rc;

	if (!cfg->spool[0]) {
		snprintf(err, errlen, "no [post] spool in notify.conf");
		return -1;
	}
	pdf = letter_of(j, &len);
	if (!pdf) {
		snprintf(err, errlen, "cairo could not render the letter");
		return -1;
	}
	/* writing the same file again is harmless: no point of no return to record */
	rc = letter_spool(cfg->spool, j->id, pdf, len, path, sizeof(path), err, errlen);
	free(pdf);
	return rc;
}

/* Where it goes, or why it cannot go anywhere (permanent). */
static int recipient(struct job *j, char *err, size_t errlen)
{
	const char *who = j->customer ? "customer" : "operator";

	if (!strcmp(j->medium, "email")) {
		if (!*j->email || !mail_addr_ok(j->email)) {
			snprintf(err, errlen, "%s %" PRId64 " has %s e-mail address", who, j->who,
				 *j->email ? "no usable" : "no");
			return -1;
		}
		snprintf(j->recipient, sizeof(j->recipient), "%s", j->email);
	} else if (!strcmp(j->medium, "sms")) {
		if (!sms_number_ok(j->phone)) {
			snprintf(err, errlen, "%s %" PRId64 " has %s phone number", who, j->who,
				 *j->phone ? "no usable" : "no");
			return -1;
		}
		snprintf(j->recipient, sizeof(j->recipient), "%s", j->phone);
	} else {
		if (!*j->address) {
			snprintf(err, errlen, "%s %" PRId64 " has no postal address", who, j->who);
			return -1;
		}
		snprintf(j->recipient, sizeof(j->recipient), "%.*s", (int)strcspn(j->address, "\n"),
			 j->address);
	}
	return 0;
}

static const char Q_ALERT[] =
	"INSERT INTO alerts (rule, town, meter, severity, summary, evidence, key)"
	" SELECT 'notice-failed', c.town, c.meter, 'warning', $2,"
	" json_build_object('notice', n.id, 'kind', n.kind, 'ref', n.ref, 'customer', n.customer,"
	"  'operator', n.operator, 'medium', $3::text, 'recipient', $4::text,"
	"  'attempts', n.attempts, 'last_error', n.last_error)::text,"
	" 'notice-failed:' || n.id"
	" FROM notices n LEFT JOIN customers c ON c.id = n.customer WHERE n.id = $1"
	" ON CONFLICT (key) WHERE state = 'open' DO NOTHING";

static const char Q_TELL_OPERATORS[] =
	"INSERT INTO notices (operator, kind, ref, subject, body)"
	" SELECT o.id, 'notice-failed', $1, $2, $3 FROM operators o"
	" WHERE NOT o.revoked AND (o.email IS NOT NULL OR o.phone IS NOT NULL)";

/* A notice given up: an alert, and the operators told (not about their own failed notices). */
static int report(struct job *j, int attempts, const char *why)
{
	struct notify *n = j->n;
	char id[24], summary[1024], subject[200], *body;
	const char *medium = j->medium;
	size_t bl;
	int rc;

	snprintf(id, sizeof(id), "%" PRId64, j->id);
	snprintf(summary, sizeof(summary), "notice %" PRId64 " (%s) to %s %" PRId64 " (%s) by %s"
		 " failed after %d attempt%s: %s", j->id, j->kind,
		 j->customer ? "customer" : "operator", j->who, j->name, medium, attempts,
		 attempts == 1 ? "" : "s", why);
	const char *va[] = { id, summary, medium, j->recipient };

	if (exec(n->c, Q_ALERT, 4, va, n->err, sizeof(n->err)))
		return -1;
	if (!strcmp(j->kind, "notice-failed"))
		return 0;
	bl = strlen(summary) + strlen(j->subject) + 512;
	body = malloc(bl);
	if (!body)
		return -1;
	snprintf(subject, sizeof(subject), "Notice %" PRId64 " could not be delivered", j->id);
	snprintf(body, bl, "Notice %" PRId64 " (%s, \"%s\") to %s %" PRId64 ", %s, could not be"
		 " delivered by %s to %s after %d attempt%s.\n\nLast error: %s\n\n"
		 "It is kept, marked failed. When the cause is corrected,\n"
		 "mainctl notice-retry %" PRId64 " sends it again.\n",
		 j->id, j->kind, j->subject, j->customer ? "customer" : "operator", j->who,
		 j->name, medium, j->recipient[0] ? j->recipient : "(no address)", attempts,
		 attempts == 1 ? "" : "s", why, j->id);
	const char *vo[] = { id, subject, body };

	rc = exec(n->c, Q_TELL_OPERATORS, 3, vo, n->err, sizeof(n->err));
	free(body);
	return rc;
}

static int64_t backoff(const struct notify_config *cfg, int attempts)
{
	int64_t s = cfg->backoff_first_s;

	for (int i = 1; i < attempts && s < cfg->backoff_max_s; i++)
		s *= 2;
	return s < cfg->backoff_max_s ? s : cfg->backoff_max_s;
}

/* Commit the outcome of this attempt (rc: 0 sent, -1 temporary, -2 permanent). */
static int outcome(struct job *j, int rc, const char *why)
{
	struct notify *n = j->n;
	const struct notify_config *cfg = n->cfg;
	int attempts = j->attempts + 1;	/* j->attempts has the orphans */
	bool give_up = rc == -2 || (rc && attempts >= (int)cfg->max_attempts);
	char id[24], wait[32];
	const char *state = rc == 0 ? "delivered" : give_up ? "failed" : "queued";

	snprintf(id, sizeof(id), "%" PRId64, j->id);
	snprintf(wait, sizeof(wait), "%" PRId64, rc ? backoff(cfg, attempts) : 0);
	if (j->attempt_id[0]) {
		const char *va[] = { j->attempt_id, rc ? "failed" : "sent", rc ? why : NULL };

		if (exec(n->c, "UPDATE notice_attempts SET outcome = $2, error = $3,"
			 " finished = now() WHERE id = $1", 3, va, n->err, sizeof(n->err)))
			return -1;
	}
	char orphans[16];
	const char *vn[] = { id, state, j->medium, rc ? why : NULL, wait, orphans };

	snprintf(orphans, sizeof(orphans), "%d", j->orphans);
	if (exec(n->c, "UPDATE notices SET state = $2, medium = $3, last_error = $4,"
		 " attempts = attempts + 1 + $6::integer,"
		 " next_try = now() + make_interval(secs => $5::bigint),"
		 " delivered_at = CASE WHEN $2 = 'delivered' THEN now() END WHERE id = $1",
		 6, vn, n->err, sizeof(n->err)))
		return -1;
	if (rc == 0) {
		const char *vk[] = { id };

		/* delivered after all (e.g. retried by an operator): the alert is over */
		if (exec(n->c, "UPDATE alerts SET state = 'closed', closed_at = now()"
			 " WHERE key = 'notice-failed:' || $1 AND state = 'open'", 1, vk, n->err,
			 sizeof(n->err)))
			return -1;
	} else if (give_up && report(j, attempts, why)) {
		return -1;
	}
	if (exec(n->c, "COMMIT", 0, NULL, n->err, sizeof(n->err)))
		return -1;
	if (rc == 0) {
		n->delivered++;
		fprintf(stderr, "maind-notify: notice %" PRId64 ": delivered by %s to %s"
			" (attempt %d)\n", j->id, j->medium, j->recipient, attempts);
	} else if (give_up) {
		n->failed++;
		fprintf(stderr, "maind-notify: notice %" PRId64 ": failed after %d attempt%s,"
			" reported: %s\n", j->id, attempts, attempts == 1 ? "" : "s", why);
	} else {
		n->retried++;
		fprintf(stderr, "maind-notify: notice %" PRId64 ": attempt %d failed, next in %s s:"
			" %s\n", j->id, attempts, wait, why);
	}
	return 1;
}

static int64_t num(PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int notify_one(struct notify *n)
{
	PGresult *r, *o = NULL, *a = NULL;
	struct job j = { .n = n };
	char id[24], why[768] = "";
	int rc;

	if (exec(n->c, "BEGIN", 0, NULL, n->err, sizeof(n->err)))
		return -1;
	r = run(n->c, Q_CLAIM, 0, NULL, n->err, sizeof(n->err));
	if (!r || !PQntuples(r)) {
		PQclear(r);
		PQclear(PQexec(n->c, "ROLLBACK"));
		return r ? 0 : -1;
	}
	j.id = num(r, 0, 0);
	j.kind = PQgetvalue(r, 0, 1);
	j.ref = PQgetvalue(r, 0, 2);
	j.subject = PQgetvalue(r, 0, 3);
	j.body = PQgetvalue(r, 0, 4);
	j.created = num(r, 0, 5);
	j.customer = PQgetvalue(r, 0, 6)[0] == 't';
	j.name = PQgetvalue(r, 0, 7);
	j.address = PQgetvalue(r, 0, 8);
	j.medium = PQgetvalue(r, 0, 9);
	j.email = PQgetvalue(r, 0, 10);
	j.phone = PQgetvalue(r, 0, 11);
	j.attempts = (int)num(r, 0, 12);
	j.now = num(r, 0, 13);
	j.who = num(r, 0, 14);
	snprintf(id, sizeof(id), "%" PRId64, j.id);
	/* the same Message-ID on every attempt: a receiver can drop a duplicate */
	snprintf(j.message_id, sizeof(j.message_id), "notice-%" PRId64 ".%" PRId64 "@%s", j.id,
		 j.created, n->cfg->domain);

	const char *v1[] = { id };

	o = run(n->c, Q_ORPHANS, 1, v1, n->err, sizeof(n->err));
	if (!o)
		goto db;
	/* interrupted attempts count: a notice that stops maind-notify every time ends failed */
	j.orphans = PQntuples(o);
	j.attempts += j.orphans;
	for (int i = 0; i < PQntuples(o); i++)
		if (!strcmp(PQgetvalue(o, i, 0), "sms") && !strcmp(PQgetvalue(o, i, 1), "handed"))
			j.unknown_sms = true;
	if (recipient(&j, why, sizeof(why))) {
		rc = outcome(&j, -2, why);
		goto done;
	}
	if (j.unknown_sms && !strcmp(j.medium, "sms")) {
		snprintf(why, sizeof(why), "an earlier attempt handed a part to the modem and "
			 "maind-notify stopped before the answer: not sent again blindly "
			 "(mainctl notice %" PRId64 " shows the parts; notice-retry sends the rest)",
			 j.id);
		rc = outcome(&j, -2, why);
		goto done;
	}
	if (!strcmp(j.medium, "sms")) {
		const char *v2[] = { id, j.recipient };

		a = run(n->c, "SELECT coalesce(max(parts_sent), 0) FROM notice_attempts"
			" WHERE notice = $1 AND medium = 'sms' AND recipient = $2", 2, v2, n->err, sizeof(n->err));
		if (!a)
			goto db;
		j.first_part = (unsigned)num(a, 0, 0);
	}
	/* the attempt, committed before anything leaves */
	const char *v3[] = { id, j.medium, j.recipient, j.message_id };

	PQclear(a);
	a = run(n->log, "INSERT INTO notice_attempts (notice, n, medium, recipient, message_id)"
		" SELECT $1, count(*) + 1, $2, $3, $4 FROM notice_attempts WHERE notice = $1"
		" RETURNING id", 4, v3, n->err, sizeof(n->err));
	if (!a)
		goto db;
	snprintf(j.attempt_id, sizeof(j.attempt_id), "%s", PQgetvalue(a, 0, 0));
	rc = deliver(&j, why, sizeof(why));
	if (j.log_failed) {
		/* the database went away at the point of no return: nothing was handed over */
		goto db;
	}
	rc = outcome(&j, rc, why);
done:
	PQclear(r);
	PQclear(o);
	PQclear(a);
	if (rc < 0)
		PQclear(PQexec(n->c, "ROLLBACK"));
	return rc;
db:
	PQclear(r);
	PQclear(o);
	PQclear(a);
	PQclear(PQexec(n->c, "ROLLBACK"));
	return -1;
}

int notify_due_in(struct notify *n, int cap)
{
	PGresult *r = run(n->c, "SELECT ceil(extract(epoch FROM min(next_try) - now()))::bigint"
			  " FROM notices WHERE state = 'queued'", 0, NULL, n->err, sizeof(n->err));
	int64_t s = cap;

	if (!r)
		return -1;
	if (!PQgetisnull(r, 0, 0))
		s = num(r, 0, 0);
	PQclear(r);
	return s < 0 ? 0 : s > cap ? cap : (int)s;
}

static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

int notify_open(struct notify *n, const struct notify_config *cfg, char *err, size_t errlen)
{
	memset(n, 0, sizeof(*n));
	n->cfg = cfg;
	n->c = PQconnectdb(cfg->conninfo);
	n->log = PQconnectdb(cfg->conninfo);
	if (PQstatus(n->c) != CONNECTION_OK || PQstatus(n->log) != CONNECTION_OK) {
		snprintf(err, errlen, "PostgreSQL: %s",
			 PQerrorMessage(PQstatus(n->c) != CONNECTION_OK ? n->c : n->log));
		err[strcspn(err, "\n")] = '\0';
		notify_close(n);
		return -1;
	}
	PQsetNoticeProcessor(n->c, quiet, NULL);
	PQsetNoticeProcessor(n->log, quiet, NULL);
	if (mpg_schema(n->c, err, errlen) ||
	    exec(n->c, "LISTEN gm_notices", 0, NULL, err, errlen)) {
		notify_close(n);
		return -1;
	}
	return 0;
}

void notify_close(struct notify *n)
{
	PQfinish(n->c);
	PQfinish(n->log);
	n->c = n->log = NULL;
}

/* Wait up to s seconds for a NOTIFY or stop_fd; 1 if stop_fd is readable. */
static int wait_for(struct notify *n, int stop_fd, int s)
{
	struct pollfd p[2] = { { stop_fd, POLLIN, 0 }, { n->c ? PQsocket(n->c) : -1, POLLIN, 0 } };
	PGnotify *e;

	if (poll(p, 2, s * 1000) < 0 && errno != EINTR)
		return 0;
	if (p[0].revents)
		return 1;
	if (n->c && (p[1].revents & POLLIN)) {
		PQconsumeInput(n->c);
		while ((e = PQnotifies(n->c)))
			PQfreemem(e);
	}
	return 0;
}

int notify_run(const struct notify_config *cfg, int stop_fd, int once, char *err,
	       size_t errlen)
{
	struct notify n;
	int down_s = 1;

	if (notify_open(&n, cfg, err, errlen))
		return -1;
	fprintf(stderr, "maind-notify: started\n");
	for (;;) {
		int r, s;

		if (!n.c) {
			if (wait_for(&n, stop_fd, down_s))
				break;
			if (notify_open(&n, cfg, err, errlen)) {
				fprintf(stderr, "maind-notify: %s\n", err);
				down_s = down_s < 30 ? down_s * 2 : 60;
				continue;
			}
			fprintf(stderr, "maind-notify: database back\n");
			down_s = 1;
		}
		r = notify_one(&n);
		if (r > 0) {
			if (wait_for(&n, stop_fd, 0))
				break;
			continue;
		}
		if (r < 0 || PQstatus(n.c) != CONNECTION_OK || PQstatus(n.log) != CONNECTION_OK) {
			fprintf(stderr, "maind-notify: %s\n", n.err);
			notify_close(&n);
			continue;
		}
		if (once)
			break;
		s = notify_due_in(&n, (int)cfg->poll_s);
		if (s < 0) {
			notify_close(&n);
			continue;
		}
		if (wait_for(&n, stop_fd, s ? s : 1))
			break;
	}
	fprintf(stderr, "maind-notify: stopped (%" PRIu64 " delivered, %" PRIu64 " retried, %"
		PRIu64 " failed)\n", n.delivered, n.retried, n.failed);
	notify_close(&n);
	return 0;
}
