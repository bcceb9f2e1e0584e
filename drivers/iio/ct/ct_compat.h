/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel/userspace shim for ct_metering.c: the kernel types and 64-bit
 * division helpers, implemented with the C library in userspace.
 */
#ifndef CT_COMPAT_H
#define CT_COMPAT_H

#ifdef __KERNEL__
#include <linux/bitops.h>
#include <linux/build_bug.h>
#include <linux/errno.h>
#include <linux/math64.h>
#include <linux/string.h>
#include <linux/types.h>
#else
#include <assert.h>		/* static_assert */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/cdefs.h>		/* __always_inline */

typedef __INT16_TYPE__ s16;
typedef __UINT16_TYPE__ u16;
typedef __INT32_TYPE__ s32;
typedef __UINT32_TYPE__ u32;
typedef __INT64_TYPE__ s64;
typedef __UINT64_TYPE__ u64;

static inline s64 div64_s64(s64 a, s64 b)
{
	return a / b;
}

static inline u64 div64_u64(u64 a, u64 b)
{
	return a / b;
}

static inline u64 mul_u64_u64_div_u64(u64 a, u64 b, u64 c)
{
	return (u64)((__uint128_t)a * b / c);
}

static inline u64 mul_u64_u64_shr(u64 a, u64 b, unsigned int shift)
{
	return (u64)(((__uint128_t)a * b) >> shift);
}

static inline int fls64(u64 x)
{
	return x ? 64 - __builtin_clzll(x) : 0;
}
#endif /* __KERNEL__ */

#endif /* CT_COMPAT_H */
