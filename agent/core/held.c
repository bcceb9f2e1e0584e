// SPDX-License-Identifier: GPL-2.0
#include "held.h"

#include <string.h>

#include "profile.h"

void held_init(struct held *h, uint32_t len_ms)
{
	memset(h, 0, sizeof(*h));
	h->len_ms = len_ms ? len_ms : 1;
}

static int64_t key(const struct held *h, int64_t mono)
{
	int64_t q = mono / h->len_ms;

	return mono % h->len_ms < 0 ? q - 1 : q;
}

static void merge_into(struct held_bucket *a, const struct held_bucket *b)
{
	if (b->mono_from < a->mono_from)
		a->mono_from = b->mono_from;
	if (b->mono_to > a->mono_to)
		a->mono_to = b->mono_to;
	a->import_uj += b->import_uj;
	a->export_uj += b->export_uj;
	a->renew_uj += b->renew_uj;
	a->flags |= b->flags;
}

/* Make room for one bucket: merge the two oldest of this boot. */
static void make_room(struct held *h)
{
	unsigned first = h->n && h->b[0].prior ? 1 : 0;
	struct held_bucket *a = &h->b[first], *b = a + 1;
	bool apart;

	if (h->n < HELD_MAX)
		return;
	apart = b->mono_from > a->mono_to;
	merge_into(a, b);
	if (apart)
		a->flags |= PROFILE_GAP;	/* the merged span holds time not measured */
	memmove(b, b + 1, (h->n - first - 2) * sizeof(*b));
	h->n--;
}

void held_add(struct held *h, int64_t mono_from, int64_t mono_to, uint64_t import_uj,
	      uint64_t export_uj, uint64_t renew_uj, uint32_t flags)
{
	struct held_bucket *last = h->n && !h->b[h->n - 1].prior ? &h->b[h->n - 1] : NULL;

	if (mono_to < mono_from)
		mono_to = mono_from;
	/* continuing in the interval of monotonic time of the last bucket: one bucket */
	if (last && last->mono_to == mono_from && key(h, mono_from) == key(h, last->mono_from)) {
		last->mono_to = mono_to;
		last->import_uj += import_uj;
		last->export_uj += export_uj;
		last->renew_uj += renew_uj;
		last->flags |= flags;
		return;
	}
	make_room(h);
	h->b[h->n++] = (struct held_bucket){
		.mono_from = mono_from, .mono_to = mono_to, .import_uj = import_uj,
		.export_uj = export_uj, .renew_uj = renew_uj, .flags = flags,
	};
}

void held_new_boot(struct held *h)
{
	struct held_bucket p = { 0 };
	int64_t len = held_span_ms(h);

	if (!h->n)
		return;
	for (unsigned i = 0; i < h->n; i++) {
		p.import_uj += h->b[i].import_uj;
		p.export_uj += h->b[i].export_uj;
		p.renew_uj += h->b[i].renew_uj;
		p.flags |= h->b[i].flags;
	}
	p.mono_from = 0;
	p.mono_to = len;
	p.prior = 1;
	h->b[0] = p;
	h->n = 1;
}

void held_totals(const struct held *h, uint64_t *import_uj, uint64_t *export_uj, uint64_t *renew_uj)
{
	*import_uj = *export_uj = *renew_uj = 0;
	for (unsigned i = 0; i < h->n; i++) {
		*import_uj += h->b[i].import_uj;
		*export_uj += h->b[i].export_uj;
		*renew_uj += h->b[i].renew_uj;
	}
}

int64_t held_span_ms(const struct held *h)
{
	int64_t len = 0;

	for (unsigned i = 0; i < h->n; i++)
		len += h->b[i].mono_to - h->b[i].mono_from;
	return len;
}
