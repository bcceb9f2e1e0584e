# The uplink end-to-end test (issues 6 and 10): two QEMU guests A and B
# running meterd, sim900sim bridging their modems to townd on the host
# through recording proxies (tests/uplink/e2e.py, e2e_rig.py, e2e_records.py);
# uplink_wire inspects, injects, extracts and audits captured frames.
PROGS += uplink_wire
uplink_wire_SRCS = $(TOWND_CORE) agent/uplink/credentials.c $(FILE_SRCS) tests/server/nonce_audit.c \
	tests/uplink/uplink_wire.c
uplink_wire_CFLAGS = $(TOWND_CFLAGS) -Itests/server
uplink_wire_PKGS = $(TOWND_PKGS)
