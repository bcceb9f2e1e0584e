// SPDX-License-Identifier: GPL-2.0
/* In-memory relays for host tests: every relay starts open. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "relay.h"

struct fake_relays {
	struct relays base;
	atomic_uint sets;
	atomic_bool closed[];	/* the trip thread may set while the loop reads */
};

static int fake_set(struct relays *r, unsigned idx, bool closed)
{
	struct fake_relays *f = (struct fake_relays *)r;

	if (idx >= r->count)
		return -EINVAL;
	atomic_store(&f->closed[idx], closed);
	atomic_fetch_add(&f->sets, 1);
	return 0;
}

static int fake_get(struct relays *r, unsigned idx, bool *closed)
{
	if (idx >= r->count)
		return -EINVAL;
	*closed = atomic_load(&((struct fake_relays *)r)->closed[idx]);
	return 0;
}

static int fake_button_fd(struct relays *r)
{
	(void)r;
	return -1;
}

static int fake_button_pressed(struct relays *r)
{
	(void)r;
	return 0;
}

static void fake_destroy(struct relays *r)
{
	free(r);
}

static const struct relay_ops fake_ops = {
	.name = "fake",
	.set = fake_set,
	.get = fake_get,
	.button_fd = fake_button_fd,
	.button_pressed = fake_button_pressed,
	.destroy = fake_destroy,
};

struct relays *relay_fake_new(unsigned count)
{
	struct fake_relays *f = calloc(1, sizeof(*f) + count * sizeof(atomic_bool));

	if (!f)
		return NULL;
	f->base.ops = &fake_ops;
	f->base.count = count;
	return &f->base;
}

unsigned relay_fake_sets(const struct relays *r)
{
	return r->ops == &fake_ops ? atomic_load(&((struct fake_relays *)r)->sets) : 0;
}
