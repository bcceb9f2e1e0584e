/* SPDX-License-Identifier: GPL-2.0 */
/*
 * E-mail notices (Documentation/notices.md "E-mail"): an RFC 5322 message
 * (MIME, text/plain UTF-8 quoted-printable, optionally the PDF letter
 * attached) sent over SMTP with libcurl.
 */
#ifndef NOTICE_MAIL_H
#define NOTICE_MAIL_H

#include <stddef.h>
#include <stdint.h>

#include "notify_config.h"

struct mail_in {
	const char *from_name, *from_addr;	/* from_name may be "" */
	const char *to_name, *to_addr;
	const char *subject, *body;		/* UTF-8 */
	const char *message_id;			/* without <> */
	int64_t date;				/* UTC s */
	const unsigned char *pdf;		/* NULL: no attachment */
	size_t pdf_len;
	const char *pdf_name;
};

/* A plausible bare address (no spaces, quotes, angle brackets or line ends). */
int mail_addr_ok(const char *a);
/* The whole message with CRLF line ends, malloc'd (NUL-terminated), or NULL. */
char *mail_compose(const struct mail_in *in, size_t *len);

/*
 * Send msg from c->from_address to rcpt through c->smtp_url. handing() is
 * called once the whole message is given to the server, before the final
 * "." that makes it accept (the point of no return); when it returns nonzero the transfer is
 * aborted there and nothing is accepted. 0 sent, -1 temporary
 * failure, -2 permanent (a 5xx answer); err says why.
 */
int mail_send(const struct notify_config *c, const char *rcpt, const char *msg, size_t len,
	      int (*handing)(void *ctx), void *ctx, char *err, size_t errlen);

#endif
