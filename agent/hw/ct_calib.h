/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The CT driver's calibration trims (Documentation/ct-sensor.md,
 * "Calibration"; ABI sysfs-bus-iio-gridmeter-ct):
 *
 *   in_altvoltage0_rms_calibscale   gain trim of the voltage, 0.500000..2.000000
 *   in_current0_rms_calibscale      gain trim of the current (6.18: in_altcurrent0_)
 *   in_current0_rms_phase           CT phase lead, radians with 9 decimals,
 *                                   -0.4..0.4, stored by the driver in whole
 *                                   millidegrees (|mdeg| <= CT_CALIB_PHASE_MDEG_MAX)
 *
 * and the file that keeps them across reboots, written by gridmeter-setup
 * (Documentation/onsite.md) and applied by the privileged start step of
 * meterd (meterd --setup-thresholds, ExecStartPre=+), since the driver
 * starts from the device tree's nominal values at every boot:
 *
 *   # gridmeter-setup 2026-12-05 09:41:07 UTC
 *   [calibration]
 *   device = gridmeter-ct
 *   voltage_calibscale = 1.012345
 *   current_calibscale = 0.987650
 *   current_phase_mdeg = 3500
 *
 * The file lives in /etc/gridmeter, root's (meterd's ProtectSystem=strict
 * keeps it read-only for the daemon): an unprivileged meterd cannot change
 * the calibration that root writes to the driver at its next start.
 * Values are integers (millionths, millidegrees): what the driver stores,
 * exactly, so that applying the file reproduces the calibration bit for bit.
 */
#ifndef GM_CT_CALIB_H
#define GM_CT_CALIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CT_CALIB_PATH		"/etc/gridmeter/calibration.conf"
#define CT_CALIB_SCALE_ONE	1000000		/* calibscale 1.000000 */
#define CT_CALIB_SCALE_MIN	500000
#define CT_CALIB_SCALE_MAX	2000000
#define CT_CALIB_PHASE_MDEG_MAX	20000		/* the driver's CT_PHASE_MDEG_MAX */

struct ct_calib {
	int64_t v_scale;	/* voltage calibscale, millionths */
	int64_t i_scale;	/* current calibscale, millionths */
	int32_t phase_mdeg;	/* CT phase lead, millidegrees */
};

/*
 * Nanoradians to write to in_current0_rms_phase for the driver to store
 * exactly mdeg (it truncates x * 5729578 / 10^11), and the nanoradians it
 * then reads back (mdeg * 17453293 / 1000, truncated): not always the same
 * number, since both conversions truncate.
 */
int64_t ct_calib_phase_write_nrad(int32_t mdeg);
int64_t ct_calib_phase_read_nrad(int32_t mdeg);
/* The millidegrees the driver stores for a write of nrad nanoradians. */
int32_t ct_calib_phase_stored_mdeg(int64_t nrad);

/* A decimal string ("-0.069813170", "230.4") in units of 10^-dec, rounded half away. */
int ct_calib_parse_units(const char *s, unsigned dec, int64_t *out);
/* "1.012345" / "-0.069813172": a value in 10^-dec units as the driver prints it. */
#define CT_CALIB_NUM_LEN	44	/* room for any int64_t so formatted */
void ct_calib_format_units(int64_t v, unsigned dec, char *buf, size_t len);

/*
 * Read the trims from an IIO device directory (<sysfs>/bus/iio/devices/
 * iio:deviceN). 0 or -errno with "file: why" in err.
 */
int ct_calib_read(const char *devdir, struct ct_calib *c, char *err, size_t errlen);
/*
 * Write them (range-checked first: -ERANGE without writing anything) and
 * read them back: -EIO if the driver kept something else. 0 or -errno.
 */
int ct_calib_write(const char *devdir, const struct ct_calib *c, char *err, size_t errlen);

/* Parse a calibration file: 0, -ENOENT (no file), or -EINVAL with "file:line: why". */
int ct_calib_load(const char *path, struct ct_calib *c, char *device, size_t devlen,
		  char *err, size_t errlen);
/*
 * Write the file atomically (temporary file, fsync, rename, directory
 * fsync; mode 0644). comment: one line written as "# comment" first.
 */
int ct_calib_save(const char *path, const struct ct_calib *c, const char *device,
		  const char *comment, char *err, size_t errlen);
/*
 * meterd --setup-thresholds: if the file exists, write it to the IIO
 * device it names under sysfs_root; the device must be want_device (the
 * mains CT of meterd.conf). 0 (applied, or no file: *applied false),
 * else -errno with err.
 */
int ct_calib_apply(const char *sysfs_root, const char *path, const char *want_device,
		   bool *applied, char *err, size_t errlen);

#endif
