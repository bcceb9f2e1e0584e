// SPDX-License-Identifier: GPL-2.0
/*
 * Operator-signed commands on a real meter with the fake relay
 * (agent/uplink/signed_commands.c): a disconnect runs once and opens the
 * main relay; the same command again is a replay, also after a restart
 * (the replay memory is on disk before the command runs); every single-bit
 * change of the bytes is refused and changes nothing; expired, unknown-key,
 * wrong-meter and wrong-town commands are refused; a rekey and a mass
 * disconnect need two operators; a reconnect arms but does not close; a
 * replay memory that cannot be written means not executed (STORAGE, and
 * the town's resend runs it once it can); an untrusted clock refuses
 * without remembering; the configuration's errors name file, line and key.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_disk_full.h"
#include "gm_harness.h"
#include "meter.h"
#include "meter_internal.h"
#include "signed_commands.h"

#include <sodium.h>

#define NOW	1800000000
#define TOWN	7
#define METER	42

struct op {
	uint8_t pk[GMC_PK_LEN], sk[GMC_SK_LEN];
};

struct logs {
	unsigned int n;			/* lines that mention a signed command */
	char last[512];
};

static void on_log(void *ctx, int level, const char *msg)
{
	struct logs *l = ctx;

	(void)level;
	if (strstr(msg, "signed command ")) {
		l->n++;
		snprintf(l->last, sizeof(l->last), "%s", msg);
	}
}

FIXTURE(sc) {
	char dir[64], path[160];
	struct meter_config cfg;
	struct meter m;
	struct sensor *s;
	struct relays *r;
	struct uplink_credentials cred;
	struct signed_commands sc;
	struct op op[3];		/* alice, bob provisioned; mallory not */
	struct logs logs;
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

static void conf_text(char *text, size_t n, const char *dir, const char *commands)
{
	snprintf(text, n,
		 "[meter]\ntimezone = UTC\nclock = system\n[sensors]\nbackend = replay\n"
		 "[relays]\nbackend = fake\n[allocation]\ngrid_allocation = 5000\n[tariff]\n"
		 "rate = 20\n[store]\nstate_dir = %s/state\nruntime_dir = %s/run\n"
		 "[uplink]\ncredentials = %s/uplink.key\n[neighbour.east]\ndevice = /dev/ttyAMA1\n"
		 "%s", dir, dir, dir, commands);
}

FIXTURE_SETUP(sc)
{
	char text[2048], err[400], hex[2 * GMC_PK_LEN + 1], keys[512] = "", cmds[256];
	static const char *const names[] = { "alice", "bob" };
	struct gmp_keypair meter, town;
	char hex_sk[65], hex_pk[65];

	ASSERT_LE(0, sodium_init());
	snprintf(self->dir, sizeof(self->dir), "/tmp/gm_sc_XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/state", self->dir);
	mkdir(self->path, 0700);
	snprintf(self->path, sizeof(self->path), "%s/run", self->dir);
	mkdir(self->path, 0700);
	for (int i = 0; i < 3; i++)
		crypto_sign_keypair(self->op[i].pk, self->op[i].sk);
	for (int i = 0; i < 2; i++) {
		sodium_bin2hex(hex, sizeof(hex), self->op[i].pk, GMC_PK_LEN);
		snprintf(keys + strlen(keys), sizeof(keys) - strlen(keys), "%s %s\n", names[i], hex);
	}
	snprintf(self->path, sizeof(self->path), "%s/operators.keys", self->dir);
	write_file(self->path, keys, 0644);
	snprintf(cmds, sizeof(cmds), "[commands]\noperator_keys = %s\ntown = %d\n", self->path,
		 TOWN);
	conf_text(text, sizeof(text), self->dir, cmds);
	ASSERT_EQ(0, config_parse(&self->cfg, "t.conf", text, err, sizeof(err))) TH_LOG("%s", err);
	self->s = sensor_replay_new(NULL, err, sizeof(err));
	self->r = relay_fake_new(1);
	ASSERT_EQ(0, meter_init(&self->m, &self->cfg, self->s, self->r, NULL, (int64_t)NOW * 1000,
				1000, err, sizeof(err))) TH_LOG("%s", err);
	self->m.hooks.ctx = &self->logs;
	self->m.hooks.log = on_log;
	gmp_keypair_generate(&meter);
	gmp_keypair_generate(&town);
	gmp_hex_encode(meter.sk, GMP_KEY_LEN, hex_sk);
	gmp_hex_encode(town.pk, GMP_KEY_LEN, hex_pk);
	snprintf(self->path, sizeof(self->path), "%s/uplink.key", self->dir);
	snprintf(text, sizeof(text), "meter_id = %d\nmeter_secret_key = %s\ntown_public_key = %s\n",
		 METER, hex_sk, hex_pk);
	write_file(self->path, text, 0600);
	ASSERT_EQ(0, credentials_load(&self->cred, self->path, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, sc_init(&self->sc, &self->m, &self->cfg, &self->cred, err, sizeof(err)))
		TH_LOG("%s", err);
	ASSERT_EQ(2, self->sc.keys.n);
	ASSERT_TRUE(self->m.main_closed);
}

FIXTURE_TEARDOWN(sc)
{
	char cmd[96];

	meter_shutdown(&self->m);
	self->s->ops->destroy(self->s);
	self->r->ops->destroy(self->r);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	if (system(cmd))
		TH_LOG("cannot remove %s", self->dir);
}

static struct gmc_cmd cmd(int action, uint16_t town, uint16_t meter, uint32_t batch)
{
	struct gmc_cmd c = { .action = (uint8_t)action, .town = town, .meter = meter,
			     .issued = NOW - 10, .expires = NOW + 900, .batch = batch };

	randombytes_buf(&c.id, sizeof(c.id));
	c.id = (c.id & INT64_MAX) | 1;
	return c;
}

/* The GMP_SIGNED message of c signed by the operators listed (-1 ends). */
static struct gmp_msg signed_msg(struct gmc_cmd c, const struct op *op, const int *who)
{
	struct gmp_msg m = { .type = GMP_SIGNED };
	int len;

	for (int i = 0; who[i] >= 0; i++)
		if (gmc_sign(&c, op[who[i]].sk))
			abort();
	m.signed_cmd.tseq = 1;
	len = gmc_encode(&c, m.signed_cmd.blob, sizeof(m.signed_cmd.blob));
	if (len < 0)
		abort();
	m.signed_cmd.len = len;
	return m;
}

static const int ALICE[] = { 0, -1 }, BOTH[] = { 0, 1, -1 }, MALLORY[] = { 2, -1 };

static bool relay_closed(struct relays *r)
{
	bool closed = true;

	r->ops->get(r, 0, &closed);
	return closed;
}

TEST_F(sc, a_disconnect_runs_once_and_its_replay_is_refused_also_after_a_restart)
{
	struct gmp_msg m = signed_msg(cmd(GMC_DISCONNECT, TOWN, METER, 1), self->op, ALICE);
	char err[400];

	EXPECT_EQ(GMP_CMD_OK, sc_command(&self->sc, &m, true, NOW));
	EXPECT_FALSE(relay_closed(self->r));
	EXPECT_EQ(REMOTE_DISCONNECTED, self->m.prot.remote);
	EXPECT_EQ(1, self->logs.n);
	EXPECT_NE(NULL, strstr(self->logs.last, "alice")) TH_LOG("%s", self->logs.last);
	EXPECT_NE(NULL, strstr(self->logs.last, "executed")) TH_LOG("%s", self->logs.last);
	EXPECT_EQ(1, self->sc.nrecent);
	EXPECT_EQ(GMP_CMD_OK, self->sc.recent[0].status);
	EXPECT_STREQ("alice", self->sc.recent[0].signers);
	EXPECT_STREQ("disconnect", self->sc.recent[0].action);

	/* the customer gets the supply back by a technician; the same bytes come again */
	self->m.prot.remote = REMOTE_CONNECTED;
	meter_apply_main(&self->m, "test");
	ASSERT_TRUE(relay_closed(self->r));
	EXPECT_EQ(GMP_CMD_REPLAY, sc_command(&self->sc, &m, true, NOW + 1));
	EXPECT_TRUE(relay_closed(self->r));
	EXPECT_EQ(2, self->logs.n);
	EXPECT_NE(NULL, strstr(self->logs.last, "replay")) TH_LOG("%s", self->logs.last);

	/* meterd restarts: the memory is read back */
	memset(&self->sc, 0xa5, sizeof(self->sc));
	ASSERT_EQ(0, sc_init(&self->sc, &self->m, &self->cfg, &self->cred, err, sizeof(err)))
		TH_LOG("%s", err);
	EXPECT_EQ(1, self->sc.seen.n);
	EXPECT_EQ(GMP_CMD_REPLAY, sc_command(&self->sc, &m, true, NOW + 2));
	EXPECT_TRUE(relay_closed(self->r));
	/* ... until it expired, when it is refused as expired */
	EXPECT_EQ(GMP_CMD_EXPIRED, sc_command(&self->sc, &m, true, NOW + 900));
	EXPECT_TRUE(relay_closed(self->r));
}

TEST_F(sc, every_single_bit_change_is_refused_and_changes_nothing)
{
	struct gmp_msg m = signed_msg(cmd(GMC_DISCONNECT, TOWN, METER, 1), self->op, ALICE);
	unsigned int logs0 = self->logs.n, tried = 0;

	for (int64_t i = 0; i < m.signed_cmd.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			struct gmp_msg x = m;
			int st;

			x.signed_cmd.blob[i] ^= (uint8_t)(1 << bit);
			st = sc_command(&self->sc, &x, true, NOW);
			ASSERT_NE(GMP_CMD_OK, st) TH_LOG("byte %lld bit %d", (long long)i, bit);
			tried++;
		}
	}
	/* a shorter or longer copy too */
	m.signed_cmd.len--;
	EXPECT_EQ(GMP_CMD_INVALID, sc_command(&self->sc, &m, true, NOW));
	m.signed_cmd.len += 2;
	EXPECT_EQ(GMP_CMD_INVALID, sc_command(&self->sc, &m, true, NOW));
	EXPECT_TRUE(relay_closed(self->r));
	EXPECT_EQ(REMOTE_CONNECTED, self->m.prot.remote);
	EXPECT_EQ(0, self->sc.seen.n);
	/* each logged once */
	EXPECT_EQ(logs0 + tried + 2, self->logs.n);
	EXPECT_EQ(self->sc.handled, (uint64_t)tried + 2);
	/* the unchanged bytes still run */
	m.signed_cmd.len--;
	EXPECT_EQ(GMP_CMD_OK, sc_command(&self->sc, &m, true, NOW));
	EXPECT_FALSE(relay_closed(self->r));
}

TEST_F(sc, expired_unknown_key_and_wrong_target_are_refused)
{
	struct gmc_cmd c = cmd(GMC_DISCONNECT, TOWN, METER, 1);
	struct gmp_msg m = signed_msg(c, self->op, ALICE);

	EXPECT_EQ(GMP_CMD_EXPIRED, sc_command(&self->sc, &m, true, c.expires));
	EXPECT_EQ(GMP_CMD_NOT_YET, sc_command(&self->sc, &m, true, c.issued - GMC_SKEW_S - 1));
	m = signed_msg(cmd(GMC_DISCONNECT, TOWN, METER, 1), self->op, MALLORY);
	EXPECT_EQ(GMP_CMD_UNKNOWN_KEY, sc_command(&self->sc, &m, true, NOW));
	m = signed_msg(cmd(GMC_DISCONNECT, TOWN, METER + 1, 1), self->op, ALICE);
	EXPECT_EQ(GMP_CMD_WRONG_TARGET, sc_command(&self->sc, &m, true, NOW));
	m = signed_msg(cmd(GMC_DISCONNECT, TOWN + 1, METER, 1), self->op, ALICE);
	EXPECT_EQ(GMP_CMD_WRONG_TARGET, sc_command(&self->sc, &m, true, NOW));
	/* a town's action is never a meter's */
	m = signed_msg(cmd(GMC_TOWN_STOP, TOWN, 0, 1), self->op, BOTH);
	EXPECT_EQ(GMP_CMD_WRONG_TARGET, sc_command(&self->sc, &m, true, NOW));
	EXPECT_TRUE(relay_closed(self->r));
	EXPECT_EQ(0, self->sc.seen.n);
	EXPECT_EQ(6, self->logs.n);
	EXPECT_STREQ("wrong-target", gmc_status_name(self->sc.recent[0].status));
	EXPECT_STREQ("unknown-key", gmc_status_name(self->sc.recent[3].status));
}

TEST_F(sc, rekey_and_a_mass_disconnect_need_two_operators)
{
	struct gmc_cmd c = cmd(GMC_REKEY, TOWN, METER, 1);
	struct gmp_msg m = signed_msg(c, self->op, ALICE);

	EXPECT_EQ(GMP_CMD_NEED_TWO, sc_command(&self->sc, &m, true, NOW));
	EXPECT_FALSE(self->sc.rekey);
	m = signed_msg(c, self->op, BOTH);
	EXPECT_EQ(GMP_CMD_OK, sc_command(&self->sc, &m, true, NOW));
	EXPECT_TRUE(self->sc.rekey);		/* the uplink starts the rotation */
	EXPECT_STREQ("alice+bob", self->sc.recent[0].signers);

	/* one of more than two_above meters */
	c = cmd(GMC_DISCONNECT, TOWN, METER, self->cfg.two_above + 1);
	m = signed_msg(c, self->op, ALICE);
	EXPECT_EQ(GMP_CMD_NEED_TWO, sc_command(&self->sc, &m, true, NOW));
	EXPECT_TRUE(relay_closed(self->r));
	m = signed_msg(c, self->op, BOTH);
	EXPECT_EQ(GMP_CMD_OK, sc_command(&self->sc, &m, true, NOW));
	EXPECT_FALSE(relay_closed(self->r));
	/* exactly two_above: one operator is enough */
	self->m.prot.remote = REMOTE_CONNECTED;
	meter_apply_main(&self->m, "test");
	m = signed_msg(cmd(GMC_DISCONNECT, TOWN, METER, self->cfg.two_above), self->op, ALICE);
	EXPECT_EQ(GMP_CMD_OK, sc_command(&self->sc, &m, true, NOW));
	EXPECT_FALSE(relay_closed(self->r));
}

TEST_F(sc, a_reconnect_arms_and_the_customer_closes)
{
	struct gmp_msg m = signed_msg(cmd(GMC_DISCONNECT, TOWN, METER, 1), self->op, ALICE);

	ASSERT_EQ(GMP_CMD_OK, sc_command(&self->sc, &m, true, NOW));
	m = signed_msg(cmd(GMC_RECONNECT, TOWN, METER, 1), self->op, ALICE);
	EXPECT_EQ(GMP_CMD_OK, sc_command(&self->sc, &m, true, NOW + 5));
	EXPECT_EQ(REMOTE_ARMED, self->m.prot.remote);
	EXPECT_FALSE(relay_closed(self->r));
	meter_button(&self->m);
	EXPECT_TRUE(relay_closed(self->r));
	EXPECT_EQ(REMOTE_CONNECTED, self->m.prot.remote);
}

TEST_F(sc, a_memory_that_cannot_be_written_means_not_executed)
{
	struct gmp_msg m = signed_msg(cmd(GMC_DISCONNECT, TOWN, METER, 1), self->op, ALICE);
	struct gm_disk_full full;
	char state[200];

	/* a full disk (also for root): the memory of the command cannot be saved */
	ASSERT_EQ(0, gm_disk_full_begin(&full));
	EXPECT_EQ(GMP_CMD_STORAGE, sc_command(&self->sc, &m, true, NOW));
	ASSERT_EQ(0, gm_disk_full_end(&full));
	EXPECT_TRUE(relay_closed(self->r));
	EXPECT_EQ(0, self->sc.seen.n);
	snprintf(state, sizeof(state), "%s/state", self->dir);
	EXPECT_EQ(0, gm_stray_temporaries(state));
	/* the town resends once the disk is writable again: it runs, once */
	EXPECT_EQ(GMP_CMD_OK, sc_command(&self->sc, &m, true, NOW + 30));
	EXPECT_FALSE(relay_closed(self->r));
	EXPECT_EQ(GMP_CMD_REPLAY, sc_command(&self->sc, &m, true, NOW + 31));
}

TEST_F(sc, an_untrusted_clock_refuses_without_remembering)
{
	struct gmp_msg m = signed_msg(cmd(GMC_DISCONNECT, TOWN, METER, 1), self->op, ALICE);
	struct gmp_msg forged = m;

	EXPECT_EQ(GMP_CMD_REFUSED, sc_command(&self->sc, &m, false, NOW + 100000));
	EXPECT_TRUE(relay_closed(self->r));
	EXPECT_EQ(0, self->sc.seen.n);
	/* a forgery is still called one */
	forged.signed_cmd.blob[GMC_BODY_LEN + 1 + GMC_FPR_LEN] ^= 1;
	EXPECT_EQ(GMP_CMD_BAD_SIG, sc_command(&self->sc, &forged, false, NOW));
	/* the clock is trusted: the same bytes run */
	EXPECT_EQ(GMP_CMD_OK, sc_command(&self->sc, &m, true, NOW));
	EXPECT_FALSE(relay_closed(self->r));
}

TEST_F(sc, an_unreadable_memory_refuses_until_all_it_can_hold_expired)
{
	struct gmc_cmd c = cmd(GMC_DISCONNECT, TOWN, METER, 1);
	struct gmp_msg m = signed_msg(c, self->op, ALICE);
	char path[200], err[400];
	struct timespec t[2] = { { .tv_sec = NOW }, { .tv_sec = NOW } };
	int64_t until = NOW + GMC_LIFETIME_MAX + GMC_SKEW_S;

	snprintf(path, sizeof(path), "%s/state/%s", self->dir, SC_SEEN_FILE);
	write_file(path, "garbage\n", 0600);
	ASSERT_EQ(0, utimensat(AT_FDCWD, path, t, 0));
	EXPECT_EQ(-1, sc_init(&self->sc, &self->m, &self->cfg, &self->cred, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, SC_SEEN_FILE ":1")) TH_LOG("%s", err);
	EXPECT_EQ(GMP_CMD_REFUSED, sc_command(&self->sc, &m, true, NOW));
	c.issued = until - 60;
	c.expires = until + 600;
	m = signed_msg(c, self->op, ALICE);
	EXPECT_EQ(GMP_CMD_REFUSED, sc_command(&self->sc, &m, true, until - 1));
	EXPECT_TRUE(relay_closed(self->r));
	/* then nothing it held can be live: the same command runs */
	EXPECT_EQ(GMP_CMD_OK, sc_command(&self->sc, &m, true, until));
	EXPECT_FALSE(relay_closed(self->r));
}

TEST_F(sc, without_operator_keys_every_command_is_refused)
{
	struct meter_config c2 = self->cfg;
	struct gmp_msg m = signed_msg(cmd(GMC_DISCONNECT, TOWN, METER, 1), self->op, BOTH);
	char err[400];

	c2.operator_keys[0] = '\0';
	ASSERT_EQ(0, sc_init(&self->sc, &self->m, &c2, &self->cred, err, sizeof(err)));
	EXPECT_EQ(GMP_CMD_UNKNOWN_KEY, sc_command(&self->sc, &m, true, NOW));
	EXPECT_NE(NULL, strstr(self->logs.last, "no operator keys")) TH_LOG("%s", self->logs.last);
	EXPECT_TRUE(relay_closed(self->r));
}

TEST_F(sc, configuration_errors_name_file_line_and_key)
{
	static const struct {
		const char *commands, *want;
	} bad[] = {
		{ "[commands]\noperator_keys = keys\ntown = 7\n", "t.conf:20: [commands] key 'operator_keys'" },
		{ "[commands]\noperator_keys = /k\n", "t.conf:19: [commands] key 'town'" },
		{ "[commands]\noperator_keys = /k\ntown = 65535\n", "t.conf:21: [commands] key 'town'" },
		{ "[commands]\noperator_keys = /k\ntown = 7\ntwo_above = 0\n",
		  "t.conf:22: [commands] key 'two_above'" },
		{ "[commands]\ntown = 7\n", "t.conf:19: [commands] key 'operator_keys'" },
		{ "[commands]\noperator_key = /k\n", "t.conf:20: [commands] key 'operator_key'" },
		{ "[tamper]\nreverse_time = 5\n", "t.conf:20: [tamper] key 'reverse_time'" },
		{ "[tamper]\nidle_current = x\n", "t.conf:20: [tamper] key 'idle_current'" },
	};
	struct meter_config c;
	char text[2048], err[400], path[200];
	struct signed_commands *sc = malloc(sizeof(*sc));

	ASSERT_NE(NULL, sc);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		conf_text(text, sizeof(text), self->dir, bad[i].commands);
		err[0] = '\0';
		EXPECT_EQ(-EINVAL, config_parse(&c, "t.conf", text, err, sizeof(err)));
		EXPECT_EQ(0, strncmp(err, bad[i].want, strlen(bad[i].want))) TH_LOG("%s: %s", bad[i].want, err);
	}
	/* [commands] needs [uplink] */
	EXPECT_EQ(-EINVAL, config_parse(&c, "t.conf", "[sensors]\nbackend = replay\n[commands]\noperator_keys = /k\ntown = 7\n",
					err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "t.conf:3: [commands] needs an [uplink]")) TH_LOG("%s", err);
	/* a bad key file: the configuration's line and the key file's line */
	snprintf(path, sizeof(path), "%s/operators.keys", self->dir);
	write_file(path, "# operators\nalice 00\n", 0644);
	c = self->cfg;
	EXPECT_EQ(-1, sc_init(sc, &self->m, &c, &self->cred, err, sizeof(err)));
	snprintf(text, sizeof(text), "t.conf:%u: [commands] key 'operator_keys': %s:2: ",
		 c.operator_keys_line, path);
	EXPECT_EQ(0, strncmp(err, text, strlen(text))) TH_LOG("%s", err);
	EXPECT_EQ(20, c.operator_keys_line);
	EXPECT_EQ(0, sc->keys.n);
	free(sc);
}

TEST_HARNESS_MAIN
