# townd, the town server, and townctl (issue 6). Documentation/townd.md.
TOWND_CORE := $(GMPROTO_SRCS) drivers/tty/gm_frame.c server/townd_config.c \
	server/townd_config_town.c server/townd_config_neighbour.c $(CONF_SRCS) \
	server/townd_db.c server/townd_core.c server/townd_hours.c \
	server/townd_updb.c \
	server/townd_alloc.c server/townd_alloc_db.c server/townd_core_alloc.c \
	server/townd_reports.c server/townd_signed.c $(GMSIGN_SRCS)
# borrowing between towns (Documentation/town-network.md)
TOWND_LOANS := server/townd_loans.c server/townd_loans_db.c
TOWND_TOWNNET := server/townd_townnet.c $(GMPSERVER_SRCS) $(NET_SRCS)
TOWND_NET := $(TOWND_LOANS) $(TOWND_TOWNNET) server/townd_net.c server/townd_peer.c server/townd_upstream.c \
	server/townd_tier.c lib/proto/gmp_client.c lib/proto/outbox.c
TOWND_CFLAGS := -Iserver
TOWND_PKGS := libsodium libcbor sqlite3

PROGS += townd
townd_SRCS := $(TOWND_CORE) $(TOWND_NET) server/townd_main.c
townd_CFLAGS := $(TOWND_CFLAGS)
townd_PKGS := $(TOWND_PKGS) libsystemd

PROGS += townctl
townctl_SRCS := $(TOWND_CORE) $(TOWND_LOANS) server/townctl.c server/townctl_town.c
townctl_CFLAGS := $(TOWND_CFLAGS)
townctl_PKGS := $(TOWND_PKGS)
