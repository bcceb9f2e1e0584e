/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gridmeter-setup's results: every check adds one line (PASS, FAIL or SKIP,
 * its name and the figure measured), printed at once and kept for the
 * report at the end, which is printed again as one block and saved to a
 * file (default /var/lib/gridmeter/setup-report-YYYYMMDD-HHMMSS.txt).
 * The overall result is PASS when no mandatory check failed.
 */
#ifndef GM_SETUP_REPORT_H
#define GM_SETUP_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "prompt.h"

#define REPORT_MAX	48
#define REPORT_TEXT	320
#define REPORT_WIDTH	79	/* columns: a serial console's 80 */

enum check_status { CHECK_PASS, CHECK_FAIL, CHECK_SKIP, CHECK_INFO };

struct check {
	enum check_status status;
	bool mandatory;
	char name[24];
	char text[REPORT_TEXT];
};

struct report {
	struct check c[REPORT_MAX];
	size_t n;
	const struct prompt *p;	/* for the immediate line (colours) */
};

void report_init(struct report *r, const struct prompt *p);
/* Add a check and print its line. FAIL of a mandatory check fails the whole. */
void report_add(struct report *r, enum check_status s, bool mandatory, const char *name,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
bool report_passed(const struct report *r);
/* The block: header lines (meter, time, versions) given by the caller, then the checks. */
void report_write(const struct report *r, FILE *f, const char *header);
/* Save it (0600 temporary file, renamed): 0 or -errno with err. */
int report_save(const struct report *r, const char *path, const char *header, char *err,
		size_t errlen);
const char *check_status_name(enum check_status s);
/*
 * lead (its visible width: indent), then text broken at blanks to
 * REPORT_WIDTH columns, the continuation lines indented.
 */
void report_wrap(FILE *f, const char *lead, unsigned indent, const char *text);

#endif
