/* SPDX-License-Identifier: GPL-2.0 */
/* A private dbus-daemon (system-bus type, open policy) for host tests and benchmarks. */
#ifndef AGENT_PRIVBUS_H
#define AGENT_PRIVBUS_H

#include <sys/types.h>

/*
 * Start dbus-daemon listening in dir (made world-accessible so tests can call
 * as other users) and set DBUS_SYSTEM_BUS_ADDRESS. Returns its pid or -1.
 */
pid_t privbus_start(const char *dir);
/*
 * Same with a system.conf-like deny-by-default policy plus the policy file
 * `include` (e.g. agent/system/org.gridmeter.Meter1.conf), letting root own `name`.
 */
pid_t privbus_start_system(const char *dir, const char *include, const char *name);
/* Wait until name has an owner on the bus of DBUS_SYSTEM_BUS_ADDRESS. 0 or -ETIMEDOUT. */
int privbus_wait_name(const char *name, int timeout_ms);
void privbus_stop(pid_t pid, int sig);

#endif
