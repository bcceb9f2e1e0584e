/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The SIM900's PWRKEY input on one GPIO line (libgpiod v1), pulsed by the
 * modem state machine when the modem does not answer or keeps failing.
 * The line is requested as an output at the released level.
 */
#ifndef GM_PWRKEY_H
#define GM_PWRKEY_H

#include <stdbool.h>
#include <stddef.h>

struct pwrkey;

/* NULL with a reason in err. */
struct pwrkey *pwrkey_open(const char *chip, unsigned int line, bool active_low,
			   char *err, size_t errlen);
/* Press (asserted) or release the key. 0 or -errno. */
int pwrkey_set(struct pwrkey *k, bool asserted);
void pwrkey_close(struct pwrkey *k);

#endif
