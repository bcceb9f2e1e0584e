// SPDX-License-Identifier: GPL-2.0
/* TOTP (RFC 6238) on HOTP (RFC 4226) with OpenSSL's HMAC-SHA-1; base32 (RFC 4648). */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "totp.h"

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int totp_b32_encode(const uint8_t *in, size_t len, char *out, size_t size)
{
	size_t need = (len * 8 + 4) / 5, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (need + 1 > size)
		return -1;
	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = b32_alphabet[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits)
		out[o++] = b32_alphabet[(acc << (5 - bits)) & 31];
	out[o] = '\0';
	return (int)o;
}

int totp_b32_decode(const char *in, uint8_t *out, size_t size)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (; *in; in++) {
		char c = *in;
		int v;

		if (c == ' ' || c == '=' || c == '\t')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= '2' && c <= '7')
			v = c - '2' + 26;
		else
			return -1;
		acc = (acc << 5) | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			if (o == size)
				return -1;
			out[o++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	return (int)o;
}

uint32_t totp_hotp(const uint8_t *key, size_t keylen, uint64_t counter, int digits)
{
	uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0, off;
	uint32_t bin, mod = 1;

	for (int i = 7; i >= 0; i--) {
		msg[i] = (uint8_t)counter;
		counter >>= 8;
	}
	if (!HMAC(EVP_sha1(), key, (int)keylen, msg, sizeof(msg), mac, &maclen) || maclen < 20)
		return UINT32_MAX;	/* never a valid code: it has more than 9 digits */
	off = mac[maclen - 1] & 0x0f;	/* dynamic truncation, RFC 4226 5.3 */
	bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
	      ((uint32_t)mac[off + 2] << 8) | mac[off + 3];
	if (digits < 1)
		digits = 1;
	if (digits > 9)
		digits = 9;
	for (int i = 0; i < digits; i++)
		mod *= 10;
	return bin % mod;
}

/* The 30-second step of UTC time t (floor, so times before 1970 do not share step 0). */
static int64_t step_of(int64_t t)
{
	return t >= 0 ? t / TOTP_STEP_S : -((-t + TOTP_STEP_S - 1) / TOTP_STEP_S);
}

uint32_t totp_code(const uint8_t *key, size_t keylen, int64_t t)
{
	return totp_hotp(key, keylen, (uint64_t)step_of(t), TOTP_DIGITS);
}

bool totp_check(const uint8_t *key, size_t keylen, const char *code, int64_t t,
		int64_t *last_step)
{
	uint32_t typed = 0;
	int ndigits = 0;
	int64_t now = step_of(t);
	bool ok = false;
	int64_t matched = 0;

	if (!code)
		return false;
	for (; *code; code++) {
		if (*code == ' ' || *code == '-')
			continue;
		if (*code < '0' || *code > '9' || ++ndigits > TOTP_DIGITS)
			return false;
		typed = typed * 10 + (uint32_t)(*code - '0');
	}
	if (ndigits != TOTP_DIGITS)
		return false;
	/* Every step of the window is computed, whether or not one matched. */
	for (int64_t s = now - 1; s <= now + 1; s++) {
		bool eq = totp_hotp(key, keylen, (uint64_t)s, TOTP_DIGITS) == typed;

		if (eq && s > *last_step && !ok) {
			ok = true;
			matched = s;
		}
	}
	if (ok)
		*last_step = matched;
	return ok;
}

/* Percent-encoding of everything but RFC 3986's unreserved characters. */
static int pct(const char *s, char *out, size_t size, size_t *o)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int n;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			if (*o + 1 >= size)
				return -1;
			out[(*o)++] = (char)c;
			continue;
		}
		n = snprintf(out + *o, size - *o, "%%%02X", c);
		if (n < 0 || (size_t)n >= size - *o)
			return -1;
		*o += (size_t)n;
	}
	out[*o] = '\0';
	return 0;
}

static int lit(const char *s, char *out, size_t size, size_t *o)
{
	size_t n = strlen(s);

	if (*o + n >= size)
		return -1;
	memcpy(out + *o, s, n + 1);
	*o += n;
	return 0;
}

int totp_uri(const char *issuer, const char *account, const char *b32, char *out, size_t size)
{
	size_t o = 0;

	if (!size)
		return -1;
	out[0] = '\0';
	if (lit("otpauth://totp/", out, size, &o) || pct(issuer, out, size, &o) ||
	    lit(":", out, size, &o) || pct(account, out, size, &o) ||
	    lit("?secret=", out, size, &o) || pct(b32, out, size, &o) ||
	    lit("&issuer=", out, size, &o) || pct(issuer, out, size, &o) ||
	    lit("&algorithm=SHA1&digits=6&period=30", out, size, &o)) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}
