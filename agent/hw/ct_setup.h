/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Threshold events of the CT driver: meterd's [protection] limits written to
 * (or checked against) the driver's sysfs event attributes
 *   events/in_altvoltage0_rms_thresh_{rising,falling}_{value,hysteresis,en}
 *   events/in_current0_rms_thresh_rising_*   (6.18: in_altcurrent0_rms_*)
 * Values in uV / uA. Writing needs root: the unit runs
 * "meterd --setup-thresholds" with ExecStartPre=+ (full privileges), the
 * unprivileged daemon only checks.
 */
#ifndef GM_CT_SETUP_H
#define GM_CT_SETUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CT_HYST_PERCENT	2	/* re-arm 2 % back inside the limit */

/*
 * sysfs_root: normally "/sys" (tests use a fake tree). Finds the IIO device
 * named devname. apply: write and enable; otherwise check that each event is
 * enabled with the expected value. 0, or -errno with a message in err.
 */
int ct_thresholds(const char *sysfs_root, const char *devname, uint32_t ov_mv, uint32_t uv_mv,
		  uint32_t oc_ma, bool apply, char *err, size_t errlen);

#endif
