/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The differences between the kernels gridmeter's modules build for (Debian's
 * 6.1 and 6.12, up to the metering ABI of 6.18), in one place. The drivers use
 * these names and never test a kernel version themselves.
 */
#ifndef GM_KCOMPAT_H
#define GM_KCOMPAT_H

/*
 * Kbuild (./Kbuild) looks into the kernel headers and defines
 * GM_KERNEL_TTY_U8 and GM_KERNEL_IIO_METERING when they have what follows.
 */

/*
 * tty line disciplines: 6.6 made the receive hooks take u8 flags and a
 * size_t count.
 */
#ifdef GM_KERNEL_TTY_U8
#define gm_tty_flag_t	u8
#define gm_tty_count_t	size_t
#else
#define gm_tty_flag_t	char
#define gm_tty_count_t	int
#endif

/*
 * IIO: 6.18 (ADE9000) added IIO_ALTCURRENT, the RMS/ACTIVE/REACTIVE/APPARENT
 * modifiers and IIO_CHAN_INFO_POWERFACTOR. Before, the same sysfs file names
 * come from extend_name and an ext_info attribute, and IIO_CURRENT stands in
 * for IIO_ALTCURRENT.
 */
#ifdef GM_KERNEL_IIO_METERING
#define GM_IIO_METERING_ABI	1
#define GM_IIO_ALTCURRENT	IIO_ALTCURRENT
#define GM_IIO_MOD_RMS		IIO_MOD_RMS
#define GM_IIO_MOD_ACTIVE	IIO_MOD_ACTIVE
#define GM_IIO_MOD_REACTIVE	IIO_MOD_REACTIVE
#define GM_IIO_MOD_APPARENT	IIO_MOD_APPARENT
#else
#define GM_IIO_METERING_ABI	0
#define GM_IIO_ALTCURRENT	IIO_CURRENT
#define GM_IIO_MOD_RMS		0
#define GM_IIO_MOD_ACTIVE	0
#define GM_IIO_MOD_REACTIVE	0
#define GM_IIO_MOD_APPARENT	0
#endif

#endif /* GM_KCOMPAT_H */
