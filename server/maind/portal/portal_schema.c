// SPDX-License-Identifier: GPL-2.0
/*
 * maind-portal: its table (Documentation/portal.md "Access"). Appended to
 * maind's schema list like every part's (maind_pg.c), so that maind,
 * mainctl and maind-portal all create or find the same tables.
 *
 * web_users: who may sign in to the portal. A customer account sees one
 * customer's data (customers.id), an operator account is one operator
 * (operators.id, the one whose key signs commands) and has a TOTP secret;
 * totp_last_step is the newest 30-second step whose code was accepted, so
 * that a code is never accepted twice, whichever portal process sees it.
 */
#include <stddef.h>

#include "maind_pg.h"

const char *const portal_schema_sql[] = {
	"CREATE TABLE IF NOT EXISTS web_users ("
	" id serial PRIMARY KEY,"
	" login text NOT NULL UNIQUE CHECK (login ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$'),"
	" hash text NOT NULL CHECK (hash LIKE '$argon2id$%'),"	/* libsodium's string */
	" role text NOT NULL CHECK (role IN ('customer', 'operator')),"
	" customer integer REFERENCES customers(id),"
	" operator integer REFERENCES operators(id),"
	" totp_secret text CHECK (totp_secret ~ '^[A-Z2-7]{16,64}$'),"	/* base32 */
	" totp_last_step bigint NOT NULL DEFAULT 0,"
	" disabled boolean NOT NULL DEFAULT false,"
	" created timestamptz NOT NULL DEFAULT now(),"
	" password_changed timestamptz NOT NULL DEFAULT now(),"
	" last_login timestamptz,"
	" CHECK ((role = 'customer') = (customer IS NOT NULL)),"
	" CHECK ((role = 'operator') = (operator IS NOT NULL)),"
	" CHECK ((role = 'operator') = (totp_secret IS NOT NULL)))",
	"CREATE INDEX IF NOT EXISTS web_users_customer ON web_users (customer)",
	NULL,
};
