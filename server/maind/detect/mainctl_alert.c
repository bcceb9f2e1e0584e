// SPDX-License-Identifier: GPL-2.0
/* mainctl: the detect part's commands (mainctl_parts.h). */
#include "mainctl_parts.h"

void mctl_alert_usage(void)
{
}

int mctl_alert(const struct mainctl_ctx *x, const char *cmd, int argc, char **args)
{
	(void)x;
	(void)cmd;
	(void)argc;
	(void)args;
	return -2;
}
