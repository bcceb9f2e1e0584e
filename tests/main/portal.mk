# maind-portal (issue 14, Documentation/portal.md "Tests"): web_users, mainctl
# web-user, signing in, the second factor and customer isolation against a
# PostgreSQL 15 of its own (scripts/pg-cluster.sh), the portal's handler on
# lib/web on 127.0.0.1:0 in the test. Skips only without PostgreSQL 15.
# (= not :=: MAIND_* and PORTAL_* come from server/maind.)
ifeq ($(ARCH),x86_64)
UNIT_TESTS += portal_test_auth
portal_test_auth_SRCS = $(MAIND_CORE) $(PORTAL_SRCS) server/maind/portal/mainctl_web.c \
	server/maind/mainctl_util.c tests/main/pg_scratch.c tests/main/portal_test_auth.c
portal_test_auth_CFLAGS = $(PORTAL_CFLAGS) -Itests/main -Itests/unit
portal_test_auth_PKGS = $(PORTAL_PKGS)
endif
