// SPDX-License-Identifier: GPL-2.0
/* The town server's commands to the meter (town_commands.h). */
#include "town_commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "meter.h"
#include "tariff_file.h"
#include "tariff_gmp.h"

static void next_path(const struct town_commands *t, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s", t->cfg->state_dir, TC_NEXT_FILE);
}

static void forget_next(struct town_commands *t)
{
	char path[CFG_PATH + 32];

	next_path(t, path, sizeof(path));
	if (unlink(path) && errno != ENOENT)
		meter_log(t->m, LOG_ERR, "uplink: %s: %s", path, strerror(errno));
	t->next_at = 0;
}

void tc_init(struct town_commands *t, struct meter *m, const struct meter_config *cfg,
	     struct uplink_credentials *cred)
{
	struct tariff_when when;
	struct tariff compiled;
	char path[CFG_PATH + 32], err[320];
	int r;

	memset(t, 0, sizeof(*t));
	t->m = m;
	t->cfg = cfg;
	t->cred = cred;
	next_path(t, path, sizeof(path));
	r = tariff_file_load(path, &t->next, &compiled, &when, err, sizeof(err));
	if (r == -ENOENT)
		return;
	if (r || !when.effective || !when.tseq) {
		meter_log(m, LOG_ERR, "uplink: a waiting tariff update is unreadable and dropped "
			  "(the town server shows it as scheduled): %s", r ? err : path);
		forget_next(t);
		return;
	}
	t->next_at = when.effective;
	t->next_tseq = when.tseq;
	meter_log(m, LOG_NOTICE, "uplink: tariff update %lld from the town server waits for %lld",
		  (long long)t->next_tseq, (long long)t->next_at);
}

/* 0, or -1 when the meter refused it (logged). */
static int apply_tariff(struct town_commands *t, const struct tariff_spec *spec, int64_t tseq)
{
	const char *bad = NULL;
	char why[200];

	if (meter_set_tariff(t->m, spec, "the town server", &bad, why, sizeof(why))) {
		meter_log(t->m, LOG_ERR, "uplink: tariff update %lld refused: %s%s%s",
			  (long long)tseq, bad ? bad : "", bad ? ": " : "", why);
		return -1;
	}
	meter_log(t->m, LOG_NOTICE, "uplink: tariff update %lld from the town server in force",
		  (long long)tseq);
	return 0;
}

/* A tariff update takes effect at its time (at once if that has passed). */
static int tariff(struct town_commands *t, const struct gmp_msg *msg, int64_t now_s)
{
	struct tariff_spec spec;
	struct tariff compiled;
	const char *bad = NULL;
	char why[200];
	int r;

	if (tariff_from_gmp(msg, &t->m->spec, &spec, why, sizeof(why)) ||
	    tariff_compile(&spec, &compiled, &bad, why, sizeof(why))) {
		meter_log(t->m, LOG_ERR, "uplink: tariff update %lld refused: %s",
			  (long long)msg->tariff.tseq, why);
		return GMP_CMD_UNSUPPORTED;
	}
	if (msg->tariff.effective <= now_s) {
		if (t->next_at)
			forget_next(t);		/* superseded by this one, already due */
		return apply_tariff(t, &spec, msg->tariff.tseq) ? GMP_CMD_UNSUPPORTED : GMP_CMD_OK;
	}
	/* waits: on disk before the town hears "scheduled" */
	r = tariff_file_save(t->cfg->state_dir, TC_NEXT_FILE, &spec,
			     &(struct tariff_when){ msg->tariff.effective, msg->tariff.tseq });
	if (r) {
		meter_log(t->m, LOG_ERR, "uplink: tariff update %lld cannot be kept until %lld: "
			  "%s/%s: %s", (long long)msg->tariff.tseq, (long long)msg->tariff.effective,
			  t->cfg->state_dir, TC_NEXT_FILE, strerror(-r));
		return GMP_CMD_STORAGE;
	}
	t->next = spec;
	t->next_at = msg->tariff.effective;
	t->next_tseq = msg->tariff.tseq;
	meter_log(t->m, LOG_NOTICE, "uplink: tariff update %lld takes effect at %lld",
		  (long long)t->next_tseq, (long long)t->next_at);
	return GMP_CMD_OK;
}

static int town_key(struct town_commands *t, const struct gmp_msg *msg)
{
	char err[320];
	int r;

	if (!credentials_town_key_usable(&t->cred->key, msg->town_key.pk)) {
		meter_log(t->m, LOG_ERR, "uplink: town key update %lld refused: not a usable key",
			  (long long)msg->town_key.tseq);
		return GMP_CMD_INVALID;
	}
	r = credentials_town_rotation_begin(t->cred, msg->town_key.pk, err, sizeof(err));
	if (r) {
		meter_log(t->m, LOG_ERR, "uplink: town key update %lld not kept: %s",
			  (long long)msg->town_key.tseq, err);
		return r == -EROFS ? GMP_CMD_UNSUPPORTED : GMP_CMD_STORAGE;
	}
	t->keys_changed = true;
	meter_log(t->m, LOG_NOTICE, "uplink: the town server's next key (update %lld) is in %s; "
		  "the next handshake uses it", (long long)msg->town_key.tseq, t->cred->path);
	return GMP_CMD_OK;
}

int tc_command(struct town_commands *t, const struct gmp_msg *msg, int64_t now_s)
{
	switch (msg->type) {
	case GMP_GRANT:
		meter_log(t->m, LOG_NOTICE, "uplink: the town server grants %lld W until %lld "
			  "(request %lld)", (long long)msg->grant.granted_w,
			  (long long)msg->grant.until, (long long)msg->grant.req_id);
		if (msg->grant.until <= now_s)
			return GMP_CMD_EXPIRED;
		meter_set_grant(t->m, msg->grant.granted_w);
		t->grant_until = msg->grant.until;
		return GMP_CMD_OK;
	case GMP_TARIFF:
		return tariff(t, msg, now_s);
	case GMP_TOWN_KEY:
		return town_key(t, msg);
	default:
		return GMP_CMD_INVALID;
	}
}

void tc_tick(struct town_commands *t, int64_t now_s)
{
	if (t->next_at && now_s >= t->next_at) {
		struct tariff_spec spec = t->next;
		int64_t tseq = t->next_tseq;

		forget_next(t);
		(void)apply_tariff(t, &spec, tseq);	/* logged; the town heard 'scheduled' */
	}
	if (t->grant_until && now_s >= t->grant_until) {
		t->grant_until = 0;
		meter_log(t->m, LOG_NOTICE, "uplink: the town server's grant expired: back to "
			  "[allocation] grid_allocation");
		meter_set_grant(t->m, t->cfg->grid_allocation_w);
	}
}

int64_t tc_due(const struct town_commands *t)
{
	int64_t d = INT64_MAX;

	if (t->next_at)
		d = t->next_at;
	if (t->grant_until && t->grant_until < d)
		d = t->grant_until;
	return d;
}
