// SPDX-License-Identifier: GPL-2.0
/*
 * gmproto message encoding (version 2): exact CBOR bytes built by hand from
 * RFC 8949 (fixed-width consumption fields, byte strings), round trips of
 * every type, range checks, malformed input, padding, length hiding, and a
 * bounded random-bytes robustness run of the decoder.
 */
#include <stdlib.h>
#include <string.h>

#include "gm_harness.h"
#include "gmproto.h"

/* RFC 8949 head of major type mt for value v, written by hand. */
static size_t head(uint8_t mt, uint64_t v, uint8_t *p)
{
	mt <<= 5;
	if (v < 24) {
		p[0] = mt | (uint8_t)v;
		return 1;
	}
	if (v <= 0xff) {
		p[0] = mt | 24;
		p[1] = (uint8_t)v;
		return 2;
	}
	if (v <= 0xffff) {
		p[0] = mt | 25;
		p[1] = (uint8_t)(v >> 8);
		p[2] = (uint8_t)v;
		return 3;
	}
	if (v <= 0xffffffffull) {
		p[0] = mt | 26;
		for (int i = 0; i < 4; i++)
			p[1 + i] = (uint8_t)(v >> (24 - 8 * i));
		return 5;
	}
	p[0] = mt | 27;
	for (int i = 0; i < 8; i++)
		p[1 + i] = (uint8_t)(v >> (56 - 8 * i));
	return 9;
}

static size_t hint(int64_t v, uint8_t *p)
{
	return v >= 0 ? head(0, (uint64_t)v, p) : head(1, (uint64_t)(-(v + 1)), p);
}

/* An integer with an argument of exactly w bytes (4 or 8), by hand. */
static size_t hint_w(int64_t v, int w, uint8_t *p)
{
	uint8_t mt = v >= 0 ? 0 : 1;
	uint64_t u = v >= 0 ? (uint64_t)v : (uint64_t)(-(v + 1));

	p[0] = (uint8_t)(mt << 5 | (w == 4 ? 26 : 27));
	for (int i = 0; i < w; i++)
		p[1 + i] = (uint8_t)(u >> (8 * (w - 1 - i)));
	return 1 + (size_t)w;
}

static size_t hbytes(const uint8_t *b, uint8_t *p)
{
	p[0] = 0x58;		/* byte string, one-byte length */
	p[1] = 32;
	memcpy(p + 2, b, 32);
	return 34;
}

TEST(reading_bytes_match_rfc8949)
{
	struct gmp_msg m = { .type = GMP_READING, .reading = {
		.seq = 70000, .start = 1790000000, .interval_s = 60,
		.import_mwh = 33333, .export_mwh = 0, .renew_mwh = 250, .flags = 1 } };
	uint8_t want[64], got[64];
	size_t wn = 0, off = 0;

	wn += head(4, 8, want);
	wn += hint(GMP_READING, want + wn);
	wn += hint(70000, want + wn);
	wn += hint(1790000000, want + wn);
	wn += hint(60, want + wn);
	/* energies: always a 4-byte argument, whatever the value */
	wn += hint_w(33333, 4, want + wn);
	wn += hint_w(0, 4, want + wn);
	wn += hint_w(250, 4, want + wn);
	wn += hint(1, want + wn);
	ASSERT_EQ(0, gmp_encode(&m, got, sizeof(got), &off));
	ASSERT_EQ(wn, off);
	EXPECT_EQ(0, memcmp(want, got, wn));
	/* 8 bytes when 4 do not hold the value */
	m.reading.import_mwh = (int64_t)1 << 33;
	off = 0;
	ASSERT_EQ(0, gmp_encode(&m, got, sizeof(got), &off));
	EXPECT_EQ(wn + 4, off);
}

TEST(registers_alarm_and_handshake_bytes)
{
	struct gmp_msg r = { .type = GMP_REGISTERS, .regs = {
		.seq = 9, .time = 1790000000, .import_mwh = 5, .export_mwh = 0,
		.renew_mwh = 123456789, .flags = GMP_RF_RESTORED } };
	struct gmp_msg a = { .type = GMP_ALARM, .alarm = {
		.seq = 10, .time = 1790000001, .code = 3, .active = 1, .value = -40 } };
	struct gmp_msg h = { .type = GMP_HELLO, .hello = {
		.now_ms = 1790000000123, .clock_trusted = 1, .cmd_floor = 0, .next_seq = 1,
		.first_held = 1, .flags = GMP_HELLO_OUTBOX_NEW } };
	uint8_t want[128], got[128];
	size_t wn = 0, off = 0;

	for (int i = 0; i < 32; i++)
		h.hello.rm[i] = (uint8_t)(0xa0 + i);
	wn += head(4, 7, want + wn);
	wn += hint(GMP_REGISTERS, want + wn);
	wn += hint(9, want + wn);
	wn += hint(1790000000, want + wn);
	wn += hint_w(5, 8, want + wn);
	wn += hint_w(0, 8, want + wn);
	wn += hint_w(123456789, 8, want + wn);
	wn += hint(GMP_RF_RESTORED, want + wn);
	wn += head(4, 7, want + wn);
	wn += hint(GMP_ALARM, want + wn);
	wn += hint(10, want + wn);
	wn += hint(1790000001, want + wn);
	wn += hint(3, want + wn);
	wn += hint(1, want + wn);
	wn += hint_w(-40, 4, want + wn);
	wn += hint(0, want + wn);
	wn += head(4, 8, want + wn);
	wn += hint(GMP_HELLO, want + wn);
	wn += hbytes(h.hello.rm, want + wn);
	wn += hint(1790000000123, want + wn);
	wn += hint(1, want + wn);
	wn += hint(0, want + wn);
	wn += hint(1, want + wn);
	wn += hint(1, want + wn);
	wn += hint(GMP_HELLO_OUTBOX_NEW, want + wn);
	ASSERT_EQ(0, gmp_encode(&r, got, sizeof(got), &off));
	ASSERT_EQ(0, gmp_encode(&a, got, sizeof(got), &off));
	ASSERT_EQ(0, gmp_encode(&h, got, sizeof(got), &off));
	ASSERT_EQ(wn, off);
	EXPECT_EQ(0, memcmp(want, got, wn));
}

TEST(negative_values_and_tariff_bytes)
{
	struct gmp_msg m = { .type = GMP_TARIFF, .tariff = {
		.tseq = 3, .effective = 1800000000, .n = 2,
		.p = { { 0, 120000, -5000 }, { 420, 310000, 80000 } } } };
	uint8_t want[64], got[64];
	size_t wn = 0, off = 0;

	wn += head(4, 4, want + wn);
	wn += hint(GMP_TARIFF, want + wn);
	wn += hint(3, want + wn);
	wn += hint(1800000000, want + wn);
	wn += head(4, 2, want + wn);
	wn += head(4, 3, want + wn);
	wn += hint(0, want + wn);
	wn += hint(120000, want + wn);
	wn += hint(-5000, want + wn);
	wn += head(4, 3, want + wn);
	wn += hint(420, want + wn);
	wn += hint(310000, want + wn);
	wn += hint(80000, want + wn);
	ASSERT_EQ(0, gmp_encode(&m, got, sizeof(got), &off));
	ASSERT_EQ(wn, off);
	EXPECT_EQ(0, memcmp(want, got, wn));
}

static int64_t rnd_in(int64_t lo, int64_t hi)
{
	uint64_t span = (uint64_t)hi - (uint64_t)lo, r;

	r = (uint64_t)random() << 42 ^ (uint64_t)random() << 21 ^ (uint64_t)random();
	/* favour the edges: they are where encodings change size */
	switch (random() % 4) {
	case 0: return lo;
	case 1: return hi;
	default: return span == UINT64_MAX ? (int64_t)r : (int64_t)((uint64_t)lo + r % (span + 1));
	}
}

static void rnd_bytes(uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)random();
}

static void random_msg(struct gmp_msg *m, int type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	switch (type) {
	case GMP_READING:
		m->reading.seq = rnd_in(1, INT64_MAX);
		m->reading.start = rnd_in(0, (int64_t)1 << 40);
		m->reading.interval_s = rnd_in(1, 86400);
		m->reading.import_mwh = rnd_in(0, (int64_t)1 << 53);
		m->reading.export_mwh = rnd_in(0, (int64_t)1 << 53);
		m->reading.renew_mwh = rnd_in(0, (int64_t)1 << 53);
		m->reading.flags = rnd_in(0, 0xffff);
		break;
	case GMP_REGISTERS:
		m->regs.seq = rnd_in(1, INT64_MAX);
		m->regs.time = rnd_in(0, 1 << 30);
		m->regs.import_mwh = rnd_in(0, (int64_t)1 << 53);
		m->regs.export_mwh = rnd_in(0, (int64_t)1 << 53);
		m->regs.renew_mwh = rnd_in(0, (int64_t)1 << 53);
		m->regs.flags = rnd_in(0, 0xffff);
		break;
	case GMP_ALARM:
		m->alarm.seq = rnd_in(1, INT64_MAX);
		m->alarm.time = rnd_in(0, 1 << 30);
		m->alarm.code = rnd_in(0, 255);
		m->alarm.active = rnd_in(0, 1);
		m->alarm.value = rnd_in(INT64_MIN, INT64_MAX);
		m->alarm.flags = rnd_in(0, 0xffff);
		break;
	case GMP_ALLOC_REQ:
		m->alloc_req.seq = rnd_in(1, INT64_MAX);
		m->alloc_req.time = rnd_in(0, 1 << 30);
		m->alloc_req.req_id = rnd_in(0, UINT32_MAX);
		m->alloc_req.power_w = rnd_in(-((int64_t)1 << 40), (int64_t)1 << 40);
		m->alloc_req.duration_s = rnd_in(0, 86400);
		m->alloc_req.flags = rnd_in(0, 0xffff);
		break;
	case GMP_ALLOC_REL:
		m->alloc_rel.seq = rnd_in(1, INT64_MAX);
		m->alloc_rel.time = rnd_in(0, 1 << 30);
		m->alloc_rel.req_id = rnd_in(0, UINT32_MAX);
		m->alloc_rel.flags = rnd_in(0, 0xffff);
		break;
	case GMP_KEY_ROTATE:
		m->key_rotate.seq = rnd_in(1, INT64_MAX);
		m->key_rotate.time = rnd_in(0, 1 << 30);
		rnd_bytes(m->key_rotate.pk, sizeof(m->key_rotate.pk));
		break;
	case GMP_HOUR:
		m->hour.seq = rnd_in(1, INT64_MAX);
		m->hour.meter = rnd_in(1, UINT16_MAX);
		m->hour.hour = rnd_in(0, (int64_t)1 << 40);
		m->hour.period = rnd_in(0, GMP_TARIFF_MAX - 1);
		m->hour.import_mwh = rnd_in(0, (int64_t)1 << 53);
		m->hour.export_mwh = rnd_in(0, (int64_t)1 << 53);
		m->hour.renew_mwh = rnd_in(0, (int64_t)1 << 53);
		m->hour.readings = rnd_in(0, 86400);
		m->hour.flags = rnd_in(0, 0xffff);
		m->hour.rev = rnd_in(0, INT64_MAX);
		break;
	case GMP_TOWN_HOUR:
		m->town_hour.seq = rnd_in(1, INT64_MAX);
		m->town_hour.hour = rnd_in(0, (int64_t)1 << 40);
		m->town_hour.meters = rnd_in(0, UINT16_MAX);
		m->town_hour.import_mwh = rnd_in(0, (int64_t)1 << 53);
		m->town_hour.export_mwh = rnd_in(0, (int64_t)1 << 53);
		m->town_hour.renew_mwh = rnd_in(0, (int64_t)1 << 53);
		m->town_hour.flags = rnd_in(0, 0xffff);
		m->town_hour.rev = rnd_in(0, INT64_MAX);
		break;
	case GMP_LOAN:
		m->loan.seq = rnd_in(1, INT64_MAX);
		m->loan.time = rnd_in(0, 1 << 30);
		m->loan.loan_id = rnd_in(1, INT64_MAX);
		m->loan.lender = rnd_in(1, UINT16_MAX);
		m->loan.borrower = rnd_in(1, UINT16_MAX);
		m->loan.power_w = rnd_in(0, (int64_t)1 << 40);
		m->loan.until = rnd_in(0, 1 << 30);
		m->loan.state = rnd_in(0, GMP_LOAN_CANCELLED);
		break;
	case GMP_LOAN_ASK:
		m->loan_ask.seq = rnd_in(1, INT64_MAX);
		m->loan_ask.time = rnd_in(0, 1 << 30);
		m->loan_ask.origin = rnd_in(1, UINT16_MAX);
		m->loan_ask.req_id = rnd_in(1, UINT32_MAX);
		m->loan_ask.power_w = rnd_in(1, (int64_t)1 << 40);
		m->loan_ask.duration_s = rnd_in(1, 86400);
		m->loan_ask.wait_s = rnd_in(1, 3600);
		m->loan_ask.hops = rnd_in(1, GMP_LOAN_PATH_MAX);
		rnd_bytes(m->loan_ask.path, sizeof(m->loan_ask.path));
		break;
	case GMP_LOAN_ACCEPT:
	case GMP_LOAN_HOLD:
	case GMP_LOAN_RETURN:
		m->loan_ref.seq = rnd_in(1, INT64_MAX);
		m->loan_ref.time = rnd_in(0, 1 << 30);
		m->loan_ref.lender = rnd_in(1, UINT16_MAX);
		m->loan_ref.loan_id = rnd_in(1, INT64_MAX);
		m->loan_ref.power_w = rnd_in(0, (int64_t)1 << 40);
		m->loan_ref.state = rnd_in(0, GMP_LOAN_CANCELLED);
		break;
	case GMP_LOAN_OFFER:
		m->loan_offer.tseq = rnd_in(1, INT64_MAX);
		m->loan_offer.origin = rnd_in(1, UINT16_MAX);
		m->loan_offer.req_id = rnd_in(1, UINT32_MAX);
		m->loan_offer.lender = rnd_in(0, UINT16_MAX);
		m->loan_offer.loan_id = rnd_in(0, INT64_MAX);
		m->loan_offer.power_w = rnd_in(0, (int64_t)1 << 40);
		m->loan_offer.until = rnd_in(0, 1 << 30);
		m->loan_offer.ttl_s = rnd_in(0, 3600);
		m->loan_offer.flags = rnd_in(0, 0xffff);
		break;
	case GMP_LOAN_CONFIRM:
	case GMP_LOAN_END:
		m->loan_down.tseq = rnd_in(1, INT64_MAX);
		m->loan_down.lender = rnd_in(1, UINT16_MAX);
		m->loan_down.loan_id = rnd_in(1, INT64_MAX);
		m->loan_down.power_w = rnd_in(0, (int64_t)1 << 40);
		m->loan_down.until = rnd_in(0, 1 << 30);
		m->loan_down.state = rnd_in(0, GMP_LOAN_CANCELLED);
		break;
	case GMP_SUPPLY:
		m->supply.tseq = rnd_in(1, INT64_MAX);
		m->supply.capacity_w = rnd_in(0, (int64_t)1 << 40);
		break;
	case GMP_CMD_RESULT:
		m->cmd_result.tseq = rnd_in(1, INT64_MAX);
		m->cmd_result.status = rnd_in(0, 255);
		break;
	case GMP_LOST:
		m->lost.first = rnd_in(1, INT64_MAX);
		m->lost.last = rnd_in(m->lost.first, INT64_MAX);
		break;
	case GMP_ACK:
		m->ack.upto = rnd_in(0, INT64_MAX);
		break;
	case GMP_GRANT:
		m->grant.tseq = rnd_in(1, INT64_MAX);
		m->grant.req_id = rnd_in(0, UINT32_MAX);
		m->grant.granted_w = rnd_in(-((int64_t)1 << 40), (int64_t)1 << 40);
		m->grant.until = rnd_in(0, 1 << 30);
		break;
	case GMP_TARIFF:
		m->tariff.tseq = rnd_in(1, INT64_MAX);
		m->tariff.effective = rnd_in(0, 1 << 30);
		m->tariff.n = rnd_in(1, GMP_TARIFF_MAX);
		for (int i = 0; i < m->tariff.n; i++) {
			m->tariff.p[i].start_min = rnd_in(0, 1439);
			m->tariff.p[i].import_price = rnd_in(-1000000, 1000000);
			m->tariff.p[i].export_price = rnd_in(-1000000, 1000000);
		}
		break;
	case GMP_TOWN_KEY:
		m->town_key.tseq = rnd_in(1, INT64_MAX);
		rnd_bytes(m->town_key.pk, sizeof(m->town_key.pk));
		break;
	case GMP_HELLO:
		rnd_bytes(m->hello.rm, sizeof(m->hello.rm));
		m->hello.now_ms = rnd_in(0, (int64_t)1 << 49);
		m->hello.clock_trusted = rnd_in(0, 1);
		m->hello.cmd_floor = rnd_in(0, INT64_MAX);
		m->hello.next_seq = rnd_in(1, INT64_MAX);
		m->hello.first_held = rnd_in(1, INT64_MAX);
		m->hello.flags = rnd_in(0, 0xffff);
		break;
	case GMP_WELCOME:
		rnd_bytes(m->welcome.rm, sizeof(m->welcome.rm));
		rnd_bytes(m->welcome.rt, sizeof(m->welcome.rt));
		m->welcome.sid = rnd_in(1, 255);
		m->welcome.now_ms = rnd_in(0, (int64_t)1 << 49);
		m->welcome.upto = rnd_in(0, INT64_MAX);
		m->welcome.cmd_next = rnd_in(1, INT64_MAX);
		m->welcome.reg_import_mwh = rnd_in(0, (int64_t)1 << 53);
		m->welcome.reg_export_mwh = rnd_in(0, (int64_t)1 << 53);
		m->welcome.reg_renew_mwh = rnd_in(0, (int64_t)1 << 53);
		m->welcome.reg_time = rnd_in(0, (int64_t)1 << 40);
		break;
	case GMP_REHELLO:
		m->rehello.reason = rnd_in(0, 255);
		break;
	case GMP_SIGNED:
		m->signed_cmd.tseq = rnd_in(1, INT64_MAX);
		m->signed_cmd.len = rnd_in(1, GMP_BLOB_MAX);
		rnd_bytes(m->signed_cmd.blob, (size_t)m->signed_cmd.len);
		break;
	case GMP_TOWN_SUMMARY:
		m->summary.tseq = rnd_in(1, INT64_MAX);
		m->summary.month = rnd_in(1900, 9999) * 100 + rnd_in(1, 12);
		m->summary.meters = rnd_in(0, UINT16_MAX);
		m->summary.import_wh = rnd_in(0, (int64_t)1 << 53);
		m->summary.export_wh = rnd_in(0, (int64_t)1 << 53);
		m->summary.renew_wh = rnd_in(0, (int64_t)1 << 53);
		m->summary.lent_wh = rnd_in(0, (int64_t)1 << 53);
		m->summary.borrowed_wh = rnd_in(0, (int64_t)1 << 53);
		m->summary.admin_hours = rnd_in(0, 744);
		m->summary.alarms = rnd_in(0, INT64_MAX);
		m->summary.estimated_hours = rnd_in(0, INT64_MAX);
		m->summary.billed_minor = rnd_in(0, (int64_t)1 << 53);
		break;
	case GMP_CMD_REPORT:
		m->cmd_report.seq = rnd_in(1, INT64_MAX);
		m->cmd_report.time = rnd_in(0, (int64_t)1 << 40);
		m->cmd_report.cmd_id = rnd_in(1, INT64_MAX);
		m->cmd_report.meter = rnd_in(0, UINT16_MAX);
		m->cmd_report.state = rnd_in(GMP_CS_DELIVERED, GMP_CS_EXPIRED);
		m->cmd_report.status = rnd_in(0, 255);
		break;
	case GMP_METER_ALARM:
		m->meter_alarm.seq = rnd_in(1, INT64_MAX);
		m->meter_alarm.time = rnd_in(0, (int64_t)1 << 40);
		m->meter_alarm.meter = rnd_in(1, UINT16_MAX);
		m->meter_alarm.code = rnd_in(0, 255);
		m->meter_alarm.active = rnd_in(0, 1);
		m->meter_alarm.value = rnd_in(INT64_MIN, INT64_MAX);
		break;
	case GMP_SECURITY:
		m->security.seq = rnd_in(1, INT64_MAX);
		m->security.time = rnd_in(0, (int64_t)1 << 40);
		m->security.interval_s = rnd_in(1, 86400);
		m->security.meter = rnd_in(0, UINT16_MAX);
		m->security.addr = rnd_in(0, UINT32_MAX);
		m->security.kind = rnd_in(GMP_SEC_AUTH_FAIL, 255);
		m->security.count = rnd_in(1, INT64_MAX);
		break;
	}
}

static const int all_types[] = {
	GMP_READING, GMP_REGISTERS, GMP_ALARM, GMP_ALLOC_REQ, GMP_ALLOC_REL,
	GMP_CMD_RESULT, GMP_LOST, GMP_KEY_ROTATE, GMP_ACK, GMP_GRANT, GMP_TARIFF,
	GMP_TOWN_KEY, GMP_HELLO, GMP_WELCOME, GMP_REHELLO,
	GMP_HOUR, GMP_TOWN_HOUR, GMP_LOAN, GMP_SUPPLY,
	GMP_LOAN_ASK, GMP_LOAN_ACCEPT, GMP_LOAN_HOLD, GMP_LOAN_RETURN,
	GMP_LOAN_OFFER, GMP_LOAN_CONFIRM, GMP_LOAN_END,
	GMP_SIGNED, GMP_TOWN_SUMMARY, GMP_CMD_REPORT, GMP_METER_ALARM, GMP_SECURITY,
};
#define NTYPES (sizeof(all_types) / sizeof(all_types[0]))

TEST(types_and_classes)
{
	int records = 0;

	for (size_t i = 0; i < NTYPES; i++) {
		int c = gmp_type_class(all_types[i]);

		EXPECT_NE(GMP_CLASS_NONE, c);
		EXPECT_STRNE("unknown", gmp_type_name(all_types[i]));
		records += gmp_is_record(all_types[i]);
		if (all_types[i] >= 40) {
			/* a town's reports to the main server */
			EXPECT_EQ(GMP_CLASS_TIER_UP, c);
			EXPECT_TRUE(gmp_is_record(all_types[i]));
		} else if (all_types[i] >= 32) {
			EXPECT_TRUE(c == GMP_CLASS_HELLO || c == GMP_CLASS_TOWN_HS);
		} else if (all_types[i] >= 16) {
			EXPECT_EQ(GMP_CLASS_DOWN, c);
		} else if (all_types[i] >= GMP_HOUR && all_types[i] <= GMP_LOAN_RETURN &&
			   all_types[i] != GMP_KEY_ROTATE) {
			/* a town's records upward (to maind or a neighbour town):
			 * never accepted from a meter */
			EXPECT_EQ(GMP_CLASS_TIER_UP, c);
		} else {
			EXPECT_EQ(GMP_CLASS_UP, c);
		}
	}
	EXPECT_EQ(16, records);
	for (int t = 0; t <= 64; t++) {
		int known = 0;

		for (size_t i = 0; i < NTYPES; i++)
			known |= all_types[i] == t;
		if (!known) {
			EXPECT_EQ(GMP_CLASS_NONE, gmp_type_class(t));
		}
	}
	/* every record type's seq is reachable through the generic helpers */
	for (size_t i = 0; i < NTYPES; i++) {
		struct gmp_msg m;

		srandom(9);
		random_msg(&m, all_types[i]);
		if (!gmp_is_record(m.type)) {
			EXPECT_EQ(0, gmp_msg_seq(&m));
			EXPECT_EQ(-GMP_E_TYPE, gmp_msg_set_seq(&m, 5));
			continue;
		}
		ASSERT_EQ(0, gmp_msg_set_seq(&m, 4242));
		EXPECT_EQ(4242, gmp_msg_seq(&m));
	}
	/* and every command's tseq through its own */
	for (size_t i = 0; i < NTYPES; i++) {
		struct gmp_msg m;
		int t = all_types[i];
		bool cmd = t == GMP_GRANT || t == GMP_TARIFF || t == GMP_TOWN_KEY || t == GMP_SUPPLY ||
			   t == GMP_LOAN_OFFER || t == GMP_LOAN_CONFIRM || t == GMP_LOAN_END ||
			   t == GMP_SIGNED || t == GMP_TOWN_SUMMARY;

		random_msg(&m, t);
		if (!cmd) {
			EXPECT_EQ(0, gmp_cmd_tseq(&m));
			EXPECT_EQ(-GMP_E_TYPE, gmp_cmd_set_tseq(&m, 5));
			continue;
		}
		ASSERT_EQ(0, gmp_cmd_set_tseq(&m, 777));
		EXPECT_EQ(777, gmp_cmd_tseq(&m));
	}
}

TEST(roundtrip_every_type_as_a_sequence)
{
	srandom(1);
	for (int round = 0; round < 2000; round++) {
		struct gmp_msg in[NTYPES], out;
		uint8_t buf[4096];
		size_t off = 0, roff = 0;

		for (size_t i = 0; i < NTYPES; i++) {
			random_msg(&in[i], all_types[i]);
			ASSERT_EQ(0, gmp_encode(&in[i], buf, sizeof(buf), &off));
		}
		for (size_t i = 0; i < NTYPES; i++) {
			ASSERT_EQ(1, gmp_decode_next(buf, off, &roff, &out));
			ASSERT_EQ(0, memcmp(&in[i], &out, sizeof(out)))
				TH_LOG("type %d round %d", all_types[i], round);
		}
		EXPECT_EQ(off, roff);
		EXPECT_EQ(0, gmp_decode_next(buf, off, &roff, &out));
	}
}

TEST(encode_rejects_out_of_range_and_short_buffers)
{
	struct gmp_msg m = { .type = GMP_READING, .reading = {
		.seq = 0, .start = 1, .interval_s = 60 } };
	uint8_t buf[64];
	size_t off = 0;

	EXPECT_EQ(-GMP_E_RANGE, gmp_encode(&m, buf, sizeof(buf), &off));
	m.reading.seq = 1;
	m.reading.interval_s = 86401;
	EXPECT_EQ(-GMP_E_RANGE, gmp_encode(&m, buf, sizeof(buf), &off));
	m.reading.interval_s = 60;
	m.reading.import_mwh = -1;
	EXPECT_EQ(-GMP_E_RANGE, gmp_encode(&m, buf, sizeof(buf), &off));
	m.reading.import_mwh = 5;
	m.type = 43;
	EXPECT_EQ(-GMP_E_TYPE, gmp_encode(&m, buf, sizeof(buf), &off));
	m.type = GMP_READING;
	EXPECT_EQ(0, off);
	ASSERT_EQ(0, gmp_encode(&m, buf, sizeof(buf), &off));
	for (size_t n = 0; n < off; n++) {
		size_t o2 = 0;

		EXPECT_EQ(-GMP_E_SPACE, gmp_encode(&m, buf, n, &o2));
		EXPECT_EQ(0, o2);
	}
}

TEST(loan_messages_check_their_ranges_and_fit_a_frame)
{
	static const int loan_types[] = {
		GMP_LOAN_ASK, GMP_LOAN_ACCEPT, GMP_LOAN_HOLD, GMP_LOAN_RETURN,
		GMP_LOAN_OFFER, GMP_LOAN_CONFIRM, GMP_LOAN_END,
	};
	struct gmp_msg m;
	uint8_t buf[GMP_PLAIN_MAX];
	size_t off;

	/* each, with its 32-byte path and fixed-width powers, fits a frame many times over */
	srandom(7);
	for (size_t i = 0; i < sizeof(loan_types) / sizeof(loan_types[0]); i++) {
		random_msg(&m, loan_types[i]);
		off = 0;
		ASSERT_EQ(0, gmp_encode(&m, buf, sizeof(buf), &off));
		EXPECT_LT(gmp_pad_len(off), (size_t)GMP_PLAIN_MAX / 4)
			TH_LOG("%s takes %zu bytes", gmp_type_name(loan_types[i]), off);
	}
	/* an ask for nothing, with no hop left, or past the path is refused */
	random_msg(&m, GMP_LOAN_ASK);
	m.loan_ask.power_w = 0;
	off = 0;
	EXPECT_EQ(-GMP_E_RANGE, gmp_encode(&m, buf, sizeof(buf), &off));
	m.loan_ask.power_w = 1;
	m.loan_ask.hops = 0;
	EXPECT_EQ(-GMP_E_RANGE, gmp_encode(&m, buf, sizeof(buf), &off));
	m.loan_ask.hops = GMP_LOAN_PATH_MAX + 1;
	EXPECT_EQ(-GMP_E_RANGE, gmp_encode(&m, buf, sizeof(buf), &off));
	/* a return names a loan state; town ids are 1..65535 */
	random_msg(&m, GMP_LOAN_RETURN);
	m.loan_ref.state = GMP_LOAN_CANCELLED + 1;
	EXPECT_EQ(-GMP_E_RANGE, gmp_encode(&m, buf, sizeof(buf), &off));
	m.loan_ref.state = GMP_LOAN_RETURNED;
	m.loan_ref.lender = 0;
	EXPECT_EQ(-GMP_E_RANGE, gmp_encode(&m, buf, sizeof(buf), &off));
	/* "nothing" offers carry lender 0; a negative offer does not exist */
	random_msg(&m, GMP_LOAN_OFFER);
	m.loan_offer.lender = 0;
	m.loan_offer.loan_id = 0;
	m.loan_offer.power_w = 0;
	EXPECT_EQ(0, gmp_encode(&m, buf, sizeof(buf), &off));
	m.loan_offer.power_w = -1;
	EXPECT_EQ(-GMP_E_RANGE, gmp_encode(&m, buf, sizeof(buf), &off));
}

TEST(decode_rejects_what_the_schema_forbids)
{
	/* each case built by hand; all must fail without consuming */
	static const struct { uint8_t b[40]; size_t n; int err; } c[] = {
		{ { 0x81, 0x10 }, 2, -GMP_E_MALFORMED },		/* [16] too short */
		{ { 0x83, 0x10, 0x01, 0x02 }, 4, -GMP_E_MALFORMED },	/* ack with 2 fields */
		{ { 0x82, 0x18, 0x2b, 0x01 }, 4, -GMP_E_TYPE },		/* type 43 */
		{ { 0x82, 0x18, 0x40, 0x01 }, 4, -GMP_E_TYPE },		/* type 64 */
		{ { 0x82, 0x10, 0x20 }, 3, -GMP_E_RANGE },		/* ack upto -1 */
		{ { 0x83, 0x07, 0x00, 0x05 }, 4, -GMP_E_RANGE },	/* lost first 0 */
		{ { 0x83, 0x07, 0x06, 0x05 }, 4, -GMP_E_RANGE },	/* lost 6..5 */
		{ { 0x83, 0x06, 0x01, 0x19, 0x01, 0x00 }, 6, -GMP_E_RANGE }, /* status 256 */
		{ { 0xa1, 0x01, 0x02 }, 3, -GMP_E_MALFORMED },		/* map */
		{ { 0x9f, 0x10, 0x01, 0xff }, 4, -GMP_E_MALFORMED },	/* indefinite */
		{ { 0x82, 0x10, 0x41, 0x00 }, 4, -GMP_E_MALFORMED },	/* bytes for an int */
		{ { 0x82, 0x10, 0xf5 }, 3, -GMP_E_MALFORMED },		/* true */
		{ { 0x82, 0x10, 0xc1, 0x01 }, 4, -GMP_E_MALFORMED },	/* tag */
		{ { 0x82, 0x10, 0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0 }, 11, -GMP_E_MALFORMED }, /* 2^63 */
		{ { 0x82, 0x10, 0x1b, 0x00 }, 4, -GMP_E_MALFORMED },	/* truncated */
		{ { 0x82, 0x12, 0xfb, 0, 0, 0, 0, 0, 0, 0, 0 }, 11, -GMP_E_MALFORMED }, /* float */
		{ { 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 9, -GMP_E_MALFORMED },
		/* town-key with an int where the key belongs, with 31 bytes, indefinite bytes */
		{ { 0x83, 0x13, 0x01, 0x05 }, 4, -GMP_E_MALFORMED },
		{ { 0x83, 0x13, 0x01, 0x58, 0x1f }, 36, -GMP_E_RANGE },
		{ { 0x83, 0x13, 0x01, 0x5f, 0x41, 0x00, 0xff }, 7, -GMP_E_MALFORMED },
		/* a byte string running past the end */
		{ { 0x83, 0x13, 0x01, 0x58, 0x20, 0x00 }, 6, -GMP_E_MALFORMED },
		/* padding with a non-zero byte in it */
		{ { 0x00, 0x00, 0x01 }, 3, -GMP_E_MALFORMED },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct gmp_msg m;
		size_t off = 0;

		EXPECT_EQ(c[i].err, gmp_decode_next(c[i].b, c[i].n, &off, &m)) TH_LOG("case %zu", i);
		EXPECT_EQ(0, off);
	}
}

/* Zero bytes after the last message end the sequence; anything else does not. */
TEST(padding_ends_a_sequence)
{
	struct gmp_msg a = { .type = GMP_ACK, .ack = { .upto = 7 } }, m;
	uint8_t buf[64];
	size_t n = 0, off = 0;

	ASSERT_EQ(0, gmp_encode(&a, buf, sizeof(buf), &n));
	ASSERT_EQ(0, gmp_encode(&a, buf, sizeof(buf), &n));
	EXPECT_EQ(16, gmp_pad_len(n));
	memset(buf + n, 0, gmp_pad_len(n) - n);
	ASSERT_EQ(1, gmp_decode_next(buf, gmp_pad_len(n), &off, &m));
	ASSERT_EQ(1, gmp_decode_next(buf, gmp_pad_len(n), &off, &m));
	EXPECT_EQ(n, off);
	EXPECT_EQ(0, gmp_decode_next(buf, gmp_pad_len(n), &off, &m));
	EXPECT_EQ(gmp_pad_len(n), off);
	/* a non-zero byte after padding started: the frame is malformed */
	off = n;
	buf[gmp_pad_len(n) - 1] = 1;
	EXPECT_EQ(-GMP_E_MALFORMED, gmp_decode_next(buf, gmp_pad_len(n), &off, &m));
	EXPECT_EQ(n, off);
	/* an all-zero plaintext is an empty sequence */
	memset(buf, 0, 32);
	off = 0;
	EXPECT_EQ(0, gmp_decode_next(buf, 32, &off, &m));
	EXPECT_EQ(32, off);
	for (size_t len = 0; len < 100; len++)
		EXPECT_EQ(0u, gmp_pad_len(len) % GMP_PAD_QUANTUM);
	EXPECT_EQ(0u, GMP_PLAIN_MAX % GMP_PAD_QUANTUM);
	EXPECT_EQ(0u, GMP_HS_PLAIN_MAX % GMP_PAD_QUANTUM);
	EXPECT_GE(GMP_PAYLOAD_MAX, GMP_PLAIN_MAX + GMP_ENV_OVERHEAD_MAX);
	EXPECT_GE(GMP_PAYLOAD_MAX, GMP_HS_PLAIN_MAX + GMP_HS_OVERHEAD);
}

/*
 * Length hiding: the encoded size of a reading does not depend on its
 * energies (any value below 2^32 mWh), of an alarm on its value, of an
 * allocation request on its power, of a register snapshot or a WELCOME on
 * the registers (any value up to 2^53). Checked at every place where a
 * preferred encoding would change size, and at random values.
 */
static size_t enc_len(const struct gmp_msg *m)
{
	uint8_t buf[512];
	size_t n = 0;

	if (gmp_encode(m, buf, sizeof(buf), &n))
		return 0;
	return n;
}

TEST(consumption_values_do_not_change_sizes)
{
	static const int64_t edges[] = { 0, 1, 23, 24, 255, 256, 65535, 65536,
					 16777215, 16777216, 4294967295LL };
	struct gmp_msg r = { .type = GMP_READING, .reading = {
		.seq = 525600, .start = 1790000000, .interval_s = 60 } };
	struct gmp_msg a = { .type = GMP_ALARM, .alarm = {
		.seq = 525601, .time = 1790000000, .code = 4, .active = 1 } };
	struct gmp_msg q = { .type = GMP_ALLOC_REQ, .alloc_req = {
		.seq = 525602, .time = 1790000000, .req_id = 7, .duration_s = 900 } };
	struct gmp_msg g = { .type = GMP_REGISTERS, .regs = {
		.seq = 525603, .time = 1790000000 } };
	struct gmp_msg w = { .type = GMP_WELCOME, .welcome = {
		.sid = 9, .now_ms = 1790000000000, .upto = 525600, .cmd_next = 3,
		.reg_time = 1790000000 } };
	size_t lr = enc_len(&r), la = enc_len(&a), lq = enc_len(&q), lg = enc_len(&g);
	size_t lw = enc_len(&w);

	ASSERT_LT(0, lr);
	srandom(11);
	for (size_t i = 0; i < 3 * 11 * 11 + 20000; i++) {
		size_t k = i % 11, j = i / 11 % 11, l = i / 121 % 11;
		bool rnd = i >= 3 * 11 * 11;
		int64_t v1 = rnd ? (int64_t)((uint64_t)random() << 1 ^ (uint64_t)random()) % 4294967296LL : edges[k];
		int64_t v2 = rnd ? random() % 4294967296LL : edges[j];
		int64_t v3 = rnd ? random() % 4294967296LL : edges[l];

		r.reading.import_mwh = v1;
		r.reading.export_mwh = v2;
		r.reading.renew_mwh = v3;
		ASSERT_EQ(lr, enc_len(&r)) TH_LOG("%lld %lld %lld", (long long)v1,
						    (long long)v2, (long long)v3);
		a.alarm.value = (i & 1) ? v1 : -v1 - 1;
		ASSERT_EQ(la, enc_len(&a));
		q.alloc_req.power_w = (i & 1) ? v2 % ((int64_t)1 << 32) : -(v2 % ((int64_t)1 << 32)) - 1;
		ASSERT_EQ(lq, enc_len(&q));
		g.regs.import_mwh = v1 * 2097151 % ((int64_t)1 << 53);
		g.regs.export_mwh = v2;
		g.regs.renew_mwh = v3 << 21;
		ASSERT_EQ(lg, enc_len(&g));
		w.welcome.reg_import_mwh = g.regs.import_mwh;
		w.welcome.reg_export_mwh = g.regs.renew_mwh;
		ASSERT_EQ(lw, enc_len(&w));
	}
}

TEST(every_truncation_is_an_error)
{
	struct gmp_msg m;
	uint8_t buf[512];

	srandom(2);
	for (size_t t = 0; t < NTYPES; t++) {
		size_t len = 0;

		random_msg(&m, all_types[t]);
		ASSERT_EQ(0, gmp_encode(&m, buf, sizeof(buf), &len));
		for (size_t n = 1; n < len; n++) {
			size_t off = 0;
			uint8_t *copy = malloc(n);	/* exact size: ASan/valgrind see overreads */

			memcpy(copy, buf, n);
			EXPECT_GT(0, gmp_decode_next(copy, n, &off, &m));
			free(copy);
		}
	}
}

/*
 * Random bytes and mutations of valid messages: the decoder returns, and
 * whatever it accepts re-encodes to a message that decodes to the same
 * struct (a value given with another argument width than the encoder's is
 * accepted and re-encodes in the encoder's width).
 */
TEST(random_bytes_never_crash)
{
	uint8_t buf[512], re[1024];
	unsigned long accepted = 0;

	srandom(3);
	for (int it = 0; it < 200000; it++) {
		size_t len = (size_t)(random() % 64), off = 0;
		struct gmp_msg m, m2;
		int rc;

		if (it % 2) {
			size_t l2 = 0;

			random_msg(&m, all_types[random() % NTYPES]);
			gmp_encode(&m, buf, sizeof(buf), &l2);
			len = l2;
			for (int k = 0; k < 1 + random() % 3; k++)
				buf[random() % len] ^= (uint8_t)(1 + random() % 255);
		} else {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)random();
		}
		while ((rc = gmp_decode_next(buf, len, &off, &m)) == 1) {
			size_t rl = 0, o3 = 0;

			accepted++;
			ASSERT_LE(off, len);
			ASSERT_EQ(0, gmp_encode(&m, re, sizeof(re), &rl));
			ASSERT_EQ(1, gmp_decode_next(re, rl, &o3, &m2));
			ASSERT_EQ(0, memcmp(&m, &m2, sizeof(m)));
		}
		ASSERT_GE(0, rc);
	}
	TH_LOG("accepted %lu messages from mutated input", accepted);
}

TEST(sizes_of_a_typical_day)
{
	/* a 60 s reading of ~2 kW, a year into the sequence */
	struct gmp_msg r = { .type = GMP_READING, .reading = {
		.seq = 525600, .start = 1790000000, .interval_s = 60,
		.import_mwh = 33333, .export_mwh = 0, .renew_mwh = 0 } };
	struct gmp_msg a = { .type = GMP_ACK, .ack = { .upto = 525600 } };
	uint8_t buf[64];
	size_t n = 0;

	ASSERT_EQ(0, gmp_encode(&r, buf, sizeof(buf), &n));
	/* 1 array + 1 type + 5 seq + 5 start + 2 interval + 3 x 5 energies + 1 flags */
	EXPECT_EQ(1 + 1 + 5 + 5 + 2 + 3 * 5 + 1, n);
	EXPECT_EQ(32, gmp_pad_len(n));
	n = 0;
	ASSERT_EQ(0, gmp_encode(&a, buf, sizeof(buf), &n));
	EXPECT_EQ(1 + 1 + 5, n);	/* type 16 fits the head */
	EXPECT_EQ(16, gmp_pad_len(n));
}

TEST_HARNESS_MAIN
