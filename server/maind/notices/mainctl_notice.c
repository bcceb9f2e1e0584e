// SPDX-License-Identifier: GPL-2.0
/* mainctl: the notices part's commands (mainctl_parts.h). */
#include "mainctl_parts.h"

void mctl_notice_usage(void)
{
}

int mctl_notice(const struct mainctl_ctx *x, const char *cmd, int argc, char **args)
{
	(void)x;
	(void)cmd;
	(void)argc;
	(void)args;
	return -2;
}
