// SPDX-License-Identifier: GPL-2.0
#include "tariff_file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "ini.h"
#include "parse.h"

struct load_ctx {
	struct tariff_spec *spec;
	struct tariff_when *when;
};

static int on_entry(struct ini *ini, const struct ini_entry *e, void *ctx)
{
	struct load_ctx *c = ctx;
	uint64_t v;
	int r;

	if (c->when && (!strcmp(e->key, "effective") || !strcmp(e->key, "tseq"))) {
		if (parse_u64(e->value, 0, INT64_MAX, &v))
			return ini_error(ini, e->line, NULL, e->key, "'%s' is not a whole number",
					 e->value);
		if (e->key[0] == 'e')
			c->when->effective = (int64_t)v;
		else
			c->when->tseq = (int64_t)v;
		return 0;
	}
	r = tariff_spec_set(c->spec, e->key, e->value);

	if (r)
		return ini_error(ini, e->line, NULL, e->key, "%s",
				 r == -ENOENT ? "unknown key" : "value too long");
	return 0;
}

int tariff_file_load(const char *path, struct tariff_spec *spec, struct tariff *t,
		     struct tariff_when *when, char *err, size_t errlen)
{
	struct load_ctx c = { spec, when };
	const char *bad = NULL;
	struct ini ini;
	char msg[200];
	int r;

	if (access(path, F_OK) && errno == ENOENT)
		return -ENOENT;
	tariff_spec_init(spec);
	if (when)
		memset(when, 0, sizeof(*when));
	ini_init(&ini, path, INI_NO_SECTIONS, err, errlen);
	r = ini_parse_file(&ini, path, 64 * 1024, on_entry, &c);
	if (!r && tariff_compile(spec, t, &bad, msg, sizeof(msg)))
		r = ini_error(&ini, ini_key_line(&ini, "", bad), NULL, bad, "%s", msg);
	ini_free(&ini);
	return r ? -EINVAL : 0;
}

int tariff_file_save(const char *dir, const char *name, const struct tariff_spec *spec,
		     const struct tariff_when *when)
{
	char path[512];
	struct atomic_file a;
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	r = atomic_file_open_stream(&a, path, 0640);
	if (r)
		return r;
	if (when)
		fprintf(a.f, "# A town server's tariff update (command %lld), in force at its time.\n"
			"effective = %lld\ntseq = %lld\n", (long long)when->tseq,
			(long long)when->effective, (long long)when->tseq);
	else
		fprintf(a.f, "# Tariff set over D-Bus (SetTariff); overrides [tariff] of meterd.conf.\n");
	for (unsigned i = 0; tariff_spec_keys[i]; i++) {
		const char *v = tariff_spec_get(spec, tariff_spec_keys[i]);

		/* empty values too: the file gives back exactly the tariff saved */
		if (v)
			fprintf(a.f, "%s = %s\n", tariff_spec_keys[i], v);
	}
	return atomic_file_commit(&a, 0);
}
