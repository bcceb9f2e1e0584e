// SPDX-License-Identifier: GPL-2.0
/*
 * The town server's commands on a real meter (agent/uplink/town_commands.c):
 * a tariff that waits for its time survives a restart (before issue 10 it
 * lived in memory only and was lost), a tariff the meter cannot represent
 * is refused with a status (it used to be acknowledged as delivered),
 * grants and their expiry, the town's next key kept in the key file, and a
 * state directory that cannot be written answered STORAGE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_disk_full.h"
#include "gm_harness.h"
#include "meter.h"
#include "tariff_gmp.h"
#include "town_commands.h"

#include <sodium.h>

#define NOW	1800000000

FIXTURE(cmd) {
	char dir[64], path[128];
	struct meter_config cfg;
	struct meter m;
	struct sensor *s;
	struct relays *r;
	struct uplink_credentials cred;
	struct town_commands tc;
};

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
	chmod(path, mode);
}

FIXTURE_SETUP(cmd)
{
	char text[1024], err[320], hex_sk[65], hex_pk[65];
	struct gmp_keypair meter, town;

	ASSERT_LE(0, sodium_init());
	snprintf(self->dir, sizeof(self->dir), "/tmp/gm_tc_XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/state", self->dir);
	mkdir(self->path, 0700);
	snprintf(self->path, sizeof(self->path), "%s/run", self->dir);
	mkdir(self->path, 0700);
	snprintf(text, sizeof(text),
		 "[meter]\ntimezone = UTC\n[sensors]\nbackend = replay\n[relays]\nbackend = fake\n"
		 "[allocation]\ngrid_allocation = 5000\n[tariff]\nrate = 20\n"
		 "[store]\nstate_dir = %s/state\nruntime_dir = %s/run\n", self->dir, self->dir);
	ASSERT_EQ(0, config_parse(&self->cfg, "t.conf", text, err, sizeof(err))) TH_LOG("%s", err);
	self->s = sensor_replay_new(NULL, err, sizeof(err));
	self->r = relay_fake_new(1);
	ASSERT_EQ(0, meter_init(&self->m, &self->cfg, self->s, self->r, NULL, (int64_t)NOW * 1000,
				1000, err, sizeof(err))) TH_LOG("%s", err);
	gmp_keypair_generate(&meter);
	gmp_keypair_generate(&town);
	gmp_hex_encode(meter.sk, GMP_KEY_LEN, hex_sk);
	gmp_hex_encode(town.pk, GMP_KEY_LEN, hex_pk);
	snprintf(self->path, sizeof(self->path), "%s/uplink.key", self->dir);
	snprintf(text, sizeof(text), "meter_id = 7\nmeter_secret_key = %s\ntown_public_key = %s\n",
		 hex_sk, hex_pk);
	write_file(self->path, text, 0600);
	ASSERT_EQ(0, credentials_load(&self->cred, self->path, err, sizeof(err))) TH_LOG("%s", err);
	tc_init(&self->tc, &self->m, &self->cfg, &self->cred);
}

FIXTURE_TEARDOWN(cmd)
{
	char cmd[96];

	meter_shutdown(&self->m);
	self->s->ops->destroy(self->s);
	self->r->ops->destroy(self->r);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	if (system(cmd))
		TH_LOG("cannot remove %s", self->dir);
}

/* A tariff message: n windows, the i-th at 60 i minutes, import price base + i. */
static struct gmp_msg tariff(int64_t tseq, int64_t effective, int n, int64_t base)
{
	struct gmp_msg m = { .type = GMP_TARIFF };

	m.tariff.tseq = tseq;
	m.tariff.effective = effective;
	m.tariff.n = n;
	for (int i = 0; i < n; i++) {
		m.tariff.p[i].start_min = 60 * i;
		m.tariff.p[i].import_price = base + 1000 * i;
		m.tariff.p[i].export_price = 4000;
	}
	return m;
}

static int state_temporaries(const char *dir)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/state", dir);
	return gm_stray_temporaries(p);
}

static bool waiting_file(const char *dir)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/state/%s", dir, TC_NEXT_FILE);
	return access(p, F_OK) == 0;
}

TEST_F(cmd, a_waiting_tariff_survives_a_restart_and_takes_effect_at_its_time)
{
	struct gmp_msg t = tariff(3, NOW + 3600, 2, 12500);
	struct tariff_spec want;
	char before[256], why[200];

	snprintf(before, sizeof(before), "%s", self->m.spec.type);
	ASSERT_EQ(0, tariff_from_gmp(&t, &self->m.spec, &want, why, sizeof(why))) TH_LOG("%s", why);
	EXPECT_EQ(GMP_CMD_OK, tc_command(&self->tc, &t, NOW));
	EXPECT_TRUE(waiting_file(self->dir));
	EXPECT_STREQ(before, self->m.spec.type);		/* not yet */
	EXPECT_EQ(NOW + 3600, tc_due(&self->tc));
	/* meterd restarts (or the power goes) before the tariff's time */
	memset(&self->tc, 0xa5, sizeof(self->tc));
	tc_init(&self->tc, &self->m, &self->cfg, &self->cred);
	EXPECT_EQ(NOW + 3600, self->tc.next_at);
	EXPECT_EQ(3, self->tc.next_tseq);
	/* exactly the tariff that was kept, empty keys included (rate of a tou) */
	for (unsigned int i = 0; tariff_spec_keys[i]; i++) {
		EXPECT_STREQ(tariff_spec_get(&want, tariff_spec_keys[i]),
			     tariff_spec_get(&self->tc.next, tariff_spec_keys[i]))
			TH_LOG("key %s", tariff_spec_keys[i]);
	}
	tc_tick(&self->tc, NOW + 3599);
	EXPECT_STREQ(before, self->m.spec.type);
	tc_tick(&self->tc, NOW + 3600);
	EXPECT_STREQ("tou", self->m.spec.type);
	EXPECT_FALSE(waiting_file(self->dir));
	EXPECT_EQ(INT64_MAX, tc_due(&self->tc));
}

TEST_F(cmd, a_tariff_the_meter_cannot_represent_is_refused_with_a_status)
{
	/* seven distinct import prices: the meter takes at most six */
	struct gmp_msg t = tariff(4, NOW - 10, 7, 10000);

	EXPECT_EQ(GMP_CMD_UNSUPPORTED, tc_command(&self->tc, &t, NOW));
	EXPECT_STREQ("flat", self->m.spec.type);
	EXPECT_FALSE(waiting_file(self->dir));
	/* one the meter can, due already: in force at once */
	t = tariff(5, NOW - 10, 3, 10000);
	EXPECT_EQ(GMP_CMD_OK, tc_command(&self->tc, &t, NOW));
	EXPECT_STREQ("tou", self->m.spec.type);
}

TEST_F(cmd, grants_and_their_expiry)
{
	struct gmp_msg g = { .type = GMP_GRANT };

	g.grant.tseq = 1;
	g.grant.granted_w = 7300;
	g.grant.until = NOW - 1;
	EXPECT_EQ(GMP_CMD_EXPIRED, tc_command(&self->tc, &g, NOW));
	EXPECT_EQ(5000, self->m.grant_w);
	g.grant.until = NOW + 600;
	EXPECT_EQ(GMP_CMD_OK, tc_command(&self->tc, &g, NOW));
	EXPECT_EQ(7300, self->m.grant_w);
	tc_tick(&self->tc, NOW + 599);
	EXPECT_EQ(7300, self->m.grant_w);
	tc_tick(&self->tc, NOW + 600);
	EXPECT_EQ(5000, self->m.grant_w);
}

TEST_F(cmd, the_towns_next_key_goes_to_the_key_file)
{
	struct gmp_msg k = { .type = GMP_TOWN_KEY };
	struct uplink_credentials again;
	struct gmp_keypair next;
	char err[320];

	gmp_keypair_generate(&next);
	k.town_key.tseq = 2;
	memcpy(k.town_key.pk, next.pk, GMP_KEY_LEN);
	EXPECT_EQ(GMP_CMD_OK, tc_command(&self->tc, &k, NOW));
	EXPECT_TRUE(self->tc.keys_changed);
	ASSERT_EQ(0, credentials_load(&again, self->path, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_TRUE(again.has_next_town);
	EXPECT_EQ(0, memcmp(again.town_pk_next, next.pk, GMP_KEY_LEN));
	/* a key no session can be made with: refused */
	memset(k.town_key.pk, 0, GMP_KEY_LEN);
	k.town_key.tseq = 3;
	EXPECT_EQ(GMP_CMD_INVALID, tc_command(&self->tc, &k, NOW));
}

TEST_F(cmd, a_waiting_tariff_that_cannot_be_kept_is_answered_storage)
{
	struct gmp_msg t = tariff(6, NOW + 60, 2, 12500);
	struct gm_disk_full full;

	/* a full disk (also for root): the tariff cannot be written */
	ASSERT_EQ(0, gm_disk_full_begin(&full));
	EXPECT_EQ(GMP_CMD_STORAGE, tc_command(&self->tc, &t, NOW));
	ASSERT_EQ(0, gm_disk_full_end(&full));
	EXPECT_EQ(0, state_temporaries(self->dir));
	EXPECT_EQ(INT64_MAX, tc_due(&self->tc));
	EXPECT_FALSE(waiting_file(self->dir));
}

TEST_HARNESS_MAIN
