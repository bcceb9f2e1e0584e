# townd, the town server, and townctl (issue 6). Documentation/townd.md.
TOWND_CORE := $(GMPROTO_SRCS) drivers/tty/gm_frame.c server/townd_config.c $(CONF_SRCS) \
	server/townd_db.c server/townd_core.c \
	server/townd_alloc.c server/townd_alloc_db.c server/townd_core_alloc.c
TOWND_NET := server/townd_net.c server/townd_peer.c
TOWND_CFLAGS := -Iserver
TOWND_PKGS := libsodium libcbor sqlite3

PROGS += townd
townd_SRCS := $(TOWND_CORE) $(TOWND_NET) server/townd_main.c
townd_CFLAGS := $(TOWND_CFLAGS)
townd_PKGS := $(TOWND_PKGS) libsystemd

PROGS += townctl
townctl_SRCS := $(TOWND_CORE) server/townctl.c
townctl_CFLAGS := $(TOWND_CFLAGS)
townctl_PKGS := $(TOWND_PKGS)
