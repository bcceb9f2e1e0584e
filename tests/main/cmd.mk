# Signed commands at the head end (issue 13, Documentation/commands.md):
# PostgreSQL 15 of its own (scripts/pg-cluster.sh), maind in a child
# process, a town as a real gmpc client, mainctl's command handlers.
# Skips only when PostgreSQL 15 is not installed.
UNIT_TESTS += cmd_test_pg
cmd_test_pg_SRCS = $(MAIND_CORE) $(MAIND_NET) lib/proto/outbox.c lib/proto/gmp_client.c \
	server/maind/commands/mainctl_cmd.c server/maind/mainctl_util.c \
	tests/main/pg_scratch.c tests/main/maind_towns.c tests/main/cmd_test_pg.c
cmd_test_pg_CFLAGS = $(MAIND_CFLAGS)
cmd_test_pg_PKGS = $(MAIND_PKGS)

UNIT_TESTS += cmd_test_config
cmd_test_config_SRCS = $(MAIND_CORE) tests/main/cmd_test_config.c
cmd_test_config_CFLAGS = $(MAIND_CFLAGS)
cmd_test_config_PKGS = $(MAIND_PKGS)

# mainctl and the portal store what operators signed the same way (cmd_submit.c)
UNIT_TESTS += cmd_test_submit
cmd_test_submit_SRCS = $(MAIND_CORE) server/maind/commands/mainctl_cmd.c \
	server/maind/mainctl_util.c tests/main/pg_scratch.c tests/main/cmd_test_submit.c
cmd_test_submit_CFLAGS = $(MAIND_CFLAGS)
cmd_test_submit_PKGS = $(MAIND_PKGS)
