// SPDX-License-Identifier: GPL-2.0
/* E-mail notices (notice_mail.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "notice_mail.h"

struct sbuf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);

		if (!p) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

int mail_addr_ok(const char *a)
{
	const char *at = strchr(a, '@');

	return at && at != a && at[1] && !strchr(at + 1, '@') && !strpbrk(a, " \t\r\n<>\"(),;\\") &&
	       strlen(a) < 255;
}

static bool ascii_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* Header text: line ends become spaces (no header injection). */
static char *one_line(const char *s)
{
	char *t = strdup(s);

	for (char *p = t; p && *p; p++)
		if (*p == '\r' || *p == '\n' || *p == '\t')
			*p = ' ';
	return t;
}

/*
 * A header value as RFC 2047 encoded words (UTF-8, base64) of at most 39
 * bytes each (64 characters a word: with the longest header name, lines
 * stay under 76), never splitting a character, folded one word per line.
 */
static void encoded_words(struct sbuf *b, const char *s)
{
	size_t n = strlen(s), off = 0;

	while (off < n) {
		size_t k = n - off > 39 ? 39 : n - off;
		char b64[80];

		while (off + k < n && k && ((unsigned char)s[off + k] & 0xc0) == 0x80)
			k--;	/* not in the middle of a character */
		sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)s + off, k,
				  sodium_base64_VARIANT_ORIGINAL);
		if (off)
			sb_str(b, "\r\n ");
		sb_str(b, "=?UTF-8?B?");
		sb_str(b, b64);
		sb_str(b, "?=");
		off += k;
	}
}

static void header_text(struct sbuf *b, const char *name, const char *value)
{
	char *v = one_line(value);

	sb_str(b, name);
	sb_str(b, ": ");
	if (v && ascii_printable(v) && strlen(v) < 900)
		sb_str(b, v);
	else if (v)
		encoded_words(b, v);
	sb_str(b, "\r\n");
	free(v);
}

/* "Name" <addr> (the name quoted, or encoded when not ASCII). */
static void header_addr(struct sbuf *b, const char *name, const char *dname, const char *addr)
{
	char *v = one_line(dname ? dname : "");

	sb_str(b, name);
	sb_str(b, ": ");
	if (v && *v) {
		if (ascii_printable(v)) {
			sb_str(b, "\"");
			for (const char *p = v; *p; p++) {
				if (*p == '"' || *p == '\\')
					sb_str(b, "\\");
				sb_add(b, p, 1);
			}
			sb_str(b, "\"");
			sb_str(b, " ");
		} else {
			encoded_words(b, v);
			sb_str(b, "\r\n ");	/* the address on a line of its own */
		}
	}
	sb_str(b, "<");
	sb_str(b, addr);
	sb_str(b, ">\r\n");
	free(v);
}

/* Quoted-printable (RFC 2045 6.7), lines of at most 76 characters, CRLF. */
static void quoted_printable(struct sbuf *b, const char *s)
{
	size_t col = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char enc[4];
		size_t n;

		if (c == '\r')
			continue;
		if (c == '\n') {
			sb_str(b, "\r\n");
			col = 0;
			continue;
		}
		if ((c == ' ' || c == '\t') && (s[1] == '\n' || s[1] == '\r' || !s[1])) {
			snprintf(enc, sizeof(enc), "=%02X", c);	/* trailing white space */
		} else if ((c >= 33 && c <= 126 && c != '=') || c == ' ' || c == '\t') {
			enc[0] = (char)c;
			enc[1] = '\0';
		} else {
			snprintf(enc, sizeof(enc), "=%02X", c);
		}
		n = strlen(enc);
		if (col + n > 75) {
			sb_str(b, "=\r\n");
			col = 0;
		}
		sb_str(b, enc);
		col += n;
	}
	sb_str(b, "\r\n");
}

static void base64_lines(struct sbuf *b, const unsigned char *d, size_t n)
{
	for (size_t off = 0; off < n; off += 57) {
		char line[80];
		size_t k = n - off > 57 ? 57 : n - off;

		sodium_bin2base64(line, sizeof(line), d + off, k, sodium_base64_VARIANT_ORIGINAL);
		sb_str(b, line);
		sb_str(b, "\r\n");
	}
}

char *mail_compose(const struct mail_in *in, size_t *len)
{
	struct sbuf b = { 0 };
	char date[64], boundary[96];
	time_t t = (time_t)in->date;
	struct tm tm;

	if (!mail_addr_ok(in->from_addr) || !mail_addr_ok(in->to_addr) ||
	    strpbrk(in->message_id, "<> \r\n"))
		return NULL;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	header_text(&b, "Date", date);
	header_addr(&b, "From", in->from_name, in->from_addr);
	header_addr(&b, "To", in->to_name, in->to_addr);
	header_text(&b, "Subject", in->subject);
	sb_str(&b, "Message-ID: <");
	sb_str(&b, in->message_id);
	sb_str(&b, ">\r\nMIME-Version: 1.0\r\n");
	if (in->pdf) {
		snprintf(boundary, sizeof(boundary), "=_gm_%s", in->message_id);
		boundary[strcspn(boundary, "@")] = '\0';
		sb_str(&b, "Content-Type: multipart/mixed; boundary=\"");
		sb_str(&b, boundary);
		sb_str(&b, "\"\r\n\r\nThis is a MIME message.\r\n--");
		sb_str(&b, boundary);
		sb_str(&b, "\r\n");
	}
	sb_str(&b, "Content-Type: text/plain; charset=UTF-8\r\n"
		   "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	quoted_printable(&b, in->body);
	if (in->pdf) {
		sb_str(&b, "--");
		sb_str(&b, boundary);
		sb_str(&b, "\r\nContent-Type: application/pdf; name=\"");
		sb_str(&b, in->pdf_name);
		sb_str(&b, "\"\r\nContent-Disposition: attachment; filename=\"");
		sb_str(&b, in->pdf_name);
		sb_str(&b, "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
		base64_lines(&b, in->pdf, in->pdf_len);
		sb_str(&b, "--");
		sb_str(&b, boundary);
		sb_str(&b, "--\r\n");
	}
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

struct upload {
	const char *msg;
	size_t len, off;
	int (*handing)(void *ctx);
	void *ctx;
	bool handed;
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nitems;

	if (u->off == u->len) {
		/* curl sends the terminating "." next: the server then accepts */
		if (!u->handed && u->handing && u->handing(u->ctx))
			return CURL_READFUNC_ABORT;	/* no record of it: not sent */
		u->handed = true;
		return 0;
	}
	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(buf, u->msg + u->off, n);
	u->off += n;
	return n;
}

int mail_send(const struct notify_config *c, const char *rcpt, const char *msg, size_t len,
	      int (*handing)(void *ctx), void *ctx, char *err, size_t errlen)
{
	struct upload u = { msg, len, 0, handing, ctx, false };
	char from[160], to[300], cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *rcpts = NULL;
	CURL *h = curl_easy_init();
	CURLcode rc;
	long code = 0;

	if (!h) {
		snprintf(err, errlen, "libcurl: no handle");
		return -1;
	}
	snprintf(from, sizeof(from), "<%s>", c->from_address);
	snprintf(to, sizeof(to), "<%s>", rcpt);
	rcpts = curl_slist_append(rcpts, to);
	curl_easy_setopt(h, CURLOPT_URL, c->smtp_url);
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(h, CURLOPT_READDATA, &u);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)c->email_timeout_s);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)c->email_timeout_s * 4);
	curl_easy_setopt(h, CURLOPT_USE_SSL, c->tls == NOTIFY_TLS_NONE ? (long)CURLUSESSL_NONE :
			 c->tls == NOTIFY_TLS_TRY ? (long)CURLUSESSL_TRY :
			 (long)CURLUSESSL_ALL);
	if (c->ca_file[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (c->user[0]) {
		curl_easy_setopt(h, CURLOPT_USERNAME, c->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, c->password);
	}
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(rcpts);
	curl_easy_cleanup(h);
	if (rc == CURLE_OK)
		return 0;
	snprintf(err, errlen, "%s: %s%s%s", c->smtp_url, curl_easy_strerror(rc),
		 cerr[0] ? ": " : "", cerr);
	if (code >= 500 && code < 600)
		return -2;
	return -1;
}
