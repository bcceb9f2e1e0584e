# The utility portal's browser-test fixture (tests/web/README): a test
# helper program, built by `make web-progs` into build/host/web/, not run by
# `make unit` (tests/web/run.sh runs it around tests/web/portal-*.mjs; it
# starts build/x86_64/bin/maind-portal from `make userspace`).
# (= not :=: MAIND_*, WEB_* come from other fragments.)
ifeq ($(ARCH),x86_64)
WEB_PROGS += portal_world
portal_world_SRCS = $(MAIND_CORE) server/maind/mainctl_util.c \
	server/maind/billing/mainctl_bill.c server/maind/commands/mainctl_cmd.c \
	server/maind/portal/mainctl_web.c lib/web/auth.c $(WEB_TOTP_SRCS) \
	tests/main/pg_scratch.c tests/web/portal_world.c
portal_world_CFLAGS = $(MAIND_CFLAGS) -Itests/main
portal_world_PKGS = $(MAIND_PKGS) $(WEB_TOTP_PKGS)
endif
