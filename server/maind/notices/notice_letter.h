/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Post: a printable A4 PDF letter rendered with cairo (Documentation/
 * notices.md "Post"): the return address, the address block where a
 * DL window envelope shows it, the date, the subject, the body wrapped
 * and broken into pages, "Page k of n" and the notice number at the foot.
 */
#ifndef NOTICE_LETTER_H
#define NOTICE_LETTER_H

#include <stddef.h>
#include <stdint.h>

struct letter_in {
	const char *sender;		/* return address, lines separated by '|' */
	const char *to_name;
	const char *address;		/* postal address, lines separated by '\n' */
	int64_t date;			/* UTC s */
	const char *subject, *body;	/* UTF-8; body paragraphs by '\n' */
	int64_t notice;			/* printed at the foot */
};

/* The letter as PDF bytes (malloc'd), or NULL. pages: how many. */
unsigned char *letter_pdf(const struct letter_in *in, size_t *len, unsigned *pages);
/*
 * Write dir/notice-ID.pdf atomically (temporary file, fsync, rename,
 * directory fsync): writing it again replaces it with the same letter.
 * 0 or -1 with err; path gets the file's name.
 */
int letter_spool(const char *dir, int64_t notice, const unsigned char *pdf, size_t len,
		 char *path, size_t pathlen, char *err, size_t errlen);

#endif
