# maind-portal, the utility portal (issue 14, Documentation/portal.md): its
# own process beside maind and maind-notify, on the same database, serving
# customers and operators over HTTP(S) with lib/web. x86_64 only, like maind
# (the arm64 sysroot carries no libpq). (= and += on recursively expanded
# lists: MAIND_*, NOTIFY_* and WEB_* come from other fragments.)
#
# The portal's table (web_users) joins maind's schema list; mainctl gets the
# web-user commands (they hash passwords and make TOTP secrets with lib/web).
MAIND_PARTS += server/maind/portal/portal_schema.c
MAINCTL_PARTS += server/maind/portal/mainctl_web.c lib/web/auth.c $(WEB_TOTP_SRCS)
mainctl_PKGS += $(WEB_TOTP_PKGS)

# Everything but main(): the daemon, its unit tests and the fixture link it.
PORTAL_SRCS = server/maind/portal/portal_main.c server/maind/portal/portal_auth.c \
	server/maind/portal/portal_customer.c server/maind/portal/portal_operator.c \
	server/maind/portal/portal_commands.c server/maind/notices/notice_letter.c $(FILE_SRCS) \
	$(WEB_SRCS) $(WEB_TOTP_SRCS)
PORTAL_CFLAGS = $(MAIND_CFLAGS) -Iserver/maind/portal -Iserver/maind/notices
PORTAL_PKGS = $(MAIND_PKGS) $(WEB_PKGS) $(WEB_TOTP_PKGS) cairo

ifeq ($(ARCH),x86_64)
PROGS += maind-portal
maind-portal_SRCS = $(MAIND_CORE) $(PORTAL_SRCS) server/maind/portal/portal_daemon.c
maind-portal_CFLAGS = $(PORTAL_CFLAGS)
maind-portal_PKGS = $(PORTAL_PKGS)
endif
