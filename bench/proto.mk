# gmproto (issue 6): bytes on the modem link per meter per day, with the
# meter's real uplink logic and the townd core; meterd's reporting logic
# (town_reports, tariff) decides what is sent in the last rows.
# (= not :=, TOWND_* come from server/server.mk, read after bench/.)
BENCHES += proto_bench_bytes
proto_bench_bytes_SRCS = $(TOWND_CORE) lib/proto/outbox.c lib/proto/gmp_client.c \
	agent/core/tariff.c agent/uplink/town_reports.c bench/proto_bench_bytes.c
proto_bench_bytes_CFLAGS = $(TOWND_CFLAGS)
proto_bench_bytes_PKGS = $(TOWND_PKGS)
