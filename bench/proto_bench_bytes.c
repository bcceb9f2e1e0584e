// SPDX-License-Identifier: GPL-2.0
/*
 * Bytes on the modem link per meter per day (issue 6 target: < 100 KB with
 * acknowledgements). The meter's real uplink logic (lib/proto/outbox.c,
 * lib/proto/gmp_client.c: ack policy, batching) talks to the real townd core
 * (acknowledgements) on scratch files, with simulated time; every frame is
 * counted as it would cross the meter's uplink tty: delimiters, COBS,
 * header, CRC, envelope, tag, CBOR. The meter is a year into service, so
 * sequence numbers and counters have their long-term sizes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "gmp_client.h"
#include "outbox.h"
#include "townd_core.h"

struct link {
	struct townd_core *c;
	struct modem_uplink *u;
	int64_t now;
	uint16_t fseq;
	uint64_t up_frames, up_bytes, down_frames, down_bytes;
};

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
	if (st == GM_RX_FRAME)
		mu_input(l->u, rx.hdr.type, rx.hdr.flags, rx.payload, rx.payload_len, l->now,
			 NULL, NULL);
}

static int up(void *ctx, unsigned int flags, const uint8_t *payload, size_t len)
{
	struct link *l = ctx;
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, 42, 0, l->fseq++ };

	l->up_frames++;
	l->up_bytes += gm_frame_wire_len(len);
	townd_core_frame(l->c, 1, &h, payload, len, 1790000000 + l->now / 1000);
	return 0;
}

static int day(const char *dir, unsigned int interval_s, unsigned int ack_every,
	       unsigned int snap_s, struct link *l)
{
	const int64_t base = 525600;
	struct gmp_keypair town, meter;
	struct townd_core *c = malloc(sizeof(*c));
	struct mu_config cfg;
	struct modem_uplink u;
	struct outbox ob;
	char db[128], obdir[128], err[256], sql[600];

	snprintf(db, sizeof(db), "%s/bytes.db", dir);
	snprintf(obdir, sizeof(obdir), "%s/outbox", dir);
	snprintf(sql, sizeof(sql), "rm -rf '%s' '%s'*", obdir, db);
	if (system(sql))
		return -1;
	gmp_keypair_generate(&town);
	gmp_keypair_generate(&meter);
	if (!c || townd_core_init(c, db, 0, &town, err, sizeof(err)) ||
	    tdb_add_meter(&c->db, 42, meter.pk, NULL, 1, err, sizeof(err)) ||
	    outbox_open(&ob, obdir, 64 << 20, err, sizeof(err))) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	/* a year of history on both sides */
	if (outbox_ack(&ob, base) || outbox_reserve_ctr(&ob, base))
		return -1;
	snprintf(sql, sizeof(sql), "UPDATE meters SET rx_ctr = %lld, acked_upto = %lld",
		 (long long)base, (long long)base);
	sqlite3_exec(c->db.db, sql, NULL, NULL, NULL);
	mu_config_defaults(&cfg);
	cfg.meter_id = 42;
	cfg.key = meter;
	cfg.ack_every = ack_every;
	memcpy(cfg.town_pk, town.pk, GMP_KEY_LEN);
	if (mu_init(&u, &cfg, &ob, err, sizeof(err)))
		return -1;
	memset(l, 0, sizeof(*l));
	l->c = c;
	l->u = &u;
	for (int64_t t = 0; t < 86400; t += interval_s) {
		struct gmp_msg m = { .type = GMP_READING };

		l->now = t * 1000;
		m.reading.start = 1790000000 + t;
		m.reading.interval_s = interval_s;
		/* a household: 0.3-4 kW import, 1.5 kW export 10:00-16:00 */
		m.reading.import_mwh = (int64_t)interval_s * (300000 + (t * 7919) % 3700000) / 3600;
		m.reading.export_mwh = (t / 3600 >= 10 && t / 3600 < 16) ?
			(int64_t)interval_s * 1500000 / 3600 : 0;
		if (mu_record(&u, &m))
			return -1;
		if (snap_s && t % snap_s == 0) {
			struct gmp_msg r = { .type = GMP_REGISTERS };

			r.regs.time = 1790000000 + t;
			r.regs.import_mwh = 4200000000 + t * 400;	/* 4200 kWh so far */
			r.regs.export_mwh = 900000000;
			if (mu_record(&u, &r))
				return -1;
		}
		mu_tick(&u, l->now);
		if (mu_pump(&u, l->now, up, l) || townd_core_flush(c, down, l))
			return -1;
	}
	if (mu_backlog(&u) > 2 * ack_every + 2) {
		fprintf(stderr, "backlog %llu at the end of the day\n",
			(unsigned long long)mu_backlog(&u));
		return -1;
	}
	outbox_close(&ob);
	townd_core_free(c);
	free(c);
	return 0;
}

int main(void)
{
	static const struct { unsigned int interval, ack_every, snap; } runs[] = {
		{ 60, 8, 3600 }, { 60, 1, 3600 }, { 60, 4, 3600 }, { 60, 8, 0 },
		{ 15, 8, 3600 }, { 1, 8, 3600 },
	};
	/* bytes are counted, not disk time: the outbox fsyncs go to tmpfs if there is one */
	char shm[] = "/dev/shm/proto-bench-XXXXXX", tmp[] = "/tmp/proto-bench-XXXXXX", cmd[64];
	char *dir = mkdtemp(shm);

	if (!dir)
		dir = mkdtemp(tmp);
	if (sodium_init() < 0 || !dir)
		return 1;
	printf("bytes on the modem link per meter per day (both directions, acks included)\n");
	printf("%-9s %-9s %-10s %8s %10s %8s %10s %10s\n", "interval", "ack every",
	       "snapshot", "up fr", "up bytes", "down fr", "down bytes", "total");
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		struct link l;

		if (day(dir, runs[i].interval, runs[i].ack_every, runs[i].snap, &l))
			return 1;
		printf("%-9u %-9u %-10s %8llu %10llu %8llu %10llu %10llu%s\n", runs[i].interval,
		       runs[i].ack_every, runs[i].snap ? "hourly" : "none",
		       (unsigned long long)l.up_frames, (unsigned long long)l.up_bytes,
		       (unsigned long long)l.down_frames, (unsigned long long)l.down_bytes,
		       (unsigned long long)(l.up_bytes + l.down_bytes),
		       i == 0 ? "  <- default" : "");
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) ? 1 : 0;
}
