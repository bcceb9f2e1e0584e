// SPDX-License-Identifier: GPL-2.0
#include "persist.h"

#include <errno.h>
#include <string.h>

size_t persist_encode(struct meter_persist *p, const struct held *h, void *buf, size_t size)
{
	size_t n = sizeof(*p) + h->n * sizeof(h->b[0]);

	if (n > size)
		return 0;
	p->version = PERSIST_VERSION;
	p->size = sizeof(*p);
	p->nheld = h->n;
	p->held_len_ms = h->len_ms;
	memcpy(buf, p, sizeof(*p));
	memcpy((char *)buf + sizeof(*p), h->b, h->n * sizeof(h->b[0]));
	return n;
}

/*
 * Version 2 (meterd before issue 10): version, size, prot_state,
 * remote_state, total_trips, registers, counters. It ran on the system's
 * clock (trusted, registers placed) and had no clean flag: taken as an
 * unclean stop, so a span its counters do not cover is reported.
 */
int persist_from_v2(const void *buf, size_t len, struct meter_persist *p)
{
	struct meter_persist_v2 {
		uint32_t version, size, prot_state, remote_state;
		uint64_t total_trips;
		struct registers reg;
		struct meter_counters ctr;
	} o;

	if (len != sizeof(o))
		return -EINVAL;
	memcpy(&o, buf, sizeof(o));
	if (o.version != 2 || o.size != sizeof(o))
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->version = PERSIST_VERSION;
	p->size = sizeof(*p);
	p->prot_state = o.prot_state;
	p->remote_state = o.remote_state;
	p->total_trips = o.total_trips;
	p->reg = o.reg;
	p->ctr = o.ctr;
	p->flags = PERSIST_TRUSTED | PERSIST_PLACED;
	p->saved_real_ms = o.reg.last_ms;
	if (o.ctr.valid)
		memcpy(p->boot_id, o.ctr.boot_id, sizeof(p->boot_id));
	return 0;
}

int persist_decode(const void *buf, size_t len, struct meter_persist *p, struct held *h)
{
	uint32_t version;

	if (len < sizeof(version))
		return -EINVAL;
	memcpy(&version, buf, sizeof(version));
	if (version == 2) {
		if (persist_from_v2(buf, len, p))
			return -EINVAL;
		held_init(h, p->reg.interval_s * 1000);
		return 0;
	}
	if (version != PERSIST_VERSION) {
		p->version = version;
		return -EPROTONOSUPPORT;
	}
	if (len < sizeof(*p))
		return -EINVAL;
	memcpy(p, buf, sizeof(*p));
	if (p->size != sizeof(*p) || p->nheld > HELD_MAX ||
	    len != sizeof(*p) + p->nheld * sizeof(h->b[0]))
		return -EINVAL;
	p->boot_id[sizeof(p->boot_id) - 1] = 0;
	p->ctr.boot_id[sizeof(p->ctr.boot_id) - 1] = 0;
	held_init(h, p->held_len_ms);
	h->n = p->nheld;
	memcpy(h->b, (const char *)buf + sizeof(*p), p->nheld * sizeof(h->b[0]));
	return 0;
}
