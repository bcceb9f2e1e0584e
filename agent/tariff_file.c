// SPDX-License-Identifier: GPL-2.0
#include "tariff_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "parse.h"

int tariff_file_load(const char *path, struct tariff_spec *spec, struct tariff *t,
		     char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[1024];
	unsigned lineno = 0, keyline[16] = { 0 };
	const char *bad = NULL;
	char msg[200];

	if (!f) {
		if (errno == ENOENT)
			return -ENOENT;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -EINVAL;
	}
	tariff_spec_init(spec);
	while (fgets(line, sizeof(line), f)) {
		char *s = strtrim(line), *eq, *key;
		int r;

		lineno++;
		if (!*s || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%u: expected 'key = value'", path, lineno);
			fclose(f);
			return -EINVAL;
		}
		*eq = 0;
		key = strtrim(s);
		r = tariff_spec_set(spec, key, strtrim(eq + 1));
		if (r) {
			snprintf(err, errlen, "%s:%u: key '%s': %s", path, lineno, key,
				 r == -ENOENT ? "unknown key" : "value too long");
			fclose(f);
			return -EINVAL;
		}
		for (unsigned i = 0; tariff_spec_keys[i]; i++)
			if (!strcmp(tariff_spec_keys[i], key) && i < 16)
				keyline[i] = lineno;
	}
	fclose(f);
	if (tariff_compile(spec, t, &bad, msg, sizeof(msg))) {
		unsigned l = 0;

		for (unsigned i = 0; tariff_spec_keys[i] && i < 16; i++)
			if (!strcmp(tariff_spec_keys[i], bad))
				l = keyline[i];
		snprintf(err, errlen, "%s:%u: key '%s': %s", path, l, bad, msg);
		return -EINVAL;
	}
	return 0;
}

int tariff_file_save(const char *dir, const char *name, const struct tariff_spec *spec)
{
	char tmp[512], path[512];
	FILE *f;
	int fd, r = 0, dfd;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -errno;
	}
	fprintf(f, "# Tariff set over D-Bus (SetTariff); overrides [tariff] of meterd.conf.\n");
	for (unsigned i = 0; tariff_spec_keys[i]; i++) {
		const char *v = tariff_spec_get(spec, tariff_spec_keys[i]);

		if (v && *v)
			fprintf(f, "%s = %s\n", tariff_spec_keys[i], v);
	}
	if (fflush(f) || fsync(fd))
		r = -errno;
	if (fclose(f) && !r)
		r = -errno;
	if (!r && rename(tmp, path))
		r = -errno;
	if (r) {
		unlink(tmp);
		return r;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}
