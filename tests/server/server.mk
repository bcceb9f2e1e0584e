# townd host end-to-end tests (issue 6): the server loop in a child
# process on 127.0.0.1, simulated meters over TCP.
UNIT_TESTS += townd_test_e2e
townd_test_e2e_SRCS := $(TOWND_CORE) $(TOWND_NET) tests/server/simmeter.c \
	tests/server/simtown.c tests/server/townd_test_e2e.c
townd_test_e2e_CFLAGS := $(TOWND_CFLAGS) -Itests/server
townd_test_e2e_PKGS := $(TOWND_PKGS) libsystemd

# The issue's scenario with every userspace piece: outboxes, uplink logic,
# SIM900 state machines against simulated SIM900s, townd; failover via a
# neighbour's modem and back, townd outage.
UNIT_TESTS += townd_test_failover
townd_test_failover_SRCS = $(TOWND_CORE) $(TOWND_NET) agent/uplink/sim900.c tests/sim900/sim900sim.c \
	tests/server/nonce_audit.c tests/server/simtown.c tests/server/townd_test_failover.c
townd_test_failover_CFLAGS = $(TOWND_CFLAGS) -Itests/sim900 -Itests/server
townd_test_failover_PKGS = $(TOWND_PKGS) libsystemd
townd_test_failover_LDLIBS := -lutil

# townd under hostile clients (issue 10): garbage, slow, replaying and
# crowding peers, descriptor exhaustion, no disk write for them.
UNIT_TESTS += townd_test_hostile
townd_test_hostile_SRCS := $(TOWND_CORE) $(TOWND_NET) tests/server/simmeter.c \
	tests/server/simtown.c tests/server/townd_test_hostile.c
townd_test_hostile_CFLAGS := $(TOWND_CFLAGS) -Itests/server
townd_test_hostile_PKGS := $(TOWND_PKGS) libsystemd

# State lost on either side while meters report: townd's database restored
# from a copy, a meter's state wiped; every frame captured and audited for
# (key, nonce) repeats, the database checked for exactly-once storage.
UNIT_TESTS += townd_test_restore
townd_test_restore_SRCS = $(TOWND_CORE) $(TOWND_NET) tests/server/nonce_audit.c tests/server/simmeter.c \
	tests/server/simtown.c tests/server/townd_test_restore.c
townd_test_restore_CFLAGS = $(TOWND_CFLAGS) -Itests/server
townd_test_restore_PKGS = $(TOWND_PKGS) libsystemd

# Hours to the main server (issue 12): administrative mode while it is
# away, townd killed with a backlog, the backlog complete and once when it
# comes, GMP_SUPPLY, the past month deleted after its acknowledgement; a
# minimal main server from gmproto's primitives (mainsim.c).
UNIT_TESTS += townd_test_upstream
townd_test_upstream_SRCS = $(TOWND_CORE) $(TOWND_NET) tests/server/simmeter.c \
	tests/server/simtown.c tests/server/mainsim.c tests/server/townd_test_upstream.c
townd_test_upstream_CFLAGS = $(TOWND_CFLAGS) -Itests/server
townd_test_upstream_PKGS = $(TOWND_PKGS) libsystemd
# Operator-signed commands through the town (issue 13): a minimal main
# server sends GMP_SIGNED blobs and a town summary, a simulated meter
# verifies them with lib/sign; command reports, a town stop (two
# operators, replay, restart), security counts, a meter's alarm.
UNIT_TESTS += townd_test_signed
townd_test_signed_SRCS = $(TOWND_CORE) $(TOWND_NET) tests/server/simmeter.c \
	tests/server/simtown.c tests/server/mainsim.c tests/server/townd_test_signed.c
townd_test_signed_CFLAGS = $(TOWND_CFLAGS) -Itests/server
townd_test_signed_PKGS = $(TOWND_PKGS) libsystemd

# The town network test's meter fleet (tests/townnet/, issue 12): hundreds
# of simulated meters over a few TCP connections to one townd, each keeping
# its readings until acknowledged; prints what it sent for the test's sums.
PROGS += simfleet
simfleet_SRCS := $(GMPROTO_SRCS) $(GMSIGN_SRCS) drivers/tty/gm_frame.c tests/server/simmeter.c \
	tests/server/simfleet.c
simfleet_CFLAGS := -Itests/server
simfleet_PKGS := libsodium libcbor
