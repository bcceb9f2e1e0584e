// SPDX-License-Identifier: GPL-2.0
/*
 * The link layer's production ABI header (include/uapi/gridmeter/link.h):
 * its ioctl magic is not one the kernel's ioctl registry
 * (Documentation/userspace-api/ioctl/ioctl-number.rst) gives to another
 * subsystem, and the test-only multi-node API is not in it.
 */
#include <sys/ioctl.h>

#include <gridmeter/link.h>

#include "gm_harness.h"

/* Codes registered next to ours: 0xB7 nsfs and remoteproc, 0xB8 mshv and
 * Marvell DPI, 0xBA liveupdate. */
static const unsigned int registered[] = { 0xB5, 0xB6, 0xB7, 0xB8, 0xBA, 0xC0 };

TEST(ioctl_magic_unregistered)
{
	const unsigned int cmds[] = {
		GM_IOC_SET_LINK, GM_IOC_GET_LINK, GM_IOC_GET_LINK_STATS,
		GM_IOC_SET_METER_ID, GM_IOC_GET_METER_ID, GM_IOC_GET_NODE_STATS,
	};

	for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
		for (size_t k = 0; k < sizeof(registered) / sizeof(registered[0]); k++) {
			unsigned int magic = _IOC_TYPE(cmds[c]);

			EXPECT_NE(registered[k], magic);
		}
	}
}

TEST(no_test_api_in_production_header)
{
#ifdef GM_IOC_BIND_NODE
	const bool bind_node = true;
#else
	const bool bind_node = false;
#endif
#ifdef GM_NODES_MAX
	const bool nodes_max = true;
#else
	const bool nodes_max = false;
#endif
	EXPECT_FALSE(bind_node);
	EXPECT_FALSE(nodes_max);
}

TEST_HARNESS_MAIN
