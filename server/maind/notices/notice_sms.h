/* SPDX-License-Identifier: GPL-2.0 */
/*
 * SMS through a GSM modem in the SIM900 dialect, text mode
 * (Documentation/notices.md "SMS"): the text converted to what the modem
 * can carry (IRA characters it maps to the GSM 7-bit default alphabet),
 * split into numbered parts, and sent with AT+CMGF=1 / AT+CMGS.
 */
#ifndef NOTICE_SMS_H
#define NOTICE_SMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMS_SEPTETS	160	/* one message, GSM 7-bit default alphabet */
#define SMS_PARTS_MAX	9	/* "(k/n) " prefixes stay 6 characters */

struct sms_parts {
	unsigned n;
	bool truncated;			/* the text did not fit in max_parts */
	char part[SMS_PARTS_MAX][SMS_SEPTETS + 1];
};

/* Septets a text of IRA characters takes (extension characters count 2). */
unsigned sms_septets(const char *ira);
/* UTF-8 text -> parts of at most SMS_SEPTETS septets (max_parts 1..9). */
void sms_compose(const char *utf8, unsigned max_parts, struct sms_parts *out);
/* A number the modem accepts: optional '+', 3..20 digits. */
bool sms_number_ok(const char *number);

struct sms_hooks {
	/* Just before part k's Ctrl-Z (the point of no return); nonzero aborts (ESC). */
	int (*handing)(void *ctx, unsigned k);
	/* Part k was accepted by the network with message reference mr. */
	void (*sent)(void *ctx, unsigned k, int mr);
	void *ctx;
};

enum sms_result { SMS_OK = 0, SMS_TEMPORARY = -1, SMS_PERMANENT = -2 };

/*
 * Send parts first..n-1 to number through the modem on device. The
 * answer to each message is awaited up to timeout_s. On failure err says
 * why (e.g. "+CMS ERROR: 42 after AT+CMGS").
 */
enum sms_result sms_send(const char *device, uint32_t baud, uint32_t timeout_s,
			 const char *number, const struct sms_parts *p, unsigned first,
			 const struct sms_hooks *h, char *err, size_t errlen);

#endif
