/* SPDX-License-Identifier: GPL-2.0 */
#ifndef GM_DAEMON_H
#define GM_DAEMON_H

/* meterd's main(): options, config, backends, event loop. Returns the exit status. */
int meterd_main(int argc, char **argv);

#endif
