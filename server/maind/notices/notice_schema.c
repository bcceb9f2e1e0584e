// SPDX-License-Identifier: GPL-2.0
/*
 * maind notices: its tables (Documentation/notices.md). The notices table
 * itself is the core's (maind_pg.c): anyone queues a notice with one
 * INSERT. This part keeps every delivery attempt beside it, and wakes
 * maind-notify (LISTEN gm_notices) when a notice is queued.
 */
#include <stddef.h>

#include "maind_pg.h"

const char *const mnotice_schema_sql[] = {
	/* one row per delivery attempt, written before anything is handed to a
	 * server or modem: outcome sending (in flight), sent, failed,
	 * interrupted (maind-notify stopped before handing anything over) or
	 * unknown (stopped after handing it over, before the answer) */
	"CREATE TABLE IF NOT EXISTS notice_attempts ("
	" id bigserial PRIMARY KEY, notice bigint NOT NULL REFERENCES notices(id),"
	" n integer NOT NULL, medium text NOT NULL, recipient text NOT NULL,"
	" message_id text,"
	" started timestamptz NOT NULL DEFAULT now(), finished timestamptz,"
	" stage text NOT NULL DEFAULT 'before' CHECK (stage IN ('before', 'handed')),"
	" parts_sent integer NOT NULL DEFAULT 0,"	/* SMS parts the network took */
	" outcome text NOT NULL DEFAULT 'sending' CHECK (outcome IN"
	"  ('sending', 'sent', 'failed', 'interrupted', 'unknown')),"
	" error text)",
	"CREATE INDEX IF NOT EXISTS notice_attempts_notice ON notice_attempts (notice)",
	"CREATE INDEX IF NOT EXISTS notices_due ON notices (next_try) WHERE state = 'queued'",
	"CREATE OR REPLACE FUNCTION gm_notices_wake() RETURNS trigger LANGUAGE plpgsql AS"
	" $$BEGIN PERFORM pg_notify('gm_notices', ''); RETURN NULL; END$$",
	"CREATE OR REPLACE TRIGGER notices_wake AFTER INSERT OR UPDATE OF state, next_try ON notices"
	" FOR EACH STATEMENT EXECUTE FUNCTION gm_notices_wake()",
	NULL,
};
