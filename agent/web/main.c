// SPDX-License-Identifier: GPL-2.0
/*
 * meterweb: the in-home dashboard of the gateway (Documentation/dashboard.md).
 *
 *   meterweb [-c FILE]            serve the dashboard
 *   meterweb passwd [-c FILE]     set the household's password (from stdin)
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "app.h"
#include "atomic_file.h"
#include "auth.h"
#include "mw_config.h"

#define EX_USAGE	64
#define EX_CONFIG	78
#define MW_GROUP	"gridmeter-web"
#define PEM_MAX		(64 * 1024)

static void usage(FILE *f)
{
	fprintf(f, "usage: meterweb [-c FILE]          serve the dashboard\n"
		   "       meterweb passwd [-c FILE]   set the household's password (read from stdin)\n"
		   "FILE defaults to " MW_DEFAULT_CONF ".\n");
}

static int read_line(const char *prompt, char *buf, size_t size)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && !tcgetattr(STDIN_FILENO, &old);
	char *ok;

	if (tty) {
		fprintf(stderr, "%s", prompt);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	ok = fgets(buf, (int)size, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	if (!ok)
		return -1;
	buf[strcspn(buf, "\r\n")] = 0;
	return 0;
}

/* Write the hash atomically, readable by the daemon's group only. */
static int write_hash(const char *path, const char *hash)
{
	struct group *gr = getgrnam(MW_GROUP);
	struct atomic_file a;
	int r;

	r = atomic_file_open_stream(&a, path, 0640);
	if (r)
		return r;
	if (gr && geteuid() == 0)
		r = atomic_file_chown(&a, 0, gr->gr_gid);
	if (r) {
		atomic_file_abort(&a);
		return r;
	}
	fprintf(a.f, "%s\n", hash);
	return atomic_file_commit(&a, 0);
}

static int cmd_passwd(const struct mw_config *cfg)
{
	char pw[256], again[256], hash[128];
	int r;

	if (read_line("New household password: ", pw, sizeof(pw))) {
		fprintf(stderr, "meterweb passwd: no password given on stdin\n");
		return EX_USAGE;
	}
	if (isatty(STDIN_FILENO)) {
		if (read_line("Again: ", again, sizeof(again)) || strcmp(pw, again)) {
			fprintf(stderr, "meterweb passwd: the two passwords differ; nothing changed\n");
			return EX_USAGE;
		}
	}
	if (strlen(pw) < 8) {
		fprintf(stderr, "meterweb passwd: at least 8 characters, please; nothing changed\n");
		return EX_USAGE;
	}
	r = web_passwd_hash(pw, hash);
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(again, sizeof(again));
	if (r) {
		fprintf(stderr, "meterweb passwd: hashing failed (out of memory?)\n");
		return 1;
	}
	r = write_hash(cfg->password_file, hash);
	if (r) {
		fprintf(stderr, "meterweb passwd: %s: %s\n", cfg->password_file, strerror(-r));
		return 1;
	}
	fprintf(stderr, "meterweb passwd: %s written (Argon2id); a running meterweb uses it from the next sign-in and ends the sessions opened with the old one\n",
		cfg->password_file);
	return 0;
}

static char *read_pem(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = calloc(1, PEM_MAX + 1);
	n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
	fclose(f);
	if (!buf || n == 0 || n > PEM_MAX) {
		snprintf(err, errlen, "%s: %s", path, !buf ? "out of memory" : n ? "larger than 64 KiB" : "empty");
		free(buf);
		return NULL;
	}
	return buf;
}

static int serve(const struct mw_config *cfg)
{
	struct web_server_config sc = { 0 };
	struct web_server *srv;
	struct mw_app *a = calloc(1, sizeof(*a));
	char err[256] = "";
	char *cert = NULL, *key = NULL;
	sigset_t set;
	int sig = 0, rc = 0;

	if (!a)
		return 1;
	if (cfg->tls_cert[0]) {
		cert = read_pem(cfg->tls_cert, err, sizeof(err));
		key = cert ? read_pem(cfg->tls_key, err, sizeof(err)) : NULL;
		if (!key) {
			fprintf(stderr, "meterweb: [web] tls: %s\n", err);
			free(cert);
			free(a);
			return EX_CONFIG;
		}
	}
	/* signals are taken by sigwait below: block them before any thread starts */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (mw_app_init(a, cfg) || mw_client_start(&a->client, &a->snap)) {
		fprintf(stderr, "meterweb: cannot start (out of memory?)\n");
		return 1;
	}
	sc.listen = cfg->listen;
	sc.conn_max = cfg->conn_max;
	sc.conn_per_addr = cfg->conn_per_addr;
	sc.tls_cert_pem = cert;
	sc.tls_key_pem = key;
	sc.accept = mw_app_accept;
	srv = web_server_start(&sc, mw_app_handle, a, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "meterweb: [web] listen = %s: %s\n", cfg->listen, err);
		rc = EX_CONFIG;
	} else {
		printf("meterweb: listening on %s, port %u%s%s\n", cfg->listen, web_server_port(srv),
		       cert ? ", TLS" : "", cfg->allow_remote ? ", any address" : ", home network only");
		fflush(stdout);
		syslog(LOG_INFO, "meterweb: listening on %s, port %u%s", cfg->listen, web_server_port(srv),
		       cert ? ", TLS" : "");
		sd_notify(0, "READY=1\nSTATUS=serving the dashboard");
		do
			sigwait(&set, &sig);
		while (sig == SIGHUP);
		sd_notify(0, "STOPPING=1");
		atomic_store(&a->stopping, true);
		/* wake the live streams so they end */
		pthread_mutex_lock(&a->snap.lock);
		a->snap.s.gen++;
		pthread_cond_broadcast(&a->snap.cond);
		pthread_mutex_unlock(&a->snap.lock);
		web_server_stop(srv);
	}
	mw_client_stop(&a->client);
	mw_app_free(a);
	free(a);
	if (cert)
		explicit_bzero(cert, strlen(cert));
	if (key)
		explicit_bzero(key, strlen(key));
	free(cert);
	free(key);
	return rc;
}

int main(int argc, char **argv)
{
	const char *conf = MW_DEFAULT_CONF;
	bool passwd = false, explicit_conf = false;
	struct mw_config cfg;
	char err[512];
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "passwd")) {
			passwd = true;
		} else if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			conf = argv[++i];
			explicit_conf = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return EX_USAGE;
		}
	}
	openlog("meterweb", LOG_PID, LOG_DAEMON);
	mw_config_defaults(&cfg);
	if (mw_config_load(&cfg, conf, err, sizeof(err))) {
		/* no file at the default path: the defaults (an explicit -c must exist) */
		if (explicit_conf || access(conf, F_OK) == 0) {
			fprintf(stderr, "meterweb: %s\n", err);
			return EX_CONFIG;
		}
		mw_config_defaults(&cfg);
	}
	if (cfg.timezone[0]) {
		setenv("TZ", cfg.timezone, 1);
	}
	tzset();
	return passwd ? cmd_passwd(&cfg) : serve(&cfg);
}
