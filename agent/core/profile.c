// SPDX-License-Identifier: GPL-2.0
#include "profile.h"

#include <errno.h>
#include <stdlib.h>

int profile_init(struct profile *p, size_t cap)
{
	p->e = calloc(cap, sizeof(*p->e));
	if (!p->e)
		return -ENOMEM;
	p->cap = cap;
	p->head = p->count = 0;
	return 0;
}

void profile_free(struct profile *p)
{
	free(p->e);
	p->e = NULL;
	p->cap = p->count = 0;
}

const struct profile_entry *profile_at(const struct profile *p, size_t i)
{
	return i < p->count ? &p->e[(p->head + i) % p->cap] : NULL;
}

const struct profile_entry *profile_newest(const struct profile *p)
{
	return p->count ? profile_at(p, p->count - 1) : NULL;
}

int profile_push(struct profile *p, const struct profile_entry *e)
{
	const struct profile_entry *last = profile_newest(p);

	if (last && e->start <= last->start)
		return -1;
	if (p->count < p->cap) {
		p->e[(p->head + p->count) % p->cap] = *e;
		p->count++;
	} else {
		p->e[p->head] = *e;
		p->head = (p->head + 1) % p->cap;
	}
	return 0;
}

struct profile_entry *profile_newest_mut(struct profile *p)
{
	return p->count ? &p->e[(p->head + p->count - 1) % p->cap] : NULL;
}

int profile_put(struct profile *p, const struct profile_entry *e)
{
	struct profile_entry *last = profile_newest_mut(p);

	if (last && e->start == last->start) {
		*last = *e;
		return 1;
	}
	return profile_push(p, e);
}

size_t profile_lower_bound(const struct profile *p, int64_t from)
{
	size_t lo = 0, hi = p->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (profile_at(p, mid)->start < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}
