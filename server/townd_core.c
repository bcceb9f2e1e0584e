// SPDX-License-Identifier: GPL-2.0
/* townd ingest core: handshakes, authenticate, decrypt, store exactly once, acknowledge. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "townd_core.h"
#include "townd_signed.h"

#define UNKNOWN_RECHECK_S	10		/* look an unknown id up again after */
#define CHANGES_CHECK_MS	1000		/* read townctl's changes counter at most this often */
#define SESSION_IDLE_S		(2 * 86400)	/* a session without frames for this long is dropped */
#define SNAP_NEVER		INT64_MAX	/* register view: no reading counts (untrusted snapshot) */

static int64_t real_ms(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int load_next_key(struct townd_core *c, char *err, size_t errlen)
{
	char path[sizeof(c->key_file) + 8];
	struct stat sb;

	sodium_memzero(&c->key_next, sizeof(c->key_next));
	c->have_key_next = false;
	if (!c->key_file[0])
		return 0;
	snprintf(path, sizeof(path), "%s.next", c->key_file);
	if (stat(path, &sb))
		return 0;
	if (townd_key_load(path, &c->key_next, err, errlen))
		return -1;
	c->have_key_next = true;
	return 0;
}

int townd_core_init(struct townd_core *c, const char *db_path, int sync_full,
		    const struct gmp_keypair *key, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->pending = calloc(65536, sizeof(*c->pending));
	if (!c->pending) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (tdb_open(&c->db, db_path, sync_full, err, errlen)) {
		free(c->pending);
		c->pending = NULL;
		return -1;
	}
	if (townd_core_alloc_config(c, NULL, err, errlen)) {
		tdb_close(&c->db);
		free(c->pending);
		c->pending = NULL;
		return -1;
	}
	c->key = *key;
	c->clock_ms = real_ms;
	c->changes = tdb_changes(&c->db);
	c->stats_saved_at = real_ms(NULL) / 1000;
	c->stats_every_s = TOWND_STATS_EVERY_S;
	randombytes_buf(&c->tx_seq, sizeof(c->tx_seq));
	return 0;
}

int townd_core_set_key_file(struct townd_core *c, const char *path, char *err, size_t errlen)
{
	if (strlen(path) >= sizeof(c->key_file)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	strcpy(c->key_file, path);
	return load_next_key(c, err, errlen);
}

static void drop_sessions(struct townd_meter *m)
{
	for (int i = 0; i < TOWND_SESSIONS; i++)
		sodium_memzero(&m->ses[i], sizeof(m->ses[i]));
	m->reply = -1;
	m->welcome_slot = -1;
}

static void free_meter(struct townd_meter *m)
{
	sodium_memzero(m, sizeof(*m));
	free(m);
}

void townd_core_free(struct townd_core *c)
{
	for (size_t i = 0; i < 65536; i++)
		if (c->meters[i])
			free_meter(c->meters[i]);
	tdb_close(&c->db);
	townd_alloc_free(&c->alloc);
	free(c->pending);
	sodium_memzero(&c->key, sizeof(c->key));
	sodium_memzero(&c->key_next, sizeof(c->key_next));
	c->pending = NULL;
}

/* ---- the acknowledgement window ---------------------------------------------------- */

static void win_set(void *ctx, int64_t seq)
{
	struct townd_meter *m = ctx;

	if (seq > m->upto && seq <= m->upto + 64)
		m->win |= 1ull << (seq - m->upto - 1);
}

static void win_advance(struct townd_meter *m)
{
	while (m->win & 1) {
		m->upto++;
		m->win >>= 1;
	}
}

/* Raise upto to at least v (lost records), shifting the window. */
static void win_raise(struct townd_meter *m, int64_t v)
{
	int64_t d;

	if (v <= m->upto)
		return;
	d = v - m->upto;
	m->win = d >= 64 ? 0 : m->win >> d;
	m->upto = v;
	win_advance(m);
}

/* ---- meters -------------------------------------------------------------------------- */

static void take_row(struct townd_meter *m, const struct townd_meter_row *row)
{
	memcpy(m->pk, row->pk, GMP_KEY_LEN);
	m->have_pk_next = row->have_pk_next;
	memcpy(m->pk_next, row->pk_next, GMP_KEY_LEN);
	m->revoked = row->revoked;
	m->cmd_floor = row->cmd_floor;
	m->rv = (struct townd_regview){ row->reg_import, row->reg_export, row->reg_renew,
					row->reg_time, row->reg_snap };
}

static struct townd_meter *lookup(struct townd_core *c, uint16_t id, int64_t now)
{
	struct townd_meter_row row;
	struct townd_meter *m = c->meters[id];
	int rc;

	if (m)
		return m;
	if (c->unknown_checked[id] && now - (int64_t)c->unknown_checked[id] < UNKNOWN_RECHECK_S)
		return NULL;
	c->unknown_checked[id] = (uint32_t)(now > 0 ? now : 1);
	rc = tdb_get_meter(&c->db, id, &row);
	if (rc != 1)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->id = id;
	take_row(m, &row);
	if (gmp_lt_town(&m->lt, &c->key, m->pk)) {
		free_meter(m);
		return NULL;
	}
	m->upto = row.upto;
	m->reply = -1;
	m->welcome_slot = -1;
	m->next_sid = (uint8_t)(1 + randombytes_uniform(255));
	if (tdb_seqs_above(&c->db, id, m->upto, win_set, m)) {
		free_meter(m);
		return NULL;
	}
	win_advance(m);
	c->meters[id] = m;
	c->unknown_checked[id] = 0;
	c->n_meters++;
	return m;
}

static void pend(struct townd_core *c, struct townd_meter *m)
{
	if (!m->pending) {
		m->pending = true;
		c->pending[c->n_pending++] = m->id;
	}
}

void townd_core_kick(struct townd_core *c, uint16_t id)
{
	struct townd_meter *m = c->meters[id];

	if (!m || m->reply < 0 || !m->ses[m->reply].s.up)
		return;
	m->ack_pending = true;
	pend(c, m);
}

/* Authentic work ahead: the batch's transaction. */
static bool begin(struct townd_core *c)
{
	if (tdb_begin(&c->db)) {
		c->db_failed = true;	/* flush fails: nothing is acknowledged */
		return false;
	}
	return true;
}

/* townctl changed something (keys, meters): read what we hold again. */
static void reload(struct townd_core *c)
{
	char err[256];

	if (c->key_file[0]) {
		struct gmp_keypair k;

		if (!townd_key_load(c->key_file, &k, err, sizeof(err))) {
			if (memcmp(k.sk, c->key.sk, GMP_KEY_LEN)) {
				fprintf(stderr, "townd: the town key changed (%s)\n", c->key_file);
				c->key = k;
			}
			sodium_memzero(&k, sizeof(k));
		} else {
			fprintf(stderr, "townd: %s\n", err);
		}
		if (load_next_key(c, err, sizeof(err)))
			fprintf(stderr, "townd: %s\n", err);
	}
	memset(c->unknown_checked, 0, sizeof(c->unknown_checked));
	for (size_t id = 0; id < 65536; id++) {
		struct townd_meter *m = c->meters[id];
		struct townd_meter_row row;
		int rc;

		if (!m)
			continue;
		rc = tdb_get_meter(&c->db, (unsigned int)id, &row);
		if (rc < 0)
			continue;
		if (rc == 0) {
			c->meters[id] = NULL;
			c->n_meters--;
			free_meter(m);
			continue;
		}
		if (memcmp(row.pk, m->pk, GMP_KEY_LEN) || row.revoked) {
			/* replaced or revoked: no session of the old key survives */
			drop_sessions(m);
			m->rv = (struct townd_regview){ row.reg_import, row.reg_export,
							row.reg_renew, row.reg_time, row.reg_snap };
		}
		take_row(m, &row);
		if (gmp_lt_town(&m->lt, &c->key, m->pk))
			m->revoked = true;	/* unusable key: treat as not serving it */
	}
}

/* ---- handshake --------------------------------------------------------------------------- */

/* The long-term keys for meter key mk (0 pk, 1 pk_next) and town key tk. */
static int lt_for(struct townd_core *c, const struct townd_meter *m, int mk, int tk,
		  struct gmp_lt *out)
{
	if ((mk && !m->have_pk_next) || (tk && !c->have_key_next))
		return -1;
	if (!mk && !tk) {
		*out = m->lt;
		return 0;
	}
	return gmp_lt_town(out, tk ? &c->key_next : &c->key, mk ? m->pk_next : m->pk);
}

static int pick_slot(struct townd_meter *m, int64_t now)
{
	int best = -1;

	for (int i = 0; i < TOWND_SESSIONS; i++) {
		const struct townd_session *s = &m->ses[i];
		int64_t seen = s->last_rx > s->created ? s->last_rx : s->created;

		if (!s->s.up || seen < now - SESSION_IDLE_S)
			return i;
	}
	/* a session nobody used (a replayed HELLO, a lost WELCOME) goes first */
	for (int i = 0; i < TOWND_SESSIONS; i++)
		if (!m->ses[i].last_rx && (best < 0 || m->ses[i].created < m->ses[best].created))
			best = i;
	if (best >= 0)
		return best;
	for (int i = 0; i < TOWND_SESSIONS; i++)
		if (best < 0 || m->ses[i].last_rx < m->ses[best].last_rx)
			best = i;
	return best;
}

static uint8_t pick_sid(struct townd_meter *m, int slot)
{
	for (;;) {
		uint8_t sid = m->next_sid++;
		bool used = false;

		if (!sid)
			continue;
		for (int i = 0; i < TOWND_SESSIONS; i++)
			used |= i != slot && m->ses[i].s.up && m->ses[i].s.sid == sid;
		if (!used)
			return sid;
	}
}

static void hello_journal(struct townd_core *c, struct townd_meter *m,
			  const struct townd_session *s, int64_t now)
{
	char what[240];

	if (s->hs_next_seq <= m->upto)
		c->st.rebased++;
	if (!(s->hs_flags & (GMP_HELLO_OUTBOX_NEW | GMP_HELLO_STORE_NEW | GMP_HELLO_UNCLEAN)) &&
	    s->hs_next_seq > m->upto)
		return;
	snprintf(what, sizeof(what), "handshake:%s%s%s next record %lld (stored up to %lld%s), "
		 "command floor %lld, clock %s",
		 s->hs_flags & GMP_HELLO_OUTBOX_NEW ? " new outbox;" : "",
		 s->hs_flags & GMP_HELLO_STORE_NEW ? " registers not recovered;" : "",
		 s->hs_flags & GMP_HELLO_UNCLEAN ? " last stop not clean;" : "",
		 (long long)s->hs_next_seq, (long long)m->upto,
		 s->hs_next_seq <= m->upto ? ": the meter renumbers" : "",
		 (long long)s->hs_cmd_floor, s->hs_clock_trusted ? "trusted" : "untrusted");
	if (tdb_journal(&c->db, m->id, now, what))
		c->db_failed = true;
}

/*
 * The meter's first frame in session @s: its HELLO was fresh (the session
 * keys derive from the town's random of this WELCOME), so what the HELLO
 * reported is acted on now.
 */
static void confirm(struct townd_core *c, struct townd_meter *m, struct townd_session *s,
		    int64_t now)
{
	if (!begin(c))
		return;		/* the next frame tries again */
	if (tdb_reconcile(&c->db, m->id, s->hs_cmd_floor, now))
		c->db_failed = true;
	m->cmd_floor = s->hs_cmd_floor;
	hello_journal(c, m, s, now);
	s->confirmed = true;
	c->st.confirmed++;
}

static int handle_hello(struct townd_core *c, struct townd_meter *m, uint64_t conn,
			const struct gmp_addr *a, const uint8_t *payload, size_t len, int64_t now)
{
	uint8_t plain[GMP_PAYLOAD_MAX];
	struct gmp_lt lt;
	struct gmp_msg h, x;
	struct townd_session *s;
	int mk = -1, tk = -1, n = -1, slot, rc;
	int64_t cmd_next = 1;
	size_t off = 0;

	for (int i = 0; i < 4 && n < 0; i++) {
		if (lt_for(c, m, i / 2, i % 2, &lt))
			continue;
		n = gmp_hs_open(&lt, a, payload, len, plain, sizeof(plain));
		mk = i / 2;
		tk = i % 2;
	}
	if (n < 0) {
		c->st.auth_failed++;
		m->rejected++;
		townd_sec_count(&c->sec, m->id, c->frame_addr, GMP_SEC_AUTH_FAIL, now);
		gmp_lt_wipe(&lt);
		return TOWND_REJECTED;
	}
	if (gmp_decode_next(plain, (size_t)n, &off, &h) != 1 || h.type != GMP_HELLO ||
	    gmp_decode_next(plain, (size_t)n, &off, &x) != 0) {
		c->st.malformed++;
		m->rejected++;
		gmp_lt_wipe(&lt);
		return TOWND_AUTHENTIC;	/* the meter's key made it, nothing usable in it */
	}
	sodium_memzero(plain, sizeof(plain));
	/* the same HELLO through two routes: the same WELCOME again */
	for (int i = 0; i < TOWND_SESSIONS; i++) {
		if (m->ses[i].s.up && !sodium_memcmp(m->ses[i].rm, h.hello.rm, GMP_RAND_LEN)) {
			c->st.hello_dups++;
			m->welcome_slot = i;
			m->hs_conn = conn;
			pend(c, m);
			gmp_lt_wipe(&lt);
			return TOWND_DUPLICATE;	/* may be a replay: keeps no slot */
		}
	}
	rc = tdb_hello_seen(&c->db, m->id, h.hello.rm);
	if (rc) {
		if (rc < 0)
			c->db_failed = true;
		c->st.replayed++;
		m->rejected++;
		townd_sec_count(&c->sec, m->id, c->frame_addr, GMP_SEC_REPLAY, now);
		gmp_lt_wipe(&lt);
		return TOWND_REJECTED;
	}
	if (!begin(c)) {
		gmp_lt_wipe(&lt);
		return TOWND_AUTHENTIC;
	}
	if (tdb_hello_add(&c->db, m->id, h.hello.rm))
		c->db_failed = true;
	if (mk == 1) {
		/* the meter switched to its next key: it is its key from now on */
		if (tdb_promote_pk(&c->db, m->id, now))
			c->db_failed = true;
		memcpy(m->pk, m->pk_next, GMP_KEY_LEN);
		m->have_pk_next = false;
		if (gmp_lt_town(&m->lt, &c->key, m->pk))
			c->db_failed = true;
		for (int i = 0; i < TOWND_SESSIONS; i++)
			if (m->ses[i].mk == 1)
				m->ses[i].mk = 0;
		mk = 0;
	}
	/* reconciled when the session is confirmed; the WELCOME says what will follow */
	if (tdb_cmd_next(&c->db, m->id, h.hello.cmd_floor, &cmd_next))
		c->db_failed = true;
	slot = pick_slot(m, now);
	s = &m->ses[slot];
	s->confirmed = false;
	s->hs_clock_trusted = h.hello.clock_trusted;
	s->hs_cmd_floor = h.hello.cmd_floor;
	s->hs_next_seq = h.hello.next_seq;
	s->hs_flags = h.hello.flags;
	memcpy(s->rm, h.hello.rm, GMP_RAND_LEN);
	randombytes_buf(s->rt, GMP_RAND_LEN);
	gmp_session_derive(&s->s, &lt, s->rm, s->rt, pick_sid(m, slot));
	gmp_lt_wipe(&lt);
	s->mk = (uint8_t)mk;
	s->tk = (uint8_t)tk;
	s->created = now;
	s->last_rx = 0;
	if (m->reply == slot)
		m->reply = -1;
	m->welcome_slot = slot;
	m->welcome_cmd_next = cmd_next;
	m->hs_conn = conn;
	m->changed = true;
	c->st.hellos++;
	pend(c, m);
	return TOWND_AUTHENTIC;
}

/* ---- session frames -------------------------------------------------------------------- */

static void regview_add(struct townd_meter *m, const struct gmp_msg *g)
{
	if (g->type == GMP_REGISTERS) {
		m->rv = (struct townd_regview){ g->regs.import_mwh, g->regs.export_mwh,
			g->regs.renew_mwh, g->regs.time,
			g->regs.flags & GMP_RF_TIME_UNTRUSTED ? SNAP_NEVER : g->regs.time };
	} else if (g->type == GMP_READING && !(g->reading.flags & GMP_RF_TIME_UNTRUSTED) &&
		   g->reading.start >= m->rv.snap) {
		/* energy after the snapshot: the view stays a lower bound of the registers */
		m->rv.import_mwh += g->reading.import_mwh;
		m->rv.export_mwh += g->reading.export_mwh;
		m->rv.renew_mwh += g->reading.renew_mwh;
		if (g->reading.start + g->reading.interval_s > m->rv.time)
			m->rv.time = g->reading.start + g->reading.interval_s;
	}
}

static void take_record(struct townd_core *c, struct townd_meter *m, const struct gmp_msg *g,
			int64_t now)
{
	int64_t seq = gmp_msg_seq(g);
	int rc;

	if (seq <= m->upto || (seq <= m->upto + 64 && (m->win >> (seq - m->upto - 1) & 1))) {
		c->st.duplicates++;
		return;
	}
	if (seq != m->upto + 1) {
		/*
		 * A record before it is missing (lost on the way, or still
		 * coming by a slower route): not stored, so that a meter's
		 * records are stored in order. The meter's go-back-N resends
		 * it after the missing one.
		 */
		c->st.ahead++;
		return;
	}
	if (!begin(c))
		return;
	rc = tdb_store(&c->db, m->id, g, now);
	if (rc < 0) {
		c->db_failed = true;	/* flush fails: nothing is acknowledged */
		return;
	}
	if (rc == 1) {
		c->st.stored++;
		regview_add(m, g);
		if (g->type == GMP_ALLOC_REQ || g->type == GMP_ALLOC_REL)
			townd_core_alloc_record(c, m->id, g, now);	/* decided in flush */
		if (g->type == GMP_ALARM && trep_alarm(&c->db, m->id, g))
			c->db_failed = true;	/* to the main server, with the alarm */
		if (g->type == GMP_KEY_ROTATE) {
			/* the meter's next key: a HELLO under it promotes it */
			if (tdb_set_pk_next(&c->db, m->id, g->key_rotate.pk) ||
			    tdb_journal(&c->db, m->id, now, "the meter announced its next key"))
				c->db_failed = true;
			memcpy(m->pk_next, g->key_rotate.pk, GMP_KEY_LEN);
			m->have_pk_next = true;
		}
	} else {
		c->st.duplicates++;
	}
	win_set(m, seq);
	win_advance(m);
}

static void take_lost(struct townd_core *c, struct townd_meter *m, const struct gmp_msg *g,
		      int64_t now)
{
	int64_t a = g->lost.first, b = g->lost.last;

	if (b <= m->upto) {
		c->st.duplicates++;
		return;
	}
	if (a > m->upto + 1) {
		c->st.ahead++;	/* records before it are missing: it comes again after them */
		return;
	}
	if (!begin(c))
		return;
	if (tdb_store_lost(&c->db, m->id, m->upto + 1, b, now) < 0)
		c->db_failed = true;
	c->st.lost++;
	win_raise(m, b);
}

static int handle_session(struct townd_core *c, struct townd_meter *m, uint64_t conn,
			  const struct gmp_addr *a, uint8_t sid, const uint8_t *payload,
			  size_t len, int64_t now)
{
	struct gmp_msg *msgs = c->msgs;
	uint8_t plain[GMP_PAYLOAD_MAX];
	struct townd_session *s = NULL;
	size_t off = 0, n = 0;
	bool urgent = false;
	int slot = -1, rc;

	for (int i = 0; i < TOWND_SESSIONS && slot < 0; i++)
		if (m->ses[i].s.up && m->ses[i].s.sid == sid)
			slot = i;
	if (slot < 0) {
		/* not a session of ours (townd restarted, or a stale frame): REHELLO */
		c->st.no_session++;
		m->rejected++;
		if (now - m->rehello_at >= TOWND_REHELLO_EVERY_S) {
			m->rehello_at = now;
			m->rehello_pending = true;
			m->rehello_conn = conn;
			pend(c, m);
		}
		return TOWND_REJECTED;
	}
	s = &m->ses[slot];
	rc = gmp_open(&s->s, a, payload, len, plain, sizeof(plain), NULL);
	if (rc < 0) {
		if (rc == -GMP_E_REPLAY)
			c->st.replayed++;
		else if (rc == -GMP_E_AUTH)
			c->st.auth_failed++;
		else
			c->st.truncated++;
		townd_sec_count(&c->sec, m->id, c->frame_addr, rc == -GMP_E_REPLAY ?
				GMP_SEC_REPLAY : GMP_SEC_AUTH_FAIL, now);
		m->rejected++;
		return TOWND_REJECTED;
	}
	if (!s->confirmed)
		confirm(c, m, s, now);
	s->last_rx = now;
	m->reply = slot;
	m->last_seen = now;
	m->changed = true;
	pend(c, m);
	for (;;) {
		int r = gmp_decode_next(plain, (size_t)rc, &off, &msgs[n]);

		if (r == 0)
			break;
		if (r < 0 || gmp_type_class(msgs[n].type) != GMP_CLASS_UP ||
		    n + 1 == TOWND_MSGS_PER_FRAME) {
			c->st.malformed++;
			m->rejected++;
			return TOWND_AUTHENTIC;	/* refused whole */
		}
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		const struct gmp_msg *g = &msgs[i];

		switch (g->type) {
		case GMP_ALARM:
		case GMP_ALLOC_REQ:
		case GMP_ALLOC_REL:
		case GMP_KEY_ROTATE:
			urgent = true;
			take_record(c, m, g, now);
			break;
		case GMP_LOST:
			urgent = true;
			take_lost(c, m, g, now);
			break;
		case GMP_CMD_RESULT:
			if (!begin(c))
				break;
			rc = tdb_cmd_result(&c->db, m->id, g->cmd_result.tseq, g->cmd_result.status,
					    now);
			if (rc < 0)
				c->db_failed = true;
			/* a signed command's outcome goes up; a refusal is counted */
			if (rc == 1) {
				rc = townd_signed_result(&c->db, m->id, g->cmd_result.tseq,
							 g->cmd_result.status, now);
				if (rc < 0)
					c->db_failed = true;
				else if (rc == 2)
					townd_sec_count(&c->sec, m->id, c->frame_addr,
							GMP_SEC_CMD_REFUSED, now);
			}
			c->st.cmd_results++;
			if (g->cmd_result.status != GMP_CMD_STORAGE &&
			    g->cmd_result.tseq > m->cmd_floor)
				m->cmd_floor = g->cmd_result.tseq;
			break;
		default:
			take_record(c, m, g, now);
			break;
		}
	}
	if ((a->flags & GM_FLAG_ACK_REQ) || urgent) {
		m->ack_pending = true;
		m->ack_conn = conn;
	}
	return TOWND_AUTHENTIC;
}

int townd_core_frame(struct townd_core *c, uint64_t conn, const struct gm_hdr *h,
		     const uint8_t *payload, size_t len, int64_t now)
{
	struct gmp_addr a = { .type = h->type, .flags = h->flags, .src = h->src, .dst = h->dst };
	struct townd_meter *m;
	uint8_t sid = 0;
	int kind;

	c->st.frames++;
	if (h->dst != GM_ID_SERVER || (h->type != GM_TYPE_DATA && h->type != GM_TYPE_ACK)) {
		c->st.not_for_us++;
		return TOWND_REJECTED;
	}
	kind = gmp_envelope_kind(payload, len, &sid);
	if (kind < 0) {
		if (kind == -GMP_E_VERSION)
			c->st.bad_version++;
		else
			c->st.truncated++;
		return TOWND_REJECTED;
	}
	m = lookup(c, h->src, now);
	if (!m) {
		c->st.unknown_meter++;
		townd_sec_count(&c->sec, h->src, c->frame_addr, GMP_SEC_UNKNOWN, now);
		return TOWND_REJECTED;
	}
	if (m->revoked) {
		c->st.revoked++;
		townd_sec_count(&c->sec, h->src, c->frame_addr, GMP_SEC_UNKNOWN, now);
		return TOWND_REJECTED;
	}
	if (kind == GMP_KIND_HANDSHAKE)
		return handle_hello(c, m, conn, &a, payload, len, now);
	return handle_session(c, m, conn, &a, sid, payload, len, now);
}

/* ---- flush ------------------------------------------------------------------------------- */

struct plain_buf {
	uint8_t *buf;
	size_t len, size;
	int64_t tseq[8];
	int n;
};

static int add_pending(void *ctx, int64_t tseq, const uint8_t *msg, size_t len)
{
	struct plain_buf *p = ctx;

	if (p->len + len > p->size || p->n == 8)
		return 1;	/* the rest goes with the next ack */
	memcpy(p->buf + p->len, msg, len);
	p->len += len;
	p->tseq[p->n++] = tseq;
	return 0;
}

enum out_kind { OUT_ACK, OUT_WELCOME, OUT_REHELLO };

struct out_frame {
	enum out_kind kind;
	uint16_t meter;
	uint64_t conn;
	size_t len;
	uint8_t plain[GMP_PLAIN_MAX];
};

/* The plaintext of an ack: upto, then the unsettled commands (read in the transaction). */
static int prepare_ack(struct townd_core *c, struct townd_meter *m, int64_t now,
		       struct out_frame *o)
{
	struct gmp_msg ack = { .type = GMP_ACK, .ack = { .upto = m->upto } };
	struct plain_buf pb = { o->plain, 0, sizeof(o->plain), { 0 }, 0 };

	o->kind = OUT_ACK;
	o->meter = m->id;
	o->conn = m->ack_conn;
	if (gmp_encode(&ack, o->plain, sizeof(o->plain), &pb.len))
		return -1;
	if (tdb_pending(&c->db, m->id, add_pending, &pb))
		return -1;
	for (int i = 0; i < pb.n; i++)
		if (tdb_mark_sent(&c->db, m->id, pb.tseq[i], now))
			return -1;
	o->len = pb.len;
	return 0;
}

static int frame_out(struct townd_core *c, uint16_t dst, const uint8_t *env, int n,
		     uint64_t conn, townd_send_fn send, void *ctx)
{
	struct gm_hdr h = { .version = GM_VERSION, .type = GM_TYPE_ACK, .flags = 0,
			    .hop_limit = GM_HOP_DEFAULT, .src = GM_ID_SERVER, .dst = dst };
	uint8_t wire[GM_MAX_WIRE];
	int w;

	if (n < 0)
		return -1;
	h.seq = c->tx_seq++;
	w = gm_frame_encode(&h, env, (size_t)n, wire, sizeof(wire));
	if (w < 0)
		return -1;
	send(ctx, conn, wire, (size_t)w);
	return 0;
}

/* Seal and send one prepared frame (after the commit). */
static void seal_out(struct townd_core *c, struct out_frame *o, int64_t now_ms,
		     townd_send_fn send, void *ctx)
{
	struct townd_meter *m = c->meters[o->meter];
	struct gmp_addr a = { .type = GM_TYPE_ACK, .flags = 0, .src = GM_ID_SERVER,
			      .dst = o->meter };
	uint8_t env[GMP_PAYLOAD_MAX];
	struct gmp_lt lt;
	int n;

	if (!m)
		return;
	if (o->kind == OUT_ACK) {
		if (m->reply < 0 || !m->ses[m->reply].s.up)
			return;
		n = gmp_seal(&m->ses[m->reply].s, &a, o->plain, o->len, env, sizeof(env));
		if (!frame_out(c, o->meter, env, n, o->conn, send, ctx))
			c->st.acks++;
		return;
	}
	if (o->kind == OUT_WELCOME) {
		struct townd_session *s = &m->ses[m->welcome_slot];
		struct gmp_msg w = { .type = GMP_WELCOME };

		memcpy(w.welcome.rm, s->rm, GMP_RAND_LEN);
		memcpy(w.welcome.rt, s->rt, GMP_RAND_LEN);
		w.welcome.sid = s->s.sid;
		w.welcome.now_ms = now_ms;
		w.welcome.upto = m->upto;
		w.welcome.cmd_next = m->welcome_cmd_next > 0 ? m->welcome_cmd_next : 1;
		w.welcome.reg_import_mwh = m->rv.import_mwh;
		w.welcome.reg_export_mwh = m->rv.export_mwh;
		w.welcome.reg_renew_mwh = m->rv.renew_mwh;
		w.welcome.reg_time = m->rv.time;
		o->len = 0;
		if (gmp_encode(&w, o->plain, sizeof(o->plain), &o->len) ||
		    lt_for(c, m, s->mk, s->tk, &lt))
			return;
		sodium_memzero(&w, sizeof(w));
		n = gmp_hs_seal(&lt, &a, o->plain, o->len, env, sizeof(env));
		if (!frame_out(c, o->meter, env, n, o->conn, send, ctx))
			c->st.welcomes++;
	} else {
		struct gmp_msg r = { .type = GMP_REHELLO,
				     .rehello = { .reason = GMP_REHELLO_NO_SESSION } };

		o->len = 0;
		if (gmp_encode(&r, o->plain, sizeof(o->plain), &o->len))
			return;
		n = gmp_hs_seal(&m->lt, &a, o->plain, o->len, env, sizeof(env));
		if (!frame_out(c, o->meter, env, n, o->conn, send, ctx))
			c->st.rehellos++;
		return;
	}
	gmp_lt_wipe(&lt);
}

static int save_stats(struct townd_core *c, int64_t now)
{
	static const struct { const char *name; size_t off; } f[] = {
#define S(x) { #x, offsetof(struct townd_stats, x) }
		S(crc_errors), S(framing_errors), S(frames), S(not_for_us), S(unknown_meter),
		S(auth_failed), S(replayed), S(truncated), S(malformed), S(stored),
		S(duplicates), S(ahead), S(acks), S(bad_version), S(revoked), S(hellos),
		S(welcomes), S(hello_dups), S(confirmed), S(no_session), S(rehellos), S(lost),
		S(cmd_results), S(rebased), S(conn_refused), S(addr_refused), S(accept_errors),
		S(first_frame_timeouts), S(idle_timeouts),
#undef S
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		uint64_t cur = *(uint64_t *)((char *)&c->st + f[i].off);
		uint64_t *was = (uint64_t *)((char *)&c->st_saved + f[i].off);

		if (cur != *was && tdb_add_stat(&c->db, f[i].name, cur - *was))
			return -1;
	}
	/* rejected frames of meters that sent nothing authentic meanwhile */
	for (size_t id = 0; id < 65536; id++) {
		struct townd_meter *m = c->meters[id];

		if (!m || !m->rejected || m->changed)
			continue;
		if (tdb_update_meter(&c->db, m->id, m->upto, 0, m->rejected, m->cmd_floor, &m->rv))
			return -1;
		m->rejected = 0;
	}
	c->st_saved = c->st;
	c->stats_saved_at = now;
	return 0;
}

int townd_core_flush(struct townd_core *c, townd_send_fn send, void *ctx)
{
	struct out_frame *out = NULL;
	size_t n_out = 0;
	int64_t now_ms = c->clock_ms(c->clock_ctx), now = now_ms / 1000;
	bool stats_due, sec_due;
	int rc = 0;

	if (c->db_failed) {
		tdb_rollback(&c->db);
		return -1;
	}
	if (now_ms - c->changes_checked >= CHANGES_CHECK_MS) {
		int64_t ch = tdb_changes(&c->db);

		c->changes_checked = now_ms;
		if (ch != c->changes) {
			c->changes = ch;
			reload(c);
		}
	}
	stats_due = memcmp(&c->st, &c->st_saved, sizeof(c->st)) &&
		    (c->db.in_tx || now - c->stats_saved_at >= c->stats_every_s);
	sec_due = townd_sec_due(&c->sec, now, false);
	if (!c->n_pending && !c->db.in_tx && !stats_due && !sec_due)
		return 0;
	if (sec_due && (!begin(c) || townd_sec_write(&c->sec, &c->db, now)))
		rc = -1;	/* the minute's counts as GMP_SECURITY reports, in this batch */
	/* authentic work (or counters due): one transaction for all of it */
	for (size_t i = 0; i < c->n_pending && !c->db.in_tx; i++) {
		struct townd_meter *m = c->meters[c->pending[i]];

		if (m && (m->changed || m->ack_pending))
			stats_due = true;
	}
	if ((c->db.in_tx || stats_due) && !begin(c))
		rc = -1;
	/*
	 * allocation first: a requesting meter's grant goes with the ack of
	 * its request, and the other meters whose grants it changed get an
	 * ack of their own (townd_core_kick(): they join the pending list)
	 */
	if (!rc && c->db.in_tx && townd_core_alloc_decide(c, now))
		rc = -1;
	if (c->n_pending) {
		size_t n = 0;

		for (size_t i = 0; i < c->n_pending; i++) {
			const struct townd_meter *m = c->meters[c->pending[i]];

			if (m)
				n += m->ack_pending + (m->welcome_slot >= 0) + m->rehello_pending;
		}
		out = malloc((n ? n : 1) * sizeof(*out));
		if (!out) {
			if (c->db.in_tx)
				tdb_rollback(&c->db);
			return -1;
		}
	}
	for (size_t i = 0; i < c->n_pending; i++) {
		struct townd_meter *m = c->meters[c->pending[i]];

		if (!m)
			continue;
		if (!rc && m->ack_pending) {
			if (prepare_ack(c, m, now, &out[n_out]))
				rc = -1;
			else
				n_out++;
		}
		if (!rc && m->changed) {
			if (tdb_update_meter(&c->db, m->id, m->upto, m->last_seen, m->rejected,
					     m->cmd_floor, &m->rv))
				rc = -1;
			m->rejected = 0;
		}
		if (m->welcome_slot >= 0) {
			out[n_out].kind = OUT_WELCOME;
			out[n_out].meter = m->id;
			out[n_out++].conn = m->hs_conn;
		}
		if (m->rehello_pending) {
			out[n_out].kind = OUT_REHELLO;
			out[n_out].meter = m->id;
			out[n_out++].conn = m->rehello_conn;
		}
	}
	if (!rc && c->db.in_tx)
		rc = save_stats(c, now);
	if (!rc)
		rc = tdb_commit(&c->db);
	if (!rc) {
		/* acks first: a WELCOME makes the meter drop the session they are sealed in */
		for (int pass = 0; pass < 2; pass++)
			for (size_t i = 0; i < n_out; i++)
				if ((out[i].kind == OUT_ACK) == (pass == 0))
					seal_out(c, &out[i], c->clock_ms(c->clock_ctx), send, ctx);
	} else {
		tdb_rollback(&c->db);
	}
	for (size_t i = 0; i < c->n_pending; i++) {
		struct townd_meter *m = c->meters[c->pending[i]];

		if (!m)
			continue;
		m->pending = m->changed = m->ack_pending = m->rehello_pending = false;
		m->welcome_slot = -1;
	}
	c->n_pending = 0;
	if (out)
		sodium_memzero(out, n_out * sizeof(*out));
	free(out);
	return rc;
}

int townd_core_save(struct townd_core *c)
{
	int64_t now = c->clock_ms(c->clock_ctx) / 1000;
	/* counts of the minute so far too (interval_s says how long they cover) */
	bool sec = townd_sec_due(&c->sec, now, true);

	if (c->db_failed)
		return -1;
	if (!memcmp(&c->st, &c->st_saved, sizeof(c->st)) && !c->db.in_tx && !sec)
		return 0;
	if (!begin(c) || (sec && townd_sec_write(&c->sec, &c->db, now)) || save_stats(c, now) ||
	    tdb_commit(&c->db)) {
		tdb_rollback(&c->db);
		return -1;
	}
	return 0;
}

/* ---- key files ---------------------------------------------------------------------------- */

int townd_key_load(const char *path, struct gmp_keypair *kp, char *err, size_t errlen)
{
	char buf[2 * GMP_KEY_LEN + 3];
	struct stat sb;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) || (sb.st_mode & 077)) {
		close(fd);
		snprintf(err, errlen, "%s: must not be accessible by group or others (mode %o)",
			 path, (unsigned int)(sb.st_mode & 0777));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (gmp_hex_decode(buf, kp->sk, GMP_KEY_LEN)) {
		sodium_memzero(buf, sizeof(buf));
		snprintf(err, errlen, "%s: expected one line of %d hex digits (a secret key)",
			 path, 2 * GMP_KEY_LEN);
		return -1;
	}
	sodium_memzero(buf, sizeof(buf));
	crypto_scalarmult_base(kp->pk, kp->sk);
	return 0;
}

int townd_key_write(const char *path, const struct gmp_keypair *kp, char *err, size_t errlen)
{
	char hex[2 * GMP_KEY_LEN + 2];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ssize_t w;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	gmp_hex_encode(kp->sk, GMP_KEY_LEN, hex);
	strcat(hex, "\n");
	w = write(fd, hex, strlen(hex));
	sodium_memzero(hex, sizeof(hex));
	if (w != 2 * GMP_KEY_LEN + 1 || fsync(fd) || close(fd)) {
		snprintf(err, errlen, "%s: write failed", path);
		return -1;
	}
	return 0;
}
