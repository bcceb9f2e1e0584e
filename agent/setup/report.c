// SPDX-License-Identifier: GPL-2.0
/* gridmeter-setup's results (report.h). */
#include "report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"

void report_wrap(FILE *f, const char *lead, unsigned indent, const char *text)
{
	unsigned col = indent;

	fputs(lead, f);
	while (*text) {
		size_t w = strcspn(text, " ");

		/* a word that does not fit goes to the next line (unless it is alone there) */
		if (col > indent && col + 1 + w > REPORT_WIDTH) {
			fprintf(f, "\n%*s", (int)indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		fwrite(text, 1, w, f);
		col += (unsigned)w;
		text += w;
		while (*text == ' ')
			text++;
	}
	fputc('\n', f);
}

void report_init(struct report *r, const struct prompt *p)
{
	memset(r, 0, sizeof(*r));
	r->p = p;
}

const char *check_status_name(enum check_status s)
{
	switch (s) {
	case CHECK_PASS: return "PASS";
	case CHECK_FAIL: return "FAIL";
	case CHECK_SKIP: return "SKIP";
	default: return "INFO";
	}
}

void report_add(struct report *r, enum check_status s, bool mandatory, const char *name,
		const char *fmt, ...)
{
	struct check *c = r->n < REPORT_MAX ? &r->c[r->n++] : &r->c[REPORT_MAX - 1];
	va_list ap;

	c->status = s;
	c->mandatory = mandatory;
	snprintf(c->name, sizeof(c->name), "%s", name);
	va_start(ap, fmt);
	vsnprintf(c->text, sizeof(c->text), fmt, ap);
	va_end(ap);
	if (r->p) {
		char lead[64];

		snprintf(lead, sizeof(lead), "  %s  %-14s ", prompt_status(r->p, check_status_name(s)),
			 c->name);
		report_wrap(r->p->out, lead, 23, c->text);
	}
}

bool report_passed(const struct report *r)
{
	for (size_t k = 0; k < r->n; k++)
		if (r->c[k].status == CHECK_FAIL && r->c[k].mandatory)
			return false;
	return true;
}

void report_write(const struct report *r, FILE *f, const char *header)
{
	unsigned pass = 0, fail = 0, skip = 0;

	fprintf(f, "==================== gridmeter-setup report ====================\n%s", header);
	for (size_t k = 0; k < r->n; k++) {
		const struct check *c = &r->c[k];

		pass += c->status == CHECK_PASS;
		fail += c->status == CHECK_FAIL;
		skip += c->status == CHECK_SKIP;
		char lead[32], text[REPORT_TEXT + 16];

		snprintf(lead, sizeof(lead), "%s  %-14s ", check_status_name(c->status), c->name);
		snprintf(text, sizeof(text), "%s%s", c->text,
			 c->status == CHECK_FAIL && !c->mandatory ? " (advisory)" : "");
		report_wrap(f, lead, 21, text);
	}
	fprintf(f, "----------------------------------------------------------------\n"
		"OVERALL: %s (%u passed, %u failed, %u skipped)\n"
		"================================================================\n",
		report_passed(r) ? "PASS" : "FAIL", pass, fail, skip);
}

int report_save(const struct report *r, const char *path, const char *header, char *err,
		size_t errlen)
{
	struct atomic_file a;
	int e;

	e = atomic_file_open_stream(&a, path, 0640);
	if (!e) {
		report_write(r, a.f, header);
		e = atomic_file_commit(&a, 0);
	}
	if (e)
		snprintf(err, errlen, "%s: %s: %s", path, a.step, strerror(-e));
	return e;
}
