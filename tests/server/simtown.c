// SPDX-License-Identifier: GPL-2.0
/* A town server for townd's host tests and benchmarks (simtown.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "simtown.h"
#include "townd_core.h"
#include "townd_db.h"
#include "townd_net.h"

int sim_town_setup(struct sim_town *t, const char *name)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	char err[256];

	memset(t, 0, sizeof(*t));
	t->lfd = -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/%.40s-XXXXXX", name);
	if (!mkdtemp(t->dir))
		return -1;
	townd_config_defaults(&t->cfg);
	snprintf(t->cfg.database, sizeof(t->cfg.database), "%s/town.db", t->dir);
	snprintf(t->cfg.key_file, sizeof(t->cfg.key_file), "%s/townd.key", t->dir);
	gmp_keypair_generate(&t->kp);
	if (townd_key_write(t->cfg.key_file, &t->kp, err, sizeof(err)))
		return -1;
	t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (t->lfd < 0 || bind(t->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(t->lfd, 4096) || getsockname(t->lfd, (struct sockaddr *)&sa, &sl))
		return -1;
	t->port = ntohs(sa.sin_port);
	return 0;
}

void sim_town_start(struct sim_town *t)
{
	t->pid = fork();
	if (t->pid == 0) {
		char err[256];
		int rc = townd_run(&t->cfg, &t->lfd, 1, err, sizeof(err));

		if (rc)
			fprintf(stderr, "townd_run: %s\n", err);
		_exit(rc ? 1 : 0);
	}
}

int sim_town_stop(struct sim_town *t, int sig)
{
	int st = 0;

	if (t->pid <= 0)
		return -1;
	kill(t->pid, sig);
	waitpid(t->pid, &st, 0);
	t->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void sim_town_teardown(struct sim_town *t, bool keep)
{
	char cmd[160];

	if (t->pid > 0)
		sim_town_stop(t, SIGKILL);
	if (t->lfd >= 0)
		close(t->lfd);
	t->lfd = -1;
	if (keep) {
		fprintf(stderr, "# kept %s\n", t->dir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (t->dir[0] && system(cmd)) {
		/* nothing more to do */
	}
}

int sim_town_add(struct sim_town *t, uint16_t id, const uint8_t pk[GMP_KEY_LEN])
{
	struct townd_db db;
	char err[256];
	int rc;

	if (tdb_open(&db, t->cfg.database, 1, err, sizeof(err)))
		return -1;
	rc = tdb_add_meter(&db, id, pk, NULL, 1, err, sizeof(err));
	tdb_close(&db);
	return rc;
}

int64_t sim_town_q1(struct sim_town *t, const char *sql, int64_t arg)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_open_v2(t->cfg.database, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_bind_parameter_count(st))
			sqlite3_bind_int64(st, 1, arg);
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

int64_t sim_town_stat(struct sim_town *t, const char *name)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT COALESCE((SELECT value FROM stats WHERE name = '%s'), 0)",
		 name);
	return sim_town_q1(t, sql, 0);
}
