# maind, the main server, and mainctl (issues 12, 13). Documentation/maind.md.
# PostgreSQL through libpq; host (x86_64) only: the main server is a head
# office machine, and the arm64 sysroot (scripts/arm64-cache.sh) carries
# no libpq.
#
# Each part of maind lives in its folder with its own fragment, appending to
#   MAIND_PARTS     its storage and logic (linked into maind, mainctl, tests)
#   MAINCTL_PARTS   its mainctl commands
#   MAIND_PKGS      libraries it needs
# (recursively expanded: the fragments may be read before or after this one).
MAIND_CORE = $(GMPROTO_SRCS) $(GMPSERVER_SRCS) $(GMSIGN_SRCS) drivers/tty/gm_frame.c \
	$(CONF_SRCS) server/maind/maind_config.c server/maind/maind_pg.c $(MAIND_PARTS)
MAIND_NET = server/maind/maind_net.c $(NET_SRCS)
MAIND_CFLAGS = -Iserver/maind
MAIND_PKGS += libsodium libcbor libpq
MAIND_PARTS += server/maind/billing/bill_schema.c server/maind/notices/notice_schema.c \
	server/maind/commands/cmd_store.c server/maind/detect/det_store.c
MAINCTL_PARTS += server/maind/billing/mainctl_bill.c server/maind/notices/mainctl_notice.c \
	server/maind/commands/mainctl_cmd.c server/maind/detect/mainctl_alert.c

ifeq ($(ARCH),x86_64)
PROGS += maind
maind_SRCS = $(MAIND_CORE) $(MAIND_NET) server/maind/maind_main.c
maind_CFLAGS = $(MAIND_CFLAGS)
maind_PKGS = $(MAIND_PKGS)

PROGS += mainctl
mainctl_SRCS = $(MAIND_CORE) server/maind/mainctl.c server/maind/mainctl_util.c $(MAINCTL_PARTS)
mainctl_CFLAGS = $(MAIND_CFLAGS)
mainctl_PKGS = $(MAIND_PKGS)
endif
