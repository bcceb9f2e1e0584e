// SPDX-License-Identifier: GPL-2.0
/* gridmeter-setup: the installer's on-site walk-through (flow.c, setup.h). */
#include "setup.h"

int main(int argc, char **argv)
{
	return setup_main(argc, argv);
}
