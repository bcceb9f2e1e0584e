# gmproto version 2: messages, padding, handshake and session envelopes.
UNIT_TESTS += proto_test_msg
proto_test_msg_SRCS := $(GMPROTO_SRCS) tests/unit/proto_test_msg.c
proto_test_msg_PKGS := $(GMPROTO_PKGS)

UNIT_TESTS += proto_test_session
proto_test_session_SRCS := $(GMPROTO_SRCS) tests/unit/proto_test_session.c
proto_test_session_PKGS := $(GMPROTO_PKGS)

# the client's outbox (lib/proto/outbox.c): retention, quarantine, renumbering, full disk
UNIT_TESTS += proto_test_outbox
proto_test_outbox_SRCS := drivers/tty/gm_frame.c lib/proto/outbox.c tests/unit/proto_test_outbox.c
proto_test_outbox_CFLAGS := -Idrivers/tty

# the client (lib/proto/gmp_client.c) against the townd core, every frame audited
UNIT_TESTS += proto_test_uplink
proto_test_uplink_SRCS = $(TOWND_CORE) lib/proto/outbox.c lib/proto/gmp_client.c \
	tests/server/nonce_audit.c tests/unit/proto_test_uplink.c
proto_test_uplink_CFLAGS = $(TOWND_CFLAGS) -Itests/server
proto_test_uplink_PKGS = $(TOWND_PKGS)
