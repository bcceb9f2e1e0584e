// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: the INI reader (lib/conf/ini.c) on any bytes. Whatever
 * it accepts, every entry it hands over has a line within the input and a
 * key and value without the characters the syntax reserves.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"

static int check(struct ini *ini, const struct ini_entry *e, void *ctx)
{
	unsigned int lines = *(unsigned int *)ctx;

	(void)ini;
	if (!e->line || e->line > lines)
		abort();
	if (e->key && (!*e->key || strpbrk(e->key, "=[] \t") || strchr(e->value, '\n')))
		abort();
	if (!e->key && (!*e->section || strchr(e->section, ']')))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[256];
	unsigned int lines = 1;
	struct ini ini;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (size_t i = 0; i < size; i++)
		lines += text[i] == '\n';
	ini_init(&ini, "fuzz.conf", size && data[0] & 1 ? INI_NO_SECTIONS : 0, err, sizeof(err));
	ini_parse_text(&ini, text, check, &lines);
	ini_free(&ini);
	free(text);
	return 0;
}
