// SPDX-License-Identifier: GPL-2.0
/* Operator-signed commands at the meter (signed_commands.h). */
#include "signed_commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>

#include "meter.h"

/* The replay memory could not be read: nothing it holds outlives its time by more than this. */
static void seen_unreadable(struct signed_commands *s, const char *why)
{
	struct stat st;

	s->seen_bad = true;
	s->seen.n = 0;
	s->seen_bad_until = 0;
	if (!stat(s->seen_path, &st))
		s->seen_bad_until = (int64_t)st.st_mtime + GMC_LIFETIME_MAX + GMC_SKEW_S;
	meter_log(s->m, LOG_ERR, "signed commands: the replay memory is unreadable (%s): signed "
		  "commands are refused until everything it can hold has expired (%lld)", why,
		  (long long)s->seen_bad_until);
}

int sc_init(struct signed_commands *s, struct meter *m, const struct meter_config *cfg,
	    const struct uplink_credentials *cred, char *err, size_t errlen)
{
	char why[400];
	int rc = 0;

	memset(s, 0, sizeof(*s));
	s->m = m;
	s->cfg = cfg;
	s->cred = cred;
	s->pol.two_above = cfg->two_above;
	snprintf(s->seen_path, sizeof(s->seen_path), "%s/%s", cfg->state_dir, SC_SEEN_FILE);
	if (gmc_seen_load(&s->seen, s->seen_path, why, sizeof(why))) {
		seen_unreadable(s, why);
		snprintf(err, errlen, "%s", why);
		rc = -1;
	}
	if (cfg->operator_keys[0] &&
	    gmc_keyset_load(&s->keys, cfg->operator_keys, why, sizeof(why))) {
		memset(&s->keys, 0, sizeof(s->keys));
		snprintf(err, errlen, "%s:%u: [commands] key 'operator_keys': %s", cfg->path,
			 cfg->operator_keys_line, why);
		rc = -1;
	}
	if (!rc)
		meter_log(m, LOG_INFO, "signed commands: %zu operator key(s)%s%s, town %u meter %u, "
			  "two operators above %u meters; %zu command id(s) remembered", s->keys.n,
			  s->keys.n ? " from " : "", s->keys.n ? cfg->operator_keys : "", cfg->town_id,
			  cred->meter_id, cfg->two_above, s->seen.n);
	return rc;
}

static void remember(struct signed_commands *s, const struct gmc_cmd *c, bool decoded,
		     const char *signers, int status, int64_t now_s)
{
	struct sc_recent *r;

	if (s->nrecent < SC_RECENT)
		s->nrecent++;
	memmove(s->recent + 1, s->recent, (s->nrecent - 1) * sizeof(s->recent[0]));
	r = &s->recent[0];
	memset(r, 0, sizeof(*r));
	r->id = decoded ? c->id : 0;
	r->at = now_s;
	snprintf(r->action, sizeof(r->action), "%s", decoded ? gmc_action_name(c->action) : "invalid");
	snprintf(r->signers, sizeof(r->signers), "%s", signers);
	r->status = status;
	s->handled++;
}

/* Carried out: 0, or the status refusing it, with why. */
static int execute(struct signed_commands *s, const struct gmc_cmd *c, const char *who,
		   char *why, size_t len)
{
	char msg[160] = "";
	int r;

	switch (c->action) {
	case GMC_DISCONNECT:
		r = meter_disconnect(s->m, who, msg, sizeof(msg));
		if (r && r != -EALREADY) {
			snprintf(why, len, "%s", msg);
			return GMP_CMD_REFUSED;
		}
		if (s->m->main_closed) {
			snprintf(why, len, "the main relay did not open");
			return GMP_CMD_REFUSED;
		}
		snprintf(why, len, "%s", r ? "already disconnected" : "the main relay opened");
		return 0;
	case GMC_RECONNECT:
		r = meter_arm_reconnect(s->m, who, msg, sizeof(msg));
		if (r && r != -EALREADY) {
			snprintf(why, len, "%s", msg);
			return GMP_CMD_REFUSED;
		}
		snprintf(why, len, "%s", r ? msg : "armed: the customer confirms at the meter");
		return 0;
	case GMC_REKEY:
		if (s->cred->has_next_key) {
			snprintf(why, len, "a key rotation is already under way");
			return 0;
		}
		if (credentials_writable(s->cred, msg, sizeof(msg))) {
			snprintf(why, len, "%s", msg);
			return GMP_CMD_REFUSED;
		}
		s->rekey = true;
		snprintf(why, len, "a key rotation starts");
		return 0;
	default:
		snprintf(why, len, "not a meter's action");
		return GMP_CMD_REFUSED;
	}
}

int sc_command(struct signed_commands *s, const struct gmp_msg *msg, bool clock_trusted,
	       int64_t now_s)
{
	struct gmc_cmd c;
	char signers[2 * GMC_NAME_MAX + 2] = "", who[2 * GMC_NAME_MAX + 16], why[400] = "";
	bool decoded = false;
	int st;

	if (msg->type != GMP_SIGNED || msg->signed_cmd.len < 1 ||
	    msg->signed_cmd.len > GMP_BLOB_MAX ||
	    gmc_decode(msg->signed_cmd.blob, (size_t)msg->signed_cmd.len, &c)) {
		st = GMP_CMD_INVALID;
		snprintf(why, sizeof(why), "not a signed command of this version");
		goto done;
	}
	decoded = true;
	gmc_signers(&c, &s->keys, signers, sizeof(signers));
	/* an untrusted clock checks everything but time, and then refuses */
	st = gmc_verify(&c, &s->keys, &s->pol, (uint16_t)s->cfg->town_id, s->cred->meter_id,
			clock_trusted ? now_s : c.issued);
	if (st) {
		if (st == GMP_CMD_UNKNOWN_KEY && !s->keys.n)
			snprintf(why, sizeof(why), "this meter has no operator keys "
				 "([commands] operator_keys)");
		goto done;
	}
	if (!clock_trusted) {
		st = GMP_CMD_REFUSED;
		snprintf(why, sizeof(why), "the meter's clock is not trusted: it cannot tell whether "
			 "the command expired (send it again once it is)");
		goto done;
	}
	if (s->seen_bad) {
		if (!s->seen_bad_until)
			s->seen_bad_until = now_s + GMC_LIFETIME_MAX + GMC_SKEW_S;
		if (now_s < s->seen_bad_until) {
			st = GMP_CMD_REFUSED;
			snprintf(why, sizeof(why), "the replay memory (%s) is unreadable until %lld",
				 SC_SEEN_FILE, (long long)s->seen_bad_until);
			goto done;
		}
		s->seen_bad = false;	/* everything it held has expired */
		s->seen.n = 0;
	}
	if (gmc_seen_has(&s->seen, c.id)) {
		st = GMP_CMD_REPLAY;
		snprintf(why, sizeof(why), "handled before");
		goto done;
	}
	/* remembered on disk before it runs: a power cut cannot make it run twice */
	if (gmc_seen_add(&s->seen, c.id, c.expires, now_s)) {
		st = GMP_CMD_REFUSED;
		snprintf(why, sizeof(why), "the replay memory is full (%d live ids)", GMC_SEEN_MAX);
		goto done;
	}
	if (gmc_seen_save(&s->seen, s->seen_path, why, sizeof(why))) {
		/* not run; forget it in memory too, so that the town's resend can run it */
		for (size_t i = 0; i < s->seen.n; i++)
			if (s->seen.e[i].id == c.id)
				s->seen.e[i] = s->seen.e[--s->seen.n];
		st = GMP_CMD_STORAGE;
		goto done;
	}
	snprintf(who, sizeof(who), "operators %s", signers);
	st = execute(s, &c, who, why, sizeof(why));
done:
	if (decoded)
		meter_log(s->m, (st ? LOG_WARNING : LOG_NOTICE) | METER_LOG_EVENT,
			  "signed command %llu: %s of meter %u in town %u, batch %u, signed by %s: "
			  "%s%s%s%s", (unsigned long long)c.id, gmc_action_name(c.action),
			  c.meter, c.town, c.batch, signers, st ? "refused, " : "executed",
			  st ? gmc_status_name(st) : "", why[0] ? ": " : "", why);
	else
		meter_log(s->m, LOG_WARNING | METER_LOG_EVENT, "signed command refused, invalid: %s",
			  why);
	remember(s, &c, decoded, signers, st, now_s);
	return st;
}
