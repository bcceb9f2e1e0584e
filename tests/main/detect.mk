# maind's detection (issue 13, Documentation/detection.md) against a real
# PostgreSQL 15 of its own (scripts/pg-cluster.sh), the records fed through
# maind_pg's ingest hooks. Skips only when PostgreSQL 15 is not installed.
DETECT_TEST_SRCS = $(MAIND_CORE) tests/main/pg_scratch.c tests/main/detect_world.c
UNIT_TESTS += detect_test_balance
detect_test_balance_SRCS = $(DETECT_TEST_SRCS) tests/main/detect_test_balance.c
detect_test_balance_CFLAGS = $(MAIND_CFLAGS) -Itests/main
detect_test_balance_PKGS = $(MAIND_PKGS)

UNIT_TESTS += detect_test_events
detect_test_events_SRCS = $(DETECT_TEST_SRCS) server/maind/detect/mainctl_alert.c server/maind/mainctl_util.c \
	tests/main/detect_test_events.c
detect_test_events_CFLAGS = $(MAIND_CFLAGS) -Itests/main
detect_test_events_PKGS = $(MAIND_PKGS)
