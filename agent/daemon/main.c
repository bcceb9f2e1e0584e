// SPDX-License-Identifier: GPL-2.0
#include "daemon.h"

int main(int argc, char **argv)
{
	return meterd_main(argc, argv);
}
