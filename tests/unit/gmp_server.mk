# The server end of a tier link (lib/proto/gmp_server.c) against the real
# client (gmp_client.c) in memory: handshake, exactly once across restarts
# and a failed commit, replays and forgeries, commands and results.
UNIT_TESTS += proto_test_gmp_server
proto_test_gmp_server_SRCS := $(GMPROTO_SRCS) $(GMPCLIENT_SRCS) $(GMPSERVER_SRCS) \
	tests/unit/proto_test_gmp_server.c
proto_test_gmp_server_PKGS := $(GMPROTO_PKGS)
