// SPDX-License-Identifier: GPL-2.0
/*
 * townd under hostile clients (issue 10, finding 7): the real server loop
 * (townd_run) in a child process on 127.0.0.1, configured from a
 * townd.conf with short timeouts, against garbage senders, slow senders,
 * replayers, many connections from one address and a descriptor limit
 * that runs out, while simulated meters still connect and get their
 * records stored. The loopback addresses 127.0.0.2... stand for other
 * hosts (Linux routes all of 127/8 to lo).
 *
 * Times are lower-bounded exactly (townd never closes before a deadline)
 * and upper-bounded generously (a loaded machine only makes it later).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "gm_harness.h"

#include "../unit/line_of.h"
#include "simmeter.h"
#include "simtown.h"
#include "townd_core.h"
#include "townd_db.h"
#include "townd_net.h"

#define SLACK_MS	4000	/* a loaded machine may close this much later */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * A town (simtown.h) configured from a townd.conf, as townd reads it, and
 * run with the descriptors systemd would give it, its journal in a file.
 */
struct town {
	struct sim_town s;
	char conf[128], log[128];
};

/* The town with the [server] lines in conf besides database and key_file. */
static int town_setup(struct town *t, const char *conf)
{
	struct townd_db db;
	char err[256];
	FILE *f;

	memset(t, 0, sizeof(*t));
	if (sim_town_setup(&t->s, "townd-hostile"))
		return -1;
	snprintf(t->conf, sizeof(t->conf), "%s/townd.conf", t->s.dir);
	snprintf(t->log, sizeof(t->log), "%s/journal", t->s.dir);
	/* the schema exists before townd starts, so that its files can be watched */
	if (tdb_open(&db, t->s.cfg.database, 1, err, sizeof(err)))
		return -1;
	tdb_close(&db);
	f = fopen(t->conf, "w");
	if (!f)
		return -1;
	fprintf(f, "[server]\ndatabase = %s\nkey_file = %s\n%s", t->s.cfg.database,
		t->s.cfg.key_file, conf);
	if (fclose(f) || townd_config_load(&t->s.cfg, t->conf, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

/* townd with stdin, stdout, stderr (t->log) and the listener as 3, RLIMIT_NOFILE set first. */
static void town_start_limited(struct town *t, const struct rlimit *nofile)
{
	t->s.pid = fork();
	if (t->s.pid == 0) {
		char err[512];
		int fd = open(t->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600), rc;
		int lfd = 3;

		if (fd < 0 || dup2(fd, 2) < 0 || dup2(t->s.lfd, lfd) < 0 ||
		    close_range(4, ~0u, 0) || (nofile && setrlimit(RLIMIT_NOFILE, nofile)))
			_exit(3);
		rc = townd_run(&t->s.cfg, &lfd, 1, err, sizeof(err));
		if (rc)
			fprintf(stderr, "townd_run: %s\n", err);
		_exit(rc ? 1 : 0);
	}
}

static void town_start(struct town *t)
{
	town_start_limited(t, NULL);
}

/* townd's exit status (128 + signal if killed), -1 if not gone within timeout_ms. */
static int town_wait(struct town *t, int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;
	int st = 0;

	if (t->s.pid <= 0)
		return -1;
	while (waitpid(t->s.pid, &st, WNOHANG) == 0) {
		if (mono_ms() > end)
			return -1;
		sleep_ms(20);
	}
	t->s.pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int town_stop(struct town *t, int sig)
{
	if (t->s.pid <= 0)
		return -1;
	kill(t->s.pid, sig);
	return town_wait(t, 20000);
}

/* Meter id: a fresh key pair, provisioned, and its simulated side. */
static int town_provision(struct town *t, uint16_t id, struct simmeter *m)
{
	struct gmp_keypair kp;

	gmp_keypair_generate(&kp);
	return sim_town_add(&t->s, id, kp.pk) ? -1 : simmeter_init(m, id, &kp, t->s.kp.pk);
}

/* Readings 1..n of meter id stored, each once, with the values sent. */
static int readings_ok(struct town *t, uint16_t id, int64_t n)
{
	int64_t imp = 0;

	for (int64_t s = 1; s <= n; s++) {
		struct gmp_msg w;

		sim_reading(id, s, &w);
		imp += w.reading.import_mwh;
	}
	return sim_town_q1(&t->s, "SELECT COUNT(*) FROM readings WHERE meter = ?", id) == n &&
	       sim_town_q1(&t->s, "SELECT MAX(seq) FROM readings WHERE meter = ?", id) == n &&
	       sim_town_q1(&t->s, "SELECT SUM(import_mwh) FROM readings WHERE meter = ?", id) == imp;
}

/* Lines of the journal (townd's stderr) containing all of a and b (b may be NULL). */
static int journal_count(struct town *t, const char *a, const char *b, char *last, size_t lastlen)
{
	char line[512];
	int n = 0;
	FILE *f = fopen(t->log, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, a) && (!b || strstr(line, b))) {
			n++;
			if (last)
				snprintf(last, lastlen, "%s", line);
		}
	fclose(f);
	return n;
}

/* ---- clients ---------------------------------------------------------- */

/* TCP connection to townd from the loopback address src ("127.0.0.2"). */
static int connect_from(uint16_t port, const char *src)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in me = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, src, &me.sin_addr);
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	return fd;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	if (getsockname(fd, (struct sockaddr *)&sa, &sl))
		return 0;
	return ntohs(sa.sin_port);
}

/*
 * 1 if townd closed fd (EOF or reset; whatever townd sent before is
 * discarded), 0 if it is still open after timeout_ms.
 */
static int closed_within(int fd, int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)(end - mono_ms());
		char b[4096];
		ssize_t r;

		if (poll(&p, 1, left > 0 ? left : 0) <= 0)
			return 0;
		r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
	}
}

/* The highest ack seen for m on fd until it covers upto (-1: none; closed or timeout). */
static int64_t ack_upto(struct simmeter *m, int fd, struct sim_rx *rx, int64_t upto,
			int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms, best = -1;
	struct sim_ack a;

	while (best < upto) {
		int left = (int)(end - mono_ms());

		if (left <= 0 || sim_wait_ack(m, fd, rx, left, &a) != 1)
			break;
		if (a.upto > best)
			best = a.upto;
	}
	return best;
}

/* A session for m over fd (HELLO, WELCOME): 0 or -1. */
static int handshake(struct simmeter *m, int fd, struct sim_rx *rx)
{
	struct sim_ack a;

	return sim_handshake(m, fd, rx, 1500, &a) == 1 && a.welcome ? 0 : -1;
}

/*
 * Meter m reports readings [from, to] as a meter does when its connection
 * is refused: connect, handshake unless it has a session, send, wait for
 * the ack; closed or no ack within 1.5 s -> a new connection 250 ms
 * later, until deadline_ms has passed. Returns the number of connections
 * it took, or -1.
 */
static int meter_report(struct town *t, struct simmeter *m, const char *src, int64_t from,
			int64_t to, int deadline_ms)
{
	int64_t end = mono_ms() + deadline_ms;

	for (int attempt = 1; mono_ms() < end; attempt++) {
		struct sim_rx rx;
		int fd = connect_from(t->s.port, src), ok;

		sim_rx_init(&rx);
		ok = fd >= 0 && (m->s.up || !handshake(m, fd, &rx)) &&
		     !sim_send_range(m, fd, from, to, 5) && ack_upto(m, fd, &rx, to, 1500) >= to;
		if (fd >= 0)
			close(fd);
		if (ok)
			return attempt;
		sleep_ms(250);
	}
	return -1;
}

/*
 * A well-formed link frame (valid CRC) from `src` whose payload is `len`
 * random bytes after the envelope prefix `pre` (e.g. a session envelope's
 * kind and sid).
 */
static int junk_frame(uint16_t src, uint16_t dst, const uint8_t *pre, size_t plen, size_t len,
		      uint8_t *wire, size_t size)
{
	struct gm_hdr h = { .version = GM_VERSION, .type = GM_TYPE_DATA, .flags = GM_FLAG_ACK_REQ,
			    .hop_limit = GM_HOP_DEFAULT, .src = src, .dst = dst };
	uint8_t pl[GM_MAX_PAYLOAD];

	randombytes_buf(pl, len);
	memcpy(pl, pre, plen);
	randombytes_buf(&h.seq, sizeof(h.seq));
	return gm_frame_encode(&h, pl, len, wire, size);
}

/* ---- the attacker: a child process with many hostile connections ------ */

enum hostile_kind {
	H_NOISE,	/* random bytes, frame delimiters included, every period */
	H_SLOW,		/* one byte of a frame every period: the frame never ends */
	H_REPLAY,	/* an authentic frame townd already accepted, every period */
	H_REPLAY_HELLO,	/* the meter's HELLO townd answered, every period */
	H_JUNK_AS_METER, /* CRC-valid frames with a real meter's id, session kind, junk */
};

/* A session envelope's first bytes with a session id townd does not hold for the meter. */
static const uint8_t junk_session[2] = { GMP_ENV_SESSION, 0xee };

struct hostile {
	const char *src;
	enum hostile_kind kind;
	int period_ms;
};

struct attack {
	const struct hostile *h;
	int n;
	int duration_ms;
	const uint8_t *frame;	/* for H_SLOW and H_REPLAY */
	size_t frame_len;
	const uint8_t *hello;	/* for H_REPLAY_HELLO */
	size_t hello_len;
	uint16_t meter_id;	/* for H_JUNK_AS_METER */
};

struct attack_result {
	/* since the attack began: connect() called (townd accepts after), closed (-1: never) */
	int64_t connected_ms, closed_ms;
	uint64_t bytes;
	uint16_t port;
};

/*
 * Open every connection, report "ready" on the pipe, feed them until
 * duration_ms, then report each connection's result. Never reconnects.
 */
static void attacker(uint16_t port, const struct attack *a, int out)
{
	struct attack_result *r = calloc((size_t)a->n, sizeof(*r));
	int *fd = calloc((size_t)a->n, sizeof(*fd));
	int64_t *next = calloc((size_t)a->n, sizeof(*next));
	size_t *pos = calloc((size_t)a->n, sizeof(*pos));
	int64_t t0 = mono_ms();
	char ready = 'r';

	if (!r || !fd || !next || !pos)
		_exit(2);
	for (int i = 0; i < a->n; i++) {
		r[i].connected_ms = mono_ms() - t0;
		fd[i] = connect_from(port, a->h[i].src);
		r[i].port = fd[i] >= 0 ? local_port(fd[i]) : 0;
		r[i].closed_ms = fd[i] < 0 ? -2 : -1;
	}
	if (write(out, &ready, 1) != 1)
		_exit(2);
	for (int open = a->n; open && mono_ms() - t0 < a->duration_ms;) {
		int64_t now = mono_ms();

		open = 0;
		for (int i = 0; i < a->n; i++) {
			uint8_t buf[GM_MAX_WIRE];
			size_t len = 0;

			if (fd[i] < 0)
				continue;
			if (closed_within(fd[i], 0)) {
				r[i].closed_ms = mono_ms() - t0;
				close(fd[i]);
				fd[i] = -1;
				continue;
			}
			open++;
			if (now < next[i])
				continue;
			next[i] = now + a->h[i].period_ms;
			switch (a->h[i].kind) {
			case H_NOISE:
				len = 1 + randombytes_uniform(64);
				randombytes_buf(buf, len);
				break;
			case H_SLOW:	/* the frame's bytes after its opening delimiter */
				buf[0] = a->frame[1 + pos[i]++ % (a->frame_len - 2)];
				len = 1;
				break;
			case H_REPLAY:
				memcpy(buf, a->frame, a->frame_len);
				len = a->frame_len;
				break;
			case H_REPLAY_HELLO:
				memcpy(buf, a->hello, a->hello_len);
				len = a->hello_len;
				break;
			case H_JUNK_AS_METER: {
				int l = junk_frame(a->meter_id, GM_ID_SERVER, junk_session,
						   sizeof(junk_session), 40, buf, sizeof(buf));

				len = l > 0 ? (size_t)l : 0;
				break;
			}
			}
			if (len && send(fd[i], buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
				r[i].bytes += len;
		}
		sleep_ms(20);
	}
	if (write(out, r, (size_t)a->n * sizeof(*r)) != (ssize_t)((size_t)a->n * sizeof(*r)))
		_exit(2);
	_exit(0);
}

static pid_t attack_start(uint16_t port, const struct attack *a, int *rfd)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		attacker(port, a, p[1]);
	}
	close(p[1]);
	*rfd = p[0];
	if (pid < 0 || read(p[0], &c, 1) != 1)
		return -1;
	return pid;
}

static int attack_results(pid_t pid, int rfd, struct attack_result *r, int n)
{
	size_t want = (size_t)n * sizeof(*r), got = 0;
	int st;

	while (got < want) {
		ssize_t k = read(rfd, (char *)r + got, want - got);

		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(rfd);
	waitpid(pid, &st, 0);
	return got == want && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* ---- the child's resources, seen from outside --------------------------- */

/* CPU time (user + system) of pid in ms, from /proc. */
static int64_t cpu_ms(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the command may contain blanks */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			 &st) != 2)
		return -1;
	return (int64_t)((ut + st) * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK));
}

/* Open descriptors of pid and the highest one. */
static int fds_of(pid_t pid, int *highest)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	*highest = -1;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.')
			continue;
		n++;
		if (fd > *highest)
			*highest = fd;
	}
	closedir(d);
	return n;
}

struct fstamp {
	off_t size;
	struct timespec mtime;
	bool exists;
};

static void stamp(const char *path, struct fstamp *s)
{
	struct stat sb;

	memset(s, 0, sizeof(*s));
	if (stat(path, &sb))
		return;
	s->exists = true;
	s->size = sb.st_size;
	s->mtime = sb.st_mtim;
}

static bool stamp_eq(const struct fstamp *a, const struct fstamp *b)
{
	return a->exists == b->exists && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Send bytes, then wait until townd has read them all: it closes after our EOF. */
static int send_and_drain(int fd, const void *buf, size_t len)
{
	if (sim_send_all(fd, buf, len) || shutdown(fd, SHUT_WR))
		return -1;
	return closed_within(fd, 10000) ? 0 : -1;
}

/* ---- tests -------------------------------------------------------------- */

FIXTURE(hostile) {
	struct town t;
};

FIXTURE_SETUP(hostile)
{
	ASSERT_LE(0, sodium_init());
	memset(&self->t, 0, sizeof(self->t));
}

FIXTURE_TEARDOWN(hostile)
{
	/* what townd said, for whoever reads a failure in the check log */
	if (!_metadata->passed && self->t.log[0]) {
		char line[512];
		FILE *f = fopen(self->t.log, "r");

		while (f && fgets(line, sizeof(line), f))
			TH_LOG("townd: %s", line);
		if (f)
			fclose(f);
	}
	sim_town_teardown(&self->t.s, false);
}

/*
 * Every slot is taken by noise senders, slow senders (a byte every 0.7 s
 * of a frame that never ends), replayers of an accepted frame and of the
 * meter's HELLO (whose session townd still holds) and senders of
 * CRC-valid junk frames carrying the real meter's id. The meter is
 * refused while they hold the slots; each of them is closed
 * first_frame_timeout after it connected, whatever it keeps sending, and
 * the meter's next try gets in and its readings are stored.
 */
TEST_F(hostile, garbage_and_slow_clients_cannot_hold_slots)
{
	enum { FIRST_FRAME_S = 2, SLOTS = 8 };
	static const struct hostile h[SLOTS] = {
		{ "127.0.0.2", H_NOISE, 100 }, { "127.0.0.2", H_NOISE, 300 },
		{ "127.0.0.3", H_SLOW, 700 }, { "127.0.0.3", H_SLOW, 700 },
		{ "127.0.0.4", H_REPLAY, 300 }, { "127.0.0.4", H_REPLAY_HELLO, 300 },
		{ "127.0.0.5", H_JUNK_AS_METER, 100 }, { "127.0.0.5", H_NOISE, 1000 },
	};
	struct attack_result r[SLOTS];
	struct attack a = { .h = h, .n = SLOTS, .duration_ms = FIRST_FRAME_S * 1000 + SLACK_MS,
			    .meter_id = 1 };
	struct simmeter m;
	struct gmp_msg g;
	struct sim_rx rx;
	uint8_t replay[GM_MAX_WIRE], hello[GM_MAX_WIRE];
	struct sim_ack ack;
	char conf[160];
	int64_t t0;
	int len, hlen, fd, rfd, tries;
	pid_t apid;

	snprintf(conf, sizeof(conf), "max_connections = %d\nfirst_frame_timeout = %d\n"
		 "idle_timeout = 60\npeer_log_limit = 1000\n", SLOTS, FIRST_FRAME_S);
	ASSERT_EQ(0, town_setup(&self->t, conf));
	ASSERT_EQ(0, town_provision(&self->t, 1, &m));
	town_start(&self->t);

	/* the handshake and reading 1 are accepted: their frames are what the replayers send */
	fd = connect_from(self->t.s.port, "127.0.0.1");
	ASSERT_LE(0, fd);
	sim_rx_init(&rx);
	hlen = simmeter_hello(&m, 0, hello, sizeof(hello));
	ASSERT_LT(0, hlen);
	ASSERT_EQ(0, sim_send_all(fd, hello, (size_t)hlen));
	ASSERT_EQ(1, sim_wait_ack(&m, fd, &rx, 5000, &ack));
	ASSERT_TRUE(ack.welcome);
	close(fd);
	sim_reading(1, 1, &g);
	len = simmeter_frame(&m, &g, 1, GM_FLAG_ACK_REQ, replay, sizeof(replay));
	ASSERT_LT(0, len);
	fd = connect_from(self->t.s.port, "127.0.0.1");
	ASSERT_LE(0, fd);
	sim_rx_init(&rx);
	ASSERT_EQ(0, sim_send_all(fd, replay, (size_t)len));
	ASSERT_EQ(1, ack_upto(&m, fd, &rx, 1, 5000));
	close(fd);
	/* townd has seen the close before the attack starts */
	sleep_ms(200);

	a.frame = replay;
	a.frame_len = (size_t)len;
	a.hello = hello;
	a.hello_len = (size_t)hlen;
	t0 = mono_ms();
	apid = attack_start(self->t.s.port, &a, &rfd);
	ASSERT_LT(0, apid);
	/* every slot is held: the meter is turned away at once */
	fd = connect_from(self->t.s.port, "127.0.0.1");
	ASSERT_LE(0, fd);
	EXPECT_EQ(1, closed_within(fd, 1000));
	close(fd);
	/* until the deadline frees the slots */
	tries = meter_report(&self->t, &m, "127.0.0.1", 2, 10,
			     FIRST_FRAME_S * 1000 + SLACK_MS + 2000);
	EXPECT_LT(0, tries);
	TH_LOG("the meter got in after %lld ms, %d connections", (long long)(mono_ms() - t0),
	       tries);
	ASSERT_EQ(0, attack_results(apid, rfd, r, SLOTS));
	for (int i = 0; i < SLOTS; i++) {
		int64_t held = r[i].closed_ms - r[i].connected_ms;

		EXPECT_LE(0, r[i].closed_ms) TH_LOG("hostile %d (%s) never closed", i, h[i].src);
		/* never before the deadline (1 ms: both ends truncate their clocks to ms) */
		EXPECT_LE(FIRST_FRAME_S * 1000 - 1, held) TH_LOG("hostile %d closed early", i);
		EXPECT_GE(FIRST_FRAME_S * 1000 + SLACK_MS, held);
		TH_LOG("hostile %d (kind %d) held its slot %lld ms, sent %llu bytes", i,
		       h[i].kind, (long long)held, (unsigned long long)r[i].bytes);
	}
	EXPECT_EQ(0, town_stop(&self->t, SIGTERM));
	EXPECT_TRUE(readings_ok(&self->t, 1, 10));
	EXPECT_EQ(SLOTS, sim_town_stat(&self->t.s, "first_frame_timeouts"));
	EXPECT_LE(1, sim_town_stat(&self->t.s, "conn_refused"));
	EXPECT_LE(1, sim_town_stat(&self->t.s, "replayed"));
	/* junk with the meter's id in a session envelope of a session townd does not hold */
	EXPECT_LE(1, sim_town_stat(&self->t.s, "no_session"));
	/* the replayed HELLO was answered as a duplicate, and kept no slot for it */
	EXPECT_LE(1, sim_town_stat(&self->t.s, "hello_dups"));
	/* each hostile peer is named in the journal */
	for (int i = 0; i < SLOTS; i++) {
		char want[64];

		snprintf(want, sizeof(want), "peer %s:%u: ", h[i].src, r[i].port);
		EXPECT_EQ(1, journal_count(&self->t, want, "no authentic frame within 2 s", NULL, 0))
			TH_LOG("no line for %s", want);
	}
}

/*
 * A connection that sent one authentic frame and then only garbage is
 * closed idle_timeout after that frame; a meter that keeps sending
 * authentic frames stays connected well past idle_timeout.
 */
TEST_F(hostile, idle_timer_refreshed_only_by_authentic_frames)
{
	enum { IDLE_S = 2, RUN_MS = IDLE_S * 1000 + SLACK_MS + 1000 };
	struct simmeter a, b;
	struct sim_rx rxa, rxb;
	char conf[160];
	int64_t auth_sent, closed_at = -1, t0, seq_b = 1, acked_b = 0;
	int fa, fb;

	snprintf(conf, sizeof(conf), "idle_timeout = %d\nfirst_frame_timeout = 60\n", IDLE_S);
	ASSERT_EQ(0, town_setup(&self->t, conf));
	ASSERT_EQ(0, town_provision(&self->t, 1, &a));
	ASSERT_EQ(0, town_provision(&self->t, 2, &b));
	town_start(&self->t);
	sim_rx_init(&rxa);
	sim_rx_init(&rxb);
	fa = connect_from(self->t.s.port, "127.0.0.1");
	fb = connect_from(self->t.s.port, "127.0.0.1");
	ASSERT_LE(0, fa);
	ASSERT_LE(0, fb);
	ASSERT_EQ(0, handshake(&a, fa, &rxa));
	ASSERT_EQ(0, handshake(&b, fb, &rxb));
	auth_sent = mono_ms();
	ASSERT_EQ(0, sim_send_range(&a, fa, 1, 1, 1));
	ASSERT_EQ(1, ack_upto(&a, fa, &rxa, 1, 5000));
	t0 = mono_ms();
	/* until A is closed and B has been connected for idle_timeout + 2 s */
	while (mono_ms() - t0 < RUN_MS &&
	       (closed_at < 0 || mono_ms() - t0 < IDLE_S * 1000 + 2000)) {
		uint8_t junk[GM_MAX_WIRE];
		int l = junk_frame(1, GM_ID_SERVER, junk_session, sizeof(junk_session), 40, junk,
				   sizeof(junk));

		/* A's connection: noise and junk frames with A's id, every 200 ms */
		if (closed_at < 0) {
			if (closed_within(fa, 0))
				closed_at = mono_ms();
			else if (sim_send_all(fa, "\x13\x37garbage\0", 10) ||
				 sim_send_all(fa, junk, (size_t)l))
				closed_at = mono_ms();
		}
		/* B: one authentic frame every 400 ms, acks drained */
		if ((mono_ms() - t0) / 400 >= seq_b) {
			ASSERT_EQ(0, sim_send_range(&b, fb, seq_b, seq_b, 1));
			seq_b++;
		}
		{
			int64_t u = ack_upto(&b, fb, &rxb, seq_b - 1, 200);

			if (u > acked_b)
				acked_b = u;
		}
	}
	ASSERT_LE(0, closed_at) TH_LOG("garbage kept A's connection open for %d ms", RUN_MS);
	EXPECT_LE(IDLE_S * 1000 - 1, closed_at - auth_sent);	/* ms truncation */
	EXPECT_GE(IDLE_S * 1000 + SLACK_MS, closed_at - auth_sent);
	TH_LOG("A's connection closed %lld ms after its authentic frame",
	       (long long)(closed_at - auth_sent));
	/* B is still connected and acknowledged up to its last reading */
	EXPECT_EQ(0, closed_within(fb, 0));
	if (acked_b < seq_b - 1)
		acked_b = ack_upto(&b, fb, &rxb, seq_b - 1, 5000);
	EXPECT_EQ(seq_b - 1, acked_b);
	close(fa);
	close(fb);
	EXPECT_EQ(0, town_stop(&self->t, SIGTERM));
	EXPECT_EQ(1, sim_town_stat(&self->t.s, "idle_timeouts"));
	EXPECT_EQ(0, sim_town_stat(&self->t.s, "first_frame_timeouts"));
	EXPECT_TRUE(readings_ok(&self->t, 2, seq_b - 1));
}

/*
 * max_per_address: the connections over the cap from one address are
 * closed at accept; other addresses are not affected; a slot freed by
 * that address can be taken again.
 */
TEST_F(hostile, connections_per_address_are_capped)
{
	enum { CAP = 3, EXTRA = 4 };
	struct simmeter a, b;
	int fd[CAP + EXTRA], extra_closed = 0, retries = 0, tries;
	int64_t end;

	ASSERT_EQ(0, town_setup(&self->t, "max_per_address = 3\nmax_connections = 100\n"
				"first_frame_timeout = 60\n"));
	ASSERT_EQ(0, town_provision(&self->t, 1, &a));
	ASSERT_EQ(0, town_provision(&self->t, 2, &b));
	town_start(&self->t);
	for (int i = 0; i < CAP + EXTRA; i++) {
		fd[i] = connect_from(self->t.s.port, "127.0.0.2");
		ASSERT_LE(0, fd[i]);
	}
	/* townd accepts in order: the ones over the cap are closed, the first CAP not */
	for (int i = CAP; i < CAP + EXTRA; i++)
		extra_closed += closed_within(fd[i], 5000);
	EXPECT_EQ(EXTRA, extra_closed);
	for (int i = 0; i < CAP; i++)
		EXPECT_EQ(0, closed_within(fd[i], 0));
	/* another address is not affected */
	tries = meter_report(&self->t, &a, "127.0.0.3", 1, 5, 10000);
	EXPECT_EQ(1, tries);
	/* 127.0.0.2 gives one back and can use it again (once townd saw the close) */
	close(fd[0]);
	end = mono_ms() + 10000;
	tries = -1;
	while (tries < 0 && mono_ms() < end) {
		tries = meter_report(&self->t, &b, "127.0.0.2", 1, 5, 100);
		if (tries < 0)
			retries++;
	}
	EXPECT_LT(0, tries);
	for (int i = 1; i < CAP + EXTRA; i++)
		close(fd[i]);
	EXPECT_EQ(0, town_stop(&self->t, SIGTERM));
	EXPECT_TRUE(readings_ok(&self->t, 1, 5));
	EXPECT_TRUE(readings_ok(&self->t, 2, 5));
	EXPECT_EQ(EXTRA + retries, sim_town_stat(&self->t.s, "addr_refused"));
	EXPECT_EQ(0, sim_town_stat(&self->t.s, "conn_refused"));
}

/*
 * The descriptor limit runs out (lowered from outside with prlimit, as
 * an operator or a leak would): connections wait in the backlog and
 * accept4 fails with EMFILE. townd must not spin on the listener: its CPU
 * time while the condition lasts stays small and accept4 is retried about
 * once a second, each time closing one waiting peer cleanly; when
 * descriptors are back, meters are served again.
 */
TEST_F(hostile, descriptor_exhaustion_does_not_spin)
{
	enum { WAITING = 6, WINDOW_MS = 2000 };
	struct rlimit low, orig;
	struct simmeter m;
	int fill[256], waiting[WAITING], n_fill, open_fds, highest, eof = 0;
	int64_t cpu0, cpu1, w0, w1, errors;

	ASSERT_EQ(0, town_setup(&self->t, "max_connections = 100\n"));
	ASSERT_EQ(0, town_provision(&self->t, 1, &m));
	town_start(&self->t);
	ASSERT_EQ(1, meter_report(&self->t, &m, "127.0.0.1", 1, 3, 10000));
	sleep_ms(200);		/* townd has closed the meter's connection */

	/* no descriptor above the highest one now open */
	open_fds = fds_of(self->t.s.pid, &highest);
	ASSERT_LT(0, open_fds);
	ASSERT_EQ(0, prlimit(self->t.s.pid, RLIMIT_NOFILE, NULL, &orig));
	low.rlim_cur = (rlim_t)highest + 1;
	low.rlim_max = orig.rlim_max;	/* raising a hard limit takes CAP_SYS_RESOURCE */
	ASSERT_EQ(0, prlimit(self->t.s.pid, RLIMIT_NOFILE, &low, NULL));
	/* fill the holes below it, then more connections than there are descriptors */
	n_fill = highest + 1 - open_fds;
	ASSERT_GE((int)(sizeof(fill) / sizeof(fill[0])), n_fill);
	for (int i = 0; i < n_fill; i++) {
		fill[i] = connect_from(self->t.s.port, "127.0.0.2");
		ASSERT_LE(0, fill[i]);
	}
	for (int i = 0; i < WAITING; i++) {
		waiting[i] = connect_from(self->t.s.port, "127.0.0.3");
		ASSERT_LE(0, waiting[i]);
	}
	sleep_ms(300);
	w0 = mono_ms();
	cpu0 = cpu_ms(self->t.s.pid);
	sleep_ms(WINDOW_MS);
	cpu1 = cpu_ms(self->t.s.pid);
	w1 = mono_ms();
	ASSERT_LE(0, cpu0);
	TH_LOG("townd used %lld ms of CPU in %lld ms without descriptors", (long long)(cpu1 - cpu0),
	       (long long)(w1 - w0));
	/* a spinning loop gets a good share of a core even on a busy machine */
	EXPECT_GT((w1 - w0) / 10, cpu1 - cpu0);
	for (int i = 0; i < WAITING; i++)
		eof += closed_within(waiting[i], 0);
	TH_LOG("%d of %d waiting peers were closed meanwhile", eof, WAITING);
	/* the reserve descriptor gives the peer a clean close, about one per second */
	EXPECT_LE(1, eof);
	EXPECT_GT(WAITING, eof);

	/* descriptors are back: meters are served again */
	ASSERT_EQ(0, prlimit(self->t.s.pid, RLIMIT_NOFILE, &orig, NULL))
		TH_LOG("prlimit: %s; townd's status %d", strerror(errno), town_wait(&self->t, 0));
	for (int i = 0; i < n_fill; i++)
		close(fill[i]);
	EXPECT_LT(0, meter_report(&self->t, &m, "127.0.0.1", 4, 6, 10000));
	for (int i = 0; i < WAITING; i++)
		close(waiting[i]);
	EXPECT_EQ(0, town_stop(&self->t, SIGTERM));
	EXPECT_TRUE(readings_ok(&self->t, 1, 6));
	errors = sim_town_stat(&self->t.s, "accept_errors");
	TH_LOG("accept4 failed %lld times", (long long)errors);
	/* at least once (the condition was real), at most about once a second */
	EXPECT_LE(1, errors);
	EXPECT_GE((w1 - w0) / 1000 + 4, errors);
	EXPECT_LE(1, journal_count(&self->t, "Too many open files", NULL, NULL, 0));
}

/*
 * townd refuses to start when the open-file limit cannot hold
 * max_connections (naming file, line and key), and raises its soft limit
 * when the hard limit allows.
 */
TEST_F(hostile, open_file_limit_checked_at_start)
{
	struct rlimit tight = { 64, 64 }, soft_only = { 64, 4096 }, now;
	struct simmeter m;
	char want[200], line[512], text[512] = "";
	unsigned int lno;
	int rc;
	FILE *f;

	/* a hard limit this test may set: not above its own */
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &now));
	if (now.rlim_max != RLIM_INFINITY && now.rlim_max < soft_only.rlim_max)
		soft_only.rlim_max = now.rlim_max;
	ASSERT_LE(200, soft_only.rlim_max);
	ASSERT_EQ(0, town_setup(&self->t, "first_frame_timeout = 5\nmax_connections = 100\n"));
	f = fopen(self->t.conf, "r");
	ASSERT_NE(NULL, f);
	EXPECT_LT(0, fread(text, 1, sizeof(text) - 1, f));
	fclose(f);
	lno = line_of(text, "max_connections = 100");
	ASSERT_LT(0, lno);
	ASSERT_EQ(0, town_provision(&self->t, 1, &m));

	town_start_limited(&self->t, &tight);
	rc = town_wait(&self->t, 5000);
	if (rc < 0)
		town_stop(&self->t, SIGKILL);
	EXPECT_EQ(1, rc) TH_LOG("townd started with 64 descriptors for 100 connections");
	snprintf(want, sizeof(want), "%s:%u: [server] key 'max_connections': ", self->t.conf, lno);
	EXPECT_EQ(1, journal_count(&self->t, want, "limit is 64", line, sizeof(line)));
	TH_LOG("%s", line);

	town_start_limited(&self->t, &soft_only);
	EXPECT_EQ(1, meter_report(&self->t, &m, "127.0.0.1", 1, 3, 10000));
	ASSERT_EQ(0, prlimit(self->t.s.pid, RLIMIT_NOFILE, NULL, &now));
	EXPECT_EQ(soft_only.rlim_max, now.rlim_cur);
	EXPECT_EQ(soft_only.rlim_max, now.rlim_max);
	EXPECT_EQ(0, town_stop(&self->t, SIGTERM));
	EXPECT_TRUE(readings_ok(&self->t, 1, 3));
}

/* m's next frame (reading seq) with one ciphertext byte changed: fails its tag. */
static int forged_frame(struct simmeter *m, int64_t seq, uint8_t *wire, size_t size)
{
	uint8_t real[GM_MAX_WIRE], pl[GM_MAX_PAYLOAD];
	enum gm_rx_status st;
	struct gmp_msg g;
	struct gm_rx rx;
	int len;

	sim_reading(m->id, seq, &g);
	len = simmeter_frame(m, &g, 1, GM_FLAG_ACK_REQ, real, sizeof(real));
	if (len < 0)
		return -1;
	gm_rx_init(&rx);
	gm_rx_feed(&rx, real, (size_t)len, &st);
	if (st != GM_RX_FRAME)
		return -1;
	memcpy(pl, rx.payload, rx.payload_len);
	pl[rx.payload_len - 20] ^= 0x01;
	return gm_frame_encode(&rx.hdr, pl, rx.payload_len, wire, size);
}

/*
 * Frames that do not open (junk, junk in a session envelope and forgeries
 * with a real meter's id, replays, unknown ids, frames for others) and
 * line noise change nothing on disk: the database and its WAL keep their
 * size and mtime. They are counted in memory and saved with the next
 * authentic work, every stats_interval, or at stop.
 */
TEST_F(hostile, unauthenticated_input_writes_nothing)
{
	enum { JUNK = 40, NO_SESSION = 15, FORGED = 25, REPLAYS = 30, UNKNOWN = 20, OTHERS = 10 };
	static const uint8_t no_version[1] = { 0xee };
	static const char *const files[] = { "town.db", "town.db-wal" };
	struct fstamp before[2], after[2];
	struct simmeter m;
	struct gmp_msg g;
	uint8_t *buf = malloc(256 * 1024), first[GM_MAX_WIRE];
	size_t len = 0, half;
	int l1, fd, noise_frames;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, town_setup(&self->t, "stats_interval = 3600\n"));
	ASSERT_EQ(0, town_provision(&self->t, 1, &m));
	town_start(&self->t);
	fd = connect_from(self->t.s.port, "127.0.0.1");
	ASSERT_LE(0, fd);
	{
		struct sim_rx rx;

		sim_rx_init(&rx);
		ASSERT_EQ(0, handshake(&m, fd, &rx));
		sim_reading(1, 1, &g);
		l1 = simmeter_frame(&m, &g, 1, GM_FLAG_ACK_REQ, first, sizeof(first));
		ASSERT_LT(0, l1);
		ASSERT_EQ(0, sim_send_all(fd, first, (size_t)l1));
		ASSERT_EQ(1, ack_upto(&m, fd, &rx, 1, 5000));
		ASSERT_EQ(0, sim_send_range(&m, fd, 2, 5, 2));
		ASSERT_EQ(5, ack_upto(&m, fd, &rx, 5, 5000));
	}
	close(fd);
	sleep_ms(200);		/* the close seen; nothing left to write */
	for (int i = 0; i < 2; i++) {
		char p[200];

		snprintf(p, sizeof(p), "%s/%s", self->t.s.dir, files[i]);
		stamp(p, &before[i]);
	}
	ASSERT_TRUE(before[1].exists);

	for (int i = 0; i < JUNK; i++)
		len += (size_t)junk_frame(1, GM_ID_SERVER, no_version, sizeof(no_version),
					  30 + (size_t)i, buf + len, 4096);
	for (int i = 0; i < NO_SESSION; i++)
		len += (size_t)junk_frame(1, GM_ID_SERVER, junk_session, sizeof(junk_session),
					  40 + (size_t)i, buf + len, 4096);
	for (int i = 0; i < FORGED; i++) {
		int l = forged_frame(&m, 6 + i, buf + len, 4096);

		ASSERT_LT(0, l);
		len += (size_t)l;
	}
	for (int i = 0; i < REPLAYS; i++) {
		memcpy(buf + len, first, (size_t)l1);
		len += (size_t)l1;
	}
	half = len;
	for (int i = 0; i < UNKNOWN; i++)
		len += (size_t)junk_frame((uint16_t)(4000 + i), GM_ID_SERVER, junk_session,
					  sizeof(junk_session), 50, buf + len, 4096);
	for (int i = 0; i < OTHERS; i++)
		len += (size_t)junk_frame(1, 7, junk_session, sizeof(junk_session), 50, buf + len,
					  4096);
	/* line noise: delimited runs of junk (CRC or framing errors) */
	noise_frames = 25;
	for (int i = 0; i < noise_frames; i++) {
		randombytes_buf(buf + len, 30);
		for (int k = 0; k < 30; k++)
			buf[len + k] |= 1;	/* no delimiter inside */
		len += 30;
		buf[len++] = 0;
	}
	/* over two connections from two addresses, each read to the end by townd */
	fd = connect_from(self->t.s.port, "127.0.0.2");
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, send_and_drain(fd, buf, half));
	close(fd);
	fd = connect_from(self->t.s.port, "127.0.0.3");
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, send_and_drain(fd, buf + half, len - half));
	close(fd);
	for (int i = 0; i < 2; i++) {
		char p[200];

		snprintf(p, sizeof(p), "%s/%s", self->t.s.dir, files[i]);
		stamp(p, &after[i]);
		EXPECT_TRUE(stamp_eq(&before[i], &after[i]))
			TH_LOG("%s written: size %lld -> %lld", files[i], (long long)before[i].size,
			       (long long)after[i].size);
	}
	/* counted all the same, and saved at stop */
	EXPECT_EQ(0, town_stop(&self->t, SIGTERM));
	EXPECT_EQ(JUNK, sim_town_stat(&self->t.s, "bad_version"));
	EXPECT_EQ(NO_SESSION, sim_town_stat(&self->t.s, "no_session"));
	EXPECT_EQ(FORGED, sim_town_stat(&self->t.s, "auth_failed"));
	EXPECT_EQ(REPLAYS, sim_town_stat(&self->t.s, "replayed"));
	EXPECT_EQ(UNKNOWN, sim_town_stat(&self->t.s, "unknown_meter"));
	EXPECT_EQ(OTHERS, sim_town_stat(&self->t.s, "not_for_us"));
	EXPECT_EQ(noise_frames, sim_town_stat(&self->t.s, "crc_errors") + sim_town_stat(&self->t.s, "framing_errors"));
	/* the meter's own count: what reached its sessions */
	EXPECT_EQ(NO_SESSION + FORGED + REPLAYS,
		  sim_town_q1(&self->t.s, "SELECT rejected FROM meters WHERE id = ?", 1));
	EXPECT_TRUE(readings_ok(&self->t, 1, 5));
	free(buf);
}

/* ... and with a short stats_interval they reach the database while townd runs. */
TEST_F(hostile, rejected_input_counters_saved_every_stats_interval)
{
	enum { JUNK = 12 };
	uint8_t buf[JUNK * 128];
	size_t len = 0;
	int64_t end;
	int fd;

	ASSERT_EQ(0, town_setup(&self->t, "stats_interval = 1\n"));
	town_start(&self->t);
	for (int i = 0; i < JUNK; i++)
		len += (size_t)junk_frame((uint16_t)(100 + i), GM_ID_SERVER, junk_session,
					  sizeof(junk_session), 40, buf + len, 128);
	fd = connect_from(self->t.s.port, "127.0.0.2");
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, send_and_drain(fd, buf, len));
	close(fd);
	end = mono_ms() + 1000 + SLACK_MS;
	while (sim_town_stat(&self->t.s, "unknown_meter") != JUNK && mono_ms() < end)
		sleep_ms(100);
	EXPECT_EQ(JUNK, sim_town_stat(&self->t.s, "unknown_meter"));
	EXPECT_EQ(0, town_stop(&self->t, SIGTERM));
	EXPECT_EQ(JUNK, sim_town_stat(&self->t.s, "unknown_meter"));
}

/*
 * Refused peers are named (address and port) in at most peer_log_limit
 * lines a minute; the rest are counted and the count is reported.
 */
TEST_F(hostile, peer_lines_rate_limited)
{
	enum { LIMIT = 4, REFUSED = 12 };
	int keep, fd[REFUSED], named = 0, closed = 0;
	uint16_t port[REFUSED];
	char line[512], want[64];
	int64_t end;

	ASSERT_EQ(0, town_setup(&self->t, "peer_log_limit = 4\nmax_per_address = 1\n"));
	town_start(&self->t);
	keep = connect_from(self->t.s.port, "127.0.0.2");
	ASSERT_LE(0, keep);
	for (int i = 0; i < REFUSED; i++) {
		fd[i] = connect_from(self->t.s.port, "127.0.0.2");
		ASSERT_LE(0, fd[i]);
		port[i] = local_port(fd[i]);
	}
	end = mono_ms() + 5000;
	for (int i = 0; i < REFUSED; i++)
		closed += closed_within(fd[i], (int)(end > mono_ms() ? end - mono_ms() : 0));
	EXPECT_EQ(REFUSED, closed);
	close(keep);
	EXPECT_EQ(0, town_stop(&self->t, SIGTERM));
	EXPECT_EQ(REFUSED, sim_town_stat(&self->t.s, "addr_refused"));
	EXPECT_EQ(LIMIT, journal_count(&self->t, "peer 127.0.0.2:", NULL, NULL, 0));
	for (int i = 0; i < REFUSED; i++) {
		snprintf(want, sizeof(want), "peer 127.0.0.2:%u: ", port[i]);
		named += journal_count(&self->t, want, "max_per_address", NULL, 0);
		close(fd[i]);
	}
	EXPECT_EQ(LIMIT, named);
	snprintf(want, sizeof(want), ": %d peer lines suppressed", REFUSED - LIMIT);
	EXPECT_EQ(1, journal_count(&self->t, want, NULL, line, sizeof(line)));
	TH_LOG("%s", line);
}

TEST_HARNESS_MAIN
