# townd (issue 6): configuration and ingest core, host unit tests.
UNIT_TESTS += townd_test_config
townd_test_config_SRCS := server/townd_config.c $(CONF_SRCS) tests/unit/townd_test_config.c
townd_test_config_CFLAGS := -Iserver

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
