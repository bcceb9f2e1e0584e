// SPDX-License-Identifier: GPL-2.0
/*
 * gmproto version 2: message encoding (CBOR via libcbor), padding, the
 * handshake and session envelopes (libsodium). See gmproto.h and
 * Documentation/protocol.md.
 */
#include <stddef.h>
#include <string.h>

#include <cbor.h>
#include <sodium.h>

#include "gmproto.h"

/* ---- schema -------------------------------------------------------------- */

/*
 * Field kinds. FK_INT4 and FK_INT8 are the length-hiding encodings of
 * consumption values: a 4-byte argument (8 if the value does not fit), or
 * always an 8-byte one. Decoders accept any width for every integer.
 */
enum fkind { FK_INT, FK_INT4, FK_INT8, FK_BYTES, FK_BLOB };

struct gmp_field {
	unsigned short off;	/* offset in struct gmp_msg */
	unsigned char kind;	/* enum fkind; FK_BYTES: GMP_KEY_LEN bytes; FK_BLOB: an
				 * int64_t length (min..max) followed by its bytes */
	int64_t min, max;
};

struct gmp_schema {
	int type;
	const char *name;
	int cls;		/* enum gmp_class */
	unsigned int n;		/* fields after the type */
	struct gmp_field f[12];
};

#define F(member, lo, hi) { offsetof(struct gmp_msg, member), FK_INT, (lo), (hi) }
#define F4(member, lo, hi) { offsetof(struct gmp_msg, member), FK_INT4, (lo), (hi) }
#define F8(member, lo, hi) { offsetof(struct gmp_msg, member), FK_INT8, (lo), (hi) }
#define FB(member) { offsetof(struct gmp_msg, member), FK_BYTES, 0, 0 }
#define FBL(member, lo, hi) { offsetof(struct gmp_msg, member), FK_BLOB, (lo), (hi) }
#define SEQ_MAX		INT64_MAX
#define T_MAX		((int64_t)1 << 40)	/* UTC seconds: year 36812 */
#define MWH_MAX		((int64_t)1 << 53)
#define POW_MAX		((int64_t)1 << 40)
#define FLAGS_MAX	0xffff

#define LOAN_REF_FIELDS { \
		F(loan_ref.seq, 1, SEQ_MAX), F(loan_ref.time, 0, T_MAX), \
		F(loan_ref.lender, 1, UINT16_MAX), F(loan_ref.loan_id, 1, SEQ_MAX), \
		F4(loan_ref.power_w, 0, POW_MAX), F(loan_ref.state, 0, GMP_LOAN_CANCELLED) }
#define LOAN_DOWN_FIELDS { \
		F(loan_down.tseq, 1, SEQ_MAX), F(loan_down.lender, 1, UINT16_MAX), \
		F(loan_down.loan_id, 1, SEQ_MAX), F4(loan_down.power_w, 0, POW_MAX), \
		F(loan_down.until, 0, T_MAX), F(loan_down.state, 0, GMP_LOAN_CANCELLED) }

static const struct gmp_schema schemas[] = {
	{ GMP_READING, "reading", GMP_CLASS_UP, 7, {
		F(reading.seq, 1, SEQ_MAX), F(reading.start, 0, T_MAX),
		F(reading.interval_s, 1, 86400), F4(reading.import_mwh, 0, MWH_MAX),
		F4(reading.export_mwh, 0, MWH_MAX), F4(reading.renew_mwh, 0, MWH_MAX),
		F(reading.flags, 0, FLAGS_MAX) } },
	{ GMP_REGISTERS, "registers", GMP_CLASS_UP, 6, {
		F(regs.seq, 1, SEQ_MAX), F(regs.time, 0, T_MAX),
		F8(regs.import_mwh, 0, MWH_MAX), F8(regs.export_mwh, 0, MWH_MAX),
		F8(regs.renew_mwh, 0, MWH_MAX), F(regs.flags, 0, FLAGS_MAX) } },
	{ GMP_ALARM, "alarm", GMP_CLASS_UP, 6, {
		F(alarm.seq, 1, SEQ_MAX), F(alarm.time, 0, T_MAX),
		F(alarm.code, 0, 255), F(alarm.active, 0, 1),
		F4(alarm.value, INT64_MIN, INT64_MAX), F(alarm.flags, 0, FLAGS_MAX) } },
	{ GMP_ALLOC_REQ, "alloc-request", GMP_CLASS_UP, 6, {
		F(alloc_req.seq, 1, SEQ_MAX), F(alloc_req.time, 0, T_MAX),
		F(alloc_req.req_id, 0, UINT32_MAX), F4(alloc_req.power_w, -POW_MAX, POW_MAX),
		F(alloc_req.duration_s, 0, 86400 * 366), F(alloc_req.flags, 0, FLAGS_MAX) } },
	{ GMP_ALLOC_REL, "alloc-release", GMP_CLASS_UP, 4, {
		F(alloc_rel.seq, 1, SEQ_MAX), F(alloc_rel.time, 0, T_MAX),
		F(alloc_rel.req_id, 0, UINT32_MAX), F(alloc_rel.flags, 0, FLAGS_MAX) } },
	{ GMP_CMD_RESULT, "cmd-result", GMP_CLASS_UP, 2, {
		F(cmd_result.tseq, 1, SEQ_MAX), F(cmd_result.status, 0, GMP_CMD_STATUS_MAX) } },
	{ GMP_LOST, "lost", GMP_CLASS_UP, 2, {
		F(lost.first, 1, SEQ_MAX), F(lost.last, 1, SEQ_MAX) } },
	{ GMP_KEY_ROTATE, "key-rotate", GMP_CLASS_UP, 3, {
		F(key_rotate.seq, 1, SEQ_MAX), F(key_rotate.time, 0, T_MAX),
		FB(key_rotate.pk) } },
	{ GMP_HOUR, "hour", GMP_CLASS_TIER_UP, 10, {
		F(hour.seq, 1, SEQ_MAX), F(hour.meter, 1, UINT16_MAX), F(hour.hour, 0, T_MAX),
		F(hour.period, 0, GMP_TARIFF_MAX - 1), F4(hour.import_mwh, 0, MWH_MAX),
		F4(hour.export_mwh, 0, MWH_MAX), F4(hour.renew_mwh, 0, MWH_MAX),
		F(hour.readings, 0, 86400), F(hour.flags, 0, FLAGS_MAX),
		F(hour.rev, 0, SEQ_MAX) } },
	{ GMP_TOWN_HOUR, "town-hour", GMP_CLASS_TIER_UP, 8, {
		F(town_hour.seq, 1, SEQ_MAX), F(town_hour.hour, 0, T_MAX),
		F(town_hour.meters, 0, UINT16_MAX), F4(town_hour.import_mwh, 0, MWH_MAX),
		F4(town_hour.export_mwh, 0, MWH_MAX), F4(town_hour.renew_mwh, 0, MWH_MAX),
		F(town_hour.flags, 0, FLAGS_MAX), F(town_hour.rev, 0, SEQ_MAX) } },
	{ GMP_LOAN, "loan", GMP_CLASS_TIER_UP, 8, {
		F(loan.seq, 1, SEQ_MAX), F(loan.time, 0, T_MAX), F(loan.loan_id, 1, SEQ_MAX),
		F(loan.lender, 1, UINT16_MAX), F(loan.borrower, 1, UINT16_MAX),
		F4(loan.power_w, 0, POW_MAX), F(loan.until, 0, T_MAX),
		F(loan.state, 0, GMP_LOAN_CANCELLED) } },
	{ GMP_LOAN_ASK, "loan-ask", GMP_CLASS_TIER_UP, 9, {
		F(loan_ask.seq, 1, SEQ_MAX), F(loan_ask.time, 0, T_MAX),
		F(loan_ask.origin, 1, UINT16_MAX), F(loan_ask.req_id, 1, UINT32_MAX),
		F4(loan_ask.power_w, 1, POW_MAX), F(loan_ask.duration_s, 1, 86400),
		F(loan_ask.wait_s, 1, 3600), F(loan_ask.hops, 1, GMP_LOAN_PATH_MAX),
		FB(loan_ask.path) } },
	{ GMP_LOAN_ACCEPT, "loan-accept", GMP_CLASS_TIER_UP, 6, LOAN_REF_FIELDS },
	{ GMP_LOAN_HOLD, "loan-hold", GMP_CLASS_TIER_UP, 6, LOAN_REF_FIELDS },
	{ GMP_LOAN_RETURN, "loan-return", GMP_CLASS_TIER_UP, 6, LOAN_REF_FIELDS },
	{ GMP_LOAN_OFFER, "loan-offer", GMP_CLASS_DOWN, 9, {
		F(loan_offer.tseq, 1, SEQ_MAX), F(loan_offer.origin, 1, UINT16_MAX),
		F(loan_offer.req_id, 1, UINT32_MAX), F(loan_offer.lender, 0, UINT16_MAX),
		F(loan_offer.loan_id, 0, SEQ_MAX), F4(loan_offer.power_w, 0, POW_MAX),
		F(loan_offer.until, 0, T_MAX), F(loan_offer.ttl_s, 0, 3600),
		F(loan_offer.flags, 0, FLAGS_MAX) } },
	{ GMP_LOAN_CONFIRM, "loan-confirm", GMP_CLASS_DOWN, 6, LOAN_DOWN_FIELDS },
	{ GMP_LOAN_END, "loan-end", GMP_CLASS_DOWN, 6, LOAN_DOWN_FIELDS },
	{ GMP_ACK, "ack", GMP_CLASS_DOWN, 1, { F(ack.upto, 0, SEQ_MAX) } },
	{ GMP_GRANT, "grant", GMP_CLASS_DOWN, 4, {
		F(grant.tseq, 1, SEQ_MAX), F(grant.req_id, 0, UINT32_MAX),
		F4(grant.granted_w, -POW_MAX, POW_MAX), F(grant.until, 0, T_MAX) } },
	{ GMP_TARIFF, "tariff", GMP_CLASS_DOWN, 2, {
		F(tariff.tseq, 1, SEQ_MAX), F(tariff.effective, 0, T_MAX) } },
	{ GMP_SUPPLY, "supply", GMP_CLASS_DOWN, 2, {
		F(supply.tseq, 1, SEQ_MAX), F4(supply.capacity_w, 0, POW_MAX) } },
	{ GMP_SIGNED, "signed", GMP_CLASS_DOWN, 2, {
		F(signed_cmd.tseq, 1, SEQ_MAX), FBL(signed_cmd.len, 1, GMP_BLOB_MAX) } },
	{ GMP_TOWN_SUMMARY, "town-summary", GMP_CLASS_DOWN, 12, {
		F(summary.tseq, 1, SEQ_MAX), F(summary.month, 190001, 999912),
		F(summary.meters, 0, UINT16_MAX), F4(summary.import_wh, 0, MWH_MAX),
		F4(summary.export_wh, 0, MWH_MAX), F4(summary.renew_wh, 0, MWH_MAX),
		F4(summary.lent_wh, 0, MWH_MAX), F4(summary.borrowed_wh, 0, MWH_MAX),
		F(summary.admin_hours, 0, 744), F(summary.alarms, 0, SEQ_MAX),
		F(summary.estimated_hours, 0, SEQ_MAX), F4(summary.billed_minor, 0, MWH_MAX) } },
	{ GMP_CMD_REPORT, "cmd-report", GMP_CLASS_TIER_UP, 6, {
		F(cmd_report.seq, 1, SEQ_MAX), F(cmd_report.time, 0, T_MAX),
		F(cmd_report.cmd_id, 1, SEQ_MAX), F(cmd_report.meter, 0, UINT16_MAX),
		F(cmd_report.state, GMP_CS_DELIVERED, GMP_CS_EXPIRED),
		F(cmd_report.status, 0, GMP_CMD_STATUS_MAX) } },
	{ GMP_METER_ALARM, "meter-alarm", GMP_CLASS_TIER_UP, 6, {
		F(meter_alarm.seq, 1, SEQ_MAX), F(meter_alarm.time, 0, T_MAX),
		F(meter_alarm.meter, 1, UINT16_MAX), F(meter_alarm.code, 0, 255),
		F(meter_alarm.active, 0, 1), F4(meter_alarm.value, INT64_MIN, INT64_MAX) } },
	{ GMP_SECURITY, "security", GMP_CLASS_TIER_UP, 7, {
		F(security.seq, 1, SEQ_MAX), F(security.time, 0, T_MAX),
		F(security.interval_s, 1, 86400), F(security.meter, 0, UINT16_MAX),
		F(security.addr, 0, UINT32_MAX), F(security.kind, GMP_SEC_AUTH_FAIL, 255),
		F(security.count, 1, SEQ_MAX) } },
	{ GMP_TOWN_KEY, "town-key", GMP_CLASS_DOWN, 2, {
		F(town_key.tseq, 1, SEQ_MAX), FB(town_key.pk) } },
	{ GMP_HELLO, "hello", GMP_CLASS_HELLO, 7, {
		FB(hello.rm), F(hello.now_ms, 0, T_MAX * 1000), F(hello.clock_trusted, 0, 1),
		F(hello.cmd_floor, 0, SEQ_MAX), F(hello.next_seq, 1, SEQ_MAX),
		F(hello.first_held, 1, SEQ_MAX), F(hello.flags, 0, FLAGS_MAX) } },
	{ GMP_WELCOME, "welcome", GMP_CLASS_TOWN_HS, 10, {
		FB(welcome.rm), FB(welcome.rt), F(welcome.sid, 1, 255),
		F(welcome.now_ms, 0, T_MAX * 1000), F(welcome.upto, 0, SEQ_MAX),
		F(welcome.cmd_next, 1, SEQ_MAX), F8(welcome.reg_import_mwh, 0, MWH_MAX),
		F8(welcome.reg_export_mwh, 0, MWH_MAX), F8(welcome.reg_renew_mwh, 0, MWH_MAX),
		F(welcome.reg_time, 0, T_MAX) } },
	{ GMP_REHELLO, "rehello", GMP_CLASS_TOWN_HS, 1, { F(rehello.reason, 0, 255) } },
};

static const struct gmp_field tariff_fields[3] = {
	{ 0, FK_INT, 0, 1439 }, { 0, FK_INT, -POW_MAX, POW_MAX }, { 0, FK_INT, -POW_MAX, POW_MAX },
};
static const struct gmp_field type_field = { 0, FK_INT, 0, GMP_TYPE_MAX };
#undef LOAN_REF_FIELDS
#undef LOAN_DOWN_FIELDS
#undef F
#undef F4
#undef F8
#undef FB
#undef FBL

static const struct gmp_schema *schema_of(int type)
{
	for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++)
		if (schemas[i].type == type)
			return &schemas[i];
	return NULL;
}

static int64_t *field_ptr(struct gmp_msg *m, const struct gmp_field *f)
{
	return (int64_t *)((char *)m + f->off);
}

static int64_t field_get(const struct gmp_msg *m, const struct gmp_field *f)
{
	return *(const int64_t *)((const char *)m + f->off);
}

const char *gmp_type_name(int type)
{
	const struct gmp_schema *s = schema_of(type);

	return s ? s->name : "unknown";
}

int gmp_type_class(int type)
{
	const struct gmp_schema *s = schema_of(type);

	return s ? s->cls : GMP_CLASS_NONE;
}

bool gmp_is_record(int type)
{
	switch (type) {
	case GMP_READING:
	case GMP_REGISTERS:
	case GMP_ALARM:
	case GMP_ALLOC_REQ:
	case GMP_ALLOC_REL:
	case GMP_KEY_ROTATE:
	case GMP_HOUR:
	case GMP_TOWN_HOUR:
	case GMP_LOAN:
	case GMP_LOAN_ASK:
	case GMP_LOAN_ACCEPT:
	case GMP_LOAN_HOLD:
	case GMP_LOAN_RETURN:
	case GMP_CMD_REPORT:
	case GMP_METER_ALARM:
	case GMP_SECURITY:
		return true;
	default:
		return false;
	}
}

/* Every record type has its seq as its first field. */
int64_t gmp_msg_seq(const struct gmp_msg *m)
{
	return gmp_is_record(m->type) ? m->reading.seq : 0;
}

int gmp_msg_set_seq(struct gmp_msg *m, int64_t seq)
{
	if (!gmp_is_record(m->type))
		return -GMP_E_TYPE;
	m->reading.seq = seq;
	return 0;
}

_Static_assert(offsetof(struct gmp_msg, hour.seq) == offsetof(struct gmp_msg, reading.seq) &&
	       offsetof(struct gmp_msg, town_hour.seq) == offsetof(struct gmp_msg, reading.seq) &&
	       offsetof(struct gmp_msg, loan.seq) == offsetof(struct gmp_msg, reading.seq) &&
	       offsetof(struct gmp_msg, loan_ask.seq) == offsetof(struct gmp_msg, reading.seq) &&
	       offsetof(struct gmp_msg, loan_ref.seq) == offsetof(struct gmp_msg, reading.seq) &&
	       offsetof(struct gmp_msg, cmd_report.seq) == offsetof(struct gmp_msg, reading.seq) &&
	       offsetof(struct gmp_msg, meter_alarm.seq) == offsetof(struct gmp_msg, reading.seq) &&
	       offsetof(struct gmp_msg, security.seq) == offsetof(struct gmp_msg, reading.seq),
	       "every record's seq is its first field");
_Static_assert(offsetof(struct gmp_msg, tariff.tseq) == offsetof(struct gmp_msg, grant.tseq) &&
	       offsetof(struct gmp_msg, town_key.tseq) == offsetof(struct gmp_msg, grant.tseq) &&
	       offsetof(struct gmp_msg, supply.tseq) == offsetof(struct gmp_msg, grant.tseq) &&
	       offsetof(struct gmp_msg, loan_offer.tseq) == offsetof(struct gmp_msg, grant.tseq) &&
	       offsetof(struct gmp_msg, loan_down.tseq) == offsetof(struct gmp_msg, grant.tseq) &&
	       offsetof(struct gmp_msg, signed_cmd.tseq) == offsetof(struct gmp_msg, grant.tseq) &&
	       offsetof(struct gmp_msg, summary.tseq) == offsetof(struct gmp_msg, grant.tseq),
	       "every command's tseq is its first field");
_Static_assert(offsetof(struct gmp_msg, signed_cmd.blob) ==
	       offsetof(struct gmp_msg, signed_cmd.len) + sizeof(int64_t),
	       "FK_BLOB: the bytes follow their length");

/* Every command has its tseq as its first field. */
static bool is_command(int type)
{
	return type == GMP_GRANT || type == GMP_TARIFF || type == GMP_TOWN_KEY ||
	       type == GMP_SUPPLY || type == GMP_LOAN_OFFER || type == GMP_LOAN_CONFIRM ||
	       type == GMP_LOAN_END || type == GMP_SIGNED || type == GMP_TOWN_SUMMARY;
}

int64_t gmp_cmd_tseq(const struct gmp_msg *m)
{
	return is_command(m->type) ? m->grant.tseq : 0;
}

int gmp_cmd_set_tseq(struct gmp_msg *m, int64_t tseq)
{
	if (!is_command(m->type))
		return -GMP_E_TYPE;
	m->grant.tseq = tseq;
	return 0;
}

size_t gmp_pad_len(size_t len)
{
	return (len + GMP_PAD_QUANTUM - 1) / GMP_PAD_QUANTUM * GMP_PAD_QUANTUM;
}

const char *gmp_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0: return "success";
	case GMP_E_SPACE: return "buffer too small";
	case GMP_E_MALFORMED: return "malformed message";
	case GMP_E_TYPE: return "unknown message type";
	case GMP_E_RANGE: return "field out of range";
	case GMP_E_VERSION: return "unsupported protocol version";
	case GMP_E_SHORT: return "truncated envelope";
	case GMP_E_REPLAY: return "replayed or reordered counter";
	case GMP_E_AUTH: return "authentication failed";
	case GMP_E_KEY: return "bad key";
	case GMP_E_SESSION: return "no such session";
	case GMP_E_KIND: return "wrong kind of envelope";
	default: return "unknown error";
	}
}

/* Checks across fields, after each field's own range. */
static int check_msg(const struct gmp_msg *m)
{
	if (m->type == GMP_LOST && m->lost.first > m->lost.last)
		return -GMP_E_RANGE;
	return 0;
}

/* ---- encoding ------------------------------------------------------------ */

static size_t enc_int(int64_t v, enum fkind kind, uint8_t *p, size_t room)
{
	uint64_t u = v >= 0 ? (uint64_t)v : (uint64_t)(-(v + 1));
	bool neg = v < 0;

	if (kind == FK_INT4 && u <= UINT32_MAX)
		return neg ? cbor_encode_negint32((uint32_t)u, p, room) :
			     cbor_encode_uint32((uint32_t)u, p, room);
	if (kind == FK_INT4 || kind == FK_INT8)	/* 8 bytes: always, or when 4 do not fit */
		return neg ? cbor_encode_negint64(u, p, room) : cbor_encode_uint64(u, p, room);
	return neg ? cbor_encode_negint(u, p, room) : cbor_encode_uint(u, p, room);
}

static int put_int(int64_t v, const struct gmp_field *f, uint8_t *buf, size_t size,
		   size_t *pos)
{
	size_t n;

	if (v < f->min || v > f->max)
		return -GMP_E_RANGE;
	n = enc_int(v, f->kind, buf + *pos, size - *pos);
	if (!n)
		return -GMP_E_SPACE;
	*pos += n;
	return 0;
}

static int put_bytes(const uint8_t *b, uint8_t *buf, size_t size, size_t *pos)
{
	size_t n = cbor_encode_bytestring_start(GMP_KEY_LEN, buf + *pos, size - *pos);

	if (!n || size - *pos - n < GMP_KEY_LEN)
		return -GMP_E_SPACE;
	memcpy(buf + *pos + n, b, GMP_KEY_LEN);
	*pos += n + GMP_KEY_LEN;
	return 0;
}

static int put_head(size_t (*fn)(size_t, unsigned char *, size_t), size_t v,
		    uint8_t *buf, size_t size, size_t *pos)
{
	size_t n = fn(v, buf + *pos, size - *pos);

	if (!n)
		return -GMP_E_SPACE;
	*pos += n;
	return 0;
}

static int put_blob(const struct gmp_msg *m, const struct gmp_field *f, uint8_t *buf,
		    size_t size, size_t *pos)
{
	int64_t len = field_get(m, f);
	const uint8_t *b = (const uint8_t *)m + f->off + sizeof(int64_t);
	size_t n;

	if (len < f->min || len > f->max)
		return -GMP_E_RANGE;
	n = cbor_encode_bytestring_start((size_t)len, buf + *pos, size - *pos);
	if (!n || size - *pos - n < (size_t)len)
		return -GMP_E_SPACE;
	memcpy(buf + *pos + n, b, (size_t)len);
	*pos += n + (size_t)len;
	return 0;
}

static int put_field(const struct gmp_msg *m, const struct gmp_field *f, uint8_t *buf,
		     size_t size, size_t *pos)
{
	if (f->kind == FK_BYTES)
		return put_bytes((const uint8_t *)m + f->off, buf, size, pos);
	if (f->kind == FK_BLOB)
		return put_blob(m, f, buf, size, pos);
	return put_int(field_get(m, f), f, buf, size, pos);
}

int gmp_encode(const struct gmp_msg *m, uint8_t *buf, size_t size, size_t *off)
{
	const struct gmp_schema *s = schema_of(m->type);
	size_t pos = *off;
	int rc;

	if (!s)
		return -GMP_E_TYPE;
	if (pos > size)
		return -GMP_E_SPACE;
	rc = check_msg(m);
	if (!rc)
		rc = put_head(cbor_encode_array_start, 1 + s->n + (m->type == GMP_TARIFF),
			      buf, size, &pos);
	if (!rc)
		rc = put_int(m->type, &type_field, buf, size, &pos);
	for (unsigned int i = 0; !rc && i < s->n; i++)
		rc = put_field(m, &s->f[i], buf, size, &pos);
	if (!rc && m->type == GMP_TARIFF) {
		if (m->tariff.n < 1 || m->tariff.n > GMP_TARIFF_MAX)
			return -GMP_E_RANGE;
		rc = put_head(cbor_encode_array_start, (size_t)m->tariff.n, buf, size, &pos);
		for (int64_t i = 0; !rc && i < m->tariff.n; i++) {
			rc = put_head(cbor_encode_array_start, 3, buf, size, &pos);
			if (!rc)
				rc = put_int(m->tariff.p[i].start_min, &tariff_fields[0],
					     buf, size, &pos);
			if (!rc)
				rc = put_int(m->tariff.p[i].import_price, &tariff_fields[1],
					     buf, size, &pos);
			if (!rc)
				rc = put_int(m->tariff.p[i].export_price, &tariff_fields[2],
					     buf, size, &pos);
		}
	}
	if (rc)
		return rc;
	*off = pos;
	return 0;
}

/* ---- decoding: one CBOR head at a time, through libcbor's stream API ---- */

enum tok_kind { TOK_NONE, TOK_INT, TOK_ARRAY, TOK_BYTES, TOK_BAD };

struct tok {
	enum tok_kind kind;
	int64_t v;		/* TOK_INT value, TOK_ARRAY length, TOK_BYTES length */
	const uint8_t *data;	/* TOK_BYTES: inside the input */
};

static void t_uint(void *c, uint64_t v)
{
	struct tok *t = c;

	if (v > (uint64_t)INT64_MAX) {
		t->kind = TOK_BAD;
		return;
	}
	t->kind = TOK_INT;
	t->v = (int64_t)v;
}

static void t_u8(void *c, uint8_t v) { t_uint(c, v); }
static void t_u16(void *c, uint16_t v) { t_uint(c, v); }
static void t_u32(void *c, uint32_t v) { t_uint(c, v); }

static void t_neg(void *c, uint64_t v)
{
	struct tok *t = c;

	if (v > (uint64_t)INT64_MAX) {
		t->kind = TOK_BAD;
		return;
	}
	t->kind = TOK_INT;
	t->v = -(int64_t)v - 1;
}

static void t_n8(void *c, uint8_t v) { t_neg(c, v); }
static void t_n16(void *c, uint16_t v) { t_neg(c, v); }
static void t_n32(void *c, uint32_t v) { t_neg(c, v); }

static void t_array(void *c, size_t n)
{
	struct tok *t = c;

	t->kind = TOK_ARRAY;
	t->v = n > 64 ? 65 : (int64_t)n;
}

/* A definite byte string: libcbor hands the bytes inside the input. */
static void t_bytes(void *c, cbor_data d, size_t n)
{
	struct tok *t = c;

	t->kind = TOK_BYTES;
	t->data = d;
	t->v = n > GMP_BLOB_MAX ? GMP_BLOB_MAX + 1 : (int64_t)n;
}

static void t_bad0(void *c) { ((struct tok *)c)->kind = TOK_BAD; }
static void t_bad_str(void *c, cbor_data d, size_t n) { (void)d; (void)n; t_bad0(c); }
static void t_bad_sz(void *c, size_t n) { (void)n; t_bad0(c); }
static void t_bad64(void *c, uint64_t v) { (void)v; t_bad0(c); }
static void t_bad_f(void *c, float v) { (void)v; t_bad0(c); }
static void t_bad_d(void *c, double v) { (void)v; t_bad0(c); }
static void t_bad_b(void *c, bool v) { (void)v; t_bad0(c); }

static const struct cbor_callbacks tok_cb = {
	.uint8 = t_u8, .uint16 = t_u16, .uint32 = t_u32, .uint64 = t_uint,
	.negint8 = t_n8, .negint16 = t_n16, .negint32 = t_n32, .negint64 = t_neg,
	.byte_string_start = t_bad0, .byte_string = t_bytes,
	.string = t_bad_str, .string_start = t_bad0,
	.indef_array_start = t_bad0, .array_start = t_array,
	.indef_map_start = t_bad0, .map_start = t_bad_sz,
	.tag = t_bad64, .float2 = t_bad_f, .float4 = t_bad_f, .float8 = t_bad_d,
	.undefined = t_bad0, .null = t_bad0, .boolean = t_bad_b, .indef_break = t_bad0,
};

static enum tok_kind next_tok(const uint8_t *buf, size_t len, size_t *pos, struct tok *t)
{
	struct cbor_decoder_result r;

	t->kind = TOK_NONE;
	if (*pos >= len)
		return TOK_BAD;
	r = cbor_stream_decode(buf + *pos, len - *pos, &tok_cb, t);
	if (r.status != CBOR_DECODER_FINISHED || r.read == 0 || r.read > len - *pos ||
	    t->kind == TOK_NONE)
		return TOK_BAD;
	if (t->kind == TOK_BYTES &&
	    (t->data < buf + *pos || (size_t)(t->data - buf) + (size_t)t->v > *pos + r.read))
		return TOK_BAD;	/* never trust a pointer outside what was read */
	*pos += r.read;
	return t->kind;
}

static int get_int(const uint8_t *buf, size_t len, size_t *pos, const struct gmp_field *f,
		   int64_t *out)
{
	struct tok t;

	if (next_tok(buf, len, pos, &t) != TOK_INT)
		return -GMP_E_MALFORMED;
	if (t.v < f->min || t.v > f->max)
		return -GMP_E_RANGE;
	*out = t.v;
	return 0;
}

static int get_field(const uint8_t *buf, size_t len, size_t *pos, const struct gmp_field *f,
		     struct gmp_msg *m)
{
	struct tok t;

	if (f->kind != FK_BYTES && f->kind != FK_BLOB)
		return get_int(buf, len, pos, f, field_ptr(m, f));
	if (next_tok(buf, len, pos, &t) != TOK_BYTES)
		return -GMP_E_MALFORMED;
	if (f->kind == FK_BLOB) {
		if (t.v < f->min || t.v > f->max)
			return -GMP_E_RANGE;
		*field_ptr(m, f) = t.v;
		memcpy((uint8_t *)m + f->off + sizeof(int64_t), t.data, (size_t)t.v);
		return 0;
	}
	if (t.v != GMP_KEY_LEN)
		return -GMP_E_RANGE;
	memcpy((uint8_t *)m + f->off, t.data, GMP_KEY_LEN);
	return 0;
}

int gmp_decode_next(const uint8_t *buf, size_t len, size_t *off, struct gmp_msg *m)
{
	const struct gmp_schema *s;
	size_t pos = *off;
	struct tok t;
	int64_t type;
	int rc;

	if (pos >= len)
		return 0;
	if (buf[pos] == 0x00) {
		/* padding: zero bytes to the end, nothing else */
		for (size_t i = pos; i < len; i++)
			if (buf[i])
				return -GMP_E_MALFORMED;
		*off = len;
		return 0;
	}
	if (next_tok(buf, len, &pos, &t) != TOK_ARRAY || t.v < 2)
		return -GMP_E_MALFORMED;
	rc = get_int(buf, len, &pos, &type_field, &type);
	if (rc)
		return rc == -GMP_E_RANGE ? -GMP_E_TYPE : rc;
	s = schema_of((int)type);
	if (!s)
		return -GMP_E_TYPE;
	if (t.v != 1 + s->n + (type == GMP_TARIFF))
		return -GMP_E_MALFORMED;
	memset(m, 0, sizeof(*m));
	m->type = (int)type;
	for (unsigned int i = 0; i < s->n; i++) {
		rc = get_field(buf, len, &pos, &s->f[i], m);
		if (rc)
			return rc;
	}
	if (type == GMP_TARIFF) {
		if (next_tok(buf, len, &pos, &t) != TOK_ARRAY)
			return -GMP_E_MALFORMED;
		if (t.v < 1 || t.v > GMP_TARIFF_MAX)
			return -GMP_E_RANGE;
		m->tariff.n = t.v;
		for (int64_t i = 0; i < m->tariff.n; i++) {
			struct tok a;

			if (next_tok(buf, len, &pos, &a) != TOK_ARRAY || a.v != 3)
				return -GMP_E_MALFORMED;
			rc = get_int(buf, len, &pos, &tariff_fields[0], &m->tariff.p[i].start_min);
			if (!rc)
				rc = get_int(buf, len, &pos, &tariff_fields[1],
					     &m->tariff.p[i].import_price);
			if (!rc)
				rc = get_int(buf, len, &pos, &tariff_fields[2],
					     &m->tariff.p[i].export_price);
			if (rc)
				return rc;
		}
	}
	rc = check_msg(m);
	if (rc)
		return rc;
	*off = pos;
	return 1;
}

/* ---- keys ------------------------------------------------------------------ */

void gmp_keypair_generate(struct gmp_keypair *kp)
{
	crypto_kx_keypair(kp->pk, kp->sk);
}

int gmp_keypair_from_secret(struct gmp_keypair *kp, const uint8_t sk[GMP_KEY_LEN])
{
	memcpy(kp->sk, sk, GMP_KEY_LEN);
	if (crypto_scalarmult_base(kp->pk, kp->sk)) {
		sodium_memzero(kp, sizeof(*kp));
		return -GMP_E_KEY;
	}
	return 0;
}

int gmp_lt_meter(struct gmp_lt *k, const struct gmp_keypair *meter,
		 const uint8_t town_pk[GMP_KEY_LEN])
{
	memset(k, 0, sizeof(*k));
	if (crypto_kx_client_session_keys(k->rx, k->tx, meter->pk, meter->sk, town_pk))
		return -GMP_E_KEY;
	return 0;
}

int gmp_lt_town(struct gmp_lt *k, const struct gmp_keypair *town,
		const uint8_t meter_pk[GMP_KEY_LEN])
{
	memset(k, 0, sizeof(*k));
	if (crypto_kx_server_session_keys(k->rx, k->tx, town->pk, town->sk, meter_pk))
		return -GMP_E_KEY;
	return 0;
}

void gmp_lt_wipe(struct gmp_lt *k)
{
	sodium_memzero(k, sizeof(*k));
}

/* ---- envelopes --------------------------------------------------------------- */

#define AD_HDR		6
#define AD_MAX		(AD_HDR + 1 + GMP_NONCE_LEN)

/* AAD: frame version/type, flags, src, dst (6 bytes) + the envelope's prefix. */
static size_t make_ad(const struct gmp_addr *a, const uint8_t *prefix, size_t plen,
		      uint8_t *ad)
{
	ad[0] = (uint8_t)(1u << 4 | (a->type & 0xf));
	ad[1] = a->flags & 0xf;
	ad[2] = (uint8_t)(a->src >> 8);
	ad[3] = (uint8_t)a->src;
	ad[4] = (uint8_t)(a->dst >> 8);
	ad[5] = (uint8_t)a->dst;
	memcpy(ad + AD_HDR, prefix, plen);
	return AD_HDR + plen;
}

static void ctr_nonce(uint64_t ctr, uint8_t *nonce)
{
	memset(nonce, 0, GMP_NONCE_LEN);
	for (int i = 0; i < 8; i++)
		nonce[i] = (uint8_t)(ctr >> (8 * i));
}

/* Plaintext padded with zero bytes into buf (GMP_PLAIN_MAX); its length. */
static size_t pad_into(uint8_t *buf, const uint8_t *plain, size_t len)
{
	size_t n = gmp_pad_len(len);

	memcpy(buf, plain, len);
	memset(buf + len, 0, n - len);
	return n;
}

int gmp_hs_seal(const struct gmp_lt *k, const struct gmp_addr *a, const uint8_t *plain,
		size_t len, uint8_t *out, size_t out_size)
{
	uint8_t padded[GMP_HS_PLAIN_MAX], ad[AD_MAX];
	unsigned long long clen;
	size_t n;

	if (len > GMP_HS_PLAIN_MAX)
		return -GMP_E_SPACE;
	n = pad_into(padded, plain, len);
	if (out_size < n + GMP_HS_OVERHEAD)
		return -GMP_E_SPACE;
	out[0] = GMP_ENV_HANDSHAKE;
	randombytes_buf(out + 1, GMP_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 1 + GMP_NONCE_LEN, &clen, padded, n,
						   ad, make_ad(a, out, 1 + GMP_NONCE_LEN, ad),
						   NULL, out + 1, k->tx);
	sodium_memzero(padded, n);
	return (int)(1 + GMP_NONCE_LEN + clen);
}

int gmp_hs_open(const struct gmp_lt *k, const struct gmp_addr *a, const uint8_t *env,
		size_t env_len, uint8_t *plain, size_t plain_size)
{
	const size_t p = 1 + GMP_NONCE_LEN;
	uint8_t ad[AD_MAX];
	unsigned long long mlen;
	uint8_t sid;
	int kind = gmp_envelope_kind(env, env_len, &sid);

	if (kind < 0)
		return kind;
	if (kind != GMP_KIND_HANDSHAKE)
		return -GMP_E_KIND;
	if (env_len < p + GMP_TAG_LEN)
		return -GMP_E_SHORT;
	if (plain_size < env_len - p - GMP_TAG_LEN)
		return -GMP_E_SPACE;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &mlen, NULL, env + p, env_len - p,
						       ad, make_ad(a, env, p, ad), env + 1, k->rx))
		return -GMP_E_AUTH;
	return (int)mlen;
}

static void derive_one(uint8_t out[GMP_KEY_LEN], const uint8_t lt[GMP_KEY_LEN],
		       const uint8_t *rm, const uint8_t *rt, uint8_t sid)
{
	static const char label[] = "gmp2-session";
	crypto_generichash_state st;

	crypto_generichash_init(&st, lt, GMP_KEY_LEN, GMP_KEY_LEN);
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label) - 1);
	crypto_generichash_update(&st, rm, GMP_RAND_LEN);
	crypto_generichash_update(&st, rt, GMP_RAND_LEN);
	crypto_generichash_update(&st, &sid, 1);
	crypto_generichash_final(&st, out, GMP_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
}

void gmp_session_derive(struct gmp_session *s, const struct gmp_lt *k,
			const uint8_t rm[GMP_RAND_LEN], const uint8_t rt[GMP_RAND_LEN],
			uint8_t sid)
{
	memset(s, 0, sizeof(*s));
	derive_one(s->rx_key, k->rx, rm, rt, sid);
	derive_one(s->tx_key, k->tx, rm, rt, sid);
	s->sid = sid;
	s->up = true;
}

void gmp_session_wipe(struct gmp_session *s)
{
	sodium_memzero(s, sizeof(*s));
}

int gmp_envelope_kind(const uint8_t *env, size_t len, uint8_t *sid)
{
	if (len < 1)
		return -GMP_E_SHORT;
	if (env[0] == GMP_ENV_HANDSHAKE)
		return GMP_KIND_HANDSHAKE;
	if (env[0] != GMP_ENV_SESSION)
		return -GMP_E_VERSION;
	if (len < 2)
		return -GMP_E_SHORT;
	if (sid)
		*sid = env[1];
	return GMP_KIND_SESSION;
}

/*
 * The counter of a session envelope: canonical LEB128 after kind and sid,
 * at most 64 bits, not 0. Returns the prefix length or a negative error.
 */
static int parse_ctr(const uint8_t *env, size_t env_len, uint64_t *ctr)
{
	uint64_t c = 0;
	size_t p = 2;
	int shift = 0;

	for (;;) {
		uint8_t b;

		if (p >= env_len)
			return -GMP_E_SHORT;
		b = env[p++];
		if (shift == 63 && (b & 0x7e))
			return -GMP_E_AUTH;	/* more than 64 bits */
		c |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
		shift += 7;
		if (shift > 63)
			return -GMP_E_AUTH;
	}
	/* canonical LEB128 only: the counter has one encoding */
	if (p > 3 && env[p - 1] == 0)
		return -GMP_E_AUTH;
	if (c == 0)
		return -GMP_E_AUTH;
	*ctr = c;
	return (int)p;
}

int gmp_envelope_nonce(const uint8_t *env, size_t len, uint8_t nonce[GMP_NONCE_LEN])
{
	uint64_t ctr;
	uint8_t sid;
	int kind = gmp_envelope_kind(env, len, &sid), p;

	if (kind == GMP_KIND_HANDSHAKE) {
		if (len < GMP_HS_OVERHEAD)
			return -GMP_E_SHORT;
		memcpy(nonce, env + 1, GMP_NONCE_LEN);
		return kind;
	}
	if (kind < 0)
		return kind;
	p = parse_ctr(env, len, &ctr);
	if (p < 0)
		return p;
	ctr_nonce(ctr, nonce);
	return kind;
}

int gmp_seal(struct gmp_session *s, const struct gmp_addr *a,
	     const uint8_t *plain, size_t len, uint8_t *out, size_t out_size)
{
	uint8_t nonce[GMP_NONCE_LEN], padded[GMP_PLAIN_MAX], ad[AD_MAX];
	unsigned long long clen;
	uint64_t ctr, v;
	size_t p = 0, n;

	if (!s->up || !s->sid)
		return -GMP_E_SESSION;
	if (s->tx_ctr == UINT64_MAX)
		return -GMP_E_RANGE;
	ctr = s->tx_ctr + 1;
	/* worst case first, so a short buffer never consumes a counter */
	if (len > GMP_PLAIN_MAX || out_size < gmp_pad_len(len) + GMP_ENV_OVERHEAD_MAX)
		return -GMP_E_SPACE;
	n = pad_into(padded, plain, len);
	out[p++] = GMP_ENV_SESSION;
	out[p++] = s->sid;
	v = ctr;
	do {
		out[p++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	ctr_nonce(ctr, nonce);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + p, &clen, padded, n,
						   ad, make_ad(a, out, p, ad),
						   NULL, nonce, s->tx_key);
	sodium_memzero(padded, n);
	s->tx_ctr = ctr;
	return (int)(p + clen);
}

int gmp_open(struct gmp_session *s, const struct gmp_addr *a,
	     const uint8_t *env, size_t env_len, uint8_t *plain, size_t plain_size,
	     uint64_t *ctr)
{
	uint8_t nonce[GMP_NONCE_LEN], ad[AD_MAX];
	unsigned long long mlen;
	uint64_t c = 0;
	uint8_t sid = 0;
	int kind = gmp_envelope_kind(env, env_len, &sid), p;

	if (kind < 0)
		return kind;
	if (kind != GMP_KIND_SESSION)
		return -GMP_E_KIND;
	if (!s->up || sid != s->sid)
		return -GMP_E_SESSION;
	p = parse_ctr(env, env_len, &c);
	if (p < 0)
		return p;
	if (env_len - (size_t)p < GMP_TAG_LEN)
		return -GMP_E_SHORT;
	if (plain_size < env_len - (size_t)p - GMP_TAG_LEN)
		return -GMP_E_SPACE;
	if (c <= s->rx_ctr)
		return -GMP_E_REPLAY;
	ctr_nonce(c, nonce);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &mlen, NULL, env + p,
						       env_len - (size_t)p, ad,
						       make_ad(a, env, (size_t)p, ad), nonce,
						       s->rx_key))
		return -GMP_E_AUTH;
	s->rx_ctr = c;
	if (ctr)
		*ctr = c;
	return (int)mlen;
}

/* ---- hex -------------------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int gmp_hex_decode(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo;

		if (hi < 0)
			return -1;
		lo = hexval(hex[2 * i + 1]);
		if (lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[2 * n] == '\0' ? 0 : -1;
}

void gmp_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}
