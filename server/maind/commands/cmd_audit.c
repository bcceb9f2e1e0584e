// SPDX-License-Identifier: GPL-2.0
/*
 * The audit log (cmd.h): rows are appended by audit_append() in SQL (one
 * appender at a time); verification here recomputes every hash in C from
 * the rows as stored, independently of the SQL that wrote them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cmd.h"

int mcmd_audit(struct maind_pg *p, const char *actor, const char *what, const char *detail)
{
	const char *v[3] = { actor, what, detail };
	PGresult *r = mpg_query(p, "SELECT audit_append($1, $2, $3)", 3, v);

	if (!r)
		return -1;
	PQclear(r);
	return 0;
}

static void field(crypto_hash_sha256_state *st, const char *s)
{
	char len[24];

	snprintf(len, sizeof(len), "%zu:", strlen(s));
	crypto_hash_sha256_update(st, (const uint8_t *)len, strlen(len));
	crypto_hash_sha256_update(st, (const uint8_t *)s, strlen(s));
	crypto_hash_sha256_update(st, (const uint8_t *)"\n", 1);
}

void mcmd_audit_hash(const uint8_t prev[MCMD_AUDIT_HASH_LEN], int64_t seq, int64_t at_us,
		     const char *actor, const char *what, const char *detail,
		     uint8_t out[MCMD_AUDIT_HASH_LEN])
{
	crypto_hash_sha256_state st;
	char head[96];
	int n;

	n = snprintf(head, sizeof(head), MCMD_AUDIT_DOMAIN "\n%" PRId64 "\n%" PRId64 "\n", seq,
		     at_us);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, prev, MCMD_AUDIT_HASH_LEN);
	crypto_hash_sha256_update(&st, (const uint8_t *)head, (size_t)n);
	field(&st, actor);
	field(&st, what);
	field(&st, detail);
	crypto_hash_sha256_final(&st, out);
}

/* bytea as hex ("\x..."): 0 when it is exactly MCMD_AUDIT_HASH_LEN bytes. */
static int hash_of(const char *v, uint8_t out[MCMD_AUDIT_HASH_LEN])
{
	if (strncmp(v, "\\x", 2) || strlen(v + 2) != 2 * MCMD_AUDIT_HASH_LEN)
		return -1;
	return gmp_hex_decode(v + 2, out, MCMD_AUDIT_HASH_LEN);
}

#define AUDIT_PAGE 5000
#define STR_(x) #x
#define STR(x) STR_(x)

int mcmd_audit_verify(struct maind_pg *p, struct mcmd_audit_check *out)
{
	uint8_t prev[MCMD_AUDIT_HASH_LEN] = { 0 };
	int64_t after = 0;

	memset(out, 0, sizeof(*out));
	for (;;) {
		char a[24];
		const char *v[1] = { a };
		PGresult *r;
		int n;

		snprintf(a, sizeof(a), "%lld", (long long)after);
		r = mpg_query(p, "SELECT seq, (extract(epoch FROM at) * 1000000)::bigint, actor, what, "
			      "detail, prev, hash FROM audit_log WHERE seq > $1 ORDER BY seq "
			      "LIMIT " STR(AUDIT_PAGE), 1, v);
		if (!r)
			return -1;
		n = PQntuples(r);
		for (int i = 0; i < n; i++) {
			int64_t seq = strtoll(PQgetvalue(r, i, 0), NULL, 10);
			uint8_t sp[MCMD_AUDIT_HASH_LEN], sh[MCMD_AUDIT_HASH_LEN], want[MCMD_AUDIT_HASH_LEN];

			out->rows++;
			if (hash_of(PQgetvalue(r, i, 5), sp) || hash_of(PQgetvalue(r, i, 6), sh)) {
				snprintf(out->why, sizeof(out->why), "its prev or hash is not %d bytes",
					 MCMD_AUDIT_HASH_LEN);
				goto bad;
			}
			if (memcmp(sp, prev, sizeof(prev))) {
				snprintf(out->why, sizeof(out->why), "its prev is not the hash of the "
					 "row before it (a row before it was removed or rewritten)");
				goto bad;
			}
			mcmd_audit_hash(prev, seq, strtoll(PQgetvalue(r, i, 1), NULL, 10),
					PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),
					want);
			if (memcmp(sh, want, sizeof(want))) {
				snprintf(out->why, sizeof(out->why), "its content does not match its "
					 "hash (the row was altered)");
				goto bad;
			}
			memcpy(prev, sh, sizeof(prev));
			after = seq;
			continue;
bad:
			out->bad_seq = seq;
			PQclear(r);
			return 1;
		}
		PQclear(r);
		if (n < AUDIT_PAGE)
			break;
	}
	memcpy(out->head, prev, sizeof(prev));
	return 0;
}
