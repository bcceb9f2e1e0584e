// SPDX-License-Identifier: GPL-2.0
/*
 * maind-portal: the operators' commands (issue and approve).
 * Placeholder so that the program links: helper C2 writes this file
 * (issue 14 design, "Portal"). Returns NULL: the path is not its own.
 */
#include "portal.h"

struct web_resp *portal_commands_route(struct portal_req *q)
{
	(void)q;
	return NULL;
}
