// SPDX-License-Identifier: GPL-2.0
/* gridmeter-setup's results (report.h). */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
	if (r->p)
		fprintf(r->p->out, "  %s  %-14s %s\n", prompt_status(r->p, check_status_name(s)),
			c->name, c->text);
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
		fprintf(f, "%s  %-14s %s%s\n", check_status_name(c->status), c->name, c->text,
			c->status == CHECK_FAIL && !c->mandatory ? " (advisory)" : "");
	}
	fprintf(f, "----------------------------------------------------------------\n"
		"OVERALL: %s (%u passed, %u failed, %u skipped)\n"
		"================================================================\n",
		report_passed(r) ? "PASS" : "FAIL", pass, fail, skip);
}

int report_save(const struct report *r, const char *path, const char *header, char *err,
		size_t errlen)
{
	char tmp[PATH_MAX];
	int fd, e = 0;
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	f = fdopen(fd, "w");
	if (!f) {
		e = errno;
		close(fd);
	} else {
		report_write(r, f, header);
		if (fchmod(fd, 0640) || fflush(f) || fsync(fd))
			e = errno;
		if (fclose(f) && !e)
			e = errno;
	}
	if (!e && rename(tmp, path))
		e = errno;
	if (e) {
		unlink(tmp);
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}
