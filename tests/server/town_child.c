// SPDX-License-Identifier: GPL-2.0
/* A town server in a child process, for host tests. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "town_child.h"
#include "townd_core.h"
#include "townd_db.h"
#include "townd_net.h"

int town_setup(struct town *t, const char *conf)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct townd_db db;
	char err[256];
	FILE *f;

	memset(t, 0, sizeof(*t));
	strcpy(t->dir, "/tmp/townd-test-XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	snprintf(t->db, sizeof(t->db), "%s/town.db", t->dir);
	snprintf(t->key, sizeof(t->key), "%s/townd.key", t->dir);
	snprintf(t->conf, sizeof(t->conf), "%s/townd.conf", t->dir);
	snprintf(t->log, sizeof(t->log), "%s/journal", t->dir);
	gmp_keypair_generate(&t->kp);
	if (townd_key_write(t->key, &t->kp, err, sizeof(err)))
		return -1;
	/* the schema exists before townd starts, so that its files can be watched */
	if (tdb_open(&db, t->db, 1, err, sizeof(err)))
		return -1;
	tdb_close(&db);
	f = fopen(t->conf, "w");
	if (!f)
		return -1;
	fprintf(f, "[server]\ndatabase = %s\nkey_file = %s\n%s", t->db, t->key, conf);
	if (fclose(f) || townd_config_load(&t->cfg, t->conf, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (t->lfd < 0 || bind(t->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(t->lfd, 1024) || getsockname(t->lfd, (struct sockaddr *)&sa, &sl))
		return -1;
	t->port = ntohs(sa.sin_port);
	return 0;
}

void town_start_limited(struct town *t, const struct rlimit *nofile)
{
	t->pid = fork();
	if (t->pid == 0) {
		char err[512];
		int fd = open(t->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600), rc;
		int lfd = 3;

		if (fd < 0 || dup2(fd, 2) < 0 || dup2(t->lfd, lfd) < 0 ||
		    close_range(4, ~0u, 0))
			_exit(3);
		if (nofile && setrlimit(RLIMIT_NOFILE, nofile))
			_exit(3);
		rc = townd_run(&t->cfg, &lfd, 1, err, sizeof(err));
		if (rc)
			fprintf(stderr, "townd_run: %s\n", err);
		_exit(rc ? 1 : 0);
	}
}

void town_start(struct town *t)
{
	town_start_limited(t, NULL);
}

int town_wait(struct town *t, int timeout_ms)
{
	int st = 0;

	if (t->pid <= 0)
		return -1;
	for (int waited = 0; waitpid(t->pid, &st, WNOHANG) == 0; waited += 20) {
		struct timespec ts = { 0, 20 * 1000000L };

		if (waited >= timeout_ms)
			return -1;
		nanosleep(&ts, NULL);
	}
	t->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int town_stop(struct town *t, int sig)
{
	if (t->pid <= 0)
		return -1;
	kill(t->pid, sig);
	return town_wait(t, 20000);
}

void town_teardown(struct town *t)
{
	char cmd[160];

	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		town_wait(t, 20000);
	}
	if (t->lfd > 0)
		close(t->lfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (t->dir[0] && system(cmd)) {
		/* nothing more to do */
	}
}

int town_provision(struct town *t, uint16_t id, struct simmeter *m)
{
	struct gmp_keypair kp;
	struct townd_db db;
	char err[256];
	int rc;

	gmp_keypair_generate(&kp);
	if (tdb_open(&db, t->db, 1, err, sizeof(err)))
		return -1;
	rc = tdb_add_meter(&db, id, kp.pk, NULL, 1, err, sizeof(err));
	tdb_close(&db);
	return rc ? rc : simmeter_init(m, id, &kp, t->kp.pk);
}

int64_t town_q1(struct town *t, const char *sql, int64_t arg)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_open_v2(t->db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
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

int64_t town_stat(struct town *t, const char *name)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT COALESCE((SELECT value FROM stats WHERE name = '%s'), 0)",
		 name);
	return town_q1(t, sql, 0);
}

int town_send_readings(struct simmeter *m, int fd, int64_t from, int64_t to, int k)
{
	struct gmp_msg msgs[32];
	uint8_t wire[GM_MAX_WIRE];

	if (k < 1 || k > 32)
		return -1;
	while (from <= to) {
		int n = 0, len;

		while (n < k && from <= to)
			sim_reading(m->id, from++, &msgs[n++]);
		len = simmeter_frame(m, msgs, (size_t)n, GM_FLAG_ACK_REQ, wire, sizeof(wire));
		if (len < 0 || sim_send_all(fd, wire, (size_t)len))
			return -1;
	}
	return 0;
}

void town_journal_dump(const struct town *t)
{
	char line[512];
	FILE *f = t->log[0] ? fopen(t->log, "r") : NULL;

	while (f && fgets(line, sizeof(line), f))
		fprintf(stderr, "# townd: %s", line);
	if (f)
		fclose(f);
}
