/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kselftest harness for the host tests, with a longer time limit.
 *
 * Many host tests start real servers (PostgreSQL, dbus-daemon, meterd,
 * maind, townd) and make check runs them beside kernel builds and QEMU
 * guests on two cores. The harness's own limit (30 s a test) then turns a
 * slow machine into a failure, a wall-clock pass/fail the project does not
 * want (seen: cmd_test_pg "terminated by timeout" in a loaded run). The
 * limit only ends a test that hangs: five minutes still does that.
 */
#ifndef GM_HARNESS_H
#define GM_HARNESS_H

#include "kselftest_harness.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

#endif
