// SPDX-License-Identifier: GPL-2.0
/*
 * The meter's key and its enrolment (setup.h): exactly what
 * `meterd --generate-key` does (keygen_write(): an X25519 key pair, the
 * secret only in the [uplink] credentials file, mode 0600, the agent's user
 * owning it when run as root), then the public key, its fingerprint and the
 * `townctl add` line for the town server. An existing key file is kept
 * unless the installer confirms its replacement (or --force), since the
 * town server knows its public key.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "credentials.h"
#include "keygen.h"
#include "parse.h"
#include "setup.h"

/* BLAKE2b-64 of the public key, as operator keys are named (gmc_fingerprint()) */
static void fingerprint(const uint8_t pk[GMP_KEY_LEN], char out[17])
{
	uint8_t f[8];

	crypto_generichash(f, sizeof(f), pk, GMP_KEY_LEN, NULL, 0);
	gmp_hex_encode(f, sizeof(f), out);
}

static void print_enrolment(struct setup *s, bool replaced, const char *address)
{
	char hex[2 * GMP_KEY_LEN + 1], fpr[17];

	gmp_hex_encode(s->meter_pk, GMP_KEY_LEN, hex);
	fingerprint(s->meter_pk, fpr);
	fprintf(s->p.out, "\n  meter_public_key = %s\n  fingerprint      = %s\n"
		"  Enrol the meter on the town server with:\n\n", hex, fpr);
	if (address && address[0])
		fprintf(s->p.out, "townctl add %u %s \"%s\"\n\n", s->meter_id, hex, address);
	else
		fprintf(s->p.out, "townctl add %u %s\n\n", s->meter_id, hex);
	if (replaced)
		fprintf(s->p.out, "  (meter %u enrolled already: townctl replace %u %s)\n", s->meter_id,
			s->meter_id, hex);
	report_add(&s->rep, CHECK_INFO, false, "meter-key", "meter %u, fingerprint %s", s->meter_id, fpr);
	report_add(&s->rep, CHECK_INFO, false, "public-key", "%s", hex);
}

int enrol(struct setup *s)
{
	const char *path = s->cfg->credentials;
	struct uplink_credentials old;
	struct keygen_result res;
	uint8_t town_pk[GMP_KEY_LEN];
	uint32_t id = 0;
	char err[600], address[81] = "", why[200];
	const char *owner = geteuid() == 0 ? KEYGEN_USER : NULL;
	bool exists, replace = s->o.force, go = true;
	struct stat st;
	int r;

	fprintf(s->p.out, "\n== The meter's key and its enrolment ==\n");
	if (s->o.skip_enrol) {
		report_add(&s->rep, CHECK_SKIP, false, "key", "--no-enrol");
		return 0;
	}
	if (!s->cfg->uplink)
		fprintf(s->p.out, "  note: %s has no [uplink] section:\n  meterd reports to the town only "
			"with one (credentials = %s)\n", s->cfg->path, path);
	exists = !lstat(path, &st);
	if (exists) {
		r = credentials_load(&old, path, err, sizeof(err));
		if (!r) {
			s->meter_id = old.meter_id;
			memcpy(s->meter_pk, old.key.pk, GMP_KEY_LEN);
		}
		credentials_wipe(&old);
		fprintf(s->p.out, "  %s exists: %s\n", path, r ? err : "the key of this meter, which the "
			"town server knows");
		if (!replace && !s->p.yes) {
			r = prompt_yesno(&s->p, "Replace it with a new key (the town must then be told)?",
					 false, &replace);
			if (r)
				return r;
		}
		if (!replace) {
			if (s->meter_id) {
				s->have_key = true;
				report_add(&s->rep, CHECK_PASS, true, "key", "%s kept (meter %u)", path,
					   s->meter_id);
				print_enrolment(s, false, s->o.address);
			} else {
				report_add(&s->rep, CHECK_FAIL, true, "key", "%s kept but unreadable: %s", path, err);
			}
			return 0;
		}
	} else if (!s->o.meter_id && !s->o.town_key && !s->p.yes) {
		r = prompt_yesno(&s->p, "Generate the meter's key now?", true, &go);
		if (r)
			return r;
	}
	if (!go || (s->p.yes && (!s->o.meter_id || !s->o.town_key))) {
		report_add(&s->rep, CHECK_SKIP, false, "key", "%s", go ? "no --meter-id and --town-key" :
			   "declined by the installer");
		return 0;
	}
	if (s->o.meter_id) {
		if (parse_answer_meter_id(s->o.meter_id, &id, why, sizeof(why))) {
			report_add(&s->rep, CHECK_FAIL, true, "key", "--meter-id %s: %s", s->o.meter_id, why);
			return 0;
		}
	} else {
		r = prompt_ask(&s->p, "Meter id (the town's number for this meter, 1..65534)", NULL,
			       parse_answer_meter_id, &id);
		if (r)
			return r;
	}
	if (s->o.town_key) {
		if (parse_answer_hexkey(s->o.town_key, town_pk, why, sizeof(why))) {
			report_add(&s->rep, CHECK_FAIL, true, "key", "--town-key: %s", why);
			return 0;
		}
	} else {
		r = prompt_ask(&s->p, "Town server's public key ('townctl pubkey' there), 64 hex digits:\n",
			       NULL, parse_answer_hexkey, town_pk);
		if (r)
			return r;
	}
	if (s->o.address) {
		if (parse_answer_text(s->o.address, address, why, sizeof(why))) {
			report_add(&s->rep, CHECK_FAIL, true, "key", "--address: %s", why);
			return 0;
		}
	} else if (!s->p.yes) {
		r = prompt_ask(&s->p, "Address or name for the town's list (Enter: none)", "",
			       parse_answer_text, address);
		if (r)
			return r;
	}
	r = keygen_write(path, (uint16_t)id, town_pk, replace, owner, &res, err, sizeof(err));
	if (r) {
		report_add(&s->rep, CHECK_FAIL, true, "key", "%s", err);
		return 0;
	}
	s->have_key = true;
	s->meter_id = (uint16_t)id;
	memcpy(s->meter_pk, res.pk, GMP_KEY_LEN);
	report_add(&s->rep, CHECK_PASS, true, "key", "%s: %s key pair of meter %u (mode 0600%s%s)", path,
		   res.replaced ? "replaced by a new" : "new", id, owner ? ", owner " : "", owner ? owner : "");
	if (res.note[0])
		fprintf(s->p.out, "  note: %s\n", res.note);
	print_enrolment(s, res.replaced, address);
	return 0;
}
