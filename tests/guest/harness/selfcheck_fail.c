// SPDX-License-Identifier: GPL-2.0
/*
 * selfcheck_fail - a test that fails on purpose. Only the harness self-check
 * runs it (it lives in /tests/selfcheck, not /tests/bin): the run that
 * includes it must be reported as failed.
 */
#include "kselftest_harness.h"

TEST(deliberately_fails)
{
	EXPECT_EQ(1 + 1, 3);
}

TEST(passes)
{
	EXPECT_EQ(2, 1 + 1);
}

TEST_HARNESS_MAIN
