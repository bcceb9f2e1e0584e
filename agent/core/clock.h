/* SPDX-License-Identifier: GPL-2.0 */
/*
 * When the meter's clock is trusted and how it follows the town server's
 * time ([meter] clock = town). Pure policy: the caller measures the offset
 * (town time - meter time, ms; > 0: the meter is behind) with its
 * uncertainty, and applies the decision (agent/hw/clock_set.c).
 *
 *   untrusted                      -> step to the town's time: trusted
 *   trusted, |offset| <= slew_max  -> slew (adjtime), 500 ms
 *   trusted, |offset| <= step_max  -> step, [meter] clock_max_step (300 s)
 *   trusted, larger                -> refused: clock-suspect; stepped only
 *                                     when a second sample at least
 *                                     confirm_gap (10 min) after the first
 *                                     agrees with it within confirm_agree
 *                                     (2 s). A disagreeing sample becomes
 *                                     the new candidate.
 * A wrong town time once can therefore move a trusted clock by at most
 * clock_max_step; a lasting one takes ten minutes and agreeing samples.
 */
#ifndef GM_CLOCK_H
#define GM_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

struct clock_policy {
	int64_t slew_max_ms;
	int64_t step_max_ms;
	int64_t confirm_gap_ms;
	int64_t confirm_agree_ms;
};

struct clock_state {
	bool trusted;
	bool suspect;			/* a large offset was refused and waits for confirmation */
	int64_t cand_offset_ms;		/* that offset ... */
	int64_t cand_mono_ms;		/* ... and when it was measured (monotonic) */
};

enum clock_action {
	CLOCK_NONE,			/* nothing to correct */
	CLOCK_SLEW,			/* slew by delta_ms */
	CLOCK_STEP,			/* step by delta_ms */
	CLOCK_REFUSE,			/* suspect: left as it is */
};

struct clock_decision {
	enum clock_action action;
	int64_t delta_ms;
	bool trust;			/* trusted once the action is applied */
	bool suspect;			/* the clock-suspect condition after this sample */
	char why[192];
};

void clock_policy_init(struct clock_policy *p, uint32_t max_step_s);
/*
 * Decide on one sample taken at mono_ms; updates the candidate in *s, not
 * s->trusted (set it when the action was applied).
 */
enum clock_action clock_sample(const struct clock_policy *p, struct clock_state *s,
			       int64_t offset_ms, int64_t uncertainty_ms, int64_t mono_ms,
			       struct clock_decision *d);

#endif
