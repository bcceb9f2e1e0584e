// SPDX-License-Identifier: GPL-2.0
/*
 * gm_selfcheck_warn - a module that WARNs on load.
 *
 * Test-only. The QEMU harness must fail any run in which the guest kernel
 * prints a WARNING, even if every test reported "ok"; the harness
 * self-check loads this module to prove that it does.
 */
#include <linux/bug.h>
#include <linux/module.h>

static int __init gm_selfcheck_warn_init(void)
{
	WARN(1, "gm_selfcheck_warn: deliberate warning for the harness self-check\n");
	return 0;
}

static void __exit gm_selfcheck_warn_exit(void)
{
}

module_init(gm_selfcheck_warn_init);
module_exit(gm_selfcheck_warn_exit);

MODULE_DESCRIPTION("gridmeter test harness self-check: WARN on load");
MODULE_LICENSE("GPL");
