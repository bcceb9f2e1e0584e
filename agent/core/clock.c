// SPDX-License-Identifier: GPL-2.0
#include "clock.h"

#include <stdio.h>
#include <string.h>

#define SLEW_MAX_MS		500
#define CONFIRM_GAP_MS		(10 * 60 * 1000)
#define CONFIRM_AGREE_MS	2000

void clock_policy_init(struct clock_policy *p, uint32_t max_step_s)
{
	p->slew_max_ms = SLEW_MAX_MS;
	p->step_max_ms = (int64_t)max_step_s * 1000;
	p->confirm_gap_ms = CONFIRM_GAP_MS;
	p->confirm_agree_ms = CONFIRM_AGREE_MS;
}

static int64_t abs64(int64_t v)
{
	return v < 0 ? -v : v;
}

static enum clock_action decide(struct clock_decision *d, enum clock_action a, int64_t delta,
				bool trust, bool suspect)
{
	d->action = a;
	d->delta_ms = delta;
	d->trust = trust;
	d->suspect = suspect;
	return a;
}

enum clock_action clock_sample(const struct clock_policy *p, struct clock_state *s,
			       int64_t offset_ms, int64_t uncertainty_ms, int64_t mono_ms,
			       struct clock_decision *d)
{
	int64_t mag = abs64(offset_ms);

	memset(d, 0, sizeof(*d));
	if (!s->trusted) {
		s->suspect = false;
		snprintf(d->why, sizeof(d->why), "untrusted: set to the town's time (+-%lld ms)",
			 (long long)uncertainty_ms);
		return decide(d, CLOCK_STEP, offset_ms, true, false);
	}
	if (mag <= p->step_max_ms) {
		s->suspect = false;
		if (!offset_ms) {
			snprintf(d->why, sizeof(d->why), "agrees with the town's time");
			return decide(d, CLOCK_NONE, 0, true, false);
		}
		snprintf(d->why, sizeof(d->why), "%s by %+lld ms", mag <= p->slew_max_ms ? "slewed" : "stepped",
			 (long long)offset_ms);
		return decide(d, mag <= p->slew_max_ms ? CLOCK_SLEW : CLOCK_STEP, offset_ms, true, false);
	}
	if (s->suspect && mono_ms - s->cand_mono_ms >= p->confirm_gap_ms &&
	    abs64(offset_ms - s->cand_offset_ms) <= p->confirm_agree_ms) {
		snprintf(d->why, sizeof(d->why), "stepped by %+lld ms: two samples %lld s apart agree",
			 (long long)offset_ms, (long long)((mono_ms - s->cand_mono_ms) / 1000));
		s->suspect = false;
		return decide(d, CLOCK_STEP, offset_ms, true, false);
	}
	if (!s->suspect || abs64(offset_ms - s->cand_offset_ms) > p->confirm_agree_ms) {
		s->cand_offset_ms = offset_ms;
		s->cand_mono_ms = mono_ms;
	}
	s->suspect = true;
	snprintf(d->why, sizeof(d->why), "the town's time is %+lld s off, more than clock_max_step (%lld s): "
		 "refused until a sample %lld min later agrees", (long long)(offset_ms / 1000),
		 (long long)(p->step_max_ms / 1000), (long long)(p->confirm_gap_ms / 60000));
	return decide(d, CLOCK_REFUSE, 0, true, true);
}
