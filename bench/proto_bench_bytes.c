// SPDX-License-Identifier: GPL-2.0
/*
 * Bytes on the modem link per meter per day (issue 6 target: < 100 KB with
 * acknowledgements), gmproto v2. The meter's real client (lib/proto/outbox.c,
 * lib/proto/gmp_client.c: handshake, ack policy, batching) talks to the real
 * townd core (WELCOME, acknowledgements) on scratch files, with simulated
 * time; every frame is counted as it would cross the meter's uplink tty:
 * delimiters, COBS, header, CRC, envelope, tag, CBOR, padding. The meter is
 * a year into service, so sequence numbers have their long-term sizes. The
 * day includes the handshake at the start and the rekeying after 24 h;
 * the padding and the fixed-width fields (length hiding) are counted apart.
 *
 * The first rows send fixed-interval readings (the protocol's cost per
 * reading); the last rows let meterd's own reporting logic
 * (agent/uplink/town_reports.c) decide what leaves the home on an ordinary
 * day in Europe/London under a time-of-use tariff whose periods change at
 * 07:00 and 22:30: billing data (the default, [uplink] detail = billing)
 * against detail = interval at 900 s and 60 s (the default before issue 12).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "gmp_client.h"
#include "outbox.h"
#include "tariff.h"
#include "town_reports.h"
#include "townd_core.h"

struct link {
	struct townd_core *c;
	struct gmpc *u;
	struct gmp_lt lt_meter, lt_town;	/* to measure padding in handshakes */
	int64_t now;
	uint16_t fseq;
	uint64_t up_frames, up_bytes, down_frames, down_bytes;
	uint64_t hs_frames, hs_bytes;		/* handshake frames (both ways) */
	uint64_t pad_bytes;			/* zero bytes of padding (both ways) */
	uint64_t width_bytes;			/* fixed-width consumption fields, over preferred */
	uint64_t readings, snapshots;		/* records of each kind sent */
	int64_t epoch;				/* UTC s at the start of the day */
	struct gmpc *sink;			/* town_reports rows: where records go */
};

/* Zero bytes after the CBOR sequence of a padded plaintext. */
static size_t padding_of(const uint8_t *plain, size_t n)
{
	struct gmp_msg m;
	size_t off = 0, end = 0;

	while (gmp_decode_next(plain, n, &off, &m) == 1)
		end = off;
	return n - end;
}

/* Padding of an envelope, opened with a copy of the receiving side's keys. */
static size_t envelope_padding(const struct gmp_session *s, const struct gmp_lt *lt,
			       const struct gmp_addr *a, const uint8_t *env, size_t len)
{
	uint8_t plain[GMP_PAYLOAD_MAX];
	struct gmp_session copy;
	int n;

	if (gmp_envelope_kind(env, len, NULL) == GMP_KIND_HANDSHAKE) {
		n = gmp_hs_open(lt, a, env, len, plain, sizeof(plain));
	} else {
		if (!s)
			return 0;
		copy = *s;
		copy.rx_ctr = 0;
		n = gmp_open(&copy, a, env, len, plain, sizeof(plain), NULL);
	}
	return n > 0 ? padding_of(plain, (size_t)n) : 0;
}

static void down(void *ctx, uint64_t conn, const uint8_t *wire, size_t len)
{
	struct link *l = ctx;
	struct gm_rx rx;
	enum gm_rx_status st;

	(void)conn;
	l->down_frames++;
	l->down_bytes += len;
	gm_rx_init(&rx);
	gm_rx_feed(&rx, wire, len, &st);
	if (st != GM_RX_FRAME)
		return;
	{
		struct gmp_addr a = { rx.hdr.type, rx.hdr.flags, rx.hdr.src, rx.hdr.dst };

		if (gmp_envelope_kind(rx.payload, rx.payload_len, NULL) == GMP_KIND_HANDSHAKE) {
			l->hs_frames++;
			l->hs_bytes += len;
		}
		l->pad_bytes += envelope_padding(l->u->state == GMPC_UP ? &l->u->s : NULL,
						 &l->lt_meter, &a, rx.payload, rx.payload_len);
	}
	gmpc_input(l->u, rx.hdr.type, rx.hdr.flags, rx.payload, rx.payload_len, l->now,
		   l->epoch * 1000 + l->now);
}

static int up(void *ctx, unsigned int flags, const uint8_t *payload, size_t len)
{
	struct link *l = ctx;
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, 42, 0, l->fseq++ };
	struct gmp_addr a = { GM_TYPE_DATA, (uint8_t)flags, 42, 0 };
	const struct townd_meter *m = l->c->meters[42];
	const struct gmp_session *s = NULL;
	uint8_t sid = 0;

	l->up_frames++;
	l->up_bytes += gm_frame_wire_len(len);
	if (gmp_envelope_kind(payload, len, &sid) == GMP_KIND_HANDSHAKE) {
		l->hs_frames++;
		l->hs_bytes += gm_frame_wire_len(len);
	}
	for (int i = 0; m && i < TOWND_SESSIONS; i++)
		if (m->ses[i].s.up && m->ses[i].s.sid == sid)
			s = &m->ses[i].s;
	l->pad_bytes += envelope_padding(s, &l->lt_town, &a, payload, len);
	townd_core_frame(l->c, 1, &h, payload, len, l->epoch + l->now / 1000);
	return 0;
}

/* Bytes a value takes with CBOR's preferred encoding. */
static size_t cbor_len(int64_t v)
{
	uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) : (uint64_t)v;

	return u < 24 ? 1 : u <= 0xff ? 2 : u <= 0xffff ? 3 : u <= 0xffffffffu ? 5 : 9;
}

static int64_t bench_ms(void *ctx)
{
	const struct link *l = ctx;

	return l->epoch * 1000 + l->now;
}

/* A household (mWh in the minute from t): 0.3-4 kW import, 1.5 kW export 10:00-16:00. */
static void household(int64_t t, uint64_t e[3])
{
	e[0] = (uint64_t)(60 * (300000 + (t * 7919) % 3700000) / 3600);
	e[1] = (t / 3600 >= 10 && t / 3600 < 16) ? 60 * 1500000 / 3600 : 0;
	e[2] = 0;
}

/* town_reports' sink: into the meter's outbox, counted */
static int report_sink(void *ctx, struct gmp_msg *m)
{
	struct link *l = ctx;
	int r = gmpc_record(l->sink, m);

	if (r < 0)
		return r;
	if (m->type == GMP_READING) {
		l->readings++;
		l->width_bytes += 15 - cbor_len(m->reading.import_mwh) -
				  cbor_len(m->reading.export_mwh) - cbor_len(m->reading.renew_mwh);
	} else if (m->type == GMP_REGISTERS) {
		l->snapshots++;
		l->width_bytes += 27 - cbor_len(m->regs.import_mwh) -
				  cbor_len(m->regs.export_mwh) - cbor_len(m->regs.renew_mwh);
	}
	return r;
}

/*
 * One day. report_s == 0: a reading every interval_s and a snapshot every
 * snap_s, made here; else meterd's town_reports decides (grid report_s,
 * the tariff's periods, a snapshot every snap_s), from registers fed with
 * the household's energy every minute.
 */
static int day(const char *dir, unsigned int interval_s, unsigned int ack_every,
	       unsigned int snap_s, uint32_t report_s, const struct tariff *tariff,
	       int64_t epoch, struct link *l)
{
	const int64_t base = 525600;
	struct gmp_keypair town, meter;
	struct townd_core *c = malloc(sizeof(*c));
	struct gmpc_config cfg;
	struct gmpc_hooks hooks = { .ctx = l, .send = up };
	struct gmpc u;
	struct outbox ob;
	char db[128], obdir[128], err[256], sql[600];

	snprintf(db, sizeof(db), "%s/bytes.db", dir);
	snprintf(obdir, sizeof(obdir), "%s/outbox", dir);
	snprintf(sql, sizeof(sql), "rm -rf '%s' '%s'*", obdir, db);
	if (system(sql))
		return -1;
	gmp_keypair_generate(&town);
	gmp_keypair_generate(&meter);
	memset(l, 0, sizeof(*l));
	l->epoch = epoch;
	if (!c || townd_core_init(c, db, 0, &town, err, sizeof(err)) ||
	    tdb_add_meter(&c->db, 42, meter.pk, NULL, 1, err, sizeof(err)) ||
	    outbox_open(&ob, obdir, 64 << 20, err, sizeof(err)) ||
	    gmp_lt_meter(&l->lt_meter, &meter, town.pk) ||
	    gmp_lt_town(&l->lt_town, &town, meter.pk)) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	c->clock_ms = bench_ms;
	c->clock_ctx = l;
	/* a year of history on both sides */
	if (outbox_ack(&ob, base))
		return -1;
	snprintf(sql, sizeof(sql), "UPDATE meters SET acked_upto = %lld", (long long)base);
	sqlite3_exec(c->db.db, sql, NULL, NULL, NULL);
	gmpc_config_defaults(&cfg);
	cfg.meter_id = 42;
	cfg.key = meter;
	cfg.ack_every = ack_every;
	memcpy(cfg.town_pk, town.pk, GMP_KEY_LEN);
	if (gmpc_init(&u, &cfg, &hooks, &ob, err, sizeof(err)))
		return -1;
	l->c = c;
	l->u = &u;
	l->sink = &u;
	if (report_s) {
		/* 4200 kWh imported, 900 kWh exported so far */
		struct tr_input in = { .now_s = epoch, .tariff = tariff, .trusted = true,
				       .view_known = true, .reg = { 4200000000u, 900000000u, 0 } };
		struct town_reports rep;

		tr_init(&rep, report_s, snap_s, epoch, true, in.reg);
		for (int64_t t = 0; t <= 86400; t += 60) {
			uint64_t e[3];

			l->now = t * 1000;
			in.now_s = epoch + t;
			if (tr_step(&rep, &in, report_sink, l) < 0)
				return -1;
			household(t, e);
			for (int i = 0; i < 3; i++)
				in.reg[i] += e[i];
			gmpc_tick(&u, l->now);
			if (gmpc_pump(&u, l->now, epoch * 1000 + l->now) || townd_core_flush(c, down, l))
				return -1;
		}
	}
	/* a day and one rekeying: the session lifetime is a day */
	for (int64_t t = 0; !report_s && t < 86400; t += interval_s) {
		struct gmp_msg m = { .type = GMP_READING };

		l->now = t * 1000;
		m.reading.start = epoch + t;
		m.reading.interval_s = interval_s;
		/* a household: 0.3-4 kW import, 1.5 kW export 10:00-16:00 */
		m.reading.import_mwh = (int64_t)interval_s * (300000 + (t * 7919) % 3700000) / 3600;
		m.reading.export_mwh = (t / 3600 >= 10 && t / 3600 < 16) ?
			(int64_t)interval_s * 1500000 / 3600 : 0;
		if (gmpc_record(&u, &m) < 0)
			return -1;
		l->readings++;
		l->width_bytes += 15 - cbor_len(m.reading.import_mwh) -
				  cbor_len(m.reading.export_mwh) - cbor_len(0);
		if (snap_s && t % snap_s == 0) {
			struct gmp_msg r = { .type = GMP_REGISTERS };

			r.regs.time = epoch + t;
			r.regs.import_mwh = 4200000000 + t * 400;	/* 4200 kWh so far */
			r.regs.export_mwh = 900000000;
			if (gmpc_record(&u, &r) < 0)
				return -1;
			l->snapshots++;
			l->width_bytes += 27 - cbor_len(r.regs.import_mwh) -
					  cbor_len(r.regs.export_mwh) - cbor_len(0);
		}
		gmpc_tick(&u, l->now);
		if (gmpc_pump(&u, l->now, epoch * 1000 + l->now) ||
		    townd_core_flush(c, down, l))
			return -1;
	}
	l->now = 86400 * 1000;		/* the rekeying at the end of the day */
	gmpc_tick(&u, l->now);
	if (gmpc_pump(&u, l->now, epoch * 1000 + l->now) || townd_core_flush(c, down, l))
		return -1;
	if (gmpc_backlog(&u) > 2 * ack_every + 2) {
		fprintf(stderr, "backlog %llu at the end of the day\n",
			(unsigned long long)gmpc_backlog(&u));
		return -1;
	}
	gmpc_free(&u);
	outbox_close(&ob);
	townd_core_free(c);
	free(c);
	return 0;
}

int main(void)
{
	static const struct {
		const char *what;
		unsigned int interval, ack_every, snap;
		uint32_t report_s;	/* 0: fixed readings; else meterd's town_reports */
		const char *note;
	} runs[] = {
		{ "fixed", 60, 8, 3600, 0, "" }, { "fixed", 60, 1, 3600, 0, "" },
		{ "fixed", 60, 4, 3600, 0, "" }, { "fixed", 60, 8, 0, 0, "" },
		{ "fixed", 15, 8, 3600, 0, "" }, { "fixed", 1, 8, 3600, 0, "" },
		{ "interval", 60, 8, 3600, 60, "  <- detail = interval, 60 s (the default before)" },
		{ "interval", 900, 8, 3600, 900, "  <- detail = interval, 900 s" },
		{ "billing", 3600, 8, 3600, 3600, "  <- detail = billing (the default)" },
	};
	static const char *const tou[] = {
		"type", "tou", "currency", "GBP", "rates", "day:30.5, night:12.25",
		"weekday", "00:00-07:00 night, 07:00-22:30 day, 22:30-24:00 night",
		"weekend", "00:00-07:00 night, 07:00-22:30 day, 22:30-24:00 night", NULL,
	};
	/* bytes are counted, not disk time: the outbox fsyncs go to tmpfs if there is one */
	char shm[] = "/dev/shm/proto-bench-XXXXXX", tmp[] = "/tmp/proto-bench-XXXXXX", cmd[64];
	struct tm midnight = { .tm_year = 2026 - 1900, .tm_mon = 10, .tm_mday = 4, .tm_isdst = -1 };
	struct tariff_spec spec;
	struct tariff tariff;
	const char *bad = NULL;
	char *dir = mkdtemp(shm), err[200];
	int64_t local_day;

	if (!dir)
		dir = mkdtemp(tmp);
	if (sodium_init() < 0 || !dir)
		return 1;
	/* Wednesday 2026-11-04 in London, a tariff with periods changing at 07:00 and 22:30 */
	setenv("TZ", "Europe/London", 1);
	tzset();
	local_day = mktime(&midnight);
	tariff_spec_init(&spec);
	for (const char *const *k = tou; k[0]; k += 2)
		if (tariff_spec_set(&spec, k[0], k[1]))
			return 1;
	if (tariff_compile(&spec, &tariff, &bad, err, sizeof(err))) {
		fprintf(stderr, "tariff %s: %s\n", bad, err);
		return 1;
	}
	printf("bytes on the modem link per meter per day, gmproto v2 (both directions: acks, "
	       "handshakes, padding included)\n");
	printf("%-8s %-8s %-4s %-6s %5s %5s %6s %8s %6s %8s %8s | %5s %8s %7s %6s\n", "records",
	       "interval", "ack/", "snaps", "rdgs", "snaps", "up fr", "up bytes", "dn fr",
	       "dn bytes", "total", "hs fr", "hs bytes", "padding", "widths");
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		struct link l;

		if (day(dir, runs[i].interval, runs[i].ack_every, runs[i].snap, runs[i].report_s,
			&tariff, runs[i].report_s ? local_day : 1790000000, &l))
			return 1;
		printf("%-8s %-8u %-4u %-6s %5llu %5llu %6llu %8llu %6llu %8llu %8llu | %5llu %8llu "
		       "%7llu %6llu%s\n",
		       runs[i].what, runs[i].interval, runs[i].ack_every,
		       runs[i].snap ? "hourly" : "none",
		       (unsigned long long)l.readings, (unsigned long long)l.snapshots,
		       (unsigned long long)l.up_frames, (unsigned long long)l.up_bytes,
		       (unsigned long long)l.down_frames, (unsigned long long)l.down_bytes,
		       (unsigned long long)(l.up_bytes + l.down_bytes),
		       (unsigned long long)l.hs_frames, (unsigned long long)l.hs_bytes,
		       (unsigned long long)l.pad_bytes, (unsigned long long)l.width_bytes,
		       runs[i].note);
	}
	printf("fixed: a reading every interval made by the bench; interval / billing: what "
	       "meterd's town_reports sends on a day in Europe/London, tariff periods changing at "
	       "07:00 and 22:30\n");
	printf("padding: zero bytes to a multiple of 16 of every plaintext; widths: fixed-width "
	       "consumption fields over their preferred CBOR size (uplink records)\n");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) ? 1 : 0;
}
