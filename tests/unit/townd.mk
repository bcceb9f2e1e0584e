# townd (issue 6): configuration and ingest core, host unit tests.
UNIT_TESTS += townd_test_config
townd_test_config_SRCS := $(GMPROTO_SRCS) server/townd_config.c server/townd_config_town.c \
	server/townd_config_neighbour.c $(CONF_SRCS) tests/unit/townd_test_config.c
townd_test_config_CFLAGS := -Iserver
townd_test_config_PKGS := libsodium libcbor

UNIT_TESTS += townd_test_core
townd_test_core_SRCS := $(TOWND_CORE) tests/unit/townd_test_core.c
townd_test_core_CFLAGS := $(TOWND_CFLAGS)
townd_test_core_PKGS := $(TOWND_PKGS)

UNIT_TESTS += townd_test_peer
townd_test_peer_SRCS := server/townd_peer.c tests/unit/townd_test_peer.c
townd_test_peer_CFLAGS := -Iserver
townd_test_peer_PKGS := libsodium

# Allocation inside a town (issue 12): the pure logic.
UNIT_TESTS += townd_test_alloc
townd_test_alloc_SRCS := server/townd_alloc.c tests/unit/townd_test_alloc.c
townd_test_alloc_CFLAGS := -Iserver -Ilib/proto

# ... and through the townd core with real meter clients.
UNIT_TESTS += townd_test_alloc_core
townd_test_alloc_core_SRCS := $(TOWND_CORE) lib/proto/outbox.c lib/proto/gmp_client.c \
	tests/unit/townd_test_alloc_core.c
townd_test_alloc_core_CFLAGS := $(TOWND_CFLAGS)
townd_test_alloc_core_PKGS := $(TOWND_PKGS)
# Hours to the main server (issue 12): pure rules and their storage.
UNIT_TESTS += townd_test_hours
townd_test_hours_SRCS := $(TOWND_CORE) tests/unit/townd_test_hours.c
townd_test_hours_CFLAGS := $(TOWND_CFLAGS)
townd_test_hours_PKGS := $(TOWND_PKGS)

# The tier client (issue 12): back-off, an exchange with a minimal main
# server (tests/server/mainsim.c), the outbox's deferred sync.
UNIT_TESTS += townd_test_tier
townd_test_tier_SRCS := $(GMPROTO_SRCS) drivers/tty/gm_frame.c server/townd_tier.c $(NET_SRCS) \
	lib/proto/gmp_client.c lib/proto/outbox.c tests/server/mainsim.c tests/unit/townd_test_tier.c
townd_test_tier_CFLAGS := -Iserver -Itests/server
townd_test_tier_PKGS := libsodium libcbor sqlite3

# borrowing between towns: the protocol logic, towns wired in memory (simulated time)
UNIT_TESTS += townd_test_loans
townd_test_loans_SRCS := $(GMPROTO_SRCS) server/townd_loans.c tests/unit/townd_test_loans.c
townd_test_loans_CFLAGS := -Iserver
townd_test_loans_PKGS := $(GMPROTO_PKGS)

# [town_network] and [neighbour ID] of townd.conf
UNIT_TESTS += townd_test_loans_config
townd_test_loans_config_SRCS := $(GMPROTO_SRCS) server/townd_config.c server/townd_config_town.c \
	server/townd_config_neighbour.c $(CONF_SRCS) tests/unit/townd_test_loans_config.c
townd_test_loans_config_CFLAGS := -Iserver
townd_test_loans_config_PKGS := libsodium libcbor

# townd's loans in SQLite and townctl loans
UNIT_TESTS += townd_test_loans_db
townd_test_loans_db_SRCS := $(TOWND_CORE) $(TOWND_LOANS) tests/unit/townd_test_loans_db.c
townd_test_loans_db_CFLAGS := $(TOWND_CFLAGS)
townd_test_loans_db_PKGS := $(TOWND_PKGS)

# the town network over real links: four towns on 127.0.0.1 (townd_townnet.c)
UNIT_TESTS += townd_test_loans_net
townd_test_loans_net_SRCS := $(TOWND_CORE) $(TOWND_LOANS) $(TOWND_TOWNNET) \
	server/townd_tier.c lib/proto/gmp_client.c lib/proto/outbox.c \
	tests/unit/townd_test_loans_net.c
townd_test_loans_net_CFLAGS := $(TOWND_CFLAGS)
townd_test_loans_net_PKGS := $(TOWND_PKGS)
