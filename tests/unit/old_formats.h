/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test helper: meterd's state as the code before issue 10 wrote it, built
 * from the formats' definitions (that code is gone), for the migration
 * tests. Nothing here is shared with the code under test.
 *
 * Store record "GMR1": header { magic u32 = "GMR1", type u16, reserved u16,
 * len u32, crc u32, seq u64 } (host order), then the payload; crc is the
 * CRC-32 (IEEE 802.3, reflected 0xedb88320, as zlib's crc32()) of the
 * header with crc = 0 followed by the payload.
 *
 * Meter state, layout version 2: the struct below.
 */
#ifndef GM_TEST_OLD_FORMATS_H
#define GM_TEST_OLD_FORMATS_H

#include <stdint.h>
#include <string.h>

#include "persist.h"

struct old_meter_persist_v2 {
	uint32_t version, size, prot_state, remote_state;
	uint64_t total_trips;
	struct registers reg;
	struct meter_counters ctr;
};

static inline uint32_t old_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
	}
	return ~crc;
}

/* One "GMR1" record into out; returns its length. */
static inline size_t old_record(uint8_t *out, uint16_t type, uint64_t seq, const void *payload, uint32_t len)
{
	struct {
		uint32_t magic;
		uint16_t type, reserved;
		uint32_t len, crc;
		uint64_t seq;
	} h = { 0x31524d47u, type, 0, len, 0, seq };

	h.crc = old_crc32(old_crc32(0, &h, sizeof(h)), payload, len);
	memcpy(out, &h, sizeof(h));
	memcpy(out + sizeof(h), payload, len);
	return sizeof(h) + len;
}

#endif
