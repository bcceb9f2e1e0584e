/* SPDX-License-Identifier: GPL-2.0 */
#ifndef GM_CRC32_H
#define GM_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320), as zlib's crc32(). Start with crc = 0. */
uint32_t gm_crc32(uint32_t crc, const void *buf, size_t len);

#endif
