// SPDX-License-Identifier: GPL-2.0
/* maind signed commands: its tables and the towns' reports (Documentation/commands.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

const char *const mcmd_schema_sql[] = {
	"CREATE SEQUENCE IF NOT EXISTS signed_ops",
	"CREATE TABLE IF NOT EXISTS signed_commands ("
	" id bigint PRIMARY KEY CHECK (id > 0),"	/* gmc_cmd.id */
	" op bigint NOT NULL,"				/* the operation: commands issued together */
	" action text NOT NULL,"			/* gmc_action_name() */
	" town integer NOT NULL, meter integer NOT NULL,"	/* meter 0: the town */
	" arg bigint NOT NULL DEFAULT 0, batch integer NOT NULL,"
	" issued timestamptz NOT NULL, expires timestamptz NOT NULL,"
	" issuer text NOT NULL,"			/* the operator who signed first */
	" blob bytea NOT NULL,"				/* gmc_encode(): what the target verifies */
	" signers text[] NOT NULL,"
	" state text NOT NULL DEFAULT 'awaiting-approval' CHECK (state IN ('awaiting-approval',"
	" 'queued', 'sent', 'delivered', 'executed', 'refused', 'expired', 'cancelled')),"
	" status smallint, status_text text,"		/* enum gmp_cmd_status, and in words */
	" reason text,"					/* why it waits */
	" queued_at timestamptz,"			/* put in its town's command queue */
	" town_tseq bigint,"				/* its commands row */
	" updated timestamptz NOT NULL DEFAULT now())",
	"CREATE INDEX IF NOT EXISTS signed_commands_op ON signed_commands (op)",
	"CREATE INDEX IF NOT EXISTS signed_commands_issued ON signed_commands (issued)",
	"CREATE INDEX IF NOT EXISTS signed_commands_pending ON signed_commands (state) "
	"WHERE state IN ('awaiting-approval', 'queued')",
	/* the commands row that carries a signed command names it */
	"ALTER TABLE commands ADD COLUMN IF NOT EXISTS cmd_id bigint",
	"CREATE INDEX IF NOT EXISTS commands_cmd_id ON commands (cmd_id) WHERE cmd_id IS NOT NULL",
	/* enum gmp_cmd_status in words (one list, used by SQL and C alike) */
	"CREATE OR REPLACE FUNCTION mcmd_status_name(s integer) RETURNS text LANGUAGE sql "
	"IMMUTABLE AS $$ SELECT CASE s WHEN 0 THEN 'ok' WHEN 1 THEN 'duplicate' "
	"WHEN 2 THEN 'unsupported' WHEN 3 THEN 'expired' WHEN 4 THEN 'invalid' "
	"WHEN 5 THEN 'storage' WHEN 6 THEN 'bad signature' WHEN 7 THEN 'unknown key' "
	"WHEN 8 THEN 'replay' WHEN 9 THEN 'needs two operators' WHEN 10 THEN 'wrong target' "
	"WHEN 11 THEN 'rate limit' WHEN 12 THEN 'not yet valid' "
	"WHEN 13 THEN 'refused by the target' WHEN 100 THEN 'withdrawn' "
	"ELSE 'status ' || s END $$",
	/*
	 * The audit log: append-only (the triggers below refuse UPDATE, DELETE
	 * and TRUNCATE) and hash-chained: hash = SHA-256(prev || canonical
	 * row), canonical row = "gridmeter audit v1\n" seq "\n" at (UTC us)
	 * "\n" then actor, what, detail each as "LENGTH:BYTES\n".
	 * mainctl audit verify recomputes it in C (cmd_audit.c).
	 */
	"CREATE TABLE IF NOT EXISTS audit_log ("
	" seq bigserial PRIMARY KEY, at timestamptz NOT NULL, actor text NOT NULL,"
	" what text NOT NULL, detail text NOT NULL,"
	" prev bytea NOT NULL CHECK (length(prev) = 32), hash bytea NOT NULL CHECK (length(hash) = 32))",
	"CREATE OR REPLACE FUNCTION audit_append(p_actor text, p_what text, p_detail text) "
	"RETURNS bigint LANGUAGE plpgsql AS $$\n"
	"DECLARE v_prev bytea; v_seq bigint; v_at timestamptz; v_us bigint;\n"
	"BEGIN\n"
	/* one appender at a time, to its commit: the chain follows seq */
	"  PERFORM pg_advisory_xact_lock(" MPG_LOCK_AUDIT ");\n"
	"  SELECT hash INTO v_prev FROM audit_log ORDER BY seq DESC LIMIT 1;\n"
	"  IF v_prev IS NULL THEN v_prev := decode(repeat('00', 32), 'hex'); END IF;\n"
	"  v_seq := nextval(pg_get_serial_sequence('audit_log', 'seq'));\n"
	"  v_at := date_trunc('microseconds', clock_timestamp());\n"
	"  v_us := (extract(epoch FROM v_at) * 1000000)::bigint;\n"
	"  INSERT INTO audit_log (seq, at, actor, what, detail, prev, hash) VALUES (v_seq, v_at,"
	"   p_actor, p_what, p_detail, v_prev, sha256(v_prev || convert_to('gridmeter audit v1' ||"
	"   E'\\n' || v_seq || E'\\n' || v_us || E'\\n' || octet_length(p_actor) || ':' || p_actor ||"
	"   E'\\n' || octet_length(p_what) || ':' || p_what || E'\\n' || octet_length(p_detail) ||"
	"   ':' || p_detail || E'\\n', 'UTF8')));\n"
	"  RETURN v_seq;\n"
	"END $$",
	"CREATE OR REPLACE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
	"BEGIN RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP; END $$",
	"CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
	"FOR EACH ROW EXECUTE FUNCTION audit_refuse()",
	"CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
	"FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse()",
	/*
	 * A signed command's commands row as maind sends it and the town
	 * answers (GMP_CMD_RESULT for the row: the town took it, or refused it;
	 * for a town's own action its verdict): the state follows, audited.
	 */
	"CREATE OR REPLACE FUNCTION mcmd_on_command() RETURNS trigger LANGUAGE plpgsql AS $$\n"
	"DECLARE s record;\n"
	"BEGIN\n"
	"  SELECT id, state, action, town, meter INTO s FROM signed_commands WHERE id = NEW.cmd_id"
	"   FOR UPDATE;\n"
	"  IF NOT FOUND THEN RETURN NULL; END IF;\n"
	/* renumbered by maind (a restored database: the town's floor was above ours) */
	"  IF NEW.tseq <> OLD.tseq THEN\n"
	"    UPDATE signed_commands SET town_tseq = NEW.tseq WHERE id = s.id;\n"
	"  END IF;\n"
	"  IF NEW.sent IS NOT NULL AND OLD.sent IS NULL AND s.state = 'queued' THEN\n"
	"    UPDATE signed_commands SET state = 'sent', updated = now() WHERE id = s.id;\n"
	"    PERFORM audit_append('maind', 'sent', format('command %s %s town %s meter %s: sent to "
	"the town as its command %s', s.id, s.action, s.town, s.meter, NEW.tseq));\n"
	"    s.state := 'sent';\n"
	"  END IF;\n"
	/* 5 storage: resent; 100 withdrawn here; 1 duplicate: the town had it already */
	"  IF NEW.status IS NULL OR NEW.status IN (1, 5, 100) OR NEW.status IS NOT DISTINCT FROM"
	"   OLD.status THEN RETURN NULL; END IF;\n"
	"  IF s.state NOT IN ('queued', 'sent', 'delivered') THEN\n"
	"    PERFORM audit_append('maind', 'town-result', format('command %s: the town answered %s "
	"(%s) after it was %s', s.id, NEW.status, mcmd_status_name(NEW.status), s.state));\n"
	"  ELSIF NEW.status = 0 AND s.meter = 0 THEN\n"
	"    UPDATE signed_commands SET state = 'executed', status = 0, status_text ="
	"     'executed by the town', updated = now() WHERE id = s.id;\n"
	"    PERFORM audit_append('maind', 'executed', format('command %s %s town %s: executed by "
	"the town', s.id, s.action, s.town));\n"
	"  ELSIF NEW.status = 0 THEN\n"
	"    UPDATE signed_commands SET status_text = 'accepted by the town', updated = now()"
	"     WHERE id = s.id AND state IN ('queued', 'sent');\n"
	"    PERFORM audit_append('maind', 'town-result', format('command %s %s town %s meter %s: "
	"accepted by the town', s.id, s.action, s.town, s.meter));\n"
	/* 3: it expired before the town could queue it (commands.md: state expired) */
	"  ELSIF NEW.status = 3 THEN\n"
	"    UPDATE signed_commands SET state = 'expired', status = 3, status_text ="
	"     'expired before the town could queue it', updated = now() WHERE id = s.id;\n"
	"    PERFORM audit_append('maind', 'expired', format('command %s %s town %s meter %s: "
	"expired before the town could queue it', s.id, s.action, s.town, s.meter));\n"
	"  ELSE\n"
	"    UPDATE signed_commands SET state = 'refused', status = NEW.status, status_text ="
	"     'refused by the town: ' || mcmd_status_name(NEW.status), updated = now()"
	"     WHERE id = s.id;\n"
	"    PERFORM audit_append('maind', 'refused', format('command %s %s town %s meter %s: "
	"refused by the town: %s', s.id, s.action, s.town, s.meter,"
	"     mcmd_status_name(NEW.status)));\n"
	"  END IF;\n"
	"  RETURN NULL;\n"
	"END $$",
	"CREATE OR REPLACE TRIGGER commands_signed_state AFTER UPDATE OF sent, status, tseq "
	"ON commands "
	"FOR EACH ROW WHEN (NEW.cmd_id IS NOT NULL) EXECUTE FUNCTION mcmd_on_command()",
	NULL,
};

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))

static const char *state_name(int64_t s)
{
	switch (s) {
	case GMP_CS_DELIVERED:	return "delivered";
	case GMP_CS_EXECUTED:	return "executed";
	case GMP_CS_REFUSED:	return "refused";
	case GMP_CS_EXPIRED:	return "expired";
	default:		return NULL;
	}
}

/* Statuses a target gives only to bytes that are not what the operators signed. */
static int tampered(int64_t status)
{
	return status == GMP_CMD_BAD_SIG || status == GMP_CMD_UNKNOWN_KEY ||
	       status == GMP_CMD_WRONG_TARGET || status == GMP_CMD_INVALID;
}

int mcmd_store_report(struct maind_pg *p, uint16_t town, const struct gmp_msg *m)
{
	const char *st = state_name(m->cmd_report.state);
	char a[24], b[24], c[24], d[24], detail[400], actor[32];
	const char *v[4] = { I64(a, m->cmd_report.cmd_id), I64(b, town), I64(c, m->cmd_report.meter),
			     I64(d, m->cmd_report.status) };
	PGresult *r;
	const char *was;
	bool final;

	snprintf(actor, sizeof(actor), "town %u", town);
	if (!st) {
		/* a bad record must not stop the town's ingest: written, not stored */
		snprintf(detail, sizeof(detail), "command %lld: report with unknown state %lld "
			 "from town %u meter %lld ignored", (long long)m->cmd_report.cmd_id,
			 (long long)m->cmd_report.state, town, (long long)m->cmd_report.meter);
		return mcmd_audit(p, actor, "report-invalid", detail);
	}
	r = mpg_query(p, "SELECT state, action FROM signed_commands WHERE id = $1 AND town = $2 "
		      "AND meter = $3 FOR UPDATE", 3, v);
	if (!r)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		snprintf(detail, sizeof(detail), "command %lld: town %u reports it %s (%lld) for "
			 "meter %lld, but no such command was issued to that target",
			 (long long)m->cmd_report.cmd_id, town, st, (long long)m->cmd_report.status,
			 (long long)m->cmd_report.meter);
		if (mcmd_audit(p, actor, "report-unknown", detail))
			return -1;
		{
			char key[48];

			snprintf(key, sizeof(key), "cmd-unknown-report:%u", town);
			return mcmd_alert(p, "cmd-unknown-report", town, (int)m->cmd_report.meter,
					  "warning", detail, "{}", key) < 0 ? -1 : 0;
		}
	}
	was = PQgetvalue(r, 0, 0);
	final = !strcmp(was, "executed") || !strcmp(was, "refused") || !strcmp(was, "expired");
	snprintf(detail, sizeof(detail), "command %lld %s town %u meter %lld: %s (%s) at %lld%s%s",
		 (long long)m->cmd_report.cmd_id, PQgetvalue(r, 0, 1), town,
		 (long long)m->cmd_report.meter, st,
		 m->cmd_report.status == GMP_CMD_OK ? "ok" : "see status",
		 (long long)m->cmd_report.time, final ? ", after it was already " : "",
		 final ? was : "");
	PQclear(r);
	if (!final) {
		const char *w[4] = { a, st, d, NULL };

		/* delivered never overrides what came after it */
		if (mpg_exec(p, "UPDATE signed_commands SET state = CASE WHEN $2::text = 'delivered' "
			     "AND state = 'delivered' THEN state ELSE $2 END, status = $3::smallint, "
			     "status_text = CASE $2 WHEN 'delivered' THEN 'queued by the town for "
			     "the meter' WHEN 'executed' THEN 'executed by the target' ELSE $2 || "
			     "' by the ' || CASE WHEN meter = 0 THEN 'town' ELSE 'target' END || ': ' "
			     "|| mcmd_status_name($3::integer) END, updated = now() WHERE id = $1",
			     3, w))
			return -1;
	}
	if (mcmd_audit(p, actor, final ? "report-late" : "report", detail))
		return -1;
	if (m->cmd_report.state == GMP_CS_REFUSED && tampered(m->cmd_report.status)) {
		char key[64], ev[160];

		/* the head end signed nothing else: the bytes changed on their way */
		snprintf(key, sizeof(key), "cmd-tampered:%u", town);
		snprintf(ev, sizeof(ev), "{\"command\": %lld, \"status\": %lld}",
			 (long long)m->cmd_report.cmd_id, (long long)m->cmd_report.status);
		if (mcmd_alert(p, "cmd-tampered", town, (int)m->cmd_report.meter, "critical",
			       detail, ev, key) < 0)
			return -1;
	}
	return 0;
}
