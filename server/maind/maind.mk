# maind, the main server, and mainctl (issue 12). Documentation/maind.md.
# PostgreSQL through libpq; host (x86_64) only: the main server is a head
# office machine, and the arm64 sysroot (scripts/arm64-cache.sh) carries
# no libpq.
MAIND_CORE := $(GMPROTO_SRCS) $(GMPSERVER_SRCS) drivers/tty/gm_frame.c $(CONF_SRCS) \
	server/maind/maind_config.c server/maind/maind_pg.c
MAIND_NET := server/maind/maind_net.c $(NET_SRCS)
MAIND_CFLAGS := -Iserver/maind
MAIND_PKGS := libsodium libcbor libpq

ifeq ($(ARCH),x86_64)
PROGS += maind
maind_SRCS := $(MAIND_CORE) $(MAIND_NET) server/maind/maind_main.c
maind_CFLAGS := $(MAIND_CFLAGS)
maind_PKGS := $(MAIND_PKGS)

PROGS += mainctl
mainctl_SRCS := $(MAIND_CORE) server/maind/mainctl.c
mainctl_CFLAGS := $(MAIND_CFLAGS)
mainctl_PKGS := $(MAIND_PKGS)
endif
