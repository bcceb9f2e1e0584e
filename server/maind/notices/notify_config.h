/* SPDX-License-Identifier: GPL-2.0 */
/*
 * notify.conf, maind-notify's configuration (Documentation/notices.md).
 * Strict like maind.conf: unknown sections and keys, bad values and
 * missing required keys are errors naming file, line and key.
 */
#ifndef NOTIFY_CONFIG_H
#define NOTIFY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* none: plain SMTP; opportunistic: STARTTLS when offered; required: TLS or no mail */
enum notify_tls { NOTIFY_TLS_NONE, NOTIFY_TLS_TRY, NOTIFY_TLS_REQUIRED };

struct notify_config {
	/* [database] */
	char conninfo[512];
	/* [retry] */
	uint32_t max_attempts;		/* then failed and reported, 1..100 */
	uint32_t backoff_first_s;	/* wait after the first failure, doubling */
	uint32_t backoff_max_s;		/* longest wait between attempts */
	uint32_t poll_s;		/* look for due notices at least this often */
	/* [email] (url empty: no e-mail) */
	char smtp_url[256];		/* smtp://host:25, smtps://host:465 */
	char from_address[128], from_name[128];
	char user[128];
	char password[128];		/* read from password_file (mode 0600) */
	enum notify_tls tls;
	char ca_file[256];
	char domain[128];		/* right side of Message-IDs */
	uint32_t email_timeout_s;
	bool attach_letter;		/* bills: the PDF letter attached */
	/* [sms] (device empty: no SMS) */
	char sms_device[256];
	uint32_t sms_baud;
	uint32_t sms_timeout_s;		/* for the network's answer to a message */
	uint32_t sms_max_parts;		/* longer texts are truncated */
	/* [post] (spool empty: no letters) */
	char spool[256];
	char sender[512];		/* the return address, lines separated by '|' */
};

void notify_config_defaults(struct notify_config *c);
/* Parse path; on error -1 with "file:line: [section] key 'k': why" in err. */
int notify_config_load(struct notify_config *c, const char *path, char *err, size_t errlen);

#endif
