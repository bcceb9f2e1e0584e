// SPDX-License-Identifier: GPL-2.0
/*
 * simfleet: a fleet of simulated meters for the town network test
 * (tests/townnet/, Documentation/testing.md). Several hundred meters share
 * a few TCP connections to one townd, as the meters behind a wired
 * gateway or a carrier's NAT would: each meter handshakes (HELLO with its
 * real record state and a trusted clock), sends one reading per hour it
 * is given, keeps every reading until the town acknowledges it, goes back
 * to the first unacknowledged one when acknowledgements stop coming, and
 * starts over (reconnect, HELLO) when its connection breaks. Commands the
 * town sends are answered as applied.
 *
 *   simfleet keys SEED FIRST COUNT
 *       one line "ID PUBKEY" per meter: its public key, derived from SEED
 *       and the id, for "townctl add"
 *   simfleet run --town ADDR:PORT --town-pk HEX --seed SEED --first ID
 *                --count N --hours H,H,... [--conns K] [--pace-ms MS]
 *                [--timeout S] [--alloc ID:W,ID:W,...] [--until-granted BASE_W]
 *                [--operator-keys FILE --town-id T [--two-above N]]
 *                [--stay-until FILE] --record FILE
 *       reading r (1-based) of every meter covers hour H_r (UTC s,
 *       interval 3600); reading r is made at r-1 paces after the start.
 *       A meter named in --alloc first sends an allocation request
 *       (request id 1, W watts: > 0 asked, < 0 offered, for an hour) as
 *       its record 1, at the start; its readings are then records 2...
 *       With --until-granted, the fleet is done only when each of those
 *       meters also holds the grant BASE_W + W (a town that borrows for
 *       them may need longer than the readings).
 *       Operator-signed commands (GMP_SIGNED) are verified by each meter
 *       as meterd does (lib/sign: the --operator-keys set, town T, policy
 *       two_above N, default 10; replay memory per meter, in memory) and
 *       answered with GMP_CMD_RESULT; without --operator-keys every one is
 *       refused, as meterd refuses them without keys.
 *       With --stay-until FILE the fleet, once every record is
 *       acknowledged, prints its "D" line and writes FILE's record, then
 *       stays (sessions up, commands answered) until FILE exists or the
 *       timeout, and writes the record again.
 *       Progress on stdout every 500 ms:
 *         P ELAPSED_MS ACKED_RECORDS MADE_RECORDS CONNS_UP RECONNECTS
 *       then one line "D {json}" with the totals. FILE gets one line per
 *       reading made, "R METER SEQ HOUR INTERVAL IMPORT EXPORT RENEW FLAGS"
 *       (mWh), one per allocation request, "Q METER SEQ REQ_ID WATTS
 *       DURATION", and one per meter, "A METER ACKED WELCOMES REHELLOS
 *       RESENDS COMMANDS GRANTED_W RELAY_OPEN" (GRANTED_W: the last grant's
 *       watts for its request; RELAY_OPEN 1 when the last signed command
 *       it executed was a disconnect), and one per signed command it
 *       handled, "X METER TSEQ CMD_ID ACTION STATUS" (ACTION the command's
 *       name, "-" when it did not decode; STATUS the gmp_cmd_status it
 *       answered, 0 executed). Exit status 0 when every record was
 *       acknowledged, 1 when the timeout came first, 2 on usage errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "simmeter.h"

#define FLEET_CONNS_MAX		64
#define FLEET_HOURS_MAX		512
#define FLEET_WINDOW		32	/* readings in flight per meter */
#define FLEET_PER_FRAME		8	/* readings per frame */
#define FLEET_HELLO_RETRY_MS	3000	/* a HELLO without its WELCOME is sent again */
#define FLEET_RESEND_MS		4000	/* no ack progress: go back to the first unacked */
#define FLEET_DEAD_MS		15000	/* no frame at all while waiting: reconnect */
#define FLEET_CONNECT_MS	2000
#define FLEET_RETRY_MS		500
#define FLEET_SIGNED_LOG	16	/* signed commands a meter records */

enum fm_state { FM_IDLE, FM_HELLO, FM_UP };

struct fmeter {
	struct simmeter sm;
	int conn;
	enum fm_state st;
	int64_t hello_at;	/* ms */
	int64_t next_send;	/* next reading to transmit */
	int64_t acked;		/* the town holds 1..acked */
	int64_t progress_at;	/* ms of the last ack progress (or of a send from idle) */
	int64_t cmd_floor;
	int64_t alloc_w;	/* 0: no allocation request */
	int64_t granted_w;	/* the last grant for it */
	uint64_t welcomes, rehellos, resends, commands;
	bool relay_open;	/* the last signed command executed was a disconnect */
	size_t nx;		/* signed commands handled (x[] keeps the first ones) */
	struct {
		int64_t tseq, status;
		uint64_t id;
		int action;
	} x[FLEET_SIGNED_LOG];
};

struct fconn {
	int fd;			/* -1: not connected */
	int64_t retry_at;	/* ms */
	int64_t rx_at;		/* ms of the last frame received */
	struct gm_rx rx;
};

struct fleet {
	struct sockaddr_in town;
	uint8_t town_pk[GMP_KEY_LEN];
	uint64_t seed;
	unsigned int first, count, nconns;
	int64_t hours[FLEET_HOURS_MAX];
	int nhours;
	int64_t pace_ms, timeout_s;
	int64_t until_granted;	/* >= 0: done only when each request holds this + its watts */
	const char *record;
	const char *stay;	/* --stay-until FILE */
	struct gmc_keyset keys;	/* empty without --operator-keys */
	struct gmc_policy pol;
	unsigned int town_id;
	struct fmeter *m;
	struct sim_signed *sig;	/* one per meter: its keys, clock, replay memory */
	struct fconn c[FLEET_CONNS_MAX];
	uint64_t reconnects;
	int64_t t0, t0_real;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A keyed hash of (seed, what, id, x): the fleet's keys and energies. */
static uint64_t mix(uint64_t seed, const char *what, uint64_t id, int64_t x, uint8_t *out,
		    size_t outlen)
{
	crypto_generichash_state st;
	uint8_t buf[32];
	uint64_t v = 0;

	crypto_generichash_init(&st, (const uint8_t *)"gridmeter-simfleet", 18, 32);
	crypto_generichash_update(&st, (const uint8_t *)&seed, sizeof(seed));
	crypto_generichash_update(&st, (const uint8_t *)what, strlen(what));
	crypto_generichash_update(&st, (const uint8_t *)&id, sizeof(id));
	crypto_generichash_update(&st, (const uint8_t *)&x, sizeof(x));
	crypto_generichash_final(&st, buf, sizeof(buf));
	if (out)
		memcpy(out, buf, outlen < sizeof(buf) ? outlen : sizeof(buf));
	for (int i = 0; i < 8; i++)
		v = v << 8 | buf[i];
	return v;
}

static int fleet_key(uint64_t seed, unsigned int id, struct gmp_keypair *kp)
{
	uint8_t sk[GMP_KEY_LEN];
	int rc;

	mix(seed, "key", id, 0, sk, sizeof(sk));
	rc = gmp_keypair_from_secret(kp, sk);
	sodium_memzero(sk, sizeof(sk));
	return rc;
}

/* Records of meter m: its readings, after its allocation request if any. */
static int64_t nrec(const struct fleet *f, const struct fmeter *m)
{
	return f->nhours + (m->alloc_w != 0);
}

/*
 * Reading seq of meter id, for hour: a household's hour. One meter in
 * four has a rooftop installation: renewable energy in the day, part of
 * it exported.
 */
static void fleet_reading(const struct fleet *f, unsigned int id, int64_t seq, int r,
			  struct gmp_msg *out)
{
	int64_t hour = f->hours[r], hod = hour / 3600 % 24;

	memset(out, 0, sizeof(*out));
	out->type = GMP_READING;
	out->reading.seq = seq;
	out->reading.start = hour;
	out->reading.interval_s = 3600;
	out->reading.import_mwh = 50000 + (int64_t)(mix(f->seed, "import", id, hour, NULL, 0) %
						    2000000);
	if (id % 4 == 0 && hod >= 7 && hod < 19) {
		out->reading.renew_mwh = (int64_t)(mix(f->seed, "renew", id, hour, NULL, 0) %
						   1500000);
		out->reading.export_mwh = out->reading.renew_mwh / 3;
	}
}

/* Record seq of meter m: its allocation request, or its reading. */
static void fleet_record(const struct fleet *f, const struct fmeter *m, int64_t seq,
			 int64_t t0_real, struct gmp_msg *out)
{
	if (m->alloc_w && seq == 1) {
		memset(out, 0, sizeof(*out));
		out->type = GMP_ALLOC_REQ;
		out->alloc_req.seq = 1;
		out->alloc_req.time = t0_real;
		out->alloc_req.req_id = 1;
		out->alloc_req.power_w = m->alloc_w;
		out->alloc_req.duration_s = 3600;
		return;
	}
	fleet_reading(f, m->sm.id, seq, (int)(seq - 1 - (m->alloc_w != 0)), out);
}

static int cmd_keys(int argc, char **argv)
{
	unsigned long long seed;
	unsigned int first, count;
	char hex[2 * GMP_KEY_LEN + 1];

	if (argc != 5 || sscanf(argv[2], "%llu", &seed) != 1 ||
	    sscanf(argv[3], "%u", &first) != 1 || sscanf(argv[4], "%u", &count) != 1 ||
	    first < 1 || first + count > 65535)
		return 2;
	for (unsigned int id = first; id < first + count; id++) {
		struct gmp_keypair kp;

		if (fleet_key(seed, id, &kp))
			return 1;
		gmp_hex_encode(kp.pk, GMP_KEY_LEN, hex);
		printf("%u %s\n", id, hex);
		sodium_memzero(&kp, sizeof(kp));
	}
	return fflush(stdout) ? 1 : 0;
}

/* ---- connections ------------------------------------------------------------- */

static void conn_close(struct fleet *f, int ci, int64_t now)
{
	struct fconn *c = &f->c[ci];

	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
		f->reconnects++;
	}
	c->retry_at = now + FLEET_RETRY_MS;
	for (unsigned int i = 0; i < f->count; i++)
		if (f->m[i].conn == ci)
			f->m[i].st = FM_IDLE;
}

/* A connect that gives up after FLEET_CONNECT_MS (a cut link drops the SYN). */
static void conn_open(struct fleet *f, int ci, int64_t now)
{
	struct fconn *c = &f->c[ci];
	struct pollfd p;
	int fd, err = 0;
	socklen_t el = sizeof(err);
	struct timeval tv = { .tv_sec = 1 };

	c->retry_at = now + FLEET_RETRY_MS;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&f->town, sizeof(f->town)) && errno != EINPROGRESS)
		goto fail;
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&p, 1, FLEET_CONNECT_MS) != 1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err)
		goto fail;
	/* blocking writes, bounded: a write that stalls a second breaks the link */
	if (fcntl(fd, F_SETFL, 0) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		goto fail;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	c->fd = fd;
	c->rx_at = mono_ms();
	gm_rx_init(&c->rx);
	return;
fail:
	close(fd);
}

static void conn_send(struct fleet *f, int ci, const uint8_t *wire, int len)
{
	if (len < 0 || f->c[ci].fd < 0)
		return;
	if (sim_send_all(f->c[ci].fd, wire, (size_t)len))
		conn_close(f, ci, mono_ms());
}

/* ---- meters ---------------------------------------------------------------- */

/* Readings made by now, of every meter. */
static int64_t made(const struct fleet *f, int64_t now)
{
	int64_t r = (now - f->t0) / (f->pace_ms ? f->pace_ms : 1) + 1;

	return r < f->nhours ? r : f->nhours;
}

/* Records meter m made by now (an allocation request is made at the start). */
static int64_t made_m(const struct fleet *f, const struct fmeter *m, int64_t now)
{
	return made(f, now) + (m->alloc_w != 0);
}

static void meter_hello(struct fleet *f, struct fmeter *m, int64_t now)
{
	int64_t n = made_m(f, m, now);
	struct sim_hello hv = { .now_ms = real_ms(), .clock_trusted = 1,
				.cmd_floor = m->cmd_floor, .next_seq = n + 1,
				.first_held = m->acked < n ? m->acked + 1 : n + 1 };
	uint8_t wire[GM_MAX_WIRE];

	m->st = FM_HELLO;
	m->hello_at = now;
	conn_send(f, m->conn, wire, simmeter_hello_with(&m->sm, &hv, wire, sizeof(wire)));
}

static void meter_send(struct fleet *f, struct fmeter *m, int64_t now)
{
	int64_t n = made_m(f, m, now);
	struct gmp_msg msgs[FLEET_PER_FRAME];
	uint8_t wire[GM_MAX_WIRE];

	if (m->next_send <= m->acked)
		m->next_send = m->acked + 1;
	if (m->next_send > m->acked + 1 && now - m->progress_at > FLEET_RESEND_MS) {
		/* go-back-N: the town has not acknowledged for a while */
		m->next_send = m->acked + 1;
		m->resends++;
	}
	if (m->next_send - 1 == m->acked)
		m->progress_at = now;	/* nothing in flight: the timer starts now */
	while (m->next_send <= n && m->next_send <= m->acked + FLEET_WINDOW && m->st == FM_UP) {
		int k = 0, len;

		while (k < FLEET_PER_FRAME && m->next_send <= n &&
		       m->next_send <= m->acked + FLEET_WINDOW)
			fleet_record(f, m, m->next_send++, f->t0_real, &msgs[k++]);
		len = simmeter_frame(&m->sm, msgs, (size_t)k, GM_FLAG_ACK_REQ, wire, sizeof(wire));
		conn_send(f, m->conn, wire, len);
	}
}

static void meter_command_result(struct fleet *f, struct fmeter *m, int64_t tseq)
{
	struct gmp_msg r = { .type = GMP_CMD_RESULT };
	uint8_t wire[GM_MAX_WIRE];

	r.cmd_result.tseq = tseq;
	r.cmd_result.status = tseq > m->cmd_floor ? GMP_CMD_OK : GMP_CMD_DUPLICATE;
	if (tseq > m->cmd_floor)
		m->cmd_floor = tseq;
	m->commands++;
	conn_send(f, m->conn, wire, simmeter_frame(&m->sm, &r, 1, 0, wire, sizeof(wire)));
}

/*
 * A signed command for m: a tseq it answered before gets DUPLICATE (its
 * first answer was lost), a new one is verified as meterd does and its
 * result sent at once.
 */
static void meter_signed(struct fleet *f, struct fmeter *m, const struct gmp_msg *g)
{
	struct sim_signed *s = m->sm.sig;
	struct gmp_msg r[SIM_SIGNED_MAX];
	uint8_t wire[GM_MAX_WIRE];
	size_t n0 = s->n, k;

	if (g->signed_cmd.tseq <= m->cmd_floor) {
		meter_command_result(f, m, g->signed_cmd.tseq);
		return;
	}
	s->now = real_ms() / 1000;
	s->floor = m->cmd_floor;
	simmeter_take_signed(&m->sm, g);
	if (s->n == n0)
		return;
	if (m->nx < FLEET_SIGNED_LOG) {
		m->x[m->nx].tseq = s->r[s->n - 1].tseq;
		m->x[m->nx].status = s->r[s->n - 1].status;
		m->x[m->nx].id = s->r[s->n - 1].id;
		m->x[m->nx].action = s->r[s->n - 1].status == GMP_CMD_INVALID ? -1 :
				     s->r[s->n - 1].action;
	}
	if (!s->r[s->n - 1].status && s->r[s->n - 1].action == GMC_DISCONNECT)
		m->relay_open = true;
	else if (!s->r[s->n - 1].status && s->r[s->n - 1].action == GMC_RECONNECT)
		m->relay_open = false;	/* armed; the household closes it (simulated: at once) */
	m->nx++;
	m->cmd_floor = g->signed_cmd.tseq;
	m->commands++;
	k = simmeter_results(&m->sm, r, SIM_SIGNED_MAX);
	conn_send(f, m->conn, wire, simmeter_frame(&m->sm, r, k, 0, wire, sizeof(wire)));
}

static void meter_frame(struct fleet *f, int ci, const struct gm_hdr *h,
			const uint8_t *payload, size_t len, int64_t now)
{
	struct gmp_addr a = { .type = h->type, .flags = h->flags, .src = h->src, .dst = h->dst };
	uint8_t plain[GM_MAX_PAYLOAD];
	struct fmeter *m;
	struct gmp_msg g;
	size_t o = 0;
	int n;

	if (h->src != GM_ID_SERVER || h->dst < f->first || h->dst >= f->first + f->count)
		return;
	m = &f->m[h->dst - f->first];
	if (m->conn != ci)
		return;
	if (gmp_envelope_kind(payload, len, NULL) == GMP_KIND_HANDSHAKE) {
		n = gmp_hs_open(&m->sm.lt, &a, payload, len, plain, sizeof(plain));
		if (n < 0 || gmp_decode_next(plain, (size_t)n, &o, &g) != 1)
			return;
		if (g.type == GMP_REHELLO) {
			m->rehellos++;
			m->st = FM_IDLE;
			return;
		}
		if (g.type != GMP_WELCOME || m->st != FM_HELLO ||
		    memcmp(g.welcome.rm, m->sm.rm, GMP_RAND_LEN))
			return;
		gmp_session_derive(&m->sm.s, &m->sm.lt, m->sm.rm, g.welcome.rt,
				   (uint8_t)g.welcome.sid);
		m->welcomes++;
		m->st = FM_UP;
		/* what the town holds; below what it acknowledged before: it lost some */
		m->acked = g.welcome.upto;
		m->next_send = m->acked + 1;
		m->progress_at = now;
		/*
		 * As gmp_client does after a WELCOME: the first frame in the new
		 * session asks for an ack even with nothing to send, so the town
		 * knows the session is live (and may push commands in it).
		 */
		if (m->next_send > made_m(f, m, now)) {
			uint8_t wire[GM_MAX_WIRE];

			conn_send(f, m->conn, wire, simmeter_frame(&m->sm, NULL, 0, GM_FLAG_ACK_REQ,
								   wire, sizeof(wire)));
		}
		return;
	}
	if (m->st != FM_UP)
		return;
	n = gmp_open(&m->sm.s, &a, payload, len, plain, sizeof(plain), NULL);
	if (n < 0)
		return;
	while (gmp_decode_next(plain, (size_t)n, &o, &g) == 1) {
		if (g.type == GMP_ACK && g.ack.upto > m->acked) {
			m->acked = g.ack.upto;
			m->progress_at = now;
		} else if (g.type == GMP_SIGNED) {
			meter_signed(f, m, &g);
		} else if (gmp_cmd_tseq(&g) > 0) {
			if (g.type == GMP_GRANT && g.grant.req_id == 1 &&
			    gmp_cmd_tseq(&g) > m->cmd_floor)
				m->granted_w = g.grant.granted_w;
			meter_command_result(f, m, gmp_cmd_tseq(&g));
		}
	}
}

static void conn_read(struct fleet *f, int ci, int64_t now)
{
	struct fconn *c = &f->c[ci];
	uint8_t buf[16384];
	ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	size_t off = 0;

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(f, ci, now);
		return;
	}
	if (r < 0)
		return;
	c->rx_at = now;
	while (off < (size_t)r && c->fd >= 0) {
		enum gm_rx_status st;

		off += gm_rx_feed(&c->rx, buf + off, (size_t)r - off, &st);
		if (st == GM_RX_FRAME)
			meter_frame(f, ci, &c->rx.hdr, c->rx.payload, c->rx.payload_len, now);
	}
}

/* ---- the run ----------------------------------------------------------------- */

static int64_t acked_total(const struct fleet *f)
{
	int64_t t = 0;

	for (unsigned int i = 0; i < f->count; i++)
		t += f->m[i].acked < nrec(f, &f->m[i]) ? f->m[i].acked : nrec(f, &f->m[i]);
	return t;
}

static int64_t total(const struct fleet *f, int64_t upto_now)
{
	int64_t t = 0;

	for (unsigned int i = 0; i < f->count; i++)
		t += upto_now ? made_m(f, &f->m[i], upto_now) : nrec(f, &f->m[i]);
	return t;
}

static int write_record(const struct fleet *f)
{
	FILE *o = fopen(f->record, "w");
	int rc = 0;

	if (!o) {
		perror(f->record);
		return -1;
	}
	for (unsigned int i = 0; i < f->count; i++) {
		const struct fmeter *m = &f->m[i];

		for (int64_t s = 1; s <= nrec(f, m); s++) {
			struct gmp_msg g;

			fleet_record(f, m, s, f->t0_real, &g);
			if (g.type == GMP_ALLOC_REQ) {
				fprintf(o, "Q %u %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n",
					m->sm.id, s, g.alloc_req.req_id, g.alloc_req.power_w,
					g.alloc_req.duration_s);
				continue;
			}
			fprintf(o, "R %u %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
				" %" PRId64 " %" PRId64 "\n", m->sm.id, s, g.reading.start,
				g.reading.interval_s, g.reading.import_mwh, g.reading.export_mwh,
				g.reading.renew_mwh, g.reading.flags);
		}
		fprintf(o, "A %u %" PRId64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
			" %" PRId64 " %d\n", m->sm.id, m->acked, m->welcomes, m->rehellos,
			m->resends, m->commands, m->granted_w, m->relay_open);
		for (size_t x = 0; x < m->nx && x < FLEET_SIGNED_LOG; x++)
			fprintf(o, "X %u %" PRId64 " %" PRIu64 " %s %" PRId64 "\n", m->sm.id,
				m->x[x].tseq, m->x[x].id, m->x[x].action < 0 ? "-" :
				gmc_action_name(m->x[x].action), m->x[x].status);
	}
	if (fclose(o)) {
		perror(f->record);
		rc = -1;
	}
	return rc;
}

/*
 * With --until-granted BASE, the fleet stays (its sessions up, commands
 * answered) until every meter that asked holds BASE + its request: a town
 * that must borrow for them may take longer than the readings' traffic.
 */
static bool all_granted(const struct fleet *f)
{
	if (f->until_granted < 0)
		return true;
	for (unsigned int i = 0; i < f->count; i++)
		if (f->m[i].alloc_w > 0 && f->m[i].granted_w != f->until_granted + f->m[i].alloc_w)
			return false;
	return true;
}

static void print_done(const struct fleet *f, bool done)
{
	uint64_t w = 0, rh = 0, rs = 0, cm = 0;

	for (unsigned int i = 0; i < f->count; i++) {
		w += f->m[i].welcomes;
		rh += f->m[i].rehellos;
		rs += f->m[i].resends;
		cm += f->m[i].commands;
	}
	printf("D {\"meters\": %u, \"records\": %" PRId64 ", \"acked\": %" PRId64
	       ", \"elapsed_ms\": %" PRId64 ", \"reconnects\": %" PRIu64
	       ", \"welcomes\": %" PRIu64 ", \"rehellos\": %" PRIu64 ", \"resends\": %"
	       PRIu64 ", \"commands\": %" PRIu64 ", \"done\": %s}\n", f->count,
	       total(f, 0), acked_total(f), mono_ms() - f->t0,
	       f->reconnects, w, rh, rs, cm, done ? "true" : "false");
	fflush(stdout);
}

static int run(struct fleet *f)
{
	int64_t next_report = 0, end;
	bool done = false, staying = false;

	f->t0 = mono_ms();
	f->t0_real = real_ms() / 1000;
	end = f->t0 + f->timeout_s * 1000;
	while (!done || staying) {
		int64_t now = mono_ms();
		struct pollfd p[FLEET_CONNS_MAX];
		int up = 0;

		if (now >= end)
			break;
		if (staying && !access(f->stay, F_OK))
			break;
		for (unsigned int ci = 0; ci < f->nconns; ci++) {
			if (f->c[ci].fd < 0 && now >= f->c[ci].retry_at)
				conn_open(f, (int)ci, now);
			if (f->c[ci].fd >= 0 && now - f->c[ci].rx_at > FLEET_DEAD_MS)
				conn_close(f, (int)ci, now);	/* silent too long: start over */
		}
		now = mono_ms();
		for (unsigned int i = 0; i < f->count; i++) {
			struct fmeter *m = &f->m[i];

			if (f->c[m->conn].fd < 0)
				continue;
			if (m->st == FM_IDLE ||
			    (m->st == FM_HELLO && now - m->hello_at > FLEET_HELLO_RETRY_MS))
				meter_hello(f, m, now);
			else if (m->st == FM_UP)
				meter_send(f, m, now);
		}
		for (unsigned int ci = 0; ci < f->nconns; ci++) {
			p[ci] = (struct pollfd){ .fd = f->c[ci].fd, .events = POLLIN };
			up += f->c[ci].fd >= 0;
		}
		if (poll(p, f->nconns, 50) > 0) {
			now = mono_ms();
			for (unsigned int ci = 0; ci < f->nconns; ci++)
				if (f->c[ci].fd >= 0 && p[ci].revents)
					conn_read(f, (int)ci, now);
		}
		now = mono_ms();
		if (!done) {
			done = made(f, now) == f->nhours && acked_total(f) == total(f, 0) &&
			       all_granted(f);
			if (done && f->stay) {
				/* the readings are done: say so, then stay for commands */
				print_done(f, done);
				if (write_record(f))
					return 1;
				staying = true;
			}
		}
		if (now >= next_report || (done && !staying)) {
			printf("P %" PRId64 " %" PRId64 " %" PRId64 " %d %" PRIu64 "\n", now - f->t0,
			       acked_total(f), total(f, now), up, f->reconnects);
			fflush(stdout);
			next_report = now + 500;
		}
	}
	if (!staying)
		print_done(f, done);
	if (write_record(f))
		return 1;
	return done ? 0 : 1;
}

static int parse_hours(struct fleet *f, const char *s)
{
	while (*s) {
		char *end;
		long long h = strtoll(s, &end, 10);

		if (end == s || h <= 0 || h % 3600 || f->nhours == FLEET_HOURS_MAX)
			return -1;
		f->hours[f->nhours++] = h;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return f->nhours ? 0 : -1;
}

static int parse_addr(struct fleet *f, const char *s)
{
	char host[64];
	unsigned int port;
	const char *colon = strrchr(s, ':');

	if (!colon || (size_t)(colon - s) >= sizeof(host) || sscanf(colon + 1, "%u", &port) != 1 ||
	    !port || port > 65535)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	f->town.sin_family = AF_INET;
	f->town.sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &f->town.sin_addr) == 1 ? 0 : -1;
}

/* --alloc ID:W,...: after the meters exist. */
static int parse_alloc(struct fleet *f, const char *s)
{
	while (*s) {
		unsigned int id;
		long long w;
		int n = 0;

		if (sscanf(s, "%u:%lld%n", &id, &w, &n) != 2 || id < f->first ||
		    id >= f->first + f->count || !w)
			return -1;
		f->m[id - f->first].alloc_w = w;
		s += n;
		if (*s == ',')
			s++;
		else if (*s)
			return -1;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: simfleet keys SEED FIRST COUNT\n"
		"       simfleet run --town ADDR:PORT --town-pk HEX --seed SEED --first ID\n"
		"                    --count N --hours H,H,... [--conns K] [--pace-ms MS]\n"
		"                    [--timeout S] [--alloc ID:W,...] [--until-granted BASE_W]\n"
		"                    [--operator-keys FILE --town-id T [--two-above N]]\n"
		"                    [--stay-until FILE] --record FILE\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct fleet *f;
	bool have_town = false, have_pk = false;
	const char *alloc = NULL, *keys = NULL;
	char err[512];
	int rc;

	if (sodium_init() < 0)
		return 1;
	if (argc >= 2 && !strcmp(argv[1], "keys"))
		return cmd_keys(argc, argv) == 2 ? usage() : 0;
	if (argc < 2 || strcmp(argv[1], "run"))
		return usage();
	f = calloc(1, sizeof(*f));
	if (!f)
		return 1;
	f->nconns = 4;
	f->pace_ms = 500;
	f->timeout_s = 120;
	f->until_granted = -1;
	f->pol.two_above = GMC_TWO_ABOVE;
	for (int i = 2; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned long long u;

		if (!v)
			return usage();
		if (!strcmp(k, "--town") && !parse_addr(f, v))
			have_town = true;
		else if (!strcmp(k, "--town-pk") && !gmp_hex_decode(v, f->town_pk, GMP_KEY_LEN))
			have_pk = true;
		else if (!strcmp(k, "--seed") && sscanf(v, "%llu", &u) == 1)
			f->seed = u;
		else if (!strcmp(k, "--first") && sscanf(v, "%u", &f->first) == 1)
			;
		else if (!strcmp(k, "--count") && sscanf(v, "%u", &f->count) == 1)
			;
		else if (!strcmp(k, "--conns") && sscanf(v, "%u", &f->nconns) == 1)
			;
		else if (!strcmp(k, "--hours") && !parse_hours(f, v))
			;
		else if (!strcmp(k, "--pace-ms") && sscanf(v, "%llu", &u) == 1)
			f->pace_ms = (int64_t)u;
		else if (!strcmp(k, "--timeout") && sscanf(v, "%llu", &u) == 1)
			f->timeout_s = (int64_t)u;
		else if (!strcmp(k, "--record"))
			f->record = v;
		else if (!strcmp(k, "--alloc"))
			alloc = v;
		else if (!strcmp(k, "--until-granted") && sscanf(v, "%llu", &u) == 1)
			f->until_granted = (int64_t)u;
		else if (!strcmp(k, "--operator-keys"))
			keys = v;
		else if (!strcmp(k, "--town-id") && sscanf(v, "%u", &f->town_id) == 1 &&
			 f->town_id >= 1 && f->town_id <= 65534)
			;
		else if (!strcmp(k, "--two-above") && sscanf(v, "%llu", &u) == 1 && u >= 1 &&
			 u <= 65535)
			f->pol.two_above = (uint32_t)u;
		else if (!strcmp(k, "--stay-until"))
			f->stay = v;
		else
			return usage();
	}
	if (!have_town || !have_pk || !f->record || !f->nhours || f->first < 1 || !f->count ||
	    f->first + f->count > 65535 || !f->nconns || f->nconns > FLEET_CONNS_MAX ||
	    f->nconns > f->count || (keys && !f->town_id))
		return usage();
	if (keys && gmc_keyset_load(&f->keys, keys, err, sizeof(err))) {
		fprintf(stderr, "simfleet: %s\n", err);
		return 2;
	}
	f->m = calloc(f->count, sizeof(*f->m));
	f->sig = calloc(f->count, sizeof(*f->sig));
	if (!f->m || !f->sig)
		return 1;
	for (unsigned int ci = 0; ci < f->nconns; ci++)
		f->c[ci] = (struct fconn){ .fd = -1 };
	for (unsigned int i = 0; i < f->count; i++) {
		struct gmp_keypair kp;

		if (fleet_key(f->seed, f->first + i, &kp) ||
		    simmeter_init(&f->m[i].sm, (uint16_t)(f->first + i), &kp, f->town_pk)) {
			fprintf(stderr, "simfleet: meter %u: unusable key\n", f->first + i);
			return 1;
		}
		sodium_memzero(&kp, sizeof(kp));
		f->m[i].conn = (int)(i % f->nconns);
		f->sig[i].keys = &f->keys;
		f->sig[i].pol = f->pol;
		f->sig[i].town = (uint16_t)f->town_id;
		f->m[i].sm.sig = &f->sig[i];
	}
	if (alloc && parse_alloc(f, alloc))
		return usage();
	rc = run(f);
	free(f->sig);
	free(f->m);
	free(f);
	return rc;
}
