# maind billing (issue 13, Documentation/billing.md): a month of a few
# hundred meters through maind's ingest hooks into PostgreSQL 15
# (scripts/pg-cluster.sh), billed and checked against the test's own raw
# readings and meterd's tariff engine. Skips only without PostgreSQL 15.
# (= not :=: MAIND_* come from server/maind.)
UNIT_TESTS += bill_test_month
bill_test_month_SRCS = $(MAIND_CORE) server/maind/billing/mainctl_bill.c server/maind/mainctl_util.c \
	tests/main/pg_scratch.c tests/main/bill_test_month.c
bill_test_month_CFLAGS = $(MAIND_CFLAGS)
bill_test_month_PKGS = $(MAIND_PKGS)
