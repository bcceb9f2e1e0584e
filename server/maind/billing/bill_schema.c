// SPDX-License-Identifier: GPL-2.0
/* maind billing: its tables and its periodic work (Documentation/billing.md). */
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "billing/billing.h"

#define MBILL_TICK_S	300	/* rating pace: hours arrive once an hour */

const char *const mbill_schema_sql[] = {
	/* tariff plans and their versions, each in force from a local date on */
	"CREATE TABLE IF NOT EXISTS tariff_plans ("
	" name text PRIMARY KEY, tz text NOT NULL,"	/* the customers' time zone */
	" currency text NOT NULL DEFAULT 'GBP', created timestamptz NOT NULL DEFAULT now())",
	"CREATE TABLE IF NOT EXISTS tariff_versions ("
	" id serial PRIMARY KEY, plan text NOT NULL REFERENCES tariff_plans(name),"
	" effective date NOT NULL,"			/* local midnight of the plan's zone */
	" type text NOT NULL, rates text NOT NULL DEFAULT '', tiers text NOT NULL DEFAULT '',"
	" rate text NOT NULL DEFAULT '0',"
	" weekday text NOT NULL DEFAULT '', weekend text NOT NULL DEFAULT '',"
	" special text NOT NULL DEFAULT '', special_days text NOT NULL DEFAULT '',"
	" standing_charge text NOT NULL DEFAULT '0', feed_in text NOT NULL DEFAULT '0',"
	" tax_bp integer NOT NULL DEFAULT 0 CHECK (tax_bp BETWEEN 0 AND 10000),"
	" period_names text[] NOT NULL,"		/* index -> name, as compiled */
	" created timestamptz NOT NULL DEFAULT now(), UNIQUE (plan, effective))",
	/* the rating watermark: every meter_hours row of the town with seq <= it is rated */
	"CREATE TABLE IF NOT EXISTS bill_towns (town integer PRIMARY KEY,"
	" rated_seq bigint NOT NULL DEFAULT 0)",
	"CREATE INDEX IF NOT EXISTS meter_hours_town_seq ON meter_hours (town, seq)",
	/* hours that came before their customer did: rated when the customer is
	 * added (a meter enrolled and reporting before its household signed up,
	 * or a customer added with a past `since`); the watermark above had
	 * passed them while no customer could be billed for them */
	"CREATE TABLE IF NOT EXISTS bill_rerate (town integer NOT NULL, meter integer NOT NULL,"
	" since timestamptz NOT NULL, PRIMARY KEY (town, meter, since))",
	"CREATE OR REPLACE FUNCTION bill_customer_new() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN INSERT INTO bill_rerate VALUES (NEW.town, NEW.meter, NEW.since)"
	" ON CONFLICT DO NOTHING; RETURN NULL; END $$",
	"CREATE OR REPLACE TRIGGER customers_rerate AFTER INSERT ON customers"
	" FOR EACH ROW EXECUTE FUNCTION bill_customer_new()",
	/* a customer's bill for one local calendar month: running, then issued */
	"CREATE TABLE IF NOT EXISTS bills ("
	" id bigserial PRIMARY KEY, customer integer NOT NULL REFERENCES customers(id),"
	" town integer NOT NULL, meter integer NOT NULL, plan text NOT NULL,"
	" month integer NOT NULL,"			/* YYYYMM, local */
	" period_start timestamptz NOT NULL, period_end timestamptz NOT NULL,"
	" first_day integer NOT NULL, end_day integer NOT NULL,"	/* local days since 1970 */
	" state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'issued')),"
	" import_mwh bigint NOT NULL DEFAULT 0, export_mwh bigint NOT NULL DEFAULT 0,"
	" renew_mwh bigint NOT NULL DEFAULT 0, hours integer NOT NULL DEFAULT 0,"
	" est_hours integer NOT NULL DEFAULT 0, max_mwh bigint NOT NULL DEFAULT 0,"
	" max_at timestamptz, rated_upto timestamptz, rated_day integer,"
	" total_minor bigint NOT NULL DEFAULT 0, issued_at timestamptz,"
	" UNIQUE (customer, period_start))",
	"CREATE INDEX IF NOT EXISTS bills_due ON bills (period_end) WHERE state = 'running'",
	"CREATE INDEX IF NOT EXISTS bills_month ON bills (month, town)",
	/* rated energy of a bill by tariff version, kind and period (tier) */
	"CREATE TABLE IF NOT EXISTS bill_accum ("
	" bill bigint NOT NULL REFERENCES bills(id), version integer NOT NULL,"
	" kind smallint NOT NULL, period smallint NOT NULL, mwh bigint NOT NULL,"
	" nano bigint NOT NULL, hours integer NOT NULL,"
	" PRIMARY KEY (bill, version, kind, period))",
	/* each customer-hour as rated (the base of corrections) */
	"CREATE TABLE IF NOT EXISTS bill_hours ("
	" customer integer NOT NULL, hour timestamptz NOT NULL, bill bigint NOT NULL,"
	" version integer NOT NULL, period smallint NOT NULL,"
	" import_mwh bigint NOT NULL, export_mwh bigint NOT NULL, renew_mwh bigint NOT NULL,"
	" nano bigint NOT NULL,"			/* import charge - export credit */
	" estimated boolean NOT NULL, PRIMARY KEY (customer, hour))",
	/* estimates, kept beside the readings: never rewritten, only marked replaced */
	"CREATE TABLE IF NOT EXISTS meter_estimates ("
	" id bigserial PRIMARY KEY, customer integer NOT NULL, town integer NOT NULL,"
	" meter integer NOT NULL, hour timestamptz NOT NULL, import_mwh bigint NOT NULL,"
	" export_mwh bigint NOT NULL, renew_mwh bigint NOT NULL, method text NOT NULL,"
	" bill bigint NOT NULL, created timestamptz NOT NULL DEFAULT now(),"
	" replaced_at timestamptz, adjust bigint)",
	"CREATE INDEX IF NOT EXISTS meter_estimates_hour ON meter_estimates (customer, hour)",
	/* corrections of hours already rated: shown on a bill as adjustment lines */
	"CREATE TABLE IF NOT EXISTS bill_adjust ("
	" id bigserial PRIMARY KEY, customer integer NOT NULL, hour timestamptz NOT NULL,"
	" version integer NOT NULL, from_bill bigint NOT NULL,"
	" bill bigint,"					/* the bill carrying it (NULL: the next) */
	" d_import_mwh bigint NOT NULL, d_export_mwh bigint NOT NULL, d_nano bigint NOT NULL,"
	" reason text NOT NULL, created timestamptz NOT NULL DEFAULT now())",
	"CREATE INDEX IF NOT EXISTS bill_adjust_open ON bill_adjust (customer) WHERE bill IS NULL",
	"CREATE INDEX IF NOT EXISTS bill_adjust_bill ON bill_adjust (bill)",
	/* validation findings */
	"CREATE TABLE IF NOT EXISTS vee_issues ("
	" id bigserial PRIMARY KEY, town integer NOT NULL, meter integer NOT NULL,"
	" hour timestamptz NOT NULL, code text NOT NULL, detail text NOT NULL,"
	" at timestamptz NOT NULL DEFAULT now())",
	"CREATE INDEX IF NOT EXISTS vee_issues_meter ON vee_issues (town, meter, hour)",
	/* an issued bill's lines */
	"CREATE TABLE IF NOT EXISTS bill_lines ("
	" bill bigint NOT NULL REFERENCES bills(id), no smallint NOT NULL,"
	" kind smallint NOT NULL, version integer, period smallint, text text NOT NULL,"
	" qty bigint NOT NULL, unit bigint NOT NULL, amount_minor bigint NOT NULL,"
	" PRIMARY KEY (bill, no))",
	/* monthly summaries */
	"CREATE TABLE IF NOT EXISTS meter_months ("
	" bill bigint PRIMARY KEY REFERENCES bills(id), town integer NOT NULL,"
	" meter integer NOT NULL, month integer NOT NULL, customer integer NOT NULL,"
	" import_mwh bigint NOT NULL, export_mwh bigint NOT NULL, renew_mwh bigint NOT NULL,"
	" period_names text[] NOT NULL, import_by_period bigint[] NOT NULL,"
	" max_mwh bigint NOT NULL, max_at timestamptz, cost_minor bigint NOT NULL,"
	" est_hours integer NOT NULL)",
	"CREATE INDEX IF NOT EXISTS meter_months_meter ON meter_months (town, meter, month)",
	"CREATE TABLE IF NOT EXISTS town_months ("
	" town integer NOT NULL, month integer NOT NULL, meters integer NOT NULL,"
	" import_wh bigint NOT NULL, export_wh bigint NOT NULL, renew_wh bigint NOT NULL,"
	" lent_wh bigint NOT NULL, borrowed_wh bigint NOT NULL, admin_hours integer NOT NULL,"
	" alarms integer NOT NULL, est_hours integer NOT NULL, billed_minor bigint NOT NULL,"
	" tseq bigint,"					/* its GMP_TOWN_SUMMARY command */
	" created timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (town, month))",
	/* issued is final: the database refuses changes, whoever asks */
	"CREATE OR REPLACE FUNCTION bill_frozen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
	" IF TG_TABLE_NAME = 'bills' AND TG_OP = 'UPDATE' THEN"
	"  IF OLD.state = 'running' THEN RETURN NEW; END IF; END IF;"
	" RAISE EXCEPTION '%: % refused: issued bills and their lines, summaries and tariff"
	" versions are immutable (corrections go on the next bill)', TG_TABLE_NAME, TG_OP;"
	" END $$",
	"CREATE OR REPLACE TRIGGER bills_frozen BEFORE UPDATE OR DELETE ON bills"
	" FOR EACH ROW EXECUTE FUNCTION bill_frozen()",
	"CREATE OR REPLACE TRIGGER bill_lines_frozen BEFORE UPDATE OR DELETE ON bill_lines"
	" FOR EACH ROW EXECUTE FUNCTION bill_frozen()",
	"CREATE OR REPLACE TRIGGER meter_months_frozen BEFORE UPDATE OR DELETE ON meter_months"
	" FOR EACH ROW EXECUTE FUNCTION bill_frozen()",
	"CREATE OR REPLACE TRIGGER tariff_versions_frozen BEFORE UPDATE OR DELETE ON"
	" tariff_versions FOR EACH ROW EXECUTE FUNCTION bill_frozen()",
	/* lines only for a bill not yet issued (they are written just before) */
	"CREATE OR REPLACE FUNCTION bill_lines_new() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
	" IF EXISTS (SELECT 1 FROM new_lines n JOIN bills b ON b.id = n.bill"
	"  WHERE b.state = 'issued') THEN"
	"  RAISE EXCEPTION 'bill_lines: INSERT refused: the bill is issued'; END IF;"
	" RETURN NULL; END $$",
	"CREATE OR REPLACE TRIGGER bill_lines_insert AFTER INSERT ON bill_lines"
	" REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION bill_lines_new()",
	NULL,
};

int mbill_tick(struct maind_pg *p, int64_t now)
{
	bool month_end;
	PGresult *r;
	struct tm tm;
	time_t cut = (time_t)(now - MBILL_ISSUE_DELAY_S);
	char a[24];
	const char *v[1] = { a };
	int due;

	if (p->bill_at && now - p->bill_at < MBILL_TICK_S)
		return 0;
	/* a local month ends in some zone (UTC-12..+14) within these UTC days:
	 * once a day then, bills for every customer of the month just closed */
	gmtime_r(&cut, &tm);
	month_end = (tm.tm_mday <= 2 || tm.tm_mday >= 28) && p->bill_at / 86400 != now / 86400;
	p->bill_at = now;
	if (mbill_rate(p, NULL))
		return -1;
	snprintf(a, sizeof(a), "%lld", (long long)(now - MBILL_ISSUE_DELAY_S));
	r = mpg_query(p, "SELECT 1 FROM bills WHERE state = 'running' AND "
		      "period_end <= to_timestamp($1) LIMIT 1", 1, v);
	if (!r)
		return -1;
	due = PQntuples(r);
	PQclear(r);
	if (!due && !month_end)
		return 0;
	return mbill_issue(p, 0, now - MBILL_ISSUE_DELAY_S, NULL);
}
