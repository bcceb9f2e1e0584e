# The harness's own guest programs: gm_env runs in every guest suite;
# selfcheck_* only in the harness self-check (scripts/harness-selfcheck.sh).
GUEST_TESTS += gm_env selfcheck_fail
gm_env_SRCS := tests/guest/harness/gm_env.c
selfcheck_fail_SRCS := tests/guest/harness/selfcheck_fail.c
