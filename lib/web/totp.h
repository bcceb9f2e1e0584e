/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TOTP (RFC 6238) second factor for operators: HMAC-SHA-1, 30 s steps,
 * 6 digits: what every authenticator app reads from an otpauth:// URI.
 * Secrets are 20 random bytes, shown and stored in RFC 4648 base32.
 */
#ifndef GM_WEB_TOTP_H
#define GM_WEB_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOTP_SECRET_LEN	20
#define TOTP_B32_LEN	32	/* base32 of 20 bytes, no padding */
#define TOTP_STEP_S	30
#define TOTP_DIGITS	6

/* RFC 4648 base32 (upper case, no padding); the length written, or -1 if size is too small. */
int totp_b32_encode(const uint8_t *in, size_t len, char *out, size_t size);
/* Decodes base32 (case-insensitive, spaces and '=' ignored); bytes written or -1. */
int totp_b32_decode(const char *in, uint8_t *out, size_t size);

/* The code for counter step (RFC 4226 HOTP with digits digits). */
uint32_t totp_hotp(const uint8_t *key, size_t keylen, uint64_t counter, int digits);
/* The 6-digit code at UTC time t. */
uint32_t totp_code(const uint8_t *key, size_t keylen, int64_t t);

/*
 * Check a code typed at time t against steps t-1..t+1 (clock drift), never
 * accepting a step at or before *last_step (a code used once cannot be
 * replayed); on success *last_step is the step that matched. code is the
 * text typed (spaces allowed). true when accepted.
 */
bool totp_check(const uint8_t *key, size_t keylen, const char *code, int64_t t,
		int64_t *last_step);

/* "otpauth://totp/ISSUER:ACCOUNT?secret=B32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30",
 * percent-encoded; 0 or -1 if size is too small. */
int totp_uri(const char *issuer, const char *account, const char *b32, char *out, size_t size);

#endif
