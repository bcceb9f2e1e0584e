# maind end to end (issue 12): a PostgreSQL 15 primary and hot standby of
# its own (scripts/pg-cluster.sh), maind in a child process, towns as real
# gmpc clients over TCP, maind killed while they send. Skips only when
# PostgreSQL 15 is not installed. (= not :=: MAIND_* come from server/maind.)
UNIT_TESTS += maind_test_pg
maind_test_pg_SRCS = $(MAIND_CORE) $(MAIND_NET) lib/proto/outbox.c lib/proto/gmp_client.c \
	tests/main/pg_scratch.c tests/main/maind_towns.c tests/main/maind_test_pg.c
maind_test_pg_CFLAGS = $(MAIND_CFLAGS)
maind_test_pg_PKGS = $(MAIND_PKGS)
