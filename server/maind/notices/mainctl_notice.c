// SPDX-License-Identifier: GPL-2.0
/*
 * mainctl: the notices part's commands (mainctl_parts.h,
 * Documentation/notices.md "mainctl").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "mainctl_parts.h"
#include "parse.h"

void mctl_notice_usage(void)
{
	fprintf(stderr,
		"  notices [--failed|--queued]      notices, newest first (the newest 200)\n"
		"  notice ID                        one notice, its text and every attempt\n"
		"  notice-retry ID                  queue a failed notice again (attempts from 0)\n"
		"  notice-medium CUSTOMER email|sms|post [CONTACT]\n"
		"                                   how a customer is told (CONTACT: the address\n"
		"                                   or number for email and sms)\n");
}

static PGconn *db(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "mainctl: PostgreSQL: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

static const char Q_LIST[] =
	"SELECT n.id, to_char(n.created AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS created,"
	" CASE WHEN n.customer IS NOT NULL THEN 'customer ' || n.customer"
	"  ELSE 'operator ' || o.name END AS recipient, n.kind, n.state,"
	" coalesce(n.medium, c.medium, 'email') AS medium, n.attempts,"
	" CASE WHEN n.state = 'queued' THEN"
	"  to_char(n.next_try AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') END AS next_try,"
	" left(n.subject, 40) AS subject, left(n.last_error, 60) AS last_error"
	" FROM notices n LEFT JOIN customers c ON c.id = n.customer"
	" LEFT JOIN operators o ON o.id = n.operator"
	" WHERE $1 = '' OR n.state = $1 ORDER BY n.id DESC LIMIT 200";

static int show(PGconn *c, const char *id)
{
	const char *v[] = { id };
	PGresult *r = mctl_q(c, "SELECT n.id, n.kind, n.ref, n.state, n.attempts, n.medium,"
			" to_char(n.created AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',"
			" to_char(n.delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',"
			" to_char(n.next_try AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',"
			" n.last_error, n.subject, n.body,"
			" CASE WHEN n.customer IS NOT NULL THEN format('customer %s, %s (town %s"
			" meter %s), chose %s: %s', c.id, c.name, c.town, c.meter, c.medium,"
			" CASE c.medium WHEN 'email' THEN c.email WHEN 'sms' THEN c.phone"
			" ELSE replace(c.address, E'\\n', ', ') END)"
			" ELSE format('operator %s (%s)', o.name, coalesce(o.email, o.phone)) END"
			" FROM notices n LEFT JOIN customers c ON c.id = n.customer"
			" LEFT JOIN operators o ON o.id = n.operator WHERE n.id = $1::bigint", 1, v);
	static const char *const label[] = {
		"notice", "kind", "about", "state", "attempts", "medium", "created", "delivered",
		"next try", "last error", "subject",
	};

	if (!r)
		return 1;
	if (!PQntuples(r)) {
		fprintf(stderr, "mainctl: no notice %s\n", id);
		PQclear(r);
		return 1;
	}
	for (int f = 0; f < 11; f++)
		if (!PQgetisnull(r, 0, f) && (f != 8 || !strcmp(PQgetvalue(r, 0, 3), "queued")))
			printf("%-11s %s\n", label[f], PQgetvalue(r, 0, f));
	printf("%-11s %s\n\n%s\n\n", "to", PQgetvalue(r, 0, 12), PQgetvalue(r, 0, 11));
	PQclear(r);
	r = mctl_q(c, "SELECT n AS attempt, medium, recipient,"
	      " to_char(started AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS started,"
	      " outcome, parts_sent AS sms_parts, message_id, error"
	      " FROM notice_attempts WHERE notice = $1::bigint ORDER BY id", 1, v);
	if (!r)
		return 1;
	mctl_table(r);
	PQclear(r);
	return 0;
}

int mctl_notice(const struct mainctl_ctx *x, const char *cmd, int argc, char **args)
{
	PGconn *c;
	PGresult *r = NULL;
	uint64_t id;
	int rc = 0;

	if (strcmp(cmd, "notices") && strcmp(cmd, "notice") && strcmp(cmd, "notice-retry") &&
	    strcmp(cmd, "notice-medium"))
		return -2;
	if (!strcmp(cmd, "notices")) {
		const char *state = "";

		if (argc > 1 || (argc == 1 && strcmp(args[0], "--failed") &&
				 strcmp(args[0], "--queued"))) {
			mctl_notice_usage();
			return 2;
		}
		if (argc == 1)
			state = args[0][2] == 'f' ? "failed" : "queued";
		c = db(x->report);
		if (!c)
			return 1;
		r = mctl_q(c, Q_LIST, 1, &state);
		if (r)
			mctl_table(r);
		rc = r ? 0 : 1;
	} else if (!strcmp(cmd, "notice-medium")) {
		const char *m = argc >= 2 ? args[1] : "";
		bool post = !strcmp(m, "post");

		if (argc < 2 || argc > 3 || parse_u64(args[0], 1, INT32_MAX, &id) ||
		    (strcmp(m, "email") && strcmp(m, "sms") && !post) || (!post && argc != 3)) {
			mctl_notice_usage();
			return 2;
		}
		c = db(x->conninfo);
		if (!c)
			return 1;
		const char *v[] = { args[0], m, argc == 3 ? args[2] : NULL };

		r = mctl_q(c, "UPDATE customers SET medium = $2,"
		      " email = CASE WHEN $2 = 'email' THEN $3 ELSE email END,"
		      " phone = CASE WHEN $2 = 'sms' THEN $3 ELSE phone END"
		      " WHERE id = $1::integer RETURNING id", 3, v);
		if (r && !PQntuples(r))
			fprintf(stderr, "mainctl: no customer %s\n", args[0]);
		rc = r && PQntuples(r) ? 0 : 1;
	} else {
		if (argc != 1 || parse_u64(args[0], 1, INT64_MAX, &id)) {
			mctl_notice_usage();
			return 2;
		}
		c = db(!strcmp(cmd, "notice") ? x->report : x->conninfo);
		if (!c)
			return 1;
		if (!strcmp(cmd, "notice")) {
			rc = show(c, args[0]);
		} else {
			const char *v[] = { args[0] };

			r = mctl_q(c, "UPDATE notices SET state = 'queued', attempts = 0, next_try = now()"
			      " WHERE id = $1::bigint AND state <> 'delivered' RETURNING id", 1, v);
			if (r && !PQntuples(r))
				fprintf(stderr, "mainctl: notice %s does not exist or was delivered\n",
					args[0]);
			else if (r)
				printf("notice %s queued again\n", args[0]);
			rc = r && PQntuples(r) ? 0 : 1;
		}
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}
