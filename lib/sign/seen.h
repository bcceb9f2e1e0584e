/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Replay memory of signed commands (gmcmd.h): the ids a target has handled,
 * each kept until its command expires (a command is refused after its
 * expiry anyway, so nothing older needs remembering). Persisted as a text
 * file, lines "ID EXPIRES", written to a temporary file, fsync'ed and
 * renamed before the command is carried out: a power cut after the rename
 * cannot make the command run twice.
 *
 * If the file is lost (state wiped), a command seen before could run again
 * until it expires: the expiry bounds that window (GMC_LIFETIME_MAX at most,
 * mainctl's default 15 minutes). Documentation/commands.md.
 */
#ifndef GMC_SEEN_H
#define GMC_SEEN_H

#include <stddef.h>
#include <stdint.h>

#define GMC_SEEN_MAX	1024

struct gmc_seen {
	size_t n;
	struct { uint64_t id; int64_t expires; } e[GMC_SEEN_MAX];
};

/* True if id is remembered. */
int gmc_seen_has(const struct gmc_seen *s, uint64_t id);
/* Forget what expired at or before now. */
void gmc_seen_prune(struct gmc_seen *s, int64_t now);
/* Remember id until expires (pruning first); -1 when full of live ids. */
int gmc_seen_add(struct gmc_seen *s, uint64_t id, int64_t expires, int64_t now);
/* Load (a missing file is empty); -1 with err naming file and line. */
int gmc_seen_load(struct gmc_seen *s, const char *path, char *err, size_t errlen);
/* Write atomically (tmp, fsync, rename, fsync of the directory); -1 with err. */
int gmc_seen_save(const struct gmc_seen *s, const char *path, char *err, size_t errlen);

#endif
