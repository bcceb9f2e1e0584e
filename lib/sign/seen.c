// SPDX-License-Identifier: GPL-2.0
/* Replay memory of signed commands (seen.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "seen.h"

int gmc_seen_has(const struct gmc_seen *s, uint64_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].id == id)
			return 1;
	return 0;
}

void gmc_seen_prune(struct gmc_seen *s, int64_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].expires > now)
			s->e[k++] = s->e[i];
	s->n = k;
}

int gmc_seen_add(struct gmc_seen *s, uint64_t id, int64_t expires, int64_t now)
{
	gmc_seen_prune(s, now);
	if (gmc_seen_has(s, id))
		return 0;
	if (s->n == GMC_SEEN_MAX)
		return -1;
	s->e[s->n].id = id;
	s->e[s->n].expires = expires;
	s->n++;
	return 0;
}

int gmc_seen_load(struct gmc_seen *s, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[128];
	unsigned int ln = 0;

	s->n = 0;
	if (!f) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *end;
		unsigned long long id;
		long long exp;

		ln++;
		errno = 0;
		id = strtoull(line, &end, 10);
		if (errno || end == line || *end != ' ' || id == 0 || id > INT64_MAX)
			goto bad;
		exp = strtoll(end + 1, &end, 10);
		if (errno || (*end != '\n' && *end != '\0'))
			goto bad;
		if (s->n == GMC_SEEN_MAX || gmc_seen_has(s, id))
			goto bad;
		s->e[s->n].id = id;
		s->e[s->n].expires = exp;
		s->n++;
	}
	fclose(f);
	return 0;
bad:
	fclose(f);
	snprintf(err, errlen, "%s:%u: expected 'ID EXPIRES' (a command id seen once)", path, ln);
	s->n = 0;
	return -1;
}

int gmc_seen_save(const struct gmc_seen *s, const char *path, char *err, size_t errlen)
{
	struct atomic_file a;
	int r;

	r = atomic_file_open_stream(&a, path, 0644);
	if (!r) {
		for (size_t i = 0; i < s->n; i++)
			fprintf(a.f, "%" PRIu64 " %" PRId64 "\n", s->e[i].id, s->e[i].expires);
		r = atomic_file_commit(&a, 0);
	}
	if (r) {
		snprintf(err, errlen, "%s: %s: %s", path, a.step, strerror(-r));
		return -1;
	}
	return 0;
}
